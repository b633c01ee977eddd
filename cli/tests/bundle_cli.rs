//! CLI contract tests for `kubeha bundle build`'s source overrides: unknown ids are usage errors (exit 2) naming the
//! flag and value before anything is fetched or written, and no flag takes a secret.

use std::process::{Command, Output};

fn kubeha(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubeha"))
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .expect("running kubeha")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn unknown_override_ids_are_usage_errors_naming_flag_and_value() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("bundle");
    let site = d.path().join("site.toml");
    std::fs::write(
        &site,
        "repo = [\"kubernetes=https://repo.example/el7/\", \"kube=https://r/\"]\n",
    )
    .unwrap();
    let o = out.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--mirror", "k8s.gcr.io.example=https://mirror.example/k8s"],
            "Error: --mirror k8s.gcr.io.example=https://mirror.example/k8s: profile seed-v1.11.1 pulls no image \
             from k8s.gcr.io.example; its registries: docker.io, gcr.io, k8s.gcr.io, quay.io"
                .to_string(),
        ),
        (
            vec!["--repo", "kubernetes=https://repo.example/el7/", "--repo", "k8s=https://repo.example/el7/"],
            "Error: --repo k8s=https://repo.example/el7/: profile seed-v1.11.1 has no repo k8s; its repos: \
             centos7-base, centos7-updates, centos7-extras, epel7, docker-ce-test, kubernetes"
                .to_string(),
        ),
        (
            vec!["--overrides", site.to_str().unwrap()],
            format!("Error: {}: repo[1] kube=https://r/: profile seed-v1.11.1 has no repo kube", site.display()),
        ),
        (
            vec!["--file", "calico.yaml=https://files.example/calico.yaml"],
            "Error: --file calico.yaml=https://files.example/calico.yaml: profile seed-v1.11.1 has no file \
             calico.yaml; its files: none"
                .to_string(),
        ),
    ] {
        let mut a = vec!["bundle", "build", "--profile", "seed-v1.11.1", "-o", o];
        a.extend(&args);
        let r = kubeha(&a);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", text(&r));
        assert!(text(&r).contains(&want), "{args:?}:\n{}\nwants: {want}", text(&r));
        assert!(!out.exists(), "{args:?}: nothing is written");
    }
}

#[test]
fn a_password_is_never_taken_nor_echoed() {
    let d = tempfile::tempdir().unwrap();
    let o = d.path().join("bundle");
    for v in [
        "kubernetes=ci:hunter2",
        "kubernetes=ci:/nonexistent/hunter2",
    ] {
        let r = kubeha(&[
            "bundle",
            "build",
            "--profile",
            "seed-v1.11.1",
            "-o",
            o.to_str().unwrap(),
            "--repo-credentials",
            v,
        ]);
        assert_eq!(r.status.code(), Some(2), "{}", text(&r));
        assert!(
            text(&r).contains("--repo-credentials kubernetes=ci:…"),
            "{}",
            text(&r)
        );
        assert!(!text(&r).contains("hunter2"), "{}", text(&r));
    }
    let help = text(&kubeha(&["bundle", "build", "--help"]));
    for flag in [
        "--mirror",
        "--repo",
        "--file",
        "--registry-credentials",
        "--repo-credentials",
        "--overrides",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
    assert!(
        !help.contains("--password") && !help.contains("--token"),
        "{help}"
    );
}

#[test]
fn default_profile_prints_its_pinned_cni_manifest() {
    let r = kubeha(&["bundle", "profile"]);
    assert_eq!(r.status.code(), Some(0));
    let t = String::from_utf8(r.stdout).unwrap();
    assert!(t.contains("url = \"https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/calico.yaml\""));
    assert!(
        t.contains("sha256 = \"a1df919d9721cf667accdc3e72848911b0cb25cfab7d2478ad0c996302c95744\"")
    );
}

/// A small bundle built offline: no image, no package, one pinned `file://` file.
fn small_bundle(d: &std::path::Path) -> std::path::PathBuf {
    let src = d.join("hello.txt");
    std::fs::write(&src, "hello\n").unwrap();
    let profile = d.join("p.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"signed\"\nkubernetes-version = \"1.30.0\"\n[[files]]\nname = \"hello.txt\"\nurl = \"file://{}\"\n\
             sha256 = \"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\"\n",
            src.display()
        ),
    )
    .unwrap();
    let out = d.join("bundle");
    let r = kubeha(&[
        "bundle",
        "build",
        "--profile",
        profile.to_str().unwrap(),
        "--images",
        "none",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    out
}

/// `minisign -V` (Debian's minisign) on the bundle's manifest and its default signature file.
fn stock_minisign_verify(public: &std::path::Path, bundle: &std::path::Path) -> Output {
    Command::new("minisign")
        .arg("-V")
        .arg("-p")
        .arg(public)
        .arg("-m")
        .arg(bundle.join("bundle.toml"))
        .output()
        .expect("running minisign (Debian package minisign)")
}

#[test]
fn bundle_signature_verifies_with_kubeha_and_stock_minisign() {
    let d = tempfile::tempdir().unwrap();
    let b = small_bundle(d.path());
    let (sec, public) = (d.path().join("k.key"), d.path().join("k.pub"));
    let p = |x: &std::path::Path| x.to_str().unwrap().to_string();
    let bs = p(&b);
    let r = kubeha(&[
        "bundle",
        "keygen",
        "--secret-key",
        &p(&sec),
        "--public-key",
        &p(&public),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // keygen never overwrites a key.
    let r = kubeha(&[
        "bundle",
        "keygen",
        "--secret-key",
        &p(&sec),
        "--public-key",
        &p(&public),
    ]);
    assert!(!r.status.success(), "{}", text(&r));

    // Unsigned: refused when a key is given.
    let r = kubeha(&["bundle", "verify", &bs, "--key", &p(&public)]);
    assert!(
        !r.status.success() && text(&r).contains("the bundle is not signed"),
        "{}",
        text(&r)
    );
    let r = kubeha(&["bundle", "sign", &bs, "--key", &p(&sec)]);
    assert!(r.status.success(), "{}", text(&r));
    let secret = std::fs::read_to_string(&sec).unwrap();
    let secret_b64 = secret.lines().nth(1).unwrap();
    assert!(!text(&r).contains(secret_b64), "the secret key was printed");
    let r = kubeha(&["bundle", "verify", &bs, "--key", &p(&public)]);
    assert!(
        r.status.success() && text(&r).contains("Signature of"),
        "{}",
        text(&r)
    );
    let r = stock_minisign_verify(&public, &b);
    assert!(r.status.success(), "minisign -V: {}", text(&r));

    // Another key: refused by both.
    let (sec2, pub2) = (d.path().join("o.key"), d.path().join("o.pub"));
    let r = kubeha(&[
        "bundle",
        "keygen",
        "--secret-key",
        &p(&sec2),
        "--public-key",
        &p(&pub2),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    let r = kubeha(&["bundle", "verify", &bs, "--key", &p(&pub2)]);
    assert!(
        !r.status.success() && text(&r).contains("another key"),
        "{}",
        text(&r)
    );
    assert!(!stock_minisign_verify(&pub2, &b).status.success());

    // One flipped byte in bundle.toml: refused by both.
    let m = b.join("bundle.toml");
    let mut bytes = std::fs::read(&m).unwrap();
    let i = bytes.iter().position(|&c| c == b'=').unwrap();
    bytes[i + 2] ^= 0x01;
    std::fs::write(&m, &bytes).unwrap();
    let r = kubeha(&["bundle", "verify", &bs, "--key", &p(&public), "--json"]);
    assert!(
        !r.status.success() && text(&r).contains("changed after signing"),
        "{}",
        text(&r)
    );
    let r = stock_minisign_verify(&public, &b);
    assert!(
        !r.status.success(),
        "minisign -V accepted a changed file: {}",
        text(&r)
    );
}

#[test]
fn stock_minisign_keys_sign_bundles_and_a_password_comes_from_env_or_file() {
    let d = tempfile::tempdir().unwrap();
    let b = small_bundle(d.path());
    let p = |x: &std::path::Path| x.to_str().unwrap().to_string();
    let bs = p(&b);
    // A password-less key made by minisign itself.
    let (sec, public) = (d.path().join("m.key"), d.path().join("m.pub"));
    let r = Command::new("minisign")
        .args(["-G", "-W", "-p", &p(&public), "-s", &p(&sec)])
        .output()
        .unwrap();
    assert!(r.status.success(), "minisign -G: {}", text(&r));
    let r = kubeha(&["bundle", "sign", &bs, "--key", &p(&sec)]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(stock_minisign_verify(&public, &b).status.success());
    let r = kubeha(&["bundle", "verify", &bs, "--key", &p(&public)]);
    assert!(r.status.success(), "{}", text(&r));

    // An encrypted key of ours: no password is an error naming where to give it; the environment and a file work.
    let (sec, public) = (d.path().join("e.key"), d.path().join("e.pub"));
    let pw = d.path().join("pw");
    std::fs::write(&pw, "pa55-word-xyz\n").unwrap();
    let r = kubeha(&[
        "bundle",
        "keygen",
        "--secret-key",
        &p(&sec),
        "--public-key",
        &p(&public),
        "--password-file",
        &p(&pw),
    ]);
    assert!(
        r.status.success() && text(&r).contains("(encrypted)"),
        "{}",
        text(&r)
    );
    let r = kubeha(&["bundle", "sign", &bs, "--key", &p(&sec)]);
    assert!(
        !r.status.success() && text(&r).contains("KUBEHA_BUNDLE_KEY_PASSWORD"),
        "{}",
        text(&r)
    );
    let r = Command::new(env!("CARGO_BIN_EXE_kubeha"))
        .args(["bundle", "sign", &bs, "--key", &p(&sec)])
        .env("KUBEHA_BUNDLE_KEY_PASSWORD", "pa55-word-xyz")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    assert!(!text(&r).contains("pa55-word-xyz"));
    let r = kubeha(&[
        "bundle",
        "sign",
        &bs,
        "--key",
        &p(&sec),
        "--password-file",
        &p(&pw),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(stock_minisign_verify(&public, &b).status.success());

    // A rebuild removes the signature, which no longer matches.
    let r = kubeha(&[
        "bundle",
        "build",
        "--profile",
        &p(&d.path().join("p.toml")),
        "--images",
        "none",
        "-o",
        &bs,
    ]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(!b.join("bundle.toml.minisig").exists());
}
