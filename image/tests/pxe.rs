//! `kubeha pxe` tree contents (no boot): per-MAC files for pxelinux, GRUB and iPXE, local boot by default, the
//! install entry only for nodes asked for, the bundle served beside them, and the refusals.

mod common;

use std::path::Path;

use common::*;
use kubeha_image::pxe::{write_tree, Boot, Install, PxeSpec};
use kubeha_model::{NodeConfig, Secrets};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn per_mac_entries_default_to_local_disk_unless_installing() {
    let dir = tempfile::tempdir().unwrap();
    let r = tree(
        dir.path(),
        Install::Nodes(vec!["k8s-master01".into()]),
        false,
    );
    assert_eq!(r.el, 9);
    let t = dir.path().join("tftp");
    for f in [
        "pxelinux.0",
        "ldlinux.c32",
        "menu.c32",
        "images/pxeboot/vmlinuz",
        "images/pxeboot/initrd.img",
        "os/.treeinfo",
        "kubeha/bundle.toml",
        "kubeha/rpms/repodata/repomd.xml",
        "kubeha/agent/kubeha-firstboot",
        "kubeha/agent/kubeha-firstboot.service",
        "kubeha/node.toml",
        "ks.cfg",
        "boot.ipxe",
        "grub.cfg",
    ] {
        assert!(t.join(f).is_file(), "{f} missing");
    }
    let m = read(&t.join("pxelinux.cfg/01-52-54-00-12-34-01"));
    assert!(m.contains("\ndefault install\n"), "{m}");
    assert!(m.contains("append initrd=images/pxeboot/initrd.img inst.repo=http://10.0.2.2:8080/os inst.ks=http://10.0.2.2:8080/ks.cfg ip=dhcp kubeha.role=master kubeha.name=k8s-master01"), "{m}");
    let w = read(&t.join("pxelinux.cfg/01-52-54-00-12-34-11"));
    assert!(
        w.contains("\ndefault local\n"),
        "not asked for: local disk: {w}"
    );
    assert!(
        w.contains("kubeha.role=worker kubeha.name=k8s-node01"),
        "{w}"
    );
    let d = read(&t.join("pxelinux.cfg/default"));
    assert!(
        d.contains("default local\n") && d.contains("label install-k8s-node08"),
        "{d}"
    );
    assert!(!t.join("pxelinux.cfg/01-").exists());
    assert_eq!(
        std::fs::read_dir(t.join("pxelinux.cfg")).unwrap().count(),
        3,
        "default + one per node with a MAC"
    );

    let g = read(&t.join("grub.cfg-01-52-54-00-12-34-01"));
    assert!(g.contains("set default=install-k8s-master01"), "{g}");
    assert!(g.contains("\tlinuxefi /images/pxeboot/vmlinuz inst.repo=http://10.0.2.2:8080/os inst.ks=http://10.0.2.2:8080/ks.cfg ip=dhcp kubeha.role=master kubeha.name=k8s-master01\n"), "{g}");
    assert!(read(&t.join("grub.cfg-01-52-54-00-12-34-11")).contains("set default=local"));
    let root = read(&t.join("grub.cfg"));
    assert!(root.contains("if [ \"$net_default_mac\" = \"52:54:00:12:34:01\" ]; then\n\tsource $prefix/grub.cfg-01-52-54-00-12-34-01"), "{root}");
    assert!(root.contains("set default=local"), "{root}");

    let ip = read(&t.join("boot.ipxe"));
    assert!(ip.starts_with("#!ipxe\n"));
    assert!(
        ip.contains("iseq ${net0/mac} 52:54:00:12:34:01 && goto k8s-master01 ||"),
        "{ip}"
    );
    assert!(
        ip.contains("iseq ${net0/mac} 52:54:00:12:34:11 && goto local ||"),
        "{ip}"
    );
    assert!(
        ip.contains(
            "kernel http://10.0.2.2:8080/images/pxeboot/vmlinuz initrd=initrd.img inst.repo="
        ),
        "{ip}"
    );

    // The kickstart installs the bundle over HTTP and validates.
    let ks = read(&t.join("ks.cfg"));
    assert!(
        ks.contains("repo --name=kubeha --baseurl=http://10.0.2.2:8080/kubeha/rpms\n"),
        "{ks}"
    );
    sh(std::process::Command::new("ksvalidator")
        .args(["-v", "RHEL9"])
        .arg(t.join("ks.cfg")));
    // Shared node config: no private key, bundle URL set.
    let nc = read(&t.join("kubeha/node.toml"));
    assert!(!nc.contains("PRIVATE KEY"));
    assert!(nc.contains("url = \"http://10.0.2.2:8080/kubeha\""), "{nc}");
    assert!(!t.join("kubeha/nodes").exists());
}

#[test]
fn embedded_master_configs_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), Install::All, true);
    let t = dir.path().join("tftp");
    let text = read(&t.join("kubeha/nodes/k8s-master01.toml"));
    assert!(text.contains("PRIVATE KEY"));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(t.join("kubeha/nodes/k8s-master01.toml")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "CA keys never world-readable");
    // With the web server's group (--web-group): 0640 and that group.
    let d2 = tempfile::tempdir().unwrap();
    let gid = std::fs::metadata(d2.path()).unwrap().gid();
    common::tree_full(d2.path(), Install::All, true, Default::default(), Some(gid));
    let meta = std::fs::metadata(d2.path().join("tftp/kubeha/nodes/k8s-master01.toml")).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o640, gid));
    let sha = kubeha_image::pxe::sha256_hex(text.as_bytes());
    let m = read(&t.join("pxelinux.cfg/01-52-54-00-12-34-01"));
    assert!(m.contains(&format!("kubeha.config=http://10.0.2.2:8080/kubeha/nodes/k8s-master01.toml kubeha.config.sha256={sha}")), "{m}");
    let w = read(&t.join("pxelinux.cfg/01-52-54-00-12-34-11"));
    assert!(
        !w.contains("kubeha.config="),
        "workers get no master config: {w}"
    );
    assert!(w.contains("\ndefault install\n"), "--install all");
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster_with_macs();
    let secrets = Secrets::generate().unwrap();
    let nc = NodeConfig::build(&cluster, &secrets, None, None, false).unwrap();
    let bundle = dir.path().join("bundle");
    make_bundle(&bundle, "x86_64");
    let spec = |install: Install, http: &str, boot: Boot| PxeSpec {
        output: dir.path().join("tftp"),
        http_base: http.into(),
        boot,
        os_url: None,
        bundle: bundle.clone(),
        cluster: &cluster,
        node_config: &nc,
        master_configs: vec![],
        secret_group: None,
        install,
        reinstall: Install::None,
        user_args: Default::default(),
        agent: stand_in_agent(&dir.path().join("agent")),
        el: None,
        grub_efi: None,
        force: false,
    };
    let iso = || Boot::Iso(base_iso("rocky9"));
    // A truncated download of the base ISO: named before xorriso runs.
    let data = std::fs::read(base_iso("rocky9")).unwrap();
    let cut = dir.path().join("cut.iso");
    std::fs::write(&cut, &data[..data.len() / 3]).unwrap();
    for (s, want) in [
        (
            spec(Install::Nodes(vec!["nope".into()]), "http://h/", iso()),
            "nope",
        ),
        (
            PxeSpec {
                reinstall: Install::Nodes(vec!["ghost".into()]),
                ..spec(Install::None, "http://h/", iso())
            },
            "--reinstall: 'ghost' is not a node",
        ),
        (spec(Install::None, "ftp://h/", iso()), "--http-base"),
        (
            spec(Install::None, "http://h/", Boot::Iso(base_iso("aarch64"))),
            "aarch64",
        ),
        (
            spec(
                Install::None,
                "http://h/",
                Boot::Files {
                    kernel: "/nonexistent/vmlinuz".into(),
                    initrd: "/nonexistent/initrd".into(),
                },
            ),
            "/nonexistent/vmlinuz",
        ),
        (
            spec(Install::None, "http://h/", Boot::Iso(cut.clone())),
            "cut.iso: truncated: ",
        ),
    ] {
        let e = write_tree(&s).unwrap_err().to_string();
        assert!(e.contains(want), "{e} should name {want}");
        assert!(!dir.path().join("tftp").exists(), "nothing written: {e}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with(".kubeha-pxe")),
        "{left:?}"
    );
}

fn golden(path: &Path, text: &str) {
    if std::env::var_os("KUBEHA_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        want == text,
        "Generated output does not match file: {} (KUBEHA_BLESS=1 rewrites it)\n{text}",
        path.display()
    );
}

/// The boot menus per EL release (golden): UEFI GRUB entries use the commands that release's own media use
/// (linuxefi/initrdefi on x86_64 EL7, EL8 and EL9), --remove-arg/--append reach every install entry of
/// pxelinux, GRUB and iPXE, and --reinstall adds kubeha.reinstall=1 to that node's entries only.
#[test]
fn boot_menus_per_el_release_golden() {
    use kubeha_image::bootcfg::{parse_append, parse_remove, ArgEdit};
    for el in [7u8, 8, 9] {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster_with_macs();
        let secrets = Secrets::generate().unwrap();
        let nc = NodeConfig::build(&cluster, &secrets, None, None, false).unwrap();
        let bundle = dir.path().join("bundle");
        make_bundle_el(&bundle, "x86_64", el);
        let kernel = dir.path().join("vmlinuz");
        let initrd = dir.path().join("initrd.img");
        std::fs::write(&kernel, "kernel").unwrap();
        std::fs::write(&initrd, "initrd").unwrap();
        let t = dir.path().join("tftp");
        write_tree(&PxeSpec {
            output: t.clone(),
            http_base: "http://10.0.2.2:8080/".into(),
            boot: Boot::Files { kernel, initrd },
            os_url: Some("http://10.0.2.2:8080/os".into()),
            bundle,
            cluster: &cluster,
            node_config: &nc,
            master_configs: vec![],
            secret_group: None,
            install: Install::Nodes(vec!["k8s-master01".into()]),
            reinstall: Install::Nodes(vec!["k8s-node01".into()]),
            user_args: ArgEdit {
                remove: parse_remove("--remove-arg", &["ip".into()]).unwrap(),
                add: parse_append("--append", &["ip=dhcp rd.neednet=1 inst.sshd".into()]).unwrap(),
            },
            agent: stand_in_agent(&dir.path().join("agent")),
            el: Some(el),
            grub_efi: None,
            force: false,
        })
        .unwrap_or_else(|e| panic!("EL{el}: {e}"));
        let gdir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("pxe-el{el}"));
        for f in [
            "grub.cfg",
            "grub.cfg-01-52-54-00-12-34-01",
            "grub.cfg-01-52-54-00-12-34-11",
            "pxelinux.cfg/01-52-54-00-12-34-01",
            "pxelinux.cfg/01-52-54-00-12-34-11",
            "pxelinux.cfg/default",
            "boot.ipxe",
        ] {
            let text = read(&t.join(f));
            golden(&gdir.join(f.replace('/', "_")), &text);
            // Every install entry: the operator's arguments, one ip= (the removed one is gone).
            for l in text.lines().filter(|l| l.contains("inst.ks=")) {
                assert!(
                    l.ends_with("ip=dhcp rd.neednet=1 inst.sshd"),
                    "EL{el} {f}: {l}"
                );
                assert_eq!(l.matches(" ip=").count(), 1, "EL{el} {f}: {l}");
            }
        }
        // --install master01: installs, guarded; --reinstall node01: installs with kubeha.reinstall=1.
        let m = read(&t.join("pxelinux.cfg/01-52-54-00-12-34-01"));
        assert!(
            m.contains("\ndefault install\n")
                && m.lines()
                    .filter(|l| l.contains("inst.ks="))
                    .all(|l| !l.contains("kubeha.reinstall")),
            "{m}"
        );
        let n = read(&t.join("pxelinux.cfg/01-52-54-00-12-34-11"));
        assert!(
            n.contains("\ndefault install\n")
                && n.contains("kubeha.name=k8s-node01 kubeha.reinstall=1 "),
            "{n}"
        );
        let ip = read(&t.join("boot.ipxe"));
        assert!(
            ip.contains("iseq ${net0/mac} 52:54:00:12:34:11 && goto k8s-node01 ||"),
            "{ip}"
        );
        let g = read(&t.join("grub.cfg-01-52-54-00-12-34-01"));
        assert!(
            g.contains("\tlinuxefi /images/pxeboot/vmlinuz inst.repo=")
                && g.contains("\tinitrdefi /images/pxeboot/initrd.img\n"),
            "EL{el}: {g}"
        );
        assert!(
            !g.contains("\tlinux ") && !g.contains("\tinitrd "),
            "EL{el}: {g}"
        );
    }
}
