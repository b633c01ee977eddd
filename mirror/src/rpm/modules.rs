//! Modularity: which packages dnf hides because of `modules.yaml`, for a fresh install with no module
//! enabled or disabled (libdnf's `setModuleExcludes` and `collectNevraForInclusionExclusion` in
//! `libdnf/dnf-sack.cpp`, `ModulePackageContainer::resolveActiveModulePackages`).
//!
//! A module stream is active when it is its module's default stream (`modulemd-defaults`). Then dnf
//! excludes, from every repo:
//!
//! - the packages listed as artifacts of streams that are not active (unless an active one lists them too);
//! - the packages, not artifacts of an active stream, that are named like or provide the name of a binary
//!   artifact of an active stream (so a non-modular `foo` cannot replace the default stream's `foo`).
//!
//! Simplifications: module dependencies (`platform:[el9]` and other modules) are taken as met, and every
//! context and version of a default stream is active (dnf's module solver activates one context per
//! stream, the one whose dependencies are met); demodularized packages are not handled.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use serde::Deserialize as _;
use serde_yaml::Value;

use super::metadata::Package;

/// One `modulemd` document: a module stream build and its packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleStream {
    /// Module name.
    pub name: String,
    /// Stream.
    pub stream: String,
    /// `name-epoch:version-release.arch` of each package (`artifacts: rpms:`).
    pub artifacts: Vec<String>,
}

/// What the repos' `modules.yaml` files say.
#[derive(Debug, Clone, Default)]
pub struct Modules {
    /// Every module stream build.
    pub streams: Vec<ModuleStream>,
    /// Default stream per module name.
    pub defaults: HashMap<String, String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Modules {
    /// Adds the documents of one `modules.yaml` (already decompressed).
    pub fn add_yaml(&mut self, data: &[u8]) -> Result<()> {
        for doc in serde_yaml::Deserializer::from_slice(data) {
            let v = Value::deserialize(doc).context("parsing modules.yaml")?;
            let kind = v.get("document").and_then(text).unwrap_or_default();
            let Some(d) = v.get("data") else { continue };
            match kind.as_str() {
                "modulemd" => {
                    let (Some(name), Some(stream)) =
                        (d.get("name").and_then(text), d.get("stream").and_then(text))
                    else {
                        continue;
                    };
                    let artifacts = d
                        .get("artifacts")
                        .and_then(|a| a.get("rpms"))
                        .and_then(Value::as_sequence)
                        .map(|s| s.iter().filter_map(text).collect())
                        .unwrap_or_default();
                    self.streams.push(ModuleStream {
                        name,
                        stream,
                        artifacts,
                    });
                }
                "modulemd-defaults" => {
                    if let (Some(m), Some(s)) = (
                        d.get("module").and_then(text),
                        d.get("stream").and_then(text),
                    ) {
                        self.defaults.insert(m, s);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether there is anything to filter.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Per package of `pkgs`, whether dnf keeps it available (`false`: a module hides it).
    pub fn keep(&self, pkgs: &[Package]) -> Vec<bool> {
        let active = |m: &ModuleStream| self.defaults.get(&m.name) == Some(&m.stream);
        let mut include: HashSet<&str> = HashSet::new();
        let mut exclude: HashSet<&str> = HashSet::new();
        let mut names: HashSet<String> = HashSet::new();
        for m in &self.streams {
            if active(m) {
                for a in &m.artifacts {
                    include.insert(a);
                    if let Some((nvr, arch)) = a.rsplit_once('.') {
                        if arch != "src" && arch != "nosrc" {
                            if let Some(name) = nvr.rsplitn(3, '-').nth(2) {
                                names.insert(name.to_string());
                            }
                        }
                    }
                }
            } else {
                exclude.extend(m.artifacts.iter().map(String::as_str));
            }
        }
        pkgs.iter()
            .map(|p| {
                let nevra = strict_nevra(p);
                if include.contains(nevra.as_str()) {
                    return true;
                }
                if exclude.contains(nevra.as_str()) || names.contains(&p.name) {
                    return false;
                }
                !p.provides.iter().any(|d| names.contains(&d.name))
            })
            .collect()
    }
}

/// `name-epoch:version-release.arch` with the epoch always written, as modulemd artifacts are.
pub fn strict_nevra(p: &Package) -> String {
    format!(
        "{}-{}:{}-{}.{}",
        p.name,
        p.evr.epoch,
        p.evr.version,
        p.evr.release.as_deref().unwrap_or_default(),
        p.arch
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpm::metadata::Dep;
    use crate::rpm::vercmp::Evr;

    const YAML: &str = r#"---
document: modulemd
version: 2
data:
  name: khmod
  stream: "1"
  version: 1
  context: abc
  arch: x86_64
  artifacts:
    rpms:
    - khm-0:1.0-1.x86_64
    - khm-0:1.0-1.src
...
---
document: modulemd
version: 2
data:
  name: khmod
  stream: 2
  version: 1
  context: abc
  arch: x86_64
  artifacts:
    rpms:
    - khm-0:2.0-1.x86_64
...
---
document: modulemd-defaults
version: 1
data:
  module: khmod
  stream: "1"
...
"#;

    fn pkg(name: &str, evr: &str, provides: &[&str]) -> Package {
        Package {
            name: name.into(),
            arch: "x86_64".into(),
            evr: Evr::parse(evr).unwrap(),
            provides: provides
                .iter()
                .map(|n| Dep {
                    name: n.to_string(),
                    range: None,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn default_stream_hides_the_rest() {
        let mut m = Modules::default();
        m.add_yaml(YAML.as_bytes()).unwrap();
        assert_eq!(m.streams.len(), 2);
        assert_eq!(m.streams[1].stream, "2");
        let pkgs = [
            pkg("khm", "1.0-1", &[]),
            pkg("khm", "2.0-1", &[]),
            pkg("khm", "3.0-1", &[]),
            pkg("khm-compat", "5.0-1", &["khm"]),
            pkg("other", "1.0-1", &[]),
        ];
        assert_eq!(m.keep(&pkgs), [true, false, false, false, true]);
        assert_eq!(strict_nevra(&pkgs[0]), "khm-0:1.0-1.x86_64");
    }
}
