//! The self-forming HA control plane: keepalived VIP + nginx TCP load balancer on every master, stacked etcd, and
//! kubeadm init/join with no operator, including rebuild by reimaging.
//!
//! - [`keepalived`], [`nginx`], [`kubeadm`]: pure renderers (golden tests in `testdata/golden/`).
//! - [`pki`]: the shared CA material into /etc/kubernetes/pki, and certificates the agent signs for itself.
//! - [`decide`]: who initializes and when the others join; [`attest`]: the majority a designated master needs
//!   before it initializes; [`net`] is their real network side.
//! - [`etcd`]: membership over etcd's JSON gateway (stale member removal); [`kubeapi`]: Node deletion.
//! - [`lb`]: `cluster-lb` (keepalived + nginx) as plan → render → execute ([`lb_plan`], [`lb_render`],
//!   [`lb_execute`]).
//! - [`steps`]: the other [`crate::engine::Step`]s; [`steps()`] lists them all, in order.
//!
//! To change what a node runs, add a step to [`steps_with`] (keep it idempotent: check, then act); to change a
//! rendered file, change its renderer and regenerate the golden files (`UPDATE_GOLDEN=1 cargo test -p
//! kubeha-firstboot --test cluster_render`).

pub mod attest;
pub mod bootstrap;
pub mod decide;
pub mod etcd;
pub mod keepalived;
pub mod kubeadm;
pub mod kubeapi;
pub mod lb;
pub mod lb_execute;
pub mod lb_plan;
pub mod lb_render;
pub mod net;
pub mod nginx;
pub mod pki;
pub mod steps;

use std::sync::Arc;

use crate::engine::Step;

pub use decide::{ClusterEnv, Timing};

/// The cluster steps with the real network and default timing, in the order [`crate::steps::for_role`] appends
/// them after OS preparation. Each step says in `applies` whether it runs on masters or workers.
pub fn steps() -> Vec<Box<dyn Step>> {
    let t = Timing::default();
    steps_with(Arc::new(net::NetEnv::new(t.probe_timeout)), t)
}

/// The cluster steps with an injected network side and timing (tests).
pub fn steps_with(env: Arc<dyn ClusterEnv>, timing: Timing) -> Vec<Box<dyn Step>> {
    let shared = steps::Shared { env, timing };
    vec![
        Box::new(steps::PkiStep),
        Box::new(lb::LoadBalancerStep),
        Box::new(steps::DecideStep(shared.clone())),
        Box::new(steps::RebuildStep(shared.clone())),
        Box::new(steps::KubeadmStep(shared.clone())),
        Box::new(steps::VerifyStep(shared.clone())),
        Box::new(steps::CniStep),
        Box::new(steps::TokenStep),
        Box::new(steps::WorkerJoinStep(shared)),
    ]
}
