//! FAT12/16/32 config drives, read with the fatfs crate.
//!
//! Generic over `Read + Seek` so that the fuzz target (firstboot/fuzz/fuzz_targets/fat.rs) runs this very file on
//! in-memory images; it depends on nothing else in the crate.

use std::io::{Read, Seek, SeekFrom, Write};

use anyhow::{Context as _, Result};

/// Reads a device or image in place; writes are refused (fatfs wants `Write` but must never get to use it here).
pub struct ReadOnly<R>(pub R);

impl<R: Read> Read for ReadOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
impl<R: Seek> Seek for ReadOnly<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}
impl<R> Write for ReadOnly<R> {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "config drive is read-only",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The volume label of the FAT filesystem on `dev`; `None` when fatfs does not take it for one.
pub fn label<R: Read + Seek>(dev: R) -> Option<String> {
    let fs = fatfs::FileSystem::new(ReadOnly(dev), fatfs::FsOptions::new()).ok()?;
    Some(fs.volume_label().trim_end().to_string())
}

/// Reads the top-level file `name` (at most `max` bytes) from the FAT filesystem on `dev`; `Ok(None)` when there is
/// no such file.
pub fn read_file<R: Read + Seek>(dev: R, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
    let fs = fatfs::FileSystem::new(ReadOnly(dev), fatfs::FsOptions::new())
        .context("reading the FAT filesystem")?;
    let mut f = match fs.root_dir().open_file(name) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {name}")),
    };
    let mut data = Vec::new();
    (&mut f)
        .take(max + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("reading {name}"))?;
    if data.len() as u64 > max {
        anyhow::bail!("{name} is larger than {max} bytes");
    }
    Ok(Some(data))
}
