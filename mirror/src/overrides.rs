//! Where a profile's sources are fetched from, changed without copying the profile: `kubeha bundle build --mirror
//! REGISTRY=URL --repo ID=URL --file NAME=URL --registry-credentials HOST=USER:SECRET --repo-credentials
//! ID=USER:SECRET`, or the same keys in an overrides file (`--overrides FILE`, applied first so the command line
//! wins).
//!
//! The model is containers-registries.conf's `[[registry.mirror]]`: an image keeps its canonical name
//! (`k8s.gcr.io/pause:3.1` is stored and loaded as that), only the place its bytes come from changes, and a mirror
//! replaces its registry (no fallback). Repos are addressed by their id, as in a `.repo` file's `[id]`, and only
//! their `baseurl` changes; the `gpgkey` stays (every package is checked against it), unless `--gpgkey ID=URL`
//! points it at a copy of the key the site can reach; a file keeps its sha256 pin, so a mirror must serve the very
//! bytes the profile pins.
//!
//! Every key must name something the profile has: an unknown registry, repo or file is an error naming the flag
//! (or the file and key) and the value, with the ids the profile does have. A secret is never a value: `SECRET` is
//! `env:VARIABLE` or a password file (`file:PATH` or `PATH`), and the part after `USER:` is never echoed, in case
//! someone typed a password there.
//!
//! To add an override, add a [`Kind`], its key in [`OverridesFile`], and a branch in [`apply`].

use std::fs;
use std::path::Path;

use kubeha_model::bundle::{Credential, Profile, ProfileMirror};
use serde::Deserialize;
use url::Url;

use crate::bundle::profile_images;
use crate::error::{format_err, Error, Result};
use crate::reference::Reference;

/// What an override changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `REGISTRY=URL`: pull that registry's images from a mirror (URL path = the mirror's prefix).
    Mirror,
    /// `ID=BASEURL`: the repo's base URL.
    Repo,
    /// `NAME=URL`: where a pinned file is downloaded from.
    File,
    /// `HOST=USER:SECRET`: credentials for a registry or mirror host the build contacts.
    RegistryCredentials,
    /// `ID=USER:SECRET`: HTTP Basic credentials for a repo.
    RepoCredentials,
    /// `ID=URL[ URL...]`: where the repo's signing key(s) are fetched from (a copy of the same key).
    GpgKey,
}

impl Kind {
    /// The command-line flag.
    pub fn flag(self) -> &'static str {
        match self {
            Kind::Mirror => "--mirror",
            Kind::Repo => "--repo",
            Kind::File => "--file",
            Kind::RegistryCredentials => "--registry-credentials",
            Kind::RepoCredentials => "--repo-credentials",
            Kind::GpgKey => "--gpgkey",
        }
    }

    /// The key in an overrides file.
    pub fn key(self) -> &'static str {
        &self.flag()[2..]
    }

    fn has_secret(self) -> bool {
        matches!(self, Kind::RegistryCredentials | Kind::RepoCredentials)
    }
}

/// One override, with where it came from (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// What it changes.
    pub kind: Kind,
    /// `KEY=VALUE`.
    pub value: String,
    /// The flag (`--mirror`) or the file and key (`site.toml: mirror[0]`).
    pub origin: String,
}

impl Override {
    /// Overrides given on the command line with `kind`'s flag.
    pub fn from_flag(kind: Kind, values: &[String]) -> Vec<Override> {
        values
            .iter()
            .map(|v| Override {
                kind,
                value: v.clone(),
                origin: kind.flag().to_string(),
            })
            .collect()
    }

    /// The value as errors show it: a credentials value only up to `USER:`.
    fn shown(&self) -> String {
        if self.kind.has_secret() {
            match self.value.split_once(':') {
                Some((head, _)) => format!("{head}:…"),
                None => self.value.clone(),
            }
        } else {
            self.value.clone()
        }
    }

    fn err(&self, message: impl Into<String>) -> Error {
        format_err(format!("{} {}", self.origin, self.shown()), message)
    }

    fn split(&self, what: &str) -> Result<(&str, &str)> {
        match self.value.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k, v)),
            _ => Err(self.err(format!("expected {what}"))),
        }
    }
}

/// An overrides file: the command line's flags as TOML arrays of the same strings.
///
/// ```toml
/// mirror = ["k8s.gcr.io=https://mirror.example/k8s", "quay.io=https://mirror.example/quay"]
/// repo = ["kubernetes=https://repo.example/el7/"]
/// file = ["calico.yaml=https://files.example/calico.yaml"]
/// registry-credentials = ["mirror.example=ci:/run/secrets/mirror"]
/// repo-credentials = ["kubernetes=ci:env:REPO_PASSWORD"]
/// gpgkey = ["kubernetes=https://repo.example/keys/kubernetes.asc"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct OverridesFile {
    /// `REGISTRY=URL`.
    pub mirror: Vec<String>,
    /// `ID=BASEURL`.
    pub repo: Vec<String>,
    /// `NAME=URL`.
    pub file: Vec<String>,
    /// `HOST=USER:SECRET`.
    pub registry_credentials: Vec<String>,
    /// `ID=USER:SECRET`.
    pub repo_credentials: Vec<String>,
    /// `ID=URL`.
    pub gpgkey: Vec<String>,
}

impl OverridesFile {
    /// Reads an overrides file into overrides whose origin names the file and key.
    pub fn load(path: &Path) -> Result<Vec<Override>> {
        let text = fs::read_to_string(path).map_err(crate::error::io("reading", path))?;
        let f: OverridesFile = toml::from_str(&text)
            .map_err(|e| format_err(path.display().to_string(), e.to_string()))?;
        let mut out = Vec::new();
        for (kind, values) in [
            (Kind::Mirror, &f.mirror),
            (Kind::Repo, &f.repo),
            (Kind::File, &f.file),
            (Kind::RegistryCredentials, &f.registry_credentials),
            (Kind::RepoCredentials, &f.repo_credentials),
            (Kind::GpgKey, &f.gpgkey),
        ] {
            for (i, v) in values.iter().enumerate() {
                out.push(Override {
                    kind,
                    value: v.clone(),
                    origin: format!("{}: {}[{i}]", path.display(), kind.key()),
                });
            }
        }
        Ok(out)
    }
}

/// Applies `overrides` in order (a later one for the same registry, repo, file or host replaces an earlier one):
/// mirrors first, so registry credentials can name a mirror's host. Checks every key against the profile and every
/// URL and secret source before anything is fetched.
pub fn apply(profile: &mut Profile, overrides: &[Override]) -> Result<()> {
    let order = [
        Kind::Mirror,
        Kind::Repo,
        Kind::File,
        Kind::RegistryCredentials,
        Kind::RepoCredentials,
        Kind::GpgKey,
    ];
    for kind in order {
        for o in overrides.iter().filter(|o| o.kind == kind) {
            match kind {
                Kind::Mirror => mirror(profile, o)?,
                Kind::Repo => {
                    let (id, url) = o.split("ID=BASEURL")?;
                    check_url(o, url, true)?;
                    let r = repo_mut(profile, o, id)?;
                    r.baseurl = url.to_string();
                }
                Kind::File => {
                    let (name, url) = o.split("NAME=URL")?;
                    check_url(o, url, true)?;
                    let names = list(profile.files.iter().map(|f| f.name.as_str()));
                    let pname = profile.name.clone();
                    let f = profile
                        .files
                        .iter_mut()
                        .find(|f| f.name == name)
                        .ok_or_else(|| {
                            o.err(format!(
                                "profile {pname} has no file {name}; its files: {names}"
                            ))
                        })?;
                    f.url = url.to_string();
                }
                Kind::RegistryCredentials => {
                    let (host, rest) = o.split("HOST=USER:SECRET")?;
                    let contacted = contacted_hosts(profile)?;
                    if !contacted.iter().any(|h| h == host) {
                        return Err(o.err(format!(
                            "building profile {} contacts no registry {host}; it contacts: {}",
                            profile.name,
                            list(contacted.iter().map(String::as_str))
                        )));
                    }
                    let (username, secret) = secret(o, rest)?;
                    profile.credentials.retain(|c| c.registry != host);
                    profile.credentials.push(Credential {
                        registry: host.to_string(),
                        username,
                        password_env: secret.env,
                        password_file: secret.file,
                    });
                }
                Kind::RepoCredentials => {
                    let (id, rest) = o.split("ID=USER:SECRET")?;
                    let (username, secret) = secret(o, rest)?;
                    let r = repo_mut(profile, o, id)?;
                    r.username = Some(username);
                    r.password_env = secret.env;
                    r.password_file = secret.file;
                }
                Kind::GpgKey => {
                    let (id, urls) = o.split("ID=URL")?;
                    if urls.split_whitespace().next().is_none() {
                        return Err(o.err("no URL after ID="));
                    }
                    for u in urls.split_whitespace() {
                        check_url(o, u, true)?;
                    }
                    let r = repo_mut(profile, o, id)?;
                    r.gpgkey = Some(urls.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    profile.check(&format!("profile {} with its overrides", profile.name))?;
    Ok(())
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// The registries the profile's images (kubeadm's and its own) name.
fn registries(profile: &Profile) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for i in profile_images(profile)? {
        let r = Reference::parse(&i)?.registry;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out.sort();
    Ok(out)
}

/// The hosts a build contacts for images: each mirror's endpoint host (with its port), and each registry without
/// a mirror — what a `[[credentials]] registry` must name.
fn contacted_hosts(profile: &Profile) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in registries(profile)? {
        let h = match profile.registry_mirrors.iter().find(|m| m.registry == r) {
            Some(m) => {
                let u = Url::parse(&m.endpoint).map_err(|e| {
                    format_err(
                        format!("registry-mirrors endpoint {}", m.endpoint),
                        e.to_string(),
                    )
                })?;
                match u.port() {
                    Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
                    None => u.host_str().unwrap_or("").to_string(),
                }
            }
            None => r,
        };
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

fn mirror(profile: &mut Profile, o: &Override) -> Result<()> {
    let (registry, url) = o.split("REGISTRY=URL")?;
    let known = registries(profile)?;
    if !known.iter().any(|r| r == registry) {
        return Err(o.err(format!(
            "profile {} pulls no image from {registry}; its registries: {}",
            profile.name,
            list(known.iter().map(String::as_str))
        )));
    }
    let u = check_url(o, url, false)?;
    let endpoint = match u.port() {
        Some(p) => format!("{}://{}:{p}", u.scheme(), u.host_str().unwrap_or("")),
        None => format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")),
    };
    let prefix = u.path().trim_matches('/');
    profile.registry_mirrors.retain(|m| m.registry != registry);
    profile.registry_mirrors.push(ProfileMirror {
        registry: registry.to_string(),
        endpoint,
        prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
    });
    Ok(())
}

/// Checks a URL: http(s) (or `file:///` when `file_ok`), no user or password in it (they would be logged and
/// written into bundle.toml), no query or fragment.
fn check_url(o: &Override, url: &str, file_ok: bool) -> Result<Url> {
    let u = Url::parse(url).map_err(|e| o.err(format!("not a URL: {e}")))?;
    let schemes = if file_ok {
        "http://, https:// or file:///"
    } else {
        "http:// or https://"
    };
    match u.scheme() {
        "http" | "https" if u.host_str().is_some_and(|h| !h.is_empty()) => {}
        "file" if file_ok && url.starts_with("file:///") => {}
        _ => return Err(o.err(format!("not an {schemes} URL"))),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(o.err(
            "a URL must not carry credentials (they would be logged and recorded in bundle.toml); \
             use --registry-credentials or --repo-credentials",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(o.err("a URL with a query or fragment cannot be a base URL"));
    }
    Ok(u)
}

fn repo_mut<'a>(
    profile: &'a mut Profile,
    o: &Override,
    id: &str,
) -> Result<&'a mut kubeha_model::bundle::RpmRepo> {
    let ids = list(profile.repos.iter().map(|r| r.name.as_str()));
    let name = profile.name.clone();
    profile
        .repos
        .iter_mut()
        .find(|r| r.name == id)
        .ok_or_else(|| o.err(format!("profile {name} has no repo {id}; its repos: {ids}")))
}

struct Secret {
    env: Option<String>,
    file: Option<String>,
}

/// `USER:env:VARIABLE`, `USER:file:PATH` or `USER:PATH`. The variable must be set and the file readable now, so a
/// build does not fail halfway; neither the path nor the variable's value is ever put into an error.
fn secret(o: &Override, rest: &str) -> Result<(String, Secret)> {
    let usage =
        "expected USER:env:VARIABLE or USER:PASSWORD-FILE (a password itself is never taken here)";
    let (user, source) = match rest.split_once(':') {
        Some((u, s)) if !u.is_empty() && !s.is_empty() => (u, s),
        _ => return Err(o.err(usage)),
    };
    if let Some(var) = source.strip_prefix("env:") {
        let ok = var
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
        if var.is_empty() || !ok {
            return Err(o.err(format!("{usage}: not an environment variable name")));
        }
        if std::env::var_os(var).is_none() {
            return Err(o.err(format!("environment variable {var} is not set")));
        }
        return Ok((
            user.to_string(),
            Secret {
                env: Some(var.to_string()),
                file: None,
            },
        ));
    }
    let path = source.strip_prefix("file:").unwrap_or(source);
    if !fs::File::open(path)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.is_file())
    {
        return Err(o.err(format!("the password file cannot be read; {usage}")));
    }
    Ok((
        user.to_string(),
        Secret {
            env: None,
            file: Some(path.to_string()),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::load_profile;

    fn ov(kind: Kind, v: &str) -> Override {
        Override {
            kind,
            value: v.into(),
            origin: kind.flag().into(),
        }
    }

    fn seed() -> Profile {
        load_profile("seed-v1.11.1").unwrap()
    }

    #[test]
    fn gpgkey_points_a_repo_at_a_reachable_copy_of_its_key() {
        let mut p = seed();
        apply(
            &mut p,
            &[ov(
                Kind::GpgKey,
                "kubernetes=https://repo.example/k/yum-key.gpg  file:///srv/keys/rpm-package-key.gpg",
            )],
        )
        .unwrap();
        let k = p.repos.iter().find(|r| r.name == "kubernetes").unwrap();
        assert_eq!(
            k.gpgkey.as_deref(),
            Some("https://repo.example/k/yum-key.gpg file:///srv/keys/rpm-package-key.gpg")
        );
        for (value, want) in [
            ("kube=https://r/k.asc", "has no repo kube"),
            (
                "kubernetes=ftp://r/k.asc",
                "not an http://, https:// or file:/// URL",
            ),
            (
                "kubernetes=https://u:p@r/k.asc",
                "must not carry credentials",
            ),
            ("kubernetes=", "expected ID=URL"),
        ] {
            let e = apply(&mut seed(), &[ov(Kind::GpgKey, value)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("--gpgkey") && e.contains(want), "{value}: {e}");
        }
    }

    #[test]
    fn mirrors_repos_and_files_change_only_where_things_come_from() {
        let mut p = seed();
        apply(
            &mut p,
            &[
                ov(Kind::Mirror, "k8s.gcr.io=https://mirror.example/k8s"),
                ov(Kind::Mirror, "quay.io=http://127.0.0.1:5000"),
                ov(Kind::Repo, "kubernetes=https://repo.example/el7/"),
                // a later one wins
                ov(Kind::Mirror, "k8s.gcr.io=https://mirror.example:8443/k8s/"),
            ],
        )
        .unwrap();
        assert_eq!(
            p.registry_mirrors,
            [
                ProfileMirror {
                    registry: "quay.io".into(),
                    endpoint: "http://127.0.0.1:5000".into(),
                    prefix: None
                },
                ProfileMirror {
                    registry: "k8s.gcr.io".into(),
                    endpoint: "https://mirror.example:8443".into(),
                    prefix: Some("k8s".into())
                },
            ]
        );
        let k = p.repos.iter().find(|r| r.name == "kubernetes").unwrap();
        assert_eq!(k.baseurl, "https://repo.example/el7/");
        assert_eq!(
            k.gpgkey.as_deref(),
            Some(
                "https://packages.cloud.google.com/yum/doc/yum-key.gpg \
                 https://packages.cloud.google.com/yum/doc/rpm-package-key.gpg"
            )
        );
        // image names are untouched
        assert_eq!(p.images, seed().images);

        let mut d = load_profile(crate::bundle::DEFAULT_PROFILE).unwrap();
        let sha = d.files[0].sha256.clone();
        apply(
            &mut d,
            &[ov(Kind::File, "calico.yaml=file:///srv/calico.yaml")],
        )
        .unwrap();
        assert_eq!(d.files[0].url, "file:///srv/calico.yaml");
        assert_eq!(d.files[0].sha256, sha, "the pin stays");
    }

    #[test]
    fn unknown_ids_and_bad_values_name_the_flag_and_value() {
        for (o, want) in [
            (
                ov(Kind::Mirror, "k8s.gcr.io.example=https://m/k8s"),
                "--mirror k8s.gcr.io.example=https://m/k8s: profile seed-v1.11.1 pulls no image from \
                 k8s.gcr.io.example; its registries: docker.io, gcr.io, k8s.gcr.io, quay.io",
            ),
            (
                ov(Kind::Repo, "kube=https://r/"),
                "--repo kube=https://r/: profile seed-v1.11.1 has no repo kube; its repos: centos7-base, \
                 centos7-updates, centos7-extras, epel7, docker-ce-test, kubernetes",
            ),
            (
                ov(Kind::File, "calico.yaml=https://f/calico.yaml"),
                "--file calico.yaml=https://f/calico.yaml: profile seed-v1.11.1 has no file calico.yaml; its \
                 files: none",
            ),
            (
                ov(Kind::RegistryCredentials, "mirror.example=ci:/etc/hostname"),
                "--registry-credentials mirror.example=ci:…: building profile seed-v1.11.1 contacts no registry \
                 mirror.example; it contacts: docker.io, gcr.io, k8s.gcr.io, quay.io",
            ),
            (
                ov(Kind::RepoCredentials, "nope=ci:/etc/hostname"),
                "--repo-credentials nope=ci:…: profile seed-v1.11.1 has no repo nope",
            ),
            (ov(Kind::Mirror, "k8s.gcr.io"), "--mirror k8s.gcr.io: expected REGISTRY=URL"),
            (ov(Kind::Mirror, "k8s.gcr.io=ftp://m/"), "not an http:// or https:// URL"),
            (ov(Kind::Mirror, "k8s.gcr.io=file:///srv"), "not an http:// or https:// URL"),
            (ov(Kind::Repo, "epel7=https://u:pw@r/"), "must not carry credentials"),
            (ov(Kind::Repo, "epel7=https://r/?token=x"), "query or fragment"),
        ] {
            let err = apply(&mut seed(), std::slice::from_ref(&o)).unwrap_err().to_string();
            assert!(err.contains(want), "{o:?}:\n{err}\nwants: {want}");
        }
    }

    #[test]
    fn credentials_name_a_source_never_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        fs::write(&pw, "s3cret\n").unwrap();
        let mut p = seed();
        apply(
            &mut p,
            &[
                ov(Kind::Mirror, "k8s.gcr.io=https://mirror.example/k8s"),
                ov(
                    Kind::RegistryCredentials,
                    &format!("mirror.example=ci:{}", pw.display()),
                ),
                ov(
                    Kind::RepoCredentials,
                    &format!("kubernetes=ci:file:{}", pw.display()),
                ),
                ov(Kind::RepoCredentials, "epel7=ci:env:PATH"),
            ],
        )
        .unwrap();
        assert_eq!(p.credentials.len(), 1);
        assert_eq!(p.credentials[0].registry, "mirror.example");
        assert_eq!(p.credentials[0].password_file.as_deref(), pw.to_str());
        let k = p.repos.iter().find(|r| r.name == "kubernetes").unwrap();
        assert_eq!(
            (k.username.as_deref(), k.password_file.as_deref()),
            (Some("ci"), pw.to_str())
        );
        let e = p.repos.iter().find(|r| r.name == "epel7").unwrap();
        assert_eq!(e.password_env.as_deref(), Some("PATH"));

        // a password typed where a file or variable belongs is refused without being echoed
        for v in [
            "kubernetes=ci:hunter2",
            "kubernetes=ci:env:KUBEHA_TEST_NO_SUCH_VARIABLE",
            "kubernetes=ci",
            "kubernetes=ci:env:hunter 2",
        ] {
            let err = apply(&mut seed(), &[ov(Kind::RepoCredentials, v)])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("--repo-credentials kubernetes=ci"),
                "{v}: {err}"
            );
            assert!(!err.contains("hunter"), "{v}: {err}");
        }
    }

    #[test]
    fn overrides_file_mirrors_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("site.toml");
        fs::write(
            &f,
            "mirror = [\"k8s.gcr.io=https://m/k8s\", \"nope.io=https://m/\"]\nrepo = []\n",
        )
        .unwrap();
        let o = OverridesFile::load(&f).unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o[1].origin, format!("{}: mirror[1]", f.display()));
        let err = apply(&mut seed(), &o).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: mirror[1] nope.io=https://m/: ", f.display())),
            "{err}"
        );
        fs::write(&f, "mirrors = []\n").unwrap();
        let err = OverridesFile::load(&f).unwrap_err().to_string();
        assert!(err.contains("unknown field `mirrors`"), "{err}");
    }
}
