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
