//! Golden tests of every rendered file (keepalived, check script, nginx, kubeadm per API version), plus a decode of
//! each kubeadm document into structs that mirror kubeadm's Go types field by field with unknown fields denied.
//!
//! Regenerate after an intended change: `UPDATE_GOLDEN=1 cargo test -p kubeha-firstboot --test cluster_render` (the
//! OS files' goldens are `render_os`'s; both compare through `goldens::golden`).

mod goldens;

use goldens::golden;
use kubeha_firstboot::cluster::keepalived::{self, CheckParams, KeepalivedParams};
use kubeha_firstboot::cluster::kubeadm::{self, Credentials, LegacyEtcd};
use kubeha_firstboot::cluster::nginx::{self, NginxParams};
use kubeha_model::cluster::Runtime;
use kubeha_model::Cluster;

fn cluster(version: &str) -> Cluster {
    let mut c = Cluster::default_cluster();
    c.cluster.kubernetes_version = version.parse().unwrap();
    if version.starts_with("1.11") {
        c.cluster.container_runtime = Runtime::Docker;
        c.install.el = 7;
    }
    c
}

fn cred(master: bool) -> Credentials {
    Credentials {
        token: "abcdef.0123456789abcdef".into(),
        ca_cert_hash: format!("sha256:{}", "0a".repeat(32)),
        certificate_key: master.then(|| "1".repeat(64)),
    }
}

#[test]
fn keepalived_and_check_script() {
    let c = cluster("1.31.4");
    for (i, file) in [
        (0, "keepalived-master01.conf"),
        (2, "keepalived-master03.conf"),
    ] {
        let got = keepalived::render_keepalived(
            &c,
            &KeepalivedParams {
                index: i,
                interface: "eth0".into(),
                auth_pass: "Pa55word".into(),
                check_script: keepalived::CHECK_SCRIPT.into(),
            },
        )
        .unwrap();
        // Every instance BACKUP + nopreempt, priorities by order, peers are the other masters.
        assert!(
            got.contains("state BACKUP") && got.contains("nopreempt"),
            "{got}"
        );
        assert!(got.contains(&format!("priority {}", 150 - i)), "{got}");
        assert!(
            !got.contains(&format!("        {}\n", c.masters[i].ip)),
            "a master is not its own peer"
        );
        golden(file, &got);
    }
    // Failover guarantee of the weighted check: any failing master ranks below every healthy one.
    let n = c.masters.len();
    let lowest_healthy = keepalived::priority(n - 1) as i32;
    let highest_failing = keepalived::priority(0) as i32 + keepalived::APISERVER_WEIGHT;
    assert!(
        highest_failing < lowest_healthy,
        "{highest_failing} must be < {lowest_healthy}"
    );
    let e = keepalived::render_keepalived(
        &c,
        &KeepalivedParams {
            index: 0,
            interface: "eth0".into(),
            auth_pass: "toolongpassword".into(),
            check_script: "x".into(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("vrrp-auth-pass"), "{e}");
    golden(
        "check_apiserver.sh",
        &keepalived::render_check_script(&CheckParams {
            ip: c.masters[0].ip,
            lb_port: 16443,
            ca_cert: "/etc/kubernetes/pki/ca.crt".into(),
            apiserver_manifest: "/etc/kubernetes/manifests/kube-apiserver.yaml".into(),
        }),
    );
}

#[test]
fn nginx_stream() {
    let c = cluster("1.31.4");
    let got = nginx::render_nginx(&c, &NginxParams::el()).unwrap();
    for m in &c.masters {
        assert!(
            got.contains(&format!("server {}:6443 max_fails=", m.ip)),
            "{got}"
        );
    }
    assert!(got.contains("listen 16443;") && got.contains("proxy_connect_timeout 2s;"));
    golden("nginx-el.conf", &got);
    let deb = nginx::render_nginx(
        &c,
        &NginxParams {
            stream_module: Some(nginx::DEBIAN_STREAM_MODULE.into()),
            ..NginxParams::el()
        },
    )
    .unwrap();
    assert!(deb.contains("load_module /usr/lib/nginx/modules/ngx_stream_module.so;"));
    golden("nginx-debian.conf", &deb);
}

#[allow(dead_code)]
mod shape {
    //! kubeadm's types, transcribed from cmd/kubeadm/app/apis/kubeadm/{v1beta3,v1beta4,v1alpha2}/types.go: only
    //! the fields kubeha writes and their parents, with serde's deny_unknown_fields standing in for kubeadm's strict
    //! decoding.
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct BootstrapToken {
        pub token: String,
        pub description: Option<String>,
        pub ttl: Option<String>,
        pub usages: Vec<String>,
        pub groups: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Arg {
        pub name: String,
        pub value: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Args {
        List(Vec<Arg>),
        Map(BTreeMap<String, String>),
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct NodeRegistration {
        pub name: String,
        pub cri_socket: String,
        pub image_pull_policy: Option<String>,
        pub kubelet_extra_args: Args,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct ApiEndpoint {
        pub advertise_address: String,
        pub bind_port: u16,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Init {
        pub api_version: String,
        pub kind: String,
        pub bootstrap_tokens: Vec<BootstrapToken>,
        #[serde(rename = "localAPIEndpoint")]
        pub local_api_endpoint: ApiEndpoint,
        pub node_registration: NodeRegistration,
        pub certificate_key: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Networking {
        pub pod_subnet: String,
        pub service_subnet: String,
        pub dns_domain: String,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct ApiServer {
        #[serde(rename = "certSANs")]
        pub cert_sans: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct LocalEtcd {
        pub data_dir: String,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Etcd {
        pub local: LocalEtcd,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct ClusterConfiguration {
        pub api_version: String,
        pub kind: String,
        pub cluster_name: String,
        pub kubernetes_version: String,
        pub control_plane_endpoint: String,
        pub image_repository: String,
        pub certificates_dir: String,
        pub networking: Networking,
        pub api_server: ApiServer,
        pub etcd: Etcd,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct BootstrapTokenDiscovery {
        pub token: String,
        pub api_server_endpoint: String,
        pub ca_cert_hashes: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Discovery {
        pub bootstrap_token: BootstrapTokenDiscovery,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct JoinControlPlane {
        #[serde(rename = "localAPIEndpoint")]
        pub local_api_endpoint: ApiEndpoint,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Join {
        pub api_version: String,
        pub kind: String,
        pub ca_cert_path: String,
        pub discovery: Discovery,
        pub node_registration: NodeRegistration,
        pub control_plane: Option<JoinControlPlane>,
    }
    // v1alpha2 (kubeadm 1.11)
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Api {
        pub advertise_address: String,
        pub control_plane_endpoint: String,
        pub bind_port: u16,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct LegacyLocalEtcd {
        pub data_dir: String,
        pub extra_args: BTreeMap<String, String>,
        #[serde(rename = "serverCertSANs")]
        pub server_cert_sans: Vec<String>,
        #[serde(rename = "peerCertSANs")]
        pub peer_cert_sans: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct LegacyEtcd {
        pub local: LegacyLocalEtcd,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct MasterConfiguration {
        pub api_version: String,
        pub kind: String,
        pub cluster_name: String,
        pub kubernetes_version: String,
        pub image_repository: String,
        pub certificates_dir: String,
        pub api: Api,
        #[serde(rename = "apiServerCertSANs")]
        pub api_server_cert_sans: Vec<String>,
        pub bootstrap_tokens: Vec<BootstrapToken>,
        pub node_registration: NodeRegistration,
        pub networking: Networking,
        pub etcd: LegacyEtcd,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct NodeConfiguration {
        pub api_version: String,
        pub kind: String,
        pub token: String,
        #[serde(rename = "discoveryTokenAPIServers")]
        pub discovery_token_api_servers: Vec<String>,
        #[serde(rename = "discoveryTokenCACertHashes")]
        pub discovery_token_ca_cert_hashes: Vec<String>,
        pub node_registration: NodeRegistration,
    }
}

fn docs(text: &str) -> Vec<serde_yaml::Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .collect()
}

fn check_modern(version: &str, api: &str, prefix: &str) {
    let c = cluster(version);
    let m1 = &c.masters[0];
    let init = kubeadm::render_init(&c, m1, &cred(true), None).unwrap();
    let d = docs(&init);
    assert_eq!(
        d.len(),
        2,
        "init file has InitConfiguration and ClusterConfiguration"
    );
    let i: shape::Init = serde_yaml::from_value(d[0].clone()).expect("InitConfiguration shape");
    assert_eq!(
        (i.api_version.as_str(), i.kind.as_str()),
        (api, "InitConfiguration")
    );
    assert_eq!(i.bootstrap_tokens[0].token, "abcdef.0123456789abcdef");
    assert_eq!(i.bootstrap_tokens[0].ttl.as_deref(), Some("8760h0m0s"));
    assert_eq!(
        i.certificate_key.as_deref(),
        Some("1".repeat(64).as_str()),
        "all-digit key stays a string"
    );
    assert_eq!(
        i.node_registration.cri_socket,
        "unix:///run/containerd/containerd.sock"
    );
    match (
        &i.node_registration.kubelet_extra_args,
        api.ends_with("v1beta4"),
    ) {
        (shape::Args::List(l), true) => assert_eq!(
            (l[0].name.as_str(), l[0].value.as_str()),
            ("node-ip", "192.168.20.20")
        ),
        (shape::Args::Map(m), false) => assert_eq!(m["node-ip"], "192.168.20.20"),
        _ => panic!("{api}: extraArgs must be a list on v1beta4 and a map before"),
    }
    let cc: shape::ClusterConfiguration =
        serde_yaml::from_value(d[1].clone()).expect("ClusterConfiguration shape");
    assert_eq!(
        (cc.api_version.as_str(), cc.kind.as_str()),
        (api, "ClusterConfiguration")
    );
    assert_eq!(cc.control_plane_endpoint, "192.168.20.10:16443");
    assert_eq!(cc.kubernetes_version, format!("v{version}"));
    assert_eq!(cc.image_repository, c.image_repository());
    for want in [
        "192.168.20.10",
        "k8s-master-lb",
        "k8s-master01",
        "192.168.20.20",
        "k8s-master03",
        "192.168.20.22",
    ] {
        assert!(
            cc.api_server.cert_sans.iter().any(|s| s == want),
            "certSANs lack {want}"
        );
    }
    assert_eq!(cc.networking.pod_subnet, "10.244.0.0/16");
    golden(&format!("{prefix}-init.yaml"), &init);

    let join = kubeadm::render_join(&c, &c.masters[1], &cred(true), true, None).unwrap();
    let j: shape::Join =
        serde_yaml::from_value(docs(&join)[0].clone()).expect("JoinConfiguration shape");
    assert_eq!(
        (j.api_version.as_str(), j.kind.as_str()),
        (api, "JoinConfiguration")
    );
    assert_eq!(
        j.discovery.bootstrap_token.api_server_endpoint,
        "192.168.20.10:16443"
    );
    assert_eq!(
        j.discovery.bootstrap_token.ca_cert_hashes,
        vec![format!("sha256:{}", "0a".repeat(32))]
    );
    assert_eq!(
        j.control_plane
            .expect("control plane")
            .local_api_endpoint
            .advertise_address,
        "192.168.20.21"
    );
    assert!(
        !join.contains("certificateKey"),
        "join must not depend on the 2-hour kubeadm-certs Secret"
    );
    golden(&format!("{prefix}-join-master.yaml"), &join);

    let w = &c.workers[0];
    let wj = kubeadm::render_join(&c, w, &cred(false), false, None).unwrap();
    let j: shape::Join =
        serde_yaml::from_value(docs(&wj)[0].clone()).expect("worker JoinConfiguration shape");
    assert!(j.control_plane.is_none());
    assert_eq!(j.node_registration.name, "k8s-node01");
    golden(&format!("{prefix}-join-worker.yaml"), &wj);
}

#[test]
fn kubeadm_v1beta4() {
    check_modern("1.31.4", "kubeadm.k8s.io/v1beta4", "kubeadm-v1beta4");
}

#[test]
fn kubeadm_v1beta3() {
    check_modern("1.28.15", "kubeadm.k8s.io/v1beta3", "kubeadm-v1beta3");
}

#[test]
fn kubeadm_v1alpha2_seed() {
    let c = cluster("1.11.1");
    let init = kubeadm::render_init(&c, &c.masters[0], &cred(true), None).unwrap();
    let m: shape::MasterConfiguration =
        serde_yaml::from_value(docs(&init)[0].clone()).expect("MasterConfiguration shape");
    assert_eq!(
        (m.api_version.as_str(), m.kind.as_str()),
        ("kubeadm.k8s.io/v1alpha2", "MasterConfiguration")
    );
    assert_eq!(m.api.control_plane_endpoint, "192.168.20.10:16443");
    assert_eq!(m.image_repository, "k8s.gcr.io");
    assert_eq!(m.node_registration.cri_socket, "/var/run/dockershim.sock");
    assert_eq!(m.etcd.local.extra_args["initial-cluster-state"], "new");
    assert_eq!(
        m.etcd.local.extra_args["initial-cluster"],
        "k8s-master01=https://192.168.20.20:2380"
    );
    assert!(m
        .api_server_cert_sans
        .contains(&"k8s-master-lb".to_string()));
    golden("kubeadm-v1alpha2-init.yaml", &init);
    let legacy = LegacyEtcd {
        initial_cluster:
            "k8s-master01=https://192.168.20.20:2380,k8s-master02=https://192.168.20.21:2380".into(),
        state: "existing",
    };
    let m2 = kubeadm::render_master_v1alpha2(&c, &c.masters[1], &cred(true), &legacy).unwrap();
    let m: shape::MasterConfiguration = serde_yaml::from_value(docs(&m2)[0].clone()).unwrap();
    assert_eq!(m.etcd.local.extra_args["initial-cluster-state"], "existing");
    golden("kubeadm-v1alpha2-master02.yaml", &m2);
    let w = kubeadm::render_join(&c, &c.workers[0], &cred(false), false, None).unwrap();
    let n: shape::NodeConfiguration =
        serde_yaml::from_value(docs(&w)[0].clone()).expect("NodeConfiguration shape");
    assert_eq!(
        n.discovery_token_api_servers,
        vec!["192.168.20.10:16443".to_string()]
    );
    golden("kubeadm-v1alpha2-worker.yaml", &w);
    assert!(kubeadm::render_join(&c, &c.masters[1], &cred(true), true, None).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    let c = cluster("1.18.0");
    let e = kubeadm::render_init(&c, &c.masters[0], &cred(true), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1.18.0"), "{e}");
}

/// The variants the per-version goldens above do not show: cgroup v1 kept under a kubelet that refuses it (a
/// KubeletConfiguration document and a named preflight exception), this node's patches directory, a token that never
/// expires, and an endpoint name other than the guide's (both names in certSANs).
#[test]
fn kubeadm_variants() {
    let mut c = cluster("1.36.3");
    c.install.el = 8;
    c.install.cgroup = Some(kubeha_model::cluster::CgroupVersion::V1);
    let init = kubeadm::render_init(&c, &c.masters[0], &cred(true), None).unwrap();
    let d = docs(&init);
    assert_eq!(d.len(), 3, "{init}");
    assert_eq!(d[2]["kind"], "KubeletConfiguration");
    assert_eq!(d[2]["failCgroupV1"], false);
    assert_eq!(
        d[0]["nodeRegistration"]["ignorePreflightErrors"][0],
        "SystemVerification"
    );
    golden("kubeadm-v1beta4-init-cgroup-v1.yaml", &init);
    let join = kubeadm::render_join(&c, &c.workers[0], &cred(false), false, None).unwrap();
    assert_eq!(
        docs(&join)[0]["nodeRegistration"]["ignorePreflightErrors"][0],
        "SystemVerification"
    );
    golden("kubeadm-v1beta4-join-worker-cgroup-v1.yaml", &join);

    for (version, prefix) in [
        ("1.31.4", "kubeadm-v1beta4"),
        ("1.28.15", "kubeadm-v1beta3"),
    ] {
        let mut c = cluster(version);
        c.cluster.token_ttl_hours = 0;
        c.endpoint.name = "api.example".into();
        let p = Some(kubeadm::PATCHES_DIR);
        let init = kubeadm::render_init(&c, &c.masters[0], &cred(true), p).unwrap();
        let d = docs(&init);
        assert_eq!(d[0]["patches"]["directory"], kubeadm::PATCHES_DIR);
        assert_eq!(d[0]["bootstrapTokens"][0]["ttl"], "0s");
        let sans = &d[1]["apiServer"]["certSANs"];
        assert!(
            sans[1] == "api.example" && sans[2] == "k8s-master-lb",
            "{sans:?}"
        );
        golden(&format!("{prefix}-init-patches.yaml"), &init);
        let join = kubeadm::render_join(&c, &c.masters[1], &cred(true), true, p).unwrap();
        assert_eq!(docs(&join)[0]["patches"]["directory"], kubeadm::PATCHES_DIR);
        golden(&format!("{prefix}-join-master-patches.yaml"), &join);
    }
}
