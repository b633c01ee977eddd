//! The kubeha schema: every file that the build host writes and a node reads is defined here, once.
//!
//! - [`cluster`]: `cluster.toml`, the description of one HA cluster, and its validation ([`validate`]).
//! - [`secrets`]: the join material (`kubeha secrets`): CAs, service-account keys, bootstrap token.
//! - [`node`]: `node.toml`, the exact file `kubeha-firstboot` reads (`kubeha node-config`).
//! - [`bundle`]: `bundle.toml`, the offline bundle's manifest, and the profile it was built from.
//! - [`kube`]: Kubernetes versions and what kubeadm derives from them (image lists, config API).
//! - [`fsutil`]: atomic file writes shared by both sides.
//!
//! To add a field: add it to the struct with a serde default so older files still parse, add its rule to
//! [`validate`] with the field path, and extend the golden example in `config init`.
#![deny(missing_docs)]

pub mod bundle;
pub mod cluster;
pub mod fsutil;
pub mod kube;
pub mod node;
pub mod secrets;
pub mod validate;

pub use cluster::Cluster;
pub use node::NodeConfig;
pub use secrets::Secrets;

/// Errors of the shared schema crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be parsed as its schema.
    #[error("parsing {file}: {message}")]
    Parse {
        /// The file (or source) that was parsed.
        file: String,
        /// What the parser said, with line and column where it knows them.
        message: String,
    },
    /// A file parsed but is not a valid configuration.
    #[error("{file} is not valid:\n{}", .errors.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file (or source) that was checked.
        file: String,
        /// Every error found, each with its field path.
        errors: Vec<validate::Diagnostic>,
    },
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing").
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The refusal to overwrite an existing file.
    #[error("{0} already exists; use --force to overwrite it")]
    Exists(std::path::PathBuf),
    /// Key or certificate generation or parsing failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// A value that does not fit its format.
    #[error("{field}: {message}")]
    Value {
        /// The field path.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
