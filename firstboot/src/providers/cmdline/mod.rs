//! The kernel command line: `kubeha.*` keys.
//!
//! | key | meaning |
//! |---|---|
//! | `kubeha.role=master\|worker` | this node's role |
//! | `kubeha.name=NAME` | this node's name (one of the cluster's masters or workers) |
//! | `kubeha.config=URL` | where the node config is: `http(s)://...`, `file:PATH` (under the root), `label:FSLABEL` |
//! | `kubeha.config.sha256=HEX` | the config's SHA-256 (of the bytes fetched); a mismatch is an error |
//! | `kubeha.report=URL` | an http(s) URL that receives a JSON POST per phase |
//! | `kubeha.bootstrap=NAME` | the master that initializes a new cluster |
//! | `kubeha.reinstall=0\|1`, `kubeha.disk=DISK` | the installer's (kickstart `%pre`): accepted and ignored here |
//!
//! `kubeha.config` may contain `${mac}`, `${hostname}` and `${uuid}` (see [`crate::source`]). `BOOTIF=` (set by
//! pxelinux/iPXE) is read to pick `${mac}`.
//!
//! Parser limits, as in afterburn's cmdline.rs: parameters are separated by ASCII whitespace; a value may be wrapped in
//! double quotes (`kubeha.name="a b"` is then rejected as a name, not split); there is no backslash escaping; when a key
//! repeats, the last one wins (the kernel hands init the whole line, and a boot loader appends later overrides). An
//! unknown `kubeha.*` key is an error, so a typo never silently means "not set".

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use kubeha_model::cluster::Role;

/// Where `kubeha.config=` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLocation {
    /// An `http://` or `https://` URL (may hold `${...}` placeholders).
    Http(String),
    /// `file:PATH`: an absolute path on the node (joined onto the root).
    File(String),
    /// `label:FSLABEL`: `node.toml` at the top of the filesystem with that label (ISO9660 or FAT).
    Label(String),
}

/// Everything kubeha reads from the kernel command line.
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

/// Splits a command line into `(key, value)` pairs; a bare flag has no value. Quotes around a value are removed.
pub fn split(cmdline: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut words = Vec::new();
    for c in cmdline.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_ascii_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((w, None)),
        }
    }
    out
}

/// Whether `s` can be a node name: an RFC 1123 DNS subdomain, as Kubernetes Node names and `config check` take it
/// (one shared rule, so a name the build host accepts is never refused at boot).
pub use kubeha_model::validate::is_dns_subdomain as is_node_name;

/// The longest `kubeha.*` value accepted (URLs with `${...}` included are far shorter).
pub const MAX_VALUE: usize = 4096;

/// A value as errors show it: at most 64 characters, so a hostile command line is never echoed whole.
fn shown(v: &str) -> String {
    if v.chars().count() <= 64 {
        v.to_string()
    } else {
        format!(
            "{}... ({} bytes)",
            v.chars().take(64).collect::<String>(),
            v.len()
        )
    }
}

/// Whether an absolute node path stays where it says: no `.`/`..` components and no NUL (`file:/../../etc/passwd`
/// would leave the node root).
pub fn is_plain_absolute(p: &str) -> bool {
    p.starts_with('/') && !p.contains('\0') && !p.split('/').any(|c| c == "." || c == "..")
}

fn is_http(u: &str) -> bool {
    (u.starts_with("http://") && u.len() > 7) || (u.starts_with("https://") && u.len() > 8)
}

/// Parses the `kubeha.*` keys (and `BOOTIF=`); every error names the key.
pub fn parse(cmdline: &str) -> Result<KernelArgs> {
    let mut a = KernelArgs::default();
    for (k, v) in split(cmdline) {
        if k == "BOOTIF" {
            // pxelinux: "01-" (ARP hardware type Ethernet) + the MAC with dashes. A malformed one is ignored: it is
            // not ours, and only picks ${mac}.
            if let Some(v) = v {
                let m = v.strip_prefix("01-").unwrap_or(&v);
                a.bootif = kubeha_model::cluster::normalize_mac(m);
            }
            continue;
        }
        if !k.starts_with("kubeha.") {
            continue;
        }
        let v = match v {
            Some(v) if !v.is_empty() => v,
            _ => bail!(
                "kernel command line: {} needs a value ({}=...)",
                shown(&k),
                shown(&k)
            ),
        };
        if v.len() > MAX_VALUE {
            bail!(
                "kernel command line: {}: the value is {} bytes, longer than {MAX_VALUE}",
                shown(&k),
                v.len()
            );
        }
        match k.as_str() {
            "kubeha.role" => {
                a.role = Some(v.parse().map_err(|_: String| {
                    anyhow::anyhow!(
                        "kernel command line: kubeha.role: '{}' is not a role: expected master or worker",
                        shown(&v)
                    )
                })?)
            }
            "kubeha.name" => {
                if !is_node_name(&v) {
                    bail!("kernel command line: kubeha.name: '{}' is not a node name (lowercase RFC 1123: letters, digits, '-', '.')", shown(&v));
                }
                a.name = Some(v);
            }
            "kubeha.bootstrap" => {
                if !is_node_name(&v) {
                    bail!("kernel command line: kubeha.bootstrap: '{}' is not a node name", shown(&v));
                }
                a.bootstrap = Some(v);
            }
            "kubeha.config" => {
                a.config = Some(if is_http(&v) {
                    ConfigLocation::Http(v)
                } else if let Some(p) = v.strip_prefix("file:") {
                    if !is_plain_absolute(p) {
                        bail!(
                            "kernel command line: kubeha.config: file:{} is not an absolute path without . or .. components",
                            shown(p)
                        );
                    }
                    ConfigLocation::File(p.to_string())
                } else if let Some(l) = v.strip_prefix("label:") {
                    if l.is_empty() || l.len() > 32 || l.contains('/') {
                        bail!("kernel command line: kubeha.config: '{}' is not a filesystem label", shown(l));
                    }
                    ConfigLocation::Label(l.to_string())
                } else {
                    bail!(
                        "kernel command line: kubeha.config: '{}' is not an http(s) URL, file:PATH or label:FSLABEL",
                        shown(&v)
                    );
                })
            }
            "kubeha.config.sha256" => {
                let h = v.to_ascii_lowercase();
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bail!("kernel command line: kubeha.config.sha256: not 64 hex characters");
                }
                a.config_sha256 = Some(h);
            }
            "kubeha.report" => {
                if !is_http(&v) {
                    bail!("kernel command line: kubeha.report: '{}' is not an http(s) URL", shown(&v));
                }
                a.report = Some(v);
            }
            // The installer's keys: the kickstart's %pre reads them (the install-once guard, the disk). Known here
            // so that a node whose command line still carries them is not refused; they mean nothing to the agent.
            "kubeha.reinstall" => {
                if v != "0" && v != "1" {
                    bail!("kernel command line: kubeha.reinstall: '{}' is not 0 or 1", shown(&v));
                }
            }
            "kubeha.disk" => {}
            _ => bail!(
                "kernel command line: unknown key {} (known: kubeha.role, kubeha.name, kubeha.config, \
                 kubeha.config.sha256, kubeha.report, kubeha.bootstrap, and the installer's \
                 kubeha.reinstall, kubeha.disk)",
                shown(&k)
            ),
        }
    }
    if a.config_sha256.is_some() && a.config.is_none() {
        bail!("kernel command line: kubeha.config.sha256 is set but kubeha.config is not");
    }
    Ok(a)
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
