//! Progress output besides the console: `/var/lib/kubeha/status.json` (read by `kubeha-firstboot status`), and a
//! JSON POST per finished or failed phase to the `kubeha.report=` URL.
//!
//! Reporting never fails the run: a report that cannot be delivered is logged and dropped.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::retry::Client;
use crate::util::{now_rfc3339, under};

/// The status file.
pub const STATUS: &str = "/var/lib/kubeha/status.json";

/// `status.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `config`, `os`, `packages`, `runtime`, `cluster`, `done`.
    pub phase: String,
    /// The current (or failed) step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// `running`, `failed`, `done`.
    pub state: String,
    /// The error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the running step waits (e.g. a designated master that no majority attests for), and how an operator
    /// goes on; cleared when the next step starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Node name, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Role, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Where the config came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Phases finished so far.
    #[serde(default)]
    pub phases_done: Vec<String>,
    /// When this run started (RFC 3339).
    pub started: String,
    /// Last update.
    pub updated: String,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

/// Keeps status.json current and posts reports.
pub struct Reporter {
    root: PathBuf,
    url: Option<String>,
    client: Option<Client>,
    dry_run: bool,
    /// The current status.
    pub status: Status,
    /// What [`observe`] saw last: whether this node holds the VIP, and etcd's members.
    observed: (Option<bool>, Option<Vec<String>>),
}

impl Reporter {
    /// A reporter writing under `root`, posting to `url` when set.
    pub fn new(root: PathBuf, url: Option<String>, dry_run: bool) -> Reporter {
        let now = now_rfc3339();
        // A report is worth a few tries, not a stalled boot.
        let client = url.as_ref().and_then(|_| {
            Client::with_timeout(Duration::from_secs(10))
                .map(|c| {
                    c.max_retries(2)
                        .backoff(Duration::from_millis(500), Duration::from_secs(2))
                })
                .map_err(|e| log::warn!("no report client: {e:#}"))
                .ok()
        });
        Reporter {
            root,
            url,
            client,
            dry_run,
            observed: (None, None),
            status: Status {
                phase: "config".into(),
                state: "running".into(),
                started: now.clone(),
                updated: now,
                ..Default::default()
            },
        }
    }

    /// Looks at the control plane from this node for the next reports (see [`observe`]).
    pub fn observe(&mut self, ctx: &crate::engine::Context) {
        self.observed = observe(ctx);
    }

    /// Records who the node is and where its config came from.
    pub fn identity(&mut self, node: &str, role: &str, source: &str) {
        self.status.node = Some(node.into());
        self.status.role = Some(role.into());
        self.status.source = Some(source.into());
        self.post("config", "ok", None, None);
        self.status.phases_done.push("config".into());
        self.write();
    }

    /// A step starts.
    pub fn step(&mut self, phase: &str, step: &str) {
        self.status.phase = phase.into();
        self.status.step = Some(step.into());
        self.status.state = "running".into();
        self.status.waiting = None;
        self.write();
    }

    /// A phase finished.
    pub fn phase_done(&mut self, phase: &str) {
        if !self.status.phases_done.iter().any(|p| p == phase) {
            self.status.phases_done.push(phase.into());
        }
        self.write();
        self.post(phase, "ok", None, None);
    }

    /// A step failed (also used for failures before any step: phase `config`).
    pub fn failed(&mut self, phase: &str, step: &str, err: &anyhow::Error) {
        let msg = format!("{err:#}");
        self.status.phase = phase.into();
        self.status.step = (!step.is_empty()).then(|| step.to_string());
        self.status.state = "failed".into();
        self.status.error = Some(msg.clone());
        self.write();
        self.post(phase, "failed", Some(step), Some(&msg));
    }

    /// Everything finished.
    pub fn done(&mut self) {
        let now = now_rfc3339();
        self.status.phase = "done".into();
        self.status.step = None;
        self.status.state = "done".into();
        self.status.error = None;
        self.status.finished = Some(now);
        self.write();
        self.post("done", "ok", None, None);
    }

    fn write(&mut self) {
        self.status.updated = now_rfc3339();
        let p = under(&self.root, STATUS);
        let mut data = serde_json::to_vec_pretty(&self.status).expect("status serializes");
        data.push(b'\n');
        // 0600: a failed step's error may quote a command's stderr.
        if let Err(e) = kubeha_model::fsutil::write_atomic(&p, &data, 0o600, true) {
            log::warn!("writing {}: {e}", p.display());
        }
    }

    /// The report document for a phase.
    pub fn report_doc(
        &self,
        phase: &str,
        state: &str,
        step: Option<&str>,
        error: Option<&str>,
    ) -> serde_json::Value {
        let report = kubeha_model::report::Report {
            node: self.status.node.clone(),
            role: self.status.role.clone(),
            source: self.status.source.clone(),
            phase: phase.to_string(),
            state: state.to_string(),
            step: step.filter(|s| !s.is_empty()).map(str::to_string),
            error: error.map(error_class),
            decision: self.decision(),
            time: now_rfc3339(),
            agent: Some(concat!("kubeha-firstboot/", env!("CARGO_PKG_VERSION")).to_string()),
            // What the node saw when it last looked (`observe`); absent when it did not or could not.
            vip_holder: self.observed.0,
            etcd_members: self.observed.1.clone(),
        };
        serde_json::to_value(report).expect("a report is plain strings")
    }

    /// `init` or `join` once `cluster-decide` has written it (kubeha_model::report::Report::decision).
    fn decision(&self) -> Option<String> {
        let p = under(&self.root, crate::cluster::bootstrap::DECISION_FILE);
        let d = std::fs::read_to_string(p).ok()?;
        crate::cluster::bootstrap::Bootstrap::parse(&d).map(|b| b.word().to_string())
    }

    fn post(&self, phase: &str, state: &str, step: Option<&str>, error: Option<&str>) {
        let Some(url) = &self.url else { return };
        let doc = self.report_doc(phase, state, step, error);
        if self.dry_run {
            println!("would post: {url} {doc}");
            return;
        }
        if let Some(c) = &self.client {
            match c.post_json(url, &doc) {
                Ok(()) => log::info!("reported phase {phase} ({state}) to {url}"),
                Err(e) => log::warn!("reporting phase {phase} to {url}: {e:#}"),
            }
        }
    }
}

/// The engine's progress goes to the reports.
impl crate::engine::Progress for Reporter {
    fn observe(&mut self, ctx: &crate::engine::Context) {
        Reporter::observe(self, ctx)
    }
    fn step(&mut self, phase: &str, step: &str) {
        Reporter::step(self, phase, step)
    }
    fn phase_done(&mut self, phase: &str) {
        Reporter::phase_done(self, phase)
    }
    fn failed(&mut self, phase: &str, step: &str, err: &anyhow::Error) {
        Reporter::failed(self, phase, step, err)
    }
    fn done(&mut self) {
        Reporter::done(self)
    }
}

/// What this node itself sees of the HA control plane, for its reports: whether the cluster's VIP is one of its
/// addresses (`ip -o -4 addr show`, through the runner), and the names of etcd's started members (etcd's gateway
/// on the masters' client URLs, with a client certificate from the etcd CA its config carries). Masters only (the
/// VIP and etcd live there), real runs only; either is `None` when it could not be looked at: nothing is guessed.
pub fn observe(ctx: &crate::engine::Context) -> (Option<bool>, Option<Vec<String>>) {
    if ctx.role != kubeha_model::cluster::Role::Master || !ctx.runner.is_real() {
        return (None, None);
    }
    let vip = ctx.config.cluster.endpoint.vip.to_string();
    let holder = match ctx
        .runner
        .output(&crate::runner::Cmd::new("ip").args(["-o", "-4", "addr", "show"]))
    {
        Ok(o) if o.success() => Some(has_address(&String::from_utf8_lossy(&o.stdout), &vip)),
        Ok(_) | Err(_) => {
            log::debug!("ip addr show failed: the report says nothing of the VIP");
            None
        }
    };
    let members = ctx.config.control_plane.as_ref().and_then(|cp| {
        let eps = ctx
            .config
            .cluster
            .masters
            .iter()
            .map(|m| crate::cluster::etcd::client_url(m.ip))
            .collect();
        let client =
            crate::cluster::etcd::EtcdClient::new(&cp.etcd_ca, eps, Duration::from_secs(3));
        match client.and_then(|c| c.member_list()) {
            Ok((_, list)) => {
                let mut names: Vec<String> = list
                    .into_iter()
                    .filter(|m| m.started())
                    .map(|m| m.name)
                    .collect();
                names.sort();
                Some(names)
            }
            Err(e) => {
                log::debug!("no etcd member list for the report: {e:#}");
                None
            }
        }
    });
    (holder, members)
}

/// Whether `ip -o -4 addr show` output lists `addr` as one of the addresses (`inet ADDR/PREFIX`).
pub fn has_address(ip_output: &str, addr: &str) -> bool {
    ip_output.lines().any(|l| {
        let mut w = l.split_whitespace();
        while let Some(t) = w.next() {
            if t == "inet" {
                return w.next().and_then(|a| a.split('/').next()) == Some(addr);
            }
        }
        false
    })
}

/// What a report says of an error: its class, not its detail. A failed command's message ends in the command's
/// own stderr ("... failed with exit code 1: <stderr>"), which can quote files the command read; the report keeps
/// the part before it, and at most one line of 160 characters.
pub fn error_class(msg: &str) -> String {
    let mut s = msg.lines().next().unwrap_or("");
    if let Some(i) = s.find(" failed with exit code ") {
        let rest = &s[i + " failed with exit code ".len()..];
        let code = rest
            .split(|c: char| !c.is_ascii_digit() && c != '-')
            .next()
            .unwrap_or("");
        s = &s[..i + " failed with exit code ".len() + code.len()];
    } else if let Some(i) = s.find(" failed: ") {
        s = &s[..i + " failed".len()];
    }
    let mut out: String = s.chars().take(160).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// Records in `status.json` under `root` why the running step waits (`None`: it no longer does). Steps call it
/// while they wait (the [`Reporter`] is the engine's; it is not writing then). Never fails the run.
pub fn set_waiting(root: &std::path::Path, why: Option<&str>) {
    let p = under(root, STATUS);
    let mut s = match load(root) {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            log::warn!("{e:#}");
            return;
        }
    };
    if s.waiting.as_deref() == why {
        return;
    }
    s.waiting = why.map(str::to_string);
    s.updated = now_rfc3339();
    let mut data = serde_json::to_vec_pretty(&s).expect("status serializes");
    data.push(b'\n');
    if let Err(e) = kubeha_model::fsutil::write_atomic(&p, &data, 0o600, true) {
        log::warn!("writing {}: {e}", p.display());
    }
}

/// Reads `status.json` under `root`.
pub fn load(root: &std::path::Path) -> anyhow::Result<Option<Status>> {
    let p = under(root, STATUS);
    match std::fs::read(&p) {
        Ok(b) => {
            Ok(Some(serde_json::from_slice(&b).map_err(|e| {
                anyhow::anyhow!("parsing {}: {e}", p.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's own `ip -o -4 addr show`: the loopback address is one of its addresses, a TEST-NET address
    /// and a prefix of one are not.
    #[test]
    fn the_vip_check_reads_the_real_ip_output() {
        let o = std::process::Command::new("ip")
            .args(["-o", "-4", "addr", "show"])
            .output()
            .expect("ip (iproute2)");
        assert!(o.status.success());
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(has_address(&out, "127.0.0.1"), "{out}");
        assert!(!has_address(&out, "192.0.2.10"), "{out}");
        assert!(!has_address(&out, "127.0.0"), "{out}");
        assert!(!has_address("", "127.0.0.1"));
    }

    #[test]
    fn reports_carry_the_error_class_and_status_is_private() {
        let e = "step cluster-kubeadm: command kubeadm init --config /etc/kubeha/kubeadm-init.yaml failed with exit \
                 code 1: error: unable to read /etc/kubernetes/pki/ca.key: -----BEGIN RSA PRIVATE KEY-----\nMIIE";
        let c = error_class(e);
        assert_eq!(
            c,
            "step cluster-kubeadm: command kubeadm init --config /etc/kubeha/kubeadm-init.yaml failed with exit code 1"
        );
        assert_eq!(error_class("a\nb"), "a");
        assert!(error_class(&"x".repeat(1000)).len() <= 163);

        let d = tempfile::tempdir().unwrap();
        let mut r = Reporter::new(d.path().to_path_buf(), None, false);
        r.failed("cluster", "cluster-kubeadm", &anyhow::anyhow!("{e}"));
        let doc = r.report_doc("cluster", "failed", Some("cluster-kubeadm"), Some(e));
        assert!(!doc.to_string().contains("PRIVATE KEY"), "{doc}");
        // The document is the model's report, as `kubeha serve` reads it.
        let parsed: kubeha_model::report::Report = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(parsed.decision, None);
        parsed.validate().unwrap();
        let p = under(d.path(), crate::cluster::bootstrap::DECISION_FILE);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "join\n").unwrap();
        r.identity("k8s-node01", "worker", "cmdline");
        let doc = r.report_doc("cluster", "ok", None, None);
        let parsed: kubeha_model::report::Report = serde_json::from_value(doc).unwrap();
        assert_eq!(parsed.decision.as_deref(), Some("join"));
        parsed.validate().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(under(d.path(), STATUS))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "status.json carries command errors");
    }
}
