//! The run's result.json, written by the node stages ([`result`], then [`add_hostile`] after the hostile drills;
//! [`crate::demo::result`] reads it back, [`crate::demo::summary`] prints it): typed, every number parsed before
//! anything is written, and written atomically (a temporary file renamed over it).

use super::read;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One node's row: its agent's status.json, and its first run's numbers (a rebuilt node's first run stays its row).
#[derive(Debug, Serialize, Deserialize)]
pub struct NodeRow {
    pub name: String,
    pub role: Option<String>,
    pub phase: Option<String>,
    pub state: Option<String>,
    pub seconds: f64,
    pub decision: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Kubernetes {
    pub server: String,
    pub kubeadm: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Member {
    pub name: Option<String>,
    /// etcd's member ID in hex, as etcdctl's table prints it.
    pub id: String,
    pub peer_urls: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Rebuild {
    pub node: String,
    pub ok: bool,
    pub seconds: f64,
    pub decision: String,
}

/// kubeha serve's view: at the end and once the cluster had formed (`kubeha status --json`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Serve {
    pub url: String,
    pub fleet: Value,
    pub fleet_formed: Value,
}

/// The "never two clusters" and "never a false done" drills of the node stages --hostile.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hostile {
    pub kubeadm_killed_in_init: InitKill,
    pub two_bootstraps: TwoBootstraps,
    pub partitioned_rebuild: Waited,
    pub kubeadm_killed_in_join: JoinKill,
    pub all_masters_reimaged: Waited,
}

/// The designated master's `kubeadm init` killed with its apiserver up, then the re-designation.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitKill {
    pub node: String,
    pub init_runs_at_kill: BTreeMap<String, u64>,
    pub stored_decision: String,
    /// The second master's armed kill in kubelet-start: the node and what the systemctl stand-in saw.
    pub init_killed_before_etcd: Value,
    /// The first worker's armed kill in its join.
    pub worker_join_killed: Value,
    pub init_runs: BTreeMap<String, u64>,
    pub decisions: BTreeMap<String, String>,
    pub restarts: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TwoBootstraps {
    pub node: String,
    pub believed_designated: bool,
    pub decision: String,
}

/// A node that had to wait (a partitioned rebuild; every master reimaged at once).
#[derive(Debug, Serialize, Deserialize)]
pub struct Waited {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub waiting: String,
    pub still_waiting: bool,
    pub inits: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apiserver_manifest: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct JoinKill {
    pub node: String,
    pub member_when_killed: String,
    pub restarts: u64,
}

/// result.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct DemoResult {
    pub nodes: Vec<NodeRow>,
    pub vip_before: String,
    pub vip_after: String,
    pub failover_seconds: f64,
    pub kubernetes: Kubernetes,
    pub formation_seconds: f64,
    pub kubeadm_inits: u64,
    pub image_pulls: u64,
    pub etcd_members: Vec<Member>,
    pub rebuild: Rebuild,
    pub registered_nodes: Vec<String>,
    pub node_status: BTreeMap<String, String>,
    pub state_dir: String,
    pub serve: Option<Serve>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostile: Option<Hostile>,
}

/// What the node stages measured, for [`result`] (numbers as the probes print them).
#[derive(Debug)]
pub struct Measured {
    pub vip_before: String,
    pub vip_after: String,
    pub failover_seconds: String,
    /// The rebuilt node.
    pub rebuild: String,
    /// true|false.
    pub rebuild_ok: bool,
    pub rebuild_seconds: String,
    /// `etcdctl member list -w json`.
    pub members_json: String,
    /// `name=Ready name=NotReady ...` ([`super::probe::nodes_status`]).
    pub nodes_status: String,
    /// The apiserver's version (kubectl version).
    pub server: String,
    /// kubeadm's version.
    pub kubeadm: String,
    pub formation_seconds: String,
    /// How many `kubeadm init` the agents ran.
    pub inits: String,
    /// How many images the nodes' containerd pulled.
    pub pulls: String,
    /// kubeha serve's URL: its views are STATE/fleet.json and STATE/fleet-formed.json.
    pub serve_url: Option<String>,
    /// The nodes, masters first.
    pub names: Vec<String>,
}

fn num<T: std::str::FromStr>(what: &str, s: &str) -> Result<T> {
    s.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{what}: {s:?} is not a number"))
}

fn read_json(p: &Path) -> Result<Value> {
    serde_json::from_str(&read(p)?).with_context(|| format!("reading {}", p.display()))
}

/// A file's text, trimmed, when it exists.
fn text_if(p: &Path) -> Result<Option<String>> {
    if p.exists() {
        Ok(Some(read(p)?.trim().to_string()))
    } else {
        Ok(None)
    }
}

fn decision_file(state: &Path, n: &str) -> PathBuf {
    state.join(format!("nodes/{n}/var/lib/kubeha/cluster/decision"))
}

/// result.json from what the node stages measured and the files under STATE (each node's status.json and decision, the
/// logs' seconds, the first-run copies of a rebuilt node, kubeha serve's views).
pub fn result(state: &Path, m: &Measured) -> Result<DemoResult> {
    let mut nodes = vec![];
    for n in &m.names {
        let st = read_json(&state.join(format!("nodes/{n}/var/lib/kubeha/status.json")))?;
        let s = |k: &str| st.get(k).and_then(Value::as_str).map(str::to_string);
        let logs = state.join("logs");
        let first = |what: &str, fallback: PathBuf| -> Result<Option<String>> {
            let p = logs.join(format!("{n}.first-{what}"));
            text_if(if p.exists() { &p } else { &fallback })
        };
        let secs = first("seconds", logs.join(format!("{n}.seconds")))?
            .with_context(|| format!("{n}: no {}", logs.join(format!("{n}.seconds")).display()))?;
        let role = s("role");
        let decision = first("decision", decision_file(state, n))?
            .filter(|d| !d.is_empty())
            .or_else(|| (role.as_deref() == Some("worker")).then(|| "join".to_string()));
        nodes.push(NodeRow {
            name: n.clone(),
            role,
            phase: s("phase"),
            state: s("state"),
            seconds: num(&format!("{n}'s seconds"), &secs)?,
            decision,
        });
    }
    let members: Value =
        serde_json::from_str(&m.members_json).context("etcdctl member list -w json")?;
    let Some(list) = members.get("members").and_then(Value::as_array) else {
        bail!("etcdctl member list -w json: no members");
    };
    let mut etcd_members = vec![];
    for x in list {
        let id = x
            .get("ID")
            .and_then(Value::as_u64)
            .context("etcdctl member list -w json: a member without its ID")?;
        etcd_members.push(Member {
            name: x.get("name").and_then(Value::as_str).map(str::to_string),
            id: format!("{id:x}"),
            peer_urls: x
                .get("peerURLs")
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
        });
    }
    let mut node_status = BTreeMap::new();
    for w in m.nodes_status.split_whitespace() {
        let Some((k, v)) = w.split_once('=') else {
            bail!("nodes status {w:?} is not NAME=STATUS");
        };
        node_status.insert(k.to_string(), v.to_string());
    }
    let serve = match &m.serve_url {
        None => None,
        Some(url) => Some(Serve {
            url: url.clone(),
            fleet: read_json(&state.join("fleet.json"))?,
            fleet_formed: read_json(&state.join("fleet-formed.json"))?,
        }),
    };
    Ok(DemoResult {
        nodes,
        vip_before: m.vip_before.clone(),
        vip_after: m.vip_after.clone(),
        failover_seconds: num("failover seconds", &m.failover_seconds)?,
        kubernetes: Kubernetes {
            server: m.server.clone(),
            kubeadm: m.kubeadm.clone(),
        },
        formation_seconds: num("formation seconds", &m.formation_seconds)?,
        kubeadm_inits: num("kubeadm inits", &m.inits)?,
        image_pulls: num("image pulls", &m.pulls)?,
        etcd_members,
        rebuild: Rebuild {
            node: m.rebuild.clone(),
            ok: m.rebuild_ok,
            seconds: num("rebuild seconds", &m.rebuild_seconds)?,
            decision: read(&decision_file(state, &m.rebuild))?.trim().to_string(),
        },
        registered_nodes: node_status.keys().cloned().collect(),
        node_status,
        state_dir: state.display().to_string(),
        serve,
        hostile: None,
    })
}

/// How often each of `names` logged a `kubeadm init on NAME` (its agent's log under STATE/logs); nodes that ran
/// none are left out.
pub fn inits_by_node(state: &Path, names: &[String]) -> Result<BTreeMap<String, u64>> {
    let mut inits = BTreeMap::new();
    for n in names {
        let log = read(&state.join(format!("logs/{n}.agent.log")))?;
        let c = log.matches(&format!("kubeadm init on {n}")).count() as u64;
        if c > 0 {
            inits.insert(n.clone(), c);
        }
    }
    Ok(inits)
}

/// The init-kill drill's record (the node stages --hostile): `names` are the masters then the workers; the second
/// master's and the first worker's armed kills are read from STATE/drills, every node's restarts from STATE/logs.
pub fn init_kill(
    state: &Path,
    at_kill: BTreeMap<String, u64>,
    stored: &str,
    names: &[String],
) -> Result<InitKill> {
    if names.len() < 4 {
        bail!("the init-kill drill needs 3 masters and a worker, got {names:?}");
    }
    let drill = |n: &str| -> Result<Value> {
        let mut v = read_json(&state.join(format!("drills/{n}.kubeadm-killed")))?;
        let Some(o) = v.as_object_mut() else {
            bail!("drills/{n}.kubeadm-killed is not a JSON object");
        };
        o.insert("node".to_string(), Value::String(n.to_string()));
        Ok(v)
    };
    let mut decisions = BTreeMap::new();
    for n in &names[..3] {
        decisions.insert(
            n.clone(),
            read(&decision_file(state, n))?.trim().to_string(),
        );
    }
    let mut restarts = BTreeMap::new();
    for n in names {
        let p = state.join(format!("logs/{n}.restarts"));
        restarts.insert(n.clone(), num(&p.display().to_string(), &read(&p)?)?);
    }
    Ok(InitKill {
        node: names[0].clone(),
        init_runs_at_kill: at_kill,
        stored_decision: stored.to_string(),
        init_killed_before_etcd: drill(&names[1])?,
        worker_join_killed: drill(&names[3])?,
        init_runs: inits_by_node(state, names)?,
        decisions,
        restarts,
    })
}

/// Writes `value` as pretty JSON to `path` atomically (model's write_atomic).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    kubeha_model::fsutil::write_atomic(path, text.as_bytes(), 0o644, true)
        .with_context(|| format!("writing {}", path.display()))
}

/// Adds the hostile drills to STATE/result.json.
pub fn add_hostile(state: &Path, hostile: Hostile) -> Result<()> {
    let p = state.join("result.json");
    let mut r: DemoResult =
        serde_json::from_str(&read(&p)?).with_context(|| format!("reading {}", p.display()))?;
    r.hostile = Some(hostile);
    write_json(&p, &r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kubeha-lab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn put(p: PathBuf, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn node(state: &Path, n: &str, role: &str, decision: Option<&str>) {
        put(
            state.join(format!("nodes/{n}/var/lib/kubeha/status.json")),
            &format!(r#"{{"role":"{role}","phase":"done","state":"done","step":null}}"#),
        );
        if let Some(d) = decision {
            put(decision_file(state, n), &format!("{d}\n"));
        }
        put(state.join(format!("logs/{n}.seconds")), "12.5\n");
        put(state.join(format!("logs/{n}.restarts")), "1\n");
        put(
            state.join(format!("logs/{n}.agent.log")),
            &format!("kubeadm init on {n}\nkubeadm init on {n}\n"),
        );
    }

    fn measured(names: &[&str]) -> Measured {
        Measured {
            vip_before: "m1".into(),
            vip_after: "m2".into(),
            failover_seconds: "3.2".into(),
            rebuild: "m1".into(),
            rebuild_ok: true,
            rebuild_seconds: "40.1".into(),
            members_json: r#"{"members":[{"ID":12345678901234567890,"name":"m1","peerURLs":["https://10.0.0.1:2380"]},{"ID":255,"name":"m2","peerURLs":["https://10.0.0.2:2380"]}]}"#.into(),
            nodes_status: "m1=Ready w1=NotReady ".into(),
            server: "v1.36.3".into(),
            kubeadm: "v1.36.3".into(),
            formation_seconds: "99.0".into(),
            inits: "1".into(),
            pulls: "0".into(),
            serve_url: Some("http://192.168.20.5:8080".into()),
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn result_reads_the_state_and_round_trips_through_the_checker() {
        let s = tmp("write-result");
        node(&s, "m1", "master", Some("init"));
        node(&s, "w1", "worker", None);
        // m1 was rebuilt: its first run's numbers stay its row.
        put(s.join("logs/m1.first-seconds"), "70.0\n");
        put(s.join("logs/m1.first-decision"), "init\n");
        put(decision_file(&s, "m1"), "join\n");
        put(s.join("fleet.json"), r#"{"nodes":[],"timeline":[]}"#);
        put(s.join("fleet-formed.json"), r#"{"vip_holder":"m1"}"#);
        let r = result(&s, &measured(&["m1", "w1"])).unwrap();
        assert_eq!(r.nodes[0].seconds, 70.0);
        assert_eq!(r.nodes[0].decision.as_deref(), Some("init"));
        assert_eq!(
            r.nodes[1].decision.as_deref(),
            Some("join"),
            "a worker joins"
        );
        assert_eq!(r.rebuild.decision, "join");
        assert_eq!(r.etcd_members[0].id, "ab54a98ceb1f0ad2");
        assert_eq!(r.etcd_members[1].id, "ff");
        assert_eq!(r.registered_nodes, ["m1", "w1"]);
        write_json(&s.join("result.json"), &r).unwrap();
        // The checker reads what we wrote (it fails it, on its own terms: two nodes are not the demo's five).
        let back = crate::demo::result::DemoResult::parse(
            &std::fs::read_to_string(s.join("result.json")).unwrap(),
        )
        .unwrap();
        assert!(crate::demo::result::check(&back, false).is_err());
        assert!(!s.join("result.json.tmp").exists());
        std::fs::remove_dir_all(&s).unwrap();
    }

    /// The checker's fixture (a passing `make test-demo` run's result.json) has this module's shape: read into these
    /// types and written again, it passes the checker with the same lines, and the summary prints it the same.
    #[test]
    fn the_checkers_fixture_round_trips_through_these_types() {
        use crate::demo::{result as checker, summary::summary};
        let text = include_str!("testdata/result.json");
        let written: DemoResult = serde_json::from_str(text).unwrap();
        assert!(written.hostile.is_some() && written.serve.is_some());
        let again = serde_json::to_string_pretty(&written).unwrap();
        let before = checker::DemoResult::parse(text).unwrap();
        let after = checker::DemoResult::parse(&again).unwrap();
        let lines = checker::check(&after, true).expect("the fixture passes");
        assert_eq!(lines.len(), 4);
        assert_eq!(Ok(lines), checker::check(&before, true));
        assert_eq!(summary(&after, "/o"), summary(&before, "/o"));
    }

    #[test]
    fn bad_numbers_are_refused_by_name_before_writing() {
        let s = tmp("write-bad");
        node(&s, "m1", "master", Some("init"));
        put(s.join("fleet.json"), "{}");
        put(s.join("fleet-formed.json"), "{}");
        let mut m = measured(&["m1"]);
        m.failover_seconds = String::new();
        let e = result(&s, &m).unwrap_err();
        assert!(e.to_string().contains("failover seconds"), "{e}");
        let mut m = measured(&["m1", "gone"]);
        m.serve_url = None;
        let e = result(&s, &m).unwrap_err();
        assert!(format!("{e:#}").contains("nodes/gone/"), "{e:#}");
        std::fs::remove_dir_all(&s).unwrap();
    }

    #[test]
    fn the_init_kill_record_and_add_hostile() {
        let s = tmp("write-hostile");
        let names: Vec<String> = ["m1", "m2", "m3", "w1"].map(String::from).to_vec();
        for (i, n) in names.iter().enumerate() {
            node(
                &s,
                n,
                if i < 3 { "master" } else { "worker" },
                (i < 3).then_some("join"),
            );
        }
        put(
            s.join("drills/m2.kubeadm-killed"),
            r#"{"verb":"init","etcd_manifest":true}"#,
        );
        put(s.join("drills/w1.kubeadm-killed"), r#"{"verb":"join"}"#);
        let k = init_kill(&s, [("m1".to_string(), 1)].into(), "init", &names).unwrap();
        assert_eq!(k.init_killed_before_etcd["node"], "m2");
        assert_eq!(k.init_killed_before_etcd["verb"], "init");
        assert_eq!(k.init_runs["m3"], 2);
        assert_eq!(k.restarts.len(), 4);
        put(s.join("fleet.json"), "{}");
        put(s.join("fleet-formed.json"), "{}");
        write_json(
            &s.join("result.json"),
            &result(&s, &measured(&["m1"])).unwrap(),
        )
        .unwrap();
        let waited = |node: Option<&str>| Waited {
            node: node.map(String::from),
            waiting: "no majority".into(),
            still_waiting: true,
            inits: 0,
            apiserver_manifest: node.map(|_| false),
        };
        add_hostile(
            &s,
            Hostile {
                kubeadm_killed_in_init: k,
                two_bootstraps: TwoBootstraps {
                    node: "m2".into(),
                    believed_designated: true,
                    decision: "init".into(),
                },
                partitioned_rebuild: waited(Some("m1")),
                kubeadm_killed_in_join: JoinKill {
                    node: "m1".into(),
                    member_when_killed: "learner".into(),
                    restarts: 2,
                },
                all_masters_reimaged: waited(None),
            },
        )
        .unwrap();
        let back = crate::demo::result::DemoResult::parse(
            &std::fs::read_to_string(s.join("result.json")).unwrap(),
        )
        .unwrap();
        assert!(back.hostile.is_some());
        std::fs::remove_dir_all(&s).unwrap();
    }
}
