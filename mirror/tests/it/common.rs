//! Shared helpers: running commands, and fixture images. Network namespaces and the daemons the tests start
//! (dockerd, containerd) are kubeha-lab's.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use kubeha_mirror::synth;

/// Runs a command; panics with argv, status and stderr on failure; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`run`], returning (success, stdout+stderr).
pub fn try_run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Fixture images: a busybox base layer shared by all, plus a small per-image layer.
pub struct Fixture {
    pub base: synth::Layer,
    pub a: synth::SynthImage,
    pub b: synth::SynthImage,
}

pub fn hello_layer(name: &str) -> synth::Layer {
    synth::layer(&[synth::Entry::File(
        format!("{name}.txt"),
        format!("hello from {name}\n").into_bytes(),
        0o644,
    )])
}

pub fn fixture() -> Fixture {
    let base = synth::busybox_layer(Path::new("/bin/busybox")).expect("busybox-static installed");
    let a = synth::image(
        &[base.clone(), hello_layer("a")],
        synth::Format::Docker,
        "amd64",
        "a",
    );
    let b = synth::image(
        &[base.clone(), hello_layer("b")],
        synth::Format::Oci,
        "amd64",
        "b",
    );
    Fixture { base, a, b }
}
