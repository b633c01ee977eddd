//! kubeha-kickstart: renders the unattended EL7/EL8/EL9 kickstart that installs a kubeha node.
//!
//! One pure function, [`render`], turns a [`Cluster`] and [`Options`] into kickstart text. The shell parts
//! (`%pre`, `%post`) are templates under `templates/`, filled by plain `@NAME@` substitution.
//!
//! What the kickstart does:
//! - `%pre` finds the node (kernel `kubeha.name=`, else a MAC match against cluster.toml) and exactly one install
//!   disk (the node's `disk`, else `kubeha.disk=`, else the first non-removable whole disk that does not hold the
//!   install media), and writes `ignoredisk --only-use=` + partitioning (no swap) and the network command
//!   (static for a known node, DHCP otherwise) for `%include`. When the node is known at render time, network
//!   (and storage, if its disk is known) are written directly into the kickstart instead.
//! - Install once: the root filesystem is labelled [`root_label`] (this cluster's), and `%pre` refuses to wipe a
//!   disk that already has a filesystem with that label (blkid, read-only) unless `kubeha.reinstall=1`: it says
//!   why on the consoles and halts. `%post --nochroot` also writes `/etc/kubeha/installed` (cluster, node, role,
//!   label, time) for people.
//! - `repo` points at the bundle's yum repository: on the install media (`file:///run/install/repo/kubeha/rpms`) or
//!   over HTTP; `%packages` installs the bundle's requested packages.
//! - `%post --nochroot` runs the media's agent as `kubeha-firstboot install --sysroot /mnt/sysimage --from SOURCE`:
//!   it copies (or downloads) the bundle, verified against `bundle.toml` (and its signature when configured), to
//!   `/var/lib/kubeha/bundle`, the agent to `/usr/local/bin/kubeha-firstboot` with its unit, and the node config to
//!   `/etc/kubeha/node.toml` (from `kubeha.config=`, pinned by `kubeha.config.sha256=`, else the media's
//!   `node.toml`), writing nothing when a check fails; the script then keeps `kubeha.role/name/bootstrap/report`
//!   on the installed kernel command line (grubby), with
//!   `systemd.unified_cgroup_hierarchy=1` (EL8, `[install] cgroup = "v2"`) or `=0` (EL9, `cgroup = "v1"`).
//! - The firewall opens the role's ports from [`kubeha_model::kube::ports`] (the table the node agent uses): the
//!   `firewall` command for a known node, else `%pre` writes it for `%include` once it knows the role (a node
//!   whose role is unknown gets the master's set, a superset of the worker's); the whole IP protocols (VRRP,
//!   IP-in-IP) are added in `%post --nochroot` with `firewall-offline-cmd --add-protocol=`.
//! - `%post` enables `kubeha-firstboot.service`.
#![deny(missing_docs)]

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use kubeha_model::cluster::{normalize_mac, CgroupVersion, Cluster, Node, Role};
use kubeha_model::kube::ports;

/// Where dracut mounts the install media; anaconda sees the media's `/kubeha` here (rhinstaller/anaconda
/// `dracut/anaconda-lib.sh` `repodir="/run/install/repo"`, the same on EL7 to EL9).
pub const MEDIA_ROOT: &str = "/run/install/repo";
/// The directory on the install media (and under the HTTP base) holding the bundle, agent and node config.
pub const MEDIA_DIR: &str = "kubeha";

const PRE: &str = include_str!("../templates/pre.sh");
const POST_NOCHROOT: &str = include_str!("../templates/post-nochroot.sh");
const POST: &str = include_str!("../templates/post.sh");

/// Errors of the renderer; each names the field or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value that cannot go into a kickstart.
    #[error("{field}: {message}")]
    Value {
        /// The field path or option.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn bad(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Value {
        field: field.into(),
        message: message.into(),
    }
}

/// Where the installer finds the bundle and kubeha's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// On the install media under `/kubeha` (`kubeha iso`).
    Media,
    /// Over HTTP: the URL of the directory holding `bundle.toml`, `rpms/`, `agent/` and `node.toml` (`kubeha pxe`).
    Http(String),
}

impl Source {
    /// The base the installer reads from.
    pub fn base(&self) -> String {
        match self {
            Source::Media => format!("{MEDIA_ROOT}/{MEDIA_DIR}"),
            Source::Http(u) => u.trim_end_matches('/').to_string(),
        }
    }

    /// The bundle's yum repository URL.
    pub fn repo_url(&self) -> String {
        match self {
            Source::Media => format!("file://{MEDIA_ROOT}/{MEDIA_DIR}/rpms"),
            Source::Http(u) => format!("{}/rpms", u.trim_end_matches('/')),
        }
    }
}

/// What to render.
#[derive(Debug, Clone)]
pub struct Options {
    /// EL major release: 7, 8 or 9.
    pub el: u8,
    /// Where the bundle is.
    pub source: Source,
    /// The node, when the kickstart is for one known node (its network, and disk if set, are then fixed).
    pub node: Option<String>,
    /// The packages `%packages` installs from the bundle (its requested RPM names).
    pub packages: Vec<String>,
    /// The OS installation tree (`url --url=`); default: the boot media or `inst.repo=`.
    pub os_url: Option<String>,
}

impl Options {
    /// Options for the install media, role-agnostic.
    pub fn new(el: u8, source: Source) -> Options {
        Options {
            el,
            source,
            node: None,
            packages: Vec::new(),
            os_url: None,
        }
    }
}

/// The ksvalidator version string for an EL release (`RHEL9`).
pub fn ksvalidator_version(el: u8) -> String {
    format!("RHEL{el}")
}

/// Renders the kickstart.
pub fn render(cluster: &Cluster, opts: &Options) -> Result<String> {
    let el = opts.el;
    if !(7..=9).contains(&el) {
        return Err(bad(
            "--el",
            format!("EL{el} is not supported: use 7, 8 or 9"),
        ));
    }
    let node: Option<(Role, &Node)> = match &opts.node {
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

    let mut ks = String::new();
    let w = &mut ks;
    let _ = writeln!(
        w,
        "# kubeha kickstart for EL{el}, cluster {}{}.",
        cluster.cluster.name,
        match node {
            Some((r, n)) => format!(", {r} {}", n.name),
            None => String::from(", any node (kubeha.name=/kubeha.role= or MAC match)"),
        }
    );
    let _ = writeln!(
        w,
        "# Written by kubeha {}; check it with: ksvalidator -v RHEL{el} FILE",
        env!("CARGO_PKG_VERSION")
    );
    w.push_str("text\nskipx\n");
    if let Some(u) = &opts.os_url {
        let _ = writeln!(w, "url --url={u}");
    }
    let _ = writeln!(w, "repo --name=kubeha --baseurl={}", opts.source.repo_url());
    let _ = writeln!(w, "lang {}", install.lang);
    let _ = writeln!(
        w,
        "keyboard --vckeymap={0} --xlayouts={0}",
        install.keyboard
    );
    let servers = &cluster.ntp.servers;
    if el >= 9 {
        let _ = writeln!(w, "timezone {} --utc", install.timezone);
        for s in servers {
            let _ = writeln!(w, "timesource --ntp-server={s}");
        }
    } else if servers.is_empty() {
        let _ = writeln!(w, "timezone {} --utc", install.timezone);
    } else {
        let _ = writeln!(
            w,
            "timezone {} --utc --ntpservers={}",
            install.timezone,
            servers.join(",")
        );
    }
    w.push_str("selinux --permissive\n");
    w.push_str("# Firewall: the role's ports from kubeha's port table (docs/firstboot.md), as the node agent opens them.\n");
    match node {
        Some((role, _)) => {
            let _ = writeln!(w, "{}", firewall_line(cluster, role));
        }
        None => w.push_str("%include /tmp/kubeha-firewall.ks\n"),
    }
    w.push_str("services --enabled=sshd,chronyd\n");
    w.push_str("firstboot --disabled\n");
    match &install.root_password_hash {
        Some(h) if el >= 9 => {
            let _ = writeln!(w, "rootpw --iscrypted --allow-ssh {h}");
        }
        Some(h) => {
            let _ = writeln!(w, "rootpw --iscrypted {h}");
        }
        None => w.push_str("rootpw --lock\n"),
    }
    if el >= 8 {
        for k in &install.root_ssh_keys {
            let _ = writeln!(w, "sshkey --username=root \"{k}\"");
        }
    }
    w.push_str("# Network: static for a known node, DHCP otherwise.\n");
    match node {
        Some((_, n)) => {
            w.push_str(&network_line(cluster, n, &netmask)?);
            w.push('\n');
        }
        None => w.push_str("%include /tmp/kubeha-network.ks\n"),
    }
    w.push_str("# Storage: exactly one disk (ignoredisk --only-use), no swap.\n");
    match node.and_then(|(_, n)| n.disk.as_deref()) {
        Some(d) => {
            let d = disk_name(d)?;
            let _ = writeln!(w, "ignoredisk --only-use={d}");
            w.push_str("zerombr\n");
            let _ = writeln!(w, "clearpart --all --initlabel --drives={d}");
            w.push_str("reqpart --add-boot\n");
            let _ = writeln!(
                w,
                "part / --fstype=xfs --size=8192 --grow --ondisk={d} --label={}",
                root_label(&cluster.cluster.name)
            );
            let _ = writeln!(w, "bootloader --location=mbr --boot-drive={d}");
        }
        None => w.push_str("%include /tmp/kubeha-storage.ks\n"),
    }
    w.push_str("reboot --eject\n\n");

    let pre = PRE
        .replace("@NODE_BY_MAC@", &node_by_mac_arms(cluster))
        .replace("@NODE_FACTS@", &node_facts_arms(cluster))
        .replace("@NETMASK@", &netmask)
        .replace(
            "@GATEWAY@",
            &cluster
                .networking
                .gateway
                .map(|g| g.to_string())
                .unwrap_or_default(),
        )
        .replace(
            "@NAMESERVERS@",
            &cluster
                .networking
                .nameservers
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .replace(
            "@DEFAULT_NAME@",
            node.map(|(_, n)| n.name.as_str()).unwrap_or(""),
        )
        .replace("@CLUSTER@", &cluster.cluster.name)
        .replace("@ROOT_LABEL@", &root_label(&cluster.cluster.name))
        .replace("@FIREWALL_MASTER@", &firewall_line(cluster, Role::Master))
        .replace("@FIREWALL_WORKER@", &firewall_line(cluster, Role::Worker))
        .replace("@PROTOCOLS_MASTER@", &protocols(cluster, Role::Master))
        .replace("@PROTOCOLS_WORKER@", &protocols(cluster, Role::Worker));
    let _ = write!(
        w,
        "%pre --interpreter=/bin/bash --erroronfail --log=/tmp/kubeha-pre.log\n{pre}%end\n\n"
    );

    w.push_str("%packages\n@core\nchrony\ngrubby\n");
    for p in &opts.packages {
        let _ = writeln!(w, "{p}");
    }
    w.push_str("%end\n\n");

    let kernel_args = CgroupVersion::kernel_arg(el, install.cgroup).unwrap_or_default();
    let post_nochroot = POST_NOCHROOT
        .replace("@KERNEL_ARGS@", kernel_args)
        .replace("@CLUSTER@", &cluster.cluster.name)
        .replace("@ROOT_LABEL@", &root_label(&cluster.cluster.name))
        .replace("@SOURCE@", &opts.source.base());
    let _ = write!(
        w,
        "%post --nochroot --interpreter=/bin/bash --erroronfail --log=/mnt/sysimage/root/kubeha-post-nochroot.log\n{post_nochroot}%end\n\n"
    );
    let keys = if el == 7 && !install.root_ssh_keys.is_empty() {
        format!(
            "# EL7's kickstart has no sshkey command.\ninstall -d -m 0700 /root/.ssh\ncat >> /root/.ssh/authorized_keys <<'KUBEHA_KEYS'\n{}\nKUBEHA_KEYS\nchmod 0600 /root/.ssh/authorized_keys\nrestorecon -R /root/.ssh || true\n",
            install.root_ssh_keys.join("\n")
        )
    } else {
        String::new()
    };
    let post = POST.replace("@SSH_KEYS@\n", &keys);
    let _ = write!(
        w,
        "%post --interpreter=/bin/bash --erroronfail --log=/root/kubeha-post.log\n{post}%end\n"
    );
    Ok(ks)
}

/// The label of the root filesystem every kubeha install makes: `kubeha` and the first 6 hex digits of the
/// SHA-256 of the cluster's name (12 characters, XFS's limit). It is the install-once marker: `%pre` reads the
/// labels of the disk it is about to wipe (blkid, no mount) and refuses when one is this, unless the kernel
/// command line says `kubeha.reinstall=1` (docs/media.md). The hash keeps the label short and tells this
/// cluster's nodes from another's; a disk of another cluster (or none) installs as before.
pub fn root_label(cluster_name: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "kubeha{}",
        &hex::encode(Sha256::digest(cluster_name.as_bytes()))[..6]
    )
}

/// The kickstart `firewall` command for a node of `role`: every TCP/UDP rule of [`ports::for_cluster`].
pub fn firewall_line(cluster: &Cluster, role: Role) -> String {
    let p: Vec<String> = ports::for_cluster(cluster, role)
        .iter()
        .filter_map(ports::Open::kickstart)
        .collect();
    format!("firewall --enabled --service=ssh --port={}", p.join(","))
}

/// `%pre`'s `node_by_mac` case arms: each node with a MAC, `'MAC') echo 'NAME' ;;` (MACs normalized lowercase with
/// colons, as `%pre` reads them from /sys).
fn node_by_mac_arms(cluster: &Cluster) -> String {
    cluster
        .nodes()
        .filter_map(|(_, n)| {
            let mac = n.mac.as_deref().and_then(normalize_mac)?;
            Some(format!(
                "        {}) echo {} ;;",
                sh_quote(&mac),
                sh_quote(&n.name)
            ))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `%pre`'s `node_facts` case arms: each node's role, IP, MAC and install disk (empty when unset).
fn node_facts_arms(cluster: &Cluster) -> String {
    cluster
        .nodes()
        .map(|(r, n)| {
            format!(
                "        {}) node_role={}; node_ip={}; node_mac={}; node_disk={} ;;",
                sh_quote(&n.name),
                sh_quote(&r.to_string()),
                sh_quote(&n.ip.to_string()),
                sh_quote(&n.mac.as_deref().and_then(normalize_mac).unwrap_or_default()),
                sh_quote(
                    n.disk
                        .as_deref()
                        .map(|d| d.trim_start_matches("/dev/"))
                        .unwrap_or_default()
                ),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A shell word that is `s` literally: single-quoted, a `'` inside as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The whole IP protocols (by number) a node of `role` lets in, which `%post` adds with `firewall-offline-cmd`.
fn protocols(cluster: &Cluster, role: Role) -> String {
    ports::for_cluster(cluster, role)
        .iter()
        .filter(|o| matches!(o.proto, ports::Proto::Ip(_)))
        .map(ports::Open::firewalld)
        .collect::<Vec<_>>()
        .join(" ")
}

fn network_line(cluster: &Cluster, n: &Node, netmask: &str) -> Result<String> {
    let dev = match &n.mac {
        Some(m) => normalize_mac(m).ok_or_else(|| {
            bad(
                format!("{}.mac", n.name),
                format!("'{m}' is not a MAC address"),
            )
        })?,
        None => "link".into(),
    };
    let mut s = format!(
        "network --device={dev} --bootproto=static --ip={} --netmask={netmask}",
        n.ip
    );
    if let Some(g) = cluster.networking.gateway {
        let _ = write!(s, " --gateway={g}");
    }
    if !cluster.networking.nameservers.is_empty() {
        let ns: Vec<String> = cluster
            .networking
            .nameservers
            .iter()
            .map(|n| n.to_string())
            .collect();
        let _ = write!(s, " --nameserver={}", ns.join(","));
    }
    let _ = write!(s, " --hostname={} --activate --onboot=on", n.name);
    Ok(s)
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
    fn node_arms_are_quoted_shell_words() {
        let mut c = Cluster::default_cluster();
        c.masters[0].mac = Some("52-54-00-AA-BB-01".into());
        c.masters[0].disk = Some("/dev/disk/by-id/x".into());
        let by_mac = node_by_mac_arms(&c);
        assert_eq!(
            by_mac.lines().collect::<Vec<_>>(),
            [format!(
                "        '52:54:00:aa:bb:01') echo '{}' ;;",
                c.masters[0].name
            )],
            "only the nodes with a MAC, normalized"
        );
        let facts = node_facts_arms(&c);
        assert_eq!(facts.lines().count(), c.nodes().count());
        assert!(facts.contains(&format!(
            "        '{}') node_role='master'; node_ip='{}'; node_mac='52:54:00:aa:bb:01'; node_disk='disk/by-id/x' ;;",
            c.masters[0].name, c.masters[0].ip
        )), "{facts}");
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
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
}
