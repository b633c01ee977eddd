use super::*;
use kubeha_model::Cluster;

#[test]
fn managed_block_cases() {
    let b = "1.2.3.4 x\n";
    let block = format!("{BEGIN}\n{b}{END}\n");
    for (name, existing, want) in [
        ("empty", "".to_string(), block.clone()),
        (
            "appended",
            "127.0.0.1 localhost\n".into(),
            format!("127.0.0.1 localhost\n{block}"),
        ),
        (
            "replaced in place",
            format!("a\n{BEGIN}\nold\n{END}\nb\n"),
            format!("a\n{block}b\n"),
        ),
        (
            "duplicate blocks collapse",
            format!("{BEGIN}\n1\n{END}\n{BEGIN}\n2\n{END}\n"),
            block.clone(),
        ),
        ("no trailing newline", "a".into(), format!("a\n{block}")),
    ] {
        let got = with_block(&existing, b);
        assert_eq!(got, want, "{name}");
        assert_eq!(with_block(&got, b), got, "{name}: idempotent");
    }
}

#[test]
fn hosts_lists_vip_and_every_node() {
    let c = Cluster::default_cluster();
    let h = hosts("127.0.0.1 localhost\n", &c);
    assert!(h.starts_with("127.0.0.1 localhost\n"));
    assert!(h.contains("192.168.20.10 k8s-master-lb\n"));
    assert!(h.contains("192.168.20.22 k8s-master03\n") && h.contains("192.168.20.37 k8s-node08\n"));
    assert_eq!(h.lines().count(), 1 + 2 + 1 + 3 + 8);
}

#[test]
fn selinux_cases() {
    for (input, want) in [
        (
            "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
            "SELINUX=permissive\nSELINUXTYPE=targeted\n",
        ),
        ("# c\nSELINUX=permissive\n", "# c\nSELINUX=permissive\n"),
        (
            "SELINUXTYPE=targeted\n",
            "SELINUXTYPE=targeted\nSELINUX=permissive\n",
        ),
        (
            "SELINUX=disabled\nSELINUX=enforcing\n",
            "SELINUX=permissive\n",
        ),
    ] {
        assert_eq!(selinux_config(input), want, "{input:?}");
    }
}

#[test]
fn fstab_cases() {
    let root = "/dev/mapper/cl-root / xfs defaults 0 0\n";
    let swap = "/dev/mapper/cl-swap none swap defaults 0 0\n";
    assert_eq!(fstab_without_swap(root), None);
    let once = fstab_without_swap(&format!("{root}{swap}")).unwrap();
    assert_eq!(once, format!("{root}#kubeha: {swap}"));
    assert_eq!(fstab_without_swap(&once), None, "commented once");
    assert_eq!(
        fstab_without_swap("# /dev/sda2 swap swap defaults 0 0\n"),
        None
    );
    assert_eq!(
        fstab_without_swap("UUID=1 swap swap pri=1 0 0\n").unwrap(),
        "#kubeha: UUID=1 swap swap pri=1 0 0\n"
    );
}

#[test]
fn repo_disable_cases() {
    for (input, want) in [
        ("[a]\nname=A\nenabled=1\n", Some("[a]\nname=A\nenabled=0\n")),
        (
            "[a]\nname=A\n[b]\nenabled = 1\n",
            Some("[a]\nname=A\nenabled=0\n[b]\nenabled=0\n"),
        ),
        ("[a]\nenabled=0\n", None),
        ("# only a comment\n", None),
    ] {
        assert_eq!(repo_disabled(input).as_deref(), want, "{input:?}");
    }
}

#[test]
fn firewall_tables() {
    let c = Cluster::default_cluster();
    assert_eq!(
        firewall_rules(&c, Role::Master),
        (
            [
                "6443/tcp",
                "16443/tcp",
                "2379-2380/tcp",
                "16444/tcp",
                "10257/tcp",
                "10259/tcp",
                "10250/tcp",
                "30000-32767/tcp",
                "179/tcp",
                "5473/tcp",
                "4789/udp",
            ]
            .map(String::from)
            .to_vec(),
            vec!["112".to_string(), "4".to_string()]
        )
    );
    assert_eq!(
        firewall_rules(&c, Role::Worker),
        (
            [
                "10250/tcp",
                "30000-32767/tcp",
                "179/tcp",
                "5473/tcp",
                "4789/udp"
            ]
            .map(String::from)
            .to_vec(),
            vec!["4".to_string()]
        )
    );
    let xml = r#"<?xml version="1.0"?><zone><service name="ssh"/><port protocol="tcp" port="6443"/>
<port port="30000-32767" protocol="tcp"/><protocol value="vrrp"/><protocol value="4"/></zone>"#;
    assert_eq!(zone_ports(xml), ["6443/tcp", "30000-32767/tcp"]);
    assert_eq!(zone_protocols(xml), ["112", "4"]);
}

#[test]
fn zone_file_cases() {
    // Only the zone's own <port>/<protocol> elements count: not a commented-out one, not CDATA, not a rich rule's
    // (limited to its source), not source-port or forward-port.
    let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- <port port="1" protocol="tcp"/> -->
<zone target="default">
  <short>Public</short>
  <description><![CDATA[<port port="2" protocol="tcp"/>]]></description>
  <port port="10250" protocol='tcp'></port>
  <source-port port="3" protocol="tcp"/>
  <forward-port port="4" protocol="tcp" to-port="5"/>
  <rule family="ipv4"><source address="10.0.0.0/8"/><port port="9999" protocol="tcp"/><accept/></rule>
  <protocol value="ipencap"/>
  <rule><protocol value="vrrp"/><accept/></rule>
</zone>
"#;
    assert_eq!(zone_ports(xml), ["10250/tcp"]);
    assert_eq!(zone_protocols(xml), ["4"]);
    // Not a zone file, and a file cut short: what parsed before the error.
    assert!(zone_ports(r#"<service><port port="1" protocol="tcp"/></service>"#).is_empty());
    assert_eq!(
        zone_ports(r#"<zone><port port="6443" protocol="tcp"/><port port="1" protocol="#),
        ["6443/tcp"]
    );
    assert!(zone_ports("").is_empty() && zone_protocols("not xml <").is_empty());
}

#[test]
fn zone_file_written_by_firewalld() {
    // firewalld's own writer (its python module, as firewall-offline-cmd uses it) writes the zone into a temporary
    // directory; the reader finds exactly the zone's ports and protocols in it.
    let d = tempfile::tempdir().unwrap();
    let script = r#"
import sys
from firewall.core.io.zone import zone_reader, zone_writer
from firewall.core.rich import Rich_Rule
z = zone_reader("public.xml", "/usr/lib/firewalld/zones")
for p in [("6443", "tcp"), ("30000-32767", "tcp"), ("4789", "udp")]:
    z.ports.append(p)
z.protocols.extend(["vrrp", "4"])
z.source_ports.append(("7", "tcp"))
z.rules.append(Rich_Rule(rule_str='rule family="ipv4" source address="10.0.0.0/8" port port="9999" protocol="tcp" accept'))
z.path = sys.argv[1]
zone_writer(z, sys.argv[1])
"#;
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(d.path())
        .output()
        .expect("/usr/bin/python3");
    assert!(
        out.status.success(),
        "firewalld's zone writer (Debian package firewalld): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(d.path().join("public.xml")).unwrap();
    assert_eq!(
        zone_ports(&xml),
        ["6443/tcp", "30000-32767/tcp", "4789/udp"],
        "{xml}"
    );
    assert_eq!(zone_protocols(&xml), ["112", "4"], "{xml}");
}

#[test]
fn pause_images() {
    let mut c = Cluster::default_cluster();
    c.cluster.kubernetes_version = "1.31.4".parse().unwrap();
    assert_eq!(pause_image(&c), "registry.k8s.io/pause:3.10");
    c.cluster.kubernetes_version = "1.11.1".parse().unwrap();
    assert_eq!(pause_image(&c), "k8s.gcr.io/pause:3.1");
    c.cluster.kubernetes_version = "1.28.3".parse().unwrap();
    c.cluster.image_repository = Some("reg.local/k8s".into());
    assert_eq!(pause_image(&c), "reg.local/k8s/pause:3.9");
}

#[test]
fn containerd_config_is_toml_with_the_settings() {
    let mut c = Cluster::default_cluster();
    c.cluster
        .registry_mirrors
        .push(kubeha_model::cluster::RegistryMirror {
            registry: "docker.io".into(),
            endpoint: "https://mirror.local".into(),
        });
    let text = containerd_config(&c);
    let v: toml::Value = toml::from_str(&text).unwrap();
    let cri = &v["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(v["version"].as_integer(), Some(2));
    assert_eq!(
        cri["sandbox_image"].as_str(),
        Some(pause_image(&c).as_str())
    );
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(true)
    );
    assert_eq!(
        cri["registry"]["mirrors"]["docker.io"]["endpoint"][0].as_str(),
        Some("https://mirror.local")
    );
    let d: serde_json::Value = serde_json::from_str(&docker_daemon_json(&c)).unwrap();
    assert_eq!(d["exec-opts"][0], "native.cgroupdriver=systemd");
    assert_eq!(d["registry-mirrors"][0], "https://mirror.local");
}

/// `containerd --config FILE config dump` (containerd parses the file, merges it over its defaults and prints the
/// result; no daemon starts) on `text`, parsed back as TOML. `None` (and the reason printed) only when containerd is
/// not installed.
fn containerd_dump(text: &str) -> Option<toml::Value> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("config.toml");
    std::fs::write(&p, text).unwrap();
    let out = match std::process::Command::new("containerd")
        .arg("--config")
        .arg(&p)
        .args(["config", "dump"])
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIP: containerd is not installed (Debian package containerd): config dump not run");
            return None;
        }
        Err(e) => panic!("running containerd: {e}"),
    };
    assert!(
        out.status.success(),
        "containerd refused the config:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8(out.stdout).unwrap();
    Some(toml::from_str(&dump).unwrap_or_else(|e| panic!("containerd's dump: {e}\n{dump}")))
}

#[test]
fn containerd_accepts_the_config() {
    // The real containerd reads every setting kubeha writes where kubeha means it: the dump is containerd's merged
    // view, so a misspelled or misplaced key would show up as the default instead.
    let mut c = Cluster::default_cluster();
    c.cluster.image_repository = Some("registry.example/k8s".into());
    for (registry, endpoint) in [
        ("docker.io", "https://mirror-a.example"),
        ("registry.k8s.io", "https://k8s-mirror.example:5000"),
        ("docker.io", "https://mirror-b.example"),
    ] {
        c.cluster
            .registry_mirrors
            .push(kubeha_model::cluster::RegistryMirror {
                registry: registry.into(),
                endpoint: endpoint.into(),
            });
    }
    for (name, cluster) in [("default", Cluster::default_cluster()), ("mirrors", c)] {
        let Some(v) = containerd_dump(&containerd_config(&cluster)) else {
            return;
        };
        assert_eq!(v["version"].as_integer(), Some(2), "{name}");
        let cri = &v["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(
            cri["sandbox_image"].as_str(),
            Some(pause_image(&cluster).as_str()),
            "{name}"
        );
        assert_eq!(
            cri["containerd"]["default_runtime_name"].as_str(),
            Some("runc"),
            "{name}"
        );
        let runc = &cri["containerd"]["runtimes"]["runc"];
        assert_eq!(
            runc["runtime_type"].as_str(),
            Some("io.containerd.runc.v2"),
            "{name}"
        );
        assert_eq!(
            runc["options"]["SystemdCgroup"].as_bool(),
            Some(true),
            "{name}"
        );
        let mirrors = cri["registry"]["mirrors"].as_table();
        let endpoints = |reg: &str| -> Vec<String> {
            mirrors
                .and_then(|m| m.get(reg))
                .and_then(|m| m["endpoint"].as_array())
                .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        if name == "mirrors" {
            assert_eq!(
                endpoints("docker.io"),
                ["https://mirror-a.example", "https://mirror-b.example"],
                "one registry's mirrors in cluster.toml's order"
            );
            assert_eq!(
                endpoints("registry.k8s.io"),
                ["https://k8s-mirror.example:5000"]
            );
        } else {
            assert!(endpoints("docker.io").is_empty(), "{name}: no mirrors");
        }
    }
}

#[test]
fn chrony_and_repo_files() {
    let c = chrony_conf(&["10.0.0.1".into(), "ntp.local".into()]);
    assert!(c.contains("server 10.0.0.1 iburst\nserver ntp.local iburst\n"));
    let r = yum_repo("file:///var/lib/kubeha/bundle/rpms", &[]);
    assert!(
        r.contains("[kubeha]\n")
            && r.contains("baseurl=file:///var/lib/kubeha/bundle/rpms\n")
            && r.contains("enabled=1")
            && r.contains("gpgcheck=0\n")
            && !r.contains("gpgkey"),
        "{r}"
    );
    let keys = [
        "file:///b/rpms/RPM-GPG-KEY-kube".to_string(),
        "file:///b/rpms/RPM-GPG-KEY-docker".to_string(),
    ];
    let r = yum_repo("file:///b/rpms", &keys);
    assert!(
        r.contains("gpgcheck=1\ngpgkey=file:///b/rpms/RPM-GPG-KEY-kube file:///b/rpms/RPM-GPG-KEY-docker\n"),
        "{r}"
    );
}
