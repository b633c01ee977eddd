//! The load balancer's files as text (`cluster-lb`, [`super::lb`]): the planned files ([`super::lb_plan`]) through
//! the keepalived and nginx renderers ([`super::keepalived`], [`super::nginx`], each with its golden files). Pure.

use anyhow::Result;
use kubeha_model::Cluster;

use super::keepalived::{self, KeepalivedParams};
use super::lb_plan::{Content, Plan};
use super::nginx;

/// A rendered file, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The system path.
    pub path: &'static str,
    /// Its mode.
    pub mode: u32,
    /// Its text.
    pub text: String,
}

/// Every planned file of `plan` in `c`, in the plan's order, with keepalived on `interface`. A renderer that
/// refuses its input (a bad VRRP password, no masters) fails the whole rendering: nothing is written.
pub fn render(c: &Cluster, plan: &Plan, interface: &str) -> Result<Vec<Rendered>> {
    plan.files
        .iter()
        .map(|f| {
            let text = match &f.content {
                Content::CheckScript(p) => keepalived::render_check_script(p),
                Content::Keepalived {
                    index,
                    auth_pass,
                    check_script,
                } => keepalived::render_keepalived(
                    c,
                    &KeepalivedParams {
                        index: *index,
                        interface: interface.to_string(),
                        auth_pass: auth_pass.clone(),
                        check_script: check_script.clone(),
                    },
                )?,
                Content::Nginx(p) => nginx::render_nginx(c, p)?,
            };
            Ok(Rendered {
                path: f.path,
                mode: f.mode,
                text,
            })
        })
        .collect()
}
