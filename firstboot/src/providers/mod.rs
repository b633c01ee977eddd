//! Config providers: each knows one place a node config may be, and only fetches (afterburn's providers).
//!
//! A provider answers `Ok(None)` when its place holds nothing ("not found" is never an error), `Ok(Some(..))` with
//! the raw bytes, or an error the operator must fix. [`parse_config`] turns bytes into a validated
//! [`NodeConfig`](kubeha_model::NodeConfig) for every provider alike. [`crate::source`] tries them in a fixed order.
//!
//! To add a provider: a module with a struct implementing [`Provider`], a `mock_tests.rs` beside it, and one line in
//! [`crate::source::providers`].

use anyhow::Result;

pub mod cmdline;
pub mod configdrive;
pub mod file;
pub mod http;
mod parse;
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

pub use parse::parse_config;

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
    use sha2::{Digest, Sha256};
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
