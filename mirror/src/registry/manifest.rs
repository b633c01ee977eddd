//! Manifests: fetched by tag or digest and checked, a manifest list resolved to the profile's platform.

use std::io::Read;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;

use super::client::Client;
use super::endpoint::Endpoint;
use super::transport::http_status_error;
use crate::digest::Digest;
use crate::error::{format_err, Error, Result};
use crate::oci::{self, Descriptor, Index, Manifest};
use crate::reference::Reference;

/// The `Accept` header for manifests: all four schema 2 / OCI types (without it registries may down-convert to
/// schema 1).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Manifests larger than this are refused (the distribution spec suggests registries cap them at 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;

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

impl Client {
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
}
