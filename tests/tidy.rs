//! Checks of the repository itself: its data, and its code's form (rustfmt
//! and clippy, as rust-analyzer's tidy runs them).

use std::process::Command;

use xtask::input::{platform, recipe};

/// Run cargo in the repository; the suite fails with its output if it does.
fn cargo(args: &[&str]) {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(xtask::project_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_code_is_formatted() {
    cargo(&["fmt", "--all", "--", "--check"]);
}

#[test]
fn clippy_finds_nothing() {
    // A target directory of its own: the suite's build holds the default one.
    let target = xtask::project_root().join("target/tidy");
    let target = target.to_str().unwrap();
    cargo(&[
        "clippy",
        "--all-targets",
        "--target-dir",
        target,
        "--",
        "-D",
        "warnings",
    ]);
}

#[test]
fn every_shipped_recipe_parses_pins_its_sources_and_names_existing_platforms() {
    let root = xtask::project_root();
    let platforms = platform::names(&root.join("platforms")).unwrap();
    assert_eq!(platforms, ["linux", "openbsd"]);
    for name in &platforms {
        platform::load(&root.join("platforms"), name).unwrap();
    }
    let sets = recipe::set_names(&root.join("recipes")).unwrap();
    assert!(
        sets.contains(&"bdr94".to_owned()) && sets.contains(&"pg15-pglogical".to_owned()),
        "{sets:?}"
    );
    for set_name in sets {
        let set = recipe::load(&root.join("recipes"), &set_name, &platforms).unwrap();
        assert!(!set.platforms.is_empty());
        for component in &set.components {
            let source = &component.source;
            assert!(
                source.sha256.is_some() || source.tree.is_some(),
                "{set_name}/{}: no content pin",
                component.name
            );
            assert!(
                source.urls.iter().all(|url| url.starts_with("https://")),
                "{set_name}/{}: plain http",
                component.name
            );
        }
    }
}

#[test]
fn every_shipped_set_has_a_lock_file_recording_each_source() {
    let root = xtask::project_root();
    let platforms = platform::names(&root.join("platforms")).unwrap();
    for set_name in recipe::set_names(&root.join("recipes")).unwrap() {
        let set = recipe::load(&root.join("recipes"), &set_name, &platforms).unwrap();
        let lock_path = root.join("recipes").join(format!("{set_name}.lock"));
        let text = std::fs::read_to_string(&lock_path)
            .unwrap_or_else(|_| panic!("{} is missing: commit it", lock_path.display()));
        let lock: toml::Table = toml::from_str(&text).unwrap();
        let recorded = lock["sha256"].as_table().unwrap();
        assert_eq!(
            recorded.len(),
            set.components.len(),
            "{set_name}.lock: {text}"
        );
        for component in &set.components {
            let locked = recorded[&component.source.file].as_str().unwrap();
            if let Some(pinned) = &component.source.sha256 {
                assert_eq!(locked, pinned, "{set_name}.lock disagrees with the recipe");
            }
        }
    }
}

#[test]
fn default_set_pins_the_tags_not_the_branch_head() {
    let root = xtask::project_root();
    let platforms = platform::names(&root.join("platforms")).unwrap();
    let set = recipe::load(&root.join("recipes"), "bdr94", &platforms).unwrap();
    let commits: Vec<_> = set
        .components
        .iter()
        .map(|c| c.source.commit.clone().unwrap())
        .collect();
    // bdr-pg/REL9_4_13-1 and bdr-plugin/1.0.7; the branch head ad11c123 breaks SERIAL columns.
    assert_eq!(
        commits,
        [
            "b24c0a397f394fe3356c8734a8a8368ee3d22dc4",
            "7e8d53388b86b3363ac3a28e0778bdb24dfc4c9d"
        ]
    );
    // The trees of those tags, by `git rev-parse <tag>^{tree}`: the content pins.
    let trees: Vec<_> = set
        .components
        .iter()
        .map(|c| c.source.tree.clone().unwrap())
        .collect();
    assert_eq!(
        trees,
        [
            "fb024538b88f80d5d01748f8c6518bfed06b13e8",
            "13c5d6014a3a170a1f5c8b2e6abf9b77b2bf8eee"
        ]
    );
    assert_eq!(
        set.components[0].source.file,
        "postgresql-bdr-9.4.13_bdr1.tar.gz"
    );
    assert_eq!(set.components[1].source.file, "bdr-1.0.7.tar.gz");
}

/// Programs the code runs that no package manager installs, and why.
const NOT_PACKAGES: [(&str, &str); 3] = [
    ("cargo", "the toolchain that runs all of this"),
    (
        "ccache",
        "an accelerator, put in front of the compiler only when it is installed",
    ),
    (
        "pyspdxtools",
        "installed by pip at a pinned version (commands/test.rs), its own prerequisite pip3",
    ),
];

/// Where the code starts programs: a literal program name right after one of
/// these (whitespace allowed before the quote). `run(` and `.command(` are the
/// tests' own helpers.
const PROGRAM_CALLS: [&str; 8] = [
    "Command::new(",
    "command(Path::new(",
    "which::which(",
    "gnupg(",
    "typed(",
    "require_program(",
    "run(",
    ".command(",
];

/// Programs the code runs and where, by scanning `files` for literal
/// program names in [`PROGRAM_CALLS`].
fn programs_run_by(files: &[std::path::PathBuf]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).unwrap();
        for (number, line) in text.lines().enumerate() {
            for call in PROGRAM_CALLS {
                let mut rest = line;
                while let Some(at) = rest.find(call) {
                    rest = &rest[at + call.len()..];
                    let Some(quoted) = rest.trim_start().strip_prefix('"') else {
                        continue;
                    };
                    let name = quoted.split('"').next().unwrap();
                    // A program name: no spaces, not a path of the build
                    // tree, not an SQL or format string.
                    if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_./+".contains(c))
                    {
                        let program = name.rsplit('/').next().unwrap().to_owned();
                        found.push((program, format!("{}:{}", path.display(), number + 1)));
                    }
                }
            }
        }
    }
    found
}

fn rust_files(dir: &std::path::Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push(path);
        }
    }
}

/// Every program the tool (or a recipe step, or a test) runs is named by
/// the Linux platform file, so that the doctor checks it and `doctor --fix`,
/// `dist` and `cargo xtask test` install it: nothing the tool runs can be
/// missing from a fresh machine unnoticed. The platform's own commands (the
/// package managers, the escalation tool, the user and install commands)
/// count as named, and so do the few in [`NOT_PACKAGES`].
#[test]
fn every_program_the_code_runs_is_a_named_prerequisite() {
    let root = xtask::project_root();
    let linux = platform::load(&root.join("platforms"), "linux").unwrap();
    let mut named: std::collections::BTreeSet<String> = linux
        .prerequisites
        .iter()
        .flat_map(|prerequisite| prerequisite.programs())
        .map(|program| program.rsplit('/').next().unwrap().to_owned())
        .collect();
    named.extend(linux.package_managers.iter().map(|m| m.program.clone()));
    named.insert(linux.escalate.clone());
    for command in [
        &linux.create_user,
        &linux.install.mkdir,
        &linux.install.extract,
    ] {
        named.insert(command[0].clone());
    }
    named.insert(linux.make.clone());
    named.insert(linux.cc.clone());
    named.extend(NOT_PACKAGES.iter().map(|(program, _)| program.to_string()));

    let mut files = Vec::new();
    rust_files(&root.join("xtask/src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let mut found = programs_run_by(&files);
    // Sanity: the scan sees what it must (a scan that finds nothing passes anything).
    for program in ["rpmbuild", "dpkg-shlibdeps", "tee", "kill", "mmdebstrap"] {
        assert!(
            found.iter().any(|(name, _)| name == program),
            "the scan no longer sees `{program}` run: fix PROGRAM_CALLS"
        );
    }
    let platforms = platform::names(&root.join("platforms")).unwrap();
    for set_name in recipe::set_names(&root.join("recipes")).unwrap() {
        let set = recipe::load(&root.join("recipes"), &set_name, &platforms).unwrap();
        for component in &set.components {
            for step in &component.steps {
                let program = &step.run[0];
                // `./configure` is the source's own; `{make}` the platform's.
                if !program.starts_with("./") && !program.starts_with('{') {
                    found.push((
                        program.clone(),
                        format!("recipes/{set_name}.toml: {}", component.name),
                    ));
                }
            }
        }
    }
    let unnamed: Vec<String> = found
        .iter()
        .filter(|(program, _)| !named.contains(program))
        .map(|(program, place)| format!("`{program}` at {place}"))
        .collect();
    assert!(
        unnamed.is_empty(),
        "programs run but not named as prerequisites in platforms/linux.toml \
         (add each, with its package, so that a fresh machine gets it):\n  {}",
        unnamed.join("\n  ")
    );
}
