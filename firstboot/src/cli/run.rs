//! `kubeha-firstboot [run]`.

use std::time::Duration;

use anyhow::{Context as _, Result};

use super::RunConfig;
use crate::engine::{self, console, Context};
use crate::identity::HostFacts;
use crate::providers::{cmdline, state};
use crate::runner::{RecordingRunner, Runner, SystemRunner};
use crate::source::{self, SourceOptions};
use crate::status::Reporter;
use crate::util::under;

/// Runs the agent on this system.
pub fn run(cfg: RunConfig) -> Result<()> {
    let runner: Box<dyn Runner> = if cfg.dry_run {
        Box::new(RecordingRunner::printing())
    } else {
        Box::new(SystemRunner)
    };
    let facts = HostFacts::gather(&cfg.root);
    run_with(cfg, runner, facts)
}

/// Runs the agent with a given runner and host facts (tests: a recording runner and made-up interfaces).
pub fn run_with(cfg: RunConfig, runner: Box<dyn Runner>, facts: HostFacts) -> Result<()> {
    run_steps(cfg, runner, facts, crate::steps::for_role)
}

/// Runs the agent with the steps `steps(role)` builds (tests that must not reach the cluster steps' network probes
/// pass [`crate::apply::steps`]).
pub fn run_steps(
    cfg: RunConfig,
    runner: Box<dyn Runner>,
    facts: HostFacts,
    steps: impl FnOnce(kubeha_model::cluster::Role) -> Vec<Box<dyn engine::Step>>,
) -> Result<()> {
    let root = cfg.root.clone();
    if under(&root, engine::DONE).exists() {
        console(&format!(
            "already done ({} exists; remove it to run again)",
            under(&root, engine::DONE).display()
        ));
        return Ok(());
    }
    let cmdline_path = cfg
        .cmdline
        .clone()
        .unwrap_or_else(|| under(&root, "/proc/cmdline"));
    let args = match cmdline::load(&cmdline_path) {
        Ok(a) => a,
        Err(e) => {
            Reporter::new(root.clone(), None, cfg.dry_run).failed("config", "", &e);
            return Err(e);
        }
    };
    let mut reporter = Reporter::new(root.clone(), args.report.clone(), cfg.dry_run);
    log::debug!("host facts: {facts:?}");
    let opts = SourceOptions {
        root: root.clone(),
        config_file: cfg.config.clone(),
        dry_run: cfg.dry_run,
        wait: cfg.wait.map(Duration::from_secs),
        poll: Duration::from_secs(10),
    };
    // Checked before the state is read or written: an earlier run's identity from another machine is refused.
    if let Err(e) = state::check_hardware(&root, &facts) {
        console(&format!("[FAIL] config: {e:#}"));
        reporter.failed("config", "", &e);
        return Err(e);
    }
    let resolved = match source::resolve(&opts, &args, &facts) {
        Ok(r) => r,
        Err(e) => {
            console(&format!("[FAIL] config: {e:#}"));
            reporter.failed("config", "", &e);
            return Err(e);
        }
    };
    let id = &resolved.identity;
    console(&format!(
        "this is {} ({}): {}; config from {}",
        id.node.name, id.role, id.how, resolved.source
    ));
    reporter.identity(&id.node.name, &id.role.to_string(), &resolved.source);
    let mut ctx = Context {
        root,
        runner,
        config: resolved.config,
        me: id.node.clone(),
        role: id.role,
        dry_run: cfg.dry_run,
    };
    // The bundle, before the first step (or the saved state) changes anything: its signature first when the node
    // config carries a key (the manifest the files are checked against must be the signed one), then its files.
    if let Err(e) = crate::apply::packages::check_signature(&ctx.root, &ctx.config)
        .and_then(|()| crate::precheck::bundle(&ctx))
    {
        console(&format!("[FAIL] bundle: {e:#}"));
        reporter.failed("config", "bundle", &e);
        return Err(e);
    }
    // The hardware record first: a state file never exists without one (check_hardware refuses that).
    let saved =
        state::save_hardware(&ctx.root, &facts).and_then(|()| state::save(&ctx.root, &ctx.config));
    if let Err(e) = saved {
        console(&format!("[FAIL] config: {e:#}"));
        reporter.failed("config", "", &e);
        return Err(e);
    }
    let steps = steps(ctx.role);
    engine::run(&mut ctx, &steps, &mut reporter).context("preparing the node")
}
