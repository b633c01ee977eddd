//! kubeha-mirror integration tests, against real daemons and registries on loopback (one binary so the crate
//! links once).

mod archive;
mod common;
mod overrides;
mod registry;
mod servers;
