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

impl Client {
    /// GET with auth, redirects and retries. `ok` decides which statuses are returned to the caller.
    pub(super) fn get(
        &self,
        ep: &Endpoint,
        url: &Url,
        headers: &HeaderMap,
        what: &str,
    ) -> Result<Response> {
        let mut delays = self.cfg.backoff_policy().delays();
        let mut attempt = 1;
        loop {
            log::debug!("GET {url} (attempt {attempt})");
            match self.get_once(ep, url, headers) {
                Ok(r) => return Ok(r),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(msg)) => {
                    if attempt >= self.cfg.attempts {
                        return Err(Error::Http {
                            url: url.to_string(),
                            message: format!("{what}: {msg} (gave up after {attempt} attempts)"),
                        });
                    }
                    let delay = delays.pause();
                    log::warn!(
                        "{url}: {msg}; retrying in {delay:?} (attempt {attempt} of {})",
                        self.cfg.attempts
                    );
                    std::thread::sleep(delay);
                    attempt += 1;
                }
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
