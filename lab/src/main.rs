//! `kubeha-lab`: the demo's logic that `make demo` and `make test-demo` run (mk/core.mk): the pipeline's stages
//! (`demo`, `demo-core`), its generated upstream alone (`upstream images|rpms`), a lab node's boot (`node-boot`),
//! and the verdict and summary of a run. Test support, never shipped (see the crate's doc).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kubeha_lab::demo::{adapters, boot, result, run, summary, upstream};
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
    /// and the drills, the summary) into OUT. Needs root.
    Demo {
        /// The output directory.
        out: PathBuf,
        /// The directory `make k8s` fills (kubeadm, kubelet, kubectl).
        #[arg(long)]
        k8s_bin: PathBuf,
        /// The kubeha CLI (default: beside this binary).
        #[arg(long)]
        kubeha: Option<PathBuf>,
        /// The node binary kubeha serve hands out (default: $KUBEHA_NODE_BINARY, else dist/kubeha-firstboot of
        /// the checkout, what `make node-binary` builds).
        #[arg(long)]
        agent: Option<PathBuf>,
        /// Also the hostile drills (make test-demo).
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
    /// A lab node's boot (what the demo's rack runs as each node agent): enters NETNS, makes a mount and a UTS
    /// namespace with the node's directories bind-mounted from ROOT, starts the units the node enabled, then execs
    /// CMD in a session of its own (same pid). Needs root.
    NodeBoot {
        /// The node's network namespace (/run/netns/NAME).
        #[arg(long)]
        netns: PathBuf,
        /// The node's root.
        #[arg(long)]
        root: PathBuf,
        /// The agent and its arguments.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// The demo's generated upstream alone (stage 1's fixtures): images pushed to a registry, or yum repos.
    Upstream {
        #[command(subcommand)]
        what: Upstream,
    },
    /// Checks a demo run's result.json: what `make demo` must show (exit 1 and every problem otherwise).
    CheckResult {
        /// STATE/cluster/result.json of the run.
        result_json: PathBuf,
        /// The run had the hostile drills: check them too.
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

#[derive(Subcommand)]
enum Upstream {
    /// Builds the images of a list and pushes them under their real names to a registry (plain HTTP).
    Images {
        /// The registry, HOST:PORT.
        #[arg(long)]
        registry: String,
        /// The image references, one a line.
        #[arg(long)]
        list: PathBuf,
        /// Push manifest lists (amd64 + arm64).
        #[arg(long)]
        lists: bool,
        /// The binaries `make k8s` built: the control-plane images become real.
        #[arg(long)]
        k8s_bin: Option<PathBuf>,
        /// The reference CNI plugins: calico/cni becomes the CNI stand-in.
        #[arg(long)]
        cni_plugins: Option<PathBuf>,
        /// The cache of the real images' layers.
        #[arg(long, default_value = "/tmp/kubeha-image-layers")]
        cache: PathBuf,
    },
    /// Builds the RPMs of a spec (scripts/demo/rpms.json) and a yum repo of each of its repositories.
    Rpms {
        /// The packages by repository.
        #[arg(long)]
        spec: PathBuf,
        /// A repository a directory under it.
        #[arg(long)]
        out: PathBuf,
        /// rpmbuild's top directory.
        #[arg(long)]
        work: PathBuf,
        /// The Kubernetes release the kube* packages carry (1.36.3).
        #[arg(long)]
        kube_version: String,
    },
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
    // A demo adapter (STATE/bin/<tool>, a link to this binary): runs as the tool its name stands in for.
    let mut argv = std::env::args_os();
    let tool = argv
        .next()
        .and_then(|a| Some(Path::new(&a).file_name()?.to_string_lossy().into_owned()));
    if let Some(tool) = tool.filter(|t| adapters::NAMES.contains(&t.as_str())) {
        let code = adapters::run(&tool, argv.collect());
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }
    match Cli::parse().command {
        Command::Demo {
            out,
            k8s_bin,
            kubeha,
            agent,
            hostile,
        } => {
            let agent =
                match agent.or_else(|| std::env::var_os("KUBEHA_NODE_BINARY").map(PathBuf::from)) {
                    Some(a) => a,
                    None => repo().join("dist/kubeha-firstboot"),
                };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            run::trap_signals(absolute(out.clone())?)?;
            let demo = run::Demo {
                out: absolute(out)?,
                repo: repo(),
                kubeha: absolute(kubeha.map_or_else(|| beside("kubeha"), Ok)?)?,
                agent: absolute(agent)?,
                k8s_bin: absolute(k8s_bin)?,
                hostile,
            };
            demo.run()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoCore { out, kubeha } => {
            run::demo_core(&out, &kubeha.map_or_else(|| beside("kubeha"), Ok)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Upstream {
            what:
                Upstream::Images {
                    registry,
                    list,
                    lists,
                    k8s_bin,
                    cni_plugins,
                    cache,
                },
        } => {
            upstream::images(&upstream::ImagesOpts {
                lists,
                k8s_bin,
                cni_plugins,
                cache,
                ..upstream::ImagesOpts::new(&registry, &list)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Upstream {
            what:
                Upstream::Rpms {
                    spec,
                    out,
                    work,
                    kube_version,
                },
        } => {
            upstream::rpms(&upstream::RpmsOpts {
                spec,
                out,
                work,
                kube_version,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::NodeBoot { netns, root, cmd } => match boot::node_boot(&netns, &root, &cmd)? {},
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
