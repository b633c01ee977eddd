#!/usr/bin/env bash
# Runs CMD as lab node NAME: in its network namespace (entered by the caller with nsenter --net) AND its own mount
# namespace, in which the node's own directories are bind-mounted from its root over the host's paths. The real
# kubeadm, kubelet, containerd and the static pods' containers then read and write their real paths
# (/etc/kubernetes, /var/lib/kubelet, /var/lib/etcd, /run/containerd, ...) inside the node, while the host's binaries
# and libraries stay usable. (A chroot into the node's EL root is not enough: that root is installed from the demo's
# generated stub RPMs and cannot run the real daemons.)
#
#   nsenter --net=/run/netns/NS unshare --mount --propagation private scripts/demo/node-ns.sh ROOT CMD...
#
# The empty mount points on the host are created once (mkdir -p); nothing is mounted outside the node's namespace.
set -euo pipefail
ROOT=$1; shift
[ -d "$ROOT" ] || { echo "node-ns.sh: no node root $ROOT" >&2; exit 1; }
# Every directory Kubernetes, containerd and the agent's cluster steps use on a node.
NODE_DIRS=(/etc/kubernetes /etc/kubeha /etc/containerd /etc/cni /var/lib/kubelet /var/lib/etcd /var/lib/kubeha
  /var/lib/containerd /var/lib/cni /var/log/pods /var/log/containers /run/containerd /run/netns /opt/cni
  /usr/libexec/kubernetes)
# The node's own hostname lives in its own UTS namespace (unshare --uts): the hostname adapter sets it only there.
KHD_NODE_UTS=$(readlink /proc/self/ns/uts)
[ "$KHD_NODE_UTS" != "$(readlink "/proc/$PPID/ns/uts")" ] || { echo "node-ns.sh: not in a UTS namespace of its own (unshare --uts)" >&2; exit 1; }
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink "/proc/$PPID/ns/mnt")" ] || { echo "node-ns.sh: not in a mount namespace of its own (unshare --mount)" >&2; exit 1; }
export KHD_NODE_UTS
for d in "${NODE_DIRS[@]}"; do
  mkdir -p "$ROOT$d" "$d"
  mount --bind "$ROOT$d" "$d"
done
exec "$@"
