//! Where a repository is pulled from: a mirror, or its registry (https, or plain http for a loopback registry
//! without TLS).

use std::time::Duration;

use url::Url;

use super::client::Client;
use super::transport::{host_port, transport_message};
use crate::error::{format_err, Result};
use crate::reference::Reference;

/// Where a repository is served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, plus a path prefix for some mirrors.
    pub base: Url,
    /// The repository path on that endpoint.
    pub repository: String,
    /// The registry the image names use (`docker.io`, `k8s.gcr.io`), for matching credentials.
    pub registry: String,
}

impl Endpoint {
    pub(super) fn url(&self, tail: &str) -> Result<Url> {
        let s = format!(
            "{}/v2/{}/{tail}",
            self.base.as_str().trim_end_matches('/'),
            self.repository
        );
        Url::parse(&s).map_err(|e| format_err(s, e.to_string()))
    }

    pub(super) fn host_port(&self) -> String {
        host_port(&self.base)
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

impl Client {
    /// Where to pull a reference from: its mirror, or its registry (https; a loopback registry may be plain http).
    pub fn endpoint(&self, r: &Reference) -> Result<Endpoint> {
        if let Some(m) = self.cfg.mirrors.iter().find(|m| m.registry == r.registry) {
            let base = Url::parse(&m.endpoint).map_err(|e| {
                format_err(
                    format!("registry-mirrors endpoint {}", m.endpoint),
                    e.to_string(),
                )
            })?;
            if base.scheme() != "http" && base.scheme() != "https" {
                return Err(format_err(
                    format!("registry-mirrors endpoint {}", m.endpoint),
                    "not an http(s) URL",
                ));
            }
            let repository = match m.prefix.as_deref().map(|p| p.trim_matches('/')) {
                Some(p) if !p.is_empty() => format!("{p}/{}", r.repository),
                _ => r.repository.clone(),
            };
            return Ok(Endpoint {
                base,
                repository,
                registry: r.registry.clone(),
            });
        }
        let host = r.api_host().to_string();
        let scheme = if is_loopback(&host) {
            self.loopback_scheme(&host)
        } else {
            "https"
        };
        let base = Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|e| format_err(format!("registry {host}"), e.to_string()))?;
        Ok(Endpoint {
            base,
            repository: r.repository.clone(),
            registry: r.registry.clone(),
        })
    }

    fn loopback_scheme(&self, host: &str) -> &'static str {
        if let Some(s) = self.schemes.lock().expect("not poisoned").get(host) {
            return s;
        }
        // Like Docker's handling of insecure loopback registries: https if it answers TLS, else http.
        let s = match self
            .http
            .get(format!("https://{host}/v2/"))
            .timeout(Duration::from_secs(5))
            .send()
        {
            Ok(_) => "https",
            // TLS answered but its certificate is not trusted: stay on https so the error says so.
            Err(e) if transport_message(&e).contains("certificate") => "https",
            Err(e) => {
                log::debug!("{host}: no TLS ({e}); using http");
                "http"
            }
        };
        self.schemes
            .lock()
            .expect("not poisoned")
            .insert(host.to_string(), s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ClientConfig;

    #[test]
    fn loopback_hosts() {
        for (h, want) in [
            ("127.0.0.1:5000", true),
            ("localhost", true),
            ("localhost:443", true),
            ("127.1.2.3", true),
            ("registry.k8s.io", false),
            ("10.0.0.1:5000", false),
        ] {
            assert_eq!(is_loopback(h), want, "host {h}");
        }
    }

    #[test]
    fn mirror_endpoints() {
        let c = Client::new(ClientConfig {
            mirrors: vec![kubeha_model::bundle::ProfileMirror {
                registry: "k8s.gcr.io".into(),
                endpoint: "http://127.0.0.1:5999".into(),
                prefix: Some("k8s".into()),
            }],
            ..ClientConfig::default()
        })
        .unwrap();
        let ep = c
            .endpoint(&Reference::parse("k8s.gcr.io/pause:3.1").unwrap())
            .unwrap();
        assert_eq!(
            ep.url("manifests/3.1").unwrap().as_str(),
            "http://127.0.0.1:5999/v2/k8s/pause/manifests/3.1"
        );
        let ep = c
            .endpoint(&Reference::parse("quay.io/calico/node:v3").unwrap())
            .unwrap();
        assert_eq!(
            ep.url("manifests/v3").unwrap().as_str(),
            "https://quay.io/v2/calico/node/manifests/v3"
        );
        let ep = c.endpoint(&Reference::parse("busybox").unwrap()).unwrap();
        assert_eq!(ep.base.as_str(), "https://registry-1.docker.io/");
    }
}
