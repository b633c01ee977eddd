//! The crate's error type.

use std::path::PathBuf;

/// Errors of kubeha-mirror. Each names the file, blob, image or URL it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] kubeha_model::IoError),
    /// Content does not hash to the digest it is addressed by.
    #[error("{what}: its sha256 is {actual}, expected {expected}")]
    DigestMismatch {
        /// The blob, file or URL that was checked.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// Content does not have the size its descriptor gives.
    #[error("{what}: {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// The blob, file or URL that was checked.
        what: String,
        /// The size it should have.
        expected: u64,
        /// The size it has.
        actual: u64,
    },
    /// A file or document that is not in the format it should be.
    #[error("{what}: {message}")]
    Format {
        /// The file, blob or document.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Building the bundle's RPM repository failed. The cause keeps its type (`rpm::Error`, an I/O or HTTP error
    /// with its context), reachable with `error.downcast_ref()`; the message is its whole chain.
    #[cfg(feature = "fetch")]
    #[error("{what}: {error:#}")]
    Rpm {
        /// The part of the profile (`repos`, `rpms`).
        what: &'static str,
        /// The cause, with its context.
        error: anyhow::Error,
    },
    /// An image reference that is not in the layout.
    #[error("image {reference} is not in {layout}")]
    NoSuchImage {
        /// The reference asked for.
        reference: String,
        /// The layout directory.
        layout: PathBuf,
    },
    /// A registry or HTTP server refused or failed a request.
    #[error("{url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What happened (status and the server's message, or the transport error).
        message: String,
    },
    /// The shared schema rejected something.
    #[error(transparent)]
    Model(#[from] kubeha_model::Error),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps an `io::Error` to [`Error::Io`] for `path` (the model's one helper).
pub(crate) use kubeha_model::io;

/// Shorthand for [`Error::Format`].
pub(crate) fn format_err(what: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Format {
        what: what.into(),
        message: message.into(),
    }
}
