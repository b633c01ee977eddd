//! The real daemons the integration tests start: each a child process stopped by its own pid on drop ([`Daemon`]),
//! with every directory, socket and log under the directory the test gives, and waited for until it answers.

use std::io::BufRead;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::netns::Netns;

/// A daemon we started: stopped (SIGTERM, then SIGKILL after 10 s) by its own pid on drop, and reaped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// The program, for messages.
    pub name: &'static str,
}

impl Daemon {
    /// Spawns `cmd` as the daemon `name`; panics naming `name` when it cannot start (`hint`: the package to install).
    pub fn spawn(name: &'static str, cmd: &mut Command, hint: &str) -> Daemon {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({hint}): {e}"));
        Daemon { child, name }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
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

/// Waits until `f` is true or panics naming `what`, with the daemon's log.
fn wait_logged(what: &str, timeout: Duration, log: &Path, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out waiting for {what}; its log ({}):\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn quiet_ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A dockerd in its own network namespace with every path under `dir` (dockerd(8): `--data-root`, `--exec-root`,
/// `--pidfile`, `-H unix://`), no bridge and no iptables; its log is `dir/dockerd.log`.
pub struct Dockerd {
    /// Its API socket.
    pub sock: PathBuf,
    /// The process (declared before `ns`: stopped before its namespace goes).
    pub daemon: Daemon,
    /// Its namespace.
    pub ns: Netns,
    /// Where everything of it lives.
    pub dir: PathBuf,
}

impl Dockerd {
    /// Starts it and waits (60 s) until `docker version` answers.
    pub fn start(dir: &Path) -> Dockerd {
        Dockerd::start_with(dir, &[])
    }

    /// [`Dockerd::start`] with more dockerd arguments (`--containerd-namespace X`, ...).
    pub fn start_with(dir: &Path, extra: &[String]) -> Dockerd {
        std::fs::create_dir_all(dir).unwrap();
        let ns = Netns::new("khdk");
        let sock = dir.join("docker.sock");
        let log_path = dir.join("dockerd.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let daemon = Daemon::spawn(
            "dockerd",
            ns.command("dockerd")
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
                .args(extra)
                .stdout(Stdio::null())
                .stderr(log),
            "install docker.io",
        );
        let d = Dockerd {
            sock,
            daemon,
            ns,
            dir: dir.to_path_buf(),
        };
        wait_logged("dockerd", Duration::from_secs(60), &log_path, || {
            quiet_ok(d.docker().arg("version"))
        });
        d
    }

    /// Its `-H` address: `unix://<sock>`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// A `docker -H <it>` command.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(self.host());
        c
    }
}

/// A containerd in its own network namespace with root, state and sockets under `dir` (its CRI plugin off); its log
/// is `dir/containerd.log`.
pub struct Containerd {
    /// Its gRPC socket.
    pub sock: PathBuf,
    /// The process.
    pub daemon: Daemon,
    /// Its namespace.
    pub ns: Netns,
}

impl Containerd {
    /// Starts it and waits (60 s) until `ctr version` answers.
    pub fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let ns = Netns::new("khctr");
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
        let log_path = dir.join("containerd.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let daemon = Daemon::spawn(
            "containerd",
            ns.command("containerd")
                .arg("-c")
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(log),
            "install containerd",
        );
        let c = Containerd { sock, daemon, ns };
        wait_logged("containerd", Duration::from_secs(60), &log_path, || {
            quiet_ok(Command::new("ctr").arg("-a").arg(&c.sock).arg("version"))
        });
        c
    }

    /// A `ctr -a <it> -n k8s.io` command (kubelet's namespace).
    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.sock).args(["-n", "k8s.io"]);
        c
    }
}

/// A docker-registry (Debian's, distribution 2.8) serving `storage` on a free 127.0.0.1 port, plain HTTP or with TLS
/// and token auth; its config and log are under the directory it starts with.
pub struct Registry {
    /// Its port.
    pub port: u16,
    /// The process.
    pub daemon: Daemon,
    /// `http` or `https`.
    pub scheme: &'static str,
}

/// Token auth for a [`Registry`] (distribution's `auth.token`), served over TLS.
pub struct TokenAuth<'a> {
    /// The token server's URL.
    pub realm: String,
    /// The service the tokens name.
    pub service: &'a str,
    /// The tokens' issuer.
    pub issuer: &'a str,
    /// The certificate bundle the tokens' `x5c` chains to.
    pub rootcert: &'a Path,
    /// The registry's TLS certificate.
    pub tls_cert: &'a Path,
    /// Its key.
    pub tls_key: &'a Path,
}

impl Registry {
    /// Starts it with its config and log in `dir` and waits (30 s) until its port accepts.
    pub fn start(dir: &Path, storage: &Path, auth: Option<TokenAuth>) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port("127.0.0.1");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        let scheme = if let Some(a) = &auth {
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                a.tls_cert.display(),
                a.tls_key.display(),
                a.realm,
                a.service,
                a.issuer,
                a.rootcert.display()
            ));
            "https"
        } else {
            "http"
        };
        let cfgp = dir.join("config.yml");
        std::fs::write(&cfgp, cfg).unwrap();
        let log_path = dir.join("registry.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let daemon = Daemon::spawn(
            "docker-registry",
            Command::new("docker-registry")
                .arg("serve")
                .arg(&cfgp)
                .stdout(Stdio::null())
                .stderr(log),
            "install docker-registry",
        );
        let r = Registry {
            port,
            daemon,
            scheme,
        };
        wait_logged(
            "docker-registry",
            Duration::from_secs(30),
            &log_path,
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        r
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `<scheme>://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }
}

/// Python's http.server (or a script built on it) on a free loopback port it picks itself and prints ("Serving
/// HTTP on 127.0.0.1 port N"); stopped by pid on drop.
pub struct HttpDir {
    /// Its port.
    pub port: u16,
    /// The process.
    pub daemon: Daemon,
    /// Its access log, when started with one.
    pub log: Option<PathBuf>,
}

impl HttpDir {
    /// `python3 -m http.server` serving `dir` (its access log discarded).
    pub fn start(dir: &Path) -> HttpDir {
        HttpDir::spawn(http_server(dir).stderr(Stdio::null()))
    }

    /// Like [`HttpDir::start`], with http.server's access log (one line per request, on its stderr) in `log`
    /// ([`HttpDir::requests`]).
    pub fn start_logged(dir: &Path, log: &Path) -> HttpDir {
        let f = std::fs::File::create(log).unwrap();
        let mut h = HttpDir::spawn(http_server(dir).stderr(f));
        h.log = Some(log.to_path_buf());
        h
    }

    /// `python3 -u -c script dir args...`: a script that prints the http.server line once it listens.
    pub fn script(script: &str, dir: &Path, args: &[&str]) -> HttpDir {
        HttpDir::spawn(
            Command::new("python3")
                .args(["-u", "-c", script])
                .arg(dir)
                .args(args),
        )
    }

    /// Spawns `cmd` (its stdout piped here) and reads the port from its first line, printed once it listens.
    pub fn spawn(cmd: &mut Command) -> HttpDir {
        let mut daemon = Daemon::spawn(
            "python3 http.server",
            cmd.stdout(Stdio::piped()),
            "install python3",
        );
        let mut line = String::new();
        std::io::BufReader::new(daemon.child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        // http.server prints the line once it listens.
        HttpDir {
            port,
            daemon,
            log: None,
        }
    }

    /// `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The request lines so far (`GET /path HTTP/1.1`) of one started with a log; none otherwise.
    pub fn requests(&self) -> Vec<String> {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('"').nth(1).map(str::to_string))
            .collect()
    }
}

fn http_server(dir: &Path) -> Command {
    let mut c = Command::new("python3");
    c.args([
        "-u",
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "0",
        "--directory",
    ])
    .arg(dir);
    c
}
