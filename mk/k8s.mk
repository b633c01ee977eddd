# The real Kubernetes binaries for the lab, built from k8s.io/kubernetes with Go (lab/k8s/go.mod requires
# k8s.io/kubernetes and pins every k8s.io staging module to the same release), stamped with the version ldflags that
# Kubernetes' own build uses (hack/lib/version.sh), statically linked (CGO_ENABLED=0) so the same files go into the
# lab's OCI images. Cached by version in K8S_DIR: a rerun with the same version does nothing; Go's build cache makes a
# version bump cheap after the first build.
K8S_VERSION ?= 1.36.3
ETCD_VERSION ?= 3.6.8
K8S_CACHE ?= $(HOME)/.cache/kubeha/k8s
K8S_DIR := $(K8S_CACHE)/v$(K8S_VERSION)
K8S_CMDS := kubeadm kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy
K8S_MINOR = $(word 2,$(subst ., ,$(K8S_VERSION)))
K8S_LDFLAGS = -s -w $(foreach p,k8s.io/client-go/pkg/version k8s.io/component-base/version,\
	-X '$(p).gitVersion=v$(K8S_VERSION)' -X '$(p).gitMajor=1' -X '$(p).gitMinor=$(K8S_MINOR)' \
	-X '$(p).gitTreeState=clean' -X '$(p).buildDate=1970-01-01T00:00:00Z')
# Go is on this machine kind at /usr/local/go (not always on a non-login PATH).
export PATH := $(PATH):/usr/local/go/bin
APT_PACKAGES += gcc libc6-dev conntrack ethtool socat ebtables iptables containernetworking-plugins

.PHONY: k8s
# `make k8s`: $(K8S_DIR)/bin/{kubeadm,kube-apiserver,...,kube-log-runner,etcd,etcdctl,pause}. The first build took
# 592 s on 2 cores (module download included; docs/lab.md); a rerun is a stamp check.
k8s: $(K8S_DIR)/.done
$(K8S_DIR)/.done: lab/k8s/go.mod lab/k8s/go.sum mk/k8s.mk
	@echo "k8s: building Kubernetes v$(K8S_VERSION) ($(K8S_CMDS)) and etcd v$(ETCD_VERSION) into $(K8S_DIR)/bin"
	@mkdir -p $(K8S_DIR)/bin
	@cd lab/k8s && start=$$(date +%s) && \
	  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$(K8S_LDFLAGS)" -o $(K8S_DIR)/bin/ \
	    $(addprefix k8s.io/kubernetes/cmd/,$(K8S_CMDS)) k8s.io/component-base/logs/kube-log-runner && \
	  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o $(K8S_DIR)/bin/etcd ./etcd && \
	  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o $(K8S_DIR)/bin/etcdctl go.etcd.io/etcd/etcdctl/v3 && \
	  gcc -Os -static -DVERSION=v$(K8S_VERSION) -o $(K8S_DIR)/bin/pause \
	    $$(go env GOMODCACHE)/k8s.io/kubernetes@v$(K8S_VERSION)/build/pause/linux/pause.c && \
	  echo "k8s: built in $$(( $$(date +%s) - start )) s"
	@$(K8S_DIR)/bin/kubeadm version -o short | grep -qx "v$(K8S_VERSION)" || \
	  { echo "k8s: kubeadm does not report v$(K8S_VERSION)" >&2; exit 1; }
	@date -u +%FT%TZ > $@

# kubeadm of a v1beta3-era release, for `kubeadm config validate` of what the agent renders for such a release
# (the default release's kubeadm refuses to deploy a control plane older than 1.35).
K8S_V1BETA3_VERSION ?= 1.30.14
K8S_V1BETA3_DIR := $(K8S_CACHE)/v$(K8S_V1BETA3_VERSION)
K8S_V1BETA3_LDFLAGS = -s -w $(foreach p,k8s.io/client-go/pkg/version k8s.io/component-base/version,\
	-X '$(p).gitVersion=v$(K8S_V1BETA3_VERSION)' -X '$(p).gitMajor=1' \
	-X '$(p).gitMinor=$(word 2,$(subst ., ,$(K8S_V1BETA3_VERSION)))' -X '$(p).gitTreeState=clean' \
	-X '$(p).buildDate=1970-01-01T00:00:00Z')

.PHONY: k8s-v1beta3
k8s-v1beta3: $(K8S_V1BETA3_DIR)/.done
$(K8S_V1BETA3_DIR)/.done: lab/k8s-v1beta3/go.mod lab/k8s-v1beta3/go.sum mk/k8s.mk
	@echo "k8s: building kubeadm v$(K8S_V1BETA3_VERSION) into $(K8S_V1BETA3_DIR)/bin"
	@mkdir -p $(K8S_V1BETA3_DIR)/bin
	@cd lab/k8s-v1beta3 && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$(K8S_V1BETA3_LDFLAGS)" \
	  -o $(K8S_V1BETA3_DIR)/bin/ k8s.io/kubernetes/cmd/kubeadm
	@$(K8S_V1BETA3_DIR)/bin/kubeadm version -o short | grep -qx "v$(K8S_V1BETA3_VERSION)" || \
	  { echo "k8s: kubeadm does not report v$(K8S_V1BETA3_VERSION)" >&2; exit 1; }
	@date -u +%FT%TZ > $@
