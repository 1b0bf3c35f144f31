//! Planning: recipes + platform + options -> every step of a full run, as data.
//!
//! `plan` is pure: it reads no file, no environment and no network. The host's
//! facts (parallelism, root or not, ccache, mirrors) arrive in [`PlanOptions`].
//! That is what lets `cargo xtask plan --platform openbsd` print, on Linux,
//! exactly what a build would run on OpenBSD, and what the snapshot tests pin.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    input::platform::{PackageFormat, Platform},
    input::recipe::{self, ArchiveKind, ClusterDriver, RecipeSet, Role, StepKind},
};

/// Where everything lands, under one `target/` directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub target: PathBuf,
}

impl Layout {
    pub fn new(target: impl Into<PathBuf>) -> Layout {
        Layout {
            target: target.into(),
        }
    }
    /// Content-addressed download cache, shared by all sets.
    pub fn downloads(&self) -> PathBuf {
        self.target.join("downloads")
    }
    pub fn set_dir(&self, set: &str) -> PathBuf {
        self.target.join("sets").join(set)
    }
    pub fn src(&self, set: &str, name: &str, version: &str) -> PathBuf {
        self.set_dir(set)
            .join("src")
            .join(format!("{name}-{version}"))
    }
    pub fn stage(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("stage")
    }
    pub fn dist(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("dist")
    }
    pub fn logs(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("logs")
    }
    pub fn stamps(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("stamps")
    }
}

/// The host's facts and the user's flags that shape a plan.
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
    pub prefix: String,
    pub stage: PathBuf,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Stable name: stamps and logs are named after it.
    pub id: String,
    pub phase: Phase,
    /// Ids of the steps whose results this one uses.
    pub after: Vec<String>,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Fetch(Fetch),
    Unpack(Unpack),
    Run(Run),
    Package(Package),
    Smoke(Smoke),
    PrepareInstall(PrepareInstall),
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
}

/// Before anything runs as root: check that the prefix is root's alone, and
/// write the archive the escalated step extracts (files owned by root and
/// the platform's group, modes 0755/0644, no setuid).
#[derive(Debug, Clone, Serialize)]
pub struct PrepareInstall {
    /// The staged prefix, e.g. `.../stage/usr/pgsql-15`.
    pub from: PathBuf,
    /// Where it goes.
    pub prefix: String,
    pub archive: PathBuf,
    pub group: String,
    pub gid: u32,
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
    /// Cargo-style status verb: `Configuring`, `Compiling`, ...
    pub verb: String,
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
    /// `sudo` or `doas`, put in front of the command. Only install steps have it.
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
}

/// `-ffile-prefix-map=from=to`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PathMap {
    pub from: String,
    pub to: String,
}

/// Files one install step added to the stage, and the package they go to.
#[derive(Debug, Clone, Serialize)]
pub struct PackagePart {
    /// The install step whose recorded file list this is.
    pub step: String,
    pub component: String,
    /// `None` for the server's own files, split by kind (clients, libs,
    /// server, devel); `contrib` for the install step labelled so; the
    /// plugin's subpackage name for a plugin.
    pub subpackage: Option<String>,
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
    pub service_user: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Smoke {
    pub driver: ClusterDriver,
    pub nodes: u32,
    pub bindir: PathBuf,
    pub preload: String,
    pub extensions: Vec<String>,
    pub run_as: Option<String>,
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

/// The install prefix of a set on a platform.
pub fn prefix_of(set: &RecipeSet, platform: &Platform) -> String {
    set.prefix
        .get(&platform.name)
        .cloned()
        .unwrap_or_else(|| platform.default_prefix.clone())
}

/// Compute every step of a full run. Pure: see the module comment.
pub fn plan(set: &RecipeSet, platform: &Platform, options: &PlanOptions) -> Plan {
    let layout = Layout::new(&options.target_dir);
    let prefix = prefix_of(set, platform);
    let stage = layout.stage(&set.name);
    let stage_prefix = join_prefix(&stage, &prefix);
    let server_bindir = stage_prefix.join("bin");
    let mut steps: Vec<Step> = Vec::new();

    for component in &set.components {
        let source = &component.source;
        let urls = options
            .mirrors
            .iter()
            .map(|mirror| format!("{}/{}", mirror.trim_end_matches('/'), component.source.file))
            .chain(component.source.urls.iter().cloned())
            .collect();
        steps.push(Step {
            id: format!("{}-fetch", component.name),
            phase: Phase::Fetch,
            after: Vec::new(),
            action: Action::Fetch(Fetch {
                component: component.name.clone(),
                version: component.version.clone(),
                file: source.file.clone(),
                urls,
                sha256: source.sha256.clone(),
                tree: source.tree.clone(),
                commit: source.commit.clone(),
                locked_sha256: options.locked_sha256.get(&source.file).cloned(),
                archive: source.archive,
                max_download: source.max_download,
                max_unpacked: source.max_unpacked,
            }),
        });
    }

    let mut last_step_of: BTreeMap<&str, String> = BTreeMap::new();
    let mut parts = Vec::new();
    let mut server_staged = false;
    for component in &set.components {
        let src = layout.src(&set.name, &component.name, &component.version);
        let unpack_id = format!("{}-unpack", component.name);
        steps.push(Step {
            id: unpack_id,
            phase: Phase::Fetch,
            after: vec![format!("{}-fetch", component.name)],
            action: Action::Unpack(Unpack {
                component: component.name.clone(),
                version: component.version.clone(),
                file: component.source.file.clone(),
                archive: component.source.archive,
                dest: src.clone(),
                tree: component.source.tree.clone(),
                max_unpacked: component.source.max_unpacked,
            }),
        });
    }

    for component in &set.components {
        let src = layout.src(&set.name, &component.name, &component.version);
        let unpack_id = format!("{}-unpack", component.name);
        let variables = BTreeMap::from([
            ("prefix", prefix.clone()),
            ("stage", stage.display().to_string()),
            ("make", platform.make.clone()),
            ("server_bindir", server_bindir.display().to_string()),
            ("name", component.name.clone()),
            ("version", component.version.clone()),
            ("src", src.display().to_string()),
        ]);
        let mut env = Vec::new();
        if !component.path_prepend.is_empty() {
            let dirs: Vec<String> = component
                .path_prepend
                .iter()
                .map(|dir| recipe::expand(dir, &variables))
                .collect();
            env.push(EnvVar {
                name: "PATH".into(),
                value: dirs.join(":"),
                prepend: true,
            });
        }
        for (name, value) in &component.env {
            env.push(EnvVar {
                name: name.clone(),
                value: recipe::expand(value, &variables),
                prepend: false,
            });
        }

        let mut previous = unpack_id;
        let mut dependencies: Vec<String> = component
            .depends
            .iter()
            .filter_map(|dep| last_step_of.get(dep.as_str()).cloned())
            .collect();
        for template in component
            .steps
            .iter()
            .filter(|t| t.only.is_empty() || t.only.contains(&platform.name))
        {
            let mut step_env = env.clone();
            if template.kind == StepKind::Configure {
                for (name, value) in &platform.configure_env {
                    step_env.push(EnvVar {
                        name: name.clone(),
                        value: value.clone(),
                        prepend: false,
                    });
                }
            }
            for (name, value) in &template.env {
                step_env.push(EnvVar {
                    name: name.clone(),
                    value: recipe::expand(value, &variables),
                    prepend: false,
                });
            }
            let label = template.label.as_deref();
            let kind = format!("{:?}", template.kind).to_lowercase();
            let id = match label {
                Some(label) => format!("{}-{label}-{kind}", component.name),
                None => format!("{}-{kind}", component.name),
            };
            let cwd = match &template.dir {
                Some(dir) => src.join(recipe::expand(dir, &variables)),
                None => src.clone(),
            };
            let fresh_dir = (template.kind == StepKind::Install
                && component.role == Role::Server
                && !server_staged)
                .then(|| stage.clone());
            server_staged |= fresh_dir.is_some();
            if template.kind == StepKind::Install {
                let subpackage = match (component.role, label) {
                    (Role::Server, Some("contrib")) => Some("contrib".to_owned()),
                    (Role::Server, _) => None,
                    (Role::Plugin, _) => Some(
                        component
                            .subpackage
                            .clone()
                            .unwrap_or_else(|| component.name.clone()),
                    ),
                };
                parts.push(PackagePart {
                    step: id.clone(),
                    component: component.name.clone(),
                    subpackage,
                });
            }
            let mut after = vec![previous.clone()];
            after.append(&mut dependencies);
            steps.push(Step {
                id: id.clone(),
                phase: Phase::Build,
                after,
                action: Action::Run(Run {
                    verb: template.kind.verb().to_owned(),
                    subject: subject(&component.name, &component.version, label),
                    cwd,
                    env: step_env,
                    argv: template
                        .run
                        .iter()
                        .map(|arg| recipe::expand(arg, &variables))
                        .collect(),
                    jobs: template.parallel.then_some(options.jobs),
                    ccache_dir: if template.kind == StepKind::Install {
                        None
                    } else {
                        options.ccache_dir.clone()
                    },
                    escalate: None,
                    fresh_dir,
                    installs: template.kind == StepKind::Install,
                    path_map: vec![
                        PathMap {
                            from: src.display().to_string(),
                            to: format!("/usr/src/debug/{}-{}", component.name, component.version),
                        },
                        PathMap {
                            from: stage.display().to_string(),
                            to: String::new(),
                        },
                    ],
                }),
            });
            previous = id;
        }
        last_step_of.insert(&component.name, previous);
    }
    let build_ids: Vec<String> = last_step_of.values().cloned().collect();

    let formats = options
        .formats
        .clone()
        .unwrap_or_else(|| platform.package_formats.clone());
    for format in formats {
        steps.push(Step {
            id: format!("package-{}", format.as_str()),
            phase: Phase::Package,
            after: build_ids.clone(),
            action: Action::Package(Package {
                format,
                name: set.package.name.clone(),
                version: set.package_version().to_owned(),
                release: set.package.release.clone(),
                prefix: prefix.clone(),
                stage: stage.clone(),
                dist: layout.dist(&set.name),
                parts: parts.clone(),
                provides: set.package.provides.clone(),
                summary: set.package.summary.clone(),
                license: set.package.license.clone(),
                url: set.package.url.clone(),
                service_user: platform.service_user.clone(),
            }),
        });
    }

    steps.push(Step {
        id: "smoke".into(),
        phase: Phase::Smoke,
        after: build_ids.clone(),
        action: Action::Smoke(Smoke {
            driver: set.smoke.driver,
            nodes: options.nodes,
            bindir: server_bindir.clone(),
            preload: set.smoke.preload.clone(),
            extensions: set.smoke.extensions.clone(),
            run_as: options.run_as.clone(),
        }),
    });

    // The only step that escalates: extracting, as root, an archive of the
    // finished stage whose entries are root's. Nothing is copied with the
    // builder's ownership, and existing directories keep theirs.
    let install_prefix = options
        .install_prefix
        .clone()
        .unwrap_or_else(|| prefix.clone());
    let archive = layout
        .set_dir(&set.name)
        .join("install")
        .join(format!("{}.tar", set.name));
    let subject = format!(
        "{} {} into {install_prefix}",
        set.package.name,
        set.server().version
    );
    steps.push(Step {
        id: "install-prepare".into(),
        phase: Phase::Install,
        after: build_ids,
        action: Action::PrepareInstall(PrepareInstall {
            from: stage_prefix.clone(),
            prefix: install_prefix.clone(),
            archive: archive.clone(),
            group: platform.install.group.clone(),
            gid: platform.install.gid,
        }),
    });
    let archive_text = archive.display().to_string();
    steps.push(Step {
        id: "install-extract".into(),
        phase: Phase::Install,
        after: vec!["install-prepare".into()],
        action: Action::Run(Run {
            verb: "Installing".into(),
            subject,
            cwd: options.target_dir.clone(),
            env: Vec::new(),
            argv: platform
                .install
                .extract
                .iter()
                .map(|arg| arg.replace("{archive}", &archive_text))
                .collect(),
            jobs: None,
            ccache_dir: None,
            escalate: options.escalate.then(|| platform.escalate.clone()),
            fresh_dir: None,
            installs: false,
            path_map: Vec::new(),
        }),
    });

    Plan {
        set: set.name.clone(),
        description: set.description.clone(),
        platform: platform.name.clone(),
        prefix,
        stage,
        steps,
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

fn subject(name: &str, version: &str, label: Option<&str>) -> String {
    match label {
        Some(label) => format!("{name} {version} ({label})"),
        None => format!("{name} {version}"),
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

impl fmt::Display for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = shell_quote(&self.value);
        if self.prepend {
            write!(f, "{}={value}:${}", self.name, self.name)
        } else {
            write!(f, "{}={value}", self.name)
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Fetch(fetch) => {
                writeln!(
                    f,
                    "fetch {} {}  [{}]",
                    fetch.component, fetch.version, fetch.file
                )?;
                for url in &fetch.urls {
                    writeln!(f, "    url     {url}")?;
                }
                if let Some(sha) = &fetch.sha256 {
                    writeln!(f, "    sha256  {sha}")?;
                }
                if let Some(tree) = &fetch.tree {
                    writeln!(f, "    tree    {tree}  (git tree of the entries, recomputed from the archive)")?;
                }
                if let Some(commit) = &fetch.commit {
                    writeln!(f, "    commit  {commit}  (names the tag; not a pin)")?;
                }
                match &fetch.locked_sha256 {
                    Some(sha) => writeln!(
                        f,
                        "    lock    {sha}  (sha256 recorded; `--locked` requires it)"
                    )?,
                    None => writeln!(
                        f,
                        "    lock    (none: `fetch --pin` records the sha256 fetched)"
                    )?,
                }
                writeln!(
                    f,
                    "    limits  {} download, {} unpacked",
                    size_text(fetch.max_download),
                    size_text(fetch.max_unpacked)
                )?;
            }
            Action::Unpack(unpack) => {
                writeln!(
                    f,
                    "unpack {} {}  [{}, {}]",
                    unpack.component,
                    unpack.version,
                    unpack.file,
                    unpack.archive.as_str()
                )?;
                writeln!(f, "    into    {}", unpack.dest.display())?;
                if let Some(tree) = &unpack.tree {
                    writeln!(f, "    tree    {tree}  (checked while unpacking)")?;
                }
            }
            Action::PrepareInstall(install) => {
                writeln!(f, "prepare install into {}", install.prefix)?;
                writeln!(
                    f,
                    "    check   {}: not a symlink; it and every parent writable by root alone",
                    install.prefix
                )?;
                writeln!(f, "    from    {}", install.from.display())?;
                writeln!(
                    f,
                    "    archive {}  (owner root:{}, modes 0755/0644, existing directories untouched)",
                    install.archive.display(),
                    install.group
                )?;
            }
            Action::Run(run) => {
                writeln!(f, "{} {}", run.verb, run.subject)?;
                writeln!(f, "    cwd     {}", run.cwd.display())?;
                if let Some(dir) = &run.ccache_dir {
                    writeln!(f, "    ccache  {} first on PATH", dir.display())?;
                }
                for map in &run.path_map {
                    writeln!(
                        f,
                        "    map     {} -> {}",
                        map.from,
                        if map.to.is_empty() {
                            "(nothing)"
                        } else {
                            &map.to
                        }
                    )?;
                }
                for var in &run.env {
                    writeln!(f, "    env     {var}")?;
                }
                if let Some(dir) = &run.fresh_dir {
                    writeln!(f, "    fresh   {} (removed first)", dir.display())?;
                }
                let line: Vec<String> = run
                    .command_line()
                    .iter()
                    .map(|arg| shell_quote(arg))
                    .collect();
                writeln!(f, "    $ {}", line.join(" "))?;
            }
            Action::Package(package) => {
                writeln!(
                    f,
                    "package {} {}-{}-{}",
                    package.format.as_str(),
                    package.name,
                    package.version,
                    package.release
                )?;
                writeln!(
                    f,
                    "    from    {} (prefix {})",
                    package.stage.display(),
                    package.prefix
                )?;
                writeln!(f, "    into    {}", package.dist.display())?;
            }
            Action::Smoke(smoke) => {
                writeln!(
                    f,
                    "smoke {} nodes, driver {}",
                    smoke.nodes,
                    smoke.driver.as_str()
                )?;
                writeln!(f, "    bindir  {}", smoke.bindir.display())?;
                writeln!(
                    f,
                    "    conf    shared_preload_libraries = '{}', listen 127.0.0.1",
                    smoke.preload
                )?;
                writeln!(f, "    create  extension {}", smoke.extensions.join(", "))?;
                if let Some(user) = &smoke.run_as {
                    writeln!(f, "    as      {user}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plan for set {} on {}, prefix {}\n  {}",
            self.set, self.platform, self.prefix, self.description
        )?;
        let mut phase = None;
        for (number, step) in self.steps.iter().enumerate() {
            if phase != Some(step.phase) {
                phase = Some(step.phase);
                let note = if step.phase == Phase::Install {
                    " (only `cargo xtask install`)"
                } else {
                    ""
                };
                writeln!(f, "\n[{}]{note}", step.phase.as_str())?;
            }
            write!(f, "{:>3}. {step}", number + 1)?;
        }
        Ok(())
    }
}

impl Plan {
    pub fn steps_in<'a>(&'a self, phases: &'a [Phase]) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps
            .iter()
            .filter(move |step| phases.contains(&step.phase))
    }
}

impl crate::flags::PlanFlags {
    pub fn run(self, _sh: &xshell::Shell) -> anyhow::Result<()> {
        let selection = crate::host::select(&self.set)?;
        let facts = crate::host::facts();
        let mut options = crate::host::plan_options(&selection, &facts);
        options.mirrors = self.mirror.mirrors;
        options.jobs = self.jobs.unwrap_or(options.jobs);
        options.formats = self.format;
        options.install_prefix = self.prefix;
        options.nodes = self.nodes;
        let plan = plan(&selection.set, &selection.platform, &options);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print!("{plan}");
        }
        Ok(())
    }
}
