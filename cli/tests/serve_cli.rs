//! `kubeha serve` on loopback, driven as the nodes and the operator drive it: the real binary on 127.0.0.1 with an
//! ephemeral port, the media fixtures of kubeha-image (a small real bundle, the synthetic Rocky 9 ISO), a cluster
//! from `kubeha config init` with MACs. Only 127.0.0.1 is used; the server is stopped by its own pid.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kubeha_model::report::MAX_REPORT_BYTES;
use kubeha_model::{Cluster, KernelArgs, NodeConfig};
use sha2::{Digest, Sha256};
use support::serve::{self, Serve};
use support::{base_iso, cluster_and_secrets, common, glibc_2_34_agent, kubeha, s, text};

const M1_MAC: &str = "52:54:00:12:34:01";
const W1_MAC: &str = "52:54:00:12:34:11";

struct Fixture {
    dir: tempfile::TempDir,
    cluster: PathBuf,
    secrets: PathBuf,
    bundle: PathBuf,
    base: PathBuf,
    agent: PathBuf,
}

/// cluster.toml with MACs for k8s-master01 and k8s-node01, the secrets, a bundle with one OCI blob, the Rocky 9
/// fixture ISO and an EL9-compatible agent ELF.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, secrets) = cluster_and_secrets(dir.path());
    let mut c = Cluster::load(&cluster).unwrap();
    c.masters[0].mac = Some(M1_MAC.into());
    c.workers[0].mac = Some(W1_MAC.into());
    std::fs::write(&cluster, c.to_toml()).unwrap();
    let bundle = dir.path().join("bundle");
    let blob = b"an image layer";
    let blob_path = bundle
        .join("images/blobs/sha256")
        .join(hex::encode(Sha256::digest(blob)));
    std::fs::create_dir_all(blob_path.parent().unwrap()).unwrap();
    std::fs::write(&blob_path, blob).unwrap();
    common::make_bundle_el(&bundle, "x86_64", 9);
    let agent = glibc_2_34_agent(dir.path());
    Fixture {
        cluster,
        secrets,
        bundle,
        base: base_iso("rocky9"),
        agent,
        dir,
    }
}

fn start(f: &Fixture) -> Serve {
    start_at(f, "127.0.0.1:0", None)
}

/// `kubeha serve` listening on `listen`, handing out `url` (default: its own address).
fn start_at(f: &Fixture, listen: &str, public_url: Option<&str>) -> Serve {
    start_with(f, listen, public_url, &[])
}

/// `kubeha serve` listening on `listen`, handing out `url` (default: its own address), with `extra` flags.
fn start_with(f: &Fixture, listen: &str, public_url: Option<&str>, extra: &[&str]) -> Serve {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firstboot/kubeha-firstboot.service");
    let mut args = vec!["--listen", listen, "--threads", "4"];
    args.extend(public_url.map(|u| ["--url", u]).into_iter().flatten());
    args.extend(extra);
    args.extend(["--cluster", s(&f.cluster), "--secrets", s(&f.secrets)]);
    args.extend(["--bundle", s(&f.bundle), "--base", s(&f.base)]);
    args.extend(["--agent", s(&f.agent), "--agent-unit", s(&unit)]);
    let (state, tftp) = (f.dir.path().join("state"), f.dir.path().join("tftp"));
    args.extend(["--state", s(&state), "--tftp", s(&tftp)]);
    let serve = serve::start(&args, &[], Duration::from_secs(120));
    let own = if extra.contains(&"--tls-cert") {
        "https://127.0.0.1:"
    } else {
        "http://127.0.0.1:"
    };
    assert!(
        serve.url.starts_with(public_url.unwrap_or(own)),
        "{}",
        serve.url
    );
    serve
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn get(url: &str) -> (u16, Vec<u8>, Option<u64>) {
    let r = client().get(url).send().unwrap();
    let code = r.status().as_u16();
    let len = r
        .headers()
        .get("content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (code, r.bytes().unwrap().to_vec(), len)
}

fn get_text(url: &str) -> (u16, String) {
    let (c, b, _) = get(url);
    (c, String::from_utf8(b).unwrap())
}

fn post(url: &str, body: impl Into<Vec<u8>>) -> (u16, String) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.into())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// A request written byte for byte (a client library would normalise `..` away).
fn raw_get(addr: &str, path: &str) -> (u16, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

fn fleet(url: &str) -> serde_json::Value {
    let (c, b) = get_text(&format!("{url}/api/fleet"));
    assert_eq!(c, 200, "{b}");
    serde_json::from_str(&b).unwrap()
}

fn row<'a>(f: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no row {name}: {f}"))
}

/// The iPXE script's kernel line, parsed as the installer and agent parse it.
fn kernel_args(script: &str) -> KernelArgs {
    let line = script
        .lines()
        .find(|l| l.starts_with("kernel "))
        .unwrap_or_else(|| panic!("no kernel line:\n{script}"));
    KernelArgs::parse(line).unwrap()
}

/// Compares what `kubeha serve` handed out with `tests/golden/serve/<name>` (KUBEHA_BLESS=1 rewrites it), with the
/// server's URL (its port is ephemeral) as `http://SERVE` and the config pins (the secrets are generated per run) as
/// `SHA256`.
fn golden(name: &str, url: &str, got: &str) {
    let mut text = got.replace(url, "http://SERVE");
    let key = "kubeha.config.sha256=";
    let mut from = 0;
    while let Some(i) = text[from..].find(key).map(|i| from + i + key.len()) {
        let hex = text[i..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(text.len() - i);
        if hex == 64 {
            text.replace_range(i..i + 64, "SHA256");
        }
        from = i;
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/serve")
        .join(name);
    if std::env::var_os("KUBEHA_BLESS").is_some() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &text).unwrap();
    }
    let want = std::fs::read_to_string(&p).unwrap_or_default();
    assert!(
        want == text,
        "Generated output does not match file: {} (KUBEHA_BLESS=1 rewrites it)\n{text}",
        p.display()
    );
}

fn report(node: &str, phase: &str, state: &str, time: &str) -> String {
    serde_json::json!({
        "node": node, "role": if node.contains("master") { "master" } else { "worker" },
        "source": "cmdline", "phase": phase, "state": state, "time": time,
        "decision": if phase == "cluster" { Some("init") } else { None },
        "agent": "kubeha-firstboot/0.1.0",
    })
    .to_string()
}

#[test]
fn serve_installs_each_node_once_and_remembers_across_restarts() {
    let f = fixture();
    let srv = start(&f);
    let u = srv.url.clone();
    let c = Cluster::load(&f.cluster).unwrap();
    let m1 = c.masters[0].name.clone();
    let w1 = c.workers[0].name.clone();

    // The TFTP root: iPXE's loaders (Debian package ipxe) and a script chaining iPXE to this server.
    let tftp = f.dir.path().join("tftp");
    assert_eq!(
        std::fs::read_to_string(tftp.join("boot.ipxe")).unwrap(),
        format!("#!ipxe\n# kubeha serve: this machine's script, by its MAC\nchain {u}/boot.ipxe?mac=${{net0/mac}}\n")
    );
    assert_eq!(
        std::fs::read_to_string(tftp.join("autoexec.ipxe")).unwrap(),
        std::fs::read_to_string(tftp.join("boot.ipxe")).unwrap(),
        "ipxe.efi's autoexec script is the chain script"
    );
    for (name, from) in [
        ("undionly.kpxe", "/usr/lib/ipxe/undionly.kpxe"),
        ("ipxe.efi", "/usr/lib/ipxe/ipxe.efi"),
    ] {
        assert!(
            std::fs::read(tftp.join(name)).ok()
                == Some(std::fs::read(from).expect("the ipxe package")),
            "{name}"
        );
    }

    // The master's iPXE script: the ISO's installer, its kickstart, its config pinned, reports back here.
    let (code, script) = get_text(&format!("{u}/boot.ipxe?mac={M1_MAC}"));
    assert_eq!(code, 200, "{script}");
    assert!(script.starts_with("#!ipxe\n"), "{script}");
    assert!(
        script.contains(&format!("kernel {u}/os/images/pxeboot/vmlinuz "))
            && script.contains(&format!("initrd {u}/os/images/pxeboot/initrd.img"))
            && script.contains(&format!("inst.ks={u}/nodes/{m1}/ks.cfg"))
            && script.contains(&format!("inst.repo={u}/os")),
        "{script}"
    );
    let args = kernel_args(&script);
    assert_eq!(args.name.as_deref(), Some(m1.as_str()));
    assert!(
        !args.reinstall,
        "a first install does not wipe an installed disk"
    );
    let config_url = args.config.as_ref().unwrap().to_string();
    let report_url = args.report.clone().unwrap();
    assert_eq!(report_url, format!("{u}/api/report/52-54-00-12-34-01"));
    golden("boot-master01-install.ipxe", &u, &script);

    // Its config: the bytes whose sha256 the command line pins, with the CA keys.
    let (code, body, len) = get(&config_url);
    assert_eq!(code, 200);
    assert_eq!(len, Some(body.len() as u64));
    assert_eq!(
        hex::encode(Sha256::digest(&body)),
        args.config_sha256.clone().unwrap(),
        "the config served is not the one pinned"
    );
    let nc = NodeConfig::parse(std::str::from_utf8(&body).unwrap(), "served").unwrap();
    assert!(
        nc.control_plane.is_some(),
        "a master's config carries the CA keys"
    );
    assert_eq!(
        nc.bundle.url.as_deref(),
        Some(format!("{u}/kubeha").as_str())
    );

    // Another MAC asking for the master's config is refused, and shown.
    let (code, msg) = get_text(&format!("{u}/nodes/{m1}/52-54-00-12-34-11.toml"));
    assert_eq!(code, 403, "{msg}");
    assert!(!msg.contains("PRIVATE KEY"));
    let (code, msg) = get_text(&format!("{u}/nodes/{m1}/not-a-mac.toml"));
    assert!(code == 400 && msg.starts_with("mac:"), "{code} {msg}");

    // The worker's config: pinned too, no private key.
    let (_, wscript) = get_text(&format!("{u}/boot.ipxe?mac={W1_MAC}"));
    let wargs = kernel_args(&wscript);
    golden("boot-node01-install.ipxe", &u, &wscript);
    assert_eq!(wargs.name.as_deref(), Some(w1.as_str()));
    let (code, wbody, _) = get(&wargs.config.as_ref().unwrap().to_string());
    assert_eq!(code, 200);
    assert_eq!(
        hex::encode(Sha256::digest(&wbody)),
        wargs.config_sha256.unwrap()
    );
    let wtext = String::from_utf8(wbody).unwrap();
    assert!(NodeConfig::parse(&wtext, "worker")
        .unwrap()
        .control_plane
        .is_none());
    assert!(!wtext.contains("PRIVATE KEY"), "{wtext}");

    // The kickstart for the node: its network fixed, the bundle over HTTP from here.
    let (code, ks) = get_text(&format!("{u}/nodes/{m1}/ks.cfg"));
    assert_eq!(code, 200);
    assert!(ks.contains(&format!("--ip={}", c.masters[0].ip)), "{ks}");
    assert!(ks.contains(&format!("{u}/kubeha/rpms")), "{ks}");
    golden("ks-master01.cfg", &u, &ks);

    // The worker's installer, for real: the served kickstart's `%pre` and `%post --nochroot` run by bash with the
    // command line the worker's iPXE script hands out (as kubeha-kickstart's and kubeha-image's tests run them).
    // `%post` (on a fake sysroot) fetches the bundle, the agent and the pinned config from here and reports
    // `installed`: from then on the worker boots its disk.
    let (code, wks) = get_text(&format!("{u}/nodes/{w1}/ks.cfg"));
    assert_eq!(code, 200);
    golden("ks-node01.cfg", &u, &wks);
    let script_of = |head: &str| -> String {
        let section = &wks[wks.find(head).unwrap()..];
        let section = &section[section.find('\n').unwrap() + 1..];
        section[..section.find("%end\n").unwrap()].to_string()
    };
    let kline = wscript.lines().find(|l| l.starts_with("kernel ")).unwrap();
    // `%pre` first, on a fake /sys with one blank disk and an empty /dev (nothing of this machine is probed): it
    // reports `install` (running).
    let pre = f.dir.path().join("pre");
    std::fs::create_dir_all(pre.join("sys/block/vda")).unwrap();
    std::fs::create_dir_all(pre.join("sys/class/net")).unwrap();
    std::fs::create_dir_all(pre.join("dev")).unwrap();
    std::fs::create_dir_all(pre.join("out")).unwrap();
    for (file, v) in [("removable", "0"), ("size", "100000"), ("ro", "0")] {
        std::fs::write(pre.join("sys/block/vda").join(file), format!("{v}\n")).unwrap();
    }
    std::fs::write(pre.join("cmdline"), kline).unwrap();
    std::fs::write(pre.join("pre.sh"), script_of("\n%pre ")).unwrap();
    let o = Command::new("bash")
        .arg(pre.join("pre.sh"))
        .env("KUBEHA_CMDLINE", pre.join("cmdline"))
        .env("KUBEHA_SYS", pre.join("sys"))
        .env("KUBEHA_DEV", pre.join("dev"))
        .env("KUBEHA_OUT", pre.join("out"))
        .env("KUBEHA_CONSOLE", pre.join("console"))
        .env("KUBEHA_HALT", "true")
        .env("KUBEHA_REPORT_ANYWHERE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "%pre: {}", text(&o));
    assert!(!text(&o).contains("could not report"), "{}", text(&o));
    let fl = fleet(&u);
    let r = row(&fl, &w1);
    assert_eq!(
        (&r["phase"], &r["state"]),
        (&serde_json::json!("install"), &serde_json::json!("running")),
        "{r}"
    );
    let section = script_of("%post --nochroot");
    let inst = f.dir.path().join("installer");
    let sysroot = inst.join("sysroot");
    std::fs::create_dir_all(&sysroot).unwrap();
    std::fs::create_dir_all(inst.join("tmp")).unwrap();
    std::fs::write(inst.join("cmdline"), kline).unwrap();
    std::fs::write(inst.join("post.sh"), section).unwrap();
    let o = Command::new("bash")
        .arg(inst.join("post.sh"))
        .env("KUBEHA_SYSROOT", &sysroot)
        .env("KUBEHA_CMDLINE", inst.join("cmdline"))
        .env("KUBEHA_OUT", inst.join("tmp"))
        .env("KUBEHA_REPORT_ANYWHERE", "1")
        // The real agent runs `kubeha-firstboot install`; the served stand-in is what it installs.
        .env("KUBEHA_AGENT", common::node_agent())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "%post: {}", text(&o));
    assert!(!text(&o).contains("could not report"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(sysroot.join("etc/kubeha/node.toml")).unwrap(),
        wtext
    );
    assert!(
        std::fs::read(sysroot.join("usr/local/bin/kubeha-firstboot")).unwrap()
            == std::fs::read(&f.agent).unwrap()
    );
    assert!(sysroot
        .join("var/lib/kubeha/bundle/rpms/kubeha-test-tools-1.0-1.noarch.rpm")
        .is_file());
    let fl = fleet(&u);
    let r = row(&fl, &w1);
    assert_eq!(r["phase"], "installed", "{r}");
    assert_eq!(r["installed"], true, "{r}");
    let (_, wscript2) = get_text(&format!("{u}/boot.ipxe?mac={W1_MAC}"));
    assert!(!wscript2.contains("kernel "), "{wscript2}");
    golden("boot-node01-installed.ipxe", &u, &wscript2);

    // The bundle: repo metadata, an RPM and an OCI blob, byte for byte with their lengths; the boot files are the
    // ISO's.
    let manifest = kubeha_model::bundle::BundleManifest::load(&f.bundle).unwrap();
    let blob = manifest
        .files
        .iter()
        .find(|e| e.path.starts_with("images/blobs/sha256/"))
        .expect("the fixture bundle lists its blob")
        .path
        .clone();
    for rel in [
        "rpms/repodata/repomd.xml",
        "rpms/kubeha-test-tools-1.0-1.noarch.rpm",
        blob.as_str(),
        "bundle.toml",
    ] {
        let (code, body, len) = get(&format!("{u}/kubeha/{rel}"));
        let want = std::fs::read(f.bundle.join(rel)).unwrap();
        assert_eq!(code, 200, "{rel}");
        assert_eq!(len, Some(want.len() as u64), "{rel}: Content-Length");
        assert!(body == want, "{rel}: the bytes differ");
    }
    let (code, agent, _) = get(&format!("{u}/kubeha/agent/kubeha-firstboot"));
    assert!(code == 200 && agent == std::fs::read(&f.agent).unwrap());
    let work = f.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (code, vmlinuz, len) = get(&format!("{u}/os/images/pxeboot/vmlinuz"));
    assert_eq!(code, 200);
    assert_eq!(len, Some(vmlinuz.len() as u64));
    assert!(vmlinuz == common::iso_file(&f.base, "/images/pxeboot/vmlinuz", &work));

    // Nothing outside the bundle's list and the ISO's tree, however the path is spelled.
    std::fs::write(f.bundle.join("unlisted.txt"), "not in bundle.toml").unwrap();
    for p in [
        "/kubeha/../cluster.toml",
        "/kubeha/%2e%2e/cluster.toml",
        "/kubeha/rpms/../../cluster.toml",
        "/os/../../cluster.toml",
        "/os/%2e%2e/%2e%2e/cluster.toml",
        "/os//etc/passwd",
        "/kubeha/unlisted.txt",
    ] {
        let (code, resp) = raw_get(srv.addr(), p);
        assert!(code == 404 || code == 400, "{p}: {code}\n{resp}");
        assert!(
            !resp.contains("[endpoint]") && !resp.contains("not in bundle.toml"),
            "{p}: {resp}"
        );
    }
    // (An unlisted file fails the bundle's verification at the next start.)
    std::fs::remove_file(f.bundle.join("unlisted.txt")).unwrap();

    // Bad and unknown MACs: 400 naming the parameter; an unknown machine boots its disk and is shown.
    let (code, msg) = get_text(&format!("{u}/boot.ipxe?mac=zz:zz"));
    assert!(code == 400 && msg.starts_with("mac:"), "{code} {msg}");
    let (code, msg) = get_text(&format!("{u}/boot.ipxe"));
    assert!(code == 400 && msg.starts_with("mac:"), "{code} {msg}");
    let (code, unk) = get_text(&format!("{u}/boot.ipxe?mac=52:54:00:de:ad:01"));
    assert_eq!(code, 200);
    assert!(
        unk.contains("exit") && !unk.contains("kernel") && !unk.contains("kubeha.config"),
        "{unk}"
    );
    golden("boot-unknown.ipxe", &u, &unk);

    // Reports: the installer's, then every phase of the agent; a replay is ignored.
    let phases = [
        ("install", "running"),
        ("installed", "ok"),
        ("config", "ok"),
        ("os", "ok"),
        ("packages", "ok"),
        ("runtime", "ok"),
        ("cluster", "ok"),
        ("done", "ok"),
    ];
    for (i, (phase, state)) in phases.iter().enumerate() {
        let mut doc: serde_json::Value = serde_json::from_str(&report(
            &m1,
            phase,
            state,
            &format!("2026-12-05T12:0{i}:00Z"),
        ))
        .unwrap();
        // The master's cluster phase: it holds the VIP and lists etcd's members.
        if *phase == "cluster" {
            doc["vip_holder"] = true.into();
            doc["etcd_members"] = serde_json::json!([m1]);
        }
        let (code, body) = post(&report_url, doc.to_string());
        assert_eq!(code, 200, "{phase}: {body}");
        assert!(body.contains("\"accepted\":true"), "{phase}: {body}");
    }
    let replay = report(&m1, "done", "ok", "2026-12-05T12:07:00Z");
    let (code, body) = post(&report_url, replay.clone());
    assert!(
        code == 200 && body.contains("\"replay\":true"),
        "{code} {body}"
    );
    let fl = fleet(&u);
    let r = row(&fl, &m1);
    assert_eq!(r["phase"], "done", "{r}");
    assert_eq!(r["decision"], "init", "{r}");
    assert_eq!(r["installed"], true, "{r}");
    assert_eq!(r["ip"], "127.0.0.1", "{r}");
    let done_events = fl["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"] == m1.as_str() && e["what"] == "done ok")
        .count();
    assert_eq!(done_events, 1, "a replay is not a second event: {fl}");
    assert_eq!(fl["vip_holder"], m1.as_str(), "{fl}");
    assert_eq!(r["vip_holder"], true, "{r}");
    assert_eq!(
        fl["etcd_members"]["members"],
        serde_json::json!([m1]),
        "{fl}"
    );
    assert_eq!(fl["etcd_members"]["reported_by"], m1.as_str(), "{fl}");
    assert_eq!(row(&fl, &w1)["vip_holder"], serde_json::Value::Null, "{fl}");
    // A member name that is not one: 400 naming the field.
    let mut bad: serde_json::Value =
        serde_json::from_str(&report(&m1, "done", "ok", "2026-12-05T12:08:30Z")).unwrap();
    bad["etcd_members"] = serde_json::json!(["<img src=x>"]);
    let (code, body) = post(&report_url, bad.to_string());
    assert!(
        code == 400 && body.starts_with("report.etcd_members:"),
        "{code} {body}"
    );

    // Bad reports: too large, not JSON, not a report; each with its reason.
    let (code, body) = post(&report_url, vec![b' '; MAX_REPORT_BYTES + 1]);
    assert_eq!(code, 413, "{body}");
    let (code, body) = post(&report_url, "{\"node\": ");
    assert!(code == 400 && body.starts_with("report:"), "{code} {body}");
    let (code, body) = post(
        &report_url,
        report(&m1, "reboot", "ok", "2026-12-05T12:09:00Z"),
    );
    assert!(
        code == 400 && body.starts_with("report.phase:"),
        "{code} {body}"
    );
    let (code, body) = post(
        &format!("{u}/api/report/zz"),
        report(&m1, "os", "ok", "2026-12-05T12:09:00Z"),
    );
    assert!(code == 400 && body.starts_with("mac:"), "{code} {body}");

    // A second machine claiming the master's name: refused, and shown on its row.
    let (code, body) = post(
        &format!("{u}/api/report/52-54-00-99-99-99"),
        report(&m1, "config", "ok", "2026-12-05T12:10:00Z"),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains(M1_MAC), "{body}");

    // Install once: the installed master boots its disk, and its config (CA keys) is gone.
    let (code, script) = get_text(&format!("{u}/boot.ipxe?mac={M1_MAC}"));
    assert_eq!(code, 200);
    assert!(
        script.contains("\nexit\n") && !script.contains("kernel "),
        "{script}"
    );
    let (code, msg) = get_text(&config_url);
    assert_eq!(code, 410, "{msg}");
    assert!(!msg.contains("PRIVATE KEY"));

    // `kubeha status` prints the same fleet.
    let o = kubeha(&["status", "--server", &u]);
    assert!(o.status.success(), "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("{m1} ")))
        .unwrap_or_else(|| panic!("{table}"));
    for want in [
        "master",
        M1_MAC,
        "127.0.0.1",
        "done (ok), installed",
        "init, VIP holder",
        "refused: ",
    ] {
        assert!(line.contains(want), "{want:?} not in {line:?}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("unknown machine") && l.contains("52:54:00:de:ad:01")),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "control plane (masters that reported their cluster phase done): {m1} (init)\n"
        )),
        "{table}"
    );
    assert!(
        table.contains(&format!("VIP holder (as the nodes report it): {m1}\n")),
        "{table}"
    );
    assert!(
        table.contains(&format!("etcd members: {m1} (as {m1} listed them at ")),
        "{table}"
    );
    let o = kubeha(&["status", "--server", &u, "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(row(&j, &m1)["phase"], "done");

    // A restart (and a line torn by a crash) keeps everything.
    let before = fleet(&u);
    drop(srv);
    let journal = f.dir.path().join("state/journal.jsonl");
    let mut j = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    j.write_all(br#"{"kind":"report","at":"2026-12-05T"#)
        .unwrap();
    drop(j);
    let srv = start(&f);
    let u = srv.url.clone();
    let after = fleet(&u);
    // (Seconds in phase go on ticking; everything else is the same.)
    let rows = |f: &serde_json::Value| {
        let mut n = f["nodes"].clone();
        for r in n.as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("in_phase_s");
        }
        n
    };
    assert_eq!(rows(&before), rows(&after), "rows after the restart");
    assert_eq!(before["unknown"], after["unknown"]);
    let (_, script) = get_text(&format!("{u}/boot.ipxe?mac={M1_MAC}"));
    assert!(
        !script.contains("kernel "),
        "still installed after the restart: {script}"
    );
    let (code, body) = post(&format!("{u}/api/report/52-54-00-12-34-01"), replay);
    assert!(
        code == 200 && body.contains("\"replay\":true"),
        "replays are known after a restart: {body}"
    );

    // Reimage: the next boot installs again and wipes the disk; the config is served again.
    let o = kubeha(&["serve", "reimage", &m1, "--server", &u]);
    assert!(o.status.success(), "{}", text(&o));
    let (_, script) = get_text(&format!("{u}/boot.ipxe?mac={M1_MAC}"));
    let args2 = kernel_args(&script);
    assert!(args2.reinstall, "{script}");
    golden("boot-master01-reinstall.ipxe", &u, &script);
    // (This run listens on another port, so the config's bundle URL, and its pin, differ from the first run's.)
    let (code, body, _) = get(&args2.config.as_ref().unwrap().to_string());
    assert_eq!(code, 200);
    assert_eq!(
        hex::encode(Sha256::digest(&body)),
        args2.config_sha256.unwrap()
    );
    let (code, body) = post(&format!("{u}/api/reimage/{m1}"), "");
    assert_eq!(
        code, 403,
        "a reimage without the header (a cross-site form): {body}"
    );
    let o = kubeha(&["serve", "reimage", "nosuchnode", "--server", &u]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!srv.log().contains("PRIVATE KEY"), "{}", srv.log());
}

/// A server-sent events client: `GET /events` on a raw connection, read event by event.
struct EventStream {
    reader: BufReader<TcpStream>,
}

impl EventStream {
    /// Connects; returns the status code, and the stream when it is 200 `text/event-stream`.
    fn open(addr: &str) -> (u16, Option<EventStream>) {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            c,
            "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(c);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if code != 200 {
            return (code, None);
        }
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{head}"
        );
        (code, Some(EventStream { reader }))
    }

    /// The next `fleet` event's document (fails after the read timeout).
    fn next(&mut self) -> serde_json::Value {
        let (mut event, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("an event in time");
            assert!(n > 0, "the server closed the stream");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if event == "fleet" {
                    return serde_json::from_str(&data).unwrap();
                }
                (event, data) = (String::new(), String::new());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
    }
}

/// Live updates: a client of `GET /events` gets the fleet at once and again, unasked, soon after a report arrives;
/// `--max-event-clients 2` answers the third client 503, and a closed stream gives its place back.
#[test]
fn events_stream_a_report_to_live_clients_and_refuse_beyond_the_limit() {
    let f = fixture();
    let srv = start_with(&f, "127.0.0.1:0", None, &["--max-event-clients", "2"]);
    let u = srv.url.clone();
    let c = Cluster::load(&f.cluster).unwrap();
    let m1 = c.masters[0].name.clone();
    let (code, a) = EventStream::open(srv.addr());
    assert_eq!(code, 200);
    let mut a = a.unwrap();
    let first = a.next();
    assert_eq!(
        row(&first, &m1)["phase"],
        serde_json::Value::Null,
        "{first}"
    );
    assert_eq!(first["cluster"], c.cluster.name.as_str());

    let sent = Instant::now();
    let (code, body) = post(
        &format!("{u}/api/report/52-54-00-12-34-01"),
        report(&m1, "os", "ok", "2026-12-05T12:00:00Z"),
    );
    assert_eq!(code, 200, "{body}");
    // Events keep coming (heartbeats every few seconds): the first that shows the report, within a heartbeat.
    let ev = loop {
        let ev = a.next();
        if row(&ev, &m1)["phase"] == "os" {
            break ev;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "no event with the report: {ev}"
        );
    };
    let took = sent.elapsed();
    eprintln!("report to event: {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(row(&ev, &m1)["state"], "ok");
    assert_eq!(
        ev["nodes"],
        fleet(&u)["nodes"],
        "the stream and /api/fleet agree"
    );

    // Two clients at most: the third is answered 503 (the page then polls).
    let (code, b) = EventStream::open(srv.addr());
    assert_eq!(code, 200);
    let (code, none) = EventStream::open(srv.addr());
    assert_eq!(code, 503, "a third client");
    assert!(none.is_none());
    // The page and /api/fleet still answer while the streams are full.
    let (code, page) = get_text(&format!("{u}/"));
    assert!(code == 200 && page.contains("EventSource"), "{code}");
    assert_eq!(
        fleet(&u)["nodes"].as_array().unwrap().len(),
        c.nodes().count()
    );

    // A client that goes away gives its place back (noticed at the stream's next write).
    drop(a);
    let closed = Instant::now();
    let mut c3 = loop {
        match EventStream::open(srv.addr()) {
            (200, Some(s)) => break s,
            (503, _) if closed.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(500))
            }
            (code, _) => panic!("{code} {:?} after a client closed", closed.elapsed()),
        }
    };
    assert_eq!(row(&c3.next(), &m1)["phase"], "os");
    drop(b);
    assert!(!srv.log().contains("PRIVATE KEY"), "{}", srv.log());
}

/// HTTPS: `--tls-cert`/`--tls-key` with a certificate for 127.0.0.1 (rcgen); curl trusting it (`--cacert`) gets
/// the master's iPXE script and its config, whose sha256 is the pin on the handed-out command line; without the CA
/// curl refuses the server, plain HTTP gets no config; `kubeha status --cacert` reads the fleet over HTTPS.
#[test]
fn https_serves_a_masters_pinned_config_to_curl_trusting_the_cert() {
    let f = fixture();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = f.dir.path().join("serve.crt");
    let key = f.dir.path().join("serve.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let srv = start_with(
        &f,
        "127.0.0.1:0",
        None,
        &["--tls-cert", s(&cert), "--tls-key", s(&key)],
    );
    let u = srv.url.clone();
    assert!(u.starts_with("https://127.0.0.1:"), "{u}");
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("curl")
    };
    let boot = format!("{u}/boot.ipxe?mac={M1_MAC}");
    let o = curl(&["--cacert", s(&cert), "-f", &boot]);
    assert!(o.status.success(), "{}", text(&o));
    let script = String::from_utf8(o.stdout).unwrap();
    let args = kernel_args(&script);
    let config_url = args.config.as_ref().unwrap().to_string();
    assert!(
        config_url.starts_with(&format!("{u}/nodes/")),
        "{config_url}"
    );
    let o = curl(&["--cacert", s(&cert), "-f", &config_url]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        hex::encode(Sha256::digest(&o.stdout)),
        args.config_sha256.clone().unwrap(),
        "the config served over HTTPS is not the one pinned"
    );
    let nc = NodeConfig::parse(std::str::from_utf8(&o.stdout).unwrap(), "https").unwrap();
    assert!(nc.control_plane.is_some(), "a master's config");
    // Without the CA curl refuses the server (60: the peer's certificate cannot be verified).
    let o = curl(&["-f", &config_url]);
    assert_eq!(o.status.code(), Some(60), "{}", text(&o));
    // Plain HTTP on the HTTPS port gets no config.
    let plain = config_url.replacen("https://", "http://", 1);
    let o = curl(&["-f", &plain]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("PRIVATE KEY"));
    // The live stream over HTTPS: curl reads events until its time is up (exit 28).
    let o = curl(&[
        "--cacert",
        s(&cert),
        "-N",
        "--max-time",
        "3",
        &format!("{u}/events"),
    ]);
    assert_eq!(o.status.code(), Some(28), "{}", text(&o));
    let events = String::from_utf8_lossy(&o.stdout);
    assert!(events.contains("event: fleet\ndata: {"), "{events}");
    // `kubeha status` over HTTPS, with and without the CA.
    let o = kubeha(&["status", "--server", &u, "--cacert", s(&cert)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("k8s-master01 "),
        "{}",
        text(&o)
    );
    let o = kubeha(&["status", "--server", &u]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!srv.log().contains("PRIVATE KEY"), "{}", srv.log());
}

/// The RGBA pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are): width, height,
/// pixels.
fn png_pixels(png: &[u8]) -> (usize, usize, Vec<[u8; 4]>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut w, mut h, mut channels, mut idat) = (0usize, 0usize, 0usize, Vec::new());
    let mut i = 8;
    while i + 8 <= png.len() {
        let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
        let kind = &png[i + 4..i + 8];
        let data = &png[i + 8..i + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("PNG color type {t}"),
                };
                assert_eq!(data[12], 0, "interlaced");
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        i += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = w * channels;
    let mut prev = vec![0u8; stride];
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let (filter, src) = (line[0], &line[1..]);
        let mut cur = vec![0u8; stride];
        for x in 0..stride {
            let a = if x >= channels {
                cur[x - channels] as i16
            } else {
                0
            };
            let b = prev[x] as i16;
            let c = if x >= channels {
                prev[x - channels] as i16
            } else {
                0
            };
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            cur[x] = src[x].wrapping_add(pred as u8);
        }
        for px in cur.chunks(channels) {
            out.push([px[0], px[1], px[2], if channels == 4 { px[3] } else { 255 }]);
        }
        prev = cur;
    }
    (w, h, out)
}

/// How many pixels two screenshots of one size differ in.
fn pixels_differing(a: &Path, b: &Path) -> usize {
    let (wa, ha, pa) = png_pixels(&std::fs::read(a).unwrap());
    let (wb, hb, pb) = png_pixels(&std::fs::read(b).unwrap());
    assert_eq!((wa, ha), (wb, hb), "screenshot sizes");
    pa.iter().zip(&pb).filter(|(x, y)| x != y).count()
}

/// The first master (MAC 52:54:00:12:34:01) reports `installed`, `config`, `os` and `cluster` (holding the VIP,
/// the only etcd member), as the browser tests watch them arrive.
fn post_master_reports(u: &str, m1: &str) {
    for (i, phase) in ["installed", "config", "os", "cluster"].iter().enumerate() {
        let mut doc: serde_json::Value =
            serde_json::from_str(&report(m1, phase, "ok", &format!("2026-12-05T12:0{i}:00Z")))
                .unwrap();
        if *phase == "cluster" {
            doc["vip_holder"] = true.into();
            doc["etcd_members"] = serde_json::json!([m1]);
        }
        let (code, body) = post(
            &format!("{u}/api/report/52-54-00-12-34-01"),
            doc.to_string(),
        );
        assert_eq!(code, 200, "{body}");
    }
}

/// A screenshot of the fleet page by headless Chromium (polling mode, after its fetch ran).
fn screenshot(u: &str, profile: &Path, png: &Path) {
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1400,900",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("{u}/?live=0"))
        .stdin(Stdio::null())
        .output()
        .expect("running chromium (Debian package chromium)");
    assert!(
        o.status.success() && png.is_file(),
        "chromium: {}",
        text(&o)
    );
}

/// What a person sees: screenshots of the fleet page before and after the master reports. Two screenshots with
/// nothing reported in between differ only in the "updated" time; the one after the reports must differ from the
/// one before in far more pixels (the master's row, the control-plane, VIP and etcd lines, the timeline). The PNGs
/// are kept in the target directory (serve-fleet-before.png, serve-fleet-after.png) for a person to look at.
#[test]
fn fleet_page_screenshots_change_when_reports_arrive() {
    let f = fixture();
    let srv = start(&f);
    let u = srv.url.clone();
    let m1 = Cluster::load(&f.cluster).unwrap().masters[0].name.clone();
    let profile = f.dir.path().join("chromium");
    let shot = |name: &str| {
        let p = f.dir.path().join(name);
        screenshot(&u, &profile, &p);
        p
    };
    let before1 = shot("before1.png");
    std::thread::sleep(Duration::from_millis(1100));
    let before2 = shot("before2.png");
    post_master_reports(&u, &m1);
    let after = shot("after.png");
    let noise = pixels_differing(&before1, &before2);
    let change = pixels_differing(&before2, &after);
    eprintln!("pixels differing: {noise} with nothing reported, {change} after the reports");
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::copy(&before2, keep.join("serve-fleet-before.png")).unwrap();
    std::fs::copy(&after, keep.join("serve-fleet-after.png")).unwrap();
    assert!(change > 2000, "the page barely changed: {change} pixels");
    assert!(
        change > 5 * noise.max(1),
        "the reports changed {change} pixels, no more than time alone ({noise})"
    );
}

/// The fleet page in a real browser (headless Chromium, Debian's `chromium`): after reports arrive, its script has
/// fetched `/api/fleet` and the DOM holds one row per node with the reported phase and decision, and an "unknown
/// machine" row.
#[test]
fn fleet_page_rows_in_headless_chromium() {
    let f = fixture();
    let srv = start(&f);
    let u = srv.url.clone();
    let c = Cluster::load(&f.cluster).unwrap();
    let m1 = c.masters[0].name.clone();
    let (code, _) = get_text(&format!("{u}/boot.ipxe?mac=52:54:00:de:ad:02"));
    assert_eq!(code, 200);
    post_master_reports(&u, &m1);
    // The script fetches after load; the virtual time budget lets it run (and its fetch finish) before the dump.
    // `?live=0`: polling only, since a virtual time budget never runs out while an event stream is open (the
    // stream itself is tested by events_stream_a_report_to_live_clients_and_refuse_beyond_the_limit).
    let profile = f.dir.path().join("chromium");
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("{u}/?live=0"))
        .stdin(Stdio::null())
        .output()
        .expect("running chromium (Debian package chromium)");
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "chromium: {}", text(&o));
    assert!(
        dom.contains("data-updated=\""),
        "the script never rendered a fleet:\n{dom}"
    );
    assert!(
        dom.contains("data-mode=\"polling\""),
        "?live=0 polls:\n{dom}"
    );
    let tr = |key: &str| -> String {
        let start = dom
            .find(key)
            .unwrap_or_else(|| panic!("no {key} in the DOM:\n{dom}"));
        let end = dom[start..].find("</tr>").unwrap() + start;
        dom[start..end].to_string()
    };
    let r = tr(&format!("data-node=\"{m1}\""));
    for want in [
        ">master<",
        M1_MAC,
        ">cluster (ok), installed<",
        ">init, VIP holder<",
        ">reimage</button>",
    ] {
        assert!(r.contains(want), "{want:?} not in the row: {r}");
    }
    for n in c.masters.iter().chain(&c.workers) {
        tr(&format!("data-node=\"{}\"", n.name));
    }
    let unk = tr("data-unknown=\"52:54:00:de:ad:02\"");
    assert!(unk.contains(">unknown machine<"), "{unk}");
    assert!(
        dom.contains(&format!("cluster phase done): {m1} (init)</p>")),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("VIP holder (as the nodes report it): {m1}</p>")),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("etcd members: {m1} (as {m1} listed them at ")),
        "{dom}"
    );
}

/// Debian's chromedriver (package chromium-driver) on a free loopback port, driving one headless Chromium over
/// W3C WebDriver (plain HTTP and JSON). Dropping it ends the session (Chromium quits), then kills chromedriver's
/// own process group (its pid: it was started as the group's leader, so Chromium goes with it if it lingers).
struct WebDriver {
    child: std::process::Child,
    base: String,
    session: Option<String>,
    log: PathBuf,
    http: reqwest::blocking::Client,
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            let _ = self
                .http
                .delete(format!("{}/session/{id}", self.base))
                .timeout(Duration::from_secs(10))
                .send();
        }
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

impl WebDriver {
    /// chromedriver, once it says it is ready, and a session of headless Chromium with its profile in `dir`.
    fn start(dir: &Path) -> WebDriver {
        use std::os::unix::process::CommandExt;
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("chromedriver.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting chromedriver (Debian package chromium-driver)");
        let mut wd = WebDriver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            log,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        let t = Instant::now();
        loop {
            let ready = wd
                .http
                .get(format!("{}/status", wd.base))
                .timeout(Duration::from_secs(5))
                .send()
                .ok()
                .and_then(|r| r.json::<serde_json::Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            if let Ok(Some(st)) = wd.child.try_wait() {
                panic!("chromedriver exited ({st}): {}", wd.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "chromedriver not ready after 30 s: {}",
                wd.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = dir.join("profile");
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--window-size=1400,900", format!("--user-data-dir={}", profile.display())],
            },
        }}});
        let v = wd.call(reqwest::Method::POST, "/session", caps);
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId: {v}"));
        wd.session = Some(id.to_string());
        wd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One WebDriver command; its `value`, or a panic with the driver's error.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .json(&body)
            .send()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}\n{}", self.log()));
        let code = r.status();
        let v: serde_json::Value = r.json().unwrap();
        assert!(
            code.is_success(),
            "WebDriver {method} {path}: {code} {v}\n{}",
            self.log()
        );
        v["value"].clone()
    }

    fn session(&self) -> String {
        format!("/session/{}", self.session.as_ref().unwrap())
    }

    fn goto(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("{}/url", self.session()),
            serde_json::json!({ "url": url }),
        );
    }

    /// Runs `script` (a function body) in the page; its return value.
    fn exec(&self, script: &str, args: serde_json::Value) -> serde_json::Value {
        self.call(
            reqwest::Method::POST,
            &format!("{}/execute/sync", self.session()),
            serde_json::json!({ "script": script, "args": args }),
        )
    }
}

/// What the fleet page shows: the status line's mode (`events` or `polling`) and text, whether the test's marker
/// is still on the window (the same document, no reload), the count of `/api/fleet` fetches the page made, the
/// modes the status line was set to since the watch began, one node's row (cell class to text) and the page text.
const PAGE_STATE: &str = r#"
const s = document.getElementById("status");
const tr = document.querySelector('#fleet tr[data-node="' + arguments[0] + '"]');
return {
  mode: s.dataset.mode || null,
  updated: s.dataset.updated || null,
  status: s.textContent,
  marker: window.__kubehaMarker === undefined ? null : window.__kubehaMarker,
  fetches: performance.getEntriesByType("resource").filter(e => e.name.endsWith("/api/fleet")).length,
  modes: window.__kubehaModes || null,
  row: tr ? Object.fromEntries(Array.from(tr.cells, td => [td.className, td.textContent])) : null,
  text: document.body.innerText,
};
"#;

/// Polls the page (every 100 ms, up to `secs`) until `done` holds for its state; `check` must hold for every state
/// seen on the way. Returns the last state; panics with the page's text otherwise.
fn wait_page(
    wd: &WebDriver,
    node: &str,
    secs: u64,
    what: &str,
    check: impl Fn(&serde_json::Value) -> Result<(), String>,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let st = wd.exec(PAGE_STATE, serde_json::json!([node]));
        if let Err(e) = check(&st) {
            panic!("{e}, while waiting for {what}; the page:\n{}", st["text"]);
        }
        if done(&st) {
            eprintln!("{what}: {:?}", t.elapsed());
            return st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "no {what} after {secs} s; state {st}\nthe page:\n{}",
            st["text"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fleet page live in a real browser: Debian's Chromium driven through chromedriver (WebDriver) opens `/`
/// without `?live=0`, so its EventSource on `/events` is open the whole time. Once the status line says `events`,
/// the master's reports are posted; the row changes in the same document (a marker set on the window before the
/// reports is still there), the status line was only ever set to `events` in between, and the page fetched
/// `/api/fleet` not once across more than a polling interval: the change came over the stream. Then the server
/// stops: the page falls back to polling (and says it cannot reach the server); the server starts again on the
/// same port: EventSource reconnects and the page is live again, still without a reload.
#[test]
fn fleet_page_live_over_event_source_in_chromium_via_webdriver() {
    let f = fixture();
    let srv = start(&f);
    let u = srv.url.clone();
    let c = Cluster::load(&f.cluster).unwrap();
    let m1 = c.masters[0].name.clone();
    let wd = WebDriver::start(&f.dir.path().join("webdriver"));
    wd.goto(&format!("{u}/"));
    let any = |_: &serde_json::Value| -> Result<(), String> { Ok(()) };
    let st = wait_page(&wd, &m1, 30, "the page live over /events", any, |st| {
        st["mode"] == "events" && st["row"].is_object() && st["fetches"].as_u64() >= Some(1)
    });
    // (The page's first fetch, made at load, is done; a polling one that was on its way when the stream took
    // over is given time to finish before the count is taken.)
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(st["row"]["phase"], "-", "nothing reported yet: {st}");
    assert!(st["status"].as_str().unwrap().ends_with(" (live)"), "{st}");

    // Watch: a marker on the window, every value the status line's mode is set to, the page's /api/fleet fetches.
    let armed = Instant::now();
    let v = wd.exec(
        r#"window.__kubehaMarker = 1;
        window.__kubehaModes = [];
        const s = document.getElementById("status");
        new MutationObserver(ms => { for (const m of ms) window.__kubehaModes.push(m.target.dataset.mode); })
          .observe(s, {attributes: true, attributeFilter: ["data-mode"]});
        return performance.getEntriesByType("resource").filter(e => e.name.endsWith("/api/fleet")).length;"#,
        serde_json::json!([]),
    );
    let fetches = v.as_u64().unwrap_or_else(|| panic!("{v}"));
    post_master_reports(&u, &m1);
    let live = |st: &serde_json::Value| -> Result<(), String> {
        if st["mode"] != "events" {
            return Err(format!("the page left the event stream: {}", st["mode"]));
        }
        if st["marker"] != 1 {
            return Err("the page was reloaded (the marker is gone)".into());
        }
        if let Some(m) = st["modes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| *m != "events")
        {
            return Err(format!("the status line's mode was set to {m}"));
        }
        Ok(())
    };
    let st = wait_page(&wd, &m1, 30, "the reports on the page", live, |st| {
        st["row"]["phase"] == "cluster (ok), installed"
    });
    // Past a polling interval (2 s) since the watch began: had the page polled, it would have fetched by now.
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(armed.elapsed()));
    let st2 = wd.exec(PAGE_STATE, serde_json::json!([m1]));
    live(&st2).unwrap_or_else(|e| panic!("{e}; the page:\n{}", st2["text"]));
    assert_eq!(
        st2["fetches"].as_u64(),
        Some(fetches),
        "the page fetched /api/fleet while its stream was open: {st2}"
    );
    assert!(
        !st2["modes"].as_array().unwrap().is_empty(),
        "the page rendered nothing after the reports: {st2}"
    );
    let row = &st["row"];
    for (cell, want) in [
        ("name", m1.as_str()),
        ("role", "master"),
        ("mac", M1_MAC),
        ("phase", "cluster (ok), installed"),
        ("decision", "init, VIP holder"),
        ("error", "-"),
        ("action", "reimage"),
    ] {
        assert_eq!(
            row[cell], want,
            "{cell} in the row {row}; the page:\n{}",
            st["text"]
        );
    }
    let text = st["text"].as_str().unwrap();
    for want in [
        format!("cluster phase done): {m1} (init)"),
        format!("VIP holder (as the nodes report it): {m1}"),
        format!("etcd members: {m1} (as {m1} listed them at "),
    ] {
        assert!(text.contains(&want), "{want:?} not on the page:\n{text}");
    }

    // The server goes away: the stream errs, the page polls (and says it cannot reach the server).
    let addr = srv.addr().to_string();
    drop(srv);
    let same_doc = |st: &serde_json::Value| -> Result<(), String> {
        if st["marker"] == 1 {
            Ok(())
        } else {
            Err("the page was reloaded (the marker is gone)".into())
        }
    };
    wait_page(&wd, &m1, 30, "the fallback to polling", same_doc, |st| {
        st["mode"] == "polling"
            && st["status"]
                .as_str()
                .unwrap()
                .starts_with("cannot reach kubeha serve")
    });
    // It comes back on the same address: EventSource reconnects by itself, the page is live again.
    let srv = start_at(&f, &addr, Some(&u));
    let st = wait_page(&wd, &m1, 60, "the page live again", same_doc, |st| {
        st["mode"] == "events" && st["status"].as_str().unwrap().ends_with(" (live)")
    });
    assert_eq!(st["row"]["phase"], "cluster (ok), installed", "{st}");
    drop(wd);
    assert!(!srv.log().contains("PRIVATE KEY"), "{}", srv.log());
}

/// A real network boot against `kubeha serve`: QEMU (TCG, SeaBIOS) with QEMU's iPXE ROM loads `--tftp`'s boot.ipxe
/// over slirp's TFTP, chains to the server (the guest reaches the host's loopback as 10.0.2.2), and boots the
/// kernel and initrd of the base ISO with the command line the server handed out; the fixture's /init prints it
/// on ttyS0. Slow (~20 s a boot under TCG, minutes on a loaded machine): `make test-serve-boot`.
#[test]
#[ignore = "QEMU boot: make test-serve-boot"]
fn qemu_bios_ipxe_boots_the_installer_kubeha_serve_hands_out() {
    network_boot(false);
}

/// The same boot under UEFI: OVMF (Debian package ovmf) boots the NIC, whose option ROM is QEMU's iPXE EFI build
/// (efi-virtio.rom, ipxe-qemu): that iPXE, running as a UEFI driver, loads `--tftp`'s `boot.ipxe` over slirp's
/// TFTP and chains to the server, and boots the installer's kernel through its EFI stub with the same command line
/// and pin as under BIOS. (Handing the firmware `ipxe.efi` as DHCP filename instead loops under slirp: Debian's
/// ipxe.efi, 1.0.0+git-20190125, has no autoexec.ipxe and gets `ipxe.efi` again from the same DHCP.)
#[test]
#[ignore = "QEMU boot: make test-serve-boot"]
fn qemu_uefi_pxe_boots_the_installer_kubeha_serve_hands_out() {
    network_boot(true);
}

/// Boots one node (k8s-master01's MAC) from `kubeha serve` in QEMU (TCG), BIOS or UEFI, and checks the kernel
/// command line its installer got.
fn network_boot(uefi: bool) {
    let f = fixture();
    // A free port, so the URL handed out can name the guest's view of it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let guest_url = format!("http://10.0.2.2:{port}");
    let srv = start_at(&f, &format!("127.0.0.1:{port}"), Some(&guest_url));
    let netdev = format!(
        "user,id=n0,tftp={},bootfile=boot.ipxe",
        f.dir.path().join("tftp").display()
    );
    let log = f.dir.path().join("serial.log");
    let mut firmware: Vec<String> = Vec::new();
    if uefi {
        let vars = f.dir.path().join("OVMF_VARS.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)
            .expect("OVMF (Debian package ovmf)");
        firmware = vec![
            "-drive".into(),
            "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            "-drive".into(),
            format!("if=pflash,format=raw,file={}", vars.display()),
        ];
    }
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(&firmware)
        .args([
            "-accel",
            "tcg",
            "-m",
            "512",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .args(["-boot", "n", "-netdev", &netdev, "-device"])
        // QEMU's default ROM for virtio-net-pci (efi-virtio.rom) holds iPXE's BIOS and EFI builds.
        .arg(format!("virtio-net-pci,netdev=n0,mac={M1_MAC},bootindex=1"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64");
    let start = Instant::now();
    let serial = loop {
        std::thread::sleep(Duration::from_millis(500));
        let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        if text.contains("@kubeha-end@") || start.elapsed() > Duration::from_secs(600) {
            break text;
        }
        if let Ok(Some(st)) = qemu.try_wait() {
            panic!(
                "qemu exited ({st}) without the command line:\n{text}\n{}",
                srv.log()
            );
        }
    };
    let _ = qemu.kill();
    let _ = qemu.wait();
    let cl = match (serial.find("@kubeha-cmdline@"), serial.find("@kubeha-end@")) {
        (Some(s), Some(e)) => serial[s + "@kubeha-cmdline@".len()..e].trim().to_string(),
        _ => panic!(
            "no kernel command line after 600 s; serial:\n{serial}\n{}",
            srv.log()
        ),
    };
    eprintln!(
        "booted ({}) in {:.1}s",
        if uefi { "UEFI" } else { "BIOS" },
        start.elapsed().as_secs_f32()
    );
    let args = KernelArgs::parse(&cl).unwrap();
    assert_eq!(args.name.as_deref(), Some("k8s-master01"), "{cl}");
    assert_eq!(
        args.report.as_deref(),
        Some(format!("{guest_url}/api/report/52-54-00-12-34-01").as_str()),
        "{cl}"
    );
    assert!(
        cl.contains(&format!("inst.ks={guest_url}/nodes/k8s-master01/ks.cfg")),
        "{cl}"
    );
    // The pin on the guest's command line is the config the server serves to that MAC.
    let config = args
        .config
        .unwrap()
        .to_string()
        .replace(&guest_url, &format!("http://127.0.0.1:{port}"));
    let (code, body, _) = get(&config);
    assert_eq!(code, 200);
    assert_eq!(
        hex::encode(Sha256::digest(&body)),
        args.config_sha256.unwrap()
    );
    let fl = fleet(&format!("http://127.0.0.1:{port}"));
    assert_eq!(row(&fl, "k8s-master01")["phase"], "pxe", "{fl}");
}
