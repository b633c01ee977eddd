//! nginx: a TCP (stream) load balancer on every master, VIP:16443 → every master's :6443.
//!
//! Open-source nginx has passive health checks only: a failed connect marks a server down for `fail_timeout` after
//! `max_fails` failures, and `proxy_next_upstream` retries the next server, so a dead apiserver costs one short
//! connect timeout. `proxy_timeout` is the idle time between two reads or writes: watches send nothing for minutes,
//! so it is 30 minutes, well above the apiserver's own watch timeout and kubectl's 10 minutes.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use kubeha_model::Cluster;

/// Where the config goes: nginx on a master does nothing else, so kubeha owns the whole file.
pub const NGINX_CONF: &str = "/etc/nginx/nginx.conf";
/// The stream module on EL (`nginx-mod-stream`).
pub const EL_STREAM_MODULE: &str = "/usr/lib64/nginx/modules/ngx_stream_module.so";
/// The stream module on Debian (`libnginx-mod-stream`).
pub const DEBIAN_STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// Everything the nginx renderer needs besides the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxParams {
    /// `load_module` path of the stream module; None when nginx has it built in.
    pub stream_module: Option<String>,
    /// The pid file.
    pub pid_file: String,
    /// The error log.
    pub error_log: String,
    /// The user worker processes run as (None: nginx's default; tests run as root).
    pub user: Option<String>,
}

impl NginxParams {
    /// The parameters for an EL node.
    pub fn el() -> Self {
        NginxParams {
            stream_module: Some(EL_STREAM_MODULE.into()),
            pid_file: "/run/nginx.pid".into(),
            error_log: "/var/log/nginx/error.log".into(),
            user: Some("nginx".into()),
        }
    }
}

/// The apiserver port every master listens on (the model's one port table).
pub use kubeha_model::kube::ports::APISERVER as APISERVER_PORT;

/// Renders nginx.conf.
pub fn render_nginx(c: &Cluster, p: &NginxParams) -> Result<String> {
    if c.masters.is_empty() {
        bail!("cluster.masters: no masters to balance");
    }
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "# Written by kubeha-firstboot; changes are overwritten.").unwrap();
    writeln!(
        w,
        "# TCP load balancer for cluster {}: :{} -> every master's apiserver.",
        c.cluster.name, c.endpoint.port
    )
    .unwrap();
    if let Some(m) = &p.stream_module {
        writeln!(w, "load_module {m};").unwrap();
    }
    if let Some(u) = &p.user {
        writeln!(w, "user {u};").unwrap();
    }
    writeln!(w, "worker_processes auto;").unwrap();
    writeln!(w, "pid {};", p.pid_file).unwrap();
    writeln!(w, "error_log {} warn;\n", p.error_log).unwrap();
    writeln!(w, "events {{\n    worker_connections 4096;\n}}\n").unwrap();
    writeln!(w, "stream {{").unwrap();
    writeln!(w, "    upstream kube_apiserver {{").unwrap();
    for m in &c.masters {
        writeln!(
            w,
            "        server {}:{APISERVER_PORT} max_fails=1 fail_timeout=10s; # {}",
            m.ip, m.name
        )
        .unwrap();
    }
    writeln!(w, "    }}\n").unwrap();
    writeln!(w, "    server {{").unwrap();
    writeln!(w, "        listen {};", c.endpoint.port).unwrap();
    writeln!(w, "        proxy_connect_timeout 2s;").unwrap();
    writeln!(w, "        proxy_timeout 30m;").unwrap();
    writeln!(w, "        proxy_next_upstream on;").unwrap();
    writeln!(w, "        proxy_next_upstream_tries 3;").unwrap();
    writeln!(w, "        proxy_pass kube_apiserver;").unwrap();
    writeln!(w, "    }}").unwrap();
    writeln!(w, "}}").unwrap();
    Ok(s)
}
