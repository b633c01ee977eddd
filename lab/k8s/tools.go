//go:build tools

// Keeps every command's packages in go.mod/go.sum so `go build k8s.io/kubernetes/cmd/...` works from this module
// (k8s.io/kubernetes cannot be `go install`ed: its go.mod has replace directives).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubeadm/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
	_ "go.etcd.io/etcd/etcdctl/v3/ctlv3"
	_ "k8s.io/kubectl/pkg/cmd"
)
