//! `kubeha kickstart`, `kubeha iso`, `kubeha pxe`: install media (issue 6). The work is in kubeha-kickstart and
//! kubeha-image; this module only maps flags onto their options.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use kubeha_kickstart::{Options, Source};
use kubeha_model::bundle::BundleManifest;
use kubeha_model::{Cluster, NodeConfig};

/// `kubeha kickstart`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  kubeha kickstart --el 9 --cluster cluster.toml --bundle bundle/ -o ks.cfg\n  \
    kubeha kickstart --el 8 --cluster cluster.toml --node-config master01.toml \\\n    \
    --bundle-url http://10.0.0.5/kubeha -o master01.ks"
)]
pub struct KickstartConfig {
    /// EL major release of the nodes: 7, 8 or 9 (default: cluster.toml's install.el)
    #[arg(long, value_parser = clap::value_parser!(u8).range(7..=9))]
    pub el: Option<u8>,
    /// cluster.toml
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
    /// A node config (`kubeha node-config`) whose node the kickstart is for
    ///
    /// Its network (and disk, if cluster.toml names one) is then fixed in the
    /// kickstart. Without it the kickstart serves every node: each finds its
    /// name from kubeha.name= or its MAC, and its disk at install time.
    #[arg(long, value_name = "FILE")]
    pub node_config: Option<PathBuf>,
    /// Install the bundle over HTTP from this URL (the directory holding
    /// bundle.toml, rpms/, agent/ and node.toml) instead of the install media
    #[arg(long, value_name = "URL")]
    pub bundle_url: Option<String>,
    /// The bundle directory: %packages installs its requested packages
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// The OS installation tree (kickstart `url`); default: the boot media or inst.repo=
    #[arg(long, value_name = "URL")]
    pub os_url: Option<String>,
    /// Output file
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
}

/// The packages `%packages` installs: the bundle's requested RPMs.
fn bundle_packages(dir: &Path) -> Result<Vec<String>> {
    let m = BundleManifest::load(dir)?;
    let mut names: Vec<String> = m
        .rpms
        .iter()
        .filter(|r| r.requested)
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Runs `kubeha kickstart`.
pub fn kickstart(c: KickstartConfig) -> Result<ExitCode> {
    let cluster = Cluster::load(&c.cluster)?;
    let el = c.el.unwrap_or(cluster.install.el);
    let source = match c.bundle_url {
        Some(u) => Source::Http(u),
        None => Source::Media,
    };
    let mut o = Options::new(el, source);
    if let Some(p) = &c.node_config {
        let nc = NodeConfig::load(p)?;
        let name = nc.node.name.with_context(|| {
            format!(
                "{}: [node] name is not set; the kickstart needs a named node",
                p.display()
            )
        })?;
        o.node = Some(name);
    }
    if let Some(b) = &c.bundle {
        o.packages = bundle_packages(b)?;
    }
    o.os_url = c.os_url;
    if cluster.install.root_ssh_keys.is_empty() && cluster.install.root_password_hash.is_none() {
        log::warn!(
            "cluster.toml sets neither install.root-ssh-keys nor install.root-password-hash: root is locked"
        );
    }
    let ks = kubeha_kickstart::render(&cluster, &o)?;
    kubeha_model::fsutil::write_atomic(&c.output, ks.as_bytes(), 0o644, c.force)
        .context("writing the kickstart")?;
    eprintln!(
        "Wrote {} (EL{el}; check it with: ksvalidator -v RHEL{el} {0})",
        c.output.display()
    );
    Ok(ExitCode::SUCCESS)
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

/// Runs `kubeha iso`.
pub fn iso(_c: IsoConfig) -> Result<ExitCode> {
    anyhow::bail!("iso: not built yet")
}

/// Runs `kubeha pxe`.
pub fn pxe(_c: PxeConfig) -> Result<ExitCode> {
    anyhow::bail!("pxe: not built yet")
}
