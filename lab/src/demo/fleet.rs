//! The demo's rack ([`Fleet`]): a switch namespace with a bridge, a namespace per node (and one for kubeha serve)
//! with one veth onto it, kubeha serve, the node roots and the node agents, each agent in its node's network namespace
//! AND a mount and UTS namespace of its own ([`super::boot`]: the node's directories bind-mounted over the host's
//! paths, the units an earlier boot enabled started, as systemd would). What the
//! drills ask of it: kubectl through the VIP, etcdctl against the masters, who holds the VIP, the agents' status.
//!
//! Everything it starts is stopped by pid when it is dropped (the agents and serve, which it spawned and reaps; the
//! daemons the systemctl stand-in started, listed in STATE/pids and the node roots' pid files; every process left in a
//! node's mount namespaces or cgroups), then its namespaces are deleted. Every 192.168.20.x address exists only
//! inside these namespaces: nothing here talks to one from the host's.

use super::install::{tail, Install};
use super::node::{self, BaseRoot};
use super::vars::{self, Facts};
use super::wait::{self, Wait};
use super::{files_ending, info, output, probe, read, write};
use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the rack is made of.
pub struct Setup {
    /// STATE: logs, node roots, drills, result.json.
    pub state: PathBuf,
    /// The checkout's scripts/demo (installer/).
    pub scripts: PathBuf,
    /// This binary (`kubeha-lab node-boot` boots each node; STATE/bin/<tool> links to it are the adapters).
    pub lab: PathBuf,
    pub bundle: PathBuf,
    pub cluster: PathBuf,
    pub secrets: PathBuf,
    /// The base ISO kubeha serve extracts.
    pub base_iso: PathBuf,
    /// The base OS repos (one directory per repo name).
    pub base_repos: PathBuf,
    /// The kubeha CLI (`kubeha serve`, `kubeha status`).
    pub kubeha: PathBuf,
    /// The node binary kubeha serve hands out.
    pub agent: PathBuf,
    /// kubeadm, kubelet, kubectl of `make k8s`.
    pub k8s_bin: PathBuf,
    /// Seconds an agent, a wait or a drill may take.
    pub timeout: u64,
}

/// The rack: see the module's doc.
pub struct Fleet {
    pub setup: Setup,
    pub facts: Facts,
    /// `khd<pid>`: the namespaces are `<prefix>-<host>`, the bridge's `<prefix>-sw`.
    pub prefix: String,
    /// `/run/khd<pid>`: containerd's sockets and keepalived's check scripts (short, root-only).
    run: PathBuf,
    /// kubeha serve's URL (`http://<.5 of the nodes' network>:8080`).
    pub serve_url: String,
    serve_ip: String,
    hierarchies: Vec<PathBuf>,
    veths: BTreeMap<String, String>,
    agents: BTreeMap<String, Child>,
    serve: Option<Child>,
    /// The node kubectl runs from (the first worker).
    pub client: String,
    /// The master whose etcd client certificate etcdctl uses (and from whose namespace it runs).
    pub etcd_from: String,
}

/// `ip ARGS...`; an error names the argv and carries ip's complaint.
fn ip(args: &[&str]) -> Result<()> {
    let o = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("starting ip")?;
    ensure!(
        o.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr).trim()
    );
    Ok(())
}

fn append(path: &Path) -> Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// How many lines of `text` contain `needle` (`grep -c`).
pub fn count_lines(text: &str, needle: &str) -> u64 {
    text.lines().filter(|l| l.contains(needle)).count() as u64
}

/// Appends ` KEY=VALUE` to the first line of the node root's /proc/cmdline (the lab's kernel command line).
pub fn append_kernel_arg(cmdline: &Path, arg: &str) -> Result<()> {
    let text = read(cmdline)?;
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let nl = if text.contains('\n') { "\n" } else { "" };
    write(cmdline, &format!("{first} {arg}{nl}{rest}"))
}

/// What stopping a rack needs, all of it in files or names (so a signal handler can do it too, [`interrupted`]).
#[derive(Debug, Clone)]
pub struct Rack {
    pub state: PathBuf,
    pub prefix: String,
    pub names: Vec<String>,
    pub run: PathBuf,
}

/// The rack that is up, if one is (for [`interrupted`]).
static RACK: std::sync::Mutex<Option<Rack>> = std::sync::Mutex::new(None);

/// Stops what a rack started, from its files: every node's processes ([`node::stop`]), every pid in STATE/pids
/// (process groups first: a daemon leads its own, an agent's children are in its group; SIGTERM, up to 5 s, then
/// SIGKILL), the daemons' pid files under the node roots, then its namespaces (`<prefix>-*`) and run directory.
pub fn teardown(r: &Rack) {
    let hierarchies = node::v1_hierarchies(Path::new(node::CGROUP_MOUNT));
    for n in &r.names {
        if let Err(e) = node::stop(&r.state, &hierarchies, &r.prefix, n) {
            eprintln!("demo: stopping {n}: {e:#}");
        }
    }
    let pids: Vec<i32> = std::fs::read_to_string(r.state.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let signal = |s: Signal| {
        for p in &pids {
            let _ = kill(Pid::from_raw(-p), s);
            let _ = kill(Pid::from_raw(*p), s);
        }
    };
    signal(Signal::SIGTERM);
    for _ in 0..50 {
        if !pids.iter().any(|p| wait::pid_alive(*p as u32)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(Signal::SIGKILL);
    // Daemons started inside the node namespaces write their pid files under the node roots.
    for n in &r.names {
        let root = r.state.join("nodes").join(n);
        for dir in ["run", "run/kubeha-demo"] {
            for pf in files_ending(&root.join(dir), ".pid") {
                if let Some(p) = std::fs::read_to_string(&pf)
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok())
                {
                    let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
                }
            }
        }
    }
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mine = format!("{}-", r.prefix);
    for ns in listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with(&mine))
    {
        let _ = Command::new("ip")
            .args(["netns", "delete", ns])
            .stderr(Stdio::null())
            .status();
    }
    let _ = std::fs::remove_dir_all(&r.run);
}

/// Set once a signal ends the demo: no agent starts any more (the stages' loops would otherwise restart the agents
/// the teardown stops).
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops the rack that is up, if any ([`teardown`]); for a signal that ends the demo.
pub fn interrupted() {
    STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
    let rack = RACK.lock().map(|mut r| r.take()).unwrap_or(None);
    if let Some(r) = rack {
        teardown(&r);
    }
}

impl Fleet {
    /// The rack's plan: the cluster's facts, serve's address (.5 of the nodes' network; no node and not the VIP
    /// may have it), every node with a MAC. Nothing is started yet.
    pub fn new(setup: Setup, nodes: &Path, workers: usize) -> Result<Fleet> {
        ensure!(
            nix::unistd::getuid().is_root(),
            "demo: the node stages need root (network namespaces)"
        );
        for b in ["kubeadm", "kubelet", "kubectl"] {
            ensure!(
                setup.k8s_bin.join(b).is_file(),
                "demo: --k8s-bin {} has no {b} (make k8s builds it)",
                setup.k8s_bin.display()
            );
        }
        let facts = Facts::load(&setup.cluster, nodes, workers, &setup.bundle)?;
        let all = facts.all();
        for n in &all {
            ensure!(
                facts.macs.contains_key(n),
                "demo: {n} has no mac in {} (kubeha serve knows nodes by their MAC)",
                setup.cluster.display()
            );
        }
        let o = facts.ip(&facts.masters[0]).octets();
        let serve_ip = format!("{}.{}.{}.5", o[0], o[1], o[2]);
        for n in &all {
            ensure!(
                facts.ip(n).to_string() != serve_ip,
                "demo: {n} has kubeha serve's address {serve_ip}"
            );
        }
        ensure!(
            facts.vip.to_string() != serve_ip,
            "demo: the VIP is kubeha serve's address {serve_ip}"
        );
        let prefix = format!("khd{}", std::process::id());
        let client = facts
            .workers
            .first()
            .unwrap_or(&facts.masters[0])
            .to_string();
        let etcd_from = facts.masters[1].clone();
        Ok(Fleet {
            run: PathBuf::from(format!("/run/{prefix}")),
            serve_url: format!("http://{serve_ip}:8080"),
            serve_ip,
            prefix,
            hierarchies: node::v1_hierarchies(Path::new(node::CGROUP_MOUNT)),
            veths: BTreeMap::new(),
            agents: BTreeMap::new(),
            serve: None,
            client,
            etcd_from,
            setup,
            facts,
        })
    }

    fn state(&self) -> &Path {
        &self.setup.state
    }

    fn logs(&self) -> PathBuf {
        self.state().join("logs")
    }

    /// A node's root (its disk).
    pub fn root(&self, name: &str) -> PathBuf {
        self.state().join("nodes").join(name)
    }

    /// A node's status.json.
    pub fn status_json(&self, name: &str) -> PathBuf {
        self.root(name).join("var/lib/kubeha/status.json")
    }

    /// A node agent's `state phase step error`.
    pub fn status(&self, name: &str) -> [String; 4] {
        vars::status_fields(&self.status_json(name))
    }

    /// Why the agent on a node waits, if it says so.
    pub fn waiting(&self, name: &str) -> Option<String> {
        vars::waiting(&self.status_json(name))
    }

    /// The agent's log of its current boot.
    pub fn agent_log(&self, name: &str) -> PathBuf {
        self.logs().join(format!("{name}.agent.log"))
    }

    /// The last `n` lines of a node's agent log.
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        tail(
            &String::from_utf8_lossy(&std::fs::read(self.agent_log(name)).unwrap_or_default()),
            n,
        )
    }

    /// The decision a node stored (`init`/`join`), if any.
    pub fn decision(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.root(name).join("var/lib/kubeha/cluster/decision"))
            .ok()
            .map(|d| d.trim().to_string())
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn track(&self, pid: u32, what: &str) -> Result<()> {
        writeln!(append(&self.state().join("pids"))?, "{pid} {what}").context("writing STATE/pids")
    }

    /// STATE's directories made anew, the switch, the agents' PATH (STATE/bin: the adapters, stand-ins for tools
    /// that would change the host with systemctl as systemd's, and the REAL kubeadm, kubelet and kubectl).
    pub fn up(&mut self) -> Result<()> {
        let state = self.state().to_path_buf();
        for d in ["logs", "result.json"] {
            let p = state.join(d);
            if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else if p.exists() {
                std::fs::remove_file(&p)
            } else {
                Ok(())
            }
            .with_context(|| format!("removing {}", p.display()))?;
        }
        for d in ["bin", "logs", "nodes"] {
            std::fs::create_dir_all(state.join(d))
                .with_context(|| format!("creating {}", state.join(d).display()))?;
        }
        write(&state.join("pids"), "")?;
        if let Ok(mut r) = RACK.lock() {
            *r = Some(self.rack());
        }
        std::fs::create_dir_all(&self.run)
            .with_context(|| format!("creating {}", self.run.display()))?;
        std::fs::set_permissions(
            &self.run,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let bin = state.join("bin");
        let link = |from: &Path, name: &str| -> Result<()> {
            let to = bin.join(name);
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(from, &to)
                .with_context(|| format!("linking {}", to.display()))
        };
        for n in super::adapters::NAMES {
            link(&self.setup.lab, n)?;
        }
        for b in ["kubeadm", "kubelet", "kubectl"] {
            link(&self.setup.k8s_bin.join(b), b)?;
        }
        let sw = self.ns("sw");
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        ip(&["-n", &sw, "link", "set", "lo", "up"])
    }

    /// A host namespace with eth0 (address `cidr`, MAC `mac`) on the bridge.
    pub fn host_up(&mut self, name: &str, cidr: &str, mac: Option<&str>) -> Result<()> {
        let ns = self.ns(name);
        // Unique within 15 characters.
        let mut veth = format!(
            "v{}h{}",
            self.prefix.trim_start_matches("khd"),
            self.veths.len() + 1
        );
        veth.truncate(15);
        let sw = self.ns("sw");
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["link", "set", &veth, "netns", &sw])?;
        ip(&["-n", &sw, "link", "set", &veth, "master", "br0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        if let Some(m) = mac {
            ip(&["-n", &ns, "link", "set", "eth0", "address", m])?;
        }
        ip(&["-n", &ns, "addr", "add", cidr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        self.veths.insert(name.to_string(), veth);
        Ok(())
    }

    /// Takes a host's link down or up on the bridge (a crashed host, a partition).
    pub fn link(&self, name: &str, up: bool) -> Result<()> {
        let veth = self
            .veths
            .get(name)
            .with_context(|| format!("demo: no host {name}"))?;
        ip(&[
            "-n",
            &self.ns("sw"),
            "link",
            "set",
            veth,
            if up { "up" } else { "down" },
        ])
    }

    /// `ip netns exec NS PROGRAM` (a fresh /sys of the namespace too).
    pub fn in_ns(&self, host: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host)]).arg(program);
        c
    }

    /// PROGRAM in the host's network namespace only (`nsenter --net`): /sys and the cgroup mounts stay the host's.
    pub fn in_net(&self, host: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns(host)))
            .arg(program);
        c
    }

    /// The base system every node root is a copy of (STATE/base-root, [`BaseRoot`]).
    pub fn base_root(&self) -> Result<()> {
        BaseRoot {
            state: self.state(),
            bundle: &self.setup.bundle,
            base_repos: &self.setup.base_repos,
            el: self.facts.el,
            repos: &self.facts.base_repos,
        }
        .ensure()?;
        Ok(())
    }

    /// kubeha serve in namespace `srv` on the bridge (the rack's provisioning host), its journal and the ISO's
    /// extracted tree under STATE/serve, its log STATE/logs/serve.log.
    pub fn serve_up(&mut self) -> Result<()> {
        let cidr = format!("{}/{}", self.serve_ip, self.facts.prefix);
        self.host_up("srv", &cidr, None)?;
        let dir = self.state().join("serve");
        std::fs::create_dir_all(&dir)?;
        // A new lab is a new rack: no history (the extracted ISO tree stays; serve re-extracts when the ISO changes).
        let _ = std::fs::remove_file(dir.join("journal.jsonl"));
        let log_path = self.logs().join("serve.log");
        let log = std::fs::File::create(&log_path)?;
        let s = &self.setup;
        // `ip netns exec` and `setsid` exec in place: the child's pid is kubeha serve's.
        let mut c = self.in_ns("srv", "setsid");
        c.arg(&s.kubeha)
            .arg("serve")
            .arg("--cluster")
            .arg(&s.cluster)
            .arg("--secrets")
            .arg(&s.secrets)
            .arg("--bundle")
            .arg(&s.bundle)
            .arg("--base")
            .arg(&s.base_iso)
            .args(["--listen", &format!("{}:8080", self.serve_ip)])
            .args(["--url", &self.serve_url])
            .arg("--state")
            .arg(&dir)
            .arg("--agent")
            .arg(&s.agent)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut child = c.spawn().context("starting kubeha serve")?;
        let pid = child.id();
        self.track(pid, "kubeha serve")?;
        write(&self.logs().join("serve.pid"), &format!("{pid}\n"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.lines().any(|l| l.starts_with("Serving ")) {
                break;
            }
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                bail!(
                    "demo: kubeha serve did not start:\n{}",
                    tail(&text, 20).trim_end()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.serve = Some(child);
        let url = format!("{}/api/fleet", self.serve_url);
        output(
            self.in_ns("srv", "curl")
                .args(["-fsS", "-o", "/dev/null", &url]),
        )
        .with_context(|| {
            format!(
                "demo: kubeha serve does not answer at {}:\n{}",
                self.serve_url,
                tail(&std::fs::read_to_string(&log_path).unwrap_or_default(), 20)
            )
        })?;
        Ok(())
    }

    /// `kubeha ARGS... --server URL` from serve's namespace, its stdout.
    pub fn serve_cli(&self, args: &[&str]) -> Result<String> {
        output(
            self.in_ns("srv", &self.setup.kubeha)
                .args(args)
                .args(["--server", &self.serve_url]),
        )
    }

    /// A node's root made anew from the base system and installed over the network from kubeha serve
    /// ([`Install`]; with `reinstall`, after `kubeha serve reimage`), with the lab's kubeadm patch for its kubelet
    /// and its cgroups.
    pub fn prepare_root(&self, name: &str, reinstall: bool) -> Result<()> {
        let r = self.root(name);
        if r.exists() {
            std::fs::remove_dir_all(&r).with_context(|| format!("removing {}", r.display()))?;
        }
        output(
            Command::new("cp")
                .arg("-a")
                .arg(self.state().join("base-root"))
                .arg(&r),
        )?;
        Install {
            state: self.state(),
            name,
            mac: &self.facts.macs[name],
            serve_url: &self.serve_url,
            ns: &self.ns(name),
            installer_dir: &self.setup.scripts.join("installer"),
            reinstall,
        }
        .run()?;
        // What only the lab needs (node::kubelet_patch says why): cgroupfs, a cgroup root of its own, no disk-based
        // eviction.
        node::write_patches(&r, &node::cgroup_root(&self.prefix, name))?;
        node::cgroup_up(&self.hierarchies, &self.prefix, name)
    }

    /// A new disk for a node: the operator's `kubeha serve reimage NAME` (serve then hands its next network boot
    /// the installer with kubeha.reinstall=1), then the reinstall.
    pub fn reimage(&self, name: &str) -> Result<()> {
        let out = self.serve_cli(&["serve", "reimage", name])?;
        write!(append(&self.logs().join("serve-cli.log"))?, "{out}")?;
        self.prepare_root(name, true)
    }

    /// Stops every process of a node ([`node::stop`]) and reaps its agent.
    pub fn node_stop(&mut self, name: &str) -> Result<()> {
        node::stop(self.state(), &self.hierarchies, &self.prefix, name)?;
        if let Some(mut c) = self.agents.remove(name) {
            let _ = c.kill();
            let _ = c.wait();
        }
        Ok(())
    }

    /// Boots a node: its cgroups, then its agent (the one its install put on its disk) in its network namespace and
    /// new mount and UTS namespaces ([`super::boot`]), env for the adapters, output to STATE/logs/
    /// NAME.agent.log; its pid to NAME.agent.pid and STATE/pids, the time to NAME.started, its mount namespace to
    /// NAME.mntns once unshare made it.
    pub fn start_agent(&mut self, name: &str) -> Result<()> {
        ensure!(
            !STOPPING.load(std::sync::atomic::Ordering::SeqCst),
            "demo: interrupted, not starting the agent on {name}"
        );
        node::cgroup_up(&self.hierarchies, &self.prefix, name)?;
        if let Some(mut old) = self.agents.remove(name) {
            // A restart: the earlier agent has exited (reap it).
            let _ = old.try_wait();
        }
        let root = self.root(name);
        let s = &self.setup;
        let logs = self.logs();
        let log = append(&logs.join(format!("{name}.agent.log")))?;
        let path = format!(
            "{}:{}",
            s.state.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(&s.lab);
        c.arg("node-boot")
            .arg(format!("--netns=/run/netns/{}", self.ns(name)))
            .arg("--root")
            .arg(&root)
            .arg("--")
            .arg(root.join("usr/local/bin/kubeha-firstboot"))
            .arg("--root")
            .arg(&root)
            .env("KHD_ROOT", &root)
            .env("KHD_NODE", name)
            .env("KHD_IP", self.facts.ip(name).to_string())
            .env("KHD_STATE", &s.state)
            .env("KHD_RUN", &self.run)
            .env(
                "KHD_ENDPOINT",
                format!("{}:{}", self.facts.vip, self.facts.lb_port),
            )
            .env("KHD_MASTERS", &self.facts.khd_masters)
            .env("KHD_K8S", &self.facts.k8s)
            .env("PATH", path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = c
            .spawn()
            .with_context(|| format!("starting the agent on {name}"))?;
        // `kubeha-lab node-boot` execs the agent in place: the child's pid is the agent's.
        let pid = child.id();
        self.agents.insert(name.to_string(), child);
        write(&logs.join(format!("{name}.agent.pid")), &format!("{pid}\n"))?;
        self.track(pid, &format!("{name}:kubeha-firstboot"))?;
        write(
            &logs.join(format!("{name}.started")),
            &format!("{}\n", probe::now()),
        )?;
        let own = std::fs::read_link("/proc/self/ns/mnt")?;
        for _ in 0..50 {
            let Ok(m) = std::fs::read_link(format!("/proc/{pid}/ns/mnt")) else {
                break;
            };
            if m != own {
                writeln!(
                    append(&node::mntns_file(self.state(), name))?,
                    "{}",
                    m.display()
                )?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Whether the agent a node booted still runs (reaped when it has exited).
    pub fn agent_alive(&mut self, name: &str) -> bool {
        match self.agents.get_mut(name) {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Until each agent on `names` is done ([`Wait`]: a line per node, NAME.finished and NAME.seconds); a failed or
    /// vanished agent, or the deadline, is an error after the node's status and log tail.
    pub fn wait_agents(&mut self, names: &[String]) -> Result<()> {
        let w = Wait {
            state: &self.setup.state,
            timeout: self.setup.timeout,
            masters: &self.facts.masters,
            every: Duration::from_secs(1),
        };
        let mut err = vec![];
        let ok = w.run(names, &mut std::io::stdout(), &mut err)?;
        ensure!(ok, "{}", String::from_utf8_lossy(&err).trim_end());
        Ok(())
    }

    /// systemd's Restart=on-failure for the agents on `names` (systemd is not PID 1 in the lab: the lab restarts an
    /// agent 2 s after it exits without being done, instead of RestartSec=30), each at most `max` times, until each is
    /// done (then its [`Fleet::wait_agents`] line) or the deadline. The restarts per node.
    pub fn supervise(&mut self, names: &[String], max: u32) -> Result<BTreeMap<String, u32>> {
        let deadline = Instant::now() + Duration::from_secs(self.setup.timeout);
        let mut restarts: BTreeMap<String, u32> = names.iter().map(|n| (n.clone(), 0)).collect();
        let mut due: BTreeMap<String, Instant> = BTreeMap::new();
        let mut pending: Vec<String> = names.to_vec();
        while !pending.is_empty() && Instant::now() < deadline {
            let mut still = vec![];
            for n in pending {
                if let Some(at) = due.get(&n) {
                    if Instant::now() >= *at {
                        due.remove(&n);
                        self.start_agent(&n)?;
                    }
                    still.push(n);
                    continue;
                }
                let alive = self.agent_alive(&n);
                let s = self.status(&n);
                if s[0] == "done" {
                    self.wait_agents(std::slice::from_ref(&n))?;
                    continue;
                }
                if !alive {
                    let r = restarts[&n];
                    if r >= max {
                        bail!(
                            "demo: the agent on {n} still fails after {r} restarts: state={} step={}: {}\n{}",
                            s[0],
                            s[2],
                            s[3],
                            self.log_tail(&n, 20).trim_end()
                        );
                    }
                    restarts.insert(n.clone(), r + 1);
                    let err: String = s[3].chars().take(200).collect();
                    info(&format!(
                        "the agent on {n} exited ({} in {}: {err}); restart {} (the unit's Restart=on-failure)",
                        s[0],
                        s[2],
                        r + 1
                    ));
                    due.insert(n.clone(), Instant::now() + Duration::from_secs(2));
                }
                still.push(n);
            }
            pending = still;
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        // Past the deadline: what is still pending gets the wait's verdict (and its diagnostics).
        for n in &pending {
            if let Some(at) = due.remove(n) {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                self.start_agent(n)?;
            }
        }
        self.wait_agents(&pending)?;
        Ok(restarts)
    }

    /// The processes of a node ([`node::node_pids`]).
    pub fn node_pids(&self, name: &str) -> Vec<u32> {
        node::node_pids(self.state(), &self.hierarchies, &self.prefix, name)
    }

    /// The pid of the real `kubeadm VERB` running on a node, if one is.
    pub fn kubeadm_pid(&self, name: &str, verb: &str) -> Option<u32> {
        self.node_pids(name).into_iter().find(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let words: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            comm.trim() == "kubeadm" && words.iter().skip(1).any(|w| w == verb)
        })
    }

    /// Whether something accepts TCP connections on `addr` from inside a host's network namespace (1 s timeout).
    pub fn tcp_open(&self, host: &str, addr: std::net::SocketAddr) -> bool {
        crate::netns::in_netns(&self.ns(host), move || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        })
    }

    /// The real kubectl from the client node's namespace with admin.conf (its server is the VIP's endpoint).
    pub fn kubectl(&self) -> Command {
        let mut c = self.in_net(&self.client, self.setup.k8s_bin.join("kubectl"));
        c.arg("--kubeconfig").arg(self.state().join("admin.conf"));
        c
    }

    /// `kubectl ARGS...`, its stdout.
    pub fn kctl(&self, args: &[&str]) -> Result<String> {
        output(self.kubectl().args(args))
    }

    /// Whether an apiserver answers `/readyz` through the VIP (1 s timeout).
    pub fn through_vip(&self) -> bool {
        self.kubectl()
            .args(["get", "--raw", "/readyz", "--request-timeout=1s"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout == b"ok")
    }

    /// Whether a master has the VIP on its eth0.
    pub fn has_vip(&self, master: &str) -> bool {
        output(
            Command::new("ip")
                .args(["-n", &self.ns(master)])
                .args(["-o", "-4", "addr", "show", "dev", "eth0"]),
        )
        .is_ok_and(|o| o.contains(&format!(" {}/", self.facts.vip)))
    }

    /// The master that holds the VIP, or `none`.
    pub fn vip_holder(&self) -> String {
        self.facts
            .masters
            .iter()
            .find(|m| self.has_vip(m))
            .cloned()
            .unwrap_or_else(|| "none".to_string())
    }

    /// etcdctl from [`Fleet::etcd_from`]'s namespace with its healthcheck client certificate, against every master.
    pub fn etcdctl(&self) -> Command {
        let pki = self.root(&self.etcd_from).join("etc/kubernetes/pki/etcd");
        let eps: Vec<String> = self
            .facts
            .masters
            .iter()
            .map(|m| format!("https://{}:2379", self.facts.ip(m)))
            .collect();
        let mut c = self.in_net(&self.etcd_from, "etcdctl");
        c.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", eps.join(",")))
            .arg(format!("--cacert={}", pki.join("ca.crt").display()))
            .arg(format!(
                "--cert={}",
                pki.join("healthcheck-client.crt").display()
            ))
            .arg(format!(
                "--key={}",
                pki.join("healthcheck-client.key").display()
            ))
            .arg("--command-timeout=3s");
        c
    }

    /// `etcdctl member list -w json`.
    pub fn member_list(&self) -> Result<String> {
        output(self.etcdctl().args(["member", "list", "-w", "json"]))
    }

    /// `etcdctl member list -w table`, indented.
    pub fn members_table(&self) -> Result<()> {
        for l in output(self.etcdctl().args(["member", "list", "-w", "table"]))?.lines() {
            println!("   {l}");
        }
        Ok(())
    }

    /// How many endpoints `etcdctl endpoint health` calls healthy.
    pub fn healthy_members(&self) -> u64 {
        self.etcdctl()
            .args(["endpoint", "health"])
            .stdin(Stdio::null())
            .output()
            .map(|o| {
                count_lines(&String::from_utf8_lossy(&o.stdout), "is healthy")
                    + count_lines(&String::from_utf8_lossy(&o.stderr), "is healthy")
            })
            .unwrap_or(0)
    }

    /// `name=Ready|NotReady ...` for every Node the apiserver knows.
    pub fn nodes_status(&self) -> Result<String> {
        probe::nodes_status(&self.kctl(&["get", "nodes", "-o", "json"])?)
    }

    /// What [`teardown`] needs.
    pub fn rack(&self) -> Rack {
        Rack {
            state: self.state().to_path_buf(),
            prefix: self.prefix.clone(),
            names: self.facts.all(),
            run: self.run.clone(),
        }
    }

    /// Stops everything this rack started (see the module's doc, [`teardown`]), reaps the children it spawned and
    /// deletes its namespaces; idempotent.
    pub fn down(&mut self) {
        if let Ok(mut r) = RACK.lock() {
            *r = None;
        }
        teardown(&self.rack());
        if let Some(mut c) = self.serve.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (_, mut c) in std::mem::take(&mut self.agents) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_arg_goes_on_the_first_line() {
        let d = std::env::temp_dir().join(format!("kubeha-lab-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("cmdline");
        std::fs::write(&p, "ro quiet kubeha.role=master\n").unwrap();
        append_kernel_arg(&p, "kubeha.bootstrap=m2").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "ro quiet kubeha.role=master kubeha.bootstrap=m2\n"
        );
        std::fs::write(&p, "a").unwrap();
        append_kernel_arg(&p, "b=c").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a b=c");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn counts_and_files() {
        assert_eq!(count_lines("a x\nb\nx c x\n", "x"), 2);
        assert_eq!(count_lines("", "x"), 0);
        let d = std::env::temp_dir().join(format!("kubeha-lab-files-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for f in ["b.pid", "a.pid", "c.log"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        assert_eq!(
            files_ending(&d, ".pid"),
            vec![d.join("a.pid"), d.join("b.pid")]
        );
        assert!(files_ending(&d.join("none"), ".pid").is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
