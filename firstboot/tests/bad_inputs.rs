//! "Check everything before changing anything": every bad input the agent must refuse, one row each, through the agent's
//! full run on a temp root. A row turns the fixture (a master, `kubeha.name=k8s-master01`, a bundle the checks
//! accept) into one bad input, then:
//!
//! - the library's run (a recording runner, the OS and runtime steps) returns an error that names the field or file,
//!   quotes no secret (no `PRIVATE KEY`, no base64 run of the inputs, no line of /etc/passwd), stays short, and runs
//!   no command;
//! - the `kubeha-firstboot` binary (`--dry-run`: a refused input never gets near a real command) exits 1 saying the
//!   same, and prints no secret on stdout or stderr;
//! - the root's whole tree (every path, type, mode, size, mtime, sha256 and symlink target, the bundle included) is
//!   the same after both runs as before, but for status.json (0600, the failure, no secret).
//!
//! One row is an input that must be accepted (an FQDN node name).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use kubeha_firstboot::apply;
use kubeha_firstboot::cli::run::run_steps;
use kubeha_firstboot::cli::RunConfig;
use kubeha_firstboot::identity::HostFacts;
use kubeha_firstboot::runner::RecordingRunner;
use kubeha_model::cluster::Role;
use kubeha_model::{NodeConfig, Secrets};
use sha2::Digest;

/// The longest error a refusal may print (the 1 MB command line value must not come back whole).
const MAX_ERROR: usize = 2048;

const NODE_TOML: &str = "/etc/kubeha/node.toml";
const STATE_TOML: &str = "/var/lib/kubeha/node.toml";
const BUNDLE: &str = "var/lib/kubeha/bundle";
/// This machine, as the root's /sys tells the binary and HostFacts::gather the library.
const UUID: &str = "bbbb-2";
const MAC: &str = "52:54:00:aa:00:01";

/// A second set of secrets: keys from another cluster.
fn other() -> &'static Secrets {
    static S: OnceLock<Secrets> = OnceLock::new();
    S.get_or_init(|| Secrets::generate().unwrap())
}

/// A minisign key pair (public key line, secret key) and a second secret key.
fn sign_keys() -> &'static (String, String, String) {
    static K: OnceLock<(String, String, String)> = OnceLock::new();
    K.get_or_init(|| {
        let (public, secret) = kubeha_mirror::signature::keygen(None).unwrap();
        let (_, other) = kubeha_mirror::signature::keygen(None).unwrap();
        let line = kubeha_model::node::minisign_public_key_line(&public).unwrap();
        (line, secret, other)
    })
}

fn write_config(root: &Path, c: &NodeConfig) {
    common::put(root, NODE_TOML, &c.to_toml());
}

/// The installer's node config with `edit` applied.
fn with_config(root: &Path, edit: impl FnOnce(&mut NodeConfig)) {
    let mut c = common::config();
    edit(&mut c);
    write_config(root, &c);
}

/// The installer's node config text with `edit` applied (for what the types cannot hold).
fn with_config_text(root: &Path, edit: impl FnOnce(String) -> String) {
    let t = common::config().to_toml();
    let new = edit(t.clone());
    assert_ne!(new, t, "the edit changed nothing");
    common::put(root, NODE_TOML, &new);
}

/// One base64 character of a PEM block's line `line` (counted from the end when negative), at column `col`,
/// replaced by another.
fn flip(pem: &str, line: isize, col: usize) -> String {
    let mut lines: Vec<String> = pem.lines().map(str::to_string).collect();
    let i = if line < 0 {
        (lines.len() as isize + line) as usize
    } else {
        line as usize
    };
    let mut b = lines[i].clone().into_bytes();
    b[col] = if b[col] == b'A' { b'B' } else { b'A' };
    lines[i] = String::from_utf8(b).unwrap();
    lines.join("\n") + "\n"
}

fn control_plane(c: &mut NodeConfig) -> &mut kubeha_model::node::ControlPlane {
    c.control_plane.as_mut().unwrap()
}

fn cmdline(root: &Path, line: &str) {
    common::put(root, "/proc/cmdline", &format!("{line}\n"));
}

/// A sparse file of `size` bytes (holes read as zeros: a 300 MB file costs no disk and no time to make).
fn sparse(root: &Path, path: &str, size: u64) {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
}

fn bundle_toml(root: &Path) -> std::path::PathBuf {
    root.join(BUNDLE).join("bundle.toml")
}

fn edit_bundle_toml(root: &Path, from: &str, to: &str) {
    let p = bundle_toml(root);
    let t = std::fs::read_to_string(&p).unwrap();
    assert!(t.contains(from), "bundle.toml lacks {from}");
    std::fs::write(&p, t.replacen(from, to, 1)).unwrap();
}

/// Adds a file to the bundle and lists it with its sha256, as `kubeha bundle build` does.
fn add_bundle_file(root: &Path, rel: &str, data: &[u8]) {
    let dir = root.join(BUNDLE);
    std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
    std::fs::write(dir.join(rel), data).unwrap();
    let mut m = kubeha_model::bundle::BundleManifest::load(&dir).unwrap();
    m.files.push(kubeha_model::bundle::FileEntry {
        path: rel.into(),
        sha256: hex::encode(sha2::Sha256::digest(data)),
        size: data.len() as u64,
        mtime_ns: None,
    });
    m.files.sort_by(|a, b| a.path.cmp(&b.path));
    m.save(&dir).unwrap();
}

/// Replaces the fixture's bundle with one built (consistently: layout, files and bundle.toml agree) without the
/// image `drop`.
fn bundle_without(root: &Path, drop: &str) {
    let dir = root.join(BUNDLE);
    std::fs::remove_dir_all(&dir).unwrap();
    let images: Vec<String> = common::images()
        .into_iter()
        .filter(|r| !r.contains(drop))
        .collect();
    assert_eq!(images.len() + 1, common::images().len(), "{drop}");
    common::make_bundle_with(&dir, &images);
}

/// The node config asks for a signed bundle.
fn require_signature(root: &Path) {
    with_config(root, |c| c.bundle.public_key = Some(sign_keys().0.clone()));
}

/// An earlier run's state, as another machine left it.
fn foreign_state(root: &Path, hardware: &str) {
    let mut c = common::config();
    c.node.name = Some("k8s-master01".into());
    c.node.role = Some(Role::Master);
    common::put(root, STATE_TOML, &c.to_toml());
    common::put(root, "/var/lib/kubeha/hardware", hardware);
}

enum Want {
    /// Refused: the error holds every one of these (the field or file, and what is wrong).
    Refused(&'static [&'static str]),
    /// Accepted: the run goes through.
    Accepted,
}

type Setup = Box<dyn Fn(&Path)>;

fn rows() -> Vec<(&'static str, Setup, Want)> {
    use Want::*;
    let v = kubeha_model::Cluster::default_cluster()
        .cluster
        .kubernetes_version
        .to_string();
    let v2 = v.clone();
    vec![
        // Secrets in a master's node config.
        (
            "the CA key of another cluster (not its certificate's)",
            Box::new(|r: &Path| {
                with_config(r, |c| control_plane(c).ca_key = other().ca.key.clone())
            }),
            Refused(&[
                "control-plane.ca-key",
                "is not the private key of join.ca-cert",
            ]),
        ),
        (
            "a flipped base64 character in the middle of the CA key",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    let k = flip(&control_plane(c).ca_key, 12, 20);
                    control_plane(c).ca_key = k;
                })
            }),
            Refused(&["control-plane.ca-key", "not a valid RSA private key"]),
        ),
        (
            "a flipped base64 character in the CA key's last lines (its CRT values)",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    let k = flip(&control_plane(c).ca_key, -3, 20);
                    control_plane(c).ca_key = k;
                })
            }),
            Refused(&["control-plane.ca-key", "not a valid RSA private key"]),
        ),
        (
            "a flipped base64 character in the service-account key",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    let k = flip(&control_plane(c).service_account.key, -4, 7);
                    control_plane(c).service_account.key = k;
                })
            }),
            Refused(&["control-plane.service-account.key"]),
        ),
        (
            "the etcd CA key in the cluster CA's place",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    let k = control_plane(c).etcd_ca.key.clone();
                    control_plane(c).ca_key = k;
                })
            }),
            Refused(&[
                "control-plane.ca-key",
                "is not the private key of join.ca-cert",
            ]),
        ),
        (
            "the etcd CA (certificate and key) as the front-proxy CA too",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    let e = control_plane(c).etcd_ca.clone();
                    control_plane(c).front_proxy_ca = e;
                })
            }),
            Refused(&["control-plane.etcd-ca.key", "same key"]),
        ),
        (
            "a service-account public key that is not the private key's",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    control_plane(c).service_account.public = other().service_account.public.clone()
                })
            }),
            Refused(&[
                "control-plane.service-account.public",
                "not the public half",
            ]),
        ),
        (
            "a corrupted master config whose TOML error is on a CA key line",
            Box::new(|r: &Path| {
                with_config_text(r, |t| {
                    // An invalid escape in the middle of the CA key's base64: toml's own message would quote the
                    // line.
                    let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
                    let i = lines
                        .iter()
                        .position(|l| l.starts_with("ca-key = "))
                        .unwrap()
                        + 6;
                    assert_eq!(lines[i].len(), 64, "a base64 line of the key: {}", lines[i]);
                    lines[i].insert_str(10, "\\q");
                    lines.join("\n") + "\n"
                })
            }),
            Refused(&[NODE_TOML, "TOML error at line"]),
        ),
        (
            "a worker's node config carrying [control-plane]",
            Box::new(|r: &Path| {
                let mut c = common::config();
                c.node.name = Some("k8s-node01".into());
                c.node.role = Some(Role::Worker);
                write_config(r, &c);
                cmdline(r, "ro");
            }),
            Refused(&["control-plane", "a worker's node config must not carry"]),
        ),
        // The cluster in the node config.
        (
            "the VIP is the gateway",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    c.cluster.networking.gateway = Some(c.cluster.endpoint.vip)
                })
            }),
            Refused(&["cluster.endpoint.vip", "networking.gateway"]),
        ),
        (
            "a /30 service subnet",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    c.cluster.networking.service_subnet = "10.96.0.0/30".parse().unwrap()
                })
            }),
            Refused(&["cluster.networking.service-subnet", "too small"]),
        ),
        (
            "token-ttl-hours = 4294967295",
            Box::new(|r: &Path| with_config(r, |c| c.cluster.cluster.token_ttl_hours = u32::MAX)),
            Refused(&["cluster.cluster.token-ttl-hours"]),
        ),
        (
            "a multicast MAC",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    c.cluster.workers[0].mac = Some("01:00:5e:00:00:01".into())
                })
            }),
            Refused(&["cluster.workers[0].mac", "multicast"]),
        ),
        (
            "an all-zero MAC",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    c.cluster.workers[0].mac = Some("00:00:00:00:00:00".into())
                })
            }),
            Refused(&["cluster.workers[0].mac", "all-zero"]),
        ),
        (
            "time zone ../../etc/shadow",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    c.cluster.install.timezone = "../../etc/shadow".into()
                })
            }),
            Refused(&["cluster.install.timezone"]),
        ),
        (
            "an SSH key with an embedded newline",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    c.cluster.install.root_ssh_keys =
                        vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\nroot@evil".into()]
                })
            }),
            Refused(&["cluster.install.root-ssh-keys[0]"]),
        ),
        (
            "an FQDN node name (accepted, as config check accepts it)",
            Box::new(|r: &Path| {
                with_config(r, |c| {
                    c.cluster.workers[0].name = "node01.k8s.example.com".into()
                });
                cmdline(r, "ro kubeha.name=node01.k8s.example.com");
            }),
            Accepted,
        ),
        // The bundle.
        (
            "a flipped byte in an image blob",
            Box::new(|r: &Path| {
                let blobs = r.join(BUNDLE).join("images/blobs/sha256");
                let p = std::fs::read_dir(&blobs)
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path();
                let mut b = std::fs::read(&p).unwrap();
                b[0] ^= 1;
                std::fs::write(&p, b).unwrap();
            }),
            Refused(&["images/blobs/sha256/", "bundle.toml says"]),
        ),
        (
            "a flipped byte in an RPM",
            Box::new(|r: &Path| {
                let rel = "rpms/conntrack-tools-1.4.7-2.el9.x86_64.rpm";
                add_bundle_file(
                    r,
                    rel,
                    b"\xed\xab\xee\xdb not really an rpm, but hashed like one",
                );
                let p = r.join(BUNDLE).join(rel);
                let mut b = std::fs::read(&p).unwrap();
                b[20] ^= 1;
                std::fs::write(&p, b).unwrap();
            }),
            Refused(&["rpms/conntrack-tools-1.4.7-2.el9.x86_64.rpm", "sha256"]),
        ),
        (
            "an edited CNI manifest",
            Box::new(|r: &Path| {
                let p = r.join(BUNDLE).join("files/calico.yaml");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, t.replace("cni:", "cNi:")).unwrap();
            }),
            Refused(&["files/calico.yaml", "sha256"]),
        ),
        (
            "the CNI manifest a symlink to /etc/hostname",
            Box::new(|r: &Path| {
                let p = r.join(BUNDLE).join("files/calico.yaml");
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink("/etc/hostname", &p).unwrap();
            }),
            Refused(&["files/calico.yaml", "not a regular file"]),
        ),
        (
            "a bundle built without one of kubeadm's images",
            Box::new(|r: &Path| bundle_without(r, "coredns")),
            Refused(&["bundle.toml", "lacks kubeadm's images", "coredns"]),
        ),
        (
            "a bundle built without one of the CNI manifest's images",
            Box::new(|r: &Path| bundle_without(r, "calico/node")),
            Refused(&["files/calico.yaml", "needs images", "calico/node"]),
        ),
        (
            "an image's entry removed from bundle.toml",
            Box::new(|r: &Path| {
                let p = bundle_toml(r);
                let t = std::fs::read_to_string(&p).unwrap();
                let i = t.find("[[images]]").unwrap();
                let j = t[i + 1..].find("[[").unwrap() + i + 1;
                std::fs::write(&p, format!("{}{}", &t[..i], &t[j..])).unwrap();
            }),
            Refused(&["index.json", "does not list"]),
        ),
        (
            "a bundle built for another Kubernetes release than the cluster's",
            Box::new(move |r: &Path| {
                edit_bundle_toml(
                    r,
                    &format!("kubernetes-version = \"{v}\""),
                    "kubernetes-version = \"1.35.0\"",
                )
            }),
            Refused(&["cluster.kubernetes-version", "1.35.0"]),
        ),
        (
            "a bundle whose kubelet RPM is another release than the cluster's",
            Box::new(move |r: &Path| {
                edit_bundle_toml(
                    r,
                    &format!("nevra = \"kubelet-{v2}-"),
                    "nevra = \"kubelet-1.35.0-",
                )
            }),
            Refused(&["rpms", "kubelet-1.35.0-150500.1.1.x86_64", "cluster.kubernetes-version"]),
        ),
        (
            "bundle.public-key set, the bundle unsigned",
            Box::new(require_signature),
            Refused(&["bundle.public-key", "not signed"]),
        ),
        (
            "bundle.public-key set, the bundle signed with another key",
            Box::new(|r: &Path| {
                require_signature(r);
                kubeha_mirror::signature::sign_manifest(&r.join(BUNDLE), &sign_keys().2, None)
                    .unwrap();
            }),
            Refused(&["bundle.public-key", "another key"]),
        ),
        (
            "bundle.public-key set, bundle.toml changed after signing",
            Box::new(|r: &Path| {
                require_signature(r);
                kubeha_mirror::signature::sign_manifest(&r.join(BUNDLE), &sign_keys().1, None)
                    .unwrap();
                edit_bundle_toml(r, "containerd.io-1.7.24", "containerd.io-1.7.25");
            }),
            Refused(&["bundle.public-key", "changed after signing"]),
        ),
        // The identity.
        (
            "an earlier run's state from a machine with another SMBIOS UUID",
            Box::new(|r: &Path| foreign_state(r, &format!("uuid=aaaa-1\nmacs={MAC}\n"))),
            Refused(&[STATE_TOML, "another machine", "aaaa-1"]),
        ),
        (
            "an earlier run's state from a machine with other MACs (no UUID known)",
            Box::new(|r: &Path| {
                foreign_state(r, "uuid=\nmacs=52:54:00:00:00:01\n");
                std::fs::remove_file(r.join("sys/class/dmi/id/product_uuid")).unwrap();
            }),
            Refused(&[STATE_TOML, "other network cards", "52:54:00:00:00:01"]),
        ),
        (
            "an earlier run's state with no record of its machine (a preserved disk, another agent)",
            Box::new(|r: &Path| {
                foreign_state(r, "");
                std::fs::remove_file(r.join("var/lib/kubeha/hardware")).unwrap();
            }),
            Refused(&[STATE_TOML, "no record of the machine", "/var/lib/kubeha/hardware"]),
        ),
        (
            "a 300 MB hardware record",
            Box::new(|r: &Path| {
                foreign_state(r, "");
                std::fs::File::create(r.join("var/lib/kubeha/hardware"))
                    .unwrap()
                    .set_len(300 << 20)
                    .unwrap();
            }),
            Refused(&["/var/lib/kubeha/hardware", "larger than"]),
        ),
        // The kernel command line and the size of what is read.
        (
            "kubeha.config=file:/../../../etc/passwd",
            Box::new(|r: &Path| {
                std::fs::remove_file(r.join(NODE_TOML.trim_start_matches('/'))).unwrap();
                cmdline(
                    r,
                    "ro kubeha.name=k8s-master01 kubeha.config=file:/../../../etc/passwd",
                );
            }),
            Refused(&[
                "kubeha.config",
                "file:/../../../etc/passwd",
                "not an absolute path",
            ]),
        ),
        (
            "kubeha.config=file: a passwd file (its TOML error must not quote it)",
            Box::new(|r: &Path| {
                std::fs::remove_file(r.join(NODE_TOML.trim_start_matches('/'))).unwrap();
                common::put(
                    r,
                    "/boot/passwd",
                    "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\n",
                );
                cmdline(
                    r,
                    "ro kubeha.name=k8s-master01 kubeha.config=file:/boot/passwd",
                );
            }),
            Refused(&["/boot/passwd", "kubeha.config", "TOML error at line 1"]),
        ),
        (
            "the installer's node.toml a symlink to a host file",
            Box::new(|r: &Path| {
                let p = r.join(NODE_TOML.trim_start_matches('/'));
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
            }),
            Refused(&[NODE_TOML, "outside the root"]),
        ),
        (
            "kubeha.config=file: a symlink through a directory to the host's /etc",
            Box::new(|r: &Path| {
                std::fs::remove_file(r.join(NODE_TOML.trim_start_matches('/'))).unwrap();
                std::fs::create_dir_all(r.join("boot")).unwrap();
                std::os::unix::fs::symlink("/etc", r.join("boot/hostetc")).unwrap();
                cmdline(
                    r,
                    "ro kubeha.name=k8s-master01 kubeha.config=file:/boot/hostetc/passwd",
                );
            }),
            Refused(&["/boot/hostetc/passwd", "kubeha.config", "outside the root"]),
        ),
        (
            "a 1 MB kubeha.name value",
            Box::new(|r: &Path| cmdline(r, &format!("ro kubeha.name={}", "a".repeat(1 << 20)))),
            Refused(&["kubeha.name", "longer than 4096"]),
        ),
        (
            "a 1 MB kubeha.* key",
            Box::new(|r: &Path| {
                cmdline(
                    r,
                    &format!(
                        "ro kubeha.name=k8s-master01 kubeha.{}=1",
                        "x".repeat(1 << 20)
                    ),
                )
            }),
            Refused(&["kubeha.xxxx", "unknown key"]),
        ),
        (
            "a 300 MB plain /etc/kubeha/node.toml",
            Box::new(|r: &Path| sparse(r, NODE_TOML, 300 << 20)),
            Refused(&[NODE_TOML, "larger than 4194304 bytes"]),
        ),
        (
            "a 300 MB plain /var/lib/kubeha/node.toml (an earlier run's state)",
            Box::new(|r: &Path| {
                foreign_state(r, &format!("uuid={UUID}\nmacs={MAC}\n"));
                sparse(r, STATE_TOML, 300 << 20)
            }),
            Refused(&[STATE_TOML, "larger than 4194304 bytes"]),
        ),
    ]
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
        mtime: (i64, i64),
        sha256: String,
    },
    Link {
        target: std::path::PathBuf,
    },
}

/// Every path under `root`, nothing left out and nothing summarized.
fn tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            let entry = if m.file_type().is_symlink() {
                Entry::Link {
                    target: std::fs::read_link(&p).unwrap(),
                }
            } else if m.is_dir() {
                stack.push(p.clone());
                Entry::Dir { mode }
            } else {
                let mut h = sha2::Sha256::new();
                let mut f = std::fs::File::open(&p).unwrap();
                let mut buf = vec![0; 1 << 20];
                loop {
                    let n = f.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                Entry::File {
                    mode,
                    size: m.len(),
                    mtime: (m.mtime(), m.mtime_nsec()),
                    sha256: hex::encode(h.finalize()),
                }
            };
            out.insert(rel, entry);
        }
    }
    out
}

/// What differs between two trees, one line per path.
fn diff(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            None => out.push(format!("removed {p}")),
            Some(a) if a != b => out.push(format!("changed {p}: {b:?} -> {a:?}")),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("added {p}"));
    }
    out
}

/// What no error may quote: every base64 run of 40 characters or more in the row's inputs (key and certificate
/// lines, flipped or not; the installer's file, the state, the command line), the secrets' other values, and
/// /etc/passwd lines.
fn forbidden(root: &Path, tree: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut out: Vec<String> = ["PRIVATE KEY", "root:x:0:0", "bin:x:1:1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(l) = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
    {
        out.push(l);
    }
    for s in [common::secrets(), other()] {
        out.push(s.certificate_key.clone());
        out.push(s.vrrp_auth_pass.clone());
        out.push(s.bootstrap_token.split('.').nth(1).unwrap().to_string());
    }
    for (p, e) in tree {
        if p.starts_with(&format!("/{BUNDLE}")) || p == "/proc/cmdline" {
            continue;
        }
        if !matches!(e, Entry::File { size, .. } if *size <= 4 << 20) {
            continue;
        }
        let text =
            String::from_utf8_lossy(&std::fs::read(root.join(&p[1..])).unwrap()).into_owned();
        out.extend(
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
                .filter(|w| w.len() >= 40)
                .map(str::to_string),
        );
    }
    out
}

/// At most `n` characters of `s`.
fn head(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn leaks<'a>(text: &str, forbidden: &'a [String]) -> Vec<&'a str> {
    forbidden
        .iter()
        .filter(|f| text.contains(f.as_str()))
        .map(|f| &f[..f.len().min(80)])
        .collect()
}

/// The fixture every row starts from: a master with this machine's UUID and MAC under /sys.
fn fixture(root: &Path) {
    common::make_root(root, "ro kubeha.name=k8s-master01");
    common::put(root, "/sys/class/dmi/id/product_uuid", &format!("{UUID}\n"));
    common::put(root, "/sys/class/net/eth0/address", &format!("{MAC}\n"));
}

fn run_library(root: &Path) -> (anyhow::Result<()>, Vec<String>) {
    let cfg = RunConfig {
        root: root.to_path_buf(),
        cmdline: None,
        config: None,
        dry_run: false,
        wait: Some(0),
    };
    let rec = Arc::new(RecordingRunner::default());
    let r = run_steps(
        cfg,
        Box::new(rec.clone()),
        HostFacts::gather(root),
        apply::steps,
    );
    (r, rec.lines())
}

fn run_binary(root: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kubeha-firstboot"))
        .arg("--root")
        .arg(root)
        .args(["--dry-run", "--wait", "0"])
        .env("KUBEHA_LOG", "info")
        .output()
        .unwrap()
}

/// status.json after a refusal: the one file written, 0600, saying failed, quoting no secret. Removed.
fn take_status(root: &Path, what: &str, forbidden: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let p = root.join("var/lib/kubeha/status.json");
    match std::fs::read_to_string(&p) {
        Err(e) => problems.push(format!("{what}: no status.json: {e}")),
        Ok(t) => {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            let st: serde_json::Value = serde_json::from_str(&t).unwrap();
            if st["state"] != "failed" || mode != 0o600 {
                problems.push(format!("{what}: status.json {mode:o}: {t}"));
            }
            let l = leaks(&t, forbidden);
            if !l.is_empty() {
                problems.push(format!("{what}: status.json quotes {l:?}"));
            }
            std::fs::remove_file(&p).unwrap();
        }
    }
    problems
}

#[test]
fn every_bad_input_is_refused_before_anything_changes() {
    let start = std::time::Instant::now();
    let mut problems: Vec<String> = Vec::new();
    let rows = rows();
    {
        // The leak check knows the fixture's keys: every base64 line of them is forbidden.
        let d = tempfile::tempdir().unwrap();
        fixture(d.path());
        let f = forbidden(d.path(), &tree(d.path()));
        let s = common::secrets();
        for key in [
            &s.ca.key,
            &s.etcd_ca.key,
            &s.front_proxy_ca.key,
            &s.service_account.key,
        ] {
            for l in key.lines().filter(|l| l.len() >= 40) {
                assert!(f.iter().any(|x| x == l), "{l} is not forbidden");
            }
        }
    }
    for (what, setup, want) in &rows {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fixture(root);
        setup(root);
        let before = tree(root);
        let forbidden = forbidden(root, &before);

        // The library's run.
        let (r, lines) = run_library(root);
        let want = match want {
            Want::Accepted => {
                match r {
                    Ok(()) => {
                        if !lines.iter().any(|l| l == "hostname node01.k8s.example.com") {
                            problems.push(format!("{what}: accepted, but {lines:?}"));
                        }
                    }
                    Err(e) => problems.push(format!("{what}: refused: {e:#}")),
                }
                // The tree compare sees what an accepted run writes (so it would see a refused one's writes).
                if diff(&before, &tree(root)).is_empty() {
                    problems.push(format!(
                        "{what}: accepted, yet the tree compare saw no change"
                    ));
                }
                // The binary on a fresh root (the library's run above left this one done).
                let d = tempfile::tempdir().unwrap();
                fixture(d.path());
                setup(d.path());
                let out = run_binary(d.path());
                if !out.status.success() {
                    problems.push(format!(
                        "{what}: the binary refused it: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                continue;
            }
            Want::Refused(w) => w,
        };
        let e = match r {
            Ok(()) => {
                problems.push(format!("{what}: ACCEPTED (ran {} commands)", lines.len()));
                continue;
            }
            Err(e) => format!("{e:#}"),
        };
        let missing: Vec<&&str> = want.iter().filter(|w| !e.contains(**w)).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{what}: the error lacks {missing:?}: {}",
                head(&e, MAX_ERROR)
            ));
        }
        if e.len() > MAX_ERROR {
            problems.push(format!(
                "{what}: a {}-byte error: {}...",
                e.len(),
                head(&e, 200)
            ));
        }
        let l = leaks(&e, &forbidden);
        if !l.is_empty() {
            problems.push(format!("{what}: the error quotes {l:?}"));
        }
        if !lines.is_empty() {
            problems.push(format!("{what}: commands ran: {lines:?}"));
        }
        problems.extend(take_status(root, what, &forbidden));
        let changed = diff(&before, &tree(root));
        if !changed.is_empty() {
            problems.push(format!(
                "{what}: the library's run changed the node: {changed:?}"
            ));
        }

        // The binary.
        let out = run_binary(root);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(1) {
            problems.push(format!("{what}: the binary exited {:?}", out.status.code()));
        }
        let missing: Vec<&&str> = want.iter().filter(|w| !stderr.contains(**w)).collect();
        if !missing.is_empty() {
            problems.push(format!("{what}: the binary's stderr lacks {missing:?}"));
        }
        if stdout.len() + stderr.len() > 4 * MAX_ERROR {
            problems.push(format!(
                "{what}: the binary printed {} bytes",
                stdout.len() + stderr.len()
            ));
        }
        let l = leaks(&format!("{stdout}{stderr}"), &forbidden);
        if !l.is_empty() {
            problems.push(format!("{what}: the binary printed {l:?}"));
        }
        problems.extend(take_status(root, &format!("{what} (binary)"), &forbidden));
        let changed = diff(&before, &tree(root));
        if !changed.is_empty() {
            problems.push(format!("{what}: the binary changed the node: {changed:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems in {} rows:\n{}",
        problems.len(),
        rows.len(),
        problems.join("\n")
    );
    eprintln!("{} rows in {:?}", rows.len(), start.elapsed());
}
