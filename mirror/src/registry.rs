//! A registry v2 / OCI distribution client that pulls images into a shared [`Layout`].
//!
//! NOTE: this is blocking reqwest (rustls) plus `std::thread::scope` workers, not `oci-client`: oci-client is async
//! (it would pull a tokio runtime into our code) and has no retry, no Range resume and no hook to keep a blob out of
//! the store until it is verified. A bounded pool of threads, each streaming one blob to disk, saturates a link just
//! as well for a few dozen large blobs, and keeps the crate synchronous like the rest of kubeha.
//!
//! What it does, per the distribution spec (distribution/distribution
//! `docs/content/spec/auth/token.md`, opencontainers/distribution-spec `spec.md`, image-spec `media-types.md`):
//! - anonymous access, Bearer tokens from the `WWW-Authenticate` challenge (`realm`, `service`, `scope`; the
//!   response's `token` or `access_token`), Basic auth; credentials come from the profile (`password-env`/`-file`);
//! - `Accept` with all four manifest types; a manifest list / OCI index is resolved to the profile's platform;
//! - every manifest and blob is checked against its digest (and the `Docker-Content-Digest` header when sent);
//!   blobs go to the layout's ingest area and are renamed into `blobs/sha256/` only after they match;
//! - redirects are followed by hand so `Authorization` is never sent to another host (blob storage redirects);
//! - 5xx, 429, connection errors and timeouts are retried with exponential backoff; an interrupted blob resumes
//!   with a `Range` request from its partial file;
//! - manifests, manifest lists / indexes and configs are stored byte for byte as served, with their own media types
//!   (Docker schema 2 stays Docker), so every stored digest is the registry's; a list a platform manifest was chosen
//!   from is stored too and its digest recorded (`Pulled::source_digest`, `oci::ANNOTATION_INDEX_DIGEST`);
//! - blobs already in the layout are not downloaded again, and a blob shared by several images is fetched once;
//! - mirrors: `k8s.gcr.io/pause:3.1` can be pulled from a mirror endpoint and is still stored under that name. A
//!   mirror replaces its registry (no fallback to the upstream host: the build may run where only the mirror is
//!   reachable).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kubeha_model::backoff::Backoff;
use reqwest::blocking::{Client as Http, Response};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RANGE,
};
use reqwest::StatusCode;
use url::Url;

use crate::auth::parse_challenges;
use crate::digest::Digest;
use crate::error::{format_err, Error, Result};
use crate::oci::{self, Descriptor, Index, Layout, Manifest, Platform};
use crate::progress::Progress;
use crate::reference::Reference;

/// The `Accept` header for manifests: all four schema 2 / OCI types (without it registries may down-convert to
/// schema 1).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Manifests larger than this are refused (the distribution spec suggests registries cap them at 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;
const MAX_REDIRECTS: usize = 10;

/// Registry credentials, resolved (the secret read from its env var or file).
#[derive(Clone)]
pub struct Credentials {
    /// Registry host (with port) they apply to.
    pub registry: String,
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}@{})", self.username, self.registry)
    }
}

impl Credentials {
    /// Resolves the profile's credentials; a missing variable or file is an error naming the field.
    pub fn from_profile(creds: &[kubeha_model::bundle::Credential]) -> Result<Vec<Credentials>> {
        let mut out = Vec::new();
        for (i, c) in creds.iter().enumerate() {
            let password = match (&c.password_env, &c.password_file) {
                (Some(var), _) => std::env::var(var).map_err(|_| {
                    format_err(
                        format!("credentials[{i}].password-env"),
                        format!("environment variable {var} is not set"),
                    )
                })?,
                (None, Some(file)) => std::fs::read_to_string(file)
                    .map_err(|e| {
                        format_err(
                            format!("credentials[{i}].password-file"),
                            format!("reading {file}: {e}"),
                        )
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                (None, None) => {
                    return Err(format_err(
                        format!("credentials[{i}]"),
                        "give password-env or password-file",
                    ))
                }
            };
            out.push(Credentials {
                registry: c.registry.clone(),
                username: c.username.clone(),
                password,
            });
        }
        Ok(out)
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The platform manifest lists are resolved to.
    pub platform: Platform,
    /// Registry mirrors.
    pub mirrors: Vec<kubeha_model::bundle::ProfileMirror>,
    /// Credentials by registry host.
    pub credentials: Vec<Credentials>,
    /// Extra trusted CA certificates (PEM), besides the built-in web roots.
    pub ca_pem: Vec<Vec<u8>>,
    /// Attempts per request (1 = no retry).
    pub attempts: u32,
    /// First retry delay; doubled each attempt, capped at 10 s.
    pub backoff: Duration,
    /// Connect and per-read timeout.
    pub timeout: Duration,
    /// Parallel downloads.
    pub parallel: usize,
}

/// The longest pause between two attempts of a request.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl ClientConfig {
    /// The pauses between the attempts of a request: from `backoff`, doubling, at most [`MAX_BACKOFF`].
    pub(crate) fn backoff_policy(&self) -> Backoff {
        Backoff::new(self.backoff, MAX_BACKOFF)
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            platform: Platform::linux_for_rpm_arch("x86_64"),
            mirrors: Vec::new(),
            credentials: Vec::new(),
            ca_pem: Vec::new(),
            attempts: 5,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
            parallel: 4,
        }
    }
}

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
    fn url(&self, tail: &str) -> Result<Url> {
        let s = format!(
            "{}/v2/{}/{tail}",
            self.base.as_str().trim_end_matches('/'),
            self.repository
        );
        Url::parse(&s).map_err(|e| format_err(s, e.to_string()))
    }

    fn host_port(&self) -> String {
        host_port(&self.base)
    }
}

fn host_port(u: &Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_string(),
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

/// An image resolved to its platform manifest.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The normalized reference it is stored under.
    pub reference: String,
    /// Where it came from.
    pub endpoint: Endpoint,
    /// The platform manifest exactly as served.
    pub manifest_bytes: Vec<u8>,
    /// Its digest.
    pub manifest_digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The digest the registry served for the reference when that was a manifest list / index.
    pub index_digest: Option<Digest>,
    /// That manifest list / index exactly as served.
    pub index_bytes: Option<Vec<u8>>,
}

/// An image pulled into the layout.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference it is stored under.
    pub reference: String,
    /// Its platform manifest as stored in the layout: the registry's bytes, media type and digest.
    pub stored: Descriptor,
    /// The digest of the manifest list / index the registry served for the reference, when the platform manifest
    /// was chosen from one (stored in the layout too).
    pub source_digest: Option<Digest>,
    /// Config + layer bytes.
    pub size: u64,
}

/// What a pull did.
#[derive(Debug, Clone, Default)]
pub struct PullStats {
    /// Blobs downloaded.
    pub blobs_fetched: usize,
    /// Bytes downloaded.
    pub bytes_fetched: u64,
    /// Blobs already in the layout.
    pub blobs_reused: usize,
    /// Bytes already in the layout.
    pub bytes_reused: u64,
}

/// The registry client.
pub struct Client {
    http: Http,
    cfg: ClientConfig,
    /// Authorization header values by `host|repository`.
    auth: Mutex<HashMap<String, String>>,
    /// `http` or `https` for loopback registries, found by trying https first.
    schemes: Mutex<HashMap<String, &'static str>>,
}

enum Failure {
    /// Worth another attempt (5xx, 429, connection error, timeout).
    Transient(String),
    /// Not.
    Fatal(Error),
}

impl Client {
    /// A client with these settings.
    pub fn new(cfg: ClientConfig) -> Result<Client> {
        let http = crate::http::client_builder(&cfg.ca_pem)?
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.timeout.min(Duration::from_secs(30)))
            .timeout(cfg.timeout)
            .pool_max_idle_per_host(cfg.parallel.max(1) * 2)
            .build()
            .map_err(|e| format_err("HTTP client", e.to_string()))?;
        Ok(Client {
            http,
            cfg,
            auth: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

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

    /// GET with auth, redirects and retries. `ok` decides which statuses are returned to the caller.
    fn get(&self, ep: &Endpoint, url: &Url, headers: &HeaderMap, what: &str) -> Result<Response> {
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

    /// Sends one GET, following redirects by hand; `Authorization` only goes to the original host.
    fn follow(
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

    /// Turns a 401 challenge into an `Authorization` value: a Bearer token from the realm, or Basic.
    fn authorize(
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

    /// Fetches a manifest by tag or digest, checking its digest; returns (bytes, digest, media type).
    fn fetch_manifest_raw(
        &self,
        ep: &Endpoint,
        tag_or_digest: &str,
        expected: Option<&Descriptor>,
        what: &str,
    ) -> Result<(Vec<u8>, Digest, String)> {
        let url = ep.url(&format!("manifests/{tag_or_digest}"))?;
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let r = self.get(ep, &url, &h, what)?;
        if r.status() == StatusCode::NOT_FOUND {
            return Err(Error::Http {
                url: url.to_string(),
                message: format!("{what}: not found (404)"),
            });
        }
        if !r.status().is_success() {
            return Err(http_status_error(&url, what, r));
        }
        let content_type = r
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let header_digest = r
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        r.take(MAX_MANIFEST + 1)
            .read_to_end(&mut body)
            .map_err(|e| Error::Http {
                url: url.to_string(),
                message: format!("{what}: reading the manifest: {e}"),
            })?;
        if body.len() as u64 > MAX_MANIFEST {
            return Err(format_err(what, "manifest larger than 4 MiB"));
        }
        let digest = Digest::of(&body);
        let mismatch = |expected: String| Error::DigestMismatch {
            what: format!("{what} (manifest from {url})"),
            expected,
            actual: digest.to_string(),
        };
        if let Some(e) = expected {
            if body.len() as u64 != e.size {
                return Err(Error::SizeMismatch {
                    what: format!("{what} (manifest from {url})"),
                    expected: e.size,
                    actual: body.len() as u64,
                });
            }
            if e.digest != digest {
                return Err(mismatch(e.digest.to_string()));
            }
        }
        if tag_or_digest.starts_with("sha256:") && tag_or_digest != digest.as_str() {
            return Err(mismatch(tag_or_digest.to_string()));
        }
        if let Some(h) = header_digest {
            if h.starts_with("sha256:") && h != digest.as_str() {
                return Err(mismatch(format!("{h} (Docker-Content-Digest)")));
            }
        }
        let claimed = expected.map(|e| e.media_type.clone()).or(content_type);
        let mt = oci::manifest_media_type(
            &body,
            claimed.as_deref(),
            &format!("{what} (manifest from {url})"),
        )?;
        Ok((body, digest, mt))
    }

    /// Resolves a reference to its platform manifest (following a manifest list / index).
    pub fn resolve(&self, reference: &str) -> Result<Resolved> {
        let r = Reference::parse(reference)?;
        let ep = self.endpoint(&r)?;
        let name = r.to_string();
        let (bytes, digest, mt) = self.fetch_manifest_raw(&ep, &r.tag_or_digest(), None, &name)?;
        let (bytes, digest, mt, index) = if oci::is_index(&mt) {
            let ix: Index = oci::parse_json(&bytes, &format!("{name}: manifest list"))?;
            let d = ix.select(&self.cfg.platform).ok_or_else(|| {
                let have: Vec<String> = ix
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                format_err(
                    name.clone(),
                    format!(
                        "no {} image in its manifest list (it has: {})",
                        self.cfg.platform,
                        have.join(", ")
                    ),
                )
            })?;
            let (b, dg, m) = self.fetch_manifest_raw(&ep, d.digest.as_str(), Some(d), &name)?;
            if !oci::is_manifest(&m) {
                return Err(format_err(
                    name,
                    format!(
                        "its {} entry is not an image manifest ({m})",
                        self.cfg.platform
                    ),
                ));
            }
            (b, dg, m, Some((digest, bytes)))
        } else {
            (bytes, digest, mt, None)
        };
        let (index_digest, index_bytes) = index.unzip();
        let manifest: Manifest = oci::parse_json(&bytes, &format!("{name}: manifest"))?;
        Ok(Resolved {
            reference: name,
            endpoint: ep,
            manifest_bytes: bytes,
            manifest_digest: digest,
            media_type: mt,
            manifest,
            index_digest,
            index_bytes,
        })
    }

    /// Downloads one blob into the layout (resuming a partial download), verifying it. Returns the bytes fetched
    /// (0 when it was already there).
    pub fn fetch_blob(
        &self,
        layout: &Layout,
        ep: &Endpoint,
        desc: &Descriptor,
        what: &str,
        progress: &Progress,
    ) -> Result<u64> {
        if layout.has_blob(&desc.digest, desc.size) {
            return Ok(0);
        }
        let url = ep.url(&format!("blobs/{}", desc.digest))?;
        let mut fresh_retry = true;
        let mut delays = self.cfg.backoff_policy().delays();
        let mut attempt = 1;
        loop {
            let mut w = layout.blob_writer(&desc.digest, desc.size, what, true)?;
            let result = self.download_into(ep, &url, &mut w, desc, what, progress);
            let result = match result {
                Ok(()) => match w.commit() {
                    Ok(_) => return Ok(desc.size),
                    // A resumed partial file may hold bytes from a different body; start over once.
                    Err(e @ (Error::DigestMismatch { .. } | Error::SizeMismatch { .. }))
                        if fresh_retry =>
                    {
                        fresh_retry = false;
                        log::warn!("{what}: {e}; downloading it again from the start");
                        continue;
                    }
                    Err(e) => Err(Failure::Fatal(e)),
                },
                Err(f) => Err(f),
            };
            match result {
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(msg)) if attempt < self.cfg.attempts => {
                    let delay = delays.pause();
                    log::warn!(
                        "{url}: {msg}; retrying in {delay:?} (attempt {attempt} of {})",
                        self.cfg.attempts
                    );
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                Err(Failure::Transient(msg)) => {
                    return Err(Error::Http {
                        url: url.to_string(),
                        message: format!("{what}: {msg} (gave up after {attempt} attempts)"),
                    })
                }
                Ok(()) => unreachable!("success returns above"),
            }
        }
    }

    fn download_into(
        &self,
        ep: &Endpoint,
        url: &Url,
        w: &mut crate::oci::BlobWriter,
        desc: &Descriptor,
        what: &str,
        progress: &Progress,
    ) -> std::result::Result<(), Failure> {
        let offset = w.offset();
        let mut h = HeaderMap::new();
        if offset > 0 {
            h.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("ascii"),
            );
        }
        let mut r = self.get(ep, url, &h, what).map_err(Failure::Fatal)?;
        match r.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = r
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    w.restart().map_err(Failure::Fatal)?;
                    return Err(Failure::Transient(
                        "the server answered a different range".into(),
                    ));
                }
                log::info!("{what}: resuming at byte {offset} of {}", desc.size);
            }
            StatusCode::OK => {
                if offset > 0 {
                    w.restart().map_err(Failure::Fatal)?;
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                w.restart().map_err(Failure::Fatal)?;
                return Err(Failure::Transient("416 for the resume range".into()));
            }
            StatusCode::NOT_FOUND => {
                return Err(Failure::Fatal(Error::Http {
                    url: url.to_string(),
                    message: format!("{what}: blob not found (404)"),
                }))
            }
            _ => return Err(Failure::Fatal(http_status_error(url, what, r))),
        }
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = w.flush();
                    return Err(Failure::Transient(format!("reading the body: {e}")));
                }
            };
            if let Err(e) = w.write_all(&buf[..n]) {
                return Err(Failure::Fatal(Error::Io(kubeha_model::IoError {
                    action: "writing",
                    path: w.partial_path(),
                    source: e,
                })));
            }
            progress.add_bytes(n as u64);
        }
        if w.offset() < desc.size {
            let _ = w.flush();
            return Err(Failure::Transient(format!(
                "the body ended after {} of {} bytes",
                w.offset(),
                desc.size
            )));
        }
        Ok(())
    }

    /// Pulls images into the layout: resolves every reference, downloads the missing configs and layers (each blob
    /// once, `parallel` at a time), then stores the manifests and names the images in `index.json` (one write).
    /// Nothing is named before all its blobs are verified in place.
    pub fn pull(
        &self,
        layout: &Layout,
        references: &[String],
        progress: &Progress,
    ) -> Result<(Vec<Pulled>, PullStats)> {
        // De-duplicate references after normalization, keeping order.
        let mut seen = HashSet::new();
        let mut refs = Vec::new();
        for r in references {
            let n = crate::reference::normalize(r)?;
            if seen.insert(n.clone()) {
                refs.push(n);
            }
        }
        progress.phase("images", refs.len() as u64);
        let resolved: Vec<Resolved> = parallel(refs, self.cfg.parallel, |r| {
            let x = self.resolve(&r)?;
            progress.item_done(&x.reference);
            Ok(x)
        })?;

        // Every blob once (configs first: they are small and prove access early).
        let mut blobs: BTreeMap<Digest, (Descriptor, Endpoint, String)> = BTreeMap::new();
        let mut order = Vec::new();
        let mut stats = PullStats::default();
        for x in &resolved {
            for d in std::iter::once(&x.manifest.config).chain(x.manifest.layers.iter()) {
                if !d.urls.is_empty() && d.media_type.contains("foreign") {
                    return Err(format_err(
                        x.reference.clone(),
                        format!(
                            "layer {} is a foreign layer, which cannot be mirrored",
                            d.digest
                        ),
                    ));
                }
                if blobs.contains_key(&d.digest) {
                    continue;
                }
                blobs.insert(
                    d.digest.clone(),
                    (
                        d.clone(),
                        x.endpoint.clone(),
                        format!("{} blob {}", x.reference, d.digest),
                    ),
                );
                order.push(d.digest.clone());
            }
        }
        let mut todo = Vec::new();
        for dg in order {
            let (d, ep, what) = blobs.remove(&dg).expect("inserted");
            if layout.has_blob(&d.digest, d.size) {
                stats.blobs_reused += 1;
                stats.bytes_reused += d.size;
            } else {
                progress.add_total_bytes(d.size);
                todo.push((d, ep, what));
            }
        }
        progress.phase("blobs", todo.len() as u64);
        let fetched: Vec<u64> = parallel(todo, self.cfg.parallel, |(d, ep, what)| {
            let n = self.fetch_blob(layout, &ep, &d, &what, progress)?;
            progress.item_done(&what);
            Ok(n)
        })?;
        stats.blobs_fetched = fetched.iter().filter(|&&n| n > 0).count();
        stats.bytes_fetched = fetched.iter().sum();

        let mut named = Vec::new();
        let mut pulled = Vec::new();
        for x in resolved {
            let what = format!("{}: manifest", x.reference);
            let mut stored = layout.put_manifest(&x.manifest_bytes, &what)?;
            if stored.digest != x.manifest_digest {
                return Err(format_err(
                    what,
                    "stored with a different digest than served",
                ));
            }
            if let (Some(dg), Some(bytes)) = (&x.index_digest, &x.index_bytes) {
                let ix = layout.put_index(bytes, &format!("{}: manifest list", x.reference))?;
                if &ix.digest != dg {
                    return Err(format_err(what, "manifest list stored with another digest"));
                }
                stored
                    .annotations
                    .insert(oci::ANNOTATION_INDEX_DIGEST.into(), dg.to_string());
            }
            pulled.push(Pulled {
                reference: x.reference.clone(),
                source_digest: x.index_digest.clone(),
                size: x.manifest.config.size
                    + x.manifest.layers.iter().map(|l| l.size).sum::<u64>(),
                stored: stored.clone(),
            });
            named.push((x.reference, stored));
        }
        layout.set_images(&named)?;
        Ok((pulled, stats))
    }
}

fn classify(r: Response) -> std::result::Result<Response, Failure> {
    let s = r.status();
    if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT
    {
        return Err(Failure::Transient(format!("{s}")));
    }
    Ok(r)
}

fn transport_message(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

fn http_status_error(url: &Url, what: &str, r: Response) -> Error {
    let status = r.status();
    let mut body = String::new();
    let _ = r.take(2048).read_to_string(&mut body);
    Error::Http {
        url: url.to_string(),
        message: format!("{what}: {status} {}", body.trim()),
    }
}

/// Runs `f` over `items` on at most `n` threads; results keep the input order. After the first error no new item
/// starts, and that error is returned.
pub fn parallel<T: Send, R: Send>(
    items: Vec<T>,
    n: usize,
    f: impl Fn(T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let len = items.len();
    let queue: Mutex<std::vec::IntoIter<(usize, T)>> = Mutex::new(
        items
            .into_iter()
            .enumerate()
            .collect::<Vec<_>>()
            .into_iter(),
    );
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..len).map(|_| None).collect());
    let failed = AtomicBool::new(false);
    let first_err: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..n.max(1).min(len.max(1)) {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let next = queue.lock().expect("not poisoned").next();
                let Some((i, item)) = next else { return };
                match f(item) {
                    Ok(r) => {
                        results.lock().expect("not poisoned")[i] = Some(r);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        let mut fe = first_err.lock().expect("not poisoned");
                        if fe.as_ref().is_none_or(|(j, _)| i < *j) {
                            *fe = Some((i, e));
                        }
                        return;
                    }
                }
            });
        }
    });
    if let Some((_, e)) = first_err.into_inner().expect("not poisoned") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parallel_keeps_order_and_stops_on_error() {
        let out = parallel((0..50).collect(), 4, |i: i32| Ok(i * 2)).unwrap();
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        let err = parallel((0..50).collect(), 4, |i: i32| {
            if i == 7 {
                Err(format_err("item 7", "bad"))
            } else {
                Ok(i)
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("item 7"), "{err}");
        assert!(parallel(Vec::<i32>::new(), 4, Ok).unwrap().is_empty());
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
