//! A target other than this host, end to end: the stand-in set built for
//! Debian 13 (trixie, gcc 14, glibc 2.41) in a clean root of trixie that
//! mmdebstrap makes from this host's apt sources, its source package made
//! there and its .debs made of that by sbuild in a fresh trixie root (library
//! Depends from trixie's own libraries), a second sbuild at another path
//! making the same bytes, and proven in a fresh trixie root:
//! dose-debcheck against the archive, apt-get install, every library
//! resolved, the packaged setup and service, the whole smoke cluster run
//! inside that root, removal. Trixie, not bookworm: this host is Debian 12,
//! so what only trixie has (gcc 14, the t64 library names) shows that
//! nothing of the host went in.
//!
//! Needs root (mmdebstrap, chroot, mount namespaces) and the stand-in
//! sources that `cargo xtask test` prepares.

mod support;

use std::{fs, path::Path, process::Command};

const TARGET: &str = "debian-13";

fn deb_field(deb: &Path, field: &str) -> String {
    let output = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", support::stderr(&output));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_standin_set_is_built_packaged_and_proven_for_debian_13_in_roots_of_its_own() {
    let mirror = support::standin_mirror();
    let target = support::e2e_target();
    let mirror = mirror.display().to_string();
    let dist = support::xtask(
        &target,
        &[
            "dist",
            "--set",
            "pg15-pglogical",
            "--target",
            TARGET,
            "--mirror",
            &mirror,
            "--json",
        ],
    );
    assert!(dist.status.success(), "{}", support::stderr(&dist));
    let report = support::json(&dist);
    assert_eq!(report["target"], TARGET);
    assert_eq!(report["ok"], true);

    // Built by the root's compiler, not this host's gcc 12.
    let set_dir = target.join("targets").join(TARGET).join("pg15-pglogical");
    let config_log = fs::read_to_string(set_dir.join("src/postgresql-15.18/config.log")).unwrap();
    assert!(
        config_log.contains("gcc (Debian 14."),
        "configure did not run trixie's gcc 14"
    );

    // Packaged for trixie: its suffix, its libraries (the t64 names exist
    // only there), its glibc in the manifest.
    let artifacts: Vec<String> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|artifact| artifact["path"].as_str().unwrap().to_owned())
        .collect();
    let libs = artifacts
        .iter()
        .find(|path| path.ends_with("postgresql15-pglogical-libs_15.18-1+deb13_amd64.deb"))
        .unwrap_or_else(|| panic!("no +deb13 -libs package in {artifacts:#?}"));
    assert_eq!(deb_field(Path::new(libs), "Version"), "15.18-1+deb13");
    let depends = deb_field(Path::new(libs), "Depends");
    assert!(depends.contains("libssl3t64"), "{depends}");
    let manifest = artifacts
        .iter()
        .find(|path| path.ends_with(".manifest.json"))
        .expect("the tarball's manifest");
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(manifest).unwrap()).unwrap();
    assert_eq!(manifest["target"]["codename"], "trixie");
    let glibc = manifest["target"]["glibc"].as_str().unwrap();
    let minor: u32 = glibc.strip_prefix("2.").unwrap().parse().unwrap();
    assert!(minor >= 41, "trixie's glibc, not bookworm's 2.36: {glibc}");
    let key = fs::read_to_string(target.join("roots").join(TARGET).join("build.key")).unwrap();
    assert_eq!(manifest["target"]["root_key"], key.trim());
    assert_eq!(
        report["built_in"], manifest["target"],
        "the report records it too"
    );
    let dist_dir = Path::new(libs).parent().unwrap();
    let sbom = fs::read_dir(dist_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".spdx.json"))
        .expect("the SBOM beside the packages");
    let sbom: serde_json::Value = serde_json::from_slice(&fs::read(sbom).unwrap()).unwrap();
    let comment = sbom["comment"].as_str().unwrap();
    assert!(
        comment.contains("Built for debian 13 (trixie) in a clean root of it")
            && comment.contains(key.trim()),
        "{comment}"
    );

    // Proven in a fresh trixie root, the servers there too, and every check.
    let proofs: Vec<(&str, bool)> = report["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        proofs,
        [
            ("installable", true),
            ("apt-get install", true),
            ("libraries", true),
            ("setup initdb", true),
            ("service start", true),
            ("servers in the root", true),
            ("apt-get remove", true),
        ]
    );
    support::assert_checks(&report, &support::PGLOGICAL_ALL_CHECKS);
    assert!(
        !target.join("roots").join(TARGET).join("proof").exists(),
        "the proof root stays behind"
    );

    // The .debs are what sbuild made of the shipped source package, in a
    // fresh trixie root: the .changes lists each by its sha256.
    let stem = "postgresql15-pglogical_15.18-1+deb13";
    for name in [
        format!("{stem}.dsc"),
        format!("{stem}.debian.tar.xz"),
        "postgresql15-pglogical_15.18.orig.tar.bz2".to_owned(),
        "postgresql15-pglogical_15.18.orig-pglogical.tar.gz".to_owned(),
        format!("{stem}_amd64.buildinfo"),
        format!("{stem}_amd64.changes"),
    ] {
        assert!(
            artifacts.iter().any(|path| path.ends_with(&name)),
            "{name} is not among {artifacts:#?}"
        );
    }
    let changes = fs::read_to_string(dist_dir.join(format!("{stem}_amd64.changes"))).unwrap();
    assert!(changes.contains("Distribution: trixie"), "{changes}");
    let debs: Vec<std::path::PathBuf> = fs::read_dir(dist_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    assert_eq!(debs.len(), 12, "{debs:?}");
    for deb in &debs {
        let line = format!(
            " {} {} {}",
            xtask::files::sha256_file(deb).unwrap(),
            fs::metadata(deb).unwrap().len(),
            deb.file_name().unwrap().to_string_lossy()
        );
        assert!(
            changes.contains(&line),
            "{line} is not in the .changes:\n{changes}"
        );
    }
    let buildinfo = fs::read_to_string(dist_dir.join(format!("{stem}_amd64.buildinfo"))).unwrap();
    assert!(
        buildinfo.contains("Installed-Build-Depends:") && buildinfo.contains(" gcc-14 (="),
        "the .buildinfo records the root's packages: {buildinfo}"
    );
    // dpkg-source unpacks it: the plugin's tarball in its own directory,
    // debian/ generated from the plan.
    let unpacked = xtask::files::tempdir().unwrap();
    let output = Command::new("dpkg-source")
        .arg("-x")
        .arg(dist_dir.join(format!("{stem}.dsc")))
        .arg(unpacked.path().join("src"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", support::stderr(&output));
    for path in [
        "configure",
        "pglogical/pglogical.c",
        "debian/rules",
        "debian/bdr-dist-build",
    ] {
        assert!(unpacked.path().join("src").join(path).is_file(), "{path}");
    }

    // lint judges the target's own packages, the source package too.
    let lint = support::xtask(
        &target,
        &["lint", "--set", "pg15-pglogical", "--target", TARGET],
    );
    assert!(lint.status.success(), "{}", support::stderr(&lint));
    assert!(
        support::stderr(&lint).contains("lintian on 13 package(s)"),
        "{}",
        support::stderr(&lint)
    );

    // A second sbuild, in another fresh root at another build path, makes
    // the very same bytes.
    let rebuild = support::xtask(
        &target,
        &[
            "verify-rebuild",
            "--set",
            "pg15-pglogical",
            "--target",
            TARGET,
            "--json",
        ],
    );
    assert!(rebuild.status.success(), "{}", support::stderr(&rebuild));
    let rebuild = support::json(&rebuild);
    let verdicts = rebuild["artifacts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 12, "{rebuild}");
    for verdict in verdicts {
        assert_eq!(verdict["identical"], true, "{verdict}");
    }

    // Stamped with the root's key: a second build runs nothing.
    let again = support::xtask(
        &target,
        &[
            "build",
            "--set",
            "pg15-pglogical",
            "--target",
            TARGET,
            "--mirror",
            &mirror,
            "--json",
        ],
    );
    assert!(again.status.success());
    let again = support::json(&again);
    assert_eq!(again["ran"].as_array().unwrap().len(), 0, "{again}");
}

#[test]
fn an_unknown_target_is_invalid_input_naming_the_known_ones() {
    let target = support::e2e_target();
    let output = support::xtask(&target, &["plan", "--target", "debian-99"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = support::stderr(&output);
    assert!(
        stderr.contains("target `debian-99` does not exist")
            && stderr.contains("known: host, debian-11, debian-12, debian-13"),
        "{stderr}"
    );
    let output = support::xtask(&target, &["plan", "--target", "../x"]);
    assert_eq!(output.status.code(), Some(2));
    let output = support::xtask(
        &target,
        &["plan", "--target", "debian-13", "--platform", "openbsd"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(support::stderr(&output).contains("is built with platform `linux`"));
    // Its servers run in a root that goes with the proof: nothing to keep.
    let output = support::xtask(
        &target,
        &[
            "smoke",
            "--set",
            "pg15-pglogical",
            "--target",
            "debian-13",
            "--keep",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    // Its packages are for another machine: nothing installs here.
    let output = support::xtask(
        &target,
        &[
            "install",
            "--set",
            "pg15-pglogical",
            "--target",
            "debian-13",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(support::stderr(&output).contains("are for a Debian 13 (trixie) machine"));
}

#[test]
fn targets_lists_every_release_and_plan_shows_the_root() {
    let target = support::e2e_target();
    let output = support::xtask(&target, &["targets", "--json"]);
    assert!(output.status.success());
    let names: Vec<String> = support::json(&output)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["debian-11", "debian-12", "debian-13"]);
    let plan = support::xtask(
        &target,
        &[
            "plan",
            "--set",
            "pg15-pglogical",
            "--target",
            "debian-11,debian-13",
        ],
    );
    assert!(plan.status.success());
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("target debian-11: Debian 11 (bullseye), versions end in +deb11"));
    assert!(text.contains("package deb postgresql15-pglogical-15.18-1+deb13"));
    assert!(
        !text.contains("install into"),
        "a target's plan installs nothing here"
    );
}
