//! Killed after each step in turn (before and after the step is journaled), then run again: the end state — the
//! root's files and the commands run — is the same as one uninterrupted run's. The agent runs as a real process
//! (`--dry-run` prints the commands it would run, in order), and `KUBEHA_CRASH_AFTER` makes it `abort()`.

mod common;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kubeha-firstboot");

struct Run {
    /// `would run:` lines.
    cmds: Vec<String>,
    /// (step, index into cmds where it finished).
    steps: Vec<(String, usize)>,
    crashed: bool,
}

fn run(root: &Path, crash: Option<&str>) -> Run {
    let mut c = Command::new(BIN);
    c.arg("--root")
        .arg(root)
        .arg("--dry-run")
        .env("KUBEHA_LOG", "warn");
    if let Some(s) = crash {
        c.env("KUBEHA_CRASH_AFTER", s);
    }
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut r = Run {
        cmds: Vec::new(),
        steps: Vec::new(),
        crashed: false,
    };
    for l in stdout.lines() {
        if let Some(cmd) = l.strip_prefix("would run: ") {
            r.cmds.push(cmd.to_string());
        } else if let Some(s) = l.strip_prefix("kubeha-firstboot: [ ok ] ") {
            r.steps.push((s.to_string(), r.cmds.len()));
        }
    }
    match crash {
        Some(_) => {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(nix::sys::signal::Signal::SIGABRT as i32),
                "crash run must abort: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            r.crashed = true;
        }
        None => assert!(
            out.status.success(),
            "{}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
    r
}

#[test]
fn crash_after_each_step_converges() {
    let base = tempfile::tempdir().unwrap();
    let cmdline = "ro kubeha.name=k8s-master02";
    let full_root = base.path().join("full");
    common::make_root(&full_root, cmdline);
    let full = run(&full_root, None);
    let want = common::snapshot(&full_root);
    let names: Vec<&str> = full.steps.iter().map(|(s, _)| s.as_str()).collect();
    eprintln!("steps: {}; {} commands", names.join(" "), full.cmds.len());
    assert!(full.steps.len() >= 12, "{:?}", full.steps);
    assert!(want.contains_key("/var/lib/kubeha/done"));

    // The steps that run on every run whatever the journal says.
    let rechecks: Vec<&'static str> =
        kubeha_firstboot::steps::for_role(kubeha_model::cluster::Role::Master)
            .iter()
            .filter(|s| s.rechecks())
            .map(|s| s.name())
            .collect();
    assert!(rechecks.contains(&"cluster-kubeadm"), "{rechecks:?}");
    for (i, (step, end)) in full.steps.iter().enumerate() {
        for journaled in [false, true] {
            let root = base.path().join(format!("crash-{i}-{journaled}"));
            common::make_root(&root, cmdline);
            // make_root wrote the same config text, so the trees are comparable file by file.
            std::fs::copy(
                full_root.join("etc/kubeha/node.toml"),
                root.join("etc/kubeha/node.toml"),
            )
            .unwrap();
            let point = if journaled {
                format!("{step}+journal")
            } else {
                step.clone()
            };
            let first = run(&root, Some(&point));
            assert!(first.crashed);
            assert_eq!(
                first.cmds,
                full.cmds[..*end],
                "{point}: commands before the crash"
            );
            let second = run(&root, None);
            // Not journaled: the step runs again from its start. Journaled: the rerun starts with the next step.
            // Either way the steps that recheck the node on every run (Step::rechecks) run again before that point
            // too; in a dry run nothing they did is on disk, so they print their commands again.
            let resume_step = if journaled { i + 1 } else { i };
            let mut expected: Vec<String> = Vec::new();
            let mut from = 0;
            for (j, (name, stop)) in full.steps.iter().enumerate() {
                if j >= resume_step || rechecks.contains(&name.as_str()) {
                    expected.extend_from_slice(&full.cmds[from..*stop]);
                }
                from = *stop;
            }
            assert_eq!(second.cmds, expected, "{point}: commands of the rerun");
            let got = common::snapshot(&root);
            assert_eq!(
                got, want,
                "{point}: end state differs from an uninterrupted run"
            );
            std::fs::remove_dir_all(&root).unwrap();
        }
    }
}
