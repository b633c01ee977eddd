//! Reading the layout: blobs (verified on request), the named images and their manifests and configs.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;

use super::layout::Layout;
use super::sniff::manifest_media_type;
use super::spec::*;
use crate::digest::{Digest, HashingReader};
use crate::error::{format_err, io, Error, Result};

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

impl Layout {
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
}
