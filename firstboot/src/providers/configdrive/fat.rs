//! FAT12/16/32 config drives: the fatfs crate reads them, behind guards of our own.
//!
//! fatfs 0.3 trusts the boot sector: hostile BPB values overflow its u32 arithmetic (a panic with overflow checks,
//! wild offsets without), a cluster number below 2 in a chain underflows, and it follows cluster chains without
//! bound, so a FAT32 root directory whose chain loops makes a lookup run forever (the `fat` fuzz target,
//! firstboot/fuzz, found the panics within seconds). So, before fatfs sees a device:
//! - [`check_boot_sector`] checks every BPB field fatfs uses, all region arithmetic in checked u64, against the
//!   device's length; each failure names the field;
//! - the root directory's cluster chain (FAT32) is walked here, each link checked and the length bounded by FAT's
//!   65536 entries per directory, so fatfs only iterates a chain known to end.
//!
//! fatfs then parses the boot sector, the label and the root directory's entries (long names included). The file
//! itself is read here: its entry is found again in the raw directory by its short name, and its chain is walked,
//! checked and bounded by the file's size, as the root's is. A panic inside fatfs all the same (a case missed here)
//! is caught and becomes an error: the agent is built with `panic = "unwind"` (the default; no profile in the root
//! Cargo.toml changes it).
//!
//! Generic over `Read + Seek` and depending on nothing else in the crate, so that the fuzz target
//! (firstboot/fuzz/fuzz_targets/fat.rs) runs this very file on in-memory images. A new check fatfs needs goes into
//! [`check_boot_sector`] with an error naming the field, plus a case in fat_tests.rs.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::{bail, Context as _, Result};

/// FAT12 holds fewer clusters than this; FAT16 at least this many (Microsoft's FAT spec, as fatfs decides).
const FAT16_MIN_CLUSTERS: u64 = 4085;
/// FAT32 holds at least this many clusters.
const FAT32_MIN_CLUSTERS: u64 = 65525;
/// fatfs's FAT32 limit: cluster numbers stay below 0x0FFFFFF7, the bad-cluster marker.
const FAT32_MAX_CLUSTERS: u64 = 0x0FFF_FFF4;
/// Largest cluster the spec allows (larger ones exist but are not portable).
const MAX_CLUSTER_SIZE: u64 = 64 << 10;
/// A FAT directory holds at most 65536 entries of 32 bytes (the spec's limit; it bounds the root's chain).
const MAX_DIR_BYTES: u64 = 65536 * 32;
/// fatfs computes a FAT's size in bits in a u32.
const MAX_FAT_BITS: u64 = u32::MAX as u64;

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

/// The FAT variant, by cluster count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit FAT entries.
    Fat12,
    /// 16-bit FAT entries.
    Fat16,
    /// 32-bit FAT entries (28 bits used).
    Fat32,
}

/// Where a volume's regions lie, from a boot sector that passed [`check_boot_sector`]. Offsets are in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// The FAT variant.
    pub fat_type: FatType,
    /// Bytes per cluster (at most 64 KiB).
    pub cluster_size: u64,
    /// The FAT fatfs reads: the first, or the active one when mirroring is off.
    pub fat_offset: u64,
    /// FAT12/16's fixed root directory region (empty on FAT32).
    pub root_offset: u64,
    /// Its length.
    pub root_len: u64,
    /// FAT32's first root directory cluster (0 on FAT12/16).
    pub root_cluster: u32,
    /// Cluster 2 starts here.
    pub data_offset: u64,
    /// Number of data clusters: cluster numbers run from 2 to `clusters + 1`.
    pub clusters: u32,
}

impl Geometry {
    fn last_cluster(&self) -> u32 {
        self.clusters + 1
    }
    fn cluster_offset(&self, c: u32) -> u64 {
        self.data_offset + u64::from(c - 2) * self.cluster_size
    }
}

/// Checks a boot sector (the device's first 512 bytes) as fatfs will read it, against the device's length; every
/// failure names the field. On success fatfs's own arithmetic on these fields cannot overflow and every region lies
/// on the device.
pub fn check_boot_sector(bs: &[u8], dev_len: u64) -> Result<Geometry> {
    if bs.len() < 512 {
        bail!("FAT boot sector: the device holds only {} bytes", bs.len());
    }
    if bs[510..512] != [0x55, 0xAA] {
        bail!("FAT boot sector: no 55 AA signature at byte 510");
    }
    let u16le = |o: usize| u64::from(u16::from_le_bytes([bs[o], bs[o + 1]]));
    let u32le = |o: usize| u64::from(u32::from_le_bytes([bs[o], bs[o + 1], bs[o + 2], bs[o + 3]]));

    let bps = u16le(11);
    if !matches!(bps, 512 | 1024 | 2048 | 4096) {
        bail!("FAT boot sector: bytes per sector {bps} is not 512/1024/2048/4096");
    }
    let spc = u64::from(bs[13]);
    if !spc.is_power_of_two() {
        bail!("FAT boot sector: sectors per cluster {spc} is not a power of two");
    }
    let cluster_size = spc * bps;
    if cluster_size > MAX_CLUSTER_SIZE {
        bail!(
            "FAT boot sector: sectors per cluster {spc} of {bps} bytes make {cluster_size}-byte clusters, over \
             64 KiB"
        );
    }
    let reserved = u16le(14);
    if reserved == 0 {
        bail!("FAT boot sector: reserved sectors is 0 (the boot sector itself is reserved)");
    }
    let fats = u64::from(bs[16]);
    if !(1..=2).contains(&fats) {
        bail!("FAT boot sector: FAT count {fats} is not 1 or 2");
    }
    let root_entries = u16le(17);
    let total = match (u16le(19), u32le(32)) {
        (0, 0) => bail!("FAT boot sector: total sectors is 0 in both the 16-bit and the 32-bit field"),
        (t, 0) | (0, t) => t,
        (a, b) => bail!(
            "FAT boot sector: total sectors is set in both the 16-bit ({a}) and the 32-bit ({b}) field"
        ),
    };
    // fatfs takes a volume for FAT32 when the 16-bit FAT size is 0; the cluster count must agree (below).
    let spf16 = u16le(22);
    let fat32 = spf16 == 0;
    let (spf, root_cluster, active_fat) = if fat32 {
        let spf32 = u32le(36);
        if spf32 == 0 {
            bail!("FAT boot sector: sectors per FAT is 0 (in both the 16-bit and the FAT32 field)");
        }
        if root_entries != 0 {
            bail!("FAT boot sector: root entries is {root_entries} on FAT32 (must be 0)");
        }
        let version = u16le(42);
        if version != 0 {
            bail!(
                "FAT boot sector: FAT32 version {}.{} is not 0.0",
                version >> 8,
                version & 0xff
            );
        }
        let root_cluster = u32le(44);
        if root_cluster < 2 {
            bail!("FAT boot sector: root directory cluster {root_cluster} is below 2");
        }
        for (field, at) in [("FSInfo sector", 48), ("backup boot sector", 50)] {
            let s = u16le(at);
            if s >= reserved {
                bail!("FAT boot sector: {field} {s} is not among the {reserved} reserved sectors");
            }
        }
        // Bit 7 set: mirroring is off and bits 0-3 name the one FAT in use.
        let flags = u16le(40);
        let active = if flags & 0x80 != 0 { flags & 0x0f } else { 0 };
        if active >= fats {
            bail!("FAT boot sector: active FAT {active} (extended flags {flags:#06x}) but the FAT count is {fats}");
        }
        (spf32, root_cluster, active)
    } else {
        if root_entries == 0 {
            bail!("FAT boot sector: root entries is 0 on FAT12/16");
        }
        if root_entries * 32 % bps != 0 {
            bail!("FAT boot sector: root entries {root_entries} do not fill whole sectors of {bps} bytes");
        }
        (spf16, 0, 0)
    };

    let overflow = || format!("FAT boot sector: the regions of {total} sectors overflow");
    let root_sectors = root_entries * 32 / bps;
    let fat_sectors = fats.checked_mul(spf).with_context(overflow)?;
    let data_start = reserved
        .checked_add(fat_sectors)
        .and_then(|s| s.checked_add(root_sectors))
        .with_context(overflow)?;
    if data_start >= total {
        bail!(
            "FAT boot sector: the data region starts at sector {data_start} ({reserved} reserved, {fats} FATs of \
             {spf}, {root_sectors} root directory), at or past the total sectors {total}"
        );
    }
    let size = total.checked_mul(bps).with_context(overflow)?;
    if size > dev_len {
        bail!(
            "FAT boot sector: total sectors {total} of {bps} bytes make {size} bytes, but the device holds only \
             {dev_len}"
        );
    }
    let clusters = (total - data_start) / spc;
    if clusters == 0 {
        bail!("FAT boot sector: no data cluster fits in total sectors {total} after sector {data_start}");
    }
    let fat_type = if clusters < FAT16_MIN_CLUSTERS {
        FatType::Fat12
    } else if clusters < FAT32_MIN_CLUSTERS {
        FatType::Fat16
    } else {
        FatType::Fat32
    };
    if fat32 && fat_type != FatType::Fat32 {
        bail!(
            "FAT boot sector: {clusters} clusters are too few for FAT32 (at least {FAT32_MIN_CLUSTERS}), yet the \
             16-bit sectors per FAT is 0"
        );
    }
    if !fat32 && fat_type == FatType::Fat32 {
        bail!("FAT boot sector: {clusters} clusters need FAT32, yet the 16-bit sectors per FAT is {spf16}");
    }
    if clusters > FAT32_MAX_CLUSTERS {
        bail!(
            "FAT boot sector: {clusters} clusters are more than FAT32 holds ({FAT32_MAX_CLUSTERS})"
        );
    }
    let bits = match fat_type {
        FatType::Fat12 => 12,
        FatType::Fat16 => 16,
        FatType::Fat32 => 32,
    };
    let fat_bits = spf.checked_mul(bps * 8).with_context(overflow)?;
    if fat_bits > MAX_FAT_BITS {
        bail!(
            "FAT boot sector: sectors per FAT {spf} of {bps} bytes is more than this reader takes (512 MiB per FAT)"
        );
    }
    if fat_bits / bits < clusters + 2 {
        bail!(
            "FAT boot sector: sectors per FAT {spf} hold {} entries, fewer than the {} that {clusters} clusters need",
            fat_bits / bits,
            clusters + 2
        );
    }
    if fat32 && root_cluster > clusters + 1 {
        bail!(
            "FAT boot sector: root directory cluster {root_cluster} is past the last cluster {}",
            clusters + 1
        );
    }
    // Every value below is at most `size`, itself at most the device length.
    Ok(Geometry {
        fat_type,
        cluster_size,
        fat_offset: (reserved + active_fat * spf) * bps,
        root_offset: (reserved + fat_sectors) * bps,
        root_len: root_sectors * bps,
        root_cluster: root_cluster as u32,
        data_offset: data_start * bps,
        clusters: clusters as u32,
    })
}

/// Reads the boot sector and the device's length, and checks them.
fn open<R: Read + Seek>(dev: &mut R) -> Result<Geometry> {
    let dev_len = dev
        .seek(SeekFrom::End(0))
        .context("finding the device's length")?;
    let mut bs = vec![0u8; 512.min(dev_len) as usize];
    dev.rewind()?;
    dev.read_exact(&mut bs)
        .context("reading the FAT boot sector")?;
    let geo = check_boot_sector(&bs, dev_len)?;
    dev.rewind()?;
    Ok(geo)
}

/// The FAT entry of cluster `c`.
fn fat_entry<R: Read + Seek>(dev: &mut R, geo: &Geometry, c: u32) -> Result<u32> {
    let c = u64::from(c);
    let (at, n) = match geo.fat_type {
        FatType::Fat12 => (c + c / 2, 2),
        FatType::Fat16 => (c * 2, 2),
        FatType::Fat32 => (c * 4, 4),
    };
    let mut b = [0u8; 4];
    dev.seek(SeekFrom::Start(geo.fat_offset + at))?;
    dev.read_exact(&mut b[..n]).context("reading the FAT")?;
    let v = u32::from_le_bytes(b);
    Ok(match geo.fat_type {
        FatType::Fat12 if c % 2 == 0 => v & 0xfff,
        FatType::Fat12 => v >> 4,
        FatType::Fat16 => v,
        FatType::Fat32 => v & 0x0fff_ffff,
    })
}

/// How much of a chain to walk.
#[derive(Clone, Copy)]
enum Walk {
    /// To its end-of-chain marker, which must come within this many clusters.
    ToEnd(u64),
    /// Exactly this many clusters (a file's size); what follows them is never read.
    Exactly(u64),
}

/// Follows the cluster chain from `first`: every cluster must be a data cluster of the volume and appear once.
fn walk_chain<R: Read + Seek>(
    dev: &mut R,
    geo: &Geometry,
    first: u32,
    walk: Walk,
    what: &str,
) -> Result<Vec<u32>> {
    let end_mark = match geo.fat_type {
        FatType::Fat12 => 0xff8,
        FatType::Fat16 => 0xfff8,
        FatType::Fat32 => 0x0fff_fff8,
    };
    let mut chain = Vec::new();
    let mut seen = HashSet::new();
    let mut c = first;
    loop {
        if c < 2 || c > geo.last_cluster() {
            bail!(
                "{what}: cluster {c} is not a data cluster (2 to {})",
                geo.last_cluster()
            );
        }
        if !seen.insert(c) {
            bail!(
                "{what}: the cluster chain loops back to cluster {c} after {} clusters",
                chain.len()
            );
        }
        chain.push(c);
        match walk {
            Walk::Exactly(n) if chain.len() as u64 == n => return Ok(chain),
            Walk::ToEnd(max) if chain.len() as u64 > max => {
                bail!("{what}: the cluster chain is longer than {max} clusters")
            }
            _ => {}
        }
        match fat_entry(dev, geo, c)? {
            v if v >= end_mark => match walk {
                Walk::ToEnd(_) => return Ok(chain),
                Walk::Exactly(n) => bail!(
                    "{what}: the cluster chain ends after {} of the {n} clusters its size needs",
                    chain.len()
                ),
            },
            v if v >= 2 && v <= geo.last_cluster() => c = v,
            v => bail!(
                "{what}: cluster {c} is followed by {v:#x} (free, bad or reserved), not a cluster or the end of \
                 the chain"
            ),
        }
    }
}

/// A short-name entry of the root directory, as stored.
struct RawEntry {
    /// The short name as fatfs shows it (`NAME.EXT`, padding removed, 0x05 read as 0xE5).
    short_name: Vec<u8>,
    first_cluster: u32,
    size: u32,
    dir: bool,
}

/// The root directory's short-name entries (files and directories; deleted, long-name and label entries skipped,
/// up to the end marker, as fatfs reads them). On FAT32 its cluster chain is checked first.
fn root_entries<R: Read + Seek>(dev: &mut R, geo: &Geometry) -> Result<Vec<RawEntry>> {
    let mut bytes = Vec::new();
    if geo.fat_type == FatType::Fat32 {
        let max = MAX_DIR_BYTES / geo.cluster_size;
        let chain = walk_chain(
            dev,
            geo,
            geo.root_cluster,
            Walk::ToEnd(max),
            "root directory",
        )?;
        let mut buf = vec![0u8; geo.cluster_size as usize];
        for c in chain {
            dev.seek(SeekFrom::Start(geo.cluster_offset(c)))?;
            dev.read_exact(&mut buf)
                .context("reading the root directory")?;
            bytes.extend_from_slice(&buf);
        }
    } else {
        bytes.resize(geo.root_len as usize, 0);
        dev.seek(SeekFrom::Start(geo.root_offset))?;
        dev.read_exact(&mut bytes)
            .context("reading the root directory")?;
    }
    let mut out = Vec::new();
    for e in bytes.chunks_exact(32) {
        let attrs = e[11];
        match e[0] {
            0 => break,
            0xe5 => continue,
            _ if attrs & 0x0f == 0x0f || attrs & 0x08 != 0 => continue,
            _ => {}
        }
        let trim = |s: &[u8]| s[..s.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1)].to_vec();
        let mut short_name = trim(&e[..8]);
        let ext = trim(&e[8..11]);
        if !ext.is_empty() {
            short_name.push(b'.');
            short_name.extend_from_slice(&ext);
        }
        if short_name.first() == Some(&0x05) {
            short_name[0] = 0xe5;
        }
        // The high half of the first cluster counts on FAT32 only, as in fatfs.
        let hi = if geo.fat_type == FatType::Fat32 {
            u32::from(u16::from_le_bytes([e[20], e[21]]))
        } else {
            0
        };
        out.push(RawEntry {
            short_name,
            first_cluster: hi << 16 | u32::from(u16::from_le_bytes([e[26], e[27]])),
            size: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
            dir: attrs & 0x10 != 0,
        });
    }
    Ok(out)
}

/// Runs `f`, turning a panic in it (inside fatfs) into an error.
fn guarded<T>(dev_name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            bail!("damaged FAT filesystem on {dev_name} (the FAT reader panicked: {msg})")
        }
    }
}

/// The volume label of the FAT filesystem on `dev` (named `dev_name` in errors).
pub fn label<R: Read + Seek>(mut dev: R, dev_name: &str) -> Result<String> {
    open(&mut dev)?;
    guarded(dev_name, || {
        let fs = fatfs::FileSystem::new(ReadOnly(&mut dev), fatfs::FsOptions::new())
            .context("reading the FAT filesystem")?;
        Ok(fs.volume_label().trim_end().to_string())
    })
}

/// Reads the top-level file `name` (at most `max` bytes) from the FAT filesystem on `dev` (named `dev_name` in
/// errors); `Ok(None)` when there is no such file, or it is a directory.
pub fn read_file<R: Read + Seek>(
    mut dev: R,
    dev_name: &str,
    name: &str,
    max: u64,
) -> Result<Option<Vec<u8>>> {
    let geo = open(&mut dev)?;
    let raw = root_entries(&mut dev, &geo)?;
    dev.rewind()?;
    // fatfs finds the entry (long names included); only what identifies it leaves the closure.
    let found = guarded(dev_name, || {
        let fs = fatfs::FileSystem::new(ReadOnly(&mut dev), fatfs::FsOptions::new())
            .context("reading the FAT filesystem")?;
        for e in fs.root_dir().iter() {
            let e = e.context("reading the root directory")?;
            let upper = name.to_uppercase();
            if e.file_name().to_uppercase() == upper || e.short_file_name().to_uppercase() == upper
            {
                return Ok(Some((
                    e.short_file_name_as_bytes().to_vec(),
                    e.len(),
                    e.is_dir(),
                )));
            }
        }
        Ok(None)
    })?;
    let Some((short_name, len, is_dir)) = found else {
        return Ok(None);
    };
    if is_dir {
        return Ok(None);
    }
    // Short names are unique in a directory; a second entry with this one could hide another chain.
    let mut same = raw.iter().filter(|e| e.short_name == short_name);
    let (Some(e), None) = (same.next(), same.next()) else {
        bail!(
            "the root directory has {} entries with the short name {}",
            raw.iter().filter(|e| e.short_name == short_name).count(),
            String::from_utf8_lossy(&short_name)
        );
    };
    if e.dir || u64::from(e.size) != len {
        bail!("{name}: the directory entry changed while it was read");
    }
    let size = u64::from(e.size);
    if size > max {
        bail!("{name} is larger than {max} bytes");
    }
    let mut data = Vec::with_capacity(size as usize);
    if size > 0 {
        let need = size.div_ceil(geo.cluster_size);
        let chain = walk_chain(&mut dev, &geo, e.first_cluster, Walk::Exactly(need), name)?;
        for c in chain {
            let n = (size - data.len() as u64).min(geo.cluster_size) as usize;
            let at = data.len();
            data.resize(at + n, 0);
            dev.seek(SeekFrom::Start(geo.cluster_offset(c)))?;
            dev.read_exact(&mut data[at..])
                .with_context(|| format!("reading {name}"))?;
        }
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_reader_is_an_error() {
        let err = guarded("/dev/sdz", || -> Result<()> {
            panic!("attempt to add with overflow")
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "damaged FAT filesystem on /dev/sdz (the FAT reader panicked: attempt to add with overflow)"
        );
        let n = 7;
        let err = guarded("/dev/sdz", || -> Result<()> {
            panic!("index {n} out of range")
        })
        .unwrap_err();
        assert!(
            err.to_string().ends_with("panicked: index 7 out of range)"),
            "{err}"
        );
    }
}
