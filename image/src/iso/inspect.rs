//! Reading the base ISO: its volume id, files, architecture and release ([`inspect`]), its size against its
//! volume descriptor ([`check_volume_size`]), and files extracted from it ([`extract`]), all through xorriso and
//! without a mount.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kubeha_runner::Cmd;

use super::spec::{EFIBOOT_IMG, GRUB_CFGS, ISOLINUX_CFGS};
use crate::tool::run;
use crate::{io, Error, Result};

/// What the base ISO is.
#[derive(Debug, Clone)]
pub struct BaseIso {
    /// The ISO file.
    pub path: PathBuf,
    /// Its volume id.
    pub volid: String,
    /// Every file, without the leading `/`.
    pub files: BTreeSet<String>,
    /// The architecture from .discinfo/.treeinfo.
    pub arch: String,
    /// The EL major release from .treeinfo/.discinfo, when it says.
    pub el: Option<u8>,
    /// El Torito's EFI image is an appended partition (newer lorax/mkksiso output), not a file in the tree.
    pub efi_appended: bool,
}

/// Reads the base ISO's volume id and file list (`xorriso -indev ISO -pkt_output on -find`), and extracts
/// `.discinfo`, `.treeinfo` and the boot configs into `work`.
pub fn inspect(base: &Path, work: &Path) -> Result<BaseIso> {
    let meta = std::fs::metadata(base).map_err(io("reading", base))?;
    if !meta.is_file() {
        return Err(not_el(base, "not a file"));
    }
    // Before xorriso: a truncated download otherwise shows up as a page of xorriso complaints.
    check_volume_size(base, meta.len())?;
    let out = run(&Cmd::new("xorriso")
        .env("LANG", "C")
        .arg("-indev")
        .arg_path(base)
        .args(["-pkt_output", "on", "-find", "/", "-type", "f"]))
    .map_err(|e| {
        not_el(
            base,
            &format!("xorriso cannot read it as ISO 9660 ({})", tool_cause(&e)),
        )
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let volid = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Volume id"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| unquote(v.trim()))
        .unwrap_or_default();
    if volid.is_empty() {
        return Err(not_el(base, "it has no volume id"));
    }
    let files: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("R:1: "))
        .map(|p| unquote(p.trim()).trim_start_matches('/').to_string())
        .collect();
    if !files.contains(".discinfo") && !files.contains(".treeinfo") {
        return Err(not_el(base, "it has no .treeinfo or .discinfo"));
    }
    if !ISOLINUX_CFGS
        .iter()
        .chain(GRUB_CFGS)
        .any(|c| files.contains(*c))
    {
        return Err(not_el(
            base,
            "it has no boot config (isolinux/isolinux.cfg or EFI/BOOT/grub.cfg)",
        ));
    }
    let boot = run(&Cmd::new("xorriso")
        .env("LANG", "C")
        .arg("-indev")
        .arg_path(base)
        .args(["-report_el_torito", "as_mkisofs"]))?;
    let efi_appended = String::from_utf8_lossy(&boot.stdout).contains("appended_partition_2");
    let wanted: Vec<&str> = [".discinfo", ".treeinfo", EFIBOOT_IMG]
        .iter()
        .chain(ISOLINUX_CFGS)
        .chain(GRUB_CFGS)
        .copied()
        .filter(|f| files.contains(*f))
        .collect();
    extract(base, &wanted, work)?;
    let read = |f: &str| std::fs::read_to_string(work.join(f)).unwrap_or_default();
    let discinfo = read(".discinfo");
    let treeinfo = read(".treeinfo");
    let arch = ini_get(&treeinfo, &["general", "tree"], "arch")
        .or_else(|| discinfo.lines().nth(2).map(|s| s.trim().to_string()))
        .filter(|a| !a.is_empty())
        .ok_or_else(|| not_el(base, ".treeinfo and .discinfo name no architecture"))?;
    let el = ini_get(&treeinfo, &["general", "release"], "version")
        .or_else(|| discinfo.lines().nth(1).map(|s| s.trim().to_string()))
        .and_then(|v| v.split('.').next().and_then(|m| m.parse::<u8>().ok()));
    Ok(BaseIso {
        path: base.to_path_buf(),
        volid,
        files,
        arch,
        el,
        efi_appended,
    })
}

/// The ISO 9660 logical sector: the volume descriptors start at sector 16 (ECMA-119 §6.2.1, §8.4).
const SECTOR: u64 = 2048;

/// Compares the file's size with the volume size its primary volume descriptor records (sector 16: type 1,
/// `CD001`; volume space size at bytes 80..88 and logical block size at 128..132, both stored little- then
/// big-endian). A shorter file is an incomplete download or copy; a longer one is normal (isohybrid padding,
/// appended partitions).
pub fn check_volume_size(path: &Path, size: u64) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let min = 17 * SECTOR;
    if size < min {
        return Err(Error::NotIso {
            path: path.to_path_buf(),
            reason: format!(
                "{size} bytes, shorter than the {min} bytes that hold its volume descriptor (truncated?)"
            ),
        });
    }
    let mut pvd = [0u8; SECTOR as usize];
    let mut f = std::fs::File::open(path).map_err(io("reading", path))?;
    f.seek(SeekFrom::Start(16 * SECTOR))
        .and_then(|_| f.read_exact(&mut pvd))
        .map_err(io("reading", path))?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return Err(Error::NotIso {
            path: path.to_path_buf(),
            reason: "no primary volume descriptor (CD001) at sector 16".into(),
        });
    }
    let blocks = u32::from_le_bytes(pvd[80..84].try_into().expect("4 bytes")) as u64;
    let block = match u16::from_le_bytes(pvd[128..130].try_into().expect("2 bytes")) {
        0 => SECTOR,
        b => b as u64,
    };
    let volume = blocks * block;
    if size < volume {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            size,
            volume,
        });
    }
    Ok(())
}

/// One line from a failed tool run for a message: the first xorriso `FAILURE`/`SORRY` line, else the last line.
fn tool_cause(e: &Error) -> String {
    match e {
        Error::Tool { stderr, status, .. } => stderr
            .lines()
            .find(|l| l.contains("FAILURE") || l.contains("SORRY"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| status.clone()),
        e => e.to_string(),
    }
}

pub(crate) fn not_el(path: &Path, reason: &str) -> Error {
    Error::NotElIso {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// xorriso's quoting: `'text'` with `'"'"'` for an embedded quote.
fn unquote(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        s[1..s.len() - 1].replace("'\"'\"'", "'")
    } else {
        s.to_string()
    }
}

/// A key of an INI section (the first of `sections` that has it).
fn ini_get(text: &str, sections: &[&str], key: &str) -> Option<String> {
    for want in sections {
        let mut inside = false;
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('[') {
                inside = l == format!("[{want}]");
            } else if inside {
                if let Some((k, v)) = l.split_once('=') {
                    if k.trim() == key {
                        return Some(v.trim().to_string());
                    }
                }
            }
        }
    }
    None
}

/// Extracts ISO files into `dir` with osirrox (no mount).
pub fn extract(iso: &Path, files: &[&str], dir: &Path) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let mut cmd = Cmd::new("xorriso")
        .env("LANG", "C")
        .args(["-osirrox", "on"])
        .arg("-indev")
        .arg_path(iso);
    for f in files {
        cmd = cmd
            .arg("-extract")
            .arg(format!("/{f}"))
            .arg_path(dir.join(f));
    }
    run(&cmd)?;
    // Extracted files keep the ISO's read-only modes.
    for f in files {
        let p = dir.join(f);
        let mut perm = std::fs::metadata(&p)
            .map_err(io("reading", &p))?
            .permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&p, perm).map_err(io("writing", &p))?;
    }
    Ok(())
}
