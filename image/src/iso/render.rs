//! The renderers: pure functions from the plan and the boot configs read from the base to what the medium gets
//! new: the kickstart, the edited boot configs (the install entry made default without the media check, the
//! release's UEFI commands, the kernel arguments; [`crate::bootcfg::remaster_config`]) and the FAT images with
//! their GRUB configs edited. No I/O.

use super::inspect::not_el;
use super::plan::{Fat, Plan};
use super::spec::{config_kind, EFIBOOT_CFGS};
use crate::bootcfg::{remaster_config, ArgEdit, ConfigKind};
use crate::{efiboot, Result};

/// The boot configs read from the base (by [`super::execute::read_configs`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Configs {
    /// Each of the plan's tree configs: its ISO path and text.
    pub tree: Vec<(&'static str, String)>,
    /// Each of the plan's FAT images and its bytes.
    pub fat: Vec<(Fat, Vec<u8>)>,
}

/// What the medium gets new.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rendered {
    /// The kickstart.
    pub kickstart: String,
    /// The edited tree configs: the ISO path and the text.
    pub configs: Vec<(String, String)>,
    /// The FAT images to write: efiboot.img when one of its configs was edited, the appended partition always.
    pub fat: Vec<(Fat, Vec<u8>)>,
    /// The configs edited (ISO paths; `images/efiboot.img:EFI/BOOT/grub.cfg` for a FAT copy).
    pub edited: Vec<String>,
    /// Each edited config and the entry now its default, "(added)" when it was made from the media-check entry.
    pub defaults: Vec<String>,
}

/// Renders the kickstart and edits the boot configs. A base whose tree has no kernel line to edit is refused.
pub(crate) fn files(plan: &Plan, read: &Configs) -> Result<Rendered> {
    let mut out = Rendered {
        kickstart: kubeha_kickstart::render(plan.cluster, &plan.kickstart)?,
        ..Rendered::default()
    };
    for (c, text) in &read.tree {
        if let Some(text) = remaster_one(
            c,
            config_kind(c),
            text,
            plan.efi_commands,
            &plan.edits,
            &mut out.edited,
            &mut out.defaults,
        ) {
            out.configs.push((c.to_string(), text));
        }
    }
    if out.edited.is_empty() {
        return Err(not_el(
            plan.base,
            "its boot configs have no isolinux append or grub linux lines",
        ));
    }
    // The FAT copies of grub.cfg: images/efiboot.img in the tree, and/or the appended EFI partition.
    for (fat, img) in &read.fat {
        let mut files = Vec::new();
        for c in EFIBOOT_CFGS {
            if let Some(data) = efiboot::read_file(img, c)? {
                let text = String::from_utf8_lossy(&data);
                if let Some(edited) = remaster_one(
                    &format!("{}:{c}", fat.name()),
                    ConfigKind::GrubEfi,
                    &text,
                    plan.efi_commands,
                    &plan.edits,
                    &mut out.edited,
                    &mut out.defaults,
                ) {
                    files.push((*c, edited.into_bytes()));
                }
            }
        }
        if !files.is_empty() || *fat == Fat::Appended {
            out.fat.push((*fat, efiboot::replace_files(img, &files)?));
        }
    }
    Ok(out)
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
