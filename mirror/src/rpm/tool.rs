//! The RPM tools (createrepo_c, rpmkeys) run through the one command runner, [`kubeha_runner`].

use anyhow::Result;
use kubeha_runner::Cmd;

use super::error::Error;

/// Runs a command through the one runner; the error, [`Error::Command`], carries the argv, the exit status and
/// stderr.
pub(super) fn run(cmd: &Cmd) -> Result<kubeha_runner::Output> {
    Ok(kubeha_runner::run(cmd).map_err(Error::Command)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_error_names_argv_status_and_stderr() {
        let e = run(&Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        assert!(
            matches!(e.downcast_ref::<Error>(), Some(Error::Command(_))),
            "{e:#}"
        );
        let e = e.to_string();
        assert!(
            e.contains("sh -c 'echo oops >&2; exit 3'")
                && e.contains("exit code 3")
                && e.contains("oops"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            run(&Cmd::new("/nonexistent/createrepo_c")).unwrap_err()
        );
        assert!(
            e.contains("/nonexistent/createrepo_c") && e.contains("is it installed"),
            "{e}"
        );
    }
}
