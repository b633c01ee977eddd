//! The lab's adapters (kubeha-lab as `systemctl`, systemd's stand-in, and the tools that would change the host,
//! `kubeha_lab::demo::adapters`), run as the agent runs them: through links named for the tools. Each must refuse
//! what kubeha-firstboot or kubeadm would never send, naming the problem, and accept the agent's own calls. No
//! network, no daemons. The full run with the real Kubernetes is `kubeha-lab demo` (make demo, make test-demo).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A node root and STATE in a scratch directory, with STATE/bin holding the adapters (links to kubeha-lab).
struct Node {
    t: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for n in kubeha_lab::demo::adapters::NAMES {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kubeha-lab"), bin.join(n)).unwrap();
        }
        std::fs::create_dir_all(t.path().join("root/etc/kubeha")).unwrap();
        std::fs::create_dir_all(t.path().join("run")).unwrap();
        Node { t }
    }

    fn root(&self) -> PathBuf {
        self.t.path().join("root")
    }

    fn put(&self, path: &str, text: &str) {
        let p = self.root().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let s = self.t.path();
        Command::new(s.join("bin").join(tool))
            .args(args)
            .env("KHD_ROOT", self.root())
            .env("KHD_NODE", "k8s-master01")
            .env("KHD_IP", "192.168.20.20")
            .env("KHD_STATE", s)
            .env("KHD_RUN", s.join("run"))
            .env("KHD_ENDPOINT", "192.168.20.10:16443")
            .env("KHD_K8S", "1.31.4")
            .env("KHD_MASTERS", "k8s-master01=192.168.20.20")
            .env_remove("KHD_NODE_UTS")
            .output()
            .unwrap()
    }

    /// TOOL ARGS exits non-zero with PATTERN in its stderr.
    fn fails(&self, tool: &str, args: &[&str], pattern: &str) -> Output {
        let o = self.run(tool, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{tool} {args:?} succeeded: {o:?}");
        assert!(
            err.contains(pattern),
            "{tool} {args:?}: no {pattern:?} in {err:?}"
        );
        o
    }

    fn ok(&self, tool: &str, args: &[&str]) -> Output {
        let o = self.run(tool, args);
        assert!(o.status.success(), "{tool} {args:?}: {o:?}");
        o
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.root().join("var/log/kubeha-demo/calls.log"))
            .unwrap_or_default()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn systemctl_unknown_units_are_not_found() {
    let n = Node::new();
    n.fails(
        "systemctl",
        &["start", "sshd"],
        "demo adapter systemctl on k8s-master01: unit sshd is not part of the lab",
    );
    let o = n.run("systemctl", &["status", "sshd"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stdout(&o), "Unit sshd.service could not be found.\n");
    let o = n.run("systemctl", &["is-active", "systemd-resolved"]);
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(3), "inactive\n".into())
    );
    let o = n.run("systemctl", &["is-enabled", "systemd-resolved.service"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Failed to get unit file state for systemd-resolved.service: No such file or directory\n"
    );
}

#[test]
fn systemctl_units() {
    let n = Node::new();
    n.ok("systemctl", &["daemon-reload"]);
    n.fails(
        "systemctl",
        &["start", "kubelet", "containerd"],
        "expected one unit, got: kubelet containerd",
    );
    n.fails(
        "systemctl",
        &["frob", "kubelet"],
        "unsupported: systemctl frob kubelet",
    );
    if !Path::new("/var/lib/kubelet/config.yaml").exists() {
        n.fails("systemctl", &["start", "kubelet"], "config.yaml missing");
    }
    n.fails(
        "systemctl",
        &["start", "containerd"],
        "containerd: /etc/containerd/config.toml missing",
    );
    n.put("/etc/containerd/config.toml", "version = 2\n");
    n.fails(
        "systemctl",
        &["start", "containerd"],
        "does not set SystemdCgroup = true",
    );
    n.fails(
        "systemctl",
        &["start", "nginx"],
        "/etc/nginx/nginx.conf is missing in the node root",
    );
    n.fails(
        "systemctl",
        &["start", "keepalived"],
        "keepalived.conf or check_apiserver.sh missing",
    );
    n.ok("systemctl", &["enable", "kubelet"]);
    let o = n.ok("systemctl", &["is-enabled", "kubelet"]);
    assert_eq!(stdout(&o), "enabled\n");
    let link = n
        .root()
        .join("etc/systemd/system/multi-user.target.wants/kubelet.service");
    assert_eq!(
        std::fs::read_link(link).unwrap(),
        Path::new("/usr/lib/systemd/system/kubelet.service")
    );
    let o = n.run("systemctl", &["status", "kubelet.service"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stdout(&o),
        "* kubelet.service\n     Loaded: loaded (/usr/lib/systemd/system/kubelet.service; enabled)\n     Active: inactive (dead)\n"
    );
    let o = n.run("systemctl", &["is-enabled", "containerd"]);
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(1), "disabled\n".into())
    );
    // chronyd: recorded only.
    n.ok("systemctl", &["enable", "--now", "chronyd"]);
    n.ok("systemctl", &["restart", "chronyd"]);
    n.ok("systemctl", &["stop", "nginx"]);
}

/// A daemon that died is a zombie until its parent (for the orphaned daemons: PID 1, which on some machines reaps
/// only every few seconds) reaps it: systemctl must call the unit dead, not active (a power-cycled master once came
/// back without its daemons). The zombie: a child of this test that exited and is not waited for.
#[test]
fn systemctl_a_zombie_daemon_is_not_active() {
    let n = Node::new();
    let pidfile = n.root().join("run/kubeha-demo/containerd.pid");
    std::fs::create_dir_all(pidfile.parent().unwrap()).unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let zpid = child.id();
    let state = || {
        std::fs::read_to_string(format!("/proc/{zpid}/stat"))
            .ok()
            .and_then(|s| s[s.rfind(") ")? + 2..].chars().next())
    };
    for _ in 0..100 {
        if state() == Some('Z') {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(state(), Some('Z'), "no zombie to test with");
    std::fs::write(&pidfile, format!("{zpid}\n")).unwrap();
    let o = n.run("systemctl", &["is-active", "containerd"]);
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(3), "inactive\n".into())
    );
    let o = n.run("systemctl", &["status", "containerd"]);
    assert!(stdout(&o).contains("Active: inactive (dead)"), "{o:?}");
    child.wait().unwrap();
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
    let o = n.ok("systemctl", &["is-active", "containerd"]);
    assert_eq!(stdout(&o), "active\n");
}

#[test]
fn host_tools_refuse_what_the_agent_never_sends() {
    let n = Node::new();
    n.fails(
        "nginx",
        &["-s", "reload"],
        "expected 'nginx -t -c /etc/nginx/nginx.conf', got: -s reload",
    );
    n.fails("hostname", &["k8s-master02"], "this node is k8s-master01");
    n.fails("hostname", &["-bad"], "not a valid hostname: -bad");
    n.fails("hostname", &["k8s-master01"], "refusing to rename the host");
    assert_eq!(
        std::fs::read_to_string(n.root().join("run/kubeha-demo/hostname")).unwrap(),
        "k8s-master01\n"
    );
    assert_eq!(stdout(&n.ok("hostname", &[])), "k8s-master01\n");
    n.put("/etc/fstab", "/dev/mapper/rl-swap none swap defaults 0 0\n");
    n.fails("swapoff", &["-a"], "active swap line");
    n.put(
        "/etc/fstab",
        "#/dev/mapper/rl-swap none swap defaults 0 0\n",
    );
    n.ok("swapoff", &["-a"]);
    n.fails(
        "modprobe",
        &["aufs"],
        "aufs is not in /etc/modules-load.d/kubeha.conf",
    );
    n.fails("firewall-cmd", &["--reload"], "unexpected call");
    let o = n.run("firewall-cmd", &["--state"]);
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(252), "not running\n".into())
    );
    n.fails(
        "dnf",
        &["remove", "x"],
        "only 'install' is expected, got: remove x",
    );
    n.fails("sysctl", &["-a"], "expected 'sysctl --system'");
    n.put("/etc/sysctl.d/k.conf", "foo.bar = 1\n");
    n.fails("sysctl", &["--system"], "k.conf: unknown sysctl foo.bar");
}

#[test]
fn selinux_and_sysctl_records() {
    let n = Node::new();
    assert_eq!(stdout(&n.ok("getenforce", &[])), "Enforcing\n");
    n.put("/etc/selinux/config", "SELINUX=enforcing\n");
    n.fails(
        "setenforce",
        &["0"],
        "not set to permissive before setenforce",
    );
    n.put("/etc/selinux/config", "SELINUX=permissive\n");
    n.ok("setenforce", &["0"]);
    assert_eq!(stdout(&n.ok("getenforce", &[])), "Permissive\n");
    n.fails("setenforce", &["2"], "usage: setenforce 0|1 (got: 2)");
    n.put(
        "/etc/sysctl.d/k.conf",
        "# c\n\nvm.swappiness = 0\n;x\nkernel.pid_max=4194304\n",
    );
    n.ok("sysctl", &["--system"]);
    assert_eq!(
        std::fs::read_to_string(n.root().join("run/kubeha-demo/sysctl")).unwrap(),
        "vm.swappiness = 0\nkernel.pid_max = 4194304\n"
    );
}

#[test]
fn nginx_config_for_this_host() {
    let n = Node::new();
    n.put(
        "/etc/nginx/nginx.conf",
        "user nginx;\nworker_processes auto;\nerror_log /var/log/nginx/error.log notice;\npid /run/nginx.pid;\nload_module /usr/lib64/nginx/modules/ngx_stream_module.so;\nevents {}\n",
    );
    let o = n.run("nginx", &["-t", "-c", "/etc/nginx/nginx.conf"]);
    let r = n.root().display().to_string();
    assert_eq!(
        std::fs::read_to_string(n.root().join("run/kubeha-demo/nginx/nginx.conf")).unwrap(),
        format!("worker_processes 1;\nerror_log {r}/var/log/nginx/error.log notice;\npid {r}/run/nginx.pid;\nload_module /usr/lib/nginx/modules/ngx_stream_module.so;\nevents {{}}\n")
    );
    if !Path::new("/usr/sbin/nginx").exists() {
        assert!(!o.status.success());
    }
    n.put("/etc/nginx/nginx.conf", "events {}\n");
    n.fails(
        "nginx",
        &["-t", "-c", "/etc/nginx/nginx.conf"],
        "nginx.conf loads no stream module",
    );
}

#[test]
fn firewall_offline_cmd_on_the_node_root() {
    if !Path::new("/usr/bin/firewall-offline-cmd").exists() {
        eprintln!("no firewall-offline-cmd: skipped");
        return;
    }
    let n = Node::new();
    n.put("/etc/firewalld/firewalld.conf", "DefaultZone=public\n");
    n.ok(
        "firewall-offline-cmd",
        &["--zone=public", "--add-port=6443/tcp"],
    );
    let zone = std::fs::read_to_string(n.root().join("etc/firewalld/zones/public.xml")).unwrap();
    assert!(zone.contains("port=\"6443\""), "{zone}");
    assert!(!Path::new("/etc/firewalld/zones/public.xml.khd").exists());
}

#[test]
fn every_call_is_recorded() {
    let n = Node::new();
    n.run("systemctl", &["daemon-reload"]);
    n.run("getenforce", &[]);
    n.run("swapoff", &["-a", "b"]);
    n.run("modprobe", &["overlay"]);
    assert_eq!(
        n.calls(),
        "systemctl daemon-reload\ngetenforce \nswapoff -a b\nmodprobe overlay\n"
    );
    let o = Command::new(n.t.path().join("bin/getenforce"))
        .env_remove("KHD_ROOT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no KHD_ROOT"));
}
