//! Who initializes, and when the others join.
//!
//! Rules (tested in `tests/cluster_decide.rs`):
//! 1. Exactly one master may run `kubeadm init`: the designated one (`node.bootstrap`, else the first of
//!    `masters[]`). Before it does, it probes VIP:16443 and every other master's 6443 (an HTTPS `/readyz` that
//!    trusts the cluster CA; any HTTP answer counts), 2379, 2380 and 10250 (TCP). If anything answers, a cluster
//!    exists (this master was reimaged, or started last) and it joins instead. If nothing answers, it still
//!    initializes only when a majority of `masters[]` (itself included) attest over [`attest`]'s authenticated
//!    channel that they hold no cluster and wait for *it*; otherwise it waits and probes again (a lone, partitioned
//!    or mis-designated master never forms a second cluster). Nor does it initialize while a worker's kubelet answers
//!    on 10250 ([`orphaned_workers`]): the workers still run a cluster whose masters were all reimaged at once, and a
//!    new cluster would silently adopt them. An operator who knows better creates [`FORCE_INIT`] on that master.
//! 2. Every other master never initializes: it waits, with backoff and a progress line, until an apiserver answers
//!    through VIP:16443, then joins. The wait is bounded ([`Timing::endpoint_wait`]); when it runs out the step fails
//!    with a message naming the designated master, and the agent's next run waits again.
//! 3. Control-plane joins are serialized by master order: master *i* joins only when (a) no etcd member is added but
//!    unstarted (someone else is mid-join), and (b) every master before it in `masters[]` is a started etcd member,
//!    or has had none of its ports open (16443, 6443, 2379, 2380, 10250) for [`Timing::absent_grace`] (it is down
//!    and must not block the rest; a master that is up but still waiting has its load balancer on 16443).
//!    After [`Timing::turn_wait`] it joins anyway, with a warning: kubeadm ≥ 1.15 tolerates concurrent joins, the
//!    order only makes them rare.
//!
//! Everything that touches the network goes through [`ClusterEnv`], so the rules run against a simulated cluster in
//! tests; a dry run never calls it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kubeha_model::backoff::Backoff;
use kubeha_model::cluster::Node;
use kubeha_model::NodeConfig;

use super::attest::{Attestation, State as AttestState};
use super::etcd::{self, Member, Rebuild};
use super::kubeapi::Deleted;

/// The network side of the control-plane logic.
pub trait ClusterEnv: Send + Sync {
    /// Whether a TCP connection to `addr` succeeds.
    fn tcp_open(&self, addr: SocketAddrV4) -> bool;
    /// Whether an apiserver answers `GET /readyz` at `addr` over TLS trusting the cluster CA (any HTTP status).
    fn apiserver_answers(&self, cfg: &NodeConfig, addr: SocketAddrV4) -> bool;
    /// The etcd member list, asked of the other masters' etcd.
    fn etcd_members(&self, cfg: &NodeConfig, me: &Node) -> Result<Vec<Member>>;
    /// Removes this master's stale etcd member, if quorum allows ([`etcd::rebuild`]).
    fn etcd_rebuild(&self, cfg: &NodeConfig, me: &Node) -> Result<Rebuild>;
    /// Adds this master as an etcd member (kubeadm 1.11 only: later kubeadm adds it itself); returns the list.
    fn etcd_add(&self, cfg: &NodeConfig, me: &Node) -> Result<Vec<Member>>;
    /// Asks master `peer` for its attestation ([`attest`]).
    fn attest(&self, cfg: &NodeConfig, peer: &Node) -> Result<Attestation>;
    /// Starts or changes (`Some`) or stops (`None`) this master's attestation listener.
    fn set_attestation(
        &self,
        cfg: &NodeConfig,
        me: &Node,
        state: Option<(AttestState, String)>,
    ) -> Result<()>;
    /// Deletes a Node object through VIP:16443.
    fn delete_node(&self, cfg: &NodeConfig, name: &str) -> Result<Deleted>;
    /// Whether the API object at `path` (e.g. `/api/v1/nodes/NAME`) exists, asked through VIP:16443: `Ok(false)`
    /// only on the apiserver's 404, an error when it cannot say.
    fn api_exists(&self, cfg: &NodeConfig, path: &str) -> Result<bool>;
    /// Sleeps (tests speed time up).
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// How long to wait for what.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long a joining master or worker waits for VIP:16443.
    pub endpoint_wait: Duration,
    /// How long `cluster-verify` waits for the cluster to list a master kubeadm has set up (its Node, its
    /// started etcd member); then the unit fails and its restart checks again.
    pub verify_wait: Duration,
    /// How long a master waits for its turn to join.
    pub turn_wait: Duration,
    /// How long an earlier master must look dead before it stops blocking later ones.
    pub absent_grace: Duration,
    /// First backoff step.
    pub backoff_min: Duration,
    /// Longest backoff step.
    pub backoff_max: Duration,
    /// Network timeout of one probe.
    pub probe_timeout: Duration,
}

impl Timing {
    /// The pauses of the waits: from `backoff_min`, doubling, at most `backoff_max`.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.backoff_min, self.backoff_max)
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            endpoint_wait: Duration::from_secs(60 * 60),
            verify_wait: Duration::from_secs(10 * 60),
            turn_wait: Duration::from_secs(20 * 60),
            absent_grace: Duration::from_secs(3 * 60),
            backoff_min: Duration::from_secs(2),
            backoff_max: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(3),
        }
    }
}

/// The file an operator creates on a master to let it initialize without a majority (e.g. the other masters are
/// gone for good). Read once per decision; the agent never creates it.
pub const FORCE_INIT: &str = "/etc/kubeha/force-init";

/// The master that initializes a new cluster.
pub fn designated(cfg: &NodeConfig) -> Option<&Node> {
    match &cfg.node.bootstrap {
        Some(b) => cfg.cluster.masters.iter().find(|m| &m.name == b),
        None => cfg.cluster.masters.first(),
    }
}

/// What this master does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `kubeadm init`: nothing answered and a majority attested.
    Init,
    /// `kubeadm join`: with what answered (for the log).
    Join(String),
    /// Nothing answered, but no majority attested yet: ask again (why, for the log and status).
    Wait(String),
}

impl Decision {
    /// `init` or `join`, as stored in the decision file.
    pub fn word(&self) -> &'static str {
        match self {
            Decision::Init => "init",
            Decision::Join(_) => "join",
            Decision::Wait(_) => "wait",
        }
    }
}

use kubeha_model::kube::ports::{APISERVER as APISERVER_PORT, ETCD_CLIENT, ETCD_PEER, KUBELET};

/// Everything that answers that means a cluster exists, seen from master `me`.
pub fn probe_cluster(env: &dyn ClusterEnv, cfg: &NodeConfig, me: &str) -> Vec<String> {
    let c = &cfg.cluster;
    let mut found = Vec::new();
    let vip = SocketAddrV4::new(c.endpoint.vip, c.endpoint.port);
    if env.apiserver_answers(cfg, vip) {
        found.push(format!("an apiserver through {vip}"));
    }
    for m in c.masters.iter().filter(|m| m.name != me) {
        if env.apiserver_answers(cfg, SocketAddrV4::new(m.ip, APISERVER_PORT)) {
            found.push(format!(
                "{}'s apiserver ({}:{APISERVER_PORT})",
                m.name, m.ip
            ));
        }
        for (port, what) in [
            (ETCD_CLIENT, "etcd client"),
            (ETCD_PEER, "etcd peer"),
            (KUBELET, "kubelet"),
        ] {
            if env.tcp_open(SocketAddrV4::new(m.ip, port)) {
                found.push(format!("{}'s {what} port ({}:{port})", m.name, m.ip));
            }
        }
    }
    found
}

/// The workers whose kubelet answers on 10250. A worker's kubelet serves only once `kubeadm join` has given it a
/// configuration, so at first formation none answers; when one does while no master answers, the cluster it joined
/// lost its whole control plane (every master reimaged at once), and a new `kubeadm init` would adopt it.
pub fn orphaned_workers(env: &dyn ClusterEnv, cfg: &NodeConfig) -> Vec<String> {
    cfg.cluster
        .workers
        .iter()
        .filter(|w| env.tcp_open(SocketAddrV4::new(w.ip, KUBELET)))
        .map(|w| format!("{} ({}:{KUBELET})", w.name, w.ip))
        .collect()
}

/// How many masters make a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Asks every other master for its attestation; `Ok` when a majority (counting `me`) waits for `me`, else the
/// answers for the log.
pub fn majority_attests(
    env: &dyn ClusterEnv,
    cfg: &NodeConfig,
    me: &str,
) -> std::result::Result<Vec<String>, String> {
    let masters = &cfg.cluster.masters;
    let need = majority(masters.len());
    let mut yes = vec![me.to_string()];
    let mut other = Vec::new();
    for m in masters.iter().filter(|m| m.name != me) {
        match env.attest(cfg, m) {
            Ok(a) if a.state == AttestState::Waiting && a.designated == me => {
                yes.push(m.name.clone())
            }
            Ok(a) if a.state == AttestState::Waiting => {
                other.push(format!("{} waits for {}", m.name, a.designated))
            }
            Ok(_) => other.push(format!(
                "{} is busy (running kubeadm or has a control plane)",
                m.name
            )),
            Err(e) => other.push(format!("{}: no attestation ({e:#})", m.name)),
        }
    }
    if yes.len() >= need {
        Ok(yes)
    } else {
        Err(format!(
            "{} of {} masters attest (need {need}: {}); {}",
            yes.len(),
            masters.len(),
            yes.join(", "),
            other.join("; ")
        ))
    }
}

/// The designated master's choice: join if anything answers; init only if a majority attests (or `force`).
pub fn decide(env: &dyn ClusterEnv, cfg: &NodeConfig, me: &str, force: bool) -> Decision {
    let is_designated = designated(cfg).is_some_and(|d| d.name == me);
    if !is_designated {
        return Decision::Join(format!(
            "{me} is not the designated master ({})",
            designated(cfg).map(|d| d.name.as_str()).unwrap_or("none")
        ));
    }
    let found = probe_cluster(env, cfg, me);
    if !found.is_empty() {
        return Decision::Join(format!("a cluster exists: {}", found.join(", ")));
    }
    let orphans = orphaned_workers(env, cfg);
    if !orphans.is_empty() && !force {
        return Decision::Wait(format!(
            "no master answers, but {} run a kubelet: they belong to a cluster whose control plane is gone (were \
             all masters reimaged at once?). A new cluster would adopt them silently and lose everything the old \
             one held. Restore the old control plane (an etcd snapshot), or reimage those workers too; to start a \
             new cluster anyway, create {FORCE_INIT} on this master",
            orphans.join(", ")
        ));
    }
    if force {
        log::warn!("{FORCE_INIT} exists: initializing without asking the other masters");
        return Decision::Init;
    }
    match majority_attests(env, cfg, me) {
        Ok(yes) => {
            log::info!("a majority attests that no cluster exists: {}", yes.join(", "));
            Decision::Init
        }
        Err(why) => Decision::Wait(format!(
            "nothing answers, but no majority attests: {why}. A master that cannot reach a majority never \
             initializes; if the others are gone for good, create {FORCE_INIT} on this master"
        )),
    }
}

/// `kubeadm join`'s discovery reads it (kube-public/cluster-info, uploaded by `kubeadm init`'s bootstrap-token
/// phase): an apiserver without it is a `kubeadm init` that has not finished (or was killed), nothing to join yet.
pub const CLUSTER_INFO: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// Whether the cluster behind the endpoint can be joined: anything but the API's plain "there is no cluster-info"
/// counts (a node that cannot ask, a worker without the CA key, leaves it to kubeadm's discovery).
fn joinable(env: &dyn ClusterEnv, cfg: &NodeConfig) -> bool {
    !matches!(env.api_exists(cfg, CLUSTER_INFO), Ok(false))
}

/// Waits until an apiserver answers through the VIP with a cluster to join ([`CLUSTER_INFO`]; kubeadm's discovery
/// would otherwise spend its 5 minutes on a half-made init); fails after [`Timing::endpoint_wait`], or, for the
/// designated master `me`, as soon as nothing of a cluster answers any more (neither the VIP nor any master's
/// apiserver, etcd or kubelet, [`probe_cluster`]) and at the latest after [`Timing::absent_grace`] (it decides
/// again).
pub fn wait_for_endpoint(
    env: &dyn ClusterEnv,
    cfg: &NodeConfig,
    t: &Timing,
    me: &str,
) -> Result<()> {
    let c = &cfg.cluster;
    let vip = SocketAddrV4::new(c.endpoint.vip, c.endpoint.port);
    let start = Instant::now();
    let mut delays = t.backoff().delays();
    let mut last_report = None::<Instant>;
    let designated_me = designated(cfg).is_some_and(|d| d.name == me);
    let mut said_half_made = false;
    loop {
        let answers = env.apiserver_answers(cfg, vip);
        if answers && joinable(env, cfg) {
            log::info!(
                "control plane endpoint {vip} answers (after {:.0?})",
                start.elapsed()
            );
            return Ok(());
        }
        if answers && !said_half_made {
            log::info!(
                "control plane endpoint {vip} answers, but the cluster has no kube-public/cluster-info (a kubeadm \
                 init that has not finished): waiting"
            );
            said_half_made = true;
        }
        if designated_me && !answers && probe_cluster(env, cfg, me).is_empty() {
            // What answered when this master decided to join is gone (e.g. another master reset the half-made
            // control plane of a killed `kubeadm init`): decide again now, not after absent_grace.
            bail!(
                "{me} is the designated master and decided to join because a cluster answered, but nothing of a \
                 cluster answers any more (neither through {vip} nor on any master): what answered is gone. The \
                 next run decides again"
            );
        }
        if designated_me && start.elapsed() >= t.absent_grace.min(t.endpoint_wait) {
            // The designated master joins only because something answered when it decided (a probe of the
            // masters, e.g. the half-made control plane of a killed `kubeadm init` on another master). When that
            // is gone and nothing answers through the VIP, no one else may initialize: waiting an hour here would
            // leave the cluster unformed. The step fails; the restart decides again (with the majority).
            bail!(
                "{} is the designated master and decided to join because a cluster answered, but nothing has \
                 answered through {vip} for {:?}: what answered is gone. The next run decides again",
                me,
                t.absent_grace.min(t.endpoint_wait)
            );
        }
        if start.elapsed() >= t.endpoint_wait {
            bail!(
                "no apiserver answered through {vip} within {:?}. The designated master {} initializes the \
                 cluster: check that it is up (or name another with kubeha.bootstrap=), then run \
                 kubeha-firstboot again",
                t.endpoint_wait,
                designated(cfg).map(|d| d.name.as_str()).unwrap_or("?")
            );
        }
        if last_report.is_none_or(|r| r.elapsed() >= Duration::from_secs(30)) {
            log::info!(
                "waiting for the control plane endpoint {vip} ({:.0?} so far)",
                start.elapsed()
            );
            last_report = Some(Instant::now());
        }
        env.sleep(delays.pause());
    }
}

/// Whether a master is alive: its load balancer (up from its first boot on), apiserver, etcd or kubelet answers.
fn alive(env: &dyn ClusterEnv, cfg: &NodeConfig, ip: Ipv4Addr) -> bool {
    [
        cfg.cluster.endpoint.port,
        APISERVER_PORT,
        ETCD_CLIENT,
        ETCD_PEER,
        KUBELET,
    ]
    .iter()
    .any(|p| env.tcp_open(SocketAddrV4::new(ip, *p)))
}

/// Why master `index` may not join yet (None: its turn).
fn blocker(
    env: &dyn ClusterEnv,
    cfg: &NodeConfig,
    index: usize,
    members: &[Member],
    dead_since: &mut BTreeMap<usize, Instant>,
    t: &Timing,
) -> Option<String> {
    let masters = &cfg.cluster.masters;
    let me = &masters[index];
    let my_peer = etcd::peer_url(me.ip);
    if let Some(m) = members
        .iter()
        .find(|m| !m.started() && !m.peer_urls.iter().any(|u| u == &my_peer))
    {
        return Some(format!(
            "etcd member {} is added but not started (a join is in progress)",
            m.peer_urls.join(",")
        ));
    }
    for (j, p) in masters.iter().enumerate().take(index) {
        let member = members.iter().any(|m| m.started() && m.name == p.name);
        if member {
            dead_since.remove(&j);
            continue;
        }
        if alive(env, cfg, p.ip) {
            dead_since.remove(&j);
            return Some(format!(
                "{} (earlier in masters[]) is up but not yet an etcd member",
                p.name
            ));
        }
        let since = *dead_since.entry(j).or_insert_with(Instant::now);
        if since.elapsed() < t.absent_grace {
            return Some(format!(
                "{} (earlier in masters[]) has not joined; giving it {:?}",
                p.name, t.absent_grace
            ));
        }
    }
    None
}

/// Waits for this master's turn to join the control plane (rule 3).
pub fn wait_turn(env: &dyn ClusterEnv, cfg: &NodeConfig, me: &str, t: &Timing) -> Result<()> {
    let Some(index) = cfg.cluster.masters.iter().position(|m| m.name == me) else {
        bail!("{me} is not one of cluster.masters");
    };
    let node = &cfg.cluster.masters[index];
    let start = Instant::now();
    let mut delays = t.backoff().delays();
    let mut dead_since = BTreeMap::new();
    loop {
        let why = match env.etcd_members(cfg, node) {
            Ok(ms) => blocker(env, cfg, index, &ms, &mut dead_since, t),
            Err(e) => Some(format!("no etcd member list yet: {e:#}")),
        };
        let Some(why) = why else {
            return Ok(());
        };
        if start.elapsed() >= t.turn_wait {
            log::warn!("joining after waiting {:?} for my turn: {why}", t.turn_wait);
            return Ok(());
        }
        log::info!("waiting to join: {why}");
        env.sleep(delays.pause());
    }
}
