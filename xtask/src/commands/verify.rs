//! `cargo xtask verify DIR`: check a dist directory or a downloaded release
//! with each ecosystem's verifier, one line per file on stderr (or JSON on
//! stdout); exit status 1 when any check fails, 2 for bad input.

use anyhow::bail;

use crate::{
    flags,
    package::verify::{self, Outcome, Report},
    printable::printable,
};

impl flags::Verify {
    pub fn run(self) -> anyhow::Result<()> {
        let report = verify::verify(
            &self.dir,
            self.keyring.as_deref(),
            self.signify_pub.as_deref(),
        )?;
        print_lines(&report);
        if self.json {
            super::print_json(&report)?;
        }
        let failures = report.failures();
        if failures > 0 {
            bail!(
                "{failures} check(s) failed in {}: see the FAILED lines above",
                self.dir.display()
            );
        }
        if report.signed {
            eprintln!(
                "{:>12} every check passed in {}",
                "Verified",
                self.dir.display()
            );
        } else {
            eprintln!(
                "{:>12} every check passed in {}, but nothing in it is signed: see the note above",
                "Verified",
                self.dir.display()
            );
        }
        Ok(())
    }
}

fn print_lines(report: &Report) {
    for (keys, kind) in [(&report.gpg_keys, "gpg"), (&report.signify_keys, "signify")] {
        for key in keys {
            eprintln!("{:>12} {kind} key {}", "Using", key.path);
        }
    }
    let width = report
        .files
        .iter()
        .map(|file| file.name.len())
        .max()
        .unwrap_or(0)
        .min(70);
    for file in &report.files {
        let checks: Vec<String> = file
            .checks
            .iter()
            .map(|check| {
                let outcome = match check.outcome {
                    Outcome::Passed => "passed",
                    Outcome::Failed => "FAILED",
                    Outcome::NotSigned => "not signed",
                };
                match &check.detail {
                    Some(detail) => {
                        format!("{} {outcome} ({})", check.name, printable(detail, 300))
                    }
                    None => format!("{} {outcome}", check.name),
                }
            })
            .collect();
        eprintln!(
            "{:<width$}  {}",
            printable(&file.name, 200),
            checks.join(", ")
        );
    }
    for name in &report.skipped {
        eprintln!(
            "{:<width$}  skipped (not an artifact)",
            printable(name, 200)
        );
    }
    for note in &report.notes {
        eprintln!("note: {}", printable(note, 600));
    }
}
