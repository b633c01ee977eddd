//! The kernel command line: `kubeha_model::KernelArgs::parse` never panics, never echoes a value whole, and what it
//! accepts validates and round-trips through `to_args`; the agent's provider (cmdline/mod.rs, the file the agent
//! runs) agrees with it.
#![no_main]
#[path = "../../src/providers/cmdline/mod.rs"]
mod cmdline;
use kubeha_model::KernelArgs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let pairs = cmdline::split(s);
    for (k, _) in &pairs {
        assert!(!k.is_empty() || pairs.iter().any(|(_, v)| v.is_some()));
    }
    let parsed = KernelArgs::parse(s);
    match &parsed {
        Ok(a) => {
            if let Some(n) = &a.name {
                assert!(cmdline::is_node_name(n));
            }
            if let Some(h) = &a.config_sha256 {
                assert_eq!(h.len(), 64);
                assert!(a.config.is_some());
            }
            a.validate().expect("what parse returns validates");
            let again = KernelArgs::parse(&a.to_args().join(" ")).expect("to_args re-parses");
            assert_eq!(&again, a);
        }
        // Errors show at most 64 characters of a key or value (plus the fixed text).
        Err(e) => assert!(e.to_string().len() < 600, "{e}"),
    }
    match cmdline::parse(s) {
        Ok(b) => {
            let a = parsed.expect("the provider accepts only what KernelArgs accepts");
            assert_eq!((&b.role, &b.name, &b.config), (&a.role, &a.name, &a.config));
            assert_eq!((&b.config_sha256, &b.report, &b.bootstrap), (&a.config_sha256, &a.report, &a.bootstrap));
        }
        Err(_) => assert!(parsed.is_err()),
    }
});
