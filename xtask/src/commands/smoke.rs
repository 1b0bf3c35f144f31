//! `cargo xtask smoke`: a cluster of real nodes from the stage (or the
//! binary tarball), every check timed, torn down unless `--keep`.

use anyhow::bail;

use super::{print_json, Session};
use crate::{exec, flags, input::located::invalid, plan::Phase};

impl flags::Smoke {
    pub fn run(self) -> anyhow::Result<()> {
        let session = Session::open(&self.set)?;
        if self.run_as.is_some() && !session.facts.is_root {
            return Err(invalid(
                "--run-as needs root: without it the servers run as you",
            ));
        }
        let platform = &session.selection.platform;
        if self.run_as.as_ref() == Some(&platform.service_user) {
            return Err(invalid(format!(
                "--run-as {}: never the service user, which owns real data on a database host; \
                 smoke clusters run as a throwaway user (`cargo xtask doctor --fix` creates {})",
                platform.service_user, platform.smoke_user
            )));
        }
        let plan = session.plan(|options| {
            options.nodes = self.nodes;
            if let Some(user) = &self.run_as {
                options.run_as = Some(user.clone());
            }
            options.smoke_from = self.from;
            options.smoke_keep = self.keep;
        });
        exec::require_complete_stage(&session.layout, &plan.set, &plan.stage)?;
        let outcome = session
            .executor(&plan, false, Default::default())
            .run(&[Phase::Smoke], false)?;
        let run = outcome.smoke.expect("the smoke step ran");
        if self.json {
            print_json(&run)?;
        }
        if let Some(failed) = run.first_failure() {
            bail!("smoke check `{}` failed: {}", failed.name, failed.detail);
        }
        Ok(())
    }
}
