//! The demo's ADAPTERS: tools that would change the host if run for real, replaced on each node agent's PATH
//! (STATE/bin, made by [`super::fleet::Fleet::up`]: every name of [`NAMES`] a link to this `kubeha-lab` binary, which
//! runs the adapter its argv\[0\] names, see `main.rs`). Each adapter runs the REAL tool against the node root, or
//! records and checks the call; `systemctl` is systemd's stand-in ([`systemctl`]). Environment (set by
//! [`super::fleet::Fleet::start_agent`] for each node agent): KHD_ROOT (node root), KHD_NODE, KHD_IP, KHD_STATE (demo
//! state), KHD_RUN (short per-run dir under /run for sockets and the keepalived check script), KHD_NODE_UTS (set by
//! [`super::boot`]). Every call is one line of ROOT/var/log/kubeha-demo/calls.log: `<tool> <args joined by space>`.

mod common;
mod host;
mod packages;
mod systemctl;

use common::Ad;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;

/// Every adapter, by the tool name it stands in for (the names `kubeha-lab` answers to as argv\[0\], linked into
/// STATE/bin by `Fleet::up`).
pub const NAMES: &[&str] = &[
    "dnf",
    "firewall-cmd",
    "firewall-offline-cmd",
    "getenforce",
    "hostname",
    "modprobe",
    "nginx",
    "rpm",
    "setenforce",
    "swapoff",
    "sysctl",
    "systemctl",
    "yum",
];

/// Runs the adapter TOOL (one of [`NAMES`]) with ARGS; its exit code.
pub fn run(tool: &str, args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Like the shell's tools, die of SIGPIPE on a closed output (Rust ignores it; the exec'ed tools get it back).
    // SAFETY: no other thread yet; SIG_DFL is no handler.
    unsafe {
        use nix::sys::signal::{signal, SigHandler, Signal};
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
    let root = match std::env::var("KHD_ROOT") {
        Ok(r) if !r.is_empty() => r,
        _ => {
            eprintln!("{tool}: KHD_ROOT: demo adapter run outside the lab (no KHD_ROOT)");
            return 1;
        }
    };
    let ad = Ad {
        tool: tool.to_string(),
        args,
        log: PathBuf::from(format!("{root}/var/log/kubeha-demo")),
        pids: PathBuf::from(format!("{root}/run/kubeha-demo")),
        root,
    };
    let r = (|| {
        for d in [&ad.log, &ad.pids] {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("{tool}: mkdir {}: {e}", d.display()))?;
        }
        ad.record()?;
        match tool {
            "dnf" | "yum" => packages::dnf(&ad),
            "rpm" => packages::rpm(&ad),
            "systemctl" => systemctl::systemctl(&ad),
            "firewall-cmd" => host::firewall_cmd(&ad),
            "firewall-offline-cmd" => host::firewall_offline_cmd(&ad),
            "getenforce" => host::getenforce(&ad),
            "setenforce" => host::setenforce(&ad),
            "hostname" => host::hostname(&ad),
            "modprobe" => host::modprobe(&ad),
            "nginx" => host::nginx(&ad),
            "swapoff" => host::swapoff(&ad),
            "sysctl" => host::sysctl(&ad),
            _ => Err(ad.fail("no such adapter")),
        }
    })();
    let _ = std::io::stdout().flush();
    match r {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("{msg}");
            1
        }
    }
}
