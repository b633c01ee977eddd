//! `kubeha iso` without booting: remaster the synthetic CentOS 7 and Rocky 9 ISOs and read the result back with
//! xorriso, mtools, checkisomd5 and ksvalidator; and every refusal, with nothing written.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use kubeha_image::iso::{remaster, IsoSpec};
use kubeha_image::Error;
use kubeha_model::cluster::Role;
use kubeha_model::{Cluster, KernelArgs, NodeConfig, Secrets};

fn secrets() -> Secrets {
    static S: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();
    S.get_or_init(|| Secrets::generate().unwrap()).clone()
}

struct Made {
    _dir: tempfile::TempDir,
    iso: std::path::PathBuf,
    work: std::path::PathBuf,
    report: kubeha_image::iso::IsoReport,
}

fn make(layout: &str, role: Option<Role>, embed: bool) -> Made {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    make_bundle_el(
        &bundle,
        "x86_64",
        if layout.starts_with("centos7") { 7 } else { 9 },
    );
    let agent = stand_in_agent(&dir.path().join("agent"));
    let cluster = Cluster::default_cluster();
    let nc = NodeConfig::build(&cluster, &secrets(), None, None, embed).unwrap();
    let args = KernelArgs {
        role,
        ..Default::default()
    };
    let iso = dir.path().join("out/kubeha.iso");
    let spec = IsoSpec {
        base: base_iso(layout),
        bundle,
        output: iso.clone(),
        cluster: &cluster,
        node_config: &nc,
        kernel_args: args,
        user_args: Default::default(),
        agent,
        el: None,
        force: false,
    };
    let report = remaster(&spec).unwrap_or_else(|e| panic!("{layout}: {e}"));
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    Made {
        _dir: dir,
        iso,
        work,
        report,
    }
}

fn check_lines(name: &str, text: &str, first_words: &[&str], label: &str, role: &str) -> usize {
    let mut n = 0;
    for l in text.lines() {
        let w = l.split_whitespace().next().unwrap_or("");
        if first_words.contains(&w) {
            assert!(
                l.contains(&format!("inst.ks=hd:LABEL={label}:/ks.cfg")),
                "{name}: {l}"
            );
            assert!(l.contains(&format!("kubeha.role={role}")), "{name}: {l}");
            assert_eq!(l.matches("inst.ks=").count(), 1, "{name}: {l}");
            assert!(
                l.contains(&format!("inst.stage2=hd:LABEL={label}")),
                "{name}: stage2 kept: {l}"
            );
            n += 1;
        }
    }
    assert!(n > 0, "{name}: no kernel lines");
    n
}

fn check_medium(m: &Made, volid: &str, label: &str, role: &str, el: u8) {
    // Same volume id, both El Torito boot images, isohybrid MBR and GPT kept.
    let rep = sh(Command::new("xorriso").arg("-indev").arg(&m.iso).args([
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]));
    assert!(rep.contains(&format!("Volume id    : '{volid}'")), "{rep}");
    assert!(
        rep.contains("El Torito img path :   1  /isolinux/isolinux.bin"),
        "{rep}"
    );
    assert!(
        rep.contains("El Torito img path :   2  /images/efiboot.img"),
        "{rep}"
    );
    assert!(rep.contains("System area summary: MBR isohybrid"), "{rep}");
    assert!(rep.contains("GPT"), "{rep}");
    assert!(
        rep.contains("GPT partition path :   2  /images/efiboot.img"),
        "GPT EFI partition is the new efiboot.img: {rep}"
    );
    assert!(
        rep.contains("MBR partition path :   2  /images/efiboot.img"),
        "{rep}"
    );

    let isolinux = String::from_utf8(iso_file(&m.iso, "/isolinux/isolinux.cfg", &m.work)).unwrap();
    assert_eq!(
        check_lines("isolinux.cfg", &isolinux, &["append"], label, role),
        3
    );
    // The unattended install is the default, without the media check; "Test this media" stays, not default.
    let default_entry = isolinux
        .split("\nlabel ")
        .filter(|b| b.contains("\n  menu default\n"))
        .collect::<Vec<_>>();
    assert_eq!(default_entry.len(), 1, "{isolinux}");
    assert!(
        default_entry[0].starts_with("linux\n") && !default_entry[0].contains("rd.live.check"),
        "{isolinux}"
    );
    assert!(
        isolinux.contains("\nlabel check\n") && isolinux.contains(" rd.live.check "),
        "{isolinux}"
    );
    let grub = String::from_utf8(iso_file(&m.iso, "/EFI/BOOT/grub.cfg", &m.work)).unwrap();
    assert!(grub.starts_with("set default=\"0\"\n"), "{grub}");
    let first = &grub[grub.find("menuentry ").unwrap()..];
    let first = &first[..first.find("}\n").unwrap()];
    assert!(
        first.starts_with("menuentry 'Install ") && !first.contains("rd.live.check"),
        "{grub}"
    );
    // x86_64 EL7 and EL9 media: the shim-verified loader commands.
    assert!(
        !grub.contains("\tlinux ") && grub.matches("\tlinuxefi ").count() == 3,
        "{grub}"
    );
    assert!(m
        .report
        .defaults
        .iter()
        .any(|d| d == "isolinux/isolinux.cfg: linux"));
    assert_eq!(
        check_lines(
            "EFI/BOOT/grub.cfg",
            &grub,
            &["linux", "linuxefi"],
            label,
            role
        ),
        3
    );
    // The copy inside the FAT image, read with mtools (not our FAT code).
    let efiboot = m.work.join("efiboot.img");
    std::fs::write(&efiboot, iso_file(&m.iso, "/images/efiboot.img", &m.work)).unwrap();
    let fat_grub = sh(Command::new("mtype")
        .arg("-i")
        .arg(&efiboot)
        .arg("::/EFI/BOOT/grub.cfg"));
    assert_eq!(
        check_lines(
            "efiboot.img grub.cfg",
            &fat_grub,
            &["linux", "linuxefi"],
            label,
            role
        ),
        3
    );
    assert_eq!(
        fat_grub.trim_end(),
        grub.trim_end(),
        "the FAT copy equals the ISO copy"
    );
    let fat_ls = sh(Command::new("mdir")
        .arg("-i")
        .arg(&efiboot)
        .arg("-b")
        .arg("::/EFI/BOOT"));
    assert!(fat_ls.to_uppercase().contains("BOOTX64.EFI"), "{fat_ls}");
    sh(Command::new("fsck.vfat").arg("-n").arg(&efiboot));

    // The kickstart validates for the ISO's release; the bundle, agent and node config are under /kubeha.
    let ks = m.work.join("ks.cfg");
    std::fs::write(&ks, iso_file(&m.iso, "/ks.cfg", &m.work)).unwrap();
    let v = sh(Command::new("ksvalidator")
        .arg("-v")
        .arg(format!("RHEL{el}"))
        .arg(&ks));
    assert!(!v.to_lowercase().contains("deprecat"), "{v}");
    let ks_text = std::fs::read_to_string(&ks).unwrap();
    assert!(ks_text.contains("repo --name=kubeha --baseurl=file:///run/install/repo/kubeha/rpms\n"));
    assert!(
        ks_text.contains("\nkubeha-test-tools\n"),
        "bundle's requested package in %packages"
    );
    let files = sh(Command::new("xorriso")
        .arg("-indev")
        .arg(&m.iso)
        .args(["-find", "/kubeha", "-type", "f"]));
    for want in [
        "/kubeha/bundle.toml",
        "/kubeha/rpms/repodata/repomd.xml",
        "/kubeha/files/calico.yaml",
        "/kubeha/images/index.json",
        "/kubeha/agent/kubeha-firstboot",
        "/kubeha/agent/kubeha-firstboot.service",
        "/kubeha/node.toml",
    ] {
        assert!(
            files.contains(&format!("'{want}'")),
            "{want} missing:\n{files}"
        );
    }
    // The medium's self-check (the default "Test this media" entry) passes.
    sh(Command::new("checkisomd5").arg(&m.iso));
    assert!(m.report.md5);
}

#[test]
fn centos7_layout_remastered_for_masters() {
    let m = make("centos7", Some(Role::Master), false);
    assert_eq!(m.report.el, 7);
    assert_eq!(m.report.volid, "CentOS 7 x86_64");
    check_medium(
        &m,
        "CentOS 7 x86_64",
        "CentOS\\x207\\x20x86_64",
        "master",
        7,
    );
    // Without --embed-secrets the medium's node config carries no private key.
    let nc = String::from_utf8(iso_file(&m.iso, "/kubeha/node.toml", &m.work)).unwrap();
    assert!(!nc.contains("PRIVATE KEY"), "{nc}");
    NodeConfig::parse(&nc, "medium").unwrap();
}

#[test]
fn rocky9_layout_remastered_with_embedded_secrets() {
    let m = make("rocky9", Some(Role::Worker), true);
    assert_eq!(m.report.el, 9);
    check_medium(
        &m,
        "Rocky-9-4-x86_64-dvd",
        "Rocky-9-4-x86_64-dvd",
        "worker",
        9,
    );
    let nc = String::from_utf8(iso_file(&m.iso, "/kubeha/node.toml", &m.work)).unwrap();
    assert!(nc.contains("PRIVATE KEY"), "embedded secrets");
}

fn refused(setup: impl FnOnce(&Path, &mut IsoSpecOwned), want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = IsoSpecOwned {
        base: base_iso("rocky9"),
        bundle: dir.path().join("bundle"),
        output: dir.path().join("out/kubeha.iso"),
        agent: stand_in_agent(&dir.path().join("agent")),
    };
    make_bundle(&s.bundle, "x86_64");
    setup(dir.path(), &mut s);
    let cluster = Cluster::default_cluster();
    let nc = NodeConfig::build(&cluster, &secrets(), None, None, false).unwrap();
    let e = remaster(&IsoSpec {
        base: s.base.clone(),
        bundle: s.bundle.clone(),
        output: s.output.clone(),
        cluster: &cluster,
        node_config: &nc,
        kernel_args: KernelArgs::default(),
        user_args: Default::default(),
        agent: s.agent.clone(),
        el: None,
        force: false,
    })
    .unwrap_err();
    let msg = e.to_string();
    for w in want {
        assert!(msg.contains(w), "error '{msg}' does not name {w}");
    }
    assert!(!s.output.exists(), "nothing written on error: {msg}");
    if let Some(d) = s.output.parent().filter(|d| d.exists()) {
        let left: Vec<_> = std::fs::read_dir(d).unwrap().collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
    let _: Option<&Error> = None;
}

struct IsoSpecOwned {
    base: std::path::PathBuf,
    bundle: std::path::PathBuf,
    output: std::path::PathBuf,
    agent: kubeha_image::Agent,
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    // Not an EL install ISO: a plain ISO without .treeinfo/.discinfo.
    refused(
        |d, s| {
            let tree = d.join("plain");
            std::fs::create_dir_all(&tree).unwrap();
            std::fs::write(tree.join("README"), "hello").unwrap();
            let iso = d.join("plain.iso");
            sh(Command::new("xorrisofs")
                .args(["-quiet", "-V", "PLAIN", "-o"])
                .arg(&iso)
                .arg(&tree));
            s.base = iso;
        },
        &["plain.iso", "not an EL install ISO", ".treeinfo"],
    );
    // An EL tree with .discinfo but no boot config.
    refused(
        |d, s| {
            let tree = d.join("noboot");
            std::fs::create_dir_all(&tree).unwrap();
            std::fs::write(tree.join(".discinfo"), "1\n9.4\nx86_64\n").unwrap();
            let iso = d.join("noboot.iso");
            sh(Command::new("xorrisofs")
                .args(["-quiet", "-V", "NOBOOT", "-o"])
                .arg(&iso)
                .arg(&tree));
            s.base = iso;
        },
        &["noboot.iso", "no boot config"],
    );
    // Not an ISO at all.
    refused(
        |d, s| {
            let f = d.join("junk.iso");
            std::fs::write(&f, vec![0u8; 70000]).unwrap();
            s.base = f;
        },
        &["junk.iso", "not an ISO 9660 image", "sector 16"],
    );
    // An EL9 bundle on a CentOS 7 ISO.
    refused(
        |_, s| s.base = base_iso("centos7"),
        &["centos7.iso", "EL7", "EL9"],
    );
    // Wrong architecture.
    refused(
        |_, s| s.base = base_iso("aarch64"),
        &["aarch64.iso", "aarch64", "x86_64"],
    );
    // A bundle file missing, and one corrupted.
    refused(
        |_, s| std::fs::remove_file(s.bundle.join("files/calico.yaml")).unwrap(),
        &["files/calico.yaml", "cannot be read"],
    );
    refused(
        |_, s| {
            std::fs::write(
                s.bundle.join("files/calico.yaml"),
                "# calico manifest stand-IN\nkind: List\n",
            )
            .unwrap()
        },
        &["files/calico.yaml", "sha256"],
    );
    refused(
        |_, s| std::fs::remove_file(s.bundle.join("bundle.toml")).unwrap(),
        &["bundle.toml"],
    );
    // No agent.
    refused(|d, s| s.agent.binary = d.join("nope"), &["--agent", "nope"]);
    // The output exists (no --force).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exists.iso");
    std::fs::write(&out, "keep me").unwrap();
    let cluster = Cluster::default_cluster();
    let nc = NodeConfig::build(&cluster, &secrets(), None, None, false).unwrap();
    let bundle = dir.path().join("bundle");
    make_bundle(&bundle, "x86_64");
    let e = remaster(&IsoSpec {
        base: base_iso("rocky9"),
        bundle,
        output: out.clone(),
        cluster: &cluster,
        node_config: &nc,
        kernel_args: KernelArgs::default(),
        user_args: Default::default(),
        agent: stand_in_agent(&dir.path().join("agent")),
        el: None,
        force: false,
    })
    .unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
}

#[test]
fn appended_efi_partition_is_replaced() {
    let m = make("rocky9-appended", Some(Role::Worker), false);
    assert!(
        m.report
            .edited
            .iter()
            .any(|e| e == "appended EFI partition:EFI/BOOT/grub.cfg"),
        "{:?}",
        m.report.edited
    );
    let rep = sh(Command::new("xorriso")
        .arg("-indev")
        .arg(&m.iso)
        .args(["-report_el_torito", "as_mkisofs"]));
    assert!(rep.contains("-e '--interval:appended_partition_2"), "{rep}");
    assert!(rep.contains("-b '/isolinux/isolinux.bin'"), "{rep}");
    let boot = m.work.join("boot");
    sh(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&m.iso)
        .arg("-extract_boot_images")
        .arg(format!("{}/", boot.display())));
    let img = boot.join("eltorito_img2_uefi.img");
    let grub = sh(Command::new("mtype")
        .arg("-i")
        .arg(&img)
        .arg("::/EFI/BOOT/grub.cfg"));
    assert_eq!(
        check_lines(
            "EFI partition grub.cfg",
            &grub,
            &["linuxefi"],
            "Rocky-9-4-x86_64-dvd",
            "worker"
        ),
        3
    );
    sh(Command::new("fsck.vfat").arg("-n").arg(&img));
    let isolinux = String::from_utf8(iso_file(&m.iso, "/isolinux/isolinux.cfg", &m.work)).unwrap();
    check_lines(
        "isolinux.cfg",
        &isolinux,
        &["append"],
        "Rocky-9-4-x86_64-dvd",
        "worker",
    );
}

#[test]
fn centos7_mkisofs_isohybrid_layout_remastered() {
    // The EL7 way: mkisofs + isohybrid --uefi (lorax rhel7-branch); replay keeps its hybrid MBR and GPT.
    let m = make("centos7-mkisofs", None, false);
    assert_eq!(m.report.el, 7);
    let rep = sh(Command::new("xorriso")
        .arg("-indev")
        .arg(&m.iso)
        .args(["-report_el_torito", "plain"]));
    assert!(
        rep.contains("El Torito img path :   1  /isolinux/isolinux.bin"),
        "{rep}"
    );
    assert!(
        rep.contains("El Torito img path :   2  /images/efiboot.img"),
        "{rep}"
    );
    let isolinux = String::from_utf8(iso_file(&m.iso, "/isolinux/isolinux.cfg", &m.work)).unwrap();
    assert!(
        isolinux.contains("inst.ks=hd:LABEL=CentOS\\x207\\x20x86_64:/ks.cfg"),
        "{isolinux}"
    );
    assert!(
        !isolinux.contains("kubeha.role"),
        "--role auto adds no role: {isolinux}"
    );
}

#[test]
fn remastering_a_remastered_iso_replaces_args_and_bundle() {
    let m = make("rocky9", Some(Role::Worker), false);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle2");
    make_bundle(&bundle, "x86_64");
    std::fs::remove_file(bundle.join("files/calico.yaml")).unwrap();
    // Rewrite the manifest without the removed file.
    let mut man = kubeha_model::bundle::BundleManifest::load(&bundle).unwrap();
    man.files.retain(|f| f.path != "files/calico.yaml");
    man.save(&bundle).unwrap();
    let cluster = Cluster::default_cluster();
    let nc = NodeConfig::build(&cluster, &secrets(), None, None, false).unwrap();
    let out = dir.path().join("again.iso");
    remaster(&IsoSpec {
        base: m.iso.clone(),
        bundle,
        output: out.clone(),
        cluster: &cluster,
        node_config: &nc,
        kernel_args: KernelArgs {
            role: Some(Role::Master),
            ..Default::default()
        },
        user_args: Default::default(),
        agent: stand_in_agent(&dir.path().join("agent")),
        el: None,
        force: false,
    })
    .unwrap();
    let isolinux = String::from_utf8(iso_file(&out, "/isolinux/isolinux.cfg", &m.work)).unwrap();
    assert_eq!(
        check_lines(
            "isolinux.cfg",
            &isolinux,
            &["append"],
            "Rocky-9-4-x86_64-dvd",
            "master"
        ),
        3
    );
    assert!(!isolinux.contains("kubeha.role=worker"), "{isolinux}");
    let files = sh(Command::new("xorriso")
        .arg("-indev")
        .arg(&out)
        .args(["-find", "/kubeha", "-type", "f"]));
    assert!(
        !files.contains("calico.yaml"),
        "stale bundle file kept:\n{files}"
    );
    assert!(files.contains("'/kubeha/bundle.toml'"), "{files}");
}

/// `isoinfo -d` (genisoimage, not our parser): the volume's size in bytes.
fn isoinfo_volume_bytes(iso: &Path) -> u64 {
    let out = sh(Command::new("isoinfo").arg("-d").arg("-i").arg(iso));
    let num = |key: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no '{key}' in isoinfo output:\n{out}"))
            .trim()
            .parse()
            .unwrap()
    };
    num("Volume size is:") * num("Logical block size is:")
}

#[test]
fn truncated_base_iso_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let full = base_iso("rocky9");
    let volume = isoinfo_volume_bytes(&full);
    let data = std::fs::read(&full).unwrap();
    for cut in [data.len() as u64 / 2, volume - 2048, 40000] {
        let f = dir.path().join("base.iso");
        std::fs::write(&f, &data[..cut as usize]).unwrap();
        let e = kubeha_image::iso::inspect(&f, &dir.path().join("work")).unwrap_err();
        let msg = e.to_string();
        assert_eq!(
            msg,
            format!(
                "{}: truncated: {cut} bytes, the ISO 9660 volume says {volume} (download incomplete?)",
                f.display()
            ),
            "cut at {cut}"
        );
        assert!(matches!(e, Error::Truncated { .. }));
    }
    // Shorter than the volume descriptors: still one line, no xorriso output.
    let f = dir.path().join("stub.iso");
    std::fs::write(&f, &data[..20000]).unwrap();
    let msg = kubeha_image::iso::inspect(&f, &dir.path().join("work"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("stub.iso: not an ISO 9660 image: 20000 bytes") && !msg.contains('\n'),
        "{msg}"
    );
    // The whole file is accepted (a longer file than the volume is normal: isohybrid padding).
    kubeha_image::iso::check_volume_size(&full, data.len() as u64).unwrap();
    assert!(data.len() as u64 >= volume);
}
