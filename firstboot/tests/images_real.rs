//! Image loading into a real containerd and a real dockerd started by the test (in a network namespace of its own,
//! with every directory and socket under a temp dir), from a bundle's OCI layout: the images are verified, streamed,
//! listed by the runtime afterwards, and skipped on a second run.
//!
//! Needs root (network namespaces) and the Debian packages containerd and docker.io (mk/firstboot.mk lists them);
//! without root the tests say SKIP and pass, as the other lab tests do. nextest runs them one at a time (lab group).

mod common;

use std::path::{Path, PathBuf};

use kubeha_firstboot::apply::images::{load_images, Target};
use kubeha_firstboot::runner::{Cmd, Runner, SystemRunner};
use kubeha_lab::{is_root, Containerd, Dockerd, Registry};
use kubeha_model::cluster::Runtime;

fn bundle(dir: &Path) -> (PathBuf, kubeha_model::bundle::BundleManifest) {
    let b = dir.join("bundle");
    let m = common::make_bundle(&b);
    (b, m)
}

#[test]
fn load_into_real_containerd() {
    if !is_root() {
        return;
    }
    let d = tempfile::Builder::new()
        .prefix("khf-ctr")
        .tempdir()
        .unwrap();
    let (b, m) = bundle(d.path());
    let ct = Containerd::start(&d.path().join("containerd"));
    let sock = &ct.sock;
    let target = Target {
        runtime: Runtime::Containerd,
        address: Some(sock.display().to_string()),
    };
    let r = load_images(&SystemRunner, &b, &m, &target).unwrap();
    assert_eq!(r.loaded, common::images());
    assert!(r.skipped.is_empty());
    let ls = SystemRunner
        .run(
            &Cmd::new("ctr")
                .arg("-a")
                .arg(sock.display().to_string())
                .args(["-n", "k8s.io", "images", "ls"]),
        )
        .unwrap()
        .stdout_str();
    for i in common::images() {
        assert!(ls.contains(&i), "{i} not in {ls}");
    }
    // The runtime has the bundle's exact manifests: the digest ctr lists is the bundle's.
    for i in &m.images {
        assert!(
            ls.contains(&i.digest) || ls.contains(&i.digest[7..]),
            "{} {} not in {ls}",
            i.reference,
            i.digest
        );
    }
    // Second run: everything is present, nothing is streamed.
    let r = load_images(&SystemRunner, &b, &m, &target).unwrap();
    assert!(r.loaded.is_empty());
    assert_eq!(r.skipped, common::images());
}

/// Starts a real dockerd in a namespace of its own with every directory under `d`, in a containerd namespace of
/// this test process's own.
fn start_dockerd(d: &Path) -> Dockerd {
    Dockerd::start_with(
        &d.join("docker"),
        &[
            "--containerd-namespace".into(),
            format!("khf-{}", std::process::id()),
        ],
    )
}

/// `repository:tag` of every image the dockerd at `host` has.
fn docker_images(host: &str) -> String {
    SystemRunner
        .run(&Cmd::new("docker").args([
            "-H",
            host,
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ]))
        .unwrap()
        .stdout_str()
}

#[test]
fn load_into_real_dockerd() {
    if !is_root() {
        return;
    }
    let d = tempfile::Builder::new().prefix("khf-dk").tempdir().unwrap();
    let (b, m) = bundle(d.path());
    let dk = start_dockerd(d.path());
    let host = dk.host();
    let target = Target {
        runtime: Runtime::Docker,
        address: Some(host.clone()),
    };
    let r = load_images(&SystemRunner, &b, &m, &target).unwrap();
    assert_eq!(r.loaded, common::images());
    let out = docker_images(&host);
    // docker shows Docker Hub images without docker.io/; the others with their registry.
    for i in common::images() {
        let shown = i.strip_prefix("docker.io/").unwrap_or(&i).to_string();
        assert!(out.lines().any(|l| l == shown), "{shown} not in {out}");
    }
    // Docker's image id is the config digest: the bundle's config, byte for byte.
    let layout = kubeha_mirror::oci::Layout::open(&b.join("images")).unwrap();
    for i in &m.images {
        let id = SystemRunner
            .run(&Cmd::new("docker").args([
                "-H",
                &host,
                "image",
                "inspect",
                "--format",
                "{{.Id}}",
                &i.reference,
            ]))
            .unwrap()
            .stdout_str();
        let cfg = layout.image(&i.reference).unwrap().manifest.config.digest;
        assert_eq!(id.trim(), cfg.as_str(), "{}", i.reference);
    }
    let r = load_images(&SystemRunner, &b, &m, &target).unwrap();
    assert!(r.loaded.is_empty());
    assert_eq!(r.skipped, common::images());
}

/// A bundle made the way `kubeha bundle build` makes it (`kubeha_mirror::build::build`, the command's whole body)
/// from a real docker-registry on loopback holding kubeadm's images for the default release (as manifest lists,
/// amd64 + arm64) under their real names through a registry mirror, then loaded into a real dockerd by the agent.
#[test]
fn load_registry_built_bundle_into_real_dockerd() {
    if !is_root() {
        return;
    }
    let d = tempfile::Builder::new().prefix("khf-dr").tempdir().unwrap();
    let registry = Registry::start(&d.path().join("reg"), &d.path().join("registry"), None);
    let port = registry.port;
    let version = kubeha_model::Cluster::default_cluster()
        .cluster
        .kubernetes_version;
    let mut refs = kubeha_model::kube::kubeadm_images(&version, None);
    refs.push("docker.io/calico/node:v3.28.2".into());
    std::fs::write(d.path().join("images.txt"), refs.join("\n")).unwrap();
    kubeha_lab::demo::upstream::images(&kubeha_lab::demo::upstream::ImagesOpts {
        lists: true,
        ..kubeha_lab::demo::upstream::ImagesOpts::new(
            &format!("127.0.0.1:{port}"),
            &d.path().join("images.txt"),
        )
    })
    .unwrap();
    let mirror = |host: &str| kubeha_model::bundle::ProfileMirror {
        registry: host.into(),
        endpoint: format!("http://127.0.0.1:{port}"),
        prefix: Some(host.into()),
    };
    let profile = kubeha_model::bundle::Profile {
        name: "images-only".into(),
        kubernetes_version: version,
        image_repository: None,
        container_runtime: Runtime::Docker,
        el: 9,
        arch: "x86_64".into(),
        images: vec!["docker.io/calico/node:v3.28.2".into()],
        repos: vec![],
        packages: vec![],
        files: vec![],
        registry_mirrors: vec![mirror("registry.k8s.io"), mirror("docker.io")],
        credentials: vec![],
    };
    let b = d.path().join("bundle");
    kubeha_mirror::build::build(&profile, &b, &kubeha_mirror::build::BuildOptions::default())
        .unwrap();
    kubeha_mirror::bundle::verify(&b).unwrap();
    let m = kubeha_model::bundle::BundleManifest::load(&b).unwrap();
    assert_eq!(m.images.len(), refs.len());

    let dk = start_dockerd(d.path());
    let host = dk.host();
    let target = Target {
        runtime: Runtime::Docker,
        address: Some(host.clone()),
    };
    let r = load_images(&SystemRunner, &b, &m, &target).unwrap();
    assert_eq!(r.loaded.len(), refs.len(), "{r:?}");
    let out = docker_images(&host);
    for want in &refs {
        // docker shows Docker Hub images without their registry.
        let shown = want.strip_prefix("docker.io/").unwrap_or(want);
        assert!(out.lines().any(|l| l == shown), "{shown} not in {out}");
    }
    let pause = kubeha_model::kube::pause_image(&version, None);
    let ran = SystemRunner
        .run(&Cmd::new("docker").args(["-H", &host, "run", "--rm", "--network", "none", &pause]))
        .unwrap()
        .stdout_str();
    assert!(
        ran.contains(&format!("{pause} amd64")),
        "the amd64 image of the list was loaded: {ran}"
    );
    // A second run finds every image present and loads nothing.
    let again = load_images(&SystemRunner, &b, &m, &target).unwrap();
    assert!(
        again.loaded.is_empty() && again.skipped.len() == refs.len(),
        "{again:?}"
    );
}
