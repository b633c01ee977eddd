//! The bundle's trust on the node, on a temp root with a recording runner. `[bundle] public-key`: the agent checks
//! the bundle's signature (`kubeha bundle sign`) before it changes anything: unsigned, signed with another key and
//! changed after signing are refused with nothing written or run; a good signature runs the steps. `rpm-keys` in
//! bundle.toml: the repo file turns gpgcheck on with the bundle's copies of the keys.

mod common;

use std::sync::Arc;

use kubeha_firstboot::apply;
use kubeha_firstboot::cli::run::run_steps;
use kubeha_firstboot::cli::RunConfig;
use kubeha_firstboot::identity::HostFacts;
use kubeha_firstboot::runner::RecordingRunner;
use kubeha_mirror::signature::{keygen, sign_manifest};

fn run(root: &std::path::Path) -> (anyhow::Result<()>, Vec<String>) {
    let cfg = RunConfig {
        root: root.to_path_buf(),
        cmdline: None,
        config: None,
        dry_run: false,
        wait: Some(0),
    };
    let rec = Arc::new(RecordingRunner::default());
    let r = run_steps(
        cfg,
        Box::new(rec.clone()),
        HostFacts::default(),
        apply::steps,
    );
    (r, rec.lines())
}

#[test]
fn a_configured_key_refuses_unsigned_foreign_and_changed_bundles_before_anything_changes() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    common::make_root(root, "ro kubeha.name=k8s-master01");
    let (public, secret) = keygen(None).unwrap();
    let (_, other) = keygen(None).unwrap();
    let mut config = common::config();
    config.bundle.public_key = kubeha_model::node::minisign_public_key_line(&public);
    assert!(config.bundle.public_key.is_some());
    common::put(root, "/etc/kubeha/node.toml", &config.to_toml());
    let bundle = root.join("var/lib/kubeha/bundle");

    let refused = |want: &str| {
        let before = common::snapshot(root);
        let (r, lines) = run(root);
        let e = format!("{:#}", r.unwrap_err());
        assert!(
            e.contains("refusing the bundle") && e.contains(want),
            "wants {want:?}: {e}"
        );
        assert!(lines.is_empty(), "{want}: commands ran: {lines:?}");
        let mut after = common::snapshot(root);
        // The failure report itself is the one file written.
        let status = after.remove("/var/lib/kubeha/status.json");
        assert!(status.is_some(), "{want}: no status.json");
        assert_eq!(after, before, "{want}: the node changed");
        std::fs::remove_file(root.join("var/lib/kubeha/status.json")).unwrap();
    };

    refused("the bundle is not signed");
    sign_manifest(&bundle, &other, None).unwrap();
    refused("made with another key");
    sign_manifest(&bundle, &secret, None).unwrap();
    let m = bundle.join("bundle.toml");
    let mut text = std::fs::read_to_string(&m).unwrap();
    text = text.replacen("containerd.io-1.7.24", "containerd.io-1.7.25", 1);
    std::fs::write(&m, &text).unwrap();
    refused("changed after signing");

    // Signed as it is now: the run goes through.
    sign_manifest(&bundle, &secret, None).unwrap();
    let (r, lines) = run(root);
    r.unwrap();
    assert!(!lines.is_empty());
}

#[test]
fn bundle_rpm_keys_turn_gpgcheck_on_in_the_node_repo_file() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    common::make_root(root, "ro kubeha.name=k8s-master01");
    let bundle = root.join("var/lib/kubeha/bundle");
    let mut m = kubeha_model::bundle::BundleManifest::load(&bundle).unwrap();
    m.rpm_keys = vec![
        "rpms/RPM-GPG-KEY-kubernetes".into(),
        "rpms/RPM-GPG-KEY-docker-ce".into(),
    ];
    for k in &m.rpm_keys {
        // Real files, listed with their sha256 as a build lists them (the agent verifies the bundle first).
        let data = format!("-----BEGIN PGP PUBLIC KEY BLOCK-----\n{k}\n");
        std::fs::write(bundle.join(k), &data).unwrap();
        use sha2::Digest as _;
        m.files.push(kubeha_model::bundle::FileEntry {
            path: k.clone(),
            sha256: hex::encode(sha2::Sha256::digest(data.as_bytes())),
            size: data.len() as u64,
            mtime_ns: None,
        });
    }
    m.files.sort_by(|a, b| a.path.cmp(&b.path));
    m.save(&bundle).unwrap();
    let (r, _) = run(root);
    r.unwrap();
    let repo = std::fs::read_to_string(root.join("etc/yum.repos.d/kubeha.repo")).unwrap();
    assert!(
        repo.contains(
            "gpgcheck=1\ngpgkey=file:///var/lib/kubeha/bundle/rpms/RPM-GPG-KEY-kubernetes \
             file:///var/lib/kubeha/bundle/rpms/RPM-GPG-KEY-docker-ce\n"
        ),
        "{repo}"
    );
}
