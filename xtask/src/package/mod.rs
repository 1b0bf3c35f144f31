//! `cargo xtask package`: the stage, split into PGDG-style packages, in the
//! formats release engineers ship (RPM + SRPM, binary tarball, .deb, OpenBSD).
//!
//! Every format is reproducible: entries sorted, times clamped to
//! SOURCE_DATE_EPOCH (from the environment, else the newest time in the
//! sources, never the clock), owner 0:0 without names.

mod deb;
mod openbsd;
mod rpm;
pub mod tarball;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context};
use serde::Serialize;
use xshell::Shell;

use crate::{
    exec, files, flags, host,
    input::platform::PackageFormat,
    plan::{self, Action, Package, Phase, Plan},
    sources::fetch,
};

/// Client programs: the main package, as in PGDG's `postgresqlNN`.
const CLIENT_PROGRAMS: &[&str] = &[
    "clusterdb",
    "createdb",
    "createlang",
    "createuser",
    "dropdb",
    "droplang",
    "dropuser",
    "pg_basebackup",
    "pg_dump",
    "pg_dumpall",
    "pg_isready",
    "pg_receivewal",
    "pg_receivexlog",
    "pg_recvlogical",
    "pg_restore",
    "pg_verifybackup",
    "pgbench",
    "psql",
    "reindexdb",
    "vacuumdb",
];

/// What a subpackage holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Kind {
    Clients,
    Libs,
    Server,
    Contrib,
    Devel,
    /// A plugin, by its subpackage name.
    Plugin(String),
}

impl Kind {
    /// The suffix after the base name; `None` for the main (clients) package.
    pub fn suffix(&self) -> Option<&str> {
        match self {
            Kind::Clients => None,
            Kind::Libs => Some("libs"),
            Kind::Server => Some("server"),
            Kind::Contrib => Some("contrib"),
            Kind::Devel => Some("devel"),
            Kind::Plugin(name) => Some(name),
        }
    }

    /// Sibling packages this one needs, at the exact same version.
    pub fn requires(&self) -> Vec<Kind> {
        match self {
            Kind::Clients => vec![Kind::Libs],
            Kind::Libs => vec![],
            Kind::Server => vec![Kind::Clients, Kind::Libs],
            Kind::Contrib => vec![Kind::Server, Kind::Libs],
            Kind::Devel => vec![Kind::Clients, Kind::Libs],
            Kind::Plugin(_) => vec![Kind::Server, Kind::Contrib],
        }
    }

    pub fn description(&self) -> String {
        match self {
            Kind::Clients => "client programs (psql, pg_dump, ...)".into(),
            Kind::Libs => "shared libraries for clients (libpq, ecpg)".into(),
            Kind::Server => "the server, its modules and data files".into(),
            Kind::Contrib => "contributed modules (btree_gist, ...)".into(),
            Kind::Devel => "headers, static libraries, pg_config and PGXS".into(),
            Kind::Plugin(name) => format!("the {name} extension"),
        }
    }
}

/// One subpackage: its kind and files (paths relative to the stage root,
/// e.g. `usr/pgsql-15/bin/psql`).
#[derive(Debug, Clone, Serialize)]
pub struct Subpackage {
    pub kind: Kind,
    pub files: Vec<String>,
}

/// Everything the formats need, computed once.
pub struct Contents<'a> {
    pub package: &'a Package,
    pub subpackages: Vec<Subpackage>,
    pub epoch: u64,
    pub manifest: Manifest,
    /// The stage directory of the prefix, e.g. `.../stage/usr/pgsql-15`.
    pub stage_prefix: PathBuf,
    pub arch: String,
}

impl Contents<'_> {
    pub fn name_of(&self, kind: &Kind) -> String {
        match kind.suffix() {
            Some(suffix) => format!("{}-{suffix}", self.package.name),
            None => self.package.name.clone(),
        }
    }

    /// The PGDG-compatible name this subpackage also provides (`postgresql94-server`).
    pub fn pgdg_name_of(&self, kind: &Kind) -> Option<String> {
        let base = self.package.provides.as_ref()?;
        match kind {
            Kind::Plugin(_) => None,
            _ => Some(
                kind.suffix()
                    .map_or_else(|| base.clone(), |suffix| format!("{base}-{suffix}")),
            ),
        }
    }

    pub fn all_files(&self) -> BTreeSet<&str> {
        self.subpackages
            .iter()
            .flat_map(|s| s.files.iter().map(String::as_str))
            .collect()
    }
}

/// The JSON manifest beside the tarball: what went in.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub set: String,
    pub platform: String,
    pub package: String,
    pub version: String,
    pub release: String,
    pub prefix: String,
    pub source_date_epoch: u64,
    pub sources: Vec<ManifestSource>,
    pub tools: BTreeMap<String, String>,
    pub subpackages: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestSource {
    pub component: String,
    pub version: String,
    pub file: String,
    pub urls: Vec<String>,
    /// The sha256 of the archive this build used (whichever URL served it).
    pub sha256: String,
    /// The git tree its entries were checked to make, when the recipe pins one.
    pub tree: Option<String>,
    /// The tagged commit the recipe names.
    pub commit: Option<String>,
}

/// The kind of a server file by its path below the prefix.
fn server_file_kind(relative: &str, versioned_libraries: &BTreeSet<String>) -> Kind {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    if let Some(program) = relative.strip_prefix("bin/") {
        return match program {
            "pg_config" | "ecpg" => Kind::Devel,
            _ if CLIENT_PROGRAMS.contains(&program) => Kind::Clients,
            _ => Kind::Server,
        };
    }
    if relative.starts_with("include/")
        || relative.starts_with("lib/pgxs/")
        || relative.starts_with("lib/pkgconfig/")
    {
        return Kind::Devel;
    }
    if let Some(library) = relative.strip_prefix("lib/") {
        if library.ends_with(".a") {
            return Kind::Devel;
        }
        if name.starts_with("lib") && name.contains(".so.") {
            return Kind::Libs;
        }
        // `libpq.so` beside `libpq.so.5` is the link-time name; `libpqwalreceiver.so`,
        // with no versioned twin, is a server module.
        if versioned_libraries.contains(library) {
            return Kind::Devel;
        }
    }
    Kind::Server
}

/// A file made for the packages rather than taken from the stage: the
/// systemd unit, its settings file and the ld.so configuration.
pub struct ExtraFile {
    pub kind: Kind,
    /// Absolute path on the installed system.
    pub path: String,
    pub text: String,
    /// Configuration the administrator may edit: kept across upgrades.
    pub config: bool,
}

pub fn extra_files(contents: &Contents<'_>) -> Vec<ExtraFile> {
    let package = contents.package;
    let fill = |template: &str| {
        template
            .replace("{name}", &package.name)
            .replace("{version}", &package.version)
            .replace("{prefix}", &package.prefix)
            .replace("{user}", &package.service_user)
    };
    vec![
        ExtraFile {
            kind: Kind::Server,
            path: format!("/usr/lib/systemd/system/{}.service", package.name),
            text: fill(include_str!("../../../packaging/server.service.in")),
            config: false,
        },
        ExtraFile {
            kind: Kind::Server,
            path: format!("/etc/sysconfig/{}", package.name),
            text: fill(include_str!("../../../packaging/server.sysconfig.in")),
            config: true,
        },
        ExtraFile {
            kind: Kind::Libs,
            path: format!("/etc/ld.so.conf.d/{}-libs.conf", package.name),
            text: fill(include_str!("../../../packaging/libs.ld.so.conf.in")),
            config: true,
        },
    ]
}

/// Split the stage into subpackages using the file lists the install steps recorded.
pub fn split(package: &Package, stamps: &Path) -> anyhow::Result<Vec<Subpackage>> {
    let prefix = package.prefix.trim_start_matches('/');
    let mut by_kind: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    for part in &package.parts {
        let list_path = exec::installed_files_path(stamps, &part.step);
        let list = fs::read_to_string(&list_path).with_context(|| {
            format!(
                "no record of the files step `{}` installed ({}): run `cargo xtask build --force`",
                part.step,
                list_path.display()
            )
        })?;
        let files: Vec<&str> = list.lines().filter(|line| !line.is_empty()).collect();
        let versioned: BTreeSet<String> = files
            .iter()
            .filter_map(|file| file.strip_prefix(prefix)?.strip_prefix("/lib/"))
            .filter_map(|library| {
                library
                    .split_once(".so.")
                    .map(|(stem, _)| format!("{stem}.so"))
            })
            .collect();
        for file in files {
            let Some(relative) = file
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('/'))
            else {
                bail!(
                    "step `{}` installed {file}, outside the prefix {}",
                    part.step,
                    package.prefix
                );
            };
            let kind = match &part.subpackage {
                None => server_file_kind(relative, &versioned),
                Some(name) if name == "contrib" => Kind::Contrib,
                Some(name) => Kind::Plugin(name.clone()),
            };
            by_kind.entry(kind).or_default().push(file.to_owned());
        }
    }
    Ok(by_kind
        .into_iter()
        .map(|(kind, mut files)| {
            files.sort();
            Subpackage { kind, files }
        })
        .collect())
}

/// SOURCE_DATE_EPOCH: the environment's, else the newest file time the
/// source archives carried (recorded when they were unpacked).
pub fn source_date_epoch(plan: &Plan) -> anyhow::Result<u64> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH=`{value}` is not a number of seconds"));
    }
    let mut newest = None;
    for step in &plan.steps {
        if let Action::Unpack(unpack) = &step.action {
            let path = crate::sources::archive::epoch_path(&unpack.dest);
            let text = fs::read_to_string(&path).with_context(|| {
                format!("cannot read {}: run `cargo xtask fetch`", path.display())
            })?;
            let epoch: u64 = text
                .trim()
                .parse()
                .with_context(|| format!("{} is not a number", path.display()))?;
            newest = newest.max(Some(epoch));
        }
    }
    newest.context("the plan unpacks no source")
}

fn first_line_of(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "not found".to_owned())
}

fn manifest(
    plan: &Plan,
    package: &Package,
    subpackages: &[Subpackage],
    epoch: u64,
) -> anyhow::Result<Manifest> {
    let cache = fetch::Cache::new(host::layout().downloads());
    let mut sources = Vec::new();
    for step in &plan.steps {
        let Action::Fetch(fetch) = &step.action else {
            continue;
        };
        let sha256 = match &fetch.sha256 {
            Some(sha256) => sha256.clone(),
            None => fetch::cached(fetch, &cache, &Default::default())?
                .map(|hit| hit.sha256)
                .with_context(|| {
                    format!(
                        "{} is not in the cache: run `cargo xtask fetch`",
                        fetch.file
                    )
                })?,
        };
        // The recipe's own URLs, not the mirror it came from: the manifest
        // says what went in, identically wherever it was built.
        let urls = fetch
            .urls
            .iter()
            .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
            .cloned();
        sources.push(ManifestSource {
            component: fetch.component.clone(),
            version: fetch.version.clone(),
            file: fetch.file.clone(),
            urls: urls.collect(),
            sha256,
            tree: fetch.tree.clone(),
            commit: fetch.commit.clone(),
        });
    }
    let tools = BTreeMap::from([
        ("cc".to_owned(), first_line_of("cc", &["--version"])),
        ("make".to_owned(), first_line_of("make", &["--version"])),
        ("flex".to_owned(), first_line_of("flex", &["--version"])),
        ("bison".to_owned(), first_line_of("bison", &["--version"])),
        ("bdr-dist".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    ]);
    Ok(Manifest {
        set: plan.set.clone(),
        platform: plan.platform.clone(),
        package: package.name.clone(),
        version: package.version.clone(),
        release: package.release.clone(),
        prefix: package.prefix.clone(),
        source_date_epoch: epoch,
        sources,
        tools,
        subpackages: subpackages
            .iter()
            .map(|s| (format!("{:?}", s.kind).to_lowercase(), s.files.len()))
            .collect(),
    })
}

/// `uname -m` style machine name of this host.
fn machine() -> String {
    match std::env::consts::ARCH {
        "x86" => "i686".to_owned(),
        other => other.to_owned(),
    }
}

/// Make every package step of `plan`; returns the artifacts written, in `dist`.
pub fn make_packages(plan: &Plan, steps: &[&Package]) -> anyhow::Result<Vec<PathBuf>> {
    let sh = Shell::new()?;
    let layout = host::layout();
    exec::require_complete_stage(&layout, &plan.set, &plan.stage)?;
    let Some(first) = steps.first() else {
        return Ok(Vec::new());
    };
    let stamps = layout.stamps(&plan.set);
    let subpackages = split(first, &stamps)?;
    let epoch = source_date_epoch(plan)?;
    let manifest = manifest(plan, first, &subpackages, epoch)?;
    let dist = &first.dist;
    fs::create_dir_all(dist).with_context(|| format!("cannot create {}", dist.display()))?;
    let mut artifacts = Vec::new();
    for package in steps {
        let contents = Contents {
            package,
            subpackages: subpackages.clone(),
            epoch,
            manifest: manifest.clone(),
            stage_prefix: plan::join_prefix(&package.stage, &package.prefix),
            arch: machine(),
        };
        let started = Instant::now();
        eprintln!(
            "{:>12} {} packages of {} {}-{}",
            "Packaging",
            package.format.as_str(),
            package.name,
            package.version,
            package.release
        );
        let made = match package.format {
            PackageFormat::Tarball => tarball::make(&contents)?,
            PackageFormat::Rpm => rpm::make(&sh, &contents, plan, &layout)?,
            PackageFormat::Deb => deb::make(&contents)?,
            PackageFormat::Openbsd => openbsd::make(&contents)?,
        };
        for artifact in &made {
            let size = fs::metadata(artifact).map(|m| m.len()).unwrap_or(0);
            eprintln!(
                "{:>12} {} ({})",
                "Wrote",
                artifact.display(),
                files::human_bytes(size)
            );
        }
        eprintln!(
            "{:>12} {} in {:.1}s",
            "Finished",
            package.format.as_str(),
            started.elapsed().as_secs_f64()
        );
        artifacts.extend(made);
    }
    write_checksums(dist)?;
    Ok(artifacts)
}

/// `SHA256SUMS` over every artifact in `dist`, as `sha256sum -c` reads it.
pub fn write_checksums(dist: &Path) -> anyhow::Result<()> {
    let mut names: Vec<String> = fs::read_dir(dist)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "SHA256SUMS" && !name.starts_with('.') && name != "report.json")
        .collect();
    names.sort();
    let mut text = String::new();
    for name in names {
        text.push_str(&format!(
            "{}  {name}\n",
            files::sha256_file(&dist.join(&name))?
        ));
    }
    files::write_atomically(&dist.join("SHA256SUMS"), text.as_bytes())
}

impl flags::Package {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        let mut options = host::plan_options(&selection, &host::facts());
        options.formats = self.format;
        let plan = plan::plan(&selection.set, &selection.platform, &options);
        let layout = host::layout();
        exec::require_complete_stage(&layout, &plan.set, &plan.stage)?;
        let executor = exec::Executor {
            plan: &plan,
            layout,
            force: self.force,
            fetch: Default::default(),
        };
        executor.run(&[Phase::Package], false)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_files_split_like_pgdg() {
        let versioned: BTreeSet<String> = ["libpq.so".to_owned()].into();
        let kind = |path| server_file_kind(path, &versioned);
        assert_eq!(kind("bin/psql"), Kind::Clients);
        assert_eq!(kind("bin/postgres"), Kind::Server);
        assert_eq!(kind("bin/pg_config"), Kind::Devel);
        assert_eq!(kind("lib/libpq.so.5.15"), Kind::Libs);
        assert_eq!(kind("lib/libpq.so"), Kind::Devel);
        assert_eq!(kind("lib/libpqwalreceiver.so"), Kind::Server);
        assert_eq!(kind("lib/libpgcommon.a"), Kind::Devel);
        assert_eq!(kind("include/server/postgres.h"), Kind::Devel);
        assert_eq!(kind("lib/pgxs/src/makefiles/pgxs.mk"), Kind::Devel);
        assert_eq!(kind("share/postgresql.conf.sample"), Kind::Server);
    }
}
