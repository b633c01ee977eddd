//go:build tools

// Keeps kubeadm's packages in go.mod/go.sum so `go build k8s.io/kubernetes/cmd/kubeadm` works from this module.
package tools

import _ "k8s.io/kubernetes/cmd/kubeadm/app"
