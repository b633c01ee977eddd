//! The real [`ClusterEnv`]: TCP and HTTPS probes, etcd's JSON gateway and the Kubernetes API.

use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use kubeha_model::cluster::Node;
use kubeha_model::NodeConfig;

use super::attest::{self, Attestation, Responder, State as AttestState};
use super::decide::ClusterEnv;
use super::etcd::{self, EtcdClient, Member, Rebuild};
use super::kubeapi::{Deleted, KubeApi};

/// Probes and clients over the network, each bounded by `timeout`; and this master's attestation listener.
#[derive(Clone)]
pub struct NetEnv {
    /// Timeout of one connection or request.
    pub timeout: Duration,
    responder: Arc<Mutex<Option<Responder>>>,
}

impl NetEnv {
    /// With a timeout per connection or request.
    pub fn new(timeout: Duration) -> NetEnv {
        NetEnv {
            timeout,
            responder: Arc::new(Mutex::new(None)),
        }
    }
}

impl Default for NetEnv {
    fn default() -> Self {
        NetEnv::new(Duration::from_secs(3))
    }
}

fn attest_key(cfg: &NodeConfig) -> Result<[u8; 32]> {
    let cp = cfg
        .control_plane
        .as_ref()
        .context("the node config has no [control-plane] keys (certificate key)")?;
    Ok(attest::key(&cp.certificate_key))
}

impl NetEnv {
    fn etcd(&self, cfg: &NodeConfig, me: &Node) -> Result<EtcdClient> {
        let cp = cfg
            .control_plane
            .as_ref()
            .context("the node config has no [control-plane] keys (etcd CA)")?;
        let eps = cfg
            .cluster
            .masters
            .iter()
            .filter(|m| m.name != me.name)
            .map(|m| etcd::client_url(m.ip))
            .collect();
        EtcdClient::new(&cp.etcd_ca, eps, self.timeout)
    }
}

impl NetEnv {
    /// The API through VIP:16443 as `system:masters` (a client certificate signed with the cluster CA).
    fn api(&self, cfg: &NodeConfig) -> Result<KubeApi> {
        let cp = cfg
            .control_plane
            .as_ref()
            .context("the node config has no [control-plane] keys (cluster CA key)")?;
        let server = format!("https://{}", cfg.cluster.control_plane_endpoint());
        KubeApi::new(&server, &cfg.join.ca_cert, &cp.ca_key, self.timeout)
    }
}

impl ClusterEnv for NetEnv {
    fn tcp_open(&self, addr: SocketAddrV4) -> bool {
        TcpStream::connect_timeout(&SocketAddr::V4(addr), self.timeout).is_ok()
    }

    fn apiserver_answers(&self, cfg: &NodeConfig, addr: SocketAddrV4) -> bool {
        let Ok(http) = crate::retry::tls_client(&cfg.join.ca_cert, "", "", self.timeout) else {
            return false;
        };
        match http.get(format!("https://{addr}/readyz")).send() {
            Ok(r) => {
                log::debug!("https://{addr}/readyz: {}", r.status());
                true
            }
            Err(e) => {
                log::debug!("https://{addr}/readyz: {e}");
                false
            }
        }
    }

    fn etcd_members(&self, cfg: &NodeConfig, me: &Node) -> Result<Vec<Member>> {
        Ok(self.etcd(cfg, me)?.member_list()?.1)
    }

    fn etcd_rebuild(&self, cfg: &NodeConfig, me: &Node) -> Result<Rebuild> {
        etcd::rebuild(&self.etcd(cfg, me)?, &me.name, me.ip)
    }

    fn etcd_add(&self, cfg: &NodeConfig, me: &Node) -> Result<Vec<Member>> {
        let c = self.etcd(cfg, me)?;
        let (ep, members) = c.member_list()?;
        let purl = etcd::peer_url(me.ip);
        if members.iter().any(|m| m.peer_urls.contains(&purl)) {
            return Ok(members);
        }
        c.member_add(&ep, &purl)
    }

    fn delete_node(&self, cfg: &NodeConfig, name: &str) -> Result<Deleted> {
        self.api(cfg)?.delete_node(name)
    }

    fn api_exists(&self, cfg: &NodeConfig, path: &str) -> Result<bool> {
        self.api(cfg)?.exists(path)
    }

    fn attest(&self, cfg: &NodeConfig, peer: &Node) -> Result<Attestation> {
        let addr = SocketAddrV4::new(peer.ip, attest::PORT);
        attest::ask(&attest_key(cfg)?, addr, &peer.name, self.timeout)
    }

    fn set_attestation(
        &self,
        cfg: &NodeConfig,
        me: &Node,
        state: Option<(AttestState, String)>,
    ) -> Result<()> {
        let mut slot = self
            .responder
            .lock()
            .map_err(|_| anyhow::anyhow!("attestation listener lock poisoned"))?;
        match (state, slot.as_ref()) {
            (None, _) => *slot = None,
            (Some((st, d)), Some(r)) => r.set(st, &d),
            (Some((st, d)), None) => {
                let bind = SocketAddrV4::new(me.ip, attest::PORT);
                *slot = Some(Responder::start(attest_key(cfg)?, bind, &me.name, st, &d)?);
            }
        }
        Ok(())
    }
}
