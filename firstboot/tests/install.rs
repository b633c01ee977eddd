//! `kubeha-firstboot install` on real directory trees: a media directory (bundle, agent, node.toml) installed into
//! a sysroot that already holds an installed system's files; over HTTP from python's http.server on loopback
//! (kubeha-lab's `HttpDir`); and every refusal (a tampered bundle file, a bundle the configured key did not sign, a
//! config failing its pin, a name the cluster does not have) leaves the sysroot exactly as it was: every path, mode
//! and byte compared.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubeha_firstboot::identity::{HostFacts, Interface};
use kubeha_firstboot::install::{install, InstallSource, Installed, Options};
use kubeha_lab::HttpDir;
use kubeha_model::cluster::Role;
use kubeha_model::media::{AGENT_BIN, AGENT_DIR, AGENT_UNIT, NODE_CONFIG};
use sha2::Digest as _;

const AGENT: &[u8] = b"\x7fELF stand-in agent bytes\n";
const UNIT: &str = "[Unit]\nDescription=kubeha first boot\n[Service]\nType=oneshot\nExecStart=/usr/local/bin/kubeha-firstboot\n";

/// The medium's `/kubeha`: the fixture bundle, the agent and its unit, the shared node config.
fn media(dir: &Path) -> PathBuf {
    let m = dir.join("media/kubeha");
    common::make_bundle(&m);
    std::fs::create_dir_all(m.join(AGENT_DIR)).unwrap();
    std::fs::write(m.join(AGENT_DIR).join(AGENT_BIN), AGENT).unwrap();
    std::fs::write(m.join(AGENT_DIR).join(AGENT_UNIT), UNIT).unwrap();
    std::fs::write(m.join(NODE_CONFIG), common::config().to_toml()).unwrap();
    m
}

/// A sysroot as anaconda leaves it before `%post`: some of the installed system's files.
fn sysroot(dir: &Path) -> PathBuf {
    let s = dir.join("sysroot");
    common::put(
        &s,
        "/etc/os-release",
        "NAME=\"Rocky Linux\"\nVERSION_ID=\"9.4\"\n",
    );
    common::put(&s, "/etc/hosts", "127.0.0.1 localhost\n");
    std::fs::create_dir_all(s.join("var/lib")).unwrap();
    std::fs::create_dir_all(s.join("usr/local/bin")).unwrap();
    s
}

/// Every path under `root` (directories too): its type, mode and the sha256 of its bytes.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                walk(root, &p, out);
            } else {
                let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()));
                out.insert(rel, format!("file {mode:o} {sha}"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn opts(dir: &Path, from: InstallSource, cmdline: &str) -> Options {
    std::fs::write(dir.join("cmdline"), format!("{cmdline}\n")).unwrap();
    Options {
        sysroot: dir.join("sysroot"),
        from,
        cmdline: dir.join("cmdline"),
        host_root: PathBuf::from("/"),
    }
}

/// A machine with the fixture's k8s-node02 MAC (common::config gives workers[1] one).
fn node02() -> HostFacts {
    HostFacts {
        interfaces: vec![Interface {
            name: "eth0".into(),
            mac: Some("52:54:00:00:20:31".into()),
            ips: vec![],
        }],
        ..Default::default()
    }
}

/// What a worker's installed node config is: `text` without its `[control-plane]` table.
fn as_worker(text: &str) -> Vec<u8> {
    let mut c = kubeha_model::NodeConfig::parse(text, "fixture").unwrap();
    c.control_plane = None;
    c.to_toml().into_bytes()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The sysroot holds the medium's bundle byte for byte, the agent, its unit and the node config.
fn check_installed(sysroot: &Path, media: &Path, config: &[u8]) {
    let bundle = sysroot.join("var/lib/kubeha/bundle");
    let m = kubeha_model::bundle::BundleManifest::load(media).unwrap();
    assert!(!m.files.is_empty());
    for f in m
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(["bundle.toml"])
    {
        assert_eq!(
            std::fs::read(bundle.join(f)).unwrap(),
            std::fs::read(media.join(f)).unwrap(),
            "{f}"
        );
    }
    kubeha_mirror::bundle::verify(&bundle).unwrap();
    assert_eq!(
        std::fs::read(sysroot.join("usr/local/bin/kubeha-firstboot")).unwrap(),
        AGENT
    );
    assert_eq!(mode(&sysroot.join("usr/local/bin/kubeha-firstboot")), 0o755);
    let unit = sysroot.join("etc/systemd/system/kubeha-firstboot.service");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), UNIT);
    assert_eq!(mode(&unit), 0o644);
    assert_eq!(mode(&sysroot.join("etc/kubeha")), 0o700);
    assert_eq!(mode(&sysroot.join("etc/kubeha/node.toml")), 0o600);
    assert_eq!(
        std::fs::read(sysroot.join("etc/kubeha/node.toml")).unwrap(),
        config
    );
    // Nothing of the staging directory is left.
    let leftovers: Vec<String> = std::fs::read_dir(sysroot)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Runs `install` expecting a refusal; the error must name `names` and the sysroot must not have changed.
fn refused(o: &Options, facts: &HostFacts, names: &str) -> String {
    let before = tree(&o.sysroot);
    let e = install(o, facts).expect_err("must be refused");
    let e = format!("{e:#}");
    assert!(e.contains(names), "the error names {names}: {e}");
    assert_eq!(tree(&o.sysroot), before, "the sysroot changed: {e}");
    e
}

#[test]
fn installs_from_the_medium_and_resolves_the_node_by_mac() {
    let d = tempfile::tempdir().unwrap();
    let m = media(d.path());
    let s = sysroot(d.path());
    let before = tree(&s);
    let o = opts(
        d.path(),
        InstallSource::Dir(m.clone()),
        "inst.ks=hd:LABEL=x:/ks.cfg kubeha.role=worker",
    );
    let r: Installed = install(&o, &node02()).unwrap();
    // The medium's config carries the CA keys (any master may install from it); this node is a worker: its
    // installed config is the same without the [control-plane] table.
    let mut worker = common::config();
    assert!(worker.control_plane.is_some());
    worker.control_plane = None;
    check_installed(&s, &m, worker.to_toml().as_bytes());
    assert!(r.keys_dropped);
    let installed = std::fs::read_to_string(s.join("etc/kubeha/node.toml")).unwrap();
    assert!(!installed.contains("PRIVATE KEY"), "{installed}");
    assert_eq!(
        kubeha_model::NodeConfig::parse(&installed, "node.toml").unwrap(),
        worker
    );
    assert_eq!(r.identity, Some(("k8s-node02".to_string(), Role::Worker)));
    assert!(r.how.contains("MAC"), "{}", r.how);
    assert!(!r.signature);
    assert_eq!(r.bundle_path, "/var/lib/kubeha/bundle");
    // The system's own files are untouched.
    for (p, v) in &before {
        assert_eq!(tree(&s).get(p), Some(v), "{p}");
    }
    // A machine no name or address ties to a node: installed, the identity left to the agent at first boot.
    // It keeps the keys: it may be a master.
    let r = install(&o, &HostFacts::default()).unwrap();
    assert_eq!(r.identity, None);
    assert!(r.how.contains("first boot"), "{}", r.how);
    assert!(!r.keys_dropped);
    check_installed(&s, &m, common::config().to_toml().as_bytes());
}

#[test]
fn a_tampered_bundle_file_is_refused_with_the_sysroot_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let m = media(d.path());
    sysroot(d.path());
    let o = opts(
        d.path(),
        InstallSource::Dir(m.clone()),
        "kubeha.role=worker",
    );
    // Same size, other bytes: only the hash can tell.
    let f = m.join("files/calico.yaml");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&f, &bytes).unwrap();
    let e = refused(&o, &node02(), "files/calico.yaml");
    assert!(e.contains("sha256"), "{e}");
    // A listed file that is missing; a listed file that is a symlink (to this host's /etc/hostname, say).
    std::fs::remove_file(&f).unwrap();
    refused(&o, &node02(), "files/calico.yaml");
    std::os::unix::fs::symlink("/etc/hostname", &f).unwrap();
    refused(&o, &node02(), "files/calico.yaml");
    // The original back: installed, and an unlisted file beside the bundle on the medium is not copied.
    std::fs::remove_file(&f).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&f, &bytes).unwrap();
    std::fs::write(m.join("files/extra.yaml"), "x: 1\n").unwrap();
    install(&o, &node02()).unwrap();
    check_installed(&o.sysroot, &m, &as_worker(&common::config().to_toml()));
    assert!(!o
        .sysroot
        .join("var/lib/kubeha/bundle/files/extra.yaml")
        .exists());
}

#[test]
fn a_configured_key_refuses_an_unsigned_or_foreign_bundle_and_installs_a_signed_one() {
    use kubeha_mirror::signature::{keygen, sign_manifest};
    let d = tempfile::tempdir().unwrap();
    let m = media(d.path());
    sysroot(d.path());
    let (public, secret) = keygen(None).unwrap();
    let mut c = common::config();
    c.bundle.public_key = kubeha_model::node::minisign_public_key_line(&public);
    let text = c.to_toml();
    std::fs::write(m.join(NODE_CONFIG), &text).unwrap();
    let o = opts(
        d.path(),
        InstallSource::Dir(m.clone()),
        "kubeha.role=worker",
    );
    refused(&o, &node02(), "bundle.toml.minisig");
    let (_, other) = keygen(None).unwrap();
    sign_manifest(&m, &other, None).unwrap();
    refused(&o, &node02(), "bundle.toml");
    sign_manifest(&m, &secret, None).unwrap();
    let r = install(&o, &node02()).unwrap();
    assert!(r.signature);
    check_installed(&d.path().join("sysroot"), &m, &as_worker(&text));
    assert_eq!(
        std::fs::read(
            d.path()
                .join("sysroot/var/lib/kubeha/bundle/bundle.toml.minisig")
        )
        .unwrap(),
        std::fs::read(m.join("bundle.toml.minisig")).unwrap()
    );
}

#[test]
fn the_command_line_config_wins_and_a_wrong_pin_or_unknown_name_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let m = media(d.path());
    let s = sysroot(d.path());
    let master = kubeha_model::NodeConfig::build(
        &kubeha_model::Cluster::default_cluster(),
        common::secrets(),
        Some(Role::Master),
        Some("k8s-master01"),
        true,
    )
    .unwrap()
    .to_toml();
    let mf = d.path().join("master.toml");
    std::fs::write(&mf, &master).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(master.as_bytes()));
    let o = opts(
        d.path(),
        InstallSource::Dir(m.clone()),
        &format!(
            "kubeha.config=file:{} kubeha.config.sha256={}",
            mf.display(),
            "0".repeat(64)
        ),
    );
    refused(&o, &HostFacts::default(), "kubeha.config.sha256");
    let o = opts(
        d.path(),
        InstallSource::Dir(m.clone()),
        "kubeha.name=k8s-master09 kubeha.role=master",
    );
    refused(&o, &HostFacts::default(), "k8s-master09");
    // A role that contradicts the node's, from the media's shared config.
    let o = opts(
        d.path(),
        InstallSource::Dir(m.clone()),
        "kubeha.name=k8s-master01 kubeha.role=worker",
    );
    refused(&o, &HostFacts::default(), "k8s-master01");
    let o = opts(
        d.path(),
        InstallSource::Dir(m.clone()),
        &format!(
            "kubeha.config=file:{} kubeha.config.sha256={sha}",
            mf.display()
        ),
    );
    let r = install(&o, &HostFacts::default()).unwrap();
    assert_eq!(r.identity, Some(("k8s-master01".to_string(), Role::Master)));
    check_installed(&s, &m, master.as_bytes());
}

#[test]
fn installs_over_http_and_refuses_a_tampered_download_with_the_sysroot_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let m = media(d.path());
    let s = sysroot(d.path());
    let srv = HttpDir::start(&d.path().join("media"));
    let url = srv.url("kubeha");
    let o = opts(
        d.path(),
        InstallSource::Http(url),
        "ip=dhcp kubeha.name=k8s-node01",
    );
    let r = install(&o, &HostFacts::default()).unwrap();
    assert_eq!(r.identity, Some(("k8s-node01".to_string(), Role::Worker)));
    assert!(
        r.config_source.ends_with("/kubeha/node.toml"),
        "{}",
        r.config_source
    );
    check_installed(&s, &m, &as_worker(&common::config().to_toml()));
    // Over HTTP the source cannot be checked in place: the staged download is, and the refusal removes it.
    let calico = std::fs::read(m.join("files/calico.yaml")).unwrap();
    std::fs::write(m.join("files/calico.yaml"), "tampered\n").unwrap();
    let e = refused(&o, &HostFacts::default(), "files/calico.yaml");
    assert!(e.contains("bytes"), "{e}");
    // A listed file the server does not have (404).
    std::fs::remove_file(m.join("files/calico.yaml")).unwrap();
    let e = refused(&o, &HostFacts::default(), "files/calico.yaml");
    assert!(e.contains("not there"), "{e}");
    std::fs::write(m.join("files/calico.yaml"), calico).unwrap();
    // kubeha.config= over plain http: a master's config (the CA keys) only with a pin, as the agent reads it.
    let master = kubeha_model::NodeConfig::build(
        &kubeha_model::Cluster::default_cluster(),
        common::secrets(),
        Some(Role::Master),
        Some("k8s-master02"),
        true,
    )
    .unwrap()
    .to_toml();
    std::fs::write(d.path().join("media/m02.toml"), &master).unwrap();
    let config_url = srv.url("m02.toml");
    let o = opts(
        d.path(),
        InstallSource::Http(srv.url("kubeha")),
        &format!("kubeha.config={config_url}"),
    );
    refused(&o, &HostFacts::default(), "kubeha.config.sha256");
    let sha = hex::encode(sha2::Sha256::digest(master.as_bytes()));
    let o = opts(
        d.path(),
        o.from.clone(),
        &format!("kubeha.config={config_url} kubeha.config.sha256={sha}"),
    );
    let r = install(&o, &HostFacts::default()).unwrap();
    assert_eq!(r.identity, Some(("k8s-master02".to_string(), Role::Master)));
    assert_eq!(
        r.config_source.split_whitespace().next(),
        Some(config_url.as_str())
    );
    check_installed(&s, &m, master.as_bytes());
    drop(srv);
}

#[test]
fn the_binary_installs_and_names_the_bad_file() {
    let d = tempfile::tempdir().unwrap();
    let m = media(d.path());
    let s = sysroot(d.path());
    std::fs::write(d.path().join("cmdline"), "kubeha.name=k8s-node01\n").unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_kubeha-firstboot"))
            .arg("install")
            .arg("--sysroot")
            .arg(&s)
            .arg("--from")
            .arg(&m)
            .arg("--cmdline")
            .arg(d.path().join("cmdline"))
            .output()
            .unwrap()
    };
    let o = run();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{out}");
    assert!(out.contains("this is k8s-node01 (worker)"), "{out}");
    assert!(out.contains("without the control plane's keys"), "{out}");
    check_installed(&s, &m, &as_worker(&common::config().to_toml()));
    std::fs::remove_dir_all(&s).unwrap();
    sysroot(d.path());
    let before = tree(&s);
    std::fs::write(m.join("files/calico.yaml"), "tampered\n").unwrap();
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("files/calico.yaml"), "{err}");
    assert_eq!(tree(&s), before);
}
