//! CLI contract tests for `kubeha config`, `kubeha secrets` and `kubeha node-config`, with openssl cross-checks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kubeha(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubeha"))
        .args(args)
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

fn sh(script: &str) -> String {
    let o = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn write_default(dir: &Path) -> PathBuf {
    let p = dir.join("cluster.toml");
    let o = kubeha(&["config", "init"]);
    assert!(o.status.success());
    std::fs::write(&p, &o.stdout).unwrap();
    p
}

#[test]
fn config_init_is_the_guide_topology_and_checks_clean() {
    let d = tempfile::tempdir().unwrap();
    let p = write_default(d.path());
    let t = std::fs::read_to_string(&p).unwrap();
    for want in [
        "k8s-master01",
        "192.168.20.22",
        "k8s-master-lb",
        "192.168.20.10",
        "16443",
        "k8s-node08",
        "192.168.20.37",
        "calico",
    ] {
        assert!(t.contains(want), "default lacks {want}");
    }
    let o = kubeha(&["config", "check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // No gateway in the default: a warning (not an error) naming why it matters.
    let out = text(&o);
    assert!(
        out.contains("warning: networking.gateway (line ")
            && out.contains("pick the node IP from the default route"),
        "{out}"
    );
    assert!(t.contains("# gateway = "), "a commented example");
}

#[test]
fn config_check_reports_every_error_with_path_and_line() {
    let d = tempfile::tempdir().unwrap();
    let p = write_default(d.path());
    let t = std::fs::read_to_string(&p)
        .unwrap()
        .replacen("ip = \"192.168.20.21\"", "ip = \"192.168.20.20\"", 1)
        .replacen("vip = \"192.168.20.10\"", "vip = \"10.0.0.10\"", 1);
    std::fs::write(&p, t).unwrap();
    let o = kubeha(&["config", "check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("masters[1].ip (line "), "{out}");
    assert!(out.contains("endpoint.vip (line "), "{out}");
    assert!(out.contains("2 error(s)"), "{out}");
}

#[test]
fn config_check_el8_with_kubernetes_1_36_needs_a_cgroup_choice() {
    let d = tempfile::tempdir().unwrap();
    let p = write_default(d.path());
    let t = std::fs::read_to_string(&p).unwrap();
    assert!(
        t.contains("kubernetes-version = \"1.36."),
        "the default is 1.36"
    );
    std::fs::write(&p, t.replacen("el = 9", "el = 8", 1)).unwrap();
    let o = kubeha(&["config", "check", p.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("error: install.cgroup (line "), "{out}");
    assert!(out.contains("`[install] cgroup = \"v2\"`"), "{out}");
    assert!(out.contains("`cgroup = \"v1\"`"), "{out}");
    assert!(out.contains("1 error(s)"), "{out}");
    // Either choice checks clean.
    for choice in ["v2", "v1"] {
        std::fs::write(
            &p,
            t.replacen("el = 9", &format!("el = 8\ncgroup = \"{choice}\""), 1),
        )
        .unwrap();
        let o = kubeha(&["config", "check", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{choice}: {}", text(&o));
    }
}

#[test]
fn config_check_parse_errors_and_missing_files_exit_1() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.toml");
    std::fs::write(
        &p,
        "[cluster]\nname = \"x\"\nkubernetes-version = \"1.30.2\"\nbogus = 1\n",
    )
    .unwrap();
    let o = kubeha(&["config", "check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("bogus"), "{}", text(&o));
    let o = kubeha(&["config", "check", "/nonexistent/cluster.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("/nonexistent/cluster.toml"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["config"][..],
        &["config", "check"],
        &["secrets"],
        &["nope"],
        &["node-config", "--role", "boss"],
    ] {
        let o = kubeha(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        &["config", "init"][..],
        &["config", "check"],
        &["secrets"],
        &["node-config"],
        &["bundle", "resolve"],
        &["bundle", "build"],
        &["serve"],
        &["serve", "reimage"],
        &["status"],
    ] {
        let mut a = args.to_vec();
        a.push("--help");
        let o = kubeha(&a);
        assert_eq!(o.status.code(), Some(0));
        assert!(
            text(&o).contains("Example: kubeha"),
            "{args:?} help lacks an example"
        );
    }
    let o = kubeha(&["--help"]);
    for cmd in [
        "config",
        "secrets",
        "node-config",
        "bundle",
        "kickstart",
        "iso",
        "pxe",
        "serve",
        "status",
    ] {
        assert!(text(&o).contains(cmd), "top help lacks {cmd}");
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Pem {
    cert: String,
    key: String,
}

#[test]
fn secrets_are_0600_noclobber_and_pass_openssl() {
    let d = tempfile::tempdir().unwrap();
    let s = d.path().join("secrets.toml");
    let o = kubeha(&["secrets", "-o", s.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::metadata(&s).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&s).unwrap();
    let o = kubeha(&["secrets", "-o", s.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--force"));
    assert_eq!(
        std::fs::read(&s).unwrap(),
        before,
        "refused run changed the file"
    );
    let o = kubeha(&["secrets", "-o", s.to_str().unwrap(), "--force"]);
    assert_eq!(o.status.code(), Some(0));
    assert_ne!(std::fs::read(&s).unwrap(), before);

    let v: toml::Table = toml::from_str(&std::fs::read_to_string(&s).unwrap()).unwrap();
    let token = v["bootstrap-token"].as_str().unwrap();
    let re_ok = token.len() == 23
        && token.split_once('.').is_some_and(|(a, b)| {
            a.len() == 6
                && b.len() == 16
                && (a.to_string() + b)
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    assert!(re_ok, "token {token}");
    let ck = v["certificate-key"].as_str().unwrap();
    assert!(
        ck.len() == 64
            && ck
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    for (name, cn) in [
        ("ca", "kubernetes"),
        ("front-proxy-ca", "front-proxy-ca"),
        ("etcd-ca", "etcd-ca"),
    ] {
        let pem: Pem = v[name].clone().try_into().unwrap();
        let crt = d.path().join(format!("{name}.crt"));
        let key = d.path().join(format!("{name}.key"));
        std::fs::write(&crt, &pem.cert).unwrap();
        std::fs::write(&key, &pem.key).unwrap();
        let c = crt.display();
        let k = key.display();
        assert!(
            sh(&format!("openssl verify -CAfile {c} {c}")).contains("OK"),
            "{name} verify"
        );
        let cert_pub = sh(&format!("openssl x509 -pubkey -noout -in {c}"));
        let key_pub = sh(&format!("openssl pkey -in {k} -pubout"));
        assert_eq!(cert_pub, key_pub, "{name}: key does not match cert");
        let info = sh(&format!("openssl x509 -noout -text -in {c}"));
        assert!(info.contains("CA:TRUE"), "{name}: not a CA\n{info}");
        assert!(info.contains("Certificate Sign"), "{name}: no keyCertSign");
        assert!(
            info.contains(&format!("CN = {cn}")) || info.contains(&format!("CN={cn}")),
            "{name}: CN"
        );
        assert!(
            pem.key.contains("BEGIN RSA PRIVATE KEY"),
            "{name}: PKCS#1 key"
        );
        // 10 years, like kubeadm: valid 9 years from now, not 11.
        sh(&format!(
            "openssl x509 -checkend {} -noout -in {c}",
            9 * 365 * 86400
        ));
        assert!(
            Command::new("openssl")
                .args([
                    "x509",
                    "-checkend",
                    &(11 * 365 * 86400).to_string(),
                    "-noout",
                    "-in"
                ])
                .arg(&crt)
                .status()
                .unwrap()
                .code()
                == Some(1)
        );
        if name == "ca" {
            let hash = sh(&format!("openssl x509 -pubkey -noout -in {c} | openssl pkey -pubin -outform der | sha256sum"));
            let want = format!("sha256:{}", hash.split_whitespace().next().unwrap());
            assert_eq!(v["ca-cert-hash"].as_str().unwrap(), want);
        }
    }
    let sa = v["service-account"].as_table().unwrap();
    let sk = d.path().join("sa.key");
    std::fs::write(&sk, sa["key"].as_str().unwrap()).unwrap();
    assert_eq!(
        sh(&format!("openssl pkey -in {} -pubout", sk.display())),
        sa["pub"].as_str().unwrap()
    );
}

#[test]
fn node_configs_carry_keys_only_for_masters() {
    let d = tempfile::tempdir().unwrap();
    let c = write_default(d.path());
    let s = d.path().join("secrets.toml");
    assert!(kubeha(&["secrets", "-o", s.to_str().unwrap()])
        .status
        .success());
    let (c, s) = (c.to_str().unwrap(), s.to_str().unwrap());
    let w = d.path().join("w.toml");
    let o = kubeha(&[
        "node-config",
        "--cluster",
        c,
        "--secrets",
        s,
        "--role",
        "worker",
        "--name",
        "k8s-node03",
        "-o",
        w.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let wt = std::fs::read_to_string(&w).unwrap();
    assert!(
        !wt.contains("PRIVATE KEY"),
        "worker node config contains a private key"
    );
    assert!(wt.contains("BEGIN CERTIFICATE") && wt.contains("ca-cert-hash = \"sha256:"));
    assert_eq!(
        std::fs::metadata(&w).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let m = d.path().join("m.toml");
    let o = kubeha(&[
        "node-config",
        "--cluster",
        c,
        "--secrets",
        s,
        "--role",
        "master",
        "--name",
        "k8s-master02",
        "-o",
        m.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mt = std::fs::read_to_string(&m).unwrap();
    assert!(mt.contains("BEGIN RSA PRIVATE KEY") && mt.contains("certificate-key"));

    let x = d.path().join("x.toml");
    let o = kubeha(&[
        "node-config",
        "--cluster",
        c,
        "--secrets",
        s,
        "--role",
        "worker",
        "--name",
        "k8s-master01",
        "-o",
        x.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--role") && !x.exists(), "{}", text(&o));
    let o = kubeha(&[
        "node-config",
        "--cluster",
        c,
        "--secrets",
        "/nonexistent",
        "--role",
        "worker",
        "-o",
        x.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!x.exists());
}

#[test]
fn node_config_carries_the_bundle_public_key() {
    let d = tempfile::tempdir().unwrap();
    let c = write_default(d.path());
    let s = d.path().join("secrets.toml");
    assert!(kubeha(&["secrets", "-o", s.to_str().unwrap()])
        .status
        .success());
    let (sec, public) = (d.path().join("b.key"), d.path().join("b.pub"));
    let o = kubeha(&[
        "bundle",
        "keygen",
        "--secret-key",
        sec.to_str().unwrap(),
        "--public-key",
        public.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let key_line = std::fs::read_to_string(&public)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let w = d.path().join("w.toml");
    let node_config = |pubkey: &Path| {
        kubeha(&[
            "node-config",
            "--cluster",
            c.to_str().unwrap(),
            "--secrets",
            s.to_str().unwrap(),
            "--role",
            "worker",
            "--name",
            "k8s-node03",
            "--force",
            "--bundle-pubkey",
            pubkey.to_str().unwrap(),
            "-o",
            w.to_str().unwrap(),
        ])
    };
    let o = node_config(&public);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let nc = kubeha_model::NodeConfig::load(&w).unwrap();
    assert_eq!(nc.bundle.public_key.as_deref(), Some(key_line.as_str()));
    // The secret key is not a public key.
    let o = node_config(&sec);
    assert!(
        !o.status.success() && text(&o).contains("not a minisign public key file"),
        "{}",
        text(&o)
    );
}
