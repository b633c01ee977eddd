//! keepalived: the VIP (`k8s-master-lb`) over unicast VRRP between the masters.
//!
//! Every instance starts as `state BACKUP` with `nopreempt`, so a returning master never takes the VIP back and the
//! VIP moves only when its holder fails. Two track scripts, one check script:
//!
//! - `check_lb` (weight 0): the local nginx listens on :16443. When it fails the instance goes to FAULT and gives the
//!   VIP up at once. This is the failover guarantee: with `nopreempt` a backup never takes over from a live master
//!   whose priority merely dropped, so only FAULT (or death) can move the VIP, and the VIP is only useful where nginx
//!   runs.
//! - `check_apiserver` (weight -20): the local apiserver answers /healthz (only once this master runs one, i.e. its
//!   static pod manifest exists). Priorities are 150, 149, 148... in master order, so any master with a failing
//!   apiserver (≤ 130) ranks below every healthy one in an election (after a holder dies, or at a cold start).
//!
//! Only keywords keepalived 1.3.5 (EL7) already has are used: `script_user`/`enable_script_security` (1.3.0),
//! `unicast_src_ip`/`unicast_peer` (1.2.8), `vrrp_script` with `interval/timeout/weight/fall/rise`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use anyhow::{bail, Result};
use kubeha_model::Cluster;

/// Where the config goes.
pub const KEEPALIVED_CONF: &str = "/etc/keepalived/keepalived.conf";
/// Where the check script goes (root-owned, 0700: `enable_script_security` refuses scripts others could change; the
/// EL SELinux policy lets keepalived run scripts under /usr/libexec/keepalived).
pub const CHECK_SCRIPT: &str = "/usr/libexec/keepalived/check_apiserver.sh";
/// The highest priority (the first master); the others count down by one.
pub const BASE_PRIORITY: u32 = 150;
/// How much a failing local apiserver lowers a master's priority: more than the spread of all priorities, so a
/// master with a failing apiserver ranks below every healthy one.
pub const APISERVER_WEIGHT: i32 = -20;

/// Everything the keepalived renderer needs besides the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepalivedParams {
    /// This master's index in `masters[]`.
    pub index: usize,
    /// The interface holding this master's IP.
    pub interface: String,
    /// VRRP `auth_pass` (the secrets' vrrp-auth-pass; keepalived uses 8 characters).
    pub auth_pass: String,
    /// Where the check script lives (tests put it elsewhere).
    pub check_script: String,
}

/// The VRRP priority of master `index`.
pub fn priority(index: usize) -> u32 {
    BASE_PRIORITY - index as u32
}

/// Renders keepalived.conf for one master.
pub fn render_keepalived(c: &Cluster, p: &KeepalivedParams) -> Result<String> {
    let me = match c.masters.get(p.index) {
        Some(m) => m,
        None => bail!("master index {} is not in cluster.masters", p.index),
    };
    if c.masters.len() > 20 {
        bail!("cluster.masters: at most 20 masters are supported by the priority scheme");
    }
    if p.auth_pass.is_empty() || p.auth_pass.len() > 8 || p.auth_pass.contains(char::is_whitespace)
    {
        bail!("control-plane.vrrp-auth-pass: must be 1 to 8 characters without spaces");
    }
    let prefix = c.networking.node_prefix;
    let peers: Vec<Ipv4Addr> = c
        .masters
        .iter()
        .filter(|m| m.name != me.name)
        .map(|m| m.ip)
        .collect();
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "# Written by kubeha-firstboot; changes are overwritten.").unwrap();
    writeln!(
        w,
        "# VIP {} ({}) for cluster {}: every master starts as BACKUP with nopreempt.",
        c.endpoint.vip, c.endpoint.name, c.cluster.name
    )
    .unwrap();
    writeln!(w, "global_defs {{").unwrap();
    writeln!(w, "    router_id {}", me.name).unwrap();
    writeln!(w, "    script_user root").unwrap();
    writeln!(w, "    enable_script_security").unwrap();
    writeln!(w, "}}\n").unwrap();
    writeln!(w, "vrrp_script check_lb {{").unwrap();
    writeln!(w, "    script \"{} lb\"", p.check_script).unwrap();
    writeln!(
        w,
        "    interval 1\n    timeout 3\n    fall 2\n    rise 1\n    weight 0"
    )
    .unwrap();
    writeln!(w, "}}\n").unwrap();
    writeln!(w, "vrrp_script check_apiserver {{").unwrap();
    writeln!(w, "    script \"{} apiserver\"", p.check_script).unwrap();
    writeln!(
        w,
        "    interval 3\n    timeout 3\n    fall 3\n    rise 1\n    weight {APISERVER_WEIGHT}"
    )
    .unwrap();
    writeln!(w, "}}\n").unwrap();
    writeln!(w, "vrrp_instance VI_KUBEHA {{").unwrap();
    writeln!(w, "    state BACKUP\n    nopreempt").unwrap();
    writeln!(w, "    interface {}", p.interface).unwrap();
    writeln!(w, "    virtual_router_id {}", c.endpoint.vrrp_router_id).unwrap();
    writeln!(w, "    priority {}", priority(p.index)).unwrap();
    writeln!(w, "    advert_int 1").unwrap();
    writeln!(w, "    unicast_src_ip {}", me.ip).unwrap();
    writeln!(w, "    unicast_peer {{").unwrap();
    for ip in &peers {
        writeln!(w, "        {ip}").unwrap();
    }
    writeln!(w, "    }}").unwrap();
    writeln!(
        w,
        "    authentication {{\n        auth_type PASS\n        auth_pass {}\n    }}",
        p.auth_pass
    )
    .unwrap();
    writeln!(
        w,
        "    virtual_ipaddress {{\n        {}/{} dev {}\n    }}",
        c.endpoint.vip, prefix, p.interface
    )
    .unwrap();
    writeln!(
        w,
        "    track_script {{\n        check_lb\n        check_apiserver\n    }}"
    )
    .unwrap();
    writeln!(w, "}}").unwrap();
    Ok(s)
}

/// Paths the check script reads; tests point them into their own directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckParams {
    /// This master's IP (the apiserver certificate names it, so the probe can verify TLS).
    pub ip: Ipv4Addr,
    /// The load balancer port.
    pub lb_port: u16,
    /// The cluster CA certificate.
    pub ca_cert: String,
    /// The apiserver's static pod manifest: until it exists this master runs no apiserver and the probe passes.
    pub apiserver_manifest: String,
}

/// Renders the check script: `check_apiserver.sh lb` probes nginx, `check_apiserver.sh apiserver` the local apiserver.
pub fn render_check_script(p: &CheckParams) -> String {
    format!(
        r#"#!/bin/sh
# Written by kubeha-firstboot: keepalived's health checks (see keepalived.conf).
#   lb         the local nginx listens on :{port} (failure: FAULT, the VIP moves)
#   apiserver  the local apiserver answers /healthz (failure: priority -20), once this master runs one
LB_PORT={port}
MY_IP={ip}
CA={ca}
MANIFEST={manifest}
case "$1" in
lb)
    # A listening socket, not a connection: a connection through nginx would count as a failed upstream attempt
    # while no apiserver runs yet and make nginx mark every backend down.
    ss -ltn "sport = :$LB_PORT" | grep -q LISTEN
    ;;
apiserver)
    [ -e "$MANIFEST" ] || exit 0
    out=$(curl --silent --max-time 2 --cacert "$CA" "https://$MY_IP:{apiserver}/healthz") || exit 1
    [ "$out" = ok ]
    ;;
*)
    echo "usage: $0 lb|apiserver" >&2
    exit 2
    ;;
esac
"#,
        port = p.lb_port,
        ip = p.ip,
        ca = p.ca_cert,
        manifest = p.apiserver_manifest,
        apiserver = kubeha_model::kube::ports::APISERVER,
    )
}
