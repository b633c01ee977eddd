#!/usr/bin/env bash
# Smoke test of the lab's adapters (scripts/demo/adapters: the systemctl stand-in for systemd, and the tools that
# would change the host): each must refuse what kubeha-firstboot or kubeadm would never send, naming the problem, and
# accept the agent's own calls. No network, no daemons: ~2 s. The full run with the real Kubernetes is
# `kubeha-lab demo` (make demo, make test-demo).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
AD="$REPO/scripts/demo/adapters"
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
expect_fail "systemctl: unknown unit" "not part of the lab" "$AD/systemctl" start sshd
n=$((n + 1))
if out=$("$AD/systemctl" status sshd) || [[ $out != *"could not be found"* ]]; then
  echo "FAIL systemctl status of an unknown unit: $out"; fails=$((fails + 1)); else echo "ok   systemctl: unknown unit not-found (what kubeadm checks)"; fi
expect_fail "systemctl: is-active of an unknown unit" "" "$AD/systemctl" is-active systemd-resolved
expect_ok "systemctl: daemon-reload" "$AD/systemctl" daemon-reload
expect_fail "systemctl: kubelet before kubeadm" "config.yaml missing" "$AD/systemctl" start kubelet
expect_ok "systemctl: enable + is-enabled" bash -c "'$AD/systemctl' enable kubelet && '$AD/systemctl' is-enabled kubelet"
expect_fail "systemctl: not enabled" "" "$AD/systemctl" is-enabled containerd
# A daemon that died is a zombie until its parent (for the orphaned daemons: PID 1, which on some machines reaps only
# every few seconds) reaps it: systemctl must call the unit dead, not active (a power-cycled master once came back
# without its daemons). The zombie: the child of a python3 that does not wait for it.
python3 -c 'import os, time
p = os.fork()
if p == 0:
    os._exit(0)
print(p, flush=True)
time.sleep(60)' > "$T/zombie" & holder=$!
zpid=""
for _ in $(seq 100); do
  zpid=$(cat "$T/zombie" 2>/dev/null)
  [ -n "$zpid" ] && [ "$(sed -n 's/.*) \([A-Za-z]\) .*/\1/p' "/proc/$zpid/stat" 2>/dev/null)" = Z ] && break
  sleep 0.05
done
mkdir -p "$KHD_ROOT/run/kubeha-demo"; echo "$zpid" > "$KHD_ROOT/run/kubeha-demo/containerd.pid"
expect_fail "systemctl: a zombie daemon is not active" "" "$AD/systemctl" is-active containerd
echo "$$" > "$KHD_ROOT/run/kubeha-demo/containerd.pid"
expect_ok "systemctl: a running daemon is active" "$AD/systemctl" is-active containerd
rm -f "$KHD_ROOT/run/kubeha-demo/containerd.pid"; kill "$holder"; wait "$holder" 2>/dev/null || true
expect_fail "nginx: other argv" "expected 'nginx -t" "$AD/nginx" -s reload
expect_fail "hostname: another node's name" "this node is k8s-master01" "$AD/hostname" k8s-master02
expect_fail "hostname: outside the node UTS namespace" "refusing to rename the host" "$AD/hostname" k8s-master01
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
if [ "$(wc -l < "$KHD_ROOT/var/log/kubeha-demo/calls.log")" -ge "$((n - 2))" ]; then echo "ok   every call recorded"
else echo "FAIL calls.log"; fails=$((fails + 1)); fi
echo "$((n - fails))/$n passed"
[ "$fails" -eq 0 ]
