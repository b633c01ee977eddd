//! Fetched bytes to a validated node config, the same for every provider. Self-contained (no HTTP, no system access)
//! so the fuzz target compiles just this file.

use anyhow::{bail, Context as _, Result};
use kubeha_model::NodeConfig;
use sha2::{Digest, Sha256};

/// Largest config accepted, also after decompression (node configs are a few KiB).
pub const MAX_CONFIG: u64 = 4 << 20;

/// Validates fetched bytes: the optional SHA-256 pin (over the bytes as fetched), gzip (detected by its magic),
/// UTF-8, TOML and the node config's own validation. Errors name the source and the field.
pub fn parse_config(data: &[u8], source: &str, pin: Option<&str>) -> Result<NodeConfig> {
    if let Some(want) = pin {
        let got = hex::encode(Sha256::digest(data));
        if got != want.to_ascii_lowercase() {
            bail!(
                "{source}: sha256 mismatch: {} pins {want}, the content hashes to {got}",
                kubeha_model::kernel_args::Key::ConfigSha256
            );
        }
    }
    let data = if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let mut r = std::io::Read::take(flate2::read::GzDecoder::new(data), MAX_CONFIG + 1);
        std::io::Read::read_to_end(&mut r, &mut out)
            .with_context(|| format!("{source}: decompressing gzip"))?;
        if out.len() as u64 > MAX_CONFIG {
            bail!(
                "{source}: decompressed config is larger than {} bytes",
                MAX_CONFIG
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
