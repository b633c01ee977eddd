//! The kickstart's shell reads the kernel command line with its own `arg KEY` (anaconda runs shell, not kubeha):
//! every `kubeha.*` key the templates read or name is one that `kubeha_model::KernelArgs` knows, so the two can
//! never drift apart again.

use std::collections::BTreeSet;
use std::path::Path;

use kubeha_model::kernel_args::{Key, PREFIX};

const TEMPLATES: [&str; 3] = ["pre.sh", "post-nochroot.sh", "post.sh"];

fn template(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("templates")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The word after each `arg ` call (`$(arg kubeha.name)`, `arg $k`), with the line number.
fn arg_calls(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with('#') {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("arg ") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + 4..];
            // `arg` as a word: at the start, or after `(`, whitespace, `;`, `|`, `&`.
            if before.is_some_and(|c| !matches!(c, '(' | ' ' | '\t' | ';' | '|' | '&')) {
                continue;
            }
            let word: String = rest
                .trim_start()
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, ')' | ';' | '|' | '"'))
                .collect();
            out.push((i + 1, word));
        }
    }
    out
}

/// The keys a `for VAR in K1 K2 ...; do` loop gives `$VAR`, for the loops whose body calls `arg $VAR`.
fn loop_keys(text: &str, var: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix(&format!("for {var} in ")) else {
            continue;
        };
        let list = rest.split(';').next().unwrap_or("");
        let body_uses_it = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim() != "done")
            .any(|l| l.contains(&format!("arg ${var}")));
        if body_uses_it {
            out.extend(list.split_whitespace().map(str::to_string));
        }
    }
    out
}

/// Every `kubeha.<key>` token in the text (comments and messages included), without a trailing `.`.
fn kubeha_tokens(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find(PREFIX) {
            let before = rest[..at].chars().next_back();
            let tail = &rest[at..];
            let token: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            rest = &tail[PREFIX.len()..];
            // Part of a longer name (`io.kubeha.x`, `notkubeha.`) is not ours.
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
            {
                continue;
            }
            let token = token.trim_end_matches('.');
            // `kubeha.*`: the keys as a whole.
            if token.len() < PREFIX.len() {
                continue;
            }
            out.push((i + 1, token.to_string()));
        }
    }
    out
}

#[test]
fn every_key_the_templates_read_is_a_kernel_args_key() {
    let mut read = BTreeSet::new();
    for name in TEMPLATES {
        let text = template(name);
        for (line, word) in arg_calls(&text) {
            let keys = match word.strip_prefix('$') {
                Some(var) => {
                    let keys = loop_keys(&text, var);
                    assert!(
                        !keys.is_empty(),
                        "{name}:{line}: arg ${var}: no `for {var} in ...` loop gives its keys"
                    );
                    keys
                }
                None => vec![word],
            };
            for k in keys {
                if k.starts_with(PREFIX) {
                    let key = Key::from_name(&k).unwrap_or_else(|| {
                        panic!("{name}:{line}: arg {k}: not a key of kubeha_model::KernelArgs")
                    });
                    read.insert(key.as_str());
                } else {
                    // Not kubeha's: the installer's own arguments only.
                    assert!(
                        k.starts_with("inst."),
                        "{name}:{line}: arg {k}: neither a kubeha key nor an installer (inst.*) one"
                    );
                }
            }
        }
        for (line, token) in kubeha_tokens(&text) {
            assert!(
                Key::from_name(&token).is_some(),
                "{name}:{line}: {token} is not a key of kubeha_model::KernelArgs"
            );
        }
    }
    // What the test itself relies on: it found the reads, among them the installer's own keys, and every key that
    // only the installer reads is read by it.
    for key in Key::ALL.iter().filter(|k| k.installer_only()) {
        assert!(
            read.contains(key.as_str()),
            "{key} is the installer's, but no template reads it ({read:?})"
        );
    }
    // kubeha.config= and its pin are read by `kubeha-firstboot install` (with the model's KernelArgs), not by shell.
    for key in [Key::Name, Key::Role] {
        assert!(read.contains(key.as_str()), "{key} not found in {read:?}");
    }
}

#[test]
fn the_scanners_find_what_they_should() {
    let text = "x=$(arg kubeha.name)\n# arg kubeha.nope\n[ -z \"$(arg kubeha.disk)\" ] || d=$(arg kubeha.disk)\n\
                for k in kubeha.report kubeha.bootstrap; do\n    v=$(arg $k)\ndone\nmedia=$(arg inst.stage2 | sed x)\n\
                echo \"see kubeha.* and kubeha.reinstall=1, not io.kubeha.x\"\n";
    let calls: Vec<String> = arg_calls(text).into_iter().map(|(_, w)| w).collect();
    assert_eq!(
        calls,
        [
            "kubeha.name",
            "kubeha.disk",
            "kubeha.disk",
            "$k",
            "inst.stage2"
        ]
    );
    assert_eq!(loop_keys(text, "k"), ["kubeha.report", "kubeha.bootstrap"]);
    let tokens: Vec<String> = kubeha_tokens(text).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        tokens,
        [
            "kubeha.name",
            "kubeha.nope",
            "kubeha.disk",
            "kubeha.disk",
            "kubeha.report",
            "kubeha.bootstrap",
            "kubeha.reinstall"
        ]
    );
}
