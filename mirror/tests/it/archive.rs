//! The layout and its archives read by the real consumers: dockerd (`docker load`, `docker run`), containerd
//! (`ctr images import`) and skopeo (`oci:DIR:REF`).

use std::fs;
use std::process::Command;

use kubeha_mirror::archive::{write_docker_archive, write_oci_archive};
use kubeha_mirror::oci::Layout;
use kubeha_mirror::Error;

use kubeha_lab::{Containerd, Dockerd};

use crate::common::*;

const A: &str = "registry.k8s.io/kubeha-test/a:1.0";
const B: &str = "docker.io/library/kbtest-b:v2";

fn layout_with_fixture(dir: &std::path::Path) -> (Layout, Fixture) {
    let layout = Layout::init(&dir.join("images")).unwrap();
    let fx = fixture();
    let a = fx.a.store(&layout, A).unwrap();
    // A is a Docker manifest: stored byte for byte, with its own media type and digest
    assert_eq!(a.digest, fx.a.descriptor.digest);
    assert_eq!(a.media_type, kubeha_mirror::oci::DOCKER_MANIFEST);
    assert_eq!(
        fs::read(layout.blob_path(&a.digest)).unwrap(),
        fx.a.manifest
    );
    let b = fx.b.store(&layout, B).unwrap();
    assert_eq!(b.digest, fx.b.descriptor.digest);
    (layout, fx)
}

#[test]
fn layout_lists_verifies_and_shares_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, fx) = layout_with_fixture(tmp.path());
    let layout = Layout::open(layout.root()).unwrap();
    let names: Vec<String> = layout
        .images()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec![A.to_string(), B.to_string()]);
    let img = layout.image(A).unwrap();
    assert_eq!(img.manifest.config.digest, fx.a.config_digest);
    assert_eq!(img.manifest.layers[0].digest, fx.base.digest);
    // normalized lookup: `kbtest-b:v2` is docker.io/library/kbtest-b:v2
    assert_eq!(
        layout.entry("kbtest-b:v2").unwrap().digest,
        fx.b.descriptor.digest
    );
    layout.verify_image(A).unwrap();
    layout.verify_image(B).unwrap();
    // 2 manifests + 2 configs + shared busybox + 2 hello layers = 7 blobs
    let blobs = fs::read_dir(layout.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 7);
    assert!(layout.has_blob(&fx.base.digest, fx.base.blob.len() as u64));

    // skopeo reads an OCI-typed image of the layout by the full reference
    let out =
        run(Command::new("skopeo")
            .args(["inspect", &format!("oci:{}:{B}", layout.root().display())]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], fx.b.descriptor.digest.to_string(), "{out}");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{out}");
    // skopeo 1.9's oci: transport does not read a Docker-typed index.json entry (docs/bundle.md)
    let (ok, out) = try_run(
        Command::new("skopeo").args(["inspect", &format!("oci:{}:{A}", layout.root().display())]),
    );
    assert!(!ok && out.contains("no descriptor found"), "{out}");

    // a flipped byte in the shared layer is caught for both images, naming the blob
    let p = layout.blob_path(&fx.base.digest);
    let mut data = fs::read(&p).unwrap();
    data[100] ^= 1;
    fs::write(&p, &data).unwrap();
    for r in [A, B] {
        match layout.verify_image(r) {
            Err(Error::DigestMismatch { what, .. }) => {
                assert!(what.contains(fx.base.digest.hex()), "{what}")
            }
            other => panic!("verify {r}: {other:?}"),
        }
    }
    // and the archive writer refuses to stream it
    let err = write_docker_archive(&layout, &[A], Vec::new()).unwrap_err();
    assert!(err.to_string().contains(fx.base.digest.hex()), "{err}");
    // an unknown image is named
    let err = write_docker_archive(&layout, &["nope:1"], Vec::new()).unwrap_err();
    assert!(err.to_string().contains("nope:1"), "{err}");
}

#[test]
fn docker_load_run_and_ctr_import() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _fx) = layout_with_fixture(tmp.path());
    let docker_tar = tmp.path().join("images.tar");
    write_docker_archive(&layout, &[A, B], fs::File::create(&docker_tar).unwrap()).unwrap();
    let oci_tar = tmp.path().join("images-oci.tar");
    write_oci_archive(&layout, &[B], fs::File::create(&oci_tar).unwrap()).unwrap();

    // The tar holds each shared blob once.
    let listing = run(Command::new("tar").arg("-tf").arg(&docker_tar));
    let blobs = listing
        .lines()
        .filter(|l| l.starts_with("blobs/sha256/") && l.len() > 14)
        .count();
    assert_eq!(blobs, 7, "{listing}");

    let dk = Dockerd::start(&tmp.path().join("docker"));
    run(dk.docker().arg("load").arg("-i").arg(&docker_tar));
    let ls = run(dk
        .docker()
        .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(ls.lines().any(|l| l == A), "{ls}");
    assert!(ls.lines().any(|l| l == "kbtest-b:v2"), "{ls}");
    let out = run(dk
        .docker()
        .args(["run", "--rm", "--network", "none", A, "cat", "/a.txt"]));
    assert_eq!(out, "hello from a\n");
    let out = run(dk.docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        "kbtest-b:v2",
        "sh",
        "-c",
        "cat /b.txt",
    ]));
    assert_eq!(out, "hello from b\n");
    drop(dk);

    let ct = Containerd::start(&tmp.path().join("containerd"));
    run(ct.ctr().args(["images", "import"]).arg(&docker_tar));
    let ls = run(ct.ctr().args(["images", "ls", "-q"]));
    assert!(ls.lines().any(|l| l == A), "{ls}");
    assert!(ls.lines().any(|l| l == B), "{ls}");
    run(ct.ctr().args(["images", "rm", B]));
    run(ct.ctr().args(["images", "import"]).arg(&oci_tar));
    let ls = run(ct.ctr().args(["images", "ls", "-q"]));
    assert!(ls.lines().any(|l| l == B), "{ls}");
    // unpacked for the default snapshotter, so a pod could run from it
    let check = run(ct.ctr().args(["images", "check"]));
    assert!(
        check
            .lines()
            .any(|l| l.starts_with(A) && l.contains("complete")),
        "{check}"
    );
}
