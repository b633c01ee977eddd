//! RPM signatures, checked with rpm's own code before a package enters the bundle.
//!
//! A repo's `gpgkey` (one or more URLs, as in a `.repo` file) is fetched, stored beside the packages as
//! `rpms/RPM-GPG-KEY-<repo>[-N]`, imported into a throwaway rpm database (`rpmkeys --root TMP --import`), and
//! every package of that repo is checked with `rpmkeys --root TMP --checksig --define '_pkgverify_level
//! signature'`: the level makes a missing signature a failure (at the default level rpm 4.18 answers
//! `digests OK` for an unsigned package and exits 0), and a signature by a key not in the database fails too
//! (`digests SIGNATURES NOT OK`, exit 1). The keys go to the node, whose repo file then says `gpgcheck=1`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use kubeha_runner::Cmd;

/// The prefix of the key files stored in `rpms/`.
pub const KEY_PREFIX: &str = "RPM-GPG-KEY-";

/// Packages per `rpmkeys --checksig` call (keeps argv short on repos with thousands of packages).
const CHUNK: usize = 256;

/// The key file names for a repo's `gpgkey` URLs: `RPM-GPG-KEY-<repo>`, then `-2`, `-3`... Characters other
/// than ASCII letters, digits, `.`, `_` and `-` in the repo id become `_`.
pub fn key_file_names(repo: &str, count: usize) -> Vec<String> {
    let safe: String = repo
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    (0..count)
        .map(|i| match i {
            0 => format!("{KEY_PREFIX}{safe}"),
            n => format!("{KEY_PREFIX}{safe}-{}", n + 1),
        })
        .collect()
}

/// A throwaway rpm database holding a repo's keys.
pub struct Keyring {
    root: tempfile::TempDir,
}

impl Keyring {
    /// Imports `keys` (ASCII-armored public keys) into a new database under a temporary root.
    pub fn new(keys: &[PathBuf]) -> Result<Keyring> {
        let root = tempfile::Builder::new()
            .prefix("kubeha-rpmkeys-")
            .tempdir()
            .context("creating a temporary rpm root for the signature check")?;
        for k in keys {
            let cmd = Cmd::new("rpmkeys")
                .arg("--root")
                .arg_path(root.path())
                .arg("--import")
                .arg_path(k);
            super::tool::run(&cmd)
                .with_context(|| format!("importing {} as an RPM signing key", k.display()))?;
        }
        Ok(Keyring { root })
    }

    /// Checks `files`' signatures; returns the files that fail, each with rpmkeys' line about it.
    pub fn check(&self, files: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
        let mut bad = Vec::new();
        for chunk in files.chunks(CHUNK) {
            let cmd = Cmd::new("rpmkeys")
                .arg("--root")
                .arg_path(self.root.path())
                .args(["--checksig", "--define", "_pkgverify_level signature"])
                .args(chunk.iter().map(|f| f.to_string_lossy().into_owned()));
            // The output whatever the exit code: rpmkeys exits 1 when any package fails, and names each.
            let out = kubeha_runner::output(&cmd).map_err(super::Error::Command)?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut named = 0;
            for f in chunk {
                let prefix = format!("{}:", f.display());
                let line = stdout.lines().find(|l| l.starts_with(&prefix));
                match line {
                    Some(l) if !l.contains("NOT OK") => {}
                    Some(l) => {
                        named += 1;
                        bad.push((f.clone(), l[prefix.len()..].trim().to_string()));
                    }
                    None => {
                        named += 1;
                        bad.push((f.clone(), "rpmkeys printed no verdict".into()));
                    }
                }
            }
            // A failing exit that names no package (a broken rpm database, an unreadable file) is still a
            // failure: never let a package in on an exit status rpm did not give.
            if !out.success() && named == 0 {
                return Err(super::Error::Command(kubeha_runner::Error::failed(&cmd, &out)).into());
            }
        }
        Ok(bad)
    }
}

/// Whether a file name in `rpms/` is a key file this module writes.
pub fn is_key_file(name: &str) -> bool {
    name.starts_with(KEY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_names_are_plain_and_numbered() {
        assert_eq!(key_file_names("kubernetes", 1), ["RPM-GPG-KEY-kubernetes"]);
        assert_eq!(
            key_file_names("a b/c", 2),
            ["RPM-GPG-KEY-a_b_c", "RPM-GPG-KEY-a_b_c-2"]
        );
    }
}
