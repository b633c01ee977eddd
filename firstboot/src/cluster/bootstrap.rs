//! The init-or-join choice `cluster-decide` saves for the later cluster steps and the agent's reports.

use anyhow::Result;

use super::decide::Decision;
use crate::engine::Context;

/// kubeha's state directory for the cluster steps.
pub const STATE_DIR: &str = "/var/lib/kubeha/cluster";
/// The decision file (`init` or `join`).
pub const DECISION_FILE: &str = "/var/lib/kubeha/cluster/decision";

/// The choice `cluster-decide` saves in [`DECISION_FILE`] for `cluster-rebuild`, `cluster-kubeadm`,
/// `cluster-verify` and `cluster-cni`, and the agent's reports. Saved as the bare word (`init`, `join`): the file
/// stays what docs/ha.md documents and the demo scripts read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// This master initializes the cluster (`kubeadm init`).
    Init,
    /// This node joins the cluster (`kubeadm join`).
    Join,
}

impl Bootstrap {
    /// What `cluster-decide` decided, if it decided to act.
    pub fn from_decision(d: &Decision) -> Option<Bootstrap> {
        match d {
            Decision::Init => Some(Bootstrap::Init),
            Decision::Join(_) => Some(Bootstrap::Join),
            Decision::Wait(_) => None,
        }
    }

    /// The word saved in [`DECISION_FILE`].
    pub fn word(self) -> &'static str {
        match self {
            Bootstrap::Init => "init",
            Bootstrap::Join => "join",
        }
    }

    /// The choice a saved file holds (surrounding whitespace ignored); `None` for anything else.
    pub fn parse(text: &str) -> Option<Bootstrap> {
        match text.trim() {
            "init" => Some(Bootstrap::Init),
            "join" => Some(Bootstrap::Join),
            _ => None,
        }
    }

    /// Saves the choice in [`DECISION_FILE`].
    pub fn save(self, ctx: &Context) -> Result<()> {
        ctx.mkdir(STATE_DIR, 0o755)?;
        ctx.write_file(DECISION_FILE, format!("{}\n", self.word()), 0o644)?;
        Ok(())
    }

    /// The saved choice; `None` when `cluster-decide` has not saved one (or the file holds something else).
    pub fn load(ctx: &Context) -> Option<Bootstrap> {
        let text = ctx.read(DECISION_FILE).ok().flatten()?;
        let b = Bootstrap::parse(&text);
        if b.is_none() {
            log::warn!("{DECISION_FILE}: not init or join; treating it as no decision");
        }
        b
    }
}
