//! A registry v2 / OCI distribution client that pulls images into a shared [`Layout`](crate::oci::Layout).
//!
//! NOTE: this is blocking reqwest (rustls) plus `std::thread::scope` workers, not `oci-client`: oci-client is async
//! (it would pull a tokio runtime into our code) and has no retry, no Range resume and no hook to keep a blob out of
//! the store until it is verified. A bounded pool of threads, each streaming one blob to disk, saturates a link just
//! as well for a few dozen large blobs, and keeps the crate synchronous like the rest of kubeha.
//!
//! What it does, per the distribution spec (distribution/distribution
//! `docs/content/spec/auth/token.md`, opencontainers/distribution-spec `spec.md`, image-spec `media-types.md`):
//! - anonymous access, Bearer tokens from the `WWW-Authenticate` challenge (`realm`, `service`, `scope`; the
//!   response's `token` or `access_token`), Basic auth; credentials come from the profile (`password-env`/`-file`);
//! - `Accept` with all four manifest types; a manifest list / OCI index is resolved to the profile's platform;
//! - every manifest and blob is checked against its digest (and the `Docker-Content-Digest` header when sent);
//!   blobs go to the layout's ingest area and are renamed into `blobs/sha256/` only after they match;
//! - redirects are followed by hand so `Authorization` is never sent to another host (blob storage redirects);
//! - 5xx, 429, connection errors and timeouts are retried with exponential backoff; an interrupted blob resumes
//!   with a `Range` request from its partial file;
//! - manifests, manifest lists / indexes and configs are stored byte for byte as served, with their own media types
//!   (Docker schema 2 stays Docker), so every stored digest is the registry's; a list a platform manifest was chosen
//!   from is stored too and its digest recorded (`Pulled::source_digest`, `oci::ANNOTATION_INDEX_DIGEST`);
//! - blobs already in the layout are not downloaded again, and a blob shared by several images is fetched once;
//! - mirrors: `k8s.gcr.io/pause:3.1` can be pulled from a mirror endpoint and is still stored under that name. A
//!   mirror replaces its registry (no fallback to the upstream host: the build may run where only the mirror is
//!   reachable).
//!
//! One job a file: `client` (the settings and the client), `endpoint` (where a repository is served from),
//! `transport` (one GET, redirects by hand), `auth` (tokens and Basic), `request` (a retried, authorized GET),
//! `manifest` (manifests and lists), `blob` (resumable, verified blobs), `pull` (many images at once), `pool`
//! (the worker threads).

mod auth;
mod blob;
mod client;
mod endpoint;
mod manifest;
mod pool;
mod pull;
mod request;
mod transport;

pub use client::{Client, ClientConfig, Credentials};
pub use endpoint::Endpoint;
pub use manifest::{Resolved, MANIFEST_ACCEPT};
pub use pool::parallel;
pub use pull::{PullStats, Pulled};
