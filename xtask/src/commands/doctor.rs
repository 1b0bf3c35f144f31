//! `cargo xtask doctor`: check the host's prerequisites for a set and platform,
//! one line each, and say (or, with `--fix`, run) what installs the gaps.

use std::path::Path;

use anyhow::bail;

use crate::{
    flags,
    host::{self, Selection},
    input::platform::{PackageFormat, PackageManager, Platform},
    process::Command,
};

/// One check's outcome.
pub struct Check {
    pub name: String,
    /// Where it was found, or `None` when missing.
    pub found: Option<String>,
    /// Package that provides it with the chosen package manager.
    pub package: Option<String>,
}

/// What is needed on this host for `formats`, and whether each is present.
pub fn check_prerequisites(
    platform: &Platform,
    formats: &[PackageFormat],
    manager: Option<&PackageManager>,
) -> Vec<Check> {
    platform
        .prerequisites
        .iter()
        .filter(|prerequisite| {
            prerequisite
                .format
                .is_none_or(|format| formats.contains(&format))
        })
        .map(|prerequisite| {
            let found = match (&prerequisite.program, &prerequisite.header) {
                (Some(program), _) => find_program(program),
                (None, Some(header)) => platform
                    .header_dirs
                    .iter()
                    .map(|dir| Path::new(dir).join(header))
                    .find(|path| path.is_file())
                    .map(|path| path.display().to_string()),
                (None, None) => None,
            };
            let package =
                manager.and_then(|manager| prerequisite.packages.get(&manager.name).cloned());
            Check {
                name: prerequisite.name.clone(),
                found,
                package,
            }
        })
        .collect()
}

fn find_program(program: &str) -> Option<String> {
    if program.starts_with('/') {
        return Path::new(program).is_file().then(|| program.to_owned());
    }
    which::which(program)
        .ok()
        .map(|path| path.display().to_string())
}

/// The first of the platform's package managers present on this host.
pub fn package_manager(platform: &Platform) -> Option<&PackageManager> {
    platform
        .package_managers
        .iter()
        .find(|manager| find_program(&manager.program).is_some())
}

pub fn user_exists(user: &str) -> bool {
    Command::new("id")
        .args(["-u", user])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// The install command for `packages`, escalated when not root.
pub fn install_command(
    platform: &Platform,
    manager: &PackageManager,
    packages: &[String],
    is_root: bool,
) -> Vec<String> {
    let mut command = Vec::new();
    if !is_root {
        command.push(platform.escalate.clone());
    }
    command.extend(manager.install.iter().cloned());
    command.extend(packages.iter().cloned());
    command
}

pub fn create_user_command(platform: &Platform, user: &str, is_root: bool) -> Vec<String> {
    let mut command = Vec::new();
    if !is_root {
        command.push(platform.escalate.clone());
    }
    command.extend(
        platform
            .create_user
            .iter()
            .map(|arg| arg.replace("{user}", user)),
    );
    command
}

/// Fail before configure runs when a build prerequisite is missing, naming
/// the command that installs it.
pub fn require_build_prerequisites(platform: &Platform) -> anyhow::Result<()> {
    let manager = package_manager(platform);
    let missing: Vec<Check> = check_prerequisites(platform, &[], manager)
        .into_iter()
        .filter(|check| check.found.is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|check| check.name.as_str()).collect();
    let packages: Vec<String> = missing
        .iter()
        .filter_map(|check| check.package.clone())
        .collect();
    let hint = match manager {
        Some(manager) if !packages.is_empty() => {
            format!(
                "install with: {}",
                install_command(platform, manager, &packages, host::is_root()).join(" ")
            )
        }
        _ => "see `cargo xtask doctor`".to_owned(),
    };
    bail!(
        "missing build prerequisites: {}; {hint} (or run `cargo xtask doctor --fix`)",
        names.join(", ")
    )
}

/// What a doctor run found missing.
#[derive(Default)]
struct Gaps {
    /// Packages that install what is missing, with the chosen package manager.
    packages: Vec<String>,
    /// What is missing with no package known for this host.
    unfixable: Vec<String>,
    /// The smoke user, when root and it does not exist.
    user: Option<String>,
}

impl Gaps {
    fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.unfixable.is_empty() && self.user.is_none()
    }
}

impl flags::Doctor {
    pub fn run(self) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        let Selection { platform, set, .. } = &selection;
        let formats = self
            .format
            .clone()
            .unwrap_or_else(|| platform.package_formats.clone());
        let manager = package_manager(platform);
        eprintln!(
            "doctor: set {} on {} (formats {}), package manager {}",
            set.name,
            platform.name,
            formats
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(","),
            manager.map_or("none found", |m| m.name.as_str())
        );
        let gaps = self.examine(platform, &formats, manager);
        let fixes = fixes(platform, manager, &gaps);
        if gaps.is_empty() {
            eprintln!("doctor: everything is in place");
            return Ok(());
        }
        if !self.fix {
            for fix in &fixes {
                eprintln!("  to fix:  {}", fix.join(" "));
            }
            bail!(
                "{} prerequisite(s) missing; run the commands above, or `cargo xtask doctor --fix`",
                fixes.len() + gaps.unfixable.len()
            );
        }
        for fix in &fixes {
            eprintln!("   Running {}", fix.join(" "));
            let (program, args) = fix.split_first().expect("commands are not empty");
            // The package manager needs the user's settings (proxies, frontend).
            Command::new(program)
                .args(args)
                .inherit_environment()
                .env("DEBIAN_FRONTEND", "noninteractive")
                .in_callers_group()
                .run_in_terminal()?;
        }
        if !self.examine(platform, &formats, manager).is_empty() {
            bail!("prerequisites still missing after --fix: see the lines above");
        }
        eprintln!("doctor: everything is in place");
        Ok(())
    }

    /// Check every prerequisite, and the smoke user when root; a line each.
    fn examine(
        &self,
        platform: &Platform,
        formats: &[PackageFormat],
        manager: Option<&PackageManager>,
    ) -> Gaps {
        let mut gaps = Gaps::default();
        for check in check_prerequisites(platform, formats, manager) {
            match (&check.found, &check.package) {
                (Some(found), _) => eprintln!("  ok       {:<18} {found}", check.name),
                (None, Some(package)) => {
                    eprintln!("  missing  {:<18} package {package}", check.name);
                    gaps.packages.push(package.clone());
                }
                (None, None) => {
                    eprintln!(
                        "  missing  {:<18} no package known for this host: install it by hand",
                        check.name
                    );
                    gaps.unfixable.push(check.name.clone());
                }
            }
        }
        gaps.packages.sort();
        gaps.packages.dedup();
        if host::is_root() {
            let user = self
                .run_as
                .clone()
                .unwrap_or_else(|| platform.smoke_user.clone());
            if user_exists(&user) {
                eprintln!(
                    "  ok       {:<18} {user} (smoke servers never run as root)",
                    "smoke user"
                );
            } else {
                eprintln!(
                    "  missing  {:<18} {user}: initdb refuses root; smoke clusters run as this throwaway user",
                    "smoke user"
                );
                gaps.user = Some(user);
            }
        }
        gaps
    }
}

/// The commands that close the gaps: refresh and install packages, create the user.
fn fixes(platform: &Platform, manager: Option<&PackageManager>, gaps: &Gaps) -> Vec<Vec<String>> {
    let is_root = host::is_root();
    let mut fixes: Vec<Vec<String>> = Vec::new();
    if !gaps.packages.is_empty() {
        let manager = manager.expect("packages are only known with a package manager");
        if !manager.refresh.is_empty() {
            let mut refresh = if is_root {
                Vec::new()
            } else {
                vec![platform.escalate.clone()]
            };
            refresh.extend(manager.refresh.iter().cloned());
            fixes.push(refresh);
        }
        fixes.push(install_command(platform, manager, &gaps.packages, is_root));
    }
    if let Some(user) = &gaps.user {
        fixes.push(create_user_command(platform, user, is_root));
    }
    fixes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> Platform {
        let text =
            std::fs::read_to_string(crate::project_root().join("platforms/linux.toml")).unwrap();
        let mut platform =
            crate::input::platform::parse(Path::new("linux.toml"), &text, "linux").unwrap();
        // A program and a header no host has, next to the real ones.
        let mut missing_program = platform.prerequisites[0].clone();
        missing_program.name = "frobnicator".into();
        missing_program.program = Some("bdr-dist-no-such-program".into());
        missing_program.packages = [("apt-get".to_owned(), "frob".to_owned())].into();
        let mut missing_header = platform.prerequisites[0].clone();
        missing_header.name = "frob headers".into();
        missing_header.program = None;
        missing_header.header = Some("bdr-dist/no-such.h".into());
        missing_header.format = Some(PackageFormat::Deb);
        platform
            .prerequisites
            .extend([missing_program, missing_header]);
        platform
    }

    #[test]
    fn missing_prerequisites_are_found_with_their_packages() {
        let platform = platform();
        let manager = &platform.package_managers[0];
        let checks = check_prerequisites(&platform, &[PackageFormat::Deb], Some(manager));
        let frob = checks.iter().find(|c| c.name == "frobnicator").unwrap();
        assert_eq!(
            (frob.found.as_deref(), frob.package.as_deref()),
            (None, Some("frob"))
        );
        assert!(checks
            .iter()
            .any(|c| c.name == "frob headers" && c.found.is_none()));
        // The header check only applies when its package format is asked for.
        let checks = check_prerequisites(&platform, &[PackageFormat::Tarball], Some(manager));
        assert!(!checks.iter().any(|c| c.name == "frob headers"));
        // `sh` is on every host this runs on.
        let mut with_sh = platform.clone();
        with_sh.prerequisites[0].program = Some("sh".into());
        let checks = check_prerequisites(&with_sh, &[], Some(manager));
        assert!(checks[0]
            .found
            .as_deref()
            .is_some_and(|path| path.ends_with("/sh")));
    }

    #[test]
    fn fix_commands_escalate_only_when_not_root() {
        let platform = platform();
        let manager = &platform.package_managers[0];
        let packages = vec!["bison".to_owned(), "flex".to_owned()];
        assert_eq!(
            install_command(&platform, manager, &packages, false).join(" "),
            "sudo apt-get install --yes --no-install-recommends bison flex"
        );
        assert_eq!(
            install_command(&platform, manager, &packages, true)[0],
            "apt-get"
        );
        assert_eq!(
            create_user_command(&platform, "postgres", true).join(" "),
            "useradd --system --user-group --shell /bin/sh postgres"
        );
    }
}
