//! The load balancer's plan (`cluster-lb`, [`super::lb`]): which files, which services and which commands, from the
//! node config, this master's entry and what the step saw of the host ([`Host`]). Pure: nothing here reads the
//! system or runs a command. [`super::lb_render`] turns the planned files into text, and [`super::lb_execute`]
//! writes them and runs the commands.
//!
//! To change what the step does, change [`plan`] (and its unit test); to change a file's text, change its renderer
//! ([`super::keepalived`], [`super::nginx`]) and regenerate its golden file.

use std::net::Ipv4Addr;

use anyhow::{bail, Context as _, Result};
use kubeha_model::cluster::Node;
use kubeha_model::NodeConfig;

use super::keepalived::{self, CheckParams};
use super::kubeadm::APISERVER_MANIFEST;
use super::nginx::{self, NginxParams};
use super::pki;
use crate::runner::{Cmd, Output};

/// What the step saw of the host before planning (file checks only; the commands' answers come later, in
/// [`super::lb_execute`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Host {
    /// Only Debian's nginx stream module is installed (not EL's): nginx.conf loads that one.
    pub debian_stream_module: bool,
}

/// The interface keepalived binds and holds the VIP on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interface {
    /// `endpoint.interface` in cluster.toml.
    Configured(String),
    /// The one that holds this master's address, in the output of `probe` (`ip -o -4 addr show`, read by
    /// [`interface_of`]; [`pick_interface`] decides).
    Holding {
        /// This master's address.
        ip: Ipv4Addr,
        /// The command that lists the addresses.
        probe: Cmd,
    },
}

/// What a planned file holds, rendered by [`super::lb_render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// keepalived's health checks ([`keepalived::render_check_script`]).
    CheckScript(CheckParams),
    /// keepalived.conf ([`keepalived::render_keepalived`]) for the master at `index` in `cluster.masters`; the
    /// interface is known once the addresses were listed.
    Keepalived {
        /// This master's position in `cluster.masters` (its VRRP priority).
        index: usize,
        /// The VRRP password.
        auth_pass: String,
        /// The check script's system path.
        check_script: String,
    },
    /// nginx.conf ([`nginx::render_nginx`]).
    Nginx(NginxParams),
}

/// A file the step writes (through [`crate::engine::Context::write_file`]), with its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The system path.
    pub path: &'static str,
    /// Its mode.
    pub mode: u32,
    /// What it holds.
    pub content: Content,
}

/// How a probe must answer for its commands to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Its stdout, trimmed, is exactly this (whatever its exit code).
    Says(&'static str),
    /// It exits 0.
    Succeeds,
}

impl Answer {
    /// Whether `out` is this answer.
    pub fn given_by(&self, out: &Output) -> bool {
        match self {
            Answer::Says(s) => out.stdout_str().trim() == *s,
            Answer::Succeeds => out.success(),
        }
    }
}

/// One thing the step runs, in order; the first failure stops the step, its error carrying the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A command that must succeed.
    Run(Cmd),
    /// `first`, and when it exits non-zero, `otherwise` (which must succeed). `first` must start: a tool that is
    /// not installed is an error.
    RunOr {
        /// Tried first.
        first: Cmd,
        /// Run when `first` fails.
        otherwise: Cmd,
    },
    /// `then`, only when `probe` gives `answer`. A probe that cannot start (the tool is not installed) answers no:
    /// the feature is absent (no SELinux tools, no firewalld).
    When {
        /// The question.
        probe: Cmd,
        /// The answer that runs `then`.
        answer: Answer,
        /// What runs then.
        then: Vec<Action>,
    },
}

/// What `cluster-lb` does on this master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where keepalived holds the VIP.
    pub interface: Interface,
    /// The files, in the order they are written (each only when its bytes or mode change).
    pub files: Vec<File>,
    /// The services, enabled and restarted on every run in this order: not only when this run changed a file, as a
    /// run killed after writing a config and before the restart leaves a daemon on the old config, and the rerun
    /// sees the files unchanged. Their commands end [`Plan::actions`].
    pub services: Vec<&'static str>,
    /// The commands, in order, after the files are written.
    pub actions: Vec<Action>,
}

/// The load balancer of `me` (a master of `config`'s cluster).
pub fn plan(config: &NodeConfig, me: &Node, host: &Host) -> Result<Plan> {
    let c = &config.cluster;
    let index = c
        .masters
        .iter()
        .position(|m| m.name == me.name)
        .context("not a master")?;
    let cp = config
        .control_plane
        .as_ref()
        .context("a master needs the [control-plane] keys")?;
    let interface = match &c.endpoint.interface {
        Some(i) => Interface::Configured(i.clone()),
        None => Interface::Holding {
            ip: me.ip,
            probe: Cmd::new("ip").args(["-o", "-4", "addr", "show"]),
        },
    };
    let stream_module = if host.debian_stream_module {
        nginx::DEBIAN_STREAM_MODULE
    } else {
        nginx::EL_STREAM_MODULE
    };
    let files = vec![
        // The check script runs as root (script_user root): 0700 so enable_script_security accepts it.
        File {
            path: keepalived::CHECK_SCRIPT,
            mode: 0o700,
            content: Content::CheckScript(CheckParams {
                ip: me.ip,
                lb_port: c.endpoint.port,
                ca_cert: format!("{}/ca.crt", pki::PKI_DIR),
                apiserver_manifest: APISERVER_MANIFEST.into(),
            }),
        },
        // 0600: it holds the VRRP auth_pass.
        File {
            path: keepalived::KEEPALIVED_CONF,
            mode: 0o600,
            content: Content::Keepalived {
                index,
                auth_pass: cp.vrrp_auth_pass.clone(),
                check_script: keepalived::CHECK_SCRIPT.into(),
            },
        },
        File {
            path: nginx::NGINX_CONF,
            mode: 0o644,
            content: Content::Nginx(NginxParams {
                stream_module: Some(stream_module.into()),
                ..NginxParams::el()
            }),
        },
    ];
    let port = c.endpoint.port.to_string();
    let semanage =
        |op: &str| Cmd::new("semanage").args(["port", op, "-t", "http_port_t", "-p", "tcp", &port]);
    let services = vec!["nginx", "keepalived"];
    let mut actions = vec![
        // SELinux enforcing: nginx (httpd_t) must listen on the port and connect to the apiservers, and keepalived
        // may only run scripts labelled for it (the policy labels /usr/libexec/keepalived). A port already
        // labelled (by another type) is relabelled.
        Action::When {
            probe: Cmd::new("getenforce"),
            answer: Answer::Says("Enforcing"),
            then: vec![
                Action::Run(Cmd::new("restorecon").args(["-R", "/usr/libexec/keepalived"])),
                Action::Run(Cmd::new("setsebool").args(["-P", "httpd_can_network_connect", "1"])),
                Action::RunOr {
                    first: semanage("-a"),
                    otherwise: semanage("-m"),
                },
            ],
        },
        // firewalld (when running): VRRP between the masters and the load balancer port.
        Action::When {
            probe: Cmd::new("firewall-cmd").arg("--state"),
            answer: Answer::Succeeds,
            then: vec![
                Action::Run(Cmd::new("firewall-cmd").args([
                    "--permanent",
                    "--add-rich-rule=rule protocol value=\"vrrp\" accept",
                ])),
                Action::Run(
                    Cmd::new("firewall-cmd")
                        .args(["--permanent".to_string(), format!("--add-port={port}/tcp")]),
                ),
                Action::Run(Cmd::new("firewall-cmd").arg("--reload")),
            ],
        },
        Action::Run(Cmd::new("nginx").args(["-t", "-c", nginx::NGINX_CONF])),
    ];
    for svc in &services {
        actions.push(Action::Run(Cmd::new("systemctl").args(["enable", svc])));
        actions.push(Action::Run(Cmd::new("systemctl").args(["restart", svc])));
    }
    Ok(Plan {
        interface,
        files,
        services,
        actions,
    })
}

/// The interface holding `ip`, from `ip -o -4 addr show`.
pub fn interface_of(ip_output: &str, ip: Ipv4Addr) -> Option<String> {
    ip_output.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let addr = f.get(3)?.split('/').next()?;
        (f.get(2) == Some(&"inet") && addr == ip.to_string())
            .then(|| f[1].trim_end_matches(':').to_string())
    })
}

/// The interface holding `ip` in `ip_output`. None holds it: an error on a real node (cluster.toml must name the
/// interface), `eth0` when the commands do not really run (a dry run lists no real addresses).
pub fn pick_interface(ip_output: &str, ip: Ipv4Addr, real: bool) -> Result<String> {
    match interface_of(ip_output, ip) {
        Some(i) => Ok(i),
        None if !real => Ok("eth0".to_string()),
        None => bail!(
            "no interface holds this master's address {ip}: set endpoint.interface in cluster.toml"
        ),
    }
}

#[cfg(test)]
mod tests {
    use kubeha_model::cluster::Role;

    use super::*;
    use crate::providers::fixtures::config_for;

    fn lines(actions: &[Action]) -> Vec<String> {
        let mut out = Vec::new();
        for a in actions {
            match a {
                Action::Run(c) => out.push(c.display()),
                Action::RunOr { first, otherwise } => {
                    out.push(format!("{} || {}", first.display(), otherwise.display()))
                }
                Action::When {
                    probe,
                    answer,
                    then,
                } => {
                    for l in lines(then) {
                        out.push(format!("[{} {answer:?}] {l}", probe.display()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn plan_of_a_master() {
        let config = config_for("k8s-master02", Role::Master);
        let me = config.cluster.masters[1].clone();
        let p = plan(&config, &me, &Host::default()).unwrap();
        assert_eq!(
            p.interface,
            Interface::Holding {
                ip: me.ip,
                probe: Cmd::new("ip").args(["-o", "-4", "addr", "show"]),
            }
        );
        let files: Vec<(&str, u32)> = p.files.iter().map(|f| (f.path, f.mode)).collect();
        assert_eq!(
            files,
            [
                ("/usr/libexec/keepalived/check_apiserver.sh", 0o700),
                ("/etc/keepalived/keepalived.conf", 0o600),
                ("/etc/nginx/nginx.conf", 0o644),
            ]
        );
        let auth = &config.control_plane.as_ref().unwrap().vrrp_auth_pass;
        assert!(
            matches!(&p.files[1].content, Content::Keepalived { index: 1, auth_pass, .. } if auth_pass == auth),
            "{:?}",
            p.files[1]
        );
        assert!(
            matches!(&p.files[0].content, Content::CheckScript(cp)
                if cp.ip == me.ip && cp.apiserver_manifest == "/etc/kubernetes/manifests/kube-apiserver.yaml"
                    && cp.ca_cert == "/etc/kubernetes/pki/ca.crt"),
            "{:?}",
            p.files[0]
        );
        assert_eq!(p.services, ["nginx", "keepalived"]);
        assert_eq!(
            lines(&p.actions),
            [
                "[getenforce Says(\"Enforcing\")] restorecon -R /usr/libexec/keepalived",
                "[getenforce Says(\"Enforcing\")] setsebool -P httpd_can_network_connect 1",
                "[getenforce Says(\"Enforcing\")] semanage port -a -t http_port_t -p tcp 16443 || \
                 semanage port -m -t http_port_t -p tcp 16443",
                "[firewall-cmd --state Succeeds] firewall-cmd --permanent '--add-rich-rule=rule protocol \
                 value=\"vrrp\" accept'",
                "[firewall-cmd --state Succeeds] firewall-cmd --permanent --add-port=16443/tcp",
                "[firewall-cmd --state Succeeds] firewall-cmd --reload",
                "nginx -t -c /etc/nginx/nginx.conf",
                "systemctl enable nginx",
                "systemctl restart nginx",
                "systemctl enable keepalived",
                "systemctl restart keepalived",
            ]
        );
    }

    /// Table: what changes the plan (cluster.toml's interface and port, the stream module) and what refuses it.
    #[test]
    fn plan_cases() {
        let base = config_for("k8s-master01", Role::Master);
        let me = base.cluster.masters[0].clone();
        let stream = |p: &Plan| match &p.files[2].content {
            Content::Nginx(n) => n.stream_module.clone().unwrap(),
            c => panic!("not nginx: {c:?}"),
        };

        let mut c = base.clone();
        c.cluster.endpoint.interface = Some("bond0".into());
        c.cluster.endpoint.port = 8443;
        let p = plan(&c, &me, &Host::default()).unwrap();
        assert_eq!(
            p.interface,
            Interface::Configured("bond0".into()),
            "configured"
        );
        assert!(
            lines(&p.actions)
                .iter()
                .any(|l| l.ends_with("firewall-cmd --permanent --add-port=8443/tcp")),
            "the port from cluster.toml"
        );
        assert_eq!(stream(&p), nginx::EL_STREAM_MODULE, "EL by default");

        let debian = Host {
            debian_stream_module: true,
        };
        assert_eq!(
            stream(&plan(&base, &me, &debian).unwrap()),
            nginx::DEBIAN_STREAM_MODULE,
            "Debian's module when only it is installed"
        );

        let worker = base.cluster.workers[0].clone();
        let e = plan(&base, &worker, &Host::default()).unwrap_err();
        assert!(e.to_string().contains("not a master"), "a worker: {e:#}");

        let mut no_keys = base.clone();
        no_keys.control_plane = None;
        let e = plan(&no_keys, &me, &Host::default()).unwrap_err();
        assert!(e.to_string().contains("[control-plane]"), "no keys: {e:#}");
    }

    #[test]
    fn interface_is_picked_from_the_addresses() {
        let out = "1: lo    inet 127.0.0.1/8 scope host lo\n3: ens3    inet 192.168.20.21/24 brd 192.168.20.255 scope global ens3\n";
        let ip = "192.168.20.21".parse().unwrap();
        let other = "192.168.20.2".parse().unwrap();
        assert_eq!(pick_interface(out, ip, true).unwrap(), "ens3");
        assert_eq!(
            pick_interface(out, other, false).unwrap(),
            "eth0",
            "dry run"
        );
        let e = pick_interface(out, other, true).unwrap_err().to_string();
        assert!(
            e.contains("192.168.20.2:") && e.contains("endpoint.interface"),
            "{e}"
        );
    }
}
