//! Getting repository files from `http(s)://` or `file://` base URLs, with retries and checksum verification.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use kubeha_model::backoff::Backoff;

use super::metadata::{Checksum, Hasher};

/// Attempts per HTTP request; transport errors and 5xx answers are retried with a growing pause.
const ATTEMPTS: u32 = 4;
/// The pauses between them: 0.5 s, 1 s, 2 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));

/// Fetches files below repository base URLs.
pub struct Fetcher {
    client: reqwest::blocking::Client,
    auth: Vec<RepoAuth>,
}

/// HTTP Basic credentials for the files below one repository base URL.
pub struct RepoAuth {
    /// The repo's base URL (expanded): its scheme, host, port and path prefix decide which URLs get the credentials.
    pub baseurl: String,
    /// User name.
    pub username: String,
    /// Password, never logged or put into an error.
    pub password: String,
}

impl std::fmt::Debug for RepoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RepoAuth({}@{})", self.username, self.baseurl)
    }
}

impl RepoAuth {
    /// Whether `url` lies below this base URL (same scheme, host and port, and its path under the base path).
    fn covers(&self, url: &str) -> bool {
        let (Ok(base), Ok(u)) = (url::Url::parse(&self.baseurl), url::Url::parse(url)) else {
            return false;
        };
        let prefix = base.path().trim_end_matches('/');
        base.scheme() == u.scheme()
            && base.host_str() == u.host_str()
            && base.port_or_known_default() == u.port_or_known_default()
            && (u.path() == prefix || u.path().starts_with(&format!("{prefix}/")))
    }
}

/// Joins a base URL and a metadata-relative href (`repodata/x.xml.gz`, `Packages/k/kubelet.rpm`).
pub fn join(base: &str, href: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        href.trim_start_matches('/')
    )
}

/// The local path of a `file://` URL (percent-decoded), or `None` for other schemes.
pub fn file_path(url: &str) -> Result<Option<PathBuf>> {
    let Some(rest) = url.strip_prefix("file://") else {
        return Ok(None);
    };
    // file:///abs/path and file://localhost/abs/path
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return Err(super::Error::FileUrl {
            url: url.to_string(),
        }
        .into());
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hexval = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hexval(bytes[i + 1]) * 16 + hexval(bytes[i + 2]));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Ok(Some(PathBuf::from(String::from_utf8(out).with_context(
        || format!("'{url}' is not UTF-8 after decoding"),
    )?)))
}

impl Fetcher {
    /// A fetcher with rustls, a connect timeout and a generous total timeout per file; `auth` is sent to the URLs
    /// below each base URL only. reqwest drops `Authorization` when a redirect leaves the host, so a mirror that
    /// redirects to blob storage elsewhere never sees the credentials.
    pub fn new(auth: Vec<RepoAuth>) -> Result<Fetcher> {
        let client = crate::http::client_builder(&[])?
            .connect_timeout(Duration::from_secs(30))
            // The blocking client has no read timeout; bound each file instead (a 100 MB RPM at 200 kB/s).
            .timeout(Duration::from_secs(30 * 60))
            .build()
            .context("creating the HTTP client")?;
        Ok(Fetcher { client, auth })
    }

    /// Opens `url` for reading (a file, or a successful HTTP response), retrying transient HTTP failures.
    fn open(&self, url: &str) -> Result<Box<dyn Read>> {
        if let Some(p) = file_path(url)? {
            let f = File::open(&p).with_context(|| format!("opening {}", p.display()))?;
            return Ok(Box::new(f));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(super::Error::UrlScheme {
                url: url.to_string(),
            }
            .into());
        }
        let mut last = None;
        let mut delays = BACKOFF.delays();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                std::thread::sleep(delays.pause());
            }
            log::debug!("GET {url} (attempt {attempt})");
            let auth = self.auth.iter().find(|a| a.covers(url));
            let mut req = self.client.get(url);
            if let Some(a) = auth {
                req = req.basic_auth(&a.username, Some(&a.password));
            }
            match req.send() {
                Ok(r) if r.status().is_success() => return Ok(Box::new(r)),
                Ok(r) if r.status().is_server_error() => {
                    last = Some(
                        super::Error::Http {
                            url: url.to_string(),
                            status: r.status(),
                        }
                        .into(),
                    )
                }
                Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {
                    return Err(super::Error::Unauthorized {
                        url: url.to_string(),
                        user: auth.map(|a| a.username.clone()),
                    }
                    .into())
                }
                Ok(r) => {
                    return Err(super::Error::Http {
                        url: url.to_string(),
                        status: r.status(),
                    }
                    .into())
                }
                Err(e) => last = Some(anyhow::Error::new(e).context(format!("GET {url}"))),
            }
        }
        Err(last
            .expect("at least one attempt")
            .context(format!("giving up after {ATTEMPTS} attempts")))
    }

    /// Reads a whole (metadata) file into memory.
    pub fn get(&self, url: &str) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open(url)?
            .read_to_end(&mut data)
            .with_context(|| format!("reading {url}"))?;
        Ok(data)
    }

    /// Downloads `url` to `dest`, verifying `checksum`: the bytes go to a temporary file in the same
    /// directory that is renamed over `dest` only when the checksum matches. A `dest` that already has the
    /// right checksum is kept without a download; returns whether a download happened.
    pub fn download(&self, url: &str, dest: &Path, checksum: &Checksum) -> Result<bool> {
        if dest.exists() && file_matches(dest, checksum)? {
            return Ok(false);
        }
        let dir = dest
            .parent()
            .context("destination has no parent directory")?;
        let mut last = None;
        // A body cut short or corrupted in transit is retried like a failed request.
        for _ in 0..2 {
            let mut tmp = tempfile::Builder::new()
                .prefix(".download-")
                .suffix(".part")
                .tempfile_in(dir)
                .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
            let mut hasher = Hasher::new(&checksum.kind)?;
            let mut src = self.open(url)?;
            let mut buf = vec![0u8; 256 * 1024];
            let copied: Result<()> = (|| loop {
                let n = src
                    .read(&mut buf)
                    .with_context(|| format!("reading {url}"))?;
                if n == 0 {
                    return Ok(());
                }
                hasher.update(&buf[..n]);
                tmp.write_all(&buf[..n])
                    .with_context(|| format!("writing {}", tmp.path().display()))?;
            })();
            if let Err(e) = copied {
                last = Some(e);
                continue;
            }
            let got = hasher.finish();
            if got != checksum.hex {
                last = Some(
                    super::Error::DownloadMismatch {
                        url: url.to_string(),
                        kind: checksum.kind.clone(),
                        expected: checksum.hex.clone(),
                        actual: got,
                    }
                    .into(),
                );
                continue;
            }
            tmp.as_file()
                .sync_all()
                .with_context(|| format!("syncing {}", tmp.path().display()))?;
            tmp.persist(dest)
                .with_context(|| format!("renaming the download to {}", dest.display()))?;
            return Ok(true);
        }
        Err(last.expect("an attempt failed"))
    }
}

/// Whether the file at `path` has `checksum`.
pub fn file_matches(path: &Path, checksum: &Checksum) -> Result<bool> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Hasher::new(&checksum.kind)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish() == checksum.hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_covers_only_urls_below_its_base() {
        let a = RepoAuth {
            baseurl: "https://repo.example/el7/".into(),
            username: "u".into(),
            password: "s3cret".into(),
        };
        for (url, want) in [
            ("https://repo.example/el7/repodata/repomd.xml", true),
            ("https://repo.example:443/el7/Packages/a.rpm", true),
            ("https://repo.example/el7", true),
            ("https://repo.example/el70/x", false),
            ("https://repo.example/other/x", false),
            ("http://repo.example/el7/x", false),
            ("https://repo.example:8443/el7/x", false),
            ("https://cdn.example/el7/x", false),
        ] {
            assert_eq!(a.covers(url), want, "{url}");
        }
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn urls() {
        assert_eq!(
            join("http://h/repo/", "repodata/repomd.xml"),
            "http://h/repo/repodata/repomd.xml"
        );
        assert_eq!(join("file:///r", "/a.rpm"), "file:///r/a.rpm");
        assert_eq!(
            file_path("file:///tmp/a%20b/c%5Ed.rpm").unwrap(),
            Some(PathBuf::from("/tmp/a b/c^d.rpm"))
        );
        assert_eq!(
            file_path("file://localhost/x").unwrap(),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(file_path("http://h/x").unwrap(), None);
        assert!(file_path("file://relative").is_err());
    }
}
