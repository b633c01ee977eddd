use super::*;
use crate::providers::{fixtures, parse_config};

#[test]
fn file_present_missing_and_unreadable() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("node.toml");
    let prov = FileProvider {
        root: None,
        path: p.clone(),
        origin: "test".into(),
    };
    assert!(
        prov.fetch().unwrap().is_none(),
        "missing file is not an error"
    );
    std::fs::write(&p, fixtures::config().to_toml()).unwrap();
    let f = prov.fetch().unwrap().unwrap();
    assert!(f.source.contains("node.toml"));
    assert_eq!(
        parse_config(&f.data, &f.source, None).unwrap(),
        fixtures::config()
    );
    // A directory where the file should be is an error, named.
    let prov = FileProvider {
        root: None,
        path: d.path().to_path_buf(),
        origin: "test".into(),
    };
    let e = format!("{:#}", prov.fetch().unwrap_err());
    assert!(e.contains("reading"), "{e}");
}

#[test]
fn a_huge_file_is_refused_without_reading_it_whole() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("node.toml");
    // Sparse: 300 MB that would take 300 MB of memory if read whole.
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(300 << 20).unwrap();
    let prov = FileProvider {
        root: None,
        path: p,
        origin: "test".into(),
    };
    let e = format!("{:#}", prov.fetch().unwrap_err());
    assert!(e.contains("larger than 4194304 bytes"), "{e}");
}
