//! The progress report a node POSTs to `kubeha.report=`: one JSON document per finished or failed phase, from the
//! node agent (`kubeha-firstboot`, phases [`AGENT_PHASES`]) and from the installer (`%pre`/`%post`, phases
//! [`INSTALLER_PHASES`]). `kubeha serve` receives them; this is the one definition both sides hold to.
//!
//! Unknown fields are accepted and dropped, so a newer agent still reports to an older server; every field the
//! server uses is checked by [`Report::validate`] (which names the field), and each value is bounded
//! ([`MAX_FIELD`], [`MAX_ERROR`]) so a hostile report cannot grow the server's journal without limit.

use serde::{Deserialize, Serialize};

use crate::validate::is_dns_subdomain;
use crate::{Error, Result};

/// The largest report body a server accepts, in bytes (the agent's are a few hundred).
pub const MAX_REPORT_BYTES: usize = 16 * 1024;
/// The longest value of any field but `error`.
pub const MAX_FIELD: usize = 256;
/// The longest `error` (the agent sends its class: one line of at most 160 characters and `...`).
pub const MAX_ERROR: usize = 1024;

/// The node agent's phases, in the order it runs them.
pub const AGENT_PHASES: [&str; 6] = ["config", "os", "packages", "runtime", "cluster", "done"];
/// The installer's phases: `install` from the kickstart's `%pre` (the disk is about to be written) and
/// `installed` from its `%post` (the OS, bundle, agent and node config are on the disk).
pub const INSTALLER_PHASES: [&str; 2] = ["install", "installed"];
/// The most etcd member names a report can carry.
pub const MAX_MEMBERS: usize = 64;
/// The states a report can carry.
pub const STATES: [&str; 3] = ["running", "ok", "failed"];

/// One report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The node's name, once the sender knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `master` or `worker`, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Where the node's config came from (the agent), or `installer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// One of [`AGENT_PHASES`] or [`INSTALLER_PHASES`].
    pub phase: String,
    /// One of [`STATES`].
    pub state: String,
    /// The failed step, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The error's class (never its detail: no command output), when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `init` or `join`: the control-plane decision, once the node took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// When the sender made the report (RFC 3339).
    pub time: String,
    /// The sender and its version (`kubeha-firstboot/0.1.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Whether the node held the cluster's VIP when it reported (an address check on the node); absent when it
    /// did not look (workers, the installer, before keepalived runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip_holder: Option<bool>,
    /// The etcd members' names as this master listed them (etcdctl/kubectl on the node); absent when it could
    /// not list them. Never guessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_members: Option<Vec<String>>,
}

impl Report {
    /// Whether the installer sent it (its phases are [`INSTALLER_PHASES`]).
    pub fn from_installer(&self) -> bool {
        INSTALLER_PHASES.contains(&self.phase.as_str())
    }

    /// Checks every field; the error names the first bad one (`report.phase`) and quotes at most 64 characters.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| Error::Value {
            field: format!("report.{field}"),
            message,
        };
        let shown = |v: &str| -> String {
            let s: String = v.chars().take(64).collect();
            if s.len() < v.len() {
                format!("{s}...")
            } else {
                s
            }
        };
        for (field, v, max) in [
            ("node", self.node.as_deref(), MAX_FIELD),
            ("role", self.role.as_deref(), MAX_FIELD),
            ("source", self.source.as_deref(), MAX_FIELD),
            ("phase", Some(self.phase.as_str()), MAX_FIELD),
            ("state", Some(self.state.as_str()), MAX_FIELD),
            ("step", self.step.as_deref(), MAX_FIELD),
            ("error", self.error.as_deref(), MAX_ERROR),
            ("decision", self.decision.as_deref(), MAX_FIELD),
            ("time", Some(self.time.as_str()), MAX_FIELD),
            ("agent", self.agent.as_deref(), MAX_FIELD),
        ] {
            if let Some(v) = v {
                if v.len() > max {
                    return Err(bad(field, format!("{} bytes, at most {max}", v.len())));
                }
                if v.chars().any(char::is_control) {
                    return Err(bad(field, "holds a control character".into()));
                }
            }
        }
        if let Some(m) = &self.etcd_members {
            if m.len() > MAX_MEMBERS {
                return Err(bad(
                    "etcd_members",
                    format!("{} names, at most {MAX_MEMBERS}", m.len()),
                ));
            }
            if let Some(b) = m
                .iter()
                .find(|n| n.len() > MAX_FIELD || !is_dns_subdomain(n))
            {
                return Err(bad(
                    "etcd_members",
                    format!("'{}' is not a member name (RFC 1123)", shown(b)),
                ));
            }
        }
        if let Some(n) = &self.node {
            if !is_dns_subdomain(n) {
                return Err(bad(
                    "node",
                    format!("'{}' is not a node name (RFC 1123)", shown(n)),
                ));
            }
        }
        if let Some(r) = &self.role {
            if r.parse::<crate::cluster::Role>().is_err() {
                return Err(bad(
                    "role",
                    format!("'{}' is not master or worker", shown(r)),
                ));
            }
        }
        if !AGENT_PHASES.contains(&self.phase.as_str()) && !self.from_installer() {
            return Err(bad(
                "phase",
                format!(
                    "'{}' is not one of {}, {}",
                    shown(&self.phase),
                    AGENT_PHASES.join(", "),
                    INSTALLER_PHASES.join(", ")
                ),
            ));
        }
        if !STATES.contains(&self.state.as_str()) {
            return Err(bad(
                "state",
                format!(
                    "'{}' is not one of {}",
                    shown(&self.state),
                    STATES.join(", ")
                ),
            ));
        }
        if let Some(d) = &self.decision {
            if d != "init" && d != "join" {
                return Err(bad(
                    "decision",
                    format!("'{}' is not init or join", shown(d)),
                ));
            }
        }
        if time::OffsetDateTime::parse(&self.time, &time::format_description::well_known::Rfc3339)
            .is_err()
        {
            return Err(bad(
                "time",
                format!("'{}' is not an RFC 3339 time", shown(&self.time)),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Report {
        Report {
            node: Some("k8s-master01".into()),
            role: Some("master".into()),
            phase: "os".into(),
            state: "ok".into(),
            time: "2026-12-05T12:00:00Z".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert!(ok().validate().is_ok());
        type Edit = Box<dyn Fn(&mut Report)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "report.node",
                Box::new(|r| r.node = Some("Bad_Name".into())),
            ),
            ("report.role", Box::new(|r| r.role = Some("boss".into()))),
            ("report.phase", Box::new(|r| r.phase = "reboot".into())),
            ("report.state", Box::new(|r| r.state = "maybe".into())),
            ("report.time", Box::new(|r| r.time = "yesterday".into())),
            (
                "report.decision",
                Box::new(|r| r.decision = Some("both".into())),
            ),
            (
                "report.error",
                Box::new(|r| r.error = Some("x".repeat(MAX_ERROR + 1))),
            ),
            ("report.step", Box::new(|r| r.step = Some("a\nb".into()))),
            (
                "report.etcd_members",
                Box::new(|r| r.etcd_members = Some(vec!["ok".into(), "<script>".into()])),
            ),
            (
                "report.etcd_members",
                Box::new(|r| r.etcd_members = Some(vec!["m".into(); MAX_MEMBERS + 1])),
            ),
        ];
        for (field, edit) in cases {
            let mut r = ok();
            edit(&mut r);
            let e = r.validate().expect_err(field).to_string();
            assert!(e.starts_with(&format!("{field}:")), "{field}: {e}");
            assert!(e.len() < 400, "{field}: the error quotes too much: {e}");
        }
        let mut r = ok();
        r.vip_holder = Some(true);
        r.etcd_members = Some(vec!["k8s-master01".into(), "k8s-master02".into()]);
        assert!(r.validate().is_ok());
        let mut r = ok();
        r.phase = "installed".into();
        assert!(r.from_installer() && r.validate().is_ok());
    }
}
