//! `kubeha`: the build-host CLI. Thin: clap types and one match; the work is in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod elf;

/// Stand up and rebuild Kubernetes HA clusters on bare-metal EL machines, offline.
///
/// Describe the cluster (config), make its join secrets (secrets), pull everything into an
/// offline bundle (bundle), and turn both into install media (kickstart, iso, pxe) or
/// serve them over the network (serve, status). Each node then forms or joins the HA
/// control plane by itself on first boot.
#[derive(Debug, Parser)]
#[command(
    name = "kubeha",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print, check and explain cluster.toml
    #[command(subcommand)]
    Config(cmd::config::ConfigCmd),
    /// Generate the cluster's CAs, keys and join token
    Secrets(cmd::config::SecretsConfig),
    /// Write the node config file kubeha-firstboot reads
    NodeConfig(cmd::config::NodeConfigConfig),
    /// Build, verify and export the offline bundle
    #[command(subcommand)]
    Bundle(cmd::bundle::BundleCmd),
    /// Render an unattended EL kickstart
    Kickstart(cmd::media::KickstartConfig),
    /// Remaster an EL install ISO with the kickstart and bundle
    Iso(cmd::media::IsoConfig),
    /// Write a PXE/iPXE/GRUB network boot tree
    Pxe(cmd::media::PxeConfig),
    /// Show the node agent the media embed and the EL releases it starts on
    Agent(cmd::agent::AgentConfig),
    /// Install nodes over iPXE/HTTP, take their reports, show the fleet live
    Serve(cmd::serve::ServeCmd),
    /// Print the fleet table of a running `kubeha serve`
    Status(cmd::serve::StatusConfig),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .format_timestamp(None)
        .init();
    // Data commands write to stdout; die quietly when the reader goes away (`kubeha config init | head`).
    // SAFETY: SIG_DFL installs no handler code, and no other thread runs yet.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Config(c) => cmd::config::config(c),
        Command::Secrets(c) => cmd::config::secrets(c),
        Command::NodeConfig(c) => cmd::config::node_config(c),
        Command::Bundle(c) => cmd::bundle::run(c),
        Command::Kickstart(c) => cmd::media::kickstart(c),
        Command::Iso(c) => cmd::media::iso(c),
        Command::Pxe(c) => cmd::media::pxe(c),
        Command::Agent(c) => cmd::agent::agent(c),
        Command::Serve(c) => cmd::serve::serve(c),
        Command::Status(c) => cmd::serve::status(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
