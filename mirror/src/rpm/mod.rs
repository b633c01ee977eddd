//! The bundle's yum repository: the dependency closure of a profile's packages, downloaded, verified and
//! indexed with createrepo_c.
//!
//! [`build_repo`] reads each repo's `repodata/repomd.xml`, verifies and parses `primary` (and `filelists`
//! only when a file requirement is not among the files primary lists), keeps the arches the target installs
//! ([`arch`]: x86_64 also takes i686 and older 32-bit x86, and `noarch`), solves the requested packages the
//! way dnf would install them on an empty node ([`solve`]), leaves out what the base repos (the install
//! ISO's own repo) carry, downloads the rest with checksum verification and runs `createrepo_c` on the
//! directory.
//!
//! [`build_repo_checked`] is solve → plan → execute: `solve_profile` reads the metadata and solves the closure,
//! `plan::plan` turns the solved closure into the bundled packages (file names, URLs, checksums) and refuses a
//! location that is no `.rpm` file name, two packages under one file name or a package without a checksum before
//! anything is downloaded (no I/O), and `execute` downloads, checks the signatures, removes stale files and runs
//! createrepo_c.
//!
//! Extending: a new metadata field goes into [`metadata::Package`] and `parse_primary`; a new dependency
//! kind into [`solve`]'s `Provider::build`.

pub mod arch;
mod error;
pub mod fetch;
pub mod metadata;
pub mod modules;
mod plan;
pub mod policy;
pub mod rich;
pub mod sig;
pub mod solve;
mod tool;
pub mod vercmp;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use kubeha_model::bundle::{Profile, RpmEntry, RPMS_DIR};
use kubeha_runner::Cmd;

pub use error::Error;
use fetch::Fetcher;
use metadata::{MdRecord, Package};
use plan::{bundle_path, file_name, LoadedRepo, Located, Plan, Solved};
use tool::run;

/// Builds the bundle's RPM repository in `out_dir` (the bundle's `rpms/`) and returns one entry per
/// bundled package (base-repo packages satisfy dependencies but are not bundled).
///
/// `profile.packages` are `name`, `name-version` or `name-version-release`; `profile.repos` have
/// `http(s)://` or `file://` base URLs. A file already in `out_dir` with the right checksum is not
/// downloaded again; `.rpm` files in `out_dir` that are no longer part of the set are removed. A profile
/// without packages returns no entries and writes nothing.
pub fn build_repo(
    profile: &Profile,
    out_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<RpmEntry>> {
    Ok(build_repo_checked(profile, out_dir, &HashMap::new(), progress)?.0)
}

/// [`build_repo`], told which files of `out_dir` this run already hashed: `checked` maps a file name to its
/// sha256, and such a file is kept without hashing it again when the metadata's checksum is that sha256.
/// Returns the entries, the names of the files downloaded and the signing keys the nodes check the packages
/// against ([`sig`]: paths relative to the bundle, empty when a repo with bundled packages has no `gpgkey`).
pub fn build_repo_checked(
    profile: &Profile,
    out_dir: &Path,
    checked: &HashMap<String, String>,
    progress: &dyn Fn(&str),
) -> Result<(Vec<RpmEntry>, Vec<String>, Vec<String>)> {
    if profile.packages.is_empty() {
        progress("rpm: the profile names no packages; no RPM repository");
        return Ok((Vec::new(), Vec::new(), Vec::new()));
    }
    let solved = solve_profile(profile, progress)?;
    let plan = plan::plan(&solved)?;
    execute(profile, &solved, &plan, out_dir, checked, progress)
}

/// Carries out a plan in `out_dir`: downloads each package (a file this run already hashed, or one on disk with
/// the right checksum, is kept), checks the signatures, removes what is no longer in the set and writes the
/// repodata. Returns what [`build_repo_checked`] returns.
fn execute(
    profile: &Profile,
    solved: &Solved,
    plan: &Plan,
    out_dir: &Path,
    checked: &HashMap<String, String>,
    progress: &dyn Fn(&str),
) -> Result<(Vec<RpmEntry>, Vec<String>, Vec<String>)> {
    let Solved { fetcher, repos, .. } = solved;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut entries = Vec::new();
    let mut downloads = Vec::new();
    for it in &plan.items {
        let repo = &repos[it.repo];
        let dest = out_dir.join(&it.file);
        let known_good = it.checksum.kind == "sha256"
            && checked
                .get(&it.file)
                .is_some_and(|h| h.eq_ignore_ascii_case(&it.checksum.hex))
            && dest.is_file();
        let fetched = !known_good
            && fetcher
                .download(&it.url, &dest, &it.checksum)
                .with_context(|| format!("downloading {} from repo {}", it.nevra, repo.name))?;
        if fetched {
            downloads.push(it.file.clone());
        }
        progress(&format!(
            "rpm: {} {} ({} bytes)",
            if fetched { "downloaded" } else { "have" },
            it.file,
            it.size
        ));
        entries.push(RpmEntry {
            nevra: it.nevra.clone(),
            name: it.name.clone(),
            path: bundle_path(&it.file),
            requested: it.requested,
        });
    }
    let by_repo = plan.by_repo(repos.len());
    let keys = check_signatures(profile, repos, fetcher, out_dir, &by_repo, progress)?;
    let mut keep = plan.files();
    keep.extend(keys.files.iter().cloned());
    remove_stale(out_dir, &keep)?;

    progress("rpm: writing repodata with createrepo_c");
    createrepo(out_dir)?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let keys = if keys.all_signed {
        keys.files.iter().map(|f| bundle_path(f)).collect()
    } else {
        Vec::new()
    };
    Ok((entries, downloads, keys))
}

/// The key files [`check_signatures`] stored, and whether every bundled package was checked against one.
struct Keys {
    files: Vec<String>,
    all_signed: bool,
}

/// Fetches each repo's `gpgkey` into `out_dir` and checks the repo's bundled packages (`by_repo[r]`: NEVRA
/// and file name) against it with rpm's own code ([`sig`]). A package that fails is removed and the build
/// fails naming it and its repo; a repo with packages but no key is a warning, and then no key is returned
/// for the nodes (their repo keeps `gpgcheck=0`, which an unsigned package needs).
fn check_signatures(
    profile: &Profile,
    repos: &[LoadedRepo],
    fetcher: &Fetcher,
    out_dir: &Path,
    by_repo: &[Vec<(String, String)>],
    progress: &dyn Fn(&str),
) -> Result<Keys> {
    let mut keys = Keys {
        files: Vec::new(),
        all_signed: true,
    };
    let mut refused = Vec::new();
    for (r, repo) in repos.iter().enumerate() {
        let pkgs = &by_repo[r];
        if pkgs.is_empty() {
            continue;
        }
        let urls: Vec<String> = profile.repos[r]
            .gpgkey
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(|u| expand_vars(u, profile))
            .collect();
        if urls.is_empty() {
            keys.all_signed = false;
            let msg = format!(
                "WARNING: repo {} has no gpgkey: its {} package(s) are bundled without a signature check, and the \
                 nodes' kubeha repo keeps gpgcheck=0; add the vendor's key as the repo's gpgkey",
                repo.name,
                pkgs.len()
            );
            log::warn!("{msg}");
            progress(&msg);
            continue;
        }
        let mut paths = Vec::new();
        for (url, name) in urls.iter().zip(sig::key_file_names(&repo.name, urls.len())) {
            let data = fetcher
                .get(url)
                .with_context(|| format!("repo {}: fetching its gpgkey {url}", repo.name))?;
            if !data
                .trim_ascii_start()
                .starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
            {
                return Err(Error::GpgKeyFormat {
                    repo: repo.name.clone(),
                    url: url.clone(),
                }
                .into());
            }
            if keys.files.contains(&name) {
                return Err(Error::KeyClash {
                    repo: repo.name.clone(),
                    path: format!("{RPMS_DIR}/{name}"),
                }
                .into());
            }
            let path = out_dir.join(&name);
            // Rewritten only when it changed, so its mtime (the `--fast` stamp) stays.
            if std::fs::read(&path).ok().as_deref() != Some(&data[..]) {
                kubeha_model::fsutil::write_atomic(&path, &data, 0o644, true)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            paths.push(path);
            keys.files.push(name);
        }
        progress(&format!(
            "rpm: checking the signatures of {} package(s) from repo {} against {}",
            pkgs.len(),
            repo.name,
            urls.join(" ")
        ));
        let ring = sig::Keyring::new(&paths).with_context(|| format!("repo {}", repo.name))?;
        let files: Vec<_> = pkgs.iter().map(|(_, f)| out_dir.join(f)).collect();
        for (path, verdict) in ring.check(&files)? {
            let (nevra, file) = pkgs
                .iter()
                .find(|(_, f)| out_dir.join(f) == path)
                .expect("a checked file is one of the repo's");
            refused.push(format!(
                "{nevra} from repo {} ({RPMS_DIR}/{file}): {verdict}",
                repo.name
            ));
            // Never left where a later step could take it for a checked package.
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    if !refused.is_empty() {
        return Err(Error::Signatures { refused }.into());
    }
    Ok(keys)
}

/// What `kubeha bundle resolve --json` prints: the install set of a profile's packages as dnf would
/// install it on an empty node, with where each package comes from and why it is there (docs/bundle.md
/// documents this shape; fields are only ever added).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Closure {
    /// The profile's name.
    pub profile: String,
    /// The target arch (`x86_64`, ...).
    pub arch: String,
    /// The EL major release (`$releasever`).
    pub el: u8,
    /// The requests as the profile writes them.
    pub requests: Vec<String>,
    /// Every package of the install set, sorted by NEVRA.
    pub packages: Vec<ClosurePackage>,
    /// How many of them the bundle carries (those not from a base repo).
    pub bundled: usize,
    /// How many of them the base repos (the install media) already provide.
    pub from_base: usize,
    /// Bytes of the packages to bundle, as the metadata gives their sizes.
    pub bundled_bytes: u64,
}

/// One package of a [`Closure`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClosurePackage {
    /// `name-[epoch:]version-release.arch`.
    pub nevra: String,
    /// The package name.
    pub name: String,
    /// The profile repo it is taken from.
    pub repo: String,
    /// Whether that repo is a base repo: the node has it already, the bundle leaves it out.
    pub base: bool,
    /// Whether a request named it.
    pub requested: bool,
    /// The size of the .rpm (from the metadata).
    pub size: u64,
    /// The path the bundle stores it under (`rpms/FILE.rpm`); `None` for a base repo's package.
    pub path: Option<String>,
    /// Why it is installed.
    pub why: solve::Why,
}

/// Resolves a profile's packages without downloading any package: reads the repos' metadata only and
/// returns the install set, each package with its repo and the reason it is in the set.
pub fn resolve_closure(profile: &Profile, progress: &dyn Fn(&str)) -> Result<Closure> {
    let mut out = Closure {
        profile: profile.name.clone(),
        arch: profile.arch.clone(),
        el: profile.el,
        requests: profile.packages.clone(),
        packages: Vec::new(),
        bundled: 0,
        from_base: 0,
        bundled_bytes: 0,
    };
    if profile.packages.is_empty() {
        return Ok(out);
    }
    let s = solve_profile(profile, progress)?;
    let mut why = solve::explain(&s.pkgs, &s.res);
    for &i in &s.res.chosen {
        let p = &s.pkgs[i];
        let repo = &s.repos[s.located[i].repo];
        let path = if repo.base {
            out.from_base += 1;
            None
        } else {
            out.bundled += 1;
            out.bundled_bytes += p.size;
            Some(bundle_path(&file_name(p)?))
        };
        out.packages.push(ClosurePackage {
            nevra: p.nevra(),
            name: p.name.clone(),
            repo: repo.name.clone(),
            base: repo.base,
            requested: s.res.requested.contains(&i),
            size: p.size,
            path,
            why: why.remove(&i).expect("explain covers every chosen package"),
        });
    }
    out.packages.sort_by(|a, b| a.nevra.cmp(&b.nevra));
    Ok(out)
}

impl std::fmt::Display for Closure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.packages {
            let why = match (p.why.kind, &p.why.by) {
                ("request", _) => format!("requested as {}", p.why.dep),
                ("supplements", Some(by)) => format!("supplements {by} ({})", p.why.dep),
                ("lock-step", Some(by)) => format!("multilib partner of {by}"),
                (kind, Some(by)) => format!("{kind} by {by}: {}", p.why.dep),
                (kind, None) => kind.to_string(),
            };
            let repo = if p.base {
                format!("{} (base: on the node)", p.repo)
            } else {
                p.repo.clone()
            };
            writeln!(f, "{}  {repo}  {why}", p.nevra)?;
        }
        write!(
            f,
            "{} packages for {} (EL{} {}): {} to bundle ({} bytes), {} already in the base repos",
            self.packages.len(),
            self.requests.join(", "),
            self.el,
            self.arch,
            self.bundled,
            self.bundled_bytes,
            self.from_base
        )
    }
}

/// Reads every repo's metadata (repomd, primary, modules, and filelists when a file requirement needs
/// it) and solves the profile's packages; downloads no package.
fn solve_profile(profile: &Profile, progress: &dyn Fn(&str)) -> Result<Solved> {
    if profile.repos.is_empty() {
        return Err(Error::NoRepos.into());
    }
    let fetcher = Fetcher::new(repo_auth(profile)?)?;
    // The target's arches as dnf sees them: x86_64 also installs i686 (and older 32-bit x86) and noarch.
    let policy = arch::ArchPolicy::new(&profile.arch);

    // Metadata.
    let mut repos = Vec::new();
    let mut pkgs: Vec<Package> = Vec::new();
    let mut located: Vec<Located> = Vec::new();
    let mut by_nevra: HashMap<String, usize> = HashMap::new();
    let mut modules = modules::Modules::default();
    // Each repo's repomd, primary and modules are fetched, verified and parsed on a thread of their own
    // (a large primary is most of the run, and EL's are several); the packages are then merged in the
    // profile's repo order, as if read one after another.
    let baseurls: Vec<String> = profile
        .repos
        .iter()
        .map(|repo| expand_vars(&repo.baseurl, profile))
        .collect();
    for (repo, baseurl) in profile.repos.iter().zip(&baseurls) {
        progress(&format!("rpm: reading repo {} ({baseurl})", repo.name));
    }
    let read: Vec<Result<RepoMd>> = std::thread::scope(|s| {
        let threads: Vec<_> = profile
            .repos
            .iter()
            .zip(&baseurls)
            .map(|(repo, baseurl)| {
                let fetcher = &fetcher;
                s.spawn(move || read_repo_md(fetcher, &repo.name, baseurl))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a metadata thread panicked"))
            .collect()
    });
    for ((r, repo), (read, baseurl)) in profile
        .repos
        .iter()
        .enumerate()
        .zip(read.into_iter().zip(baseurls))
    {
        let RepoMd {
            records,
            packages: parsed,
            modules_yaml,
        } = read?;
        if let Some((what, yaml)) = modules_yaml {
            modules
                .add_yaml(&yaml)
                .with_context(|| format!("repo {}: parsing {what}", repo.name))?;
        }
        let total = parsed.len();
        let mut kept = 0;
        for p in parsed {
            if !policy.accepts(&p.arch) {
                continue;
            }
            kept += 1;
            // The same package in two repos: keep the first, unless a later one is a base repo (then it
            // is on the node's install media and needs no bundling).
            match by_nevra.get(&p.nevra()) {
                Some(&i) => {
                    if repo.base && !profile.repos[located[i].repo].base {
                        located[i].repo = r;
                        pkgs[i] = p;
                    }
                }
                None => {
                    by_nevra.insert(p.nevra(), pkgs.len());
                    pkgs.push(p);
                    located.push(Located { repo: r });
                }
            }
        }
        log::info!(
            "repo {}: {total} packages, {kept} for {}",
            repo.name,
            policy.arches().join(", ")
        );
        repos.push(LoadedRepo {
            name: repo.name.clone(),
            baseurl,
            base: repo.base,
            records,
        });
    }

    // Modularity: what the default module streams hide is not available, as for dnf.
    if !modules.is_empty() {
        let keep = modules.keep(&pkgs);
        let hidden = keep.iter().filter(|k| !**k).count();
        progress(&format!(
            "rpm: {} module streams ({} with a default stream); {hidden} packages hidden by modularity",
            modules.streams.len(),
            modules.defaults.len()
        ));
        let mut k = keep.iter();
        pkgs.retain(|_| *k.next().unwrap());
        let mut k = keep.iter();
        located.retain(|_| *k.next().unwrap());
    }

    // File requirements that primary does not answer: read filelists for those paths only. Packages
    // found that way can bring more such requirements, hence the loop (each filelists is fetched once).
    let mut searched: HashSet<String> = HashSet::new();
    let mut filelists: Vec<Option<Vec<u8>>> = repos.iter().map(|_| None).collect();
    loop {
        let files: HashSet<String> = solve::missing_files(&pkgs, &profile.packages)?
            .into_iter()
            .filter(|f| !searched.contains(f))
            .collect();
        if files.is_empty() {
            break;
        }
        progress(&format!(
            "rpm: reading filelists for {} file requirement(s)",
            files.len()
        ));
        // One thread per repo, as for primary; the files found are added in repo order.
        let found: Vec<Result<Option<FilesFound>>> = std::thread::scope(|s| {
            let threads: Vec<_> = repos
                .iter()
                .zip(filelists.iter_mut())
                .map(|(repo, cache)| {
                    let (fetcher, files) = (&fetcher, &files);
                    s.spawn(move || {
                        let Some(rec) = repo.records.iter().find(|m| m.kind == "filelists") else {
                            log::warn!("repo {}: no filelists metadata", repo.name);
                            return Ok(None);
                        };
                        if cache.is_none() {
                            *cache = Some(fetch_md(fetcher, &repo.name, &repo.baseurl, rec)?);
                        }
                        let data = cache.as_deref().unwrap_or_default();
                        let what = fetch::join(&repo.baseurl, &rec.href);
                        metadata::parse_filelists(metadata::decompress(data, &what)?, files)
                            .with_context(|| format!("repo {}: parsing {what}", repo.name))
                            .map(Some)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a filelists thread panicked"))
                .collect()
        });
        for (r, found) in found.into_iter().enumerate() {
            let Some(found) = found? else { continue };
            for (i, p) in pkgs.iter_mut().enumerate() {
                if located[i].repo != r {
                    continue;
                }
                if let Some(fs) = p.checksum.as_ref().and_then(|c| found.get(&c.hex)) {
                    p.files.extend(fs.iter().cloned());
                }
            }
        }
        searched.extend(files);
    }

    // Solve.
    progress(&format!(
        "rpm: resolving {} for {} (EL{})",
        profile.packages.join(", "),
        profile.arch,
        profile.el
    ));
    let res = solve::resolve(&pkgs, &profile.packages, &policy)?;
    let (from_base, bundled): (Vec<usize>, Vec<usize>) = res
        .chosen
        .iter()
        .partition(|&&i| repos[located[i].repo].base);
    progress(&format!(
        "rpm: {} packages to install, {} from the base repo, {} to bundle",
        res.chosen.len(),
        from_base.len(),
        bundled.len()
    ));
    for &i in &from_base {
        log::info!(
            "{} comes from base repo {}",
            pkgs[i].nevra(),
            repos[located[i].repo].name
        );
    }

    Ok(Solved {
        fetcher,
        repos,
        pkgs,
        located,
        res,
    })
}

/// The repos' HTTP Basic credentials, their passwords read from the environment or a file (a missing one is an
/// error naming the repo's field, never the password).
pub fn repo_auth(profile: &Profile) -> Result<Vec<fetch::RepoAuth>> {
    let mut out = Vec::new();
    for (i, r) in profile.repos.iter().enumerate() {
        let Some(username) = &r.username else {
            continue;
        };
        let password = match (&r.password_env, &r.password_file) {
            (Some(var), _) => std::env::var(var).with_context(|| {
                format!(
                    "repos[{i}] ({}).password-env: environment variable {var} is not set",
                    r.name
                )
            })?,
            (None, Some(file)) => std::fs::read_to_string(file)
                .with_context(|| format!("repos[{i}] ({}).password-file: reading {file}", r.name))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            (None, None) => {
                return Err(Error::NoPassword {
                    index: i,
                    repo: r.name.clone(),
                }
                .into())
            }
        };
        out.push(fetch::RepoAuth {
            baseurl: expand_vars(&r.baseurl, profile),
            username: username.clone(),
            password,
        });
    }
    Ok(out)
}

/// Expands the yum variables repo files use in base URLs: `$releasever` (the profile's EL major),
/// `$basearch` and `$arch` (the profile's arch), also in `${name}` form.
fn expand_vars(url: &str, profile: &Profile) -> String {
    let el = profile.el.to_string();
    let mut out = url.to_string();
    for (name, value) in [
        ("releasever", el.as_str()),
        ("basearch", profile.arch.as_str()),
        ("arch", profile.arch.as_str()),
    ] {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// Fetches a metadata file and verifies it against repomd.xml's checksum.
/// The wanted files filelists lists, by package id (checksum hex).
type FilesFound = HashMap<String, Vec<String>>;

/// One repo's metadata as read for solving: its repomd records, primary's packages and, when it has one,
/// its modules.yaml (with the URL it came from).
struct RepoMd {
    records: Vec<MdRecord>,
    packages: Vec<Package>,
    modules_yaml: Option<(String, Vec<u8>)>,
}

/// Fetches, verifies and parses one repo's repomd.xml, primary and modules.yaml.
fn read_repo_md(fetcher: &Fetcher, name: &str, baseurl: &str) -> Result<RepoMd> {
    let url = fetch::join(baseurl, "repodata/repomd.xml");
    let repomd = fetcher
        .get(&url)
        .with_context(|| format!("repo {name}: fetching repomd.xml"))?;
    let records =
        metadata::parse_repomd(&repomd).with_context(|| format!("repo {name}: parsing {url}"))?;
    let primary = records
        .iter()
        .find(|m| m.kind == "primary")
        .with_context(|| format!("repo {name}: repomd.xml lists no primary metadata"))?;
    let data = fetch_md(fetcher, name, baseurl, primary)?;
    let what = fetch::join(baseurl, &primary.href);
    let packages = metadata::parse_primary(metadata::decompress(&data, &what)?)
        .with_context(|| format!("repo {name}: parsing {what}"))?;
    let modules_yaml = match records.iter().find(|m| m.kind == "modules") {
        Some(rec) => {
            let data = fetch_md(fetcher, name, baseurl, rec)?;
            let what = fetch::join(baseurl, &rec.href);
            let mut yaml = Vec::new();
            std::io::Read::read_to_end(&mut metadata::decompress(&data, &what)?, &mut yaml)
                .with_context(|| format!("repo {name}: reading {what}"))?;
            Some((what, yaml))
        }
        None => None,
    };
    Ok(RepoMd {
        records,
        packages,
        modules_yaml,
    })
}

fn fetch_md(fetcher: &Fetcher, repo: &str, baseurl: &str, rec: &MdRecord) -> Result<Vec<u8>> {
    let url = fetch::join(baseurl, &rec.href);
    let data = fetcher
        .get(&url)
        .with_context(|| format!("repo {repo}: fetching {} metadata", rec.kind))?;
    rec.checksum
        .verify(&data, &url)
        .with_context(|| format!("repo {repo}: {} metadata", rec.kind))?;
    Ok(data)
}

/// Removes `.rpm` files (and interrupted downloads) that are not part of the new set.
fn remove_stale(dir: &Path, keep: &HashSet<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = ((name.ends_with(".rpm") || sig::is_key_file(&name)) && !keep.contains(&name))
            || (name.starts_with(".download-") && name.ends_with(".part"));
        if stale && e.file_type()?.is_file() {
            log::info!("removing {name}, no longer in the package set");
            std::fs::remove_file(e.path())
                .with_context(|| format!("removing {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Writes `dir/repodata` with createrepo_c: gzip metadata, which every yum and dnf reads (createrepo_c
/// >= 1.0 defaults to zstd, which EL7's yum cannot read); no sqlite databases (yum builds its own cache).
fn createrepo(dir: &Path) -> Result<()> {
    run(&Cmd::new("createrepo_c")
        .arg("--quiet")
        .arg("--no-database")
        .arg("--general-compress-type=gz")
        .arg_path(dir))
    .context("writing the bundle's repodata")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yum_variables_in_baseurl() {
        let p = Profile::parse(
            "name = \"t\"\nkubernetes-version = \"1.30.0\"\nel = 8\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            expand_vars(
                "https://download.docker.com/linux/centos/$releasever/$basearch/stable",
                &p
            ),
            "https://download.docker.com/linux/centos/8/x86_64/stable"
        );
        assert_eq!(
            expand_vars("http://h/${releasever}-$arch/", &p),
            "http://h/8-x86_64/"
        );
    }
}
