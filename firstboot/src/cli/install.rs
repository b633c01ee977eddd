//! `kubeha-firstboot install`.

use std::path::PathBuf;

use anyhow::Result;

use super::InstallConfig;
use crate::identity::HostFacts;
use crate::install::{self, InstallSource, Options};

/// Installs into `--sysroot` (stdout: the installer's log lines).
pub fn run(cfg: InstallConfig) -> Result<()> {
    let opts = Options {
        sysroot: cfg.sysroot,
        from: InstallSource::parse(&cfg.from)?,
        cmdline: cfg.cmdline,
        host_root: PathBuf::from("/"),
    };
    println!(
        "kubeha: installing from {} into {}",
        opts.from.describe(""),
        opts.sysroot.display()
    );
    let r = install::install(&opts, &HostFacts::gather(&opts.host_root))?;
    println!(
        "kubeha: bundle: {} files ({} bytes) verified, installed at {}{}",
        r.files,
        r.bytes,
        r.bundle_path,
        if r.signature {
            " with its signature"
        } else {
            ""
        }
    );
    match &r.identity {
        Some((name, role)) => println!("kubeha: this is {name} ({role}): {}", r.how),
        None => println!("kubeha: node identity {}", r.how),
    }
    println!("kubeha: node config from {}", r.config_source);
    if r.keys_dropped {
        println!("kubeha: this node is a worker: its node config is installed without the control plane's keys");
    }
    Ok(())
}
