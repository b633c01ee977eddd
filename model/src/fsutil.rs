//! Atomic writes: a reader (or a crash) sees the old file or the new one, never half of either.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{io, Error, Result};

/// Writes `data` to `path` through a temporary file in the same directory: write, set `mode`, fsync, rename, fsync
/// the directory. With `clobber == false` an existing file is never replaced ([`Error::Exists`]).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32, clobber: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Missing parents of a private file (no group/other bits) are created 0700, whatever the umask allows: a
    // secrets file must not sit in a directory others can list or, under umask 000, write.
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(if mode & 0o077 == 0 { 0o700 } else { 0o755 })
            .create(dir)
            .map_err(io("creating", dir))?;
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".kubeha-")
        .tempfile_in(dir)
        .map_err(io("creating a temporary file in", dir))?;
    // Set the mode before any byte lands, so secrets are never readable by others, even briefly.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io("setting permissions of", tmp.path()))?;
    tmp.write_all(data).map_err(io("writing", path))?;
    tmp.as_file().sync_all().map_err(io("syncing", path))?;
    if clobber {
        tmp.persist(path)
            .map_err(|e| io("replacing", path)(e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Exists(path.to_path_buf())
            } else {
                io("creating", path)(e.error).into()
            }
        })?;
    }
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_get_private_new_parents() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new/dir/secrets.toml");
        write_atomic(&p, b"x", 0o600, false).unwrap();
        for dir in [d.path().join("new"), d.path().join("new/dir")] {
            let m = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(m, 0o700, "{}", dir.display());
        }
    }

    #[test]
    fn atomic_noclobber_and_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/secrets.toml");
        write_atomic(&p, b"one", 0o600, false).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = write_atomic(&p, b"two", 0o600, false).unwrap_err();
        assert!(matches!(e, Error::Exists(_)), "{e}");
        assert_eq!(
            fs::read(&p).unwrap(),
            b"one",
            "refused write must not change the file"
        );
        write_atomic(&p, b"two", 0o644, true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }
}
