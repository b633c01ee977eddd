//! `kubeha-lab`: the demo's logic that `make demo` and `make test-demo` run (mk/core.mk): the pipeline's stages
//! (`demo`, `demo-core`), what scripts/demo/cluster.sh asks of the cluster and the agents (`demo-vars`,
//! `node-status`, `probe`), its node roots and cgroups (`node`), and the verdict and summary of a run. Test
//! support, never shipped (see the crate's doc).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kubeha_lab::demo::{install, node, probe, result, run, summary, vars, wait, write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kubeha-lab",
    about = "kubeha's demo lab: the checks and the summary of a demo run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// `make demo`: every stage (generated upstream, bundle, model, media + a QEMU boot, five self-forming nodes
    /// and the drills through scripts/demo/cluster.sh, the summary) into OUT. Needs root.
    Demo {
        /// The output directory.
        out: PathBuf,
        /// The directory `make k8s` fills (kubeadm, kubelet, kubectl).
        #[arg(long)]
        k8s_bin: PathBuf,
        /// The kubeha CLI (default: beside this binary).
        #[arg(long)]
        kubeha: Option<PathBuf>,
        /// The host build of kubeha-firstboot (default: beside this binary).
        #[arg(long)]
        firstboot: Option<PathBuf>,
        /// The node binary kubeha serve hands out (default: $KUBEHA_NODE_BINARY, else dist/kubeha-firstboot of
        /// the checkout, what `make node-binary` builds).
        #[arg(long)]
        agent: Option<PathBuf>,
        /// Also cluster.sh's hostile drills (make test-demo).
        #[arg(long)]
        hostile: bool,
    },
    /// The model stage on the embedded default: config init / check, secrets, a node config per node, into OUT.
    DemoCore {
        /// The output directory.
        out: PathBuf,
        /// The kubeha CLI (default: beside this binary).
        #[arg(long)]
        kubeha: Option<PathBuf>,
    },
    /// The cluster's facts cluster.sh needs, as bash assignments (read through kubeha's model).
    DemoVars {
        #[arg(long)]
        cluster: PathBuf,
        /// The directory of the node configs (NAME.toml).
        #[arg(long)]
        nodes: PathBuf,
        /// How many of the cluster's workers the demo runs.
        #[arg(long)]
        workers: usize,
        /// The bundle directory.
        #[arg(long)]
        bundle: PathBuf,
    },
    /// Writes STATE/result.json (atomically) from what cluster.sh measured and the files under STATE.
    WriteResult {
        #[arg(long)]
        state: PathBuf,
        #[command(flatten)]
        measured: write::Measured,
    },
    /// The init-kill drill's record as JSON (cluster.sh --hostile; NAMES: masters, then workers).
    HostileInitKill {
        #[arg(long)]
        state: PathBuf,
        /// `kubeha-lab probe inits` at the kill.
        #[arg(long)]
        at_kill: String,
        /// The killed master's stored decision when it booted again.
        #[arg(long)]
        stored: String,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Adds the hostile drills to STATE/result.json (atomically).
    AddHostile {
        #[arg(long)]
        state: PathBuf,
        /// `kubeha-lab hostile-init-kill`'s JSON.
        #[arg(long)]
        init_kill: String,
        #[arg(long)]
        two_node: String,
        /// Whether the second master believed it was designated (true|false).
        #[arg(long, action = clap::ArgAction::Set)]
        two_believed: bool,
        #[arg(long)]
        partition_node: String,
        #[arg(long)]
        partition_waiting: String,
        /// Its `waiting` 15 s later (empty: it no longer waits).
        #[arg(long)]
        partition_still: String,
        #[arg(long)]
        partition_inits: u64,
        #[arg(long, action = clap::ArgAction::Set)]
        partition_apiserver: bool,
        #[arg(long)]
        join_node: String,
        #[arg(long)]
        join_member: String,
        #[arg(long)]
        join_restarts: u64,
        #[arg(long)]
        all_waiting: String,
        #[arg(long)]
        all_still: String,
        #[arg(long)]
        all_inits: u64,
    },
    /// What cluster.sh asks while the nodes and drills run.
    #[command(subcommand)]
    Probe(Probe),
    /// A node's root and cgroups (cluster.sh's node roots).
    #[command(subcommand)]
    Node(Node),
    /// A node agent's status.json as one line: `state phase step error` (`none - - -` without one).
    NodeStatus {
        status_json: PathBuf,
        /// Only why a running step waits (nothing when it does not).
        #[arg(long)]
        waiting: bool,
    },
    /// Checks a demo run's result.json: what `make demo` must show (exit 1 and every problem otherwise).
    CheckResult {
        /// STATE/cluster/result.json of the run.
        result_json: PathBuf,
        /// The run had cluster.sh's hostile drills: check them too.
        #[arg(long)]
        hostile: bool,
    },
    /// Prints the demo's closing table: the fleet as kubeha serve saw it and the drills' numbers.
    Summary {
        /// STATE/cluster/result.json of the run.
        result_json: PathBuf,
        /// The demo's output directory (its artifacts are named under it).
        out_dir: String,
    },
}

/// A node's cgroup subtree: PREFIX-NAME in every cgroup v1 hierarchy (its kubelet's cgroupRoot /PREFIX-NAME).
#[derive(clap::Args)]
struct NodeCgroup {
    /// The run's namespace prefix.
    #[arg(long)]
    prefix: String,
    /// The node.
    name: String,
}

#[derive(Subcommand)]
enum Node {
    /// STATE/base-root, the system every node root is a copy of: the base packages the bundle's RPMs require,
    /// installed by the real dnf from the base repos, and an installed EL system's files; cached by the SHA-256 of
    /// bundle.toml and the base repos' repomd.xml (STATE/base-root/.ready).
    BaseRoot {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        bundle: PathBuf,
        /// The directory holding one subdirectory per base repo.
        #[arg(long)]
        base_repos: PathBuf,
        /// The profile's EL release.
        #[arg(long)]
        el: u8,
        /// A base repo of the profile (`base = true`); repeated.
        #[arg(long = "repo")]
        repos: Vec<String>,
    },
    /// The node's subtree in every cgroup v1 hierarchy (cpuset's cpus and mems copied from the parent).
    CgroupUp(NodeCgroup),
    /// Removes the node's subtree from every cgroup v1 hierarchy, deepest first (what is still busy stays).
    CgroupDown(NodeCgroup),
    /// Stops every process of the node (in its mount namespaces, STATE/logs/NAME.mntns, and its cgroup subtree):
    /// SIGTERM, SIGKILL what is left after 3 s; then removes its cgroups and empties NAME.mntns.
    Stop {
        #[arg(long)]
        state: PathBuf,
        #[command(flatten)]
        cgroup: NodeCgroup,
    },
    /// The lab's kubeadm patch for the node's kubelet: ROOT/etc/kubeha/kubeadm-patches/
    /// kubeletconfiguration+merge.yaml (cgroupfs, cgroupRoot /PREFIX-NAME, no disk-based eviction).
    PreparePatches {
        /// The node's root.
        #[arg(long)]
        root: PathBuf,
        #[command(flatten)]
        cgroup: NodeCgroup,
    },
    /// The node's network install from kubeha serve, as the machine does it: boot.ipxe?mac= from its namespace,
    /// the served kickstart's %pre and %post --nochroot on STATE/nodes/NAME (files in STATE/install/NAME).
    Install {
        #[arg(long)]
        state: PathBuf,
        /// The node.
        #[arg(long)]
        name: String,
        /// The node's MAC (serve knows nodes by it).
        #[arg(long)]
        mac: String,
        /// kubeha serve's URL.
        #[arg(long)]
        serve_url: String,
        /// The node's network namespace.
        #[arg(long)]
        ns: String,
        /// The installer stand-ins (scripts/demo/installer), first on the PATH of %post --nochroot.
        #[arg(long)]
        installer_dir: PathBuf,
        /// After `kubeha serve reimage`: the kernel line must be a reinstall.
        #[arg(long)]
        reinstall: bool,
    },
    /// Until each node's agent is done (a line per node: seconds and decision); a failed or vanished agent, or
    /// the deadline, exits 1 with the node's status and the tail of its log.
    Wait {
        #[arg(long)]
        state: PathBuf,
        /// Seconds until the deadline.
        #[arg(long)]
        timeout: u64,
        /// The cluster's masters (comma-separated; the others are workers).
        #[arg(long, value_delimiter = ',')]
        masters: Vec<String>,
        /// The nodes.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Subcommand)]
enum Probe {
    /// A node's processes (space-separated): in its mount namespaces MNTS (one argument, space-separated) and,
    /// with --prefix and --node, its cgroup subtree (PREFIX-NODE in the first cgroup v1 hierarchy).
    NodePids {
        mnts: String,
        /// The run's namespace prefix.
        #[arg(long, requires = "node")]
        prefix: Option<String>,
        /// The node.
        #[arg(long, requires = "prefix")]
        node: Option<String>,
    },
    /// A kickstart's %pre and %post --nochroot bodies into OUT/pre.sh and OUT/post-nochroot.sh.
    KsSections { ks: PathBuf, out: PathBuf },
    /// The etcd member with this peer URL in `etcdctl member list -w json` (stdin): learner, started, or added,
    /// not started (nothing when it is not listed).
    MemberState { peer: String },
    /// How many members of `etcdctl member list -w json` (stdin) have started.
    StartedMembers,
    /// `name=Ready|NotReady ...` from `kubectl get nodes -o json` (stdin).
    NodesStatus,
    /// The server's gitVersion from `kubectl version -o json` (stdin).
    ServerVersion,
    /// The VIP holder in kubeha serve's view (`kubeha status --json` saved to FLEET).
    VipHolder { fleet: PathBuf },
    /// `{"name": count}` of `kubeadm init on name` in STATE/logs/NAME.agent.log, for those that ran one.
    Inits {
        state: PathBuf,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Seconds (one decimal) from FROM to TO (default: now), Unix times as `date +%s.%N` prints them.
    Elapsed { from: String, to: Option<String> },
}

fn stdin() -> Result<String> {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
    Ok(s)
}

fn probe(p: Probe) -> Result<()> {
    match p {
        Probe::NodePids { mnts, prefix, node } => {
            let cgroup = match (prefix, node) {
                (Some(p), Some(n)) => node::v1_hierarchies(Path::new(node::CGROUP_MOUNT))
                    .first()
                    .map(|h| node::cgroup_dir(h, &p, &n)),
                _ => None,
            };
            let pids = probe::node_pids(&mnts, cgroup.as_deref(), std::process::id());
            let pids: Vec<_> = pids.iter().map(u32::to_string).collect();
            println!("{}", pids.join(" "));
        }
        Probe::KsSections { ks, out } => probe::ks_sections(&ks, &out)?,
        Probe::MemberState { peer } => {
            if let Some(s) = probe::member_state(&stdin()?, &peer) {
                println!("{s}");
            }
        }
        Probe::StartedMembers => println!("{}", probe::started_members(&stdin()?)?),
        Probe::NodesStatus => print!("{}", probe::nodes_status(&stdin()?)?),
        Probe::ServerVersion => println!("{}", probe::server_version(&stdin()?)?),
        Probe::VipHolder { fleet } => println!("{}", probe::vip_holder(&fleet)?),
        Probe::Inits { state, names } => {
            println!(
                "{}",
                serde_json::to_string(&write::inits_by_node(&state, &names)?)?
            )
        }
        Probe::Elapsed { from, to } => {
            println!("{}", probe::elapsed(&from, &to.unwrap_or_else(probe::now))?)
        }
    }
    Ok(())
}

fn node_cmd(n: Node) -> Result<ExitCode> {
    let hierarchies = || node::v1_hierarchies(Path::new(node::CGROUP_MOUNT));
    match n {
        Node::BaseRoot {
            state,
            bundle,
            base_repos,
            el,
            repos,
        } => {
            node::BaseRoot {
                state: &state,
                bundle: &bundle,
                base_repos: &base_repos,
                el,
                repos: &repos,
            }
            .ensure()?;
        }
        Node::CgroupUp(c) => node::cgroup_up(&hierarchies(), &c.prefix, &c.name)?,
        Node::CgroupDown(c) => node::cgroup_down(&hierarchies(), &c.prefix, &c.name),
        Node::Stop { state, cgroup } => {
            node::stop(&state, &hierarchies(), &cgroup.prefix, &cgroup.name)?
        }
        Node::PreparePatches { root, cgroup } => {
            node::write_patches(&root, &node::cgroup_root(&cgroup.prefix, &cgroup.name))?;
        }
        Node::Install {
            state,
            name,
            mac,
            serve_url,
            ns,
            installer_dir,
            reinstall,
        } => install::Install {
            state: &state,
            name: &name,
            mac: &mac,
            serve_url: &serve_url,
            ns: &ns,
            installer_dir: &installer_dir,
            reinstall,
        }
        .run()?,
        Node::Wait {
            state,
            timeout,
            masters,
            names,
        } => {
            let w = wait::Wait {
                state: &state,
                timeout,
                masters: &masters,
                every: std::time::Duration::from_secs(1),
            };
            if !w.run(&names, &mut std::io::stdout(), &mut std::io::stderr())? {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> Result<result::DemoResult> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    result::DemoResult::parse(&text).with_context(|| format!("reading {}", path.display()))
}

/// A binary built beside this one (the workspace's target directory).
fn beside(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding kubeha-lab's own path")?;
    Ok(exe.with_file_name(name))
}

/// The checkout this binary was built from (scripts/demo, image/fixtures).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("lab/ is in the checkout")
        .to_path_buf()
}

fn absolute(p: PathBuf) -> Result<PathBuf> {
    std::path::absolute(&p).with_context(|| format!("resolving {}", p.display()))
}

fn main() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Demo {
            out,
            k8s_bin,
            kubeha,
            firstboot,
            agent,
            hostile,
        } => {
            let agent =
                match agent.or_else(|| std::env::var_os("KUBEHA_NODE_BINARY").map(PathBuf::from)) {
                    Some(a) => a,
                    None => repo().join("dist/kubeha-firstboot"),
                };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let demo = run::Demo {
                out: absolute(out)?,
                repo: repo(),
                kubeha: absolute(kubeha.map_or_else(|| beside("kubeha"), Ok)?)?,
                firstboot: absolute(firstboot.map_or_else(|| beside("kubeha-firstboot"), Ok)?)?,
                agent: absolute(agent)?,
                k8s_bin: absolute(k8s_bin)?,
                lab: std::env::current_exe()?,
                hostile,
            };
            demo.run()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoCore { out, kubeha } => {
            run::demo_core(&out, &kubeha.map_or_else(|| beside("kubeha"), Ok)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoVars {
            cluster,
            nodes,
            workers,
            bundle,
        } => {
            print!("{}", vars::demo_vars(&cluster, &nodes, workers, &bundle)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::WriteResult { state, measured } => {
            let r = write::result(&state, &measured)?;
            write::write_json(&state.join("result.json"), &r)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::HostileInitKill {
            state,
            at_kill,
            stored,
            names,
        } => {
            let k = write::init_kill(&state, &at_kill, &stored, &names)?;
            println!("{}", serde_json::to_string(&k)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::AddHostile {
            state,
            init_kill,
            two_node,
            two_believed,
            partition_node,
            partition_waiting,
            partition_still,
            partition_inits,
            partition_apiserver,
            join_node,
            join_member,
            join_restarts,
            all_waiting,
            all_still,
            all_inits,
        } => {
            let decision = std::fs::read_to_string(
                state.join(format!("nodes/{two_node}/var/lib/kubeha/cluster/decision")),
            )
            .with_context(|| format!("{two_node}'s decision"))?;
            let h = write::Hostile {
                kubeadm_killed_in_init: serde_json::from_str(&init_kill)
                    .context("--init-kill (kubeha-lab hostile-init-kill's JSON)")?,
                two_bootstraps: write::TwoBootstraps {
                    node: two_node,
                    believed_designated: two_believed,
                    decision: decision.trim().to_string(),
                },
                partitioned_rebuild: write::Waited {
                    node: Some(partition_node),
                    waiting: partition_waiting,
                    still_waiting: !partition_still.is_empty(),
                    inits: partition_inits,
                    apiserver_manifest: Some(partition_apiserver),
                },
                kubeadm_killed_in_join: write::JoinKill {
                    node: join_node,
                    member_when_killed: join_member,
                    restarts: join_restarts,
                },
                all_masters_reimaged: write::Waited {
                    node: None,
                    waiting: all_waiting,
                    still_waiting: !all_still.is_empty(),
                    inits: all_inits,
                    apiserver_manifest: None,
                },
            };
            write::add_hostile(&state, h)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe(p) => {
            probe(p)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Node(n) => node_cmd(n),
        Command::NodeStatus {
            status_json,
            waiting,
        } => {
            println!("{}", vars::node_status(&status_json, waiting));
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckResult {
            result_json,
            hostile,
        } => match result::check(&read(&result_json)?, hostile) {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(problems) => {
                println!("test-demo: FAILED\n  {}", problems.join("\n  "));
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Summary {
            result_json,
            out_dir,
        } => {
            let lines =
                summary::summary(&read(&result_json)?, &out_dir).map_err(anyhow::Error::msg)?;
            for l in lines {
                println!("{l}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
