//! Shared helpers: network namespaces and daemons started by the tests, stopped by pid, and fixture images.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kubeha_mirror::synth;

/// Runs a command; panics with argv, status and stderr on failure; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`run`], returning (success, stdout+stderr).
pub fn try_run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace `khm<pid>-<n>` with `lo` up, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "khm{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        run(Command::new("ip").args(["netns", "add", &name]));
        run(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        Netns { name }
    }
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A command whose process enters this network namespace (setns(2) between fork and exec, as `nsenter
    /// --net` does; the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
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
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A daemon we started: killed (SIGTERM, then SIGKILL) by its own pid on drop.
pub struct Daemon {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `f` is true or panics naming `what`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// A dockerd in its own netns with every path under `dir` (dockerd(8): `--data-root`, `--exec-root`,
/// `--pidfile`, `-H unix://`).
pub struct Dockerd {
    pub sock: PathBuf,
    pub daemon: Daemon,
    pub ns: Netns,
    pub dir: PathBuf,
}

impl Dockerd {
    pub fn start(dir: &Path) -> Dockerd {
        std::fs::create_dir_all(dir).unwrap();
        let ns = Netns::new();
        let sock = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = ns
            .command("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
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
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting dockerd (install docker.io)");
        let d = Dockerd {
            sock: sock.clone(),
            daemon: Daemon {
                child,
                name: "dockerd",
            },
            ns,
            dir: dir.to_path_buf(),
        };
        wait_for("dockerd", Duration::from_secs(60), || {
            Command::new("docker")
                .arg("-H")
                .arg(format!("unix://{}", sock.display()))
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        d
    }

    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(format!("unix://{}", self.sock.display()));
        c
    }
}

/// A containerd in its own netns with root, state and sockets under `dir`.
pub struct Containerd {
    pub sock: PathBuf,
    pub daemon: Daemon,
    pub ns: Netns,
}

impl Containerd {
    pub fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let ns = Netns::new();
        let sock = dir.join("containerd.sock");
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{1}\"\n[ttrpc]\n  address = \"{1}.ttrpc\"\n\
                 [debug]\n  address = \"{0}/debug.sock\"\n",
                dir.display(),
                sock.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = ns
            .command("containerd")
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        let c = Containerd {
            sock: sock.clone(),
            daemon: Daemon {
                child,
                name: "containerd",
            },
            ns,
        };
        wait_for("containerd", Duration::from_secs(60), || {
            Command::new("ctr")
                .arg("-a")
                .arg(&sock)
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        c
    }

    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.sock).args(["-n", "k8s.io"]);
        c
    }
}

/// Fixture images: a busybox base layer shared by all, plus a small per-image layer.
pub struct Fixture {
    pub base: synth::Layer,
    pub a: synth::SynthImage,
    pub b: synth::SynthImage,
}

pub fn hello_layer(name: &str) -> synth::Layer {
    synth::layer(&[synth::Entry::File(
        format!("{name}.txt"),
        format!("hello from {name}\n").into_bytes(),
        0o644,
    )])
}

pub fn fixture() -> Fixture {
    let base = synth::busybox_layer(Path::new("/bin/busybox")).expect("busybox-static installed");
    let a = synth::image(
        &[base.clone(), hello_layer("a")],
        synth::Format::Docker,
        "amd64",
        "a",
    );
    let b = synth::image(
        &[base.clone(), hello_layer("b")],
        synth::Format::Oci,
        "amd64",
        "b",
    );
    Fixture { base, a, b }
}
