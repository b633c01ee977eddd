//! `kubeha serve` (and `kubeha serve reimage`), `kubeha status`: the network install server (docs/serve.md). The work
//! is in kubeha-serve; this module maps flags onto its `Spec` and talks to a running server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kubeha_model::{Cluster, Secrets};
use kubeha_serve::server::{Server, Spec, REIMAGE_HEADER};

use super::agent;

/// `kubeha serve`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Example: kubeha serve --cluster cluster.toml --secrets secrets.toml \\\n    \
    --bundle bundle/ --base Rocky-9.4-x86_64-dvd.iso --url http://192.168.20.5:8080\n\n\
    Point DHCP's iPXE clients at URL/boot.ipxe?mac=${net0/mac}. TFTP stays outside:\n\
    any TFTP server hands BIOS clients iPXE's undionly.kpxe and UEFI ones ipxe.efi\n\
    (--tftp DIR writes them, and a boot.ipxe that chains to URL, into DIR).\n\
    The fleet is at URL/ in a browser and in `kubeha status`.\n\
    A node is installed once: after it reports, it boots its disk until\n\
    `kubeha serve reimage NODE`. See docs/serve.md."
)]
pub struct ServeCmd {
    #[command(subcommand)]
    pub cmd: Option<ServeSub>,
    #[command(flatten)]
    pub run: ServeConfig,
}

/// `kubeha serve reimage` and friends.
#[derive(Debug, Subcommand)]
pub enum ServeSub {
    /// Reinstall a node on its next network boot (wipes its disk)
    Reimage(ReimageConfig),
}

/// `kubeha serve`'s flags.
#[derive(Debug, Args)]
pub struct ServeConfig {
    /// cluster.toml (nodes are recognised by their mac)
    #[arg(long, value_name = "FILE", required = true)]
    pub cluster: Option<PathBuf>,
    /// secrets file from `kubeha secrets` (masters' configs carry the CA keys)
    #[arg(long, value_name = "FILE", required = true)]
    pub secrets: Option<PathBuf>,
    /// The bundle directory (`kubeha bundle build`): served as URL/kubeha/
    #[arg(long, value_name = "DIR", required = true)]
    pub bundle: Option<PathBuf>,
    /// The base EL install ISO: its tree (installer kernel, initrd, OS
    /// packages) is extracted once into --state and served as URL/os/
    #[arg(long, value_name = "ISO", required = true)]
    pub base: Option<PathBuf>,
    /// The address to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8080")]
    pub listen: String,
    /// The URL nodes reach this server at (default: http://ADDR:PORT of
    /// --listen; needed when it listens on every address)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The state directory: the journal of every node's history and the
    /// ISO's extracted tree; a restart with the same one goes on
    #[arg(long, value_name = "DIR", default_value = "kubeha-serve")]
    pub state: PathBuf,
    /// The bundle's minisign public key file: nodes refuse a bundle whose
    /// bundle.toml it did not sign (kubeha bundle sign)
    #[arg(long, value_name = "FILE")]
    pub bundle_pubkey: Option<PathBuf>,
    /// The kubeha-firstboot binary (default: as `kubeha agent` finds it);
    /// refused if it needs a newer glibc than the EL ships
    #[arg(long, value_name = "FILE")]
    pub agent: Option<PathBuf>,
    /// kubeha-firstboot.service (default: next to the agent, or share/kubeha/)
    #[arg(long, value_name = "FILE")]
    pub agent_unit: Option<PathBuf>,
    /// The kickstart's EL release (default: the ISO's, else cluster.toml's install.el)
    #[arg(long, value_parser = clap::value_parser!(u8).range(7..=9))]
    pub el: Option<u8>,
    /// Also write a TFTP root to DIR for any TFTP server: iPXE's
    /// undionly.kpxe (BIOS) and ipxe.efi (UEFI) from the ipxe package, and
    /// boot.ipxe, which chains iPXE to URL/boot.ipxe?mac=${net0/mac}
    #[arg(long, value_name = "DIR")]
    pub tftp: Option<PathBuf>,
    /// Threads answering requests (each large download holds one for its
    /// whole length: give a rack installing at once about one per node)
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
    /// The most live pages at once (server-sent event streams, GET /events;
    /// each holds a thread of its own): the next one gets 503, and the page
    /// polls /api/fleet instead
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_event_clients: u16,
    /// Serve HTTPS with this certificate (PEM, chain first); the default URL
    /// becomes https://ADDR:PORT. Nodes' installers and iPXE must trust it
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, PKCS#8 or RSA, unencrypted)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `kubeha serve reimage`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example: kubeha serve reimage k8s-master02 --server http://192.168.20.5:8080"
)]
pub struct ReimageConfig {
    /// The node to reinstall
    #[arg(value_name = "NODE")]
    pub node: String,
    /// The running `kubeha serve`
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
}

/// `kubeha status`.
#[derive(Debug, Args)]
#[command(after_help = "Example: kubeha status --server http://192.168.20.5:8080 --json")]
pub struct StatusConfig {
    /// The running `kubeha serve`
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Print the fleet as JSON (the server's /api/fleet document)
    #[arg(long)]
    pub json: bool,
    /// Trust this CA certificate (PEM) for an https:// server (kubeha serve --tls-cert)
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
}

/// Runs `kubeha serve` or its subcommand.
pub fn serve(c: ServeCmd) -> Result<ExitCode> {
    match c.cmd {
        Some(ServeSub::Reimage(r)) => reimage(r),
        None => run(c.run),
    }
}

fn required(v: Option<PathBuf>, flag: &str) -> Result<PathBuf> {
    v.with_context(|| format!("{flag} is required"))
}

fn run(c: ServeConfig) -> Result<ExitCode> {
    let cluster_path = required(c.cluster, "--cluster")?;
    let secrets_path = required(c.secrets, "--secrets")?;
    let bundle = required(c.bundle, "--bundle")?;
    let base = required(c.base, "--base")?;
    let cluster = Cluster::load(&cluster_path)?;
    let secrets = Secrets::load(&secrets_path)?;
    let el = super::media::target_el(c.el, Some(&base), &cluster)?;
    let arch = kubeha_model::bundle::BundleManifest::load(&bundle)
        .ok()
        .map(|m| m.profile.arch);
    let agent = agent::find(c.agent, c.agent_unit, el, arch.as_deref())?;
    let bundle_pubkey = super::config::bundle_pubkey(c.bundle_pubkey.as_deref())?;
    if cluster.nodes().all(|(_, n)| n.mac.is_none()) {
        bail!(
            "{}: no node has a mac: kubeha serve recognises nodes by their MAC at network boot",
            cluster_path.display()
        );
    }
    let server = Server::start(Spec {
        cluster,
        secrets,
        bundle,
        base,
        state: c.state.clone(),
        listen: c.listen,
        url: c.url,
        agent,
        bundle_pubkey,
        el: c.el,
        max_event_clients: c.max_event_clients.into(),
        tls: c.tls_cert.zip(c.tls_key),
    })
    .context("starting kubeha serve")?;
    if let Some(dir) = &c.tftp {
        let missing = kubeha_serve::tftp::write(dir, server.url())
            .with_context(|| format!("writing the TFTP root {}", dir.display()))?;
        for l in &missing {
            log::warn!(
                "{l} not found on this machine (package ipxe): copy it into {}",
                dir.display()
            );
        }
        eprintln!(
            "Wrote the TFTP root {} (DHCP filename: undionly.kpxe for BIOS, ipxe.efi for UEFI, {} for iPXE)",
            dir.display(),
            kubeha_serve::tftp::CHAIN
        );
    }
    log::warn!(
        "masters' configs (with the cluster's CA keys) are served over HTTP to the MAC they belong to, until \
         the master is installed; keep this server on the install network only"
    );
    eprintln!(
        "Serving {} (listening on {}; state in {}); iPXE: {0}/boot.ipxe?mac=${{net0/mac}}",
        server.url(),
        server.addr(),
        c.state.display()
    );
    server.run(c.threads.into());
    Ok(ExitCode::SUCCESS)
}

fn client() -> Result<reqwest::blocking::Client> {
    client_with(None)
}

/// A client that also trusts the CA certificate in `cacert`.
fn client_with(cacert: Option<&std::path::Path>) -> Result<reqwest::blocking::Client> {
    let mut ca_pem = Vec::new();
    if let Some(p) = cacert {
        ca_pem.push(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
    }
    kubeha_mirror::http::client_builder(&ca_pem)
        .with_context(|| {
            format!(
                "--cacert {}: not a PEM certificate",
                cacert.unwrap_or(std::path::Path::new("")).display()
            )
        })?
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")
}

fn reimage(c: ReimageConfig) -> Result<ExitCode> {
    let url = format!("{}/api/reimage/{}", c.server.trim_end_matches('/'), c.node);
    let r = client()?
        .post(&url)
        .header(REIMAGE_HEADER, "1")
        .send()
        .with_context(|| format!("posting to {url}"))?;
    let code = r.status();
    let body = r.text().unwrap_or_default();
    if !code.is_success() {
        bail!("{url}: {code}: {}", body.trim());
    }
    eprintln!(
        "{}: its next network boot wipes its disk and reinstalls it",
        c.node
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `kubeha status`.
pub fn status(c: StatusConfig) -> Result<ExitCode> {
    let url = format!("{}/api/fleet", c.server.trim_end_matches('/'));
    let r = client_with(c.cacert.as_deref())?
        .get(&url)
        .send()
        .with_context(|| format!("fetching {url}"))?;
    let code = r.status();
    if !code.is_success() {
        bail!("{url}: {code}");
    }
    let v: serde_json::Value = r.json().with_context(|| format!("parsing {url}"))?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", table(&v));
    }
    Ok(ExitCode::SUCCESS)
}

fn duration(s: Option<i64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        Some(s) => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// The fleet table: the page's columns, one line per node, then the unknown machines.
fn table(v: &serde_json::Value) -> String {
    let s = |x: &serde_json::Value| x.as_str().unwrap_or("-").to_string();
    let mut rows = vec![[
        "NAME",
        "ROLE",
        "MAC",
        "IP",
        "PHASE",
        "DECISION",
        "IN-PHASE",
        "LAST-ERROR",
    ]
    .map(String::from)];
    for n in v["nodes"].as_array().into_iter().flatten() {
        let mut phase = match (n["phase"].as_str(), n["state"].as_str()) {
            (Some(p), Some(st)) => format!("{p} ({st})"),
            (Some(p), None) => p.to_string(),
            _ => "-".into(),
        };
        if n["installed"].as_bool() == Some(true) {
            phase.push_str(", installed");
        }
        if n["reinstall"].as_bool() == Some(true) {
            phase.push_str(", reinstall pending");
        }
        let refused = n["refused"].as_array().and_then(|r| r.last()).map(s);
        rows.push([
            s(&n["name"]),
            s(&n["role"]),
            s(&n["mac"]),
            s(&n["ip"]),
            phase,
            {
                let mut d: Vec<String> = n["decision"]
                    .as_str()
                    .map(String::from)
                    .into_iter()
                    .collect();
                if n["vip_holder"].as_bool() == Some(true) {
                    d.push("VIP holder".into());
                }
                if d.is_empty() {
                    "-".into()
                } else {
                    d.join(", ")
                }
            },
            duration(n["in_phase_s"].as_i64()),
            refused
                .map(|r| format!("refused: {r}"))
                .unwrap_or_else(|| s(&n["error"])),
        ]);
    }
    for u in v["unknown"].as_array().into_iter().flatten() {
        rows.push([
            "unknown machine".into(),
            "-".into(),
            s(&u["mac"]),
            s(&u["ip"]),
            s(&u["what"]),
            "-".into(),
            "-".into(),
            "served nothing".into(),
        ]);
    }
    let mut width = [0usize; 8];
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let cp: Vec<String> = v["control_plane"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m["decision"].as_str() {
            Some(d) => format!("{} ({d})", s(&m["name"])),
            None => s(&m["name"]),
        })
        .collect();
    out.push_str(&format!(
        "\ncontrol plane (masters that reported their cluster phase done): {}\n",
        if cp.is_empty() {
            "none yet".to_string()
        } else {
            cp.join(", ")
        }
    ));
    out.push_str(&format!(
        "VIP holder (as the nodes report it): {}\n",
        v["vip_holder"].as_str().unwrap_or("none reported")
    ));
    let e = &v["etcd_members"];
    match e["members"].as_array() {
        Some(m) => out.push_str(&format!(
            "etcd members: {} (as {} listed them at {})\n",
            m.iter().map(s).collect::<Vec<_>>().join(", "),
            s(&e["reported_by"]),
            s(&e["at"])
        )),
        None => out.push_str("etcd members: none reported\n"),
    }
    out
}
