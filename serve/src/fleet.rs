//! The fleet: what the journal says of every node, and the decisions taken from it. Pure: [`Fleet::judge`] decides
//! on a report, [`Fleet::apply`] folds an [`Entry`] in (live, and when the journal is replayed at start), and
//! [`Fleet::view`] is what `/api/fleet`, the page and `kubeha status` show.
//!
//! Install once: a node counts as installed once the installer reported `installed` (ok) or the node agent
//! reported any phase (the agent runs only on an installed disk). From then on its iPXE script boots the local
//! disk and a master's config is gone (410), until a [`Entry::Reimage`]; the next install then carries
//! `kubeha.reinstall=1`, since the disk holds the node and the kickstart's `%pre` would otherwise halt.
//!
//! Who is who: a node is owned by the MAC cluster.toml gives it, else by the first MAC that reported for it. A
//! report from another MAC, or a report without a MAC from an address the node never used and cluster.toml does
//! not give it, is refused (409) and shown: two machines claiming one name.

use std::collections::{BTreeSet, VecDeque};

use kubeha_model::cluster::{normalize_mac, Role};
use kubeha_model::report::Report;
use kubeha_model::Cluster;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::journal::Entry;

/// How many timeline events the view keeps.
const TIMELINE: usize = 200;
/// How many unknown machines are listed (a misconfigured DHCP range must not grow the view without limit).
const MAX_UNKNOWN: usize = 256;
/// How many recent reports (phase, state, time) each node's replay memory holds. A resent report (the agent
/// retries a POST whose answer it lost) is recognised while it is among the node's last `RECENT_REPORTS`; the
/// memory is bounded so a node (or a machine forging its reports) that reports forever cannot grow the server.
pub const RECENT_REPORTS: usize = 64;

/// A report's identity for replay detection: its phase, state and the sender's time.
type ReportKey = (String, String, String);

/// One node's state.
#[derive(Debug, Clone)]
struct NodeState {
    name: String,
    role: Role,
    ip_conf: String,
    mac_conf: Option<String>,
    owner: Option<String>,
    ips: BTreeSet<String>,
    ip: Option<String>,
    phase: Option<String>,
    state: Option<String>,
    step: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    error: Option<String>,
    installed: bool,
    reinstall: bool,
    refused: Vec<String>,
    last_boot: Option<String>,
    joined: bool,
    /// The last [`RECENT_REPORTS`] reports taken, oldest first.
    recent: VecDeque<ReportKey>,
    /// Whether it held the VIP, as it last said, and when the server heard it.
    vip: Option<(bool, String)>,
    /// The etcd members it last listed, and when the server heard it.
    etcd: Option<(Vec<String>, String)>,
}

/// A machine that is not in cluster.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownRow {
    /// Its MAC, if it gave one.
    pub mac: Option<String>,
    /// Its address.
    pub ip: Option<String>,
    /// What it asked for first.
    pub what: String,
    /// When it was first seen.
    pub seen: String,
}

/// One row of the fleet table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    /// The node's name.
    pub name: String,
    /// `master` or `worker`.
    pub role: String,
    /// Its MAC (cluster.toml's, else the first that reported).
    pub mac: Option<String>,
    /// The address it last reported or booted from.
    pub ip: Option<String>,
    /// The last phase reported (`pxe` once it was handed an installer), if any.
    pub phase: Option<String>,
    /// `running`, `ok` or `failed`.
    pub state: Option<String>,
    /// The failed step.
    pub step: Option<String>,
    /// `init` or `join`.
    pub decision: Option<String>,
    /// When the current phase started (RFC 3339).
    pub since: Option<String>,
    /// Seconds in the current phase.
    pub in_phase_s: Option<i64>,
    /// The last error class reported.
    pub error: Option<String>,
    /// Installed: its iPXE script boots the local disk.
    pub installed: bool,
    /// The next install wipes its disk (an operator asked for a reimage).
    pub reinstall: bool,
    /// Refused claims on this node's name (the last few).
    pub refused: Vec<String>,
    /// Whether it held the VIP, as its last report that looked said.
    pub vip_holder: Option<bool>,
    /// The etcd members it last listed (masters).
    pub etcd_members: Option<Vec<String>>,
}

/// The etcd member list as the last master that could list it reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdMembers {
    /// The members' names.
    pub members: Vec<String>,
    /// The master that listed them.
    pub reported_by: String,
    /// When the server received that report (RFC 3339).
    pub at: String,
}

/// One timeline event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When (RFC 3339).
    pub at: String,
    /// The node, or `unknown machine`.
    pub node: String,
    /// What happened.
    pub what: String,
}

/// A master that reported its cluster phase done: a member of the stacked control plane (and of etcd).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The master.
    pub name: String,
    /// `init` or `join`, as it reported.
    pub decision: Option<String>,
}

/// What `/api/fleet` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetView {
    /// The cluster's name.
    pub cluster: String,
    /// The server's time (RFC 3339).
    pub now: String,
    /// One row per node of cluster.toml, in its order.
    pub nodes: Vec<NodeRow>,
    /// Machines that are not in cluster.toml.
    pub unknown: Vec<UnknownRow>,
    /// The control plane as the reports tell it: the masters whose cluster phase finished (since their last
    /// install), in the order of cluster.toml. Not a live etcd member list.
    pub control_plane: Vec<Member>,
    /// The node whose report said last that it holds the VIP (and has not said otherwise since), if any.
    pub vip_holder: Option<String>,
    /// The etcd members, as the latest master that listed them said.
    pub etcd_members: Option<EtcdMembers>,
    /// The newest events last.
    pub timeline: Vec<Event>,
}

/// The verdict on a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Take it, for this node.
    Accept(String),
    /// Already taken (same node, phase, state and time, among the node's last [`RECENT_REPORTS`]): ignore it.
    Replay,
    /// Two machines claim the node: refuse and record why.
    Refuse(String, String),
    /// No node of the cluster: record the machine as unknown.
    Unknown(String),
}

/// The fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    cluster: String,
    nodes: Vec<NodeState>,
    unknown: Vec<UnknownRow>,
    timeline: VecDeque<Event>,
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Now, RFC 3339 in whole seconds.
pub fn now() -> String {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl Fleet {
    /// Every node of `cluster`, nothing reported yet.
    pub fn new(cluster: &Cluster) -> Fleet {
        Fleet {
            cluster: cluster.cluster.name.clone(),
            nodes: cluster
                .nodes()
                .map(|(role, n)| NodeState {
                    name: n.name.clone(),
                    role,
                    ip_conf: n.ip.to_string(),
                    mac_conf: n.mac.as_deref().and_then(normalize_mac),
                    owner: None,
                    ips: BTreeSet::new(),
                    ip: None,
                    phase: None,
                    state: None,
                    step: None,
                    decision: None,
                    since: None,
                    error: None,
                    installed: false,
                    reinstall: false,
                    refused: Vec::new(),
                    last_boot: None,
                    joined: false,
                    recent: VecDeque::new(),
                    vip: None,
                    etcd: None,
                })
                .collect(),
            unknown: Vec::new(),
            timeline: VecDeque::new(),
        }
    }

    fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// The node whose MAC is `mac` (cluster.toml's, else the one that claimed it first).
    pub fn by_mac(&self, mac: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.mac_conf.as_deref() == Some(mac))
            .or_else(|| {
                self.nodes
                    .iter()
                    .find(|n| n.mac_conf.is_none() && n.owner.as_deref() == Some(mac))
            })
            .map(|n| n.name.as_str())
    }

    /// Whether `name` is installed (its iPXE script boots the local disk).
    pub fn installed(&self, name: &str) -> bool {
        self.node(name).is_some_and(|n| n.installed)
    }

    /// Whether `name`'s next install must wipe its disk.
    pub fn reinstall(&self, name: &str) -> bool {
        self.node(name).is_some_and(|n| n.reinstall)
    }

    /// Whether a network boot of `name` with `action` says something the journal does not: not when the last boot
    /// had the same action and nothing was reported since (a machine looping on PXE, or a hostile one, must not
    /// grow the journal).
    pub fn boot_is_news(&self, name: &str, action: &str) -> bool {
        self.node(name)
            .is_none_or(|n| n.last_boot.as_deref() != Some(action))
    }

    /// Whether refusing a claim on `name` for `reason` is news: not when it is the node's last refusal.
    pub fn refusal_is_news(&self, name: &str, reason: &str) -> bool {
        self.node(name)
            .is_none_or(|n| n.refused.last().map(String::as_str) != Some(reason))
    }

    /// Whether a machine with this MAC or address is already listed as unknown.
    pub fn knows_unknown(&self, mac: Option<&str>, ip: Option<&str>) -> bool {
        self.unknown.len() >= MAX_UNKNOWN
            || self.unknown.iter().any(|u| match mac {
                Some(m) => u.mac.as_deref() == Some(m),
                None => u.mac.is_none() && u.ip.as_deref() == ip,
            })
    }

    /// Decides on a report from `mac` (the report URL's, if any) and `ip`.
    pub fn judge(&self, r: &Report, mac: Option<&str>, ip: Option<&str>) -> Verdict {
        let name = match (&r.node, mac) {
            (Some(n), _) => n.clone(),
            (None, Some(m)) => match self.by_mac(m) {
                Some(n) => n.to_string(),
                None => {
                    return Verdict::Unknown(format!(
                        "a report (phase {}) from an unknown MAC",
                        r.phase
                    ))
                }
            },
            (None, None) => {
                return Verdict::Unknown(format!(
                    "a report (phase {}) without a node name or MAC",
                    r.phase
                ))
            }
        };
        let Some(n) = self.node(&name) else {
            return Verdict::Unknown(format!(
                "a report for '{name}', which is not a node of cluster.toml"
            ));
        };
        if n.recent
            .iter()
            .any(|(p, s, t)| p == &r.phase && s == &r.state && t == &r.time)
        {
            return Verdict::Replay;
        }
        if let Some(role) = &r.role {
            if role != &n.role.to_string() {
                return Verdict::Refuse(
                    name,
                    format!(
                        "a report claims role {role}; cluster.toml makes it a {}",
                        n.role
                    ),
                );
            }
        }
        let owner = n.mac_conf.as_ref().or(n.owner.as_ref());
        match (mac, owner) {
            (Some(m), Some(o)) if m != o => Verdict::Refuse(
                name,
                format!("MAC {m} claims the name; it belongs to MAC {o}"),
            ),
            (Some(_), _) => Verdict::Accept(name),
            (None, _) => match ip {
                Some(ip) if ip != n.ip_conf && !n.ips.is_empty() && !n.ips.contains(ip) => {
                    Verdict::Refuse(
                        name,
                        format!(
                            "{ip} claims the name without a MAC; the node reported from {}",
                            n.ips.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                }
                _ => Verdict::Accept(name),
            },
        }
    }

    fn event(&mut self, at: &str, node: &str, what: String) {
        if self.timeline.len() == TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(Event {
            at: at.to_string(),
            node: node.to_string(),
            what,
        });
    }

    /// Folds one entry in.
    pub fn apply(&mut self, e: &Entry) {
        match e {
            Entry::Report {
                at,
                node,
                mac,
                ip,
                report: r,
            } => {
                let Some(n) = self.node_mut(node) else { return };
                if n.recent.len() == RECENT_REPORTS {
                    n.recent.pop_front();
                }
                n.recent
                    .push_back((r.phase.clone(), r.state.clone(), r.time.clone()));
                n.last_boot = None;
                if n.mac_conf.is_none() && n.owner.is_none() {
                    n.owner = mac.clone();
                }
                if let Some(ip) = ip {
                    n.ips.insert(ip.clone());
                    n.ip = Some(ip.clone());
                }
                if n.phase.as_deref() != Some(r.phase.as_str()) {
                    n.since = Some(at.clone());
                }
                n.phase = Some(r.phase.clone());
                n.state = Some(r.state.clone());
                n.step = r.step.clone();
                if r.error.is_some() {
                    n.error = r.error.clone();
                }
                if r.decision.is_some() {
                    n.decision = r.decision.clone();
                }
                if let Some(v) = r.vip_holder {
                    n.vip = Some((v, at.clone()));
                }
                if let Some(m) = &r.etcd_members {
                    n.etcd = Some((m.clone(), at.clone()));
                }
                if r.from_installer() {
                    n.joined = false;
                    n.vip = None;
                    n.etcd = None;
                } else if r.state == "ok" && (r.phase == "cluster" || r.phase == "done") {
                    n.joined = true;
                }
                if (r.phase == "installed" && r.state == "ok") || !r.from_installer() {
                    n.installed = true;
                    n.reinstall = false;
                }
                let what = match (&r.state[..], &r.error) {
                    ("failed", Some(err)) => format!("{} failed: {err}", r.phase),
                    (s, _) => format!("{} {s}", r.phase),
                };
                self.event(at, node, what);
            }
            Entry::Refused {
                at, node, reason, ..
            } => {
                if let Some(n) = self.node_mut(node) {
                    if n.refused.len() == 5 {
                        n.refused.remove(0);
                    }
                    n.refused.push(reason.clone());
                }
                self.event(at, node, format!("refused: {reason}"));
            }
            Entry::Boot {
                at,
                node,
                ip,
                action,
            } => {
                let Some(n) = self.node_mut(node) else { return };
                n.last_boot = Some(action.clone());
                if let Some(ip) = ip {
                    n.ip = Some(ip.clone());
                }
                if action != "local" {
                    n.phase = Some("pxe".into());
                    n.state = Some("running".into());
                    n.step = None;
                    n.since = Some(at.clone());
                }
                self.event(at, node, format!("network boot: {action}"));
            }
            Entry::Unknown { at, mac, ip, what } => {
                if !self.knows_unknown(mac.as_deref(), ip.as_deref()) {
                    self.unknown.push(UnknownRow {
                        mac: mac.clone(),
                        ip: ip.clone(),
                        what: what.clone(),
                        seen: at.clone(),
                    });
                }
                let who = mac.clone().or(ip.clone()).unwrap_or_default();
                self.event(at, "unknown machine", format!("{who}: {what}"));
            }
            Entry::Reimage { at, node } => {
                let Some(n) = self.node_mut(node) else { return };
                n.last_boot = None;
                n.joined = false;
                n.installed = false;
                n.reinstall = true;
                n.owner = None;
                n.ips.clear();
                n.phase = Some("reimage".into());
                n.state = Some("running".into());
                n.step = None;
                n.decision = None;
                n.vip = None;
                n.etcd = None;
                n.since = Some(at.clone());
                self.event(at, node, "reimage requested".into());
            }
        }
    }

    /// The view at time `now` (RFC 3339).
    pub fn view(&self, now: &str) -> FleetView {
        let t = parse_time(now);
        FleetView {
            cluster: self.cluster.clone(),
            now: now.to_string(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeRow {
                    name: n.name.clone(),
                    role: n.role.to_string(),
                    mac: n.mac_conf.clone().or(n.owner.clone()),
                    ip: n.ip.clone(),
                    phase: n.phase.clone(),
                    state: n.state.clone(),
                    step: n.step.clone(),
                    decision: n.decision.clone(),
                    since: n.since.clone(),
                    in_phase_s: match (t, n.since.as_deref().and_then(parse_time)) {
                        (Some(t), Some(s)) => Some((t - s).whole_seconds().max(0)),
                        _ => None,
                    },
                    error: n.error.clone(),
                    installed: n.installed,
                    reinstall: n.reinstall,
                    refused: n.refused.clone(),
                    vip_holder: n.vip.as_ref().map(|v| v.0),
                    etcd_members: n.etcd.as_ref().map(|e| e.0.clone()),
                })
                .collect(),
            // The latest claim wins (RFC 3339 in whole seconds, UTC: ordered as strings); a tie goes to the first
            // node in cluster.toml.
            vip_holder: self
                .nodes
                .iter()
                .filter_map(|n| match &n.vip {
                    Some((true, at)) => Some((at, &n.name)),
                    _ => None,
                })
                .fold(None::<(&String, &String)>, |best, c| match best {
                    Some(b) if b.0 >= c.0 => Some(b),
                    _ => Some(c),
                })
                .map(|(_, n)| n.clone()),
            etcd_members: self
                .nodes
                .iter()
                .filter_map(|n| n.etcd.as_ref().map(|(m, at)| (m, at, &n.name)))
                .fold(
                    None::<(&Vec<String>, &String, &String)>,
                    |best, c| match best {
                        Some(b) if b.1 >= c.1 => Some(b),
                        _ => Some(c),
                    },
                )
                .map(|(m, at, n)| EtcdMembers {
                    members: m.clone(),
                    reported_by: n.clone(),
                    at: at.clone(),
                }),
            unknown: self.unknown.clone(),
            control_plane: self
                .nodes
                .iter()
                .filter(|n| n.role == Role::Master && n.joined)
                .map(|n| Member {
                    name: n.name.clone(),
                    decision: n.decision.clone(),
                })
                .collect(),
            timeline: self.timeline.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        let mut c = Cluster::default_cluster();
        c.masters[0].mac = Some("52:54:00:12:34:01".into());
        c
    }

    fn report(node: &str, phase: &str, state: &str, time: &str) -> Report {
        Report {
            node: Some(node.into()),
            phase: phase.into(),
            state: state.into(),
            time: time.into(),
            ..Default::default()
        }
    }

    fn accept(f: &mut Fleet, r: Report, mac: Option<&str>, ip: &str, at: &str) {
        let v = f.judge(&r, mac, Some(ip));
        let Verdict::Accept(node) = v else {
            panic!("{r:?} from {mac:?}/{ip}: {v:?}")
        };
        f.apply(&Entry::Report {
            at: at.into(),
            node,
            mac: mac.map(str::to_string),
            ip: Some(ip.into()),
            report: Box::new(r),
        });
    }

    #[test]
    fn install_once_replays_and_reimage() {
        let c = cluster();
        let m1 = c.masters[0].name.clone();
        let m = Some("52:54:00:12:34:01");
        let mut f = Fleet::new(&c);
        assert!(!f.installed(&m1));
        let r = report(&m1, "install", "running", "2026-12-05T12:00:00Z");
        accept(&mut f, r.clone(), m, "10.0.0.50", "2026-12-05T12:00:01Z");
        assert!(!f.installed(&m1), "install (running) is not installed");
        assert_eq!(f.judge(&r, m, Some("10.0.0.50")), Verdict::Replay);
        let mut r2 = report(&m1, "installed", "ok", "2026-12-05T12:05:00Z");
        r2.role = Some("master".into());
        accept(&mut f, r2, m, "10.0.0.50", "2026-12-05T12:05:01Z");
        assert!(f.installed(&m1));
        assert!(f.view("2026-12-05T12:05:31Z").control_plane.is_empty());
        let row = &f.view("2026-12-05T12:05:31Z").nodes[0];
        assert_eq!(row.phase.as_deref(), Some("installed"));
        assert_eq!(row.in_phase_s, Some(30));
        let mut rc = report(&m1, "cluster", "ok", "2026-12-05T12:06:00Z");
        rc.decision = Some("init".into());
        accept(&mut f, rc, m, "192.168.20.20", "2026-12-05T12:06:01Z");
        assert_eq!(
            f.view("2026-12-05T12:06:01Z").control_plane,
            vec![Member {
                name: m1.clone(),
                decision: Some("init".into())
            }]
        );
        f.apply(&Entry::Reimage {
            at: "2026-12-05T12:10:00Z".into(),
            node: m1.clone(),
        });
        assert!(!f.installed(&m1) && f.reinstall(&m1));
        assert!(
            f.view("2026-12-05T12:10:00Z").control_plane.is_empty(),
            "a reimaged master left"
        );
        // The agent's first report on the reinstalled disk: installed again, no more reinstall.
        let mut r3 = report(&m1, "config", "ok", "2026-12-05T12:20:00Z");
        r3.decision = Some("init".into());
        accept(&mut f, r3, m, "192.168.20.20", "2026-12-05T12:20:01Z");
        assert!(f.installed(&m1) && !f.reinstall(&m1));
        assert_eq!(
            f.view("2026-12-05T12:20:01Z").nodes[0].decision.as_deref(),
            Some("init")
        );
    }

    #[test]
    fn replay_memory_holds_the_last_reports_of_each_node_only() {
        let c = cluster();
        let m1 = c.masters[0].name.clone();
        let w1 = c.workers[0].name.clone();
        let mac = Some("52:54:00:12:34:01");
        let mut f = Fleet::new(&c);
        let at = |i: usize| {
            format!(
                "2026-12-05T{:02}:{:02}:{:02}Z",
                i / 3600,
                i / 60 % 60,
                i % 60
            )
        };
        // Three times the memory's size of distinct reports from one node.
        let n = 3 * RECENT_REPORTS;
        for i in 0..n {
            accept(
                &mut f,
                report(&m1, "os", "running", &at(i)),
                mac,
                "10.0.0.50",
                &at(i),
            );
        }
        assert_eq!(f.nodes[0].recent.len(), RECENT_REPORTS, "bounded");
        // Each of the last RECENT_REPORTS is still known as a replay.
        for i in n - RECENT_REPORTS..n {
            let r = report(&m1, "os", "running", &at(i));
            assert_eq!(f.judge(&r, mac, Some("10.0.0.50")), Verdict::Replay, "{i}");
        }
        // The one before them has been forgotten: it is taken again (and the memory stays bounded).
        let old = report(&m1, "os", "running", &at(n - RECENT_REPORTS - 1));
        assert!(matches!(
            f.judge(&old, mac, Some("10.0.0.50")),
            Verdict::Accept(_)
        ));
        accept(&mut f, old.clone(), mac, "10.0.0.50", &at(n));
        assert_eq!(f.nodes[0].recent.len(), RECENT_REPORTS);
        assert_eq!(f.judge(&old, mac, Some("10.0.0.50")), Verdict::Replay);
        // A report is a replay for its own node only: the same phase, state and time from another node is news.
        let same = report(&w1, "os", "running", &at(n - 1));
        assert!(matches!(
            f.judge(&same, None, Some(&c.workers[0].ip.to_string())),
            Verdict::Accept(_)
        ));
        // Another state at the same time is another report.
        let failed = report(&m1, "os", "failed", &at(n - 1));
        assert!(matches!(
            f.judge(&failed, mac, Some("10.0.0.50")),
            Verdict::Accept(_)
        ));
        let total: usize = f.nodes.iter().map(|n| n.recent.len()).sum();
        assert_eq!(
            total, RECENT_REPORTS,
            "nodes without reports remember nothing"
        );
    }

    #[test]
    fn vip_holder_and_etcd_members_are_the_latest_reports() {
        let c = cluster();
        let (m1, m2) = (c.masters[0].name.clone(), c.masters[1].name.clone());
        let ip2 = c.masters[1].ip.to_string();
        let mut f = Fleet::new(&c);
        let v = f.view("2026-12-05T12:00:00Z");
        assert_eq!(
            (v.vip_holder, v.etcd_members),
            (None, None),
            "nothing reported"
        );
        let mut r = report(&m1, "cluster", "ok", "2026-12-05T12:00:00Z");
        r.vip_holder = Some(true);
        r.etcd_members = Some(vec![m1.clone()]);
        accept(
            &mut f,
            r,
            Some("52:54:00:12:34:01"),
            "10.0.0.50",
            "2026-12-05T12:00:01Z",
        );
        let mut r = report(&m2, "cluster", "ok", "2026-12-05T12:01:00Z");
        r.vip_holder = Some(false);
        r.etcd_members = Some(vec![m1.clone(), m2.clone()]);
        accept(&mut f, r, None, &ip2, "2026-12-05T12:01:01Z");
        let v = f.view("2026-12-05T12:01:02Z");
        assert_eq!(v.vip_holder.as_deref(), Some(m1.as_str()));
        let e = v.etcd_members.unwrap();
        assert_eq!((e.members.len(), e.reported_by.as_str()), (2, m2.as_str()));
        assert_eq!(v.nodes[1].vip_holder, Some(false));
        // The VIP moves: m1 says it lost it, m2 that it holds it.
        let mut r = report(&m1, "done", "ok", "2026-12-05T12:02:00Z");
        r.vip_holder = Some(false);
        accept(
            &mut f,
            r,
            Some("52:54:00:12:34:01"),
            "10.0.0.50",
            "2026-12-05T12:02:01Z",
        );
        assert_eq!(
            f.view("2026-12-05T12:02:02Z").vip_holder,
            None,
            "nobody claims it"
        );
        let mut r = report(&m2, "done", "ok", "2026-12-05T12:03:00Z");
        r.vip_holder = Some(true);
        accept(&mut f, r, None, &ip2, "2026-12-05T12:03:01Z");
        assert_eq!(
            f.view("2026-12-05T12:03:02Z").vip_holder.as_deref(),
            Some(m2.as_str())
        );
        // A report without the fields keeps what the node said last; a reimage forgets it.
        accept(
            &mut f,
            report(&m2, "done", "ok", "2026-12-05T12:04:00Z"),
            None,
            &ip2,
            "2026-12-05T12:04:01Z",
        );
        assert_eq!(
            f.view("2026-12-05T12:04:02Z").vip_holder.as_deref(),
            Some(m2.as_str())
        );
        f.apply(&Entry::Reimage {
            at: "2026-12-05T12:05:00Z".into(),
            node: m2.clone(),
        });
        let v = f.view("2026-12-05T12:05:01Z");
        assert_eq!(v.vip_holder, None);
        assert_eq!(v.etcd_members.unwrap().reported_by, m1);
    }

    #[test]
    fn repeated_boots_and_refusals_are_not_news() {
        let c = cluster();
        let m1 = c.masters[0].name.clone();
        let mut f = Fleet::new(&c);
        let boot = |action: &str| Entry::Boot {
            at: "2026-12-05T12:00:00Z".into(),
            node: m1.clone(),
            ip: None,
            action: action.into(),
        };
        assert!(f.boot_is_news(&m1, "install"));
        f.apply(&boot("install"));
        assert!(!f.boot_is_news(&m1, "install"), "a PXE loop");
        assert!(f.boot_is_news(&m1, "local"));
        accept(
            &mut f,
            report(&m1, "install", "running", "2026-12-05T12:00:01Z"),
            Some("52:54:00:12:34:01"),
            "10.0.0.50",
            "2026-12-05T12:00:02Z",
        );
        assert!(f.boot_is_news(&m1, "install"), "a report came in between");
        assert!(f.refusal_is_news(&m1, "x"));
        f.apply(&Entry::Refused {
            at: "2026-12-05T12:00:03Z".into(),
            node: m1.clone(),
            mac: None,
            ip: None,
            reason: "x".into(),
        });
        assert!(!f.refusal_is_news(&m1, "x") && f.refusal_is_news(&m1, "y"));
    }

    #[test]
    fn two_machines_claiming_one_name_are_refused() {
        let c = cluster();
        let m1 = c.masters[0].name.clone();
        let m2 = c.masters[1].name.clone();
        let mut f = Fleet::new(&c);
        let r = report(&m1, "install", "running", "2026-12-05T12:00:00Z");
        // The MAC cluster.toml gives another machine.
        assert!(
            matches!(f.judge(&r, Some("52:54:00:99:99:99"), None), Verdict::Refuse(n, why) if n == m1 && why.contains("52:54:00:12:34:01"))
        );
        // A node without a MAC in cluster.toml is owned by the first MAC that reports for it.
        let r2 = report(&m2, "install", "running", "2026-12-05T12:00:00Z");
        accept(
            &mut f,
            r2,
            Some("52:54:00:aa:00:02"),
            "10.0.0.51",
            "2026-12-05T12:00:01Z",
        );
        let r3 = report(&m2, "install", "running", "2026-12-05T12:00:02Z");
        assert!(matches!(
            f.judge(&r3, Some("52:54:00:aa:00:03"), None),
            Verdict::Refuse(..)
        ));
        // Without a MAC: the node's own addresses only.
        assert!(matches!(
            f.judge(&r3, None, Some("10.0.0.99")),
            Verdict::Refuse(..)
        ));
        assert!(matches!(
            f.judge(&r3, None, Some("10.0.0.51")),
            Verdict::Accept(_)
        ));
        let ip2 = c.masters[1].ip.to_string();
        assert!(matches!(f.judge(&r3, None, Some(&ip2)), Verdict::Accept(_)));
        // A wrong role, and a name that is not the cluster's.
        let mut r4 = r3.clone();
        r4.role = Some("worker".into());
        assert!(matches!(
            f.judge(&r4, None, Some(&ip2)),
            Verdict::Refuse(..)
        ));
        let r5 = report("intruder", "os", "ok", "2026-12-05T12:00:02Z");
        assert!(matches!(
            f.judge(&r5, None, Some("10.0.0.7")),
            Verdict::Unknown(_)
        ));
    }
}
