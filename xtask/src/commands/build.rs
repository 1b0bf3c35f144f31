//! `cargo xtask build`: configure, compile and stage-install every component,
//! doing only what its stamps say is not done.

use std::time::Instant;

use serde::Serialize;

use super::{print_json, Session};
use crate::{
    flags,
    input::{located::invalid, platform},
    plan::{Phase, StepId},
};

/// What `--json` prints.
#[derive(Debug, Serialize)]
pub struct BuildReport {
    pub set: String,
    pub ran: Vec<StepId>,
    pub fresh: Vec<StepId>,
    pub seconds: f64,
    pub stage: std::path::PathBuf,
}

impl flags::Build {
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let session = Session::open(&self.set)?;
        let platform = &session.selection.platform;
        if platform.os != platform::host_name() {
            return Err(invalid(format!(
                "cannot build for {0} on {1}: use `cargo xtask plan --platform {0}` to see what it would run",
                platform.name,
                platform::host_name(),
            )));
        }
        let plan = session.plan(|options| {
            options.mirrors = self.mirror.mirrors.clone();
            if let Some(jobs) = self.jobs {
                options.jobs = jobs;
            }
            if self.no_ccache {
                options.ccache_dir = None;
            }
        });
        session.prepare_host(&plan, &[Phase::Build], &self.setup)?;
        let outcome = session
            .executor(&plan, self.force, self.fetch.options())
            .run(&[Phase::Build], true)?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "{:>12} build of set {} in {seconds:.1}s: {} step(s) ran, {} fresh; stage at {}",
            "Finished",
            plan.set,
            outcome.ran.len(),
            outcome.fresh.len(),
            plan.stage.display()
        );
        if self.json {
            print_json(&BuildReport {
                set: plan.set.clone(),
                ran: outcome.ran,
                fresh: outcome.fresh,
                seconds,
                stage: plan.stage.clone(),
            })?;
        }
        Ok(())
    }
}
