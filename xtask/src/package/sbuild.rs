//! A target's .debs, made by sbuild of its source package, as a build farm
//! makes them (Debian's buildds run sbuild): in a clean root of the
//! release unpacked from its minbase tarball (`--chroot-mode=unshare`), the
//! build dependencies installed from the release's archive, the build run
//! by `debian/rules` as the `.dsc` says. What ships is what the farm would
//! make of the shipped `.dsc`; the .debs are checked for what they promise
//! (stripped, build-ids, `-dbgsym`, library Depends) as the ones written
//! directly are, and the `.buildinfo` and `.changes` ship beside them.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};

use super::{deb, promise, rpm::rebuild::Verdict, Contents};
use crate::{files, input::located::invalid, layout::Layout, process::Command};

/// Where sbuild builds the source inside its root: fixed, so that the
/// build's own record (`.buildinfo`'s `Build-Path`) says the same every time.
pub const BUILD_PATH: &str = "/build/bdr-dist";

/// What one sbuild run made.
pub struct Built {
    pub debs: Vec<PathBuf>,
    /// `.buildinfo` and `.changes`.
    pub records: Vec<PathBuf>,
    pub log: PathBuf,
}

/// The `.dsc` of `contents` that the dsc step left in `dist`.
pub fn dsc_path(contents: &Contents<'_>) -> PathBuf {
    contents.package.dist.join(format!(
        "{}_{}.dsc",
        contents.package.name,
        deb::debian_version(contents)
    ))
}

/// The target's .debs: sbuild of the `.dsc` in `dist`, checked, then moved
/// into `dist` with its `.buildinfo` and `.changes`.
pub fn make(contents: &Contents<'_>, layout: &Layout) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let target = package
        .target
        .as_ref()
        .context("sbuild makes the .debs of a target only")?;
    let dist = &package.dist;
    deb::remove_debs(dist)?;
    remove_records(dist)?;
    let dsc = dsc_path(contents);
    if !dsc.is_file() {
        bail!(
            "{} is missing: a target's .debs are built from its source package (`package --format dsc` first)",
            dsc.display()
        );
    }
    let out = contents.work.join("sbuild");
    let result = build_dsc(
        &dsc,
        &target.codename,
        &layout.roots(&target.name).join("base.tar"),
        &out,
        BUILD_PATH,
        &contents.arch,
    )
    .and_then(|built| {
        deb::check_promises(&built.debs).with_context(|| {
            format!(
                "the .debs sbuild made in {} are not kept (its log: {})",
                out.display(),
                built.log.display()
            )
        })?;
        let mut made = Vec::new();
        for file in built.debs.iter().chain(&built.records) {
            let to = dist.join(file.file_name().expect("a file name"));
            fs::rename(file, &to)
                .with_context(|| format!("cannot move {} to {}", file.display(), to.display()))?;
            made.push(to);
        }
        Ok(made)
    });
    if let Err(error) = &result {
        if let Err(removing) = deb::remove_debs(dist).and_then(|()| remove_records(dist)) {
            return Err(removing.context(format!("{error:#}")));
        }
    }
    result
}

fn remove_records(dist: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dist).with_context(|| format!("cannot read {}", dist.display()))? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|ext| ext == "buildinfo" || ext == "changes")
        {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// One sbuild of `dsc` for `target` in a root unpacked from `tarball`, its
/// source at `build_path` inside, everything it writes in `out` (made
/// afresh). Its configuration is its own: no `~/.sbuildrc` of whoever runs
/// it changes what is built.
pub fn build_dsc(
    dsc: &Path,
    codename: &str,
    tarball: &Path,
    out: &Path,
    build_path: &str,
    machine: &str,
) -> anyhow::Result<Built> {
    if !tarball.is_file() {
        bail!(
            "{} is missing: the target's minbase is made before its packages",
            tarball.display()
        );
    }
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("cannot empty {}", out.display()))?;
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let config = out.join("sbuild.conf");
    fs::write(
        &config,
        "# bdr-dist's sbuild configuration: nothing of the caller's ~/.sbuildrc.\n\
         # The build runs as sbuild's unprivileged user in the root, not as root.\n\
         $build_user = 'sbuild';\n1;\n",
    )?;
    let arch = deb::debian_arch(machine);
    eprintln!(
        "{:>12} {} with sbuild in a fresh {} root (build path {build_path})",
        "Building",
        dsc.file_name().unwrap_or_default().to_string_lossy(),
        codename
    );
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let command = Command::new("sbuild")
        .arg("--chroot-mode=unshare")
        .arg(format!("--chroot={}", tarball.display()))
        .arg(format!("--dist={codename}"))
        .arg(format!("--arch={arch}"))
        .arg(format!("--build-dir={}", out.display()))
        .arg(format!("--build-path={build_path}"))
        .arg(format!("--jobs={jobs}"))
        .args([
            "--no-run-lintian",
            "--no-run-piuparts",
            "--no-run-autopkgtest",
        ])
        .arg("--nolog")
        .arg(dsc)
        .cwd(out)
        .env("SBUILD_CONFIG", config.display().to_string());
    let log = out.join("sbuild.log");
    let mut file =
        fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    // sbuild's own section headings, as progress: `| Install package build dependencies |`.
    let started = std::time::Instant::now();
    let mut last = String::new();
    let status = command.run_logged(&mut file, |line| {
        let Some(heading) = line
            .strip_prefix("| ")
            .and_then(|rest| rest.strip_suffix('|'))
            .map(str::trim)
        else {
            return;
        };
        if !heading.is_empty() && !heading.contains(codename) && heading != last {
            eprintln!(
                "{:>12} {heading} ({:.0}s)",
                "sbuild",
                started.elapsed().as_secs_f64()
            );
            last = heading.to_owned();
        }
    })?;
    if !status.success() {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        bail!(
            "sbuild of {} failed ({}); the end of its log ({}):\n{}",
            dsc.display(),
            crate::process::describe_status(status),
            log.display(),
            crate::printable::printable(
                &tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                8000
            )
        );
    }
    let mut debs = Vec::new();
    let mut records = Vec::new();
    for entry in fs::read_dir(out)? {
        let path = entry?.path();
        match path.extension().and_then(|ext| ext.to_str()) {
            Some("deb") => debs.push(path),
            Some("buildinfo" | "changes") => records.push(path),
            _ => {}
        }
    }
    debs.sort();
    records.sort();
    if debs.is_empty() || records.len() != 2 {
        bail!(
            "sbuild of {} succeeded but made {} .debs and {} of .buildinfo and .changes (its log: {})",
            dsc.display(),
            debs.len(),
            records.len(),
            log.display()
        );
    }
    let sizes: u64 = debs
        .iter()
        .map(|deb| fs::metadata(deb).map_or(0, |m| m.len()))
        .sum();
    eprintln!(
        "{:>12} {} .debs ({}) with sbuild",
        "Built",
        debs.len(),
        files::human_bytes(sizes)
    );
    Ok(Built { debs, records, log })
}

/// What a rebuild of the shipped `.dsc` made, against what shipped.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub dsc: PathBuf,
    pub seconds: f64,
    pub artifacts: Vec<Verdict>,
    /// diffoscope's report of the first .deb that differs, when installed.
    pub diffoscope: Option<PathBuf>,
}

/// The shipped `.dsc` of `dist` rebuilt by sbuild in a fresh root, at
/// another build path than the shipped build's, in `scratch` (made here,
/// kept for its log); each .deb compared with the shipped one.
pub fn rebuild(
    dist: &Path,
    codename: &str,
    tarball: &Path,
    scratch: &Path,
    machine: &str,
) -> anyhow::Result<Outcome> {
    let dsc = find_dsc(dist)?;
    let started = std::time::Instant::now();
    let built = build_dsc(
        &dsc,
        codename,
        tarball,
        scratch,
        // Not the shipped build's path: what a build records of where it
        // ran must not reach the packages.
        &format!("/build/rebuild-{}", std::process::id()),
        machine,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let mut artifacts = Vec::new();
    let mut diffoscope = None;
    let names = |paths: &[PathBuf]| -> Vec<String> {
        paths
            .iter()
            .map(|path| {
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    let made = names(&built.debs);
    let mut shipped: Vec<String> = fs::read_dir(dist)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".deb"))
        .collect();
    shipped.sort();
    for name in &shipped {
        if !made.contains(name) {
            artifacts.push(Verdict {
                name: name.clone(),
                identical: false,
                signed: false,
                difference: Some("the rebuild did not make it".into()),
            });
            continue;
        }
        let (one, two) = (dist.join(name), scratch.join(name));
        let (a, b) = (fs::read(&one)?, fs::read(&two)?);
        let difference = (a != b).then(|| first_difference(&a, &b));
        if difference.is_some() && diffoscope.is_none() && which::which("diffoscope").is_ok() {
            let report = scratch.join(format!("{name}.diffoscope.txt"));
            // diffoscope exits 1 when the files differ: its report is the point.
            let output = Command::new("diffoscope")
                .arg(format!("--text={}", report.display()))
                .arg(&one)
                .arg(&two)
                .output()?;
            if report.is_file() {
                diffoscope = Some(report);
            } else {
                eprintln!(
                    "warning: diffoscope wrote no report ({})",
                    crate::process::describe_status(output.status)
                );
            }
        }
        artifacts.push(Verdict {
            name: name.clone(),
            identical: difference.is_none(),
            signed: false,
            difference,
        });
    }
    for name in made.iter().filter(|name| !shipped.contains(name)) {
        artifacts.push(Verdict {
            name: name.clone(),
            identical: false,
            signed: false,
            difference: Some("made by the rebuild, not shipped".into()),
        });
    }
    if artifacts.is_empty() {
        bail!(
            "neither {} nor the rebuild has a .deb: nothing was compared",
            dist.display()
        );
    }
    Ok(Outcome {
        dsc,
        seconds,
        artifacts,
        diffoscope,
    })
}

/// The one `.dsc` in `dist`.
pub fn find_dsc(dist: &Path) -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dist)
        .map_err(|error| invalid(format!("cannot read {}: {error}", dist.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "dsc"))
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => {
            // Its name names the rebuild's directory: nothing that could
            // climb out of it.
            let name = one.file_name().unwrap_or_default().to_string_lossy();
            if let Err(why) = crate::input::names::check_plain_name(&name) {
                return Err(invalid(format!("not a .dsc name dpkg-source makes: {why}")));
            }
            Ok(one.clone())
        }
        [] => Err(invalid(format!(
            "no .dsc in {}: make one with `cargo xtask package --format dsc`",
            dist.display()
        ))),
        many => Err(invalid(format!(
            "{} .dsc files in {}: keep one release per directory",
            many.len(),
            dist.display()
        ))),
    }
}

/// The first ar member of two .debs that differs and, inside a member that
/// is a gzipped tar, the first entry (name, header, contents) that does.
fn first_difference(shipped: &[u8], rebuilt: &[u8]) -> String {
    let (Ok(one), Ok(two)) = (promise::ar_members(shipped), promise::ar_members(rebuilt)) else {
        return "one of them is no ar archive".into();
    };
    for index in 0..one.len().max(two.len()) {
        match (one.get(index), two.get(index)) {
            (Some((a, x)), Some((b, y))) if a != b => {
                return format!("member {index}: shipped `{a}`, rebuilt `{b}`")
            }
            (Some((name, x)), Some((_, y))) if x != y => {
                return match tar_difference(x, y) {
                    Some(entry) if name.ends_with(".tar.gz") => format!("{name}: {entry}"),
                    _ => format!("member {name}"),
                };
            }
            (Some((name, _)), None) => return format!("member {name}: not in the rebuild"),
            (None, Some((name, _))) => return format!("member {name}: only in the rebuild"),
            _ => {}
        }
    }
    "the bytes (no member differs)".into()
}

/// The first entry of two gzipped tars that differs, by name, header or contents.
fn tar_difference(one: &[u8], two: &[u8]) -> Option<String> {
    // (name, header, contents) of each entry, in order.
    type Entries = Vec<(String, Vec<u8>, Vec<u8>)>;
    let entries = |bytes: &[u8]| -> Option<Entries> {
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(bytes));
        let mut all = Vec::new();
        for entry in archive.entries().ok()? {
            let mut entry = entry.ok()?;
            let name = format!("/{}", entry.path().ok()?.display())
                .replace("//", "/")
                .trim_end_matches("/.")
                .to_owned();
            let header = entry.header().as_bytes().to_vec();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).ok()?;
            all.push((name, header, data));
        }
        Some(all)
    };
    let (one, two) = (entries(one)?, entries(two)?);
    for index in 0..one.len().max(two.len()) {
        match (one.get(index), two.get(index)) {
            (Some(a), Some(b)) if a.0 != b.0 => {
                return Some(format!("entry {index}: shipped {}, rebuilt {}", a.0, b.0))
            }
            (Some(a), Some(b)) if a.1 != b.1 => {
                return Some(format!(
                    "{}: its tar header (mode, owner, size or time)",
                    a.0
                ))
            }
            (Some(a), Some(b)) if a.2 != b.2 => return Some(format!("{}: its contents", a.0)),
            (Some(a), None) => return Some(format!("{}: not in the rebuild", a.0)),
            (None, Some(b)) => return Some(format!("{}: only in the rebuild", b.0)),
            _ => {}
        }
    }
    None
}

/// The subordinate ids sbuild's unshare mode maps the root's users to
/// (`/etc/subuid` and `/etc/subgid` lines for the user that runs it), which
/// a fresh machine does not have. Added for root when `fix` (as `dist`
/// installs what it needs), else refused with the command that adds them.
pub fn ensure_subordinate_ids(fix: bool) -> anyhow::Result<()> {
    let user = crate::host::user_name();
    let listed = |file: &str| {
        fs::read_to_string(file).is_ok_and(|text| {
            text.lines()
                .any(|line| line.split(':').next() == Some(user.as_str()))
        })
    };
    if listed("/etc/subuid") && listed("/etc/subgid") {
        return Ok(());
    }
    let range = format!(
        "{}-{}",
        SUBORDINATE_IDS.0,
        SUBORDINATE_IDS.0 + SUBORDINATE_IDS.1 - 1
    );
    let command = [
        "usermod",
        "--add-subuids",
        &range,
        "--add-subgids",
        &range,
        &user,
    ];
    if !fix || !crate::host::is_root() {
        bail!(
            "sbuild --chroot-mode=unshare needs subordinate ids for {user} in /etc/subuid and /etc/subgid: add them with `{}` (as root)",
            command.join(" ")
        );
    }
    eprintln!(
        "{:>12} subordinate ids {range} for {user} (sbuild maps the users of its roots to them)",
        "Adding"
    );
    Command::new(command[0])
        .args(&command[1..])
        .checked_output()?;
    Ok(())
}

/// The range added: 65536 ids far above any a system or login account gets.
const SUBORDINATE_IDS: (u64, u64) = (1_000_000_000, 65_536);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tarball::{gzip_parallel, tar_bytes, Body, Entry};

    fn deb(files: &[(&str, &[u8])]) -> Vec<u8> {
        let entries: Vec<Entry> = files
            .iter()
            .map(|(name, bytes)| Entry {
                name: format!("./{name}"),
                body: Body::Bytes(bytes.to_vec(), 0o644),
            })
            .collect();
        let data = gzip_parallel(&tar_bytes(&entries, 1_700_000_000).unwrap());
        deb::ar(
            &[
                ("debian-binary", b"2.0\n".as_slice()),
                ("data.tar.gz", &data),
            ],
            1_700_000_000,
        )
    }

    /// A rebuild that differs is told by its first differing file.
    #[test]
    fn the_first_differing_file_of_two_debs_is_named() {
        let shipped = deb(&[("usr/bin/a", b"one"), ("usr/bin/b", b"two")]);
        let same = deb(&[("usr/bin/a", b"one"), ("usr/bin/b", b"two")]);
        assert_eq!(shipped, same, "the same files make the same bytes");
        let other = deb(&[("usr/bin/a", b"one"), ("usr/bin/b", b"TWO")]);
        assert_eq!(
            first_difference(&shipped, &other),
            "data.tar.gz: /usr/bin/b: its contents"
        );
        let fewer = deb(&[("usr/bin/a", b"one")]);
        assert_eq!(
            first_difference(&shipped, &fewer),
            "data.tar.gz: /usr/bin/b: not in the rebuild"
        );
        assert_eq!(
            first_difference(&shipped, b"not an archive"),
            "one of them is no ar archive"
        );
    }
}
