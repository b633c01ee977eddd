//! The kernel command line, as the node agent takes it: [`kubeha_model::KernelArgs`] (the `kubeha.*` keys, their
//! rules and limits, defined once in the model) turned into where the agent looks for its config and who it is.
//!
//! `kubeha.config` may contain `${mac}`, `${hostname}` and `${uuid}` (see [`crate::source`]). `BOOTIF=` (set by
//! pxelinux/iPXE) is read to pick `${mac}`. The installer's keys (`kubeha.reinstall`, `kubeha.disk`) are accepted
//! and mean nothing here, so a node whose command line still carries them is not refused.
//!
//! Parser limits ([`kubeha_model::kernel_args`]), as in afterburn's cmdline.rs: parameters are separated by ASCII
//! whitespace; a value may be wrapped in double quotes (`kubeha.name="a b"` is then rejected as a name, not split);
//! there is no backslash escaping; when a key repeats, the last one wins (the kernel hands init the whole line, and a
//! boot loader appends later overrides). An unknown `kubeha.*` key is an error, so a typo never silently means "not
//! set".

use std::path::Path;

use anyhow::{Context as _, Result};
use kubeha_model::cluster::Role;
pub use kubeha_model::kernel_args::ConfigLocation;

/// What the agent takes from the kernel command line: the `kubeha.*` keys it uses, and `BOOTIF=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelArgs {
    /// `kubeha.role=`.
    pub role: Option<Role>,
    /// `kubeha.name=`.
    pub name: Option<String>,
    /// `kubeha.config=`.
    pub config: Option<ConfigLocation>,
    /// `kubeha.config.sha256=`, lowercase.
    pub config_sha256: Option<String>,
    /// `kubeha.report=`.
    pub report: Option<String>,
    /// `kubeha.bootstrap=`.
    pub bootstrap: Option<String>,
    /// `BOOTIF=` as a normalized MAC (`01-52-54-00-..` → `52:54:00:..`).
    pub bootif: Option<String>,
}

/// Splits a command line into `(key, value)` pairs; a bare flag has no value. Quotes around a value are removed
/// (the model's one splitter).
pub use kubeha_model::kernel_args::split_unquoted as split;

/// Whether `s` can be a node name: an RFC 1123 DNS subdomain, as Kubernetes Node names and `config check` take it
/// (one shared rule, so a name the build host accepts is never refused at boot).
pub use kubeha_model::validate::is_dns_subdomain as is_node_name;

/// `BOOTIF=` (pxelinux: "01-", the ARP hardware type Ethernet, then the MAC with dashes; last one wins) as a
/// normalized MAC. A malformed one is ignored: it is not ours, and only picks `${mac}`.
fn bootif(cmdline: &str) -> Option<String> {
    let mut mac = None;
    for (k, v) in split(cmdline) {
        if let ("BOOTIF", Some(v)) = (k.as_str(), v) {
            let m = v.strip_prefix("01-").unwrap_or(&v);
            mac = kubeha_model::cluster::normalize_mac(m);
        }
    }
    mac
}

/// Parses the `kubeha.*` keys ([`kubeha_model::KernelArgs::parse`]) and `BOOTIF=`; every error names the key.
pub fn parse(cmdline: &str) -> Result<KernelArgs> {
    // Every field named: a new key is a decision here, not silently dropped.
    let kubeha_model::KernelArgs {
        role,
        name,
        config,
        config_sha256,
        report,
        bootstrap,
        reinstall: _,
        disk: _,
    } = kubeha_model::KernelArgs::parse(cmdline)?;
    Ok(KernelArgs {
        role,
        name,
        config,
        config_sha256,
        report,
        bootstrap,
        bootif: bootif(cmdline),
    })
}

/// Reads and parses a command line file (`/proc/cmdline`); a missing file is an empty command line.
pub fn load(path: &Path) -> Result<KernelArgs> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::info!(
                "{} does not exist: no kernel command line keys",
                path.display()
            );
            String::new()
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    parse(&text).with_context(|| format!("in {}", path.display()))
}

#[cfg(test)]
mod tests;
