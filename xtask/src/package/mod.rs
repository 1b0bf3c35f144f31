//! Packages: the stage, split into PGDG-style packages, in the formats
//! release engineers ship (RPM + SRPM, binary tarball, .deb, OpenBSD).
//!
//! Every format is reproducible: entries sorted, times clamped to
//! SOURCE_DATE_EPOCH (from the environment, else the newest time in the
//! sources, never the clock), owner 0:0 without names.

mod deb;
mod dsc;
pub mod elf;
mod glibc;
pub mod identity;
pub mod lint;
pub mod manifest;
mod openbsd;
mod promise;
pub mod repo;
pub mod rpm;
pub mod sbom;
pub mod sbuild;
pub mod sign;
mod split;
pub mod tarball;
pub mod verify;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt, fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Context;
use serde::Serialize;

pub use self::manifest::{Manifest, ManifestSource};
use crate::{
    files,
    input::platform::PackageFormat,
    layout::Layout,
    plan::{self, Package, Plan, StepId},
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
#[derive(Clone)]
pub struct Contents<'a> {
    pub package: &'a Package,
    pub subpackages: Vec<Subpackage>,
    pub epoch: u64,
    pub manifest: Manifest,
    /// The stage directory of the prefix, e.g. `.../stage/usr/pgsql-15`.
    pub stage_prefix: PathBuf,
    pub arch: String,
    /// The licenses of the sources, as Debian's copyright file states them.
    pub copyright: String,
    /// Scratch space of this format's packaging, made afresh each run.
    pub work: PathBuf,
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

    /// `postgresql15-pglogical-15.18-1.linux-x86_64`: the name of the binary
    /// tarball, its manifest and the SBOM, without their extensions.
    pub fn stem(&self) -> String {
        let package = self.package;
        format!(
            "{}-{}-{}.{}-{}",
            package.name, package.version, package.release, self.manifest.platform, self.arch
        )
    }

    pub fn all_files(&self) -> BTreeSet<&str> {
        self.subpackages
            .iter()
            .flat_map(|s| s.files.iter().map(String::as_str))
            .collect()
    }
}

impl fmt::Display for Kind {
    /// The name in the manifest: `libs`, `server`, `plugin-bdr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Clients => f.write_str("clients"),
            Kind::Libs => f.write_str("libs"),
            Kind::Server => f.write_str("server"),
            Kind::Contrib => f.write_str("contrib"),
            Kind::Devel => f.write_str("devel"),
            Kind::Plugin(name) => write!(f, "plugin-{name}"),
        }
    }
}

/// A file made for the packages rather than taken from the stage: the setup
/// script, the systemd unit, its settings file, the socket directory's
/// tmpfiles entry and the ld.so configuration.
pub struct ExtraFile {
    pub kind: Kind,
    /// Absolute path on the installed system.
    pub path: String,
    pub text: String,
    /// Configuration the administrator may edit: kept across upgrades.
    pub config: bool,
    pub mode: u32,
}

pub fn extra_files(contents: &Contents<'_>) -> Vec<ExtraFile> {
    let package = contents.package;
    let fill = |template: &str| {
        template
            .replace("{name}", &package.name)
            .replace("{version}", &package.version)
            .replace("{prefix}", &package.prefix)
            .replace("{user}", &package.service.user)
            .replace("{home}", &package.service.home)
    };
    let extra = |kind: Kind, path: String, template: &str, config: bool, mode: u32| ExtraFile {
        kind,
        path,
        text: fill(template),
        config,
        mode,
    };
    vec![
        extra(
            Kind::Server,
            format!("{}/bin/{}-setup", package.prefix, package.name),
            include_str!("../../../packaging/server.setup.in"),
            false,
            0o755,
        ),
        extra(
            Kind::Server,
            format!("/usr/lib/systemd/system/{}.service", package.name),
            include_str!("../../../packaging/server.service.in"),
            false,
            0o644,
        ),
        extra(
            Kind::Server,
            format!("/usr/lib/tmpfiles.d/{}.conf", package.name),
            include_str!("../../../packaging/server.tmpfiles.in"),
            false,
            0o644,
        ),
        extra(
            Kind::Server,
            format!("/etc/sysconfig/{}", package.name),
            include_str!("../../../packaging/server.sysconfig.in"),
            true,
            0o644,
        ),
        extra(
            Kind::Libs,
            format!("/etc/ld.so.conf.d/{}-libs.conf", package.name),
            include_str!("../../../packaging/libs.ld.so.conf.in"),
            true,
            0o644,
        ),
    ]
}

/// Make the packages of one package step; returns the artifacts written, in
/// `dist`. `installed` holds, by install step, the files it added to the stage.
pub fn make(
    plan: &Plan,
    package: &Package,
    installed: &BTreeMap<StepId, Vec<String>>,
    layout: &Layout,
) -> anyhow::Result<Vec<PathBuf>> {
    // Keys are checked before anything is made: one that cannot sign stops
    // the run here, with nothing written.
    let signer = sign::Signer::prepare(package.signing.as_ref(), package.format)?;
    let subpackages = split::split(package, installed)?;
    let epoch = manifest::source_date_epoch(plan)?;
    let manifest = manifest::manifest(plan, package, &subpackages, epoch, layout)?;
    let dist = &package.dist;
    fs::create_dir_all(dist).with_context(|| format!("cannot create {}", dist.display()))?;
    let contents = Contents {
        package,
        subpackages,
        epoch,
        manifest,
        stage_prefix: plan::join_prefix(&package.stage, &package.prefix),
        arch: machine(),
        copyright: copyright(plan, package),
        work: layout.package_work(&plan.set, package.format),
    };
    if contents.work.exists() {
        fs::remove_dir_all(&contents.work)
            .with_context(|| format!("cannot empty {}", contents.work.display()))?;
    }
    let publication = repo::prepare(
        package,
        signer.as_ref().and_then(|signer| signer.gpg.as_ref()),
    );
    let started = Instant::now();
    eprintln!(
        "{:>12} {} packages of {} {}-{}",
        "Packaging", package.format, package.name, package.version, package.release
    );
    // The RPM and .deb writers check what they promise on the packages they
    // wrote, and remove them when it does not hold.
    let made = match package.format {
        PackageFormat::Tarball => tarball::make(&contents),
        PackageFormat::Rpm => rpm::make(&contents, plan, layout),
        // A target's .debs are sbuild's, of its source package.
        PackageFormat::Deb if package.target.is_some() => sbuild::make(&contents, layout),
        PackageFormat::Deb => deb::make(&contents),
        PackageFormat::Openbsd => openbsd::make(&contents),
        PackageFormat::Dsc => dsc::make(&contents, plan, layout),
    };
    let mut made = match made {
        Ok(made) => made,
        Err(error) => return Err(unlist_withdrawn(&contents, error)),
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
        package.format,
        started.elapsed().as_secs_f64()
    );
    // Signing comes after the reproducible artifacts are made, so the
    // unsigned bytes are the same with or without it.
    let mut signatures = BTreeMap::new();
    if let Some(signer) = &signer {
        let (keys, signed) = signer.sign_artifacts(package.format, &made, dist, &package.name)?;
        made.extend(keys);
        signatures = signed;
    }
    // After the packages are final (signed, when asked): the repository
    // holds copies of exactly what dist/ holds, and the SBOM describes it.
    repo::make(&contents, &publication, &made)?;
    sign::remove_stale_keys(signer.as_ref(), dist, &package.name)?;
    sbom::write(&contents)?;
    // The old signature goes first: if signing fails, none is left that
    // does not match.
    let old_signature = dist.join(sign::CHECKSUMS_SIGNATURE);
    if old_signature.exists() {
        fs::remove_file(&old_signature)
            .with_context(|| format!("cannot remove {}", old_signature.display()))?;
    }
    write_checksums(dist)?;
    if let Some(signature) = sign::Signer::sign_checksums(signer.as_ref(), dist)? {
        signatures.insert(dist.join(sign::CHECKSUMS_SIGNATURE), signature);
    }
    let record = layout.signatures(&plan.set, StepId::package(package.format));
    files::write_atomically(
        &record,
        &(serde_json::to_string_pretty(&signatures)? + "\n").into_bytes(),
    )?;
    Ok(made)
}

/// After a format's step failed (and took its packages out of `dist`): an
/// index made by an earlier run is rewritten over what `dist` now holds, so
/// `SHA256SUMS` and the SBOM list nothing that is not there; the checksums'
/// signature goes, as it no longer matches, and nothing is signed for a step
/// that failed. A `dist` without an index gets none.
fn unlist_withdrawn(contents: &Contents<'_>, error: anyhow::Error) -> anyhow::Error {
    let dist = &contents.package.dist;
    if !dist.join("SHA256SUMS").exists() {
        return error;
    }
    let rewrite = || -> anyhow::Result<()> {
        let signature = dist.join(sign::CHECKSUMS_SIGNATURE);
        if signature.exists() {
            fs::remove_file(&signature)
                .with_context(|| format!("cannot remove {}", signature.display()))?;
        }
        if dist.join(sbom::file_name(contents)).exists() {
            sbom::write(contents)?;
        }
        write_checksums(dist)
    };
    match rewrite() {
        Ok(()) => error,
        Err(rewriting) => error.context(format!(
            "{} could not be rewritten after the step failed ({rewriting:#})",
            dist.join("SHA256SUMS").display()
        )),
    }
}

/// Debian's machine-readable copyright file: each source's license file,
/// read from its unpacked tree, under the recipe's license name.
fn copyright(plan: &Plan, package: &Package) -> String {
    let mut text = format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: {}\nSource: {}\n",
        package.name, package.url
    );
    for step in plan.steps_in(&[plan::Phase::Fetch]) {
        let plan::Action::Unpack(unpack) = &step.action else {
            continue;
        };
        let license = ["COPYRIGHT", "LICENSE", "COPYING", "LICENSE.md"]
            .iter()
            .find_map(|name| fs::read_to_string(unpack.dest.join(name)).ok())
            .unwrap_or_else(|| format!("See the {} sources.", unpack.component));
        text.push_str(&format!(
            "\nFiles: {}/*\nCopyright: the {} authors\nLicense: {}\n",
            unpack.component, unpack.component, package.license
        ));
        for line in license.trim_end().lines() {
            let line = line.trim_end();
            text.push_str(if line.is_empty() { " ." } else { " " });
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// `Tue, 14 Nov 2023 22:13:20 +0000` (RFC 2822, as Debian changelogs date
/// entries) and `Tue Nov 14 2023` (as RPM's `%changelog` does), for `epoch`.
pub fn dates(epoch: u64) -> (String, String) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day) = civil(epoch);
    let seconds = epoch % 86_400;
    let weekday = DAYS[(epoch / 86_400 % 7) as usize];
    let month = MONTHS[(month - 1) as usize];
    (
        format!(
            "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} +0000",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        ),
        format!("{weekday} {month} {day:02} {year}"),
    )
}

/// `2023-11-14T22:13:20Z` (RFC 3339 in UTC, as SPDX dates its documents), for `epoch`.
pub fn timestamp(epoch: u64) -> String {
    let (year, month, day) = civil(epoch);
    let seconds = epoch % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The UTC year, month (1-12) and day of `epoch` (Howard Hinnant's civil_from_days).
fn civil(epoch: u64) -> (i64, i64, i64) {
    let z = (epoch / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// What the one changelog entry of every package says.
pub fn changelog_entry(contents: &Contents<'_>) -> String {
    let sources: Vec<String> = contents
        .manifest
        .sources
        .iter()
        .map(|source| format!("{} {}", source.component, source.version))
        .collect();
    let from = if sources.is_empty() {
        contents.package.name.clone()
    } else {
        sources.join(", ")
    };
    format!("Built by bdr-dist from {from}.")
}

/// `uname -m` style machine name of this host.
pub fn machine() -> String {
    match std::env::consts::ARCH {
        "x86" => "i686".to_owned(),
        other => other.to_owned(),
    }
}

/// Whether `SHA256SUMS` lists a file of `dist` by this name: everything but
/// itself, its signature (made after it), the run's report and hidden files
/// (temporary files of writes under way).
pub fn is_checksummed(name: &str) -> bool {
    name != "SHA256SUMS"
        && name != sign::CHECKSUMS_SIGNATURE
        && name != "report.json"
        && !name.starts_with('.')
}

/// `SHA256SUMS` over every artifact in `dist`, as `sha256sum -c` reads it.
pub fn write_checksums(dist: &Path) -> anyhow::Result<()> {
    let mut names: Vec<String> = fs::read_dir(dist)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| is_checksummed(name))
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

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::plan::PartKind;

    /// Contents of a small stand-in package, the same on every machine.
    pub fn fixture(check: impl FnOnce(&Contents<'_>)) {
        let package = Package {
            format: PackageFormat::Rpm,
            name: "postgresql15-pglogical".into(),
            version: "15.18".into(),
            release: "1".into(),
            prefix: "/usr/pgsql-15".into(),
            stage: PathBuf::from("/t/stage"),
            dist: PathBuf::from("/t/dist"),
            parts: vec![crate::plan::PackagePart {
                step: StepId::build("pglogical", None, crate::input::recipe::StepKind::Install),
                component: "pglogical".into(),
                part: PartKind::Plugin("pglogical".into()),
            }],
            provides: Some("postgresql15".into()),
            summary: "PostgreSQL 15 with pglogical 2".into(),
            license: "PostgreSQL".into(),
            url: "https://www.postgresql.org/".into(),
            maintainer: "Release Engineering <release-engineering@example.com>".into(),
            platform: "linux".into(),
            os: "linux".into(),
            service: crate::plan::ServiceAccount {
                user: "postgres".into(),
                id: None,
                home: "/var/lib/pgsql".into(),
            },
            tools: BTreeMap::from([("make".to_owned(), "make".to_owned())]),
            signing: None,
            repo: false,
            repo_url: None,
            root: None,
            target: None,
            rpm_dist: Some(Default::default()),
            build_depends: Vec::new(),
            build_requires: vec!["gcc".into(), "make".into()],
        };
        let subpackage = |kind: Kind, files: &[&str]| Subpackage {
            kind,
            files: files.iter().map(|f| f.to_string()).collect(),
        };
        let subpackages = vec![
            subpackage(Kind::Clients, &["usr/pgsql-15/bin/psql"]),
            subpackage(
                Kind::Libs,
                &[
                    "usr/pgsql-15/lib/libpq.so.5",
                    "usr/pgsql-15/lib/libpq.so.5.15",
                ],
            ),
            subpackage(
                Kind::Server,
                &[
                    "usr/pgsql-15/bin/postgres",
                    "usr/pgsql-15/share/postgresql.conf.sample",
                ],
            ),
            subpackage(Kind::Contrib, &["usr/pgsql-15/lib/btree_gist.so"]),
            subpackage(
                Kind::Plugin("pglogical".into()),
                &["usr/pgsql-15/lib/pglogical.so"],
            ),
        ];
        let manifest = Manifest {
            set: "pg15-pglogical".into(),
            platform: "linux".into(),
            package: package.name.clone(),
            version: package.version.clone(),
            release: package.release.clone(),
            prefix: package.prefix.clone(),
            source_date_epoch: 1_700_000_000,
            sources: Vec::new(),
            tools: BTreeMap::new(),
            subpackages: BTreeMap::new(),
            target: None,
            rpm: None,
        };
        let contents = Contents {
            package: &package,
            subpackages,
            epoch: 1_700_000_000,
            manifest,
            stage_prefix: PathBuf::from("/t/stage/usr/pgsql-15"),
            arch: "x86_64".into(),
            copyright: "Files: *\nCopyright: The PostgreSQL Global Development Group\nLicense: PostgreSQL\n".into(),
            work: PathBuf::from("/t/work"),
        };
        check(&contents);
    }

    /// The setup script, the unit, the tmpfiles entry and the settings, as
    /// the packages install them.
    #[test]
    fn the_files_made_for_the_packages() {
        fixture(|contents| {
            let text: Vec<String> = extra_files(contents)
                .iter()
                .map(|extra| {
                    format!(
                        "==> {} ({}, {:04o}{}) <==\n{}",
                        extra.path,
                        extra.kind,
                        extra.mode,
                        if extra.config { ", config" } else { "" },
                        extra.text
                    )
                })
                .collect();
            expect_test::expect_file!["../../../tests/golden/extra-files"]
                .assert_eq(&text.join("\n"));
        });
    }

    #[test]
    fn changelog_dates_are_the_epochs() {
        assert_eq!(
            dates(1_700_000_000),
            (
                "Tue, 14 Nov 2023 22:13:20 +0000".to_owned(),
                "Tue Nov 14 2023".to_owned()
            )
        );
        assert_eq!(dates(951_782_400).1, "Tue Feb 29 2000");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn manifest_names_are_explicit_not_debug_output() {
        assert_eq!(Kind::Plugin("bdr".into()).to_string(), "plugin-bdr");
        assert_eq!(Kind::Libs.to_string(), "libs");
    }
}
