//! Splitting the stage into PGDG-style subpackages, by the files each install
//! step recorded and, for the server's own files, by what they are.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};

use super::{Kind, Subpackage, CLIENT_PROGRAMS};
use crate::plan::{Package, PartKind, StepId};

/// The kind of a server file by its path below the prefix.
fn server_file_kind(relative: &str, versioned_libraries: &BTreeSet<String>) -> Kind {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    if let Some(program) = relative.strip_prefix("bin/") {
        return match program {
            "pg_config" | "ecpg" => Kind::Devel,
            _ if CLIENT_PROGRAMS.contains(&program) => Kind::Clients,
            _ => Kind::Server,
        };
    }
    if relative.starts_with("include/")
        || relative.starts_with("lib/pgxs/")
        || relative.starts_with("lib/pkgconfig/")
    {
        return Kind::Devel;
    }
    if let Some(library) = relative.strip_prefix("lib/") {
        if library.ends_with(".a") {
            return Kind::Devel;
        }
        if name.starts_with("lib") && name.contains(".so.") {
            return Kind::Libs;
        }
        // `libpq.so` beside `libpq.so.5` is the link-time name; `libpqwalreceiver.so`,
        // with no versioned twin, is a server module.
        if versioned_libraries.contains(library) {
            return Kind::Devel;
        }
    }
    Kind::Server
}

/// Split the stage into subpackages using the file lists the install steps recorded.
/// `installed` holds, by install step, the files it added to the stage.
pub fn split(
    package: &Package,
    installed: &BTreeMap<StepId, Vec<String>>,
) -> anyhow::Result<Vec<Subpackage>> {
    let prefix = package.prefix.trim_start_matches('/');
    let mut by_kind: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    for part in &package.parts {
        let files: Vec<&str> = installed
            .get(&part.step)
            .with_context(|| format!("no record of the files step `{}` installed", part.step))?
            .iter()
            .map(String::as_str)
            .collect();
        let versioned: BTreeSet<String> = files
            .iter()
            .filter_map(|file| file.strip_prefix(prefix)?.strip_prefix("/lib/"))
            .filter_map(|library| {
                library
                    .split_once(".so.")
                    .map(|(stem, _)| format!("{stem}.so"))
            })
            .collect();
        for file in files {
            let Some(relative) = file
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('/'))
            else {
                bail!(
                    "step `{}` installed {file}, outside the prefix {}",
                    part.step,
                    package.prefix
                );
            };
            let kind = match &part.part {
                PartKind::Server => server_file_kind(relative, &versioned),
                PartKind::Contrib => Kind::Contrib,
                PartKind::Plugin(name) => Kind::Plugin(name.clone()),
            };
            by_kind.entry(kind).or_default().push(file.to_owned());
        }
    }
    Ok(by_kind
        .into_iter()
        .map(|(kind, mut files)| {
            files.sort();
            Subpackage { kind, files }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_files_split_like_pgdg() {
        let versioned: BTreeSet<String> = ["libpq.so".to_owned()].into();
        let kind = |path| server_file_kind(path, &versioned);
        assert_eq!(kind("bin/psql"), Kind::Clients);
        assert_eq!(kind("bin/postgres"), Kind::Server);
        assert_eq!(kind("bin/pg_config"), Kind::Devel);
        assert_eq!(kind("lib/libpq.so.5.15"), Kind::Libs);
        assert_eq!(kind("lib/libpq.so"), Kind::Devel);
        assert_eq!(kind("lib/libpqwalreceiver.so"), Kind::Server);
        assert_eq!(kind("lib/libpgcommon.a"), Kind::Devel);
        assert_eq!(kind("include/server/postgres.h"), Kind::Devel);
        assert_eq!(kind("lib/pgxs/src/makefiles/pgxs.mk"), Kind::Devel);
        assert_eq!(kind("share/postgresql.conf.sample"), Kind::Server);
    }
}
