//! The step engine. A [`Step`] checks before it acts, so running it twice changes nothing the second time; the
//! engine journals finished steps so a run killed at any moment converges when started again.
//!
//! Every path a step touches is joined onto [`Context::root`], and every command goes through [`Context::runner`].
//! Every file a step writes, removes or creates goes through [`Context`]'s write methods ([`Context::write_file`],
//! [`Context::write_secret`], [`Context::remove`], [`Context::mkdir`]): they take system paths
//! (`/etc/kubernetes/admin.conf`), refuse one that would land outside the root, and write atomically.
//!
//! The journal (`/var/lib/kubeha/state`) is rewritten atomically after each step. A step that was running when the
//! agent died is not in the journal and runs again; being idempotent, it converges. The journal is a record, not the
//! truth, for the steps that say [`Step::rechecks`]: the cluster steps run on every run and check the node and the
//! cluster themselves (a journal listing `cluster-worker-join` on a node with no kubelet.conf joins again). For the crash test
//! only (cargo feature `crash-hook`, never in a shipped build), `KUBEHA_CRASH_AFTER=<step>` aborts right after that
//! step's work (before it is journaled), and `KUBEHA_CRASH_AFTER=<step>+journal` right after it is journaled.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use kubeha_model::cluster::{Node, Role};
use kubeha_model::NodeConfig;
use serde::{Deserialize, Serialize};

use crate::runner::{Cmd, Output, Runner};

/// The journal of finished steps.
pub const JOURNAL: &str = "/var/lib/kubeha/state";
/// Written when every step has finished; the unit's `ConditionPathExists=!` keeps the agent from running again.
pub const DONE: &str = "/var/lib/kubeha/done";

/// Everything a step may use. Fields never change in meaning.
pub struct Context {
    /// The system root (`/` on a node, a temp dir in tests).
    pub root: PathBuf,
    /// The command runner.
    pub runner: Box<dyn Runner>,
    /// The validated node config.
    pub config: NodeConfig,
    /// This node's entry in the cluster (`masters[]` or `workers[]` of `config.cluster`), resolved once with the
    /// identity ([`crate::identity::Identity::node`]): its name, address, MAC and disk.
    pub me: Node,
    /// This node's role.
    pub role: Role,
    /// Dry run: write files under root, print commands, no network I/O.
    pub dry_run: bool,
}

impl Context {
    /// `root` joined with an absolute system path: `ctx.path("/etc/hosts")`, for reading and asking whether a file
    /// exists. Writes go through [`Context::resolve`] (the write methods below).
    pub fn path(&self, system_path: impl AsRef<Path>) -> PathBuf {
        crate::util::under(&self.root, system_path)
    }

    /// Where a write to the file `system_path` lands under the root. Refused: a path that is not absolute, one with
    /// `..`, and one whose directory leads out of the root through a symlink (a test or dry-run root must never
    /// write into the host). The file itself may be a symlink: atomic writes and removal replace or remove the
    /// link, never follow it.
    pub fn resolve(&self, system_path: &str) -> Result<PathBuf> {
        self.resolve_in_root(system_path, false)
    }

    /// [`Context::resolve`] for a directory that is itself acted on (created, its mode set): it must not lead out
    /// of the root either.
    fn resolve_dir(&self, system_path: &str) -> Result<PathBuf> {
        self.resolve_in_root(system_path, true)
    }

    fn resolve_in_root(&self, system_path: &str, follow_last: bool) -> Result<PathBuf> {
        let sp = Path::new(system_path);
        if !sp.is_absolute() || sp.components().any(|c| c == Component::ParentDir) {
            bail!("{system_path}: not an absolute system path without '..'; refusing to write it");
        }
        let p = self.path(sp);
        let root = self
            .root
            .canonicalize()
            .with_context(|| format!("resolving the root {}", self.root.display()))?;
        // The deepest directory above the target (or the target, when followed) that exists, symlinks followed.
        let mut dir = if follow_last {
            Some(p.as_path())
        } else {
            p.parent()
        };
        while let Some(d) = dir {
            if d.exists() {
                let real = d
                    .canonicalize()
                    .with_context(|| format!("resolving {}", d.display()))?;
                if !real.starts_with(&root) {
                    bail!(
                        "{system_path}: {} leads to {}, outside the root {}; refusing to write it",
                        d.display(),
                        real.display(),
                        root.display()
                    );
                }
                break;
            }
            dir = d.parent();
        }
        Ok(p)
    }

    /// Reads a system file as text; `None` when it does not exist.
    pub fn read(&self, system_path: &str) -> Result<Option<String>> {
        let p = self.path(system_path);
        let text = crate::util::open_in_root(&self.root, &p).and_then(|mut f| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut f, &mut s).map(|_| s)
        });
        match text {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Writes a system file atomically (temporary file, fsync, rename, fsync of the directory: a crash leaves the
    /// old file or the new one) unless it already has exactly this content and mode; returns whether it changed
    /// anything. Missing parent directories are created (0755; 0700 for a file only its owner may read).
    pub fn write_file(
        &self,
        system_path: &str,
        content: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<bool> {
        use std::os::unix::fs::PermissionsExt;
        let content = content.as_ref();
        let p = self.resolve(system_path)?;
        if let Ok(meta) = std::fs::metadata(&p) {
            if meta.permissions().mode() & 0o7777 == mode
                && std::fs::read(&p).is_ok_and(|b| b == content)
            {
                log::debug!("{system_path} is up to date");
                return Ok(false);
            }
        }
        log::info!("writing {system_path}");
        kubeha_model::fsutil::write_atomic(&p, content, mode, true)
            .with_context(|| format!("writing {system_path}"))?;
        Ok(true)
    }

    /// Writes a file that holds secret material (a bootstrap token, a CA key) with [`Context::write_file`]: the file
    /// 0600 and its directory 0700, also when the directory already existed, so no other user can read the file
    /// or list its directory.
    pub fn write_secret(&self, system_path: &str, content: impl AsRef<[u8]>) -> Result<bool> {
        use std::os::unix::fs::PermissionsExt;
        let parent = Path::new(system_path)
            .parent()
            .and_then(Path::to_str)
            .filter(|p| *p != "/")
            .with_context(|| format!("{system_path}: a secret needs its own directory, not /"))?;
        if let Some(above) = Path::new(parent).parent().and_then(Path::to_str) {
            self.mkdir(above, 0o755)?;
        }
        self.mkdir(parent, 0o700)?;
        let dir = self.resolve_dir(parent)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("securing {parent}"))?;
        self.write_file(system_path, content, 0o600)
    }

    /// Removes a system file, or a directory with everything in it (a symlink itself, never what it points to);
    /// returns whether there was anything to remove.
    pub fn remove(&self, system_path: &str) -> Result<bool> {
        let p = self.resolve(system_path)?;
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("inspecting {system_path}")),
            Ok(m) => {
                if m.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                }
                .with_context(|| format!("removing {system_path}"))?;
                log::info!("removed {system_path}");
                Ok(true)
            }
        }
    }

    /// Creates a system directory and its missing parents with `mode` (an existing one keeps its mode).
    pub fn mkdir(&self, system_path: &str, mode: u32) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let p = self.resolve_dir(system_path)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&p)
            .with_context(|| format!("creating {system_path}"))
    }

    /// Runs a command that must succeed.
    pub fn run(&self, cmd: Cmd) -> Result<Output> {
        self.runner.run(&cmd)
    }

    /// Asks the system a question before acting: runs `probe` and returns `pred(output)`. With a runner that does
    /// not really run commands (a dry run, the recording test runner) the probe is still shown and the answer is
    /// "act", so the output lists every command a fresh node would run.
    pub fn needs(&self, probe: Cmd, pred: impl FnOnce(&Output) -> bool) -> Result<bool> {
        let out = self.runner.output(&probe)?;
        Ok(!self.runner.is_real() || pred(&out))
    }

    /// The Enterprise Linux major release of the root (`VERSION_ID` of `/etc/os-release`), else the cluster's
    /// `install.el`.
    pub fn el_major(&self) -> u8 {
        self.read("/etc/os-release")
            .ok()
            .flatten()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let v = l.strip_prefix("VERSION_ID=")?.trim_matches('"');
                    v.split('.').next()?.parse().ok()
                })
            })
            .unwrap_or(self.config.cluster.install.el)
    }

    /// The bundle directory on the node (`bundle.path`, under the root).
    pub fn bundle_dir(&self) -> PathBuf {
        self.path(&self.config.bundle.path)
    }
}

/// One idempotent step.
pub trait Step {
    /// Short stable name, used in the journal and on the console.
    fn name(&self) -> &'static str;
    /// Whether this step applies to the node (e.g. masters only).
    fn applies(&self, _ctx: &Context) -> bool {
        true
    }
    /// Does the work; must check before acting so that a second run is a no-op.
    fn run(&self, ctx: &mut Context) -> Result<()>;
    /// The phase the step belongs to, reported to `kubeha.report=` as one unit (`os`, `packages`, `runtime`,
    /// `cluster`).
    fn phase(&self) -> &'static str {
        "cluster"
    }
    /// Whether the step runs on every run even when the journal lists it: the steps whose outcome lives outside
    /// this node (the cluster's etcd members and Nodes) or that a `kubeadm reset` undoes check the system each time
    /// instead of trusting the journal (their `run` checks first, so a finished one is a no-op).
    fn rechecks(&self) -> bool {
        false
    }
}

/// The journal: which steps finished, for which node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The node the journal belongs to.
    pub node: String,
    /// Finished steps, in order.
    pub done: Vec<String>,
}

impl Journal {
    /// Loads the journal (empty when there is none).
    pub fn load(root: &Path) -> Result<Journal> {
        let p = crate::util::under(root, JOURNAL);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("parsing the journal {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Saves it atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        let p = crate::util::under(root, JOURNAL);
        let mut data = serde_json::to_vec_pretty(self)?;
        data.push(b'\n');
        kubeha_model::fsutil::write_atomic(&p, &data, 0o644, true)
            .with_context(|| format!("writing {}", p.display()))
    }
}

/// The crash test's hook (tests/crash.rs): aborts where `KUBEHA_CRASH_AFTER` says.
#[cfg(feature = "crash-hook")]
fn crash_point(step: &str, journaled: bool) {
    if let Ok(want) = std::env::var("KUBEHA_CRASH_AFTER") {
        let hit = if journaled {
            want == format!("{step}+journal")
        } else {
            want == step
        };
        if hit {
            eprintln!("kubeha-firstboot: KUBEHA_CRASH_AFTER={want}: aborting");
            std::process::abort();
        }
    }
}

/// Without the `crash-hook` feature the engine has no crash hook.
#[cfg(not(feature = "crash-hook"))]
fn crash_point(_step: &str, _journaled: bool) {}

/// What the engine tells as it goes: the agent's status reporter ([`crate::status::Reporter`]).
pub trait Progress {
    /// Looks at the node after a phase, for the next reports.
    fn observe(&mut self, ctx: &Context);
    /// A step starts.
    fn step(&mut self, phase: &str, step: &str);
    /// A phase finished.
    fn phase_done(&mut self, phase: &str);
    /// A step failed.
    fn failed(&mut self, phase: &str, step: &str, err: &anyhow::Error);
    /// Every step finished.
    fn done(&mut self);
}

/// Runs the steps in order, skipping those the journal lists, reporting each phase. Writes the done marker at the
/// end.
pub fn run(ctx: &mut Context, steps: &[Box<dyn Step>], reporter: &mut dyn Progress) -> Result<()> {
    let root = ctx.root.clone();
    let mut journal = Journal::load(&root)?;
    if journal.node != ctx.me.name {
        if !journal.done.is_empty() {
            log::warn!(
                "the journal belongs to '{}', not '{}': starting over",
                journal.node,
                ctx.me.name
            );
        }
        journal = Journal {
            node: ctx.me.name.clone(),
            done: Vec::new(),
        };
        journal.save(&root)?;
    }
    let mut phase: Option<&'static str> = None;
    for step in steps {
        let name = step.name();
        if !step.applies(ctx) {
            console(&format!("[skip] {name} (not for a {})", ctx.role));
            continue;
        }
        if phase != Some(step.phase()) {
            if let Some(p) = phase {
                if p == "cluster" {
                    reporter.observe(ctx);
                }
                reporter.phase_done(p);
            }
            phase = Some(step.phase());
        }
        let journaled = journal.done.iter().any(|d| d == name);
        if journaled && !step.rechecks() {
            console(&format!("[done] {name} (journal)"));
            continue;
        }
        reporter.step(step.phase(), name);
        if let Err(e) = step.run(ctx) {
            console(&format!("[FAIL] {name}: {e:#}"));
            reporter.failed(step.phase(), name, &e);
            return Err(e.context(format!("step {name}")));
        }
        crash_point(name, false);
        if !journaled {
            journal.done.push(name.to_string());
            journal.save(&root)?;
        }
        crash_point(name, true);
        console(&format!("[ ok ] {name}"));
    }
    if let Some(p) = phase {
        // The VIP and etcd's members, as this node sees them once its cluster phase ran (masters).
        if p == "cluster" {
            reporter.observe(ctx);
        }
        reporter.phase_done(p);
    }
    kubeha_model::fsutil::write_atomic(
        &crate::util::under(&root, DONE),
        format!("{}\n", crate::util::now_rfc3339()).as_bytes(),
        0o644,
        true,
    )
    .context("writing the done marker")?;
    reporter.observe(ctx);
    reporter.done();
    console("done: this node is prepared");
    Ok(())
}

/// One line on the console (stdout; the unit sends it to the journal and the console).
pub fn console(line: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "kubeha-firstboot: {line}");
    let _ = o.flush();
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::providers::fixtures::config_for;
    use crate::runner::RecordingRunner;

    fn ctx(root: &Path) -> Context {
        let config = config_for("k8s-master01", Role::Master);
        Context {
            root: root.to_path_buf(),
            runner: Box::new(RecordingRunner::default()),
            me: config.cluster.masters[0].clone(),
            config,
            role: Role::Master,
            dry_run: true,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// Every write method, with a path that climbs out, a relative path and a directory that is a symlink out of
    /// the root: refused, and nothing is written outside.
    #[test]
    fn every_write_refuses_paths_outside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("etc/escape")).unwrap();
        std::fs::write(outside.path().join("victim"), "keep").unwrap();
        let c = ctx(&root);
        for p in [
            "/etc/../../x",
            "etc/x",
            "/etc/escape/victim",
            "/etc/escape/new/x",
        ] {
            let calls: [(&str, Result<()>); 4] = [
                ("write_file", c.write_file(p, "x", 0o644).map(drop)),
                ("write_secret", c.write_secret(p, "x").map(drop)),
                ("remove", c.remove(p).map(drop)),
                ("mkdir", c.mkdir(p, 0o755)),
            ];
            for (what, r) in calls {
                let e = r.expect_err(&format!("{what}({p}) must be refused"));
                assert!(format!("{e:#}").contains("refusing"), "{what}({p}): {e:#}");
            }
        }
        assert!(
            !d.path().join("x").exists(),
            "nothing written above the root"
        );
        assert_eq!(
            std::fs::read_to_string(outside.path().join("victim")).unwrap(),
            "keep"
        );
        assert!(!outside.path().join("new").exists());
    }

    #[test]
    fn write_file_sets_the_mode_and_skips_an_identical_file() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path());
        for (p, m) in [
            ("/etc/a/file.conf", 0o644),
            ("/usr/libexec/x/check.sh", 0o700),
        ] {
            assert!(c.write_file(p, "one\n", m).unwrap(), "{p}: first write");
            assert_eq!(mode(&c.path(p)), m, "{p}");
            assert!(
                !c.write_file(p, "one\n", m).unwrap(),
                "{p}: same bytes and mode"
            );
            assert!(
                c.write_file(p, "one\n", 0o600).unwrap(),
                "{p}: another mode rewrites"
            );
            assert_eq!(mode(&c.path(p)), 0o600, "{p}");
        }
        assert_eq!(mode(&d.path().join("etc/a")), 0o755);
    }

    /// The file is replaced (a new inode), never rewritten in place: a reader holding the old file keeps the old
    /// bytes, and no temporary file is left behind.
    #[test]
    fn write_file_replaces_atomically() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path());
        c.write_file("/etc/x.conf", "old", 0o644).unwrap();
        let held = d.path().join("held");
        std::fs::hard_link(c.path("/etc/x.conf"), &held).unwrap();
        let ino = std::fs::metadata(&held).unwrap().ino();
        c.write_file("/etc/x.conf", "new", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&held).unwrap(), "old");
        assert_eq!(
            std::fs::read_to_string(c.path("/etc/x.conf")).unwrap(),
            "new"
        );
        assert_ne!(std::fs::metadata(c.path("/etc/x.conf")).unwrap().ino(), ino);
        let names: Vec<String> = std::fs::read_dir(d.path().join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["x.conf"], "no temporary file left");
    }

    #[test]
    fn write_secret_is_0600_in_a_0700_directory() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path());
        // An existing, too open directory is tightened.
        std::fs::create_dir_all(d.path().join("etc/kubeha")).unwrap();
        std::fs::set_permissions(
            d.path().join("etc/kubeha"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert!(c.write_secret("/etc/kubeha/join.yaml", "token").unwrap());
        assert_eq!(mode(&c.path("/etc/kubeha/join.yaml")), 0o600);
        assert_eq!(mode(&c.path("/etc/kubeha")), 0o700);
        assert!(!c.write_secret("/etc/kubeha/join.yaml", "token").unwrap());
        // A new directory is created 0700, the one above it 0755.
        c.write_secret("/var/lib/new/secret", "k").unwrap();
        assert_eq!(mode(&c.path("/var/lib/new")), 0o700);
        assert_eq!(mode(&c.path("/var/lib")), 0o755);
        // Never the root itself.
        let before = mode(d.path());
        assert!(c.write_secret("/top-level", "k").is_err());
        assert_eq!(mode(d.path()), before);
    }

    #[test]
    fn remove_takes_files_trees_and_symlinks_not_their_targets() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path());
        c.write_file("/var/lib/etcd/member/snap/db", "x", 0o600)
            .unwrap();
        c.write_file("/etc/kubernetes/admin.conf", "x", 0o600)
            .unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, c.path("/etc/kubernetes/link")).unwrap();
        for p in [
            "/var/lib/etcd/member",
            "/etc/kubernetes/admin.conf",
            "/etc/kubernetes/link",
        ] {
            assert!(c.remove(p).unwrap(), "{p}");
            assert!(c.path(p).symlink_metadata().is_err(), "{p} is gone");
            assert!(!c.remove(p).unwrap(), "{p}: nothing left to remove");
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(c.path("/var/lib/etcd").is_dir(), "only the named tree goes");
    }

    #[test]
    fn mkdir_creates_with_the_mode_and_keeps_an_existing_one() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path());
        c.mkdir("/var/lib/kubeha/cluster", 0o750).unwrap();
        assert_eq!(mode(&c.path("/var/lib/kubeha/cluster")), 0o750 & !umask());
        std::fs::set_permissions(
            c.path("/var/lib/kubeha/cluster"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        c.mkdir("/var/lib/kubeha/cluster", 0o755).unwrap();
        assert_eq!(mode(&c.path("/var/lib/kubeha/cluster")), 0o700);
    }

    /// The process umask, read from a directory created with the default mode (0777).
    fn umask() -> u32 {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("probe");
        std::fs::DirBuilder::new().create(&p).unwrap();
        !mode(&p) & 0o777
    }
}
