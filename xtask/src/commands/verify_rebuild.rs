//! `cargo xtask verify-rebuild`: the release's SRPM rebuilt from scratch by
//! rpmbuild, its `.dsc` by sbuild in a fresh root of its target's release,
//! and a line per binary RPM and .deb saying whether the rebuild made the
//! same bytes.

use anyhow::bail;

use crate::{
    flags, host,
    input::{
        located::invalid,
        platform::{PackageFormat, Purpose},
    },
    package::{rpm::rebuild, sbuild},
    prerequisites::{self, Needs},
    roots,
};

impl flags::VerifyRebuild {
    pub fn run(self) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        let layout = host::layout_of(&selection);
        let dist = match &self.dir {
            Some(dir) => std::path::absolute(dir)?,
            None => layout.dist(&selection.set.name),
        };
        let names: Vec<String> = std::fs::read_dir(&dist)
            .map_err(|error| invalid(format!("cannot read {}: {error}", dist.display())))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        let has_srpm = names.iter().any(|name| name.ends_with(".src.rpm"));
        let has_dsc = names.iter().any(|name| name.ends_with(".dsc"));
        if !has_srpm && !has_dsc {
            return Err(invalid(format!(
                "no .src.rpm or .dsc in {}: make them with `cargo xtask package --format rpm` or `--format dsc`",
                dist.display()
            )));
        }
        let rpm = has_srpm
            .then(|| self.rebuild_srpm(&selection, &layout, &dist))
            .transpose()?;
        let deb = match (has_dsc, &selection.target) {
            (false, _) => None,
            (true, Some(target)) => Some(self.rebuild_dsc(&selection, &layout, target, &dist)?),
            (true, None) => {
                return Err(invalid(format!(
                    "{} holds a .dsc: name the target it is for with --target (its .debs are rebuilt by sbuild in a fresh root of that release)",
                    dist.display()
                )))
            }
        };
        if self.json {
            let json = match (&rpm, &deb) {
                (Some(rpm), None) => serde_json::to_value(rpm)?,
                (None, Some(deb)) => serde_json::to_value(deb)?,
                _ => serde_json::json!({ "rpm": rpm, "dsc": deb }),
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        let mut different = Vec::new();
        if let Some(rpm) = &rpm {
            let count = rpm.artifacts.iter().filter(|v| !v.identical).count();
            if count > 0 {
                different.push(format!(
                    "{count} of {} binary RPMs differ from what their SRPM rebuilds into",
                    rpm.artifacts.len()
                ));
            }
        }
        if let Some(deb) = &deb {
            let count = deb.artifacts.iter().filter(|v| !v.identical).count();
            if count > 0 {
                different.push(format!(
                    "{count} of {} .debs differ from what their .dsc rebuilds into{}",
                    deb.artifacts.len(),
                    deb.diffoscope
                        .as_ref()
                        .map(|report| format!(" (diffoscope: {})", report.display()))
                        .unwrap_or_default()
                ));
            }
        }
        if !different.is_empty() {
            bail!("{}", different.join("; "));
        }
        Ok(())
    }

    /// The SRPM rebuilt by rpmbuild in a fresh HOME and `_topdir`.
    fn rebuild_srpm(
        &self,
        selection: &host::Selection,
        layout: &crate::layout::Layout,
        dist: &std::path::Path,
    ) -> anyhow::Result<rebuild::Outcome> {
        // rpmbuild runs the SRPM's build: the compilers and the rpm tools.
        prerequisites::ensure(
            &selection.platform,
            &Needs::new(&[PackageFormat::Rpm], &[Purpose::Build, Purpose::Package]),
            None,
            !self.setup.no_install,
        )?;
        let srpm = rebuild::find_srpm(dist)?;
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
        let outcome = rebuild::rebuild(dist, &scratch, &log)?;
        report(&outcome.artifacts);
        if outcome.all_identical() {
            eprintln!(
                "{:>12} {} RPMs rebuilt byte-identical from {} in {:.0}s",
                "Verified",
                outcome.artifacts.len(),
                outcome.srpm.display(),
                outcome.seconds
            );
        } else {
            eprintln!("rpmbuild's log: {}", log.display());
        }
        Ok(outcome)
    }

    /// The .dsc rebuilt by sbuild in a fresh root of the target's release,
    /// at another build path.
    fn rebuild_dsc(
        &self,
        selection: &host::Selection,
        layout: &crate::layout::Layout,
        target: &crate::input::target::Target,
        dist: &std::path::Path,
    ) -> anyhow::Result<sbuild::Outcome> {
        prerequisites::ensure(
            &selection.platform,
            &Needs::new(&[PackageFormat::Deb], &[Purpose::Target]),
            None,
            !self.setup.no_install,
        )?;
        sbuild::ensure_subordinate_ids(!self.setup.no_install)?;
        let tarball = roots::base_tarball(layout, target)?.path;
        let dsc = sbuild::find_dsc(dist)?;
        let stem = dsc
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let scratch = layout.rebuild(&stem);
        let outcome = sbuild::rebuild(
            dist,
            &target.codename,
            &tarball,
            &scratch,
            &crate::package::machine(),
        )?;
        report(&outcome.artifacts);
        if outcome.artifacts.iter().all(|verdict| verdict.identical) {
            eprintln!(
                "{:>12} {} .debs rebuilt byte-identical from {} in {:.0}s",
                "Verified",
                outcome.artifacts.len(),
                outcome.dsc.display(),
                outcome.seconds
            );
        }
        eprintln!("sbuild's output: {}", scratch.display());
        Ok(outcome)
    }
}

/// A line per artifact: identical or how it differs.
fn report(verdicts: &[rebuild::Verdict]) {
    for verdict in verdicts {
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
}
