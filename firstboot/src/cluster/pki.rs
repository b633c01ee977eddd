//! The shared CA material, and certificates signed by it.
//!
//! Every master's node config carries the cluster CA, the front-proxy CA, the etcd CA and the service-account key
//! pair. Writing them to /etc/kubernetes/pki before `kubeadm init` or `kubeadm join` (control plane) makes kubeadm
//! use them instead of generating new ones or downloading them, so any master can initialize or join at any time.
//!
//! The agent also signs its own short-lived client certificates: one from the etcd CA to talk to etcd during a
//! rebuild, one from the cluster CA (`O=system:masters`) to delete a stale Node object.

use std::net::IpAddr;

use anyhow::{bail, Context as _, Result};
use kubeha_model::node::ControlPlane;
use kubeha_model::secrets::CertKey;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use crate::engine::Context;

/// kubeadm's certificates directory.
pub const PKI_DIR: &str = "/etc/kubernetes/pki";

/// The files written into [`PKI_DIR`]: (relative path, contents, mode).
pub fn pki_files<'a>(ca_cert: &'a str, cp: &'a ControlPlane) -> Vec<(&'static str, &'a str, u32)> {
    vec![
        ("ca.crt", ca_cert, 0o644),
        ("ca.key", &cp.ca_key, 0o600),
        ("front-proxy-ca.crt", &cp.front_proxy_ca.cert, 0o644),
        ("front-proxy-ca.key", &cp.front_proxy_ca.key, 0o600),
        ("etcd/ca.crt", &cp.etcd_ca.cert, 0o644),
        ("etcd/ca.key", &cp.etcd_ca.key, 0o600),
        ("sa.key", &cp.service_account.key, 0o600),
        ("sa.pub", &cp.service_account.public, 0o644),
    ]
}

/// Writes the CA material into [`PKI_DIR`] through the context; returns how many files it wrote. A file that
/// already holds the same bytes is left alone; a file that holds different ones is an error (this master was set up
/// with other CAs, and replacing them would break whatever uses them).
pub fn write_pki(ctx: &Context, ca_cert: &str, cp: &ControlPlane) -> Result<usize> {
    let files = pki_files(ca_cert, cp);
    let sys = |rel: &str| format!("{PKI_DIR}/{rel}");
    // Check everything before changing anything.
    for (rel, data, _) in &files {
        if let Ok(old) = std::fs::read(ctx.path(sys(rel))) {
            if old != data.as_bytes() {
                bail!(
                    "{} exists and differs from the node config's CA material: this master was set up for \
                     another cluster. Run `kubeadm reset -f` and remove {} to rebuild it with this cluster's CAs",
                    ctx.path(sys(rel)).display(),
                    ctx.path(PKI_DIR).display()
                );
            }
        }
    }
    let mut written = 0;
    for (rel, data, mode) in files {
        if std::fs::read(ctx.path(sys(rel))).ok().as_deref() == Some(data.as_bytes()) {
            continue;
        }
        ctx.write_file(&sys(rel), data, mode)?;
        written += 1;
    }
    Ok(written)
}

/// Loads a CA private key (PKCS#1 `RSA PRIVATE KEY` as kubeha secrets writes it, or PKCS#8).
fn load_ca_key(pem: &str) -> Result<KeyPair> {
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        let k = rsa::RsaPrivateKey::from_pkcs1_pem(pem).context("reading an RSA CA key")?;
        let pkcs8 = k
            .to_pkcs8_pem(LineEnding::LF)
            .context("encoding an RSA CA key")?;
        return KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
            .context("loading an RSA CA key");
    }
    KeyPair::from_pem(pem).context("loading a CA key")
}

/// What a certificate is for.
#[derive(Debug, Clone, Default)]
pub struct LeafSpec<'a> {
    /// Common name.
    pub cn: &'a str,
    /// Organizations (Kubernetes groups for client certificates).
    pub orgs: &'a [&'a str],
    /// IP SANs.
    pub ips: &'a [IpAddr],
    /// DNS SANs.
    pub dns: &'a [&'a str],
    /// Client authentication.
    pub client: bool,
    /// Server authentication.
    pub server: bool,
    /// Validity in days.
    pub days: i64,
}

/// Signs a fresh ECDSA P-256 key with the CA; returns (certificate PEM, PKCS#8 key PEM).
pub fn issue(ca: &CertKey, spec: &LeafSpec) -> Result<(String, String)> {
    let ca_key = load_ca_key(&ca.key)?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca.cert, ca_key).context("reading the CA certificate")?;
    let key = KeyPair::generate().context("generating a key")?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for o in spec.orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, spec.cn);
    p.distinguished_name = dn;
    for ip in spec.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for d in spec.dns {
        p.subject_alt_names
            .push(SanType::DnsName((*d).try_into().context("a DNS name")?));
    }
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if spec.client {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    if spec.server {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(spec.days.max(1));
    p.serial_number = Some(rcgen::SerialNumber::from_slice(
        &rand::random::<[u8; 16]>()[..],
    ));
    let cert = p
        .signed_by(&key, &issuer)
        .context("signing a certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A one-day client certificate from the etcd CA (for member list/remove during a rebuild).
pub fn etcd_client_cert(etcd_ca: &CertKey) -> Result<(String, String)> {
    issue(
        etcd_ca,
        &LeafSpec {
            cn: "kubeha-firstboot",
            client: true,
            days: 1,
            ..Default::default()
        },
    )
}

/// A one-day cluster-admin client certificate from the cluster CA (`O=system:masters`).
pub fn admin_client_cert(ca_cert: &str, ca_key: &str) -> Result<(String, String)> {
    let ca = CertKey {
        cert: ca_cert.to_string(),
        key: ca_key.to_string(),
    };
    issue(
        &ca,
        &LeafSpec {
            cn: "kubeha-firstboot",
            orgs: &["system:masters"],
            client: true,
            days: 1,
            ..Default::default()
        },
    )
}
