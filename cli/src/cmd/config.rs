//! `kubeha config`, `kubeha secrets`, `kubeha node-config`: the cluster model's commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kubeha_model::cluster::{Cluster, Role, DEFAULT_CLUSTER_TOML};
use kubeha_model::validate::validate_with_source;
use kubeha_model::{NodeConfig, Secrets};

/// `kubeha config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the embedded default cluster.toml
    ///
    /// The kubeadm-ha topology: masters k8s-master01..03 (192.168.20.20-22) behind
    /// the VIP k8s-master-lb 192.168.20.10:16443, workers k8s-node01..08, calico.
    ///
    /// Example: kubeha config init > cluster.toml
    Init,
    /// Validate a cluster.toml; print every error with its field path and line
    ///
    /// Exit 0 when valid (warnings are printed), 1 when not.
    ///
    /// Example: kubeha config check cluster.toml
    Check {
        /// The cluster.toml to check
        file: PathBuf,
    },
}

/// `kubeha secrets`.
#[derive(Debug, Args)]
pub struct SecretsConfig {
    /// Where to write the secrets (mode 0600)
    ///
    /// Example: kubeha secrets -o secrets.toml
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing file (its CAs are lost: nodes using them can no longer join)
    #[arg(long)]
    pub force: bool,
}

/// `kubeha node-config`.
#[derive(Debug, Args)]
pub struct NodeConfigConfig {
    /// cluster.toml
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
    /// secrets file from `kubeha secrets`
    #[arg(long, value_name = "FILE")]
    pub secrets: PathBuf,
    /// The node's role; `auto` lets the node find it by matching its own IPs/MACs
    ///
    /// A worker's file carries the token and CA certificate, never a private key.
    #[arg(long, value_parser = ["master", "worker", "auto"])]
    pub role: String,
    /// The node's name (one of the cluster's masters or workers)
    #[arg(long)]
    pub name: Option<String>,
    /// With --role auto: include the control-plane keys so masters can use the file too
    #[arg(long)]
    pub with_control_plane: bool,
    /// The master that initializes a new cluster (default: the first master)
    #[arg(long, value_name = "NAME")]
    pub bootstrap: Option<String>,
    /// The bundle's minisign public key file (kubeha bundle keygen): the
    /// node refuses a bundle whose bundle.toml this key did not sign
    #[arg(long, value_name = "FILE")]
    pub bundle_pubkey: Option<PathBuf>,
    /// Output file (mode 0600)
    ///
    /// Example: kubeha node-config --cluster cluster.toml --secrets secrets.toml --role master --name k8s-master01 -o node.toml
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
}

/// Runs `kubeha config ...`.
pub fn config(cmd: ConfigCmd) -> Result<ExitCode> {
    match cmd {
        ConfigCmd::Init => {
            std::io::stdout().write_all(DEFAULT_CLUSTER_TOML.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        ConfigCmd::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.display().to_string();
            let cluster = match Cluster::parse(&text, &name) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let diags = validate_with_source(&cluster, Some(&text));
            for d in &diags {
                eprintln!("{name}: {d}");
            }
            let errors = diags.iter().filter(|d| d.is_error()).count();
            if errors > 0 {
                eprintln!("{name}: {errors} error(s)");
                Ok(ExitCode::from(1))
            } else {
                println!(
                    "{name}: ok: cluster {} (Kubernetes {}), {} masters, {} workers, endpoint {}",
                    cluster.cluster.name,
                    cluster.cluster.kubernetes_version,
                    cluster.masters.len(),
                    cluster.workers.len(),
                    cluster.control_plane_endpoint()
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// Runs `kubeha secrets`.
pub fn secrets(c: SecretsConfig) -> Result<ExitCode> {
    if c.output.exists() && !c.force {
        anyhow::bail!(
            "{} already exists; use --force to overwrite it",
            c.output.display()
        );
    }
    eprintln!("Generating cluster CA, front-proxy CA, etcd CA and service-account keys");
    let s = Secrets::generate().context("generating secrets")?;
    s.save(&c.output, c.force).context("writing secrets")?;
    eprintln!("Wrote {} (mode 0600)", c.output.display());
    println!("token: {}.<secret>", &s.bootstrap_token[..6]);
    println!("discovery-token-ca-cert-hash: {}", s.ca_cert_hash);
    Ok(ExitCode::SUCCESS)
}

/// The key line of `--bundle-pubkey FILE` (a minisign public key file), for a node config's `bundle.public-key`.
pub fn bundle_pubkey(file: Option<&std::path::Path>) -> Result<Option<String>> {
    let Some(f) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(f)
        .with_context(|| format!("reading the bundle public key {}", f.display()))?;
    let key = kubeha_model::node::minisign_public_key_line(&text).with_context(|| {
        format!(
            "--bundle-pubkey {}: not a minisign public key file (kubeha bundle keygen or minisign -G writes one)",
            f.display()
        )
    })?;
    Ok(Some(key))
}

/// Runs `kubeha node-config`.
pub fn node_config(c: NodeConfigConfig) -> Result<ExitCode> {
    let cluster = Cluster::load(&c.cluster)?;
    let secrets = Secrets::load(&c.secrets)?;
    let role = match c.role.as_str() {
        "auto" => None,
        r => Some(r.parse::<Role>().map_err(anyhow::Error::msg)?),
    };
    let mut nc = NodeConfig::build(
        &cluster,
        &secrets,
        role,
        c.name.as_deref(),
        c.with_control_plane,
    )?;
    nc.node.bootstrap = c.bootstrap;
    nc.bundle.public_key = bundle_pubkey(c.bundle_pubkey.as_deref())?;
    nc.check("node config")?;
    nc.save(&c.output, c.force).context("writing node config")?;
    eprintln!(
        "Wrote {} ({}{})",
        c.output.display(),
        role.map(|r| r.to_string())
            .unwrap_or_else(|| "role auto".into()),
        if nc.control_plane.is_some() {
            ", with control-plane keys"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}
