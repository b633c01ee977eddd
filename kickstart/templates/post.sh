# kubeha %post: enable the node agent; it forms or joins the cluster on first boot.
set -eu
systemctl enable kubeha-firstboot.service
# keepalived speaks VRRP (IP protocol 112) and calico IP-in-IP (protocol 4); kickstart's firewall command only
# opens ports.
firewall-offline-cmd --add-protocol=vrrp || echo "kubeha: could not allow vrrp in firewalld"
firewall-offline-cmd --add-protocol=ipip || echo "kubeha: could not allow ipip in firewalld"
@SSH_KEYS@
