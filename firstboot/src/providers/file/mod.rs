//! A node config file on the node's own disk: `/etc/kubeha/node.toml` (put there by the installer), `--config FILE`,
//! or `kubeha.config=file:PATH`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::{Fetched, Provider};

/// The node config the installer writes.
pub const NODE_TOML: &str = "/etc/kubeha/node.toml";

/// Reads one file; a missing file is "nothing here".
#[derive(Debug, Clone)]
pub struct FileProvider {
    /// The file (already joined onto the root).
    pub path: PathBuf,
    /// How the file was chosen, for messages ("--config", "kubeha.config=file:...").
    pub origin: String,
}

impl Provider for FileProvider {
    fn describe(&self) -> String {
        format!("{} ({})", self.path.display(), self.origin)
    }

    fn fetch(&self) -> Result<Option<Fetched>> {
        match std::fs::read(&self.path) {
            Ok(data) => Ok(Some(Fetched {
                data,
                source: self.describe(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::info!("{} does not exist", self.path.display());
                Ok(None)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }
}

#[cfg(test)]
mod mock_tests;
