//! Waiting for the demo nodes' agents (the node stages', [`super::fleet::Fleet::wait_agents`]): until each agent's
//! status.json says done; a failed or vanished agent (its pid in STATE/logs/NAME.agent.pid no longer alive), or the
//! deadline, stops the demo with the node's last status and the tail of its log. A node that is done gets its
//! STATE/logs/NAME.finished and NAME.seconds (from NAME.started) and one line on stdout.

use super::install::tail;
use super::{probe, vars};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// The line for a node that is done (`info "$(printf '%-13s %-6s phase=%-5s %-5s %6ss' ...)"`).
pub fn done_line(name: &str, role: &str, decision: &str, secs: &str) -> String {
    format!(
        "   {name:<13} {role:<6} phase={:<5} {decision:<5} {secs:>6}s",
        "done"
    )
}

/// What a stopped agent leaves on stderr before its log's tail.
pub fn stopped_line(name: &str, s: &[String; 4]) -> String {
    format!(
        "demo: the agent on {name} stopped: state={} phase={} step={}: {}",
        s[0], s[1], s[2], s[3]
    )
}

/// What the deadline leaves on stderr for a node before its log's tail.
pub fn timeout_line(name: &str, timeout: u64, s: &[String; 4]) -> String {
    format!(
        "demo: {name} not done after {timeout}s: state={} phase={} step={}; last log lines:",
        s[0], s[1], s[2]
    )
}

/// Whether the process with the pid in `pid_file` is alive: it exists and is not a zombie (an exited agent whose
/// parent has not reaped it yet, or a daemon orphaned to a PID 1 that does not reap, is gone for the lab).
fn alive(pid_file: &Path) -> bool {
    std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(pid_alive)
}

/// Whether process `pid` runs: /proc/PID/stat exists and its state (the first field after the command's closing
/// parenthesis) is not `Z`.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    pid > 0
        && stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
}

/// The waiting.
pub struct Wait<'a> {
    /// The node stages' state directory (STATE/logs, STATE/nodes).
    pub state: &'a Path,
    pub timeout: u64,
    pub masters: &'a [String],
    /// How long between two looks.
    pub every: Duration,
}

impl Wait<'_> {
    fn status(&self, n: &str) -> [String; 4] {
        let p = self
            .state
            .join("nodes")
            .join(n)
            .join("var/lib/kubeha/status.json");
        vars::status_fields(&p)
    }

    fn log_tail(&self, n: &str, lines: usize) -> String {
        let p = self.state.join("logs").join(format!("{n}.agent.log"));
        tail(
            &String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()),
            lines,
        )
    }

    /// A node that is done: NAME.finished, NAME.seconds, its line.
    fn finish(&self, n: &str) -> Result<String> {
        let logs = self.state.join("logs");
        let finished = probe::now();
        std::fs::write(logs.join(format!("{n}.finished")), format!("{finished}\n"))
            .with_context(|| format!("writing {}", logs.join(format!("{n}.finished")).display()))?;
        let sp = logs.join(format!("{n}.started"));
        let started =
            std::fs::read_to_string(&sp).with_context(|| format!("reading {}", sp.display()))?;
        let secs = probe::elapsed(&started, &finished)?;
        std::fs::write(logs.join(format!("{n}.seconds")), format!("{secs}\n"))
            .with_context(|| format!("writing {}", logs.join(format!("{n}.seconds")).display()))?;
        let role = if self.masters.iter().any(|m| m == n) {
            "master"
        } else {
            "worker"
        };
        let dec = self
            .state
            .join("nodes")
            .join(n)
            .join("var/lib/kubeha/cluster/decision");
        let dec = std::fs::read_to_string(dec)
            .map(|d| d.trim_end_matches('\n').to_string())
            .unwrap_or_else(|_| "join".to_string());
        Ok(done_line(n, role, &dec, &secs))
    }

    /// Waits for `names`; the lines go to `out`, the diagnostics to `err`. Ok(false): an agent stopped or the
    /// deadline passed (the diagnostics are written).
    pub fn run(&self, names: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<bool> {
        let deadline = Instant::now() + Duration::from_secs(self.timeout);
        let mut pending: Vec<&String> = names.iter().collect();
        while !pending.is_empty() {
            let mut still = vec![];
            for n in pending {
                let alive = alive(&self.state.join("logs").join(format!("{n}.agent.pid")));
                // Read after the liveness check: an agent may just have finished.
                let s = self.status(n);
                if s[0] == "done" {
                    writeln!(out, "{}", self.finish(n)?)?;
                    out.flush()?;
                } else if s[0] == "failed" || !alive {
                    writeln!(err, "{}", stopped_line(n, &s))?;
                    write!(err, "{}", self.log_tail(n, 15))?;
                    return Ok(false);
                } else {
                    still.push(n);
                }
            }
            pending = still;
            if !pending.is_empty() && Instant::now() >= deadline {
                for n in pending {
                    writeln!(err, "{}", timeout_line(n, self.timeout, &self.status(n)))?;
                    write!(err, "{}", self.log_tail(n, 5))?;
                }
                return Ok(false);
            }
            if !pending.is_empty() {
                std::thread::sleep(self.every);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn lines_as_printf_wrote_them() {
        assert_eq!(
            done_line("m1", "master", "init", "83.4"),
            "   m1            master phase=done  init    83.4s"
        );
        assert_eq!(
            done_line("worker-long-name", "worker", "join", "123456.7"),
            "   worker-long-name worker phase=done  join  123456.7s"
        );
        let s = ["running", "cluster", "join", "-"].map(String::from);
        assert_eq!(
            stopped_line("w1", &s),
            "demo: the agent on w1 stopped: state=running phase=cluster step=join: -"
        );
        assert_eq!(
            timeout_line("w1", 600, &s),
            "demo: w1 not done after 600s: state=running phase=cluster step=join; last log lines:"
        );
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(pid_alive(sleeper.id()));
        let mut done = std::process::Command::new("true").spawn().unwrap();
        // Exited, not reaped yet: a zombie until wait().
        let t = Instant::now();
        while pid_alive(done.id()) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", done.id())).unwrap();
        assert!(
            stat.rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .starts_with('Z'),
            "{stat}"
        );
        assert!(!pid_alive(done.id()));
        done.wait().unwrap();
        assert!(!pid_alive(done.id()));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert!(!pid_alive(u32::MAX));
    }

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("kubeha-lab-wait-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("logs")).unwrap();
        d
    }

    fn node(d: &Path, n: &str, status: &str, pid: u32) {
        let k = d.join("nodes").join(n).join("var/lib/kubeha");
        std::fs::create_dir_all(k.join("cluster")).unwrap();
        std::fs::write(k.join("status.json"), status).unwrap();
        std::fs::write(d.join(format!("logs/{n}.agent.pid")), format!("{pid}\n")).unwrap();
        std::fs::write(d.join(format!("logs/{n}.started")), "1.0\n").unwrap();
        let log: String = (1..=20).map(|i| format!("{n} line {i}\n")).collect();
        std::fs::write(d.join(format!("logs/{n}.agent.log")), log).unwrap();
    }

    #[test]
    fn waits_and_stops() {
        let d = tmp();
        let me = std::process::id();
        node(&d, "m1", r#"{"state":"done","phase":"done"}"#, me);
        std::fs::write(d.join("nodes/m1/var/lib/kubeha/cluster/decision"), "init\n").unwrap();
        node(&d, "w1", r#"{"state":"done"}"#, 0);
        let masters = vec!["m1".to_string()];
        let w = Wait {
            state: &d,
            timeout: 0,
            masters: &masters,
            every: Duration::from_millis(10),
        };
        let (mut out, mut err) = (vec![], vec![]);
        let names = ["m1", "w1"].map(String::from);
        assert!(w.run(&names, &mut out, &mut err).unwrap());
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].starts_with("   m1            master phase=done  init  "),
            "{out}"
        );
        // No decision file: a join; a dead agent that is done is done.
        assert!(
            lines[1].starts_with("   w1            worker phase=done  join  "),
            "{out}"
        );
        let secs = std::fs::read_to_string(d.join("logs/m1.seconds")).unwrap();
        assert!(lines[0].ends_with(&format!("{}s", secs.trim())), "{out}");
        assert!(d.join("logs/m1.finished").is_file());

        // A failed agent: its status and the last 15 lines of its log.
        node(
            &d,
            "m2",
            r#"{"state":"failed","phase":"cluster","step":"join","error":"boom\nagain"}"#,
            me,
        );
        let mut err = vec![];
        assert!(!w.run(&["m2".to_string()], &mut vec![], &mut err).unwrap());
        let err = String::from_utf8(err).unwrap();
        let want: String = std::iter::once(
            "demo: the agent on m2 stopped: state=failed phase=cluster step=join: boom again\n"
                .to_string(),
        )
        .chain((6..=20).map(|i| format!("m2 line {i}\n")))
        .collect();
        assert_eq!(err, want);

        // A running agent past the deadline: its status and the last 5 lines.
        node(
            &d,
            "w2",
            r#"{"state":"running","phase":"cluster","step":"join"}"#,
            me,
        );
        let mut err = vec![];
        assert!(!w.run(&["w2".to_string()], &mut vec![], &mut err).unwrap());
        let err = String::from_utf8(err).unwrap();
        assert!(err.starts_with(
            "demo: w2 not done after 0s: state=running phase=cluster step=join; last log lines:\nw2 line 16\n"
        ), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
