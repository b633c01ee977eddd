//! A registry v2 client that pushes blobs and manifests over HTTP (monolithic uploads), retrying a request that
//! failed on its way (connection refused or reset, timeout) and never one the registry answered with an error.

use super::oci::sha;
use anyhow::{anyhow, Context, Result};
use reqwest::blocking::{Client, RequestBuilder, Response};
use std::time::Duration;

/// How many times a push is tried.
const ATTEMPTS: u32 = 5;
/// The wait for an answer (python's urllib timeout); a blob's upload gets a second more per MiB it carries.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a push attempt failed: on the way (retried) or answered with an error status (not).
#[derive(Debug)]
pub enum Failure {
    Transport(anyhow::Error),
    Answer(anyhow::Error),
}

/// Runs `f` up to `attempts` times while it fails on the way, pausing `attempt` seconds after the attempt-th failure
/// (1, 2, 3, 4 s: the python generator's schedule, which a loaded CI machine's registry has needed; linear rather
/// than the workspace's `Backoff` to keep the demo's timing as it was) through `sleep`. An answered error is
/// returned at once.
pub fn retry<T>(
    what: &str,
    attempts: u32,
    mut sleep: impl FnMut(Duration),
    mut f: impl FnMut() -> Result<T, Failure>,
) -> Result<T> {
    let mut attempt = 1;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(Failure::Answer(e)) => return Err(e.context(what.to_string())),
            Err(Failure::Transport(e)) if attempt >= attempts => {
                return Err(anyhow!("{what}: {e:#} ({attempts} attempts)"))
            }
            Err(Failure::Transport(e)) => {
                eprintln!("  {what}: {e:#}; attempt {} in {attempt}s", attempt + 1);
                sleep(Duration::from_secs(u64::from(attempt)));
                attempt += 1;
            }
        }
    }
}

/// The registry at `http://HOST:PORT`.
pub struct Registry {
    base: String,
    http: Client,
}

impl Registry {
    pub fn new(addr: &str) -> Result<Registry> {
        let http = Client::builder()
            .connect_timeout(TIMEOUT)
            .build()
            .context("building the registry's HTTP client")?;
        Ok(Registry {
            base: format!("http://{addr}"),
            http,
        })
    }

    /// `url` as is when absolute (an upload's Location may be), else under the registry's base.
    fn url(&self, url: &str) -> String {
        if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        }
    }

    /// Sends `req`; a 2xx answer is the response, another is [`Failure::Answer`] naming the URL and the status.
    fn send(req: RequestBuilder, method: &str, url: &str) -> Result<Response, Failure> {
        let r = req
            .send()
            .map_err(|e| Failure::Transport(anyhow!("{method} {url}: {e:#}")))?;
        if r.status().is_success() {
            Ok(r)
        } else {
            let status = r.status();
            let body = r.text().unwrap_or_default();
            Err(Failure::Answer(anyhow!(
                "{method} {url}: {status}: {}",
                body.trim()
            )))
        }
    }

    /// Whether `repo` has the blob: any answered error (404 first) is a no; a failure on the way is the failure.
    fn has_blob(&self, repo: &str, digest: &str) -> Result<bool, Failure> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        match Self::send(self.http.head(&url).timeout(TIMEOUT), "HEAD", &url) {
            Ok(_) => Ok(true),
            Err(Failure::Answer(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pushes `data` as a blob of `repo` unless the registry has it; its digest. A retry starts over from the HEAD
    /// and the upload's POST, as a registry client does.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> Result<String> {
        let d = sha(data);
        let what = format!("blob {} of {repo} ({} bytes)", &d[..19], data.len());
        let upload = || -> Result<String, Failure> {
            if self.has_blob(repo, &d)? {
                return Ok(d.clone());
            }
            let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
            let r = Self::send(self.http.post(&url).timeout(TIMEOUT), "POST", &url)?;
            let loc = r
                .headers()
                .get("Location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| Failure::Answer(anyhow!("POST {url}: no Location in the answer")))?;
            let sep = if loc.contains('?') { '&' } else { '?' };
            let put = self.url(&format!("{loc}{sep}digest={d}"));
            let mib = (data.len() >> 20) as u64;
            Self::send(
                self.http
                    .put(&put)
                    .timeout(TIMEOUT + Duration::from_secs(mib))
                    .header("Content-Type", "application/octet-stream")
                    .body(data.to_vec()),
                "PUT",
                &put,
            )?;
            Ok(d.clone())
        };
        retry(&what, ATTEMPTS, std::thread::sleep, upload)
    }

    /// Pushes a manifest (or list) `body` of `media_type` as `repo:reference` (a tag or a digest).
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        body: &[u8],
        media_type: &str,
    ) -> Result<()> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        retry(
            &format!("manifest {repo}:{reference}"),
            ATTEMPTS,
            std::thread::sleep,
            || {
                Self::send(
                    self.http
                        .put(&url)
                        .timeout(TIMEOUT)
                        .header("Content-Type", media_type)
                        .body(body.to_vec()),
                    "PUT",
                    &url,
                )
                .map(drop)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_failures_on_the_way_only_and_gives_up_after_the_last_attempt() {
        let mut pauses = vec![];
        let mut calls = 0;
        let r: Result<()> = retry(
            "blob x",
            5,
            |d| pauses.push(d.as_secs()),
            || {
                calls += 1;
                Err(Failure::Transport(anyhow!("connection reset")))
            },
        );
        let e = format!("{:#}", r.unwrap_err());
        assert_eq!(calls, 5);
        assert_eq!(pauses, [1, 2, 3, 4]);
        assert_eq!(e, "blob x: connection reset (5 attempts)");

        let (mut calls, mut pauses) = (0, 0);
        let r = retry(
            "m",
            5,
            |_| pauses += 1,
            || {
                calls += 1;
                if calls < 3 {
                    Err(Failure::Transport(anyhow!("refused")))
                } else {
                    Ok(calls)
                }
            },
        );
        assert_eq!((r.unwrap(), pauses), (3, 2));

        let mut calls = 0;
        let r: Result<()> = retry(
            "manifest a:b",
            5,
            |_| panic!("no pause"),
            || {
                calls += 1;
                Err(Failure::Answer(anyhow!("PUT u: 400 Bad Request")))
            },
        );
        assert_eq!(calls, 1);
        assert_eq!(
            format!("{:#}", r.unwrap_err()),
            "manifest a:b: PUT u: 400 Bad Request"
        );
    }
}
