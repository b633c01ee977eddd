//! kubeha's house rules, checked over the source tree by `make check-house` (part of `make lint`):
//!
//! - `command`: `std::process::Command::new` only in the runner crate (`runner/`, kubeha-runner) and in tests;
//!   everything else runs tools through it (a `Cmd` value, the argv in every error, a recording backend).
//! - `kickstart-text-tools`: no `awk` or `sed` in a kickstart template, and no template reads `bundle.toml`: node
//!   data is rendered from Rust as shell `case` arms, and `kubeha-firstboot install` reads and verifies the bundle.
//! - `kernel-arg-literal`: no string literal that is a kernel argument key (`"kubeha.role`, `"kubeha.config.sha256=`,
//!   any `"kubeha.WORD=`) outside `model/`: the keys are `kubeha_model::kernel_args::Key`. Other `kubeha.` names
//!   (`"kubeha.repo"`, a label) are not keys.
//! - `import-circle`: no two files of one crate import each other, directly or through others (a `crate::`,
//!   `super::` or `self::` path, or a declared child module's name; see [`circles`]): a circle is reported on its
//!   first file with every file and edge that closes it.
//!
//! Test code is exempt: files under a `tests/` directory, files named `tests.rs` or `*_tests.rs`, the item after
//! a `#[cfg(test)]` (its braces matched), and from `command` the sources of a test-support crate (`publish = false`
//! and, in every crate's `Cargo.toml`, only ever a dev-dependency: kubeha-lab, see [`test_support_crates`]). Comment lines are skipped. Exceptions live in one place, `house/allow.toml`,
//! each with its reason; an exception that no longer matches anything is itself a finding.
#![deny(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};

pub mod circles;
mod source;

pub use source::{code_lines, is_test_file};

/// One house rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// `std::process::Command::new` outside kubeha-runner and tests.
    Command,
    /// `awk`, `sed` or `bundle.toml` in a kickstart template.
    KickstartTextTools,
    /// A `"kubeha.` literal outside `model/`.
    KernelArgLiteral,
    /// Files of one crate that import each other in a loop.
    ImportCircle,
}

impl Rule {
    /// The name `allow.toml` uses.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Command => "command",
            Rule::KickstartTextTools => "kickstart-text-tools",
            Rule::KernelArgLiteral => "kernel-arg-literal",
            Rule::ImportCircle => "import-circle",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Rule::Command => {
                "std::process::Command::new outside kubeha-runner: build a kubeha_runner::Cmd and run it with \
                 kubeha_runner::run/output or a Runner"
            }
            Rule::KickstartTextTools => {
                "awk/sed or bundle.toml in a kickstart template: render node data from Rust (case arms) and leave \
                 the bundle to kubeha-firstboot install"
            }
            Rule::KernelArgLiteral => {
                "a \"kubeha.* kernel argument literal outside model/: use kubeha_model::kernel_args::Key"
            }
            Rule::ImportCircle => {
                "files of one crate that import each other in a loop (move what both sides need into a file both \
                 import)"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule broken at one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// The file, relative to the tree's root, `/`-separated.
    pub path: String,
    /// The 1-based line (0 for a finding about the whole file, such as a stale exception).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.path, self.line, self.rule, self.message
        )
    }
}

/// One entry of `allow.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// The rule it lifts.
    pub rule: Rule,
    /// The file, relative to the root.
    pub path: String,
    /// Why (required: an exception without a reason is not one).
    pub reason: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    allow: Vec<Allow>,
}

/// The exceptions file, relative to the root.
pub const ALLOW_FILE: &str = "house/allow.toml";

/// Parses `allow.toml`; every entry needs a non-empty reason.
pub fn parse_allow(text: &str) -> Result<Vec<Allow>, String> {
    let f: AllowFile = toml::from_str(text).map_err(|e| format!("{ALLOW_FILE}: {e}"))?;
    for a in &f.allow {
        if a.reason.trim().is_empty() {
            return Err(format!(
                "{ALLOW_FILE}: the exception for {} ({}) has no reason",
                a.path, a.rule
            ));
        }
    }
    Ok(f.allow)
}

/// The findings in one file (`path` relative to the root, `/`-separated), before exceptions.
pub fn check_file(path: &str, text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut hit = |rule: Rule, line: usize| {
        out.push(Finding {
            rule,
            path: path.to_string(),
            line,
            message: rule.message().to_string(),
        })
    };
    if path.ends_with(".rs") && !is_test_file(path) {
        for (n, l) in code_lines(text) {
            if !path.starts_with("runner/") && l.contains("Command::new") {
                hit(Rule::Command, n);
            }
            if !path.starts_with("model/") && has_kernel_arg_literal(l) {
                hit(Rule::KernelArgLiteral, n);
            }
        }
    }
    if path.starts_with("kickstart/templates/") {
        for (i, l) in text.lines().enumerate() {
            if l.trim_start().starts_with('#') {
                continue;
            }
            let words =
                l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'));
            if l.contains("bundle.toml") || words.into_iter().any(|w| w == "awk" || w == "sed") {
                hit(Rule::KickstartTextTools, i + 1);
            }
        }
    }
    out
}

/// Whether `line` has a string literal starting with a kernel argument key: one of
/// [`kubeha_model::kernel_args::Key`] followed by a non-name character, or any `kubeha.WORD=`.
pub fn has_kernel_arg_literal(line: &str) -> bool {
    let quoted = format!("\"{}", kubeha_model::kernel_args::PREFIX);
    line.match_indices(&quoted).any(|(at, _)| {
        let rest = &line[at + 1..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_len);
        let known = kubeha_model::kernel_args::Key::ALL
            .iter()
            .any(|k| name == k.as_str() || name.starts_with(&format!("{}.", k.as_str())));
        known || after.starts_with('=')
    })
}

/// Directories never scanned: build output and history.
const SKIP_DIRS: [&str; 5] = ["target", ".git", "dist", "out", "node_modules"];

/// Every file of the tree the rules look at: Rust sources and kickstart templates, sorted.
pub fn files(root: &Path) -> std::io::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type()?;
            if ft.is_dir() {
                if !SKIP_DIRS.contains(&name.as_str()) {
                    walk(root, &p, out)?;
                }
            } else if ft.is_file() {
                let rel = p
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel.ends_with(".rs") || rel.starts_with("kickstart/templates/") {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// The directories (relative, `/`-separated) of the test-support crates among `manifests` (each a `Cargo.toml`'s
/// path relative to the root and its text): a package with `publish = false` that some manifest names under
/// `[dev-dependencies]` and none under `[dependencies]` or `[build-dependencies]` (for any target). Such a crate
/// starts the real daemons the integration tests use and is never shipped, so `command` does not apply to it. A
/// manifest that does not parse is an error.
pub fn test_support_crates(manifests: &[(String, String)]) -> Result<Vec<String>, String> {
    fn dep_names(t: Option<&toml::Value>) -> Vec<String> {
        let Some(t) = t.and_then(toml::Value::as_table) else {
            return Vec::new();
        };
        t.iter()
            .map(|(k, v)| {
                v.get("package")
                    .and_then(toml::Value::as_str)
                    .unwrap_or(k)
                    .to_string()
            })
            .collect()
    }
    let mut unpublished = Vec::new();
    let mut dev = std::collections::BTreeSet::new();
    let mut shipped = std::collections::BTreeSet::new();
    for (path, text) in manifests {
        let v: toml::Value = toml::from_str(text).map_err(|e| format!("{path}: {e}"))?;
        if let Some(pkg) = v.get("package") {
            if pkg.get("publish").and_then(toml::Value::as_bool) == Some(false) {
                if let Some(name) = pkg.get("name").and_then(toml::Value::as_str) {
                    let dir = path.trim_end_matches("Cargo.toml").trim_end_matches('/');
                    unpublished.push((dir.to_string(), name.to_string()));
                }
            }
        }
        let mut tables = vec![&v];
        if let Some(targets) = v.get("target").and_then(toml::Value::as_table) {
            tables.extend(targets.values());
        }
        for t in tables {
            dev.extend(dep_names(t.get("dev-dependencies")));
            shipped.extend(dep_names(t.get("dependencies")));
            shipped.extend(dep_names(t.get("build-dependencies")));
        }
    }
    Ok(unpublished
        .into_iter()
        .filter(|(dir, name)| !dir.is_empty() && dev.contains(name) && !shipped.contains(name))
        .map(|(dir, _)| dir)
        .collect())
}

/// The crates' manifests under `root` (`Cargo.toml` one or two directories down, the workspace's own left out).
fn manifests(root: &Path) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut dirs = vec![String::new()];
    for depth in 0..2 {
        let mut next = Vec::new();
        for d in dirs {
            let Ok(rd) = std::fs::read_dir(root.join(&d)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !e.file_type().is_ok_and(|t| t.is_dir())
                    || SKIP_DIRS.contains(&name.as_str())
                    || name.starts_with('.')
                {
                    continue;
                }
                let rel = if d.is_empty() {
                    name
                } else {
                    format!("{d}/{name}")
                };
                let m = root.join(&rel).join("Cargo.toml");
                if let Ok(text) = std::fs::read_to_string(&m) {
                    out.push((format!("{rel}/Cargo.toml"), text));
                }
                if depth == 0 {
                    next.push(rel);
                }
            }
        }
        dirs = next;
    }
    out.sort();
    Ok(out)
}

/// Checks the tree at `root` against the rules and `root/house/allow.toml` (absent: no exceptions). Returns every
/// finding left after the exceptions, and one for each exception that matched nothing.
pub fn check_tree(root: &Path) -> Result<Vec<Finding>, String> {
    let allow_path: PathBuf = root.join(ALLOW_FILE);
    let allow = match std::fs::read_to_string(&allow_path) {
        Ok(t) => parse_allow(&t)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", allow_path.display())),
    };
    let support: Vec<String> = test_support_crates(&manifests(root)?)?
        .into_iter()
        .map(|d| format!("{d}/"))
        .collect();
    let mut used = vec![false; allow.len()];
    let mut out = Vec::new();
    let mut found = Vec::new();
    let mut sources = Vec::new();
    for rel in files(root).map_err(|e| format!("{}: {e}", root.display()))? {
        let text = match std::fs::read_to_string(root.join(&rel)) {
            Ok(t) => t,
            Err(e) => return Err(format!("{rel}: {e}")),
        };
        found.extend(check_file(&rel, &text).into_iter().filter(|f| {
            !(f.rule == Rule::Command && support.iter().any(|d| rel.starts_with(d.as_str())))
        }));
        if rel.ends_with(".rs") {
            sources.push((rel, text));
        }
    }
    found.extend(circles::import_circles(&sources).into_iter().map(|c| {
        let ties: Vec<String> = c
            .edges
            .iter()
            .map(|(from, to, names)| format!("{from} -> {to} ({})", names.join(", ")))
            .collect();
        Finding {
            rule: Rule::ImportCircle,
            path: c.files[0].clone(),
            line: 0,
            message: format!(
                "{}: {}: {}",
                Rule::ImportCircle.message(),
                c.files.join(", "),
                ties.join("; ")
            ),
        }
    }));
    for f in found {
        match allow
            .iter()
            .position(|a| a.rule == f.rule && a.path == f.path)
        {
            Some(i) => used[i] = true,
            None => out.push(f),
        }
    }
    for (a, used) in allow.iter().zip(used) {
        if !used {
            out.push(Finding {
                rule: a.rule,
                path: ALLOW_FILE.to_string(),
                line: 0,
                message: format!(
                    "the exception for {} matches nothing any more: remove it",
                    a.path
                ),
            });
        }
    }
    Ok(out)
}
