//! The agent's step list: the OS preparation and runtime steps ([`crate::apply`]), then the cluster-forming steps
//! ([`crate::cluster`]). The steps depend on the engine ([`crate::engine::Step`], [`crate::engine::Context`]); the
//! engine runs whatever list it is given and knows no step, so the two never import each other.
//!
//! To add a step: implement [`Step`] in its module and put it in that module's list in the order it must run.

use kubeha_model::cluster::Role;

use crate::engine::Step;

/// Every step for a node, in order. Each cluster step says in `applies` whether it runs on masters or workers.
pub fn for_role(role: Role) -> Vec<Box<dyn Step>> {
    let mut v = crate::apply::steps(role);
    v.extend(crate::cluster::steps());
    v
}
