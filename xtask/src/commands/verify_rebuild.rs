//! `cargo xtask verify-rebuild`: the release's SRPM rebuilt from scratch,
//! and a line per binary RPM saying whether the rebuild made the same bytes.

use anyhow::bail;

use crate::{
    flags, host,
    input::platform::{PackageFormat, Purpose},
    package::rpm::rebuild,
    prerequisites::{self, Needs},
};

impl flags::VerifyRebuild {
    pub fn run(self) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        let layout = host::layout_of(&selection);
        // rpmbuild runs the SRPM's build: the compilers and the rpm tools.
        prerequisites::ensure(
            &selection.platform,
            &Needs::new(&[PackageFormat::Rpm], &[Purpose::Build, Purpose::Package]),
            None,
            !self.setup.no_install,
        )?;
        let dist = match &self.dir {
            Some(dir) => std::path::absolute(dir)?,
            None => layout.dist(&selection.set.name),
        };
        let srpm = rebuild::find_srpm(&dist)?;
        if host::is_root() {
            eprintln!(
                "warning: rpmbuild will run the SRPM's %prep, %build and %install as root: \
                 for a release you did not make, check it with `cargo xtask verify` first, \
                 or rebuild as an unprivileged user (build farms do)"
            );
        }
        let stem = srpm
            .file_name()
            .map(|name| {
                name.to_string_lossy()
                    .trim_end_matches(".src.rpm")
                    .to_owned()
            })
            .unwrap_or_default();
        let scratch = layout.rebuild(&stem);
        let log = layout.rebuild_log(&stem);
        let outcome = rebuild::rebuild(&dist, &scratch, &log)?;
        for verdict in &outcome.artifacts {
            let status = match (verdict.identical, verdict.signed) {
                (true, false) => "identical".to_owned(),
                (true, true) => "identical (but for the shipped file's signature)".to_owned(),
                (false, _) => format!(
                    "DIFFERENT: {}",
                    verdict.difference.as_deref().unwrap_or("?")
                ),
            };
            eprintln!("{:>12} {}: {status}", "Rebuilt", verdict.name);
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        }
        let different = outcome.artifacts.iter().filter(|v| !v.identical).count();
        if different > 0 {
            bail!(
                "{different} of {} binary RPMs differ from what their SRPM rebuilds into (rpmbuild log: {})",
                outcome.artifacts.len(),
                log.display()
            );
        }
        eprintln!(
            "{:>12} {} RPMs rebuilt byte-identical from {} in {:.0}s",
            "Verified",
            outcome.artifacts.len(),
            outcome.srpm.display(),
            outcome.seconds
        );
        Ok(())
    }
}
