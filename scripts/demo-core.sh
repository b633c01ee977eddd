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
