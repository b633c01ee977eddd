//! What a kickstart is asked for ([`Options`], [`Source`]), the media's fixed names and the renderer's error:
//! the types the plan and the renderer both read.

/// Where dracut mounts the install media; anaconda sees the media's `/kubeha` here (rhinstaller/anaconda
/// `dracut/anaconda-lib.sh` `repodir="/run/install/repo"`, the same on EL7 to EL9).
pub const MEDIA_ROOT: &str = "/run/install/repo";
/// The directory on the install media (and under the HTTP base) holding the bundle, agent and node config.
pub const MEDIA_DIR: &str = "kubeha";

/// Errors of the renderer; each names the field or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value that cannot go into a kickstart.
    #[error("{field}: {message}")]
    Value {
        /// The field path or option.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Value {
        field: field.into(),
        message: message.into(),
    }
}

/// Where the installer finds the bundle and kubeha's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// On the install media under `/kubeha` (`kubeha iso`).
    Media,
    /// Over HTTP: the URL of the directory holding `bundle.toml`, `rpms/`, `agent/` and `node.toml` (`kubeha pxe`).
    Http(String),
}

impl Source {
    /// The base the installer reads from.
    pub fn base(&self) -> String {
        match self {
            Source::Media => format!("{MEDIA_ROOT}/{MEDIA_DIR}"),
            Source::Http(u) => u.trim_end_matches('/').to_string(),
        }
    }

    /// The bundle's yum repository URL.
    pub fn repo_url(&self) -> String {
        match self {
            Source::Media => format!("file://{MEDIA_ROOT}/{MEDIA_DIR}/rpms"),
            Source::Http(u) => format!("{}/rpms", u.trim_end_matches('/')),
        }
    }
}

/// What to render.
#[derive(Debug, Clone)]
pub struct Options {
    /// EL major release: 7, 8 or 9.
    pub el: u8,
    /// Where the bundle is.
    pub source: Source,
    /// The node, when the kickstart is for one known node (its network, and disk if set, are then fixed).
    pub node: Option<String>,
    /// The packages `%packages` installs from the bundle (its requested RPM names).
    pub packages: Vec<String>,
    /// The OS installation tree (`url --url=`); default: the boot media or `inst.repo=`.
    pub os_url: Option<String>,
}

impl Options {
    /// Options for the install media, role-agnostic.
    pub fn new(el: u8, source: Source) -> Options {
        Options {
            el,
            source,
            node: None,
            packages: Vec::new(),
            os_url: None,
        }
    }
}

/// The ksvalidator version string for an EL release (`RHEL9`).
pub fn ksvalidator_version(el: u8) -> String {
    format!("RHEL{el}")
}

/// The label of the root filesystem every kubeha install makes: `kubeha` and the first 6 hex digits of the
/// SHA-256 of the cluster's name (12 characters, XFS's limit). It is the install-once marker: `%pre` reads the
/// labels of the disk it is about to wipe (blkid, no mount) and refuses when one is this, unless the kernel
/// command line says `kubeha.reinstall=1` (docs/media.md). The hash keeps the label short and tells this
/// cluster's nodes from another's; a disk of another cluster (or none) installs as before.
pub fn root_label(cluster_name: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "kubeha{}",
        &hex::encode(Sha256::digest(cluster_name.as_bytes()))[..6]
    )
}
