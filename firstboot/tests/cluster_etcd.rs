//! REAL three-member etcd (Debian's etcd-server) with TLS from the project's etcd CA, one member per master
//! namespace. Fills it with 1000 keys through one client (the v3 JSON gateway), wipes member 3 (a reimaged master),
//! runs kubeha's rebuild from member 3's namespace (the stale member goes, because quorum holds without it), re-adds
//! the member as kubeadm's join would and restarts it: three healthy members and all 1000 keys. Then, with two of
//! three members down, the rebuild refuses and the member list is unchanged.

#[path = "cluster/common.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use kubeha_firstboot::cluster::decide::ClusterEnv;
use kubeha_firstboot::cluster::etcd::{self, EtcdClient, Member, Rebuild};
use kubeha_firstboot::cluster::net::NetEnv;
use kubeha_firstboot::cluster::pki::{self, LeafSpec};
use kubeha_lab::EtcdMember;
use kubeha_model::{Cluster, NodeConfig};

fn start_etcd(lab: &mut Lab, c: &Cluster, i: usize, initial_cluster: &str, state: &str) -> u32 {
    let d = lab.dir.join(format!("m{}", i + 1));
    let ca = lab.dir.join("etcd-ca.crt");
    let m = EtcdMember {
        name: &c.masters[i].name,
        ip: c.masters[i].ip,
        dir: &d,
        ca: &ca,
        initial_cluster,
        state,
        token: "khc-test",
    };
    lab.start_etcd(&format!("m{}", i + 1), &m)
}

fn client(nc: &NodeConfig, eps: Vec<String>) -> EtcdClient {
    EtcdClient::new(
        &nc.control_plane.as_ref().unwrap().etcd_ca,
        eps,
        Duration::from_secs(3),
    )
    .unwrap()
}

/// Waits until `n` started members answer status, asking from namespace `ns`.
fn wait_members(lab: &Lab, nc: &NodeConfig, ns: &str, n: usize) -> Vec<Member> {
    let nc = nc.clone();
    let ns = lab.ns(ns);
    let eps: Vec<String> = nc
        .cluster
        .masters
        .iter()
        .map(|m| etcd::client_url(m.ip))
        .collect();
    in_netns(&ns, move || {
        let c = client(&nc, eps);
        let start = Instant::now();
        loop {
            if let Ok((_, ms)) = c.member_list() {
                let up = ms
                    .iter()
                    .filter(|m| m.started() && m.client_urls.iter().any(|u| c.healthy(u)))
                    .count();
                if ms.len() == n && up == n {
                    return ms;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "etcd did not reach {n} healthy members"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

fn wipe(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rebuild_replaces_a_reimaged_member_and_refuses_without_quorum() {
    if !lab_available("rebuild_replaces_a_reimaged_member_and_refuses_without_quorum") {
        return;
    }
    let c = Cluster::default_cluster();
    let nc3 = master_config(&c, "k8s-master03");
    let nc1 = master_config(&c, "k8s-master01");
    let mut lab = Lab::new(
        "b",
        &[
            ("m1", "192.168.20.20/24"),
            ("m2", "192.168.20.21/24"),
            ("m3", "192.168.20.22/24"),
        ],
    );
    let s = secrets();
    put(&lab.dir.join("etcd-ca.crt"), &s.etcd_ca.cert, 0o644);
    for (i, m) in c.masters.iter().enumerate() {
        let (cert, key) = pki::issue(
            &s.etcd_ca,
            &LeafSpec {
                cn: &m.name,
                ips: &[m.ip.into(), "127.0.0.1".parse().unwrap()],
                server: true,
                client: true,
                days: 1,
                ..Default::default()
            },
        )
        .unwrap();
        let d = lab.dir.join(format!("m{}", i + 1));
        put(&d.join("etcd.crt"), &cert, 0o644);
        put(&d.join("etcd.key"), &key, 0o600);
    }
    let full: String = c
        .masters
        .iter()
        .map(|m| format!("{}={}", m.name, etcd::peer_url(m.ip)))
        .collect::<Vec<_>>()
        .join(",");
    let mut pids = Vec::new();
    for i in 0..3 {
        pids.push(start_etcd(&mut lab, &c, i, &full, "new"));
    }
    let before = wait_members(&lab, &nc1, "m1", 3);

    // 1000 keys through one client.
    let t = Instant::now();
    let (nc, ep) = (nc1.clone(), etcd::client_url(c.masters[0].ip));
    let n = in_netns(&lab.ns("m1"), move || {
        let cl = client(&nc, vec![ep.clone()]);
        for k in 0..1000 {
            cl.put(&ep, &format!("/khc/key{k:04}"), &format!("value {k}"))
                .unwrap();
        }
        cl.count_prefix(&ep, "/khc/").unwrap()
    });
    assert_eq!(n, 1000);
    eprintln!("wrote 1000 keys in {:.1?}", t.elapsed());

    // Reimage master 3: stop it, wipe its data.
    lab.stop(pids[2]);
    wipe(&lab.dir.join("m3/data"));

    // The rebuild, run where it runs for real: on master 3, asking the other masters.
    let nc = nc3.clone();
    let r = in_netns(&lab.ns("m3"), move || {
        let me = nc.cluster.masters[2].clone();
        let env = NetEnv::default();
        let r = env.etcd_rebuild(&nc, &me).unwrap();
        let members = env.etcd_add(&nc, &me).unwrap();
        (r, etcd::initial_cluster(&members, &me.name, me.ip))
    });
    let old3 = before.iter().find(|m| m.name == "k8s-master03").unwrap().id;
    assert_eq!(r.0, Rebuild::Removed(vec![(old3, "k8s-master03".into())]));
    eprintln!(
        "rebuild removed the stale member {old3:x}; joining with --initial-cluster {}",
        r.1
    );
    pids[2] = start_etcd(&mut lab, &c, 2, &r.1, "existing");
    let after = wait_members(&lab, &nc1, "m3", 3);
    assert!(
        !after.iter().any(|m| m.id == old3),
        "the stale member is gone"
    );
    assert!(after.iter().all(|m| m.started()));
    let (nc, ep3) = (nc1.clone(), etcd::client_url(c.masters[2].ip));
    let n = in_netns(&lab.ns("m3"), move || {
        client(&nc, vec![ep3.clone()])
            .count_prefix(&ep3, "/khc/")
            .unwrap()
    });
    assert_eq!(n, 1000, "all keys, read through the rebuilt member");

    // Two of three down (master 3 reimaged again, master 2 off): the rebuild refuses and changes nothing.
    lab.stop(pids[2]);
    wipe(&lab.dir.join("m3/data"));
    lab.stop(pids[1]);
    let nc = nc3.clone();
    let (err, list_before, list_after) = in_netns(&lab.ns("m3"), move || {
        let eps = vec![etcd::client_url(nc.cluster.masters[0].ip)];
        let cl = client(&nc, eps);
        let before = cl.member_list().unwrap().1;
        let me = nc.cluster.masters[2].clone();
        let e = NetEnv::default().etcd_rebuild(&nc, &me).unwrap_err();
        let after = cl.member_list().unwrap().1;
        (format!("{e:#}"), before, after)
    });
    eprintln!("refused: {err}");
    assert!(
        err.contains("refusing") && err.contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(list_before, list_after, "the member list is unchanged");
    assert_eq!(list_after.len(), 3);
}
