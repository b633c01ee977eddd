//! kubeha-kickstart: renders the unattended EL7/EL8/EL9 kickstart that installs a kubeha node.
//!
//! One pure function, [`render`], turns a [`Cluster`] and [`Options`] into kickstart text. The shell parts
//! (`%pre`, `%post`) are templates under `templates/`, filled by plain `@NAME@` substitution.
//!
//! [`render`] is plan → render: `plan::plan` checks every value of the cluster and the options (each error
//! names its field or option) and turns them into a typed plan without I/O (the known node's role, MAC and disk,
//! the netmask, the root label, the cgroup argument), and `render::kickstart` turns the plan into the text, with
//! no check left to fail. Writing it is the caller's: `kubeha kickstart` writes it atomically, `kubeha iso` and
//! `kubeha pxe` put it into their media through their own executors, `kubeha serve` serves it.
//! To extend: a new value is checked in `plan` and carried in `Plan`, a new line is rendered in `render`.
//!
//! What the kickstart does:
//! - `%pre` finds the node (kernel `kubeha.name=`, else a MAC match against cluster.toml) and exactly one install
//!   disk (the node's `disk`, else `kubeha.disk=`, else the first non-removable whole disk that does not hold the
//!   install media), and writes `ignoredisk --only-use=` + partitioning (no swap) and the network command
//!   (static for a known node, DHCP otherwise) for `%include`. When the node is known at render time, network
//!   (and storage, if its disk is known) are written directly into the kickstart instead.
//! - Install once: the root filesystem is labelled [`root_label`] (this cluster's), and `%pre` refuses to wipe a
//!   disk that already has a filesystem with that label (blkid, read-only) unless `kubeha.reinstall=1`: it says
//!   why on the consoles and halts. `%post --nochroot` also writes `/etc/kubeha/installed` (cluster, node, role,
//!   label, time) for people.
//! - `repo` points at the bundle's yum repository: on the install media (`file:///run/install/repo/kubeha/rpms`) or
//!   over HTTP; `%packages` installs the bundle's requested packages.
//! - `%post --nochroot` runs the media's agent as `kubeha-firstboot install --sysroot /mnt/sysimage --from SOURCE`:
//!   it copies (or downloads) the bundle, verified against `bundle.toml` (and its signature when configured), to
//!   `/var/lib/kubeha/bundle`, the agent to `/usr/local/bin/kubeha-firstboot` with its unit, and the node config to
//!   `/etc/kubeha/node.toml` (from `kubeha.config=`, pinned by `kubeha.config.sha256=`, else the media's
//!   `node.toml`), writing nothing when a check fails; the script then keeps `kubeha.role/name/bootstrap/report`
//!   on the installed kernel command line (grubby), with
//!   `systemd.unified_cgroup_hierarchy=1` (EL8, `[install] cgroup = "v2"`) or `=0` (EL9, `cgroup = "v1"`).
//! - The firewall opens the role's ports from [`kubeha_model::kube::ports`] (the table the node agent uses): the
//!   `firewall` command for a known node, else `%pre` writes it for `%include` once it knows the role (a node
//!   whose role is unknown gets the master's set, a superset of the worker's); the whole IP protocols (VRRP,
//!   IP-in-IP) are added in `%post --nochroot` with `firewall-offline-cmd --add-protocol=`.
//! - `%post` enables `kubeha-firstboot.service`.
#![deny(missing_docs)]

mod plan;
mod render;
mod spec;

use kubeha_model::Cluster;

pub use plan::{is_crypt_hash, prefix_netmask};
pub use render::firewall_line;
pub use spec::{
    ksvalidator_version, root_label, Error, Options, Result, Source, MEDIA_DIR, MEDIA_ROOT,
};

/// Checks what [`render`] checks (the first error names its field or option), without rendering.
pub fn check(cluster: &Cluster, opts: &Options) -> Result<()> {
    plan::plan(cluster, opts).map(|_| ())
}

/// Renders the kickstart.
pub fn render(cluster: &Cluster, opts: &Options) -> Result<String> {
    let plan = plan::plan(cluster, opts)?;
    Ok(render::kickstart(&plan))
}
