//! What the demo's node stages ([`super::cluster`]) read from the cluster model and from a node agent: the cluster's
//! names, addresses and bundle facts ([`Facts`], read through the model's own types: the one schema both sides
//! read), and a node's status.json ([`status_fields`], [`waiting`]).

use anyhow::{bail, Context, Result};
use kubeha_model::bundle::BundleManifest;
use kubeha_model::cluster::Cluster;
use kubeha_model::node::NodeConfig;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

/// The node's MAC as the lab sets it on eth0 (lower case, `:`-separated).
fn mac(m: &str) -> String {
    m.to_ascii_lowercase().replace('-', ":")
}

/// What the node stages need of the cluster, its node configs and the bundle.
#[derive(Debug, Clone)]
pub struct Facts {
    pub masters: Vec<String>,
    /// The first `workers` workers of the cluster.
    pub workers: Vec<String>,
    /// Every node's address (masters and the workers above).
    pub ips: BTreeMap<String, Ipv4Addr>,
    /// Every node's MAC that has one (lower case, `:`-separated).
    pub macs: BTreeMap<String, String>,
    pub vip: Ipv4Addr,
    /// The load balancer's port on the VIP.
    pub lb_port: u16,
    /// The nodes' network prefix length.
    pub prefix: u8,
    /// The cluster's Kubernetes version (without `v`).
    pub k8s: String,
    /// `name=ip,...` of the masters (the adapters' KHD_MASTERS).
    pub khd_masters: String,
    /// The bundle profile's EL release.
    pub el: u8,
    /// The profile's base repos (`base = true`).
    pub base_repos: Vec<String>,
    /// The one bundle path every node config names.
    pub bundle_path: String,
}

impl Facts {
    /// Reads them; the demo wants 3 masters, and a node config for every node (a master's with its control-plane
    /// keys), all naming one bundle path.
    pub fn load(cluster: &Path, nodes: &Path, workers: usize, bundle: &Path) -> Result<Facts> {
        let text = std::fs::read_to_string(cluster)
            .with_context(|| format!("demo: reading {}", cluster.display()))?;
        let c = Cluster::parse(&text, &cluster.display().to_string())
            .with_context(|| format!("demo: {}", cluster.display()))?;
        if c.masters.len() != 3 {
            bail!(
                "demo: {}: the demo wants 3 masters, found {}",
                cluster.display(),
                c.masters.len()
            );
        }
        let ms = &c.masters;
        let ws = &c.workers[..workers.min(c.workers.len())];
        let all: Vec<_> = ms.iter().chain(ws).collect();
        let b = BundleManifest::load(bundle)
            .with_context(|| format!("demo: {}/bundle.toml", bundle.display()))?;
        let mut path: Option<String> = None;
        for (i, n) in all.iter().enumerate() {
            let p = nodes.join(format!("{}.toml", n.name));
            if !p.is_file() {
                bail!(
                    "demo: no node config {} (kubeha node-config makes it)",
                    p.display()
                );
            }
            let nc = NodeConfig::load(&p).with_context(|| format!("demo: {}", p.display()))?;
            if i < ms.len() && nc.control_plane.is_none() {
                bail!(
                    "demo: {} is a master's but carries no [control-plane] keys",
                    p.display()
                );
            }
            match &path {
                Some(q) if *q != nc.bundle.path => {
                    bail!("demo: the node configs disagree on bundle.path")
                }
                _ => path = Some(nc.bundle.path.clone()),
            }
        }
        Ok(Facts {
            masters: ms.iter().map(|n| n.name.clone()).collect(),
            workers: ws.iter().map(|n| n.name.clone()).collect(),
            ips: all.iter().map(|n| (n.name.clone(), n.ip)).collect(),
            macs: all
                .iter()
                .filter_map(|n| Some((n.name.clone(), mac(n.mac.as_deref()?))))
                .collect(),
            vip: c.endpoint.vip,
            lb_port: c.endpoint.port,
            prefix: c.networking.node_prefix,
            k8s: c.cluster.kubernetes_version.to_string(),
            khd_masters: ms
                .iter()
                .map(|m| format!("{}={}", m.name, m.ip))
                .collect::<Vec<_>>()
                .join(","),
            el: b.profile.el,
            base_repos: b
                .profile
                .repos
                .iter()
                .filter(|r| r.base)
                .map(|r| r.name.clone())
                .collect(),
            bundle_path: path.unwrap_or_default(),
        })
    }

    /// Masters, then workers.
    pub fn all(&self) -> Vec<String> {
        self.masters.iter().chain(&self.workers).cloned().collect()
    }

    /// A node's address (every name the stages use is one of [`Facts::all`]).
    pub fn ip(&self, name: &str) -> Ipv4Addr {
        self.ips[name]
    }
}

/// Why a node's running step waits (status.json's `waiting`, on one line), or nothing.
pub fn waiting(status_json: &Path) -> Option<String> {
    read_status(status_json).and_then(|v| status_field(&v, "waiting"))
}

/// A node's status.json (the agent's, `model::report`'s shape): its `state`, `phase`, `step` and `error` (each `-`
/// when absent, the error on one line), or `none - - -` when there is no readable status yet.
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
    fn status_lines() {
        let d = std::env::temp_dir().join(format!("kubeha-lab-status-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("status.json");
        assert_eq!(status_fields(&p).join(" "), "none - - -");
        assert_eq!(waiting(&p), None);
        std::fs::write(
            &p,
            r#"{"state":"failed","phase":"cluster","step":null,"error":"a\nb","waiting":"peers\ndown"}"#,
        )
        .unwrap();
        assert_eq!(status_fields(&p).join(" "), "failed cluster - a b");
        assert_eq!(waiting(&p).as_deref(), Some("peers down"));
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(status_fields(&p).join(" "), "none - - -");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn vars_of_the_default_cluster() {
        let d = std::env::temp_dir().join(format!("kubeha-lab-vars-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let c = d.join("cluster.toml");
        std::fs::write(&c, kubeha_model::cluster::DEFAULT_CLUSTER_TOML).unwrap();
        // No bundle: the error names its bundle.toml, after the cluster itself was read.
        let e = Facts::load(&c, &d, 2, &d.join("bundle")).unwrap_err();
        assert!(format!("{e:#}").contains("bundle.toml"), "{e:#}");
        // Five masters: refused by name.
        let four = kubeha_model::cluster::DEFAULT_CLUSTER_TOML.to_string()
            + "\n[[masters]]\nname = \"m4\"\nip = \"192.168.20.98\"\n"
            + "\n[[masters]]\nname = \"m5\"\nip = \"192.168.20.99\"\n";
        std::fs::write(&c, four).unwrap();
        let e = Facts::load(&c, &d, 2, &d).unwrap_err();
        assert!(
            format!("{e:#}").contains("the demo wants 3 masters"),
            "{e:#}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
