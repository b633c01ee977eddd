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
//!
//! One job a file: `spec` (the types and media types), `sniff` (what a manifest document is), `layout` (the
//! directory, `oci-layout` and `index.json`), `read` (blobs, images, configs) and `write` (blobs, manifests, names,
//! garbage collection).

mod layout;
mod read;
mod sniff;
mod spec;
mod write;

pub use layout::{Layout, BLOBS_DIR, INDEX_FILE, INGEST_DIR, LAYOUT_VERSION, OCI_LAYOUT_FILE};
pub use read::{Image, VerifyingReader};
pub use sniff::manifest_media_type;
pub use spec::*;
pub use write::BlobWriter;
