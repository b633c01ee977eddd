//! Writing the layout: blobs through a verifying [`BlobWriter`], manifests, the named images, garbage collection.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;

use super::layout::{Layout, BLOBS_DIR, INGEST_DIR};
use super::sniff::manifest_media_type;
use super::spec::*;
use crate::digest::{Digest, Hasher, HashingWriter};
use crate::error::{format_err, io, Error, Result};

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

impl Layout {
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
