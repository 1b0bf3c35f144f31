//! Host prerequisites: which programs and headers of the platform file a run
//! needs (by package format and purpose), which of them this host lacks, and
//! the package manager's commands that install them.
//!
//! `doctor` reports and (`--fix`) installs; `dist`, `build`, `package`,
//! `smoke`, `lint` and `verify` install what their own run needs before
//! anything starts (or refuse, naming the command, with `--no-install` or
//! when they cannot escalate); `cargo xtask test` installs everything.

use std::path::Path;

use anyhow::bail;

use crate::{
    host,
    input::platform::{PackageFormat, PackageManager, Platform, Prerequisite, Purpose},
    plan::{checks::Network, Action, Phase, Plan},
    process::Command,
};

/// What a run needs: the prerequisites of these purposes, for these formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub formats: Vec<PackageFormat>,
    pub purposes: Vec<Purpose>,
}

impl Needs {
    pub fn new(formats: &[PackageFormat], purposes: &[Purpose]) -> Needs {
        Needs {
            formats: formats.to_vec(),
            purposes: purposes.to_vec(),
        }
    }

    /// Everything a release engineer's host may need for `formats`: all but
    /// the test suite's own tools (what `doctor` checks).
    pub fn all_but_tests(formats: &[PackageFormat]) -> Needs {
        let purposes: Vec<Purpose> = Purpose::ALL
            .into_iter()
            .filter(|purpose| *purpose != Purpose::Test)
            .collect();
        Needs::new(formats, &purposes)
    }

    /// What running `phases` of `plan` runs: the compilers for a build,
    /// each planned package format's tools, signing's and the repositories'
    /// when asked for, the cluster's, and `ip` for one in namespaces.
    ///
    /// For a target, the builds and the package tools run in its build
    /// root ([`of_root`](Self::of_root)): this host needs what makes the
    /// roots and proves the packages instead.
    pub fn of_plan(plan: &Plan, phases: &[Phase]) -> Needs {
        let mut needs = Needs::new(&[], &[]);
        let in_root = plan.target.is_some();
        for step in plan
            .steps
            .iter()
            .filter(|step| phases.contains(&step.phase))
        {
            match &step.action {
                Action::Run(_) if in_root => needs.purposes.push(Purpose::Target),
                Action::Run(_) => needs.purposes.push(Purpose::Build),
                Action::Package(package) => {
                    // A target's package tools are its build root's; sbuild,
                    // which makes its .debs, is this host's.
                    needs.purposes.push(if in_root {
                        Purpose::Target
                    } else {
                        Purpose::Package
                    });
                    needs.formats.push(package.format);
                    if package.signing.is_some() {
                        needs.purposes.push(Purpose::Sign);
                    }
                    if package.repo {
                        needs.purposes.push(Purpose::Repo);
                    }
                }
                Action::Smoke(smoke) => {
                    needs.purposes.push(Purpose::Smoke);
                    if in_root {
                        needs.purposes.push(Purpose::Target);
                    }
                    if smoke.network == Network::Netns {
                        needs.purposes.push(Purpose::Netns);
                    }
                }
                Action::Unpack(unpack) if !unpack.patches.is_empty() => {
                    needs.purposes.push(Purpose::Patch)
                }
                Action::Fetch(_) | Action::Unpack(_) | Action::Install(_) => {}
            }
        }
        needs.formats.sort();
        needs.formats.dedup();
        needs.purposes.sort();
        needs.purposes.dedup();
        needs
    }

    /// What a target's build root must hold for `plan`: the compilers and
    /// headers, and the tools of every package format the target makes
    /// (`targets`: its own formats) or the plan asks for. A command that
    /// asks for one format needs the same root as one that makes them all:
    /// the root's key is part of every build step's stamp.
    pub fn of_root(plan: &Plan, targets: &[PackageFormat]) -> Needs {
        let mut formats: Vec<PackageFormat> = plan
            .steps
            .iter()
            .filter_map(|step| match &step.action {
                Action::Package(package) => Some(package.format),
                _ => None,
            })
            .chain(targets.iter().copied())
            .collect();
        formats.sort();
        formats.dedup();
        Needs::new(&formats, &[Purpose::Build, Purpose::Package])
    }

    pub fn wants(&self, prerequisite: &Prerequisite) -> bool {
        prerequisite.wanted_for(&self.formats, &self.purposes)
    }
}

/// One prerequisite's outcome on this host.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub purpose: Purpose,
    /// Where it was found (every program of it), or `None` when anything is missing.
    pub found: Option<String>,
    /// What is missing, when something is.
    pub missing: Vec<String>,
    /// Package that provides it with the chosen package manager.
    pub package: Option<String>,
}

/// Each prerequisite `needs` asks for, and whether it is here.
pub fn check(platform: &Platform, needs: &Needs, manager: Option<&PackageManager>) -> Vec<Check> {
    platform
        .prerequisites
        .iter()
        .filter(|prerequisite| needs.wants(prerequisite))
        .map(|prerequisite| {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for program in prerequisite.programs() {
                match find_program(program) {
                    Some(path) => found.push(path),
                    None => missing.push(program.to_owned()),
                }
            }
            if let Some(header) = &prerequisite.header {
                match platform
                    .header_dirs
                    .iter()
                    .map(|dir| Path::new(dir).join(header))
                    .find(|path| path.is_file())
                {
                    Some(path) => found.push(path.display().to_string()),
                    None => missing.push(header.clone()),
                }
            }
            Check {
                name: prerequisite.name.clone(),
                purpose: prerequisite.purpose,
                found: missing.is_empty().then(|| found.join(", ")),
                missing,
                package: manager
                    .and_then(|manager| prerequisite.packages.get(&manager.name).cloned()),
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

/// `command`, escalated with the platform's tool when not root.
fn escalated(platform: &Platform, command: &[String], is_root: bool) -> Vec<String> {
    let mut line = Vec::new();
    if !is_root {
        line.push(platform.escalate.clone());
    }
    line.extend(command.iter().cloned());
    line
}

/// The install command for `packages`, escalated when not root.
pub fn install_command(
    platform: &Platform,
    manager: &PackageManager,
    packages: &[String],
    is_root: bool,
) -> Vec<String> {
    let mut command = manager.install.clone();
    command.extend(packages.iter().cloned());
    escalated(platform, &command, is_root)
}

pub fn create_user_command(platform: &Platform, user: &str, is_root: bool) -> Vec<String> {
    let command: Vec<String> = platform
        .create_user
        .iter()
        .map(|arg| arg.replace("{user}", user))
        .collect();
    escalated(platform, &command, is_root)
}

/// What a check found missing.
#[derive(Debug, Default)]
pub struct Gaps {
    /// Packages that install what is missing, with the chosen package manager.
    pub packages: Vec<String>,
    /// Each missing prerequisite, as `name (what is missing)`.
    pub names: Vec<String>,
    /// What is missing with no package known for this host.
    pub unfixable: Vec<String>,
    /// The smoke user, when it is needed and does not exist.
    pub user: Option<String>,
}

impl Gaps {
    pub fn of(checks: &[Check]) -> Gaps {
        let mut gaps = Gaps::default();
        for check in checks.iter().filter(|check| check.found.is_none()) {
            gaps.names.push(format!(
                "{} ({} not found)",
                check.name,
                check.missing.join(", ")
            ));
            match &check.package {
                Some(package) => gaps.packages.push(package.clone()),
                None => gaps.unfixable.push(check.name.clone()),
            }
        }
        gaps.packages.sort();
        gaps.packages.dedup();
        gaps
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.user.is_none()
    }
}

/// The commands that close the gaps: refresh and install packages, create the user.
pub fn fixes(
    platform: &Platform,
    manager: Option<&PackageManager>,
    gaps: &Gaps,
) -> Vec<Vec<String>> {
    let is_root = host::is_root();
    let mut fixes = Vec::new();
    if let Some(manager) = manager.filter(|_| !gaps.packages.is_empty()) {
        if !manager.refresh.is_empty() {
            fixes.push(escalated(platform, &manager.refresh, is_root));
        }
        fixes.push(install_command(platform, manager, &gaps.packages, is_root));
    }
    if let Some(user) = &gaps.user {
        fixes.push(create_user_command(platform, user, is_root));
    }
    fixes
}

/// Run the fixes, with the caller's terminal (sudo may ask for a password)
/// and environment (the package manager's proxies and settings).
pub fn run_fixes(fixes: &[Vec<String>]) -> anyhow::Result<()> {
    for fix in fixes {
        eprintln!("{:>12} {}", "Running", fix.join(" "));
        let (program, args) = fix.split_first().expect("commands are not empty");
        Command::new(program)
            .args(args)
            .inherit_environment()
            .env("DEBIAN_FRONTEND", "noninteractive")
            .in_callers_group()
            .run_in_terminal()?;
    }
    Ok(())
}

/// Whether this run may install packages and create users itself: a host
/// of the platform's own operating system whose package manager the
/// platform file knows, as root or with its escalation tool at hand.
pub fn can_install(platform: &Platform) -> bool {
    platform.os == crate::input::platform::host_name()
        && package_manager(platform).is_some()
        && (host::is_root() || find_program(&platform.escalate).is_some())
}

/// Make sure this host has what `needs` asks for, and the smoke user
/// `smoke_user` when root runs a cluster: install what is missing, saying
/// what and why, when `install` allows it and [`can_install`]; otherwise
/// fail naming what is missing and the command that installs it.
pub fn ensure(
    platform: &Platform,
    needs: &Needs,
    smoke_user: Option<&str>,
    install: bool,
) -> anyhow::Result<()> {
    let manager = package_manager(platform);
    let mut gaps = Gaps::of(&check(platform, needs, manager));
    gaps.user = smoke_user
        .filter(|user| !user_exists(user))
        .map(str::to_owned);
    if gaps.is_empty() {
        return Ok(());
    }
    let fixes = fixes(platform, manager, &gaps);
    if install && can_install(platform) && gaps.unfixable.is_empty() {
        for name in &gaps.names {
            eprintln!("{:>12} {name}", "Missing");
        }
        if let Some(user) = &gaps.user {
            eprintln!(
                "{:>12} smoke user {user} (initdb refuses root: the servers run as this throwaway user)",
                "Missing"
            );
        }
        if !gaps.packages.is_empty() {
            eprintln!(
                "{:>12} {} (pass --no-install to refuse instead)",
                "Installing",
                gaps.packages.join(" ")
            );
        }
        run_fixes(&fixes)?;
        let mut left = Gaps::of(&check(platform, needs, manager));
        left.user = gaps.user.filter(|user| !user_exists(user));
        if !left.is_empty() {
            bail!(
                "still missing after installing: {}",
                left.names
                    .iter()
                    .chain(left.user.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        return Ok(());
    }
    let mut missing = gaps.names.clone();
    if let Some(user) = &gaps.user {
        missing.push(format!("the smoke user {user}"));
    }
    let hint = if fixes.is_empty() {
        "install them by hand (`cargo xtask doctor` lists them)".to_owned()
    } else {
        format!(
            "install with: {}",
            fixes
                .iter()
                .map(|fix| fix.join(" "))
                .collect::<Vec<_>>()
                .join(" && ")
        )
    };
    bail!(
        "missing build prerequisites: {}; run `cargo xtask doctor --fix`, or {hint}",
        missing.join(", ")
    )
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
        missing_header.formats = vec![PackageFormat::Deb];
        let mut missing_also = platform.prerequisites[0].clone();
        missing_also.name = "sh and a friend".into();
        missing_also.program = Some("sh".into());
        missing_also.also = vec!["bdr-dist-no-such-friend".into()];
        missing_also.purpose = Purpose::Test;
        missing_also.formats = Vec::new();
        platform
            .prerequisites
            .extend([missing_program, missing_header, missing_also]);
        platform
    }

    #[test]
    fn missing_prerequisites_are_found_with_their_packages() {
        let platform = platform();
        let manager = &platform.package_managers[0];
        let build = Needs::new(&[PackageFormat::Deb], &[Purpose::Build]);
        assert_eq!(platform.prerequisites[0].purpose, Purpose::Build);
        let checks = check(&platform, &build, Some(manager));
        let frob = checks.iter().find(|c| c.name == "frobnicator").unwrap();
        assert_eq!(
            (frob.found.as_deref(), frob.package.as_deref()),
            (None, Some("frob"))
        );
        assert!(checks
            .iter()
            .any(|c| c.name == "frob headers" && c.found.is_none()));
        // A header of the deb format is not asked for when only tarballs are made.
        let tarball = Needs::new(&[PackageFormat::Tarball], &[Purpose::Build]);
        let checks = check(&platform, &tarball, Some(manager));
        assert!(!checks.iter().any(|c| c.name == "frob headers"));
        // A test tool only when the test purpose is asked for; one program
        // of its `also` missing makes it missing, and says which.
        assert!(!checks.iter().any(|c| c.name == "sh and a friend"));
        let tests = Needs::new(&[], &[Purpose::Test]);
        let checks = check(&platform, &tests, Some(manager));
        let friend = checks.iter().find(|c| c.name == "sh and a friend").unwrap();
        assert_eq!(friend.found, None);
        assert_eq!(friend.missing, ["bdr-dist-no-such-friend"]);
        let gaps = Gaps::of(&checks);
        assert!(gaps
            .names
            .iter()
            .any(|name| name == "sh and a friend (bdr-dist-no-such-friend not found)"));
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

    #[test]
    fn a_plan_needs_its_formats_signing_repositories_and_namespaces() {
        let root = crate::project_root();
        let platforms = crate::input::platform::names(&root.join("platforms")).unwrap();
        let set = crate::input::recipe::load(&root.join("recipes"), "pg15-pglogical", &platforms)
            .unwrap();
        let platform = crate::input::platform::load(&root.join("platforms"), "linux").unwrap();
        let mut options = crate::plan::PlanOptions::for_tests();
        options.formats = Some(vec![PackageFormat::Rpm]);
        options.signing = Some(crate::plan::Signing {
            gpg_key: Some("release@example.com".into()),
            signify_key: None,
        });
        options.smoke_network = Network::Netns;
        let plan = crate::plan::plan(&set, &platform, &options);
        let all = [Phase::Fetch, Phase::Build, Phase::Package, Phase::Smoke];
        assert_eq!(
            Needs::of_plan(&plan, &all),
            Needs::new(
                &[PackageFormat::Rpm],
                &[
                    Purpose::Build,
                    Purpose::Smoke,
                    Purpose::Package,
                    Purpose::Sign,
                    Purpose::Netns
                ]
            )
        );
        assert_eq!(
            Needs::of_plan(&plan, &[Phase::Build]),
            Needs::new(&[], &[Purpose::Build])
        );
        assert_eq!(
            Needs::of_plan(&plan, &[Phase::Package]),
            Needs::new(&[PackageFormat::Rpm], &[Purpose::Package, Purpose::Sign])
        );
        assert_eq!(Needs::of_plan(&plan, &[Phase::Fetch]), Needs::new(&[], &[]));
    }
}
