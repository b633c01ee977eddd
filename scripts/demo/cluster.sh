#!/usr/bin/env bash
# Demo stages 4 and 5: three masters and two workers as network namespaces running the REAL kubeha-firstboot on
# per-node roots, with the REAL keepalived, nginx, etcd and containerd, and stand-ins only for kubeadm, kubelet,
# kubectl and the kube-apiserver (scripts/demo/standins); then a failover drill (the VIP holder's link goes down)
# and a rebuild drill (a master is wiped and rejoins). Writes STATE/result.json for the final table.
#
#   scripts/demo/cluster.sh --bundle DIR --cluster cluster.toml --nodes NODECONFIG_DIR --state STATE_DIR \
#       [--firstboot PATH] [--base-repos DIR] [--workers N] [--rebuild NAME] [--timeout SECS]
#
# --base-repos: the directory holding the base OS repositories the bundle's profile marks `base = true` (one
# subdirectory per repo name); a fresh node root gets the base packages the bundle's RPMs require from them, as the
# installer would have installed them. Default: BUNDLE/../upstream/www/repos (what `make demo` generates).
# Needs root (network namespaces). Every address 192.168.20.x exists only inside this run's namespaces.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

BUNDLE="" CLUSTER="" NODES="" STATE="" FIRSTBOOT="" BASE_REPOS="" WORKERS=2 REBUILD="" TIMEOUT=300
while [ $# -gt 0 ]; do
  case $1 in
  --bundle) BUNDLE=$2; shift 2 ;;
  --cluster) CLUSTER=$2; shift 2 ;;
  --nodes) NODES=$2; shift 2 ;;
  --state) STATE=$2; shift 2 ;;
  --firstboot) FIRSTBOOT=$2; shift 2 ;;
  --base-repos) BASE_REPOS=$2; shift 2 ;;
  --workers) WORKERS=$2; shift 2 ;;
  --rebuild) REBUILD=$2; shift 2 ;;
  --timeout) TIMEOUT=$2; shift 2 ;;
  -h|--help) usage ;;
  *) echo "cluster.sh: unknown argument $1" >&2; usage ;;
  esac
done
for v in BUNDLE CLUSTER NODES STATE; do
  [ -n "${!v}" ] || { echo "cluster.sh: --${v,,} is required" >&2; usage; }
done
[ -f "$BUNDLE/bundle.toml" ] || { echo "cluster.sh: --bundle $BUNDLE holds no bundle.toml" >&2; exit 1; }
[ -f "$CLUSTER" ] || { echo "cluster.sh: --cluster $CLUSTER: no such file" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root (network namespaces)" >&2; exit 1; }
BUNDLE=$(cd "$BUNDLE" && pwd)
if [ -z "$FIRSTBOOT" ]; then
  FIRSTBOOT=$(command -v kubeha-firstboot || echo "$HERE/../../target/debug/kubeha-firstboot")
fi
[ -x "$FIRSTBOOT" ] || { echo "cluster.sh: no kubeha-firstboot at $FIRSTBOOT (build it: cargo build -p kubeha-firstboot)" >&2; exit 1; }
FIRSTBOOT=$(cd "$(dirname "$FIRSTBOOT")" && pwd)/$(basename "$FIRSTBOOT")
[ -n "$BASE_REPOS" ] || BASE_REPOS="$(dirname "$BUNDLE")/upstream/www/repos"

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
export DEMO_STATE="$STATE" NS_PREFIX="khd$$"
# shellcheck source=scripts/demo/lib.sh
. "$HERE/lib.sh"
KHD_RUN="/run/khd$$" # short, root-only: containerd sockets and keepalived's check scripts
T0=$(date +%s.%N)
elapsed() { python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$1"; }

cleanup() {
  local rc=$?
  demo_cleanup
  rm -rf "$KHD_RUN"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the cluster, from cluster.toml and the node configs --------------------------------------------------------
VARS=$(python3 - "$CLUSTER" "$NODES" "$WORKERS" "$BUNDLE" <<'PY'
import sys, tomllib, shlex
c = tomllib.load(open(sys.argv[1], "rb"))
nodes, nworkers, bundle = sys.argv[2], int(sys.argv[3]), sys.argv[4]
ms, ws = c["masters"], c.get("workers", [])[:nworkers]
if len(ms) != 3:
    sys.exit(f"cluster.sh: {sys.argv[1]}: the demo wants 3 masters, found {len(ms)}")
def q(v): return shlex.quote(str(v))
print("MASTERS=(" + " ".join(q(m["name"]) for m in ms) + ")")
print("WORKERS_=(" + " ".join(q(w["name"]) for w in ws) + ")")
print("declare -A IPS=(" + " ".join(f"[{q(n['name'])}]={q(n['ip'])}" for n in ms + ws) + ")")
print(f"VIP={q(c['endpoint']['vip'])} LBPORT={q(c['endpoint'].get('port', 16443))} PREFIX={q(c.get('networking', {}).get('node-prefix', 24))}")
print(f"K8S={q(c['cluster']['kubernetes-version'])}")
print("KHD_MASTERS=" + q(",".join(f"{m['name']}={m['ip']}" for m in ms)))
b = tomllib.load(open(f"{bundle}/bundle.toml", "rb"))
print(f"EL={q(b['profile'].get('el', 9))}")
print("BASE_REPO_NAMES=(" + " ".join(q(r["name"]) for r in b["profile"].get("repos", []) if r.get("base")) + ")")
bp = None
for n in ms + ws:
    try:
        nc = tomllib.load(open(f"{nodes}/{n['name']}.toml", "rb"))
    except FileNotFoundError:
        sys.exit(f"cluster.sh: no node config {nodes}/{n['name']}.toml (kubeha node-config makes it)")
    if n in ms and "control-plane" not in nc:
        sys.exit(f"cluster.sh: {nodes}/{n['name']}.toml is a master's but carries no [control-plane] keys")
    p = nc.get("bundle", {}).get("path", "/var/lib/kubeha/bundle")
    if bp not in (None, p):
        sys.exit("cluster.sh: the node configs disagree on bundle.path")
    bp = p
print(f"BUNDLE_PATH={q(bp)}")
PY
) || exit 1
eval "$VARS"
ALL=("${MASTERS[@]}" "${WORKERS_[@]}")
[ -z "$REBUILD" ] && REBUILD=${MASTERS[0]}
NODES=$(cd "$NODES" && pwd)
ENDPOINT="$VIP:$LBPORT"

# --- node roots: a freshly installed EL system each (the bundle profile's release) ------------------------------
say "4. cluster: ${#MASTERS[@]} masters + ${#WORKERS_[@]} workers as network namespaces, kubeha-firstboot on each"
rm -rf "$STATE/logs" "$STATE/result.json"
mkdir -p "$STATE/bin" "$STATE/logs" "$STATE/nodes"
install -d -m 0700 "$KHD_RUN"
# The agent's PATH: demo ADAPTERS for tools that would change the host, STAND-INS for kubeadm/kubelet/kubectl.
for f in "$HERE"/adapters/*; do case $(basename "$f") in _*) ;; *) ln -sf "$f" "$STATE/bin/" ;; esac; done
for f in kubeadm kubelet kubectl; do ln -sf "$HERE/standins/$f" "$STATE/bin/$f"; done

base_root() {
  local t="$STATE/base-root" key
  key=$(cat "$BUNDLE/bundle.toml" "$BASE_REPOS"/*/repodata/repomd.xml 2>/dev/null | sha256sum | cut -c1-16)
  [ "$(cat "$t/.ready" 2>/dev/null)" = "$key" ] && return 0 # cached from an earlier run on the same inputs
  rm -rf "$t"; mkdir -p "$t"
  local repos=() r
  for r in "${BASE_REPO_NAMES[@]}"; do
    [ -d "$BASE_REPOS/$r" ] || { echo "cluster.sh: base repo $BASE_REPOS/$r missing (--base-repos)" >&2; exit 1; }
    repos+=(--repofrompath="$r,$BASE_REPOS/$r")
  done
  local dnf=(dnf -q --installroot "$t" --releasever "$EL" --setopt=reposdir=/dev/null --disablerepo='*'
             --setopt=cachedir="$STATE/dnf-cache" --setopt=gpgcheck=0 --setopt=install_weak_deps=False)
  # What the bundle's packages require from the base system (the installer's package set on a real node).
  local reqs
  reqs=$("${dnf[@]}" --repofrompath=kubeha,"$BUNDLE/rpms" repoquery --requires '*' 2>/dev/null |
         grep -v '^rpmlib(' | sed 's/ [<>=]\{1,2\} .*//' | sort -u)
  # shellcheck disable=SC2086
  "${dnf[@]}" "${repos[@]}" --setopt=strict=False install -y bash $reqs > "$STATE/logs/base-root.log" 2>&1 ||
    { echo "cluster.sh: installing the base system failed (see $STATE/logs/base-root.log)" >&2; exit 1; }
  mkdir -p "$t/etc/selinux" "$t/etc/yum.repos.d" "$t/etc/firewalld" "$t/proc" "$t/etc/kubeha"
  case $EL in
  7) printf 'NAME="CentOS Linux"\nVERSION_ID="7"\nID="centos"\n' ;;
  *) printf 'NAME="Rocky Linux"\nVERSION_ID="%s"\nID="rocky"\n' "$EL.4" ;;
  esac > "$t/etc/os-release"
  printf 'SELINUX=enforcing\nSELINUXTYPE=targeted\n' > "$t/etc/selinux/config"
  printf '/dev/mapper/rl-root / xfs defaults 0 0\n/dev/mapper/rl-swap none swap defaults 0 0\n' > "$t/etc/fstab"
  printf '[baseos]\nname=BaseOS\nmirrorlist=https://mirrors.rockylinux.org/mirrorlist?repo=BaseOS-%s\nenabled=1\n' "$EL" \
    > "$t/etc/yum.repos.d/rocky.repo"
  printf 'DefaultZone=public\n' > "$t/etc/firewalld/firewalld.conf"
  printf '127.0.0.1   localhost localhost.localdomain\n::1         localhost6\n' > "$t/etc/hosts"
  echo 'BOOT_IMAGE=/vmlinuz root=/dev/mapper/rl-root ro' > "$t/proc/cmdline"
  echo "$key" > "$t/.ready"
}

prepare_root() {
  local name=$1 r="$STATE/nodes/$1"
  rm -rf "$r"
  cp -a "$STATE/base-root" "$r"
  install -m 0600 "$NODES/$name.toml" "$r/etc/kubeha/node.toml"
  mkdir -p "$r$(dirname "$BUNDLE_PATH")"
  ln -sfn "$BUNDLE" "$r$BUNDLE_PATH"
}

start_agent() {
  local name=$1
  env KHD_ROOT="$STATE/nodes/$name" KHD_NODE="$name" KHD_IP="${IPS[$name]}" KHD_STATE="$STATE" KHD_RUN="$KHD_RUN" \
    KHD_ENDPOINT="$ENDPOINT" KHD_MASTERS="$KHD_MASTERS" KHD_K8S="$K8S" PATH="$STATE/bin:$PATH" RUST_LOG=info \
    nsenter --net="/run/netns/${NS_PREFIX}-$name" setsid "$FIRSTBOOT" --root "$STATE/nodes/$name" \
    </dev/null >>"$STATE/logs/$name.agent.log" 2>&1 &
  echo $! > "$STATE/logs/$name.agent.pid"
  track_pid $! "$name:kubeha-firstboot"
  date +%s.%N > "$STATE/logs/$name.started"
}

status_of() { # name -> "state phase step error"
  python3 - "$STATE/nodes/$1/var/lib/kubeha/status.json" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception:
    print("none - - -"); sys.exit()
print(s.get("state", "-"), s.get("phase", "-"), s.get("step") or "-", (s.get("error") or "-").replace("\n", " "))
PY
}

# wait_agents NAME...: until each agent's status.json says done; a failed or vanished agent, or the deadline, stops
# the demo with the node's last status and the tail of its log.
wait_agents() {
  local deadline=$(( $(date +%s) + TIMEOUT )) pending=("$@") n st phase step err
  while [ ${#pending[@]} -gt 0 ]; do
    local still=()
    for n in "${pending[@]}"; do
      local alive=1
      kill -0 "$(cat "$STATE/logs/$n.agent.pid")" 2>/dev/null || alive=0
      read -r st phase step err < <(status_of "$n") # read after the liveness check: an agent may just have finished
      if [ "$st" = done ]; then
        local secs
        date +%s.%N > "$STATE/logs/$n.finished"
        secs=$(python3 -c "print(f'{float(open(\"$STATE/logs/$n.finished\").read()) - float(open(\"$STATE/logs/$n.started\").read()):.1f}')")
        echo "$secs" > "$STATE/logs/$n.seconds"
        local role=worker; [[ " ${MASTERS[*]} " == *" $n "* ]] && role=master
        local dec; dec=$(cat "$STATE/nodes/$n/var/lib/kubeha/cluster/decision" 2>/dev/null || echo join)
        info "$(printf '%-13s %-6s phase=%-5s %-5s %6ss' "$n" "$role" done "$dec" "$secs")"
      elif [ "$st" = failed ] || [ "$alive" = 0 ]; then
        echo "cluster.sh: the agent on $n stopped: state=$st phase=$phase step=$step: $err" >&2
        tail -n 15 "$STATE/logs/$n.agent.log" >&2
        exit 1
      else
        still+=("$n")
      fi
    done
    pending=("${still[@]+"${still[@]}"}")
    if [ ${#pending[@]} -gt 0 ] && [ "$(date +%s)" -ge "$deadline" ]; then
      for n in "${pending[@]}"; do
        read -r st phase step err < <(status_of "$n")
        echo "cluster.sh: $n not done after ${TIMEOUT}s: state=$st phase=$phase step=$step; last log lines:" >&2
        tail -n 5 "$STATE/logs/$n.agent.log" >&2
      done
      exit 1
    fi
    sleep 1
  done
}

base_root
info "node roots under $STATE/nodes (a copy of the base system each, node config at /etc/kubeha/node.toml, bundle at $BUNDLE_PATH)"
bridge_up
for n in "${ALL[@]}"; do
  prepare_root "$n"
  host_up "$n" "${IPS[$n]}/$PREFIX"
done
info "namespaces ${NS_PREFIX}-{sw,$(IFS=,; echo "${ALL[*]}")}; starting every agent at once"
for n in "${ALL[@]}"; do start_agent "$n"; done
wait_agents "${ALL[@]}"

# --- helpers for the drills: everything runs inside the namespaces ----------------------------------------------
CA="$STATE/nodes/${MASTERS[0]}/etc/kubernetes/pki/ca.crt"
cp "$CA" "$STATE/ca.crt"; CA="$STATE/ca.crt"
CLIENT=${WORKERS_[0]:-${MASTERS[0]}}
vip_holder() {
  local m
  for m in "${MASTERS[@]}"; do
    if in_net "$m" ip -o -4 addr show dev eth0 | grep -q " $VIP/"; then echo "$m"; return; fi
  done
  echo none
}
through_vip() { in_net "$CLIENT" curl -s --max-time 1 --cacert "$CA" "https://$ENDPOINT/readyz" 2>/dev/null | grep -qx ok; }
etcd_ctl() { # from master $ETCD_FROM's namespace, with its healthcheck client cert, against every master
  local r="$STATE/nodes/$ETCD_FROM/etc/kubernetes/pki/etcd" eps
  eps=$(for m in "${MASTERS[@]}"; do printf 'https://%s:2379,' "${IPS[$m]}"; done)
  ETCDCTL_API=3 in_net "$ETCD_FROM" etcdctl --endpoints="${eps%,}" --cacert="$r/ca.crt" --cert="$r/healthcheck-client.crt" \
    --key="$r/healthcheck-client.key" --command-timeout=3s "$@"
}
members_table() { etcd_ctl member list -w table | sed 's/^/   /'; }
started_members() { etcd_ctl member list -w json | python3 -c '
import json,sys; m=json.load(sys.stdin)["members"]; print(sum(1 for x in m if x.get("name") and x.get("clientURLs")))'; }
healthy_members() { etcd_ctl endpoint health 2>&1 | grep -c "is healthy" || true; }

# --- 5a. failover drill -----------------------------------------------------------------------------------------
say "5a. failover drill: the VIP holder's link goes down (the crash model: its host is gone)"
through_vip || { echo "cluster.sh: no apiserver answers through $ENDPOINT from $CLIENT before the drill" >&2; exit 1; }
OLD=$(vip_holder)
[ "$OLD" != none ] || { echo "cluster.sh: no master holds the VIP $VIP" >&2; exit 1; }
info "VIP $VIP held by $OLD; client: $CLIENT (curl https://$ENDPOINT/readyz every 0.2 s, 1 s timeout)"
link_down "$OLD"
TF=$(date +%s.%N)
FAILOVER=""
NEW=none
while [ "$(python3 -c "import sys,time; print(int(time.time()-float(sys.argv[1])))" "$TF")" -lt 30 ]; do
  if through_vip; then FAILOVER=$(elapsed "$TF"); break; fi
  sleep 0.2
done
for m in "${MASTERS[@]}"; do
  [ "$m" = "$OLD" ] && continue
  if in_net "$m" ip -o -4 addr show dev eth0 | grep -q " $VIP/"; then NEW=$m; fi
done
[ -n "$FAILOVER" ] || { echo "cluster.sh: nothing answered through $ENDPOINT within 30 s of $OLD going down" >&2; exit 1; }
info "VIP moved $OLD -> $NEW; requests through $ENDPOINT succeed again after ${FAILOVER}s"
link_up "$OLD"
info "$OLD's link is back up"

# --- 5b. rebuild drill ------------------------------------------------------------------------------------------
say "5b. rebuild drill: $REBUILD is wiped (reimaged: empty /var/lib/etcd) and its agent runs again"
ETCD_FROM=""
for m in "${MASTERS[@]}"; do [ "$m" != "$REBUILD" ] && { ETCD_FROM=$m; break; }; done
deadline=$(( $(date +%s) + 60 ))
until [ "$(healthy_members)" = 3 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "cluster.sh: etcd not healthy on 3 members 60 s after the link came back" >&2; etcd_ctl endpoint health >&2 || true; exit 1; }
  sleep 1
done
MARK="written before the rebuild at $(date -u +%H:%M:%S)"
etcd_ctl put /kubeha-demo/marker "$MARK" >/dev/null
info "etcd members before (key /kubeha-demo/marker written):"
members_table
# The reimage: the node's processes are gone and its disk is new; its node config is all that is kept.
for pf in "$STATE/nodes/$REBUILD/run/kubeha-demo/kubelet.pid" "$STATE/nodes/$REBUILD"/run/kubeha-demo/*.pid; do
  [ -f "$pf" ] && kill "$(cat "$pf" 2>/dev/null)" 2>/dev/null || true
done
sleep 1
for pf in "$STATE/nodes/$REBUILD"/run/kubeha-demo/*.pid; do
  [ -f "$pf" ] && kill -9 "$(cat "$pf" 2>/dev/null)" 2>/dev/null || true
done
# The first run's numbers stay the node's row in the table; the rebuild's go to result.json's "rebuild".
cp "$STATE/logs/$REBUILD.seconds" "$STATE/logs/$REBUILD.first-seconds"
cp "$STATE/nodes/$REBUILD/var/lib/kubeha/cluster/decision" "$STATE/logs/$REBUILD.first-decision"
prepare_root "$REBUILD"
info "$REBUILD wiped; starting its agent again"
mv "$STATE/logs/$REBUILD.agent.log" "$STATE/logs/$REBUILD.agent.first.log"
start_agent "$REBUILD"
wait_agents "$REBUILD"
REBUILD_SECS=$(cat "$STATE/logs/$REBUILD.seconds")
info "etcd members after:"
members_table
STARTED=$(started_members)
HEALTHY=$(healthy_members)
GOT=$(etcd_ctl get /kubeha-demo/marker --print-value-only)
REBUILD_OK=false
if [ "$STARTED" = 3 ] && [ "$HEALTHY" = 3 ] && [ "$GOT" = "$MARK" ] &&
   [ "$(cat "$STATE/nodes/$REBUILD/var/lib/kubeha/cluster/decision")" = join ]; then
  REBUILD_OK=true
fi
info "$STARTED started members, $HEALTHY healthy; /kubeha-demo/marker = \"$GOT\"; $REBUILD decided to join: rebuild ok=$REBUILD_OK"
grep -h "stale etcd member\|deleted the stale Node" "$STATE/logs/$REBUILD.agent.log" | sed 's/^/   agent: /' || true
NODES_SEEN=$(in_net "$CLIENT" curl -s --max-time 2 --cacert "$CA" --cert "$STATE/nodes/$ETCD_FROM/var/lib/kubelet/pki/kubelet-client.crt" \
  --key "$STATE/nodes/$ETCD_FROM/var/lib/kubelet/pki/kubelet-client.key" "https://$ENDPOINT/api/v1/nodes" |
  python3 -c 'import json,sys; print(" ".join(sorted(i["metadata"]["name"] for i in json.load(sys.stdin)["items"])))')
info "Nodes registered (GET /api/v1/nodes through $ENDPOINT): $NODES_SEEN"

# --- result.json for the lead's final table ---------------------------------------------------------------------
MEMBERS_JSON=$(etcd_ctl member list -w json)
python3 - "$STATE" "$OLD" "$NEW" "$FAILOVER" "$REBUILD" "$REBUILD_OK" "$REBUILD_SECS" "$MEMBERS_JSON" "$NODES_SEEN" \
  "${ALL[@]}" <<'PY'
import json, os, sys
state, old, new, fo, rb, rb_ok, rb_secs, members, seen = sys.argv[1:10]
names = sys.argv[10:]
nodes = []
for n in names:
    st = json.load(open(f"{state}/nodes/{n}/var/lib/kubeha/status.json"))
    def first(what, fallback):
        p = f"{state}/logs/{n}.first-{what}"
        p = p if os.path.exists(p) else fallback
        return open(p).read().strip() if os.path.exists(p) else None
    dec = first("decision", f"{state}/nodes/{n}/var/lib/kubeha/cluster/decision")
    nodes.append({"name": n, "role": st.get("role"), "phase": st.get("phase"), "state": st.get("state"),
                  "seconds": float(first("seconds", f"{state}/logs/{n}.seconds")),
                  "decision": dec or ("join" if st.get("role") == "worker" else None)})
ms = json.loads(members)["members"]
out = {"nodes": nodes, "vip_before": old, "vip_after": new, "failover_seconds": float(fo),
       "etcd_members": [{"name": m.get("name"), "id": format(int(m["ID"]), "x"), "peer_urls": m.get("peerURLs")}
                        for m in ms],
       "rebuild": {"node": rb, "ok": rb_ok == "true", "seconds": float(rb_secs),
                   "decision": open(f"{state}/nodes/{rb}/var/lib/kubeha/cluster/decision").read().strip()},
       "registered_nodes": seen.split(), "state_dir": state}
tmp = f"{state}/result.json.tmp"
json.dump(out, open(tmp, "w"), indent=2)
os.replace(tmp, f"{state}/result.json")
PY
info "wrote $STATE/result.json; total $(elapsed "$T0")s"
[ "$REBUILD_OK" = true ] || { echo "cluster.sh: the rebuild drill did not end with 3 healthy members and the key" >&2; exit 1; }
