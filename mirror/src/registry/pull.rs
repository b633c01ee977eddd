//! Pulling images: resolve every reference, fetch each missing blob once, then store and name the manifests.

use std::collections::{BTreeMap, HashSet};

use super::client::Client;
use super::endpoint::Endpoint;
use super::manifest::Resolved;
use super::pool::parallel;
use crate::digest::Digest;
use crate::error::{format_err, Result};
use crate::oci::{self, Descriptor, Layout};
use crate::progress::Progress;

/// An image pulled into the layout.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference it is stored under.
    pub reference: String,
    /// Its platform manifest as stored in the layout: the registry's bytes, media type and digest.
    pub stored: Descriptor,
    /// The digest of the manifest list / index the registry served for the reference, when the platform manifest
    /// was chosen from one (stored in the layout too).
    pub source_digest: Option<Digest>,
    /// Config + layer bytes.
    pub size: u64,
}

/// What a pull did.
#[derive(Debug, Clone, Default)]
pub struct PullStats {
    /// Blobs downloaded.
    pub blobs_fetched: usize,
    /// Bytes downloaded.
    pub bytes_fetched: u64,
    /// Blobs already in the layout.
    pub blobs_reused: usize,
    /// Bytes already in the layout.
    pub bytes_reused: u64,
}

impl Client {
    /// Pulls images into the layout: resolves every reference, downloads the missing configs and layers (each blob
    /// once, `parallel` at a time), then stores the manifests and names the images in `index.json` (one write).
    /// Nothing is named before all its blobs are verified in place.
    pub fn pull(
        &self,
        layout: &Layout,
        references: &[String],
        progress: &Progress,
    ) -> Result<(Vec<Pulled>, PullStats)> {
        // De-duplicate references after normalization, keeping order.
        let mut seen = HashSet::new();
        let mut refs = Vec::new();
        for r in references {
            let n = crate::reference::normalize(r)?;
            if seen.insert(n.clone()) {
                refs.push(n);
            }
        }
        progress.phase("images", refs.len() as u64);
        let resolved: Vec<Resolved> = parallel(refs, self.cfg.parallel, |r| {
            let x = self.resolve(&r)?;
            progress.item_done(&x.reference);
            Ok(x)
        })?;

        // Every blob once (configs first: they are small and prove access early).
        let mut blobs: BTreeMap<Digest, (Descriptor, Endpoint, String)> = BTreeMap::new();
        let mut order = Vec::new();
        let mut stats = PullStats::default();
        for x in &resolved {
            for d in std::iter::once(&x.manifest.config).chain(x.manifest.layers.iter()) {
                if !d.urls.is_empty() && d.media_type.contains("foreign") {
                    return Err(format_err(
                        x.reference.clone(),
                        format!(
                            "layer {} is a foreign layer, which cannot be mirrored",
                            d.digest
                        ),
                    ));
                }
                if blobs.contains_key(&d.digest) {
                    continue;
                }
                blobs.insert(
                    d.digest.clone(),
                    (
                        d.clone(),
                        x.endpoint.clone(),
                        format!("{} blob {}", x.reference, d.digest),
                    ),
                );
                order.push(d.digest.clone());
            }
        }
        let mut todo = Vec::new();
        for dg in order {
            let (d, ep, what) = blobs.remove(&dg).expect("inserted");
            if layout.has_blob(&d.digest, d.size) {
                stats.blobs_reused += 1;
                stats.bytes_reused += d.size;
            } else {
                progress.add_total_bytes(d.size);
                todo.push((d, ep, what));
            }
        }
        progress.phase("blobs", todo.len() as u64);
        let fetched: Vec<u64> = parallel(todo, self.cfg.parallel, |(d, ep, what)| {
            let n = self.fetch_blob(layout, &ep, &d, &what, progress)?;
            progress.item_done(&what);
            Ok(n)
        })?;
        stats.blobs_fetched = fetched.iter().filter(|&&n| n > 0).count();
        stats.bytes_fetched = fetched.iter().sum();

        let mut named = Vec::new();
        let mut pulled = Vec::new();
        for x in resolved {
            let what = format!("{}: manifest", x.reference);
            let mut stored = layout.put_manifest(&x.manifest_bytes, &what)?;
            if stored.digest != x.manifest_digest {
                return Err(format_err(
                    what,
                    "stored with a different digest than served",
                ));
            }
            if let (Some(dg), Some(bytes)) = (&x.index_digest, &x.index_bytes) {
                let ix = layout.put_index(bytes, &format!("{}: manifest list", x.reference))?;
                if &ix.digest != dg {
                    return Err(format_err(what, "manifest list stored with another digest"));
                }
                stored
                    .annotations
                    .insert(oci::ANNOTATION_INDEX_DIGEST.into(), dg.to_string());
            }
            pulled.push(Pulled {
                reference: x.reference.clone(),
                source_digest: x.index_digest.clone(),
                size: x.manifest.config.size
                    + x.manifest.layers.iter().map(|l| l.size).sum::<u64>(),
                stored: stored.clone(),
            });
            named.push((x.reference, stored));
        }
        layout.set_images(&named)?;
        Ok((pulled, stats))
    }
}
