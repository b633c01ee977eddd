//! The typed errors of the RPM parsers and the solver. The layers above (repo reading, downloads, `build_repo`)
//! add context with anyhow and keep these as the source, so a caller can still ask `e.downcast_ref::<Error>()`.

/// What went wrong parsing an EVR or a rich dependency, or solving a closure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An epoch that is not a number (`x:1.0`).
    #[error("epoch '{epoch}' is not a number")]
    Epoch {
        /// The epoch as written.
        epoch: String,
    },
    /// An EVR with an empty version (`1:-2`).
    #[error("'{evr}' has no version")]
    NoVersion {
        /// The EVR as written.
        evr: String,
    },
    /// A rich dependency rpm would not read (`(a or`).
    #[error("rich dependency '{dep}': {message} at offset {offset}")]
    Rich {
        /// The whole dependency.
        dep: String,
        /// What was expected or found.
        message: String,
        /// The byte offset where parsing stopped.
        offset: usize,
    },
    /// A rich dependency whose version rpm would not read (`(a >= x:1)`).
    #[error("rich dependency '{dep}': {evr} at offset {offset}")]
    RichVersion {
        /// The whole dependency.
        dep: String,
        /// The byte offset after the version.
        offset: usize,
        /// The version's own error (in the message, so not also a `source`).
        evr: Box<Error>,
    },
    /// A rich dependency with text after its closing parenthesis.
    #[error("rich dependency '{dep}': unexpected text after the closing parenthesis")]
    RichTrailing {
        /// The whole dependency.
        dep: String,
    },
    /// The requested packages have no solution; `explanation` is the solver's account, with what nothing provides.
    #[error("{explanation}")]
    Unsolvable {
        /// The requests, the missing providers and resolvo's explanation, one per line.
        explanation: String,
    },
    /// The solver was cancelled.
    #[error("dependency resolution was cancelled")]
    Cancelled,
}
