//! Config providers: each knows one place a node config may be, and only fetches (afterburn's providers).
//!
//! A provider answers `Ok(None)` when its place holds nothing ("not found" is never an error), `Ok(Some(..))` with
//! the raw bytes, or an error the operator must fix. [`parse_config`] turns bytes into a validated
//! [`NodeConfig`](kubeha_model::NodeConfig) for every provider alike. [`crate::source`] tries them in a fixed order.
//!
//! To add a provider: a module with a struct implementing [`Provider`], a `mock_tests.rs` beside it, and one line in
//! [`crate::source::providers`].

use anyhow::{bail, Context as _, Result};
use kubeha_model::NodeConfig;
use sha2::{Digest, Sha256};

pub mod cmdline;
pub mod configdrive;
pub mod file;
pub mod http;
pub mod state;

/// Bytes a provider found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The raw content.
    pub data: Vec<u8>,
    /// A human description of the source, used in every error ("config drive /dev/sr0 (label KUBEHA)").
    pub source: String,
}

/// One place a node config may be.
pub trait Provider {
    /// What and where, for logs and errors.
    fn describe(&self) -> String;
    /// Fetches the config's bytes; `Ok(None)` when there is nothing there (yet).
    fn fetch(&self) -> Result<Option<Fetched>>;
    /// Whether this provider would do network I/O (a dry run only names what it would fetch).
    fn uses_network(&self) -> bool {
        false
    }
}

/// Validates fetched bytes: the optional SHA-256 pin (over the bytes as fetched), gzip (detected by its magic),
/// UTF-8, TOML and the node config's own validation. Errors name the source and the field.
pub fn parse_config(data: &[u8], source: &str, pin: Option<&str>) -> Result<NodeConfig> {
    if let Some(want) = pin {
        let got = hex::encode(Sha256::digest(data));
        if got != want.to_ascii_lowercase() {
            bail!("{source}: sha256 mismatch: kubeha.config.sha256 pins {want}, the content hashes to {got}");
        }
    }
    let data = if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let mut r = std::io::Read::take(
            flate2::read::GzDecoder::new(data),
            crate::retry::MAX_BODY + 1,
        );
        std::io::Read::read_to_end(&mut r, &mut out)
            .with_context(|| format!("{source}: decompressing gzip"))?;
        if out.len() as u64 > crate::retry::MAX_BODY {
            bail!(
                "{source}: decompressed config is larger than {} bytes",
                crate::retry::MAX_BODY
            );
        }
        out
    } else {
        data.to_vec()
    };
    let text =
        String::from_utf8(data).map_err(|e| anyhow::anyhow!("{source}: not UTF-8 text: {e}"))?;
    if text.trim().is_empty() {
        bail!("{source}: the node config is empty");
    }
    Ok(NodeConfig::parse(&text, source)?)
}

#[cfg(test)]
pub(crate) mod fixtures {
    use kubeha_model::cluster::Role;
    use kubeha_model::{Cluster, NodeConfig, Secrets};
    use std::sync::OnceLock;

    /// Secrets are slow to generate (RSA): share one set.
    pub fn secrets() -> &'static Secrets {
        static S: OnceLock<Secrets> = OnceLock::new();
        S.get_or_init(|| Secrets::generate().expect("generating secrets"))
    }

    /// A role-agnostic config with the control-plane keys (one medium for every node).
    pub fn config() -> NodeConfig {
        NodeConfig::build(&Cluster::default_cluster(), secrets(), None, None, true).unwrap()
    }

    /// A config fixed to one node.
    pub fn config_for(name: &str, role: Role) -> NodeConfig {
        NodeConfig::build(
            &Cluster::default_cluster(),
            secrets(),
            Some(role),
            Some(name),
            false,
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn metadata_parse_cases() {
        let good = fixtures::config().to_toml();
        let pin = hex::encode(Sha256::digest(good.as_bytes()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(good.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let gz_pin = hex::encode(Sha256::digest(&gz));
        let upin = pin.to_uppercase();
        let bad_field = good.replace("token = \"", "token = \"X");
        let unknown_key = format!("{good}\n[surprise]\nx = 1\n");
        type Case<'a> = (&'a str, &'a [u8], Option<&'a str>, Result<(), &'a str>);
        let cases: Vec<Case> = vec![
            ("plain", good.as_bytes(), None, Ok(())),
            ("pinned", good.as_bytes(), Some(&pin), Ok(())),
            (
                "pinned upper-case",
                good.as_bytes(),
                Some(upin.as_str()),
                Ok(()),
            ),
            ("gzip", &gz, None, Ok(())),
            (
                "gzip pinned over the compressed bytes",
                &gz,
                Some(&gz_pin),
                Ok(()),
            ),
            (
                "pin mismatch",
                good.as_bytes(),
                Some(&gz_pin),
                Err("sha256 mismatch"),
            ),
            ("empty", b"", None, Err("empty")),
            ("not utf-8", b"\xff\xfe", None, Err("UTF-8")),
            ("bad toml", b"[cluster\nname=", None, Err("parsing SRC")),
            ("bad field", bad_field.as_bytes(), None, Err("join.token")),
            ("unknown key", unknown_key.as_bytes(), None, Err("surprise")),
            ("truncated gzip", &gz[..gz.len() / 2], None, Err("gzip")),
        ];
        for (name, data, pin, want) in cases {
            let got = parse_config(data, "SRC", pin);
            match (got, want) {
                (Ok(c), Ok(())) => assert_eq!(c, fixtures::config(), "{name}"),
                (Err(e), Err(w)) => {
                    let e = format!("{e:#}");
                    assert!(
                        e.contains(w) && e.contains("SRC"),
                        "{name}: {e:?} should contain {w:?} and SRC"
                    )
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
