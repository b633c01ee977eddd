//! The bundle's RPM repository as the only enabled repository, and the bundle's packages installed from it (yum on
//! EL7, dnf on EL8/9).

use anyhow::{bail, Context as _, Result};
use kubeha_model::bundle::{BundleManifest, RPMS_DIR};

use crate::engine::{Context, Step};
use crate::render;
use crate::runner::Cmd;

/// The repo file.
pub const REPO_FILE: &str = "/etc/yum.repos.d/kubeha.repo";

/// Loads the bundle's manifest from `bundle.path` (under the root).
pub fn manifest(ctx: &Context) -> Result<BundleManifest> {
    let dir = ctx.bundle_dir();
    if !dir.join(kubeha_model::bundle::MANIFEST).exists() {
        match &ctx.config.bundle.url {
            Some(u) => bail!(
                "bundle.path {} holds no bundle.toml; fetching the bundle from bundle.url ({u}) is not supported yet: \
                 copy the bundle to the node",
                ctx.config.bundle.path
            ),
            None => bail!("bundle.path {}: no bundle.toml there (the installer copies the bundle)", ctx.config.bundle.path),
        }
    }
    Ok(BundleManifest::load(&dir)?)
}

/// With `bundle.public-key` in the node config, the bundle's `bundle.toml` must carry a good signature by that
/// key (`kubeha bundle sign`); the agent checks it before it writes or runs anything, so an unsigned, wrongly
/// signed or changed bundle changes nothing on the node. Without the key there is nothing to check.
pub fn check_signature(root: &std::path::Path, config: &kubeha_model::NodeConfig) -> Result<()> {
    let Some(key) = &config.bundle.public_key else {
        return Ok(());
    };
    let dir = crate::util::under(root, &config.bundle.path);
    if !dir.join(kubeha_model::bundle::MANIFEST).exists() {
        bail!(
            "bundle {}: no bundle.toml there, so its signature (bundle.public-key is set) cannot be checked; the \
             installer copies the bundle",
            config.bundle.path
        );
    }
    let v = kubeha_mirror::signature::verify_manifest(&dir, key).with_context(|| {
        format!(
            "bundle {}: refusing the bundle: the node config's bundle.public-key requires a good signature over \
             its bundle.toml",
            config.bundle.path
        )
    })?;
    log::info!(
        "bundle {}: signature good (trusted comment: {})",
        config.bundle.path,
        v.trusted_comment
    );
    Ok(())
}

/// `baseurl` of the bundle's repository.
pub fn baseurl(ctx: &Context) -> String {
    format!(
        "file://{}/{RPMS_DIR}",
        ctx.config.bundle.path.trim_end_matches('/')
    )
}

/// `/etc/yum.repos.d/kubeha.repo`, and every other repository disabled (an offline node cannot reach them, and
/// yum/dnf would fail on them).
pub struct Repo;

impl Step for Repo {
    fn name(&self) -> &'static str {
        "repo"
    }
    fn phase(&self) -> &'static str {
        "packages"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let dir = ctx.path("/etc/yum.repos.d");
        let mut others: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".repo") && n != "kubeha.repo")
                .collect(),
            Err(_) => Vec::new(),
        };
        others.sort();
        for n in others {
            let sys = format!("/etc/yum.repos.d/{n}");
            let text = ctx.read(&sys)?.unwrap_or_default();
            if let Some(new) = render::repo_disabled(&text) {
                log::info!("disabling the repositories in {sys}");
                ctx.write_file(&sys, &new, 0o644)?;
            }
        }
        // The keys every bundled package was checked against when the bundle was built (none when a profile
        // repo had no key: then gpgcheck stays off).
        let keys: Vec<String> = if ctx
            .bundle_dir()
            .join(kubeha_model::bundle::MANIFEST)
            .exists()
        {
            let root = ctx.config.bundle.path.trim_end_matches('/');
            manifest(ctx)?
                .rpm_keys
                .iter()
                .map(|k| format!("file://{root}/{k}"))
                .collect()
        } else {
            Vec::new()
        };
        if keys.is_empty() {
            log::warn!(
                "the bundle ships no RPM signing key: the kubeha repo has gpgcheck=0 (the bundle's sha256 list \
                 still covers every package)"
            );
        }
        ctx.write_file(REPO_FILE, render::yum_repo(&baseurl(ctx), &keys), 0o644)?;
        Ok(())
    }
}

/// The packages the bundle's profile asked for.
pub struct Packages;

/// The package manager for an EL release.
pub fn package_manager(el: u8) -> &'static str {
    if el <= 7 {
        "yum"
    } else {
        "dnf"
    }
}

impl Step for Packages {
    fn name(&self) -> &'static str {
        "packages"
    }
    fn phase(&self) -> &'static str {
        "packages"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let m = manifest(ctx)?;
        let wanted: Vec<_> = m.rpms.iter().filter(|r| r.requested).collect();
        if wanted.is_empty() {
            log::warn!("the bundle asks for no packages");
            return Ok(());
        }
        let names: Vec<&str> = wanted.iter().map(|r| r.name.as_str()).collect();
        // `rpm -q a b c` exits 0 only when every package is installed.
        if !ctx.needs(Cmd::new("rpm").arg("-q").args(names.iter().copied()), |o| {
            !o.success()
        })? {
            log::info!("already installed: {}", names.join(" "));
            return Ok(());
        }
        let pm = package_manager(ctx.el_major());
        // The exact NEVRAs the bundle was built with, so the repo's other versions never win.
        let mut c = Cmd::new(pm)
            .args(["install", "-y", "--disablerepo=*"])
            .arg(format!("--enablerepo={}", render::REPO_ID));
        if pm == "dnf" {
            c = c.arg("--setopt=install_weak_deps=False");
        }
        c = c.args(wanted.iter().map(|r| r.nevra.clone()));
        ctx.run(c)
            .with_context(|| format!("installing {} from the bundle", names.join(" ")))?;
        Ok(())
    }
}
