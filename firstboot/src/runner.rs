//! The one command runner: [`kubeha_runner`], re-exported. Every external tool (systemctl, kubeadm, ctr, dnf...) is
//! run through a [`Runner`], so `--dry-run` prints instead of running and tests record the exact argv.
//!
//! Secrets never go on a command line: the runner logs argv. Pass them in 0600 files.

pub use kubeha_runner::*;
