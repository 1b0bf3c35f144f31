//! Debian packages, one per subpackage, written directly: a .deb is an `ar`
//! archive of `debian-binary`, `control.tar.gz` and `data.tar.gz`, and writing
//! it here keeps it reproducible with no dpkg-deb on the build host.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use super::{
    elf, extra_files, promise,
    tarball::{gzip_parallel, tar_bytes, Body, Entry},
    Contents, ExtraFile, Kind, Subpackage,
};
use crate::{
    files::write_atomically,
    plan::{Package, ServiceAccount},
    process::Command,
};

pub(super) fn debian_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" => "i386",
        other => other,
    }
}

/// `<version>-<release>`, as Debian spells a package version.
pub(super) fn debian_version(contents: &Contents<'_>) -> String {
    format!("{}-{}", contents.package.version, contents.package.release)
}

/// What the server's postinst needs besides libraries (useradd): named in
/// its control file, not computed from ELF files.
pub(super) const SERVER_DEPENDS: &[&str] = &["passwd"];

pub fn make(contents: &Contents<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let dist = &contents.package.dist;
    let result = write_all(contents).and_then(|made| {
        check_promises(&made)
            .with_context(|| format!("the .debs written in {} are not kept", dist.display()))?;
        Ok(made)
    });
    if let Err(error) = &result {
        // A failed step leaves no .deb in dist/: none broken, and no set
        // of which some are new and some are old.
        if let Err(removing) = remove_debs(dist) {
            return Err(removing.context(format!("{error:#}")));
        }
    }
    result
}

pub(super) fn remove_debs(dist: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dist).with_context(|| format!("cannot read {}", dist.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "deb") {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// What the .debs promise (stripped ELF files with build-ids, their symbols
/// in `-dbgsym`, library `Depends`), read back from the files written.
pub(super) fn check_promises(made: &[PathBuf]) -> anyhow::Result<()> {
    let written = made
        .iter()
        .map(|path| promise::read_deb(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let held = promise::check(
        &written,
        promise::Format::Deb {
            named: SERVER_DEPENDS,
        },
    )
    .map_err(|broken| anyhow::anyhow!("they break what they promise:\n{broken}"))?;
    eprintln!("{:>12} the .debs: {held}", "Checked");
    Ok(())
}

/// The extra files of the .debs: the RPMs' but the dynamic linker's
/// configuration, which Debian packages do not touch (the programs find
/// the libraries by their RUNPATH).
pub(super) fn extras(contents: &Contents<'_>) -> Vec<ExtraFile> {
    extra_files(contents)
        .into_iter()
        .filter(|extra| !extra.path.starts_with("/etc/ld.so.conf.d/"))
        .collect()
}

fn write_all(contents: &Contents<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let extras = extras(contents);
    let shlibs = local_shlibs(contents)?;
    let mut made = Vec::new();
    for subpackage in &contents.subpackages {
        let name = contents.name_of(&subpackage.kind);
        let mine: Vec<&ExtraFile> = extras
            .iter()
            .filter(|extra| extra.kind == subpackage.kind)
            .collect();
        let payload = payload(contents, subpackage, &mine)?;
        let depends = shlib_depends(contents, &payload.elf, &shlibs)?;
        let (data, installed_bytes) = data_archive(&payload.files, contents.epoch)?;
        let control = control_text(contents, &subpackage.kind, installed_bytes, &depends);
        let scripts = maintainer_scripts(contents.package, &subpackage.kind);
        let control = control_archive(contents, control, &mine, scripts)?;
        made.push(write_deb(contents, &name, &control, &data)?);
        if !payload.debug.is_empty() {
            // Its documentation is the package's, as debhelper links it.
            let mut files = payload.debug;
            files.push((
                format!("usr/share/doc/{name}-dbgsym"),
                Body::Symlink(name.clone()),
            ));
            let (data, installed_bytes) = data_archive(&files, contents.epoch)?;
            let control = dbgsym_control_text(contents, &name, installed_bytes, &payload.build_ids);
            let control = control_archive(contents, control, &[], Vec::new())?;
            made.push(write_deb(
                contents,
                &format!("{name}-dbgsym"),
                &control,
                &data,
            )?);
        }
    }
    Ok(made)
}

/// `<name>_<version>_<arch>.deb` in `dist`, as an `ar` archive.
fn write_deb(
    contents: &Contents<'_>,
    name: &str,
    control: &[u8],
    data: &[u8],
) -> anyhow::Result<PathBuf> {
    let deb = ar(
        &[
            ("debian-binary", b"2.0\n".as_slice()),
            ("control.tar.gz", control),
            ("data.tar.gz", data),
        ],
        contents.epoch,
    );
    let path = contents.package.dist.join(format!(
        "{name}_{}_{}.deb",
        debian_version(contents),
        debian_arch(&contents.arch)
    ));
    write_atomically(&path, &deb)?;
    Ok(path)
}

/// What one subpackage's .deb holds, and its -dbgsym's.
struct Payload {
    /// Archive paths (relative, no `./`) and their bodies.
    files: Vec<(String, Body)>,
    /// The stripped ELF files, for `dpkg-shlibdeps`.
    elf: Vec<PathBuf>,
    /// The debug files, at `usr/lib/debug/.build-id/...`.
    debug: Vec<(String, Body)>,
    build_ids: Vec<String>,
}

/// The subpackage's files (ELF files stripped, shared objects not
/// executable), its extra files, its copyright and changelog.
fn payload(
    contents: &Contents<'_>,
    subpackage: &Subpackage,
    extras: &[&ExtraFile],
) -> anyhow::Result<Payload> {
    let stage = &contents.package.stage;
    let mut payload = Payload {
        files: Vec::new(),
        elf: Vec::new(),
        debug: Vec::new(),
        build_ids: Vec::new(),
    };
    for file in &subpackage.files {
        let on_disk = stage.join(file);
        if !elf::is_elf(&on_disk) {
            payload.files.push((file.clone(), Body::Disk(on_disk)));
            continue;
        }
        let split = elf::split(
            &on_disk,
            file,
            &contents.work,
            contents.package.root.as_ref(),
        )?;
        let mode = if elf::is_shared_object(file) {
            0o644
        } else {
            0o755
        };
        fs::set_permissions(&split.stripped, fs::Permissions::from_mode(mode))?;
        fs::set_permissions(&split.debug, fs::Permissions::from_mode(0o644))?;
        payload
            .files
            .push((file.clone(), Body::Disk(split.stripped.clone())));
        payload.elf.push(split.stripped);
        payload
            .debug
            .push((split.debug_path, Body::Disk(split.debug)));
        payload.build_ids.push(split.build_id);
    }
    for extra in extras {
        payload.files.push((
            extra.path.trim_start_matches('/').to_owned(),
            Body::Bytes(extra.text.clone().into_bytes(), extra.mode),
        ));
    }
    let name = contents.name_of(&subpackage.kind);
    let doc = format!("usr/share/doc/{name}");
    payload.files.push((
        format!("{doc}/copyright"),
        Body::Bytes(contents.copyright.clone().into_bytes(), 0o644),
    ));
    payload.files.push((
        format!("{doc}/changelog.Debian.gz"),
        Body::Bytes(gzip_best(changelog_text(contents, &name).as_bytes()), 0o644),
    ));
    payload.build_ids.sort();
    Ok(payload)
}

/// The one changelog entry: this build of the upstream version.
fn changelog_text(contents: &Contents<'_>, name: &str) -> String {
    format!(
        "{name} ({}) unstable; urgency=medium\n\n  * {}\n\n -- {}  {}\n",
        debian_version(contents),
        super::changelog_entry(contents),
        contents.package.maintainer,
        super::dates(contents.epoch).0
    )
}

/// gzip at its best compression with no name and no time, as `gzip -9n`.
fn gzip_best(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// `shlibs.local` for `dpkg-shlibdeps`: each soname of the -libs package is
/// provided by that package at exactly this version, not by whatever package
/// of the build host ships a library of the same name.
fn local_shlibs(contents: &Contents<'_>) -> anyhow::Result<PathBuf> {
    let mut lines = Vec::new();
    for subpackage in contents.subpackages.iter().filter(|s| s.kind == Kind::Libs) {
        for file in &subpackage.files {
            let on_disk = contents.package.stage.join(file);
            if !elf::is_elf(&on_disk) {
                continue;
            }
            let Some(soname) = elf::soname(&on_disk)? else {
                continue;
            };
            if let Some((library, version)) = soname.split_once(".so.") {
                lines.push(format!(
                    "{library} {version} {} (= {})",
                    contents.name_of(&Kind::Libs),
                    debian_version(contents)
                ));
            }
        }
    }
    lines.sort();
    lines.dedup();
    let debian = contents.work.join("debian");
    fs::create_dir_all(&debian)?;
    // dpkg-shlibdeps reads the source package's control file.
    fs::write(
        debian.join("control"),
        format!(
            "Source: {0}\n\nPackage: {0}\nArchitecture: any\n",
            contents.package.name
        ),
    )?;
    let path = debian.join("shlibs.local");
    fs::write(&path, lines.join("\n") + "\n")?;
    Ok(path)
}

/// The packages the ELF files need, as `dpkg-shlibdeps` computes them from
/// their `NEEDED` entries: `libc6 (>= 2.34), libreadline8 (>= 6.0), ...`.
fn shlib_depends(
    contents: &Contents<'_>,
    elf: &[PathBuf],
    shlibs: &Path,
) -> anyhow::Result<Vec<String>> {
    if elf.is_empty() {
        return Ok(Vec::new());
    }
    // Where the -libs package's libraries are found: the stage.
    let library_dirs: BTreeSet<String> = contents
        .subpackages
        .iter()
        .filter(|s| s.kind == Kind::Libs)
        .flat_map(|s| &s.files)
        .filter_map(|file| Path::new(file).parent())
        .map(|dir| format!("-l{}", contents.package.stage.join(dir).display()))
        .collect();
    let output = Command::new("dpkg-shlibdeps")
        .arg("-O")
        .arg(format!("-L{}", shlibs.display()))
        .args(library_dirs)
        .args(elf)
        .cwd(&contents.work)
        .in_root_if(contents.package.root.as_ref())
        .checked_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("shlibs:Depends="))
        .unwrap_or_default();
    Ok(line
        .split(", ")
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A `data.tar.gz` of `files` and their directories; with the bytes
/// installed, for `Installed-Size`.
fn data_archive(files: &[(String, Body)], epoch: u64) -> anyhow::Result<(Vec<u8>, u64)> {
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for (file, _) in files {
        let mut parent = Path::new(file).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(format!("./{}", dir.display()));
            parent = dir.parent();
        }
    }
    let mut installed_bytes = 0u64;
    let mut entries = vec![Entry {
        name: ".".into(),
        body: Body::Directory,
    }];
    entries.extend(dirs.into_iter().map(|name| Entry {
        name,
        body: Body::Directory,
    }));
    for (file, body) in files {
        installed_bytes += match body {
            Body::Disk(path) => fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(0),
            Body::Bytes(bytes, _) => bytes.len() as u64,
            Body::Directory | Body::Symlink(_) => 0,
        };
        entries.push(Entry {
            name: format!("./{file}"),
            body: body.clone(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((gzip_parallel(&tar_bytes(&entries, epoch)?), installed_bytes))
}

/// `control.tar.gz`: the control file, the conffiles, the maintainer scripts.
fn control_archive(
    contents: &Contents<'_>,
    control: String,
    extras: &[&ExtraFile],
    scripts: Vec<(&str, String)>,
) -> anyhow::Result<Vec<u8>> {
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
    for (name, text) in scripts {
        entries.push(Entry {
            name: format!("./{name}"),
            body: Body::Bytes(text.into_bytes(), 0o755),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(gzip_parallel(&tar_bytes(&entries, contents.epoch)?))
}

/// The control file of a -dbgsym package, as debhelper writes it.
fn dbgsym_control_text(
    contents: &Contents<'_>,
    of: &str,
    installed_bytes: u64,
    build_ids: &[String],
) -> String {
    format!(
        "Package: {of}-dbgsym\nVersion: {version}\nArchitecture: {}\nMaintainer: {}\n\
         Installed-Size: {}\nDepends: {of} (= {version})\nSection: debug\nPriority: optional\n\
         Auto-Built-Package: debug-symbols\nBuild-Ids: {}\nDescription: debug symbols for {of}\n",
        debian_arch(&contents.arch),
        contents.package.maintainer,
        installed_bytes.div_ceil(1024),
        build_ids.join(" "),
        version = debian_version(contents),
    )
}

/// The control file of one subpackage.
pub fn control_text(
    contents: &Contents<'_>,
    kind: &Kind,
    installed_bytes: u64,
    shlib_depends: &[String],
) -> String {
    let package = contents.package;
    let version = debian_version(contents);
    let mut depends = sibling_depends(contents, kind, &version);
    let own = format!("{} ", contents.name_of(kind));
    for depend in shlib_depends {
        if !depends.contains(depend) && !depend.starts_with(&own) {
            depends.push(depend.clone());
        }
    }
    let mut control = format!(
        "Package: {}\nVersion: {version}\nArchitecture: {}\nMaintainer: {}\n\
         Installed-Size: {}\nSection: database\nPriority: optional\nHomepage: {}\n",
        contents.name_of(kind),
        debian_arch(&contents.arch),
        package.maintainer,
        installed_bytes.div_ceil(1024),
        package.url
    );
    if !depends.is_empty() {
        let _ = writeln!(control, "Depends: {}", depends.join(", "));
    }
    control.push_str(&provides_and_description(contents, kind, &version));
    control
}

/// What `kind` needs besides libraries: its sibling packages at exactly
/// `version` (`${binary:Version}` in a source package), and for the
/// server what its postinst runs.
pub(super) fn sibling_depends(contents: &Contents<'_>, kind: &Kind, version: &str) -> Vec<String> {
    let kinds: Vec<&Kind> = contents.subpackages.iter().map(|s| &s.kind).collect();
    let mut depends: Vec<String> = kind
        .requires()
        .into_iter()
        .filter(|required| kinds.contains(&required))
        .map(|required| format!("{} (= {version})", contents.name_of(&required)))
        .collect();
    if *kind == Kind::Server {
        depends.extend(SERVER_DEPENDS.iter().map(|name| name.to_string()));
    }
    depends
}

/// The `Provides` (the PGDG name, at `version`) and `Description` of one package.
pub(super) fn provides_and_description(
    contents: &Contents<'_>,
    kind: &Kind,
    version: &str,
) -> String {
    let mut text = String::new();
    if let Some(pgdg) = contents.pgdg_name_of(kind) {
        let _ = writeln!(text, "Provides: {pgdg} (= {version})");
    }
    let _ = writeln!(
        text,
        "Description: {}\n {}.",
        contents.package.summary,
        kind.description()
    );
    text
}

/// The maintainer scripts of one subpackage, by name: the server's creates
/// its user once the package is unpacked (no file is the user's, and
/// `passwd` is a dependency, not Essential) and makes the socket directory
/// now rather than at the next boot, as `dh_installtmpfiles` does. No
/// ldconfig: the libraries live in the prefix, which the dynamic linker's
/// search path does not name.
pub fn maintainer_scripts(package: &Package, kind: &Kind) -> Vec<(&'static str, String)> {
    let ServiceAccount { user, home, .. } = &package.service;
    let name = &package.name;
    match kind {
        Kind::Server => vec![(
            "postinst",
            format!(
                "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n\
                 \tgetent group {user} >/dev/null || groupadd --system {user}\n\
                 \tgetent passwd {user} >/dev/null || useradd --system --gid {user} --home-dir {home} --no-create-home --shell /bin/sh {user}\n\
                 \tif command -v systemd-tmpfiles >/dev/null; then\n\
                 \t\tsystemd-tmpfiles --create /usr/lib/tmpfiles.d/{name}.conf >/dev/null || true\n\
                 \tfi\nfi\nexit 0\n"
            ),
        )],
        _ => Vec::new(),
    }
}

/// A common-format `ar` archive, as dpkg reads it.
pub(super) fn ar(members: &[(&str, &[u8])], epoch: u64) -> Vec<u8> {
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
                .map(|kind| {
                    control_text(
                        contents,
                        kind,
                        123_456,
                        &[
                            "libc6 (>= 2.34)".to_owned(),
                            "zlib1g (>= 1:1.1.4)".to_owned(),
                        ],
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            expect_test::expect_file!["../../../tests/golden/deb-control"].assert_eq(&text);
        });
    }
}
