//! Shared test fixtures: synthetic EL base ISOs (built once per target dir by image/fixtures/make-base-iso.gen.sh
//! and cached under target/kubeha-fixtures/, keyed by the script's hash), a tiny real bundle (a createrepo_c yum
//! repository + a file, with its bundle.toml), and a stand-in agent.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use kubeha_image::pxe::{write_tree, Boot, Install, PxeSpec};
use kubeha_image::Agent;
use kubeha_model::cluster::Role;
use kubeha_model::{Cluster, NodeConfig, Secrets};
use sha2::{Digest, Sha256};

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

static BUILD: Mutex<()> = Mutex::new(());

/// The real node agent, for the tests that run the kickstart's `%post --nochroot` (which runs `kubeha-firstboot
/// install`): `KUBEHA_NODE_BINARY` (`make unit`'s glibc-2.17 build), else this workspace's debug build, built once
/// with cargo (another crate's tests have no `CARGO_BIN_EXE_` for it).
pub fn node_agent() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBEHA_NODE_BINARY") {
        return PathBuf::from(p);
    }
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    sh(Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "kubeha-firstboot",
            "--bin",
            "kubeha-firstboot",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("CARGO_TARGET_DIR", target_dir()));
    target_dir().join("debug/kubeha-firstboot")
}

/// The base ISO for a layout (`centos7`, `rocky9`, `aarch64`), built once and shared.
pub fn base_iso(layout: &str) -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/make-base-iso.gen.sh");
    let text = std::fs::read(&script).unwrap();
    let key = &hex::encode(Sha256::digest(&text))[..12];
    let dir = target_dir().join("kubeha-fixtures").join(key);
    let iso = dir.join(format!("{layout}.iso"));
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !iso.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        // Build under a unique name, then rename: parallel test binaries never see half an ISO.
        let tmp = dir.join(format!("{layout}.{}.iso", std::process::id()));
        let out = Command::new("bash")
            .arg(&script)
            .arg(layout)
            .arg(&tmp)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &iso).unwrap();
    }
    iso
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// A small real bundle: rpms/ is a yum repository made by createrepo_c, files/calico.yaml, and bundle.toml
/// listing every file with its sha256 and size.
pub fn make_bundle(dir: &Path, arch: &str) {
    make_bundle_el(dir, arch, 9)
}

/// A bundle whose profile targets EL `el`.
pub fn make_bundle_el(dir: &Path, arch: &str, el: u8) {
    std::fs::create_dir_all(dir.join("rpms")).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::create_dir_all(dir.join("images/blobs/sha256")).unwrap();
    std::fs::write(
        dir.join("files/calico.yaml"),
        "# calico manifest stand-in\nkind: List\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("images/oci-layout"),
        "{\"imageLayoutVersion\":\"1.0.0\"}",
    )
    .unwrap();
    std::fs::write(
        dir.join("images/index.json"),
        "{\"schemaVersion\":2,\"manifests\":[]}",
    )
    .unwrap();
    // One real (empty, noarch) package so %packages has a requested name and the repo real metadata.
    let top = dir.join(".rpmbuild");
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    std::fs::write(
        top.join("SPECS/kubeha-test-tools.spec"),
        "Name: kubeha-test-tools\nVersion: 1.0\nRelease: 1\nSummary: media test package\nLicense: Apache-2.0\nBuildArch: noarch\n%description\nmedia test package\n%files\n",
    )
    .unwrap();
    sh(Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--quiet", "-bb"])
        .arg(top.join("SPECS/kubeha-test-tools.spec")));
    std::fs::rename(
        top.join("RPMS/noarch/kubeha-test-tools-1.0-1.noarch.rpm"),
        dir.join("rpms/kubeha-test-tools-1.0-1.noarch.rpm"),
    )
    .unwrap();
    std::fs::remove_dir_all(&top).unwrap();
    let out = Command::new("createrepo_c")
        .arg("-q")
        .arg(dir.join("rpms"))
        .output()
        .expect("createrepo_c");
    assert!(
        out.status.success(),
        "createrepo_c: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel != "bundle.toml" {
                    files.push((rel, sha256_file(&p), std::fs::metadata(&p).unwrap().len()));
                }
            }
        }
    }
    files.sort();
    // Written by the model's own writer, as `kubeha bundle` writes it (the %post script parses this text).
    let text = format!(
        "format = 1\ncreated = \"2026-11-24T00:00:00Z\"\n\n[profile]\nname = \"test\"\nkubernetes-version = \"1.31.4\"\nel = {el}\narch = \"{arch}\"\npackages = [\"kubeha-test-tools\"]\n"
    );
    let mut m = kubeha_model::bundle::BundleManifest::parse(&text, "test").unwrap();
    m.rpms.push(kubeha_model::bundle::RpmEntry {
        nevra: "kubeha-test-tools-1.0-1.noarch".into(),
        name: "kubeha-test-tools".into(),
        path: "rpms/kubeha-test-tools-1.0-1.noarch.rpm".into(),
        requested: true,
    });
    m.files = files
        .into_iter()
        .map(|(path, sha256, size)| kubeha_model::bundle::FileEntry {
            path,
            sha256,
            size,
            mtime_ns: None,
        })
        .collect();
    m.save(dir).unwrap();
    kubeha_model::bundle::BundleManifest::load(dir).expect("test bundle.toml parses");
}

/// A stand-in for the kubeha-firstboot binary and its unit (the real ones are built elsewhere).
pub fn stand_in_agent(dir: &Path) -> Agent {
    std::fs::create_dir_all(dir).unwrap();
    let binary = dir.join("kubeha-firstboot");
    std::fs::write(
        &binary,
        "#!/bin/sh\necho 'kubeha-firstboot stand-in (media tests)'\n",
    )
    .unwrap();
    let unit = dir.join("kubeha-firstboot.service");
    std::fs::write(&unit, "[Unit]\nDescription=kubeha first boot (stand-in)\n[Service]\nType=oneshot\nExecStart=/usr/local/bin/kubeha-firstboot\n[Install]\nWantedBy=multi-user.target\n").unwrap();
    Agent { binary, unit }
}

/// Runs a command, returns stdout+stderr, panics with both on failure.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{all}");
    all
}

/// Reads one file out of an ISO with osirrox.
pub fn iso_file(iso: &Path, path: &str, work: &Path) -> Vec<u8> {
    let dst = work.join(path.trim_start_matches('/').replace('/', "_"));
    let _ = std::fs::remove_file(&dst);
    sh(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .arg("-extract")
        .arg(path)
        .arg(&dst));
    std::fs::read(&dst).unwrap()
}

/// The default cluster with MACs for k8s-master01 and k8s-node01.
pub fn cluster_with_macs() -> Cluster {
    let mut c = Cluster::default_cluster();
    c.masters[0].mac = Some("52:54:00:12:34:01".into());
    c.workers[0].mac = Some("52:54:00:12:34:11".into());
    c
}

/// A PXE tree from the Rocky 9 fixture ISO under `dir/tftp`.
pub fn tree(dir: &Path, install: Install, embed: bool) -> kubeha_image::pxe::PxeReport {
    tree_with(dir, install, embed, Default::default())
}

/// [`tree`] with the operator's `--remove-arg`/`--append`.
pub fn tree_with(
    dir: &Path,
    install: Install,
    embed: bool,
    user_args: kubeha_image::bootcfg::ArgEdit,
) -> kubeha_image::pxe::PxeReport {
    tree_full(dir, install, embed, user_args, None)
}

/// [`tree_with`] with the web server's group for the embedded master configs (`--web-group`).
pub fn tree_full(
    dir: &Path,
    install: Install,
    embed: bool,
    user_args: kubeha_image::bootcfg::ArgEdit,
    secret_group: Option<u32>,
) -> kubeha_image::pxe::PxeReport {
    let cluster = cluster_with_macs();
    let secrets = Secrets::generate().unwrap();
    let nc = NodeConfig::build(&cluster, &secrets, None, None, false).unwrap();
    let masters = if embed {
        cluster
            .masters
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    NodeConfig::build(&cluster, &secrets, Some(Role::Master), Some(&m.name), true)
                        .unwrap(),
                )
            })
            .collect()
    } else {
        vec![]
    };
    let bundle = dir.join("bundle");
    if !bundle.exists() {
        make_bundle(&bundle, "x86_64");
    }
    write_tree(&PxeSpec {
        output: dir.join("tftp"),
        http_base: "http://10.0.2.2:8080/".into(),
        boot: Boot::Iso(base_iso("rocky9")),
        os_url: None,
        bundle,
        cluster: &cluster,
        node_config: &nc,
        master_configs: masters,
        secret_group,
        install,
        reinstall: Install::None,
        user_args,
        agent: stand_in_agent(&dir.join("agent")),
        el: None,
        grub_efi: None,
        force: true,
    })
    .unwrap()
}
