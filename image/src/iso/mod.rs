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
//!
//! [`remaster`] is plan → render → execute: `execute::read_inputs` inspects the base ([`inspect`]) and verifies
//! the bundle, `plan::plan` turns the spec and those into a typed plan without I/O (every check: architecture,
//! release, the kickstart's values, the kernel arguments; the boot configs to edit, the files mapped under
//! `/kubeha`), `execute::read_configs` reads the boot configs the plan names, `render::files` renders the
//! kickstart and the edited configs and FAT images without I/O (and refuses a base without a kernel line), and
//! `execute::execute` is the only part that writes: the staging directory, then xorriso.

mod execute;
mod inspect;
mod plan;
mod render;
mod spec;

pub use inspect::{check_volume_size, extract, inspect, BaseIso};
pub(crate) use plan::check_release;
pub use spec::{
    IsoReport, IsoSpec, EFIBOOT_CFGS, EFIBOOT_IMG, GRUB_CFGS, ISOLINUX_CFGS, KS_PATH, MEDIA_DIR,
};

use crate::{Error, Result};

/// Remasters the base ISO.
pub fn remaster(spec: &IsoSpec) -> Result<IsoReport> {
    if spec.output.exists() && !spec.force {
        return Err(Error::Exists(spec.output.clone()));
    }
    spec.agent.check()?;
    let tmp = crate::staging_dir(&spec.output, ".kubeha-iso-")?;
    let inputs = execute::read_inputs(spec, tmp.path())?;
    let plan = plan::plan(spec, &inputs)?;
    let el = plan.el;
    if el != spec.cluster.install.el {
        log::warn!(
            "the kickstart is for EL{el} (the ISO's); cluster.toml says install.el = {}",
            spec.cluster.install.el
        );
    }
    log::info!(
        "base ISO {}: volume id '{}', {} EL{el}",
        spec.base.display(),
        plan.volid,
        inputs.base.arch
    );
    let read = execute::read_configs(&plan, tmp.path())?;
    let files = render::files(&plan, &read)?;
    let md5 = execute::execute(spec, &plan, &files, tmp.path())?;
    Ok(IsoReport {
        volid: plan.volid,
        el,
        edited: files.edited,
        args: plan
            .add
            .iter()
            .chain(&spec.user_args.add)
            .map(|a| a.to_string())
            .collect(),
        removed: spec.user_args.remove.clone(),
        defaults: files.defaults,
        iso_level3: plan.iso_level3,
        md5,
    })
}
