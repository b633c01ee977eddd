//! The images' bytes, with no I/O: deterministic tar layers (byte for byte what python's `tarfile` wrote in PAX
//! format: mtime 0, uid/gid 0, no user names, 10 KiB records), gzip with mtime 0, and the Docker v2 config,
//! manifest and manifest list JSON as python's `json.dumps` printed them (`", "` and `": "`, ASCII only; the
//! config with sorted keys), so a layer's diff_id and a config's digest are the same as the python generator's.

use anyhow::{ensure, Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;

pub const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// tar's block and record sizes (python's `BLOCKSIZE`, `RECORDSIZE`): an archive ends padded to a record.
const BLOCK: usize = 512;
const RECORD: usize = 20 * BLOCK;

/// `sha256:<hex>` of `b`.
pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// What a layer entry is.
#[derive(Clone, Debug)]
pub enum Kind<'a> {
    Dir,
    File(&'a [u8]),
    Symlink(&'a str),
}

/// One entry of a layer: its path (relative, no leading `/`), kind and permission bits.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub path: &'a str,
    pub kind: Kind<'a>,
    pub mode: u32,
}

impl<'a> Entry<'a> {
    pub fn dir(path: &'a str, mode: u32) -> Self {
        Entry {
            path,
            kind: Kind::Dir,
            mode,
        }
    }
    pub fn file(path: &'a str, data: &'a [u8], mode: u32) -> Self {
        Entry {
            path,
            kind: Kind::File(data),
            mode,
        }
    }
    pub fn symlink(path: &'a str, target: &'a str) -> Self {
        Entry {
            path,
            kind: Kind::Symlink(target),
            mode: 0o777,
        }
    }
}

/// `value` as python's tarfile writes a number field: zero-padded octal filling all but the last byte, then NUL.
fn octal(field: &mut [u8], value: u64) -> Result<()> {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    ensure!(
        s.len() == digits,
        "{value} does not fit a tar field of {digits} octal digits"
    );
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// A NUL-padded text field; longer text would need a PAX header, which no layer here has.
fn text(field: &mut [u8], value: &str) -> Result<()> {
    ensure!(
        value.is_ascii() && value.len() <= field.len(),
        "{value:?} does not fit a tar field of {} bytes",
        field.len()
    );
    field[..value.len()].copy_from_slice(value.as_bytes());
    Ok(())
}

/// The uncompressed layer: the entries in order, each header as python's `tarfile` (PAX format, which for short
/// ASCII names is plain ustar) writes it: a directory's name ends in `/`, the checksum is six octal digits, NUL
/// and a space, the device fields are empty; the archive ends with two zero blocks, padded to a 10 KiB record.
pub fn tar_bytes(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let (name, kind, link, data): (String, _, &str, &[u8]) = match e.kind {
            Kind::Dir if e.path.ends_with('/') => (e.path.to_string(), b'5', "", &[]),
            Kind::Dir => (format!("{}/", e.path), b'5', "", &[]),
            Kind::File(d) => (e.path.to_string(), b'0', "", d),
            Kind::Symlink(t) => (e.path.to_string(), b'2', t, &[]),
        };
        let u = h
            .as_ustar_mut()
            .context("a new ustar header is a ustar header")?;
        text(&mut u.name, &name).with_context(|| format!("tar entry {name}"))?;
        octal(&mut u.mode, u64::from(e.mode & 0o7777))?;
        octal(&mut u.uid, 0)?;
        octal(&mut u.gid, 0)?;
        octal(&mut u.size, data.len() as u64).with_context(|| format!("tar entry {name}"))?;
        octal(&mut u.mtime, 0)?;
        u.typeflag = [kind];
        text(&mut u.linkname, link).with_context(|| format!("tar entry {name}"))?;
        // magic "ustar\0" and version "00" come with new_ustar; uname, gname, the device fields and prefix stay NUL.
        u.cksum = [b' '; 8];
        let sum: u32 = h.as_bytes().iter().map(|&c| u32::from(c)).sum();
        let ck = format!("{sum:06o}\0 ");
        ensure!(ck.len() == 8, "tar checksum {sum} of {name} overflows");
        h.as_ustar_mut()
            .context("a new ustar header is a ustar header")?
            .cksum
            .copy_from_slice(ck.as_bytes());
        b.append(&h, data)
            .with_context(|| format!("adding {name} to a layer"))?;
    }
    // into_inner writes the two zero blocks that end an archive.
    let mut out = b.into_inner().context("finishing a layer's tar")?;
    out.resize(out.len().div_ceil(RECORD) * RECORD, 0);
    Ok(out)
}

/// `b` gzipped with mtime 0 and no file name (python's `gzip.GzipFile(fileobj=..., mtime=0)`) at `level` (python's
/// default is 9; the real images' big layers use 1).
pub fn gz(b: &[u8], level: u32) -> Result<Vec<u8>> {
    let mut g = GzEncoder::new(Vec::new(), Compression::new(level));
    g.write_all(b).context("gzipping a layer")?;
    g.finish().context("gzipping a layer")
}

/// A layer: the tar (its digest is the config's diff_id) and the gzip the registry stores.
#[derive(Clone, Debug)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub gz: Vec<u8>,
}

impl Layer {
    /// `entries` as a layer, gzipped at python's default level 9.
    pub fn new(entries: &[Entry]) -> Result<Layer> {
        let tar = tar_bytes(entries)?;
        let gz = gz(&tar, 9)?;
        Ok(Layer { tar, gz })
    }
}

/// The busybox base layer of the stand-ins: /bin/busybox, its applets the images use as symlinks, /etc and /tmp.
pub fn base_layer(busybox: &[u8]) -> Result<Layer> {
    let mut entries = vec![
        Entry::dir("bin", 0o755),
        Entry::file("bin/busybox", busybox, 0o755),
    ];
    let cmds = ["sh", "echo", "cat", "ls", "sleep", "true"].map(|c| format!("bin/{c}"));
    entries.extend(cmds.iter().map(|c| Entry::symlink(c, "busybox")));
    entries.extend([Entry::dir("etc", 0o755), Entry::dir("tmp", 0o1777)]);
    Layer::new(&entries)
}

/// python's `json.dumps` output format: `", "` between items, `": "` after a key, everything but printable ASCII
/// escaped (`ensure_ascii`).
struct PyJson;

impl serde_json::ser::Formatter for PyJson {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        s: &str,
    ) -> std::io::Result<()> {
        for c in s.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                for u in c.encode_utf16(&mut [0; 2]) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// `v` as python's `json.dumps(v)` prints it (the key order is `v`'s: a `serde_json::Value`'s is sorted).
pub fn dumps<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut s = serde_json::Serializer::with_formatter(&mut out, PyJson);
    v.serialize(&mut s).context("serializing JSON")?;
    Ok(out)
}

/// An image config (`json.dumps(..., sort_keys=True)`): amd64/arm64 linux, `config` (Cmd, Entrypoint, Env, User),
/// the layers' diff_ids and one history line a layer.
pub fn config(arch: &str, conf: Value, layers: &[&Layer], history: &[String]) -> Result<Vec<u8>> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(&l.tar)).collect();
    let history: Vec<Value> = history.iter().map(|h| json!({ "created_by": h })).collect();
    dumps(&json!({
        "architecture": arch,
        "os": "linux",
        "config": conf,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": history,
    }))
}

/// A blob a manifest names.
#[derive(Serialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    size: usize,
    digest: String,
}

#[derive(Serialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// One image: its config and its gzipped layers, in the order they are pushed (layers, then the config).
pub struct Image<'a> {
    pub config: Vec<u8>,
    pub layers: Vec<&'a [u8]>,
}

impl Image<'_> {
    /// The Docker v2 manifest (schemaVersion, mediaType, config, layers, in python's key order).
    pub fn manifest(&self) -> Result<Vec<u8>> {
        let d = |media_type, b: &[u8]| Descriptor {
            media_type,
            size: b.len(),
            digest: sha(b),
        };
        dumps(&Manifest {
            schema_version: 2,
            media_type: MANIFEST,
            config: d(CONFIG, &self.config),
            layers: self.layers.iter().map(|l| d(LAYER, l)).collect(),
        })
    }
}

#[derive(Serialize)]
struct Platform {
    architecture: &'static str,
    os: &'static str,
}

#[derive(Serialize)]
struct ListEntry {
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    size: usize,
    digest: String,
    platform: Platform,
}

#[derive(Serialize)]
struct List {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: Vec<ListEntry>,
}

/// The manifest list of an amd64 and an arm64 manifest (both linux), in that order.
pub fn manifest_list(amd64: &[u8], arm64: &[u8]) -> Result<Vec<u8>> {
    let e = |m: &[u8], architecture| ListEntry {
        media_type: MANIFEST,
        size: m.len(),
        digest: sha(m),
        platform: Platform {
            architecture,
            os: "linux",
        },
    };
    dumps(&List {
        schema_version: 2,
        media_type: MANIFEST_LIST,
        manifests: vec![e(amd64, "amd64"), e(arm64, "arm64")],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    /// Every entry of a tar: (path, type byte, mode, size, link target, uid, gid, mtime, contents).
    type Read_ = (String, u8, u32, u64, String, u64, u64, u64, Vec<u8>);

    fn entries(tar: &[u8]) -> Vec<Read_> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = vec![];
                e.read_to_end(&mut data).unwrap();
                (
                    String::from_utf8(h.path_bytes().to_vec()).unwrap(),
                    h.entry_type().as_byte(),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                    h.link_name()
                        .unwrap()
                        .map(|l| l.display().to_string())
                        .unwrap_or_default(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    data,
                )
            })
            .collect()
    }

    fn small() -> Vec<u8> {
        tar_bytes(&[
            Entry::dir("bin", 0o755),
            Entry::file("bin/x", b"hello\n", 0o755),
            Entry::symlink("bin/sh", "x"),
            Entry::dir("tmp", 0o1777),
        ])
        .unwrap()
    }

    #[test]
    fn a_layer_is_byte_for_byte_what_python_tarfile_wrote() {
        // The SHA-256 of python's tarfile (3.11, PAX format) of the same entries, mtime 0, uid/gid 0.
        let t = small();
        assert_eq!(t.len(), 10240);
        assert_eq!(
            hex::encode(Sha256::digest(&t)),
            "573e39e666fbfe60fc86a3c17396cec0befc6a82a3ca8e44f2762385de9217de"
        );
        assert_eq!(t, small(), "deterministic");
        // The header as python writes it: checksum as six octal digits, NUL, space; no user names.
        assert_eq!(
            &t[148..156],
            format!("{:06o}\0 ", {
                let mut h = t[..512].to_vec();
                h[148..156].fill(b' ');
                h.iter().map(|&b| u32::from(b)).sum::<u32>()
            })
            .as_bytes()
        );
        assert_eq!(&t[257..265], b"ustar\x0000");
        let got = entries(&t);
        let row = |p: &str, k: u8, m: u32, s: u64, l: &str, d: &[u8]| {
            (p.to_string(), k, m, s, l.to_string(), 0, 0, 0, d.to_vec())
        };
        assert_eq!(
            got,
            [
                row("bin/", b'5', 0o755, 0, "", b""),
                row("bin/x", b'0', 0o755, 6, "", b"hello\n"),
                row("bin/sh", b'2', 0o777, 0, "x", b""),
                row("tmp/", b'5', 0o1777, 0, "", b""),
            ]
        );
        // A name python would have put in a PAX header is refused rather than written differently.
        let long = "a/".repeat(60);
        assert!(tar_bytes(&[Entry::dir(&long, 0o755)]).is_err());
    }

    #[test]
    fn the_base_layer_is_busybox_its_applets_etc_and_tmp() {
        let bb = b"BUSYBOX\n".repeat(100);
        let l = base_layer(&bb).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&l.tar)),
            "89a1314aa66069563757a1ea933d587ead4b01c9722b5eb45e1f2cf1b50f50c6"
        );
        let got: Vec<(String, u8, u32, String)> = entries(&l.tar)
            .into_iter()
            .map(|e| (e.0, e.1, e.2, e.4))
            .collect();
        let mut want = vec![
            ("bin/".to_string(), b'5', 0o755, String::new()),
            ("bin/busybox".into(), b'0', 0o755, String::new()),
        ];
        for c in ["sh", "echo", "cat", "ls", "sleep", "true"] {
            want.push((format!("bin/{c}"), b'2', 0o777, "busybox".into()));
        }
        want.push(("etc/".into(), b'5', 0o755, String::new()));
        want.push(("tmp/".into(), b'5', 0o1777, String::new()));
        assert_eq!(got, want);
        let mut back = vec![];
        GzDecoder::new(&l.gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, l.tar);
    }

    #[test]
    fn gzip_is_deterministic_with_mtime_0_and_the_level_in_its_header() {
        let data = b"some layer bytes ".repeat(1000);
        let (a, b) = (gz(&data, 9).unwrap(), gz(&data, 9).unwrap());
        assert_eq!(a, b);
        // magic, deflate, no flags (no file name), mtime 0, XFL 2 (best) or 4 (fast), OS 255: python's header.
        assert_eq!(a[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        assert_eq!(
            gz(&data, 1).unwrap()[..10],
            [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255]
        );
        let mut back = vec![];
        GzDecoder::new(&a[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn json_is_printed_as_python_json_dumps_prints_it() {
        let v = json!({"b": [1, 2], "a": "\u{e9}\u{7f}\n\"\\ \u{1d11e}"});
        assert_eq!(
            String::from_utf8(dumps(&v).unwrap()).unwrap(),
            r#"{"a": "\u00e9\u007f\n\"\\ \ud834\udd1e", "b": [1, 2]}"#
        );
    }

    #[test]
    fn a_manifest_names_its_blobs_by_digest_and_size() {
        let base = Layer::new(&[Entry::dir("etc", 0o755)]).unwrap();
        let extra = Layer::new(&[Entry::file("etc/x", b"x", 0o644)]).unwrap();
        let config = config(
            "amd64",
            json!({"Cmd": ["/bin/true"]}),
            &[&base, &extra],
            &["one".into(), "two".into()],
        )
        .unwrap();
        let c: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(
            c["rootfs"]["diff_ids"],
            json!([sha(&base.tar), sha(&extra.tar)])
        );
        assert_eq!(c["history"][1]["created_by"], "two");
        let img = Image {
            config: config.clone(),
            layers: vec![&base.gz, &extra.gz],
        };
        let m = img.manifest().unwrap();
        let text = String::from_utf8(m.clone()).unwrap();
        assert!(text.starts_with(r#"{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": "#), "{text}");
        let m: Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(m["config"]["digest"], sha(&config));
        assert_eq!(m["config"]["size"], config.len());
        for (i, l) in [&base, &extra].iter().enumerate() {
            assert_eq!(m["layers"][i]["mediaType"], LAYER);
            assert_eq!(m["layers"][i]["digest"], sha(&l.gz));
            assert_eq!(m["layers"][i]["size"], l.gz.len());
        }
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_manifest_list_is_amd64_then_arm64_as_python_printed_it() {
        assert_eq!(
            String::from_utf8(manifest_list(b"A", b"B").unwrap()).unwrap(),
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1, "digest": "sha256:559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd", "platform": {"architecture": "amd64", "os": "linux"}}, {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1, "digest": "sha256:df7e70e5021544f4834bbee64a9e3789febc4be81470df629cad6ddb03320a5c", "platform": {"architecture": "arm64", "os": "linux"}}]}"#
        );
    }
}
