//! The plan: a pure function from the spec and what was read (the base ISO's inspection, the verified bundle and
//! its directory, the agent's size) to what the medium gets: the kickstart's options, the kernel argument edits,
//! the boot configs to edit (in the tree and in the FAT images), the bundle files mapped under `/kubeha` and
//! whether the image needs ISO level 3, every check made (architecture, release, the kickstart's values, the
//! kernel arguments) before anything is written. No I/O.

use std::path::{Path, PathBuf};

use kubeha_kickstart::{Options, Source};
use kubeha_model::kernel_args;
use kubeha_model::{Cluster, NodeConfig};

use super::inspect::BaseIso;
use super::spec::{IsoSpec, EFIBOOT_IMG, GRUB_CFGS, ISOLINUX_CFGS, KS_PATH, MEDIA_DIR};
use crate::bootcfg::{grub_efi_commands, udev_escape, Arg, ArgEdit};
use crate::bundle::{Verified, ISO_LEVEL3_SIZE};
use crate::{Error, Result, AGENT_DIR, NODE_CONFIG};

/// What was read before planning (by [`super::execute::read_inputs`]).
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    /// The base ISO.
    pub base: BaseIso,
    /// The verified bundle.
    pub verified: Verified,
    /// Every entry of the bundle directory (its name and path), in directory order.
    pub bundle_entries: Vec<(String, PathBuf)>,
    /// The agent binary's size (0 when unreadable).
    pub agent_size: u64,
}

/// A FAT image whose GRUB configs are edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fat {
    /// `images/efiboot.img` in the tree: updated when one of its configs is edited.
    Tree,
    /// The appended EFI partition (newer lorax/mkksiso output): always written, as partition 2.
    Appended,
}

impl Fat {
    /// Its name in the report (`images/efiboot.img:EFI/BOOT/grub.cfg`).
    pub fn name(self) -> &'static str {
        match self {
            Fat::Tree => EFIBOOT_IMG,
            Fat::Appended => "appended EFI partition",
        }
    }
}

/// What `kubeha iso` writes, every value checked.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    /// The base ISO file.
    pub base: &'a Path,
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The node config put on the medium.
    pub node_config: &'a NodeConfig,
    /// The (kept) volume id.
    pub volid: String,
    /// The kickstart's EL release.
    pub el: u8,
    /// The kickstart's options (checked).
    pub kickstart: Options,
    /// The kernel arguments kubeha adds: `inst.ks` and the `kubeha.*` ones.
    pub add: Vec<Arg>,
    /// The edits of every boot entry: kubeha's (old `inst.ks` and `kubeha.*` replaced), then the operator's.
    pub edits: Vec<ArgEdit>,
    /// The UEFI GRUB kernel commands the medium's release uses (linuxefi on x86_64 EL7-9).
    pub efi_commands: (&'static str, &'static str),
    /// The tree's boot configs to edit, in order (isolinux, then GRUB).
    pub configs: Vec<&'static str>,
    /// The FAT images whose GRUB configs are edited, in order.
    pub fat: Vec<Fat>,
    /// The base already has `/kubeha` (a medium remastered before): it is removed first.
    pub replace_media: bool,
    /// The bundle's files mapped onto the medium: a path of this machine and its ISO path.
    pub bundle_maps: Vec<(PathBuf, String)>,
    /// The bundle's size, for the progress line.
    pub bundle_bytes: u64,
    /// A file is 4 GiB or more: `-as mkisofs -iso-level 3`.
    pub iso_level3: bool,
}

/// Checks the inputs against the spec and plans the medium; the first error names the file or field at fault.
pub(crate) fn plan<'a>(spec: &'a IsoSpec, inputs: &Inputs) -> Result<Plan<'a>> {
    let base = &inputs.base;
    let manifest = &inputs.verified.manifest;
    let want_arch = &manifest.profile.arch;
    if &base.arch != want_arch {
        return Err(Error::WrongArch {
            path: spec.base.clone(),
            iso_arch: base.arch.clone(),
            want: want_arch.clone(),
        });
    }
    check_release(&spec.base, base.el, manifest.profile.el)?;
    let el = spec.el.or(base.el).unwrap_or(spec.cluster.install.el);

    // The kickstart, for every node on this medium.
    let mut kickstart = Options::new(el, Source::Media);
    kickstart.packages = manifest.requested_packages();
    kubeha_kickstart::check(spec.cluster, &kickstart)?;

    // The boot arguments: mkksiso's inst.ks plus ours (old ones replaced), then the operator's.
    let label = udev_escape(&base.volid);
    let mut add = vec![Arg::kv("inst.ks", &format!("hd:LABEL={label}:/{KS_PATH}"))];
    spec.kernel_args.validate().map_err(|e| Error::Value {
        field: "kernel_args".into(),
        message: e.to_string(),
    })?;
    add.extend(spec.kernel_args.args());
    let edits = vec![
        ArgEdit {
            remove: vec!["inst.ks".into(), kernel_args::PREFIX.into()],
            add: add.clone(),
        },
        spec.user_args.clone(),
    ];

    let configs = ISOLINUX_CFGS
        .iter()
        .chain(GRUB_CFGS)
        .copied()
        .filter(|c| base.files.contains(*c))
        .collect();
    let mut fat = Vec::new();
    if base.files.contains(EFIBOOT_IMG) {
        fat.push(Fat::Tree);
    }
    if base.efi_appended {
        fat.push(Fat::Appended);
    }
    let bundle_maps = inputs
        .bundle_entries
        .iter()
        .filter(|(name, _)| !(name.starts_with('.') || name == AGENT_DIR || name == NODE_CONFIG))
        .map(|(name, path)| (path.clone(), format!("/{MEDIA_DIR}/{name}")))
        .collect();
    Ok(Plan {
        base: &spec.base,
        cluster: spec.cluster,
        node_config: spec.node_config,
        volid: base.volid.clone(),
        el,
        kickstart,
        add,
        edits,
        efi_commands: grub_efi_commands(el, &base.arch),
        configs,
        fat,
        replace_media: base
            .files
            .iter()
            .any(|f| f.starts_with(&format!("{MEDIA_DIR}/"))),
        bundle_maps,
        bundle_bytes: inputs.verified.bytes,
        iso_level3: inputs.verified.largest.max(inputs.agent_size) >= ISO_LEVEL3_SIZE,
    })
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

#[cfg(test)]
mod tests {
    use kubeha_model::bundle::{BundleManifest, Profile, RpmEntry, FORMAT};
    use kubeha_model::cluster::Role;
    use kubeha_model::kernel_args::KernelArgs;
    use kubeha_model::Secrets;

    use super::*;
    use crate::Agent;

    fn inputs(files: &[&str], efi_appended: bool, largest: u64) -> Inputs {
        let profile = Profile::parse(
            "name = \"t\"\nkubernetes-version = \"1.30.0\"\nel = 9\n",
            "t",
        )
        .unwrap();
        Inputs {
            base: BaseIso {
                path: "/nonexistent/base.iso".into(),
                volid: "Rocky-9-4-x86_64-dvd".into(),
                files: files.iter().map(|f| f.to_string()).collect(),
                arch: "x86_64".into(),
                el: Some(9),
                efi_appended,
            },
            verified: Verified {
                manifest: BundleManifest {
                    format: FORMAT,
                    created: "2026-01-01T00:00:00Z".into(),
                    image_set: Default::default(),
                    profile,
                    images: Vec::new(),
                    rpms: vec![RpmEntry {
                        nevra: "kubeadm-1.30.0-0.x86_64".into(),
                        name: "kubeadm".into(),
                        path: "rpms/kubeadm.rpm".into(),
                        requested: true,
                    }],
                    rpm_keys: Vec::new(),
                    files: Vec::new(),
                },
                bytes: 3 << 20,
                largest,
            },
            bundle_entries: ["bundle.toml", "rpms", ".hidden", AGENT_DIR, NODE_CONFIG]
                .iter()
                .map(|n| (n.to_string(), PathBuf::from("/b").join(n)))
                .collect(),
            agent_size: 1 << 20,
        }
    }

    /// A base with isolinux, the EFI grub.cfg and efiboot.img, remastered before: the checks, the arguments,
    /// the configs to edit and the files mapped, without touching the file system.
    #[test]
    fn plans_the_medium_and_checks_before_any_write() {
        let cluster = Cluster::default_cluster();
        let nc =
            NodeConfig::build(&cluster, &Secrets::generate().unwrap(), None, None, false).unwrap();
        let spec = IsoSpec {
            base: "/nonexistent/base.iso".into(),
            bundle: "/b".into(),
            output: "/nonexistent/out.iso".into(),
            cluster: &cluster,
            node_config: &nc,
            kernel_args: KernelArgs {
                role: Some(Role::Worker),
                ..Default::default()
            },
            user_args: ArgEdit {
                remove: vec!["quiet".into()],
                add: vec![Arg::kv("console", "ttyS0")],
            },
            agent: Agent {
                binary: "/a/kubeha-firstboot".into(),
                unit: "/a/kubeha-firstboot.service".into(),
            },
            el: None,
            force: false,
        };
        let files = [
            ".treeinfo",
            "isolinux/isolinux.cfg",
            "EFI/BOOT/grub.cfg",
            EFIBOOT_IMG,
            "kubeha/bundle.toml",
        ];
        let p = plan(&spec, &inputs(&files, true, 1 << 20)).unwrap();
        assert_eq!(p.el, 9, "the ISO's release");
        assert_eq!(p.volid, "Rocky-9-4-x86_64-dvd");
        assert_eq!(p.efi_commands, grub_efi_commands(9, "x86_64"));
        assert_eq!(
            p.add.first().map(|a| a.to_string()).as_deref(),
            Some("inst.ks=hd:LABEL=Rocky-9-4-x86_64-dvd:/ks.cfg")
        );
        assert_eq!(
            p.add[1..],
            spec.kernel_args.args()[..],
            "then kubeha's own arguments"
        );
        assert_eq!(
            p.edits,
            [
                ArgEdit {
                    remove: vec!["inst.ks".into(), kernel_args::PREFIX.into()],
                    add: p.add.clone(),
                },
                spec.user_args.clone(),
            ],
            "kubeha's edit, then the operator's"
        );
        assert_eq!(p.kickstart.el, 9);
        assert_eq!(p.kickstart.source, Source::Media);
        assert_eq!(p.kickstart.packages, ["kubeadm"]);
        assert_eq!(p.configs, ["isolinux/isolinux.cfg", "EFI/BOOT/grub.cfg"]);
        assert_eq!(p.fat, [Fat::Tree, Fat::Appended]);
        assert!(p.replace_media, "the base has /kubeha");
        assert_eq!(
            p.bundle_maps,
            [
                (
                    PathBuf::from("/b/bundle.toml"),
                    "/kubeha/bundle.toml".into()
                ),
                (PathBuf::from("/b/rpms"), "/kubeha/rpms".into()),
            ],
            "no dot file, agent/ or node.toml of the bundle directory"
        );
        assert!(!p.iso_level3);
        assert!(
            plan(&spec, &inputs(&files, false, ISO_LEVEL3_SIZE))
                .unwrap()
                .iso_level3,
            "a 4 GiB file"
        );
        let p = plan(&spec, &inputs(&["isolinux/isolinux.cfg"], false, 0)).unwrap();
        assert!(p.fat.is_empty() && !p.replace_media);

        // The checks, each naming the file or field.
        let mut i = inputs(&files, false, 0);
        i.base.arch = "aarch64".into();
        let e = plan(&spec, &i).unwrap_err().to_string();
        assert!(
            e.starts_with("/nonexistent/base.iso: the ISO is for aarch64"),
            "{e}"
        );
        let mut i = inputs(&files, false, 0);
        i.base.el = Some(8);
        let e = plan(&spec, &i).unwrap_err().to_string();
        assert!(
            e.contains("the ISO is EL8 but the bundle's packages are for EL9"),
            "{e}"
        );
        let mut bad = cluster.clone();
        bad.install.timezone = "Not/A Zone".into();
        let e = plan(
            &IsoSpec {
                cluster: &bad,
                ..spec.clone()
            },
            &inputs(&files, false, 0),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("install.timezone: "), "{e}");
        let e = plan(
            &IsoSpec {
                kernel_args: KernelArgs {
                    name: Some("Not A Name".into()),
                    ..Default::default()
                },
                ..spec.clone()
            },
            &inputs(&files, false, 0),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("kernel_args: "), "{e}");
    }
}
