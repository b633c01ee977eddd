//! The registry client and its settings: the HTTP client, the credentials, the caches of tokens and schemes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kubeha_model::backoff::Backoff;
use reqwest::blocking::Client as Http;

use crate::error::{format_err, Result};
use crate::oci::Platform;

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

/// The registry client.
pub struct Client {
    pub(super) http: Http,
    pub(super) cfg: ClientConfig,
    /// Authorization header values by `host|repository`.
    pub(super) auth: Mutex<HashMap<String, String>>,
    /// `http` or `https` for loopback registries, found by trying https first.
    pub(super) schemes: Mutex<HashMap<String, &'static str>>,
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
}
