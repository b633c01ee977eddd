//! kubeha-image: install media for kubeha nodes.
//!
//! - [`iso`]: remaster an EL install ISO the way lorax's `mkksiso` does (weldr/lorax
//!   `src/pylorax/cmdline/mkksiso.py`): keep the volume id, add
//!   `inst.ks=hd:LABEL=<udev-escaped volid>:/ks.cfg` and the `kubeha.*` arguments to every isolinux `append` and
//!   grub `linux`/`linuxefi` line (the ISO's `EFI/BOOT/grub.cfg` and the copy inside `images/efiboot.img`), make
//!   the unattended install the default entry without `rd.live.check`, put the bundle, agent and node config under
//!   `/kubeha`, and let xorriso replay the original BIOS + UEFI boot setup. A truncated base is named first.
//! - [`pxe`]: a TFTP/HTTP tree for pxelinux (BIOS), GRUB (UEFI) and iPXE with a per-MAC entry for every node.
//! - [`bootcfg`]: the pure text edits of boot configs and kernel arguments.
//! - [`bundle`]: checks a bundle directory against its `bundle.toml` before anything is written.
#![deny(missing_docs)]

pub mod bootcfg;
pub mod bundle;
mod efiboot;
pub mod iso;
pub mod pxe;
mod tool;

use std::path::PathBuf;

/// Errors of the media builders; each names the file or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base ISO is not an EL install ISO.
    #[error("{path}: not an EL install ISO: {reason}")]
    NotElIso {
        /// The base ISO.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The file is not an ISO 9660 image at all (no primary volume descriptor at sector 16).
    #[error("{path}: not an ISO 9660 image: {reason}")]
    NotIso {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The ISO file is shorter than its own ISO 9660 volume: an incomplete download or copy.
    #[error(
        "{path}: truncated: {size} bytes, the ISO 9660 volume says {volume} (download incomplete?)"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The volume's size from its primary volume descriptor.
        volume: u64,
    },
    /// The base ISO's architecture is not the bundle's.
    #[error("{path}: the ISO is for {iso_arch} but the bundle is for {want}")]
    WrongArch {
        /// The base ISO.
        path: PathBuf,
        /// The ISO's architecture (.discinfo / .treeinfo).
        iso_arch: String,
        /// The bundle's architecture.
        want: String,
    },
    /// The base ISO's EL release is not the bundle's.
    #[error("{path}: the ISO is EL{iso_el} but the bundle's packages are for EL{bundle_el}")]
    WrongRelease {
        /// The base ISO.
        path: PathBuf,
        /// The ISO's release.
        iso_el: u8,
        /// The bundle profile's release.
        bundle_el: u8,
    },
    /// The bundle fails `kubeha bundle verify` (a file missing, changed or unlisted; an image incomplete).
    #[error("bundle {dir} does not verify: {source}")]
    Verify {
        /// The bundle directory.
        dir: PathBuf,
        /// What the verification found.
        source: kubeha_mirror::Error,
    },
    /// The bundle directory does not match its manifest.
    #[error("bundle {dir}: {file}: {problem}")]
    Bundle {
        /// The bundle directory.
        dir: PathBuf,
        /// The file at fault (relative to the bundle).
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// A bad option or input value.
    #[error("{field}: {message}")]
    Value {
        /// The option or field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An external tool failed.
    #[error("running {command}: {status}\n{stderr}")]
    Tool {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] kubeha_model::IoError),
    /// The output exists.
    #[error("{0} already exists; use --force to overwrite it")]
    Exists(PathBuf),
    /// The kickstart could not be rendered.
    #[error(transparent)]
    Kickstart(#[from] kubeha_kickstart::Error),
    /// A schema error.
    #[error(transparent)]
    Model(#[from] kubeha_model::Error),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps an `io::Error` to [`Error::Io`] for `path` (the model's one helper).
pub(crate) use kubeha_model::io;

/// The agent files `%post` installs: `/kubeha/agent/` on the media, `<http-base>/agent/` for PXE.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The `kubeha-firstboot` binary.
    pub binary: PathBuf,
    /// `kubeha-firstboot.service`.
    pub unit: PathBuf,
}

impl Agent {
    /// Checks that both files are there, before anything is written.
    pub fn check(&self) -> Result<()> {
        for (field, p) in [("--agent", &self.binary), ("--agent-unit", &self.unit)] {
            if !p.is_file() {
                return Err(Error::Value {
                    field: field.into(),
                    message: format!("{} is not a file", p.display()),
                });
            }
        }
        Ok(())
    }
}

/// A temporary directory beside `output` (same filesystem, so the finished result is renamed into place and a failed
/// run leaves nothing behind).
pub(crate) fn staging_dir(output: &std::path::Path, prefix: &str) -> Result<tempfile::TempDir> {
    let parent = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
    Ok(tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .map_err(io("creating a temporary directory in", &parent))?)
}

/// The media layout the installer (`kubeha-firstboot install`) reads: one contract, in the model.
pub use kubeha_model::media::{AGENT_BIN, AGENT_DIR, AGENT_UNIT, NODE_CONFIG};
