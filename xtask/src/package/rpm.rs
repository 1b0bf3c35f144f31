//! RPMs in the PGDG shape, built by `rpmbuild` from a generated spec.
//!
//! Two specs share everything but how the buildroot is filled: the binary
//! packages come from the stage (seconds, and exactly what was tested), and
//! the SRPM's spec rebuilds the same packages from the source tarballs, so
//! mock, Koji or COPR can build it for every distribution release.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use super::{extra_files, Contents, Kind};
use crate::{
    plan::{shell_quote, Action, Layout, Phase, Plan},
    sources::fetch,
};

/// Where the files of a spec's buildroot come from.
enum Fill<'a> {
    Stage(&'a Path),
    Sources(&'a Plan),
}

pub fn make(
    sh: &Shell,
    contents: &Contents<'_>,
    plan: &Plan,
    layout: &Layout,
) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let topdir = layout.set_dir(&plan.set).join("rpmbuild");
    if topdir.exists() {
        fs::remove_dir_all(&topdir)?;
    }
    for dir in ["SPECS", "SOURCES", "BUILD", "BUILDROOT", "RPMS", "SRPMS"] {
        fs::create_dir_all(topdir.join(dir))?;
    }
    for (index, extra) in extra_files(contents).iter().enumerate() {
        fs::write(
            topdir
                .join("SOURCES")
                .join(extra_source_name(index, &extra.path)),
            &extra.text,
        )?;
    }
    let cache = fetch::Cache::new(layout.downloads());
    for step in plan.steps_in(&[Phase::Fetch]) {
        if let Action::Fetch(fetch) = &step.action {
            let hit = fetch::cached(fetch, &cache, &Default::default())?.with_context(|| {
                format!(
                    "{} is not in the cache: run `cargo xtask fetch`",
                    fetch.file
                )
            })?;
            let copy = topdir.join("SOURCES").join(&fetch.file);
            if fs::hard_link(&hit.path, &copy).is_err() {
                fs::copy(&hit.path, &copy)?;
            }
        }
    }

    let binary_spec = topdir
        .join("SPECS")
        .join(format!("{}-from-stage.spec", package.name));
    fs::write(&binary_spec, spec(contents, &Fill::Stage(&package.stage)))?;
    let source_spec = topdir.join("SPECS").join(format!("{}.spec", package.name));
    fs::write(&source_spec, spec(contents, &Fill::Sources(plan)))?;

    let dist = &package.dist;
    let epoch = contents.epoch.to_string();
    let topdir_define = format!("_topdir {}", topdir.display());
    let rpmdir_define = format!("_rpmdir {}", dist.display());
    let srcrpmdir_define = format!("_srcrpmdir {}", dist.display());
    // Flat file names in dist/, as SHA256SUMS lists them.
    let name_format = "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm";
    let _env = sh.push_env("SOURCE_DATE_EPOCH", &epoch);
    for old in fs::read_dir(dist)? {
        let path = old?.path();
        if path.extension().is_some_and(|ext| ext == "rpm") {
            fs::remove_file(path)?;
        }
    }
    let output = cmd!(sh, "rpmbuild -bb --define {topdir_define} --define {rpmdir_define} --define {name_format} {binary_spec}")
        .ignore_status()
        .output()?;
    if !output.status.success() {
        let log = topdir.join("rpmbuild-bb.log");
        fs::write(
            &log,
            [output.stdout.as_slice(), output.stderr.as_slice()].concat(),
        )?;
        bail!(
            "rpmbuild -bb {} failed: {}\n{}\n  full log: {}",
            binary_spec.display(),
            output.status,
            tail(&output.stderr, 40),
            log.display()
        );
    }
    // The SRPM's header records its scripts with every macro expanded: build
    // it as mock does, under /builddir/build, with sources found relative to
    // the working directory and a fixed -j, so it names nothing of this machine.
    let sources_dir = topdir.join("SOURCES");
    let _cwd = sh.push_dir(&sources_dir);
    let neutral = [
        "_topdir /builddir/build",
        "_sourcedir .",
        "_smp_build_ncpus 1",
    ];
    let [neutral_topdir, neutral_sources, neutral_jobs] = neutral;
    let output = cmd!(
        sh,
        "rpmbuild -bs --define {neutral_topdir} --define {neutral_sources} --define {neutral_jobs} --define {srcrpmdir_define} {source_spec}"
    )
    .ignore_status()
    .output()?;
    if !output.status.success() {
        bail!(
            "rpmbuild -bs {} failed: {}\n{}",
            source_spec.display(),
            output.status,
            tail(&output.stderr, 40)
        );
    }
    let mut made: Vec<PathBuf> = fs::read_dir(dist)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rpm"))
        .collect();
    made.sort();
    Ok(made)
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn extra_source_name(index: usize, path: &str) -> String {
    format!("extra{index}-{}", path.rsplit('/').next().unwrap_or("file"))
}

fn quote_path(path: &str) -> String {
    if path.contains(' ') {
        format!("\"{path}\"")
    } else {
        path.to_owned()
    }
}

fn spec(contents: &Contents<'_>, fill: &Fill<'_>) -> String {
    let package = contents.package;
    let extras = extra_files(contents);
    let mut spec = String::new();
    let origin = match fill {
        Fill::Stage(_) => "the binary packages, from the staged build",
        Fill::Sources(_) => "every package, from the source tarballs",
    };
    let _ = write!(
        spec,
        "# Generated by bdr-dist: builds {origin}.\n\
         %global debug_package %{{nil}}\n\
         # The stage is already built as shipped: no stripping, no build-id links.\n\
         %global __os_install_post %{{nil}}\n\
         %global _build_id_links none\n\
         # gzip payloads: EL7's rpm cannot read zstd.\n\
         %global _binary_payload w6.gzdio\n\
         %global _source_payload w6.gzdio\n\
         # Reproducible: times from SOURCE_DATE_EPOCH, no host name.\n\
         %global use_source_date_epoch_as_buildtime 1\n\
         %global clamp_mtime_to_source_date_epoch 1\n\
         %global _buildhost reproducible\n\
         %global pgprefix {prefix}\n\n\
         Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: {summary}\nLicense: {license}\nURL: {url}\n",
        prefix = package.prefix,
        name = package.name,
        version = package.version,
        release = package.release,
        summary = package.summary,
        license = package.license,
        url = package.url,
    );
    let mut source_number = 0;
    if let Fill::Sources(plan) = fill {
        for step in plan.steps_in(&[Phase::Fetch]) {
            if let Action::Fetch(fetch) = &step.action {
                let _ = writeln!(spec, "Source{source_number}: {}", fetch.file);
                source_number += 1;
            }
        }
    }
    for (index, extra) in extras.iter().enumerate() {
        let _ = writeln!(
            spec,
            "Source{}: {}",
            100 + index,
            extra_source_name(index, &extra.path)
        );
    }
    if let Fill::Sources(_) = fill {
        spec.push_str("BuildRequires: gcc, make, flex, bison, perl, readline-devel, zlib-devel\n");
    }

    let subpackages: Vec<&Kind> = contents.subpackages.iter().map(|s| &s.kind).collect();
    for kind in &subpackages {
        if let Some(suffix) = kind.suffix() {
            let _ = write!(
                spec,
                "\n%package {suffix}\nSummary: {} - {}\n",
                package.summary,
                kind.description()
            );
        }
        for required in kind.requires() {
            if subpackages.contains(&&required) {
                let _ = writeln!(
                    spec,
                    "Requires: {}%{{?_isa}} = %{{version}}-%{{release}}",
                    contents.name_of(&required)
                );
            }
        }
        if let Some(pgdg) = contents.pgdg_name_of(kind) {
            let _ = writeln!(spec, "Provides: {pgdg} = %{{version}}-%{{release}}");
        }
        if **kind == Kind::Server {
            spec.push_str("Requires(pre): /usr/sbin/useradd, /usr/sbin/groupadd\n");
        }
        let section = kind.suffix().map(|s| format!(" {s}")).unwrap_or_default();
        let _ = write!(
            spec,
            "\n%description{section}\n{} ({}).\nPackaged by bdr-dist.\n",
            package.summary,
            kind.description()
        );
    }

    match fill {
        Fill::Stage(stage_root) => {
            spec.push_str("\n%prep\n\n%build\n\n%install\nmkdir -p %{buildroot}\n");
            let _ = writeln!(spec, "cp -a {}/. %{{buildroot}}/", stage_root.display());
        }
        Fill::Sources(plan) => write_source_build(&mut spec, plan),
    }
    for (index, extra) in extras.iter().enumerate() {
        let _ = writeln!(
            spec,
            "install -D -m 0644 %{{SOURCE{}}} %{{buildroot}}{}",
            100 + index,
            extra.path
        );
    }

    let user = &package.service_user;
    let _ = write!(
        spec,
        "\n%pre server\n\
         getent group {user} >/dev/null || groupadd -r {user}\n\
         getent passwd {user} >/dev/null || useradd -r -g {user} -d /var/lib/pgsql -s /bin/bash -c 'PostgreSQL Server' {user}\n\
         exit 0\n\n\
         %post server\n/sbin/ldconfig\n\n%postun server\n/sbin/ldconfig\n\n\
         %post libs\n/sbin/ldconfig\n\n%postun libs\n/sbin/ldconfig\n"
    );

    for subpackage in &contents.subpackages {
        let section = subpackage
            .kind
            .suffix()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        let _ = writeln!(spec, "\n%files{section}");
        let mut dirs = BTreeSet::new();
        for file in &subpackage.files {
            let mut parent = Path::new(file).parent();
            while let Some(dir) = parent {
                if dir.as_os_str().is_empty()
                    || !dir.starts_with(package.prefix.trim_start_matches('/'))
                {
                    break;
                }
                dirs.insert(format!("/{}", dir.display()));
                parent = dir.parent();
            }
        }
        for dir in dirs {
            let _ = writeln!(spec, "%dir {}", quote_path(&dir));
        }
        for file in &subpackage.files {
            let _ = writeln!(spec, "{}", quote_path(&format!("/{file}")));
        }
        for extra in extras.iter().filter(|extra| extra.kind == subpackage.kind) {
            let config = if extra.config {
                "%config(noreplace) "
            } else {
                ""
            };
            let _ = writeln!(spec, "{config}{}", extra.path);
        }
    }
    spec
}

/// %prep, %build and %install that redo the plan's build steps from the
/// source tarballs, with the stage replaced by the buildroot.
fn write_source_build(spec: &mut String, plan: &Plan) {
    spec.push_str("\n%prep\n%setup -q -c -T\n");
    let mut trees = Vec::new();
    for step in plan.steps_in(&[Phase::Fetch]) {
        if let Action::Unpack(unpack) = &step.action {
            let _ = writeln!(
                spec,
                "mkdir -p {0} && tar -xf %{{SOURCE{1}}} -C {0} --strip-components=1",
                unpack.component,
                trees.len()
            );
            trees.push((unpack.dest.clone(), unpack.component.clone()));
        }
    }
    // This machine's paths, as they are inside rpmbuild: the stage is the
    // buildroot, each tree is a directory of the build directory.
    let stage = plan.stage.display().to_string();
    let relocate = |text: &str| {
        let mut text = text.replace(&stage, "%{buildroot}");
        for (tree, component) in &trees {
            text = text.replace(
                &tree.display().to_string(),
                &format!("%{{_builddir}}/%{{name}}-%{{version}}/{component}"),
            );
        }
        text
    };
    let mut section = "%build";
    let _ = writeln!(spec, "\n{section}");
    for step in plan.steps_in(&[Phase::Build]) {
        let Action::Run(run) = &step.action else {
            continue;
        };
        if run.installs && section == "%build" {
            section = "%install";
            let _ = writeln!(spec, "\n{section}");
        }
        // <unpacked tree>/<dir> -> <component>/<dir>
        let dir = trees
            .iter()
            .find_map(|(tree, component)| {
                let below = run.cwd.strip_prefix(tree).ok()?;
                Some(if below.as_os_str().is_empty() {
                    component.clone()
                } else {
                    format!("{component}/{}", below.display())
                })
            })
            .unwrap_or_else(|| ".".to_owned());
        let env: Vec<String> = run
            .env
            .iter()
            .map(|var| {
                let value = relocate(&var.value);
                if var.prepend {
                    format!("{}=\"{value}:${}\"", var.name, var.name)
                } else {
                    format!("{}=\"{value}\"", var.name)
                }
            })
            .collect();
        // The lines are shell: quote every argument (rpm expands macros first).
        let mut line: Vec<String> = Vec::new();
        let mut args = run.argv.iter();
        line.extend(args.next().map(|program| shell_quote(program)));
        if run.jobs.is_some() {
            line.push("%{?_smp_mflags}".into());
        }
        line.extend(args.map(|arg| shell_quote(&relocate(arg))));
        let env = if env.is_empty() {
            String::new()
        } else {
            format!("env {} ", env.join(" "))
        };
        let _ = writeln!(spec, "( cd {dir} && {env}{} )", line.join(" "));
    }
}
