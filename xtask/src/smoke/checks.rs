//! Checks: each a name, a body that proves one property of the cluster, and
//! a timed pass or fail line. Later checks build on earlier ones, so the
//! first failure ends the run ([`ControlFlow::Break`]); an interruption is
//! an error.

use std::{ops::ControlFlow, time::Instant};

use serde::Serialize;

use crate::interrupt;

/// One check's result line.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    pub detail: String,
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
            "{:>12} {name} ({seconds:.2}s){}",
            if passed { "pass" } else { "FAIL" },
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        );
        self.results.push(CheckResult {
            name: name.to_owned(),
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

    pub fn all_passed(&self) -> bool {
        self.results.iter().all(|result| result.passed)
    }

    pub fn first_failure(&self) -> Option<&CheckResult> {
        self.results.iter().find(|result| !result.passed)
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
