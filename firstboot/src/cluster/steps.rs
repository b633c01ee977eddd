//! The cluster steps, in the order the engine runs them after OS preparation.
//!
//! Masters: `cluster-pki` → `cluster-lb` → `cluster-decide` → `cluster-rebuild` → `cluster-kubeadm` →
//! `cluster-verify` → `cluster-cni` → `cluster-token`. Workers: `cluster-worker-join`. Each step checks before it
//! acts: a master whose control plane files are complete (admin.conf, kubelet.conf, the apiserver and etcd manifests)
//! skips decide, rebuild and kubeadm; files are rewritten only when their bytes change; services are restarted on
//! every run of their step (a crash may have left them on an older config).
//!
//! "Done" is what the cluster says, not what the journal or the files say: pki, decide, rebuild, kubeadm, verify
//! and worker-join run on every run ([`Step::rechecks`]); `cluster-verify` waits until the API lists this master's
//! Node and the kubeadm-config ConfigMap and (on a joined master) etcd lists its member as started. A kubeadm that
//! died half-way is undone with `kubeadm reset -f` before the retry, and the CA material is written again after the
//! reset (kubeadm reset empties /etc/kubernetes/pki; without it the retry would mint a new CA).
//!
//! Commands get system paths (`/etc/kubeha/kubeadm-init.yaml`); files are written through the [`Context`]'s write
//! methods with the same system paths, so tests and dry runs write under their root. Files holding the token are
//! 0600 in a 0700 directory ([`Context::write_secret`]) and reach kubeadm by `--config`, never on its command line.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use kubeha_model::backoff::Backoff;
use kubeha_model::cluster::Role;
use kubeha_model::kube::KubeadmApi;
use sha2::Digest as _;

use super::attest::State as AttestState;
pub use super::bootstrap::{Bootstrap, DECISION_FILE, STATE_DIR};
use super::decide::{self, ClusterEnv, Decision, Timing};
use super::etcd::{self, Rebuild};
pub use super::kubeadm::APISERVER_MANIFEST;
use super::kubeadm::{self, Credentials, LegacyEtcd};
use super::kubeapi::Deleted;
pub use super::lb::LoadBalancerStep;
pub use super::lb_plan::interface_of;
use super::pki;
use crate::engine::{Context, Step};
use crate::runner::Cmd;

/// The CNI marker (sha256 of the applied manifest).
pub const CNI_MARKER: &str = "/var/lib/kubeha/cluster/cni-applied";
/// The CNI manifest as applied (images pointing at the bundle's references).
pub const CNI_MANIFEST: &str = "/etc/kubeha/cni.yaml";
/// The kubeadm file the token refresh uses.
pub const TOKEN_CONFIG: &str = "/etc/kubeha/kubeadm-token.yaml";
/// admin.conf.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// kubelet.conf.
pub const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
/// The stacked etcd's static pod manifest (written by kubeadm after the member is added, on init and join).
pub const ETCD_MANIFEST: &str = "/etc/kubernetes/manifests/etcd.yaml";
/// kubeadm's bootstrap kubeconfig on a joining node (gone once the kubelet has its own certificate).
pub const BOOTSTRAP_KUBELET_CONF: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
/// The kubelet's configuration, written by kubeadm's kubelet-start phase (init and join) after the kubeconfigs and
/// the static pod manifests: without it no kubelet runs those manifests.
pub const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";

/// Shared by the steps: the network side and the timing.
#[derive(Clone)]
pub struct Shared {
    /// Probes and clients.
    pub env: Arc<dyn ClusterEnv>,
    /// Waits.
    pub timing: Timing,
}

/// Whether this master's control plane files are complete (the last ones kubeadm writes; `cluster-verify` asks the
/// cluster).
///
/// The kubelet's config is among them: kubeadm killed after writing the manifests but before kubelet-start leaves
/// every other file, and a control plane nothing will ever start (real kubeadm 1.36, killed before its etcd
/// answered, in the lab); that is a half-finished run to reset, not a control plane to wait for.
pub fn control_plane_done(ctx: &Context) -> bool {
    [
        ADMIN_CONF,
        KUBELET_CONF,
        APISERVER_MANIFEST,
        ETCD_MANIFEST,
        KUBELET_CONFIG,
    ]
    .iter()
    .all(|p| ctx.path(p).exists())
}

/// Whether kubeadm left anything behind (a run that stopped half-way).
fn partial_state(ctx: &Context) -> bool {
    [
        ADMIN_CONF,
        KUBELET_CONF,
        APISERVER_MANIFEST,
        ETCD_MANIFEST,
        BOOTSTRAP_KUBELET_CONF,
        KUBELET_CONFIG,
        "/var/lib/etcd/member",
    ]
    .iter()
    .any(|p| ctx.path(p).exists())
}

fn credentials(ctx: &Context) -> Credentials {
    Credentials {
        token: ctx.config.join.token.clone(),
        ca_cert_hash: ctx.config.join.ca_cert_hash.clone(),
        certificate_key: ctx
            .config
            .control_plane
            .as_ref()
            .map(|cp| cp.certificate_key.clone()),
    }
}

fn is_master(ctx: &Context) -> bool {
    ctx.role == Role::Master
}

/// Undoes a half-finished kubeadm run (`kubeadm reset -f` and what it leaves), then puts the cluster's CA
/// material back on a master: kubeadm reset empties /etc/kubernetes/pki, and an init or join without the shared CAs
/// would mint new ones.
fn reset(ctx: &Context) -> Result<()> {
    log::warn!("kubeadm left a half-finished node behind: kubeadm reset -f before trying again");
    ctx.runner.run(&Cmd::new("kubeadm").args(["reset", "-f"]))?;
    for p in [
        "/var/lib/etcd/member",
        ADMIN_CONF,
        KUBELET_CONF,
        BOOTSTRAP_KUBELET_CONF,
        KUBELET_CONFIG,
    ] {
        ctx.remove(p)?;
    }
    if is_master(ctx) {
        write_pki(ctx)?;
    }
    Ok(())
}

/// The shared CAs and service-account keys into /etc/kubernetes/pki; returns how many files changed.
fn write_pki(ctx: &Context) -> Result<usize> {
    let cp = ctx
        .config
        .control_plane
        .as_ref()
        .context("a master needs the [control-plane] keys")?;
    pki::write_pki(ctx, &ctx.config.join.ca_cert, cp)
}

/// `cluster-pki`: the shared CAs and service-account keys into /etc/kubernetes/pki.
pub struct PkiStep;

impl Step for PkiStep {
    fn name(&self) -> &'static str {
        "cluster-pki"
    }
    fn applies(&self, ctx: &Context) -> bool {
        is_master(ctx)
    }
    fn rechecks(&self) -> bool {
        true
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let n = write_pki(ctx)?;
        log::info!("cluster CA material in {}: {n} files written", pki::PKI_DIR);
        Ok(())
    }
}

/// `cluster-decide`: init or join (see [`decide`]).
pub struct DecideStep(pub Shared);

impl Step for DecideStep {
    fn name(&self) -> &'static str {
        "cluster-decide"
    }
    fn rechecks(&self) -> bool {
        true
    }
    fn applies(&self, ctx: &Context) -> bool {
        is_master(ctx)
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if control_plane_done(ctx) {
            log::info!("control plane already set up on {}", ctx.me.name);
            return Ok(());
        }
        // Undo a half-finished kubeadm run first: its apiserver would otherwise answer our own probes.
        if partial_state(ctx) {
            reset(ctx)?;
        }
        let d = if ctx.dry_run {
            let is_designated =
                decide::designated(&ctx.config).is_some_and(|d| d.name == ctx.me.name);
            log::info!("dry run: no probes; the designated master would init if nothing answers and a majority attests");
            if is_designated {
                Decision::Init
            } else {
                Decision::Join("dry run".into())
            }
        } else {
            self.decide_with_majority(ctx)?
        };
        match &d {
            Decision::Init => log::info!(
                "{}: nothing answers; this master initializes the cluster",
                ctx.me.name
            ),
            Decision::Join(why) => log::info!("{}: joining the control plane: {why}", ctx.me.name),
            Decision::Wait(why) => bail!("{why}"),
        }
        if let Some(b) = Bootstrap::from_decision(&d) {
            b.save(ctx)?;
        }
        Ok(())
    }
}

impl DecideStep {
    /// Answers attestations ("waiting for the designated master") from now until kubeadm runs, and decides; the
    /// designated master asks again, with backoff, until something answers or a majority attests, bounded by
    /// [`Timing::endpoint_wait`] (the unit's restart then starts over).
    fn decide_with_majority(&self, ctx: &Context) -> Result<Decision> {
        let env = self.0.env.as_ref();
        let t = &self.0.timing;
        let me = &ctx.me;
        let designated = decide::designated(&ctx.config)
            .map(|d| d.name.clone())
            .context("the cluster has no masters")?;
        if let Err(e) =
            env.set_attestation(&ctx.config, me, Some((AttestState::Waiting, designated)))
        {
            log::warn!(
                "cannot answer attestations (the designated master will not count this one): {e:#}"
            );
        }
        let start = std::time::Instant::now();
        let mut delays = t.backoff().delays();
        let mut last_log = None::<std::time::Instant>;
        loop {
            let force = ctx.path(decide::FORCE_INIT).exists();
            match decide::decide(env, &ctx.config, &ctx.me.name, force) {
                Decision::Wait(why) if start.elapsed() < t.endpoint_wait => {
                    if last_log.is_none_or(|l| l.elapsed() >= Duration::from_secs(30)) {
                        log::info!("not initializing yet: {why}");
                        last_log = Some(std::time::Instant::now());
                    }
                    crate::status::set_waiting(&ctx.root, Some(&why));
                    env.sleep(delays.pause());
                }
                // Still waiting when the wait runs out: the step fails with the reason (the engine's status
                // then carries it as the error).
                d @ Decision::Wait(_) => return Ok(d),
                d => {
                    crate::status::set_waiting(&ctx.root, None);
                    return Ok(d);
                }
            }
        }
    }
}

/// `cluster-rebuild`: before a join, wait for the endpoint and this master's turn, then remove this master's stale
/// etcd member and Node (rebuild by reimaging).
pub struct RebuildStep(pub Shared);

impl Step for RebuildStep {
    fn name(&self) -> &'static str {
        "cluster-rebuild"
    }
    fn rechecks(&self) -> bool {
        true
    }
    fn applies(&self, ctx: &Context) -> bool {
        is_master(ctx)
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if control_plane_done(ctx) || Bootstrap::load(ctx) != Some(Bootstrap::Join) {
            return Ok(());
        }
        if ctx.dry_run {
            log::info!(
                "dry run: would wait for the endpoint and remove a stale etcd member and Node"
            );
            return Ok(());
        }
        let env = self.0.env.as_ref();
        let t = &self.0.timing;
        let me = &ctx.me;
        decide::wait_for_endpoint(env, &ctx.config, t, &me.name)?;
        decide::wait_turn(env, &ctx.config, &me.name, t)?;
        match env.etcd_rebuild(&ctx.config, me)? {
            Rebuild::NotMember => log::info!("{} is not an etcd member: nothing stale", me.name),
            Rebuild::Removed(ids) => {
                log::info!("removed stale etcd member(s) of {}: {ids:?}", me.name)
            }
        }
        // Retried: right after a VIP move or while an apiserver restarts, nginx may briefly have no live upstream
        // (its passive checks keep a failed backend out for fail_timeout).
        let backoff = Backoff {
            max: t.backoff_max.max(Duration::from_secs(8)),
            ..t.backoff()
        };
        for (attempt, pause) in (1..=8).zip(backoff.delays()) {
            match env.delete_node(&ctx.config, &me.name) {
                Ok(Deleted::Yes) => {
                    log::info!("deleted the stale Node {}", me.name);
                    break;
                }
                Ok(Deleted::NotFound) => break,
                // kubeadm itself refuses to join over a Ready Node of the same name; a NotReady one is fine.
                Err(e) if attempt == 8 => {
                    log::warn!("could not delete a stale Node {}: {e:#}", me.name)
                }
                Err(e) => {
                    log::info!(
                        "deleting a stale Node {} (attempt {attempt}): {e:#}",
                        me.name
                    );
                    env.sleep(pause);
                }
            }
        }
        Ok(())
    }
}

/// This node's kubeadm patches directory, when the node has one.
fn patches_dir(ctx: &Context) -> Option<&'static str> {
    ctx.path(kubeadm::PATCHES_DIR)
        .is_dir()
        .then_some(kubeadm::PATCHES_DIR)
}

/// `cluster-kubeadm`: `kubeadm init` or `kubeadm join` as decided.
pub struct KubeadmStep(pub Shared);

impl Step for KubeadmStep {
    fn name(&self) -> &'static str {
        "cluster-kubeadm"
    }
    fn rechecks(&self) -> bool {
        true
    }
    fn applies(&self, ctx: &Context) -> bool {
        is_master(ctx)
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if control_plane_done(ctx) {
            return Ok(());
        }
        // A kubeadm killed half-way (this run's cluster-decide resets too; this covers a decision kept from a run
        // that died inside kubeadm after deciding).
        if partial_state(ctx) && !ctx.dry_run {
            reset(ctx)?;
        }
        // From here on this master attests nothing: it is initializing or joining.
        if !ctx.dry_run {
            let me = &ctx.me;
            let designated = decide::designated(&ctx.config)
                .map(|d| d.name.clone())
                .unwrap_or_default();
            if let Err(e) =
                self.0
                    .env
                    .set_attestation(&ctx.config, me, Some((AttestState::Busy, designated)))
            {
                log::warn!("attestation listener: {e:#}");
            }
        }
        let c = ctx.config.cluster.clone();
        let me = &ctx.me;
        let cred = credentials(ctx);
        let legacy = c.cluster.kubernetes_version.kubeadm_api() == KubeadmApi::V1Alpha2;
        match Bootstrap::load(ctx) {
            Some(Bootstrap::Init) => {
                ctx.write_secret(
                    kubeadm::INIT_CONFIG,
                    &kubeadm::render_init(&c, me, &cred, patches_dir(ctx))?,
                )?;
                let mut cmd = Cmd::new("kubeadm").args(["init", "--config", kubeadm::INIT_CONFIG]);
                if !legacy {
                    cmd = cmd.arg("--skip-token-print");
                }
                log::info!("kubeadm init on {}", me.name);
                ctx.runner.run(&cmd)?;
            }
            Some(Bootstrap::Join) if legacy => {
                // kubeadm 1.11 has no control-plane join: add the etcd member, then run the phases of its HA guide.
                let members = if ctx.dry_run {
                    Vec::new()
                } else {
                    self.0.env.etcd_add(&ctx.config, me)?
                };
                let etcd = LegacyEtcd {
                    initial_cluster: super::etcd::initial_cluster(&members, &me.name, me.ip),
                    state: "existing",
                };
                ctx.write_secret(
                    kubeadm::JOIN_CONFIG,
                    &kubeadm::render_master_v1alpha2(&c, me, &cred, &etcd)?,
                )?;
                let f = kubeadm::JOIN_CONFIG;
                for phase in [
                    &["certs", "all"][..],
                    &["kubelet", "config", "write-to-disk"],
                    &["kubelet", "write-env-file"],
                    &["kubeconfig", "kubelet"],
                ] {
                    ctx.runner.run(
                        &Cmd::new("kubeadm")
                            .args(["alpha", "phase"])
                            .args(phase.iter().copied())
                            .args(["--config", f]),
                    )?;
                }
                ctx.runner
                    .run(&Cmd::new("systemctl").args(["restart", "kubelet"]))?;
                for phase in [
                    &["etcd", "local"][..],
                    &["kubeconfig", "all"],
                    &["controlplane", "all"],
                    &["mark-master"],
                ] {
                    ctx.runner.run(
                        &Cmd::new("kubeadm")
                            .args(["alpha", "phase"])
                            .args(phase.iter().copied())
                            .args(["--config", f]),
                    )?;
                }
            }
            Some(Bootstrap::Join) => {
                ctx.write_secret(
                    kubeadm::JOIN_CONFIG,
                    &kubeadm::render_join(&c, me, &cred, true, patches_dir(ctx))?,
                )?;
                log::info!(
                    "kubeadm join (control plane) on {} through {}",
                    me.name,
                    c.control_plane_endpoint()
                );
                ctx.runner.run(&Cmd::new("kubeadm").args([
                    "join",
                    "--config",
                    kubeadm::JOIN_CONFIG,
                ]))?;
            }
            None => bail!(
                "no init/join decision in {DECISION_FILE} (None): cluster-decide must run first"
            ),
        }
        Ok(())
    }
}

/// Rewrites `image:` references that the bundle holds under another registry to the bundle's reference. Images
/// the bundle has under the same name, and images it does not have, are left alone.
pub fn rewrite_images(manifest: &str, bundle_refs: &[String]) -> String {
    fn normalize(r: &str) -> String {
        let (name, tag) = match r.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
            _ => (r.to_string(), "latest".to_string()),
        };
        let first = name.split('/').next().unwrap_or("");
        let has_registry = name.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let full = match (has_registry, name.contains('/')) {
            (true, _) => name,
            (false, true) => format!("docker.io/{name}"),
            (false, false) => format!("docker.io/library/{name}"),
        };
        format!("{full}:{tag}")
    }
    fn path_tag(r: &str) -> String {
        let n = normalize(r);
        n.split_once('/')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or(n)
    }
    let mut out = String::with_capacity(manifest.len());
    for line in manifest.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        if let Some(v) = body.strip_prefix("image:") {
            let r = v.trim().trim_matches(|c| c == '"' || c == '\'');
            let want = normalize(r);
            if !bundle_refs.iter().any(|b| normalize(b) == want) {
                let pt = path_tag(r);
                let cands: Vec<&String> =
                    bundle_refs.iter().filter(|b| path_tag(b) == pt).collect();
                if let [only] = cands[..] {
                    let indent = &line[..line.len() - trimmed.len()];
                    let dash = if body.len() != trimmed.len() {
                        "- "
                    } else {
                        ""
                    };
                    let nl = if line.ends_with('\n') { "\n" } else { "" };
                    out.push_str(&format!("{indent}{dash}image: {only}{nl}"));
                    continue;
                }
            }
        }
        out.push_str(line);
    }
    out
}

/// `cluster-verify`: a master is done when the cluster says so: the API lists its Node and the kubeadm-config
/// ConfigMap (written by init's upload-config, after the files `control_plane_done` looks at), and etcd lists its
/// member as started and promoted (a joined master; an initializing master's apiserver answering is its etcd
/// answering). Waits up to [`Timing::verify_wait`]; when the cluster answers and still lacks this master, lists its
/// member as a learner (kubeadm exited before promoting it) or has no kubeadm-config (an init killed after its
/// control plane started), the half-made node is reset so that the retry (the unit's Restart=on-failure) decides
/// again, removes a stale member and joins or initializes.
pub struct VerifyStep(pub Shared);

/// What the cluster says about one master.
#[derive(Debug, Default, PartialEq, Eq)]
struct Evidence {
    node: Option<bool>,
    kubeadm_config: Option<bool>,
    /// `None`: not asked (an initializing master) or no answer. A learner is not a member yet.
    etcd_member: Option<bool>,
    etcd_asked: bool,
    /// This master's member is a raft learner. kubeadm promotes its learner before it exits; one still a learner
    /// after kubeadm is gone was left behind by an interrupted join, and nothing will ever promote it.
    etcd_learner: bool,
}

impl Evidence {
    fn complete(&self) -> bool {
        self.node == Some(true)
            && self.kubeadm_config == Some(true)
            && (!self.etcd_asked || self.etcd_member == Some(true))
    }
    /// Whether every question got an answer (so a missing piece is a fact, not a network problem).
    fn conclusive(&self) -> bool {
        self.node.is_some()
            && self.kubeadm_config.is_some()
            && (!self.etcd_asked || self.etcd_member.is_some())
    }
    fn describe(&self) -> String {
        let w = |v: Option<bool>| match v {
            Some(true) => "present",
            Some(false) => "MISSING",
            None => "no answer",
        };
        let mut s = format!(
            "Node: {}, kubeadm-config: {}",
            w(self.node),
            w(self.kubeadm_config)
        );
        if self.etcd_asked {
            s.push_str(&format!(", started etcd member: {}", w(self.etcd_member)));
            if self.etcd_learner {
                s.push_str(" (a learner nothing promotes)");
            }
        }
        s
    }
}

impl Step for VerifyStep {
    fn name(&self) -> &'static str {
        "cluster-verify"
    }
    fn rechecks(&self) -> bool {
        true
    }
    fn applies(&self, ctx: &Context) -> bool {
        is_master(ctx)
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if ctx.dry_run {
            log::info!("dry run: would check that the cluster lists this master's Node, kubeadm-config and etcd member");
            return Ok(());
        }
        let env = self.0.env.as_ref();
        let t = &self.0.timing;
        let me = &ctx.me;
        // A master that initialized has no peer to ask about its own member; its apiserver answering is the proof.
        let ask_etcd = Bootstrap::load(ctx) == Some(Bootstrap::Join);
        let deadline = std::time::Instant::now() + t.verify_wait;
        let mut delays = t.backoff().delays();
        loop {
            let mine = if ask_etcd {
                env.etcd_members(&ctx.config, me).ok().map(|ms| {
                    etcd::stale_members(&ms, &me.name, me.ip)
                        .into_iter()
                        .cloned()
                        .collect::<Vec<_>>()
                })
            } else {
                None
            };
            let ev = Evidence {
                node: env
                    .api_exists(&ctx.config, &format!("/api/v1/nodes/{}", me.name))
                    .ok(),
                kubeadm_config: env
                    .api_exists(
                        &ctx.config,
                        "/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
                    )
                    .ok(),
                etcd_member: mine
                    .as_ref()
                    .map(|ms| ms.iter().any(|m| m.started() && !m.is_learner)),
                etcd_asked: ask_etcd,
                etcd_learner: mine
                    .as_ref()
                    .is_some_and(|ms| ms.iter().any(|m| m.is_learner)),
            };
            if ev.etcd_learner {
                // kubeadm has exited (it runs before this step, to its end or to its death): the learner stays
                // one, this master's apiserver cannot serve from it and its Node never appears. Waiting would
                // only block the masters after it.
                reset(ctx)?;
                bail!(
                    "kubeadm exited but the etcd member of {} is still a learner ({}): kubeadm was interrupted \
                     before promoting it. The node was reset; the next run removes the member and joins again",
                    me.name,
                    ev.describe()
                );
            }
            if ev.kubeadm_config == Some(false) {
                // The API answers without the ConfigMap `kubeadm init` uploads before it exits (and `kubeadm join`
                // reads first): an init was killed after its control plane came up. Nothing will ever upload it;
                // the half-made control plane must go before the next run decides again.
                reset(ctx)?;
                bail!(
                    "kubeadm exited but the cluster has no kubeadm-config ConfigMap ({}): a kubeadm init was \
                     interrupted after its control plane started. The node was reset; the next run decides again",
                    ev.describe()
                );
            }
            if ev.complete() {
                log::info!("the cluster lists {}: {}", me.name, ev.describe());
                if let Err(e) = env.set_attestation(&ctx.config, me, None) {
                    log::warn!("attestation listener: {e:#}");
                }
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                if ev.conclusive() {
                    reset(ctx)?;
                    bail!(
                        "kubeadm finished but the cluster does not list {} ({}): the node was reset and the next run \
                         decides and joins again",
                        me.name,
                        ev.describe()
                    );
                }
                bail!(
                    "the cluster did not confirm {} within {:?} ({}); the next run checks again",
                    me.name,
                    t.verify_wait,
                    ev.describe()
                );
            }
            log::info!(
                "waiting for the cluster to list {}: {}",
                me.name,
                ev.describe()
            );
            env.sleep(delays.pause());
        }
    }
}

/// `cluster-cni`: the CNI manifest from the bundle, applied once by the master that initialized.
pub struct CniStep;

impl Step for CniStep {
    fn name(&self) -> &'static str {
        "cluster-cni"
    }
    fn applies(&self, ctx: &Context) -> bool {
        is_master(ctx)
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if Bootstrap::load(ctx) != Some(Bootstrap::Init) {
            return Ok(());
        }
        let bundle = ctx.path(&ctx.config.bundle.path);
        let src = bundle
            .join(kubeha_model::bundle::FILES_DIR)
            .join(&ctx.config.cluster.cni.manifest);
        if ctx.dry_run && !src.exists() {
            log::warn!(
                "dry run: no CNI manifest at {}; would apply it",
                src.display()
            );
            return Ok(());
        }
        let text = fs::read_to_string(&src).with_context(|| {
            format!(
                "reading the CNI manifest {} (cluster.cni.manifest in the bundle's files/)",
                src.display()
            )
        })?;
        let refs: Vec<String> = kubeha_model::bundle::BundleManifest::load(&bundle)
            .map(|m| m.images.into_iter().map(|i| i.reference).collect())
            .unwrap_or_default();
        let rendered = rewrite_images(&text, &refs);
        let mark = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(rendered.as_bytes()))
        );
        if fs::read_to_string(ctx.path(CNI_MARKER)).ok().as_deref() == Some(mark.as_str()) {
            return Ok(());
        }
        ctx.write_file(CNI_MANIFEST, &rendered, 0o644)?;
        ctx.runner.run(&Cmd::new("kubectl").args([
            "--kubeconfig",
            ADMIN_CONF,
            "apply",
            "-f",
            CNI_MANIFEST,
        ]))?;
        ctx.mkdir(STATE_DIR, 0o755)?;
        ctx.write_file(CNI_MARKER, &mark, 0o644)?;
        Ok(())
    }
}

/// `cluster-token`: keeps the bootstrap token alive for rebuilds: when less than a quarter of its TTL is left (or
/// it is gone), any master re-creates it with `kubeadm init phase bootstrap-token` (which updates an existing token).
pub struct TokenStep;

impl Step for TokenStep {
    fn name(&self) -> &'static str {
        "cluster-token"
    }
    fn applies(&self, ctx: &Context) -> bool {
        is_master(ctx)
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        let c = ctx.config.cluster.clone();
        let ttl_h = c.cluster.token_ttl_hours;
        if ttl_h == 0 || !ctx.path(ADMIN_CONF).exists() {
            return Ok(());
        }
        if c.cluster.kubernetes_version.kubeadm_api() == KubeadmApi::V1Alpha2 {
            log::info!("token refresh is not automated for kubeadm 1.11 (see docs/ha.md)");
            return Ok(());
        }
        let id = ctx
            .config
            .join
            .token
            .split('.')
            .next()
            .unwrap_or_default()
            .to_string();
        let out = ctx.runner.output(&Cmd::new("kubectl").args([
            "--kubeconfig",
            ADMIN_CONF,
            "-n",
            "kube-system",
            "get",
            "secret",
            &format!("bootstrap-token-{id}"),
            "-o",
            "jsonpath={.data.expiration}",
        ]))?;
        if ctx.runner.is_real() && out.success() {
            use base64::Engine as _;
            let b64 = out.stdout_str();
            if b64.trim().is_empty() {
                return Ok(()); // a token without expiry
            }
            let exp = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                        .ok()
                });
            if let Some(exp) = exp {
                let left = exp - time::OffsetDateTime::now_utc();
                if left > time::Duration::hours(ttl_h as i64 / 4) {
                    log::info!(
                        "bootstrap token {id} valid for {}h more",
                        left.whole_hours()
                    );
                    return Ok(());
                }
            }
        }
        let me = &ctx.me;
        ctx.write_secret(
            TOKEN_CONFIG,
            &kubeadm::render_init(&c, me, &credentials(ctx), None)?,
        )?;
        log::info!("refreshing bootstrap token {id} (TTL {ttl_h}h)");
        ctx.runner.run(&Cmd::new("kubeadm").args([
            "init",
            "phase",
            "bootstrap-token",
            "--config",
            TOKEN_CONFIG,
            "--kubeconfig",
            ADMIN_CONF,
        ]))?;
        Ok(())
    }
}

/// `cluster-worker-join`: a worker joins through VIP:16443 with the token and CA hash.
///
/// A reimaged worker rejoins under its old name: it has no CA key, so it cannot delete its stale Node; kubeadm
/// only refuses to join over a Node of the same name that is Ready, and the old Node has been NotReady since its
/// kubelet stopped (40 s of missed heartbeats, long before a reinstall ends), so the join goes through and the new
/// kubelet takes the Node object over.
pub struct WorkerJoinStep(pub Shared);

impl Step for WorkerJoinStep {
    fn name(&self) -> &'static str {
        "cluster-worker-join"
    }
    fn rechecks(&self) -> bool {
        true
    }
    fn applies(&self, ctx: &Context) -> bool {
        ctx.role == Role::Worker
    }
    fn run(&self, ctx: &mut Context) -> Result<()> {
        if ctx.path(KUBELET_CONF).exists() {
            log::info!("{} already joined", ctx.me.name);
            return Ok(());
        }
        // A join killed half-way leaves files kubeadm's preflight refuses (the CA certificate, the bootstrap
        // kubeconfig, the kubelet's config): undo it first.
        let leftovers = [
            BOOTSTRAP_KUBELET_CONF,
            "/etc/kubernetes/pki/ca.crt",
            KUBELET_CONFIG,
        ]
        .iter()
        .any(|p| ctx.path(p).exists());
        if leftovers && !ctx.dry_run {
            reset(ctx)?;
        }
        if !ctx.dry_run {
            decide::wait_for_endpoint(
                self.0.env.as_ref(),
                &ctx.config,
                &self.0.timing,
                &ctx.me.name,
            )?;
        }
        let c = ctx.config.cluster.clone();
        let me = &ctx.me;
        ctx.write_secret(
            kubeadm::JOIN_CONFIG,
            &kubeadm::render_join(&c, me, &credentials(ctx), false, patches_dir(ctx))?,
        )?;
        log::info!(
            "kubeadm join (worker) on {} through {}",
            me.name,
            c.control_plane_endpoint()
        );
        ctx.runner
            .run(&Cmd::new("kubeadm").args(["join", "--config", kubeadm::JOIN_CONFIG]))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fixtures::config_for;
    use crate::runner::RecordingRunner;

    /// The decision file holds the bare word the demo scripts read; anything else there is no decision.
    #[test]
    fn bootstrap_is_saved_as_the_bare_word() {
        let d = tempfile::tempdir().unwrap();
        let config = config_for("k8s-master01", Role::Master);
        let ctx = Context {
            root: d.path().to_path_buf(),
            runner: Box::new(RecordingRunner::default()),
            me: config.cluster.masters[0].clone(),
            config,
            role: Role::Master,
            dry_run: true,
        };
        assert_eq!(Bootstrap::load(&ctx), None, "nothing saved yet");
        for (b, word) in [(Bootstrap::Init, "init\n"), (Bootstrap::Join, "join\n")] {
            b.save(&ctx).unwrap();
            assert_eq!(
                std::fs::read_to_string(ctx.path(DECISION_FILE)).unwrap(),
                word
            );
            assert_eq!(Bootstrap::load(&ctx), Some(b), "{word}");
        }
        ctx.write_file(DECISION_FILE, "maybe\n", 0o644).unwrap();
        assert_eq!(Bootstrap::load(&ctx), None, "an unknown word");
        assert_eq!(Bootstrap::from_decision(&Decision::Wait("x".into())), None);
    }
}
