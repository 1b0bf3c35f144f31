//! Debian packages, one per subpackage, written directly: a .deb is an `ar`
//! archive of `debian-binary`, `control.tar.gz` and `data.tar.gz`, and writing
//! it here keeps it reproducible with no dpkg-deb on the build host.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use super::{
    extra_files,
    tarball::{gzip_parallel, tar_bytes, Body, Entry},
    Contents, ExtraFile, Kind, Subpackage,
};
use crate::files::write_atomically;

fn debian_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" => "i386",
        other => other,
    }
}

/// `<version>-<release>`, as Debian spells a package version.
fn debian_version(contents: &Contents<'_>) -> String {
    format!("{}-{}", contents.package.version, contents.package.release)
}

pub fn make(contents: &Contents<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let extras = extra_files(contents);
    let mut made = Vec::new();
    for subpackage in &contents.subpackages {
        let mine: Vec<&ExtraFile> = extras
            .iter()
            .filter(|extra| extra.kind == subpackage.kind)
            .collect();
        let (data, installed_bytes) = data_archive(contents, subpackage, &mine)?;
        let control = control_archive(contents, subpackage, &mine, installed_bytes)?;
        let deb = ar(
            &[
                ("debian-binary", b"2.0\n".as_slice()),
                ("control.tar.gz", &control),
                ("data.tar.gz", &data),
            ],
            contents.epoch,
        );
        let path = package.dist.join(format!(
            "{}_{}_{}.deb",
            contents.name_of(&subpackage.kind),
            debian_version(contents),
            debian_arch(&contents.arch)
        ));
        write_atomically(&path, &deb)?;
        made.push(path);
    }
    Ok(made)
}

/// `data.tar.gz`: the subpackage's files and their directories, and the
/// extra files made for it; with the bytes installed, for `Installed-Size`.
fn data_archive(
    contents: &Contents<'_>,
    subpackage: &Subpackage,
    extras: &[&ExtraFile],
) -> anyhow::Result<(Vec<u8>, u64)> {
    let stage = &contents.package.stage;
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let all_files = subpackage.files.iter().map(|f| f.to_owned()).chain(
        extras
            .iter()
            .map(|e| e.path.trim_start_matches('/').to_owned()),
    );
    for file in all_files {
        let mut parent = Path::new(&file).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            paths.insert(format!("{}/", dir.display()));
            parent = dir.parent();
        }
        paths.insert(file);
    }
    let mut installed_bytes = 0u64;
    let mut entries = vec![Entry {
        name: ".".into(),
        body: Body::Directory,
    }];
    for path in &paths {
        let name = format!("./{}", path.trim_end_matches('/'));
        let on_disk = stage.join(path.trim_end_matches('/'));
        let extra = extras
            .iter()
            .find(|e| e.path.trim_start_matches('/') == path.as_str());
        let body = match extra {
            Some(extra) => Body::Bytes(extra.text.clone().into_bytes(), 0o644),
            None if path.ends_with('/') && !on_disk.is_dir() => Body::Directory,
            None => {
                installed_bytes += fs::symlink_metadata(&on_disk).map(|m| m.len()).unwrap_or(0);
                Body::Disk(on_disk)
            }
        };
        entries.push(Entry { name, body });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((
        gzip_parallel(&tar_bytes(&entries, contents.epoch)?),
        installed_bytes,
    ))
}

/// `control.tar.gz`: the control file, the conffiles, the maintainer scripts.
fn control_archive(
    contents: &Contents<'_>,
    subpackage: &Subpackage,
    extras: &[&ExtraFile],
    installed_bytes: u64,
) -> anyhow::Result<Vec<u8>> {
    let control = control_text(contents, &subpackage.kind, installed_bytes);
    let mut entries = vec![
        Entry {
            name: ".".into(),
            body: Body::Directory,
        },
        Entry {
            name: "./control".into(),
            body: Body::Bytes(control.into_bytes(), 0o644),
        },
    ];
    let conffiles: Vec<&str> = extras
        .iter()
        .filter(|e| e.config)
        .map(|e| e.path.as_str())
        .collect();
    if !conffiles.is_empty() {
        entries.push(Entry {
            name: "./conffiles".into(),
            body: Body::Bytes((conffiles.join("\n") + "\n").into_bytes(), 0o644),
        });
    }
    for (name, text) in maintainer_scripts(&contents.package.service_user, &subpackage.kind) {
        entries.push(Entry {
            name: format!("./{name}"),
            body: Body::Bytes(text.into_bytes(), 0o755),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(gzip_parallel(&tar_bytes(&entries, contents.epoch)?))
}

/// The control file of one subpackage.
pub fn control_text(contents: &Contents<'_>, kind: &Kind, installed_bytes: u64) -> String {
    let package = contents.package;
    let version = debian_version(contents);
    let kinds: Vec<&Kind> = contents.subpackages.iter().map(|s| &s.kind).collect();
    let depends: Vec<String> = kind
        .requires()
        .into_iter()
        .filter(|required| kinds.contains(&required))
        .map(|required| format!("{} (= {version})", contents.name_of(&required)))
        .collect();
    let mut control = format!(
        "Package: {}\nVersion: {version}\nArchitecture: {}\nMaintainer: bdr-dist <bdr-dist@localhost>\n\
         Installed-Size: {}\nSection: database\nPriority: optional\nHomepage: {}\n",
        contents.name_of(kind),
        debian_arch(&contents.arch),
        installed_bytes.div_ceil(1024),
        package.url
    );
    if !depends.is_empty() {
        let _ = writeln!(control, "Depends: {}", depends.join(", "));
    }
    if let Some(pgdg) = contents.pgdg_name_of(kind) {
        let _ = writeln!(control, "Provides: {pgdg} (= {version})");
    }
    let _ = writeln!(
        control,
        "Description: {}\n {}.",
        package.summary,
        kind.description()
    );
    control
}

/// The maintainer scripts of one subpackage, by name.
pub fn maintainer_scripts(user: &str, kind: &Kind) -> Vec<(&'static str, String)> {
    let ldconfig = "#!/bin/sh\nset -e\nldconfig\n".to_owned();
    match kind {
        Kind::Server => vec![
            (
                "postinst",
                ldconfig,
            ),
            (
                "preinst",
                format!(
                    "#!/bin/sh\nset -e\ngetent group {user} >/dev/null || groupadd --system {user}\n\
                     getent passwd {user} >/dev/null || useradd --system --gid {user} --home-dir /var/lib/pgsql --shell /bin/sh {user}\nexit 0\n"
                ),
            ),
        ],
        Kind::Libs => vec![("postinst", ldconfig.clone()), ("postrm", ldconfig)],
        _ => Vec::new(),
    }
}

/// A common-format `ar` archive, as dpkg reads it.
fn ar(members: &[(&str, &[u8])], epoch: u64) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            epoch,
            0,
            0,
            "100644",
            data.len()
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::fixture;

    #[test]
    fn control_files_of_the_server_and_the_plugin() {
        fixture(|contents| {
            let text = [Kind::Server, Kind::Plugin("pglogical".into())]
                .iter()
                .map(|kind| control_text(contents, kind, 123_456))
                .collect::<Vec<_>>()
                .join("\n");
            expect_test::expect_file!["../../../tests/golden/deb-control"].assert_eq(&text);
        });
    }
}
