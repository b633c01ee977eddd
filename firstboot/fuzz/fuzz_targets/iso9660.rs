//! The ISO9660 reader on arbitrary images: errors, never panics or huge allocations. The input becomes the image from
//! sector 16 on (the volume descriptors), each sector stamped with the `CD001` magic and followed by a terminator, so
//! the fuzzer spends its time on descriptors, directory records and Rock Ridge/Joliet names rather than on the magic.
#![no_main]
#[path = "../../src/providers/configdrive/iso9660.rs"]
mod iso9660;
use iso9660::Iso;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut img = vec![0u8; 16 * 2048];
    img.extend_from_slice(data);
    img.resize(img.len().div_ceil(2048) * 2048, 0);
    img.extend_from_slice(&[255]);
    img.resize(img.len().div_ceil(2048) * 2048, 0);
    for s in (16 * 2048..img.len()).step_by(2048) {
        img[s + 1..s + 6].copy_from_slice(b"CD001");
    }
    if let Ok(mut iso) = Iso::open(std::io::Cursor::new(img)) {
        if let Ok(Some(e)) = iso.lookup("node.toml") {
            let _ = iso.read_file(&e, 1 << 20);
        }
        let _ = iso.lookup("a/b/c");
    }
});
