//! The transaction table `dnf install --assumeno` prints, read as (NEVRA, repo) rows: shared by the tests that compare
//! kubeha's closure with dnf's (tests/rpm.rs) and the closure benchmark (examples/bench_rpm.rs).

/// Checks that dnf resolved and aborted as `--assumeno` does, then returns the rows to install, sorted; the epoch 0
/// is dropped from the NEVRA as kubeha writes it.
pub fn transaction(out: &std::process::Output) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Dependencies resolved") && err.contains("Operation aborted"),
        "dnf --assumeno did not resolve:\n{text}\n{err}"
    );
    let mut rows = Vec::new();
    let mut in_table = false;
    let mut wrapped: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("Installing") && line.ends_with(':') {
            in_table = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_table = false;
            continue;
        }
        if !in_table {
            continue;
        }
        let mut t: Vec<&str> = line.split_whitespace().collect();
        if t.len() == 1 {
            // A long name wraps onto a line of its own.
            wrapped = Some(t[0].to_string());
            continue;
        }
        let name = wrapped.take();
        if let Some(n) = &name {
            t.insert(0, n);
        }
        let (name, arch, evr, repo) = (t[0], t[1], t[2], t[3]);
        let evr = evr.strip_prefix("0:").unwrap_or(evr);
        rows.push((format!("{name}-{evr}.{arch}"), repo.to_string()));
    }
    rows.sort();
    rows
}
