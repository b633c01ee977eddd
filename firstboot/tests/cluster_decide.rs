//! The init/join decision end to end through the real cluster steps (`cluster::steps_with`), one thread per node,
//! against a simulated network ([`World`], a `ClusterEnv`) and a kubeadm stand-in ([`StandIn`], a `Runner`).
//!
//! STAND-IN, named as such: `StandIn` is not kubeadm. For `kubeadm init|join --config F` it asserts that F exists
//! under the node's root with mode 0600 in a 0700 directory, holds the right kind and the token, that the token is
//! not on the command line, and (masters) that the CA files are in /etc/kubernetes/pki with 0600 keys; it copies F
//! to the test's record; then it changes the simulated world as kubeadm would (an apiserver and an etcd member
//! appear; a join fails unless the endpoint answers). A second `init` in one world is recorded and fails the test.
//!
//! Scenarios: all masters (and a worker) start at once; the designated master starts last; the designated master
//! is reimaged while the others run (it must join, after its stale etcd member and Node are removed); and the same
//! with quorum lost (the rebuild refuses, kubeadm never runs). Each node also runs its steps a second time: nothing
//! more happens.

#[path = "cluster/common.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::*;
use kubeha_firstboot::cluster::attest::{Attestation, State as AttestState};
use kubeha_firstboot::cluster::decide::{ClusterEnv, Timing};
use kubeha_firstboot::cluster::etcd::{self, Member, Rebuild};
use kubeha_firstboot::cluster::kubeapi::Deleted;
use kubeha_firstboot::cluster::steps_with;
use kubeha_firstboot::engine::{Context, Step};
use kubeha_firstboot::runner::{Cmd, Output, Runner};
use kubeha_model::cluster::{Node, Role};
use kubeha_model::{Cluster, NodeConfig};

#[derive(Default)]
struct WorldState {
    /// TCP ports that accept.
    open: BTreeSet<SocketAddrV4>,
    /// Masters whose keepalived + nginx run.
    lb_up: BTreeSet<Ipv4Addr>,
    /// etcd members.
    members: Vec<Member>,
    next_id: u64,
    /// kubeadm commands, as "node: argv".
    kubeadm: Vec<String>,
    inits: Vec<String>,
    joins_in_progress: usize,
    max_parallel_joins: usize,
    deleted_nodes: Vec<String>,
    /// Node objects the API holds (a kubelet registered them; `delete_node` removes them).
    nodes: BTreeSet<String>,
    /// Whether init's upload-config phase wrote kube-system/kubeadm-config.
    kubeadm_config: bool,
    /// Attestation listeners: node -> (state, the master it waits for).
    attest: BTreeMap<String, (AttestState, String)>,
    /// `kubeadm reset -f` runs, by node.
    resets: Vec<String>,
    /// Control-plane joins to kill part-way, once each: node name -> where.
    crash: BTreeMap<String, CrashAt>,
    /// `kubeadm init` runs killed by a crash point.
    killed_inits: Vec<String>,
    errors: Vec<String>,
}

/// Where a control-plane `kubeadm join` is killed (the stand-in writes what real kubeadm has written by then and
/// exits non-zero).
#[derive(Clone, Copy, Debug)]
enum CrashAt {
    /// After kubelet-start (kubeconfigs, apiserver manifest), before control-plane-join adds the etcd member.
    BeforeEtcd,
    /// After every file is written, before the member and the Node exist (what the files alone cannot tell).
    AfterFiles,
    /// After the etcd member was added as a learner and the local etcd started, before kubeadm promotes it (what
    /// real kubeadm 1.36 leaves when it is killed there: the learner runs, the Node never appears).
    AfterLearner,
    /// `kubeadm init` killed once its control plane runs (etcd, apiserver, the kubelet registered the Node), before
    /// upload-config: what real kubeadm 1.36 leaves when it is killed in wait-control-plane.
    InitAfterControlPlane,
    /// `kubeadm init` killed after writing the kubeconfigs and the static pod manifests, before kubelet-start
    /// wrote the kubelet's config: nothing runs, nothing will (real kubeadm 1.36 killed before its etcd answered).
    InitBeforeKubelet,
}

#[derive(Clone)]
struct World {
    c: Cluster,
    s: Arc<Mutex<WorldState>>,
    record: PathBuf,
}

impl World {
    fn new(c: &Cluster, record: &Path) -> World {
        World {
            c: c.clone(),
            s: Arc::new(Mutex::new(WorldState {
                next_id: 100,
                ..Default::default()
            })),
            record: record.into(),
        }
    }
    /// A master whose control plane runs (as if kubeadm had set it up before the test).
    fn running_master(&self, n: &Node) {
        let mut s = self.s.lock().unwrap();
        for p in [6443, 2379, 2380, 10250] {
            s.open.insert(SocketAddrV4::new(n.ip, p));
        }
        s.lb_up.insert(n.ip);
        s.next_id += 1;
        let id = s.next_id;
        s.members.push(member(id, n));
        s.nodes.insert(n.name.clone());
        s.kubeadm_config = true;
    }
    fn stop_master(&self, n: &Node) {
        let mut s = self.s.lock().unwrap();
        s.open.retain(|a| *a.ip() != n.ip);
        s.lb_up.remove(&n.ip);
    }
}

fn member(id: u64, n: &Node) -> Member {
    Member {
        id,
        name: n.name.clone(),
        peer_urls: vec![etcd::peer_url(n.ip)],
        client_urls: vec![etcd::client_url(n.ip)],
        is_learner: false,
    }
}

impl ClusterEnv for World {
    fn tcp_open(&self, addr: SocketAddrV4) -> bool {
        let s = self.s.lock().unwrap();
        s.open.contains(&addr)
            || (addr.port() == self.c.endpoint.port && s.lb_up.contains(addr.ip()))
    }
    fn apiserver_answers(&self, _cfg: &NodeConfig, addr: SocketAddrV4) -> bool {
        if addr == SocketAddrV4::new(self.c.endpoint.vip, self.c.endpoint.port) {
            // The VIP answers when some master's keepalived + nginx run and some apiserver is up behind them.
            let s = self.s.lock().unwrap();
            return !s.lb_up.is_empty()
                && self
                    .c
                    .masters
                    .iter()
                    .any(|m| s.open.contains(&SocketAddrV4::new(m.ip, 6443)));
        }
        self.tcp_open(addr)
    }
    fn etcd_members(&self, _cfg: &NodeConfig, me: &Node) -> Result<Vec<Member>> {
        let s = self.s.lock().unwrap();
        let any = self
            .c
            .masters
            .iter()
            .any(|m| m.name != me.name && s.open.contains(&SocketAddrV4::new(m.ip, 2379)));
        if !any {
            bail!("no etcd member answered");
        }
        Ok(s.members.clone())
    }
    fn etcd_rebuild(&self, cfg: &NodeConfig, me: &Node) -> Result<Rebuild> {
        let members = self.etcd_members(cfg, me)?;
        let stale = etcd::stale_members(&members, &me.name, me.ip);
        if stale.is_empty() {
            return Ok(Rebuild::NotMember);
        }
        let healthy: BTreeSet<u64> = {
            let s = self.s.lock().unwrap();
            members
                .iter()
                .filter(|m| {
                    self.c.masters.iter().any(|n| {
                        n.name == m.name && s.open.contains(&SocketAddrV4::new(n.ip, 2379))
                    })
                })
                .map(|m| m.id)
                .collect()
        };
        etcd::check_removal(&members, &stale, &healthy)?;
        let ids: Vec<(u64, String)> = stale.iter().map(|m| (m.id, m.name.clone())).collect();
        self.s
            .lock()
            .unwrap()
            .members
            .retain(|m| !ids.iter().any(|(i, _)| *i == m.id));
        Ok(Rebuild::Removed(ids))
    }
    fn etcd_add(&self, cfg: &NodeConfig, me: &Node) -> Result<Vec<Member>> {
        // kubeadm 1.11: the agent adds the member itself (as unstarted), then kubeadm's `etcd local` phase starts it.
        self.etcd_members(cfg, me)?;
        let mut s = self.s.lock().unwrap();
        let purl = etcd::peer_url(me.ip);
        if !s.members.iter().any(|m| m.peer_urls.contains(&purl)) {
            s.next_id += 1;
            let id = s.next_id;
            s.members.push(Member {
                name: String::new(),
                client_urls: vec![],
                ..member(id, me)
            });
        }
        Ok(s.members.clone())
    }
    fn delete_node(&self, _cfg: &NodeConfig, name: &str) -> Result<Deleted> {
        let mut s = self.s.lock().unwrap();
        s.deleted_nodes.push(name.to_string());
        s.nodes.remove(name);
        Ok(Deleted::Yes)
    }
    fn attest(&self, _cfg: &NodeConfig, peer: &Node) -> Result<Attestation> {
        let s = self.s.lock().unwrap();
        match s.attest.get(&peer.name) {
            Some((state, d)) => Ok(Attestation {
                name: peer.name.clone(),
                state: *state,
                designated: d.clone(),
            }),
            None => bail!("connection refused"),
        }
    }
    fn set_attestation(
        &self,
        _cfg: &NodeConfig,
        me: &Node,
        state: Option<(AttestState, String)>,
    ) -> Result<()> {
        let mut s = self.s.lock().unwrap();
        match state {
            Some(st) => s.attest.insert(me.name.clone(), st),
            None => s.attest.remove(&me.name),
        };
        Ok(())
    }
    fn api_exists(&self, cfg: &NodeConfig, path: &str) -> Result<bool> {
        if !self.apiserver_answers(
            cfg,
            SocketAddrV4::new(self.c.endpoint.vip, self.c.endpoint.port),
        ) {
            bail!("nothing answers at the VIP");
        }
        let s = self.s.lock().unwrap();
        match path.strip_prefix("/api/v1/nodes/") {
            Some(name) => Ok(s.nodes.contains(name)),
            None if path == "/api/v1/namespaces/kube-system/configmaps/kubeadm-config" => {
                Ok(s.kubeadm_config)
            }
            // Uploaded by init's bootstrap-token phase, right after upload-config: the stand-in's init writes both
            // or neither.
            None if path == kubeha_firstboot::cluster::decide::CLUSTER_INFO => Ok(s.kubeadm_config),
            None => bail!("unexpected API path {path}"),
        }
    }
}

/// The kubeadm stand-in (see the module docs), plus canned answers for the other tools a master step calls.
struct StandIn {
    world: World,
    root: PathBuf,
    node: Node,
    role: Role,
    token: String,
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

impl StandIn {
    /// Checks the `--config` file as kubeadm would need it and returns its document of `kind`.
    fn check_config(&self, argv: &[String], kind: &str) -> Result<serde_yaml::Value> {
        let i = argv
            .iter()
            .position(|a| a == "--config")
            .ok_or_else(|| anyhow::anyhow!("no --config in {argv:?}"))?;
        let sys = &argv[i + 1];
        let p = self.root.join(sys.trim_start_matches('/'));
        let text = std::fs::read_to_string(&p)
            .map_err(|e| anyhow::anyhow!("kubeadm stand-in: {}: {e}", p.display()))?;
        if mode(&p) != 0o600 || mode(p.parent().unwrap()) != 0o700 {
            bail!(
                "kubeadm stand-in: {} is {:o} in a {:o} directory, want 0600 in 0700",
                p.display(),
                mode(&p),
                mode(p.parent().unwrap())
            );
        }
        // kubeadm reads every document of the file (YAML; kubeha writes JSON documents, which are YAML too).
        use serde::Deserialize as _;
        let doc = serde_yaml::Deserializer::from_str(&text)
            .filter_map(|d| serde_yaml::Value::deserialize(d).ok())
            .find(|d| d["kind"] == kind);
        let Some(doc) = doc.filter(|_| text.contains(&self.token)) else {
            bail!(
                "kubeadm stand-in: {} is not a {kind} with the token",
                p.display()
            );
        };
        if argv.iter().any(|a| a.contains(&self.token)) {
            bail!("the token is on the command line: {argv:?}");
        }
        let n = std::fs::read_dir(&self.world.record)
            .map(|d| d.count())
            .unwrap_or(0);
        std::fs::copy(
            &p,
            self.world.record.join(format!(
                "{n:02}-{}-{}",
                self.node.name,
                p.file_name().unwrap().to_string_lossy()
            )),
        )?;
        Ok(doc)
    }

    fn check_pki(&self) -> Result<()> {
        let pki = self.root.join("etc/kubernetes/pki");
        for (f, m) in [
            ("ca.crt", 0o644),
            ("ca.key", 0o600),
            ("front-proxy-ca.key", 0o600),
            ("etcd/ca.key", 0o600),
            ("sa.key", 0o600),
            ("sa.pub", 0o644),
        ] {
            if mode(&pki.join(f)) != m {
                bail!(
                    "kubeadm stand-in: {}/{f} missing or not {m:o}",
                    pki.display()
                );
            }
        }
        Ok(())
    }

    fn control_plane_files(&self) {
        self.manifests_and_kubeconfigs();
        put(
            &self.root.join("var/lib/kubelet/config.yaml"),
            "written by the kubeadm stand-in (kubelet-start)\n",
            0o644,
        );
    }

    /// What kubeadm's kubeconfig, etcd and control-plane phases write (before kubelet-start).
    fn manifests_and_kubeconfigs(&self) {
        for f in [
            "etc/kubernetes/admin.conf",
            "etc/kubernetes/kubelet.conf",
            "etc/kubernetes/manifests/kube-apiserver.yaml",
            "etc/kubernetes/manifests/etcd.yaml",
        ] {
            put(
                &self.root.join(f),
                "written by the kubeadm stand-in\n",
                0o600,
            );
        }
    }

    fn kubeadm(&self, argv: &[String]) -> Result<()> {
        let w = &self.world;
        w.s.lock()
            .unwrap()
            .kubeadm
            .push(format!("{}: kubeadm {}", self.node.name, argv.join(" ")));
        match argv.first().map(String::as_str) {
            Some("init") => {
                let legacy = self.world.c.cluster.kubernetes_version.minor == 11;
                self.check_config(
                    argv,
                    if legacy {
                        "MasterConfiguration"
                    } else {
                        "InitConfiguration"
                    },
                )?;
                self.check_pki()?;
                let crash = w.s.lock().unwrap().crash.remove(&self.node.name);
                if let Some(CrashAt::InitBeforeKubelet) = crash {
                    w.s.lock()
                        .unwrap()
                        .killed_inits
                        .push(self.node.name.clone());
                    self.manifests_and_kubeconfigs();
                    bail!("kubeadm stand-in: killed inside init (manifests written, before kubelet-start)");
                }
                if let Some(CrashAt::InitAfterControlPlane) = crash {
                    w.running_master(&self.node);
                    let mut s = w.s.lock().unwrap();
                    s.kubeadm_config = false;
                    s.killed_inits.push(self.node.name.clone());
                    drop(s);
                    self.control_plane_files();
                    bail!("kubeadm stand-in: killed inside init (control plane up, before upload-config)");
                }
                {
                    let mut s = w.s.lock().unwrap();
                    if !s.members.is_empty() || !s.inits.is_empty() {
                        let msg = format!(
                            "SECOND INIT by {} (inits so far {:?})",
                            self.node.name, s.inits
                        );
                        s.errors.push(msg);
                    }
                    s.inits.push(self.node.name.clone());
                }
                std::thread::sleep(Duration::from_millis(150));
                w.running_master(&self.node);
                self.control_plane_files();
            }
            Some("alpha") => {
                // kubeadm 1.11's phases on a joining master: every one reads the MasterConfiguration.
                let doc = self.check_config(argv, "MasterConfiguration")?;
                if doc["etcd"]["local"]["extraArgs"]["initial-cluster-state"] != "existing" {
                    bail!(
                        "a joining 1.11 master must start etcd with initial-cluster-state existing"
                    );
                }
                let phase: Vec<&str> = argv[2..]
                    .iter()
                    .map(String::as_str)
                    .take_while(|a| *a != "--config")
                    .collect();
                let mut s = w.s.lock().unwrap();
                match phase.as_slice() {
                    ["etcd", "local"] => {
                        let purl = etcd::peer_url(self.node.ip);
                        let Some(m) = s.members.iter_mut().find(|m| m.peer_urls.contains(&purl))
                        else {
                            bail!("etcd local phase without a member added first");
                        };
                        *m = member(m.id, &self.node);
                        for p in [2379, 2380] {
                            s.open.insert(SocketAddrV4::new(self.node.ip, p));
                        }
                    }
                    ["mark-master"] => {
                        s.nodes.insert(self.node.name.clone());
                        for p in [6443, 10250] {
                            s.open.insert(SocketAddrV4::new(self.node.ip, p));
                        }
                        drop(s);
                        self.control_plane_files();
                    }
                    _ => {}
                }
            }
            Some("join") if self.world.c.cluster.kubernetes_version.minor == 11 => {
                let doc = self.check_config(argv, "NodeConfiguration")?;
                if self.role == Role::Master || doc.get("discoveryTokenAPIServers").is_none() {
                    bail!("1.11: only workers run kubeadm join");
                }
                w.s.lock()
                    .unwrap()
                    .open
                    .insert(SocketAddrV4::new(self.node.ip, 10250));
                put(
                    &self.root.join("etc/kubernetes/kubelet.conf"),
                    "stand-in\n",
                    0o600,
                );
            }
            Some("join") => {
                let doc = self.check_config(argv, "JoinConfiguration")?;
                if !w.apiserver_answers(
                    &common::master_config(&w.c, &w.c.masters[0].name),
                    SocketAddrV4::new(w.c.endpoint.vip, w.c.endpoint.port),
                ) {
                    bail!("kubeadm stand-in: couldn't validate the identity of the API Server: nothing answers at the VIP");
                }
                if self.role == Role::Master {
                    if doc.get("controlPlane").is_none() {
                        bail!("a master's join config has no controlPlane");
                    }
                    self.check_pki()?;
                    let crash = w.s.lock().unwrap().crash.remove(&self.node.name);
                    match crash {
                        Some(CrashAt::BeforeEtcd) => {
                            self.control_plane_files();
                            std::fs::remove_file(
                                self.root.join("etc/kubernetes/manifests/etcd.yaml"),
                            )
                            .unwrap();
                            bail!(
                                "kubeadm stand-in: killed inside join (before the etcd member add)"
                            );
                        }
                        Some(CrashAt::AfterFiles) => {
                            self.control_plane_files();
                            bail!("kubeadm stand-in: killed inside join (files written, nothing in the cluster)");
                        }
                        Some(CrashAt::AfterLearner) => {
                            self.control_plane_files();
                            let mut s = w.s.lock().unwrap();
                            s.next_id += 1;
                            let id = s.next_id;
                            s.members.push(Member {
                                is_learner: true,
                                ..member(id, &self.node)
                            });
                            for p in [2379, 2380] {
                                s.open.insert(SocketAddrV4::new(self.node.ip, p));
                            }
                            bail!("kubeadm stand-in: killed inside join (etcd learner added and started, not promoted)");
                        }
                        Some(CrashAt::InitAfterControlPlane | CrashAt::InitBeforeKubelet) => {
                            bail!("kubeadm stand-in: an init crash point on a joining master")
                        }
                        None => {}
                    }
                    {
                        let mut s = w.s.lock().unwrap();
                        if s.members
                            .iter()
                            .any(|m| m.peer_urls.contains(&etcd::peer_url(self.node.ip)))
                        {
                            s.errors.push(format!(
                                "{} joined while its stale etcd member exists",
                                self.node.name
                            ));
                        }
                        s.joins_in_progress += 1;
                        s.max_parallel_joins = s.max_parallel_joins.max(s.joins_in_progress);
                        s.next_id += 1;
                        let id = s.next_id;
                        s.members.push(Member {
                            name: String::new(),
                            client_urls: vec![],
                            ..member(id, &self.node)
                        });
                    }
                    std::thread::sleep(Duration::from_millis(150));
                    {
                        let mut s = w.s.lock().unwrap();
                        let purl = etcd::peer_url(self.node.ip);
                        if let Some(m) = s.members.iter_mut().find(|m| m.peer_urls.contains(&purl))
                        {
                            *m = member(m.id, &self.node);
                        }
                        s.joins_in_progress -= 1;
                        s.nodes.insert(self.node.name.clone());
                        for p in [6443, 2379, 2380, 10250] {
                            s.open.insert(SocketAddrV4::new(self.node.ip, p));
                        }
                    }
                    self.control_plane_files();
                } else {
                    if doc.get("controlPlane").is_some() {
                        bail!("a worker's join config has a controlPlane");
                    }
                    w.s.lock()
                        .unwrap()
                        .open
                        .insert(SocketAddrV4::new(self.node.ip, 10250));
                    put(
                        &self.root.join("etc/kubernetes/kubelet.conf"),
                        "stand-in\n",
                        0o600,
                    );
                    put(
                        &self.root.join("var/lib/kubelet/config.yaml"),
                        "stand-in\n",
                        0o644,
                    );
                }
            }
            Some("reset") => {
                // What kubeadm reset's cleanup-node phase removes: the manifests, the kubeconfigs and the contents
                // of /etc/kubernetes/pki (so a retry without the CA material put back would mint a new CA).
                let k = self.root.join("etc/kubernetes");
                for d in ["manifests", "pki"] {
                    let _ = std::fs::remove_dir_all(k.join(d));
                }
                for f in [
                    "admin.conf",
                    "kubelet.conf",
                    "bootstrap-kubelet.conf",
                    "super-admin.conf",
                ] {
                    let _ = std::fs::remove_file(k.join(f));
                }
                let _ = std::fs::remove_dir_all(self.root.join("var/lib/etcd"));
                let _ = std::fs::remove_dir_all(self.root.join("var/lib/kubelet"));
                let mut s = w.s.lock().unwrap();
                // The static pods are gone with their manifests.
                let ip = self.node.ip;
                s.open.retain(|a| *a.ip() != ip);
                s.lb_up.remove(&ip);
                // A cluster whose only etcd member was this node's is gone with /var/lib/etcd.
                let purl = etcd::peer_url(ip);
                if !s.members.is_empty() && s.members.iter().all(|m| m.peer_urls.contains(&purl)) {
                    s.members.clear();
                    s.nodes.clear();
                    s.kubeadm_config = false;
                }
                s.resets.push(self.node.name.clone());
            }
            _ => bail!("kubeadm stand-in: unexpected {argv:?}"),
        }
        Ok(())
    }
}

impl Runner for StandIn {
    fn output(&self, cmd: &Cmd) -> Result<Output> {
        let ok = |out: &str| {
            Ok(Output {
                code: Some(0),
                stdout: out.as_bytes().to_vec(),
                stderr: vec![],
            })
        };
        match cmd.program.as_str() {
            "kubeadm" => {
                self.kubeadm(&cmd.args)?;
                ok("")
            }
            "ip" => ok(&format!("1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet {}/24 brd 192.168.20.255 scope global eth0\n", self.node.ip)),
            "getenforce" => ok("Disabled\n"),
            "firewall-cmd" => Ok(Output { code: Some(252), stdout: b"not running\n".to_vec(), stderr: vec![] }),
            "systemctl" => {
                if cmd.args.len() == 2 && cmd.args[1] == "keepalived" && cmd.args[0] != "enable" {
                    self.world.s.lock().unwrap().lb_up.insert(self.node.ip);
                }
                ok("")
            }
            "nginx" | "kubectl" => ok(""),
            p => bail!("unexpected command {p}"),
        }
    }
}

fn timing() -> Timing {
    Timing {
        endpoint_wait: Duration::from_secs(20),
        verify_wait: Duration::from_secs(20),
        turn_wait: Duration::from_secs(10),
        absent_grace: Duration::from_millis(1500),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        probe_timeout: Duration::from_millis(100),
    }
}

fn context(world: &World, dir: &Path, c: &Cluster, name: &str) -> Context {
    let (role, _) = c.node(name).unwrap();
    let config = if role == Role::Master {
        master_config(c, name)
    } else {
        worker_config(c, name)
    };
    let root = dir.join(name);
    std::fs::create_dir_all(&root).unwrap();
    // The CNI manifest in the node's bundle.
    put(
        &root.join("var/lib/kubeha/bundle/files/calico.yaml"),
        "kind: DaemonSet\nimage: docker.io/calico/node:v3.28.2\n",
        0o644,
    );
    let node = c.node(name).unwrap().1.clone();
    Context {
        root: root.clone(),
        runner: Box::new(StandIn {
            world: world.clone(),
            root,
            node: node.clone(),
            role,
            token: config.join.token.clone(),
        }),
        config,
        me: node,
        role,
        dry_run: false,
    }
}

fn run_steps(ctx: &mut Context, steps: &[Box<dyn Step>]) -> Result<()> {
    for s in steps {
        if s.applies(ctx) {
            s.run(ctx)
                .map_err(|e| e.context(format!("step {}", s.name())))?;
        }
    }
    Ok(())
}

/// The unit's Restart=on-failure: runs the steps until they succeed, at most four times; the failed runs' errors.
fn run_until_done(ctx: &mut Context, steps: &[Box<dyn Step>]) -> Vec<String> {
    let mut errors = Vec::new();
    for _ in 0..4 {
        match run_steps(ctx, steps) {
            Ok(()) => break,
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    errors
}

/// Starts each node after its delay, runs its steps twice (the second run must do nothing), returns the results.
fn run_nodes(
    world: &World,
    dir: &Path,
    c: &Cluster,
    nodes: &[(&str, u64)],
) -> BTreeMap<String, Result<()>> {
    let handles: Vec<_> = nodes
        .iter()
        .map(|(name, delay)| {
            let (world, dir, c, name, delay) = (
                world.clone(),
                dir.to_path_buf(),
                c.clone(),
                name.to_string(),
                *delay,
            );
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay));
                let mut ctx = context(&world, &dir, &c, &name);
                let steps = steps_with(Arc::new(world.clone()), timing());
                let r = run_steps(&mut ctx, &steps);
                if r.is_ok() {
                    let before = world.s.lock().unwrap().kubeadm.len();
                    run_steps(&mut ctx, &steps).expect("second run");
                    let after = world.s.lock().unwrap().kubeadm.clone();
                    let mine: Vec<_> = after[before..]
                        .iter()
                        .filter(|l| l.starts_with(&format!("{name}:")))
                        .collect();
                    assert!(
                        mine.is_empty(),
                        "second run of {name} ran kubeadm again: {mine:?}"
                    );
                }
                (name, r)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn setup() -> (Cluster, tempfile::TempDir, World) {
    let mut c = Cluster::default_cluster();
    c.workers.truncate(1);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    std::fs::create_dir_all(&record).unwrap();
    let world = World::new(&c, &record);
    (c, dir, world)
}

fn assert_no_errors(world: &World, results: &BTreeMap<String, Result<()>>) {
    for (n, r) in results {
        if let Err(e) = r {
            panic!("{n} failed: {e:#}");
        }
    }
    let s = world.s.lock().unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
}

#[test]
fn all_masters_start_at_once() {
    let (c, dir, world) = setup();
    let t = Instant::now();
    let r = run_nodes(
        &world,
        dir.path(),
        &c,
        &[
            ("k8s-master01", 0),
            ("k8s-master02", 0),
            ("k8s-master03", 0),
            ("k8s-node01", 0),
        ],
    );
    assert_no_errors(&world, &r);
    let s = world.s.lock().unwrap();
    assert_eq!(
        s.inits,
        vec!["k8s-master01".to_string()],
        "exactly one init, by the designated master"
    );
    assert_eq!(s.members.iter().filter(|m| m.started()).count(), 3);
    assert_eq!(
        s.max_parallel_joins, 1,
        "control-plane joins are serialized"
    );
    let joins: Vec<&String> = s
        .kubeadm
        .iter()
        .filter(|l| l.contains("kubeadm join"))
        .collect();
    assert_eq!(joins.len(), 3, "{joins:?}");
    let order: Vec<&str> = joins
        .iter()
        .filter(|l| l.contains("master"))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["k8s-master02", "k8s-master03"],
        "joins follow master order"
    );
    let recorded: Vec<String> = std::fs::read_dir(&world.record)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    eprintln!("all at once: {:?} in {:.1?}", s.kubeadm, t.elapsed());
}

#[test]
fn designated_master_starts_last() {
    let (c, dir, world) = setup();
    let r = run_nodes(
        &world,
        dir.path(),
        &c,
        &[
            ("k8s-master02", 0),
            ("k8s-master03", 0),
            ("k8s-node01", 0),
            ("k8s-master01", 1500),
        ],
    );
    assert_no_errors(&world, &r);
    let s = world.s.lock().unwrap();
    assert_eq!(s.inits, vec!["k8s-master01".to_string()]);
    assert_eq!(s.members.iter().filter(|m| m.started()).count(), 3);
    assert_eq!(s.max_parallel_joins, 1);
}

#[test]
fn reimaged_designated_master_joins() {
    let (c, dir, world) = setup();
    for m in &c.masters {
        world.running_master(m);
    }
    // master01 is reimaged: its machine is down (ports closed), its member and Node are stale.
    world.stop_master(&c.masters[0]);
    let old = world.s.lock().unwrap().members[0].id;
    let r = run_nodes(&world, dir.path(), &c, &[("k8s-master01", 0)]);
    assert_no_errors(&world, &r);
    let s = world.s.lock().unwrap();
    assert!(
        s.inits.is_empty(),
        "a reimaged designated master must not init: {:?}",
        s.kubeadm
    );
    assert!(
        s.kubeadm
            .iter()
            .any(|l| l == "k8s-master01: kubeadm join --config /etc/kubeha/kubeadm-join.yaml"),
        "{:?}",
        s.kubeadm
    );
    assert!(
        !s.members.iter().any(|m| m.id == old),
        "stale member removed"
    );
    assert_eq!(s.members.iter().filter(|m| m.started()).count(), 3);
    assert_eq!(s.deleted_nodes, vec!["k8s-master01".to_string()]);
    let d = std::fs::read_to_string(
        dir.path()
            .join("k8s-master01/var/lib/kubeha/cluster/decision"),
    )
    .unwrap();
    assert_eq!(d.trim(), "join");
}

/// kubeadm killed inside a control-plane join, at three points: the next run resets what it left (and puts the CA
/// material back), decides again and joins; "done" needs the cluster to list the master, not the files.
#[test]
fn master_killed_inside_kubeadm_join_is_reset_and_joins_again() {
    for at in [
        CrashAt::BeforeEtcd,
        CrashAt::AfterFiles,
        CrashAt::AfterLearner,
    ] {
        let (c, dir, world) = setup();
        world.running_master(&c.masters[0]);
        world
            .s
            .lock()
            .unwrap()
            .crash
            .insert("k8s-master02".into(), at);
        let mut ctx = context(&world, dir.path(), &c, "k8s-master02");
        let steps = steps_with(Arc::new(world.clone()), timing());
        let errors = run_until_done(&mut ctx, &steps);
        let s = world.s.lock().unwrap();
        assert!(s.errors.is_empty(), "{at:?}: {:?}", s.errors);
        assert!(
            s.nodes.contains("k8s-master02"),
            "{at:?}: never joined: {errors:#?} {:?}",
            s.kubeadm
        );
        assert!(
            s.members
                .iter()
                .any(|m| m.name == "k8s-master02" && m.started()),
            "{at:?}: no started member"
        );
        assert!(
            s.inits.is_empty(),
            "{at:?}: a joining master initialized: {:?}",
            s.inits
        );
        assert_eq!(
            s.resets,
            vec!["k8s-master02".to_string()],
            "{at:?}: one reset before the retry"
        );
        let joins = s
            .kubeadm
            .iter()
            .filter(|l| l.contains("kubeadm join"))
            .count();
        assert_eq!(joins, 2, "{at:?}: {:?}", s.kubeadm);
        match at {
            CrashAt::BeforeEtcd => assert_eq!(errors.len(), 1, "{errors:#?}"),
            CrashAt::AfterFiles => {
                assert_eq!(errors.len(), 2, "{errors:#?}");
                assert!(
                    errors[1].contains("does not list k8s-master02"),
                    "{}",
                    errors[1]
                );
                assert!(errors[1].contains("Node: MISSING"), "{}", errors[1]);
            }
            CrashAt::AfterLearner => {
                // The learner is conclusive at once: no wait for the Node that cannot appear.
                assert_eq!(errors.len(), 2, "{errors:#?}");
                assert!(errors[1].contains("still a learner"), "{}", errors[1]);
                assert!(
                    !s.members.iter().any(|m| m.is_learner),
                    "{at:?}: a learner left behind: {:?}",
                    s.members
                );
            }
            CrashAt::InitAfterControlPlane | CrashAt::InitBeforeKubelet => unreachable!(),
        }
    }
}

/// kubeadm init killed once the control plane runs, before upload-config: the next run finds the API answering
/// without kubeadm-config, resets at once (no wait for what cannot come), decides again with the majority that still
/// waits for it and initializes: one cluster, by the same master.
#[test]
fn master_killed_inside_kubeadm_init_is_reset_and_initializes_again() {
    let (c, dir, world) = setup();
    {
        let mut s = world.s.lock().unwrap();
        for m in &c.masters[1..] {
            s.attest.insert(
                m.name.clone(),
                (AttestState::Waiting, "k8s-master01".into()),
            );
        }
        s.crash
            .insert("k8s-master01".into(), CrashAt::InitAfterControlPlane);
    }
    let mut ctx = context(&world, dir.path(), &c, "k8s-master01");
    let steps = steps_with(Arc::new(world.clone()), timing());
    let errors = run_until_done(&mut ctx, &steps);
    let s = world.s.lock().unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.killed_inits, vec!["k8s-master01".to_string()]);
    assert_eq!(
        s.inits,
        vec!["k8s-master01".to_string()],
        "{errors:#?} {:?}",
        s.kubeadm
    );
    assert_eq!(s.resets, vec!["k8s-master01".to_string()], "{errors:#?}");
    assert!(s.kubeadm_config && s.nodes.contains("k8s-master01"));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("killed inside init"), "{}", errors[0]);
    assert!(
        errors[1].contains("no kubeadm-config") && errors[1].contains("init was interrupted"),
        "{}",
        errors[1]
    );
}

/// kubeadm init killed after it wrote the kubeconfigs and the static pod manifests but before kubelet-start: every
/// file the old "done" check looked at exists and nothing will ever run them. The next run must not take it for a
/// control plane and wait in cluster-verify for an API that cannot answer; it resets, decides again and initializes.
#[test]
fn master_killed_before_kubelet_start_is_reset_not_waited_for() {
    let (c, dir, world) = setup();
    {
        let mut s = world.s.lock().unwrap();
        for m in &c.masters[1..] {
            s.attest.insert(
                m.name.clone(),
                (AttestState::Waiting, "k8s-master01".into()),
            );
        }
        s.crash
            .insert("k8s-master01".into(), CrashAt::InitBeforeKubelet);
    }
    let mut ctx = context(&world, dir.path(), &c, "k8s-master01");
    let steps = steps_with(Arc::new(world.clone()), timing());
    let errors = run_until_done(&mut ctx, &steps);
    let s = world.s.lock().unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.killed_inits, vec!["k8s-master01".to_string()]);
    assert_eq!(s.inits, vec!["k8s-master01".to_string()], "{:?}", s.kubeadm);
    assert_eq!(s.resets, vec!["k8s-master01".to_string()], "{errors:#?}");
    assert!(s.kubeadm_config && s.nodes.contains("k8s-master01"));
    // One failure (the kill); the second run resets and initializes: no cluster-verify timeout in between.
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("before kubelet-start"), "{}", errors[0]);
}

/// A worker whose journal lists cluster-worker-join but which has no kubelet.conf (its disk was restored, or the
/// journal outlived a crash) joins: the journal is a record, not the truth.
#[test]
fn journal_listing_the_join_does_not_skip_it() {
    let (c, dir, world) = setup();
    world.running_master(&c.masters[0]);
    let mut ctx = context(&world, dir.path(), &c, "k8s-node01");
    let steps = steps_with(Arc::new(world.clone()), timing());
    let journal = kubeha_firstboot::engine::Journal {
        node: "k8s-node01".into(),
        done: steps.iter().map(|s| s.name().to_string()).collect(),
    };
    journal.save(&ctx.root).unwrap();
    let mut rep = kubeha_firstboot::status::Reporter::new(ctx.root.clone(), None, false);
    kubeha_firstboot::engine::run(&mut ctx, &steps, &mut rep).unwrap();
    let s = world.s.lock().unwrap();
    assert!(
        s.kubeadm
            .iter()
            .any(|l| l.starts_with("k8s-node01: kubeadm join")),
        "{:?}",
        s.kubeadm
    );
}

/// The network as seen from a master cut off from every other (link down on its side, a wrong VLAN): nothing
/// answers it; its own listener still changes the world's view of it.
struct Isolated(World);

impl ClusterEnv for Isolated {
    fn tcp_open(&self, _: SocketAddrV4) -> bool {
        false
    }
    fn apiserver_answers(&self, _: &NodeConfig, _: SocketAddrV4) -> bool {
        false
    }
    fn etcd_members(&self, _: &NodeConfig, _: &Node) -> Result<Vec<Member>> {
        bail!("no route to host")
    }
    fn etcd_rebuild(&self, _: &NodeConfig, _: &Node) -> Result<Rebuild> {
        bail!("no route to host")
    }
    fn etcd_add(&self, _: &NodeConfig, _: &Node) -> Result<Vec<Member>> {
        bail!("no route to host")
    }
    fn attest(&self, _: &NodeConfig, _: &Node) -> Result<Attestation> {
        bail!("no route to host")
    }
    fn set_attestation(
        &self,
        cfg: &NodeConfig,
        me: &Node,
        st: Option<(AttestState, String)>,
    ) -> Result<()> {
        self.0.set_attestation(cfg, me, st)
    }
    fn delete_node(&self, _: &NodeConfig, _: &str) -> Result<Deleted> {
        bail!("no route to host")
    }
    fn api_exists(&self, _: &NodeConfig, _: &str) -> Result<bool> {
        bail!("no route to host")
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

fn short_timing() -> Timing {
    Timing {
        endpoint_wait: Duration::from_secs(2),
        verify_wait: Duration::from_secs(2),
        ..timing()
    }
}

/// Never two clusters, 1: a reimaged designated master that cannot reach its peers (partitioned) while they run the
/// cluster never initializes; it waits, says why and how to force it, and changes nothing.
#[test]
fn partitioned_designated_master_never_initializes() {
    let (c, dir, world) = setup();
    for m in &c.masters[1..] {
        world.running_master(m);
    }
    let mut ctx = context(&world, dir.path(), &c, "k8s-master01");
    let steps = steps_with(Arc::new(Isolated(world.clone())), short_timing());
    let e = format!("{:#}", run_steps(&mut ctx, &steps).unwrap_err());
    assert!(
        e.contains("no majority attests") && e.contains("1 of 3"),
        "{e}"
    );
    assert!(
        e.contains("/etc/kubeha/force-init"),
        "says how to force: {e}"
    );
    let s = world.s.lock().unwrap();
    assert!(
        s.inits.is_empty() && s.kubeadm.is_empty(),
        "{:?}",
        s.kubeadm
    );
}

/// Never two clusters, 2: the designated master booted alone (the others are not up yet, or gone) waits instead of
/// initializing; the operator's force-init file is the one way past that.
#[test]
fn lone_designated_master_waits_unless_forced() {
    let (c, dir, world) = setup();
    let mut ctx = context(&world, dir.path(), &c, "k8s-master01");
    let mut rep = kubeha_firstboot::status::Reporter::new(ctx.root.clone(), None, false);
    rep.step("cluster", "cluster-decide");
    let steps = steps_with(Arc::new(world.clone()), short_timing());
    let e = format!("{:#}", run_steps(&mut ctx, &steps).unwrap_err());
    assert!(e.contains("no majority attests"), "{e}");
    assert!(world.s.lock().unwrap().inits.is_empty());
    // While it waits, status.json says why and how to go on (`kubeha-firstboot status` prints it).
    let st = kubeha_firstboot::status::load(&ctx.root).unwrap().unwrap();
    let w = st.waiting.clone().unwrap_or_default();
    assert!(
        w.contains("1 of 3") && w.contains("/etc/kubeha/force-init"),
        "{w}"
    );
    put(&ctx.root.join("etc/kubeha/force-init"), "", 0o600);
    run_steps(&mut ctx, &steps).unwrap();
    assert_eq!(
        world.s.lock().unwrap().inits,
        vec!["k8s-master01".to_string()]
    );
}

/// Never two clusters, 3: two masters that each believe they are designated (master02 booted with
/// kubeha.bootstrap=k8s-master02, the others with the default) all start at once: one cluster, one init.
#[test]
fn two_bootstraps_form_one_cluster() {
    let (c, dir, world) = setup();
    let handles: Vec<_> = ["k8s-master01", "k8s-master02", "k8s-master03"]
        .into_iter()
        .map(|name| {
            let (world, dir, c) = (world.clone(), dir.path().to_path_buf(), c.clone());
            std::thread::spawn(move || {
                let mut ctx = context(&world, &dir, &c, name);
                if name == "k8s-master02" {
                    ctx.config.node.bootstrap = Some("k8s-master02".into());
                }
                let steps = steps_with(Arc::new(world.clone()), timing());
                (name, run_steps(&mut ctx, &steps))
            })
        })
        .collect();
    let results: BTreeMap<_, _> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let s = world.s.lock().unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.inits.len(), 1, "one init: {:?} {results:?}", s.inits);
    assert_eq!(
        s.inits[0], "k8s-master01",
        "the master a majority designates"
    );
    assert!(
        results["k8s-master01"].is_ok() && results["k8s-master03"].is_ok(),
        "{results:?}"
    );
    // master02 either joined the one cluster or is still waiting: never a second init.
    assert_eq!(
        s.members.iter().filter(|m| m.started()).count(),
        if results["k8s-master02"].is_ok() {
            3
        } else {
            2
        }
    );
}

/// Never two clusters, 4: every master reimaged at once while the workers still run the old cluster's kubelets. No
/// master answers and all three attest, but a new cluster would silently adopt the old workers: the designated
/// master waits, names the workers and says how to go on; only the operator's force-init starts a new cluster.
#[test]
fn all_masters_reimaged_at_once_do_not_adopt_the_workers() {
    let (c, dir, world) = setup();
    let worker = c.workers[0].clone();
    world
        .s
        .lock()
        .unwrap()
        .open
        .insert(SocketAddrV4::new(worker.ip, 10250));
    let handles: Vec<_> = ["k8s-master01", "k8s-master02", "k8s-master03"]
        .into_iter()
        .map(|name| {
            let (world, dir, c) = (world.clone(), dir.path().to_path_buf(), c.clone());
            std::thread::spawn(move || {
                let mut ctx = context(&world, &dir, &c, name);
                let steps = steps_with(Arc::new(world.clone()), short_timing());
                (name, run_steps(&mut ctx, &steps))
            })
        })
        .collect();
    let results: BTreeMap<_, _> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let e = format!("{:#}", results["k8s-master01"].as_ref().unwrap_err());
    assert!(
        e.contains("k8s-node01") && e.contains("run a kubelet") && e.contains("force-init"),
        "{e}"
    );
    for (n, r) in &results {
        assert!(r.is_err(), "{n} must not finish without a control plane");
    }
    assert!(world.s.lock().unwrap().inits.is_empty());
    // The operator decides: a new cluster on purpose.
    let mut ctx = context(&world, dir.path(), &c, "k8s-master01");
    put(&ctx.root.join("etc/kubeha/force-init"), "", 0o600);
    let steps = steps_with(Arc::new(world.clone()), short_timing());
    run_steps(&mut ctx, &steps).unwrap();
    assert_eq!(
        world.s.lock().unwrap().inits,
        vec!["k8s-master01".to_string()]
    );
}

#[test]
fn reimaged_master_without_quorum_changes_nothing() {
    let (c, dir, world) = setup();
    for m in &c.masters {
        world.running_master(m);
    }
    world.stop_master(&c.masters[0]);
    world.stop_master(&c.masters[1]);
    let before = world.s.lock().unwrap().members.clone();
    let r = run_nodes(&world, dir.path(), &c, &[("k8s-master01", 0)]);
    let e = format!("{:#}", r["k8s-master01"].as_ref().unwrap_err());
    assert!(
        e.contains("refusing") && e.contains("Nothing was changed"),
        "{e}"
    );
    let s = world.s.lock().unwrap();
    assert_eq!(s.members, before);
    assert!(
        s.kubeadm.is_empty(),
        "kubeadm must not run: {:?}",
        s.kubeadm
    );
    assert!(s.deleted_nodes.is_empty());
}

#[test]
fn seed_1_11_masters_form_with_kubeadm_phases() {
    let (mut c, dir, _) = setup();
    c.cluster.kubernetes_version = "1.11.1".parse().unwrap();
    c.cluster.container_runtime = kubeha_model::cluster::Runtime::Docker;
    c.install.el = 7;
    let world = World::new(&c, &dir.path().join("record"));
    let r = run_nodes(
        &world,
        dir.path(),
        &c,
        &[
            ("k8s-master01", 0),
            ("k8s-master02", 0),
            ("k8s-master03", 0),
            ("k8s-node01", 0),
        ],
    );
    assert_no_errors(&world, &r);
    let s = world.s.lock().unwrap();
    assert_eq!(s.inits, vec!["k8s-master01".to_string()]);
    assert_eq!(
        s.members.iter().filter(|m| m.started()).count(),
        3,
        "{:?}",
        s.members
    );
    let m2: Vec<&String> = s
        .kubeadm
        .iter()
        .filter(|l| l.starts_with("k8s-master02:"))
        .collect();
    assert_eq!(
        m2.first().map(|l| l.as_str()),
        Some("k8s-master02: kubeadm alpha phase certs all --config /etc/kubeha/kubeadm-join.yaml"),
        "{m2:#?}"
    );
    assert!(m2
        .iter()
        .any(|l| l.ends_with("alpha phase mark-master --config /etc/kubeha/kubeadm-join.yaml")));
    assert!(s
        .kubeadm
        .iter()
        .any(|l| l == "k8s-node01: kubeadm join --config /etc/kubeha/kubeadm-join.yaml"));
}

/// Never two clusters, and never none: the operator re-designated master02 while master01's killed `kubeadm init`
/// still had its control plane up. master02 saw that half-made control plane and decided to join it; then master01
/// was power-cycled and reset it. Joining nothing, the designated master must not wait an hour for an endpoint no
/// one else may create: its rebuild step gives up after `absent_grace`, and the restart decides again and, with
/// master03 attesting, initializes the one cluster.
#[test]
fn designated_master_whose_cluster_vanished_decides_again() {
    let (c, dir, world) = setup();
    let m01 = c.masters[0].clone();
    {
        let mut s = world.s.lock().unwrap();
        // master01's half-made control plane: its apiserver and etcd answer, no kubeadm-config.
        for p in [6443, 2379] {
            s.open.insert(SocketAddrV4::new(m01.ip, p));
        }
        s.attest.insert(
            "k8s-master03".into(),
            (AttestState::Waiting, "k8s-master02".into()),
        );
    }
    let mut ctx = context(&world, dir.path(), &c, "k8s-master02");
    ctx.config.node.bootstrap = Some("k8s-master02".into());
    let steps = steps_with(Arc::new(world.clone()), timing());
    let decide_at = steps
        .iter()
        .position(|s| s.name() == "cluster-decide")
        .unwrap();
    run_steps(&mut ctx, &steps[..=decide_at]).unwrap();
    assert_eq!(
        std::fs::read_to_string(ctx.root.join("var/lib/kubeha/cluster/decision"))
            .unwrap()
            .trim(),
        "join",
        "master02 saw master01's control plane"
    );
    // master01 is power-cycled and resets its half-made control plane: nothing answers any more.
    world.stop_master(&m01);
    let start = Instant::now();
    let e = format!(
        "{:#}",
        run_steps(&mut ctx, &steps[decide_at + 1..]).unwrap_err()
    );
    assert!(
        e.contains("designated master") && e.contains("decides again"),
        "{e}"
    );
    assert!(
        start.elapsed() < timing().absent_grace,
        "gave up as soon as nothing answered, not after absent_grace: {:?}",
        start.elapsed()
    );
    assert!(world.s.lock().unwrap().inits.is_empty());
    // The unit's restart: the decision is made again, with the majority (master02 + master03).
    run_steps(&mut ctx, &steps).unwrap();
    let s = world.s.lock().unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.inits, vec!["k8s-master02".to_string()]);
}
