//! Reading a valid [`Cluster`]: parsing, then every rule of [`crate::validate`]. A file of its own because the
//! rules read the schema's types (`cluster.rs` stays free of `validate`).

use std::path::Path;

use super::Cluster;
use crate::validate::validate_with_source;
use crate::{Error, Result};

impl Cluster {
    /// Parses and validates; every error (not only the first) is returned, with field paths and lines.
    pub fn parse_valid(text: &str, file: &str) -> Result<Cluster> {
        let c = Cluster::parse(text, file)?;
        let diags = validate_with_source(&c, Some(text));
        let errors: Vec<_> = diags.into_iter().filter(|d| d.is_error()).collect();
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(Error::Invalid {
                file: file.to_string(),
                errors,
            })
        }
    }

    /// Reads and validates a `cluster.toml`.
    pub fn load(path: &Path) -> Result<Cluster> {
        let text = std::fs::read_to_string(path).map_err(crate::io("reading", path))?;
        Cluster::parse_valid(&text, &path.display().to_string())
    }
}
