//! The offline bundle directory (see `kubeha_model::bundle`): built-in profiles, the image list a profile implies,
//! the file list of `bundle.toml`, and [`verify`].
//!
//! To add a built-in profile, drop a TOML file into `mirror/profiles/` and list it in [`BUILTIN_PROFILES`], and in
//! `tests/cni.rs`'s table with the committed copy of the CNI manifest it pins (or a comment in the profile saying
//! why none can be pinned).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use kubeha_model::bundle::{
    BundleManifest, FileEntry, ImageSet, Profile, FILES_DIR, IMAGES_DIR, MANIFEST,
    MANIFEST_SIGNATURE, RPMS_DIR,
};

use crate::digest::sha256_file;
use crate::error::{format_err, io, Error, Result};
use crate::oci::{self, Layout};

/// The built-in profiles: (name, TOML text). The first is the default.
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[
    (
        "el9-containerd-calico",
        include_str!("../profiles/el9-containerd-calico.toml"),
    ),
    (
        "seed-v1.11.1",
        include_str!("../profiles/seed-v1.11.1.toml"),
    ),
];

/// The default profile's name.
pub const DEFAULT_PROFILE: &str = "el9-containerd-calico";

/// Loads a profile: a built-in name, else a TOML file path.
pub fn load_profile(name_or_path: &str) -> Result<Profile> {
    if let Some((name, text)) = BUILTIN_PROFILES.iter().find(|(n, _)| *n == name_or_path) {
        return Ok(Profile::parse(text, &format!("built-in profile {name}"))?);
    }
    let p = Path::new(name_or_path);
    let text = fs::read_to_string(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound
            && !name_or_path.contains('/')
            && !name_or_path.ends_with(".toml")
        {
            format_err(
                format!("profile {name_or_path}"),
                format!(
                    "neither a built-in profile ({}) nor a file",
                    BUILTIN_PROFILES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        } else {
            Error::Io(kubeha_model::IoError {
                action: "reading",
                path: p.to_path_buf(),
                source: e,
            })
        }
    })?;
    Ok(Profile::parse(&text, &p.display().to_string())?)
}

/// Every image a profile puts into the bundle: kubeadm's list for its release, then its extra images, normalized
/// (`nginx:latest` → `docker.io/library/nginx:latest`) and without duplicates, in that order.
pub fn profile_images(profile: &Profile) -> Result<Vec<String>> {
    images_for(profile, ImageSet::All)
}

/// The images of `set` for a profile: [`profile_images`] without kubeadm's (`extra`) or without any (`none`).
pub fn images_for(profile: &Profile, set: ImageSet) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let kubeadm = if set.has_kubeadm_images() {
        kubeha_model::kube::kubeadm_images(
            &profile.kubernetes_version,
            profile.image_repository.as_deref(),
        )
    } else {
        Vec::new()
    };
    let own: &[String] = if set.has_profile_images() {
        &profile.images
    } else {
        &[]
    };
    for (i, r) in kubeadm
        .iter()
        .map(|r| (None, r))
        .chain(own.iter().enumerate().map(|(i, r)| (Some(i), r)))
    {
        let n = crate::reference::normalize(r).map_err(|e| match i {
            Some(i) => format_err(format!("images[{i}]"), e.to_string()),
            None => e,
        })?;
        if seen.insert(n.clone()) {
            out.push(n);
        }
    }
    Ok(out)
}

/// Every image a Kubernetes manifest (one or more YAML documents, e.g. calico.yaml) references: the string value of
/// every `image` key of every mapping, normalized like [`profile_images`], without duplicates, sorted. Reading the
/// YAML (not grepping `image:` lines) finds flow-style `{name: x, image: y}` entries too and ignores `image` inside
/// strings and schemas (a CRD's `image: {type: string}` is a mapping, not a reference).
#[cfg(feature = "fetch")]
pub fn manifest_images(text: &str, what: &str) -> Result<Vec<String>> {
    use serde::Deserialize as _;
    fn walk(v: &serde_yaml::Value, out: &mut Vec<String>) {
        match v {
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    if let (Some("image"), serde_yaml::Value::String(s)) = (k.as_str(), v) {
                        out.push(s.clone());
                    } else {
                        walk(v, out);
                    }
                }
            }
            serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| walk(v, out)),
            serde_yaml::Value::Tagged(t) => walk(&t.value, out),
            _ => {}
        }
    }
    let mut raw = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = serde_yaml::Value::deserialize(doc)
            .map_err(|e| format_err(what, format!("YAML document {}: {e}", i + 1)))?;
        walk(&v, &mut raw);
    }
    let mut out = BTreeSet::new();
    for r in raw {
        out.insert(crate::reference::normalize(&r).map_err(|e| format_err(what, e.to_string()))?);
    }
    Ok(out.into_iter().collect())
}

/// Lists every file of a bundle except `bundle.toml`, as sorted `/`-separated relative paths.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.retain(|p| p != MANIFEST && p != MANIFEST_SIGNATURE);
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in fs::read_dir(dir).map_err(io("reading", dir))? {
        let e = e.map_err(io("reading", dir))?;
        let p = e.path();
        let ft = e.file_type().map_err(io("reading", &p))?;
        if ft.is_dir() {
            walk(root, &p, out)?;
        } else {
            let rel = p.strip_prefix(root).expect("under root");
            let s = rel
                .to_str()
                .ok_or_else(|| format_err(p.display().to_string(), "file name is not UTF-8"))?;
            out.push(s.to_string());
        }
    }
    Ok(())
}

/// The [`FileEntry`] of every file of a bundle, each stamped with its mtime. Image blobs are named by their sha256
/// and were verified when they were stored (or by the build's check of what was there), so only their size is
/// read; `known` (relative path → sha256) are other files whose bytes this run already checked; every other file
/// is hashed.
pub fn file_entries(dir: &Path, known: &HashMap<String, String>) -> Result<Vec<FileEntry>> {
    let blob_prefix = format!("{IMAGES_DIR}/{}/", oci::BLOBS_DIR);
    let mut out = Vec::new();
    for rel in list_files(dir)? {
        let p = dir.join(&rel);
        let meta = fs::metadata(&p).map_err(io("reading", &p))?;
        let (sha256, size) = if let Some(hex) = rel.strip_prefix(&blob_prefix) {
            (hex.to_string(), meta.len())
        } else if let Some(sha) = known.get(&rel) {
            (sha.clone(), meta.len())
        } else {
            sha256_file(&p)?
        };
        out.push(FileEntry {
            path: rel,
            sha256,
            size,
            mtime_ns: mtime_ns(&meta),
        });
    }
    Ok(out)
}

/// A file's modification time in nanoseconds since the epoch (the `--fast` stamp), if the filesystem has one.
pub fn mtime_ns(meta: &fs::Metadata) -> Option<i64> {
    let t = meta.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

/// What [`verify`] checked.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifySummary {
    /// Files checked.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Images whose manifest, config and layers were found in the layout.
    pub images: usize,
}

/// Checks every file `bundle.toml` lists (a regular file, its size and sha256, an image blob named by its own
/// digest), and nothing else: the part of [`verify`] that holds for a bundle sharing its directory with other
/// files (the install medium's `/kubeha` also holds the agent and a node config). Fails on the first bad file,
/// naming it.
pub fn verify_listed(dir: &Path) -> Result<VerifySummary> {
    check_listed(dir, &BundleManifest::load(dir)?)
}

fn check_listed(dir: &Path, m: &BundleManifest) -> Result<VerifySummary> {
    let mut sum = VerifySummary::default();
    let blob_prefix = format!("{IMAGES_DIR}/{}/", oci::BLOBS_DIR);
    let mut files: Vec<&FileEntry> = m.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for f in files {
        let p = dir.join(&f.path);
        let bad = |message: String| format_err(p.display().to_string(), message);
        // Not followed: a listed file that is a symlink (to /etc/hostname, say) is refused whatever it points at.
        let meta = fs::symlink_metadata(&p)
            .map_err(|e| bad(format!("listed in {MANIFEST} but cannot be read: {e}")))?;
        if !meta.file_type().is_file() {
            return Err(bad(
                "is not a regular file (a symlink, directory or device): a bundle holds files only"
                    .into(),
            ));
        }
        if meta.len() != f.size {
            return Err(bad(format!(
                "{} bytes, {MANIFEST} says {}",
                meta.len(),
                f.size
            )));
        }
        let (sha, _) = sha256_file(&p)?;
        if sha != f.sha256 {
            return Err(bad(format!("sha256 {sha}, {MANIFEST} says {}", f.sha256)));
        }
        if let Some(hex) = f.path.strip_prefix(&blob_prefix) {
            if hex != sha {
                return Err(bad(format!(
                    "a blob whose content hashes to {sha}, not its name"
                )));
            }
        }
        sum.files += 1;
        sum.bytes += f.size;
    }
    Ok(sum)
}

/// Checks a bundle against its `bundle.toml`: every listed file exists with its size and sha256, no unlisted file
/// is present, image blobs are named by their own digest, and the `[[images]]` entries and the layout's
/// `index.json` name the same images (each way), each with the recorded digest and size. Fails on the first bad
/// file, naming it.
pub fn verify(dir: &Path) -> Result<VerifySummary> {
    let m = BundleManifest::load(dir)?;
    let mut sum = check_listed(dir, &m)?;
    let listed: BTreeSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    let present = list_files(dir)?;
    if let Some(extra) = present.iter().find(|p| !listed.contains(p.as_str())) {
        return Err(format_err(
            dir.join(extra).display().to_string(),
            format!("not listed in {MANIFEST}"),
        ));
    }
    let index_file = || {
        dir.join(IMAGES_DIR)
            .join(oci::INDEX_FILE)
            .display()
            .to_string()
    };
    let layout_images = if dir.join(IMAGES_DIR).join(oci::INDEX_FILE).exists() {
        Layout::open(&dir.join(IMAGES_DIR))?.images()?
    } else {
        Vec::new()
    };
    // Both ways: an image of the layout that bundle.toml does not list (its entry deleted or renamed) is as
    // wrong as a listed image the layout lacks.
    let recorded: BTreeSet<&str> = m.images.iter().map(|i| i.reference.as_str()).collect();
    if let Some((name, _)) = layout_images
        .iter()
        .find(|(n, _)| !recorded.contains(n.as_str()))
    {
        return Err(format_err(
            index_file(),
            format!("names image {name}, which {MANIFEST} does not list under [[images]]"),
        ));
    }
    let mut seen = BTreeSet::new();
    for img in &m.images {
        if !seen.insert(img.reference.as_str()) {
            return Err(format_err(
                dir.join(MANIFEST).display().to_string(),
                format!("lists image {} twice", img.reference),
            ));
        }
        if !layout_images.iter().any(|(n, _)| *n == img.reference) {
            return Err(format_err(
                index_file(),
                format!(
                    "has no image {}, which {MANIFEST} lists under [[images]]",
                    img.reference
                ),
            ));
        }
    }
    if !m.images.is_empty() {
        let layout = Layout::open(&dir.join(IMAGES_DIR))?;
        for img in &m.images {
            let e = layout.entry(&img.reference)?;
            if e.digest.as_str() != img.digest {
                return Err(format_err(
                    dir.join(IMAGES_DIR)
                        .join(oci::INDEX_FILE)
                        .display()
                        .to_string(),
                    format!(
                        "{} points at {}, {MANIFEST} says {}",
                        img.reference, e.digest, img.digest
                    ),
                ));
            }
            // Digests were checked file by file above; this checks the structure (every blob present, the list a
            // platform manifest was chosen from).
            let i = layout.image(&img.reference)?;
            if i.size() != img.size {
                return Err(format_err(
                    index_file(),
                    format!(
                        "{} has {} bytes of config and layers, {MANIFEST} says {}",
                        img.reference,
                        i.size(),
                        img.size
                    ),
                ));
            }
            if let Some(ix) = &i.index {
                if img.index_digest.as_deref() != Some(ix.digest.as_str()) {
                    return Err(format_err(
                        dir.join(IMAGES_DIR)
                            .join(oci::INDEX_FILE)
                            .display()
                            .to_string(),
                        format!(
                            "{} was chosen from manifest list {}, {MANIFEST} says {}",
                            img.reference,
                            ix.digest,
                            img.index_digest.as_deref().unwrap_or("none")
                        ),
                    ));
                }
            }
            for b in i.blobs() {
                if !layout.has_blob(&b.digest, b.size) {
                    return Err(format_err(
                        layout.blob_path(&b.digest).display().to_string(),
                        format!("blob of {} is missing or has the wrong size", img.reference),
                    ));
                }
            }
            sum.images += 1;
        }
    }
    Ok(sum)
}

/// `DIR/images`.
pub fn images_dir(dir: &Path) -> PathBuf {
    dir.join(IMAGES_DIR)
}

/// `DIR/rpms`.
pub fn rpms_dir(dir: &Path) -> PathBuf {
    dir.join(RPMS_DIR)
}

/// `DIR/files`.
pub fn files_dir(dir: &Path) -> PathBuf {
    dir.join(FILES_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        for (name, _) in BUILTIN_PROFILES {
            let p = load_profile(name).unwrap();
            assert_eq!(&p.name, name);
            let imgs = profile_images(&p).unwrap();
            assert!(imgs.len() >= 7, "{name}: {imgs:?}");
        }
        let seed = load_profile("seed-v1.11.1").unwrap();
        let imgs = profile_images(&seed).unwrap();
        assert_eq!(imgs[0], "k8s.gcr.io/kube-apiserver-amd64:v1.11.1");
        assert_eq!(imgs[4], "k8s.gcr.io/pause:3.1");
        assert!(imgs.contains(&"docker.io/library/nginx:latest".to_string()));
        assert!(imgs.contains(&"quay.io/calico/node:v3.1.3".to_string()));
        assert_eq!(seed.packages.len(), 8);
        assert!(
            seed.packages.iter().any(|p| p == "nginx-mod-stream"),
            "the stream module nginx.conf loads"
        );
        assert_eq!(
            load_profile(DEFAULT_PROFILE).unwrap().kubernetes_version,
            kubeha_model::kube::NEWEST_CHECKED_RELEASE
        );
        let err = load_profile("no-such-profile").unwrap_err();
        assert!(err.to_string().contains("seed-v1.11.1"), "{err}");
    }
}
