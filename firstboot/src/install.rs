//! `kubeha-firstboot install`: what the kickstart's `%post --nochroot` runs against the installed system's root
//! (anaconda's `/mnt/sysimage`), the way `coreos-installer install` writes a target: fetch everything, check
//! everything, then write.
//!
//! 1. The node config: `kubeha.config=` (pinned by `kubeha.config.sha256=`) wins over the source's `node.toml`, read
//!    and validated by the agent's own providers and [`parse_config`]; the node's identity is resolved from it, the
//!    command line and this machine's MACs/IPs as the agent resolves it at first boot ([`identity::resolve`],
//!    [`source::finish`]). A contradiction (a `kubeha.name=` the cluster does not have, a role that disagrees, a
//!    master's config without its keys) stops the install; a node that names itself nowhere and matches no
//!    address here is left for the agent to find at first boot.
//! 2. The bundle: with `bundle.public-key` in the node config, the signature over `bundle.toml` first; then every
//!    file `bundle.toml` lists, with [`kubeha_mirror::bundle::verify`], the check `kubeha bundle verify` and the
//!    agent's precheck run (size and sha256 of every file, no symlinks, no unlisted files, the image index). A
//!    source directory (the install medium) is checked in place before anything is written (its listed files and
//!    signature: the medium's `/kubeha` also holds the agent and node config); every source is
//!    fetched into a staging directory inside the sysroot (same filesystem, so the bundle moves into place with a
//!    rename) and checked again there. A failure removes the staging directory: the sysroot is as it was.
//! 3. Only then the writes: the bundle renamed to `bundle.path`, the agent, its unit and the node config (0600 in
//!    a 0700 `/etc/kubeha`: a master's carries the CA keys) with [`write_atomic`].

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use kubeha_model::bundle::{BundleManifest, MANIFEST, MANIFEST_SIGNATURE};
use kubeha_model::cluster::Role;
use kubeha_model::fsutil::write_atomic;
use kubeha_model::kernel_args::Key;
use kubeha_model::media::{
    AGENT_BIN, AGENT_DIR, AGENT_UNIT, INSTALLED_AGENT, INSTALLED_NODE_CONFIG, INSTALLED_UNIT,
    NODE_CONFIG,
};
use kubeha_model::NodeConfig;

use crate::identity::{self, HostFacts};
use crate::providers::cmdline::{self, KernelArgs};
use crate::providers::parse_config;
use crate::retry::Client;
use crate::source::{self, SourceOptions};
use crate::util::under;

/// Where the installer reads kubeha's files (`bundle.toml`, `rpms/`, `images/`, `files/`, `agent/`, `node.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallSource {
    /// A directory: the install medium's `/kubeha` (`kubeha iso`).
    Dir(PathBuf),
    /// An HTTP(S) base URL: a PXE tree or `kubeha serve` (`kubeha pxe`).
    Http(String),
}

impl InstallSource {
    /// `http(s)://...` or an absolute directory.
    pub fn parse(s: &str) -> Result<InstallSource> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(InstallSource::Http(s.trim_end_matches('/').to_string()));
        }
        let p = Path::new(s);
        if !p.is_absolute() {
            bail!("--from {s}: expected an http(s) URL or an absolute directory");
        }
        Ok(InstallSource::Dir(p.to_path_buf()))
    }

    /// Where `rel` is, for messages (`""`: the source itself).
    pub fn describe(&self, rel: &str) -> String {
        match self {
            InstallSource::Dir(d) if rel.is_empty() => d.display().to_string(),
            InstallSource::Http(u) if rel.is_empty() => u.clone(),
            InstallSource::Dir(d) => d.join(rel).display().to_string(),
            InstallSource::Http(u) => format!("{u}/{rel}"),
        }
    }

    /// Copies or downloads `rel` to `dest`; `Ok(false)` when the source has no such file.
    fn fetch(&self, rel: &str, dest: &Path, client: &Client) -> Result<bool> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        match self {
            InstallSource::Dir(d) => match fs::copy(d.join(rel), dest) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e).with_context(|| format!("copying {}", self.describe(rel))),
            },
            InstallSource::Http(_) => Ok(client
                .download(&self.describe(rel), dest)
                .with_context(|| format!("downloading {}", self.describe(rel)))?
                .is_some()),
        }
    }
}

/// What to install.
#[derive(Debug, Clone)]
pub struct Options {
    /// The installed system's root (anaconda's `/mnt/sysimage`).
    pub sysroot: PathBuf,
    /// Where kubeha's files are.
    pub from: InstallSource,
    /// The installer's kernel command line file (`/proc/cmdline`).
    pub cmdline: PathBuf,
    /// The installer's own root: `kubeha.config=file:PATH` and `label:` are read under it (`/`).
    pub host_root: PathBuf,
}

/// What was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The node's name and role, when the installer could tell (else the agent finds them at first boot).
    pub identity: Option<(String, Role)>,
    /// How the identity was found, or why it was left to first boot.
    pub how: String,
    /// Where the node config came from.
    pub config_source: String,
    /// Files of the bundle checked and installed.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Whether the bundle's signature was installed with it (and checked, when the config carries a key).
    pub signature: bool,
    /// Where the bundle is in the sysroot (`bundle.path`).
    pub bundle_path: String,
    /// The node is a worker and its config came with the control plane's keys (media made for every role): it was
    /// installed without its `[control-plane]` table.
    pub keys_dropped: bool,
}

/// Installs kubeha into `opts.sysroot`; `facts` are this machine's interfaces (the identity's MAC/IP match). An
/// error names the file at fault, and leaves the sysroot as it was.
pub fn install(opts: &Options, facts: &HostFacts) -> Result<Installed> {
    if !opts.sysroot.is_dir() {
        bail!(
            "--sysroot {}: not a directory (the installed system's root)",
            opts.sysroot.display()
        );
    }
    let args = cmdline::load(&opts.cmdline)?;
    let client = Client::with_timeout(Duration::from_secs(600))?
        .backoff(Duration::from_secs(1), Duration::from_secs(10))
        .return_on_404(true);

    // 1. The node config and who this node is.
    let (config_bytes, config, config_source) = node_config(opts, &args, facts)?;
    let (identity, how) = resolve_identity(&config, &config_source, &args, facts)?;
    // A worker never keeps the cluster's CA keys. Media made for every role carry one node config with them (any
    // master may install from it); on a node known to be a worker it is installed without its [control-plane]
    // table, in the schema's own serialization.
    let keys_dropped =
        matches!(identity, Some((_, Role::Worker))) && config.control_plane.is_some();
    let config_bytes = if keys_dropped {
        let mut c = config.clone();
        c.control_plane = None;
        c.to_toml().into_bytes()
    } else {
        config_bytes
    };
    let bundle_path = config.bundle.path.clone();
    let key = config.bundle.public_key.as_deref();

    // 2. The bundle: in place first when it is a directory (a bad medium changes nothing at all).
    if let InstallSource::Dir(d) = &opts.from {
        check_listed(d, key)
            .with_context(|| format!("the bundle at {}: refusing to install it", d.display()))?;
    }
    let stage = tempfile::Builder::new()
        .prefix(".kubeha-install-")
        .tempdir_in(&opts.sysroot)
        .with_context(|| format!("creating a staging directory in {}", opts.sysroot.display()))?;
    let staged = stage.path().join("bundle");
    if !opts.from.fetch(MANIFEST, &staged.join(MANIFEST), &client)? {
        bail!(
            "{}: not there: no bundle to install",
            opts.from.describe(MANIFEST)
        );
    }
    let signature = opts.from.fetch(
        MANIFEST_SIGNATURE,
        &staged.join(MANIFEST_SIGNATURE),
        &client,
    )?;
    // The signature before the manifest is trusted to say what to fetch.
    if let Some(k) = key {
        kubeha_mirror::signature::verify_manifest(&staged, k).with_context(|| {
            format!(
                "{}: refusing the bundle: the node config's bundle.public-key requires a good signature over it",
                opts.from.describe(MANIFEST)
            )
        })?;
    }
    let manifest = BundleManifest::load(&staged)?;
    for f in &manifest.files {
        if !is_plain_relative(&f.path) {
            bail!(
                "{}: lists file {:?}: not a plain relative path",
                opts.from.describe(MANIFEST),
                f.path
            );
        }
        if !opts.from.fetch(&f.path, &staged.join(&f.path), &client)? {
            bail!(
                "{}: listed in {MANIFEST} but not there",
                opts.from.describe(&f.path)
            );
        }
    }
    let sum = check_bundle(&staged, key).with_context(|| {
        format!(
            "the bundle fetched from {}: refusing to install it",
            opts.from.describe("")
        )
    })?;
    let agent_dir = stage.path().join(AGENT_DIR);
    let mut agent_files = Vec::new();
    for name in [AGENT_BIN, AGENT_UNIT] {
        let rel = format!("{AGENT_DIR}/{name}");
        let dest = agent_dir.join(name);
        if !opts.from.fetch(&rel, &dest, &client)? {
            bail!(
                "{}: not there: no node agent to install",
                opts.from.describe(&rel)
            );
        }
        agent_files.push(fs::read(&dest).with_context(|| format!("reading {}", dest.display()))?);
    }

    // 3. Everything checked: the writes.
    let target = under(&opts.sysroot, &bundle_path);
    move_into_place(&staged, &target)?;
    write_atomic(
        &under(&opts.sysroot, INSTALLED_AGENT),
        &agent_files[0],
        0o755,
        true,
    )?;
    write_atomic(
        &under(&opts.sysroot, INSTALLED_UNIT),
        &agent_files[1],
        0o644,
        true,
    )?;
    // 0700: a master's node config carries the cluster's CA keys.
    let conf = under(&opts.sysroot, INSTALLED_NODE_CONFIG);
    let conf_dir = conf.parent().expect("a file under /etc/kubeha");
    fs::create_dir_all(conf_dir).with_context(|| format!("creating {}", conf_dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(conf_dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("setting the mode of {}", conf_dir.display()))?;
    }
    write_atomic(&conf, &config_bytes, 0o600, true)?;
    drop(stage);
    Ok(Installed {
        identity,
        how,
        config_source,
        files: sum.files,
        bytes: sum.bytes,
        signature,
        bundle_path,
        keys_dropped,
    })
}

/// The signature (when the config carries a key), then every listed file, in place: the medium's `/kubeha` also
/// holds the agent and a node config, which the bundle does not list (only listed files are fetched, and the
/// staged copy gets the whole [`kubeha_mirror::bundle::verify`]).
fn check_listed(dir: &Path, key: Option<&str>) -> Result<kubeha_mirror::bundle::VerifySummary> {
    if let Some(k) = key {
        kubeha_mirror::signature::verify_manifest(dir, k)?;
    }
    Ok(kubeha_mirror::bundle::verify_listed(dir)?)
}

/// The signature (when the config carries a key), then every file.
fn check_bundle(dir: &Path, key: Option<&str>) -> Result<kubeha_mirror::bundle::VerifySummary> {
    if let Some(k) = key {
        kubeha_mirror::signature::verify_manifest(dir, k)?;
    }
    Ok(kubeha_mirror::bundle::verify(dir)?)
}

/// The node config's bytes (installed as they are), parsed, and where they came from: `kubeha.config=` (pinned by
/// `kubeha.config.sha256=`) when the command line has it, else the source's `node.toml`.
fn node_config(
    opts: &Options,
    args: &KernelArgs,
    facts: &HostFacts,
) -> Result<(Vec<u8>, NodeConfig, String)> {
    let (fetched, pin, from_cmdline) = match &args.config {
        Some(loc) => {
            let sopts = SourceOptions {
                root: opts.host_root.clone(),
                config_file: None,
                dry_run: false,
                wait: Some(Duration::ZERO),
                poll: Duration::ZERO,
            };
            let p = source::cmdline_provider(&sopts, loc, args, facts)
                .with_context(|| format!("kernel command line {}", Key::Config))?;
            let what = p.describe();
            let f = p
                .fetch()
                .with_context(|| format!("reading the node config from {what}"))?;
            match f {
                Some(f) => (f, args.config_sha256.clone(), true),
                None => bail!("{what}: no node config there"),
            }
        }
        None => {
            let rel = NODE_CONFIG;
            let data = match &opts.from {
                InstallSource::Dir(d) => match fs::read(d.join(rel)) {
                    Ok(b) => Some(b),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("reading {}", opts.from.describe(rel)))
                    }
                },
                InstallSource::Http(_) => Client::new()?
                    .return_on_404(true)
                    .get(&opts.from.describe(rel))?,
            };
            let Some(data) = data else {
                bail!(
                    "{}: not there, and no {} on the kernel command line: no node config to install",
                    opts.from.describe(rel),
                    Key::Config
                );
            };
            (
                crate::providers::Fetched {
                    data,
                    source: opts.from.describe(rel),
                },
                None,
                false,
            )
        }
    };
    let config = parse_config(&fetched.data, &fetched.source, pin.as_deref())?;
    // As the agent reads kubeha.config=: a master's config (the cluster's CA keys) over plain http only with a pin.
    // (The source's own node.toml comes with the media the operator made, as the bundle does.)
    if from_cmdline
        && config.control_plane.is_some()
        && pin.is_none()
        && fetched.source.starts_with("http://")
    {
        bail!(
            "{}: a master's node config (it holds the cluster's CA keys) over plain http:// needs {}= on the \
             kernel command line, or https://",
            fetched.source,
            Key::ConfigSha256
        );
    }
    Ok((fetched.data, config, fetched.source))
}

/// Who this node is, as the agent will resolve it; `None` when nothing names it and no address matches here.
fn resolve_identity(
    config: &NodeConfig,
    source: &str,
    args: &KernelArgs,
    facts: &HostFacts,
) -> Result<(Option<(String, Role)>, String)> {
    let named = config.node.name.is_some() || args.name.is_some();
    match identity::resolve(config, args, facts, source) {
        Ok(_) => {
            let r = source::finish(config.clone(), source.to_string(), args, facts)
                .with_context(|| format!("the node config from {source}"))?;
            let id = r.identity;
            Ok((Some((id.node.name, id.role)), id.how))
        }
        Err(e) if !named => Ok((None, format!("left to the agent at first boot: {e:#}"))),
        Err(e) => Err(e.context(format!("the node config from {source}"))),
    }
}

/// A path of `bundle.toml` that stays inside the bundle: relative, no `.` or `..`.
fn is_plain_relative(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Moves the staged bundle to `target`, replacing an earlier one; across filesystems (a separate `/var`), a copy.
fn move_into_place(staged: &Path, target: &Path) -> Result<()> {
    let parent = target.parent().expect("bundle.path is absolute");
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    if fs::symlink_metadata(target).is_ok() {
        fs::remove_dir_all(target)
            .with_context(|| format!("removing the earlier {}", target.display()))?;
    }
    match fs::rename(staged, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => copy_tree(staged, target),
        Err(e) => {
            Err(e).with_context(|| format!("moving {} to {}", staged.display(), target.display()))
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            InstallSource::parse("http://h:8080/kubeha/").unwrap(),
            InstallSource::Http("http://h:8080/kubeha".into())
        );
        assert_eq!(
            InstallSource::parse("/run/install/repo/kubeha").unwrap(),
            InstallSource::Dir("/run/install/repo/kubeha".into())
        );
        assert!(InstallSource::parse("kubeha").is_err());
        assert!(InstallSource::parse("ftp://h/x").is_err());
        let d = InstallSource::parse("/m/kubeha").unwrap();
        assert_eq!(
            (d.describe(""), d.describe("bundle.toml")),
            ("/m/kubeha".into(), "/m/kubeha/bundle.toml".into())
        );
        let h = InstallSource::parse("http://h/kubeha").unwrap();
        assert_eq!(
            (h.describe(""), h.describe("bundle.toml")),
            (
                "http://h/kubeha".into(),
                "http://h/kubeha/bundle.toml".into()
            )
        );
    }

    #[test]
    fn manifest_paths_stay_inside() {
        for (p, ok) in [
            ("files/calico.yaml", true),
            ("rpms/repodata/repomd.xml", true),
            ("../etc/passwd", false),
            ("/etc/passwd", false),
            ("files/./x", true),
            ("", false),
        ] {
            assert_eq!(is_plain_relative(p), ok, "{p}");
        }
    }
}
