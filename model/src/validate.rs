//! Validation of a parsed [`Cluster`]: every rule reports its field path (`masters[1].ip`) and, when the TOML text
//! is at hand, the line it came from. All problems are collected, not only the first.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::cluster::{normalize_mac, CgroupVersion, Cluster, Runtime};

pub use crate::diagnostic::{Diagnostic, Severity};

struct Report {
    diags: Vec<Diagnostic>,
}

impl Report {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, path, message)
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, path, message)
    }
    fn push(&mut self, severity: Severity, path: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity,
            path: path.into(),
            message: message.into(),
            line: None,
        })
    }
}

/// Validates without source lines.
pub fn validate(c: &Cluster) -> Vec<Diagnostic> {
    validate_with_source(c, None)
}

/// Validates and, given the TOML text the cluster was parsed from, attaches line numbers.
pub fn validate_with_source(c: &Cluster, source: Option<&str>) -> Vec<Diagnostic> {
    let mut r = Report { diags: Vec::new() };
    check_cluster(c, &mut r);
    check_endpoint(c, &mut r);
    check_nodes(c, &mut r);
    check_networks(c, &mut r);
    check_misc(c, &mut r);
    if let Some(src) = source {
        if let Ok(doc) = src.parse::<toml_edit::ImDocument<String>>() {
            for d in &mut r.diags {
                d.line = line_of(&doc, src, &d.path);
            }
        }
    }
    r.diags
}

/// Whether `s` is an RFC 1123 DNS label (lowercase alphanumerics and `-`, at most 63, alphanumeric at both ends).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is an RFC 1123 DNS subdomain (dot-separated labels, at most 253), as Kubernetes Node names must be.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn check_cluster(c: &Cluster, r: &mut Report) {
    let s = &c.cluster;
    if !is_dns_label(&s.name) {
        r.error(
            "cluster.name",
            format!(
                "'{}' is not an RFC 1123 label (lowercase letters, digits and '-', at most 63)",
                s.name
            ),
        );
    }
    let v = s.kubernetes_version;
    if let Err(e) = v.support() {
        r.error("cluster.kubernetes-version", e);
    }
    if s.container_runtime == Runtime::Docker && !v.has_dockershim() {
        r.error(
            "cluster.container-runtime",
            format!(
                "docker needs dockershim, which Kubernetes removed in 1.24; {v} needs containerd"
            ),
        );
    }
    if let Some(repo) = &s.image_repository {
        if !is_image_repository(repo) {
            r.error(
                "cluster.image-repository",
                format!("'{repo}' is not a registry prefix like registry.example:5000/k8s"),
            );
        }
    }
    for (i, m) in s.registry_mirrors.iter().enumerate() {
        if !is_image_repository(&m.registry) {
            r.error(
                format!("cluster.registry-mirrors[{i}].registry"),
                format!("'{}' is not a registry host", m.registry),
            );
        }
        if !(m.endpoint.starts_with("http://") || m.endpoint.starts_with("https://")) {
            r.error(
                format!("cluster.registry-mirrors[{i}].endpoint"),
                format!("'{}' is not an http(s) URL", m.endpoint),
            );
        }
    }
}

fn is_image_repository(s: &str) -> bool {
    let mut parts = s.split('/');
    let host = parts.next().unwrap_or("");
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    let host_ok = !h.is_empty()
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    let path_ok = parts.all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && p.as_bytes()[0].is_ascii_alphanumeric()
    });
    host_ok && port_ok && path_ok
}

/// Ports the masters already use: the LB port must not take one of them.
const RESERVED_PORTS: &[(u16, u16, &str)] = {
    use crate::kube::ports::*;
    &[
        (APISERVER, APISERVER, "kube-apiserver"),
        (ETCD_CLIENT, ETCD_PEER, "etcd"),
        (
            ATTEST_PORT,
            ATTEST_PORT,
            "kubeha-firstboot's attestation listener",
        ),
        (10248, 10260, "kubelet and control-plane components"),
        (NODE_PORTS.0, NODE_PORTS.1, "the NodePort range"),
    ]
};

fn check_endpoint(c: &Cluster, r: &mut Report) {
    let e = &c.endpoint;
    if e.port == 0 {
        r.error(
            "endpoint.port",
            "port 0 is not a port; the guide uses 16443",
        );
    } else if let Some((_, _, what)) = RESERVED_PORTS
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&e.port))
    {
        r.error(
            "endpoint.port",
            format!("port {} is used by {what} on the masters; the load balancer needs its own (e.g. 16443)", e.port),
        );
    }
    if !(1..=255).contains(&e.vrrp_router_id) {
        r.error(
            "endpoint.vrrp-router-id",
            format!("{} is not a VRRP router id (1-255)", e.vrrp_router_id),
        );
    }
    if !is_dns_subdomain(&e.name) {
        r.error(
            "endpoint.name",
            format!("'{}' is not an RFC 1123 host name", e.name),
        );
    }
    if let Some(i) = &e.interface {
        if i.is_empty() || i.len() > 15 || i.contains(['/', ' ']) {
            r.error(
                "endpoint.interface",
                format!("'{i}' is not an interface name"),
            );
        }
    }
    if !usable_host_ip(e.vip) {
        r.error(
            "endpoint.vip",
            format!("{} is not a usable unicast address", e.vip),
        );
    }
    for (role, list) in [("masters", &c.masters), ("workers", &c.workers)] {
        for (i, n) in list.iter().enumerate() {
            if n.ip == e.vip {
                r.error(
                    "endpoint.vip",
                    format!(
                        "the VIP {} is also the address of {role}[{i}] ({})",
                        e.vip, n.name
                    ),
                );
            }
        }
    }
    if let Some(net) = c.node_network() {
        if !net.contains(&e.vip) {
            r.error(
                "endpoint.vip",
                format!("the VIP {} is outside the masters' subnet {net}; keepalived can only move it within one L2 network", e.vip),
            );
        } else if e.vip == net.network() || e.vip == net.broadcast() {
            r.error(
                "endpoint.vip",
                format!("{} is the network or broadcast address of {net}", e.vip),
            );
        }
    }
}

fn usable_host_ip(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_link_local())
}

fn check_nodes(c: &Cluster, r: &mut Report) {
    if c.masters.is_empty() {
        r.error("masters", "at least one master is needed");
    } else if c.masters.len().is_multiple_of(2) {
        r.warn(
            "masters",
            format!(
                "{} masters give etcd no more fault tolerance than {}; use an odd number",
                c.masters.len(),
                c.masters.len() - 1
            ),
        );
    }
    let net = c.node_network();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut ips: HashMap<Ipv4Addr, String> = HashMap::new();
    let mut macs: HashMap<String, String> = HashMap::new();
    names.insert(c.endpoint.name.clone(), "endpoint.name".into());
    for (list_name, list) in [("masters", &c.masters), ("workers", &c.workers)] {
        for (i, n) in list.iter().enumerate() {
            let p = format!("{list_name}[{i}]");
            if !is_dns_subdomain(&n.name) {
                r.error(
                    format!("{p}.name"),
                    format!(
                        "'{}' is not an RFC 1123 name (lowercase letters, digits, '-' and '.')",
                        n.name
                    ),
                );
            }
            if let Some(prev) = names.insert(n.name.clone(), format!("{p}.name")) {
                r.error(
                    format!("{p}.name"),
                    format!("duplicate name '{}' (also {prev})", n.name),
                );
            }
            if !usable_host_ip(n.ip) {
                r.error(
                    format!("{p}.ip"),
                    format!("{} is not a usable unicast address", n.ip),
                );
            }
            if let Some(prev) = ips.insert(n.ip, format!("{p}.ip")) {
                r.error(
                    format!("{p}.ip"),
                    format!("duplicate IP {} (also {prev})", n.ip),
                );
            }
            if list_name == "masters" {
                if let Some(net) = net {
                    if !net.contains(&n.ip) {
                        r.error(
                            format!("{p}.ip"),
                            format!("{} is outside the masters' subnet {net} (masters[0].ip/networking.node-prefix); all masters share the VIP's L2 network", n.ip),
                        );
                    }
                }
            }
            if let Some(mac) = &n.mac {
                match normalize_mac(mac) {
                    None => r.error(
                        format!("{p}.mac"),
                        format!("'{mac}' is not a MAC address like 52:54:00:12:34:56"),
                    ),
                    Some(m) if !is_unicast_mac(&m) => r.error(
                        format!("{p}.mac"),
                        format!("{m} is not a NIC's address (all-zero, or the multicast bit is set in its first octet)"),
                    ),
                    Some(m) => {
                        if let Some(prev) = macs.insert(m.clone(), format!("{p}.mac")) {
                            r.error(
                                format!("{p}.mac"),
                                format!("duplicate MAC {m} (also {prev})"),
                            );
                        }
                    }
                }
            }
            if let Some(d) = &n.disk {
                if d.is_empty() || d.contains(char::is_whitespace) {
                    r.error(format!("{p}.disk"), format!("'{d}' is not a disk name"));
                }
            }
        }
    }
}

fn check_networks(c: &Cluster, r: &mut Report) {
    let n = &c.networking;
    if !(8..=30).contains(&n.node_prefix) {
        r.error(
            "networking.node-prefix",
            format!(
                "/{} is not a usable node network prefix (8-30)",
                n.node_prefix
            ),
        );
    }
    for (field, net) in [
        ("networking.pod-subnet", n.pod_subnet),
        ("networking.service-subnet", n.service_subnet),
    ] {
        if net.trunc() != net {
            r.error(
                field,
                format!("{net} has host bits set; did you mean {}?", net.trunc()),
            );
        }
    }
    if n.service_subnet.prefix_len() < 12 {
        r.error(
            "networking.service-subnet",
            format!(
                "{} is larger than the /12 the apiserver accepts",
                n.service_subnet
            ),
        );
    }
    if n.service_subnet.prefix_len() > 28 {
        r.error(
            "networking.service-subnet",
            format!(
                "{} is too small: kubeadm gives the cluster DNS service the subnet's 10th address (use /28 or larger, \
                 e.g. 10.96.0.0/12)",
                n.service_subnet
            ),
        );
    }
    if n.pod_subnet.prefix_len() > 24 {
        r.error(
            "networking.pod-subnet",
            format!(
                "{} is too small: each node takes a /24 by default",
                n.pod_subnet
            ),
        );
    }
    if overlaps(n.pod_subnet, n.service_subnet) {
        r.error(
            "networking.service-subnet",
            format!(
                "{} overlaps networking.pod-subnet {}",
                n.service_subnet, n.pod_subnet
            ),
        );
    }
    if let Some(node_net) = c.node_network() {
        for (field, net) in [
            ("networking.pod-subnet", n.pod_subnet),
            ("networking.service-subnet", n.service_subnet),
        ] {
            if overlaps(net, node_net) {
                r.error(field, format!("{net} overlaps the node network {node_net}"));
            }
        }
    }
    for (list_name, list) in [("masters", &c.masters), ("workers", &c.workers)] {
        for (i, node) in list.iter().enumerate() {
            for (field, net) in [
                ("pod-subnet", n.pod_subnet),
                ("service-subnet", n.service_subnet),
            ] {
                if net.contains(&node.ip) {
                    r.error(
                        format!("{list_name}[{i}].ip"),
                        format!("{} lies inside networking.{field} {net}", node.ip),
                    );
                }
            }
        }
    }
    if !is_dns_subdomain(&n.dns_domain) {
        r.error(
            "networking.dns-domain",
            format!("'{}' is not a DNS domain", n.dns_domain),
        );
    }
    if n.gateway.is_none() {
        r.warn(
            "networking.gateway",
            "unset: the kickstart's static addressing gives the nodes no default route, and kubelet/kubeadm would \
             otherwise pick the node IP from the default route (kubeha's own kubeadm files set node-ip and \
             advertiseAddress explicitly); set the node network's router, e.g. gateway = \"192.168.20.1\"",
        );
    }
    if n.gateway == Some(c.endpoint.vip) {
        r.error(
            "endpoint.vip",
            format!(
                "the VIP {} is also networking.gateway: keepalived would take the router's address",
                c.endpoint.vip
            ),
        );
    }
    if let (Some(gw), Some(net)) = (n.gateway, c.node_network()) {
        if !net.contains(&gw) {
            r.error(
                "networking.gateway",
                format!("{gw} is outside the node network {net}"),
            );
        }
    }
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The longest bootstrap-token TTL: the CA's own validity (a token that outlives its CA is meaningless, and
/// Go's time.Duration, which kubeadm parses the TTL into, overflows at about 2.5 million hours).
pub const MAX_TOKEN_TTL_HOURS: u32 = (crate::secrets::CA_VALIDITY_DAYS * 24) as u32;

/// Whether a normalized MAC (aa:bb:...) can be a NIC's: not all-zero, not multicast/broadcast.
fn is_unicast_mac(m: &str) -> bool {
    let first = u8::from_str_radix(&m[..2], 16).unwrap_or(1);
    first & 1 == 0 && m.bytes().any(|b| b != b'0' && b != b':')
}

/// Whether `s` is a tz database name (`UTC`, `Europe/Berlin`, `America/Argentina/Buenos_Aires`, `Etc/GMT+5`):
/// what anaconda's `timezone` and `timedatectl set-timezone` accept, and never a path out of /usr/share/zoneinfo.
pub fn is_timezone_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && !part.starts_with('-')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
        })
}

/// Whether `k` is one OpenSSH public key line (`type base64 [comment]`), as authorized_keys and the kickstart's
/// `sshkey` take it: no line breaks, no quotes or backslashes the kickstart would have to escape.
pub fn is_ssh_public_key(k: &str) -> bool {
    let mut it = k.split(' ');
    let key_type = it.next().unwrap_or("");
    let typed = key_type.starts_with("ssh-")
        || key_type.starts_with("ecdsa-")
        || key_type.starts_with("sk-");
    let body = it.next().unwrap_or("");
    typed
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        && !k.contains(['\n', '\r', '"', '\\', '\t', '\0'])
}

fn check_misc(c: &Cluster, r: &mut Report) {
    if c.cluster.token_ttl_hours > MAX_TOKEN_TTL_HOURS {
        r.error(
            "cluster.token-ttl-hours",
            format!(
                "{} hours outlives the cluster CA ({MAX_TOKEN_TTL_HOURS} hours); use 0 for a token that never expires",
                c.cluster.token_ttl_hours
            ),
        );
    }
    if c.cni.version.is_empty() || c.cni.version.contains(char::is_whitespace) {
        r.error(
            "cni.version",
            format!("'{}' is not an image tag", c.cni.version),
        );
    }
    if c.cni.manifest.is_empty() || c.cni.manifest.contains('/') || c.cni.manifest.starts_with('.')
    {
        r.error(
            "cni.manifest",
            format!(
                "'{}' must be a plain file name in the bundle's files/",
                c.cni.manifest
            ),
        );
    }
    for (i, s) in c.ntp.servers.iter().enumerate() {
        if s.is_empty() || s.contains(char::is_whitespace) {
            r.error(
                format!("ntp.servers[{i}]"),
                format!("'{s}' is not a host name or address"),
            );
        }
    }
    if let Some(p) = &c.proxy {
        for (field, v) in [("proxy.http", &p.http), ("proxy.https", &p.https)] {
            if let Some(u) = v {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    r.error(field, format!("'{u}' is not an http(s) URL"));
                }
            }
        }
    }
    let i = &c.install;
    if !(7..=9).contains(&i.el) {
        r.error(
            "install.el",
            format!("EL{} is not supported: use 7, 8 or 9", i.el),
        );
    }
    if i.el == 7 && c.cluster.kubernetes_version.minor > 28 {
        r.warn(
            "install.el",
            "EL7 is past its end of life; the Kubernetes package repositories stopped building for it",
        );
    }
    if (7..=9).contains(&i.el) {
        check_cgroup(c, r);
    }
    if let Some(h) = &i.root_password_hash {
        let ok =
            h.starts_with('$') && h.matches('$').count() >= 3 && !h.contains(char::is_whitespace);
        if !ok {
            r.error(
                "install.root-password-hash",
                "not a crypt(3) hash (e.g. from `openssl passwd -6`); plain passwords are never accepted",
            );
        }
    }
    for (k, key) in i.root_ssh_keys.iter().enumerate() {
        if !is_ssh_public_key(key) {
            r.error(
                format!("install.root-ssh-keys[{k}]"),
                "not a single-line OpenSSH public key (type, base64 key, optional comment)",
            );
        }
    }
    if !is_timezone_name(&i.timezone) {
        r.error(
            "install.timezone",
            format!(
                "'{}' is not a time zone name like UTC or Europe/Berlin",
                i.timezone.escape_debug()
            ),
        );
    }
}

/// The cgroup hierarchy against the EL release and the kubelet: EL7 and EL8 boot cgroup v1, which a kubelet ≥ 1.35
/// refuses unless told; EL7 cannot boot v2; EL9's v1 is deprecated.
fn check_cgroup(c: &Cluster, r: &mut Report) {
    let el = c.install.el;
    let v = c.cluster.kubernetes_version;
    match c.install.cgroup {
        None if CgroupVersion::el_default(el) == CgroupVersion::V1 && v.refuses_cgroup_v1() => {
            let keep_v1 = "cgroup = \"v1\"` to keep v1 (kubelet failCgroupV1: false, SystemVerification ignored by \
                           name)";
            let fixes = if CgroupVersion::V2.el_can_boot(el) {
                format!(
                    "set `[install] cgroup = \"v2\"` (EL{el} then boots the unified hierarchy: the kickstart adds \
                     systemd.unified_cgroup_hierarchy=1 to the installed kernel command line), or `{keep_v1}"
                )
            } else {
                format!(
                    "set `[install] {keep_v1}; `cgroup = \"v2\"` is EL8 only: EL{el} cannot boot the unified \
                     hierarchy"
                )
            };
            r.error(
                "install.cgroup",
                format!(
                    "EL{el} boots cgroup v1 and Kubernetes {v} refuses cgroup v1 (kubelet failCgroupV1, kubeadm's \
                     SystemVerification preflight check, from 1.35): {fixes}"
                ),
            );
        }
        Some(cg) if !cg.el_can_boot(el) => r.error(
            "install.cgroup",
            format!(
                "EL{el} cannot boot cgroup {cg}: its kernel has no usable unified hierarchy; use cgroup = \"v1\" \
                 (or EL8/EL9 for v2)"
            ),
        ),
        Some(CgroupVersion::V1) if CgroupVersion::el_default(el) == CgroupVersion::V2 => r.warn(
            "install.cgroup",
            format!(
                "cgroup v1 on EL{el} is deprecated: the kickstart adds systemd.unified_cgroup_hierarchy=0 to the \
                 installed kernel command line; prefer the default v2"
            ),
        ),
        _ => {}
    }
}

/// Finds the line of a field path (`masters[1].ip`, `endpoint.vip`) in the TOML text; falls back to the nearest
/// parent that exists (a missing key is reported at its table).
fn line_of(doc: &toml_edit::ImDocument<String>, src: &str, path: &str) -> Option<usize> {
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best = None;
    for seg in path.split('.') {
        let (key, index) = match seg.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let next = match item.get(key) {
            Some(i) => i,
            None => break,
        };
        item = next;
        if let Some(idx) = index {
            item = match item.get(idx) {
                Some(i) => i,
                None => break,
            };
        }
        if let Some(span) = span_of(item) {
            best = Some(span);
        }
    }
    best.map(|start| src[..start.min(src.len())].matches('\n').count() + 1)
}

fn span_of(item: &toml_edit::Item) -> Option<usize> {
    match item {
        toml_edit::Item::Value(v) => v.span().map(|s| s.start),
        toml_edit::Item::Table(t) => t.span().map(|s| s.start),
        toml_edit::Item::ArrayOfTables(a) => a.span().map(|s| s.start),
        toml_edit::Item::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::DEFAULT_CLUSTER_TOML;

    /// Applies `edit` (a search/replace on the default TOML, or an appended block) and returns the diagnostics.
    fn check(edit: &dyn Fn(String) -> String) -> Vec<Diagnostic> {
        let text = edit(DEFAULT_CLUSTER_TOML.to_string());
        let c = Cluster::parse(&text, "t")
            .unwrap_or_else(|e| panic!("test input must parse: {e}\n{text}"));
        validate_with_source(&c, Some(&text))
    }

    /// Replaces the `kubernetes-version = ...` line, whatever the default release is.
    fn set_version(s: &str, v: &str) -> String {
        s.lines()
            .map(|l| {
                if l.starts_with("kubernetes-version = ") {
                    format!("kubernetes-version = \"{v}\"")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn rep<'a>(from: &'a str, to: &'a str) -> impl Fn(String) -> String + 'a {
        move |s: String| {
            assert!(s.contains(from), "default TOML lacks {from:?}");
            s.replacen(from, to, 1)
        }
    }

    #[test]
    fn default_is_valid() {
        // Valid; the one warning is the gateway `config init` cannot know (it carries a commented example).
        let d = check(&|s| s);
        assert!(d.iter().all(|d| !d.is_error()), "{d:?}");
        assert_eq!(
            d.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(),
            ["networking.gateway"],
            "{d:?}"
        );
        assert!(DEFAULT_CLUSTER_TOML.contains("\n# gateway = \"192.168.20.1\"\n"));
        // With a gateway: no finding at all.
        let d = check(&|s: String| {
            s.replace(
                "node-prefix = 24\n",
                "node-prefix = 24\ngateway = \"192.168.20.1\"\n",
            )
        });
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn rules_table() {
        // (case, edit, expected path, expected severity, expected substring)
        type Case<'a> = (
            &'a str,
            Box<dyn Fn(String) -> String + 'a>,
            &'a str,
            Severity,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "vip equals master",
                Box::new(rep("vip = \"192.168.20.10\"", "vip = \"192.168.20.21\"")),
                "endpoint.vip",
                Severity::Error,
                "also the address of masters[1]",
            ),
            (
                "vip equals worker",
                Box::new(rep("vip = \"192.168.20.10\"", "vip = \"192.168.20.33\"")),
                "endpoint.vip",
                Severity::Error,
                "workers[3]",
            ),
            (
                "vip outside subnet",
                Box::new(rep("vip = \"192.168.20.10\"", "vip = \"192.168.21.10\"")),
                "endpoint.vip",
                Severity::Error,
                "outside the masters' subnet",
            ),
            (
                "vip is broadcast",
                Box::new(rep("vip = \"192.168.20.10\"", "vip = \"192.168.20.255\"")),
                "endpoint.vip",
                Severity::Error,
                "broadcast",
            ),
            (
                "duplicate name",
                Box::new(rep("name = \"k8s-node02\"", "name = \"k8s-master01\"")),
                "workers[1].name",
                Severity::Error,
                "duplicate name",
            ),
            (
                "name clashes with vip name",
                Box::new(rep("name = \"k8s-node02\"", "name = \"k8s-master-lb\"")),
                "workers[1].name",
                Severity::Error,
                "endpoint.name",
            ),
            (
                "duplicate ip",
                Box::new(rep("ip = \"192.168.20.31\"", "ip = \"192.168.20.30\"")),
                "workers[1].ip",
                Severity::Error,
                "duplicate IP",
            ),
            (
                "duplicate mac",
                Box::new(|s: String| {
                    s.replacen(
                        "ip = \"192.168.20.30\"",
                        "ip = \"192.168.20.30\"\nmac = \"52:54:00:00:00:01\"",
                        1,
                    )
                    .replacen(
                        "ip = \"192.168.20.31\"",
                        "ip = \"192.168.20.31\"\nmac = \"52-54-00-00-00-01\"",
                        1,
                    )
                }),
                "workers[1].mac",
                Severity::Error,
                "duplicate MAC",
            ),
            (
                "bad mac",
                Box::new(rep(
                    "ip = \"192.168.20.30\"",
                    "ip = \"192.168.20.30\"\nmac = \"52:54:00:00:00\"",
                )),
                "workers[0].mac",
                Severity::Error,
                "not a MAC",
            ),
            (
                "uppercase name",
                Box::new(rep("name = \"k8s-master02\"", "name = \"K8s-Master02\"")),
                "masters[1].name",
                Severity::Error,
                "RFC 1123",
            ),
            (
                "underscore name",
                Box::new(rep("name = \"k8s-node01\"", "name = \"k8s_node01\"")),
                "workers[0].name",
                Severity::Error,
                "RFC 1123",
            ),
            (
                "cluster name",
                Box::new(rep("name = \"kubeha\"", "name = \"-kubeha\"")),
                "cluster.name",
                Severity::Error,
                "RFC 1123",
            ),
            (
                "master outside subnet",
                Box::new(rep("ip = \"192.168.20.22\"", "ip = \"192.168.30.22\"")),
                "masters[2].ip",
                Severity::Error,
                "outside the masters' subnet",
            ),
            (
                "pod overlaps service",
                Box::new(rep(
                    "pod-subnet = \"10.244.0.0/16\"",
                    "pod-subnet = \"10.96.0.0/16\"",
                )),
                "networking.service-subnet",
                Severity::Error,
                "overlaps networking.pod-subnet",
            ),
            (
                "pod overlaps nodes",
                Box::new(rep(
                    "pod-subnet = \"10.244.0.0/16\"",
                    "pod-subnet = \"192.168.0.0/16\"",
                )),
                "networking.pod-subnet",
                Severity::Error,
                "overlaps the node network",
            ),
            (
                "service overlaps nodes",
                Box::new(rep(
                    "service-subnet = \"10.96.0.0/12\"",
                    "service-subnet = \"192.168.16.0/20\"",
                )),
                "networking.service-subnet",
                Severity::Error,
                "overlaps the node network",
            ),
            (
                "host bits",
                Box::new(rep(
                    "pod-subnet = \"10.244.0.0/16\"",
                    "pod-subnet = \"10.244.1.0/16\"",
                )),
                "networking.pod-subnet",
                Severity::Error,
                "host bits",
            ),
            (
                "service too big",
                Box::new(rep(
                    "service-subnet = \"10.96.0.0/12\"",
                    "service-subnet = \"10.0.0.0/8\"",
                )),
                "networking.service-subnet",
                Severity::Error,
                "/12",
            ),
            (
                "unsupported version",
                Box::new(|s: String| set_version(&s, "1.16.3")),
                "cluster.kubernetes-version",
                Severity::Error,
                "not supported",
            ),
            (
                "future version",
                Box::new(|s: String| set_version(&s, "1.99.0")),
                "cluster.kubernetes-version",
                Severity::Error,
                "newer",
            ),
            (
                "docker on 1.31",
                Box::new(rep(
                    "container-runtime = \"containerd\"",
                    "container-runtime = \"docker\"",
                )),
                "cluster.container-runtime",
                Severity::Error,
                "dockershim",
            ),
            (
                "lb port 6443",
                Box::new(rep("port = 16443", "port = 6443")),
                "endpoint.port",
                Severity::Error,
                "kube-apiserver",
            ),
            (
                "lb port etcd",
                Box::new(rep("port = 16443", "port = 2380")),
                "endpoint.port",
                Severity::Error,
                "etcd",
            ),
            (
                "lb port nodeport",
                Box::new(rep("port = 16443", "port = 30080")),
                "endpoint.port",
                Severity::Error,
                "NodePort",
            ),
            (
                "lb port zero",
                Box::new(rep("port = 16443", "port = 0")),
                "endpoint.port",
                Severity::Error,
                "not a port",
            ),
            (
                "router id",
                Box::new(rep("vrrp-router-id = 51", "vrrp-router-id = 256")),
                "endpoint.vrrp-router-id",
                Severity::Error,
                "1-255",
            ),
            (
                "zero masters",
                Box::new(|s: String| {
                    let start = s.find("[[masters]]").unwrap();
                    let end = s.find("[[workers]]").unwrap();
                    format!("{}{}", &s[..start], &s[end..])
                }),
                "masters",
                Severity::Error,
                "at least one master",
            ),
            (
                "even masters",
                Box::new(|s: String| {
                    let start = s.find("[[masters]]\nname = \"k8s-master03\"").unwrap();
                    let end = s.find("[[workers]]").unwrap();
                    format!("{}{}", &s[..start], &s[end..])
                }),
                "masters",
                Severity::Warning,
                "odd number",
            ),
            (
                "el version",
                Box::new(rep("el = 9", "el = 6")),
                "install.el",
                Severity::Error,
                "EL6",
            ),
            (
                "el8 with 1.36 and no cgroup choice",
                Box::new(rep("el = 9", "el = 8")),
                "install.cgroup",
                Severity::Error,
                "set `[install] cgroup = \"v2\"`",
            ),
            (
                "el8 with 1.36 names the v1 fix too",
                Box::new(rep("el = 9", "el = 8")),
                "install.cgroup",
                Severity::Error,
                "or `cgroup = \"v1\"` to keep v1",
            ),
            (
                "el7 with 1.36 and no cgroup choice",
                Box::new(rep("el = 9", "el = 7")),
                "install.cgroup",
                Severity::Error,
                "`cgroup = \"v2\"` is EL8 only: EL7 cannot",
            ),
            (
                "el7 with cgroup v2",
                Box::new(rep("el = 9", "el = 7\ncgroup = \"v2\"")),
                "install.cgroup",
                Severity::Error,
                "EL7 cannot boot cgroup v2",
            ),
            (
                "el9 with cgroup v1",
                Box::new(rep("el = 9", "el = 9\ncgroup = \"v1\"")),
                "install.cgroup",
                Severity::Warning,
                "deprecated",
            ),
            (
                "no gateway",
                Box::new(|s: String| s),
                "networking.gateway",
                Severity::Warning,
                "pick the node IP from the default route",
            ),
            (
                "plain password",
                Box::new(rep("el = 9", "el = 9\nroot-password-hash = \"hunter2\"")),
                "install.root-password-hash",
                Severity::Error,
                "crypt",
            ),
            (
                "bad ssh key",
                Box::new(rep("el = 9", "el = 9\nroot-ssh-keys = [\"not a key\"]")),
                "install.root-ssh-keys[0]",
                Severity::Error,
                "OpenSSH",
            ),
            (
                "bad image repo",
                Box::new(rep(
                    "token-ttl-hours",
                    "image-repository = \"Registry Example/x\"\ntoken-ttl-hours",
                )),
                "cluster.image-repository",
                Severity::Error,
                "registry prefix",
            ),
            (
                "bad ntp",
                Box::new(rep("servers = []", "servers = [\"\"]")),
                "ntp.servers[0]",
                Severity::Error,
                "host name",
            ),
            (
                "bad cni manifest",
                Box::new(rep(
                    "manifest = \"calico.yaml\"",
                    "manifest = \"../calico.yaml\"",
                )),
                "cni.manifest",
                Severity::Error,
                "plain file name",
            ),
            (
                "vip is the gateway",
                Box::new(rep("# gateway = \"192.168.20.1\"", "gateway = \"192.168.20.10\"")),
                "endpoint.vip",
                Severity::Error,
                "networking.gateway",
            ),
            (
                "service subnet /30",
                Box::new(rep("service-subnet = \"10.96.0.0/12\"", "service-subnet = \"10.96.0.0/30\"")),
                "networking.service-subnet",
                Severity::Error,
                "10th address",
            ),
            (
                "token ttl overflows",
                Box::new(rep("token-ttl-hours = 8760", "token-ttl-hours = 4294967295")),
                "cluster.token-ttl-hours",
                Severity::Error,
                "outlives the cluster CA",
            ),
            (
                "multicast mac",
                Box::new(rep("ip = \"192.168.20.21\"", "ip = \"192.168.20.21\"\nmac = \"01:00:5e:00:00:01\"")),
                "masters[1].mac",
                Severity::Error,
                "multicast",
            ),
            (
                "all-zero mac",
                Box::new(rep("ip = \"192.168.20.21\"", "ip = \"192.168.20.21\"\nmac = \"00-00-00-00-00-00\"")),
                "masters[1].mac",
                Severity::Error,
                "all-zero",
            ),
            (
                "broadcast mac",
                Box::new(rep("ip = \"192.168.20.21\"", "ip = \"192.168.20.21\"\nmac = \"ff:ff:ff:ff:ff:ff\"")),
                "masters[1].mac",
                Severity::Error,
                "multicast",
            ),
            (
                "time zone path traversal",
                Box::new(rep("timezone = \"UTC\"", "timezone = \"../../etc/shadow\"")),
                "install.timezone",
                Severity::Error,
                "time zone name",
            ),
            (
                "time zone absolute path",
                Box::new(rep("timezone = \"UTC\"", "timezone = \"/etc/shadow\"")),
                "install.timezone",
                Severity::Error,
                "time zone name",
            ),
            (
                "ssh key with a newline",
                Box::new(rep(
                    "el = 9",
                    "el = 9\nroot-ssh-keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA op\\nrm -rf /\"]",
                )),
                "install.root-ssh-keys[0]",
                Severity::Error,
                "single-line",
            ),
        ];
        for (case, edit, path, sev, needle) in &cases {
            let diags = check(edit.as_ref());
            let hit = diags
                .iter()
                .find(|d| d.path == *path && d.severity == *sev && d.message.contains(needle));
            assert!(
                hit.is_some(),
                "case {case:?}: wanted {sev:?} at {path} containing {needle:?}, got {diags:#?}"
            );
            if *path != "masters" {
                assert!(hit.unwrap().line.is_some(), "case {case:?}: no line number");
            }
        }
    }

    #[test]
    fn time_zones_and_ssh_keys() {
        for tz in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
            "GMT-0",
        ] {
            assert!(is_timezone_name(tz), "{tz}");
        }
        for tz in [
            "",
            "../x",
            "Europe/../../etc",
            "/etc/shadow",
            "Europe//Berlin",
            "UTC\n",
            "a b",
            "-x",
        ] {
            assert!(!is_timezone_name(tz), "{tz:?}");
        }
        for k in [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
            "ssh-rsa AAAAB3Nza+/== ops@example with spaces",
            "ecdsa-sha2-nistp256 AAAAE2Vj",
        ] {
            assert!(is_ssh_public_key(k), "{k}");
        }
        for k in [
            "not a key",
            "ssh-ed25519",
            "ssh-ed25519 AAAA\nssh-rsa BBBB",
            "ssh-ed25519 AAAA \"x\"",
            "ssh-ed25519 AAAA\\",
            "command=\"x\" ssh-ed25519 AAAA",
        ] {
            assert!(!is_ssh_public_key(k), "{k:?}");
        }
    }

    #[test]
    fn seed_version_with_docker_is_valid() {
        let d = check(&|s: String| {
            set_version(&s, "1.11.1")
                .replace(
                    "container-runtime = \"containerd\"",
                    "container-runtime = \"docker\"",
                )
                .replace("el = 9", "el = 7")
        });
        assert!(d.iter().all(|d| !d.is_error()), "{d:#?}");
    }

    #[test]
    fn cgroup_choices_that_work() {
        for (el, cgroup, version) in [
            ("8", Some("v2"), "1.36.3"),
            ("8", Some("v1"), "1.36.3"),
            ("7", Some("v1"), "1.36.3"),
            ("8", None, "1.34.2"),
            ("7", None, "1.30.14"),
            ("9", None, "1.36.3"),
            ("9", Some("v2"), "1.36.3"),
        ] {
            let d = check(&|s: String| {
                let line = match cgroup {
                    Some(v) => format!("el = {el}\ncgroup = \"{v}\""),
                    None => format!("el = {el}"),
                };
                set_version(&s, version).replace("el = 9", &line)
            });
            assert!(
                d.iter().all(|d| d.path != "install.cgroup"),
                "EL{el} {cgroup:?} {version}: {d:#?}"
            );
            assert!(d.iter().all(|d| !d.is_error()), "{d:#?}");
        }
    }

    #[test]
    fn el_cgroup_facts() {
        use crate::cluster::CgroupVersion::{V1, V2};
        assert_eq!(
            [7, 8, 9].map(CgroupVersion::el_default),
            [V1, V1, V2],
            "EL7 v1, EL8 v1, EL9 v2"
        );
        assert!(!V2.el_can_boot(7) && V2.el_can_boot(8) && V2.el_can_boot(9));
        assert!(V1.el_can_boot(7) && V1.el_can_boot(9));
        assert_eq!(
            CgroupVersion::kernel_arg(8, Some(V2)),
            Some("systemd.unified_cgroup_hierarchy=1")
        );
        assert_eq!(
            CgroupVersion::kernel_arg(9, Some(V1)),
            Some("systemd.unified_cgroup_hierarchy=0")
        );
        for (el, c) in [
            (8, Some(V1)),
            (9, Some(V2)),
            (8, None),
            (9, None),
            (7, Some(V1)),
        ] {
            assert_eq!(CgroupVersion::kernel_arg(el, c), None, "EL{el} {c:?}");
        }
    }

    #[test]
    fn line_numbers_point_at_the_field() {
        let text =
            DEFAULT_CLUSTER_TOML.replacen("ip = \"192.168.20.21\"", "ip = \"192.168.20.20\"", 1);
        let c = Cluster::parse(&text, "t").unwrap();
        let d = validate_with_source(&c, Some(&text));
        let dup = d
            .iter()
            .find(|d| d.path == "masters[1].ip")
            .expect("duplicate found");
        let line = text.lines().nth(dup.line.unwrap() - 1).unwrap();
        assert!(
            line.contains("192.168.20.20"),
            "line {:?} is {line:?}",
            dup.line
        );
    }

    #[test]
    fn unknown_keys_and_bad_types_are_parse_errors() {
        for (edit, needle) in [
            (
                DEFAULT_CLUSTER_TOML.replacen("port = 16443", "prot = 16443", 1),
                "prot",
            ),
            (
                DEFAULT_CLUSTER_TOML.replacen(
                    "vip = \"192.168.20.10\"",
                    "vip = \"192.168.20.300\"",
                    1,
                ),
                "vip",
            ),
            (
                DEFAULT_CLUSTER_TOML.replacen(
                    "pod-subnet = \"10.244.0.0/16\"",
                    "pod-subnet = \"10.244.0.0/33\"",
                    1,
                ),
                "pod-subnet",
            ),
            (
                DEFAULT_CLUSTER_TOML.replacen("port = 16443", "port = 70000", 1),
                "port",
            ),
            (
                DEFAULT_CLUSTER_TOML.replacen("plugin = \"calico\"", "plugin = \"flannel\"", 1),
                "flannel",
            ),
        ] {
            let e = Cluster::parse(&edit, "c.toml").unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains("c.toml") && e.contains("line"),
                "{e}"
            );
        }
    }

    #[test]
    fn names() {
        for (s, label, sub) in [
            ("k8s-master01", true, true),
            ("a", true, true),
            ("node.example.com", false, true),
            ("-a", false, false),
            ("a-", false, false),
            ("A", false, false),
            ("", false, false),
            (&"a".repeat(64), false, false),
        ] {
            assert_eq!(is_dns_label(s), label, "label {s}");
            assert_eq!(is_dns_subdomain(s), sub, "subdomain {s}");
        }
    }
}
