//! Edits the FAT image `images/efiboot.img` in userspace (no mount: vfat cannot be mounted everywhere, and the
//! builder needs no root). Files are replaced in place; when the image has no room, a new image with the same
//! label and every file is made, larger.

use std::io::{Cursor, Read, Write};

use fatfs::{FileSystem, FormatVolumeOptions, FsOptions};

use crate::{Error, Result};

fn fat_err(what: &str, e: std::io::Error) -> Error {
    Error::Value {
        field: "images/efiboot.img".into(),
        message: format!("{what}: {e}"),
    }
}

/// Reads one file (`EFI/BOOT/grub.cfg`) from the image; `None` when it is not there.
pub(crate) fn read_file(image: &[u8], path: &str) -> Result<Option<Vec<u8>>> {
    let fs = FileSystem::new(Cursor::new(image.to_vec()), FsOptions::new())
        .map_err(|e| fat_err("not a FAT image", e))?;
    let root = fs.root_dir();
    let mut f = match root.open_file(path) {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(|e| fat_err(path, e))?;
    Ok(Some(buf))
}

/// Collects every file of the image (path, bytes), directories first.
fn walk(
    dir: &fatfs::Dir<'_, Cursor<Vec<u8>>>,
    prefix: &str,
    out: &mut Vec<(String, Option<Vec<u8>>)>,
) -> std::io::Result<()> {
    for e in dir.iter() {
        let e = e?;
        let name = e.file_name();
        if name == "." || name == ".." {
            continue;
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if e.is_dir() {
            out.push((path.clone(), None));
            walk(&e.to_dir(), &path, out)?;
        } else {
            let mut buf = Vec::new();
            e.to_file().read_to_end(&mut buf)?;
            out.push((path, Some(buf)));
        }
    }
    Ok(())
}

/// Returns a copy of the FAT image with `files` (which must exist in it) replaced.
pub(crate) fn replace_files(image: &[u8], files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    // Read everything, then write into a fresh copy of the same image (same size, label, geometry) first;
    // only if that runs out of space, format a larger one.
    let fs = FileSystem::new(Cursor::new(image.to_vec()), FsOptions::new())
        .map_err(|e| fat_err("not a FAT image", e))?;
    let mut entries = Vec::new();
    walk(&fs.root_dir(), "", &mut entries).map_err(|e| fat_err("reading", e))?;
    let label = fs.volume_label();
    drop(fs);
    for (path, _) in files {
        if !entries
            .iter()
            .any(|(p, d)| d.is_some() && p.eq_ignore_ascii_case(path))
        {
            return Err(fat_err(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not in the image"),
            ));
        }
    }

    let mut img = Cursor::new(image.to_vec());
    match write_into(&mut img, files) {
        Ok(()) => return Ok(img.into_inner()),
        Err(e) => log::info!("efiboot.img has no room in place ({e}); making a larger one"),
    }
    let need: u64 = entries
        .iter()
        .filter_map(|(_, d)| d.as_ref())
        .map(|d| d.len() as u64 + 4096)
        .sum::<u64>()
        + files.iter().map(|(_, d)| d.len() as u64).sum::<u64>();
    let size = ((need * 5 / 4 + 512 * 1024) / 512 + 1) * 512;
    let mut new = Cursor::new(vec![0u8; size as usize]);
    let mut lab = [b' '; 11];
    for (i, b) in label.bytes().take(11).enumerate() {
        lab[i] = b;
    }
    fatfs::format_volume(&mut new, FormatVolumeOptions::new().volume_label(lab))
        .map_err(|e| fat_err("formatting", e))?;
    {
        let fs = FileSystem::new(&mut new, FsOptions::new())
            .map_err(|e| fat_err("opening the new image", e))?;
        let root = fs.root_dir();
        for (path, data) in &entries {
            match data {
                None => {
                    root.create_dir(path).map_err(|e| fat_err(path, e))?;
                }
                Some(d) => {
                    let d = files
                        .iter()
                        .find(|(p, _)| p.eq_ignore_ascii_case(path))
                        .map(|(_, n)| n)
                        .unwrap_or(d);
                    let mut f = root.create_file(path).map_err(|e| fat_err(path, e))?;
                    f.truncate().map_err(|e| fat_err(path, e))?;
                    f.write_all(d).map_err(|e| fat_err(path, e))?;
                }
            }
        }
        drop(root);
        fs.unmount()
            .map_err(|e| fat_err("writing the new image", e))?;
    }
    Ok(new.into_inner())
}

fn write_into(img: &mut Cursor<Vec<u8>>, files: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    let fs = FileSystem::new(&mut *img, FsOptions::new())?;
    {
        let root = fs.root_dir();
        for (path, data) in files {
            let mut f = root.open_file(path)?;
            f.truncate()?;
            f.write_all(data)?;
            f.flush()?;
        }
    }
    fs.unmount()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(size: usize, files: &[(&str, usize)]) -> Vec<u8> {
        let mut img = Cursor::new(vec![0u8; size]);
        fatfs::format_volume(
            &mut img,
            FormatVolumeOptions::new().volume_label(*b"ANACONDA   "),
        )
        .unwrap();
        {
            let fs = FileSystem::new(&mut img, FsOptions::new()).unwrap();
            let root = fs.root_dir();
            root.create_dir("EFI").unwrap();
            root.create_dir("EFI/BOOT").unwrap();
            for (p, n) in files {
                let mut f = root.create_file(p).unwrap();
                f.write_all(&vec![b'x'; *n]).unwrap();
            }
            drop(root);
            fs.unmount().unwrap();
        }
        img.into_inner()
    }

    #[test]
    fn replaces_in_place_when_it_fits() {
        let img = image(
            1024 * 1024,
            &[
                ("EFI/BOOT/BOOTX64.EFI", 100_000),
                ("EFI/BOOT/grub.cfg", 100),
            ],
        );
        let out = replace_files(
            &img,
            &[("EFI/BOOT/grub.cfg", b"linux /vmlinuz inst.ks=x\n".to_vec())],
        )
        .unwrap();
        assert_eq!(out.len(), img.len(), "same image size");
        assert_eq!(
            read_file(&out, "EFI/BOOT/grub.cfg").unwrap().unwrap(),
            b"linux /vmlinuz inst.ks=x\n"
        );
        assert_eq!(
            read_file(&out, "EFI/BOOT/BOOTX64.EFI")
                .unwrap()
                .unwrap()
                .len(),
            100_000
        );
        assert!(read_file(&out, "EFI/BOOT/nope").unwrap().is_none());
    }

    #[test]
    fn makes_a_larger_image_when_full() {
        // A full image: the new grub.cfg cannot fit.
        let size = 512 * 1024;
        let mut img = image(size, &[("EFI/BOOT/grub.cfg", 100)]);
        let free = {
            let fs = FileSystem::new(Cursor::new(img.clone()), FsOptions::new()).unwrap();
            let st = fs.stats().unwrap();
            (st.free_clusters() * st.cluster_size()) as usize
        };
        img = {
            let mut c = Cursor::new(img);
            {
                let fs = FileSystem::new(&mut c, FsOptions::new()).unwrap();
                let mut f = fs.root_dir().create_file("EFI/BOOT/BOOTX64.EFI").unwrap();
                f.write_all(&vec![b'y'; free - 4096]).unwrap();
                drop(f);
                fs.unmount().unwrap();
            }
            c.into_inner()
        };
        let big = vec![b'z'; 64 * 1024];
        let out = replace_files(&img, &[("EFI/BOOT/grub.cfg", big.clone())]).unwrap();
        assert!(out.len() > img.len(), "a larger image");
        assert_eq!(read_file(&out, "EFI/BOOT/grub.cfg").unwrap().unwrap(), big);
        assert_eq!(
            read_file(&out, "EFI/BOOT/BOOTX64.EFI")
                .unwrap()
                .unwrap()
                .len(),
            free - 4096
        );
        let fs = FileSystem::new(Cursor::new(out), FsOptions::new()).unwrap();
        assert_eq!(fs.volume_label().trim_end(), "ANACONDA");
    }

    #[test]
    fn missing_file_is_named() {
        let img = image(512 * 1024, &[("EFI/BOOT/grub.cfg", 10)]);
        let e = replace_files(&img, &[("EFI/BOOT/BOOT.conf", vec![1])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("EFI/BOOT/BOOT.conf"), "{e}");
        assert!(replace_files(b"not fat at all, not at all", &[]).is_err());
    }
}
