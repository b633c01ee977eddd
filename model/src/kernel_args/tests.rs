use super::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[test]
fn split_keeps_quotes_and_unquoted_takes_them_away() {
    let raw = |s: &str| split(s).iter().map(Arg::to_string).collect::<Vec<_>>();
    assert_eq!(raw(""), Vec::<String>::new());
    assert_eq!(raw("  a=1 \t b\n"), ["a=1", "b"]);
    assert_eq!(raw("x=\"a b\" y=2"), ["x=\"a b\"", "y=2"]);
    assert_eq!(raw("x=\"a\" \"\" y"), ["x=\"a\"", "\"\"", "y"]);
    // Only ASCII whitespace separates (the kernel's rule, and the node agent's).
    assert_eq!(raw("a\u{a0}b c"), ["a\u{a0}b", "c"]);
    assert_eq!(
        split("k=a=b")[0],
        Arg {
            key: "k".into(),
            value: Some("a=b".into())
        }
    );
    assert_eq!(
        split_unquoted("\"\" x=\"a b\" \"k=v\" f"),
        [
            ("x".to_string(), Some("a b".to_string())),
            ("k".to_string(), Some("v".to_string())),
            ("f".to_string(), None)
        ]
    );
    assert_eq!(
        split_unquoted("\"=\""),
        [(String::new(), Some(String::new()))]
    );
}

#[test]
fn parse_reads_every_key() {
    let a = KernelArgs::parse(
        "BOOT_IMAGE=/vmlinuz ro kubeha.role=master kubeha.name=k8s-master01 kubeha.config=label:KUBEHA \
         kubeha.config.sha256=ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB \
         kubeha.report=http://10.0.0.9/r kubeha.bootstrap=k8s-master02 kubeha.reinstall=1 \
         kubeha.disk=disk/by-id/virtio-x inst.ks=http://x/ks.cfg",
    )
    .unwrap();
    assert_eq!(
        a,
        KernelArgs {
            role: Some(Role::Master),
            name: Some("k8s-master01".into()),
            config: Some(ConfigLocation::Label("KUBEHA".into())),
            config_sha256: Some("ab".repeat(32)),
            report: Some("http://10.0.0.9/r".into()),
            bootstrap: Some("k8s-master02".into()),
            reinstall: true,
            disk: Some("disk/by-id/virtio-x".into()),
        }
    );
    assert_eq!(
        a.to_args(),
        [
            "kubeha.role=master",
            "kubeha.name=k8s-master01",
            "kubeha.config=label:KUBEHA",
            &format!("kubeha.config.sha256={}", "ab".repeat(32)),
            "kubeha.report=http://10.0.0.9/r",
            "kubeha.bootstrap=k8s-master02",
            "kubeha.reinstall=1",
            "kubeha.disk=disk/by-id/virtio-x",
        ]
    );
    assert!(
        !KernelArgs::parse("kubeha.reinstall=1 kubeha.reinstall=0")
            .unwrap()
            .reinstall
    );
    assert_eq!(
        KernelArgs::parse("kubeha.disk=\"/dev/disk/by-label/a b\"")
            .unwrap()
            .to_args(),
        ["kubeha.disk=\"/dev/disk/by-label/a b\""]
    );
    assert_eq!(KernelArgs::default().to_args(), Vec::<String>::new());
}

#[test]
fn errors_name_the_key() {
    for (bad, key) in [
        ("kubeha.disk", "kubeha.disk"),
        ("kubeha.disk=", "kubeha.disk"),
        ("kubeha.disk=\"\"", "kubeha.disk"),
        ("kubeha.reinstall=2", "kubeha.reinstall"),
        ("kubeha.role=boss", "kubeha.role"),
        ("kubeha.config=ftp://x", "kubeha.config"),
        ("kubeha.report=file:/x", "kubeha.report"),
        ("kubeha.bootstrap=A", "kubeha.bootstrap"),
        ("kubeha.rol=master", "kubeha.rol"),
        (
            "kubeha.config.sha256=0000000000000000000000000000000000000000000000000000000000000000",
            "kubeha.config.sha256",
        ),
    ] {
        let e = KernelArgs::parse(bad).expect_err(bad);
        assert_eq!(e.key(), key, "{bad}");
        assert!(e.to_string().contains(key), "{bad}: {e}");
    }
    let e = KernelArgs::parse("kubeha.nope=1").unwrap_err().to_string();
    assert!(
        e.ends_with(
            "(known: kubeha.role, kubeha.name, kubeha.config, kubeha.config.sha256, kubeha.report, \
             kubeha.bootstrap, and the installer's kubeha.reinstall, kubeha.disk)"
        ),
        "{e}"
    );
    // Bounded: a huge key or value is shown by its first 64 characters.
    let big = "x".repeat(100_000);
    for cmdline in [
        format!("kubeha.{big}=1"),
        format!("kubeha.{big}"),
        format!("kubeha.disk={big}"),
        format!("kubeha.role={}", &big[..4000]),
        format!("kubeha.config=file:/{}", &big[..4000]).replace("xx", "/../"),
    ] {
        let e = KernelArgs::parse(&cmdline).unwrap_err();
        assert!(e.to_string().len() < 400, "{e}");
        assert!(e.key().len() < 100, "{e}");
    }
}

#[test]
fn validate_refuses_what_would_not_read_back() {
    let ok = KernelArgs {
        config: Some(ConfigLocation::Http("http://h/${mac}.toml".into())),
        ..Default::default()
    };
    ok.validate().unwrap();
    for (bad, key) in [
        (
            KernelArgs {
                disk: Some("a\"b".into()),
                ..Default::default()
            },
            Key::Disk,
        ),
        (
            KernelArgs {
                disk: Some(String::new()),
                ..Default::default()
            },
            Key::Disk,
        ),
        (
            KernelArgs {
                name: Some("Upper".into()),
                ..Default::default()
            },
            Key::Name,
        ),
        (
            KernelArgs {
                config_sha256: Some("AB".repeat(32)),
                ..ok.clone()
            },
            Key::ConfigSha256,
        ),
        (
            KernelArgs {
                config_sha256: Some("ab".repeat(32)),
                ..Default::default()
            },
            Key::ConfigSha256,
        ),
        (
            KernelArgs {
                config: Some(ConfigLocation::Http("file:/x".into())),
                ..Default::default()
            },
            Key::Config,
        ),
        (
            KernelArgs {
                config: Some(ConfigLocation::File("relative".into())),
                ..Default::default()
            },
            Key::Config,
        ),
        (
            KernelArgs {
                report: Some(format!("http://{}", "x".repeat(MAX_VALUE))),
                ..Default::default()
            },
            Key::Report,
        ),
    ] {
        let e = bad.validate().expect_err(&format!("{bad:?}"));
        assert_eq!(e.key(), key.as_str(), "{bad:?}: {e}");
    }
}

/// Characters for free-form values: ASCII without the double quote, whitespace (then the value is quoted), `=`,
/// placeholders, non-ASCII (incl. a no-break space, which does not separate).
const FREE: &[char] = &[
    'a', 'z', 'A', 'Z', '0', '9', '-', '.', '_', '/', ':', '=', '$', '{', '}', '%', '?', '&', '#',
    '\\', '\'', ' ', '\t', '\n', 'é', '\u{a0}', '→',
];

fn free(rng: &mut StdRng, min: usize, max: usize) -> String {
    let n = rng.gen_range(min..=max);
    (0..n).map(|_| *FREE.choose(rng).unwrap()).collect()
}

fn dns_name(rng: &mut StdRng) -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let labels = rng.gen_range(1..=3);
    (0..labels)
        .map(|_| {
            let n = rng.gen_range(1..=20);
            (0..n)
                .map(|i| {
                    if i > 0 && i < n - 1 && rng.gen_bool(0.2) {
                        '-'
                    } else {
                        *ALNUM.choose(rng).unwrap() as char
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn http(rng: &mut StdRng) -> String {
    let scheme = if rng.gen() { "http://" } else { "https://" };
    let mut u = format!("{scheme}{}", free(rng, 1, 60));
    if rng.gen_bool(0.3) {
        u.push_str("/${mac}.toml");
    }
    u
}

fn some<T>(rng: &mut StdRng, f: impl FnOnce(&mut StdRng) -> T) -> Option<T> {
    if rng.gen_bool(0.6) {
        Some(f(rng))
    } else {
        None
    }
}

fn random_args(rng: &mut StdRng) -> KernelArgs {
    let config = some(rng, |rng| match rng.gen_range(0..3) {
        0 => ConfigLocation::Http(http(rng)),
        1 => {
            let parts = rng.gen_range(1..=4);
            let p: String = (0..parts)
                .map(|_| {
                    let mut c = free(rng, 1, 12).replace('/', "");
                    if c.is_empty() || c == "." || c == ".." {
                        c = "x".into();
                    }
                    format!("/{c}")
                })
                .collect();
            ConfigLocation::File(p)
        }
        _ => {
            let mut l = free(rng, 1, 20).replace('/', "");
            while l.len() > 32 {
                l.pop();
            }
            if l.is_empty() {
                l = "KUBEHA".into();
            }
            ConfigLocation::Label(l)
        }
    });
    let pin = config.is_some() && rng.gen();
    KernelArgs {
        role: some(rng, |rng| {
            if rng.gen() {
                Role::Master
            } else {
                Role::Worker
            }
        }),
        name: some(rng, dns_name),
        config,
        config_sha256: pin.then(|| {
            (0..64)
                .map(|_| *b"0123456789abcdef".choose(rng).unwrap() as char)
                .collect()
        }),
        report: some(rng, http),
        bootstrap: some(rng, dns_name),
        reinstall: rng.gen(),
        disk: some(rng, |rng| free(rng, 1, 40)),
    }
}

/// The round trip, on 5000 random valid argument sets (a fixed seed: a failure reproduces): `parse(args(x)) == x`,
/// also when the arguments are shuffled among other parameters and when an earlier value of a key is overridden.
#[test]
fn round_trip() {
    let mut rng = StdRng::seed_from_u64(0x6b75_6265_6861);
    let others = [
        "ro",
        "quiet",
        "BOOT_IMAGE=/vmlinuz",
        "inst.ks=\"hd:LABEL=a b:/ks.cfg\"",
        "kubehax.role=x",
        "\"\"",
    ];
    let mut quoted = 0;
    for i in 0..5000 {
        let a = random_args(&mut rng);
        a.validate().unwrap_or_else(|e| panic!("#{i} {a:?}: {e}"));
        let line = a.to_args().join(" ");
        quoted += line.contains('"') as usize;
        assert_eq!(KernelArgs::parse(&line).as_ref(), Ok(&a), "#{i}: {line}");

        let mut words = a.to_args();
        words.extend(others.iter().map(|s| s.to_string()));
        words.shuffle(&mut rng);
        // An earlier value of the same key: the later one wins.
        let b = random_args(&mut rng);
        let line = format!("{} {}", b.to_args().join(" "), words.join(" "));
        let mut want = a.clone();
        for (k, _) in b.pairs() {
            match k {
                Key::Role if a.role.is_none() => want.role = b.role,
                Key::Name if a.name.is_none() => want.name = b.name.clone(),
                Key::Config if a.config.is_none() => want.config = b.config.clone(),
                Key::ConfigSha256 if a.config_sha256.is_none() => {
                    want.config_sha256 = b.config_sha256.clone()
                }
                Key::Report if a.report.is_none() => want.report = b.report.clone(),
                Key::Bootstrap if a.bootstrap.is_none() => want.bootstrap = b.bootstrap.clone(),
                Key::Reinstall if !a.reinstall => want.reinstall = b.reinstall,
                Key::Disk if a.disk.is_none() => want.disk = b.disk.clone(),
                _ => {}
            }
        }
        // Reinstall=1 earlier and none later: still 1 (an absent key does not reset it).
        assert_eq!(KernelArgs::parse(&line).as_ref(), Ok(&want), "#{i}: {line}");
    }
    assert!(
        quoted > 500,
        "the values with whitespace are covered ({quoted})"
    );
}
