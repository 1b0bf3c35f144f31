//! Invalid recipes and platforms: each kind of mistake is an error naming the
//! file, the key and the line, and the command exits with status 2.

use std::{fs, path::Path, process::Command};

use xtask::input::{platform, recipe};

const VALID: &str = r#"[set]
description = "test set"
platforms = ["linux"]

[set.package]
name = "pkg"
release = "1"
summary = "s"
license = "PostgreSQL"
url = "https://example.invalid/"

[set.smoke]
driver = "pglogical"
preload = "pglogical"
extensions = ["pglogical"]

[[component]]
name = "server"
version = "1.0"
role = "server"

[component.source]
file = "server-1.0.tar.gz"
urls = ["https://example.invalid/server-1.0.tar.gz"]
sha256 = "11df0df97fe3ea4ba9a791faaf39cee1d2fe571e78885b5b55d8517d27c323b4"
archive = "tar.gz"

[[component.step]]
kind = "configure"
run = ["./configure", "--prefix={prefix}"]

[[component]]
name = "plugin"
version = "2.0"
role = "plugin"
depends = ["server"]

[component.source]
file = "plugin-2.0.tar.gz"
urls = ["https://example.invalid/plugin-2.0.tar.gz"]
tree = "13c5d6014a3a170a1f5c8b2e6abf9b77b2bf8eee"
commit = "7e8d53388b86b3363ac3a28e0778bdb24dfc4c9d"
archive = "tar.gz"
max_unpacked = "512 MiB"

[[component.step]]
kind = "compile"
run = ["{make}"]
"#;

fn parse(text: &str) -> anyhow::Result<recipe::RecipeSet> {
    recipe::parse(
        Path::new("recipes/t.toml"),
        text,
        "t",
        &["linux".to_owned(), "openbsd".to_owned()],
    )
}

/// The error for `text`, which must be invalid input located at `line`.
fn error_of(text: &str, line: usize) -> String {
    let error = parse(text).expect_err("invalid recipe accepted");
    assert!(
        error
            .downcast_ref::<xtask::input::located::InvalidInput>()
            .is_some(),
        "not an input error: {error:#}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("recipes/t.toml:{line}:")),
        "wrong location: {message}"
    );
    message
}

fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

#[test]
fn the_valid_recipe_loads() {
    let set = parse(VALID).unwrap();
    assert_eq!(set.components.len(), 2);
}

#[test]
fn unknown_key() {
    let text = VALID.replace("role = \"plugin\"", "role = \"plugin\"\nflavour = \"mint\"");
    let message = error_of(&text, line_of(&text, "flavour"));
    assert!(
        message.contains("key `component.flavour`") && message.contains("unknown field `flavour`"),
        "{message}"
    );
}

#[test]
fn missing_field() {
    let text = VALID.replace("version = \"2.0\"\n", "");
    let message = error_of(&text, line_of(&text, "[[component]]\nname = \"plugin\""));
    assert!(message.contains("missing field `version`"), "{message}");
}

#[test]
fn malformed_sha256() {
    let text = VALID.replace("sha256 = \"11df", "sha256 = \"XYZ");
    let message = error_of(&text, line_of(&text, "sha256"));
    assert!(
        message.contains("key `component.source.sha256`")
            && message.contains("64 lowercase hex digits"),
        "{message}"
    );
}

#[test]
fn malformed_commit() {
    let text = VALID.replace(
        "commit = \"7e8d53388b86b3363ac3a28e0778bdb24dfc4c9d\"",
        "commit = \"7e8d5338\"",
    );
    let message = error_of(&text, line_of(&text, "commit"));
    assert!(
        message.contains("key `component.source.commit`")
            && message.contains("40 lowercase hex digits"),
        "{message}"
    );
}

#[test]
fn dependency_on_a_component_that_does_not_exist() {
    let text = VALID.replace("depends = [\"server\"]", "depends = [\"sever\"]");
    let message = error_of(&text, line_of(&text, "depends"));
    assert!(
        message.contains("key `component.depends`") && message.contains("`sever`"),
        "{message}"
    );
}

#[test]
fn platform_that_does_not_exist() {
    let text = VALID.replace(
        "platforms = [\"linux\"]",
        "platforms = [\"linux\", \"solaris\"]",
    );
    let message = error_of(&text, 3);
    assert!(
        message.contains("key `set.platforms`") && message.contains("`solaris` does not exist"),
        "{message}"
    );
}

#[test]
fn a_source_pinned_by_commit_only_is_refused() {
    // A commit id is a label `git archive` writes into a header: anyone can forge it.
    let text = VALID.replace("tree = \"13c5d6014a3a170a1f5c8b2e6abf9b77b2bf8eee\"\n", "");
    let message = error_of(&text, line_of(&text, "commit = "));
    assert!(
        message.contains("key `component.source.commit`")
            && message.contains("no content pin")
            && message.contains("`sha256`")
            && message.contains("`tree`"),
        "{message}"
    );
}

#[test]
fn a_source_with_no_pin_at_all_is_refused() {
    let text = VALID
        .replace("tree = \"13c5d6014a3a170a1f5c8b2e6abf9b77b2bf8eee\"\n", "")
        .replace(
            "commit = \"7e8d53388b86b3363ac3a28e0778bdb24dfc4c9d\"\n",
            "",
        );
    let message = error_of(&text, line_of(&text, "file = \"plugin-2.0.tar.gz\""));
    assert!(
        message.contains("key `component.source`") && message.contains("no content pin"),
        "{message}"
    );
}

#[test]
fn malformed_tree() {
    let text = VALID.replace("tree = \"13c5d601", "tree = \"13C5D601");
    let message = error_of(&text, line_of(&text, "tree = "));
    assert!(
        message.contains("key `component.source.tree`")
            && message.contains("40 lowercase hex digits"),
        "{message}"
    );
}

#[test]
fn malformed_size_limit() {
    let text = VALID.replace("max_unpacked = \"512 MiB\"", "max_unpacked = \"512MB\"");
    let message = error_of(&text, line_of(&text, "max_unpacked"));
    assert!(
        message.contains("key `component.source.max_unpacked`") && message.contains("`4 GiB`"),
        "{message}"
    );
}

#[test]
fn size_limits_default_and_parse() {
    let set = parse(VALID).unwrap();
    assert_eq!(set.components[0].source.max_download, 1 << 30);
    assert_eq!(set.components[0].source.max_unpacked, 4 << 30);
    assert_eq!(set.components[1].source.max_unpacked, 512 << 20);
}

#[test]
fn unknown_template_variable() {
    let text = VALID.replace("--prefix={prefix}", "--prefix={prefx}");
    let message = error_of(&text, line_of(&text, "[[component.step]]"));
    assert!(
        message.contains("unknown template variable `{prefx}`"),
        "{message}"
    );
}

#[test]
fn unknown_enum_value() {
    let text = VALID.replace(
        "archive = \"tar.gz\"\n\n[[component.step]]\nkind = \"configure\"",
        "archive = \"zip\"\n\n[[component.step]]\nkind = \"configure\"",
    );
    let message = error_of(&text, line_of(&text, "\"zip\""));
    assert!(
        message.contains("key `component.source.archive`") && message.contains("zip"),
        "{message}"
    );
}

#[test]
fn platform_file_with_an_unknown_key_and_a_missing_field() {
    let root = xtask::project_root();
    let text = fs::read_to_string(root.join("platforms/linux.toml")).unwrap();
    let bad = text.replace("make = \"make\"", "make = \"make\"\nmake_flags = \"-k\"");
    let error = platform::parse(Path::new("platforms/linux.toml"), &bad, "linux")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "platforms/linux.toml:{}:",
            line_of(&bad, "make_flags")
        )),
        "{error}"
    );
    assert!(error.contains("unknown field `make_flags`"), "{error}");
    let bad = text.replace("escalate = \"sudo\"\n", "");
    let error = platform::parse(Path::new("platforms/linux.toml"), &bad, "linux")
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing field `escalate`"), "{error}");
}

fn xtask(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("BDR_DIST_RECIPES")
        .output()
        .unwrap()
}

#[test]
fn the_command_exits_2_on_an_invalid_recipe_and_runs_nothing() {
    let dir = xtask::files::tempdir().unwrap();
    let bad = VALID.replace("sha256 = \"11df", "sha256 = \"XYZ");
    fs::write(dir.path().join("bad.toml"), &bad).unwrap();
    let recipes = dir.path().to_str().unwrap();
    let output = xtask(&[
        "plan",
        "--recipes",
        recipes,
        "--set",
        "bad",
        "--platform",
        "linux",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "printed a plan for an invalid recipe"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:{}:",
        dir.path().join("bad.toml").display(),
        line_of(&bad, "sha256")
    );
    assert!(
        stderr.contains(&expected) && stderr.contains("component.source.sha256"),
        "{stderr}"
    );
}

#[test]
fn the_command_exits_2_on_an_unknown_platform_or_set() {
    let output = xtask(&["plan", "--platform", "solaris"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("platform `solaris` does not exist"));
    let output = xtask(&["plan", "--set", "nope", "--platform", "linux"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no recipe set `nope`"));
}

#[test]
fn a_set_name_that_climbs_out_of_the_recipe_directory_is_refused() {
    let dir = xtask::files::tempdir().unwrap();
    let recipes = dir.path().join("recipes");
    fs::create_dir(&recipes).unwrap();
    // A valid recipe one level up, which `--set ../escape` would otherwise load.
    fs::write(dir.path().join("escape.toml"), VALID).unwrap();
    let output = xtask(&[
        "plan",
        "--recipes",
        recipes.to_str().unwrap(),
        "--set",
        "../escape",
        "--platform",
        "linux",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("`../escape` is not a set name"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_recipe_directory_from_the_environment_is_used() {
    let dir = xtask::files::tempdir().unwrap();
    fs::write(dir.path().join("mine.toml"), VALID).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["plan", "--set", "mine", "--platform", "linux", "--json"])
        .env("BDR_DIST_RECIPES", dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["set"], "mine");
    assert_eq!(plan["steps"][0]["file"], "server-1.0.tar.gz");
}
