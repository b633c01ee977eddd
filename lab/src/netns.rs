//! Network namespaces the tests create and delete, named by a per-test unique prefix (the prefix the test passes,
//! then this process's pid): one namespace with `lo` up ([`Netns`]), or a [`Lab`] of hosts, each a namespace with
//! one veth onto a bridge in a namespace of its own, and commands run inside them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace `<prefix>-<pid>-<n>` with `lo` up, deleted on drop.
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// Creates the namespace (a leftover of the same name is deleted first); panics when `ip netns add` fails
    /// (it needs root).
    pub fn new(prefix: &str) -> Netns {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ));
        Netns { name }
    }

    /// Its file, for setns(2).
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A command whose process enters this network namespace (setns(2) between fork and exec, as `nsenter
    /// --net` does; the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let ns = std::fs::File::open(self.path()).expect("opening the netns");
        let mut c = Command::new(program);
        // SAFETY: the closure only makes the setns system call, which is async-signal-safe.
        unsafe {
            c.pre_exec(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Whether the lab tests can run (root, `ip netns`); prints why not.
pub fn lab_available(test: &str) -> bool {
    let root = nix::unistd::getuid().is_root();
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

/// Runs a shell command, panicking with its output on failure; returns its stdout.
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

/// Runs a shell command and returns whether it succeeded.
pub fn sh_ok(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A bridge in its own namespace plus hosts (namespaces with one veth each), removed on drop with every process
/// started in them.
pub struct Lab {
    /// `khc<tag><pid>`: the namespaces are `<prefix>-<host>`, the bridge's `<prefix>-sw`.
    pub prefix: String,
    /// (host, its bridge-side veth).
    pub hosts: Vec<(String, String)>,
    /// `/run/<prefix>`, removed on drop unless `KHC_KEEP` is set.
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

    /// Starts a real etcd member (Debian's etcd-server) in a host's namespace with TLS on both its client and peer
    /// ports (client certificates required): data in `m.dir/data`, its certificate and key `m.dir/etcd.crt` and
    /// `m.dir/etcd.key`, the CA `m.ca`, its log `m.dir/etcd-<state>.log`. Stopped by pid like [`Lab::spawn`]'s.
    pub fn start_etcd(&mut self, host: &str, m: &EtcdMember) -> u32 {
        let ds = m.dir.display().to_string();
        let ca = m.ca.display().to_string();
        let ip = m.ip;
        self.spawn(
            host,
            &[
                "etcd",
                "--name",
                m.name,
                "--data-dir",
                &format!("{ds}/data"),
                "--listen-client-urls",
                &format!("https://{ip}:2379,https://127.0.0.1:2379"),
                "--advertise-client-urls",
                &format!("https://{ip}:2379"),
                "--listen-peer-urls",
                &format!("https://{ip}:2380"),
                "--initial-advertise-peer-urls",
                &format!("https://{ip}:2380"),
                "--initial-cluster",
                m.initial_cluster,
                "--initial-cluster-state",
                m.state,
                "--initial-cluster-token",
                m.token,
                "--cert-file",
                &format!("{ds}/etcd.crt"),
                "--key-file",
                &format!("{ds}/etcd.key"),
                "--trusted-ca-file",
                &ca,
                "--client-cert-auth",
                "--peer-cert-file",
                &format!("{ds}/etcd.crt"),
                "--peer-key-file",
                &format!("{ds}/etcd.key"),
                "--peer-trusted-ca-file",
                &ca,
                "--peer-client-cert-auth",
            ],
            &m.dir.join(format!("etcd-{}.log", m.state)),
        )
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

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// One etcd member for [`Lab::start_etcd`].
pub struct EtcdMember<'a> {
    /// Its member name.
    pub name: &'a str,
    /// Its address in the lab (client port 2379, peer port 2380).
    pub ip: std::net::Ipv4Addr,
    /// Its directory: data, certificate and key, log.
    pub dir: &'a Path,
    /// The CA both its client and peer certificates chain to.
    pub ca: &'a Path,
    /// `--initial-cluster` (`name=https://ip:2380,...`).
    pub initial_cluster: &'a str,
    /// `new` or `existing`.
    pub state: &'a str,
    /// `--initial-cluster-token`.
    pub token: &'a str,
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
