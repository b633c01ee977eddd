//! Small helpers shared by the agent's modules.

use std::path::{Path, PathBuf};

/// `root` joined with an absolute system path (`under(root, "/etc/hosts")`).
pub fn under(root: &Path, system_path: impl AsRef<Path>) -> PathBuf {
    let p = system_path.as_ref();
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Opens `path` (a file under `root`) for reading, refusing one that leads out of the root through a symlink: a
/// test or dry-run root must never hand the agent the host's files (`etc/kubeha/node.toml -> /etc/shadow` would
/// be parsed and quoted in its error). With `/` as the root everything is inside it.
pub fn open_in_root(root: &Path, path: &Path) -> std::io::Result<std::fs::File> {
    let f = std::fs::File::open(path)?;
    let real_root = root.canonicalize()?;
    if real_root != Path::new("/") {
        let real = path.canonicalize()?;
        if !real.starts_with(&real_root) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} leads to {}, outside the root {}: not read",
                    path.display(),
                    real.display(),
                    real_root.display()
                ),
            ));
        }
    }
    Ok(f)
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_in_root_refuses_a_symlink_out_of_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host file\n").unwrap();
        std::fs::write(root.path().join("inside"), "ok\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link"))
            .unwrap();
        std::os::unix::fs::symlink("inside", root.path().join("rel")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).unwrap();
        assert!(open_in_root(root.path(), &root.path().join("inside")).is_ok());
        assert!(open_in_root(root.path(), &root.path().join("rel")).is_ok());
        for bad in ["link", "dir/secret"] {
            let e = open_in_root(root.path(), &root.path().join(bad)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{bad}");
            assert!(e.to_string().contains("outside the root"), "{bad}: {e}");
        }
        // The real root: everything is inside it.
        assert!(open_in_root(Path::new("/"), &root.path().join("link")).is_ok());
    }
}
