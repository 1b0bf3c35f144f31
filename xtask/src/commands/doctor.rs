//! `cargo xtask doctor`: check the host's prerequisites for a set and platform,
//! one line each, and say (or, with `--fix`, run) what installs the gaps.

use anyhow::bail;

use crate::{
    flags, host,
    input::platform::{PackageFormat, Platform},
    prerequisites::{self, Gaps, Needs},
};

impl flags::Doctor {
    pub fn run(self) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        let platform = &selection.platform;
        let formats = self
            .format
            .clone()
            .unwrap_or_else(|| platform.package_formats.clone());
        let needs = if self.tests {
            Needs::new(&formats, &crate::input::platform::Purpose::ALL)
        } else {
            Needs::all_but_tests(&formats)
        };
        eprintln!(
            "doctor: set {} on {} (formats {})",
            selection.set.name,
            platform.name,
            formats
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        examine_and_fix(platform, &needs, self.run_as.as_deref(), self.fix)
    }
}

/// Check every prerequisite `needs` asks for and, when root, the smoke user
/// (`run_as`, or the platform's), a line each; with `fix`, install what is
/// missing and check again.
pub fn examine_and_fix(
    platform: &Platform,
    needs: &Needs,
    run_as: Option<&str>,
    fix: bool,
) -> anyhow::Result<()> {
    let manager = prerequisites::package_manager(platform);
    eprintln!(
        "doctor: package manager {}",
        manager.map_or("none found", |m| m.name.as_str())
    );
    let gaps = examine(platform, needs, run_as);
    let fixes = prerequisites::fixes(platform, manager, &gaps);
    if gaps.is_empty() {
        eprintln!("doctor: everything is in place");
        return Ok(());
    }
    if !fix {
        for fix in &fixes {
            eprintln!("  to fix:  {}", fix.join(" "));
        }
        bail!(
            "{} prerequisite(s) missing; run the commands above, or `cargo xtask doctor --fix`",
            gaps.names.len() + usize::from(gaps.user.is_some())
        );
    }
    if !gaps.unfixable.is_empty() {
        bail!(
            "no package is known on this host for: {}; install them by hand",
            gaps.unfixable.join(", ")
        );
    }
    prerequisites::run_fixes(&fixes)?;
    if !examine(platform, needs, run_as).is_empty() {
        bail!("prerequisites still missing after --fix: see the lines above");
    }
    eprintln!("doctor: everything is in place");
    Ok(())
}

/// A line per prerequisite, and the smoke user when root.
fn examine(platform: &Platform, needs: &Needs, run_as: Option<&str>) -> Gaps {
    let manager = prerequisites::package_manager(platform);
    let checks = prerequisites::check(platform, needs, manager);
    for check in &checks {
        let purpose = check.purpose.as_str();
        match (&check.found, &check.package) {
            (Some(found), _) => eprintln!("  ok       {purpose:<6} {}: {found}", check.name),
            (None, Some(package)) => eprintln!(
                "  missing  {purpose:<6} {}: {} (package {package})",
                check.name,
                check.missing.join(", ")
            ),
            (None, None) => eprintln!(
                "  missing  {purpose:<6} {}: {}, and no package is known for this host: install it by hand",
                check.name,
                check.missing.join(", ")
            ),
        }
    }
    let mut gaps = Gaps::of(&checks);
    if host::is_root() {
        let user = run_as.unwrap_or(&platform.smoke_user);
        if prerequisites::user_exists(user) {
            eprintln!("  ok       smoke  {user} (smoke servers never run as root)");
        } else {
            eprintln!(
                "  missing  smoke  {user}: initdb refuses root; smoke clusters run as this throwaway user"
            );
            gaps.user = Some(user.to_owned());
        }
    }
    gaps
}

/// The formats whose tools `test` installs: those this host can make.
pub const TEST_FORMATS: [PackageFormat; 4] = [
    PackageFormat::Rpm,
    PackageFormat::Tarball,
    PackageFormat::Deb,
    PackageFormat::Dsc,
];
