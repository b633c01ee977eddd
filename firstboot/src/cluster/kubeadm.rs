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
//!
//! Each document is serialized from the typed structs of its `types` module (kubeadm's Go types, field by field, per API
//! version) as a JSON document: JSON is YAML, kubeadm reads it like any YAML document, and every string comes out
//! quoted, so no value (a node named `on`, an all-digit key) can be read back as a bool or a number by kubeadm's
//! YAML 1.1 decoder. Documents are joined by `---` lines, after a `#` comment line.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use kubeha_model::cluster::{CgroupVersion, Node, Runtime};
use kubeha_model::kube::ports::{APISERVER, ETCD_CLIENT, ETCD_PEER};
use kubeha_model::kube::KubeadmApi;
use kubeha_model::Cluster;
use serde::Serialize;

/// Where kubeha keeps the kubeadm files (0700: they hold the token).
pub const CONFIG_DIR: &str = "/etc/kubeha";
/// The init configuration.
pub const INIT_CONFIG: &str = "/etc/kubeha/kubeadm-init.yaml";
/// The join configuration.
pub const JOIN_CONFIG: &str = "/etc/kubeha/kubeadm-join.yaml";
/// The apiserver's static pod manifest (kubeadm writes it; the steps and keepalived's check script look for it).
pub const APISERVER_MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
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

/// kubeadm's configuration types, transcribed from `cmd/kubeadm/app/apis/kubeadm/{v1alpha2,v1beta3,v1beta4}/types.go`
/// (and the kubelet's `KubeletConfiguration`): only the fields kubeha sets, with kubeadm's JSON names.
mod types {
    use std::collections::BTreeMap;

    use serde::Serialize;

    /// `BootstrapToken` (every version).
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BootstrapToken {
        pub token: String,
        pub description: &'static str,
        pub ttl: String,
        pub usages: Vec<&'static str>,
        pub groups: Vec<&'static str>,
    }

    /// `Arg` of v1beta4's `extraArgs` lists.
    #[derive(Debug, Serialize)]
    pub struct Arg {
        pub name: &'static str,
        pub value: String,
    }

    /// `kubeletExtraArgs`: a map up to v1beta3, a list of [`Arg`] from v1beta4.
    #[derive(Debug, Serialize)]
    #[serde(untagged)]
    pub enum ExtraArgs {
        Map(BTreeMap<&'static str, String>),
        List(Vec<Arg>),
    }

    /// `NodeRegistrationOptions`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct NodeRegistration {
        pub name: String,
        pub cri_socket: String,
        /// v1beta3 and later.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub image_pull_policy: Option<&'static str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub ignore_preflight_errors: Vec<&'static str>,
        pub kubelet_extra_args: ExtraArgs,
    }

    /// `APIEndpoint`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ApiEndpoint {
        pub advertise_address: String,
        pub bind_port: u16,
    }

    /// `Patches` (v1beta3 and later).
    #[derive(Debug, Serialize)]
    pub struct Patches {
        pub directory: String,
    }

    /// v1beta3/v1beta4 `InitConfiguration`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct InitConfiguration {
        pub api_version: &'static str,
        pub kind: &'static str,
        pub bootstrap_tokens: Vec<BootstrapToken>,
        #[serde(rename = "localAPIEndpoint")]
        pub local_api_endpoint: ApiEndpoint,
        pub node_registration: NodeRegistration,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub certificate_key: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub patches: Option<Patches>,
    }

    /// `Networking`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Networking {
        pub pod_subnet: String,
        pub service_subnet: String,
        pub dns_domain: String,
    }

    /// v1beta3/v1beta4 `APIServer`.
    #[derive(Debug, Serialize)]
    pub struct ApiServer {
        #[serde(rename = "certSANs")]
        pub cert_sans: Vec<String>,
    }

    /// `LocalEtcd` (v1beta3/v1beta4).
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LocalEtcd {
        pub data_dir: &'static str,
    }

    /// `Etcd` (v1beta3/v1beta4).
    #[derive(Debug, Serialize)]
    pub struct Etcd {
        pub local: LocalEtcd,
    }

    /// v1beta3/v1beta4 `ClusterConfiguration`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ClusterConfiguration {
        pub api_version: &'static str,
        pub kind: &'static str,
        pub cluster_name: String,
        pub kubernetes_version: String,
        pub control_plane_endpoint: String,
        pub image_repository: String,
        pub certificates_dir: &'static str,
        pub networking: Networking,
        pub api_server: ApiServer,
        pub etcd: Etcd,
    }

    /// The kubelet's `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1), only for cgroup v1 under a kubelet
    /// that refuses it by default.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct KubeletConfiguration {
        pub api_version: &'static str,
        pub kind: &'static str,
        pub fail_cgroup_v1: bool,
    }

    /// `BootstrapTokenDiscovery`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BootstrapTokenDiscovery {
        pub token: String,
        pub api_server_endpoint: String,
        pub ca_cert_hashes: Vec<String>,
    }

    /// `Discovery`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Discovery {
        pub bootstrap_token: BootstrapTokenDiscovery,
    }

    /// `JoinControlPlane`.
    #[derive(Debug, Serialize)]
    pub struct JoinControlPlane {
        #[serde(rename = "localAPIEndpoint")]
        pub local_api_endpoint: ApiEndpoint,
    }

    /// v1beta3/v1beta4 `JoinConfiguration`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct JoinConfiguration {
        pub api_version: &'static str,
        pub kind: &'static str,
        pub ca_cert_path: &'static str,
        pub discovery: Discovery,
        pub node_registration: NodeRegistration,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub control_plane: Option<JoinControlPlane>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub patches: Option<Patches>,
    }

    /// v1alpha2 `API`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Api {
        pub advertise_address: String,
        pub control_plane_endpoint: String,
        pub bind_port: u16,
    }

    /// v1alpha2 `LocalEtcd`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LegacyLocalEtcd {
        pub data_dir: &'static str,
        pub extra_args: BTreeMap<&'static str, String>,
        #[serde(rename = "serverCertSANs")]
        pub server_cert_sans: Vec<String>,
        #[serde(rename = "peerCertSANs")]
        pub peer_cert_sans: Vec<String>,
    }

    /// v1alpha2 `Etcd`.
    #[derive(Debug, Serialize)]
    pub struct LegacyEtcd {
        pub local: LegacyLocalEtcd,
    }

    /// v1alpha2 `MasterConfiguration` (kubeadm 1.11).
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct MasterConfiguration {
        pub api_version: &'static str,
        pub kind: &'static str,
        pub cluster_name: String,
        pub kubernetes_version: String,
        pub image_repository: String,
        pub certificates_dir: &'static str,
        pub api: Api,
        #[serde(rename = "apiServerCertSANs")]
        pub api_server_cert_sans: Vec<String>,
        pub bootstrap_tokens: Vec<BootstrapToken>,
        pub node_registration: NodeRegistration,
        pub networking: Networking,
        pub etcd: LegacyEtcd,
    }

    /// v1alpha2 `NodeConfiguration` (kubeadm 1.11).
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct NodeConfiguration {
        pub api_version: &'static str,
        pub kind: &'static str,
        pub token: String,
        #[serde(rename = "discoveryTokenAPIServers")]
        pub discovery_token_api_servers: Vec<String>,
        #[serde(rename = "discoveryTokenCACertHashes")]
        pub discovery_token_ca_cert_hashes: Vec<String>,
        pub node_registration: NodeRegistration,
    }
}

use types::*;

/// One document: pretty JSON (which is YAML) and a newline.
fn document<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("kubeadm's types serialize");
    s.push('\n');
    s
}

/// A file: the comment line, then the documents separated by `---` lines.
fn file(comment: &str, docs: &[String]) -> String {
    format!("# {comment}\n{}", docs.join("---\n"))
}

fn node_registration(c: &Cluster, me: &Node, a: KubeadmApi) -> NodeRegistration {
    NodeRegistration {
        name: me.name.clone(),
        cri_socket: cri_socket(c, a),
        image_pull_policy: (a != KubeadmApi::V1Alpha2).then_some("IfNotPresent"),
        // Only this check, by name: on cgroup v1 it is the one that cannot pass; the kubelet is told in the init
        // file's KubeletConfiguration.
        ignore_preflight_errors: if cgroup_v1_kept(c) {
            vec![CGROUP_V1_PREFLIGHT]
        } else {
            Vec::new()
        },
        kubelet_extra_args: if a == KubeadmApi::V1Beta4 {
            ExtraArgs::List(vec![Arg {
                name: "node-ip",
                value: me.ip.to_string(),
            }])
        } else {
            ExtraArgs::Map(BTreeMap::from([("node-ip", me.ip.to_string())]))
        },
    }
}

fn bootstrap_tokens(c: &Cluster, cred: &Credentials) -> Vec<BootstrapToken> {
    vec![BootstrapToken {
        token: cred.token.clone(),
        description: "kubeha: workers and rebuilt masters join with this token",
        ttl: ttl(c),
        usages: vec!["signing", "authentication"],
        groups: vec![TOKEN_GROUP],
    }]
}

fn patches(dir: Option<&str>) -> Option<Patches> {
    dir.map(|d| Patches {
        directory: d.to_string(),
    })
}

fn api_endpoint(me: &Node) -> ApiEndpoint {
    ApiEndpoint {
        advertise_address: me.ip.to_string(),
        bind_port: APISERVER,
    }
}

fn networking(c: &Cluster) -> Networking {
    Networking {
        pod_subnet: c.networking.pod_subnet.to_string(),
        service_subnet: c.networking.service_subnet.to_string(),
        dns_domain: c.networking.dns_domain.clone(),
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
    if a == KubeadmApi::V1Alpha2 {
        let legacy = LegacyEtcd {
            initial_cluster: format!("{}=https://{}:{ETCD_PEER}", me.name, me.ip),
            state: "new",
        };
        return render_master_v1alpha2(c, me, cred, &legacy);
    }
    let mut docs = vec![
        document(&InitConfiguration {
            api_version: a.api_version(),
            kind: "InitConfiguration",
            bootstrap_tokens: bootstrap_tokens(c, cred),
            local_api_endpoint: api_endpoint(me),
            node_registration: node_registration(c, me, a),
            certificate_key: cred.certificate_key.clone(),
            patches: patches(patches_dir),
        }),
        document(&cluster_configuration(c, a)),
    ];
    if cgroup_v1_kept(c) {
        // Cluster-wide (kubeadm uploads it as the kubelet-config ConfigMap that joining nodes download).
        docs.push(document(&KubeletConfiguration {
            api_version: "kubelet.config.k8s.io/v1beta1",
            kind: "KubeletConfiguration",
            fail_cgroup_v1: false,
        }));
    }
    Ok(file(
        "Written by kubeha-firstboot (kubeadm init). Holds the bootstrap token: keep 0600.",
        &docs,
    ))
}

fn cluster_configuration(c: &Cluster, a: KubeadmApi) -> ClusterConfiguration {
    ClusterConfiguration {
        api_version: a.api_version(),
        kind: "ClusterConfiguration",
        cluster_name: c.cluster.name.clone(),
        kubernetes_version: c.cluster.kubernetes_version.tag(),
        control_plane_endpoint: c.control_plane_endpoint(),
        image_repository: c.image_repository(),
        certificates_dir: "/etc/kubernetes/pki",
        networking: networking(c),
        api_server: ApiServer {
            cert_sans: cert_sans(c),
        },
        etcd: Etcd {
            local: LocalEtcd {
                data_dir: ETCD_DATA_DIR,
            },
        },
    }
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
    let comment =
        "Written by kubeha-firstboot (kubeadm join). Holds the bootstrap token: keep 0600.";
    if a == KubeadmApi::V1Alpha2 {
        if control_plane {
            bail!("kubeadm 1.11 has no control-plane join: masters are rendered with render_master_v1alpha2");
        }
        let doc = document(&NodeConfiguration {
            api_version: a.api_version(),
            kind: "NodeConfiguration",
            token: cred.token.clone(),
            discovery_token_api_servers: vec![c.control_plane_endpoint()],
            discovery_token_ca_cert_hashes: vec![cred.ca_cert_hash.clone()],
            node_registration: node_registration(c, me, a),
        });
        return Ok(file(comment, &[doc]));
    }
    let doc = document(&JoinConfiguration {
        api_version: a.api_version(),
        kind: "JoinConfiguration",
        ca_cert_path: "/etc/kubernetes/pki/ca.crt",
        discovery: Discovery {
            bootstrap_token: BootstrapTokenDiscovery {
                token: cred.token.clone(),
                api_server_endpoint: c.control_plane_endpoint(),
                ca_cert_hashes: vec![cred.ca_cert_hash.clone()],
            },
        },
        node_registration: node_registration(c, me, a),
        control_plane: control_plane.then(|| JoinControlPlane {
            local_api_endpoint: api_endpoint(me),
        }),
        patches: patches(patches_dir),
    });
    Ok(file(comment, &[doc]))
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
    let extra_args = BTreeMap::from([
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
    ]);
    let own_sans = vec![me.name.clone(), me.ip.to_string()];
    let doc = document(&MasterConfiguration {
        api_version: a.api_version(),
        kind: "MasterConfiguration",
        cluster_name: c.cluster.name.clone(),
        kubernetes_version: c.cluster.kubernetes_version.tag(),
        image_repository: c.image_repository(),
        certificates_dir: "/etc/kubernetes/pki",
        api: Api {
            advertise_address: me.ip.to_string(),
            control_plane_endpoint: c.control_plane_endpoint(),
            bind_port: APISERVER,
        },
        api_server_cert_sans: cert_sans(c),
        bootstrap_tokens: bootstrap_tokens(c, cred),
        node_registration: node_registration(c, me, a),
        networking: networking(c),
        etcd: types::LegacyEtcd {
            local: LegacyLocalEtcd {
                data_dir: ETCD_DATA_DIR,
                extra_args,
                server_cert_sans: own_sans.clone(),
                peer_cert_sans: own_sans,
            },
        },
    });
    Ok(file(
        "Written by kubeha-firstboot (kubeadm 1.11). Holds the bootstrap token: keep 0600.",
        &[doc],
    ))
}
