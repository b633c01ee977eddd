//! kubeha-runner: the one command runner of the workspace. A command is a value ([`Cmd`]: program, argv, env,
//! stdin, working directory) that can be printed, compared and recorded; running it ([`run`], [`output`], or a
//! [`Runner`]) gives an [`Error`] that carries the argv, the exit status and stderr (coreos-installer's `runcmd!`,
//! azure-init's `run`).
//!
//! - The node agent runs every external tool (systemctl, kubeadm, ctr, dnf...) through a [`Runner`], so
//!   `--dry-run` prints instead of running ([`RecordingRunner::printing`]) and tests record the exact argv.
//! - The build host's tools (xorriso, implantisomd5, createrepo_c, rpmkeys) go through [`run`] and [`output`]; their
//!   crates turn [`Error`] into their own error types.
//!
//! Secrets never go on a command line: the runner logs argv. Pass them in 0600 files.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context as _, Result};

/// A command that did not run or did not succeed; every variant names the command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program could not be started (not installed, not executable).
    #[error("starting {command}: {source} (is it installed?)")]
    Start {
        /// The command line ([`Cmd::display`]).
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// Waiting for it, or feeding its stdin, failed.
    #[error("{what} {command}: {source}")]
    Io {
        /// What was being done ("waiting for", "streaming stdin of").
        what: &'static str,
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran and exited with a failure.
    #[error("command {command} failed with {}: {}", status_text(*.code), .stderr)]
    Failed {
        /// The command line.
        command: String,
        /// Its argv (program first).
        argv: Vec<String>,
        /// The exit code; `None` when a signal ended it.
        code: Option<i32>,
        /// Its stderr, trimmed.
        stderr: String,
    },
}

impl Error {
    /// The command line the error is about.
    pub fn command(&self) -> &str {
        match self {
            Error::Start { command, .. }
            | Error::Io { command, .. }
            | Error::Failed { command, .. } => command,
        }
    }

    /// A failure of `cmd` with `out` (whatever the exit code says).
    pub fn failed(cmd: &Cmd, out: &Output) -> Error {
        Error::Failed {
            command: cmd.display(),
            argv: cmd.argv(),
            code: out.code,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
    }
}

/// `exit code N`, or `a signal`.
pub fn status_text(code: Option<i32>) -> String {
    code.map(|c| format!("exit code {c}"))
        .unwrap_or_else(|| "a signal".into())
}

/// A command to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmd {
    /// Program name or path.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Bytes fed to stdin.
    pub stdin: Option<Vec<u8>>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
}

impl Cmd {
    /// `Cmd::new("systemctl").arg("enable").arg("kubelet")`.
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            ..Default::default()
        }
    }
    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Adds a path argument (as text: argv is shown in logs and errors).
    pub fn arg_path(self, p: impl AsRef<Path>) -> Self {
        let s = p.as_ref().to_string_lossy().into_owned();
        self.arg(s)
    }
    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }
    /// Sets an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    /// The program and its arguments.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
    /// Feeds bytes to stdin.
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }
    /// The command line as a shell would show it (for logs and dry runs).
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(|a| {
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c))
                {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// stdout as text.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs commands.
pub trait Runner: Send + Sync {
    /// Runs `cmd` to completion and returns what it produced, whatever its exit code.
    fn output(&self, cmd: &Cmd) -> Result<Output>;

    /// Runs `cmd` and fails unless it exits 0; the error carries the command, status and stderr.
    fn run(&self, cmd: &Cmd) -> Result<Output> {
        Ok(succeeded(cmd, self.output(cmd)?)?)
    }

    /// Whether commands really run (false for dry runs: callers then skip probing the system's answers).
    fn is_real(&self) -> bool {
        true
    }

    /// Runs `cmd` with its stdin streamed from `feed` (e.g. an image archive written on the fly, too big to hold in
    /// memory), and fails unless it exits 0. The default buffers the stream; [`SystemRunner`] streams it.
    fn run_streaming(
        &self,
        cmd: &Cmd,
        feed: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<Output> {
        let mut buf = Vec::new();
        feed(&mut buf)?;
        self.run(&cmd.clone().stdin(buf))
    }
}

/// A shared runner (tests keep a handle on a [`RecordingRunner`] they hand to the engine).
impl<T: Runner + ?Sized> Runner for std::sync::Arc<T> {
    fn output(&self, cmd: &Cmd) -> Result<Output> {
        (**self).output(cmd)
    }
    fn run(&self, cmd: &Cmd) -> Result<Output> {
        (**self).run(cmd)
    }
    fn is_real(&self) -> bool {
        (**self).is_real()
    }
    fn run_streaming(
        &self,
        cmd: &Cmd,
        feed: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<Output> {
        (**self).run_streaming(cmd, feed)
    }
}

/// Runs commands for real.
#[derive(Debug, Default)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn output(&self, cmd: &Cmd) -> Result<Output> {
        Ok(output(cmd)?)
    }

    fn run_streaming(
        &self,
        cmd: &Cmd,
        feed: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<Output> {
        log::debug!("running {} (stdin streamed)", cmd.display());
        let mut c = command(cmd);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(cmd, &mut c)?;
        // Drain stdout and stderr from threads while this thread writes stdin, so neither side can block the other.
        let mut so = child.stdout.take().expect("piped stdout");
        let mut se = child.stderr.take().expect("piped stderr");
        let t_out = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut so, &mut v);
            v
        });
        let t_err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut se, &mut v);
            v
        });
        let mut si =
            std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped stdin"));
        let fed = feed(&mut si).and_then(|()| si.flush().context("flushing stdin"));
        drop(si);
        let status = child.wait().map_err(waiting(cmd))?;
        let out = Output {
            code: status.code(),
            stdout: t_out.join().unwrap_or_default(),
            stderr: t_err.join().unwrap_or_default(),
        };
        let out = succeeded(cmd, out)?;
        // A feed error with a successful exit still fails: the command may have seen a truncated stream.
        fed.with_context(|| format!("streaming stdin of {}", cmd.display()))?;
        Ok(out)
    }
}

/// The `std::process::Command` of `cmd` (program, args, env, working directory): the one place the workspace builds
/// one outside tests.
fn command(cmd: &Cmd) -> Command {
    let mut c = Command::new(&cmd.program);
    c.args(&cmd.args).envs(&cmd.env);
    if let Some(d) = &cmd.cwd {
        c.current_dir(d);
    }
    c
}

/// Starts `c`, the [`command`] of `cmd`.
fn spawn(cmd: &Cmd, c: &mut Command) -> std::result::Result<Child, Error> {
    c.spawn().map_err(|source| Error::Start {
        command: cmd.display(),
        source,
    })
}

/// The error of waiting for `cmd`.
fn waiting(cmd: &Cmd) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        what: "waiting for",
        command: cmd.display(),
        source,
    }
}

/// `out` when `cmd` exited 0, its [`Error::Failed`] otherwise.
fn succeeded(cmd: &Cmd, out: Output) -> std::result::Result<Output, Error> {
    if out.success() {
        Ok(out)
    } else {
        Err(Error::failed(cmd, &out))
    }
}

/// Runs `cmd` to completion and returns what it produced, whatever its exit code; an error only when it could not
/// be started or waited for.
pub fn output(cmd: &Cmd) -> std::result::Result<Output, Error> {
    log::debug!("running {}", cmd.display());
    let mut c = command(cmd);
    c.stdin(if cmd.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = spawn(cmd, &mut c)?;
    if let Some(data) = &cmd.stdin {
        let mut si = child.stdin.take().expect("piped stdin");
        let data = data.clone();
        // Feed stdin from a thread so a child that writes a lot before reading cannot deadlock us.
        std::thread::spawn(move || {
            let _ = si.write_all(&data);
        });
    }
    let o = child.wait_with_output().map_err(waiting(cmd))?;
    Ok(Output {
        code: o.status.code(),
        stdout: o.stdout,
        stderr: o.stderr,
    })
}

/// Runs `cmd` and fails unless it exits 0: [`Error::Failed`] carries the argv, the status and stderr.
pub fn run(cmd: &Cmd) -> std::result::Result<Output, Error> {
    succeeded(cmd, output(cmd)?)
}

/// Records commands instead of running them: `--dry-run` prints them, tests assert them. Every command "succeeds"
/// with empty output unless a canned answer is registered for its program.
#[derive(Debug, Default)]
pub struct RecordingRunner {
    /// Every command, in order.
    pub log: Mutex<Vec<Cmd>>,
    /// Print each command to stdout as it is recorded (the dry run's output).
    pub print: bool,
    /// Tests: commands of this program exit 1 (recorded all the same).
    pub fail_program: Option<String>,
}

impl RecordingRunner {
    /// A dry-run runner that prints each command.
    pub fn printing() -> Self {
        RecordingRunner {
            log: Mutex::new(Vec::new()),
            print: true,
            fail_program: None,
        }
    }
    /// The recorded command lines.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().map(Cmd::display).collect()
    }
}

impl Runner for RecordingRunner {
    fn output(&self, cmd: &Cmd) -> Result<Output> {
        if self.print {
            println!("would run: {}", cmd.display());
        }
        self.log.lock().unwrap().push(cmd.clone());
        let fail = self.fail_program.as_deref() == Some(cmd.program.as_str());
        Ok(Output {
            code: Some(if fail { 1 } else { 0 }),
            stderr: if fail {
                b"recorded failure".to_vec()
            } else {
                Vec::new()
            },
            ..Default::default()
        })
    }
    fn is_real(&self) -> bool {
        false
    }

    /// Records the command as [`Runner::run`] does (a `fail_program` fails it) without producing the stream: a dry
    /// run reads no bundle data it does not need.
    fn run_streaming(
        &self,
        cmd: &Cmd,
        _feed: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<Output> {
        self.run(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_runner_reports_failures() {
        let r = SystemRunner;
        let out = r
            .run(
                &Cmd::new("sh")
                    .args(["-c", "cat; echo err >&2"])
                    .stdin(b"hi".to_vec()),
            )
            .unwrap();
        assert_eq!(out.stdout, b"hi");
        let e = r
            .run(&Cmd::new("sh").args(["-c", "echo boom >&2; exit 3"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("exit code 3") && e.contains("boom"), "{e}");
    }

    #[test]
    fn system_runner_streams_stdin() {
        let r = SystemRunner;
        let out = r
            .run_streaming(&Cmd::new("wc").arg("-c"), &mut |w| {
                for _ in 0..64 {
                    w.write_all(&[b'x'; 65536])?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(out.stdout_str().trim(), (64 * 65536).to_string());
        let e = r
            .run_streaming(
                &Cmd::new("sh").args(["-c", "cat >/dev/null; exit 4"]),
                &mut |w| {
                    w.write_all(b"abc")?;
                    Ok(())
                },
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("exit code 4"), "{e}");
    }

    #[test]
    fn typed_errors_carry_the_argv_status_and_stderr() {
        let cmd = Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]);
        match run(&cmd).unwrap_err() {
            Error::Failed {
                command,
                argv,
                code,
                stderr,
            } => {
                assert_eq!(command, "sh -c 'echo oops >&2; exit 3'");
                assert_eq!(argv, ["sh", "-c", "echo oops >&2; exit 3"]);
                assert_eq!((code, stderr.as_str()), (Some(3), "oops"));
            }
            e => panic!("{e}"),
        }
        let e = run(&Cmd::new("/nonexistent/createrepo_c").arg("--quiet")).unwrap_err();
        assert!(matches!(e, Error::Start { .. }), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("/nonexistent/createrepo_c --quiet") && e.contains("is it installed"),
            "{e}"
        );
        // The output, whatever the exit code; the working directory and environment are the command's.
        let d = std::env::temp_dir();
        let o = output(
            &Cmd::new("sh")
                .args(["-c", "pwd; echo $K; exit 1"])
                .env("K", "v")
                .cwd(&d),
        )
        .unwrap();
        assert_eq!(o.code, Some(1));
        assert_eq!(
            o.stdout_str(),
            format!("{}\nv\n", d.canonicalize().unwrap().display())
        );
    }

    #[test]
    fn recording_runner_records_and_fails_on_request() {
        let r = RecordingRunner {
            fail_program: Some("kubeadm".into()),
            ..Default::default()
        };
        r.run(&Cmd::new("systemctl").args(["enable", "kubelet"]))
            .unwrap();
        let e = r.run(&Cmd::new("kubeadm").arg("init")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "command kubeadm init failed with exit code 1: recorded failure"
        );
        let e = r
            .run_streaming(&Cmd::new("kubeadm").arg("join"), &mut |_| {
                panic!("a recording runner does not read the stream")
            })
            .unwrap_err();
        assert!(e.to_string().contains("kubeadm join failed"), "{e}");
        assert_eq!(
            r.lines(),
            ["systemctl enable kubelet", "kubeadm init", "kubeadm join"]
        );
        assert!(!r.is_real());
    }

    #[test]
    fn display_quotes() {
        assert_eq!(
            Cmd::new("echo").args(["a b", "c"]).display(),
            "echo 'a b' c"
        );
    }
}
