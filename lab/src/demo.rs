//! The demo's logic in Rust (issue #15; `make demo` and `make test-demo` run it through the `kubeha-lab` binary):
//! its stages ([`run::Demo`], `kubeha-lab demo`; the generated upstream [`upstream`]; the model stage
//! [`run::demo_core`]; the node stages
//! [`cluster::Stages`] on the rack of [`fleet::Fleet`], each node booted by [`boot`]), what they read from the cluster model and the agents
//! ([`vars`], [`probe`]), the node roots and cgroups they run the agents on and their stop ([`node`]), their network
//! install ([`install`]) and the wait for their agents ([`wait`]), the run's result.json ([`write`], read back by
//! [`result`]), its verdict on a run's result.json ([`result::check`], `kubeha-lab check-result`) and its closing
//! table ([`summary::summary`], `kubeha-lab summary`).

pub mod adapters;
pub mod boot;
pub mod cluster;
pub mod fleet;
pub mod install;
pub mod node;
pub mod probe;
pub mod result;
pub mod run;
pub mod summary;
pub mod upstream;
pub mod vars;
pub mod wait;
pub mod write;

/// The files in `dir` whose names end in `suffix`, sorted.
pub fn files_ending(dir: &std::path::Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(suffix))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A file's text; an error names the file.
pub fn read(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes a file's text; an error names the file.
pub fn write(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A command's argv as one line (for errors).
pub fn argv(cmd: &std::process::Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` (its output to ours); an error names its argv.
pub fn run(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let st = cmd
        .status()
        .with_context(|| format!("starting {}", argv(cmd)))?;
    anyhow::ensure!(st.success(), "{} failed ({st})", argv(cmd));
    Ok(())
}

/// Runs `cmd` (no stdin) and returns its stdout; an error names its argv and carries its stderr.
pub fn output(cmd: &mut std::process::Command) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let o = cmd
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .with_context(|| format!("starting {}", argv(cmd)))?;
    anyhow::ensure!(
        o.status.success(),
        "{} failed ({}): {}",
        argv(cmd),
        o.status,
        String::from_utf8_lossy(&o.stderr).trim()
    );
    String::from_utf8(o.stdout).with_context(|| format!("{}: output is not UTF-8", argv(cmd)))
}

/// A heading line, as the demo prints its stages.
pub fn say(s: &str) {
    println!("\n\x1b[1m== {s}\x1b[0m");
}

/// An indented line under a heading.
pub fn info(s: &str) {
    println!("   {s}");
}
