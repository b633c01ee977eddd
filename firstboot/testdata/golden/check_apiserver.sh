#!/bin/sh
# Written by kubeha-firstboot: keepalived's health checks (see keepalived.conf).
#   lb         the local nginx accepts connections on :16443 (failure: FAULT, the VIP moves)
#   apiserver  the local apiserver answers /healthz (failure: priority -20), once this master runs one
LB_PORT=16443
MY_IP=192.168.20.20
CA=/etc/kubernetes/pki/ca.crt
MANIFEST=/etc/kubernetes/manifests/kube-apiserver.yaml
case "$1" in
lb)
    exec timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$LB_PORT"
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
