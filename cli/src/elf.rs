//! The glibc an ELF executable needs, read from the file (nothing runs): every `GLIBC_x.y` version named in its
//! `.gnu.version_r` (what ld.so checks before running anything: "version `GLIBC_2.34' not found"), and for each the
//! undefined dynamic symbols bound to it (`.dynsym` + `.gnu.version`), the way `objdump -T` shows them.
//!
//! NOTE(agent-glibc): build-host code for `kubeha iso`/`kubeha pxe`'s check of the node agent; it would sit beside
//! `kubeha_image::Agent::check` as well, and lives here while the CLI is its one reader.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Result};
use kubeha_model::el::Glibc;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Sym};
use object::{Endianness, SymbolIndex};

/// What an ELF file needs from the system it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfNeeds {
    /// `e_machine`.
    pub machine: u16,
    /// The program interpreter (`PT_INTERP`) of a dynamically linked executable.
    pub interpreter: Option<String>,
    /// Every `GLIBC_x.y` version the file needs, with the undefined dynamic symbols that reference it (a version
    /// can be needed with no symbol naming it; ld.so checks it all the same).
    pub glibc: BTreeMap<Glibc, BTreeSet<String>>,
}

impl ElfNeeds {
    /// The newest glibc version needed and its symbols; `None` for a file that needs no glibc (static).
    pub fn newest_glibc(&self) -> Option<(Glibc, &BTreeSet<String>)> {
        self.glibc.iter().next_back().map(|(v, s)| (*v, s))
    }

    /// The architecture name EL uses (`uname -m`, the bundle profile's `arch`), for the machines kubeha installs.
    pub fn arch(&self) -> Option<&'static str> {
        match elf::Machine(self.machine) {
            elf::EM_X86_64 => Some("x86_64"),
            elf::EM_AARCH64 => Some("aarch64"),
            _ => None,
        }
    }
}

/// Reads `data` as an ELF file.
pub fn read(data: &[u8]) -> Result<ElfNeeds> {
    if !data.starts_with(b"\x7fELF") {
        bail!("not an ELF file");
    }
    match data.get(4) {
        Some(1) => read_elf::<elf::FileHeader32<Endianness>>(data),
        Some(2) => read_elf::<elf::FileHeader64<Endianness>>(data),
        _ => bail!("not a valid ELF file: unknown class"),
    }
}

fn read_elf<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<ElfNeeds> {
    let bad = |e: object::Error| anyhow!("not a valid ELF file: {e}");
    let header = Elf::parse(data).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    let mut interpreter = None;
    let mut dynamic = false;
    for ph in header.program_headers(endian, data).map_err(bad)? {
        if let Some(i) = ph.interpreter(endian, data).map_err(bad)? {
            interpreter = Some(String::from_utf8_lossy(i).into_owned());
        }
        dynamic |= ph.p_type(endian) == elf::PT_DYNAMIC;
    }
    let sections = header.sections(endian, data).map_err(bad)?;
    if sections.is_empty() && dynamic {
        // ld.so reads the version needs through the dynamic segment; a file stripped of its section headers
        // (sstrip) hides them from this reader, and guessing "none" would let any binary through.
        bail!("it is dynamically linked but has no section headers: its glibc symbol versions cannot be read");
    }
    let mut glibc: BTreeMap<Glibc, BTreeSet<String>> = BTreeMap::new();
    if let Some((mut needs, link)) = sections.gnu_verneed(endian, data).map_err(bad)? {
        let strings = sections.strings(endian, data, link).map_err(bad)?;
        while let Some((_, mut auxs)) = needs.next().map_err(bad)? {
            while let Some(aux) = auxs.next().map_err(bad)? {
                let name = aux.name(endian, strings).map_err(bad)?;
                if let Some(v) = Glibc::from_symbol_version(&String::from_utf8_lossy(name)) {
                    glibc.entry(v).or_default();
                }
            }
        }
    }
    if let Some(versions) = sections.versions(endian, data).map_err(bad)? {
        let syms = sections
            .symbols(endian, data, elf::SHT_DYNSYM)
            .map_err(bad)?;
        for (i, sym) in syms.iter().enumerate() {
            if !sym.is_undefined(endian) {
                continue;
            }
            let index = versions.version_index(endian, SymbolIndex(i)).index();
            // A version with a file is a need (.gnu.version_r); without one it is this file's own definition.
            let Some(v) = versions.version(index).map_err(bad)? else {
                continue;
            };
            if v.file().is_none() {
                continue;
            }
            if let Some(g) = Glibc::from_symbol_version(&String::from_utf8_lossy(v.name())) {
                let name = sym.name(endian, syms.strings()).map_err(bad)?;
                glibc
                    .entry(g)
                    .or_default()
                    .insert(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    Ok(ElfNeeds {
        machine: header.e_machine(endian).0,
        interpreter,
        glibc,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// The undefined symbols `objdump -T` (the reference) lists with a `GLIBC_x.y` version, as
    /// version → symbols.
    pub(crate) fn objdump_glibc(file: &Path) -> BTreeMap<Glibc, BTreeSet<String>> {
        let out = Command::new("objdump")
            .arg("-T")
            .arg(file)
            .output()
            .expect("objdump (binutils)");
        assert!(
            out.status.success(),
            "objdump -T {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut m: BTreeMap<Glibc, BTreeSet<String>> = BTreeMap::new();
        // 0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.34) __libc_start_main
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if !line.contains("*UND*") {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(ver), Some(name)) = (f.iter().rev().nth(1), f.last()) else {
                continue;
            };
            let ver = ver.trim_start_matches('(').trim_end_matches(')');
            if let Some(g) = Glibc::from_symbol_version(ver) {
                m.entry(g).or_default().insert(name.to_string());
            }
        }
        m
    }

    /// A tiny C program built with the host's gcc: on a glibc ≥ 2.34 host it needs `__libc_start_main@GLIBC_2.34`.
    pub(crate) fn gcc_hello(dir: &Path) -> PathBuf {
        let src = dir.join("hello.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
        )
        .unwrap();
        let bin = dir.join("hello");
        let out = Command::new("gcc")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("gcc");
        assert!(
            out.status.success(),
            "gcc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    }

    /// Our reader against `objdump -T` on real binaries: the test binary itself (a host Rust build), a gcc-built C
    /// program, the system's `ls`, and the glibc-2.17 agent of `make node-binary` when the Makefile names it.
    #[test]
    fn reader_matches_objdump() {
        let d = tempfile::tempdir().unwrap();
        let mut files = vec![
            std::env::current_exe().unwrap(),
            gcc_hello(d.path()),
            PathBuf::from("/usr/bin/ls"),
        ];
        if let Some(p) = std::env::var_os("KUBEHA_NODE_BINARY") {
            files.push(PathBuf::from(p));
        }
        for f in &files {
            let needs =
                read(&std::fs::read(f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let want = objdump_glibc(f);
            assert!(
                !want.is_empty(),
                "{}: objdump -T lists no GLIBC symbol",
                f.display()
            );
            // Every version objdump shows a symbol under is a need we found, with the same symbols.
            let ours: BTreeMap<Glibc, BTreeSet<String>> = needs
                .glibc
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(v, s)| (*v, s.clone()))
                .collect();
            assert_eq!(ours, want, "{}", f.display());
            assert_eq!(
                needs.newest_glibc().map(|n| n.0),
                want.keys().next_back().copied(),
                "{}",
                f.display()
            );
            assert_eq!(needs.arch(), Some("x86_64"), "{}", f.display());
            assert!(
                needs
                    .interpreter
                    .as_deref()
                    .is_some_and(|i| i.contains("ld-linux")),
                "{}: {:?}",
                f.display(),
                needs.interpreter
            );
        }
        // On this Debian 12 builder, the gcc program needs exactly what the host glibc gives __libc_start_main.
        let hello = read(&std::fs::read(d.path().join("hello")).unwrap()).unwrap();
        assert!(
            hello
                .glibc
                .values()
                .any(|s| s.contains("__libc_start_main")),
            "{hello:?}"
        );
    }

    #[test]
    fn static_and_bad_files() {
        // busybox-static (make deps): no interpreter, no glibc needs.
        let bb = Path::new("/bin/busybox");
        if bb.exists() {
            let n = read(&std::fs::read(bb).unwrap()).unwrap();
            if n.interpreter.is_none() {
                assert!(n.glibc.is_empty(), "{n:?}");
                assert_eq!(n.newest_glibc(), None);
            }
        }
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        for (case, data) in [
            ("empty", Vec::new()),
            ("a shell script", b"#!/bin/sh\necho hi\n".to_vec()),
            ("the magic only", b"\x7fELF".to_vec()),
            ("a bad class", b"\x7fELF\x09\x01\x01\x00".to_vec()),
            ("a truncated header", exe[..40].to_vec()),
        ] {
            assert!(read(&data).is_err(), "{case} was read as ELF");
        }
        // Truncated anywhere past the header: an error or a result, never a panic.
        for cut in [64, 100, 4096, exe.len() / 2] {
            let _ = read(&exe[..cut.min(exe.len())]);
        }
    }
}
