//! The kernel command line parser: never panics; what it accepts is consistent.
#![no_main]
#[path = "../../src/providers/cmdline/mod.rs"]
mod cmdline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let pairs = cmdline::split(s);
    for (k, _) in &pairs {
        assert!(!k.is_empty() || pairs.iter().any(|(_, v)| v.is_some()));
    }
    if let Ok(a) = cmdline::parse(s) {
        if let Some(n) = &a.name {
            assert!(cmdline::is_node_name(n));
        }
        if let Some(h) = &a.config_sha256 {
            assert_eq!(h.len(), 64);
            assert!(a.config.is_some());
        }
    }
});
