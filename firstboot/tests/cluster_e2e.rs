//! End to end in network namespaces: every node runs the REAL cluster steps (`cluster::steps_with` with the real
//! `NetEnv`: TLS probes, etcd's JSON gateway, the Kubernetes API) on its own thread inside its own namespace. The
//! LB step's rendered keepalived.conf, check script and nginx.conf are started as REAL keepalived and nginx.
//!
//! STAND-IN, named as such: `E2eRunner` stands in for systemd and kubeadm. `systemctl start|restart keepalived|nginx`
//! starts the real daemon on the files the step wrote (system paths mapped under the node's root). `kubeadm init`
//! and `kubeadm join` check their `--config` file (0600 in a 0700 directory, right kind, token not on the command
//! line) and the CA files the PKI step wrote, then do what kubeadm's control-plane phases would do for the test's
//! purposes: start a REAL etcd member (certificates from the node's /etc/kubernetes/pki/etcd/ca.*; a join adds the
//! member through the gateway and starts it with `--initial-cluster-state existing`) and a stand-in apiserver
//! (tests/cluster/apiserver.py, certificate from the node's cluster CA).
//!
//! Scenarios: all masters and a worker start at once (one `init`, by the designated master; the others join through
//! the VIP); the designated master is then reimaged while the others run (it joins after its stale etcd member and
//! Node are removed; three healthy members, still one `init`); then a new cluster in which the designated master
//! starts 8 s after the others (they wait; one `init`).

#[path = "cluster/common.rs"]
mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use common::*;
use kubeha_firstboot::cluster::decide::Timing;
use kubeha_firstboot::cluster::etcd::{self, EtcdClient};
use kubeha_firstboot::cluster::net::NetEnv;
use kubeha_firstboot::cluster::pki::{self, LeafSpec};
use kubeha_firstboot::cluster::steps_with;
use kubeha_firstboot::engine::{Context, Step};
use kubeha_firstboot::runner::{Cmd, Output, Runner};
use kubeha_model::cluster::{Node, Role};
use kubeha_model::secrets::CertKey;
use kubeha_model::Cluster;

struct Shared {
    lab: Mutex<Lab>,
    c: Cluster,
    /// Every kubeadm command, "node: argv".
    kubeadm: Mutex<Vec<String>>,
    /// Spawned pids per node and daemon.
    pids: Mutex<BTreeMap<(String, &'static str), u32>>,
    record: PathBuf,
}

struct E2eRunner {
    sh: Arc<Shared>,
    node: Node,
    role: Role,
    root: PathBuf,
    run: PathBuf,
    token: String,
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

fn ok(out: &str) -> Result<Output> {
    Ok(Output {
        code: Some(0),
        stdout: out.as_bytes().to_vec(),
        stderr: vec![],
    })
}

impl E2eRunner {
    fn ns(&self) -> String {
        self.sh.lab.lock().unwrap().ns(&short(&self.node.name))
    }

    fn spawn(&self, what: &'static str, args: &[&str]) {
        self.stop(what);
        let log = self.run.join(format!("{what}.log"));
        let pid = self
            .sh
            .lab
            .lock()
            .unwrap()
            .spawn(&short(&self.node.name), args, &log);
        self.sh
            .pids
            .lock()
            .unwrap()
            .insert((self.node.name.clone(), what), pid);
    }

    fn stop(&self, what: &'static str) {
        if let Some(pid) = self
            .sh
            .pids
            .lock()
            .unwrap()
            .remove(&(self.node.name.clone(), what))
        {
            self.sh.lab.lock().unwrap().stop(pid);
        }
    }

    fn sys(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn ca(&self, rel: &str) -> Result<CertKey> {
        let d = self.sys("/etc/kubernetes/pki");
        Ok(CertKey {
            cert: std::fs::read_to_string(d.join(format!("{rel}.crt"))).context("CA cert")?,
            key: std::fs::read_to_string(d.join(format!("{rel}.key"))).context("CA key")?,
        })
    }

    /// The LB step's files with system paths mapped under the node's root and run directory.
    fn map_lb(&self) -> Result<()> {
        let r = self.root.display().to_string();
        let run = self.run.display().to_string();
        let script =
            std::fs::read_to_string(self.sys("/usr/libexec/keepalived/check_apiserver.sh"))?
                .replace("/etc/kubernetes/", &format!("{r}/etc/kubernetes/"));
        put(&self.run.join("check_apiserver.sh"), &script, 0o700);
        let ka = std::fs::read_to_string(self.sys("/etc/keepalived/keepalived.conf"))?.replace(
            "/usr/libexec/keepalived/check_apiserver.sh",
            &format!("{run}/check_apiserver.sh"),
        );
        put(&self.run.join("keepalived.conf"), &ka, 0o644);
        let ng = std::fs::read_to_string(self.sys("/etc/nginx/nginx.conf"))?
            .replace("/usr/lib64/nginx/modules/", "/usr/lib/nginx/modules/")
            .replace("user nginx;\n", "")
            .replace("/run/nginx.pid", &format!("{run}/nginx.pid"))
            .replace(
                "/var/log/nginx/error.log",
                &format!("{run}/nginx-error.log"),
            );
        put(&self.run.join("nginx.conf"), &ng, 0o644);
        Ok(())
    }

    fn check_config(&self, argv: &[String], kind: &str) -> Result<String> {
        let i = argv
            .iter()
            .position(|a| a == "--config")
            .context("no --config")?;
        let p = self.sys(&argv[i + 1]);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("kubeadm stand-in: {}", p.display()))?;
        if mode(&p) != 0o600 || mode(p.parent().unwrap()) != 0o700 {
            bail!(
                "kubeadm stand-in: {} must be 0600 in a 0700 directory",
                p.display()
            );
        }
        if !text.contains(&format!("kind: {kind}")) || !text.contains(&self.token) {
            bail!(
                "kubeadm stand-in: {} is not a {kind} with the token",
                p.display()
            );
        }
        if argv.iter().any(|a| a.contains(&self.token)) {
            bail!("token on the command line");
        }
        let n = std::fs::read_dir(&self.sh.record)?.count();
        std::fs::copy(
            &p,
            self.sh
                .record
                .join(format!("{n:02}-{}-{kind}.yaml", self.node.name)),
        )?;
        Ok(text)
    }

    fn start_etcd(&self, initial_cluster: &str, state: &str) -> Result<()> {
        let ca = self.ca("etcd/ca")?;
        let ip = self.node.ip;
        let (cert, key) = pki::issue(
            &ca,
            &LeafSpec {
                cn: &self.node.name,
                ips: &[ip.into(), "127.0.0.1".parse()?],
                server: true,
                client: true,
                days: 1,
                ..Default::default()
            },
        )?;
        let d = self.run.display().to_string();
        put(&self.run.join("etcd.crt"), &cert, 0o644);
        put(&self.run.join("etcd.key"), &key, 0o600);
        put(&self.run.join("etcd-ca.crt"), &ca.cert, 0o644);
        let data = self.sys("/var/lib/etcd").display().to_string();
        self.spawn(
            "etcd",
            &[
                "etcd",
                "--name",
                &self.node.name,
                "--data-dir",
                &data,
                "--listen-client-urls",
                &format!("https://{ip}:2379,https://127.0.0.1:2379"),
                "--advertise-client-urls",
                &format!("https://{ip}:2379"),
                "--listen-peer-urls",
                &format!("https://{ip}:2380"),
                "--initial-advertise-peer-urls",
                &format!("https://{ip}:2380"),
                "--initial-cluster",
                initial_cluster,
                "--initial-cluster-state",
                state,
                "--cert-file",
                &format!("{d}/etcd.crt"),
                "--key-file",
                &format!("{d}/etcd.key"),
                "--trusted-ca-file",
                &format!("{d}/etcd-ca.crt"),
                "--client-cert-auth",
                "--peer-cert-file",
                &format!("{d}/etcd.crt"),
                "--peer-key-file",
                &format!("{d}/etcd.key"),
                "--peer-trusted-ca-file",
                &format!("{d}/etcd-ca.crt"),
                "--peer-client-cert-auth",
            ],
        );
        // Wait until this member answers (we are on the node's thread, inside its namespace).
        let cl = EtcdClient::new(&ca, vec![], Duration::from_secs(2))?;
        let start = Instant::now();
        while !cl.healthy(&etcd::client_url(ip)) {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("etcd on {} did not start", self.node.name);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    fn start_apiserver(&self) -> Result<()> {
        let ca = self.ca("ca")?;
        let (cert, key) = pki::issue(
            &ca,
            &LeafSpec {
                cn: "kube-apiserver",
                ips: &[self.node.ip.into(), self.sh.c.endpoint.vip.into()],
                server: true,
                days: 1,
                ..Default::default()
            },
        )?;
        put(&self.run.join("apiserver.crt"), &cert, 0o644);
        put(&self.run.join("apiserver.key"), &key, 0o600);
        let d = self.run.display().to_string();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/apiserver.py");
        self.spawn(
            "apiserver",
            &[
                "python3",
                script.to_str().unwrap(),
                &self.node.name,
                &self.node.ip.to_string(),
                &format!("{d}/apiserver.crt"),
                &format!("{d}/apiserver.key"),
                &self.sys("/etc/kubernetes/pki/ca.crt").display().to_string(),
                &self.sh.record.join("deleted-nodes").display().to_string(),
            ],
        );
        for f in [
            "/etc/kubernetes/admin.conf",
            "/etc/kubernetes/kubelet.conf",
            "/etc/kubernetes/manifests/kube-apiserver.yaml",
        ] {
            put(&self.sys(f), "written by the kubeadm stand-in\n", 0o600);
        }
        Ok(())
    }

    fn kubeadm(&self, argv: &[String]) -> Result<()> {
        self.sh.kubeadm.lock().unwrap().push(format!(
            "{}: kubeadm {}",
            self.node.name,
            argv.join(" ")
        ));
        match argv.first().map(String::as_str) {
            Some("init") => {
                self.check_config(argv, "InitConfiguration")?;
                self.start_etcd(
                    &format!("{}={}", self.node.name, etcd::peer_url(self.node.ip)),
                    "new",
                )?;
                self.start_apiserver()?;
            }
            Some("join") if self.role == Role::Master => {
                let text = self.check_config(argv, "JoinConfiguration")?;
                if !text.contains("controlPlane:") {
                    bail!("a master's join config has no controlPlane");
                }
                // kubeadm's control-plane join: add the member (skipping an existing peer URL), start etcd.
                let eps = self
                    .sh
                    .c
                    .masters
                    .iter()
                    .filter(|m| m.name != self.node.name)
                    .map(|m| etcd::client_url(m.ip))
                    .collect();
                let cl = EtcdClient::new(&self.ca("etcd/ca")?, eps, Duration::from_secs(2))?;
                let (ep, members) = cl.member_list()?;
                let purl = etcd::peer_url(self.node.ip);
                if members.iter().any(|m| m.peer_urls.contains(&purl)) {
                    bail!("kubeadm stand-in: a member with peer URL {purl} exists: the stale member was not removed");
                }
                // Like kubeadm, retry while etcd refuses to add a voter ("unhealthy cluster": the previous new
                // member has not been connected long enough for etcd's strict reconfiguration check).
                let start = Instant::now();
                let members = loop {
                    match cl.member_add(&ep, &purl) {
                        Ok(m) => break m,
                        Err(e)
                            if start.elapsed() < Duration::from_secs(30)
                                && format!("{e:#}").contains("unhealthy cluster") =>
                        {
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        Err(e) => return Err(e),
                    }
                };
                self.start_etcd(
                    &etcd::initial_cluster(&members, &self.node.name, self.node.ip),
                    "existing",
                )?;
                self.start_apiserver()?;
            }
            Some("join") => {
                let text = self.check_config(argv, "JoinConfiguration")?;
                if text.contains("controlPlane:") {
                    bail!("a worker's join config has a controlPlane");
                }
                put(
                    &self.sys("/etc/kubernetes/kubelet.conf"),
                    "stand-in\n",
                    0o600,
                );
            }
            Some("reset") => {}
            _ => bail!("kubeadm stand-in: unexpected {argv:?}"),
        }
        Ok(())
    }
}

impl Runner for E2eRunner {
    fn output(&self, cmd: &Cmd) -> Result<Output> {
        let a: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
        match (cmd.program.as_str(), a.as_slice()) {
            ("kubeadm", _) => self.kubeadm(&cmd.args).map(|_| Output {
                code: Some(0),
                ..Default::default()
            }),
            ("ip", _) => {
                let o = Command::new("ip")
                    .args(["netns", "exec", &self.ns(), "ip"])
                    .args(&cmd.args)
                    .output()?;
                ok(&String::from_utf8_lossy(&o.stdout))
            }
            ("getenforce", _) => ok("Disabled\n"),
            ("firewall-cmd", _) => Ok(Output {
                code: Some(252),
                ..Default::default()
            }),
            ("nginx", ["-t", ..]) => {
                self.map_lb()?;
                let d = self.run.display().to_string();
                let o = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &self.ns(),
                        "nginx",
                        "-t",
                        "-p",
                        &d,
                        "-e",
                        &format!("{d}/nginx-error.log"),
                        "-c",
                        &format!("{d}/nginx.conf"),
                    ])
                    .output()?;
                Ok(Output {
                    code: o.status.code(),
                    stdout: o.stdout,
                    stderr: o.stderr,
                })
            }
            ("systemctl", ["enable", _]) => ok(""),
            ("systemctl", [verb @ ("start" | "restart"), svc @ ("nginx" | "keepalived")]) => {
                let key: &'static str = if *svc == "nginx" {
                    "nginx"
                } else {
                    "keepalived"
                };
                let running = self
                    .sh
                    .pids
                    .lock()
                    .unwrap()
                    .contains_key(&(self.node.name.clone(), key));
                if running && *verb == "start" {
                    return ok("");
                }
                self.map_lb()?;
                let d = self.run.display().to_string();
                if key == "nginx" {
                    self.spawn(
                        "nginx",
                        &[
                            "nginx",
                            "-p",
                            &d,
                            "-e",
                            &format!("{d}/nginx-error.log"),
                            "-c",
                            &format!("{d}/nginx.conf"),
                            "-g",
                            "daemon off;",
                        ],
                    );
                } else {
                    self.spawn(
                        "keepalived",
                        &[
                            "keepalived",
                            "-n",
                            "-l",
                            "-D",
                            "-f",
                            &format!("{d}/keepalived.conf"),
                            "-p",
                            &format!("{d}/keepalived.pid"),
                            "-r",
                            &format!("{d}/vrrp.pid"),
                            "-c",
                            &format!("{d}/checkers.pid"),
                        ],
                    );
                }
                ok("")
            }
            ("kubectl", _) => ok(""),
            _ => bail!("unexpected command {}", cmd.display()),
        }
    }
}

fn short(name: &str) -> String {
    name.replace("k8s-master0", "m").replace("k8s-node0", "w")
}

fn timing() -> Timing {
    Timing {
        endpoint_wait: Duration::from_secs(90),
        turn_wait: Duration::from_secs(60),
        absent_grace: Duration::from_secs(8),
        backoff_min: Duration::from_millis(300),
        backoff_max: Duration::from_secs(1),
        probe_timeout: Duration::from_secs(1),
    }
}

/// Runs a node's steps on a thread inside its namespace.
fn start_node(
    sh: &Arc<Shared>,
    name: &str,
    delay: Duration,
) -> std::thread::JoinHandle<Result<()>> {
    let (role, node) = sh.c.node(name).map(|(r, n)| (r, n.clone())).unwrap();
    let config = if role == Role::Master {
        master_config(&sh.c, name)
    } else {
        worker_config(&sh.c, name)
    };
    let dir = sh.lab.lock().unwrap().dir.join(short(name));
    let root = dir.join("root");
    let run = dir.join("run");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    put(
        &root.join("var/lib/kubeha/bundle/files/calico.yaml"),
        "kind: DaemonSet\n",
        0o644,
    );
    let runner = E2eRunner {
        sh: sh.clone(),
        node,
        role,
        root: root.clone(),
        run,
        token: config.join.token.clone(),
    };
    let ns = runner.ns();
    let name = name.to_string();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        in_netns(&ns, move || {
            let mut ctx = Context {
                root,
                runner: Box::new(runner),
                config,
                name: name.clone(),
                role,
                dry_run: false,
            };
            let env = Arc::new(NetEnv {
                timeout: Duration::from_secs(2),
            });
            let steps: Vec<Box<dyn Step>> = steps_with(env, timing());
            for s in &steps {
                if s.applies(&ctx) {
                    s.run(&mut ctx)
                        .with_context(|| format!("{name}: step {}", s.name()))?;
                }
            }
            Ok(())
        })
    })
}

fn members(sh: &Shared, from: &str) -> Vec<etcd::Member> {
    let ns = sh.lab.lock().unwrap().ns(from);
    let nc = master_config(&sh.c, "k8s-master01");
    let eps: Vec<String> =
        sh.c.masters
            .iter()
            .map(|m| etcd::client_url(m.ip))
            .collect();
    in_netns(&ns, move || {
        let cl = EtcdClient::new(
            &nc.control_plane.unwrap().etcd_ca,
            eps,
            Duration::from_secs(2),
        )
        .unwrap();
        cl.member_list().unwrap().1
    })
}

#[test]
fn masters_form_and_rebuild_in_namespaces() {
    if !lab_available("masters_form_and_rebuild_in_namespaces") {
        return;
    }
    let mut c = Cluster::default_cluster();
    c.workers.truncate(1);
    let lab = Lab::new(
        "e",
        &[
            ("m1", "192.168.20.20/24"),
            ("m2", "192.168.20.21/24"),
            ("m3", "192.168.20.22/24"),
            ("w1", "192.168.20.30/24"),
        ],
    );
    let record = lab.dir.join("record");
    std::fs::create_dir_all(&record).unwrap();
    let sh = Arc::new(Shared {
        lab: Mutex::new(lab),
        c: c.clone(),
        kubeadm: Mutex::new(vec![]),
        pids: Mutex::new(BTreeMap::new()),
        record,
    });

    // 1. Everything starts at once.
    let t = Instant::now();
    let hs: Vec<_> = ["k8s-master01", "k8s-master02", "k8s-master03", "k8s-node01"]
        .iter()
        .map(|n| (n.to_string(), start_node(&sh, n, Duration::ZERO)))
        .collect();
    for (n, h) in hs {
        h.join().unwrap().unwrap_or_else(|e| panic!("{n}: {e:#}"));
    }
    let log = sh.kubeadm.lock().unwrap().clone();
    eprintln!("all at once, {:.1?}: {log:#?}", t.elapsed());
    let inits: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(": kubeadm init"))
        .collect();
    assert_eq!(inits.len(), 1, "{log:#?}");
    assert!(inits[0].starts_with("k8s-master01:"));
    let ms = members(&sh, "m2");
    assert_eq!(ms.iter().filter(|m| m.started()).count(), 3, "{ms:?}");
    let old1 = ms.iter().find(|m| m.name == "k8s-master01").unwrap().id;

    // 2. master01 (the designated one) is reimaged while the others run.
    for what in ["keepalived", "nginx", "etcd", "apiserver"] {
        if let Some(pid) = sh
            .pids
            .lock()
            .unwrap()
            .remove(&("k8s-master01".to_string(), what))
        {
            sh.lab.lock().unwrap().stop(pid);
        }
    }
    let d = sh.lab.lock().unwrap().dir.join("m1");
    std::fs::remove_dir_all(&d).unwrap();
    let t = Instant::now();
    start_node(&sh, "k8s-master01", Duration::ZERO)
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("reimaged m1: {e:#}"));
    let log = sh.kubeadm.lock().unwrap().clone();
    eprintln!("reimaged master01 rejoined in {:.1?}", t.elapsed());
    assert_eq!(
        log.iter().filter(|l| l.contains(": kubeadm init")).count(),
        1,
        "never a second init: {log:#?}"
    );
    assert_eq!(
        log.last().unwrap(),
        "k8s-master01: kubeadm join --config /etc/kubeha/kubeadm-join.yaml"
    );
    let ms = members(&sh, "m3");
    assert_eq!(ms.iter().filter(|m| m.started()).count(), 3, "{ms:?}");
    assert!(
        !ms.iter().any(|m| m.id == old1),
        "stale member {old1:x} removed"
    );
    let deleted = std::fs::read_to_string(sh.record.join("deleted-nodes")).unwrap_or_default();
    assert!(
        deleted.lines().any(|l| l.contains(" k8s-master01 ")),
        "stale Node deleted: {deleted}"
    );
    stop_all(&sh);

    // 3. A new cluster where the designated master starts last: the others wait for it, nobody else inits.
    for n in ["m1", "m2", "m3", "w1"] {
        let d = sh.lab.lock().unwrap().dir.join(n);
        std::fs::remove_dir_all(&d).unwrap();
    }
    let before = sh.kubeadm.lock().unwrap().len();
    let t = Instant::now();
    let hs: Vec<_> = [
        ("k8s-master02", 0),
        ("k8s-master03", 0),
        ("k8s-node01", 0),
        ("k8s-master01", 8),
    ]
    .iter()
    .map(|(n, s)| (n.to_string(), start_node(&sh, n, Duration::from_secs(*s))))
    .collect();
    for (n, h) in hs {
        h.join().unwrap().unwrap_or_else(|e| panic!("{n}: {e:#}"));
    }
    let log = sh.kubeadm.lock().unwrap()[before..].to_vec();
    eprintln!("designated master last, {:.1?}: {log:#?}", t.elapsed());
    let inits: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(": kubeadm init"))
        .collect();
    assert_eq!(inits.len(), 1, "{log:#?}");
    assert!(inits[0].starts_with("k8s-master01:"));
    let ms = members(&sh, "m2");
    assert_eq!(ms.iter().filter(|m| m.started()).count(), 3, "{ms:?}");
    stop_all(&sh);
}

/// Stops every daemon the stand-in started (before the lab and its namespaces go).
fn stop_all(sh: &Shared) {
    let pids: Vec<u32> = std::mem::take(&mut *sh.pids.lock().unwrap())
        .into_values()
        .collect();
    for p in pids {
        sh.lab.lock().unwrap().stop(p);
    }
}
