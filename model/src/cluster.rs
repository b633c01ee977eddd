//! `cluster.toml`: one HA cluster, as the kubeadm-ha guide lays it out (keepalived VIP + nginx :16443 in front of
//! three stacked-etcd masters, workers joining through the VIP).
//!
//! Every table rejects unknown keys, so a typo is an error naming the key and its line, never a silent default.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use crate::el::CgroupVersion;
use crate::version::KubeVersion;
use crate::{Error, Result};

mod load;

/// The embedded default: the kubeadm-ha topology with a current Kubernetes release. `kubeha config init` prints it.
pub const DEFAULT_CLUSTER_TOML: &str = include_str!("default-cluster.toml");

/// The well-known name of the VIP (kubeadm-ha guide: `k8s-master-lb`).
pub const DEFAULT_VIP_NAME: &str = "k8s-master-lb";

/// The load balancer's port when cluster.toml names none; public as [`crate::kube::ports::LB_DEFAULT`].
pub(crate) const DEFAULT_LB_PORT: u16 = 16443;

/// A whole cluster description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Cluster {
    /// Cluster-wide settings.
    pub cluster: ClusterSpec,
    /// The VIP and load balancer in front of the apiservers.
    pub endpoint: Endpoint,
    /// Control-plane nodes (stacked etcd): an odd number, at least one.
    #[serde(default)]
    pub masters: Vec<Node>,
    /// Worker nodes.
    #[serde(default)]
    pub workers: Vec<Node>,
    /// Pod, service and node networks.
    #[serde(default)]
    pub networking: Networking,
    /// The CNI plugin.
    #[serde(default)]
    pub cni: Cni,
    /// Time synchronisation.
    #[serde(default)]
    pub ntp: Ntp,
    /// An HTTP proxy for the container runtime (for clusters that have one; the bundle does not need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
    /// Unattended OS installation settings (kickstart).
    #[serde(default)]
    pub install: Install,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterSpec {
    /// Cluster name (RFC 1123 label); kubeadm's `clusterName`.
    pub name: String,
    /// The exact Kubernetes release, e.g. `1.31.4` (`1.11.1` for the seed).
    pub kubernetes_version: KubeVersion,
    /// The container runtime on every node.
    #[serde(default)]
    pub container_runtime: Runtime,
    /// The registry prefix kubeadm pulls from (its `imageRepository`). Default: the upstream one for the release
    /// (`k8s.gcr.io` or `registry.k8s.io`), which is what the bundle's images are named after, so nodes find them
    /// preloaded and pull nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    /// Extra registry mirrors for the container runtime, `registry = "mirror URL"` (optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registry_mirrors: Vec<RegistryMirror>,
    /// Token TTL for the bootstrap token, in hours; long so that reimaged nodes can rejoin (0 = never expires).
    #[serde(default = "default_token_ttl_hours")]
    pub token_ttl_hours: u32,
}

fn default_token_ttl_hours() -> u32 {
    24 * 365
}

/// A registry mirror: pull `registry`'s images from `endpoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RegistryMirror {
    /// The registry host being mirrored, e.g. `registry.k8s.io`.
    pub registry: String,
    /// The mirror's URL, e.g. `https://mirror.example:5000`.
    pub endpoint: String,
}

/// The container runtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// containerd with the CRI plugin (SystemdCgroup).
    #[default]
    Containerd,
    /// Docker (dockershim): the seed's era, Kubernetes before 1.24 only.
    Docker,
}

impl Runtime {
    /// The CRI socket kubeadm is given (always with its `unix://` scheme).
    pub fn cri_socket(&self) -> &'static str {
        match self {
            Runtime::Containerd => "unix:///run/containerd/containerd.sock",
            Runtime::Docker => "unix:///var/run/dockershim.sock",
        }
    }
}

/// `[endpoint]`: the VIP held by keepalived and the nginx TCP load balancer on every master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Endpoint {
    /// The virtual IP, in the masters' subnet and not any node's address.
    pub vip: Ipv4Addr,
    /// The VIP's host name, written to every /etc/hosts.
    #[serde(default = "default_vip_name")]
    pub name: String,
    /// The load balancer's port (nginx stream on every master), 16443 in the guide; apiservers keep 6443.
    #[serde(default = "default_lb_port")]
    pub port: u16,
    /// The VRRP virtual router id (1-255), unique on the masters' layer-2 segment.
    #[serde(default = "default_router_id")]
    pub vrrp_router_id: u16,
    /// The interface keepalived binds; default: the one holding the master's IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

fn default_vip_name() -> String {
    DEFAULT_VIP_NAME.to_string()
}
fn default_lb_port() -> u16 {
    DEFAULT_LB_PORT
}
fn default_router_id() -> u16 {
    51
}

/// A master or worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Node {
    /// Host name and Kubernetes Node name (RFC 1123).
    pub name: String,
    /// The node's address on the cluster network.
    pub ip: Ipv4Addr,
    /// The MAC of the install NIC (optional): used to pick the node's PXE entry and to find its role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The install disk (e.g. `sda`, `nvme0n1`, `/dev/disk/by-id/...`); default: the first non-removable disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
}

/// `[networking]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Networking {
    /// Pod network CIDR (calico's IP pool and kubeadm's `podSubnet`).
    #[serde(default = "default_pod_subnet")]
    pub pod_subnet: Ipv4Net,
    /// Service CIDR (kubeadm's `serviceSubnet`).
    #[serde(default = "default_service_subnet")]
    pub service_subnet: Ipv4Net,
    /// Cluster DNS domain.
    #[serde(default = "default_dns_domain")]
    pub dns_domain: String,
    /// Prefix length of the nodes' network (the masters and the VIP share one subnet).
    #[serde(default = "default_node_prefix")]
    pub node_prefix: u8,
    /// Default gateway for static addressing (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// Name servers for static addressing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<Ipv4Addr>,
}

impl Default for Networking {
    fn default() -> Self {
        Networking {
            pod_subnet: default_pod_subnet(),
            service_subnet: default_service_subnet(),
            dns_domain: default_dns_domain(),
            node_prefix: default_node_prefix(),
            gateway: None,
            nameservers: Vec::new(),
        }
    }
}

fn default_pod_subnet() -> Ipv4Net {
    "10.244.0.0/16".parse().expect("constant CIDR")
}
fn default_service_subnet() -> Ipv4Net {
    "10.96.0.0/12".parse().expect("constant CIDR")
}
fn default_dns_domain() -> String {
    "cluster.local".to_string()
}
fn default_node_prefix() -> u8 {
    24
}

/// `[cni]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Cni {
    /// The plugin.
    #[serde(default)]
    pub plugin: CniPlugin,
    /// The plugin's version (its images are bundled under this tag).
    #[serde(default = "default_calico_version")]
    pub version: String,
    /// The manifest's file name inside the bundle's `files/`.
    #[serde(default = "default_cni_manifest")]
    pub manifest: String,
}

impl Default for Cni {
    fn default() -> Self {
        Cni {
            plugin: CniPlugin::Calico,
            version: default_calico_version(),
            manifest: default_cni_manifest(),
        }
    }
}

/// The default bundle profile's Calico (mirror/profiles/el9-containerd-calico.toml; mirror/tests/cni.rs keeps the
/// two equal).
fn default_calico_version() -> String {
    "v3.32.1".to_string()
}
fn default_cni_manifest() -> String {
    "calico.yaml".to_string()
}

/// Supported CNI plugins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CniPlugin {
    /// Project Calico (the guide's choice).
    #[default]
    Calico,
}

/// `[ntp]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Ntp {
    /// NTP servers (chrony); empty = leave time sync as installed.
    #[serde(default)]
    pub servers: Vec<String>,
}

/// `[proxy]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Proxy {
    /// `HTTP_PROXY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// `HTTPS_PROXY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<String>,
    /// `NO_PROXY` entries; node IPs, the VIP and the pod/service CIDRs are always added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_proxy: Vec<String>,
}

/// `[install]`: what the kickstart needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Install {
    /// The Enterprise Linux major release the nodes run (7, 8 or 9).
    #[serde(default = "default_el")]
    pub el: u8,
    /// Time zone (tz database name).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// SSH public keys for root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_ssh_keys: Vec<String>,
    /// A crypt(3) hash for root's password (`$6$...`); never a plain password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_password_hash: Option<String>,
    /// Keyboard layout.
    #[serde(default = "default_keyboard")]
    pub keyboard: String,
    /// Language.
    #[serde(default = "default_lang")]
    pub lang: String,
    /// The cgroup hierarchy the nodes run Kubernetes on, where the release and the EL default disagree: `"v1"` keeps
    /// cgroup v1 with a kubelet ≥ 1.35 (`failCgroupV1: false`, kubeadm's `SystemVerification` preflight error
    /// ignored by name; on EL9 the kickstart adds `systemd.unified_cgroup_hierarchy=0`); `"v2"` on EL8 boots the
    /// unified hierarchy (the kickstart adds `systemd.unified_cgroup_hierarchy=1`); unset = the EL release's default
    /// ([`CgroupVersion::el_default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupVersion>,
}

impl Install {
    /// The hierarchy the nodes run: the `cgroup` choice, else the EL release's default.
    pub fn effective_cgroup(&self) -> CgroupVersion {
        self.cgroup
            .unwrap_or_else(|| CgroupVersion::el_default(self.el))
    }
}

impl Default for Install {
    fn default() -> Self {
        Install {
            el: default_el(),
            timezone: default_timezone(),
            root_ssh_keys: Vec::new(),
            root_password_hash: None,
            keyboard: default_keyboard(),
            lang: default_lang(),
            cgroup: None,
        }
    }
}

fn default_el() -> u8 {
    9
}
fn default_timezone() -> String {
    "UTC".to_string()
}
fn default_keyboard() -> String {
    "us".to_string()
}
fn default_lang() -> String {
    "en_US.UTF-8".to_string()
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Control plane: apiserver, stacked etcd, keepalived + nginx.
    Master,
    /// Worker.
    Worker,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Master => "master",
            Role::Worker => "worker",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "master" | "control-plane" => Ok(Role::Master),
            "worker" | "node" => Ok(Role::Worker),
            _ => Err(format!("'{s}' is not a role: expected master or worker")),
        }
    }
}

impl Cluster {
    /// Parses `cluster.toml` text without validating it; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Cluster> {
        toml::from_str(text).map_err(|e| Error::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })
    }

    /// The embedded default cluster.
    pub fn default_cluster() -> Cluster {
        Cluster::parse(DEFAULT_CLUSTER_TOML, "embedded default").expect("embedded default parses")
    }

    /// Serializes back to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("cluster serializes")
    }

    /// Every node, masters first, with its role.
    pub fn nodes(&self) -> impl Iterator<Item = (Role, &Node)> {
        self.masters
            .iter()
            .map(|n| (Role::Master, n))
            .chain(self.workers.iter().map(|n| (Role::Worker, n)))
    }

    /// Finds a node by name.
    pub fn node(&self, name: &str) -> Option<(Role, &Node)> {
        self.nodes().find(|(_, n)| n.name == name)
    }

    /// The network the masters (and the VIP) live in.
    pub fn node_network(&self) -> Option<Ipv4Net> {
        let first = self.masters.first()?;
        Ipv4Net::new(first.ip, self.networking.node_prefix)
            .ok()
            .map(|n| n.trunc())
    }

    /// The apiserver endpoint every kubeconfig uses: `VIP:port`.
    pub fn control_plane_endpoint(&self) -> String {
        format!("{}:{}", self.endpoint.vip, self.endpoint.port)
    }

    /// kubeadm's `imageRepository`: the override, or the upstream default for the release.
    pub fn image_repository(&self) -> String {
        self.cluster.image_repository.clone().unwrap_or_else(|| {
            crate::version::default_image_repository(&self.cluster.kubernetes_version).to_string()
        })
    }
}

/// Normalizes a MAC to lowercase colon form (`52:54:00:12:34:56`); accepts `-` separators.
pub fn normalize_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}
