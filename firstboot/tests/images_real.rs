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

    /// A command whose process enters this network namespace (setns(2) between fork and exec, as `nsenter
    /// --net` does; the child's pid is the program's).
    fn command(&self, program: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let ns = std::fs::File::open(self.path()).expect("opening the netns");
        let mut c = Command::new(program);
        // SAFETY: the closure only makes the setns system call, which is async-signal-safe.
        unsafe {
            c.pre_exec(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        c
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
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
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
        ns.command("containerd")
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

/// Starts a real dockerd in a namespace of its own with every directory under `d`; returns it with its `-H` address.
fn start_dockerd(d: &Path, tag: &str) -> (Netns, Daemon, String) {
    let ns = Netns::new(tag);
    let sock = d.join("docker.sock");
    let log = d.join("dockerd.log");
    let daemon = Daemon(
        ns.command("dockerd")
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
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
    (ns, daemon, host)
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
    let (_ns, _daemon, host) = start_dockerd(d.path(), "dk");
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        d.path().join("registry.yml"),
        format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n",
            d.path().join("registry").display()
        ),
    )
    .unwrap();
    let _registry = Daemon(
        Command::new("docker-registry")
            .arg("serve")
            .arg(d.path().join("registry.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let version = kubeha_model::Cluster::default_cluster()
        .cluster
        .kubernetes_version;
    let mut refs = kubeha_model::kube::kubeadm_images(&version, None);
    refs.push("docker.io/calico/node:v3.28.2".into());
    std::fs::write(d.path().join("images.txt"), refs.join("\n")).unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "docker-registry did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let upstream = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo/upstream.py");
    SystemRunner
        .run(&Cmd::new("python3").args([
            upstream.display().to_string(),
            "images".into(),
            "--registry".into(),
            format!("127.0.0.1:{port}"),
            "--list".into(),
            d.path().join("images.txt").display().to_string(),
            "--lists".into(),
        ]))
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

    let (_ns, _daemon, host) = start_dockerd(d.path(), "dr");
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
