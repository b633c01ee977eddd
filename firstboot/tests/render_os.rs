//! Golden tests of every file the OS-preparation and runtime steps write (`kubeha_firstboot::render`), and of the CNI
//! manifest the cluster step applies: each renderer on the default cluster and on the variants that change its output
//! (registry mirrors, the Docker runtime, gpg keys), and each file kubeha edits rather than owns from the text an EL
//! install leaves. Every golden file is named after its renderer (`<function>[-<case>].<ext>`), and a last test fails
//! when a renderer in firstboot/src/render returns file text without one.
//!
//! Regenerate after an intended change: `UPDATE_GOLDEN=1 cargo test -p kubeha-firstboot --test render_os`.

mod goldens;

use goldens::golden;
use kubeha_firstboot::cluster::steps::rewrite_images;
use kubeha_firstboot::render;
use kubeha_model::cluster::{RegistryMirror, Runtime};
use kubeha_model::Cluster;

/// /etc/hosts as Rocky Linux 9's `setup` package ships it.
const EL_HOSTS: &str = "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n\
                        ::1         localhost localhost.localdomain localhost6 localhost6.localdomain6\n";

/// /etc/selinux/config as an EL9 install leaves it.
const EL_SELINUX: &str = "\n# This file controls the state of SELinux on the system.\n\
# SELINUX= can take one of these three values:\n\
#     enforcing - SELinux security policy is enforced.\n\
#     permissive - SELinux prints warnings instead of enforcing.\n\
#     disabled - No SELinux policy is loaded.\n\
SELINUX=enforcing\n\
# SELINUXTYPE= can take one of these three values:\n\
#     targeted - Targeted processes are protected,\n\
#     minimum - Modification of targeted policy. Only selected processes are protected.\n\
#     mls - Multi Level Security protection.\n\
SELINUXTYPE=targeted\n\n";

/// /etc/fstab as anaconda writes it for an LVM layout with swap.
const EL_FSTAB: &str = "\n#\n# /etc/fstab\n# Created by anaconda on Mon Jan  6 10:00:00 2025\n#\n\
# Accessible filesystems, by reference, are maintained under '/dev/disk/'.\n\
# See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info.\n#\n\
/dev/mapper/rl-root     /                       xfs     defaults        0 0\n\
UUID=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 /boot                   xfs     defaults        0 0\n\
UUID=1A2B-3C4D          /boot/efi               vfat    umask=0077,shortname=winnt 0 2\n\
/dev/mapper/rl-swap     none                    swap    defaults        0 0\n";

/// A release repo file in the shape of Rocky Linux 9's rocky.repo: sections enabled, disabled, and without `enabled`.
const EL_REPO: &str = "# Rocky-BaseOS.repo\n\n\
[baseos]\nname=Rocky Linux $releasever - BaseOS\n\
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever$rltype\n\
gpgcheck=1\nenabled=1\ncountme=1\nmetadata_expire=6h\n\
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n\n\
[appstream]\nname=Rocky Linux $releasever - AppStream\n\
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=AppStream-$releasever$rltype\n\
gpgcheck=1\nenabled = 1\n\n\
[crb]\nname=Rocky Linux $releasever - CRB\n\
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=CRB-$releasever$rltype\n\
gpgcheck=1\nenabled=0\n\n\
[extras]\nname=Rocky Linux $releasever - Extras\n\
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=extras-$releasever$rltype\n\
gpgcheck=1\n";

fn mirrors() -> Vec<RegistryMirror> {
    vec![
        RegistryMirror {
            registry: "docker.io".into(),
            endpoint: "https://mirror.example:5000".into(),
        },
        RegistryMirror {
            registry: "registry.k8s.io".into(),
            endpoint: "https://k8s-mirror.example".into(),
        },
    ]
}

/// The seed's cluster: Kubernetes 1.11.1 on Docker.
fn seed() -> Cluster {
    let mut c = Cluster::default_cluster();
    c.cluster.kubernetes_version = "1.11.1".parse().unwrap();
    c.cluster.container_runtime = Runtime::Docker;
    c.install.el = 7;
    c
}

#[test]
fn modules_and_sysctl() {
    let m = render::modules_load();
    for module in render::MODULES {
        assert!(m.lines().any(|l| l == module), "{m}");
    }
    golden("modules_load.conf", &m);
    let s = render::sysctl_conf();
    for (k, v) in render::SYSCTLS {
        assert!(s.contains(&format!("\n{k} = {v}\n")), "{s}");
    }
    golden("sysctl_conf.conf", &s);
}

#[test]
fn chrony() {
    let servers = ["10.0.0.1".to_string(), "ntp.example".to_string()];
    let c = render::chrony_conf(&servers);
    assert!(c.contains("server 10.0.0.1 iburst\nserver ntp.example iburst\n"));
    golden("chrony_conf.conf", &c);
}

#[test]
fn yum_repos() {
    let base = "file:///var/lib/kubeha/bundle/rpms";
    golden("yum_repo-nokeys.repo", &render::yum_repo(base, &[]));
    let keys = [
        format!("{}/RPM-GPG-KEY-kubernetes", base.trim_end_matches("/rpms")),
        format!("{}/RPM-GPG-KEY-docker-ce", base.trim_end_matches("/rpms")),
    ];
    let r = render::yum_repo(base, &keys);
    assert!(r.contains("gpgcheck=1\n"), "{r}");
    golden("yum_repo-gpgkeys.repo", &r);

    let off = render::repo_disabled(EL_REPO).expect("enabled sections to turn off");
    assert_eq!(
        off.matches("enabled=0\n").count(),
        4,
        "every section off: {off}"
    );
    assert_eq!(
        render::repo_disabled(&off),
        None,
        "a second pass changes nothing"
    );
    golden("repo_disabled-rocky.repo", &off);
}

#[test]
fn container_runtime_files() {
    let c = Cluster::default_cluster();
    golden("containerd_config.toml", &render::containerd_config(&c));
    let mut cm = c.clone();
    cm.cluster.registry_mirrors = mirrors();
    cm.cluster.image_repository = Some("registry.example/k8s".into());
    let t = render::containerd_config(&cm);
    assert!(t.contains("registry.example/k8s/pause:"), "{t}");
    golden("containerd_config-mirrors.toml", &t);

    let s = seed();
    golden("docker_daemon_json.json", &render::docker_daemon_json(&s));
    let mut sm = s.clone();
    sm.cluster.registry_mirrors = mirrors();
    golden(
        "docker_daemon_json-mirrors.json",
        &render::docker_daemon_json(&sm),
    );

    golden(
        "crictl_yaml-containerd.yaml",
        &render::crictl_yaml(Runtime::Containerd),
    );
    golden(
        "crictl_yaml-docker.yaml",
        &render::crictl_yaml(Runtime::Docker),
    );
}

#[test]
fn edited_system_files() {
    let c = Cluster::default_cluster();
    let h = render::hosts(EL_HOSTS, &c);
    assert!(h.starts_with(EL_HOSTS), "the install's lines stay first");
    assert_eq!(render::hosts(&h, &c), h, "a second pass changes nothing");
    golden("hosts-el.txt", &h);
    // A cluster whose nodes changed: the block is replaced where it is, the lines after it kept.
    let mut smaller = c.clone();
    smaller.workers.truncate(1);
    let replaced = render::hosts(&format!("{h}10.9.9.9 other\n"), &smaller);
    assert!(
        replaced.ends_with("# END kubeha\n10.9.9.9 other\n"),
        "{replaced}"
    );
    golden("hosts-replaced.txt", &replaced);
    golden(
        "with_block-no-trailing-newline.txt",
        &render::with_block("a\nb", "one\ntwo\n"),
    );

    let s = render::selinux_config(EL_SELINUX);
    assert!(s.contains("\nSELINUX=permissive\n") && !s.contains("SELINUX=enforcing"));
    assert_eq!(
        render::selinux_config(&s),
        s,
        "a second pass changes nothing"
    );
    golden("selinux_config-el.txt", &s);

    let f = render::fstab_without_swap(EL_FSTAB).expect("a swap line to comment out");
    assert_eq!(f.matches("#kubeha: ").count(), 1, "{f}");
    assert_eq!(render::fstab_without_swap(&f), None, "commented once");
    golden("fstab_without_swap-el.txt", &f);
}

#[test]
fn cni_manifest() {
    // The default calico manifest names docker.io images; the bundle holds them under quay.io: rewritten there. An
    // image the bundle has under its own name, and one it does not have at all, stay.
    let manifest = "apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      initContainers:\n\
                    \x20       - name: install-cni\n          image: docker.io/calico/cni:v3.32.1\n\
                    \x20         imagePullPolicy: IfNotPresent\n      containers:\n        - name: calico-node\n\
                    \x20         image: \"calico/node:v3.32.1\"\n        - name: kept\n          image: quay.io/calico/kube-controllers:v3.32.1\n\
                    \x20       - image: registry.example/absent:1\n";
    let refs = [
        "quay.io/calico/cni:v3.32.1".to_string(),
        "quay.io/calico/node:v3.32.1".to_string(),
        "quay.io/calico/kube-controllers:v3.32.1".to_string(),
    ];
    let out = rewrite_images(manifest, &refs);
    assert!(
        out.contains("          image: quay.io/calico/cni:v3.32.1\n")
            && out.contains("          image: quay.io/calico/node:v3.32.1\n")
            && out.contains("        - image: registry.example/absent:1\n"),
        "{out}"
    );
    assert_eq!(
        rewrite_images(&out, &refs),
        out,
        "a second pass changes nothing"
    );
    golden("rewrite_images-calico.yaml", &out);
}

/// The cluster step's renderers (`pub fn render_*` in firstboot/src/cluster/) and the golden files that show them
/// (`cluster_render` compares them): a renderer missing here, or a file missing there, fails
/// [`every_renderer_has_a_golden_file`].
const CLUSTER_GOLDENS: [(&str, &[&str]); 6] = [
    (
        "render_keepalived",
        &["keepalived-master01.conf", "keepalived-master03.conf"],
    ),
    ("render_check_script", &["check_apiserver.sh"]),
    ("render_nginx", &["nginx-el.conf", "nginx-debian.conf"]),
    (
        "render_init",
        &[
            "kubeadm-v1beta4-init.yaml",
            "kubeadm-v1beta4-init-cgroup-v1.yaml",
            "kubeadm-v1beta4-init-patches.yaml",
            "kubeadm-v1beta3-init.yaml",
            "kubeadm-v1beta3-init-patches.yaml",
            "kubeadm-v1alpha2-init.yaml",
        ],
    ),
    (
        "render_join",
        &[
            "kubeadm-v1beta4-join-master.yaml",
            "kubeadm-v1beta4-join-master-patches.yaml",
            "kubeadm-v1beta4-join-worker.yaml",
            "kubeadm-v1beta4-join-worker-cgroup-v1.yaml",
            "kubeadm-v1beta3-join-master.yaml",
            "kubeadm-v1beta3-join-master-patches.yaml",
            "kubeadm-v1beta3-join-worker.yaml",
            "kubeadm-v1alpha2-worker.yaml",
        ],
    ),
    (
        "render_master_v1alpha2",
        &["kubeadm-v1alpha2-master02.yaml"],
    ),
];

/// Renderers in firstboot/src/render that return text but not a file's: each with the reason.
const NOT_FILES: [(&str, &str); 1] = [(
    "pause_image",
    "an image reference inside containerd's config and kubeadm's, not a file",
)];

/// Every `pub fn` in firstboot/src/render/mod.rs that returns `String` or `Option<String>` (file text) has a golden
/// file named after it, unless [`NOT_FILES`] says why not.
#[test]
fn every_renderer_has_a_golden_file() {
    let src_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/render/mod.rs");
    let src = std::fs::read_to_string(&src_path).unwrap();
    let goldens: Vec<String> = std::fs::read_dir(goldens::dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut renderers = Vec::new();
    // A signature may span lines (rustfmt): from `pub fn` to the opening brace.
    let mut rest = src.as_str();
    while let Some(i) = rest.find("\npub fn ") {
        let sig_start = &rest[i + "\npub fn ".len()..];
        let sig = &sig_start[..sig_start.find('{').expect("a body")];
        let name = &sig[..sig.find(['(', '<']).unwrap()];
        let ret = sig.rsplit_once("->").map(|(_, r)| r.trim()).unwrap_or("");
        if ret == "String" || ret == "Option<String>" {
            renderers.push(name.to_string());
        }
        rest = sig_start;
    }
    for want in ["hosts", "containerd_config", "fstab_without_swap"] {
        assert!(
            renderers.iter().any(|r| r == want),
            "the scan must find {want}: it found {renderers:?}"
        );
    }
    for (name, _) in NOT_FILES {
        assert!(
            renderers.iter().any(|r| r == name),
            "NOT_FILES names {name}, which is no renderer in {}",
            src_path.display()
        );
    }
    let missing: Vec<&String> = renderers
        .iter()
        .filter(|r| !NOT_FILES.iter().any(|(n, _)| n == r))
        .filter(|r| {
            !goldens.iter().any(|g| {
                g.strip_prefix(r.as_str())
                    .is_some_and(|t| t.starts_with('.') || t.starts_with('-'))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "renderers without a golden file in {} (name it <function>[-<case>].<ext> and compare it in a test): {missing:?}",
        goldens::dir().display()
    );

    // The cluster step's renderers: every `pub fn render_*` under src/cluster has its golden files listed above.
    let cluster_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cluster");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&cluster_dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("pub fn render_") {
                let name = &rest[..rest.find(['(', '<']).unwrap()];
                found.push(format!("render_{name}"));
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = CLUSTER_GOLDENS.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(
        found,
        listed,
        "the renderers in {} and CLUSTER_GOLDENS differ",
        cluster_dir.display()
    );
    for (f, files) in CLUSTER_GOLDENS {
        for g in files {
            assert!(
                goldens.iter().any(|have| have == g),
                "{f}: golden file {g} is missing"
            );
        }
    }
}
