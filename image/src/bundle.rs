//! Checks a bundle directory against its `bundle.toml` (every file present, its size and sha256) before any
//! medium is written, so a medium never carries a bundle that fails on the node.

use std::path::Path;

use kubeha_model::bundle::{BundleManifest, RPMS_DIR};

use crate::{Error, Result};

/// Files at or above this size need ISO 9660 level 3 (multi-extent files).
pub const ISO_LEVEL3_SIZE: u64 = 4 * 1024 * 1024 * 1024;

/// A verified bundle.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Its manifest.
    pub manifest: BundleManifest,
    /// Total bytes of its files.
    pub bytes: u64,
    /// The largest file's size.
    pub largest: u64,
}

/// Verifies `dir` against `dir/bundle.toml`.
pub fn verify(dir: &Path) -> Result<Verified> {
    let manifest = BundleManifest::load(dir)?;
    let bad = |file: &str, problem: String| Error::Bundle {
        dir: dir.to_path_buf(),
        file: file.to_string(),
        problem,
    };
    let repomd = format!("{RPMS_DIR}/repodata/repomd.xml");
    if !manifest.files.iter().any(|f| f.path == repomd) {
        return Err(bad(
            &repomd,
            "not listed in bundle.toml: the bundle's rpms/ is not a yum repository".into(),
        ));
    }
    for r in &manifest.rpms {
        if !manifest.files.iter().any(|f| f.path == r.path) {
            return Err(bad(
                &r.path,
                format!("RPM {} is not listed in bundle.toml's files", r.nevra),
            ));
        }
    }
    // Every file against its size and sha256, no unlisted file, every image complete: the same check as
    // `kubeha bundle verify`, so "intact" means one thing on the builder.
    kubeha_mirror::bundle::verify(dir).map_err(|source| Error::Verify {
        dir: dir.to_path_buf(),
        source,
    })?;
    let bytes = manifest.files.iter().map(|f| f.size).sum();
    let largest = manifest.files.iter().map(|f| f.size).max().unwrap_or(0);
    Ok(Verified {
        manifest,
        bytes,
        largest,
    })
}
