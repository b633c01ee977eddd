//! Authorization: the credentials for the host contacted, a 401 challenge turned into a Bearer token or Basic.

use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use url::Url;

use super::client::{Client, Credentials};
use super::endpoint::Endpoint;
use super::transport::transport_message;
use crate::error::{Error, Result};

impl Client {
    /// Credentials for the host actually contacted (a mirror's own host for a mirror: the upstream registry's
    /// credentials are never sent to a mirror). `docker.io` credentials apply to its API host registry-1.docker.io.
    fn credentials_for(&self, ep: &Endpoint) -> Option<&Credentials> {
        let host = ep.host_port();
        let c = &self.cfg.credentials;
        c.iter().find(|c| c.registry == host).or_else(|| {
            (host == crate::reference::DOCKER_HUB_API
                && ep.registry == crate::reference::DOCKER_HUB)
                .then(|| {
                    c.iter()
                        .find(|c| c.registry == crate::reference::DOCKER_HUB)
                })
                .flatten()
        })
    }

    /// Turns a 401 challenge into an `Authorization` value: a Bearer token from the realm, or Basic.
    pub(super) fn authorize(
        &self,
        ep: &Endpoint,
        challenges: &[crate::auth::Challenge],
    ) -> Result<Option<String>> {
        use base64::Engine as _;
        let creds = self.credentials_for(ep);
        let basic = creds.map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = c.params.get("realm").ok_or_else(|| Error::Http {
                url: ep.base.to_string(),
                message: "Bearer challenge without a realm".into(),
            })?;
            let mut u = Url::parse(realm).map_err(|e| Error::Http {
                url: realm.clone(),
                message: format!("bad token realm: {e}"),
            })?;
            {
                let mut q = u.query_pairs_mut();
                if let Some(s) = c.params.get("service") {
                    q.append_pair("service", s);
                }
                let scope = c
                    .params
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| format!("repository:{}:pull", ep.repository));
                q.append_pair("scope", &scope);
            }
            let token = self.fetch_token(&u, basic.as_deref())?;
            return Ok(Some(format!("Bearer {token}")));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return Ok(basic);
        }
        Ok(None)
    }

    fn fetch_token(&self, url: &Url, basic: Option<&str>) -> Result<String> {
        for (attempt, delay) in (1..=self.cfg.attempts).zip(self.cfg.backoff_policy().delays()) {
            let mut req = self.http.get(url.clone());
            if let Some(b) = basic {
                req = req.header(AUTHORIZATION, b);
            }
            let err = match req.send() {
                Ok(r) if r.status().is_success() => {
                    #[derive(serde::Deserialize)]
                    struct Token {
                        token: Option<String>,
                        access_token: Option<String>,
                    }
                    let t: Token = r.json().map_err(|e| Error::Http {
                        url: url.to_string(),
                        message: format!("token response is not JSON: {e}"),
                    })?;
                    return t
                        .token
                        .filter(|t| !t.is_empty())
                        .or(t.access_token.filter(|t| !t.is_empty()))
                        .ok_or_else(|| Error::Http {
                            url: url.to_string(),
                            message: "token response has neither token nor access_token".into(),
                        });
                }
                Ok(r)
                    if r.status().is_server_error()
                        || r.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    format!("{}", r.status())
                }
                Ok(r) => {
                    let hint = if basic.is_none() {
                        "; there are no credentials for this registry (add them to the profile's [[credentials]])"
                    } else {
                        "; the credentials are refused"
                    };
                    return Err(Error::Http {
                        url: url.to_string(),
                        message: format!("token request refused: {}{hint}", r.status()),
                    });
                }
                Err(e) => transport_message(&e),
            };
            if attempt == self.cfg.attempts {
                return Err(Error::Http {
                    url: url.to_string(),
                    message: format!("token request: {err}"),
                });
            }
            std::thread::sleep(delay);
        }
        unreachable!("loop returns")
    }
}
