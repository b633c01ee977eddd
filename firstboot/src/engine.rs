//! The step engine. A [`Step`] checks before it acts, so running it twice changes nothing the second time; the
//! engine journals finished steps so a run killed at any moment converges when started again.
//!
//! Every path a step touches is joined onto [`Context::root`], and every command goes through [`Context::runner`].

use std::path::{Path, PathBuf};

use anyhow::Result;
use kubeha_model::cluster::{Node, Role};
use kubeha_model::NodeConfig;

use crate::runner::Runner;

/// Everything a step may use. Fields are only ever added, never changed in meaning.
pub struct Context {
    /// The system root (`/` on a node, a temp dir in tests).
    pub root: PathBuf,
    /// The command runner.
    pub runner: Box<dyn Runner>,
    /// The validated node config.
    pub config: NodeConfig,
    /// This node's name.
    pub name: String,
    /// This node's role.
    pub role: Role,
    /// Dry run: write files under root, print commands, no network I/O.
    pub dry_run: bool,
}

impl Context {
    /// `root` joined with an absolute system path: `ctx.path("/etc/hosts")`.
    pub fn path(&self, system_path: impl AsRef<Path>) -> PathBuf {
        let p = system_path.as_ref();
        self.root.join(p.strip_prefix("/").unwrap_or(p))
    }

    /// This node's entry in the cluster.
    pub fn me(&self) -> &Node {
        self.config
            .cluster
            .node(&self.name)
            .map(|(_, n)| n)
            .expect("identity resolved against the cluster before steps run")
    }
}

/// One idempotent step.
pub trait Step {
    /// Short stable name, used in the journal and on the console.
    fn name(&self) -> &'static str;
    /// Whether this step applies to the node (e.g. masters only).
    fn applies(&self, _ctx: &Context) -> bool {
        true
    }
    /// Does the work; must check before acting so that a second run is a no-op.
    fn run(&self, ctx: &mut Context) -> Result<()>;
}
