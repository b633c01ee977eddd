//! Bundle signatures: a detached signature over `bundle.toml` in minisign's format, `DIR/bundle.toml.minisig`.
//!
//! `bundle.toml` lists the sha256 of every other file of the bundle, so signing it signs the bundle: whoever holds
//! the public key checks the signature ([`verify_manifest`]), then the files against the manifest
//! ([`crate::bundle::verify`]). The format is minisign's own (Ed25519 over the BLAKE2b-512 of the file, a trusted
//! comment signed with it), so stock `minisign -Vm bundle.toml -p KEY.pub` verifies the same file, and a key made
//! by `minisign -G` (or `-GW`, no password) signs with `kubeha bundle sign`.
//!
//! Verification uses `minisign-verify` (no dependencies; the node agent links it); signing and key generation use
//! `minisign` and are behind the `fetch` feature. Secret keys are read from files, their passwords from a file or
//! the environment, and neither ever appears in an error.

use std::path::{Path, PathBuf};

use kubeha_model::bundle::{MANIFEST, MANIFEST_SIGNATURE};

use crate::error::{format_err, io, Result};

/// `DIR/bundle.toml.minisig`.
pub fn signature_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_SIGNATURE)
}

/// What a good signature says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// The signature's trusted comment (signed with it; `timestamp:... file:bundle.toml ...`).
    pub trusted_comment: String,
}

/// Checks `DIR/bundle.toml.minisig` against `public_key`: the text of a minisign public key file (an
/// `untrusted comment:` line, then the key) or the key's base64 line alone. An error says which of the three
/// failed: no signature, a signature by another key, or bytes that do not match.
pub fn verify_manifest(dir: &Path, public_key: &str) -> Result<Verified> {
    let key = parse_public_key(public_key)?;
    let sig_path = signature_path(dir);
    let sig_text = match std::fs::read_to_string(&sig_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format_err(
                dir.display().to_string(),
                format!(
                    "the bundle is not signed ({MANIFEST_SIGNATURE} is missing) and a public key is configured: \
                     sign it with `kubeha bundle sign --key KEY {}`",
                    dir.display()
                ),
            ))
        }
        Err(e) => return Err(io("reading", &sig_path)(e).into()),
    };
    let sig = minisign_verify::Signature::decode(&sig_text).map_err(|e| {
        format_err(
            sig_path.display().to_string(),
            format!("not a minisign signature: {e}"),
        )
    })?;
    let manifest = dir.join(MANIFEST);
    let data = std::fs::read(&manifest).map_err(io("reading", &manifest))?;
    key.verify(&data, &sig, false).map_err(|e| {
        let why = match e {
            minisign_verify::Error::UnexpectedKeyId => {
                "it was made with another key than the configured public key".to_string()
            }
            minisign_verify::Error::InvalidSignature => {
                format!("{MANIFEST} is not the file that was signed (it was changed after signing)")
            }
            minisign_verify::Error::UnexpectedAlgorithm => {
                "a legacy (not prehashed) signature, which is not accepted".to_string()
            }
            other => other.to_string(),
        };
        format_err(
            sig_path.display().to_string(),
            format!("the signature over {MANIFEST} does not verify: {why}"),
        )
    })?;
    Ok(Verified {
        trusted_comment: sig.trusted_comment().to_string(),
    })
}

/// A minisign public key from a key file's text or its base64 line.
fn parse_public_key(text: &str) -> Result<minisign_verify::PublicKey> {
    let t = text.trim();
    let parsed = if t.starts_with("untrusted comment:") {
        minisign_verify::PublicKey::decode(t)
    } else {
        minisign_verify::PublicKey::from_base64(t)
    };
    parsed.map_err(|e| {
        format_err(
            "the bundle public key",
            format!("not a minisign public key: {e}"),
        )
    })
}

/// Signs `DIR/bundle.toml` with the minisign secret key `secret_key` (a key file's text, as `minisign -G` or
/// [`keygen`] writes it) and writes `DIR/bundle.toml.minisig` atomically. `password` decrypts an encrypted key; an
/// encrypted key without one is an error (never a prompt). Returns the signature file's path.
#[cfg(feature = "fetch")]
pub fn sign_manifest(dir: &Path, secret_key: &str, password: Option<String>) -> Result<PathBuf> {
    let sk = load_secret_key(secret_key, password)?;
    let manifest = dir.join(MANIFEST);
    let data = std::fs::read(&manifest).map_err(io("reading", &manifest))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // The trusted comment stock minisign writes, so both tools print the same.
    let trusted = format!("timestamp:{now}\tfile:{MANIFEST}\thashed");
    let sig = minisign::sign(
        None,
        &sk,
        std::io::Cursor::new(&data),
        Some(&trusted),
        Some("signature from kubeha bundle sign"),
    )
    .map_err(|e| format_err("signing bundle.toml", e.to_string()))?;
    let path = signature_path(dir);
    kubeha_model::fsutil::write_atomic(&path, sig.to_string().as_bytes(), 0o644, true)?;
    Ok(path)
}

/// The secret key from a key file's text; the password only when the key is encrypted.
#[cfg(feature = "fetch")]
fn load_secret_key(text: &str, password: Option<String>) -> Result<minisign::SecretKey> {
    use base64::Engine as _;
    let what = "the bundle secret key";
    let bad = |e: String| format_err(what, format!("not a usable minisign secret key: {e}"));
    let line = text
        .lines()
        .nth(1)
        .ok_or_else(|| bad("no key line after the comment".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .map_err(|_| bad("the key line is not base64".into()))?;
    // Bytes 2..4 are the KDF: zero for a password-less key. Such a key is read from its bytes: stock minisign's
    // `-GW` leaves its checksum zero, which the crate's box reader would call corrupted.
    if bytes.get(2..4) == Some(&[0, 0][..]) {
        return minisign::SecretKey::from_bytes(&bytes).map_err(|e| bad(e.to_string()));
    }
    // Encrypted: a password is needed, never asked for on a terminal.
    let Some(password) = password else {
        return Err(format_err(
            what,
            "it is encrypted: give its password with --password-file FILE or the environment variable \
             KUBEHA_BUNDLE_KEY_PASSWORD",
        ));
    };
    minisign::SecretKey::from_box(
        minisign::SecretKeyBox::from_string(text).map_err(|e| bad(e.to_string()))?,
        Some(password),
    )
    .map_err(|e| format_err(what, format!("cannot decrypt it: {e}")))
}

/// A new key pair in minisign's file formats: `(public key file, secret key file)`. With `password` the secret key
/// is encrypted (scrypt, as `minisign -G`); without it is not (as `minisign -GW`).
#[cfg(feature = "fetch")]
pub fn keygen(password: Option<String>) -> Result<(String, String)> {
    let err = |e: minisign::PError| format_err("generating a key pair", e.to_string());
    let kp = match password {
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p)).map_err(err)?,
        None => minisign::KeyPair::generate_unencrypted_keypair().map_err(err)?,
    };
    let public = kp.pk.to_box().map_err(err)?.into_string();
    let secret = kp
        .sk
        .to_box(Some("kubeha bundle secret key"))
        .map_err(err)?
        .into_string();
    Ok((public, secret))
}

#[cfg(all(test, feature = "fetch"))]
mod tests {
    use super::*;

    fn bundle() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(MANIFEST), "format = 1\n").unwrap();
        d
    }

    #[test]
    fn sign_then_verify_and_every_way_to_fail() {
        for password in [None, Some("correct horse".to_string())] {
            let (public, secret) = keygen(password.clone()).unwrap();
            let d = bundle();
            let e = verify_manifest(d.path(), &public).unwrap_err().to_string();
            assert!(e.contains("not signed"), "{e}");
            sign_manifest(d.path(), &secret, password.clone()).unwrap();
            let v = verify_manifest(d.path(), &public).unwrap();
            assert!(v.trusted_comment.contains("file:bundle.toml"), "{v:?}");
            // The base64 line alone works too.
            verify_manifest(d.path(), public.lines().nth(1).unwrap()).unwrap();

            let (other, _) = keygen(None).unwrap();
            let e = verify_manifest(d.path(), &other).unwrap_err().to_string();
            assert!(e.contains("another key"), "{e}");

            std::fs::write(d.path().join(MANIFEST), "format = 2\n").unwrap();
            let e = verify_manifest(d.path(), &public).unwrap_err().to_string();
            assert!(e.contains("changed after signing"), "{e}");
        }
    }

    #[test]
    fn encrypted_key_needs_its_password_and_never_leaks_it() {
        let (_, secret) = keygen(Some("s3cret-pw".into())).unwrap();
        let d = bundle();
        let e = sign_manifest(d.path(), &secret, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("KUBEHA_BUNDLE_KEY_PASSWORD"), "{e}");
        let e = sign_manifest(d.path(), &secret, Some("wrong".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot decrypt") && !e.contains("wrong\"") && !e.contains("s3cret"),
            "{e}"
        );
        let e = sign_manifest(d.path(), "not a key", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a usable minisign secret key"), "{e}");
    }
}
