//! The REAL kubeadm judges what the agent renders: `kubeadm config validate --config F` (kubeadm's own decoding,
//! defaulting and validation, unknown fields refused) on every init/join file `cluster::kubeadm` renders, for the
//! default release with the kubeadm of that release, and for a v1beta3-era release with the kubeadm of that era.
//! Both binaries come from `make k8s` / `make k8s-v1beta3` (built from k8s.io/kubernetes); `make unit` builds them
//! first and passes their directories in KUBEHA_K8S_BIN and KUBEHA_K8S_V1BETA3_BIN. Without them this test fails and
//! says which make target builds them: it never passes without having run kubeadm.

use std::path::PathBuf;
use std::process::Command;

use kubeha_firstboot::cluster::kubeadm::{self, Credentials};
use kubeha_model::cluster::CgroupVersion;
use kubeha_model::kube::{KubeVersion, NEWEST_CHECKED_RELEASE};
use kubeha_model::Cluster;

/// The v1beta3-era release whose kubeadm `make k8s-v1beta3` builds.
const V1BETA3_RELEASE: KubeVersion = KubeVersion::new(1, 30, 14);

fn kubeadm(env: &str, v: KubeVersion, target: &str) -> PathBuf {
    let dir = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(format!(".cache/kubeha/k8s/v{v}/bin"))
    });
    let k = dir.join("kubeadm");
    assert!(
        k.is_file(),
        "no kubeadm v{v} at {} (`make {target}` builds it; {env} names its directory)",
        k.display()
    );
    let out = Command::new(&k)
        .args(["version", "-o", "short"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("v{v}"),
        "{} version",
        k.display()
    );
    k
}

/// The file's documents, as kubeadm splits them.
fn docs(text: &str) -> Vec<serde_yaml::Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .collect()
}

fn cred(master: bool) -> Credentials {
    Credentials {
        token: "abcdef.0123456789abcdef".into(),
        ca_cert_hash: format!("sha256:{}", "ab".repeat(32)),
        certificate_key: master.then(|| "cd".repeat(32)),
    }
}

/// Every file the agent can hand kubeadm for cluster `c`: init, control-plane join, worker join, with and without
/// this node's patches directory.
fn rendered(c: &Cluster) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for patches in [None, Some(kubeadm::PATCHES_DIR)] {
        let p = if patches.is_some() { "+patches" } else { "" };
        v.push((
            format!("init{p}"),
            kubeadm::render_init(c, &c.masters[0], &cred(true), patches).unwrap(),
        ));
        v.push((
            format!("join-master{p}"),
            kubeadm::render_join(c, &c.masters[1], &cred(true), true, patches).unwrap(),
        ));
        v.push((
            format!("join-worker{p}"),
            kubeadm::render_join(c, &c.workers[0], &cred(false), false, patches).unwrap(),
        ));
    }
    v
}

fn validate(kubeadm: &PathBuf, c: &Cluster, what: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    // The patches directory must exist for kubeadm to read it.
    let patches = dir.path().join("patches");
    std::fs::create_dir(&patches).unwrap();
    let mut n = 0;
    for (name, text) in rendered(c) {
        let text = text.replace(kubeadm::PATCHES_DIR, patches.to_str().unwrap());
        let f = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&f, &text).unwrap();
        let out = Command::new(kubeadm)
            .args(["config", "validate", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.trim_end().ends_with("ok"),
            "kubeadm config validate refused the {what} {name} file (exit {:?}):\n{}{}\n--- the file:\n{text}",
            out.status.code(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        n += 1;
    }
    n
}

#[test]
fn real_kubeadm_accepts_every_config_for_the_default_release() {
    let k = kubeadm("KUBEHA_K8S_BIN", NEWEST_CHECKED_RELEASE, "k8s");
    let mut c = Cluster::default_cluster();
    assert_eq!(
        c.cluster.kubernetes_version, NEWEST_CHECKED_RELEASE,
        "the default cluster's release"
    );
    let n = validate(&k, &c, "default (cgroup v2)");
    // The cgroup v1 choice adds a KubeletConfiguration document and a named preflight exception.
    c.install.cgroup = Some(CgroupVersion::V1);
    let init = kubeadm::render_init(&c, &c.masters[0], &cred(true), None).unwrap();
    let d = docs(&init);
    assert!(
        d[2]["kind"] == "KubeletConfiguration"
            && d[2]["failCgroupV1"] == false
            && d[0]["nodeRegistration"]["ignorePreflightErrors"][0] == "SystemVerification",
        "{init}"
    );
    let m = validate(&k, &c, "cgroup v1");
    eprintln!(
        "kubeadm {NEWEST_CHECKED_RELEASE} config validate: {} files ok",
        n + m
    );
}

#[test]
fn real_kubeadm_accepts_every_config_for_a_v1beta3_release() {
    let k = kubeadm("KUBEHA_K8S_V1BETA3_BIN", V1BETA3_RELEASE, "k8s-v1beta3");
    let mut c = Cluster::default_cluster();
    c.cluster.kubernetes_version = V1BETA3_RELEASE;
    for (_, text) in rendered(&c) {
        assert!(
            docs(&text)
                .iter()
                .filter(|d| d["apiVersion"] != "kubelet.config.k8s.io/v1beta1")
                .all(|d| d["apiVersion"] == "kubeadm.k8s.io/v1beta3"),
            "{text}"
        );
    }
    let n = validate(&k, &c, "v1beta3");
    eprintln!("kubeadm {V1BETA3_RELEASE} config validate: {n} files ok");
}
