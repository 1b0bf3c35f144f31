//! The planner: each phase's steps from the set, the platform and the options.

use std::{collections::BTreeMap, path::PathBuf};

use super::{
    join_prefix, Action, EnvVar, Fetch, InRoot, Install, Package, PackagePart, PartKind, PathMap,
    Phase, Plan, PlanOptions, PlanTarget, Run, ServiceAccount, Smoke, Step, StepId, Unpack,
};
use crate::{
    input::{
        platform::{PackageFormat, Platform, Purpose},
        recipe::{self, Component, RecipeSet, Role, StepKind, StepTemplate},
        target::Target,
    },
    layout::Layout,
};

/// The install prefix of a set on a platform.
pub fn prefix_of(set: &RecipeSet, platform: &Platform) -> String {
    set.prefix
        .get(&platform.name)
        .cloned()
        .unwrap_or_else(|| platform.default_prefix.clone())
}

/// What every phase's planner needs to know.
struct Context<'a> {
    set: &'a RecipeSet,
    platform: &'a Platform,
    options: &'a PlanOptions,
    layout: Layout,
    prefix: String,
    stage: PathBuf,
    server_bindir: PathBuf,
    target: Option<PlanTarget>,
    /// The build root every build and packaging command of a target runs in.
    build_root: Option<InRoot>,
}

/// Compute every step of a full run. Pure: see the module comment.
pub fn plan(set: &RecipeSet, platform: &Platform, options: &PlanOptions) -> Plan {
    let top = Layout::new(&options.target_dir);
    let layout = top.for_target(options.target.as_ref().map(|t| t.name.as_str()));
    let prefix = prefix_of(set, platform);
    let stage = layout.stage(&set.name);
    let server_bindir = join_prefix(&stage, &prefix).join("bin");
    let target = options.target.as_ref().map(|target| PlanTarget {
        name: target.name.clone(),
        description: target.description.clone(),
        distribution: target.distribution.clone(),
        release: target.release.clone(),
        codename: target.codename.clone(),
        version_suffix: target.version_suffix.clone(),
        build_root: top.roots(&target.name).join("build"),
        proof_root: top.roots(&target.name).join("proof"),
    });
    let build_root = target.as_ref().map(|target| InRoot {
        root: target.build_root.clone(),
        binds: vec![layout.set_dir(&set.name)],
    });
    let context = Context {
        set,
        platform,
        options,
        layout,
        prefix,
        stage,
        server_bindir,
        target,
        build_root,
    };
    let mut steps = fetch_steps(&context);
    let (build, parts, build_ids) = build_steps(&context);
    steps.extend(build);
    steps.extend(package_steps(&context, &parts, &build_ids));
    steps.push(smoke_step(&context, &build_ids));
    // A target's packages are for another machine: nothing installs here.
    if context.target.is_none() {
        steps.push(install_step(&context, build_ids));
    }
    Plan {
        set: set.name.clone(),
        description: set.description.clone(),
        platform: platform.name.clone(),
        os: platform.os.clone(),
        prefix: context.prefix,
        stage: context.stage,
        target: context.target,
        steps,
    }
}

/// Download every source (mirrors first), then unpack each.
fn fetch_steps(context: &Context<'_>) -> Vec<Step> {
    let Context {
        set,
        options,
        layout,
        ..
    } = context;
    let mut steps = Vec::new();
    for component in &set.components {
        let source = &component.source;
        let urls = options
            .mirrors
            .iter()
            .map(|mirror| format!("{}/{}", mirror.trim_end_matches('/'), source.file))
            .chain(source.urls.iter().cloned())
            .collect();
        steps.push(Step {
            id: StepId::fetch(&component.name),
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
    for component in &set.components {
        steps.push(Step {
            id: StepId::unpack(&component.name),
            phase: Phase::Fetch,
            after: vec![StepId::fetch(&component.name)],
            action: Action::Unpack(Unpack {
                component: component.name.clone(),
                version: component.version.clone(),
                file: component.source.file.clone(),
                archive: component.source.archive,
                dest: layout.src(&set.name, &component.name, &component.version),
                tree: component.source.tree.clone(),
                max_unpacked: component.source.max_unpacked,
                patches: component.source.patches.clone(),
            }),
        });
    }
    steps
}

/// Every component's build steps, in order; the parts packages are split
/// into; the last step of each component.
///
/// Each step comes after exactly what it uses, so that the executor can run
/// steps side by side:
/// - a configure step, after the step before it;
/// - a compile step, after the component's last configure or compile step
///   (it builds in the source tree, not from the stage): contrib compiles
///   while the server installs;
/// - an install step, after the step before it and the last install of any
///   component (installs land in plan order);
/// - a component's first step, after what it depends on (and a plugin after
///   every server before it, `depends` or not): a server's own files, not its
///   contrib part, which is packaged apart and which nothing builds against.
///   A plugin builds while contrib does.
fn build_steps(context: &Context<'_>) -> (Vec<Step>, Vec<PackagePart>, Vec<StepId>) {
    let Context { set, platform, .. } = context;
    let mut steps = Vec::new();
    let mut parts = Vec::new();
    let mut last_step_of: BTreeMap<&str, StepId> = BTreeMap::new();
    // What a component that depends on it comes after.
    let mut depended_on: BTreeMap<&str, StepId> = BTreeMap::new();
    // Installs land in plan order, across components: a file two of them
    // write is always the later one's.
    let mut last_installed: Option<StepId> = None;
    let mut server_staged = false;
    for component in &set.components {
        let variables = template_variables(context, component);
        let env = component_env(component, &variables);
        let mut previous = StepId::unpack(&component.name);
        let mut last_built = previous.clone();
        // A plugin builds against a server's files even when its recipe
        // forgets to say `depends`: every server before it counts.
        let servers = set
            .components
            .iter()
            .take_while(|other| other.name != component.name)
            .filter(|other| component.role != Role::Server && other.role == Role::Server)
            .map(|other| &other.name);
        let mut dependencies: Vec<StepId> = Vec::new();
        for dep in component.depends.iter().chain(servers) {
            let id = depended_on
                .get(dep.as_str())
                .or_else(|| last_step_of.get(dep.as_str()))
                .cloned();
            if let Some(id) = id.filter(|id| !dependencies.contains(id)) {
                dependencies.push(id);
            }
        }
        let templates = component
            .steps
            .iter()
            .filter(|t| t.only.is_empty() || t.only.contains(&platform.name));
        for template in templates {
            let id = StepId::build(&component.name, template.label.as_deref(), template.kind);
            // The server's first install empties the stage: a rebuilt server
            // never lands on stale files.
            let empties_stage = template.kind == StepKind::Install
                && component.role == Role::Server
                && !server_staged;
            server_staged |= empties_stage;
            if template.kind == StepKind::Install {
                parts.push(PackagePart {
                    step: id.clone(),
                    component: component.name.clone(),
                    part: part_kind(component, template),
                });
            }
            let mut after = match template.kind {
                StepKind::Configure => vec![previous],
                StepKind::Compile => vec![last_built.clone()],
                StepKind::Install => {
                    let mut after = vec![previous];
                    after.extend(last_installed.clone().filter(|id| !after.contains(id)));
                    after
                }
            };
            after.append(&mut dependencies);
            if template.kind == StepKind::Install {
                last_installed = Some(id.clone());
            } else {
                last_built = id.clone();
            }
            let contrib = part_kind(component, template) == PartKind::Contrib;
            if !contrib {
                depended_on.insert(&component.name, id.clone());
            }
            steps.push(Step {
                id: id.clone(),
                phase: Phase::Build,
                after,
                action: Action::Run(build_run(
                    context,
                    component,
                    template,
                    &variables,
                    &env,
                    empties_stage,
                )),
            });
            previous = id;
        }
        last_step_of.insert(&component.name, previous);
    }
    (steps, parts, last_step_of.into_values().collect())
}

/// The values of `{name}` in a component's templates.
fn template_variables(
    context: &Context<'_>,
    component: &Component,
) -> BTreeMap<&'static str, String> {
    let src = context
        .layout
        .src(&context.set.name, &component.name, &component.version);
    BTreeMap::from([
        ("prefix", context.prefix.clone()),
        ("stage", context.stage.display().to_string()),
        ("make", context.platform.make.clone()),
        ("server_bindir", context.server_bindir.display().to_string()),
        ("name", component.name.clone()),
        ("version", component.version.clone()),
        ("src", src.display().to_string()),
    ])
}

/// The variables every step of a component gets: `PATH` first, then its own.
fn component_env(component: &Component, variables: &BTreeMap<&str, String>) -> Vec<EnvVar> {
    let mut env = Vec::new();
    if !component.path_prepend.is_empty() {
        let dirs: Vec<String> = component
            .path_prepend
            .iter()
            .map(|dir| recipe::expand(dir, variables))
            .collect();
        env.push(EnvVar {
            name: "PATH".into(),
            value: dirs.join(":"),
            prepend: true,
        });
    }
    env.extend(component.env.iter().map(|(name, value)| EnvVar {
        name: name.clone(),
        value: recipe::expand(value, variables),
        prepend: false,
    }));
    env
}

fn part_kind(component: &Component, template: &StepTemplate) -> PartKind {
    match (component.role, template.label.as_deref()) {
        (Role::Server, Some("contrib")) => PartKind::Contrib,
        (Role::Server, _) => PartKind::Server,
        (Role::Plugin, _) => PartKind::Plugin(
            component
                .subpackage
                .clone()
                .unwrap_or_else(|| component.name.clone()),
        ),
    }
}

fn build_run(
    context: &Context<'_>,
    component: &Component,
    template: &StepTemplate,
    variables: &BTreeMap<&str, String>,
    component_env: &[EnvVar],
    empties_stage: bool,
) -> Run {
    let src = PathBuf::from(&variables["src"]);
    let mut env = component_env.to_vec();
    if template.kind == StepKind::Configure {
        env.extend(
            context
                .platform
                .configure_env
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: value.clone(),
                    prepend: false,
                }),
        );
    }
    let target_env = context
        .target
        .as_ref()
        .and_then(|target| template.target_env.get(&target.name));
    env.extend(
        template
            .env
            .iter()
            .chain(target_env.into_iter().flatten())
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                value: recipe::expand(value, variables),
                prepend: false,
            }),
    );
    let cwd = match &template.dir {
        Some(dir) => src.join(recipe::expand(dir, variables)),
        None => src.clone(),
    };
    Run {
        kind: template.kind,
        subject: subject(
            &component.name,
            &component.version,
            template.label.as_deref(),
        ),
        cwd,
        env,
        argv: template
            .run
            .iter()
            .map(|arg| recipe::expand(arg, variables))
            .collect(),
        jobs: template.parallel.then_some(context.options.jobs),
        ccache_dir: (template.kind != StepKind::Install)
            .then(|| context.options.ccache_dir.clone())
            .flatten(),
        escalate: None,
        fresh_dir: empties_stage.then(|| context.stage.clone()),
        installs: template.kind == StepKind::Install,
        path_map: vec![
            PathMap {
                from: src.display().to_string(),
                to: format!("/usr/src/debug/{}-{}", component.name, component.version),
            },
            PathMap {
                from: context.stage.display().to_string(),
                to: String::new(),
            },
        ],
        root: context.build_root.clone(),
    }
}

fn package_steps(context: &Context<'_>, parts: &[PackagePart], build_ids: &[StepId]) -> Vec<Step> {
    let Context {
        set,
        platform,
        options,
        layout,
        ..
    } = context;
    let mut formats = options.formats.clone().unwrap_or_else(|| {
        options
            .target
            .as_ref()
            .map_or_else(|| platform.package_formats.clone(), |t| t.formats.clone())
    });
    // A target's .debs are what sbuild makes of its source package, as the
    // RPMs are what rpmbuild makes of the SRPM: the .dsc comes first.
    let from_source = context.target.is_some() && formats.contains(&PackageFormat::Deb);
    if from_source && !formats.contains(&PackageFormat::Dsc) {
        let deb = formats.iter().position(|f| *f == PackageFormat::Deb);
        formats.insert(deb.unwrap_or(0), PackageFormat::Dsc);
    }
    // The SRPM's %prep applies them as the unpack does.
    let patched = set
        .components
        .iter()
        .any(|component| !component.source.patches.is_empty());
    formats
        .into_iter()
        .map(|format| Step {
            id: StepId::package(format),
            phase: Phase::Package,
            after: if format == PackageFormat::Deb && from_source {
                [build_ids, &[StepId::package(PackageFormat::Dsc)]].concat()
            } else {
                build_ids.to_vec()
            },
            action: Action::Package(Box::new(Package {
                format,
                name: set.package.name.clone(),
                version: set.package_version().to_owned(),
                // `1+deb13`: builds for two releases can share a repository.
                release: format!(
                    "{}{}",
                    options.release.as_deref().unwrap_or(&set.package.release),
                    context
                        .target
                        .as_ref()
                        .map_or("", |target| &target.version_suffix)
                ),
                prefix: context.prefix.clone(),
                stage: context.stage.clone(),
                dist: options
                    .dist_dir
                    .clone()
                    .unwrap_or_else(|| layout.dist(&set.name)),
                parts: parts.to_vec(),
                rpm_dist: (format == PackageFormat::Rpm).then(|| options.rpm_dist.clone()),
                build_depends: if format == PackageFormat::Dsc {
                    build_depends(platform, options.target.as_ref())
                } else {
                    Vec::new()
                },
                build_requires: if format == PackageFormat::Rpm {
                    platform.srpm_build_requires(patched)
                } else {
                    Vec::new()
                },
                provides: set.package.provides.clone(),
                summary: set.package.summary.clone(),
                license: set.package.license.clone(),
                url: set.package.url.clone(),
                maintainer: set
                    .package
                    .maintainer
                    .clone()
                    .unwrap_or_else(|| "bdr-dist <bdr-dist@localhost>".to_owned()),
                platform: platform.name.clone(),
                os: platform.os.clone(),
                service: ServiceAccount {
                    user: platform.service_user.clone(),
                    id: platform.service_id,
                    home: platform.service_home.clone(),
                },
                tools: build_tools(platform),
                signing: options.signing.clone(),
                repo: options.repo,
                repo_url: options.repo_url.clone(),
                root: context.build_root.clone(),
                target: context.target.clone(),
            })),
        })
        .collect()
}

/// What Debian Policy says every package build has, so a source package
/// must not name it (lintian: `build-depends-on-build-essential`,
/// `build-depends-on-essential-package-without-using-version`):
/// build-essential's packages and the Essential ones the prerequisites name.
const IMPLIED_BUILD_DEPENDS: &[&str] = &[
    "build-essential",
    "bash",
    "coreutils",
    "dash",
    "diffutils",
    "dpkg-dev",
    "findutils",
    "g++",
    "gcc",
    "grep",
    "gzip",
    "libc6-dev",
    "make",
    "sed",
    "tar",
];

/// The source package's `Build-Depends`: debhelper (its `debian/rules` is
/// dh's), then the Debian package of every build prerequisite, by the
/// target's name for it, less what every build has.
fn build_depends(platform: &Platform, target: Option<&Target>) -> Vec<String> {
    let none = BTreeMap::new();
    let renamed = target.map_or(&none, |target| &target.packages);
    let mut packages: Vec<String> = platform
        .prerequisites
        .iter()
        .filter(|prerequisite| prerequisite.purpose == Purpose::Build)
        .filter_map(|prerequisite| prerequisite.apt_package(renamed))
        .filter(|package| !IMPLIED_BUILD_DEPENDS.contains(package))
        .map(str::to_owned)
        .collect();
    packages.sort();
    packages.dedup();
    packages.insert(0, "debhelper-compat (= 13)".to_owned());
    packages
}

/// The programs a build runs, by role, as this platform names them.
fn build_tools(platform: &Platform) -> BTreeMap<String, String> {
    let from_env = |variable: &str, default: &str| {
        platform
            .configure_env
            .get(variable)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    BTreeMap::from([
        ("cc".to_owned(), from_env("CC", &platform.cc)),
        ("make".to_owned(), platform.make.clone()),
        ("flex".to_owned(), from_env("FLEX", "flex")),
        ("bison".to_owned(), from_env("BISON", "bison")),
    ])
}

fn smoke_step(context: &Context<'_>, build_ids: &[StepId]) -> Step {
    let Context { set, options, .. } = context;
    Step {
        id: StepId::smoke(),
        phase: Phase::Smoke,
        after: build_ids.to_vec(),
        action: Action::Smoke(Smoke {
            driver: set.smoke.driver,
            nodes: options.nodes,
            bindir: context.server_bindir.clone(),
            preload: set.smoke.preload.clone(),
            extensions: set.smoke.extensions.clone(),
            run_as: options.run_as.clone(),
            from: options.smoke_from,
            keep: options.smoke_keep,
            checks: options.smoke_checks.clone(),
            network: options.smoke_network,
            tls: options.smoke_tls,
            target: context.target.clone(),
        }),
    }
}

/// The only step that escalates: root makes the prefix and extracts, from a
/// pipe, an archive of the finished stage whose entries are root's. Nothing
/// is copied with the builder's ownership, and existing directories keep theirs.
fn install_step(context: &Context<'_>, build_ids: Vec<StepId>) -> Step {
    let Context {
        set,
        platform,
        options,
        layout,
        ..
    } = context;
    let prefix = options
        .install_prefix
        .clone()
        .unwrap_or_else(|| context.prefix.clone());
    let fill = |argv: &[String]| -> Vec<String> {
        argv.iter()
            .map(|arg| arg.replace("{prefix}", &prefix))
            .collect()
    };
    Step {
        id: StepId::install(),
        phase: Phase::Install,
        after: build_ids,
        action: Action::Install(Install {
            from: join_prefix(&context.stage, &context.prefix),
            prefix: prefix.clone(),
            archive: layout.install_archive(&set.name),
            group: platform.install.group.clone(),
            gid: platform.install.gid,
            escalate: options.escalate.then(|| platform.escalate.clone()),
            mkdir: fill(&platform.install.mkdir),
            extract: fill(&platform.install.extract),
        }),
    }
}

fn subject(name: &str, version: &str, label: Option<&str>) -> String {
    match label {
        Some(label) => format!("{name} {version} ({label})"),
        None => format!("{name} {version}"),
    }
}
