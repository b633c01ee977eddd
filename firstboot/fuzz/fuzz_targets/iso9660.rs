//! The ISO9660 reader on arbitrary images: errors, never panics or huge allocations.
#![no_main]
#[path = "../../src/providers/configdrive/iso9660.rs"]
mod iso9660;
use iso9660::Iso;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut iso) = Iso::open(std::io::Cursor::new(data)) {
        if let Ok(Some(e)) = iso.lookup("node.toml") {
            let _ = iso.read_file(&e, 1 << 20);
        }
        let _ = iso.lookup("a/b/c");
    }
});
