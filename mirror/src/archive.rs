//! Image archives streamed straight from a [`Layout`]'s blobs, never copied to disk first.
//!
//! [`write_docker_archive`] writes the dual format Docker 25+ `docker save` writes: a `manifest.json` for
//! `docker load` (moby `image/tarexport/load.go`: `Config`, `RepoTags`, `Layers`, paths inside the tar) **and** an
//! OCI layout (`oci-layout`, `index.json`, `blobs/sha256/...`), which containerd's importer prefers
//! (`ctr -n k8s.io images import`). Every blob is in the tar once, at `blobs/sha256/<hex>`, and is hashed while it
//! streams: a blob that does not match its digest aborts the archive with an error naming it.
//!
//! [`write_oci_archive`] writes the OCI layout part alone.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{format_err, Error, Result};
use crate::oci::{self, Descriptor, Image, Index, Layout, VerifyingReader};

/// One entry of `manifest.json` (moby `tarexport.manifestItem`).
#[derive(Debug, Serialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Writes a `docker load` archive (with an OCI layout inside for `ctr images import`) of `references` to `out`.
/// Each image's `RepoTags` is its stored reference; images without a tag (digest-only references) load untagged.
/// Returns the writer.
pub fn write_docker_archive<W: Write>(
    layout: &Layout,
    references: &[impl AsRef<str>],
    out: W,
) -> Result<W> {
    write_archive(layout, references, out, true)
}

/// Writes an OCI archive (`oci-layout`, `index.json` naming each image in both annotations, blobs) of
/// `references` to `out`.
pub fn write_oci_archive<W: Write>(
    layout: &Layout,
    references: &[impl AsRef<str>],
    out: W,
) -> Result<W> {
    write_archive(layout, references, out, false)
}

fn write_archive<W: Write>(
    layout: &Layout,
    references: &[impl AsRef<str>],
    out: W,
    docker: bool,
) -> Result<W> {
    if references.is_empty() {
        return Err(format_err("archive", "no images given"));
    }
    // Resolve everything before the first byte is written, so a missing image or a bad manifest fails cleanly.
    let mut images: Vec<Image> = Vec::new();
    for r in references {
        let img = layout.image(r.as_ref())?;
        let cfg = layout.config(&img)?;
        if cfg.rootfs.diff_ids.len() != img.manifest.layers.len() {
            return Err(format_err(
                format!("image {}", img.reference),
                format!(
                    "its config lists {} diff_ids for {} layers; docker load would reject it",
                    cfg.rootfs.diff_ids.len(),
                    img.manifest.layers.len()
                ),
            ));
        }
        images.push(img);
    }

    // manifest.json: one item per config (image ID), with every reference that names it as a RepoTag.
    let mut items: Vec<ManifestItem> = Vec::new();
    let mut by_config: BTreeMap<Digest, usize> = BTreeMap::new();
    let mut index = Index::empty();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut names: BTreeSet<String> = images.iter().map(|i| i.reference.clone()).collect();
    for img in &images {
        let tag = repo_tag(&img.reference);
        match by_config.get(&img.manifest.config.digest) {
            Some(&i) => items[i].repo_tags.extend(tag),
            None => {
                by_config.insert(img.manifest.config.digest.clone(), items.len());
                items.push(ManifestItem {
                    config: blob_name(&img.manifest.config.digest),
                    repo_tags: tag.into_iter().collect(),
                    layers: img
                        .manifest
                        .layers
                        .iter()
                        .map(|l| blob_name(&l.digest))
                        .collect(),
                });
            }
        }
        // The archive's index names the reference's platform manifest itself.
        let mut d = Descriptor::new(
            &img.descriptor.media_type,
            img.descriptor.digest.clone(),
            img.descriptor.size,
        );
        d.annotations
            .insert(oci::ANNOTATION_IMAGE_NAME.into(), img.reference.clone());
        d.annotations
            .insert(oci::ANNOTATION_REF_NAME.into(), img.reference.clone());
        index.manifests.push(d);
        // Also the name a registry pull would give it, `repo@<the registry's digest>`, pointing at that digest (the
        // manifest list when the platform manifest was chosen from one; only its platform's content is in the
        // archive), so a runtime resolves `image@sha256:...` references offline.
        if let Ok(r) = crate::reference::Reference::parse(&img.reference) {
            let target = img.index.as_ref().unwrap_or(&img.descriptor);
            let name = format!("{}@{}", r.name(), target.digest);
            if name != img.reference && names.insert(name.clone()) {
                let mut d = Descriptor::new(&target.media_type, target.digest.clone(), target.size);
                d.annotations
                    .insert(oci::ANNOTATION_IMAGE_NAME.into(), name.clone());
                d.annotations.insert(oci::ANNOTATION_REF_NAME.into(), name);
                index.manifests.push(d);
                if seen.insert(target.digest.clone()) {
                    blobs.push(target.clone());
                }
            }
        }
        for b in std::iter::once(&img.descriptor)
            .chain(std::iter::once(&img.manifest.config))
            .chain(img.manifest.layers.iter())
        {
            if seen.insert(b.digest.clone()) {
                blobs.push(b.clone());
            }
        }
    }

    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let wr = |e: io::Error| {
        Error::Io(kubeha_model::IoError {
            action: "writing the archive",
            path: "<output>".into(),
            source: e,
        })
    };
    append_bytes(
        &mut tar,
        oci::OCI_LAYOUT_FILE,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(wr)?;
    append_bytes(
        &mut tar,
        oci::INDEX_FILE,
        &serde_json::to_vec(&index).expect("serializes"),
    )
    .map_err(wr)?;
    if docker {
        append_bytes(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&items).expect("serializes"),
        )
        .map_err(wr)?;
    }
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, dir, io::empty()).map_err(wr)?;
    }
    for b in &blobs {
        let mut r = VerifyingReader::open(layout, b)?;
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(b.size);
        h.set_mtime(0);
        tar.append_data(&mut h, blob_name(&b.digest), &mut r)
            .map_err(wr)?;
        r.finish()?;
    }
    tar.into_inner().map_err(wr)
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    tar.append_data(&mut h, name, data)
}

/// The `RepoTags` entry for a stored reference: `name:tag` without a digest part; `None` for digest-only.
fn repo_tag(reference: &str) -> Option<String> {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.contains(':').then(|| no_digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags() {
        let d = format!("sha256:{}", "c".repeat(64));
        for (r, want) in [
            (
                "registry.k8s.io/pause:3.10",
                Some("registry.k8s.io/pause:3.10"),
            ),
            ("127.0.0.1:5000/x", None),
            ("127.0.0.1:5000/x:1", Some("127.0.0.1:5000/x:1")),
            (&*format!("quay.io/x:1@{d}"), Some("quay.io/x:1")),
            (&*format!("quay.io/x@{d}"), None),
        ] {
            assert_eq!(repo_tag(r).as_deref(), want, "reference {r}");
        }
    }
}
