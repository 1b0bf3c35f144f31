//! The glibc the RPMs need, from their ELF files' symbol versions, against
//! the glibc of the distribution release their dist tag names.
//!
//! A program linked here needs the highest `GLIBC_` version of the symbols
//! it took (`__libc_start_main@GLIBC_2.34` for anything linked against glibc
//! 2.34 or newer); on an older glibc the dynamic linker refuses to start it.
//! A dist tag claims the RPMs are for that release: the claim is checked on
//! the packages as written (both pure).

use super::{
    manifest::GlibcFloor,
    promise::{Member, Written},
};
use crate::{input::dist_tag::GlibcVersion, plan::RpmDist};

/// The highest glibc any ELF file of the binary packages needs, and the
/// first file (by package, then path) that needs it; `None` when none
/// needs a versioned glibc symbol. Debug packages' files are never loaded.
pub fn floor(packages: &[Written]) -> Option<GlibcFloor> {
    let mut floor: Option<GlibcFloor> = None;
    for package in packages.iter().filter(|package| !package.debug) {
        for (path, member) in &package.members {
            let Member::Elf(inspection) = member else {
                continue;
            };
            for name in inspection.versions_needed.values().flatten() {
                let Some(version) = GlibcVersion::of_symbol_version(name) else {
                    continue;
                };
                if floor.as_ref().is_none_or(|floor| version > floor.version) {
                    floor = Some(GlibcFloor {
                        version,
                        symbol: name.clone(),
                        file: path.trim_start_matches('/').to_owned(),
                    });
                }
            }
        }
    }
    floor
}

/// Whether RPMs that need `floor` may carry `dist`'s tag: not when the
/// release it names ships an older glibc. A tag without a known glibc
/// (only the host's can be one: `--dist` takes known tags only) passes,
/// since RPMs built on a host run on it.
pub fn check(floor: Option<&GlibcFloor>, dist: &RpmDist) -> Result<(), String> {
    let (Some(floor), Some(tag)) = (floor, &dist.tag) else {
        return Ok(());
    };
    let Some(glibc) = crate::input::dist_tag::glibc_of(tag) else {
        return Ok(());
    };
    if floor.version <= glibc {
        return Ok(());
    }
    Err(format!(
        "the RPMs need glibc {} ({} in {}), but {tag} has glibc {glibc}: \
         build them on {tag} (or an older glibc), or name the release they are for with --dist",
        floor.version, floor.symbol, floor.file
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::elf::Inspection;

    fn elf(versions: &[(&str, &[&str])]) -> Member {
        Member::Elf(Inspection {
            symbol_sections: Vec::new(),
            build_id: None,
            needed: Vec::new(),
            soname: None,
            class64: true,
            versions_needed: versions
                .iter()
                .map(|(library, names)| {
                    (
                        library.to_string(),
                        names.iter().map(|n| n.to_string()).collect(),
                    )
                })
                .collect(),
        })
    }

    fn package(name: &str, members: Vec<(&str, Member)>) -> Written {
        Written {
            file: format!("/dist/{name}.rpm").into(),
            name: name.into(),
            debug: name.ends_with("-debuginfo"),
            members: members
                .into_iter()
                .map(|(path, member)| (path.to_owned(), member))
                .collect(),
            requires: Default::default(),
        }
    }

    fn dist(tag: &str) -> RpmDist {
        RpmDist {
            tag: Some(tag.into()),
            from_flag: true,
        }
    }

    #[test]
    fn the_floor_is_the_highest_glibc_version_and_the_first_file_that_needs_it() {
        let packages = [
            package(
                "pg",
                vec![
                    (
                        "/usr/pgsql-15/bin/psql",
                        elf(&[
                            ("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.14"]),
                            ("libselinux.so.1", &["LIBSELINUX_9.0"]),
                        ]),
                    ),
                    ("/usr/pgsql-15/share/x.sql", Member::Other),
                ],
            ),
            package(
                "pg-server",
                vec![
                    (
                        "/usr/pgsql-15/bin/postgres",
                        elf(&[("libc.so.6", &["GLIBC_2.4", "GLIBC_2.34", "GLIBC_PRIVATE"])]),
                    ),
                    (
                        "/usr/pgsql-15/bin/postmaster",
                        elf(&[("libm.so.6", &["GLIBC_2.34"])]),
                    ),
                ],
            ),
            // Symbols are never loaded: a debug file needs nothing.
            package(
                "pg-debuginfo",
                vec![(
                    "/usr/lib/debug/x.debug",
                    elf(&[("libc.so.6", &["GLIBC_2.99"])]),
                )],
            ),
        ];
        let floor = floor(&packages).unwrap();
        assert_eq!(floor.version.to_string(), "2.34");
        assert_eq!(floor.symbol, "GLIBC_2.34");
        assert_eq!(floor.file, "usr/pgsql-15/bin/postgres");
        assert_eq!(check(Some(&floor), &dist("el9")), Ok(()));
        assert_eq!(check(Some(&floor), &dist("el10")), Ok(()));
        assert_eq!(
            check(Some(&floor), &dist("el8")),
            Err(
                "the RPMs need glibc 2.34 (GLIBC_2.34 in usr/pgsql-15/bin/postgres), but el8 \
                 has glibc 2.28: build them on el8 (or an older glibc), or name the release \
                 they are for with --dist"
                    .to_owned()
            )
        );
        // No tag, no claim; a host's tag of no known glibc is the host's own.
        assert_eq!(check(Some(&floor), &RpmDist::default()), Ok(()));
        let host = RpmDist {
            tag: Some("sles15".into()),
            from_flag: false,
        };
        assert_eq!(check(Some(&floor), &host), Ok(()));
        assert_eq!(check(None, &dist("el7")), Ok(()));
        assert!(floor_of_nothing().is_none());
    }

    fn floor_of_nothing() -> Option<GlibcFloor> {
        floor(&[package(
            "static",
            vec![
                ("/bin/x", elf(&[])),
                ("/bin/y", Member::Symlink("x".into())),
            ],
        )])
    }

    #[test]
    fn a_numerically_higher_version_wins_over_a_longer_string() {
        let packages = [package(
            "pg",
            vec![
                ("/a", elf(&[("libc.so.6", &["GLIBC_2.3.4"])])),
                ("/b", elf(&[("libc.so.6", &["GLIBC_2.17"])])),
                ("/c", elf(&[("libc.so.6", &["GLIBC_2.9"])])),
            ],
        )];
        let floor = floor(&packages).unwrap();
        assert_eq!(
            (floor.symbol.as_str(), floor.file.as_str()),
            ("GLIBC_2.17", "b")
        );
    }
}
