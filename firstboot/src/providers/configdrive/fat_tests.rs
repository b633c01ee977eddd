//! The FAT reader (fat.rs) on volumes made by mkfs.fat + mcopy, and on hostile variants of them: every hostile one
//! is an error naming what is wrong, never a panic or a hang.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use super::fat::{self, check_boot_sector};
use super::mock_tests::sh;
use super::*;
use crate::providers::{fixtures, parse_config};

/// node.toml padded with comments to span several 512-byte clusters.
fn node_toml() -> Vec<u8> {
    let mut s = fixtures::config().to_toml();
    for i in 0..40 {
        s.push_str(&format!(
            "# padding line {i:02} so that the file spans clusters\n"
        ));
    }
    s.into_bytes()
}

/// Runs `mkfs.fat -C -n KUBEHA ARGS IMG KIB`, then `mcopy`s `files` (name, content) in order; an empty content
/// makes a directory, a name starting with `-` deletes that file (to leave holes that fragment the next one).
fn mkfs(dir: &Path, name: &str, kib: u32, args: &[&str], files: &[(&str, &[u8])]) -> PathBuf {
    let img = dir.join(format!("{name}.img"));
    sh(Command::new("mkfs.fat")
        .args(["-C", "-n", "KUBEHA"])
        .args(args)
        .arg(&img)
        .arg(kib.to_string()));
    for (f, content) in files {
        if let Some(gone) = f.strip_prefix('-') {
            sh(Command::new("mdel")
                .arg("-i")
                .arg(&img)
                .arg(format!("::{gone}")));
        } else if content.is_empty() {
            sh(Command::new("mmd")
                .arg("-i")
                .arg(&img)
                .arg(format!("::{f}")));
        } else {
            let src = dir.join(format!("{name}.{f}"));
            std::fs::write(&src, content).unwrap();
            sh(Command::new("mcopy")
                .arg("-i")
                .arg(&img)
                .arg(&src)
                .arg(format!("::{f}")));
        }
    }
    img
}

/// Runs `f` on another thread and fails the test if it takes longer than 20 s (a hang) or panics.
fn within<T: Send + 'static>(case: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{case}: no answer within 20 s (a hang)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{case}: panicked"),
    }
}

/// An image that reads as zeros from the end of `head` to `len`, without holding them.
#[derive(Clone)]
struct Padded {
    head: Vec<u8>,
    len: u64,
    pos: u64,
}

impl Padded {
    fn with_len(mut self, len: u64) -> Self {
        self.len = len;
        self
    }
}

impl Read for Padded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.len.saturating_sub(self.pos).min(buf.len() as u64) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = *self.head.get(self.pos as usize + i).unwrap_or(&0);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Padded {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

fn set16(img: &mut [u8], at: usize, v: u16) {
    img[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn set32(img: &mut [u8], at: usize, v: u32) {
    img[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Sets cluster `c`'s entry in the first FAT.
fn set_fat(img: &mut [u8], geo: &fat::Geometry, c: u32, v: u32) {
    let at = geo.fat_offset as usize;
    match geo.fat_type {
        fat::FatType::Fat12 => {
            let at = at + c as usize * 3 / 2;
            let old = u16::from_le_bytes([img[at], img[at + 1]]);
            let new = if c.is_multiple_of(2) {
                (old & 0xf000) | v as u16
            } else {
                (old & 0x000f) | (v as u16) << 4
            };
            set16(img, at, new);
        }
        fat::FatType::Fat16 => set16(img, at + c as usize * 2, v as u16),
        fat::FatType::Fat32 => set32(img, at + c as usize * 4, v),
    }
}

/// The offset of the root directory's first cluster or region.
fn root_at(geo: &fat::Geometry) -> usize {
    if geo.fat_type == fat::FatType::Fat32 {
        (geo.data_offset + u64::from(geo.root_cluster - 2) * geo.cluster_size) as usize
    } else {
        geo.root_offset as usize
    }
}

/// The offset of node.toml's short entry (`NODE~1.TOM`) in the root directory.
fn entry_at(img: &[u8], geo: &fat::Geometry) -> usize {
    let root = root_at(geo);
    (root..root + 4096)
        .step_by(32)
        .find(|&o| &img[o..o + 11] == b"NODE~1  TOM")
        .expect("node.toml's short entry")
}

fn first_cluster(img: &[u8], entry: usize) -> u32 {
    u32::from(u16::from_le_bytes([img[entry + 20], img[entry + 21]])) << 16
        | u32::from(u16::from_le_bytes([img[entry + 26], img[entry + 27]]))
}

fn geometry(img: &[u8]) -> fat::Geometry {
    check_boot_sector(&img[..512], img.len() as u64).unwrap()
}

#[test]
fn real_fat12_16_32_volumes_read() {
    let d = tempfile::tempdir().unwrap();
    let toml = node_toml();
    let other = vec![b'x'; 1500];
    for (name, kib, args, fat_type) in [
        ("fat12", 1440, &[][..], fat::FatType::Fat12),
        (
            "fat12-4k-sectors",
            8192,
            &["-S", "4096"][..],
            fat::FatType::Fat12,
        ),
        (
            "fat16",
            4096,
            &["-F", "16", "-s", "1"][..],
            fat::FatType::Fat16,
        ),
        (
            "fat16-default",
            65536,
            &["-F", "16"][..],
            fat::FatType::Fat16,
        ),
        ("fat32", 34000, &["-F", "32"][..], fat::FatType::Fat32),
        (
            "fat32-1fat",
            33300,
            &["-F", "32", "-s", "1", "-f", "1"][..],
            fat::FatType::Fat32,
        ),
    ] {
        // a.bin is deleted again, so on FAT12/16 node.toml fills its hole and goes on after b.bin: a fragmented
        // chain (on FAT32 mtools follows FSInfo's next-free hint instead).
        let files: &[(&str, &[u8])] = &[
            ("a.bin", &other),
            ("b.bin", &other),
            ("-a.bin", b""),
            ("node.toml", &toml),
            ("sub", b""),
        ];
        let img = mkfs(d.path(), name, kib, args, files);
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(geometry(&bytes).fat_type, fat_type, "{name}");
        assert_eq!(
            probe(&img).unwrap(),
            Some((FsKind::Fat, "KUBEHA".into())),
            "{name}"
        );
        let data = read_node_toml(&img)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: node.toml not found"));
        assert_eq!(data, toml, "{name}");
        assert_eq!(
            parse_config(&data, name, None).unwrap(),
            fixtures::config(),
            "{name}"
        );
        assert_eq!(
            read_file(&img, "b.bin").unwrap(),
            Some(other.clone()),
            "{name}"
        );
        assert_eq!(read_file(&img, "a.bin").unwrap(), None, "{name}: deleted");
        assert_eq!(read_file(&img, "missing.toml").unwrap(), None, "{name}");
        assert_eq!(
            read_file(&img, "sub").unwrap(),
            None,
            "{name}: a directory is not the file"
        );
    }
}

/// A copy of `base` changed by `f`, as long as `base` (zeros past the head when `head` is shorter).
fn patched(base: &[u8], head: usize, f: impl FnOnce(&mut Vec<u8>)) -> Padded {
    let mut h = base[..head.min(base.len())].to_vec();
    f(&mut h);
    Padded {
        head: h,
        len: base.len() as u64,
        pos: 0,
    }
}

#[test]
fn hostile_volumes_are_errors_naming_the_field() {
    let d = tempfile::tempdir().unwrap();
    let toml = node_toml();
    let files: &[(&str, &[u8])] = &[("node.toml", &toml)];
    let b12 = std::fs::read(mkfs(d.path(), "b12", 1440, &[], files)).unwrap();
    let b16 = std::fs::read(mkfs(d.path(), "b16", 4096, &["-F", "16", "-s", "1"], files)).unwrap();
    let b32 = std::fs::read(mkfs(
        d.path(),
        "b32",
        33300,
        &["-F", "32", "-s", "1", "-f", "1"],
        files,
    ))
    .unwrap();
    let (g12, g16, g32) = (geometry(&b12), geometry(&b16), geometry(&b32));
    let (e12, e16) = (entry_at(&b12, &g12), entry_at(&b16, &g16));
    let (c12, c16) = (first_cluster(&b12, e12), first_cluster(&b16, e16));
    let need12 = (toml.len() as u64).div_ceil(g12.cluster_size);
    assert!(need12 >= 3, "node.toml spans {need12} clusters");
    // The FAT32 volume is 33 MB of mostly zeros: keep its boot sector, FAT, root directory and node.toml.
    let h32 = g32.data_offset as usize + (64 << 10);
    let r32 = root_at(&g32);
    let last32 = g32.clusters + 1;
    let all = usize::MAX;

    // (case, image, file looked up, what the error must say)
    let cases: Vec<(&str, Padded, &str, String)> = vec![
        // Boot sector fields, on the FAT12 volume.
        ("no signature", patched(&b12, all, |i| i[510] = 0), "node.toml", "no 55 AA signature at byte 510".into()),
        ("bytes per sector 3", patched(&b12, all, |i| set16(i, 11, 3)), "node.toml",
         "FAT boot sector: bytes per sector 3 is not 512/1024/2048/4096".into()),
        ("bytes per sector 0", patched(&b12, all, |i| set16(i, 11, 0)), "node.toml",
         "bytes per sector 0 is not".into()),
        ("bytes per sector 1024 on a 1.44 MB image", patched(&b12, all, |i| set16(i, 11, 1024)), "node.toml",
         "total sectors 2880 of 1024 bytes make 2949120 bytes, but the device holds only 1474560".into()),
        ("sectors per cluster 0", patched(&b12, all, |i| i[13] = 0), "node.toml",
         "sectors per cluster 0 is not a power of two".into()),
        ("sectors per cluster 6", patched(&b12, all, |i| i[13] = 6), "node.toml",
         "sectors per cluster 6 is not a power of two".into()),
        ("128 KiB clusters", patched(&b12, all, |i| { set16(i, 11, 1024); i[13] = 128 }), "node.toml",
         "131072-byte clusters, over 64 KiB".into()),
        ("reserved sectors 0", patched(&b12, all, |i| set16(i, 14, 0)), "node.toml", "reserved sectors is 0".into()),
        ("FAT count 0", patched(&b12, all, |i| i[16] = 0), "node.toml", "FAT count 0 is not 1 or 2".into()),
        ("FAT count 3", patched(&b12, all, |i| i[16] = 3), "node.toml", "FAT count 3 is not 1 or 2".into()),
        ("root entries 0", patched(&b12, all, |i| set16(i, 17, 0)), "node.toml",
         "root entries is 0 on FAT12/16".into()),
        ("root entries 17", patched(&b12, all, |i| set16(i, 17, 17)), "node.toml",
         "root entries 17 do not fill whole sectors of 512 bytes".into()),
        ("no total sectors", patched(&b12, all, |i| set16(i, 19, 0)), "node.toml",
         "total sectors is 0 in both the 16-bit and the 32-bit field".into()),
        ("both total sectors", patched(&b12, all, |i| set32(i, 32, 2880)), "node.toml",
         "total sectors is set in both the 16-bit (2880) and the 32-bit (2880) field".into()),
        ("FAT too small for the clusters", patched(&b12, all, |i| set16(i, 22, 1)), "node.toml",
         "sectors per FAT 1 hold 341 entries, fewer than the 2865".into()),
        ("FATs past the end", patched(&b12, all, |i| set16(i, 22, 0xffff)), "node.toml",
         "at or past the total sectors 2880".into()),
        ("reserved past the end", patched(&b12, all, |i| set16(i, 14, 0xffff)), "node.toml",
         "the data region starts at sector 65567".into()),
        ("image shorter than its total sectors", patched(&b12, 1 << 20, |_| {}).with_len(1 << 20), "node.toml",
         "but the device holds only 1048576".into()),
        ("FAT32's cluster count with a 16-bit FAT size",
         patched(&b12, all, |i| { set16(i, 19, 0); set32(i, 32, 70000) }).with_len(70000 * 512), "node.toml",
         "69967 clusters need FAT32, yet the 16-bit sectors per FAT is 9".into()),
        ("FAT12 with a 16-bit FAT size of 0 (read as FAT32)", patched(&b12, all, |i| set16(i, 22, 0)), "node.toml",
         "root entries is 224 on FAT32".into()),
        // FAT32 fields, and sums that overflow fatfs's u32 arithmetic.
        ("FAT32 sectors per FAT 0", patched(&b32, h32, |i| set32(i, 36, 0)), "node.toml",
         "sectors per FAT is 0 (in both the 16-bit and the FAT32 field)".into()),
        ("FAT32 sectors per FAT u32::MAX", patched(&b32, h32, |i| set32(i, 36, u32::MAX)), "node.toml",
         "at or past the total sectors 66592".into()),
        ("2 FATs of 2^31 sectors", patched(&b32, h32, |i| { i[16] = 2; set32(i, 36, 1 << 31) }), "node.toml",
         "at or past the total sectors 66592".into()),
        ("FAT32 root entries 16", patched(&b32, h32, |i| set16(i, 17, 16)), "node.toml",
         "root entries is 16 on FAT32 (must be 0)".into()),
        ("FAT32 version 1.0", patched(&b32, h32, |i| set16(i, 42, 0x0100)), "node.toml",
         "FAT32 version 1.0 is not 0.0".into()),
        ("root cluster 0", patched(&b32, h32, |i| set32(i, 44, 0)), "node.toml",
         "root directory cluster 0 is below 2".into()),
        ("root cluster 1", patched(&b32, h32, |i| set32(i, 44, 1)), "node.toml",
         "root directory cluster 1 is below 2".into()),
        ("root cluster past the end", patched(&b32, h32, |i| set32(i, 44, 0x0fff_fff0)), "node.toml",
         format!("root directory cluster 268435440 is past the last cluster {last32}")),
        ("FSInfo outside the reserved sectors", patched(&b32, h32, |i| set16(i, 48, 32)), "node.toml",
         "FSInfo sector 32 is not among the 32 reserved sectors".into()),
        ("backup boot sector 65535", patched(&b32, h32, |i| set16(i, 50, 0xffff)), "node.toml",
         "backup boot sector 65535 is not among".into()),
        ("active FAT 1 of 1", patched(&b32, h32, |i| set16(i, 40, 0x81)), "node.toml",
         "active FAT 1 (extended flags 0x0081) but the FAT count is 1".into()),
        ("too few clusters for FAT32", patched(&b32, h32, |i| set32(i, 32, 40000)), "node.toml",
         "clusters are too few for FAT32 (at least 65525)".into()),
        ("total sectors u32::MAX", patched(&b32, h32, |i| set32(i, 32, u32::MAX)), "node.toml",
         "total sectors 4294967295 of 512 bytes make 2199023255040 bytes, but the device holds only".into()),
        ("FAT32 with 4096-byte sectors", patched(&b32, h32, |i| set16(i, 11, 4096)), "node.toml",
         "but the device holds only 34099200".into()),
        ("a FAT over 512 MiB",
         patched(&b32, h32, |i| { set32(i, 36, (1 << 20) + 8); set32(i, 32, 32 + (1 << 20) + 8 + 65600) })
             .with_len((32 + (1 << 20) + 8 + 65600) * 512), "node.toml",
         "sectors per FAT 1048584 of 512 bytes is more than this reader takes".into()),
        ("more clusters than FAT32 holds", patched(&b32, h32, |i| set32(i, 32, 0x1100_0000))
             .with_len(0x1100_0000 * 512), "node.toml", "clusters are more than FAT32 holds".into()),
        // FAT32 root directory chains.
        ("a root chain looping back to the root, no end entry",
         patched(&b32, h32, |i| {
             set_fat(i, &g32, g32.root_cluster, g32.root_cluster);
             // Every unused slot becomes a deleted entry, and node.toml's entries too: before the guard, fatfs's
             // lookup went round the loop forever.
             for o in (r32..r32 + g32.cluster_size as usize).step_by(32) {
                 if i[o] == 0 || i[o + 11] & 0x0f == 0x0f || &i[o..o + 11] == b"NODE~1  TOM" {
                     i[o] = 0xe5;
                 }
             }
         }), "missing.toml", "root directory: the cluster chain loops back to cluster 2 after 1 clusters".into()),
        ("a root chain looping back to the root", patched(&b32, h32, |i| set_fat(i, &g32, 2, 2)), "node.toml",
         "root directory: the cluster chain loops back to cluster 2".into()),
        ("a root chain of 2 MiB + 1 cluster", patched(&b32, h32, |i| {
             for c in 2..4200 {
                 set_fat(i, &g32, c, c + 1);
             }
             set_fat(i, &g32, 4200, 0x0fff_ffff);
         }), "node.toml", "root directory: the cluster chain is longer than 4096 clusters".into()),
        ("a root chain into a free cluster", patched(&b32, h32, |i| set_fat(i, &g32, 2, 0)), "node.toml",
         "root directory: cluster 2 is followed by 0x0 (free, bad or reserved)".into()),
        ("a root chain into cluster 1", patched(&b32, h32, |i| set_fat(i, &g32, 2, 1)), "node.toml",
         "root directory: cluster 2 is followed by 0x1".into()),
        ("a root chain into a bad cluster", patched(&b32, h32, |i| set_fat(i, &g32, 2, 0x0fff_fff7)), "node.toml",
         "root directory: cluster 2 is followed by 0xffffff7".into()),
        ("a root chain past the last cluster", patched(&b32, h32, |i| set_fat(i, &g32, 2, last32 + 1)), "node.toml",
         format!("root directory: cluster 2 is followed by {:#x}", last32 + 1)),
        // node.toml's chain, on FAT12 and FAT16.
        ("node.toml starting at cluster 0", patched(&b12, all, |i| set16(i, e12 + 26, 0)), "node.toml",
         "node.toml: cluster 0 is not a data cluster (2 to 2848)".into()),
        ("node.toml starting at cluster 1", patched(&b12, all, |i| set16(i, e12 + 26, 1)), "node.toml",
         "node.toml: cluster 1 is not a data cluster".into()),
        ("node.toml starting past the end", patched(&b12, all, |i| set16(i, e12 + 26, 0xfff)), "node.toml",
         "node.toml: cluster 4095 is not a data cluster".into()),
        ("node.toml's chain looping", patched(&b12, all, |i| set_fat(i, &g12, c12 + 1, c12)), "node.toml",
         format!("node.toml: the cluster chain loops back to cluster {c12} after 2 clusters")),
        ("node.toml's chain ending early", patched(&b12, all, |i| set_fat(i, &g12, c12, 0xfff)), "node.toml",
         format!("node.toml: the cluster chain ends after 1 of the {need12} clusters its size needs")),
        ("node.toml's chain into a free cluster", patched(&b12, all, |i| set_fat(i, &g12, c12, 0)), "node.toml",
         format!("node.toml: cluster {c12} is followed by 0x0")),
        ("node.toml's chain into a reserved value", patched(&b12, all, |i| set_fat(i, &g12, c12, 0xff0)),
         "node.toml", format!("node.toml: cluster {c12} is followed by 0xff0")),
        ("node.toml of 4 GiB", patched(&b12, all, |i| set32(i, e12 + 28, u32::MAX)), "node.toml",
         "node.toml is larger than 4194304 bytes".into()),
        ("two entries with node.toml's short name", patched(&b12, all, |i| {
             let copy = i[e12..e12 + 32].to_vec();
             i[e12 + 32..e12 + 64].copy_from_slice(&copy);
         }), "node.toml", "the root directory has 2 entries with the short name NODE~1.TOM".into()),
        ("FAT16: node.toml's chain looping on itself", patched(&b16, all, |i| set_fat(i, &g16, c16, c16)),
         "node.toml", format!("node.toml: the cluster chain loops back to cluster {c16} after 1 clusters")),
        ("FAT16: node.toml starting past the end", patched(&b16, all, |i| set16(i, e16 + 26, 0xffff)),
         "node.toml", "node.toml: cluster 65535 is not a data cluster".into()),
    ];
    let mut wrong = Vec::new();
    for (case, img, name, want) in cases {
        let boot_sector = want.contains("FAT boot sector");
        let name = name.to_string();
        let (read, label) = within(case, move || {
            let read = fat::read_file(img.clone(), "hostile.img", &name, MAX_FILE).map(|_| ());
            (read, fat::label(img, "hostile.img"))
        });
        match read {
            Err(e) if format!("{e:#}").contains(&want) => {}
            r => wrong.push(format!(
                "{case}: read_file gave {:?}, want an error with {want:?}",
                r.map_err(|e| format!("{e:#}"))
            )),
        }
        match label {
            Err(e) if !boot_sector || format!("{e:#}").contains(&want) => {}
            Ok(_) if !boot_sector => {}
            r => wrong.push(format!(
                "{case}: label gave {:?}, want an error with {want:?}",
                r.map_err(|e| format!("{e:#}"))
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Through the device path: probe does not take it for FAT (a scan goes on), reading it names the field.
    let img = d.path().join("bps3.img");
    let mut bytes = b12.clone();
    set16(&mut bytes, 11, 3);
    std::fs::write(&img, &bytes).unwrap();
    assert_eq!(probe(&img).unwrap(), None);
    let err = format!("{:#}", read_node_toml(&img).unwrap_err());
    assert!(
        err.contains("FAT boot sector: bytes per sector 3 is not 512/1024/2048/4096"),
        "{err}"
    );
}

#[test]
fn node_toml_over_the_cap_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let big = vec![b'#'; MAX_FILE as usize + 1];
    let img = mkfs(
        d.path(),
        "big",
        34000,
        &["-F", "32"],
        &[("node.toml", &big)],
    );
    let err = format!("{:#}", read_node_toml(&img).unwrap_err());
    assert!(
        err.contains("node.toml is larger than 4194304 bytes"),
        "{err}"
    );
    let exact = vec![b'#'; MAX_FILE as usize];
    let img = mkfs(
        d.path(),
        "exact",
        34000,
        &["-F", "32"],
        &[("node.toml", &exact)],
    );
    assert_eq!(read_node_toml(&img).unwrap(), Some(exact));
}
