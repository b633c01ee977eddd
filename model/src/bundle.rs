//! The offline bundle: its directory layout, its manifest `bundle.toml`, and the profile it is built from.
//!
//! ```text
//! DIR/bundle.toml         manifest: every file with sha256 + size, images with manifest digests, RPM NEVRAs
//! DIR/images/             one OCI image layout shared by all images (oci-layout, index.json, blobs/sha256/)
//! DIR/rpms/               a yum repository (createrepo_c) with the packages' dependency closure
//! DIR/files/              extra files (e.g. the CNI manifest)
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cluster::Runtime;
use crate::kube::KubeVersion;
use crate::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "bundle.toml";
/// The detached minisign signature of the manifest (`kubeha bundle sign`), beside it; not listed in it.
pub const MANIFEST_SIGNATURE: &str = "bundle.toml.minisig";
/// The OCI image layout directory.
pub const IMAGES_DIR: &str = "images";
/// The yum repository directory.
pub const RPMS_DIR: &str = "rpms";
/// The extra files directory.
pub const FILES_DIR: &str = "files";
/// The manifest format this code writes and reads.
pub const FORMAT: u32 = 1;

/// `bundle.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BundleManifest {
    /// Manifest format version ([`FORMAT`]).
    pub format: u32,
    /// When it was built (RFC 3339).
    pub created: String,
    /// Which images it carries (`bundle build --images`); bundles built before this field carry them all.
    #[serde(default)]
    pub image_set: ImageSet,
    /// The profile it was built from (credentials are never recorded, only the names of their sources).
    pub profile: Profile,
    /// Every image, by its original reference.
    #[serde(default)]
    pub images: Vec<ImageEntry>,
    /// Every RPM in `rpms/`.
    #[serde(default)]
    pub rpms: Vec<RpmEntry>,
    /// The OpenPGP keys (paths under `rpms/`, each also in `files`) every RPM of the bundle was checked against
    /// when it was built; the nodes' repo file names them with `gpgcheck=1`. Empty when a repo the packages
    /// come from has no `gpgkey` (then the nodes keep `gpgcheck=0`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rpm_keys: Vec<String>,
    /// Every file of the bundle except `bundle.toml` itself, sorted by path.
    #[serde(default)]
    pub files: Vec<FileEntry>,
}

/// Which images a bundle carries (`kubeha bundle build --images`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageSet {
    /// kubeadm's images for the profile's release and the profile's own images.
    #[default]
    All,
    /// No images: RPMs and files only.
    None,
    /// The profile's own images only (add-ons, the CNI), none of kubeadm's.
    Extra,
}

impl ImageSet {
    /// Every value with its name, as `--images` takes it.
    pub const ALL: [(&'static str, ImageSet); 3] = [
        ("all", ImageSet::All),
        ("none", ImageSet::None),
        ("extra", ImageSet::Extra),
    ];

    /// The name `--images` and bundle.toml use.
    pub fn name(self) -> &'static str {
        match self {
            ImageSet::All => "all",
            ImageSet::None => "none",
            ImageSet::Extra => "extra",
        }
    }

    /// Whether kubeadm's images are in the set.
    pub fn has_kubeadm_images(self) -> bool {
        self == ImageSet::All
    }

    /// Whether the profile's own images are in the set.
    pub fn has_profile_images(self) -> bool {
        self != ImageSet::None
    }
}

impl std::str::FromStr for ImageSet {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ImageSet::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("'{s}' is not all, none or extra"))
    }
}

/// One image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImageEntry {
    /// The original reference, e.g. `registry.k8s.io/pause:3.10` (what the node's runtime will know it as).
    pub reference: String,
    /// The digest of the platform manifest stored in the layout (`sha256:...`).
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// The platform, `linux/amd64`.
    pub platform: String,
    /// The digest the registry served for the reference (a manifest list/index) when it differs from `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    /// Total bytes of config + layers.
    #[serde(default)]
    pub size: u64,
}

/// One RPM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RpmEntry {
    /// `name-[epoch:]version-release.arch`.
    pub nevra: String,
    /// Package name.
    pub name: String,
    /// Path relative to the bundle root (`rpms/...`).
    pub path: String,
    /// Whether the profile asked for it (otherwise it is in the dependency closure).
    #[serde(default)]
    pub requested: bool,
}

impl RpmEntry {
    /// The version part of [`RpmEntry::nevra`] (no epoch, no release), or `None` when the NEVRA does not start with
    /// `name-` or lacks a release or an arch: `kubelet-1.36.3-150500.1.1.x86_64` -> `1.36.3`,
    /// `foo-2:1.0-1.el9.noarch` -> `1.0`.
    pub fn version(&self) -> Option<&str> {
        let rest = self.nevra.strip_prefix(&self.name)?.strip_prefix('-')?;
        let (evr, arch) = rest.rsplit_once('.')?;
        let (ev, release) = evr.rsplit_once('-')?;
        let v = ev.split_once(':').map_or(ev, |(_, v)| v);
        (!v.is_empty() && !release.is_empty() && !arch.is_empty()).then_some(v)
    }
}

/// One file with its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the bundle root, `/`-separated.
    pub path: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// The file's modification time (nanoseconds since the epoch) when the build last checked its bytes: a
    /// `bundle build --fast` rerun trusts a file whose size and mtime still match instead of hashing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
}

/// A bundle profile: what to put in the bundle. A TOML file, or a built-in (`kubeha bundle build --profile NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// The Kubernetes release: kubeadm's images for it are added automatically.
    pub kubernetes_version: KubeVersion,
    /// kubeadm `imageRepository` override used for the kubeadm image names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    /// The container runtime the nodes use (decides e.g. which runtime packages are expected).
    #[serde(default)]
    pub container_runtime: Runtime,
    /// Target Enterprise Linux major release.
    #[serde(default = "default_el")]
    pub el: u8,
    /// Target architecture (RPM arch; images use the matching OCI platform).
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Extra images beyond kubeadm's (CNI, add-ons).
    #[serde(default)]
    pub images: Vec<String>,
    /// RPM repositories.
    #[serde(default)]
    pub repos: Vec<RpmRepo>,
    /// Packages to bundle with their dependency closure: `name` or `name-version[-release]`.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Extra files, downloaded and pinned by sha256.
    #[serde(default)]
    pub files: Vec<ExtraFile>,
    /// Registry mirrors: pull `registry`'s images from `endpoint`, keep the original names.
    #[serde(default)]
    pub registry_mirrors: Vec<ProfileMirror>,
    /// Registry credentials.
    #[serde(default)]
    pub credentials: Vec<Credential>,
}

fn default_el() -> u8 {
    9
}
fn default_arch() -> String {
    "x86_64".to_string()
}

/// An RPM repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RpmRepo {
    /// Repo id.
    pub name: String,
    /// Base URL (`http(s)://` or `file://`), the directory holding `repodata/`.
    pub baseurl: String,
    /// GPG key URL, recorded for the node's repo file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpgkey: Option<String>,
    /// A base repo (the install ISO's own BaseOS/AppStream): its packages satisfy dependencies but are not bundled.
    #[serde(default)]
    pub base: bool,
    /// HTTP Basic user for this repo (e.g. an internal mirror), like dnf's `username=`. Sent only to the baseurl's
    /// own scheme, host and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Environment variable holding the password (with `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the password (with `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// An extra file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExtraFile {
    /// File name under `files/`.
    pub name: String,
    /// Where to get it (`http(s)://` or `file://`).
    pub url: String,
    /// Its expected SHA-256 (lowercase hex).
    pub sha256: String,
}

/// A registry mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProfileMirror {
    /// The registry host the image names use, e.g. `k8s.gcr.io`.
    pub registry: String,
    /// The endpoint to pull from, e.g. `http://127.0.0.1:5000` or `https://mirror.example`.
    pub endpoint: String,
    /// A path prefix on the mirror (e.g. `k8s` serves `k8s.gcr.io/pause` as `mirror/k8s/pause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Registry credentials; the secret is read from the environment or a file, never stored in the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Credential {
    /// Registry host (as in image names or mirror endpoints).
    pub registry: String,
    /// User name.
    pub username: String,
    /// Environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

impl Profile {
    /// Parses a profile; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Profile> {
        let p: Profile = toml::from_str(text).map_err(|e| Error::Parse {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        p.check(source)?;
        Ok(p)
    }

    /// Validates fields that parsing cannot.
    pub fn check(&self, source: &str) -> Result<()> {
        let bad = |field: String, message: String| Error::Value {
            field: format!("{source}: {field}"),
            message,
        };
        if let Err(e) = self.kubernetes_version.support() {
            return Err(bad("kubernetes-version".into(), e));
        }
        if !(7..=9).contains(&self.el) {
            return Err(bad(
                "el".into(),
                format!("EL{} is not supported: use 7, 8 or 9", self.el),
            ));
        }
        for (i, f) in self.files.iter().enumerate() {
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(
                    format!("files[{i}].sha256"),
                    "not 64 hex characters".into(),
                ));
            }
            if f.name.is_empty() || f.name.contains('/') || f.name.starts_with('.') {
                return Err(bad(
                    format!("files[{i}].name"),
                    format!("'{}' is not a plain file name", f.name),
                ));
            }
        }
        for (i, r) in self.repos.iter().enumerate() {
            let secret = r.password_env.is_some() as u8 + r.password_file.is_some() as u8;
            if r.username.is_some() != (secret == 1) || secret > 1 {
                return Err(bad(
                    format!("repos[{i}]"),
                    "a username needs exactly one of password-env or password-file, and they need a username"
                        .into(),
                ));
            }
        }
        for (i, c) in self.credentials.iter().enumerate() {
            if c.password_env.is_none() == c.password_file.is_none() {
                return Err(bad(
                    format!("credentials[{i}]"),
                    "give exactly one of password-env or password-file".into(),
                ));
            }
        }
        Ok(())
    }
}

impl BundleManifest {
    /// The packages a node installs (the kickstart's `%packages`): the requested RPMs' names, sorted, once each.
    pub fn requested_packages(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .rpms
            .iter()
            .filter(|r| r.requested)
            .map(|r| r.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Parses a manifest; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<BundleManifest> {
        let m: BundleManifest = toml::from_str(text).map_err(|e| Error::Parse {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        if m.format != FORMAT {
            return Err(Error::Value {
                field: format!("{source}: format"),
                message: format!(
                    "bundle format {} is not {FORMAT}; rebuild the bundle with this kubeha",
                    m.format
                ),
            });
        }
        for (i, f) in m.files.iter().enumerate() {
            if f.path.starts_with('/') || f.path.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(Error::Value {
                    field: format!("{source}: files[{i}].path"),
                    message: format!("'{}' escapes the bundle directory", f.path),
                });
            }
        }
        for (i, k) in m.rpm_keys.iter().enumerate() {
            let name = k.strip_prefix(&format!("{RPMS_DIR}/")).unwrap_or_default();
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(Error::Value {
                    field: format!("{source}: rpm-keys[{i}]"),
                    message: format!("'{k}' is not a file in {RPMS_DIR}/"),
                });
            }
            // Listed, so its sha256 is checked (and signed) like every other file's.
            if !m.files.iter().any(|f| &f.path == k) {
                return Err(Error::Value {
                    field: format!("{source}: rpm-keys[{i}]"),
                    message: format!("'{k}' is not listed under [[files]]"),
                });
            }
        }
        Ok(m)
    }

    /// Reads `DIR/bundle.toml`.
    pub fn load(dir: &Path) -> Result<BundleManifest> {
        let p = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&p).map_err(crate::io("reading", &p))?;
        BundleManifest::parse(&text, &p.display().to_string())
    }

    /// Writes `DIR/bundle.toml` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = toml::to_string(self).expect("manifest serializes");
        crate::fsutil::write_atomic(&dir.join(MANIFEST), text.as_bytes(), 0o644, true)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rpm_entry_version() {
        let e = |nevra: &str, name: &str| RpmEntry {
            nevra: nevra.into(),
            name: name.into(),
            path: String::new(),
            requested: true,
        };
        let cases = [
            (
                "kubelet-1.36.3-150500.1.1.x86_64",
                "kubelet",
                Some("1.36.3"),
            ),
            (
                "containerd.io-1.7.24-3.1.el9.x86_64",
                "containerd.io",
                Some("1.7.24"),
            ),
            (
                "shadow-utils-2:4.9-8.el9.x86_64",
                "shadow-utils",
                Some("4.9"),
            ),
            ("kubelet-1.36.3.x86_64", "kubelet", None),
            ("kubeadm-1.36.3-1.x86_64", "kubelet", None),
            ("kubelet-:-1.x86_64", "kubelet", None),
        ];
        for (nevra, name, want) in cases {
            assert_eq!(e(nevra, name).version(), want, "{nevra}");
        }
    }

    use super::*;

    #[test]
    fn rpm_keys_are_listed_files_in_rpms() {
        let base = "format = 1\ncreated = \"2026-01-01T00:00:00Z\"\n[profile]\nname = \"t\"\n\
                    kubernetes-version = \"1.31.4\"\n";
        let file = "[[files]]\npath = \"rpms/RPM-GPG-KEY-k\"\nsha256 = \"00\"\nsize = 1\n";
        for (keys, files, ok) in [
            ("rpm-keys = [\"rpms/RPM-GPG-KEY-k\"]\n", file, true),
            ("rpm-keys = [\"rpms/RPM-GPG-KEY-k\"]\n", "", false),
            ("rpm-keys = [\"files/RPM-GPG-KEY-k\"]\n", file, false),
            ("rpm-keys = [\"rpms/../x\"]\n", file, false),
        ] {
            let text = format!(
                "{}{keys}{}{files}",
                &base[..base.find("[profile]").unwrap()],
                &base[base.find("[profile]").unwrap()..]
            );
            let r = BundleManifest::parse(&text, "b");
            assert_eq!(r.is_ok(), ok, "{keys} {files}: {r:?}");
        }
    }

    #[test]
    fn repo_credentials_need_a_user_and_one_secret_source() {
        let base = "name = \"t\"\nkubernetes-version = \"1.31.4\"\n[[repos]]\nname = \"k\"\nbaseurl = \"https://r/\"\n";
        for (extra, ok) in [
            ("", true),
            ("username = \"ci\"\npassword-env = \"PW\"\n", true),
            ("username = \"ci\"\npassword-file = \"/run/pw\"\n", true),
            ("username = \"ci\"\n", false),
            ("password-env = \"PW\"\n", false),
            (
                "username = \"ci\"\npassword-env = \"PW\"\npassword-file = \"/run/pw\"\n",
                false,
            ),
        ] {
            let r = Profile::parse(&format!("{base}{extra}"), "p");
            assert_eq!(r.is_ok(), ok, "{extra:?}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("repos[0]"), "{e}");
            }
        }
    }
}
