//! kubeha's test lab, shared by the crates' integration tests (a dev-dependency only, never shipped): network
//! namespaces named by a per-test unique prefix ([`netns`]: one namespace, or hosts with veth pairs onto a bridge),
//! the real daemons the tests start ([`daemon`]: docker-registry, dockerd, containerd, python's http.server; etcd
//! members in a [`Lab`]), each stopped by its own pid on drop, and free loopback ports.
//!
//! [`demo`] is the demo's own logic (`kubeha-lab check-result`, `kubeha-lab summary`: the binary `make demo` runs);
//! its generated upstream ([`demo::upstream`]: images pushed to a registry, yum repos) serves tests too.
//!
//! Namespaces and daemons need root; tests ask [`is_root`] or [`netns::lab_available`] first and say SKIP otherwise.

pub mod daemon;
pub mod demo;
pub mod netns;

pub use daemon::{Containerd, Daemon, Dockerd, HttpDir, Registry, TokenAuth};
pub use netns::{in_netns, EtcdMember, Lab, Netns};

use std::time::{Duration, Instant};

/// A free port on `ip` (bound, then released: a tiny race, fine for tests).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `f` is true, or panics naming `what`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Whether this process runs as root (network namespaces need it); prints a SKIP line when not.
pub fn is_root() -> bool {
    let root = nix::unistd::getuid().is_root();
    if !root {
        eprintln!("SKIP: needs root for network namespaces");
    }
    root
}
