//! The executor on tiny fixture projects made here: a configure script and a
//! Makefile that write files and log each run, built by the real `make`
//! through `cargo xtask build` with a recipe directory of the test's own.

mod support;

use std::{
    fs,
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        process::CommandExt,
    },
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

const CONFIGURE: &str = r#"#!/bin/sh
echo configure "$@" >> ../../runs.log
echo "PREFIX=$(echo "$@" | sed 's/.*--prefix=\([^ ]*\).*/\1/')" > config.mk
echo "configured with $*"
"#;

const MAKEFILE: &str = r#"include config.mk
all: built.txt
built.txt:
	@echo compile >> ../../runs.log
	@if [ -f ../../block-compile ]; then echo $$$$ > ../../compile.pid; touch ../../compile-started; while [ -f ../../block-compile ]; do sleep 0.05; done; fi
	@if [ -f ../../fail-compile ]; then for i in $$(seq 1 50); do echo "output line $$i"; done; exit 3; fi
	echo built $(FLAVOR) > built.txt
install:
	@echo install >> ../../runs.log
	@if [ -f ../../slow-install ]; then touch ../../install-running; sleep 1; rm ../../install-running; fi
	mkdir -p $(DESTDIR)$(PREFIX)/bin
	cp built.txt $(DESTDIR)$(PREFIX)/bin/tool
	chmod +x $(DESTDIR)$(PREFIX)/bin/tool
"#;

/// Contrib, which only the recipe of [`Fixture::with_contrib`] builds.
const CONTRIB_MAKEFILE: &str = r#"include ../config.mk
all:
	@echo contrib-compile >> ../../../runs.log
	@if [ -f ../../../slow-install ]; then for i in $$(seq 1 100); do [ -f ../../../install-running ] && break; sleep 0.05; done; fi
	@if [ -f ../../../install-running ]; then echo beside-install >> ../../../runs.log; fi
	@if [ -f ../../../fail-contrib ]; then echo "contrib broke"; exit 4; fi
	echo contrib > contrib.txt
install:
	@echo contrib-install >> ../../../runs.log
	mkdir -p $(DESTDIR)$(PREFIX)/share
	cp contrib.txt $(DESTDIR)$(PREFIX)/share/contrib.txt
"#;

const PLUGIN_MAKEFILE: &str = r#"all:
	@echo plugin-compile >> ../../runs.log
	echo plugin > plugin.txt
install:
	@echo plugin-install >> ../../runs.log
	cp plugin.txt $$(dirname $$(command -v tool))/plugin.txt
"#;

/// What the fixture's configure and make log when every step runs.
const EVERY_STEP: [&str; 5] = [
    "configure",
    "compile",
    "install",
    "plugin-compile",
    "plugin-install",
];

/// A workspace: recipes/, mirror/ and target/ of one test.
struct Fixture {
    _dir: xtask::files::TempDir,
    root: PathBuf,
}

fn tarball(name: &str, files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, body, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(1_600_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{name}/{path}"), body.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

impl Fixture {
    fn new() -> Fixture {
        let dir = xtask::files::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::create_dir_all(root.join("mirror")).unwrap();
        fs::create_dir_all(root.join("recipes")).unwrap();
        let server = tarball(
            "fix-1.0",
            &[
                ("configure", CONFIGURE, 0o755),
                ("Makefile", MAKEFILE, 0o644),
                ("contrib/Makefile", CONTRIB_MAKEFILE, 0o644),
            ],
        );
        let plugin = tarball("plug-2.0", &[("Makefile", PLUGIN_MAKEFILE, 0o644)]);
        fs::write(root.join("mirror/fix-1.0.tar.gz"), &server).unwrap();
        fs::write(root.join("mirror/plug-2.0.tar.gz"), &plugin).unwrap();
        let fixture = Fixture { _dir: dir, root };
        fixture.write_recipe("--enable-thing", "plain");
        fixture
    }

    /// The fixture whose server also builds and installs contrib.
    fn with_contrib() -> Fixture {
        let fixture = Fixture::new();
        let path = fixture.root.join("recipes/fix.toml");
        let recipe = fs::read_to_string(&path).unwrap().replace(
            "\n[[component]]\nname = \"plug\"",
            "[[component.step]]\nkind = \"compile\"\nlabel = \"contrib\"\ndir = \"contrib\"\n\
             run = [\"{make}\"]\n[[component.step]]\nkind = \"install\"\nlabel = \"contrib\"\n\
             dir = \"contrib\"\nrun = [\"{make}\", \"install\", \"DESTDIR={stage}\"]\n\
             \n[[component]]\nname = \"plug\"",
        );
        assert!(recipe.contains("label = \"contrib\""));
        fs::write(path, recipe).unwrap();
        fixture
    }

    fn write_recipe(&self, configure_flag: &str, flavor: &str) {
        let sha = |file: &str| {
            hex::encode(Sha256::digest(
                fs::read(self.root.join("mirror").join(file)).unwrap(),
            ))
        };
        let recipe = format!(
            r#"[set]
description = "fixture"
platforms = ["linux"]
prefix = {{ linux = "/opt/fix" }}
[set.package]
name = "fix"
release = "1"
summary = "s"
license = "MIT"
url = "https://example.invalid/"
[set.smoke]
driver = "pglogical"
preload = "plug"
extensions = []

[[component]]
name = "fix"
version = "1.0"
role = "server"
[component.source]
file = "fix-1.0.tar.gz"
urls = ["https://example.invalid/fix-1.0.tar.gz"]
sha256 = "{}"
archive = "tar.gz"
[[component.step]]
kind = "configure"
run = ["./configure", "--prefix={{prefix}}", "{configure_flag}"]
[[component.step]]
kind = "compile"
run = ["{{make}}", "FLAVOR={flavor}"]
parallel = true
[[component.step]]
kind = "install"
run = ["{{make}}", "install", "DESTDIR={{stage}}"]

[[component]]
name = "plug"
version = "2.0"
role = "plugin"
depends = ["fix"]
path_prepend = ["{{server_bindir}}"]
[component.source]
file = "plug-2.0.tar.gz"
urls = ["https://example.invalid/plug-2.0.tar.gz"]
sha256 = "{}"
archive = "tar.gz"
[[component.step]]
kind = "compile"
run = ["{{make}}"]
[[component.step]]
kind = "install"
run = ["{{make}}", "install"]
"#,
            sha("fix-1.0.tar.gz"),
            sha("plug-2.0.tar.gz"),
        );
        fs::write(self.root.join("recipes/fix.toml"), recipe).unwrap();
    }

    fn target(&self) -> PathBuf {
        self.root.join("target")
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "build",
            "--set",
            "fix",
            "--platform",
            "linux",
            "--no-ccache",
        ]
        .map(String::from)
        .to_vec();
        args.extend([
            "--recipes".into(),
            self.root.join("recipes").display().to_string(),
        ]);
        args.extend([
            "--mirror".into(),
            self.root.join("mirror").display().to_string(),
        ]);
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    }

    fn build(&self, extra: &[&str]) -> std::process::Output {
        let mut args = self.args(extra);
        args.push("--json".into());
        support::xtask(
            &self.target(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    fn install(&self, prefix: &std::path::Path) -> std::process::Output {
        let recipes = self.root.join("recipes").display().to_string();
        let prefix = prefix.display().to_string();
        let args = [
            "install",
            "--set",
            "fix",
            "--platform",
            "linux",
            "--recipes",
            &recipes,
            "--prefix",
            &prefix,
        ];
        support::xtask(&self.target(), &args)
    }

    /// Build again after a build stopped in its compile step: the steps
    /// before it are fresh, and it resumes at the compile.
    fn resumes_at_compile(&self) {
        let output = self.build(&[]);
        succeeded(&output);
        assert_eq!(
            support::steps(&support::json(&output), "fresh"),
            ["fix-unpack", "plug-unpack", "fix-configure"]
        );
        assert_eq!(
            self.take_runs(),
            ["compile", "install", "plugin-compile", "plugin-install"]
        );
    }

    /// Start a build, in a process group of its own, whose compile step
    /// blocks until `block-compile` is removed; returns once it blocks, with
    /// the pid of its shell.
    fn start_blocked_build(&self, stderr: std::process::Stdio) -> (std::process::Child, i32) {
        let set_dir = self.target().join("sets/fix");
        fs::create_dir_all(&set_dir).unwrap();
        fs::write(set_dir.join("block-compile"), "").unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(self.args(&[]))
            .env("BDR_DIST_TARGET", self.target())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !set_dir.join("compile-started").exists() {
            assert!(Instant::now() < deadline, "the compile step never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let compile_pid = fs::read_to_string(set_dir.join("compile.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (child, compile_pid)
    }

    /// The lines the fixture's configure and make appended, then forget them.
    fn take_runs(&self) -> Vec<String> {
        let path = self.target().join("sets/fix/runs.log");
        let runs = fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect();
        let _ = fs::remove_file(path);
        runs
    }

    /// What the fixture's install put in the stage as its program.
    fn staged_tool(&self) -> String {
        fs::read_to_string(self.stage_file("tool")).unwrap()
    }

    fn stage_file(&self, name: &str) -> PathBuf {
        self.target().join("sets/fix/stage/opt/fix/bin").join(name)
    }
}

fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "build failed:\n{}",
        support::stderr(output)
    );
}

#[test]
fn a_rerun_with_nothing_changed_does_nothing_and_jobs_do_not_count() {
    let fixture = Fixture::new();
    succeeded(&fixture.build(&["--jobs", "1"]));
    assert_eq!(fixture.take_runs(), EVERY_STEP);
    assert_eq!(fixture.staged_tool(), "built plain\n");
    assert_eq!(
        fs::read_to_string(fixture.stage_file("plugin.txt")).unwrap(),
        "plugin\n"
    );

    let again = fixture.build(&["--jobs", "2"]);
    succeeded(&again);
    assert_eq!(fixture.take_runs(), Vec::<String>::new());
    let report = support::json(&again);
    assert_eq!(support::steps(&report, "ran"), Vec::<String>::new());
    assert_eq!(support::steps(&report, "fresh").len(), 7, "{report}");

    let forced = fixture.build(&["--force"]);
    succeeded(&forced);
    assert_eq!(fixture.take_runs(), EVERY_STEP);
}

#[test]
fn a_changed_input_reruns_exactly_the_steps_it_affects() {
    let fixture = Fixture::new();
    succeeded(&fixture.build(&[]));
    fixture.take_runs();

    // The plugin's steps come after the server's: a server change reruns both.
    fixture.write_recipe("--enable-other-thing", "plain");
    let output = fixture.build(&[]);
    succeeded(&output);
    assert_eq!(fixture.take_runs(), EVERY_STEP);
    // Make would take the old objects as up to date: a changed input rebuilds
    // from a fresh tree, the plugin's too (it was built against the old server).
    let ran = support::steps(&support::json(&output), "ran");
    assert!(
        ran.contains(&"fix-unpack".to_owned()) && ran.contains(&"plug-unpack".to_owned()),
        "{ran:?}"
    );

    // Removing the stage reruns the server's install, and what comes after it.
    fs::remove_dir_all(fixture.target().join("sets/fix/stage")).unwrap();
    succeeded(&fixture.build(&[]));
    assert_eq!(
        fixture.take_runs(),
        ["install", "plugin-compile", "plugin-install"]
    );
    assert!(fixture.stage_file("plugin.txt").is_file());
}

#[test]
fn a_changed_make_variable_reaches_what_was_already_built() {
    let fixture = Fixture::new();
    succeeded(&fixture.build(&[]));
    assert_eq!(fixture.staged_tool(), "built plain\n");
    // built.txt is newer than everything make knows of: only a fresh tree rebuilds it.
    fixture.write_recipe("--enable-thing", "spicy");
    succeeded(&fixture.build(&[]));
    assert_eq!(fixture.staged_tool(), "built spicy\n");
}

#[test]
fn a_failing_step_shows_command_directory_status_tail_and_log() {
    let fixture = Fixture::new();
    fs::create_dir_all(fixture.target().join("sets/fix")).unwrap();
    fs::write(fixture.target().join("sets/fix/fail-compile"), "").unwrap();
    let output = fixture.build(&["--jobs", "2"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = support::stderr(&output);
    let src = fixture.target().join("sets/fix/src/fix-1.0");
    assert!(
        stderr.contains("step `fix-compile` failed: exit status: 2"),
        "{stderr}"
    );
    assert!(stderr.contains("command: make -j2"), "{stderr}");
    assert!(
        stderr.contains(&format!("cwd:     {}", src.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("output line 50") && stderr.contains("output line 12"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("output line 10\n"),
        "more than the last 40 lines: {stderr}"
    );
    let log = fixture.target().join("sets/fix/logs/fix-compile.log");
    assert!(
        stderr.contains(&format!("full log: {}", log.display())),
        "{stderr}"
    );
    let log = fs::read_to_string(log).unwrap();
    assert!(log.contains("output line 1\n") && log.contains("output line 50\n"));
    assert!(!fixture
        .target()
        .join("sets/fix/stamps/fix-compile")
        .exists());
}

#[test]
fn a_killed_build_resumes_from_the_step_that_did_not_finish() {
    let fixture = Fixture::new();
    let set_dir = fixture.target().join("sets/fix");
    let (mut child, _) = fixture.start_blocked_build(std::process::Stdio::null());
    // Kill the whole process group: the tool and the make it runs.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    fs::remove_file(set_dir.join("block-compile")).unwrap();
    assert_eq!(fixture.take_runs(), ["configure", "compile"]);
    assert!(
        set_dir.join("stage.incomplete").exists(),
        "the interrupted build is marked"
    );
    let install = fixture.install(&fixture.root.join("installed"));
    assert_eq!(install.status.code(), Some(1));
    assert!(
        support::stderr(&install).contains("half-written"),
        "{}",
        support::stderr(&install)
    );

    fixture.resumes_at_compile();
    assert!(!set_dir.join("stage.incomplete").exists());
    assert_eq!(fixture.staged_tool(), "built plain\n");
}

#[test]
fn install_copies_the_finished_stage_into_the_prefix() {
    let fixture = Fixture::new();
    succeeded(&fixture.build(&[]));
    let prefix = fixture.root.join("installed/opt");
    let output = fixture.install(&prefix);
    assert!(output.status.success(), "{}", support::stderr(&output));
    assert_eq!(
        fs::read_to_string(prefix.join("bin/tool")).unwrap(),
        "built plain\n"
    );
    assert_eq!(
        fs::read_to_string(prefix.join("bin/plugin.txt")).unwrap(),
        "plugin\n"
    );
}

/// Whether a process is gone (or a zombie waiting to be reaped) within `within`.
fn gone_within(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let state = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next()));
        match state {
            None | Some(Some('Z')) => return true,
            _ if Instant::now() >= deadline => return false,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn sigterm_during_a_long_build_step_stops_it_within_5_s_and_a_rerun_resumes() {
    let fixture = Fixture::new();
    let set_dir = fixture.target().join("sets/fix");
    let (child, compile_pid) = fixture.start_blocked_build(std::process::Stdio::piped());
    // `kill <pid>` of the tool alone, as a user or a CI runner sends it.
    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(
        gone_within(compile_pid, Duration::from_secs(5)),
        "the build step (pid {compile_pid}) still runs 5 s after SIGTERM"
    );
    let output = child.wait_with_output().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "the tool took {:?} to stop",
        signalled.elapsed()
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted by a signal"), "{stderr}");
    assert!(
        !set_dir.join("stamps/fix-compile").exists(),
        "the stopped step was stamped"
    );
    assert!(set_dir.join("stamps/fix-configure").exists());
    assert!(set_dir.join("stage.incomplete").exists());

    fs::remove_file(set_dir.join("block-compile")).unwrap();
    fixture.take_runs();
    fixture.resumes_at_compile();
    assert_eq!(fixture.staged_tool(), "built plain\n");
}

#[test]
fn clean_refuses_a_set_name_that_climbs_out_of_target() {
    let target = xtask::files::tempdir().unwrap();
    fs::create_dir_all(target.path().join("sets/keep")).unwrap();
    fs::create_dir_all(target.path().join("downloads")).unwrap();
    for set in ["..", "/", "../..", "keep/.."] {
        let output = support::xtask(target.path(), &["clean", "--set", set]);
        assert_eq!(output.status.code(), Some(2), "clean --set {set}");
        assert!(support::stderr(&output).contains("is not a set name"));
    }
    assert!(target.path().join("sets/keep").is_dir());
    assert!(target.path().join("downloads").is_dir());
    let output = support::xtask(target.path(), &["clean", "--set", "keep"]);
    assert!(output.status.success());
    assert!(!target.path().join("sets/keep").exists());
    assert!(target.path().join("downloads").is_dir());
}

#[test]
fn a_set_lock_file_that_is_a_symlink_is_refused() {
    let fixture = Fixture::new();
    let set_dir = fixture.target().join("sets/fix");
    fs::create_dir_all(&set_dir).unwrap();
    let planted = fixture.root.join("planted");
    std::os::unix::fs::symlink(&planted, set_dir.join(".lock")).unwrap();
    let output = fixture.build(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        support::stderr(&output).contains("a symlink is refused"),
        "{}",
        support::stderr(&output)
    );
    assert!(!planted.exists(), "the lock was opened through the symlink");
    assert_eq!(fixture.take_runs(), Vec::<String>::new());
}

/// The uid and gid of `nobody`, the unprivileged builder of these tests.
fn nobody() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let output = Command::new("id").args([flag, "nobody"]).output().unwrap();
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

/// Build the fixture as `nobody` with umask 002, the way a builder whose
/// files come out group-writable would: the tool, its platform files, the
/// recipes and mirror are copied where that user can read them.
fn build_as_nobody(fixture: &Fixture) {
    let (uid, gid) = nobody();
    fs::set_permissions(&fixture.root, fs::Permissions::from_mode(0o755)).unwrap();
    let tool = fixture.root.join("tool/xtask");
    fs::create_dir_all(tool.parent().unwrap()).unwrap();
    fs::copy(env!("CARGO_BIN_EXE_xtask"), &tool).unwrap();
    let platforms = fixture.root.join("tool/platforms");
    fs::create_dir_all(&platforms).unwrap();
    for name in ["linux.toml", "openbsd.toml"] {
        fs::copy(
            xtask::project_root().join("platforms").join(name),
            platforms.join(name),
        )
        .unwrap();
    }
    fs::create_dir_all(fixture.target()).unwrap();
    std::os::unix::fs::chown(fixture.target(), Some(uid), Some(gid)).unwrap();
    let output = Command::new(&tool)
        .args(fixture.args(&[]))
        .env("BDR_DIST_TARGET", fixture.target())
        .env("BDR_DIST_PLATFORMS", &platforms)
        .env("HOME", "/nonexistent")
        .uid(uid)
        .gid(gid)
        .process_group(0)
        .pre_exec_umask(0o002)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "build as nobody: {}",
        support::stderr(&output)
    );
    let staged = fixture.stage_file("tool");
    assert_eq!(
        fs::metadata(&staged).unwrap().uid(),
        uid,
        "the stage is the builder's"
    );
    assert_eq!(
        fs::metadata(fixture.stage_file("plugin.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o664,
        "umask 002 made the stage group-writable"
    );
}

trait Umask {
    fn pre_exec_umask(&mut self, mask: libc::mode_t) -> &mut Self;
}

impl Umask for Command {
    fn pre_exec_umask(&mut self, mask: libc::mode_t) -> &mut Self {
        // SAFETY: umask is async-signal-safe and touches nothing but this child.
        unsafe {
            self.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            })
        }
    }
}

#[test]
fn install_of_a_stage_built_by_an_unprivileged_user_is_roots_and_leaves_existing_directories_alone()
{
    let fixture = Fixture::new();
    build_as_nobody(&fixture);
    let (uid, gid) = nobody();
    // The builder slipped a setuid program into the stage.
    let planted = fixture.stage_file("suid");
    fs::write(&planted, "#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&planted, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o4775)).unwrap();
    // An existing prefix and an existing bin/ with modes of the administrator's choosing.
    let prefix = fixture.root.join("installed/opt");
    fs::create_dir_all(prefix.join("bin")).unwrap();
    fs::set_permissions(&prefix, fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(prefix.join("bin"), fs::Permissions::from_mode(0o711)).unwrap();
    let outside_mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode();
    let root_mode = outside_mode(&fixture.root);
    let tmp_mode = outside_mode(Path::new("/tmp"));

    let output = fixture.install(&prefix);
    assert!(output.status.success(), "{}", support::stderr(&output));

    let mode = |path: &Path| fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&prefix), 0o751, "the existing prefix's mode changed");
    assert_eq!(
        mode(&prefix.join("bin")),
        0o711,
        "an existing directory's mode changed"
    );
    assert_eq!(outside_mode(&fixture.root), root_mode);
    assert_eq!(outside_mode(Path::new("/tmp")), tmp_mode);
    let mut checked = 0;
    let mut pending = vec![prefix.clone()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (0, 0),
                "{} is not root's",
                path.display()
            );
            if meta.is_dir() {
                pending.push(path.clone());
            } else {
                assert!(
                    [0o755, 0o644].contains(&mode(&path)),
                    "{} has mode {:o}",
                    path.display(),
                    mode(&path)
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "bin/tool, bin/plugin.txt, bin/suid and bin/");
    assert_eq!(mode(&prefix.join("bin/tool")), 0o755);
    assert_eq!(mode(&prefix.join("bin/plugin.txt")), 0o644);
    assert_eq!(
        mode(&prefix.join("bin/suid")),
        0o755,
        "setuid reached the prefix"
    );
    assert_eq!(
        fs::read_to_string(prefix.join("bin/tool")).unwrap(),
        "built plain\n"
    );
}

#[test]
fn install_refuses_a_prefix_that_is_a_symlink_or_not_roots_alone() {
    let fixture = Fixture::new();
    succeeded(&fixture.build(&[]));
    let (uid, gid) = nobody();
    let elsewhere = fixture.root.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let link = fixture.root.join("link-prefix");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let theirs = fixture.root.join("theirs");
    fs::create_dir_all(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(uid), Some(gid)).unwrap();
    let shared = fixture.root.join("shared");
    fs::create_dir_all(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    for (prefix, why) in [
        (link.clone(), "is a symlink"),
        (theirs.clone(), &*format!("is owned by uid {uid}")),
        (theirs.join("below"), &*format!("is owned by uid {uid}")),
        (shared.join("below"), "is writable by everyone"),
    ] {
        let output = fixture.install(&prefix);
        assert_eq!(output.status.code(), Some(1), "{}", prefix.display());
        let stderr = support::stderr(&output);
        assert!(
            stderr.contains("refusing to install") && stderr.contains(why),
            "{stderr}"
        );
    }
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
    assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);
}

#[test]
fn another_compiler_on_path_rebuilds_what_it_would_compile() {
    let fixture = Fixture::new();
    succeeded(&fixture.build(&[]));
    fixture.take_runs();
    // The same compiler behind another path: the wrappers the steps run
    // through name it, so what was built with the other one is stale.
    let bin = fixture.root.join("other-cc");
    fs::create_dir_all(&bin).unwrap();
    let real = which_cc();
    fs::write(bin.join("cc"), format!("#!/bin/sh\nexec {real} \"$@\"\n")).unwrap();
    fs::set_permissions(bin.join("cc"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let args = fixture.args(&["--json"]);
    let build_on_path = || {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(&args)
            .env("BDR_DIST_TARGET", fixture.target())
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let output = build_on_path();
    succeeded(&output);
    assert_eq!(fixture.take_runs(), EVERY_STEP);
    let wrapper =
        fs::read_to_string(fixture.target().join("sets/fix/compilers/fix-compile/cc")).unwrap();
    assert!(
        wrapper.contains(&bin.join("cc").display().to_string()),
        "{wrapper}"
    );
    // And nothing changed since: nothing reruns.
    let again = build_on_path();
    succeeded(&again);
    assert_eq!(
        support::steps(&support::json(&again), "ran"),
        Vec::<String>::new()
    );
}

fn which_cc() -> String {
    let output = Command::new("sh")
        .args(["-c", "command -v cc"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn install_refuses_an_existing_directory_below_the_prefix_that_another_user_owns() {
    // What an older `cp -p` install left behind: the prefix is root's, its
    // lib/ is the builder's, who could swap the libraries root's servers load.
    let fixture = Fixture::new();
    succeeded(&fixture.build(&[]));
    let (uid, gid) = nobody();
    let prefix = fixture.root.join("installed/opt");
    fs::create_dir_all(prefix.join("bin")).unwrap();
    std::os::unix::fs::chown(prefix.join("bin"), Some(uid), Some(gid)).unwrap();
    let output = fixture.install(&prefix);
    assert_eq!(output.status.code(), Some(1));
    let stderr = support::stderr(&output);
    assert!(
        stderr.contains("refusing to install")
            && stderr.contains(&format!("bin is owned by uid {uid}")),
        "{stderr}"
    );
    assert_eq!(fs::read_dir(prefix.join("bin")).unwrap().count(), 0);
}

#[test]
fn install_refuses_a_symlink_anywhere_above_the_prefix() {
    // Even root's own: what it points into is not what was checked, and a
    // directory entry where it stands would replace it.
    let fixture = Fixture::new();
    succeeded(&fixture.build(&[]));
    let real = fixture.root.join("real");
    fs::create_dir_all(&real).unwrap();
    let link = fixture.root.join("alink");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let output = fixture.install(&link.join("pg"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = support::stderr(&output);
    assert!(stderr.contains("alink is a symlink"), "{stderr}");
    assert_eq!(fs::read_dir(&real).unwrap().count(), 0);
}

#[test]
fn install_refuses_a_prefix_holding_anything_not_roots_alone_or_of_another_shape() {
    let fixture = Fixture::new();
    succeeded(&fixture.build(&[]));
    let (uid, gid) = nobody();
    let refused = |prefix: &Path, why: &str| {
        let output = fixture.install(prefix);
        assert_eq!(output.status.code(), Some(1), "{}", prefix.display());
        let stderr = support::stderr(&output);
        assert!(
            stderr.contains("refusing to install") && stderr.contains(why),
            "{stderr}"
        );
    };
    // A library another user left, where root's servers would load it.
    let prefix = fixture.root.join("a/opt");
    fs::create_dir_all(prefix.join("lib/plugins")).unwrap();
    fs::write(prefix.join("lib/plugins/evil.so"), "").unwrap();
    std::os::unix::fs::chown(prefix.join("lib/plugins/evil.so"), Some(uid), Some(gid)).unwrap();
    refused(&prefix, &format!("evil.so is owned by uid {uid}"));
    // Writable by its group, even root's group.
    let prefix = fixture.root.join("b/opt");
    fs::create_dir_all(prefix.join("share")).unwrap();
    fs::set_permissions(prefix.join("share"), fs::Permissions::from_mode(0o775)).unwrap();
    refused(&prefix, "share is writable by its group, gid 0");
    // A directory where the install has a file.
    let prefix = fixture.root.join("c/opt");
    fs::create_dir_all(prefix.join("bin/tool")).unwrap();
    refused(
        &prefix,
        "bin/tool is a directory where the install has a file",
    );
    // Nothing was installed into any of them.
    assert!(!fixture.root.join("a/opt/bin").exists());
    assert!(!fixture.root.join("b/opt/bin").exists());
}

#[test]
fn a_second_signal_exits_at_once_and_takes_the_running_step_with_it() {
    let fixture = Fixture::new();
    let set_dir = fixture.target().join("sets/fix");
    let (mut child, compile_pid) = fixture.start_blocked_build(std::process::Stdio::null());
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(5));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        gone_within(compile_pid, Duration::from_secs(5)),
        "the build step (pid {compile_pid}) outlived the tool"
    );
    fs::remove_file(set_dir.join("block-compile")).unwrap();
}

/// Steps run side by side (contrib compiles while the server installs); a
/// failure starts nothing more, but what runs finishes and is stamped, so
/// the rerun redoes only what failed and what comes after it.
#[test]
fn a_failure_beside_a_running_step_lets_it_finish_and_the_rerun_redoes_only_the_rest() {
    let fixture = Fixture::with_contrib();
    let set_dir = fixture.target().join("sets/fix");
    fs::create_dir_all(&set_dir).unwrap();
    fs::write(set_dir.join("fail-contrib"), "").unwrap();
    fs::write(set_dir.join("slow-install"), "").unwrap();
    let output = fixture.build(&[]);
    assert!(!output.status.success());
    let stderr = support::stderr(&output);
    assert!(
        stderr.contains("step `fix-contrib-compile` failed"),
        "{stderr}"
    );
    assert!(stderr.contains("contrib broke"), "{stderr}");
    let mut runs = fixture.take_runs();
    runs.sort();
    // The server's install ran beside the failing contrib compile (which
    // saw it running) and finished; the plugin, which waits for that
    // install, never started.
    assert_eq!(
        runs,
        [
            "beside-install",
            "compile",
            "configure",
            "contrib-compile",
            "install"
        ]
    );
    assert!(
        set_dir.join("stamps/fix-install").is_file(),
        "the install that finished is stamped"
    );

    fs::remove_file(set_dir.join("fail-contrib")).unwrap();
    fs::remove_file(set_dir.join("slow-install")).unwrap();
    let output = fixture.build(&[]);
    succeeded(&output);
    let fresh = support::steps(&support::json(&output), "fresh");
    assert!(fresh.contains(&"fix-install".to_owned()), "{fresh:?}");
    let mut runs = fixture.take_runs();
    runs.sort();
    assert_eq!(
        runs,
        [
            "contrib-compile",
            "contrib-install",
            "plugin-compile",
            "plugin-install"
        ]
    );
    assert_eq!(
        fs::read_to_string(
            fixture
                .target()
                .join("sets/fix/stage/opt/fix/share/contrib.txt")
        )
        .unwrap(),
        "contrib\n"
    );
}

/// A platform of the test's own whose one prerequisite is missing: a
/// program in `fakebin/` that its package manager "installs" (a script
/// writing it there), so the install path runs for real without touching
/// the host's packages.
fn platform_with_a_missing_tool(fixture: &Fixture) -> (PathBuf, PathBuf) {
    let platforms = fixture.root.join("platforms");
    let fakebin = fixture.root.join("fakebin");
    fs::create_dir_all(&platforms).unwrap();
    fs::create_dir_all(&fakebin).unwrap();
    let tool = fakebin.join("bdr-dist-fake-tool");
    let platform = format!(
        r#"os = "linux"
make = "make"
cc = "cc"
escalate = "sudo"
default_prefix = "/opt/fix"
service_user = "postgres"
service_home = "/var/lib/pgsql"
smoke_user = "bdr-dist-smoke"
create_user = ["useradd", "{{user}}"]
package_formats = ["tarball"]
header_dirs = ["/usr/include"]
[install]
group = "root"
gid = 0
mkdir = ["mkdir", "-p", "{{prefix}}"]
extract = ["tar", "-x", "-f", "-", "-C", "{{prefix}}"]
[configure_env]
[[package_manager]]
name = "fake"
program = "sh"
install = ["sh", "-c", "for package; do printf '#!/bin/sh\\n' > \"$0/$package\"; chmod +x \"$0/$package\"; done", "{fakebin}"]
[[prerequisite]]
name = "the fake tool (the build needs it)"
program = "{tool}"
purpose = "build"
packages = {{ fake = "bdr-dist-fake-tool" }}
[[prerequisite]]
name = "a tool only the suite needs"
program = "bdr-dist-no-such-test-tool"
purpose = "test"
packages = {{ fake = "bdr-dist-no-such-test-tool" }}
"#,
        fakebin = fakebin.display(),
        tool = tool.display(),
    );
    fs::write(platforms.join("linux.toml"), platform).unwrap();
    (platforms, tool)
}

#[test]
fn a_missing_prerequisite_is_refused_with_its_command_or_installed_first() {
    let fixture = Fixture::new();
    let (platforms, tool) = platform_with_a_missing_tool(&fixture);
    let platforms = platforms.display().to_string();

    let refused = fixture.build(&["--platforms", &platforms, "--no-install"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        support::stderr(&refused)
    );
    let message = support::stderr(&refused);
    assert!(
        message.contains(&format!(
            "missing build prerequisites: the fake tool (the build needs it) ({} not found); \
             run `cargo xtask doctor --fix`, or install with: sh -c",
            tool.display()
        )),
        "{message}"
    );
    // Only what a build needs: not the suite's own tools.
    assert!(!message.contains("bdr-dist-no-such-test-tool"), "{message}");
    assert!(
        fixture.take_runs().is_empty(),
        "nothing ran before the refusal"
    );
    assert!(!tool.exists());

    // Run as root (the suite is), the build installs it first, saying so.
    let installed = fixture.build(&["--platforms", &platforms]);
    succeeded(&installed);
    let message = support::stderr(&installed);
    assert!(
        message.contains("Missing the fake tool (the build needs it)")
            && message
                .contains("Installing bdr-dist-fake-tool (pass --no-install to refuse instead)"),
        "{message}"
    );
    assert!(tool.is_file(), "the package manager's command ran");
    assert_eq!(fixture.take_runs(), EVERY_STEP);

    // Present now: nothing to install, nothing said.
    let again = fixture.build(&["--platforms", &platforms, "--no-install"]);
    succeeded(&again);
    assert!(!support::stderr(&again).contains("Installing"));
}
