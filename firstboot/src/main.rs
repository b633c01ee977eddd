//! kubeha-firstboot: see `kubeha_firstboot` and `--help`.

use clap::Parser;
use kubeha_firstboot::cli::{self, Cli, Command};

fn main() {
    // Logs go to stderr (the journal); stdout carries the console lines and machine output.
    env_logger::Builder::from_env(
        env_logger::Env::new()
            .filter_or("KUBEHA_LOG", "info")
            .write_style("KUBEHA_LOG_STYLE"),
    )
    .target(env_logger::Target::Stderr)
    .init();
    let c = Cli::parse();
    let res = match c.command {
        None => cli::run::run(c.run),
        Some(Command::Run(r)) => cli::run::run(r),
        Some(Command::Status(s)) => cli::status::run(s),
        Some(Command::Install(i)) => cli::install::run(i),
    };
    if let Err(e) = res {
        eprintln!("kubeha-firstboot: error: {e:#}");
        std::process::exit(1);
    }
}
