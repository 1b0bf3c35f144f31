//! A target's clean roots, made by mmdebstrap (minbase) and kept under
//! `target/roots/<target>/`:
//!
//! - `build/`: the release with the target's build and packaging
//!   prerequisites, where its builds and package tools run (through
//!   [`InRoot`](crate::plan::InRoot)). Its apt lists are kept: they are the
//!   archive `dose-debcheck` proves the packages installable against.
//! - `base.tar`: the bare minbase, unpacked afresh at `proof/` for each
//!   proof of the packages (apt-get install, setup, the smoke servers).
//!
//! Each is keyed by what went into it: the release, its apt sources, the
//! package list and the `Date:` of each suite's `InRelease` (so a point
//! release or security update remakes it). `<name>.key` is written last;
//! a root whose key differs, or that has none, is made again.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::{
    files,
    input::{
        platform::Platform,
        target::{self, Target},
    },
    layout::Layout,
    prerequisites::Needs,
    process::Command,
};

/// A root that is ready, and the key that names what is in it.
#[derive(Debug, Clone)]
pub struct Ready {
    pub path: PathBuf,
    pub key: String,
    /// Whether this run made it (or found it made).
    pub made: bool,
    pub seconds: f64,
}

/// The apt sources of a target: its own `archive`, or this host's Debian
/// sources with the host's code name replaced by the target's in each suite.
pub fn source_lines(target: &Target) -> anyhow::Result<Vec<String>> {
    if !target.archive.is_empty() {
        return Ok(target.archive.clone());
    }
    let host = host_codename()?;
    let mut lines = Vec::new();
    for entry in host_deb_sources() {
        for suite in &entry.suites {
            let Some(rest) = suite.strip_prefix(&host) else {
                continue;
            };
            let renamed = format!("{}{rest}", target.codename);
            if !target.suites.contains(&renamed) {
                continue;
            }
            let options = entry
                .signed_by
                .as_ref()
                .map(|key| format!("[signed-by={key}] "))
                .unwrap_or_default();
            for uri in &entry.uris {
                let line = format!(
                    "deb {options}{uri} {renamed} {}",
                    entry.components.join(" ")
                );
                if !lines.contains(&line) {
                    lines.push(line);
                }
            }
        }
    }
    if !target
        .suites
        .first()
        .is_some_and(|main| lines.iter().any(|line| line.contains(&format!(" {main} "))))
    {
        bail!(
            "this host's apt sources name no {host} suite to make `{}` from: set `archive` in targets/{}.toml",
            target.codename,
            target.name
        );
    }
    Ok(lines)
}

/// The target's build root, made if it is missing or its key changed.
pub fn build_root(
    layout: &Layout,
    target: &Target,
    platform: &Platform,
    needs: &Needs,
) -> anyhow::Result<Ready> {
    let packages = root_packages(target, platform, needs)?;
    let dir = layout.roots(&target.name);
    ensure(
        &dir,
        "build",
        target,
        &packages,
        Format::Directory,
        &format!("build root ({} packages)", packages.len()),
    )
}

/// The bare minbase of the target, as a tarball to unpack proof roots from.
pub fn base_tarball(layout: &Layout, target: &Target) -> anyhow::Result<Ready> {
    ensure(
        &layout.roots(&target.name),
        "base",
        target,
        &[],
        Format::Tar,
        "minbase",
    )
}

/// The packages a target's build root holds: each prerequisite `needs`
/// asks for, by the target's name for it (or the platform's apt-get one).
pub fn root_packages(
    target: &Target,
    platform: &Platform,
    needs: &Needs,
) -> anyhow::Result<Vec<String>> {
    let mut packages = Vec::new();
    for prerequisite in platform.prerequisites.iter().filter(|p| needs.wants(p)) {
        let package = prerequisite
            .apt_package(&target.packages)
            .with_context(|| {
                format!(
                    "prerequisite `{}` names no apt-get package for target `{}`",
                    prerequisite.name, target.name
                )
            })?;
        packages.push(package.to_owned());
    }
    packages.sort();
    packages.dedup();
    Ok(packages)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Directory,
    Tar,
}

fn ensure(
    dir: &Path,
    name: &str,
    target: &Target,
    packages: &[String],
    format: Format,
    what: &str,
) -> anyhow::Result<Ready> {
    let started = Instant::now();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _lock = files::lock(
        &dir.join(format!(".{name}.lock")),
        true,
        &format!("another run is making the {} {what}", target.name),
    )?;
    let path = match format {
        Format::Directory => dir.join(name),
        Format::Tar => dir.join(format!("{name}.tar")),
    };
    let key_file = dir.join(format!("{name}.key"));
    let sources = source_lines(target)?;
    let recorded = fs::read_to_string(&key_file).ok();
    let dates = match release_dates(&sources) {
        Ok(dates) => dates,
        // Offline: a root made before is what there is.
        Err(error) if recorded.is_some() && path.exists() => {
            eprintln!(
                "warning: cannot read the {} archive's release dates ({error:#}); using the {what} made before",
                target.name
            );
            return Ok(Ready {
                path,
                key: recorded.unwrap_or_default().trim().to_owned(),
                made: false,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        Err(error) => return Err(error),
    };
    let key = key_of(target, &sources, packages, &dates, format);
    if recorded.as_deref().map(str::trim) == Some(key.as_str()) && path.exists() {
        return Ok(Ready {
            path,
            key,
            made: false,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let _ = fs::remove_file(&key_file);
    remove(&path)?;
    let part = dir.join(format!("{name}.part-{}", std::process::id()));
    remove(&part)?;
    let part_target = match format {
        Format::Directory => part.clone(),
        Format::Tar => part.with_extension("tar"),
    };
    eprintln!(
        "{:>12} the {} {what} with mmdebstrap ({})",
        "Making", target.name, target.codename
    );
    let mut command = Command::new("mmdebstrap")
        .args(["--variant=minbase", "--mode=root", "--quiet"])
        .arg(match format {
            Format::Directory => "--format=directory",
            Format::Tar => "--format=tar",
        })
        // The archive's package lists stay: dose-debcheck reads them.
        .arg("--skip=cleanup/apt/lists")
        .arg(&target.codename)
        .arg(&part_target)
        .args(&sources)
        .inherit_environment();
    if !packages.is_empty() {
        command = command.arg(format!("--include={}", packages.join(",")));
    }
    let output = command.output()?;
    if !output.status.success() {
        let _ = remove(&part_target);
        bail!(
            "mmdebstrap could not make the {} {what}:\n{}",
            target.name,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    fs::rename(&part_target, &path)
        .with_context(|| format!("cannot move the root to {}", path.display()))?;
    files::write_atomically(&key_file, format!("{key}\n").as_bytes())?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{:>12} the {} {what} in {seconds:.1}s ({})",
        "Made",
        target.name,
        path.display()
    );
    Ok(Ready {
        path,
        key,
        made: true,
        seconds,
    })
}

/// What names a root: everything that went into it.
fn key_of(
    target: &Target,
    sources: &[String],
    packages: &[String],
    dates: &[String],
    format: Format,
) -> String {
    let mut hash = Sha256::new();
    let text = format!(
        "minbase\n{}\n{}\n{}\n{}\n{}\n",
        target.codename,
        sources.join("\n"),
        packages.join(","),
        dates.join("\n"),
        if format == Format::Tar { "tar" } else { "dir" }
    );
    hash.update(text.as_bytes());
    hex::encode(hash.finalize())
}

/// The `Date:` of each source's `InRelease`: when the archive last changed.
fn release_dates(sources: &[String]) -> anyhow::Result<Vec<String>> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut dates = Vec::new();
    for line in sources {
        let words: Vec<&str> = line
            .split_whitespace()
            .filter(|word| !word.starts_with('['))
            .collect();
        let (Some(uri), Some(suite)) = (words.get(1), words.get(2)) else {
            continue;
        };
        let url = format!("{}/dists/{suite}/InRelease", uri.trim_end_matches('/'));
        let date = if let Some(path) = url.strip_prefix("file://") {
            fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        } else {
            client
                .get(&url)
                .send()
                .and_then(|response| response.error_for_status())
                .and_then(|response| response.text())
                .with_context(|| format!("cannot fetch {url}"))?
        }
        .lines()
        .find_map(|line| line.strip_prefix("Date:"))
        .map(|date| date.trim().to_owned())
        .with_context(|| format!("{url} has no Date:"))?;
        dates.push(format!("{suite} {date}"));
    }
    Ok(dates)
}

/// Remove a root, or a file, if it is there. A root is never a mount point
/// here: every command that runs in it mounts inside a namespace of its own.
pub fn remove(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))
        }
        Ok(_) => fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display())),
        Err(_) => Ok(()),
    }
}

/// Unpack a fresh root of the target at `dir` from its base tarball.
pub fn fresh_root(base: &Path, dir: &Path) -> anyhow::Result<()> {
    remove(dir)?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Command::new("tar")
        .args(["-x", "--numeric-owner", "-f"])
        .arg(base)
        .arg("-C")
        .arg(dir)
        .checked_output()
        .context("cannot unpack the proof root")?;
    // apt in the root resolves the archive's host as this one does.
    if let Ok(resolv) = fs::read("/etc/resolv.conf") {
        let _ = fs::write(dir.join("etc/resolv.conf"), resolv);
    }
    Ok(())
}

/// The glibc version of a root: `2.41`, from its libc6 package.
pub fn glibc_version(root: &Path) -> Option<String> {
    let status = fs::read_to_string(root.join("var/lib/dpkg/status")).ok()?;
    let mut package = "";
    for line in status.lines() {
        if let Some(name) = line.strip_prefix("Package: ") {
            package = name;
        } else if let Some(version) = line.strip_prefix("Version: ") {
            if package == "libc6" {
                return version.split('-').next().map(str::to_owned);
            }
        }
    }
    None
}

/// One deb822 (or one-line) source of this host: `Types: deb` only.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct HostSource {
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    signed_by: Option<String>,
}

fn host_deb_sources() -> Vec<HostSource> {
    let mut sources = Vec::new();
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        sources.extend(parse_one_line_sources(&text));
    }
    let mut files: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    files.sort();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(|ext| ext.to_str()) {
            Some("sources") => sources.extend(parse_deb822_sources(&text)),
            Some("list") => sources.extend(parse_one_line_sources(&text)),
            _ => {}
        }
    }
    sources
}

fn parse_deb822_sources(text: &str) -> Vec<HostSource> {
    let mut sources = Vec::new();
    for stanza in text.split("\n\n") {
        let mut source = HostSource::default();
        let mut is_deb = false;
        for line in stanza.lines().filter(|line| !line.starts_with('#')) {
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let words = || value.split_whitespace().map(str::to_owned).collect();
            match field.trim() {
                "Types" => is_deb = value.split_whitespace().any(|kind| kind == "deb"),
                "URIs" => source.uris = words(),
                "Suites" => source.suites = words(),
                "Components" => source.components = words(),
                "Signed-By" => source.signed_by = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        if is_deb && !source.uris.is_empty() {
            sources.push(source);
        }
    }
    sources
}

fn parse_one_line_sources(text: &str) -> Vec<HostSource> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "deb" {
                return None;
            }
            let mut rest: Vec<&str> = words.collect();
            let mut signed_by = None;
            if rest.first()?.starts_with('[') {
                let options: Vec<&str> = rest
                    .iter()
                    .take_while(|word| !word.ends_with(']'))
                    .chain(rest.iter().find(|word| word.ends_with(']')))
                    .copied()
                    .collect();
                signed_by = options.iter().find_map(|option| {
                    option
                        .trim_matches(|c| c == '[' || c == ']')
                        .strip_prefix("signed-by=")
                        .map(str::to_owned)
                });
                rest.drain(..options.len());
            }
            Some(HostSource {
                uris: vec![rest.first()?.to_string()],
                suites: vec![rest.get(1)?.to_string()],
                components: rest.iter().skip(2).map(|c| c.to_string()).collect(),
                signed_by,
            })
        })
        .collect()
}

/// This host's release by code name (`bookworm`), from os-release.
pub fn host_codename() -> anyhow::Result<String> {
    let text = fs::read_to_string("/etc/os-release").context("cannot read /etc/os-release")?;
    text.lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))
        .map(|name| name.trim_matches('"').to_owned())
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()))
        .with_context(|| {
            format!(
                "/etc/os-release names no VERSION_CODENAME: a target other than `{}` needs a Debian host, or `archive` in its file",
                target::HOST
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_and_one_line_sources_are_read() {
        let text = "Types: deb-src\nURIs: http://a/debian\nSuites: bookworm\nComponents: main\n\n\
                    Types: deb\n# a comment\nURIs: http://a/debian\nSuites: bookworm bookworm-updates\n\
                    Components: main contrib\nSigned-By: /k.gpg\n";
        assert_eq!(
            parse_deb822_sources(text),
            [HostSource {
                uris: vec!["http://a/debian".into()],
                suites: vec!["bookworm".into(), "bookworm-updates".into()],
                components: vec!["main".into(), "contrib".into()],
                signed_by: Some("/k.gpg".into()),
            }]
        );
        let lines =
            "deb [arch=amd64 signed-by=/k.gpg] http://b/debian-security bookworm-security main\n\
                     deb-src http://b/debian bookworm main\n";
        assert_eq!(
            parse_one_line_sources(lines),
            [HostSource {
                uris: vec!["http://b/debian-security".into()],
                suites: vec!["bookworm-security".into()],
                components: vec!["main".into()],
                signed_by: Some("/k.gpg".into()),
            }]
        );
    }

    #[test]
    fn the_key_changes_with_what_goes_in() {
        let target = target::load(&target::targets_dir(None), "debian-13")
            .unwrap()
            .unwrap();
        let sources = vec!["deb http://a/debian trixie main".to_owned()];
        let packages = vec!["gcc".to_owned()];
        let dates = vec!["trixie Sat, 08 Nov 2025 10:00:00 UTC".to_owned()];
        let key = key_of(&target, &sources, &packages, &dates, Format::Directory);
        assert_eq!(
            key,
            key_of(&target, &sources, &packages, &dates, Format::Directory)
        );
        let later = vec!["trixie Sat, 15 Nov 2025 10:00:00 UTC".to_owned()];
        assert_ne!(
            key,
            key_of(&target, &sources, &packages, &later, Format::Directory)
        );
        assert_ne!(
            key,
            key_of(&target, &sources, &[], &dates, Format::Directory)
        );
        assert_ne!(
            key,
            key_of(&target, &sources, &packages, &dates, Format::Tar)
        );
    }
}
