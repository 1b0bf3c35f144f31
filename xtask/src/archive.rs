//! Unpacking source tarballs, treating every entry as hostile.
//!
//! An archive is unpacked into a fresh temporary directory beside its
//! destination and renamed into place only when every entry was accepted, so a
//! refused archive leaves nothing behind. File times are kept: the bdr plugin's
//! Makefile reruns autoreconf when `configure` looks older than `configure.in`.

use std::{
    fs::{self, File},
    io::{self, Read},
    os::unix::fs::PermissionsExt,
    path::{Component, Path, PathBuf},
};

use anyhow::{bail, Context};
use filetime::FileTime;
use tar::EntryType;

use crate::recipe::ArchiveKind;

/// A reader that decompresses `kind`.
pub fn decompress(kind: ArchiveKind, file: File) -> Box<dyn Read> {
    let reader = io::BufReader::with_capacity(1 << 16, file);
    match kind {
        ArchiveKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        ArchiveKind::TarBz2 => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
        ArchiveKind::TarXz => Box::new(xz2::read::XzDecoder::new_multi_decoder(reader)),
    }
}

/// Unpack `archive` into `dest`, dropping the single top-level directory all
/// entries share. `dest` is replaced only if the whole archive is accepted.
pub fn unpack(archive: &Path, kind: ArchiveKind, dest: &Path) -> anyhow::Result<()> {
    let parent = dest
        .parent()
        .context("destination has no parent directory")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = dest
        .file_name()
        .context("destination has no name")?
        .to_string_lossy()
        .into_owned();
    let temporary = parent.join(format!(".{name}.unpacking-{}", std::process::id()));
    if temporary.exists() {
        fs::remove_dir_all(&temporary)?;
    }
    fs::create_dir(&temporary).with_context(|| format!("cannot create {}", temporary.display()))?;

    let result = File::open(archive)
        .with_context(|| format!("cannot open {}", archive.display()))
        .and_then(|file| unpack_entries(decompress(kind, file), &temporary))
        .with_context(|| format!("refused to unpack {}", archive.display()));
    let newest = match result {
        Ok(newest) => newest,
        Err(error) => {
            let _ = fs::remove_dir_all(&temporary);
            return Err(error);
        }
    };
    if dest.exists() {
        fs::remove_dir_all(dest)
            .with_context(|| format!("cannot remove the old {}", dest.display()))?;
    }
    fs::rename(&temporary, dest)
        .with_context(|| format!("cannot move {} to {}", temporary.display(), dest.display()))?;
    crate::fetch::write_atomically(&epoch_path(dest), format!("{newest}\n").as_bytes())
}

/// Beside an unpacked tree: the newest file time its archive carried, the
/// default SOURCE_DATE_EPOCH of packages made from it.
pub fn epoch_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".source-date-epoch");
    dest.with_file_name(name)
}

/// Unpack every entry under `root`; returns the newest entry time.
fn unpack_entries(reader: impl Read, root: &Path) -> anyhow::Result<u64> {
    let mut archive = tar::Archive::new(reader);
    let mut newest = 0u64;
    let mut top_level: Option<String> = None;
    let mut directories: Vec<(PathBuf, FileTime)> = Vec::new();

    for entry in archive.entries().context("cannot read the archive")? {
        let mut entry = entry.context("cannot read the archive")?;
        let header = entry.header();
        let kind = header.entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let raw_path = entry
            .path()
            .context("entry with an unreadable name")?
            .into_owned();
        let shown = raw_path.display().to_string();
        let relative = strip_top_level(&raw_path, &mut top_level)
            .with_context(|| format!("entry `{shown}`"))?;
        let Some(relative) = relative else { continue };
        let target = root.join(&relative);
        refuse_symlinked_ancestors(root, &relative).with_context(|| format!("entry `{shown}`"))?;
        if fs::symlink_metadata(&target).is_ok_and(|meta| meta.file_type().is_symlink()) {
            bail!("entry `{shown}`: writes through a symlink");
        }
        let mode = header.mode().unwrap_or(0o644) & 0o777; // no setuid, setgid or sticky bits
        let seconds = header.mtime().unwrap_or(0);
        newest = newest.max(seconds);
        let mtime = FileTime::from_unix_time(seconds as i64, 0);

        match kind {
            EntryType::Directory => {
                fs::create_dir_all(&target)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))?;
                directories.push((target, mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                create_parent(&target)?;
                let mut file = File::create(&target)
                    .with_context(|| format!("cannot create {}", target.display()))?;
                io::copy(&mut entry, &mut file)
                    .with_context(|| format!("entry `{shown}`: truncated archive"))?;
                drop(file);
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
                filetime::set_file_mtime(&target, mtime)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()?
                    .context("symlink without a target")?
                    .into_owned();
                if !stays_inside(&relative, &link, true) {
                    bail!(
                        "entry `{shown}`: symlink to `{}` points outside the tree",
                        link.display()
                    );
                }
                create_parent(&target)?;
                std::os::unix::fs::symlink(&link, &target)?;
                filetime::set_symlink_file_times(&target, mtime, mtime)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name()?
                    .context("hardlink without a target")?
                    .into_owned();
                let source = strip_top_level(&link, &mut top_level)
                    .ok()
                    .flatten()
                    .filter(|source| stays_inside(Path::new(""), source, false))
                    .with_context(|| {
                        format!(
                            "entry `{shown}`: hardlink to `{}` points outside the tree",
                            link.display()
                        )
                    })?;
                refuse_symlinked_ancestors(root, &source)
                    .with_context(|| format!("entry `{shown}`"))?;
                let source = root.join(source);
                if !fs::symlink_metadata(&source).is_ok_and(|meta| meta.is_file()) {
                    bail!(
                        "entry `{shown}`: hardlink to `{}`, which is not a file of this archive",
                        link.display()
                    );
                }
                create_parent(&target)?;
                fs::hard_link(&source, &target)?;
            }
            other => bail!(
                "entry `{shown}`: refused entry type {other:?} (only files, directories and links)"
            ),
        }
    }
    if top_level.is_none() {
        bail!("the archive is empty");
    }
    // Directory times last: creating their files changed them.
    for (directory, mtime) in directories.iter().rev() {
        filetime::set_file_mtime(directory, *mtime)?;
    }
    Ok(newest)
}

/// The entry's path below the single top-level directory; `None` for that
/// directory itself. Absolute paths, `..` and a second top level are refused.
fn strip_top_level(path: &Path, top_level: &mut Option<String>) -> anyhow::Result<Option<PathBuf>> {
    let mut components = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => components.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => bail!("path has a `..` component"),
            Component::RootDir | Component::Prefix(_) => bail!("path is absolute"),
        }
    }
    let Some((first, rest)) = components.split_first() else {
        bail!("empty path")
    };
    match top_level {
        Some(known) if known != first => {
            bail!("outside the archive's top-level directory `{known}/`")
        }
        Some(_) => {}
        None => *top_level = Some(first.clone()),
    }
    Ok((!rest.is_empty()).then(|| rest.iter().collect()))
}

/// Whether `link`, read relative to the directory holding `entry` (for a
/// symlink) or to the root (for a hardlink), stays inside the tree.
fn stays_inside(entry: &Path, link: &Path, relative_to_parent: bool) -> bool {
    let mut depth: Vec<&std::ffi::OsStr> = Vec::new();
    if relative_to_parent {
        let parent = entry.parent().unwrap_or(Path::new(""));
        depth.extend(parent.components().filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        }));
    }
    for component in link.components() {
        match component {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn refuse_symlinked_ancestors(root: &Path, relative: &Path) -> anyhow::Result<()> {
    let mut path = root.to_path_buf();
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        if components.peek().is_none() {
            break;
        }
        path.push(component);
        if fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink()) {
            bail!(
                "writes through the symlink `{}`",
                path.strip_prefix(root).unwrap_or(&path).display()
            );
        }
    }
    Ok(())
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent),
        None => Ok(()),
    }
}

/// The commit id that `git archive` wrote into the pax global header
/// (`comment=<id>`), if the archive starts with one.
pub fn pax_commit(archive: &Path, kind: ArchiveKind) -> anyhow::Result<Option<String>> {
    let file = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let mut reader = decompress(kind, file);
    let mut header = [0u8; 512];
    if reader.read_exact(&mut header).is_err() || header[156] != b'g' {
        return Ok(None);
    }
    let size_field = String::from_utf8_lossy(&header[124..136]);
    let size = usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
        .unwrap_or(0);
    if size == 0 || size > 1 << 20 {
        return Ok(None);
    }
    let mut records = vec![0u8; size];
    reader
        .read_exact(&mut records)
        .context("truncated pax header")?;
    let records = String::from_utf8_lossy(&records);
    // Records are `<length> <key>=<value>\n`.
    Ok(records.lines().find_map(|record| {
        let (_, pair) = record.split_once(' ')?;
        pair.strip_prefix("comment=").map(str::to_owned)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_are_resolved_against_the_entry_directory() {
        assert!(stays_inside(Path::new("a/b/link"), Path::new("../c"), true));
        assert!(stays_inside(Path::new("a/link"), Path::new("../c"), true));
        assert!(!stays_inside(Path::new("link"), Path::new("../c"), true));
        assert!(!stays_inside(
            Path::new("a/link"),
            Path::new("../../c"),
            true
        ));
        assert!(!stays_inside(
            Path::new("a/link"),
            Path::new("/etc/passwd"),
            true
        ));
        assert!(stays_inside(Path::new(""), Path::new("a/file"), false));
    }

    #[test]
    fn top_level_is_stripped_and_a_second_one_refused() {
        let mut top = None;
        assert_eq!(
            strip_top_level(Path::new("pkg-1/"), &mut top).unwrap(),
            None
        );
        assert_eq!(
            strip_top_level(Path::new("pkg-1/src/a.c"), &mut top).unwrap(),
            Some(PathBuf::from("src/a.c"))
        );
        assert!(strip_top_level(Path::new("other/a.c"), &mut top).is_err());
        assert!(strip_top_level(Path::new("/etc/passwd"), &mut top).is_err());
        assert!(strip_top_level(Path::new("pkg-1/../x"), &mut top).is_err());
    }
}
