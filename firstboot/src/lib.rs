//! kubeha-firstboot: the node agent (shaped like afterburn).
//!
//! - [`runner`]: the one command runner every external tool goes through (real, or dry-run/recording).
//! - [`engine`]: the step engine: a [`engine::Context`] (root, runner, node config, identity) and [`engine::Step`]s.
//! - `cluster`: the self-forming HA control plane (keepalived, nginx, kubeadm, etcd membership).

pub mod cluster;
pub mod engine;
pub mod runner;
