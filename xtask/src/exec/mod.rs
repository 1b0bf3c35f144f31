//! The executor: the only code that runs a plan's steps.
//!
//! Each step is stamped with a hash of its inputs (the step as planned, minus
//! `-jN` and ccache, plus the stamps of the steps it comes after). A step whose
//! stamp matches, and none of whose inputs ran in this run, is skipped. A stamp
//! is written only after its step succeeded, so a killed run resumes from the
//! step that did not finish. Every command's output goes to its own log file.

pub mod install;

use std::{
    collections::{BTreeMap, VecDeque},
    fs,
    io::{BufRead, BufReader, IsTerminal},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::{
    files::{self, write_atomically},
    interrupt,
    plan::{Action, Layout, Phase, Plan, Run, Step},
    sources::archive::{self, Expect, TreeMismatch},
    sources::fetch::{self, Cache, FetchOptions},
};

/// How many lines of a failed command's output are shown.
const TAIL_LINES: usize = 40;

/// Inherited environment variables that commands keep. Everything else
/// (`MAKEFLAGS`, `CARGO_*`, `TARGET`, `CFLAGS`, `PG*`, ...) is dropped so that
/// a build depends only on its plan, which is what its stamp hashes.
const KEPT_ENVIRONMENT: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TERM", "SHELL", "TZ",
];

pub struct Executor<'a> {
    pub plan: &'a Plan,
    pub layout: Layout,
    /// Rerun steps even when their stamps match.
    pub force: bool,
    /// `--locked`, timeouts.
    pub fetch: FetchOptions,
}

/// What happened to each step, in order.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ran: Vec<String>,
    pub fresh: Vec<String>,
    pub fetched: BTreeMap<String, fetch::Fetched>,
    /// Wall time spent in each phase's steps.
    pub seconds: BTreeMap<Phase, f64>,
}

impl Outcome {
    /// How many steps of `phase` ran, and how many were fresh.
    pub fn counts(&self, plan: &Plan, phase: Phase) -> (usize, usize) {
        let in_phase = |id: &&String| {
            plan.steps
                .iter()
                .any(|step| &step.id == *id && step.phase == phase)
        };
        (
            self.ran.iter().filter(in_phase).count(),
            self.fresh.iter().filter(in_phase).count(),
        )
    }
}

impl Executor<'_> {
    fn set_dir(&self) -> PathBuf {
        self.layout.set_dir(&self.plan.set)
    }

    /// Marker present while the stage may be half-written.
    pub fn stage_incomplete_marker(layout: &Layout, set: &str) -> PathBuf {
        layout.set_dir(set).join("stage.incomplete")
    }

    /// Run the steps of `phases` and, with `prerequisites`, the steps they
    /// come after, in plan order.
    pub fn run(&self, phases: &[Phase], prerequisites: bool) -> anyhow::Result<Outcome> {
        interrupt::install()?;
        let _lock = lock_set(&self.layout, &self.plan.set, true)?;
        let wanted = if prerequisites {
            self.with_prerequisites(phases)
        } else {
            self.plan
                .steps_in(phases)
                .map(|step| step.id.clone())
                .collect()
        };
        let steps: Vec<&Step> = self
            .plan
            .steps
            .iter()
            .filter(|step| wanted.contains(&step.id))
            .collect();
        let mut outcome = Outcome::default();
        // A stamp value per step: the fetched sha256 for fetches, the fingerprint otherwise.
        let mut values: BTreeMap<String, String> = BTreeMap::new();

        let sources: Vec<&crate::plan::Fetch> = steps
            .iter()
            .filter_map(|step| match &step.action {
                Action::Fetch(fetch) => Some(fetch),
                _ => None,
            })
            .collect();
        if !sources.is_empty() {
            let started = Instant::now();
            let fetched_all =
                fetch::fetch_all(&sources, &Cache::new(self.layout.downloads()), &self.fetch)?;
            *outcome.seconds.entry(Phase::Fetch).or_default() += started.elapsed().as_secs_f64();
            for fetched in fetched_all {
                let step = steps
                    .iter()
                    .find(|step| matches!(&step.action, Action::Fetch(f) if f.file == fetched.file))
                    .expect("every fetched file has its step");
                values.insert(step.id.clone(), fetched.sha256.clone());
                outcome.fetched.insert(step.id.clone(), fetched);
            }
        }

        let stamps = self.layout.stamps(&self.plan.set);
        let marker = Self::stage_incomplete_marker(&self.layout, &self.plan.set);
        let work: Vec<&Step> = steps
            .iter()
            .copied()
            .filter(|step| !matches!(step.action, Action::Fetch(_)))
            .collect();
        // Fingerprints depend only on the plan and the sources' hashes: all known
        // up front. Steps this run does not include count with their stamps on disk.
        for step in &work {
            for id in &step.after {
                if !values.contains_key(id) {
                    if let Ok(text) = fs::read_to_string(stamps.join(id)) {
                        values.insert(id.clone(), text.trim().to_owned());
                    }
                }
            }
            let fingerprint = fingerprint(step, &values);
            values.insert(step.id.clone(), fingerprint);
        }
        let fresh_trees = trees_to_unpack_afresh(&work, &values, &stamps);
        let mut building = false;
        for step in work {
            interrupt::check()?;
            if building && step.phase != Phase::Build {
                // Every build step is done, in this run or an earlier one: the
                // stage is whole again before anything packages it.
                let _ = fs::remove_file(&marker);
                building = false;
            }
            building |= step.phase == Phase::Build;
            let fingerprint = values[&step.id].clone();
            let stamp = stamps.join(&step.id);
            let inputs_ran = step.after.iter().any(|id| outcome.ran.contains(id))
                || fresh_trees.contains(&step.id);
            // Installing into the prefix is never skipped: the prefix is not ours to trust.
            let stamped = step.phase != Phase::Install
                && fs::read_to_string(&stamp).is_ok_and(|text| text.trim() == fingerprint);
            if stamped && !inputs_ran && !self.force && self.outputs_present(step) {
                eprintln!("{:>12} {}", "Fresh", describe(step));
                outcome.fresh.push(step.id.clone());
                continue;
            }
            // Remove the stamp first: if this run dies, the step is redone.
            let _ = fs::remove_file(&stamp);
            let step_started = Instant::now();
            if step.phase == Phase::Build {
                write_atomically(&marker, b"a build is in progress or was interrupted\n")?;
            }
            match &step.action {
                Action::Unpack(unpack) => {
                    let fetched = outcome
                        .fetched
                        .get(&format!("{}-fetch", unpack.component))
                        .with_context(|| {
                            format!(
                                "unpacking {} needs its fetch step in the same run",
                                unpack.component
                            )
                        })?;
                    eprintln!(
                        "{:>12} {} {}",
                        "Unpacking", unpack.component, unpack.version
                    );
                    let expect = Expect {
                        tree: unpack.tree.as_deref(),
                        max_bytes: unpack.max_unpacked,
                    };
                    if let Err(error) =
                        archive::unpack(&fetched.path, unpack.archive, &unpack.dest, &expect)
                    {
                        if error.chain().any(|cause| cause.is::<TreeMismatch>()) {
                            // The cache vouched for bytes that do not make the pinned tree.
                            Cache::new(self.layout.downloads())
                                .evict(&fetched.sha256, &fetched.file);
                        }
                        return Err(error);
                    }
                    eprintln!(
                        "{:>12} unpack {} in {:.1}s",
                        "Finished",
                        unpack.component,
                        step_started.elapsed().as_secs_f64()
                    );
                }
                Action::Run(run) => {
                    if let Some(dir) = run.fresh_dir.as_ref().filter(|dir| dir.exists()) {
                        fs::remove_dir_all(dir)
                            .with_context(|| format!("cannot remove {}", dir.display()))?;
                    }
                    if run.installs {
                        // Taken after the stage was emptied: what the step installs
                        // into a fresh stage is everything in it afterwards.
                        let before = stage_files(&self.plan.stage);
                        self.run_command(step, run)?;
                        let added: Vec<String> = stage_files(&self.plan.stage)
                            .difference(&before)
                            .cloned()
                            .collect();
                        write_atomically(
                            &installed_files_path(&stamps, &step.id),
                            (added.join("\n") + "\n").as_bytes(),
                        )?;
                    } else {
                        self.run_command(step, run)?;
                    }
                }
                Action::Fetch(_) => unreachable!("fetches ran above"),
                Action::Package(package) => {
                    let artifacts = crate::package::make_packages(self.plan, &[package])?;
                    let list: Vec<String> = artifacts
                        .iter()
                        .map(|path| path.display().to_string())
                        .collect();
                    write_atomically(
                        &artifacts_path(&stamps, &step.id),
                        (list.join("\n") + "\n").as_bytes(),
                    )?;
                }
                Action::Smoke(_) => bail!(
                    "step `{}` is not run by the executor: use `cargo xtask smoke`",
                    step.id
                ),
                Action::PrepareInstall(prepare) => {
                    eprintln!(
                        "{:>12} {} into {} (owner root:{})",
                        "Preparing",
                        prepare.from.display(),
                        prepare.prefix,
                        prepare.group
                    );
                    install::prepare(prepare)?;
                }
            }
            write_atomically(&stamp, fingerprint.as_bytes())?;
            outcome.ran.push(step.id.clone());
            *outcome.seconds.entry(step.phase).or_default() += step_started.elapsed().as_secs_f64();
        }
        if building {
            let _ = fs::remove_file(&marker);
        }
        Ok(outcome)
    }

    /// The ids of the steps in `phases` and, transitively, those they come after.
    fn with_prerequisites(&self, phases: &[Phase]) -> Vec<String> {
        let mut wanted: Vec<String> = self
            .plan
            .steps_in(phases)
            .map(|step| step.id.clone())
            .collect();
        let mut index = 0;
        while index < wanted.len() {
            let step = self
                .plan
                .steps
                .iter()
                .find(|step| step.id == wanted[index])
                .expect("ids are unique");
            for id in &step.after {
                if !wanted.contains(id) {
                    wanted.push(id.clone());
                }
            }
            index += 1;
        }
        wanted
    }

    /// A stamped step is only fresh if what it made is still there.
    fn outputs_present(&self, step: &Step) -> bool {
        match &step.action {
            Action::Unpack(unpack) => unpack.dest.is_dir(),
            Action::Run(run) => {
                run.cwd.is_dir()
                    && (step.phase != Phase::Build
                        || self.plan.stage.is_dir()
                        || run.fresh_dir.is_none())
            }
            Action::Package(_) => {
                let listed = fs::read_to_string(artifacts_path(
                    &self.layout.stamps(&self.plan.set),
                    &step.id,
                ));
                listed.is_ok_and(|list| list.lines().all(|artifact| Path::new(artifact).is_file()))
            }
            _ => true,
        }
    }

    fn run_command(&self, step: &Step, run: &Run) -> anyhow::Result<()> {
        let logs = self.set_dir().join("logs");
        fs::create_dir_all(&logs)?;
        let log_path = logs.join(format!("{}.log", step.id));
        let line = run.command_line();
        let (program, args) = line.split_first().context("empty command")?;
        let mut environment = environment(run);
        if !run.path_map.is_empty() {
            let wrappers = self.set_dir().join("compilers").join(&step.id);
            compiler_wrappers(&wrappers, run)?;
            let path = environment.get("PATH").cloned().unwrap_or_default();
            environment.insert("PATH".into(), format!("{}:{path}", wrappers.display()));
        }
        eprintln!("{:>12} {}", run.verb, run.subject);
        let started = Instant::now();
        let spinner = spinner(&run.verb, &run.subject);
        let mut log = fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        use std::io::Write;
        writeln!(log, "$ {}\n# cwd {}\n", quoted(&line), run.cwd.display())?;

        // `./configure` means the one in the step's directory, not in ours.
        // (duct reads a `PathBuf` as a relative path, so bare names stay strings.)
        let program = if program.contains('/') {
            run.cwd.join(program).into_os_string()
        } else {
            program.into()
        };
        // A command of its own process group can be stopped whole (make and
        // every compiler it started) when a signal asks the run to stop. An
        // escalated one stays in ours: sudo may have to ask for a password on
        // the terminal, and it relays signals to what it runs.
        let own_group = run.escalate.is_none();
        let mut expression = duct::cmd(&program, args)
            .dir(&run.cwd)
            .full_env(&environment)
            .stderr_to_stdout()
            .stdin_null()
            .unchecked();
        if own_group {
            expression = expression.before_spawn(|command| {
                std::os::unix::process::CommandExt::process_group(command, 0);
                Ok(())
            });
        }
        let handle = expression.reader().with_context(|| {
            format!("cannot start `{}` in {}", quoted(&line), run.cwd.display())
        })?;
        let pid = handle
            .pids()
            .first()
            .copied()
            .context("the command has no pid")?;
        let finished = AtomicBool::new(false);
        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let read = std::thread::scope(|scope| {
            scope.spawn(|| stop_on_interrupt(pid, own_group, &finished));
            let read = (|| -> anyhow::Result<()> {
                let mut reader = BufReader::new(&handle);
                let mut buffer = Vec::new();
                loop {
                    buffer.clear();
                    let read = reader
                        .read_until(b'\n', &mut buffer)
                        .context("cannot read the command's output")?;
                    if read == 0 {
                        return Ok(());
                    }
                    log.write_all(&buffer)?;
                    let text = String::from_utf8_lossy(&buffer).trim_end().to_owned();
                    spinner.set_message(format!(
                        "{} | {}",
                        run.subject,
                        text.chars().take(100).collect::<String>()
                    ));
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text);
                }
            })();
            finished.store(true, Ordering::SeqCst);
            read
        });
        if interrupt::requested() {
            spinner.finish_and_clear();
            let _ = handle.kill();
            writeln!(log, "\n# interrupted by a signal; the step is not stamped")?;
            return Err(anyhow::Error::new(interrupt::Interrupted)
                .context(format!("step `{}` stopped", step.id)));
        }
        read?;
        let output = handle.try_wait()?.context("the command did not finish")?;
        spinner.finish_and_clear();
        let status = output.status;
        writeln!(
            log,
            "\n# {status} after {:.1}s",
            started.elapsed().as_secs_f64()
        )?;
        if !status.success() {
            let tail: Vec<String> = tail.into_iter().collect();
            bail!(
                "step `{}` failed: {status}\n  command: {}\n  cwd:     {}\n  last {} lines of output:\n    {}\n  full log: {}",
                step.id,
                quoted(&line),
                run.cwd.display(),
                tail.len(),
                tail.join("\n    "),
                log_path.display()
            );
        }
        eprintln!(
            "{:>12} {} in {:.1}s",
            "Finished",
            step.id,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// Once a signal asks the run to stop, stop the command: SIGTERM to its
/// process group, then SIGKILL if it is still there after a grace period.
fn stop_on_interrupt(pid: u32, own_group: bool, finished: &AtomicBool) {
    const GRACE: Duration = Duration::from_secs(3);
    let target = if own_group { -(pid as i32) } else { pid as i32 };
    while !finished.load(Ordering::SeqCst) {
        if interrupt::requested() {
            // SAFETY: signals the process (group) this run started.
            unsafe { libc::kill(target, libc::SIGTERM) };
            let deadline = Instant::now() + GRACE;
            while !finished.load(Ordering::SeqCst) {
                if Instant::now() >= deadline {
                    // SAFETY: as above.
                    unsafe { libc::kill(target, libc::SIGKILL) };
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Unpack steps whose tree must be replaced before anything is built in it:
/// a step in that tree finished once with other inputs. Make would take the
/// old objects as up to date (a changed flag is no newer than an object), so
/// a changed input rebuilds from a fresh tree. A step that never finished (a
/// killed run) instead resumes in the tree as it is.
fn trees_to_unpack_afresh(
    steps: &[&Step],
    values: &BTreeMap<String, String>,
    stamps: &Path,
) -> Vec<String> {
    let trees: Vec<(&str, &Path)> = steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Unpack(unpack) => Some((step.id.as_str(), unpack.dest.as_path())),
            _ => None,
        })
        .collect();
    let mut afresh = Vec::new();
    for step in steps {
        let Action::Run(run) = &step.action else {
            continue;
        };
        let changed = fs::read_to_string(stamps.join(&step.id))
            .is_ok_and(|text| text.trim() != values[&step.id]);
        if !changed {
            continue;
        }
        if let Some((unpack_id, _)) = trees.iter().find(|(_, tree)| run.cwd.starts_with(tree)) {
            if !afresh.iter().any(|id| id == unpack_id) {
                afresh.push(unpack_id.to_string());
            }
        }
    }
    afresh
}

/// The environment a command runs with: the kept variables, ccache and the
/// step's own variables.
fn environment(run: &Run) -> BTreeMap<String, String> {
    let mut environment: BTreeMap<String, String> = std::env::vars()
        .filter(|(name, _)| KEPT_ENVIRONMENT.contains(&name.as_str()))
        .collect();
    environment.insert("LC_ALL".into(), "C".into());
    let path = environment
        .entry("PATH".into())
        .or_insert_with(|| "/usr/bin:/bin".into());
    // With path maps, the compiler wrappers call ccache themselves.
    if let Some(dir) = run.ccache_dir.as_ref().filter(|_| run.path_map.is_empty()) {
        *path = format!("{}:{path}", dir.display());
    }
    for var in &run.env {
        let value = match (var.prepend, environment.get(&var.name)) {
            (true, Some(inherited)) => format!("{}:{inherited}", var.value),
            _ => var.value.clone(),
        };
        environment.insert(var.name.clone(), value);
    }
    environment
}

/// Scripts named like the C compilers that run the real compiler with the
/// step's path maps, through ccache when the step uses it. They call ccache
/// by name rather than through its masquerade directory, which would find the
/// wrapper again as "the next cc" on `PATH` and loop.
fn compiler_wrappers(dir: &Path, run: &Run) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let flags: Vec<String> = run
        .path_map
        .iter()
        .map(|map| crate::plan::shell_quote(&format!("-ffile-prefix-map={}={}", map.from, map.to)))
        .collect();
    let ccache = run
        .ccache_dir
        .as_ref()
        .and_then(|_| which::which("ccache").ok());
    for name in ["cc", "gcc", "clang"] {
        // The compiler itself, not a ccache masquerade link that may be on PATH.
        let real = which::which_all(name).ok().and_then(|mut all| {
            all.find(|path| fs::canonicalize(path).is_ok_and(|target| !target.ends_with("ccache")))
        });
        let Some(real) = real else { continue };
        let mut line = vec!["exec".to_owned()];
        line.extend(
            ccache
                .iter()
                .map(|ccache| crate::plan::shell_quote(&ccache.display().to_string())),
        );
        line.push(crate::plan::shell_quote(&real.display().to_string()));
        line.extend(flags.iter().cloned());
        line.push("\"$@\"".to_owned());
        let script = format!(
            "#!/bin/sh\n# bdr-dist: keep build paths out of what the compiler writes.\n{}\n",
            line.join(" ")
        );
        let wrapper = dir.join(name);
        fs::write(&wrapper, script)?;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// The sha256 of the running bdr-dist executable.
fn tool_identity() -> &'static str {
    static IDENTITY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| files::sha256_file(&exe).ok())
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())
    })
}

/// Hash of a step's inputs. `-jN` and ccache do not change what a step makes.
pub fn fingerprint(step: &Step, values: &BTreeMap<String, String>) -> String {
    let mut step = step.clone();
    if let Action::Run(run) = &mut step.action {
        run.jobs = None;
        run.ccache_dir = None;
    }
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&step).expect("steps serialize"));
    if let Action::Package(_) = &step.action {
        // What a package step makes is decided by this tool's code, not only
        // by the plan: a new bdr-dist repackages (seconds), it does not rebuild.
        hasher.update(tool_identity().as_bytes());
    }
    for id in &step.after {
        hasher.update(id.as_bytes());
        hasher.update(values.get(id).map(String::as_str).unwrap_or("-").as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn describe(step: &Step) -> String {
    match &step.action {
        Action::Run(run) => format!("{} ({})", run.subject, step.id),
        Action::Unpack(unpack) => format!("{} {} (unpacked)", unpack.component, unpack.version),
        _ => step.id.clone(),
    }
}

fn quoted(line: &[String]) -> String {
    line.iter()
        .map(|arg| crate::plan::shell_quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// On a terminal: the step, its elapsed time and its last line of output.
fn spinner(verb: &str, subject: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{prefix:>12} [{elapsed}] {wide_msg}")
            .expect("valid template"),
    );
    bar.set_prefix(verb.to_owned());
    bar.set_message(subject.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A lock on one set's work directory, held while a run uses it: exclusive
/// for runs that write (fetch, build, package, install), shared for smoke
/// clusters, which only read the stage. Released when dropped.
pub fn lock_set(layout: &Layout, set: &str, exclusive: bool) -> anyhow::Result<files::FileLock> {
    crate::input::recipe::check_set_name(set)?;
    files::lock(
        &layout.set_dir(set).join(".lock"),
        exclusive,
        &format!("waiting for another bdr-dist run on set {set}"),
    )
}

/// Where the list of artifacts a package step wrote is kept.
pub fn artifacts_path(stamps: &Path, step: &str) -> PathBuf {
    stamps.join(format!("{step}.artifacts"))
}

/// Where the list of files an install step added to the stage is kept.
pub fn installed_files_path(stamps: &Path, step: &str) -> PathBuf {
    stamps.join(format!("{step}.files"))
}

/// Files and symlinks under the stage, relative to it.
pub fn stage_files(stage: &Path) -> std::collections::BTreeSet<String> {
    let mut files = std::collections::BTreeSet::new();
    let mut pending = vec![stage.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(_) => {
                    if let Ok(relative) = path.strip_prefix(stage) {
                        files.insert(relative.display().to_string());
                    }
                }
                Err(_) => {}
            }
        }
    }
    files
}

/// Whether the stage of `set` is complete (no build is half-way through it).
pub fn require_complete_stage(layout: &Layout, set: &str, stage: &Path) -> anyhow::Result<()> {
    if Executor::stage_incomplete_marker(layout, set).exists() {
        bail!("the stage {} is half-written (a build was interrupted or failed): run `cargo xtask build --set {set}`", stage.display());
    }
    if !stage.is_dir() {
        bail!(
            "no stage at {}: run `cargo xtask build --set {set}` first",
            stage.display()
        );
    }
    Ok(())
}
