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
    /// The root (the state is never read through a symlink out of it).
    pub root: PathBuf,
}

impl StateProvider {
    /// The provider for `root`.
    pub fn new(root: &Path) -> Self {
        StateProvider {
            path: crate::util::under(root, RESOLVED),
            root: root.to_path_buf(),
        }
    }
}

impl Provider for StateProvider {
    fn describe(&self) -> String {
        format!("{} (state of an earlier run)", self.path.display())
    }

    /// Read as any node config file is, so never more than [`super::parse::MAX_CONFIG`] bytes of it (a 300 MB file
    /// left in the state directory is refused, not read whole).
    fn fetch(&self) -> Result<Option<Fetched>> {
        super::file::FileProvider {
            root: Some(self.root.clone()),
            path: self.path.clone(),
            origin: "state of an earlier run".into(),
        }
        .fetch()
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

/// The machine the state was written on: its SMBIOS UUID and MACs, so a disk moved or cloned to another machine does
/// not silently lend that machine the first one's identity.
pub const HARDWARE: &str = "/var/lib/kubeha/hardware";

fn hardware_text(facts: &crate::identity::HostFacts) -> String {
    let mut macs: Vec<&str> = facts
        .interfaces
        .iter()
        .filter_map(|i| i.mac.as_deref())
        .collect();
    macs.sort();
    format!(
        "uuid={}\nmacs={}\n",
        facts.uuid.as_deref().unwrap_or(""),
        macs.join(",")
    )
}

/// Records this machine next to the saved state (before the state itself: see [`check_hardware`]).
pub fn save_hardware(root: &Path, facts: &crate::identity::HostFacts) -> Result<()> {
    let p = crate::util::under(root, HARDWARE);
    let text = hardware_text(facts);
    if std::fs::read_to_string(&p).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    kubeha_model::fsutil::write_atomic(&p, text.as_bytes(), 0o600, true)
        .with_context(|| format!("saving {}", p.display()))
}

/// The hardware record is a few lines; anything larger is not one.
const MAX_HARDWARE: u64 = 64 << 10;

/// The hardware record, read up to [`MAX_HARDWARE`] bytes; `None` when there is none.
fn read_hardware(root: &Path) -> Result<Option<String>> {
    use std::io::Read as _;
    let p = crate::util::under(root, HARDWARE);
    let f = match crate::util::open_in_root(root, &p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {HARDWARE}")),
    };
    let mut buf = Vec::new();
    f.take(MAX_HARDWARE + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {HARDWARE}"))?;
    if buf.len() as u64 > MAX_HARDWARE {
        anyhow::bail!(
            "{HARDWARE} is larger than {MAX_HARDWARE} bytes: it is not a hardware record"
        );
    }
    String::from_utf8(buf)
        .map(Some)
        .with_context(|| format!("{HARDWARE} is not UTF-8 text"))
}

/// Refuses an earlier run's state written on another machine, or one without the record of its machine: a different SMBIOS UUID, or (when either UUID is
/// unknown) no MAC in common. Changes nothing.
pub fn check_hardware(root: &Path, facts: &crate::identity::HostFacts) -> Result<()> {
    if !crate::util::under(root, RESOLVED).exists() {
        return Ok(());
    }
    let fix = "a cloned or moved disk: remove /var/lib/kubeha, /etc/kubeha/node.toml and /etc/kubernetes (or \
               reimage) to install this machine afresh";
    let text = match read_hardware(root) {
        Ok(Some(t)) => t,
        // The record is written before the state: a state without one was not written by this agent on this disk.
        Ok(None) => anyhow::bail!(
            "{RESOLVED} has no record of the machine it was written on ({HARDWARE} is missing), so it cannot be \
             told from another machine's: {fix}"
        ),
        Err(e) => return Err(e),
    };
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let (Some(old), Some(new)) = (field("uuid="), facts.uuid.as_deref()) {
        if old != new {
            anyhow::bail!(
                "{RESOLVED} was written on another machine (SMBIOS UUID {old}, this one is {new}): {fix}"
            );
        }
        return Ok(());
    }
    let old: Vec<String> = field("macs=")
        .map(|m| m.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let now: Vec<&str> = facts
        .interfaces
        .iter()
        .filter_map(|i| i.mac.as_deref())
        .collect();
    if !old.is_empty() && !now.is_empty() && !old.iter().any(|m| now.contains(&m.as_str())) {
        anyhow::bail!(
            "{RESOLVED} was written on a machine with other network cards ({}; this one has {}): {fix}",
            old.join(", "),
            now.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod mock_tests;
