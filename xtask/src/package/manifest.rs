//! The JSON manifest beside the binary tarball, and SOURCE_DATE_EPOCH.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::Context;
use serde::Serialize;

use super::Subpackage;
use crate::{
    files,
    input::dist_tag::GlibcVersion,
    layout::{epoch_file, Layout},
    plan::{Action, InRoot, Package, Plan},
    process::Command,
    sources::{
        archive::{self, Expect},
        fetch::{self, Cache},
    },
};

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
    /// By role (`cc`, `make`, `flex`, `bison`, `bdr-dist`).
    pub tools: BTreeMap<String, Tool>,
    pub subpackages: BTreeMap<String, usize>,
    /// The distribution release it was built for, in its own root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<ManifestTarget>,
    /// The RPM step's manifest only (`<stem>.rpm.manifest.json`): what the
    /// RPMs are for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<RpmRecord>,
}

/// A target build: for which release, against which glibc, in which root.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestTarget {
    pub name: String,
    pub distribution: String,
    pub release: String,
    pub codename: String,
    /// The build root's libc6 version.
    pub glibc: Option<String>,
    /// The key of the build root: its packages and the archive's date.
    pub root_key: String,
}

impl ManifestTarget {
    /// The target as its build root holds it now.
    pub fn of(target: &crate::plan::PlanTarget) -> ManifestTarget {
        ManifestTarget {
            name: target.name.clone(),
            distribution: target.distribution.clone(),
            release: target.release.clone(),
            codename: target.codename.clone(),
            glibc: crate::roots::glibc_version(&target.build_root),
            root_key: fs::read_to_string(target.build_root.with_extension("key"))
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }
}

/// What the RPMs say they are for: their dist tag, and the glibc they need.
#[derive(Debug, Clone, Serialize)]
pub struct RpmRecord {
    /// `el9`: each RPM's release is the manifest's `release` then `.el9`;
    /// `null`: their release is the manifest's.
    pub dist_tag: Option<String>,
    /// `--dist`, or `host` (this host's `rpm --eval %{?dist}`, or none where
    /// rpm defines no dist, as on Debian).
    pub dist_tag_from: String,
    /// The glibc of the release the tag names, as bdr-dist knows it;
    /// `null` with no tag, or a host's tag of no known glibc.
    pub dist_glibc: Option<GlibcVersion>,
    /// The highest glibc any ELF file of the binary RPMs needs; `null` when
    /// none needs a versioned glibc symbol.
    pub glibc_floor: Option<GlibcFloor>,
}

/// The glibc the RPMs need, and the file that needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlibcFloor {
    /// `2.34`
    pub version: GlibcVersion,
    /// The symbol version that needs it: `GLIBC_2.34`.
    pub symbol: String,
    /// The first file that needs it, as installed: `usr/pgsql-15/bin/postgres`.
    pub file: String,
}

/// A tool the build ran: the program as the platform names it (`gmake` on
/// OpenBSD) and the first line of its `--version`.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub program: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestSource {
    pub component: String,
    pub version: String,
    pub file: String,
    pub urls: Vec<String>,
    /// The sha256 of the archive this build used (whichever URL served it).
    pub sha256: String,
    /// The git tree its entries make: the recipe's pin (checked when it was
    /// unpacked), else the tree recomputed then.
    pub tree: Option<String>,
    /// The tagged commit the recipe names.
    pub commit: Option<String>,
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
            let path = epoch_file(&unpack.dest);
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

/// The git tree an unpinned source's entries make: as its unpack recorded
/// it, else (a tree unpacked by an older bdr-dist) recomputed from the cached
/// archive once, and recorded; `None` when neither is at hand.
fn recomputed_tree(
    plan: &Plan,
    fetch: &crate::plan::Fetch,
    sha256: &str,
    layout: &Layout,
) -> Option<String> {
    let is_tree = |text: &str| {
        text.len() == 40 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let record = plan.steps.iter().find_map(|step| match &step.action {
        Action::Unpack(unpack) if unpack.component == fetch.component => {
            Some(archive::tree_path(&unpack.dest))
        }
        _ => None,
    });
    let recorded = record
        .as_ref()
        .and_then(|record| fs::read_to_string(record).ok())
        .map(|text| text.trim().to_owned())
        .filter(|tree| is_tree(tree));
    if recorded.is_some() {
        return recorded;
    }
    let expect = Expect {
        tree: None,
        max_bytes: fetch.max_unpacked,
    };
    let tree = archive::inspect(&layout.downloads().blob(sha256), fetch.archive, &expect)
        .ok()?
        .tree;
    if let Some(record) = record.filter(|record| record.parent().is_some_and(Path::is_dir)) {
        let _ = files::write_atomically(&record, format!("{tree}\n").as_bytes());
    }
    Some(tree)
}

/// The first line a tool prints of its version, as the build ran it.
fn first_line_of(program: &str, args: &[&str], root: Option<&InRoot>) -> String {
    Command::new(program)
        .args(args)
        .in_root_if(root)
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

/// What went into `package`: sources (with the sha256 this build used),
/// tools, and how many files each subpackage holds.
pub fn manifest(
    plan: &Plan,
    package: &Package,
    subpackages: &[Subpackage],
    epoch: u64,
    layout: &Layout,
) -> anyhow::Result<Manifest> {
    let cache = Cache::new(layout.downloads().dir);
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
            tree: match &fetch.tree {
                Some(pin) => Some(pin.clone()),
                None => recomputed_tree(plan, fetch, &sha256, layout),
            },
            sha256,
            commit: fetch.commit.clone(),
        });
    }
    // The programs this platform's build ran (`gmake`, not `make`, on OpenBSD).
    let mut tools: BTreeMap<String, Tool> = package
        .tools
        .iter()
        .map(|(role, program)| {
            let version = first_line_of(program, &["--version"], package.root.as_ref());
            let program = program.clone();
            (role.clone(), Tool { program, version })
        })
        .collect();
    tools.insert(
        "bdr-dist".to_owned(),
        Tool {
            program: "bdr-dist".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    );
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
            .map(|s| (s.kind.to_string(), s.files.len()))
            .collect(),
        target: package.target.as_ref().map(ManifestTarget::of),
        rpm: None,
    })
}
