//! Checks a bundle directory against its `bundle.toml` (every file present, its size and sha256) before any
//! medium is written, so a medium never carries a bundle that fails on the node.

use std::io::Read;
use std::path::Path;

use kubeha_model::bundle::{BundleManifest, RPMS_DIR};
use sha2::{Digest, Sha256};

use crate::{io, Error, Result};

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
    let (mut bytes, mut largest) = (0u64, 0u64);
    for f in &manifest.files {
        let p = dir.join(&f.path);
        let meta = std::fs::metadata(&p).map_err(|e| bad(&f.path, format!("missing ({e})")))?;
        if !meta.is_file() {
            return Err(bad(&f.path, "not a regular file".into()));
        }
        if meta.len() != f.size {
            return Err(bad(
                &f.path,
                format!("size {} but bundle.toml says {}", meta.len(), f.size),
            ));
        }
        let mut h = Sha256::new();
        let mut file = std::fs::File::open(&p).map_err(io("opening", &p))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io("reading", &p))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let got = hex::encode(h.finalize());
        if got != f.sha256 {
            return Err(bad(
                &f.path,
                format!("sha256 {got} but bundle.toml says {}", f.sha256),
            ));
        }
        bytes += f.size;
        largest = largest.max(f.size);
    }
    Ok(Verified {
        manifest,
        bytes,
        largest,
    })
}

/// The packages the kickstart installs: the bundle's requested RPM names.
pub fn requested_packages(m: &BundleManifest) -> Vec<String> {
    let mut names: Vec<String> = m
        .rpms
        .iter()
        .filter(|r| r.requested)
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}
