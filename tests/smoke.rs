//! The smoke cluster on the stand-in set's stage: real servers on 127.0.0.1.
//!
//! Needs the stand-in sources that `cargo xtask test` prepares; the stage is
//! built (or found fresh) in the shared end-to-end target first.

mod support;

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::{fs::MetadataExt, process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Pids of the servers a smoke run reported (`--json`).
fn pids_of(run: &serde_json::Value) -> Vec<i32> {
    run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["pid"].as_i64().expect("every node started") as i32)
        .collect()
}

/// Pids of the servers a smoke run said it started, from its status lines:
/// only for a run stopped by a signal, which prints no report.
fn started_pids(stderr: &str) -> Vec<i32> {
    stderr
        .lines()
        .filter(|line| line.trim_start().starts_with("Started node"))
        .filter_map(|line| {
            line.rsplit_once("(pid ")?
                .1
                .trim_end_matches(')')
                .parse()
                .ok()
        })
        .collect()
}

/// The cluster directory a run named in its status lines (signalled runs only).
fn cluster_dir(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find(|line| line.trim_start().starts_with("Cluster "))
        .expect("the run names its cluster directory");
    PathBuf::from(line.rsplit_once(" in ").unwrap().1.trim())
}

fn alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Whether the process is gone within a few seconds: a postmaster that has
/// exited stays visible to kill(0) until init reaps it.
fn gone(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(pid) {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

fn assert_torn_down(pids: &[i32], dir: &Path, expected_servers: usize) {
    assert_eq!(pids.len(), expected_servers, "{pids:?}");
    for pid in pids {
        assert!(
            gone(*pid),
            "server pid {pid} is still running after the smoke run"
        );
    }
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

fn smoke_passes(nodes: &str, extra: &[&str]) -> serde_json::Value {
    let target = support::standin_stage(&support::e2e_target());
    let mut args = vec![
        "smoke",
        "--set",
        "pg15-pglogical",
        "--nodes",
        nodes,
        "--json",
    ];
    args.extend(extra);
    let output = support::xtask(&target, &args);
    let stderr = support::stderr(&output);
    assert!(output.status.success(), "{stderr}");
    // The nodes are copies of one template of this stage, kept for later runs.
    assert!(
        stderr.contains("nodes copied from the template"),
        "{stderr}"
    );
    let templates: Vec<_> = fs::read_dir(target.join("sets/pg15-pglogical/smoke-template"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        // (a concurrent run may be writing its own, `.<key>.tar.<pid>`)
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert_eq!(templates.len(), 1, "{templates:?}");
    let run = support::json(&output);
    support::assert_checks(&run, &support::PGLOGICAL_ALL_CHECKS);
    assert_eq!(run["tls"], true, "the stand-in is built --with-openssl");
    let dir = PathBuf::from(run["cluster_dir"].as_str().unwrap());
    assert_torn_down(&pids_of(&run), &dir, nodes.parse().unwrap());
    run
}

#[test]
fn two_node_pglogical_cluster_runs_every_applicable_check_over_tls() {
    smoke_passes("2", &[]);
}

#[test]
fn three_node_pglogical_cluster_runs_every_applicable_check_over_tls() {
    smoke_passes("3", &[]);
}

/// Network namespaces this process can see, by name.
fn namespaces() -> Vec<String> {
    let output = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// No network namespace whose name starts with `prefix` (a run's) is left.
fn assert_no_namespaces_of(prefix: &str) {
    let left: Vec<String> = namespaces()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn three_nodes_in_network_namespaces_replicate_over_tls_and_leave_nothing_behind() {
    // What a run killed outright would leave: its pid is gone, so the next
    // run removes it.
    let stale = "bdr-dist-999999-hub";
    let made = Command::new("ip")
        .args(["netns", "add", stale])
        .status()
        .unwrap();
    assert!(made.success());
    let run = smoke_passes("3", &["--network", "netns"]);
    let nodes = run["nodes"].as_array().unwrap();
    for (index, node) in nodes.iter().enumerate() {
        // Each node on its own address in its own namespace, never loopback.
        assert_eq!(node["address"], format!("10.213.0.{}", index + 1), "{node}");
        assert!(
            node["netns"].as_str().unwrap().starts_with("bdr-dist-"),
            "{node}"
        );
    }
    let left = namespaces();
    assert!(!left.iter().any(|name| name == stale), "{left:?}");
    for node in nodes {
        let name = node["netns"].as_str().unwrap();
        assert!(!left.iter().any(|n| n == name), "{name} was left: {left:?}");
    }
}

#[test]
fn a_signal_in_network_namespaces_stops_the_servers_and_removes_the_namespaces() {
    let mut prefix = String::new();
    let (seen, status) = interrupted_smoke(&["--network", "netns"], |pid| {
        prefix = format!("bdr-dist-{pid}-");
        let ours = namespaces()
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .count();
        assert_eq!(ours, 3, "a hub and a namespace per node while it runs");
        unsafe { libc::kill(pid, libc::SIGTERM) };
    });
    assert!(!status.success(), "{seen}");
    assert_torn_down(&started_pids(&seen), &cluster_dir(&seen), 2);
    assert_no_namespaces_of(&prefix);
}

#[test]
fn with_tls_off_the_nodes_talk_plaintext_and_tls_is_not_applicable() {
    let target = support::standin_stage(&support::e2e_target());
    let output = support::xtask(
        &target,
        &[
            "smoke",
            "--set",
            "pg15-pglogical",
            "--tls",
            "off",
            "--checks",
            "settings,tls",
            "--json",
        ],
    );
    assert!(output.status.success(), "{}", support::stderr(&output));
    let run = support::json(&output);
    support::assert_checks(&run, &["settings pass", "tls not-applicable", "join pass"]);
    assert_eq!(run["tls"], false);
}

#[test]
fn checks_are_listed_and_an_unknown_one_is_refused_before_anything_runs() {
    let target = xtask::files::tempdir().unwrap();
    let listed = support::xtask(target.path(), &["smoke", "--list-checks"]);
    assert!(listed.status.success());
    let text = String::from_utf8_lossy(&listed.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names.len(), 14, "{text}");
    assert_eq!(names[0], "settings");
    assert_eq!(names[13], "orphan");
    assert!(
        text.lines()
            .any(|l| l.starts_with("global-sequence") && l.contains(" bdr ")),
        "{text}"
    );
    let refused = support::xtask(
        target.path(),
        &[
            "smoke",
            "--set",
            "pg15-pglogical",
            "--checks",
            "settings,quorum",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(support::stderr(&refused).contains("unknown check `quorum`"));
    assert!(!target.path().join("sets").exists(), "nothing ran");
}

#[test]
fn sigterm_mid_run_stops_every_server_and_removes_the_directory() {
    // Signalled once every node is up and the checks are under way.
    let (seen, status) = interrupted_smoke(&["--nodes", "3"], |pid| unsafe {
        libc::kill(pid, libc::SIGTERM);
    });
    assert!(!status.success(), "an interrupted smoke run must fail");
    assert!(seen.contains("interrupted"), "{seen}");
    assert_torn_down(&started_pids(&seen), &cluster_dir(&seen), 3);
}

#[test]
fn a_node_whose_plugin_is_missing_fails_with_its_log_tail_and_still_tears_down() {
    let target = support::standin_stage(&support::e2e_target());
    // The same set over the same stage, but preloading a library the stage lacks.
    let recipes = xtask::files::tempdir().unwrap();
    let recipe =
        fs::read_to_string(xtask::project_root().join("recipes/pg15-pglogical.toml")).unwrap();
    let broken = recipe.replace(
        "preload = \"pglogical\"",
        "preload = \"pglogical_not_built\"",
    );
    assert_ne!(recipe, broken);
    fs::write(recipes.path().join("pg15-pglogical.toml"), broken).unwrap();
    let output = support::xtask(
        &target,
        &[
            "smoke",
            "--set",
            "pg15-pglogical",
            "--recipes",
            recipes.path().to_str().unwrap(),
        ],
    );
    let stderr = support::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("did not start"), "{stderr}");
    assert!(
        stderr.contains("log tail") && stderr.contains("pglogical_not_built"),
        "the log tail names the missing library: {stderr}"
    );
    let dir = cluster_dir(&stderr);
    assert!(!dir.exists(), "{} was left behind", dir.display());
    for pid in started_pids(&stderr) {
        assert!(gone(pid));
    }
}

#[test]
fn keep_leaves_a_whole_cluster_running_and_prints_how_to_stop_it() {
    let target = support::standin_stage(&support::e2e_target());
    let output = support::xtask(
        &target,
        &["smoke", "--set", "pg15-pglogical", "--keep", "--json"],
    );
    let stderr = support::stderr(&output);
    assert!(output.status.success(), "{stderr}");
    let run = support::json(&output);
    assert_eq!(run["kept"], true);
    // Parting and recreating would take a node out of the cluster handed
    // over: they are skipped, and say so.
    let expected: Vec<&str> = support::PGLOGICAL_ALL_CHECKS
        .iter()
        .map(|check| match *check {
            "part pass" => "part skipped",
            "recreate pass" => "recreate skipped",
            other => other,
        })
        .collect();
    support::assert_checks(&run, &expected);
    let pids = pids_of(&run);
    assert_eq!(pids.len(), 2);
    assert!(
        pids.iter().all(|pid| alive(*pid)),
        "--keep stopped a server"
    );
    let dir = PathBuf::from(run["cluster_dir"].as_str().unwrap());
    assert!(
        stderr.contains("node1: ")
            && stderr.contains("replication user: host=127.0.0.1")
            && stderr.contains("sslmode=verify-full"),
        "{stderr}"
    );
    // The printed commands stop it: run them as a person would paste them.
    let stop_lines: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("Stop it and remove its directory with:"))
        .skip(1)
        .take(3)
        .collect();
    assert!(
        stop_lines[..2]
            .iter()
            .all(|line| line.contains("pg_ctl -D ") && line.contains(" -m fast stop")),
        "{stderr}"
    );
    assert!(stop_lines[2].trim().starts_with("rm -rf "), "{stderr}");
    assert_eq!(stop_lines.len(), 3, "{stderr}");
    for line in stop_lines {
        let status = Command::new("sh")
            .arg("-c")
            .arg(line.trim())
            .status()
            .unwrap();
        assert!(status.success(), "`{}` failed", line.trim());
    }
    for pid in pids {
        assert!(
            gone(pid),
            "server pid {pid} still runs after the printed stop commands"
        );
    }
    assert!(!dir.exists());
}

/// The uid of a user, by name.
fn uid_of(user: &str) -> u32 {
    let output = Command::new("id").args(["-u", user]).output().unwrap();
    assert!(output.status.success(), "no user {user}");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}

/// The real uid a process runs as, from /proc.
fn process_uid(pid: i32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn as_root_the_servers_run_as_the_throwaway_user_and_the_installation_stays_roots() {
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test checks what a root run hands to the server user: run the suite as root, as CI does");
    }
    let target = support::standin_stage(&support::e2e_target());
    // Packaging makes the binary tarball the cluster is unpacked from.
    let packaged = support::xtask(
        &target,
        &["package", "--set", "pg15-pglogical", "--format", "tarball"],
    );
    assert!(packaged.status.success());
    let output = support::xtask(
        &target,
        &[
            "smoke",
            "--set",
            "pg15-pglogical",
            "--from",
            "tarball",
            "--keep",
        ],
    );
    let stderr = support::stderr(&output);
    assert!(output.status.success(), "{stderr}");
    let smoke_uid = uid_of("bdr-dist-smoke");
    let pids = started_pids(&stderr);
    let dir = cluster_dir(&stderr);
    let inspect = || {
        for pid in &pids {
            assert_eq!(
                process_uid(*pid),
                smoke_uid,
                "server pid {pid} is not bdr-dist-smoke's"
            );
        }
        let meta = |path: &Path| fs::symlink_metadata(path).unwrap();
        assert_eq!(meta(&dir).uid(), 0, "the cluster directory was handed over");
        assert_eq!(meta(&dir.join("n1")).uid(), smoke_uid);
        assert_eq!(meta(&dir.join("sock")).uid(), smoke_uid);
        // Every path of the installation the servers run from is root's and not writable by them.
        let mut pending = vec![dir.join("install")];
        let mut count = 0;
        while let Some(path) = pending.pop() {
            let info = meta(&path);
            assert_eq!(info.uid(), 0, "{} is not root's", path.display());
            if !info.file_type().is_symlink() {
                assert_eq!(
                    info.mode() & 0o022,
                    0,
                    "{} is writable by others",
                    path.display()
                );
            }
            if info.is_dir() {
                pending.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
            count += 1;
        }
        assert!(count > 100, "only {count} paths in the installation");
    };
    let inspected = std::panic::catch_unwind(inspect);
    // Stop the kept cluster with the commands it printed, whatever the checks found.
    let stop_lines: Vec<String> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("Stop it and remove its directory with:"))
        .skip(1)
        .take(3)
        .map(|line| line.trim().to_owned())
        .collect();
    for line in &stop_lines {
        Command::new("sh").arg("-c").arg(line).status().unwrap();
    }
    for pid in &pids {
        assert!(gone(*pid), "server pid {pid} still runs");
    }
    inspected.unwrap();
}

/// Server programs that only do what the attack needs: `postgres` names a
/// version, `initdb` makes a data directory in which the server user plants
/// links to root's files, where root would write the configuration and read
/// the log.
fn planting_server(bin: &Path, victims: &Path) {
    let script = |name: &str, body: String| {
        let path = bin.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    script("postgres", "echo 'postgres (PostgreSQL) 15.18'\n".into());
    script(
        "initdb",
        format!(
            "while [ $# -gt 0 ]; do [ \"$1\" = -D ] && D=$2; shift; done\n\
             mkdir -p \"$D\"\n\
             ln -s {v}/hba \"$D/pg_hba.conf\"\n\
             ln -s {v}/conf \"$D/postgresql.conf\"\n\
             ln -s {v}/secret \"$D/../server.log\"\n",
            v = victims.display()
        ),
    );
}

#[test]
fn as_root_nothing_of_roots_is_written_or_read_through_links_the_server_user_plants() {
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test checks what a root run does with the server user's files: run the suite as root, as CI does");
    }
    // A fake set whose stage holds the planting server, reachable by the server user.
    let work = xtask::files::tempdir().unwrap();
    fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let victims = xtask::files::tempdir().unwrap();
    for (name, text) in [
        ("hba", "ORIGINAL HBA\n"),
        ("conf", "ORIGINAL CONF\n"),
        ("secret", "ROOT SECRET\n"),
    ] {
        fs::write(victims.path().join(name), text).unwrap();
    }
    let recipes = work.path().join("recipes");
    fs::create_dir_all(&recipes).unwrap();
    let recipe =
        fs::read_to_string(xtask::project_root().join("recipes/pg15-pglogical.toml")).unwrap();
    fs::write(recipes.join("planted.toml"), recipe).unwrap();
    let target = work.path().join("target");
    let bin = target.join("sets/planted/stage/usr/pgsql-15/bin");
    fs::create_dir_all(&bin).unwrap();
    planting_server(&bin, victims.path());
    let output = smoke_linux(&target, "planted", &recipes);
    let stderr = support::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tee"),
        "the configuration is written as the server user: {stderr}"
    );
    assert_eq!(
        fs::read_to_string(victims.path().join("hba")).unwrap(),
        "ORIGINAL HBA\n"
    );
    assert_eq!(
        fs::read_to_string(victims.path().join("conf")).unwrap(),
        "ORIGINAL CONF\n"
    );
    assert!(
        !stderr.contains("ROOT SECRET"),
        "root read a planted log link: {stderr}"
    );
}

#[test]
fn as_root_an_unreachable_stage_is_copied_with_its_owners_rights_only() {
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test checks what a root run copies for the server user: run the suite as root, as CI does");
    }
    let nobody = uid_of("nobody");
    // target/ is nobody's and closed: the server user cannot reach the stage,
    // so root copies it, and a file of root's inside it must not come along.
    let work = xtask::files::tempdir().unwrap();
    fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let recipes = work.path().join("recipes");
    fs::create_dir_all(&recipes).unwrap();
    let recipe =
        fs::read_to_string(xtask::project_root().join("recipes/pg15-pglogical.toml")).unwrap();
    fs::write(recipes.join("closed.toml"), recipe).unwrap();
    let target = work.path().join("target");
    let prefix = target.join("sets/closed/stage/usr/pgsql-15");
    fs::create_dir_all(prefix.join("bin")).unwrap();
    fs::create_dir_all(prefix.join("share")).unwrap();
    let victims = xtask::files::tempdir().unwrap();
    planting_server(&prefix.join("bin"), victims.path());
    fs::write(prefix.join("share/root-only"), "ROOT SECRET\n").unwrap();
    fs::set_permissions(
        prefix.join("share/root-only"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    Command::new("chown")
        .args(["-R", &nobody.to_string()])
        .arg(&target)
        .status()
        .unwrap();
    std::os::unix::fs::chown(prefix.join("share/root-only"), Some(0), Some(0)).unwrap();
    fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let output = smoke_linux(&target, "closed", &recipes);
    let stderr = support::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot copy") && stderr.contains("root-only"),
        "the copy, made with the owner's rights, cannot read root's file: {stderr}"
    );
    let torn_down = stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("Teardown cluster stopped and "))
        .and_then(|rest| rest.split_once(" removed in "))
        .map(|(dir, _)| dir)
        .expect("the cluster is torn down");
    assert!(
        !Path::new(torn_down).exists(),
        "{torn_down} was left behind"
    );
}

#[test]
fn the_service_user_and_root_are_refused_as_server_users() {
    if unsafe { libc::geteuid() } != 0 {
        panic!("--run-as is for root runs: run the suite as root, as CI does");
    }
    let target = support::standin_stage(&support::e2e_target());
    let output = support::xtask(
        &target,
        &["smoke", "--set", "pg15-pglogical", "--run-as", "postgres"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(support::stderr(&output).contains("never the service user"));
    let output = support::xtask(
        &target,
        &["smoke", "--set", "pg15-pglogical", "--run-as", "root"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(support::stderr(&output).contains("servers never run as root"));
}

/// `cargo xtask smoke` of `set` from the recipes in `recipes`, on Linux.
fn smoke_linux(target: &Path, set: &str, recipes: &Path) -> std::process::Output {
    support::xtask(
        target,
        &[
            "smoke",
            "--set",
            set,
            "--platform",
            "linux",
            "--recipes",
            recipes.to_str().unwrap(),
        ],
    )
}

/// Start `smoke ARGS` on the stand-in stage, wait until every node is up
/// and prepared, then do `interrupt` to the run's pid; the run's stderr
/// (whole, once it has exited) and its exit status.
fn interrupted_smoke(
    args: &[&str],
    interrupt: impl FnOnce(i32),
) -> (String, std::process::ExitStatus) {
    let target = support::standin_stage(&support::e2e_target());
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["smoke", "--set", "pg15-pglogical"])
        .args(args)
        .env("BDR_DIST_TARGET", &target)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut interrupt = Some(interrupt);
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.trim_start().starts_with("Prepared") {
            (interrupt.take().unwrap())(child.id() as i32);
            break;
        }
    }
    assert!(
        interrupt.is_none(),
        "the run never got its nodes up:\n{seen}"
    );
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    eprintln!("{seen}");
    (seen, status)
}

/// Any command, after a run died: it removes what that run left (or waits
/// for another test's command that is doing it: nothing else removes a dead
/// run's directory).
fn next_command_reaps(dead_run: i32, dir: &Path) {
    let output = support::xtask(&support::e2e_target(), &["plan", "--set", "pg15-pglogical"]);
    assert!(output.status.success());
    let stderr = support::stderr(&output);
    assert!(!dir.exists(), "{} is still there: {stderr}", dir.display());
    let said = format!(
        "Removing the cluster that run {dead_run} left in {}",
        dir.display()
    );
    if !stderr.contains(&said) {
        eprintln!(
            "(another command running beside this test removed {})",
            dir.display()
        );
    }
}

#[test]
fn a_killed_run_takes_its_servers_with_it_and_the_next_command_removes_its_directory() {
    let mut run = 0;
    let (seen, status) = interrupted_smoke(&["--checks", "join"], |pid| {
        run = pid;
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // The servers got their parent-death signal: gone without any teardown.
    let pids = started_pids(&seen);
    assert_eq!(pids.len(), 2, "{seen}");
    for pid in &pids {
        assert!(gone(*pid), "server pid {pid} outlived the killed run");
    }
    // The killed run could not remove its directory: any next command does.
    next_command_reaps(run, &cluster_dir(&seen));
}

#[test]
fn a_killed_run_in_network_namespaces_leaves_nothing_after_the_next_command() {
    let mut run = 0;
    let (seen, _) = interrupted_smoke(&["--network", "netns", "--checks", "join"], |pid| {
        run = pid;
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    for pid in started_pids(&seen) {
        assert!(gone(pid), "server pid {pid} outlived the killed run");
    }
    // A killed run cannot remove its namespaces itself: the next command does.
    let prefix = format!("bdr-dist-{run}-");
    next_command_reaps(run, &cluster_dir(&seen));
    assert_no_namespaces_of(&prefix);
}

#[test]
fn servers_no_signal_reached_are_stopped_by_the_next_command() {
    // A --keep run's servers are not tied to it (they are to outlive it):
    // killed before it could mark the cluster kept, it leaves them running,
    // as a server that another program started (bdr_init_copy's) would be.
    let mut run = 0;
    let (seen, _) = interrupted_smoke(&["--keep", "--checks", "join"], |pid| {
        run = pid;
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let pids = started_pids(&seen);
    assert_eq!(pids.len(), 2, "{seen}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        pids.iter().all(|pid| alive(*pid)),
        "untied servers still run"
    );
    next_command_reaps(run, &cluster_dir(&seen));
    for pid in pids {
        assert!(gone(pid), "the next command left server pid {pid} running");
    }
}

#[test]
fn two_quick_sigints_still_stop_every_server_and_remove_the_directory() {
    // 20 ms apart: the second lands while the first is still stopping the
    // running check, before teardown began (the old handler exited there,
    // leaving the directory and its CA key).
    let (seen, status) = interrupted_smoke(&["--nodes", "3"], |pid| {
        unsafe { libc::kill(pid, libc::SIGINT) };
        std::thread::sleep(std::time::Duration::from_millis(20));
        unsafe { libc::kill(pid, libc::SIGINT) };
    });
    assert!(!status.success());
    assert!(
        seen.contains("the cluster's servers and its directory first, without waiting"),
        "{seen}"
    );
    assert_torn_down(&started_pids(&seen), &cluster_dir(&seen), 3);
}
