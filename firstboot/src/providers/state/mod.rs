//! The state of an earlier run: the node config it resolved (identity filled in), kept in `/var/lib/kubeha/`.
//!
//! It is the first source so a run that was killed resumes with exactly the identity and config it started with,
//! whatever the network or the config drive say now.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use kubeha_model::NodeConfig;

use super::{Fetched, Provider};

/// The agent's state directory.
pub const STATE_DIR: &str = "/var/lib/kubeha";
/// The resolved node config of the current (or an earlier) run.
pub const RESOLVED: &str = "/var/lib/kubeha/node.toml";

/// Reads the resolved config an earlier run saved.
#[derive(Debug, Clone)]
pub struct StateProvider {
    /// `RESOLVED` joined onto the root.
    pub path: PathBuf,
}

impl StateProvider {
    /// The provider for `root`.
    pub fn new(root: &Path) -> Self {
        StateProvider {
            path: crate::util::under(root, RESOLVED),
        }
    }
}

impl Provider for StateProvider {
    fn describe(&self) -> String {
        format!("{} (state of an earlier run)", self.path.display())
    }

    fn fetch(&self) -> Result<Option<Fetched>> {
        match std::fs::read(&self.path) {
            Ok(data) => Ok(Some(Fetched {
                data,
                source: self.describe(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }
}

/// Saves the resolved config (identity filled in) so a rerun resumes with it. 0600: a master's config holds the CA
/// keys, and every config the join token.
pub fn save(root: &Path, config: &NodeConfig) -> Result<()> {
    let p = crate::util::under(root, RESOLVED);
    let text = config.to_toml();
    if std::fs::read_to_string(&p).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    kubeha_model::fsutil::write_atomic(&p, text.as_bytes(), 0o600, true)
        .with_context(|| format!("saving the resolved node config to {}", p.display()))
}

#[cfg(test)]
mod mock_tests;
