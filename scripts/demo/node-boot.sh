#!/usr/bin/env bash
# What systemd does at boot before it starts kubeha-firstboot.service, for a lab node (run inside the node's
# namespaces by cluster.sh's start_agent, after node-ns.sh): every unit the node has enabled (its wants links under its
# root, made by the systemctl stand-in's `enable`) is started. A node power-cycled after an earlier run enabled
# containerd, kubelet, nginx and keepalived then has them running again, with the files that run left behind (e.g. the
# static pods of a killed `kubeadm init`), as a real EL node would. A unit that fails to start does not stop the boot
# (as with systemd): its error is logged and the agent starts anyway. A fresh or reimaged root has nothing enabled.
#
#   node-boot.sh CMD...   (KHD_ROOT and the stand-ins on PATH, as start_agent sets them)
set -uo pipefail
wants=$KHD_ROOT/etc/systemd/system/multi-user.target.wants
for u in containerd keepalived nginx kubelet; do
  [ -L "$wants/$u.service" ] || continue
  echo "node boot: starting $u.service (enabled)"
  systemctl start "$u" || echo "node boot: $u.service failed to start" >&2
done
exec "$@"
