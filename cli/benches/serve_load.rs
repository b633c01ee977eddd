//! `make bench-serve`: `kubeha serve` under a rack's load, next to nginx serving the same bytes in the same run.
//!
//! The real binary on 127.0.0.1 with a cluster of `KUBEHA_BENCH_NODES` (default 500) nodes, each with a MAC;
//! every simulated node POSTs one report a second (its own MAC's report URL, a new time each) for
//! `KUBEHA_BENCH_SECS` (default 60). Meanwhile one client measures, round-robin, `GET /`, `GET /api/fleet` and
//! `kubeha status --server` against kubeha serve, and nginx (Debian's, started here on another loopback port)
//! serving a static copy of the page and of a `/api/fleet` document (same sizes), plus `curl` fetching that copy
//! as the process-spawning reference for `kubeha status`. Afterwards every report sent and answered 200 must be
//! in the journal, one line each (no report lost): the bench fails otherwise. Prints a markdown table
//! (BENCHMARKS.md). Only loopback is used; both servers are stopped by their pids.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubeha_model::Cluster;
use sha2::{Digest, Sha256};
use support::{base_iso, cluster_and_secrets, common, glibc_2_34_agent, s};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mac(i: usize) -> String {
    format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let nodes = env_or("KUBEHA_BENCH_NODES", 500) as usize;
    let secs = env_or("KUBEHA_BENCH_SECS", 60);
    let dir = tempfile::tempdir().unwrap();
    let (cluster_path, secrets) = cluster_and_secrets(dir.path());
    let mut c = Cluster::load(&cluster_path).unwrap();
    c.networking.node_prefix = 16;
    let template = c.workers[0].clone();
    c.workers.clear();
    for (i, m) in c.masters.iter_mut().enumerate() {
        m.mac = Some(mac(i + 1));
    }
    for i in c.masters.len()..nodes {
        let mut w = template.clone();
        w.name = format!("k8s-node{:03}", i + 1);
        w.ip = format!("192.168.{}.{}", 21 + i / 200, 10 + i % 200)
            .parse()
            .unwrap();
        w.mac = Some(mac(i + 1));
        c.workers.push(w);
    }
    std::fs::write(&cluster_path, c.to_toml()).unwrap();
    let bundle = dir.path().join("bundle");
    let blob = b"an image layer";
    let blob_path = bundle
        .join("images/blobs/sha256")
        .join(hex::encode(Sha256::digest(blob)));
    std::fs::create_dir_all(blob_path.parent().unwrap()).unwrap();
    std::fs::write(&blob_path, blob).unwrap();
    common::make_bundle_el(&bundle, "x86_64", 9);
    let agent = glibc_2_34_agent(dir.path());
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firstboot/kubeha-firstboot.service");
    let state = dir.path().join("state");
    let iso = base_iso("rocky9");
    let serve = support::serve::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "32",
            "--cluster",
            s(&cluster_path),
            "--secrets",
            s(&secrets),
            "--bundle",
            s(&bundle),
            "--base",
            s(&iso),
            "--agent",
            s(&agent),
            "--agent-unit",
            s(&unit),
            "--state",
            s(&state),
        ],
        &[("RUST_LOG", "warn")],
        Duration::from_secs(300),
    );
    let url = serve.url.clone();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // nginx with the same bytes: the page, and a fleet document of this cluster.
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let page = http.get(format!("{url}/")).send().unwrap().bytes().unwrap();
    std::fs::write(www.join("page.html"), &page).unwrap();
    let fleet0 = http
        .get(format!("{url}/api/fleet"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    std::fs::write(www.join("fleet.json"), &fleet0).unwrap();
    let nport = kubeha_lab::free_port("127.0.0.1");
    let ngx = dir.path().join("nginx");
    std::fs::create_dir_all(&ngx).unwrap();
    std::fs::write(
        ngx.join("nginx.conf"),
        format!(
            "daemon off; master_process off; worker_processes 1; user root; pid {0}/nginx.pid; error_log stderr;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {0}/body; proxy_temp_path {0}/proxy;\n\
             fastcgi_temp_path {0}/fcgi; uwsgi_temp_path {0}/uwsgi; scgi_temp_path {0}/scgi;\n\
             types {{ text/html html; application/json json; }}\n\
             server {{ listen 127.0.0.1:{1}; root {2}; }} }}\n",
            ngx.display(),
            nport,
            www.display()
        ),
    )
    .unwrap();
    let nginx = Killed(
        Command::new("nginx")
            .arg("-p")
            .arg(&ngx)
            .arg("-c")
            .arg(ngx.join("nginx.conf"))
            .arg("-e")
            .arg("stderr")
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx (Debian package nginx)"),
    );
    let nurl = format!("http://127.0.0.1:{nport}");
    let up = Instant::now();
    while http.get(format!("{nurl}/page.html")).send().is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "nginx did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The load: `nodes` nodes, one report a second each, spread over the second; 100 sender threads.
    let threads = 100.min(nodes);
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let late = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let base = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut senders = Vec::new();
    for t in 0..threads {
        let (sent, failed, late, url) = (sent.clone(), failed.clone(), late.clone(), url.clone());
        let c = c.clone();
        senders.push(std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mine: Vec<usize> = (t..nodes).step_by(threads).collect();
            let names: Vec<String> = c.nodes().map(|(_, n)| n.name.clone()).collect();
            let roles: Vec<String> = c.nodes().map(|(r, _)| r.to_string()).collect();
            let phases = kubeha_model::report::AGENT_PHASES;
            for tick in 0..secs {
                let due = Duration::from_secs(tick)
                    + Duration::from_millis((t as u64 * 1000) / threads as u64);
                if let Some(w) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(w);
                } else if t0.elapsed() > due + Duration::from_secs(1) {
                    late.fetch_add(1, Ordering::Relaxed);
                }
                for &i in &mine {
                    let when = time::OffsetDateTime::from_unix_timestamp(base + tick as i64)
                        .unwrap()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap();
                    let doc = serde_json::json!({
                        "node": names[i], "role": roles[i], "source": "cmdline",
                        "phase": phases[tick as usize % phases.len()], "state": "running",
                        "time": when, "agent": "kubeha-bench",
                    });
                    let r = http
                        .post(format!("{url}/api/report/{}", mac(i + 1).replace(':', "-")))
                        .json(&doc)
                        .send();
                    let ok = match r {
                        Ok(r) => {
                            let code = r.status();
                            let body = r.text().unwrap_or_default();
                            if code != 200 || !body.contains("\"accepted\":true") {
                                eprintln!("report: {code} {body}");
                            }
                            code == 200 && body.contains("\"accepted\":true")
                        }
                        Err(e) => {
                            eprintln!("report: {e}");
                            false
                        }
                    };
                    if ok {
                        sent.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    // The measurements, round-robin, while the load runs.
    let kubeha = env!("CARGO_BIN_EXE_kubeha");
    let mut lat: Vec<(&str, Vec<f64>)> = [
        "kubeha serve GET /",
        "nginx GET page copy",
        "kubeha serve GET /api/fleet",
        "nginx GET fleet copy",
        "kubeha status (process)",
        "curl nginx fleet copy (process)",
    ]
    .into_iter()
    .map(|n| (n, Vec::new()))
    .collect();
    let mut fleet_bytes = 0usize;
    while t0.elapsed() < Duration::from_secs(secs) {
        for (k, (_, v)) in lat.iter_mut().enumerate() {
            let s = Instant::now();
            let ok = match k {
                0 => http
                    .get(format!("{url}/"))
                    .send()
                    .and_then(|r| r.bytes())
                    .is_ok(),
                1 => http
                    .get(format!("{nurl}/page.html"))
                    .send()
                    .and_then(|r| r.bytes())
                    .is_ok(),
                2 => match http
                    .get(format!("{url}/api/fleet"))
                    .send()
                    .and_then(|r| r.bytes())
                {
                    Ok(b) => {
                        fleet_bytes = b.len();
                        true
                    }
                    Err(_) => false,
                },
                3 => http
                    .get(format!("{nurl}/fleet.json"))
                    .send()
                    .and_then(|r| r.bytes())
                    .is_ok(),
                4 => Command::new(kubeha)
                    .args(["status", "--server", &url])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success()),
                _ => Command::new("curl")
                    .args(["-sf", "-o", "/dev/null", &format!("{nurl}/fleet.json")])
                    .status()
                    .is_ok_and(|s| s.success()),
            };
            assert!(ok, "measurement {k} failed");
            v.push(s.elapsed().as_secs_f64() * 1000.0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for h in senders {
        h.join().unwrap();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let sent = sent.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);

    // No report lost: every accepted report is one journal line.
    let journal = std::fs::read_to_string(state.join("journal.jsonl")).unwrap();
    let journaled = journal
        .lines()
        .filter(|l| l.contains("\"kind\":\"report\"") && l.contains("kubeha-bench"))
        .count() as u64;
    let fleet: serde_json::Value = http
        .get(format!("{url}/api/fleet"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let last = kubeha_model::report::AGENT_PHASES[(secs as usize - 1) % 6];
    let at_last = fleet["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["phase"] == last)
        .count();
    drop(nginx);
    drop(serve);

    println!("\n## kubeha serve under load ({nodes} nodes, one report a second each, {secs} s)\n");
    println!(
        "reports: {} expected, {sent} accepted (200), {failed} failed, {journaled} in the journal; \
         {at_last}/{nodes} nodes show their last phase; {:.0} reports/s over {elapsed:.1} s; sender seconds late > 1 s: {}\n",
        nodes as u64 * secs,
        sent as f64 / elapsed,
        late.load(Ordering::Relaxed)
    );
    println!(
        "page {} bytes, /api/fleet {} bytes\n",
        page.len(),
        fleet_bytes
    );
    println!("| request | samples | p50 ms | p99 ms | p99 against the reference below it |");
    println!("|---|---|---|---|---|");
    let stats: Vec<(&str, usize, f64, f64)> = lat
        .iter_mut()
        .map(|(name, v)| (*name, v.len(), pct(v, 0.50), pct(v, 0.99)))
        .collect();
    for (k, (name, n, p50, p99)) in stats.iter().enumerate() {
        let ratio = if k % 2 == 0 {
            format!("{:.2}x", p99 / stats[k + 1].3)
        } else {
            "(reference)".to_string()
        };
        println!("| {name} | {n} | {p50:.1} | {p99:.1} | {ratio} |");
    }
    let lost = nodes as u64 * secs - journaled;
    assert_eq!(failed, 0, "reports failed");
    assert_eq!(sent, nodes as u64 * secs, "reports not accepted");
    assert_eq!(journaled, sent, "{lost} reports lost");
    assert_eq!(at_last, nodes, "nodes not at their last phase");
    let worst = stats.iter().step_by(2).map(|s| s.3).fold(0.0, f64::max);
    println!("\nkubeha serve p99 worst: {worst:.1} ms (target < 200 ms)");
}
