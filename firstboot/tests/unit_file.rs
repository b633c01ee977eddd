//! The systemd unit passes `systemd-analyze verify` and has the settings the agent relies on.

use std::process::Command;

const UNIT: &str = include_str!("../kubeha-firstboot.service");

#[test]
fn unit_verifies() {
    for want in [
        "Type=simple",
        "RemainAfterExit=yes",
        "Restart=on-failure",
        "After=network-online.target",
        "Wants=network-online.target",
        "ConditionPathExists=!/var/lib/kubeha/done",
        "ExecStart=/usr/local/bin/kubeha-firstboot\n",
    ] {
        assert!(UNIT.contains(want), "unit lacks {want}");
    }
    // systemd-analyze checks that ExecStart exists: point it at the binary just built, keep everything else.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("kubeha-firstboot.service");
    std::fs::write(
        &p,
        UNIT.replace(
            "/usr/local/bin/kubeha-firstboot",
            env!("CARGO_BIN_EXE_kubeha-firstboot"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&p)
        .output()
        .expect("systemd-analyze (package systemd)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {err}");
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("kubeha-firstboot"))
        .collect();
    assert!(ours.is_empty(), "warnings about the unit: {ours:?}");
}
