//! The executor: the only part of `kubeha pxe` that touches the file system or runs a tool. It reads what the
//! plan needs (the bundle's manifest, the base ISO's release), then carries out a plan in a staging directory
//! (extraction through the runner, copies, links, the rendered files) and moves the tree into place.

use std::path::{Path, PathBuf};

use kubeha_runner::Cmd;
use tempfile::TempDir;

use super::plan::{Inputs, Plan, Src, Step};
use super::render::Rendered;
use super::spec::{Boot, PxeSpec, SYSLINUX};
use crate::tool::run;
use crate::{bundle, io, Error, Result};

/// Checks the agent, the base ISO and the bundle, and reads what the plan needs; then makes the staging directory
/// next to the output, where the ISO is inspected and the tree is then written.
pub(crate) fn read_inputs(spec: &PxeSpec) -> Result<(Inputs, TempDir)> {
    spec.agent.check()?;
    if let Boot::Iso(iso) = &spec.boot {
        // A truncated or non-ISO base is named before the bundle is hashed (seconds against minutes).
        let size = std::fs::metadata(iso).map_err(io("reading", iso))?.len();
        crate::iso::check_volume_size(iso, size)?;
    }
    let verified = bundle::verify(&spec.bundle)?;
    let manifest = &verified.manifest;
    let staging = crate::staging_dir(&spec.output, ".kubeha-pxe-")?;
    let iso_el = match &spec.boot {
        Boot::Files { kernel, initrd } => {
            // Named as the copy would, before the plan asks for --os-url.
            for f in [kernel, initrd] {
                std::fs::File::open(f).map_err(io("copying", f))?;
            }
            None
        }
        Boot::Iso(iso) => {
            let info_dir = staging.path().join(".inspect");
            let b = crate::iso::inspect(iso, &info_dir)?;
            if b.arch != manifest.profile.arch {
                return Err(Error::WrongArch {
                    path: iso.clone(),
                    iso_arch: b.arch,
                    want: manifest.profile.arch.clone(),
                });
            }
            crate::iso::check_release(iso, b.el, manifest.profile.el)?;
            std::fs::remove_dir_all(&info_dir).map_err(io("removing", &info_dir))?;
            b.el
        }
    };
    let inputs = Inputs {
        bundle_files: manifest.files.iter().map(|f| f.path.clone()).collect(),
        signature: spec
            .bundle
            .join(kubeha_model::bundle::MANIFEST_SIGNATURE)
            .is_file(),
        arch: manifest.profile.arch.clone(),
        packages: manifest.requested_packages(),
        iso_el,
        loaders: SYSLINUX
            .iter()
            .map(|(file, cands)| {
                let found = cands.iter().map(PathBuf::from).find(|p| p.is_file());
                (file.to_string(), found)
            })
            .collect(),
    };
    Ok((inputs, staging))
}

/// Carries out `plan` in `staging`, writes `files` there, and moves it to `output` (replacing a tree there).
pub(crate) fn execute(
    plan: &Plan,
    files: &[Rendered],
    staging: TempDir,
    output: &Path,
) -> Result<()> {
    let root = staging.path();
    for step in &plan.steps {
        step_in(root, step)?;
    }
    for f in files {
        let p = root.join(&f.path);
        if f.secret {
            kubeha_model::fsutil::write_atomic(&p, &f.bytes, f.mode, true).map_err(|e| {
                Error::Value {
                    field: p.display().to_string(),
                    message: e.to_string(),
                }
            })?;
            if let Some(gid) = plan.secret_group {
                std::os::unix::fs::chown(&p, None, Some(gid))
                    .map_err(io("setting the group of", &p))?;
            }
        } else {
            write(&p, &f.bytes, f.mode)?;
        }
    }
    if output.exists() {
        std::fs::remove_dir_all(output).map_err(io("replacing", output))?;
    }
    let kept = staging.keep();
    set_mode(&kept, 0o755)?;
    std::fs::rename(&kept, output).map_err(io("writing", output))?;
    Ok(())
}

fn step_in(root: &Path, step: &Step) -> Result<()> {
    let src = |s: &Src| match s {
        Src::Host(p) => p.clone(),
        Src::Tree(rel) => root.join(rel),
    };
    match step {
        Step::Extract { iso, to } => {
            let to = root.join(to);
            run(&Cmd::new("xorriso")
                .env("LANG", "C")
                .args(["-osirrox", "on", "-indev"])
                .arg_path(iso)
                .arg("-extract")
                .arg("/")
                .arg_path(&to))?;
            make_writable(&to)
        }
        Step::Copy { from, to, mode } => copy(&src(from), &root.join(to), *mode),
        Step::CopyIfFile {
            from,
            to,
            mode,
            then,
        } => {
            let from = src(from);
            if from.is_file() {
                copy(&from, &root.join(to), *mode)?;
                for s in then {
                    step_in(root, s)?;
                }
            }
            Ok(())
        }
        Step::Link { from, to } => link_or_copy(from, &root.join(to)),
    }
}

fn write(p: &Path, data: &[u8], mode: u32) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    std::fs::write(p, data).map_err(io("writing", p))?;
    set_mode(p, mode)
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    Ok(
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(io("writing", p))?,
    )
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    std::fs::copy(from, to).map_err(io("copying", from))?;
    set_mode(to, mode)
}

/// Hard-links a bundle file into the tree (bundles are large), copying across filesystems.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).map_err(io("copying", from))?;
    }
    Ok(())
}

fn make_writable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        set_mode(&d, 0o755)?;
        for e in std::fs::read_dir(&d).map_err(io("reading", &d))? {
            let p = e.map_err(io("reading", &d))?.path();
            let m = std::fs::symlink_metadata(&p).map_err(io("reading", &p))?;
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let mode = m.permissions().mode() | 0o644;
                set_mode(&p, mode & 0o7777)?;
            }
        }
    }
    Ok(())
}
