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
        let name = ctx.me.name.clone();
        ctx.write_file("/etc/hostname", format!("{name}\n"), 0o644)?;
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
            render::hosts(&existing, &ctx.config.cluster),
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
            render::selinux_config(&existing),
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
            render::modules_load(),
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
        let changed = ctx.write_file("/etc/sysctl.d/k8s.conf", render::sysctl_conf(), 0o644)?;
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

/// The role's ports and IP protocols from kubeha's one port table (`kubeha_model::kube::ports`, the kickstart's too),
/// opened permanently in firewalld (no cron job re-deleting REJECT rules: they are in the permanent configuration, so
/// a firewalld restart keeps them). Without firewalld the step says so on the console and in the log, naming what a
/// host firewall must let in.
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
        let (ports, protocols) = render::firewall_rules(&ctx.config.cluster, ctx.role);
        if !ctx.path("/etc/firewalld").exists() {
            let table: Vec<String> =
                kubeha_model::kube::ports::for_cluster(&ctx.config.cluster, ctx.role)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            let msg = format!(
                "firewalld is not installed (no /etc/firewalld): no ports opened; any other firewall on this {} must \
                 let in {}",
                ctx.role,
                table.join(", ")
            );
            log::warn!("{msg}");
            crate::engine::console(&format!("[note] firewall: {msg}"));
            return Ok(());
        }
        let zone = ctx.read(&format!("/etc/firewalld/zones/{ZONE}.xml"))?;
        let have_ports = zone.as_deref().map(render::zone_ports).unwrap_or_default();
        let have_protocols = zone
            .as_deref()
            .map(render::zone_protocols)
            .unwrap_or_default();
        let real = ctx.runner.is_real();
        // A dry run (or the recording test runner) shows every rule a fresh node would add.
        let missing_ports: Vec<&String> = ports
            .iter()
            .filter(|p| !real || !have_ports.contains(p))
            .collect();
        let missing_protocols: Vec<&String> = protocols
            .iter()
            .filter(|p| !real || !have_protocols.contains(p))
            .collect();
        if missing_ports.is_empty() && missing_protocols.is_empty() {
            log::info!(
                "firewalld already opens {} and IP protocols {}",
                ports.join(" "),
                protocols.join(" ")
            );
            return Ok(());
        }
        // Ports and protocols in separate calls: firewall-cmd and firewall-offline-cmd refuse --add-port together
        // with --add-protocol in one command line.
        let adds: Vec<Vec<String>> = [
            missing_ports
                .iter()
                .map(|p| format!("--add-port={p}"))
                .collect::<Vec<_>>(),
            missing_protocols
                .iter()
                .map(|p| format!("--add-protocol={p}"))
                .collect(),
        ]
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
        let running = ctx
            .runner
            .output(&Cmd::new("firewall-cmd").arg("--state"))?;
        if running.success() && real {
            for a in adds {
                ctx.run(
                    Cmd::new("firewall-cmd")
                        .arg("--permanent")
                        .arg(format!("--zone={ZONE}"))
                        .args(a),
                )?;
            }
            ctx.run(Cmd::new("firewall-cmd").arg("--reload"))?;
        } else {
            // firewalld is not running (first boot before it starts, or disabled): edit the permanent config offline.
            for a in adds {
                ctx.run(
                    Cmd::new("firewall-offline-cmd")
                        .arg(format!("--zone={ZONE}"))
                        .args(a),
                )?;
            }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use kubeha_kickstart::{render, Options, Source};
    use kubeha_model::cluster::Role;

    use super::*;
    use crate::providers::fixtures::config_for;
    use crate::runner::RecordingRunner;

    /// What the agent's firewall step adds on a fresh node: `6443/tcp` ports and `proto:112` protocols.
    fn agent_opens(
        name: &str,
        role: Role,
        version: &str,
        firewalld: bool,
    ) -> (BTreeSet<String>, Vec<String>) {
        let root = tempfile::tempdir().unwrap();
        if firewalld {
            std::fs::create_dir_all(root.path().join("etc/firewalld/zones")).unwrap();
        }
        let mut config = config_for(name, role);
        config.cluster.cluster.kubernetes_version = version.parse().unwrap();
        let rec = Arc::new(RecordingRunner::default());
        let mut ctx = Context {
            root: root.path().to_path_buf(),
            runner: Box::new(rec.clone()),
            me: config.cluster.node(name).unwrap().1.clone(),
            config,
            role,
            dry_run: true,
        };
        Firewall.run(&mut ctx).unwrap();
        let lines = rec.lines();
        let mut set = BTreeSet::new();
        for l in &lines {
            for a in l.split_whitespace() {
                if let Some(p) = a.strip_prefix("--add-port=") {
                    set.insert(p.to_string());
                } else if let Some(p) = a.strip_prefix("--add-protocol=") {
                    set.insert(format!("proto:{p}"));
                }
            }
        }
        (set, lines)
    }

    /// What an installed node's firewall lets in: the kickstart's `firewall` line (written by `%pre` for the role
    /// it finds, or directly for a known node) and the protocols `%pre` hands to `%post --nochroot`.
    fn kickstart_opens(el: u8, name: &str, version: &str) -> BTreeSet<String> {
        let mut c = kubeha_model::Cluster::default_cluster();
        c.cluster.kubernetes_version = version.parse().unwrap();
        let ks = render(&c, &Options::new(el, Source::Media)).unwrap();
        let start = ks.find("%pre ").unwrap();
        let pre = &ks[start..];
        let pre = &pre[pre.find('\n').unwrap() + 1..pre.find("%end\n").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sys/block/vda")).unwrap();
        for (f, v) in [("removable", "0"), ("size", "1000"), ("ro", "0")] {
            std::fs::write(d.join("sys/block/vda").join(f), v).unwrap();
        }
        std::fs::create_dir_all(d.join("out")).unwrap();
        // An empty disk image as the chosen disk, so %pre's reinstall guard never reads the host's /dev.
        std::fs::create_dir_all(d.join("dev")).unwrap();
        std::fs::write(d.join("dev/vda"), vec![0u8; 1 << 20]).unwrap();
        std::fs::write(d.join("cmdline"), format!("kubeha.name={name}\n")).unwrap();
        std::fs::write(d.join("pre.sh"), pre).unwrap();
        let o = std::process::Command::new("bash")
            .arg(d.join("pre.sh"))
            .env("KUBEHA_CMDLINE", d.join("cmdline"))
            .env("KUBEHA_SYS", d.join("sys"))
            .env("KUBEHA_OUT", d.join("out"))
            .env("KUBEHA_DEV", d.join("dev"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let read = |f: &str| std::fs::read_to_string(d.join("out").join(f)).unwrap();
        let line = read("kubeha-firewall.ks");
        // A kickstart for this known node carries the same line directly.
        let mut known = Options::new(el, Source::Media);
        known.node = Some(name.into());
        assert!(render(&c, &known).unwrap().contains(&line), "{line}");
        let ports = line
            .split_whitespace()
            .find_map(|a| a.strip_prefix("--port="))
            .unwrap();
        let mut set: BTreeSet<String> = ports.split(',').map(|p| p.replace(':', "/")).collect();
        set.extend(
            read("kubeha-protocols")
                .split_whitespace()
                .map(|p| format!("proto:{p}")),
        );
        set
    }

    #[test]
    fn kickstart_and_agent_open_the_same_ports() {
        for (el, version) in [(7, "1.11.1"), (7, "1.36.3"), (9, "1.36.3")] {
            for (name, role) in [("k8s-master02", Role::Master), ("k8s-node03", Role::Worker)] {
                let (agent, lines) = agent_opens(name, role, version, true);
                let ks = kickstart_opens(el, name, version);
                assert_eq!(
                    ks, agent,
                    "EL{el} {version} {role}: kickstart vs agent; agent ran {lines:?}"
                );
                assert!(
                    agent.contains("10250/tcp") && agent.contains("proto:4"),
                    "{agent:?}"
                );
                assert_eq!(
                    agent.contains("proto:112"),
                    role == Role::Master,
                    "{agent:?}"
                );
                assert_eq!(
                    agent.contains("16443/tcp"),
                    role == Role::Master,
                    "{agent:?}"
                );
            }
        }
    }

    #[test]
    fn no_firewalld_runs_nothing() {
        let (opened, lines) = agent_opens("k8s-node01", Role::Worker, "1.36.3", false);
        assert!(opened.is_empty() && lines.is_empty(), "{lines:?}");
    }
}
