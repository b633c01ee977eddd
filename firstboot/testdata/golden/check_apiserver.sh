#!/bin/sh
# Written by kubeha-firstboot: keepalived's health checks (see keepalived.conf).
#   lb         the local nginx listens on :16443 (failure: FAULT, the VIP moves)
#   apiserver  the local apiserver answers /healthz (failure: priority -20), once this master runs one
LB_PORT=16443
MY_IP=192.168.20.20
CA=/etc/kubernetes/pki/ca.crt
MANIFEST=/etc/kubernetes/manifests/kube-apiserver.yaml
case "$1" in
lb)
    # A listening socket, not a connection: a connection through nginx would count as a failed upstream attempt
    # while no apiserver runs yet and make nginx mark every backend down.
    ss -ltn "sport = :$LB_PORT" | grep -q LISTEN
    ;;
apiserver)
    [ -e "$MANIFEST" ] || exit 0
    out=$(curl --silent --max-time 2 --cacert "$CA" "https://$MY_IP:6443/healthz") || exit 1
    [ "$out" = ok ]
    ;;
*)
    echo "usage: $0 lb|apiserver" >&2
    exit 2
    ;;
esac
