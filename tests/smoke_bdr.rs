//! The BDR driver's SQL, on a real bdr94 stage, where one is present.
//!
//! Nothing in the repository builds postgres-bdr (its sources come only through
//! `--mirror`): build it with `cargo xtask build --set bdr94 --mirror DIR`, or
//! point BDR_DIST_BDR94_TARGET at a target directory holding a bdr94 stage.
//! Without one these tests say so and do not run.

mod support;

use std::path::PathBuf;

fn bdr94_target() -> Option<PathBuf> {
    let target = std::env::var_os("BDR_DIST_BDR94_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::project_root().join("target"));
    let stage_complete = target.join("sets/bdr94/stage").is_dir()
        && !target.join("sets/bdr94/stage.incomplete").exists();
    if stage_complete {
        Some(target)
    } else {
        eprintln!(
            "DID NOT RUN: no bdr94 stage in {}: build one with `cargo xtask build --set bdr94 --mirror DIR`",
            target.display()
        );
        None
    }
}

fn bdr_smoke(nodes: &str) {
    let Some(target) = bdr94_target() else { return };
    let output = support::xtask(&target, &["smoke", "--set", "bdr94", "--nodes", nodes]);
    let stderr = support::stderr(&output);
    assert!(output.status.success(), "{stderr}");
    support::assert_checks_passed(
        &stderr,
        &[
            "every node joined and ready",
            "N-1 active slots per node",
            "a table created through DDL replication exists on every node",
            "rows written on every node are visible on every node",
            "a global sequence hands out distinct values on every node",
            "a parted node's slots disappear from the others",
        ],
    );
}

#[test]
fn bdr_two_nodes_if_a_bdr94_stage_is_present() {
    bdr_smoke("2");
}

#[test]
fn bdr_three_nodes_if_a_bdr94_stage_is_present() {
    bdr_smoke("3");
}
