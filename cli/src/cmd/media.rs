//! `kubeha kickstart`, `kubeha iso`, `kubeha pxe`: install media. The work is in kubeha-kickstart and
//! kubeha-image; this module only maps flags onto their options.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use kubeha_image::bootcfg::{self, ArgEdit};
use kubeha_image::iso::IsoSpec;
use kubeha_kickstart::{Options, Source};
use kubeha_model::bundle::BundleManifest;
use kubeha_model::cluster::Role;
use kubeha_model::kernel_args::{ConfigLocation, KernelArgs, KernelArgsError, Key};
use kubeha_model::{Cluster, NodeConfig, Secrets};

use super::agent;

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
    Ok(BundleManifest::load(dir)?.requested_packages())
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
#[command(
    after_help = "Example:\n  kubeha iso --base Rocky-9.4-x86_64-dvd.iso --bundle bundle/ --cluster cluster.toml \\\n    \
    --secrets secrets.toml --role worker -o kubeha-worker.iso\n\n\
    Private keys go on the medium only with --embed-secrets. Otherwise the medium carries a\n\
    worker-grade node config, and masters get theirs with --config-url (a master config from\n\
    `kubeha node-config`, served over HTTP and pinned by its sha256) or a config drive."
)]
pub struct IsoConfig {
    /// The base EL install ISO (DVD or minimal: the OS packages come from it)
    #[arg(long, value_name = "ISO")]
    pub base: PathBuf,
    /// The bundle directory (`kubeha bundle build`)
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// cluster.toml
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
    /// secrets file from `kubeha secrets`
    #[arg(long, value_name = "FILE")]
    pub secrets: PathBuf,
    /// The role every node booted from this medium takes (kubeha.role=); auto: by MAC/IP
    #[arg(long, default_value = "auto", value_parser = ["auto", "master", "worker"])]
    pub role: String,
    /// One node's name (kubeha.name=): a medium for that node only
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Put the control-plane keys on the medium (anyone holding it can take over the cluster)
    #[arg(long)]
    pub embed_secrets: bool,
    /// The bundle's minisign public key file: nodes refuse a bundle whose
    /// bundle.toml it did not sign (kubeha bundle sign)
    #[arg(long, value_name = "FILE")]
    pub bundle_pubkey: Option<PathBuf>,
    /// kubeha.config=: where nodes get their node config at install time (http(s) URL,
    /// file:PATH or label:FSLABEL of a config drive)
    #[arg(long, value_name = "URL")]
    pub config_url: Option<String>,
    /// The node config served at --config-url: its sha256 is pinned (kubeha.config.sha256=)
    #[arg(long, value_name = "FILE", requires = "config_url")]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub embed: EmbedArgs,
    /// The kickstart's EL release (default: the base ISO's)
    #[arg(long, value_parser = clap::value_parser!(u8).range(7..=9))]
    pub el: Option<u8>,
    /// The ISO to write
    #[arg(short, long, value_name = "ISO")]
    pub output: PathBuf,
    /// Replace an existing output
    #[arg(long)]
    pub force: bool,
}

/// The EL release the nodes are installed as, picked the way kubeha-image picks the kickstart's: `--el`, else the
/// base ISO's (.treeinfo/.discinfo), else cluster.toml's `install.el`. The agent is checked against it.
pub(super) fn target_el(flag: Option<u8>, base: Option<&Path>, cluster: &Cluster) -> Result<u8> {
    if let Some(e) = flag {
        return Ok(e);
    }
    if let Some(iso) = base {
        let work = tempfile::tempdir().context("creating a temporary directory")?;
        if let Some(e) = kubeha_image::iso::inspect(iso, work.path())?.el {
            return Ok(e);
        }
    }
    Ok(cluster.install.el)
}

/// The bundle's architecture, which the agent must match (an unreadable bundle is reported by the media writer).
fn bundle_arch(dir: &Path) -> Option<String> {
    BundleManifest::load(dir).ok().map(|m| m.profile.arch)
}

/// What `kubeha iso` and `kubeha pxe` both take for the install: the agent they embed and the edits to every
/// install entry's kernel command line.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The kubeha-firstboot binary (default: ../share/kubeha/ beside kubeha,
    /// else the source tree's dist/ from `make node-binary`, else the one
    /// beside kubeha); refused if it needs a newer glibc than the EL ships
    #[arg(long, value_name = "FILE")]
    pub agent: Option<PathBuf>,
    /// kubeha-firstboot.service (default: next to the agent, or share/kubeha/)
    #[arg(long, value_name = "FILE")]
    pub agent_unit: Option<PathBuf>,
    /// Add kernel arguments to every install entry (repeat; like mkksiso -c),
    /// e.g. --append 'console=ttyS0,115200 inst.text'
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub append: Vec<String>,
    /// Remove a kernel argument, NAME and NAME=..., from every install entry
    /// (repeat; like mkksiso --rm-args), e.g. --remove-arg quiet
    #[arg(long, value_name = "NAME")]
    pub remove_arg: Vec<String>,
}

impl EmbedArgs {
    /// `--remove-arg` and `--append`, checked (no character that would break a boot config).
    fn user_args(&self) -> Result<ArgEdit> {
        Ok(ArgEdit {
            remove: bootcfg::parse_remove("--remove-arg", &self.remove_arg)?,
            add: bootcfg::parse_append("--append", &self.append)?,
        })
    }

    /// The agent (and its unit) for EL `el` and the bundle's architecture, checked (see [`agent::find`]).
    fn agent(self, el: u8, bundle: &Path) -> Result<kubeha_image::Agent> {
        agent::find(
            self.agent,
            self.agent_unit,
            el,
            bundle_arch(bundle).as_deref(),
        )
    }
}

/// kubeha's kernel arguments for a medium: the role, the name, and where the node config is (`--config-url`,
/// pinned by `--config-file`'s sha256).
fn kernel_args(
    role: Option<Role>,
    name: Option<&str>,
    url: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<KernelArgs> {
    let mut args = KernelArgs {
        role,
        name: name.map(str::to_string),
        ..Default::default()
    };
    if let Some(u) = url {
        let ok = u.starts_with("http://")
            || u.starts_with("https://")
            || u.starts_with("file:")
            || u.starts_with("label:");
        if !ok || u.contains(char::is_whitespace) {
            anyhow::bail!("--config-url: '{u}' is not an http(s) URL, file:PATH or label:FSLABEL");
        }
        // The rules the installer and the node agent read it with.
        args.config = Some(ConfigLocation::parse(u).map_err(|e| match e {
            KernelArgsError::Invalid { message, .. } => anyhow::anyhow!("--config-url: {message}"),
            e => anyhow::anyhow!("--config-url: {e}"),
        })?);
        if let Some(f) = file {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            NodeConfig::parse(&text, &f.display().to_string())?;
            args.config_sha256 = Some(hex_sha256(text.as_bytes()));
        } else if u.starts_with("http://") {
            log::warn!("--config-url over plain HTTP without --config-file: the node config is not pinned by sha256");
        }
    }
    args.validate()?;
    Ok(args)
}

fn hex_sha256(data: &[u8]) -> String {
    kubeha_image::pxe::sha256_hex(data)
}

/// Runs `kubeha iso`.
pub fn iso(c: IsoConfig) -> Result<ExitCode> {
    let cluster = Cluster::load(&c.cluster)?;
    let secrets = Secrets::load(&c.secrets)?;
    let role = match c.role.as_str() {
        "auto" => None,
        r => Some(r.parse::<Role>().map_err(anyhow::Error::msg)?),
    };
    let user_args = c.embed.user_args()?;
    let el = target_el(c.el, Some(&c.base), &cluster)?;
    let agent = c.embed.agent(el, &c.bundle)?;
    // The medium's node.toml: worker-grade (role-agnostic, no private key) unless --embed-secrets.
    let nc = if c.embed_secrets {
        log::warn!(
            "--embed-secrets: the medium carries the cluster's CA and service-account private keys; \
             anyone holding it can take over the cluster. Keep it like the secrets file."
        );
        NodeConfig::build(&cluster, &secrets, role, c.name.as_deref(), true)?
    } else {
        if role == Some(Role::Master) && c.config_url.is_none() {
            log::warn!(
                "masters need the control-plane keys: without --embed-secrets or --config-url, give each \
                 master {}= at boot or a config drive labelled KUBEHA (see docs/media.md)",
                Key::Config
            );
        }
        let nc = NodeConfig::build(&cluster, &secrets, None, c.name.as_deref(), false)?;
        if let Some(n) = &c.name {
            // Validate that the name and role agree, without putting keys in the file.
            NodeConfig::build(&cluster, &secrets, role, Some(n), false)?;
        }
        nc
    };
    let mut nc = nc;
    nc.bundle.public_key = super::config::bundle_pubkey(c.bundle_pubkey.as_deref())?;
    let args = kernel_args(role, c.name.as_deref(), &c.config_url, &c.config_file)?;
    let report = kubeha_image::iso::remaster(&IsoSpec {
        base: c.base,
        bundle: c.bundle,
        output: c.output.clone(),
        cluster: &cluster,
        node_config: &nc,
        kernel_args: args,
        user_args,
        agent,
        el: c.el,
        force: c.force,
    })?;
    eprintln!(
        "Wrote {} (volume id '{}', EL{} kickstart; edited {}; boot args: {}{})",
        c.output.display(),
        report.volid,
        report.el,
        report.edited.join(", "),
        report.args.join(" "),
        if report.removed.is_empty() {
            String::new()
        } else {
            format!("; removed: {}", report.removed.join(" "))
        }
    );
    eprintln!(
        "Default boot entry (unattended install, no media check): {}",
        report.defaults.join("; ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `kubeha pxe`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  kubeha pxe --base Rocky-9.4-x86_64-dvd.iso --bundle bundle/ --cluster cluster.toml \\\n    \
    --secrets secrets.toml --http-base http://192.168.20.5/ --install all -o /srv/tftp\n\n\
    Serve DIR over TFTP (DHCP bootfile pxelinux.0 for BIOS, shimx64.efi or grubx64.efi for\n\
    UEFI, boot.ipxe for iPXE) and over HTTP at --http-base. Every entry defaults to the local\n\
    disk; only nodes named by --install boot the installer, which wipes their disk unless it\n\
    already holds the node (then it halts); --reinstall NAME reimages an installed node."
)]
pub struct PxeConfig {
    /// The installer kernel (with --initrd and --os-url)
    #[arg(long, value_name = "FILE", requires_all = ["initrd", "os_url"], conflicts_with = "base")]
    pub kernel: Option<PathBuf>,
    /// The installer initrd
    #[arg(long, value_name = "FILE", requires = "kernel")]
    pub initrd: Option<PathBuf>,
    /// The OS installation tree's URL (inst.repo=) when --kernel is used
    #[arg(long, value_name = "URL")]
    pub os_url: Option<String>,
    /// An EL install ISO: kernel, initrd and the OS tree (served as HTTP-BASE/os) come from it
    #[arg(long, value_name = "ISO", required_unless_present = "kernel")]
    pub base: Option<PathBuf>,
    /// The bundle directory
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// cluster.toml
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
    /// secrets file from `kubeha secrets`
    #[arg(long, value_name = "FILE")]
    pub secrets: PathBuf,
    /// The URL the output directory is served at over HTTP
    #[arg(long, value_name = "URL")]
    pub http_base: String,
    /// Nodes whose entry defaults to the installer (repeat, or `all`); the rest boot the local disk.
    /// An installed node's kickstart refuses to wipe it and halts (see --reinstall)
    #[arg(long, value_name = "NAME|all", value_delimiter = ',')]
    pub install: Vec<String>,
    /// Reimage these nodes (repeat, or `all`): like --install, and their entries carry
    /// kubeha.reinstall=1, so the installer wipes a disk that already holds the node.
    /// They reinstall on every network boot until you rerun without --reinstall
    #[arg(long, value_name = "NAME|all", value_delimiter = ',')]
    pub reinstall: Vec<String>,
    /// Serve each master a node config with the control-plane keys (pinned by sha256); anyone who
    /// can reach the web server can read them
    #[arg(long)]
    pub embed_secrets: bool,
    /// The bundle's minisign public key file: nodes refuse a bundle whose
    /// bundle.toml it did not sign (kubeha bundle sign)
    #[arg(long, value_name = "FILE")]
    pub bundle_pubkey: Option<PathBuf>,
    /// The web server's group: --embed-secrets configs are written 0640 with this group
    /// (default: 0600, readable only by the user that runs kubeha pxe)
    #[arg(long, value_name = "GROUP", requires = "embed_secrets")]
    pub web_group: Option<String>,
    /// A GRUB EFI network image to serve as grubx64.efi (default: the ISO's EFI/BOOT/grubx64.efi)
    #[arg(long, value_name = "FILE")]
    pub grub_efi: Option<PathBuf>,
    #[command(flatten)]
    pub embed: EmbedArgs,
    /// The kickstart's EL release (default: the ISO's, else cluster.toml's install.el)
    #[arg(long, value_parser = clap::value_parser!(u8).range(7..=9))]
    pub el: Option<u8>,
    /// Output directory (the TFTP and HTTP root)
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Replace an existing output directory
    #[arg(long)]
    pub force: bool,
}

/// Runs `kubeha pxe`.
pub fn pxe(c: PxeConfig) -> Result<ExitCode> {
    use kubeha_image::pxe::{Boot, Install, PxeSpec};
    let cluster = Cluster::load(&c.cluster)?;
    let secrets = Secrets::load(&c.secrets)?;
    let user_args = c.embed.user_args()?;
    let el = target_el(c.el, c.base.as_deref(), &cluster)?;
    let agent = c.embed.agent(el, &c.bundle)?;
    let boot = match (c.base, c.kernel, c.initrd) {
        (Some(iso), _, _) => Boot::Iso(iso),
        (None, Some(kernel), Some(initrd)) => Boot::Files { kernel, initrd },
        _ => anyhow::bail!("give --base ISO, or --kernel, --initrd and --os-url"),
    };
    let set = |names: Vec<String>| {
        if names.iter().any(|n| n == "all") {
            Install::All
        } else if names.is_empty() {
            Install::None
        } else {
            Install::Nodes(names)
        }
    };
    let install = set(c.install);
    let reinstall = set(c.reinstall);
    let pubkey = super::config::bundle_pubkey(c.bundle_pubkey.as_deref())?;
    let mut nc = NodeConfig::build(&cluster, &secrets, None, None, false)?;
    nc.bundle.public_key = pubkey.clone();
    let secret_group = match &c.web_group {
        None => None,
        Some(g) => Some(
            nix::unistd::Group::from_name(g)
                .with_context(|| format!("--web-group {g}: looking up the group"))?
                .with_context(|| format!("--web-group {g}: no such group"))?
                .gid
                .as_raw(),
        ),
    };
    let mut masters = Vec::new();
    if c.embed_secrets {
        log::warn!(
            "--embed-secrets: each master's node config with the cluster's private keys is served under \
             kubeha/nodes/; restrict the web server to the node network"
        );
        for m in &cluster.masters {
            let mut mc =
                NodeConfig::build(&cluster, &secrets, Some(Role::Master), Some(&m.name), true)?;
            mc.bundle.public_key = pubkey.clone();
            masters.push((m.name.clone(), mc));
        }
    } else if !cluster.masters.is_empty() {
        log::warn!(
            "without --embed-secrets masters get a worker-grade node config: give them {}= or a \
             config drive labelled KUBEHA (see docs/media.md)",
            Key::Config
        );
    }
    if install == Install::None && reinstall == Install::None {
        log::info!("no --install: every node boots its local disk; name nodes with --install NAME or --install all");
    }
    if reinstall != Install::None {
        log::warn!(
            "--reinstall: those nodes' entries wipe their installed disk ({}=1) on every network \
             boot; rerun kubeha pxe without --reinstall once they are reinstalled",
            Key::Reinstall
        );
    }
    let report = kubeha_image::pxe::write_tree(&PxeSpec {
        output: c.output.clone(),
        http_base: c.http_base,
        boot,
        os_url: c.os_url,
        bundle: c.bundle,
        cluster: &cluster,
        node_config: &nc,
        master_configs: masters,
        secret_group,
        install,
        reinstall,
        user_args,
        agent,
        el: c.el,
        grub_efi: c.grub_efi,
        force: c.force,
    })?;
    for l in &report.missing_loaders {
        log::warn!(
            "{l} not found on this machine (syslinux/pxelinux): copy it into {}",
            c.output.display()
        );
    }
    for (name, mac, inst, reinst) in &report.nodes {
        eprintln!(
            "  {name} {mac}: {}",
            match (inst, reinst) {
                (_, true) => "reinstall (wipes the disk, even an installed one)",
                (true, false) => "install (wipes a blank or foreign disk; an installed node halts)",
                _ => "local disk",
            }
        );
    }
    eprintln!("Wrote {} (EL{} kickstart)", c.output.display(), report.el);
    Ok(ExitCode::SUCCESS)
}
