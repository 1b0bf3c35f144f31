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

use self::spec::{extra_source_name, spec, Fill};
use super::{extra_files, Contents};
use crate::{
    layout::Layout,
    plan::{Action, Phase, Plan},
    process::{self, Command},
    sources::fetch::{self, Cache},
};

pub fn make(contents: &Contents<'_>, plan: &Plan, layout: &Layout) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let topdir = layout.rpmbuild(&plan.set);
    let [binary_spec, source_spec] = prepare_topdir(&topdir, contents, plan, layout)?;
    let dist = &package.dist;
    let epoch = contents.epoch.to_string();
    for old in fs::read_dir(dist)? {
        let path = old?.path();
        if path.extension().is_some_and(|ext| ext == "rpm") {
            fs::remove_file(path)?;
        }
    }
    // The SRPM's header records its scripts with every macro expanded: build
    // it as mock does, under /builddir/build, with sources found relative to
    // the working directory and a fixed -j, so it names nothing of this machine.
    let source = Command::new("rpmbuild")
        .arg("-bs")
        .args(["--define", "_topdir /builddir/build"])
        .args(["--define", "_sourcedir ."])
        .args(["--define", "_smp_build_ncpus 1"])
        .args(["--define", &format!("_srcrpmdir {}", dist.display())])
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
        .arg(&stage_srpm)
        .env("SOURCE_DATE_EPOCH", &epoch);
    rpmbuild(&binary, &binary_spec, Some(&topdir.join("rpmbuild-bb.log")))?;
    let mut made: Vec<PathBuf> = fs::read_dir(dist)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rpm"))
        .collect();
    made.sort();
    Ok(made)
}

/// rpmbuild's top directory, made afresh: the extra files and the source
/// tarballs in SOURCES, both specs in SPECS; returns the binary packages'
/// spec and the SRPM's.
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
    let binary_spec = topdir
        .join("SPECS")
        .join(format!("{}-from-stage.spec", package.name));
    fs::write(&binary_spec, spec(contents, &Fill::Stage(&package.stage)))?;
    let source_spec = topdir.join("SPECS").join(format!("{}.spec", package.name));
    fs::write(&source_spec, spec(contents, &Fill::Sources(plan)))?;
    Ok([binary_spec, source_spec])
}

/// Run one rpmbuild; on failure, say so with its last lines (and keep its
/// whole output in `log`, when given).
fn rpmbuild(command: &Command, spec: &Path, log: Option<&Path>) -> anyhow::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        return Ok(());
    }
    let mut message = format!(
        "`{command}` failed: {}\n{}",
        process::describe_status(output.status),
        tail(&output.stderr, 40)
    );
    if let Some(log) = log {
        fs::write(
            log,
            [output.stdout.as_slice(), output.stderr.as_slice()].concat(),
        )?;
        message.push_str(&format!("\n  full log: {}", log.display()));
    }
    bail!("{message} (spec {})", spec.display())
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
