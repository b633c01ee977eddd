//! One finding of [`crate::validate`] ([`Diagnostic`]): its own file because the crate's [`crate::Error`] carries
//! them and the rules read the schema, which returns that error. Re-exported from [`crate::validate`], where callers
//! name it.

use std::fmt;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The cluster cannot work this way.
    Error,
    /// It works, but not as well as it should (e.g. an even number of etcd members).
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The field path, e.g. `masters[1].ip`.
    pub path: String,
    /// What is wrong, and what would be right.
    pub message: String,
    /// The 1-based line in the TOML source, when known.
    pub line: Option<usize>,
}

impl Diagnostic {
    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(l) => write!(f, "{sev}: {} (line {l}): {}", self.path, self.message),
            None => write!(f, "{sev}: {}: {}", self.path, self.message),
        }
    }
}
