//! The demo's logic in Rust (issue #15; `make demo` and `make test-demo` run it through the `kubeha-lab` binary):
//! so far its verdict on a run's result.json ([`result::check`], `kubeha-lab check-result`) and its closing table
//! ([`summary::summary`], `kubeha-lab summary`).

pub mod py;
pub mod result;
pub mod summary;
