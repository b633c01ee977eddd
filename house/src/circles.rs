//! `import-circle`: files of one crate that import each other in a loop.
//!
//! Each crate's files under its `src/` are the nodes (`src/lib.rs`, or `src/main.rs` where there is no lib, is the
//! crate root; `a.rs` and `a/mod.rs` are module `a`; `src/bin/` and test files are left out). An edge runs from a
//! file to the file of every module its code names by a `crate::`, `super::` or `self::` path (in `use` trees and
//! inline), or through the name of a child module it declares (`mod fleet;` then `fleet::Fleet`): the longest prefix
//! of the path that is a file of the crate, so `use crate::engine::Context` is an edge to `engine.rs` and
//! `use crate::Error` one to the crate root. A name a module re-exports from its own descendants (`pub use
//! error::Error;` in `rpm/mod.rs`) is followed to where it is defined, and that re-export is no edge of its own: it
//! hands the name on. Inline modules (`mod ports { use super::X; }`) shift `self` and `super`. Test code is skipped
//! as for the other rules. Every strongly connected component of more than one file is a [`Circle`].

use std::collections::{BTreeMap, BTreeSet};

use crate::source::{code_lines, is_test_file};

/// Files of one crate that import each other in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circle {
    /// The files, relative to the root, sorted.
    pub files: Vec<String>,
    /// Every edge between them: from, to, and the paths written in `from` that name `to`.
    pub edges: Vec<(String, String, Vec<String>)>,
}

/// A crate's file: its crate (the path up to `src/`) and its module path from the crate root.
fn module_of(path: &str) -> Option<(String, Vec<String>)> {
    if !path.ends_with(".rs") || is_test_file(path) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let src = parts.iter().position(|p| *p == "src")?;
    let krate = parts[..src].join("/");
    let mut module: Vec<String> = parts[src + 1..].iter().map(|s| s.to_string()).collect();
    let file = module.pop()?;
    if module.first().map(String::as_str) == Some("bin") {
        return None;
    }
    match file.as_str() {
        "lib.rs" | "main.rs" if module.is_empty() => {}
        "mod.rs" if !module.is_empty() => {}
        f => module.push(f.trim_end_matches(".rs").to_string()),
    }
    Some((krate, module))
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn skip_ws(s: &[char], at: &mut usize) {
    while *at < s.len() && s[*at].is_whitespace() {
        *at += 1;
    }
}

/// Reads a `use` tree or an inline path at `s[at..]`: every path it names, split at `::`, without renames (`as x`)
/// and globs (`a::*` gives `a`); a group `{a, b::c}` gives one path per item, `a::{self}` gives `a`.
fn paths_at(s: &[char], at: &mut usize) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    loop {
        skip_ws(s, at);
        if *at < s.len() && s[*at] == '{' {
            *at += 1;
            let mut out = Vec::new();
            loop {
                skip_ws(s, at);
                if *at >= s.len() {
                    return out;
                }
                match s[*at] {
                    '}' => {
                        *at += 1;
                        return out;
                    }
                    ',' => *at += 1,
                    _ => {
                        let before = *at;
                        for p in paths_at(s, at) {
                            match p.first().map(String::as_str) {
                                None => {}
                                // `a::{self, b}`: `a` itself.
                                Some("self") if p.len() == 1 => out.push(prefix.clone()),
                                _ => out.push(prefix.iter().cloned().chain(p).collect()),
                            }
                        }
                        if *at == before {
                            *at += 1;
                        }
                    }
                }
            }
        }
        let start = *at;
        while *at < s.len() && is_ident_char(s[*at]) {
            *at += 1;
        }
        if *at == start {
            // `*`, or the end: the prefix itself is what is named.
            if s.get(*at) == Some(&'*') {
                *at += 1;
            }
            return vec![prefix];
        }
        let word: String = s[start..*at].iter().collect();
        prefix.push(word);
        let mut look = *at;
        skip_ws(s, &mut look);
        if s.get(look) == Some(&':') && s.get(look + 1) == Some(&':') {
            *at = look + 2;
            continue;
        }
        // A rename: `as name`.
        if s.get(look) == Some(&'a')
            && s.get(look + 1) == Some(&'s')
            && !s.get(look + 2).copied().is_some_and(is_ident_char)
        {
            *at = look + 2;
            skip_ws(s, at);
            while *at < s.len() && is_ident_char(s[*at]) {
                *at += 1;
            }
        }
        return vec![prefix];
    }
}

/// What one file's code names: the module paths (from the crate root) it imports, each with the path as written,
/// and the names it re-exports from its own descendants.
#[derive(Debug, Default)]
struct Names {
    imports: Vec<(Vec<String>, String)>,
    re_exports: BTreeMap<String, Vec<String>>,
}

/// The child modules a file declares (`mod x;`, `pub(crate) mod x;`).
fn declared_mods(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in code.lines() {
        let t = l.trim();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub(super) "))
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        if let Some(rest) = t.strip_prefix("mod ") {
            let name: String = rest.chars().take_while(|c| is_ident_char(*c)).collect();
            if !name.is_empty() && rest[name.len()..].trim_start().starts_with(';') {
                out.insert(name);
            }
        }
    }
    out
}

/// Skips a string, char or raw string literal, or a comment, starting at `s[*i]`; false when none starts there.
fn skip_literal(s: &[char], i: &mut usize) -> bool {
    let c = s[*i];
    let prev_ident = *i > 0 && is_ident_char(s[*i - 1]);
    if c == '/' && s.get(*i + 1) == Some(&'*') {
        *i += 2;
        while *i < s.len() && !(s[*i] == '*' && s.get(*i + 1) == Some(&'/')) {
            *i += 1;
        }
        *i += 2;
        return true;
    }
    if c == '/' && s.get(*i + 1) == Some(&'/') {
        while *i < s.len() && s[*i] != '\n' {
            *i += 1;
        }
        return true;
    }
    // r"..", r#".."#, br"..".
    if c == 'r' && !(prev_ident && s[*i - 1] != 'b') {
        let mut j = *i + 1;
        let mut hashes = 0;
        while s.get(j) == Some(&'#') {
            hashes += 1;
            j += 1;
        }
        if s.get(j) == Some(&'"')
            && (hashes > 0 || !s.get(*i + 1).copied().is_some_and(is_ident_char))
        {
            j += 1;
            while j < s.len() {
                if s[j] == '"' && (1..=hashes).all(|h| s.get(j + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            *i = j;
            return true;
        }
        return false;
    }
    if c == '"' {
        *i += 1;
        while *i < s.len() && s[*i] != '"' {
            if s[*i] == '\\' {
                *i += 1;
            }
            *i += 1;
        }
        *i += 1;
        return true;
    }
    if c == '\'' {
        if s.get(*i + 1) == Some(&'\\') {
            // The backslash and the escaped character, then to the closing quote.
            *i += 3;
            while *i < s.len() && s[*i] != '\'' {
                *i += 1;
            }
            *i += 1;
        } else if s.get(*i + 2) == Some(&'\'') {
            *i += 3;
        } else {
            // A lifetime.
            *i += 1;
        }
        return true;
    }
    false
}

/// The names the code of the file of module `module` uses (see the module's documentation).
fn names(module: &[String], code: &str) -> Names {
    let children = declared_mods(code);
    let s: Vec<char> = code.chars().collect();
    let mut out = Names::default();
    // Inline modules: (name, the brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        if skip_literal(&s, &mut i) {
            continue;
        }
        let c = s[i];
        match c {
            '{' => {
                depth += 1;
                if let Some(m) = pending_mod.take() {
                    inline.push((m, depth));
                }
                i += 1;
                continue;
            }
            '}' => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            ';' => pending_mod = None,
            _ => {}
        }
        if !is_ident_char(c) || (i > 0 && (is_ident_char(s[i - 1]) || s[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && is_ident_char(s[i]) {
            i += 1;
        }
        let word: String = s[start..i].iter().collect();
        let here: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(m, _)| m.clone()))
            .collect();
        if word == "mod" {
            let mut j = i;
            skip_ws(&s, &mut j);
            let n = j;
            while j < s.len() && is_ident_char(s[j]) {
                j += 1;
            }
            pending_mod = Some(s[n..j].iter().collect());
            i = j;
            continue;
        }
        let (paths, re_export) = if word == "use" {
            let before: String = s[..start].iter().collect();
            let before = before.trim_end();
            let re_export = before.ends_with("pub")
                || (before.ends_with(')')
                    && before
                        .rfind("pub(")
                        .is_some_and(|p| !before[p..].contains([';', '}', '{'])));
            (paths_at(&s, &mut i), re_export)
        } else if s.get(i) == Some(&':')
            && s.get(i + 1) == Some(&':')
            && (["crate", "super", "self"].contains(&word.as_str())
                || (inline.is_empty() && children.contains(&word)))
        {
            i = start;
            (paths_at(&s, &mut i), false)
        } else {
            continue;
        };
        for p in paths {
            let written = p.join("::");
            let mut rest = p.as_slice();
            let mut base: Vec<String> = Vec::new();
            match rest.first().map(String::as_str) {
                Some("crate") => rest = &rest[1..],
                Some("self") | Some("super") => {
                    base = here.clone();
                    if rest[0] == "self" {
                        rest = &rest[1..];
                    }
                    while rest.first().map(String::as_str) == Some("super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                }
                Some(w) if inline.is_empty() && children.contains(w) => base = here.clone(),
                _ => continue,
            }
            base.extend(rest.iter().cloned());
            if re_export
                && inline.is_empty()
                && base.len() > module.len()
                && base.starts_with(module)
            {
                if let Some(last) = p.last() {
                    out.re_exports.insert(last.clone(), base);
                }
                continue;
            }
            out.imports.push((base, written));
        }
        i = i.max(start + 1);
    }
    out
}

/// The file a module path names in one crate (`modules`: module path -> file): the longest prefix that is a file,
/// following the re-exports of that file.
fn resolve<'a>(
    modules: &'a BTreeMap<Vec<String>, String>,
    re_exports: &BTreeMap<&str, BTreeMap<String, Vec<String>>>,
    path: &[String],
) -> Option<&'a String> {
    let mut path = path.to_vec();
    // A bound: re-exports could name each other in a loop.
    for _ in 0..8 {
        let n = (0..=path.len())
            .rev()
            .find(|n| modules.contains_key(&path[..*n]))?;
        let file = &modules[&path[..n]];
        match path
            .get(n)
            .and_then(|name| re_exports.get(file.as_str())?.get(name))
        {
            Some(target) => path = target.iter().chain(&path[n + 1..]).cloned().collect(),
            None => return Some(file),
        }
    }
    None
}

/// The import circles of `files` (path relative to the root, `/`-separated, and text), in the order of their first
/// file.
pub fn import_circles(files: &[(String, String)]) -> Vec<Circle> {
    // crate -> module path -> file
    let mut crates: BTreeMap<String, BTreeMap<Vec<String>, String>> = BTreeMap::new();
    let has_lib: BTreeSet<&str> = files
        .iter()
        .filter_map(|(p, _)| p.strip_suffix("src/lib.rs"))
        .collect();
    for (path, _) in files {
        if let Some(k) = path.strip_suffix("src/main.rs") {
            if has_lib.contains(k) {
                continue;
            }
        }
        if let Some((k, m)) = module_of(path) {
            crates.entry(k).or_default().insert(m, path.clone());
        }
    }
    let texts: BTreeMap<&str, &str> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let mut out = Vec::new();
    for modules in crates.values() {
        let mut named: BTreeMap<&str, Names> = BTreeMap::new();
        for (module, path) in modules {
            let code: String = code_lines(texts[path.as_str()])
                .into_iter()
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            named.insert(path.as_str(), names(module, &code));
        }
        let re_exports: BTreeMap<&str, BTreeMap<String, Vec<String>>> = named
            .iter()
            .map(|(p, n)| (*p, n.re_exports.clone()))
            .collect();
        // file -> file -> the paths that tie them
        let mut edges: BTreeMap<&str, BTreeMap<&str, BTreeSet<String>>> = BTreeMap::new();
        for (path, n) in &named {
            let e = edges.entry(path).or_default();
            for (target, written) in &n.imports {
                if let Some(to) = resolve(modules, &re_exports, target) {
                    if to != path {
                        e.entry(to.as_str()).or_default().insert(written.clone());
                    }
                }
            }
        }
        for files in components(&edges) {
            if files.len() < 2 {
                continue;
            }
            let mut ties = Vec::new();
            for from in &files {
                for (to, written) in &edges[from] {
                    if files.contains(to) {
                        ties.push((
                            from.to_string(),
                            to.to_string(),
                            written.iter().cloned().collect(),
                        ));
                    }
                }
            }
            out.push(Circle {
                files: files.iter().map(|f| f.to_string()).collect(),
                edges: ties,
            });
        }
    }
    out.sort_by(|a, b| a.files.cmp(&b.files));
    out
}

type Graph<'a> = BTreeMap<&'a str, BTreeMap<&'a str, BTreeSet<String>>>;

/// The strongly connected components of `edges` (Tarjan's algorithm), each sorted.
fn components<'a>(edges: &Graph<'a>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, edges: &Graph<'a>, st: &mut State<'a>) {
        let n = st.index.len();
        st.index.insert(v, n);
        st.low.insert(v, n);
        st.stack.push(v);
        st.on_stack.insert(v);
        for w in edges.get(v).into_iter().flat_map(|m| m.keys().copied()) {
            let seen = st.index.get(w).copied();
            let lw = match seen {
                None => {
                    visit(w, edges, st);
                    st.low[w]
                }
                Some(iw) if st.on_stack.contains(w) => iw,
                Some(_) => continue,
            };
            let lv = st.low.get_mut(v).expect("visited");
            *lv = (*lv).min(lw);
        }
        if st.low[v] == st.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on_stack.remove(w);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            scc.sort();
            st.out.push(scc);
        }
    }
    let mut st = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !st.index.contains_key(v) {
            visit(v, edges, &mut st);
        }
    }
    st.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    fn circles(files: &[(&str, &str)]) -> Vec<Vec<String>> {
        import_circles(&tree(files))
            .into_iter()
            .map(|c| c.files)
            .collect()
    }

    #[test]
    fn module_paths_of_files() {
        let m = |p| module_of(p).map(|(k, m)| (k, m.join("::")));
        assert_eq!(m("a/src/lib.rs"), Some(("a".into(), "".into())));
        assert_eq!(m("a/src/x/mod.rs"), Some(("a".into(), "x".into())));
        assert_eq!(m("a/src/x/y.rs"), Some(("a".into(), "x::y".into())));
        assert_eq!(m("a/src/x/tests.rs"), None);
        assert_eq!(m("a/tests/t.rs"), None);
        assert_eq!(m("a/src/bin/t.rs"), None);
    }

    #[test]
    fn use_trees_expand_into_paths() {
        let s: Vec<char> = "crate::{a::{B, c::D as E}, f, g::*, h::{self, i}};"
            .chars()
            .collect();
        let mut at = 0;
        let got: Vec<String> = paths_at(&s, &mut at).iter().map(|p| p.join("::")).collect();
        assert_eq!(
            got,
            [
                "crate::a::B",
                "crate::a::c::D",
                "crate::f",
                "crate::g",
                "crate::h",
                "crate::h::i"
            ]
        );
        assert_eq!(s[at], ';');
    }

    #[test]
    fn a_tree_has_no_circle() {
        assert_eq!(
            circles(&[
                (
                    "a/src/lib.rs",
                    "pub mod x;\npub mod y;\npub use x::X;\npub enum Error {}\n"
                ),
                (
                    "a/src/x.rs",
                    "use crate::y::Y;\nuse crate::Error;\npub struct X(Y);\n"
                ),
                (
                    "a/src/y.rs",
                    "pub struct Y;\n// use crate::x;\nconst S: &str = \"crate::x::X\";\n"
                ),
            ]),
            Vec::<Vec<String>>::new()
        );
    }

    #[test]
    fn a_loop_of_three_files_is_one_circle() {
        let t = [
            ("a/src/lib.rs", "mod x;\nmod y;\nmod z;\n"),
            ("a/src/x.rs", "use crate::y::Y;\n"),
            ("a/src/y.rs", "pub fn f() { super::z::g() }\n"),
            ("a/src/z/mod.rs", "use crate::{x::X, q};\n"),
            ("b/src/lib.rs", "mod x;\n"),
            ("b/src/x.rs", "use crate::Error;\n"),
        ];
        assert_eq!(
            circles(&t),
            [["a/src/x.rs", "a/src/y.rs", "a/src/z/mod.rs"]]
        );
        let c = &import_circles(&tree(&t))[0];
        assert!(c.edges.contains(&(
            "a/src/y.rs".into(),
            "a/src/z/mod.rs".into(),
            vec!["super::z::g".into()]
        )));
    }

    #[test]
    fn a_parent_that_uses_its_child_and_the_child_the_parent_is_a_circle() {
        // lib.rs uses x (not a re-export) and x uses lib.rs's Error.
        assert_eq!(
            circles(&[
                ("a/src/lib.rs", "mod x;\npub enum Error { X(x::Bad) }\n"),
                (
                    "a/src/x.rs",
                    "pub struct Bad;\nfn f() -> crate::Error { crate::Error::X(Bad) }\n"
                ),
            ]),
            [["a/src/lib.rs", "a/src/x.rs"]]
        );
    }

    #[test]
    fn re_exports_are_followed_to_the_defining_file() {
        // rpm/mod.rs re-exports error::Error and uses fetch; fetch names `super::Error`, which is error.rs's.
        assert_eq!(
            circles(&[
                ("m/src/lib.rs", "pub mod rpm;\n"),
                (
                    "m/src/rpm/mod.rs",
                    "mod error;\nmod fetch;\npub use error::Error;\nuse fetch::Fetcher;\n"
                ),
                ("m/src/rpm/error.rs", "pub enum Error {}\n"),
                (
                    "m/src/rpm/fetch.rs",
                    "use super::Error;\npub struct Fetcher;\n"
                ),
            ]),
            Vec::<Vec<String>>::new()
        );
    }

    #[test]
    fn inline_modules_shift_super_and_test_code_is_skipped() {
        assert_eq!(
            circles(&[
                ("a/src/lib.rs", "pub mod k;\npub mod c;\n"),
                ("a/src/c.rs", "use crate::k::ports;\n"),
                // `super` inside `mod ports` is k itself; the test module's import of c is no edge.
                (
                    "a/src/k.rs",
                    "pub struct V;\npub mod ports {\n    use super::V;\n}\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\n",
                ),
            ]),
            Vec::<Vec<String>>::new()
        );
        // The same import outside the test module closes a circle.
        assert_eq!(
            circles(&[
                ("a/src/lib.rs", "pub mod k;\npub mod c;\n"),
                ("a/src/c.rs", "use crate::k::ports;\n"),
                (
                    "a/src/k.rs",
                    "pub mod ports {\n    use crate::c::C;\n}\nconst B: char = '{';\n"
                ),
            ]),
            [["a/src/c.rs", "a/src/k.rs"]]
        );
    }
}
