//! The layout directory itself: `oci-layout`, `index.json` and where blobs live.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{parse_json, Index, Platform};
use crate::digest::Digest;
use crate::error::{format_err, io, Result};

/// The layout version this code writes and reads.
pub const LAYOUT_VERSION: &str = "1.0.0";
/// `oci-layout`.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// `index.json`.
pub const INDEX_FILE: &str = "index.json";
/// `blobs/sha256`.
pub const BLOBS_DIR: &str = "blobs/sha256";
/// Where partial blobs wait for verification.
pub const INGEST_DIR: &str = ".ingest";

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub(super) root: PathBuf,
    pub(super) platform: Platform,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayoutFile {
    image_layout_version: String,
}

impl Layout {
    /// Opens an existing layout: `oci-layout` must say version 1.0.0 and `index.json` must parse.
    pub fn open(dir: &Path) -> Result<Layout> {
        let p = dir.join(OCI_LAYOUT_FILE);
        let text = fs::read(&p).map_err(io("reading", &p))?;
        let l: OciLayoutFile = parse_json(&text, &p.display().to_string())?;
        if l.image_layout_version != LAYOUT_VERSION {
            return Err(format_err(
                p.display().to_string(),
                format!(
                    "imageLayoutVersion {} is not {LAYOUT_VERSION}",
                    l.image_layout_version
                ),
            ));
        }
        let layout = Layout {
            root: dir.to_path_buf(),
            platform: Platform::linux_for_rpm_arch("x86_64"),
        };
        layout.index()?;
        Ok(layout)
    }

    /// Opens the layout at `dir`, creating an empty one first if there is none.
    pub fn init(dir: &Path) -> Result<Layout> {
        let blobs = dir.join(BLOBS_DIR);
        fs::create_dir_all(&blobs).map_err(io("creating", &blobs))?;
        let lf = dir.join(OCI_LAYOUT_FILE);
        if !lf.exists() {
            let body = serde_json::to_vec(&OciLayoutFile {
                image_layout_version: LAYOUT_VERSION.to_string(),
            })
            .expect("serializes");
            kubeha_model::fsutil::write_atomic(&lf, &body, 0o644, true)?;
        }
        let ix = dir.join(INDEX_FILE);
        if !ix.exists() {
            write_json(&ix, &Index::empty())?;
        }
        Layout::open(dir)
    }

    /// Sets the platform that manifest lists / indexes are resolved to (default `linux/amd64`).
    pub fn with_platform(mut self, platform: Platform) -> Layout {
        self.platform = platform;
        self
    }

    /// The platform indexes are resolved to.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(BLOBS_DIR).join(digest.hex())
    }

    /// Whether a blob is present with the given size. Blobs only land after verification, so this is the cheap
    /// "already have it" test; [`Layout::verify_blob`] re-hashes.
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Reads `index.json`.
    pub fn index(&self) -> Result<Index> {
        let p = self.root.join(INDEX_FILE);
        let data = fs::read(&p).map_err(io("reading", &p))?;
        parse_json(&data, &p.display().to_string())
    }

    pub(super) fn write_index(&self, ix: &Index) -> Result<()> {
        write_json(&self.root.join(INDEX_FILE), ix)
    }
}

pub(super) fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(v).expect("serializes");
    kubeha_model::fsutil::write_atomic(path, &body, 0o644, true)?;
    Ok(())
}
