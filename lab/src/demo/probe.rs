//! What the node stages ask while they run the nodes and the drills: a node's processes, the
//! served kickstart's sections, etcd's and the apiserver's answers read from their JSON, counts in the agents'
//! logs, and elapsed times.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The processes of a node: every process in one of the mount namespaces `mnts` (`mnt:[...]`, as
/// /proc/PID/ns/mnt reads) and every process in the cgroup subtree `cgroup` (its containers, which have mount
/// namespaces of their own); never `own` (the asking process).
pub fn node_pids(mnts: &str, cgroup: Option<&Path>, own: u32) -> Vec<u32> {
    let mnts: BTreeSet<&str> = mnts.split_whitespace().collect();
    let mut pids = BTreeSet::new();
    if let Ok(d) = std::fs::read_dir("/proc") {
        for e in d.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(ns) = std::fs::read_link(e.path().join("ns/mnt")) {
                if mnts.contains(ns.to_string_lossy().as_ref()) {
                    pids.insert(pid);
                }
            }
        }
    }
    if let Some(cg) = cgroup {
        cgroup_pids(cg, &mut pids);
    }
    pids.remove(&own);
    pids.into_iter().collect()
}

fn cgroup_pids(dir: &Path, pids: &mut BTreeSet<u32>) {
    if let Ok(t) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(t.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    if let Ok(d) = std::fs::read_dir(dir) {
        for e in d.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                cgroup_pids(&e.path(), pids);
            }
        }
    }
}

/// The body of a kickstart section: the lines after the line that starts with `head` (e.g. `%pre ` or
/// `%post --nochroot`) up to its `%end`.
pub fn ks_section(ks: &str, head: &str) -> Result<String> {
    let start = ks
        .find(&format!("\n{head}"))
        .with_context(|| format!("the kickstart has no {head:?} section"))?;
    let body = &ks[start + 1..];
    let body = &body[body.find('\n').map_or(body.len(), |i| i + 1)..];
    let end = body
        .find("%end\n")
        .with_context(|| format!("the kickstart's {head:?} section has no %end"))?;
    Ok(body[..end].to_string())
}

/// Writes a kickstart's `%pre` and `%post --nochroot` bodies to OUT/pre.sh and OUT/post-nochroot.sh (what the lab's
/// installer stand-in runs).
pub fn ks_sections(ks: &Path, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(ks).with_context(|| format!("reading {}", ks.display()))?;
    for (head, file) in [
        ("%pre ", "pre.sh"),
        ("%post --nochroot", "post-nochroot.sh"),
    ] {
        let body = ks_section(&text, head).with_context(|| ks.display().to_string())?;
        let p = out.join(file);
        std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn members(member_list: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(member_list)
        .ok()
        .and_then(|v| v.get("members")?.as_array().cloned())
        .unwrap_or_default()
}

fn started(m: &Value) -> bool {
    let has = |k: &str| match m.get(k) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
    has("name") && has("clientURLs")
}

/// The state of the etcd member with peer URL `peer` in `etcdctl member list -w json`: `learner`, `started`, or
/// `added, not started`; none when it is not listed (or the list is unreadable).
pub fn member_state(member_list: &str, peer: &str) -> Option<&'static str> {
    let m = members(member_list).into_iter().find(|m| {
        m.get("peerURLs")
            .and_then(Value::as_array)
            .is_some_and(|u| u.iter().any(|u| u.as_str() == Some(peer)))
    })?;
    Some(
        if m.get("isLearner").and_then(Value::as_bool) == Some(true) {
            "learner"
        } else if started(&m) {
            "started"
        } else {
            "added, not started"
        },
    )
}

/// How many members of `etcdctl member list -w json` have started (a name and client URLs).
pub fn started_members(member_list: &str) -> Result<usize> {
    let v: Value = serde_json::from_str(member_list).context("etcdctl member list -w json")?;
    let Some(ms) = v.get("members").and_then(Value::as_array) else {
        bail!("etcdctl member list -w json: no members");
    };
    Ok(ms.iter().filter(|m| started(m)).count())
}

/// `name=Ready|NotReady ...` (sorted, each followed by a space) for every Node of `kubectl get nodes -o json`.
pub fn nodes_status(nodes_json: &str) -> Result<String> {
    let v: Value = serde_json::from_str(nodes_json).context("kubectl get nodes -o json")?;
    let Some(items) = v.get("items").and_then(Value::as_array) else {
        bail!("kubectl get nodes -o json: no items");
    };
    let mut rows = vec![];
    for i in items {
        let name = i
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .context("kubectl get nodes -o json: a Node without its name")?;
        let ready: Vec<_> = i
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            .map(|c| c.get("status").and_then(Value::as_str))
            .collect();
        let s = if ready == [Some("True")] {
            "Ready"
        } else {
            "NotReady"
        };
        rows.push(format!("{name}={s}"));
    }
    rows.sort();
    Ok(rows.iter().map(|r| format!("{r} ")).collect())
}

/// The server's gitVersion from `kubectl version -o json`.
pub fn server_version(version_json: &str) -> Result<String> {
    let v: Value = serde_json::from_str(version_json).context("kubectl version -o json")?;
    v.pointer("/serverVersion/gitVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("kubectl version -o json: no serverVersion.gitVersion")
}

/// Who holds the VIP in kubeha serve's view (`kubeha status --json`): its `vip_holder`, `None` when nobody does.
pub fn vip_holder(fleet: &Path) -> Result<String> {
    let t =
        std::fs::read_to_string(fleet).with_context(|| format!("reading {}", fleet.display()))?;
    let v: Value =
        serde_json::from_str(&t).with_context(|| format!("reading {}", fleet.display()))?;
    Ok(v.get("vip_holder")
        .and_then(Value::as_str)
        .unwrap_or("None")
        .to_string())
}

/// Seconds from `from` to `to` (Unix times with fractions, as `date +%s.%N` prints them), one decimal.
pub fn elapsed(from: &str, to: &str) -> Result<String> {
    let p = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| anyhow::anyhow!("{s:?} is not a Unix time"))
    };
    Ok(format!("{:.1}", p(to)? - p(from)?))
}

/// Now as a Unix time with fractions.
pub fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBERS: &str = r#"{"header":{},"members":[
        {"ID":1,"name":"m2","peerURLs":["https://10.0.0.2:2380"],"clientURLs":["https://10.0.0.2:2379"]},
        {"ID":2,"peerURLs":["https://10.0.0.1:2380"],"isLearner":true},
        {"ID":3,"peerURLs":["https://10.0.0.3:2380"]}]}"#;

    #[test]
    fn member_states() {
        assert_eq!(
            member_state(MEMBERS, "https://10.0.0.2:2380"),
            Some("started")
        );
        assert_eq!(
            member_state(MEMBERS, "https://10.0.0.1:2380"),
            Some("learner")
        );
        assert_eq!(
            member_state(MEMBERS, "https://10.0.0.3:2380"),
            Some("added, not started")
        );
        assert_eq!(member_state(MEMBERS, "https://10.0.0.9:2380"), None);
        assert_eq!(member_state("garbage", "https://10.0.0.2:2380"), None);
        assert_eq!(started_members(MEMBERS).unwrap(), 1);
        assert!(started_members("{}").is_err());
    }

    #[test]
    fn node_statuses() {
        let j = r#"{"items":[
            {"metadata":{"name":"w1"},"status":{"conditions":[{"type":"Ready","status":"False"}]}},
            {"metadata":{"name":"m1"},"status":{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True"}]}},
            {"metadata":{"name":"m2"},"status":{}}]}"#;
        assert_eq!(
            nodes_status(j).unwrap(),
            "m1=Ready m2=NotReady w1=NotReady "
        );
        assert!(nodes_status("[]").is_err());
    }

    #[test]
    fn kickstart_sections() {
        let ks = "text\n%pre --log=/tmp/pre.log\necho pre\n%end\n\n%post --nochroot --log=x\necho post\nexit 0\n%end\n%post\nchroot\n%end\n";
        assert_eq!(ks_section(ks, "%pre ").unwrap(), "echo pre\n");
        assert_eq!(
            ks_section(ks, "%post --nochroot").unwrap(),
            "echo post\nexit 0\n"
        );
        assert!(ks_section(ks, "%packages").is_err());
        assert!(ks_section("x\n%pre \necho\n", "%pre ").is_err());
    }

    #[test]
    fn versions_holders_and_times() {
        assert_eq!(
            server_version(r#"{"serverVersion":{"gitVersion":"v1.36.3"}}"#).unwrap(),
            "v1.36.3"
        );
        assert!(server_version("{}").is_err());
        assert_eq!(elapsed("100.25", "103.5").unwrap(), "3.2");
        assert!(elapsed("x", "1").is_err());
        assert!(now().parse::<f64>().unwrap() > 1.7e9);
    }

    #[test]
    fn own_pid_is_never_a_node_pid() {
        let me = std::process::id();
        let mine = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let pids = node_pids(&mine.to_string_lossy(), None, me);
        assert!(!pids.contains(&me));
        assert!(pids.contains(&1) || !pids.is_empty());
    }
}
