//! PLACEHOLDER, replaced by the RPM work (issue 3, "rpm" helper): the RPM dependency closure and yum repository of
//! the bundle. Only the agreed signature lives here so `bundle build` compiles against it.

use kubeha_model::bundle::{Profile, RpmEntry};

/// Resolves `profile.packages` against `profile.repos`, downloads the closure (minus what `base = true` repos
/// provide) into `out_dir` with checksum verification, runs createrepo_c, and returns the entries (paths relative
/// to the bundle root, `rpms/...`).
pub fn build_repo(
    profile: &Profile,
    out_dir: &std::path::Path,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Vec<RpmEntry>> {
    let _ = (out_dir, progress);
    anyhow::bail!(
        "RPM bundling is not built into this kubeha yet ({} packages requested); remove `packages` from the \
         profile to build an image-only bundle",
        profile.packages.len()
    )
}
