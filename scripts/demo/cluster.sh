#!/usr/bin/env bash
# Demo stages 4 and 5: three masters and two workers, each a network namespace AND a mount namespace (node-ns.sh)
# running the REAL kubeha-firstboot on its own root, with the REAL keepalived, nginx, containerd (CRI) and the REAL
# Kubernetes of `make k8s`: kubeadm, kubelet, kubectl, and the control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) as static pods from the bundle's images. systemd is the one stand-in (the
# systemctl adapter: systemd cannot be PID 1 in a namespace). Then a failover drill (the VIP holder's link goes down)
# and a rebuild drill (a master is wiped and rejoins). Writes STATE/result.json for the final table.
#
#   scripts/demo/cluster.sh --bundle DIR --cluster cluster.toml --nodes NODECONFIG_DIR --state STATE_DIR \
#       --k8s-bin DIR [--firstboot PATH] [--base-repos DIR] [--workers N] [--rebuild NAME] [--timeout SECS] \
#       [--hostile] [--serve BASE_ISO --secrets secrets.toml --kubeha PATH [--agent PATH]] [--lab PATH]
#
# --serve (make demo): the nodes are network-installed by the REAL `kubeha serve` (in a namespace of its own on the
# nodes' network, at .5 of their subnet): each node's installer asks URL/boot.ipxe?mac=MAC from the node's namespace
# with the node's MAC, gets the kernel command line with its config pinned, and runs the served kickstart's %pre and
# %post --nochroot on the node's fresh root (kubeha-firstboot install fetches the pinned config, the bundle and the
# agent over HTTP); the installed agent then runs and reports its phases to serve; reimages go through
# `kubeha serve reimage`; STATE/fleet.json is the server's view (kubeha status --json). Needs a `mac` for every node
# in cluster.toml. --agent: the kubeha-firstboot serve hands out (the EL-compatible node binary of make node-binary;
# default --firstboot). Without --serve, the node config is copied from --nodes and the bundle symlinked.
#
# --hostile (make test-demo): the "never two clusters" and "never a false done" scenarios with the real Kubernetes:
# the second master boots with kubeha.bootstrap= naming itself; the first master's kubeadm init is killed with its
# apiserver up, then the operator re-designates the second master while the first replays its stored init decision
# (only the second may initialize, the first resets and joins); the rebuilt master is reimaged with its link down
# (it must wait, not initialize) and its real `kubeadm join` is killed once its etcd member is added (it must
# recover); at the end every master is reimaged at once while the workers run (nobody may initialize).
# --lab: the kubeha-lab binary (lab/src/demo: reads the cluster through kubeha's model and the agents' status for
# this script; the node roots' base system, kubelet patch, cgroups and node stops are `kubeha-lab node ...`; default
# ${CARGO_TARGET_DIR:-target}/debug/kubeha-lab of the checkout; `kubeha-lab demo` passes itself).
# --k8s-bin: the directory `make k8s` fills (kubeadm, kubelet, kubectl of the cluster's Kubernetes version).
# --base-repos: the directory holding the base OS repositories the bundle's profile marks `base = true` (one
# subdirectory per repo name); a fresh node root gets the base packages the bundle's RPMs require from them, as the
# installer would have installed them. Default: BUNDLE/../upstream/www/repos (what `make demo` generates).
# Needs root (network namespaces). Every address 192.168.20.x exists only inside this run's namespaces.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

BUNDLE="" CLUSTER="" NODES="" STATE="" FIRSTBOOT="" BASE_REPOS="" WORKERS=2 REBUILD="" TIMEOUT=600 K8S_BIN="" HOSTILE=0
SERVE_ISO="" SECRETS="" KUBEHA="" AGENT="" LAB=""
while [ $# -gt 0 ]; do
  case $1 in
  --bundle) BUNDLE=$2; shift 2 ;;
  --cluster) CLUSTER=$2; shift 2 ;;
  --nodes) NODES=$2; shift 2 ;;
  --state) STATE=$2; shift 2 ;;
  --firstboot) FIRSTBOOT=$2; shift 2 ;;
  --base-repos) BASE_REPOS=$2; shift 2 ;;
  --k8s-bin) K8S_BIN=$2; shift 2 ;;
  --workers) WORKERS=$2; shift 2 ;;
  --rebuild) REBUILD=$2; shift 2 ;;
  --timeout) TIMEOUT=$2; shift 2 ;;
  --hostile) HOSTILE=1; shift ;;
  --serve) SERVE_ISO=$2; shift 2 ;;
  --secrets) SECRETS=$2; shift 2 ;;
  --kubeha) KUBEHA=$2; shift 2 ;;
  --agent) AGENT=$2; shift 2 ;;
  --lab) LAB=$2; shift 2 ;;
  -h|--help) usage ;;
  *) echo "cluster.sh: unknown argument $1" >&2; usage ;;
  esac
done
for v in BUNDLE CLUSTER NODES STATE K8S_BIN; do
  [ -n "${!v}" ] || { echo "cluster.sh: --$(echo "${v,,}" | tr _ -) is required" >&2; usage; }
done
[ -f "$BUNDLE/bundle.toml" ] || { echo "cluster.sh: --bundle $BUNDLE holds no bundle.toml" >&2; exit 1; }
[ -f "$CLUSTER" ] || { echo "cluster.sh: --cluster $CLUSTER: no such file" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root (network namespaces)" >&2; exit 1; }
for b in kubeadm kubelet kubectl; do
  [ -x "$K8S_BIN/$b" ] || { echo "cluster.sh: --k8s-bin $K8S_BIN has no $b (make k8s builds it)" >&2; exit 1; }
done
K8S_BIN=$(cd "$K8S_BIN" && pwd)
BUNDLE=$(cd "$BUNDLE" && pwd)
if [ -z "$FIRSTBOOT" ]; then
  FIRSTBOOT=$(command -v kubeha-firstboot || echo "$HERE/../../target/debug/kubeha-firstboot")
fi
[ -x "$FIRSTBOOT" ] || { echo "cluster.sh: no kubeha-firstboot at $FIRSTBOOT (build it: cargo build -p kubeha-firstboot)" >&2; exit 1; }
FIRSTBOOT=$(cd "$(dirname "$FIRSTBOOT")" && pwd)/$(basename "$FIRSTBOOT")
[ -n "$LAB" ] || LAB="${CARGO_TARGET_DIR:-$HERE/../../target}/debug/kubeha-lab"
[ -x "$LAB" ] || { echo "cluster.sh: no kubeha-lab at $LAB (build it: cargo build -p kubeha-lab)" >&2; exit 1; }
LAB=$(realpath "$LAB")
[ -n "$BASE_REPOS" ] || BASE_REPOS="$(dirname "$BUNDLE")/upstream/www/repos"
if [ -n "$SERVE_ISO" ]; then
  [ -f "$SERVE_ISO" ] || { echo "cluster.sh: --serve $SERVE_ISO: no such file (the base ISO kubeha serve extracts)" >&2; exit 1; }
  [ -f "$SECRETS" ] || { echo "cluster.sh: --serve needs --secrets FILE (kubeha secrets)" >&2; exit 1; }
  [ -x "$KUBEHA" ] || { echo "cluster.sh: --serve needs --kubeha PATH (the kubeha CLI)" >&2; exit 1; }
  [ -n "$AGENT" ] || AGENT=$FIRSTBOOT
  [ -x "$AGENT" ] || { echo "cluster.sh: --agent $AGENT: not an executable" >&2; exit 1; }
  SERVE_ISO=$(realpath "$SERVE_ISO") SECRETS=$(realpath "$SECRETS") KUBEHA=$(realpath "$KUBEHA") AGENT=$(realpath "$AGENT")
fi

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
export DEMO_STATE="$STATE" NS_PREFIX="khd$$"
# shellcheck source=scripts/demo/lib.sh
. "$HERE/lib.sh"
KHD_RUN="/run/khd$$" # short, root-only: containerd sockets and keepalived's check scripts
T0=$(date +%s.%N)
elapsed() { "$LAB" probe elapsed "$@"; } # FROM [TO]: seconds, one decimal

cleanup() {
  local rc=$?
  for n in "${ALL[@]+"${ALL[@]}"}"; do node_stop "$n"; done
  demo_cleanup
  rm -rf "$KHD_RUN"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the cluster, from cluster.toml and the node configs --------------------------------------------------------
# The cluster's names, addresses and bundle facts as bash assignments, read through kubeha's own model (lab/src/demo/vars.rs).
VARS=$("$LAB" demo-vars --cluster "$CLUSTER" --nodes "$NODES" --workers "$WORKERS" --bundle "$BUNDLE") || exit 1
eval "$VARS"
ALL=("${MASTERS[@]}" "${WORKERS_[@]}")
[ -z "$REBUILD" ] && REBUILD=${MASTERS[0]}
NODES=$(cd "$NODES" && pwd)
ENDPOINT="$VIP:$LBPORT"
SERVE_URL=""
if [ -n "$SERVE_ISO" ]; then
  for n in "${ALL[@]}"; do
    [ -n "${MACS[$n]:-}" ] || { echo "cluster.sh: --serve: $n has no mac in $CLUSTER (kubeha serve knows nodes by their MAC)" >&2; exit 1; }
  done
  # kubeha serve's host: .5 of the nodes' network (only inside this run's namespaces, like every 192.168.20.x).
  SERVE_IP="${IPS[${MASTERS[0]}]%.*}.5"
  for n in "${ALL[@]}"; do [ "${IPS[$n]}" != "$SERVE_IP" ] || { echo "cluster.sh: $n has kubeha serve's address $SERVE_IP" >&2; exit 1; }; done
  [ "$VIP" != "$SERVE_IP" ] || { echo "cluster.sh: the VIP is kubeha serve's address $SERVE_IP" >&2; exit 1; }
  SERVE_URL="http://$SERVE_IP:8080"
fi

# --- node roots: a freshly installed EL system each (the bundle profile's release) ------------------------------
say "4. cluster: ${#MASTERS[@]} masters + ${#WORKERS_[@]} workers as network namespaces, kubeha-firstboot on each"
rm -rf "$STATE/logs" "$STATE/result.json"
mkdir -p "$STATE/bin" "$STATE/logs" "$STATE/nodes"
install -d -m 0700 "$KHD_RUN"
# The agent's PATH: demo ADAPTERS for tools that would change the host (systemctl is systemd's stand-in), and the
# REAL kubeadm, kubelet and kubectl of `make k8s` (kubeadm runs the adapters too: it inherits the agent's PATH).
for f in "$HERE"/adapters/*; do case $(basename "$f") in _*) ;; *) ln -sf "$f" "$STATE/bin/" ;; esac; done
for f in kubeadm kubelet kubectl; do ln -sf "$K8S_BIN/$f" "$STATE/bin/$f"; done
KVERSION=$("$K8S_BIN/kubeadm" version -o short)
[ "$KVERSION" = "v$K8S" ] || { echo "cluster.sh: $K8S_BIN/kubeadm is $KVERSION, the cluster wants v$K8S" >&2; exit 1; }

# The base system every node root is a copy of (STATE/base-root): what the bundle's packages require from the base
# repos, installed by the real dnf (STATE/logs/base-root.log), and the files an installed EL system has; cached per
# bundle.toml and base repos' metadata (lab/src/demo/node.rs).
base_root() {
  local repos=() r
  for r in "${BASE_REPO_NAMES[@]}"; do repos+=(--repo "$r"); done
  "$LAB" node base-root --state "$STATE" --bundle "$BUNDLE" --base-repos "$BASE_REPOS" --el "$EL" "${repos[@]}"
}

# The node's cgroup root (kubelet's cgroupRoot /NS_PREFIX-NAME): five kubelets share this kernel's cgroup tree, so
# each gets its own subtree in every v1 controller hierarchy (this host boots cgroup v1, hybrid; cpuset needs its
# cpus/mems set before anything can join). node_stop removes it (deepest first) once its processes are gone.
cgroup_up() { "$LAB" node cgroup-up --prefix "$NS_PREFIX" "$1"; }

# serve_up: kubeha serve in the namespace "srv" on the nodes' bridge (the provisioning host of the rack), with its
# journal and the ISO's extracted tree under STATE/serve.
serve_up() {
  host_up srv "$SERVE_IP/$PREFIX"
  # A new lab is a new rack: no history (the extracted ISO tree stays, serve re-extracts it when the ISO changes).
  mkdir -p "$STATE/serve"
  rm -f "$STATE/serve/journal.jsonl"
  # Started as a simple command (not through the in_ns function, which would run in a subshell of its own): $! is
  # then kubeha serve itself (ip netns exec and setsid exec it in place), the pid cleanup stops.
  ip netns exec "${NS_PREFIX}-srv" setsid "$KUBEHA" serve --cluster "$CLUSTER" --secrets "$SECRETS" --bundle "$BUNDLE" --base "$SERVE_ISO" \
    --listen "$SERVE_IP:8080" --url "$SERVE_URL" --state "$STATE/serve" --agent "$AGENT" \
    </dev/null >"$STATE/logs/serve.log" 2>&1 &
  local pid=$!
  track_pid $pid "kubeha serve"
  echo $pid > "$STATE/logs/serve.pid"
  local i
  for i in $(seq 600); do
    grep -q "^Serving " "$STATE/logs/serve.log" 2>/dev/null && break
    kill -0 $pid 2>/dev/null || { echo "cluster.sh: kubeha serve stopped:" >&2; tail -n 20 "$STATE/logs/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  in_ns srv curl -fsS -o /dev/null "$SERVE_URL/api/fleet" || { echo "cluster.sh: kubeha serve does not answer at $SERVE_URL" >&2; tail -n 20 "$STATE/logs/serve.log" >&2; exit 1; }
}
serve_cli() { in_ns srv "$KUBEHA" "$@"; }

# install_node NAME [reinstall]: NAME's network install from kubeha serve, as the machine does it
# (`kubeha-lab node install`, lab/src/demo/install.rs): its iPXE asks URL/boot.ipxe?mac=MAC from NAME's namespace,
# the installer boots the kernel line it got (the config pinned by its SHA-256, the report URL; with `reinstall`,
# after `kubeha serve reimage`, it must be a reinstall) and runs the served kickstart's %pre on the lab's blank disk
# and %post --nochroot with NAME's fresh root as /mnt/sysimage (`kubeha-firstboot install`; anaconda's chroot is the
# stand-in in scripts/demo/installer); then serve must no longer hand NAME an installer. Files: STATE/install/NAME.
install_node() {
  local name=$1 reinstall=()
  [ -z "${2:-}" ] || reinstall=(--reinstall)
  "$LAB" node install --state "$STATE" --name "$name" --mac "${MACS[$name]}" --serve-url "$SERVE_URL" \
    --ns "${NS_PREFIX}-$name" --installer-dir "$HERE/installer" "${reinstall[@]+"${reinstall[@]}"}"
}

prepare_root() { # NAME [reinstall]
  local name=$1 r="$STATE/nodes/$1"
  rm -rf "$r"
  cp -a "$STATE/base-root" "$r"
  if [ -n "$SERVE_URL" ]; then
    install_node "$name" "${2:-}"
  else
    install -m 0600 "$NODES/$name.toml" "$r/etc/kubeha/node.toml"
    mkdir -p "$r$(dirname "$BUNDLE_PATH")"
    ln -sfn "$BUNDLE" "$r$BUNDLE_PATH"
  fi
  # This node's kubeadm patches (the agent points kubeadm at /etc/kubeha/kubeadm-patches when it exists): what only
  # the lab needs, by name (node::kubelet_patch says why): the cgroupfs driver, a cgroup root of its own (five
  # kubelets on one kernel), and no disk-based eviction (the five kubelets see the host's one filesystem).
  "$LAB" node prepare-patches --root "$r" --prefix "$NS_PREFIX" "$name"
  cgroup_up "$name"
}

# reimage NAME: a new disk for NAME: with kubeha serve, the operator's `kubeha serve reimage NAME` first (serve
# then hands NAME's next network boot the installer with kubeha.reinstall=1 instead of "boot your disk").
reimage() {
  if [ -n "$SERVE_URL" ]; then
    serve_cli serve reimage "$1" --server "$SERVE_URL" >>"$STATE/logs/serve-cli.log" 2>&1 ||
      { echo "cluster.sh: kubeha serve reimage $1 failed:" >&2; tail -n 5 "$STATE/logs/serve-cli.log" >&2; exit 1; }
  fi
  prepare_root "$1" reinstall
}

# The processes of node NAME: everything in its mount namespaces (agent, daemons, containerd's shims; one namespace
# per agent start, and a restarted agent leaves the daemons of the earlier one running) and in its cgroup subtree
# (the containers, which have mount namespaces of their own; the lab looks in the first v1 hierarchy).
node_pids() {
  local mnt
  mnt=$(cat "$STATE/logs/$1.mntns" 2>/dev/null) || return 0
  "$LAB" probe node-pids "$mnt" --prefix "$NS_PREFIX" --node "$1"
}
# Stops every process of node NAME (`kubeha-lab node stop`, lab/src/demo/node.rs: SIGTERM to what node_pids finds,
# SIGKILL to what is left after 3 s), then removes its cgroups and empties STATE/logs/NAME.mntns (the kernel reuses
# the inode numbers of its gone mount namespaces: a stale entry would make this node's next stop kill another node).
node_stop() { "$LAB" node stop --state "$STATE" --prefix "$NS_PREFIX" "$1"; }

# The agent a node boots: the one its install put on its disk (--serve), else --firstboot.
agent_of() { if [ -n "$SERVE_URL" ]; then echo "$STATE/nodes/$1/usr/local/bin/kubeha-firstboot"; else echo "$FIRSTBOOT"; fi; }

start_agent() {
  local name=$1
  # The node's cgroup subtree is part of the machine: node_stop removes it, every boot has it again.
  cgroup_up "$name"
  env KHD_ROOT="$STATE/nodes/$name" KHD_NODE="$name" KHD_IP="${IPS[$name]}" KHD_STATE="$STATE" KHD_RUN="$KHD_RUN" \
    KHD_ENDPOINT="$ENDPOINT" KHD_MASTERS="$KHD_MASTERS" KHD_K8S="$K8S" PATH="$STATE/bin:$PATH" RUST_LOG=info \
    nsenter --net="/run/netns/${NS_PREFIX}-$name" unshare --mount --uts --propagation private \
    "$HERE/node-ns.sh" "$STATE/nodes/$name" "$HERE/node-boot.sh" setsid "$(agent_of "$name")" --root "$STATE/nodes/$name" \
    </dev/null >>"$STATE/logs/$name.agent.log" 2>&1 &
  local pid=$!
  echo $pid > "$STATE/logs/$name.agent.pid"
  track_pid $pid "$name:kubeha-firstboot"
  date +%s.%N > "$STATE/logs/$name.started"
  # The node's mount namespace, once unshare has made it (node_pids finds the node's processes by it).
  local i self; self=$(readlink /proc/self/ns/mnt)
  for i in $(seq 50); do
    local m; m=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || break
    [ "$m" != "$self" ] && { echo "$m" >> "$STATE/logs/$name.mntns"; break; }
    sleep 0.05
  done
}

status_of() { "$LAB" node-status "$STATE/nodes/$1/var/lib/kubeha/status.json"; } # name -> "state phase step error"

# wait_agents NAME...: until each agent's status.json says done (`kubeha-lab node wait`, lab/src/demo/wait.rs: a line
# per node with its seconds and decision); a failed or vanished agent, or the deadline, stops the demo with the
# node's last status and the tail of its log.
wait_agents() {
  "$LAB" node wait --state "$STATE" --timeout "$TIMEOUT" --masters "$(IFS=,; echo "${MASTERS[*]}")" "$@"
}

# supervise NAME MAX: systemd's Restart=on-failure for the unit (systemd is not PID 1 in the lab, so the lab restarts
# the agent, 2 s after it exits instead of RestartSec=30): while the agent on NAME exits without being done, start it
# again, at most MAX times; then wait_agents. RESTARTS: how many restarts it took.
supervise() {
  local name=$1 max=$2 n=0 st phase step err deadline=$(( $(date +%s) + TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if ! kill -0 "$(cat "$STATE/logs/$name.agent.pid")" 2>/dev/null; then
      read -r st phase step err < <(status_of "$name")
      [ "$st" = done ] && break
      [ "$n" -lt "$max" ] || { echo "cluster.sh: the agent on $name still fails after $n restarts: state=$st step=$step: $err" >&2; tail -n 20 "$STATE/logs/$name.agent.log" >&2; exit 1; }
      n=$((n + 1))
      info "the agent on $name exited ($st in $step: ${err:0:200}); restart $n (the unit's Restart=on-failure)"
      sleep 2
      start_agent "$name"
    fi
    read -r st phase step err < <(status_of "$name")
    [ "$st" = done ] && break
    sleep 1
  done
  RESTARTS=$n
  wait_agents "$name"
}

# kill_kubeadm_in_init NAME: SIGKILLs the real `kubeadm init` running on NAME as soon as its apiserver accepts
# connections on :6443 (asked inside NAME's network namespace).
kill_kubeadm_in_init() {
  local name=$1 deadline=$(( $(date +%s) + TIMEOUT )) p kpid st phase step err
  while [ "$(date +%s)" -lt "$deadline" ]; do
    kpid=""
    for p in $(node_pids "$name"); do
      if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = kubeadm ] && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q ' init '; then
        kpid=$p; break
      fi
    done
    if [ -n "$kpid" ] && in_net "$name" timeout 1 bash -c "</dev/tcp/${IPS[$name]}/6443" 2>/dev/null; then
      kill -9 "$kpid" 2>/dev/null && return 0
    fi
    read -r st phase step err < <(status_of "$name")
    if [ "$st" = done ] || [ "$st" = failed ]; then
      echo "cluster.sh: the agent on $name is $st before its kubeadm init brought the apiserver up ($step: $err)" >&2
      return 1
    fi
    sleep 0.2
  done
  return 1
}

# arm_kubeadm_kill NAME VERB: NAME's next real `kubeadm VERB` is SIGKILLed in its kubelet-start phase, by the
# systemctl stand-in when kubeadm restarts the kubelet (see kill_kubeadm_drill there: no race with a poller). What the
# node looked like then lands in $STATE/drills/NAME.kubeadm-killed.
arm_kubeadm_kill() { mkdir -p "$STATE/drills"; rm -f "$STATE/drills/$1.kubeadm-killed"; echo "$2" > "$STATE/drills/$1.kill-kubeadm"; }

# kill_kubeadm_in_join NAME: SIGKILLs the real `kubeadm join` running on NAME as soon as the etcd member list (asked
# of the other masters) shows NAME's peer URL: kubeadm has added the member and is waiting for it to start or be
# promoted. KILLED_AT: the member's state then.
kill_kubeadm_in_join() {
  local name=$1 peer="https://${IPS[$1]}:2380" deadline=$(( $(date +%s) + TIMEOUT )) p kpid state st phase step err
  KILLED_AT=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    kpid=""
    for p in $(node_pids "$name"); do
      if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = kubeadm ] && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q ' join '; then
        kpid=$p; break
      fi
    done
    if [ -n "$kpid" ]; then
      state=$(etcd_ctl member list -w json 2>/dev/null | "$LAB" probe member-state "$peer")
      if [ -n "$state" ] && kill -9 "$kpid" 2>/dev/null; then KILLED_AT=$state; return 0; fi
    fi
    read -r st phase step err < <(status_of "$name")
    if [ "$st" = done ] || [ "$st" = failed ]; then
      echo "cluster.sh: the agent on $name is $st before its kubeadm join added the etcd member ($step: $err)" >&2
      return 1
    fi
    sleep 0.2
  done
  return 1
}

# waiting_of NAME: status.json's `waiting` (why a running step waits), or nothing.
waiting_of() { "$LAB" node-status --waiting "$STATE/nodes/$1/var/lib/kubeha/status.json"; }

# wait_waiting NAME SECS: until the agent on NAME says it waits (status.json), or fail.
wait_waiting() {
  local name=$1 deadline=$(( $(date +%s) + $2 )) w="" st phase step err
  while [ "$(date +%s)" -lt "$deadline" ]; do
    w=$(waiting_of "$name")
    [ -n "$w" ] && { WAITING=$w; return 0; }
    read -r st phase step err < <(status_of "$name")
    if [ "$st" = failed ] || [ "$st" = done ]; then
      echo "cluster.sh: $name was expected to wait, but its agent is $st (step $step): $err" >&2
      tail -n 20 "$STATE/logs/$name.agent.log" >&2
      exit 1
    fi
    sleep 1
  done
  echo "cluster.sh: $name did not say why it waits within $2 s" >&2
  tail -n 20 "$STATE/logs/$name.agent.log" >&2
  exit 1
}

base_root
info "node roots under $STATE/nodes (a copy of the base system each, node config at /etc/kubeha/node.toml, bundle at $BUNDLE_PATH)"
bridge_up
if [ -n "$SERVE_URL" ]; then
  serve_up
  info "kubeha serve at $SERVE_URL (namespace ${NS_PREFIX}-srv): the nodes install from it and report to it"
fi
for n in "${ALL[@]}"; do
  host_up "$n" "${IPS[$n]}/$PREFIX" "${MACS[$n]:-}"
  prepare_root "$n"
done
[ -z "$SERVE_URL" ] || info "installed from kubeha serve: $(IFS=' '; echo "${ALL[*]}") ($(du -sh --apparent-size "$STATE/nodes/${ALL[0]}$BUNDLE_PATH" | cut -f1) bundle each)"
if [ "$HOSTILE" = 1 ]; then
  # Never two clusters, scenario "two bootstraps": the second master boots believing it initializes (the override an
  # operator would put on its kernel command line when the first master is gone); the others keep the default.
  sed -i "1s/\$/ kubeha.bootstrap=${MASTERS[1]}/" "$STATE/nodes/${MASTERS[1]}/proc/cmdline"
  info "hostile: ${MASTERS[1]} boots with kubeha.bootstrap=${MASTERS[1]}: two masters each believe they initialize"
fi
info "namespaces ${NS_PREFIX}-{sw,$(IFS=,; echo "${ALL[*]}")}; starting every agent at once"
# A worker's real `kubeadm join` is killed in its kubelet's TLS bootstrap (armed before it can run).
[ "$HOSTILE" = 1 ] && arm_kubeadm_kill "${WORKERS_[0]}" join
for n in "${ALL[@]}"; do start_agent "$n"; done
INIT_KILL_JSON=null
if [ "$HOSTILE" = 1 ]; then
  # Crash inside init, then an operator re-designates while the stored init decision is replayed: the designated
  # master's real `kubeadm init` is killed once its apiserver answers (kubeadm is in wait-control-plane or later: no
  # bootstrap token, no kubeadm-config yet). The operator sees that master fail and power-cycles it, and reboots
  # the third master with kubeha.bootstrap= naming the second (which already believes it initializes). The first
  # master comes back with its stored `init` decision and kubeadm's leftovers: it must not initialize again (the
  # majority now waits for the second master), but reset and join the second master's cluster. Every unit restarts
  # on failure (the others may fail joining the half-made cluster meanwhile): one cluster must form.
  kill_kubeadm_in_init "${MASTERS[0]}" || { echo "cluster.sh: could not catch ${MASTERS[0]}'s kubeadm init with its apiserver up" >&2; tail -n 20 "$STATE/logs/${MASTERS[0]}.agent.log" >&2; exit 1; }
  info "killed ${MASTERS[0]}'s kubeadm init (SIGKILL) with its apiserver answering on :6443"
  inits_by_node() { "$LAB" probe inits "$STATE" "$@"; } # NAME... -> {"name": count of "kubeadm init on name"}
  AT_KILL=$(inits_by_node "${ALL[@]}")
  # The re-designated master's first `kubeadm init` is killed in kubelet-start: its etcd manifest is written, etcd
  # does not answer yet (a phase the first kill did not reach).
  arm_kubeadm_kill "${MASTERS[1]}" init
  node_stop "${MASTERS[0]}"
  node_stop "${MASTERS[2]}"
  sed -i "1s/\$/ kubeha.bootstrap=${MASTERS[1]}/" "$STATE/nodes/${MASTERS[2]}/proc/cmdline"
  info "hostile: operator power-cycles ${MASTERS[0]} and reboots ${MASTERS[2]} with kubeha.bootstrap=${MASTERS[1]}"
  start_agent "${MASTERS[2]}"
  start_agent "${MASTERS[0]}"
  STORED=$(cat "$STATE/nodes/${MASTERS[0]}/var/lib/kubeha/cluster/decision" 2>/dev/null || echo none)
  info "hostile: ${MASTERS[0]} boots again with its stored decision \"$STORED\" and kubeadm's leftovers"
  sup=()
  for n in "${ALL[@]}"; do
    ( supervise "$n" 5; echo "$RESTARTS" > "$STATE/logs/$n.restarts" ) &
    sup+=("$!")
  done
  for p in "${sup[@]}"; do wait "$p" || exit 1; done
  for n in "${MASTERS[1]}" "${WORKERS_[0]}"; do
    [ -f "$STATE/drills/$n.kubeadm-killed" ] || { echo "cluster.sh: the armed kill of $n's kubeadm never fired (its kubeadm never restarted the kubelet)" >&2; exit 1; }
    info "hostile: $n's kubeadm was killed in kubelet-start: $(cat "$STATE/drills/$n.kubeadm-killed")"
  done
  INIT_KILL_JSON=$("$LAB" hostile-init-kill --state "$STATE" --at-kill "$AT_KILL" --stored "$STORED" "${ALL[@]}")
  info "hostile: after the kill and the re-designation: $INIT_KILL_JSON"
else
  wait_agents "${ALL[@]}"
fi
if [ "$HOSTILE" = 1 ]; then
  # The override took: the second master did not dismiss itself as "not the designated master".
  BELIEVED=true
  grep -q "is not the designated master" "$STATE/logs/${MASTERS[1]}.agent.log" && BELIEVED=false
  info "hostile: ${MASTERS[1]} believed it initializes: $BELIEVED; it decided: $(cat "$STATE/nodes/${MASTERS[1]}/var/lib/kubeha/cluster/decision")"
fi

# --- helpers for the drills: everything runs inside the namespaces ----------------------------------------------
CA="$STATE/nodes/${MASTERS[0]}/etc/kubernetes/pki/ca.crt"
cp "$CA" "$STATE/ca.crt"; CA="$STATE/ca.crt"
# kubeadm's admin.conf points at controlPlaneEndpoint = VIP:16443: every kubectl call below goes through the VIP.
install -m 0600 "$STATE/nodes/${MASTERS[0]}/etc/kubernetes/admin.conf" "$STATE/admin.conf"
grep -q "server: https://$ENDPOINT\$" "$STATE/admin.conf" || { echo "cluster.sh: admin.conf does not point at $ENDPOINT" >&2; exit 1; }
CLIENT=${WORKERS_[0]:-${MASTERS[0]}}
kctl() { in_net "$CLIENT" "$K8S_BIN/kubectl" --kubeconfig "$STATE/admin.conf" "$@"; }
vip_holder() {
  local m
  for m in "${MASTERS[@]}"; do
    if in_net "$m" ip -o -4 addr show dev eth0 | grep -q " $VIP/"; then echo "$m"; return; fi
  done
  echo none
}
through_vip() { [ "$(kctl get --raw /readyz --request-timeout=1s 2>/dev/null)" = ok ]; }
etcd_ctl() { # from master $ETCD_FROM's namespace, with its healthcheck client cert, against every master
  local r="$STATE/nodes/$ETCD_FROM/etc/kubernetes/pki/etcd" eps
  eps=$(for m in "${MASTERS[@]}"; do printf 'https://%s:2379,' "${IPS[$m]}"; done)
  ETCDCTL_API=3 in_net "$ETCD_FROM" etcdctl --endpoints="${eps%,}" --cacert="$r/ca.crt" --cert="$r/healthcheck-client.crt" \
    --key="$r/healthcheck-client.key" --command-timeout=3s "$@"
}
members_table() { etcd_ctl member list -w table | sed 's/^/   /'; }
started_members() { etcd_ctl member list -w json | "$LAB" probe started-members; }
healthy_members() { etcd_ctl endpoint health 2>&1 | grep -c "is healthy" || true; }
# "name=Ready|NotReady ..." for every Node the API server knows.
nodes_status() { kctl get nodes -o json | "$LAB" probe nodes-status; }

# NODES_STATUS once every node is Ready, or after 240 s: a rebuilt node is Ready once the CNI DaemonSet's pod has
# run again on it. READY_SECS: how long it took.
wait_ready() {
  local start; start=$(date +%s)
  local deadline=$(( start + 240 ))
  while :; do
    NODES_STATUS=$(nodes_status)
    [ "$(grep -o '=Ready' <<<"$NODES_STATUS" | wc -l)" -ge "${#ALL[@]}" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || { ready_diagnostics; break; }
    sleep 2
  done
  READY_SECS=$(( $(date +%s) - start ))
}
# What a user would look at when a Node stays NotReady: its conditions, the pods bound to it, the CNI config its
# kubelet sees and the kubelet's last words.
ready_diagnostics() {
  local n
  info "not every Node is Ready after 240 s: $NODES_STATUS"
  kctl get pods -A -o wide 2>&1 | sed 's/^/   /'
  for n in $(tr ' ' '\n' <<<"$NODES_STATUS" | sed -n 's/=NotReady$//p'); do
    kctl get node "$n" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' 2>&1 | sed "s/^/   $n: /"
    ls -l "$STATE/nodes/$n/etc/cni/net.d" 2>&1 | sed "s/^/   $n cni: /"
    tail -n 15 "$STATE/nodes/$n/var/log/kubeha-demo/kubelet.log" 2>/dev/null | sed "s/^/   $n kubelet: /"
  done
}

# --- the cluster as the real kubectl sees it through the VIP -----------------------------------------------------
T_LAST=$(cat "$STATE"/logs/*.finished | sort -n | tail -1)
T_FIRST=$(cat "$STATE"/logs/*.started | sort -n | head -1)
FORM_SECS=$(elapsed "$T_FIRST" "$T_LAST")
SERVER_VERSION=$(kctl version -o json | "$LAB" probe server-version)
info "kubectl (real, $KVERSION) through $ENDPOINT: server $SERVER_VERSION; $(kctl get --raw /readyz) from /readyz"
kctl get nodes -o wide 2>&1 | sed 's/^/   /'
# Exactly one `kubeadm init` in the whole cluster: the agents log each kubeadm run they start.
INITS=$(cat "$STATE"/logs/*.agent.log | grep -c 'kubeadm init on ' || true)
# Zero pulls: every image came from the bundle (containerd's CRI logs each PullImage it serves).
PULLS=$(cat "$STATE"/nodes/*/var/log/kubeha-demo/containerd.log | grep -c 'PullImage' || true)
info "$INITS kubeadm init in the cluster; $PULLS image pulls by the nodes' containerd (all images from the bundle)"
info "agent start to the last node joined: ${FORM_SECS}s"

# Nodes are Ready once the CNI DaemonSet has written each node's network config.
NODES_STATUS=""
wait_ready
info "Nodes (all Ready ${READY_SECS}s after the last agent finished, or the wait gave up): $NODES_STATUS"

# The server's view once the cluster formed: who reported holding the VIP (the masters say it after their cluster
# phase and when done; keepalived's nopreempt keeps it where it is until the drill).
if [ -n "$SERVE_URL" ]; then
  serve_cli status --server "$SERVE_URL" --json > "$STATE/fleet-formed.json"
  info "kubeha serve's view after formation: VIP holder $("$LAB" probe vip-holder "$STATE/fleet-formed.json")"
fi

# --- 5a. failover drill -----------------------------------------------------------------------------------------
say "5a. failover drill: the VIP holder's link goes down (the crash model: its host is gone)"
through_vip || { echo "cluster.sh: no apiserver answers through $ENDPOINT from $CLIENT before the drill" >&2; exit 1; }
OLD=$(vip_holder)
[ "$OLD" != none ] || { echo "cluster.sh: no master holds the VIP $VIP" >&2; exit 1; }
info "VIP $VIP held by $OLD; client: $CLIENT (kubectl get --raw /readyz through $ENDPOINT every 0.2 s, 1 s timeout)"
link_down "$OLD"
TF=$(date +%s.%N)
FAILOVER=""
NEW=none
while [ "$(elapsed "$TF" | cut -d. -f1)" -lt 30 ]; do
  if through_vip; then FAILOVER=$(elapsed "$TF"); break; fi
  sleep 0.2
done
for m in "${MASTERS[@]}"; do
  [ "$m" = "$OLD" ] && continue
  if in_net "$m" ip -o -4 addr show dev eth0 | grep -q " $VIP/"; then NEW=$m; fi
done
[ -n "$FAILOVER" ] || { echo "cluster.sh: nothing answered through $ENDPOINT within 30 s of $OLD going down" >&2; exit 1; }
info "VIP moved $OLD -> $NEW; kubectl through $ENDPOINT answers again after ${FAILOVER}s"
link_up "$OLD"
info "$OLD's link is back up"

# --- 5b. rebuild drill ------------------------------------------------------------------------------------------
say "5b. rebuild drill: $REBUILD is wiped (reimaged: empty disk) and its agent runs again"
ETCD_FROM=""
for m in "${MASTERS[@]}"; do [ "$m" != "$REBUILD" ] && { ETCD_FROM=$m; break; }; done
deadline=$(( $(date +%s) + 60 ))
until [ "$(healthy_members)" = 3 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "cluster.sh: etcd not healthy on 3 members 60 s after the link came back" >&2; etcd_ctl endpoint health >&2 || true; exit 1; }
  sleep 1
done
MARK="written before the rebuild at $(date -u +%H:%M:%S)"
kctl create configmap kubeha-demo-marker --from-literal=written="$MARK" >/dev/null
info "etcd members before (ConfigMap default/kubeha-demo-marker created through the VIP):"
members_table
# The reimage: the node's processes are gone and its disk is new; its node config is all that is kept.
node_stop "$REBUILD"
# The first run's numbers stay the node's row in the table; the rebuild's go to result.json's "rebuild".
cp "$STATE/logs/$REBUILD.seconds" "$STATE/logs/$REBUILD.first-seconds"
cp "$STATE/nodes/$REBUILD/var/lib/kubeha/cluster/decision" "$STATE/logs/$REBUILD.first-decision"
reimage "$REBUILD"
info "$REBUILD wiped$([ -z "$SERVE_URL" ] || echo " and reinstalled from kubeha serve"); starting its agent again"
mv "$STATE/logs/$REBUILD.agent.log" "$STATE/logs/$REBUILD.agent.first.log"
if [ "$HOSTILE" = 1 ]; then
  # Never two clusters, scenario "a reimaged designated master that cannot reach its peers": its link is down from
  # its first boot on. Nothing answers its probes; it must wait, say why, and start nothing.
  link_down "$REBUILD"
  info "hostile: $REBUILD boots with its link down (a partition, a wrong VLAN): it must wait, not initialize"
  start_agent "$REBUILD"
  wait_waiting "$REBUILD" "$TIMEOUT"
  info "$REBUILD waits: ${WAITING:0:300}"
  WAITING_PARTITION=$WAITING
  sleep 15 # the partition lasts: it keeps waiting
  P_INITS=$(grep -c 'kubeadm init on ' "$STATE/logs/$REBUILD.agent.log" || true)
  P_APISERVER=false
  [ -e "$STATE/nodes/$REBUILD/etc/kubernetes/manifests/kube-apiserver.yaml" ] && P_APISERVER=true
  P_STILL=$(waiting_of "$REBUILD")
  info "after 15 s more: kubeadm init runs on $REBUILD: $P_INITS; its apiserver manifest exists: $P_APISERVER"
  link_up "$REBUILD"
  info "$REBUILD's link is back: it must find the cluster and join"
  # Never a false done, with the real kubeadm: its `kubeadm join` is killed (SIGKILL) right after it added the
  # etcd member; the unit's restart must reset the leftovers, remove the stale member and join again.
  kill_kubeadm_in_join "$REBUILD" || { echo "cluster.sh: could not catch $REBUILD's kubeadm join with its etcd member added" >&2; tail -n 20 "$STATE/logs/$REBUILD.agent.log" >&2; exit 1; }
  info "killed $REBUILD's kubeadm join (SIGKILL) with its etcd member $KILLED_AT"
  supervise "$REBUILD" 3
  JOIN_RESTARTS=$RESTARTS
else
  start_agent "$REBUILD"
  wait_agents "$REBUILD"
fi
REBUILD_SECS=$(cat "$STATE/logs/$REBUILD.seconds")
info "etcd members after:"
members_table
STARTED=$(started_members)
HEALTHY=$(healthy_members)
GOT=$(kctl get configmap kubeha-demo-marker -o jsonpath='{.data.written}')
REBUILD_OK=false
if [ "$STARTED" = 3 ] && [ "$HEALTHY" = 3 ] && [ "$GOT" = "$MARK" ] &&
   [ "$(cat "$STATE/nodes/$REBUILD/var/lib/kubeha/cluster/decision")" = join ]; then
  REBUILD_OK=true
fi
info "$STARTED started members, $HEALTHY healthy; ConfigMap kubeha-demo-marker = \"$GOT\"; $REBUILD decided to join: rebuild ok=$REBUILD_OK"
grep -h "stale etcd member\|deleted the stale Node" "$STATE/logs/$REBUILD.agent.log" | sed 's/^/   agent: /' || true
INITS_AFTER=$(cat "$STATE"/logs/*.agent.log "$STATE"/logs/*.agent.first.log | grep -c 'kubeadm init on ' || true)
wait_ready
info "Nodes after the rebuild (kubectl get nodes through $ENDPOINT, waited ${READY_SECS}s): $NODES_STATUS"
PULLS=$(cat "$STATE"/nodes/*/var/log/kubeha-demo/containerd.log | grep -c 'PullImage' || true)

# --- the fleet as kubeha serve saw it: installs and every agent phase were reported to it ------------------------
if [ -n "$SERVE_URL" ]; then
  serve_cli status --server "$SERVE_URL" --json > "$STATE/fleet.json"
  serve_cli status --server "$SERVE_URL" > "$STATE/fleet.txt"
  info "kubeha status --server $SERVE_URL (the server's view, written to $STATE/fleet.txt and fleet.json)"
fi

# --- result.json for the lead's final table ---------------------------------------------------------------------
MEMBERS_JSON=$(etcd_ctl member list -w json)
"$LAB" write-result --state "$STATE" --vip-before "$OLD" --vip-after "$NEW" --failover-seconds "$FAILOVER" \
  --rebuild "$REBUILD" --rebuild-ok "$REBUILD_OK" --rebuild-seconds "$REBUILD_SECS" --members-json "$MEMBERS_JSON" \
  --nodes-status "$NODES_STATUS" --server "$SERVER_VERSION" --kubeadm "$KVERSION" --formation-seconds "$FORM_SECS" \
  --inits "$INITS_AFTER" --pulls "$PULLS" ${SERVE_URL:+--serve-url "$SERVE_URL"} "${ALL[@]}"
info "wrote $STATE/result.json; total $(elapsed "$T0")s"
[ "$REBUILD_OK" = true ] || { echo "cluster.sh: the rebuild drill did not end with 3 healthy members and the ConfigMap" >&2; exit 1; }

# --- 5c. hostile: every master reimaged at once ------------------------------------------------------------------
if [ "$HOSTILE" = 1 ]; then
  say "5c. hostile: every master is reimaged at once while the workers still run the cluster"
  for m in "${MASTERS[@]}"; do node_stop "$m"; done
  for m in "${MASTERS[@]}"; do
    mv "$STATE/logs/$m.agent.log" "$STATE/logs/$m.agent.before-wipe.log"
    reimage "$m"
  done
  for m in "${MASTERS[@]}"; do start_agent "$m"; done
  info "three empty masters boot; the workers' kubelets still run: a new cluster would adopt them"
  wait_waiting "${MASTERS[0]}" "$TIMEOUT"
  info "${MASTERS[0]} waits: ${WAITING:0:400}"
  sleep 15
  A_INITS=$(for m in "${MASTERS[@]}"; do cat "$STATE/logs/$m.agent.log"; done | grep -c 'kubeadm init on ' || true)
  A_STILL=$(waiting_of "${MASTERS[0]}")
  info "after 15 s more: kubeadm init runs: $A_INITS; ${MASTERS[0]} still waits: $([ -n "$A_STILL" ] && echo yes || echo no)"
  for m in "${MASTERS[@]}"; do node_stop "$m"; done
  "$LAB" add-hostile --state "$STATE" --init-kill "$INIT_KILL_JSON" \
    --two-node "${MASTERS[1]}" --two-believed "$BELIEVED" \
    --partition-node "$REBUILD" --partition-waiting "$WAITING_PARTITION" --partition-still "$P_STILL" \
    --partition-inits "$P_INITS" --partition-apiserver "$P_APISERVER" \
    --join-node "$REBUILD" --join-member "$KILLED_AT" --join-restarts "$JOIN_RESTARTS" \
    --all-waiting "$WAITING" --all-still "$A_STILL" --all-inits "$A_INITS"
  info "hostile results added to $STATE/result.json"
fi
