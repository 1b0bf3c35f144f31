//! `cargo xtask dist`: plan, then execute every phase (fetch, build, package,
//! smoke) in one executor run, doing only what is not already done, then
//! report what came out.
//!
//! The report (artifacts with size, sha256 and signature, `SHA256SUMS.asc`,
//! each smoke check, each phase's time) is printed as a table on stderr, as JSON on stdout with `--json`, and
//! always written to `target/sets/<set>/dist/report.json`. A failing phase
//! stops the run with its error; what earlier phases made stays for a re-run.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Context;
use serde::Serialize;

use super::{fetch::SourceReport, Session};
use crate::{
    exec::Outcome,
    files, flags,
    layout::Layout,
    package::sign::{self, Signature},
    plan::{Phase, Plan},
    smoke::{
        checks::{CheckResult, Status},
        proof::ProofCheck,
    },
};

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub set: String,
    pub platform: String,
    /// The distribution target; `None`: this host.
    pub target: Option<String>,
    /// What the target's packages were built in: its release, glibc and
    /// the build root's key, as the manifest records them.
    pub built_in: Option<crate::package::manifest::ManifestTarget>,
    pub ok: bool,
    /// The error that stopped the run, if one did.
    pub error: Option<String>,
    pub phases: Vec<PhaseReport>,
    /// Each source as this run had it: where from, and what it was checked to be.
    pub sources: Vec<SourceReport>,
    pub artifacts: Vec<Artifact>,
    /// `SHA256SUMS.asc`, the detached signature of the checksums, when the
    /// run signed them.
    pub checksums_signature: Option<SignatureFile>,
    /// The smoke run's checks, as `smoke --json` gives them.
    pub checks: Vec<CheckResult>,
    /// A target's packages proven in a fresh root of its release.
    pub proof: Vec<ProofCheck>,
}

/// `dist --target a,b,c`: a row per target, each run to its end.
#[derive(Debug, Serialize)]
pub struct Matrix {
    pub set: String,
    pub ok: bool,
    pub seconds: f64,
    pub targets: Vec<MatrixRow>,
}

#[derive(Debug, Serialize)]
pub struct MatrixRow {
    pub target: String,
    pub ok: bool,
    pub seconds: f64,
    pub build_seconds: f64,
    pub package_seconds: f64,
    pub smoke_seconds: f64,
    pub artifacts: usize,
    pub checks_passed: usize,
    pub checks_run: usize,
    pub proofs_passed: usize,
    pub proofs_run: usize,
    pub error: Option<String>,
    /// The target's own report.
    pub report: String,
}

#[derive(Debug, Serialize)]
pub struct SignatureFile {
    pub path: String,
    /// The signing key's full fingerprint.
    pub key: String,
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
pub struct Artifact {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub signed: bool,
    /// How it is signed (`rpm`, `signify`) and by which key (a GnuPG
    /// fingerprint, or `signify:<key number>`).
    pub signature: Option<Signature>,
}

impl flags::Dist {
    pub fn run(self) -> anyhow::Result<()> {
        if self.set.targets.len() == 1 {
            return self.run_one(true).1;
        }
        let started = Instant::now();
        let mut rows = Vec::new();
        // Bad input in any target stops before anything is built.
        for name in &self.set.targets {
            Session::open(&self.set.for_target(name))?;
        }
        for name in self.set.targets.clone() {
            eprintln!("\n{:>12} target {name}", "Dist");
            let mut one = self.clone();
            one.set = self.set.for_target(&name);
            let target_started = Instant::now();
            let (report, result) = one.run_one(false);
            let phase = |wanted: &str| {
                report.as_ref().map_or(0.0, |(report, _)| {
                    report
                        .phases
                        .iter()
                        .find(|phase| phase.name == wanted)
                        .map_or(0.0, |phase| phase.seconds)
                })
            };
            let row = MatrixRow {
                target: name.clone(),
                ok: result.is_ok(),
                seconds: target_started.elapsed().as_secs_f64(),
                build_seconds: phase("build"),
                package_seconds: phase("package"),
                smoke_seconds: phase("smoke"),
                artifacts: report.as_ref().map_or(0, |(r, _)| r.artifacts.len()),
                checks_passed: report.as_ref().map_or(0, |(r, _)| {
                    r.checks.iter().filter(|c| c.status == Status::Pass).count()
                }),
                checks_run: report.as_ref().map_or(0, |(r, _)| {
                    r.checks
                        .iter()
                        .filter(|c| matches!(c.status, Status::Pass | Status::Fail))
                        .count()
                }),
                proofs_passed: report
                    .as_ref()
                    .map_or(0, |(r, _)| r.proof.iter().filter(|p| p.passed).count()),
                proofs_run: report.as_ref().map_or(0, |(r, _)| r.proof.len()),
                error: result.as_ref().err().map(|error| format!("{error:#}")),
                report: report
                    .as_ref()
                    .map(|(_, path)| path.display().to_string())
                    .unwrap_or_default(),
            };
            rows.push(row);
        }
        let matrix = Matrix {
            set: self.set.set.clone(),
            ok: rows.iter().all(|row| row.ok),
            seconds: started.elapsed().as_secs_f64(),
            targets: rows,
        };
        let path = crate::host::layout().matrix_report(&self.set.set);
        let json = serde_json::to_string_pretty(&matrix)? + "\n";
        files::write_atomically(&path, json.as_bytes())?;
        print_matrix(&matrix, &path);
        if self.json {
            print!("{json}");
        }
        match matrix.targets.iter().filter(|row| !row.ok).count() {
            0 => Ok(()),
            failed => anyhow::bail!(
                "{failed} of {} targets failed (see the table above)",
                matrix.targets.len()
            ),
        }
    }

    /// One target's run: its report and where it was written (when the
    /// run got that far), and the result.
    fn run_one(self, print: bool) -> (Option<(Report, PathBuf)>, anyhow::Result<()>) {
        let json = self.json && print;
        let mut written = None;
        let result = self.run_writing(json, &mut written);
        (written, result)
    }

    fn run_writing(
        self,
        json: bool,
        written: &mut Option<(Report, PathBuf)>,
    ) -> anyhow::Result<()> {
        let session = Session::open(&self.set)?;
        let plan = session.plan(|options| {
            options.mirrors = self.mirror.mirrors.clone();
            options.formats = self.format.clone();
            self.publish.apply(options);
            self.rpm_dist.apply(options);
        });
        // Keys first: one that cannot sign is found before the build.
        crate::package::sign::check_plan(&plan)?;
        let mut report = Report {
            set: plan.set.clone(),
            platform: plan.platform.clone(),
            target: plan.target.as_ref().map(|target| target.name.clone()),
            ..Report::default()
        };
        let started = Instant::now();
        let mut outcome = Outcome::default();
        let result = session
            .prepare_host(&plan, &PHASES, &self.setup)
            .and_then(|()| {
                session
                    .executor(&plan, false, self.fetch.options())
                    .run_into(&PHASES, false, &mut outcome)
            })
            .and_then(
                |()| match outcome.smoke.as_ref().and_then(|run| run.failure()) {
                    Some(failure) => Err(anyhow::anyhow!("phase smoke failed: {failure}")),
                    None => Ok(()),
                },
            );
        fill(&mut report, &plan, &outcome, &session.layout)?;
        // After the run: its build root (and so its glibc and key) is made by then.
        report.built_in = plan
            .target
            .as_ref()
            .map(crate::package::manifest::ManifestTarget::of);
        report.ok = result.is_ok();
        report.error = result.as_ref().err().map(|error| format!("{error:#}"));
        let path = session.layout.report(&plan.set);
        let json_text = serde_json::to_string_pretty(&report)? + "\n";
        files::write_atomically(&path, json_text.as_bytes())?;
        print_summary(&report, started.elapsed().as_secs_f64(), &path);
        if json {
            print!("{json_text}");
        }
        *written = Some((report, path));
        result
    }
}

fn print_matrix(matrix: &Matrix, path: &Path) {
    eprintln!(
        "\nMatrix of set {} ({} targets, {:.1}s):",
        matrix.set,
        matrix.targets.len(),
        matrix.seconds
    );
    eprintln!(
        "  {:<12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7}  result",
        "target", "total", "build", "package", "smoke", "artifacts", "checks", "proofs"
    );
    for row in &matrix.targets {
        eprintln!(
            "  {:<12} {:>7.1}s {:>7.1}s {:>7.1}s {:>7.1}s {:>9} {:>7} {:>7}  {}",
            row.target,
            row.seconds,
            row.build_seconds,
            row.package_seconds,
            row.smoke_seconds,
            row.artifacts,
            format!("{}/{}", row.checks_passed, row.checks_run),
            format!("{}/{}", row.proofs_passed, row.proofs_run),
            match &row.error {
                None => "ok".to_owned(),
                Some(error) => format!("FAILED: {}", error.lines().next().unwrap_or_default()),
            }
        );
    }
    eprintln!("  report   {}", path.display());
}

/// Every phase of a set, in one executor run: a step that ran reruns every
/// step after it, across phases.
const PHASES: [Phase; 4] = [Phase::Fetch, Phase::Build, Phase::Package, Phase::Smoke];

/// The report of what the run did, as far as it got.
fn fill(
    report: &mut Report,
    plan: &Plan,
    outcome: &Outcome,
    layout: &Layout,
) -> anyhow::Result<()> {
    report.sources = outcome.fetched.values().map(SourceReport::from).collect();
    for phase in PHASES {
        let (ran, fresh) = outcome.counts(plan, phase);
        if ran + fresh == 0 {
            continue;
        }
        report.phases.push(PhaseReport {
            name: phase.as_str().to_owned(),
            seconds: outcome.seconds.get(&phase).copied().unwrap_or(0.0),
            // The smoke phase counts its checks.
            ran: match (phase, &outcome.smoke) {
                (Phase::Smoke, Some(run)) => run
                    .checks
                    .iter()
                    .filter(|c| matches!(c.status, Status::Pass | Status::Fail))
                    .count(),
                _ => ran,
            },
            fresh,
        });
    }
    let sums = fs::read_to_string(layout.dist(&plan.set).join("SHA256SUMS")).unwrap_or_default();
    let mut signatures: BTreeMap<PathBuf, Signature> = BTreeMap::new();
    for step in plan.steps_in(&[Phase::Package]) {
        if let Ok(text) = fs::read_to_string(layout.signatures(&plan.set, &step.id)) {
            signatures.extend(
                serde_json::from_str::<BTreeMap<PathBuf, Signature>>(&text).with_context(|| {
                    format!(
                        "cannot read {}",
                        layout.signatures(&plan.set, &step.id).display()
                    )
                })?,
            );
        }
    }
    let checksums_signature = layout.dist(&plan.set).join(sign::CHECKSUMS_SIGNATURE);
    if checksums_signature.is_file() {
        if let Some(signature) = signatures.get(&checksums_signature) {
            report.checksums_signature = Some(SignatureFile {
                path: checksums_signature.display().to_string(),
                key: signature.key.clone(),
            });
        }
    }
    for step in plan.steps_in(&[Phase::Package]) {
        let list = fs::read_to_string(layout.artifacts(&plan.set, &step.id)).unwrap_or_default();
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
            let signature = signatures.get(Path::new(path)).cloned();
            report.artifacts.push(Artifact {
                path: path.to_owned(),
                size,
                sha256,
                signed: signature.is_some(),
                signature,
            });
        }
    }
    if let Some(run) = &outcome.smoke {
        report.checks = run.checks.clone();
        report.proof = run.proof.clone();
    }
    Ok(())
}

fn print_summary(report: &Report, seconds: f64, path: &Path) {
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
            "  artifact {name:<58} {:>10}  {}{}",
            files::human_bytes(artifact.size),
            &artifact.sha256[..16],
            match &artifact.signature {
                Some(signature) => format!("  signed ({}) by {}", signature.kind, signature.key),
                None => String::new(),
            }
        );
    }
    if let Some(signature) = &report.checksums_signature {
        let name = Path::new(&signature.path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        eprintln!("  signed   {name:<58} SHA256SUMS, by {}", signature.key);
    }
    for check in &report.checks {
        let (status, time) = match check.status {
            Status::Pass => ("pass", format!(" ({:.2}s)", check.seconds)),
            Status::Fail => ("FAIL", format!(" ({:.2}s)", check.seconds)),
            Status::NotApplicable => ("n/a ", String::new()),
            Status::Skipped => ("skip", String::new()),
        };
        eprintln!(
            "  check    {status} {:<16} {}{time}",
            check.id.as_str(),
            check.name
        );
    }
    match &report.error {
        None => eprintln!("  result   ok; report in {}", path.display()),
        Some(error) => eprintln!(
            "  result   FAILED: {error}\n           report in {}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{
        input::{platform, platform::PackageFormat, recipe},
        plan::{PlanOptions, StepId},
    };

    /// The report says, per artifact, whether and by which key it is
    /// signed, and names SHA256SUMS.asc, from what the package steps recorded.
    #[test]
    fn the_report_shows_each_artifacts_signature_and_the_checksums_signature() {
        let root = crate::project_root();
        let target = crate::files::tempdir().unwrap();
        let platforms = platform::names(&root.join("platforms")).unwrap();
        let set = recipe::load(&root.join("recipes"), "pg15-pglogical", &platforms).unwrap();
        let linux = platform::load(&root.join("platforms"), "linux").unwrap();
        let options = PlanOptions {
            target_dir: target.path().to_path_buf(),
            jobs: 1,
            mirrors: Vec::new(),
            escalate: false,
            ccache_dir: None,
            install_prefix: None,
            formats: Some(vec![PackageFormat::Rpm, PackageFormat::Tarball]),
            nodes: 2,
            run_as: None,
            locked_sha256: BTreeMap::new(),
            smoke_from: crate::plan::SmokeFrom::Stage,
            smoke_keep: false,
            smoke_checks: crate::plan::checks::CheckId::ALL.to_vec(),
            smoke_network: Default::default(),
            smoke_tls: Default::default(),
            release: None,
            dist_dir: None,
            signing: None,
            repo: false,
            repo_url: None,
            target: None,
            rpm_dist: Default::default(),
        };
        let plan = crate::plan::plan(&set, &linux, &options);
        let layout = Layout::new(target.path());
        let dist = layout.dist(&plan.set);
        fs::create_dir_all(&dist).unwrap();
        let (rpm, tarball) = (dist.join("a-1.x86_64.rpm"), dist.join("a-1.tar.gz"));
        fs::write(&rpm, "rpm").unwrap();
        fs::write(&tarball, "tarball").unwrap();
        crate::package::write_checksums(&dist).unwrap();
        fs::write(dist.join(sign::CHECKSUMS_SIGNATURE), "signature").unwrap();
        let fingerprint = "82A3280A278E401C6A74D08F5FE00A2A26522F81";
        let signature = |kind: &str| Signature {
            kind: kind.into(),
            key: fingerprint.into(),
        };
        for (format, artifact, signatures) in [
            (
                PackageFormat::Rpm,
                &rpm,
                BTreeMap::from([
                    (rpm.clone(), signature("rpm")),
                    (dist.join(sign::CHECKSUMS_SIGNATURE), signature("detached")),
                ]),
            ),
            (PackageFormat::Tarball, &tarball, BTreeMap::new()),
        ] {
            let step = StepId::package(format);
            files::write_atomically(
                &layout.artifacts(&plan.set, &step),
                format!("{}\n", artifact.display()).as_bytes(),
            )
            .unwrap();
            files::write_atomically(
                &layout.signatures(&plan.set, &step),
                serde_json::to_string(&signatures).unwrap().as_bytes(),
            )
            .unwrap();
        }
        let mut report = Report::default();
        fill(&mut report, &plan, &Outcome::default(), &layout).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        let artifacts = json["artifacts"].as_array().unwrap();
        assert_eq!(artifacts.len(), 2, "{json}");
        let by_name = |suffix: &str| {
            artifacts
                .iter()
                .find(|artifact| artifact["path"].as_str().unwrap().ends_with(suffix))
                .unwrap()
                .clone()
        };
        assert_eq!(by_name(".rpm")["signed"], true);
        assert_eq!(by_name(".rpm")["signature"]["kind"], "rpm");
        assert_eq!(by_name(".rpm")["signature"]["key"], fingerprint);
        assert_eq!(by_name(".tar.gz")["signed"], false);
        assert!(by_name(".tar.gz")["signature"].is_null());
        assert_eq!(json["checksums_signature"]["key"], fingerprint);
        assert!(json["checksums_signature"]["path"]
            .as_str()
            .unwrap()
            .ends_with("/SHA256SUMS.asc"));
    }
}
