//! The command line, in one place. Each doc comment is the `--help` text.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::{
    input::platform::PackageFormat,
    plan::{
        checks::{CheckId, Network, Tls},
        SmokeFrom,
    },
};

/// bdr-dist: fetch, build, package and smoke-test multi-master PostgreSQL
/// (postgres-bdr 9.4 + BDR 1.0, or PostgreSQL 15 + pglogical), on Linux and OpenBSD.
///
/// Everything is written under target/ (downloads/, sets/<set>/{src,stage,dist,logs}).
/// Exit status: 0 success, 1 failure, 2 invalid input (flags, recipes, platforms).
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    propagate_version = true
)]
pub struct Flags {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything for a set: fetch, build, package, smoke; only what is not done yet, then a report.
    Dist(Dist),
    /// Download, verify and unpack the set's sources into the cache.
    Fetch(Fetch),
    /// Configure, compile and stage-install the server, contrib and plugin.
    Build(Build),
    /// Make packages from the stage: RPM + SRPM, binary tarball, .deb, Debian source package (.dsc), OpenBSD package.
    Package(Package),
    /// Judge the RPMs and .debs with rpmlint and lintian, through packaging/'s filter files.
    Lint(Lint),
    /// Rebuild the shipped SRPM (rpmbuild, fresh HOME and _topdir) and .dsc (sbuild, fresh root of its target) and compare every binary RPM and .deb, byte for byte.
    VerifyRebuild(VerifyRebuild),
    /// Bring up a cluster of real nodes from the stage and prove every node replicates to every other.
    Smoke(Smoke),
    /// Copy the finished stage into the real prefix; the only step that escalates.
    Install(Install),
    /// Print every step a full run would take, and run nothing.
    Plan(PlanFlags),
    /// Check host prerequisites and print the command that installs each gap.
    Doctor(Doctor),
    /// Remove what the tool wrote under target/.
    Clean(Clean),
    /// Prepare this host for the test suite, then run every test (the README's test command).
    Test(Test),
    /// Benchmarks side by side with the commands a person would type; a table of ratios.
    Bench(Bench),
    /// List the distribution releases `--target` builds for, and what each is made from.
    Targets(Targets),
    /// Check a dist directory or a downloaded release: SHA256SUMS and its signature, each RPM's and the OpenBSD package's signature, the SBOM.
    Verify(Verify),
}

/// Which recipe set, from which directory, for which platform.
#[derive(Debug, Args, Clone)]
pub struct SetArgs {
    /// Recipe set: a file <SET>.toml in the recipe directory (bdr94, pg15-pglogical).
    #[arg(long, default_value = "bdr94", env = "BDR_DIST_SET")]
    pub set: String,
    /// Directory of recipe sets, to bring your own [default: recipes/ of this repo].
    #[arg(long, env = "BDR_DIST_RECIPES", value_name = "DIR", value_parser = parse_directory)]
    pub recipes: Option<PathBuf>,
    /// Platform to use: linux or openbsd [default: this host's].
    #[arg(long)]
    pub platform: Option<String>,
    /// Directory of platform files, to bring your own [default: platforms/ of this repo].
    #[arg(long, env = "BDR_DIST_PLATFORMS", value_name = "DIR", value_parser = parse_directory)]
    pub platforms: Option<PathBuf>,
    /// Distribution releases to build for, comma-separated (`cargo xtask targets` lists
    /// them): each is built, packaged and proven in a clean root of its own, under
    /// target/targets/<target>/. `host` is this machine, as it is.
    #[arg(
        long = "target",
        value_name = "NAME[,NAME...]",
        default_value = "host",
        value_delimiter = ',',
        value_parser = parse_target_name
    )]
    pub targets: Vec<String>,
    /// Directory of target files, to bring your own [default: targets/ of this repo].
    #[arg(long = "targets", env = "BDR_DIST_TARGETS", value_name = "DIR", value_parser = parse_directory)]
    pub targets_dir: Option<PathBuf>,
}

impl SetArgs {
    /// The same selection, for one of its targets.
    pub fn for_target(&self, target: &str) -> SetArgs {
        SetArgs {
            targets: vec![target.to_owned()],
            ..self.clone()
        }
    }
}

/// A target name: a plain name, as its file's stem is.
fn parse_target_name(text: &str) -> Result<String, String> {
    crate::input::names::check_plain_name(text).map(|()| text.to_owned())
}

/// What a run may do about a host that lacks what it needs.
#[derive(Debug, Args, Clone, Default)]
pub struct SetupArgs {
    /// Do not install missing host prerequisites (packages, the smoke user):
    /// stop and name the command that would. Without it, a run as root (or
    /// with sudo/doas) installs them with the platform's package manager first.
    #[arg(long)]
    pub no_install: bool,
}

/// Where sources come from.
#[derive(Debug, Args, Clone, Default)]
pub struct MirrorArgs {
    /// Mirror URL or directory tried before each recipe URL; flat, by the recipe's file
    /// name. Repeatable; the environment variable takes a comma-separated list.
    #[arg(
        long = "mirror",
        value_name = "URL|DIR",
        env = "BDR_DIST_MIRROR",
        value_delimiter = ',',
        value_parser = parse_mirror
    )]
    pub mirrors: Vec<String>,
}

/// A directory that exists: a recipe or platform directory that is not
/// one would only show up later as a set or platform that "does not exist".
fn parse_directory(text: &str) -> Result<PathBuf, String> {
    if Path::new(text).is_dir() {
        Ok(PathBuf::from(text))
    } else {
        Err(format!("`{text}` is not a directory"))
    }
}

/// A mirror: an existing directory, a `file://` URL naming one, or an
/// `http://` or `https://` URL with a host. Anything else (a file, a
/// typo, another scheme) would fail to open for every source and fall
/// through to the recipe's URLs: the run would go to the network, or pass
/// on what the cache holds, without a word about the mirror.
fn parse_mirror(text: &str) -> Result<String, String> {
    let expected =
        "a mirror is an existing directory, a file:// URL of one, or an http:// or https:// URL";
    if let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    {
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || !text.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "`{text}` is not a mirror URL: it needs a host, and no spaces or control characters"
            ));
        }
        return Ok(text.to_owned());
    }
    if let Some(path) = text.strip_prefix("file://") {
        return if path.starts_with('/') && Path::new(path).is_dir() {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "`{text}` names no directory: {expected} (file:///absolute/directory)"
            ))
        };
    }
    if text.contains("://") {
        return Err(format!("`{text}`: unknown scheme; {expected}"));
    }
    if Path::new(text).is_dir() {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}` is not a directory; {expected}"))
    }
}

/// `package --out`: a directory, or a path that can become one, whose
/// nearest existing ancestor is a directory; not a file (`/etc/passwd`) or
/// a path below one, which would fail only once every package was made.
fn parse_out_dir(text: &str) -> Result<PathBuf, String> {
    let absolute = std::path::absolute(text).map_err(|error| format!("`{text}`: {error}"))?;
    let existing = absolute
        .ancestors()
        .find(|ancestor| ancestor.exists())
        .unwrap_or(Path::new("/"));
    if existing.is_dir() {
        Ok(PathBuf::from(text))
    } else if existing == absolute {
        Err(format!("`{text}` exists and is not a directory"))
    } else {
        Err(format!(
            "`{text}` cannot be made: {} is not a directory",
            existing.display()
        ))
    }
}

/// An install prefix, as recipes and platforms must name one
/// ([`names::check_absolute_path`](crate::input::names::check_absolute_path)).
fn parse_prefix(text: &str) -> Result<String, String> {
    crate::input::names::check_absolute_path(text).map(|()| text.to_owned())
}

/// A user to run servers as: a name `useradd` takes and no command reads
/// as an option.
fn parse_user(text: &str) -> Result<String, String> {
    crate::input::names::check_user_name(text).map(|()| text.to_owned())
}

/// How sources are fetched and checked.
#[derive(Debug, Args, Clone)]
pub struct FetchArgs {
    /// Also refuse bytes whose sha256 differs from the set's lock file (for CI
    /// and release builds); the recipe's pins are enforced on every run anyway.
    #[arg(long)]
    pub locked: bool,
    /// Seconds to wait for a connection.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub connect_timeout: u64,
    /// Seconds to wait for a response, or for the next bytes of one, before
    /// retrying (a retry resumes where the transfer stopped).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub read_timeout: u64,
    /// Seconds one URL may take in all, however steadily it sends; what
    /// arrived is kept, and the next run resumes it.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub download_timeout: u64,
}

impl FetchArgs {
    pub fn options(&self) -> crate::sources::fetch::FetchOptions {
        crate::sources::fetch::FetchOptions {
            locked: self.locked,
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout),
            read_timeout: std::time::Duration::from_secs(self.read_timeout),
            total_timeout: std::time::Duration::from_secs(self.download_timeout),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct Dist {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[command(flatten)]
    pub mirror: MirrorArgs,
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// Package formats, comma-separated [default: the platform's].
    #[arg(long, value_delimiter = ',')]
    pub format: Option<Vec<PackageFormat>>,
    #[command(flatten)]
    pub publish: PublishArgs,
    #[command(flatten)]
    pub rpm_dist: RpmDistArgs,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct Fetch {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub mirror: MirrorArgs,
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// Record the sha256 of the bytes fetched (after they passed the recipe's
    /// pins) in the set's lock file, `<recipes>/<set>.lock`.
    #[arg(long, conflicts_with = "locked")]
    pub pin: bool,
    /// Print each source (file, URL, sha256, tree, cached or not) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct Build {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[command(flatten)]
    pub mirror: MirrorArgs,
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// Parallel make jobs [default: this machine's cores plus one].
    #[arg(long, short = 'j')]
    pub jobs: Option<u32>,
    /// Do not put ccache in front of the compiler, even when it is installed.
    #[arg(long)]
    pub no_ccache: bool,
    /// Rerun every step, even those whose stamp says they are done.
    #[arg(long)]
    pub force: bool,
    /// Print what ran and what was fresh, step by step, as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct Lint {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    /// Print each linter's counts as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `rpmbuild --rebuild` of a release's SRPM, as a build farm or anyone who
/// downloaded it would, and each binary RPM compared with the shipped one.
/// Exit status 1 when any differs; the first differing file (or header tag)
/// is named. A signed shipped RPM matches when all but its signature does.
/// rpmbuild runs the SRPM's scripts as you: check a downloaded release with
/// `cargo xtask verify` first, and rebuild as an unprivileged user.
#[derive(Debug, Args)]
pub struct VerifyRebuild {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    /// The release directory [default: the set's dist/, or the target's]: its SRPM is
    /// rebuilt by rpmbuild, its .dsc (with --target, the release it is for) by sbuild
    /// in a fresh root of that release at another build path; each binary RPM and
    /// .deb is compared byte for byte with the one shipped. With both, --json prints
    /// {"rpm": ..., "dsc": ...}.
    pub dir: Option<PathBuf>,
    /// Print each artifact's verdict as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How the artifacts leave the building: signed, and in repositories.
#[derive(Debug, Args, Clone, Default)]
pub struct PublishArgs {
    /// Sign with this GnuPG key (fingerprint, id or user id, from the keyring
    /// of `GNUPGHOME` or ~/.gnupg): RPMs and the SRPM with rpmsign, and a
    /// detached armored `SHA256SUMS.asc`. Nothing of the key is written or logged.
    #[arg(long, value_name = "KEY")]
    pub sign: Option<String>,
    /// Sign the OpenBSD package with this signify secret key (`KEY.sec`, with
    /// its `KEY.pub` beside it), as OpenBSD signs its packages.
    #[arg(long, value_name = "FILE")]
    pub signify_key: Option<PathBuf>,
    /// Also lay out the packages as repositories: `repo/rpm/` (createrepo_c
    /// metadata and a .repo file) and `repo/deb/` (a flat apt repository),
    /// signed with `--sign`'s key when given.
    #[arg(long)]
    pub repo: bool,
    /// Where `repo/` will be published (`https://...` or `file:///...`): the
    /// `.repo` file's `baseurl` is URL/rpm, the apt source's URL/deb
    /// [default: the file:// URL of the directory].
    #[arg(long, value_name = "URL", requires = "repo", value_parser = parse_repo_url)]
    pub repo_url: Option<String>,
}

/// A URL that a .repo file and an apt source can carry: http, https or
/// file, with nothing that would end the line or start a new key.
fn parse_repo_url(text: &str) -> Result<String, String> {
    let scheme_ok = ["https://", "http://", "file:///"]
        .iter()
        .any(|scheme| text.starts_with(scheme) && text.len() > scheme.len());
    let characters_ok = text
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '[' | ']' | '"' | '\\'));
    if scheme_ok && characters_ok {
        Ok(text.trim_end_matches('/').to_owned())
    } else {
        Err(format!(
            "`{text}` is not a repository URL: use http://, https:// or file:/// and no spaces, quotes or brackets"
        ))
    }
}

impl PublishArgs {
    /// Put these choices into the plan.
    pub fn apply(&self, options: &mut crate::plan::PlanOptions) {
        if self.sign.is_some() || self.signify_key.is_some() {
            options.signing = Some(crate::plan::Signing {
                gpg_key: self.sign.clone(),
                signify_key: self.signify_key.clone(),
            });
        }
        options.repo = self.repo;
        options.repo_url = self.repo_url.clone();
    }
}

/// What the RPMs say they are for.
#[derive(Debug, Args, Clone, Default)]
pub struct RpmDistArgs {
    /// The RPMs' dist tag (el8, el9, el10, fc40, ...): their release becomes
    /// `<release>.<TAG>` and their file names carry it. The RPM step fails if
    /// their ELF files need a newer glibc than that release ships [default:
    /// this host's `rpm --eval %{?dist}`; none where rpm defines no dist, as on Debian].
    #[arg(long, value_name = "TAG", value_parser = crate::input::dist_tag::parse_known)]
    pub dist: Option<String>,
}

impl RpmDistArgs {
    /// Put the choice into the plan; without one, the host's stays.
    pub fn apply(&self, options: &mut crate::plan::PlanOptions) {
        if let Some(tag) = &self.dist {
            options.rpm_dist = crate::plan::RpmDist {
                tag: Some(tag.clone()),
                from_flag: true,
            };
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct Package {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    /// Package formats, comma-separated: rpm, tarball, deb, dsc (the Debian source package), openbsd [default: the platform's, or the target's; a target's .debs are sbuild's of its .dsc, which is then made first].
    #[arg(long, value_delimiter = ',')]
    pub format: Option<Vec<PackageFormat>>,
    /// Make the packages again even when the stage has not changed since the last time.
    #[arg(long)]
    pub force: bool,
    /// The packages' release (`-2` of the same version: a packaging-only
    /// change) instead of the recipe's.
    #[arg(long, value_parser = parse_release)]
    pub release: Option<String>,
    /// Write the packages into this directory instead of target/sets/<set>/dist.
    #[arg(long, value_name = "DIR", value_parser = parse_out_dir)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub publish: PublishArgs,
    #[command(flatten)]
    pub rpm_dist: RpmDistArgs,
}

/// A release as RPM and dpkg both accept it, by the rule recipes follow
/// ([`names::check_version`](crate::input::names::check_version)).
fn parse_release(text: &str) -> Result<String, String> {
    crate::input::names::check_version(text).map(|()| text.to_owned())
}

#[derive(Debug, Args, Clone)]
pub struct Smoke {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    /// Number of nodes, 2 to 5.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=5))]
    pub nodes: u32,
    /// Leave the cluster running and print how to reach and stop it.
    #[arg(long)]
    pub keep: bool,
    /// Unprivileged user that runs the servers when run as root [default: the
    /// platform's throwaway smoke user, bdr-dist-smoke on Linux].
    #[arg(long, value_name = "USER", value_parser = parse_user)]
    pub run_as: Option<String>,
    /// Run the servers from the stage, or from the binary tarball that `package` made.
    #[arg(long, value_enum, default_value = "stage")]
    pub from: SmokeFrom,
    /// The checks to run: `all`, or names separated by commas (`join` always
    /// runs; see --list-checks). A check the set's driver cannot do is
    /// reported as not applicable.
    #[arg(long, value_name = "NAMES", default_value = "all", value_parser = parse_checks)]
    pub checks: CheckSelection,
    /// Print every check, what it proves and which drivers can do it, then exit.
    #[arg(long)]
    pub list_checks: bool,
    /// Where the nodes live: all on 127.0.0.1, or each in a network namespace
    /// of its own on a private bridge, with its own address (needs root).
    #[arg(long, value_enum, default_value = "loopback")]
    pub network: Network,
    /// TLS between the nodes (a throwaway CA, `hostssl` only, sslmode=verify-full):
    /// `auto` uses it when the server was built with OpenSSL.
    #[arg(long, value_enum, default_value = "auto")]
    pub tls: Tls,
    /// Print the outcome (cluster, nodes, checks) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The checks `--checks` selected, in run order.
#[derive(Debug, Clone)]
pub struct CheckSelection(pub Vec<CheckId>);

fn parse_checks(text: &str) -> Result<CheckSelection, String> {
    crate::plan::checks::select(text).map(CheckSelection)
}

#[derive(Debug, Args)]
pub struct Install {
    #[command(flatten)]
    pub set: SetArgs,
    /// Where to install [default: the set's prefix on the platform].
    #[arg(long, value_name = "P", value_parser = parse_prefix)]
    pub prefix: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct PlanFlags {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub mirror: MirrorArgs,
    /// Print the plan as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Parallel make jobs to plan for [default: this machine's cores plus one].
    #[arg(long, short = 'j')]
    pub jobs: Option<u32>,
    /// Package formats, comma-separated [default: the platform's].
    #[arg(long, value_delimiter = ',')]
    pub format: Option<Vec<PackageFormat>>,
    /// Install prefix for the install step [default: the set's prefix].
    #[arg(long, value_name = "P", value_parser = parse_prefix)]
    pub prefix: Option<String>,
    /// Smoke cluster size to plan for.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=5))]
    pub nodes: u32,
    #[command(flatten)]
    pub rpm_dist: RpmDistArgs,
}

#[derive(Debug, Args)]
pub struct Doctor {
    #[command(flatten)]
    pub set: SetArgs,
    /// Package formats whose tools to check, comma-separated [default: the platform's].
    #[arg(long, value_delimiter = ',')]
    pub format: Option<Vec<PackageFormat>>,
    /// Install what is missing (escalating with sudo/doas only when not root).
    #[arg(long)]
    pub fix: bool,
    /// Unprivileged user for smoke clusters, checked (and created by --fix)
    /// when running as root [default: the platform's smoke user].
    #[arg(long, value_name = "USER", value_parser = parse_user)]
    pub run_as: Option<String>,
    /// Also the test suite's own tools (what `cargo xtask test` installs).
    #[arg(long)]
    pub tests: bool,
}

#[derive(Debug, Args)]
pub struct Clean {
    /// Only this set's work directory [default: every set]. Waits for a run
    /// that holds the set.
    #[arg(long)]
    pub set: Option<String>,
    /// Also empty the download cache.
    #[arg(long)]
    pub downloads: bool,
    /// Also remove every target's clean roots (target/roots/), made again
    /// by mmdebstrap when next needed.
    #[arg(long)]
    pub roots: bool,
}

#[derive(Debug, Args)]
pub struct Test {
    /// Run the suite inside a fresh Debian minbase root made by mmdebstrap
    /// from this host's apt sources, with only the Rust toolchain and the
    /// cargo registry brought in (read-only): what CI runs, so that an
    /// install step the suite relies on but does not perform fails here too.
    #[arg(long)]
    pub fresh_root: bool,
    /// With --fresh-root: keep the root (under target/fresh-root/) after the run.
    #[arg(long, requires = "fresh_root")]
    pub keep_root: bool,
    /// Arguments passed on to `cargo test` (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_test_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Bench {
    #[command(flatten)]
    pub set: SetArgs,
    #[command(flatten)]
    pub mirror: MirrorArgs,
    /// Skip the three cold builds (by hand, with the tool, serial), which take most of the time.
    #[arg(long)]
    pub skip_builds: bool,
    /// Also time the first `cargo xtask` on a fresh clone (compiling the tool in an
    /// empty target directory) at REV and for this working tree, alternately.
    #[arg(long, value_name = "REV")]
    pub compile_against: Option<String>,
    /// Rounds of that compile, each one old and one new.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "compile_against"
    )]
    pub compile_rounds: u32,
    /// Only the compile of --compile-against: no set is built, packaged or smoke-tested.
    #[arg(long, requires = "compile_against")]
    pub compile_only: bool,
    /// Only this: a cold build of the set inside TARGET's clean root (made
    /// first, untimed) against the same cold build on this host, alternately,
    /// N rounds (--root-build-rounds).
    #[arg(long, value_name = "TARGET", value_parser = parse_target_name)]
    pub root_build: Option<String>,
    /// Rounds of --root-build, each one in the root and one on the host.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "root_build")]
    pub root_build_rounds: u32,
}

#[derive(Debug, Args)]
pub struct Verify {
    /// The directory: a dist/ (`target/sets/<set>/dist`, or `package --out`'s),
    /// or the files of a release, downloaded with their SHA256SUMS.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The publisher's GnuPG public key (armored or binary), obtained apart
    /// from the files, to check SHA256SUMS.asc and the RPMs against [default:
    /// the RPM-GPG-KEY-* in DIR, which proves the files intact, not who made them].
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// The signify public key to check the OpenBSD package against [default:
    /// the *.signify.pub in DIR, with the same caveat].
    #[arg(long, value_name = "FILE")]
    pub signify_pub: Option<PathBuf>,
    /// Print the checks as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct Targets {
    /// Directory of target files [default: targets/ of this repo].
    #[arg(long = "targets", env = "BDR_DIST_TARGETS", value_name = "DIR", value_parser = parse_directory)]
    pub targets_dir: Option<PathBuf>,
    /// Print them as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
