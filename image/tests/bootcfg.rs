//! The boot config edits of `kubeha iso`, golden per EL release: base configs in the shape each release's media
//! have (tests/bootcfg/<case>/), remastered with kubeha's arguments and an operator's `--remove-arg`/`--append`,
//! compared with `<file>.result` (KUBEHA_BLESS=1 rewrites them).

use std::path::PathBuf;

use kubeha_image::bootcfg::{
    grub_efi_commands, parse_append, parse_remove, remaster_config, Arg, ArgEdit, ConfigKind,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bootcfg")
}

fn golden(path: &PathBuf, text: &str) {
    if std::env::var_os("KUBEHA_BLESS").is_some() {
        std::fs::write(path, text).unwrap();
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        want == text,
        "Generated output does not match file: {} (KUBEHA_BLESS=1 rewrites it)\n{text}",
        path.display()
    );
}

fn edits(label: &str) -> Vec<ArgEdit> {
    vec![
        ArgEdit {
            remove: vec!["inst.ks".into(), "kubeha.".into()],
            add: vec![
                Arg::kv("inst.ks", &format!("hd:LABEL={label}:/ks.cfg")),
                Arg::kv("kubeha.role", "worker"),
            ],
        },
        ArgEdit {
            remove: parse_remove("--remove-arg", &["quiet".into()]).unwrap(),
            add: parse_append("--append", &["console=ttyS0,115200 inst.sshd".into()]).unwrap(),
        },
    ]
}

/// The top-level entries of a GRUB config in GRUB's numbering (menuentry and submenu blocks), with their
/// kernel lines: a reader independent of the editor's.
fn grub_top_level(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut depth = 0;
    for l in text.lines() {
        let t = l.trim_start();
        if depth == 0 && (t.starts_with("menuentry ") || t.starts_with("submenu ")) {
            out.push((t.split('\'').nth(1).unwrap_or("").to_string(), Vec::new()));
        }
        if depth >= 1 && (t.starts_with("linux") || t.starts_with("initrd")) {
            out.last_mut().unwrap().1.push(t.to_string());
        }
        depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
    }
    out
}

fn grub_default(text: &str) -> usize {
    let l = text
        .lines()
        .find(|l| l.starts_with("set default="))
        .expect("set default");
    l["set default=".len()..].trim_matches('"').parse().unwrap()
}

/// isolinux: the labels at top level (outside `menu begin`/`menu end`) and which one is `menu default`.
fn isolinux_top_default(text: &str) -> (String, String) {
    let mut depth = 0;
    let mut label = String::new();
    let mut defaults = Vec::new();
    let mut append = std::collections::HashMap::new();
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with("menu begin") {
            depth += 1;
        } else if t.starts_with("menu end") {
            depth -= 1;
        } else if depth == 0 && t.starts_with("label ") {
            label = t[6..].to_string();
        } else if depth == 0 && t == "menu default" {
            defaults.push(label.clone());
        } else if depth == 0 && t.starts_with("append ") {
            append.insert(label.clone(), t.to_string());
        }
    }
    assert_eq!(
        defaults.len(),
        1,
        "one top-level menu default: {defaults:?}"
    );
    let d = defaults.remove(0);
    let a = append[&d].clone();
    (d, a)
}

#[test]
fn every_release_boots_the_unattended_install_by_default_without_media_check() {
    for (case, el, label) in [
        ("el7", 7, "CentOS\\x207\\x20x86_64"),
        ("el8", 8, "Rocky-8-10-x86_64-dvd"),
        ("el9", 9, "Rocky-9-4-x86_64-dvd"),
        ("check-only", 9, "Rocky-9-4-x86_64-dvd"),
    ] {
        let d = dir().join(case);
        // isolinux (BIOS).
        let base = std::fs::read_to_string(d.join("isolinux.cfg")).unwrap();
        let r = remaster_config(
            ConfigKind::Isolinux,
            &base,
            grub_efi_commands(el, "x86_64"),
            &edits(label),
        );
        golden(&d.join("isolinux.cfg.result"), &r.text);
        let (def, append) = isolinux_top_default(&r.text);
        assert!(!append.contains("rd.live.check"), "{case}: {append}");
        assert!(
            append.contains(&format!("inst.ks=hd:LABEL={label}:/ks.cfg kubeha.role=worker console=ttyS0,115200 inst.sshd")),
            "{case}: {append}"
        );
        assert!(
            !append.contains("quiet"),
            "{case}: --remove-arg quiet: {append}"
        );
        assert_eq!(
            r.default.as_ref().map(|d| (d.entry.as_str(), d.added)),
            Some((def.as_str(), case == "check-only")),
            "{case}"
        );
        // The media-check entry stays, with its check, not default.
        assert!(
            r.text.contains("label check\n") && r.text.matches("rd.live.check").count() == 1,
            "{case}: {}",
            r.text
        );
        // Every entry got the arguments (mkksiso's rule).
        for l in r
            .text
            .lines()
            .filter(|l| l.trim_start().starts_with("append "))
        {
            assert!(
                l.contains("inst.ks=") && l.contains("inst.sshd"),
                "{case}: {l}"
            );
        }
        // Editing the result again changes nothing (remastering a remastered ISO).
        let again = remaster_config(
            ConfigKind::Isolinux,
            &r.text,
            grub_efi_commands(el, "x86_64"),
            &edits(label),
        );
        assert_eq!(again.text, r.text, "{case}: isolinux idempotent");

        // GRUB (UEFI).
        let base = std::fs::read_to_string(d.join("grub.cfg")).unwrap();
        let r = remaster_config(
            ConfigKind::GrubEfi,
            &base,
            grub_efi_commands(el, "x86_64"),
            &edits(label),
        );
        golden(&d.join("grub.cfg.result"), &r.text);
        let entries = grub_top_level(&r.text);
        let (title, lines) = &entries[grub_default(&r.text)];
        assert!(!title.starts_with("Test this media"), "{case}: {title}");
        assert!(
            lines[0].contains("inst.ks=") && !lines[0].contains("rd.live.check"),
            "{case}: {lines:?}"
        );
        assert!(
            entries
                .iter()
                .any(|(t, l)| t.starts_with("Test this media") && l[0].contains("rd.live.check")),
            "{case}: media check entry kept: {entries:?}"
        );
        // The release's own UEFI kernel commands on every entry.
        let (linux, initrd) = grub_efi_commands(el, "x86_64");
        for l in r.text.lines().map(str::trim_start) {
            if l.starts_with("linux") {
                assert!(l.starts_with(&format!("{linux} ")), "{case}: {l}");
            }
            if l.starts_with("initrd") {
                assert!(l.starts_with(&format!("{initrd} ")), "{case}: {l}");
            }
        }
        let again = remaster_config(
            ConfigKind::GrubEfi,
            &r.text,
            grub_efi_commands(el, "x86_64"),
            &edits(label),
        );
        assert_eq!(again.text, r.text, "{case}: grub idempotent");
    }
}

#[test]
fn el_releases_use_their_media_grub_commands() {
    // lorax rhel7/8/9-branch grub2-efi.cfg: linuxefi/initrdefi on every x86_64 EL the project installs; the
    // aarch64 media's grub.cfg says linux/initrd.
    for el in [7, 8, 9] {
        assert_eq!(
            grub_efi_commands(el, "x86_64"),
            ("linuxefi", "initrdefi"),
            "EL{el}"
        );
        assert_eq!(
            grub_efi_commands(el, "aarch64"),
            ("linux", "initrd"),
            "EL{el} aarch64"
        );
    }
    // BIOS GRUB has no EFI loader: its commands are never rewritten.
    let bios = "set default=\"1\"\nmenuentry 'Install' {\n\tlinux /images/pxeboot/vmlinuz quiet\n\tinitrd /images/pxeboot/initrd.img\n}\nmenuentry 'Test this media & install' {\n\tlinux /images/pxeboot/vmlinuz rd.live.check quiet\n\tinitrd /images/pxeboot/initrd.img\n}\n";
    let r = remaster_config(
        ConfigKind::GrubBios,
        bios,
        grub_efi_commands(7, "x86_64"),
        &[],
    );
    assert!(
        r.text.contains("\tlinux /images/pxeboot/vmlinuz quiet\n"),
        "{}",
        r.text
    );
    assert!(r.text.starts_with("set default=\"0\"\n"), "{}", r.text);
}

#[test]
fn isolinux_without_a_menu_names_the_install_entry_in_default() {
    let d = dir().join("no-menu");
    let base = std::fs::read_to_string(d.join("isolinux.cfg")).unwrap();
    let r = remaster_config(
        ConfigKind::Isolinux,
        &base,
        grub_efi_commands(9, "x86_64"),
        &edits("Rocky-9-4-x86_64-dvd"),
    );
    golden(&d.join("isolinux.cfg.result"), &r.text);
    assert!(r.text.starts_with("default linux\n"), "{}", r.text);
}

#[test]
fn user_arguments_that_would_break_a_config_are_refused_naming_the_flag() {
    for bad in [
        "a=\"b c\"",
        "x='y'",
        "ks=$url",
        "a;reboot",
        "a}",
        "x=1\ny=2",
        "x=1\r",
        "#comment",
        "a|b",
        "a&&b",
        "`id`",
        "=value",
        "   ",
        "a\u{7f}",
    ] {
        let e = parse_append("--append", &[bad.to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--append: '"), "{bad:?}: {e}");
        assert!(!e.contains('\n'), "{bad:?}: one line: {e:?}");
    }
    for bad in ["quiet=1", "a b", "", "kubeha.", "x\"", "inst.ks\n"] {
        let e = parse_remove("--remove-arg", &[bad.to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--remove-arg: '"), "{bad:?}: {e}");
        assert!(!e.contains('\n'), "{bad:?}: one line: {e:?}");
    }
    assert!(parse_remove("--remove-arg", &["quiet=1".into()])
        .unwrap_err()
        .to_string()
        .contains("name only"));
    // What is fine: several arguments in one value, commas, colons, slashes, an escaped label.
    let ok = parse_append(
        "--append",
        &[
            "console=tty0 console=ttyS0,115200n8".into(),
            "inst.stage2=hd:LABEL=CentOS\\x207\\x20x86_64 ip=10.0.0.5::10.0.0.1:255.255.255.0:n1:eth0:none".into(),
            "rd.debug".into(),
        ],
    )
    .unwrap();
    assert_eq!(
        ok.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        [
            "console=tty0",
            "console=ttyS0,115200n8",
            "inst.stage2=hd:LABEL=CentOS\\x207\\x20x86_64",
            "ip=10.0.0.5::10.0.0.1:255.255.255.0:n1:eth0:none",
            "rd.debug"
        ]
    );
    // --remove-arg NAME removes NAME and NAME=..., nothing with a longer name.
    let edit = ArgEdit {
        remove: parse_remove("--remove-arg", &["console".into(), "quiet".into()]).unwrap(),
        add: vec![],
    };
    let args = kubeha_image::bootcfg::split_args(
        "console=tty0 quiet console=ttyS0 consoleblank=0 rd.live.check",
    );
    assert_eq!(
        edit.apply(args)
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["consoleblank=0", "rd.live.check"]
    );
}
