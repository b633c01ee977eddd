//! `cluster-lb`: keepalived (the VIP) and nginx (the TCP load balancer on the endpoint port) on every master, up
//! before kubeadm runs. Plan → render → execute: [`super::lb_plan`] decides the files, services and commands from
//! the node config and this master's entry, [`super::lb_render`] renders the files, [`super::lb_execute`] writes
//! them through the [`Context`] and runs the commands. The services restart on every run (see
//! [`super::lb_plan::Plan::services`]).

use anyhow::Result;
use kubeha_model::cluster::Role;

use super::lb_plan::{self, Host};
use super::nginx;
use super::{lb_execute, lb_render};
use crate::engine::{Context, Step};

/// `cluster-lb`: keepalived (VIP) and nginx (:16443), up before kubeadm runs.
pub struct LoadBalancerStep;

impl Step for LoadBalancerStep {
    fn name(&self) -> &'static str {
        "cluster-lb"
    }
    fn applies(&self, ctx: &Context) -> bool {
        ctx.role == Role::Master
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let host = Host {
            debian_stream_module: ctx.path(nginx::DEBIAN_STREAM_MODULE).exists()
                && !ctx.path(nginx::EL_STREAM_MODULE).exists(),
        };
        let plan = lb_plan::plan(&ctx.config, &ctx.me, &host)?;
        let interface = lb_execute::interface(ctx, &plan.interface)?;
        let files = lb_render::render(&ctx.config.cluster, &plan, &interface)?;
        lb_execute::execute(ctx, &files, &plan.actions)
    }
}
