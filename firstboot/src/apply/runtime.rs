//! The container runtime (containerd, or Docker for the seed's era) configured and started, and kubelet enabled.

use anyhow::Result;
use kubeha_model::cluster::Runtime;

use crate::engine::{Context, Step};
use crate::render;
use crate::runner::Cmd;

/// containerd's config file.
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// Docker's config file.
pub const DOCKER_CONFIG: &str = "/etc/docker/daemon.json";

/// The runtime's systemd unit.
pub fn unit(r: Runtime) -> &'static str {
    match r {
        Runtime::Containerd => "containerd",
        Runtime::Docker => "docker",
    }
}

/// Configures the runtime, enables it, and (re)starts it when its config changed or it is not running.
pub struct ContainerRuntime;

impl Step for ContainerRuntime {
    fn name(&self) -> &'static str {
        "runtime"
    }
    fn phase(&self) -> &'static str {
        "runtime"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let c = &ctx.config.cluster;
        let rt = c.cluster.container_runtime;
        let changed = match rt {
            Runtime::Containerd => {
                ctx.write_file(CONTAINERD_CONFIG, render::containerd_config(c), 0o644)?
            }
            Runtime::Docker => {
                ctx.write_file(DOCKER_CONFIG, render::docker_daemon_json(c), 0o644)?
            }
        };
        ctx.write_file("/etc/crictl.yaml", render::crictl_yaml(rt), 0o644)?;
        let u = unit(rt);
        if ctx.needs(Cmd::new("systemctl").args(["is-enabled", u]), |o| {
            !o.success()
        })? {
            ctx.run(Cmd::new("systemctl").args(["enable", u]))?;
        }
        let active = ctx.runner.is_real()
            && ctx
                .runner
                .output(&Cmd::new("systemctl").args(["is-active", u]))?
                .success();
        if changed && active {
            ctx.run(Cmd::new("systemctl").args(["restart", u]))?;
        } else if !active {
            ctx.run(Cmd::new("systemctl").args(["start", u]))?;
        }
        Ok(())
    }
}

/// kubelet enabled (it starts for real once kubeadm has written its config).
pub struct Kubelet;

impl Step for Kubelet {
    fn name(&self) -> &'static str {
        "kubelet"
    }
    fn phase(&self) -> &'static str {
        "runtime"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if ctx.needs(Cmd::new("systemctl").args(["is-enabled", "kubelet"]), |o| {
            !o.success()
        })? {
            ctx.run(Cmd::new("systemctl").args(["enable", "kubelet"]))?;
        }
        Ok(())
    }
}
