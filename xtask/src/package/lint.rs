//! The packages judged by the distributions' own linters: `rpmlint` for the
//! RPMs, `lintian` for the .debs, each through a filter file in
//! `packaging/` in which every suppressed tag carries its reason.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::process::Command;

/// What one linter said of a set of packages.
#[derive(Debug, Clone, Serialize)]
pub struct LintReport {
    pub tool: String,
    pub packages: usize,
    pub errors: usize,
    pub warnings: usize,
    /// `E: tag` or `W: tag`, and how many times it was reported.
    pub tags: BTreeMap<String, usize>,
    /// The lines that carried errors, for the reader to act on.
    pub error_lines: Vec<String>,
}

/// rpmlint over `packages`, with `packaging/rpmlint.toml`.
pub fn rpmlint(packages: &[PathBuf], packaging: &Path) -> anyhow::Result<LintReport> {
    let output = Command::new("rpmlint")
        .arg("--config")
        .arg(packaging.join("rpmlint.toml"))
        .args(packages)
        .output()?;
    // rpmlint exits 64 or 66 when it found errors; other failures say nothing on stdout.
    let text = String::from_utf8_lossy(&output.stdout);
    if !text.contains("packages and") {
        bail!(
            "rpmlint did not finish: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(parse("rpmlint", packages.len(), &text))
}

/// lintian over `packages`, with `packaging/lintian.suppress`.
pub fn lintian(packages: &[PathBuf], packaging: &Path) -> anyhow::Result<LintReport> {
    let output = Command::new("lintian")
        .arg("--suppress-tags-from-file")
        .arg(packaging.join("lintian.suppress"))
        .args(["--tag-display-limit", "0"])
        .args(packages)
        .output()?;
    // lintian exits 2 when it found errors, 1 when it could not run.
    if !matches!(output.status.code(), Some(0 | 2)) {
        bail!(
            "lintian failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(parse(
        "lintian",
        packages.len(),
        &String::from_utf8_lossy(&output.stdout),
    ))
}

/// Counts the tags of either linter's lines:
/// rpmlint `pkg.arch: E: tag details`, lintian `E: pkg: tag details`.
pub fn parse(tool: &str, packages: usize, text: &str) -> LintReport {
    let mut report = LintReport {
        tool: tool.to_owned(),
        packages,
        errors: 0,
        warnings: 0,
        tags: BTreeMap::new(),
        error_lines: Vec::new(),
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let found = words
            .windows(2)
            .take(3)
            .find(|pair| matches!(pair[0], "E:" | "W:"));
        let Some([severity, rest]) = found.map(|pair| [pair[0], pair[1]]) else {
            continue;
        };
        // lintian puts the package between the severity and the tag, and
        // `source:` after it for a source package (`W: pkg source: tag`).
        let rest = match words.iter().position(|w| *w == rest) {
            Some(i) if !rest.ends_with(':') && words.get(i + 1) == Some(&"source:") => "source:",
            _ => rest,
        };
        let tag = if rest.ends_with(':') {
            let after = words.iter().position(|w| *w == rest).map(|i| i + 1);
            match after.and_then(|i| words.get(i)) {
                Some(tag) => *tag,
                None => continue,
            }
        } else {
            rest
        };
        *report.tags.entry(format!("{severity} {tag}")).or_default() += 1;
        if severity == "E:" {
            report.errors += 1;
            report.error_lines.push(line.to_owned());
        } else {
            report.warnings += 1;
        }
    }
    report
}

/// The report as people read it: totals, then each tag by count.
pub fn describe(report: &LintReport) -> String {
    let mut text = format!(
        "{} on {} package(s): {} error(s), {} warning(s)\n",
        report.tool, report.packages, report.errors, report.warnings
    );
    let mut tags: Vec<(&String, &usize)> = report.tags.iter().collect();
    tags.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (tag, count) in tags {
        text.push_str(&format!("  {count:>5} {tag}\n"));
    }
    for line in &report.error_lines {
        text.push_str(&format!("  {line}\n"));
    }
    text
}

/// The linter that judges `path`, by its extension.
pub fn linted_by(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".rpm") {
        Some("rpmlint")
    } else if name.ends_with(".deb") || name.ends_with(".dsc") {
        Some("lintian")
    } else {
        None
    }
}

/// Both linters over the packages in `dist` that each judges.
pub fn lint_dist(dist: &Path, packaging: &Path) -> anyhow::Result<Vec<LintReport>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dist)
        .with_context(|| {
            format!(
                "no packages at {}: run `cargo xtask package`",
                dist.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let of = |tool: &str| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|path| linted_by(path) == Some(tool))
            .cloned()
            .collect()
    };
    let mut reports = Vec::new();
    let rpms = of("rpmlint");
    if !rpms.is_empty() {
        reports.push(rpmlint(&rpms, packaging)?);
    }
    let debs = of("lintian");
    if !debs.is_empty() {
        reports.push(lintian(&debs, packaging)?);
    }
    if reports.is_empty() {
        bail!(
            "no RPMs, .debs or .dsc in {}: run `cargo xtask package --format rpm,deb`",
            dist.display()
        );
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_linters_lines_are_counted_by_tag() {
        let rpmlint = "x-server.x86_64: E: zero-length /usr/a.sql\n\
                       x-server.x86_64: W: no-documentation\n\
                       x-libs.x86_64: E: zero-length /usr/b.sql\n\
                       2 packages and 0 specfiles checked; 2 errors, 1 warnings\n";
        let report = parse("rpmlint", 2, rpmlint);
        assert_eq!((report.errors, report.warnings), (2, 1));
        assert_eq!(report.tags["E: zero-length"], 2);
        let lintian =
            "E: x-libs: no-copyright-file\nW: x-server: file-in-unusual-dir [usr/x]\nN: note\n";
        let report = parse("lintian", 2, lintian);
        assert_eq!((report.errors, report.warnings), (1, 1));
        assert_eq!(report.tags["W: file-in-unusual-dir"], 1);
        assert_eq!(report.error_lines, ["E: x-libs: no-copyright-file"]);
        // A source package's lines name it with `source:`.
        let report = parse(
            "lintian",
            1,
            "W: x source: custom-compression-in-debian-rules dh_builddeb [debian/rules:41]\n",
        );
        assert_eq!(report.tags["W: custom-compression-in-debian-rules"], 1);
    }
}
