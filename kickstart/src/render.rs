//! The renderer: a pure function from a checked [`Plan`] to the kickstart text, the `%pre`, `%post --nochroot`
//! and `%post` templates filled by plain `@NAME@` substitution. No I/O, no check left to fail.

use std::fmt::Write as _;

use kubeha_model::cluster::{normalize_mac, Cluster, Role};
use kubeha_model::kube::ports;

use crate::plan::{Known, Plan};

const PRE: &str = include_str!("../templates/pre.sh");
const POST_NOCHROOT: &str = include_str!("../templates/post-nochroot.sh");
const POST: &str = include_str!("../templates/post.sh");
/// The helpers both %pre and %post --nochroot use (`arg`, `report`): one definition, rendered into each.
const LIB: &str = include_str!("../templates/lib.sh");

/// The kickstart text of a plan.
pub(crate) fn kickstart(plan: &Plan) -> String {
    let Plan {
        cluster,
        el,
        source,
        os_url,
        packages,
        ref node,
        ref netmask,
        ref root_label,
        kernel_args,
    } = *plan;
    let install = &cluster.install;
    let mut ks = String::new();
    let w = &mut ks;
    let _ = writeln!(
        w,
        "# kubeha kickstart for EL{el}, cluster {}{}.",
        cluster.cluster.name,
        match node {
            Some(n) => format!(", {} {}", n.role, n.name),
            None => String::from(", any node (kubeha.name=/kubeha.role= or MAC match)"),
        }
    );
    let _ = writeln!(
        w,
        "# Written by kubeha {}; check it with: ksvalidator -v RHEL{el} FILE",
        env!("CARGO_PKG_VERSION")
    );
    w.push_str("text\nskipx\n");
    if let Some(u) = os_url {
        let _ = writeln!(w, "url --url={u}");
    }
    let _ = writeln!(w, "repo --name=kubeha --baseurl={}", source.repo_url());
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
        Some(n) => {
            let _ = writeln!(w, "{}", firewall_line(cluster, n.role));
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
        Some(n) => {
            w.push_str(&network_line(cluster, n, netmask));
            w.push('\n');
        }
        None => w.push_str("%include /tmp/kubeha-network.ks\n"),
    }
    w.push_str("# Storage: exactly one disk (ignoredisk --only-use), no swap.\n");
    match node.as_ref().and_then(|n| n.disk.as_deref()) {
        Some(d) => {
            let _ = writeln!(w, "ignoredisk --only-use={d}");
            w.push_str("zerombr\n");
            let _ = writeln!(w, "clearpart --all --initlabel --drives={d}");
            w.push_str("reqpart --add-boot\n");
            let _ = writeln!(
                w,
                "part / --fstype=xfs --size=8192 --grow --ondisk={d} --label={root_label}"
            );
            let _ = writeln!(w, "bootloader --location=mbr --boot-drive={d}");
        }
        None => w.push_str("%include /tmp/kubeha-storage.ks\n"),
    }
    w.push_str("reboot --eject\n\n");

    let pre = PRE
        .replace("@LIB@\n", LIB)
        .replace("@NODE_BY_MAC@", &node_by_mac_arms(cluster))
        .replace("@NODE_FACTS@", &node_facts_arms(cluster))
        .replace("@NETMASK@", netmask)
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
            node.as_ref().map(|n| n.name).unwrap_or(""),
        )
        .replace("@CLUSTER@", &cluster.cluster.name)
        .replace("@ROOT_LABEL@", root_label)
        .replace("@FIREWALL_MASTER@", &firewall_line(cluster, Role::Master))
        .replace("@FIREWALL_WORKER@", &firewall_line(cluster, Role::Worker))
        .replace("@PROTOCOLS_MASTER@", &protocols(cluster, Role::Master))
        .replace("@PROTOCOLS_WORKER@", &protocols(cluster, Role::Worker));
    let _ = write!(
        w,
        "%pre --interpreter=/bin/bash --erroronfail --log=/tmp/kubeha-pre.log\n{pre}%end\n\n"
    );

    w.push_str("%packages\n@core\nchrony\ngrubby\n");
    for p in packages {
        let _ = writeln!(w, "{p}");
    }
    w.push_str("%end\n\n");

    let post_nochroot = POST_NOCHROOT
        .replace("@LIB@\n", LIB)
        .replace("@KERNEL_ARGS@", kernel_args)
        .replace("@CLUSTER@", &cluster.cluster.name)
        .replace("@ROOT_LABEL@", root_label)
        .replace("@SOURCE@", &source.base());
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
    ks
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

/// The known node's static `network` command.
fn network_line(cluster: &Cluster, n: &Known, netmask: &str) -> String {
    let mut s = format!(
        "network --device={} --bootproto=static --ip={} --netmask={netmask}",
        n.device, n.ip
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
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
