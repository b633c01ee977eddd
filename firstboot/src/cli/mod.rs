//! The command line. `main.rs` is one match calling `cli::<verb>::run(cfg)`; clap types live here only.

pub mod install;
pub mod run;
pub mod status;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// kubeha-firstboot: turns a freshly installed EL node into a Kubernetes node.
///
/// Finds the node config (earlier run's state, /etc/kubeha/node.toml, the
/// kernel command line's kubeha.config=, a KUBEHA config drive), then
/// prepares the OS, installs the bundle's packages, configures the container
/// runtime and loads the bundle's images. Safe to kill and run again.
///
/// Example: kubeha-firstboot --root /tmp/r --config node.toml --dry-run
#[derive(Debug, Parser)]
#[command(
    name = "kubeha-firstboot",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the default `run`.
    #[command(flatten)]
    pub run: RunConfig,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare this node (the default).
    Run(RunConfig),
    /// Show the progress of the current or last run (status.json).
    ///
    /// Example: kubeha-firstboot status --json
    Status(StatusConfig),
    /// Install kubeha into an installed system's root (the kickstart's %post --nochroot).
    ///
    /// Fetches the node config (kubeha.config=, pinned by kubeha.config.sha256=,
    /// else SOURCE/node.toml) and the bundle, checks the bundle's signature
    /// (when the config carries bundle.public-key) and every file against
    /// bundle.toml, then writes the bundle, the agent, its unit and the node
    /// config into DIR. A bad file stops it with DIR unchanged.
    ///
    /// Example: kubeha-firstboot install --sysroot /mnt/sysimage --from /run/install/repo/kubeha
    Install(InstallConfig),
}

/// `run` options.
#[derive(Debug, Clone, Args)]
pub struct RunConfig {
    /// System root: every file is read and written under it.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Kernel command line file [default: ROOT/proc/cmdline].
    #[arg(long, value_name = "FILE")]
    pub cmdline: Option<PathBuf>,
    /// Node config file, instead of ROOT/etc/kubeha/node.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write files under --root and print the commands instead of running
    /// them; no network I/O (the URLs are printed).
    #[arg(long)]
    pub dry_run: bool,
    /// Give up after SECS without a node config [default: wait forever].
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
}

/// `install` options.
#[derive(Debug, Clone, Args)]
pub struct InstallConfig {
    /// The installed system's root.
    #[arg(long, value_name = "DIR")]
    pub sysroot: PathBuf,
    /// Where kubeha's files are: the medium's /kubeha directory or an
    /// http(s) URL.
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    /// The installer's kernel command line file.
    #[arg(long, value_name = "FILE", default_value = "/proc/cmdline")]
    pub cmdline: PathBuf,
}

/// `status` options.
#[derive(Debug, Clone, Args)]
pub struct StatusConfig {
    /// System root.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Print status.json as is.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_contract() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["kubeha-firstboot", "--root", "/r", "--dry-run"]).unwrap();
        assert!(c.command.is_none() && c.run.dry_run);
        assert_eq!(c.run.root, PathBuf::from("/r"));
        let c = Cli::try_parse_from(["kubeha-firstboot", "status", "--json"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Status(StatusConfig { json: true, .. }))
        ));
        assert!(Cli::try_parse_from(["kubeha-firstboot", "--bogus"]).is_err());
        let c = Cli::try_parse_from([
            "kubeha-firstboot",
            "install",
            "--sysroot",
            "/mnt/sysimage",
            "--from",
            "/run/install/repo/kubeha",
        ])
        .unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Install(InstallConfig { ref cmdline, .. })) if cmdline == &PathBuf::from("/proc/cmdline")
        ));
        assert!(Cli::try_parse_from(["kubeha-firstboot", "install", "--sysroot", "/s"]).is_err());
    }
}
