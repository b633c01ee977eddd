//! A demo node's root and cgroups (asked by the node stages, [`super::cluster`]): the cached base system every node
//! root is a copy of ([`base_root`]: the real `dnf --installroot` from the base repos, then the files an installed
//! EL system has), the lab's kubeadm patch for the node's kubelet ([`write_patches`]), and the node's cgroup subtree
//! in every cgroup v1 controller hierarchy ([`v1_hierarchies`], [`cgroup_up`], [`cgroup_down`]), and stopping a node
//! ([`stop`]: every process in its mount namespaces and cgroups, then its cgroups).

use super::probe;
use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where the kernel's cgroup hierarchies are mounted.
pub const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// The node's cgroup root (kubelet's `cgroupRoot`): `/PREFIX-NAME`, the same path in every hierarchy.
pub fn cgroup_root(prefix: &str, name: &str) -> String {
    format!("/{prefix}-{name}")
}

/// The node's subtree in the hierarchy `hierarchy`.
pub fn cgroup_dir(hierarchy: &Path, prefix: &str, name: &str) -> PathBuf {
    hierarchy.join(format!("{prefix}-{name}"))
}

/// Every cgroup v1 controller hierarchy under `mount` (this host boots cgroup v1, hybrid), sorted by name: the
/// directories (not symlinks: `cpu` -> `cpu,cpuacct` is one hierarchy) that have a `cgroup.procs`, except `unified`
/// (the cgroup v2 part of the hybrid layout). Hidden entries are no hierarchy (as bash's `*/` glob sees it).
pub fn v1_hierarchies(mount: &Path) -> Vec<PathBuf> {
    let Ok(d) = std::fs::read_dir(mount) else {
        return vec![];
    };
    let mut out: Vec<PathBuf> = d
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.')
                && name != "unified"
                && e.file_type().is_ok_and(|t| t.is_dir())
                && e.path().join("cgroup.procs").is_file()
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Makes the node's subtree in every hierarchy; in cpuset's, its `cpuset.cpus` and `cpuset.mems` are copied from the
/// parent (nothing can join a cpuset cgroup before both are set).
pub fn cgroup_up(hierarchies: &[PathBuf], prefix: &str, name: &str) -> Result<()> {
    for c in hierarchies {
        let d = cgroup_dir(c, prefix, name);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        if d.join("cpuset.cpus").is_file() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read(c.join(f))
                    .with_context(|| format!("reading {}", c.join(f).display()))?;
                std::fs::write(d.join(f), v)
                    .with_context(|| format!("writing {}", d.join(f).display()))?;
            }
        }
    }
    Ok(())
}

/// Removes the node's subtree from every hierarchy, deepest first, once its processes are gone; a cgroup that
/// cannot go (still busy) stays, and so do its parents.
pub fn cgroup_down(hierarchies: &[PathBuf], prefix: &str, name: &str) {
    for c in hierarchies {
        let d = cgroup_dir(c, prefix, name);
        if d.is_dir() {
            remove_dirs(&d);
        }
    }
}

/// STATE/logs/NAME.mntns: the node's mount namespaces (`mnt:[...]`), one line per agent start.
pub fn mntns_file(state: &Path, name: &str) -> PathBuf {
    state.join("logs").join(format!("{name}.mntns"))
}

/// The processes of node `name` (the node stages ask it): everything in its mount namespaces (STATE/logs/NAME.mntns:
/// agent, daemons, containerd's shims; one namespace per agent start, and a restarted agent leaves the daemons of the
/// earlier one running) and in its cgroup subtree in the first hierarchy (the containers, which have mount namespaces
/// of their own); none at all while NAME.mntns does not exist (the node never booted). Never this process.
pub fn node_pids(state: &Path, hierarchies: &[PathBuf], prefix: &str, name: &str) -> Vec<u32> {
    let Ok(mnts) = std::fs::read_to_string(mntns_file(state, name)) else {
        return vec![];
    };
    let cgroup = hierarchies.first().map(|h| cgroup_dir(h, prefix, name));
    probe::node_pids(&mnts, cgroup.as_deref(), std::process::id())
}

/// How a node is stopped: SIGTERM to every process, up to `polls` looks `every` apart until none is left, SIGKILL to
/// what still is, then `settle` (the kernel lets go of the cgroups).
pub struct StopTiming {
    pub polls: u32,
    pub every: Duration,
    pub settle: Duration,
}

/// The lab's: SIGTERM, 30 looks 0.1 s apart (3 s), SIGKILL, 0.2 s.
pub const STOP: StopTiming = StopTiming {
    polls: 30,
    every: Duration::from_millis(100),
    settle: Duration::from_millis(200),
};

/// The signalling part of [`stop`]: `pids` lists the node's processes at each look, `signal` sends one (errors are
/// the signal's business: a process may be gone), `sleep` waits.
pub fn signal_all(
    t: &StopTiming,
    pids: &mut dyn FnMut() -> Vec<u32>,
    signal: &mut dyn FnMut(u32, Signal),
    sleep: &mut dyn FnMut(Duration),
) {
    for p in pids() {
        signal(p, Signal::SIGTERM);
    }
    for _ in 0..t.polls {
        if pids().is_empty() {
            break;
        }
        sleep(t.every);
    }
    for p in pids() {
        signal(p, Signal::SIGKILL);
    }
    sleep(t.settle);
}

/// Stops every process of node `name` ([`signal_all`] with [`STOP`] over [`node_pids`]),
/// then removes its cgroups ([`cgroup_down`]) and empties STATE/logs/NAME.mntns: its mount namespaces are gone with
/// their processes, and the kernel reuses their inode numbers for the next namespaces made (another node's boot): a
/// stale entry there would make this node's next stop kill that node.
pub fn stop(state: &Path, hierarchies: &[PathBuf], prefix: &str, name: &str) -> Result<()> {
    signal_all(
        &STOP,
        &mut || node_pids(state, hierarchies, prefix, name),
        &mut |p, s| {
            if let Ok(p) = i32::try_from(p) {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), s);
            }
        },
        &mut std::thread::sleep,
    );
    cgroup_down(hierarchies, prefix, name);
    forget_daemons(&state.join("nodes").join(name));
    let m = mntns_file(state, name);
    std::fs::write(&m, "").with_context(|| format!("emptying {}", m.display()))
}

/// The daemon pid files the systemctl stand-in keeps under a node root (ROOT/run/kubeha-demo/*.pid), removed once
/// the node's processes are gone: a power-off empties /run (a tmpfs on EL). Left in place, they would name processes
/// that no longer run, and the next boot's `systemctl start` would take a pid the kernel handed out again, or one
/// still a zombie (this machine's PID 1 reaps orphans only every few seconds), for the unit running and not start it:
/// a power-cycled master came back without its keepalived, nginx, containerd and kubelet.
pub fn forget_daemons(root: &Path) {
    let dir = root.join("run/kubeha-demo");
    if let Ok(d) = std::fs::read_dir(&dir) {
        for e in d.flatten() {
            if e.path().extension().is_some_and(|x| x == "pid") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// `find DIR -depth -type d -exec rmdir {} +`, errors ignored: every directory below `dir` (symlinks not followed),
/// children before their parent.
fn remove_dirs(dir: &Path) {
    if let Ok(d) = std::fs::read_dir(dir) {
        for e in d.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// The lab's kubeadm patch for the node's kubelet (kubeletconfiguration+merge.yaml), what only the lab needs: the
/// cgroupfs driver (systemd is not PID 1 here; containerd gets SystemdCgroup = false from the systemctl adapter to
/// match), a cgroup root of its own (five kubelets on one kernel), and no disk-based eviction: the five kubelets see
/// the host's one filesystem, so its fill level (a build host's caches) would put every node under DiskPressure and
/// evict the CNI pods (CI saw exactly that); kind sets the same thresholds.
pub fn kubelet_patch(cgroup_root: &str) -> String {
    [
        "apiVersion: kubelet.config.k8s.io/v1beta1",
        "kind: KubeletConfiguration",
        "cgroupDriver: cgroupfs",
        &format!("cgroupRoot: {cgroup_root}"),
        "evictionHard:",
        "  memory.available: \"100Mi\"",
        "  nodefs.available: \"0%\"",
        "  nodefs.inodesFree: \"0%\"",
        "  imagefs.available: \"0%\"",
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect()
}

/// Writes ROOT/etc/kubeha/kubeadm-patches/kubeletconfiguration+merge.yaml (the directory mode 0700; the agent points
/// kubeadm at it when it exists).
pub fn write_patches(root: &Path, cgroup_root: &str) -> Result<PathBuf> {
    let dir = root.join("etc/kubeha/kubeadm-patches");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    let p = dir.join("kubeletconfiguration+merge.yaml");
    std::fs::write(&p, kubelet_patch(cgroup_root))
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

/// The base root's cache key: the first 16 hex digits of the SHA-256 over bundle.toml followed by every
/// `BASE_REPOS/*/repodata/repomd.xml` in name order (what `cat ... | sha256sum` hashed: a repo without one adds
/// nothing, a missing BASE_REPOS only bundle.toml).
pub fn base_key(bundle: &Path, base_repos: &Path) -> Result<String> {
    let toml = bundle.join("bundle.toml");
    let mut h = Sha256::new();
    h.update(std::fs::read(&toml).with_context(|| format!("reading {}", toml.display()))?);
    let mut repos: Vec<PathBuf> = std::fs::read_dir(base_repos)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    repos.sort();
    for r in repos {
        if let Ok(b) = std::fs::read(r.join("repodata/repomd.xml")) {
            h.update(b);
        }
    }
    Ok(hex::encode(h.finalize())[..16].to_string())
}

/// What the bundle's packages require from the base system, from `dnf repoquery --requires '*'`: the rpmlib()
/// capabilities dropped, each version constraint (` >= 1.2`) cut off, sorted and unique, then split into words as
/// dnf's command line got them.
pub fn requirements(repoquery: &str) -> Vec<String> {
    let lines: BTreeSet<&str> = repoquery
        .lines()
        .filter(|l| !l.starts_with("rpmlib("))
        .map(cut_version)
        .collect();
    lines
        .iter()
        .flat_map(|l| l.split_whitespace())
        .map(str::to_string)
        .collect()
}

/// The line up to its first ` OP ` (OP one or two of `<>=`): sed's `s/ [<>=]\{1,2\} .*//`.
fn cut_version(l: &str) -> &str {
    let b = l.as_bytes();
    let op = |i: usize| b.get(i).is_some_and(|c| b"<>=".contains(c));
    for i in 0..b.len() {
        if b[i] == b' '
            && ((op(i + 1) && b.get(i + 2) == Some(&b' '))
                || (op(i + 1) && op(i + 2) && b.get(i + 3) == Some(&b' ')))
        {
            return &l[..i];
        }
    }
    l
}

/// The files a freshly installed EL system has that the lab's nodes read (path under the root, contents): its
/// os-release, SELinux config, fstab, the distribution's repo file, firewalld's config, hosts and the kernel command
/// line (the node's /proc/cmdline; the lab appends kernel arguments to it).
pub fn base_files(el: u8) -> Vec<(&'static str, String)> {
    let os_release = match el {
        7 => "NAME=\"CentOS Linux\"\nVERSION_ID=\"7\"\nID=\"centos\"\n".to_string(),
        _ => format!("NAME=\"Rocky Linux\"\nVERSION_ID=\"{el}.4\"\nID=\"rocky\"\n"),
    };
    vec![
        ("etc/os-release", os_release),
        (
            "etc/selinux/config",
            "SELINUX=enforcing\nSELINUXTYPE=targeted\n".into(),
        ),
        (
            "etc/fstab",
            "/dev/mapper/rl-root / xfs defaults 0 0\n/dev/mapper/rl-swap none swap defaults 0 0\n".into(),
        ),
        (
            "etc/yum.repos.d/rocky.repo",
            format!("[baseos]\nname=BaseOS\nmirrorlist=https://mirrors.rockylinux.org/mirrorlist?repo=BaseOS-{el}\nenabled=1\n"),
        ),
        ("etc/firewalld/firewalld.conf", "DefaultZone=public\n".into()),
        (
            "etc/hosts",
            "127.0.0.1   localhost localhost.localdomain\n::1         localhost6\n".into(),
        ),
        (
            "proc/cmdline",
            "BOOT_IMAGE=/vmlinuz root=/dev/mapper/rl-root ro\n".into(),
        ),
    ]
}

/// The inputs of the base root.
pub struct BaseRoot<'a> {
    /// The node stages' state directory: the root goes to STATE/base-root, dnf's cache to STATE/dnf-cache, its log to
    /// STATE/logs/base-root.log.
    pub state: &'a Path,
    pub bundle: &'a Path,
    /// One subdirectory per base repo.
    pub base_repos: &'a Path,
    pub el: u8,
    /// The profile's base repos (`base = true`).
    pub repos: &'a [String],
}

impl BaseRoot<'_> {
    /// Every dnf call: the root, the release, no host repos or cache, no GPG, no weak dependencies.
    fn dnf(&self, root: &Path) -> Command {
        let mut c = Command::new("dnf");
        c.arg("-q")
            .arg("--installroot")
            .arg(root)
            .args(["--releasever", &self.el.to_string()])
            .args(["--setopt=reposdir=/dev/null", "--disablerepo=*"])
            .arg(format!(
                "--setopt=cachedir={}",
                self.state.join("dnf-cache").display()
            ))
            .args(["--setopt=gpgcheck=0", "--setopt=install_weak_deps=False"])
            .stdin(Stdio::null());
        c
    }

    /// STATE/base-root: a freshly installed EL system, what the installer would have put on a node (the base
    /// packages the bundle's RPMs require, installed by the real dnf from the base repos, and [`base_files`]),
    /// kept while its key ([`base_key`], in .ready) stays the same. Returns whether it was built (false: cached).
    pub fn ensure(&self) -> Result<bool> {
        let t = self.state.join("base-root");
        let key = base_key(self.bundle, self.base_repos)?;
        let ready = std::fs::read_to_string(t.join(".ready")).unwrap_or_default();
        if ready.trim_end_matches('\n') == key {
            return Ok(false); // cached from an earlier run on the same inputs
        }
        let mut froms = vec![];
        for r in self.repos {
            let d = self.base_repos.join(r);
            if !d.is_dir() {
                bail!("demo: base repo {} missing (--base-repos)", d.display());
            }
            froms.push(format!("--repofrompath={r},{}", d.display()));
        }
        if t.exists() {
            std::fs::remove_dir_all(&t).with_context(|| format!("removing {}", t.display()))?;
        }
        std::fs::create_dir_all(&t).with_context(|| format!("creating {}", t.display()))?;
        // What the bundle's packages require from the base system (the installer's package set on a real node).
        let mut q = self.dnf(&t);
        q.arg(format!(
            "--repofrompath=kubeha,{}",
            self.bundle.join("rpms").display()
        ))
        .args(["repoquery", "--requires", "*"])
        .stderr(Stdio::null());
        let o = q.output().context("demo: starting dnf repoquery")?;
        ensure!(
            o.status.success(),
            "demo: dnf repoquery --requires on {} failed ({})",
            self.bundle.join("rpms").display(),
            o.status
        );
        let reqs = requirements(&String::from_utf8_lossy(&o.stdout));
        let log = self.state.join("logs/base-root.log");
        std::fs::create_dir_all(self.state.join("logs"))
            .with_context(|| format!("creating {}", self.state.join("logs").display()))?;
        let out =
            std::fs::File::create(&log).with_context(|| format!("writing {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("writing {}", log.display()))?;
        let mut i = self.dnf(&t);
        i.args(&froms)
            .args(["--setopt=strict=False", "install", "-y", "bash"])
            .args(&reqs)
            .stdout(out)
            .stderr(err);
        let ok = i.status().is_ok_and(|s| s.success());
        ensure!(
            ok,
            "demo: installing the base system failed (see {})",
            log.display()
        );
        for d in [
            "etc/selinux",
            "etc/yum.repos.d",
            "etc/firewalld",
            "proc",
            "etc/kubeha",
        ] {
            std::fs::create_dir_all(t.join(d))
                .with_context(|| format!("creating {}", t.join(d).display()))?;
        }
        for (p, text) in base_files(self.el) {
            std::fs::write(t.join(p), text)
                .with_context(|| format!("writing {}", t.join(p).display()))?;
        }
        std::fs::write(t.join(".ready"), format!("{key}\n"))
            .with_context(|| format!("writing {}", t.join(".ready").display()))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_power_off_forgets_the_daemons() {
        let d = std::env::temp_dir().join(format!("kubeha-lab-forget-{}", std::process::id()));
        let run = d.join("run/kubeha-demo");
        std::fs::create_dir_all(&run).unwrap();
        for f in [
            "containerd.pid",
            "ka-main.pid",
            "containerd.toml",
            "selinux",
        ] {
            std::fs::write(run.join(f), "1\n").unwrap();
        }
        forget_daemons(&d);
        let mut left: Vec<_> = std::fs::read_dir(&run)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["containerd.toml", "selinux"]);
        forget_daemons(&d.join("none"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn tmp(what: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kubeha-lab-node-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn patch_bytes() {
        let want = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\n\
                    cgroupRoot: /khd42-m1\nevictionHard:\n  memory.available: \"100Mi\"\n  nodefs.available: \"0%\"\n  \
                    nodefs.inodesFree: \"0%\"\n  imagefs.available: \"0%\"\n";
        assert_eq!(kubelet_patch(&cgroup_root("khd42", "m1")), want);
        let d = tmp("patch");
        let p = write_patches(&d, "/khd42-m1").unwrap();
        assert_eq!(
            p,
            d.join("etc/kubeha/kubeadm-patches/kubeletconfiguration+merge.yaml")
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
        let mode = std::fs::metadata(p.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o700);
        // Again over the old one (a reimage): the same bytes, nothing appended.
        write_patches(&d, "/khd42-m1").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn key_is_what_sha256sum_printed() {
        let d = tmp("key");
        let (b, r) = (d.join("bundle"), d.join("repos"));
        for x in ["baseos", "appstream", "empty"] {
            std::fs::create_dir_all(r.join(x)).unwrap();
        }
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("bundle.toml"), "[bundle]\n").unwrap();
        for x in ["baseos", "appstream"] {
            std::fs::create_dir_all(r.join(x).join("repodata")).unwrap();
            std::fs::write(r.join(x).join("repodata/repomd.xml"), format!("<{x}/>\n")).unwrap();
        }
        let want = hex::encode(Sha256::digest(b"[bundle]\n<appstream/>\n<baseos/>\n"));
        let k = base_key(&b, &r).unwrap();
        assert_eq!(k, want[..16]);
        // The shell's own pipeline (the cache key cluster.sh used): the same key, so a cached root stays valid.
        let sh = Command::new("bash")
            .args([
                "-c",
                "cat \"$1/bundle.toml\" \"$2\"/*/repodata/repomd.xml 2>/dev/null | sha256sum | cut -c1-16",
                "_",
            ])
            .arg(&b)
            .arg(&r)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&sh.stdout).trim(), k);
        // Any repo's metadata changes the key; no repos at all: bundle.toml alone.
        std::fs::write(r.join("baseos/repodata/repomd.xml"), "<new/>\n").unwrap();
        assert_ne!(base_key(&b, &r).unwrap(), k);
        let alone = hex::encode(Sha256::digest(b"[bundle]\n"));
        assert_eq!(base_key(&b, &d.join("none")).unwrap(), alone[..16]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn cached_root_and_missing_repo() {
        let d = tmp("base");
        let (b, r, s) = (d.join("bundle"), d.join("repos"), d.join("state"));
        std::fs::create_dir_all(&b).unwrap();
        std::fs::create_dir_all(&r).unwrap();
        std::fs::write(b.join("bundle.toml"), "[bundle]\n").unwrap();
        let repos = vec!["baseos".to_string()];
        let br = BaseRoot {
            state: &s,
            bundle: &b,
            base_repos: &r,
            el: 9,
            repos: &repos,
        };
        // A missing base repo is named (before anything runs).
        let e = br.ensure().unwrap_err();
        assert!(
            format!("{e:#}").contains(&format!("base repo {} missing", r.join("baseos").display())),
            "{e:#}"
        );
        // A root whose .ready holds the key is kept as it is (no dnf runs).
        std::fs::create_dir_all(s.join("base-root")).unwrap();
        let key = base_key(&b, &r).unwrap();
        std::fs::write(s.join("base-root/.ready"), format!("{key}\n")).unwrap();
        assert!(!br.ensure().unwrap());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn requirements_from_repoquery() {
        let q = "rpmlib(CompressedFileNames) <= 3.0.4-1\nbash\ncontainerd >= 1.6\niptables\nbash\n\
                 libc.so.6()(64bit)\n(a or b)\nconntrack-tools = 1.4 \nx >=y\n";
        assert_eq!(
            requirements(q),
            [
                "(a",
                "or",
                "b)",
                "bash",
                "conntrack-tools",
                "containerd",
                "iptables",
                "libc.so.6()(64bit)",
                "x",
                ">=y"
            ]
        );
        assert_eq!(cut_version("a <> b c"), "a");
        assert_eq!(cut_version("a === b"), "a === b");
        assert!(requirements("").is_empty());
    }

    #[test]
    fn base_files_per_release() {
        let f = base_files(9);
        assert_eq!(
            f[0],
            (
                "etc/os-release",
                "NAME=\"Rocky Linux\"\nVERSION_ID=\"9.4\"\nID=\"rocky\"\n".to_string()
            )
        );
        assert!(f
            .iter()
            .any(|(p, t)| *p == "etc/yum.repos.d/rocky.repo" && t.contains("repo=BaseOS-9\n")));
        assert_eq!(
            base_files(7)[0].1,
            "NAME=\"CentOS Linux\"\nVERSION_ID=\"7\"\nID=\"centos\"\n"
        );
    }

    #[test]
    fn stop_sequence() {
        // Two processes; one goes on SIGTERM at once, the other only after three more looks: no SIGKILL.
        let looks = std::cell::Cell::new(0);
        let mut sent = vec![];
        let mut slept = vec![];
        signal_all(
            &STOP,
            &mut || {
                looks.set(looks.get() + 1);
                match looks.get() {
                    1 => vec![7, 9],
                    2..=4 => vec![9],
                    _ => vec![],
                }
            },
            &mut |p, s| sent.push((p, s)),
            &mut |d| slept.push(d),
        );
        assert_eq!(sent, [(7, Signal::SIGTERM), (9, Signal::SIGTERM)]);
        let tenth = Duration::from_millis(100);
        assert_eq!(slept, [tenth, tenth, tenth, Duration::from_millis(200)]);
        // One that ignores SIGTERM: 30 looks 0.1 s apart, then SIGKILL, then 0.2 s.
        let (mut sent, mut slept) = (vec![], vec![]);
        signal_all(
            &STOP,
            &mut || vec![5],
            &mut |p, s| sent.push((p, s)),
            &mut |d| slept.push(d),
        );
        assert_eq!(sent, [(5, Signal::SIGTERM), (5, Signal::SIGKILL)]);
        assert_eq!(slept.len(), 31);
        assert_eq!(slept[29], tenth);
        assert_eq!(slept[30], Duration::from_millis(200));
        // A node with nothing running: no signal, the settle pause only.
        let (mut sent, mut slept) = (vec![], vec![]);
        signal_all(
            &STOP,
            &mut Vec::new,
            &mut |p, s| sent.push((p, s)),
            &mut |d| slept.push(d),
        );
        assert!(sent.is_empty());
        assert_eq!(slept, [Duration::from_millis(200)]);
    }

    #[test]
    fn stop_without_processes() {
        let d = tmp("stop");
        let cg = d.join("cg");
        fake_cgroups(&cg);
        let hs = v1_hierarchies(&cg);
        let state = d.join("state");
        std::fs::create_dir_all(state.join("logs")).unwrap();
        // No NAME.mntns (never booted): no processes, not even the cgroup's.
        std::fs::create_dir_all(cgroup_dir(&hs[0], "khd7", "m1")).unwrap();
        std::fs::write(
            cgroup_dir(&hs[0], "khd7", "m1").join("cgroup.procs"),
            "4242\n",
        )
        .unwrap();
        assert!(node_pids(&state, &hs, "khd7", "m1").is_empty());
        // With one (empty after a stop): the cgroup's processes.
        std::fs::write(mntns_file(&state, "m1"), "").unwrap();
        assert_eq!(node_pids(&state, &hs, "khd7", "m1"), [4242]);
        std::fs::remove_file(cgroup_dir(&hs[0], "khd7", "m1").join("cgroup.procs")).unwrap();
        // A namespace no process has: nothing to signal; the cgroups go, NAME.mntns is emptied.
        std::fs::write(mntns_file(&state, "m1"), "mnt:[1]\nmnt:[2]\n").unwrap();
        assert!(node_pids(&state, &hs, "khd7", "m1").is_empty());
        cgroup_up(&hs[1..], "khd7", "m1").unwrap();
        stop(&state, &hs, "khd7", "m1").unwrap();
        // (cpuset's stays: rmdir works on cgroupfs with its files, not on a real directory; see cgroup_subtrees.)
        assert!(!cgroup_dir(&hs[0], "khd7", "m1").exists());
        assert!(!cgroup_dir(&hs[2], "khd7", "m1").exists());
        assert_eq!(
            std::fs::read_to_string(mntns_file(&state, "m1")).unwrap(),
            ""
        );
        // A node that never booted gets an empty NAME.mntns too (`: > FILE`); without STATE/logs it fails.
        stop(&state, &hs, "khd7", "w1").unwrap();
        assert!(mntns_file(&state, "w1").is_file());
        assert!(stop(&d.join("none"), &hs, "khd7", "w1").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A fake /sys/fs/cgroup: cpuset and memory hierarchies, `cpu` a symlink to `cpu,cpuacct`, `unified` (v2) and a
    /// directory without cgroup.procs.
    fn fake_cgroups(d: &Path) {
        for h in ["cpuset", "memory", "cpu,cpuacct", "unified", ".hidden"] {
            std::fs::create_dir_all(d.join(h)).unwrap();
            std::fs::write(d.join(h).join("cgroup.procs"), "").unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", d.join("cpu")).unwrap();
        std::fs::create_dir_all(d.join("empty")).unwrap();
        std::fs::write(d.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(d.join("cpuset/cpuset.mems"), "0\n").unwrap();
    }

    #[test]
    fn cgroup_subtrees() {
        let d = tmp("cgroup");
        fake_cgroups(&d);
        let hs = v1_hierarchies(&d);
        assert_eq!(
            hs,
            [d.join("cpu,cpuacct"), d.join("cpuset"), d.join("memory")]
        );
        assert!(v1_hierarchies(&d.join("none")).is_empty());
        // The kernel gives a new cpuset cgroup empty cpuset.cpus/mems: the fake does the same for m1.
        let m1 = cgroup_dir(&d.join("cpuset"), "khd7", "m1");
        std::fs::create_dir_all(&m1).unwrap();
        std::fs::write(m1.join("cpuset.cpus"), "").unwrap();
        std::fs::write(m1.join("cpuset.mems"), "").unwrap();
        cgroup_up(&hs, "khd7", "m1").unwrap();
        for h in &hs {
            assert!(h.join("khd7-m1").is_dir(), "{}", h.display());
        }
        assert_eq!(
            std::fs::read_to_string(m1.join("cpuset.cpus")).unwrap(),
            "0-1\n"
        );
        assert_eq!(
            std::fs::read_to_string(m1.join("cpuset.mems")).unwrap(),
            "0\n"
        );
        assert!(!d.join("memory/khd7-m1/cpuset.cpus").exists());
        // Again (every boot): nothing changes, nothing fails.
        cgroup_up(&hs, "khd7", "m1").unwrap();
        // Down: the whole subtree, deepest first, in every hierarchy; other nodes' subtrees stay.
        std::fs::create_dir_all(d.join("memory/khd7-m1/kubepods/burstable/pod1")).unwrap();
        std::fs::create_dir_all(d.join("memory/khd7-m2")).unwrap();
        // cpuset's: rmdir works on cgroupfs with its files, not on a real directory: m1 stays there, its
        // (empty) children go.
        std::fs::create_dir_all(m1.join("kubepods")).unwrap();
        cgroup_down(&hs, "khd7", "m1");
        assert!(!d.join("memory/khd7-m1").exists());
        assert!(!d.join("cpu,cpuacct/khd7-m1").exists());
        assert!(d.join("memory/khd7-m2").is_dir());
        assert!(m1.is_dir() && !m1.join("kubepods").exists());
        // A node without a subtree: nothing to do.
        cgroup_down(&hs, "khd7", "w9");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
