//! `bundle build` against real docker-registry instances on loopback, through a scriptable proxy: shared layers,
//! manifest lists and OCI indexes, mirrors, reruns, token and basic auth, retries, digest checks, resume after a
//! kill, and `bundle verify`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kubeha_mirror::build::{build, BuildOptions, BuildSummary};
use kubeha_mirror::bundle::verify;
use kubeha_mirror::digest::Digest;
use kubeha_mirror::oci::{self, Layout, Platform};
use kubeha_mirror::synth::{self, Format, SynthImage};
use kubeha_mirror::Error;
use kubeha_model::bundle::{BundleManifest, Profile};

use kubeha_lab::{wait_for, Containerd, Dockerd, HttpDir, Registry, TokenAuth};

use crate::common::*;
use crate::servers::*;

/// The images the tests push (besides kubeadm's seven).
struct Images {
    a: SynthImage,
    b: SynthImage,
    c: SynthImage,
    list_amd64: SynthImage,
    list_arm64: SynthImage,
    list: (Vec<u8>, oci::Descriptor),
    index_amd64: SynthImage,
    index_arm64: SynthImage,
    index: (Vec<u8>, oci::Descriptor),
    base: synth::Layer,
}

fn arm() -> Platform {
    Platform {
        architecture: "arm64".into(),
        os: "linux".into(),
        os_version: None,
        variant: Some("v8".into()),
    }
}

fn amd() -> Platform {
    Platform::linux_for_rpm_arch("x86_64")
}

fn images() -> Images {
    let base = synth::busybox_layer(Path::new("/bin/busybox")).unwrap();
    let img =
        |name: &str, f: Format| synth::image(&[base.clone(), hello_layer(name)], f, "amd64", name);
    let list_amd64 = img("list", Format::Docker);
    let list_arm64 = synth::image(
        &[hello_layer("list-arm64")],
        Format::Docker,
        "arm64",
        "list-arm64",
    );
    let index_amd64 = img("index", Format::Oci);
    let index_arm64 = synth::image(
        &[hello_layer("index-arm64")],
        Format::Oci,
        "arm64",
        "index-arm64",
    );
    let list = synth::index(
        &[(&list_amd64, amd()), (&list_arm64, arm())],
        Format::Docker,
    );
    let index = synth::index(&[(&index_arm64, arm()), (&index_amd64, amd())], Format::Oci);
    Images {
        a: img("a", Format::Docker),
        b: img("b", Format::Oci),
        c: img("c", Format::Docker),
        list_amd64,
        list_arm64,
        list,
        index_amd64,
        index_arm64,
        index,
        base,
    }
}

/// Pushes kubeadm's seven v1.11.1 images under `k8s/` (served as k8s.gcr.io through a mirror) and the test images.
fn push_all(p: &Pusher, im: &Images) {
    let base = im.base.clone();
    for name in
        kubeha_model::kube::kubeadm_images(&kubeha_model::kube::KubeVersion::new(1, 11, 1), None)
    {
        let (repo, tag) = name
            .strip_prefix("k8s.gcr.io/")
            .unwrap()
            .split_once(':')
            .unwrap();
        let i = synth::image(
            &[base.clone(), hello_layer(repo)],
            Format::Docker,
            "amd64",
            repo,
        );
        p.image(&format!("k8s/{repo}"), Some(tag), &i);
    }
    p.image("test/a", Some("1"), &im.a);
    p.image("test/b", Some("1"), &im.b);
    p.image("test/c", Some("1"), &im.c);
    p.image("test/list", None, &im.list_amd64);
    p.image("test/list", None, &im.list_arm64);
    p.manifest("test/list", "1", oci::DOCKER_MANIFEST_LIST, &im.list.0);
    p.image("test/index", None, &im.index_amd64);
    p.image("test/index", None, &im.index_arm64);
    p.manifest("test/index", "1", oci::OCI_INDEX, &im.index.0);
}

/// A profile for v1.11.1 whose kubeadm images come from `mirror` (as k8s.gcr.io) plus `images`.
fn profile(mirror: &str, images: &[String], extra: &str) -> Profile {
    let list = images
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "name = \"test\"\nkubernetes-version = \"1.11.1\"\ncontainer-runtime = \"docker\"\nel = 7\n\
         images = [{list}]\n{extra}\n\
         [[registry-mirrors]]\nregistry = \"k8s.gcr.io\"\nendpoint = \"{mirror}\"\nprefix = \"k8s\"\n"
    );
    Profile::parse(&text, "test profile").unwrap()
}

fn opts() -> BuildOptions {
    BuildOptions {
        backoff: Duration::from_millis(50),
        ..BuildOptions::default()
    }
}

fn blob_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.join("images/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn is_blob_get(s: &Seen, d: &Digest) -> bool {
    s.method == "GET" && s.path.ends_with(&format!("/blobs/{d}"))
}

/// One plain registry with everything pushed, behind a forwarding proxy.
struct World {
    tmp: tempfile::TempDir,
    storage: PathBuf,
    reg: Registry,
    im: Images,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("storage");
    let reg = Registry::start(&tmp.path().join("reg"), &storage, None);
    let im = images();
    push_all(&Pusher::new(&reg.base()), &im);
    World {
        tmp,
        storage,
        reg,
        im,
    }
}

#[test]
fn build_shares_layers_resolves_lists_reruns_and_updates() {
    let w = world();
    let proxy = Proxy::start("127.0.0.1", w.reg.host(), |_, _| Action::Forward);
    let h = proxy.host();
    let cni = w.tmp.path().join("cni.yaml");
    fs::write(&cni, "kind: List\n").unwrap();
    let cni_sha = Digest::of(b"kind: List\n").hex().to_string();
    let files = format!(
        "[[files]]\nname = \"cni.yaml\"\nurl = \"file://{}\"\nsha256 = \"{cni_sha}\"\n",
        cni.display()
    );
    let refs = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("{h}/test/{n}:1"))
            .collect::<Vec<_>>()
    };
    let p = profile(
        &format!("http://{h}"),
        &refs(&["a", "b", "list", "index"]),
        &files,
    );
    let dir = w.tmp.path().join("bundle");

    let s = build(&p, &dir, &opts()).unwrap();
    assert_eq!(s.images, 11, "{s:?}");
    assert_eq!(s.blobs_reused, 0);
    assert_eq!(s.files, 1);
    let layout = Layout::open(&dir.join("images")).unwrap();
    let names: Vec<String> = layout
        .images()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&"k8s.gcr.io/kube-apiserver-amd64:v1.11.1".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"k8s.gcr.io/pause:3.1".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&format!("{h}/test/list:1")), "{names:?}");

    // the busybox layer is used by 11 images, stored once and fetched once
    assert_eq!(proxy.count(|r| is_blob_get(r, &w.im.base.digest)), 1);
    assert!(layout.has_blob(&w.im.base.digest, w.im.base.blob.len() as u64));
    // lists/indexes resolved to amd64: the arm64 blobs were never fetched
    for arm in [&w.im.list_arm64, &w.im.index_arm64] {
        assert!(!layout.has_blob(&arm.config_digest, arm.config.len() as u64));
        assert_eq!(proxy.count(|r| is_blob_get(r, &arm.layers[0].digest)), 0);
    }
    let list = layout.image(&format!("{h}/test/list:1")).unwrap();
    assert_eq!(list.manifest.config.digest, w.im.list_amd64.config_digest);
    let idx = layout.image(&format!("{h}/test/index:1")).unwrap();
    assert_eq!(
        idx.descriptor.digest, w.im.index_amd64.descriptor.digest,
        "an OCI manifest is stored as served"
    );

    // bundle.toml records registry digests and every file
    let m = BundleManifest::load(&dir).unwrap();
    let e = m
        .images
        .iter()
        .find(|i| i.reference == format!("{h}/test/list:1"))
        .unwrap();
    assert_eq!(e.index_digest.as_deref(), Some(w.im.list.1.digest.as_str()));
    assert_eq!(e.platform, "linux/amd64");
    let e = m
        .images
        .iter()
        .find(|i| i.reference == format!("{h}/test/index:1"))
        .unwrap();
    assert_eq!(
        e.index_digest.as_deref(),
        Some(w.im.index.1.digest.as_str())
    );
    assert_eq!(e.digest, w.im.index_amd64.descriptor.digest.to_string());
    assert!(m
        .files
        .iter()
        .any(|f| f.path == "files/cni.yaml" && f.sha256 == cni_sha));
    assert_eq!(
        m.files
            .iter()
            .filter(|f| f.path.starts_with("images/blobs/"))
            .count(),
        blob_files(&dir).len()
    );
    verify(&dir).unwrap();

    // skopeo reads every OCI-typed image of the shared layout by its original name
    for r in [format!("{h}/test/index:1"), format!("{h}/test/b:1")] {
        let out = run(std::process::Command::new("skopeo").args([
            "inspect",
            &format!("oci:{}:{r}", dir.join("images").display()),
        ]));
        assert!(out.contains("\"Digest\""), "{out}");
    }

    // rerun with the same profile: manifests only, no blob, in seconds
    let before = proxy.count(|r| r.path.contains("/blobs/"));
    let t = Instant::now();
    let s2 = build(&p, &dir, &opts()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(s2.blobs_fetched, 0, "{s2:?}");
    assert_eq!(proxy.count(|r| r.path.contains("/blobs/")), before);
    verify(&dir).unwrap();

    // a changed profile: c added, b dropped: only c's new blobs are fetched, b's own blobs are deleted
    let p3 = profile(
        &format!("http://{h}"),
        &refs(&["a", "c", "list", "index"]),
        "",
    );
    let s3: BuildSummary = build(&p3, &dir, &opts()).unwrap();
    assert_eq!(s3.blobs_fetched, 2, "config and top layer of c: {s3:?}");
    assert_eq!(s3.images_removed, vec![format!("{h}/test/b:1")]);
    assert!(!layout.has_blob(&w.im.b.config_digest, w.im.b.config.len() as u64));
    assert!(layout.has_blob(&w.im.base.digest, w.im.base.blob.len() as u64));
    assert!(
        !dir.join("files").exists(),
        "files dropped from the profile are removed"
    );
    verify(&dir).unwrap();

    // bundle verify names the first bad file: a flipped byte in a layer, in index.json, an unlisted file, a
    // missing file
    let blob = format!("images/blobs/sha256/{}", w.im.base.digest.hex());
    for (rel, how) in [
        (blob.as_str(), "flip"),
        ("images/index.json", "flip"),
        ("images/stray", "add"),
        ("images/oci-layout", "remove"),
    ] {
        let p = dir.join(rel);
        let saved = fs::read(&p).ok();
        match how {
            "flip" => {
                let mut d = saved.clone().unwrap();
                let i = d.len() / 3;
                d[i] ^= 1;
                fs::write(&p, d).unwrap();
            }
            "add" => fs::write(&p, "x").unwrap(),
            _ => fs::remove_file(&p).unwrap(),
        }
        let err = verify(&dir).unwrap_err().to_string();
        assert!(err.contains(rel), "{how} {rel}: {err}");
        match saved {
            Some(d) => fs::write(&p, d).unwrap(),
            None => fs::remove_file(&p).unwrap(),
        }
        verify(&dir).unwrap();
    }

    // bundle.toml's [[images]] and index.json are checked against each other both ways: a deleted entry, an
    // edited size, an entry the layout lacks all fail, naming the image
    let good = BundleManifest::load(&dir).unwrap();
    let list_ref = format!("{h}/test/list:1");
    type Edit<'a> = Box<dyn Fn(&mut BundleManifest) + 'a>;
    let edits: [(&str, Edit, &str); 3] = [
        (
            "deleted",
            Box::new(|m| m.images.retain(|i| i.reference != list_ref)),
            "does not list",
        ),
        (
            "size",
            Box::new(|m| {
                let e = m
                    .images
                    .iter_mut()
                    .find(|i| i.reference == list_ref)
                    .unwrap();
                e.size += 1;
            }),
            "bytes of config and layers",
        ),
        (
            "added",
            Box::new(|m| {
                let mut e = m.images[0].clone();
                e.reference = format!("{h}/test/ghost:1");
                m.images.push(e);
            }),
            "has no image",
        ),
    ];
    for (what, edit, says) in edits {
        let mut m = good.clone();
        edit(&mut m);
        m.save(&dir).unwrap();
        let err = verify(&dir).unwrap_err().to_string();
        assert!(
            err.contains("index.json") && err.contains(says),
            "{what}: {err}"
        );
        assert!(
            err.contains(&list_ref) || err.contains("ghost"),
            "{what}: {err}"
        );
    }
    good.save(&dir).unwrap();
    verify(&dir).unwrap();
}

#[test]
fn retries_5xx_and_rejects_wrong_digests() {
    let w = world();
    let h_reg = w.reg.host();
    let a_manifest = "/v2/test/a/manifests/1".to_string();
    let b_layer = w.im.b.layers[1].digest.clone();
    let list_amd64 = w.im.list_amd64.descriptor.digest.clone();
    let proxy = Proxy::start("127.0.0.1", h_reg.clone(), move |r, n| {
        if r.path == a_manifest && n < 2 {
            Action::Respond(500, vec![], b"try again".to_vec())
        } else {
            Action::Forward
        }
    });
    let h = proxy.host();
    let dir = w.tmp.path().join("b1");
    let p = profile(&format!("http://{h}"), &[format!("{h}/test/a:1")], "");
    build(&p, &dir, &opts()).unwrap();
    assert_eq!(
        proxy.count(|r| r.path == "/v2/test/a/manifests/1"),
        3,
        "two 500s then 200"
    );

    // a corrupted layer: rejected, never stored, no partial kept
    let bl = b_layer.clone();
    let bad = Proxy::start("127.0.0.1", h_reg.clone(), move |r, _| {
        if is_blob_get(r, &bl) {
            Action::Corrupt
        } else {
            Action::Forward
        }
    });
    let hb = bad.host();
    let dir = w.tmp.path().join("b2");
    let p = profile(&format!("http://{hb}"), &[format!("{hb}/test/b:1")], "");
    let err = build(&p, &dir, &opts()).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(b_layer.as_str()), "{err}");
    assert!(!blob_files(&dir).contains(&b_layer.hex().to_string()));
    let ingest = dir.join("images/.ingest");
    assert!(!ingest.exists() || fs::read_dir(&ingest).unwrap().count() == 0);
    assert!(!dir.join("bundle.toml").exists());

    // a corrupted platform manifest behind a manifest list (fetched by digest)
    let bad = Proxy::start("127.0.0.1", h_reg.clone(), move |r, _| {
        if r.path.ends_with(&format!("/manifests/{list_amd64}")) {
            Action::Corrupt
        } else {
            Action::Forward
        }
    });
    let hb = bad.host();
    let p = profile(&format!("http://{hb}"), &[format!("{hb}/test/list:1")], "");
    let err = build(&p, &w.tmp.path().join("b3"), &opts()).unwrap_err();
    assert!(
        err.to_string()
            .contains(w.im.list_amd64.descriptor.digest.as_str()),
        "{err}"
    );

    // a manifest whose Docker-Content-Digest does not match its body
    let body = w.im.a.manifest.clone();
    let bad = Proxy::start("127.0.0.1", h_reg, move |r, _| {
        if r.path == "/v2/test/a/manifests/1" {
            Action::Respond(
                200,
                vec![
                    ("Content-Type".into(), oci::DOCKER_MANIFEST.into()),
                    (
                        "Docker-Content-Digest".into(),
                        format!("sha256:{}", "0".repeat(64)),
                    ),
                ],
                body.clone(),
            )
        } else {
            Action::Forward
        }
    });
    let hb = bad.host();
    let p = profile(&format!("http://{hb}"), &[format!("{hb}/test/a:1")], "");
    let err = build(&p, &w.tmp.path().join("b4"), &opts()).unwrap_err();
    assert!(err.to_string().contains("Docker-Content-Digest"), "{err}");
}

#[test]
fn bearer_token_auth_over_tls() {
    let w = world();
    for access_token in [false, true] {
        let d = w.tmp.path().join(format!("tok-{access_token}"));
        fs::create_dir_all(&d).unwrap();
        let ts = TokenServer::start(&d, "puller", "s3cret", access_token);
        let (cert, key, ca) = tls_cert(&d);
        let secure = Registry::start(
            &d.join("reg"),
            &w.storage,
            Some(TokenAuth {
                realm: ts.realm(),
                service: ts.service,
                issuer: ts.issuer,
                rootcert: &ts.rootcert,
                tls_cert: &cert,
                tls_key: &key,
            }),
        );
        let host = secure.host();
        let pwfile = d.join("password");
        fs::write(&pwfile, "s3cret\n").unwrap();
        let creds = format!(
            "[[credentials]]\nregistry = \"{host}\"\nusername = \"puller\"\npassword-file = \"{}\"\n",
            pwfile.display()
        );
        let img = format!("{host}/test/list:1");
        let mirror = format!("http://{}", w.reg.host());
        let o = BuildOptions {
            ca_pem: vec![ca.clone()],
            ..opts()
        };
        // without credentials: a clear error
        let err = build(
            &profile(&mirror, std::slice::from_ref(&img), ""),
            &d.join("nocreds"),
            &o,
        )
        .unwrap_err();
        assert!(err.to_string().contains("credentials"), "{err}");
        // without the CA: TLS fails
        let err = build(
            &profile(&mirror, std::slice::from_ref(&img), &creds),
            &d.join("noca"),
            &BuildOptions {
                attempts: 1,
                ..opts()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains(&host), "{err}");
        assert!(err.to_string().contains("certificate"), "{err}");

        let dir = d.join("bundle");
        build(
            &profile(&mirror, std::slice::from_ref(&img), &creds),
            &dir,
            &o,
        )
        .unwrap();
        let layout = Layout::open(&dir.join("images")).unwrap();
        assert_eq!(
            layout.image(&img).unwrap().manifest.config.digest,
            w.im.list_amd64.config_digest
        );
        let seen = ts.seen.lock().unwrap().clone();
        let ok = seen
            .iter()
            .find(|r| r.headers.contains_key("authorization"))
            .expect("token requested with credentials");
        assert!(
            ok.path.contains("service=kubeha-test-registry"),
            "{}",
            ok.path
        );
        assert!(
            ok.path.contains("scope=repository%3Atest%2Flist%3Apull"),
            "{}",
            ok.path
        );
        verify(&dir).unwrap();

        // a wrong password is refused by the token server: named as such
        fs::write(&pwfile, "wrong\n").unwrap();
        let err = build(
            &profile(&mirror, std::slice::from_ref(&img), &creds),
            &d.join("bad"),
            &o,
        )
        .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        drop(secure);
    }
}

#[test]
fn basic_auth_never_follows_a_redirect_to_another_host() {
    let w = world();
    // blob storage on another loopback address: records whether Authorization reached it
    let storage = Proxy::start("127.0.0.2", w.reg.host(), |_, _| Action::Forward);
    let storage_host = storage.host();
    let want = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ci:pa55")
    );
    let front = Proxy::start("127.0.0.1", w.reg.host(), move |r, _| {
        if r.headers.get("authorization") != Some(&want) {
            return Action::Respond(
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    "Basic realm=\"kubeha-test\"".into(),
                )],
                vec![],
            );
        }
        if r.path.contains("/blobs/") {
            return Action::Respond(
                307,
                vec![(
                    "Location".into(),
                    format!("http://{storage_host}{}", r.path),
                )],
                vec![],
            );
        }
        Action::Forward
    });
    let h = front.host();
    std::env::set_var("KUBEHA_TEST_BASIC_PW", "pa55");
    let creds = format!("[[credentials]]\nregistry = \"{h}\"\nusername = \"ci\"\npassword-env = \"KUBEHA_TEST_BASIC_PW\"\n");
    let dir = w.tmp.path().join("basic");
    build(
        &profile(
            &format!("http://{}", w.reg.host()),
            &[format!("{h}/test/a:1")],
            &creds,
        ),
        &dir,
        &opts(),
    )
    .unwrap();
    let at_storage = storage.requests();
    assert!(
        at_storage.iter().any(|r| r.path.contains("/blobs/")),
        "blobs came through the redirect"
    );
    assert!(
        at_storage
            .iter()
            .all(|r| !r.headers.contains_key("authorization")),
        "{at_storage:?}"
    );
    verify(&dir).unwrap();
    // a missing environment variable is named before anything is written
    let creds = creds.replace("KUBEHA_TEST_BASIC_PW", "KUBEHA_TEST_UNSET_VAR");
    let dir = w.tmp.path().join("basic2");
    let err = build(
        &profile(
            &format!("http://{}", w.reg.host()),
            &[format!("{h}/test/a:1")],
            &creds,
        ),
        &dir,
        &opts(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("KUBEHA_TEST_UNSET_VAR"), "{err}");
    assert!(!dir.exists());
}

/// Run by `killed_midway_then_rerun_completes` in a child process, which it SIGKILLs.
#[test]
#[ignore = "helper process of killed_midway_then_rerun_completes"]
fn child_build() {
    let (Ok(p), Ok(out)) = (
        std::env::var("KUBEHA_CHILD_PROFILE"),
        std::env::var("KUBEHA_CHILD_OUT"),
    ) else {
        return;
    };
    let text = fs::read_to_string(p).unwrap();
    let profile = Profile::parse(&text, "child profile").unwrap();
    build(&profile, Path::new(&out), &opts()).unwrap();
}

#[test]
fn killed_midway_then_rerun_completes() {
    let w = world();
    // an 8 MiB incompressible layer
    let mut data = vec![0u8; 8 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let big_layer = synth::layer(&[synth::Entry::File("big.bin".into(), data, 0o644)]);
    let big = synth::image(
        &[w.im.base.clone(), big_layer.clone()],
        Format::Oci,
        "amd64",
        "big",
    );
    Pusher::new(&w.reg.base()).image("test/big", Some("1"), &big);
    let bd = big_layer.digest.clone();
    // the first download of the big layer crawls at ~1 MiB/s; later ones run at full speed
    let proxy = Proxy::start("127.0.0.1", w.reg.host(), move |r, n| {
        if is_blob_get(r, &bd) && n == 0 {
            Action::Throttle(1 << 20)
        } else {
            Action::Forward
        }
    });
    let h = proxy.host();
    let p = profile(&format!("http://{h}"), &[format!("{h}/test/big:1")], "");
    let pfile = w.tmp.path().join("profile.toml");
    fs::write(&pfile, toml::to_string(&p).unwrap()).unwrap();
    let dir = w.tmp.path().join("bundle");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "registry::child_build",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("KUBEHA_CHILD_PROFILE", &pfile)
        .env("KUBEHA_CHILD_OUT", &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let big_started = || proxy.count(|r| is_blob_get(r, &big_layer.digest)) > 0;
    wait_for("the big layer download", Duration::from_secs(60), || {
        big_started()
            && proxy
                .sent_body_bytes
                .load(std::sync::atomic::Ordering::SeqCst)
                > 3 << 20
    });
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    child.wait().unwrap();
    let partial = dir.join(format!("images/.ingest/{}.partial", big_layer.digest.hex()));
    let have = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(
        have > 0 && have < big_layer.blob.len() as u64,
        "partial {have} of {}",
        big_layer.blob.len()
    );
    assert!(!dir.join("bundle.toml").exists());

    build(&p, &dir, &opts()).unwrap();
    let gets: Vec<Seen> = proxy
        .requests()
        .into_iter()
        .filter(|r| is_blob_get(r, &big_layer.digest))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(
        gets[1].headers.get("range"),
        Some(&format!("bytes={have}-")),
        "resumed where the file ended"
    );
    assert!(!dir.join("images/.ingest").exists());
    let layout = Layout::open(&dir.join("images")).unwrap();
    layout.verify_image(&format!("{h}/test/big:1")).unwrap();
    verify(&dir).unwrap();
}

/// What the registry serves for `repo:tag_or_digest`: (bytes, `Docker-Content-Digest`, `Content-Type`), read with
/// the four manifest types accepted, and the same bytes as `skopeo inspect --raw` prints.
fn served(host: &str, repo: &str, tag: &str) -> (Vec<u8>, String, String) {
    let r = reqwest::blocking::Client::new()
        .get(format!("http://{host}/v2/{repo}/manifests/{tag}"))
        .header("accept", kubeha_mirror::registry::MANIFEST_ACCEPT)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{repo}:{tag}: {}", r.status());
    let h = |n: &str| r.headers()[n].to_str().unwrap().to_string();
    let (digest, ct) = (h("docker-content-digest"), h("content-type"));
    let body = r.bytes().unwrap().to_vec();
    assert_eq!(Digest::of(&body).to_string(), digest, "{repo}:{tag}");
    let sep = if tag.starts_with("sha256:") { '@' } else { ':' };
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{host}/{repo}{sep}{tag}"))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(raw.stdout, body, "skopeo inspect --raw {repo}:{tag}");
    (body, digest, ct)
}

/// Every Docker-format image (schema 2 manifests pushed by skopeo and by the test's pusher, a Docker
/// manifest list) is stored with the bytes and digest the registry serves, the list too, and both digests find the
/// image; a mirror-only path is stored under the reference the profile asked for; OCI images are unchanged;
/// `bundle verify`, `docker load` and `ctr images import` work on the Docker-typed content.
#[test]
fn docker_format_images_keep_the_registry_digests() {
    let w = world();
    let h = w.reg.host();
    let p = Pusher::new(&w.reg.base());
    // registry.k8s.io/pause:3.10 exists only on the mirror, under a prefix: a Docker manifest list
    p.image("public/pause", None, &w.im.list_amd64);
    p.image("public/pause", None, &w.im.list_arm64);
    p.manifest(
        "public/pause",
        "3.10",
        oci::DOCKER_MANIFEST_LIST,
        &w.im.list.0,
    );
    // a schema 2 image written by skopeo itself (converted from an OCI layout)
    let src = Layout::init(&w.tmp.path().join("src")).unwrap();
    let hello = synth::image(
        &[w.im.base.clone(), hello_layer("hello")],
        Format::Oci,
        "amd64",
        "hello",
    );
    hello.store(&src, "hello").unwrap();
    run(std::process::Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:hello", src.root().display()),
        &format!("docker://{h}/skopeo/hello:1"),
    ]));
    // a Docker manifest list written by skopeo itself (an OCI index converted with --all --format v2s2)
    w.im.index_amd64.store(&src, "index-amd64").unwrap();
    w.im.index_arm64.store(&src, "index-arm64").unwrap();
    let ix = src.put_index(&w.im.index.0, "index").unwrap();
    src.set_image("multi", &ix).unwrap();
    run(std::process::Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--all",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", src.root().display()),
        &format!("docker://{h}/skopeo/multi:1"),
    ]));

    let mirrors = format!(
        "[[registry-mirrors]]\nregistry = \"registry.k8s.io\"\nendpoint = \"http://{h}\"\nprefix = \"public\"\n"
    );
    let mut refs: Vec<String> = [
        "skopeo/hello",
        "skopeo/multi",
        "test/a",
        "test/list",
        "test/b",
        "test/index",
    ]
    .iter()
    .map(|r| format!("{h}/{r}:1"))
    .collect();
    refs.push("registry.k8s.io/pause:3.10".into());
    let prof = profile(&format!("http://{h}"), &refs, &mirrors);
    let dir = w.tmp.path().join("bundle");
    build(&prof, &dir, &opts()).unwrap();
    verify(&dir).unwrap();
    let m = BundleManifest::load(&dir).unwrap();
    let layout = Layout::open(&dir.join("images")).unwrap();

    // the mirror-only image is named as the profile asked, never by its mirror path
    let names: Vec<String> = layout
        .images()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&"registry.k8s.io/pause:3.10".to_string()),
        "{names:?}"
    );
    assert!(names.iter().all(|n| !n.contains("public/")), "{names:?}");

    let (mut docker, mut lists) = (0, 0);
    for e in &m.images {
        let r = kubeha_mirror::reference::Reference::parse(&e.reference).unwrap();
        let repo = match r.registry.as_str() {
            "k8s.gcr.io" => format!("k8s/{}", r.repository),
            "registry.k8s.io" => format!("public/{}", r.repository),
            _ => r.repository.clone(),
        };
        let (body, digest, ct) = served(&h, &repo, &r.tag_or_digest());
        let img = layout.image(&e.reference).unwrap();
        let (platform_body, platform_ct) = if oci::is_index(&ct) {
            // the list: its digest recorded and its bytes stored; the platform manifest chosen from it
            lists += 1;
            assert_eq!(
                e.index_digest.as_deref(),
                Some(digest.as_str()),
                "{}",
                e.reference
            );
            let ix = img.index.clone().expect("the list is in the layout");
            assert_eq!(ix.digest.as_str(), digest);
            assert_eq!(ix.media_type, ct);
            assert_eq!(layout.read_blob(&ix.digest, None).unwrap(), body);
            let list: oci::Index = serde_json::from_slice(&body).unwrap();
            let chosen = list.select(&amd()).unwrap();
            assert_eq!(e.digest, chosen.digest.as_str(), "{}", e.reference);
            let (pb, pd, pct) = served(&h, &repo, chosen.digest.as_str());
            assert_eq!(pd, e.digest);
            // both digests find the image
            for d in [&digest, &e.digest] {
                let by = layout.image(&format!("{}@{d}", r.name())).unwrap();
                assert_eq!(by.reference, e.reference);
                assert_eq!(by.descriptor.digest, img.descriptor.digest);
            }
            (pb, pct)
        } else {
            assert_eq!(e.digest, digest, "{}", e.reference);
            assert_eq!(e.index_digest, None, "{}", e.reference);
            assert!(img.index.is_none());
            assert_eq!(
                layout
                    .image(&format!("{}@{digest}", r.name()))
                    .unwrap()
                    .reference,
                e.reference
            );
            (body, ct)
        };
        // the platform manifest: the registry's bytes, media type and digest
        assert_eq!(img.descriptor.digest.as_str(), e.digest);
        assert_eq!(img.descriptor.media_type, platform_ct, "{}", e.reference);
        assert_eq!(e.media_type, platform_ct, "{}", e.reference);
        assert_eq!(
            layout.read_blob(&img.descriptor.digest, None).unwrap(),
            platform_body
        );
        // the config byte for byte (skopeo inspect --config --raw)
        let cfg = std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--config", "--tls-verify=false"])
            .arg(format!("docker://{h}/{repo}@{}", e.digest))
            .output()
            .unwrap();
        assert!(
            cfg.status.success(),
            "{}",
            String::from_utf8_lossy(&cfg.stderr)
        );
        assert_eq!(
            layout.read_blob(&img.manifest.config.digest, None).unwrap(),
            cfg.stdout,
            "{}",
            e.reference
        );
        if platform_ct == oci::DOCKER_MANIFEST {
            docker += 1;
            assert_eq!(img.manifest.config.media_type, oci::DOCKER_CONFIG);
        }
    }
    // 7 kubeadm images, pause, hello, multi, a, list; the OCI ones (b, index) stay OCI
    assert_eq!(docker, 12, "{:?}", m.images);
    assert_eq!(lists, 4, "list, multi, pause, index");
    let (_, _, ct) = served(&h, "skopeo/multi", "1");
    assert_eq!(
        ct,
        oci::DOCKER_MANIFEST_LIST,
        "skopeo wrote a Docker manifest list"
    );
    let b = m
        .images
        .iter()
        .find(|i| i.reference == format!("{h}/test/b:1"))
        .unwrap();
    assert_eq!(b.media_type, oci::OCI_MANIFEST);
    assert_eq!(b.digest, w.im.b.descriptor.digest.to_string());

    // what `skopeo copy --preserve-digests` keeps is what the bundle holds
    let sk = w.tmp.path().join("skopeo-dir");
    run(std::process::Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{h}/test/a:1"),
        &format!("dir:{}", sk.display()),
    ]));
    let a = m
        .images
        .iter()
        .find(|i| i.reference == format!("{h}/test/a:1"))
        .unwrap();
    assert_eq!(
        Digest::of(&fs::read(sk.join("manifest.json")).unwrap()).as_str(),
        a.digest
    );

    // a rerun keeps everything (the lists too) and verifies
    let s = build(&prof, &dir, &opts()).unwrap();
    assert_eq!(s.blobs_fetched, 0);
    assert_eq!(BundleManifest::load(&dir).unwrap().images, m.images);
    verify(&dir).unwrap();
    // a flipped byte in a stored list is caught by bundle verify, naming it
    let list_blob = format!("images/blobs/sha256/{}", w.im.list.1.digest.hex());
    let saved = fs::read(dir.join(&list_blob)).unwrap();
    let mut bad = saved.clone();
    bad[10] ^= 1;
    fs::write(dir.join(&list_blob), &bad).unwrap();
    let err = verify(&dir).unwrap_err().to_string();
    assert!(err.contains(&list_blob), "{err}");
    fs::write(dir.join(&list_blob), &saved).unwrap();
    verify(&dir).unwrap();
    // and a bundle.toml whose index-digest disagrees with the layout's list
    let mut m2 = m.clone();
    let pause = m2
        .images
        .iter_mut()
        .find(|i| i.reference == "registry.k8s.io/pause:3.10")
        .unwrap();
    pause.index_digest = None;
    m2.save(&dir).unwrap();
    let err = verify(&dir).unwrap_err().to_string();
    assert!(err.contains("chosen from manifest list"), "{err}");
    m.save(&dir).unwrap();
    verify(&dir).unwrap();

    // an archive asked for by the list's digest holds the image under its stored name
    let by_list = format!("registry.k8s.io/pause@{}", w.im.list.1.digest);
    let out =
        kubeha_mirror::archive::write_docker_archive(&layout, &[&by_list], Vec::new()).unwrap();
    let mut ar = tar::Archive::new(out.as_slice());
    let mut manifest_json = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            std::io::Read::read_to_string(&mut e, &mut manifest_json).unwrap();
        }
    }
    let items: serde_json::Value = serde_json::from_str(&manifest_json).unwrap();
    assert_eq!(
        items[0]["RepoTags"],
        serde_json::json!(["registry.k8s.io/pause:3.10"]),
        "{manifest_json}"
    );

    // docker load and ctr images import from the Docker-typed content
    let all: Vec<&str> = m.images.iter().map(|i| i.reference.as_str()).collect();
    let tar = w.tmp.path().join("images.tar");
    kubeha_mirror::archive::write_docker_archive(&layout, &all, fs::File::create(&tar).unwrap())
        .unwrap();
    let dk = Dockerd::start(&w.tmp.path().join("docker"));
    run(dk.docker().arg("load").arg("-i").arg(&tar));
    for i in &m.images {
        let id = run(dk
            .docker()
            .args(["image", "inspect", "--format", "{{.Id}}", &i.reference]));
        let cfg = layout.image(&i.reference).unwrap().manifest.config.digest;
        assert_eq!(id.trim(), cfg.as_str(), "{}", i.reference);
    }
    let out = run(dk.docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        "registry.k8s.io/pause:3.10",
        "cat",
        "/list.txt",
    ]));
    assert_eq!(out, "hello from list\n");
    drop(dk);
    let ct = Containerd::start(&w.tmp.path().join("containerd"));
    run(ct.ctr().args(["images", "import"]).arg(&tar));
    let ls = run(ct.ctr().args(["images", "ls"]));
    for i in &m.images {
        assert!(
            ls.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 2 && f[0] == i.reference && f[1] == i.media_type && f[2] == i.digest
            }),
            "{} {} {} not in\n{ls}",
            i.reference,
            i.media_type,
            i.digest
        );
    }
    // and by `repo@<the registry's digest>`, pointing at it (the list for a list), as a registry pull names it
    for i in &m.images {
        let r = kubeha_mirror::reference::Reference::parse(&i.reference).unwrap();
        let d = i.index_digest.as_deref().unwrap_or(&i.digest);
        let name = format!("{}@{d}", r.name());
        assert!(
            ls.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 2 && f[0] == name && f[2] == d
            }),
            "{name} not in\n{ls}"
        );
    }
    let check = run(ct.ctr().args(["images", "check"]));
    // every record, the lists with only the amd64 content among them, is complete for this platform
    assert!(
        check.lines().skip(1).all(|l| l.contains("complete")),
        "{check}"
    );
    assert!(check.lines().count() > 2 * m.images.len(), "{check}");
    for i in &m.images {
        assert!(
            check
                .lines()
                .any(|l| l.starts_with(&i.reference) && l.contains("complete")),
            "{}: {check}",
            i.reference
        );
    }
}

/// Flips one byte in `p`, keeping its size; with `keep_mtime` the old modification time is put back.
fn flip(p: &Path, keep_mtime: bool) {
    let mtime = fs::metadata(p).unwrap().modified().unwrap();
    let mut d = fs::read(p).unwrap();
    let i = d.len() / 2;
    d[i] ^= 0x01;
    fs::write(p, d).unwrap();
    if keep_mtime {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
}

/// Self-repair: a rerun hashes the blobs and RPMs already there (in parallel) and fetches again exactly the
/// damaged ones; `--fast` trusts files whose size and mtime match bundle.toml's stamp.
#[test]
fn rerun_repairs_damaged_blobs_and_rpms() {
    let w = world();
    let proxy = Proxy::start("127.0.0.1", w.reg.host(), |_, _| Action::Forward);
    let h = proxy.host();
    let fx = rpm_fixture();
    let http = HttpDir::start_logged(&fx, &w.tmp.path().join("access.log"));
    let rpm_gets = |file: &str| {
        http.requests()
            .iter()
            .filter(|r| r.contains(&format!("/{file} ")))
            .count()
    };
    let all_rpm_gets = || {
        http.requests()
            .iter()
            .filter(|r| r.contains(".rpm "))
            .count()
    };
    let extra = format!(
        "packages = [\"khcontainerd\"]\n\
         [[repos]]\nname = \"kube\"\nbaseurl = \"{}\"\n\
         [[repos]]\nname = \"base\"\nbaseurl = \"{}\"\nbase = true\n",
        http.url("kube"),
        http.url("base")
    );
    let p = profile(
        &format!("http://{h}"),
        &[format!("{h}/test/a:1"), format!("{h}/test/b:1")],
        &extra,
    );
    let dir = w.tmp.path().join("bundle");
    let s1 = build(&p, &dir, &opts()).unwrap();
    assert_eq!(s1.rpms, 2, "khcontainerd and khrunc: {s1:?}");
    assert_eq!(s1.rpms_fetched, 2);
    assert!(s1.repaired.is_empty());
    verify(&dir).unwrap();
    let m = BundleManifest::load(&dir).unwrap();
    assert!(
        m.files.iter().all(|f| f.mtime_ns.is_some()),
        "every file stamped"
    );
    let rpm = m
        .rpms
        .iter()
        .find(|r| r.name == "khrunc")
        .unwrap()
        .path
        .clone();
    let rpm_file = rpm.strip_prefix("rpms/").unwrap().to_string();
    let blob = format!("images/blobs/sha256/{}", w.im.base.digest.hex());
    let blobs_before = proxy.count(|r| r.path.contains("/blobs/"));
    let rpms_before = all_rpm_gets();
    assert_eq!(rpm_gets(&rpm_file), 1);

    // A flipped byte in the shared layer and in one RPM: the rerun (even --fast: the mtimes moved) fetches
    // exactly those two again.
    flip(&dir.join(&blob), false);
    flip(&dir.join(&rpm), false);
    assert!(verify(&dir).is_err());
    let fast = BuildOptions {
        fast: true,
        ..opts()
    };
    let s2 = build(&p, &dir, &fast).unwrap();
    assert_eq!(s2.repaired, vec![blob.clone(), rpm.clone()], "{s2:?}");
    assert_eq!((s2.blobs_fetched, s2.rpms_fetched), (1, 1), "{s2:?}");
    assert_eq!(
        proxy.count(|r| r.path.contains("/blobs/")),
        blobs_before + 1
    );
    assert_eq!(proxy.count(|r| is_blob_get(r, &w.im.base.digest)), 2);
    assert_eq!(all_rpm_gets(), rpms_before + 1);
    assert_eq!(rpm_gets(&rpm_file), 2);
    assert_eq!(
        s2.checked, 2,
        "only the two changed files are hashed: {s2:?}"
    );
    assert!(s2.stamped > 10, "{s2:?}");
    verify(&dir).unwrap();

    // Damage that keeps size and mtime: --fast trusts the stamp (and says nothing), a plain rerun hashes
    // everything and repairs it.
    flip(&dir.join(&blob), true);
    let s3 = build(&p, &dir, &fast).unwrap();
    assert!(s3.repaired.is_empty(), "{s3:?}");
    assert_eq!((s3.checked, s3.blobs_fetched), (0, 0), "{s3:?}");
    let s4 = build(&p, &dir, &opts()).unwrap();
    assert_eq!(s4.repaired, vec![blob.clone()], "{s4:?}");
    assert_eq!(
        (s4.blobs_fetched, s4.rpms_fetched, s4.stamped),
        (1, 0, 0),
        "{s4:?}"
    );
    assert_eq!(s4.checked, s2.checked + s2.stamped, "{s4:?}");
    verify(&dir).unwrap();
}

/// `--images extra` carries the profile's images only, `none` no image; bundle.toml records which, and
/// switching an existing bundle removes what the new set leaves out.
#[test]
fn image_sets_all_extra_none() {
    use kubeha_model::bundle::ImageSet;
    let w = world();
    let h = w.reg.host();
    let p = profile(&format!("http://{h}"), &[format!("{h}/test/a:1")], "");
    let dir = w.tmp.path().join("bundle");
    let with = |images| BuildOptions { images, ..opts() };

    let s = build(&p, &dir, &with(ImageSet::All)).unwrap();
    assert_eq!(s.images, 8, "kubeadm's seven and a: {s:?}");
    assert_eq!(BundleManifest::load(&dir).unwrap().image_set, ImageSet::All);

    let s = build(&p, &dir, &with(ImageSet::Extra)).unwrap();
    assert_eq!(s.images, 1, "{s:?}");
    assert_eq!(s.images_removed.len(), 7, "{s:?}");
    let m = BundleManifest::load(&dir).unwrap();
    assert_eq!(m.image_set, ImageSet::Extra);
    assert_eq!(m.images.len(), 1);
    assert_eq!(m.images[0].reference, format!("{h}/test/a:1"));
    assert!(fs::read_to_string(dir.join("bundle.toml"))
        .unwrap()
        .contains("image-set = \"extra\""));
    verify(&dir).unwrap();

    let s = build(&p, &dir, &with(ImageSet::None)).unwrap();
    assert_eq!((s.images, s.image_bytes), (0, 0), "{s:?}");
    let m = BundleManifest::load(&dir).unwrap();
    assert_eq!((m.image_set, m.images.len()), (ImageSet::None, 0));
    assert!(blob_files(&dir).is_empty(), "{:?}", blob_files(&dir));
    verify(&dir).unwrap();
}

/// The RPM fixture of `tests/fixtures/rpm/gen.sh` (`DIR/base`, `DIR/kube`), built once and cached by the
/// script's hash under the cargo target dir, the same directory `tests/rpm.rs` uses.
pub fn rpm_fixture() -> PathBuf {
    use sha2::Digest;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpm/gen.sh");
    let hash = hex::encode(sha2::Sha256::digest(std::fs::read(&script).unwrap()));
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = root.join(format!("rpm-fixture-{}", &hash[..16]));
    if !dir.exists() {
        let tmp = tempfile::Builder::new()
            .prefix("rpm-fixture-build-")
            .tempdir_in(root)
            .unwrap();
        run(std::process::Command::new("bash")
            .arg(&script)
            .arg(tmp.path()));
        let built = tmp.keep();
        if std::fs::rename(&built, &dir).is_err() {
            std::fs::remove_dir_all(&built).ok();
        }
    }
    dir
}
