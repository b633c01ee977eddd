//! The bundle's images loaded into the container runtime, streamed from the bundle's OCI layout as an archive (OCI
//! layout + docker-archive manifest, see [`crate::oci`]) into `ctr -n k8s.io images import -` (containerd, the CRI namespace kubelet uses) or `docker load`. Each image is
//! verified by digest (manifest, config, every layer) before it is streamed, and skipped when the runtime already
//! has it.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use kubeha_model::bundle::{BundleManifest, IMAGES_DIR};
use kubeha_model::cluster::Runtime;

use crate::engine::{Context, Step};
use crate::oci::{self, ArchiveImage, Layout};
use crate::runner::{Cmd, Runner};

/// Where to load images.
#[derive(Debug, Clone)]
pub struct Target {
    /// The runtime.
    pub runtime: Runtime,
    /// Its socket (`ctr -a` / `docker -H`); `None` = the runtime's default.
    pub address: Option<String>,
}

impl Target {
    fn ctr(&self) -> Cmd {
        let mut c = Cmd::new("ctr");
        if let Some(a) = &self.address {
            c = c.arg("-a").arg(a);
        }
        c.args(["-n", "k8s.io"])
    }
    fn docker(&self) -> Cmd {
        let mut c = Cmd::new("docker");
        if let Some(a) = &self.address {
            c = c.arg("-H").arg(a);
        }
        c
    }

    /// The references (normalized) the runtime has among `refs`.
    pub fn present(&self, runner: &dyn Runner, refs: &[&str]) -> Result<BTreeSet<String>> {
        let mut have = BTreeSet::new();
        match self.runtime {
            Runtime::Containerd => {
                let out = runner.run(&self.ctr().args(["images", "ls", "-q"]))?;
                let listed: BTreeSet<String> = out
                    .stdout_str()
                    .lines()
                    .map(|l| l.trim().to_string())
                    .collect();
                for r in refs {
                    if listed.contains(&oci::normalize_reference(r)) {
                        have.insert(r.to_string());
                    }
                }
            }
            Runtime::Docker => {
                for r in refs {
                    if runner
                        .output(
                            &self
                                .docker()
                                .args(["image", "inspect", "--format", "{{.Id}}", r]),
                        )?
                        .success()
                    {
                        have.insert(r.to_string());
                    }
                }
            }
        }
        Ok(have)
    }
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Images streamed into the runtime.
    pub loaded: Vec<String>,
    /// Images the runtime already had.
    pub skipped: Vec<String>,
}

/// Loads every image of the bundle at `bundle_dir` that `target` lacks.
pub fn load_images(
    runner: &dyn Runner,
    bundle_dir: &Path,
    m: &BundleManifest,
    target: &Target,
) -> Result<Loaded> {
    let mut res = Loaded::default();
    if m.images.is_empty() {
        return Ok(res);
    }
    let layout = Layout::open(&bundle_dir.join(IMAGES_DIR))?;
    let refs: Vec<&str> = m.images.iter().map(|i| i.reference.as_str()).collect();
    let have = target.present(runner, &refs)?;
    let mut todo = Vec::new();
    for img in &m.images {
        if have.contains(&img.reference) {
            log::info!("{} is already in the runtime", img.reference);
            res.skipped.push(img.reference.clone());
            continue;
        }
        let manifest = layout
            .verify_image(&img.digest)
            .with_context(|| format!("verifying image {} ({})", img.reference, img.digest))?;
        todo.push(ArchiveImage {
            reference: img.reference.clone(),
            digest: img.digest.clone(),
            manifest,
        });
    }
    if todo.is_empty() {
        return Ok(res);
    }
    let cmd = match target.runtime {
        Runtime::Containerd => target.ctr().args(["images", "import", "-"]),
        Runtime::Docker => target.docker().arg("load"),
    };
    log::info!(
        "loading {} images into {}",
        todo.len(),
        super::runtime::unit(target.runtime)
    );
    runner
        .run_streaming(&cmd, &mut |w| oci::write_image_archive(&layout, &todo, w))
        .context("loading the bundle's images")?;
    res.loaded = todo.iter().map(|i| i.reference.clone()).collect();
    if runner.is_real() {
        let now = target.present(runner, &refs)?;
        let missing: Vec<&str> = refs.iter().copied().filter(|r| !now.contains(*r)).collect();
        if !missing.is_empty() {
            bail!(
                "after loading, the runtime still lacks {}",
                missing.join(", ")
            );
        }
    }
    Ok(res)
}

/// The images step.
pub struct Images;

impl Step for Images {
    fn name(&self) -> &'static str {
        "images"
    }
    fn phase(&self) -> &'static str {
        "runtime"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let m = super::packages::manifest(ctx)?;
        let target = Target {
            runtime: ctx.config.cluster.cluster.container_runtime,
            address: None,
        };
        let r = load_images(ctx.runner.as_ref(), &ctx.bundle_dir(), &m, &target)?;
        log::info!(
            "images: {} loaded, {} already present",
            r.loaded.len(),
            r.skipped.len()
        );
        Ok(())
    }
}
