//! `kubeha-lab`: the demo's logic that `make demo` and `make test-demo` run (scripts/demo/run.sh, mk/core.mk).
//! Test support, never shipped (see the crate's doc).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kubeha_lab::demo::{result, summary};
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

fn read(path: &Path) -> Result<result::DemoResult> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    result::DemoResult::parse(&text).with_context(|| format!("reading {}", path.display()))
}

fn main() -> Result<ExitCode> {
    match Cli::parse().command {
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
