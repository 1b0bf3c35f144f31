//! `cargo xtask dist` end to end on the stand-in set, from a local mirror.
//! Needs the stand-in sources that `cargo xtask test` prepares.

mod support;

use std::{fs, process::Command};

fn dist_json(
    target: &std::path::Path,
    extra: &[&str],
) -> (std::process::Output, Option<serde_json::Value>) {
    let mirror = support::standin_mirror().display().to_string();
    let mut args = vec![
        "dist",
        "--set",
        "pg15-pglogical",
        "--mirror",
        &mirror,
        "--json",
    ];
    args.extend(extra);
    let output = support::xtask(target, &args);
    let report = serde_json::from_slice(&output.stdout).ok();
    (output, report)
}

fn sha256(path: &str) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn dist_reports_verified_artifacts_and_checks_and_a_second_run_rebuilds_nothing() {
    let target = support::e2e_target();
    let (output, report) = dist_json(&target, &[]);
    assert!(output.status.success(), "dist failed");
    let report = report.expect("--json prints the report on stdout");
    assert_eq!(report["ok"], true);
    let written: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(target.join("sets/pg15-pglogical/dist/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(written, report, "the report file is the report printed");

    let artifacts = report["artifacts"].as_array().unwrap();
    assert!(artifacts
        .iter()
        .any(|a| a["path"].as_str().unwrap().ends_with(".x86_64.rpm")));
    assert!(artifacts
        .iter()
        .any(|a| a["path"].as_str().unwrap().ends_with(".src.rpm")));
    assert!(artifacts
        .iter()
        .any(|a| a["path"].as_str().unwrap().ends_with(".tar.gz")));
    for artifact in artifacts {
        let path = artifact["path"].as_str().unwrap();
        assert_eq!(sha256(path), artifact["sha256"].as_str().unwrap(), "{path}");
        assert_eq!(
            fs::metadata(path).unwrap().len(),
            artifact["size"].as_u64().unwrap(),
            "{path}"
        );
    }
    support::assert_checks(&report, &support::PGLOGICAL_ALL_CHECKS);
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["fetch", "build", "package", "smoke"]);

    let (again, second) = dist_json(&target, &[]);
    assert!(again.status.success());
    let second = second.unwrap();
    for phase in second["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] != "smoke")
    {
        assert_eq!(
            phase["ran"], 0,
            "a second dist reran steps of phase {}",
            phase["name"]
        );
    }
    let hashes = |report: &serde_json::Value| -> Vec<(String, String)> {
        report["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["path"].as_str().unwrap().to_owned(),
                    a["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        hashes(&report),
        hashes(&second),
        "a second dist changed an artifact"
    );
}

#[test]
fn a_failing_smoke_phase_names_the_check_and_keeps_the_packages() {
    let target = support::e2e_target();
    // The same stage, smoke-tested with the wrong driver: the BDR functions do not exist.
    let recipes = xtask::files::tempdir().unwrap();
    let recipe =
        fs::read_to_string(xtask::project_root().join("recipes/pg15-pglogical.toml")).unwrap();
    let broken = recipe.replace("driver = \"pglogical\"", "driver = \"bdr\"");
    assert_ne!(recipe, broken);
    fs::write(recipes.path().join("pg15-pglogical.toml"), broken).unwrap();
    let recipes_arg = recipes.path().display().to_string();
    let (output, report) = dist_json(&target, &["--recipes", &recipes_arg]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = support::stderr(&output);
    assert!(
        stderr.contains("check `every node joined and ready` failed"),
        "{stderr}"
    );
    let report = report.expect("a failed dist still prints its report");
    assert_eq!(report["ok"], false);
    let artifacts = report["artifacts"].as_array().unwrap();
    assert!(!artifacts.is_empty());
    for artifact in artifacts {
        assert!(
            fs::metadata(artifact["path"].as_str().unwrap()).is_ok(),
            "{artifact} was not kept"
        );
    }
}
