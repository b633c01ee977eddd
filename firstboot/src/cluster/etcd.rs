//! Stacked etcd membership: list members, find and remove the stale member of a reimaged master.
//!
//! NOTE(controlplane): this talks to etcd's v3 JSON gateway (grpc-gateway: `POST /v3/cluster/member/list`, ...) over
//! HTTPS with a client certificate, through blocking reqwest + rustls, rather than the `etcd-client` crate. That crate
//! is tonic/gRPC: it needs `protoc` at build time and pulls a tokio runtime into a one-shot agent that otherwise
//! has none, and the handful of calls a rebuild needs are plain JSON. etcd serves the gateway under `/v3` from 3.4
//! (with `/v3beta` kept), under `/v3beta` in 3.3 and `/v3alpha` in 3.2 (kubeadm 1.11's etcd 3.2.18), so a 404
//! falls back to the older prefixes. uint64 fields (IDs) travel as JSON strings, as grpc-gateway writes them.
//!
//! Rebuild rule: a reimaged master (empty /var/lib/etcd) is still in the member list under its name or its peer URL
//! `https://IP:2380`. That member is removed before the master joins again (modern kubeadm would otherwise reuse
//! the member with an empty data dir and etcd would panic: kubernetes/kubernetes
//! PR #127491 makes kubeadm skip re-adding an existing peer URL, and etcd-io/etcd#20269 is the panic), but only if the remaining members keep
//! quorum without it; otherwise nothing is changed and the error says what to do.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use base64::Engine as _;
use kubeha_model::kube::ports::{ETCD_CLIENT, ETCD_PEER};
use kubeha_model::secrets::CertKey;
use serde::Deserialize;
use serde_json::{json, Value};

/// One etcd member, as the gateway returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    /// The member ID (hex in etcdctl's output, decimal here).
    #[serde(rename = "ID", deserialize_with = "de_u64")]
    pub id: u64,
    /// The name; empty for a member that was added but has not started yet.
    #[serde(default)]
    pub name: String,
    /// Peer URLs.
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    /// Client URLs; empty until the member starts.
    #[serde(rename = "clientURLs", default)]
    pub client_urls: Vec<String>,
    /// Raft learner.
    #[serde(rename = "isLearner", default)]
    pub is_learner: bool,
}

impl Member {
    /// Whether the member has started (an added member has no name and no client URLs until it does).
    pub fn started(&self) -> bool {
        !self.name.is_empty() && !self.client_urls.is_empty()
    }
}

fn de_u64<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("not a u64")),
        v => Err(serde::de::Error::custom(format!("not an ID: {v}"))),
    }
}

/// The peer URL etcd uses for a master.
pub fn peer_url(ip: Ipv4Addr) -> String {
    format!("https://{ip}:{ETCD_PEER}")
}

/// The client URL of a master's etcd.
pub fn client_url(ip: Ipv4Addr) -> String {
    format!("https://{ip}:{ETCD_CLIENT}")
}

/// A client for etcd's JSON gateway with a client certificate signed by the etcd CA.
pub struct EtcdClient {
    http: reqwest::blocking::Client,
    /// Client URLs to ask, in order.
    pub endpoints: Vec<String>,
}

const PREFIXES: [&str; 3] = ["/v3", "/v3beta", "/v3alpha"];

impl EtcdClient {
    /// Signs a one-day client certificate with the etcd CA and builds a client trusting only that CA.
    pub fn new(etcd_ca: &CertKey, endpoints: Vec<String>, timeout: Duration) -> Result<Self> {
        let (cert, key) = super::pki::etcd_client_cert(etcd_ca)?;
        let http = crate::retry::tls_client(&etcd_ca.cert, &cert, &key, timeout)?;
        Ok(EtcdClient { http, endpoints })
    }

    /// POSTs `body` to `path` (after the API prefix) on one endpoint.
    pub fn call(&self, endpoint: &str, path: &str, body: &Value) -> Result<Value> {
        let mut last = None;
        for prefix in PREFIXES {
            let url = format!("{}{prefix}{path}", endpoint.trim_end_matches('/'));
            log::debug!("etcd: POST {url}");
            let resp = self
                .http
                .post(&url)
                .json(body)
                .send()
                .with_context(|| format!("POST {url}"))?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                last = Some(anyhow!("POST {url}: 404"));
                continue;
            }
            let text = resp
                .text()
                .with_context(|| format!("reading the answer of {url}"))?;
            if !status.is_success() {
                bail!("POST {url}: {status}: {}", text.trim());
            }
            return serde_json::from_str(&text)
                .with_context(|| format!("parsing the answer of {url}"));
        }
        Err(last.unwrap_or_else(|| anyhow!("no endpoint")))
    }

    /// The member list from the first endpoint that answers; returns that endpoint too.
    pub fn member_list(&self) -> Result<(String, Vec<Member>)> {
        let mut errors = Vec::new();
        for ep in &self.endpoints {
            match self.call(ep, "/cluster/member/list", &json!({})) {
                Ok(v) => return Ok((ep.clone(), parse_members(&v)?)),
                Err(e) => errors.push(format!("{ep}: {e:#}")),
            }
        }
        bail!("no etcd member answered: {}", errors.join("; "))
    }

    /// Whether a member's etcd answers a status request on `client_url` (no quorum needed).
    pub fn healthy(&self, client_url: &str) -> bool {
        self.call(client_url, "/maintenance/status", &json!({}))
            .is_ok()
    }

    /// Removes a member by ID, asking `endpoint`.
    pub fn member_remove(&self, endpoint: &str, id: u64) -> Result<()> {
        self.call(
            endpoint,
            "/cluster/member/remove",
            &json!({ "ID": id.to_string() }),
        )
        .map(|_| ())
    }

    /// Adds a member with `peer_url`; returns the new member list.
    ///
    /// Retried while etcd answers "unhealthy cluster": its strict reconfiguration check refuses a change until every
    /// remaining member has been connected for a few seconds, which is never the case right after a member was
    /// removed or started (kubeadm retries the same way).
    pub fn member_add(&self, endpoint: &str, peer_url: &str) -> Result<Vec<Member>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match self.call(
                endpoint,
                "/cluster/member/add",
                &json!({ "peerURLs": [peer_url] }),
            ) {
                Ok(v) => return parse_members(&v),
                Err(e)
                    if e.to_string().contains("unhealthy cluster")
                        && std::time::Instant::now() < deadline =>
                {
                    log::info!("etcd refuses the member add for now ({e:#}); retrying");
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts one key (used by tests to fill a cluster).
    pub fn put(&self, endpoint: &str, key: &str, value: &str) -> Result<()> {
        let b = base64::engine::general_purpose::STANDARD;
        self.call(
            endpoint,
            "/kv/put",
            &json!({ "key": b.encode(key), "value": b.encode(value) }),
        )
        .map(|_| ())
    }

    /// Counts keys with a prefix (a linearizable read: it needs quorum).
    pub fn count_prefix(&self, endpoint: &str, prefix: &str) -> Result<u64> {
        let b = base64::engine::general_purpose::STANDARD;
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().context("empty prefix")? += 1;
        let v = self.call(
            endpoint,
            "/kv/range",
            &json!({ "key": b.encode(prefix), "range_end": b.encode(&end), "count_only": true }),
        )?;
        Ok(v.get("count")
            .and_then(|c| c.as_str().and_then(|s| s.parse().ok()).or(c.as_u64()))
            .unwrap_or(0))
    }
}

fn parse_members(v: &Value) -> Result<Vec<Member>> {
    let list = v.get("members").cloned().unwrap_or(Value::Array(vec![]));
    serde_json::from_value(list).context("parsing the etcd member list")
}

/// What a rebuild found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuild {
    /// This master is not in the member list: nothing to clean up.
    NotMember,
    /// The stale members (ID, name) were removed.
    Removed(Vec<(u64, String)>),
}

/// The members that stand for this master: same name, or same peer URL.
pub fn stale_members<'a>(members: &'a [Member], name: &str, ip: Ipv4Addr) -> Vec<&'a Member> {
    let purl = peer_url(ip);
    members
        .iter()
        .filter(|m| m.name == name || m.peer_urls.iter().any(|u| u == &purl))
        .collect()
}

/// Decides whether the stale members can go: after removing them, the healthy members among the rest must be a
/// majority of the rest. Pure, so the rule is tested on its own. `healthy` holds member IDs that answered.
pub fn check_removal(members: &[Member], stale: &[&Member], healthy: &BTreeSet<u64>) -> Result<()> {
    let stale_ids: BTreeSet<u64> = stale.iter().map(|m| m.id).collect();
    if let Some(m) = stale.iter().find(|m| healthy.contains(&m.id)) {
        bail!(
            "etcd member {} ({}) answers at {}: it is not stale. Its data directory is somewhere else than this \
             node's /var/lib/etcd; nothing was changed",
            m.name,
            m.id,
            m.client_urls.join(",")
        );
    }
    let rest: Vec<&Member> = members
        .iter()
        .filter(|m| !stale_ids.contains(&m.id))
        .collect();
    let voters: Vec<&&Member> = rest.iter().filter(|m| !m.is_learner).collect();
    let up = voters.iter().filter(|m| healthy.contains(&m.id)).count();
    let need = voters.len() / 2 + 1;
    if voters.is_empty() || up < need {
        let down: Vec<String> = voters
            .iter()
            .filter(|m| !healthy.contains(&m.id))
            .map(|m| {
                if m.name.is_empty() {
                    m.peer_urls.join(",")
                } else {
                    m.name.clone()
                }
            })
            .collect();
        bail!(
            "refusing to remove the stale etcd member {}: without it {} of {} remaining members answer and etcd \
             needs {} for quorum. Nothing was changed. Start the members that are down ({}) and run \
             kubeha-firstboot again; if they are lost for good, restore etcd from a snapshot by hand \
             (etcdctl snapshot restore, then --force-new-cluster) before rebuilding this master",
            stale.iter().map(|m| format!("{} ({:x})", m.name, m.id)).collect::<Vec<_>>().join(", "),
            up,
            voters.len(),
            need,
            down.join(", ")
        );
    }
    Ok(())
}

/// Removes this master's stale member(s) if quorum holds without them; changes nothing otherwise.
pub fn rebuild(client: &EtcdClient, name: &str, ip: Ipv4Addr) -> Result<Rebuild> {
    let (endpoint, members) = client.member_list()?;
    let stale = stale_members(&members, name, ip);
    if stale.is_empty() {
        return Ok(Rebuild::NotMember);
    }
    let healthy: BTreeSet<u64> = members
        .iter()
        .filter(|m| m.client_urls.iter().any(|u| client.healthy(u)))
        .map(|m| m.id)
        .collect();
    check_removal(&members, &stale, &healthy)?;
    let mut removed = Vec::new();
    for m in stale {
        log::info!(
            "removing stale etcd member {} ({:x}, {})",
            m.name,
            m.id,
            m.peer_urls.join(",")
        );
        client
            .member_remove(&endpoint, m.id)
            .with_context(|| format!("removing stale etcd member {} ({:x})", m.name, m.id))?;
        removed.push((m.id, m.name.clone()));
    }
    Ok(Rebuild::Removed(removed))
}

/// `--initial-cluster` for a member joining `members` (started members by name, plus `name` itself).
pub fn initial_cluster(members: &[Member], name: &str, ip: Ipv4Addr) -> String {
    let me = peer_url(ip);
    let mut parts: Vec<String> = members
        .iter()
        .filter(|m| !m.peer_urls.iter().any(|u| u == &me))
        .filter(|m| !m.name.is_empty())
        .flat_map(|m| m.peer_urls.iter().map(move |u| format!("{}={u}", m.name)))
        .collect();
    parts.push(format!("{name}={me}"));
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, name: &str, ip: &str, started: bool) -> Member {
        Member {
            id,
            name: if started { name.into() } else { String::new() },
            peer_urls: vec![format!("https://{ip}:2380")],
            client_urls: if started {
                vec![format!("https://{ip}:2379")]
            } else {
                vec![]
            },
            is_learner: false,
        }
    }

    #[test]
    fn removal_needs_quorum_without_the_stale_member() {
        let ms = vec![
            m(1, "m1", "10.0.0.1", true),
            m(2, "m2", "10.0.0.2", true),
            m(3, "m3", "10.0.0.3", true),
        ];
        for (healthy, ok, case) in [
            (vec![1, 2], true, "two of three up"),
            (vec![1], false, "only one of the remaining two up"),
            (vec![], false, "nothing up"),
            (vec![1, 2, 3], false, "the 'stale' member answers"),
        ] {
            let stale = stale_members(&ms, "m3", "10.0.0.3".parse().unwrap());
            assert_eq!(stale.len(), 1);
            let h: BTreeSet<u64> = healthy.into_iter().collect();
            assert_eq!(check_removal(&ms, &stale, &h).is_ok(), ok, "case: {case}");
        }
        // Found by peer URL when the name differs (an added member that never started has no name).
        let ms2 = vec![
            m(1, "m1", "10.0.0.1", true),
            m(2, "m2", "10.0.0.2", true),
            m(9, "", "10.0.0.3", false),
        ];
        assert_eq!(
            stale_members(&ms2, "m3", "10.0.0.3".parse().unwrap())[0].id,
            9
        );
        let e = check_removal(
            &ms,
            &stale_members(&ms, "m3", "10.0.0.3".parse().unwrap()),
            &[1].into(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Nothing was changed") && e.contains("m2"), "{e}");
    }

    #[test]
    fn members_parse_gateway_json() {
        let v: Value = serde_json::from_str(
            r#"{"header":{"cluster_id":"1"},"members":[{"ID":"12345678901234567890","name":"m1",
            "peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]},{"ID":"7","peerURLs":["https://10.0.0.2:2380"]}]}"#,
        )
        .unwrap();
        let ms = parse_members(&v).unwrap();
        assert_eq!(ms[0].id, 12345678901234567890);
        assert!(ms[0].started() && !ms[1].started());
        assert_eq!(
            initial_cluster(&ms, "m3", "10.0.0.3".parse().unwrap()),
            "m1=https://10.0.0.1:2380,m3=https://10.0.0.3:2380"
        );
    }
}
