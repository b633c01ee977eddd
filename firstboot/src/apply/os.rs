//! OS settings: host name, /etc/hosts, SELinux, swap, kernel modules, sysctls, firewalld, time sync.

use anyhow::{Context as _, Result};

use crate::engine::{Context, Step};
use crate::render;
use crate::runner::Cmd;

/// `/etc/hostname` and the running host name.
pub struct Hostname;

impl Step for Hostname {
    fn name(&self) -> &'static str {
        "hostname"
    }
    fn phase(&self) -> &'static str {
        "os"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let name = ctx.name.clone();
        ctx.write_file("/etc/hostname", &format!("{name}\n"), 0o644)?;
        if ctx.needs(Cmd::new("hostname"), |o| o.stdout_str().trim() != name)? {
            ctx.run(Cmd::new("hostname").arg(&name))?;
        }
        Ok(())
    }
}

/// `/etc/hosts`: every node and the VIP name, in a managed block.
pub struct Hosts;

impl Step for Hosts {
    fn name(&self) -> &'static str {
        "hosts"
    }
    fn phase(&self) -> &'static str {
        "os"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let existing = ctx.read("/etc/hosts")?.unwrap_or_default();
        ctx.write_file(
            "/etc/hosts",
            &render::hosts(&existing, &ctx.config.cluster),
            0o644,
        )?;
        Ok(())
    }
}

/// SELinux permissive, now and at boot.
pub struct Selinux;

impl Step for Selinux {
    fn name(&self) -> &'static str {
        "selinux"
    }
    fn phase(&self) -> &'static str {
        "os"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let Some(existing) = ctx.read("/etc/selinux/config")? else {
            log::info!("/etc/selinux/config does not exist: SELinux is not installed");
            return Ok(());
        };
        ctx.write_file(
            "/etc/selinux/config",
            &render::selinux_config(&existing),
            0o644,
        )?;
        if ctx.needs(Cmd::new("getenforce"), |o| {
            o.stdout_str().trim() == "Enforcing"
        })? {
            ctx.run(Cmd::new("setenforce").arg("0"))?;
        }
        Ok(())
    }
}

/// Swap off now, and its fstab lines commented out once.
pub struct Swap;

impl Step for Swap {
    fn name(&self) -> &'static str {
        "swap"
    }
    fn phase(&self) -> &'static str {
        "os"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if let Some(fstab) = ctx.read("/etc/fstab")? {
            if let Some(new) = render::fstab_without_swap(&fstab) {
                ctx.write_file("/etc/fstab", &new, 0o644)?;
            }
        }
        // /proc/swaps: a header line, then one line per active swap area.
        let active = ctx
            .read("/proc/swaps")?
            .is_some_and(|s| s.lines().count() > 1);
        if active || !ctx.runner.is_real() {
            ctx.run(Cmd::new("swapoff").arg("-a"))?;
        }
        Ok(())
    }
}

/// br_netfilter and overlay, loaded now and at every boot.
pub struct Modules;

impl Step for Modules {
    fn name(&self) -> &'static str {
        "modules"
    }
    fn phase(&self) -> &'static str {
        "os"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        ctx.write_file(
            "/etc/modules-load.d/kubeha.conf",
            &render::modules_load(),
            0o644,
        )?;
        for m in render::MODULES {
            // Loaded modules (and built-in ones) appear in /sys/module.
            if !ctx.path(format!("/sys/module/{m}")).exists() || !ctx.runner.is_real() {
                ctx.run(Cmd::new("modprobe").arg(m))?;
            }
        }
        Ok(())
    }
}

/// The Kubernetes sysctls, persisted and applied.
pub struct Sysctl;

impl Step for Sysctl {
    fn name(&self) -> &'static str {
        "sysctl"
    }
    fn phase(&self) -> &'static str {
        "os"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let changed = ctx.write_file("/etc/sysctl.d/k8s.conf", &render::sysctl_conf(), 0o644)?;
        let live_ok = render::SYSCTLS.iter().all(|(k, v)| {
            let p = format!("/proc/sys/{}", k.replace('.', "/"));
            ctx.read(&p).ok().flatten().is_some_and(|s| s.trim() == *v)
        });
        if changed || !live_ok || !ctx.runner.is_real() {
            ctx.run(Cmd::new("sysctl").arg("--system"))?;
        }
        Ok(())
    }
}

/// The firewalld zone ports for the role, opened permanently (no cron job re-deleting REJECT rules: the ports are in
/// the permanent configuration, so a firewalld restart keeps them).
pub struct Firewall;

/// The zone the ports go to (the seed's).
pub const ZONE: &str = "public";

impl Step for Firewall {
    fn name(&self) -> &'static str {
        "firewall"
    }
    fn phase(&self) -> &'static str {
        "os"
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if !ctx.path("/etc/firewalld").exists() {
            log::info!(
                "/etc/firewalld does not exist: firewalld is not installed, no ports to open"
            );
            return Ok(());
        }
        let want = render::firewall_ports(ctx.role, ctx.config.cluster.endpoint.port);
        let have = ctx
            .read(&format!("/etc/firewalld/zones/{ZONE}.xml"))?
            .map(|x| render::zone_ports(&x))
            .unwrap_or_default();
        let missing: Vec<&String> = want.iter().filter(|p| !have.contains(p)).collect();
        if missing.is_empty() && ctx.runner.is_real() {
            log::info!("firewalld already opens {}", want.join(" "));
            return Ok(());
        }
        let missing: Vec<&String> = if ctx.runner.is_real() {
            missing
        } else {
            want.iter().collect()
        };
        let running = ctx
            .runner
            .output(&Cmd::new("firewall-cmd").arg("--state"))?;
        if running.success() && ctx.runner.is_real() {
            let mut c = Cmd::new("firewall-cmd")
                .arg("--permanent")
                .arg(format!("--zone={ZONE}"));
            for p in &missing {
                c = c.arg(format!("--add-port={p}"));
            }
            ctx.run(c)?;
            ctx.run(Cmd::new("firewall-cmd").arg("--reload"))?;
        } else {
            // firewalld is not running (first boot before it starts, or disabled): edit the permanent config offline.
            let mut c = Cmd::new("firewall-offline-cmd").arg(format!("--zone={ZONE}"));
            for p in &missing {
                c = c.arg(format!("--add-port={p}"));
            }
            ctx.run(c)?;
        }
        Ok(())
    }
}

/// chrony with the configured NTP servers (nothing when none are configured).
pub struct TimeSync;

impl Step for TimeSync {
    fn name(&self) -> &'static str {
        "time"
    }
    fn phase(&self) -> &'static str {
        "os"
    }
    fn applies(&self, ctx: &Context) -> bool {
        !ctx.config.cluster.ntp.servers.is_empty()
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let conf = render::chrony_conf(&ctx.config.cluster.ntp.servers);
        let changed = ctx.write_file("/etc/chrony.conf", &conf, 0o644)?;
        ctx.run(Cmd::new("systemctl").args(["enable", "chronyd"]))
            .context("enabling chronyd")?;
        if changed || !ctx.runner.is_real() {
            ctx.run(Cmd::new("systemctl").args(["restart", "chronyd"]))?;
        } else if ctx.needs(Cmd::new("systemctl").args(["is-active", "chronyd"]), |o| {
            !o.success()
        })? {
            ctx.run(Cmd::new("systemctl").args(["start", "chronyd"]))?;
        }
        Ok(())
    }
}
