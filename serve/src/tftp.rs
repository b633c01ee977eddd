//! `kubeha serve --tftp DIR`: the TFTP side, for any TFTP server to serve. kubeha serve runs no TFTP server; PXE
//! firmware loads iPXE from DIR, and iPXE chains to this server over HTTP:
//!
//! ```text
//! DIR/undionly.kpxe   iPXE for BIOS PXE clients (DHCP filename)       from the ipxe package
//! DIR/ipxe.efi        iPXE for UEFI PXE clients (DHCP filename)       from the ipxe package
//! DIR/boot.ipxe       for iPXE clients (DHCP user-class "iPXE"): chain URL/boot.ipxe?mac=${net0/mac}
//! DIR/autoexec.ipxe   the same script, which ipxe.efi fetches first from where it was loaded: UEFI clients
//!                     then reach the server even when DHCP cannot tell iPXE from the firmware (a DHCP
//!                     filename of ipxe.efi for both would loop)
//! ```

use std::path::Path;

use crate::{io, Result};

/// The chain script's file name.
pub const CHAIN: &str = "boot.ipxe";
/// The script ipxe.efi looks for beside itself before DHCP's filename.
pub const AUTOEXEC: &str = "autoexec.ipxe";

/// iPXE's loaders: the name in DIR and where distributions put them (Debian `ipxe`, then EL `ipxe-bootimgs-x86`).
pub const LOADERS: &[(&str, &[&str])] = &[
    (
        "undionly.kpxe",
        &[
            "/usr/lib/ipxe/undionly.kpxe",
            "/usr/share/ipxe/undionly.kpxe",
        ],
    ),
    (
        "ipxe.efi",
        &["/usr/lib/ipxe/ipxe.efi", "/usr/share/ipxe/ipxe-x86_64.efi"],
    ),
];

/// The chain script: iPXE asks `url` for this machine's script by its MAC.
pub fn chain_script(url: &str) -> String {
    format!("#!ipxe\n# kubeha serve: this machine's script, by its MAC\nchain {url}/boot.ipxe?mac=${{net0/mac}}\n")
}

/// Writes DIR (created if missing; files replaced). Returns the loaders that were not found on this machine.
pub fn write(dir: &Path, url: &str) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    for name in [CHAIN, AUTOEXEC] {
        kubeha_model::fsutil::write_atomic(
            &dir.join(name),
            chain_script(url).as_bytes(),
            0o644,
            true,
        )?;
    }
    let mut missing = Vec::new();
    for (name, candidates) in LOADERS {
        match candidates.iter().map(Path::new).find(|p| p.is_file()) {
            Some(p) => {
                let data = std::fs::read(p).map_err(io("reading", p))?;
                kubeha_model::fsutil::write_atomic(&dir.join(name), &data, 0o644, true)?;
            }
            None => missing.push(name.to_string()),
        }
    }
    Ok(missing)
}
