//! The house rules can fail: violating files fed to the checker, one per rule, are found with their line; the same
//! text where it is allowed (tests, the runner crate, model/, comments) is not; a tree with a violation fails the
//! binary until allow.toml lists it, and an exception that matches nothing fails it again. Last, this repository
//! itself is clean (what `make check-house` runs). An import circle between a crate's files fails the tree the same way.

use std::path::Path;
use std::process::Command;

use kubeha_house::{
    check_file, check_tree, code_lines, has_kernel_arg_literal, test_support_crates, Rule,
};

fn lines(path: &str, text: &str, rule: Rule) -> Vec<usize> {
    check_file(path, text)
        .into_iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.line)
        .collect()
}

const RUNS_A_TOOL: &str = "use std::process::Command;\n\
fn f() {\n    let _ = Command::new(\"xorriso\").output();\n}\n";

#[test]
fn command_new_outside_the_runner_and_tests_is_found() {
    assert_eq!(lines("image/src/iso.rs", RUNS_A_TOOL, Rule::Command), [3]);
    assert_eq!(
        lines(
            "cli/src/x.rs",
            "    std::process::Command::new(\"gcc\")\n",
            Rule::Command
        ),
        [1]
    );
    for allowed in [
        "runner/src/lib.rs",
        "image/tests/post.rs",
        "firstboot/src/render/tests.rs",
        "firstboot/src/providers/configdrive/mock_tests.rs",
    ] {
        assert!(
            lines(allowed, RUNS_A_TOOL, Rule::Command).is_empty(),
            "{allowed}"
        );
    }
    // A test module is skipped to its closing brace; code after it is checked again.
    let text = "fn a() {}\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {\n        \
                std::process::Command::new(\"sh\");\n    }\n}\nfn b() { std::process::Command::new(\"x\"); }\n\
                // Command::new in a comment\n#[cfg(test)]\nmod mock_tests;\nfn c() { Command::new(\"y\"); }\n";
    assert_eq!(lines("firstboot/src/x.rs", text, Rule::Command), [9, 13]);
    assert_eq!(
        code_lines(text).iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [1, 9, 13]
    );
}

#[test]
fn awk_sed_and_bundle_toml_in_kickstart_templates_are_found() {
    let pre = "# awk and sed in a comment are fine\n\
               hit=$(printf '%s\\n' \"$NODES\" | awk -v m=\"$mac\" '$4 == m { print $1 }')\n\
               label=$(arg inst.stage2 | sed -n 's/x/y/p')\n\
               used=1; parsed=2\n\
               fetch bundle.toml \"$BUNDLE/bundle.toml\"\n";
    assert_eq!(
        lines("kickstart/templates/pre.sh", pre, Rule::KickstartTextTools),
        [2, 3, 5]
    );
    // Shell elsewhere is not a kickstart template.
    assert!(lines("scripts/demo/x.sh", pre, Rule::KickstartTextTools).is_empty());
}

#[test]
fn kernel_argument_literals_outside_model_are_found() {
    for (line, hit) in [
        ("let k = \"kubeha.role\";", true),
        ("format!(\"kubeha.config.sha256={sha}\")", true),
        ("args.push(\"kubeha.reinstall=1\".into());", true),
        ("\"kubeha.future=1\"", true),
        (".filter(|n| n != \"kubeha.repo\")", false),
        ("\"Labels\": {\"kubeha.test\": label}", false),
        ("let k = Key::Role.as_str();", false),
    ] {
        assert_eq!(has_kernel_arg_literal(line), hit, "{line}");
    }
    let text = "fn f() -> &'static str {\n    \"kubeha.name\"\n}\n";
    assert_eq!(
        lines("kickstart/src/lib.rs", text, Rule::KernelArgLiteral),
        [2]
    );
    assert!(lines("model/src/kernel_args.rs", text, Rule::KernelArgLiteral).is_empty());
    assert!(lines("kickstart/tests/render.rs", text, Rule::KernelArgLiteral).is_empty());
}

fn run(root: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kubeha-house"))
        .arg(root)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn the_binary_fails_on_a_violating_tree_until_an_exception_with_a_reason_lists_it() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir_all(root.join("image/src")).unwrap();
    std::fs::create_dir_all(root.join("house")).unwrap();
    std::fs::write(root.join("image/src/iso.rs"), RUNS_A_TOOL).unwrap();
    let (code, out) = run(root);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("image/src/iso.rs:3: command:"), "{out}");
    // An exception needs a reason.
    std::fs::write(
        root.join("house/allow.toml"),
        "[[allow]]\nrule = \"command\"\npath = \"image/src/iso.rs\"\nreason = \"\"\n",
    )
    .unwrap();
    let (code, out) = run(root);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("has no reason"), "{out}");
    std::fs::write(
        root.join("house/allow.toml"),
        "[[allow]]\nrule = \"command\"\npath = \"image/src/iso.rs\"\nreason = \"a test\"\n",
    )
    .unwrap();
    let (code, out) = run(root);
    assert_eq!((code, out.trim()), (0, "house rules: clean"));
    // The violation fixed: the exception is stale, which fails too.
    std::fs::write(root.join("image/src/iso.rs"), "fn f() {}\n").unwrap();
    let (code, out) = run(root);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "house/allow.toml:0: command: the exception for image/src/iso.rs matches nothing"
        ),
        "{out}"
    );
}

#[test]
fn an_import_circle_fails_the_tree_naming_its_files_until_an_exception_lists_it() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir_all(root.join("fb/src/cluster")).unwrap();
    std::fs::write(
        root.join("fb/src/lib.rs"),
        "pub mod cluster;\npub mod engine;\npub mod status;\n",
    )
    .unwrap();
    std::fs::write(root.join("fb/src/cluster/mod.rs"), "pub mod steps;\n").unwrap();
    std::fs::write(
        root.join("fb/src/engine.rs"),
        "use crate::status::Reporter;\npub struct Context;\n",
    )
    .unwrap();
    std::fs::write(
        root.join("fb/src/status.rs"),
        "pub struct Reporter;\nfn f() -> &'static str { crate::cluster::steps::DECISION_FILE }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("fb/src/cluster/steps.rs"),
        "use crate::engine::{Context, Step};\npub const DECISION_FILE: &str = \"d\";\n",
    )
    .unwrap();
    let findings = check_tree(root).unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(
        (f.rule, f.path.as_str()),
        (Rule::ImportCircle, "fb/src/cluster/steps.rs")
    );
    for part in [
        "fb/src/cluster/steps.rs, fb/src/engine.rs, fb/src/status.rs",
        "fb/src/engine.rs -> fb/src/status.rs (crate::status::Reporter)",
        "fb/src/status.rs -> fb/src/cluster/steps.rs (crate::cluster::steps::DECISION_FILE)",
    ] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
    std::fs::create_dir_all(root.join("house")).unwrap();
    std::fs::write(
        root.join("house/allow.toml"),
        "[[allow]]\nrule = \"import-circle\"\npath = \"fb/src/cluster/steps.rs\"\nreason = \"a test\"\n",
    )
    .unwrap();
    assert_eq!(check_tree(root).unwrap(), []);
    // Broken by moving the constant out of steps.rs: no circle, and the exception is stale.
    std::fs::write(
        root.join("fb/src/cluster/steps.rs"),
        "use crate::engine::Context;\n",
    )
    .unwrap();
    std::fs::write(root.join("fb/src/status.rs"), "pub struct Reporter;\n").unwrap();
    let findings = check_tree(root).unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].message.contains("matches nothing"),
        "{findings:?}"
    );
}

#[test]
fn this_repository_keeps_the_house_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let findings = check_tree(&root).unwrap();
    assert!(
        findings.is_empty(),
        "{}",
        findings
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // And it looked: the templates and the runner's own Command::new are among the files.
    let files = kubeha_house::files(&root).unwrap();
    for f in [
        "kickstart/templates/pre.sh",
        "runner/src/lib.rs",
        "model/src/kernel_args.rs",
    ] {
        assert!(files.iter().any(|x| x == f), "{f}");
    }
}

#[test]
fn an_unpublished_crate_only_ever_a_dev_dependency_is_test_support() {
    let m = |path: &str, text: &str| (path.to_string(), text.to_string());
    let lab = m(
        "lab/Cargo.toml",
        "[package]\nname = \"kubeha-lab\"\npublish = false\n",
    );
    let house = m(
        "house/Cargo.toml",
        "[package]\nname = \"kubeha-house\"\npublish = false\n",
    );
    let user = m(
        "mirror/Cargo.toml",
        "[package]\nname = \"kubeha-mirror\"\n[dev-dependencies]\nkubeha-lab.workspace = true\n",
    );
    assert_eq!(
        test_support_crates(&[lab.clone(), house.clone(), user.clone()]).unwrap(),
        ["lab"]
    );
    // Published, or a dependency of shipped code anywhere (any target), and it is not.
    let published = m("lab/Cargo.toml", "[package]\nname = \"kubeha-lab\"\n");
    assert!(test_support_crates(&[published, user.clone()])
        .unwrap()
        .is_empty());
    let shipped = m(
        "cli/Cargo.toml",
        "[package]\nname = \"kubeha\"\n[target.'cfg(unix)'.dependencies]\nlab = { package = \"kubeha-lab\", path = \"../lab\" }\n",
    );
    assert!(test_support_crates(&[lab.clone(), user, shipped])
        .unwrap()
        .is_empty());

    // In a tree: Command::new in the lab crate is no finding, in its user's src/ it still is.
    let root = tempfile::tempdir().unwrap();
    let put = |p: &str, t: &str| {
        let f = root.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, t).unwrap();
    };
    put("lab/Cargo.toml", &lab.1);
    put("lab/src/lib.rs", RUNS_A_TOOL);
    put(
        "mirror/Cargo.toml",
        "[package]\nname = \"kubeha-mirror\"\n[dev-dependencies]\nkubeha-lab = { path = \"../lab\" }\n",
    );
    put("mirror/src/lib.rs", RUNS_A_TOOL);
    let found = check_tree(root.path()).unwrap();
    let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["mirror/src/lib.rs"], "{found:?}");
}
