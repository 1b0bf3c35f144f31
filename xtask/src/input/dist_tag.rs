//! RPM dist tags (`el9`, `fc40`): the rule a tag follows, the glibc each
//! known one ships, and glibc versions as the ELF symbol versions name them
//! (`GLIBC_2.34`), compared by number.

use std::{cmp::Ordering, fmt};

/// The glibc of each distribution release a dist tag names: the upstream
/// version of the release's own `glibc` package, which it keeps for its
/// whole life (fixes are backported, no symbol version is added). A
/// program that needs a newer symbol version does not load there.
pub const KNOWN: &[(&str, &str)] = &[
    // RHEL 7 and its rebuilds: glibc-2.17-*.el7.
    ("el7", "2.17"),
    // RHEL 8: glibc-2.28-*.el8.
    ("el8", "2.28"),
    // RHEL 9: glibc-2.34-*.el9.
    ("el9", "2.34"),
    // RHEL 10: glibc-2.39-*.el10.
    ("el10", "2.39"),
    // Fedora ships each upstream release in the Fedora that follows it:
    // glibc-2.38 in 39, 2.39 in 40, 2.40 in 41, 2.41 in 42.
    ("fc39", "2.38"),
    ("fc40", "2.39"),
    ("fc41", "2.40"),
    ("fc42", "2.41"),
    // Amazon Linux 2023: glibc-2.34-*.amzn2023.
    ("amzn2023", "2.34"),
];

/// A dist tag as `--dist` takes it: a lowercase letter, then lowercase
/// letters and digits, at most 16 (rpm's `%{?dist}` is `.` and this).
pub fn check(text: &str) -> Result<(), String> {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if first_ok && rest_ok && text.len() <= 16 {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a dist tag: a lowercase letter, then lowercase letters and digits \
             (el9, fc40), without the dot"
        ))
    }
}

/// A dist tag `--dist` names: well formed and known, so that its glibc can
/// be checked against what the RPMs need. An unknown one is refused: the
/// tag says which distribution the RPMs are for, and nothing here could
/// back that claim.
pub fn parse_known(text: &str) -> Result<String, String> {
    check(text)?;
    if glibc_of(text).is_some() {
        return Ok(text.to_owned());
    }
    let known: Vec<String> = KNOWN
        .iter()
        .map(|(tag, glibc)| format!("{tag} (glibc {glibc})"))
        .collect();
    Err(format!(
        "no glibc is known for dist tag `{text}`, so the RPMs' needs cannot be checked \
         against it; known: {}",
        known.join(", ")
    ))
}

/// The glibc the distribution release of `tag` ships, if known.
pub fn glibc_of(tag: &str) -> Option<GlibcVersion> {
    KNOWN
        .iter()
        .find(|(known, _)| *known == tag)
        .and_then(|(_, version)| GlibcVersion::parse(version))
}

/// A glibc version, `2.34` or `2.2.5`: compared part by part as numbers
/// (`2.4` < `2.34`), missing parts as 0 (`2.3` = `2.3.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlibcVersion(Vec<u32>);

impl GlibcVersion {
    /// `2.34`; `None` for anything but dot-separated numbers.
    pub fn parse(text: &str) -> Option<GlibcVersion> {
        let parts: Option<Vec<u32>> = text
            .split('.')
            .map(|part| {
                (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| part.parse().ok())
                    .flatten()
            })
            .collect();
        parts.filter(|parts| parts.len() >= 2).map(GlibcVersion)
    }

    /// The glibc that defines a symbol version: `GLIBC_2.34` → 2.34;
    /// `GLIBC_ABI_DT_RELR` (a file with packed relative relocations) → 2.36,
    /// the first to load one; `None` for any other (`GLIBC_PRIVATE`,
    /// another library's `LIBSELINUX_1.0`).
    pub fn of_symbol_version(name: &str) -> Option<GlibcVersion> {
        if name == "GLIBC_ABI_DT_RELR" {
            return GlibcVersion::parse("2.36");
        }
        GlibcVersion::parse(name.strip_prefix("GLIBC_")?)
    }
}

impl Ord for GlibcVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let length = self.0.len().max(other.0.len());
        let part = |parts: &[u32], index: usize| parts.get(index).copied().unwrap_or(0);
        (0..length)
            .map(|index| part(&self.0, index).cmp(&part(&other.0, index)))
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for GlibcVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl serde::Serialize for GlibcVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> GlibcVersion {
        GlibcVersion::parse(text).unwrap()
    }

    #[test]
    fn glibc_versions_compare_by_number() {
        assert!(version("2.4") < version("2.34"));
        assert!(version("2.2.5") < version("2.3"));
        assert!(version("2.3.4") > version("2.3"));
        assert!(version("2.34") < version("2.39"));
        assert!(version("3.0") > version("2.99.99"));
        assert_eq!(version("2.3"), version("2.3"));
        assert_eq!(version("2.3").cmp(&version("2.3.0")), Ordering::Equal);
        let mut names = ["GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.4", "GLIBC_2.14"]
            .map(|name| GlibcVersion::of_symbol_version(name).unwrap());
        names.sort();
        assert_eq!(
            names.map(|v| v.to_string()),
            ["2.2.5", "2.4", "2.14", "2.34"]
        );
        assert_eq!(
            GlibcVersion::of_symbol_version("GLIBC_ABI_DT_RELR"),
            Some(version("2.36"))
        );
        for other in [
            "GLIBC_PRIVATE",
            "LIBSELINUX_1.0",
            "GLIBC_",
            "GLIBC_2",
            "GLIBC_2.x",
        ] {
            assert_eq!(GlibcVersion::of_symbol_version(other), None, "{other}");
        }
        for bad in ["", "2", "2.", ".2", "2..3", "2.3a", "+2.3"] {
            assert_eq!(GlibcVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn dist_tags_are_checked_and_known_ones_have_their_glibc() {
        for good in ["el9", "fc40", "amzn2023", "el10"] {
            assert_eq!(check(good), Ok(()), "{good}");
            assert_eq!(parse_known(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            ".el9",
            "El9",
            "9el",
            "el9_3",
            "el 9",
            "el9/../x",
            "a234567890123456x",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        assert_eq!(glibc_of("el8"), Some(version("2.28")));
        assert_eq!(glibc_of("el9"), Some(version("2.34")));
        let unknown = parse_known("sles15").unwrap_err();
        assert!(
            unknown.contains("no glibc is known for dist tag `sles15`")
                && unknown.contains("el8 (glibc 2.28), el9 (glibc 2.34)"),
            "{unknown}"
        );
        for (tag, glibc) in KNOWN {
            assert_eq!(check(tag), Ok(()), "{tag}");
            assert!(GlibcVersion::parse(glibc).is_some(), "{tag}: {glibc}");
        }
    }
}
