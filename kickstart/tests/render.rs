//! Every kickstart variant: golden text, ksvalidator (no error, no warning) for its EL release, and the `%pre`
//! script run for real against a fake sysfs, its `%include` output validated too.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubeha_kickstart::{firewall_line, render, root_label, Options, Source};
use kubeha_model::cluster::{CgroupVersion, Role};
use kubeha_model::Cluster;

fn cluster() -> Cluster {
    let mut c = Cluster::default_cluster();
    c.install.root_ssh_keys = vec![
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKubehaTestKeyOnlyForGoldenFiles00000000 ops@example"
            .into(),
    ];
    c.install.root_password_hash = Some("$6$kubehasalt$Q0mXx4wP0gS0Jm7xYc1tq8yqYH9b1Yw7J3C1tS3e0q0b7rG6d9Gm2s0lW3y6dJd3b9oY3m6mQxB2n9lR3f1yA/".into());
    c.ntp.servers = vec!["ntp1.example.net".into(), "10.0.0.1".into()];
    c.networking.gateway = Some("192.168.20.1".parse().unwrap());
    c.networking.nameservers = vec![
        "192.168.20.1".parse().unwrap(),
        "192.168.20.2".parse().unwrap(),
    ];
    c.masters[0].mac = Some("52:54:00:AA:00:01".into());
    c.masters[0].disk = Some("/dev/vda".into());
    c.workers[0].mac = Some("52-54-00-bb-00-01".into());
    c
}

struct Case {
    name: &'static str,
    el: u8,
    source: Source,
    node: Option<&'static str>,
    bare: bool,
    /// `[install] cgroup`.
    cgroup: Option<CgroupVersion>,
}

fn cases() -> Vec<Case> {
    let http = || Source::Http("http://192.168.20.5:8080/kubeha".into());
    vec![
        Case {
            name: "el7-media-auto",
            el: 7,
            source: Source::Media,
            node: None,
            bare: false,
            cgroup: None,
        },
        Case {
            name: "el8-media-auto",
            el: 8,
            source: Source::Media,
            node: None,
            bare: false,
            cgroup: None,
        },
        Case {
            name: "el9-media-auto",
            el: 9,
            source: Source::Media,
            node: None,
            bare: false,
            cgroup: None,
        },
        Case {
            name: "el7-http-node01",
            el: 7,
            source: http(),
            node: Some("k8s-node01"),
            bare: false,
            cgroup: None,
        },
        Case {
            name: "el8-http-master01",
            el: 8,
            source: http(),
            node: Some("k8s-master01"),
            bare: false,
            cgroup: None,
        },
        Case {
            name: "el9-http-master01",
            el: 9,
            source: http(),
            node: Some("k8s-master01"),
            bare: false,
            cgroup: None,
        },
        Case {
            name: "el9-media-bare",
            el: 9,
            source: Source::Media,
            node: None,
            bare: true,
            cgroup: None,
        },
        Case {
            name: "el7-media-bare",
            el: 7,
            source: Source::Media,
            node: None,
            bare: true,
            cgroup: None,
        },
        Case {
            name: "el8-media-cgroup-v2",
            el: 8,
            source: Source::Media,
            node: None,
            bare: false,
            cgroup: Some(CgroupVersion::V2),
        },
        Case {
            name: "el9-http-master01-cgroup-v1",
            el: 9,
            source: http(),
            node: Some("k8s-master01"),
            bare: false,
            cgroup: Some(CgroupVersion::V1),
        },
    ]
}

fn render_case(c: &Case) -> String {
    let mut cl = if c.bare {
        Cluster::default_cluster()
    } else {
        cluster()
    };
    cl.install.el = c.el;
    cl.install.cgroup = c.cgroup;
    let mut o = Options::new(c.el, c.source.clone());
    o.node = c.node.map(str::to_string);
    o.packages = vec![
        "kubeadm".into(),
        "kubelet".into(),
        "kubectl".into(),
        "containerd.io".into(),
    ];
    render(&cl, &o).unwrap_or_else(|e| panic!("{}: {e}", c.name))
}

/// Runs ksvalidator; fails on any error or any warning.
fn ksvalidate(name: &str, el: u8, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(format!("{name}.ks"));
    std::fs::write(&f, text).unwrap();
    let out = Command::new("ksvalidator")
        .args(["-v", &format!("RHEL{el}")])
        .arg(&f)
        .output()
        .expect("running ksvalidator (pip install pykickstart)");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{name}: ksvalidator -v RHEL{el} failed:\n{all}\n--- kickstart:\n{text}"
    );
    assert!(
        !all.to_lowercase().contains("warning") && !all.to_lowercase().contains("deprecat"),
        "{name}: ksvalidator -v RHEL{el} warned:\n{all}"
    );
}

fn section<'a>(ks: &'a str, head: &str) -> &'a str {
    let start = ks.find(head).unwrap_or_else(|| panic!("no {head}"));
    let body = &ks[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    &body[..body.find("%end\n").unwrap()]
}

fn golden(name: &str, text: &str) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.ks"));
    if std::env::var_os("KUBEHA_BLESS").is_some() {
        std::fs::write(&p, text).unwrap();
    }
    let want = std::fs::read_to_string(&p).unwrap_or_default();
    assert!(
        want == text,
        "Generated output does not match file: {} (KUBEHA_BLESS=1 rewrites it)",
        p.display()
    );
}

#[test]
fn every_variant_matches_golden_and_validates() {
    for c in cases() {
        let ks = render_case(&c);
        golden(c.name, &ks);
        ksvalidate(c.name, c.el, &ks);
        // Never a plain password, only inst.* boot options, and the pieces every variant needs.
        assert!(!ks.contains("--plaintext"), "{}", c.name);
        for want in [
            "selinux --permissive",
            "%post --nochroot",
            "systemctl enable kubeha-firstboot.service",
            "ignoredisk --only-use=",
            "install --sysroot \"$SYSROOT\" --from \"$SRC\"",
        ] {
            assert!(ks.contains(want), "{}: missing {want}", c.name);
        }
        // The installed kernel command line gets the cgroup hierarchy only when it is not the release's default.
        let arg = match (c.el, c.cgroup) {
            (8, Some(CgroupVersion::V2)) => Some("systemd.unified_cgroup_hierarchy=1"),
            (9, Some(CgroupVersion::V1)) => Some("systemd.unified_cgroup_hierarchy=0"),
            _ => None,
        };
        match arg {
            Some(a) => assert!(
                ks.contains(&format!("\nKERNEL_ARGS='{a}'\n")),
                "{}: missing {a}",
                c.name
            ),
            None => assert!(
                ks.contains("\nKERNEL_ARGS=''\n")
                    && !ks.contains("unified_cgroup_hierarchy=0")
                    && !ks.contains("unified_cgroup_hierarchy=1"),
                "{}",
                c.name
            ),
        }
        assert!(
            !ks.lines()
                .any(|l| l.contains("swap") && !l.starts_with('#'))
                && !ks.contains("autopart"),
            "{}: swap",
            c.name
        );
        let repo = match &c.source {
            Source::Media => {
                "repo --name=kubeha --baseurl=file:///run/install/repo/kubeha/rpms\n".to_string()
            }
            Source::Http(u) => format!("repo --name=kubeha --baseurl={u}/rpms\n"),
        };
        assert!(ks.contains(&repo), "{}: {repo}", c.name);
        if c.el == 9 && !c.bare {
            assert!(
                ks.contains("timesource --ntp-server=ntp1.example.net\n"),
                "{}",
                c.name
            );
            assert!(!ks.contains("--ntpservers"), "{}", c.name);
        } else if !c.bare {
            assert!(
                ks.contains("--ntpservers=ntp1.example.net,10.0.0.1"),
                "{}",
                c.name
            );
        }
        if c.bare {
            assert!(ks.contains("rootpw --lock\n"), "{}", c.name);
        } else {
            assert!(ks.contains("rootpw --iscrypted"), "{}", c.name);
            assert_eq!(
                ks.contains("sshkey --username=root"),
                c.el >= 8,
                "{}",
                c.name
            );
            assert!(ks.contains("ssh-ed25519 AAAA"), "{}", c.name);
        }
        match c.node {
            Some(n) => {
                let (role, _) = Cluster::default_cluster().node(n).unwrap();
                assert!(
                    ks.contains(&format!("\n{}\n", firewall_line(&cluster(), role))),
                    "{}: the {role}'s firewall line",
                    c.name
                );
            }
            None => assert!(
                ks.contains("\n%include /tmp/kubeha-firewall.ks\n"),
                "{}",
                c.name
            ),
        }
        match c.node {
            Some("k8s-master01") => {
                assert!(ks.contains("network --device=52:54:00:aa:00:01 --bootproto=static --ip=192.168.20.20 --netmask=255.255.255.0 --gateway=192.168.20.1 --nameserver=192.168.20.1,192.168.20.2 --hostname=k8s-master01"), "{}", c.name);
                assert!(ks.contains("ignoredisk --only-use=vda\n"), "{}", c.name);
                assert!(
                    ks.contains("clearpart --all --initlabel --drives=vda\n"),
                    "{}",
                    c.name
                );
            }
            Some(_) => assert!(ks.contains("%include /tmp/kubeha-storage.ks"), "{}", c.name),
            None => {
                assert!(ks.contains("%include /tmp/kubeha-network.ks"), "{}", c.name);
                assert!(ks.contains("%include /tmp/kubeha-storage.ks"), "{}", c.name);
            }
        }
    }
}

/// A fake /sys: block devices (name, removable, size) and NICs (name, MAC).
fn fake_sys(root: &Path, disks: &[(&str, u8, u64)], nics: &[(&str, &str)]) {
    for (d, removable, size) in disks {
        let p = root.join("block").join(d);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("removable"), format!("{removable}\n")).unwrap();
        std::fs::write(p.join("size"), format!("{size}\n")).unwrap();
        std::fs::write(p.join("ro"), "0\n").unwrap();
    }
    for (n, mac) in nics {
        let p = root.join("class/net").join(n);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("address"), format!("{mac}\n")).unwrap();
    }
}

struct PreRun {
    ok: bool,
    /// The exit code (3: refused to wipe an installed node).
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Whether the halt hook ran.
    halted: bool,
    /// What went to the console hook.
    console: String,
    storage: String,
    network: String,
    firewall: String,
    protocols: String,
    args: String,
}

fn run_pre(ks: &str, cmdline: &str, disks: &[(&str, u8, u64)], nics: &[(&str, &str)]) -> PreRun {
    run_pre_on(ks, cmdline, disks, nics, None, &[])
}

/// Runs `%pre` with a fake /sys and /dev: `dev` (default: an empty directory, so no host device is ever probed)
/// and `partitions` (disk, partition) listed in sysfs as the kernel does. The consoles and the halt are hooks:
/// nothing here writes to a real console or halts the machine.
fn run_pre_on(
    ks: &str,
    cmdline: &str,
    disks: &[(&str, u8, u64)],
    nics: &[(&str, &str)],
    dev: Option<&Path>,
    partitions: &[(&str, &str)],
) -> PreRun {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    fake_sys(&sys, disks, nics);
    for (d, p) in partitions {
        let part = sys.join("class/block").join(d).join(p);
        std::fs::create_dir_all(&part).unwrap();
        std::fs::write(part.join("partition"), "1\n").unwrap();
    }
    let empty_dev = dir.path().join("dev");
    std::fs::create_dir_all(&empty_dev).unwrap();
    let dev = dev.unwrap_or(&empty_dev);
    let console = dir.path().join("console");
    let halted = dir.path().join("halted");
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(dir.path().join("cmdline"), format!("{cmdline}\n")).unwrap();
    let script = dir.path().join("pre.sh");
    std::fs::write(&script, section(ks, "%pre ")).unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .env("KUBEHA_CMDLINE", dir.path().join("cmdline"))
        .env("KUBEHA_SYS", &sys)
        .env("KUBEHA_OUT", &out_dir)
        .env("KUBEHA_DEV", dev)
        .env("KUBEHA_CONSOLE", &console)
        .env("KUBEHA_HALT", format!("touch {}", halted.display()))
        .output()
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(out_dir.join(f)).unwrap_or_default();
    PreRun {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        halted: halted.exists(),
        console: std::fs::read_to_string(&console).unwrap_or_default(),
        storage: read("kubeha-storage.ks"),
        network: read("kubeha-network.ks"),
        firewall: read("kubeha-firewall.ks"),
        protocols: read("kubeha-protocols"),
        args: read("kubeha-args"),
    }
}

#[test]
fn pre_chooses_one_disk_and_the_node_and_its_includes_validate() {
    for c in cases().into_iter().filter(|c| c.node.is_none()) {
        let ks = render_case(&c);
        let disks = [
            ("loop0", 0, 100),
            ("sr0", 1, 100),
            ("sda", 1, 1000),
            ("nvme0n1", 0, 0),
            ("vdb", 0, 5000),
            ("vdc", 0, 9000),
        ];
        // Named node with a disk in cluster.toml: that disk, static network, identity kept.
        let r = run_pre(
            &ks,
            "inst.ks=x kubeha.name=k8s-master01 kubeha.report=http://10.0.0.9/r",
            &disks,
            &[("eth0", "52:54:00:00:00:09")],
        );
        if c.bare {
            // The bare cluster knows no disk for master01: the first non-removable, non-empty disk.
            assert!(r.ok, "{}: {}", c.name, r.stderr);
            assert!(
                r.storage.starts_with("ignoredisk --only-use=vdb\n"),
                "{}: {}",
                c.name,
                r.storage
            );
            assert!(
                r.network
                    .contains("--ip=192.168.20.20 --netmask=255.255.255.0 --hostname=k8s-master01"),
                "{}: {}",
                c.name,
                r.network
            );
            assert!(
                r.network.contains("--device=link"),
                "{}: {}",
                c.name,
                r.network
            );
            continue;
        }
        assert!(r.ok, "{}: {}", c.name, r.stderr);
        assert!(
            r.storage.starts_with("ignoredisk --only-use=vda\n"),
            "{}: {}",
            c.name,
            r.storage
        );
        assert_eq!(
            r.storage.matches("vda").count(),
            4,
            "{}: every disk reference is vda: {}",
            c.name,
            r.storage
        );
        assert!(
            r.network
                .contains("--device=52:54:00:aa:00:01 --bootproto=static --ip=192.168.20.20"),
            "{}: {}",
            c.name,
            r.network
        );
        assert_eq!(
            r.args.trim(),
            "kubeha.role=master kubeha.name=k8s-master01 kubeha.report=http://10.0.0.9/r",
            "{}",
            c.name
        );
        let cl = cluster();
        assert_eq!(
            (r.firewall.trim(), r.protocols.trim()),
            (firewall_line(&cl, Role::Master).as_str(), "112 4"),
            "{}",
            c.name
        );
        let full = ks
            .replace("%include /tmp/kubeha-network.ks\n", &r.network)
            .replace("%include /tmp/kubeha-storage.ks\n", &r.storage)
            .replace("%include /tmp/kubeha-firewall.ks\n", &r.firewall);
        ksvalidate(&format!("{}-included", c.name), c.el, &full);

        // No name: found by MAC (upper case in sysfs), disk = first non-removable non-empty one.
        let r = run_pre(
            &ks,
            "inst.ks=x",
            &disks,
            &[("lo", "00:00:00:00:00:00"), ("ens3", "52:54:00:BB:00:01")],
        );
        assert!(r.ok, "{}: {}", c.name, r.stderr);
        assert_eq!(
            r.args.trim(),
            "kubeha.role=worker kubeha.name=k8s-node01",
            "{}",
            c.name
        );
        assert_eq!(
            (r.firewall.trim(), r.protocols.trim()),
            (firewall_line(&cl, Role::Worker).as_str(), "4"),
            "{}",
            c.name
        );
        assert!(
            r.storage.starts_with("ignoredisk --only-use=vdb\n"),
            "{}: {}",
            c.name,
            r.storage
        );
        assert!(
            !r.storage.contains("vdc"),
            "{}: never a second disk",
            c.name
        );

        // kubeha.disk= overrides; unknown machine gets DHCP and no identity.
        let r = run_pre(
            &ks,
            "kubeha.disk=/dev/vdc",
            &disks,
            &[("eth0", "52:54:00:00:00:77")],
        );
        assert!(r.ok, "{}: {}", c.name, r.stderr);
        assert!(
            r.storage.starts_with("ignoredisk --only-use=vdc\n"),
            "{}: {}",
            c.name,
            r.storage
        );
        assert_eq!(
            r.network.trim(),
            "network --device=link --bootproto=dhcp --activate --onboot=on",
            "{}",
            c.name
        );
        assert_eq!(r.args.trim(), "", "{}", c.name);
        // Role unknown at install time: the master's set, which holds the worker's.
        assert_eq!(
            r.firewall.trim(),
            firewall_line(&cl, Role::Master),
            "{}",
            c.name
        );
        let full = ks
            .replace("%include /tmp/kubeha-network.ks\n", &r.network)
            .replace("%include /tmp/kubeha-storage.ks\n", &r.storage)
            .replace("%include /tmp/kubeha-firewall.ks\n", &r.firewall);
        ksvalidate(&format!("{}-dhcp", c.name), c.el, &full);

        // Wipe guard: no fixed disk at all -> the install stops before anything is written.
        let r = run_pre(&ks, "inst.ks=x", &[("sda", 1, 1000), ("loop0", 0, 10)], &[]);
        assert!(!r.ok, "{}: must refuse without a disk", c.name);
        assert!(
            r.stderr.contains("no install disk"),
            "{}: {}",
            c.name,
            r.stderr
        );
        assert!(r.storage.is_empty(), "{}", c.name);

        // A name that is not in the cluster is refused.
        let r = run_pre(&ks, "kubeha.name=intruder", &disks, &[]);
        assert!(
            !r.ok && r.stderr.contains("intruder"),
            "{}: {}",
            c.name,
            r.stderr
        );
    }
}

/// The `%post --nochroot` tail that puts the kept arguments on the installed kernel command line, run with a
/// stand-in `chroot` that records what grubby gets.
#[test]
fn cgroup_argument_reaches_grubby() {
    let c = cases()
        .into_iter()
        .find(|c| c.name == "el8-media-cgroup-v2")
        .unwrap();
    let ks = render_case(&c);
    let post = section(&ks, "%post --nochroot");
    let tail = &post[post.find("# Keep the node's identity").unwrap()..];
    // Up to the closing report to kubeha.report= (its own test is in cli/tests/serve_cli.rs).
    let tail = &tail[..tail.find("\nreport installed").unwrap()];
    for (args_file, want) in [
        (
            Some("kubeha.role=master kubeha.name=k8s-master01\n"),
            "grubby --update-kernel=ALL --args=kubeha.role=master kubeha.name=k8s-master01 systemd.unified_cgroup_hierarchy=1",
        ),
        (None, "grubby --update-kernel=ALL --args=systemd.unified_cgroup_hierarchy=1"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        if let Some(a) = args_file {
            std::fs::write(out.join("kubeha-args"), a).unwrap();
        }
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let chroot = bin.join("chroot");
        std::fs::write(
            &chroot,
            format!(
                "#!/bin/sh\nshift\necho \"$@\" >> {}\n",
                dir.path().join("calls").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&chroot, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = format!("set -eu\nSYSROOT=/nonexistent\nOUT={}\n{tail}", out.display());
        let o = Command::new("bash")
            .args(["-c", &script])
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert_eq!(calls.trim(), want);
    }
}

#[test]
fn bad_input_is_named() {
    let mut c = cluster();
    c.install.root_password_hash = Some("hunter2".into());
    let e = render(&c, &Options::new(9, Source::Media))
        .unwrap_err()
        .to_string();
    assert!(e.contains("install.root-password-hash"), "{e}");
    let e = render(&cluster(), &Options::new(6, Source::Media))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--el"), "{e}");
    let e = render(&cluster(), &Options::new(9, Source::Http("ftp://x".into())))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--bundle-url"), "{e}");
    let mut c = cluster();
    c.install.cgroup = Some(CgroupVersion::V2);
    let e = render(&c, &Options::new(7, Source::Media))
        .unwrap_err()
        .to_string();
    assert!(e.contains("install.cgroup") && e.contains("EL7"), "{e}");
    let mut o = Options::new(9, Source::Media);
    o.node = Some("nope".into());
    assert!(render(&cluster(), &o)
        .unwrap_err()
        .to_string()
        .contains("nope"));
    let mut c = cluster();
    c.install.root_ssh_keys = vec!["ssh-rsa AAA\"; rm -rf /".into()];
    assert!(render(&c, &Options::new(8, Source::Media))
        .unwrap_err()
        .to_string()
        .contains("root-ssh-keys[0]"));
}

/// A raw filesystem image, as a partition of an installed node looks to blkid: no loop device, no mount.
fn mkfs(kind: &str, path: &Path, label: Option<&str>) {
    let f = std::fs::File::create(path).unwrap();
    // mkfs.xfs wants at least 300 MiB; sparse, so it costs a few MiB of disk.
    f.set_len(if kind == "xfs" { 300 << 20 } else { 16 << 20 })
        .unwrap();
    let mut cmd = Command::new(format!("mkfs.{kind}"));
    cmd.arg("-q");
    if let Some(l) = label {
        cmd.args(["-L", l]);
    }
    if kind == "ext4" {
        cmd.arg("-F");
    }
    let out = cmd
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("mkfs.{kind} (xfsprogs/e2fsprogs): {e}"));
    assert!(
        out.status.success(),
        "mkfs.{kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256_of(p: &Path) -> Vec<u8> {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    out.stdout
}

/// The install-once guard, run for real: `%pre` against a disk whose partitions are raw filesystem images made by
/// mkfs.xfs (the root filesystem an install leaves, labelled as the kickstart labels it) and mkfs.ext4 (/boot),
/// with and without the label, with kubeha.reinstall=1, and for another cluster's disk.
#[test]
fn pre_refuses_to_wipe_a_disk_that_holds_this_clusters_node() {
    let cl = cluster();
    let label = root_label(&cl.cluster.name);
    assert_eq!(label.len(), 12, "XFS labels hold 12 characters: {label}");
    assert!(label.starts_with("kubeha"), "{label}");
    assert_ne!(label, root_label("another-cluster"));

    let disks = tempfile::tempdir().unwrap();
    let dev = |name: &str| disks.path().join(name);
    // dev/<case>/: vdb (the whole disk, its partition table not read), vdb1 = /boot (ext4), vdb2 = / (xfs).
    let make_disk = |case: &str, root: Option<&str>| -> PathBuf {
        let d = dev(case);
        std::fs::create_dir_all(d.join("disk/by-id")).unwrap();
        std::fs::write(d.join("vdb"), vec![0u8; 1 << 20]).unwrap();
        mkfs("ext4", &d.join("vdb1"), None);
        mkfs("xfs", &d.join("vdb2"), root);
        std::os::unix::fs::symlink("../../vdb", d.join("disk/by-id/virtio-node01")).unwrap();
        // The same partitions as vda, for the kickstart that names master01's disk itself.
        std::fs::write(d.join("vda"), vec![0u8; 1 << 20]).unwrap();
        for p in ["vda1", "vda2"] {
            std::os::unix::fs::symlink(d.join(p.replace("vda", "vdb")), d.join(p)).unwrap();
        }
        d
    };
    let installed = make_disk("installed", Some(&label));
    let foreign = make_disk("foreign", Some(&root_label("another-cluster")));
    let blank = make_disk("unlabelled", None);
    let before = sha256_of(&installed.join("vdb2"));

    let sys_disks = [("sr0", 1, 100), ("vda", 0, 0), ("vdb", 0, 5000)];
    let parts = [("vdb", "vdb1"), ("vdb", "vdb2")];
    let ks = render_case(
        &cases()
            .into_iter()
            .find(|c| c.name == "el9-media-auto")
            .unwrap(),
    );
    assert!(
        ks.contains(&format!(" --label={label}\n")) || ks.contains(" --label=$ROOT_LABEL\n"),
        "the install labels its root filesystem"
    );
    assert!(ks.contains(&format!("ROOT_LABEL='{label}'")), "{ks}");
    let pre = |cmdline: &str, d: &Path| run_pre_on(&ks, cmdline, &sys_disks, &[], Some(d), &parts);

    // The disk holds this cluster's node: refused, said on the console, halted, nothing written.
    let r = pre("inst.ks=x kubeha.name=k8s-node01", &installed);
    assert_eq!(r.code, Some(3), "refused: {}{}", r.stdout, r.stderr);
    assert!(r.halted, "halts");
    for text in [&r.console, &r.stderr] {
        assert!(
            text.contains(&format!(
                "REFUSING TO INSTALL: disk vdb already holds a node of cluster {} (filesystem vdb2, label {label})",
                cl.cluster.name
            )),
            "{text}"
        );
        assert!(text.contains("'k8s-node01'"), "{text}");
        assert!(text.contains("Halting, not rebooting"), "{text}");
        assert!(text.contains("kubeha.reinstall=1"), "{text}");
    }
    assert!(
        r.storage.is_empty() && r.network.is_empty() && r.firewall.is_empty() && r.args.is_empty(),
        "nothing written for the installer: {}",
        r.storage
    );
    assert_eq!(
        sha256_of(&installed.join("vdb2")),
        before,
        "the disk is untouched"
    );

    // kubeha.reinstall=1: the deliberate reimage goes ahead, and says so.
    let r = pre("kubeha.name=k8s-node01 kubeha.reinstall=1", &installed);
    assert!(r.ok, "{}", r.stderr);
    assert!(!r.halted);
    assert!(
        r.stdout.contains("kubeha.reinstall=1, reinstalling"),
        "{}",
        r.stdout
    );
    assert!(
        r.storage.starts_with("ignoredisk --only-use=vdb\n")
            && r.storage.contains(&format!(
                "part / --fstype=xfs --size=8192 --grow --ondisk=vdb --label={label}\n"
            )),
        "{}",
        r.storage
    );

    // Anything but 1 is not a yes.
    let r = pre("kubeha.name=k8s-node01 kubeha.reinstall=yes", &installed);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("kubeha.reinstall=yes: expected 1"),
        "{}",
        r.stderr
    );
    let r = pre("kubeha.name=k8s-node01 kubeha.reinstall=0", &installed);
    assert_eq!(r.code, Some(3), "{}", r.stderr);

    // The disk named by id (kubeha.disk=disk/by-id/...) is the same disk.
    let r = pre("kubeha.disk=disk/by-id/virtio-node01", &installed);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.halted);

    // Another cluster's node, an unlabelled root, no filesystem at all: installs as before.
    for (d, what) in [(&foreign, "another cluster"), (&blank, "unlabelled")] {
        let r = pre("kubeha.name=k8s-node01", d);
        assert!(r.ok && !r.halted, "{what}: {}", r.stderr);
        assert!(
            r.storage.starts_with("ignoredisk --only-use=vdb\n"),
            "{what}"
        );
    }
    let r = run_pre_on(&ks, "kubeha.name=k8s-node01", &sys_disks, &[], None, &[]);
    assert!(r.ok && !r.halted, "empty disk: {}", r.stderr);

    // A kickstart for a known node with its disk (storage in the kickstart itself): the guard still runs.
    let known = render_case(
        &cases()
            .into_iter()
            .find(|c| c.name == "el8-http-master01")
            .unwrap(),
    );
    assert!(
        known.contains(&format!(
            "part / --fstype=xfs --size=8192 --grow --ondisk=vda --label={label}\n"
        )),
        "{known}"
    );
    let r = run_pre_on(
        &known,
        "inst.ks=x",
        &sys_disks,
        &[],
        Some(&installed),
        &[("vda", "vda1"), ("vda", "vda2")],
    );
    assert_eq!(r.code, Some(3), "{}{}", r.stdout, r.stderr);
    assert!(
        r.console.contains("disk vda already holds"),
        "{}",
        r.console
    );
    assert_eq!(
        sha256_of(&installed.join("vdb2")),
        before,
        "still untouched"
    );
}

/// Outside the installer (no /.buildstamp) and without the hooks, a refusal only says no: it never writes to this
/// machine's consoles or halts it.
#[test]
fn pre_never_halts_outside_the_installer() {
    let ks = render_case(
        &cases()
            .into_iter()
            .find(|c| c.name == "el9-media-auto")
            .unwrap(),
    );
    assert!(
        !Path::new("/.buildstamp").exists(),
        "not an installer image"
    );
    let pre = section(&ks, "%pre ");
    assert!(
        pre.contains("elif [ -e /.buildstamp ]; then") && pre.contains("halt -f -f"),
        "{pre}"
    );
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    mkfs(
        "xfs",
        &dev.join("vdb"),
        Some(&root_label(&cluster().cluster.name)),
    );
    let sys = dir.path().join("sys");
    fake_sys(&sys, &[("vdb", 0, 5000)], &[]);
    std::fs::write(dir.path().join("cmdline"), "kubeha.name=k8s-node01\n").unwrap();
    std::fs::write(dir.path().join("pre.sh"), pre).unwrap();
    let out = Command::new("bash")
        .arg(dir.path().join("pre.sh"))
        .env("KUBEHA_CMDLINE", dir.path().join("cmdline"))
        .env("KUBEHA_SYS", &sys)
        .env("KUBEHA_OUT", dir.path())
        .env("KUBEHA_DEV", &dev)
        .env_remove("KUBEHA_HALT")
        .env_remove("KUBEHA_CONSOLE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REFUSING TO INSTALL: disk vdb"));
}

/// `%pre`'s media label (the disk the installer booted from is never the install disk) comes from `inst.stage2=` by
/// shell parameter expansion; it reads exactly what the former `sed -n 's/^hd:LABEL=\([^:]*\).*/\1/p'` read, checked
/// against sed itself on the forms the media write and some that are not labels.
#[test]
fn media_label_from_inst_stage2_reads_what_sed_read() {
    let ks = render(&cluster(), &Options::new(9, Source::Media)).unwrap();
    let pre = section(&ks, "\n%pre ");
    let start = pre
        .find("stage2=$(arg inst.stage2)")
        .expect("the stage2 lookup");
    let end = start + pre[start..].find("esac\n").unwrap() + "esac\n".len();
    let snippet = &pre[start..end];
    assert!(
        !snippet.contains("sed") && !snippet.contains("awk"),
        "{snippet}"
    );
    let arg = "arg() { v=\"\"; for a in $cmdline; do case \"$a\" in \"$1=\"*) v=${a#*=} ;; esac; done; printf '%s' \"$v\"; }\n";
    for cmdline in [
        "inst.stage2=hd:LABEL=Rocky-9-4-x86_64-dvd quiet",
        "inst.stage2=hd:LABEL=CentOS\\x207\\x20x86_64:/images/install.img",
        "inst.stage2=hd:LABEL=",
        "inst.stage2=http://10.0.0.1/os",
        "inst.stage2=hd:sr0:/x",
        "inst.stage2=hd:LABEL=a inst.stage2=hd:LABEL=b:c",
        "inst.stage2=hd:LABEL=x:/a:b",
        "quiet",
    ] {
        let ours =
            format!("set -eu\ncmdline='{cmdline}'\n{arg}{snippet}printf '%s' \"$media_label\"\n");
        let theirs = format!(
            "set -eu\ncmdline='{cmdline}'\n{arg}arg inst.stage2 | sed -n 's/^hd:LABEL=\\([^:]*\\).*/\\1/p'\n"
        );
        let run = |script: &str| {
            let o = Command::new("bash").args(["-c", script]).output().unwrap();
            assert!(o.status.success(), "{script}: {o:?}");
            String::from_utf8(o.stdout).unwrap()
        };
        assert_eq!(run(&ours), run(&theirs).trim_end_matches('\n'), "{cmdline}");
    }
}
