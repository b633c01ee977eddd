//! One OCI image layout shared by all images of a bundle (image-spec `image-layout.md`):
//!
//! ```text
//! oci-layout            {"imageLayoutVersion": "1.0.0"}
//! index.json            one manifest descriptor per image reference, annotated with
//!                       io.containerd.image.name and org.opencontainers.image.ref.name = the full reference
//! blobs/sha256/<hex>    manifests, configs and layers, each stored once however many images share it
//! ```
//!
//! Both annotations carry the full normalized reference (`registry.k8s.io/pause:3.10`), not just the tag: the layout
//! holds many repositories, and a tag alone (`3.10`) would be ambiguous. containerd's importer reads the first,
//! skopeo's `oci:DIR:REF` the second.
//!
//! Every manifest, manifest list / index and config is stored byte for byte as the registry served it, with its own
//! media type (Docker schema 2 stays Docker schema 2), so every stored digest is the registry's
//! `Docker-Content-Digest` and `image@sha256:...` references, signatures and `skopeo copy --preserve-digests` agree
//! with the bundle. An `index.json` entry names the platform manifest; when that was chosen from a manifest list /
//! index, the list is stored too and the entry carries its digest in [`ANNOTATION_INDEX_DIGEST`], so the image is
//! found by either digest ([`Layout::entry`]). The OCI image layout spec allows any descriptor media type in
//! `index.json`; containerd's importer and this crate read Docker-typed entries, skopeo 1.9's `oci:` transport does
//! not (docs/bundle.md).
//!
//! A blob only ever appears under `blobs/sha256/` after it was hashed and its digest and size matched ([`BlobWriter`]);
//! partial downloads live in `.ingest/` until then. Readers can therefore trust a present blob of the right size for
//! "already have it" decisions, and [`Layout::verify_image`] re-hashes everything when proof is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher, HashingReader, HashingWriter};
use crate::error::{format_err, io, Error, Result};

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The annotation containerd (and `ctr images import`) names images by.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI reference-name annotation (skopeo's `oci:DIR:REF`).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// On an `index.json` entry: the digest of the manifest list / index its platform manifest was chosen from (stored
/// in the layout as served).
pub const ANNOTATION_INDEX_DIGEST: &str = "io.kubeha.image.index.digest";

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

/// Whether a media type is an image manifest (Docker schema 2 or OCI).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST || media_type == OCI_MANIFEST
}

/// Whether a media type is a manifest list / image index.
pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_LIST || media_type == OCI_INDEX
}

/// A platform (`linux/amd64`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (GOARCH names: `amd64`, `arm64`).
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// CPU variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/<arch>` for an RPM arch name (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn linux_for_rpm_arch(arch: &str) -> Platform {
        let a = match arch {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "ppc64le" => "ppc64le",
            "s390x" => "s390x",
            other => other,
        };
        Platform {
            architecture: a.to_string(),
            os: "linux".to_string(),
            os_version: None,
            variant: None,
        }
    }

    /// Whether an entry's platform fits this one (a variant is only compared when both name one).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Platform (entries of a manifest list / index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Alternative URLs (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Fields this code does not interpret, kept when the index is rewritten.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
            other: serde_json::Map::new(),
        }
    }

    /// The image reference an `index.json` entry names: `io.containerd.image.name`, else
    /// `org.opencontainers.image.ref.name`.
    pub fn image_name(&self) -> Option<&str> {
        self.annotations
            .get(ANNOTATION_IMAGE_NAME)
            .or_else(|| self.annotations.get(ANNOTATION_REF_NAME))
            .map(String::as_str)
    }
}

/// An image manifest (Docker schema 2 or OCI; the same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Its media type, when the document states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest list / image index (also the shape of `index.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Its media type, when the document states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this code does not interpret.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Index {
    /// An empty OCI index.
    pub fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
            other: serde_json::Map::new(),
        }
    }

    /// The entry for `platform`: the first matching one, skipping attestation manifests (`unknown/unknown`).
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            is_manifest(&d.media_type) && d.platform.as_ref().is_some_and(|p| platform.matches(p))
        })
    }
}

/// The parts of an image config kubeha reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// OS.
    #[serde(default)]
    pub os: String,
    /// The root filesystem.
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// sha256 of each uncompressed layer tar, base first.
    pub diff_ids: Vec<Digest>,
}

/// Parses JSON bytes, naming `what` in the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| format_err(what, format!("not valid JSON for its type: {e}")))
}

/// The media type a manifest document declares, checked against what the descriptor or server said.
pub fn manifest_media_type(bytes: &[u8], claimed: Option<&str>, what: &str) -> Result<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let p: Probe = parse_json(bytes, what)?;
    if p.schema_version != Some(2) {
        return Err(format_err(
            what,
            "not a schema 2 manifest (schema 1 manifests are not supported)",
        ));
    }
    let declared = p.media_type.clone();
    let mt = match (declared.as_deref(), claimed) {
        // A generic Content-Type (application/json, text/plain from a static mirror) says nothing; a different
        // manifest type does.
        (Some(d), Some(c)) if d != c && (is_manifest(c) || is_index(c)) => {
            return Err(format_err(
                what,
                format!("the document says mediaType {d} but it was served/described as {c}"),
            ))
        }
        (Some(d), _) => d.to_string(),
        (None, Some(c)) if is_manifest(c) || is_index(c) => c.to_string(),
        (None, _) if p.manifests.is_some() => OCI_INDEX.to_string(),
        (None, _) if p.config.is_some() => OCI_MANIFEST.to_string(),
        (None, _) => return Err(format_err(what, "neither a manifest nor an index")),
    };
    if !is_manifest(&mt) && !is_index(&mt) {
        return Err(format_err(
            what,
            format!("unsupported manifest media type {mt}"),
        ));
    }
    Ok(mt)
}

/// An image as stored: its name, manifest descriptor and parsed manifest.
#[derive(Debug, Clone)]
pub struct Image {
    /// The reference it is stored under.
    pub reference: String,
    /// The `index.json` entry (pointing at a platform manifest, or at an index resolved to `manifest`).
    pub entry: Descriptor,
    /// The manifest list / index the platform manifest was chosen from, when the layout holds it
    /// ([`ANNOTATION_INDEX_DIGEST`], or an entry that is itself an index).
    pub index: Option<Descriptor>,
    /// The platform manifest's descriptor.
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
}

impl Image {
    /// Every blob of the image: manifest list / index (when stored), manifest, config, layers (each once).
    pub fn blobs(&self) -> Vec<Descriptor> {
        let mut v = Vec::new();
        if let Some(ix) = &self.index {
            v.push(ix.clone());
        }
        v.push(self.descriptor.clone());
        v.push(self.manifest.config.clone());
        v.extend(self.manifest.layers.iter().cloned());
        v
    }

    /// Config + layer bytes.
    pub fn size(&self) -> u64 {
        self.manifest.config.size + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    platform: Platform,
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

    /// Reads a whole blob and checks its digest (and size, when given).
    pub fn read_blob(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        let data = fs::read(&p).map_err(io("reading", &p))?;
        if let Some(s) = size {
            if data.len() as u64 != s {
                return Err(Error::SizeMismatch {
                    what: p.display().to_string(),
                    expected: s,
                    actual: data.len() as u64,
                });
            }
        }
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: p.display().to_string(),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }

    /// Re-hashes a stored blob against its descriptor.
    pub fn verify_blob(&self, desc: &Descriptor) -> Result<()> {
        let p = self.blob_path(&desc.digest);
        let meta = fs::metadata(&p).map_err(io("reading", &p))?;
        if meta.len() != desc.size {
            return Err(Error::SizeMismatch {
                what: p.display().to_string(),
                expected: desc.size,
                actual: meta.len(),
            });
        }
        let h = crate::digest::hash_file(&p)?;
        if h.digest() != desc.digest {
            return Err(Error::DigestMismatch {
                what: p.display().to_string(),
                expected: desc.digest.to_string(),
                actual: h.digest().to_string(),
            });
        }
        Ok(())
    }

    /// Stores bytes as a blob after checking them against `expected` (when given); returns their descriptor.
    pub fn put_blob(
        &self,
        media_type: &str,
        data: &[u8],
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<Descriptor> {
        let digest = Digest::of(data);
        if let Some(e) = expected {
            if e != &digest {
                return Err(Error::DigestMismatch {
                    what: what.to_string(),
                    expected: e.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let desc = Descriptor::new(media_type, digest, data.len() as u64);
        if !self.has_blob(&desc.digest, desc.size) {
            let mut w = self.blob_writer(&desc.digest, desc.size, what, false)?;
            w.write_all(data)
                .map_err(io("writing", &w.partial_path()))?;
            w.commit()?;
        }
        Ok(desc)
    }

    /// Stores a verified image manifest (Docker schema 2 or OCI) byte for byte, with the media type it declares;
    /// its config and layers must already be in the layout. Returns the stored manifest's descriptor.
    pub fn put_manifest(&self, bytes: &[u8], what: &str) -> Result<Descriptor> {
        let mt = manifest_media_type(bytes, None, what)?;
        if !is_manifest(&mt) {
            return Err(format_err(what, format!("not an image manifest ({mt})")));
        }
        let m: Manifest = parse_json(bytes, what)?;
        for b in std::iter::once(&m.config).chain(m.layers.iter()) {
            if !self.has_blob(&b.digest, b.size) {
                return Err(format_err(
                    what,
                    format!("its blob {} is not in the layout yet", b.digest),
                ));
            }
        }
        self.put_blob(&mt, bytes, None, what)
    }

    /// Stores a verified manifest list / index byte for byte, with the media type it declares. Only the entries a
    /// reader needs (the chosen platform's manifest) have to be in the layout. Returns its descriptor.
    pub fn put_index(&self, bytes: &[u8], what: &str) -> Result<Descriptor> {
        let mt = manifest_media_type(bytes, None, what)?;
        if !is_index(&mt) {
            return Err(format_err(
                what,
                format!("not a manifest list / index ({mt})"),
            ));
        }
        parse_json::<Index>(bytes, what)?;
        self.put_blob(&mt, bytes, None, what)
    }

    /// Starts writing a blob that must end up with `digest` and `size`. With `resume`, bytes of an earlier partial
    /// download are kept and hashed first ([`BlobWriter::offset`] says how many).
    pub fn blob_writer(
        &self,
        digest: &Digest,
        size: u64,
        what: &str,
        resume: bool,
    ) -> Result<BlobWriter> {
        let dir = self.root.join(INGEST_DIR);
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let partial = dir.join(format!("{}.partial", digest.hex()));
        let mut hasher = Hasher::new();
        let file = if resume && partial.exists() {
            let h = crate::digest::hash_file(&partial)?;
            if h.len() > size {
                fs::remove_file(&partial).map_err(io("removing", &partial))?;
                File::create(&partial).map_err(io("creating", &partial))?
            } else {
                hasher = h;
                fs::OpenOptions::new()
                    .append(true)
                    .open(&partial)
                    .map_err(io("opening", &partial))?
            }
        } else {
            File::create(&partial).map_err(io("creating", &partial))?
        };
        Ok(BlobWriter {
            target: self.blob_path(digest),
            partial,
            digest: digest.clone(),
            size,
            what: what.to_string(),
            inner: Some(HashingWriter::new(
                io::BufWriter::with_capacity(1 << 20, file),
                hasher,
            )),
        })
    }

    /// Reads `index.json`.
    pub fn index(&self) -> Result<Index> {
        let p = self.root.join(INDEX_FILE);
        let data = fs::read(&p).map_err(io("reading", &p))?;
        parse_json(&data, &p.display().to_string())
    }

    fn write_index(&self, ix: &Index) -> Result<()> {
        write_json(&self.root.join(INDEX_FILE), ix)
    }

    /// Every named image: (reference, `index.json` entry), in index order.
    pub fn images(&self) -> Result<Vec<(String, Descriptor)>> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|d| d.image_name().map(|n| (n.to_string(), d.clone())))
            .collect())
    }

    /// The `index.json` entry for a reference (exact, else after normalizing both sides, else by digest).
    pub fn entry(&self, reference: &str) -> Result<Descriptor> {
        Ok(self.find(reference)?.1)
    }

    /// Finds an image: by its stored name (exact, else after normalizing both sides), else, for a reference with a
    /// digest (`repo@sha256:...`), the image of that repository whose platform manifest or manifest list / index
    /// has that digest. Returns the name to use (the one asked for when it matched by name, else the stored one)
    /// and the entry.
    fn find(&self, reference: &str) -> Result<(String, Descriptor)> {
        let images = self.images()?;
        if let Some((_, d)) = images.iter().find(|(n, _)| n == reference) {
            return Ok((reference.to_string(), d.clone()));
        }
        if let Ok(want) = crate::reference::normalize(reference) {
            if let Some((_, d)) = images
                .iter()
                .find(|(n, _)| crate::reference::normalize(n).is_ok_and(|n| n == want))
            {
                return Ok((reference.to_string(), d.clone()));
            }
        }
        if let Ok(want) = crate::reference::Reference::parse(reference) {
            if let Some(dg) = &want.digest {
                let hit = images.iter().find(|(n, d)| {
                    crate::reference::Reference::parse(n).is_ok_and(|r| r.name() == want.name())
                        && (&d.digest == dg
                            || d.annotations
                                .get(ANNOTATION_INDEX_DIGEST)
                                .map(String::as_str)
                                == Some(dg.as_str()))
                });
                if let Some((n, d)) = hit {
                    return Ok((n.clone(), d.clone()));
                }
            }
        }
        Err(Error::NoSuchImage {
            reference: reference.to_string(),
            layout: self.root.clone(),
        })
    }

    /// Loads an image: its entry, resolved through an index to [`Layout::platform`] if needed, its manifest list /
    /// index when stored ([`ANNOTATION_INDEX_DIGEST`]; it must list the manifest) and its manifest (digest-checked).
    /// A reference with a digest finds the image by its platform manifest's or its list's digest.
    pub fn image(&self, reference: &str) -> Result<Image> {
        let (name, entry) = self.find(reference)?;
        let mut desc = entry.clone();
        let mut index = None;
        if is_index(&desc.media_type) {
            let bytes = self.read_blob(&desc.digest, Some(desc.size))?;
            let ix: Index = parse_json(&bytes, &format!("index {} of {name}", desc.digest))?;
            index = Some(desc.clone());
            desc = ix
                .select(&self.platform)
                .ok_or_else(|| {
                    format_err(
                        format!("image {name}"),
                        format!("its index has no manifest for {}", self.platform),
                    )
                })?
                .clone();
        } else if let Some(d) = entry.annotations.get(ANNOTATION_INDEX_DIGEST) {
            let what = format!("manifest list {d} of {name}");
            let dg = Digest::parse(d).map_err(|_| {
                format_err(
                    format!("image {name}"),
                    format!("bad {ANNOTATION_INDEX_DIGEST} annotation {d}"),
                )
            })?;
            let bytes = self.read_blob(&dg, None)?;
            let mt = manifest_media_type(&bytes, None, &what)?;
            let ix: Index = parse_json(&bytes, &what)?;
            if !is_index(&mt)
                || !ix
                    .manifests
                    .iter()
                    .any(|m| m.digest == desc.digest && m.size == desc.size)
            {
                return Err(format_err(
                    what,
                    format!("not a manifest list naming {}", desc.digest),
                ));
            }
            index = Some(Descriptor::new(&mt, dg, bytes.len() as u64));
        }
        if !is_manifest(&desc.media_type) {
            return Err(format_err(
                format!("image {name}"),
                format!("unsupported manifest media type {}", desc.media_type),
            ));
        }
        let bytes = self.read_blob(&desc.digest, Some(desc.size))?;
        let manifest: Manifest =
            parse_json(&bytes, &format!("manifest {} of {name}", desc.digest))?;
        Ok(Image {
            reference: name,
            entry,
            index,
            descriptor: desc,
            manifest,
        })
    }

    /// Re-hashes every blob of an image (index, manifest, config, layers) and checks that the config's `diff_ids`
    /// match the layer count. Returns the image.
    pub fn verify_image(&self, reference: &str) -> Result<Image> {
        let img = self.image(reference)?;
        for b in img.blobs() {
            self.verify_blob(&b)?;
        }
        let cfg = self.config(&img)?;
        if cfg.rootfs.diff_ids.len() != img.manifest.layers.len() {
            return Err(format_err(
                format!("image {reference}"),
                format!(
                    "its config lists {} diff_ids for {} layers",
                    cfg.rootfs.diff_ids.len(),
                    img.manifest.layers.len()
                ),
            ));
        }
        Ok(img)
    }

    /// Reads an image's config (digest-checked).
    pub fn config(&self, img: &Image) -> Result<ImageConfig> {
        let c = &img.manifest.config;
        let bytes = self.read_blob(&c.digest, Some(c.size))?;
        parse_json(&bytes, &format!("config {} of {}", c.digest, img.reference))
    }

    /// Names `desc` as `reference` in `index.json`, replacing an older entry of that name.
    pub fn set_image(&self, reference: &str, desc: &Descriptor) -> Result<()> {
        self.set_images(&[(reference.to_string(), desc.clone())])
    }

    /// Names several images at once (one `index.json` write). A descriptor's [`ANNOTATION_INDEX_DIGEST`] is kept
    /// (that list must be in the layout too).
    pub fn set_images(&self, images: &[(String, Descriptor)]) -> Result<()> {
        let mut ix = self.index()?;
        for (reference, desc) in images {
            if !self.has_blob(&desc.digest, desc.size) {
                return Err(format_err(
                    format!("image {reference}"),
                    format!("its manifest {} is not in the layout", desc.digest),
                ));
            }
            ix.manifests
                .retain(|d| d.image_name() != Some(reference.as_str()));
            let mut d = Descriptor::new(&desc.media_type, desc.digest.clone(), desc.size);
            if let Some(ix) = desc.annotations.get(ANNOTATION_INDEX_DIGEST) {
                let dg = Digest::parse(ix).map_err(|_| {
                    format_err(
                        format!("image {reference}"),
                        format!("bad index digest {ix}"),
                    )
                })?;
                if !self.blob_path(&dg).is_file() {
                    return Err(format_err(
                        format!("image {reference}"),
                        format!("its manifest list {dg} is not in the layout"),
                    ));
                }
                d.annotations
                    .insert(ANNOTATION_INDEX_DIGEST.into(), ix.clone());
            }
            d.annotations
                .insert(ANNOTATION_IMAGE_NAME.into(), reference.clone());
            d.annotations
                .insert(ANNOTATION_REF_NAME.into(), reference.clone());
            ix.manifests.push(d);
        }
        self.write_index(&ix)
    }

    /// Removes every named image not in `keep` from `index.json`; returns the removed names.
    pub fn retain_images(&self, keep: &BTreeSet<String>) -> Result<Vec<String>> {
        let mut ix = self.index()?;
        let mut removed = Vec::new();
        ix.manifests.retain(|d| match d.image_name() {
            Some(n) if !keep.contains(n) => {
                removed.push(n.to_string());
                false
            }
            _ => true,
        });
        if !removed.is_empty() {
            self.write_index(&ix)?;
        }
        Ok(removed)
    }

    /// Deletes blobs no `index.json` entry reaches, and leftover partial downloads. Returns the bytes freed.
    pub fn gc(&self) -> Result<u64> {
        let mut live = BTreeSet::new();
        for (name, entry) in self.images()? {
            live.insert(entry.digest.hex().to_string());
            if let Some(d) = entry.annotations.get(ANNOTATION_INDEX_DIGEST) {
                if let Ok(d) = Digest::parse(d) {
                    live.insert(d.hex().to_string());
                }
            }
            if let Ok(img) = self.image(&name) {
                for b in img.blobs() {
                    live.insert(b.digest.hex().to_string());
                }
            }
            // An index entry keeps every platform's manifest it lists reachable, but only the selected platform's
            // blobs are downloaded; the other manifests are simply absent.
            if is_index(&entry.media_type) {
                if let Ok(bytes) = self.read_blob(&entry.digest, None) {
                    if let Ok(ix) = parse_json::<Index>(&bytes, "index") {
                        live.extend(ix.manifests.iter().map(|d| d.digest.hex().to_string()));
                    }
                }
            }
        }
        let mut freed = 0;
        let dir = self.root.join(BLOBS_DIR);
        for e in fs::read_dir(&dir).map_err(io("reading", &dir))? {
            let e = e.map_err(io("reading", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) {
                freed += e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).map_err(io("removing", &e.path()))?;
            }
        }
        self.clean_ingest()?;
        Ok(freed)
    }

    /// Removes the partial-download directory.
    pub fn clean_ingest(&self) -> Result<()> {
        let dir = self.root.join(INGEST_DIR);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io("removing", &dir))?;
        }
        Ok(())
    }
}

/// Writes a blob to `.ingest/<hex>.partial`, then [`BlobWriter::commit`] checks size and digest and renames it into
/// `blobs/sha256/`. Dropped without commit, the partial file stays for a resumed download.
pub struct BlobWriter {
    target: PathBuf,
    partial: PathBuf,
    digest: Digest,
    size: u64,
    what: String,
    inner: Option<HashingWriter<io::BufWriter<File>>>,
}

impl BlobWriter {
    /// Bytes already in the partial file (where a resumed download continues).
    pub fn offset(&self) -> u64 {
        self.inner.as_ref().map_or(0, |w| w.hasher().len())
    }

    /// The partial file's path.
    pub fn partial_path(&self) -> PathBuf {
        self.partial.clone()
    }

    /// Throws away what was written (e.g. the server ignored a Range request and sends from byte 0).
    pub fn restart(&mut self) -> Result<()> {
        let f = File::create(&self.partial).map_err(io("creating", &self.partial))?;
        self.inner = Some(HashingWriter::new(
            io::BufWriter::with_capacity(1 << 20, f),
            Hasher::new(),
        ));
        Ok(())
    }

    /// Checks size and digest, then moves the blob into place. On a mismatch the partial file is deleted: an
    /// unverified blob is never kept.
    pub fn commit(mut self) -> Result<Descriptor> {
        let w = self.inner.take().expect("not committed twice");
        let (buf, hasher) = w.into_parts();
        let file = buf.into_inner().map_err(|e| {
            Error::Io(kubeha_model::IoError {
                action: "writing",
                path: self.partial.clone(),
                source: e.into_error(),
            })
        })?;
        let bad = if hasher.len() != self.size {
            Some(Error::SizeMismatch {
                what: self.what.clone(),
                expected: self.size,
                actual: hasher.len(),
            })
        } else if hasher.digest() != self.digest {
            Some(Error::DigestMismatch {
                what: self.what.clone(),
                expected: self.digest.to_string(),
                actual: hasher.digest().to_string(),
            })
        } else {
            None
        };
        if let Some(e) = bad {
            drop(file);
            let _ = fs::remove_file(&self.partial);
            return Err(e);
        }
        file.sync_all().map_err(io("syncing", &self.partial))?;
        drop(file);
        fs::rename(&self.partial, &self.target).map_err(io("renaming into place", &self.target))?;
        Ok(Descriptor::new("", self.digest.clone(), self.size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let w = self.inner.as_mut().expect("writer is open");
        if w.hasher().len() + buf.len() as u64 > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: more than the expected {} bytes", self.what, self.size),
            ));
        }
        w.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().expect("writer is open").flush()
    }
}

/// Reads a blob file while hashing it; [`VerifyingReader::finish`] errors if it did not match.
pub struct VerifyingReader {
    inner: HashingReader<io::BufReader<File>>,
    desc: Descriptor,
    path: PathBuf,
}

impl VerifyingReader {
    /// Opens a layout blob for streaming; its size must match the descriptor before anything is read.
    pub fn open(layout: &Layout, desc: &Descriptor) -> Result<VerifyingReader> {
        let path = layout.blob_path(&desc.digest);
        let f = File::open(&path).map_err(io("opening", &path))?;
        let len = f.metadata().map_err(io("reading", &path))?.len();
        if len != desc.size {
            return Err(Error::SizeMismatch {
                what: path.display().to_string(),
                expected: desc.size,
                actual: len,
            });
        }
        Ok(VerifyingReader {
            inner: HashingReader::new(io::BufReader::with_capacity(1 << 20, f)),
            desc: desc.clone(),
            path,
        })
    }

    /// Checks that everything read hashed to the descriptor's digest.
    pub fn finish(&self) -> Result<()> {
        let h = self.inner.hasher();
        if h.len() != self.desc.size || h.digest() != self.desc.digest {
            return Err(Error::DigestMismatch {
                what: self.path.display().to_string(),
                expected: self.desc.digest.to_string(),
                actual: h.digest().to_string(),
            });
        }
        Ok(())
    }
}

impl Read for VerifyingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(v).expect("serializes");
    kubeha_model::fsutil::write_atomic(path, &body, 0o644, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_manifest() -> Vec<u8> {
        let d = Digest::of(b"x");
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": d, "size": 1},
            "layers": [{"mediaType": DOCKER_LAYER_GZIP, "digest": d, "size": 1}],
        }))
        .unwrap()
    }

    #[test]
    fn manifest_media_types() {
        let m = docker_manifest();
        for (claimed, ok) in [
            (None, true),
            (Some(DOCKER_MANIFEST), true),
            (Some("application/json"), true),
            (Some("text/plain"), true),
            (Some(OCI_MANIFEST), false),
            (Some(DOCKER_MANIFEST_LIST), false),
        ] {
            assert_eq!(
                manifest_media_type(&m, claimed, "m").is_ok(),
                ok,
                "served as {claimed:?}"
            );
        }
        // no mediaType field: the served type, else the shape decides
        let bare = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(manifest_media_type(bare, None, "m").unwrap(), OCI_INDEX);
        assert_eq!(
            manifest_media_type(bare, Some(DOCKER_MANIFEST_LIST), "m").unwrap(),
            DOCKER_MANIFEST_LIST
        );
        // schema 1 is refused with a clear message
        let err =
            manifest_media_type(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "m").unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
    }

    #[test]
    fn platform_selection_skips_other_arches_and_attestations() {
        let d = |a: &str, os: &str| {
            let mut x = Descriptor::new(OCI_MANIFEST, Digest::of(a.as_bytes()), 1);
            x.platform = Some(Platform {
                architecture: a.into(),
                os: os.into(),
                os_version: None,
                variant: None,
            });
            x
        };
        let mut ix = Index::empty();
        ix.manifests = vec![
            d("arm64", "linux"),
            d("unknown", "unknown"),
            d("amd64", "linux"),
        ];
        let want = Platform::linux_for_rpm_arch("x86_64");
        assert_eq!(ix.select(&want).unwrap().digest, Digest::of(b"amd64"));
        assert!(ix.select(&Platform::linux_for_rpm_arch("s390x")).is_none());
    }
}
