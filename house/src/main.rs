//! `kubeha-house [ROOT]`: checks the tree at ROOT (default: the current directory) against kubeha's house rules
//! (see the library). Exit 0: clean; 1: findings, one a line as `path:line: rule: message`; 2: the check could not
//! run.

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ".".into());
    match kubeha_house::check_tree(&root) {
        Ok(findings) if findings.is_empty() => {
            println!("house rules: clean");
        }
        Ok(findings) => {
            for f in &findings {
                eprintln!("{f}");
            }
            eprintln!(
                "house rules: {} finding(s); exceptions go to {} with a reason",
                findings.len(),
                kubeha_house::ALLOW_FILE
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("kubeha-house: {e}");
            std::process::exit(2);
        }
    }
}
