//! `kubeha bundle ...`: the offline bundle of images, RPMs and files. The work is in kubeha-mirror.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kubeha_mirror::archive::{write_docker_archive, write_oci_archive};
use kubeha_mirror::build::{build, BuildOptions};
use kubeha_mirror::bundle::{load_profile, verify, BUILTIN_PROFILES, DEFAULT_PROFILE};
use kubeha_mirror::oci::Layout;
use kubeha_mirror::overrides::{apply as apply_overrides, Kind, Override, OverridesFile};
use kubeha_mirror::signature::{keygen, sign_manifest, verify_manifest};
use kubeha_model::bundle::IMAGES_DIR;
use kubeha_model::kube::{kubeadm_images, KubeVersion};

/// Bundle subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCmd {
    /// Print kubeadm's image list for a Kubernetes release
    ///
    /// Exactly what `kubeadm config images list` prints for that release,
    /// one image per line, without running kubeadm.
    ///
    /// Example: kubeha bundle images --kubernetes-version v1.11.1
    Images(ImagesConfig),
    /// Download a profile's images, RPMs and files into a bundle directory
    ///
    /// Writes DIR/images (one OCI layout shared by all images), DIR/rpms (a
    /// yum repository), DIR/files and DIR/bundle.toml (every file with its
    /// sha256). Run it again to update or repair: what is there is re-hashed
    /// and only what is missing or damaged is downloaded.
    ///
    /// --mirror, --repo and --file change only where things are fetched
    /// from: images keep their names, files their sha256 pins. Each must
    /// name a registry, repo or file the profile has. Secrets are read from
    /// a file or an environment variable, never taken as an argument.
    ///
    /// Example: kubeha bundle build --profile seed-v1.11.1 -o bundle/
    ///
    /// Example: kubeha bundle build --profile seed-v1.11.1 -o bundle/
    /// --mirror k8s.gcr.io=https://mirror.example/k8s
    /// --repo kubernetes=https://repo.example/el7/
    /// --repo-credentials kubernetes=ci:/run/secrets/repo
    Build(BuildConfig),
    /// Print the RPM closure of a profile without downloading packages
    ///
    /// Reads the repos' metadata only and prints every package dnf would
    /// install for the profile's packages: its NEVRA, its repo (base repos
    /// are already on the node) and why it is there.
    ///
    /// Example: kubeha bundle resolve --profile my.toml --json
    Resolve(ResolveConfig),
    /// Check every file of a bundle against its bundle.toml
    ///
    /// Exit 0 when every file matches, 1 naming the first bad file.
    ///
    /// Example: kubeha bundle verify bundle/
    ///
    /// With --key, the signature bundle.toml.minisig is checked first
    /// (kubeha bundle sign): exit 1 when it is missing, made with another
    /// key, or bundle.toml changed after signing.
    ///
    /// Example: kubeha bundle verify bundle/ --key bundle.pub
    Verify(VerifyConfig),
    /// Sign a bundle: a minisign signature over bundle.toml
    ///
    /// Writes DIR/bundle.toml.minisig. bundle.toml holds the sha256 of every
    /// other file, so this signs the bundle; stock `minisign -V -p KEY.pub
    /// -m DIR/bundle.toml` verifies it too. KEY is a minisign secret key
    /// file (kubeha bundle keygen, or minisign -G). An encrypted key's
    /// password comes from --password-file or KUBEHA_BUNDLE_KEY_PASSWORD.
    /// A rebuild removes the signature: sign again after every build.
    ///
    /// Example: kubeha bundle sign bundle/ --key bundle.key
    Sign(SignConfig),
    /// Create a key pair for kubeha bundle sign (minisign format)
    ///
    /// Writes the secret key (0600) and the public key; refuses to overwrite
    /// either. The secret key is encrypted with the password from
    /// --password-file or KUBEHA_BUNDLE_KEY_PASSWORD, else left unencrypted
    /// (like minisign -GW): keep it off the build host's shared disks.
    ///
    /// Example: kubeha bundle keygen --secret-key bundle.key --public-key bundle.pub
    Keygen(KeygenConfig),
    /// Write a `docker load` / `ctr images import` archive of bundle images
    ///
    /// Streams the blobs from the bundle's image layout; RepoTags are the
    /// images' original references.
    ///
    /// Example: kubeha bundle export-archive bundle/ --all -o images.tar
    ExportArchive(ExportConfig),
    /// Print a built-in profile (to start your own from)
    ///
    /// Example: kubeha bundle profile seed-v1.11.1 > my-profile.toml
    Profile(ProfileConfig),
}

/// `kubeha bundle images`.
#[derive(Debug, Args)]
pub struct ImagesConfig {
    /// The release, e.g. v1.31.4
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: String,
    /// kubeadm's imageRepository (default: the release's own registry)
    #[arg(long, value_name = "REPO")]
    pub image_repository: Option<String>,
}

/// `kubeha bundle build`.
#[derive(Debug, Args)]
pub struct BuildConfig {
    /// A built-in profile name or a profile TOML file
    #[arg(long, value_name = "PROFILE", default_value = DEFAULT_PROFILE)]
    pub profile: String,
    /// The bundle directory (created, or updated in place)
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Also trust this CA certificate (PEM) for registries and file URLs
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,
    /// Parallel downloads
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub parallel: usize,
    /// Pull REGISTRY's images from a mirror, keeping their names; the
    /// URL's path is the prefix on the mirror (repeatable)
    #[arg(long, value_name = "REGISTRY=URL")]
    pub mirror: Vec<String>,
    /// Read RPM repo ID from another base URL (repeatable)
    #[arg(long, value_name = "ID=BASEURL")]
    pub repo: Vec<String>,
    /// Download pinned file NAME from another URL; its sha256 stays
    #[arg(long, value_name = "NAME=URL")]
    pub file: Vec<String>,
    /// Log in to registry or mirror HOST: USER:PASSWORD-FILE or
    /// USER:env:VARIABLE (repeatable)
    #[arg(long, value_name = "HOST=USER:SECRET")]
    pub registry_credentials: Vec<String>,
    /// HTTP Basic login for repo ID: USER:PASSWORD-FILE or
    /// USER:env:VARIABLE (repeatable)
    #[arg(long, value_name = "ID=USER:SECRET")]
    pub repo_credentials: Vec<String>,
    /// Fetch repo ID's signing key from another URL (a copy of the same
    /// key; repeatable)
    #[arg(long, value_name = "ID=URL")]
    pub gpgkey: Vec<String>,
    /// A TOML file with the same keys as lists (mirror = ["REGISTRY=URL"],
    /// repo, file, registry-credentials, repo-credentials); flags win
    #[arg(long, value_name = "FILE")]
    pub overrides: Option<PathBuf>,
    /// On a rerun, trust blobs and RPMs whose size and mtime match the
    /// stamp in bundle.toml instead of hashing them
    #[arg(long)]
    pub fast: bool,
    /// Which images: all (kubeadm's and the profile's), extra (the
    /// profile's only), none (RPMs and files only)
    #[arg(long, value_name = "SET", value_parser = ["all", "none", "extra"], default_value = "all")]
    pub images: String,
}

/// `kubeha bundle resolve`.
#[derive(Debug, Args)]
pub struct ResolveConfig {
    /// A built-in profile name or a profile TOML file
    #[arg(long, value_name = "PROFILE", default_value = DEFAULT_PROFILE)]
    pub profile: String,
    /// Print the closure as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `kubeha bundle verify`.
#[derive(Debug, Args)]
pub struct VerifyConfig {
    /// The bundle directory
    pub dir: PathBuf,
    /// Also check the signature with this minisign public key file
    #[arg(long, value_name = "KEY.pub")]
    pub key: Option<PathBuf>,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// The environment variable holding a bundle secret key's password.
pub const KEY_PASSWORD_ENV: &str = "KUBEHA_BUNDLE_KEY_PASSWORD";

/// `kubeha bundle sign`.
#[derive(Debug, Args)]
pub struct SignConfig {
    /// The bundle directory
    pub dir: PathBuf,
    /// The minisign secret key file
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// A file holding the key's password (one line); else the environment
    /// variable KUBEHA_BUNDLE_KEY_PASSWORD, if set
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// `kubeha bundle keygen`.
#[derive(Debug, Args)]
pub struct KeygenConfig {
    /// Where to write the secret key (0600)
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// Where to write the public key
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
    /// A file holding the password to encrypt the secret key with; else the
    /// environment variable KUBEHA_BUNDLE_KEY_PASSWORD, if set
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// `kubeha bundle export-archive`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["image", "all"]))]
pub struct ExportConfig {
    /// The bundle directory
    pub dir: PathBuf,
    /// An image reference in the bundle (repeatable)
    #[arg(long, value_name = "REF")]
    pub image: Vec<String>,
    /// Every image of the bundle
    #[arg(long)]
    pub all: bool,
    /// The archive to write
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// docker: manifest.json plus an OCI layout (docker load, ctr import);
    /// oci: the OCI layout alone
    #[arg(long, value_parser = ["docker", "oci"], default_value = "docker")]
    pub format: String,
}

/// `kubeha bundle profile`.
#[derive(Debug, Args)]
pub struct ProfileConfig {
    /// The built-in profile
    #[arg(default_value = DEFAULT_PROFILE)]
    pub name: String,
}

/// Runs a bundle subcommand.
pub fn run(cmd: BundleCmd) -> Result<ExitCode> {
    match cmd {
        BundleCmd::Images(c) => images(c),
        BundleCmd::Build(c) => build_cmd(c),
        BundleCmd::Resolve(c) => resolve_cmd(c),
        BundleCmd::Verify(c) => verify_cmd(c),
        BundleCmd::Sign(c) => sign_cmd(c),
        BundleCmd::Keygen(c) => keygen_cmd(c),
        BundleCmd::ExportArchive(c) => export(c),
        BundleCmd::Profile(c) => profile(c),
    }
}

fn images(c: ImagesConfig) -> Result<ExitCode> {
    let v: KubeVersion = c
        .kubernetes_version
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--kubernetes-version: {e}"))?;
    if let Err(e) = v.support() {
        bail!("--kubernetes-version: {e}");
    }
    if !v.images_checked() {
        log::warn!(
            "Kubernetes {v} is newer than the releases kubeha's image table was checked against; \
             pause/etcd/CoreDNS are those of the newest known {}.{} patch",
            v.major,
            v.minor
        );
    }
    let mut out = std::io::stdout().lock();
    for i in kubeadm_images(&v, c.image_repository.as_deref()) {
        writeln!(out, "{i}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn build_cmd(c: BuildConfig) -> Result<ExitCode> {
    let mut profile = load_profile(&c.profile).context("loading the profile")?;
    let mut overrides = match &c.overrides {
        Some(f) => OverridesFile::load(f).context("reading the overrides")?,
        None => Vec::new(),
    };
    for (kind, values) in [
        (Kind::Mirror, &c.mirror),
        (Kind::Repo, &c.repo),
        (Kind::File, &c.file),
        (Kind::RegistryCredentials, &c.registry_credentials),
        (Kind::RepoCredentials, &c.repo_credentials),
        (Kind::GpgKey, &c.gpgkey),
    ] {
        overrides.extend(Override::from_flag(kind, values));
    }
    // A key the profile does not have is a usage error (exit 2), reported before anything is fetched.
    if let Err(e) = apply_overrides(&mut profile, &overrides) {
        eprintln!("Error: {e}");
        return Ok(ExitCode::from(2));
    }
    let mut ca_pem = Vec::new();
    for f in &c.ca_file {
        ca_pem.push(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
    }
    let opts = BuildOptions {
        ca_pem,
        parallel: c.parallel.max(1),
        tty: std::io::stderr().is_terminal(),
        fast: c.fast,
        images: c
            .images
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--images: {e}"))?,
        ..BuildOptions::default()
    };
    let summary = build(&profile, &c.output, &opts).context("building the bundle")?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

fn resolve_cmd(c: ResolveConfig) -> Result<ExitCode> {
    let profile = load_profile(&c.profile).context("loading the profile")?;
    let closure = kubeha_mirror::rpm::resolve_closure(&profile, &|m: &str| log::info!("{m}"))
        .context("resolving the profile's packages")?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&closure)?);
    } else {
        println!("{closure}");
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_cmd(c: VerifyConfig) -> Result<ExitCode> {
    // The signature first: the files are checked against a manifest only once it is known to be the signed one.
    let signed = match &c.key {
        None => Ok(None),
        Some(k) => std::fs::read_to_string(k)
            .with_context(|| format!("reading the public key {}", k.display()))
            .and_then(|key| Ok(Some(verify_manifest(&c.dir, &key)?))),
    };
    let result = signed.and_then(|signed| Ok((verify(&c.dir)?, signed)));
    match result {
        Ok((s, signed)) => {
            if c.json {
                let mut v = serde_json::to_value(&s)?;
                if let Some(sig) = &signed {
                    v["signature"] = serde_json::to_value(sig)?;
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                if let Some(sig) = &signed {
                    eprintln!(
                        "Signature of {}/bundle.toml is good (trusted comment: {})",
                        c.dir.display(),
                        sig.trusted_comment
                    );
                }
                eprintln!(
                    "Bundle {} is intact: {} files, {} images",
                    c.dir.display(),
                    s.files,
                    s.images
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if c.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": format!("{e:#}")})
                );
            }
            Err(e.context(format!("bundle {} is damaged", c.dir.display())))
        }
    }
}

/// The password for a bundle secret key: `--password-file` (one line), else the environment, else none. Never
/// taken from argv, never printed.
fn key_password(file: Option<&PathBuf>) -> Result<Option<String>> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading the password file {}", f.display()))?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
    }
    Ok(std::env::var(KEY_PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty()))
}

fn sign_cmd(c: SignConfig) -> Result<ExitCode> {
    let key = std::fs::read_to_string(&c.key)
        .with_context(|| format!("reading the secret key {}", c.key.display()))?;
    let password = key_password(c.password_file.as_ref())?;
    // Only a bundle whose files match its manifest is worth a signature.
    verify(&c.dir)
        .with_context(|| format!("bundle {} is damaged; not signing it", c.dir.display()))?;
    let path = sign_manifest(&c.dir, &key, password)
        .with_context(|| format!("signing {} with {}", c.dir.display(), c.key.display()))?;
    eprintln!("Signed {}/bundle.toml: {}", c.dir.display(), path.display());
    Ok(ExitCode::SUCCESS)
}

fn keygen_cmd(c: KeygenConfig) -> Result<ExitCode> {
    let password = key_password(c.password_file.as_ref())?;
    let encrypted = password.is_some();
    let (public, secret) = keygen(password)?;
    // 0600: the secret key signs bundles that every node trusts.
    kubeha_model::fsutil::write_atomic(&c.secret_key, secret.as_bytes(), 0o600, false)
        .with_context(|| format!("writing {} (it must not exist yet)", c.secret_key.display()))?;
    kubeha_model::fsutil::write_atomic(&c.public_key, public.as_bytes(), 0o644, false)
        .with_context(|| format!("writing {} (it must not exist yet)", c.public_key.display()))?;
    eprintln!(
        "Wrote the secret key {} ({}) and the public key {}",
        c.secret_key.display(),
        if encrypted {
            "encrypted"
        } else {
            "not encrypted"
        },
        c.public_key.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn export(c: ExportConfig) -> Result<ExitCode> {
    let layout = Layout::open(&c.dir.join(IMAGES_DIR))
        .with_context(|| format!("opening the image layout of {}", c.dir.display()))?;
    let refs: Vec<String> = if c.all {
        layout.images()?.into_iter().map(|(n, _)| n).collect()
    } else {
        c.image.clone()
    };
    if refs.is_empty() {
        bail!("{} holds no images", c.dir.display());
    }
    let dir = match c.output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".kubeha-archive-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let w = std::io::BufWriter::with_capacity(1 << 20, tmp.reopen()?);
    let w = if c.format == "oci" {
        write_oci_archive(&layout, &refs, w)
    } else {
        write_docker_archive(&layout, &refs, w)
    }
    .with_context(|| format!("writing {}", c.output.display()))?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", c.output.display()))?;
    tmp.persist(&c.output)
        .with_context(|| format!("writing {}", c.output.display()))?;
    eprintln!(
        "Wrote {} image(s) to {} ({} format)",
        refs.len(),
        c.output.display(),
        c.format
    );
    Ok(ExitCode::SUCCESS)
}

fn profile(c: ProfileConfig) -> Result<ExitCode> {
    let Some((_, text)) = BUILTIN_PROFILES.iter().find(|(n, _)| *n == c.name) else {
        bail!(
            "no built-in profile {}; there are: {}",
            c.name,
            BUILTIN_PROFILES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
