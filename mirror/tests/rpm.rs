//! `rpm::build_repo` against real repositories: built with rpmbuild + createrepo_c by
//! `tests/fixtures/rpm/gen.sh` (once per test binary, cached by the script's hash under the cargo target
//! dir), read over `file://` and over HTTP from `python3 -m http.server` on loopback, and proved by a real
//! `dnf --installroot` install that uses nothing but the bundle and the base repo.

#[path = "common/dnf_table.rs"]
mod dnf_table;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use kubeha_lab::HttpDir;
use kubeha_mirror::rpm::{self, vercmp::rpmvercmp};
use kubeha_model::bundle::{Profile, RpmEntry};
use sha2::Digest;

/// The fixture: `DIR/base` (the install ISO's repo) and `DIR/kube`.
fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generate("gen.sh", "rpm-fixture"))
}

/// The trap repos of `tests/fixtures/rpm/traps.sh` (`DIR/epoch`, ...).
fn traps() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generate("traps.sh", "rpm-traps"))
}

/// Runs `tests/fixtures/rpm/SCRIPT OUT` once, cached by the script's hash under the cargo target dir.
fn generate(script: &str, prefix: &str) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rpm")
        .join(script);
    let hash = hex::encode(sha2::Sha256::digest(std::fs::read(&script).unwrap()));
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = root.join(format!("{prefix}-{}", &hash[..16]));
    if !dir.exists() {
        // Build beside it and rename, so concurrent test binaries never see half a fixture.
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{prefix}-build-"))
            .tempdir_in(root)
            .unwrap();
        let out = Command::new("bash")
            .arg(&script)
            .arg(tmp.path())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let built = tmp.keep();
        if std::fs::rename(&built, &dir).is_err() {
            // Another process won the race.
            std::fs::remove_dir_all(&built).ok();
        }
    }
    dir
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn profile(repos: &[(&str, String, bool)], packages: &[&str]) -> Profile {
    let mut text = String::from(
        "name = \"test\"\nkubernetes-version = \"1.30.0\"\nel = 9\narch = \"x86_64\"\n",
    );
    text.push_str(&format!(
        "packages = [{}]\n",
        packages
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (name, url, base) in repos {
        text.push_str(&format!(
            "[[repos]]\nname = \"{name}\"\nbaseurl = \"{url}\"\nbase = {base}\n"
        ));
    }
    Profile::parse(&text, "test profile").unwrap()
}

const REQUESTED: &[&str] = &["kubeadm-1.30.0-1", "kubelet-1.30.0", "kubectl"];

/// What dnf installs for REQUESTED from the fixture (checked against dnf itself below), minus the base repo.
const BUNDLED: &[&str] = &[
    "cri-tools-1.31.0~rc1-1.x86_64",
    "khconntrack-1.4.7-1.x86_64",
    "khcontainerd-1.7.0-1.x86_64",
    "khdata-1.0-1.noarch",
    "khdata2-1.0-1.noarch",
    "khrunc-1.1.12-1.x86_64",
    "kubeadm-1.30.0-1.x86_64",
    "kubectl-1.30.0-1.x86_64",
    "kubelet-1.30.0-1.x86_64",
    "kubernetes-cni-1.4.0-1.x86_64",
];
const FROM_BASE: &[&str] = &["kh-iptables-1.8.10-1.x86_64", "khlibseccomp-2.5.2-1.x86_64"];

fn build(p: &Profile, out: &Path) -> anyhow::Result<(Vec<RpmEntry>, Vec<String>)> {
    let log = Mutex::new(Vec::new());
    let entries = rpm::build_repo(p, out, &|l: &str| log.lock().unwrap().push(l.to_string()))?;
    Ok((entries, log.into_inner().unwrap()))
}

fn nevras(entries: &[RpmEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.nevra.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn check_entries(entries: &[RpmEntry], rpms: &Path) {
    assert_eq!(nevras(entries), BUNDLED);
    for e in entries {
        let want = ["kubeadm", "kubelet", "kubectl"].contains(&e.name.as_str());
        assert_eq!(e.requested, want, "requested flag of {}", e.nevra);
        let file = e.path.strip_prefix("rpms/").expect("path under rpms/");
        assert!(rpms.join(file).is_file(), "{} missing", e.path);
        assert!(e.nevra.starts_with(&e.name));
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(rpms)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rpm"))
        .collect();
    assert_eq!(on_disk.len(), BUNDLED.len(), "{on_disk:?}");
    assert!(rpms.join("repodata/repomd.xml").is_file());
}

/// `dnf install` into an empty root from the given repos only, offline, without weak dependencies.
fn dnf_install(root: &Path, repos: &[(&str, &Path)], packages: &[&str]) -> std::process::Output {
    dnf_install_weak(root, repos, packages, false)
}

/// `dnf install` into an empty root from the given repos only, offline; `weak` is dnf's
/// `install_weak_deps` (true by default).
fn dnf_install_weak(
    root: &Path,
    repos: &[(&str, &Path)],
    packages: &[&str],
    weak: bool,
) -> std::process::Output {
    let mut cmd = Command::new("dnf");
    cmd.arg("--installroot")
        .arg(root)
        .args([
            "--releasever",
            "9",
            "--setopt=reposdir=/dev/null",
            "--disablerepo=*",
        ])
        .arg(format!(
            "--setopt=cachedir={}",
            root.join("cache").display()
        ))
        .args(["--nogpgcheck", "-y"])
        .arg(format!(
            "--setopt=install_weak_deps={}",
            if weak { "True" } else { "False" }
        ));
    for (id, path) in repos {
        cmd.arg(format!("--repofrompath={id},{}", file_url(path)));
    }
    cmd.arg("install").args(packages);
    cmd.output().expect("running dnf")
}

fn installed(root: &Path) -> Vec<String> {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let set: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    set.into_iter().collect()
}

#[test]
fn bundle_from_file_repos_installs_offline_with_dnf() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let rpms = tmp.path().join("bundle/rpms");
    let p = profile(
        &[
            ("kube", file_url(&fx.join("kube")), false),
            ("base", file_url(&fx.join("base")), true),
        ],
        REQUESTED,
    );
    let (entries, log) = build(&p, &rpms).unwrap();
    check_entries(&entries, &rpms);
    // /usr/share/khdata/defaults.conf is only in filelists, and so is the khdata2 file that khdata needs.
    let rounds = log
        .iter()
        .filter(|l| l.contains("reading filelists for 1 file requirement"))
        .count();
    assert_eq!(rounds, 2, "{log:?}");

    // PROOF: dnf installs the requested packages from the bundle plus the base repo, offline, and installs
    // every bundled package (nothing bundled is superfluous).
    let root = tmp.path().join("root");
    let out = dnf_install(
        &root,
        &[("b", &rpms), ("base", &fx.join("base"))],
        REQUESTED,
    );
    assert!(
        out.status.success(),
        "dnf install from the bundle failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want: Vec<String> = BUNDLED
        .iter()
        .chain(FROM_BASE)
        .map(|s| s.to_string())
        .collect();
    want.sort();
    assert_eq!(installed(&root), want);

    // dnf itself, given the full source repos, installs exactly what we bundled plus the base packages.
    let root_full = tmp.path().join("root-full");
    let out = dnf_install(
        &root_full,
        &[("kube", &fx.join("kube")), ("base", &fx.join("base"))],
        REQUESTED,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(installed(&root_full), want);

    // Without the base repo the bundle alone does not install: the base packages are really left out.
    let root2 = tmp.path().join("root-without-base");
    let out = dnf_install(&root2, &[("b", &rpms)], REQUESTED);
    assert!(!out.status.success(), "dnf must fail without the base repo");
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("libkhseccomp.so.2()(64bit)") || err.contains("kh-iptables"),
        "dnf should miss the base repo's packages: {err}"
    );

    // A rerun downloads nothing; a corrupted file is downloaded again; a stale file is removed.
    let victim = rpms.join("khrunc-1.1.12-1.x86_64.rpm");
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    std::fs::write(rpms.join("stale-1-1.x86_64.rpm"), b"old").unwrap();
    let (entries2, log2) = build(&p, &rpms).unwrap();
    assert_eq!(entries2, entries);
    let downloaded: Vec<&String> = log2.iter().filter(|l| l.contains("downloaded")).collect();
    assert_eq!(downloaded.len(), 1, "{log2:?}");
    assert!(downloaded[0].contains("khrunc-1.1.12-1.x86_64.rpm"));
    check_entries(&entries2, &rpms);
}

/// An http.server that answers 500 to the first two requests for each path (then serves the file).
const FLAKY_SERVER: &str = r#"
import collections, functools, http.server, sys
seen = collections.Counter()
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        seen[self.path] += 1
        if seen[self.path] <= 2:
            self.send_error(500, "flaky")
            return
        super().do_GET()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
print("Serving HTTP on 127.0.0.1 port %d" % srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// An http.server on `argv[2]` that wants HTTP Basic `argv[3]` (base64 `user:password`) for everything and
/// redirects `.rpm` downloads to `argv[4]` (another host), like a mirror in front of blob storage.
const AUTH_SERVER: &str = r#"
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != "Basic " + sys.argv[3]:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="repo"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.endswith(".rpm"):
            self.send_response(302)
            self.send_header("Location", sys.argv[4] + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()
srv = http.server.ThreadingHTTPServer((sys.argv[2], 0), functools.partial(H, directory=sys.argv[1]))
print("Serving HTTP on %s port %d" % (sys.argv[2], srv.server_address[1]), flush=True)
srv.serve_forever()
"#;

/// An http.server on `argv[2]` that refuses (403) any request carrying `Authorization`: credentials must not
/// follow a redirect to another host.
const NO_AUTH_SERVER: &str = r#"
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if "Authorization" in self.headers:
            self.send_error(403, "credentials leaked to another host")
            return
        super().do_GET()
srv = http.server.ThreadingHTTPServer((sys.argv[2], 0), functools.partial(H, directory=sys.argv[1]))
print("Serving HTTP on %s port %d" % (sys.argv[2], srv.server_address[1]), flush=True)
srv.serve_forever()
"#;

/// Copies a repo and recompresses its primary with the `zstd` tool (createrepo_c >= 1.0's default).
fn zstd_copy(src: &Path, dst: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(status.success());
    let repomd_path = dst.join("repodata/repomd.xml");
    let repomd = std::fs::read_to_string(&repomd_path).unwrap();
    let gz = std::fs::read_dir(dst.join("repodata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-primary.xml.gz"))
        .unwrap();
    let xml = dst.join("repodata/primary.xml");
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"gzip -dc "$1" > "$2" && zstd -q -f "$2" -o "$2.zst""#)
        .args(["sh"])
        .arg(&gz)
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zst = std::fs::read(dst.join("repodata/primary.xml.zst")).unwrap();
    assert_eq!(&zst[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    let old_sum = hex::encode(sha2::Sha256::digest(std::fs::read(&gz).unwrap()));
    let new_sum = hex::encode(sha2::Sha256::digest(&zst));
    let old_href = format!("repodata/{}", gz.file_name().unwrap().to_string_lossy());
    assert!(repomd.contains(&old_sum) && repomd.contains(&old_href));
    // The href carries the checksum too: replace it first.
    let repomd = repomd
        .replace(&old_href, "repodata/primary.xml.zst")
        .replace(&old_sum, &new_sum);
    std::fs::write(&repomd_path, repomd).unwrap();
    std::fs::remove_file(&gz).unwrap();
}

#[test]
fn bundle_over_http_with_zstd_primary() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("srv");
    std::fs::create_dir(&served).unwrap();
    zstd_copy(&fx.join("kube"), &served.join("kube-zst"));
    let status = Command::new("cp")
        .arg("-a")
        .arg(fx.join("base"))
        .arg(served.join("base"))
        .status()
        .unwrap();
    assert!(status.success());
    let server = HttpDir::start(&served);
    let rpms = tmp.path().join("rpms");
    let p = profile(
        &[
            ("kube", server.url("kube-zst/"), false),
            ("base", server.url("base"), true),
        ],
        REQUESTED,
    );
    let (entries, _) = build(&p, &rpms).unwrap();
    check_entries(&entries, &rpms);

    // The zstd primary is verified against repomd.xml: a flipped byte is refused, naming the file.
    let zst = served.join("kube-zst/repodata/primary.xml.zst");
    let mut bytes = std::fs::read(&zst).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&zst, bytes).unwrap();
    let e = format!("{:#}", build(&p, &tmp.path().join("rpms2")).unwrap_err());
    assert!(
        e.contains("checksum mismatch") && e.contains("primary.xml.zst"),
        "{e}"
    );
    // A missing repo is an HTTP error naming the URL.
    let p = profile(&[("gone", server.url("nope"), false)], &["kubectl"]);
    let e = format!("{:#}", build(&p, &tmp.path().join("rpms3")).unwrap_err());
    assert!(
        e.contains("404") && e.contains("/nope/repodata/repomd.xml"),
        "{e}"
    );
}

/// `bundle resolve`: the closure over HTTP from metadata only (the server's access log shows no package
/// request), the same NEVRA set as `dnf --installroot` installs from the same repos, each package with
/// its repo and the reason it is there.
#[test]
fn resolve_reads_only_metadata_and_matches_dnf() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("access.log");
    let server = HttpDir::start_logged(fx, &log);
    let p = profile(
        &[
            ("kube", server.url("kube"), false),
            ("base", server.url("base"), true),
        ],
        REQUESTED,
    );
    let c = rpm::resolve_closure(&p, &|_: &str| {}).unwrap();
    drop(server);

    let requests: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .collect();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/kube/repodata/repomd.xml")),
        "{requests:?}"
    );
    for r in &requests {
        assert!(
            r.starts_with("GET /") && r.contains("/repodata/") && !r.contains(".rpm "),
            "resolve fetched more than metadata: {r}"
        );
    }

    let all: Vec<String> = c.packages.iter().map(|p| p.nevra.clone()).collect();
    let mut want: Vec<String> = BUNDLED
        .iter()
        .chain(FROM_BASE)
        .map(|s| s.to_string())
        .collect();
    want.sort();
    assert_eq!(all, want);
    let dnf = dnf_set(
        &[("kube", &fx.join("kube")), ("base", &fx.join("base"))],
        REQUESTED,
    );
    assert_eq!(all, dnf, "resolve vs dnf --installroot");
    // dnf's own report without installing: the same NEVRAs, from the same repos, except that a package both
    // a base repo and another carry (khlibseccomp here) is the base repo's for us (it is on the node's
    // media, so it is not bundled), whichever copy dnf lists.
    let assumeno = dnf_assumeno(
        &[("kube", &fx.join("kube")), ("base", &fx.join("base"))],
        REQUESTED,
    );
    assert_eq!(
        assumeno.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        all,
        "resolve vs dnf --assumeno install"
    );
    for (p, (_, dnf_repo)) in c.packages.iter().zip(&assumeno) {
        assert!(
            p.repo == *dnf_repo || p.base,
            "{}: {} vs dnf's {dnf_repo}",
            p.nevra,
            p.repo
        );
    }
    assert_eq!((c.bundled, c.from_base), (BUNDLED.len(), FROM_BASE.len()));

    for p in &c.packages {
        assert_eq!(p.base, FROM_BASE.contains(&p.nevra.as_str()), "{}", p.nevra);
        assert_eq!(p.repo, if p.base { "base" } else { "kube" }, "{}", p.nevra);
        assert_eq!(p.path.is_none(), p.base, "{}", p.nevra);
        assert_ne!(p.why.kind, "unexplained", "{}", p.nevra);
        if p.requested {
            assert_eq!(p.why.kind, "request", "{}", p.nevra);
        } else {
            let by = p.why.by.as_deref().unwrap_or_default();
            assert!(all.iter().any(|n| n == by), "{}: by {by}", p.nevra);
            assert!(!p.why.dep.is_empty(), "{}", p.nevra);
        }
    }
    let adm = c.packages.iter().find(|p| p.name == "kubeadm").unwrap();
    assert_eq!(adm.why.dep, "kubeadm-1.30.0-1");
    let cni = c
        .packages
        .iter()
        .find(|p| p.name == "kubernetes-cni")
        .unwrap();
    assert_eq!(cni.why.kind, "requires", "{cni:?}");
    assert!(cni.why.dep.starts_with("kubernetes-cni"), "{cni:?}");

    // The documented JSON shape.
    let v = serde_json::to_value(&c).unwrap();
    for k in [
        "profile",
        "arch",
        "el",
        "requests",
        "packages",
        "bundled",
        "from-base",
        "bundled-bytes",
    ] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    let first = &v["packages"][0];
    for k in [
        "nevra",
        "name",
        "repo",
        "base",
        "requested",
        "size",
        "path",
        "why",
    ] {
        assert!(first.get(k).is_some(), "{k} missing in {first}");
    }
    for k in ["kind", "by", "dep"] {
        assert!(first["why"].get(k).is_some(), "{k} missing in {first}");
    }
    let text = c.to_string();
    assert!(
        text.contains("kh-iptables-1.8.10-1.x86_64  base (base: on the node)"),
        "{text}"
    );
}

/// The seed-style override: a profile's repo (an unreachable upstream) read from an internal mirror that wants
/// HTTP Basic (`--repo ID=URL --repo-credentials ID=USER:PASSWORD-FILE`); the credentials go to the mirror only,
/// not to the host its package downloads redirect to, and never into an error.
#[test]
fn repo_override_with_basic_auth() {
    use kubeha_mirror::overrides::{apply, Kind, Override};
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let storage = HttpDir::script(NO_AUTH_SERVER, fx, &["127.0.0.2"]);
    let storage_base = format!("http://127.0.0.2:{}", storage.port);
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ci:pa55");
    let front = HttpDir::script(AUTH_SERVER, fx, &["127.0.0.1", &basic, &storage_base]);
    let pw = tmp.path().join("repo-password");
    std::fs::write(&pw, "pa55\n").unwrap();
    let upstream = profile(
        &[
            ("kube", "https://packages.invalid/kube/".into(), false),
            ("base", file_url(&fx.join("base")), true),
        ],
        REQUESTED,
    );
    let with = |overrides: Vec<Override>| {
        let mut p = upstream.clone();
        apply(&mut p, &overrides).unwrap();
        p
    };
    let repo = Override::from_flag(Kind::Repo, &[format!("kube={}", front.url("kube/"))]);
    let creds = Override::from_flag(
        Kind::RepoCredentials,
        &[format!("kube=ci:{}", pw.display())],
    );

    let p = with([repo.clone(), creds.clone()].concat());
    assert_eq!(p.repos[0].baseurl, front.url("kube/"));
    let rpms = tmp.path().join("rpms");
    let (entries, _) = build(&p, &rpms).unwrap();
    check_entries(&entries, &rpms);

    // without credentials: the 401 says what is missing
    let e = format!(
        "{:#}",
        build(&with(repo.clone()), &tmp.path().join("r2")).unwrap_err()
    );
    assert!(e.contains("401") && e.contains("--repo-credentials"), "{e}");
    // a wrong password is refused, and not echoed
    std::fs::write(&pw, "wrong-pa55\n").unwrap();
    let e = format!("{:#}", build(&p, &tmp.path().join("r3")).unwrap_err());
    assert!(e.contains("refused") && !e.contains("pa55"), "{e}");
}

/// Metadata and packages answered with 500 twice are fetched on the third attempt.
#[test]
fn http_5xx_is_retried() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let server = HttpDir::script(FLAKY_SERVER, fx, &[]);
    let rpms = tmp.path().join("rpms");
    let p = profile(
        &[
            ("kube", server.url("kube"), false),
            ("base", server.url("base"), true),
        ],
        &["khrunc"],
    );
    let (entries, _) = build(&p, &rpms).unwrap();
    assert_eq!(nevras(&entries), ["khrunc-1.1.12-1.x86_64"]);
}

#[test]
fn unresolvable_requirement_names_package_and_requirement() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let p = profile(
        &[
            ("kube", file_url(&fx.join("kube")), false),
            ("base", file_url(&fx.join("base")), true),
        ],
        &["kubectl", "khbroken"],
    );
    let e = format!("{:#}", build(&p, &tmp.path().join("rpms")).unwrap_err());
    eprintln!("{e}");
    assert!(
        e.contains("khbroken-1.0-1.x86_64 requires kh-nonexistent >= 2.0"),
        "{e}"
    );
    let p = profile(
        &[("kube", file_url(&fx.join("kube")), false)],
        &["no-such-package"],
    );
    let e = format!("{:#}", build(&p, &tmp.path().join("rpms")).unwrap_err());
    assert!(e.contains("'no-such-package'"), "{e}");
    // Only the aarch64 build has kubectl 1.31.0.
    let p = profile(
        &[("kube", file_url(&fx.join("kube")), false)],
        &["kubectl-1.31.0"],
    );
    let e = format!("{:#}", build(&p, &tmp.path().join("rpms")).unwrap_err());
    assert!(e.contains("'kubectl-1.31.0'"), "{e}");
    assert!(
        !tmp.path().join("rpms").exists(),
        "nothing is written before resolution succeeds"
    );
}

/// A package whose bytes do not match its metadata checksum is refused and not kept.
#[test]
fn corrupt_package_in_repo_is_refused() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("kube");
    let status = Command::new("cp")
        .arg("-a")
        .arg(fx.join("kube"))
        .arg(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let victim = repo.join("kubectl-1.30.0-1.x86_64.rpm");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let rpms = tmp.path().join("rpms");
    let p = profile(&[("kube", file_url(&repo), false)], &["kubectl"]);
    let e = format!("{:#}", build(&p, &rpms).unwrap_err());
    assert!(
        e.contains("kubectl-1.30.0-1.x86_64") && e.contains("checksum mismatch"),
        "{e}"
    );
    let left: Vec<_> = std::fs::read_dir(&rpms).unwrap().collect();
    assert!(left.is_empty(), "nothing unverified is kept: {left:?}");
}

/// createrepo_c's other metadata compressions (xz, bz2), read from file://.
#[test]
fn xz_and_bz2_metadata() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["xz", "bz2"] {
        let repo = tmp.path().join(format!("kube-{kind}"));
        let status = Command::new("cp")
            .arg("-a")
            .arg(fx.join("kube"))
            .arg(&repo)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_dir_all(repo.join("repodata")).unwrap();
        let out = Command::new("createrepo_c")
            .args([
                "--quiet",
                "--no-database",
                &format!("--general-compress-type={kind}"),
            ])
            .arg(&repo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let repomd = std::fs::read_to_string(repo.join("repodata/repomd.xml")).unwrap();
        assert!(repomd.contains(&format!("primary.xml.{kind}")), "{repomd}");
        let rpms = tmp.path().join(format!("rpms-{kind}"));
        let p = profile(
            &[
                ("kube", file_url(&repo), false),
                ("base", file_url(&fx.join("base")), true),
            ],
            REQUESTED,
        );
        let (entries, _) = build(&p, &rpms).unwrap();
        check_entries(&entries, &rpms);
    }
}

/// Our rpmvercmp against the real rpm's `rpm.vercmp` for every pair of a varied list of versions.
#[test]
fn rpmvercmp_agrees_with_rpm() {
    let versions = [
        "1.0",
        "1.0.0",
        "1",
        "1.01",
        "1.0a",
        "1.0aa",
        "1.0~rc1",
        "1.0~rc2",
        "1.0~",
        "1.0^",
        "1.0^git1",
        "1.0~rc1^git1",
        "1.0^git1~pre",
        "2.0",
        "10",
        "9",
        "1.a",
        "a",
        "b",
        "a1",
        "1_0",
        "1..0",
        "0001",
        "1.30.0",
        "1.30.0^20240101git",
        "1.31.0~rc1",
        "1.31.0",
        "17.12.0.ce",
        "17.12.0.ce~rc2",
        "5.5p1",
        "5.5p10",
        "6.0.rc1",
        "xyz.4",
        "20101121",
        "1.fc17",
        "1b.fc17",
        "1.1.α",
        "1.1.β",
        "el9",
        "el9_4",
        "150500.1.1",
        "3.el7",
    ];
    let mut lua = String::new();
    for a in &versions {
        for b in &versions {
            // rpm's macro-level print() appends without a newline: separate with spaces.
            lua.push_str(&format!("print(rpm.vercmp(\"{a}\", \"{b}\") .. \" \")\n"));
        }
    }
    let out = Command::new("rpm")
        .arg("--eval")
        .arg(format!("%{{lua:\n{lua}}}"))
        .output()
        .expect("running rpm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(got.len(), versions.len() * versions.len());
    let mut k = 0;
    for a in &versions {
        for b in &versions {
            let ours = rpmvercmp(a, b) as i32;
            assert_eq!(ours, got[k].signum(), "rpmvercmp({a}, {b})");
            k += 1;
        }
    }
}

/// A python3 that can `import rpm` (python3-rpm), or `None`.
fn python_with_rpm() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import rpm"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Asks python3-rpm: `L a b` lines get `rpm.labelCompare(a, b)`, `D a b op` lines whether rpm's
/// `rpmdsCompare` lets a provide `X = a` satisfy a requirement `X op b` (EVRs written `epoch|version|release`,
/// empty fields missing).
const RPM_ORACLE: &str = r#"
import sys, rpm
S = {"<": rpm.RPMSENSE_LESS, "<=": rpm.RPMSENSE_LESS | rpm.RPMSENSE_EQUAL, "=": rpm.RPMSENSE_EQUAL,
     ">=": rpm.RPMSENSE_GREATER | rpm.RPMSENSE_EQUAL, ">": rpm.RPMSENSE_GREATER}
def tup(s):
    e, v, r = s.split("|")
    return (e or None, v, r or None)
def evr(s):
    e, v, r = s.split("|")
    return (e + ":" if e else "") + v + ("-" + r if r else "")
out = []
for line in sys.stdin:
    w = line.split()
    if w[0] == "L":
        out.append(str(rpm.labelCompare(tup(w[1]), tup(w[2]))))
    else:
        p = rpm.ds(("X", rpm.RPMSENSE_EQUAL, evr(w[1])), rpm.RPMTAG_PROVIDENAME)
        r = rpm.ds(("X", S[w[3]], evr(w[2])), rpm.RPMTAG_REQUIRENAME)
        out.append("1" if p.Compare(r) else "0")
print("\n".join(out))
"#;

/// Our EVR order and dependency matching against rpm's own (`rpm.labelCompare`, `rpm.ds.Compare`) for every
/// pair of generated EVRs with and without epochs (0 included) and releases.
#[test]
fn evr_compare_and_match_agree_with_python_rpm() {
    let Some(py) = python_with_rpm() else {
        println!(
            "SKIP evr_compare_and_match_agree_with_python_rpm: python3-rpm cannot be imported"
        );
        return;
    };
    use kubeha_mirror::rpm::vercmp::{overlaps, Evr, Op};
    let mut evrs: Vec<(String, Evr)> = Vec::new();
    for e in [None, Some(0u64), Some(1), Some(2), Some(10)] {
        for v in ["0", "1.0", "2.10", "2.74", "3.0.0", "1.0~rc1"] {
            for r in [None, Some("1"), Some("2.el9"), Some("10")] {
                let key = format!(
                    "{}|{v}|{}",
                    e.map(|e| e.to_string()).unwrap_or_default(),
                    r.unwrap_or_default()
                );
                let evr = Evr {
                    epoch: e.unwrap_or(0),
                    version: v.to_string(),
                    release: r.map(str::to_string),
                };
                evrs.push((key, evr));
            }
        }
    }
    let ops = [
        ("<", Op::Lt),
        ("<=", Op::Le),
        ("=", Op::Eq),
        (">=", Op::Ge),
        (">", Op::Gt),
    ];
    let mut input = String::new();
    let mut ours: Vec<(String, i32)> = Vec::new();
    for (ka, a) in &evrs {
        for (kb, b) in &evrs {
            input.push_str(&format!("L {ka} {kb}\n"));
            ours.push((format!("labelCompare({ka}, {kb})"), a.newer_cmp(b) as i32));
            for (sym, op) in ops {
                input.push_str(&format!("D {ka} {kb} {sym}\n"));
                let m = overlaps(&Some((Op::Eq, a.clone())), &Some((op, b.clone())));
                ours.push((format!("X = {ka} satisfies X {sym} {kb}"), m as i32));
            }
        }
    }
    let mut child = Command::new(py)
        .args(["-c", RPM_ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let theirs: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|w| w.parse::<i32>().unwrap().signum())
        .collect();
    assert_eq!(theirs.len(), ours.len());
    let wrong: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|((_, o), t)| o != *t)
        .map(|((what, o), t)| format!("{what}: ours {o}, rpm {t}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} disagree:\n{}",
        wrong.len(),
        ours.len(),
        wrong[..wrong.len().min(30)].join("\n")
    );
}

/// What our resolver bundles for `packages` from `repos` (none of them a base repo): the whole install set.
fn our_set(repos: &[(&str, &Path)], packages: &[&str]) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let repos: Vec<(&str, String, bool)> = repos
        .iter()
        .map(|(n, p)| (*n, file_url(p), false))
        .collect();
    let p = profile(&repos, packages);
    let (entries, _) = build(&p, &tmp.path().join("rpms")).unwrap();
    // `bundle resolve` gives the same set from the metadata alone.
    let closure = rpm::resolve_closure(&p, &|_: &str| {}).unwrap();
    for c in &closure.packages {
        assert_ne!(c.why.kind, "unexplained", "{packages:?}: {c:?}");
    }
    let resolved: Vec<String> = closure.packages.into_iter().map(|c| c.nevra).collect();
    assert_eq!(
        resolved,
        nevras(&entries),
        "resolve vs build for {packages:?}"
    );
    nevras(&entries)
}

/// What `dnf --installroot` installs for `packages` from `repos` on an empty root with dnf's defaults (weak
/// dependencies too), as NEVRAs (epoch shown when not 0, as `Package::nevra` writes it).
fn dnf_set(repos: &[(&str, &Path)], packages: &[&str]) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let out = dnf_install_weak(&root, repos, packages, true);
    assert!(
        out.status.success(),
        "dnf install {packages:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args([
            "-qa",
            "--qf",
            "%{NAME}-%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\\n",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let set: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.replace("-0:", "-"))
        .collect();
    set.into_iter().collect()
}

/// What `dnf --installroot ... --assumeno install` reports it would install for `packages` from `repos`
/// (dnf's defaults, weak dependencies too), as (NEVRA, repo id) pairs read from its transaction table;
/// nothing is installed.
fn dnf_assumeno(repos: &[(&str, &Path)], packages: &[&str]) -> Vec<(String, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("dnf");
    cmd.arg("--installroot")
        .arg(tmp.path().join("root"))
        .args([
            "--releasever",
            "9",
            "--setopt=reposdir=/dev/null",
            "--disablerepo=*",
            "--nogpgcheck",
            "--assumeno",
        ])
        .arg(format!(
            "--setopt=cachedir={}",
            tmp.path().join("cache").display()
        ))
        .env("COLUMNS", "300");
    for (id, path) in repos {
        cmd.arg(format!("--repofrompath={id},{}", file_url(path)));
    }
    let out = cmd.arg("install").args(packages).output().unwrap();
    dnf_table::transaction(&out)
}

/// Trap: epochs in requirements. `khx < 1:0` is met by khx 2.10 (no epoch) and not by the newer khx 1:0.5;
/// `kh-yapi >= 2:2.74` is not met by khy-a's `kh-yapi = 3.0.0` (no epoch). Same set as dnf.
#[test]
fn trap_epoch_same_as_dnf() {
    let repo = traps().join("epoch");
    // How createrepo_c writes them: a requirement without an epoch and a package built with `Epoch: 0` both
    // say epoch="0", so "no epoch" and "epoch 0" cannot differ in matching (libsolv drops both, too).
    let primary = std::fs::read_dir(repo.join("repodata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-primary.xml.gz"))
        .unwrap();
    let data = std::fs::read(&primary).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&data[..]), &mut xml).unwrap();
    for want in [
        r#"<rpm:entry name="khw" flags="GE" epoch="0" ver="1.0"/>"#,
        r#"<rpm:entry name="khx" flags="LT" epoch="1" ver="0"/>"#,
        r#"<rpm:entry name="kh-yapi" flags="EQ" epoch="0" ver="3.0.0"/>"#,
    ] {
        assert!(xml.contains(want), "{want} not in {}", primary.display());
    }
    let pkgs = rpm::metadata::parse_primary(xml.as_bytes()).unwrap();
    let khw: Vec<_> = pkgs.iter().filter(|p| p.name == "khw").collect();
    assert_eq!(khw[0].evr.epoch, 0);

    let repos = [("epoch", repo.as_path())];
    let ours = our_set(&repos, &["khepoch-app"]);
    assert_eq!(
        ours,
        [
            "khepoch-app-1.0-1.x86_64",
            "khw-1.5-1.x86_64",
            "khx-2.10-1.x86_64",
            "khy-b-1.0-1.x86_64"
        ]
    );
    assert_eq!(ours, dnf_set(&repos, &["khepoch-app"]), "ours vs dnf");
}

/// Trap: multilib on x86_64. A 32-bit soname pulls the i686 package, and with it the x86_64 package of the
/// same name and version when there is one (libsolv's lock-step); a plain name takes the best arch, and
/// noarch only by being newer. Same sets as dnf.
#[test]
fn trap_multilib_same_as_dnf() {
    let repo = traps().join("multilib");
    let repos = [("multilib", repo.as_path())];
    let cases: &[(&str, &[&str])] = &[
        (
            "khml-app",
            &[
                "khfoo-9.0-1.i686",
                "khfoo-9.0-1.x86_64",
                "khml-app-1.0-1.x86_64",
            ],
        ),
        ("khml-old", &["khml-old-1.0-1.x86_64", "khold-1.0-1.i686"]),
        (
            "khml-both",
            &[
                "khfoo-9.0-1.i686",
                "khfoo-9.0-1.x86_64",
                "khml-both-1.0-1.x86_64",
            ],
        ),
        ("khfoo", &["khfoo-9.0-1.x86_64"]),
        ("khbar", &["khbar-2.0-1.noarch"]),
        ("khbaz", &["khbaz-1.0-1.x86_64"]),
        ("khbaz-2.0", &["khbaz-2.0-1.i686"]),
    ];
    for (request, want) in cases {
        let ours = our_set(&repos, &[request]);
        assert_eq!(ours, *want, "ours for {request}");
        assert_eq!(
            ours,
            dnf_set(&repos, &[request]),
            "ours vs dnf for {request}"
        );
    }
}

/// Trap: several providers of one requirement across two repos (AppStream-like and EPEL-like, dnf's default
/// priorities). dnf picks by libsolv's `policy_filter_unwanted`: best arch, then one per name, obsoleted
/// ones out, old versions back, a higher commonly provided version first, then the name. Same sets as dnf.
#[test]
fn trap_provider_choice_same_as_dnf() {
    let fx = traps();
    let (appstream, epel) = (fx.join("appstream"), fx.join("epel"));
    let repos = [("appstream", appstream.as_path()), ("epel", epel.as_path())];
    let cases: &[(&str, &[&str])] = &[
        (
            "khhttpd",
            &[
                "khhttpd-2.4.57-1.x86_64",
                "rocky-logos-httpd-90.15-1.noarch",
            ],
        ),
        (
            "khtheme-app",
            &["aa-theme-1.0-1.noarch", "khtheme-app-1.0-1.x86_64"],
        ),
        (
            "khold-app",
            &["khold-app-1.0-1.x86_64", "khprov-b-1.0-1.x86_64"],
        ),
        (
            "khobs-app",
            &["khobs-app-1.0-1.x86_64", "khobs-b-1.0-1.x86_64"],
        ),
        (
            "kharch-app",
            &["kharch-app-1.0-1.x86_64", "zz-lib64-1.0-1.x86_64"],
        ),
    ];
    for (request, want) in cases {
        let ours = our_set(&repos, &[request]);
        assert_eq!(ours, *want, "ours for {request}");
        assert_eq!(
            ours,
            dnf_set(&repos, &[request]),
            "ours vs dnf for {request}"
        );
    }
}

/// Trap: weak dependencies, which dnf installs by default. Recommends are installed when they can be (the
/// provider chosen as for a requirement), conflicting or unprovided ones are left out, supplementing
/// packages come along, and a recommended provider of a requirement is preferred. Same set as dnf.
#[test]
fn trap_weak_dependencies_same_as_dnf() {
    let repo = traps().join("weak");
    let repos = [("weak", repo.as_path())];
    let ours = our_set(&repos, &["khweak-app"]);
    assert_eq!(
        ours,
        [
            "aa-rec-1.0-1.noarch",
            "khrec-a-1.0-1.x86_64",
            "khrec-dep-1.0-1.x86_64",
            "khrec-if-1.0-1.noarch",
            "khsupp-1.0-1.noarch",
            "khweak-app-1.0-1.x86_64",
            "zz-pcap-1.0-1.noarch"
        ]
    );
    assert_eq!(ours, dnf_set(&repos, &["khweak-app"]), "ours vs dnf");
}

/// Trap: modularity. The default stream's packages hide the other stream's and the non-modular packages
/// named like them (or providing their names); a module without a default stream hides its own packages,
/// leaving the non-modular ones. Same sets as dnf.
#[test]
fn trap_modularity_same_as_dnf() {
    let repo = traps().join("modular");
    let repos = [("modular", repo.as_path())];
    let cases: &[(&str, &[&str])] = &[
        ("khmod-app", &["khm-1.0-1.x86_64", "khmod-app-1.0-1.x86_64"]),
        ("khm", &["khm-1.0-1.x86_64"]),
        ("khother-pkg", &["khother-pkg-0.5-1.x86_64"]),
    ];
    for (request, want) in cases {
        let ours = our_set(&repos, &[request]);
        assert_eq!(ours, *want, "ours for {request}");
        assert_eq!(
            ours,
            dnf_set(&repos, &[request]),
            "ours vs dnf for {request}"
        );
    }
}

/// `bundle resolve`'s reasons on the weak-dependency and multilib traps: a Recommends is named as such (a rich
/// one by what it asks for, not its condition), a Supplements names the package it supplements, the x86_64
/// twin of an i686 package pulled by a 32-bit soname is its lock-step partner.
#[test]
fn resolve_explains_weak_and_multilib_links() {
    let why = |repo: &str, request: &str| {
        let r = traps().join(repo);
        let p = profile(&[(repo, file_url(&r), false)], &[request]);
        rpm::resolve_closure(&p, &|_: &str| {})
            .unwrap()
            .packages
            .into_iter()
            .map(|c| {
                (
                    c.nevra,
                    (c.why.kind, c.why.by.unwrap_or_default(), c.why.dep),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let w = why("weak", "khweak-app");
    let app = "khweak-app-1.0-1.x86_64".to_string();
    assert_eq!(
        w["khrec-a-1.0-1.x86_64"],
        ("recommends", app.clone(), "khrec-a".into())
    );
    assert_eq!(
        w["khrec-if-1.0-1.noarch"],
        ("recommends", app.clone(), "(khrec-if if khrec-a)".into())
    );
    assert_eq!(
        w["khrec-dep-1.0-1.x86_64"],
        (
            "requires",
            "khrec-a-1.0-1.x86_64".into(),
            "khrec-dep".into()
        )
    );
    assert_eq!(
        w["khsupp-1.0-1.noarch"],
        ("supplements", app.clone(), "khweak-app".into())
    );
    assert_eq!(w[&app].0, "request");
    let m = why("multilib", "khml-app");
    assert_eq!(
        m["khfoo-9.0-1.i686"],
        (
            "requires",
            "khml-app-1.0-1.x86_64".into(),
            "libkhfoo.so.9".into()
        )
    );
    assert_eq!(
        m["khfoo-9.0-1.x86_64"],
        (
            "lock-step",
            "khfoo-9.0-1.i686".into(),
            "khfoo-9.0-1.i686".into()
        )
    );
}

/// The signed fixture of `tests/fixtures/rpm/signed.sh`: `DIR/signed` and the keys `DIR/RPM-GPG-KEY-{good,other}`.
fn signed() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generate("signed.sh", "rpm-signed"))
}

/// A profile taking `packages` from the signed fixture repo, with `gpgkey` when given.
fn signed_profile(gpgkey: Option<&str>, packages: &[&str]) -> Profile {
    let mut text = format!(
        "name = \"signed\"\nkubernetes-version = \"1.30.0\"\nel = 9\narch = \"x86_64\"\npackages = [{}]\n\
         [[repos]]\nname = \"signed\"\nbaseurl = \"{}\"\n",
        packages
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", "),
        file_url(&signed().join("signed"))
    );
    if let Some(k) = gpgkey {
        text.push_str(&format!("gpgkey = \"{}\"\n", file_url(&signed().join(k))));
    }
    Profile::parse(&text, "signed profile").unwrap()
}

#[test]
fn signed_repo_ships_its_key_and_dnf_checks_the_bundle_with_it() {
    use kubeha_mirror::build::{build as build_bundle, BuildOptions};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let p = signed_profile(Some("RPM-GPG-KEY-good"), &["kh-app"]);
    let opts = BuildOptions {
        images: kubeha_model::bundle::ImageSet::None,
        ..BuildOptions::default()
    };
    build_bundle(&p, &dir, &opts).unwrap();
    let m = kubeha_model::bundle::BundleManifest::load(&dir).unwrap();
    assert_eq!(m.rpm_keys, ["rpms/RPM-GPG-KEY-signed"]);
    let key = std::fs::read(dir.join("rpms/RPM-GPG-KEY-signed")).unwrap();
    assert_eq!(
        key,
        std::fs::read(signed().join("RPM-GPG-KEY-good")).unwrap()
    );
    let listed = m
        .files
        .iter()
        .find(|f| f.path == "rpms/RPM-GPG-KEY-signed")
        .expect("the key is listed in bundle.toml");
    assert_eq!(listed.sha256, hex::encode(sha2::Sha256::digest(&key)));
    kubeha_mirror::bundle::verify(&dir).unwrap();

    // The node's repo file as the agent renders it for these keys (firstboot's render::yum_repo, tested there):
    // dnf checks every package's signature against the bundle's copy of the key.
    let root = tmp.path().join("root");
    let reposdir = tmp.path().join("repos.d");
    std::fs::create_dir_all(&reposdir).unwrap();
    std::fs::write(
        reposdir.join("kubeha.repo"),
        format!(
            "[kubeha]\nname=kubeha offline bundle\nbaseurl={}\nenabled=1\ngpgcheck=1\ngpgkey={}\nrepo_gpgcheck=0\n",
            file_url(&dir.join("rpms")),
            file_url(&dir.join(&m.rpm_keys[0]))
        ),
    )
    .unwrap();
    // A fresh metadata cache per call: the repo is rewritten within the same second below.
    let dnf = |pkgs: &[&str]| {
        Command::new("dnf")
            .arg("--installroot")
            .arg(&root)
            .args(["--releasever", "9", "-y"])
            .arg(format!("--setopt=reposdir={}", reposdir.display()))
            .arg(format!(
                "--setopt=cachedir={}",
                root.join(format!("cache-{}", pkgs[0])).display()
            ))
            .arg("install")
            .args(pkgs)
            .output()
            .expect("running dnf")
    };
    let out = dnf(&["kh-app"]);
    assert!(
        out.status.success(),
        "dnf with gpgcheck=1: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        installed(&root)
            .into_iter()
            .filter(|n| !n.starts_with("gpg-pubkey"))
            .collect::<Vec<_>>(),
        ["kh-app-1.0-1.noarch", "kh-lib-1.0-1.noarch"]
    );

    // The same dnf refuses a package the key did not sign: the check on the node is real.
    std::fs::copy(
        signed().join("signed/kh-foreign-1.0-1.noarch.rpm"),
        dir.join("rpms/kh-foreign-1.0-1.noarch.rpm"),
    )
    .unwrap();
    let cr = Command::new("createrepo_c")
        .args(["--quiet", "--no-database"])
        .arg(dir.join("rpms"))
        .status()
        .unwrap();
    assert!(cr.success());
    let out = dnf(&["kh-foreign"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && text.contains("GPG check FAILED"),
        "{text}"
    );
}

#[test]
fn unsigned_or_foreign_packages_are_refused_naming_package_and_repo() {
    for (pkg, nevra) in [
        ("kh-unsigned", "kh-unsigned-1.0-1.noarch"),
        ("kh-foreign", "kh-foreign-1.0-1.noarch"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let rpms = tmp.path().join("rpms");
        let p = signed_profile(Some("RPM-GPG-KEY-good"), &["kh-app", pkg]);
        let e = format!("{:#}", build(&p, &rpms).unwrap_err());
        assert!(
            e.contains(&format!("{nevra} from repo signed"))
                && e.contains("SIGNATURES NOT OK")
                && e.contains("1 package(s) failed the signature check"),
            "{pkg}: {e}"
        );
        assert!(
            !rpms.join(format!("{nevra}.rpm")).exists(),
            "{pkg}: the refused package was left in rpms/"
        );
        assert!(rpms.join("kh-app-1.0-1.noarch.rpm").exists(), "{pkg}");
    }

    // Through `bundle build`: no bundle.toml is written.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let opts = kubeha_mirror::build::BuildOptions {
        images: kubeha_model::bundle::ImageSet::None,
        ..Default::default()
    };
    let p = signed_profile(Some("RPM-GPG-KEY-other"), &["kh-app"]);
    let e = format!(
        "{:#}",
        kubeha_mirror::build::build(&p, &dir, &opts).unwrap_err()
    );
    assert!(
        e.contains("kh-app-1.0-1.noarch from repo signed")
            && e.contains("kh-lib-1.0-1.noarch from repo signed"),
        "{e}"
    );
    assert!(!dir.join("bundle.toml").exists());
}

#[test]
fn repo_without_gpgkey_warns_and_ships_no_key() {
    let tmp = tempfile::tempdir().unwrap();
    let rpms = tmp.path().join("rpms");
    // Unsigned packages are bundled from a repo without a key: nothing to check them against.
    let p = signed_profile(None, &["kh-app", "kh-unsigned"]);
    let log = Mutex::new(Vec::new());
    let (entries, _, keys) =
        rpm::build_repo_checked(&p, &rpms, &std::collections::HashMap::new(), &|l: &str| {
            log.lock().unwrap().push(l.to_string())
        })
        .unwrap();
    assert_eq!(entries.len(), 3);
    assert!(keys.is_empty(), "{keys:?}");
    let log = log.into_inner().unwrap();
    assert!(
        log.iter().any(
            |l| l.starts_with("WARNING: repo signed has no gpgkey") && l.contains("gpgcheck=0")
        ),
        "{log:#?}"
    );
    assert!(!std::fs::read_dir(&rpms).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("RPM-GPG-KEY")));

    // Adding the key to a repo whose packages are all signed turns the check on; a stale key goes away
    // when the repo loses it again.
    let p = signed_profile(Some("RPM-GPG-KEY-good"), &["kh-app"]);
    let (_, _, keys) =
        rpm::build_repo_checked(&p, &rpms, &std::collections::HashMap::new(), &|_| {}).unwrap();
    assert_eq!(keys, ["rpms/RPM-GPG-KEY-signed"]);
    let p = signed_profile(None, &["kh-app"]);
    rpm::build_repo_checked(&p, &rpms, &std::collections::HashMap::new(), &|_| {}).unwrap();
    assert!(!rpms.join("RPM-GPG-KEY-signed").exists());
}

#[test]
fn a_gpgkey_with_several_urls_ships_each_key() {
    let tmp = tempfile::tempdir().unwrap();
    let rpms = tmp.path().join("rpms");
    let urls = format!(
        "{} {}",
        file_url(&signed().join("RPM-GPG-KEY-good")),
        file_url(&signed().join("RPM-GPG-KEY-other"))
    );
    let text = format!(
        "name = \"signed\"\nkubernetes-version = \"1.30.0\"\npackages = [\"kh-app\", \"kh-foreign\"]\n\
         [[repos]]\nname = \"signed\"\nbaseurl = \"{}\"\ngpgkey = \"{urls}\"\n",
        file_url(&signed().join("signed"))
    );
    let p = Profile::parse(&text, "two keys").unwrap();
    let (entries, _, keys) =
        rpm::build_repo_checked(&p, &rpms, &std::collections::HashMap::new(), &|_| {}).unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        keys,
        ["rpms/RPM-GPG-KEY-signed", "rpms/RPM-GPG-KEY-signed-2"]
    );
    assert_eq!(
        std::fs::read(rpms.join("RPM-GPG-KEY-signed-2")).unwrap(),
        std::fs::read(signed().join("RPM-GPG-KEY-other")).unwrap()
    );
}
