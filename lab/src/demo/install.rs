//! A demo node's network install from kubeha serve, as the machine does it (asked by the
//! node stages): its iPXE asks URL/boot.ipxe?mac=MAC from the node's namespace (which has the node's MAC and IP); the
//! installer boots the kernel line it got (that line is the installer's /proc/cmdline: the node config pinned by its
//! SHA-256, the report URL) and runs the served kickstart: `%pre` on the lab's disk (one blank disk in a /sys of its
//! own: it reports `install`), then `%post --nochroot` with the node's fresh root as /mnt/sysimage: it downloads the
//! agent from serve and runs `kubeha-firstboot install`, keeps kubeha's arguments on the installed kernel command line
//! and reports `installed`. anaconda's `chroot /mnt/sysimage` is the lab's installer stand-in (scripts/demo/installer,
//! first on the PATH). A reinstall (after `kubeha serve reimage`) must get a kernel line that says so; once installed,
//! serve must no longer hand the machine an installer.

use super::{probe, write};
use anyhow::{bail, ensure, Context, Result};
use kubeha_model::kernel_args::{self, KernelArgs};
use std::path::Path;
use std::process::{Command, Stdio};

/// The blank disk's size: 100 GiB in 512-byte sectors.
const DISK_SECTORS: &str = "209715200";

/// What the installer reports when serve does not take a report (the install must fail on it).
const NOT_REPORTED: &str = "could not report";

/// The kernel command line(s) an iPXE script boots: every `kernel IMAGE ARGS...` line's ARGS, one a line (sed's
/// `s/^kernel [^ ]* //` on grep's `^kernel ` lines); empty when the script boots no installer (its disk).
pub fn kernel_line(boot_ipxe: &str) -> String {
    boot_ipxe
        .lines()
        .filter(|l| l.starts_with("kernel "))
        .map(|l| {
            let rest = &l["kernel ".len()..];
            match rest.find(' ') {
                Some(i) if i > 0 => &rest[i + 1..],
                _ => l,
            }
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Whether a kernel line is a reinstall (kubeha's reinstall argument set to 1, read by the model's parser).
pub fn is_reinstall(cmdline: &str) -> Result<bool> {
    Ok(KernelArgs::parse(cmdline)
        .context("the installer's kernel line")?
        .reinstall)
}

/// The kickstart's URL on a kernel line (`inst.ks=`).
pub fn ks_url(cmdline: &str) -> Option<String> {
    kernel_args::split(cmdline)
        .iter()
        .map(kernel_args::Arg::unquoted)
        .find_map(|(k, v)| (k == "inst.ks").then_some(v).flatten())
}

/// The last `n` lines of a text (`tail -n N`), each ending in a newline.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The lines of the installer's logs that say a report did not reach serve (`grep -h "could not report"`).
pub fn unreported(logs: &[&str]) -> Vec<String> {
    logs.iter()
        .flat_map(|t| t.lines())
        .filter(|l| l.contains(NOT_REPORTED))
        .map(str::to_string)
        .collect()
}

/// One node's network install.
pub struct Install<'a> {
    /// The node stages' state directory: the node's root is STATE/nodes/NAME, the installer's files STATE/install/NAME.
    pub state: &'a Path,
    pub name: &'a str,
    pub mac: &'a str,
    /// kubeha serve's URL (`http://IP:PORT`).
    pub serve_url: &'a str,
    /// The node's network namespace.
    pub ns: &'a str,
    /// The installer stand-ins (anaconda's `chroot`), first on the PATH of `%post --nochroot`.
    pub installer_dir: &'a Path,
    /// After `kubeha serve reimage`: the kernel line must be a reinstall.
    pub reinstall: bool,
}

impl Install<'_> {
    /// `ip netns exec NS ...`.
    fn in_ns(&self) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns]);
        c
    }

    /// GET URL from the node's namespace (`curl -fsS`; curl's complaint goes to stderr).
    fn get(&self, url: &str) -> Result<String> {
        let o = self
            .in_ns()
            .args(["curl", "-fsS", url])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output();
        match o {
            Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
            _ => bail!("demo: {}: GET {url} failed", self.name),
        }
    }

    /// Runs a kickstart section with bash in the node's namespace, env `env`, output to LOG; on failure the error
    /// has the tail of LOG.
    fn section(&self, script: &Path, log: &Path, env: &[(&str, String)], what: &str) -> Result<()> {
        let out =
            std::fs::File::create(log).with_context(|| format!("writing {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("writing {}", log.display()))?;
        let mut c = self.in_ns();
        c.arg("env");
        for (k, v) in env {
            c.arg(format!("{k}={v}"));
        }
        let ok = c
            .arg("bash")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "demo: {}: the kickstart's {what} failed:\n{}",
                self.name,
                tail(&text, 20).trim_end()
            );
        }
        Ok(())
    }

    /// The install: STATE/install/NAME made anew (the blank disk, boot.ipxe, cmdline, ks.cfg, the sections and their
    /// logs), STATE/nodes/NAME installed.
    pub fn run(&self) -> Result<()> {
        let name = self.name;
        let root = self.state.join("nodes").join(name);
        let inst = self.state.join("install").join(name);
        if inst.exists() {
            std::fs::remove_dir_all(&inst)
                .with_context(|| format!("removing {}", inst.display()))?;
        }
        for d in ["sys/block/vda", "sys/class/net", "dev", "out"] {
            std::fs::create_dir_all(inst.join(d))
                .with_context(|| format!("creating {}", inst.join(d).display()))?;
        }
        let vda = inst.join("sys/block/vda");
        for (f, v) in [("removable", "0"), ("ro", "0"), ("size", DISK_SECTORS)] {
            write(&vda.join(f), &format!("{v}\n"))?;
        }
        let boot_url = format!("{}/boot.ipxe?mac={}", self.serve_url, self.mac);
        let boot = self.get(&boot_url)?;
        write(&inst.join("boot.ipxe"), &boot)?;
        let cmdline = kernel_line(&boot);
        write(&inst.join("cmdline"), &cmdline)?;
        ensure!(
            !cmdline.is_empty(),
            "demo: kubeha serve handed {name} no installer:\n{}",
            boot.trim_end()
        );
        if self.reinstall {
            ensure!(
                is_reinstall(&cmdline)?,
                "demo: after kubeha serve reimage {name}, its network boot is not a reinstall"
            );
        }
        let ks = ks_url(&cmdline).unwrap_or_default();
        let ks_cfg = inst.join("ks.cfg");
        write(&ks_cfg, &self.get(&ks)?)?;
        probe::ks_sections(&ks_cfg, &inst)?; // pre.sh, post-nochroot.sh
        let p = |f: &str| inst.join(f).display().to_string();
        let (pre_log, post_log) = (inst.join("pre.log"), inst.join("post.log"));
        self.section(
            &inst.join("pre.sh"),
            &pre_log,
            &[
                ("KUBEHA_CMDLINE", p("cmdline")),
                ("KUBEHA_SYS", p("sys")),
                ("KUBEHA_DEV", p("dev")),
                ("KUBEHA_OUT", p("out")),
                ("KUBEHA_CONSOLE", p("console")),
                ("KUBEHA_HALT", "true".into()),
                ("KUBEHA_REPORT_ANYWHERE", "1".into()),
            ],
            "%pre",
        )?;
        let path = std::env::var("PATH").unwrap_or_default();
        self.section(
            &inst.join("post-nochroot.sh"),
            &post_log,
            &[
                ("PATH", format!("{}:{path}", self.installer_dir.display())),
                ("KUBEHA_SYSROOT", root.display().to_string()),
                ("KUBEHA_CMDLINE", p("cmdline")),
                ("KUBEHA_OUT", p("out")),
                ("KUBEHA_REPORT_ANYWHERE", "1".into()),
            ],
            "%post --nochroot",
        )?;
        let logs: Vec<String> = [&pre_log, &post_log]
            .iter()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .collect();
        let bad = unreported(&logs.iter().map(String::as_str).collect::<Vec<_>>());
        ensure!(
            bad.is_empty(),
            "demo: {name}: the installer's reports did not reach kubeha serve:\n{}",
            bad.join("\n")
        );
        // Install once: from now on serve tells this machine's iPXE to boot its disk.
        let again = self.get(&boot_url)?;
        ensure!(
            kernel_line(&again).is_empty(),
            "demo: {name} reported installed, but kubeha serve would install it again: {}",
            again.trim_end()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeha_model::kernel_args::Key;

    #[test]
    fn kernel_line_from_boot_ipxe() {
        let arg = |k: Key, v: &str| format!("{}={v}", k.as_str());
        let line = format!(
            "inst.ks=http://192.168.20.5:8080/ks/m1.cfg {} {} ip=dhcp",
            arg(Key::Name, "m1"),
            arg(Key::Report, "http://192.168.20.5:8080/api/report")
        );
        let ipxe = format!(
            "#!ipxe\nkernel http://192.168.20.5:8080/vmlinuz {line}\ninitrd http://x/initrd.img\nboot\n"
        );
        assert_eq!(kernel_line(&ipxe), format!("{line}\n"));
        assert_eq!(
            ks_url(&kernel_line(&ipxe)).as_deref(),
            Some("http://192.168.20.5:8080/ks/m1.cfg")
        );
        // "Boot your disk": no kernel line, no installer.
        assert_eq!(kernel_line("#!ipxe\nsanboot --drive 0x80\n"), "");
        // Only lines that start with "kernel "; an image without arguments keeps the line, as sed left it.
        assert_eq!(kernel_line("  kernel x a\nkernelx a\n"), "");
        assert_eq!(kernel_line("kernel vmlinuz\n"), "kernel vmlinuz\n");
        assert_eq!(kernel_line("kernel vmlinuz a b\nkernel k c\n"), "a b\nc\n");
        assert_eq!(ks_url("a=b quiet"), None);
    }

    #[test]
    fn reinstall_from_the_model() {
        let arg = |v: &str| format!("{}={v}", Key::Reinstall.as_str());
        assert!(is_reinstall(&format!("inst.ks=http://x/ks {} quiet\n", arg("1"))).unwrap());
        assert!(!is_reinstall(&format!("quiet {}", arg("0"))).unwrap());
        assert!(!is_reinstall("inst.ks=http://x/ks quiet\n").unwrap());
        // The last one wins, as on the node.
        assert!(is_reinstall(&format!("{} {}", arg("0"), arg("1"))).unwrap());
        // A line the model refuses is an error, not "no".
        let e = is_reinstall(&arg("yes")).unwrap_err();
        assert!(format!("{e:#}").contains("kernel line"), "{e:#}");
    }

    #[test]
    fn tails_and_unreported() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("a\nb", 5), "a\nb\n");
        assert_eq!(tail("", 3), "");
        let pre = "reported install\nkubeha: could not report install to http://x\n";
        let post = "ok\nkubeha: could not report installed to http://x\n";
        assert_eq!(
            unreported(&[pre, post]),
            [
                "kubeha: could not report install to http://x",
                "kubeha: could not report installed to http://x"
            ]
        );
        assert!(unreported(&["fine\n", ""]).is_empty());
    }
}
