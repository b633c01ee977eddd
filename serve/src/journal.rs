//! The journal: every event `kubeha serve` decides on, one JSON document a line, appended and fsynced before the
//! answer goes out, replayed at start. It is the server's whole memory: the fleet view is what replaying it gives.
//!
//! A crash can leave the last line torn (no newline). [`Journal::open`] keeps such a line if it still parses as an
//! entry (only the newline was lost) and cuts it off otherwise; a bad line before the last one is an error that
//! names the line, since dropping it would silently forget an installed node.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kubeha_model::report::Report;
use serde::{Deserialize, Serialize};

use crate::{io, Error, Result};

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Entry {
    /// An accepted report.
    Report {
        /// When the server received it (RFC 3339).
        at: String,
        /// The node it is for.
        node: String,
        /// The MAC in the report URL, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<String>,
        /// The sender's address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<String>,
        /// The report itself (boxed: it is most of the entry's size).
        report: Box<Report>,
    },
    /// A refused claim: a report or config request for a node from a machine that is not that node.
    Refused {
        /// When.
        at: String,
        /// The node claimed.
        node: String,
        /// The claiming MAC, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<String>,
        /// The claiming address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<String>,
        /// Why it was refused.
        reason: String,
    },
    /// An iPXE script handed to a known node.
    Boot {
        /// When.
        at: String,
        /// The node.
        node: String,
        /// Its address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<String>,
        /// `install`, `reinstall` or `local`.
        action: String,
    },
    /// A machine that is not in cluster.toml asked for something (first time per MAC or address).
    Unknown {
        /// When.
        at: String,
        /// Its MAC, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<String>,
        /// Its address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<String>,
        /// What it asked for.
        what: String,
    },
    /// The operator asked for a node to be reinstalled.
    Reimage {
        /// When.
        at: String,
        /// The node.
        node: String,
    },
}

/// The open journal file.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and returns it with every entry in it, oldest first.
    pub fn open(path: &Path) -> Result<(Journal, Vec<Entry>)> {
        // 0600: the journal names every machine, address and error of the install network.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io("opening", path))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(io("reading", path))?;
        let mut entries = Vec::new();
        let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        // After the last newline: empty for a clean file, the torn line otherwise.
        let tail = lines.pop().unwrap_or_default();
        for (i, line) in lines.iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            let e = serde_json::from_slice(line).map_err(|e| Error::Journal {
                path: path.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })?;
            entries.push(e);
        }
        let mut j = Journal {
            file,
            path: path.to_path_buf(),
        };
        if !tail.is_empty() {
            let keep = text.len() - tail.len();
            match serde_json::from_slice::<Entry>(tail) {
                Ok(e) => {
                    log::warn!(
                        "{}: the last line had no newline (a crash while writing it); kept",
                        path.display()
                    );
                    entries.push(e);
                    j.file.write_all(b"\n").map_err(io("writing", path))?;
                }
                Err(_) => {
                    log::warn!(
                        "{}: dropped a torn last line of {} bytes (a crash while writing it)",
                        path.display(),
                        tail.len()
                    );
                    j.file
                        .set_len(keep as u64)
                        .map_err(io("truncating", path))?;
                }
            }
            j.file.sync_all().map_err(io("syncing", path))?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A new journal's directory entry must survive a crash too.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok((j, entries))
    }

    /// Appends one entry and waits until it is on the disk.
    pub fn append(&mut self, e: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(e).map_err(|e| Error::Journal {
            path: self.path.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(io("writing", &self.path))?;
        self.file.sync_data().map_err(io("syncing", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reimage(n: &str) -> Entry {
        Entry::Reimage {
            at: "2026-12-05T12:00:00Z".into(),
            node: n.into(),
        }
    }

    #[test]
    fn entries_survive_reopening_and_a_torn_last_line_is_dropped_or_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        {
            let (mut j, e) = Journal::open(&p).unwrap();
            assert!(e.is_empty());
            j.append(&reimage("a")).unwrap();
            j.append(&reimage("b")).unwrap();
        }
        let (_, e) = Journal::open(&p).unwrap();
        assert_eq!(e, vec![reimage("a"), reimage("b")]);

        // A crash half-way through a line: dropped, and the next append starts a clean line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"kind":"reimage","at":"2026-12"#).unwrap();
        drop(f);
        {
            let (mut j, e) = Journal::open(&p).unwrap();
            assert_eq!(e.len(), 2, "the torn line is dropped");
            j.append(&reimage("c")).unwrap();
        }
        let (_, e) = Journal::open(&p).unwrap();
        assert_eq!(e, vec![reimage("a"), reimage("b"), reimage("c")]);

        // Only the newline lost: the entry is kept.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&serde_json::to_vec(&reimage("d")).unwrap())
            .unwrap();
        drop(f);
        let (_, e) = Journal::open(&p).unwrap();
        assert_eq!(e.last(), Some(&reimage("d")));
        let (_, e) = Journal::open(&p).unwrap();
        assert_eq!(e.len(), 4);

        // A bad line before the last is an error naming it.
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{{\"kind\":\"nope\"}}\n{text}")).unwrap();
        let err = Journal::open(&p).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
