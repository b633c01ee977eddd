# shellcheck shell=bash
# Demo helpers: hosts as network namespaces on one bridge (ip-netns(8), veth pairs), processes tracked by pid, cleanup on exit.
# Everything the demo starts is recorded in $DEMO_STATE/pids and stopped by pid at the end; namespaces carry the
# per-run prefix $NS_PREFIX, so a second run (or a parallel test) never touches another run's hosts.

DEMO_STATE=${DEMO_STATE:?}
NS_PREFIX=${NS_PREFIX:-khd$$}
mkdir -p "$DEMO_STATE"
: > "$DEMO_STATE/pids"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
info() { printf '   %s\n' "$*"; }

track_pid() { echo "$1 $2" >> "$DEMO_STATE/pids"; }

# bridge_up: the switch namespace with br0.
bridge_up() {
  ip netns add "${NS_PREFIX}-sw"
  ip -n "${NS_PREFIX}-sw" link add br0 type bridge
  ip -n "${NS_PREFIX}-sw" link set br0 up
  ip -n "${NS_PREFIX}-sw" link set lo up
}

# host_up NAME IP/PREFIX [MAC]: a host namespace with eth0 on the bridge.
host_up() {
  local name=$1 cidr=$2 mac=${3:-}
  HOST_N=$(( ${HOST_N:-0} + 1 ))
  local ns="${NS_PREFIX}-$name" veth="v${NS_PREFIX#khd}h$HOST_N" # unique within 15 characters
  veth=${veth:0:15}
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" netns "${NS_PREFIX}-sw"
  ip -n "${NS_PREFIX}-sw" link set "$veth" master br0 up
  ip -n "$ns" link set lo up
  [ -n "$mac" ] && ip -n "$ns" link set eth0 address "$mac"
  ip -n "$ns" addr add "$cidr" dev eth0
  ip -n "$ns" link set eth0 up
  echo "$veth" > "$DEMO_STATE/veth-$name"
}

# link_down/link_up NAME: simulate a crashed host (its link taken down on the bridge).
link_down() { ip -n "${NS_PREFIX}-sw" link set "$(cat "$DEMO_STATE/veth-$1")" down; }
link_up() { ip -n "${NS_PREFIX}-sw" link set "$(cat "$DEMO_STATE/veth-$1")" up; }

in_ns() { local name=$1; shift; ip netns exec "${NS_PREFIX}-$name" "$@"; }
# in_net NAME CMD...: only the network namespace (nsenter), so /sys and the cgroup mounts stay as they are (containerd
# needs them); what the node agent runs under.
in_net() { local name=$1; shift; nsenter --net="/run/netns/${NS_PREFIX}-$name" "$@"; }

# Stop every process this run started, by pid, then delete its namespaces.
demo_cleanup() {
  if [ -f "$DEMO_STATE/pids" ]; then
    # Process groups first: an agent's children (e.g. a kubeadm stand-in mid-run) are in its group; the daemons
    # lead their own (started with setsid).
    while read -r pid what; do
      kill -- "-$pid" 2>/dev/null || true
      kill "$pid" 2>/dev/null || true
    done < "$DEMO_STATE/pids"
    # Give them (keepalived stops its VRRP and checker children first) up to 5 s, then SIGKILL what is left.
    local i
    for i in $(seq 50); do
      local any=0
      while read -r pid what; do kill -0 "$pid" 2>/dev/null && any=1; done < "$DEMO_STATE/pids"
      [ "$any" = 0 ] && break
      sleep 0.1
    done
    while read -r pid what; do
      kill -9 -- "-$pid" 2>/dev/null || true
      kill -9 "$pid" 2>/dev/null || true
    done < "$DEMO_STATE/pids"
  fi
  # Daemons started inside node namespaces write their pid files under the node roots.
  for pf in "$DEMO_STATE"/nodes/*/run/*.pid "$DEMO_STATE"/nodes/*/run/kubeha-demo/*.pid; do
    [ -f "$pf" ] && kill "$(cat "$pf" 2>/dev/null)" 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${NS_PREFIX}-" || true); do
    ip netns delete "$ns" 2>/dev/null || true
  done
}
