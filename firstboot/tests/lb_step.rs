//! A pin of `cluster-lb` (keepalived + nginx): the exact commands the step runs, in order, and every file it leaves
//! under the root (path, mode, bytes), for the system answers that change what it does: a dry run, SELinux
//! enforcing with the port already labelled, an interface from cluster.toml, tools that are not installed, and the
//! failures that must stop it before (or after) it writes. The golden files are
//! `testdata/golden/lb-step-<case>.txt` (`UPDATE_GOLDEN=1` rewrites them after an intended change).

#[path = "cluster/common.rs"]
mod common;
mod goldens;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use kubeha_firstboot::cluster::steps::LoadBalancerStep;
use kubeha_firstboot::engine::{Context, Step};
use kubeha_firstboot::runner::{Cmd, Output, RecordingRunner, Runner};
use kubeha_model::cluster::Role;
use kubeha_model::{Cluster, NodeConfig};

/// The VRRP password every case uses (the test secrets are random per process).
const AUTH_PASS: &str = "pinpass1";

/// What the system answers, by command line; a line without an answer exits 0 with no output.
#[derive(Default)]
struct Answers {
    /// Commands that exit with this code and print this (stdout, stderr).
    by_line: BTreeMap<&'static str, (i32, &'static str, &'static str)>,
    /// Programs that are not installed (the runner cannot start them).
    missing: Vec<&'static str>,
}

/// A runner that answers like a real system (`is_real`) from [`Answers`] and records every command line.
struct Scripted {
    answers: Answers,
    log: Mutex<Vec<String>>,
}

impl Runner for Scripted {
    fn output(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let line = cmd.display();
        self.log.lock().unwrap().push(line.clone());
        if self.answers.missing.contains(&cmd.program.as_str()) {
            anyhow::bail!(
                "starting {line}: No such file or directory (os error 2) (is it installed?)"
            );
        }
        let (code, out, err) = self
            .answers
            .by_line
            .get(line.as_str())
            .copied()
            .unwrap_or((0, "", ""));
        Ok(Output {
            code: Some(code),
            stdout: out.as_bytes().to_vec(),
            stderr: err.as_bytes().to_vec(),
        })
    }
}

/// Records every command line, for the recording runner (the dry run) and the scripted one.
enum Log {
    Recording(Arc<RecordingRunner>),
    Scripted(Arc<Scripted>),
}

impl Log {
    fn lines(&self) -> Vec<String> {
        match self {
            Log::Recording(r) => r.lines(),
            Log::Scripted(s) => s.log.lock().unwrap().clone(),
        }
    }
}

/// One case: a master of `cluster`, a root with `present` files, and a runner.
struct Case {
    name: &'static str,
    master: &'static str,
    cluster: Cluster,
    /// `None`: the dry run's recording runner.
    answers: Option<Answers>,
    present: Vec<&'static str>,
    auth_pass: &'static str,
}

fn config(c: &Cluster, master: &str, auth_pass: &str) -> NodeConfig {
    let mut nc = master_config(c, master);
    nc.control_plane.as_mut().unwrap().vrrp_auth_pass = auth_pass.into();
    nc
}

/// Every file and directory under `root`, sorted: directories by name, files with their mode and bytes.
fn tree(root: &Path) -> String {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Option<(u32, String)>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(rel, None);
                walk(&p, root, out);
            } else {
                let mode = meta.permissions().mode() & 0o7777;
                out.insert(rel, Some((mode, std::fs::read_to_string(&p).unwrap())));
            }
        }
    }
    let mut entries = BTreeMap::new();
    walk(root, root, &mut entries);
    let mut s = String::new();
    for (p, f) in entries {
        match f {
            None => s.push_str(&format!("dir {p}\n")),
            Some((mode, text)) => {
                s.push_str(&format!("file {p} {mode:04o}\n"));
                for l in text.lines() {
                    s.push_str(&format!("  | {l}\n"));
                }
                if !text.ends_with('\n') {
                    s.push_str("  (no newline at the end)\n");
                }
            }
        }
    }
    s
}

/// Runs the step twice on one root (the second run finds its files in place and runs every command again), and
/// renders what it did as the golden text.
fn pin(case: Case) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for p in &case.present {
        put(&root.join(p.trim_start_matches('/')), "present\n", 0o644);
    }
    let (runner, log): (Box<dyn Runner>, Log) = match case.answers {
        None => {
            let r = Arc::new(RecordingRunner::default());
            (Box::new(r.clone()), Log::Recording(r))
        }
        Some(answers) => {
            let s = Arc::new(Scripted {
                answers,
                log: Mutex::new(Vec::new()),
            });
            (Box::new(s.clone()), Log::Scripted(s))
        }
    };
    let mut ctx = Context {
        root: root.to_path_buf(),
        runner,
        config: config(&case.cluster, case.master, case.auth_pass),
        me: case.cluster.node(case.master).unwrap().1.clone(),
        role: Role::Master,
        dry_run: true,
    };
    let step = LoadBalancerStep;
    assert!(step.applies(&ctx), "{}: a master", case.name);
    let mut got = format!("# cluster-lb on {}: {}\n", case.master, case.name);
    let mut previous = 0;
    for run in ["first run", "second run"] {
        let result = step.run(&mut ctx);
        let lines = log.lines();
        got.push_str(&format!("\n## {run}: commands\n"));
        for l in &lines[previous..] {
            got.push_str(&format!("{l}\n"));
        }
        previous = lines.len();
        match result {
            Ok(()) => got.push_str("## result: ok\n"),
            Err(e) => got.push_str(&format!("## result: error: {e:#}\n")),
        }
        got.push_str(&format!("## {run}: files\n{}", tree(root)));
    }
    goldens::golden(&format!("lb-step-{}.txt", case.name), &got);
}

fn with_interface(interface: &str) -> Cluster {
    let mut c = Cluster::default_cluster();
    c.endpoint.interface = Some(interface.into());
    c
}

/// `ip -o -4 addr show` on k8s-master02 (192.168.20.21 on ens3).
const IP_MASTER02: &str = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                           2: ens3    inet 192.168.20.21/24 brd 192.168.20.255 scope global ens3\n";
/// `ip -o -4 addr show` on a machine holding none of the masters' addresses.
const IP_ELSEWHERE: &str =
    "1: lo    inet 127.0.0.1/8 scope host lo\n2: ens3    inet 10.9.9.9/24 scope global ens3\n";

#[test]
fn dry_run_on_a_fresh_root() {
    // The recording runner: every probe "succeeds" with no output, so firewalld counts as running and SELinux
    // as not enforcing; no interface holds the address and the dry run falls back to eth0.
    pin(Case {
        name: "dry-run",
        master: "k8s-master01",
        cluster: Cluster::default_cluster(),
        answers: None,
        present: vec![],
        auth_pass: AUTH_PASS,
    });
}

#[test]
fn selinux_enforcing_and_a_debian_stream_module() {
    // The port is labelled already (semanage -a fails, -m relabels it), firewalld is not running, and only the
    // Debian stream module is installed.
    pin(Case {
        name: "enforcing",
        master: "k8s-master02",
        cluster: Cluster::default_cluster(),
        answers: Some(Answers {
            by_line: BTreeMap::from([
                ("ip -o -4 addr show", (0, IP_MASTER02, "")),
                ("getenforce", (0, "Enforcing\n", "")),
                (
                    "semanage port -a -t http_port_t -p tcp 16443",
                    (1, "", "ValueError: Port tcp/16443 already defined"),
                ),
                ("firewall-cmd --state", (252, "not running\n", "")),
            ]),
            missing: vec![],
        }),
        present: vec!["/usr/lib/nginx/modules/ngx_stream_module.so"],
        auth_pass: AUTH_PASS,
    });
}

#[test]
fn configured_interface_and_no_selinux_or_firewalld_tools() {
    // endpoint.interface set: no `ip` probe; getenforce and firewall-cmd not installed: no SELinux or firewalld
    // commands. Both stream modules present: the EL one wins.
    pin(Case {
        name: "configured-interface",
        master: "k8s-master03",
        cluster: with_interface("bond0"),
        answers: Some(Answers {
            by_line: BTreeMap::new(),
            missing: vec!["getenforce", "firewall-cmd"],
        }),
        present: vec![
            "/usr/lib/nginx/modules/ngx_stream_module.so",
            "/usr/lib64/nginx/modules/ngx_stream_module.so",
        ],
        auth_pass: AUTH_PASS,
    });
}

#[test]
fn enforcing_with_a_new_port_label_and_firewalld_running() {
    pin(Case {
        name: "enforcing-firewalld",
        master: "k8s-master02",
        cluster: Cluster::default_cluster(),
        answers: Some(Answers {
            by_line: BTreeMap::from([
                ("ip -o -4 addr show", (0, IP_MASTER02, "")),
                ("getenforce", (0, "Enforcing\n", "")),
                ("firewall-cmd --state", (0, "running\n", "")),
            ]),
            missing: vec![],
        }),
        present: vec![],
        auth_pass: AUTH_PASS,
    });
}

#[test]
fn no_interface_holds_the_address_on_a_real_node() {
    // Refused before anything is written.
    pin(Case {
        name: "no-interface",
        master: "k8s-master01",
        cluster: Cluster::default_cluster(),
        answers: Some(Answers {
            by_line: BTreeMap::from([("ip -o -4 addr show", (0, IP_ELSEWHERE, ""))]),
            missing: vec![],
        }),
        present: vec![],
        auth_pass: AUTH_PASS,
    });
}

#[test]
fn a_bad_vrrp_password_writes_nothing() {
    pin(Case {
        name: "bad-auth-pass",
        master: "k8s-master01",
        cluster: with_interface("eth1"),
        answers: None,
        present: vec![],
        auth_pass: "far too long",
    });
}

#[test]
fn failures_stop_the_step_with_the_command_line() {
    // nginx rejects its config: the files are written, no service is touched.
    pin(Case {
        name: "nginx-rejects",
        master: "k8s-master01",
        cluster: with_interface("eth1"),
        answers: Some(Answers {
            by_line: BTreeMap::from([(
                "nginx -t -c /etc/nginx/nginx.conf",
                (1, "", "nginx: [emerg] unknown directive \"stream\""),
            )]),
            missing: vec![],
        }),
        present: vec![],
        auth_pass: AUTH_PASS,
    });
    // semanage is not installed on an enforcing node: the error names the command.
    pin(Case {
        name: "no-semanage",
        master: "k8s-master01",
        cluster: with_interface("eth1"),
        answers: Some(Answers {
            by_line: BTreeMap::from([("getenforce", (0, "Enforcing\n", ""))]),
            missing: vec!["semanage"],
        }),
        present: vec![],
        auth_pass: AUTH_PASS,
    });
    // A restart fails: the enable before it ran, keepalived is not touched.
    pin(Case {
        name: "restart-fails",
        master: "k8s-master01",
        cluster: with_interface("eth1"),
        answers: Some(Answers {
            by_line: BTreeMap::from([(
                "systemctl restart nginx",
                (1, "", "Job for nginx.service failed"),
            )]),
            missing: vec![],
        }),
        present: vec![],
        auth_pass: AUTH_PASS,
    });
}

/// A worker has no load balancer.
#[test]
fn not_on_a_worker() {
    let c = Cluster::default_cluster();
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context {
        root: dir.path().to_path_buf(),
        runner: Box::new(RecordingRunner::default()),
        config: worker_config(&c, "k8s-node01"),
        me: c.workers[0].clone(),
        role: Role::Worker,
        dry_run: true,
    };
    assert!(!LoadBalancerStep.applies(&ctx));
}
