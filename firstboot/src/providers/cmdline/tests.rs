use super::*;

#[test]
fn split_cases() {
    for (input, want) in [
        ("", vec![]),
        ("a", vec![("a", None)]),
        ("  a=1   b  ", vec![("a", Some("1")), ("b", None)]),
        ("x=\"a b\" y=2", vec![("x", Some("a b")), ("y", Some("2"))]),
        ("k=a=b", vec![("k", Some("a=b"))]),
        ("k=", vec![("k", Some(""))]),
        ("\tk=v\n", vec![("k", Some("v"))]),
    ] {
        let got = split(input);
        let want: Vec<(String, Option<String>)> = want
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        assert_eq!(got, want, "input {input:?}");
    }
}

#[test]
fn parse_cases() {
    let ok = |s: &str| parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    assert_eq!(ok("ro quiet root=/dev/sda1"), KernelArgs::default());
    let a = ok(
        "BOOT_IMAGE=/vmlinuz kubeha.role=master kubeha.name=k8s-master01 \
                kubeha.config=http://10.0.0.1/n/${mac}.toml kubeha.config.sha256=AB"
            .to_string()
            .replace("AB", &"Ab".repeat(32))
            .as_str(),
    );
    assert_eq!(a.role, Some(Role::Master));
    assert_eq!(a.name.as_deref(), Some("k8s-master01"));
    assert_eq!(
        a.config,
        Some(ConfigLocation::Http("http://10.0.0.1/n/${mac}.toml".into()))
    );
    assert_eq!(a.config_sha256, Some("ab".repeat(32)));
    assert_eq!(
        ok("kubeha.role=worker kubeha.role=master").role,
        Some(Role::Master),
        "last wins"
    );
    assert_eq!(ok("kubeha.role=node").role, Some(Role::Worker));
    assert_eq!(
        ok("kubeha.config=file:/etc/x.toml").config,
        Some(ConfigLocation::File("/etc/x.toml".into()))
    );
    assert_eq!(
        ok("kubeha.config=label:KUBEHA").config,
        Some(ConfigLocation::Label("KUBEHA".into()))
    );
    assert_eq!(
        ok("kubeha.report=https://r.example/x").report.as_deref(),
        Some("https://r.example/x")
    );
    assert_eq!(
        ok("kubeha.bootstrap=k8s-master02").bootstrap.as_deref(),
        Some("k8s-master02")
    );
    assert_eq!(
        ok("BOOTIF=01-52-54-00-AB-CD-EF").bootif.as_deref(),
        Some("52:54:00:ab:cd:ef")
    );
    assert_eq!(ok("BOOTIF=garbage").bootif, None);
    // A fully qualified node name, which `config check` accepts too (Kubernetes Node names are DNS subdomains).
    assert_eq!(
        ok("kubeha.name=k8s-master01.dc1.example").name.as_deref(),
        Some("k8s-master01.dc1.example")
    );
    // The installer's keys are known and change nothing for the agent.
    assert_eq!(
        ok("kubeha.reinstall=1 kubeha.disk=/dev/vdb kubeha.role=worker"),
        ok("kubeha.role=worker")
    );
    assert_eq!(ok("kubeha.reinstall=0"), KernelArgs::default());
    assert_eq!(
        ok("kubehax.role=foo notkubeha.name=X").role,
        None,
        "other prefixes are not ours"
    );

    for (bad, field) in [
        ("kubeha.role=boss", "kubeha.role"),
        ("kubeha.role", "kubeha.role"),
        ("kubeha.role=", "kubeha.role"),
        ("kubeha.name=Bad_Name", "kubeha.name"),
        ("kubeha.name=-x", "kubeha.name"),
        ("kubeha.config=ftp://x", "kubeha.config"),
        ("kubeha.config=http://", "kubeha.config"),
        ("kubeha.config=file:relative", "kubeha.config"),
        ("kubeha.config=label:", "kubeha.config"),
        (
            "kubeha.config=http://x kubeha.config.sha256=abc",
            "kubeha.config.sha256",
        ),
        (
            "kubeha.config.sha256=".to_string().as_str(),
            "kubeha.config.sha256",
        ),
        ("kubeha.report=file:/x", "kubeha.report"),
        ("kubeha.rol=master", "kubeha.rol"),
        ("kubeha.bootstrap=A", "kubeha.bootstrap"),
        ("kubeha.reinstall=yes", "kubeha.reinstall"),
        ("kubeha.reinstall", "kubeha.reinstall"),
    ] {
        let e = parse(bad).expect_err(bad).to_string();
        assert!(
            e.contains(field),
            "{bad:?}: error {e:?} does not name {field}"
        );
    }
    let pin_alone = format!("kubeha.config.sha256={}", "a".repeat(64));
    assert!(parse(&pin_alone)
        .unwrap_err()
        .to_string()
        .contains("kubeha.config is not"));
}

#[test]
fn hostile_values_are_refused_and_never_echoed_whole() {
    let big = "a".repeat(1 << 20);
    for (cmdline, want) in [
        (
            "kubeha.config=file:/../../etc/passwd".to_string(),
            "without . or .. components",
        ),
        (
            "kubeha.config=file:/etc/kubeha/./node.toml".to_string(),
            "without . or .. components",
        ),
        (format!("kubeha.name={big}"), "longer than 4096"),
        (
            format!("kubeha.name=A{}", "b".repeat(200)),
            "is not a node name",
        ),
        (format!("kubeha.role={}", "x".repeat(500)), "is not a role"),
        (format!("kubeha.{big}=1"), "unknown key"),
        (format!("kubeha.{}=1", "k".repeat(300)), "unknown key"),
    ] {
        let e = format!("{:#}", parse(&cmdline).unwrap_err());
        assert!(e.contains(want), "{e}");
        assert!(
            e.len() < 400,
            "the error echoes the value ({} bytes): {}",
            e.len(),
            &e[..200]
        );
    }
}
