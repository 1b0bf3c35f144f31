//! `cargo xtask dist`: fetch, build, package and smoke for a set, doing only
//! what is not already done, and a report of what came out.
//!
//! The report (artifacts with size and sha256, each smoke check, each phase's
//! time) is printed as a table on stderr, as JSON on stdout with `--json`, and
//! always written to `target/sets/<set>/dist/report.json`. A failing phase
//! stops the run with its error; what earlier phases made stays for a re-run.

use std::{fs, path::Path, time::Instant};

use anyhow::Context;
use serde::Serialize;
use xshell::Shell;

use crate::{
    commands::doctor,
    exec::{self, Executor},
    files, flags, host,
    plan::{self, Action, Phase, Plan},
    smoke,
};

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub set: String,
    pub platform: String,
    pub ok: bool,
    /// The error that stopped the run, if one did.
    pub error: Option<String>,
    pub phases: Vec<PhaseReport>,
    /// Each source as this run had it: where from, and what it was checked to be.
    pub sources: Vec<SourceReport>,
    pub artifacts: Vec<Artifact>,
    pub checks: Vec<CheckReport>,
}

#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub seconds: f64,
    /// Steps that ran, and steps whose stamps said they were done.
    pub ran: usize,
    pub fresh: usize,
}

#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub file: String,
    /// The URL that served it (for a cached source, the one that first did).
    pub url: String,
    pub sha256: String,
    pub tree: Option<String>,
    pub from_cache: bool,
}

#[derive(Debug, Serialize)]
pub struct Artifact {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    pub detail: String,
}

impl flags::Dist {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        let facts = host::facts();
        let mut options = host::plan_options(&selection, &facts);
        options.mirrors = self.mirror.mirrors;
        options.formats = self.format;
        let plan = plan::plan(&selection.set, &selection.platform, &options);
        crate::interrupt::install()?;
        let mut report = Report {
            set: plan.set.clone(),
            platform: plan.platform.clone(),
            ..Report::default()
        };
        let started = Instant::now();
        let result = run_phases(
            &plan,
            &selection.platform,
            self.fetch.options(),
            &mut report,
        );
        report.ok = result.is_ok();
        report.error = result.as_ref().err().map(|error| format!("{error:#}"));
        let dist_dir = host::layout().dist(&plan.set);
        fs::create_dir_all(&dist_dir)?;
        let json = serde_json::to_string_pretty(&report)? + "\n";
        files::write_atomically(&dist_dir.join("report.json"), json.as_bytes())?;
        print_summary(&report, started.elapsed().as_secs_f64(), &dist_dir);
        if self.json {
            print!("{json}");
        }
        result
    }
}

fn run_phases(
    plan: &Plan,
    platform: &crate::input::platform::Platform,
    fetch: crate::sources::fetch::FetchOptions,
    report: &mut Report,
) -> anyhow::Result<()> {
    let layout = host::layout();
    let executor = Executor {
        plan,
        layout: layout.clone(),
        force: false,
        fetch,
    };
    // One executor run for fetch, build and package, so that a step that ran
    // reruns every step after it, across phases.
    doctor::require_build_prerequisites(platform).context("phase build failed")?;
    let phases = [Phase::Fetch, Phase::Build, Phase::Package];
    let outcome = executor.run(&phases, false);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return Err(error.context("dist failed before the smoke phase")),
    };
    for fetched in outcome.fetched.values() {
        report.sources.push(SourceReport {
            file: fetched.file.clone(),
            url: fetched.url.clone(),
            sha256: fetched.sha256.clone(),
            tree: fetched.tree.clone(),
            from_cache: fetched.from_cache,
        });
    }
    for phase in phases {
        let (ran, fresh) = outcome.counts(plan, phase);
        let seconds = outcome.seconds.get(&phase).copied().unwrap_or(0.0);
        report.phases.push(PhaseReport {
            name: phase.as_str().to_owned(),
            seconds,
            ran,
            fresh,
        });
    }

    let stamps = layout.stamps(&plan.set);
    let sums = fs::read_to_string(layout.dist(&plan.set).join("SHA256SUMS")).unwrap_or_default();
    for step in plan.steps_in(&[Phase::Package]) {
        let list = fs::read_to_string(exec::artifacts_path(&stamps, &step.id)).unwrap_or_default();
        for path in list.lines().filter(|line| !line.is_empty()) {
            let name = Path::new(path)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let sha256 = sums
                .lines()
                .find_map(|line| line.strip_suffix(&format!("  {name}")).map(str::to_owned))
                .map_or_else(|| files::sha256_file(Path::new(path)), Ok)?;
            let size = fs::metadata(path)
                .with_context(|| format!("artifact {path} is missing"))?
                .len();
            report.artifacts.push(Artifact {
                path: path.to_owned(),
                size,
                sha256,
            });
        }
    }

    let smoke_step = plan
        .steps_in(&[Phase::Smoke])
        .find_map(|step| match &step.action {
            Action::Smoke(smoke) => Some(smoke.clone()),
            _ => None,
        })
        .expect("every plan has a smoke step");
    let started = Instant::now();
    eprintln!("{:>12} phase smoke", "Starting");
    let results = smoke::run_smoke(&smoke_step, &plan.set, false)
        .context("phase smoke failed")?
        .results;
    report.phases.push(PhaseReport {
        name: "smoke".into(),
        seconds: started.elapsed().as_secs_f64(),
        ran: results.len(),
        fresh: 0,
    });
    for result in &results {
        report.checks.push(CheckReport {
            name: result.name.clone(),
            passed: result.passed,
            seconds: result.seconds,
            detail: result.detail.clone(),
        });
    }
    if let Some(failed) = results.iter().find(|result| !result.passed) {
        anyhow::bail!(
            "phase smoke failed: check `{}` failed: {}",
            failed.name,
            failed.detail
        );
    }
    Ok(())
}

fn print_summary(report: &Report, seconds: f64, dist: &Path) {
    eprintln!(
        "\nSummary of set {} on {} ({:.1}s):",
        report.set, report.platform, seconds
    );
    for phase in &report.phases {
        eprintln!(
            "  phase    {:<8} {:>7.1}s  ({} ran, {} fresh)",
            phase.name, phase.seconds, phase.ran, phase.fresh
        );
    }
    for source in &report.sources {
        eprintln!(
            "  source   {:<58} sha256 {}{}",
            source.file,
            &source.sha256[..16],
            source
                .tree
                .as_ref()
                .map(|tree| format!(", tree {}", &tree[..16]))
                .unwrap_or_default()
        );
    }
    for artifact in &report.artifacts {
        let name = Path::new(&artifact.path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        eprintln!(
            "  artifact {name:<58} {:>10}  {}",
            files::human_bytes(artifact.size),
            &artifact.sha256[..16]
        );
    }
    for check in &report.checks {
        eprintln!(
            "  check    {} {} ({:.2}s)",
            if check.passed { "pass" } else { "FAIL" },
            check.name,
            check.seconds
        );
    }
    match &report.error {
        None => eprintln!(
            "  result   ok; report in {}",
            dist.join("report.json").display()
        ),
        Some(error) => eprintln!(
            "  result   FAILED: {error}\n           report in {}",
            dist.join("report.json").display()
        ),
    }
}
