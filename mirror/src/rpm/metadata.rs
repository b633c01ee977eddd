//! Yum repository metadata: `repodata/repomd.xml`, `primary.xml` and `filelists.xml`.
//!
//! Parsed with quick-xml in streaming mode rather than with `rpmrepo_metadata`: we need a dozen fields of each
//! package (and only the wanted paths of filelists), the four compressions are detected here by their magic
//! bytes whatever the file is named, and the checksum of every metadata file is verified against repomd.xml
//! before it is parsed; a full metadata model would add parsing time and dependencies without changing that.
//! Format: createrepo_c `tests/testdata/repo_01/repodata/`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};

use anyhow::{Context, Result};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::vercmp::{Evr, Op, Range};

/// A checksum as the metadata names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum {
    /// The algorithm (`sha256`, `sha`/`sha1`, `sha224`, `sha384`, `sha512`).
    pub kind: String,
    /// Lowercase hex.
    pub hex: String,
}

/// Incremental hashing for the algorithms yum repositories use.
pub enum Hasher {
    /// SHA-1 (`sha` in old createrepo output).
    Sha1(sha1::Sha1),
    /// SHA-224.
    Sha224(sha2::Sha224),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    Sha384(sha2::Sha384),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A hasher for `kind`, or an error naming the unsupported algorithm.
    pub fn new(kind: &str) -> Result<Hasher> {
        use sha2::Digest;
        Ok(match kind {
            "sha" | "sha1" => Hasher::Sha1(sha1::Sha1::new()),
            "sha224" => Hasher::Sha224(sha2::Sha224::new()),
            "sha256" => Hasher::Sha256(sha2::Sha256::new()),
            "sha384" => Hasher::Sha384(sha2::Sha384::new()),
            "sha512" => Hasher::Sha512(sha2::Sha512::new()),
            other => {
                return Err(super::Error::ChecksumType {
                    kind: other.to_string(),
                }
                .into())
            }
        })
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// Lowercase hex digest.
    pub fn finish(self) -> String {
        use sha2::Digest;
        match self {
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Sha224(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

impl Checksum {
    /// Checks `data` against this checksum; `what` names the file in the error.
    pub fn verify(&self, data: &[u8], what: &str) -> Result<()> {
        let mut h = Hasher::new(&self.kind).with_context(|| format!("verifying {what}"))?;
        h.update(data);
        let got = h.finish();
        if got != self.hex {
            return Err(super::Error::ChecksumMismatch {
                what: what.to_string(),
                kind: self.kind.clone(),
                expected: self.hex.clone(),
                actual: got,
            }
            .into());
        }
        Ok(())
    }
}

/// One `<data>` record of repomd.xml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdRecord {
    /// `primary`, `filelists`, ...
    pub kind: String,
    /// `location href`, relative to the repo's base URL.
    pub href: String,
    /// Checksum of the file as stored (compressed).
    pub checksum: Checksum,
}

/// Parses repomd.xml into its records.
pub fn parse_repomd(xml: &[u8]) -> Result<Vec<MdRecord>> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut cur: Option<(String, Option<String>, Option<Checksum>)> = None;
    let mut in_checksum: Option<String> = None;
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"data" => {
                cur = Some((attr(&e, b"type")?.unwrap_or_default(), None, None));
            }
            Event::Empty(e) | Event::Start(e) if e.local_name().as_ref() == b"location" => {
                if let Some(c) = cur.as_mut() {
                    c.1 = attr(&e, b"href")?;
                }
            }
            Event::Start(e) if e.local_name().as_ref() == b"checksum" => {
                in_checksum = Some(attr(&e, b"type")?.unwrap_or_else(|| "sha256".into()));
            }
            Event::Text(t) => {
                if let (Some(kind), Some(c)) = (in_checksum.take(), cur.as_mut()) {
                    c.2 = Some(Checksum {
                        kind,
                        hex: t.unescape()?.trim().to_ascii_lowercase(),
                    });
                }
            }
            Event::End(e) if e.local_name().as_ref() == b"checksum" => in_checksum = None,
            Event::End(e) if e.local_name().as_ref() == b"data" => {
                if let Some((kind, href, checksum)) = cur.take() {
                    let href =
                        href.with_context(|| format!("<data type=\"{kind}\"> has no location"))?;
                    let checksum = checksum
                        .with_context(|| format!("<data type=\"{kind}\"> has no checksum"))?;
                    out.push(MdRecord {
                        kind,
                        href,
                        checksum,
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if out.is_empty() {
        return Err(super::Error::NotRepomd.into());
    }
    Ok(out)
}

/// One dependency entry (`<rpm:entry>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dep {
    /// Capability name; a rich dependency keeps its whole `(a or b)` text here.
    pub name: String,
    /// Version range, `None` when unversioned.
    pub range: Range,
}

impl std::fmt::Display for Dep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.range {
            None => f.write_str(&self.name),
            Some((op, evr)) => write!(f, "{} {op} {evr}", self.name),
        }
    }
}

/// A package as primary.xml describes it.
#[derive(Debug, Clone, Default)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Architecture (`x86_64`, `noarch`, `src`, ...).
    pub arch: String,
    /// Epoch, version, release.
    pub evr: Evr,
    /// The package file's checksum (also its `pkgid` in filelists).
    pub checksum: Option<Checksum>,
    /// `location href`.
    pub href: String,
    /// `location xml:base`, a different base URL for the file.
    pub base: Option<String>,
    /// Size of the .rpm.
    pub size: u64,
    /// Provides.
    pub provides: Vec<Dep>,
    /// Requires.
    pub requires: Vec<Dep>,
    /// Conflicts.
    pub conflicts: Vec<Dep>,
    /// Obsoletes.
    pub obsoletes: Vec<Dep>,
    /// Recommends (weak requirements dnf installs by default).
    pub recommends: Vec<Dep>,
    /// Supplements (reverse Recommends: installed when what they name is).
    pub supplements: Vec<Dep>,
    /// Files listed in primary (`/etc/*`, `*bin/*`, `/usr/lib/sendmail`), plus those added from filelists.
    pub files: Vec<String>,
}

impl Package {
    /// `name-[epoch:]version-release.arch`.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr, self.arch)
    }
}

/// Wraps `data` in the decompressor its magic bytes name (gzip, xz, bzip2, zstd) or reads it as plain XML.
pub fn decompress<'a>(data: &'a [u8], what: &str) -> Result<Box<dyn BufRead + 'a>> {
    let r: Box<dyn Read + 'a> = if data.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(data))
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(xz2::read::XzDecoder::new_multi_decoder(data))
    } else if data.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(data))
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::new(data)
                .with_context(|| format!("opening zstd stream of {what}"))?,
        )
    } else if data.starts_with(b"\0ZCK1") {
        return Err(super::Error::Zchunk {
            what: what.to_string(),
        }
        .into());
    } else {
        Box::new(data)
    };
    Ok(Box::new(BufReader::with_capacity(256 * 1024, r)))
}

fn attr(e: &BytesStart, name: &[u8]) -> Result<Option<String>> {
    for a in e.attributes() {
        let a = a?;
        if a.key.as_ref() == name {
            return Ok(Some(a.unescape_value()?.into_owned()));
        }
    }
    Ok(None)
}

fn dep_from(e: &BytesStart) -> Result<Dep> {
    let name = attr(e, b"name")?.context("<rpm:entry> without a name")?;
    let range = match attr(e, b"flags")? {
        None => None,
        Some(flags) => {
            let op = Op::from_flags(&flags)
                .with_context(|| format!("entry '{name}': unknown flags '{flags}'"))?;
            let ver = attr(e, b"ver")?.unwrap_or_default();
            let evr = Evr::new(
                attr(e, b"epoch")?.as_deref(),
                &ver,
                attr(e, b"rel")?.as_deref(),
            )
            .with_context(|| format!("entry '{name}'"))?;
            Some((op, evr))
        }
    };
    Ok(Dep { name, range })
}

#[derive(Clone, Copy, PartialEq)]
enum Text {
    None,
    Name,
    Arch,
    Checksum,
    File,
}

#[derive(Clone, Copy, PartialEq)]
enum List {
    None,
    Provides,
    Requires,
    Conflicts,
    Obsoletes,
    Recommends,
    Supplements,
}

/// Parses primary.xml (already decompressed) into packages.
pub fn parse_primary(input: impl BufRead) -> Result<Vec<Package>> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut pkg: Option<Package> = None;
    let mut text = Text::None;
    let mut list = List::None;
    let mut checksum_kind = String::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .with_context(|| format!("at byte {}", reader.buffer_position()))?;
        match ev {
            Event::Start(e) => match e.local_name().as_ref() {
                b"package" => {
                    pkg = Some(Package::default());
                }
                b"name" if pkg.is_some() => text = Text::Name,
                b"arch" if pkg.is_some() => text = Text::Arch,
                b"checksum" if pkg.is_some() => {
                    checksum_kind = attr(&e, b"type")?.unwrap_or_else(|| "sha256".into());
                    text = Text::Checksum;
                }
                b"file" if pkg.is_some() => text = Text::File,
                b"provides" => list = List::Provides,
                b"requires" => list = List::Requires,
                b"conflicts" => list = List::Conflicts,
                b"obsoletes" => list = List::Obsoletes,
                b"recommends" => list = List::Recommends,
                b"supplements" => list = List::Supplements,
                b"version" | b"location" | b"size" | b"entry" => {
                    empty_element(&e, pkg.as_mut(), list)?
                }
                _ => {}
            },
            Event::Empty(e) => empty_element(&e, pkg.as_mut(), list)?,
            Event::Text(t) => {
                if let (Some(p), true) = (pkg.as_mut(), text != Text::None) {
                    let s = t.unescape()?;
                    match text {
                        Text::Name => p.name.push_str(&s),
                        Text::Arch => p.arch.push_str(&s),
                        Text::Checksum => {
                            p.checksum = Some(Checksum {
                                kind: checksum_kind.clone(),
                                hex: s.trim().to_ascii_lowercase(),
                            })
                        }
                        Text::File => p.files.push(s.into_owned()),
                        Text::None => {}
                    }
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"package" => {
                    if let Some(p) = pkg.take() {
                        if p.name.is_empty() || p.href.is_empty() {
                            return Err(super::Error::PackageIncomplete {
                                offset: reader.buffer_position(),
                            }
                            .into());
                        }
                        out.push(p);
                    }
                }
                b"provides" | b"requires" | b"conflicts" | b"obsoletes" | b"recommends"
                | b"suggests" | b"supplements" | b"enhances" => list = List::None,
                _ => text = Text::None,
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

fn empty_element(e: &BytesStart, pkg: Option<&mut Package>, list: List) -> Result<()> {
    let Some(p) = pkg else { return Ok(()) };
    match e.local_name().as_ref() {
        b"version" => {
            let ver = attr(e, b"ver")?.unwrap_or_default();
            p.evr = Evr::new(
                attr(e, b"epoch")?.as_deref(),
                &ver,
                attr(e, b"rel")?.as_deref(),
            )
            .with_context(|| format!("package '{}'", p.name))?;
        }
        b"location" => {
            p.href = attr(e, b"href")?.unwrap_or_default();
            p.base = attr(e, b"xml:base")?;
        }
        b"size" => {
            p.size = attr(e, b"package")?
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        }
        b"entry" => {
            let d = dep_from(e)?;
            match list {
                List::Provides => p.provides.push(d),
                List::Requires => p.requires.push(d),
                List::Conflicts => p.conflicts.push(d),
                List::Obsoletes => p.obsoletes.push(d),
                List::Recommends => p.recommends.push(d),
                List::Supplements => p.supplements.push(d),
                List::None => {}
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads filelists.xml (already decompressed) and returns, per package id (checksum hex), the files among
/// `wanted`.
///
/// Searches the bytes instead of parsing every element: filelists is by far the largest metadata (EL9's three
/// repositories list ~1.3 M files) and only a handful of paths are wanted. Each wanted path is looked up as the text
/// of a `<file>` element (`>PATH</file>`, with the `&`, `<` and `>` escaping createrepo_c writes), and the package
/// is the nearest `<package ... pkgid="...">` before it. Same answer as an element-by-element read
/// (`filelists_fast_path_agrees_with_xml`).
pub fn parse_filelists(
    mut input: impl BufRead,
    wanted: &HashSet<String>,
) -> Result<HashMap<String, Vec<String>>> {
    let mut data = Vec::new();
    input.read_to_end(&mut data)?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut wanted: Vec<&String> = wanted.iter().collect();
    wanted.sort();
    for path in wanted {
        let escaped = path
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let needle = format!(">{escaped}</file>");
        for hit in memchr::memmem::find_iter(&data, needle.as_bytes()) {
            let Some(open) = memchr::memmem::rfind(&data[..hit], b"<package ") else {
                continue;
            };
            let tag_end = memchr::memchr(b'>', &data[open..]).map_or(data.len(), |e| open + e);
            let tag = &data[open..tag_end];
            let Some(at) = memchr::memmem::find(tag, b"pkgid=\"") else {
                continue;
            };
            let v = &tag[at + 7..];
            let Some(q) = memchr::memchr(b'"', v) else {
                continue;
            };
            let id = String::from_utf8_lossy(&v[..q]).to_ascii_lowercase();
            out.entry(id).or_default().push(path.clone());
        }
    }
    for files in out.values_mut() {
        files.sort();
        files.dedup();
    }
    Ok(out)
}

/// The element-by-element reader of filelists.xml (the reference [`parse_filelists`] is tested against).
#[cfg(test)]
fn parse_filelists_xml(
    input: impl BufRead,
    wanted: &HashSet<String>,
) -> Result<HashMap<String, Vec<String>>> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut pkgid: Option<String> = None;
    let mut in_file = false;
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) => match e.local_name().as_ref() {
                b"package" => pkgid = attr(&e, b"pkgid")?.map(|s| s.to_ascii_lowercase()),
                b"file" => in_file = true,
                _ => {}
            },
            Event::Text(t) if in_file => {
                let path = t.unescape()?;
                if wanted.contains(path.as_ref()) {
                    if let Some(id) = &pkgid {
                        out.entry(id.clone()).or_default().push(path.into_owned());
                    }
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"file" => in_file = false,
                b"package" => pkgid = None,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    for files in out.values_mut() {
        files.sort();
        files.dedup();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm">
  <name>super_kernel</name>
  <arch>x86_64</arch>
  <version epoch="0" ver="6.0.1" rel="2"/>
  <checksum type="sha256" pkgid="YES">AB01</checksum>
  <summary>Test package</summary>
  <description>This package has provides, requires, obsoletes, conflicts options.</description>
  <packager></packager>
  <url>http://so_super_kernel.com/it_is_awesome/yep_it_really_is</url>
  <time file="1334667003" build="1334667003"/>
  <size package="3101" installed="0" archive="544"/>
  <location xml:base="http://mirror.example/x" href="super_kernel-6.0.1-2.x86_64.rpm"/>
  <format>
    <rpm:license>LGPLv2</rpm:license>
    <rpm:provides>
      <rpm:entry name="not_so_super_kernel" flags="LT" epoch="0" ver="5.8.0"/>
      <rpm:entry name="super_kernel" flags="EQ" epoch="0" ver="6.0.0"/>
      <rpm:entry name="super_kernel(x86-64)" flags="EQ" epoch="0" ver="6.0.1" rel="2"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="bzip2" flags="GE" epoch="0" ver="1.0.0" pre="1"/>
      <rpm:entry name="expat"/>
      <rpm:entry name="(glib or gtk &amp; friends)"/>
    </rpm:requires>
    <rpm:conflicts>
      <rpm:entry name="kernel"/>
    </rpm:conflicts>
    <rpm:obsoletes>
      <rpm:entry name="kernel" flags="LT" epoch="1" ver="2"/>
    </rpm:obsoletes>
    <rpm:recommends>
      <rpm:entry name="weak"/>
    </rpm:recommends>
    <file>/usr/bin/super_kernel</file>
  </format>
</package>
</metadata>"#;

    #[test]
    fn primary_fields() {
        let pkgs = parse_primary(PRIMARY.as_bytes()).unwrap();
        assert_eq!(pkgs.len(), 1);
        let p = &pkgs[0];
        assert_eq!(p.nevra(), "super_kernel-6.0.1-2.x86_64");
        assert_eq!(p.checksum.as_ref().unwrap().hex, "ab01");
        assert_eq!(p.href, "super_kernel-6.0.1-2.x86_64.rpm");
        assert_eq!(p.base.as_deref(), Some("http://mirror.example/x"));
        assert_eq!(p.size, 3101);
        assert_eq!(p.provides.len(), 3);
        assert_eq!(p.provides[0].to_string(), "not_so_super_kernel < 5.8.0");
        let reqs: Vec<String> = p.requires.iter().map(|d| d.to_string()).collect();
        assert_eq!(reqs, ["bzip2 >= 1.0.0", "expat", "(glib or gtk & friends)"]);
        assert_eq!(p.conflicts[0].name, "kernel");
        assert_eq!(p.obsoletes[0].to_string(), "kernel < 1:2");
        assert_eq!(p.recommends[0].to_string(), "weak");
        assert!(p.supplements.is_empty());
        assert_eq!(p.files, ["/usr/bin/super_kernel"]);
    }

    /// libsolv (`makeevr_parts`, ext/repo_rpmmd.c) drops a trivial epoch: `epoch="0"`, `epoch=""` and no
    /// epoch attribute are one EVR; a non-zero epoch is kept, in packages and in dependency entries.
    #[test]
    fn trivial_epochs_are_no_epoch() {
        let entry = |attrs: &str| {
            let xml = format!("<rpm:entry name=\"x\" flags=\"GE\" {attrs}/>");
            let mut r = Reader::from_str(&xml);
            match r.read_event().unwrap() {
                Event::Empty(e) => dep_from(&e).unwrap(),
                other => panic!("{other:?}"),
            }
        };
        let none = entry(r#"ver="1.0""#);
        assert_eq!(entry(r#"epoch="0" ver="1.0""#), none);
        assert_eq!(entry(r#"epoch="" ver="1.0""#), none);
        assert_eq!(none.to_string(), "x >= 1.0");
        assert_eq!(entry(r#"epoch="1" ver="0""#).to_string(), "x >= 1:0");
        let pkgs = parse_primary(
            PRIMARY
                .replace(
                    r#"epoch="0" ver="6.0.1" rel="2"/>"#,
                    r#"ver="6.0.1" rel="2"/>"#,
                )
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            pkgs[0].evr,
            parse_primary(PRIMARY.as_bytes()).unwrap()[0].evr
        );
    }

    #[test]
    fn repomd_records() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1</revision>
  <data type="primary">
    <checksum type="sha256">AA</checksum>
    <open-checksum type="sha256">bb</open-checksum>
    <location href="repodata/aa-primary.xml.zst"/>
    <size>1</size>
  </data>
  <data type="filelists">
    <checksum type="sha">cc</checksum>
    <location href="repodata/cc-filelists.xml.gz"/>
  </data>
</repomd>"#;
        let recs = parse_repomd(xml).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].kind, "primary");
        assert_eq!(recs[0].href, "repodata/aa-primary.xml.zst");
        assert_eq!(recs[0].checksum.hex, "aa");
        assert_eq!(recs[1].checksum.kind, "sha");
        assert!(parse_repomd(b"<html>nope</html>").is_err());
    }

    #[test]
    fn decompress_by_magic() {
        use std::io::Write;
        let xml = PRIMARY.as_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(xml).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(xml).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(xml).unwrap();
        let zs = zstd::encode_all(xml, 1).unwrap();
        for (name, data) in [
            ("plain", xml.to_vec()),
            ("gz", gz.finish().unwrap()),
            ("xz", xz.finish().unwrap()),
            ("bz2", bz.finish().unwrap()),
            ("zst", zs),
        ] {
            let pkgs = parse_primary(decompress(&data, name).unwrap()).unwrap();
            assert_eq!(pkgs[0].name, "super_kernel", "{name}");
        }
    }

    #[test]
    fn checksum_mismatch_names_file() {
        let c = Checksum {
            kind: "sha256".into(),
            hex: "00".into(),
        };
        let e = c.verify(b"x", "repodata/p.xml.gz").unwrap_err().to_string();
        assert!(
            e.contains("repodata/p.xml.gz") && e.contains("mismatch"),
            "{e}"
        );
        let c = Checksum {
            kind: "md5".into(),
            hex: "00".into(),
        };
        assert!(c.verify(b"x", "f").is_err());
    }

    #[test]
    fn filelists_fast_path_agrees_with_xml() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="3">
<package pkgid="AA11" name="a" arch="x86_64"><version epoch="0" ver="1" rel="1"/>
<file>/usr/lib/a&amp;b</file><file type="dir">/usr/share/x</file><file>/usr/share/x/y</file></package>
<package pkgid="bb22" name="b" arch="i686"><version epoch="0" ver="1" rel="1"/>
<file>/usr/share/x/y</file><file type="ghost">/run/b.pid</file><file>/usr/share/x/yz</file></package>
<package pkgid="cc33" name="c" arch="noarch"><version epoch="0" ver="1" rel="1"/>
<file>/opt/&lt;odd&gt;</file></package>
</filelists>"#;
        let wanted: HashSet<String> = [
            "/usr/lib/a&b",
            "/usr/share/x",
            "/usr/share/x/y",
            "/run/b.pid",
            "/opt/<odd>",
            "/nope",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let fast = parse_filelists(&xml[..], &wanted).unwrap();
        assert_eq!(fast, parse_filelists_xml(&xml[..], &wanted).unwrap());
        assert_eq!(fast["bb22"], ["/run/b.pid", "/usr/share/x/y"]);
        assert_eq!(
            fast["aa11"],
            ["/usr/lib/a&b", "/usr/share/x", "/usr/share/x/y"]
        );
        assert_eq!(fast["cc33"], ["/opt/<odd>"]);
    }

    #[test]
    fn filelists_wanted_only() {
        let xml = br#"<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="1">
<package pkgid="AB01" name="x" arch="noarch"><version epoch="0" ver="1" rel="1"/>
<file>/usr/share/a</file><file type="dir">/usr/share</file><file>/usr/share/b</file></package></filelists>"#;
        let wanted: HashSet<String> = ["/usr/share/b".to_string()].into();
        let got = parse_filelists(&xml[..], &wanted).unwrap();
        assert_eq!(got["ab01"], ["/usr/share/b"]);
    }
}
