//! `kubeha kickstart`, `kubeha iso`, `kubeha pxe` (issue 6: owned by the media work).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// `kubeha kickstart`.
#[derive(Debug, Args)]
pub struct KickstartConfig {
    /// cluster.toml
    #[arg(long)]
    pub cluster: PathBuf,
}

/// `kubeha iso`.
#[derive(Debug, Args)]
pub struct IsoConfig {
    /// Base EL install ISO
    #[arg(long)]
    pub base: PathBuf,
}

/// `kubeha pxe`.
#[derive(Debug, Args)]
pub struct PxeConfig {
    /// Output directory
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `kubeha kickstart`.
pub fn kickstart(_c: KickstartConfig) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kickstart: the media commands are not built yet")
}

/// Runs `kubeha iso`.
pub fn iso(_c: IsoConfig) -> anyhow::Result<ExitCode> {
    anyhow::bail!("iso: the media commands are not built yet")
}

/// Runs `kubeha pxe`.
pub fn pxe(_c: PxeConfig) -> anyhow::Result<ExitCode> {
    anyhow::bail!("pxe: the media commands are not built yet")
}
