//! Targets: `targets/<name>.toml`, the distribution releases packages are
//! built for, each in a clean root of its own (`roots`), with its own
//! package versions (`9.4.13-1+deb13`). `host` is not a file: it is this
//! machine, today's behaviour, and the default.

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
    platform::PackageFormat,
};

/// The target that is this host: no root, the platform's formats, no suffix.
pub const HOST: &str = "host";

/// A validated target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The file's stem: `debian-13`.
    pub name: String,
    /// `Debian 13 (trixie)`.
    pub description: String,
    /// The platform whose recipes and prerequisites it builds with.
    pub platform: String,
    /// `debian`.
    pub distribution: String,
    /// `13`.
    pub release: String,
    /// `trixie`: what mmdebstrap is given.
    pub codename: String,
    /// The apt suites of its archive, main first.
    pub suites: Vec<String>,
    /// Apt source lines (`deb URI SUITE COMPONENT...`) instead of this
    /// host's Debian sources with the suites renamed.
    pub archive: Vec<String>,
    /// Appended to every package's version: `+deb13`.
    pub version_suffix: String,
    /// Package formats made when `--format` is not given.
    pub formats: Vec<PackageFormat>,
    /// Prerequisite name -> this release's package, where it differs from
    /// the platform's apt-get package.
    pub packages: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    description: Spanned<String>,
    platform: Spanned<String>,
    distribution: Spanned<String>,
    release: Spanned<String>,
    codename: Spanned<String>,
    suites: Vec<Spanned<String>>,
    #[serde(default)]
    archive: Vec<Spanned<String>>,
    version_suffix: Spanned<String>,
    formats: Vec<PackageFormat>,
    #[serde(default)]
    packages: BTreeMap<String, Spanned<String>>,
}

/// The target directory: `--targets`, else `BDR_DIST_TARGETS`, else the repo's.
pub fn targets_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| crate::project_root().join("targets"))
}

/// Names of the target files, sorted; `host` first.
pub fn names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = vec![HOST.to_owned()];
    if dir.is_dir() {
        names.extend(crate::input::recipe::set_names(dir)?);
    }
    Ok(names)
}

/// `None` for `host`.
pub fn load(dir: &Path, name: &str) -> anyhow::Result<Option<Target>> {
    if name == HOST {
        return Ok(None);
    }
    if let Err(why) = names::check_plain_name(name) {
        return Err(invalid(format!("target `{name}`: {why}")));
    }
    let path = dir.join(format!("{name}.toml"));
    if !path.is_file() {
        let known = names(dir).unwrap_or_default().join(", ");
        return Err(invalid(format!(
            "target `{name}` does not exist: no {} (known: {known})",
            path.display()
        )));
    }
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&path, &text, name).map(Some)
}

pub fn parse(path: &Path, text: &str, name: &str) -> anyhow::Result<Target> {
    let source = Source { path, text };
    let file: TargetFile = source.parse()?;
    let check = |value: &Spanned<String>, key: &str, rule: fn(&str) -> Result<(), String>| {
        rule(value.get_ref()).map_err(|message| source.error_at(value.span(), key, message))
    };
    check(&file.description, "description", names::check_one_line)?;
    for (value, key) in [
        (&file.platform, "platform"),
        (&file.distribution, "distribution"),
        (&file.release, "release"),
        (&file.codename, "codename"),
    ] {
        check(value, key, names::check_plain_name)?;
    }
    if file.suites.is_empty() {
        return Err(invalid(format!(
            "{}: key `suites`: needs the release's main suite",
            path.display()
        )));
    }
    for suite in &file.suites {
        check(suite, "suites", names::check_plain_name)?;
    }
    for line in &file.archive {
        check(line, "archive", check_source_line)?;
    }
    check(&file.version_suffix, "version_suffix", check_version_suffix)?;
    if file.formats.is_empty() {
        return Err(invalid(format!(
            "{}: key `formats`: needs at least one package format",
            path.display()
        )));
    }
    for package in file.packages.values() {
        check(package, "packages", names::check_plain_name)?;
    }
    Ok(Target {
        name: name.to_owned(),
        description: file.description.into_inner(),
        platform: file.platform.into_inner(),
        distribution: file.distribution.into_inner(),
        release: file.release.into_inner(),
        codename: file.codename.into_inner(),
        suites: file.suites.into_iter().map(Spanned::into_inner).collect(),
        archive: file.archive.into_iter().map(Spanned::into_inner).collect(),
        version_suffix: file.version_suffix.into_inner(),
        formats: file.formats,
        packages: file
            .packages
            .into_iter()
            .map(|(name, package)| (name, package.into_inner()))
            .collect(),
    })
}

/// `+deb13`: what Debian policy allows in a version after the revision,
/// starting with `+` or `~` so it sorts after (or before) the plain one.
fn check_version_suffix(text: &str) -> Result<(), String> {
    let mut chars = text.chars();
    let valid = matches!(chars.next(), Some('+' | '~'))
        && text.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.~".contains(c));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a version suffix: `+` or `~`, then letters, digits, `+`, `.` or `~`",
            text.escape_debug()
        ))
    }
}

/// `deb http://... trixie main`: one line, a `deb` source with a URI, a
/// suite and a component, nothing a shell or apt would read as more.
fn check_source_line(text: &str) -> Result<(), String> {
    names::check_one_line(text)?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let uri_ok = words.get(1).is_some_and(|uri| {
        ["http://", "https://", "file:/"]
            .iter()
            .any(|scheme| uri.starts_with(scheme))
    });
    if words.first() == Some(&"deb") && uri_ok && words.len() >= 4 {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an apt source line: `deb URI SUITE COMPONENT...`",
            text.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repo_targets_load() {
        let dir = targets_dir(None);
        let names = names(&dir).unwrap();
        assert_eq!(names, ["host", "debian-11", "debian-12", "debian-13"]);
        for name in &names[1..] {
            let target = load(&dir, name).unwrap().unwrap();
            assert_eq!(target.platform, "linux");
            assert!(target.version_suffix.starts_with("+deb"), "{target:?}");
        }
        assert_eq!(load(&dir, HOST).unwrap(), None);
    }

    #[test]
    fn bad_values_are_located() {
        let text = "description = \"x\"\nplatform = \"linux\"\ndistribution = \"debian\"\n\
                    release = \"13\"\ncodename = \"trixie\"\nsuites = [\"trixie\"]\n\
                    version_suffix = \"deb13\"\nformats = [\"deb\"]\n";
        let error = parse(Path::new("t.toml"), text, "t")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("t.toml:7:18: key `version_suffix`"),
            "{error}"
        );
        let text = text
            .replace("\"deb13\"", "\"+deb13\"")
            .replace("suites = [\"trixie\"]", "suites = [\"../x\"]");
        let error = parse(Path::new("t.toml"), &text, "t")
            .unwrap_err()
            .to_string();
        assert!(error.contains("key `suites`"), "{error}");
        let text = text.replace("[\"../x\"]", "[\"trixie\"]\narchive = [\"deb x\"]");
        let error = parse(Path::new("t.toml"), &text, "t")
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not an apt source line"), "{error}");
    }

    #[test]
    fn an_unknown_target_names_the_known_ones() {
        let error = load(&targets_dir(None), "debian-99")
            .unwrap_err()
            .to_string();
        assert!(error.contains("known: host, debian-11"), "{error}");
    }
}
