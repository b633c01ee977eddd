//! The build host's tools (xorriso, implantisomd5) run through the one command runner, [`kubeha_runner`]; a failure
//! is an [`Error::Tool`]: the command line, the status and the end of stderr.

use kubeha_runner::{Cmd, Output};

use crate::{Error, Result};

/// Runs `cmd`; fails unless it exits 0.
pub(crate) fn run(cmd: &Cmd) -> Result<Output> {
    kubeha_runner::run(cmd).map_err(tool_error)
}

fn tool_error(e: kubeha_runner::Error) -> Error {
    let command = e.command().to_string();
    match e {
        kubeha_runner::Error::Start { source, .. } => Error::Tool {
            command,
            status: "could not start".into(),
            stderr: format!("{source} (is it installed?)"),
        },
        kubeha_runner::Error::Failed { code, stderr, .. } => {
            let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
            Error::Tool {
                command,
                status: kubeha_runner::status_text(code),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            }
        }
        e @ kubeha_runner::Error::Io { .. } => Error::Tool {
            command,
            status: "could not be waited for".into(),
            stderr: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_command_status_and_stderr_tail() {
        let script = "for i in $(seq 1 30); do echo line$i >&2; done; exit 2";
        match run(&Cmd::new("sh").args(["-c", script])).unwrap_err() {
            Error::Tool {
                command,
                status,
                stderr,
            } => {
                assert_eq!(command, format!("sh -c '{script}'"));
                assert_eq!(status, "exit code 2");
                assert_eq!(stderr.lines().count(), 20);
                assert!(
                    stderr.starts_with("line11\n") && stderr.ends_with("line30"),
                    "{stderr}"
                );
            }
            e => panic!("{e}"),
        }
        match run(&Cmd::new("/nonexistent/implantisomd5")).unwrap_err() {
            Error::Tool { status, .. } => assert_eq!(status, "could not start"),
            e => panic!("{e}"),
        }
    }
}
