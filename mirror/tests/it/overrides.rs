//! The built-in profiles built from an "internal mirror" through `overrides` (what `kubeha bundle build --mirror
//! ... --file ... --registry-credentials ...` does): every image of the profile served by one docker-registry on
//! loopback under a per-registry prefix (one registry behind a proxy that demands Basic auth), the default
//! profile's pinned calico.yaml from a loopback URL. The bundle keeps the canonical image names and the pin.
//! (The profiles' RPM packages are dropped here: `tests/rpm.rs` builds repos through `--repo` overrides.)

use std::fs;
use std::path::Path;

use kubeha_mirror::build::build;
use kubeha_mirror::bundle::{load_profile, profile_images, verify, DEFAULT_PROFILE};
use kubeha_mirror::digest::Digest;
use kubeha_mirror::overrides::{apply, Kind, Override, OverridesFile};
use kubeha_mirror::reference::Reference;
use kubeha_mirror::synth::{self, Format};
use kubeha_model::bundle::{BundleManifest, Profile};

use kubeha_lab::Registry;

use crate::common::*;
use crate::servers::*;

/// Pushes every image `profile` implies to `reg` as `<registry>/<repository>:<tag>` (a mirror with one prefix per
/// upstream registry, like the demo's); returns the registries.
fn push_profile_images(reg: &Registry, profile: &Profile) -> Vec<String> {
    let p = Pusher::new(&reg.base());
    let mut regs = Vec::new();
    for i in profile_images(profile).unwrap() {
        let r = Reference::parse(&i).unwrap();
        let label = i.replace(['/', ':'], "_");
        let img = synth::image(&[hello_layer(&label)], Format::Docker, "amd64", &label);
        p.image(
            &format!("{}/{}", r.registry, r.repository),
            r.tag.as_deref(),
            &img,
        );
        if !regs.contains(&r.registry) {
            regs.push(r.registry);
        }
    }
    regs
}

fn flags(kind: Kind, values: &[String]) -> Vec<Override> {
    Override::from_flag(kind, values)
}

fn opts() -> kubeha_mirror::build::BuildOptions {
    kubeha_mirror::build::BuildOptions {
        backoff: std::time::Duration::from_millis(50),
        ..Default::default()
    }
}

fn check_bundle(dir: &Path, profile: &Profile) -> BundleManifest {
    verify(dir).unwrap();
    let m = BundleManifest::load(dir).unwrap();
    let mut got: Vec<String> = m.images.iter().map(|i| i.reference.clone()).collect();
    let mut want = profile_images(profile).unwrap();
    got.sort();
    want.sort();
    assert_eq!(got, want, "canonical names, none of the mirror's");
    m
}

#[test]
fn seed_profile_builds_from_an_internal_mirror_with_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(&tmp.path().join("reg"), &tmp.path().join("storage"), None);
    let mut seed = load_profile("seed-v1.11.1").unwrap();
    let registries = push_profile_images(&reg, &seed);
    assert_eq!(registries.len(), 4, "{registries:?}");

    // k8s.gcr.io's mirror is a host that wants Basic auth
    let want = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ci:pa55")
    );
    let guarded = Proxy::start("127.0.0.1", reg.host(), move |r, _| {
        if r.headers.get("authorization") == Some(&want) {
            Action::Forward
        } else {
            Action::Respond(
                401,
                vec![("WWW-Authenticate".into(), "Basic realm=\"mirror\"".into())],
                vec![],
            )
        }
    });
    let mirrors: Vec<String> = registries
        .iter()
        .map(|r| match r.as_str() {
            "k8s.gcr.io" => format!("{r}=http://{}/{r}", guarded.host()),
            _ => format!("{r}=http://{}/{r}/", reg.host()),
        })
        .collect();
    let pw = tmp.path().join("mirror-password");
    fs::write(&pw, "pa55\n").unwrap();
    let mut o = flags(Kind::Mirror, &mirrors);
    o.extend(flags(
        Kind::RegistryCredentials,
        &[format!("{}=ci:{}", guarded.host(), pw.display())],
    ));
    apply(&mut seed, &o).unwrap();
    seed.packages.clear();

    let dir = tmp.path().join("bundle");
    let s = build(&seed, &dir, &opts()).unwrap();
    assert_eq!(s.images, 30, "{s:?}");
    let m = check_bundle(&dir, &seed);
    assert!(m
        .images
        .iter()
        .any(|i| i.reference == "k8s.gcr.io/pause:3.1"));
    assert!(m
        .images
        .iter()
        .any(|i| i.reference == "docker.io/library/nginx:latest"));
    // every k8s.gcr.io image came through the guarded mirror, authenticated
    let through = guarded.count(|r| {
        r.path.starts_with("/v2/k8s.gcr.io/") && r.headers.contains_key("authorization")
    });
    assert!(through >= 10, "{:?}", guarded.requests());
    // the bundle records where things came from and who logged in, never the password
    let recorded = fs::read_to_string(dir.join("bundle.toml")).unwrap();
    assert!(recorded.contains(&guarded.host()) && !recorded.contains("pa55"));

    // a refused password is named as such and not echoed
    fs::write(&pw, "wrong-pa55\n").unwrap();
    let err = build(&seed, &tmp.path().join("refused"), &opts())
        .unwrap_err()
        .to_string();
    assert!(err.contains("refused") && !err.contains("pa55"), "{err}");
}

#[test]
fn default_profile_builds_from_an_internal_mirror_and_keeps_the_cni_pin() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(&tmp.path().join("reg"), &tmp.path().join("storage"), None);
    let mut profile = load_profile(DEFAULT_PROFILE).unwrap();
    let registries = push_profile_images(&reg, &profile);
    let calico = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cni/calico-v3.32.1.yaml"),
    )
    .unwrap();
    let files = Proxy::start("127.0.0.1", reg.host(), move |r, _| match r.path.as_str() {
        "/files/calico.yaml" => Action::Respond(200, vec![], calico.clone()),
        _ => Action::Respond(200, vec![], b"kind: List\n".to_vec()),
    });

    // the overrides come from a file, as a site would keep them
    let site = tmp.path().join("site.toml");
    let mirror = |r: &String| format!("\"{r}=http://{}/{r}\"", reg.host());
    fs::write(
        &site,
        format!(
            "mirror = [{}]\nfile = [\"calico.yaml=http://{}/files/calico.yaml\"]\n",
            registries.iter().map(mirror).collect::<Vec<_>>().join(", "),
            files.host()
        ),
    )
    .unwrap();
    let pin = profile.files[0].sha256.clone();
    apply(&mut profile, &OverridesFile::load(&site).unwrap()).unwrap();
    profile.packages.clear();

    let dir = tmp.path().join("bundle");
    let s = build(&profile, &dir, &opts()).unwrap();
    assert_eq!((s.images, s.files), (10, 1), "{s:?}");
    check_bundle(&dir, &profile);
    let got = fs::read(dir.join("files/calico.yaml")).unwrap();
    assert_eq!(Digest::of(&got).hex(), pin);

    // the pin stays: a mirror serving other bytes is refused
    let mut bad = load_profile(DEFAULT_PROFILE).unwrap();
    let mut o = OverridesFile::load(&site).unwrap();
    o.extend(flags(
        Kind::File,
        &[format!(
            "calico.yaml=http://{}/files/other.yaml",
            files.host()
        )],
    ));
    apply(&mut bad, &o).unwrap();
    bad.packages.clear();
    let err = build(&bad, &tmp.path().join("bad"), &opts())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&pin) && err.contains("other.yaml"), "{err}");
}
