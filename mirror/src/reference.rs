//! Image references: `[registry[:port]/]repository[:tag][@digest]`, normalized the way Docker and containerd do
//! (`busybox` is `docker.io/library/busybox:latest`), so the name stored in the layout is the one the node's runtime
//! looks up.

use std::fmt;

use crate::digest::Digest;
use crate::error::{format_err, Result};

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's actual API host.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (with port), e.g. `registry.k8s.io`, `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    /// Repository path, e.g. `pause`, `library/busybox`, `calico/node`.
    pub repository: String,
    /// Tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// Pinned digest.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes a reference.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |m: &str| format_err(format!("image reference '{s}'"), m.to_string());
        if s.is_empty() || s.trim() != s {
            return Err(bad("empty or surrounded by whitespace"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|_| bad("bad digest after '@'"))?),
            ),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes().enumerate().all(|(i, b)| {
                    b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-'))
                });
            if !ok {
                return Err(bad("bad tag (allowed: [A-Za-z0-9_][A-Za-z0-9._-]{0,127})"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let component_ok = |c: &str| {
            // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
            !c.is_empty()
                && c.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
                && !c.contains("..")
                && !c.contains("___")
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad(
                "bad repository name (lowercase letters, digits, '.', '_', '-' between '/')",
            ));
        }
        if registry.is_empty()
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(bad("bad registry host"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry's manifest endpoint for: the digest if pinned, else the tag.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host to talk to for this registry (Docker Hub's API host differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Normalizes a reference string (`busybox` → `docker.io/library/busybox:latest`).
pub fn normalize(s: &str) -> Result<String> {
    Ok(Reference::parse(s)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_references() {
        let d = format!("sha256:{}", "b".repeat(64));
        for (input, want) in [
            (
                "busybox",
                Some("docker.io/library/busybox:latest".to_string()),
            ),
            (
                "calico/node:v3.28.1",
                Some("docker.io/calico/node:v3.28.1".into()),
            ),
            (
                "registry.k8s.io/pause:3.10",
                Some("registry.k8s.io/pause:3.10".into()),
            ),
            (
                "registry.k8s.io/coredns/coredns:v1.11.3",
                Some("registry.k8s.io/coredns/coredns:v1.11.3".into()),
            ),
            (
                "k8s.gcr.io/kube-apiserver-amd64:v1.11.1",
                Some("k8s.gcr.io/kube-apiserver-amd64:v1.11.1".into()),
            ),
            ("127.0.0.1:5000/a/b:1", Some("127.0.0.1:5000/a/b:1".into())),
            ("localhost/x", Some("localhost/x:latest".into())),
            (&*format!("quay.io/x@{d}"), Some(format!("quay.io/x@{d}"))),
            (
                &*format!("quay.io/x:1@{d}"),
                Some(format!("quay.io/x:1@{d}")),
            ),
            ("Upper/case", None),
            ("a/b:", None),
            ("a/b:-x", None),
            ("", None),
            ("a//b", None),
            ("quay.io/x@sha256:zz", None),
        ] {
            assert_eq!(normalize(input).ok(), want, "reference {input:?}");
        }
    }

    #[test]
    fn parts() {
        let r = Reference::parse("127.0.0.1:5000/k8s/pause:3.1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "k8s/pause");
        assert_eq!(r.tag_or_digest(), "3.1");
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            DOCKER_HUB_API
        );
    }
}
