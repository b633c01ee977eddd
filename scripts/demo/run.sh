#!/usr/bin/env bash
# make demo: the whole kubeha pipeline, offline, on one machine.
#
#   1. a generated local "upstream" on loopback (registry + yum repos + the CNI manifest)
#   2. kubeha bundle build / verify, secrets, node configs
#   3. kubeha iso and kubeha pxe, and the ISO booted in QEMU to show the kernel got its kubeha.* arguments
#   4. three masters and two workers as network namespaces running kubeha-firstboot, forming the control plane
#   5. a failover drill and a rebuild drill
#   6. a final table
#
# This machine has no internet, so stage 1 generates the upstream: small images under the real names the default
# profile asks for, and RPMs named like the real ones with their dependency shape. With internet access the same
# bundle comes from the real registries and repos with one command: `kubeha bundle build -o bundle`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:-$ROOT/out}
OUT=$(realpath -m "$OUT")
BIN=${KUBEHA_BIN:-$ROOT/target/debug}
# The real Kubernetes binaries of `make k8s` (kubeadm, kubelet, kubectl, and the control plane's images).
K8S_BIN=${K8S_BIN:?set K8S_BIN to the directory make k8s fills}
KUBEHA=$BIN/kubeha
T0=$(date +%s)
export DEMO_STATE=$OUT/state
export NS_PREFIX=khd$$
rm -rf "$OUT/state" "$OUT/upstream"
mkdir -p "$OUT"
# shellcheck source=lib.sh
source "$ROOT/scripts/demo/lib.sh"
trap demo_cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stage_time() { echo "$(($(date +%s) - T0))s"; }

# ---------------------------------------------------------------------------------------------------------------
say "1/6 upstream: a generated registry and yum repos on loopback ($(stage_time))"
UP=$OUT/upstream
mkdir -p "$UP/registry" "$UP/www/files"
$KUBEHA bundle profile > "$UP/default-profile.toml"
KVER=$(sed -n 's/^kubernetes-version = "\(.*\)"/\1/p' "$UP/default-profile.toml")
REG_PORT=$(free_port)
cat > "$UP/registry/config.yml" <<EOF
version: 0.1
log: {level: info}
storage: {filesystem: {rootdirectory: $UP/registry/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$REG_PORT}
EOF
docker-registry serve "$UP/registry/config.yml" > "$UP/registry/log" 2>&1 &
track_pid $! docker-registry
# The images the default profile asks for: kubeadm's for its release, plus the profile's own (calico).
{
  $KUBEHA bundle images --kubernetes-version "v$KVER"
  python3 -c 'import sys,tomllib; [print(i) for i in tomllib.load(open(sys.argv[1],"rb")).get("images",[])]' "$UP/default-profile.toml"
} > "$UP/images.txt"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && break; sleep 0.1; done
[ "$("$K8S_BIN/kubeadm" version -o short)" = "v$KVER" ] ||
  { echo "run.sh: $K8S_BIN/kubeadm is not v$KVER, the default profile's Kubernetes (make k8s K8S_VERSION=$KVER)" >&2; exit 1; }
# kubeadm's control-plane images (kube-apiserver, -controller-manager, -scheduler, kube-proxy, etcd, pause) are
# REAL, built from the binaries of `make k8s`; coredns and calico are generated stand-ins.
python3 scripts/demo/upstream.py images --registry "127.0.0.1:$REG_PORT" --list "$UP/images.txt" --lists \
  --k8s-bin "$K8S_BIN" --cache "$OUT/.image-cache" --cni-plugins /usr/lib/cni ||
  { echo "run.sh: pushing the upstream images failed; the registry's log:" >&2; tail -n 40 "$UP/registry/log" >&2; exit 1; }
python3 scripts/demo/upstream.py rpms --spec scripts/demo/rpms.json --out "$UP/www/repos" --work "$UP/rpmbuild" --kube-version "$KVER"
CALICO_VER=$(sed -n 's|.*calico/node:\(v[0-9.]*\)".*|\1|p' "$UP/default-profile.toml" | head -1)
# The registry the profile's (pinned, real) calico manifest names its images under, e.g. quay.io/calico.
CALICO_REPO=$(sed -n 's|.*"\([^"]*\)/node:v[0-9.]*".*|\1|p' "$UP/default-profile.toml" | head -1)
[ -n "$CALICO_VER" ] && [ -n "$CALICO_REPO" ] || { echo "run.sh: no calico/node image in the default profile" >&2; exit 1; }
POD_NET=$($KUBEHA config init | sed -n 's/^pod-subnet = "\([0-9]*\.[0-9]*\)\.0\.0\/16"/\1/p')
[ -n "$POD_NET" ] || { echo "run.sh: the default pod subnet is not a /16" >&2; exit 1; }
python3 - "$UP/www/files/calico.yaml" "$CALICO_VER" "$POD_NET" "$CALICO_REPO" <<'PY'
import sys
out, ver, pod_net, repo = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
# A STAND-IN for calico.yaml, in its shape and with its image names (so the bundle carries and the node loads them):
# the install-cni init container installs the reference CNI plugins and a bridge config (upstream.py --cni-plugins),
# calico-node and calico-kube-controllers only sleep.
open(out, "w").write(f"""# Generated STAND-IN for calico.yaml {ver} (this machine has no internet)
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: calico-node, namespace: kube-system}}
spec:
  selector: {{matchLabels: {{k8s-app: calico-node}}}}
  template:
    metadata: {{labels: {{k8s-app: calico-node}}}}
    spec:
      hostNetwork: true
      tolerations: [{{operator: Exists}}]
      initContainers:
        - name: install-cni
          image: {repo}/cni:{ver}
          command: ["/bin/sh", "/install-cni.sh"]
          env:
            - {{name: HOST_IP, valueFrom: {{fieldRef: {{fieldPath: status.hostIP}}}}}}
            - {{name: POD_NET, value: "{pod_net}"}}
          volumeMounts:
            - {{name: cni-bin, mountPath: /host/opt/cni/bin}}
            - {{name: cni-net, mountPath: /host/etc/cni/net.d}}
      containers:
        - {{name: calico-node, image: "{repo}/node:{ver}", command: ["/bin/sleep", "2147483647"]}}
      volumes:
        - {{name: cni-bin, hostPath: {{path: /opt/cni/bin}}}}
        - {{name: cni-net, hostPath: {{path: /etc/cni/net.d}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: calico-kube-controllers, namespace: kube-system}}
spec:
  selector: {{matchLabels: {{k8s-app: calico-kube-controllers}}}}
  template:
    metadata: {{labels: {{k8s-app: calico-kube-controllers}}}}
    spec:
      tolerations: [{{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}}]
      containers:
        - {{name: calico-kube-controllers, image: "{repo}/kube-controllers:{ver}", command: ["/bin/sleep", "2147483647"]}}
""")
PY
WWW_PORT=$(free_port)
(cd "$UP/www" && exec python3 -m http.server --bind 127.0.0.1 "$WWW_PORT" > "$UP/www.log" 2>&1) &
track_pid $! http.server
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$WWW_PORT/" >/dev/null && break; sleep 0.1; done
# The demo profile: the default profile with its sources pointed at the local upstream. Image names stay the real
# ones (registry mirrors), repos and the CNI manifest come from loopback.
python3 - "$UP/default-profile.toml" "$UP/profile.toml" "$REG_PORT" "$WWW_PORT" "$UP/www/files/calico.yaml" <<'PY'
import hashlib, sys, tomllib
src, dst, reg, www, calico = sys.argv[1:6]
p = tomllib.load(open(src, "rb"))
text = open(src).read()
head = text[: text.index("[[repos]]")] if "[[repos]]" in text else text
head = head.replace('name = "el9-containerd-calico"', 'name = "demo-el9-containerd-calico"')
lines = [head.rstrip(), ""]
for r in p.get("repos", []):
    lines += ["[[repos]]", f'name = "{r["name"]}"', f'baseurl = "http://127.0.0.1:{www}/repos/{r["name"]}/"']
    if r.get("base"):
        lines.append("base = true")
    lines.append("")
for host in sorted({i.split("/")[0] for i in open(sys.argv[1].replace("default-profile.toml", "images.txt")).read().split()}):
    lines += ["[[registry-mirrors]]", f'registry = "{host}"', f'endpoint = "http://127.0.0.1:{reg}"', f'prefix = "{host}"', ""]
sha = hashlib.sha256(open(calico, "rb").read()).hexdigest()
lines += ["[[files]]", 'name = "calico.yaml"', f'url = "http://127.0.0.1:{www}/files/calico.yaml"', f'sha256 = "{sha}"', ""]
open(dst, "w").write("\n".join(lines))
PY
info "registry 127.0.0.1:$REG_PORT ($(wc -l < "$UP/images.txt") images), yum repos + files on 127.0.0.1:$WWW_PORT"
info "profile: $UP/profile.toml (the built-in default, sources pointed at loopback)"

# ---------------------------------------------------------------------------------------------------------------
say "2/6 bundle, secrets, node configs ($(stage_time))"
$KUBEHA bundle build --profile "$UP/profile.toml" -o "$OUT/bundle"
$KUBEHA bundle verify "$OUT/bundle"
t=$(date +%s.%N)
$KUBEHA bundle build --profile "$UP/profile.toml" -o "$OUT/bundle" > "$OUT/rerun.log" 2>&1
info "no-op rerun: $(python3 -c "import time; print(f'{time.time() - $t:.2f}')") s"
KUBEHA=$KUBEHA bash scripts/demo-core.sh "$OUT"

# ---------------------------------------------------------------------------------------------------------------
say "3/6 install media: kubeha iso + kubeha pxe, one boot in QEMU ($(stage_time))"
mkdir -p "$OUT/media"
if [ ! -f "$OUT/media/base-rocky9.iso" ]; then
  bash image/fixtures/make-base-iso.gen.sh rocky9 "$OUT/media/base-rocky9.iso" > "$OUT/media/base.log" 2>&1
fi
info "base ISO: $OUT/media/base-rocky9.iso (synthetic Rocky 9 layout: isolinux, GRUB EFI, efiboot.img, .treeinfo)"
$KUBEHA iso --base "$OUT/media/base-rocky9.iso" --bundle "$OUT/bundle" --cluster "$OUT/cluster.toml" \
  --secrets "$OUT/secrets.toml" --role worker -o "$OUT/media/kubeha.iso" --force
HTTP_BASE=http://127.0.0.1:$WWW_PORT/pxe
$KUBEHA pxe --base "$OUT/media/base-rocky9.iso" --bundle "$OUT/bundle" --cluster "$OUT/cluster.toml" \
  --secrets "$OUT/secrets.toml" --http-base "$HTTP_BASE" -o "$OUT/media/pxe" --force
xorriso -indev "$OUT/media/kubeha.iso" -report_el_torito plain 2>/dev/null | grep -E "^El Torito boot img" | sed 's/^/   /'
info "booting $OUT/media/kubeha.iso in QEMU (SeaBIOS, TCG)..."
timeout 120 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -cdrom "$OUT/media/kubeha.iso" \
  -boot d -serial mon:stdio > "$OUT/media/qemu-bios.log" 2>&1 &
QPID=$!
track_pid $QPID qemu
wait $QPID || true
# The test initramfs prints /proc/cmdline between @kubeha-cmdline@ and @kubeha-end@ markers on the serial console.
CMDLINE=$(tr -d '\r' < "$OUT/media/qemu-bios.log" | grep -a -o "@kubeha-cmdline@.*@kubeha-end" | head -1 \
  | sed 's/@kubeha-cmdline@ *//; s/ *@kubeha-end$//' || true)
if [ -z "$CMDLINE" ] || ! grep -q "kubeha\." <<<"$CMDLINE"; then
  echo "the booted kernel did not get the kubeha arguments; see $OUT/media/qemu-bios.log" >&2
  exit 1
fi
info "guest kernel cmdline: $CMDLINE"

# ---------------------------------------------------------------------------------------------------------------
say "4-5/6 kubeha serve installs five nodes; they form the HA control plane by themselves; failover and rebuild drills ($(stage_time))"
# The nodes install over HTTP from `kubeha serve` (kernel command line, kickstart, pinned node config, bundle, agent)
# and report every phase to it; the agent it hands out is the EL-compatible node binary of `make node-binary`.
AGENT=${KUBEHA_NODE_BINARY:-$ROOT/dist/kubeha-firstboot}
bash scripts/demo/cluster.sh --bundle "$OUT/bundle" --cluster "$OUT/cluster.toml" --nodes "$OUT/nodes" \
  --state "$OUT/state/cluster" --firstboot "$BIN/kubeha-firstboot" --k8s-bin "$K8S_BIN" \
  --serve "$OUT/media/base-rocky9.iso" --secrets "$OUT/secrets.toml" --kubeha "$KUBEHA" --agent "$AGENT" \
  ${KUBEHA_DEMO_HOSTILE:+--hostile}

# ---------------------------------------------------------------------------------------------------------------
say "6/6 summary ($(stage_time))"
# The fleet as kubeha serve saw it and the drills' numbers (lab/src/demo/summary.rs).
"$BIN/kubeha-lab" summary "$OUT/state/cluster/result.json" "$OUT"
echo "make demo: done in $(stage_time)"
