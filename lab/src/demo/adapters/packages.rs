//! dnf and yum (the REAL dnf installing into the node root, `--installroot`, with the node's own repo files; a repo's
//! file:// baseurl is a path on the node, so it is prefixed with the root) and rpm (the REAL rpm on the node root's
//! database, `--root`).

use super::common::{glob, read_lines, Ad, Res};

/// VERSION_ID of an os-release file up to its first dot (what `. os-release; echo "${VERSION_ID%%.*}"` prints).
fn release_major(text: &str) -> String {
    let mut v = String::new();
    for line in text.lines() {
        if let Some(val) = line.trim_start().strip_prefix("VERSION_ID=") {
            let val = val.trim_end();
            let val = val
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| val.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(val);
            v = val.to_string();
        }
    }
    v.split('.').next().unwrap_or("").to_string()
}

pub(super) fn dnf(ad: &Ad) -> Res {
    if ad.arg(0) != "install" {
        return Err(ad.fail(format!("only 'install' is expected, got: {}", ad.all())));
    }
    let os = std::fs::read_to_string(ad.rootp("/etc/os-release")).unwrap_or_default();
    let reposdir = ad.rootp("/etc/yum.repos.d");
    let mut args: Vec<String> = vec![
        "-q".into(),
        "--installroot".into(),
        ad.root.clone(),
        "--releasever".into(),
        release_major(&os),
        format!("--setopt=reposdir={}", reposdir.display()),
        format!("--setopt=cachedir={}/var/cache/dnf", ad.root),
    ];
    for f in glob(&reposdir, ".repo") {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: {}: {e}", ad.tool, f.display());
                continue;
            }
        };
        let mut id = "";
        for l in read_lines(&text) {
            if l.len() >= 2 && l.starts_with('[') && l.ends_with(']') {
                id = &l[1..l.len() - 1];
            } else if let Some(p) = l.strip_prefix("baseurl=file://") {
                args.push(format!("--setopt={id}.baseurl=file://{}{p}", ad.root));
            }
        }
    }
    args.extend(ad.args.iter().cloned());
    Err(ad.exec("/usr/bin/dnf", &args))
}

pub(super) fn rpm(ad: &Ad) -> Res {
    let mut args = vec!["--root".to_string(), ad.root.clone()];
    args.extend(ad.args.iter().cloned());
    Err(ad.exec("/usr/bin/rpm", &args))
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_major_of_os_release() {
        assert_eq!(
            super::release_major("NAME=\"Rocky\"\nVERSION_ID=\"9.4\"\n"),
            "9"
        );
        assert_eq!(super::release_major("VERSION_ID=10\n"), "10");
        assert_eq!(super::release_major("NAME=x\n"), "");
    }
}
