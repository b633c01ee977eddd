//! The plan: a pure function from the cluster and the [`Options`] to what the kickstart says, every value
//! checked (the release, the URLs, the install section's keys, hash, time zone and words, the NTP servers, the
//! packages, the cgroup version, the netmask, the known node's MAC and disk) before any text is made. No I/O.

use std::net::Ipv4Addr;

use kubeha_model::cluster::{normalize_mac, CgroupVersion, Cluster, Role};

use crate::spec::{bad, root_label, Options, Result, Source};

/// A kickstart's content, every value checked.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// EL major release: 7, 8 or 9.
    pub el: u8,
    /// Where the bundle is.
    pub source: &'a Source,
    /// The OS installation tree (`url --url=`).
    pub os_url: Option<&'a str>,
    /// The bundle's packages `%packages` installs.
    pub packages: &'a [String],
    /// The node, when the kickstart is for one known node.
    pub node: Option<Known<'a>>,
    /// The dotted netmask of `networking.node-prefix`.
    pub netmask: String,
    /// The root filesystem's label ([`root_label`]).
    pub root_label: String,
    /// The cgroup argument `%post --nochroot` keeps on the installed kernel command line (empty for none).
    pub kernel_args: &'static str,
}

/// The one node a kickstart is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known<'a> {
    /// Its role.
    pub role: Role,
    /// Its name (the host name).
    pub name: &'a str,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The `network --device=`: its MAC normalized, else `link`.
    pub device: String,
    /// Its install disk without `/dev/`, when set.
    pub disk: Option<String>,
}

/// Checks the cluster and the options and plans the kickstart; the first error names its field or option.
pub(crate) fn plan<'a>(cluster: &'a Cluster, opts: &'a Options) -> Result<Plan<'a>> {
    let el = opts.el;
    if !(7..=9).contains(&el) {
        return Err(bad(
            "--el",
            format!("EL{el} is not supported: use 7, 8 or 9"),
        ));
    }
    let node = match &opts.node {
        None => None,
        Some(n) => Some(
            cluster
                .node(n)
                .ok_or_else(|| bad("node.name", format!("'{n}' is not a node of the cluster")))?,
        ),
    };
    if let Source::Http(u) = &opts.source {
        check_url("--bundle-url", u)?;
    }
    if let Some(u) = &opts.os_url {
        check_url("--os-url", u)?;
    }
    let install = &cluster.install;
    for (i, k) in install.root_ssh_keys.iter().enumerate() {
        if !kubeha_model::validate::is_ssh_public_key(k) {
            return Err(bad(
                format!("install.root-ssh-keys[{i}]"),
                "not a single-line OpenSSH public key",
            ));
        }
    }
    if let Some(h) = &install.root_password_hash {
        if !is_crypt_hash(h) {
            return Err(bad(
                "install.root-password-hash",
                "not a crypt(3) hash like $6$salt$hash (make one with `openssl passwd -6`); plain passwords are refused",
            ));
        }
    }
    if !kubeha_model::validate::is_timezone_name(&install.timezone) {
        return Err(bad(
            "install.timezone",
            format!(
                "'{}' is not a time zone name",
                install.timezone.escape_debug()
            ),
        ));
    }
    for (field, v) in [
        ("install.keyboard", &install.keyboard),
        ("install.lang", &install.lang),
    ] {
        if !is_word(v) {
            return Err(bad(field, format!("'{v}' is not a single word")));
        }
    }
    for (i, s) in cluster.ntp.servers.iter().enumerate() {
        if !is_word(s) || s.contains(',') {
            return Err(bad(
                format!("ntp.servers[{i}]"),
                format!("'{s}' is not a host name"),
            ));
        }
    }
    for p in &opts.packages {
        if !is_word(p) || p.starts_with('-') || p.starts_with('@') {
            return Err(bad("packages", format!("'{p}' is not a package name")));
        }
    }
    if let Some(cg) = install.cgroup {
        if !cg.el_can_boot(el) {
            return Err(bad(
                "install.cgroup",
                format!("EL{el} cannot boot cgroup {cg}; use cgroup = \"v1\""),
            ));
        }
    }
    let netmask = prefix_netmask(cluster.networking.node_prefix)
        .ok_or_else(|| bad("networking.node-prefix", "not a prefix length 1..32"))?;
    let node = match node {
        None => None,
        Some((role, n)) => {
            let device = match &n.mac {
                Some(m) => normalize_mac(m).ok_or_else(|| {
                    bad(
                        format!("{}.mac", n.name),
                        format!("'{m}' is not a MAC address"),
                    )
                })?,
                None => "link".into(),
            };
            let disk = n.disk.as_deref().map(disk_name).transpose()?;
            Some(Known {
                role,
                name: &n.name,
                ip: n.ip,
                device,
                disk,
            })
        }
    };
    Ok(Plan {
        cluster,
        el,
        source: &opts.source,
        os_url: opts.os_url.as_deref(),
        packages: &opts.packages,
        node,
        netmask,
        root_label: root_label(&cluster.cluster.name),
        kernel_args: CgroupVersion::kernel_arg(el, install.cgroup).unwrap_or_default(),
    })
}

fn disk_name(d: &str) -> Result<String> {
    let d = d.trim_start_matches("/dev/");
    if d.is_empty()
        || !d
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.:".contains(&b))
    {
        return Err(bad(
            "disk",
            format!("'{d}' is not a disk name like sda or disk/by-id/..."),
        ));
    }
    Ok(d.to_string())
}

fn check_url(field: &str, u: &str) -> Result<()> {
    if !(u.starts_with("http://") || u.starts_with("https://")) || !is_word(u) {
        return Err(bad(field, format!("'{u}' is not an http(s) URL")));
    }
    Ok(())
}

/// A crypt(3) hash with a `$id$` prefix (MD5 `$1$`, SHA-256 `$5$`, SHA-512 `$6$`, yescrypt `$y$`, bcrypt `$2b$`).
pub fn is_crypt_hash(h: &str) -> bool {
    let mut parts = h.split('$');
    parts.next() == Some("")
        && matches!(
            parts.next(),
            Some("1" | "5" | "6" | "y" | "2a" | "2b" | "2y")
        )
        && h.split('$').count() >= 4
        && h.split('$').next_back().is_some_and(|l| !l.is_empty())
        && is_word(h)
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\')
}

/// The dotted netmask of a prefix length (24 -> 255.255.255.0).
pub fn prefix_netmask(prefix: u8) -> Option<String> {
    if !(1..=32).contains(&prefix) {
        return None;
    }
    Some(Ipv4Addr::from(u32::MAX << (32 - prefix as u32)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_hashes() {
        for (h, ok) in [
            ("$6$saltsalt$abcdefABCDEF0123456789./", true),
            ("$y$j9T$salt$hash", true),
            ("hunter2", false),
            ("$6$", false),
            ("$9$a$b", false),
            ("$6$salt$has h", false),
        ] {
            assert_eq!(is_crypt_hash(h), ok, "{h}");
        }
    }

    #[test]
    fn netmasks() {
        for (p, m) in [
            (24, Some("255.255.255.0")),
            (32, Some("255.255.255.255")),
            (1, Some("128.0.0.0")),
            (0, None),
            (33, None),
        ] {
            assert_eq!(prefix_netmask(p).as_deref(), m, "{p}");
        }
    }

    #[test]
    fn plan_checks_every_value_and_fixes_a_known_node() {
        let mut c = Cluster::default_cluster();
        c.masters[0].mac = Some("52-54-00-AA-BB-01".into());
        c.masters[0].disk = Some("/dev/disk/by-id/x".into());
        c.install.cgroup = Some(CgroupVersion::V1);
        let name = c.masters[0].name.clone();
        let mut o = Options::new(9, Source::Http("http://h/kubeha/".into()));
        o.node = Some(name.clone());
        o.packages = vec!["kubeadm".into()];
        let p = plan(&c, &o).expect("a valid cluster plans");
        assert_eq!(
            p.node,
            Some(Known {
                role: Role::Master,
                name: &name,
                ip: c.masters[0].ip,
                device: "52:54:00:aa:bb:01".into(),
                disk: Some("disk/by-id/x".into()),
            }),
            "the known node's MAC normalized, its disk without /dev/"
        );
        assert_eq!(p.netmask, prefix_netmask(c.networking.node_prefix).unwrap());
        assert_eq!(p.root_label, root_label(&c.cluster.name));
        assert_eq!(p.kernel_args, "systemd.unified_cgroup_hierarchy=0");
        assert_eq!(p.packages, ["kubeadm"]);
        assert!(
            plan(&c, &Options::new(9, Source::Media))
                .expect("any node")
                .node
                .is_none(),
            "no node asked for: none fixed"
        );

        // Every error names its field, the known node's MAC and disk last.
        type Edit = fn(&mut Cluster, &mut Options);
        let cases: [(&str, Edit); 10] = [
            ("--el", |_, o| o.el = 6),
            ("node.name", |_, o| o.node = Some("nobody".into())),
            ("--bundle-url", |_, o| {
                o.source = Source::Http("ftp://x".into())
            }),
            ("--os-url", |_, o| o.os_url = Some("x y".into())),
            ("install.root-password-hash", |c, _| {
                c.install.root_password_hash = Some("hunter2".into())
            }),
            ("install.keyboard", |c, _| c.install.keyboard = "u s".into()),
            ("ntp.servers[0]", |c, _| c.ntp.servers = vec!["a,b".into()]),
            ("packages", |_, o| o.packages = vec!["@core".into()]),
            ("networking.node-prefix", |c, _| {
                c.networking.node_prefix = 0
            }),
            ("disk", |c, _| c.masters[0].disk = Some("/dev/".into())),
        ];
        for (field, edit) in cases {
            let (mut c, mut o) = (c.clone(), o.clone());
            edit(&mut c, &mut o);
            let e = plan(&c, &o).expect_err(field).to_string();
            assert!(e.starts_with(&format!("{field}: ")), "{field}: {e}");
        }
        let mut bad_mac = c.clone();
        bad_mac.masters[0].mac = Some("nope".into());
        bad_mac.masters[0].disk = Some("/dev/".into());
        let e = plan(&bad_mac, &o).expect_err("bad MAC").to_string();
        assert!(e.starts_with(&format!("{name}.mac: ")), "{e}");
    }
}
