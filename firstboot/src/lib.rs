//! kubeha-firstboot: the node agent (shaped like afterburn).
//!
//! - [`cli`]: the command line (`kubeha-firstboot [run]`, `kubeha-firstboot status`, `kubeha-firstboot install`).
//! - [`install`]: what the kickstart's `%post --nochroot` runs: the bundle, agent and node config into the sysroot.
//! - [`providers`]: where a node config may be (state, file, kernel cmdline, HTTP, config drive).
//! - [`source`]: the fixed order of providers, first hit wins; [`identity`]: who this node is.
//! - [`render`]: pure text (hosts, sysctl, repo files, containerd config...); [`apply`]: the steps that write them
//!   and run commands.
//! - [`retry`]: the one HTTP client. [`runner`]: the one command runner.
//! - [`engine`]: the step engine, journal, status and reports; [`steps`]: the list of steps it runs.
//! - `cluster`: the self-forming HA control plane (keepalived, nginx, kubeadm, etcd membership).
#![deny(missing_docs)]

pub mod apply;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod identity;
pub mod install;
pub mod precheck;
pub mod providers;
pub mod render;
pub mod retry;
pub mod runner;
pub mod source;
pub mod status;
pub mod steps;
pub mod util;

#[cfg(test)]
mod testutil;
