//! The kickstart's `%post --nochroot` script, run for real by bash (anaconda's stand-in is a fake sysroot):
//! from a remastered ISO's /kubeha, and over HTTP from a PXE tree served by python's http.server on loopback.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use kubeha_image::iso::{remaster, IsoSpec};
use kubeha_image::pxe::Install;
use kubeha_lab::HttpDir;
use kubeha_model::{Cluster, KernelArgs, NodeConfig, Secrets};

fn post_script(ks: &str) -> String {
    let start = ks.find("%post --nochroot").unwrap();
    let body = &ks[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("%end\n").unwrap()].to_string()
}

struct Run {
    ok: bool,
    out: String,
}

fn run_post(script: &str, dir: &Path, src: Option<&str>, cmdline: &str) -> Run {
    let sysroot = dir.join("sysroot");
    let _ = std::fs::remove_dir_all(&sysroot);
    std::fs::create_dir_all(&sysroot).unwrap();
    let tmp = dir.join("installer-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(dir.join("cmdline"), cmdline).unwrap();
    std::fs::write(dir.join("post.sh"), script).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(dir.join("post.sh"))
        .env("KUBEHA_SYSROOT", &sysroot)
        .env("KUBEHA_CMDLINE", dir.join("cmdline"))
        .env("KUBEHA_OUT", &tmp)
        // The real agent does the install; the media's stand-in is what it installs.
        .env("KUBEHA_AGENT", node_agent())
        // Reports go out only from the installer's runtime image, or with this hook (to a kubeha.report= URL).
        .env("KUBEHA_REPORT_ANYWHERE", "1");
    if let Some(s) = src {
        cmd.env("KUBEHA_SRC", s);
    }
    let o = cmd.output().unwrap();
    Run {
        ok: o.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// A one-shot report receiver on loopback: its URL, and the body of the one POST it answers (200) as a report.
fn report_receiver() -> (
    String,
    std::sync::mpsc::Receiver<kubeha_model::report::Report>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/api/report/52-54-00-12-34-11",
        l.local_addr().unwrap()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            .unwrap();
        let report: kubeha_model::report::Report = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        tx.send(report).unwrap();
    });
    (url, rx)
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn check_installed(sysroot: &Path, bundle: &Path) {
    for f in [
        "bundle.toml",
        "rpms/repodata/repomd.xml",
        "files/calico.yaml",
        "rpms/kubeha-test-tools-1.0-1.noarch.rpm",
    ] {
        assert_eq!(
            std::fs::read(sysroot.join("var/lib/kubeha/bundle").join(f)).unwrap(),
            std::fs::read(bundle.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(mode(&sysroot.join("usr/local/bin/kubeha-firstboot")), 0o755);
    assert!(sysroot
        .join("etc/systemd/system/kubeha-firstboot.service")
        .is_file());
    assert_eq!(mode(&sysroot.join("etc/kubeha")), 0o700);
    assert_eq!(mode(&sysroot.join("etc/kubeha/node.toml")), 0o600);
    // The install-once marker for people; %pre's guard reads the root filesystem's label.
    let marker = std::fs::read_to_string(sysroot.join("etc/kubeha/installed")).unwrap();
    assert!(
        marker.starts_with(&format!(
            "cluster=kubeha\nnode=unknown\nrole=auto\nroot-label={}\ninstalled=20",
            kubeha_kickstart::root_label("kubeha")
        )),
        "{marker}"
    );
}

#[test]
fn post_installs_from_the_iso_medium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = d.join("bundle");
    make_bundle(&bundle, "x86_64");
    let cluster = Cluster::default_cluster();
    let secrets = Secrets::generate().unwrap();
    let nc = NodeConfig::build(&cluster, &secrets, None, None, false).unwrap();
    let iso = d.join("m.iso");
    remaster(&IsoSpec {
        base: base_iso("rocky9"),
        bundle: bundle.clone(),
        output: iso.clone(),
        cluster: &cluster,
        node_config: &nc,
        kernel_args: KernelArgs {
            role: Some(kubeha_model::cluster::Role::Worker),
            ..Default::default()
        },
        user_args: Default::default(),
        agent: stand_in_agent(&d.join("agent")),
        el: None,
        force: false,
    })
    .unwrap();
    // What dracut mounts at /run/install/repo: the medium, extracted with osirrox.
    let media = d.join("media");
    sh(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", "/"])
        .arg(&media));
    let ks = std::fs::read_to_string(media.join("ks.cfg")).unwrap();
    let script = post_script(&ks);
    let src = media.join("kubeha");
    let src = src.to_str().unwrap();

    let r = run_post(
        &script,
        d,
        Some(src),
        "inst.ks=hd:LABEL=x:/ks.cfg kubeha.role=worker",
    );
    assert!(r.ok, "{}", r.out);
    check_installed(&d.join("sysroot"), &bundle);
    // An unsigned bundle: no signature file, and no error for its absence.
    assert!(!d
        .join("sysroot/var/lib/kubeha/bundle/bundle.toml.minisig")
        .exists());
    assert_eq!(
        std::fs::read_to_string(d.join("sysroot/etc/kubeha/node.toml")).unwrap(),
        nc.to_toml()
    );

    // kubeha.config=file: with the right pin wins over the medium's file; a wrong pin stops the install.
    let master = NodeConfig::build(
        &cluster,
        &secrets,
        Some(kubeha_model::cluster::Role::Master),
        Some("k8s-master01"),
        true,
    )
    .unwrap();
    let mf = d.join("master.toml");
    std::fs::write(&mf, master.to_toml()).unwrap();
    let sha = kubeha_image::pxe::sha256_hex(master.to_toml().as_bytes());
    let r = run_post(
        &script,
        d,
        Some(src),
        &format!(
            "kubeha.config=file:{} kubeha.config.sha256={sha}",
            mf.display()
        ),
    );
    assert!(r.ok, "{}", r.out);
    assert_eq!(
        std::fs::read_to_string(d.join("sysroot/etc/kubeha/node.toml")).unwrap(),
        master.to_toml()
    );
    // The refusal is reported to kubeha.report= (as `kubeha serve` takes it: phase install, state failed).
    let (report_url, reports) = report_receiver();
    let r = run_post(
        &script,
        d,
        Some(src),
        &format!(
            "kubeha.config=file:{} kubeha.config.sha256={} kubeha.report={report_url}",
            mf.display(),
            "0".repeat(64)
        ),
    );
    assert!(!r.ok && r.out.contains("kubeha.config.sha256"), "{}", r.out);
    let rep = reports
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no failed report:\n{}", r.out));
    rep.validate().unwrap();
    assert_eq!(
        (
            rep.phase.as_str(),
            rep.state.as_str(),
            rep.source.as_deref()
        ),
        ("install", "failed", Some("installer")),
        "{rep:?}"
    );
    let err = rep.error.clone().unwrap_or_default();
    assert!(
        err.starts_with("refused: ")
            && err.contains("kubeha.config.sha256")
            && err.len() <= "refused: ".len() + 160,
        "{rep:?}"
    );
    assert!(
        !r.out.contains("could not report"),
        "the report went out: {}",
        r.out
    );
    assert_eq!(
        std::fs::read_dir(d.join("sysroot")).unwrap().count(),
        0,
        "a config failing its pin: nothing is written\n{}",
        r.out
    );

    // A corrupted bundle file on the medium stops the install, with nothing written to the sysroot.
    std::fs::write(media.join("kubeha/files/calico.yaml"), "tampered\n").unwrap();
    let r = run_post(&script, d, Some(src), "");
    assert!(!r.ok && r.out.contains("files/calico.yaml"), "{}", r.out);
    assert_eq!(
        std::fs::read_dir(d.join("sysroot")).unwrap().count(),
        0,
        "{}",
        r.out
    );
}

#[test]
fn post_installs_over_http_from_the_pxe_tree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A signed bundle (stock minisign here; `kubeha bundle sign` writes the same file): the signature, which
    // bundle.toml does not list, goes into the tree and onto the node.
    let bundle = d.join("bundle");
    make_bundle(&bundle, "x86_64");
    let sh = |args: &[&str]| {
        let o = Command::new("minisign")
            .args(args)
            .current_dir(d)
            .output()
            .expect("running minisign (Debian package minisign)");
        assert!(o.status.success(), "minisign {args:?}: {o:?}");
    };
    sh(&["-G", "-W", "-p", "b.pub", "-s", "b.key"]);
    sh(&["-S", "-s", "b.key", "-m", "bundle/bundle.toml"]);
    tree(d, Install::All, false);
    let tftp = d.join("tftp");
    // Any web server: python's, on a free loopback port.
    let server = HttpDir::start(&tftp);
    let base = server.url("kubeha");
    let ks = std::fs::read_to_string(tftp.join("ks.cfg")).unwrap();
    assert!(
        ks.contains("SRC=${KUBEHA_SRC:-'http://10.0.2.2:8080/kubeha'}"),
        "the tree's kickstart fetches from --http-base"
    );
    let r = run_post(
        &post_script(&ks),
        d,
        Some(&base),
        "ip=dhcp kubeha.role=worker kubeha.name=k8s-node01",
    );
    drop(server);
    assert!(r.ok, "{}", r.out);
    check_installed(&d.join("sysroot"), &d.join("bundle"));
    assert_eq!(
        std::fs::read(d.join("sysroot/var/lib/kubeha/bundle/bundle.toml.minisig")).unwrap(),
        std::fs::read(bundle.join("bundle.toml.minisig")).unwrap()
    );
    assert!(r.out.contains("with its signature"), "{}", r.out);
    let nc = std::fs::read_to_string(d.join("sysroot/etc/kubeha/node.toml")).unwrap();
    assert!(nc.contains("url = \"http://10.0.2.2:8080/kubeha\""), "{nc}");
}
