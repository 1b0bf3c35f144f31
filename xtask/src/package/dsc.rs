//! The Debian source package (`package --format dsc`): a `.dsc` of format
//! `3.0 (quilt)`, the pinned upstream tarballs as its `.orig.tar.*` (one
//! `orig-<component>` per source after the first) and a `.debian.tar.xz`
//! whose `debian/` is generated from the plan, as the SRPM's spec is: the
//! build steps through the same compiler wrappers and environment
//! allowlist as `cargo xtask build`, the same split into binary packages
//! and the same Depends rules as the .debs written directly. sbuild (or a
//! build farm) makes a target's .debs of it (`sbuild.rs`).
//!
//! The texts of `debian/` are pure ([`debian_files`]); [`make`] unpacks the
//! tarballs beside them and has `dpkg-source -b` (in the target's build
//! root, for a target) write the `.dsc` and the `.debian.tar.xz`.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};

use super::{deb, Contents, Kind};
use crate::{
    layout::Layout,
    plan::{compiler_flags, Action, Phase, Plan, Run, COMPILERS},
    process::{self, Command},
    sources::{
        archive::{self, Expect},
        fetch::{self, Cache},
    },
};

/// The newest Standards-Version every target's lintian knows.
const STANDARDS_VERSION: &str = "4.6.2";

/// The script `debian/rules` runs the plan's build steps with.
const BUILD_SCRIPT: &str = "bdr-dist-build";

/// One upstream tarball of the source package.
#[derive(Debug, Clone)]
pub struct Orig {
    pub component: String,
    /// As fetched and pinned: `postgresql-15.18.tar.bz2`.
    pub file: String,
    /// `postgresql15-pglogical_15.18.orig.tar.bz2`, or
    /// `..._15.18.orig-pglogical.tar.gz` for a source after the first.
    pub name: String,
    /// Where `dpkg-source -x` unpacks it: `""` for the first, else its
    /// component's name.
    pub dir: String,
    /// The plan's tree of it (the build's `{src}`).
    pub tree: PathBuf,
}

/// The source package's tarballs, from the plan's fetches and unpacks: the
/// first source is the main `.orig.tar.*`, every other one an
/// `orig-<component>`.
pub fn origs(plan: &Plan, name: &str, version: &str) -> anyhow::Result<Vec<Orig>> {
    let mut origs: Vec<Orig> = Vec::new();
    for step in plan.steps_in(&[Phase::Fetch]) {
        let Action::Unpack(unpack) = &step.action else {
            continue;
        };
        let Some(compression) = [".tar.gz", ".tar.bz2", ".tar.xz"]
            .into_iter()
            .find(|suffix| unpack.file.ends_with(suffix))
        else {
            bail!(
                "{} cannot be an orig tarball of a Debian source package (it must be .tar.gz, .tar.bz2 or .tar.xz)",
                unpack.file
            );
        };
        let first = origs.is_empty();
        if !first
            && (unpack.component.is_empty()
                || !unpack
                    .component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            bail!(
                "component `{}` cannot name an orig-<component> tarball (letters, digits and `-` only)",
                unpack.component
            );
        }
        if !first && !unpack.patches.is_empty() {
            bail!(
                "the patches of `{}` cannot go into debian/patches: the source package carries patches of its first source (`{}`) only",
                unpack.component,
                origs[0].component
            );
        }
        origs.push(Orig {
            component: unpack.component.clone(),
            file: unpack.file.clone(),
            name: if first {
                format!("{name}_{version}.orig{compression}")
            } else {
                format!("{name}_{version}.orig-{}{compression}", unpack.component)
            },
            dir: if first {
                String::new()
            } else {
                unpack.component.clone()
            },
            tree: unpack.dest.clone(),
        });
    }
    if origs.is_empty() {
        bail!("the set has no source to make a source package of");
    }
    Ok(origs)
}

/// A file of `debian/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianFile {
    /// Below `debian/`: `rules`, `source/format`.
    pub path: String,
    pub text: String,
    pub mode: u32,
}

/// What the pure texts need from the world: the -libs package's sonames
/// (`libpq 5`), read from the stage, and each patch's text.
pub struct Facts {
    pub sonames: Vec<(String, String)>,
    pub patches: Vec<(String, String)>,
}

/// Every file of `debian/`, from the plan and the package contents.
pub fn debian_files(
    contents: &Contents<'_>,
    plan: &Plan,
    origs: &[Orig],
    facts: &Facts,
) -> Vec<DebianFile> {
    let package = contents.package;
    let version = deb::debian_version(contents);
    let file = |path: &str, text: String, mode: u32| DebianFile {
        path: path.to_owned(),
        text,
        mode,
    };
    let mut files = vec![
        file("source/format", "3.0 (quilt)\n".into(), 0o644),
        file(
            "source/lintian-overrides",
            "# PostgreSQL's tarballs carry its documentation built, as HTML, beside\n\
             # its source: doc/src/sgml/*.sgml, in the same tarball.\n\
             source-is-missing [doc/src/sgml/html/*]\n"
                .into(),
            0o644,
        ),
        file("control", control(contents), 0o644),
        file("changelog", changelog(contents), 0o644),
        file("copyright", source_copyright(contents, origs), 0o644),
        file("rules", rules(contents), 0o755),
        file(BUILD_SCRIPT, build_script(contents, plan, origs), 0o755),
    ];
    let libs = contents.name_of(&Kind::Libs);
    if contents.subpackages.iter().any(|s| s.kind == Kind::Libs) && !facts.sonames.is_empty() {
        // Each soname of the -libs package is that package's, at exactly
        // this version, not a library of the same name the build root has.
        let lines: BTreeSet<String> = facts
            .sonames
            .iter()
            .map(|(library, soversion)| format!("{library} {soversion} {libs} (= {version})\n"))
            .collect();
        files.push(file("shlibs.local", lines.into_iter().collect(), 0o644));
    }
    if !facts.patches.is_empty() {
        let mut series = String::new();
        for (name, text) in &facts.patches {
            files.push(file(&format!("patches/{name}"), text.clone(), 0o644));
            let _ = writeln!(series, "{name}");
        }
        files.push(file("patches/series", series, 0o644));
    }
    let extras = deb::extras(contents);
    for (index, extra) in extras.iter().enumerate() {
        files.push(file(
            &format!("bdr-dist-extra/{}", extra_name(index, &extra.path)),
            extra.text.clone(),
            0o644,
        ));
    }
    for subpackage in &contents.subpackages {
        let name = contents.name_of(&subpackage.kind);
        let mut lines: Vec<String> = subpackage.files.clone();
        lines.extend(
            extras
                .iter()
                .filter(|extra| extra.kind == subpackage.kind)
                .map(|extra| extra.path.trim_start_matches('/').to_owned()),
        );
        lines.sort();
        files.push(file(
            &format!("{name}.install"),
            lines.iter().map(|line| format!("{line}\n")).collect(),
            0o644,
        ));
        for (script, text) in deb::maintainer_scripts(package, &subpackage.kind) {
            // debhelper's own snippets go where the token is.
            let text = match text.rfind("exit 0\n") {
                Some(at) => format!("{}#DEBHELPER#\n\n{}", &text[..at], &text[at..]),
                None => format!("{text}\n#DEBHELPER#\n"),
            };
            files.push(file(&format!("{name}.{script}"), text, 0o755));
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

fn extra_name(index: usize, path: &str) -> String {
    format!("{index}-{}", path.rsplit('/').next().unwrap_or("file"))
}

/// `debian/control`: the source stanza, then one binary package per
/// subpackage, with the Depends rules of the .debs written directly.
fn control(contents: &Contents<'_>) -> String {
    let package = contents.package;
    let mut text = format!(
        "Source: {}\nSection: database\nPriority: optional\nMaintainer: {}\n\
         Rules-Requires-Root: no\nBuild-Depends: {}\nStandards-Version: {STANDARDS_VERSION}\n\
         Homepage: {}\n",
        package.name,
        package.maintainer,
        package.build_depends.join(",\n "),
        package.url
    );
    for subpackage in &contents.subpackages {
        let kind = &subpackage.kind;
        let mut depends = vec!["${shlibs:Depends}".to_owned(), "${misc:Depends}".to_owned()];
        depends.extend(deb::sibling_depends(contents, kind, "${binary:Version}"));
        let _ = write!(
            text,
            "\nPackage: {}\nArchitecture: any\nDepends: {}\n{}",
            contents.name_of(kind),
            depends.join(",\n "),
            deb::provides_and_description(contents, kind, "${binary:Version}")
        );
    }
    text
}

/// The one changelog entry, for the target's release (`trixie`), or
/// `unstable` for this host's own packages.
fn changelog(contents: &Contents<'_>) -> String {
    let package = contents.package;
    format!(
        "{} ({}) {}; urgency=medium\n\n  * {}\n\n -- {}  {}\n",
        package.name,
        deb::debian_version(contents),
        package
            .target
            .as_ref()
            .map_or("unstable", |target| &target.codename),
        super::changelog_entry(contents),
        package.maintainer,
        super::dates(contents.epoch).0
    )
}

/// DEP-5, with each source's paragraph naming where it is unpacked (the
/// first at the top, every other in its component's directory).
fn source_copyright(contents: &Contents<'_>, origs: &[Orig]) -> String {
    let mut text = String::new();
    let mut dirs = origs.iter().map(|orig| &orig.dir);
    for line in contents.copyright.lines() {
        match line.strip_prefix("Files: ") {
            Some(_) => {
                let dir = dirs.next().map_or("", String::as_str);
                if dir.is_empty() {
                    text.push_str("Files: *\n");
                } else {
                    let _ = writeln!(text, "Files: {dir}/*");
                }
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    let _ = write!(
        text,
        "\nFiles: debian/*\nCopyright: bdr-dist, generated from the recipes\nLicense: {}\n See the upstream sources' license above.\n",
        contents.package.license
    );
    text
}

/// `debian/rules`: dh, with the build and install of the plan's steps
/// (debian/bdr-dist-build) and the debhelper steps that would make these
/// packages differ from the .debs written directly turned off, each saying why.
fn rules(contents: &Contents<'_>) -> String {
    let libs = contents
        .subpackages
        .iter()
        .any(|s| s.kind == Kind::Libs)
        .then(|| contents.name_of(&Kind::Libs));
    let shlibdeps = match &libs {
        Some(libs) => {
            format!("\tdh_shlibdeps -p{libs} -- -x{libs}\n\tdh_shlibdeps -N{libs} -L{libs}\n")
        }
        None => "\tdh_shlibdeps\n".to_owned(),
    };
    format!(
        "#!/usr/bin/make -f\n\
         # Generated by bdr-dist: every binary package from the upstream tarballs,\n\
         # built by the steps of `cargo xtask build`, through its compiler wrappers\n\
         # and in its scrubbed environment (debian/{BUILD_SCRIPT}).\n\
         \n\
         JOBS := $(patsubst parallel=%,%,$(filter parallel=%,$(DEB_BUILD_OPTIONS)))\n\
         \n\
         %:\n\
         \tdh $@\n\
         \n\
         # The steps configure themselves, from the tarballs' own configure and\n\
         # config.guess (no autoreconf), and the tree is built in place once.\n\
         override_dh_auto_configure override_dh_auto_test override_dh_auto_clean:\n\
         override_dh_autoreconf override_dh_update_autotools_config:\n\
         \n\
         override_dh_auto_build:\n\
         \tsh debian/{BUILD_SCRIPT} build $(or $(JOBS),1)\n\
         \n\
         override_dh_auto_install:\n\
         \tsh debian/{BUILD_SCRIPT} install $(or $(JOBS),1)\n\
         \n\
         # The libraries live in the prefix, off the dynamic linker's path: no\n\
         # shlibs file, no ldconfig trigger. Their sonames are the -libs package's\n\
         # (debian/shlibs.local), which does not depend on itself.\n\
         override_dh_makeshlibs:\n\
         \n\
         override_dh_shlibdeps:\n\
         {shlibdeps}\
         \n\
         # The service is neither enabled nor started: the setup script makes the\n\
         # cluster first. The postinst makes the socket directory itself.\n\
         override_dh_installsystemd override_dh_installtmpfiles:\n\
         \n\
         # Debug info as the compiler wrote it.\n\
         override_dh_dwz:\n\
         \n\
         # gzip, as the .debs bdr-dist writes: what its checks of stripping,\n\
         # build-ids and Depends read back (lintian warns of it).\n\
         override_dh_builddeb:\n\
         \tdh_builddeb -- -Zgzip\n\
         \n\
         override_dh_clean:\n\
         \tdh_clean\n\
         \trm -rf debian/.compilers\n"
    )
}

/// A word of shell in double quotes, with the placeholders of
/// [`relocated`] turned into the script's variables.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' | '$' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '\u{1}' => out.push_str("${"),
            '\u{2}' => out.push('}'),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` with this machine's stage and trees replaced by placeholders of
/// the script's `STAGE` and `SRC` (the unpacked source package).
fn relocated(text: &str, stage: &str, origs: &[Orig]) -> String {
    let mut text = text.replace(stage, "\u{1}STAGE\u{2}");
    for orig in origs {
        let to = if orig.dir.is_empty() {
            "\u{1}SRC\u{2}".to_owned()
        } else {
            format!("\u{1}SRC\u{2}/{}", orig.dir)
        };
        text = text.replace(&orig.tree.display().to_string(), &to);
    }
    text
}

/// `debian/bdr-dist-build build|install JOBS`: the plan's build steps up to
/// the first install, then the rest and the extra files.
fn build_script(contents: &Contents<'_>, plan: &Plan, origs: &[Orig]) -> String {
    let stage = plan.stage.display().to_string();
    let relocate = |text: &str| relocated(text, &stage, origs);
    let runs: Vec<&Run> = plan
        .steps_in(&[Phase::Build])
        .filter_map(|step| match &step.action {
            Action::Run(run) => Some(run),
            _ => None,
        })
        .collect();
    let kept: Vec<String> = process::KEPT_ENVIRONMENT
        .iter()
        .map(|name| format!("${{{name}+\"{name}=${name}\"}}"))
        .collect();
    let mut script = format!(
        "#!/bin/sh\n\
         # Generated by bdr-dist: the build steps of `cargo xtask build`, each in its\n\
         # tree, in its scrubbed environment (its allowlist and LC_ALL=C, none of\n\
         # dpkg-buildflags'), with compilers that map the build paths out of what\n\
         # they write and link as distributions do.\n\
         set -e\n\
         phase=$1\n\
         jobs=${{2:-1}}\n\
         SRC=$(pwd)\n\
         STAGE=$SRC/debian/tmp\n\
         case $SRC in\n\
         *[!A-Za-z0-9._/+-]*) echo \"{BUILD_SCRIPT}: the build path $SRC is not plain\" >&2; exit 1 ;;\n\
         esac\n\
         bdr_env() {{ env -i {} LC_ALL=C \"$@\"; }}\n\
         # wrap DIR FLAGS...: the compilers, each calling the real one with FLAGS.\n\
         wrap() {{\n\
         \tdir=$1\n\
         \tshift\n\
         \tmkdir -p \"$dir\"\n\
         \tfor cc in {}; do\n\
         \t\treal=$(command -v \"$cc\") || continue\n\
         \t\t{{\n\
         \t\t\tprintf '#!/bin/sh\\nexec %s' \"$real\"\n\
         \t\t\tfor flag in \"$@\"; do printf \" '%s'\" \"$flag\"; done\n\
         \t\t\tprintf ' \"$@\"\\n'\n\
         \t\t}} > \"$dir/$cc\"\n\
         \t\tchmod 0755 \"$dir/$cc\"\n\
         \tdone\n\
         }}\n",
        kept.join(" "),
        COMPILERS.join(" "),
    );
    // One directory of wrappers per distinct set of flags.
    let mut wrappers: Vec<(Vec<String>, String)> = Vec::new();
    for run in runs.iter().filter(|run| !run.path_map.is_empty()) {
        let flags: Vec<String> = compiler_flags(&run.path_map)
            .iter()
            .map(|flag| quoted(&relocate(flag)))
            .collect();
        if !wrappers.iter().any(|(known, _)| *known == flags) {
            let name = format!("{}", wrappers.len() + 1);
            wrappers.push((flags, name));
        }
    }
    script.push_str("\nif [ \"$phase\" = build ]; then\n");
    for (flags, name) in &wrappers {
        let _ = writeln!(
            script,
            "wrap \"$SRC/debian/.compilers/{name}\" {}",
            flags.join(" ")
        );
    }
    let mut in_install = false;
    for run in &runs {
        if run.installs && !in_install {
            in_install = true;
            script.push_str("fi\n\nif [ \"$phase\" = install ]; then\n");
        }
        let dir = origs
            .iter()
            .find_map(|orig| {
                let below = run.cwd.strip_prefix(&orig.tree).ok()?;
                let mut dir = relocate(&orig.tree.display().to_string());
                if !below.as_os_str().is_empty() {
                    dir = format!("{dir}/{}", below.display());
                }
                Some(dir)
            })
            .unwrap_or_else(|| relocate(&run.cwd.display().to_string()));
        let mut line = vec!["bdr_env".to_owned()];
        let mut path = None;
        if !run.path_map.is_empty() {
            let flags: Vec<String> = compiler_flags(&run.path_map)
                .iter()
                .map(|flag| quoted(&relocate(flag)))
                .collect();
            let name = &wrappers
                .iter()
                .find(|(known, _)| *known == flags)
                .expect("a wrapper for every set of flags")
                .1;
            path = Some(format!("\"$SRC/debian/.compilers/{name}\""));
        }
        let mut env_path = false;
        for var in &run.env {
            let mut value = quoted(&relocate(&var.value));
            if var.prepend {
                value = format!("{value}:\"${}\"", var.name);
            }
            if var.name == "PATH" {
                env_path = true;
                if let Some(path) = &path {
                    value = format!("{path}:{value}");
                }
            }
            line.push(format!("{}={value}", var.name));
        }
        if let (Some(path), false) = (&path, env_path) {
            line.push(format!("PATH={path}:\"$PATH\""));
        }
        let mut args = run.argv.iter();
        line.extend(args.next().map(|program| quoted(program)));
        if run.jobs.is_some() {
            line.push("-j\"$jobs\"".into());
        }
        line.extend(args.map(|arg| quoted(&relocate(arg))));
        let _ = writeln!(script, "( cd {} && {} )", quoted(&dir), line.join(" "));
    }
    if !in_install {
        script.push_str("fi\n\nif [ \"$phase\" = install ]; then\n");
    }
    for (index, extra) in deb::extras(contents).iter().enumerate() {
        let _ = writeln!(
            script,
            "install -D -m {:04o} debian/bdr-dist-extra/{} \"$STAGE{}\"",
            extra.mode,
            extra_name(index, &extra.path),
            extra.path
        );
    }
    script.push_str("fi\n");
    script
}

/// Write the source package into `dist`: the tarballs, unpacked with
/// `debian/` beside them, then `dpkg-source -b`. Returns what it wrote.
pub fn make(contents: &Contents<'_>, plan: &Plan, layout: &Layout) -> anyhow::Result<Vec<PathBuf>> {
    let dist = &contents.package.dist;
    remove_source_package(dist)?;
    let result = write(contents, plan, layout);
    if result.is_err() {
        remove_source_package(dist)?;
    }
    result
}

/// Whether `name` is a file of a Debian source package.
pub fn is_source_file(name: &str) -> bool {
    name.ends_with(".dsc") || name.contains(".debian.tar.") || name.contains(".orig.tar.") || {
        name.split_once(".orig-")
            .is_some_and(|(_, rest)| rest.contains(".tar."))
    }
}

fn remove_source_package(dist: &Path) -> anyhow::Result<()> {
    let Ok(entries) = fs::read_dir(dist) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if is_source_file(&name) {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

fn write(contents: &Contents<'_>, plan: &Plan, layout: &Layout) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let origs = origs(plan, &package.name, &package.version)?;
    let work = &contents.work;
    let tree = work.join(format!("{}-{}", package.name, package.version));
    fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    // The pinned bytes, from the cache (rehashed), under their orig names,
    // and unpacked where `dpkg-source -x` puts them, with the same checks.
    let cache = Cache::new(layout.downloads().dir);
    let mut fetches = plan
        .steps_in(&[Phase::Fetch])
        .filter_map(|step| match &step.action {
            Action::Fetch(fetch) => Some(fetch),
            _ => None,
        });
    for orig in &origs {
        let fetch = fetches
            .find(|fetch| fetch.file == orig.file)
            .with_context(|| format!("no fetch of {} in the plan", orig.file))?;
        let hit = fetch::cached(fetch, &cache, &Default::default())?.with_context(|| {
            format!(
                "{} is not in the cache: run `cargo xtask fetch`",
                fetch.file
            )
        })?;
        let copy = work.join(&orig.name);
        if fs::hard_link(&hit.path, &copy).is_err() {
            fs::copy(&hit.path, &copy)
                .with_context(|| format!("cannot copy {} to {}", fetch.file, copy.display()))?;
        }
        let dest = if orig.dir.is_empty() {
            tree.clone()
        } else {
            tree.join(&orig.dir)
        };
        archive::unpack(
            &copy,
            fetch.archive,
            &dest,
            &Expect {
                tree: fetch.tree.as_deref(),
                max_bytes: fetch.max_unpacked,
            },
        )?;
        // What unpacking records beside a tree is no part of the source.
        for record in [archive::epoch_path(&dest), archive::tree_path(&dest)] {
            if record.exists() {
                fs::remove_file(&record)
                    .with_context(|| format!("cannot remove {}", record.display()))?;
            }
        }
    }
    let facts = Facts {
        sonames: libs_sonames(contents)?,
        patches: patches(plan)?,
    };
    for file in debian_files(contents, plan, &origs, &facts) {
        let path = tree.join("debian").join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, &file.text).with_context(|| format!("cannot write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))?;
    }
    let output = Command::new("dpkg-source")
        .arg("-b")
        .arg(tree.file_name().expect("a name"))
        .cwd(work)
        .env("SOURCE_DATE_EPOCH", contents.epoch.to_string())
        .in_root_if(package.root.as_ref())
        .checked_output()
        .context("dpkg-source -b could not make the source package")?;
    let log = work.join("dpkg-source.log");
    fs::write(&log, [output.stdout, output.stderr].concat())?;
    let stem = format!("{}_{}", package.name, deb::debian_version(contents));
    let mut names = vec![format!("{stem}.dsc"), format!("{stem}.debian.tar.xz")];
    names.extend(origs.iter().map(|orig| orig.name.clone()));
    let mut made = Vec::new();
    for name in names {
        let from = work.join(&name);
        if !from.is_file() {
            bail!(
                "dpkg-source -b did not write {name} (its output: {})",
                log.display()
            );
        }
        let to = package.dist.join(&name);
        fs::rename(&from, &to)
            .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
        made.push(to);
    }
    Ok(made)
}

/// The -libs package's sonames (`libpq`, `5`), read from the stage.
fn libs_sonames(contents: &Contents<'_>) -> anyhow::Result<Vec<(String, String)>> {
    let mut sonames = Vec::new();
    for subpackage in contents.subpackages.iter().filter(|s| s.kind == Kind::Libs) {
        for file in &subpackage.files {
            let on_disk = contents.package.stage.join(file);
            if !super::elf::is_elf(&on_disk) {
                continue;
            }
            if let Some(soname) = super::elf::soname(&on_disk)? {
                if let Some((library, version)) = soname.split_once(".so.") {
                    sonames.push((library.to_owned(), version.to_owned()));
                }
            }
        }
    }
    sonames.sort();
    sonames.dedup();
    Ok(sonames)
}

/// The first source's patches, by file name, as the recipe carries them.
fn patches(plan: &Plan) -> anyhow::Result<Vec<(String, String)>> {
    let Some(unpack) = plan
        .steps_in(&[Phase::Fetch])
        .find_map(|step| match &step.action {
            Action::Unpack(unpack) => Some(unpack),
            _ => None,
        })
    else {
        return Ok(Vec::new());
    };
    unpack
        .patches
        .iter()
        .map(|patch| {
            let name = patch
                .path
                .file_name()
                .context("a patch has no file name")?
                .to_string_lossy()
                .into_owned();
            let text = fs::read_to_string(&patch.path)
                .with_context(|| format!("cannot read {}", patch.path.display()))?;
            if hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())) != patch.sha256
            {
                bail!(
                    "{} changed since the recipe was loaded",
                    patch.path.display()
                );
            }
            Ok((name, text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::fixture;

    /// Every file of `debian/` for the stand-in set, one after another.
    #[test]
    fn the_debian_directory_of_the_source_package() {
        let root = crate::project_root();
        let platforms = crate::input::platform::names(&root.join("platforms")).unwrap();
        let set = crate::input::recipe::load(&root.join("recipes"), "pg15-pglogical", &platforms)
            .unwrap();
        let platform = crate::input::platform::load(&root.join("platforms"), "linux").unwrap();
        let options = crate::plan::PlanOptions {
            formats: Some(vec![crate::input::platform::PackageFormat::Dsc]),
            ..crate::plan::PlanOptions::for_tests()
        };
        let plan = crate::plan::plan(&set, &platform, &options);
        let build_depends = plan
            .steps
            .iter()
            .find_map(|step| match &step.action {
                Action::Package(package) => Some(package.build_depends.clone()),
                _ => None,
            })
            .unwrap();
        fixture(|contents| {
            let mut package = contents.package.clone();
            package.build_depends = build_depends;
            let contents = Contents {
                package: &package,
                ..contents.clone()
            };
            let origs = origs(&plan, &package.name, &package.version).unwrap();
            let facts = Facts {
                sonames: vec![("libpq".into(), "5".into())],
                patches: Vec::new(),
            };
            let text: Vec<String> = debian_files(&contents, &plan, &origs, &facts)
                .iter()
                .map(|file| {
                    format!(
                        "==> debian/{} ({:04o}) <==\n{}",
                        file.path, file.mode, file.text
                    )
                })
                .collect();
            expect_test::expect_file!["../../../tests/golden/debian-source"]
                .assert_eq(&text.join("\n"));
        });
    }

    #[test]
    fn orig_tarballs_are_named_as_dpkg_source_wants() {
        let root = crate::project_root();
        let platforms = crate::input::platform::names(&root.join("platforms")).unwrap();
        let set = crate::input::recipe::load(&root.join("recipes"), "pg15-pglogical", &platforms)
            .unwrap();
        let platform = crate::input::platform::load(&root.join("platforms"), "linux").unwrap();
        let plan = crate::plan::plan(&set, &platform, &crate::plan::PlanOptions::for_tests());
        let names: Vec<(String, String)> = origs(&plan, "postgresql15-pglogical", "15.18")
            .unwrap()
            .into_iter()
            .map(|orig| (orig.name, orig.dir))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "postgresql15-pglogical_15.18.orig.tar.bz2".to_owned(),
                    String::new()
                ),
                (
                    "postgresql15-pglogical_15.18.orig-pglogical.tar.gz".to_owned(),
                    "pglogical".to_owned()
                ),
            ]
        );
        assert!(is_source_file(
            "postgresql15-pglogical_15.18.orig-pglogical.tar.gz"
        ));
        assert!(is_source_file(
            "postgresql15-pglogical_15.18-1.debian.tar.xz"
        ));
        assert!(!is_source_file("postgresql15-pglogical_15.18-1_amd64.deb"));
    }
}
