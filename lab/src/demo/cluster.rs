//! Demo stages 4 and 5 ([`Stages::run`]): three masters and two workers, each a network namespace and a mount
//! namespace of the [`Fleet`], network-installed by the REAL `kubeha serve` and running the REAL kubeha-firstboot on its
//! own root, with the REAL keepalived, nginx, containerd (CRI) and the REAL Kubernetes of `make k8s`: kubeadm, kubelet,
//! kubectl, and the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) as static pods from
//! the bundle's images. systemd is the one stand-in (the systemctl adapter, [`super::adapters`]: systemd cannot be PID 1 in a
//! namespace). Then a failover drill (the VIP holder's link goes down) and a rebuild drill (a master is reimaged and
//! rejoins). Writes STATE/result.json for the final table ([`super::write`]).
//!
//! With `hostile` (make test-demo), the "never two clusters" and "never a false done" scenarios with the real
//! Kubernetes: the second master boots with kubeha.bootstrap= naming itself; the first master's kubeadm init is
//! killed with its apiserver up, then the operator re-designates the second master while the first replays its
//! stored init decision (only the second may initialize, the first resets and joins); the rebuilt master is reimaged
//! with its link down (it must wait, not initialize) and its real `kubeadm join` is killed once its etcd member is
//! added (it must recover); at the end every master is reimaged at once while the workers run (nobody may
//! initialize).

use super::files_ending;
use super::fleet::{append_kernel_arg, count_lines, Fleet, Setup};
use super::write::{self, Measured};
use super::{info, probe, read, say};
use anyhow::{bail, ensure, Context, Result};
use kubeha_model::kernel_args::Key;
use std::path::Path;
use std::time::{Duration, Instant};

/// How many times the lab restarts a node's agent in one drill before it calls the node failed (the unit's
/// Restart=on-failure, without its limitless retries: [`Fleet::supervise`]).
pub const SUPERVISE_MAX: u32 = 10;

/// The node stages of one run.
pub struct Stages {
    pub fleet: Fleet,
    pub hostile: bool,
    /// The master the rebuild drill reimages (the first).
    pub rebuild: String,
}

/// What the hostile formation measured.
struct InitKillDrill {
    record: write::InitKill,
    believed: bool,
}

/// `HH:MM:SS` of now, UTC.
fn utc_clock() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The first `n` characters of `s`.
fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl Stages {
    /// The stages on a rack not yet up.
    pub fn new(setup: Setup, nodes: &Path, hostile: bool) -> Result<Stages> {
        let fleet = Fleet::new(setup, nodes, 2)?;
        let rebuild = fleet.facts.masters[0].clone();
        Ok(Stages {
            fleet,
            hostile,
            rebuild,
        })
    }

    fn state(&self) -> &Path {
        &self.fleet.setup.state
    }

    fn logs(&self) -> std::path::PathBuf {
        self.state().join("logs")
    }

    fn timeout(&self) -> u64 {
        self.fleet.setup.timeout
    }

    /// Lines of every agent log (`*.agent.log`, and with `earlier`, the first runs' `*.agent.first.log`) that
    /// contain `needle`.
    fn count_in_agent_logs(&self, needle: &str, earlier: bool) -> u64 {
        let mut files = files_ending(&self.logs(), ".agent.log");
        if earlier {
            files.extend(files_ending(&self.logs(), ".agent.first.log"));
        }
        files
            .iter()
            .map(|f| count_lines(&std::fs::read_to_string(f).unwrap_or_default(), needle))
            .sum()
    }

    /// Images the nodes' containerd pulled (its CRI logs each PullImage it serves).
    fn pulls(&self) -> u64 {
        let f = &self.fleet;
        f.facts
            .all()
            .iter()
            .map(|n| {
                let log = f.root(n).join("var/log/kubeha-demo/containerd.log");
                count_lines(
                    &std::fs::read_to_string(log).unwrap_or_default(),
                    "PullImage",
                )
            })
            .sum()
    }

    /// Arms the systemctl stand-in: NAME's next real `kubeadm VERB` is SIGKILLed in its kubelet-start phase (when
    /// kubeadm restarts the kubelet: no race with a poller); what the node looked like then lands in
    /// STATE/drills/NAME.kubeadm-killed.
    fn arm_kubeadm_kill(&self, name: &str, verb: &str) -> Result<()> {
        let d = self.state().join("drills");
        std::fs::create_dir_all(&d)?;
        let _ = std::fs::remove_file(d.join(format!("{name}.kubeadm-killed")));
        std::fs::write(d.join(format!("{name}.kill-kubeadm")), format!("{verb}\n"))
            .with_context(|| format!("arming {name}'s kubeadm kill"))
    }

    /// Waits until `ready` names the pid of the real `kubeadm VERB` to kill on NAME, then SIGKILLs it; an agent
    /// that is done or failed first, or the deadline, is an error.
    fn kill_kubeadm(
        &self,
        name: &str,
        verb: &str,
        what: &str,
        mut ready: impl FnMut(&Fleet) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(self.timeout());
        let f = &self.fleet;
        while Instant::now() < deadline {
            if let Some(kpid) = f.kubeadm_pid(name, verb) {
                if ready(f)
                    && nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(kpid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    )
                    .is_ok()
                {
                    return Ok(());
                }
            }
            let s = f.status(name);
            if s[0] == "done" || s[0] == "failed" {
                bail!(
                    "demo: the agent on {name} is {} before {what} ({}: {})",
                    s[0],
                    s[2],
                    s[3]
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "demo: could not catch {name}'s kubeadm {verb} with {what}:\n{}",
            f.log_tail(name, 20).trim_end()
        )
    }

    /// Until the agent on NAME says why it waits (status.json's `waiting`); failing or finishing instead, or not
    /// saying so within `secs`, is an error.
    fn wait_waiting(&self, name: &str, secs: u64) -> Result<String> {
        let f = &self.fleet;
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(w) = f.waiting(name) {
                return Ok(w);
            }
            let s = f.status(name);
            if s[0] == "failed" || s[0] == "done" {
                bail!(
                    "demo: {name} was expected to wait, but its agent is {} (step {}): {}\n{}",
                    s[0],
                    s[2],
                    s[3],
                    f.log_tail(name, 20).trim_end()
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        bail!(
            "demo: {name} did not say why it waits within {secs} s\n{}",
            f.log_tail(name, 20).trim_end()
        )
    }

    /// The Nodes' status once every node is Ready, or after 240 s (with what a user would look at); and how long
    /// it took.
    fn wait_ready(&self) -> Result<(String, u64)> {
        let start = Instant::now();
        let want = self.fleet.facts.all().len();
        loop {
            let st = self.fleet.nodes_status()?;
            if st
                .split_whitespace()
                .filter(|w| w.ends_with("=Ready"))
                .count()
                >= want
            {
                return Ok((st, start.elapsed().as_secs()));
            }
            if start.elapsed() > Duration::from_secs(240) {
                self.ready_diagnostics(&st);
                return Ok((st, start.elapsed().as_secs()));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// What a user would look at when a Node stays NotReady: its conditions, the pods bound to it, the CNI config
    /// its kubelet sees and the kubelet's last words.
    fn ready_diagnostics(&self, status: &str) {
        let f = &self.fleet;
        info(&format!("not every Node is Ready after 240 s: {status}"));
        let show = |prefix: &str, text: &str| {
            for l in text.lines() {
                println!("   {prefix}{l}");
            }
        };
        show(
            "",
            &f.kctl(&["get", "pods", "-A", "-o", "wide"])
                .unwrap_or_else(|e| format!("{e:#}")),
        );
        for n in status
            .split_whitespace()
            .filter_map(|w| w.strip_suffix("=NotReady"))
        {
            let conditions = f
                .kctl(&[
                    "get",
                    "node",
                    n,
                    "-o",
                    "jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{\"\\n\"}{end}",
                ])
                .unwrap_or_else(|e| format!("{e:#}"));
            show(&format!("{n}: "), &conditions);
            let cni = files_ending(&f.root(n).join("etc/cni/net.d"), "");
            show(
                &format!("{n} cni: "),
                &cni.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            let kubelet =
                std::fs::read_to_string(f.root(n).join("var/log/kubeha-demo/kubelet.log"))
                    .unwrap_or_default();
            show(
                &format!("{n} kubelet: "),
                &super::install::tail(&kubelet, 15),
            );
        }
    }

    /// Stage 4 to the end of 5 (the rack is stopped when `self` is dropped).
    pub fn run(&mut self) -> Result<()> {
        let t0 = probe::now();
        let masters = self.fleet.facts.masters.clone();
        let workers = self.fleet.facts.workers.clone();
        let all = self.fleet.facts.all();
        say(&format!(
            "4. cluster: {} masters + {} workers as network namespaces, kubeha-firstboot on each",
            masters.len(),
            workers.len()
        ));
        self.fleet.up()?;
        let kversion = super::output(
            std::process::Command::new(self.fleet.setup.k8s_bin.join("kubeadm"))
                .args(["version", "-o", "short"]),
        )?
        .trim()
        .to_string();
        ensure!(
            kversion == format!("v{}", self.fleet.facts.k8s),
            "demo: {}/kubeadm is {kversion}, the cluster wants v{}",
            self.fleet.setup.k8s_bin.display(),
            self.fleet.facts.k8s
        );
        self.fleet.base_root()?;
        info(&format!(
            "node roots under {} (a copy of the base system each, node config at /etc/kubeha/node.toml, bundle at {})",
            self.state().join("nodes").display(),
            self.fleet.facts.bundle_path
        ));
        self.fleet.serve_up()?;
        info(&format!(
            "kubeha serve at {} (namespace {}-srv): the nodes install from it and report to it",
            self.fleet.serve_url, self.fleet.prefix
        ));
        for n in &all {
            let cidr = format!("{}/{}", self.fleet.facts.ip(n), self.fleet.facts.prefix);
            let mac = self.fleet.facts.macs[n].clone();
            self.fleet.host_up(n, &cidr, Some(&mac))?;
            self.fleet.prepare_root(n, false)?;
        }
        info(&format!("installed from kubeha serve: {}", all.join(" ")));
        let bootstrap = format!("{}={}", Key::Bootstrap, masters[1]);
        if self.hostile {
            // Never two clusters, scenario "two bootstraps": the second master boots believing it initializes (the
            // override an operator would put on its kernel command line when the first master is gone).
            append_kernel_arg(
                &self.fleet.root(&masters[1]).join("proc/cmdline"),
                &bootstrap,
            )?;
            info(&format!(
                "hostile: {} boots with {bootstrap}: two masters each believe they initialize",
                masters[1]
            ));
            // A worker's real `kubeadm join` is killed in its kubelet's TLS bootstrap (armed before it can run).
            self.arm_kubeadm_kill(&workers[0], "join")?;
        }
        info(&format!(
            "namespaces {}-{{sw,{}}}; starting every agent at once",
            self.fleet.prefix,
            all.join(",")
        ));
        for n in &all {
            self.fleet.start_agent(n)?;
        }
        let init_kill = if self.hostile {
            Some(self.hostile_formation(&bootstrap)?)
        } else {
            self.fleet.wait_agents(&all)?;
            None
        };

        // --- the cluster as the real kubectl sees it through the VIP ---
        let f = &self.fleet;
        let state = self.state().to_path_buf();
        let m0 = f.root(&masters[0]);
        std::fs::copy(m0.join("etc/kubernetes/pki/ca.crt"), state.join("ca.crt"))
            .context("copying the cluster's CA")?;
        // kubeadm's admin.conf points at controlPlaneEndpoint = VIP:16443: every kubectl call goes through the VIP.
        let admin = read(&m0.join("etc/kubernetes/admin.conf"))?;
        let endpoint = format!("{}:{}", f.facts.vip, f.facts.lb_port);
        ensure!(
            admin.lines().any(|l| l
                .trim_end()
                .ends_with(&format!("server: https://{endpoint}"))),
            "demo: admin.conf does not point at {endpoint}"
        );
        kubeha_model::fsutil::write_atomic(
            &state.join("admin.conf"),
            admin.as_bytes(),
            0o600,
            true,
        )
        .context("writing STATE/admin.conf")?;
        let times = |suffix: &str| -> Vec<f64> {
            files_ending(&self.logs(), suffix)
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
                .collect()
        };
        let t_last = times(".finished").into_iter().fold(f64::MIN, f64::max);
        let t_first = times(".started").into_iter().fold(f64::MAX, f64::min);
        let form_secs = probe::elapsed(&t_first.to_string(), &t_last.to_string())?;
        let server = probe::server_version(&f.kctl(&["version", "-o", "json"])?)?;
        info(&format!(
            "kubectl (real, {kversion}) through {endpoint}: server {server}; {} from /readyz",
            f.kctl(&["get", "--raw", "/readyz"])?
        ));
        for l in f.kctl(&["get", "nodes", "-o", "wide"])?.lines() {
            println!("   {l}");
        }
        // Exactly one `kubeadm init` in the whole cluster: the agents log each kubeadm run they start.
        let inits = self.count_in_agent_logs("kubeadm init on ", false);
        info(&format!(
            "{inits} kubeadm init in the cluster; {} image pulls by the nodes' containerd (all images from the bundle)",
            self.pulls()
        ));
        info(&format!(
            "agent start to the last node joined: {form_secs}s"
        ));
        let (status, secs) = self.wait_ready()?;
        info(&format!(
            "Nodes (all Ready {secs}s after the last agent finished, or the wait gave up): {status}"
        ));
        // The server's view once the cluster formed: who reported holding the VIP.
        let formed = self.fleet.serve_cli(&["status", "--json"])?;
        std::fs::write(state.join("fleet-formed.json"), &formed)?;
        info(&format!(
            "kubeha serve's view after formation: VIP holder {}",
            probe::vip_holder(&state.join("fleet-formed.json"))?
        ));

        let (old, new, failover) = self.failover()?;
        let rebuild = self.rebuild_drill()?;
        let f = &self.fleet;
        let fleet = f.serve_cli(&["status", "--json"])?;
        std::fs::write(state.join("fleet.json"), fleet)?;
        std::fs::write(state.join("fleet.txt"), f.serve_cli(&["status"])?)?;
        info(&format!(
            "kubeha status --server {} (the server's view, written to {} and fleet.json)",
            f.serve_url,
            state.join("fleet.txt").display()
        ));
        let measured = Measured {
            vip_before: old,
            vip_after: new,
            failover_seconds: failover,
            rebuild: self.rebuild.clone(),
            rebuild_ok: rebuild.ok,
            rebuild_seconds: rebuild.seconds,
            members_json: f.member_list()?,
            nodes_status: rebuild.nodes_status,
            server,
            kubeadm: kversion,
            formation_seconds: form_secs,
            inits: rebuild.inits_after.to_string(),
            pulls: self.pulls().to_string(),
            serve_url: Some(f.serve_url.clone()),
            names: all.clone(),
        };
        write::write_json(
            &state.join("result.json"),
            &write::result(&state, &measured)?,
        )?;
        info(&format!(
            "wrote {}; total {}s",
            state.join("result.json").display(),
            probe::elapsed(&t0, &probe::now())?
        ));
        ensure!(
            rebuild.ok,
            "demo: the rebuild drill did not end with 3 healthy members and the ConfigMap"
        );
        if let (Some(k), Some(r)) = (init_kill, rebuild.hostile) {
            self.all_masters_reimaged(k, r)?;
        }
        Ok(())
    }

    /// The hostile formation: crash inside init, then an operator re-designates while the stored init decision is
    /// replayed. The designated master's real `kubeadm init` is killed once its apiserver answers (kubeadm is in
    /// wait-control-plane or later: no bootstrap token, no kubeadm-config yet). The operator sees that master fail and
    /// power-cycles it, and reboots the third master with kubeha.bootstrap= naming the second (which already believes
    /// it initializes). The first master comes back with its stored `init` decision and kubeadm's leftovers: it must
    /// not initialize again (the majority now waits for the second master), but reset and join the second master's
    /// cluster. Every unit restarts on failure (the others may fail joining the half-made cluster meanwhile): one
    /// cluster must form.
    fn hostile_formation(&mut self, bootstrap: &str) -> Result<InitKillDrill> {
        let masters = self.fleet.facts.masters.clone();
        let workers = self.fleet.facts.workers.clone();
        let all = self.fleet.facts.all();
        let m0 = masters[0].clone();
        let apiserver = std::net::SocketAddr::from((self.fleet.facts.ip(&m0), 6443));
        self.kill_kubeadm(
            &m0,
            "init",
            "its kubeadm init brought the apiserver up",
            |f| f.tcp_open(&m0, apiserver),
        )?;
        info(&format!(
            "killed {m0}'s kubeadm init (SIGKILL) with its apiserver answering on :6443"
        ));
        let at_kill = write::inits_by_node(self.state(), &all)?;
        // The re-designated master's first `kubeadm init` is killed in kubelet-start: its etcd manifest is written,
        // etcd does not answer yet (a phase the first kill did not reach).
        self.arm_kubeadm_kill(&masters[1], "init")?;
        self.fleet.node_stop(&m0)?;
        self.fleet.node_stop(&masters[2])?;
        append_kernel_arg(
            &self.fleet.root(&masters[2]).join("proc/cmdline"),
            bootstrap,
        )?;
        info(&format!(
            "hostile: operator power-cycles {m0} and reboots {} with {bootstrap}",
            masters[2]
        ));
        self.fleet.start_agent(&masters[2])?;
        self.fleet.start_agent(&m0)?;
        let stored = self.fleet.decision(&m0).unwrap_or_else(|| "none".into());
        info(&format!(
            "hostile: {m0} boots again with its stored decision \"{stored}\" and kubeadm's leftovers"
        ));
        // The unit retries without limit (StartLimitInterval=0, RestartSec=30); the lab restarts after 2 s, so a
        // master that decides again quickly (what answered is gone) uses more restarts in the same time: the lab
        // bounds them by 10 and the deadline.
        let restarts = self.fleet.supervise(&all, SUPERVISE_MAX)?;
        for (n, r) in &restarts {
            std::fs::write(self.logs().join(format!("{n}.restarts")), format!("{r}\n"))?;
        }
        for n in [&masters[1], &workers[0]] {
            let p = self.state().join(format!("drills/{n}.kubeadm-killed"));
            ensure!(
                p.is_file(),
                "demo: the armed kill of {n}'s kubeadm never fired (its kubeadm never restarted the kubelet)"
            );
            info(&format!(
                "hostile: {n}'s kubeadm was killed in kubelet-start: {}",
                read(&p)?.trim()
            ));
        }
        let record = write::init_kill(self.state(), at_kill, &stored, &all)?;
        info(&format!(
            "hostile: after the kill and the re-designation: {}",
            serde_json::to_string(&record)?
        ));
        // The override took: the second master did not dismiss itself as "not the designated master".
        let believed =
            !read(&self.fleet.agent_log(&masters[1]))?.contains("is not the designated master");
        info(&format!(
            "hostile: {} believed it initializes: {believed}; it decided: {}",
            masters[1],
            self.fleet.decision(&masters[1]).unwrap_or_default()
        ));
        Ok(InitKillDrill { record, believed })
    }

    /// 5a: the VIP holder's link goes down (the crash model: its host is gone); kubectl through the VIP every
    /// 0.2 s until it answers again. (holder before, holder after, seconds).
    fn failover(&mut self) -> Result<(String, String, String)> {
        let f = &self.fleet;
        say("5a. failover drill: the VIP holder's link goes down (the crash model: its host is gone)");
        let endpoint = format!("{}:{}", f.facts.vip, f.facts.lb_port);
        ensure!(
            f.through_vip(),
            "demo: no apiserver answers through {endpoint} from {} before the drill",
            f.client
        );
        let old = f.vip_holder();
        ensure!(
            old != "none",
            "demo: no master holds the VIP {}",
            f.facts.vip
        );
        info(&format!(
            "VIP {} held by {old}; client: {} (kubectl get --raw /readyz through {endpoint} every 0.2 s, 1 s timeout)",
            f.facts.vip, f.client
        ));
        f.link(&old, false)?;
        let tf = probe::now();
        let t = Instant::now();
        let mut failover = None;
        while t.elapsed() < Duration::from_secs(30) {
            if f.through_vip() {
                failover = Some(probe::elapsed(&tf, &probe::now())?);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let new = f
            .facts
            .masters
            .iter()
            .rfind(|m| **m != old && f.has_vip(m))
            .cloned()
            .unwrap_or_else(|| "none".to_string());
        let Some(failover) = failover else {
            bail!("demo: nothing answered through {endpoint} within 30 s of {old} going down");
        };
        info(&format!(
            "VIP moved {old} -> {new}; kubectl through {endpoint} answers again after {failover}s"
        ));
        f.link(&old, true)?;
        info(&format!("{old}'s link is back up"));
        Ok((old, new, failover))
    }

    /// 5b: the rebuild master is reimaged (an empty disk, reinstalled from kubeha serve) and its agent runs again;
    /// with `hostile` it first boots with its link down (a partition: it must wait, not initialize), and its real
    /// `kubeadm join` is killed once its etcd member is added (the unit's restart must recover).
    fn rebuild_drill(&mut self) -> Result<Rebuilt> {
        let name = self.rebuild.clone();
        say(&format!(
            "5b. rebuild drill: {name} is wiped (reimaged: empty disk) and its agent runs again"
        ));
        let masters = self.fleet.facts.masters.clone();
        self.fleet.etcd_from = masters
            .iter()
            .find(|m| **m != name)
            .cloned()
            .context("demo: no other master")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.fleet.healthy_members() != 3 {
            if Instant::now() > deadline {
                let health = super::output(self.fleet.etcdctl().args(["endpoint", "health"]))
                    .unwrap_or_else(|e| format!("{e:#}"));
                bail!(
                    "demo: etcd not healthy on 3 members 60 s after the link came back:\n{health}"
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let mark = format!("written before the rebuild at {}", utc_clock());
        self.fleet.kctl(&[
            "create",
            "configmap",
            "kubeha-demo-marker",
            &format!("--from-literal=written={mark}"),
        ])?;
        info("etcd members before (ConfigMap default/kubeha-demo-marker created through the VIP):");
        self.fleet.members_table()?;
        // The reimage: the node's processes are gone and its disk is new; its node config is all that is kept.
        self.fleet.node_stop(&name)?;
        // The first run's numbers stay the node's row in the table; the rebuild's go to result.json's "rebuild".
        let logs = self.logs();
        std::fs::copy(
            logs.join(format!("{name}.seconds")),
            logs.join(format!("{name}.first-seconds")),
        )?;
        std::fs::write(
            logs.join(format!("{name}.first-decision")),
            self.fleet.decision(&name).unwrap_or_default() + "\n",
        )?;
        self.fleet.reimage(&name)?;
        info(&format!(
            "{name} wiped and reinstalled from kubeha serve; starting its agent again"
        ));
        std::fs::rename(
            logs.join(format!("{name}.agent.log")),
            logs.join(format!("{name}.agent.first.log")),
        )?;
        let mut hostile = None;
        if self.hostile {
            // Never two clusters, scenario "a reimaged designated master that cannot reach its peers": its link is
            // down from its first boot on. Nothing answers its probes; it must wait, say why, and start nothing.
            self.fleet.link(&name, false)?;
            info(&format!(
                "hostile: {name} boots with its link down (a partition, a wrong VLAN): it must wait, not initialize"
            ));
            self.fleet.start_agent(&name)?;
            let waiting = self.wait_waiting(&name, self.timeout())?;
            info(&format!("{name} waits: {}", clip(&waiting, 300)));
            std::thread::sleep(Duration::from_secs(15)); // the partition lasts: it keeps waiting
            let inits = count_lines(&read(&self.fleet.agent_log(&name))?, "kubeadm init on ");
            let apiserver = self
                .fleet
                .root(&name)
                .join("etc/kubernetes/manifests/kube-apiserver.yaml")
                .exists();
            let still = self.fleet.waiting(&name);
            info(&format!(
                "after 15 s more: kubeadm init runs on {name}: {inits}; its apiserver manifest exists: {apiserver}"
            ));
            self.fleet.link(&name, true)?;
            info(&format!(
                "{name}'s link is back: it must find the cluster and join"
            ));
            // Never a false done, with the real kubeadm: its `kubeadm join` is killed (SIGKILL) right after it added
            // the etcd member; the unit's restart must reset the leftovers, remove the stale member and join again.
            let peer = format!("https://{}:2380", self.fleet.facts.ip(&name));
            let mut killed_at = String::new();
            self.kill_kubeadm(
                &name,
                "join",
                "its kubeadm join added the etcd member",
                |f| match f
                    .member_list()
                    .ok()
                    .and_then(|l| probe::member_state(&l, &peer))
                {
                    Some(s) => {
                        killed_at = s.to_string();
                        true
                    }
                    None => false,
                },
            )?;
            info(&format!(
                "killed {name}'s kubeadm join (SIGKILL) with its etcd member {killed_at}"
            ));
            let restarts = self
                .fleet
                .supervise(std::slice::from_ref(&name), SUPERVISE_MAX)?;
            hostile = Some(PartitionJoin {
                waited: write::Waited {
                    node: Some(name.clone()),
                    waiting,
                    still_waiting: still.is_some(),
                    inits,
                    apiserver_manifest: Some(apiserver),
                },
                join: write::JoinKill {
                    node: name.clone(),
                    member_when_killed: killed_at,
                    restarts: restarts[&name].into(),
                },
            });
        } else {
            self.fleet.start_agent(&name)?;
            self.fleet.wait_agents(std::slice::from_ref(&name))?;
        }
        let f = &self.fleet;
        let seconds = read(&logs.join(format!("{name}.seconds")))?
            .trim()
            .to_string();
        info("etcd members after:");
        f.members_table()?;
        let started = probe::started_members(&f.member_list()?)?;
        let healthy = f.healthy_members();
        let got = f.kctl(&[
            "get",
            "configmap",
            "kubeha-demo-marker",
            "-o",
            "jsonpath={.data.written}",
        ])?;
        let decision = f.decision(&name).unwrap_or_default();
        let ok = started == 3 && healthy == 3 && got == mark && decision == "join";
        info(&format!(
            "{started} started members, {healthy} healthy; ConfigMap kubeha-demo-marker = \"{got}\"; {name} decided to join: rebuild ok={ok}"
        ));
        for l in read(&f.agent_log(&name))?
            .lines()
            .filter(|l| l.contains("stale etcd member") || l.contains("deleted the stale Node"))
        {
            println!("   agent: {l}");
        }
        let inits_after = self.count_in_agent_logs("kubeadm init on ", true);
        let (nodes_status, secs) = self.wait_ready()?;
        info(&format!(
            "Nodes after the rebuild (kubectl get nodes through the VIP, waited {secs}s): {nodes_status}"
        ));
        Ok(Rebuilt {
            ok,
            seconds,
            nodes_status,
            inits_after,
            hostile,
        })
    }

    /// 5c (hostile): every master is reimaged at once while the workers still run the cluster: three empty
    /// masters boot, a new cluster would adopt the workers: nobody may initialize.
    fn all_masters_reimaged(&mut self, k: InitKillDrill, r: PartitionJoin) -> Result<()> {
        say(
            "5c. hostile: every master is reimaged at once while the workers still run the cluster",
        );
        let masters = self.fleet.facts.masters.clone();
        let logs = self.logs();
        for m in &masters {
            self.fleet.node_stop(m)?;
        }
        for m in &masters {
            std::fs::rename(
                logs.join(format!("{m}.agent.log")),
                logs.join(format!("{m}.agent.before-wipe.log")),
            )?;
            self.fleet.reimage(m)?;
        }
        for m in &masters {
            self.fleet.start_agent(m)?;
        }
        info("three empty masters boot; the workers' kubelets still run: a new cluster would adopt them");
        let waiting = self.wait_waiting(&masters[0], self.timeout())?;
        info(&format!("{} waits: {}", masters[0], clip(&waiting, 400)));
        std::thread::sleep(Duration::from_secs(15));
        let mut inits = 0;
        for m in &masters {
            inits += count_lines(&read(&self.fleet.agent_log(m))?, "kubeadm init on ");
        }
        let still = self.fleet.waiting(&masters[0]);
        info(&format!(
            "after 15 s more: kubeadm init runs: {inits}; {} still waits: {}",
            masters[0],
            if still.is_some() { "yes" } else { "no" }
        ));
        for m in &masters {
            self.fleet.node_stop(m)?;
        }
        let two = &masters[1];
        write::add_hostile(
            self.state(),
            write::Hostile {
                kubeadm_killed_in_init: k.record,
                two_bootstraps: write::TwoBootstraps {
                    node: two.clone(),
                    believed_designated: k.believed,
                    decision: self.fleet.decision(two).unwrap_or_default(),
                },
                partitioned_rebuild: r.waited,
                kubeadm_killed_in_join: r.join,
                all_masters_reimaged: write::Waited {
                    node: None,
                    waiting,
                    still_waiting: still.is_some(),
                    inits,
                    apiserver_manifest: None,
                },
            },
        )?;
        info(&format!(
            "hostile results added to {}",
            self.state().join("result.json").display()
        ));
        Ok(())
    }
}

/// The rebuild drill's numbers.
struct Rebuilt {
    ok: bool,
    seconds: String,
    nodes_status: String,
    inits_after: u64,
    hostile: Option<PartitionJoin>,
}

/// The hostile part of the rebuild drill.
struct PartitionJoin {
    waited: write::Waited,
    join: write::JoinKill,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_clip() {
        let c = utc_clock();
        assert_eq!(c.len(), 8, "{c}");
        assert_eq!(c.as_bytes()[2], b':');
        assert_eq!(clip("abcdef", 3), "abc");
        assert_eq!(clip("äöü", 2), "äö");
        assert_eq!(clip("ab", 5), "ab");
    }
}
