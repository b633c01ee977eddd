//! The one HTTP client of the agent: blocking reqwest with rustls, per-request timeouts, and retries with exponential
//! backoff (afterburn's `retry::Client`). Every attempt is logged with its URL.
//!
//! A server that keeps failing (connection refused, timeout, 5xx) ends in [`Unavailable`]: callers treat it as "this
//! source does not answer yet" and try again later. Any other status is a [`Refused`] error the operator must fix.

use std::time::Duration;

use anyhow::{Context as _, Result};

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

/// A retrying blocking HTTP client.
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::blocking::Client,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    return_on_404: bool,
}

impl Client {
    /// A client with a 30 s request timeout, 10 s connect timeout, 5 retries and backoff from 1 s up to 30 s.
    pub fn new() -> Result<Client> {
        Client::with_timeout(Duration::from_secs(30))
    }

    /// A client whose every request (connect + headers + body) must finish within `timeout`.
    pub fn with_timeout(timeout: Duration) -> Result<Client> {
        let inner = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("kubeha-firstboot/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            inner,
            max_retries: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
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
        self.initial_backoff = initial;
        self.max_backoff = max;
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
        let mut pause = self.initial_backoff;
        let mut last = String::new();
        for n in 0..=self.max_retries {
            if n > 0 {
                log::info!(
                    "retrying {url} in {pause:?} (attempt {} of {})",
                    n + 1,
                    self.max_retries + 1
                );
                std::thread::sleep(pause);
                pause = (pause * 2).min(self.max_backoff);
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
