//! The SBOM beside the packages (`<stem>.spdx.json`, SPDX 2.3 JSON), checked
//! with the SPDX reference validator (`pyspdxtools`, from the `spdx-tools`
//! package that `cargo xtask test` installs) and against `SHA256SUMS`, the
//! recipe's sources and a second packaging run. The end-to-end test needs
//! the stand-in sources that `cargo xtask test` prepares.

mod support;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Mutex,
};

use serde_json::Value;

const SET: &str = "pg15-pglogical";
const STEM: &str = "postgresql15-pglogical-15.18-1.linux-x86_64";

/// Packaging runs share the target's rpmbuild/ and stamps: one at a time.
static PACKAGING: Mutex<()> = Mutex::new(());

/// `pyspdxtools -i FILE`.
fn validate(file: &Path) -> Output {
    let validator = xtask::commands::test::spdx_validator().unwrap_or_else(|| {
        let (package, version) = xtask::commands::test::SPDX_TOOLS;
        panic!("pyspdxtools not found: `cargo xtask test` installs it (pip install {package}=={version})")
    });
    Command::new(&validator)
        .arg("-i")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", validator.display()))
}

fn assert_valid(file: &Path) {
    let output = validate(file);
    assert!(
        output.status.success(),
        "pyspdxtools refuses {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        support::stderr(&output)
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The stand-in set packaged (rpm, tarball, deb) into `out`.
fn package_into(target: &Path, out: &Path, force: bool) {
    support::standin_stage(target);
    let out = out.display().to_string();
    let mut args = vec![
        "package",
        "--set",
        SET,
        "--format",
        "rpm,tarball,deb",
        "--out",
        &out,
    ];
    if force {
        args.push("--force");
    }
    let output = support::xtask(target, &args);
    assert!(output.status.success(), "packaging into {out} failed");
}

fn package_by_file_name<'a>(sbom: &'a Value, name: &str) -> Option<&'a Value> {
    sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["packageFileName"] == name)
}

/// The `SHA256` entry of a package's checksums, as the verify command reads it.
fn sha256_of(package: &Value) -> Option<&str> {
    package["checksums"]
        .as_array()?
        .iter()
        .find(|checksum| checksum["algorithm"] == "SHA256")?["checksumValue"]
        .as_str()
}

fn relationships(sbom: &Value) -> BTreeSet<(String, String, String)> {
    sbom["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap().to_owned();
            (
                text("spdxElementId"),
                text("relationshipType"),
                text("relatedSpdxElement"),
            )
        })
        .collect()
}

/// The git tree of a gzipped tarball's entries below its top directory,
/// built by git's own plumbing (`hash-object`, `mktree`) from the unpacked
/// files. An empty directory is git's empty tree, as Software Heritage
/// counts it (`git add` would drop it: pglogical's tarball holds one, where
/// its repository has a submodule).
fn git_tree_of(archive: &Path) -> String {
    let dir = xtask::files::tempdir().unwrap();
    let files = dir.path().join("files");
    fs::create_dir(&files).unwrap();
    let status = Command::new("tar")
        .args([
            "-xzf",
            &archive.display().to_string(),
            "--strip-components=1",
        ])
        .current_dir(&files)
        .status()
        .unwrap();
    assert!(status.success());
    support::git(dir.path(), &["init", "-q", "--bare", "objects.git"]);
    mktree(&dir.path().join("objects.git"), &files)
}

fn mktree(repository: &Path, dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let git = |args: &[&str], stdin: &[u8]| {
        let mut child = Command::new("git")
            .arg("--git-dir")
            .arg(repository)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "git {args:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let mut lines = String::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let meta = fs::symlink_metadata(&path).unwrap();
        let (mode, kind, id) = if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            let id = git(
                &["hash-object", "-w", "--stdin"],
                target.as_os_str().as_encoded_bytes(),
            );
            ("120000", "blob", id)
        } else if meta.is_dir() {
            ("040000", "tree", mktree(repository, &path))
        } else {
            let mode = if meta.permissions().mode() & 0o100 != 0 {
                "100755"
            } else {
                "100644"
            };
            let id = git(&["hash-object", "-w", "--stdin"], &fs::read(&path).unwrap());
            (mode, "blob", id)
        };
        lines.push_str(&format!("{mode} {kind} {id}\t{name}\n"));
    }
    git(&["mktree"], lines.as_bytes())
}

/// The document of the unit tests' fixture (tests/golden) is valid; the same
/// document with a relationship to an id it does not define is refused, so
/// the validator's verdict is a check that can fail.
#[test]
fn the_validator_accepts_the_golden_sbom_and_refuses_a_broken_one() {
    let golden = xtask::project_root().join("tests/golden/sbom.spdx.json");
    assert_valid(&golden);

    let dir = xtask::files::tempdir().unwrap();
    let mut broken = read_json(&golden);
    broken["relationships"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Artifact-nowhere",
        }));
    let path = dir.path().join("broken.spdx.json");
    fs::write(&path, serde_json::to_string_pretty(&broken).unwrap()).unwrap();
    let output = validate(&path);
    assert!(!output.status.success(), "a dangling relationship passed");
    assert!(
        support::stderr(&output).contains("SPDXRef-Artifact-nowhere"),
        "{}",
        support::stderr(&output)
    );

    // A Software Heritage id that is no git object id is refused too.
    let mut broken = read_json(&golden);
    let source = broken["packages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|package| package["externalRefs"].is_array())
        .expect("the golden SBOM has a source with a tree");
    source["externalRefs"][0]["referenceLocator"] = "swh:1:dir:not-a-tree".into();
    fs::write(&path, serde_json::to_string_pretty(&broken).unwrap()).unwrap();
    assert!(!validate(&path).status.success(), "a bad swh id passed");
}

#[test]
fn the_sbom_describes_every_shipped_artifact_its_sources_and_tools() {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let target = support::e2e_target();
    let out = xtask::files::tempdir().unwrap();
    package_into(&target, out.path(), false);
    let sbom_path = out.path().join(format!("{STEM}.spdx.json"));
    assert_valid(&sbom_path);
    let sbom = read_json(&sbom_path);
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    assert_eq!(sbom["name"], STEM);

    // Every line of SHA256SUMS is an artifact in the SBOM with that sha256;
    // the SBOM's own line is its bytes as written.
    let sums = fs::read_to_string(out.path().join("SHA256SUMS")).unwrap();
    let mut artifacts = Vec::new();
    for line in sums.lines() {
        let (sha256, name) = line.split_once("  ").unwrap();
        if name == format!("{STEM}.spdx.json") {
            let actual = Command::new("sha256sum").arg(&sbom_path).output().unwrap();
            assert!(String::from_utf8_lossy(&actual.stdout).starts_with(sha256));
            continue;
        }
        let package = package_by_file_name(&sbom, name)
            .unwrap_or_else(|| panic!("{name} is in SHA256SUMS but not in the SBOM"));
        assert_eq!(sha256_of(package), Some(sha256), "{name}");
        assert_eq!(package["name"], name);
        assert_eq!(package["versionInfo"], "15.18-1");
        assert_eq!(package["filesAnalyzed"], false);
        artifacts.push((
            name.to_owned(),
            package["SPDXID"].as_str().unwrap().to_owned(),
        ));
    }
    assert!(sums.contains(&format!("  {STEM}.spdx.json\n")), "{sums}");
    assert!(artifacts.len() >= 20, "{artifacts:?}");
    let purpose = |suffix: &str| {
        let (name, _) = artifacts
            .iter()
            .find(|(name, _)| name.ends_with(suffix))
            .unwrap();
        package_by_file_name(&sbom, name).unwrap()["primaryPackagePurpose"].clone()
    };
    assert_eq!(purpose(".src.rpm"), "SOURCE");
    assert_eq!(purpose(".x86_64.rpm"), "INSTALL");
    assert_eq!(purpose("_amd64.deb"), "INSTALL");
    assert_eq!(purpose(".tar.gz"), "ARCHIVE");

    // Each source: the recipe's archive and sha256, its first URL, and the
    // git tree its entries make as a Software Heritage directory id.
    let mirror = support::standin_mirror();
    let mut sources = Vec::new();
    for (component, file, sha256) in [
        (
            "postgresql",
            "postgresql-15.18.tar.bz2",
            "11df0df97fe3ea4ba9a791faaf39cee1d2fe571e78885b5b55d8517d27c323b4",
        ),
        (
            "pglogical",
            "pglogical-2.4.2.tar.gz",
            "4dcd407948a76b524ed03da3d67c5d4e1cb80fdff8694642cfc261838bcb05e0",
        ),
    ] {
        let source = package_by_file_name(&sbom, file)
            .unwrap_or_else(|| panic!("source {file} is not in the SBOM"));
        assert_eq!(source["name"], component);
        assert_eq!(sha256_of(source), Some(sha256), "{file}");
        assert!(source["downloadLocation"]
            .as_str()
            .unwrap()
            .starts_with("https://"));
        assert_eq!(source["licenseDeclared"], "PostgreSQL");
        let tree = source["externalRefs"]
            .as_array()
            .unwrap_or_else(|| panic!("{file} has no external refs"))
            .iter()
            .find(|r| r["referenceCategory"] == "PERSISTENT-ID" && r["referenceType"] == "swh")
            .and_then(|r| r["referenceLocator"].as_str()?.strip_prefix("swh:1:dir:"))
            .unwrap_or_else(|| panic!("{file} has no swh directory id"));
        assert_eq!(tree.len(), 40, "{tree}");
        if file.ends_with(".tar.gz") {
            assert_eq!(tree, git_tree_of(&mirror.join(file)), "the tree of {file}");
        }
        sources.push(source["SPDXID"].as_str().unwrap().to_owned());
    }

    // The build tools, with the versions the build ran.
    let tools: Vec<(String, String)> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|package| {
            package["SPDXID"]
                .as_str()
                .unwrap()
                .starts_with("SPDXRef-Tool-")
        })
        .map(|package| {
            (
                package["name"].as_str().unwrap().to_owned(),
                package["versionInfo"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for program in ["bdr-dist", "bison", "cc", "flex", "make"] {
        assert!(
            tools
                .iter()
                .any(|(name, version)| name == program && !version.is_empty()),
            "{program} is not among the tools: {tools:?}"
        );
    }
    let make = tools.iter().find(|(name, _)| name == "make").unwrap();
    assert!(make.1.starts_with("GNU Make "), "{make:?}");

    // The document describes each artifact, generated from each source,
    // built by each tool.
    let relations = relationships(&sbom);
    let tool_ids: Vec<String> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|package| package["SPDXID"].as_str())
        .filter(|id| id.starts_with("SPDXRef-Tool-"))
        .map(str::to_owned)
        .collect();
    assert_eq!(tool_ids.len(), tools.len());
    for (name, id) in &artifacts {
        let has = |from: &str, kind: &str, to: &str| {
            relations.contains(&(from.to_owned(), kind.to_owned(), to.to_owned()))
        };
        assert!(has("SPDXRef-DOCUMENT", "DESCRIBES", id), "{name}");
        for source in &sources {
            assert!(has(id, "GENERATED_FROM", source), "{name} from {source}");
        }
        for tool in &tool_ids {
            assert!(has(tool, "BUILD_TOOL_OF", id), "{tool} of {name}");
        }
    }
    let described = relations
        .iter()
        .filter(|(_, kind, _)| kind == "DESCRIBES")
        .count();
    assert_eq!(
        described,
        artifacts.len(),
        "only the artifacts are described"
    );

    // Dated by SOURCE_DATE_EPOCH, as the packages are.
    let manifest = read_json(&out.path().join(format!("{STEM}.manifest.json")));
    let epoch = manifest["source_date_epoch"].as_u64().unwrap();
    let created = sbom["creationInfo"]["created"].as_str().unwrap();
    assert_eq!(created, xtask::package::timestamp(epoch));
    assert_eq!(
        sbom["creationInfo"]["creators"],
        serde_json::json!([format!("Tool: bdr-dist-{}", env!("CARGO_PKG_VERSION"))])
    );

    // Packaging again, into another directory, writes the same bytes.
    let again = xtask::files::tempdir().unwrap();
    package_into(&target, again.path(), true);
    let second: PathBuf = again.path().join(format!("{STEM}.spdx.json"));
    assert!(
        fs::read(&sbom_path).unwrap() == fs::read(&second).unwrap(),
        "two packaging runs gave different SBOMs:\n{}",
        diff(&sbom_path, &second)
    );
}

fn diff(one: &Path, two: &Path) -> String {
    let output = Command::new("diff")
        .args(["-u", &one.display().to_string(), &two.display().to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}
