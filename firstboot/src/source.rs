//! Where the node config comes from. Sources are tried in a fixed order and the first that answers wins
//! (azure-init's `find_map`):
//!
//! 1. the state of an earlier run (`/var/lib/kubeha/node.toml`), so a rerun resumes with the same identity;
//! 2. a node config file: `--config FILE`, else `/etc/kubeha/node.toml` (put there by the installer);
//! 3. the kernel command line's `kubeha.config=` (`http(s)://`, `file:PATH`, `label:FSLABEL`), checked against
//!    `kubeha.config.sha256=` when set;
//! 4. a config drive: a filesystem labelled `KUBEHA` holding `node.toml`;
//! 5. none: say so on the console and try again (forever by default, `--wait SECS` caps it).
//!
//! A source that holds nothing, or an HTTP server that does not answer yet, falls through to the next; a config
//! that is there but wrong (bad TOML, failed validation, sha256 mismatch) is an error naming the source and field.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kubeha_model::NodeConfig;

use crate::identity::{self, HostFacts, Identity};
use crate::providers::cmdline::{ConfigLocation, KernelArgs};
use crate::providers::configdrive::{self, ConfigDrive};
use crate::providers::file::{self, FileProvider};
use crate::providers::http::HttpProvider;
use crate::providers::state::StateProvider;
use crate::providers::{parse_config, Provider};
use crate::util::under;
use kubeha_model::kernel_args::Key;

/// How to look for the config.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// System root.
    pub root: PathBuf,
    /// `--config FILE` (a host path, not under the root).
    pub config_file: Option<PathBuf>,
    /// Dry run: name the URLs instead of fetching them.
    pub dry_run: bool,
    /// Give up after this long without a config (`None`: wait forever, as a first-boot agent should).
    pub wait: Option<Duration>,
    /// Pause between rounds.
    pub poll: Duration,
}

/// A config that was found, validated and given this node's identity.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The config with `[node]` name and role filled in.
    pub config: NodeConfig,
    /// Where it came from.
    pub source: String,
    /// Who this node is.
    pub identity: Identity,
}

/// One entry of the fixed order: the provider, and the sha256 pin that applies to it.
pub struct Candidate {
    /// The provider.
    pub provider: Box<dyn Provider>,
    /// `kubeha.config.sha256`, for the `kubeha.config` source only.
    pub pin: Option<String>,
}

/// The providers in order (see the module docs).
pub fn providers(
    opts: &SourceOptions,
    args: &KernelArgs,
    facts: &HostFacts,
) -> Result<Vec<Candidate>> {
    let mut v: Vec<Candidate> = vec![Candidate {
        provider: Box::new(StateProvider::new(&opts.root)),
        pin: None,
    }];
    let file = match &opts.config_file {
        Some(p) => FileProvider {
            root: None,
            path: p.clone(),
            origin: "--config".into(),
        },
        None => FileProvider {
            root: Some(opts.root.clone()),
            path: under(&opts.root, file::NODE_TOML),
            origin: "installer".into(),
        },
    };
    v.push(Candidate {
        provider: Box::new(file),
        pin: None,
    });
    if let Some(loc) = &args.config {
        let pin = args.config_sha256.clone();
        // A placeholder that cannot be filled is this source's error, raised only if the sources before it have
        // nothing (an earlier run's state must still win).
        let provider: Box<dyn Provider> = match cmdline_provider(opts, loc, args, facts) {
            Ok(p) => p,
            Err(e) => Box::new(Broken {
                what: format!("kernel command line {}", Key::Config),
                error: format!("{e:#}"),
            }),
        };
        v.push(Candidate { provider, pin });
    }
    v.push(Candidate {
        provider: Box::new(ConfigDrive {
            root: opts.root.clone(),
            label: configdrive::DEFAULT_LABEL.into(),
            origin: "default config drive".into(),
        }),
        pin: None,
    });
    Ok(v)
}

pub(crate) fn cmdline_provider(
    opts: &SourceOptions,
    loc: &ConfigLocation,
    args: &KernelArgs,
    facts: &HostFacts,
) -> Result<Box<dyn Provider>> {
    Ok(match loc {
        ConfigLocation::Http(t) => {
            Box::new(HttpProvider::new(identity::substitute(t, facts, args)?)?)
        }
        ConfigLocation::File(p) => Box::new(FileProvider {
            root: Some(opts.root.clone()),
            path: {
                let p = identity::substitute(p, facts, args)?;
                if !kubeha_model::kernel_args::is_plain_absolute(&p) {
                    bail!(
                        "{}=file:{p}: not an absolute path without . or .. components",
                        Key::Config
                    );
                }
                under(&opts.root, p)
            },
            origin: format!("kernel command line {}", Key::Config),
        }),
        ConfigLocation::Label(l) => Box::new(ConfigDrive {
            root: opts.root.clone(),
            label: l.clone(),
            origin: format!("kernel command line {}", Key::Config),
        }),
    })
}

/// A source that cannot even be asked (e.g. `${mac}` with no MAC known): fails when its turn comes.
struct Broken {
    what: String,
    error: String,
}

impl Provider for Broken {
    fn describe(&self) -> String {
        self.what.clone()
    }
    fn fetch(&self) -> Result<Option<crate::providers::Fetched>> {
        bail!("{}", self.error)
    }
}

/// One round over the sources: the first config found, parsed and validated, with its source.
pub fn find_once(
    opts: &SourceOptions,
    candidates: &[Candidate],
) -> Result<Option<(NodeConfig, String)>> {
    for c in candidates {
        let what = c.provider.describe();
        if opts.dry_run && c.provider.uses_network() {
            println!("would fetch: {what}");
            continue;
        }
        log::debug!("trying {what}");
        match c.provider.fetch() {
            Ok(Some(f)) => {
                let config = parse_config(&f.data, &f.source, c.pin.as_deref())?;
                // A master's config holds the CA keys: over plain HTTP only with a sha256 pin on the command line.
                if config.control_plane.is_some()
                    && c.pin.is_none()
                    && f.source.starts_with("http://")
                {
                    bail!(
                        "{}: a master's node config (it holds the cluster's CA keys) over plain http:// needs \
                         {}= on the kernel command line, or https://",
                        f.source,
                        Key::ConfigSha256
                    );
                }
                return Ok(Some((config, f.source)));
            }
            Ok(None) => log::info!("nothing at {what}"),
            // A server that does not answer yet is "nothing yet": the node may still be bringing its network up.
            Err(e) if e.is::<crate::retry::Unavailable>() => log::warn!("{e:#}"),
            Err(e) => return Err(e.context(format!("reading the node config from {what}"))),
        }
    }
    Ok(None)
}

/// Fills in the identity and the command line's overrides, and validates the result.
pub fn finish(
    mut config: NodeConfig,
    source: String,
    args: &KernelArgs,
    facts: &HostFacts,
) -> Result<Resolved> {
    if let Some(b) = &args.bootstrap {
        config.node.bootstrap = Some(b.clone());
    }
    let id = identity::resolve(&config, args, facts, &source)?;
    // A config that names its own role says what it is for; one shared by every node (media made with
    // --embed-secrets, role by MAC) carries the CA keys for the masters, and a worker drops them here, before
    // anything is written: a worker never keeps the cluster's CA private keys.
    if id.role == kubeha_model::cluster::Role::Worker
        && config.node.role.is_none()
        && config.control_plane.take().is_some()
    {
        log::info!(
            "{source}: this node is a worker: the [control-plane] keys of the shared config are dropped, never kept"
        );
    }
    config.node.name = Some(id.node.name.clone());
    config.node.role = Some(id.role);
    // Checked again with the identity in place: a master needs the [control-plane] keys, kubeha.bootstrap must be
    // a master.
    config.check(&format!("{source} with this node's identity ({})", id.how))?;
    Ok(Resolved {
        config,
        source,
        identity: id,
    })
}

/// Finds the config, waiting for it if no source has one yet.
pub fn resolve(opts: &SourceOptions, args: &KernelArgs, facts: &HostFacts) -> Result<Resolved> {
    let candidates = providers(opts, args, facts)?;
    let start = Instant::now();
    loop {
        if let Some((config, source)) = find_once(opts, &candidates)? {
            return finish(config, source, args, facts);
        }
        let tried: Vec<String> = candidates.iter().map(|c| c.provider.describe()).collect();
        if opts.dry_run {
            bail!(
                "no node config found in: {} (a dry run does not wait)",
                tried.join("; ")
            );
        }
        if opts.wait.is_some_and(|w| start.elapsed() >= w) {
            bail!(
                "no node config found after {:?} in: {}",
                start.elapsed(),
                tried.join("; ")
            );
        }
        println!(
            "kubeha-firstboot: waiting for a node config (tried {}); retrying in {}s",
            tried.join("; "),
            opts.poll.as_secs_f32()
        );
        std::thread::sleep(opts.poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fixtures;
    use crate::testutil::{Reply, Server};
    use kubeha_model::cluster::Role;
    use sha2::{Digest, Sha256};

    fn opts(root: &std::path::Path) -> SourceOptions {
        SourceOptions {
            root: root.to_path_buf(),
            config_file: None,
            dry_run: false,
            wait: Some(Duration::from_millis(1)),
            poll: Duration::from_millis(50),
        }
    }

    fn put(root: &std::path::Path, path: &str, text: &str) {
        let p = under(root, path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn order_first_hit_wins() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let facts = HostFacts::default();
        let w1 = fixtures::config_for("k8s-node01", Role::Worker);
        let w2 = fixtures::config_for("k8s-node02", Role::Worker);
        let w3 = fixtures::config_for("k8s-node03", Role::Worker);
        let s = Server::start(vec![Reply::Status(200, w3.to_toml().into_bytes())]);
        let args = KernelArgs {
            config: Some(ConfigLocation::Http(s.url("/c"))),
            ..Default::default()
        };

        // Only the cmdline URL: it wins.
        let got = resolve(&opts(r), &args, &facts).unwrap();
        assert_eq!(got.identity.node.name, "k8s-node03");
        assert!(got.source.contains("/c"));
        // The installer's file beats the URL.
        put(r, "/etc/kubeha/node.toml", &w2.to_toml());
        assert_eq!(
            resolve(&opts(r), &args, &facts).unwrap().identity.node.name,
            "k8s-node02"
        );
        // An earlier run's state beats everything.
        crate::providers::state::save(r, &w1).unwrap();
        let got = resolve(&opts(r), &args, &facts).unwrap();
        assert_eq!(got.identity.node.name, "k8s-node01");
        assert!(got.source.contains("earlier run"));
        assert_eq!(
            s.requests().len(),
            1,
            "later sources are not even asked once one answered"
        );
    }

    #[test]
    fn pin_applies_to_the_cmdline_source() {
        let d = tempfile::tempdir().unwrap();
        let w = fixtures::config_for("k8s-node01", Role::Worker).to_toml();
        put(d.path(), "/boot/n.toml", &w);
        let good = hex::encode(Sha256::digest(w.as_bytes()));
        let mut args = KernelArgs {
            config: Some(ConfigLocation::File("/boot/n.toml".into())),
            config_sha256: Some(good),
            ..Default::default()
        };
        resolve(&opts(d.path()), &args, &HostFacts::default()).unwrap();
        args.config_sha256 = Some("1".repeat(64));
        let e = format!(
            "{:#}",
            resolve(&opts(d.path()), &args, &HostFacts::default()).unwrap_err()
        );
        assert!(e.contains("sha256 mismatch") && e.contains("n.toml"), "{e}");
    }

    #[test]
    fn bootstrap_and_identity_are_validated() {
        let d = tempfile::tempdir().unwrap();
        put(
            d.path(),
            "/etc/kubeha/node.toml",
            &fixtures::config().to_toml(),
        );
        let args = KernelArgs {
            name: Some("k8s-master03".into()),
            bootstrap: Some("k8s-node01".into()),
            ..Default::default()
        };
        let e = format!(
            "{:#}",
            resolve(&opts(d.path()), &args, &HostFacts::default()).unwrap_err()
        );
        assert!(
            e.contains("node.bootstrap") && e.contains("node.toml"),
            "{e}"
        );
        // A worker-only file cannot make a master.
        put(d.path(), "/etc/kubeha/node.toml", &{
            let mut c = fixtures::config_for("k8s-node01", Role::Worker);
            c.node = Default::default();
            c.to_toml()
        });
        let args = KernelArgs {
            name: Some("k8s-master01".into()),
            ..Default::default()
        };
        let e = format!(
            "{:#}",
            resolve(&opts(d.path()), &args, &HostFacts::default()).unwrap_err()
        );
        assert!(e.contains("control-plane"), "{e}");
        let args = KernelArgs {
            name: Some("k8s-master01".into()),
            bootstrap: Some("k8s-master02".into()),
            ..Default::default()
        };
        put(
            d.path(),
            "/etc/kubeha/node.toml",
            &fixtures::config().to_toml(),
        );
        let r = resolve(&opts(d.path()), &args, &HostFacts::default()).unwrap();
        assert_eq!(r.config.node.bootstrap.as_deref(), Some("k8s-master02"));
        assert_eq!(r.config.node.role, Some(Role::Master));
    }

    #[test]
    fn waits_then_finds_a_config_that_appears() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path());
        o.wait = Some(Duration::from_secs(20));
        let root = d.path().to_path_buf();
        let text = fixtures::config_for("k8s-node05", Role::Worker).to_toml();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            put(&root, "/etc/kubeha/node.toml", &text);
        });
        let r = resolve(&o, &KernelArgs::default(), &HostFacts::default()).unwrap();
        t.join().unwrap();
        assert_eq!(r.identity.node.name, "k8s-node05");
        // Nothing anywhere and a short cap: a clear error listing what was tried.
        let e = tempfile::tempdir().unwrap();
        let err = resolve(
            &opts(e.path()),
            &KernelArgs::default(),
            &HostFacts::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no node config found") && err.contains("KUBEHA"),
            "{err}"
        );
    }

    #[test]
    fn unfillable_placeholder_fails_only_when_reached() {
        let d = tempfile::tempdir().unwrap();
        let args = KernelArgs {
            config: Some(ConfigLocation::Http("http://127.0.0.1:9/${mac}".into())),
            ..Default::default()
        };
        let e = format!(
            "{:#}",
            resolve(&opts(d.path()), &args, &HostFacts::default()).unwrap_err()
        );
        assert!(e.contains("${mac}"), "{e}");
        crate::providers::state::save(d.path(), &fixtures::config_for("k8s-node01", Role::Worker))
            .unwrap();
        assert_eq!(
            resolve(&opts(d.path()), &args, &HostFacts::default())
                .unwrap()
                .identity
                .node
                .name,
            "k8s-node01"
        );
    }

    #[test]
    fn dry_run_does_not_fetch() {
        let d = tempfile::tempdir().unwrap();
        let s = Server::start(vec![Reply::Status(
            200,
            fixtures::config().to_toml().into_bytes(),
        )]);
        let mut o = opts(d.path());
        o.dry_run = true;
        let args = KernelArgs {
            config: Some(ConfigLocation::Http(s.url("/c"))),
            ..Default::default()
        };
        let e = resolve(&o, &args, &HostFacts::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("dry run"), "{e}");
        assert!(
            s.requests().is_empty(),
            "a dry run must not touch the network"
        );
    }

    #[test]
    fn unavailable_server_falls_through() {
        let d = tempfile::tempdir().unwrap();
        let s = Server::start(vec![Reply::Status(503, vec![])]);
        put(d.path(), "/unused", "");
        let args = KernelArgs {
            config: Some(ConfigLocation::Http(s.url("/c"))),
            ..Default::default()
        };
        let mut cands = providers(&opts(d.path()), &args, &HostFacts::default()).unwrap();
        // A fast client for the test.
        cands[2].provider = Box::new(HttpProvider {
            url: s.url("/c"),
            client: crate::retry::Client::with_timeout(Duration::from_secs(2))
                .unwrap()
                .max_retries(1)
                .backoff(Duration::from_millis(10), Duration::from_millis(10))
                .return_on_404(true),
        });
        assert!(find_once(&opts(d.path()), &cands).unwrap().is_none());
        assert_eq!(s.requests().len(), 2);
    }

    #[test]
    fn a_master_config_over_plain_http_needs_the_pin() {
        use sha2::{Digest, Sha256};
        let d = tempfile::tempdir().unwrap();
        let body = crate::providers::fixtures::config_for(
            "k8s-master01",
            kubeha_model::cluster::Role::Master,
        )
        .to_toml()
        .into_bytes();
        assert!(String::from_utf8_lossy(&body).contains("PRIVATE KEY"));
        let pin = hex::encode(Sha256::digest(&body));
        for (pin, ok) in [(None, false), (Some(pin), true)] {
            let s = Server::start(vec![Reply::Status(200, body.clone())]);
            let cands = vec![Candidate {
                provider: Box::new(HttpProvider {
                    url: s.url("/c"),
                    client: crate::retry::Client::with_timeout(Duration::from_secs(2))
                        .unwrap()
                        .max_retries(1)
                        .return_on_404(true),
                }),
                pin,
            }];
            match find_once(&opts(d.path()), &cands) {
                Ok(found) => assert!(ok && found.is_some(), "accepted without a pin"),
                Err(e) => {
                    let e = format!("{e:#}");
                    assert!(!ok && e.contains("kubeha.config.sha256"), "{e}");
                }
            }
        }
    }
}
