//! Invalid recipes and platforms: each kind of mistake is an error naming the
//! file, the key and the line, and the command exits with status 2.

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

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

// Values that become paths. Each hostile value is refused on load, by a
// command that would write (`fetch`), with exit status 2 and an error naming
// file, line and key; and nothing is written, neither in the target
// directory nor around it. The target sits four levels below the work
// directory, so that a value climbing out of it would land inside the work
// directory, where the test looks.

/// Every path below `dir`, directories included, sorted.
fn paths_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

/// A work directory with a recipe set `t`, maybe a platform directory, and
/// a target four levels down.
struct Work {
    dir: xtask::files::TempDir,
    recipe: String,
    platform: Option<String>,
}

impl Work {
    fn new(recipe: &str, platform: Option<&str>) -> Work {
        let dir = xtask::files::tempdir().unwrap();
        fs::create_dir(dir.path().join("recipes")).unwrap();
        fs::write(dir.path().join("recipes/t.toml"), recipe).unwrap();
        if let Some(text) = platform {
            fs::create_dir(dir.path().join("platforms")).unwrap();
            fs::write(dir.path().join("platforms/linux.toml"), text).unwrap();
        }
        Work {
            dir,
            recipe: recipe.to_owned(),
            platform: platform.map(str::to_owned),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn target(&self) -> PathBuf {
        self.path().join("1/2/3/4/target")
    }

    /// `cargo xtask fetch --set t --platform linux` and `extra`.
    fn fetch(&self, extra: &[&str]) -> std::process::Output {
        let recipes = self.path().join("recipes");
        let mut command = support::xtask_command(&self.target());
        command
            .args(["fetch", "--set", "t", "--platform", "linux", "--recipes"])
            .arg(&recipes)
            .args(extra);
        if self.platform.is_some() {
            command
                .arg("--platforms")
                .arg(self.path().join("platforms"));
        }
        command.output().unwrap()
    }

    /// `fetch` must exit 2 naming the file that holds `needle`, its line
    /// and `key`, and write nothing anywhere in the work directory.
    fn refused(&self, extra: &[&str], needle: &str, key: &str) -> String {
        let before = paths_below(self.path());
        let output = self.fetch(extra);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        let (file, text) = match &self.platform {
            Some(text) => (self.path().join("platforms/linux.toml"), text),
            None => (self.path().join("recipes/t.toml"), &self.recipe),
        };
        let location = format!("{}:{}:", file.display(), line_of(text, needle));
        assert!(
            stderr.contains(&location) && stderr.contains(&format!("key `{key}`")),
            "expected {location} and key `{key}`: {stderr}"
        );
        assert_eq!(paths_below(self.path()), before, "something was written");
        assert!(!self.target().exists());
        stderr
    }
}

fn recipe_refused(recipe: &str, needle: &str, key: &str) -> String {
    Work::new(recipe, None).refused(&[], needle, key)
}

/// A one-component set whose source a mirror in `work` serves: a real
/// tar.gz pinned by its sha256, so `fetch` downloads and unpacks it.
fn fetchable_set(work: &Path, name: &str) -> String {
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let body = b"hello\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    archive
        .append_data(&mut header, "hostile-1.0/README", &body[..])
        .unwrap();
    let bytes = archive.into_inner().unwrap().finish().unwrap();
    fs::create_dir_all(work.join("mirror")).unwrap();
    fs::write(work.join("mirror/hostile-1.0.tar.gz"), &bytes).unwrap();
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    format!(
        r#"[set]
description = "one fetchable source"
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
name = "{name}"
version = "1.0"
role = "server"

[component.source]
file = "hostile-1.0.tar.gz"
urls = ["https://example.invalid/hostile-1.0.tar.gz"]
sha256 = "{sha256}"
archive = "tar.gz"

[[component.step]]
kind = "configure"
run = ["./configure"]
"#
    )
}

#[test]
fn a_component_name_that_climbs_out_of_the_target_is_refused_before_fetch_writes() {
    // The control: with a plain name, the mirror's archive is fetched and
    // unpacked, and everything written is below the target.
    let plain = Work::new("", None);
    let recipe = fetchable_set(plain.path(), "hostile");
    fs::write(plain.path().join("recipes/t.toml"), &recipe).unwrap();
    let mirror = plain.path().join("mirror").display().to_string();
    let output = plain.fetch(&["--mirror", &mirror]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let unpacked = plain.target().join("sets/t/src/hostile-1.0/README");
    assert!(unpacked.is_file(), "the control fetched nothing");
    let outside: Vec<PathBuf> = paths_below(plain.path())
        .into_iter()
        .filter(|path| {
            !path.starts_with(plain.target())
                && !path.starts_with(plain.path().join("recipes"))
                && !path.starts_with(plain.path().join("mirror"))
                && !plain.target().starts_with(path)
        })
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the target: {outside:?}"
    );

    // The same set named `../../../../bdr-dist-hostile-name` would unpack,
    // write its tree, epoch and stamps four levels up: it is refused first.
    let hostile = Work::new("", None);
    let recipe = fetchable_set(hostile.path(), "../../../../bdr-dist-hostile-name");
    fs::write(hostile.path().join("recipes/t.toml"), &recipe).unwrap();
    let hostile = Work { recipe, ..hostile };
    let mirror = hostile.path().join("mirror").display().to_string();
    let message = hostile.refused(
        &["--mirror", &mirror],
        "bdr-dist-hostile-name",
        "component.name",
    );
    assert!(message.contains("is not a plain name"), "{message}");
}

#[test]
fn a_component_version_that_is_a_path_is_refused() {
    let text = VALID.replace("version = \"2.0\"", "version = \"2.0/../../../x\"");
    let message = recipe_refused(&text, "2.0/../", "component.version");
    assert!(message.contains("is not a version"), "{message}");
}

#[test]
fn a_source_file_name_that_climbs_out_of_the_cache_is_refused() {
    let text = VALID.replace(
        "file = \"plugin-2.0.tar.gz\"",
        "file = \"../../plugin-2.0.tar.gz\"",
    );
    recipe_refused(&text, "../../plugin", "component.source.file");
}

#[test]
fn a_step_label_that_is_a_path_is_refused() {
    let text = VALID.replace(
        "kind = \"compile\"\n",
        "kind = \"compile\"\nlabel = \"../../../stamps-elsewhere\"\n",
    );
    recipe_refused(&text, "label = ", "component.step.label");
}

#[test]
fn a_step_directory_outside_the_source_tree_is_refused() {
    for dir in ["../../..", "/tmp", "{src}/..", "contrib/../.."] {
        let text = VALID.replace(
            "kind = \"compile\"\n",
            &format!("kind = \"compile\"\ndir = \"{dir}\"\n"),
        );
        let message = recipe_refused(&text, "dir = ", "component.step.dir");
        assert!(message.contains("not a relative path"), "{message}");
    }
}

#[test]
fn a_subpackage_name_that_is_a_path_is_refused() {
    let text = VALID.replace(
        "depends = [\"server\"]",
        "depends = [\"server\"]\nsubpackage = \"../evil\"",
    );
    recipe_refused(&text, "subpackage", "component.subpackage");
}

#[test]
fn a_package_name_that_is_a_path_is_refused() {
    let text = VALID.replace("name = \"pkg\"", "name = \"../../../pkg\"");
    recipe_refused(&text, "../../../pkg", "set.package.name");
}

#[test]
fn a_package_version_with_a_separator_is_refused() {
    for version in ["1.0-2", "../1.0"] {
        let text = VALID.replace(
            "name = \"pkg\"",
            &format!("name = \"pkg\"\nversion = \"{version}\""),
        );
        let message = recipe_refused(&text, "version = \"", "set.package.version");
        assert!(message.contains("is not a version"), "{message}");
    }
}

#[test]
fn a_package_release_that_is_a_path_is_refused() {
    let text = VALID.replace("release = \"1\"", "release = \"1/../../x\"");
    recipe_refused(&text, "release = ", "set.package.release");
}

#[test]
fn a_provided_package_name_with_a_space_is_refused() {
    let text = VALID.replace(
        "name = \"pkg\"",
        "name = \"pkg\"\nprovides = \"postgresql15 evil\"",
    );
    recipe_refused(&text, "provides", "set.package.provides");
}

#[test]
fn a_prefix_that_is_not_a_normalized_absolute_path_is_refused() {
    for prefix in [
        "/usr/../etc",
        "usr/pgsql",
        "/usr/pgsql/",
        "/usr//pgsql",
        "/",
        "/opt/a b",
    ] {
        let text = VALID.replace(
            "[set.package]",
            &format!("[set.prefix]\nlinux = \"{prefix}\"\n\n[set.package]"),
        );
        let message = recipe_refused(&text, "linux = ", "set.prefix.linux");
        assert!(
            message.contains("is not a normalized absolute path"),
            "{message}"
        );
    }
}

/// The repository's linux platform, with `from` replaced by `to`.
fn platform_with(from: &str, to: &str) -> String {
    let text = fs::read_to_string(xtask::project_root().join("platforms/linux.toml")).unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

fn platform_refused(from: &str, to: &str, key: &str) -> String {
    Work::new(VALID, Some(&platform_with(from, to))).refused(&[], to, key)
}

#[test]
fn a_default_prefix_that_climbs_is_refused() {
    let message = platform_refused(
        "default_prefix = \"/usr/pgsql-9.4-bdr\"",
        "default_prefix = \"/usr/pgsql/../../etc\"",
        "default_prefix",
    );
    assert!(
        message.contains("is not a normalized absolute path"),
        "{message}"
    );
}

#[test]
fn a_relative_service_home_is_refused() {
    platform_refused(
        "service_home = \"/var/lib/pgsql\"",
        "service_home = \"var/lib/pgsql\"",
        "service_home",
    );
}

#[test]
fn a_service_user_that_reads_as_an_option_is_refused() {
    let message = platform_refused(
        "service_user = \"postgres\"",
        "service_user = \"-ohome\"",
        "service_user",
    );
    assert!(message.contains("is not a user or group name"), "{message}");
}

#[test]
fn a_smoke_user_that_is_a_path_is_refused() {
    platform_refused(
        "smoke_user = \"bdr-dist-smoke\"",
        "smoke_user = \"../../root\"",
        "smoke_user",
    );
}

#[test]
fn an_install_group_with_a_space_is_refused() {
    platform_refused(
        "group = \"root\"",
        "group = \"root wheel\"",
        "install.group",
    );
}

#[test]
fn a_header_directory_that_is_not_normalized_is_refused() {
    platform_refused(
        "header_dirs = [\"/usr/include\", \"/usr/local/include\"]",
        "header_dirs = [\"/usr/include\", \"/usr/local/include/../..\"]",
        "header_dirs",
    );
}

#[test]
fn a_prerequisite_header_that_climbs_out_of_the_header_directories_is_refused() {
    platform_refused(
        "header = \"zlib.h\"",
        "header = \"../../etc/shadow\"",
        "prerequisite.header",
    );
}

#[test]
fn a_prerequisite_program_that_is_a_relative_path_is_refused() {
    let message = platform_refused(
        "program = \"flex\"",
        "program = \"../bin/flex\"",
        "prerequisite.program",
    );
    assert!(message.contains("is not a program"), "{message}");
}

/// The SRPM's BuildRequires are EL's package names: a build prerequisite
/// of a platform that makes RPMs without one would leave the rebuild short
/// of it, so it is refused rather than left out.
#[test]
fn a_build_prerequisite_without_an_el_package_is_refused() {
    let message = platform_refused(
        "packages = { apt-get = \"flex\", dnf = \"flex\" }",
        "packages = { apt-get = \"flex\" }",
        "prerequisite.packages",
    );
    assert!(
        message.contains("`flex` (purpose build) names no `dnf` package: the SRPM's"),
        "{message}"
    );
}

/// What rpm-build brings itself is not required of the SRPM's rebuild, so
/// it needs no EL name.
#[test]
fn a_prerequisite_left_out_of_the_build_requires_needs_no_el_package() {
    let platform = platform_with(
        "packages = { apt-get = \"debugedit\", dnf = \"debugedit\" }",
        "packages = { apt-get = \"debugedit\" }",
    );
    let path = Path::new("platforms/linux.toml");
    let loaded = xtask::input::platform::parse(path, &platform, "linux").unwrap();
    assert!(!loaded
        .srpm_build_requires(true)
        .contains(&"debugedit".to_owned()));
}

#[test]
fn a_package_manager_program_with_an_argument_is_refused() {
    platform_refused(
        "program = \"dnf\"",
        "program = \"dnf -y\"",
        "package_manager.program",
    );
}

#[test]
fn a_make_program_with_an_argument_is_refused() {
    platform_refused("make = \"make\"", "make = \"make -k\"", "make");
}

#[test]
fn a_compiler_that_is_a_relative_path_is_refused() {
    platform_refused("cc = \"cc\"", "cc = \"./cc\"", "cc");
}

#[test]
fn an_escalation_program_with_an_argument_is_refused() {
    platform_refused("escalate = \"sudo\"", "escalate = \"sudo -E\"", "escalate");
}

// Flags that name paths or URLs, checked before anything runs: exit status
// 2, the value named, and nothing written in a fresh target.

/// `cargo xtask ARGS` (with `env` set) in a fresh target: it must exit 2,
/// say `expected`, and create nothing.
fn flag_refused(args: &[&str], env: &[(&str, &str)], expected: &str) {
    let work = xtask::files::tempdir().unwrap();
    let target = work.path().join("target");
    let output = support::xtask_command(&target)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(
        paths_below(work.path()).is_empty(),
        "{args:?} wrote {:?}",
        paths_below(work.path())
    );
}

#[test]
fn a_mirror_that_is_a_file_is_refused_before_anything_runs() {
    // It used to be tried as a directory, fail for every source, and fall
    // through to the network (exit 1 after retries), or pass on the cache.
    for command in ["fetch", "build", "dist", "plan"] {
        flag_refused(
            &[
                command,
                "--set",
                "pg15-pglogical",
                "--mirror",
                "/etc/passwd",
            ],
            &[],
            "`/etc/passwd` is not a directory",
        );
    }
    flag_refused(
        &["fetch", "--set", "pg15-pglogical"],
        &[("BDR_DIST_MIRROR", "/etc,/etc/passwd")],
        "`/etc/passwd` is not a directory",
    );
}

#[test]
fn a_mirror_url_that_names_no_directory_or_an_unknown_scheme_is_refused() {
    for (mirror, expected) in [
        ("file:///etc/passwd", "names no directory"),
        ("file://etc", "names no directory"),
        ("ftp://mirror.example.invalid/pub", "unknown scheme"),
        ("https://", "needs a host"),
        ("http:///path", "needs a host"),
        ("https://mirror.example.invalid/a b", "no spaces"),
        ("/nonexistent/bdr-dist-mirror", "is not a directory"),
    ] {
        flag_refused(
            &["fetch", "--set", "pg15-pglogical", "--mirror", mirror],
            &[],
            expected,
        );
    }
}

#[test]
fn directories_and_http_urls_are_mirrors_tried_first() {
    let dir = xtask::files::tempdir().unwrap();
    let file_url = format!("file://{}", dir.path().display());
    let output = xtask(&[
        "plan",
        "--set",
        "pg15-pglogical",
        "--platform",
        "linux",
        "--json",
        "--mirror",
        dir.path().to_str().unwrap(),
        "--mirror",
        &file_url,
        "--mirror",
        "https://mirror.example.invalid/pub/",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let urls: Vec<&str> = plan["steps"][0]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|url| url.as_str().unwrap())
        .collect();
    let file = plan["steps"][0]["file"].as_str().unwrap();
    assert_eq!(
        urls[..3],
        [
            format!("{}/{file}", dir.path().display()),
            format!("{file_url}/{file}"),
            format!("https://mirror.example.invalid/pub/{file}"),
        ]
    );
}

#[test]
fn recipe_and_platform_directories_that_are_not_directories_are_refused() {
    for flag in ["--recipes", "--platforms"] {
        flag_refused(
            &["plan", flag, "/etc/passwd"],
            &[],
            "`/etc/passwd` is not a directory",
        );
    }
    flag_refused(
        &["plan"],
        &[("BDR_DIST_PLATFORMS", "/nonexistent/platforms")],
        "`/nonexistent/platforms` is not a directory",
    );
}

#[test]
fn an_output_directory_that_is_a_file_or_below_one_is_refused() {
    flag_refused(
        &["package", "--set", "pg15-pglogical", "--out", "/etc/passwd"],
        &[],
        "`/etc/passwd` exists and is not a directory",
    );
    flag_refused(
        &[
            "package",
            "--set",
            "pg15-pglogical",
            "--out",
            "/etc/passwd/dist",
        ],
        &[],
        "/etc/passwd is not a directory",
    );
}

#[test]
fn a_prefix_flag_that_is_not_a_normalized_absolute_path_is_refused() {
    for command in ["install", "plan"] {
        for prefix in ["usr/local/pgsql", "/usr/local/../../etc", "/"] {
            flag_refused(
                &[command, "--set", "pg15-pglogical", "--prefix", prefix],
                &[],
                "is not a normalized absolute path",
            );
        }
    }
}

#[test]
fn a_user_to_run_as_that_is_no_user_name_is_refused() {
    for command in ["smoke", "doctor"] {
        flag_refused(
            &[command, "--set", "pg15-pglogical", "--run-as=-oroot"],
            &[],
            "is not a user or group name",
        );
    }
}

#[test]
fn a_release_with_a_separator_is_refused() {
    flag_refused(
        &["package", "--set", "pg15-pglogical", "--release", "1-2"],
        &[],
        "is not a version",
    );
}

#[test]
fn a_platform_whose_file_name_is_no_plain_name_is_refused() {
    // Its name becomes part of the tarball's, manifest's and SBOM's names.
    let recipe = VALID.replace("platforms = [\"linux\"]", "platforms = [\"lin ux\"]");
    let work = Work::new(&recipe, None);
    let platforms = work.path().join("platforms");
    fs::create_dir(&platforms).unwrap();
    fs::copy(
        xtask::project_root().join("platforms/linux.toml"),
        platforms.join("lin ux.toml"),
    )
    .unwrap();
    let before = paths_below(work.path());
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["fetch", "--set", "t", "--platform", "lin ux", "--recipes"])
        .arg(work.path().join("recipes"))
        .arg("--platforms")
        .arg(&platforms)
        .env("BDR_DIST_TARGET", work.target())
        .env_remove("BDR_DIST_MIRROR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("lin ux.toml: the platform's name") && stderr.contains("not a plain name"),
        "{stderr}"
    );
    assert_eq!(paths_below(work.path()), before, "something was written");
}

#[test]
fn package_metadata_that_would_inject_spec_or_control_lines_is_refused() {
    // Each value becomes a line of the RPM spec (`Summary:`) and of the .deb
    // control file: a newline would start a scriptlet or a field of its own.
    for (key, line) in [
        ("summary", "summary = \"s\""),
        ("license", "license = \"PostgreSQL\""),
        ("url", "url = \"https://example.invalid/\""),
    ] {
        let text = VALID.replace(line, &format!("{key} = \"x\\n%post\\nrm -rf /\""));
        assert_ne!(text, VALID, "the fixture holds `{line}`");
        let message = recipe_refused(
            &text,
            &format!("{key} = \"x"),
            &format!("set.package.{key}"),
        );
        assert!(message.contains("is not one line of text"), "{message}");
    }
}

#[test]
fn a_patch_that_is_not_there_is_located() {
    let text = VALID.replace(
        "archive = \"tar.gz\"\n\n[[component.step]]\nkind = \"configure\"",
        "archive = \"tar.gz\"\npatches = [\"patches/missing.patch\"]\n\n[[component.step]]\nkind = \"configure\"",
    );
    let message = error_of(&text, line_of(&text, "patches = "));
    assert!(
        message
            .contains("key `component.source.patches`: cannot read recipes/patches/missing.patch"),
        "{message}"
    );
    let text = text.replace("patches/missing.patch", "../../etc/passwd");
    let message = error_of(&text, line_of(&text, "patches = "));
    assert!(message.contains("component.source.patches"), "{message}");
}

#[test]
fn a_patch_is_read_and_hashed_on_load_and_in_the_plan() {
    let dir = xtask::files::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("patches")).unwrap();
    fs::write(dir.path().join("patches/fix.patch"), "--- a/x\n+++ b/x\n").unwrap();
    let text = VALID.replace(
        "archive = \"tar.gz\"\n\n[[component.step]]\nkind = \"configure\"",
        "archive = \"tar.gz\"\npatches = [\"patches/fix.patch\"]\n\n[[component.step]]\nkind = \"configure\"",
    );
    let path = dir.path().join("t.toml");
    let set = recipe::parse(&path, &text, "t", &["linux".to_owned()]).unwrap();
    let patch = &set.components[0].source.patches[0];
    assert_eq!(patch.name, "patches/fix.patch");
    assert_eq!(patch.path, dir.path().join("patches/fix.patch"));
    // sha256 of the 16 bytes written, as `sha256sum` gives it.
    let expected = String::from_utf8(
        Command::new("sha256sum")
            .arg(dir.path().join("patches/fix.patch"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(patch.sha256, expected.split_whitespace().next().unwrap());
}

#[test]
fn a_step_takes_variables_for_one_target_only() {
    let text = VALID.replace(
        "run = [\"./configure\", \"--prefix={prefix}\"]",
        "run = [\"./configure\", \"--prefix={prefix}\"]\n\n[component.step.target_env.debian-13]\nCFLAGS = \"-O2 -fpermissive\"",
    );
    let set = parse(&text).unwrap();
    let root = xtask::project_root();
    let linux = platform::load(&root.join("platforms"), "linux").unwrap();
    let dir = xtask::input::target::targets_dir(None);
    let plan_for = |name: &str| {
        let mut options = xtask::host::plan_options(
            &xtask::host::Selection {
                set: set.clone(),
                platform: linux.clone(),
                recipes_dir: PathBuf::from("recipes"),
                lock: Default::default(),
                target: xtask::input::target::load(&dir, name).unwrap(),
            },
            &xtask::host::facts(),
        );
        options.target_dir = PathBuf::from("/t");
        xtask::plan::plan(&set, &linux, &options)
    };
    let configure_env = |plan: &xtask::plan::Plan| -> Vec<String> {
        plan.steps
            .iter()
            .find_map(|step| match &step.action {
                xtask::plan::Action::Run(run) => {
                    Some(run.env.iter().map(|v| v.to_string()).collect())
                }
                _ => None,
            })
            .unwrap()
    };
    assert!(
        configure_env(&plan_for("debian-13")).contains(&"CFLAGS=-O2 -fpermissive".to_owned())
            || configure_env(&plan_for("debian-13"))
                .contains(&"CFLAGS='-O2 -fpermissive'".to_owned())
    );
    assert!(!configure_env(&plan_for("debian-12"))
        .iter()
        .any(|v| v.starts_with("CFLAGS")));
    assert!(!configure_env(&plan_for("host"))
        .iter()
        .any(|v| v.starts_with("CFLAGS")));
    let text = text.replace("target_env.debian-13", "target_env.\"../x\"");
    let message = error_of(&text, line_of(&text, "[component.step.target_env"));
    assert!(message.contains("component.step.target_env"), "{message}");
}
