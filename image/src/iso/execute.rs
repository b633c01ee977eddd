//! The executor: the only part of `kubeha iso` that touches the file system or runs a tool. It reads what the
//! plan needs (the base ISO's inspection, the verified bundle) and then the boot configs the plan edits (the
//! appended EFI partition extracted with xorriso), then carries out a plan in the staging directory (the
//! kickstart, the edited configs and FAT images, the agent, the node config) and writes the image with xorriso,
//! renamed into place at the end.

use std::path::{Path, PathBuf};

use kubeha_runner::Cmd;

use super::inspect::{inspect, not_el};
use super::plan::{Fat, Inputs, Plan};
use super::render::{Configs, Rendered};
use super::spec::{IsoSpec, EFIBOOT_IMG, KS_PATH, MEDIA_DIR};
use crate::tool::run;
use crate::{bundle, io, Error, Result, AGENT_BIN, AGENT_DIR, AGENT_UNIT, NODE_CONFIG};

/// The staging directory's parts.
struct Dirs {
    /// The base's files read (its boot configs, efiboot.img).
    orig: PathBuf,
    /// The edited files that replace the base's.
    new: PathBuf,
    /// The files added under `/` and `/kubeha`.
    stage: PathBuf,
}

impl Dirs {
    fn in_(tmp: &Path) -> Dirs {
        Dirs {
            orig: tmp.join("orig"),
            new: tmp.join("new"),
            stage: tmp.join("stage"),
        }
    }
}

/// Inspects the base ISO into the staging directory `tmp`, verifies the bundle and lists its directory.
pub(crate) fn read_inputs(spec: &IsoSpec, tmp: &Path) -> Result<Inputs> {
    // The base first: reading it takes seconds, hashing a bundle can take minutes.
    let base = inspect(&spec.base, &Dirs::in_(tmp).orig)?;
    let verified = bundle::verify(&spec.bundle)?;
    let mut bundle_entries = Vec::new();
    for entry in std::fs::read_dir(&spec.bundle).map_err(io("reading", &spec.bundle))? {
        let entry = entry.map_err(io("reading", &spec.bundle))?;
        bundle_entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    let agent_size = std::fs::metadata(&spec.agent.binary)
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(Inputs {
        base,
        verified,
        bundle_entries,
        agent_size,
    })
}

/// Reads the boot configs the plan edits: the tree's (extracted by [`inspect`]) and the FAT images (the appended
/// EFI partition extracted with xorriso).
pub(crate) fn read_configs(plan: &Plan, tmp: &Path) -> Result<Configs> {
    let orig = Dirs::in_(tmp).orig;
    let mut out = Configs::default();
    for c in &plan.configs {
        let src = orig.join(c);
        let text = std::fs::read_to_string(&src).map_err(io("reading", &src))?;
        out.tree.push((c, text));
    }
    for fat in &plan.fat {
        let src = match fat {
            Fat::Tree => orig.join(EFIBOOT_IMG),
            Fat::Appended => {
                let boot_dir = tmp.join("boot-images");
                std::fs::create_dir_all(&boot_dir).map_err(io("creating", &boot_dir))?;
                run(&Cmd::new("xorriso")
                    .env("LANG", "C")
                    .args(["-osirrox", "on", "-indev"])
                    .arg_path(plan.base)
                    .arg("-extract_boot_images")
                    .arg(format!("{}/", boot_dir.display())))?;
                let img = boot_dir.join("eltorito_img2_uefi.img");
                if !img.is_file() {
                    return Err(not_el(
                        plan.base,
                        "its EFI boot partition could not be extracted",
                    ));
                }
                img
            }
        };
        let img = std::fs::read(&src).map_err(io("reading", &src))?;
        out.fat.push((*fat, img));
    }
    Ok(out)
}

/// Writes the rendered files, the agent and the node config into the staging directory `tmp`, then the image
/// with xorriso (and its media check sum with implantisomd5, when installed), renamed to the output. Returns
/// whether implantisomd5 ran.
pub(crate) fn execute(spec: &IsoSpec, plan: &Plan, files: &Rendered, tmp: &Path) -> Result<bool> {
    let Dirs { new, stage, .. } = Dirs::in_(tmp);
    std::fs::create_dir_all(&stage).map_err(io("creating", &stage))?;
    let ks_file = stage.join(KS_PATH);
    std::fs::write(&ks_file, &files.kickstart).map_err(io("writing", &ks_file))?;

    let mut updates: Vec<String> = Vec::new();
    for (c, text) in &files.configs {
        let dst = new.join(c);
        std::fs::create_dir_all(dst.parent().expect("has a parent"))
            .map_err(io("creating", &new))?;
        std::fs::write(&dst, text).map_err(io("writing", &dst))?;
        updates.push(c.clone());
    }
    let mut appended_efi = None;
    for (fat, img) in &files.fat {
        let dst = match fat {
            Fat::Tree => new.join(EFIBOOT_IMG),
            Fat::Appended => tmp.join("efi-partition.img"),
        };
        std::fs::create_dir_all(dst.parent().expect("has a parent"))
            .map_err(io("creating", &dst))?;
        std::fs::write(&dst, img).map_err(io("writing", &dst))?;
        match fat {
            Fat::Tree => updates.push(EFIBOOT_IMG.to_string()),
            Fat::Appended => appended_efi = Some(dst),
        }
    }

    // /kubeha/agent/ and /kubeha/node.toml.
    let agent_dir = stage.join(AGENT_DIR);
    std::fs::create_dir_all(&agent_dir).map_err(io("creating", &agent_dir))?;
    copy(&spec.agent.binary, &agent_dir.join(AGENT_BIN), 0o755)?;
    copy(&spec.agent.unit, &agent_dir.join(AGENT_UNIT), 0o644)?;
    let nc = stage.join(NODE_CONFIG);
    kubeha_model::fsutil::write_atomic(&nc, plan.node_config.to_toml().as_bytes(), 0o600, true)?;

    let tmp_iso = tmp.join("out.iso");
    let mut cmd = Cmd::new("xorriso")
        .env("LANG", "C")
        .arg("-indev")
        .arg_path(plan.base)
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
    if plan.replace_media {
        // A medium remastered before: its old bundle goes, so no stale file stays beside the new ones.
        log::info!("the base already has /{MEDIA_DIR}: replacing it");
        cmd = cmd.args(["-rm_r", &format!("/{MEDIA_DIR}"), "--"]);
    }
    cmd = cmd
        .arg("-map")
        .arg_path(&ks_file)
        .arg(format!("/{KS_PATH}"));
    for (from, to) in &plan.bundle_maps {
        cmd = cmd.arg("-map").arg_path(from).arg(to);
    }
    cmd = cmd
        .arg("-map")
        .arg_path(&agent_dir)
        .arg(format!("/{MEDIA_DIR}/{AGENT_DIR}"))
        .arg("-map")
        .arg_path(&nc)
        .arg(format!("/{MEDIA_DIR}/{NODE_CONFIG}"));
    if plan.iso_level3 {
        cmd = cmd.args(["-as", "mkisofs", "-iso-level", "3"]);
    }
    log::info!(
        "writing {} ({} MiB of bundle)",
        spec.output.display(),
        plan.bundle_bytes >> 20
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
    Ok(md5)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).map_err(io("copying", from))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .map_err(io("writing", to))?;
    Ok(())
}
