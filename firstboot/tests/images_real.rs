//! Image loading into a real containerd and a real dockerd started by the test (in a network namespace of its own,
//! with every directory and socket under a temp dir), from a bundle's OCI layout: the images are verified, streamed,
//! listed by the runtime afterwards, and skipped on a second run.
//!
//! Needs root (network namespaces) and the Debian packages containerd and docker.io (mk/firstboot.mk lists them);
//! without root the tests say SKIP and pass, as the other lab tests do. nextest runs them one at a time (lab group).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubeha_firstboot::apply::images::{load_images, Target};
use kubeha_firstboot::runner::{Cmd, Runner, SystemRunner};
use kubeha_model::cluster::Runtime;

/// A network namespace named with this helper's prefix and the pid, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("khf-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name} (needs root)");
        Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        Netns(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A daemon we started; stopped by its own pid.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        unsafe { libc_kill(self.0.id() as i32, 15) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn wait_for(sock: &Path, log: &Path) {
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "daemon did not create {}: {}",
            sock.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bundle(dir: &Path) -> (PathBuf, kubeha_model::bundle::BundleManifest) {
    let b = dir.join("bundle");
    let m = common::make_bundle(&b);
    (b, m)
}

fn is_root() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("SKIP: needs root for network namespaces");
    }
    root
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
    let ns = Netns::new("ctr");
    let sock = d.path().join("containerd.sock");
    let cfg = d.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{1}\"\n[ttrpc]\n  address = \"{1}.ttrpc\"\n",
            d.path().display(),
            sock.display()
        ),
    )
    .unwrap();
    let log = d.path().join("containerd.log");
    let _daemon = Daemon(
        Command::new("nsenter")
            .arg(format!("--net={}", ns.path()))
            .arg("containerd")
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for(&sock, &log);
    let target = Target {
        runtime: Runtime::Containerd,
        address: Some(sock.display().to_string()),
    };
    let r = load_images(&SystemRunner, &b, &m, &target).unwrap();
    assert_eq!(r.loaded, common::IMAGES);
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
    assert!(
        ls.contains("registry.k8s.io/pause:3.10") && ls.contains("docker.io/calico/node:v3.28.2"),
        "{ls}"
    );
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
    assert_eq!(r.skipped, common::IMAGES);
}

#[test]
fn load_into_real_dockerd() {
    if !is_root() {
        return;
    }
    let d = tempfile::Builder::new().prefix("khf-dk").tempdir().unwrap();
    let (b, m) = bundle(d.path());
    let ns = Netns::new("dk");
    let sock = d.path().join("docker.sock");
    let log = d.path().join("dockerd.log");
    let _daemon = Daemon(
        Command::new("nsenter")
            .arg(format!("--net={}", ns.path()))
            .arg("dockerd")
            .arg("--data-root")
            .arg(d.path().join("data"))
            .arg("--exec-root")
            .arg(d.path().join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--pidfile")
            .arg(d.path().join("dockerd.pid"))
            .args([
                "--storage-driver",
                "overlay2",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ])
            .arg("--containerd-namespace")
            .arg(format!("khf-{}", std::process::id()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for(&sock, &log);
    let host = format!("unix://{}", sock.display());
    // The socket appears before the API answers.
    let t = Instant::now();
    while !SystemRunner
        .output(&Cmd::new("docker").args(["-H", &host, "version"]))
        .unwrap()
        .success()
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "dockerd not ready: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let target = Target {
        runtime: Runtime::Docker,
        address: Some(host.clone()),
    };
    let r = load_images(&SystemRunner, &b, &m, &target).unwrap();
    assert_eq!(r.loaded, common::IMAGES);
    let out = SystemRunner
        .run(&Cmd::new("docker").args([
            "-H",
            &host,
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ]))
        .unwrap()
        .stdout_str();
    for i in ["registry.k8s.io/pause:3.10", "calico/node:v3.28.2"] {
        assert!(out.lines().any(|l| l == i), "{i} not in {out}");
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
    assert_eq!(r.skipped, common::IMAGES);
}
