# kubeha %post: enable the node agent; it forms or joins the cluster on first boot.
set -eu
systemctl enable kubeha-firstboot.service
@SSH_KEYS@
