//! The cluster's join material, generated once on the build host (`kubeha secrets`).
//!
//! Pre-generating the CAs is what lets every master initialize or join at any time, with no `--upload-certs`
//! window and no copying of certificates between nodes: kubeadm uses CA files it finds in /etc/kubernetes/pki
//! instead of creating new ones. Keys are RSA 2048 in PKCS#1 PEM, which every kubeadm since 1.11 reads
//! (1.11's pkiutil only accepts RSA CA keys).

use std::path::Path;

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// CA validity, like kubeadm's (10 years).
pub const CA_VALIDITY_DAYS: i64 = 3650;

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CertKey {
    /// PEM `CERTIFICATE`.
    pub cert: String,
    /// PEM `RSA PRIVATE KEY`.
    pub key: String,
}

/// The service-account signing key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KeyPairPem {
    /// PEM `RSA PRIVATE KEY` (kubeadm's sa.key).
    pub key: String,
    /// PEM `PUBLIC KEY` (kubeadm's sa.pub).
    #[serde(rename = "pub")]
    pub public: String,
}

/// Everything `kubeha secrets` generates: the file is 0600 and must be kept like a CA key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Secrets {
    /// Bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`.
    pub bootstrap_token: String,
    /// kubeadm's certificate key: 64 lowercase hex characters (32-byte AES key).
    pub certificate_key: String,
    /// `sha256:<hex>` of the cluster CA's SubjectPublicKeyInfo (kubeadm's discovery-token-ca-cert-hash).
    pub ca_cert_hash: String,
    /// keepalived's VRRP `auth_pass` (8 characters: keepalived uses only the first eight).
    pub vrrp_auth_pass: String,
    /// The cluster CA (`kubernetes`).
    pub ca: CertKey,
    /// The front-proxy CA.
    pub front_proxy_ca: CertKey,
    /// The etcd CA.
    pub etcd_ca: CertKey,
    /// The service-account key pair.
    pub service_account: KeyPairPem,
}

const ALNUM_LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

fn crypto<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Crypto(format!("{what}: {e}"))
}

/// Generates an RSA 2048 key; returns (PKCS#1 PEM, PKCS#8 PEM, SPKI PEM).
fn rsa_key() -> Result<(String, String, String)> {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
        .map_err(crypto("generating an RSA key"))?;
    let pkcs1 = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(crypto("encoding a key"))?;
    let pkcs8 = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(crypto("encoding a key"))?;
    let spki = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(crypto("encoding a public key"))?;
    Ok((pkcs1.to_string(), pkcs8.to_string(), spki))
}

/// Generates a self-signed CA with common name `cn`, valid [`CA_VALIDITY_DAYS`].
pub fn generate_ca(cn: &str) -> Result<CertKey> {
    let (pkcs1, pkcs8, _) = rsa_key()?;
    let kp = KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .map_err(crypto("loading a CA key"))?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    p.serial_number = Some(rcgen::SerialNumber::from_slice(
        &rand::random::<[u8; 16]>()[..],
    ));
    p.use_authority_key_identifier_extension = false;
    let cert = p
        .self_signed(&kp)
        .map_err(crypto("signing a CA certificate"))?;
    Ok(CertKey {
        cert: cert.pem(),
        key: pkcs1,
    })
}

/// `sha256:<hex>` of the certificate's SubjectPublicKeyInfo: what `kubeadm join --discovery-token-ca-cert-hash` pins.
pub fn ca_cert_hash(cert_pem: &str) -> Result<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(crypto("reading a PEM certificate"))?;
    let cert = pem.parse_x509().map_err(crypto("parsing a certificate"))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(spki))))
}

/// One CA's certificate and key with the field names errors show.
pub(crate) struct CaFields<'a> {
    pub cert_field: String,
    pub cert: &'a str,
    pub key_field: String,
    pub key: &'a str,
}

impl<'a> CaFields<'a> {
    /// `<prefix>.cert` and `<prefix>.key`.
    pub(crate) fn of(prefix: &str, ck: &'a CertKey) -> CaFields<'a> {
        CaFields {
            cert_field: format!("{prefix}.cert"),
            cert: &ck.cert,
            key_field: format!("{prefix}.key"),
            key: &ck.key,
        }
    }
}

/// Checks that each CA's key is the private key of its certificate, that no two CAs share a key, and that the
/// service-account public key is the half of its private key: what kubeadm would only find out half-way through
/// `init`, or never (a mismatched sa.pub makes every token unverifiable). Returns the first problem as (field,
/// message); messages never quote key material.
pub(crate) fn check_key_material(
    cas: [CaFields<'_>; 3],
    sa: (&str, &KeyPairPem),
) -> std::result::Result<(), (String, String)> {
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    for CaFields {
        cert_field,
        cert,
        key_field,
        key,
    } in cas
    {
        let cert_spki = ca_cert_spki(cert).map_err(|m| (cert_field.clone(), m))?;
        let key_spki = private_key_spki(key).map_err(|m| (key_field.clone(), m))?;
        if key_spki != cert_spki {
            return Err((
                key_field,
                format!("is not the private key of {cert_field} (their public keys differ)"),
            ));
        }
        if let Some((other, _)) = seen.iter().find(|(_, k)| *k == key_spki) {
            return Err((
                key_field,
                format!("is the same key as {other}: each CA needs its own key"),
            ));
        }
        seen.push((key_field, key_spki));
    }
    let (field, pair) = sa;
    let private = private_key_spki(&pair.key).map_err(|m| (format!("{field}.key"), m))?;
    let public = rsa::RsaPublicKey::from_public_key_pem(pair.public.trim())
        .ok()
        .and_then(|k| k.to_public_key_der().ok())
        .map(|d| d.as_bytes().to_vec())
        .ok_or_else(|| {
            (
                format!("{field}.public"),
                "not a PEM RSA public key (-----BEGIN PUBLIC KEY-----)".to_string(),
            )
        })?;
    if private != public {
        return Err((
            format!("{field}.public"),
            format!("is not the public half of {field}.key"),
        ));
    }
    Ok(())
}

/// The DER SubjectPublicKeyInfo of a PEM CA certificate. Errors never quote the input.
fn ca_cert_spki(cert_pem: &str) -> std::result::Result<Vec<u8>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|_| "not a PEM certificate (-----BEGIN CERTIFICATE-----)".to_string())?;
    let cert = pem
        .parse_x509()
        .map_err(|_| "the PEM block is not a valid X.509 certificate".to_string())?;
    if !cert.is_ca() {
        return Err("is not a CA certificate (basicConstraints CA:TRUE)".into());
    }
    Ok(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// The DER SubjectPublicKeyInfo of a PEM RSA private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`), as
/// kubeadm reads CA and service-account keys. Errors never quote the input.
fn private_key_spki(key_pem: &str) -> std::result::Result<Vec<u8>, String> {
    let pem = key_pem.trim();
    let parsed = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        rsa::RsaPrivateKey::from_pkcs1_pem(pem).ok()
    } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok()
    } else {
        return Err("not a PEM RSA private key (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)".into());
    };
    let key = parsed.ok_or_else(|| {
        "the PEM block is not a valid RSA private key (damaged base64 or not RSA)".to_string()
    })?;
    if !encoded_crt_values_match(pem, &key) {
        return Err(
            "the PEM block is not a valid RSA private key (its CRT values do not match its primes: damaged base64)"
                .into(),
        );
    }
    key.to_public_key()
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .map_err(|_| "cannot encode its public key".to_string())
}

/// Whether the CRT values a PEM RSA private key encodes (exponent1, exponent2, coefficient) are the ones its
/// primes and private exponent give. The rsa crate recomputes them and ignores the encoded ones, so a character
/// flipped in the last third of the base64 (where they are) would pass its parse; Go's x509 (kubeadm and the
/// control plane, built with Go 1.24 or later) checks them and refuses the key.
fn encoded_crt_values_match(pem: &str, key: &rsa::RsaPrivateKey) -> bool {
    use rsa::traits::PrivateKeyParts;
    let Ok((label, doc)) = rsa::pkcs8::SecretDocument::from_pem(pem) else {
        return false;
    };
    let pkcs1_der = match label {
        "RSA PRIVATE KEY" => doc.as_bytes(),
        "PRIVATE KEY" => match rsa::pkcs8::PrivateKeyInfo::try_from(doc.as_bytes()) {
            Ok(info) => info.private_key,
            Err(_) => return false,
        },
        _ => return false,
    };
    let Ok(enc) = rsa::pkcs1::RsaPrivateKey::try_from(pkcs1_der) else {
        return false;
    };
    let [p, q] = key.primes() else {
        return false;
    };
    let one = rsa::BigUint::from(1u8);
    let int = |b: &[u8]| rsa::BigUint::from_bytes_be(b);
    int(enc.exponent1.as_bytes()) == key.d() % (p - &one)
        && int(enc.exponent2.as_bytes()) == key.d() % (q - &one)
        && key
            .crt_coefficient()
            .is_some_and(|c| int(enc.coefficient.as_bytes()) == c)
}

/// Whether `t` is a kubeadm bootstrap token (`\A[a-z0-9]{6}\.[a-z0-9]{16}\z`).
pub fn is_bootstrap_token(t: &str) -> bool {
    let ok = |s: &str, n| s.len() == n && s.bytes().all(|b| ALNUM_LOWER.contains(&b));
    matches!(t.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

impl Secrets {
    /// Generates a fresh set.
    pub fn generate() -> Result<Secrets> {
        let ca = generate_ca("kubernetes")?;
        let front_proxy_ca = generate_ca("front-proxy-ca")?;
        let etcd_ca = generate_ca("etcd-ca")?;
        let (sa_key, _, sa_pub) = rsa_key()?;
        let token = format!(
            "{}.{}",
            random_from(ALNUM_LOWER, 6),
            random_from(ALNUM_LOWER, 16)
        );
        let certificate_key = hex::encode(rand::random::<[u8; 32]>());
        let vrrp_auth_pass = random_from(
            b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
            8,
        );
        Ok(Secrets {
            ca_cert_hash: ca_cert_hash(&ca.cert)?,
            bootstrap_token: token,
            certificate_key,
            vrrp_auth_pass,
            ca,
            front_proxy_ca,
            etcd_ca,
            service_account: KeyPairPem {
                key: sa_key,
                public: sa_pub,
            },
        })
    }

    /// Checks formats and that the recorded hash matches the CA; `file` names the source.
    pub fn check(&self, file: &str) -> Result<()> {
        let bad = |field: &str, message: String| Error::Value {
            field: format!("{file}: {field}"),
            message,
        };
        if !is_bootstrap_token(&self.bootstrap_token) {
            return Err(bad(
                "bootstrap-token",
                "not a token like abcdef.0123456789abcdef".into(),
            ));
        }
        if self.certificate_key.len() != 64
            || !self.certificate_key.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad("certificate-key", "not 64 hex characters".into()));
        }
        if self.vrrp_auth_pass.is_empty() || self.vrrp_auth_pass.len() > 8 {
            return Err(bad("vrrp-auth-pass", "must be 1 to 8 characters".into()));
        }
        check_key_material(
            [
                CaFields::of("ca", &self.ca),
                CaFields::of("front-proxy-ca", &self.front_proxy_ca),
                CaFields::of("etcd-ca", &self.etcd_ca),
            ],
            ("service-account", &self.service_account),
        )
        .map_err(|(field, m)| bad(&field, m))?;
        let h = ca_cert_hash(&self.ca.cert).map_err(|e| bad("ca.cert", e.to_string()))?;
        if h != self.ca_cert_hash {
            return Err(bad(
                "ca-cert-hash",
                format!("does not match ca.cert (which hashes to {h})"),
            ));
        }
        Ok(())
    }

    /// Parses and checks secrets text.
    pub fn parse(text: &str, file: &str) -> Result<Secrets> {
        let s: Secrets = toml::from_str(text).map_err(|e| Error::Parse {
            file: file.to_string(),
            message: crate::redacted_toml_error(text, &e),
        })?;
        s.check(file)?;
        Ok(s)
    }

    /// Reads and checks a secrets file.
    pub fn load(path: &Path) -> Result<Secrets> {
        let text = std::fs::read_to_string(path).map_err(crate::io("reading", path))?;
        Secrets::parse(&text, &path.display().to_string())
    }

    /// Writes the file atomically with mode 0600; refuses to replace an existing file unless `force`.
    pub fn save(&self, path: &Path, force: bool) -> Result<()> {
        let mut text = String::from(
            "# kubeha cluster secrets: CA keys and join tokens. Keep like a CA key (mode 0600).\n",
        );
        text.push_str(&toml::to_string(self).expect("secrets serialize"));
        crate::fsutil::write_atomic(path, text.as_bytes(), 0o600, force)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_format() {
        for (t, ok) in [
            ("abcdef.0123456789abcdef", true),
            ("ABCDEF.0123456789abcdef", false),
            ("abcde.0123456789abcdef", false),
            ("abcdef.0123456789abcde", false),
            ("abcdef0123456789abcdef", false),
            ("abcdef.0123456789abcdef\n", false),
            ("abcdef.0123456789abcd_f", false),
        ] {
            assert_eq!(is_bootstrap_token(t), ok, "token {t:?}");
        }
    }

    #[test]
    fn generate_roundtrip() {
        let s = Secrets::generate().unwrap();
        assert!(is_bootstrap_token(&s.bootstrap_token));
        assert_eq!(s.certificate_key.len(), 64);
        let text = toml::to_string(&s).unwrap();
        let back = Secrets::parse(&text, "t").unwrap();
        assert_eq!(back, s);
        let mut bad = s.clone();
        bad.ca_cert_hash = format!("sha256:{}", "0".repeat(64));
        assert!(bad
            .check("t")
            .unwrap_err()
            .to_string()
            .contains("ca-cert-hash"));
    }

    /// Each damaged secrets file names the field and never quotes key material.
    #[test]
    fn key_material_checks() {
        let s = Secrets::generate().unwrap();
        let other = Secrets::generate().unwrap();
        // A base64 character flipped in the middle of the CA key.
        let flip = |pem: &str| {
            let lines: Vec<&str> = pem.lines().collect();
            let mid = lines.len() / 2;
            let mut l = lines[mid].to_string();
            let c = if l.starts_with('A') { "B" } else { "A" };
            l.replace_range(0..1, c);
            let mut out: Vec<String> = lines.iter().map(|x| x.to_string()).collect();
            out[mid] = l;
            out.join("\n") + "\n"
        };
        type Edit = Box<dyn Fn(&mut Secrets)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            (
                "ca key of another CA",
                Box::new(|x: &mut Secrets| x.ca.key = x.etcd_ca.key.clone()),
                "ca.key",
            ),
            (
                "ca key from another file",
                {
                    let k = other.ca.key.clone();
                    Box::new(move |x: &mut Secrets| x.ca.key = k.clone())
                },
                "ca.key",
            ),
            (
                "flipped base64 in ca.key",
                Box::new(move |x: &mut Secrets| x.ca.key = flip(&x.ca.key)),
                "ca.key",
            ),
            (
                "etcd CA pair reused as front-proxy CA",
                Box::new(|x: &mut Secrets| x.front_proxy_ca = x.etcd_ca.clone()),
                "etcd-ca.key",
            ),
            (
                "sa public from another pair",
                {
                    let k = other.service_account.public.clone();
                    Box::new(move |x: &mut Secrets| x.service_account.public = k.clone())
                },
                "service-account.public",
            ),
            (
                "sa key not PEM",
                Box::new(|x: &mut Secrets| x.service_account.key = "PRIVATE KEY".into()),
                "service-account.key",
            ),
            (
                "ca cert not PEM",
                Box::new(|x: &mut Secrets| x.ca.cert = "BEGIN CERTIFICATE".into()),
                "ca.cert",
            ),
        ];
        for (what, edit, field) in cases {
            let mut bad = s.clone();
            edit(&mut bad);
            let e = bad.check("secrets.toml").unwrap_err().to_string();
            assert!(e.contains(&format!("secrets.toml: {field}")), "{what}: {e}");
            for pem in [
                &s.ca.key,
                &s.etcd_ca.key,
                &s.service_account.key,
                &other.ca.key,
            ] {
                let body = pem.lines().nth(3).unwrap();
                assert!(!e.contains(body), "{what}: error quotes key material: {e}");
            }
        }
        // A character flipped anywhere in a key's base64 is refused, in the last third too, where PKCS#1 keeps the
        // CRT values (dp, dq, qinv) that the rsa crate recomputes instead of reading and Go's x509 checks.
        let lines: Vec<&str> = s.ca.key.lines().collect();
        for li in 1..lines.len() - 1 {
            for ci in (0..lines[li].len()).step_by(21) {
                let mut l = lines[li].as_bytes().to_vec();
                l[ci] = if l[ci] == b'A' { b'B' } else { b'A' };
                let mut out: Vec<String> = lines.iter().map(|x| x.to_string()).collect();
                out[li] = String::from_utf8(l).unwrap();
                let mut bad = s.clone();
                bad.ca.key = out.join("\n") + "\n";
                let e = bad.check("secrets.toml").expect_err(&format!(
                    "line {li} column {ci} of ca.key flipped is accepted"
                ));
                assert!(e.to_string().contains("secrets.toml: ca.key"), "{e}");
            }
        }
        // PKCS#8 keys are accepted like kubeadm's.
        let mut p8 = s.clone();
        let k = rsa::RsaPrivateKey::from_pkcs1_pem(&s.service_account.key).unwrap();
        p8.service_account.key = k.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        p8.check("t").unwrap();
    }
}
