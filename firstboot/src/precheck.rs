//! What the agent checks before its first step changes anything on the node: the bundle (every listed file's size
//! and sha256, no symlinks, no unlisted files, `[[images]]` against the layout's index — the same
//! [`kubeha_mirror::bundle::verify`] that `kubeha bundle verify` runs on the build host), that the bundle was built
//! for this cluster (Kubernetes release, container runtime), that it holds the images kubeadm and the CNI manifest
//! will ask for, and that the CNI manifest is there. A bundle that would fail at the images step, or at `cluster-cni`
//! after kubeadm has run, is refused here instead, while the node is still untouched.

use std::collections::BTreeSet;

use anyhow::{bail, Context as _, Result};
use kubeha_model::bundle::{BundleManifest, FILES_DIR};

use crate::apply::images::normalized;
use crate::engine::Context;

/// Runs every check; the first failure names the bundle file or the cluster field.
pub fn bundle(ctx: &Context) -> Result<BundleManifest> {
    let m = crate::apply::packages::manifest(ctx)?;
    let dir = ctx.bundle_dir();
    let sum = kubeha_mirror::bundle::verify(&dir).with_context(|| {
        format!(
            "the bundle at {} is damaged or incomplete",
            ctx.config.bundle.path
        )
    })?;
    log::info!(
        "bundle verified: {} files, {} bytes, {} images",
        sum.files,
        sum.bytes,
        m.images.len()
    );
    for_cluster(&m, ctx)?;
    Ok(m)
}

/// The bundle against the cluster it is about to install.
pub fn for_cluster(m: &BundleManifest, ctx: &Context) -> Result<()> {
    let c = &ctx.config.cluster;
    let (want, have) = (c.cluster.kubernetes_version, m.profile.kubernetes_version);
    if want != have {
        bail!(
            "bundle.toml: built for Kubernetes {have} (profile {}), but the cluster says {want} \
             (cluster.kubernetes-version): rebuild the bundle for {want}",
            m.profile.name
        );
    }
    if m.profile.container_runtime != c.cluster.container_runtime {
        bail!(
            "bundle.toml: built for the {:?} runtime, but the cluster says {:?} (cluster.container-runtime)",
            m.profile.container_runtime,
            c.cluster.container_runtime
        );
    }
    // The packages step installs the requested NEVRAs as they are: a kubelet of another release than the control
    // plane kubeadm deploys breaks the version-skew policy (kubeadm's preflight KubeletVersion check refuses it, after
    // the OS and packages steps have run).
    for r in m.rpms.iter().filter(|r| r.requested) {
        if !matches!(r.name.as_str(), "kubeadm" | "kubelet" | "kubectl") {
            continue;
        }
        let Some(v) = r.version() else {
            bail!(
                "bundle.toml: rpms entry {:?} is not name-[epoch:]version-release.arch for {}",
                r.nevra,
                r.name
            );
        };
        if v != want.to_string() {
            bail!(
                "bundle.toml: the bundle installs {} (rpms), but the cluster says Kubernetes {want} \
                 (cluster.kubernetes-version): rebuild the bundle with {}-{want}",
                r.nevra,
                r.name
            );
        }
    }
    let bundled: Vec<String> = m.images.iter().map(|i| i.reference.clone()).collect();
    let bundled_norm: BTreeSet<String> = bundled.iter().map(|r| normalized(r)).collect();
    if m.image_set.has_kubeadm_images() {
        let lacking: Vec<String> = kubeha_model::kube::kubeadm_images(
            &c.cluster.kubernetes_version,
            c.cluster.image_repository.as_deref(),
        )
        .into_iter()
        .filter(|r| !bundled_norm.contains(&normalized(r)))
        .collect();
        if !lacking.is_empty() {
            bail!(
                "bundle.toml: the bundle lacks kubeadm's images for {want}{}: {}",
                c.cluster
                    .image_repository
                    .as_deref()
                    .map(|r| format!(" from {r} (cluster.image-repository)"))
                    .unwrap_or_default(),
                lacking.join(", ")
            );
        }
    }
    // The CNI manifest: present, listed, and every image it names in the bundle (under its own name, or under
    // another registry with the same path and tag, which cluster-cni rewrites to the bundle's name).
    let rel = format!("{FILES_DIR}/{}", c.cni.manifest);
    if !m.files.iter().any(|f| f.path == rel) {
        bail!(
            "the bundle has no {rel} (cluster.cni.manifest = \"{}\"): the initializing master applies it",
            c.cni.manifest
        );
    }
    if m.image_set.has_profile_images() {
        let text = std::fs::read_to_string(ctx.bundle_dir().join(&rel))
            .with_context(|| format!("reading the bundle's {rel}"))?;
        let rewritten = crate::cluster::steps::rewrite_images(&text, &bundled);
        let missing: BTreeSet<String> = manifest_images(&rewritten)
            .into_iter()
            .filter(|r| !bundled_norm.contains(&normalized(r)))
            .collect();
        if !missing.is_empty() {
            bail!(
                "the bundle's {rel} needs images the bundle does not hold: {}",
                missing.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}

/// The `image:` references of a YAML manifest, as cluster-cni reads them.
pub fn manifest_images(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let body = t.strip_prefix("- ").unwrap_or(t);
            body.strip_prefix("image:")
                .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        })
        .filter(|r| !r.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_image_refs() {
        let m = "spec:\n  containers:\n    - image: quay.io/calico/node:v3.32.1\n      name: x\n    - name: y\n      \
                 image: \"quay.io/calico/cni:v3.32.1\"\n# image: not/this\nimage: ''\n";
        assert_eq!(
            manifest_images(m),
            ["quay.io/calico/node:v3.32.1", "quay.io/calico/cni:v3.32.1"]
        );
    }
}
