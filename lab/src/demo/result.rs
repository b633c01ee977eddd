//! A demo run's `STATE/result.json` (written by the node stages, [`super::write`]) and its verdict: what `make demo`
//! must show, as assertions (`kubeha-lab check-result`, run by `make test-demo`). Every problem is named with the
//! values it saw: absent values as `-`, lists as `a, b` (`none` when empty), maps as `name=value, ...` and records
//! (a drill's part of result.json) as `key=value, ...`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// result.json: the parts the checks and the summary read. A missing part reads as absent (`None`, empty).
#[derive(Clone, Debug, Deserialize)]
pub struct DemoResult {
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub vip_before: Option<String>,
    #[serde(default)]
    pub vip_after: Option<String>,
    #[serde(default)]
    pub failover_seconds: Option<f64>,
    #[serde(default)]
    pub kubernetes: Kubernetes,
    #[serde(default)]
    pub formation_seconds: Option<f64>,
    #[serde(default)]
    pub kubeadm_inits: Option<f64>,
    #[serde(default)]
    pub image_pulls: Option<f64>,
    /// `etcdctl member list` after the rebuild, through the VIP.
    #[serde(default)]
    pub etcd_members: Option<Vec<EtcdMember>>,
    #[serde(default)]
    pub rebuild: Option<Rebuild>,
    /// The Nodes `kubectl get nodes` listed through the VIP.
    #[serde(default)]
    pub registered_nodes: Option<Vec<String>>,
    /// Node name to its Ready condition.
    #[serde(default)]
    pub node_status: BTreeMap<String, String>,
    #[serde(default)]
    pub serve: Option<Serve>,
    #[serde(default)]
    pub hostile: Option<Hostile>,
}

/// A lab node as the lab saw it: its agent's last status.
#[derive(Clone, Debug, Deserialize)]
pub struct Node {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub decision: Option<String>,
    /// From its agent's start to done.
    #[serde(default)]
    pub seconds: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Kubernetes {
    /// The API server's version through the VIP.
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub kubeadm: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EtcdMember {
    pub name: String,
    pub id: String,
}

impl fmt::Display for EtcdMember {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.id)
    }
}

/// The rebuild drill: the designated master reimaged and rejoined.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Rebuild {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub ok: Option<bool>,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub decision: Option<String>,
}

impl fmt::Display for Rebuild {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        Fields::default()
            .text("node", &self.node)
            .value("ok", &self.ok)
            .value("seconds", &self.seconds)
            .text("decision", &self.decision)
            .fmt(f)
    }
}

/// `kubeha serve`: its URL and the fleet as it saw it (`kubeha status --json`) after the drills and after formation.
#[derive(Clone, Debug, Deserialize)]
pub struct Serve {
    #[serde(default)]
    pub url: Option<String>,
    /// `None` when absent, null or empty (`{}`): no fleet to check.
    #[serde(default, deserialize_with = "non_empty")]
    pub fleet: Option<Fleet>,
    #[serde(default)]
    pub fleet_formed: Option<Fleet>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Fleet {
    /// One row per machine cluster.toml has, in the server's order.
    #[serde(default)]
    pub nodes: Option<Vec<Row>>,
    #[serde(default)]
    pub timeline: Option<Vec<Event>>,
    #[serde(default)]
    pub vip_holder: Option<String>,
    #[serde(default)]
    pub etcd_members: Option<EtcdReport>,
    /// Machines that asked and are not in cluster.toml (open shape: printed as JSON).
    #[serde(default)]
    pub unknown: Option<Value>,
}

/// A part of the document that is only there when it is a non-empty value: absent, `null`, `false`, `0`, `""`, `[]`
/// and `{}` all read as `None`.
fn non_empty<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    let v = Value::deserialize(d)?;
    if !is_set(&v) {
        return Ok(None);
    }
    T::deserialize(v)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Whether a JSON value holds something: not `null`, `false`, `0`, `""`, `[]` or `{}`.
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A node's row in the server's view.
#[derive(Clone, Debug, Deserialize)]
pub struct Row {
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub decision: Option<String>,
    #[serde(default)]
    pub installed: Option<bool>,
    /// The last error the node reported (kept after it recovered).
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub node: Option<String>,
    pub what: String,
}

/// The etcd members a master last reported.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct EtcdReport {
    #[serde(default)]
    pub members: Option<Vec<String>>,
    #[serde(default)]
    pub reported_by: Option<String>,
    /// When the server received the report.
    #[serde(default)]
    pub at: Option<String>,
}

impl fmt::Display for EtcdReport {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} (reported by {} at {})",
            list(self.members.as_deref().unwrap_or_default()),
            opt(&self.reported_by),
            opt(&self.at)
        )
    }
}

/// The node stages' hostile drills.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Hostile {
    #[serde(default)]
    pub kubeadm_killed_in_init: Option<KilledInInit>,
    #[serde(default)]
    pub two_bootstraps: Option<TwoBootstraps>,
    #[serde(default)]
    pub partitioned_rebuild: Option<Waited>,
    #[serde(default)]
    pub kubeadm_killed_in_join: Option<KilledInJoin>,
    #[serde(default)]
    pub all_masters_reimaged: Option<Waited>,
}

/// kubeadm killed inside the init, the re-designation, and the kubeadm runs killed after it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct KilledInInit {
    /// The master whose init was killed.
    #[serde(default)]
    pub node: Option<String>,
    /// `kubeadm init` runs per node when the first one was killed.
    #[serde(default)]
    pub init_runs_at_kill: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    pub stored_decision: Option<String>,
    #[serde(default)]
    pub init_runs: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    pub init_killed_before_etcd: Option<KilledAt>,
    #[serde(default)]
    pub worker_join_killed: Option<KilledAt>,
    /// Agent restarts per node (the `Restart=on-failure` stand-in).
    #[serde(default)]
    pub restarts: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    pub decisions: Option<BTreeMap<String, Option<String>>>,
}

/// Its parts as `key: value` joined with `; ` (its counts are maps, its kills records).
impl fmt::Display for KilledInInit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let counts = |m: &Option<BTreeMap<String, f64>>| m.as_ref().map(map);
        let decisions = self.decisions.as_ref().map(|d| {
            let d: BTreeMap<&str, String> = d.iter().map(|(k, v)| (k.as_str(), opt(v))).collect();
            map(&d)
        });
        let parts = [
            ("node", self.node.clone()),
            ("init_runs_at_kill", counts(&self.init_runs_at_kill)),
            ("stored_decision", self.stored_decision.clone()),
            ("init_runs", counts(&self.init_runs)),
            (
                "init_killed_before_etcd",
                self.init_killed_before_etcd
                    .as_ref()
                    .map(ToString::to_string),
            ),
            (
                "worker_join_killed",
                self.worker_join_killed.as_ref().map(ToString::to_string),
            ),
            ("restarts", counts(&self.restarts)),
            ("decisions", decisions),
        ];
        let parts: Vec<String> = parts
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
            .collect();
        f.write_str(&or_none(parts.join("; ")))
    }
}

/// Where a kubeadm run was when it was killed.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct KilledAt {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub verb: Option<String>,
    #[serde(default)]
    pub etcd_manifest: Option<bool>,
    #[serde(default)]
    pub etcd_answered: Option<bool>,
    #[serde(default)]
    pub bootstrap_kubelet_conf: Option<bool>,
    #[serde(default)]
    pub kubelet_conf: Option<bool>,
}

impl fmt::Display for KilledAt {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        Fields::default()
            .text("node", &self.node)
            .text("verb", &self.verb)
            .value("etcd_manifest", &self.etcd_manifest)
            .value("etcd_answered", &self.etcd_answered)
            .value("bootstrap_kubelet_conf", &self.bootstrap_kubelet_conf)
            .value("kubelet_conf", &self.kubelet_conf)
            .fmt(f)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct TwoBootstraps {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub believed_designated: Option<bool>,
    #[serde(default)]
    pub decision: Option<String>,
}

impl fmt::Display for TwoBootstraps {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        Fields::default()
            .text("node", &self.node)
            .value("believed_designated", &self.believed_designated)
            .text("decision", &self.decision)
            .fmt(f)
    }
}

/// A drill where a node must wait and initialize nothing (the partitioned rebuild, all masters reimaged).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Waited {
    #[serde(default)]
    pub node: Option<String>,
    /// Its status.json `waiting`.
    #[serde(default)]
    pub waiting: Option<String>,
    #[serde(default)]
    pub still_waiting: Option<bool>,
    #[serde(default)]
    pub inits: Option<f64>,
    #[serde(default)]
    pub apiserver_manifest: Option<bool>,
}

impl fmt::Display for Waited {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        Fields::default()
            .text("node", &self.node)
            .text("waiting", &self.waiting)
            .value("still_waiting", &self.still_waiting)
            .value("inits", &self.inits)
            .value("apiserver_manifest", &self.apiserver_manifest)
            .fmt(f)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct KilledInJoin {
    /// The master whose join was killed.
    #[serde(default)]
    pub node: Option<String>,
    /// The member's state in etcd when its kubeadm join was killed (a learner, or added and not started).
    #[serde(default)]
    pub member_when_killed: Option<String>,
    #[serde(default)]
    pub restarts: Option<f64>,
}

impl fmt::Display for KilledInJoin {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        Fields::default()
            .text("node", &self.node)
            .text("member_when_killed", &self.member_when_killed)
            .value("restarts", &self.restarts)
            .fmt(f)
    }
}

/// A record as its messages print it: `key=value` joined with `, `, absent fields left out (`none` when all are).
/// A text is quoted (`"..."`, escaped as Rust's `{:?}` does) when it is empty or has a space, `,`, `=` or `"`.
#[derive(Default)]
struct Fields(Vec<String>);

impl Fields {
    fn text(mut self, key: &str, v: &Option<String>) -> Self {
        if let Some(v) = v {
            if v.is_empty()
                || v.contains(|c: char| c.is_whitespace() || matches!(c, ',' | '=' | '"'))
            {
                self.0.push(format!("{key}={v:?}"));
            } else {
                self.0.push(format!("{key}={v}"));
            }
        }
        self
    }

    fn value<T: fmt::Display>(mut self, key: &str, v: &Option<T>) -> Self {
        if let Some(v) = v {
            self.0.push(format!("{key}={v}"));
        }
        self
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&or_none(self.0.join(", ")))
    }
}

/// A value, or `-` when it is absent.
pub(crate) fn opt<T: fmt::Display>(x: &Option<T>) -> String {
    x.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// A part of result.json printed whole, or `none` when it is absent.
fn whole<T: fmt::Display>(x: Option<&T>) -> String {
    x.map_or_else(|| "none".to_string(), ToString::to_string)
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "none".to_string()
    } else {
        s
    }
}

/// Items joined with `, ` (`none` when there are none).
pub(crate) fn list<T: fmt::Display>(xs: &[T]) -> String {
    let items: Vec<String> = xs.iter().map(ToString::to_string).collect();
    or_none(items.join(", "))
}

/// A map as `name=value` joined with `, ` (`none` when empty).
fn map<K: fmt::Display, V: fmt::Display>(m: &BTreeMap<K, V>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    or_none(items.join(", "))
}

impl DemoResult {
    pub fn parse(text: &str) -> Result<DemoResult, serde_json::Error> {
        serde_json::from_str(text)
    }

    fn names(&self, role: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.role == role)
            .map(|n| n.name.clone())
            .collect()
    }
}

/// A count equal to `n` (a JSON `1.0` is 1).
fn num_is(x: Option<&f64>, n: f64) -> bool {
    x == Some(&n)
}

/// A count that is there and not zero.
fn nonzero(x: Option<&f64>) -> bool {
    x.is_some_and(|f| *f != 0.0)
}

/// A map of counts equal to `want` (same keys, equal numbers).
fn counts_are(d: Option<&BTreeMap<String, f64>>, want: &[(&str, f64)]) -> bool {
    d.is_some_and(|d| d.len() == want.len() && want.iter().all(|(k, n)| num_is(d.get(*k), *n)))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The checks of `make test-demo`: `Ok` with the lines to print, or `Err` with every problem found. `hostile`:
/// the run had the hostile drills (three `kubeadm init` runs in the logs instead of one, and their own
/// checks).
pub fn check(r: &DemoResult, hostile: bool) -> Result<Vec<String>, Vec<String>> {
    let nodes = &r.nodes;
    let mut problems = Vec::new();
    let roles: Vec<String> = nodes.iter().map(|n| n.role.clone()).collect();
    if sorted(roles.clone()) != ["master", "master", "master", "worker", "worker"] {
        problems.push(format!(
            "expected 3 masters and 2 workers, got {}",
            list(&roles)
        ));
    }
    for n in nodes {
        if n.phase.as_deref() != Some("done") {
            problems.push(format!("{} ended in phase {}", n.name, opt(&n.phase)));
        }
    }
    let inits: Vec<String> = nodes
        .iter()
        .filter(|n| n.decision.as_deref() == Some("init"))
        .map(|n| n.name.clone())
        .collect();
    if inits.len() != 1 {
        problems.push(format!(
            "exactly one kubeadm init expected, got {}",
            list(&inits)
        ));
    }
    if r.vip_before.as_deref().unwrap_or("").is_empty() || r.vip_before == r.vip_after {
        problems.push(format!(
            "the VIP did not move: {} -> {}",
            opt(&r.vip_before),
            opt(&r.vip_after)
        ));
    }
    let failover = r.failover_seconds.unwrap_or(0.0);
    if !(0.0 < failover && failover < 30.0) {
        problems.push(format!(
            "failover time {}",
            r.failover_seconds
                .map_or_else(|| "-".to_string(), |s| format!("{s} s"))
        ));
    }
    let rb = r.rebuild.clone().unwrap_or_default();
    if rb.ok != Some(true) || rb.decision.as_deref() != Some("join") {
        problems.push(format!("rebuild drill: {}", whole(r.rebuild.as_ref())));
    }
    if r.etcd_members.as_ref().map_or(0, Vec::len) != 3 {
        problems.push(format!(
            "etcd members after the rebuild: {}",
            r.etcd_members
                .as_deref()
                .map_or_else(|| "-".to_string(), list)
        ));
    }
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    if sorted(r.registered_nodes.clone().unwrap_or_default()) != sorted(names) {
        problems.push(format!(
            "registered nodes {}",
            r.registered_nodes
                .as_deref()
                .map_or_else(|| "-".to_string(), list)
        ));
    }
    let not_ready: Vec<&str> = r
        .node_status
        .iter()
        .filter(|(_, v)| *v != "Ready")
        .map(|(k, _)| k.as_str())
        .collect();
    if !not_ready.is_empty() {
        problems.push(format!(
            "Nodes not Ready (kubectl get nodes through the VIP): {}",
            list(&not_ready)
        ));
    }
    if !num_is(r.kubeadm_inits.as_ref(), 1.0) && !hostile {
        problems.push(format!(
            "kubeadm init ran {} times in the cluster (agents' logs), want 1",
            opt(&r.kubeadm_inits)
        ));
    }
    if !num_is(r.image_pulls.as_ref(), 0.0) {
        problems.push(format!(
            "the nodes' containerd pulled {} images; everything must come from the bundle",
            opt(&r.image_pulls)
        ));
    }
    let k = &r.kubernetes;
    if k.server.as_deref().unwrap_or("").is_empty() || k.server != k.kubeadm {
        problems.push(format!(
            "the API server through the VIP reports {}, kubeadm is {}",
            opt(&k.server),
            opt(&k.kubeadm)
        ));
    }

    // The fleet as kubeha serve saw it: every lab node was network-installed from it (its installer reported
    // `installed`), its agent reported every phase up to done, and the masters' reports say who holds the VIP and
    // which etcd members there are.
    let serve = r.serve.as_ref();
    let fleet = serve.and_then(|s| s.fleet.as_ref());
    let masters = r.names("master");
    let workers = r.names("worker");
    // Installs reported per node (`installed ok` events; an event without a node counts under `None`).
    let mut installs: BTreeMap<Option<&str>, u64> = BTreeMap::new();
    match fleet {
        None => problems.push(
            "no fleet from kubeha serve in result.json: the demo must install through kubeha serve"
                .into(),
        ),
        Some(f) => {
            for e in f.timeline.iter().flatten() {
                if e.what == "installed ok" {
                    *installs.entry(e.node.as_deref()).or_default() += 1;
                }
            }
            for n in nodes {
                let Some(row) = f.nodes.iter().flatten().find(|row| row.name == n.name) else {
                    problems.push(format!("kubeha serve has no row for {}", n.name));
                    continue;
                };
                // (Its "last error" column keeps what a failed run said, e.g. a killed kubeadm's, after the node
                // recovered.)
                if (row.phase.as_deref(), row.state.as_deref(), row.installed)
                    != (Some("done"), Some("ok"), Some(true))
                {
                    problems.push(format!(
                        "kubeha serve's row for {}: phase {}/{}, installed {}, last error {}: want done/ok, installed",
                        n.name,
                        opt(&row.phase),
                        opt(&row.state),
                        opt(&row.installed),
                        opt(&row.error)
                    ));
                }
                let want = if Some(&n.name) == rb.node.as_ref() {
                    2
                } else {
                    1
                };
                // (A node with no event has no entry: 0, never `want`.)
                let got = installs.get(&Some(n.name.as_str())).copied().unwrap_or(0);
                if got != want {
                    problems.push(format!(
                        "{}: {got} installs reported to kubeha serve, want {want}",
                        n.name
                    ));
                }
                if n.role == "master" {
                    let want_dec = if Some(&n.name) == rb.node.as_ref() {
                        &rb.decision
                    } else {
                        &n.decision
                    };
                    if row.decision != *want_dec {
                        problems.push(format!(
                            "kubeha serve says {} decided {}, the node {}",
                            n.name,
                            opt(&row.decision),
                            opt(want_dec)
                        ));
                    }
                }
            }
            let formed = serve
                .and_then(|s| s.fleet_formed.as_ref())
                .and_then(|f| f.vip_holder.clone());
            if formed != r.vip_before {
                problems.push(format!(
                    "kubeha serve's VIP holder after formation: {}, the VIP was on {}",
                    opt(&formed),
                    opt(&r.vip_before)
                ));
            }
            let members = f
                .etcd_members
                .as_ref()
                .and_then(|e| e.members.clone())
                .unwrap_or_default();
            let masters_sorted = sorted(masters.clone());
            if sorted(members) != masters_sorted {
                problems.push(format!(
                    "kubeha serve's etcd members: {}, want {}",
                    whole(f.etcd_members.as_ref()),
                    list(&masters_sorted)
                ));
            }
            if let Some(unknown) = f.unknown.as_ref().filter(|u| is_set(u)) {
                problems.push(format!("kubeha serve saw unknown machines: {unknown}"));
            }
        }
    }
    let h = r.hostile.clone().unwrap_or_default();
    if hostile {
        if masters.len() < 3 || workers.is_empty() {
            // (the role check above names what is missing; the hostile checks name masters and a worker by place)
            problems.push(format!(
                "the hostile checks need 3 masters and a worker, got {}",
                list(&roles)
            ));
        } else {
            hostile_checks(r, &h, &masters, &workers, &inits, &mut problems);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let s = serve.expect("a fleet was checked");
    let f = fleet.expect("a fleet was checked");
    let mut lines = vec![
        format!(
            "test-demo: real Kubernetes {}: 5 nodes Ready through the VIP, one cluster ({} initialized it), 0 pulls, \
             VIP {} -> {} in {} s, rebuild of {} ok (ConfigMap kept), 3 etcd members",
            opt(&k.server),
            inits[0],
            opt(&r.vip_before),
            opt(&r.vip_after),
            opt(&r.failover_seconds),
            opt(&rb.node)
        ),
        format!(
            "test-demo: kubeha serve at {} installed every node ({} installs reported), every agent reported done to \
             it; its view: VIP holder {}, etcd members {}",
            opt(&s.url),
            installs.values().sum::<u64>(),
            opt(&s.fleet_formed.as_ref().and_then(|f| f.vip_holder.clone())),
            list(
                f.etcd_members
                    .as_ref()
                    .and_then(|e| e.members.as_deref())
                    .unwrap_or_default()
            )
        ),
    ];
    if hostile {
        let ik = h.kubeadm_killed_in_init.as_ref();
        let p = h.partitioned_rebuild.as_ref();
        let kk = h.kubeadm_killed_in_join.as_ref();
        let a = h.all_masters_reimaged.as_ref();
        lines.push(format!(
            "test-demo: hostile: kubeadm init killed on {m0} with the apiserver up; {m1} re-designated: it alone \
             initialized (its first init killed before etcd answered), {m0} (stored decision init) joined; {w0}'s \
             kubeadm join killed in its TLS bootstrap, joined after a restart (restarts {})",
            ik.and_then(|ik| ik.restarts.as_ref())
                .map_or_else(|| "-".to_string(), map),
            m0 = masters[0],
            m1 = masters[1],
            w0 = workers[0],
        ));
        lines.push(format!(
            "test-demo: hostile: second bootstrap did not initialize at formation; partitioned {} waited (\"{}...\"); \
             kubeadm join killed with the member {}, recovered after {} restart(s); all masters reimaged: no init, \
             waits (\"{}...\")",
            opt(&p.and_then(|p| p.node.clone())),
            head(p.and_then(|p| p.waiting.as_deref()).unwrap_or(""), 80),
            opt(&kk.and_then(|k| k.member_when_killed.clone())),
            opt(&kk.and_then(|k| k.restarts)),
            head(a.and_then(|a| a.waiting.as_deref()).unwrap_or(""), 80),
        ));
    }
    Ok(lines)
}

/// The first `n` characters of `s`.
fn head(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn hostile_checks(
    r: &DemoResult,
    h: &Hostile,
    masters: &[String],
    workers: &[String],
    inits: &[String],
    problems: &mut Vec<String>,
) {
    let rb = r.rebuild.clone().unwrap_or_default();
    let (m0, m1, m2, w0) = (&masters[0], &masters[1], &masters[2], &workers[0]);
    let ik = h.kubeadm_killed_in_init.clone().unwrap_or_default();
    // Before the kill only the designated master ran init (once: killed); after the operator re-designated the
    // second master, it alone initialized, and the first (stored decision "init", kubeadm's leftovers) joined.
    // The second master's first init was killed too (before its etcd answered), so it ran init twice; a worker's
    // join was killed in its TLS bootstrap and the worker still ended Ready (checked above), after a restart.
    let before_etcd = ik.init_killed_before_etcd.clone().unwrap_or_default();
    let worker_join = ik.worker_join_killed.clone().unwrap_or_default();
    let decisions_ok = ik.decisions.as_ref().is_some_and(|d| {
        let want = [(m0, "join"), (m1, "init"), (m2, "join")];
        d.len() == want.len()
            && want
                .iter()
                .all(|(k, v)| d.get(*k).is_some_and(|got| got.as_deref() == Some(*v)))
    });
    if !counts_are(ik.init_runs_at_kill.as_ref(), &[(m0, 1.0)])
        || ik.stored_decision.as_deref() != Some("init")
        || !counts_are(ik.init_runs.as_ref(), &[(m0, 1.0), (m1, 2.0)])
        || !num_is(r.kubeadm_inits.as_ref(), 3.0)
        || (
            before_etcd.node.as_ref(),
            before_etcd.verb.as_deref(),
            before_etcd.etcd_manifest,
            before_etcd.etcd_answered,
        ) != (Some(m1), Some("init"), Some(true), Some(false))
        || (
            worker_join.node.as_ref(),
            worker_join.verb.as_deref(),
            worker_join.bootstrap_kubelet_conf,
        ) != (Some(w0), Some("join"), Some(true))
        || !nonzero(ik.restarts.as_ref().and_then(|d| d.get(w0)))
        || !decisions_ok
    {
        problems.push(format!(
            "kubeadm init killed on {m0}, then {m1} re-designated: want one init by {m0} before the kill, two by \
             {m1} after (the first killed before etcd), {m0} joined, {w0} restarted after its killed join: {}; {} \
             inits in the logs",
            whole(h.kubeadm_killed_in_init.as_ref()),
            opt(&r.kubeadm_inits)
        ));
    }
    let two = h.two_bootstraps.as_ref();
    let believed = two.and_then(|t| t.believed_designated) == Some(true);
    let m1_at_kill = ik
        .init_runs_at_kill
        .as_ref()
        .is_some_and(|d| d.contains_key(m1));
    if !believed || inits != &masters[1..2] || m1_at_kill {
        problems.push(format!(
            "two bootstraps: {}; inits {}; inits at the kill {}: {m1} believed it initializes but must not have \
             initialized before the re-designation",
            whole(two),
            list(inits),
            ik.init_runs_at_kill
                .as_ref()
                .map_or_else(|| "-".to_string(), map)
        ));
    }
    let p = h.partitioned_rebuild.clone().unwrap_or_default();
    if !p
        .waiting
        .as_deref()
        .unwrap_or("")
        .contains("no majority attests")
        || p.still_waiting != Some(true)
        || nonzero(p.inits.as_ref())
        || p.apiserver_manifest == Some(true)
    {
        problems.push(format!(
            "partitioned rebuild must wait and start nothing: {}",
            whole(h.partitioned_rebuild.as_ref())
        ));
    }
    let kk = h.kubeadm_killed_in_join.as_ref();
    let member = kk.and_then(|k| k.member_when_killed.as_deref());
    if member.unwrap_or("").is_empty() || rb.ok != Some(true) {
        problems.push(format!(
            "kubeadm killed in the join, then recovered: {}; rebuild {}",
            whole(kk),
            whole(r.rebuild.as_ref())
        ));
    }
    let a = h.all_masters_reimaged.clone().unwrap_or_default();
    if !a.waiting.as_deref().unwrap_or("").contains("run a kubelet")
        || a.still_waiting != Some(true)
        || nonzero(a.inits.as_ref())
    {
        problems.push(format!(
            "all masters reimaged at once must wait and not init: {}",
            whole(h.all_masters_reimaged.as_ref())
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// result.json of a passing `make test-demo` run (hostile drills on, five nodes installed through serve).
    pub(crate) const FIXTURE: &str = include_str!("testdata/result.json");

    fn problems(hostile: bool, mutate: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
        mutate(&mut v);
        let r = DemoResult::parse(&v.to_string()).unwrap();
        check(&r, hostile).expect_err("the mutated result must fail")
    }

    /// A mutated part as the message prints it.
    fn shown<T: serde::de::DeserializeOwned + fmt::Display>(v: &Value) -> String {
        serde_json::from_value::<T>(v.clone()).unwrap().to_string()
    }

    const REBUILD: &str = "node=k8s-master01, ok=true, seconds=17.9, decision=join";

    #[test]
    fn the_fixture_passes_with_its_hostile_drills() {
        let r = DemoResult::parse(FIXTURE).unwrap();
        let lines = check(&r, true).unwrap();
        assert_eq!(
            lines,
            [
                "test-demo: real Kubernetes v1.36.3: 5 nodes Ready through the VIP, one cluster (k8s-master02 initialized it), 0 pulls, VIP k8s-master02 -> k8s-master01 in 4.5 s, rebuild of k8s-master01 ok (ConfigMap kept), 3 etcd members",
                "test-demo: kubeha serve at http://192.168.20.5:8080 installed every node (6 installs reported), every agent reported done to it; its view: VIP holder k8s-master02, etcd members k8s-master01, k8s-master02, k8s-master03",
                "test-demo: hostile: kubeadm init killed on k8s-master01 with the apiserver up; k8s-master02 re-designated: it alone initialized (its first init killed before etcd answered), k8s-master01 (stored decision init) joined; k8s-node01's kubeadm join killed in its TLS bootstrap, joined after a restart (restarts k8s-master01=1, k8s-master02=2, k8s-master03=0, k8s-node01=1, k8s-node02=0)",
                "test-demo: hostile: second bootstrap did not initialize at formation; partitioned k8s-master01 waited (\"nothing answers, but no majority attests: 1 of 3 masters attest (need 2: k8s-mas...\"); kubeadm join killed with the member learner, recovered after 2 restart(s); all masters reimaged: no init, waits (\"no master answers, but k8s-node01 (192.168.20.30:10250), k8s-node02 (192.168.20....\")",
            ]
        );
    }

    #[test]
    fn without_hostile_three_inits_are_two_too_many() {
        assert_eq!(
            problems(false, |_| {}),
            ["kubeadm init ran 3 times in the cluster (agents' logs), want 1"]
        );
        assert_eq!(
            problems(false, |v| {
                v.as_object_mut().unwrap().remove("kubeadm_inits");
            }),
            ["kubeadm init ran - times in the cluster (agents' logs), want 1"]
        );
    }

    #[test]
    fn a_node_not_done() {
        assert_eq!(
            problems(true, |v| v["nodes"][2]["phase"] = json!("join")),
            ["k8s-master03 ended in phase join"]
        );
        assert_eq!(
            problems(true, |v| v["nodes"][2]["phase"] = Value::Null),
            ["k8s-master03 ended in phase -"]
        );
    }

    #[test]
    fn roles_other_than_three_masters_and_two_workers() {
        let p = problems(false, |v| {
            v["nodes"][3]["role"] = json!("master");
            v["kubeadm_inits"] = json!(1);
        });
        assert_eq!(
            p[0],
            "expected 3 masters and 2 workers, got master, master, master, master, worker"
        );
    }

    #[test]
    fn the_hostile_checks_need_three_masters_and_a_worker() {
        let p = problems(true, |v| {
            v["nodes"][3]["role"] = json!("master");
            v["nodes"][4]["role"] = json!("master");
        });
        let want = "the hostile checks need 3 masters and a worker, got master, master, master, master, master";
        assert_eq!(
            p[0],
            "expected 3 masters and 2 workers, got master, master, master, master, master"
        );
        assert!(p.iter().any(|l| l == want), "{p:?}");
        assert!(
            !p.iter().any(|l| l.starts_with("kubeadm init killed")),
            "{p:?}"
        );
    }

    #[test]
    fn two_inits() {
        assert_eq!(
            problems(true, |v| v["nodes"][0]["decision"] = json!("init")),
            [
                "exactly one kubeadm init expected, got k8s-master01, k8s-master02",
                "two bootstraps: node=k8s-master02, believed_designated=true, decision=init; inits k8s-master01, \
                 k8s-master02; inits at the kill k8s-master01=1: k8s-master02 believed it initializes but must not \
                 have initialized before the re-designation",
            ]
        );
        assert_eq!(
            problems(true, |v| v["nodes"][1]["decision"] = json!("join"))[0],
            "exactly one kubeadm init expected, got none"
        );
    }

    #[test]
    fn the_vip_did_not_move() {
        assert_eq!(
            problems(true, |v| v["vip_after"] = json!("k8s-master02")),
            ["the VIP did not move: k8s-master02 -> k8s-master02"]
        );
    }

    #[test]
    fn a_slow_or_missing_failover() {
        assert_eq!(
            problems(true, |v| v["failover_seconds"] = json!(31.0)),
            ["failover time 31 s"]
        );
        assert_eq!(
            problems(true, |v| v["failover_seconds"] = json!(0)),
            ["failover time 0 s"]
        );
        assert_eq!(
            problems(true, |v| {
                v.as_object_mut().unwrap().remove("failover_seconds");
            }),
            ["failover time -"]
        );
    }

    #[test]
    fn a_failed_rebuild() {
        let rb = "node=k8s-master01, ok=false, seconds=17.9, decision=join";
        assert_eq!(
            problems(true, |v| v["rebuild"]["ok"] = json!(false)),
            [
                format!("rebuild drill: {rb}"),
                format!(
                    "kubeadm killed in the join, then recovered: node=k8s-master01, member_when_killed=learner, \
                     restarts=2; rebuild {rb}"
                ),
            ]
        );
        assert_eq!(
            problems(false, |v| {
                v.as_object_mut().unwrap().remove("rebuild");
                v["kubeadm_inits"] = json!(1);
            }),
            [
                "rebuild drill: none",
                // (the rebuilt node's second install is then one too many)
                "k8s-master01: 2 installs reported to kubeha serve, want 1",
            ]
        );
    }

    #[test]
    fn etcd_members_wrong() {
        assert_eq!(
            problems(true, |v| {
                v["etcd_members"].as_array_mut().unwrap().pop();
            }),
            ["etcd members after the rebuild: k8s-master03 (85a7dca0269a9a9a), k8s-master02 (a329456cf6c18e40)"]
        );
        assert_eq!(
            problems(true, |v| {
                v.as_object_mut().unwrap().remove("etcd_members");
            }),
            ["etcd members after the rebuild: -"]
        );
        assert_eq!(
            problems(true, |v| {
                v["serve"]["fleet"]["etcd_members"]["members"].as_array_mut().unwrap().pop();
            }),
            [
                "kubeha serve's etcd members: k8s-master01, k8s-master02 (reported by k8s-master01 at \
                 2026-12-06T04:15:57Z), want k8s-master01, k8s-master02, k8s-master03"
            ]
        );
        assert_eq!(
            problems(true, |v| v["serve"]["fleet"]["etcd_members"] = Value::Null),
            ["kubeha serve's etcd members: none, want k8s-master01, k8s-master02, k8s-master03"]
        );
    }

    #[test]
    fn nodes_not_registered_or_not_ready_pulls_and_versions() {
        let p = problems(true, |v| {
            v["registered_nodes"].as_array_mut().unwrap().pop();
            v["node_status"]["k8s-node02"] = json!("NotReady");
            v["node_status"]["k8s-master01"] = json!("Unknown");
            v["image_pulls"] = json!(3);
            v["kubernetes"]["server"] = json!("v1.36.2");
        });
        assert_eq!(
            p,
            [
                "registered nodes k8s-master01, k8s-master02, k8s-master03, k8s-node01",
                "Nodes not Ready (kubectl get nodes through the VIP): k8s-master01, k8s-node02",
                "the nodes' containerd pulled 3 images; everything must come from the bundle",
                "the API server through the VIP reports v1.36.2, kubeadm is v1.36.3",
            ]
        );
        let p = problems(true, |v| {
            let o = v.as_object_mut().unwrap();
            o.remove("registered_nodes");
            o.remove("image_pulls");
            o.remove("kubernetes");
        });
        assert_eq!(
            p,
            [
                "registered nodes -",
                "the nodes' containerd pulled - images; everything must come from the bundle",
                "the API server through the VIP reports -, kubeadm is -",
            ]
        );
    }

    #[test]
    fn serve_missing() {
        let want = [
            "no fleet from kubeha serve in result.json: the demo must install through kubeha serve",
        ];
        assert_eq!(
            problems(true, |v| {
                v.as_object_mut().unwrap().remove("serve");
            }),
            want
        );
        assert_eq!(problems(true, |v| v["serve"]["fleet"] = json!({})), want);
        assert_eq!(problems(true, |v| v["serve"]["fleet"] = Value::Null), want);
    }

    #[test]
    fn a_serve_row_missing_or_not_installed() {
        assert_eq!(
            problems(true, |v| {
                v["serve"]["fleet"]["nodes"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|row| row["name"] != "k8s-node01");
            }),
            ["kubeha serve has no row for k8s-node01"]
        );
        assert_eq!(
            problems(true, |v| {
                v["serve"]["fleet"]["nodes"][3]["installed"] = json!(false);
                v["serve"]["fleet"]["nodes"][3]["error"] = json!("it's \"bad\"");
            }),
            [
                "kubeha serve's row for k8s-node01: phase done/ok, installed false, last error it's \"bad\": want \
                 done/ok, installed"
            ]
        );
        assert_eq!(
            problems(true, |v| {
                v["serve"]["fleet"]["nodes"][1]["phase"] = Value::Null;
                v["serve"]["fleet"]["nodes"][1]["state"] = json!("failed");
                v["serve"]["fleet"]["nodes"][1]["error"] = Value::Null;
            }),
            [
                "kubeha serve's row for k8s-master02: phase -/failed, installed true, last error -: want \
                 done/ok, installed"
            ]
        );
    }

    #[test]
    fn a_wrong_install_count() {
        assert_eq!(
            problems(true, |v| {
                let t = v["serve"]["fleet"]["timeline"].as_array_mut().unwrap();
                let i = t
                    .iter()
                    .position(|e| e["what"] == "installed ok" && e["node"] == "k8s-master01")
                    .unwrap();
                t.remove(i);
                t.push(json!({"at": "x", "node": "k8s-node02", "what": "installed ok"}));
                t.retain(|e| e["node"] != "k8s-node01");
            }),
            [
                "k8s-master01: 1 installs reported to kubeha serve, want 2",
                "k8s-node01: 0 installs reported to kubeha serve, want 1",
                "k8s-node02: 2 installs reported to kubeha serve, want 1",
            ]
        );
    }

    #[test]
    fn serve_decisions_vip_holder_and_unknown_machines() {
        assert_eq!(
            problems(true, |v| {
                v["serve"]["fleet"]["nodes"][2]["decision"] = json!("init");
                v["serve"]["fleet_formed"]["vip_holder"] = json!("k8s-master03");
                v["serve"]["fleet"]["unknown"] = json!([{"mac": "52:54:00:00:00:01", "seen": 3}]);
            }),
            [
                "kubeha serve says k8s-master03 decided init, the node join",
                "kubeha serve's VIP holder after formation: k8s-master03, the VIP was on k8s-master02",
                "kubeha serve saw unknown machines: [{\"mac\":\"52:54:00:00:00:01\",\"seen\":3}]",
            ]
        );
        assert_eq!(
            problems(true, |v| {
                v["serve"]["fleet"]["nodes"][0]["decision"] = Value::Null;
                v["serve"]["fleet_formed"] = Value::Null;
            }),
            [
                "kubeha serve says k8s-master01 decided -, the node join",
                "kubeha serve's VIP holder after formation: -, the VIP was on k8s-master02",
            ]
        );
    }

    const IK: &str = "kubeadm init killed on k8s-master01, then k8s-master02 re-designated: want one init by \
                      k8s-master01 before the kill, two by k8s-master02 after (the first killed before etcd), \
                      k8s-master01 joined, k8s-node01 restarted after its killed join: ";

    /// Each part of the kill-inside-the-init drill's check, on its own.
    #[test]
    fn kubeadm_killed_in_init() {
        fn ik(v: &mut Value) -> &mut Value {
            &mut v["hostile"]["kubeadm_killed_in_init"]
        }
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<Mutation> = vec![
            Box::new(|v| ik(v)["init_runs_at_kill"] = json!({"k8s-master01": 2})),
            Box::new(|v| ik(v)["stored_decision"] = json!("join")),
            Box::new(|v| ik(v)["init_runs"]["k8s-master02"] = json!(1)),
            Box::new(|v| ik(v)["init_killed_before_etcd"]["etcd_answered"] = json!(true)),
            Box::new(|v| ik(v)["init_killed_before_etcd"]["node"] = json!("k8s-master03")),
            Box::new(|v| ik(v)["worker_join_killed"]["bootstrap_kubelet_conf"] = json!(false)),
            Box::new(|v| ik(v)["restarts"]["k8s-node01"] = json!(0)),
            Box::new(|v| ik(v)["decisions"]["k8s-node01"] = Value::Null),
            Box::new(|v| ik(v)["decisions"]["k8s-master01"] = json!("init")),
        ];
        for mutate in cases {
            let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
            mutate(&mut v);
            let want = format!(
                "{IK}{}; 3 inits in the logs",
                shown::<KilledInInit>(ik(&mut v))
            );
            assert_eq!(problems(true, |x| mutate(x)), [want]);
        }
        // The whole record, as the message prints it.
        assert_eq!(
            problems(true, |v| ik(v)["stored_decision"] = json!("join")),
            [format!(
                "{IK}node: k8s-master01; init_runs_at_kill: k8s-master01=1; stored_decision: join; init_runs: \
                 k8s-master01=1, k8s-master02=2; init_killed_before_etcd: node=k8s-master02, verb=init, \
                 etcd_manifest=true, etcd_answered=false, bootstrap_kubelet_conf=false, kubelet_conf=true; \
                 worker_join_killed: node=k8s-node01, verb=join, etcd_manifest=false, etcd_answered=false, \
                 bootstrap_kubelet_conf=true, kubelet_conf=false; restarts: k8s-master01=1, k8s-master02=2, \
                 k8s-master03=0, k8s-node01=1, k8s-node02=0; decisions: k8s-master01=join, k8s-master02=init, \
                 k8s-master03=join; 3 inits in the logs"
            )]
        );
        assert_eq!(
            problems(true, |v| {
                v["hostile"]
                    .as_object_mut()
                    .unwrap()
                    .remove("kubeadm_killed_in_init");
            }),
            [format!("{IK}none; 3 inits in the logs")]
        );
        // Three inits in the logs, as the drill makes them.
        let p = problems(true, |v| v["kubeadm_inits"] = json!(2));
        assert!(
            p[0].starts_with(IK) && p[0].ends_with("k8s-master03=join; 2 inits in the logs"),
            "{p:?}"
        );
        // The second master ran init before the kill: it did not stay out at formation.
        let p = problems(true, |v| {
            ik(v)["init_runs_at_kill"] = json!({"k8s-master01": 1, "k8s-master02": 1})
        });
        assert_eq!(p.len(), 2);
        assert!(p[0].starts_with(IK));
        assert_eq!(
            p[1],
            "two bootstraps: node=k8s-master02, believed_designated=true, decision=init; inits k8s-master02; inits \
             at the kill k8s-master01=1, k8s-master02=1: k8s-master02 believed it initializes but must not have \
             initialized before the re-designation"
        );
        // A count written as 1.0 is 1.
        let v = |v: &mut Value| ik(v)["init_runs_at_kill"] = json!({"k8s-master01": 1.0});
        let mut x: Value = serde_json::from_str(FIXTURE).unwrap();
        v(&mut x);
        assert!(check(&DemoResult::parse(&x.to_string()).unwrap(), true).is_ok());
    }

    #[test]
    fn the_second_bootstrap_must_believe_it_initializes() {
        assert_eq!(
            problems(true, |v| v["hostile"]["two_bootstraps"]["believed_designated"] = json!(false)),
            [
                "two bootstraps: node=k8s-master02, believed_designated=false, decision=init; inits k8s-master02; \
                 inits at the kill k8s-master01=1: k8s-master02 believed it initializes but must not have \
                 initialized before the re-designation"
            ]
        );
        assert_eq!(
            problems(true, |v| {
                v["hostile"].as_object_mut().unwrap().remove("two_bootstraps");
            }),
            [
                "two bootstraps: none; inits k8s-master02; inits at the kill k8s-master01=1: k8s-master02 believed \
                 it initializes but must not have initialized before the re-designation"
            ]
        );
    }

    #[test]
    fn the_partitioned_rebuild_must_wait() {
        for mutate in [
            (|v: &mut Value| v["waiting"] = json!("joining")) as fn(&mut Value),
            |v| v["still_waiting"] = json!(false),
            |v| v["inits"] = json!(1),
            |v| v["apiserver_manifest"] = json!(true),
        ] {
            let p = problems(true, |v| mutate(&mut v["hostile"]["partitioned_rebuild"]));
            let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
            mutate(&mut v["hostile"]["partitioned_rebuild"]);
            assert_eq!(
                p,
                [format!(
                    "partitioned rebuild must wait and start nothing: {}",
                    shown::<Waited>(&v["hostile"]["partitioned_rebuild"])
                )]
            );
        }
        assert_eq!(
            problems(true, |v| v["hostile"]["partitioned_rebuild"]["waiting"] = json!("joining")),
            [
                "partitioned rebuild must wait and start nothing: node=k8s-master01, waiting=joining, \
                 still_waiting=true, inits=0, apiserver_manifest=false"
            ]
        );
        assert_eq!(
            problems(true, |v| v["hostile"]["partitioned_rebuild"]["inits"] = json!(1)),
            [
                "partitioned rebuild must wait and start nothing: node=k8s-master01, waiting=\"nothing answers, but \
                 no majority attests: 1 of 3 masters attest (need 2: k8s-master01); k8s-master02: no attestation \
                 (connecting to 192.168.20.21:16444: connection timed out); k8s-master03: no attestation (connecting \
                 to 192.168.20.22:16444: connection timed out). A master that cannot reach a majority never \
                 initializes; if the others are gone for good, create /etc/kubeha/force-init on this master\", \
                 still_waiting=true, inits=1, apiserver_manifest=false"
            ]
        );
    }

    #[test]
    fn kubeadm_killed_in_the_join_must_name_the_member() {
        assert_eq!(
            problems(true, |v| v["hostile"]["kubeadm_killed_in_join"]["member_when_killed"] = json!("")),
            [format!(
                "kubeadm killed in the join, then recovered: node=k8s-master01, member_when_killed=\"\", \
                 restarts=2; rebuild {REBUILD}"
            )]
        );
        assert_eq!(
            problems(true, |v| {
                v["hostile"]
                    .as_object_mut()
                    .unwrap()
                    .remove("kubeadm_killed_in_join");
            }),
            [format!(
                "kubeadm killed in the join, then recovered: none; rebuild {REBUILD}"
            )]
        );
    }

    #[test]
    fn all_masters_reimaged_must_wait() {
        for mutate in [
            (|v: &mut Value| v["waiting"] = json!("joining")) as fn(&mut Value),
            |v| v["still_waiting"] = json!(false),
            |v| v["inits"] = json!(2),
        ] {
            let p = problems(true, |v| mutate(&mut v["hostile"]["all_masters_reimaged"]));
            let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
            mutate(&mut v["hostile"]["all_masters_reimaged"]);
            assert_eq!(
                p,
                [format!(
                    "all masters reimaged at once must wait and not init: {}",
                    shown::<Waited>(&v["hostile"]["all_masters_reimaged"])
                )]
            );
        }
        assert_eq!(
            problems(true, |v| v["hostile"]["all_masters_reimaged"]["waiting"] = json!("x")),
            ["all masters reimaged at once must wait and not init: waiting=x, still_waiting=true, inits=0"]
        );
    }

    #[test]
    fn records_print_as_key_value_pairs() {
        // Absent fields are left out, a text with a space, a comma, `=` or a quote is quoted, an empty record is
        // `none`.
        let w: Waited = serde_json::from_value(json!({"waiting": "a, b=c", "inits": 2.5})).unwrap();
        assert_eq!(w.to_string(), "waiting=\"a, b=c\", inits=2.5");
        let w: Waited = serde_json::from_value(json!({"node": "say \"x\""})).unwrap();
        assert_eq!(w.to_string(), r#"node="say \"x\"""#);
        assert_eq!(Waited::default().to_string(), "none");
        assert_eq!(KilledInInit::default().to_string(), "none");
        let r = DemoResult::parse(FIXTURE).unwrap();
        assert_eq!(r.rebuild.unwrap().to_string(), REBUILD);
    }
}
