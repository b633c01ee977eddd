//! The demo's generated local "upstream" (stage 1 of [`super::run::Demo`]): small container images pushed under
//! their real names to a local registry ([`images`]), and yum repositories of small generated RPMs named like the
//! real ones with their real dependency shape ([`rpms`]). `kubeha-lab upstream images|rpms` runs them alone.
//!
//! This machine has no internet, so the demo cannot pull registry.k8s.io or pkgs.k8s.io; everything kubeha does
//! with this upstream (registry API v2, manifest lists, digests, repodata, dependency closure) is the same as with
//! the real one.
//!
//! With `k8s_bin` (the binaries `make k8s` builds from k8s.io/kubernetes and etcd), the control-plane images are
//! REAL: kube-apiserver, kube-controller-manager, kube-scheduler and kube-proxy carry their binary at
//! /usr/local/bin/NAME with kube-log-runner as /go-runner (the ENTRYPOINT of Kubernetes'
//! build/server-image/Dockerfile), etcd carries etcd and etcdctl at /usr/local/bin, pause is
//! build/pause/linux/pause.c at /pause (ENTRYPOINT ["/pause"], USER 65535). Images that are not built from
//! Kubernetes' own source (coredns, calico) stay generated busybox STAND-INS; with `cni_plugins`, calico/cni is the
//! CNI STAND-IN: busybox plus the reference CNI plugins (bridge, host-local, loopback, portmap from Debian's
//! containernetworking-plugins) and /install-cni.sh, which installs them and a bridge network config on the node the
//! way calico's install-cni init container installs calico's (nodes become Ready; pods on one node reach each other,
//! across nodes they do not: no routing between the nodes' bridges).
//!
//! The layers and configs are byte for byte what the python generator this replaced (scripts/demo/upstream.py)
//! wrote, so their digests (the configs' diff_ids) are the same; the gzip streams differ (zlib vs miniz_oxide).

pub mod images;
pub mod oci;
pub mod registry;
pub mod rpms;

pub use images::{images, ImagesOpts};
pub use rpms::{rpms, RpmsOpts};
