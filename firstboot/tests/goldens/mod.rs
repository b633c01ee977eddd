//! The golden files of the rendered files (`testdata/golden/`), shared by the render tests and the pin of
//! `cluster-lb` (`lb-step-*.txt`, tests/lb_step.rs): `UPDATE_GOLDEN=1` rewrites them after an intended change
//! (`UPDATE_GOLDEN=1 cargo test -p kubeha-firstboot --test cluster_render --test render_os --test lb_step`).
#![allow(dead_code)]

use std::path::PathBuf;

/// The directory of the golden files.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/golden")
}

/// Compares `got` with the golden file `name`, or writes it with UPDATE_GOLDEN=1.
pub fn golden(name: &str, got: &str) {
    let p = dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e} (UPDATE_GOLDEN=1 writes it)", p.display()));
    assert_eq!(
        got,
        want,
        "Generated output does not match file: {}",
        p.display()
    );
}
