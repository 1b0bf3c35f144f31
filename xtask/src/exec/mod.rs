//! The executor: the only code that runs a plan's steps.
//!
//! Each step is stamped with a hash of its inputs ([`stamps`]). A step whose
//! stamp matches, and none of whose inputs ran in this run, is skipped. A
//! stamp is written only after its step succeeded, so a killed run resumes
//! from the step that did not finish. Every command's output goes to its own
//! log file. The smoke cluster and the install are steps like the others,
//! but never skipped: a cluster proves the build each time, and the prefix is
//! not ours to trust.

mod command;
pub mod install;
pub mod schedule;
pub mod stamps;
mod wrappers;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
    time::Instant,
};

use anyhow::{bail, Context};
use schedule::Schedule;

use crate::{
    files::{self, write_atomically},
    input::{located::invalid, platform::PackageFormat},
    interrupt,
    layout::Layout,
    package,
    plan::{Action, Package, Phase, Plan, Run, Smoke, Step, StepId, Unpack},
    smoke::{self, SmokeRun},
    sources::{
        archive::{self, Expect, TreeMismatch},
        fetch::{self, Cache, FetchOptions, Fetched},
    },
};

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
    pub ran: Vec<StepId>,
    pub fresh: Vec<StepId>,
    pub fetched: BTreeMap<StepId, Fetched>,
    /// What the smoke step found, when it ran.
    pub smoke: Option<SmokeRun>,
    /// Wall time spent in each phase's steps.
    pub seconds: BTreeMap<Phase, f64>,
}

impl Outcome {
    /// How many steps of `phase` ran, and how many were fresh.
    pub fn counts(&self, plan: &Plan, phase: Phase) -> (usize, usize) {
        let in_phase = |id: &&StepId| plan.step(id).is_some_and(|step| step.phase == phase);
        (
            self.ran.iter().filter(in_phase).count(),
            self.fresh.iter().filter(in_phase).count(),
        )
    }
}

impl Executor<'_> {
    fn set(&self) -> &str {
        &self.plan.set
    }

    /// Run the steps of `phases` and, with `prerequisites`, the steps they
    /// come after, in plan order.
    pub fn run(&self, phases: &[Phase], prerequisites: bool) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::default();
        self.run_into(phases, prerequisites, &mut outcome)?;
        Ok(outcome)
    }

    /// [`run`](Self::run), recording into `outcome` as it goes, so that a
    /// caller still has what happened before a failure.
    pub fn run_into(
        &self,
        phases: &[Phase],
        prerequisites: bool,
        outcome: &mut Outcome,
    ) -> anyhow::Result<()> {
        interrupt::install()?;
        let steps = self.select(phases, prerequisites);
        // A smoke cluster only reads the stage: smoke runs share the set.
        let writes = steps.iter().any(|step| step.phase != Phase::Smoke);
        let _lock = lock_set(&self.layout, self.set(), writes)?;
        let values = self.fetch_sources(&steps, outcome)?;
        let work: Vec<&Step> = steps
            .into_iter()
            .filter(|step| !matches!(step.action, Action::Fetch(_)))
            .collect();
        let values = self.fingerprints(&work, values);
        let fresh_trees = stamps::trees_to_unpack_afresh(&work, &values, &self.layout, self.set());
        let fetched = outcome.fetched.clone();
        let mut schedule = Schedule::new(&work);
        let mut times = PhaseTimes::new(outcome);
        let mut building = false;
        let mut failed: Option<anyhow::Error> = None;
        thread::scope(|scope| {
            let (report, reports) = mpsc::channel::<(usize, anyhow::Result<()>, Instant)>();
            loop {
                while failed.is_none() {
                    if let Err(error) = interrupt::check() {
                        failed = Some(error);
                        break;
                    }
                    let Some(index) = schedule.start_next() else {
                        break;
                    };
                    let step = work[index];
                    building |= step.phase == Phase::Build;
                    let fingerprint = &values[&step.id];
                    let inputs_ran = step.after.iter().any(|id| outcome.ran.contains(id))
                        || fresh_trees.contains(&step.id);
                    if !inputs_ran && !self.force && self.is_fresh(step, fingerprint) {
                        command::status("Fresh", &describe(step));
                        outcome.fresh.push(step.id.clone());
                        schedule.finished(index);
                        continue;
                    }
                    // Remove the stamp first: if this run dies, the step is redone.
                    let _ = fs::remove_file(self.layout.stamp(self.set(), &step.id));
                    if step.phase == Phase::Build {
                        let marker = self.layout.stage_incomplete(self.set());
                        let note = b"a build is in progress or was interrupted\n";
                        if let Err(error) = write_atomically(&marker, note) {
                            schedule.stopped(index);
                            failed = Some(error);
                            break;
                        }
                    }
                    if !Schedule::side_by_side(step) {
                        // Every build step is done (the schedule waits for
                        // them): the stage is whole before anything uses it.
                        let started = Instant::now();
                        let result = if std::mem::take(&mut building) {
                            self.stage_is_whole()
                        } else {
                            Ok(())
                        }
                        .and_then(|()| self.run_step(step, outcome));
                        times.add(step.phase, started, outcome);
                        match self.record(step, fingerprint, result, outcome) {
                            Ok(()) => schedule.finished(index),
                            Err(error) => {
                                schedule.stopped(index);
                                failed = Some(error);
                            }
                        }
                        continue;
                    }
                    let report = report.clone();
                    let fetched = &fetched;
                    scope.spawn(move || {
                        let started = Instant::now();
                        // A panic must still report, or the loop would wait forever.
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            self.run_side_by_side(step, fetched)
                        }))
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("step `{}` panicked", step.id)));
                        let _ = report.send((index, result, started));
                    });
                }
                if !schedule.running() {
                    break;
                }
                // A failure starts nothing more; what runs finishes (and is
                // stamped), so that the next run redoes only what failed.
                let (index, result, started) = reports.recv().expect("running steps report");
                let step = work[index];
                times.add(step.phase, started, outcome);
                match self.record(step, &values[&step.id], result, outcome) {
                    Ok(()) => schedule.finished(index),
                    Err(error) => {
                        schedule.stopped(index);
                        // The first failure is the one reported.
                        failed.get_or_insert(error);
                    }
                }
            }
        });
        if let Some(error) = failed {
            return Err(error);
        }
        if let Some(waiting) = schedule.waiting() {
            bail!(
                "step `{}` never started: a step it comes after is not before it in the plan",
                work[waiting].id
            );
        }
        if building {
            self.stage_is_whole()?;
        }
        Ok(())
    }

    /// A step that ran: stamped (unless it runs every time) once it
    /// succeeded.
    fn record(
        &self,
        step: &Step,
        fingerprint: &str,
        result: anyhow::Result<()>,
        outcome: &mut Outcome,
    ) -> anyhow::Result<()> {
        result?;
        if !always_runs(step) {
            write_atomically(
                &self.layout.stamp(self.set(), &step.id),
                fingerprint.as_bytes(),
            )?;
        }
        outcome.ran.push(step.id.clone());
        Ok(())
    }

    /// An unpack or a build command, on a thread of its own.
    fn run_side_by_side(
        &self,
        step: &Step,
        fetched: &BTreeMap<StepId, Fetched>,
    ) -> anyhow::Result<()> {
        match &step.action {
            Action::Unpack(unpack) => self.unpack(unpack, fetched),
            Action::Run(run) => self.run_command(step, run),
            _ => unreachable!("only unpacks and commands run side by side"),
        }
    }

    /// Every build step is done: the stage is no longer half-written, and it
    /// records the platform it was built for, which packaging checks.
    fn stage_is_whole(&self) -> anyhow::Result<()> {
        let _ = fs::remove_file(self.layout.stage_incomplete(self.set()));
        let record = format!("{} {}\n", self.plan.platform, self.plan.os);
        let path = self.layout.stage_platform(self.set());
        if fs::read_to_string(&path).ok().as_deref() != Some(record.as_str()) {
            write_atomically(&path, record.as_bytes())?;
        }
        Ok(())
    }

    /// The steps of `phases` and, with `prerequisites`, transitively those
    /// they come after, in plan order.
    fn select(&self, phases: &[Phase], prerequisites: bool) -> Vec<&Step> {
        let mut wanted: Vec<&StepId> = self.plan.steps_in(phases).map(|step| &step.id).collect();
        let mut index = 0;
        while prerequisites && index < wanted.len() {
            let step = self.plan.step(wanted[index]).expect("ids are unique");
            for id in &step.after {
                if !wanted.contains(&id) {
                    wanted.push(id);
                }
            }
            index += 1;
        }
        self.plan
            .steps
            .iter()
            .filter(|step| wanted.contains(&&step.id))
            .collect()
    }

    /// Fetch every source among `steps` at once; returns each fetch step's
    /// stamp value, the sha256 of what it fetched.
    fn fetch_sources(
        &self,
        steps: &[&Step],
        outcome: &mut Outcome,
    ) -> anyhow::Result<BTreeMap<StepId, String>> {
        let fetches: Vec<(&StepId, &crate::plan::Fetch)> = steps
            .iter()
            .filter_map(|step| match &step.action {
                Action::Fetch(fetch) => Some((&step.id, fetch)),
                _ => None,
            })
            .collect();
        let mut values = BTreeMap::new();
        if fetches.is_empty() {
            return Ok(values);
        }
        let started = Instant::now();
        let sources: Vec<&crate::plan::Fetch> = fetches.iter().map(|(_, fetch)| *fetch).collect();
        let fetched_all = fetch::fetch_all(&sources, &self.cache(), &self.fetch)?;
        *outcome.seconds.entry(Phase::Fetch).or_default() += started.elapsed().as_secs_f64();
        for ((id, _), fetched) in fetches.into_iter().zip(fetched_all) {
            values.insert(id.clone(), fetched.sha256.clone());
            outcome.fetched.insert(id.clone(), fetched);
        }
        Ok(values)
    }

    /// Every step's fingerprint. They depend only on the plan, this host's
    /// compilers and the sources' hashes: all known up front. Steps this run
    /// does not include count with their stamps on disk.
    fn fingerprints(
        &self,
        work: &[&Step],
        mut values: BTreeMap<StepId, String>,
    ) -> BTreeMap<StepId, String> {
        for step in work {
            for id in &step.after {
                if !values.contains_key(id) {
                    if let Some(stamp) = stamps::read(&self.layout, self.set(), id) {
                        values.insert(id.clone(), stamp);
                    }
                }
            }
            let fingerprint = stamps::fingerprint_here(step, &values);
            values.insert(step.id.clone(), fingerprint);
        }
        values
    }

    /// Stamped with these inputs, and what it made is still there.
    fn is_fresh(&self, step: &Step, fingerprint: &str) -> bool {
        if always_runs(step) {
            return false;
        }
        let stamped = stamps::read(&self.layout, self.set(), &step.id)
            .is_some_and(|stamp| stamp == fingerprint);
        stamped && self.outputs_present(step)
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
            Action::Package(_) => fs::read_to_string(self.layout.artifacts(self.set(), &step.id))
                .is_ok_and(|list| list.lines().all(|artifact| Path::new(artifact).is_file())),
            _ => true,
        }
    }

    fn run_step(&self, step: &Step, outcome: &mut Outcome) -> anyhow::Result<()> {
        match &step.action {
            Action::Fetch(_) => unreachable!("fetches ran first"),
            Action::Unpack(unpack) => self.unpack(unpack, &outcome.fetched),
            Action::Run(run) => self.run_command(step, run),
            Action::Package(package) => self.package(step, package),
            Action::Smoke(smoke) => {
                outcome.smoke = Some(self.smoke(smoke)?);
                Ok(())
            }
            Action::Install(install) => {
                require_complete_stage(&self.layout, self.set(), &self.plan.stage)?;
                install::run(install, &self.layout, self.set())
            }
        }
    }

    fn cache(&self) -> Cache {
        Cache::new(self.layout.downloads().dir)
    }

    fn unpack(&self, unpack: &Unpack, fetched: &BTreeMap<StepId, Fetched>) -> anyhow::Result<()> {
        let started = Instant::now();
        let fetched = fetched
            .get(&StepId::fetch(&unpack.component))
            .with_context(|| {
                format!(
                    "unpacking {} needs its fetch step in the same run",
                    unpack.component
                )
            })?;
        command::status(
            "Unpacking",
            &format!("{} {}", unpack.component, unpack.version),
        );
        let expect = Expect {
            tree: unpack.tree.as_deref(),
            max_bytes: unpack.max_unpacked,
        };
        if let Err(error) = archive::unpack(&fetched.path, unpack.archive, &unpack.dest, &expect) {
            if error.chain().any(|cause| cause.is::<TreeMismatch>()) {
                // The cache vouched for bytes that do not make the pinned tree.
                self.cache().evict(&fetched.sha256, &fetched.file);
            }
            return Err(error);
        }
        for patch in &unpack.patches {
            self.apply_patch(unpack, patch)?;
        }
        command::status(
            "Finished",
            &format!(
                "unpack {} in {:.1}s",
                unpack.component,
                started.elapsed().as_secs_f64()
            ),
        );
        Ok(())
    }

    /// `patch -p1` of one of the recipe's patches, on the tree just
    /// unpacked: its bytes are checked against the sha256 read when the
    /// recipe was loaded (the unpack's stamp hashes it), and a hunk that
    /// does not apply fails the unpack, which is then not stamped.
    fn apply_patch(
        &self,
        unpack: &Unpack,
        patch: &crate::input::recipe::PatchFile,
    ) -> anyhow::Result<()> {
        let sha256 = crate::files::sha256_file(&patch.path)?;
        if sha256 != patch.sha256 {
            bail!(
                "{} changed since the recipe was loaded (sha256 {sha256}, not {})",
                patch.path.display(),
                patch.sha256
            );
        }
        command::status(
            "Patching",
            &format!("{} with {}", unpack.component, patch.name),
        );
        crate::process::Command::new("patch")
            .args(crate::plan::PATCH_ARGS)
            .arg(&patch.path)
            .cwd(&unpack.dest)
            .checked_output()
            .with_context(|| {
                format!("{} does not apply to {}", patch.name, unpack.dest.display())
            })?;
        Ok(())
    }

    fn run_command(&self, step: &Step, run: &Run) -> anyhow::Result<()> {
        if let Some(dir) = run.fresh_dir.as_ref().filter(|dir| dir.exists()) {
            fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        if !run.installs {
            return command::run(&self.layout, self.set(), &step.id, run);
        }
        // Taken after the stage was emptied: what the step installs into a
        // fresh stage is everything in it afterwards.
        let before = stage_files(&self.plan.stage);
        command::run(&self.layout, self.set(), &step.id, run)?;
        let added: Vec<String> = stage_files(&self.plan.stage)
            .difference(&before)
            .cloned()
            .collect();
        write_atomically(
            &self.layout.installed_files(self.set(), &step.id),
            (added.join("\n") + "\n").as_bytes(),
        )
    }

    fn package(&self, step: &Step, package: &Package) -> anyhow::Result<()> {
        require_complete_stage(&self.layout, self.set(), &self.plan.stage)?;
        require_stage_of(&self.layout, self.set(), package.format)?;
        let installed = package
            .parts
            .iter()
            .map(|part| {
                let path = self.layout.installed_files(self.set(), &part.step);
                let list = fs::read_to_string(&path).with_context(|| {
                    format!(
                        "no record of the files step `{}` installed ({}): run `cargo xtask build --force`",
                        part.step,
                        path.display()
                    )
                })?;
                Ok((part.step.clone(), list.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()))
            })
            .collect::<anyhow::Result<BTreeMap<StepId, Vec<String>>>>()?;
        // The record of an earlier run goes first, like the stamp: if this
        // run fails (and withdraws its packages), none names files that are gone.
        let record = self.layout.artifacts(self.set(), &step.id);
        if record.exists() {
            fs::remove_file(&record)
                .with_context(|| format!("cannot remove {}", record.display()))?;
        }
        let artifacts = package::make(self.plan, package, &installed, &self.layout)?;
        let list: Vec<String> = artifacts
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        write_atomically(&record, (list.join("\n") + "\n").as_bytes())
    }

    fn smoke(&self, smoke: &Smoke) -> anyhow::Result<SmokeRun> {
        require_complete_stage(&self.layout, self.set(), &self.plan.stage)?;
        let tarball = match smoke.from {
            crate::plan::SmokeFrom::Stage => None,
            crate::plan::SmokeFrom::Tarball => Some(self.binary_tarball()?),
        };
        let template = self.layout.set_dir(self.set()).join("smoke-template");
        let set_dir = self.layout.set_dir(self.set());
        let proof = match &smoke.target {
            Some(_) => self.debs()?.map(|(package, files)| {
                (
                    self.layout
                        .roots(&self.plan.target.as_ref().expect("a target").name)
                        .join("base.tar"),
                    smoke::proof::Debs {
                        package,
                        files,
                        set_dir: &set_dir,
                    },
                )
            }),
            None => None,
        };
        smoke::run(
            smoke,
            self.set(),
            tarball.as_deref(),
            Some(&template),
            proof,
        )
    }

    /// The .debs the last deb package step made, and that step's package.
    fn debs(&self) -> anyhow::Result<Option<(&Package, Vec<PathBuf>)>> {
        let Some(package) = self.plan.steps.iter().find_map(|step| match &step.action {
            Action::Package(package) if package.format == PackageFormat::Deb => {
                Some(package.as_ref())
            }
            _ => None,
        }) else {
            return Ok(None);
        };
        let list = fs::read_to_string(
            self.layout
                .artifacts(self.set(), StepId::package(PackageFormat::Deb)),
        )
        .unwrap_or_default();
        let files: Vec<PathBuf> = list
            .lines()
            .map(PathBuf::from)
            .filter(|path| path.extension().is_some_and(|ext| ext == "deb") && path.is_file())
            .collect();
        Ok((!files.is_empty()).then_some((package, files)))
    }

    /// The binary tarball that the last tarball package step made.
    fn binary_tarball(&self) -> anyhow::Result<PathBuf> {
        let list = fs::read_to_string(
            self.layout
                .artifacts(self.set(), StepId::package(PackageFormat::Tarball)),
        )
        .unwrap_or_default();
        list.lines()
            .map(PathBuf::from)
            .find(|path| path.to_string_lossy().ends_with(".tar.gz") && path.is_file())
            .with_context(|| {
                format!(
                    "no binary tarball of set {0}: run `cargo xtask package --set {0} --format tarball`",
                    self.set()
                )
            })
    }
}

/// Each phase's wall time: from its first step's start to its last step's
/// end (steps side by side count once), on top of what was counted before
/// (the downloads).
struct PhaseTimes {
    before: BTreeMap<Phase, f64>,
    spans: BTreeMap<Phase, (Instant, Instant)>,
}

impl PhaseTimes {
    fn new(outcome: &Outcome) -> PhaseTimes {
        PhaseTimes {
            before: outcome.seconds.clone(),
            spans: BTreeMap::new(),
        }
    }

    /// A step of `phase` that started at `started` has just ended.
    fn add(&mut self, phase: Phase, started: Instant, outcome: &mut Outcome) {
        let now = Instant::now();
        let span = self.spans.entry(phase).or_insert((started, now));
        span.0 = span.0.min(started);
        span.1 = now;
        let before = self.before.get(&phase).copied().unwrap_or_default();
        outcome
            .seconds
            .insert(phase, before + (span.1 - span.0).as_secs_f64());
    }
}

/// Steps that run every time: a cluster proves the build anew, and the
/// prefix is not ours to trust.
fn always_runs(step: &Step) -> bool {
    matches!(step.phase, Phase::Smoke | Phase::Install)
}

fn describe(step: &Step) -> String {
    match &step.action {
        Action::Run(run) => format!("{} ({})", run.subject, step.id),
        Action::Unpack(unpack) => format!("{} {} (unpacked)", unpack.component, unpack.version),
        _ => step.id.to_string(),
    }
}

/// Lock one set's work directory for this run: exclusive for runs that
/// write, shared for smoke clusters, which only read the stage. Released when
/// dropped.
pub fn lock_set(layout: &Layout, set: &str, exclusive: bool) -> anyhow::Result<files::FileLock> {
    crate::input::recipe::check_set_name(set)?;
    files::lock(
        &layout.set_lock(set),
        exclusive,
        &format!("waiting for another bdr-dist run on set {set}"),
    )
}

/// Files and symlinks under the stage, relative to it.
pub fn stage_files(stage: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
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

/// Refuses to pack a stage into a format of another operating system: an
/// "OpenBSD package" of Linux binaries installs nowhere.
fn require_stage_of(layout: &Layout, set: &str, format: PackageFormat) -> anyhow::Result<()> {
    let Some(wanted) = format.native_os() else {
        return Ok(());
    };
    let path = layout.stage_platform(set);
    let record = fs::read_to_string(&path).unwrap_or_default();
    let Some((platform, os)) = record.trim().split_once(' ') else {
        return Err(invalid(format!(
            "the stage of `{set}` records no platform ({} is missing): run `cargo xtask build --set {set}`",
            path.display()
        )));
    };
    if os != wanted {
        let built_for = if platform == os {
            format!("`{platform}`")
        } else {
            format!("`{platform}` ({os})")
        };
        return Err(invalid(format!(
            "cannot make {format} packages from the stage of `{set}`: it was built for {built_for}, \
             and {format} packages carry {wanted} binaries; build the set on {wanted}"
        )));
    }
    Ok(())
}

/// Whether the stage of `set` is complete (no build is half-way through it).
pub fn require_complete_stage(layout: &Layout, set: &str, stage: &Path) -> anyhow::Result<()> {
    if layout.stage_incomplete(set).exists() {
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
