//! A full run (OS preparation and runtime steps) on a temp root with a recording runner: the golden list of commands and files, the reports posted per
//! phase, status.json, and a second run that changes nothing.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use kubeha_firstboot::apply;
use kubeha_firstboot::cli::run::run_steps;
use kubeha_firstboot::cli::RunConfig;
use kubeha_firstboot::identity::{HostFacts, Interface};
use kubeha_firstboot::runner::RecordingRunner;

/// A loopback server that records every POSTed JSON body and answers 204.
fn report_server() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/report", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            // Any request is recorded (a GET as null), so a test can tell that nothing connected at all.
            let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            s2.lock().unwrap().push(v);
            let mut w = c;
            let _ = w.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

/// The OS and runtime steps only: the cluster steps probe the cluster's addresses over the network when not in a dry
/// run (they have their own tests, in network namespaces).
fn run_with(
    cfg: RunConfig,
    runner: Box<dyn kubeha_firstboot::runner::Runner>,
    facts: HostFacts,
) -> anyhow::Result<()> {
    run_steps(cfg, runner, facts, apply::steps)
}

fn cfg(root: &std::path::Path) -> RunConfig {
    RunConfig {
        root: root.to_path_buf(),
        cmdline: None,
        config: None,
        dry_run: false,
        wait: Some(0),
    }
}

#[test]
fn full_run_master_golden() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let (url, reports) = report_server();
    common::make_root(
        root,
        &format!("BOOT_IMAGE=/vmlinuz ro kubeha.name=k8s-master01 kubeha.report={url}"),
    );
    let rec = Arc::new(RecordingRunner::default());
    run_with(cfg(root), Box::new(rec.clone()), HostFacts::default()).unwrap();

    let mut golden = String::from("# commands, in order\n");
    for l in rec.lines() {
        golden.push_str(&l);
        golden.push('\n');
    }
    golden.push_str("# files after the run\n");
    let snap = common::snapshot(root);
    golden.push_str(&common::render_snapshot(&snap));
    common::golden("full-run-master.txt", &golden);

    // status.json says done; the journal lists every step that applies.
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("var/lib/kubeha/status.json")).unwrap())
            .unwrap();
    assert_eq!(st["state"], "done");
    assert_eq!(st["node"], "k8s-master01");
    assert!(root.join("var/lib/kubeha/done").exists());
    // One report per phase, in order.
    let r = reports.lock().unwrap().clone();
    let phases: Vec<&str> = r.iter().map(|v| v["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["config", "os", "packages", "runtime", "done"]);
    assert!(r
        .iter()
        .all(|v| v["state"] == "ok" && v["node"] == "k8s-master01"));

    // Rerun after removing the done marker: every step is in the journal, nothing runs, nothing changes.
    std::fs::remove_file(root.join("var/lib/kubeha/done")).unwrap();
    let rec2 = Arc::new(RecordingRunner::default());
    run_with(cfg(root), Box::new(rec2.clone()), HostFacts::default()).unwrap();
    assert!(rec2.lines().is_empty(), "{:?}", rec2.lines());
    assert_eq!(common::snapshot(root), snap);
}

#[test]
fn worker_found_by_mac_and_failure_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let (url, reports) = report_server();
    common::make_root(root, &format!("ro kubeha.report={url}"));
    let facts = HostFacts {
        interfaces: vec![Interface {
            name: "eth0".into(),
            mac: Some("52:54:00:00:20:31".into()),
            ips: vec![],
        }],
        ..Default::default()
    };
    // A bundle without bundle.toml is refused before the first step: nothing runs.
    std::fs::remove_file(root.join("var/lib/kubeha/bundle/bundle.toml")).unwrap();
    let rec = Arc::new(RecordingRunner::default());
    let e = run_with(cfg(root), Box::new(rec.clone()), facts.clone()).unwrap_err();
    assert!(format!("{e:#}").contains("bundle.toml"), "{e:#}");
    assert!(rec.lines().is_empty(), "{:?}", rec.lines());
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("var/lib/kubeha/status.json")).unwrap())
            .unwrap();
    assert_eq!(
        (st["state"].as_str(), st["step"].as_str()),
        (Some("failed"), Some("bundle"))
    );
    // With the bundle back, dnf failing makes the packages phase fail after the OS steps ran.
    common::make_bundle(&root.join("var/lib/kubeha/bundle"));
    let rec = Arc::new(RecordingRunner {
        fail_program: Some("dnf".into()),
        ..Default::default()
    });
    let e = run_with(cfg(root), Box::new(rec.clone()), facts.clone()).unwrap_err();
    assert!(format!("{e:#}").contains("dnf"), "{e:#}");
    let lines = rec.lines();
    assert!(
        lines.contains(&"hostname k8s-node02".to_string()),
        "{lines:?}"
    );
    // The shared config carries the masters' CA keys; this worker kept none of them anywhere on its disk.
    let mut leaked = Vec::new();
    for e in walkdir(root) {
        if e.starts_with(root.join("etc/kubeha/node.toml")) {
            continue; // the installer's shared file, as the medium brought it
        }
        if std::fs::read(&e).is_ok_and(|b| b.windows(11).any(|w| w == b"PRIVATE KEY")) {
            leaked.push(e);
        }
    }
    assert!(leaked.is_empty(), "the worker wrote CA keys to {leaked:?}");
    for want in [
        "firewall-offline-cmd --zone=public --add-port=10250/tcp --add-port=30000-32767/tcp --add-port=179/tcp --add-port=5473/tcp --add-port=4789/udp",
        "firewall-offline-cmd --zone=public --add-protocol=4",
    ] {
        assert!(lines.contains(&want.to_string()), "{lines:?}");
    }
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("var/lib/kubeha/status.json")).unwrap())
            .unwrap();
    assert_eq!(
        (
            st["state"].as_str(),
            st["step"].as_str(),
            st["role"].as_str()
        ),
        (Some("failed"), Some("packages"), Some("worker"))
    );
    let r = reports.lock().unwrap().clone();
    let last = r.last().unwrap();
    assert_eq!(
        (last["phase"].as_str(), last["state"].as_str()),
        (Some("packages"), Some("failed"))
    );
    assert!(last["error"].as_str().unwrap().contains("dnf"), "{last}");

    // dnf works again: the rerun resumes at the failed step, with the identity saved by the first run.
    let rec = Arc::new(RecordingRunner::default());
    run_with(cfg(root), Box::new(rec.clone()), HostFacts::default()).unwrap();
    let lines = rec.lines();
    assert!(
        lines.first().unwrap().starts_with("rpm -q"),
        "resumes at packages: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.starts_with("hostname")),
        "{lines:?}"
    );
}

#[test]
fn bad_config_fails_before_touching_the_system() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    common::make_root(root, "ro kubeha.name=k8s-master01");
    let bad = common::config()
        .to_toml()
        .replace("vip = \"192.168.20.10\"", "vip = \"192.168.20.20\"");
    common::put(root, "/etc/kubeha/node.toml", &bad);
    let before = common::snapshot(root);
    let rec = Arc::new(RecordingRunner::default());
    let e = format!(
        "{:#}",
        run_with(cfg(root), Box::new(rec.clone()), HostFacts::default()).unwrap_err()
    );
    assert!(
        e.contains("endpoint.vip") && e.contains("/etc/kubeha/node.toml"),
        "{e}"
    );
    assert!(rec.lines().is_empty());
    let mut after = common::snapshot(root);
    let st = after
        .remove("/var/lib/kubeha/status.json")
        .expect("the failure is in status.json");
    assert_eq!(st.1, "(varies: timestamps)");
    assert_eq!(after, before, "nothing but status.json was written");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("var/lib/kubeha/status.json")).unwrap())
            .unwrap();
    assert_eq!(
        (status["phase"].as_str(), status["state"].as_str()),
        (Some("config"), Some("failed"))
    );
}

#[test]
fn dry_run_binary_makes_no_network_io() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let (url, reports) = report_server();
    let cfg_url = url.replace("/report", "/config/${mac}.toml");
    // The installer's file is absent; the URL would answer, but a dry run must not ask it.
    common::make_root(
        root,
        &format!("ro kubeha.name=k8s-node01 kubeha.report={url} kubeha.config={cfg_url}"),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubeha-firstboot"))
        .arg("--root")
        .arg(root)
        .arg("--dry-run")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("would post: {url} ")), "{stdout}");
    assert!(
        stdout.contains("would run: hostname k8s-node01"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would run: ctr -n k8s.io images import -"),
        "{stdout}"
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        reports.lock().unwrap().is_empty(),
        "a dry run posted a report"
    );

    // Without the installer's file the config would come from the URL: named, not fetched.
    std::fs::remove_file(root.join("etc/kubeha/node.toml")).unwrap();
    std::fs::remove_dir_all(root.join("var/lib/kubeha")).unwrap();
    std::fs::create_dir_all(root.join("sys/class/net/eth0")).unwrap();
    std::fs::write(
        root.join("sys/class/net/eth0/address"),
        "52:54:00:00:20:31\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubeha-firstboot"))
        .arg("--root")
        .arg(root)
        .arg("--dry-run")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let want = cfg_url.replace("${mac}", "52:54:00:00:20:31");
    assert!(stdout.contains(&format!("would fetch: {want}")), "{stdout}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        reports.lock().unwrap().is_empty(),
        "a dry run connected to the server"
    );
}

/// Every regular file under `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}
