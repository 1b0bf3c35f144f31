//! Platforms: `platforms/<name>.toml`, the facts that differ between Linux and
//! OpenBSD (make program, flex, escalation, prefix, service user, package
//! formats, host package managers and prerequisite packages).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::input::{
    located::{invalid, Source},
    names,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    Rpm,
    Tarball,
    Deb,
    Openbsd,
    /// The Debian source package (`.dsc`), which sbuild and OBS build.
    Dsc,
}

impl PackageFormat {
    /// The operating system whose binaries the format carries; `None` for
    /// the tarball, which carries whatever the stage holds.
    pub fn native_os(self) -> Option<&'static str> {
        match self {
            PackageFormat::Rpm | PackageFormat::Deb | PackageFormat::Dsc => Some("linux"),
            PackageFormat::Openbsd => Some("openbsd"),
            PackageFormat::Tarball => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PackageFormat::Rpm => "rpm",
            PackageFormat::Tarball => "tarball",
            PackageFormat::Deb => "deb",
            PackageFormat::Openbsd => "openbsd",
            PackageFormat::Dsc => "dsc",
        }
    }
}

impl std::fmt::Display for PackageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PackageFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "rpm" => Ok(PackageFormat::Rpm),
            "tarball" => Ok(PackageFormat::Tarball),
            "deb" => Ok(PackageFormat::Deb),
            "openbsd" => Ok(PackageFormat::Openbsd),
            "dsc" => Ok(PackageFormat::Dsc),
            other => Err(format!(
                "unknown package format `{other}` (known: rpm, tarball, deb, dsc, openbsd)"
            )),
        }
    }
}

/// A validated platform.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub path: PathBuf,
    /// The value of `std::env::consts::OS` on this platform.
    pub os: String,
    /// GNU make's name here: `make` on Linux, `gmake` on OpenBSD.
    pub make: String,
    /// The C compiler looked for by the doctor.
    pub cc: String,
    /// Environment given to every configure step, e.g. `FLEX` on OpenBSD.
    #[serde(default)]
    pub configure_env: BTreeMap<String, String>,
    /// The tool that runs the install step as root: `sudo` or `doas`.
    pub escalate: String,
    pub default_prefix: String,
    /// The user packages create to run the server (PGDG's `postgres`), with
    /// a group of the same name.
    pub service_user: String,
    /// Its uid and gid, where the platform fixes one (OpenBSD's ports: 503).
    #[serde(default)]
    pub service_id: Option<u32>,
    /// Its home directory, the parent of the default data directory.
    pub service_home: String,
    /// The throwaway user that runs smoke clusters when the tool runs as
    /// root: never the service user, which owns real data on a database host.
    pub smoke_user: String,
    /// Command that creates a user; `{user}` is replaced.
    pub create_user: Vec<String>,
    /// How the escalated install step writes into the prefix.
    pub install: InstallSpec,
    /// Package formats made when `--format` is not given.
    pub package_formats: Vec<PackageFormat>,
    /// Directories searched for prerequisite headers.
    pub header_dirs: Vec<String>,
    /// Host package managers, tried in order; the first present is used.
    #[serde(rename = "package_manager")]
    pub package_managers: Vec<PackageManager>,
    #[serde(rename = "prerequisite")]
    pub prerequisites: Vec<Prerequisite>,
}

/// The escalated install: an archive whose entries are root's, extracted by
/// the platform's tar without touching directories that already exist.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstallSpec {
    /// Group of every installed path (`root` on Linux, `bin` on OpenBSD).
    pub group: String,
    pub gid: u32,
    /// Makes the prefix (and its missing parents), run as root; `{prefix}`
    /// is replaced. It must leave an existing directory as it is.
    pub mkdir: Vec<String>,
    /// Extracts the archive from stdin into the prefix, run as root;
    /// `{prefix}` is replaced. It must leave existing directories as they are.
    pub extract: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackageManager {
    pub name: String,
    /// The program whose presence selects this package manager.
    pub program: String,
    /// Install command; package names are appended.
    pub install: Vec<String>,
    /// Runs before installing, e.g. `apt-get update`.
    #[serde(default)]
    pub refresh: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisite {
    /// What the check line shows, and why it is needed, e.g. `readline headers`.
    pub name: String,
    /// Present when this program is found (a name on `PATH` or an absolute path).
    pub program: Option<String>,
    /// More programs of the same package, each checked too.
    #[serde(default)]
    pub also: Vec<String>,
    /// Present when this header is found in one of `header_dirs`.
    pub header: Option<String>,
    /// Only needed when one of these package formats is made [default: always].
    #[serde(default)]
    pub formats: Vec<PackageFormat>,
    /// The work that needs it.
    pub purpose: Purpose,
    /// Package providing it, per package manager name.
    pub packages: BTreeMap<String, String>,
    /// Whether the SRPM's `BuildRequires` name it, when its purpose and
    /// formats say a rebuild needs it [default: true]. `false` for what
    /// rpm-build brings itself, or what only bdr-dist's own checks run.
    #[serde(default = "yes")]
    pub build_requires: bool,
}

fn yes() -> bool {
    true
}

/// The package manager whose package names the SRPM's `BuildRequires` are:
/// EL's and Fedora's, where mock and Koji rebuild it.
pub const RPM_PACKAGE_MANAGER: &str = "dnf";

impl Prerequisite {
    /// Every program it stands for: `program`, then `also`.
    pub fn programs(&self) -> impl Iterator<Item = &str> {
        self.program.iter().chain(&self.also).map(String::as_str)
    }

    /// Its Debian package: a target's own name for it (`renamed`, by
    /// prerequisite name) where the release calls it otherwise, else the
    /// platform's `apt-get` one.
    pub fn apt_package<'a>(&'a self, renamed: &'a BTreeMap<String, String>) -> Option<&'a str> {
        renamed
            .get(&self.name)
            .or_else(|| self.packages.get("apt-get"))
            .map(String::as_str)
    }

    /// Whether work of one of `purposes` that makes one of `formats` needs it.
    pub fn wanted_for(&self, formats: &[PackageFormat], purposes: &[Purpose]) -> bool {
        purposes.contains(&self.purpose)
            && (self.formats.is_empty() || self.formats.iter().any(|f| formats.contains(f)))
    }

    /// Whether a rebuild of the SRPM needs it: to build the sources (and
    /// patch them, when `patches`), and for rpmbuild's own steps
    /// (find-debuginfo and the programs it runs).
    fn needed_by_srpm(&self, patches: bool) -> bool {
        let purposes: &[Purpose] = if patches {
            &[Purpose::Build, Purpose::Patch, Purpose::Package]
        } else {
            &[Purpose::Build, Purpose::Package]
        };
        self.build_requires && self.wanted_for(&[PackageFormat::Rpm], purposes)
    }
}

impl Platform {
    /// Whether this platform's stages can become RPMs whose BuildRequires
    /// it can name: its binaries are Linux's and it declares EL's package
    /// manager (a platform file that knows no `dnf` cannot name its packages).
    pub fn makes_rpms(&self) -> bool {
        PackageFormat::Rpm.native_os() == Some(self.os.as_str())
            && self
                .package_managers
                .iter()
                .any(|manager| manager.name == RPM_PACKAGE_MANAGER)
    }

    /// The SRPM's `BuildRequires`: the EL package of every prerequisite
    /// its rebuild needs, sorted, each once. Loading checked that a
    /// platform that makes RPMs names one for each.
    pub fn srpm_build_requires(&self, patches: bool) -> Vec<String> {
        let packages: BTreeSet<&String> = self
            .prerequisites
            .iter()
            .filter(|prerequisite| prerequisite.needed_by_srpm(patches))
            .filter_map(|prerequisite| prerequisite.packages.get(RPM_PACKAGE_MANAGER))
            .collect();
        packages.into_iter().cloned().collect()
    }
}

/// What a prerequisite is for: a run needs those of the work it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Configuring and compiling: compilers, generators, headers.
    Build,
    /// The smoke cluster: certificates, copies and signals as the server user.
    Smoke,
    /// Making the packages of its `formats`.
    Package,
    /// `--sign`, `--signify-key`.
    Sign,
    /// `--repo`.
    Repo,
    /// `lint`.
    Lint,
    /// `verify`.
    Verify,
    /// `smoke --network netns`.
    Netns,
    /// `bench`'s commands typed as a person would.
    Bench,
    /// Only the test suite (`cargo xtask test`).
    Test,
    /// `--target`: the clean roots, and proving packages installable.
    Target,
    /// Unpacking a source whose recipe carries patches.
    Patch,
}

impl Purpose {
    pub const ALL: [Purpose; 12] = [
        Purpose::Build,
        Purpose::Smoke,
        Purpose::Package,
        Purpose::Sign,
        Purpose::Repo,
        Purpose::Lint,
        Purpose::Verify,
        Purpose::Netns,
        Purpose::Bench,
        Purpose::Test,
        Purpose::Target,
        Purpose::Patch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Build => "build",
            Purpose::Smoke => "smoke",
            Purpose::Package => "package",
            Purpose::Sign => "sign",
            Purpose::Repo => "repo",
            Purpose::Lint => "lint",
            Purpose::Verify => "verify",
            Purpose::Netns => "netns",
            Purpose::Bench => "bench",
            Purpose::Test => "test",
            Purpose::Target => "target",
            Purpose::Patch => "patch",
        }
    }
}

/// The spans of the values checked after deserializing, read in a second
/// pass over the text (the first, into [`Platform`], refused unknown keys
/// and missing fields already).
#[derive(Deserialize)]
struct PlatformSpans {
    make: Spanned<String>,
    cc: Spanned<String>,
    escalate: Spanned<String>,
    default_prefix: Spanned<String>,
    service_user: Spanned<String>,
    service_home: Spanned<String>,
    smoke_user: Spanned<String>,
    install: InstallSpans,
    header_dirs: Vec<Spanned<String>>,
    #[serde(rename = "prerequisite", default)]
    prerequisites: Vec<Spanned<ProgramSpans>>,
    #[serde(rename = "package_manager", default)]
    package_managers: Vec<Spanned<ProgramSpans>>,
}

#[derive(Deserialize)]
struct InstallSpans {
    group: Spanned<String>,
}

/// A `[[prerequisite]]` or `[[package_manager]]`: what it finds by name.
#[derive(Deserialize)]
struct ProgramSpans {
    program: Option<Spanned<String>>,
    #[serde(default)]
    also: Vec<Spanned<String>>,
    header: Option<Spanned<String>>,
    packages: Option<Spanned<BTreeMap<String, String>>>,
}

/// The platform directory: `--platforms`/`BDR_DIST_PLATFORMS`, else the repository's.
pub fn platforms_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| crate::project_root().join("platforms"))
}

/// Names of all platform files, sorted.
pub fn names(dir: &Path) -> anyhow::Result<Vec<String>> {
    crate::input::recipe::set_names(dir)
}

/// The platform this process runs on, by `std::env::consts::OS`.
pub fn host_name() -> &'static str {
    std::env::consts::OS
}

pub fn load(dir: &Path, name: &str) -> anyhow::Result<Platform> {
    let path = dir.join(format!("{name}.toml"));
    if !path.is_file() {
        let known = names(dir).unwrap_or_default().join(", ");
        return Err(invalid(format!(
            "platform `{name}` does not exist: no {} (known: {known})",
            path.display()
        )));
    }
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&path, &text, name)
}

pub fn parse(path: &Path, text: &str, name: &str) -> anyhow::Result<Platform> {
    // The name is the file's stem, and becomes part of the tarball's, the
    // manifest's and the SBOM's file names (`<package>-...<platform>-<arch>`).
    if let Err(why) = names::check_plain_name(name) {
        return Err(invalid(format!(
            "{}: the platform's name, its file name without `.toml`: {why}",
            path.display()
        )));
    }
    let source = Source { path, text };
    let mut platform: Platform = source.parse()?;
    platform.name = name.to_owned();
    platform.path = path.to_path_buf();

    let spans: PlatformSpans = source.parse()?;
    check_names(&source, &spans)?;
    let manager_names: Vec<&str> = platform
        .package_managers
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    for (prerequisite, span) in platform.prerequisites.iter().zip(&spans.prerequisites) {
        if !prerequisite.also.is_empty() && prerequisite.program.is_none() {
            return Err(source.error_at(
                span.span(),
                "prerequisite.also",
                format!(
                    "`{}`: `also` names more programs of a `program`'s package",
                    prerequisite.name
                ),
            ));
        }
        if prerequisite.program.is_some() == prerequisite.header.is_some() {
            return Err(source.error_at(
                span.span(),
                "prerequisite",
                format!(
                    "`{}` needs exactly one of `program` and `header`",
                    prerequisite.name
                ),
            ));
        }
        if platform.makes_rpms()
            && prerequisite.needed_by_srpm(true)
            && !prerequisite.packages.contains_key(RPM_PACKAGE_MANAGER)
        {
            let at = span
                .get_ref()
                .packages
                .as_ref()
                .map_or(span.span(), Spanned::span);
            return Err(source.error_at(
                at,
                "prerequisite.packages",
                format!(
                    "`{}` (purpose {}) names no `{RPM_PACKAGE_MANAGER}` package: the SRPM's \
                     BuildRequires name the EL package of each prerequisite its rebuild needs \
                     (`build_requires = false` if it does not need this one)",
                    prerequisite.name,
                    prerequisite.purpose.as_str()
                ),
            ));
        }
        for manager in prerequisite.packages.keys() {
            if !manager_names.contains(&manager.as_str()) {
                return Err(source.error_at(
                    span.span(),
                    "prerequisite.packages",
                    format!(
                        "package manager `{manager}` is not declared (declared: {})",
                        manager_names.join(", ")
                    ),
                ));
            }
        }
    }
    for (manager, span) in platform
        .package_managers
        .iter()
        .zip(&spans.package_managers)
    {
        if manager.install.is_empty() {
            return Err(source.error_at(span.span(), "package_manager.install", "needs a command"));
        }
    }
    for (key, argv) in [
        ("install.mkdir", &platform.install.mkdir),
        ("install.extract", &platform.install.extract),
    ] {
        if !argv.iter().any(|arg| arg.contains("{prefix}")) {
            return Err(invalid(format!(
                "{}: key `{key}`: the command must name `{{prefix}}`",
                path.display()
            )));
        }
    }
    if platform.create_user.is_empty() {
        return Err(invalid(format!(
            "{}: key `create_user`: needs a command",
            path.display()
        )));
    }
    Ok(platform)
}

/// The values that become paths, programs run or account names: the
/// prefix, the home and the header directories are normalized absolute
/// paths (the prefix is joined below the stage, the home is the service
/// user's and holds the data directory); users and the install group are
/// names `useradd` takes and no command reads as an option; programs are
/// names on `PATH` or absolute paths; headers stay below their directory.
fn check_names(source: &Source<'_>, spans: &PlatformSpans) -> anyhow::Result<()> {
    let check = |value: &Spanned<String>, key: &str, rule: fn(&str) -> Result<(), String>| {
        rule(value.get_ref()).map_err(|message| source.error_at(value.span(), key, message))
    };
    check(&spans.make, "make", names::check_program)?;
    check(&spans.cc, "cc", names::check_program)?;
    check(&spans.escalate, "escalate", names::check_program)?;
    check(
        &spans.default_prefix,
        "default_prefix",
        names::check_absolute_path,
    )?;
    check(
        &spans.service_home,
        "service_home",
        names::check_absolute_path,
    )?;
    check(&spans.service_user, "service_user", names::check_user_name)?;
    check(&spans.smoke_user, "smoke_user", names::check_user_name)?;
    check(
        &spans.install.group,
        "install.group",
        names::check_user_name,
    )?;
    for dir in &spans.header_dirs {
        check(dir, "header_dirs", names::check_absolute_path)?;
    }
    for (table, kind) in [
        (&spans.prerequisites, "prerequisite"),
        (&spans.package_managers, "package_manager"),
    ] {
        for entry in table {
            if let Some(program) = &entry.get_ref().program {
                check(program, &format!("{kind}.program"), names::check_program)?;
            }
            for program in &entry.get_ref().also {
                check(program, &format!("{kind}.also"), names::check_program)?;
            }
            if let Some(header) = &entry.get_ref().header {
                check(
                    header,
                    &format!("{kind}.header"),
                    names::check_relative_path,
                )?;
            }
        }
    }
    Ok(())
}
