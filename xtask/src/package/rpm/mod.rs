//! RPMs in the PGDG shape, built by `rpmbuild` from a generated spec.
//!
//! Two specs share everything but how the buildroot is filled: the binary
//! packages come from the stage (seconds, and exactly what was tested), and
//! the SRPM's spec rebuilds the same packages from the source tarballs, so
//! mock, Koji or COPR can build it for every distribution release.

pub mod rebuild;
mod spec;

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use self::spec::{extra_source_name, patch_source_name, spec, Fill};
use super::{
    extra_files, glibc,
    manifest::{GlibcFloor, RpmRecord},
    promise, Contents,
};
use crate::{
    files,
    input::dist_tag,
    layout::Layout,
    plan::{Action, Phase, Plan, RpmDist},
    process::{self, Command},
    sources::fetch::{self, Cache},
};

pub fn make(contents: &Contents<'_>, plan: &Plan, layout: &Layout) -> anyhow::Result<Vec<PathBuf>> {
    let result = build_and_check(contents, plan, layout);
    if let Err(error) = &result {
        // Every RPM in dist/ is this run's (the old ones went first): a
        // failed step leaves none, so no broken or partial set is published.
        if let Err(removing) = remove_rpms(&contents.package.dist) {
            return Err(removing.context(format!("{error:#}")));
        }
    }
    result
}

/// The RPMs of `dist`, and the RPM step's manifest.
fn remove_rpms(dist: &Path) -> anyhow::Result<()> {
    for old in fs::read_dir(dist).with_context(|| format!("cannot read {}", dist.display()))? {
        let path = old?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".rpm") || name.ends_with(MANIFEST_SUFFIX) {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// How the RPM step's manifest ends: `<stem>.rpm.manifest.json`.
const MANIFEST_SUFFIX: &str = ".rpm.manifest.json";

/// rpmbuild's `%{?dist}` for the release (`Release: 1%{?dist}`): the tag,
/// and `%{disttag}`, which rpm records in every header (`DISTTAG`) so that a
/// rebuild of the SRPM knows it; or explicitly none, whatever the host's
/// macros say.
pub fn dist_defines(dist: Option<&RpmDist>) -> Vec<String> {
    match dist.and_then(|dist| dist.tag.as_deref()) {
        Some(tag) => vec![
            "--define".into(),
            format!("dist .{tag}"),
            "--define".into(),
            format!("disttag {tag}"),
        ],
        None => vec!["--define".into(), "dist %{nil}".into()],
    }
}

fn build_and_check(
    contents: &Contents<'_>,
    plan: &Plan,
    layout: &Layout,
) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let topdir = layout.rpmbuild(&plan.set);
    let [binary_spec, source_spec] = prepare_topdir(&topdir, contents, plan, layout)?;
    let dist = &package.dist;
    let epoch = contents.epoch.to_string();
    let defines = dist_defines(package.rpm_dist.as_ref());
    remove_rpms(dist)?;
    // The SRPM's header records its scripts with every macro expanded: build
    // it as mock does, under /builddir/build, with sources found relative to
    // the working directory and a fixed -j, so it names nothing of this machine.
    let source = Command::new("rpmbuild")
        .arg("-bs")
        .args(["--define", "_topdir /builddir/build"])
        .args(["--define", "_sourcedir ."])
        .args(["--define", "_smp_build_ncpus 1"])
        .args(["--define", &format!("_srcrpmdir {}", dist.display())])
        .args(&defines)
        .arg(&source_spec)
        .cwd(topdir.join("SOURCES"))
        .env("SOURCE_DATE_EPOCH", &epoch);
    rpmbuild(&source, &source_spec, None)?;
    // Then the binary packages, out of `rpmbuild --rebuild` of a scratch SRPM
    // of the stage's spec, the way anyone's rebuild of the shipped SRPM
    // makes them: rpm's header differs by how it was asked (`-bb` has no
    // Cookie tag, `-ba` adds a Sourcepkgid), and that must not tell them apart.
    let scratch_srpms = topdir.join("SRPMS");
    let stage_srpm = Command::new("rpmbuild")
        .arg("-bs")
        .args(["--define", &format!("_topdir {}", topdir.display())])
        .args([
            "--define",
            &format!("_srcrpmdir {}", scratch_srpms.display()),
        ])
        .args(&defines)
        .arg(&binary_spec)
        .env("SOURCE_DATE_EPOCH", &epoch);
    rpmbuild(&stage_srpm, &binary_spec, None)?;
    let stage_srpm = fs::read_dir(&scratch_srpms)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.to_string_lossy().ends_with(".src.rpm"))
        .context("rpmbuild -bs made no SRPM of the stage's spec")?;
    let binary = Command::new("rpmbuild")
        // (which removes SOURCES/ when done: the SRPM was made first)
        .arg("--rebuild")
        // The requirements are rpm package names; the doctor checks the tools.
        .arg("--nodeps")
        .args(["--define", &format!("_topdir {}", topdir.display())])
        .args(["--define", &format!("_rpmdir {}", dist.display())])
        // Flat file names in dist/, as SHA256SUMS lists them.
        .args([
            "--define",
            "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        ])
        .args(&defines)
        .arg(&stage_srpm)
        .env("SOURCE_DATE_EPOCH", &epoch);
    let log = topdir.join("rpmbuild-bb.log");
    let reported = rpmbuild(&binary, &binary_spec, Some(&log))?;
    let mut made: Vec<PathBuf> = fs::read_dir(dist)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rpm"))
        .collect();
    made.sort();
    let (written, checked) = check_promises(&made, &contents.work)?;
    let rpm_dist = package.rpm_dist.clone().unwrap_or_default();
    let floor = glibc::floor(&written);
    let too_new = glibc::check(floor.as_ref(), &rpm_dist).err();
    let broken = match checked {
        Ok(held) if reported.is_empty() && too_new.is_none() => {
            eprintln!("{:>12} the RPMs: {held}", "Checked");
            made.push(write_manifest(contents, &rpm_dist, floor)?);
            return Ok(made);
        }
        Ok(_) => None,
        Err(broken) => Some(broken),
    };
    let mut message = format!("the RPMs rpmbuild wrote in {} are not kept", dist.display());
    if let Some(too_new) = too_new {
        message.push('\n');
        message.push_str(&too_new);
    }
    if !reported.is_empty() {
        message.push_str(&format!(
            "\nrpmbuild succeeded, but its tools reported errors (full log: {}):\n  {}",
            log.display(),
            reported.join("\n  ")
        ));
    }
    if let Some(broken) = broken {
        message.push_str(&format!(
            "\nthey break what they promise:\n{broken}\n\
             rpmbuild strips ELF files and fills -debuginfo with find-debuginfo, which runs \
             eu-strip (elfutils): `cargo xtask doctor --format rpm` checks for it; \
             rpmbuild's output: {}",
            log.display()
        ));
    }
    bail!("{message}")
}

/// `<stem>.rpm.manifest.json`: the set's manifest, with what the RPMs are
/// for (their dist tag, the glibc they need).
fn write_manifest(
    contents: &Contents<'_>,
    rpm_dist: &RpmDist,
    glibc_floor: Option<GlibcFloor>,
) -> anyhow::Result<PathBuf> {
    let mut manifest = contents.manifest.clone();
    manifest.rpm = Some(RpmRecord {
        dist_tag: rpm_dist.tag.clone(),
        dist_tag_from: if rpm_dist.from_flag { "--dist" } else { "host" }.to_owned(),
        dist_glibc: rpm_dist.tag.as_deref().and_then(dist_tag::glibc_of),
        glibc_floor,
    });
    if let Some(floor) = manifest
        .rpm
        .as_ref()
        .and_then(|rpm| rpm.glibc_floor.as_ref())
    {
        eprintln!(
            "{:>12} glibc {} ({} in {})",
            "Needs", floor.version, floor.symbol, floor.file
        );
    }
    let path = contents
        .package
        .dist
        .join(format!("{}{MANIFEST_SUFFIX}", contents.stem()));
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    files::write_atomically(&path, text.as_bytes())?;
    Ok(path)
}

/// What the binary RPMs promise (stripped ELF files with build-ids, their
/// symbols in `-debuginfo`, library requirements), read back from them;
/// and the packages as read.
fn check_promises(
    made: &[PathBuf],
    scratch: &Path,
) -> anyhow::Result<(
    Vec<promise::Written>,
    Result<promise::Held, promise::Broken>,
)> {
    let binaries = made
        .iter()
        .filter(|path| !path.to_string_lossy().ends_with(".src.rpm"));
    let written = binaries
        .map(|path| promise::read_rpm(path, scratch))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let checked = promise::check(&written, promise::Format::Rpm);
    Ok((written, checked))
}

/// rpmbuild's top directory, made afresh: the extra files, the source
/// tarballs and the recipes' patches in SOURCES, both specs in SPECS;
/// returns the binary packages' spec and the SRPM's.
fn prepare_topdir(
    topdir: &Path,
    contents: &Contents<'_>,
    plan: &Plan,
    layout: &Layout,
) -> anyhow::Result<[PathBuf; 2]> {
    let package = contents.package;
    if topdir.exists() {
        fs::remove_dir_all(topdir)?;
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
    let cache = Cache::new(layout.downloads().dir);
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
    // The recipes' patches, as the recipe pinned them when it was loaded.
    for (_, patch) in spec::patches(plan) {
        let copy = topdir.join("SOURCES").join(patch_source_name(patch));
        if copy.exists() {
            bail!(
                "two patches are named {} in the SRPM: rename {}",
                patch_source_name(patch),
                patch.path.display()
            );
        }
        let sha256 = files::sha256_file(&patch.path)?;
        if sha256 != patch.sha256 {
            bail!(
                "{} changed since the recipe was loaded (sha256 {sha256}, not {})",
                patch.path.display(),
                patch.sha256
            );
        }
        fs::copy(&patch.path, &copy)
            .with_context(|| format!("cannot copy {}", patch.path.display()))?;
    }
    let binary_spec = topdir
        .join("SPECS")
        .join(format!("{}-from-stage.spec", package.name));
    fs::write(&binary_spec, spec(contents, &Fill::Stage(&package.stage)))?;
    let source_spec = topdir.join("SPECS").join(format!("{}.spec", package.name));
    fs::write(&source_spec, spec(contents, &Fill::Sources(plan)))?;
    Ok([binary_spec, source_spec])
}

/// Run one rpmbuild, its whole output kept in `log` when given; on failure,
/// say so with its last lines. On success, the lines of its output that
/// report an error its tools did not exit with (see [`tool_errors`]).
fn rpmbuild(command: &Command, spec: &Path, log: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let output = command.output()?;
    if let Some(log) = log {
        fs::write(
            log,
            [output.stdout.as_slice(), output.stderr.as_slice()].concat(),
        )
        .with_context(|| format!("cannot write {}", log.display()))?;
    }
    if output.status.success() {
        let text =
            String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
        return Ok(tool_errors(&text).into_iter().map(str::to_owned).collect());
    }
    let mut message = format!(
        "`{command}` failed: {}\n{}",
        process::describe_status(output.status),
        tail(&output.stderr, 40)
    );
    if let Some(log) = log {
        message.push_str(&format!("\n  full log: {}", log.display()));
    }
    bail!("{message} (spec {})", spec.display())
}

/// The programs find-debuginfo runs; an error message that names one is
/// find-debuginfo failing.
const DEBUGINFO_TOOLS: &[&str] = &[
    "find-debuginfo",
    "debugedit",
    "eu-strip",
    "eu-elfcompress",
    "dwz",
    "gdb-add-index",
    "sepdebugcrcfix",
    "objcopy",
];

/// The lines of a successful rpmbuild's output that report an error anyway.
/// find-debuginfo's parallel jobs (`-j2` and up, from `%_smp_build_ncpus`)
/// exit on a failed command, but it only counts the jobs that reported a
/// result, so a failure leaves it exiting 0 (debugedit 5.0's `run_job`):
/// rpmbuild then ships unstripped binaries and an empty `-debuginfo`. So:
/// - `...: command not found`: the shell found no such program (eu-strip
///   with elfutils not installed);
/// - `*** ERROR`: find-debuginfo's own errors (no build-id under
///   `--strict-build-id`, dwz or gdb-add-index asked for but missing);
/// - `No such file or directory` in a line naming one of find-debuginfo's
///   programs ([`DEBUGINFO_TOOLS`]): one of them is missing, or lost a file.
///
/// Warnings (`*** WARNING`, rpmbuild's `warning:`), the scripts' `set -x`
/// traces (`+ command`, which echo a command, not what it said) and any
/// other line are not errors: the checks of the packages judge the rest.
fn tool_errors(output: &str) -> Vec<&str> {
    let mut errors: Vec<&str> = Vec::new();
    let lines = output
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('+'));
    for line in lines {
        let error = line.ends_with(": command not found")
            || line.starts_with("*** ERROR")
            || (line.contains("No such file or directory")
                && DEBUGINFO_TOOLS.iter().any(|tool| line.contains(tool)));
        // Each parallel job says it once: once is enough.
        if error && !errors.contains(&line) {
            errors.push(line);
        }
    }
    errors
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shell's own words for a missing program, as find-debuginfo's
    /// shell said them on a host without elfutils.
    #[test]
    fn a_missing_program_in_rpmbuild_output_is_an_error() {
        let output = Command::new("bash")
            .args([
                "-c",
                "bdr-dist-no-such-eu-strip --remove-comment -f x.debug x || exit",
            ])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let text = format!(
            "extracting debug info from /b/usr/pgsql-15/bin/psql\n{stderr}{stderr}Wrote: /dist/x.rpm\n"
        );
        assert_eq!(tool_errors(&text), [stderr.trim()], "said once: {text}");
        assert!(stderr
            .trim()
            .ends_with("bdr-dist-no-such-eu-strip: command not found"));
    }

    #[test]
    fn find_debuginfo_errors_count_and_warnings_do_not() {
        let output = "\
Executing(%install): /bin/sh -e /var/tmp/rpm-tmp.BPSAxk
+ grep -q ^#!/usr/bin/env
+ echo '*** ERROR: not this: a trace of a command'
+ test -e /x || echo 'No such file or directory from find-debuginfo'
extracting debug info from /b/usr/pgsql-15/bin/psql
*** WARNING: No build ID note found in /b/usr/pgsql-15/lib/x.so
*** ERROR: No build ID note found in /b/usr/pgsql-15/bin/psql
/usr/bin/find-debuginfo: line 320: /usr/bin/eu-strip: No such file or directory
cp: cannot stat '/b/usr/share/doc/x': No such file or directory
warning: File listed twice: /usr/pgsql-15/lib/x.so
Processing files: postgresql15-pglogical-15.18-1.x86_64
Wrote: /dist/postgresql15-pglogical-15.18-1.x86_64.rpm
";
        assert_eq!(
            tool_errors(output),
            [
                "*** ERROR: No build ID note found in /b/usr/pgsql-15/bin/psql",
                "/usr/bin/find-debuginfo: line 320: /usr/bin/eu-strip: No such file or directory",
            ]
        );
    }
}
