//! The demo's closing table (stage 6/6 of `make demo`, `kubeha-lab summary`): the fleet as `kubeha serve` saw it,
//! one row per node the lab powered on, then the drills' numbers from result.json.

use super::result::{list, opt, DemoResult};

/// A part of result.json the summary prints: an error names it when it is absent (or null).
fn need<'a, T>(x: &'a Option<T>, key: &str) -> Result<&'a T, String> {
    x.as_ref()
        .ok_or_else(|| format!("result.json has no {key}"))
}

/// The summary's lines; `out` is the demo's output directory (its artifacts are named under it). An error names
/// the part of result.json that is missing (a run without `kubeha serve` has no fleet to show).
pub fn summary(r: &DemoResult, out: &str) -> Result<Vec<String>, String> {
    let k = &r.kubernetes;
    let s = need(&r.serve, "serve: the demo installs through kubeha serve")?;
    let f = need(&s.fleet, "serve.fleet (kubeha status --json)")?;
    for (x, key) in [
        (&r.formation_seconds, "formation_seconds"),
        (&r.kubeadm_inits, "kubeadm_inits"),
        (&r.image_pulls, "image_pulls"),
        (&r.failover_seconds, "failover_seconds"),
    ] {
        need(x, key)?;
    }
    let rows = need(&f.nodes, "serve.fleet.nodes")?;
    let timeline = need(&f.timeline, "serve.fleet.timeline")?;
    let vip_before = need(&r.vip_before, "vip_before")?;
    let vip_after = need(&r.vip_after, "vip_after")?;
    let rb = need(&r.rebuild, "rebuild")?;
    let etcd_members = need(&r.etcd_members, "etcd_members")?;
    let mut lines = vec![
        format!(
            "   Kubernetes {} (API server through the VIP; kubeadm/kubelet/kubectl {}, built by make k8s)",
            opt(&k.server),
            opt(&k.kubeadm)
        ),
        // The fleet as kubeha serve saw it: every row is what the node's installer and agent reported to the server.
        format!(
            "   the fleet at {} (kubeha status --json), the nodes the lab powered on:",
            opt(&s.url)
        ),
        format!(
            "   {:<14} {:<7} {:<18} {:<15} {:<10} {:<9} {:<9} {:>6}  Node",
            "node", "role", "mac", "ip", "phase", "decision", "installed", "agent"
        ),
    ];
    let or_dash = |x: &Option<String>| match x.as_deref() {
        None | Some("") => "-".to_string(),
        Some(v) => v.to_string(),
    };
    let mut off = Vec::new();
    for row in rows {
        let Some(node) = r.nodes.iter().find(|n| n.name == row.name) else {
            off.push(row.name.clone());
            continue;
        };
        let phase = format!("{}/{}", or_dash(&row.phase), or_dash(&row.state));
        lines.push(format!(
            "   {:<14} {:<7} {:<18} {:<15} {:<10} {:<9} {:<9} {:>5}s  {}",
            row.name,
            opt(&row.role),
            or_dash(&row.mac),
            or_dash(&row.ip),
            phase,
            or_dash(&row.decision),
            opt(&row.installed),
            opt(&node.seconds),
            r.node_status
                .get(&row.name)
                .map_or("absent", String::as_str)
        ));
    }
    if !off.is_empty() {
        lines.push(format!(
            "   not powered on in the lab (cluster.toml has them, serve waits for their network boot): {}",
            off.join(", ")
        ));
    }
    let em = f.etcd_members.as_ref();
    let members = em.and_then(|e| e.members.as_deref()).unwrap_or_default();
    lines.push(format!(
        "   serve's view of the control plane: VIP holder (last said) {}; etcd members {} (reported by {})",
        or_dash(&f.vip_holder),
        if members.is_empty() { "-".to_string() } else { list(members) },
        opt(&em.and_then(|e| e.reported_by.clone())),
    ));
    let installs = timeline
        .iter()
        .filter(|e| e.what.starts_with("installed"))
        .count();
    lines.push(format!(
        "   installs reported to serve: {installs}; events in its timeline: {}",
        timeline.len()
    ));
    lines.push(String::new());
    lines.push(format!(
        "   agent start to the last node joined: {} s; kubeadm init ran {} time(s); image pulls by the nodes: {}",
        opt(&r.formation_seconds),
        opt(&r.kubeadm_inits),
        opt(&r.image_pulls)
    ));
    lines.push(format!(
        "   VIP holder before the drill: {vip_before}, after: {vip_after}; failover {} s",
        opt(&r.failover_seconds)
    ));
    lines.push(format!(
        "   rebuild drill: {} reimaged, decided to {}, rejoined in {} s (ok: {})",
        opt(&rb.node),
        opt(&rb.decision),
        opt(&rb.seconds),
        opt(&rb.ok)
    ));
    lines.push(format!(
        "   etcd members after the rebuild: {}",
        list(etcd_members)
    ));
    let status: Vec<String> = r
        .node_status
        .iter()
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
    lines.push(format!(
        "   Nodes (kubectl get nodes through the VIP): {}",
        status.join(", ")
    ));
    lines.push(format!(
        "   artifacts: {out}/bundle (bundle), {out}/media/kubeha.iso, {out}/media/pxe, {out}/secrets.toml, {out}/nodes/"
    ));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_summary() {
        let r = DemoResult::parse(include_str!("testdata/result.json")).unwrap();
        let lines = summary(&r, "/tmp/out").unwrap();
        assert_eq!(
            lines,
            [
                "   Kubernetes v1.36.3 (API server through the VIP; kubeadm/kubelet/kubectl v1.36.3, built by make k8s)",
                "   the fleet at http://192.168.20.5:8080 (kubeha status --json), the nodes the lab powered on:",
                "   node           role    mac                ip              phase      decision  installed  agent  Node",
                "   k8s-master01   master  52:54:00:a8:14:14  192.168.20.20   done/ok    join      true       72.4s  Ready",
                "   k8s-master02   master  52:54:00:a8:14:15  192.168.20.21   done/ok    init      true       31.9s  Ready",
                "   k8s-master03   master  52:54:00:a8:14:16  192.168.20.22   done/ok    join      true      114.9s  Ready",
                "   k8s-node01     worker  52:54:00:a8:14:1e  192.168.20.30   done/ok    -         true        1.8s  Ready",
                "   k8s-node02     worker  52:54:00:a8:14:1f  192.168.20.31   done/ok    -         true      149.5s  Ready",
                "   not powered on in the lab (cluster.toml has them, serve waits for their network boot): k8s-node03, k8s-node04, k8s-node05, k8s-node06, k8s-node07, k8s-node08",
                "   serve's view of the control plane: VIP holder (last said) k8s-master02; etcd members k8s-master01, k8s-master02, k8s-master03 (reported by k8s-master01)",
                "   installs reported to serve: 6; events in its timeline: 96",
                "",
                "   agent start to the last node joined: 168.1 s; kubeadm init ran 3 time(s); image pulls by the nodes: 0",
                "   VIP holder before the drill: k8s-master02, after: k8s-master01; failover 4.5 s",
                "   rebuild drill: k8s-master01 reimaged, decided to join, rejoined in 17.9 s (ok: true)",
                "   etcd members after the rebuild: k8s-master03 (85a7dca0269a9a9a), k8s-master02 (a329456cf6c18e40), k8s-master01 (c5aef3262755998e)",
                "   Nodes (kubectl get nodes through the VIP): k8s-master01 Ready, k8s-master02 Ready, k8s-master03 Ready, k8s-node01 Ready, k8s-node02 Ready",
                "   artifacts: /tmp/out/bundle (bundle), /tmp/out/media/kubeha.iso, /tmp/out/media/pxe, /tmp/out/secrets.toml, /tmp/out/nodes/",
            ]
        );
    }

    #[test]
    fn a_run_without_serve_has_no_summary() {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("testdata/result.json")).unwrap();
        v.as_object_mut().unwrap().remove("serve");
        let r = DemoResult::parse(&v.to_string()).unwrap();
        assert_eq!(
            summary(&r, "/o").unwrap_err(),
            "result.json has no serve: the demo installs through kubeha serve"
        );
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("testdata/result.json")).unwrap();
        v["serve"]["fleet"]
            .as_object_mut()
            .unwrap()
            .remove("timeline");
        let r = DemoResult::parse(&v.to_string()).unwrap();
        assert_eq!(
            summary(&r, "/o").unwrap_err(),
            "result.json has no serve.fleet.timeline"
        );
    }
}
