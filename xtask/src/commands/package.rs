//! `cargo xtask package`: the packages of a finished stage, in the formats
//! asked for.

use super::Session;
use crate::{exec, flags, plan::Phase};

impl flags::Package {
    pub fn run(self) -> anyhow::Result<()> {
        let session = Session::open(&self.set)?;
        let out = match &self.out {
            Some(dir) => Some(std::path::absolute(dir)?),
            None => None,
        };
        let plan = session.plan(|options| {
            options.formats = self.format.clone();
            options.release = self.release.clone();
            options.dist_dir = out;
            self.publish.apply(options);
            self.rpm_dist.apply(options);
        });
        exec::require_complete_stage(&session.layout, &plan.set, &plan.stage)?;
        session.prepare_host(&plan, &[Phase::Package], &self.setup)?;
        crate::package::sign::check_plan(&plan)?;
        session
            .executor(&plan, self.force, Default::default())
            .run(&[Phase::Package], false)?;
        Ok(())
    }
}
