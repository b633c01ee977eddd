//! The renderers: pure functions from the plan to the tree's text files (node configs, ks.cfg, the pxelinux and
//! GRUB menus, boot.ipxe), each a relative path, its bytes and its mode. No I/O.

use super::plan::{Entry, Plan};
use super::spec::{mac_file, INITRD, KERNEL};
use crate::bootcfg::Arg;
use crate::Result;

/// One text file of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// Its path in the tree.
    pub path: String,
    /// Its contents.
    pub bytes: Vec<u8>,
    /// Its mode.
    pub mode: u32,
    /// Written atomically and given the web server's group (a master's config with keys).
    pub secret: bool,
}

impl Rendered {
    fn new(path: impl Into<String>, text: String) -> Rendered {
        Rendered {
            path: path.into(),
            bytes: text.into_bytes(),
            mode: 0o644,
            secret: false,
        }
    }
}

/// Every text file of the tree, in the order they are written.
pub(crate) fn files(plan: &Plan) -> Result<Vec<Rendered>> {
    let mut out = Vec::new();
    // The node configs; the masters' carry the CA keys (--embed-secrets was asked for): never world-readable,
    // readable by the web server's group only when one is named.
    for c in &plan.configs {
        out.push(Rendered {
            path: c.path.clone(),
            bytes: c.config.to_toml().into_bytes(),
            mode: match (c.secret, plan.secret_group) {
                (false, _) => 0o644,
                (true, Some(_)) => 0o640,
                (true, None) => 0o600,
            },
            secret: c.secret,
        });
    }
    out.push(Rendered::new(
        "ks.cfg",
        kubeha_kickstart::render(plan.cluster, &plan.kickstart)?,
    ));
    // BIOS: pxelinux.
    out.push(Rendered::new(
        "pxelinux.cfg/default",
        pxelinux_default(&plan.entries),
    ));
    for e in &plan.entries {
        if let Some(mac) = &e.mac {
            out.push(Rendered::new(
                format!("pxelinux.cfg/{}", mac_file(mac)),
                pxelinux_node(e),
            ));
        }
    }
    // UEFI: GRUB, with the kernel commands of the release's own media (linuxefi on x86_64 EL7-9).
    out.push(Rendered::new(
        "grub.cfg",
        grub_root(&plan.entries, plan.grub_cmds),
    ));
    for e in &plan.entries {
        if let Some(mac) = &e.mac {
            out.push(Rendered::new(
                format!("grub.cfg-{}", mac_file(mac)),
                grub_node(e, plan.grub_cmds),
            ));
        }
    }
    // iPXE.
    out.push(Rendered::new("boot.ipxe", ipxe(&plan.entries, &plan.base)));
    Ok(out)
}

fn join(args: &[Arg]) -> String {
    args.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

const HEADER: &str =
    "kubeha: the default is the local disk; the installer WIPES the node's disk.\n\
    An installed node is not reinstalled (%pre halts) unless kubeha.reinstall=1: kubeha pxe ... --reinstall NAME.";

fn pxelinux_node(e: &Entry) -> String {
    let mut s = String::new();
    for l in HEADER.lines() {
        s.push_str(&format!("# {}\n", l.trim()));
    }
    s.push_str(&format!(
        "default {}\nprompt 0\ntimeout 50\n\nlabel local\n  localboot 0\n\nlabel install\n  kernel {KERNEL}\n  append initrd={INITRD} {}\n",
        if e.install { "install" } else { "local" },
        join(&e.args)
    ));
    s
}

fn pxelinux_default(entries: &[Entry]) -> String {
    let mut s = String::new();
    for l in HEADER.lines() {
        s.push_str(&format!("# {}\n", l.trim()));
    }
    s.push_str("# Machines without a per-MAC file: pick a node by name from the menu.\n");
    s.push_str(
        "ui menu.c32\ndefault local\nprompt 0\ntimeout 100\nmenu title kubeha network install\n\n",
    );
    s.push_str("label local\n  menu label Boot from ^local disk\n  localboot 0\n");
    for e in entries {
        s.push_str(&format!(
            "\nlabel install-{0}\n  menu label Install (wipe) {0} ({1})\n  kernel {KERNEL}\n  append initrd={INITRD} {2}\n",
            e.name,
            e.role,
            join(&e.args)
        ));
    }
    s
}

/// One install entry, with the kernel commands the release's UEFI GRUB wants
/// ([`crate::bootcfg::grub_efi_commands`]).
fn grub_entry(e: &Entry, (linux, initrd): (&str, &str)) -> String {
    format!(
        "menuentry 'Install (wipe) {0} ({1})' --id install-{0} {{\n\t{linux} /{KERNEL} {2}\n\t{initrd} /{INITRD}\n}}\n",
        e.name,
        e.role,
        join(&e.args)
    )
}

const GRUB_LOCAL: &str = "menuentry 'Boot from local disk' --id local {\n\texit\n}\n";

fn grub_node(e: &Entry, cmds: (&str, &str)) -> String {
    let mut s = String::new();
    for l in HEADER.lines() {
        s.push_str(&format!("# {}\n", l.trim()));
    }
    s.push_str(&format!(
        "set default={}\nset timeout=5\n\n{GRUB_LOCAL}{}",
        if e.install {
            format!("install-{}", e.name)
        } else {
            "local".into()
        },
        grub_entry(e, cmds)
    ));
    s
}

fn grub_root(entries: &[Entry], cmds: (&str, &str)) -> String {
    let mut s = String::new();
    for l in HEADER.lines() {
        s.push_str(&format!("# {}\n", l.trim()));
    }
    s.push_str("# Per-MAC choice: GRUB names the booting NIC's MAC net_default_mac (EL's grub2 also tries grub.cfg-01-<mac> itself).\n");
    for e in entries {
        if let Some(mac) = &e.mac {
            s.push_str(&format!(
                "if [ \"$net_default_mac\" = \"{mac}\" ]; then\n\tsource $prefix/grub.cfg-{}\n\treturn\nfi\n",
                mac_file(mac)
            ));
        }
    }
    s.push_str("\n# Any other machine: local disk by default, install entries by name.\nset default=local\nset timeout=10\n\n");
    s.push_str(GRUB_LOCAL);
    for e in entries {
        s.push_str(&grub_entry(e, cmds));
    }
    s
}

fn ipxe(entries: &[Entry], base: &str) -> String {
    let mut s = String::from("#!ipxe\n");
    for l in HEADER.lines() {
        s.push_str(&format!("# {}\n", l.trim()));
    }
    for e in entries {
        if let Some(mac) = &e.mac {
            let target = if e.install { e.name.as_str() } else { "local" };
            s.push_str(&format!("iseq ${{net0/mac}} {mac} && goto {target} ||\n"));
        }
    }
    s.push_str("goto local\n\n:local\necho kubeha: booting from the local disk\nexit\n");
    for e in entries {
        s.push_str(&format!(
            "\n:{0}\nkernel {base}/{KERNEL} initrd=initrd.img {1}\ninitrd {base}/{INITRD}\nboot\n",
            e.name,
            join(&e.args)
        ));
    }
    s
}
