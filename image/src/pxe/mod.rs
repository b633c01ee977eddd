//! `kubeha pxe`: a TFTP + HTTP tree that network-installs every node of the cluster.
//!
//! ```text
//! DIR/pxelinux.0, ldlinux.c32, menu.c32, ...    BIOS (pxelinux, from syslinux)
//! DIR/pxelinux.cfg/default                      unknown machines: local boot, install entries by name in the menu
//! DIR/pxelinux.cfg/01-<mac>                     one per node with a MAC in cluster.toml
//! DIR/grub.cfg, DIR/grub.cfg-01-<mac>           UEFI (GRUB): the same choice, by net_default_mac
//! DIR/boot.ipxe                                 iPXE: the same choice, by ${net0/mac}
//! DIR/images/pxeboot/{vmlinuz,initrd.img}       the installer kernel
//! DIR/ks.cfg                                    the kickstart (bundle over HTTP)
//! DIR/kubeha/                                   the bundle + agent/ + node.toml (+ nodes/<master>.toml with --embed-secrets)
//! DIR/os/                                       the base ISO's tree (with --base): inst.repo=
//! ```
//!
//! No reinstall loop: every per-MAC entry defaults to booting the local disk; only the nodes named with
//! `--install` (or all with `--install all`) default to the installer. After installing, rerun without `--install`
//! (or give firmware the disk first: a blank disk falls through to the network, an installed one boots itself).
//! Should an installed node still boot an install entry, the kickstart's `%pre` finds this cluster's root
//! filesystem label on its disk and halts without touching it. Reimaging a node is the deliberate
//! `kubeha pxe ... --reinstall NAME`, whose entries carry `kubeha.reinstall=1`.
//!
//! UEFI entries load the kernel with the commands of the release's own media (`linuxefi`/`initrdefi` on x86_64
//! EL7-9, [`crate::bootcfg::grub_efi_commands`]); the operator's `--remove-arg`/`--append` reach every install
//! entry of pxelinux, GRUB and iPXE.
//!
//! [`write_tree`] is plan → render → execute: `execute::read_inputs` checks and reads the inputs (the bundle's
//! manifest, the base ISO's release, the loaders this machine has), `plan::plan` turns the spec and those into a
//! typed plan without I/O (copies, extraction, node configs, one entry per node with its kernel arguments and
//! MAC), `render::files` turns the plan into the text files (node configs, ks.cfg, the menus, boot.ipxe) without
//! I/O, and `execute::execute` is the only part that writes: it carries out the plan in a staging directory and
//! moves the tree into place.

mod execute;
mod plan;
mod render;
mod spec;

pub use spec::{mac_file, sha256_hex, Boot, Install, PxeReport, PxeSpec};

use crate::{Error, Result};

/// Writes the tree.
pub fn write_tree(spec: &PxeSpec) -> Result<PxeReport> {
    plan::http_base(spec)?;
    if spec.output.exists() && !spec.force {
        return Err(Error::Exists(spec.output.clone()));
    }
    plan::check_names(spec)?;
    let (inputs, staging) = execute::read_inputs(spec)?;
    let plan = plan::plan(spec, &inputs)?;
    let files = render::files(&plan)?;
    execute::execute(&plan, &files, staging, &spec.output)?;
    Ok(plan.report())
}
