//! `make demo`: the whole kubeha pipeline, offline, on one machine (`kubeha-lab demo OUT`).
//!
//!   1. a generated local "upstream" on loopback (registry + yum repos + the CNI manifest)
//!   2. kubeha bundle build / verify, the cluster model (`kubeha-lab demo-core`: config, secrets, node configs)
//!   3. kubeha iso and kubeha pxe, and the ISO booted in QEMU to show the kernel got its kubeha.* arguments
//!   4. three masters and two workers as network namespaces running kubeha-firstboot, forming the control plane
//!   5. a failover drill and a rebuild drill (4 and 5: [`crate::demo::cluster`])
//!   6. a final table ([`crate::demo::summary`])
//!
//! This machine has no internet, so stage 1 generates the upstream: small images under the real names the default
//! profile asks for, and RPMs named like the real ones with their dependency shape ([`crate::demo::upstream`], the
//! fixture generator). With internet access the same bundle comes from the real registries and repos with one
//! command: `kubeha bundle build -o bundle`.
//!
//! Everything this starts (the registry, the file server, QEMU) is a child stopped by its own pid when the run ends,
//! failed or not; the node stages' rack ([`crate::demo::fleet::Fleet`]) stops what it started when it is dropped.

use super::cluster::Stages;
use super::fleet::Setup;
use super::upstream;
use super::{info, output, read, run, say, write};
use crate::daemon::{HttpDir, Registry};
use anyhow::{bail, ensure, Context, Result};
use kubeha_model::bundle::Profile;
use kubeha_model::cluster::Cluster;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What a demo run uses: the binaries under test and where things are.
pub struct Demo {
    /// The output directory (bundle, cluster.toml, secrets, media, state).
    pub out: PathBuf,
    /// The checkout (scripts/demo, image/fixtures).
    pub repo: PathBuf,
    /// The kubeha CLI.
    pub kubeha: PathBuf,
    /// The node binary kubeha serve hands out (the EL-compatible one of `make node-binary`).
    pub agent: PathBuf,
    /// The directory `make k8s` fills (kubeadm, kubelet, kubectl).
    pub k8s_bin: PathBuf,
    /// The node stages' hostile drills (make test-demo).
    pub hostile: bool,
}

/// The calico image repository and release the profile names (`<repo>/node:v<release>`, e.g. quay.io/calico and
/// v3.28.2): the stand-in calico.yaml names its images after them.
pub fn calico_of(images: &[String]) -> Option<(String, String)> {
    images.iter().find_map(|i| {
        let (repo, tag) = i.rsplit_once("/node:")?;
        let ok = tag.starts_with('v') && tag[1..].chars().all(|c| c.is_ascii_digit() || c == '.');
        ok.then(|| (repo.to_string(), tag.to_string()))
    })
}

/// A STAND-IN for calico.yaml, in its shape and with its image names (so the bundle carries and the node loads
/// them): the install-cni init container installs the reference CNI plugins and a bridge config
/// ([`crate::demo::upstream::images`] with `cni_plugins`), calico-node and calico-kube-controllers only sleep.
/// `pod_net`: the first two octets of the cluster's /16 pod subnet.
pub fn calico_yaml(repo: &str, ver: &str, pod_net: &str) -> String {
    format!(
        r#"# Generated STAND-IN for calico.yaml {ver} (this machine has no internet)
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: calico-node, namespace: kube-system}}
spec:
  selector: {{matchLabels: {{k8s-app: calico-node}}}}
  template:
    metadata: {{labels: {{k8s-app: calico-node}}}}
    spec:
      hostNetwork: true
      tolerations: [{{operator: Exists}}]
      initContainers:
        - name: install-cni
          image: {repo}/cni:{ver}
          command: ["/bin/sh", "/install-cni.sh"]
          env:
            - {{name: HOST_IP, valueFrom: {{fieldRef: {{fieldPath: status.hostIP}}}}}}
            - {{name: POD_NET, value: "{pod_net}"}}
          volumeMounts:
            - {{name: cni-bin, mountPath: /host/opt/cni/bin}}
            - {{name: cni-net, mountPath: /host/etc/cni/net.d}}
      containers:
        - {{name: calico-node, image: "{repo}/node:{ver}", command: ["/bin/sleep", "2147483647"]}}
      volumes:
        - {{name: cni-bin, hostPath: {{path: /opt/cni/bin}}}}
        - {{name: cni-net, hostPath: {{path: /etc/cni/net.d}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: calico-kube-controllers, namespace: kube-system}}
spec:
  selector: {{matchLabels: {{k8s-app: calico-kube-controllers}}}}
  template:
    metadata: {{labels: {{k8s-app: calico-kube-controllers}}}}
    spec:
      tolerations: [{{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}}]
      containers:
        - {{name: calico-kube-controllers, image: "{repo}/kube-controllers:{ver}", command: ["/bin/sleep", "2147483647"]}}
"#
    )
}

/// The demo profile: the default profile (`default_text`) with its sources pointed at the local upstream. Image
/// names stay the real ones (a registry mirror per registry host of `images`), repos and the CNI manifest come from
/// loopback (`www` serves repos/NAME/ and files/calico.yaml, whose SHA-256 is `calico_sha256`).
pub fn demo_profile(
    default_text: &str,
    profile: &Profile,
    images: &[String],
    registry: &str,
    www: &str,
    calico_sha256: &str,
) -> Result<String> {
    let head = default_text
        .find("[[repos]]")
        .map_or(default_text, |i| &default_text[..i]);
    let head = head.replace(
        "name = \"el9-containerd-calico\"",
        "name = \"demo-el9-containerd-calico\"",
    );
    let mut s = format!("{}\n\n", head.trim_end());
    for r in &profile.repos {
        write!(
            s,
            "[[repos]]\nname = \"{}\"\nbaseurl = \"{www}/repos/{}/\"\n",
            r.name, r.name
        )?;
        if r.base {
            s.push_str("base = true\n");
        }
        s.push('\n');
    }
    let hosts: BTreeSet<&str> = images.iter().filter_map(|i| i.split('/').next()).collect();
    for h in hosts {
        write!(
            s,
            "[[registry-mirrors]]\nregistry = \"{h}\"\nendpoint = \"{registry}\"\nprefix = \"{h}\"\n\n"
        )?;
    }
    write!(
        s,
        "[[files]]\nname = \"calico.yaml\"\nurl = \"{www}/files/calico.yaml\"\nsha256 = \"{calico_sha256}\"\n"
    )?;
    Ok(s)
}

/// The cluster.toml `kubeha config init` printed, as the demo's operator edits it: on a host that boots cgroup v1
/// (hybrid; the lab's nodes share its kernel) the explicit `cgroup = "v1"` a CentOS 7 / EL8 user sets, and every
/// node's MAC as an operator copies it from the rack's inventory: 52:54:00 (QEMU's prefix) and the node IP's last
/// three octets (kubeha serve recognises the nodes by them; the lab gives each node's eth0 its MAC).
pub fn demo_cluster_toml(init: &str, cgroup_v1: bool) -> String {
    let mut out = String::new();
    for line in init.lines() {
        out.push_str(line);
        out.push('\n');
        if cgroup_v1 && line == "[install]" {
            out.push_str("cgroup = \"v1\" # this host boots cgroup v1\n");
        }
        let ip = line
            .strip_prefix("ip = \"")
            .and_then(|r| r.strip_suffix('"'))
            .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok());
        if let Some(ip) = ip {
            let o = ip.octets();
            writeln!(
                out,
                "mac = \"52:54:00:{:02x}:{:02x}:{:02x}\"",
                o[1], o[2], o[3]
            )
            .unwrap();
        }
    }
    out
}

/// The model stage on the embedded default (`make demo-core`): config init / check, secrets, a node config per
/// node, into `out`.
pub fn demo_core(out: &Path, kubeha: &Path) -> Result<()> {
    let nodes = out.join("nodes");
    std::fs::create_dir_all(&nodes).with_context(|| format!("creating {}", nodes.display()))?;
    println!("== cluster: kubeha config init / check");
    let init = output(Command::new(kubeha).args(["config", "init"]))?;
    let cgroup_v1 = !Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let cluster_toml = out.join("cluster.toml");
    write(&cluster_toml, &demo_cluster_toml(&init, cgroup_v1))?;
    run(Command::new(kubeha)
        .args(["config", "check"])
        .arg(&cluster_toml))?;
    println!("== secrets: kubeha secrets");
    let secrets = out.join("secrets.toml");
    run(Command::new(kubeha)
        .args(["secrets", "-o"])
        .arg(&secrets)
        .arg("--force"))?;
    println!("== node configs: kubeha node-config for every node");
    let c = Cluster::parse(&read(&cluster_toml)?, &cluster_toml.display().to_string())?;
    let mut list = String::new();
    let roles = c.masters.iter().map(|n| ("master", n));
    for (role, n) in roles.chain(c.workers.iter().map(|n| ("worker", n))) {
        writeln!(list, "{role} {} {}", n.name, n.ip)?;
        let path = nodes.join(format!("{}.toml", n.name));
        output(
            Command::new(kubeha)
                .args(["node-config", "--cluster"])
                .arg(&cluster_toml)
                .arg("--secrets")
                .arg(&secrets)
                .args(["--role", role, "--name", &n.name, "-o"])
                .arg(&path)
                .arg("--force"),
        )?;
        let keys = read(&path)?
            .lines()
            .filter(|l| l.contains("PRIVATE KEY-----"))
            .count();
        println!(
            "  {:<14} {:<7} {:<15} {} ({} private keys)",
            n.name,
            role,
            n.ip.to_string(),
            path.display(),
            keys / 2
        );
    }
    write(&out.join("nodes.txt"), &list)
}

/// The guest's kernel command line as the test initramfs prints it on the serial console (between
/// `@kubeha-cmdline@` and `@kubeha-end@`), from QEMU's log.
pub fn guest_cmdline(serial_log: &str) -> Option<String> {
    serial_log.replace('\r', "").lines().find_map(|l| {
        let rest = &l[l.find("@kubeha-cmdline@")? + "@kubeha-cmdline@".len()..];
        let end = rest.rfind("@kubeha-end")?;
        Some(rest[..end].trim().to_string())
    })
}

/// The parent of process `pid` (the 4th field of /proc/PID/stat, after the parenthesised command name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The processes whose command line names `dir` (`PID ARGV`), this one and its ancestors (the shell or make that
/// started the demo with OUT in its command line) excepted.
pub fn leftovers(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut mine = std::collections::BTreeSet::new();
    let mut p = std::process::id();
    while p > 1 && mine.insert(p) {
        match parent_of(p) {
            Some(q) => p = q,
            None => break,
        }
    }
    let mut found = vec![];
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if mine.contains(&pid) {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv = String::from_utf8_lossy(&raw).replace('\0', " ");
        if argv.contains(&needle) {
            found.push(format!("{pid} {}", argv.trim()));
        }
    }
    found.sort();
    found
}

/// Makes SIGINT, SIGTERM and SIGHUP stop what the run started before the process ends (`make demo` interrupted):
/// blocks them in the calling thread (call it first, before any thread exists: the threads it spawns inherit the
/// mask; child processes do not, std resets it) and waits for them on a thread of their own, which then stops the
/// node stages' rack ([`crate::demo::fleet::interrupted`]) and every process naming `out` (the registry, the file
/// server, QEMU: [`leftovers`]) by pid, and exits with 128 + the signal's number.
pub fn trap_signals(out: PathBuf) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .context("blocking SIGINT, SIGTERM, SIGHUP")?;
    std::thread::spawn(move || {
        let Ok(sig) = set.wait() else { return };
        eprintln!("demo: {sig}: stopping what the run started");
        crate::demo::fleet::interrupted();
        let pids = |sig: Signal| {
            for l in leftovers(&out) {
                if let Some(p) = l.split_whitespace().next().and_then(|p| p.parse().ok()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
                }
            }
        };
        pids(Signal::SIGTERM);
        std::thread::sleep(std::time::Duration::from_secs(2));
        pids(Signal::SIGKILL);
        std::process::exit(128 + sig as i32);
    });
    Ok(())
}

impl Demo {
    /// Every stage; the summary at the end.
    pub fn run(&self) -> Result<()> {
        let t0 = Instant::now();
        let stage_time = || format!("{}s", t0.elapsed().as_secs());
        let out = &self.out;
        for d in ["state", "upstream"] {
            let p = out.join(d);
            if p.exists() {
                std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
        let kubeha = || Command::new(&self.kubeha);

        say(&format!(
            "1/6 upstream: a generated registry and yum repos on loopback ({})",
            stage_time()
        ));
        let up = out.join("upstream");
        std::fs::create_dir_all(up.join("www/files"))?;
        let default_text = output(kubeha().args(["bundle", "profile"]))?;
        write(&up.join("default-profile.toml"), &default_text)?;
        let profile = Profile::parse(&default_text, "kubeha bundle profile")?;
        let kver = profile.kubernetes_version.to_string();
        let registry = Registry::start(&up.join("registry"), &up.join("registry/data"), None);
        // The images the default profile asks for: kubeadm's for its release, plus the profile's own (calico).
        let mut images: Vec<String> = output(kubeha().args([
            "bundle",
            "images",
            "--kubernetes-version",
            &format!("v{kver}"),
        ]))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
        images.extend(profile.images.iter().cloned());
        let images_txt = up.join("images.txt");
        write(&images_txt, &(images.join("\n") + "\n"))?;
        let kubeadm =
            output(Command::new(self.k8s_bin.join("kubeadm")).args(["version", "-o", "short"]))?;
        ensure!(
            kubeadm.trim() == format!("v{kver}"),
            "{}/kubeadm is {}, not v{kver}, the default profile's Kubernetes (make k8s K8S_VERSION={kver})",
            self.k8s_bin.display(),
            kubeadm.trim()
        );
        // kubeadm's control-plane images (kube-apiserver, -controller-manager, -scheduler, kube-proxy, etcd, pause)
        // are REAL, built from the binaries of `make k8s`; coredns and calico are generated stand-ins.
        upstream::images(&upstream::ImagesOpts {
            lists: true,
            k8s_bin: Some(self.k8s_bin.clone()),
            cache: out.join(".image-cache"),
            cni_plugins: Some(PathBuf::from("/usr/lib/cni")),
            ..upstream::ImagesOpts::new(&registry.host(), &images_txt)
        })
        .with_context(|| {
            let log = std::fs::read_to_string(up.join("registry/registry.log")).unwrap_or_default();
            format!(
                "pushing the upstream images failed; the registry's log:\n{}",
                crate::demo::install::tail(&log, 40).trim_end()
            )
        })?;
        upstream::rpms(&upstream::RpmsOpts {
            spec: self.repo.join("scripts/demo/rpms.json"),
            out: up.join("www/repos"),
            work: up.join("rpmbuild"),
            kube_version: kver.clone(),
        })?;
        let Some((calico_repo, calico_ver)) = calico_of(&profile.images) else {
            bail!("no calico/node image in the default profile");
        };
        let cluster = Cluster::parse(
            &output(kubeha().args(["config", "init"]))?,
            "kubeha config init",
        )?;
        let pod = cluster.networking.pod_subnet;
        ensure!(
            pod.prefix_len() == 16,
            "the default pod subnet {pod} is not a /16"
        );
        let o = pod.network().octets();
        let calico = calico_yaml(&calico_repo, &calico_ver, &format!("{}.{}", o[0], o[1]));
        write(&up.join("www/files/calico.yaml"), &calico)?;
        let www = HttpDir::start_logged(&up.join("www"), &up.join("www.log"));
        let www_base = format!("http://127.0.0.1:{}", www.port);
        let sha = hex::encode(Sha256::digest(calico.as_bytes()));
        let demo_profile = demo_profile(
            &default_text,
            &profile,
            &images,
            &registry.base(),
            &www_base,
            &sha,
        )?;
        let profile_toml = up.join("profile.toml");
        write(&profile_toml, &demo_profile)?;
        info(&format!(
            "registry {} ({} images), yum repos + files on 127.0.0.1:{}",
            registry.host(),
            images.len(),
            www.port
        ));
        info(&format!(
            "profile: {} (the built-in default, sources pointed at loopback)",
            profile_toml.display()
        ));

        say(&format!(
            "2/6 bundle, secrets, node configs ({})",
            stage_time()
        ));
        let bundle = out.join("bundle");
        run(kubeha()
            .args(["bundle", "build", "--profile"])
            .arg(&profile_toml)
            .arg("-o")
            .arg(&bundle))?;
        run(kubeha().args(["bundle", "verify"]).arg(&bundle))?;
        let t = Instant::now();
        let rerun_log = std::fs::File::create(out.join("rerun.log"))?;
        run(kubeha()
            .args(["bundle", "build", "--profile"])
            .arg(&profile_toml)
            .arg("-o")
            .arg(&bundle)
            .stdout(rerun_log.try_clone()?)
            .stderr(rerun_log))?;
        info(&format!("no-op rerun: {:.2} s", t.elapsed().as_secs_f64()));
        demo_core(out, &self.kubeha)?;

        say(&format!(
            "3/6 install media: kubeha iso + kubeha pxe, one boot in QEMU ({})",
            stage_time()
        ));
        let media = out.join("media");
        std::fs::create_dir_all(&media)?;
        let base = media.join("base-rocky9.iso");
        if !base.is_file() {
            let log = std::fs::File::create(media.join("base.log"))?;
            run(Command::new("bash")
                .arg(self.repo.join("image/fixtures/make-base-iso.gen.sh"))
                .arg("rocky9")
                .arg(&base)
                .stdout(log.try_clone()?)
                .stderr(log))
            .with_context(|| format!("see {}", media.join("base.log").display()))?;
        }
        info(&format!(
            "base ISO: {} (synthetic Rocky 9 layout: isolinux, GRUB EFI, efiboot.img, .treeinfo)",
            base.display()
        ));
        let iso = media.join("kubeha.iso");
        let model = |c: &mut Command| {
            c.arg("--base")
                .arg(&base)
                .arg("--bundle")
                .arg(&bundle)
                .arg("--cluster")
                .arg(out.join("cluster.toml"))
                .arg("--secrets")
                .arg(out.join("secrets.toml"));
        };
        let mut c = kubeha();
        c.arg("iso");
        model(&mut c);
        run(c.args(["--role", "worker", "-o"]).arg(&iso).arg("--force"))?;
        let mut c = kubeha();
        c.arg("pxe");
        model(&mut c);
        run(c
            .args(["--http-base", &format!("{www_base}/pxe"), "-o"])
            .arg(media.join("pxe"))
            .arg("--force"))?;
        let report = output(
            Command::new("xorriso")
                .arg("-indev")
                .arg(&iso)
                .args(["-report_el_torito", "plain"]),
        )?;
        for l in report
            .lines()
            .filter(|l| l.starts_with("El Torito boot img"))
        {
            info(l);
        }
        info(&format!(
            "booting {} in QEMU (SeaBIOS, TCG)...",
            iso.display()
        ));
        let serial = media.join("qemu-bios.log");
        let log = std::fs::File::create(&serial)?;
        // QEMU's exit (the test initramfs powers off, or the timeout) does not matter: the console does.
        let _ = Command::new("timeout")
            .arg("120")
            .args([
                "qemu-system-x86_64",
                "-accel",
                "tcg",
                "-m",
                "512",
                "-nographic",
                "-no-reboot",
                "-cdrom",
            ])
            .arg(&iso)
            .args(["-boot", "d", "-serial", "mon:stdio"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("starting qemu-system-x86_64")?;
        let console = String::from_utf8_lossy(
            &std::fs::read(&serial).with_context(|| format!("reading {}", serial.display()))?,
        )
        .into_owned();
        let cmdline = guest_cmdline(&console).unwrap_or_default();
        if !cmdline.contains(kubeha_model::kernel_args::PREFIX) {
            bail!(
                "the booted kernel did not get the kubeha arguments; see {}",
                serial.display()
            );
        }
        info(&format!("guest kernel cmdline: {cmdline}"));

        say(&format!(
            "4-5/6 kubeha serve installs five nodes; they form the HA control plane by themselves; failover and rebuild drills ({})",
            stage_time()
        ));
        // The nodes install over HTTP from `kubeha serve` (kernel command line, kickstart, pinned node config,
        // bundle, agent) and report every phase to it; the agent it hands out is the EL-compatible node binary.
        let mut stages = Stages::new(
            Setup {
                state: out.join("state/cluster"),
                scripts: self.repo.join("scripts/demo"),
                lab: std::env::current_exe().context("finding kubeha-lab's own path")?,
                bundle: bundle.clone(),
                cluster: out.join("cluster.toml"),
                secrets: out.join("secrets.toml"),
                base_iso: base.clone(),
                base_repos: up.join("www/repos"),
                kubeha: self.kubeha.clone(),
                agent: self.agent.clone(),
                k8s_bin: self.k8s_bin.clone(),
                timeout: 600,
            },
            &out.join("nodes"),
            self.hostile,
        )?;
        let ran = stages.run();
        // The rack is stopped (its nodes, kubeha serve, its namespaces) before anything else is looked at.
        drop(stages);
        ran?;
        let state = out.join("state/cluster");
        drop(www);
        drop(registry);
        // Everything the run started is stopped by now (the rack stopped its nodes, kubeha serve and the bridge by
        // pid; the registry and the file server are dropped): a process still naming OUT is a leak.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let mut left = leftovers(out);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
            left = leftovers(out);
        }
        if !left.is_empty() {
            bail!(
                "the demo left processes running (stop them by pid):\n  {}",
                left.join("\n  ")
            );
        }

        say(&format!("6/6 summary ({})", stage_time()));
        // The fleet as kubeha serve saw it and the drills' numbers.
        let result = state.join("result.json");
        let r = crate::demo::result::DemoResult::parse(&read(&result)?)
            .with_context(|| format!("reading {}", result.display()))?;
        for l in crate::demo::summary::summary(&r, &out.display().to_string())
            .map_err(anyhow::Error::msg)?
        {
            println!("{l}");
        }
        println!("make demo: done in {}", stage_time());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_from_proc_stat() {
        assert_eq!(
            parent_of(std::process::id()),
            Some(nix::unistd::getppid().as_raw() as u32)
        );
    }

    #[test]
    fn leftovers_finds_a_child_naming_the_dir() {
        let dir = std::env::temp_dir().join(format!("kubeha-lab-left-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(leftovers(&dir).is_empty());
        std::fs::write(dir.join("f"), "").unwrap();
        let mut child = Command::new("tail")
            .arg("-f")
            .arg(dir.join("f"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Until the child has exec'd, its command line is still ours.
        let mut left = leftovers(&dir);
        for _ in 0..100 {
            if !left.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            left = leftovers(&dir);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        let want = format!("{} tail -f {}", child.id(), dir.join("f").display());
        assert_eq!(left[0], want);
        assert!(leftovers(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn calico_from_the_profile_images() {
        let imgs = [
            "registry.k8s.io/pause:3.10".to_string(),
            "quay.io/calico/cni:v3.28.2".to_string(),
            "quay.io/calico/node:v3.28.2".to_string(),
        ];
        assert_eq!(
            calico_of(&imgs),
            Some(("quay.io/calico".to_string(), "v3.28.2".to_string()))
        );
        assert_eq!(calico_of(&imgs[..2]), None);
        assert_eq!(calico_of(&["x/node:latest".to_string()]), None);
    }

    #[test]
    fn cluster_toml_gets_macs_and_the_cgroup_choice() {
        let init = "[cluster]\nname = \"c\"\n\n[[masters]]\nname = \"m1\"\nip = \"192.168.20.21\"\n\n[install]\nx = 1\n";
        let t = demo_cluster_toml(init, true);
        assert!(
            t.contains("ip = \"192.168.20.21\"\nmac = \"52:54:00:a8:14:15\"\n"),
            "{t}"
        );
        assert!(
            t.contains("[install]\ncgroup = \"v1\" # this host boots cgroup v1\nx = 1\n"),
            "{t}"
        );
        assert!(!demo_cluster_toml(init, false).contains("cgroup"));
        // The embedded default gets a MAC per node and still parses.
        let d = demo_cluster_toml(kubeha_model::cluster::DEFAULT_CLUSTER_TOML, false);
        let c = Cluster::parse(&d, "demo").unwrap();
        assert!(c.masters.iter().chain(&c.workers).all(|n| n.mac.is_some()));
    }

    #[test]
    fn guest_cmdline_from_the_serial_log() {
        let log = "SeaBIOS\r\nboot: \r\n@kubeha-cmdline@ BOOT_IMAGE=/vmlinuz kubeha.role=worker @kubeha-end@\r\n";
        assert_eq!(
            guest_cmdline(log).as_deref(),
            Some("BOOT_IMAGE=/vmlinuz kubeha.role=worker")
        );
        assert_eq!(guest_cmdline("no markers"), None);
    }

    #[test]
    fn demo_profile_points_sources_at_loopback() {
        let text = "name = \"el9-containerd-calico\"\nkubernetes-version = \"1.36.3\"\nel = 9\nimages = [\"quay.io/calico/node:v3.28.2\"]\n\n[[repos]]\nname = \"baseos\"\nbaseurl = \"https://x/\"\nbase = true\n\n[[repos]]\nname = \"k8s\"\nbaseurl = \"https://y/\"\n";
        let p = Profile::parse(text, "t").unwrap();
        let imgs = vec![
            "registry.k8s.io/pause:3.10".to_string(),
            "quay.io/calico/node:v3.28.2".to_string(),
        ];
        let s = demo_profile(
            text,
            &p,
            &imgs,
            "http://127.0.0.1:5000",
            "http://127.0.0.1:8000",
            &"ab".repeat(32),
        )
        .unwrap();
        assert!(
            s.starts_with("name = \"demo-el9-containerd-calico\"\n"),
            "{s}"
        );
        assert!(s.contains("[[repos]]\nname = \"baseos\"\nbaseurl = \"http://127.0.0.1:8000/repos/baseos/\"\nbase = true\n\n[[repos]]\nname = \"k8s\"\nbaseurl = \"http://127.0.0.1:8000/repos/k8s/\"\n\n"), "{s}");
        assert!(s.contains("[[registry-mirrors]]\nregistry = \"quay.io\"\nendpoint = \"http://127.0.0.1:5000\"\nprefix = \"quay.io\"\n\n[[registry-mirrors]]\nregistry = \"registry.k8s.io\""), "{s}");
        assert!(s.contains("[[files]]\nname = \"calico.yaml\"\nurl = \"http://127.0.0.1:8000/files/calico.yaml\"\nsha256 = \"abab"), "{s}");
        Profile::parse(&s, "demo").unwrap();
    }
}
