//! Content digests (`sha256:<64 hex>`) and hashing readers/writers.
//!
//! Only sha256 is accepted: it is what every registry and runtime kubeha talks to uses, and the OCI image spec
//! makes it the one algorithm implementations MUST support.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{format_err, io, Error, Result};

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(s: &str) -> Result<Digest> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format_err(format!("digest '{s}'"), "not a sha256: digest"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format_err(
                format!("digest '{s}'"),
                "the sha256 part is not 64 lowercase hex characters",
            ));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest::from_hex(&hex::encode(Sha256::digest(data)))
    }

    fn from_hex(hex: &str) -> Digest {
        Digest(format!("sha256:{hex}"))
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The whole `sha256:...` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A running sha256 with a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Hasher {
        Hasher::default()
    }
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.len += data.len() as u64;
    }
    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The digest of everything fed.
    pub fn digest(&self) -> Digest {
        Digest::from_hex(&hex::encode(self.sha.clone().finalize()))
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
        }
    }
    /// The hasher of what was read so far.
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`, with `hasher` holding what was written before (for resumed downloads).
    pub fn new(inner: W, hasher: Hasher) -> Self {
        HashingWriter { inner, hasher }
    }
    /// The hasher of what was written so far.
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }
    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    /// Unwraps.
    pub fn into_parts(self) -> (W, Hasher) {
        (self.inner, self.hasher)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes a whole file: its sha256 hex and size.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let h = hash_file(path)?;
    Ok((h.digest().hex().to_string(), h.len()))
}

/// Hashes a whole file.
pub fn hash_file(path: &Path) -> Result<Hasher> {
    let f = std::fs::File::open(path).map_err(io("opening", path))?;
    let mut r = HashingReader::new(f);
    io::copy(&mut r, &mut io::sink()).map_err(io("reading", path))?;
    Ok(r.hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_digests() {
        let good = format!("sha256:{}", "a".repeat(64));
        for (s, ok) in [
            (good.as_str(), true),
            ("sha256:abc", false),
            ("sha512:aaaa", false),
            ("", false),
            (&*format!("sha256:{}", "A".repeat(64)), false),
            (&*format!("sha256:{}", "g".repeat(64)), false),
        ] {
            assert_eq!(Digest::parse(s).is_ok(), ok, "digest {s:?}");
        }
    }

    #[test]
    fn digest_of_empty() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = Hasher::new();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.digest(), Digest::of(b"abc"));
        assert_eq!(h.len(), 3);
    }
}
