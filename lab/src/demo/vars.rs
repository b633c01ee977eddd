//! What cluster.sh (the demo's node stages) reads from the cluster model and from a node agent: the cluster's
//! names, addresses and bundle facts as bash assignments (`kubeha-lab demo-vars`, read through the model's own
//! types: the one schema both sides read), and a node's status.json as one line (`kubeha-lab node-status`).

use anyhow::{bail, Context, Result};
use kubeha_model::bundle::BundleManifest;
use kubeha_model::cluster::Cluster;
use kubeha_model::node::NodeConfig;
use std::fmt::Write as _;
use std::path::Path;

/// A word as bash reads it back unchanged (Python's `shlex.quote`): bare when it is only safe characters, else in
/// single quotes with each `'` written as `'"'"'`.
pub fn sh_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// The node's MAC as the lab sets it on eth0 (lower case, `:`-separated).
fn mac(m: &str) -> String {
    m.to_ascii_lowercase().replace('-', ":")
}

/// The bash assignments cluster.sh evals: MASTERS, WORKERS_ (the first `workers` workers), IPS and MACS by name,
/// VIP, LBPORT, PREFIX, K8S, KHD_MASTERS (`name=ip,...`), EL, BASE_REPO_NAMES and BUNDLE_PATH (the one bundle path
/// every node config names). The demo wants 3 masters, and a node config for every node (a master's with its
/// control-plane keys).
pub fn demo_vars(cluster: &Path, nodes: &Path, workers: usize, bundle: &Path) -> Result<String> {
    let text = std::fs::read_to_string(cluster)
        .with_context(|| format!("cluster.sh: reading {}", cluster.display()))?;
    let c = Cluster::parse(&text, &cluster.display().to_string())
        .with_context(|| format!("cluster.sh: {}", cluster.display()))?;
    if c.masters.len() != 3 {
        bail!(
            "cluster.sh: {}: the demo wants 3 masters, found {}",
            cluster.display(),
            c.masters.len()
        );
    }
    let ms = &c.masters;
    let ws = &c.workers[..workers.min(c.workers.len())];
    let all: Vec<_> = ms.iter().chain(ws).collect();
    let names = |v: &[kubeha_model::cluster::Node]| {
        v.iter()
            .map(|n| sh_quote(&n.name))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    writeln!(out, "MASTERS=({})", names(ms))?;
    writeln!(out, "WORKERS_=({})", names(ws))?;
    let ips: Vec<_> = all
        .iter()
        .map(|n| format!("[{}]={}", sh_quote(&n.name), sh_quote(&n.ip.to_string())))
        .collect();
    writeln!(out, "declare -A IPS=({})", ips.join(" "))?;
    let macs: Vec<_> = all
        .iter()
        .filter_map(|n| {
            let m = n.mac.as_deref()?;
            Some(format!("[{}]={}", sh_quote(&n.name), sh_quote(&mac(m))))
        })
        .collect();
    writeln!(out, "declare -A MACS=({})", macs.join(" "))?;
    writeln!(
        out,
        "VIP={} LBPORT={} PREFIX={}",
        sh_quote(&c.endpoint.vip.to_string()),
        c.endpoint.port,
        c.networking.node_prefix
    )?;
    writeln!(
        out,
        "K8S={}",
        sh_quote(&c.cluster.kubernetes_version.to_string())
    )?;
    let khd: Vec<_> = ms.iter().map(|m| format!("{}={}", m.name, m.ip)).collect();
    writeln!(out, "KHD_MASTERS={}", sh_quote(&khd.join(",")))?;
    let b = BundleManifest::load(bundle)
        .with_context(|| format!("cluster.sh: {}/bundle.toml", bundle.display()))?;
    writeln!(out, "EL={}", b.profile.el)?;
    let base: Vec<_> = b
        .profile
        .repos
        .iter()
        .filter(|r| r.base)
        .map(|r| sh_quote(&r.name))
        .collect();
    writeln!(out, "BASE_REPO_NAMES=({})", base.join(" "))?;
    let mut path: Option<String> = None;
    for (i, n) in all.iter().enumerate() {
        let p = nodes.join(format!("{}.toml", n.name));
        if !p.is_file() {
            bail!(
                "cluster.sh: no node config {} (kubeha node-config makes it)",
                p.display()
            );
        }
        let nc = NodeConfig::load(&p).with_context(|| format!("cluster.sh: {}", p.display()))?;
        if i < ms.len() && nc.control_plane.is_none() {
            bail!(
                "cluster.sh: {} is a master's but carries no [control-plane] keys",
                p.display()
            );
        }
        match &path {
            Some(q) if *q != nc.bundle.path => {
                bail!("cluster.sh: the node configs disagree on bundle.path")
            }
            _ => path = Some(nc.bundle.path.clone()),
        }
    }
    writeln!(
        out,
        "BUNDLE_PATH={}",
        sh_quote(path.as_deref().unwrap_or_default())
    )?;
    Ok(out)
}

/// A node's status.json (the agent's, `model::report`'s shape) as cluster.sh reads it: `state phase step error`
/// (each `-` when absent, the error on one line), or `none - - -` when there is no readable status yet; with
/// `waiting`, only why a running step waits (nothing when it does not).
pub fn node_status(status_json: &Path, waiting: bool) -> String {
    if waiting {
        let v = read_status(status_json);
        return v
            .and_then(|v| status_field(&v, "waiting"))
            .unwrap_or_default();
    }
    status_fields(status_json).join(" ")
}

/// The status.json's `state`, `phase`, `step` and `error` ([`node_status`]'s words, for the lab's own loops).
pub fn status_fields(status_json: &Path) -> [String; 4] {
    let Some(v) = read_status(status_json) else {
        return ["none", "-", "-", "-"].map(String::from);
    };
    ["state", "phase", "step", "error"]
        .map(|k| status_field(&v, k).unwrap_or_else(|| "-".to_string()))
}

fn read_status(status_json: &Path) -> Option<serde_json::Value> {
    std::fs::read(status_json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// A non-empty string field, on one line.
fn status_field(v: &serde_json::Value, k: &str) -> Option<String> {
    match v.get(k)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.replace('\n', " ")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_shlex() {
        for (i, want) in [
            ("m1", "m1"),
            ("192.168.20.21", "192.168.20.21"),
            ("a=b,c", "a=b,c"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", "'it'\"'\"'s'"),
            ("$(x)", "'$(x)'"),
        ] {
            assert_eq!(sh_quote(i), want, "{i:?}");
        }
    }

    #[test]
    fn status_lines() {
        let d = std::env::temp_dir().join(format!("kubeha-lab-status-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("status.json");
        assert_eq!(node_status(&p, false), "none - - -");
        assert_eq!(node_status(&p, true), "");
        std::fs::write(
            &p,
            r#"{"state":"failed","phase":"cluster","step":null,"error":"a\nb","waiting":"peers\ndown"}"#,
        )
        .unwrap();
        assert_eq!(node_status(&p, false), "failed cluster - a b");
        assert_eq!(node_status(&p, true), "peers down");
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(node_status(&p, false), "none - - -");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn vars_of_the_default_cluster() {
        let d = std::env::temp_dir().join(format!("kubeha-lab-vars-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let c = d.join("cluster.toml");
        std::fs::write(&c, kubeha_model::cluster::DEFAULT_CLUSTER_TOML).unwrap();
        // No bundle: the error names its bundle.toml, after the cluster itself was read.
        let e = demo_vars(&c, &d, 2, &d.join("bundle")).unwrap_err();
        assert!(format!("{e:#}").contains("bundle.toml"), "{e:#}");
        // Five masters: refused by name.
        let four = kubeha_model::cluster::DEFAULT_CLUSTER_TOML.to_string()
            + "\n[[masters]]\nname = \"m4\"\nip = \"192.168.20.98\"\n"
            + "\n[[masters]]\nname = \"m5\"\nip = \"192.168.20.99\"\n";
        std::fs::write(&c, four).unwrap();
        let e = demo_vars(&c, &d, 2, &d).unwrap_err();
        assert!(
            format!("{e:#}").contains("the demo wants 3 masters"),
            "{e:#}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
