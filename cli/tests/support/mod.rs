//! Helpers shared by the CLI's integration tests: kubeha-image's media fixtures (a tiny real bundle, the synthetic
//! base ISOs, osirrox reads), the kubeha binary, a cluster with its secrets, and an agent ELF.
#![allow(dead_code)]

// kubeha-image's media fixtures (a tiny real bundle, osirrox reads), shared rather than copied.
#[path = "../../../image/tests/common/mod.rs"]
pub mod common;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// The synthetic EL base ISO of `layout` from kubeha-image's generator, in the same cache as kubeha-image's tests
/// (`common::base_iso` finds the script relative to the crate that includes it, so it cannot serve this one).
pub fn base_iso(layout: &str) -> PathBuf {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../image/fixtures/make-base-iso.gen.sh");
    let key = &hex::encode(Sha256::digest(std::fs::read(&script).unwrap()))[..12];
    let dir = common::target_dir().join("kubeha-fixtures").join(key);
    let iso = dir.join(format!("{layout}.iso"));
    if !iso.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        // A unique name, then a rename: a parallel test never sees half an ISO.
        let tmp = dir.join(format!(
            "{layout}.cli.{}.{:?}.iso",
            std::process::id(),
            std::thread::current().id()
        ));
        common::sh(Command::new("bash").arg(&script).arg(layout).arg(&tmp));
        std::fs::rename(&tmp, &iso).unwrap();
    }
    iso
}

pub fn kubeha(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubeha"))
        .args(args)
        .output()
        .expect("running kubeha")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// cluster.toml (`config init`) and secrets.toml (`kubeha secrets`) in `dir`.
pub fn cluster_and_secrets(dir: &Path) -> (PathBuf, PathBuf) {
    let c = dir.join("cluster.toml");
    let o = kubeha(&["config", "init"]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&c, &o.stdout).unwrap();
    let sec = dir.join("secrets.toml");
    let o = kubeha(&["secrets", "-o", s(&sec)]);
    assert!(o.status.success(), "{}", text(&o));
    (c, sec)
}

/// A C program built by the host's gcc; on this glibc ≥ 2.34 builder it needs `__libc_start_main@GLIBC_2.34`
/// (checked with objdump, so the premise is the test's, not assumed).
pub fn glibc_2_34_agent(dir: &Path) -> PathBuf {
    let src = dir.join("agent.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let bin = dir.join("kubeha-firstboot");
    common::sh(Command::new("gcc").arg("-o").arg(&bin).arg(&src));
    let dump = common::sh(Command::new("objdump").arg("-T").arg(&bin));
    assert!(
        dump.lines()
            .any(|l| l.contains("(GLIBC_2.34)") && l.ends_with("__libc_start_main")),
        "the builder's gcc output does not need __libc_start_main@GLIBC_2.34:\n{dump}"
    );
    bin
}
