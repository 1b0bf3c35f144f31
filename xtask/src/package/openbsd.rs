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

pub fn make(contents: &Contents<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    // OpenBSD spells a package revision `pN`; the first release has none.
    let revision = match package.release.parse::<u32>() {
        Ok(1) => String::new(),
        Ok(n) => format!("p{}", n - 1),
        Err(_) => format!("p{}", package.release),
    };
    let full_name = format!("{}-{}{revision}", package.name, package.version);
    // OpenBSD's own server user, whichever host made the package.
    let user = OPENBSD_SERVICE_USER;
    let mut plist = format!(
        "@name {full_name}\n@comment {}\n@arch {}\n+DESC\n\
         @newgroup {user}:503\n@newuser {user}:503:{user}:daemon:PostgreSQL Manager:/var/postgresql:/bin/sh\n\
         @cwd {}\n@owner root\n@group bin\n",
        package.summary,
        openbsd_arch(&contents.arch),
        package.prefix
    );
    // Files relative to @cwd, as the packing list and the archive name them.
    let files = tree_entries(&contents.stage_prefix, "")?;
    let mut current_mode = None;
    let mut members = Vec::new();
    for entry in files.into_iter().filter(|e| !e.name.is_empty()) {
        let relative = entry.name.trim_start_matches('/').to_owned();
        let Body::Disk(path) = &entry.body else {
            unreachable!("tree entries are on disk")
        };
        let meta = fs::symlink_metadata(path)?;
        if meta.file_type().is_symlink() {
            let _ = writeln!(
                plist,
                "{relative}\n@symlink {}",
                fs::read_link(path)?.display()
            );
        } else if meta.is_dir() {
            let _ = writeln!(plist, "{relative}/");
        } else {
            let mode = format!("{:04o}", meta.permissions().mode() & 0o777);
            if current_mode.as_ref() != Some(&mode) {
                let _ = writeln!(plist, "@mode {mode}");
                current_mode = Some(mode.clone());
            }
            let sha = hex::decode(sha256_file(path)?)?;
            let keyword = if relative.starts_with("bin/") && mode.starts_with("07") {
                "@bin "
            } else {
                ""
            };
            let _ = writeln!(
                plist,
                "{keyword}{relative}\n@sha {}\n@size {}\n@ts {}",
                base64::engine::general_purpose::STANDARD.encode(sha),
                meta.len(),
                contents.epoch
            );
        }
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
            body: Body::Bytes(plist.into_bytes(), 0o644),
        },
        Entry {
            name: "+DESC".into(),
            body: Body::Bytes(description.into_bytes(), 0o644),
        },
    ];
    entries.extend(members);
    let path = package.dist.join(format!("{full_name}.tgz"));
    write_atomically(&path, &gzip_parallel(&tar_bytes(&entries, contents.epoch)?))?;
    Ok(vec![path])
}
