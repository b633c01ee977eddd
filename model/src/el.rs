//! What kubeha knows about each Enterprise Linux release it installs, in one table ([`RELEASES`]): the distributions,
//! the glibc the release ships, and the cgroup hierarchy it boots.
//!
//! To add a release or a fact: add the row or the field here. `config check` and the kickstart read the cgroup
//! columns (through [`CgroupVersion`]), `kubeha iso`/`kubeha pxe` read [`Release::glibc`] to refuse a node agent
//! that would not start on the release (a binary linked against a newer glibc fails at load time with
//! "version `GLIBC_2.34' not found").

use std::fmt;

use serde::{Deserialize, Serialize};

/// A cgroup hierarchy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupVersion {
    /// The legacy (or hybrid) hierarchy: CentOS 7 and EL8 by default.
    #[serde(rename = "v1")]
    V1,
    /// The unified hierarchy: EL9 by default.
    #[serde(rename = "v2")]
    V2,
}

impl CgroupVersion {
    /// The hierarchy an Enterprise Linux release boots by default: EL7 and EL8 the legacy (v1) one, EL9 the unified
    /// (v2) one ([`RELEASES`]).
    pub fn el_default(el: u8) -> CgroupVersion {
        nearest(el).cgroup
    }

    /// Whether an EL release can boot this hierarchy at all: EL7's kernel 3.10 has no usable unified hierarchy for
    /// Kubernetes (no cgroup v2 memory/cpu controllers), so it boots v1 only; EL8 and EL9 boot either (EL9's v1 is
    /// deprecated).
    pub fn el_can_boot(self, el: u8) -> bool {
        self == CgroupVersion::V1 || nearest(el).boots_cgroup_v2
    }

    /// The `systemd.unified_cgroup_hierarchy=` argument the installed kernel command line needs so that an EL
    /// release boots `choice` instead of its default; `None` when the choice is the default (or unset).
    pub fn kernel_arg(el: u8, choice: Option<CgroupVersion>) -> Option<&'static str> {
        match choice {
            Some(v) if v != CgroupVersion::el_default(el) => Some(match v {
                CgroupVersion::V2 => "systemd.unified_cgroup_hierarchy=1",
                CgroupVersion::V1 => "systemd.unified_cgroup_hierarchy=0",
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// One EL major release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The major release: 7, 8 or 9.
    pub el: u8,
    /// The distributions of that release kubeha installs.
    pub distros: &'static str,
    /// The glibc it ships (the base release, which updates keep): a dynamically linked binary runs on it only if
    /// every `GLIBC_x.y` symbol version it needs is at most this.
    pub glibc: Glibc,
    /// The cgroup hierarchy it boots by default.
    pub cgroup: CgroupVersion,
    /// Whether it can boot the unified (v2) hierarchy for Kubernetes: EL7's kernel 3.10 has no usable cgroup v2
    /// memory/cpu controllers.
    pub boots_cgroup_v2: bool,
}

/// Every release kubeha installs, oldest first. glibc: CentOS 7 glibc-2.17-*.el7, EL8 glibc-2.28-*.el8, EL9
/// glibc-2.34-*.el9.
pub const RELEASES: [Release; 3] = [
    Release {
        el: 7,
        distros: "CentOS 7",
        glibc: Glibc::new(2, 17),
        cgroup: CgroupVersion::V1,
        boots_cgroup_v2: false,
    },
    Release {
        el: 8,
        distros: "Rocky/Alma Linux 8, CentOS Stream 8",
        glibc: Glibc::new(2, 28),
        cgroup: CgroupVersion::V1,
        boots_cgroup_v2: true,
    },
    Release {
        el: 9,
        distros: "Rocky/Alma Linux 9, CentOS Stream 9",
        glibc: Glibc::new(2, 34),
        cgroup: CgroupVersion::V2,
        boots_cgroup_v2: true,
    },
];

/// The row of release `el`, if kubeha installs it.
pub fn release(el: u8) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.el == el)
}

/// The nearest row: releases below the oldest answer as the oldest, above the newest as the newest. For rules that
/// must answer for any number before `config check` has rejected an unsupported one.
pub fn nearest(el: u8) -> &'static Release {
    release(el).unwrap_or(if el < RELEASES[0].el {
        &RELEASES[0]
    } else {
        &RELEASES[RELEASES.len() - 1]
    })
}

/// A glibc version, as in the symbol version names `GLIBC_2.17` and `GLIBC_2.2.5`. Ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Glibc {
    /// Always 2 in practice.
    pub major: u16,
    /// The release: 17 for 2.17.
    pub minor: u16,
    /// The third component of the oldest x86_64 names (`GLIBC_2.2.5`); 0 otherwise.
    pub patch: u16,
}

impl Glibc {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Glibc {
        Glibc {
            major,
            minor,
            patch: 0,
        }
    }

    /// Parses a symbol version name: `GLIBC_2.17` → 2.17, `GLIBC_2.2.5` → 2.2.5. `None` for anything else
    /// (`GLIBC_PRIVATE`, `GLIBC_ABI_DT_RELR`, `GCC_3.0`), which names no release.
    pub fn from_symbol_version(name: &str) -> Option<Glibc> {
        let v = name.strip_prefix("GLIBC_")?;
        let mut parts = v.split('.');
        let num = |p: Option<&str>| -> Option<u16> {
            let p = p?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let major = num(parts.next())?;
        let minor = num(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            p => num(p)?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Glibc {
            major,
            minor,
            patch,
        })
    }

    /// The oldest release in [`RELEASES`] whose glibc is at least this one, i.e. the oldest a binary needing this
    /// version runs on.
    pub fn oldest_release(self) -> Option<&'static Release> {
        RELEASES.iter().find(|r| r.glibc >= self)
    }
}

impl fmt::Display for Glibc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.patch != 0 {
            write!(f, ".{}", self.patch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (el, glibc, cgroup, v2) in [
            (7, "2.17", CgroupVersion::V1, false),
            (8, "2.28", CgroupVersion::V1, true),
            (9, "2.34", CgroupVersion::V2, true),
        ] {
            let r = release(el).unwrap_or_else(|| panic!("EL{el} missing"));
            assert_eq!(r.glibc.to_string(), glibc, "EL{el}");
            assert_eq!(r.cgroup, cgroup, "EL{el}");
            assert_eq!(r.boots_cgroup_v2, v2, "EL{el}");
        }
        assert!(release(6).is_none() && release(10).is_none());
        assert_eq!(nearest(6).el, 7);
        assert_eq!(nearest(10).el, 9);
        assert!(
            RELEASES
                .windows(2)
                .all(|w| w[0].el < w[1].el && w[0].glibc < w[1].glibc),
            "oldest first"
        );
    }

    #[test]
    fn symbol_versions() {
        for (name, want) in [
            ("GLIBC_2.17", Some("2.17")),
            ("GLIBC_2.2.5", Some("2.2.5")),
            ("GLIBC_2.34", Some("2.34")),
            ("GLIBC_PRIVATE", None),
            ("GLIBC_ABI_DT_RELR", None),
            ("GLIBC_2", None),
            ("GLIBC_2.", None),
            ("GLIBC_2.3.4.5", None),
            ("GLIBC_2.+3", None),
            ("GCC_3.0", None),
            ("", None),
        ] {
            assert_eq!(
                Glibc::from_symbol_version(name).map(|g| g.to_string()),
                want.map(str::to_string),
                "{name}"
            );
        }
        let v = |s| Glibc::from_symbol_version(s).unwrap();
        assert!(v("GLIBC_2.2.5") < v("GLIBC_2.3") && v("GLIBC_2.3") < v("GLIBC_2.17"));
        assert!(v("GLIBC_2.17") < v("GLIBC_2.28") && v("GLIBC_2.28") < v("GLIBC_2.34"));
        for (name, el) in [
            ("GLIBC_2.2.5", Some(7)),
            ("GLIBC_2.17", Some(7)),
            ("GLIBC_2.18", Some(8)),
            ("GLIBC_2.34", Some(9)),
            ("GLIBC_2.36", None),
        ] {
            assert_eq!(v(name).oldest_release().map(|r| r.el), el, "{name}");
        }
    }
}
