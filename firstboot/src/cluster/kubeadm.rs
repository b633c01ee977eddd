//! kubeadm configuration files, by the API the pinned release reads ([`KubeVersion::kubeadm_api`]):
//! v1beta4 for ≥ 1.31, v1beta3 for 1.22–1.30 and v1alpha2 (`MasterConfiguration`/`NodeConfiguration`) for the seed's
//! 1.11. Field names follow kubeadm's Go types exactly (`cmd/kubeadm/app/apis/kubeadm/<version>/types.go`): kubeadm
//! rejects unknown fields.
//!
//! What every file gets: `controlPlaneEndpoint` = VIP:16443 (so admin.conf, kubelet.conf and kube-proxy's kubeconfig
//! all point at the VIP from the start), certSANs = VIP, its name and every master's name and IP, the bootstrap token
//! of the secrets with the cluster's long TTL, the pinned version, the offline `imageRepository`, the pod and service
//! subnets, and a `unix://` CRI socket.
//!
//! NOTE(controlplane): the join configuration carries no `controlPlane.certificateKey`. With a key, `kubeadm join`
//! downloads the `kubeadm-certs` Secret, which `--upload-certs` creates and garbage collection deletes two hours
//! later; every master already has the CA files (written from its node config before kubeadm runs), so joining
//! without the key works at any time, which is what rebuild by reimaging needs. The key stays in the
//! InitConfiguration (unused unless someone runs `kubeadm init phase upload-certs`).
//!
//! These files hold the token (and the certificate key): they are written 0600 and passed with `--config`.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use kubeha_model::cluster::{CgroupVersion, Node, Runtime};
use kubeha_model::kube::ports::{APISERVER, ETCD_CLIENT, ETCD_PEER};
use kubeha_model::kube::KubeadmApi;
use kubeha_model::Cluster;

/// Where kubeha keeps the kubeadm files (0700: they hold the token).
pub const CONFIG_DIR: &str = "/etc/kubeha";
/// The init configuration.
pub const INIT_CONFIG: &str = "/etc/kubeha/kubeadm-init.yaml";
/// The join configuration.
pub const JOIN_CONFIG: &str = "/etc/kubeha/kubeadm-join.yaml";
/// The token group kubeadm's RBAC rules allow to join.
pub const TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// The etcd data directory.
pub const ETCD_DATA_DIR: &str = "/var/lib/etcd";
/// kubeadm patches for this node (`kubeadm init|join` read them through the config's `patches.directory` when this
/// directory exists on the node): e.g. `kubeletconfiguration+strategic.yaml` to change this node's kubelet settings.
pub const PATCHES_DIR: &str = "/etc/kubeha/kubeadm-patches";
/// The preflight check that errors on a cgroup v1 host from Kubernetes 1.35 (k8s.io/system-validators' cgroup
/// validator, run as kubeadm's `SystemVerification`).
pub const CGROUP_V1_PREFLIGHT: &str = "SystemVerification";

/// The join material the files embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Bootstrap token.
    pub token: String,
    /// `sha256:<hex>` of the cluster CA's public key.
    pub ca_cert_hash: String,
    /// kubeadm's certificate key (masters only).
    pub certificate_key: Option<String>,
}

/// For 1.11 only: how this master's etcd joins (1.11's kubeadm has no `join --control-plane`, so the etcd flags say
/// which members exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEtcd {
    /// `--initial-cluster`: `name=https://ip:2380,...`, this member included.
    pub initial_cluster: String,
    /// `new` for the first master, `existing` for the others.
    pub state: &'static str,
}

/// A JSON string is a valid YAML double-quoted scalar: used for every value YAML could read as a number or bool.
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

fn ttl(c: &Cluster) -> String {
    match c.cluster.token_ttl_hours {
        0 => "0s".into(),
        h => format!("{h}h0m0s"),
    }
}

fn api(c: &Cluster) -> Result<KubeadmApi> {
    let v = c.cluster.kubernetes_version;
    v.support().map_err(anyhow::Error::msg)?;
    match v.kubeadm_api() {
        a @ (KubeadmApi::V1Beta4 | KubeadmApi::V1Beta3 | KubeadmApi::V1Alpha2) => Ok(a),
        a => bail!(
            "cluster.kubernetes-version {v}: kubeadm API {} is not rendered by kubeha",
            a.api_version()
        ),
    }
}

/// The API server certificate's extra names: the VIP, its name, every master's name and IP.
pub fn cert_sans(c: &Cluster) -> Vec<String> {
    let mut v = vec![c.endpoint.vip.to_string(), c.endpoint.name.clone()];
    if c.endpoint.name != kubeha_model::cluster::DEFAULT_VIP_NAME {
        v.push(kubeha_model::cluster::DEFAULT_VIP_NAME.to_string());
    }
    for m in &c.masters {
        v.push(m.name.clone());
        v.push(m.ip.to_string());
    }
    v
}

/// The CRI socket in the form this kubeadm wants. kubeadm 1.11 compares the socket with its default path to decide
/// whether Docker is the runtime, so it gets the bare path there; every later release gets the `unix://` URL.
fn cri_socket(c: &Cluster, a: KubeadmApi) -> String {
    let s = c.cluster.container_runtime.cri_socket();
    if a == KubeadmApi::V1Alpha2 && c.cluster.container_runtime == Runtime::Docker {
        return s.trim_start_matches("unix://").to_string();
    }
    s.to_string()
}

/// Whether the nodes keep cgroup v1 under a kubelet that refuses it by default (`[install] cgroup = "v1"`).
fn cgroup_v1_kept(c: &Cluster) -> bool {
    c.install.cgroup == Some(CgroupVersion::V1) && c.cluster.kubernetes_version.refuses_cgroup_v1()
}

fn node_registration(w: &mut String, c: &Cluster, me: &Node, a: KubeadmApi) {
    writeln!(w, "nodeRegistration:").unwrap();
    writeln!(w, "  name: {}", me.name).unwrap();
    writeln!(w, "  criSocket: {}", cri_socket(c, a)).unwrap();
    if a != KubeadmApi::V1Alpha2 {
        writeln!(w, "  imagePullPolicy: IfNotPresent").unwrap();
    }
    if cgroup_v1_kept(c) {
        // Only this check, by name: on cgroup v1 it is the one that cannot pass; the kubelet is told below.
        list(
            w,
            "  ",
            "ignorePreflightErrors",
            &[CGROUP_V1_PREFLIGHT.to_string()],
        );
    }
    writeln!(w, "  kubeletExtraArgs:").unwrap();
    if a == KubeadmApi::V1Beta4 {
        writeln!(w, "  - name: node-ip\n    value: {}", me.ip).unwrap();
    } else {
        writeln!(w, "    node-ip: {}", me.ip).unwrap();
    }
}

fn bootstrap_tokens(w: &mut String, c: &Cluster, cred: &Credentials) {
    writeln!(w, "bootstrapTokens:").unwrap();
    writeln!(w, "- token: {}", q(&cred.token)).unwrap();
    writeln!(
        w,
        "  description: \"kubeha: workers and rebuilt masters join with this token\""
    )
    .unwrap();
    writeln!(w, "  ttl: {}", ttl(c)).unwrap();
    writeln!(w, "  usages:\n  - signing\n  - authentication").unwrap();
    writeln!(w, "  groups:\n  - {TOKEN_GROUP}").unwrap();
}

fn list(w: &mut String, indent: &str, key: &str, items: &[String]) {
    writeln!(w, "{indent}{key}:").unwrap();
    for i in items {
        writeln!(w, "{indent}- {}", q(i)).unwrap();
    }
}

fn patches(w: &mut String, dir: Option<&str>) {
    if let Some(d) = dir {
        writeln!(w, "patches:\n  directory: {}", q(d)).unwrap();
    }
}

/// Renders the configuration `kubeadm init --config` reads on the initializing master `me` (for 1.11: its
/// `MasterConfiguration`, starting a new one-member etcd cluster). `patches_dir`: this node's kubeadm patches
/// ([`PATCHES_DIR`] when it exists on the node).
pub fn render_init(
    c: &Cluster,
    me: &Node,
    cred: &Credentials,
    patches_dir: Option<&str>,
) -> Result<String> {
    let a = api(c)?;
    let mut s = String::new();
    let w = &mut s;
    if a == KubeadmApi::V1Alpha2 {
        let legacy = LegacyEtcd {
            initial_cluster: format!("{}=https://{}:{ETCD_PEER}", me.name, me.ip),
            state: "new",
        };
        return render_master_v1alpha2(c, me, cred, &legacy);
    }
    writeln!(
        w,
        "# Written by kubeha-firstboot (kubeadm init). Holds the bootstrap token: keep 0600."
    )
    .unwrap();
    writeln!(
        w,
        "apiVersion: {}\nkind: InitConfiguration",
        a.api_version()
    )
    .unwrap();
    bootstrap_tokens(w, c, cred);
    writeln!(
        w,
        "localAPIEndpoint:\n  advertiseAddress: {}\n  bindPort: {APISERVER}",
        me.ip
    )
    .unwrap();
    node_registration(w, c, me, a);
    if let Some(k) = &cred.certificate_key {
        writeln!(w, "certificateKey: {}", q(k)).unwrap();
    }
    patches(w, patches_dir);
    writeln!(w, "---").unwrap();
    render_cluster_configuration(w, c, a);
    if cgroup_v1_kept(c) {
        // Cluster-wide (kubeadm uploads it as the kubelet-config ConfigMap that joining nodes download).
        writeln!(
            w,
            "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfailCgroupV1: false"
        )
        .unwrap();
    }
    Ok(s)
}

fn render_cluster_configuration(w: &mut String, c: &Cluster, a: KubeadmApi) {
    writeln!(
        w,
        "apiVersion: {}\nkind: ClusterConfiguration",
        a.api_version()
    )
    .unwrap();
    writeln!(w, "clusterName: {}", c.cluster.name).unwrap();
    writeln!(
        w,
        "kubernetesVersion: {}",
        c.cluster.kubernetes_version.tag()
    )
    .unwrap();
    writeln!(
        w,
        "controlPlaneEndpoint: {}",
        q(&c.control_plane_endpoint())
    )
    .unwrap();
    writeln!(w, "imageRepository: {}", c.image_repository()).unwrap();
    writeln!(w, "certificatesDir: /etc/kubernetes/pki").unwrap();
    writeln!(w, "networking:").unwrap();
    writeln!(w, "  podSubnet: {}", c.networking.pod_subnet).unwrap();
    writeln!(w, "  serviceSubnet: {}", c.networking.service_subnet).unwrap();
    writeln!(w, "  dnsDomain: {}", c.networking.dns_domain).unwrap();
    writeln!(w, "apiServer:").unwrap();
    list(w, "  ", "certSANs", &cert_sans(c));
    writeln!(w, "etcd:\n  local:\n    dataDir: {ETCD_DATA_DIR}").unwrap();
}

/// Renders the configuration `kubeadm join --config` reads. `control_plane`: join as a master (v1beta3/v1beta4; 1.11
/// masters use [`render_master_v1alpha2`] and kubeadm's phases instead).
pub fn render_join(
    c: &Cluster,
    me: &Node,
    cred: &Credentials,
    control_plane: bool,
    patches_dir: Option<&str>,
) -> Result<String> {
    let a = api(c)?;
    let mut s = String::new();
    let w = &mut s;
    writeln!(
        w,
        "# Written by kubeha-firstboot (kubeadm join). Holds the bootstrap token: keep 0600."
    )
    .unwrap();
    if a == KubeadmApi::V1Alpha2 {
        if control_plane {
            bail!("kubeadm 1.11 has no control-plane join: masters are rendered with render_master_v1alpha2");
        }
        writeln!(
            w,
            "apiVersion: {}\nkind: NodeConfiguration",
            a.api_version()
        )
        .unwrap();
        writeln!(w, "token: {}", q(&cred.token)).unwrap();
        list(
            w,
            "",
            "discoveryTokenAPIServers",
            &[c.control_plane_endpoint()],
        );
        list(
            w,
            "",
            "discoveryTokenCACertHashes",
            std::slice::from_ref(&cred.ca_cert_hash),
        );
        node_registration(w, c, me, a);
        return Ok(s);
    }
    writeln!(
        w,
        "apiVersion: {}\nkind: JoinConfiguration",
        a.api_version()
    )
    .unwrap();
    writeln!(w, "caCertPath: /etc/kubernetes/pki/ca.crt").unwrap();
    writeln!(w, "discovery:\n  bootstrapToken:").unwrap();
    writeln!(w, "    token: {}", q(&cred.token)).unwrap();
    writeln!(
        w,
        "    apiServerEndpoint: {}",
        q(&c.control_plane_endpoint())
    )
    .unwrap();
    list(
        w,
        "    ",
        "caCertHashes",
        std::slice::from_ref(&cred.ca_cert_hash),
    );
    node_registration(w, c, me, a);
    if control_plane {
        writeln!(
            w,
            "controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: {}\n    bindPort: {APISERVER}",
            me.ip
        )
        .unwrap();
    }
    patches(w, patches_dir);
    Ok(s)
}

/// kubeadm 1.11's `MasterConfiguration` for master `me`, with its stacked etcd's membership flags (the kubeadm 1.11
/// HA guide's layout: every master has its own file; the first starts a new etcd cluster, the others join it).
pub fn render_master_v1alpha2(
    c: &Cluster,
    me: &Node,
    cred: &Credentials,
    etcd: &LegacyEtcd,
) -> Result<String> {
    let a = api(c)?;
    if a != KubeadmApi::V1Alpha2 {
        bail!("render_master_v1alpha2 is for Kubernetes 1.11 only");
    }
    let mut s = String::new();
    let w = &mut s;
    writeln!(
        w,
        "# Written by kubeha-firstboot (kubeadm 1.11). Holds the bootstrap token: keep 0600."
    )
    .unwrap();
    writeln!(
        w,
        "apiVersion: {}\nkind: MasterConfiguration",
        a.api_version()
    )
    .unwrap();
    writeln!(w, "clusterName: {}", c.cluster.name).unwrap();
    writeln!(
        w,
        "kubernetesVersion: {}",
        c.cluster.kubernetes_version.tag()
    )
    .unwrap();
    writeln!(w, "imageRepository: {}", c.image_repository()).unwrap();
    writeln!(w, "certificatesDir: /etc/kubernetes/pki").unwrap();
    writeln!(
        w,
        "api:\n  advertiseAddress: {}\n  controlPlaneEndpoint: {}\n  bindPort: {APISERVER}",
        me.ip,
        q(&c.control_plane_endpoint())
    )
    .unwrap();
    list(w, "", "apiServerCertSANs", &cert_sans(c));
    bootstrap_tokens(w, c, cred);
    node_registration(w, c, me, a);
    writeln!(w, "networking:").unwrap();
    writeln!(w, "  podSubnet: {}", c.networking.pod_subnet).unwrap();
    writeln!(w, "  serviceSubnet: {}", c.networking.service_subnet).unwrap();
    writeln!(w, "  dnsDomain: {}", c.networking.dns_domain).unwrap();
    writeln!(
        w,
        "etcd:\n  local:\n    dataDir: {ETCD_DATA_DIR}\n    extraArgs:"
    )
    .unwrap();
    for (k, v) in [
        ("name", me.name.clone()),
        (
            "listen-client-urls",
            format!(
                "https://127.0.0.1:{ETCD_CLIENT},https://{}:{ETCD_CLIENT}",
                me.ip
            ),
        ),
        (
            "advertise-client-urls",
            format!("https://{}:{ETCD_CLIENT}", me.ip),
        ),
        ("listen-peer-urls", format!("https://{}:{ETCD_PEER}", me.ip)),
        (
            "initial-advertise-peer-urls",
            format!("https://{}:{ETCD_PEER}", me.ip),
        ),
        ("initial-cluster", etcd.initial_cluster.clone()),
        ("initial-cluster-state", etcd.state.to_string()),
    ] {
        writeln!(w, "      {k}: {}", q(&v)).unwrap();
    }
    list(
        w,
        "    ",
        "serverCertSANs",
        &[me.name.clone(), me.ip.to_string()],
    );
    list(
        w,
        "    ",
        "peerCertSANs",
        &[me.name.clone(), me.ip.to_string()],
    );
    Ok(s)
}
