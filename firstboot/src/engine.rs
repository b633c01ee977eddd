//! The step engine. A [`Step`] checks before it acts, so running it twice changes nothing the second time; the
//! engine journals finished steps so a run killed at any moment converges when started again.
//!
//! Every path a step touches is joined onto [`Context::root`], and every command goes through [`Context::runner`].
//!
//! The journal (`/var/lib/kubeha/state`) is rewritten atomically after each step. A step that was running when the
//! agent died is not in the journal and runs again; being idempotent, it converges. The journal is a record, not the
//! truth, for the steps that say [`Step::rechecks`]: the cluster steps run on every run and check the node and the
//! cluster themselves (a journal listing `cluster-worker-join` on a node with no kubelet.conf joins again). For the crash test
//! only (cargo feature `crash-hook`, never in a shipped build), `KUBEHA_CRASH_AFTER=<step>` aborts right after that
//! step's work (before it is journaled), and `KUBEHA_CRASH_AFTER=<step>+journal` right after it is journaled.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use kubeha_model::cluster::{Node, Role};
use kubeha_model::NodeConfig;
use serde::{Deserialize, Serialize};

use crate::runner::{Cmd, Output, Runner};
use crate::status::Reporter;

/// The journal of finished steps.
pub const JOURNAL: &str = "/var/lib/kubeha/state";
/// Written when every step has finished; the unit's `ConditionPathExists=!` keeps the agent from running again.
pub const DONE: &str = "/var/lib/kubeha/done";

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

    /// Reads a system file as text; `None` when it does not exist.
    pub fn read(&self, system_path: &str) -> Result<Option<String>> {
        let p = self.path(system_path);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Writes a system file atomically unless it already has exactly this content and mode; returns whether it
    /// changed anything.
    pub fn write_file(&self, system_path: &str, content: &str, mode: u32) -> Result<bool> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(system_path);
        if let Ok(meta) = std::fs::metadata(&p) {
            if meta.permissions().mode() & 0o7777 == mode
                && std::fs::read(&p).is_ok_and(|b| b == content.as_bytes())
            {
                log::debug!("{system_path} is up to date");
                return Ok(false);
            }
        }
        log::info!("writing {system_path}");
        kubeha_model::fsutil::write_atomic(&p, content.as_bytes(), mode, true)
            .with_context(|| format!("writing {system_path}"))?;
        Ok(true)
    }

    /// Runs a command that must succeed.
    pub fn run(&self, cmd: Cmd) -> Result<Output> {
        self.runner.run(&cmd)
    }

    /// Asks the system a question before acting: runs `probe` and returns `pred(output)`. With a runner that does
    /// not really run commands (a dry run, the recording test runner) the probe is still shown and the answer is
    /// "act", so the output lists every command a fresh node would run.
    pub fn needs(&self, probe: Cmd, pred: impl FnOnce(&Output) -> bool) -> Result<bool> {
        let out = self.runner.output(&probe)?;
        Ok(!self.runner.is_real() || pred(&out))
    }

    /// The Enterprise Linux major release of the root (`VERSION_ID` of `/etc/os-release`), else the cluster's
    /// `install.el`.
    pub fn el_major(&self) -> u8 {
        self.read("/etc/os-release")
            .ok()
            .flatten()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let v = l.strip_prefix("VERSION_ID=")?.trim_matches('"');
                    v.split('.').next()?.parse().ok()
                })
            })
            .unwrap_or(self.config.cluster.install.el)
    }

    /// The bundle directory on the node (`bundle.path`, under the root).
    pub fn bundle_dir(&self) -> PathBuf {
        self.path(&self.config.bundle.path)
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
    /// The phase the step belongs to, reported to `kubeha.report=` as one unit (`os`, `packages`, `runtime`,
    /// `cluster`).
    fn phase(&self) -> &'static str {
        "cluster"
    }
    /// Whether the step runs on every run even when the journal lists it: the steps whose outcome lives outside
    /// this node (the cluster's etcd members and Nodes) or that a `kubeadm reset` undoes check the system each time
    /// instead of trusting the journal (their `run` checks first, so a finished one is a no-op).
    fn rechecks(&self) -> bool {
        false
    }
}

/// Every step for a node, in order. The OS preparation and runtime steps are [`crate::apply`]'s.
pub fn steps(role: Role) -> Vec<Box<dyn Step>> {
    let mut v = crate::apply::steps(role);
    // The cluster-forming steps (keepalived, nginx, kubeadm, etcd membership); each says in `applies` whether it
    // runs on masters or workers.
    v.extend(crate::cluster::steps());
    v
}

/// The journal: which steps finished, for which node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The node the journal belongs to.
    pub node: String,
    /// Finished steps, in order.
    pub done: Vec<String>,
}

impl Journal {
    /// Loads the journal (empty when there is none).
    pub fn load(root: &Path) -> Result<Journal> {
        let p = crate::util::under(root, JOURNAL);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("parsing the journal {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Saves it atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        let p = crate::util::under(root, JOURNAL);
        let mut data = serde_json::to_vec_pretty(self)?;
        data.push(b'\n');
        kubeha_model::fsutil::write_atomic(&p, &data, 0o644, true)
            .with_context(|| format!("writing {}", p.display()))
    }
}

/// The crash test's hook (tests/crash.rs): aborts where `KUBEHA_CRASH_AFTER` says.
#[cfg(feature = "crash-hook")]
fn crash_point(step: &str, journaled: bool) {
    if let Ok(want) = std::env::var("KUBEHA_CRASH_AFTER") {
        let hit = if journaled {
            want == format!("{step}+journal")
        } else {
            want == step
        };
        if hit {
            eprintln!("kubeha-firstboot: KUBEHA_CRASH_AFTER={want}: aborting");
            std::process::abort();
        }
    }
}

/// Without the `crash-hook` feature the engine has no crash hook.
#[cfg(not(feature = "crash-hook"))]
fn crash_point(_step: &str, _journaled: bool) {}

/// Runs the steps in order, skipping those the journal lists, reporting each phase. Writes the done marker at the
/// end.
pub fn run(ctx: &mut Context, steps: &[Box<dyn Step>], reporter: &mut Reporter) -> Result<()> {
    let root = ctx.root.clone();
    let mut journal = Journal::load(&root)?;
    if journal.node != ctx.name {
        if !journal.done.is_empty() {
            log::warn!(
                "the journal belongs to '{}', not '{}': starting over",
                journal.node,
                ctx.name
            );
        }
        journal = Journal {
            node: ctx.name.clone(),
            done: Vec::new(),
        };
        journal.save(&root)?;
    }
    let mut phase: Option<&'static str> = None;
    for step in steps {
        let name = step.name();
        if !step.applies(ctx) {
            console(&format!("[skip] {name} (not for a {})", ctx.role));
            continue;
        }
        if phase != Some(step.phase()) {
            if let Some(p) = phase {
                reporter.phase_done(p);
            }
            phase = Some(step.phase());
        }
        let journaled = journal.done.iter().any(|d| d == name);
        if journaled && !step.rechecks() {
            console(&format!("[done] {name} (journal)"));
            continue;
        }
        reporter.step(step.phase(), name);
        if let Err(e) = step.run(ctx) {
            console(&format!("[FAIL] {name}: {e:#}"));
            reporter.failed(step.phase(), name, &e);
            return Err(e.context(format!("step {name}")));
        }
        crash_point(name, false);
        if !journaled {
            journal.done.push(name.to_string());
            journal.save(&root)?;
        }
        crash_point(name, true);
        console(&format!("[ ok ] {name}"));
    }
    if let Some(p) = phase {
        reporter.phase_done(p);
    }
    kubeha_model::fsutil::write_atomic(
        &crate::util::under(&root, DONE),
        format!("{}\n", crate::util::now_rfc3339()).as_bytes(),
        0o644,
        true,
    )
    .context("writing the done marker")?;
    reporter.done();
    console("done: this node is prepared");
    Ok(())
}

/// One line on the console (stdout; the unit sends it to the journal and the console).
pub fn console(line: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "kubeha-firstboot: {line}");
    let _ = o.flush();
}
