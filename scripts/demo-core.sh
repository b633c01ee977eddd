#!/usr/bin/env bash
# Demo stage: the cluster model on the embedded default (config init, check, secrets, one node config per node).
set -euo pipefail
OUT=${1:-out}
KUBEHA=${KUBEHA:-target/debug/kubeha}
mkdir -p "$OUT/nodes"
echo "== cluster: kubeha config init / check"
$KUBEHA config init > "$OUT/cluster.toml"
# The lab's nodes share this host's kernel: when it boots cgroup v1 (hybrid), so do they, and Kubernetes >= 1.35 then
# needs the explicit choice a CentOS 7 / EL8 user makes (kubelet failCgroupV1: false; kubeadm's SystemVerification
# preflight error ignored by name).
if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
  sed -i 's/^\[install\]$/[install]\ncgroup = "v1" # this host boots cgroup v1/' "$OUT/cluster.toml"
fi
# The machines' MACs, as an operator copies them from the rack's inventory into cluster.toml: kubeha serve recognises
# the nodes by them (iPXE asks for URL/boot.ipxe?mac=...), and the lab gives each node's eth0 its MAC. Here:
# 52:54:00 (QEMU's prefix) and the node IP's last three octets.
python3 - "$OUT/cluster.toml" <<'PY'
import re, sys
p = sys.argv[1]
def with_mac(m):
    o = [int(x) for x in m.group(1).split(".")]
    return m.group(0) + '\nmac = "52:54:00:%02x:%02x:%02x"' % (o[1], o[2], o[3])
t = re.sub(r'^ip = "(\d+\.\d+\.\d+\.\d+)"$', with_mac, open(p).read(), flags=re.M)
open(p, "w").write(t)
PY
$KUBEHA config check "$OUT/cluster.toml"
echo "== secrets: kubeha secrets"
$KUBEHA secrets -o "$OUT/secrets.toml" --force
echo "== node configs: kubeha node-config for every node"
python3 - "$OUT/cluster.toml" <<'PY' > "$OUT/nodes.txt"
import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
for role in ("masters", "workers"):
    for n in c.get(role, []):
        print(("master" if role == "masters" else "worker"), n["name"], n["ip"])
PY
while read -r role name ip; do
  $KUBEHA node-config --cluster "$OUT/cluster.toml" --secrets "$OUT/secrets.toml" \
    --role "$role" --name "$name" -o "$OUT/nodes/$name.toml" --force 2>/dev/null
  keys=$(grep -c "PRIVATE KEY-----" "$OUT/nodes/$name.toml" || true)
  printf '  %-14s %-7s %-15s %s\n' "$name" "$role" "$ip" "$OUT/nodes/$name.toml ($((keys / 2)) private keys)"
done < "$OUT/nodes.txt"
