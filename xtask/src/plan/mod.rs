//! Planning: recipes + platform + options -> every step of a full run, as data.
//!
//! [`plan`] is pure: it reads no file, no environment and no network. The
//! host's facts (parallelism, root or not, ccache, mirrors) arrive in
//! [`PlanOptions`]. That is what lets `cargo xtask plan --platform openbsd`
//! print, on Linux, exactly what a build would run on OpenBSD, and what the
//! snapshot tests pin. The types are here, the planner in `planner.rs`, the
//! stable text form in `display.rs`.

pub mod checks;
mod display;
mod planner;

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::Serialize;

pub use self::planner::{plan, prefix_of};
use crate::input::{
    platform::PackageFormat,
    recipe::{ArchiveKind, ClusterDriver, StepKind},
    target::Target,
};

/// The stable name of a step: stamps and logs are named after it, and the
/// steps that come after it name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct StepId(String);

impl StepId {
    /// `<component>-fetch`
    pub fn fetch(component: &str) -> StepId {
        StepId(format!("{component}-fetch"))
    }
    /// `<component>-unpack`
    pub fn unpack(component: &str) -> StepId {
        StepId(format!("{component}-unpack"))
    }
    /// `<component>-<kind>`, or `<component>-<label>-<kind>`.
    pub fn build(component: &str, label: Option<&str>, kind: StepKind) -> StepId {
        match label {
            Some(label) => StepId(format!("{component}-{label}-{kind}")),
            None => StepId(format!("{component}-{kind}")),
        }
    }
    /// `package-<format>`
    pub fn package(format: PackageFormat) -> StepId {
        StepId(format!("package-{format}"))
    }
    pub fn smoke() -> StepId {
        StepId("smoke".into())
    }
    pub fn install() -> StepId {
        StepId("install".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub target_dir: PathBuf,
    /// `-jN` for parallel make steps.
    pub jobs: u32,
    /// Mirror URLs or directories, tried before each source's own URLs.
    pub mirrors: Vec<String>,
    /// False when already root: then the install step runs without sudo/doas.
    pub escalate: bool,
    /// A ccache masquerade directory (`/usr/lib/ccache`) to put first on `PATH`.
    pub ccache_dir: Option<PathBuf>,
    /// `cargo xtask install --prefix`; the recipe's or platform's prefix otherwise.
    pub install_prefix: Option<String>,
    /// Package formats; the platform's defaults when `None`.
    pub formats: Option<Vec<PackageFormat>>,
    pub nodes: u32,
    /// The unprivileged user that runs the smoke cluster's servers, when root.
    pub run_as: Option<String>,
    /// Sources' sha256 recorded in the set's lock file, by source file name.
    pub locked_sha256: BTreeMap<String, String>,
    pub smoke_from: SmokeFrom,
    pub smoke_keep: bool,
    /// `smoke --checks`: the checks to run, in run order.
    pub smoke_checks: Vec<checks::CheckId>,
    /// `smoke --network`.
    pub smoke_network: checks::Network,
    /// `smoke --tls`.
    pub smoke_tls: checks::Tls,
    /// `package --release`: the packages' release instead of the recipe's.
    pub release: Option<String>,
    /// `package --out`: where the packages go instead of the set's `dist/`.
    pub dist_dir: Option<PathBuf>,
    /// `--sign`, `--signify-key`: how the artifacts are signed, if at all.
    pub signing: Option<Signing>,
    /// `--repo`: lay the packages out as repositories too.
    pub repo: bool,
    /// `--repo-url`: where `repo/` will be published, if not where it is made.
    pub repo_url: Option<String>,
    /// `--target`: the distribution release built for; `None`: this host.
    pub target: Option<Target>,
    /// The RPMs' dist tag: `--dist`, else the host's `%{?dist}`.
    pub rpm_dist: RpmDist,
}

/// The dist tag the RPMs' release carries (`Release: 1%{?dist}`: `1.el9`),
/// and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RpmDist {
    /// `el9`, without the dot; `None`: the release has none.
    pub tag: Option<String>,
    /// `--dist` named it; otherwise it is this host's `rpm --eval %{?dist}`
    /// (none on a host whose rpm defines no dist, as Debian's).
    pub from_flag: bool,
}

#[cfg(test)]
impl PlanOptions {
    /// Options with nothing of this host in them, for unit tests.
    pub fn for_tests() -> PlanOptions {
        PlanOptions {
            target_dir: PathBuf::from("/bdr-dist/target"),
            jobs: 2,
            mirrors: Vec::new(),
            escalate: true,
            ccache_dir: None,
            install_prefix: None,
            formats: None,
            nodes: 2,
            run_as: None,
            locked_sha256: Default::default(),
            smoke_from: SmokeFrom::Stage,
            smoke_keep: false,
            smoke_checks: checks::CheckId::ALL.to_vec(),
            smoke_network: Default::default(),
            smoke_tls: Default::default(),
            release: None,
            dist_dir: None,
            signing: None,
            repo: false,
            repo_url: None,
            target: None,
            rpm_dist: RpmDist::default(),
        }
    }
}

/// The keys that sign a set's artifacts, by name or path: never the key
/// material itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Signing {
    /// A GnuPG key (fingerprint, id or user id) for rpmsign and SHA256SUMS.asc.
    pub gpg_key: Option<String>,
    /// A signify secret key file for the OpenBSD package.
    pub signify_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Fetch,
    Build,
    Package,
    Smoke,
    Install,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Fetch => "fetch",
            Phase::Build => "build",
            Phase::Package => "package",
            Phase::Smoke => "smoke",
            Phase::Install => "install",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub set: String,
    /// The set's own one-line description, from its recipe.
    pub description: String,
    pub platform: String,
    /// The operating system of that platform, as `std::env::consts::OS` names it.
    pub os: String,
    pub prefix: String,
    pub stage: PathBuf,
    /// The distribution release built for; `None`: this host.
    pub target: Option<PlanTarget>,
    pub steps: Vec<Step>,
}

/// A distribution target, as the plan uses it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanTarget {
    pub name: String,
    pub description: String,
    pub distribution: String,
    pub release: String,
    pub codename: String,
    /// In every package's release: `1+deb13`.
    pub version_suffix: String,
    /// Its clean build root: where its builds, packaging and nothing else run.
    pub build_root: PathBuf,
    /// Where a fresh root of it is unpacked to prove its packages.
    pub proof_root: PathBuf,
}

/// A clean root a command runs in: a private mount namespace of its own,
/// `binds` mounted at their own paths inside it (so every path in the plan
/// means the same inside and out), `/dev` and `/proc`, then `chroot`.
/// Nothing of the host's `/usr` is visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InRoot {
    pub root: PathBuf,
    pub binds: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Stable name: stamps and logs are named after it.
    pub id: StepId,
    pub phase: Phase,
    /// Ids of the steps whose results this one uses.
    pub after: Vec<StepId>,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Fetch(Fetch),
    Unpack(Unpack),
    Run(Run),
    Package(Box<Package>),
    Smoke(Smoke),
    Install(Install),
}

/// Download a source. Whatever URL serves it, its bytes must pass the
/// recipe's content pins before they enter the cache.
#[derive(Debug, Clone, Serialize)]
pub struct Fetch {
    pub component: String,
    pub version: String,
    pub file: String,
    /// Mirrors first, then the recipe's URLs, tried in order.
    pub urls: Vec<String>,
    /// The recipe's pin of the archive's bytes.
    pub sha256: Option<String>,
    /// The recipe's pin of the git tree the archive's entries make.
    pub tree: Option<String>,
    /// The tagged commit, shown and recorded: a label, never proof.
    pub commit: Option<String>,
    /// The sha256 the set's lock file recorded; `--locked` requires it.
    pub locked_sha256: Option<String>,
    /// How the archive is compressed (the tree pin is read from inside it).
    pub archive: ArchiveKind,
    pub max_download: u64,
    pub max_unpacked: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unpack {
    pub component: String,
    pub version: String,
    pub file: String,
    pub archive: ArchiveKind,
    pub dest: PathBuf,
    /// Checked again while unpacking: the tree the entries must make.
    pub tree: Option<String>,
    pub max_unpacked: u64,
    /// Applied in order once the tree is unpacked (and its pin checked).
    pub patches: Vec<crate::input::recipe::PatchFile>,
}

/// The one step that escalates. Before anything runs as root, the prefix
/// is checked to be root's alone and the archive of the stage is made (files
/// owned by root and the platform's group, modes 0755/0644, no setuid); then
/// root makes the prefix and extracts the archive into it, from a pipe, so
/// nothing on disk can be swapped in between.
#[derive(Debug, Clone, Serialize)]
pub struct Install {
    /// The staged prefix, e.g. `.../stage/usr/pgsql-15`.
    pub from: PathBuf,
    /// Where it goes.
    pub prefix: String,
    /// A copy of what is piped, kept for inspection.
    pub archive: PathBuf,
    pub group: String,
    pub gid: u32,
    /// `sudo` or `doas`; nothing when already root.
    pub escalate: Option<String>,
    /// Makes the prefix, if it is not there.
    pub mkdir: Vec<String>,
    /// Extracts the archive from stdin into the prefix.
    pub extract: Vec<String>,
}

impl Install {
    /// The escalated command lines, as they run.
    pub fn command_lines(&self) -> [Vec<String>; 2] {
        let escalated = |argv: &[String]| -> Vec<String> {
            self.escalate.iter().chain(argv).cloned().collect()
        };
        [escalated(&self.mkdir), escalated(&self.extract)]
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
    /// Put `value` in front of the inherited value, `:`-separated (for `PATH`).
    pub prepend: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// What the command does; its verb (`Configuring`, `Compiling`, ...)
    /// heads the status line.
    pub kind: StepKind,
    /// What the verb applies to: `postgresql 15.18 (contrib)`.
    pub subject: String,
    pub cwd: PathBuf,
    pub env: Vec<EnvVar>,
    pub argv: Vec<String>,
    /// `-jN`, passed right after the program. Not part of the step's stamp:
    /// parallelism does not change what make produces.
    pub jobs: Option<u32>,
    /// ccache masquerade directory first on `PATH`. Not part of the stamp either.
    pub ccache_dir: Option<PathBuf>,
    /// `sudo` or `doas`, put in front of the command. No step the planner
    /// makes has it: the install escalates on its own terms.
    pub escalate: Option<String>,
    /// Removed before the command runs: the stage, before the server installs
    /// into it, so that a rebuilt server never lands on a stale stage.
    pub fresh_dir: Option<PathBuf>,
    /// Installs into the stage: the executor records which files it added,
    /// which is how packages are split.
    pub installs: bool,
    /// Build paths the compiler maps out of what it writes (debug info,
    /// `__FILE__`), through a wrapper first on `PATH`: flags given to make or
    /// configure would be recorded by `pg_config`, and leak the path anyway.
    pub path_map: Vec<PathMap>,
    /// The target's build root it runs in; `None`: on this host.
    pub root: Option<InRoot>,
}

/// `-ffile-prefix-map=from=to`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PathMap {
    pub from: String,
    pub to: String,
}

/// `patch`'s arguments before a recipe's patch file: strip one directory,
/// never ask, refuse a patch already applied. The unpack and the SRPM's
/// %prep apply patches alike.
pub const PATCH_ARGS: [&str; 4] = ["-p1", "-t", "-N", "-i"];

/// The compilers a build step's wrappers stand in for, by the names a build
/// calls them.
pub const COMPILERS: [&str; 3] = ["cc", "gcc", "clang"];

/// What distributions ask of every ELF file: a GNU build-id, by which
/// debuggers find the symbols split out of it, and both symbol hash tables
/// (rpmlint's `missing-hash-section`). The compiler ignores them when it
/// does not link.
const LINK_FLAGS: [&str; 2] = ["-Wl,--build-id=sha1", "-Wl,--hash-style=both"];

/// The flags a build step's compilers get, before the build's own: its path
/// maps, then the link flags. `build` puts them in wrapper scripts, and the
/// SRPM's spec writes the same wrappers, so both compile alike.
pub fn compiler_flags(path_map: &[PathMap]) -> Vec<String> {
    path_map
        .iter()
        .map(|map| format!("-ffile-prefix-map={}={}", map.from, map.to))
        .chain(LINK_FLAGS.iter().map(|flag| flag.to_string()))
        .collect()
}

/// Files one install step added to the stage, and the package they go to.
#[derive(Debug, Clone, Serialize)]
pub struct PackagePart {
    /// The install step whose recorded file list this is.
    pub step: StepId,
    pub component: String,
    pub part: PartKind,
}

/// Which packages the files of an install step go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartKind {
    /// The server's own files, split by kind (clients, libs, server, devel).
    Server,
    /// The server's contributed modules (the install step labelled `contrib`).
    Contrib,
    /// A plugin, in the subpackage of this name.
    Plugin(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Package {
    pub format: PackageFormat,
    pub name: String,
    pub version: String,
    pub release: String,
    pub prefix: String,
    pub stage: PathBuf,
    pub dist: PathBuf,
    pub parts: Vec<PackagePart>,
    /// The PGDG base name the packages also provide, e.g. `postgresql94`.
    pub provides: Option<String>,
    pub summary: String,
    pub license: String,
    pub url: String,
    /// `Name <address>`: Maintainer, Packager, changelog author.
    pub maintainer: String,
    /// The platform whose stage this packs, by name and operating system.
    pub platform: String,
    pub os: String,
    pub service: ServiceAccount,
    /// The programs the build ran, by role (`make` is `gmake` on OpenBSD):
    /// the manifest records their versions.
    pub tools: BTreeMap<String, String>,
    /// How the artifacts are signed, if at all.
    pub signing: Option<Signing>,
    /// Whether the packages are also laid out as repositories.
    pub repo: bool,
    /// Where `repo/` will be published; `None`: its file:// URL.
    pub repo_url: Option<String>,
    /// The target's build root its tools (dpkg-shlibdeps, strip) run in.
    pub root: Option<InRoot>,
    /// The target it is for, recorded in the manifest.
    pub target: Option<PlanTarget>,
    /// The RPM step's dist tag; `None` for the other formats.
    pub rpm_dist: Option<RpmDist>,
    /// The Debian source package's `Build-Depends`: the packages of the
    /// platform's build prerequisites, as the doctor lists them (by the
    /// target's names), less what Debian Policy says every build has
    /// (build-essential and the Essential packages). Empty but for `dsc`.
    pub build_depends: Vec<String>,
    /// The SRPM's `BuildRequires`, as EL names the packages (the platform's
    /// prerequisites of building, patching when a source has patches, and
    /// rpmbuild's own steps); empty for the other formats.
    pub build_requires: Vec<String>,
}

/// The account packages create to run the server.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceAccount {
    /// The user, and a group of the same name.
    pub user: String,
    /// uid and gid, where the platform fixes one.
    pub id: Option<u32>,
    pub home: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Smoke {
    pub driver: ClusterDriver,
    pub nodes: u32,
    pub bindir: PathBuf,
    pub preload: String,
    pub extensions: Vec<String>,
    pub run_as: Option<String>,
    /// Run the servers from the stage, or from the binary tarball.
    pub from: SmokeFrom,
    /// Leave the cluster running, whole, and say how to reach and stop it.
    pub keep: bool,
    /// The checks to run, in run order (`join` always among them).
    pub checks: Vec<checks::CheckId>,
    pub network: checks::Network,
    pub tls: checks::Tls,
    /// For a target: a fresh root of its release, unpacked at its
    /// `proof_root`, where its packages are installed and the servers run.
    pub target: Option<PlanTarget>,
}

/// Where a smoke cluster's servers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SmokeFrom {
    /// The staged installation.
    Stage,
    /// The binary tarball `package` made (what ships).
    Tarball,
}

impl Run {
    /// The command line as it runs: escalation, program, `-jN`, arguments.
    pub fn command_line(&self) -> Vec<String> {
        let mut line = Vec::new();
        line.extend(self.escalate.iter().cloned());
        let mut args = self.argv.iter();
        line.extend(args.next().cloned());
        if let Some(jobs) = self.jobs {
            line.push(format!("-j{jobs}"));
        }
        line.extend(args.cloned());
        line
    }
}

impl Plan {
    pub fn steps_in<'a>(&'a self, phases: &'a [Phase]) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps
            .iter()
            .filter(move |step| phases.contains(&step.phase))
    }

    pub fn step(&self, id: &StepId) -> Option<&Step> {
        self.steps.iter().find(|step| &step.id == id)
    }

    /// The fetch step of a component, which its unpack step unpacks.
    pub fn fetch_of(&self, component: &str) -> Option<&Fetch> {
        match &self.step(&StepId::fetch(component))?.action {
            Action::Fetch(fetch) => Some(fetch),
            _ => None,
        }
    }

    /// The smoke step's action: every plan has one.
    pub fn smoke(&self) -> &Smoke {
        self.steps
            .iter()
            .find_map(|step| match &step.action {
                Action::Smoke(smoke) => Some(smoke),
                _ => None,
            })
            .expect("every plan has a smoke step")
    }
}

/// `stage` joined with an absolute prefix: `/x/stage` + `/usr/pgsql-15`.
pub fn join_prefix(stage: &Path, prefix: &str) -> PathBuf {
    stage.join(prefix.trim_start_matches('/'))
}

/// Quote an argument for display the way a POSIX shell would read it back.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A byte count in the largest binary unit that divides it: `4 GiB`.
pub fn size_text(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}
