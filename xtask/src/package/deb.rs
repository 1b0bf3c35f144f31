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
    Contents, Kind,
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

pub fn make(contents: &Contents<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let version = format!("{}-{}", package.version, package.release);
    let arch = debian_arch(&contents.arch);
    let stage = &package.stage;
    let extras = extra_files(contents);
    let kinds: Vec<&Kind> = contents.subpackages.iter().map(|s| &s.kind).collect();
    let mut made = Vec::new();
    for subpackage in &contents.subpackages {
        let name = contents.name_of(&subpackage.kind);
        let mine: Vec<_> = extras
            .iter()
            .filter(|extra| extra.kind == subpackage.kind)
            .collect();

        let mut paths: BTreeSet<String> = BTreeSet::new();
        let mut entries = Vec::new();
        let mut installed_bytes = 0u64;
        let all_files = subpackage.files.iter().map(|f| f.to_owned()).chain(
            mine.iter()
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
        entries.push(Entry {
            name: ".".into(),
            body: Body::Directory,
        });
        for path in &paths {
            let name = format!("./{}", path.trim_end_matches('/'));
            let on_disk = stage.join(path.trim_end_matches('/'));
            let extra = mine
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
        let data = gzip_parallel(&tar_bytes(&entries, contents.epoch)?);

        let depends: Vec<String> = subpackage
            .kind
            .requires()
            .into_iter()
            .filter(|required| kinds.contains(&required))
            .map(|required| format!("{} (= {version})", contents.name_of(&required)))
            .collect();
        let mut control = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: bdr-dist <bdr-dist@localhost>\n\
             Installed-Size: {}\nSection: database\nPriority: optional\nHomepage: {}\n",
            installed_bytes.div_ceil(1024),
            package.url
        );
        if !depends.is_empty() {
            let _ = writeln!(control, "Depends: {}", depends.join(", "));
        }
        if let Some(pgdg) = contents.pgdg_name_of(&subpackage.kind) {
            let _ = writeln!(control, "Provides: {pgdg} (= {version})");
        }
        let _ = writeln!(
            control,
            "Description: {}\n {}.",
            package.summary,
            subpackage.kind.description()
        );
        let mut control_entries = vec![
            Entry {
                name: ".".into(),
                body: Body::Directory,
            },
            Entry {
                name: "./control".into(),
                body: Body::Bytes(control.into_bytes(), 0o644),
            },
        ];
        let conffiles: Vec<&str> = mine
            .iter()
            .filter(|e| e.config)
            .map(|e| e.path.as_str())
            .collect();
        if !conffiles.is_empty() {
            control_entries.push(Entry {
                name: "./conffiles".into(),
                body: Body::Bytes((conffiles.join("\n") + "\n").into_bytes(), 0o644),
            });
        }
        let user = &package.service_user;
        match subpackage.kind {
            Kind::Server => {
                let preinst = format!(
                    "#!/bin/sh\nset -e\ngetent group {user} >/dev/null || groupadd --system {user}\n\
                     getent passwd {user} >/dev/null || useradd --system --gid {user} --home-dir /var/lib/pgsql --shell /bin/sh {user}\nexit 0\n"
                );
                control_entries.push(Entry {
                    name: "./preinst".into(),
                    body: Body::Bytes(preinst.into_bytes(), 0o755),
                });
                control_entries.push(Entry {
                    name: "./postinst".into(),
                    body: Body::Bytes(b"#!/bin/sh\nset -e\nldconfig\n".to_vec(), 0o755),
                });
            }
            Kind::Libs => {
                control_entries.push(Entry {
                    name: "./postinst".into(),
                    body: Body::Bytes(b"#!/bin/sh\nset -e\nldconfig\n".to_vec(), 0o755),
                });
                control_entries.push(Entry {
                    name: "./postrm".into(),
                    body: Body::Bytes(b"#!/bin/sh\nset -e\nldconfig\n".to_vec(), 0o755),
                });
            }
            _ => {}
        }
        control_entries.sort_by(|a, b| a.name.cmp(&b.name));
        let control_tar = gzip_parallel(&tar_bytes(&control_entries, contents.epoch)?);

        let deb = ar(
            &[
                ("debian-binary", b"2.0\n".as_slice()),
                ("control.tar.gz", &control_tar),
                ("data.tar.gz", &data),
            ],
            contents.epoch,
        );
        let path = package.dist.join(format!("{name}_{version}_{arch}.deb"));
        write_atomically(&path, &deb)?;
        made.push(path);
    }
    Ok(made)
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
