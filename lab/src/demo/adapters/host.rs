//! The small adapters: the tools that would change the host, each checking the call the agent makes and
//! recording it (firewall-offline-cmd, nginx -t and `sysctl -w` of net.* keys run the REAL tool on the node's
//! root or in its network namespace).

use super::common::{glob, grep_read, nginx_demo_conf, nginx_flags, read_lines, Ad, Res};

/// firewalld is not running on the demo nodes (the agent then uses firewall-offline-cmd).
pub(super) fn firewall_cmd(ad: &Ad) -> Res {
    if ad.all() != "--state" {
        return Err(ad.fail(format!(
            "firewalld is not running; unexpected call: {}",
            ad.all()
        )));
    }
    println!("not running");
    Ok(252)
}

/// The REAL firewall-offline-cmd, pointed at the node root's /etc/firewalld (--system-config).
pub(super) fn firewall_offline_cmd(ad: &Ad) -> Res {
    let mut args = vec![
        "--system-config".to_string(),
        ad.rootp("/etc/firewalld").display().to_string(),
        "--default-config".into(),
        "/usr/lib/firewalld".into(),
    ];
    args.extend(ad.args.iter().cloned());
    Err(ad.exec("/usr/bin/firewall-offline-cmd", &args))
}

/// A fresh EL node runs SELinux Enforcing; setenforce changes the node's mode.
pub(super) fn getenforce(ad: &Ad) -> Res {
    if !ad.args.is_empty() {
        return Err(ad.fail("takes no arguments"));
    }
    match std::fs::read(ad.pids.join("selinux")) {
        Ok(b) => {
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(&b);
        }
        Err(_) => println!("Enforcing"),
    }
    Ok(0)
}

/// Records the node's runtime SELinux mode (never touches the host).
pub(super) fn setenforce(ad: &Ad) -> Res {
    let mode = match ad.arg(0) {
        "0" | "Permissive" | "permissive" => "Permissive",
        "1" | "Enforcing" | "enforcing" => "Enforcing",
        _ => return Err(ad.fail(format!("usage: setenforce 0|1 (got: {})", ad.all()))),
    };
    std::fs::write(ad.pids.join("selinux"), format!("{mode}\n"))
        .map_err(|e| ad.fail(format!("selinux: {e}")))?;
    let conf = grep_read(&ad.rootp("/etc/selinux/config"));
    if !conf
        .split('\n')
        .any(|l| l.starts_with("SELINUX=permissive"))
    {
        return Err(ad.fail("/etc/selinux/config not set to permissive before setenforce"));
    }
    Ok(0)
}

/// `^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
fn valid_hostname(n: &str) -> bool {
    let end = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b: Vec<char> = n.chars().collect();
    !b.is_empty()
        && end(b[0])
        && end(b[b.len() - 1])
        && b.iter().all(|c| end(*c) || *c == '-' || *c == '.')
}

/// Checks the name, keeps it in ROOT/run/kubeha-demo/hostname, and sets it for real in the node's own UTS namespace
/// (kubeha-lab node-boot runs each node in one and exports it as KHD_NODE_UTS; the agent also writes ROOT/etc/hostname
/// itself). Anywhere else it would rename the host: refused.
pub(super) fn hostname(ad: &Ad) -> Res {
    let f = ad.pids.join("hostname");
    match ad.args.len() {
        0 => {
            match std::fs::read(&f) {
                Ok(b) => {
                    use std::io::Write as _;
                    let _ = std::io::stdout().write_all(&b);
                }
                Err(_) => println!("localhost.localdomain"),
            }
            Ok(0)
        }
        1 => {
            let name = ad.arg(0);
            if !valid_hostname(name) {
                return Err(ad.fail(format!("not a valid hostname: {name}")));
            }
            let node = ad.env("KHD_NODE")?;
            if name != node {
                return Err(ad.fail(format!("hostname {name}, but this node is {node}")));
            }
            std::fs::write(&f, format!("{name}\n"))
                .map_err(|e| ad.fail(format!("hostname: {e}")))?;
            let uts = std::env::var("KHD_NODE_UTS").unwrap_or_default();
            let mine = std::fs::read_link("/proc/self/ns/uts")
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if uts.is_empty() || mine != uts {
                return Err(
                    ad.fail("not in the node's own UTS namespace: refusing to rename the host")
                );
            }
            match nix::unistd::sethostname(name) {
                Ok(()) => Ok(0),
                Err(e) => {
                    eprintln!("hostname: you must be root to change the host name ({e})");
                    Ok(1)
                }
            }
        }
        _ => Err(ad.fail(format!("unexpected arguments: {}", ad.all()))),
    }
}

/// Modules are the host kernel's (lab.md: br_netfilter and overlay are built in): the module must be one the agent
/// also lists in modules-load.d, and the kernel must have it.
pub(super) fn modprobe(ad: &Ad) -> Res {
    if ad.args.len() != 1 {
        return Err(ad.fail(format!("expected one module, got: {}", ad.all())));
    }
    let m = ad.arg(0);
    let list = grep_read(&ad.rootp("/etc/modules-load.d/kubeha.conf"));
    if !list.split('\n').any(|l| l == m) {
        return Err(ad.fail(format!("{m} is not in /etc/modules-load.d/kubeha.conf")));
    }
    let has_overlay = || {
        std::fs::read_to_string("/proc/filesystems")
            .unwrap_or_default()
            .split_whitespace()
            .any(|w| w == "overlay")
    };
    match m {
        "br_netfilter"
            if !std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() =>
        {
            Err(ad.fail("kernel has no br_netfilter"))
        }
        "overlay" if !has_overlay() => Err(ad.fail("kernel has no overlay")),
        _ => Ok(0),
    }
}

/// `nginx -t -c /etc/nginx/nginx.conf`: the REAL nginx checks the node's config (adjusted for this Debian host, see
/// [`nginx_demo_conf`]).
pub(super) fn nginx(ad: &Ad) -> Res {
    if ad.all() != "-t -c /etc/nginx/nginx.conf" {
        return Err(ad.fail(format!(
            "expected 'nginx -t -c /etc/nginx/nginx.conf', got: {}",
            ad.all()
        )));
    }
    let conf = nginx_demo_conf(ad)?;
    let mut args = vec!["-t".to_string()];
    args.extend(nginx_flags(ad));
    args.extend(["-c".to_string(), conf.display().to_string()]);
    Err(ad.exec("/usr/sbin/nginx", &args))
}

/// `[[:space:]]`
fn space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `^[^#].*[[:space:]]swap[[:space:]]`: an fstab line that mounts swap.
fn swap_line(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b[0] != b'#'
        && (1..b.len()).any(|i| {
            space(b[i])
                && b.get(i + 1..i + 5) == Some(b"swap")
                && b.get(i + 5).is_some_and(|c| space(*c))
        })
}

/// Checks the call and that the node's fstab no longer mounts swap.
pub(super) fn swapoff(ad: &Ad) -> Res {
    if ad.all() != "-a" {
        return Err(ad.fail(format!("expected 'swapoff -a', got: {}", ad.all())));
    }
    let fstab = std::fs::read_to_string(ad.rootp("/etc/fstab")).unwrap_or_default();
    if fstab.split('\n').any(swap_line) {
        return Err(ad.fail("fstab still has an active swap line"));
    }
    Ok(0)
}

/// `sysctl --system` would set the host's kernel. Every line of the node's sysctl.d files must name a key this
/// kernel has; net.* keys are per network namespace, so they are set for real in the node's (kubeadm's preflight
/// reads net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables there); others are recorded (in
/// ROOT/run/kubeha-demo/sysctl).
pub(super) fn sysctl(ad: &Ad) -> Res {
    use std::io::Write as _;
    if ad.all() != "--system" {
        return Err(ad.fail(format!("expected 'sysctl --system', got: {}", ad.all())));
    }
    for f in glob(&ad.rootp("/etc/sysctl.d"), ".conf") {
        if !f.is_file() {
            continue;
        }
        let text =
            std::fs::read_to_string(&f).map_err(|e| ad.fail(format!("{}: {e}", f.display())))?;
        for l in read_lines(&text) {
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            let (k, v) = match l.split_once('=') {
                Some((k, v)) => (k, v),
                None => (l, l),
            };
            let (k, v) = (k.replace(' ', ""), v.replace(' ', ""));
            if !std::path::Path::new(&format!("/proc/sys/{}", k.replace('.', "/"))).exists() {
                return Err(ad.fail(format!("{}: unknown sysctl {k}", f.display())));
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(ad.pids.join("sysctl"))
                .and_then(|mut o| writeln!(o, "{k} = {v}"))
                .map_err(|e| ad.fail(format!("sysctl: {e}")))?;
            if k.starts_with("net.") {
                let ok = std::process::Command::new("/sbin/sysctl")
                    .args(["-q", "-w", &format!("{k}={v}")])
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    return Err(ad.fail(format!(
                        "{}: sysctl -w {k}={v} failed in the node's network namespace",
                        f.display()
                    )));
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostnames() {
        for ok in ["k8s-master01", "a", "a.b-c9"] {
            assert!(super::valid_hostname(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a."] {
            assert!(!super::valid_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn swap_lines() {
        assert!(super::swap_line(
            "/dev/mapper/rl-swap none swap defaults 0 0"
        ));
        assert!(super::swap_line("UUID=x\tnone\tswap\tsw\t0 0"));
        assert!(!super::swap_line(
            "#/dev/mapper/rl-swap none swap defaults 0 0"
        ));
        assert!(!super::swap_line("/dev/sda1 / xfs defaults 0 0"));
        assert!(!super::swap_line(" swap "));
    }
}
