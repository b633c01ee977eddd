//! The plan of the bundle's repository: a pure function from the solved closure ([`Solved`]) to the packages
//! the bundle carries, each with its repo, file name, URL and checksum, every check made (a location that is no
//! `.rpm` file name, two packages under one file name, a package without a checksum) before anything is
//! downloaded. No I/O: `build_repo_checked` then downloads, checks the signatures and runs createrepo_c.

use std::collections::HashSet;

use anyhow::{Context, Result};
use kubeha_model::bundle::RPMS_DIR;

use super::error::Error;
use super::fetch::{self, Fetcher};
use super::metadata::{Checksum, MdRecord, Package};
use super::solve::Resolution;

/// A repository's metadata as loaded.
pub(crate) struct LoadedRepo {
    pub name: String,
    pub baseurl: String,
    pub base: bool,
    pub records: Vec<MdRecord>,
}

/// A package together with the repo it comes from.
pub(crate) struct Located {
    pub repo: usize,
}

/// The metadata read and the solver's answer for a profile's packages (no package downloaded).
pub(crate) struct Solved {
    pub fetcher: Fetcher,
    pub repos: Vec<LoadedRepo>,
    pub pkgs: Vec<Package>,
    pub located: Vec<Located>,
    pub res: Resolution,
}

/// One package the bundle carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// `name-[epoch:]version-release.arch`.
    pub nevra: String,
    /// The package name.
    pub name: String,
    /// The profile repo it comes from (an index into the repos).
    pub repo: usize,
    /// The file name it is stored under in `rpms/`.
    pub file: String,
    /// Where it is downloaded from.
    pub url: String,
    /// The checksum the download is verified against.
    pub checksum: Checksum,
    /// The size of the .rpm (from the metadata).
    pub size: u64,
    /// Whether a request named it.
    pub requested: bool,
}

/// The packages the bundle carries, in the solver's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub items: Vec<Item>,
}

impl Plan {
    /// Each repo's bundled packages (NEVRA and file name), for the signature check; `repos` long.
    pub fn by_repo(&self, repos: usize) -> Vec<Vec<(String, String)>> {
        let mut out = vec![Vec::new(); repos];
        for it in &self.items {
            out[it.repo].push((it.nevra.clone(), it.file.clone()));
        }
        out
    }

    /// The file names of the plan.
    pub fn files(&self) -> HashSet<String> {
        self.items.iter().map(|it| it.file.clone()).collect()
    }
}

/// Plans the bundled packages of a solved closure (those not from a base repo); the first package at fault (in
/// the solver's order) is named with its repo.
pub(crate) fn plan(s: &Solved) -> Result<Plan> {
    let mut items = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for &i in s
        .res
        .chosen
        .iter()
        .filter(|&&i| !s.repos[s.located[i].repo].base)
    {
        let p = &s.pkgs[i];
        let r = s.located[i].repo;
        let repo = &s.repos[r];
        let file = file_name(p)?;
        if !seen.insert(file.clone()) {
            return Err(Error::FileClash {
                file,
                repo: repo.name.clone(),
            }
            .into());
        }
        let checksum = p
            .checksum
            .clone()
            .with_context(|| format!("{} has no checksum in repo {}", p.nevra(), repo.name))?;
        items.push(Item {
            nevra: p.nevra(),
            name: p.name.clone(),
            repo: r,
            file,
            url: fetch::join(p.base.as_deref().unwrap_or(&repo.baseurl), &p.href),
            checksum,
            size: p.size,
            requested: s.res.requested.contains(&i),
        });
    }
    Ok(Plan { items })
}

/// The file name a package is stored under: the last component of its location.
pub(crate) fn file_name(p: &Package) -> Result<String> {
    let name = p.href.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name.starts_with('.') || !name.ends_with(".rpm") {
        return Err(Error::NotRpmFile {
            nevra: p.nevra(),
            href: p.href.clone(),
        }
        .into());
    }
    Ok(name.to_string())
}

/// The path the bundle stores a package file under (`rpms/FILE.rpm`).
pub(crate) fn bundle_path(file: &str) -> String {
    format!("{RPMS_DIR}/{file}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn pkg(name: &str, href: &str, checksum: Option<&str>) -> Package {
        Package {
            name: name.into(),
            arch: "x86_64".into(),
            evr: super::super::vercmp::Evr::parse("1.0-1").expect("an EVR"),
            checksum: checksum.map(|hex| Checksum {
                kind: "sha256".into(),
                hex: hex.into(),
            }),
            href: href.into(),
            size: 10,
            ..Package::default()
        }
    }

    fn solved(pkgs: Vec<(Package, usize)>) -> Solved {
        let repo = |name: &str, base| LoadedRepo {
            name: name.into(),
            baseurl: format!("http://h/{name}/"),
            base,
            records: Vec::new(),
        };
        let (pkgs, located): (Vec<_>, Vec<_>) = pkgs
            .into_iter()
            .map(|(p, repo)| (p, Located { repo }))
            .unzip();
        Solved {
            fetcher: Fetcher::new(Vec::new()).expect("a fetcher"),
            repos: vec![repo("os", true), repo("k8s", false), repo("extra", false)],
            res: Resolution {
                chosen: (0..pkgs.len()).collect(),
                requested: HashSet::from([1]),
                request_of: HashMap::new(),
            },
            pkgs,
            located,
        }
    }

    #[test]
    fn plan_is_the_bundled_packages_checked_before_any_download() {
        let mut kubeadm = pkg("kubeadm", "Packages/kubeadm-1.0-1.x86_64.rpm", Some("aa"));
        kubeadm.base = Some("http://mirror/k8s".into());
        let s = solved(vec![
            (pkg("bash", "Packages/bash-1.0-1.x86_64.rpm", None), 0),
            (kubeadm, 1),
            (
                pkg("cri-tools", "cri-tools-1.0-1.x86_64.rpm", Some("bb")),
                2,
            ),
        ]);
        let p = plan(&s).expect("a valid closure plans");
        assert_eq!(
            p.items
                .iter()
                .map(|it| (it.nevra.as_str(), it.repo, it.file.as_str(), it.url.as_str(), it.requested))
                .collect::<Vec<_>>(),
            [
                (
                    "kubeadm-1.0-1.x86_64",
                    1,
                    "kubeadm-1.0-1.x86_64.rpm",
                    "http://mirror/k8s/Packages/kubeadm-1.0-1.x86_64.rpm",
                    true
                ),
                (
                    "cri-tools-1.0-1.x86_64",
                    2,
                    "cri-tools-1.0-1.x86_64.rpm",
                    "http://h/extra/cri-tools-1.0-1.x86_64.rpm",
                    false
                ),
            ],
            "the base repo's package (without a checksum) is left out; xml:base wins over the repo's URL"
        );
        assert_eq!(p.items[0].checksum.hex, "aa");
        assert_eq!(
            p.by_repo(3),
            [
                vec![],
                vec![(
                    "kubeadm-1.0-1.x86_64".into(),
                    "kubeadm-1.0-1.x86_64.rpm".into()
                )],
                vec![(
                    "cri-tools-1.0-1.x86_64".into(),
                    "cri-tools-1.0-1.x86_64.rpm".into()
                )],
            ]
        );
        assert_eq!(bundle_path("a.rpm"), format!("{RPMS_DIR}/a.rpm"));

        for (case, pkgs, want) in [
            (
                "two packages under one file name",
                vec![
                    (pkg("a", "x/same.rpm", Some("aa")), 1),
                    (pkg("b", "y/same.rpm", Some("bb")), 2),
                ],
                "same.rpm",
            ),
            (
                "no checksum",
                vec![(pkg("a", "a.rpm", None), 2)],
                "a-1.0-1.x86_64 has no checksum in repo extra",
            ),
            (
                "not an .rpm file name",
                vec![(pkg("a", "Packages/.a.rpm", Some("aa")), 1)],
                "location 'Packages/.a.rpm' is not an .rpm file name",
            ),
        ] {
            let e = plan(&solved(pkgs)).expect_err(case);
            assert!(format!("{e:#}").contains(want), "{case}: {e:#}");
        }
    }
}
