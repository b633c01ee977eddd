//! The bundle's images loaded into the container runtime, streamed from the bundle's OCI layout into
//! `ctr -n k8s.io images import -` (containerd, in the CRI namespace kubelet uses) or `docker load`.
//!
//! The archive is the mirror crate's [`write_docker_archive`]: an OCI layout and a docker-archive at once (as
//! `docker save` writes since Docker 25), so containerd imports the OCI side and keeps the bundle's exact manifest
//! digests, and Docker 20.10 and older read `manifest.json`. Each image is verified first (its manifest digest against
//! `bundle.toml`, then manifest, config and every layer against their digests), and skipped when the runtime
//! already has it.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use kubeha_mirror::archive::write_docker_archive;
use kubeha_mirror::oci::Layout;
use kubeha_mirror::reference::normalize;
use kubeha_model::bundle::{BundleManifest, IMAGES_DIR};
use kubeha_model::cluster::{Role, Runtime};

use crate::engine::{Context, Step};
use crate::runner::{Cmd, Runner};

/// Where to load images.
#[derive(Debug, Clone)]
pub struct Target {
    /// The runtime.
    pub runtime: Runtime,
    /// Its socket (`ctr -a` / `docker -H`); `None` = the runtime's default.
    pub address: Option<String>,
}

/// The name a runtime knows a reference by (`calico/node:v1` → `docker.io/calico/node:v1`).
pub fn normalized(reference: &str) -> String {
    normalize(reference).unwrap_or_else(|_| reference.to_string())
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

    /// The references among `refs` the runtime already has.
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
                    if listed.contains(&normalized(r)) {
                        have.insert(r.to_string());
                    }
                }
            }
            Runtime::Docker => {
                for r in refs {
                    let probe = self
                        .docker()
                        .args(["image", "inspect", "--format", "{{.Id}}", r]);
                    if runner.output(&probe)?.success() {
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
        let name = normalized(&img.reference);
        let v = layout.verify_image(&name).with_context(|| {
            format!(
                "verifying image {} in {}",
                img.reference,
                bundle_dir.display()
            )
        })?;
        let stored = v.descriptor.digest.as_str();
        if stored != img.digest && img.index_digest.as_deref() != Some(v.entry.digest.as_str()) {
            bail!(
                "image {}: bundle.toml says {}, the bundle's layout holds {stored}; the bundle is inconsistent",
                img.reference,
                img.digest
            );
        }
        todo.push(name);
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
        .run_streaming(&cmd, &mut |w| {
            write_docker_archive(&layout, &todo, w)?;
            Ok(())
        })
        .context("loading the bundle's images")?;
    res.loaded = m
        .images
        .iter()
        .filter(|i| !have.contains(&i.reference))
        .map(|i| i.reference.clone())
        .collect();
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

/// kubeadm's images that a node of `role` pulls (a worker runs only kube-proxy, pause and perhaps CoreDNS) and
/// that neither the bundle nor the runtime (`have`, normalized names) holds. Empty for a bundle built with every
/// image (`--images all`): its images are kubeadm's list for its own profile, which the agent does not second-guess.
pub fn kubeadm_images_lacking(
    m: &BundleManifest,
    cluster: &kubeha_model::cluster::ClusterSpec,
    role: Role,
    have: &BTreeSet<String>,
) -> Vec<String> {
    if m.image_set.has_kubeadm_images() {
        return Vec::new();
    }
    let bundled: BTreeSet<String> = m.images.iter().map(|i| normalized(&i.reference)).collect();
    kubeha_model::kube::kubeadm_images(
        &cluster.kubernetes_version,
        cluster.image_repository.as_deref(),
    )
    .into_iter()
    .filter(|r| {
        let repo = r.rsplit_once(':').map_or(r.as_str(), |(n, _)| n);
        let name = repo.rsplit('/').next().unwrap_or(repo);
        role == Role::Master
            || ![
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "etcd",
            ]
            .iter()
            .any(|c| name == *c || name.starts_with(&format!("{c}-")))
    })
    .filter(|r| {
        let n = normalized(r);
        !bundled.contains(&n) && !have.contains(&n)
    })
    .collect()
}

/// Refuses, with the remedy, a bundle built without kubeadm's images (`--images none|extra`) on a node that needs
/// images it lacks and has no registry to pull them from (`cluster.image-repository`); with a registry set,
/// kubeadm pulls them from there.
pub fn check_kubeadm_images(
    m: &BundleManifest,
    cluster: &kubeha_model::cluster::ClusterSpec,
    role: Role,
    have: &BTreeSet<String>,
) -> Result<()> {
    let lacking = kubeadm_images_lacking(m, cluster, role, have);
    if lacking.is_empty() {
        return Ok(());
    }
    match &cluster.image_repository {
        Some(r) => {
            log::info!(
                "the bundle was built with --images {} and lacks {}; kubeadm pulls them from {r} \
                 (cluster.image-repository)",
                m.image_set.name(),
                lacking.join(", ")
            );
            Ok(())
        }
        None => bail!(
            "the bundle was built with --images {} and carries none of kubeadm's images, and this {} needs {}, \
             which the container runtime does not have; rebuild the bundle with --images all, or set \
             cluster.image-repository to a registry the nodes can reach that holds them",
            m.image_set.name(),
            if role == Role::Master { "master" } else { "worker" },
            lacking.join(", ")
        ),
    }
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
        if !m.image_set.has_kubeadm_images() {
            let refs = kubeha_model::kube::kubeadm_images(
                &ctx.config.cluster.cluster.kubernetes_version,
                ctx.config.cluster.cluster.image_repository.as_deref(),
            );
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            let have: BTreeSet<String> = target
                .present(ctx.runner.as_ref(), &refs)?
                .iter()
                .map(|r| normalized(r))
                .collect();
            check_kubeadm_images(&m, &ctx.config.cluster.cluster, ctx.role, &have)?;
        }
        log::info!(
            "images: {} loaded, {} already present",
            r.loaded.len(),
            r.skipped.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::RecordingRunner;

    fn cluster(repo: Option<&str>) -> kubeha_model::cluster::ClusterSpec {
        let mut c = kubeha_model::Cluster::default_cluster().cluster;
        c.kubernetes_version = kubeha_model::kube::KubeVersion::new(1, 31, 4);
        c.image_repository = repo.map(str::to_string);
        c
    }

    fn manifest(set: kubeha_model::bundle::ImageSet, images: &[&str]) -> BundleManifest {
        let text = format!(
            "format = 1\ncreated = \"x\"\nimage-set = \"{}\"\n{}\
             [profile]\nname = \"t\"\nkubernetes-version = \"1.31.4\"\n",
            set.name(),
            images
                .iter()
                .map(|r| format!(
                    "[[images]]\nreference = \"{r}\"\ndigest = \"sha256:00\"\nmedia-type = \"x\"\n\
                     platform = \"linux/amd64\"\n"
                ))
                .collect::<String>()
        );
        BundleManifest::parse(&text, "test").unwrap()
    }

    #[test]
    fn bundles_without_kubeadm_images_need_a_registry_or_the_images() {
        use kubeha_model::bundle::ImageSet;
        let none = BTreeSet::new();
        let all = manifest(ImageSet::All, &[]);
        assert!(check_kubeadm_images(&all, &cluster(None), Role::Master, &none).is_ok());
        let m = manifest(ImageSet::None, &[]);
        let e = check_kubeadm_images(&m, &cluster(None), Role::Master, &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--images none")
                && e.contains("registry.k8s.io/kube-apiserver:v1.31.4")
                && e.contains("cluster.image-repository"),
            "{e}"
        );
        // A worker needs kube-proxy, pause and CoreDNS, not the control plane's images.
        let lacking = kubeadm_images_lacking(&m, &cluster(None), Role::Worker, &none);
        assert!(
            lacking
                .iter()
                .all(|r| !r.contains("apiserver") && !r.contains("etcd")),
            "{lacking:?}"
        );
        assert!(
            lacking.iter().any(|r| r.contains("kube-proxy")),
            "{lacking:?}"
        );
        // With a registry, kubeadm pulls them: no error.
        assert!(
            check_kubeadm_images(&m, &cluster(Some("reg.local/k8s")), Role::Master, &none).is_ok()
        );
        // Images already in the runtime, or in an `extra` bundle, count as present.
        let everything: BTreeSet<String> = kubeha_model::kube::kubeadm_images(
            &kubeha_model::kube::KubeVersion::new(1, 31, 4),
            None,
        )
        .into_iter()
        .collect();
        assert!(check_kubeadm_images(&m, &cluster(None), Role::Master, &everything).is_ok());
        let refs: Vec<&str> = everything.iter().map(String::as_str).collect();
        let extra = manifest(ImageSet::Extra, &refs);
        assert!(check_kubeadm_images(&extra, &cluster(None), Role::Master, &none).is_ok());
    }

    #[test]
    fn normalization() {
        for (r, want) in [
            ("busybox:1", "docker.io/library/busybox:1"),
            ("calico/node:v3.28.2", "docker.io/calico/node:v3.28.2"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
        ] {
            assert_eq!(normalized(r), want, "{r}");
        }
    }

    #[test]
    fn probes_and_commands_per_runtime() {
        let rec = RecordingRunner::default();
        let t = Target {
            runtime: Runtime::Containerd,
            address: Some("/run/x.sock".into()),
        };
        t.present(&rec, &["a:1"]).unwrap();
        let t = Target {
            runtime: Runtime::Docker,
            address: None,
        };
        t.present(&rec, &["a:1", "b:2"]).unwrap();
        assert_eq!(
            rec.lines(),
            [
                "ctr -a /run/x.sock -n k8s.io images ls -q",
                "docker image inspect --format {{.Id}} a:1",
                "docker image inspect --format {{.Id}} b:2",
            ]
        );
    }
}
