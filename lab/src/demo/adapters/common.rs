//! What the adapters share (what the bash `_common.sh` and `_nginx.sh` held before them): the call ([`Ad`]: environment, `record`,
//! `fail`, `rootp`), the daemons of the systemctl stand-in (start, alive, stop by pid and session), and nginx's
//! config for this host.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What ends an adapter early: the line for stderr (exit 1).
pub(crate) type Fail = String;
/// An adapter's exit code, or its failure.
pub(crate) type Res = Result<i32, Fail>;

/// One adapter call: its tool name, arguments and the node's environment.
pub(crate) struct Ad {
    pub tool: String,
    pub args: Vec<String>,
    pub root: String,
    /// ROOT/var/log/kubeha-demo.
    pub log: PathBuf,
    /// ROOT/run/kubeha-demo.
    pub pids: PathBuf,
}

impl Ad {
    /// `demo adapter <tool> on <node>: <msg>` (the caller prints it to stderr and exits 1).
    pub fn fail(&self, msg: impl std::fmt::Display) -> Fail {
        let node = std::env::var("KHD_NODE").ok().filter(|n| !n.is_empty());
        format!(
            "demo adapter {} on {}: {msg}",
            self.tool,
            node.as_deref().unwrap_or("?")
        )
    }

    /// A variable the bash read under `set -u`: unset is an error.
    pub fn env(&self, name: &str) -> Result<String, Fail> {
        std::env::var(name).map_err(|_| format!("{}: {name}: unbound variable", self.tool))
    }

    /// A system path inside the node root.
    pub fn rootp(&self, p: &str) -> PathBuf {
        PathBuf::from(format!("{}{p}", self.root))
    }

    /// The arguments joined by a space (the shell's `$*`).
    pub fn all(&self) -> String {
        self.args.join(" ")
    }

    /// The argument N (0-based) or "" (the shell's `${1:-}`).
    pub fn arg(&self, n: usize) -> &str {
        self.args.get(n).map_or("", String::as_str)
    }

    pub(crate) fn record(&self) -> Result<(), Fail> {
        let line = format!("{} {}\n", self.tool, self.all());
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log.join("calls.log"))
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| format!("{}: calls.log: {e}", self.tool))
    }

    /// Replaces this process with PROGRAM ARGS (the shell's `exec`).
    pub fn exec(&self, program: &str, args: &[String]) -> Fail {
        let e = Command::new(program).args(args).exec();
        format!("{}: {program}: {e}", self.tool)
    }

    /// Starts CMD detached (own session, stdin /dev/null, stdout and stderr appended to LOG/NAME.log, never the
    /// agent's pipes; SIGINT and SIGQUIT ignored, as for a shell's `&`), records its pid for this node (stop by pid:
    /// PIDS/NAME.pid) and for the run's cleanup (`PID NODE:NAME` in STATE/pids). The adapter exits without waiting:
    /// the daemon is an orphan, reparented.
    pub fn start_daemon(&self, name: &str, program: &str, args: &[String]) -> Result<(), Fail> {
        let node = self.env("KHD_NODE")?;
        let state = self.env("KHD_STATE")?;
        let logp = self.log.join(format!("{name}.log"));
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logp)
            .map_err(|e| format!("{}: {}: {e}", self.tool, logp.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {}: {e}", self.tool, logp.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: only async-signal-safe calls (setsid, sigaction) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                use nix::sys::signal::{signal, SigHandler, Signal};
                let _ = signal(Signal::SIGINT, SigHandler::SigIgn);
                let _ = signal(Signal::SIGQUIT, SigHandler::SigIgn);
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let pid = match cmd.spawn() {
            Ok(child) => child.id(),
            Err(e) => {
                // What setsid(1) writes to the log when the program cannot run; like the shell's `&` job, the start
                // itself goes on (the unit is then not active: no pid file).
                let why = e.raw_os_error().map_or_else(
                    || e.to_string(),
                    |n| nix::errno::Errno::from_raw(n).desc().to_string(),
                );
                let _ = OpenOptions::new()
                    .append(true)
                    .open(&logp)
                    .and_then(|mut f| writeln!(f, "setsid: failed to execute {program}: {why}"));
                return Ok(());
            }
        };
        std::fs::write(self.pids.join(format!("{name}.pid")), format!("{pid}\n"))
            .map_err(|e| format!("{}: {name}.pid: {e}", self.tool))?;
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&state).join("pids"))
            .and_then(|mut f| writeln!(f, "{pid} {node}:{name}"))
            .map_err(|e| format!("{}: {state}/pids: {e}", self.tool))?;
        Ok(())
    }

    /// The daemon's pid file names a process that runs.
    pub fn daemon_alive(&self, name: &str) -> bool {
        let f = self.pids.join(format!("{name}.pid"));
        f.is_file() && read_pid(&f).is_some_and(pid_running)
    }

    /// Stops the daemon and everything it started (like systemd's KillMode=control-group: the kubelet's restart
    /// loop is a bash whose kubelet child would outlive it): SIGTERM to its pid and its session (start_daemon made
    /// it a session leader; never our own session), up to 5 s for them to end, SIGKILL, the pid file removed.
    pub fn stop_daemon(&self, name: &str) {
        use nix::sys::signal::Signal;
        let f = self.pids.join(format!("{name}.pid"));
        if !f.exists() {
            return;
        }
        let pid = read_pid(&f);
        let sid = pid
            .and_then(|p| nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(p))).ok())
            .filter(|s| nix::unistd::getsid(None).ok() != Some(*s))
            .map(nix::unistd::Pid::as_raw);
        let signal = |sig: Signal| {
            if let Some(p) = pid {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
            }
            if let Some(s) = sid {
                for q in session(s) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(q.0), sig);
                }
            }
        };
        signal(Signal::SIGTERM);
        let alive = || {
            pid.is_some_and(pid_running)
                || sid.is_some_and(|s| {
                    session(s)
                        .iter()
                        .any(|(_, st)| matches!(st, 'R' | 'S' | 'D' | 'T' | 't' | 'I'))
                })
        };
        for _ in 0..50 {
            if !alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        signal(Signal::SIGKILL);
        let _ = std::fs::remove_file(&f);
    }
}

/// A pid file's pid (a positive number).
fn read_pid(f: &Path) -> Option<i32> {
    let s = std::fs::read_to_string(f).ok()?;
    s.trim_end_matches('\n').parse().ok().filter(|p| *p > 0)
}

/// The state letter and the session of /proc/PID/stat (after the last ") ", past the command name).
fn stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(") ")? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let state = f
        .first()?
        .chars()
        .next()
        .filter(char::is_ascii_alphabetic)?;
    Some((state, f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0)))
}

/// The process exists and is not a zombie. The daemons are orphans (the adapter exits), and a zombie stays until
/// PID 1 reaps it (some machines' do so only every few seconds): a bare `kill -0` would call a dead daemon running,
/// and `systemctl start` would not start it again (systemd knows its own children).
pub fn pid_running(pid: i32) -> bool {
    stat(pid).is_some_and(|(s, _)| s != 'Z')
}

/// The processes of session SID (pid, state), but this one (like pkill/pgrep -s).
fn session(sid: i32) -> Vec<(i32, char)> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .filter_map(|p| stat(p).filter(|(_, s)| *s == sid).map(|(st, _)| (p, st)))
        .collect()
}

/// A file grep reads: its text, or "" after grep's complaint on stderr (`grep: PATH: No such file or directory`).
pub(crate) fn grep_read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| {
        let why = e.raw_os_error().map_or_else(
            || e.to_string(),
            |n| nix::errno::Errno::from_raw(n).desc().to_string(),
        );
        eprintln!("grep: {}: {why}", p.display());
        String::new()
    })
}

/// Lines of a file as the shell's `while IFS= read -r l` reads them: only those ended by a newline.
pub(crate) fn read_lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.split('\n').collect();
    v.pop();
    v
}

/// Files of DIR whose name ends with SUFFIX, sorted (a shell glob `DIR/*SUFFIX`; none: the pattern itself).
pub(crate) fn glob(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = crate::demo::files_ending(dir, suffix)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    if v.is_empty() {
        v.push(dir.join(format!("*{suffix}")));
    }
    v
}

/// The node's /etc/nginx/nginx.conf as written by the agent, with only what must differ on this Debian host
/// changed: Debian's stream module path, no `user nginx;` (Debian has no nginx user), pid and error log under the
/// node root, one worker process (2 shared cores). The path of the adjusted copy.
pub(crate) fn nginx_demo_conf(ad: &Ad) -> Result<PathBuf, Fail> {
    let src = ad.rootp("/etc/nginx/nginx.conf");
    if !src.is_file() {
        return Err(ad.fail("/etc/nginx/nginx.conf is missing in the node root"));
    }
    for d in ["/run/kubeha-demo/nginx/logs", "/var/log/nginx"] {
        let _ = std::fs::create_dir_all(ad.rootp(d));
    }
    let out = ad.rootp("/run/kubeha-demo/nginx/nginx.conf");
    let text = std::fs::read_to_string(&src).map_err(|e| ad.fail(format!("nginx.conf: {e}")))?;
    let root = &ad.root;
    let mut conf = String::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with("user ") {
            continue;
        }
        let subs: [(&str, String); 4] = [
            (
                "load_module /usr/lib64/nginx/modules/ngx_stream_module.so;",
                "load_module /usr/lib/nginx/modules/ngx_stream_module.so;".into(),
            ),
            ("pid /run/nginx.pid;", format!("pid {root}/run/nginx.pid;")),
            (
                "error_log /var/log/nginx/",
                format!("error_log {root}/var/log/nginx/"),
            ),
            ("worker_processes auto;", "worker_processes 1;".into()),
        ];
        match subs.iter().find(|(from, _)| line.starts_with(from)) {
            Some((from, to)) => {
                conf.push_str(to);
                conf.push_str(&line[from.len()..]);
            }
            None => conf.push_str(line),
        }
    }
    std::fs::write(&out, &conf).map_err(|e| ad.fail(format!("{}: {e}", out.display())))?;
    if !conf.contains("ngx_stream_module") {
        return Err(ad.fail("nginx.conf loads no stream module"));
    }
    Ok(out)
}

/// nginx's prefix and error log for the node (`-p ... -e ...`).
pub(crate) fn nginx_flags(ad: &Ad) -> Vec<String> {
    vec![
        "-p".into(),
        format!("{}/run/kubeha-demo/nginx", ad.root),
        "-e".into(),
        format!("{}/var/log/nginx/error.log", ad.root),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// start_daemon detaches the daemon in a session of its own, with its log and both pid records; stop_daemon
    /// ends it and what it started (its session), and removes the pid file.
    #[test]
    fn start_and_stop_a_daemon() {
        let t = std::env::temp_dir().join(format!("khd-ad-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("root/run/kubeha-demo")).unwrap();
        std::fs::create_dir_all(t.join("root/var/log/kubeha-demo")).unwrap();
        std::env::set_var("KHD_NODE", "n1");
        std::env::set_var("KHD_STATE", &t);
        let root = t.join("root").display().to_string();
        let ad = Ad {
            tool: "systemctl".into(),
            args: vec![],
            log: PathBuf::from(format!("{root}/var/log/kubeha-demo")),
            pids: PathBuf::from(format!("{root}/run/kubeha-demo")),
            root,
        };
        assert!(!ad.daemon_alive("d"));
        ad.start_daemon(
            "d",
            "/bin/sh",
            &["-c".into(), "echo up; sleep 60 & sleep 60".into()],
        )
        .unwrap();
        let pid = read_pid(&ad.pids.join("d.pid")).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.join("pids")).unwrap(),
            format!("{pid} n1:d\n")
        );
        assert!(ad.daemon_alive("d"));
        let mut members = Vec::new();
        for _ in 0..50 {
            members = session(pid);
            if members.len() >= 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(members.len() >= 3, "the daemon's own session: {members:?}");
        ad.stop_daemon("d");
        assert!(!ad.pids.join("d.pid").exists());
        // Our child: reaped here (an orphan's PID 1 would).
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        assert!(!pid_running(pid));
        for _ in 0..50 {
            if session(pid).iter().all(|(_, s)| *s == 'Z') {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            session(pid).iter().all(|(_, s)| *s == 'Z'),
            "{:?}",
            session(pid)
        );
        assert_eq!(
            std::fs::read_to_string(ad.log.join("d.log")).unwrap(),
            "up\n"
        );
        let _ = std::fs::remove_dir_all(&t);
    }
}
