//! The plan: a pure function from the spec and what was read of the inputs (the bundle's manifest, the base
//! ISO's release, which loaders this machine has) to what the tree holds: the copies and the extraction, the
//! node configs, the kickstart's options and one entry (kernel arguments, MAC, default) per node. No I/O.

use std::path::PathBuf;

use kubeha_kickstart::{Options, Source};
use kubeha_model::cluster::{normalize_mac, Role};
use kubeha_model::kernel_args::{ConfigLocation, KernelArgs};
use kubeha_model::{Cluster, NodeConfig};

use super::spec::{sha256_hex, Boot, Install, PxeReport, PxeSpec, INITRD, KERNEL};
use crate::bootcfg::{grub_efi_commands, Arg};
use crate::{Error, Result, AGENT_BIN, AGENT_DIR, AGENT_UNIT, NODE_CONFIG};

/// What was read before planning (by [`super::execute::read_inputs`]).
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    /// The bundle's files (bundle.toml's `files`), without bundle.toml itself.
    pub bundle_files: Vec<String>,
    /// Whether the bundle has a signature over bundle.toml (`kubeha bundle sign`).
    pub signature: bool,
    /// The bundle's architecture.
    pub arch: String,
    /// The packages the kickstart installs (the bundle's requested ones).
    pub packages: Vec<String>,
    /// The base ISO's EL release, when there is an ISO and it says.
    pub iso_el: Option<u8>,
    /// Each BIOS loader file and where this machine has it, if anywhere.
    pub loaders: Vec<(String, Option<PathBuf>)>,
}

/// Where a copy reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Src {
    /// A file of this machine.
    Host(PathBuf),
    /// A file already in the tree (relative), e.g. the extracted ISO's.
    Tree(String),
}

/// One file-system step before the text files are written, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Extract the whole ISO to `to` (relative) and make it writable.
    Extract { iso: PathBuf, to: String },
    /// Copy a file to `to` (relative) with `mode`.
    Copy { from: Src, to: String, mode: u32 },
    /// When `from` is a file, copy it to `to` with `mode`, then do `then`; otherwise nothing.
    CopyIfFile {
        from: Src,
        to: String,
        mode: u32,
        then: Vec<Step>,
    },
    /// Hard-link a bundle file to `to` (relative), copying across file systems.
    Link { from: PathBuf, to: String },
}

/// A node config the tree serves.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Its path in the tree.
    pub path: String,
    /// The config, its bundle URL set.
    pub config: NodeConfig,
    /// A master's config with keys: written atomically, 0640 with the web server's group or 0600.
    pub secret: bool,
}

/// One node's install entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub role: Role,
    /// Its MAC, normalized: it then has its own per-MAC menus.
    pub mac: Option<String>,
    /// The installer's kernel arguments.
    pub args: Vec<Arg>,
    /// Whether its per-MAC menus default to the installer.
    pub install: bool,
    /// Whether its entries carry `kubeha.reinstall=1`.
    pub reinstall: bool,
}

/// The whole tree, before anything is rendered or written.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    /// The HTTP base URL, without a trailing `/`.
    pub base: String,
    /// The kickstart's EL release.
    pub el: u8,
    /// The cluster (the kickstart renders from it).
    pub cluster: &'a Cluster,
    /// The kickstart's options.
    pub kickstart: Options,
    /// GRUB's kernel and initrd commands for the release's UEFI media.
    pub grub_cmds: (&'static str, &'static str),
    /// The copies and the extraction, in order.
    pub steps: Vec<Step>,
    /// `kubeha/node.toml`, then the masters' configs.
    pub configs: Vec<Config>,
    /// The group the secret configs are given.
    pub secret_group: Option<u32>,
    /// One per node, masters first.
    pub entries: Vec<Entry>,
    /// The BIOS loader files this machine does not have.
    pub missing_loaders: Vec<String>,
}

impl Plan<'_> {
    /// The report `kubeha pxe` prints.
    pub fn report(&self) -> PxeReport {
        PxeReport {
            nodes: self
                .entries
                .iter()
                .filter_map(|e| {
                    e.mac
                        .as_ref()
                        .map(|m| (e.name.clone(), m.clone(), e.install, e.reinstall))
                })
                .collect(),
            el: self.el,
            missing_loaders: self.missing_loaders.clone(),
        }
    }
}

/// The HTTP base URL without its trailing `/`, refused unless http(s).
pub(crate) fn http_base(spec: &PxeSpec) -> Result<String> {
    let base = spec.http_base.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://"))
        || base.contains(char::is_whitespace)
    {
        return Err(Error::Value {
            field: "--http-base".into(),
            message: format!("'{}' is not an http(s) URL", spec.http_base),
        });
    }
    Ok(base)
}

/// Every node named by `--install`/`--reinstall` is one of the cluster's.
pub(crate) fn check_names(spec: &PxeSpec) -> Result<()> {
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
    Ok(())
}

/// Plans the tree.
pub(crate) fn plan<'a>(spec: &PxeSpec<'a>, inputs: &Inputs) -> Result<Plan<'a>> {
    let base = http_base(spec)?;
    let mut steps = Vec::new();
    let kernel = |from| Step::Copy {
        from,
        to: KERNEL.into(),
        mode: 0o644,
    };
    let initrd = |from| Step::Copy {
        from,
        to: INITRD.into(),
        mode: 0o644,
    };

    // The installer kernel and the OS tree.
    let repo = match &spec.boot {
        Boot::Files {
            kernel: k,
            initrd: i,
        } => {
            steps.push(kernel(Src::Host(k.clone())));
            steps.push(initrd(Src::Host(i.clone())));
            spec.os_url.clone().ok_or_else(|| Error::Value {
                field: "--os-url".into(),
                message: "with --kernel/--initrd give the OS installation tree's URL (inst.repo=), or use --base".into(),
            })?
        }
        Boot::Iso(iso) => {
            steps.push(Step::Extract {
                iso: iso.clone(),
                to: "os".into(),
            });
            steps.push(kernel(Src::Tree(format!("os/{KERNEL}"))));
            steps.push(initrd(Src::Tree(format!("os/{INITRD}"))));
            if spec.grub_efi.is_none() {
                steps.push(Step::CopyIfFile {
                    from: Src::Tree("os/EFI/BOOT/grubx64.efi".into()),
                    to: "grubx64.efi".into(),
                    mode: 0o644,
                    then: vec![Step::CopyIfFile {
                        from: Src::Tree("os/EFI/BOOT/BOOTX64.EFI".into()),
                        to: "shimx64.efi".into(),
                        mode: 0o644,
                        then: vec![],
                    }],
                });
            }
            format!("{base}/os")
        }
    };
    if let Some(g) = &spec.grub_efi {
        steps.push(Step::Copy {
            from: Src::Host(g.clone()),
            to: "grubx64.efi".into(),
            mode: 0o644,
        });
    }
    let iso_el = match spec.boot {
        Boot::Iso(_) => inputs.iso_el,
        Boot::Files { .. } => None,
    };
    let el = spec.el.or(iso_el).unwrap_or(spec.cluster.install.el);

    // The bundle, agent and node configs under kubeha/.
    let media = kubeha_kickstart::MEDIA_DIR;
    let sig = kubeha_model::bundle::MANIFEST_SIGNATURE;
    let bundle_files = inputs
        .bundle_files
        .iter()
        .map(String::as_str)
        .chain([kubeha_model::bundle::MANIFEST])
        // The signature over bundle.toml is not listed in it; it goes along when there is one.
        .chain(inputs.signature.then_some(sig));
    for f in bundle_files {
        steps.push(Step::Link {
            from: spec.bundle.join(f),
            to: format!("{media}/{f}"),
        });
    }
    steps.push(Step::Copy {
        from: Src::Host(spec.agent.binary.clone()),
        to: format!("{media}/{AGENT_DIR}/{AGENT_BIN}"),
        mode: 0o755,
    });
    steps.push(Step::Copy {
        from: Src::Host(spec.agent.unit.clone()),
        to: format!("{media}/{AGENT_DIR}/{AGENT_UNIT}"),
        mode: 0o644,
    });
    let bundle_url = format!("{base}/{media}");
    let mut shared = spec.node_config.clone();
    shared.bundle.url = Some(bundle_url.clone());
    let mut configs = vec![Config {
        path: format!("{media}/{NODE_CONFIG}"),
        config: shared,
        secret: false,
    }];
    // Each master's config with keys (--embed-secrets), pinned by its sha256 in that master's entry.
    let mut pinned = Vec::new();
    for (name, nc) in &spec.master_configs {
        let mut nc = nc.clone();
        nc.bundle.url = Some(bundle_url.clone());
        let path = format!("{media}/nodes/{name}.toml");
        pinned.push((
            name.clone(),
            format!("{base}/{path}"),
            sha256_hex(nc.to_toml().as_bytes()),
        ));
        configs.push(Config {
            path,
            config: nc,
            secret: true,
        });
    }

    // The kickstart: bundle over HTTP.
    let mut kickstart = Options::new(el, Source::Http(bundle_url));
    kickstart.packages = inputs.packages.clone();

    // One entry per node.
    let common = vec![
        Arg::kv("inst.repo", &repo),
        Arg::kv("inst.ks", &format!("{base}/ks.cfg")),
        Arg::kv("ip", "dhcp"),
    ];
    let mut entries = Vec::new();
    for (role, n) in spec.cluster.nodes() {
        let pin = pinned.iter().find(|(m, _, _)| m == &n.name);
        let reinstall = spec.reinstall.wants(&n.name);
        let kubeha = KernelArgs {
            role: Some(role),
            name: Some(n.name.clone()),
            config: pin.map(|(_, url, _)| ConfigLocation::Http(url.clone())),
            config_sha256: pin.map(|(_, _, sha)| sha.clone()),
            reinstall,
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
            install: spec.install.wants(&n.name) || reinstall,
            reinstall,
        });
    }

    // BIOS: the syslinux files this machine has.
    let mut missing_loaders = Vec::new();
    for (file, found) in &inputs.loaders {
        match found {
            Some(p) => steps.push(Step::Copy {
                from: Src::Host(p.clone()),
                to: file.clone(),
                mode: 0o644,
            }),
            None => missing_loaders.push(file.clone()),
        }
    }

    Ok(Plan {
        base,
        el,
        cluster: spec.cluster,
        kickstart,
        grub_cmds: grub_efi_commands(el, &inputs.arch),
        steps,
        configs,
        secret_group: spec.secret_group,
        entries,
        missing_loaders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootcfg::ArgEdit;
    use crate::Agent;
    use kubeha_model::Secrets;

    fn inputs() -> Inputs {
        Inputs {
            bundle_files: vec!["rpms/repodata/repomd.xml".into(), "images/a.tar".into()],
            signature: false,
            arch: "x86_64".into(),
            packages: vec!["kubeadm".into()],
            iso_el: Some(9),
            loaders: vec![
                (
                    "pxelinux.0".into(),
                    Some(PathBuf::from("/syslinux/pxelinux.0")),
                ),
                ("menu.c32".into(), None),
            ],
        }
    }

    /// The default cluster, two nodes with MACs, one installing, the other reinstalling; from an ISO: the
    /// expected steps, configs and per-MAC entries, without touching the file system.
    #[test]
    fn default_cluster() {
        let mut cluster = Cluster::default_cluster();
        cluster.masters[0].mac = Some("52:54:00:AA:00:01".into());
        cluster.workers[0].mac = Some("52-54-00-aa-00-11".into());
        let (m1, w1) = (
            cluster.masters[0].name.clone(),
            cluster.workers[0].name.clone(),
        );
        let nc =
            NodeConfig::build(&cluster, &Secrets::generate().unwrap(), None, None, false).unwrap();
        let spec = PxeSpec {
            output: "/nonexistent/tree".into(),
            http_base: "http://10.0.0.1:8080/pxe/".into(),
            boot: Boot::Iso("/nonexistent/base.iso".into()),
            os_url: None,
            bundle: "/b".into(),
            cluster: &cluster,
            node_config: &nc,
            master_configs: vec![(m1.clone(), nc.clone())],
            secret_group: None,
            install: Install::Nodes(vec![m1.clone()]),
            reinstall: Install::Nodes(vec![w1.clone()]),
            user_args: ArgEdit::default(),
            agent: Agent {
                binary: "/a/kubeha-firstboot".into(),
                unit: "/a/kubeha-firstboot.service".into(),
            },
            el: None,
            grub_efi: None,
            force: false,
        };
        let p = plan(&spec, &inputs()).unwrap();
        let base = "http://10.0.0.1:8080/pxe";
        assert_eq!(p.base, base);
        assert_eq!(p.el, 9);
        assert_eq!(p.grub_cmds, ("linuxefi", "initrdefi"));

        // Every file the steps put in the tree, in order.
        fn targets(steps: &[Step], out: &mut Vec<String>) {
            for s in steps {
                match s {
                    Step::Extract { to, .. } => out.push(format!("{to}/")),
                    Step::Copy { to, .. } | Step::Link { to, .. } => out.push(to.clone()),
                    Step::CopyIfFile { to, then, .. } => {
                        out.push(format!("{to}?"));
                        targets(then, out);
                    }
                }
            }
        }
        let mut t = Vec::new();
        targets(&p.steps, &mut t);
        assert_eq!(
            t,
            [
                "os/",
                "images/pxeboot/vmlinuz",
                "images/pxeboot/initrd.img",
                "grubx64.efi?",
                "shimx64.efi?",
                "kubeha/rpms/repodata/repomd.xml",
                "kubeha/images/a.tar",
                "kubeha/bundle.toml",
                "kubeha/agent/kubeha-firstboot",
                "kubeha/agent/kubeha-firstboot.service",
                "pxelinux.0",
            ]
        );
        assert_eq!(p.missing_loaders, ["menu.c32"]);
        assert_eq!(
            p.steps[1],
            Step::Copy {
                from: Src::Tree("os/images/pxeboot/vmlinuz".into()),
                to: "images/pxeboot/vmlinuz".into(),
                mode: 0o644,
            }
        );

        let configs: Vec<_> = p
            .configs
            .iter()
            .map(|c| (c.path.as_str(), c.secret))
            .collect();
        assert_eq!(
            configs,
            [
                ("kubeha/node.toml", false),
                (format!("kubeha/nodes/{m1}.toml").as_str(), true)
            ]
        );
        let bundle_url = format!("{base}/kubeha");
        assert!(p
            .configs
            .iter()
            .all(|c| c.config.bundle.url.as_deref() == Some(bundle_url.as_str())));

        // One entry per node, masters first; the per-MAC ones in the report.
        let names: Vec<_> = cluster.nodes().map(|(_, n)| n.name.clone()).collect();
        assert_eq!(
            p.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
            names
        );
        assert_eq!(
            p.report().nodes,
            [
                (m1.clone(), "52:54:00:aa:00:01".into(), true, false),
                (w1.clone(), "52:54:00:aa:00:11".into(), true, true),
            ]
        );
        let args = |name: &str| {
            let e = p.entries.iter().find(|e| e.name == name).unwrap();
            e.args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
        };
        let m = args(&m1);
        assert_eq!(
            m[..3],
            [
                format!("inst.repo={base}/os"),
                format!("inst.ks={base}/ks.cfg"),
                "ip=dhcp".to_string()
            ]
        );
        let sha = sha256_hex(p.configs[1].config.to_toml().as_bytes());
        assert!(m.iter().any(|a| a.ends_with(&sha)), "{m:?}");
        assert!(m
            .iter()
            .any(|a| a.ends_with(&format!("{base}/kubeha/nodes/{m1}.toml"))));
        assert!(!m.iter().any(|a| a.contains("reinstall")), "{m:?}");
        assert!(args(&w1).iter().any(|a| a.contains("reinstall")));
        let other = p.entries.iter().find(|e| e.name == names[1]).unwrap();
        assert!(other.mac.is_none() && !other.install && !other.reinstall);
        assert_eq!(p.kickstart.packages, ["kubeadm"]);
    }
}
