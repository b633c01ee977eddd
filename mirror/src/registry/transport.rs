//! One GET on the wire: redirects followed by hand (`Authorization` only to the original host), statuses worth
//! another attempt, and the errors' text.

use std::io::Read;

use reqwest::blocking::Response;
use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION};
use reqwest::StatusCode;
use url::Url;

use super::client::Client;
use crate::error::Error;

const MAX_REDIRECTS: usize = 10;

pub(super) fn host_port(u: &Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_string(),
    }
}

pub(super) enum Failure {
    /// Worth another attempt (5xx, 429, connection error, timeout).
    Transient(String),
    /// Not.
    Fatal(Error),
}

pub(super) fn classify(r: Response) -> std::result::Result<Response, Failure> {
    let s = r.status();
    if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT
    {
        return Err(Failure::Transient(format!("{s}")));
    }
    Ok(r)
}

pub(super) fn transport_message(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

pub(super) fn http_status_error(url: &Url, what: &str, r: Response) -> Error {
    let status = r.status();
    let mut body = String::new();
    let _ = r.take(2048).read_to_string(&mut body);
    Error::Http {
        url: url.to_string(),
        message: format!("{what}: {status} {}", body.trim()),
    }
}

impl Client {
    /// Sends one GET, following redirects by hand; `Authorization` only goes to the original host.
    pub(super) fn follow(
        &self,
        url: &Url,
        headers: &HeaderMap,
        auth: Option<&str>,
    ) -> std::result::Result<Response, Failure> {
        let origin = host_port(url);
        let mut u = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.http.get(u.clone()).headers(headers.clone());
            if let Some(a) = auth {
                if host_port(&u) == origin && u.scheme() == url.scheme() {
                    req = req.header(AUTHORIZATION, a);
                }
            }
            let r = req
                .send()
                .map_err(|e| Failure::Transient(transport_message(&e)))?;
            if r.status().is_redirection() {
                let loc = r
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        Failure::Fatal(Error::Http {
                            url: u.to_string(),
                            message: format!("{} without a Location", r.status()),
                        })
                    })?;
                u = u.join(loc).map_err(|e| {
                    Failure::Fatal(Error::Http {
                        url: u.to_string(),
                        message: format!("bad redirect Location {loc}: {e}"),
                    })
                })?;
                log::debug!("redirected to {u}");
                continue;
            }
            return Ok(r);
        }
        Err(Failure::Fatal(Error::Http {
            url: url.to_string(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }
}
