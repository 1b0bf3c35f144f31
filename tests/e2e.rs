//! End to end on the stand-in set: real tarballs served over loopback HTTP,
//! fetched and built by the real toolchain into the stage.
//!
//! Needs the stand-in sources that `cargo xtask test` prepares.

mod support;

use std::{fs, process::Command};

use support::HttpServer;

fn run(program: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{} {args:?}: {}",
        program.display(),
        support::stderr(&output)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn standin_set_is_fetched_over_http_built_staged_and_a_second_build_does_nothing() {
    let mirror = support::standin_mirror();
    let target = support::e2e_target();
    // The downloads go over HTTP every time; the build itself may be reused.
    let _ = fs::remove_dir_all(target.join("downloads"));
    let server = HttpServer::serve_dir(&mirror);
    let mirror_url = server.url("/");

    // --locked: the bytes served are the ones the committed lock file records.
    let fetch = support::xtask(
        &target,
        &[
            "fetch",
            "--set",
            "pg15-pglogical",
            "--mirror",
            &mirror_url,
            "--locked",
        ],
    );
    assert!(fetch.status.success());
    let mut paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/pglogical-2.4.2.tar.gz", "/postgresql-15.18.tar.bz2"]
    );

    let build = support::xtask(
        &target,
        &["build", "--set", "pg15-pglogical", "--mirror", &mirror_url],
    );
    assert!(build.status.success());
    assert_eq!(
        server.requests().len(),
        2,
        "build fetched again what fetch had cached"
    );

    let stage = target.join("sets/pg15-pglogical/stage/usr/pgsql-15");
    assert_eq!(
        run(&stage.join("bin/postgres"), &["--version"]),
        "postgres (PostgreSQL) 15.18"
    );
    assert_eq!(
        run(&stage.join("bin/pg_config"), &["--version"]),
        "PostgreSQL 15.18"
    );
    // Relocatable: the staged pg_config reports the stage, which is how the plugin found it.
    assert_eq!(
        run(&stage.join("bin/pg_config"), &["--bindir"]),
        stage.join("bin").display().to_string()
    );
    for file in [
        "lib/pglogical.so",
        "share/extension/pglogical.control",
        "share/extension/pglogical--2.4.2.sql",
        "share/extension/btree_gist.control",
        "lib/btree_gist.so",
    ] {
        assert!(stage.join(file).is_file(), "{file} is not in the stage");
    }
    assert!(!target.join("sets/pg15-pglogical/stage.incomplete").exists());

    let again = support::xtask(
        &target,
        &[
            "build",
            "--set",
            "pg15-pglogical",
            "--mirror",
            &mirror_url,
            "--json",
        ],
    );
    assert!(again.status.success());
    let report = support::json(&again);
    assert_eq!(support::steps(&report, "ran"), Vec::<String>::new());
    // Unpacks, then server, pgxs, contrib and plugin steps: all fresh.
    assert_eq!(support::steps(&report, "fresh").len(), 10, "{report}");
    assert_eq!(server.requests().len(), 2, "a second build did network I/O");
}
