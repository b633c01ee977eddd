//! Kubernetes versions: an exact release ([`KubeVersion`]), the releases kubeha supports and the kubeadm configuration
//! API and default image registry of each. Re-exported from [`crate::kube`], where callers name them.

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
