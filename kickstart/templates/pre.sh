# kubeha %pre: find this node and its install disk, refuse to wipe a disk that already holds this cluster's node,
# write the storage, network and firewall commands for %include.
# Test hooks: KUBEHA_CMDLINE (a file instead of /proc/cmdline), KUBEHA_SYS (instead of /sys),
# KUBEHA_OUT (instead of /tmp), KUBEHA_DEV (instead of /dev), KUBEHA_CONSOLE (files instead of the consoles),
# KUBEHA_HALT (a command instead of halting; outside the installer nothing halts).
set -eu
CMDLINE_FILE=${KUBEHA_CMDLINE:-/proc/cmdline}
SYS=${KUBEHA_SYS:-/sys}
OUT=${KUBEHA_OUT:-/tmp}
DEV=${KUBEHA_DEV:-/dev}
cmdline=$(cat "$CMDLINE_FILE")

@LIB@

# The cluster's nodes, rendered from cluster.toml by kubeha-kickstart (one case arm a node): node_by_mac MAC prints
# the name of the node with that MAC; node_facts NAME sets node_role, node_ip, node_mac and node_disk (empty when
# unset), and fails for a name that is not one of the cluster's.
node_by_mac() {
    case "$1" in
@NODE_BY_MAC@
        *) return 1 ;;
    esac
}
node_facts() {
    case "$1" in
@NODE_FACTS@
        *) return 1 ;;
    esac
}
PREFIX_NETMASK='@NETMASK@'
GATEWAY='@GATEWAY@'
NAMESERVERS='@NAMESERVERS@'

name=$(arg kubeha.name)
[ -n "$name" ] || name='@DEFAULT_NAME@'
if [ -z "$name" ]; then
    # No name given: match one of this machine's MACs against the cluster's.
    for addr in "$SYS"/class/net/*/address; do
        [ -r "$addr" ] || continue
        mac=$(tr 'A-F' 'a-f' < "$addr")
        if hit=$(node_by_mac "$mac"); then name=$hit; break; fi
    done
fi
role=$(arg kubeha.role)
ip=""; mac=""; disk=""
if [ -n "$name" ]; then
    if ! node_facts "$name"; then
        echo "kubeha: kubeha.name=$name is not a node of cluster @CLUSTER@" >&2
        exit 1
    fi
    [ -n "$role" ] || role=$node_role
    ip=$node_ip
    mac=$node_mac
    disk=$node_disk
fi
[ -z "$(arg kubeha.disk)" ] || disk=$(arg kubeha.disk)

# The wipe guard: exactly one disk, the configured one, else the first non-removable whole disk that does not
# hold the install media. Everything else is hidden from the installer (ignoredisk --only-use).
media_disk=""
stage2=$(arg inst.stage2)
media_label=""
case "$stage2" in
    hd:LABEL=*) media_label=${stage2#hd:LABEL=}; media_label=${media_label%%:*} ;;
esac
if [ -n "$media_label" ] && command -v blkid >/dev/null 2>&1; then
    dev=$(blkid -L "$(printf "$media_label")" 2>/dev/null || true)
    if [ -n "$dev" ]; then
        media_disk=$(basename "$dev")
        # A partition's parent directory in sysfs is its disk.
        if [ -e "$SYS/class/block/$media_disk/partition" ]; then
            media_disk=$(basename "$(readlink -f "$SYS/class/block/$media_disk/..")")
        fi
    fi
fi
if [ -z "$disk" ]; then
    for d in "$SYS"/block/*; do
        n=$(basename "$d")
        case "$n" in loop*|ram*|zram*|sr*|fd*|dm-*|md*|nbd*|mmcblk*boot*) continue ;; esac
        [ "$(cat "$d/removable" 2>/dev/null || echo 1)" = 0 ] || continue
        [ "$(cat "$d/size" 2>/dev/null || echo 0)" != 0 ] || continue
        [ "$(cat "$d/ro" 2>/dev/null || echo 0)" = 0 ] || continue
        [ "$n" != "$media_disk" ] || continue
        disk=$n
        break
    done
fi
disk=${disk#/dev/}
if [ -z "$disk" ]; then
    echo "kubeha: no install disk: no non-removable disk found; set disk in cluster.toml or kubeha.disk=" >&2
    exit 1
fi

# The install-once guard: a kubeha install labels its root filesystem ROOT_LABEL (this cluster's), so a disk that
# has a filesystem with that label holds one of this cluster's nodes. Read with blkid's low-level probe, read-only:
# nothing is mounted or written. Unless kubeha.reinstall=1 says to, such a disk is not wiped: the message goes to
# the consoles and the machine halts (not reboots: firmware that boots the network or this medium first would
# bring it straight back here, in a loop; halted, the message stays on the screen).
ROOT_LABEL='@ROOT_LABEL@'
reinstall=$(arg kubeha.reinstall)
case "$reinstall" in
    ""|0|1) ;;
    *) echo "kubeha: kubeha.reinstall=$reinstall: expected 1 (reinstall) or 0; taking it as 0" >&2; reinstall=0 ;;
esac
kname=$(basename "$(readlink -f "$DEV/$disk" 2>/dev/null || echo "$DEV/$disk")")
holder=""
if command -v blkid >/dev/null 2>&1; then
    for dev in "$DEV/$kname" $(for p in "$SYS/class/block/$kname"/*/partition; do
            [ -e "$p" ] && echo "$DEV/$(basename "$(dirname "$p")")"; done); do
        [ -e "$dev" ] || continue
        if [ "$(blkid -p -s LABEL -o value "$dev" 2>/dev/null || true)" = "$ROOT_LABEL" ]; then
            holder=$(basename "$dev")
            break
        fi
    done
else
    echo "kubeha: no blkid: cannot tell whether disk $kname already holds a node of cluster @CLUSTER@" >&2
fi
if [ -n "$holder" ] && [ "$reinstall" = 1 ]; then
    echo "kubeha: disk $kname holds a node of cluster @CLUSTER@ ($holder, label $ROOT_LABEL): kubeha.reinstall=1, reinstalling"
elif [ -n "$holder" ]; then
    msg="kubeha: REFUSING TO INSTALL: disk $kname already holds a node of cluster @CLUSTER@ (filesystem $holder, label $ROOT_LABEL); this boot would reinstall '${name:-unknown}'.
kubeha: Nothing was written. Halting, not rebooting: a machine that boots the network or this medium first would come straight back here.
kubeha: To start the installed system, boot it from its disk: set the firmware boot order disk first, remove the medium, or rerun kubeha pxe without --install for it.
kubeha: To reinstall it on purpose, boot the installer with kubeha.reinstall=1: kubeha pxe --reinstall NAME, kubeha iso --append kubeha.reinstall=1, or type it at the boot prompt."
    printf '%s\n' "$msg" >&2
    report install failed "$name" "$role" "refused: disk $kname already holds a node of cluster @CLUSTER@"
    # The consoles and the halt only in the installer (lorax's runtime image has /.buildstamp), or the test hooks:
    # this script run anywhere else only says no.
    consoles=${KUBEHA_CONSOLE:-}
    [ -n "$consoles" ] || [ ! -e /.buildstamp ] || consoles="/dev/console /dev/tty1"
    for console in $consoles; do
        { printf '\n%s\n' "$msg" > "$console"; } 2>/dev/null || true
    done
    sync
    if [ -n "${KUBEHA_HALT:-}" ]; then
        $KUBEHA_HALT
    elif [ -e /.buildstamp ]; then
        # halt -f -f: straight to the kernel, without stopping the installer first (whose shutdown would scroll
        # the message away). Nothing of the disk is mounted.
        halt -f -f
    fi
    # Not reached when halting worked; otherwise %pre --erroronfail stops the install here.
    exit 3
fi

echo "kubeha: node '${name:-unknown}' role '${role:-auto}' installs to disk '$disk'"
report install running "$name" "$role"

cat > "$OUT/kubeha-storage.ks" <<KS
ignoredisk --only-use=$disk
zerombr
clearpart --all --initlabel --drives=$disk
reqpart --add-boot
part / --fstype=xfs --size=8192 --grow --ondisk=$disk --label=$ROOT_LABEL
bootloader --location=mbr --boot-drive=$disk
KS

if [ -n "$ip" ]; then
    dev=${mac:-link}
    ns=""
    [ -z "$NAMESERVERS" ] || ns=" --nameserver=$NAMESERVERS"
    gw=""
    [ -z "$GATEWAY" ] || gw=" --gateway=$GATEWAY"
    echo "network --device=$dev --bootproto=static --ip=$ip --netmask=$PREFIX_NETMASK$gw$ns --hostname=$name --activate --onboot=on" > "$OUT/kubeha-network.ks"
else
    echo "network --device=link --bootproto=dhcp --activate --onboot=on" > "$OUT/kubeha-network.ks"
fi

# The firewall for the role (kubeha's port table); a node whose role is not known yet gets the master's set, which
# holds the worker's. The whole IP protocols (VRRP, IP-in-IP) are added after the install (nochroot %post).
case "$role" in
    worker)
        echo '@FIREWALL_WORKER@' > "$OUT/kubeha-firewall.ks"
        echo '@PROTOCOLS_WORKER@' > "$OUT/kubeha-protocols"
        ;;
    *)
        echo '@FIREWALL_MASTER@' > "$OUT/kubeha-firewall.ks"
        echo '@PROTOCOLS_MASTER@' > "$OUT/kubeha-protocols"
        ;;
esac

# The kubeha.* arguments the installed system's kernel keeps for kubeha-firstboot.
keep=""
[ -z "$role" ] || keep="kubeha.role=$role"
[ -z "$name" ] || keep="$keep kubeha.name=$name"
for k in kubeha.bootstrap kubeha.report; do
    v=$(arg $k)
    [ -z "$v" ] || keep="$keep $k=$v"
done
printf '%s\n' "${keep# }" > "$OUT/kubeha-args"
