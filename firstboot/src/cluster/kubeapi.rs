//! The few Kubernetes API calls the agent makes itself, as plain HTTPS REST with a client certificate the agent
//! signs with the cluster CA (`O=system:masters`): deleting a reimaged master's stale Node object before it joins.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use reqwest::blocking::Client;

use crate::retry::tls_client;

/// A cluster-admin API client for `server` (`https://VIP:16443`).
pub struct KubeApi {
    http: Client,
    server: String,
}

/// What happened to a Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// It existed and was deleted.
    Yes,
    /// There was none.
    NotFound,
}

impl KubeApi {
    /// Signs a one-day `system:masters` client certificate with the cluster CA.
    pub fn new(server: &str, ca_cert: &str, ca_key: &str, timeout: Duration) -> Result<Self> {
        let (cert, key) = super::pki::admin_client_cert(ca_cert, ca_key)?;
        Ok(KubeApi {
            http: tls_client(ca_cert, &cert, &key, timeout)?,
            server: server.trim_end_matches('/').to_string(),
        })
    }

    /// `GET path`: true on 200, false on 404.
    pub fn exists(&self, path: &str) -> Result<bool> {
        let url = format!("{}{path}", self.server);
        let r = self
            .http
            .get(&url)
            .send()
            .with_context(|| format!("GET {url}"))?;
        match r.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => bail!("GET {url}: {s}"),
        }
    }

    /// `DELETE /api/v1/nodes/NAME`.
    pub fn delete_node(&self, name: &str) -> Result<Deleted> {
        let url = format!("{}/api/v1/nodes/{name}", self.server);
        log::info!("deleting Node {name}: DELETE {url}");
        let r = self
            .http
            .delete(&url)
            .send()
            .with_context(|| format!("DELETE {url}"))?;
        match r.status().as_u16() {
            200 | 202 => Ok(Deleted::Yes),
            404 => Ok(Deleted::NotFound),
            s => bail!("DELETE {url}: {s}: {}", r.text().unwrap_or_default().trim()),
        }
    }
}
