//! Small synthetic images for tests, demos and benchmarks: layers from in-memory files, gzip-compressed
//! deterministically (same files → same layer digest, so images built from the same base share that layer blob).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::digest::Digest;
use crate::error::{io, Result};
use crate::oci::{self, Descriptor, Layout};

/// A file in a synthetic layer.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A regular file: path (relative, no leading `/`), contents, mode.
    File(String, Vec<u8>, u32),
    /// A symlink: path, target.
    Symlink(String, String),
    /// A directory.
    Dir(String),
}

/// A built layer: compressed bytes plus both digests.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The gzip-compressed tar (the blob).
    pub blob: Vec<u8>,
    /// Digest of `blob`.
    pub digest: Digest,
    /// Digest of the uncompressed tar (the config's `diff_id`).
    pub diff_id: Digest,
}

/// Builds a layer from entries (tar with fixed mtime/owner, gzip).
pub fn layer(entries: &[Entry]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_slice())
                    .expect("in-memory tar");
            }
            Entry::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).expect("in-memory tar");
            }
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty())
                    .expect("in-memory tar");
            }
        }
    }
    let raw = b.into_inner().expect("in-memory tar");
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&raw).expect("in-memory gzip");
    let blob = gz.finish().expect("in-memory gzip");
    Layer {
        digest: Digest::of(&blob),
        diff_id: Digest::of(&raw),
        blob,
    }
}

/// A layer holding a static busybox (`/bin/busybox` plus `sh`, `echo`, `cat`, `ls` links), read from `path`
/// (Debian's busybox-static installs `/bin/busybox`).
pub fn busybox_layer(path: &std::path::Path) -> Result<Layer> {
    let data = std::fs::read(path).map_err(io("reading", path))?;
    let mut entries = vec![
        Entry::Dir("bin/".into()),
        Entry::File("bin/busybox".into(), data, 0o755),
    ];
    for l in ["sh", "echo", "cat", "ls", "true"] {
        entries.push(Entry::Symlink(format!("bin/{l}"), "busybox".into()));
    }
    Ok(layer(&entries))
}

/// Which manifest format to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker schema 2.
    Docker,
    /// OCI.
    Oci,
}

/// A built image: every blob and its manifest.
#[derive(Debug, Clone)]
pub struct SynthImage {
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Manifest descriptor (media type, digest, size).
    pub descriptor: Descriptor,
    /// Config bytes.
    pub config: Vec<u8>,
    /// Config digest.
    pub config_digest: Digest,
    /// The layers.
    pub layers: Vec<Layer>,
}

/// Builds an image for `linux/<arch>` from layers; `label` goes into the config so images with the same layers
/// still differ.
pub fn image(layers: &[Layer], format: Format, arch: &str, label: &str) -> SynthImage {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"kubeha.test": label},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "kubeha synth"})).collect::<Vec<_>>(),
    }))
    .expect("serializes");
    let config_digest = Digest::of(&config);
    let (mt, cfg_mt, layer_mt) = match format {
        Format::Docker => (
            oci::DOCKER_MANIFEST,
            oci::DOCKER_CONFIG,
            oci::DOCKER_LAYER_GZIP,
        ),
        Format::Oci => (oci::OCI_MANIFEST, oci::OCI_CONFIG, oci::OCI_LAYER_GZIP),
    };
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": cfg_mt, "digest": config_digest, "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": layer_mt, "digest": l.digest, "size": l.blob.len()
        })).collect::<Vec<_>>(),
    }))
    .expect("serializes");
    SynthImage {
        descriptor: Descriptor::new(mt, Digest::of(&manifest), manifest.len() as u64),
        manifest,
        config,
        config_digest,
        layers: layers.to_vec(),
    }
}

/// A manifest list (Docker) or index (OCI) over `(image, platform)` pairs; returns (bytes, descriptor).
pub fn index(entries: &[(&SynthImage, oci::Platform)], format: Format) -> (Vec<u8>, Descriptor) {
    let mt = match format {
        Format::Docker => oci::DOCKER_MANIFEST_LIST,
        Format::Oci => oci::OCI_INDEX,
    };
    let manifests: Vec<Descriptor> = entries
        .iter()
        .map(|(img, p)| {
            let mut d = img.descriptor.clone();
            d.platform = Some(p.clone());
            d
        })
        .collect();
    let bytes = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "manifests": manifests,
    }))
    .expect("serializes");
    let d = Descriptor::new(mt, Digest::of(&bytes), bytes.len() as u64);
    (bytes, d)
}

impl SynthImage {
    /// Stores every blob in `layout` and names the image `reference` there (the manifest byte for byte, see
    /// [`Layout::put_manifest`]); returns the stored manifest's descriptor.
    pub fn store(&self, layout: &Layout, reference: &str) -> Result<Descriptor> {
        for l in &self.layers {
            layout.put_blob("", &l.blob, Some(&l.digest), "synthetic layer")?;
        }
        layout.put_blob(
            "",
            &self.config,
            Some(&self.config_digest),
            "synthetic config",
        )?;
        let d = layout.put_manifest(&self.manifest, "synthetic manifest")?;
        layout.set_image(reference, &d)?;
        Ok(d)
    }
}
