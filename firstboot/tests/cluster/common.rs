//! Shared by the cluster tests: fixed inputs, and network namespaces for the lab tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use kubeha_model::cluster::Role;
use kubeha_model::{Cluster, NodeConfig, Secrets};

/// Secrets generated once per test process (RSA generation is slow in debug builds).
pub fn secrets() -> &'static Secrets {
    static S: OnceLock<Secrets> = OnceLock::new();
    S.get_or_init(|| Secrets::generate().expect("secrets"))
}

/// A master's node config for `cluster`.
pub fn master_config(c: &Cluster, name: &str) -> NodeConfig {
    let nc =
        NodeConfig::build(c, secrets(), Some(Role::Master), Some(name), true).expect("node config");
    nc.check("test").expect("valid");
    nc
}

/// A worker's node config.
pub fn worker_config(c: &Cluster, name: &str) -> NodeConfig {
    NodeConfig::build(c, secrets(), Some(Role::Worker), Some(name), false).expect("node config")
}

/// Whether the lab tests can run (root, `ip netns`); prints why not.
pub fn lab_available(test: &str) -> bool {
    let root = nix_uid() == 0;
    let ip = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !(root && ip) {
        eprintln!("SKIP {test}: needs root and `ip netns` (root={root}, ip netns={ip})");
        return false;
    }
    true
}

fn nix_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// Runs a command, panicking with its output on failure.
pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        o.status.success(),
        "{cmd} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a command and returns whether it succeeded.
pub fn sh_ok(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A bridge in its own namespace plus hosts (namespaces with one veth each), removed on drop.
pub struct Lab {
    pub prefix: String,
    pub hosts: Vec<(String, String)>,
    pub dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    /// `hosts`: (short name, IP/prefix). Namespaces are `<prefix>-<short>`, the bridge namespace `<prefix>-sw`.
    pub fn new(tag: &str, hosts: &[(&str, &str)]) -> Lab {
        let prefix = format!("khc{}{}", tag, std::process::id());
        // Not under /tmp: keepalived's enable_script_security refuses scripts below a world-writable directory.
        let dir = PathBuf::from(format!("/run/{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            prefix: prefix.clone(),
            hosts: Vec::new(),
            dir,
            children: Vec::new(),
        };
        sh(&format!("ip netns add {prefix}-sw && ip -n {prefix}-sw link add br0 type bridge && ip -n {prefix}-sw link set br0 up"));
        for (i, (name, ip)) in hosts.iter().enumerate() {
            let ns = format!("{prefix}-{name}");
            // Interface names have at most 15 characters: "khc" + tag + pid (≤ 7 digits) + "v" + index fits.
            let v = format!("{prefix}v{i}");
            sh(&format!(
                "ip netns add {ns} && ip link add {v} type veth peer name eth0 netns {ns} && \
                 ip link set {v} netns {prefix}-sw && ip -n {prefix}-sw link set {v} master br0 up && \
                 ip -n {ns} link set lo up && ip -n {ns} addr add {ip} dev eth0 && ip -n {ns} link set eth0 up"
            ));
            lab.hosts.push((name.to_string(), v));
        }
        lab
    }

    /// The namespace of a host.
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The bridge-side veth of a host.
    pub fn veth(&self, name: &str) -> String {
        self.hosts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .expect("host")
    }

    /// Takes a host's link down or up (a crashed or returning machine).
    pub fn link(&self, name: &str, up: bool) {
        sh(&format!(
            "ip -n {}-sw link set {} {}",
            self.prefix,
            self.veth(name),
            if up { "up" } else { "down" }
        ));
    }

    /// Runs `cmd` inside a host's namespace.
    pub fn exec(&self, name: &str, cmd: &str) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(name), "sh", "-c", cmd])
            .output()
            .expect("ip netns exec")
    }

    /// Starts a long-running process in a host's namespace; it is killed (by pid) on drop.
    pub fn spawn(&mut self, name: &str, args: &[&str], log: &Path) -> u32 {
        let f = std::fs::File::create(log).unwrap();
        let c = Command::new("ip")
            .args(["netns", "exec", &self.ns(name)])
            .args(args)
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("spawn");
        let pid = c.id();
        self.children.push(c);
        pid
    }

    /// Stops one spawned process by pid (SIGTERM, then SIGKILL) and reaps it.
    pub fn stop(&mut self, pid: u32) {
        if let Some(pos) = self.children.iter().position(|c| c.id() == pid) {
            let mut c = self.children.remove(pos);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            for _ in 0..50 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
    }
}

impl Lab {
    /// Stops every spawned process and removes the namespaces and the directory (idempotent).
    pub fn cleanup(&mut self) {
        let pids: Vec<u32> = self.children.iter().map(|c| c.id()).collect();
        for p in pids {
            self.stop(p);
        }
        for (name, _) in std::mem::take(&mut self.hosts) {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(&name)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &format!("{}-sw", self.prefix)])
            .status();
        if std::env::var_os("KHC_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `f` on a thread that entered the network namespace `ns` (threads it creates, such as reqwest's, inherit it).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
        // Changes only this thread's network namespace.
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
    .join()
    .expect("netns thread")
}

/// Writes a file, creating its directory.
pub fn put(p: &Path, data: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}
