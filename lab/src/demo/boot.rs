//! A lab node's boot (`kubeha-lab node-boot`, started by [`super::fleet::Fleet::start_agent`]): this process enters
//! the node's network namespace and makes a mount and a UTS namespace of its own, in which the node's own directories
//! are bind-mounted from its root over the host's paths. The real kubeadm, kubelet, containerd and the static pods'
//! containers then read and write their real paths (/etc/kubernetes, /var/lib/kubelet, /var/lib/etcd,
//! /run/containerd, ...) inside the node, while the host's binaries and libraries stay usable. (A chroot into the
//! node's EL root is not enough: that root is installed from the demo's generated stub RPMs and cannot run the real
//! daemons.) Then what systemd does at boot before it starts kubeha-firstboot.service: every unit the node has enabled
//! (its wants links under its root, made by the systemctl stand-in's `enable`) is started, so a node power-cycled after
//! an earlier run enabled containerd, kubelet, nginx and keepalived has them running again, with the files that run
//! left behind (e.g. the static pods of a killed `kubeadm init`), as a real EL node would. A unit that fails to start
//! does not stop the boot (as with systemd). Last, the agent replaces this process (same pid) in a session of its own.
//!
//! The empty mount points on the host are created once; nothing is mounted outside the node's namespace.

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Every directory Kubernetes, containerd and the agent's cluster steps use on a node.
pub const NODE_DIRS: [&str; 15] = [
    "/etc/kubernetes",
    "/etc/kubeha",
    "/etc/containerd",
    "/etc/cni",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/var/lib/kubeha",
    "/var/lib/containerd",
    "/var/lib/cni",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",
    "/run/netns",
    "/opt/cni",
    "/usr/libexec/kubernetes",
];

/// The units a boot starts when the node enabled them, in this order.
pub const BOOT_UNITS: [&str; 4] = ["containerd", "keepalived", "nginx", "kubelet"];

/// The units of [`BOOT_UNITS`] the node root has enabled (a symlink in its multi-user.target.wants).
pub fn enabled_units(root: &Path) -> Vec<&'static str> {
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    BOOT_UNITS
        .into_iter()
        .filter(|u| {
            std::fs::symlink_metadata(wants.join(format!("{u}.service")))
                .is_ok_and(|m| m.file_type().is_symlink())
        })
        .collect()
}

/// Boots the node (see the module's doc) and execs `cmd` (never returns on success). Must run single-threaded
/// (unshare(2) of a mount namespace refuses a threaded process): `kubeha-lab node-boot` calls it first thing.
pub fn node_boot(netns: &Path, root: &Path, cmd: &[String]) -> Result<std::convert::Infallible> {
    let Some((program, args)) = cmd.split_first() else {
        bail!("node-boot: no command to run");
    };
    if !root.is_dir() {
        bail!("node-boot: no node root {}", root.display());
    }
    let ns = std::fs::File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    setns(&ns, CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering {}", netns.display()))?;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)
        .context("unshare(CLONE_NEWNS | CLONE_NEWUTS)")?;
    // Nothing mounted here propagates back to the host (`unshare --propagation private`).
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making / private in the node's mount namespace")?;
    for d in NODE_DIRS {
        let own = root.join(d.trim_start_matches('/'));
        for p in [own.as_path(), Path::new(d)] {
            std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        mount(Some(&own), d, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .with_context(|| format!("bind-mounting {} over {d}", own.display()))?;
    }
    // The hostname stand-in sets the hostname only in this UTS namespace.
    let uts = std::fs::read_link("/proc/self/ns/uts").context("reading /proc/self/ns/uts")?;
    for u in enabled_units(root) {
        println!("node boot: starting {u}.service (enabled)");
        let ok = Command::new("systemctl")
            .args(["start", u])
            .env("KHD_NODE_UTS", &uts)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("node boot: {u}.service failed to start");
        }
    }
    nix::unistd::setsid().context("setsid")?;
    let e = Command::new(program)
        .args(args)
        .env("KHD_NODE_UTS", &uts)
        .exec();
    bail!("node-boot: running {program}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_units_are_the_wants_links() {
        let d = std::env::temp_dir().join(format!("kubeha-lab-boot-{}", std::process::id()));
        let wants = d.join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        assert!(enabled_units(&d).is_empty());
        std::os::unix::fs::symlink("/x/kubelet.service", wants.join("kubelet.service")).unwrap();
        std::os::unix::fs::symlink("/x/containerd.service", wants.join("containerd.service"))
            .unwrap();
        // A plain file is not an enabled unit; nor is a unit the boot does not start.
        std::fs::write(wants.join("nginx.service"), "").unwrap();
        std::os::unix::fs::symlink("/x/sshd.service", wants.join("sshd.service")).unwrap();
        assert_eq!(enabled_units(&d), vec!["containerd", "kubelet"]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
