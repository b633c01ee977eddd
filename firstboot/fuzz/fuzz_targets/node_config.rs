//! The node config parser (pin, gzip, UTF-8, TOML, validation): never panics; an accepted config round-trips.
#![no_main]
#[path = "../../src/providers/parse.rs"]
mod parse;
use parse::parse_config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = parse_config(data, "fuzz", None) {
        let again = parse_config(c.to_toml().as_bytes(), "fuzz round trip", None).expect("a valid config re-parses");
        assert_eq!(again, c);
    }
});
