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

#[test]
fn an_oversized_state_file_is_refused_unread() {
    let d = tempfile::tempdir().unwrap();
    let p = StateProvider::new(d.path());
    std::fs::create_dir_all(p.path.parent().unwrap()).unwrap();
    // Sparse: 300 MB that cost nothing to make; only the first MAX_CONFIG + 1 bytes are read.
    std::fs::File::create(&p.path)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let e = format!("{:#}", p.fetch().unwrap_err());
    assert!(
        e.contains("larger than") && e.contains("state of an earlier run"),
        "{e}"
    );
}
