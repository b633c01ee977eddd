//! Shared by the cluster tests: fixed inputs, and the lab (kubeha-lab's network namespaces) for the lab tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use kubeha_model::cluster::Role;
use kubeha_model::{Cluster, NodeConfig, Secrets};

/// Secrets generated once per test process (RSA generation is slow in debug builds).
pub fn secrets() -> &'static Secrets {
    static S: OnceLock<Secrets> = OnceLock::new();
    S.get_or_init(|| Secrets::generate().expect("secrets"))
}

/// A master's node config for `cluster`.
pub fn master_config(c: &Cluster, name: &str) -> NodeConfig {
    let nc =
        NodeConfig::build(c, secrets(), Some(Role::Master), Some(name), true).expect("node config");
    nc.check("test").expect("valid");
    nc
}

/// A worker's node config.
pub fn worker_config(c: &Cluster, name: &str) -> NodeConfig {
    NodeConfig::build(c, secrets(), Some(Role::Worker), Some(name), false).expect("node config")
}

// The lab (network namespaces, a bridge, processes started in them and stopped by pid) is kubeha-lab's; each test
// binary uses some of it.
#[allow(unused_imports)]
pub use kubeha_lab::netns::{in_netns, lab_available, sh, sh_ok, Lab};

/// Writes a file, creating its directory.
pub fn put(p: &Path, data: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}
