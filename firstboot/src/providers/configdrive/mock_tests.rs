//! Config drives made by the real tools: xorriso (ISO9660, plain/Rock Ridge/Joliet) and mkfs.vfat + mcopy.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::providers::{fixtures, parse_config};

pub(super) fn sh(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is the tool installed? see mk/firstboot.mk)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_iso(dir: &Path, name: &str, label: &str, extra: &[&str], content: &[u8]) -> PathBuf {
    let src = dir.join(format!("{name}.src"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("node.toml"), content).unwrap();
    std::fs::write(src.join("sub/other.txt"), b"x").unwrap();
    let img = dir.join(format!("{name}.iso"));
    sh(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", label])
        .args(extra)
        .arg("-o")
        .arg(&img)
        .arg(&src));
    img
}

fn make_vfat(dir: &Path, name: &str, label: &str, content: Option<&[u8]>) -> PathBuf {
    let img = dir.join(format!("{name}.img"));
    sh(Command::new("mkfs.vfat")
        .args(["-C", "-n", label])
        .arg(&img)
        .arg("1440"));
    if let Some(c) = content {
        let f = dir.join(format!("{name}.node.toml"));
        std::fs::write(&f, c).unwrap();
        sh(Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(&f)
            .arg("::node.toml"));
    }
    img
}

#[test]
fn iso9660_plain_rock_ridge_and_joliet() {
    let d = tempfile::tempdir().unwrap();
    let toml = fixtures::config().to_toml();
    for (name, extra) in [
        ("plain", &[][..]),
        ("rr", &["-R"][..]),
        ("joliet", &["-J"][..]),
        ("both", &["-R", "-J"][..]),
    ] {
        let img = make_iso(d.path(), name, "KUBEHA", extra, toml.as_bytes());
        assert_eq!(
            probe(&img).unwrap(),
            Some((FsKind::Iso9660, "KUBEHA".into())),
            "{name}"
        );
        let data = read_node_toml(&img)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: node.toml not found"));
        assert_eq!(
            parse_config(&data, name, None).unwrap(),
            fixtures::config(),
            "{name}"
        );
        assert_eq!(read_file(&img, "missing.toml").unwrap(), None, "{name}");
        assert_eq!(
            read_file(&img, "sub").unwrap(),
            None,
            "{name}: a directory is not the file"
        );
    }
}

#[test]
fn vfat_with_and_without_node_toml() {
    let d = tempfile::tempdir().unwrap();
    let toml = fixtures::config().to_toml();
    let img = make_vfat(d.path(), "good", "KUBEHA", Some(toml.as_bytes()));
    assert_eq!(probe(&img).unwrap(), Some((FsKind::Fat, "KUBEHA".into())));
    let data = read_node_toml(&img).unwrap().unwrap();
    assert_eq!(
        parse_config(&data, "vfat", None).unwrap(),
        fixtures::config()
    );
    let empty = make_vfat(d.path(), "empty", "KUBEHA", None);
    assert_eq!(read_node_toml(&empty).unwrap(), None);
    let junk = d.path().join("junk.img");
    std::fs::write(&junk, vec![7u8; 70000]).unwrap();
    assert_eq!(probe(&junk).unwrap(), None);
    assert!(read_node_toml(&junk).is_err());
}

#[test]
fn found_by_label_link_and_by_scanning() {
    let toml = fixtures::config().to_toml();
    let tmp = tempfile::tempdir().unwrap();
    // 1) udev's /dev/disk/by-label/KUBEHA -> ../../sr0 (an ISO).
    let root = tmp.path().join("r1");
    std::fs::create_dir_all(root.join("dev/disk/by-label")).unwrap();
    let iso = make_iso(tmp.path(), "cd", "KUBEHA", &["-R", "-J"], toml.as_bytes());
    std::fs::copy(&iso, root.join("dev/sr0")).unwrap();
    std::os::unix::fs::symlink("../../sr0", root.join("dev/disk/by-label/KUBEHA")).unwrap();
    let p = ConfigDrive {
        root: root.clone(),
        label: "KUBEHA".into(),
        origin: "test".into(),
    };
    let f = p.fetch().unwrap().unwrap();
    assert!(f.source.contains("sr0"), "{}", f.source);
    assert_eq!(
        parse_config(&f.data, &f.source, None).unwrap(),
        fixtures::config()
    );

    // 2) no udev link: scanning /sys/class/block finds the FAT stick among other devices.
    let root = tmp.path().join("r2");
    for n in ["loop0", "sda", "sdb", "sr0"] {
        std::fs::create_dir_all(root.join("sys/class/block").join(n)).unwrap();
    }
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::write(root.join("dev/sda"), vec![0u8; 100_000]).unwrap();
    let other = make_vfat(tmp.path(), "other", "DATA", Some(b"nope"));
    std::fs::copy(other, root.join("dev/sdb")).unwrap();
    let stick = make_vfat(tmp.path(), "stick", "KUBEHA", Some(toml.as_bytes()));
    std::fs::copy(stick, root.join("dev/sr0")).unwrap();
    let p = ConfigDrive {
        root: root.clone(),
        label: "KUBEHA".into(),
        origin: "test".into(),
    };
    assert_eq!(
        find_device(&root, "KUBEHA").unwrap(),
        Some(root.join("dev/sr0"))
    );
    assert!(p.fetch().unwrap().is_some());
    assert_eq!(
        find_device(&root, "DATA").unwrap(),
        Some(root.join("dev/sdb"))
    );
    assert_eq!(find_device(&root, "NONE").unwrap(), None);

    // 3) nothing at all.
    let p = ConfigDrive {
        root: tmp.path().join("empty"),
        label: "KUBEHA".into(),
        origin: "test".into(),
    };
    assert!(p.fetch().unwrap().is_none());
}

#[test]
fn udev_escapes_labels() {
    assert_eq!(udev_escape("KUBEHA"), "KUBEHA");
    assert_eq!(udev_escape("Cent OS/7"), "Cent\\x20OS\\x2f7");
}

#[test]
fn corrupt_iso_is_an_error_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    let img = make_iso(d.path(), "c", "KUBEHA", &["-R"], b"x");
    let mut data = std::fs::read(&img).unwrap();
    // Point the root directory extent far past the end of the image.
    data[16 * 2048 + 156 + 2..16 * 2048 + 156 + 6].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    std::fs::write(&img, &data).unwrap();
    assert!(read_node_toml(&img).is_err());
}
