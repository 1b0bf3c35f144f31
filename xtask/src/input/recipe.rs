//! Recipe sets: `recipes/<set>.toml`, one file per set of sources built together.
//!
//! A set names its components (a server and its plugin), where each component's
//! source comes from and how it is pinned, the build steps as templates, and the
//! packaging and smoke-cluster metadata. Loading validates everything a plan
//! relies on, so that nothing runs on an invalid recipe.

use std::{
    collections::BTreeMap,
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

/// The names a step template may use, each written `{name}`.
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "prefix",
    "stage",
    "make",
    "server_bindir",
    "name",
    "version",
    "src",
];

/// A validated recipe set.
#[derive(Debug, Clone)]
pub struct RecipeSet {
    pub name: String,
    pub description: String,
    /// Platforms this set may be built on, each the name of a platform file.
    pub platforms: Vec<String>,
    /// Install prefix per platform, overriding the platform's default.
    pub prefix: BTreeMap<String, String>,
    pub package: PackageMeta,
    pub smoke: SmokeMeta,
    /// Components in build order: every component comes after what it depends on.
    pub components: Vec<Component>,
}

/// `[set.package]`, validated (read as `PackageTable`).
#[derive(Debug, Clone, Serialize)]
pub struct PackageMeta {
    /// Base name of the packages, e.g. `postgresql-bdr94`.
    pub name: String,
    /// Package version; the server component's version when absent.
    pub version: Option<String>,
    pub release: String,
    pub summary: String,
    pub license: String,
    pub url: String,
    /// The PGDG base name that the packages also provide, e.g. `postgresql94`.
    pub provides: Option<String>,
    /// Who answers for the packages, `Name <address>`: Debian's `Maintainer`,
    /// RPM's `Packager` and the author of their changelog entries.
    pub maintainer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterDriver {
    Bdr,
    Pglogical,
}

impl ClusterDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterDriver::Bdr => "bdr",
            ClusterDriver::Pglogical => "pglogical",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeMeta {
    pub driver: ClusterDriver,
    /// Value of `shared_preload_libraries` on every node.
    pub preload: String,
    /// Extensions created in the smoke database, in order.
    pub extensions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The PostgreSQL server: installed with `DESTDIR` into the stage.
    Server,
    /// An extension built against the staged server's `pg_config`.
    Plugin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum ArchiveKind {
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "tar.bz2")]
    TarBz2,
    #[serde(rename = "tar.xz")]
    TarXz,
}

impl ArchiveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveKind::TarGz => "tar.gz",
            ArchiveKind::TarBz2 => "tar.bz2",
            ArchiveKind::TarXz => "tar.xz",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Configure,
    Compile,
    Install,
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepKind::Configure => "configure",
            StepKind::Compile => "compile",
            StepKind::Install => "install",
        })
    }
}

impl StepKind {
    /// The cargo-style status verb shown while the step runs.
    pub fn verb(self) -> &'static str {
        match self {
            StepKind::Configure => "Configuring",
            StepKind::Compile => "Compiling",
            StepKind::Install => "Installing",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub version: String,
    pub role: Role,
    pub depends: Vec<String>,
    pub source: SourceSpec,
    /// Extra directories put first on `PATH` for every step (templates).
    pub path_prepend: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub steps: Vec<StepTemplate>,
    /// RPM subpackage suffix for a plugin, e.g. `bdr` for `postgresql-bdr94-bdr`.
    pub subpackage: Option<String>,
}

/// Where a source comes from and what proves it. A source carries at least
/// one content pin (`sha256` of the archive's bytes, or `tree`, the git tree
/// its entries recompute to); a commit id only names the tag.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSpec {
    /// File name in mirrors and in progress output.
    pub file: String,
    pub urls: Vec<String>,
    pub sha256: Option<String>,
    /// Git tree id of the archive's entries below its top directory.
    pub tree: Option<String>,
    /// The tagged commit: information, never proof.
    pub commit: Option<String>,
    pub archive: ArchiveKind,
    /// Most bytes a download of it may bring.
    pub max_download: u64,
    /// Most bytes its entries may hold once uncompressed.
    pub max_unpacked: u64,
    /// Applied (`patch -p1`) to the unpacked tree, in order, as part of
    /// unpacking: every build starts from the patched tree.
    pub patches: Vec<PatchFile>,
}

/// A patch a recipe carries, as data: a fix the old sources need (a
/// backport, named in the patch's header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchFile {
    /// As the recipe names it, relative to the recipe directory.
    pub name: String,
    pub path: PathBuf,
    /// Of its bytes, read when the recipe is loaded: the unpack's input.
    pub sha256: String,
}

/// Limits of a source that names none: generous for PostgreSQL (about 25 MiB
/// compressed, 200 MiB unpacked), small enough to stop a bomb.
pub const DEFAULT_MAX_DOWNLOAD: u64 = 1 << 30;
pub const DEFAULT_MAX_UNPACKED: u64 = 4 << 30;

/// A `[[component.step]]`, validated (read as `StepTable`).
#[derive(Debug, Clone, Serialize)]
pub struct StepTemplate {
    pub kind: StepKind,
    /// Shown after the component in status lines, e.g. `contrib`; part of
    /// the step's id.
    pub label: Option<String>,
    /// Working directory relative to the unpacked source, inside it.
    pub dir: Option<String>,
    pub run: Vec<String>,
    /// Pass `-jN` right after the program.
    pub parallel: bool,
    pub env: BTreeMap<String, String>,
    /// Platforms this step runs on; all when empty.
    pub only: Vec<String>,
    /// More variables for the step when it builds for a target, by target
    /// name: the fix a newer toolchain needs for old sources.
    pub target_env: BTreeMap<String, BTreeMap<String, String>>,
}

// The file's shape, as written. Spanned fields are the ones validated after
// deserializing, so their errors can point at the line.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFile {
    set: SetTable,
    #[serde(rename = "component")]
    components: Vec<ComponentTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetTable {
    description: String,
    platforms: Vec<Spanned<String>>,
    /// Absolute paths: checked by [`names::check_absolute_path`].
    #[serde(default)]
    prefix: BTreeMap<String, Spanned<String>>,
    package: PackageTable,
    smoke: SmokeMeta,
}

/// `[set.package]`, as written: [`PackageMeta`] with the spans of the
/// values that become package names and file names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageTable {
    name: Spanned<String>,
    version: Option<Spanned<String>>,
    release: Spanned<String>,
    summary: Spanned<String>,
    license: Spanned<String>,
    url: Spanned<String>,
    provides: Option<Spanned<String>>,
    maintainer: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentTable {
    name: Spanned<String>,
    version: Spanned<String>,
    role: Role,
    #[serde(default)]
    depends: Vec<Spanned<String>>,
    source: SourceTable,
    #[serde(default)]
    path_prepend: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(rename = "step")]
    steps: Vec<Spanned<StepTable>>,
    subpackage: Option<Spanned<String>>,
}

/// `[[component.step]]`, as written: [`StepTemplate`] with the spans of
/// the values that become a step id (and so stamp and log names) and a
/// working directory.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepTable {
    kind: StepKind,
    label: Option<Spanned<String>>,
    dir: Option<Spanned<String>>,
    run: Vec<String>,
    #[serde(default)]
    parallel: bool,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    only: Vec<String>,
    #[serde(default)]
    target_env: BTreeMap<Spanned<String>, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceTable {
    file: Spanned<String>,
    urls: Spanned<Vec<String>>,
    sha256: Option<Spanned<String>>,
    tree: Option<Spanned<String>>,
    commit: Option<Spanned<String>>,
    archive: ArchiveKind,
    max_download: Option<Spanned<String>>,
    max_unpacked: Option<Spanned<String>>,
    #[serde(default)]
    patches: Vec<Spanned<String>>,
}

/// The recipe directory: `--recipes`, else `BDR_DIST_RECIPES`, else the repo's.
pub fn recipes_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| crate::project_root().join("recipes"))
}

/// Names of the sets in a recipe directory, sorted.
pub fn set_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = fs::read_dir(dir)
        .with_context(|| format!("cannot read recipe directory {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            if let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) {
                names.push(stem.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Load and validate `<dir>/<set>.toml` against the known platform names.
pub fn load(dir: &Path, set: &str, known_platforms: &[String]) -> anyhow::Result<RecipeSet> {
    check_set_name(set)?;
    let path = dir.join(format!("{set}.toml"));
    if !path.is_file() {
        let known = set_names(dir).unwrap_or_default().join(", ");
        return Err(invalid(format!(
            "no recipe set `{set}`: {} does not exist (sets in {}: {known})",
            path.display(),
            dir.display()
        )));
    }
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&path, &text, set, known_platforms)
}

/// Validate a recipe set's text; `path` is only used in error messages.
pub fn parse(
    path: &Path,
    text: &str,
    set: &str,
    known_platforms: &[String],
) -> anyhow::Result<RecipeSet> {
    let source = Source { path, text };
    let file: SetFile = source.parse()?;

    let mut platforms = Vec::new();
    for platform in &file.set.platforms {
        if !known_platforms
            .iter()
            .any(|known| known == platform.get_ref())
        {
            return Err(source.error_at(
                platform.span(),
                "set.platforms",
                format!(
                    "platform `{}` does not exist (known: {})",
                    platform.get_ref(),
                    known_platforms.join(", ")
                ),
            ));
        }
        platforms.push(platform.get_ref().clone());
    }
    if file.components.is_empty() {
        return Err(invalid(format!(
            "{}: key `component`: a set needs at least one component",
            path.display()
        )));
    }

    let names: Vec<&str> = file
        .components
        .iter()
        .map(|c| c.name.get_ref().as_str())
        .collect();
    let mut components = Vec::new();
    for (index, table) in file.components.iter().enumerate() {
        let name = table.name.get_ref();
        if names[..index].contains(&name.as_str()) {
            return Err(source.error_at(
                table.name.span(),
                "component.name",
                format!("component `{name}` is defined twice"),
            ));
        }
        for dependency in &table.depends {
            let known_earlier = names[..index].contains(&dependency.get_ref().as_str());
            if !known_earlier {
                let why = if names.contains(&dependency.get_ref().as_str()) {
                    "must be defined before the components that depend on it"
                } else {
                    "no such component in this set"
                };
                return Err(source.error_at(
                    dependency.span(),
                    "component.depends",
                    format!("dependency `{}` of `{name}`: {why}", dependency.get_ref()),
                ));
            }
        }
        components.push(validate_component(&source, table, &platforms)?);
    }
    if components.iter().filter(|c| c.role == Role::Server).count() != 1 {
        return Err(invalid(format!(
            "{}: key `component.role`: a set needs exactly one `server` component",
            path.display()
        )));
    }

    let mut prefix = BTreeMap::new();
    for (platform, path) in &file.set.prefix {
        let key = format!("set.prefix.{platform}");
        let path = located(&source, path, &key, names::check_absolute_path)?;
        prefix.insert(platform.clone(), path);
    }
    let package = validate_package(&source, &file.set.package)?;

    Ok(RecipeSet {
        name: set.to_owned(),
        description: file.set.description,
        platforms,
        prefix,
        package,
        smoke: file.set.smoke,
        components,
    })
}

/// `[set.package]`: its name, version, release and what it provides name
/// packages and their files (`<name>-<version>-<release>.<arch>.rpm`).
fn validate_package(source: &Source<'_>, table: &PackageTable) -> anyhow::Result<PackageMeta> {
    let check = |value: &Spanned<String>, key: &str, rule: fn(&str) -> Result<(), String>| {
        located(source, value, key, rule)
    };
    Ok(PackageMeta {
        name: check(&table.name, "set.package.name", names::check_plain_name)?,
        version: table
            .version
            .as_ref()
            .map(|version| check(version, "set.package.version", names::check_version))
            .transpose()?,
        release: check(&table.release, "set.package.release", names::check_version)?,
        summary: check(&table.summary, "set.package.summary", names::check_one_line)?,
        license: check(&table.license, "set.package.license", names::check_one_line)?,
        url: check(&table.url, "set.package.url", names::check_one_line)?,
        provides: table
            .provides
            .as_ref()
            .map(|provides| check(provides, "set.package.provides", names::check_plain_name))
            .transpose()?,
        maintainer: table
            .maintainer
            .as_ref()
            .map(|maintainer| check(maintainer, "set.package.maintainer", names::check_one_line))
            .transpose()?,
    })
}

/// The value of `value` when it passes `rule`; otherwise an error at its line.
fn located(
    source: &Source<'_>,
    value: &Spanned<String>,
    key: &str,
    rule: fn(&str) -> Result<(), String>,
) -> anyhow::Result<String> {
    rule(value.get_ref()).map_err(|message| source.error_at(value.span(), key, message))?;
    Ok(value.get_ref().clone())
}

fn validate_component(
    source: &Source<'_>,
    table: &ComponentTable,
    platforms: &[String],
) -> anyhow::Result<Component> {
    // The name and version become `src/<name>-<version>/` and, through the
    // step ids, stamp, log and compiler-wrapper names under `target/`.
    let name = located(
        source,
        &table.name,
        "component.name",
        names::check_plain_name,
    )?;
    let version = located(
        source,
        &table.version,
        "component.version",
        names::check_version,
    )?;
    let subpackage = table
        .subpackage
        .as_ref()
        .map(|suffix| {
            located(
                source,
                suffix,
                "component.subpackage",
                names::check_plain_name,
            )
        })
        .transpose()?;
    let spec = validate_source(source, table)?;
    let steps = table
        .steps
        .iter()
        .map(|step| validate_step(source, step, platforms))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for text in table.path_prepend.iter().chain(table.env.values()) {
        check_template(text)
            .map_err(|message| source.error_at(table.name.span(), "component", message))?;
    }
    Ok(Component {
        name,
        version,
        role: table.role,
        depends: table.depends.iter().map(|d| d.get_ref().clone()).collect(),
        source: spec,
        path_prepend: table.path_prepend.clone(),
        env: table.env.clone(),
        steps,
        subpackage,
    })
}

/// A source: its URLs, a plain file name, well-formed pins (at least one of
/// them a content pin) and size limits.
fn validate_source(source: &Source<'_>, table: &ComponentTable) -> anyhow::Result<SourceSpec> {
    let spec = &table.source;
    if spec.urls.get_ref().is_empty() {
        return Err(source.error_at(
            spec.urls.span(),
            "component.source.urls",
            "list at least one URL",
        ));
    }
    // The name of its receipt in the download cache, and of the file asked
    // for under each mirror.
    let file_name = &located(
        source,
        &spec.file,
        "component.source.file",
        names::check_plain_name,
    )?;
    let sha256 = spec
        .sha256
        .as_ref()
        .map(|sha| check_hex(source, sha, "component.source.sha256", 64))
        .transpose()?;
    let tree = spec
        .tree
        .as_ref()
        .map(|tree| check_hex(source, tree, "component.source.tree", 40))
        .transpose()?;
    let commit = spec
        .commit
        .as_ref()
        .map(|commit| check_hex(source, commit, "component.source.commit", 40))
        .transpose()?;
    if sha256.is_none() && tree.is_none() {
        let (span, key) = match &spec.commit {
            Some(commit) => (commit.span(), "component.source.commit"),
            None => (spec.file.span(), "component.source"),
        };
        return Err(source.error_at(
            span,
            key,
            format!(
                "source of `{}` has no content pin: give `sha256` (of the archive) or `tree` \
                 (the git tree of its entries); a commit id only names the tag and proves nothing",
                table.name.get_ref()
            ),
        ));
    }
    let limit = |value: &Option<Spanned<String>>, key: &str, default: u64| {
        value.as_ref().map_or(Ok(default), |value| {
            parse_size(value.get_ref())
                .map_err(|message| source.error_at(value.span(), key, message))
        })
    };
    let max_download = limit(
        &spec.max_download,
        "component.source.max_download",
        DEFAULT_MAX_DOWNLOAD,
    )?;
    let max_unpacked = limit(
        &spec.max_unpacked,
        "component.source.max_unpacked",
        DEFAULT_MAX_UNPACKED,
    )?;

    let recipes_dir = source.path.parent().unwrap_or(Path::new("."));
    let mut patches = Vec::new();
    for patch in &spec.patches {
        let name = located(
            source,
            patch,
            "component.source.patches",
            names::check_relative_path,
        )?;
        let path = recipes_dir.join(&name);
        let bytes = fs::read(&path).map_err(|error| {
            source.error_at(
                patch.span(),
                "component.source.patches",
                format!("cannot read {}: {error}", path.display()),
            )
        })?;
        patches.push(PatchFile {
            name,
            path,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        });
    }

    Ok(SourceSpec {
        file: file_name.clone(),
        urls: spec.urls.get_ref().clone(),
        sha256,
        tree,
        commit,
        archive: spec.archive,
        max_download,
        max_unpacked,
        patches,
    })
}

/// A build step: a command, platforms of the set, known template variables,
/// a label that can be part of a step id, a directory inside the source tree.
fn validate_step(
    source: &Source<'_>,
    step: &Spanned<StepTable>,
    platforms: &[String],
) -> anyhow::Result<StepTemplate> {
    let table = step.get_ref();
    let label = table
        .label
        .as_ref()
        .map(|label| {
            located(
                source,
                label,
                "component.step.label",
                names::check_plain_name,
            )
        })
        .transpose()?;
    // Plain names only, so no template variable either: `{src}` or `{prefix}`
    // would make it absolute, and the step would run outside its tree.
    let dir = table
        .dir
        .as_ref()
        .map(|dir| {
            located(
                source,
                dir,
                "component.step.dir",
                names::check_relative_path,
            )
        })
        .transpose()?;
    let template = StepTemplate {
        kind: table.kind,
        label,
        dir,
        run: table.run.clone(),
        parallel: table.parallel,
        env: table.env.clone(),
        only: table.only.clone(),
        target_env: table
            .target_env
            .iter()
            .map(|(name, env)| {
                names::check_plain_name(name.get_ref())
                    .map_err(|why| source.error_at(name.span(), "component.step.target_env", why))
                    .map(|()| (name.get_ref().clone(), env.clone()))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    if template.run.is_empty() {
        return Err(source.error_at(step.span(), "component.step.run", "a step needs a command"));
    }
    for platform in &template.only {
        if !platforms.contains(platform) {
            return Err(source.error_at(
                step.span(),
                "component.step.only",
                format!(
                    "platform `{platform}` is not one of this set's platforms ({})",
                    platforms.join(", ")
                ),
            ));
        }
    }
    for text in template.run.iter().chain(template.env.values()) {
        check_template(text)
            .map_err(|message| source.error_at(step.span(), "component.step", message))?;
    }
    Ok(template)
}

/// `512 MiB`, `4 GiB`, `1000000 B`: a size with its unit (B, KiB, MiB, GiB, TiB).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let malformed = || {
        format!("malformed size `{text}`: write a number and a unit, e.g. `4 GiB` (units: B, KiB, MiB, GiB, TiB)")
    };
    let (number, unit) = text.trim().split_once(' ').ok_or_else(malformed)?;
    let number: u64 = number.parse().map_err(|_| malformed())?;
    let shift = match unit.trim() {
        "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        _ => return Err(malformed()),
    };
    number
        .checked_mul(1u64 << shift)
        .filter(|bytes| *bytes > 0)
        .ok_or_else(|| format!("size `{text}` is zero or too large"))
}

/// A set name is a plain name ([`names::check_plain_name`]): it names
/// `recipes/<set>.toml` and `target/sets/<set>/`, so it may not climb out of
/// either.
pub fn check_set_name(set: &str) -> anyhow::Result<()> {
    if names::check_plain_name(set).is_ok() {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{}` is not a set name: letters, digits, `.`, `_`, `-`, `+` and `~`, starting with \
             a letter or digit, at most {} bytes",
            crate::printable::printable(set, 200),
            names::MAX_NAME_BYTES
        )))
    }
}

fn check_hex(
    source: &Source<'_>,
    value: &Spanned<String>,
    key: &str,
    digits: usize,
) -> anyhow::Result<String> {
    let text = value.get_ref();
    let well_formed =
        text.len() == digits && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(source.error_at(
            value.span(),
            key,
            format!("malformed value `{text}`: expected {digits} lowercase hex digits"),
        ));
    }
    Ok(text.clone())
}

/// Every `{name}` in a template must be a known variable.
fn check_template(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{text}`"))?;
        let name = &after[..close];
        if !TEMPLATE_VARIABLES.contains(&name) {
            return Err(format!(
                "unknown template variable `{{{name}}}` in `{text}` (known: {})",
                TEMPLATE_VARIABLES.join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Replace every `{name}` in `text` with its value from `variables`.
pub fn expand(text: &str, variables: &BTreeMap<&str, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in variables {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

impl RecipeSet {
    pub fn server(&self) -> &Component {
        self.components
            .iter()
            .find(|c| c.role == Role::Server)
            .expect("validated: one server")
    }

    /// The version the packages carry.
    pub fn package_version(&self) -> &str {
        self.package
            .version
            .as_deref()
            .unwrap_or(&self.server().version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_need_a_unit() {
        assert_eq!(parse_size("4 GiB"), Ok(4 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1000 B"), Ok(1000));
        assert!(parse_size("4GiB").is_err());
        assert!(parse_size("4 GB").is_err());
        assert!(parse_size("0 B").is_err());
        assert!(parse_size("99999999 TiB").is_err());
    }

    #[test]
    fn set_names_cannot_climb_out() {
        for good in ["bdr94", "pg15-pglogical", "a.b_c"] {
            assert!(check_set_name(good).is_ok(), "{good}");
        }
        for bad in ["..", ".", "", "/", "a/b", "../x", ".hidden", "-x"] {
            assert!(check_set_name(bad).is_err(), "{bad}");
        }
    }
}
