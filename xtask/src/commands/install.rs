//! `cargo xtask install`: the one command that escalates. It checks the
//! prefix, writes a root-owned archive of the finished stage, and has root
//! extract it.

use super::Session;
use crate::{exec, flags, plan::Phase};

impl flags::Install {
    pub fn run(self) -> anyhow::Result<()> {
        let session = Session::open(&self.set)?;
        if let Some(target) = &session.selection.target {
            return Err(crate::input::located::invalid(format!(
                "target {0}'s packages are for a {1} machine, not this one: install its .debs there \
                 (`cargo xtask dist --target {0}` proves them in a fresh {1} root)",
                target.name, target.description
            )));
        }
        let plan = session.plan(|options| options.install_prefix = self.prefix.clone());
        exec::require_complete_stage(&session.layout, &plan.set, &plan.stage)?;
        session
            .executor(&plan, false, Default::default())
            .run(&[Phase::Install], false)?;
        Ok(())
    }
}
