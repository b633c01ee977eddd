//! A minimal read-only ISO9660 reader (ECMA-119) with Joliet and Rock Ridge names: enough to read one small file from
//! a config drive without mounting it (the early-boot kernel may lack iso9660, and so does this project's lab).
//! Modelled on coreos-installer's src/iso9660.rs. Every offset read from the image is bounds-checked: the image is
//! untrusted input (and a fuzz target).

use std::io::{Read, Seek, SeekFrom};

use anyhow::{bail, Context as _, Result};

const SECTOR: u64 = 2048;
/// Directories bigger than this are not a config drive's.
const MAX_DIR: u32 = 4 << 20;

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name: Rock Ridge `NM` or Joliet if present, else the ISO name without `;1` and a trailing dot.
    pub name: String,
    /// First sector.
    pub extent: u32,
    /// Length in bytes.
    pub size: u32,
    /// A directory.
    pub dir: bool,
    /// The name came from a Rock Ridge `NM` entry.
    pub rock_ridge: bool,
}

/// An opened ISO9660 filesystem.
pub struct Iso<R> {
    r: R,
    /// The primary volume's identifier (the label), trailing spaces removed.
    pub volume_id: String,
    root: Entry,
    joliet: bool,
}

/// Whether `head` (at least 32 KiB + 6 bytes of the device) holds an ISO9660 primary volume descriptor.
pub fn detect(head: &[u8]) -> bool {
    head.len() >= 32768 + 6 && &head[32769..32774] == b"CD001"
}

fn u32le(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 4).context("truncated ISO9660 record")?;
    Ok(u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

fn parse_record(rec: &[u8], joliet: bool) -> Result<Option<Entry>> {
    let name_len = *rec.get(32).context("truncated directory record")? as usize;
    let raw = rec
        .get(33..33 + name_len)
        .context("directory record name overruns its record")?;
    let extent = u32le(rec, 2)?;
    let size = u32le(rec, 10)?;
    let dir = rec.get(25).context("truncated directory record")? & 2 != 0;
    // "." and ".." are 0x00 and 0x01.
    if name_len == 1 && (raw[0] == 0 || raw[0] == 1) {
        return Ok(None);
    }
    let mut name = if joliet {
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    // Rock Ridge NM in the system use area (after the name, padded to an even offset).
    if !joliet {
        let mut at = 33 + name_len + (name_len + 1) % 2;
        let mut rr = String::new();
        while at + 4 <= rec.len() {
            let (sig, len) = (&rec[at..at + 2], rec[at + 2] as usize);
            if len < 4 || at + len > rec.len() {
                break;
            }
            if sig == b"NM" && len >= 5 {
                rr.push_str(&String::from_utf8_lossy(&rec[at + 5..at + len]));
            }
            at += len;
        }
        if !rr.is_empty() {
            return Ok(Some(Entry {
                name: rr,
                extent,
                size,
                dir,
                rock_ridge: true,
            }));
        }
    }
    if let Some(i) = name.rfind(';') {
        name.truncate(i);
    }
    if name.ends_with('.') {
        name.pop();
    }
    Ok(Some(Entry {
        name,
        extent,
        size,
        dir,
        rock_ridge: false,
    }))
}

impl<R: Read + Seek> Iso<R> {
    /// Reads the volume descriptors.
    pub fn open(mut r: R) -> Result<Iso<R>> {
        let mut pvd: Option<(String, Entry)> = None;
        let mut joliet_root: Option<Entry> = None;
        for n in 16..64u64 {
            let mut vd = [0u8; 2048];
            r.seek(SeekFrom::Start(n * SECTOR))?;
            r.read_exact(&mut vd)
                .context("reading an ISO9660 volume descriptor")?;
            if &vd[1..6] != b"CD001" {
                bail!("not an ISO9660 filesystem (no CD001 at sector {n})");
            }
            match vd[0] {
                1 => {
                    let id = String::from_utf8_lossy(&vd[40..72]).trim_end().to_string();
                    let root = Entry {
                        name: String::new(),
                        extent: u32le(&vd[156..190], 2)?,
                        size: u32le(&vd[156..190], 10)?,
                        dir: true,
                        rock_ridge: false,
                    };
                    pvd = Some((id, root));
                }
                // Joliet: a supplementary descriptor with a UCS-2 escape sequence.
                2 if [b"%/@", b"%/C", b"%/E"].iter().any(|e| &vd[88..91] == *e) => {
                    joliet_root = Some(Entry {
                        name: String::new(),
                        extent: u32le(&vd[156..190], 2)?,
                        size: u32le(&vd[156..190], 10)?,
                        dir: true,
                        rock_ridge: false,
                    });
                }
                255 => break,
                _ => {}
            }
        }
        let (volume_id, pvd_root) = pvd.context("no ISO9660 primary volume descriptor")?;
        let mut iso = Iso {
            r,
            volume_id,
            root: pvd_root.clone(),
            joliet: false,
        };
        // Prefer Rock Ridge names on the primary tree; use Joliet when the primary tree has no RR entries.
        if let Some(jr) = joliet_root {
            let has_rr = iso.read_dir(&pvd_root)?.iter().any(|e| e.rock_ridge);
            if !has_rr {
                iso.root = jr;
                iso.joliet = true;
            }
        }
        Ok(iso)
    }

    /// Lists a directory.
    pub fn read_dir(&mut self, dir: &Entry) -> Result<Vec<Entry>> {
        if !dir.dir {
            bail!("{} is not a directory", dir.name);
        }
        if dir.size > MAX_DIR {
            bail!(
                "directory {} is implausibly large ({} bytes)",
                dir.name,
                dir.size
            );
        }
        let mut buf = vec![0u8; dir.size as usize];
        self.r.seek(SeekFrom::Start(dir.extent as u64 * SECTOR))?;
        self.r
            .read_exact(&mut buf)
            .context("reading an ISO9660 directory")?;
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < buf.len() {
            let len = buf[at] as usize;
            if len == 0 {
                // Records never cross a sector: the rest of this sector is padding.
                at = (at / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            let rec = buf
                .get(at..at + len)
                .context("directory record overruns its directory")?;
            if len < 34 {
                bail!("directory record of {len} bytes is too short");
            }
            if let Some(e) = parse_record(rec, self.joliet)? {
                out.push(e);
            }
            at += len;
        }
        Ok(out)
    }

    /// Finds `/a/b` (names compared case-insensitively, as ISO9660 level-1 names are upper case).
    pub fn lookup(&mut self, path: &str) -> Result<Option<Entry>> {
        let mut cur = self.root.clone();
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            let found = self
                .read_dir(&cur)?
                .into_iter()
                .find(|e| e.name.eq_ignore_ascii_case(comp));
            match found {
                Some(e) => cur = e,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// Reads a file of at most `max` bytes.
    pub fn read_file(&mut self, e: &Entry, max: u64) -> Result<Vec<u8>> {
        if e.dir {
            bail!("{} is a directory", e.name);
        }
        if e.size as u64 > max {
            bail!(
                "{} is {} bytes, more than the {max} allowed",
                e.name,
                e.size
            );
        }
        let mut buf = vec![0u8; e.size as usize];
        self.r.seek(SeekFrom::Start(e.extent as u64 * SECTOR))?;
        self.r
            .read_exact(&mut buf)
            .with_context(|| format!("reading {}", e.name))?;
        Ok(buf)
    }
}
