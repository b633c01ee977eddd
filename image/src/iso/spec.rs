//! What `kubeha iso` is asked for ([`IsoSpec`]) and what it answers ([`IsoReport`]), and the medium's fixed names:
//! the types the inspection, the plan, the renderers and the executor all read.

use std::path::PathBuf;

use kubeha_model::kernel_args::KernelArgs;
use kubeha_model::{Cluster, NodeConfig};

use crate::bootcfg::{ArgEdit, ConfigKind};
use crate::Agent;

/// The kickstart's path on the medium.
pub const KS_PATH: &str = "ks.cfg";
/// The directory on the medium holding the bundle, agent and node config.
pub const MEDIA_DIR: &str = kubeha_kickstart::MEDIA_DIR;
/// isolinux configs mkksiso edits.
pub const ISOLINUX_CFGS: &[&str] = &["isolinux/isolinux.cfg"];
/// GRUB configs mkksiso edits.
pub const GRUB_CFGS: &[&str] = &[
    "EFI/BOOT/grub.cfg",
    "EFI/BOOT/BOOT.conf",
    "boot/grub2/grub.cfg",
    "boot/grub/grub.cfg",
];
/// The FAT image El Torito's EFI entry boots.
pub const EFIBOOT_IMG: &str = "images/efiboot.img";
/// GRUB configs inside the FAT image.
pub const EFIBOOT_CFGS: &[&str] = &["EFI/BOOT/grub.cfg", "EFI/BOOT/BOOT.conf"];

/// The kind of one of the medium's boot configs.
pub(crate) fn config_kind(path: &str) -> ConfigKind {
    if ISOLINUX_CFGS.contains(&path) {
        ConfigKind::Isolinux
    } else if path.starts_with("EFI/") {
        ConfigKind::GrubEfi
    } else {
        ConfigKind::GrubBios
    }
}

/// Everything `kubeha iso` needs.
#[derive(Debug, Clone)]
pub struct IsoSpec<'a> {
    /// The base EL install ISO.
    pub base: PathBuf,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The ISO to write.
    pub output: PathBuf,
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The node config put on the medium as `/kubeha/node.toml`.
    pub node_config: &'a NodeConfig,
    /// kubeha's kernel arguments for every boot entry (role, name, config, ...); they replace any the base had.
    pub kernel_args: KernelArgs,
    /// The operator's `--remove-arg`/`--append`, applied to every boot entry after kubeha's own.
    pub user_args: ArgEdit,
    /// The agent files.
    pub agent: Agent,
    /// The kickstart's EL release; default: the ISO's, else cluster.toml's `install.el`.
    pub el: Option<u8>,
    /// Replace an existing output.
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct IsoReport {
    /// The (kept) volume id.
    pub volid: String,
    /// The kickstart's EL release.
    pub el: u8,
    /// The boot config files edited (ISO paths; `images/efiboot.img:EFI/BOOT/grub.cfg` for the FAT copy).
    pub edited: Vec<String>,
    /// The kernel arguments added.
    pub args: Vec<String>,
    /// The kernel arguments removed (`--remove-arg`).
    pub removed: Vec<String>,
    /// Each edited config and the entry now its default (`isolinux/isolinux.cfg: linux`); "(added)" when it was
    /// made from the media-check entry.
    pub defaults: Vec<String>,
    /// Whether `-iso-level 3` was needed.
    pub iso_level3: bool,
    /// Whether implantisomd5 ran.
    pub md5: bool,
}
