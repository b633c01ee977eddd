//! The load balancer's side effects (`cluster-lb`, [`super::lb`]): the one probe the files depend on (which
//! interface holds this master's address), the rendered files written through the [`Context`], and the planned
//! commands run through its runner, in order ([`super::lb_plan::Action`]).

use anyhow::Result;

use super::lb_plan::{self, Action, Interface};
use super::lb_render::Rendered;
use crate::engine::Context;

/// The interface keepalived binds: the configured one, or the one `ip` lists with this master's address.
pub fn interface(ctx: &Context, interface: &Interface) -> Result<String> {
    match interface {
        Interface::Configured(i) => Ok(i.clone()),
        Interface::Holding { ip, probe } => {
            let out = ctx.runner.output(probe)?;
            lb_plan::pick_interface(&out.stdout_str(), *ip, ctx.runner.is_real())
        }
    }
}

/// Writes `files` (each only when its bytes or mode change), then runs `actions`; the first failure stops it.
pub fn execute(ctx: &Context, files: &[Rendered], actions: &[Action]) -> Result<()> {
    for f in files {
        ctx.write_file(f.path, &f.text, f.mode)?;
    }
    actions.iter().try_for_each(|a| act(ctx, a))
}

fn act(ctx: &Context, action: &Action) -> Result<()> {
    let r = &ctx.runner;
    match action {
        Action::Run(cmd) => {
            r.run(cmd)?;
        }
        Action::RunOr { first, otherwise } => {
            if !r.output(first)?.success() {
                r.run(otherwise)?;
            }
        }
        Action::When {
            probe,
            answer,
            then,
        } => {
            // A tool that is not installed means the feature is absent.
            let yes = r.output(probe).is_ok_and(|o| answer.given_by(&o));
            if yes {
                then.iter().try_for_each(|a| act(ctx, a))?;
            }
        }
    }
    Ok(())
}
