//! `cargo xtask lint`: the set's packages judged by rpmlint and lintian, as
//! a distribution's review would; fails on any error the filter files in
//! `packaging/` do not suppress with a reason.

use anyhow::bail;

use crate::{
    flags, host,
    input::platform::{PackageFormat, Purpose},
    package::lint,
    prerequisites::{self, Needs},
};

impl flags::Lint {
    pub fn run(self) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        prerequisites::ensure(
            &selection.platform,
            &Needs::new(&[PackageFormat::Rpm, PackageFormat::Deb], &[Purpose::Lint]),
            None,
            !self.setup.no_install,
        )?;
        let dist = host::layout_of(&selection).dist(&selection.set.name);
        let reports = lint::lint_dist(&dist, &crate::project_root().join("packaging"))?;
        for report in &reports {
            eprint!("{}", lint::describe(report));
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&reports)?);
        }
        let errors: usize = reports.iter().map(|r| r.errors).sum();
        if errors > 0 {
            bail!("{errors} lint error(s): a distribution's review would refuse these packages");
        }
        Ok(())
    }
}
