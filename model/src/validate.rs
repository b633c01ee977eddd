//! Validation of a parsed [`Cluster`]: every rule reports its field path (`masters[1].ip`) and, when the TOML text
//! is at hand, the line it came from. All problems are collected, not only the first.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::cluster::{normalize_mac, Cluster, Runtime};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The cluster cannot work this way.
    Error,
    /// It works, but not as well as it should (e.g. an even number of etcd members).
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The field path, e.g. `masters[1].ip`.
    pub path: String,
    /// What is wrong, and what would be right.
    pub message: String,
    /// The 1-based line in the TOML source, when known.
    pub line: Option<usize>,
}

impl Diagnostic {
    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(l) => write!(f, "{sev}: {} (line {l}): {}", self.path, self.message),
            None => write!(f, "{sev}: {}: {}", self.path, self.message),
        }
    }
}

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
const RESERVED_PORTS: &[(u16, u16, &str)] = &[
    (6443, 6443, "kube-apiserver"),
    (2379, 2380, "etcd"),
    (10248, 10260, "kubelet and control-plane components"),
    (30000, 32767, "the NodePort range"),
];

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
    } else if c.masters.len() % 2 == 0 {
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

fn check_misc(c: &Cluster, r: &mut Report) {
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
        let mut it = key.split_whitespace();
        let ok = matches!(it.next(), Some(t) if t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-"))
            && it.next().is_some();
        if !ok {
            r.error(
                format!("install.root-ssh-keys[{k}]"),
                "not an OpenSSH public key line",
            );
        }
    }
    if i.timezone.is_empty() || i.timezone.contains(char::is_whitespace) {
        r.error(
            "install.timezone",
            format!("'{}' is not a time zone name", i.timezone),
        );
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
