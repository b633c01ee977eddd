//! `kubeha iso`: remaster an EL install ISO with the kickstart, the bundle, the agent and a node config.
//!
//! Follows lorax's mkksiso (weldr/lorax `src/pylorax/cmdline/mkksiso.py`): read the ISO with xorriso (no mounts), keep its volume id so the
//! existing `inst.stage2=hd:LABEL=` still matches, edit the boot configs (isolinux.cfg, EFI/BOOT/grub.cfg and
//! the grub.cfg inside images/efiboot.img, edited in userspace: arguments on every entry, and unlike mkksiso the
//! unattended install made the default entry, without `rd.live.check`; [`crate::bootcfg::remaster_config`]), then
//! write a new image with
//! `xorriso -indev BASE -outdev OUT -boot_image any replay -update ... -map ...`: replay re-creates the base's own
//! El Torito BIOS + EFI entries, isohybrid MBR and GPT around the updated files. `-as mkisofs -iso-level 3` is
//! added when a file is 4 GiB or more. The image is written to a temporary file next to the output and renamed
//! at the end: on any error nothing is written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kubeha_kickstart::{Options, Source};
use kubeha_model::kernel_args::{self, KernelArgs};
use kubeha_model::{Cluster, NodeConfig};

use crate::bootcfg::{grub_efi_commands, remaster_config, udev_escape, Arg, ArgEdit, ConfigKind};
use crate::tool::run;
use crate::{
    bundle, efiboot, io, Agent, Error, Result, AGENT_BIN, AGENT_DIR, AGENT_UNIT, NODE_CONFIG,
};
use kubeha_runner::Cmd;

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
fn config_kind(path: &str) -> ConfigKind {
    if ISOLINUX_CFGS.contains(&path) {
        ConfigKind::Isolinux
    } else if path.starts_with("EFI/") {
        ConfigKind::GrubEfi
    } else {
        ConfigKind::GrubBios
    }
}

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

fn not_el(path: &Path, reason: &str) -> Error {
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

/// Remasters the base ISO.
pub fn remaster(spec: &IsoSpec) -> Result<IsoReport> {
    if spec.output.exists() && !spec.force {
        return Err(Error::Exists(spec.output.clone()));
    }
    spec.agent.check()?;
    let tmp = crate::staging_dir(&spec.output, ".kubeha-iso-")?;
    let orig = tmp.path().join("orig");
    let new = tmp.path().join("new");
    let stage = tmp.path().join("stage");
    // The base first: reading it takes seconds, hashing a bundle can take minutes.
    let base = inspect(&spec.base, &orig)?;
    let verified = bundle::verify(&spec.bundle)?;
    let want_arch = &verified.manifest.profile.arch;
    if &base.arch != want_arch {
        return Err(Error::WrongArch {
            path: spec.base.clone(),
            iso_arch: base.arch,
            want: want_arch.clone(),
        });
    }
    check_release(&spec.base, base.el, verified.manifest.profile.el)?;
    let el = spec.el.or(base.el).unwrap_or(spec.cluster.install.el);
    if el != spec.cluster.install.el {
        log::warn!(
            "the kickstart is for EL{el} (the ISO's); cluster.toml says install.el = {}",
            spec.cluster.install.el
        );
    }
    log::info!(
        "base ISO {}: volume id '{}', {} EL{el}",
        spec.base.display(),
        base.volid,
        base.arch
    );

    // The kickstart, for every node on this medium.
    let mut ko = Options::new(el, Source::Media);
    ko.packages = verified.manifest.requested_packages();
    let ks = kubeha_kickstart::render(spec.cluster, &ko)?;
    std::fs::create_dir_all(&stage).map_err(io("creating", &stage))?;
    let ks_file = stage.join(KS_PATH);
    std::fs::write(&ks_file, &ks).map_err(io("writing", &ks_file))?;

    // The boot arguments: mkksiso's inst.ks plus ours (old ones replaced), then the operator's.
    let label = udev_escape(&base.volid);
    let mut add = vec![Arg::kv("inst.ks", &format!("hd:LABEL={label}:/{KS_PATH}"))];
    spec.kernel_args.validate().map_err(|e| Error::Value {
        field: "kernel_args".into(),
        message: e.to_string(),
    })?;
    add.extend(spec.kernel_args.args());
    let edits = [
        ArgEdit {
            remove: vec!["inst.ks".into(), kernel_args::PREFIX.into()],
            add: add.clone(),
        },
        spec.user_args.clone(),
    ];
    // The UEFI GRUB kernel commands the medium's release uses (linuxefi on x86_64 EL7-9).
    let efi_commands = grub_efi_commands(el, &base.arch);
    let mut edited = Vec::new();
    let mut defaults = Vec::new();
    let mut updates: Vec<String> = Vec::new();
    for c in ISOLINUX_CFGS
        .iter()
        .chain(GRUB_CFGS)
        .filter(|c| base.files.contains(**c))
    {
        let src = orig.join(c);
        let text = std::fs::read_to_string(&src).map_err(io("reading", &src))?;
        let Some(out) = remaster_one(
            c,
            config_kind(c),
            &text,
            efi_commands,
            &edits,
            &mut edited,
            &mut defaults,
        ) else {
            continue;
        };
        let dst = new.join(c);
        std::fs::create_dir_all(dst.parent().expect("has a parent"))
            .map_err(io("creating", &new))?;
        std::fs::write(&dst, out).map_err(io("writing", &dst))?;
        updates.push(c.to_string());
    }
    if edited.is_empty() {
        return Err(not_el(
            &spec.base,
            "its boot configs have no isolinux append or grub linux lines",
        ));
    }
    // The FAT copies of grub.cfg: images/efiboot.img in the tree, and/or the appended EFI partition.
    let mut appended_efi = None;
    let mut fat_images: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    if base.files.contains(EFIBOOT_IMG) {
        fat_images.push((
            EFIBOOT_IMG.to_string(),
            orig.join(EFIBOOT_IMG),
            new.join(EFIBOOT_IMG),
        ));
    }
    if base.efi_appended {
        let boot_dir = tmp.path().join("boot-images");
        std::fs::create_dir_all(&boot_dir).map_err(io("creating", &boot_dir))?;
        run(&Cmd::new("xorriso")
            .env("LANG", "C")
            .args(["-osirrox", "on", "-indev"])
            .arg_path(&spec.base)
            .arg("-extract_boot_images")
            .arg(format!("{}/", boot_dir.display())))?;
        let img = boot_dir.join("eltorito_img2_uefi.img");
        if !img.is_file() {
            return Err(not_el(
                &spec.base,
                "its EFI boot partition could not be extracted",
            ));
        }
        let out = tmp.path().join("efi-partition.img");
        fat_images.push(("appended EFI partition".into(), img, out.clone()));
        appended_efi = Some(out);
    }
    for (name, src, dst) in &fat_images {
        let img = std::fs::read(src).map_err(io("reading", src))?;
        let mut files = Vec::new();
        for c in EFIBOOT_CFGS {
            if let Some(data) = efiboot::read_file(&img, c)? {
                let text = String::from_utf8_lossy(&data);
                if let Some(out) = remaster_one(
                    &format!("{name}:{c}"),
                    ConfigKind::GrubEfi,
                    &text,
                    efi_commands,
                    &edits,
                    &mut edited,
                    &mut defaults,
                ) {
                    files.push((*c, out.into_bytes()));
                }
            }
        }
        if !files.is_empty() || Some(dst) == appended_efi.as_ref() {
            let out = efiboot::replace_files(&img, &files)?;
            std::fs::create_dir_all(dst.parent().expect("has a parent"))
                .map_err(io("creating", dst))?;
            std::fs::write(dst, out).map_err(io("writing", dst))?;
            if name == EFIBOOT_IMG {
                updates.push(EFIBOOT_IMG.to_string());
            }
        }
    }

    // /kubeha/agent/ and /kubeha/node.toml.
    let agent_dir = stage.join(AGENT_DIR);
    std::fs::create_dir_all(&agent_dir).map_err(io("creating", &agent_dir))?;
    copy(&spec.agent.binary, &agent_dir.join(AGENT_BIN), 0o755)?;
    copy(&spec.agent.unit, &agent_dir.join(AGENT_UNIT), 0o644)?;
    let nc = stage.join(NODE_CONFIG);
    kubeha_model::fsutil::write_atomic(&nc, spec.node_config.to_toml().as_bytes(), 0o600, true)?;

    let tmp_iso = tmp.path().join("out.iso");
    let mut cmd = Cmd::new("xorriso")
        .env("LANG", "C")
        .arg("-indev")
        .arg_path(&spec.base)
        .arg("-outdev")
        .arg_path(&tmp_iso)
        .args(["-boot_image", "any", "replay"]);
    if let Some(img) = &appended_efi {
        // As mkksiso: the edited EFI image replaces partition 2, which replay's El Torito EFI entry points at.
        cmd = cmd
            .args([
                "-append_partition",
                "2",
                "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            ])
            .arg_path(img);
    }
    for u in &updates {
        cmd = cmd
            .arg("-update")
            .arg_path(new.join(u))
            .arg(format!("/{u}"));
    }
    if base
        .files
        .iter()
        .any(|f| f.starts_with(&format!("{MEDIA_DIR}/")))
    {
        // A medium remastered before: its old bundle goes, so no stale file stays beside the new ones.
        log::info!("the base already has /{MEDIA_DIR}: replacing it");
        cmd = cmd.args(["-rm_r", &format!("/{MEDIA_DIR}"), "--"]);
    }
    cmd = cmd
        .arg("-map")
        .arg_path(&ks_file)
        .arg(format!("/{KS_PATH}"));
    for entry in std::fs::read_dir(&spec.bundle).map_err(io("reading", &spec.bundle))? {
        let entry = entry.map_err(io("reading", &spec.bundle))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == AGENT_DIR || name == NODE_CONFIG {
            continue;
        }
        cmd = cmd
            .arg("-map")
            .arg_path(entry.path())
            .arg(format!("/{MEDIA_DIR}/{name}"));
    }
    cmd = cmd
        .arg("-map")
        .arg_path(&agent_dir)
        .arg(format!("/{MEDIA_DIR}/{AGENT_DIR}"))
        .arg("-map")
        .arg_path(&nc)
        .arg(format!("/{MEDIA_DIR}/{NODE_CONFIG}"));
    let agent_size = std::fs::metadata(&spec.agent.binary)
        .map(|m| m.len())
        .unwrap_or(0);
    let iso_level3 = verified.largest.max(agent_size) >= bundle::ISO_LEVEL3_SIZE;
    if iso_level3 {
        cmd = cmd.args(["-as", "mkisofs", "-iso-level", "3"]);
    }
    log::info!(
        "writing {} ({} MiB of bundle)",
        spec.output.display(),
        verified.bytes >> 20
    );
    run(&cmd)?;
    let md5 = match run(&Cmd::new("implantisomd5").arg_path(&tmp_iso)) {
        Ok(_) => true,
        Err(Error::Tool { status, .. }) if status == "could not start" => {
            log::warn!("implantisomd5 not found (package isomd5sum): the medium's self-check entry cannot verify it");
            false
        }
        Err(e) => return Err(e),
    };
    if spec.output.exists() && !spec.force {
        return Err(Error::Exists(spec.output.clone()));
    }
    std::fs::rename(&tmp_iso, &spec.output).map_err(io("writing", &spec.output))?;
    Ok(IsoReport {
        volid: base.volid,
        el,
        edited,
        args: add
            .iter()
            .chain(&spec.user_args.add)
            .map(|a| a.to_string())
            .collect(),
        removed: spec.user_args.remove.clone(),
        defaults,
        iso_level3,
        md5,
    })
}

/// One boot config: the install entry made default (no media check), the release's UEFI commands, the
/// arguments. `None` when it has no kernel line (left as it is).
fn remaster_one(
    name: &str,
    kind: ConfigKind,
    text: &str,
    efi_commands: (&str, &str),
    edits: &[ArgEdit],
    edited: &mut Vec<String>,
    defaults: &mut Vec<String>,
) -> Option<String> {
    let r = remaster_config(kind, text, efi_commands, edits);
    if r.lines == 0 {
        log::warn!("{name}: no kernel lines to edit");
        return None;
    }
    match &r.default {
        Some(d) => defaults.push(format!(
            "{name}: {}{}",
            d.entry,
            if d.added { " (added)" } else { "" }
        )),
        None => log::warn!("{name}: no top-level install entry: its default is left as it was"),
    }
    edited.push(name.to_string());
    Some(r.text)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).map_err(io("copying", from))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .map_err(io("writing", to))?;
    Ok(())
}

/// The bundle's RPMs are built for one EL release: refuse an ISO of another.
pub(crate) fn check_release(iso: &Path, iso_el: Option<u8>, bundle_el: u8) -> Result<()> {
    match iso_el {
        Some(e) if e != bundle_el => Err(Error::WrongRelease {
            path: iso.to_path_buf(),
            iso_el: e,
            bundle_el,
        }),
        _ => Ok(()),
    }
}
