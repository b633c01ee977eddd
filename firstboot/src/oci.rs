//! Reading images out of the bundle's OCI image layout and streaming them as one archive in both formats at once, as
//! `docker save` does since Docker 25: an OCI image layout (`oci-layout`, `index.json` with the full reference in
//! `io.containerd.image.name`, `blobs/sha256/`) plus the docker-archive `manifest.json` pointing at the same blobs
//! (contracts §5.3–5.4). `ctr images import` prefers the OCI layout, so containerd keeps the bundle's exact manifest
//! digests (and images referenced by digest resolve); `docker load` (20.10 and older) reads `manifest.json`. Blobs
//! are verified against their digests before anything is streamed.
//!
//! NOTE(firstboot): a small local reader. The mirror crate's `oci::Layout` / `archive::write_docker_archive` cover the
//! same ground for the build host; switching to them needs only [`write_image_archive`]'s call site.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// OCI and Docker manifest list / index media types.
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Platform (in an index).
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// A platform.
#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    /// `amd64`.
    pub architecture: String,
    /// `linux`.
    pub os: String,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Media type (may be absent in OCI manifests).
    #[serde(default)]
    pub media_type: String,
    /// The config blob.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Entries, when this is an index.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory holding `oci-layout`, `index.json` and `blobs/`.
    pub dir: PathBuf,
}

/// Checks a digest's form and returns its hex part (so it can never name a path outside `blobs/sha256`).
pub fn digest_hex(d: &str) -> Result<&str> {
    match d.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(h)
        }
        _ => bail!("'{d}' is not a sha256 digest"),
    }
}

impl Layout {
    /// Opens a layout, checking its `oci-layout` marker.
    pub fn open(dir: &Path) -> Result<Layout> {
        let marker = dir.join("oci-layout");
        let text = std::fs::read_to_string(&marker)
            .with_context(|| format!("reading {}", marker.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", marker.display()))?;
        if v["imageLayoutVersion"] != "1.0.0" {
            bail!("{}: imageLayoutVersion is not 1.0.0", marker.display());
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// The path of a blob.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join("blobs/sha256").join(digest_hex(digest)?))
    }

    /// Hashes a blob and checks it against its digest (and size, when known).
    pub fn verify_blob(&self, digest: &str, size: Option<u64>) -> Result<()> {
        let p = self.blob_path(digest)?;
        let mut f = File::open(&p).with_context(|| format!("opening blob {}", p.display()))?;
        if let Some(want) = size {
            let got = f.metadata()?.len();
            if got != want {
                bail!("blob {digest}: {got} bytes, the manifest says {want}");
            }
        }
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h).with_context(|| format!("reading blob {}", p.display()))?;
        let got = format!("sha256:{}", hex::encode(h.finalize()));
        if got != digest {
            bail!(
                "blob {} is corrupt: its content hashes to {got}",
                p.display()
            );
        }
        Ok(())
    }

    /// Reads a small blob (a manifest or config) and verifies it.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        let data = std::fs::read(&p).with_context(|| format!("reading blob {}", p.display()))?;
        let got = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        if got != digest {
            bail!(
                "blob {} is corrupt: its content hashes to {got}",
                p.display()
            );
        }
        Ok(data)
    }

    /// The image manifest for `digest`, resolving an index to its linux/amd64 entry.
    pub fn manifest(&self, digest: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(&self.read_blob(digest)?)
            .with_context(|| format!("parsing manifest {digest}"))?;
        if INDEX_TYPES.contains(&m.media_type.as_str())
            || (!m.manifests.is_empty() && m.config.is_none())
        {
            let e = m
                .manifests
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                })
                .with_context(|| format!("index {digest} has no linux/amd64 manifest"))?;
            return self.manifest(&e.digest.clone());
        }
        if m.config.is_none() {
            bail!("manifest {digest} has no config");
        }
        Ok(m)
    }

    /// Verifies every blob of an image (manifest, config, layers) against its digest.
    pub fn verify_image(&self, digest: &str) -> Result<Manifest> {
        let m = self.manifest(digest)?;
        let c = m.config.as_ref().expect("checked in manifest()");
        self.verify_blob(&c.digest, Some(c.size))?;
        for l in &m.layers {
            self.verify_blob(&l.digest, Some(l.size))?;
        }
        Ok(m)
    }
}

/// One image to put in an archive.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// The name it gets (`registry.k8s.io/pause:3.10`): must carry a tag.
    pub reference: String,
    /// The digest of its (platform) manifest in the layout.
    pub digest: String,
    /// Its manifest (already verified).
    pub manifest: Manifest,
}

fn append_file<W: Write>(tar: &mut tar::Builder<W>, name: &str, path: &Path) -> Result<()> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = tar::Header::new_gnu();
    h.set_size(f.metadata()?.len());
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, &mut f)
        .with_context(|| format!("archiving {}", path.display()))?;
    Ok(())
}

/// Whether a reference carries a tag (docker load's RepoTags must be name:tag).
pub fn has_tag(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    !reference.contains('@') && last.contains(':')
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)?;
    Ok(())
}

/// Streams an archive of `images` to `w`: every blob once under `blobs/sha256/` (manifests, configs, layers), then
/// `oci-layout`, `index.json` and `manifest.json`.
pub fn write_image_archive<W: Write>(layout: &Layout, images: &[ArchiveImage], w: W) -> Result<()> {
    let mut tar = tar::Builder::new(w);
    let mut written = BTreeSet::new();
    let mut manifest = Vec::new();
    let mut index = Vec::new();
    for img in images {
        if !has_tag(&img.reference) {
            bail!("{}: an image loaded by name needs a tag", img.reference);
        }
        let c = img
            .manifest
            .config
            .as_ref()
            .context("manifest without config")?;
        let mblob = layout.read_blob(&img.digest)?;
        let mname = format!("blobs/sha256/{}", digest_hex(&img.digest)?);
        if written.insert(mname.clone()) {
            append_bytes(&mut tar, &mname, &mblob)?;
        }
        let media_type = if img.manifest.media_type.is_empty() {
            "application/vnd.oci.image.manifest.v1+json".to_string()
        } else {
            img.manifest.media_type.clone()
        };
        let tag = img
            .reference
            .rsplit_once(':')
            .map(|(_, t)| t)
            .unwrap_or("latest");
        index.push(serde_json::json!({
            "mediaType": media_type,
            "digest": img.digest,
            "size": mblob.len(),
            // containerd stores this name as is, and CRI looks images up by their normalized name.
            "annotations": {
                "io.containerd.image.name": normalize_reference(&img.reference),
                "org.opencontainers.image.ref.name": tag,
            },
        }));
        let mut layers = Vec::new();
        for d in std::iter::once(c).chain(img.manifest.layers.iter()) {
            let name = format!("blobs/sha256/{}", digest_hex(&d.digest)?);
            if written.insert(name.clone()) {
                append_file(&mut tar, &name, &layout.blob_path(&d.digest)?)?;
            }
            layers.push(name);
        }
        let config = layers.remove(0);
        manifest.push(
            serde_json::json!({"Config": config, "RepoTags": [img.reference], "Layers": layers}),
        );
    }
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": index,
    });
    append_bytes(&mut tar, "index.json", &serde_json::to_vec(&index)?)?;
    append_bytes(&mut tar, "manifest.json", &serde_json::to_vec(&manifest)?)?;
    tar.into_inner()?.flush()?;
    Ok(())
}

/// containerd's normalized name of a reference (`busybox:1` → `docker.io/library/busybox:1`), as `ctr images ls`
/// prints it.
pub fn normalize_reference(r: &str) -> String {
    let (first, rest) = match r.split_once('/') {
        Some((f, rest)) => (f, Some(rest)),
        None => (r, None),
    };
    match rest {
        Some(_) if first.contains('.') || first.contains(':') || first == "localhost" => {
            r.to_string()
        }
        Some(_) => format!("docker.io/{r}"),
        None => format!("docker.io/library/{r}"),
    }
}

/// Test and fixture helper: builds a one-layer image in a layout from files `(path, content)`.
pub fn build_test_image(
    dir: &Path,
    reference: &str,
    files: &[(&str, &[u8], u32)],
) -> Result<String> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let put = |data: &[u8]| -> Result<(String, u64)> {
        let d = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        std::fs::write(blobs.join(&d[7..]), data)?;
        Ok((d, data.len() as u64))
    };
    let mut layer = tar::Builder::new(Vec::new());
    for (p, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        layer.append_data(&mut h, p, *data)?;
    }
    let layer = layer.into_inner()?;
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer)?;
    let (ld, ls) = put(&gz.finish()?)?;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let (cd, cs) = put(&serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}],
    });
    let (md, ms) = put(&serde_json::to_vec(&manifest)?)?;
    let ip = dir.join("index.json");
    let mut index: serde_json::Value = match std::fs::read(&ip) {
        Ok(b) => serde_json::from_slice(&b)?,
        Err(_) => serde_json::json!({"schemaVersion": 2, "manifests": []}),
    };
    index["manifests"].as_array_mut().context("index.json manifests")?.push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": reference},
    }));
    std::fs::write(ip, serde_json::to_vec(&index)?)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archive_roundtrip_and_verification() {
        let d = tempfile::tempdir().unwrap();
        let a = build_test_image(
            d.path(),
            "registry.k8s.io/pause:3.10",
            &[("pause", b"#!/bin/sh\n", 0o755)],
        )
        .unwrap();
        let b = build_test_image(d.path(), "calico/node:v3", &[("x", b"y", 0o644)]).unwrap();
        let l = Layout::open(d.path()).unwrap();
        let imgs: Vec<ArchiveImage> = [("registry.k8s.io/pause:3.10", &a), ("calico/node:v3", &b)]
            .iter()
            .map(|(r, d)| ArchiveImage {
                reference: r.to_string(),
                digest: d.to_string(),
                manifest: l.verify_image(d).unwrap(),
            })
            .collect();
        let mut out = Vec::new();
        write_image_archive(&l, &imgs, &mut out).unwrap();
        let mut ar = tar::Archive::new(out.as_slice());
        let mut names = Vec::new();
        let mut manifest = None;
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let n = e.path().unwrap().to_string_lossy().into_owned();
            if n == "index.json" {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                let v: serde_json::Value = serde_json::from_str(&s).unwrap();
                assert_eq!(v["manifests"][0]["digest"], a.as_str());
                assert_eq!(
                    v["manifests"][1]["annotations"]["io.containerd.image.name"],
                    "docker.io/calico/node:v3"
                );
            } else if n == "manifest.json" {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                manifest = Some(serde_json::from_str::<serde_json::Value>(&s).unwrap());
            }
            names.push(n);
        }
        let m = manifest.unwrap();
        assert_eq!(m[0]["RepoTags"][0], "registry.k8s.io/pause:3.10");
        assert_eq!(m[1]["Layers"].as_array().unwrap().len(), 1);
        assert_eq!(
            names.len(),
            9,
            "two manifests, configs and layers, oci-layout, index.json, manifest.json: {names:?}"
        );

        // A corrupted layer is caught before anything is streamed.
        let layer = &imgs[0].manifest.layers[0].digest;
        let p = l.blob_path(layer).unwrap();
        let mut data = std::fs::read(&p).unwrap();
        data[0] ^= 1;
        std::fs::write(&p, data).unwrap();
        let e = l.verify_image(&a).unwrap_err().to_string();
        assert!(e.contains("corrupt"), "{e}");
        assert!(digest_hex("sha256:../../etc/passwd").is_err());
    }

    #[test]
    fn reference_normalization() {
        for (r, want) in [
            ("busybox:1", "docker.io/library/busybox:1"),
            ("calico/node:v3.28.2", "docker.io/calico/node:v3.28.2"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("localhost/x:1", "localhost/x:1"),
            ("reg:5000/x:1", "reg:5000/x:1"),
        ] {
            assert_eq!(normalize_reference(r), want, "{r}");
        }
        assert!(has_tag("reg:5000/x:1") && !has_tag("reg:5000/x") && !has_tag("x@sha256:00"));
    }
}
