//! Checks: each a name, a body that proves one property of the cluster, and
//! a timed pass or fail line. Later checks build on earlier ones, so the
//! first failure ends the run ([`ControlFlow::Break`]); an interruption is
//! an error. A check the driver cannot do is recorded as not applicable, and
//! one that would take a kept cluster apart as skipped: never as passed.

use std::{ops::ControlFlow, time::Instant};

use serde::Serialize;

use crate::{interrupt, plan::checks::CheckId};

/// One check's result line.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Its name for `--checks` (`ddl-lock`).
    pub id: CheckId,
    /// What it proves, as the pass/fail line says it.
    pub name: String,
    pub status: Status,
    /// `status` is `pass`.
    pub passed: bool,
    pub seconds: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    /// The driver cannot do it (pglogical has no global sequences).
    NotApplicable,
    /// Not run, and why is in the detail (`--keep`).
    Skipped,
}

/// The results so far, in order.
#[derive(Debug, Default)]
pub struct Checks {
    pub results: Vec<CheckResult>,
}

impl Checks {
    /// Run one named check, timing it and recording pass or fail. `Break`
    /// when it failed: the checks after it would only fail with it.
    pub fn run(
        &mut self,
        id: CheckId,
        name: &str,
        body: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<ControlFlow<()>> {
        let started = Instant::now();
        let outcome = body();
        let seconds = started.elapsed().as_secs_f64();
        interrupt::check()?;
        let (passed, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(error) => (false, format!("{error:#}")),
        };
        eprintln!(
            "{:>12} {id}: {name} ({seconds:.2}s){}",
            if passed { "pass" } else { "FAIL" },
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        );
        self.results.push(CheckResult {
            id,
            name: name.to_owned(),
            status: if passed { Status::Pass } else { Status::Fail },
            passed,
            seconds,
            detail,
        });
        Ok(if passed {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        })
    }

    /// Record a check that did not run: `status` says why, `detail` how.
    pub fn not_run(&mut self, id: CheckId, name: &str, status: Status, detail: &str) {
        eprintln!(
            "{:>12} {id}: {name}: {detail}",
            match status {
                Status::NotApplicable => "n/a",
                _ => "skip",
            }
        );
        self.results.push(CheckResult {
            id,
            name: name.to_owned(),
            status,
            passed: false,
            seconds: 0.0,
            detail: detail.to_owned(),
        });
    }

    pub fn all_passed(&self) -> bool {
        self.first_failure().is_none()
    }

    pub fn first_failure(&self) -> Option<&CheckResult> {
        self.results
            .iter()
            .find(|result| result.status == Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }
}

/// Return `Break` from the enclosing driver once a check failed: the
/// checks after it would only fail with it.
#[macro_export]
macro_rules! stop_on_failure {
    ($flow:expr) => {
        if $flow.is_break() {
            return Ok(std::ops::ControlFlow::Break(()));
        }
    };
}
