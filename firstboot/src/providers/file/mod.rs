//! A node config file on the node's own disk: `/etc/kubeha/node.toml` (put there by the installer), `--config FILE`,
//! or `kubeha.config=file:PATH`.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

use super::parse::MAX_CONFIG;
use super::{Fetched, Provider};

/// The node config the installer writes.
pub const NODE_TOML: &str = kubeha_model::media::INSTALLED_NODE_CONFIG;

/// Reads one file; a missing file is "nothing here".
#[derive(Debug, Clone)]
pub struct FileProvider {
    /// The file (already joined onto the root).
    pub path: PathBuf,
    /// The root the file must stay inside (symlinks are not followed out of it); `None` for a path the operator
    /// named on the host (`--config`).
    pub root: Option<PathBuf>,
    /// How the file was chosen, for messages ("--config", "kubeha.config=file:...").
    pub origin: String,
}

impl Provider for FileProvider {
    fn describe(&self) -> String {
        format!("{} ({})", self.path.display(), self.origin)
    }

    fn fetch(&self) -> Result<Option<Fetched>> {
        let opened = match &self.root {
            Some(root) => crate::util::open_in_root(root, &self.path),
            None => std::fs::File::open(&self.path),
        };
        let f = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::info!("{} does not exist", self.path.display());
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        // Never more than the largest config plus one byte, whatever the file's size (a 300 MB file is refused
        // after 4 MiB, not read whole).
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_CONFIG + 1), &mut data)
            .with_context(|| format!("reading {}", self.path.display()))?;
        if data.len() as u64 > MAX_CONFIG {
            bail!(
                "{}: larger than {MAX_CONFIG} bytes: not a node config",
                self.describe()
            );
        }
        Ok(Some(Fetched {
            data,
            source: self.describe(),
        }))
    }
}

#[cfg(test)]
mod mock_tests;
