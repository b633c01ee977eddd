//! Kubernetes versions and what kubeadm derives from them.
//!
//! kubeha pins an exact patch release (`1.31.4`): the images kubeadm pulls (pause, etcd, CoreDNS) change within a
//! minor release, so everything here is keyed by the full version (kubernetes/minikube
//! `pkg/minikube/constants/constants_kubeadm_images.go`, generated from each kubeadm release).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact Kubernetes release `MAJOR.MINOR.PATCH` (a leading `v` is accepted and dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// Always 1.
    pub major: u32,
    /// Minor release.
    pub minor: u32,
    /// Patch release.
    pub patch: u32,
}

/// The oldest minor that kubeha renders configuration for besides the seed's 1.11 (kubeadm v1beta3).
pub const MIN_MODERN_MINOR: u32 = 22;
/// The newest minor whose kubeadm image list kubeha knows exactly.
pub const MAX_MINOR: u32 = 36;

impl KubeVersion {
    /// Builds a version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KubeVersion {
            major,
            minor,
            patch,
        }
    }

    /// The tag kubeadm uses for its control-plane images: `v1.31.4`.
    pub fn tag(&self) -> String {
        format!("v{self}")
    }

    /// Whether kubeha can render a kubeadm configuration and image list for this release, and if not why.
    pub fn support(&self) -> Result<(), String> {
        if self.major != 1 {
            return Err(format!("Kubernetes {self} is not a 1.x release"));
        }
        match self.minor {
            11 => Ok(()),
            m if (MIN_MODERN_MINOR..=MAX_MINOR).contains(&m) => Ok(()),
            m if m > MAX_MINOR => Err(format!(
                "Kubernetes {self} is newer than the newest release kubeha knows (1.{MAX_MINOR}); \
                 its kubeadm image list is not known"
            )),
            _ => Err(format!(
                "Kubernetes {self} is not supported: use 1.11.x (the seed) or 1.{MIN_MODERN_MINOR}.0 up to 1.{MAX_MINOR}.x"
            )),
        }
    }

    /// The kubeadm configuration API this release reads (kubernetes/kubernetes
    /// `cmd/kubeadm/app/util/config/common.go` `validateSupportedVersion`; v1beta4 from 1.31, PR #125029).
    pub fn kubeadm_api(&self) -> KubeadmApi {
        match self.minor {
            0..=11 => KubeadmApi::V1Alpha2,
            12 => KubeadmApi::V1Alpha3,
            13..=14 => KubeadmApi::V1Beta1,
            15..=21 => KubeadmApi::V1Beta2,
            22..=30 => KubeadmApi::V1Beta3,
            _ => KubeadmApi::V1Beta4,
        }
    }

    /// The kubelet refuses to start on cgroup v1 unless its configuration says `failCgroupV1: false`, and kubeadm's
    /// `SystemVerification` preflight check errors on cgroup v1 (KEP-5573, from 1.35).
    pub fn refuses_cgroup_v1(&self) -> bool {
        self.minor >= 35
    }

    /// dockershim was removed in 1.24: the Docker runtime only works before that.
    pub fn has_dockershim(&self) -> bool {
        self.minor < 24
    }
}

/// kubeadm configuration API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeadmApi {
    /// kubeadm 1.11 (`MasterConfiguration`/`NodeConfiguration`).
    V1Alpha2,
    /// kubeadm 1.12.
    V1Alpha3,
    /// kubeadm 1.13–1.14.
    V1Beta1,
    /// kubeadm 1.15–1.21.
    V1Beta2,
    /// kubeadm 1.22–1.30.
    V1Beta3,
    /// kubeadm 1.31 and newer.
    V1Beta4,
}

impl KubeadmApi {
    /// The `apiVersion` string.
    pub fn api_version(&self) -> &'static str {
        match self {
            KubeadmApi::V1Alpha2 => "kubeadm.k8s.io/v1alpha2",
            KubeadmApi::V1Alpha3 => "kubeadm.k8s.io/v1alpha3",
            KubeadmApi::V1Beta1 => "kubeadm.k8s.io/v1beta1",
            KubeadmApi::V1Beta2 => "kubeadm.k8s.io/v1beta2",
            KubeadmApi::V1Beta3 => "kubeadm.k8s.io/v1beta3",
            KubeadmApi::V1Beta4 => "kubeadm.k8s.io/v1beta4",
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for KubeVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not an exact Kubernetes release like 1.31.4");
        let t = s.strip_prefix('v').unwrap_or(s);
        let mut it = t.split('.');
        let mut num = || -> Result<u32, String> {
            let p = it.next().ok_or_else(bad)?;
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let v = KubeVersion::new(num()?, num()?, num()?);
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl Serialize for KubeVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubeVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The registry kubeadm pulls from by default for this release: `registry.k8s.io` from the December 2022 patch
/// releases on (1.22.17, 1.23.15, 1.24.9, 1.25.0+), `k8s.gcr.io` before (kubernetes/kubernetes
/// PR #109938 and its kubeadm backports #113388, #113393, #113394).
pub fn default_image_repository(v: &KubeVersion) -> &'static str {
    let new = match v.minor {
        0..=21 => false,
        22 => v.patch >= 17,
        23 => v.patch >= 15,
        24 => v.patch >= 9,
        _ => true,
    };
    if new {
        "registry.k8s.io"
    } else {
        "k8s.gcr.io"
    }
}

/// What kubeadm pulls besides its own control-plane images, by release: `(minor, first patch, CoreDNS tag, etcd tag,
/// pause tag)`; a row holds from its patch up to the next row of the same minor. Backports change these within a
/// minor, so the key is the patch release. Source: kubernetes/minikube
/// `pkg/minikube/constants/constants_kubeadm_images.go` @383c3aa4 (2026-08-10), generated by running each kubeadm
/// release's `kubeadm config images list`; spot-checked against kubeadm's `cmd/kubeadm/app/constants/constants.go`.
const IMAGE_TABLE: &[(u32, u32, &str, &str, &str)] = &[
    (22, 0, "v1.8.4", "3.5.0-0", "3.5"),
    (22, 17, "v1.8.4", "3.5.6-0", "3.5"),
    (23, 0, "v1.8.6", "3.5.1-0", "3.6"),
    (23, 14, "v1.8.6", "3.5.5-0", "3.6"),
    (23, 15, "v1.8.6", "3.5.6-0", "3.6"),
    (24, 0, "v1.8.6", "3.5.3-0", "3.7"),
    (24, 8, "v1.8.6", "3.5.5-0", "3.7"),
    (24, 9, "v1.8.6", "3.5.6-0", "3.7"),
    (25, 0, "v1.9.3", "3.5.4-0", "3.8"),
    (25, 4, "v1.9.3", "3.5.5-0", "3.8"),
    (25, 5, "v1.9.3", "3.5.6-0", "3.8"),
    (25, 15, "v1.9.3", "3.5.9-0", "3.8"),
    (26, 0, "v1.9.3", "3.5.6-0", "3.9"),
    (26, 10, "v1.9.3", "3.5.9-0", "3.9"),
    (26, 13, "v1.9.3", "3.5.10-0", "3.9"),
    (27, 0, "v1.10.1", "3.5.7-0", "3.9"),
    (27, 7, "v1.10.1", "3.5.9-0", "3.9"),
    (27, 10, "v1.10.1", "3.5.10-0", "3.9"),
    (27, 12, "v1.10.1", "3.5.12-0", "3.9"),
    (28, 0, "v1.10.1", "3.5.9-0", "3.9"),
    (28, 6, "v1.10.1", "3.5.10-0", "3.9"),
    (28, 8, "v1.10.1", "3.5.12-0", "3.9"),
    (28, 14, "v1.10.1", "3.5.15-0", "3.9"),
    (29, 0, "v1.11.1", "3.5.10-0", "3.9"),
    (29, 3, "v1.11.1", "3.5.12-0", "3.9"),
    (29, 9, "v1.11.1", "3.5.15-0", "3.9"),
    (29, 11, "v1.11.1", "3.5.16-0", "3.9"),
    (30, 0, "v1.11.1", "3.5.12-0", "3.9"),
    (30, 5, "v1.11.3", "3.5.15-0", "3.9"),
    (31, 0, "v1.11.1", "3.5.15-0", "3.10"),
    (31, 1, "v1.11.3", "3.5.15-0", "3.10"),
    (31, 14, "v1.11.3", "3.5.24-0", "3.10"),
    (32, 0, "v1.11.3", "3.5.16-0", "3.10"),
    (32, 10, "v1.11.3", "3.5.24-0", "3.10"),
    (33, 0, "v1.12.0", "3.5.21-0", "3.10"),
    (33, 6, "v1.12.0", "3.5.24-0", "3.10"),
    (34, 0, "v1.12.1", "3.6.4-0", "3.10.1"),
    (34, 2, "v1.12.1", "3.6.5-0", "3.10.1"),
    (35, 0, "v1.13.1", "3.6.6-0", "3.10.1"),
    (36, 0, "v1.14.2", "3.6.8-0", "3.10.2"),
];

/// The newest patch of each minor that [`IMAGE_TABLE`] was checked against: `(minor, patch)`.
const NEWEST_CHECKED: &[(u32, u32)] = &[
    (22, 17),
    (23, 17),
    (24, 17),
    (25, 16),
    (26, 15),
    (27, 16),
    (28, 15),
    (29, 15),
    (30, 14),
    (31, 14),
    (32, 13),
    (33, 13),
    (34, 10),
    (35, 7),
    (36, 3),
];

/// The newest release whose image list kubeha has checked (the default for new clusters and profiles).
pub const NEWEST_CHECKED_RELEASE: KubeVersion = KubeVersion::new(1, 36, 3);

/// The versions of CoreDNS, etcd and pause kubeadm uses for a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddonVersions {
    /// CoreDNS tag (`v1.11.3`; `1.1.3` for 1.11).
    pub coredns: &'static str,
    /// etcd tag (`3.5.15-0`).
    pub etcd: &'static str,
    /// pause tag (`3.10`).
    pub pause: &'static str,
}

impl KubeVersion {
    /// CoreDNS/etcd/pause versions kubeadm uses for this release. For a patch newer than kubeha has checked (see
    /// [`KubeVersion::images_checked`]) the newest known row of its minor is used; for a minor outside the table,
    /// the nearest one (kubeadm does the same for etcd). Call [`KubeVersion::support`] first.
    pub fn addon_versions(&self) -> AddonVersions {
        if self.minor <= 11 {
            // kubeadm 1.11: SupportedEtcdVersion[11] = 3.2.18, CoreDNSVersion = 1.1.3, pause 3.1 (1.11 `constants.go`, CHANGELOG-1.11).
            return AddonVersions {
                coredns: "1.1.3",
                etcd: "3.2.18",
                pause: "3.1",
            };
        }
        let minor = self
            .minor
            .clamp(IMAGE_TABLE[0].0, IMAGE_TABLE[IMAGE_TABLE.len() - 1].0);
        let row = IMAGE_TABLE
            .iter()
            .rev()
            .find(|r| r.0 == minor && (r.1 <= self.patch || self.minor != minor))
            .or_else(|| IMAGE_TABLE.iter().find(|r| r.0 == minor))
            .expect("table covers every minor in its range");
        AddonVersions {
            coredns: row.2,
            etcd: row.3,
            pause: row.4,
        }
    }

    /// Whether kubeha's image table was checked against this exact release (1.11.x and 1.22.0 up to the
    /// patches in its source). Newer patches of a known minor reuse the newest row, which is usually right but not
    /// guaranteed: kubeadm backports etcd bumps.
    pub fn images_checked(&self) -> bool {
        if self.major != 1 {
            return false;
        }
        if self.minor == 11 {
            return true;
        }
        NEWEST_CHECKED
            .iter()
            .any(|&(m, p)| m == self.minor && self.patch <= p)
    }
}

fn repo_or_default<'a>(v: &KubeVersion, image_repository: Option<&'a str>) -> &'a str {
    match image_repository {
        Some(r) if !r.trim_end_matches('/').is_empty() => r.trim_end_matches('/'),
        _ => default_image_repository(v),
    }
}

/// Exactly what `kubeadm config images list --kubernetes-version vX.Y.Z [--image-repository R]` prints for an
/// amd64 kubeadm with local etcd, in its order:
///
/// - 1.11 (`GetAllImages`, 1.11 `cmd/kubeadm/app/images/images.go`): `kube-{apiserver,controller-manager,scheduler,proxy}-amd64`, `pause`
///   (`pause-amd64` on 1.11.0, before PR #65920 made it arch-agnostic), `etcd-amd64`, `coredns`.
/// - 1.22+ (`cmd/kubeadm/app/images/images.go`): `kube-{apiserver,controller-manager,scheduler,proxy}`, CoreDNS, `pause`,
///   `etcd`. CoreDNS is `<repo>/coredns/coredns` only when the repository is the release's default (the upstream
///   image moved into a `coredns/` subpath); with a custom repository it is `<repo>/coredns`.
pub fn kubeadm_images(v: &KubeVersion, image_repository: Option<&str>) -> Vec<String> {
    let repo = repo_or_default(v, image_repository);
    let a = v.addon_versions();
    let tag = v.tag();
    if v.minor <= 11 {
        let pause = if v.minor == 11 && v.patch >= 1 {
            "pause"
        } else {
            "pause-amd64"
        };
        return vec![
            format!("{repo}/kube-apiserver-amd64:{tag}"),
            format!("{repo}/kube-controller-manager-amd64:{tag}"),
            format!("{repo}/kube-scheduler-amd64:{tag}"),
            format!("{repo}/kube-proxy-amd64:{tag}"),
            format!("{repo}/{pause}:{}", a.pause),
            format!("{repo}/etcd-amd64:{}", a.etcd),
            format!("{repo}/coredns:{}", a.coredns),
        ];
    }
    let coredns = if repo == default_image_repository(v) {
        format!("{repo}/coredns/coredns:{}", a.coredns)
    } else {
        format!("{repo}/coredns:{}", a.coredns)
    };
    vec![
        format!("{repo}/kube-apiserver:{tag}"),
        format!("{repo}/kube-controller-manager:{tag}"),
        format!("{repo}/kube-scheduler:{tag}"),
        format!("{repo}/kube-proxy:{tag}"),
        coredns,
        format!("{repo}/pause:{}", a.pause),
        format!("{repo}/etcd:{}", a.etcd),
    ]
}

/// The pod sandbox image kubeadm expects for a release: what containerd's `sandbox_image` (or cri-dockerd's / the
/// kubelet's `--pod-infra-container-image`) must name, and what the bundle must carry (kubeadm ≥ 1.27
/// warns when they differ, kubernetes/kubernetes PR #115610).
pub fn pause_image(v: &KubeVersion, image_repository: Option<&str>) -> String {
    kubeadm_images(v, image_repository)
        .into_iter()
        .find(|i| {
            let name = i.rsplit('/').next().unwrap_or(i);
            name.starts_with("pause:") || name.starts_with("pause-amd64:")
        })
        .expect("every list has a pause image")
}

/// The one table of what a node's firewall must let in, per role and Kubernetes release: the kickstart's `firewall`
/// command (and its `%post` protocols) and the node agent's firewall step both render it, so an installed node and a
/// node the agent prepared open exactly the same set.
///
/// Sources: kubeadm's "Ports and Protocols" page (kubernetes/website `content/en/docs/reference/networking/
/// ports-and-protocols.md`, and for 1.11 `docs/setup/independent/install-kubeadm.md` "Check required ports"):
/// 6443, 2379-2380, 10250 and 10259/10257 today; kube-scheduler and kube-controller-manager served plain HTTP on
/// 10251/10252 (kubeadm's liveness probes used them) until their secure ports 10259/10257 took over (1.12/1.13) and
/// the insecure ones were removed (1.23: `--port` gone, `pkg/cluster/ports` has no `InsecureSchedulerPort`). Calico's
/// "Network requirements" page: BGP 179/tcp, IP-in-IP (IP protocol 4, the manifest's default pool encapsulation),
/// VXLAN 4789/udp, Typha 5473/tcp. keepalived: VRRP is IP protocol 112, masters only. The NodePort range
/// (30000-32767) is open on every node.
pub mod ports {
    use std::fmt;

    use crate::cluster::{Cluster, CniPlugin, Role};

    use super::KubeVersion;

    /// How traffic is matched.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Proto {
        /// A TCP port range.
        Tcp,
        /// A UDP port range.
        Udp,
        /// A whole IP protocol by number (VRRP 112, IP-in-IP 4): no ports.
        Ip(u8),
    }

    /// One rule: a port range of a transport protocol, or a whole IP protocol.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct Open {
        /// The protocol.
        pub proto: Proto,
        /// First port (0 for [`Proto::Ip`]).
        pub from: u16,
        /// Last port, inclusive (0 for [`Proto::Ip`]).
        pub to: u16,
        /// Who listens (for documentation and logs).
        pub what: &'static str,
    }

    impl Open {
        const fn tcp(from: u16, to: u16, what: &'static str) -> Open {
            Open {
                proto: Proto::Tcp,
                from,
                to,
                what,
            }
        }
        const fn udp(port: u16, what: &'static str) -> Open {
            Open {
                proto: Proto::Udp,
                from: port,
                to: port,
                what,
            }
        }
        const fn ip(number: u8, what: &'static str) -> Open {
            Open {
                proto: Proto::Ip(number),
                from: 0,
                to: 0,
                what,
            }
        }

        /// The port range as firewalld writes it (`6443`, `2379-2380`); `None` for a whole IP protocol.
        pub fn range(&self) -> Option<String> {
            match self.proto {
                Proto::Ip(_) => None,
                _ if self.from == self.to => Some(self.from.to_string()),
                _ => Some(format!("{}-{}", self.from, self.to)),
            }
        }

        /// firewalld's `--add-port=` value (`6443/tcp`), or for a whole IP protocol `--add-protocol=`'s (its number:
        /// names differ between /etc/protocols files, `ipip` is 94 on EL).
        pub fn firewalld(&self) -> String {
            match self.proto {
                Proto::Tcp => format!("{}/tcp", self.range().unwrap_or_default()),
                Proto::Udp => format!("{}/udp", self.range().unwrap_or_default()),
                Proto::Ip(n) => n.to_string(),
            }
        }

        /// The kickstart `firewall --port=` item (`6443:tcp`); `None` for a whole IP protocol (the kickstart
        /// command cannot open one; its `%post` does with `firewall-offline-cmd --add-protocol=`).
        pub fn kickstart(&self) -> Option<String> {
            let proto = match self.proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
                Proto::Ip(_) => return None,
            };
            Some(format!("{}:{proto}", self.range()?))
        }
    }

    impl fmt::Display for Open {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.proto {
                Proto::Ip(n) => write!(f, "IP protocol {n} ({})", self.what),
                _ => write!(f, "{} ({})", self.firewalld(), self.what),
            }
        }
    }

    /// kube-apiserver's secure port on every master (kubeadm's `bindPort`).
    pub const APISERVER: u16 = 6443;
    /// The load balancer's port in front of the apiservers when cluster.toml names none (the kubeadm-ha guide's).
    pub const LB_DEFAULT: u16 = 16443;
    /// etcd's client port.
    pub const ETCD_CLIENT: u16 = 2379;
    /// etcd's peer port.
    pub const ETCD_PEER: u16 = 2380;
    /// The kubelet API.
    pub const KUBELET: u16 = 10250;
    /// kube-controller-manager's secure port (1.12 on).
    pub const CONTROLLER_MANAGER: u16 = 10257;
    /// kube-scheduler's secure port (1.12 on).
    pub const SCHEDULER: u16 = 10259;
    /// kube-scheduler's insecure HTTP port (before 1.23).
    pub const SCHEDULER_INSECURE: u16 = 10251;
    /// kube-controller-manager's insecure HTTP port (before 1.23).
    pub const CONTROLLER_MANAGER_INSECURE: u16 = 10252;
    /// The NodePort Services range.
    pub const NODE_PORTS: (u16, u16) = (30000, 32767);

    /// kubeha-firstboot's attestation listener on masters waiting for the cluster to form: the designated master
    /// initializes only when a majority of the masters attest here that they hold no cluster and wait for it
    /// (docs/ha.md, "Never two clusters").
    pub const ATTEST_PORT: u16 = 16444;

    /// What a node of `role` must let in for Kubernetes `v`, with the load balancer on `lb_port` (masters) and the
    /// CNI `cni`. Masters get everything a worker gets, plus the control plane.
    pub fn ports(role: Role, v: &KubeVersion, lb_port: u16, cni: CniPlugin) -> Vec<Open> {
        let mut o = Vec::new();
        if role == Role::Master {
            o.push(Open::tcp(APISERVER, APISERVER, "kube-apiserver"));
            o.push(Open::tcp(
                lb_port,
                lb_port,
                "nginx load balancer in front of the apiservers",
            ));
            o.push(Open::tcp(ETCD_CLIENT, ETCD_PEER, "etcd client and peer"));
            o.push(Open::tcp(
                ATTEST_PORT,
                ATTEST_PORT,
                "kubeha-firstboot attestation (masters forming the cluster)",
            ));
            if v.minor <= 22 {
                o.push(Open::tcp(
                    SCHEDULER_INSECURE,
                    SCHEDULER_INSECURE,
                    "kube-scheduler (insecure HTTP, before 1.23)",
                ));
                o.push(Open::tcp(
                    CONTROLLER_MANAGER_INSECURE,
                    CONTROLLER_MANAGER_INSECURE,
                    "kube-controller-manager (insecure HTTP, before 1.23)",
                ));
            }
            if v.minor >= 12 {
                o.push(Open::tcp(
                    CONTROLLER_MANAGER,
                    CONTROLLER_MANAGER,
                    "kube-controller-manager",
                ));
                o.push(Open::tcp(SCHEDULER, SCHEDULER, "kube-scheduler"));
            }
            o.push(Open::ip(112, "VRRP, keepalived"));
        }
        o.push(Open::tcp(KUBELET, KUBELET, "kubelet API"));
        o.push(Open::tcp(NODE_PORTS.0, NODE_PORTS.1, "NodePort Services"));
        match cni {
            CniPlugin::Calico => {
                o.push(Open::tcp(179, 179, "calico BGP"));
                o.push(Open::tcp(5473, 5473, "calico Typha"));
                o.push(Open::udp(4789, "calico VXLAN"));
                o.push(Open::ip(4, "calico IP-in-IP"));
            }
        }
        o
    }

    /// [`ports`] for a node of `role` in `c`.
    pub fn for_cluster(c: &Cluster, role: Role) -> Vec<Open> {
        ports(
            role,
            &c.cluster.kubernetes_version,
            c.endpoint.port,
            c.cni.plugin,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_table() {
        use crate::cluster::{CniPlugin, Role};
        let fw = |role, v: &str, lb| -> Vec<String> {
            ports::ports(role, &v.parse().unwrap(), lb, CniPlugin::Calico)
                .iter()
                .map(ports::Open::firewalld)
                .collect()
        };
        let calico_and_worker = [
            "10250/tcp",
            "30000-32767/tcp",
            "179/tcp",
            "5473/tcp",
            "4789/udp",
            "4",
        ];
        let mut want = vec![
            "6443/tcp",
            "16443/tcp",
            "2379-2380/tcp",
            "16444/tcp",
            "10257/tcp",
            "10259/tcp",
            "112",
        ];
        want.extend(calico_and_worker);
        assert_eq!(fw(Role::Master, "1.36.3", 16443), want);
        assert_eq!(fw(Role::Worker, "1.36.3", 16443), calico_and_worker);
        assert_eq!(fw(Role::Worker, "1.11.1", 16443), calico_and_worker);
        // the seed's release: the insecure scheduler/controller-manager ports, no secure ones yet
        let m = fw(Role::Master, "1.11.1", 8443);
        assert!(
            m.contains(&"10251/tcp".into()) && m.contains(&"10252/tcp".into()),
            "{m:?}"
        );
        assert!(
            !m.contains(&"10257/tcp".into()) && !m.contains(&"10259/tcp".into()),
            "{m:?}"
        );
        assert!(
            m.contains(&"8443/tcp".into()) && !m.contains(&"16443/tcp".into()),
            "{m:?}"
        );
        // 1.22 still had both; 1.23 removed the insecure ones
        let m = fw(Role::Master, "1.22.17", 16443);
        assert!(
            m.contains(&"10251/tcp".into()) && m.contains(&"10259/tcp".into()),
            "{m:?}"
        );
        let m = fw(Role::Master, "1.23.0", 16443);
        assert!(
            !m.contains(&"10251/tcp".into()) && m.contains(&"10259/tcp".into()),
            "{m:?}"
        );
        // every worker rule is a master rule too
        for v in ["1.11.1", "1.22.0", "1.36.3"] {
            let m = fw(Role::Master, v, 16443);
            assert!(
                fw(Role::Worker, v, 16443).iter().all(|w| m.contains(w)),
                "{v}"
            );
        }
        let o = ports::ports(
            Role::Master,
            &NEWEST_CHECKED_RELEASE,
            16443,
            CniPlugin::Calico,
        );
        assert_eq!(o[2].kickstart().as_deref(), Some("2379-2380:tcp"));
        let vrrp = o.iter().find(|p| p.proto == ports::Proto::Ip(112)).unwrap();
        assert_eq!(vrrp.kickstart(), None);
        assert_eq!(vrrp.to_string(), "IP protocol 112 (VRRP, keepalived)");
    }

    #[test]
    fn parse_versions() {
        for (input, want) in [
            ("1.31.4", Some(KubeVersion::new(1, 31, 4))),
            ("v1.11.1", Some(KubeVersion::new(1, 11, 1))),
            ("1.11.1", Some(KubeVersion::new(1, 11, 1))),
            ("1.31", None),
            ("1.31.4.1", None),
            ("1.31.x", None),
            ("1.031.4", None),
            ("", None),
            ("v", None),
            ("1.31.4-rc.0", None),
        ] {
            assert_eq!(input.parse::<KubeVersion>().ok(), want, "input {input:?}");
        }
    }

    #[test]
    fn support_and_api() {
        for (v, ok, api) in [
            ("1.11.1", true, KubeadmApi::V1Alpha2),
            ("1.15.0", false, KubeadmApi::V1Beta2),
            ("1.22.0", true, KubeadmApi::V1Beta3),
            ("1.30.9", true, KubeadmApi::V1Beta3),
            ("1.31.0", true, KubeadmApi::V1Beta4),
            ("1.34.1", true, KubeadmApi::V1Beta4),
            ("1.99.0", false, KubeadmApi::V1Beta4),
            ("2.0.0", false, KubeadmApi::V1Alpha2),
        ] {
            let v: KubeVersion = v.parse().unwrap();
            assert_eq!(v.support().is_ok(), ok, "support of {v}");
            if v.major == 1 {
                assert_eq!(v.kubeadm_api(), api, "api of {v}");
            }
        }
    }
    #[test]
    fn seed_image_list() {
        let v: KubeVersion = "v1.11.1".parse().unwrap();
        assert_eq!(
            kubeadm_images(&v, None),
            vec![
                "k8s.gcr.io/kube-apiserver-amd64:v1.11.1",
                "k8s.gcr.io/kube-controller-manager-amd64:v1.11.1",
                "k8s.gcr.io/kube-scheduler-amd64:v1.11.1",
                "k8s.gcr.io/kube-proxy-amd64:v1.11.1",
                "k8s.gcr.io/pause:3.1",
                "k8s.gcr.io/etcd-amd64:3.2.18",
                "k8s.gcr.io/coredns:1.1.3",
            ]
        );
        assert_eq!(pause_image(&v, None), "k8s.gcr.io/pause:3.1");
        let v0 = KubeVersion::new(1, 11, 0);
        assert_eq!(pause_image(&v0, None), "k8s.gcr.io/pause-amd64:3.1");
        assert_eq!(
            kubeadm_images(&v, Some("reg.example:5000/k8s/"))[6],
            "reg.example:5000/k8s/coredns:1.1.3"
        );
    }

    #[test]
    fn addon_versions_by_patch() {
        // (version, coredns, etcd, pause), from minikube's generated table (`constants_kubeadm_images.go`)
        for (v, coredns, etcd, pause) in [
            ("1.22.0", "v1.8.4", "3.5.0-0", "3.5"),
            ("1.22.16", "v1.8.4", "3.5.0-0", "3.5"),
            ("1.22.17", "v1.8.4", "3.5.6-0", "3.5"),
            ("1.23.13", "v1.8.6", "3.5.1-0", "3.6"),
            ("1.23.14", "v1.8.6", "3.5.5-0", "3.6"),
            ("1.23.17", "v1.8.6", "3.5.6-0", "3.6"),
            ("1.24.7", "v1.8.6", "3.5.3-0", "3.7"),
            ("1.24.8", "v1.8.6", "3.5.5-0", "3.7"),
            ("1.25.3", "v1.9.3", "3.5.4-0", "3.8"),
            ("1.25.16", "v1.9.3", "3.5.9-0", "3.8"),
            ("1.26.9", "v1.9.3", "3.5.6-0", "3.9"),
            ("1.27.16", "v1.10.1", "3.5.12-0", "3.9"),
            ("1.28.5", "v1.10.1", "3.5.9-0", "3.9"),
            ("1.28.15", "v1.10.1", "3.5.15-0", "3.9"),
            ("1.29.2", "v1.11.1", "3.5.10-0", "3.9"),
            ("1.30.4", "v1.11.1", "3.5.12-0", "3.9"),
            ("1.30.5", "v1.11.3", "3.5.15-0", "3.9"),
            ("1.31.0", "v1.11.1", "3.5.15-0", "3.10"),
            ("1.31.4", "v1.11.3", "3.5.15-0", "3.10"),
            ("1.31.14", "v1.11.3", "3.5.24-0", "3.10"),
            ("1.32.0", "v1.11.3", "3.5.16-0", "3.10"),
            ("1.33.0", "v1.12.0", "3.5.21-0", "3.10"),
            ("1.34.1", "v1.12.1", "3.6.4-0", "3.10.1"),
            ("1.34.2", "v1.12.1", "3.6.5-0", "3.10.1"),
            ("1.35.7", "v1.13.1", "3.6.6-0", "3.10.1"),
            ("1.36.3", "v1.14.2", "3.6.8-0", "3.10.2"),
            // newer than checked: the newest row of the minor
            ("1.36.9", "v1.14.2", "3.6.8-0", "3.10.2"),
        ] {
            let k: KubeVersion = v.parse().unwrap();
            let a = k.addon_versions();
            assert_eq!(
                (a.coredns, a.etcd, a.pause),
                (coredns, etcd, pause),
                "release {v}"
            );
        }
    }

    #[test]
    fn modern_image_lists() {
        let v = KubeVersion::new(1, 31, 4);
        assert_eq!(
            kubeadm_images(&v, None),
            vec![
                "registry.k8s.io/kube-apiserver:v1.31.4",
                "registry.k8s.io/kube-controller-manager:v1.31.4",
                "registry.k8s.io/kube-scheduler:v1.31.4",
                "registry.k8s.io/kube-proxy:v1.31.4",
                "registry.k8s.io/coredns/coredns:v1.11.3",
                "registry.k8s.io/pause:3.10",
                "registry.k8s.io/etcd:3.5.15-0",
            ]
        );
        // a custom repository: CoreDNS is flat
        let l = kubeadm_images(&v, Some("reg.local:5000/k8s"));
        assert_eq!(l[0], "reg.local:5000/k8s/kube-apiserver:v1.31.4");
        assert_eq!(l[4], "reg.local:5000/k8s/coredns:v1.11.3");
        assert_eq!(
            pause_image(&v, Some("reg.local:5000/k8s")),
            "reg.local:5000/k8s/pause:3.10"
        );
        // naming the default explicitly is the default
        assert_eq!(
            kubeadm_images(&v, Some("registry.k8s.io")),
            kubeadm_images(&v, None)
        );
        // the registry switch (kubernetes/kubernetes PR #109938 and its kubeadm backports)
        for (v, repo) in [
            ("1.22.16", "k8s.gcr.io"),
            ("1.22.17", "registry.k8s.io"),
            ("1.23.14", "k8s.gcr.io"),
            ("1.23.15", "registry.k8s.io"),
            ("1.24.8", "k8s.gcr.io"),
            ("1.24.9", "registry.k8s.io"),
            ("1.25.0", "registry.k8s.io"),
        ] {
            let k: KubeVersion = v.parse().unwrap();
            let l = kubeadm_images(&k, None);
            assert!(
                l.iter().all(|i| i.starts_with(&format!("{repo}/"))),
                "{v}: {l:?}"
            );
            assert!(
                l[4].starts_with(&format!("{repo}/coredns/coredns:")),
                "{v}: {l:?}"
            );
        }
        // k8s.gcr.io named explicitly after the switch is a custom repository for kubeadm
        let k = KubeVersion::new(1, 25, 0);
        assert_eq!(
            kubeadm_images(&k, Some("k8s.gcr.io"))[4],
            "k8s.gcr.io/coredns:v1.9.3"
        );
        assert_eq!(
            kubeadm_images(&NEWEST_CHECKED_RELEASE, None),
            vec![
                "registry.k8s.io/kube-apiserver:v1.36.3",
                "registry.k8s.io/kube-controller-manager:v1.36.3",
                "registry.k8s.io/kube-scheduler:v1.36.3",
                "registry.k8s.io/kube-proxy:v1.36.3",
                "registry.k8s.io/coredns/coredns:v1.14.2",
                "registry.k8s.io/pause:3.10.2",
                "registry.k8s.io/etcd:3.6.8-0",
            ]
        );
    }

    #[test]
    fn images_checked_range() {
        for (v, ok) in [
            ("1.11.1", true),
            ("1.22.0", true),
            ("1.22.17", true),
            ("1.22.18", false),
            ("1.36.3", true),
            ("1.36.4", false),
            ("1.37.0", false),
            ("1.21.0", false),
        ] {
            let k: KubeVersion = v.parse().unwrap();
            assert_eq!(k.images_checked(), ok, "release {v}");
        }
        // every row is reachable and the checked list covers every minor of the table
        for &(m, p, ..) in IMAGE_TABLE {
            assert!(
                NEWEST_CHECKED.iter().any(|&(nm, np)| nm == m && np >= p),
                "row 1.{m}.{p}"
            );
        }
        assert_eq!(NEWEST_CHECKED.last().unwrap().0, MAX_MINOR);
    }
}
