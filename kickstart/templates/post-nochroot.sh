# kubeha %post --nochroot: put the bundle, the node agent and the node config into the installed system.
set -eu
SYSROOT=${KUBEHA_SYSROOT:-/mnt/sysimage}
CMDLINE_FILE=${KUBEHA_CMDLINE:-/proc/cmdline}
OUT=${KUBEHA_OUT:-/tmp}
# Where the installer finds kubeha's files: the install media's /kubeha, or an HTTP URL (PXE).
SRC=${KUBEHA_SRC:-'@SOURCE@'}
cmdline=$(cat "$CMDLINE_FILE")
@LIB@
# fetch SRC-relative-path DEST
fetch() {
    mkdir -p "$(dirname "$2")"
    case "$SRC" in
        http://*|https://*) curl -fsSL --retry 5 --retry-delay 2 -o "$2" "$SRC/$1" ;;
        *) cp "$SRC/$1" "$2" ;;
    esac
}

# The node agent installs itself (kubeha-firstboot install, docs/media.md): the node config (kubeha.config=, pinned
# by kubeha.config.sha256=, else the source's node.toml) and this node's identity as the agent will resolve it, the
# bundle checked against bundle.toml (every file's sha256, and the signature when the node config carries
# bundle.public-key), then the bundle, the agent, its unit and the node config written into the installed system.
# A failed check names the file and writes nothing there. Test hook: KUBEHA_AGENT (a kubeha-firstboot to run instead
# of the source's; the source's is the one installed).
agent=${KUBEHA_AGENT:-}
if [ -z "$agent" ]; then
    agent=$OUT/kubeha-firstboot
    fetch agent/kubeha-firstboot "$agent"
    chmod 0755 "$agent"
fi
# The node and role %pre found (for the reports and the marker).
node=""; node_role=""
for a in $(cat "$OUT/kubeha-args" 2>/dev/null || true); do
    case "$a" in
        kubeha.name=*) node=${a#*=} ;;
        kubeha.role=*) node_role=${a#*=} ;;
    esac
done
# The agent's messages go to the installer's log as they are. When it refuses, its error line goes to
# kubeha.report= too (phase install, state failed), as %pre's refusals do: one line of at most 160 characters, only
# printable ASCII, quotes and backslashes replaced (report builds its JSON with printf); then the install stops with
# the agent's exit code.
rc=0
"$agent" install --sysroot "$SYSROOT" --from "$SRC" --cmdline "$CMDLINE_FILE" 2>"$OUT/kubeha-install.log" || rc=$?
cat "$OUT/kubeha-install.log" >&2
if [ "$rc" -ne 0 ]; then
    why=$(grep 'kubeha-firstboot: error: ' "$OUT/kubeha-install.log" | tail -n 1 | cut -c 26- \
        | tr '\t"\\' " '/" | LC_ALL=C tr -cd '[:print:]' | cut -c 1-160)
    [ -n "$why" ] || why="kubeha-firstboot install exited with $rc"
    report install failed "$node" "$node_role" "refused: $why"
    exit "$rc"
fi

# The install-once marker for people (the %pre guard of a later install reads the root filesystem's label,
# @ROOT_LABEL@, which needs no mount): which cluster and node this disk belongs to.
cat > "$SYSROOT/etc/kubeha/installed" <<KUBEHA_MARKER
cluster=@CLUSTER@
node=${node:-unknown}
role=${node_role:-auto}
root-label=@ROOT_LABEL@
installed=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KUBEHA_MARKER
chmod 0644 "$SYSROOT/etc/kubeha/installed"

# The whole IP protocols the role lets in (kubeha's port table: VRRP on masters, calico's IP-in-IP): the kickstart's
# firewall command only opens ports.
for p in $(cat "$OUT/kubeha-protocols" 2>/dev/null || true); do
    chroot "$SYSROOT" firewall-offline-cmd --add-protocol="$p" || echo "kubeha: could not allow IP protocol $p in firewalld"
done

# Keep the node's identity on the installed system's kernel command line for kubeha-firstboot, with the kernel
# arguments the cluster needs (systemd.unified_cgroup_hierarchy= when [install] cgroup is not the release's default).
KERNEL_ARGS='@KERNEL_ARGS@'
keep=$(cat "$OUT/kubeha-args" 2>/dev/null || true)
[ -z "$KERNEL_ARGS" ] || keep="${keep:+$keep }$KERNEL_ARGS"
if [ -n "$keep" ]; then
    chroot "$SYSROOT" grubby --update-kernel=ALL --args="$keep"
fi
report installed ok "$node" "$node_role"
