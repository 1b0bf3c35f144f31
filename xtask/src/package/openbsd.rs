//! An OpenBSD package: a gzipped tar whose first member is the `+CONTENTS`
//! packing list (`@name`, `@cwd`, `@newuser`, `@owner`, `@mode`, and each
//! file with its sha256 and size), then `+DESC`, then the files below `@cwd`.

use std::{fmt::Write as _, fs, os::unix::fs::PermissionsExt, path::PathBuf};

use base64::Engine as _;

use super::{
    tarball::{gzip_parallel, tar_bytes, tree_entries, Body, Entry},
    Contents,
};
use crate::files::{sha256_file, write_atomically};

/// The user OpenBSD's PostgreSQL ports run the server as (uid 503).
const OPENBSD_SERVICE_USER: &str = "_postgresql";

fn openbsd_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// What the packing list says of one path below `@cwd`.
#[derive(Debug, Clone)]
pub enum Listed {
    Directory,
    Symlink(String),
    File {
        mode: u32,
        sha256: Vec<u8>,
        size: u64,
    },
}

/// `<name>-<version>`, with OpenBSD's `pN` for a release after the first.
fn full_name(contents: &Contents<'_>) -> String {
    let package = contents.package;
    let revision = match package.release.parse::<u32>() {
        Ok(1) => String::new(),
        Ok(n) => format!("p{}", n - 1),
        Err(_) => format!("p{}", package.release),
    };
    format!("{}-{}{revision}", package.name, package.version)
}

pub fn make(contents: &Contents<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    // Files relative to @cwd, as the packing list and the archive name them.
    let mut listed = Vec::new();
    let mut members = Vec::new();
    for entry in tree_entries(&contents.stage_prefix, "")?
        .into_iter()
        .filter(|e| !e.name.is_empty())
    {
        let relative = entry.name.trim_start_matches('/').to_owned();
        let Body::Disk(path) = &entry.body else {
            unreachable!("tree entries are on disk")
        };
        let meta = fs::symlink_metadata(path)?;
        let what = if meta.file_type().is_symlink() {
            Listed::Symlink(fs::read_link(path)?.display().to_string())
        } else if meta.is_dir() {
            Listed::Directory
        } else {
            Listed::File {
                mode: meta.permissions().mode() & 0o777,
                sha256: hex::decode(sha256_file(path)?)?,
                size: meta.len(),
            }
        };
        listed.push((relative.clone(), what));
        members.push(Entry {
            name: relative,
            body: entry.body,
        });
    }
    let description = format!(
        "{}.\nPackaged by bdr-dist from set {}.\n",
        package.summary, contents.manifest.set
    );
    let mut entries = vec![
        Entry {
            name: "+CONTENTS".into(),
            body: Body::Bytes(packing_list(contents, &listed).into_bytes(), 0o644),
        },
        Entry {
            name: "+DESC".into(),
            body: Body::Bytes(description.into_bytes(), 0o644),
        },
    ];
    entries.extend(members);
    let path = package.dist.join(format!("{}.tgz", full_name(contents)));
    write_atomically(&path, &gzip_parallel(&tar_bytes(&entries, contents.epoch)?))?;
    Ok(vec![path])
}

/// `+CONTENTS`: the header, then every path in order, each file with its
/// mode (when it changes), sha256 and size.
pub fn packing_list(contents: &Contents<'_>, listed: &[(String, Listed)]) -> String {
    let package = contents.package;
    // OpenBSD's own server user, whichever host made the package.
    let user = OPENBSD_SERVICE_USER;
    let mut plist = format!(
        "@name {}\n@comment {}\n@arch {}\n+DESC\n\
         @newgroup {user}:503\n@newuser {user}:503:{user}:daemon:PostgreSQL Manager:/var/postgresql:/bin/sh\n\
         @cwd {}\n@owner root\n@group bin\n",
        full_name(contents),
        package.summary,
        openbsd_arch(&contents.arch),
        package.prefix
    );
    let mut current_mode = None;
    for (relative, what) in listed {
        match what {
            Listed::Symlink(target) => {
                let _ = writeln!(plist, "{relative}\n@symlink {target}");
            }
            Listed::Directory => {
                let _ = writeln!(plist, "{relative}/");
            }
            Listed::File { mode, sha256, size } => {
                let mode = format!("{mode:04o}");
                if current_mode.as_ref() != Some(&mode) {
                    let _ = writeln!(plist, "@mode {mode}");
                    current_mode = Some(mode.clone());
                }
                let keyword = if relative.starts_with("bin/") && mode.starts_with("07") {
                    "@bin "
                } else {
                    ""
                };
                let _ = writeln!(
                    plist,
                    "{keyword}{relative}\n@sha {}\n@size {size}\n@ts {}",
                    base64::engine::general_purpose::STANDARD.encode(sha256),
                    contents.epoch
                );
            }
        }
    }
    plist
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::fixture;

    #[test]
    fn the_packing_list_names_every_path_with_its_checksum() {
        fixture(|contents| {
            let listed = [
                ("bin".to_owned(), Listed::Directory),
                (
                    "bin/postgres".to_owned(),
                    Listed::File {
                        mode: 0o755,
                        sha256: vec![0xab; 32],
                        size: 9_000_000,
                    },
                ),
                ("lib".to_owned(), Listed::Directory),
                (
                    "lib/libpq.so".to_owned(),
                    Listed::Symlink("libpq.so.5.15".to_owned()),
                ),
                (
                    "lib/libpq.so.5.15".to_owned(),
                    Listed::File {
                        mode: 0o755,
                        sha256: vec![0xcd; 32],
                        size: 300_000,
                    },
                ),
                (
                    "share/postgresql.conf.sample".to_owned(),
                    Listed::File {
                        mode: 0o644,
                        sha256: vec![0xef; 32],
                        size: 29_000,
                    },
                ),
            ];
            expect_test::expect_file!["../../../tests/golden/openbsd-CONTENTS"]
                .assert_eq(&packing_list(contents, &listed));
        });
    }
}
