//! A config drive: a filesystem labelled `KUBEHA` (ISO9660 or FAT) with `node.toml` at its top, or any label named by
//! `kubeha.config=label:FSLABEL`.
//!
//! The filesystem is read in userspace, never mounted: an early-boot kernel may lack the vfat/iso9660 modules, a
//! mount would need cleanup on every error path, and the reader is testable anywhere (cf. coreos-installer's
//! iso9660.rs). Acquisition ([`find_device`]) is kept apart from parsing ([`read_node_toml`]), as afterburn's
//! proxmoxve configdrive does.
//!
//! The device is found by `/dev/disk/by-label/LABEL` (udev), else by scanning `/sys/class/block` and probing each
//! device's label, so it also works before udev has settled.

pub mod fat;
pub mod iso9660;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{Fetched, Provider};
use crate::util::under;
use fat::ReadOnly;

/// The config drive's default label.
pub const DEFAULT_LABEL: &str = "KUBEHA";
/// The file read from the drive.
pub const FILE_NAME: &str = "node.toml";
/// Largest node.toml accepted.
const MAX_FILE: u64 = 4 << 20;

/// Reads `node.toml` from the filesystem labelled `label`.
#[derive(Debug, Clone)]
pub struct ConfigDrive {
    /// The system root (devices are looked up under it).
    pub root: PathBuf,
    /// The filesystem label.
    pub label: String,
    /// How the label was chosen, for messages.
    pub origin: String,
}

impl Provider for ConfigDrive {
    fn describe(&self) -> String {
        format!("config drive labelled {} ({})", self.label, self.origin)
    }

    fn fetch(&self) -> Result<Option<Fetched>> {
        let Some(dev) = find_device(&self.root, &self.label)? else {
            log::info!("no filesystem labelled {} found", self.label);
            return Ok(None);
        };
        let source = format!("{}:/{FILE_NAME} ({})", dev.display(), self.describe());
        match read_node_toml(&dev).with_context(|| format!("reading {}", dev.display()))? {
            Some(data) => Ok(Some(Fetched { data, source })),
            None => {
                log::warn!(
                    "{} is labelled {} but holds no {FILE_NAME}",
                    dev.display(),
                    self.label
                );
                Ok(None)
            }
        }
    }
}

/// The filesystem kinds a config drive may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// ISO9660 (with Joliet/Rock Ridge names when present).
    Iso9660,
    /// FAT12/16/32.
    Fat,
}

fn head(dev: &Path) -> Result<Vec<u8>> {
    let mut f = File::open(dev).with_context(|| format!("opening {}", dev.display()))?;
    let mut buf = vec![0u8; 32768 + 2048];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// The filesystem `head` (the device's first bytes) announces: ISO9660's `CD001`, or the 55 AA boot sector
/// signature of FAT (which partition tables carry too).
fn announced(head: &[u8]) -> Option<FsKind> {
    if iso9660::detect(head) {
        Some(FsKind::Iso9660)
    } else if head.len() >= 512 && head[510..512] == [0x55, 0xAA] {
        Some(FsKind::Fat)
    } else {
        None
    }
}

/// The kind and label of the filesystem on `dev`, if it holds one this reader knows.
pub fn probe(dev: &Path) -> Result<Option<(FsKind, String)>> {
    match announced(&head(dev)?) {
        Some(FsKind::Iso9660) => {
            let iso = iso9660::Iso::open(ReadOnly(File::open(dev)?))?;
            Ok(Some((FsKind::Iso9660, iso.volume_id)))
        }
        Some(FsKind::Fat) => match fat::label(File::open(dev)?, &dev.display().to_string()) {
            Ok(label) => Ok(Some((FsKind::Fat, label))),
            // Not an error while scanning devices: a partitioned disk has the same signature. Reading the device
            // (read_file) reports why.
            Err(e) => {
                log::debug!("{}: no FAT filesystem read: {e:#}", dev.display());
                Ok(None)
            }
        },
        None => Ok(None),
    }
}

/// Reads `/node.toml` from the filesystem on `dev`; `Ok(None)` when it holds no such file.
pub fn read_node_toml(dev: &Path) -> Result<Option<Vec<u8>>> {
    read_file(dev, FILE_NAME)
}

/// Reads a top-level file from the filesystem on `dev`; `Ok(None)` when there is no such file or it is a directory.
/// A FAT boot sector that fails the checks in [`fat`] is an error naming the field.
pub fn read_file(dev: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    match announced(&head(dev)?) {
        Some(FsKind::Iso9660) => {
            let mut iso = iso9660::Iso::open(ReadOnly(File::open(dev)?))?;
            match iso.lookup(name)? {
                Some(e) if !e.dir => Ok(Some(iso.read_file(&e, MAX_FILE)?)),
                _ => Ok(None),
            }
        }
        Some(FsKind::Fat) => {
            fat::read_file(File::open(dev)?, &dev.display().to_string(), name, MAX_FILE)
        }
        None => anyhow::bail!(
            "{} holds neither an ISO9660 nor a FAT filesystem",
            dev.display()
        ),
    }
}

/// udev's escaping of a label in `/dev/disk/by-label/` (`\x20` for a space, and so on).
pub fn udev_escape(label: &str) -> String {
    let mut s = String::new();
    for b in label.bytes() {
        if b.is_ascii_alphanumeric() || b"#+-.:=@_".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// Resolves a symlink found under `root` so that absolute targets stay under `root`.
fn resolve_under(root: &Path, p: &Path) -> PathBuf {
    match std::fs::read_link(p) {
        Ok(t) if t.is_absolute() => under(root, t),
        Ok(t) => p.parent().unwrap_or(root).join(t),
        Err(_) => p.to_path_buf(),
    }
}

/// Finds the block device (or image file) holding the filesystem labelled `label`, under `root`.
pub fn find_device(root: &Path, label: &str) -> Result<Option<PathBuf>> {
    let by_label = under(root, "/dev/disk/by-label").join(udev_escape(label));
    if by_label.exists() {
        let dev = resolve_under(root, &by_label);
        log::info!("found {} (by label {label})", dev.display());
        return Ok(Some(dev));
    }
    // No udev link (yet): probe every block device the kernel lists. CD drives without a medium and devices we may
    // not read are skipped.
    let sys = under(root, "/sys/class/block");
    let Ok(rd) = std::fs::read_dir(&sys) else {
        return Ok(None);
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        if n.starts_with("loop") || n.starts_with("ram") || n.starts_with("zram") {
            continue;
        }
        let dev = under(root, "/dev").join(&n);
        match probe(&dev) {
            Ok(Some((kind, l))) if l.eq_ignore_ascii_case(label) => {
                log::info!(
                    "found {} ({kind:?}, label {l}) by scanning block devices",
                    dev.display()
                );
                return Ok(Some(dev));
            }
            Ok(_) => {}
            Err(e) => log::debug!("probing {}: {e:#}", dev.display()),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod fat_tests;
#[cfg(test)]
mod mock_tests;
