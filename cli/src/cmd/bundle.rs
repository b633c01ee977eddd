//! `kubeha bundle ...` (issue 3: owned by the mirror work).

use std::process::ExitCode;

use clap::Subcommand;

/// Bundle subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCmd {
    /// Print kubeadm's image list for a Kubernetes release
    Images {
        /// The release, e.g. v1.31.4
        #[arg(long)]
        kubernetes_version: String,
    },
}

/// Runs a bundle subcommand.
pub fn run(cmd: BundleCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        BundleCmd::Images { kubernetes_version } => {
            anyhow::bail!(
                "bundle images for {kubernetes_version}: the bundle commands are not built yet"
            )
        }
    }
}
