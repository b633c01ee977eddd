//! REAL keepalived and nginx, configured by kubeha's renderers, on three master namespaces, each in front of a
//! TLS backend (tests/cluster/tls_backend.py, HTTPS with a certificate from the cluster CA). A fourth
//! namespace is the client. Checks: `keepalived -t` and `nginx -t` accept the rendered files; the VIP lands on
//! exactly one master; stopping the holder's nginx and apiserver moves the VIP (FAULT through check_lb) and requests
//! through VIP:16443 keep succeeding; taking the next holder's link down moves it again; stopping everything drops
//! the VIP and starting everything brings it back on exactly one master; a Node delete through the VIP carries a
//! `system:masters` client certificate signed by the cluster CA.

#[path = "cluster/common.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use kubeha_firstboot::cluster::decide;
use kubeha_firstboot::cluster::keepalived::{self, CheckParams, KeepalivedParams};
use kubeha_firstboot::cluster::kubeapi::{Deleted, KubeApi};
use kubeha_firstboot::cluster::net::NetEnv;
use kubeha_firstboot::cluster::nginx::{self, NginxParams};
use kubeha_firstboot::cluster::pki::{self, LeafSpec};
use kubeha_model::Cluster;

const MASTERS: [&str; 3] = ["m1", "m2", "m3"];

struct Master {
    dir: PathBuf,
    keepalived: Option<u32>,
    nginx: Option<u32>,
    apiserver: Option<u32>,
}

fn vip_holders(lab: &Lab, vip: &str) -> Vec<&'static str> {
    MASTERS
        .iter()
        .copied()
        .filter(|m| {
            let o = lab.exec(m, "ip -4 -o addr show dev eth0");
            String::from_utf8_lossy(&o.stdout).contains(&format!(" {vip}/"))
        })
        .collect()
}

fn wait_holders(
    lab: &Lab,
    vip: &str,
    want: usize,
    limit: Duration,
) -> (Vec<&'static str>, Duration) {
    let start = Instant::now();
    loop {
        let h = vip_holders(lab, vip);
        if h.len() == want {
            // Stable for a second: a transient double holder would be a bug.
            std::thread::sleep(Duration::from_millis(1000));
            let again = vip_holders(lab, vip);
            if again == h {
                return (h, start.elapsed());
            }
        }
        assert!(
            start.elapsed() < limit,
            "VIP holders {h:?} (want {want}) after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn request(lab: &Lab, ca: &str, vip: &str) -> Option<String> {
    let o = lab.exec(
        "client",
        &format!(
            "curl -s -D - -o /dev/null --max-time 1 --cacert {ca} https://{vip}:16443/healthz"
        ),
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    if !o.status.success() || !out.starts_with("HTTP/1.1 200") {
        return None;
    }
    out.lines().find_map(|l| {
        l.strip_prefix("X-Served-By: ")
            .map(|s| s.trim().to_string())
    })
}

/// Sends `n` requests 200 ms apart; returns (succeeded, failed, which apiserver served each success).
fn traffic(lab: &Lab, ca: &str, vip: &str, n: usize) -> (usize, usize, Vec<String>) {
    let (mut ok, mut bad, mut served) = (0, 0, Vec::new());
    for _ in 0..n {
        match request(lab, ca, vip) {
            Some(s) => {
                ok += 1;
                served.push(s)
            }
            None => bad += 1,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    (ok, bad, served)
}

#[test]
fn vip_and_load_balancer_fail_over() {
    if !lab_available("vip_and_load_balancer_fail_over") {
        return;
    }
    let c = Cluster::default_cluster();
    let vip = c.endpoint.vip.to_string();
    let s = secrets();
    let mut lab = Lab::new(
        "a",
        &[
            ("m1", "192.168.20.20/24"),
            ("m2", "192.168.20.21/24"),
            ("m3", "192.168.20.22/24"),
            ("client", "192.168.20.40/24"),
        ],
    );
    let root = lab.dir.clone();
    let ca = root.join("ca.crt");
    put(&ca, &s.ca.cert, 0o644);
    let record = root.join("deleted-nodes");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/tls_backend.py");
    let mut masters = Vec::new();
    for (i, m) in MASTERS.iter().enumerate() {
        let ip = c.masters[i].ip;
        let dir = root.join(m);
        let (cert, key) = pki::issue(
            &s.ca,
            &LeafSpec {
                cn: "kube-apiserver",
                ips: &[ip.into(), c.endpoint.vip.into()],
                server: true,
                days: 1,
                ..Default::default()
            },
        )
        .unwrap();
        put(&dir.join("apiserver.crt"), &cert, 0o644);
        put(&dir.join("apiserver.key"), &key, 0o600);
        put(
            &dir.join("kube-apiserver.yaml"),
            "stand-in manifest: this master runs an apiserver\n",
            0o644,
        );
        let check = dir.join("check_apiserver.sh");
        put(
            &check,
            &keepalived::render_check_script(&CheckParams {
                ip,
                lb_port: c.endpoint.port,
                ca_cert: ca.display().to_string(),
                apiserver_manifest: dir.join("kube-apiserver.yaml").display().to_string(),
            }),
            0o700,
        );
        let ka = keepalived::render_keepalived(
            &c,
            &KeepalivedParams {
                index: i,
                interface: "eth0".into(),
                auth_pass: s.vrrp_auth_pass.clone(),
                check_script: check.display().to_string(),
            },
        )
        .unwrap();
        put(&dir.join("keepalived.conf"), &ka, 0o644);
        let ng = nginx::render_nginx(
            &c,
            &NginxParams {
                stream_module: Some(nginx::DEBIAN_STREAM_MODULE.into()),
                pid_file: dir.join("nginx.pid").display().to_string(),
                error_log: dir.join("nginx-error.log").display().to_string(),
                user: None,
            },
        )
        .unwrap();
        put(&dir.join("nginx.conf"), &ng, 0o644);
        // The real tools accept the rendered files.
        let t = lab.exec(
            m,
            &format!("keepalived -t -f {}/keepalived.conf", dir.display()),
        );
        assert!(
            t.status.success(),
            "keepalived -t: {}",
            String::from_utf8_lossy(&t.stderr)
        );
        let t = lab.exec(
            m,
            &format!(
                "nginx -t -p {d} -e {d}/nginx-error.log -c {d}/nginx.conf",
                d = dir.display()
            ),
        );
        assert!(
            t.status.success(),
            "nginx -t: {}",
            String::from_utf8_lossy(&t.stderr)
        );
        masters.push(Master {
            dir,
            keepalived: None,
            nginx: None,
            apiserver: None,
        });
    }
    let start_master = |lab: &mut Lab, masters: &mut Vec<Master>, i: usize| {
        let m = MASTERS[i];
        let d = masters[i].dir.clone();
        let ds = d.display().to_string();
        if masters[i].apiserver.is_none() {
            masters[i].apiserver = Some(lab.spawn(
                m,
                &[
                    "python3",
                    script.to_str().unwrap(),
                    m,
                    &c.masters[i].ip.to_string(),
                    &format!("{ds}/apiserver.crt"),
                    &format!("{ds}/apiserver.key"),
                    ca.to_str().unwrap(),
                    record.to_str().unwrap(),
                ],
                &d.join("apiserver.log"),
            ));
        }
        if masters[i].nginx.is_none() {
            masters[i].nginx = Some(lab.spawn(
                m,
                &[
                    "nginx",
                    "-p",
                    &ds,
                    "-e",
                    &format!("{ds}/nginx-error.log"),
                    "-c",
                    &format!("{ds}/nginx.conf"),
                    "-g",
                    "daemon off;",
                ],
                &d.join("nginx.out"),
            ));
        }
        if masters[i].keepalived.is_none() {
            masters[i].keepalived = Some(lab.spawn(
                m,
                &[
                    "keepalived",
                    "-n",
                    "-l",
                    "-D",
                    "-f",
                    &format!("{ds}/keepalived.conf"),
                    "-p",
                    &format!("{ds}/keepalived.pid"),
                    "-r",
                    &format!("{ds}/vrrp.pid"),
                    "-c",
                    &format!("{ds}/checkers.pid"),
                ],
                &d.join("keepalived.log"),
            ));
        }
    };
    for i in 0..3 {
        start_master(&mut lab, &mut masters, i);
    }
    let cas = ca.display().to_string();

    // 1. The VIP lands on exactly one master and the LB answers through it, spreading over the apiservers.
    let (h, t) = wait_holders(&lab, &vip, 1, Duration::from_secs(20));
    eprintln!("VIP on {h:?} after {t:.1?}");
    let (ok, bad, served) = traffic(&lab, &cas, &vip, 15);
    assert!(ok == 15 && bad == 0, "steady state: {ok} ok, {bad} failed");
    let mut backends: Vec<&String> = served.iter().collect();
    backends.sort();
    backends.dedup();
    eprintln!("requests through the VIP reached {backends:?}");
    // The real probes of the init decision (TLS /readyz trusting the cluster CA, TCP ports), from the client.
    let nc = master_config(&c, "k8s-master01");
    let (ncc, ns) = (nc.clone(), lab.ns("client"));
    let (found, d) = in_netns(&ns, move || {
        let env = NetEnv::default();
        (
            decide::probe_cluster(&env, &ncc, "k8s-master01"),
            decide::decide(&env, &ncc, "k8s-master01", false),
        )
    });
    eprintln!("probes found: {found:?}");
    assert!(
        found
            .iter()
            .any(|f| f.contains("through 192.168.20.10:16443")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f.contains("k8s-master02's apiserver")),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|f| f.contains("etcd")),
        "nothing listens on 2379/2380: {found:?}"
    );
    assert!(matches!(d, decide::Decision::Join(_)), "{d:?}");
    let first = h[0];
    let fi = MASTERS.iter().position(|m| *m == first).unwrap();

    // 2. Stop the holder's services (nginx + apiserver; keepalived keeps running): check_lb fails, FAULT, VIP moves.
    let t0 = Instant::now();
    let (n, a) = (
        masters[fi].nginx.take().unwrap(),
        masters[fi].apiserver.take().unwrap(),
    );
    lab.stop(n);
    lab.stop(a);
    let mut first_ok = None;
    let (mut ok, mut bad) = (0, 0);
    while t0.elapsed() < Duration::from_secs(15) {
        match request(&lab, &cas, &vip) {
            Some(_) => {
                ok += 1;
                first_ok.get_or_insert(t0.elapsed());
            }
            None => {
                bad += 1;
                first_ok = None;
            }
        }
        if ok >= 10 && first_ok.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (h2, _) = wait_holders(&lab, &vip, 1, Duration::from_secs(10));
    assert_ne!(
        h2[0], first,
        "VIP must leave the master whose nginx stopped"
    );
    let ft = first_ok.expect("requests through the VIP succeed again after the failover");
    eprintln!("services stopped on {first}: VIP moved to {}; {bad} requests failed, all succeed again {ft:.1?} after the stop", h2[0]);
    assert!(ft < Duration::from_secs(10), "failover took {ft:?}");

    // 3. Take the new holder's link down (a crashed machine): the third master takes the VIP.
    let second = h2[0];
    let t1 = Instant::now();
    lab.link(second, false);
    let third = *MASTERS
        .iter()
        .find(|m| **m != first && **m != second)
        .unwrap();
    while !vip_holders(&lab, &vip).contains(&third) {
        assert!(
            t1.elapsed() < Duration::from_secs(15),
            "the VIP did not move to {third}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let moved = t1.elapsed();
    let mut first_ok = None;
    while t1.elapsed() < Duration::from_secs(20) {
        if request(&lab, &cas, &vip).is_some() {
            if first_ok.is_none() {
                first_ok = Some(t1.elapsed());
            }
            if t1.elapsed() > first_ok.unwrap() + Duration::from_secs(2) {
                break;
            }
        } else {
            first_ok = None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ft = first_ok.expect("requests succeed after the link-down failover");
    let h3 = vip_holders(&lab, &vip);
    assert!(
        h3.contains(&third),
        "the third master {third} holds the VIP: {h3:?}"
    );
    eprintln!(
        "link of {second} down: VIP on {third} after {moved:.1?}; requests (1 s client timeout) succeed steadily \
         {ft:.1?} after the link went down (nginx marks the unreachable backend down after one 2 s connect timeout)"
    );

    // 4. A Node delete through the VIP with a system:masters certificate from the cluster CA.
    let ns = lab.ns("client");
    let (ca_cert, ca_key) = (s.ca.cert.clone(), s.ca.key.clone());
    let server = format!("https://{vip}:16443");
    let r = in_netns(&ns, move || {
        KubeApi::new(&server, &ca_cert, &ca_key, Duration::from_secs(3))
            .unwrap()
            .delete_node("k8s-master03")
    });
    assert_eq!(r.unwrap(), Deleted::Yes);
    let rec = std::fs::read_to_string(&record).unwrap();
    assert!(rec.contains(" k8s-master03 kubeha-firstboot"), "{rec}");

    // 5. Cold stop of everything: no VIP; cold start: the VIP comes back on exactly one master.
    lab.link(second, true);
    start_master(&mut lab, &mut masters, fi);
    for m in masters.iter_mut() {
        for pid in [m.keepalived.take(), m.nginx.take(), m.apiserver.take()]
            .into_iter()
            .flatten()
        {
            lab.stop(pid);
        }
    }
    let (h, _) = wait_holders(&lab, &vip, 0, Duration::from_secs(10));
    assert!(h.is_empty());
    assert!(
        request(&lab, &cas, &vip).is_none(),
        "nothing answers on the VIP when everything is down"
    );
    let (ncc, ns) = (nc.clone(), lab.ns("client"));
    let d = in_netns(&ns, move || {
        decide::decide(&NetEnv::default(), &ncc, "k8s-master01", false)
    });
    assert!(
        matches!(&d, decide::Decision::Wait(w) if w.contains("1 of 3")),
        "nothing answers and nobody attests: the designated master waits, got {d:?}"
    );
    // master02 and master03 answer attestations over real TCP in their own namespaces (keyed by the cluster's
    // certificate key); then, and only then, the designated master initializes.
    let key =
        kubeha_firstboot::cluster::attest::key(&nc.control_plane.as_ref().unwrap().certificate_key);
    let responders: Vec<_> = [1, 2]
        .into_iter()
        .map(|i| {
            let m = c.masters[i].clone();
            in_netns(&lab.ns(MASTERS[i]), move || {
                kubeha_firstboot::cluster::attest::Responder::start(
                    key,
                    std::net::SocketAddrV4::new(m.ip, kubeha_firstboot::cluster::attest::PORT),
                    &m.name,
                    kubeha_firstboot::cluster::attest::State::Waiting,
                    "k8s-master01",
                )
                .unwrap()
            })
        })
        .collect();
    let (ncc, ns) = (nc.clone(), lab.ns("client"));
    let d = in_netns(&ns, move || {
        decide::decide(&NetEnv::default(), &ncc, "k8s-master01", false)
    });
    assert_eq!(
        d,
        decide::Decision::Init,
        "nothing answers and a majority attests: the designated master would init"
    );
    drop(responders);
    for i in 0..3 {
        start_master(&mut lab, &mut masters, i);
    }
    let (h, t) = wait_holders(&lab, &vip, 1, Duration::from_secs(20));
    let (ok, bad, _) = traffic(&lab, &cas, &vip, 8);
    assert!(
        ok == 8 && bad == 0,
        "after a cold start: {ok} ok, {bad} failed"
    );
    eprintln!("cold start: VIP on {h:?} after {t:.1?}");

    // 6. Only the holder's apiserver fails: check_apiserver lowers its priority, but with nopreempt nobody takes
    //    over (by design: the holder's nginx still forwards to the healthy apiservers), and requests keep working.
    let hi = MASTERS.iter().position(|m| *m == h[0]).unwrap();
    let a = masters[hi].apiserver.take().unwrap();
    lab.stop(a);
    std::thread::sleep(Duration::from_secs(12)); // fall 3 x interval 3 s, plus margin
    assert_eq!(
        vip_holders(&lab, &vip),
        h,
        "the VIP stays where nginx still works"
    );
    let (ok, bad, served) = traffic(&lab, &cas, &vip, 8);
    assert!(
        ok == 8 && bad == 0,
        "holder's apiserver down: {ok} ok, {bad} failed"
    );
    assert!(
        !served.iter().any(|s| s == h[0]),
        "nothing is served by the stopped apiserver: {served:?}"
    );
    eprintln!(
        "apiserver of holder {} stopped: VIP stays, requests served by {served:?}",
        h[0]
    );
}
