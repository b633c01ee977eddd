//! A GET against an endpoint with authorization, redirects and retries (the registry's backoff).

use reqwest::blocking::Response;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use url::Url;

use super::client::Client;
use super::endpoint::Endpoint;
use super::transport::{classify, Failure};
use crate::auth::parse_challenges;
use crate::error::{Error, Result};
use kubeha_model::backoff::Delays;

/// One request's retry budget: the profile's `attempts` tries, with the registry's backoff pauses between them.
pub(super) struct Attempts {
    delays: Delays,
    n: u32,
    max: u32,
}

impl Attempts {
    pub(super) fn new(c: &Client) -> Attempts {
        Attempts {
            delays: c.cfg.backoff_policy().delays(),
            n: 1,
            max: c.cfg.attempts,
        }
    }

    /// The attempt under way (from 1).
    pub(super) fn number(&self) -> u32 {
        self.n
    }

    /// After a failed attempt: a fatal failure, or a transient one on the last attempt, is the request's error;
    /// otherwise this waits the next pause (logged) and counts the next attempt.
    pub(super) fn failed(&mut self, url: &Url, what: &str, f: Failure) -> Result<()> {
        match f {
            Failure::Fatal(e) => Err(e),
            Failure::Transient(msg) if self.n >= self.max => Err(Error::Http {
                url: url.to_string(),
                message: format!("{what}: {msg} (gave up after {} attempts)", self.n),
            }),
            Failure::Transient(msg) => {
                let delay = self.delays.pause();
                log::warn!(
                    "{url}: {msg}; retrying in {delay:?} (attempt {} of {})",
                    self.n,
                    self.max
                );
                std::thread::sleep(delay);
                self.n += 1;
                Ok(())
            }
        }
    }
}

impl Client {
    /// GET with auth, redirects and retries. `ok` decides which statuses are returned to the caller.
    pub(super) fn get(
        &self,
        ep: &Endpoint,
        url: &Url,
        headers: &HeaderMap,
        what: &str,
    ) -> Result<Response> {
        let mut tries = Attempts::new(self);
        loop {
            log::debug!("GET {url} (attempt {})", tries.number());
            match self.get_once(ep, url, headers) {
                Ok(r) => return Ok(r),
                Err(f) => tries.failed(url, what, f)?,
            }
        }
    }

    fn get_once(
        &self,
        ep: &Endpoint,
        url: &Url,
        headers: &HeaderMap,
    ) -> std::result::Result<Response, Failure> {
        let key = format!("{}|{}", ep.host_port(), ep.repository);
        let cached = self.auth.lock().expect("not poisoned").get(&key).cloned();
        let r = self.follow(url, headers, cached.as_deref())?;
        if r.status() != StatusCode::UNAUTHORIZED {
            return classify(r);
        }
        let challenge = r
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect::<Vec<_>>();
        let value = self.authorize(ep, &challenge).map_err(Failure::Fatal)?;
        let Some(value) = value else {
            return Err(Failure::Fatal(Error::Http {
                url: url.to_string(),
                message: "401 Unauthorized and no credentials for this registry (add them to the profile's \
                          [[credentials]])"
                    .into(),
            }));
        };
        self.auth
            .lock()
            .expect("not poisoned")
            .insert(key, value.clone());
        let r = self.follow(url, headers, Some(&value))?;
        if r.status() == StatusCode::UNAUTHORIZED || r.status() == StatusCode::FORBIDDEN {
            return Err(Failure::Fatal(Error::Http {
                url: url.to_string(),
                message: format!(
                    "{} after authenticating: the credentials are refused",
                    r.status()
                ),
            }));
        }
        classify(r)
    }
}
