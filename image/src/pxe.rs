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

use std::path::{Path, PathBuf};

use kubeha_kickstart::{Options, Source};
use kubeha_model::cluster::{normalize_mac, Role};
use kubeha_model::kernel_args::{ConfigLocation, KernelArgs};
use kubeha_model::{Cluster, NodeConfig};

use crate::bootcfg::{grub_efi_commands, Arg, ArgEdit};
use crate::tool::run;
use crate::{bundle, io, Agent, Error, Result, AGENT_BIN, AGENT_DIR, AGENT_UNIT, NODE_CONFIG};
use kubeha_runner::Cmd;

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

/// Where the installer kernel comes from.
#[derive(Debug, Clone)]
pub enum Boot {
    /// A kernel and initrd (the OS tree is `os_url`).
    Files {
        /// vmlinuz.
        kernel: PathBuf,
        /// initrd.img.
        initrd: PathBuf,
    },
    /// An EL install ISO: its tree is extracted to `DIR/os/` and served as `inst.repo=`.
    Iso(PathBuf),
}

/// Which nodes default to the installer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// None: every entry boots the local disk (the default).
    None,
    /// Every node.
    All,
    /// These nodes.
    Nodes(Vec<String>),
}

impl Install {
    fn wants(&self, name: &str) -> bool {
        match self {
            Install::None => false,
            Install::All => true,
            Install::Nodes(n) => n.iter().any(|x| x == name),
        }
    }
}

/// Everything `kubeha pxe` needs.
#[derive(Debug, Clone)]
pub struct PxeSpec<'a> {
    /// The tree to write.
    pub output: PathBuf,
    /// The URL `output` is served at over HTTP (any web server).
    pub http_base: String,
    /// The installer kernel.
    pub boot: Boot,
    /// The OS tree URL (`inst.repo=`) when `boot` is `Files`.
    pub os_url: Option<String>,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The shared node config (`kubeha/node.toml`): worker-grade, no private key.
    pub node_config: &'a NodeConfig,
    /// Per-master node configs with keys (`--embed-secrets`): served as `kubeha/nodes/<name>.toml`, pinned by
    /// sha256 in that master's entry.
    pub master_configs: Vec<(String, NodeConfig)>,
    /// The group of the web server that serves the tree: the master configs are written 0640 with that group
    /// (`--web-group`); `None`: 0600, readable only by the tree's owner (a server running as that user).
    pub secret_group: Option<u32>,
    /// Which nodes install by default.
    pub install: Install,
    /// Which nodes reinstall by default: they install, and their entries carry `kubeha.reinstall=1`, which lets
    /// the kickstart's `%pre` wipe a disk that already holds this cluster's node (deliberate reimaging).
    pub reinstall: Install,
    /// The operator's `--remove-arg`/`--append`, applied to every install entry after kubeha's own arguments.
    pub user_args: ArgEdit,
    /// The agent files.
    pub agent: Agent,
    /// The kickstart's EL release (default: the ISO's, else cluster.toml's).
    pub el: Option<u8>,
    /// A GRUB EFI network image to serve as `grubx64.efi` (default: the ISO's EFI/BOOT/grubx64.efi if any).
    pub grub_efi: Option<PathBuf>,
    /// Replace an existing tree.
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct PxeReport {
    /// Nodes with a per-MAC entry: name, MAC, whether it installs by default, and whether it reinstalls
    /// (`kubeha.reinstall=1`).
    pub nodes: Vec<(String, String, bool, bool)>,
    /// The kickstart's EL release.
    pub el: u8,
    /// Boot loader files that could not be found on this machine (the operator supplies them).
    pub missing_loaders: Vec<String>,
}

/// BIOS loader files, from syslinux (Debian, then EL paths).
const SYSLINUX: &[(&str, &[&str])] = &[
    (
        "pxelinux.0",
        &[
            "/usr/lib/PXELINUX/pxelinux.0",
            "/usr/share/syslinux/pxelinux.0",
        ],
    ),
    (
        "ldlinux.c32",
        &[
            "/usr/lib/syslinux/modules/bios/ldlinux.c32",
            "/usr/share/syslinux/ldlinux.c32",
        ],
    ),
    (
        "menu.c32",
        &[
            "/usr/lib/syslinux/modules/bios/menu.c32",
            "/usr/share/syslinux/menu.c32",
        ],
    ),
    (
        "libutil.c32",
        &[
            "/usr/lib/syslinux/modules/bios/libutil.c32",
            "/usr/share/syslinux/libutil.c32",
        ],
    ),
    (
        "libcom32.c32",
        &[
            "/usr/lib/syslinux/modules/bios/libcom32.c32",
            "/usr/share/syslinux/libcom32.c32",
        ],
    ),
];

const KERNEL: &str = "images/pxeboot/vmlinuz";
const INITRD: &str = "images/pxeboot/initrd.img";

/// `01-52-54-00-aa-00-01`: pxelinux's and EL grub's per-MAC file name suffix.
pub fn mac_file(mac: &str) -> String {
    format!("01-{}", mac.replace(':', "-"))
}

struct Entry {
    name: String,
    role: Role,
    mac: Option<String>,
    args: Vec<Arg>,
}

/// Writes the tree.
pub fn write_tree(spec: &PxeSpec) -> Result<PxeReport> {
    let base = spec.http_base.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://"))
        || base.contains(char::is_whitespace)
    {
        return Err(Error::Value {
            field: "--http-base".into(),
            message: format!("'{}' is not an http(s) URL", spec.http_base),
        });
    }
    if spec.output.exists() && !spec.force {
        return Err(Error::Exists(spec.output.clone()));
    }
    for (flag, set) in [
        ("--install", &spec.install),
        ("--reinstall", &spec.reinstall),
    ] {
        if let Install::Nodes(names) = set {
            for n in names {
                if spec.cluster.node(n).is_none() {
                    return Err(Error::Value {
                        field: flag.into(),
                        message: format!("'{n}' is not a node of the cluster"),
                    });
                }
            }
        }
    }
    let installs = |name: &str| spec.install.wants(name) || spec.reinstall.wants(name);
    spec.agent.check()?;
    if let Boot::Iso(iso) = &spec.boot {
        // A truncated or non-ISO base is named before the bundle is hashed (seconds against minutes).
        let size = std::fs::metadata(iso).map_err(io("reading", iso))?.len();
        crate::iso::check_volume_size(iso, size)?;
    }
    let verified = bundle::verify(&spec.bundle)?;
    let tmp = crate::staging_dir(&spec.output, ".kubeha-pxe-")?;
    let root = tmp.path();

    // The installer kernel and the OS tree.
    let (repo, iso_el) = match &spec.boot {
        Boot::Files { kernel, initrd } => {
            copy(kernel, &root.join(KERNEL), 0o644)?;
            copy(initrd, &root.join(INITRD), 0o644)?;
            let u = spec.os_url.clone().ok_or_else(|| Error::Value {
                field: "--os-url".into(),
                message: "with --kernel/--initrd give the OS installation tree's URL (inst.repo=), or use --base".into(),
            })?;
            (u, None)
        }
        Boot::Iso(iso) => {
            let info_dir = tmp.path().join(".inspect");
            let b = crate::iso::inspect(iso, &info_dir)?;
            if b.arch != verified.manifest.profile.arch {
                return Err(Error::WrongArch {
                    path: iso.clone(),
                    iso_arch: b.arch,
                    want: verified.manifest.profile.arch.clone(),
                });
            }
            crate::iso::check_release(iso, b.el, verified.manifest.profile.el)?;
            std::fs::remove_dir_all(&info_dir).map_err(io("removing", &info_dir))?;
            let os = root.join("os");
            run(&Cmd::new("xorriso")
                .env("LANG", "C")
                .args(["-osirrox", "on", "-indev"])
                .arg_path(iso)
                .arg("-extract")
                .arg("/")
                .arg_path(&os))?;
            make_writable(&os)?;
            copy(&os.join(KERNEL), &root.join(KERNEL), 0o644)?;
            copy(&os.join(INITRD), &root.join(INITRD), 0o644)?;
            if spec.grub_efi.is_none() {
                let g = os.join("EFI/BOOT/grubx64.efi");
                if g.is_file() {
                    copy(&g, &root.join("grubx64.efi"), 0o644)?;
                    let shim = os.join("EFI/BOOT/BOOTX64.EFI");
                    if shim.is_file() {
                        copy(&shim, &root.join("shimx64.efi"), 0o644)?;
                    }
                }
            }
            (format!("{base}/os"), b.el)
        }
    };
    if let Some(g) = &spec.grub_efi {
        copy(g, &root.join("grubx64.efi"), 0o644)?;
    }
    let el = spec.el.or(iso_el).unwrap_or(spec.cluster.install.el);

    // The bundle, agent and node configs under kubeha/.
    let kdir = root.join(kubeha_kickstart::MEDIA_DIR);
    for f in verified
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain([kubeha_model::bundle::MANIFEST])
    {
        link_or_copy(&spec.bundle.join(f), &kdir.join(f))?;
    }
    // The signature over bundle.toml (`kubeha bundle sign`) is not listed in it; it goes along when there is one.
    let sig = kubeha_model::bundle::MANIFEST_SIGNATURE;
    if spec.bundle.join(sig).is_file() {
        link_or_copy(&spec.bundle.join(sig), &kdir.join(sig))?;
    }
    copy(
        &spec.agent.binary,
        &kdir.join(AGENT_DIR).join(AGENT_BIN),
        0o755,
    )?;
    copy(
        &spec.agent.unit,
        &kdir.join(AGENT_DIR).join(AGENT_UNIT),
        0o644,
    )?;
    let mut shared = spec.node_config.clone();
    shared.bundle.url = Some(format!("{base}/{}", kubeha_kickstart::MEDIA_DIR));
    write(&kdir.join(NODE_CONFIG), shared.to_toml().as_bytes(), 0o644)?;
    let mut pinned = Vec::new();
    for (name, nc) in &spec.master_configs {
        let mut nc = nc.clone();
        nc.bundle.url = shared.bundle.url.clone();
        let text = nc.to_toml();
        let rel = format!("{}/nodes/{name}.toml", kubeha_kickstart::MEDIA_DIR);
        // These carry the CA keys (--embed-secrets was asked for): written atomically, never world-readable,
        // readable by the web server's group only when one is named.
        let p = root.join(&rel);
        let mode = if spec.secret_group.is_some() {
            0o640
        } else {
            0o600
        };
        kubeha_model::fsutil::write_atomic(&p, text.as_bytes(), mode, true).map_err(|e| {
            Error::Value {
                field: p.display().to_string(),
                message: e.to_string(),
            }
        })?;
        if let Some(gid) = spec.secret_group {
            std::os::unix::fs::chown(&p, None, Some(gid))
                .map_err(io("setting the group of", &p))?;
        }
        pinned.push((
            name.clone(),
            format!("{base}/{rel}"),
            sha256_hex(text.as_bytes()),
        ));
    }

    // The kickstart: bundle over HTTP.
    let mut ko = Options::new(
        el,
        Source::Http(format!("{base}/{}", kubeha_kickstart::MEDIA_DIR)),
    );
    ko.packages = verified.manifest.requested_packages();
    let ks = kubeha_kickstart::render(spec.cluster, &ko)?;
    write(&root.join("ks.cfg"), ks.as_bytes(), 0o644)?;

    // One entry per node.
    let common = vec![
        Arg::kv("inst.repo", &repo),
        Arg::kv("inst.ks", &format!("{base}/ks.cfg")),
        Arg::kv("ip", "dhcp"),
    ];
    let mut entries = Vec::new();
    for (role, n) in spec.cluster.nodes() {
        let pin = pinned.iter().find(|(m, _, _)| m == &n.name);
        let kubeha = KernelArgs {
            role: Some(role),
            name: Some(n.name.clone()),
            config: pin.map(|(_, url, _)| ConfigLocation::Http(url.clone())),
            config_sha256: pin.map(|(_, _, sha)| sha.clone()),
            reinstall: spec.reinstall.wants(&n.name),
            ..Default::default()
        };
        kubeha.validate().map_err(|e| Error::Value {
            field: n.name.clone(),
            message: e.to_string(),
        })?;
        let mut args = common.clone();
        args.extend(kubeha.args());
        let args = spec.user_args.apply(args);
        let mac = match &n.mac {
            Some(m) => Some(normalize_mac(m).ok_or_else(|| Error::Value {
                field: format!("{}.mac", n.name),
                message: format!("'{m}' is not a MAC address"),
            })?),
            None => None,
        };
        entries.push(Entry {
            name: n.name.clone(),
            role,
            mac,
            args,
        });
    }

    // BIOS: pxelinux.
    let mut missing = Vec::new();
    for (file, cands) in SYSLINUX {
        match cands.iter().map(Path::new).find(|p| p.is_file()) {
            Some(p) => copy(p, &root.join(file), 0o644)?,
            None => missing.push(file.to_string()),
        }
    }
    let cfg_dir = root.join("pxelinux.cfg");
    write(
        &cfg_dir.join("default"),
        pxelinux_default(&entries).as_bytes(),
        0o644,
    )?;
    for e in &entries {
        if let Some(mac) = &e.mac {
            let text = pxelinux_node(e, installs(&e.name));
            write(&cfg_dir.join(mac_file(mac)), text.as_bytes(), 0o644)?;
        }
    }
    // UEFI: GRUB, with the kernel commands of the release's own media (linuxefi on x86_64 EL7-9).
    let cmds = grub_efi_commands(el, &verified.manifest.profile.arch);
    write(
        &root.join("grub.cfg"),
        grub_root(&entries, cmds).as_bytes(),
        0o644,
    )?;
    for e in &entries {
        if let Some(mac) = &e.mac {
            let text = grub_node(e, installs(&e.name), cmds);
            write(
                &root.join(format!("grub.cfg-{}", mac_file(mac))),
                text.as_bytes(),
                0o644,
            )?;
        }
    }
    // iPXE.
    write(
        &root.join("boot.ipxe"),
        ipxe(&entries, &base, &installs).as_bytes(),
        0o644,
    )?;

    if spec.output.exists() {
        std::fs::remove_dir_all(&spec.output).map_err(io("replacing", &spec.output))?;
    }
    let kept = tmp.keep();
    set_mode(&kept, 0o755)?;
    std::fs::rename(&kept, &spec.output).map_err(io("writing", &spec.output))?;
    Ok(PxeReport {
        nodes: entries
            .iter()
            .filter_map(|e| {
                e.mac.as_ref().map(|m| {
                    (
                        e.name.clone(),
                        m.clone(),
                        installs(&e.name),
                        spec.reinstall.wants(&e.name),
                    )
                })
            })
            .collect(),
        el,
        missing_loaders: missing,
    })
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

fn pxelinux_node(e: &Entry, install: bool) -> String {
    let mut s = String::new();
    for l in HEADER.lines() {
        s.push_str(&format!("# {}\n", l.trim()));
    }
    s.push_str(&format!(
        "default {}\nprompt 0\ntimeout 50\n\nlabel local\n  localboot 0\n\nlabel install\n  kernel {KERNEL}\n  append initrd={INITRD} {}\n",
        if install { "install" } else { "local" },
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

/// One install entry, with the kernel commands the release's UEFI GRUB wants ([`grub_efi_commands`]).
fn grub_entry(e: &Entry, (linux, initrd): (&str, &str)) -> String {
    format!(
        "menuentry 'Install (wipe) {0} ({1})' --id install-{0} {{\n\t{linux} /{KERNEL} {2}\n\t{initrd} /{INITRD}\n}}\n",
        e.name,
        e.role,
        join(&e.args)
    )
}

const GRUB_LOCAL: &str = "menuentry 'Boot from local disk' --id local {\n\texit\n}\n";

fn grub_node(e: &Entry, install: bool, cmds: (&str, &str)) -> String {
    let mut s = String::new();
    for l in HEADER.lines() {
        s.push_str(&format!("# {}\n", l.trim()));
    }
    s.push_str(&format!(
        "set default={}\nset timeout=5\n\n{GRUB_LOCAL}{}",
        if install {
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

fn ipxe(entries: &[Entry], base: &str, installs: &dyn Fn(&str) -> bool) -> String {
    let mut s = String::from("#!ipxe\n");
    for l in HEADER.lines() {
        s.push_str(&format!("# {}\n", l.trim()));
    }
    for e in entries {
        if let Some(mac) = &e.mac {
            let target = if installs(&e.name) {
                e.name.as_str()
            } else {
                "local"
            };
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

fn write(p: &Path, data: &[u8], mode: u32) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    std::fs::write(p, data).map_err(io("writing", p))?;
    set_mode(p, mode)
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    Ok(
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(io("writing", p))?,
    )
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    std::fs::copy(from, to).map_err(io("copying", from))?;
    set_mode(to, mode)
}

/// Hard-links a bundle file into the tree (bundles are large), copying across filesystems.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).map_err(io("copying", from))?;
    }
    Ok(())
}

fn make_writable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        set_mode(&d, 0o755)?;
        for e in std::fs::read_dir(&d).map_err(io("reading", &d))? {
            let p = e.map_err(io("reading", &d))?.path();
            let m = std::fs::symlink_metadata(&p).map_err(io("reading", &p))?;
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let mode = m.permissions().mode() | 0o644;
                set_mode(&p, mode & 0o7777)?;
            }
        }
    }
    Ok(())
}
