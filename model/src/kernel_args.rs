//! The kernel command line: kubeha's `kubeha.*` arguments, one definition for every side that writes or reads them.
//!
//! | key | meaning |
//! |---|---|
//! | `kubeha.role=master\|worker` | this node's role |
//! | `kubeha.name=NAME` | this node's name (one of the cluster's masters or workers) |
//! | `kubeha.config=URL` | where the node config is: `http(s)://...`, `file:PATH` (under the root), `label:FSLABEL` |
//! | `kubeha.config.sha256=HEX` | the config's SHA-256 (of the bytes fetched); a mismatch is an error |
//! | `kubeha.report=URL` | an http(s) URL that receives a JSON POST per phase |
//! | `kubeha.bootstrap=NAME` | the master that initializes a new cluster |
//! | `kubeha.reinstall=0\|1` | the installer's (kickstart `%pre`): wipe a disk that already holds this cluster's node |
//! | `kubeha.disk=DISK` | the installer's (kickstart `%pre`): the install disk (`vda`, `/dev/vda`, `disk/by-id/...`) |
//!
//! The build host writes them with [`KernelArgs::args`] (`kubeha iso`, `kubeha pxe`); the node agent reads them with
//! [`KernelArgs::parse`]; the kickstart's shell reads the same keys (a test holds its templates to [`Key`]).
//!
//! Splitting rules ([`split`], the only kernel command line splitter in kubeha), as in afterburn's cmdline.rs:
//! parameters are separated by ASCII whitespace; double quotes group (`x="a b"` is one parameter) and are not part of
//! the value; there is no backslash escaping. [`KernelArgs::parse`] also takes these rules: when a key repeats, the
//! last one wins (the kernel hands init the whole line, and a boot loader appends later overrides); an unknown
//! `kubeha.*` key is an error, so a typo never silently means "not set"; every value is at most [`MAX_VALUE`] bytes,
//! and errors name the key and show at most 64 characters of a value, so a hostile command line is never echoed whole.

use crate::cluster::Role;
use crate::validate::is_dns_subdomain;

/// The prefix of every kubeha kernel argument.
pub const PREFIX: &str = "kubeha.";

/// The longest `kubeha.*` value accepted (URLs with `${...}` included are far shorter).
pub const MAX_VALUE: usize = 4096;

/// One `kubeha.*` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// `kubeha.role`.
    Role,
    /// `kubeha.name`.
    Name,
    /// `kubeha.config`.
    Config,
    /// `kubeha.config.sha256`.
    ConfigSha256,
    /// `kubeha.report`.
    Report,
    /// `kubeha.bootstrap`.
    Bootstrap,
    /// `kubeha.reinstall` (the installer's).
    Reinstall,
    /// `kubeha.disk` (the installer's).
    Disk,
}

impl Key {
    /// Every key, in the order [`KernelArgs::args`] writes them.
    pub const ALL: [Key; 8] = [
        Key::Role,
        Key::Name,
        Key::Config,
        Key::ConfigSha256,
        Key::Report,
        Key::Bootstrap,
        Key::Reinstall,
        Key::Disk,
    ];

    /// The key as written on the command line (`kubeha.role`).
    pub fn as_str(self) -> &'static str {
        match self {
            Key::Role => "kubeha.role",
            Key::Name => "kubeha.name",
            Key::Config => "kubeha.config",
            Key::ConfigSha256 => "kubeha.config.sha256",
            Key::Report => "kubeha.report",
            Key::Bootstrap => "kubeha.bootstrap",
            Key::Reinstall => "kubeha.reinstall",
            Key::Disk => "kubeha.disk",
        }
    }

    /// The key written as `s`, if kubeha has one.
    pub fn from_name(s: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether only the installer (the kickstart's `%pre`) reads it; the node agent accepts and ignores it.
    pub fn installer_only(self) -> bool {
        matches!(self, Key::Reinstall | Key::Disk)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

impl ConfigLocation {
    /// Parses a `kubeha.config` value; the error names [`Key::Config`].
    pub fn parse(v: &str) -> Result<ConfigLocation, KernelArgsError> {
        let bad = |message: String| KernelArgsError::Invalid {
            key: Key::Config,
            message,
        };
        if is_http(v) {
            Ok(ConfigLocation::Http(v.to_string()))
        } else if let Some(p) = v.strip_prefix("file:") {
            if !is_plain_absolute(p) {
                return Err(bad(format!(
                    "file:{} is not an absolute path without . or .. components",
                    shown(p)
                )));
            }
            Ok(ConfigLocation::File(p.to_string()))
        } else if let Some(l) = v.strip_prefix("label:") {
            if l.is_empty() || l.len() > 32 || l.contains('/') {
                return Err(bad(format!("'{}' is not a filesystem label", shown(l))));
            }
            Ok(ConfigLocation::Label(l.to_string()))
        } else {
            Err(bad(format!(
                "'{}' is not an http(s) URL, file:PATH or label:FSLABEL",
                shown(v)
            )))
        }
    }
}

impl std::fmt::Display for ConfigLocation {
    /// The value as written after `kubeha.config=`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigLocation::Http(u) => f.write_str(u),
            ConfigLocation::File(p) => write!(f, "file:{p}"),
            ConfigLocation::Label(l) => write!(f, "label:{l}"),
        }
    }
}

/// Everything kubeha reads from the kernel command line: one field per [`Key`]. [`KernelArgs::parse`] reads it,
/// [`KernelArgs::args`] writes it, and `parse(args(x)) == x` for every `x` that [`KernelArgs::validate`] accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelArgs {
    /// `kubeha.role=`.
    pub role: Option<Role>,
    /// `kubeha.name=`: an RFC 1123 DNS subdomain.
    pub name: Option<String>,
    /// `kubeha.config=`.
    pub config: Option<ConfigLocation>,
    /// `kubeha.config.sha256=`, 64 lowercase hex characters (parsed case-insensitively); needs `config`.
    pub config_sha256: Option<String>,
    /// `kubeha.report=`: an http(s) URL.
    pub report: Option<String>,
    /// `kubeha.bootstrap=`: an RFC 1123 DNS subdomain.
    pub bootstrap: Option<String>,
    /// `kubeha.reinstall=1` (`0` and unset are the same: no).
    pub reinstall: bool,
    /// `kubeha.disk=`: any non-empty value; the installer strips a leading `/dev/`.
    pub disk: Option<String>,
}

impl KernelArgs {
    /// Parses the `kubeha.*` arguments of a command line (other arguments are not kubeha's and are skipped); every
    /// error names the key. See the module documentation for the rules.
    pub fn parse(cmdline: &str) -> Result<KernelArgs, KernelArgsError> {
        let mut a = KernelArgs::default();
        for arg in split(cmdline) {
            let (k, v) = arg.unquoted();
            if !k.starts_with(PREFIX) {
                continue;
            }
            let v = match v {
                Some(v) if !v.is_empty() => v,
                _ => return Err(KernelArgsError::NoValue { key: shown(&k) }),
            };
            if v.len() > MAX_VALUE {
                return Err(KernelArgsError::TooLong {
                    key: shown(&k),
                    len: v.len(),
                });
            }
            let key =
                Key::from_name(&k).ok_or_else(|| KernelArgsError::UnknownKey { key: shown(&k) })?;
            a.set(key, v)?;
        }
        a.check_pin()?;
        Ok(a)
    }

    /// Sets one key from its (unquoted, non-empty) value with the parser's rules.
    fn set(&mut self, key: Key, v: String) -> Result<(), KernelArgsError> {
        let bad = |message: String| KernelArgsError::Invalid { key, message };
        match key {
            Key::Role => {
                self.role = Some(v.parse().map_err(|_: String| {
                    bad(format!(
                        "'{}' is not a role: expected master or worker",
                        shown(&v)
                    ))
                })?)
            }
            Key::Name => {
                if !is_dns_subdomain(&v) {
                    return Err(bad(format!(
                        "'{}' is not a node name (lowercase RFC 1123: letters, digits, '-', '.')",
                        shown(&v)
                    )));
                }
                self.name = Some(v);
            }
            Key::Bootstrap => {
                if !is_dns_subdomain(&v) {
                    return Err(bad(format!("'{}' is not a node name", shown(&v))));
                }
                self.bootstrap = Some(v);
            }
            Key::Config => self.config = Some(ConfigLocation::parse(&v)?),
            Key::ConfigSha256 => {
                let h = v.to_ascii_lowercase();
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("not 64 hex characters".into()));
                }
                self.config_sha256 = Some(h);
            }
            Key::Report => {
                if !is_http(&v) {
                    return Err(bad(format!("'{}' is not an http(s) URL", shown(&v))));
                }
                self.report = Some(v);
            }
            Key::Reinstall => {
                self.reinstall = match v.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(bad(format!("'{}' is not 0 or 1", shown(&v)))),
                }
            }
            Key::Disk => self.disk = Some(v),
        }
        Ok(())
    }

    fn check_pin(&self) -> Result<(), KernelArgsError> {
        if self.config_sha256.is_some() && self.config.is_none() {
            return Err(KernelArgsError::PinWithoutConfig);
        }
        Ok(())
    }

    /// The set keys and their values as written (unquoted), in [`Key::ALL`] order.
    pub fn pairs(&self) -> Vec<(Key, String)> {
        let mut out = Vec::new();
        for key in Key::ALL {
            let v = match key {
                Key::Role => self.role.map(|r| r.to_string()),
                Key::Name => self.name.clone(),
                Key::Config => self.config.as_ref().map(|c| c.to_string()),
                Key::ConfigSha256 => self.config_sha256.clone(),
                Key::Report => self.report.clone(),
                Key::Bootstrap => self.bootstrap.clone(),
                Key::Reinstall => self.reinstall.then(|| "1".to_string()),
                Key::Disk => self.disk.clone(),
            };
            if let Some(v) = v {
                out.push((key, v));
            }
        }
        out
    }

    /// Checks that [`KernelArgs::args`] writes what [`KernelArgs::parse`] reads back as `self`: every value as the
    /// parser takes it (the same rules), in its normal form (`config_sha256` lowercase, `config` the variant its
    /// value reads as), without a double quote (the command line cannot carry one in a value). Errors name the key.
    pub fn validate(&self) -> Result<(), KernelArgsError> {
        let mut again = KernelArgs::default();
        for (key, v) in self.pairs() {
            let bad = |message: String| KernelArgsError::Invalid { key, message };
            if v.is_empty() {
                return Err(bad("the value is empty".into()));
            }
            if v.len() > MAX_VALUE {
                return Err(KernelArgsError::TooLong {
                    key: key.to_string(),
                    len: v.len(),
                });
            }
            if v.contains('"') {
                return Err(bad(format!(
                    "'{}' contains a double quote, which a kernel command line value cannot hold",
                    shown(&v)
                )));
            }
            again.set(key, v.clone())?;
            if !self.same(&again, key) {
                return Err(bad(format!(
                    "'{}' does not read back as written (not in its normal form)",
                    shown(&v)
                )));
            }
        }
        again.check_pin()
    }

    /// Whether `self` and `other` hold the same value for `key`.
    fn same(&self, other: &KernelArgs, key: Key) -> bool {
        match key {
            Key::Role => self.role == other.role,
            Key::Name => self.name == other.name,
            Key::Config => self.config == other.config,
            Key::ConfigSha256 => self.config_sha256 == other.config_sha256,
            Key::Report => self.report == other.report,
            Key::Bootstrap => self.bootstrap == other.bootstrap,
            Key::Reinstall => self.reinstall == other.reinstall,
            Key::Disk => self.disk == other.disk,
        }
    }

    /// The arguments, in [`Key::ALL`] order, each `key=value` with the value in double quotes when it holds
    /// whitespace. Meant for a `KernelArgs` that [`KernelArgs::validate`] accepts (one the parser returned always is).
    pub fn args(&self) -> Vec<Arg> {
        self.pairs()
            .into_iter()
            .map(|(k, v)| Arg::kv(k.as_str(), &quote(&v)))
            .collect()
    }

    /// [`KernelArgs::args`] as strings, ready to join with spaces.
    pub fn to_args(&self) -> Vec<String> {
        self.args().iter().map(Arg::to_string).collect()
    }
}

/// Errors of [`KernelArgs::parse`] and [`KernelArgs::validate`]: each names the key and shows at most 64 characters
/// of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelArgsError {
    /// `kubeha.x` or `kubeha.x=`.
    #[error("kernel command line: {key} needs a value ({key}=...)")]
    NoValue {
        /// The key, as shown (at most 64 characters).
        key: String,
    },
    /// A value longer than [`MAX_VALUE`].
    #[error("kernel command line: {key}: the value is {len} bytes, longer than {MAX_VALUE}")]
    TooLong {
        /// The key, as shown (at most 64 characters).
        key: String,
        /// The value's length in bytes.
        len: usize,
    },
    /// A value that does not fit its key.
    #[error("kernel command line: {key}: {message}")]
    Invalid {
        /// The key.
        key: Key,
        /// What is wrong, with the value shown (at most 64 characters).
        message: String,
    },
    /// A `kubeha.*` key kubeha does not have.
    #[error("kernel command line: unknown key {key} (known: {})", known_keys())]
    UnknownKey {
        /// The key, as shown (at most 64 characters).
        key: String,
    },
    /// `kubeha.config.sha256` without `kubeha.config`.
    #[error(
        "kernel command line: {} is set but {} is not",
        Key::ConfigSha256,
        Key::Config
    )]
    PinWithoutConfig,
}

impl KernelArgsError {
    /// The key the error is about, as shown.
    pub fn key(&self) -> String {
        match self {
            KernelArgsError::NoValue { key }
            | KernelArgsError::TooLong { key, .. }
            | KernelArgsError::UnknownKey { key } => key.clone(),
            KernelArgsError::Invalid { key, .. } => key.to_string(),
            KernelArgsError::PinWithoutConfig => Key::ConfigSha256.to_string(),
        }
    }
}

/// "kubeha.role, ..., and the installer's kubeha.reinstall, kubeha.disk".
fn known_keys() -> String {
    let names = |installer: bool| {
        Key::ALL
            .iter()
            .filter(|k| k.installer_only() == installer)
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{}, and the installer's {}", names(false), names(true))
}

/// A value as errors show it: at most 64 characters, so a hostile command line is never echoed whole.
pub fn shown(v: &str) -> String {
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

/// Whether `u` is an `http://` or `https://` URL with something after the scheme.
pub fn is_http(u: &str) -> bool {
    (u.starts_with("http://") && u.len() > 7) || (u.starts_with("https://") && u.len() > 8)
}

/// Whether the splitter ends a parameter at `c` (outside quotes).
fn is_separator(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// `v` as one parameter's value: in double quotes when it holds a separator. `v` must not hold a double quote.
fn quote(v: &str) -> String {
    if v.contains(is_separator) {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// One kernel argument, `key` or `key=value`, as written: double quotes kept (boot config edits write it back as it
/// was); [`Arg::unquoted`] is what the kernel's reader takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The name (up to the first `=`).
    pub key: String,
    /// The value, if any (quotes kept as written).
    pub value: Option<String>,
}

impl Arg {
    /// `key=value`.
    pub fn kv(key: &str, value: &str) -> Arg {
        Arg {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// One parameter as written (`key` or `key=value`), split at the first `=`.
    pub fn from_word(w: &str) -> Arg {
        match w.split_once('=') {
            Some((k, v)) => Arg::kv(k, v),
            None => Arg {
                key: w.into(),
                value: None,
            },
        }
    }

    /// The key and value with every double quote removed.
    pub fn unquoted(&self) -> (String, Option<String>) {
        let unq = |s: &str| s.replace('"', "");
        (unq(&self.key), self.value.as_deref().map(unq))
    }
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

/// Splits a command line into its parameters, quotes kept: at ASCII whitespace outside double quotes.
pub fn split(cmdline: &str) -> Vec<Arg> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if is_separator(c) && !quoted => {
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
    words.iter().map(|w| Arg::from_word(w)).collect()
}

/// Splits a command line into `(key, value)` pairs as the kernel's reader takes them: quotes removed, a bare flag
/// without a value, a parameter that is only quotes (`""`) dropped.
pub fn split_unquoted(cmdline: &str) -> Vec<(String, Option<String>)> {
    split(cmdline)
        .iter()
        .filter(|a| a.value.is_some() || a.key.chars().any(|c| c != '"'))
        .map(Arg::unquoted)
        .collect()
}

#[cfg(test)]
mod tests;
