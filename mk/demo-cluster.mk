# Stages 4-5 of `make demo` (`kubeha-lab demo`, lab/src/demo/cluster.rs on the rack of lab/src/demo/fleet.rs): five
# nodes, each a network + mount namespace (`kubeha-lab node-boot`), with the real kubeha-firstboot, keepalived, nginx
# (stream module), containerd (CRI) and the real Kubernetes of `make k8s` (kubeadm, kubelet, kubectl; etcd and the
# control plane as static pods). systemd is the one stand-in (the systemctl adapter, lab/src/demo/adapters/systemctl.rs;
# the adapters' checks are kubeha-lab's tests, lab/tests/adapters.rs, in `make test`'s nextest run). The packages
# they need:
APT_PACKAGES += iproute2 util-linux keepalived nginx libnginx-mod-stream etcd-server etcd-client containerd \
	firewalld dnf rpm openssl curl python3 python3-yaml
