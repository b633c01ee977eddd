# shellcheck shell=bash
# Shared by the demo ADAPTERS: tools that would change the host if run for real, replaced on the node agent's PATH.
# Each adapter runs the real tool against the node root, or records and checks the call. Environment (set by
# the lab's Fleet::start_agent, lab/src/demo/fleet.rs, for each node agent): KHD_ROOT (node root), KHD_NODE, KHD_IP, KHD_STATE (demo state), KHD_RUN (short
# per-run dir under /run for sockets and the keepalived check script).
set -u
: "${KHD_ROOT:?demo adapter run outside the lab (no KHD_ROOT)}"
KHD_LOG="$KHD_ROOT/var/log/kubeha-demo"
KHD_PIDS="$KHD_ROOT/run/kubeha-demo"
mkdir -p "$KHD_LOG" "$KHD_PIDS"
ADAPTER=$(basename "$0")

# Every call, one line: "<tool> <argv>".
record() { printf '%s %s\n' "$ADAPTER" "$*" >> "$KHD_LOG/calls.log"; }
fail() { echo "demo adapter $ADAPTER on ${KHD_NODE:-?}: $*" >&2; exit 1; }

# Path of a system path inside the node root.
rootp() { printf '%s%s' "$KHD_ROOT" "$1"; }

# start_daemon NAME CMD...: starts CMD detached (own session, stdio to a log, never the agent's pipes), records its
# pid for this node (stop by pid) and for the run's cleanup.
start_daemon() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$KHD_LOG/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" > "$KHD_PIDS/$name.pid"
  echo "$pid $KHD_NODE:$name" >> "$KHD_STATE/pids"
}

# pid_running PID: the process exists and is not a zombie. The daemons are orphans (start_daemon's shell exits), and a
# zombie stays until PID 1 reaps it (this machine's does so only every few seconds): `kill -0` would call a dead
# daemon running, and `systemctl start` would not start it again (systemd knows its own children).
pid_running() { local s; s=$(sed -n 's/.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }

daemon_alive() { local f="$KHD_PIDS/$1.pid"; [ -f "$f" ] && pid_running "$(cat "$f")"; }

# stop_daemon NAME: stops the daemon and everything it started (like systemd's KillMode=control-group: the kubelet's
# restart loop is a bash whose kubelet child would outlive it). start_daemon made it a session leader, so the session
# is the unit's processes; never our own session.
stop_daemon() {
  local f="$KHD_PIDS/$1.pid" pid sid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  sid=$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')
  [ "$sid" = "$(ps -o sid= -p $$ | tr -d ' ')" ] && sid=""
  kill "$pid" 2>/dev/null || true
  [ -n "$sid" ] && pkill -TERM -s "$sid" 2>/dev/null
  alive() { pid_running "$pid" || { [ -n "$sid" ] && pgrep -s "$sid" -r R,S,D,T,t,I >/dev/null; }; }
  for _ in $(seq 50); do alive || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  [ -n "$sid" ] && pkill -KILL -s "$sid" 2>/dev/null
  rm -f "$f"
}
