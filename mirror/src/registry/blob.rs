//! Blobs: downloaded into the layout's ingest area, resumed with `Range`, verified before they are named.

use std::io::{Read, Write};

use reqwest::header::{HeaderMap, HeaderValue, RANGE};
use reqwest::StatusCode;
use url::Url;

use super::client::Client;
use super::endpoint::Endpoint;
use super::request::Attempts;
use super::transport::{http_status_error, Failure};
use crate::error::{Error, Result};
use crate::oci::{Descriptor, Layout};
use crate::progress::Progress;

impl Client {
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
        let mut tries = Attempts::new(self);
        loop {
            let mut w = layout.blob_writer(&desc.digest, desc.size, what, true)?;
            let result = self.download_into(ep, &url, &mut w, desc, what, progress);
            let failure = match result {
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
                    Err(e) => Failure::Fatal(e),
                },
                Err(f) => f,
            };
            tries.failed(&url, what, failure)?;
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
}
