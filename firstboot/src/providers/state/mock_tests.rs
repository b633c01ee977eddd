use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::providers::{fixtures, parse_config};
use kubeha_model::cluster::Role;

#[test]
fn state_roundtrip() {
    let d = tempfile::tempdir().unwrap();
    let p = StateProvider::new(d.path());
    assert!(p.fetch().unwrap().is_none(), "no earlier run");
    let c = fixtures::config_for("k8s-node02", Role::Worker);
    save(d.path(), &c).unwrap();
    let f = p.fetch().unwrap().unwrap();
    assert!(f.source.contains("earlier run"), "{}", f.source);
    assert_eq!(parse_config(&f.data, &f.source, None).unwrap(), c);
    let mode = std::fs::metadata(&p.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the resolved config holds secrets");
}
