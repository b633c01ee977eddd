//! kubeha-serve: `kubeha serve`, one process that network-installs a cluster's nodes over HTTP, takes their
//! progress reports and shows the fleet forming.
//!
//! - [`server`]: start-up (bundle verified, base ISO extracted, every node's kickstart and pinned config rendered
//!   once) and the HTTP routes.
//! - [`events`]: `GET /events`, the fleet as server-sent events.
//! - [`fleet`]: the pure state and decisions (install once, who owns a name, the view).
//! - [`journal`]: the append-only, fsynced event log that is the server's memory across restarts.
//! - [`tftp`]: the TFTP root (`--tftp DIR`) that chains PXE clients to the server through iPXE.
//!
//! To add a route: add it to `server::route`, answering with the status code that names the problem (400 bad
//! input naming the parameter, 403 another machine's file, 410 a config no longer served, 413 too large).
#![deny(missing_docs)]

pub mod events;
pub mod fleet;
pub mod journal;
pub mod server;
pub mod tftp;

use std::path::PathBuf;

/// Errors of the server's start-up and journal; each names the file or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad option or input value.
    #[error("{field}: {message}")]
    Value {
        /// The option or field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A journal line that is not an entry.
    #[error("{path}: line {line}: {message}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Listening failed.
    #[error("listening on {addr}: {message}")]
    Listen {
        /// The address.
        addr: String,
        /// What failed.
        message: String,
    },
    /// The media builders refused an input (the bundle, the base ISO).
    #[error(transparent)]
    Image(#[from] kubeha_image::Error),
    /// The kickstart could not be rendered.
    #[error(transparent)]
    Kickstart(#[from] kubeha_kickstart::Error),
    /// A schema error.
    #[error(transparent)]
    Model(#[from] kubeha_model::Error),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io<P: Into<PathBuf>>(
    action: &'static str,
    path: P,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
