#!/usr/bin/env bash
# Smoke test of the demo's stand-ins and adapters (scripts/demo/standins, scripts/demo/adapters): each must refuse
# what kubeha-firstboot would never send, naming the problem, and accept the agent's own rendering. No network, no
# daemons: ~2 s. The full run is scripts/demo/cluster.sh (make demo-cluster).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SI="$REPO/scripts/demo/standins" AD="$REPO/scripts/demo/adapters"
GOLD="$REPO/firstboot/testdata/golden"
T=$(mktemp -d /tmp/khd-smoke.XXXXXX)
trap 'rm -rf "$T"' EXIT
export KHD_ROOT="$T/root" KHD_NODE=k8s-master01 KHD_IP=192.168.20.20 KHD_STATE="$T" KHD_RUN="$T/run"
export KHD_ENDPOINT=192.168.20.10:16443 KHD_K8S=1.31.4 KHD_MASTERS="k8s-master01=192.168.20.20"
mkdir -p "$KHD_ROOT/etc/kubeha" "$KHD_RUN"
fails=0 n=0

# expect_fail WHAT PATTERN CMD...: CMD must exit non-zero with PATTERN in its stderr.
expect_fail() {
  local what=$1 pat=$2; shift 2; n=$((n + 1))
  local err rc=0
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" -ne 0 ] && grep -q -- "$pat" <<<"$err"; then echo "ok   $what"
  else echo "FAIL $what: exit $rc, stderr: $err"; fails=$((fails + 1)); fi
}
expect_ok() {
  local what=$1; shift; n=$((n + 1))
  if out=$("$@" 2>&1); then echo "ok   $what"; else echo "FAIL $what: $out"; fails=$((fails + 1)); fi
}
cfg() { install -m "$1" "$2" "$KHD_ROOT/etc/kubeha/kubeadm-init.yaml"; chmod 0700 "$KHD_ROOT/etc/kubeha"; }

expect_fail "kubeadm: unknown command line" "unexpected command line" "$SI/kubeadm" init --config /x.yaml
expect_fail "kubeadm: token on the command line" "unexpected command line" "$SI/kubeadm" join --token abcdef.0123456789abcdef
expect_fail "kubeadm: missing config" "no such file" "$SI/kubeadm" init --config /etc/kubeha/kubeadm-init.yaml --skip-token-print
cfg 0644 "$GOLD/kubeadm-v1beta4-init.yaml"
expect_fail "kubeadm: config not 0600" "not 0600" "$SI/kubeadm" init --config /etc/kubeha/kubeadm-init.yaml --skip-token-print
cfg 0600 "$GOLD/kubeadm-v1beta3-init.yaml"
expect_fail "kubeadm: v1beta3 for 1.31" "want kubeadm.k8s.io/v1beta4" "$SI/kubeadm" init --config /etc/kubeha/kubeadm-init.yaml --skip-token-print
sed 's/192.168.20.10:16443/192.168.20.10:6443/' "$GOLD/kubeadm-v1beta4-init.yaml" > "$T/bad.yaml"; cfg 0600 "$T/bad.yaml"
expect_fail "kubeadm: controlPlaneEndpoint" "controlPlaneEndpoint" "$SI/kubeadm" init --config /etc/kubeha/kubeadm-init.yaml --skip-token-print
sed 's/name: k8s-master01/name: k8s-master02/' "$GOLD/kubeadm-v1beta4-init.yaml" > "$T/bad.yaml"; cfg 0600 "$T/bad.yaml"
expect_fail "kubeadm: another node's config" "this node is k8s-master01" "$SI/kubeadm" init --config /etc/kubeha/kubeadm-init.yaml --skip-token-print
cfg 0600 "$GOLD/kubeadm-v1beta4-init.yaml"
expect_fail "kubeadm: init before the PKI" "pki/ca.crt missing before kubeadm init" "$SI/kubeadm" init --config /etc/kubeha/kubeadm-init.yaml --skip-token-print
KHD_NODE=k8s-node01 KHD_IP=192.168.20.30
install -m 0600 "$GOLD/kubeadm-v1beta4-join-worker.yaml" "$KHD_ROOT/etc/kubeha/kubeadm-join.yaml"
sed -i 's/apiServerEndpoint: "192.168.20.10:16443"/apiServerEndpoint: "192.168.20.20:6443"/' "$KHD_ROOT/etc/kubeha/kubeadm-join.yaml"
expect_fail "kubeadm: worker join bypassing the VIP" "apiServerEndpoint" env KHD_NODE=k8s-node01 KHD_IP=192.168.20.30 "$SI/kubeadm" join --config /etc/kubeha/kubeadm-join.yaml
export KHD_NODE=k8s-master01 KHD_IP=192.168.20.20
expect_fail "kubectl: other kubeconfig" "expected --kubeconfig /etc/kubernetes/admin.conf" "$SI/kubectl" get nodes
expect_fail "kube-apiserver: missing flags" "missing --" "$SI/kube-apiserver" --secure-port=6443
expect_fail "systemctl: unknown unit" "not part of the demo" "$AD/systemctl" start sshd
expect_fail "systemctl: kubelet before kubeadm" "kubelet.conf missing" "$AD/systemctl" start kubelet
expect_ok "systemctl: enable + is-enabled" bash -c "'$AD/systemctl' enable kubelet && '$AD/systemctl' is-enabled kubelet"
expect_fail "systemctl: not enabled" "" "$AD/systemctl" is-enabled containerd
expect_fail "nginx: other argv" "expected 'nginx -t" "$AD/nginx" -s reload
expect_fail "hostname: another node's name" "this node is k8s-master01" "$AD/hostname" k8s-master02
mkdir -p "$KHD_ROOT/etc"; echo '/dev/mapper/rl-swap none swap defaults 0 0' > "$KHD_ROOT/etc/fstab"
expect_fail "swapoff: fstab still mounts swap" "active swap line" "$AD/swapoff" -a
expect_fail "modprobe: module not in modules-load.d" "kubeha.conf" "$AD/modprobe" aufs
expect_fail "firewall-cmd: only --state" "unexpected call" "$AD/firewall-cmd" --reload
mkdir -p "$KHD_ROOT/etc/firewalld"; echo DefaultZone=public > "$KHD_ROOT/etc/firewalld/firewalld.conf"
expect_ok "firewall-offline-cmd: real, on the node root" "$AD/firewall-offline-cmd" --zone=public --add-port=6443/tcp
n=$((n + 1))
if grep -q 'port="6443"' "$KHD_ROOT/etc/firewalld/zones/public.xml" && [ ! -e /etc/firewalld/zones/public.xml.khd ]; then
  echo "ok   firewall-offline-cmd wrote the node root's zone"; else echo "FAIL no port in the node root's zone"; fails=$((fails + 1)); fi
n=$((n + 1))
if [ "$(wc -l < "$KHD_ROOT/var/log/kubeha-demo/calls.log")" -ge 15 ]; then echo "ok   every call recorded"
else echo "FAIL calls.log"; fails=$((fails + 1)); fi
echo "$((n - fails))/$n passed"
[ "$fails" -eq 0 ]
