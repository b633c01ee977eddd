//! STAND-IN for systemd's systemctl (systemd cannot be PID 1 in a lab node: each node is a network + mount namespace
//! on one host, see kubeha-lab node-boot, [`crate::demo::boot`]). Units are the node's, never the host's:
//! enable/is-enabled keep the node's wants links under its root; start/restart run the REAL daemon (containerd with
//! its CRI plugin, nginx, keepalived, the REAL kubelet) in the node's namespaces with the config the agent or kubeadm
//! wrote, the way the units' ExecStart lines would. kubeadm calls it too (daemon-reload, status, is-active, restart
//! kubelet). Unknown units are "not-found".

use super::common::{nginx_demo_conf, nginx_flags, Ad, Fail, Res};
use std::path::{Path, PathBuf};
use std::time::Duration;

const UNITS: &[&str] = &["containerd", "nginx", "keepalived", "kubelet", "chronyd"];

/// The kubelet unit's Restart=always: a bash loop (a session of its own, stopped whole by stop_daemon).
const KUBELET_LOOP: &str =
    r#"while :; do "$@"; echo "kubelet exited ($?); restarting in 1 s"; sleep 1; done"#;

fn read(ad: &Ad, p: &Path) -> Result<String, Fail> {
    std::fs::read_to_string(p).map_err(|e| ad.fail(format!("{}: {e}", p.display())))
}

fn write(ad: &Ad, p: &Path, text: &str) -> Result<(), Fail> {
    std::fs::write(p, text).map_err(|e| ad.fail(format!("{}: {e}", p.display())))
}

/// CAP_SYS_RESOURCE (bit 24) in this process's CapEff.
fn cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|c| (c >> 24) & 1 == 1)
}

/// The node's containerd config.toml with what must differ in the lab changed: no systemd cgroup driver (systemd is
/// not PID 1; the kubelet uses cgroupfs, see the kubeadm patches the lab places) and, without CAP_SYS_RESOURCE,
/// `restrict_oom_score_adj = true` in the CRI plugin's table (runc would fail on the kubelet's -998 for pod sandboxes).
fn containerd_conf(text: &str, restrict: bool) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let line = line.replacen("SystemdCgroup = true", "SystemdCgroup = false", 1);
        let body = line.strip_suffix('\n').unwrap_or(&line);
        if body == r#"[plugins."io.containerd.grpc.v1.cri"]"# {
            out.push_str(body);
            out.push_str(&format!("\n  restrict_oom_score_adj = {restrict}"));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(&line);
        }
    }
    out
}

/// The value of VAR in an environment file (`VAR="..."`, the last assignment; what `. FILE; echo "${VAR:-}"` prints
/// for kubeadm's and sysconfig's files).
fn env_file_var(text: &str, var: &str) -> String {
    let mut v = String::new();
    for line in text.lines() {
        if let Some(val) = line
            .trim()
            .strip_prefix(var)
            .and_then(|x| x.strip_prefix('='))
        {
            v = val
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| val.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(val)
                .to_string();
        }
    }
    v
}

/// `command -v NAME`: the first executable NAME on PATH, or "".
fn which(name: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn start_unit(ad: &Ad, u: &str) -> Result<(), Fail> {
    match u {
        "containerd" => {
            let conf = ad.rootp("/etc/containerd/config.toml");
            if !conf.is_file() {
                return Err(ad.fail("containerd: /etc/containerd/config.toml missing"));
            }
            let text = read(ad, &conf)?;
            if !text.split('\n').any(|l| l.starts_with("version = 2")) {
                return Err(ad.fail("containerd: config.toml is not version 2"));
            }
            if !text.contains("SystemdCgroup = true") {
                return Err(ad.fail(
                    "containerd: config.toml does not set SystemdCgroup = true (EL nodes boot systemd)",
                ));
            }
            let restrict = !cap_sys_resource();
            let dc = ad.pids.join("containerd.toml");
            let out = containerd_conf(&text, restrict);
            write(ad, &dc, &out)?;
            if !out.contains(&format!("restrict_oom_score_adj = {restrict}")) {
                return Err(ad.fail(
                    r#"containerd: no [plugins."io.containerd.grpc.v1.cri"] table in config.toml"#,
                ));
            }
            ad.start_daemon(
                "containerd",
                "/usr/bin/containerd",
                &["-c".into(), dc.display().to_string()],
            )?;
            for _ in 0..100 {
                use std::os::unix::fs::FileTypeExt as _;
                if std::fs::metadata("/run/containerd/containerd.sock")
                    .is_ok_and(|m| m.file_type().is_socket())
                {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(ad.fail(format!(
                "containerd did not open its socket in 10 s (see {}/containerd.log)",
                ad.log.display()
            )))
        }
        "nginx" => {
            let conf = nginx_demo_conf(ad)?;
            let mut args = nginx_flags(ad);
            args.extend([
                "-c".into(),
                conf.display().to_string(),
                "-g".into(),
                "daemon off;".into(),
            ]);
            ad.start_daemon("nginx", "/usr/sbin/nginx", &args)
        }
        "keepalived" => {
            let conf = ad.rootp("/etc/keepalived/keepalived.conf");
            let script = ad.rootp("/usr/libexec/keepalived/check_apiserver.sh");
            if !conf.is_file() || !script.is_file() {
                return Err(ad.fail("keepalived: keepalived.conf or check_apiserver.sh missing"));
            }
            // keepalived's enable_script_security refuses scripts in paths writable by others: the check script
            // (its system paths pointed at the node root) goes to KHD_RUN under /run, root-only.
            let ds = format!(
                "{}/{}.check_apiserver.sh",
                ad.env("KHD_RUN")?,
                ad.env("KHD_NODE")?
            );
            let dc = ad.rootp("/run/kubeha-demo/keepalived.conf");
            let mut s = String::new();
            for line in read(ad, &script)?.split_inclusive('\n') {
                match [("CA=/", "CA="), ("MANIFEST=/", "MANIFEST=")]
                    .iter()
                    .find(|(p, _)| line.starts_with(p))
                {
                    Some((p, k)) => s.push_str(&format!("{k}{}/{}", ad.root, &line[p.len()..])),
                    None => s.push_str(line),
                }
            }
            write(ad, Path::new(&ds), &s)?;
            std::fs::set_permissions(&ds, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(|e| ad.fail(format!("{ds}: {e}")))?;
            let c: String = read(ad, &conf)?
                .split_inclusive('\n')
                .map(|l| l.replacen("/usr/libexec/keepalived/check_apiserver.sh", &ds, 1))
                .collect();
            write(ad, &dc, &c)?;
            let dcs = dc.display().to_string();
            let ok = std::process::Command::new("/usr/sbin/keepalived")
                .args(["-t", "-f", &dcs])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let out = std::process::Command::new("sh")
                    .args([
                        "-c",
                        r#"/usr/sbin/keepalived -t -f "$1" 2>&1 | tail -3"#,
                        "sh",
                        &dcs,
                    ])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                return Err(ad.fail(format!(
                    "keepalived -t rejects the config: {}",
                    out.trim_end_matches('\n')
                )));
            }
            let pid = |n: &str| ad.pids.join(n).display().to_string();
            ad.start_daemon(
                "keepalived",
                "/usr/sbin/keepalived",
                &[
                    "-n".into(),
                    "-l".into(),
                    "-D".into(),
                    "-f".into(),
                    dcs,
                    "-p".into(),
                    pid("ka-main.pid"),
                    "-r".into(),
                    pid("ka-vrrp.pid"),
                    "-c".into(),
                    pid("ka-checkers.pid"),
                ],
            )
        }
        "kubelet" => {
            // The REAL kubelet with the command line of kubeadm's systemd drop-in (10-kubeadm.conf in the
            // kubelet/kubeadm packages): KUBELET_KUBECONFIG_ARGS, KUBELET_CONFIG_ARGS, then $KUBELET_KUBEADM_ARGS from
            // kubeadm-flags.env and $KUBELET_EXTRA_ARGS from /etc/sysconfig/kubelet. Like the unit's Restart=always,
            // it is restarted if it exits.
            if !Path::new("/var/lib/kubelet/config.yaml").is_file() {
                return Err(
                    ad.fail("kubelet: /var/lib/kubelet/config.yaml missing (kubeadm writes it)")
                );
            }
            let var = |p: PathBuf, v: &str| {
                if p.is_file() {
                    env_file_var(&std::fs::read_to_string(&p).unwrap_or_default(), v)
                } else {
                    String::new()
                }
            };
            let kubeadm_args = var(
                "/var/lib/kubelet/kubeadm-flags.env".into(),
                "KUBELET_KUBEADM_ARGS",
            );
            let extra_args = var(ad.rootp("/etc/sysconfig/kubelet"), "KUBELET_EXTRA_ARGS");
            let mut args: Vec<String> = vec![
                "-c".into(),
                KUBELET_LOOP.into(),
                "kubelet".into(),
                which("kubelet"),
                "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf".into(),
                "--kubeconfig=/etc/kubernetes/kubelet.conf".into(),
                "--config=/var/lib/kubelet/config.yaml".into(),
            ];
            args.extend(kubeadm_args.split_whitespace().map(String::from));
            args.extend(extra_args.split_whitespace().map(String::from));
            ad.start_daemon("kubelet", "bash", &args)
        }
        // No time sync in the demo: recorded only.
        "chronyd" => Ok(()),
        _ => Err(ad.fail(format!("unit {u} is not part of the demo"))),
    }
}

/// TCP to ADDR answers within 0.5 s.
fn answers(ip: &str, port: u16) -> bool {
    format!("{ip}:{port}")
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// NODE.kubeadm-killed: what the node looked like when the drill killed kubeadm (one line, for result.json).
fn drill_json(verb: &str, manifest: bool, etcd: bool, bootstrap: bool, kubelet: bool) -> String {
    format!(
        "{{\"verb\": \"{verb}\", \"etcd_manifest\": {manifest}, \"etcd_answered\": {etcd}, \"bootstrap_kubelet_conf\": {bootstrap}, \"kubelet_conf\": {kubelet}}}\n"
    )
}

/// The demo's drill of a kubeadm killed INSIDE a phase, without a race: when the lab has armed
/// STATE/drills/NODE.kill-kubeadm (holding the verb, init or join), the `systemctl restart kubelet` of kubeadm's
/// kubelet-start phase, called by that `kubeadm VERB` (our parent: kubeadm execs systemctl), SIGKILLs its caller right
/// after starting the kubelet, once. kubeadm init is then past its certs, kubeconfigs, etcd and control-plane
/// manifests, and etcd does not answer yet (the kubelet has only just started); kubeadm join (a worker) has written
/// bootstrap-kubelet.conf and the kubelet's TLS bootstrap is pending. What the node looked like is written to
/// NODE.kubeadm-killed (JSON) for result.json.
fn kill_kubeadm_drill(ad: &Ad) -> Result<(), Fail> {
    let (state, node) = (ad.env("KHD_STATE")?, ad.env("KHD_NODE")?);
    let arm = PathBuf::from(format!("{state}/drills/{node}.kill-kubeadm"));
    if !arm.is_file() {
        return Ok(());
    }
    let verb = std::fs::read_to_string(&arm).unwrap_or_default();
    let verb = verb.trim_end_matches('\n');
    let ppid = nix::unistd::getppid();
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    if comm.trim_end_matches('\n') != "kubeadm" {
        return Ok(());
    }
    let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if !cmdline.contains(&format!(" {verb} ")) {
        return Ok(());
    }
    let _ = std::fs::remove_file(&arm);
    let etcd = answers(&std::env::var("KHD_IP").unwrap_or_default(), 2379);
    let _ = nix::sys::signal::kill(ppid, nix::sys::signal::Signal::SIGKILL);
    let e = |p: &str| Path::new(p).exists();
    let json = drill_json(
        verb,
        e("/etc/kubernetes/manifests/etcd.yaml"),
        etcd,
        e("/etc/kubernetes/bootstrap-kubelet.conf"),
        e("/etc/kubernetes/kubelet.conf"),
    );
    write(
        ad,
        Path::new(&format!("{state}/drills/{node}.kubeadm-killed")),
        &json,
    )
}

pub(super) fn systemctl(ad: &Ad) -> Res {
    let cmd = ad.arg(0);
    if cmd == "daemon-reload" {
        return Ok(0);
    }
    let mut rest: &[String] = ad.args.get(1..).unwrap_or(&[]);
    let now = rest.first().is_some_and(|a| a == "--now");
    if now {
        rest = &rest[1..];
    }
    if rest.len() != 1 {
        return Err(ad.fail(format!("expected one unit, got: {}", rest.join(" "))));
    }
    let u = rest[0].strip_suffix(".service").unwrap_or(&rest[0]);
    if !UNITS.contains(&u) {
        // What systemctl answers for a unit that is not installed (kubeadm asks about e.g. systemd-resolved).
        return match cmd {
            "status" => {
                println!("Unit {u}.service could not be found.");
                Ok(4)
            }
            "is-active" => {
                println!("inactive");
                Ok(3)
            }
            "is-enabled" => {
                eprintln!(
                    "Failed to get unit file state for {u}.service: No such file or directory"
                );
                Ok(1)
            }
            _ => Err(ad.fail(format!("unit {u} is not part of the lab"))),
        };
    }
    let wants = ad.rootp("/etc/systemd/system/multi-user.target.wants");
    let link = wants.join(format!("{u}.service"));
    let enabled = link.symlink_metadata().is_ok_and(|m| m.is_symlink());
    match cmd {
        "status" => {
            println!("* {u}.service");
            println!(
                "     Loaded: loaded (/usr/lib/systemd/system/{u}.service; {})",
                if enabled { "enabled" } else { "disabled" }
            );
            if ad.daemon_alive(u) {
                println!("     Active: active (running)");
                return Ok(0);
            }
            println!("     Active: inactive (dead)");
            Ok(3)
        }
        "is-enabled" => {
            println!("{}", if enabled { "enabled" } else { "disabled" });
            Ok(if enabled { 0 } else { 1 })
        }
        "enable" => {
            std::fs::create_dir_all(&wants)
                .map_err(|e| ad.fail(format!("{}: {e}", wants.display())))?;
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("/usr/lib/systemd/system/{u}.service"), &link)
                .map_err(|e| ad.fail(format!("{}: {e}", link.display())))?;
            if now && !ad.daemon_alive(u) {
                start_unit(ad, u)?;
            }
            Ok(0)
        }
        "is-active" => {
            if ad.daemon_alive(u) {
                println!("active");
                return Ok(0);
            }
            println!("inactive");
            Ok(3)
        }
        "start" => {
            if !ad.daemon_alive(u) {
                start_unit(ad, u)?;
            }
            Ok(0)
        }
        "restart" => {
            ad.stop_daemon(u);
            start_unit(ad, u)?;
            if u == "kubelet" {
                kill_kubeadm_drill(ad)?;
            }
            Ok(0)
        }
        "stop" => {
            ad.stop_daemon(u);
            Ok(0)
        }
        _ => Err(ad.fail(format!("unsupported: systemctl {cmd} {}", rest.join(" ")))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn containerd_conf_as_the_sed() {
        let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  x = 1\n    SystemdCgroup = true\n";
        assert_eq!(
            super::containerd_conf(text, true),
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n  x = 1\n    SystemdCgroup = false\n"
        );
        // No trailing newline: none added (GNU sed keeps the last line as it is).
        assert_eq!(
            super::containerd_conf("[plugins.\"io.containerd.grpc.v1.cri\"]", false),
            "[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = false"
        );
    }

    #[test]
    fn drill_json_as_the_printf() {
        assert_eq!(
            super::drill_json("init", true, false, false, true),
            "{\"verb\": \"init\", \"etcd_manifest\": true, \"etcd_answered\": false, \"bootstrap_kubelet_conf\": false, \"kubelet_conf\": true}\n"
        );
    }

    #[test]
    fn env_file() {
        let t = "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --node-ip=1.2.3.4\"\n";
        assert_eq!(
            super::env_file_var(t, "KUBELET_KUBEADM_ARGS"),
            "--container-runtime-endpoint=unix:///run/containerd/containerd.sock --node-ip=1.2.3.4"
        );
        assert_eq!(
            super::env_file_var("KUBELET_EXTRA_ARGS=\n", "KUBELET_EXTRA_ARGS"),
            ""
        );
    }
}
