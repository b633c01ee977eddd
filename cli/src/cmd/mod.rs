//! One module per area; each owns its clap structs and calls into its library crate.

pub mod agent;
pub mod bundle;
pub mod config;
pub mod media;
pub mod serve;
