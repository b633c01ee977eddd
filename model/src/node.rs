//! `node.toml`: the one file `kubeha-firstboot` reads, written by `kubeha node-config` (or put on install media).
//!
//! A worker's file carries the bootstrap token, the cluster CA certificate and its hash: enough to join through
//! the VIP, and no private key. A master's file also carries the CA keys, so it can initialize or join the control
//! plane at any time without copying anything from another master.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, Role};
use crate::secrets::{CertKey, KeyPairPem, Secrets};
use crate::{Error, Result};

/// Where the node keeps the bundle after installation.
pub const DEFAULT_BUNDLE_PATH: &str = "/var/lib/kubeha/bundle";

/// The node agent's whole input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeConfig {
    /// Which node this is; empty fields are found at boot (kernel cmdline, or matching own IPs/MACs).
    #[serde(default)]
    pub node: NodeIdentity,
    /// The whole cluster description.
    pub cluster: Cluster,
    /// What every node needs to join.
    pub join: Join,
    /// What masters need besides; absent in a worker's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlane>,
    /// Where the offline bundle is.
    #[serde(default)]
    pub bundle: BundleLocation,
}

/// `[node]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeIdentity {
    /// The node's name, one of the cluster's masters or workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The node's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The master that initializes a new cluster (default: the first in `masters[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
}

/// `[join]`: public join material plus the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Join {
    /// Bootstrap token.
    pub token: String,
    /// `sha256:<hex>` of the cluster CA's public key.
    pub ca_cert_hash: String,
    /// The cluster CA certificate (PEM).
    pub ca_cert: String,
}

/// `[control-plane]`: the shared CA keys and control-plane secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ControlPlane {
    /// kubeadm's certificate key.
    pub certificate_key: String,
    /// keepalived's VRRP password.
    pub vrrp_auth_pass: String,
    /// The cluster CA's private key (its certificate is `join.ca-cert`).
    pub ca_key: String,
    /// The front-proxy CA.
    pub front_proxy_ca: CertKey,
    /// The etcd CA.
    pub etcd_ca: CertKey,
    /// The service-account key pair.
    pub service_account: KeyPairPem,
}

/// `[bundle]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BundleLocation {
    /// The bundle directory on the node (the installer copies it there).
    #[serde(default = "default_bundle_path")]
    pub path: String,
    /// An HTTP base URL the bundle is served from (PXE installs), used when `path` holds no bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The minisign public key (its base64 line, as `minisign -P` takes it) the bundle's `bundle.toml` must be
    /// signed with (`kubeha bundle sign`). When set, the agent checks the signature before it uses the bundle
    /// and refuses an unsigned or wrongly signed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl Default for BundleLocation {
    fn default() -> Self {
        BundleLocation {
            path: default_bundle_path(),
            url: None,
            public_key: None,
        }
    }
}

/// The key line of a minisign public key file (`untrusted comment: ...` then the key), or the key line itself:
/// 56 base64 characters (Ed25519 algorithm id, key id, key). `None` when it is neither.
pub fn minisign_public_key_line(text: &str) -> Option<String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))?;
    let ok = line.len() == 56
        && line.starts_with("RW")
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    ok.then(|| line.to_string())
}

fn default_bundle_path() -> String {
    DEFAULT_BUNDLE_PATH.to_string()
}

impl NodeConfig {
    /// Builds a node config. `role == None` makes a role-agnostic file (one medium for every node): it carries the
    /// control-plane keys only if `with_control_plane`.
    pub fn build(
        cluster: &Cluster,
        secrets: &Secrets,
        role: Option<Role>,
        name: Option<&str>,
        with_control_plane: bool,
    ) -> Result<NodeConfig> {
        if let Some(n) = name {
            match cluster.node(n) {
                None => {
                    return Err(Error::Value {
                        field: "--name".into(),
                        message: format!("'{n}' is not a master or worker in the cluster"),
                    })
                }
                Some((r, _)) if role.is_some_and(|want| want != r) => {
                    return Err(Error::Value {
                        field: "--role".into(),
                        message: format!("'{n}' is a {r} in the cluster, not a {}", role.unwrap()),
                    })
                }
                _ => {}
            }
        }
        let cp = match role {
            Some(Role::Master) => true,
            Some(Role::Worker) => false,
            None => with_control_plane,
        };
        Ok(NodeConfig {
            node: NodeIdentity {
                name: name.map(str::to_string),
                role,
                bootstrap: None,
            },
            cluster: cluster.clone(),
            join: Join {
                token: secrets.bootstrap_token.clone(),
                ca_cert_hash: secrets.ca_cert_hash.clone(),
                ca_cert: secrets.ca.cert.clone(),
            },
            control_plane: cp.then(|| ControlPlane {
                certificate_key: secrets.certificate_key.clone(),
                vrrp_auth_pass: secrets.vrrp_auth_pass.clone(),
                ca_key: secrets.ca.key.clone(),
                front_proxy_ca: secrets.front_proxy_ca.clone(),
                etcd_ca: secrets.etcd_ca.clone(),
                service_account: secrets.service_account.clone(),
            }),
            bundle: BundleLocation::default(),
        })
    }

    /// Parses and validates node config text; `source` names where it came from in every error.
    pub fn parse(text: &str, source: &str) -> Result<NodeConfig> {
        let nc: NodeConfig = toml::from_str(text).map_err(|e| Error::Parse {
            file: source.to_string(),
            message: crate::redacted_toml_error(text, &e),
        })?;
        nc.check(source)?;
        Ok(nc)
    }

    /// Reads and validates a node config file.
    pub fn load(path: &Path) -> Result<NodeConfig> {
        let text = std::fs::read_to_string(path).map_err(crate::io("reading", path))?;
        NodeConfig::parse(&text, &path.display().to_string())
    }

    /// Validates the embedded cluster and the identity against it.
    pub fn check(&self, source: &str) -> Result<()> {
        let mut errors: Vec<_> = crate::validate::validate(&self.cluster)
            .into_iter()
            .filter(|d| d.is_error())
            .map(|mut d| {
                d.path = format!("cluster.{}", d.path);
                d
            })
            .collect();
        let mut err = |path: &str, message: String| {
            errors.push(crate::validate::Diagnostic {
                severity: crate::validate::Severity::Error,
                path: path.to_string(),
                message,
                line: None,
            })
        };
        if let Some(n) = &self.node.name {
            match self.cluster.node(n) {
                None => err(
                    "node.name",
                    format!("'{n}' is not a master or worker of cluster.masters/workers"),
                ),
                Some((r, _)) if self.node.role.is_some_and(|want| want != r) => {
                    err("node.role", format!("'{n}' is a {r} in the cluster"))
                }
                _ => {}
            }
        }
        if let Some(b) = &self.node.bootstrap {
            if !self.cluster.masters.iter().any(|m| &m.name == b) {
                err(
                    "node.bootstrap",
                    format!("'{b}' is not one of cluster.masters"),
                );
            }
        }
        // A worker never holds the CA keys: a config that says it is a worker's and carries them is refused
        // before anything is persisted. (A config without a role, shared by every node, carries them for the
        // masters: the node agent drops them on a worker.)
        if self.node.role == Some(Role::Worker) && self.control_plane.is_some() {
            err(
                "control-plane",
                "a worker's node config must not carry [control-plane] (the cluster's CA private keys)".into(),
            );
        }
        if self.node.role == Some(Role::Master) && self.control_plane.is_none() {
            err(
                "control-plane",
                "a master needs the [control-plane] keys".into(),
            );
        }
        if !crate::secrets::is_bootstrap_token(&self.join.token) {
            err(
                "join.token",
                "not a bootstrap token like abcdef.0123456789abcdef".into(),
            );
        }
        match crate::secrets::ca_cert_hash(&self.join.ca_cert) {
            Err(e) => err("join.ca-cert", e.to_string()),
            Ok(h) if h != self.join.ca_cert_hash => err(
                "join.ca-cert-hash",
                format!("does not match join.ca-cert (which hashes to {h})"),
            ),
            Ok(_) => {}
        }
        if let Some(cp) = &self.control_plane {
            if cp.certificate_key.len() != 64
                || !cp.certificate_key.bytes().all(|b| b.is_ascii_hexdigit())
            {
                err(
                    "control-plane.certificate-key",
                    "not 64 hex characters".into(),
                );
            }
            // join.ca-cert is the cluster CA's certificate; its key lives in [control-plane].
            use crate::secrets::CaFields;
            if let Err((field, m)) = crate::secrets::check_key_material(
                [
                    CaFields {
                        cert_field: "join.ca-cert".into(),
                        cert: &self.join.ca_cert,
                        key_field: "control-plane.ca-key".into(),
                        key: &cp.ca_key,
                    },
                    CaFields::of("control-plane.front-proxy-ca", &cp.front_proxy_ca),
                    CaFields::of("control-plane.etcd-ca", &cp.etcd_ca),
                ],
                ("control-plane.service-account", &cp.service_account),
            ) {
                err(&field, m);
            }
        }
        if !self.bundle.path.starts_with('/') {
            err(
                "bundle.path",
                format!("'{}' is not an absolute path", self.bundle.path),
            );
        }
        if let Some(u) = &self.bundle.url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                err("bundle.url", format!("'{u}' is not an http(s) URL"));
            }
        }
        if let Some(k) = &self.bundle.public_key {
            if minisign_public_key_line(k).as_deref() != Some(k.as_str()) {
                err(
                    "bundle.public-key",
                    "not a minisign public key line (56 base64 characters starting with RW)".into(),
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                file: source.to_string(),
                errors,
            })
        }
    }

    /// Serializes to TOML.
    pub fn to_toml(&self) -> String {
        let mut s = String::from("# kubeha node config: read by kubeha-firstboot on first boot.\n");
        s.push_str(&toml::to_string(self).expect("node config serializes"));
        s
    }

    /// Writes the file atomically; 0600 because a master's file carries CA keys and every file a token.
    pub fn save(&self, path: &Path, force: bool) -> Result<()> {
        crate::fsutil::write_atomic(path, self.to_toml().as_bytes(), 0o600, force)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minisign_public_key_lines() {
        let key = "RWTbm8jWlj8i71XFDO1owNAWiVQmr6JQP1U6yayHPxv7Qo5COh4V9qfe";
        for (text, want) in [
            (key.to_string(), Some(key)),
            (
                format!("untrusted comment: minisign public key DB\n{key}\n"),
                Some(key),
            ),
            ("untrusted comment: x\n".to_string(), None),
            (key[..55].to_string(), None),
            (format!("{}!", &key[..55]), None),
            (
                "untrusted comment: minisign encrypted secret key\nRWQAAEIy".to_string(),
                None,
            ),
        ] {
            assert_eq!(minisign_public_key_line(&text).as_deref(), want, "{text:?}");
        }
        let c = Cluster::default_cluster();
        let s = Secrets::generate().unwrap();
        let mut n =
            NodeConfig::build(&c, &s, Some(Role::Worker), Some("k8s-node01"), false).unwrap();
        n.bundle.public_key = Some(key.into());
        n.check("t").unwrap();
        n.bundle.public_key = Some("RWQ".into());
        let e = n.check("t").unwrap_err().to_string();
        assert!(e.contains("bundle.public-key"), "{e}");
    }

    /// A master's config whose CA key is not its certificate's (a key from another cluster, the etcd CA's key in
    /// the cluster CA's place) or whose SA pair does not match is refused naming the field, never the key.
    #[test]
    fn master_key_material_must_match() {
        let c = Cluster::default_cluster();
        let s = Secrets::generate().unwrap();
        let m = NodeConfig::build(&c, &s, Some(Role::Master), Some("k8s-master01"), false).unwrap();
        type Edit = fn(&mut ControlPlane);
        let cases: [(Edit, &str); 3] = [
            (
                |cp| cp.ca_key = cp.etcd_ca.key.clone(),
                "control-plane.ca-key",
            ),
            (
                |cp| cp.etcd_ca.key = cp.front_proxy_ca.key.clone(),
                "control-plane.etcd-ca.key",
            ),
            (
                |cp| {
                    cp.service_account.public =
                        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into()
                },
                "control-plane.service-account.public",
            ),
        ];
        for (edit, field) in cases {
            let mut bad = m.clone();
            edit(bad.control_plane.as_mut().unwrap());
            let e = NodeConfig::parse(&bad.to_toml(), "node.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{field}: {e}");
            assert!(!e.contains(s.ca.key.lines().nth(2).unwrap()), "{e}");
        }
    }

    #[test]
    fn worker_has_no_private_key_and_master_does() {
        let c = Cluster::default_cluster();
        let s = Secrets::generate().unwrap();
        let w = NodeConfig::build(&c, &s, Some(Role::Worker), Some("k8s-node01"), true).unwrap();
        let wt = w.to_toml();
        assert!(
            !wt.contains("PRIVATE KEY"),
            "worker config leaks a private key"
        );
        assert_eq!(NodeConfig::parse(&wt, "w").unwrap(), w);
        let m = NodeConfig::build(&c, &s, Some(Role::Master), Some("k8s-master02"), false).unwrap();
        let mt = m.to_toml();
        assert!(mt.contains("PRIVATE KEY"));
        assert_eq!(NodeConfig::parse(&mt, "m").unwrap(), m);
        assert!(
            NodeConfig::build(&c, &s, Some(Role::Worker), Some("k8s-master01"), false).is_err()
        );
        assert!(NodeConfig::build(&c, &s, None, Some("nope"), false).is_err());
    }

    #[test]
    fn bad_fields_are_named() {
        let c = Cluster::default_cluster();
        let s = Secrets::generate().unwrap();
        let mut m = NodeConfig::build(&c, &s, Some(Role::Master), None, false).unwrap();
        m.control_plane = None;
        m.join.token = "nope".into();
        m.cluster.masters[1].ip = m.cluster.masters[0].ip;
        let e = NodeConfig::parse(&m.to_toml(), "src")
            .unwrap_err()
            .to_string();
        for want in [
            "control-plane",
            "join.token",
            "cluster.masters[1].ip",
            "src",
        ] {
            assert!(e.contains(want), "{want} missing in: {e}");
        }
    }

    #[test]
    fn a_worker_config_carrying_ca_keys_is_refused() {
        let c = Cluster::default_cluster();
        let s = Secrets::generate().unwrap();
        let m = NodeConfig::build(&c, &s, Some(Role::Master), Some("k8s-master02"), false).unwrap();
        let w = NodeConfig::build(&c, &s, Some(Role::Worker), Some("k8s-node01"), true).unwrap();
        // A worker's config with a master's [control-plane] table.
        let mut bad = w.clone();
        bad.control_plane = m.control_plane.clone();
        let e = NodeConfig::parse(&bad.to_toml(), "node.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("control-plane") && e.contains("worker"), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "{e}");
    }

    #[test]
    fn toml_errors_never_quote_key_material() {
        let c = Cluster::default_cluster();
        let s = Secrets::generate().unwrap();
        let m = NodeConfig::build(&c, &s, Some(Role::Master), Some("k8s-master02"), false).unwrap();
        let text = m.to_toml();
        // Corrupt the line that holds the CA key: a broken string, an extra key, a wrong type.
        let key_line = text
            .lines()
            .position(|l| l.starts_with("ca-key"))
            .expect("ca-key line");
        let secret_line = text.lines().nth(key_line).unwrap().to_string();
        let mut refused = 0;
        for bad in [
            secret_line.replacen('"', "", 1),
            secret_line.replacen("ca-key", "ca-kee", 1),
            format!(
                "ca-key = 12\n# {}",
                &secret_line[..secret_line.len().min(60)]
            ),
        ] {
            let t: String = text
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    if i == key_line {
                        bad.clone()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let e = match NodeConfig::parse(&t, "node.toml") {
                Err(e) => e.to_string(),
                Ok(_) => continue,
            };
            refused += 1;
            eprintln!("{e}");
            for secret in [&m.control_plane.as_ref().unwrap().ca_key, &s.ca.key] {
                for l in secret.lines().filter(|l| l.len() > 20) {
                    assert!(!e.contains(l), "the error quotes key material: {e}");
                }
            }
            assert!(e.contains("node.toml") && e.contains("line"), "{e}");
        }
        assert!(refused >= 2, "the corruptions did not make parse errors");
    }
}
