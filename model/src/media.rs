//! The layout of kubeha's directory on the install media (`/kubeha` of an ISO, the HTTP base of a PXE tree) and
//! where `kubeha-firstboot install` puts its files in the installed system: the contract between the media
//! writer (`kubeha-image`) and the installer (`kubeha-firstboot install`, run by the kickstart's
//! `%post --nochroot`).

/// The directory of the agent files under the media's `/kubeha`.
pub const AGENT_DIR: &str = "agent";
/// The agent binary's file name.
pub const AGENT_BIN: &str = "kubeha-firstboot";
/// The agent unit's file name.
pub const AGENT_UNIT: &str = "kubeha-firstboot.service";
/// The shared (worker-grade unless secrets are embedded) node config's file name under `/kubeha`.
pub const NODE_CONFIG: &str = "node.toml";
/// Where the installed system keeps the agent.
pub const INSTALLED_AGENT: &str = "/usr/local/bin/kubeha-firstboot";
/// Where the installed system keeps the agent's unit.
pub const INSTALLED_UNIT: &str = "/etc/systemd/system/kubeha-firstboot.service";
/// Where the installed system keeps its node config (0600 in a 0700 directory: a master's holds the CA keys).
pub const INSTALLED_NODE_CONFIG: &str = "/etc/kubeha/node.toml";
