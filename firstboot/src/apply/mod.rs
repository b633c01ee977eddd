//! The steps that prepare the OS and the container runtime: each writes files rendered by [`crate::render`] through
//! [`Context::write_file`](crate::engine::Context::write_file) and runs commands through the runner, checking
//! before it acts.
//!
//! Order: hostname, hosts, selinux, swap, modules, sysctl, firewall, time (phase `os`); repo, packages (phase
//! `packages`); runtime, images, kubelet (phase `runtime`).

pub mod images;
pub mod os;
pub mod packages;
pub mod runtime;

use kubeha_model::cluster::Role;

use crate::engine::Step;

/// The OS-preparation and runtime steps, in order.
pub fn steps(_role: Role) -> Vec<Box<dyn Step>> {
    vec![
        Box::new(os::Hostname),
        Box::new(os::Hosts),
        Box::new(os::Selinux),
        Box::new(os::Swap),
        Box::new(os::Modules),
        Box::new(os::Sysctl),
        Box::new(os::Firewall),
        Box::new(os::TimeSync),
        Box::new(packages::Repo),
        Box::new(packages::Packages),
        Box::new(runtime::ContainerRuntime),
        Box::new(images::Images),
        Box::new(runtime::Kubelet),
    ]
}
