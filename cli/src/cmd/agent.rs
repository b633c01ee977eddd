//! The node agent the media carry: which `kubeha-firstboot` `kubeha iso` and `kubeha pxe` embed, and whether it
//! starts on the nodes' EL release. `kubeha agent` shows both.
//!
//! The binary, first found wins:
//! 1. `--agent FILE`;
//! 2. `<dir of kubeha>/../share/kubeha/kubeha-firstboot`: an installed kubeha's EL build;
//! 3. `dist/kubeha-firstboot` of the source tree this kubeha was built from (`make node-binary`: linked against
//!    glibc 2.17, so it starts on EL7, EL8 and EL9);
//! 4. `<dir of kubeha>/kubeha-firstboot`: cargo's host build beside kubeha (`target/<profile>/`), linked against the
//!    build host's glibc.
//!
//! Whichever it is goes on a medium only if every `GLIBC_x.y` symbol version it needs is at most the glibc of the
//! target EL release ([`kubeha_model::el::RELEASES`]: EL7 2.17, EL8 2.28, EL9 2.34), read from its ELF version
//! needs ([`crate::elf`]); otherwise the command fails naming the version, its symbols, the file and the release.
//! The unit file: `--agent-unit`, else beside the binary, beside kubeha, `../share/kubeha/`, the source tree's
//! `firstboot/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use kubeha_image::{Agent, AGENT_BIN, AGENT_UNIT};
use kubeha_model::el::{self, RELEASES};

use crate::elf::{self as elfread, ElfNeeds};

/// Where an installed kubeha keeps the EL build of the agent, relative to its own directory.
const INSTALLED_DIR: &str = "../share/kubeha";
/// Where `make node-binary` puts the EL build, relative to the source tree.
const NODE_BINARY: &str = "dist/kubeha-firstboot";

/// `kubeha agent`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  kubeha agent --el 7\n  kubeha agent --agent ./kubeha-firstboot\n\n\
    Without --agent: the agent `kubeha iso` and `kubeha pxe` would embed (an\n\
    install's ../share/kubeha/, else the source tree's dist/ from\n\
    `make node-binary`, else the host build beside kubeha). Exits 1 if it would\n\
    not start on --el's release."
)]
pub struct AgentConfig {
    /// The kubeha-firstboot binary to check (default: the media's)
    #[arg(long, value_name = "FILE")]
    pub agent: Option<PathBuf>,
    /// Fail unless the agent starts on this EL release (7, 8 or 9)
    #[arg(long, value_parser = clap::value_parser!(u8).range(7..=9))]
    pub el: Option<u8>,
}

/// Runs `kubeha agent`: the agent, its newest glibc need, and each EL release it starts on (stdout).
pub fn agent(c: AgentConfig) -> Result<ExitCode> {
    let (binary, origin) = find_binary(c.agent)?;
    let needs = read_needs(&binary)?;
    let mut out = format!("agent: {} ({origin})\n", binary.display());
    match needs.newest_glibc() {
        Some((v, syms)) => writeln!(out, "glibc: {v} ({})", symbols(v, syms))?,
        None => writeln!(out, "glibc: none (statically linked)")?,
    }
    for r in &RELEASES {
        let verdict = match refusal(&binary, &needs, r.el, None) {
            None => "starts",
            Some(_) => "does not start",
        };
        writeln!(out, "EL{} (glibc {}): {verdict}", r.el, r.glibc)?;
    }
    print!("{out}");
    if let Some(e) = c.el {
        check(&binary, e, None)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the binary came from, for the log line and `kubeha agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--agent`.
    Flag,
    /// An install's `share/kubeha/`.
    Installed,
    /// The source tree's `dist/` (`make node-binary`).
    NodeBinary,
    /// cargo's build beside kubeha, for the build host's glibc.
    HostBuild,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--agent",
            Origin::Installed => "installed beside kubeha",
            Origin::NodeBinary => "make node-binary",
            Origin::HostBuild => "host build beside kubeha",
        })
    }
}

fn exe_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// The source tree this kubeha was built from (gone on a machine it was copied to; then simply not found).
fn source_tree() -> PathBuf {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR"));
    cli.parent().unwrap_or(cli).to_path_buf()
}

/// The candidates in search order, for `exe_dir` and `source_tree`.
fn candidates(exe_dir: &Path, source_tree: &Path) -> [(PathBuf, Origin); 3] {
    [
        (
            exe_dir.join(INSTALLED_DIR).join(AGENT_BIN),
            Origin::Installed,
        ),
        (source_tree.join(NODE_BINARY), Origin::NodeBinary),
        (exe_dir.join(AGENT_BIN), Origin::HostBuild),
    ]
}

/// The agent binary: `flag`, else the first candidate that is a file.
pub fn find_binary(flag: Option<PathBuf>) -> Result<(PathBuf, Origin)> {
    if let Some(b) = flag {
        return Ok((b, Origin::Flag));
    }
    find_in(&exe_dir(), &source_tree())
}

fn find_in(exe_dir: &Path, source_tree: &Path) -> Result<(PathBuf, Origin)> {
    let cands = candidates(exe_dir, source_tree);
    let Some(found) = cands.iter().find(|(p, _)| p.is_file()).cloned() else {
        let looked: Vec<String> = cands.iter().map(|(p, _)| p.display().to_string()).collect();
        bail!(
            "no {AGENT_BIN} found (looked at {}): build it with `make node-binary` or pass --agent FILE",
            looked.join(", ")
        );
    };
    Ok(found)
}

/// Finds the agent binary and unit (module docs), and checks the binary against EL `el` (and `arch`, when known)
/// before anything is written.
pub fn find(
    binary: Option<PathBuf>,
    unit: Option<PathBuf>,
    el: u8,
    arch: Option<&str>,
) -> Result<Agent> {
    let (binary, origin) = find_binary(binary)?;
    let needs = check(&binary, el, arch)?;
    log::info!(
        "agent {} ({origin}): needs glibc {}, EL{el} ships {}",
        binary.display(),
        needs
            .newest_glibc()
            .map_or("none (static)".to_string(), |(v, _)| v.to_string()),
        el::release(el).map_or("?".to_string(), |r| r.glibc.to_string())
    );
    let unit = match unit {
        Some(u) => u,
        None => {
            let bin_dir = binary.parent().map(Path::to_path_buf).unwrap_or_default();
            let exe = exe_dir();
            [
                bin_dir.join(AGENT_UNIT),
                exe.join(AGENT_UNIT),
                exe.join(INSTALLED_DIR).join(AGENT_UNIT),
                exe.join("../../firstboot").join(AGENT_UNIT),
                // A source-tree build: the unit beside the agent's sources.
                source_tree().join("firstboot").join(AGENT_UNIT),
            ]
            .into_iter()
            .find(|p| p.is_file())
            .with_context(|| format!("no {AGENT_UNIT} found: pass --agent-unit FILE"))?
        }
    };
    Ok(Agent { binary, unit })
}

fn read_needs(binary: &Path) -> Result<ElfNeeds> {
    let data =
        std::fs::read(binary).with_context(|| format!("reading the agent {}", binary.display()))?;
    elfread::read(&data).with_context(|| {
        format!(
            "the agent {}: the node agent is the kubeha-firstboot binary (make node-binary)",
            binary.display()
        )
    })
}

/// Reads `binary` and refuses it unless it starts on EL `el` (and is built for `arch`, when known).
pub fn check(binary: &Path, el: u8, arch: Option<&str>) -> Result<ElfNeeds> {
    let needs = read_needs(binary)?;
    if let Some(why) = refusal(binary, &needs, el, arch) {
        bail!("{why}");
    }
    Ok(needs)
}

/// `sym@GLIBC_v, ...` (at most three, then how many more), or a note that no symbol names the version.
fn symbols(v: el::Glibc, syms: &std::collections::BTreeSet<String>) -> String {
    if syms.is_empty() {
        return format!("GLIBC_{v}, needed by no single symbol");
    }
    let mut s: Vec<String> = syms
        .iter()
        .take(3)
        .map(|n| format!("{n}@GLIBC_{v}"))
        .collect();
    if syms.len() > 3 {
        s.push(format!("{} more", syms.len() - 3));
    }
    s.join(", ")
}

/// Why `binary` would not start on EL `el`, if it would not.
fn refusal(binary: &Path, needs: &ElfNeeds, el: u8, arch: Option<&str>) -> Option<String> {
    let file = binary.display();
    let Some(r) = el::release(el) else {
        return Some(format!(
            "EL{el} is not a release kubeha installs (7, 8 or 9)"
        ));
    };
    if let Some(want) = arch {
        let got = needs
            .arch()
            .map_or_else(|| format!("ELF machine {}", needs.machine), str::to_string);
        if got != want {
            return Some(format!(
                "the agent {file} is built for {got}, the nodes are {want}: build kubeha-firstboot for {want}"
            ));
        }
    }
    if let Some(i) = needs.interpreter.as_deref().filter(|i| i.contains("musl")) {
        return Some(format!(
            "the agent {file} is linked against musl ({i}), which EL{el} does not ship: build it with \
             `make node-binary` (glibc {}) or link it statically",
            RELEASES[0].glibc
        ));
    }
    let (v, syms) = needs.newest_glibc()?;
    if v <= r.glibc {
        return None;
    }
    Some(format!(
        "the agent {file} needs glibc {v} ({}), newer than the glibc {} EL{el} ships ({}): it would not start on \
         the nodes. Use the glibc {} build: `make node-binary` writes {NODE_BINARY}, which kubeha takes by default \
         (or pass it with --agent)",
        symbols(v, syms),
        r.glibc,
        r.distros,
        RELEASES[0].glibc,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::tests::gcc_hello;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    /// The search order: share/kubeha beside kubeha, then the source tree's dist/, then the host build.
    #[test]
    fn search_order() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("prefix/bin");
        let src = d.path().join("src");
        std::fs::create_dir_all(&bin).unwrap();
        let err = find_in(&bin, &src).unwrap_err().to_string();
        assert!(
            err.contains("make node-binary") && err.contains("--agent"),
            "{err}"
        );
        for (add, want) in [
            (bin.join(AGENT_BIN), Origin::HostBuild),
            (src.join(NODE_BINARY), Origin::NodeBinary),
            (
                d.path().join("prefix/share/kubeha").join(AGENT_BIN),
                Origin::Installed,
            ),
        ] {
            touch(&add);
            let (p, o) = find_in(&bin, &src).unwrap();
            assert_eq!(o, want, "after adding {}", add.display());
            assert_eq!(p.canonicalize().unwrap(), add.canonicalize().unwrap());
        }
        assert_eq!(
            find_binary(Some(PathBuf::from("x"))).unwrap(),
            (PathBuf::from("x"), Origin::Flag)
        );
    }

    /// A gcc-built program on this glibc-2.36 builder needs `__libc_start_main@GLIBC_2.34`: EL9 takes it, EL8 and
    /// EL7 refuse it naming the symbol, the file and the release.
    #[test]
    fn refuses_a_newer_glibc() {
        let d = tempfile::tempdir().unwrap();
        let hello = gcc_hello(d.path());
        assert!(check(&hello, 9, Some("x86_64")).is_ok());
        for (el, ships) in [(8, "2.28"), (7, "2.17")] {
            let e = check(&hello, el, None).unwrap_err().to_string();
            for want in [
                "__libc_start_main@GLIBC_2.34",
                &format!("EL{el}"),
                &format!("glibc {ships}"),
                &hello.display().to_string(),
                "make node-binary",
            ] {
                assert!(e.contains(want), "EL{el}: {want:?} not in {e}");
            }
        }
        let e = check(&hello, 9, Some("aarch64")).unwrap_err().to_string();
        assert!(e.contains("built for x86_64, the nodes are aarch64"), "{e}");
        let script = d.path().join("agent.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let e = format!("{:#}", check(&script, 9, None).unwrap_err());
        assert!(
            e.contains("not an ELF file") && e.contains("agent.sh"),
            "{e}"
        );
    }
}
