//! An OpenBSD package: a gzipped tar whose first member is the `+CONTENTS`
//! packing list (`@name`, `@cwd`, `@newuser`, `@owner`, `@mode`, and each
//! file with its sha256 and size), then `+DESC`, then the files below `@cwd`.

use std::{
    collections::BTreeMap, fmt::Write as _, fs, io::Read as _, os::unix::fs::PermissionsExt,
    path::PathBuf,
};

use anyhow::{bail, Context};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{
    tarball::{gzip_parallel, tar_bytes, tree_entries, Body, Entry},
    Contents,
};
use crate::{
    files::{sha256_file, write_atomically},
    plan::ServiceAccount,
};

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
    full_name_of(&package.name, &package.version, &package.release)
}

/// [`full_name`] of a package's name, version and release (`verify` checks
/// a package's `@name` against the manifest's with it).
pub(crate) fn full_name_of(name: &str, version: &str, release: &str) -> String {
    let revision = match release.parse::<u32>() {
        Ok(1) => String::new(),
        Ok(n) => format!("p{}", n - 1),
        Err(_) => format!("p{release}"),
    };
    format!("{name}-{version}{revision}")
}

pub fn make(contents: &Contents<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let Some(id) = package.service.id else {
        bail!(
            "platform `{}` sets no service_id: an OpenBSD packing list creates its user with a fixed uid",
            package.platform
        );
    };
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
            body: Body::Bytes(packing_list(contents, id, &listed).into_bytes(), 0o644),
        },
        Entry {
            name: "+DESC".into(),
            body: Body::Bytes(description.into_bytes(), 0o644),
        },
    ];
    entries.extend(members);
    entries.push(Entry {
        // tar names are relative: the member of an absolute path drops its `/`.
        name: rc_script_path(contents).trim_start_matches('/').to_owned(),
        body: Body::Bytes(rc_script(contents).into_bytes(), 0o555),
    });
    let bytes = gzip_parallel(&tar_bytes(&entries, contents.epoch)?);
    validate(&bytes).context("the OpenBSD package just made is malformed")?;
    let path = package.dist.join(format!("{}.tgz", full_name(contents)));
    write_atomically(&path, &bytes)?;
    Ok(vec![path])
}

/// `+CONTENTS`: the header, then every path in order, each file with its
/// mode (when it changes), sha256 and size.
pub fn packing_list(contents: &Contents<'_>, id: u32, listed: &[(String, Listed)]) -> String {
    let package = contents.package;
    let ServiceAccount { user, home, .. } = &package.service;
    let mut plist = format!(
        "@name {}\n@comment {}\n@arch {}\n+DESC\n\
         @newgroup {user}:{id}\n@newuser {user}:{id}:{user}:daemon:PostgreSQL Manager:{home}:/bin/sh\n\
         @owner {user}\n@group {user}\n@mode 0700\n@sample {home}/\n\
         @cwd {}\n@owner root\n@group bin\n@mode\n",
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
    let script = rc_script(contents);
    let _ = writeln!(
        plist,
        "@mode 0555\n@rcscript {}\n@sha {}\n@size {}\n@ts {}",
        rc_script_path(contents),
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes())),
        script.len(),
        contents.epoch
    );
    plist
}

/// `/etc/rc.d/<name>`: listed with its absolute path, and so named in the archive.
fn rc_script_path(contents: &Contents<'_>) -> String {
    format!("/etc/rc.d/{}", contents.package.name)
}

/// The rc.d(8) script: the server as the service user, stopped with `-m fast`.
pub fn rc_script(contents: &Contents<'_>) -> String {
    let package = contents.package;
    include_str!("../../../packaging/openbsd.rc.in")
        .replace("{name}", &package.name)
        .replace("{prefix}", &package.prefix)
        .replace("{user}", &package.service.user)
        .replace("{home}", &package.service.home)
}

/// The packing-list keywords this tool writes; anything else is refused.
const KEYWORDS: &[&str] = &[
    "@name",
    "@comment",
    "@arch",
    "@newgroup",
    "@newuser",
    "@cwd",
    "@owner",
    "@group",
    "@mode",
    "@sample",
    "@bin",
    "@rcscript",
    "@symlink",
    "@sha",
    "@size",
    "@ts",
];

/// Checks an OpenBSD package against package(5): `+CONTENTS` is the first
/// member and starts with `@name`, `+DESC` the second and listed; every other
/// member is listed once, in archive order (pkg_add reads the archive as a
/// stream), directories with their `/`; the owner, group and mode are
/// declared before the first file; every file is followed by `@sha` (base64
/// SHA-256) and `@size` that match its member; symlinks by their `@symlink`.
pub fn validate(package: &[u8]) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(package));
    let mut members: BTreeMap<String, Member> = BTreeMap::new();
    let mut order = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path_bytes();
        let name = String::from_utf8_lossy(&name)
            .trim_end_matches('/')
            .to_owned();
        let kind = entry.header().entry_type();
        let member = if kind.is_symlink() {
            Member::Symlink(
                entry
                    .link_name()?
                    .map(|target| target.display().to_string())
                    .unwrap_or_default(),
            )
        } else if kind.is_dir() {
            Member::Directory
        } else {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            Member::File(bytes)
        };
        order.push(name.clone());
        if members.insert(name.clone(), member).is_some() {
            bail!("{name} is in the archive twice");
        }
    }
    let first_two: Vec<&str> = order.iter().take(2).map(String::as_str).collect();
    if first_two != ["+CONTENTS", "+DESC"] {
        bail!("the archive starts with {first_two:?}, not +CONTENTS and +DESC");
    }
    let Some(Member::File(plist)) = members.get("+CONTENTS") else {
        bail!("+CONTENTS is not a file");
    };
    let plist = String::from_utf8(plist.clone()).context("+CONTENTS is not UTF-8")?;
    let mut lines = plist.lines().peekable();
    if !lines.next().is_some_and(|line| line.starts_with("@name ")) {
        bail!("+CONTENTS does not start with @name");
    }
    let (mut owner, mut group, mut mode) = (false, false, false);
    let mut listed = vec!["+CONTENTS".to_owned()];
    while let Some(line) = lines.next() {
        let (keyword, argument) = match line.split_once(' ') {
            Some((keyword, argument)) if keyword.starts_with('@') => (keyword, argument),
            _ if line.starts_with('@') => (line, ""),
            _ => ("", line),
        };
        if !keyword.is_empty() && !KEYWORDS.contains(&keyword) {
            bail!("+CONTENTS has an unknown keyword: {line}");
        }
        let path = match keyword {
            "@owner" => {
                owner = true;
                continue;
            }
            "@group" => {
                group = true;
                continue;
            }
            "@mode" => {
                // A bare @mode goes back to the archive's modes.
                mode = !argument.is_empty();
                continue;
            }
            "" | "@bin" | "@rcscript" => argument,
            _ => continue,
        };
        let name = path.trim_end_matches('/').trim_start_matches('/');
        if listed.iter().any(|seen| seen == name) {
            bail!("+CONTENTS lists {name} twice");
        }
        listed.push(name.to_owned());
        let Some(member) = members.get(name) else {
            bail!("+CONTENTS lists {path}, which is not in the archive");
        };
        if matches!(member, Member::Directory) != path.ends_with('/') {
            bail!("{path}: directories, and only they, are listed with a trailing /");
        }
        let bytes = match member {
            Member::Directory => continue,
            Member::Symlink(target) => {
                let next = lines.next().unwrap_or_default();
                if next.strip_prefix("@symlink ") != Some(target.as_str()) {
                    bail!("{path}: the symlink's target is {target}, the list says {next:?}");
                }
                continue;
            }
            Member::File(bytes) => bytes,
        };
        if name.starts_with('+') {
            continue;
        }
        if !(owner && group && mode) {
            bail!("{path} is listed before its owner, group and mode are declared");
        }
        let (mut sha, mut size) = (None, None);
        while let Some(next) = lines.peek().filter(|next| next.starts_with('@')) {
            if let Some(value) = next.strip_prefix("@sha ") {
                sha = Some(value.to_owned());
            } else if let Some(value) = next.strip_prefix("@size ") {
                size = Some(
                    value
                        .parse::<u64>()
                        .with_context(|| format!("{path}: bad @size"))?,
                );
            } else if !next.starts_with("@ts ") {
                break;
            }
            lines.next();
        }
        let want = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes));
        if sha.as_deref() != Some(want.as_str()) {
            bail!("{path}: @sha is {sha:?}, the member's is {want}");
        }
        if size != Some(bytes.len() as u64) {
            bail!(
                "{path}: @size is {size:?}, the member has {} bytes",
                bytes.len()
            );
        }
    }
    if listed != order {
        let unlisted = order.iter().find(|name| !listed.contains(*name));
        bail!(match unlisted {
            Some(name) => format!("{name} is in the archive but not in +CONTENTS"),
            None => "+CONTENTS lists the members in another order than the archive holds them"
                .to_owned(),
        });
    }
    Ok(())
}

enum Member {
    Directory,
    Symlink(String),
    File(Vec<u8>),
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
            let mut package = contents.package.clone();
            as_openbsd(&mut package);
            let contents = Contents {
                package: &package,
                ..contents.clone()
            };
            expect_test::expect_file!["../../../tests/golden/openbsd-CONTENTS"]
                .assert_eq(&packing_list(&contents, 503, &listed));
        });
    }

    /// A package written from a small stage passes the validator; the same
    /// package with one @size changed does not.
    #[test]
    fn a_package_from_a_fixture_stage_is_valid_and_a_forged_size_is_not() {
        let root = crate::files::tempdir().unwrap();
        let prefix = root.path().join("stage/usr/local/pgsql");
        fs::create_dir_all(prefix.join("bin")).unwrap();
        fs::create_dir_all(prefix.join("lib")).unwrap();
        fs::write(prefix.join("bin/postgres"), b"\x7fELF server").unwrap();
        fs::set_permissions(
            prefix.join("bin/postgres"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::write(prefix.join("lib/libpq.so.5.15"), b"\x7fELF libpq").unwrap();
        std::os::unix::fs::symlink("libpq.so.5.15", prefix.join("lib/libpq.so")).unwrap();
        fixture(|contents| {
            let mut package = contents.package.clone();
            as_openbsd(&mut package);
            package.dist = root.path().join("dist");
            package.stage = root.path().join("stage");
            fs::create_dir_all(&package.dist).unwrap();
            let contents = Contents {
                package: &package,
                stage_prefix: prefix.clone(),
                ..contents.clone()
            };
            let made = make(&contents).unwrap();
            let bytes = fs::read(&made[0]).unwrap();
            validate(&bytes).unwrap();
            let plist = extract_plist(&bytes);
            assert!(
                plist.contains("@newuser _postgresql:503:_postgresql:daemon"),
                "{plist}"
            );
            assert!(
                plist.contains("@rcscript /etc/rc.d/postgresql15-pglogical\n"),
                "{plist}"
            );

            let forged = plist.replacen("@size 11\n", "@size 12\n", 1);
            assert_ne!(forged, plist, "the fixture has an 11-byte file");
            let error = validate(&repack(&bytes, &forged)).unwrap_err().to_string();
            assert!(error.contains("@size is Some(12)"), "{error}");
            let forged = plist.replacen("@cwd ", "@exec rm -rf /\n@cwd ", 1);
            let error = validate(&repack(&bytes, &forged)).unwrap_err().to_string();
            assert!(error.contains("unknown keyword: @exec"), "{error}");
            let forged = plist.replacen("bin/\n", "", 1);
            let error = validate(&repack(&bytes, &forged)).unwrap_err().to_string();
            assert!(
                error.contains("bin is in the archive but not in +CONTENTS"),
                "{error}"
            );
        });
    }

    /// The fixture's package as the OpenBSD platform file makes it.
    fn as_openbsd(package: &mut crate::plan::Package) {
        let root = crate::project_root();
        let platform = crate::input::platform::load(&root.join("platforms"), "openbsd").unwrap();
        package.format = crate::input::platform::PackageFormat::Openbsd;
        package.prefix = platform.default_prefix;
        package.service = ServiceAccount {
            user: platform.service_user,
            id: platform.service_id,
            home: platform.service_home,
        };
    }

    fn extract_plist(package: &[u8]) -> String {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(package));
        let mut first = archive.entries().unwrap().next().unwrap().unwrap();
        let mut text = String::new();
        first.read_to_string(&mut text).unwrap();
        text
    }

    /// The package with its `+CONTENTS` replaced.
    fn repack(package: &[u8], plist: &str) -> Vec<u8> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(package));
        let mut out = tar::Builder::new(Vec::new());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut header = entry.header().clone();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            if entry.path_bytes().as_ref() == b"+CONTENTS" {
                bytes = plist.as_bytes().to_vec();
                header.set_size(bytes.len() as u64);
                header.set_cksum();
            }
            out.append(&header, bytes.as_slice()).unwrap();
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &out.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }
}
