//! Small helpers shared by the agent's modules.

use std::path::{Path, PathBuf};

/// `root` joined with an absolute system path (`under(root, "/etc/hosts")`).
pub fn under(root: &Path, system_path: impl AsRef<Path>) -> PathBuf {
    let p = system_path.as_ref();
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
