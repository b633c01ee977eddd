//! The one command runner: the error carries the command line, the status and the end of stderr.

use std::process::{Command, Output};

use crate::{Error, Result};

pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let line = format!("{cmd:?}");
    log::debug!("running {line}");
    let out = cmd.output().map_err(|e| Error::Tool {
        command: line.clone(),
        status: "could not start".into(),
        stderr: format!("{e} (is it installed?)"),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        return Err(Error::Tool {
            command: line,
            status: out.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(out)
}
