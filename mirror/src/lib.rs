//! kubeha-mirror: the offline bundle's images (and, with the `fetch` feature, the code that downloads them).
//!
//! Without network code (`default-features = false`, what the node agent uses):
//! - [`oci`]: one OCI image layout shared by every image ([`oci::Layout`]): list images by their original
//!   reference, verify manifests/configs/layers by digest, store blobs only after verifying them.
//! - [`archive`]: stream a `docker load` archive ([`archive::write_docker_archive`], which `ctr images import`
//!   accepts too) or an OCI archive ([`archive::write_oci_archive`]) straight from the layout's blobs.
//! - [`reference`](mod@reference): image reference parsing and normalization; [`digest`]: sha256 digests and hashing I/O.
//! - [`synth`]: small deterministic images for tests and benchmarks.
//!
//! - [`bundle`]: built-in profiles, the image list a profile implies, and [`bundle::verify`].
//!
//! With `fetch` (default): the registry v2 client ([`registry::Client`]), `bundle build` ([`build::build`]) and the
//! command line's source overrides of a profile ([`overrides`]).
#![deny(missing_docs)]

pub mod archive;
#[cfg(feature = "fetch")]
pub mod auth;
#[cfg(feature = "fetch")]
pub mod build;
pub mod bundle;
pub mod digest;
mod error;
#[cfg(feature = "fetch")]
pub mod http;
pub mod oci;
#[cfg(feature = "fetch")]
pub mod overrides;
#[cfg(feature = "fetch")]
pub mod progress;
pub mod reference;
#[cfg(feature = "fetch")]
pub mod registry;
#[cfg(feature = "fetch")]
pub mod rpm;
pub mod signature;
pub mod synth;

pub use error::{Error, Result};
