//! Fixtures shared by the integration tests: a node root as an EL9 install leaves it, a tiny bundle, tree snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

use kubeha_mirror::oci::Layout;
use kubeha_mirror::synth;
use kubeha_model::bundle::{BundleManifest, ImageEntry, Profile, RpmEntry};
use kubeha_model::cluster::Role;
use kubeha_model::{Cluster, NodeConfig, Secrets};

pub fn secrets() -> &'static Secrets {
    static S: OnceLock<Secrets> = OnceLock::new();
    S.get_or_init(|| Secrets::generate().unwrap())
}

/// A role-agnostic node config carrying the control-plane keys (one medium for every node).
pub fn config() -> NodeConfig {
    let mut c = Cluster::default_cluster();
    c.workers[1].mac = Some("52:54:00:00:20:31".into());
    NodeConfig::build(&c, secrets(), None, None, true).unwrap()
}

pub fn put(root: &Path, path: &str, text: &str) {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The CNI images the fixture's calico.yaml names (the default cluster's calico).
pub const CNI_IMAGES: [&str; 2] = ["quay.io/calico/cni:v3.32.1", "quay.io/calico/node:v3.32.1"];

/// Images in the fixture bundle (normalized, as `kubeha bundle` records them): kubeadm's for the default cluster's
/// release and the CNI manifest's, as a bundle built with `--images all` holds them.
pub fn images() -> Vec<String> {
    let v = Cluster::default_cluster().cluster.kubernetes_version;
    let mut out = kubeha_model::kube::kubeadm_images(&v, None);
    out.extend(CNI_IMAGES.iter().map(|s| s.to_string()));
    out
}

/// Writes a bundle (one OCI layout with tiny images stored by the mirror crate's code, the CNI manifest in files/,
/// an empty rpms/ dir, bundle.toml listing every file with its sha256) into `dir`: a bundle the agent's checks
/// accept for the default cluster.
pub fn make_bundle(dir: &Path) -> BundleManifest {
    make_bundle_with(dir, &images())
}

/// [`make_bundle`] holding only `images` (a consistent bundle built without some image).
pub fn make_bundle_with(dir: &Path, images: &[String]) -> BundleManifest {
    let layout = Layout::init(&dir.join("images")).unwrap();
    let mut entries = Vec::new();
    for (i, r) in images.iter().enumerate() {
        let layer = synth::layer(&[
            synth::Entry::Dir("etc/".into()),
            synth::Entry::File(
                "etc/kubeha-test".into(),
                format!("image {i}: {r}\n").into_bytes(),
                0o644,
            ),
        ]);
        let img = synth::image(&[layer], synth::Format::Oci, "amd64", r);
        let d = img.store(&layout, r).unwrap();
        entries.push(ImageEntry {
            reference: r.to_string(),
            digest: d.digest.to_string(),
            media_type: d.media_type.clone(),
            platform: "linux/amd64".into(),
            index_digest: None,
            size: layout.image(r).unwrap().size(),
        });
    }
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(
        dir.join("files/calico.yaml"),
        format!(
            "kind: DaemonSet\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: install-cni\n          \
             image: {}\n      containers:\n        - name: calico-node\n          image: {}\n",
            CNI_IMAGES[0], CNI_IMAGES[1]
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("rpms")).unwrap();
    let kube = Cluster::default_cluster().cluster.kubernetes_version;
    let rpm = |n: &str, v: &str, req: bool| RpmEntry {
        nevra: format!("{n}-{v}.x86_64"),
        name: n.into(),
        path: format!("rpms/{n}-{v}.x86_64.rpm"),
        requested: req,
    };
    let m = BundleManifest {
        format: kubeha_model::bundle::FORMAT,
        created: "2026-01-01T00:00:00Z".into(),
        image_set: Default::default(),
        profile: Profile::parse(
            &format!(
                "name = \"test\"\nkubernetes-version = \"{}\"\n",
                Cluster::default_cluster().cluster.kubernetes_version
            ),
            "test profile",
        )
        .unwrap(),
        images: entries,
        rpms: vec![
            rpm("kubelet", &format!("{kube}-150500.1.1"), true),
            rpm("kubeadm", &format!("{kube}-150500.1.1"), true),
            rpm("kubectl", &format!("{kube}-150500.1.1"), true),
            rpm("containerd.io", "1.7.24-3.1.el9", true),
            rpm("conntrack-tools", "1.4.7-2.el9", false),
        ],
        rpm_keys: vec![],
        files: Vec::new(),
    };
    // Every file, as `kubeha bundle build` lists them (what `bundle verify` and the agent check).
    let mut m = m;
    for rel in kubeha_mirror::bundle::list_files(dir).unwrap() {
        let data = std::fs::read(dir.join(&rel)).unwrap();
        use sha2::Digest as _;
        m.files.push(kubeha_model::bundle::FileEntry {
            path: rel,
            sha256: hex::encode(sha2::Sha256::digest(&data)),
            size: data.len() as u64,
            mtime_ns: None,
        });
    }
    m.save(dir).unwrap();
    m
}

/// A node root as a fresh EL9 install leaves it, with the node config at /etc/kubeha/node.toml and the bundle at
/// /var/lib/kubeha/bundle. `cmdline` becomes /proc/cmdline.
pub fn make_root(root: &Path, cmdline: &str) {
    put(
        root,
        "/etc/os-release",
        "NAME=\"Rocky Linux\"\nVERSION_ID=\"9.4\"\nID=\"rocky\"\n",
    );
    put(
        root,
        "/etc/hosts",
        "127.0.0.1   localhost localhost.localdomain\n::1         localhost6\n",
    );
    put(
        root,
        "/etc/selinux/config",
        "# This file controls the state of SELinux\nSELINUX=enforcing\nSELINUXTYPE=targeted\n",
    );
    put(
        root,
        "/etc/fstab",
        "/dev/mapper/rl-root /  xfs defaults 0 0\nUUID=1234 /boot xfs defaults 0 0\n/dev/mapper/rl-swap none swap defaults 0 0\n",
    );
    put(
        root,
        "/etc/firewalld/firewalld.conf",
        "DefaultZone=public\n",
    );
    put(root, "/etc/yum.repos.d/rocky.repo", "[baseos]\nname=Rocky BaseOS\nmirrorlist=https://mirrors.example/x\nenabled=1\n\n[extras]\nname=Extras\nenabled=0\n");
    put(root, "/etc/kubeha/node.toml", &config().to_toml());
    put(root, "/proc/cmdline", &format!("{cmdline}\n"));
    make_bundle(&root.join("var/lib/kubeha/bundle"));
}

/// Every file under `root` (bundle excluded): path → (mode, content). Files whose content legitimately differs between
/// runs (timestamps, freshly generated secrets) are recorded as a placeholder.
pub fn snapshot(root: &Path) -> BTreeMap<String, (u32, String)> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
        if rel.starts_with("/var/lib/kubeha/bundle") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            walk(root, &p, out);
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        let content = match rel.as_str() {
            "/var/lib/kubeha/status.json" | "/var/lib/kubeha/done" => {
                "(varies: timestamps)".to_string()
            }
            "/var/lib/kubeha/node.toml" | "/etc/kubeha/node.toml" => {
                "(secret: not compared)".to_string()
            }
            "/proc/cmdline" => "(input: not compared)".to_string(),
            _ => std::fs::read_to_string(&p).unwrap_or_else(|_| "(binary)".into()),
        };
        out.insert(rel, (mode, content));
    }
}

/// The snapshot as golden text.
pub fn render_snapshot(s: &BTreeMap<String, (u32, String)>) -> String {
    let mut t = String::new();
    for (p, (mode, content)) in s {
        t.push_str(&format!("== {p} {mode:04o}\n"));
        for l in content.lines() {
            t.push_str(&format!("   {l}\n"));
        }
    }
    t
}

/// Compares `got` with the golden file, or rewrites it with KUBEHA_BLESS=1.
pub fn golden(name: &str, got: &str) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("KUBEHA_BLESS").is_some() {
        std::fs::write(&p, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (KUBEHA_BLESS=1 writes it)", p.display()));
    if want != got {
        let d = tempfile::Builder::new()
            .prefix("golden")
            .tempfile()
            .unwrap()
            .keep()
            .unwrap()
            .1;
        std::fs::write(&d, got).unwrap();
        panic!(
            "Generated output does not match file: {} (got: {}; KUBEHA_BLESS=1 to accept)",
            p.display(),
            d.display()
        );
    }
}

pub fn role_of(name: &str) -> Role {
    if name.contains("master") {
        Role::Master
    } else {
        Role::Worker
    }
}
