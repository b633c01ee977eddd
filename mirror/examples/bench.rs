//! `make bench`: mirror the same image set from a local docker-registry with `kubeha bundle build` and with
//! `skopeo copy` into per-image OCI directories, in the same run; print a Markdown report (BENCHMARKS.md).
//!
//! Usage: cargo run --release -p kubeha-mirror --example bench -- KUBEHA_BINARY [WORKDIR]
//! Sizes: BENCH_BASE_MB (shared base layer, default 200), BENCH_LAYER_MB (each image's own layer, default 30),
//! BENCH_EXTRA (images besides kubeadm's seven, default 5).

#[path = "../tests/it/common.rs"]
mod common;
#[path = "../tests/it/servers.rs"]
mod servers;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kubeha_mirror::synth::{self, Format};
use kubeha_model::kube::{kubeadm_images, NEWEST_CHECKED_RELEASE};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Incompressible bytes (xorshift), so layer sizes on the wire are what they say.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = vec![0u8; len];
    for c in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        c.copy_from_slice(&b[..c.len()]);
    }
    v
}

fn du(path: &Path) -> u64 {
    let out = common::run(Command::new("du").args(["-sb"]).arg(path));
    out.split_whitespace().next().unwrap().parse().unwrap()
}

fn mb(n: u64) -> String {
    format!("{:.0} MB", n as f64 / 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kubeha = args
        .get(1)
        .expect("usage: bench KUBEHA_BINARY [WORKDIR]")
        .clone();
    let keep = args.get(2).map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let work = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&work).unwrap();
    let base_mb = env_num("BENCH_BASE_MB", 200);
    let layer_mb = env_num("BENCH_LAYER_MB", 30);
    let extra = env_num("BENCH_EXTRA", 5);

    eprintln!("bench: generating images ({base_mb} MB shared base, {layer_mb} MB per image)");
    let base = synth::layer(&[synth::Entry::File(
        "base.bin".into(),
        noise(base_mb << 20, 1),
        0o644,
    )]);
    let reg = servers::Registry::start(&work.join("reg"), &work.join("storage"), None);
    let push = servers::Pusher::new(&reg.base());
    let v = NEWEST_CHECKED_RELEASE;
    let mut refs = Vec::new(); // (reference kubeha stores, where skopeo pulls it)
    let mut seed = 2;
    let mut one = |repo: &str, tag: &str| {
        let own = synth::layer(&[synth::Entry::File(
            format!("{repo}.bin"),
            noise(layer_mb << 20, seed),
            0o644,
        )]);
        seed += 1;
        let img = synth::image(&[base.clone(), own], Format::Docker, "amd64", repo);
        push.image(repo, Some(tag), &img);
    };
    for name in kubeadm_images(&v, None) {
        let (path, tag) = name
            .strip_prefix("registry.k8s.io/")
            .unwrap()
            .rsplit_once(':')
            .unwrap();
        one(&format!("k8s/{path}"), tag);
        refs.push((name.clone(), format!("{}/k8s/{path}:{tag}", reg.host())));
    }
    let mut images = Vec::new();
    for i in 0..extra {
        one(&format!("bench/app{i}"), "1");
        let r = format!("{}/bench/app{i}:1", reg.host());
        images.push(format!("\"{r}\""));
        refs.push((r.clone(), r));
    }
    let registry_bytes = du(&work.join("storage"));

    let profile = work.join("profile.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"bench\"\nkubernetes-version = \"{v}\"\nimages = [{}]\n\n\
             [[registry-mirrors]]\nregistry = \"registry.k8s.io\"\nendpoint = \"http://{}\"\nprefix = \"k8s\"\n",
            images.join(", "),
            reg.host()
        ),
    )
    .unwrap();

    let sync = || {
        let _ = Command::new("sync").status();
    };
    // kubeha: cold
    let out = work.join("bundle");
    let _ = std::fs::remove_dir_all(&out);
    sync();
    let t = Instant::now();
    common::run(
        Command::new(&kubeha)
            .args(["bundle", "build", "--profile"])
            .arg(&profile)
            .arg("-o")
            .arg(&out)
            .arg("--json"),
    );
    let kubeha_cold = t.elapsed().as_secs_f64();
    // kubeha: no-op rerun
    let t = Instant::now();
    let json = common::run(
        Command::new(&kubeha)
            .args(["bundle", "build", "--profile"])
            .arg(&profile)
            .arg("-o")
            .arg(&out)
            .arg("--json"),
    );
    let kubeha_noop = t.elapsed().as_secs_f64();
    let rerun: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        rerun["blobs_fetched"], 0,
        "the rerun downloaded blobs: {json}"
    );
    let kubeha_bytes = du(&out);
    let t = Instant::now();
    common::run(Command::new(&kubeha).args(["bundle", "verify"]).arg(&out));
    let kubeha_verify = t.elapsed().as_secs_f64();

    // skopeo: one copy per image into its own OCI directory
    let sk = work.join("skopeo");
    let _ = std::fs::remove_dir_all(&sk);
    std::fs::create_dir_all(&sk).unwrap();
    sync();
    let copy_all = || {
        for (i, (name, src)) in refs.iter().enumerate() {
            common::run(
                Command::new("skopeo")
                    .args(["copy", "-q", "--src-tls-verify=false"])
                    .arg(format!("docker://{src}"))
                    .arg(format!(
                        "oci:{}:{name}",
                        sk.join(format!("img{i}")).display()
                    )),
            );
        }
    };
    let t = Instant::now();
    copy_all();
    let skopeo_cold = t.elapsed().as_secs_f64();
    let t = Instant::now();
    copy_all();
    let skopeo_rerun = t.elapsed().as_secs_f64();
    let skopeo_bytes = du(&sk);
    // For reference: skopeo into ONE shared OCI directory (it reuses blobs already in the destination).
    let shared = work.join("skopeo-shared");
    let _ = std::fs::remove_dir_all(&shared);
    sync();
    let t = Instant::now();
    for (name, src) in &refs {
        common::run(
            Command::new("skopeo")
                .args(["copy", "-q", "--src-tls-verify=false"])
                .arg(format!("docker://{src}"))
                .arg(format!("oci:{}:{name}", shared.display())),
        );
    }
    let shared_cold = t.elapsed().as_secs_f64();
    let shared_bytes = du(&shared);

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .unwrap_or_default();
    println!("| | kubeha bundle build | skopeo copy (per-image OCI dirs) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| cold mirror, wall time | {kubeha_cold:.1} s | {skopeo_cold:.1} s | **{:.1}× faster** |",
        skopeo_cold / kubeha_cold
    );
    println!(
        "| bytes on disk | {} | {} | **{:.1}× smaller** |",
        mb(kubeha_bytes),
        mb(skopeo_bytes),
        skopeo_bytes as f64 / kubeha_bytes as f64
    );
    println!(
        "| rerun, nothing changed | {kubeha_noop:.2} s (0 blobs fetched) | {skopeo_rerun:.1} s | |"
    );
    println!("| `bundle verify` (re-hash everything) | {kubeha_verify:.1} s | | |");
    println!(
        "| for reference: skopeo copy into one shared OCI dir | | {shared_cold:.1} s, {} | {:.1}× faster |",
        mb(shared_bytes),
        shared_cold / kubeha_cold
    );
    println!();
    println!(
        "{} images ({} kubeadm {v} + {extra}), each a {base_mb} MB shared base layer + its own {layer_mb} MB layer \
         (incompressible); {} in the registry. docker-registry {}, skopeo {}; {} CPUs ({cpu}).",
        refs.len(),
        refs.len() - extra,
        mb(registry_bytes),
        common::run(Command::new("docker-registry").arg("--version")).split_whitespace().nth(2).unwrap_or("?"),
        common::run(Command::new("skopeo").arg("--version")).split_whitespace().nth(2).unwrap_or("?"),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    );
}
