//! The built-in bundle profiles against the CNI manifests they ship: the pinned manifest's bytes (a committed copy
//! whose sha256 is the pin) reference exactly the profile's CNI images, and the cluster default's `[cni] version`
//! is the default profile's.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kubeha_mirror::bundle::{load_profile, manifest_images, BUILTIN_PROFILES, DEFAULT_PROFILE};
use kubeha_mirror::digest::Digest;
use kubeha_mirror::reference::normalize;

fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cni")
        .join(name);
    let b = std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    (p, b)
}

/// The profile's images that are Calico's (`*/calico/*`), normalized.
fn calico_images(profile: &str) -> BTreeSet<String> {
    load_profile(profile)
        .unwrap()
        .images
        .iter()
        .map(|i| normalize(i).unwrap())
        .filter(|i| i.contains("/calico/"))
        .collect()
}

/// Each built-in profile and the committed copy of the CNI manifest it pins; `None` for a profile that explains in
/// a comment why nothing can be pinned. A new built-in profile must be added here.
const PINNED: &[(&str, Option<&str>)] = &[
    ("el9-containerd-calico", Some("calico-v3.32.1.yaml")),
    ("seed-v1.11.1", None),
];

#[test]
fn every_builtin_profile_is_listed() {
    let listed: Vec<&str> = PINNED.iter().map(|(n, _)| *n).collect();
    let builtin: Vec<&str> = BUILTIN_PROFILES.iter().map(|(n, _)| *n).collect();
    assert_eq!(listed, builtin);
}

#[test]
fn pinned_manifests_are_the_fixtures_and_reference_exactly_the_profile_images() {
    let cni_file = kubeha_model::cluster::Cluster::default_cluster()
        .cni
        .manifest;
    for (name, fx) in PINNED {
        let profile = load_profile(name).unwrap();
        let pin = profile.files.iter().find(|f| f.name == cni_file);
        let (Some(fx), Some(pin)) = (fx, pin) else {
            assert!(
                fx.is_none() && pin.is_none(),
                "{name}: a pinned {cni_file} needs its fixture and the other way round"
            );
            let text = BUILTIN_PROFILES.iter().find(|(n, _)| n == name).unwrap().1;
            assert!(
                text.contains("No CNI manifest is pinned here"),
                "{name}: say why nothing is pinned"
            );
            continue;
        };
        let (path, bytes) = fixture(fx);
        assert_eq!(
            Digest::of(&bytes).hex(),
            pin.sha256,
            "{name}: {} is not the pinned {} ({})",
            path.display(),
            pin.name,
            pin.url
        );
        let text = String::from_utf8(bytes).unwrap();
        let referenced: BTreeSet<String> = manifest_images(&text, &path.display().to_string())
            .unwrap()
            .into_iter()
            .collect();
        let listed: BTreeSet<String> = profile
            .images
            .iter()
            .map(|i| normalize(i).unwrap())
            .collect();
        assert_eq!(
            referenced, listed,
            "{name}: the images {} references",
            pin.url
        );
        assert_eq!(referenced, calico_images(name), "{name}");
    }
}

#[test]
fn cluster_default_cni_version_is_the_default_profiles() {
    let want = kubeha_model::cluster::Cluster::default_cluster()
        .cni
        .version;
    let tags: BTreeSet<String> = calico_images(DEFAULT_PROFILE)
        .iter()
        .map(|i| i.rsplit_once(':').unwrap().1.to_string())
        .collect();
    assert_eq!(tags, BTreeSet::from([want.clone()]));
    let p = load_profile(DEFAULT_PROFILE).unwrap();
    let pin = p.files.iter().find(|f| f.name == "calico.yaml").unwrap();
    assert!(pin.url.contains(&format!("/{want}/")), "{}", pin.url);
}

#[test]
fn seed_images_are_those_of_calico_v3_1_3_kdd_manifest() {
    let (path, bytes) = fixture("calico-v3.1.3-kdd.yaml");
    // The committed output of render-calico-v3.1.py (INDEX).
    assert_eq!(
        Digest::of(&bytes).hex(),
        "5fe361849572a1b4b884f16742f20eaecf67abb2b342adfc8edbb8caa41595c5"
    );
    let referenced: BTreeSet<String> = manifest_images(
        std::str::from_utf8(&bytes).unwrap(),
        &path.display().to_string(),
    )
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(referenced, calico_images("seed-v1.11.1"));
}

#[test]
fn manifest_images_reads_yaml_not_lines() {
    let text = "kind: List\nitems:\n- spec:\n    containers:\n    - {name: a, image: \"calico/node:v1\"}\n    \
                - name: b\n      image: quay.io/x/y:2\n---\n# image: commented/out:1\nspec:\n  description: \"image: in/a:string\"\n  \
                schema: {properties: {image: {type: string}}}\n  initContainers:\n  - image: quay.io/x/y:2\n";
    assert_eq!(
        manifest_images(text, "t").unwrap(),
        ["docker.io/calico/node:v1", "quay.io/x/y:2"]
    );
    assert!(manifest_images("a: [\n", "t")
        .unwrap_err()
        .to_string()
        .contains("t: YAML document 1"));
}
