//! The kubeha schema: every file that the build host writes and a node reads is defined here, once.
//!
//! - [`cluster`]: `cluster.toml`, the description of one HA cluster, and its validation ([`validate`]).
//! - [`secrets`]: the join material (`kubeha secrets`): CAs, service-account keys, bootstrap token.
//! - [`node`]: `node.toml`, the exact file `kubeha-firstboot` reads (`kubeha node-config`).
//! - [`bundle`]: `bundle.toml`, the offline bundle's manifest, and the profile it was built from.
//! - [`el`]: the EL releases kubeha installs, one table: glibc, default cgroup hierarchy.
//! - [`kube`]: Kubernetes versions and what kubeadm derives from them (image lists, config API).
//! - [`fsutil`]: atomic file writes shared by both sides.
//! - [`kernel_args`]: the `kubeha.*` kernel arguments the install media write and the installer and node read.
//! - [`media`]: the layout of kubeha's directory on the install media and where the installer puts it.
//! - [`report`]: the progress report a node POSTs to `kubeha.report=` and `kubeha serve` receives.
//! - [`backoff`]: the one backoff policy (pauses between retries and polls) of both sides.
//!
//! To add a field: add it to the struct with a serde default so older files still parse, add its rule to
//! [`validate`] with the field path, and extend the golden example in `config init`.
#![deny(missing_docs)]

pub mod backoff;
pub mod bundle;
pub mod cluster;
mod diagnostic;
pub mod el;
pub mod fsutil;
pub mod kernel_args;
pub mod kube;
pub mod media;
pub mod node;
pub mod report;
pub mod secrets;
pub mod support;
pub mod validate;
mod version;

pub use cluster::Cluster;
pub use kernel_args::KernelArgs;
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
        errors: Vec<diagnostic::Diagnostic>,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] IoError),
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

/// Reading or writing one file failed: what was being done, to which file. Every kubeha crate's `Error::Io` wraps
/// this one type, built by [`io`].
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct IoError {
    /// What was being done ("reading", "writing").
    pub action: &'static str,
    /// The file.
    pub path: std::path::PathBuf,
    /// The underlying error.
    pub source: std::io::Error,
}

/// Maps an `io::Error` to an [`IoError`] for `path`: `fs::read(&p).map_err(io("reading", &p))?`. The one helper
/// of every crate (its `Error` converts from [`IoError`]).
pub fn io(
    action: &'static str,
    path: impl AsRef<std::path::Path>,
) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.as_ref().to_path_buf();
    move |source| IoError {
        action,
        path,
        source,
    }
}

/// A TOML error for a file that holds secret material (node configs, secrets.toml): the line and the parser's
/// message with every quoted value replaced, never the offending line itself (toml's own Display quotes it, and in
/// these files that line may be a private key).
pub fn redacted_toml_error(text: &str, e: &toml::de::Error) -> String {
    let mut msg = String::new();
    let mut quoted = false;
    for c in e.message().chars() {
        match c {
            '"' => {
                quoted = !quoted;
                msg.push(c);
                if quoted {
                    msg.push_str("...");
                }
            }
            _ if quoted => {}
            c => msg.push(c),
        }
    }
    match e.span() {
        Some(s) => {
            let at = s.start.min(text.len());
            let line = text.as_bytes()[..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("TOML error at line {line}: {}", msg.trim())
        }
        None => format!("TOML error: {}", msg.trim()),
    }
}
