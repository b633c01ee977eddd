//! What of a Rust source file the rules read: test files and test items are skipped, and comment lines.

/// Whether `path` (relative, `/`-separated) is test code as a whole.
pub fn is_test_file(path: &str) -> bool {
    let mut parts = path.split('/');
    let file = parts.next_back().unwrap_or("");
    path.split('/').any(|p| p == "tests") || file == "tests.rs" || file.ends_with("_tests.rs")
}

/// The lines of Rust source `text` that are not test code or comments, with their 1-based numbers: the item after a
/// `#[cfg(test)]` is skipped to its matching closing brace (or its `;`).
pub fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t == "#[cfg(test)]" {
            i += 1;
            // Further attributes of the same item.
            while i < lines.len() && lines[i].trim().starts_with("#[") {
                i += 1;
            }
            let mut depth: i64 = 0;
            let mut opened = false;
            while i < lines.len() {
                for c in lines[i].chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                let ends =
                    (!opened && lines[i].trim_end().ends_with(';')) || (opened && depth <= 0);
                i += 1;
                if ends {
                    break;
                }
            }
            continue;
        }
        if !t.starts_with("//") {
            out.push((i + 1, lines[i]));
        }
        i += 1;
    }
    out
}
