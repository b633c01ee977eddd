//! `images`: every image of a list built and pushed to the local registry under its real name (the profile's
//! mirror maps registry.k8s.io/x to HOST:PORT/registry.k8s.io/x, so the repository is the name as written).

use super::oci::{self, Entry, Image, Layer, MANIFEST, MANIFEST_LIST};
use super::registry::Registry;
use anyhow::{Context, Result};
use kubeha_model::fsutil::write_atomic;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What `images` builds and where it pushes.
#[derive(Clone, Debug)]
pub struct ImagesOpts {
    /// The registry, `HOST:PORT` (plain HTTP).
    pub registry: String,
    /// The image references, one a line (`#` starts a comment line).
    pub list: PathBuf,
    /// Push manifest lists (amd64 + arm64) as the tags, as the real kubeadm images are.
    pub lists: bool,
    /// The binaries `make k8s` built: the control-plane images become real.
    pub k8s_bin: Option<PathBuf>,
    /// The reference CNI plugins: calico/cni becomes the CNI stand-in.
    pub cni_plugins: Option<PathBuf>,
    /// The cache of the real images' layers.
    pub cache: PathBuf,
    /// The busybox binary of the stand-ins' base layer.
    pub busybox: PathBuf,
}

impl ImagesOpts {
    /// Generated stand-ins only, single-platform, the busybox of this machine.
    pub fn new(registry: &str, list: &Path) -> ImagesOpts {
        ImagesOpts {
            registry: registry.to_string(),
            list: list.to_path_buf(),
            lists: false,
            k8s_bin: None,
            cni_plugins: None,
            cache: PathBuf::from("/tmp/kubeha-image-layers"),
            busybox: PathBuf::from("/bin/busybox"),
        }
    }
}

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A real image: the files of `make k8s` it carries (source in --k8s-bin, path in the image) and its config.
pub struct Real {
    pub files: &'static [(&'static str, &'static str)],
    pub entrypoint: Option<&'static str>,
    pub user: Option<&'static str>,
}

const GO_RUNNER: (&str, &str) = ("kube-log-runner", "go-runner");

/// The real image of a repository's basename (what Kubernetes' build/server-image/Dockerfile and build/pause put
/// in them: the binary and kube-log-runner as /go-runner, the ENTRYPOINT; etcd and etcdctl; /pause as 65535).
pub fn real(basename: &str) -> Option<Real> {
    let go_runner = |files| Real {
        files,
        entrypoint: Some("/go-runner"),
        user: None,
    };
    Some(match basename {
        "kube-apiserver" => go_runner(&[
            ("kube-apiserver", "usr/local/bin/kube-apiserver"),
            GO_RUNNER,
        ]),
        "kube-controller-manager" => go_runner(&[
            (
                "kube-controller-manager",
                "usr/local/bin/kube-controller-manager",
            ),
            GO_RUNNER,
        ]),
        "kube-scheduler" => go_runner(&[
            ("kube-scheduler", "usr/local/bin/kube-scheduler"),
            GO_RUNNER,
        ]),
        "kube-proxy" => go_runner(&[("kube-proxy", "usr/local/bin/kube-proxy"), GO_RUNNER]),
        "etcd" => Real {
            files: &[
                ("etcd", "usr/local/bin/etcd"),
                ("etcdctl", "usr/local/bin/etcdctl"),
            ],
            entrypoint: None,
            user: None,
        },
        "pause" => Real {
            files: &[("pause", "pause")],
            entrypoint: Some("/pause"),
            user: Some("65535:65535"),
        },
        _ => return None,
    })
}

impl Real {
    /// The image config's `config`: Entrypoint, User, the Dockerfile's PATH.
    fn conf(&self) -> Value {
        let mut c = json!({ "Env": [PATH_ENV] });
        if let Some(e) = self.entrypoint {
            c["Entrypoint"] = json!([e]);
        }
        if let Some(u) = self.user {
            c["User"] = json!(u);
        }
        c
    }

    /// The files sorted by their source name (the order of the layer and of the cache key).
    fn sorted(&self) -> Vec<(&'static str, &'static str)> {
        let mut f = self.files.to_vec();
        f.sort();
        f
    }
}

/// The real layer's tar (distroless-like: no shell): /etc with passwd and group, /tmp, then each file (`(path in
/// the image, binary)`, in order) after those directories above it that are not there yet.
pub fn real_tar(files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut items: Vec<(String, Option<&[u8]>)> = vec![];
    for (dst, data) in files {
        let parts: Vec<&str> = dst.split('/').collect();
        for i in 1..parts.len() {
            let d = parts[..i].join("/");
            if !items.iter().any(|(p, b)| b.is_none() && *p == d) && d != "etc" && d != "tmp" {
                items.push((d, None));
            }
        }
        items.push((dst.to_string(), Some(data)));
    }
    let mut entries = vec![
        Entry::dir("etc", 0o755),
        Entry::dir("tmp", 0o1777),
        Entry::file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
            0o644,
        ),
        Entry::file("etc/group", b"root:x:0:\nnobody:x:65534:\n", 0o644),
    ];
    entries.extend(items.iter().map(|(p, b)| match b {
        None => Entry::dir(p, 0o755),
        Some(b) => Entry::file(p, b, 0o755),
    }));
    oci::tar_bytes(&entries)
}

/// The cache key of a real layer: SHA-256 over each `src>dst\0` and its binary's SHA-256, in source order; 24 hex.
pub fn cache_key(files: &[(&str, &str, &[u8])]) -> String {
    let mut key = Sha256::new();
    for (src, dst, data) in files {
        key.update(format!("{src}>{dst}\0").as_bytes());
        key.update(Sha256::digest(data));
    }
    hex::encode(key.finalize())[..24].to_string()
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// The real image's one layer (gzip level 1: the binaries are big), from `cache` when it has it.
fn real_layer(r: &Real, k8s_bin: &Path, cache: &Path) -> Result<Layer> {
    let files: Vec<(&str, &str, Vec<u8>)> = r
        .sorted()
        .into_iter()
        .map(|(src, dst)| Ok((src, dst, read(&k8s_bin.join(src))?)))
        .collect::<Result<_>>()?;
    let keyed: Vec<(&str, &str, &[u8])> = files
        .iter()
        .map(|(s, d, b)| (*s, *d, b.as_slice()))
        .collect();
    let dir = cache.join(cache_key(&keyed));
    let (tar_p, gz_p) = (dir.join("layer.tar"), dir.join("layer.tar.gz"));
    if gz_p.exists() {
        return Ok(Layer {
            tar: read(&tar_p)?,
            gz: read(&gz_p)?,
        });
    }
    let owned: Vec<(&str, Vec<u8>)> = files.into_iter().map(|(_, d, b)| (d, b)).collect();
    let tar = real_tar(&owned)?;
    let gz = oci::gz(&tar, 1)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Atomically (model's write_atomic): an interrupted run leaves no half layer in the cache.
    write_atomic(&tar_p, &tar, 0o644, true)?;
    write_atomic(&gz_p, &gz, 0o644, true)?;
    Ok(Layer { tar, gz })
}

/// A generated stand-in's layer above the base: /etc/kubeha-image naming the image and platform.
pub fn stand_in_layer(reference: &str, arch: &str) -> Result<Layer> {
    let text = format!("{reference} {arch}\n");
    Layer::new(&[Entry::file("etc/kubeha-image", text.as_bytes(), 0o644)])
}

/// A generated stand-in's config: it prints its /etc/kubeha-image.
pub fn stand_in_config(
    reference: &str,
    arch: &str,
    base: &Layer,
    extra: &Layer,
) -> Result<Vec<u8>> {
    oci::config(
        arch,
        json!({ "Cmd": ["/bin/cat", "/etc/kubeha-image"], "Env": ["PATH=/bin"] }),
        &[base, extra],
        &[
            "kubeha demo upstream: busybox base".into(),
            format!("kubeha demo: {reference}"),
        ],
    )
}

/// The CNI STAND-IN's install-cni.sh (calico/cni's install-cni role): the reference plugins and a bridge network
/// config on the node, the pod /24 from the node's last octet.
pub const INSTALL_CNI: &str = r#"#!/bin/sh
# kubeha lab CNI STAND-IN (calico/cni's install-cni role): the reference plugins and a bridge network config.
set -e
o=${HOST_IP##*.}
busybox mkdir -p /host/opt/cni/bin /host/etc/cni/net.d
for p in bridge host-local loopback portmap; do
  busybox cp /cni/$p /host/opt/cni/bin/$p.tmp
  busybox mv /host/opt/cni/bin/$p.tmp /host/opt/cni/bin/$p
done
cat > /host/etc/cni/net.d/.10-kubeha-lab.conflist <<EOF
{"cniVersion": "0.4.0", "name": "k8s-pod-network", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_NET.$o.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
busybox mv /host/etc/cni/net.d/.10-kubeha-lab.conflist /host/etc/cni/net.d/10-kubeha-lab.conflist
echo "installed the CNI stand-in: $POD_NET.$o.0/24 on $HOST_IP"
"#;

/// The reference CNI plugins the stand-in carries under /cni.
pub const CNI_PLUGINS: [&str; 4] = ["bridge", "host-local", "loopback", "portmap"];

/// The CNI stand-in's layer above the base: /install-cni.sh and the plugins (`(name, binary)`) under /cni.
pub fn cni_layer(plugins: &[(&str, Vec<u8>)]) -> Result<Layer> {
    let paths: Vec<String> = plugins.iter().map(|(p, _)| format!("cni/{p}")).collect();
    let mut entries = vec![
        Entry::dir("cni", 0o755),
        Entry::file("install-cni.sh", INSTALL_CNI.as_bytes(), 0o755),
    ];
    entries.extend(
        plugins
            .iter()
            .zip(&paths)
            .map(|((_, b), p)| Entry::file(p, b, 0o755)),
    );
    Layer::new(&entries)
}

/// The CNI stand-in's config: it runs /install-cni.sh.
pub fn cni_config(base: &Layer, extra: &Layer) -> Result<Vec<u8>> {
    oci::config(
        "amd64",
        json!({ "Cmd": ["/bin/sh", "/install-cni.sh"], "Env": ["PATH=/bin"] }),
        &[base, extra],
        &[
            "kubeha demo upstream: busybox base".into(),
            "kubeha lab: CNI stand-in, reference plugins + install-cni.sh".into(),
        ],
    )
}

/// A real image's config.
pub fn real_config(reference: &str, r: &Real, layer: &Layer) -> Result<Vec<u8>> {
    oci::config(
        "amd64",
        r.conf(),
        &[layer],
        &[format!(
            "kubeha lab: {reference} built from the binaries of `make k8s`"
        )],
    )
}

/// The references of `text`: each line trimmed, blank lines and lines starting with `#` left out.
pub fn references(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Pushes `img`'s layers, then its config, to `repo`; its manifest.
fn push(reg: &Registry, repo: &str, img: &Image) -> Result<Vec<u8>> {
    for l in &img.layers {
        reg.push_blob(repo, l)?;
    }
    reg.push_blob(repo, &img.config)?;
    img.manifest()
}

/// Builds and pushes a generated stand-in for `arch`; its manifest.
fn stand_in(
    reg: &Registry,
    repo: &str,
    reference: &str,
    arch: &str,
    base: &Layer,
) -> Result<Vec<u8>> {
    let extra = stand_in_layer(reference, arch)?;
    let config = stand_in_config(reference, arch, base, &extra)?;
    push(
        reg,
        repo,
        &Image {
            config,
            layers: vec![&base.gz, &extra.gz],
        },
    )
}

/// Builds every image of `opts.list` and pushes it: the control-plane images real (with `k8s_bin`), calico/cni the
/// CNI stand-in (with `cni_plugins`), the others generated busybox stand-ins; with `lists`, each tag a manifest list
/// of that amd64 image and an arm64 stand-in, both pushed by digest first.
pub fn images(opts: &ImagesOpts) -> Result<()> {
    let reg = Registry::new(&opts.registry)?;
    let base = oci::base_layer(&read(&opts.busybox)?)?;
    let list = std::fs::read_to_string(&opts.list)
        .with_context(|| format!("reading {}", opts.list.display()))?;
    for reference in references(&list) {
        let (name, tag) = reference
            .rsplit_once(':')
            .with_context(|| format!("{}: {reference} has no tag", opts.list.display()))?;
        // Stored under the original host as a path prefix: the profile's mirror maps registry.k8s.io/x to
        // HOST:PORT/registry.k8s.io/x.
        let repo = name;
        let basename = name.rsplit('/').next().unwrap_or(name);
        let real = opts
            .k8s_bin
            .as_ref()
            .and_then(|b| Some((real(basename)?, b)));
        let cni = opts
            .cni_plugins
            .as_ref()
            .filter(|_| name.ends_with("calico/cni"));
        let what = || format!("image {reference}");
        let amd = if let Some((r, k8s_bin)) = &real {
            let layer = real_layer(r, k8s_bin, &opts.cache).with_context(what)?;
            let config = real_config(reference, r, &layer)?;
            push(
                &reg,
                repo,
                &Image {
                    config,
                    layers: vec![&layer.gz],
                },
            )
            .with_context(what)?
        } else if let Some(dir) = cni {
            let plugins: Vec<(&str, Vec<u8>)> = CNI_PLUGINS
                .iter()
                .map(|p| Ok((*p, read(&dir.join(p))?)))
                .collect::<Result<_>>()
                .with_context(what)?;
            let extra = cni_layer(&plugins)?;
            let config = cni_config(&base, &extra)?;
            push(
                &reg,
                repo,
                &Image {
                    config,
                    layers: vec![&base.gz, &extra.gz],
                },
            )
            .with_context(what)?
        } else {
            stand_in(&reg, repo, reference, "amd64", &base).with_context(what)?
        };
        if opts.lists {
            // Real kubeadm images are manifest lists: both platforms and a list, so the client must pick amd64.
            let arm = stand_in(&reg, repo, reference, "arm64", &base).with_context(what)?;
            reg.push_manifest(repo, &oci::sha(&amd), &amd, MANIFEST)?;
            reg.push_manifest(repo, &oci::sha(&arm), &arm, MANIFEST)?;
            let list = oci::manifest_list(&amd, &arm)?;
            reg.push_manifest(repo, tag, &list, MANIFEST_LIST)?;
        } else {
            reg.push_manifest(repo, tag, &amd, MANIFEST)?;
        }
        let kind = if real.is_some() {
            " (real, from --k8s-bin)"
        } else if cni.is_some() {
            " (CNI stand-in)"
        } else {
            " (generated stand-in)"
        };
        println!("  pushed {reference}{kind}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Registry as RegistryDaemon;
    use std::io::Read;

    fn names(tar: &[u8]) -> Vec<(String, u8, u32)> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    String::from_utf8(h.path_bytes().to_vec()).unwrap(),
                    h.entry_type().as_byte(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    fn base() -> Layer {
        oci::base_layer(&b"BUSYBOX\n".repeat(100)).unwrap()
    }

    // The expected configs and digests below are what the python generator (scripts/demo/upstream.py, now gone)
    // produced for the same inputs.

    #[test]
    fn a_stand_in_prints_its_name_and_platform() {
        let r = "registry.k8s.io/coredns/coredns:v1.11.3";
        let extra = stand_in_layer(r, "arm64").unwrap();
        assert_eq!(
            oci::sha(&extra.tar),
            "sha256:6b2e2d4f12fc11684ad3cf959975786c88e4371719e8151da4ce2bdc32f13bd3"
        );
        let mut a = tar::Archive::new(&extra.tar[..]);
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().mode().unwrap(), 0o644);
        let mut text = String::new();
        e.read_to_string(&mut text).unwrap();
        assert_eq!(text, format!("{r} arm64\n"));
        assert_eq!(
            String::from_utf8(stand_in_config(r, "arm64", &base(), &extra).unwrap()).unwrap(),
            r#"{"architecture": "arm64", "config": {"Cmd": ["/bin/cat", "/etc/kubeha-image"], "Env": ["PATH=/bin"]}, "history": [{"created_by": "kubeha demo upstream: busybox base"}, {"created_by": "kubeha demo: registry.k8s.io/coredns/coredns:v1.11.3"}], "os": "linux", "rootfs": {"diff_ids": ["sha256:89a1314aa66069563757a1ea933d587ead4b01c9722b5eb45e1f2cf1b50f50c6", "sha256:6b2e2d4f12fc11684ad3cf959975786c88e4371719e8151da4ce2bdc32f13bd3"], "type": "layers"}}"#
        );
    }

    #[test]
    fn the_cni_stand_in_carries_the_plugins_and_install_cni() {
        let plugins: Vec<(&str, Vec<u8>)> = CNI_PLUGINS
            .iter()
            .map(|p| (*p, p.repeat(10).into_bytes()))
            .collect();
        let extra = cni_layer(&plugins).unwrap();
        assert_eq!(
            names(&extra.tar),
            [
                ("cni/".to_string(), b'5', 0o755),
                ("install-cni.sh".into(), b'0', 0o755),
                ("cni/bridge".into(), b'0', 0o755),
                ("cni/host-local".into(), b'0', 0o755),
                ("cni/loopback".into(), b'0', 0o755),
                ("cni/portmap".into(), b'0', 0o755),
            ]
        );
        assert_eq!(
            String::from_utf8(cni_config(&base(), &extra).unwrap()).unwrap(),
            r#"{"architecture": "amd64", "config": {"Cmd": ["/bin/sh", "/install-cni.sh"], "Env": ["PATH=/bin"]}, "history": [{"created_by": "kubeha demo upstream: busybox base"}, {"created_by": "kubeha lab: CNI stand-in, reference plugins + install-cni.sh"}], "os": "linux", "rootfs": {"diff_ids": ["sha256:89a1314aa66069563757a1ea933d587ead4b01c9722b5eb45e1f2cf1b50f50c6", "sha256:643d1a7532d27f2b687eeaf15e853004440badbaa33d97a5f925739bbbb48a7e"], "type": "layers"}}"#
        );
    }

    /// A --k8s-bin with a fake binary (its name 7 times) for each file the real images take.
    fn k8s_bin() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "pause",
            "etcd",
            "etcdctl",
            "kube-apiserver",
            "kube-log-runner",
        ] {
            std::fs::write(d.path().join(n), n.repeat(7)).unwrap();
        }
        d
    }

    #[test]
    fn the_real_images_carry_their_binaries_and_config_and_are_cached_by_their_hashes() {
        let bin = k8s_bin();
        let cache = tempfile::tempdir().unwrap();
        let want = [
            (
                "pause",
                "c4128b67ab37153f6029dee1",
                "61771a5fe1e2f7e8555ff38e631aa9f8bf8000701a376cdeed0c6d71da5a72ed",
                r#"{"Entrypoint": ["/pause"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "User": "65535:65535"}"#,
            ),
            (
                "etcd",
                "34c045085f7c426a6cb117a4",
                "f1a9b79b9252364cb4a024ea8e1c9a0133d901cfedb1b220c59b363902b903c5",
                r#"{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}"#,
            ),
            (
                "kube-apiserver",
                "9708bea052cd03da93ad9801",
                "e1b6ba05f6a1ef8c6ef32c30aed8e47770f267e2f127bddfbc5976ee996e6c91",
                r#"{"Entrypoint": ["/go-runner"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}"#,
            ),
        ];
        for (img, key, diff_id, conf) in want {
            let r = real(img).unwrap();
            let layer = real_layer(&r, bin.path(), cache.path()).unwrap();
            assert_eq!(hex::encode(Sha256::digest(&layer.tar)), diff_id, "{img}");
            assert!(
                cache.path().join(key).join("layer.tar.gz").exists(),
                "{img}"
            );
            let reference = format!("registry.k8s.io/{img}:v1");
            assert_eq!(
                String::from_utf8(real_config(&reference, &r, &layer).unwrap()).unwrap(),
                format!(
                    r#"{{"architecture": "amd64", "config": {conf}, "history": [{{"created_by": "kubeha lab: {reference} built from the binaries of `make k8s`"}}], "os": "linux", "rootfs": {{"diff_ids": ["sha256:{diff_id}"], "type": "layers"}}}}"#
                )
            );
        }
        let api = real_layer(&real("kube-apiserver").unwrap(), bin.path(), cache.path()).unwrap();
        let etc = [
            ("etc/".to_string(), b'5', 0o755),
            ("tmp/".into(), b'5', 0o1777),
            ("etc/passwd".into(), b'0', 0o644),
            ("etc/group".into(), b'0', 0o644),
        ];
        let mut want = etc.to_vec();
        want.extend([
            ("usr/".into(), b'5', 0o755),
            ("usr/local/".into(), b'5', 0o755),
            ("usr/local/bin/".into(), b'5', 0o755),
            ("usr/local/bin/kube-apiserver".into(), b'0', 0o755),
            ("go-runner".into(), b'0', 0o755),
        ]);
        assert_eq!(names(&api.tar), want);
        let mut d = flate2::read::GzDecoder::new(&api.gz[..]);
        let mut back = vec![];
        d.read_to_end(&mut back).unwrap();
        assert_eq!(back, api.tar);
        // A cached layer is read back, not rebuilt; another binary is another key.
        let key = cache.path().join("9708bea052cd03da93ad9801");
        std::fs::write(key.join("layer.tar.gz"), b"cached").unwrap();
        let again = real_layer(&real("kube-apiserver").unwrap(), bin.path(), cache.path()).unwrap();
        assert_eq!((again.gz.as_slice(), again.tar), (&b"cached"[..], api.tar));
        std::fs::write(bin.path().join("kube-apiserver"), b"v2").unwrap();
        let other = real_layer(&real("kube-apiserver").unwrap(), bin.path(), cache.path()).unwrap();
        assert_ne!(other.gz, b"cached");
        assert!(real("coredns").is_none() && real("node").is_none());
    }

    #[test]
    fn the_list_skips_blank_and_comment_lines() {
        assert_eq!(
            references(
                "# kubeadm's\n registry.k8s.io/pause:3.10 \n\n\r\ndocker.io/calico/cni:v3.28.2\r\n"
            ),
            ["registry.k8s.io/pause:3.10", "docker.io/calico/cni:v3.28.2"]
        );
    }

    /// Everything pushed to a real docker-registry: the tags are manifest lists (amd64 first), the amd64 images
    /// are real / the CNI stand-in / a stand-in, every blob a manifest names is there with its digest. A second
    /// run (the blobs there already) pushes the same.
    #[test]
    fn pushes_manifest_lists_to_a_real_registry() {
        let d = tempfile::tempdir().unwrap();
        let reg = RegistryDaemon::start(&d.path().join("reg"), &d.path().join("data"), None);
        let bin = k8s_bin();
        let cni = tempfile::tempdir().unwrap();
        for p in CNI_PLUGINS {
            std::fs::write(cni.path().join(p), p).unwrap();
        }
        let busybox = d.path().join("busybox");
        std::fs::write(&busybox, b"BUSYBOX\n".repeat(100)).unwrap();
        let list = d.path().join("images.txt");
        std::fs::write(
            &list,
            "registry.k8s.io/pause:3.10\ndocker.io/calico/cni:v3.28.2\nregistry.k8s.io/coredns/coredns:v1.11.3\n",
        )
        .unwrap();
        let opts = ImagesOpts {
            lists: true,
            k8s_bin: Some(bin.path().into()),
            cni_plugins: Some(cni.path().into()),
            cache: d.path().join("cache"),
            busybox,
            ..ImagesOpts::new(&reg.host(), &list)
        };
        let http = reqwest::blocking::Client::new();
        let get = |path: &str| {
            let r = http
                .get(format!("{}/v2/{path}", reg.base()))
                .header("Accept", format!("{MANIFEST_LIST}, {MANIFEST}"))
                .send()
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.bytes().unwrap().to_vec()
        };
        let mut first = vec![];
        for run in 0..2 {
            images(&opts).unwrap();
            let mut got = vec![];
            for (repo, tag, cmd) in [
                ("registry.k8s.io/pause", "3.10", None),
                (
                    "docker.io/calico/cni",
                    "v3.28.2",
                    Some(r#"["/bin/sh","/install-cni.sh"]"#),
                ),
                (
                    "registry.k8s.io/coredns/coredns",
                    "v1.11.3",
                    Some(r#"["/bin/cat","/etc/kubeha-image"]"#),
                ),
            ] {
                let l: Value =
                    serde_json::from_slice(&get(&format!("{repo}/manifests/{tag}"))).unwrap();
                assert_eq!(l["mediaType"], MANIFEST_LIST);
                let ms = l["manifests"].as_array().unwrap();
                let archs: Vec<&Value> =
                    ms.iter().map(|m| &m["platform"]["architecture"]).collect();
                assert_eq!(archs, ["amd64", "arm64"]);
                for m in ms {
                    let raw = get(&format!(
                        "{repo}/manifests/{}",
                        m["digest"].as_str().unwrap()
                    ));
                    assert_eq!(oci::sha(&raw), m["digest"]);
                    let man: Value = serde_json::from_slice(&raw).unwrap();
                    assert_eq!(man["mediaType"], MANIFEST);
                    let cfg = get(&format!(
                        "{repo}/blobs/{}",
                        man["config"]["digest"].as_str().unwrap()
                    ));
                    assert_eq!(oci::sha(&cfg), man["config"]["digest"]);
                    let cfg: Value = serde_json::from_slice(&cfg).unwrap();
                    assert_eq!(cfg["architecture"], m["platform"]["architecture"]);
                    for layer in man["layers"].as_array().unwrap() {
                        let b = get(&format!(
                            "{repo}/blobs/{}",
                            layer["digest"].as_str().unwrap()
                        ));
                        assert_eq!(
                            (oci::sha(&b), b.len()),
                            (
                                layer["digest"].as_str().unwrap().to_string(),
                                layer["size"].as_u64().unwrap() as usize
                            )
                        );
                    }
                    if cfg["architecture"] == "amd64" {
                        match cmd {
                            None => assert_eq!(cfg["config"]["Entrypoint"], json!(["/pause"])),
                            Some(c) => assert_eq!(cfg["config"]["Cmd"].to_string(), c),
                        }
                    }
                }
                got.push(l);
            }
            if run == 0 {
                first = got;
            } else {
                assert_eq!(got, first, "a second run pushes the same");
            }
        }
    }
}
