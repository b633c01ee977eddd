//! The FAT config-drive reader (configdrive/fat.rs, the label probe and the file read the agent runs) on hostile
//! images: errors, never panics (also none caught inside fatfs), hangs or huge allocations.
//!
//! The first input byte picks the image. Mode 3 (`b % 4 == 3`): the rest of the input is the whole image. Modes 0-2:
//! the image is a real mkfs.fat volume (fixtures/: FAT12, FAT16, FAT32, the last one 33 MB, too big to be an input)
//! with the rest of the input applied as patches `[offset: u32 le][len: u8][bytes]`, offsets taken modulo the image
//! length; bit 7 set means a `u32 le` image length comes first (shorter truncates, longer reads zeros). Patching a
//! real volume keeps the fuzzer past the boot sector checks and into the FATs, FSInfo and directory entries.
#![no_main]
#[path = "../../src/providers/configdrive/fat.rs"]
mod fat;

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn bases() -> &'static [Vec<u8>; 3] {
    static BASES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    BASES.get_or_init(|| {
        let gunzip = |gz: &[u8]| {
            let mut v = Vec::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_end(&mut v)
                .expect("fixture gunzips");
            v
        };
        [
            gunzip(include_bytes!("../fixtures/fat12.img.gz")),
            gunzip(include_bytes!("../fixtures/fat16.img.gz")),
            gunzip(include_bytes!("../fixtures/fat32.img.gz")),
        ]
    })
}

/// A base image with patches laid over it, read without copying the base.
#[derive(Clone)]
struct Overlay<'a> {
    base: &'a [u8],
    len: u64,
    patches: Vec<(u64, &'a [u8])>,
    pos: u64,
}

impl<'a> Overlay<'a> {
    fn new(base: &'a [u8], mut rest: &'a [u8], len_first: bool) -> Self {
        let mut len = base.len() as u64;
        if len_first {
            if rest.len() < 4 {
                rest = &[];
            } else {
                len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as u64;
                rest = &rest[4..];
            }
        }
        let mut patches = Vec::new();
        while rest.len() >= 5 && len > 0 {
            let off = u32::from_le_bytes(rest[..4].try_into().unwrap()) as u64 % len;
            let n = (rest[4] as usize).min(rest.len() - 5);
            patches.push((off, &rest[5..5 + n]));
            rest = &rest[5 + n..];
        }
        Overlay {
            base,
            len,
            patches,
            pos: 0,
        }
    }
}

impl Read for Overlay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = self.pos;
        let n = (self.len.saturating_sub(start)).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        let end = start + n as u64;
        buf.fill(0);
        if start < self.base.len() as u64 {
            let b = &self.base[start as usize..(end as usize).min(self.base.len())];
            buf[..b.len()].copy_from_slice(b);
        }
        for &(off, p) in &self.patches {
            let (lo, hi) = (off.max(start), (off + p.len() as u64).min(end));
            if lo < hi {
                buf[(lo - start) as usize..(hi - start) as usize]
                    .copy_from_slice(&p[(lo - off) as usize..(hi - off) as usize]);
            }
        }
        self.pos = end;
        Ok(n)
    }
}

impl Seek for Overlay<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let p = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let p = p.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before 0")
        })?;
        self.pos = p;
        Ok(p)
    }
}

fn run<R: Read + Seek + Clone>(img: R) {
    // fat.rs turns a panic inside fatfs into this error: one that reaches it is a hole in the checks, so a crash here.
    let damaged = |e: &anyhow::Error| assert!(!format!("{e:#}").contains("damaged FAT"), "{e:#}");
    if let Err(e) = fat::label(img.clone(), "fuzz") {
        damaged(&e);
    }
    match fat::read_file(img, "fuzz", "node.toml", 1 << 20) {
        Ok(Some(data)) => assert!(data.len() <= 1 << 20),
        Ok(None) => {}
        Err(e) => damaged(&e),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        3 => run(Cursor::new(rest)),
        i => run(Overlay::new(&bases()[i as usize], rest, mode & 0x80 != 0)),
    }
});
