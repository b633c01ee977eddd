//! The cluster steps in a dry run (recording runner, temp root, no network), and their helpers.

#[path = "cluster/common.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use kubeha_firstboot::cluster::pki;
use kubeha_firstboot::cluster::steps::{interface_of, rewrite_images};
use kubeha_firstboot::engine::Context;
use kubeha_firstboot::runner::{Cmd, Output, RecordingRunner, Runner};
use kubeha_model::cluster::Role;
use kubeha_model::Cluster;
use std::sync::Arc;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The recording runner, shared so the test reads its log after the steps ran.
struct SharedRunner(Arc<RecordingRunner>);

impl Runner for SharedRunner {
    fn output(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        self.0.output(cmd)
    }
    fn is_real(&self) -> bool {
        false
    }
}

fn dry_run(name: &str) -> (tempfile::TempDir, Vec<String>) {
    let c = Cluster::default_cluster();
    let (role, me) = c.node(name).unwrap();
    let config = if role == Role::Master {
        master_config(&c, name)
    } else {
        worker_config(&c, name)
    };
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(RecordingRunner::default());
    let mut ctx = Context {
        root: dir.path().to_path_buf(),
        runner: Box::new(SharedRunner(rec.clone())),
        config,
        me: me.clone(),
        role,
        dry_run: true,
    };
    for s in kubeha_firstboot::cluster::steps() {
        if s.applies(&ctx) {
            s.run(&mut ctx)
                .unwrap_or_else(|e| panic!("step {} of {name}: {e:#}", s.name()));
        }
    }
    (dir, rec.lines())
}

#[test]
fn designated_master_dry_run() {
    let (dir, lines) = dry_run("k8s-master01");
    let root = dir.path();
    for (f, m) in [
        ("etc/kubernetes/pki/ca.key", 0o600),
        ("etc/kubernetes/pki/etcd/ca.key", 0o600),
        ("etc/kubernetes/pki/sa.key", 0o600),
        ("etc/kubernetes/pki/ca.crt", 0o644),
        ("etc/kubeha/kubeadm-init.yaml", 0o600),
        ("usr/libexec/keepalived/check_apiserver.sh", 0o700),
        ("etc/keepalived/keepalived.conf", 0o600),
        ("etc/nginx/nginx.conf", 0o644),
    ] {
        assert_eq!(mode(&root.join(f)), m, "{f}");
    }
    assert_eq!(mode(&root.join("etc/kubeha")), 0o700);
    let s = secrets();
    for l in &lines {
        assert!(
            !l.contains(&s.bootstrap_token) && !l.contains(&s.certificate_key),
            "secret on a command line: {l}"
        );
    }
    for want in [
        "nginx -t -c /etc/nginx/nginx.conf",
        "systemctl restart keepalived",
        "kubeadm init --config /etc/kubeha/kubeadm-init.yaml --skip-token-print",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want} not in {lines:#?}");
    }
    assert!(
        !lines.iter().any(|l| l.contains("kubeadm join")),
        "{lines:#?}"
    );
}

#[test]
fn other_master_and_worker_dry_run_join() {
    let (dir, lines) = dry_run("k8s-master02");
    assert!(
        lines
            .iter()
            .any(|l| l == "kubeadm join --config /etc/kubeha/kubeadm-join.yaml"),
        "{lines:#?}"
    );
    let j = std::fs::read_to_string(dir.path().join("etc/kubeha/kubeadm-join.yaml")).unwrap();
    let j: serde_yaml::Value = serde_yaml::from_str(&j).unwrap();
    assert!(
        j["controlPlane"].is_mapping()
            && j["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "192.168.20.10:16443",
        "{j:?}"
    );
    let (dir, lines) = dry_run("k8s-node01");
    assert_eq!(
        lines,
        vec!["kubeadm join --config /etc/kubeha/kubeadm-join.yaml".to_string()]
    );
    assert!(
        !dir.path().join("etc/kubernetes/pki").exists(),
        "a worker gets no CA files"
    );
}

#[test]
fn pki_refuses_other_cas_and_is_idempotent() {
    let c = Cluster::default_cluster();
    let nc = master_config(&c, "k8s-master01");
    let cp = nc.control_plane.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // pki writes through the context, under its root.
    let ctx = Context {
        root: dir.path().to_path_buf(),
        runner: Box::new(RecordingRunner::default()),
        config: nc.clone(),
        me: c.masters[0].clone(),
        role: Role::Master,
        dry_run: true,
    };
    let pki_dir = dir.path().join("etc/kubernetes/pki");
    assert_eq!(pki::write_pki(&ctx, &nc.join.ca_cert, cp).unwrap(), 8);
    assert_eq!(
        pki::write_pki(&ctx, &nc.join.ca_cert, cp).unwrap(),
        0,
        "second write changes nothing"
    );
    std::fs::write(pki_dir.join("sa.pub"), "other").unwrap();
    let before = std::fs::read(pki_dir.join("ca.key")).unwrap();
    let e = pki::write_pki(&ctx, &nc.join.ca_cert, cp)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sa.pub") && e.contains("another cluster"), "{e}");
    assert_eq!(std::fs::read(pki_dir.join("ca.key")).unwrap(), before);
}

#[test]
fn interface_lookup() {
    let out = "1: lo    inet 127.0.0.1/8 scope host lo\n3: ens3    inet 192.168.20.21/24 brd 192.168.20.255 scope global ens3\n";
    assert_eq!(
        interface_of(out, "192.168.20.21".parse().unwrap()).as_deref(),
        Some("ens3")
    );
    assert_eq!(interface_of(out, "192.168.20.2".parse().unwrap()), None);
}

#[test]
fn cni_images_point_at_the_bundle() {
    let manifest = "spec:\n  containers:\n    - name: calico-node\n      image: docker.io/calico/node:v3.28.2\n      image: calico/cni:v3.28.2\n      image: quay.io/calico/kube-controllers:v3.28.2\n      image: other/thing:1\n";
    let refs = vec![
        "docker.io/calico/node:v3.28.2".to_string(),
        "docker.io/calico/cni:v3.28.2".to_string(),
        "docker.io/calico/kube-controllers:v3.28.2".to_string(),
    ];
    let got = rewrite_images(manifest, &refs);
    assert!(
        got.contains("      image: docker.io/calico/node:v3.28.2\n"),
        "same name stays"
    );
    assert!(
        got.contains("      image: calico/cni:v3.28.2\n"),
        "short form of a bundled name stays: {got}"
    );
    assert!(
        got.contains("      image: docker.io/calico/kube-controllers:v3.28.2\n"),
        "other registry is rewritten: {got}"
    );
    assert!(
        got.contains("      image: other/thing:1\n"),
        "unknown image stays"
    );
    assert_eq!(got.lines().count(), manifest.lines().count());
}

/// Answers `kubectl get secret` with a canned expiration (or a failure) and records every command.
struct TokenRunner {
    expiration: Option<String>,
    log: std::sync::Mutex<Vec<String>>,
}

impl Runner for TokenRunner {
    fn output(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        use base64::Engine as _;
        self.log.lock().unwrap().push(cmd.display());
        if cmd.program == "kubectl" {
            return Ok(match &self.expiration {
                Some(e) => Output {
                    code: Some(0),
                    stdout: base64::engine::general_purpose::STANDARD
                        .encode(e)
                        .into_bytes(),
                    stderr: vec![],
                },
                None => Output {
                    code: Some(1),
                    stdout: vec![],
                    stderr: b"NotFound".to_vec(),
                },
            });
        }
        Ok(Output {
            code: Some(0),
            ..Default::default()
        })
    }
}

#[test]
fn token_is_refreshed_only_near_expiry() {
    use kubeha_firstboot::cluster::steps::TokenStep;
    use kubeha_firstboot::engine::Step;
    let c = Cluster::default_cluster();
    let days = |d: i64| {
        let o = std::process::Command::new("date")
            .args(["-u", "-d", &format!("+{d} days"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    for (exp, refresh) in [
        (Some(days(300)), false),
        (Some(days(30)), true),
        (None, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        put(&dir.path().join("etc/kubernetes/admin.conf"), "x", 0o600);
        let runner = Arc::new(TokenRunner {
            expiration: exp.clone(),
            log: Default::default(),
        });
        struct R(Arc<TokenRunner>);
        impl Runner for R {
            fn output(&self, cmd: &Cmd) -> anyhow::Result<Output> {
                self.0.output(cmd)
            }
        }
        let mut ctx = Context {
            root: dir.path().to_path_buf(),
            runner: Box::new(R(runner.clone())),
            config: master_config(&c, "k8s-master02"),
            me: c.masters[1].clone(),
            role: Role::Master,
            dry_run: false,
        };
        TokenStep.run(&mut ctx).unwrap();
        let log = runner.log.lock().unwrap().clone();
        let id = &secrets().bootstrap_token[..6];
        assert!(
            log[0].contains(&format!("get secret bootstrap-token-{id}")),
            "{log:?}"
        );
        let did = log.iter().any(|l| {
            l == "kubeadm init phase bootstrap-token --config /etc/kubeha/kubeadm-token.yaml --kubeconfig /etc/kubernetes/admin.conf"
        });
        assert_eq!(did, refresh, "expiration {exp:?}: {log:?}");
        if refresh {
            assert_eq!(
                mode(&dir.path().join("etc/kubeha/kubeadm-token.yaml")),
                0o600
            );
        }
    }
}
