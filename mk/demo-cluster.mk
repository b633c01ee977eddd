# Issue 7, stages 4-5 of `make demo`: scripts/demo/cluster.sh runs five network-namespace nodes with the real
# kubeha-firstboot, keepalived, nginx (stream module), etcd and containerd; kubeadm, kubelet, kubectl and the
# kube-apiserver are stand-ins (scripts/demo/standins). scripts/demo/run.sh calls it after stages 1-3.
APT_PACKAGES += iproute2 util-linux keepalived nginx libnginx-mod-stream etcd-server etcd-client containerd \
	firewalld dnf rpm openssl curl python3 python3-yaml
TEST_TARGETS += test-demo-standins

.PHONY: demo-cluster test-demo-standins
# Needs stage 1-3 outputs in $(OUT): bundle/, upstream/www/repos (the base repos), cluster.toml, nodes/.
demo-cluster: deps build
	bash scripts/demo/cluster.sh --bundle "$(OUT)/bundle" --cluster "$(OUT)/cluster.toml" --nodes "$(OUT)/nodes" \
		--state "$(OUT)/cluster" --firstboot target/debug/kubeha-firstboot

# The stand-ins' and adapters' argument checks, no daemons (~10 s).
test-demo-standins: deps
	bash tests/demo/standins_smoke.sh
