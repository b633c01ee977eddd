# Stages 4-5 of `make demo`: scripts/demo/cluster.sh runs five nodes, each a network + mount namespace
# (scripts/demo/node-ns.sh), with the real kubeha-firstboot, keepalived, nginx (stream module), containerd (CRI) and
# the real Kubernetes of `make k8s` (kubeadm, kubelet, kubectl; etcd and the control plane as static pods). systemd
# is the one stand-in (scripts/demo/adapters/systemctl). `kubeha-lab demo` (lab/src/demo/run.rs) calls it after stages 1-3.
APT_PACKAGES += iproute2 util-linux keepalived nginx libnginx-mod-stream etcd-server etcd-client containerd \
	firewalld dnf rpm openssl curl python3 python3-yaml
TEST_TARGETS += test-demo-adapters

.PHONY: demo-cluster test-demo-adapters
# Needs stage 1-3 outputs in $(OUT): bundle/, upstream/www/repos (the base repos), cluster.toml, nodes/.
demo-cluster: deps build k8s
	bash scripts/demo/cluster.sh --bundle "$(OUT)/bundle" --cluster "$(OUT)/cluster.toml" --nodes "$(OUT)/nodes" \
		--state "$(OUT)/cluster" --firstboot target/debug/kubeha-firstboot --k8s-bin $(K8S_DIR)/bin

# The adapters' argument checks, no daemons (~2 s).
test-demo-adapters: deps
	bash tests/demo/adapters_smoke.sh
