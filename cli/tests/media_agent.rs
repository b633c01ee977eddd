//! The node agent on the media: `kubeha iso` with default flags embeds the glibc-2.17 build of `make node-binary`
//! (read back from the ISO and judged by `objdump -T` and by `kubeha agent`), and an agent needing a newer glibc than
//! the target EL ships is refused before anything is written, by `kubeha iso` and `kubeha pxe`.
//!
//! The Makefile's `unit` target builds dist/kubeha-firstboot first and names it in KUBEHA_NODE_BINARY; without that
//! variable and without the file, the default-agent test says it is skipped.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{base_iso, cluster_and_secrets, common, glibc_2_34_agent, kubeha, s, text};

/// Parses `x.y[.z]` into comparable numbers.
fn ver(v: &str) -> Vec<u32> {
    v.split('.').map(|n| n.parse().unwrap()).collect()
}

/// The GLIBC versions `objdump -T` (the reference tool) lists for `file`'s symbols.
fn objdump_glibc(file: &Path) -> BTreeSet<Vec<u32>> {
    let out = common::sh(Command::new("objdump").arg("-T").arg(file));
    out.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .map(ver)
        .collect()
}

/// The `glibc:` line of `kubeha agent --agent FILE --el EL`, which must succeed.
fn our_newest_glibc(file: &Path, el: &str) -> Vec<u32> {
    let o = kubeha(&["agent", "--agent", s(file), "--el", el]);
    assert!(o.status.success(), "kubeha agent: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("glibc: "))
        .unwrap_or_else(|| panic!("no glibc line: {out}"));
    ver(line.split_whitespace().next().unwrap())
}

#[test]
fn iso_default_agent_is_the_glibc_2_17_build_and_starts_on_el7() {
    let dist = match std::env::var_os("KUBEHA_NODE_BINARY") {
        Some(p) => PathBuf::from(p),
        None => {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/kubeha-firstboot");
            if !p.is_file() {
                eprintln!(
                    "skipped: no dist/kubeha-firstboot (make node-binary; `make unit` builds it)"
                );
                return;
            }
            p
        }
    };
    assert!(
        dist.is_file(),
        "KUBEHA_NODE_BINARY={} is not a file",
        dist.display()
    );
    let d = tempfile::tempdir().unwrap();
    let (cluster, secrets) = cluster_and_secrets(d.path());
    let bundle = d.path().join("bundle");
    common::make_bundle_el(&bundle, "x86_64", 7);
    let base = base_iso("centos7");
    let iso = d.path().join("kubeha.iso");
    // Default flags: no --agent, no --el (EL7 comes from the base ISO's .treeinfo).
    let o = kubeha(&[
        "iso",
        "--base",
        s(&base),
        "--bundle",
        s(&bundle),
        "--cluster",
        s(&cluster),
        "--secrets",
        s(&secrets),
        "--role",
        "worker",
        "-o",
        s(&iso),
    ]);
    assert!(o.status.success(), "kubeha iso: {}", text(&o));
    let log = text(&o);
    assert!(
        log.contains("(make node-binary)") && log.contains("EL7 ships 2.17"),
        "{log}"
    );

    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let on_iso = common::iso_file(&iso, "/kubeha/agent/kubeha-firstboot", &work);
    assert!(
        on_iso == std::fs::read(&dist).unwrap(),
        "the ISO's agent is not {}",
        dist.display()
    );
    let agent = work.join("agent");
    std::fs::write(&agent, &on_iso).unwrap();

    // The reference: objdump -T lists no GLIBC symbol newer than 2.17.
    let versions = objdump_glibc(&agent);
    let newest = versions
        .iter()
        .next_back()
        .expect("objdump -T lists GLIBC symbols")
        .clone();
    assert!(
        newest <= ver("2.17"),
        "objdump -T: the agent needs GLIBC_{newest:?}"
    );
    // Our reader agrees on the newest version, and says it starts on EL7.
    assert_eq!(our_newest_glibc(&agent, "7"), newest);
}

#[test]
fn iso_refuses_a_glibc_2_34_agent_for_el8_and_takes_it_for_el9() {
    let d = tempfile::tempdir().unwrap();
    let (cluster, secrets) = cluster_and_secrets(d.path());
    let bundle = d.path().join("bundle");
    common::make_bundle_el(&bundle, "x86_64", 9);
    let base = base_iso("rocky9");
    let agent = glibc_2_34_agent(d.path());
    let iso = d.path().join("kubeha.iso");
    // The bundle's public key goes into the medium's node config.
    let key = "RWTbm8jWlj8i71XFDO1owNAWiVQmr6JQP1U6yayHPxv7Qo5COh4V9qfe";
    let pubkey = d.path().join("bundle.pub");
    std::fs::write(
        &pubkey,
        format!("untrusted comment: minisign public key\n{key}\n"),
    )
    .unwrap();
    let run = |el: &str| {
        kubeha(&[
            "iso",
            "--base",
            s(&base),
            "--bundle",
            s(&bundle),
            "--cluster",
            s(&cluster),
            "--secrets",
            s(&secrets),
            "--role",
            "worker",
            "--agent",
            s(&agent),
            "--el",
            el,
            "--bundle-pubkey",
            s(&pubkey),
            "-o",
            s(&iso),
            "--force",
        ])
    };
    let o = run("8");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = text(&o);
    for want in [
        "__libc_start_main@GLIBC_2.34",
        "EL8",
        "glibc 2.28",
        agent.to_str().unwrap(),
        "make node-binary",
    ] {
        assert!(err.contains(want), "{want:?} not in: {err}");
    }
    assert!(!iso.exists(), "a refused agent left an ISO");
    // The same agent on EL9 (glibc 2.34): taken, and that is the file on the medium.
    let o = run("9");
    assert!(o.status.success(), "EL9: {}", text(&o));
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    assert!(
        common::iso_file(&iso, "/kubeha/agent/kubeha-firstboot", &work)
            == std::fs::read(&agent).unwrap()
    );
    let nc = String::from_utf8(common::iso_file(&iso, "/kubeha/node.toml", &work)).unwrap();
    assert!(nc.contains(&format!("public-key = \"{key}\"")), "{nc}");
}

#[test]
fn pxe_refuses_a_glibc_2_34_agent_for_el7_and_el8() {
    let d = tempfile::tempdir().unwrap();
    let (cluster, secrets) = cluster_and_secrets(d.path());
    let agent = glibc_2_34_agent(d.path());
    let kernel = d.path().join("vmlinuz");
    let initrd = d.path().join("initrd.img");
    std::fs::write(&kernel, b"kernel").unwrap();
    std::fs::write(&initrd, b"initrd").unwrap();
    for (el, ships) in [("7", "2.17"), ("8", "2.28")] {
        let out = d.path().join(format!("tftp{el}"));
        let o = kubeha(&[
            "pxe",
            "--kernel",
            s(&kernel),
            "--initrd",
            s(&initrd),
            "--os-url",
            "http://10.0.2.2/os",
            "--bundle",
            s(&d.path().join("bundle")),
            "--cluster",
            s(&cluster),
            "--secrets",
            s(&secrets),
            "--http-base",
            "http://10.0.2.2/",
            "--agent",
            s(&agent),
            "--el",
            el,
            "-o",
            s(&out),
        ]);
        assert_eq!(o.status.code(), Some(1), "EL{el}: {}", text(&o));
        let err = text(&o);
        for want in [
            "__libc_start_main@GLIBC_2.34",
            &format!("EL{el}"),
            &format!("glibc {ships}"),
        ] {
            assert!(err.contains(want), "EL{el}: {want:?} not in: {err}");
        }
        assert!(!out.exists(), "EL{el}: a refused agent left a tree");
    }
}
