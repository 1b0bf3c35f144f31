//! A release confirmed from its source: `rpmbuild --rebuild` of the shipped
//! SRPM in a fresh HOME and `_topdir`, and each binary RPM it makes compared
//! with the shipped one, byte for byte. This is what a build farm (mock,
//! Koji, COPR) or anyone downloading a release can do to confirm it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::{
    input::{dist_tag, located::invalid},
    package::sign::rpm_main_header_offset,
    plan::RpmDist,
    process::{self, Command},
};

/// One binary RPM, shipped or made by the rebuild, and how they compare.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub name: String,
    pub identical: bool,
    /// The shipped file carries a signature the rebuild cannot: then its
    /// header and payload are what match.
    pub signed: bool,
    /// What differs first, when something does.
    pub difference: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub srpm: PathBuf,
    pub seconds: f64,
    pub artifacts: Vec<Verdict>,
}

impl Outcome {
    pub fn all_identical(&self) -> bool {
        self.artifacts.iter().all(|verdict| verdict.identical)
    }
}

/// An RPM's main header and payload: what its signature leaves alone.
fn signed_region(bytes: &[u8]) -> anyhow::Result<&[u8]> {
    Ok(&bytes[rpm_main_header_offset(bytes)?..])
}

/// The one SRPM in `dist`.
pub fn find_srpm(dist: &Path) -> anyhow::Result<PathBuf> {
    let entries = fs::read_dir(dist)
        .map_err(|error| invalid(format!("cannot read {}: {error}", dist.display())))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.to_string_lossy().ends_with(".src.rpm"))
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => {
            // Its name names the scratch directory and the log: nothing that
            // could climb out of them.
            let name = one.file_name().unwrap_or_default().to_string_lossy();
            if let Err(why) = crate::input::names::check_plain_name(&name) {
                return Err(invalid(format!("not an SRPM name rpm makes: {why}")));
            }
            Ok(one.clone())
        }
        [] => Err(invalid(format!(
            "no .src.rpm in {}: make one with `cargo xtask package --format rpm`",
            dist.display()
        ))),
        many => Err(invalid(format!(
            "{} SRPMs in {}: keep one release per directory",
            many.len(),
            dist.display()
        ))),
    }
}

/// The dist tag the SRPM was made with, from the `DISTTAG` its header
/// records: the rebuild's release must carry the same (`1.el9`), whatever
/// this host's rpm macros define.
fn dist_of(srpm: &Path, scratch: &Path) -> anyhow::Result<RpmDist> {
    let output = Command::new("rpm")
        .arg("--dbpath")
        .arg(scratch.join("rpmdb"))
        .args(["-qp", "--queryformat", "%|DISTTAG?{%{DISTTAG}}:{}|"])
        .arg(srpm)
        .checked_output()?;
    let tag = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if tag.is_empty() {
        return Ok(RpmDist::default());
    }
    dist_tag::check(&tag).map_err(|why| {
        invalid(format!(
            "{}: its DISTTAG is not one bdr-dist makes: {why}",
            srpm.display()
        ))
    })?;
    Ok(RpmDist {
        tag: Some(tag),
        from_flag: false,
    })
}

/// Rebuild the SRPM of `dist` under `scratch` (made here, removed after),
/// logging rpmbuild's output to `log`, and compare.
pub fn rebuild(dist: &Path, scratch: &Path, log: &Path) -> anyhow::Result<Outcome> {
    let srpm = find_srpm(dist)?;
    let _cleanup = Scratch::make(scratch)?;
    let (home, topdir) = (scratch.join("home"), scratch.join("top"));
    fs::create_dir_all(&home)?;
    fs::create_dir_all(&topdir)?;
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let defines = super::dist_defines(Some(&dist_of(&srpm, scratch)?));
    let command = Command::new("rpmbuild")
        .arg("--rebuild")
        // Build requirements are named by rpm's package names, which this
        // host's package manager may not be: `doctor` checks the tools.
        .arg("--nodeps")
        .args(["--define", &format!("_topdir {}", topdir.display())])
        .args([
            "--define",
            "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        ])
        .args(&defines)
        .arg(&srpm)
        .env("HOME", home.display().to_string());
    eprintln!(
        "{:>12} {} in a fresh HOME and _topdir (log: {})",
        "Rebuilding",
        srpm.display(),
        log.display()
    );
    let started = Instant::now();
    let mut file =
        fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    writeln!(file, "$ {}\n", command.line())?;
    let status = command.run_logged(&mut file, |_| {})?;
    if !status.success() {
        bail!(
            "`rpmbuild --rebuild {}` failed: {}; its output is in {}",
            srpm.display(),
            process::describe_status(status),
            log.display()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let artifacts = compare(dist, &topdir.join("RPMS"))?;
    if artifacts.is_empty() {
        bail!(
            "neither {} nor the rebuild has a binary RPM: nothing was compared",
            dist.display()
        );
    }
    Ok(Outcome {
        srpm,
        seconds,
        artifacts,
    })
}

/// Every binary RPM of `shipped` against the one of the same name in
/// `rebuilt`, and any the rebuild made that was not shipped.
pub fn compare(shipped: &Path, rebuilt: &Path) -> anyhow::Result<Vec<Verdict>> {
    let binaries = |dir: &Path| -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".rpm") && !name.ends_with(".src.rpm"))
            .collect();
        names.sort();
        Ok(names)
    };
    let made = binaries(rebuilt)?;
    let mut verdicts = Vec::new();
    for name in binaries(shipped)? {
        let (one, two) = (shipped.join(&name), rebuilt.join(&name));
        if !made.contains(&name) {
            verdicts.push(Verdict {
                name,
                identical: false,
                signed: false,
                difference: Some("the rebuild did not make it".into()),
            });
            continue;
        }
        let (a, b) = (fs::read(&one)?, fs::read(&two)?);
        let signed = a != b && signed_region(&a).ok() == signed_region(&b).ok();
        let identical = a == b || (signed && signed_region(&a).is_ok());
        let difference = (!identical).then(|| first_difference(&one, &two));
        verdicts.push(Verdict {
            name,
            identical,
            signed: signed && identical,
            difference,
        });
    }
    for name in made {
        if !verdicts.iter().any(|verdict| verdict.name == name) {
            verdicts.push(Verdict {
                name,
                identical: false,
                signed: false,
                difference: Some("made by the rebuild, not shipped".into()),
            });
        }
    }
    Ok(verdicts)
}

/// The first file whose size, digest, mode or owner differs (`rpm --dump`),
/// else the first header tag that does (`rpm --xml`).
fn first_difference(shipped: &Path, rebuilt: &Path) -> String {
    let query = |flag: &str, path: &Path| -> String {
        Command::new("rpm")
            .args(["-qp", "--nosignature", flag])
            .arg(path)
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .unwrap_or_default()
    };
    // `path size mtime digest mode owner group ...`, by path.
    let files = |text: String| -> BTreeMap<String, String> {
        text.lines()
            .map(|line| {
                (
                    line.split(' ').next().unwrap_or(line).to_owned(),
                    line.to_owned(),
                )
            })
            .collect()
    };
    let (one, two) = (
        files(query("--dump", shipped)),
        files(query("--dump", rebuilt)),
    );
    let paths: BTreeSet<&String> = one.keys().chain(two.keys()).collect();
    for path in paths {
        match (one.get(path), two.get(path)) {
            (Some(a), Some(b)) if a != b => {
                return format!("file {path}: shipped `{a}`, rebuilt `{b}`")
            }
            (Some(_), None) => return format!("file {path}: shipped, not in the rebuild"),
            (None, Some(_)) => return format!("file {path}: in the rebuild, not shipped"),
            _ => {}
        }
    }
    let (one, two) = (query("--xml", shipped), query("--xml", rebuilt));
    let mut tag = "";
    for (a, b) in one.lines().zip(two.lines()) {
        if let Some(name) = a.trim().strip_prefix("<rpmTag name=\"") {
            tag = name.split('"').next().unwrap_or(name);
        }
        if a != b {
            return format!(
                "header tag {tag}: shipped `{}`, rebuilt `{}`",
                a.trim(),
                b.trim()
            );
        }
    }
    "the bytes (rpm shows no file or header tag that differs)".into()
}

/// The scratch directory, made empty and removed however the rebuild ends.
struct Scratch(PathBuf);

impl Scratch {
    fn make(dir: &Path) -> anyhow::Result<Scratch> {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir.to_path_buf()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
