//! What `kubeha pxe` is asked for ([`PxeSpec`]) and what it answers ([`PxeReport`]), and the tree's fixed names:
//! the types the plan, the renderers and the executor all read.

use std::path::PathBuf;

use kubeha_model::{Cluster, NodeConfig};

use crate::bootcfg::ArgEdit;
use crate::Agent;

/// Where the installer kernel comes from.
#[derive(Debug, Clone)]
pub enum Boot {
    /// A kernel and initrd (the OS tree is `os_url`).
    Files {
        /// vmlinuz.
        kernel: PathBuf,
        /// initrd.img.
        initrd: PathBuf,
    },
    /// An EL install ISO: its tree is extracted to `DIR/os/` and served as `inst.repo=`.
    Iso(PathBuf),
}

/// Which nodes default to the installer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// None: every entry boots the local disk (the default).
    None,
    /// Every node.
    All,
    /// These nodes.
    Nodes(Vec<String>),
}

impl Install {
    pub(crate) fn wants(&self, name: &str) -> bool {
        match self {
            Install::None => false,
            Install::All => true,
            Install::Nodes(n) => n.iter().any(|x| x == name),
        }
    }
}

/// Everything `kubeha pxe` needs.
#[derive(Debug, Clone)]
pub struct PxeSpec<'a> {
    /// The tree to write.
    pub output: PathBuf,
    /// The URL `output` is served at over HTTP (any web server).
    pub http_base: String,
    /// The installer kernel.
    pub boot: Boot,
    /// The OS tree URL (`inst.repo=`) when `boot` is `Files`.
    pub os_url: Option<String>,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The shared node config (`kubeha/node.toml`): worker-grade, no private key.
    pub node_config: &'a NodeConfig,
    /// Per-master node configs with keys (`--embed-secrets`): served as `kubeha/nodes/<name>.toml`, pinned by
    /// sha256 in that master's entry.
    pub master_configs: Vec<(String, NodeConfig)>,
    /// The group of the web server that serves the tree: the master configs are written 0640 with that group
    /// (`--web-group`); `None`: 0600, readable only by the tree's owner (a server running as that user).
    pub secret_group: Option<u32>,
    /// Which nodes install by default.
    pub install: Install,
    /// Which nodes reinstall by default: they install, and their entries carry `kubeha.reinstall=1`, which lets
    /// the kickstart's `%pre` wipe a disk that already holds this cluster's node (deliberate reimaging).
    pub reinstall: Install,
    /// The operator's `--remove-arg`/`--append`, applied to every install entry after kubeha's own arguments.
    pub user_args: ArgEdit,
    /// The agent files.
    pub agent: Agent,
    /// The kickstart's EL release (default: the ISO's, else cluster.toml's).
    pub el: Option<u8>,
    /// A GRUB EFI network image to serve as `grubx64.efi` (default: the ISO's EFI/BOOT/grubx64.efi if any).
    pub grub_efi: Option<PathBuf>,
    /// Replace an existing tree.
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct PxeReport {
    /// Nodes with a per-MAC entry: name, MAC, whether it installs by default, and whether it reinstalls
    /// (`kubeha.reinstall=1`).
    pub nodes: Vec<(String, String, bool, bool)>,
    /// The kickstart's EL release.
    pub el: u8,
    /// Boot loader files that could not be found on this machine (the operator supplies them).
    pub missing_loaders: Vec<String>,
}

/// BIOS loader files, from syslinux (Debian, then EL paths).
pub(crate) const SYSLINUX: &[(&str, &[&str])] = &[
    (
        "pxelinux.0",
        &[
            "/usr/lib/PXELINUX/pxelinux.0",
            "/usr/share/syslinux/pxelinux.0",
        ],
    ),
    (
        "ldlinux.c32",
        &[
            "/usr/lib/syslinux/modules/bios/ldlinux.c32",
            "/usr/share/syslinux/ldlinux.c32",
        ],
    ),
    (
        "menu.c32",
        &[
            "/usr/lib/syslinux/modules/bios/menu.c32",
            "/usr/share/syslinux/menu.c32",
        ],
    ),
    (
        "libutil.c32",
        &[
            "/usr/lib/syslinux/modules/bios/libutil.c32",
            "/usr/share/syslinux/libutil.c32",
        ],
    ),
    (
        "libcom32.c32",
        &[
            "/usr/lib/syslinux/modules/bios/libcom32.c32",
            "/usr/share/syslinux/libcom32.c32",
        ],
    ),
];

/// The installer kernel, in the tree and in an EL ISO's.
pub(crate) const KERNEL: &str = "images/pxeboot/vmlinuz";
/// The installer initrd, in the tree and in an EL ISO's.
pub(crate) const INITRD: &str = "images/pxeboot/initrd.img";

/// `01-52-54-00-aa-00-01`: pxelinux's and EL grub's per-MAC file name suffix.
pub fn mac_file(mac: &str) -> String {
    format!("01-{}", mac.replace(':', "-"))
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}
