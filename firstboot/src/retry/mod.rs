//! The one HTTP client of the agent: blocking reqwest with rustls, per-request timeouts, and retries with exponential
//! backoff (afterburn's `retry::Client`). Every attempt is logged with its URL.
//!
//! A server that keeps failing (connection refused, timeout, 5xx) ends in [`Unavailable`]: callers treat it as "this
//! source does not answer yet" and try again later. Any other status is a [`Refused`] error the operator must fix.

use std::time::Duration;

use anyhow::{Context as _, Result};
use kubeha_model::backoff::Backoff;

/// Largest body accepted: node configs are a few KiB; anything bigger is not one.
pub const MAX_BODY: u64 = 4 << 20;

/// The server kept failing with errors that may go away (network down, timeouts, 5xx).
#[derive(Debug, thiserror::Error)]
#[error("{url} did not answer after {attempts} attempts: {last}")]
pub struct Unavailable {
    /// The URL.
    pub url: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// The last error.
    pub last: String,
}

/// The server answered with a status that retrying will not change (4xx other than 404, or 404 when not allowed).
#[derive(Debug, thiserror::Error)]
#[error("{url} answered {status}")]
pub struct Refused {
    /// The URL.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
}

/// The agent's one HTTP client builder: rustls, kubeha-firstboot's user agent, every request (connect + headers +
/// body) within `timeout`, the connection within `connect`. [`Client`] retries over it; [`tls_client`] talks to the
/// cluster's own endpoints with its CA.
pub fn builder(timeout: Duration, connect: Duration) -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(connect)
        .user_agent(concat!("kubeha-firstboot/", env!("CARGO_PKG_VERSION")))
}

/// A blocking HTTPS client (no retries) that trusts only `ca_pem` and presents `cert_pem`/`key_pem` (none when
/// empty); never uses a proxy (the endpoints are the cluster's own addresses). Both timeouts are `timeout`.
pub fn tls_client(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    timeout: Duration,
) -> Result<reqwest::blocking::Client> {
    let ca =
        reqwest::Certificate::from_pem(ca_pem.as_bytes()).context("reading a CA certificate")?;
    let mut b = builder(timeout, timeout)
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .no_proxy();
    if !cert_pem.is_empty() {
        let id = reqwest::Identity::from_pem(format!("{cert_pem}\n{key_pem}").as_bytes())
            .context("loading a client certificate")?;
        b = b.identity(id);
    }
    b.build().context("building an HTTPS client")
}

/// A retrying blocking HTTP client.
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::blocking::Client,
    max_retries: u32,
    backoff: Backoff,
    return_on_404: bool,
}

impl Client {
    /// A client with a 30 s request timeout, 10 s connect timeout, 5 retries and backoff from 1 s up to 30 s.
    pub fn new() -> Result<Client> {
        Client::with_timeout(Duration::from_secs(30))
    }

    /// A client whose every request (connect + headers + body) must finish within `timeout`.
    pub fn with_timeout(timeout: Duration) -> Result<Client> {
        let inner = builder(timeout, timeout.min(Duration::from_secs(10)))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            inner,
            max_retries: 5,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            return_on_404: false,
        })
    }

    /// How many times a failed request is retried (0 = one attempt).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The first pause between attempts; it doubles up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(initial, max);
        self
    }

    /// Whether a 404 is `Ok(None)` (the resource is not there: "this source has nothing") instead of an error.
    pub fn return_on_404(mut self, yes: bool) -> Self {
        self.return_on_404 = yes;
        self
    }

    fn attempt<T>(
        &self,
        url: &str,
        mut once: impl FnMut() -> Result<Attempt<T>>,
    ) -> Result<Option<T>> {
        let mut delays = self.backoff.delays();
        let mut last = String::new();
        for n in 0..=self.max_retries {
            if n > 0 {
                let pause = delays.pause();
                log::info!(
                    "retrying {url} in {pause:?} (attempt {} of {})",
                    n + 1,
                    self.max_retries + 1
                );
                std::thread::sleep(pause);
            }
            log::debug!("fetching {url} (attempt {})", n + 1);
            match once()? {
                Attempt::Done(v) => return Ok(Some(v)),
                Attempt::NotFound => return Ok(None),
                Attempt::Retry(why) => {
                    log::warn!("{url}: {why}");
                    last = why;
                }
            }
        }
        Err(Unavailable {
            url: url.to_string(),
            attempts: self.max_retries + 1,
            last,
        }
        .into())
    }

    fn classify(
        &self,
        url: &str,
        r: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<Attempt<reqwest::blocking::Response>> {
        let resp = match r {
            Ok(r) => r,
            // Connection errors and timeouts are what a node sees while its network comes up: retry them.
            Err(e) => return Ok(Attempt::Retry(error_chain(&e))),
        };
        let status = resp.status();
        if status.is_success() {
            Ok(Attempt::Done(resp))
        } else if status == reqwest::StatusCode::NOT_FOUND && self.return_on_404 {
            Ok(Attempt::NotFound)
        } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Ok(Attempt::Retry(format!("answered {status}")))
        } else {
            Err(Refused {
                url: url.to_string(),
                status: status.as_u16(),
            }
            .into())
        }
    }

    /// GETs `url` and returns its body; `Ok(None)` on 404 when [`Client::return_on_404`] is set.
    pub fn get(&self, url: &str) -> Result<Option<Vec<u8>>> {
        self.attempt(url, || {
            let resp = match self.classify(url, self.inner.get(url).send())? {
                Attempt::Done(r) => r,
                Attempt::NotFound => return Ok(Attempt::NotFound),
                Attempt::Retry(w) => return Ok(Attempt::Retry(w)),
            };
            if resp.content_length().is_some_and(|l| l > MAX_BODY) {
                anyhow::bail!("{url}: body is larger than {MAX_BODY} bytes");
            }
            let mut body = Vec::new();
            // The body is read under the same timeout: a server that stalls mid-body is retried too.
            match std::io::Read::read_to_end(
                &mut std::io::Read::take(resp, MAX_BODY + 1),
                &mut body,
            ) {
                Ok(_) if body.len() as u64 > MAX_BODY => {
                    anyhow::bail!("{url}: body is larger than {MAX_BODY} bytes")
                }
                Ok(_) => Ok(Attempt::Done(body)),
                Err(e) => Ok(Attempt::Retry(format!("reading the body: {e}"))),
            }
        })
    }

    /// GETs `url` into the file `dest` (created or truncated), streamed: for the bundle's files, which may be far
    /// larger than [`MAX_BODY`]. Returns the bytes written; `Ok(None)` on 404 when [`Client::return_on_404`] is set.
    /// A body cut short is retried from the start.
    pub fn download(&self, url: &str, dest: &std::path::Path) -> Result<Option<u64>> {
        self.attempt(url, || {
            let mut resp = match self.classify(url, self.inner.get(url).send())? {
                Attempt::Done(r) => r,
                Attempt::NotFound => return Ok(Attempt::NotFound),
                Attempt::Retry(w) => return Ok(Attempt::Retry(w)),
            };
            let mut f = std::fs::File::create(dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            match std::io::copy(&mut resp, &mut f) {
                Ok(n) => Ok(Attempt::Done(n)),
                Err(e) => Ok(Attempt::Retry(format!("reading the body: {e}"))),
            }
        })
    }

    /// POSTs a JSON document to `url`.
    pub fn post_json(&self, url: &str, doc: &serde_json::Value) -> Result<()> {
        self.attempt(url, || {
            Ok(
                match self.classify(url, self.inner.post(url).json(doc).send())? {
                    Attempt::Done(_) | Attempt::NotFound => Attempt::Done(()),
                    Attempt::Retry(w) => Attempt::Retry(w),
                },
            )
        })
        .map(|_| ())
    }
}

enum Attempt<T> {
    Done(T),
    NotFound,
    Retry(String),
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod mock_tests;
