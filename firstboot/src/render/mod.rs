//! Pure text: every file the OS-preparation steps write is rendered here from the config (and, where a file is
//! edited rather than owned, from its current text). No I/O, so each function has a table or golden test.

use kubeha_model::cluster::{Cluster, Role, Runtime};

/// The marker lines around the block kubeha owns in a shared file such as /etc/hosts.
pub const BEGIN: &str = "# BEGIN kubeha (managed by kubeha-firstboot; edits inside are replaced)";
/// End marker.
pub const END: &str = "# END kubeha";

/// Replaces (or appends) the managed block in `existing`.
pub fn with_block(existing: &str, block: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    let mut placed = false;
    for line in existing.lines() {
        if line == BEGIN {
            inside = true;
            if !placed {
                out.push_str(BEGIN);
                out.push('\n');
                out.push_str(block);
                out.push_str(END);
                out.push('\n');
                placed = true;
            }
            continue;
        }
        if inside {
            if line == END {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !placed {
        out.push_str(BEGIN);
        out.push('\n');
        out.push_str(block);
        out.push_str(END);
        out.push('\n');
    }
    out
}

/// `/etc/hosts`: the existing lines plus a block with the VIP name and every node.
pub fn hosts(existing: &str, c: &Cluster) -> String {
    let mut b = format!("{} {}\n", c.endpoint.vip, c.endpoint.name);
    for (_, n) in c.nodes() {
        b.push_str(&format!("{} {}\n", n.ip, n.name));
    }
    with_block(existing, &b)
}

/// `/etc/selinux/config` with `SELINUX=permissive` (other lines kept).
pub fn selinux_config(existing: &str) -> String {
    let mut out = String::new();
    let mut seen = false;
    for line in existing.lines() {
        if line.trim_start().starts_with("SELINUX=") {
            if !seen {
                out.push_str("SELINUX=permissive\n");
            }
            seen = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !seen {
        out.push_str("SELINUX=permissive\n");
    }
    out
}

/// `/etc/fstab` with every active swap entry commented out (`#kubeha: ` prefix, once: a commented line is left as it
/// is). `None` when there is nothing to change.
pub fn fstab_without_swap(existing: &str) -> Option<String> {
    let mut changed = false;
    let mut out = String::new();
    for line in existing.lines() {
        let t = line.trim_start();
        let fields: Vec<&str> = t.split_whitespace().collect();
        if !t.starts_with('#') && fields.len() >= 3 && fields[2] == "swap" {
            out.push_str("#kubeha: ");
            changed = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    changed.then_some(out)
}

/// Kernel modules loaded at boot (`/etc/modules-load.d/kubeha.conf`).
pub const MODULES: [&str; 2] = ["br_netfilter", "overlay"];

/// `/etc/modules-load.d/kubeha.conf`.
pub fn modules_load() -> String {
    let mut s = String::from(
        "# kubeha: Kubernetes networking (bridge netfilter) and the overlay snapshotter.\n",
    );
    for m in MODULES {
        s.push_str(m);
        s.push('\n');
    }
    s
}

/// The sysctls Kubernetes needs, as (key, value).
pub const SYSCTLS: [(&str, &str); 3] = [
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.ipv4.ip_forward", "1"),
];

/// `/etc/sysctl.d/k8s.conf` (the seed's file name).
pub fn sysctl_conf() -> String {
    let mut s =
        String::from("# kubeha: bridged traffic through iptables, and routing, for Kubernetes.\n");
    for (k, v) in SYSCTLS {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s
}

/// The firewalld rules to add permanently for a node of `role`: kubeha's one port table
/// ([`kubeha_model::kube::ports`], which the kickstart renders too), as `--add-port=` values (`6443/tcp`) and
/// `--add-protocol=` values (IP protocol numbers: VRRP `112`, IP-in-IP `4`).
pub fn firewall_rules(c: &Cluster, role: Role) -> (Vec<String>, Vec<String>) {
    let (mut ports, mut protocols) = (Vec::new(), Vec::new());
    for o in kubeha_model::kube::ports::for_cluster(c, role) {
        match o.proto {
            kubeha_model::kube::ports::Proto::Ip(_) => protocols.push(o.firewalld()),
            _ => ports.push(o.firewalld()),
        }
    }
    ports.dedup();
    (ports, protocols)
}

/// The ports (`6443/tcp`) and IP protocols (`112`) a firewalld zone file (`/etc/firewalld/zones/<zone>.xml`) opens:
/// the `<port>` and `<protocol>` elements directly under `<zone>`, read with an XML reader (comments, CDATA and rich
/// rules are not the zone's: a `<port>` inside a `<rule>` is limited to the rule's source). Protocol names are mapped
/// to numbers for the two kubeha uses (`vrrp` 112; `ipv4`/`ipencap` 4). A file that stops parsing part-way yields
/// what came before the error (the step then adds the rest, which firewalld accepts for rules it already has).
fn zone_entries(zone_xml: &str) -> (Vec<String>, Vec<String>) {
    use quick_xml::events::Event;
    let (mut ports, mut protocols) = (Vec::new(), Vec::new());
    let mut reader = quick_xml::Reader::from_str(zone_xml);
    // The element path from the root: `zone` children are at depth 2 when they start.
    let mut depth = 0usize;
    let mut in_zone = false;
    loop {
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_zone = false;
                }
                continue;
            }
            Ok(Event::Eof) => break,
            Ok(_) => continue,
            Err(err) => {
                log::warn!(
                    "firewalld zone file: XML error at byte {}: {err}",
                    reader.error_position()
                );
                break;
            }
        };
        let attr = |name: &[u8]| -> Option<String> {
            e.attributes()
                .flatten()
                .find(|a| a.key.as_ref() == name)
                .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
        };
        match (depth, e.name().as_ref()) {
            (0, b"zone") => in_zone = true,
            (1, b"port") if in_zone => {
                if let (Some(port), Some(proto)) = (attr(b"port"), attr(b"protocol")) {
                    ports.push(format!("{port}/{proto}"));
                }
            }
            (1, b"protocol") if in_zone => {
                if let Some(v) = attr(b"value") {
                    protocols.push(match v.as_str() {
                        "vrrp" => "112".to_string(),
                        "ipv4" | "ipencap" => "4".to_string(),
                        _ => v,
                    });
                }
            }
            _ => {}
        }
        if !empty {
            depth += 1;
        }
    }
    (ports, protocols)
}

/// The whole IP protocols a firewalld zone file already lets in (`<protocol value="112"/>`), as numbers
/// ([`zone_entries`]).
pub fn zone_protocols(zone_xml: &str) -> Vec<String> {
    zone_entries(zone_xml).1
}

/// The ports a firewalld zone file already opens (`<port protocol="tcp" port="6443"/>`), as `6443/tcp`
/// ([`zone_entries`]).
pub fn zone_ports(zone_xml: &str) -> Vec<String> {
    zone_entries(zone_xml).0
}

/// `/etc/chrony.conf` for the configured servers.
pub fn chrony_conf(servers: &[String]) -> String {
    let mut s =
        String::from("# kubeha: time sync for the cluster (etcd and certificates need it).\n");
    for srv in servers {
        s.push_str(&format!("server {srv} iburst\n"));
    }
    s.push_str(
        "driftfile /var/lib/chrony/drift\nmakestep 1.0 3\nrtcsync\nlogdir /var/log/chrony\n",
    );
    s
}

/// The repo id of the bundle's RPM repository.
pub const REPO_ID: &str = "kubeha";

/// `/etc/yum.repos.d/kubeha.repo`. With `gpgkeys` (`file://` URLs of the keys the bundle ships, every package
/// of it checked against them when it was built) yum/dnf check each package's signature again (`gpgcheck=1`);
/// without (a profile repo had no key) gpgcheck is off and the packages' integrity rests on the bundle's
/// manifest, whose sha256 of every file was checked when the bundle was built and copied.
pub fn yum_repo(baseurl: &str, gpgkeys: &[String]) -> String {
    let gpg = if gpgkeys.is_empty() {
        "gpgcheck=0\n".to_string()
    } else {
        format!("gpgcheck=1\ngpgkey={}\n", gpgkeys.join(" "))
    };
    format!(
        "# kubeha: the offline bundle's packages. Every other repository is disabled by kubeha-firstboot.\n\
         [{REPO_ID}]\nname=kubeha offline bundle\nbaseurl={baseurl}\nenabled=1\n{gpg}repo_gpgcheck=0\n\
         skip_if_unavailable=0\n"
    )
}

/// A `.repo` file with every section disabled (`enabled=0`). `None` when nothing changes.
pub fn repo_disabled(existing: &str) -> Option<String> {
    let mut out = String::new();
    let mut in_section = false;
    let mut has_enabled = false;
    let mut changed = false;
    let close = |out: &mut String, in_section: bool, has_enabled: bool, changed: &mut bool| {
        if in_section && !has_enabled {
            out.push_str("enabled=0\n");
            *changed = true;
        }
    };
    for line in existing.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            close(&mut out, in_section, has_enabled, &mut changed);
            in_section = true;
            has_enabled = false;
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            if in_section && k.trim() == "enabled" {
                has_enabled = true;
                if v.trim() != "0" {
                    out.push_str("enabled=0\n");
                    changed = true;
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    close(&mut out, in_section, has_enabled, &mut changed);
    changed.then_some(out)
}

/// kubeadm's pause image for the cluster's release and image repository (kubeadm's `constants.PauseVersion` per
/// release, `kubeha_model::kube`).
pub fn pause_image(c: &Cluster) -> String {
    kubeha_model::kube::pause_image(
        &c.cluster.kubernetes_version,
        c.cluster.image_repository.as_deref(),
    )
}

/// containerd's configuration, config version 2 (containerd 1.5+; 2.x migrates it): only what kubeha sets, the
/// rest is containerd's defaults. Field names are containerd's (`pkg/cri/config`, `plugins/cri/runtime`).
mod containerd {
    use std::collections::BTreeMap;

    use serde::Serialize;

    /// The CRI plugin's id in a version 2 config.
    pub const CRI: &str = "io.containerd.grpc.v1.cri";

    #[derive(Serialize)]
    pub struct Config {
        pub version: u32,
        pub plugins: BTreeMap<&'static str, Cri>,
    }

    #[derive(Serialize)]
    pub struct Cri {
        pub sandbox_image: String,
        pub containerd: CriContainerd,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub registry: Option<Registry>,
    }

    #[derive(Serialize)]
    pub struct CriContainerd {
        pub default_runtime_name: &'static str,
        pub runtimes: BTreeMap<&'static str, Runtime>,
    }

    #[derive(Serialize)]
    pub struct Runtime {
        pub runtime_type: &'static str,
        pub options: RuncOptions,
    }

    #[derive(Serialize)]
    pub struct RuncOptions {
        #[serde(rename = "SystemdCgroup")]
        pub systemd_cgroup: bool,
    }

    #[derive(Serialize)]
    pub struct Registry {
        /// Registry host -> its mirrors, tried in order.
        pub mirrors: BTreeMap<String, Mirror>,
    }

    #[derive(Serialize)]
    pub struct Mirror {
        pub endpoint: Vec<String>,
    }
}

/// `/etc/containerd/config.toml` (config version 2, read by containerd 1.5+ and migrated by 2.x): the CRI plugin
/// on, runc with the systemd cgroup driver (kubelet's default from kubeadm 1.22), kubeadm's pause image as the
/// sandbox image (so kubelet and containerd agree and nothing is pulled), and the cluster's registry mirrors (the
/// mirrors of one registry in the order cluster.toml lists them). Serialized from typed structs by the `toml` crate.
pub fn containerd_config(c: &Cluster) -> String {
    use containerd::*;
    let mut mirrors: std::collections::BTreeMap<String, Mirror> = Default::default();
    for m in &c.cluster.registry_mirrors {
        mirrors
            .entry(m.registry.clone())
            .or_insert_with(|| Mirror {
                endpoint: Vec::new(),
            })
            .endpoint
            .push(m.endpoint.clone());
    }
    let cri = Cri {
        sandbox_image: pause_image(c),
        containerd: CriContainerd {
            default_runtime_name: "runc",
            runtimes: [(
                "runc",
                Runtime {
                    runtime_type: "io.containerd.runc.v2",
                    options: RuncOptions {
                        systemd_cgroup: true,
                    },
                },
            )]
            .into(),
        },
        registry: (!mirrors.is_empty()).then_some(Registry { mirrors }),
    };
    let config = Config {
        version: 2,
        plugins: [(CRI, cri)].into(),
    };
    let body = toml::to_string(&config).expect("containerd's config serializes to TOML");
    format!("# kubeha: containerd for Kubernetes (written by kubeha-firstboot).\n{body}")
}

/// `/etc/docker/daemon.json` for the Docker runtime (the seed's era): the systemd cgroup driver, overlay2, bounded
/// json logs, and the registry mirrors.
pub fn docker_daemon_json(c: &Cluster) -> String {
    let mirrors: Vec<&str> = c
        .cluster
        .registry_mirrors
        .iter()
        .map(|m| m.endpoint.as_str())
        .collect();
    let mut v = serde_json::json!({
        "exec-opts": ["native.cgroupdriver=systemd"],
        "log-driver": "json-file",
        "log-opts": {"max-size": "100m"},
        "storage-driver": "overlay2",
    });
    if !mirrors.is_empty() {
        v["registry-mirrors"] = serde_json::json!(mirrors);
    }
    let mut s = serde_json::to_string_pretty(&v).expect("json");
    s.push('\n');
    s
}

/// `/etc/crictl.yaml`, so `crictl` talks to the runtime kubelet uses.
pub fn crictl_yaml(r: Runtime) -> String {
    format!(
        "runtime-endpoint: {0}\nimage-endpoint: {0}\ntimeout: 10\n",
        r.cri_socket()
    )
}

#[cfg(test)]
mod tests;
