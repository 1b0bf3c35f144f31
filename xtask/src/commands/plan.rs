//! `cargo xtask plan`: print every step a full run would take, and run nothing.

use super::Session;
use crate::flags;

impl flags::PlanFlags {
    pub fn run(self) -> anyhow::Result<()> {
        let session = Session::open(&self.set)?;
        let plan = session.plan(|options| {
            options.mirrors = self.mirror.mirrors.clone();
            if let Some(jobs) = self.jobs {
                options.jobs = jobs;
            }
            options.formats = self.format.clone();
            options.install_prefix = self.prefix.clone();
            options.nodes = self.nodes;
            self.rpm_dist.apply(options);
        });
        if self.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print!("{plan}");
        }
        Ok(())
    }
}
