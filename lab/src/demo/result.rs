//! A demo run's `STATE/result.json` (written by the node stages, [`super::cluster`]) and its verdict: what `make demo` must
//! show, as assertions (`kubeha-lab check-result`, run by `make test-demo`). Every problem is named with the
//! values it saw, printed as the python checker printed them ([`super::py`]).

use super::py::{present, Dict, Py, PyFmt, Raw};
use serde::Deserialize;
use serde_json::Number;
use std::collections::BTreeMap;

/// result.json: the parts the checks and the summary read. A missing part reads as python's `.get()` did.
#[derive(Clone, Debug, Deserialize)]
pub struct DemoResult {
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub vip_before: Option<String>,
    #[serde(default)]
    pub vip_after: Option<String>,
    #[serde(default)]
    pub failover_seconds: Option<Number>,
    #[serde(default)]
    pub kubernetes: Kubernetes,
    #[serde(default)]
    pub formation_seconds: Option<Number>,
    #[serde(default)]
    pub kubeadm_inits: Option<Number>,
    #[serde(default)]
    pub image_pulls: Option<Number>,
    /// `etcdctl member list` after the rebuild, through the VIP.
    #[serde(default)]
    pub etcd_members: Option<Raw<Vec<EtcdMember>>>,
    #[serde(default)]
    pub rebuild: Option<Raw<Rebuild>>,
    /// The Nodes `kubectl get nodes` listed through the VIP.
    #[serde(default)]
    pub registered_nodes: Option<Vec<String>>,
    /// Node name to its Ready condition, in kubectl's order.
    #[serde(default)]
    pub node_status: Dict<String>,
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
    pub seconds: Option<Number>,
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

/// The rebuild drill: the designated master reimaged and rejoined.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Rebuild {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub ok: Option<bool>,
    #[serde(default)]
    pub seconds: Option<Number>,
    #[serde(default)]
    pub decision: Option<String>,
}

/// `kubeha serve`: its URL and the fleet as it saw it (`kubeha status --json`) after the drills and after formation.
#[derive(Clone, Debug, Deserialize)]
pub struct Serve {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub fleet: Option<Raw<Fleet>>,
    #[serde(default)]
    pub fleet_formed: Option<Fleet>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Fleet {
    /// One row per machine cluster.toml has, in the server's order.
    #[serde(default)]
    pub nodes: Vec<Row>,
    #[serde(default)]
    pub timeline: Vec<Event>,
    #[serde(default)]
    pub vip_holder: Option<String>,
    #[serde(default)]
    pub etcd_members: Option<Raw<EtcdReport>>,
    /// Machines that asked and are not in cluster.toml (open shape: printed whole).
    #[serde(default)]
    pub unknown: Option<Py>,
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
    /// Absent and `null` print differently (`-` and `None`).
    #[serde(default, deserialize_with = "present")]
    pub reported_by: Option<Option<String>>,
}

/// The node stages' hostile drills.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Hostile {
    #[serde(default)]
    pub kubeadm_killed_in_init: Option<Raw<KilledInInit>>,
    #[serde(default)]
    pub two_bootstraps: Option<Raw<TwoBootstraps>>,
    #[serde(default)]
    pub partitioned_rebuild: Option<Raw<Waited>>,
    #[serde(default)]
    pub kubeadm_killed_in_join: Option<Raw<KilledInJoin>>,
    #[serde(default)]
    pub all_masters_reimaged: Option<Raw<Waited>>,
}

/// kubeadm killed inside the init, the re-designation, and the kubeadm runs killed after it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct KilledInInit {
    /// `kubeadm init` runs per node when the first one was killed.
    #[serde(default)]
    pub init_runs_at_kill: Option<Dict<Number>>,
    #[serde(default)]
    pub stored_decision: Option<String>,
    #[serde(default)]
    pub init_runs: Option<Dict<Number>>,
    #[serde(default)]
    pub init_killed_before_etcd: Option<KilledAt>,
    #[serde(default)]
    pub worker_join_killed: Option<KilledAt>,
    /// Agent restarts per node (the `Restart=on-failure` stand-in).
    #[serde(default)]
    pub restarts: Option<Dict<Number>>,
    #[serde(default)]
    pub decisions: Option<Dict<Option<String>>>,
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
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct TwoBootstraps {
    #[serde(default)]
    pub believed_designated: Option<bool>,
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
    pub inits: Option<Number>,
    #[serde(default)]
    pub apiserver_manifest: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct KilledInJoin {
    /// The member's state in etcd when its kubeadm join was killed (a learner, or added and not started).
    #[serde(default)]
    pub member_when_killed: Option<String>,
    #[serde(default)]
    pub restarts: Option<Number>,
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

/// `x == n` for a JSON number as python compares (1.0 == 1).
fn num_is(x: Option<&Number>, n: f64) -> bool {
    x.and_then(Number::as_f64) == Some(n)
}

fn num_truthy(x: Option<&Number>) -> bool {
    x.and_then(Number::as_f64).is_some_and(|f| f != 0.0)
}

/// A dict of counts equal to `want` (same keys, equal numbers).
fn counts_are(d: Option<&Dict<Number>>, want: &[(&str, f64)]) -> bool {
    d.is_some_and(|d| d.len() == want.len() && want.iter().all(|(k, n)| num_is(d.get(k), *n)))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `repr` of a part python read with `.get(k) or {}` / `.get(k, {})`: `{}` when absent.
fn repr_or_empty<T>(x: Option<&Raw<T>>) -> String {
    x.map_or_else(|| "{}".to_string(), PyFmt::repr)
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
            roles.repr()
        ));
    }
    for n in nodes {
        if n.phase.as_deref() != Some("done") {
            problems.push(format!("{} ended in phase {}", n.name, n.phase.str()));
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
            inits.repr()
        ));
    }
    if r.vip_before.as_deref().unwrap_or("").is_empty() || r.vip_before == r.vip_after {
        problems.push(format!(
            "the VIP did not move: {} -> {}",
            r.vip_before.str(),
            r.vip_after.str()
        ));
    }
    let failover = r
        .failover_seconds
        .as_ref()
        .and_then(Number::as_f64)
        .unwrap_or(0.0);
    if !(0.0 < failover && failover < 30.0) {
        problems.push(format!("failover time {}", r.failover_seconds.str()));
    }
    let rb = r
        .rebuild
        .as_ref()
        .map(|x| x.typed.clone())
        .unwrap_or_default();
    if rb.ok != Some(true) || rb.decision.as_deref() != Some("join") {
        problems.push(format!(
            "rebuild drill: {}",
            repr_or_empty(r.rebuild.as_ref())
        ));
    }
    if r.etcd_members.as_ref().map_or(0, |m| m.len()) != 3 {
        problems.push(format!(
            "etcd members after the rebuild: {}",
            r.etcd_members.repr()
        ));
    }
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    if sorted(r.registered_nodes.clone().unwrap_or_default()) != sorted(names) {
        problems.push(format!("registered nodes {}", r.registered_nodes.repr()));
    }
    let not_ready: Vec<String> = r
        .node_status
        .iter()
        .filter(|(_, v)| *v != "Ready")
        .map(|(k, _)| k.to_string())
        .collect();
    if !not_ready.is_empty() {
        problems.push(format!(
            "Nodes not Ready (kubectl get nodes through the VIP): {}",
            not_ready.repr()
        ));
    }
    if !num_is(r.kubeadm_inits.as_ref(), 1.0) && !hostile {
        problems.push(format!(
            "kubeadm init ran {} times in the cluster (agents' logs), want 1",
            r.kubeadm_inits.str()
        ));
    }
    if !num_is(r.image_pulls.as_ref(), 0.0) {
        problems.push(format!(
            "the nodes' containerd pulled {} images; everything must come from the bundle",
            r.image_pulls.str()
        ));
    }
    let k = &r.kubernetes;
    if k.server.as_deref().unwrap_or("").is_empty() || k.server != k.kubeadm {
        problems.push(format!(
            "the API server through the VIP reports {}, kubeadm is {}",
            k.server.str(),
            k.kubeadm.str()
        ));
    }

    // The fleet as kubeha serve saw it: every lab node was network-installed from it (its installer reported
    // `installed`), its agent reported every phase up to done, and the masters' reports say who holds the VIP and
    // which etcd members there are.
    let serve = r.serve.as_ref();
    let fleet = serve
        .and_then(|s| s.fleet.as_ref())
        .filter(|f| f.raw.truthy());
    let masters = r.names("master");
    let workers = r.names("worker");
    // Installs reported per node (`installed ok` events; python's dict kept None for an event without a node).
    let mut installs: BTreeMap<Option<&str>, u64> = BTreeMap::new();
    match fleet {
        None => problems.push(
            "no fleet from kubeha serve in result.json: the demo must install through kubeha serve"
                .into(),
        ),
        Some(f) => {
            for e in &f.timeline {
                if e.what == "installed ok" {
                    *installs.entry(e.node.as_deref()).or_default() += 1;
                }
            }
            for n in nodes {
                let Some(row) = f.nodes.iter().find(|row| row.name == n.name) else {
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
                        row.phase.str(),
                        row.state.str(),
                        row.installed.str(),
                        row.error.str()
                    ));
                }
                let want = if Some(&n.name) == rb.node.as_ref() {
                    2
                } else {
                    1
                };
                let got = installs.get(&Some(n.name.as_str())).copied();
                if got != Some(want) {
                    problems.push(format!(
                        "{}: {} installs reported to kubeha serve, want {want}",
                        n.name,
                        got.map_or_else(|| "None".to_string(), |g| g.to_string())
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
                            row.decision.str(),
                            want_dec.str()
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
                    formed.str(),
                    r.vip_before.str()
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
                    f.etcd_members.repr(),
                    masters_sorted.repr()
                ));
            }
            if let Some(unknown) = f.typed.unknown.as_ref().filter(|u| u.truthy()) {
                problems.push(format!(
                    "kubeha serve saw unknown machines: {}",
                    unknown.str()
                ));
            }
        }
    }
    let h = r.hostile.clone().unwrap_or_default();
    if hostile {
        if masters.len() < 3 || workers.is_empty() {
            // (python stopped here with an IndexError; the role check above names what is missing)
            problems.push(format!(
                "the hostile checks need 3 masters and a worker, got {}",
                roles.repr()
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
            k.server.str(),
            inits[0],
            r.vip_before.str(),
            r.vip_after.str(),
            r.failover_seconds.str(),
            rb.node.str()
        ),
        format!(
            "test-demo: kubeha serve at {} installed every node ({} installs reported), every agent reported done to \
             it; its view: VIP holder {}, etcd members {}",
            s.url.str(),
            installs.values().sum::<u64>(),
            s.fleet_formed.as_ref().and_then(|f| f.vip_holder.clone()).str(),
            f.etcd_members
                .as_ref()
                .and_then(|e| e.members.clone())
                .unwrap_or_default()
                .join(", ")
        ),
    ];
    if hostile {
        let ik = h.kubeadm_killed_in_init.as_ref().map(|x| &x.typed);
        let p = h.partitioned_rebuild.as_ref().map(|x| &x.typed);
        let kk = h.kubeadm_killed_in_join.as_ref().map(|x| &x.typed);
        let a = h.all_masters_reimaged.as_ref().map(|x| &x.typed);
        lines.push(format!(
            "test-demo: hostile: kubeadm init killed on {m0} with the apiserver up; {m1} re-designated: it alone \
             initialized (its first init killed before etcd answered), {m0} (stored decision init) joined; {w0}'s \
             kubeadm join killed in its TLS bootstrap, joined after a restart (restarts {})",
            ik.and_then(|ik| ik.restarts.as_ref()).repr(),
            m0 = masters[0],
            m1 = masters[1],
            w0 = workers[0],
        ));
        lines.push(format!(
            "test-demo: hostile: second bootstrap did not initialize at formation; partitioned {} waited (\"{}...\"); \
             kubeadm join killed with the member {}, recovered after {} restart(s); all masters reimaged: no init, \
             waits (\"{}...\")",
            p.and_then(|p| p.node.clone()).str(),
            head(p.and_then(|p| p.waiting.as_deref()).unwrap_or(""), 80),
            kk.and_then(|k| k.member_when_killed.clone()).str(),
            kk.and_then(|k| k.restarts.clone()).str(),
            head(a.and_then(|a| a.waiting.as_deref()).unwrap_or(""), 80),
        ));
    }
    Ok(lines)
}

/// Python's `s[:n]`: the first `n` characters.
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
    let rb = r
        .rebuild
        .as_ref()
        .map(|x| x.typed.clone())
        .unwrap_or_default();
    let (m0, m1, m2, w0) = (&masters[0], &masters[1], &masters[2], &workers[0]);
    let ik_raw = h.kubeadm_killed_in_init.as_ref();
    let ik = ik_raw.map(|x| x.typed.clone()).unwrap_or_default();
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
                .all(|(k, v)| d.get(k).is_some_and(|got| got.as_deref() == Some(*v)))
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
        || !num_truthy(ik.restarts.as_ref().and_then(|d| d.get(w0)))
        || !decisions_ok
    {
        problems.push(format!(
            "kubeadm init killed on {m0}, then {m1} re-designated: want one init by {m0} before the kill, two by \
             {m1} after (the first killed before etcd), {m0} joined, {} restarted after its killed join: {}, {} \
             inits in the logs",
            workers[..1].repr(),
            repr_or_empty(ik_raw),
            r.kubeadm_inits.str()
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
            "two bootstraps: {}, inits {}: {m1} believed it initializes but must not have initialized before the \
             re-designation",
            repr_or_empty(two),
            inits.repr()
        ));
    }
    let p_raw = h.partitioned_rebuild.as_ref();
    let p = p_raw.map(|x| x.typed.clone()).unwrap_or_default();
    if !p
        .waiting
        .as_deref()
        .unwrap_or("")
        .contains("no majority attests")
        || p.still_waiting != Some(true)
        || num_truthy(p.inits.as_ref())
        || p.apiserver_manifest == Some(true)
    {
        problems.push(format!(
            "partitioned rebuild must wait and start nothing: {}",
            repr_or_empty(p_raw)
        ));
    }
    let kk_raw = h.kubeadm_killed_in_join.as_ref();
    let member = kk_raw.and_then(|k| k.member_when_killed.as_deref());
    if member.unwrap_or("").is_empty() || rb.ok != Some(true) {
        problems.push(format!(
            "kubeadm killed in the join, then recovered: {}, rebuild {}",
            repr_or_empty(kk_raw),
            repr_or_empty(r.rebuild.as_ref())
        ));
    }
    let a_raw = h.all_masters_reimaged.as_ref();
    let a = a_raw.map(|x| x.typed.clone()).unwrap_or_default();
    if !a.waiting.as_deref().unwrap_or("").contains("run a kubelet")
        || a.still_waiting != Some(true)
        || num_truthy(a.inits.as_ref())
    {
        problems.push(format!(
            "all masters reimaged at once must wait and not init: {}",
            repr_or_empty(a_raw)
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

    /// A mutated part as the message prints it (the mutation re-serializes it, keys sorted).
    fn repr_of(v: &Value) -> String {
        serde_json::from_value::<Py>(v.clone()).unwrap().repr()
    }

    #[test]
    fn the_fixture_passes_with_its_hostile_drills() {
        let r = DemoResult::parse(FIXTURE).unwrap();
        let lines = check(&r, true).unwrap();
        assert_eq!(
            lines,
            [
                "test-demo: real Kubernetes v1.36.3: 5 nodes Ready through the VIP, one cluster (k8s-master02 initialized it), 0 pulls, VIP k8s-master02 -> k8s-master01 in 4.5 s, rebuild of k8s-master01 ok (ConfigMap kept), 3 etcd members",
                "test-demo: kubeha serve at http://192.168.20.5:8080 installed every node (6 installs reported), every agent reported done to it; its view: VIP holder k8s-master02, etcd members k8s-master01, k8s-master02, k8s-master03",
                "test-demo: hostile: kubeadm init killed on k8s-master01 with the apiserver up; k8s-master02 re-designated: it alone initialized (its first init killed before etcd answered), k8s-master01 (stored decision init) joined; k8s-node01's kubeadm join killed in its TLS bootstrap, joined after a restart (restarts {'k8s-master01': 1, 'k8s-master02': 2, 'k8s-master03': 0, 'k8s-node01': 1, 'k8s-node02': 0})",
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
    }

    #[test]
    fn a_node_not_done() {
        assert_eq!(
            problems(true, |v| v["nodes"][2]["phase"] = json!("join")),
            ["k8s-master03 ended in phase join"]
        );
        assert_eq!(
            problems(true, |v| v["nodes"][2]["phase"] = Value::Null),
            ["k8s-master03 ended in phase None"]
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
            "expected 3 masters and 2 workers, got ['master', 'master', 'master', 'master', 'worker']"
        );
    }

    #[test]
    fn two_inits() {
        assert_eq!(
            problems(true, |v| v["nodes"][0]["decision"] = json!("init")),
            [
                "exactly one kubeadm init expected, got ['k8s-master01', 'k8s-master02']",
                "two bootstraps: {'believed_designated': True, 'decision': 'init', 'node': 'k8s-master02'}, inits \
                 ['k8s-master01', 'k8s-master02']: k8s-master02 believed it initializes but must not have initialized \
                 before the re-designation",
            ]
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
            ["failover time 31.0"]
        );
        assert_eq!(
            problems(true, |v| {
                v.as_object_mut().unwrap().remove("failover_seconds");
            }),
            ["failover time None"]
        );
    }

    #[test]
    fn a_failed_rebuild() {
        let rb = "{'decision': 'join', 'node': 'k8s-master01', 'ok': False, 'seconds': 17.9}";
        assert_eq!(
            problems(true, |v| v["rebuild"]["ok"] = json!(false)),
            [
                format!("rebuild drill: {rb}"),
                format!(
                    "kubeadm killed in the join, then recovered: {{'member_when_killed': 'learner', 'node': \
                     'k8s-master01', 'restarts': 2}}, rebuild {rb}"
                ),
            ]
        );
    }

    #[test]
    fn etcd_members_wrong() {
        assert_eq!(
            problems(true, |v| {
                v["etcd_members"].as_array_mut().unwrap().pop();
            }),
            [
                "etcd members after the rebuild: [{'id': '85a7dca0269a9a9a', 'name': 'k8s-master03', 'peer_urls': \
                 ['https://192.168.20.22:2380']}, {'id': 'a329456cf6c18e40', 'name': 'k8s-master02', 'peer_urls': \
                 ['https://192.168.20.21:2380']}]"
            ]
        );
        assert_eq!(
            problems(true, |v| {
                v["serve"]["fleet"]["etcd_members"]["members"].as_array_mut().unwrap().pop();
            }),
            [
                "kubeha serve's etcd members: {'at': '2026-12-06T04:15:57Z', 'members': ['k8s-master01', \
                 'k8s-master02'], 'reported_by': 'k8s-master01'}, want ['k8s-master01', 'k8s-master02', \
                 'k8s-master03']"
            ]
        );
    }

    #[test]
    fn nodes_not_registered_or_not_ready_pulls_and_versions() {
        let p = problems(true, |v| {
            v["registered_nodes"].as_array_mut().unwrap().pop();
            v["node_status"]["k8s-node02"] = json!("NotReady");
            v["image_pulls"] = json!(3);
            v["kubernetes"]["server"] = json!("v1.36.2");
        });
        assert_eq!(
            p,
            [
                "registered nodes ['k8s-master01', 'k8s-master02', 'k8s-master03', 'k8s-node01']",
                "Nodes not Ready (kubectl get nodes through the VIP): ['k8s-node02']",
                "the nodes' containerd pulled 3 images; everything must come from the bundle",
                "the API server through the VIP reports v1.36.2, kubeadm is v1.36.3",
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
                "kubeha serve's row for k8s-node01: phase done/ok, installed False, last error it's \"bad\": want \
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
                "kubeha serve's row for k8s-master02: phase None/failed, installed True, last error None: want \
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
                "k8s-node01: None installs reported to kubeha serve, want 1",
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
                "kubeha serve saw unknown machines: [{'mac': '52:54:00:00:00:01', 'seen': 3}]",
            ]
        );
    }

    const IK: &str = "kubeadm init killed on k8s-master01, then k8s-master02 re-designated: want one init by \
                      k8s-master01 before the kill, two by k8s-master02 after (the first killed before etcd), \
                      k8s-master01 joined, ['k8s-node01'] restarted after its killed join: ";

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
            let want = format!("{IK}{}, 3 inits in the logs", repr_of(ik(&mut v)));
            assert_eq!(problems(true, |x| mutate(x)), [want]);
        }
        // Three inits in the logs, as the drill makes them.
        let p = problems(true, |v| v["kubeadm_inits"] = json!(2));
        assert!(
            p[0].starts_with(IK) && p[0].ends_with("}, 2 inits in the logs"),
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
            "two bootstraps: {'believed_designated': True, 'decision': 'init', 'node': 'k8s-master02'}, inits \
             ['k8s-master02']: k8s-master02 believed it initializes but must not have initialized before the \
             re-designation"
        );
        // Python compared 1.0 == 1.
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
                "two bootstraps: {'believed_designated': False, 'decision': 'init', 'node': 'k8s-master02'}, inits \
                 ['k8s-master02']: k8s-master02 believed it initializes but must not have initialized before the \
                 re-designation"
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
                    repr_of(&v["hostile"]["partitioned_rebuild"])
                )]
            );
        }
        assert_eq!(
            problems(true, |v| v["hostile"]["partitioned_rebuild"]["waiting"] = json!("joining")),
            [
                "partitioned rebuild must wait and start nothing: {'apiserver_manifest': False, 'inits': 0, 'node': \
                 'k8s-master01', 'still_waiting': True, 'waiting': 'joining'}"
            ]
        );
    }

    #[test]
    fn kubeadm_killed_in_the_join_must_name_the_member() {
        assert_eq!(
            problems(true, |v| v["hostile"]["kubeadm_killed_in_join"]["member_when_killed"] = json!("")),
            [
                "kubeadm killed in the join, then recovered: {'member_when_killed': '', 'node': 'k8s-master01', \
                 'restarts': 2}, rebuild {'decision': 'join', 'node': 'k8s-master01', 'ok': True, 'seconds': 17.9}"
            ]
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
                    repr_of(&v["hostile"]["all_masters_reimaged"])
                )]
            );
        }
        assert_eq!(
            problems(true, |v| v["hostile"]["all_masters_reimaged"]["waiting"] = json!("x")),
            ["all masters reimaged at once must wait and not init: {'inits': 0, 'still_waiting': True, 'waiting': 'x'}"]
        );
    }

    #[test]
    fn messages_keep_the_documents_key_order() {
        // Unmutated parts print in result.json's own order, as python's dicts kept it.
        let r = DemoResult::parse(FIXTURE).unwrap();
        let rb = r.rebuild.as_ref().unwrap();
        assert_eq!(
            rb.repr(),
            "{'node': 'k8s-master01', 'ok': True, 'seconds': 17.9, 'decision': 'join'}"
        );
        let fleet = r.serve.as_ref().unwrap().fleet.as_ref().unwrap();
        let em = fleet.etcd_members.as_ref().unwrap();
        assert!(em.repr().starts_with("{'at': "), "{}", em.repr());
    }
}
