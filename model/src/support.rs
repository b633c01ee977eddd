//! The support matrix (EL release × Kubernetes release × container runtime) as README shows it, computed by running
//! `config check`'s own rules ([`crate::validate`]) on the default cluster for every combination, so the table can
//! never say something `config check` does not do. A test keeps README's copy equal to [`markdown`].

use crate::cluster::{CgroupVersion, Cluster, Runtime};
use crate::kube::{KubeVersion, MAX_MINOR, MIN_MODERN_MINOR};
use crate::validate::{validate, Severity};

/// What `config check` says about one combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid as is.
    Ok,
    /// Valid with a warning (the text, shortened).
    Warn(&'static str),
    /// Valid only with these `[install] cgroup` choices.
    NeedsCgroup(Vec<CgroupVersion>),
    /// Refused.
    No,
}

fn check(
    el: u8,
    minor: u32,
    runtime: Runtime,
    cgroup: Option<CgroupVersion>,
) -> Option<Vec<String>> {
    let mut c = Cluster::default_cluster();
    c.install.el = el;
    c.install.cgroup = cgroup;
    c.cluster.kubernetes_version = KubeVersion::new(1, minor, 0);
    c.cluster.container_runtime = runtime;
    // The default leaves the gateway unset (a warning that has nothing to do with the matrix).
    c.networking.gateway = c.masters.first().map(|m| {
        let o = m.ip.octets();
        std::net::Ipv4Addr::new(o[0], o[1], o[2], 1)
    });
    let d = validate(&c);
    if d.iter().any(|d| d.is_error()) {
        return None;
    }
    Some(
        d.iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| d.path.clone())
            .collect(),
    )
}

/// `config check`'s verdict on EL `el` + Kubernetes 1.`minor` + `runtime` with no `[install] cgroup` choice.
pub fn verdict(el: u8, minor: u32, runtime: Runtime) -> Verdict {
    match check(el, minor, runtime, None) {
        Some(w) if w.is_empty() => Verdict::Ok,
        Some(w) if w.iter().any(|p| p == "install.el") => {
            Verdict::Warn("EL7 is past its end of life")
        }
        Some(_) => Verdict::Warn("see config check"),
        None => {
            let ok: Vec<CgroupVersion> = [CgroupVersion::V2, CgroupVersion::V1]
                .into_iter()
                .filter(|cg| check(el, minor, runtime, Some(*cg)).is_some())
                .collect();
            if ok.is_empty() {
                Verdict::No
            } else {
                Verdict::NeedsCgroup(ok)
            }
        }
    }
}

fn cell(v: &Verdict) -> String {
    match v {
        Verdict::Ok => "yes".into(),
        Verdict::Warn(w) => format!("yes ({w})"),
        Verdict::NeedsCgroup(cgs) => format!(
            "with `cgroup = {}`",
            cgs.iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join("` or `cgroup = ")
        ),
        Verdict::No => "no".into(),
    }
}

/// The README table: one row per runtime and run of Kubernetes minors with the same verdicts, one column per EL.
pub fn markdown() -> String {
    let els: Vec<u8> = crate::el::RELEASES.iter().map(|r| r.el).collect();
    let minors: Vec<u32> = std::iter::once(11)
        .chain(MIN_MODERN_MINOR..=MAX_MINOR)
        .collect();
    let mut out = String::from("| Kubernetes | runtime |");
    for r in crate::el::RELEASES.iter() {
        out.push_str(&format!(" EL{} ({}) |", r.el, r.distros));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(els.len()));
    out.push('\n');
    for runtime in [Runtime::Containerd, Runtime::Docker] {
        let mut rows: Vec<(u32, u32, Vec<String>)> = Vec::new();
        for &m in &minors {
            let cells: Vec<String> = els
                .iter()
                .map(|&el| cell(&verdict(el, m, runtime)))
                .collect();
            match rows.last_mut() {
                Some((_, hi, c)) if *c == cells && (*hi + 1 == m) => *hi = m,
                _ => rows.push((m, m, cells)),
            }
        }
        for (lo, hi, cells) in rows {
            let range = if lo == hi {
                format!("1.{lo}")
            } else {
                format!("1.{lo} – 1.{hi}")
            };
            let rt = match runtime {
                Runtime::Containerd => "containerd",
                Runtime::Docker => "docker",
            };
            out.push_str(&format!("| {range} | {rt} | {} |\n", cells.join(" | ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The facts the table is made of, spot-checked against the rules they come from.
    #[test]
    fn verdicts() {
        assert_eq!(verdict(9, 36, Runtime::Containerd), Verdict::Ok);
        assert_eq!(
            verdict(8, 36, Runtime::Containerd),
            Verdict::NeedsCgroup(vec![CgroupVersion::V2, CgroupVersion::V1])
        );
        assert_eq!(
            verdict(7, 36, Runtime::Containerd),
            Verdict::NeedsCgroup(vec![CgroupVersion::V1])
        );
        assert_eq!(verdict(9, 36, Runtime::Docker), Verdict::No);
        assert_eq!(verdict(7, 11, Runtime::Docker), Verdict::Ok);
        assert_eq!(verdict(8, 34, Runtime::Containerd), Verdict::Ok);
    }

    /// README's support table is [`markdown`]'s output (KUBEHA_BLESS=1 rewrites it).
    #[test]
    fn readme_table_is_current() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let text = std::fs::read_to_string(&readme).unwrap();
        let (begin, end) = (
            "<!-- support-table: generated by model/src/support.rs -->\n",
            "<!-- support-table end -->",
        );
        let i = text
            .find(begin)
            .expect("README lacks the support-table marker")
            + begin.len();
        let j = text[i..]
            .find(end)
            .expect("README lacks the support-table end marker")
            + i;
        let want = markdown();
        if text[i..j] != want {
            if std::env::var_os("KUBEHA_BLESS").is_some() {
                std::fs::write(&readme, format!("{}{want}{}", &text[..i], &text[j..])).unwrap();
                return;
            }
            panic!("README's support table is stale (KUBEHA_BLESS=1 rewrites it):\n{want}");
        }
    }
}
