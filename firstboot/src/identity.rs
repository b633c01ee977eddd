//! Who this node is: its name and role, from the config's `[node]`, the kernel command line, or by matching the
//! node's own addresses against the cluster's `masters[]`/`workers[]` (so one install medium serves every node).

use std::net::IpAddr;
use std::path::Path;

use anyhow::{bail, Result};
use kubeha_model::cluster::{normalize_mac, Node, Role};
use kubeha_model::NodeConfig;

use crate::providers::cmdline::KernelArgs;
use crate::util::under;
use kubeha_model::kernel_args::Key;

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// MAC, normalized lowercase with colons.
    pub mac: Option<String>,
    /// Addresses.
    pub ips: Vec<IpAddr>,
}

/// What the node knows about itself. Gathered from the system, or built by tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Network interfaces (loopback excluded), sorted by name.
    pub interfaces: Vec<Interface>,
    /// The current host name.
    pub hostname: Option<String>,
    /// The SMBIOS system UUID, lowercase.
    pub uuid: Option<String>,
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl HostFacts {
    /// Gathers facts under `root`: MACs from `/sys/class/net/*/address`, the host name and the DMI UUID from their
    /// files; IP addresses from the kernel (sysinfo) only when `root` is `/` (a temp root has no live interfaces).
    pub fn gather(root: &Path) -> HostFacts {
        let mut interfaces = Vec::new();
        if let Ok(rd) = std::fs::read_dir(under(root, "/sys/class/net")) {
            for e in rd.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "lo" {
                    continue;
                }
                let mac = read_trim(&e.path().join("address"))
                    .and_then(|m| normalize_mac(&m))
                    .filter(|m| m != "00:00:00:00:00:00");
                interfaces.push(Interface {
                    name,
                    mac,
                    ips: Vec::new(),
                });
            }
        }
        if root == Path::new("/") {
            let nets = sysinfo::Networks::new_with_refreshed_list();
            for (name, data) in nets.iter() {
                if name == "lo" {
                    continue;
                }
                let ips: Vec<IpAddr> = data.ip_networks().iter().map(|n| n.addr).collect();
                match interfaces.iter_mut().find(|i| &i.name == name) {
                    Some(i) => i.ips = ips,
                    None => interfaces.push(Interface {
                        name: name.clone(),
                        mac: normalize_mac(&data.mac_address().to_string())
                            .filter(|m| m != "00:00:00:00:00:00"),
                        ips,
                    }),
                }
            }
        }
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        HostFacts {
            interfaces,
            hostname: read_trim(&under(root, "/proc/sys/kernel/hostname")),
            uuid: read_trim(&under(root, "/sys/class/dmi/id/product_uuid"))
                .map(|u| u.to_ascii_lowercase()),
        }
    }

    /// Every MAC.
    pub fn macs(&self) -> impl Iterator<Item = &str> {
        self.interfaces.iter().filter_map(|i| i.mac.as_deref())
    }

    /// Every IP.
    pub fn ips(&self) -> impl Iterator<Item = &IpAddr> {
        self.interfaces.iter().flat_map(|i| i.ips.iter())
    }

    /// The MAC `${mac}` stands for: `BOOTIF=` when the boot loader set it, else the first interface's.
    pub fn primary_mac(&self, args: &KernelArgs) -> Option<String> {
        args.bootif
            .clone()
            .or_else(|| self.macs().next().map(str::to_string))
    }
}

/// Replaces `${mac}`, `${hostname}` and `${uuid}` in a `kubeha.config` value. A placeholder whose fact is unknown, or
/// an unknown placeholder, is an error naming it.
pub fn substitute(template: &str, facts: &HostFacts, args: &KernelArgs) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            bail!("{}: unterminated placeholder in '{template}'", Key::Config);
        };
        let key = &after[..j];
        let val = match key {
            "mac" => facts.primary_mac(args),
            "hostname" => facts.hostname.clone(),
            "uuid" => facts.uuid.clone(),
            _ => bail!(
                "{}: unknown placeholder ${{{key}}} (known: ${{mac}}, ${{hostname}}, ${{uuid}})",
                Key::Config
            ),
        };
        let Some(val) = val else {
            bail!(
                "{}: ${{{key}}} is used but this node's {key} is not known",
                Key::Config
            );
        };
        out.push_str(&val);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The identity of this node.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// This node's entry in the cluster (its name, address, MAC and disk), as the config's `masters[]` or
    /// `workers[]` lists it.
    pub node: Node,
    /// Role.
    pub role: Role,
    /// How it was found, for the console.
    pub how: String,
}

/// One identity field from the config's `[node]` (`from_cfg`) or the kernel command line (`from_cmd`), typed as it
/// is parsed (a name, a [`Role`]), with how it was found; both set and different is an error naming both.
fn pick<T: PartialEq + std::fmt::Display>(
    source: &str,
    field: &str,
    key: Key,
    from_cfg: Option<T>,
    from_cmd: Option<T>,
) -> Result<Option<(T, String)>> {
    match (from_cfg, from_cmd) {
        (Some(a), Some(b)) if a != b => bail!(
            "node.{field} is '{a}' in {source} but {key}={b} on the kernel command line; remove one"
        ),
        (Some(a), _) => Ok(Some((a, format!("node.{field} in {source}")))),
        (None, Some(b)) => Ok(Some((b, format!("{key} on the kernel command line")))),
        (None, None) => Ok(None),
    }
}

/// Resolves the name and role. Precedence: the config's `[node]`, then `kubeha.name`/`kubeha.role`; when they
/// disagree it is an error naming both. Without a name, the node's IPs and MACs are matched against the cluster
/// (within the given role, if any); exactly one node must match.
pub fn resolve(
    cfg: &NodeConfig,
    args: &KernelArgs,
    facts: &HostFacts,
    source: &str,
) -> Result<Identity> {
    let name = pick(
        source,
        "name",
        Key::Name,
        cfg.node.name.clone(),
        args.name.clone(),
    )?;
    let role = pick(source, "role", Key::Role, cfg.node.role, args.role)?;
    let c = &cfg.cluster;
    if let Some((n, how)) = name {
        let Some((r, node)) = c.node(&n) else {
            bail!("{how}: '{n}' is not one of the cluster's masters or workers");
        };
        if let Some((want, rhow)) = role {
            if want != r {
                bail!("{rhow} says {want}, but '{n}' is a {r} in the cluster ({how})");
            }
        }
        return Ok(Identity {
            node: node.clone(),
            role: r,
            how,
        });
    }
    let macs: Vec<&str> = facts.macs().collect();
    let ips: Vec<&IpAddr> = facts.ips().collect();
    let matches: Vec<(Role, &Node, &'static str)> = c
        .nodes()
        .filter(|(r, _)| role.as_ref().is_none_or(|(want, _)| want == r))
        .filter_map(|(r, n)| {
            if ips.iter().any(|ip| **ip == IpAddr::V4(n.ip)) {
                Some((r, n, "IP"))
            } else if n
                .mac
                .as_deref()
                .and_then(normalize_mac)
                .is_some_and(|m| macs.contains(&m.as_str()))
            {
                Some((r, n, "MAC"))
            } else {
                None
            }
        })
        .collect();
    let name_key = Key::Name;
    match matches.as_slice() {
        [(r, n, by)] => Ok(Identity {
            node: (*n).clone(),
            role: *r,
            how: format!("this node's {by} matches {} in the cluster", n.name),
        }),
        [] => bail!(
            "cannot tell which node this is: no {name_key}/node.name, and none of this node's addresses (IPs: {}; \
             MACs: {}) is a {} of the cluster in {source}. Set {name_key}= on the kernel command line or [node] name",
            join(ips.iter().map(|i| i.to_string())),
            join(macs.iter().map(|m| m.to_string())),
            role.map(|(r, _)| r.to_string()).unwrap_or_else(|| "master or worker".into())
        ),
        many => bail!(
            "this node's addresses match several cluster nodes ({}); set {name_key}= on the kernel command line",
            join(many.iter().map(|(_, n, _)| n.name.clone()))
        ),
    }
}

fn join(it: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = it.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fixtures;

    fn facts(ips: &[&str], macs: &[&str]) -> HostFacts {
        let mut interfaces: Vec<Interface> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| Interface {
                name: format!("eth{i}"),
                mac: None,
                ips: vec![ip.parse().unwrap()],
            })
            .collect();
        for (i, m) in macs.iter().enumerate() {
            interfaces.push(Interface {
                name: format!("ens{i}"),
                mac: Some(m.to_string()),
                ips: vec![],
            });
        }
        HostFacts {
            interfaces,
            hostname: Some("localhost".into()),
            uuid: Some("4c4c4544-0000".into()),
        }
    }

    #[test]
    fn identity_cases() {
        let mut with_mac = fixtures::config();
        with_mac.cluster.workers[3].mac = Some("52-54-00-AA-BB-04".into());
        let named = fixtures::config_for("k8s-master02", Role::Master);
        let args = |name: Option<&str>, role: Option<Role>| KernelArgs {
            name: name.map(str::to_string),
            role,
            ..Default::default()
        };
        type Case<'a> = (
            &'a str,
            &'a NodeConfig,
            KernelArgs,
            HostFacts,
            Result<(&'a str, Role), &'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "by IP",
                &with_mac,
                args(None, None),
                facts(&["10.0.0.9", "192.168.20.21"], &[]),
                Ok(("k8s-master02", Role::Master)),
            ),
            (
                "by MAC",
                &with_mac,
                args(None, None),
                facts(&[], &["52:54:00:aa:bb:04"]),
                Ok(("k8s-node04", Role::Worker)),
            ),
            (
                "cmdline name",
                &with_mac,
                args(Some("k8s-node01"), None),
                facts(&[], &[]),
                Ok(("k8s-node01", Role::Worker)),
            ),
            (
                "config name",
                &named,
                args(None, None),
                facts(&[], &[]),
                Ok(("k8s-master02", Role::Master)),
            ),
            (
                "same in both",
                &named,
                args(Some("k8s-master02"), Some(Role::Master)),
                facts(&[], &[]),
                Ok(("k8s-master02", Role::Master)),
            ),
            (
                "conflict",
                &named,
                args(Some("k8s-master01"), None),
                facts(&[], &[]),
                Err("kubeha.name=k8s-master01"),
            ),
            (
                "role conflict",
                &with_mac,
                args(Some("k8s-node01"), Some(Role::Master)),
                facts(&[], &[]),
                Err("is a worker"),
            ),
            (
                "unknown name",
                &with_mac,
                args(Some("k8s-nope"), None),
                facts(&[], &[]),
                Err("not one of"),
            ),
            (
                "no match",
                &with_mac,
                args(None, None),
                facts(&["10.1.1.1"], &["52:54:00:00:00:01"]),
                Err("10.1.1.1"),
            ),
            (
                "role filters the match",
                &with_mac,
                args(None, Some(Role::Worker)),
                facts(&["192.168.20.20"], &[]),
                Err("worker"),
            ),
            (
                "two matches",
                &with_mac,
                args(None, None),
                facts(&["192.168.20.20", "192.168.20.30"], &[]),
                Err("several"),
            ),
        ];
        for (name, cfg, a, f, want) in cases {
            match (resolve(cfg, &a, &f, "SRC"), want) {
                (Ok(id), Ok((n, r))) => {
                    assert_eq!((id.node.name.as_str(), id.role), (n, r), "{name}");
                    assert_eq!(
                        Some((r, &id.node)),
                        cfg.cluster.node(n),
                        "{name}: the cluster's entry"
                    );
                }
                (Err(e), Err(w)) => {
                    assert!(e.to_string().contains(w), "{name}: {e} should contain {w}")
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn substitution_cases() {
        let f = facts(&[], &["52:54:00:00:00:07"]);
        let none = HostFacts::default();
        let boot = KernelArgs {
            bootif: Some("52:54:00:00:00:99".into()),
            ..Default::default()
        };
        let plain = KernelArgs::default();
        for (t, facts, args, want) in [
            (
                "http://x/${mac}.toml",
                &f,
                &plain,
                Ok("http://x/52:54:00:00:00:07.toml"),
            ),
            (
                "http://x/${mac}.toml",
                &f,
                &boot,
                Ok("http://x/52:54:00:00:00:99.toml"),
            ),
            (
                "http://x/${hostname}/${uuid}",
                &f,
                &plain,
                Ok("http://x/localhost/4c4c4544-0000"),
            ),
            ("http://x/plain", &none, &plain, Ok("http://x/plain")),
            ("http://x/${mac}", &none, &plain, Err("mac is not known")),
            (
                "http://x/${serial}",
                &f,
                &plain,
                Err("unknown placeholder ${serial}"),
            ),
            ("http://x/${mac", &f, &plain, Err("unterminated")),
        ] {
            match (substitute(t, facts, args), want) {
                (Ok(s), Ok(w)) => assert_eq!(s, w, "{t}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{t}: {e}"),
                (got, want) => panic!("{t}: got {got:?} want {want:?}"),
            }
        }
    }

    #[test]
    fn gather_reads_sysfs_under_root() {
        let d = tempfile::tempdir().unwrap();
        for (n, m) in [
            ("eth0", "52:54:00:12:34:56\n"),
            ("lo", "00:00:00:00:00:00\n"),
            ("dummy0", "00:00:00:00:00:00\n"),
        ] {
            std::fs::create_dir_all(d.path().join("sys/class/net").join(n)).unwrap();
            std::fs::write(d.path().join("sys/class/net").join(n).join("address"), m).unwrap();
        }
        std::fs::create_dir_all(d.path().join("sys/class/dmi/id")).unwrap();
        std::fs::write(d.path().join("sys/class/dmi/id/product_uuid"), "ABCD-1\n").unwrap();
        let f = HostFacts::gather(d.path());
        assert_eq!(f.macs().collect::<Vec<_>>(), vec!["52:54:00:12:34:56"]);
        assert_eq!(f.interfaces.len(), 2, "lo skipped, dummy0 kept without MAC");
        assert_eq!(f.uuid.as_deref(), Some("abcd-1"));
        assert_eq!(f.ips().count(), 0, "no live addresses under a temp root");
    }
}
