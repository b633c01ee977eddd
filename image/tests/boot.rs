//! QEMU (TCG) boots of the media: the remastered ISOs under SeaBIOS and OVMF, and the PXE tree through QEMU's
//! iPXE ROM (pxelinux) and OVMF (GRUB network image). The fixture initramfs prints /proc/cmdline between markers
//! on ttyS0 and powers off. Slow (10-30 s a boot): run with `cargo test -p kubeha-image --test boot -- --ignored`
//! (`make test-media`).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kubeha_image::bootcfg::{parse_append, parse_remove, ArgEdit};
use kubeha_image::iso::{remaster, IsoSpec};
use kubeha_model::{Cluster, KernelArgs, NodeConfig, Secrets};

const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// Boots QEMU with `args`, returns the kernel command line the fixture's /init printed. QEMU is killed by its
/// own pid when the marker shows up or at the timeout.
fn boot(name: &str, dir: &Path, args: &[&str]) -> String {
    let log = dir.join(format!("{name}.serial.log"));
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-m",
            "512",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64");
    let start = Instant::now();
    // Generous: TCG on a loaded 2-core machine can take minutes (10-30 s when idle).
    let timeout = Duration::from_secs(600);
    let text = loop {
        std::thread::sleep(Duration::from_millis(500));
        let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        if text.contains("@kubeha-end@") {
            break text;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("{name}: qemu exited ({status}) without printing the command line:\n{err}\n--- serial:\n{}", tail(&text));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name}: no kernel command line after {timeout:?}; serial:\n{}",
                tail(&text)
            );
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("{name}: booted in {:.1}s", start.elapsed().as_secs_f32());
    let s = text.find("@kubeha-cmdline@").unwrap() + "@kubeha-cmdline@".len();
    let e = text.find("@kubeha-end@").unwrap();
    text[s..e].trim().to_string()
}

fn tail(s: &str) -> String {
    let t: String = s.chars().rev().take(3000).collect();
    t.chars().rev().collect()
}

fn remastered(dir: &Path, layout: &str, role: &str) -> PathBuf {
    remastered_with(dir, layout, role, ArgEdit::default())
}

fn remastered_with(dir: &Path, layout: &str, role: &str, user_args: ArgEdit) -> PathBuf {
    let bundle = dir.join("bundle");
    if !bundle.exists() {
        make_bundle_el(
            &bundle,
            "x86_64",
            if layout.starts_with("centos7") { 7 } else { 9 },
        );
    }
    let cluster = Cluster::default_cluster();
    let secrets = Secrets::generate().unwrap();
    let nc = NodeConfig::build(&cluster, &secrets, None, None, false).unwrap();
    let out = dir.join(format!("{layout}-{role}.iso"));
    remaster(&IsoSpec {
        base: base_iso(layout),
        bundle,
        output: out.clone(),
        cluster: &cluster,
        node_config: &nc,
        kernel_args: KernelArgs {
            role: Some(role.parse().unwrap()),
            ..Default::default()
        },
        user_args,
        agent: stand_in_agent(&dir.join("agent")),
        el: None,
        force: true,
    })
    .unwrap();
    out
}

#[test]
#[ignore = "QEMU boot: make test-media"]
fn iso_centos7_boots_bios_cdrom_and_uefi_cdrom() {
    let dir = tempfile::tempdir().unwrap();
    // With the operator's --remove-arg quiet --append 'inst.sshd kubeha.reinstall=1'.
    let user = ArgEdit {
        remove: parse_remove("--remove-arg", &["quiet".into()]).unwrap(),
        add: parse_append("--append", &["inst.sshd kubeha.reinstall=1".into()]).unwrap(),
    };
    let iso = remastered_with(dir.path(), "centos7", "master", user);
    let iso = iso.to_str().unwrap();
    // SeaBIOS: El Torito BIOS entry -> isolinux -> its default entry: the unattended install, not "Test this
    // media" (lorax's default), so no media check.
    let cl = boot("c7-bios-cdrom", dir.path(), &["-cdrom", iso]);
    assert!(
        cl.contains("inst.ks=hd:LABEL=CentOS\\x207\\x20x86_64:/ks.cfg"),
        "{cl}"
    );
    assert!(
        cl.contains("inst.stage2=hd:LABEL=CentOS\\x207\\x20x86_64"),
        "{cl}"
    );
    assert!(cl.contains("kubeha.role=master"), "{cl}");
    assert!(
        !cl.contains("rd.live.check"),
        "the install entry is the default, without the media check: {cl}"
    );
    assert!(
        cl.ends_with("inst.sshd kubeha.reinstall=1") && !cl.contains("quiet"),
        "--append/--remove-arg: {cl}"
    );
    // OVMF: El Torito EFI entry -> images/efiboot.img -> BOOTX64.EFI -> grub.cfg (GRUB's $cmdpath on OVMF's
    // El Torito device is the CD: it reads /EFI/BOOT/grub.cfg of the ISO; the FAT copy is checked in iso.rs).
    // Debian's GRUB drops the backslashes of \x20 on the command line (EL's grub2 keeps them); the written
    // configs are checked byte for byte in tests/iso.rs.
    let cl = boot("c7-uefi-cdrom", dir.path(), &["-bios", OVMF, "-cdrom", iso]);
    assert!(
        cl.contains("inst.ks=hd:LABEL=CentOSx207x20x86_64:/ks.cfg"),
        "{cl}"
    );
    assert!(cl.contains("kubeha.role=master"), "{cl}");
    assert!(cl.starts_with("BOOT_IMAGE=/images/pxeboot/vmlinuz"), "{cl}");
    assert!(
        !cl.contains("rd.live.check") && cl.ends_with("inst.sshd kubeha.reinstall=1"),
        "GRUB's default: the install entry (linuxefi): {cl}"
    );
}

#[test]
#[ignore = "QEMU boot: make test-media"]
fn iso_rocky9_appended_efi_partition_boots_uefi_cdrom() {
    // The EFI image replaced as appended partition 2 is what OVMF's El Torito boot runs.
    let dir = tempfile::tempdir().unwrap();
    let iso = remastered(dir.path(), "rocky9-appended", "master");
    let cl = boot(
        "r9a-uefi-cdrom",
        dir.path(),
        &["-bios", OVMF, "-cdrom", iso.to_str().unwrap()],
    );
    assert!(
        cl.contains("inst.ks=hd:LABEL=Rocky-9-4-x86_64-dvd:/ks.cfg"),
        "{cl}"
    );
    assert!(cl.contains("kubeha.role=master"), "{cl}");
    assert!(!cl.contains("rd.live.check"), "{cl}");
}

#[test]
#[ignore = "QEMU boot: make test-media"]
fn iso_rocky9_boots_bios_as_usb_disk() {
    let dir = tempfile::tempdir().unwrap();
    let iso = remastered(dir.path(), "rocky9", "worker");
    // The hybrid MBR path: the ISO written to a stick / attached as a disk.
    let drive = format!("file={},format=raw,if=virtio,readonly=on", iso.display());
    let cl = boot("r9-bios-disk", dir.path(), &["-drive", &drive]);
    assert!(
        cl.contains("inst.ks=hd:LABEL=Rocky-9-4-x86_64-dvd:/ks.cfg"),
        "{cl}"
    );
    assert!(cl.contains("kubeha.role=worker"), "{cl}");
    assert!(!cl.contains("rd.live.check"), "{cl}");
}

#[test]
#[ignore = "QEMU boot: make test-media"]
fn iso_centos7_mkisofs_isohybrid_boots_bios_as_usb_disk() {
    let dir = tempfile::tempdir().unwrap();
    let iso = remastered(dir.path(), "centos7-mkisofs", "worker");
    let drive = format!("file={},format=raw,if=virtio,readonly=on", iso.display());
    let cl = boot("c7m-bios-disk", dir.path(), &["-drive", &drive]);
    assert!(
        cl.contains("inst.ks=hd:LABEL=CentOS\\x207\\x20x86_64:/ks.cfg"),
        "{cl}"
    );
    assert!(cl.contains("kubeha.role=worker"), "{cl}");
}

#[test]
#[ignore = "QEMU boot: make test-media"]
fn pxe_bios_pxelinux_per_mac_install_entry() {
    let dir = tempfile::tempdir().unwrap();
    tree_with(
        dir.path(),
        kubeha_image::pxe::Install::Nodes(vec!["k8s-master01".into()]),
        false,
        ArgEdit {
            remove: parse_remove("--remove-arg", &["ip".into()]).unwrap(),
            add: parse_append("--append", &["ip=dhcp inst.sshd".into()]).unwrap(),
        },
    );
    let netdev = format!(
        "user,id=n0,tftp={},bootfile=pxelinux.0",
        dir.path().join("tftp").display()
    );
    // QEMU's iPXE ROM -> pxelinux.0 -> pxelinux.cfg/01-52-54-00-12-34-01 (default: install).
    let cl = boot(
        "pxe-bios",
        dir.path(),
        &[
            "-boot",
            "n",
            "-netdev",
            &netdev,
            "-device",
            "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:01",
        ],
    );
    assert!(cl.contains("inst.ks=http://10.0.2.2:8080/ks.cfg"), "{cl}");
    assert!(cl.contains("inst.repo=http://10.0.2.2:8080/os"), "{cl}");
    assert!(
        cl.contains("kubeha.role=master kubeha.name=k8s-master01"),
        "{cl}"
    );
    assert!(
        cl.ends_with("ip=dhcp inst.sshd") && cl.matches(" ip=").count() == 1,
        "--remove-arg ip --append 'ip=dhcp inst.sshd': {cl}"
    );
}

#[test]
#[ignore = "QEMU boot: make test-media"]
fn pxe_uefi_grub_per_mac_install_entry() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), kubeha_image::pxe::Install::All, false);
    let tftp = dir.path().join("tftp");
    // EL9 x86_64: the menu loads the installer with linuxefi/initrdefi, as the release's own media do.
    let menu = std::fs::read_to_string(tftp.join("grub.cfg-01-52-54-00-12-34-11")).unwrap();
    assert!(
        menu.contains("\tlinuxefi /images/pxeboot/vmlinuz ")
            && menu.contains("\tinitrdefi /images/pxeboot/initrd.img"),
        "{menu}"
    );
    // A GRUB network image standing in for EL's shim + grubx64.efi.
    sh(Command::new("grub-mkimage")
        .args(["-O", "x86_64-efi", "-p", "/", "-o"])
        .arg(tftp.join("grubx64.efi"))
        .args([
            "efinet",
            "tftp",
            "net",
            "linux",
            "linuxefi",
            "normal",
            "configfile",
            "echo",
            "test",
            "gzio",
            "part_gpt",
            "fat",
        ]));
    let netdev = format!("user,id=n0,tftp={},bootfile=grubx64.efi", tftp.display());
    let cl = boot(
        "pxe-uefi",
        dir.path(),
        &[
            "-bios",
            OVMF,
            "-boot",
            "n",
            "-netdev",
            &netdev,
            "-device",
            "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:11",
        ],
    );
    assert!(cl.contains("inst.ks=http://10.0.2.2:8080/ks.cfg"), "{cl}");
    assert!(
        cl.contains("kubeha.role=worker kubeha.name=k8s-node01"),
        "{cl}"
    );
}
