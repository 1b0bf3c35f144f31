//! What happens before the one escalated step: checking that the prefix is
//! root's alone, and writing the archive that root extracts into it.
//!
//! The builder owns the stage. Copying it with its owners (`cp -p`) would hand
//! them the installed tree, and with it every program root later runs from
//! there. So root extracts an archive whose entries say root and the
//! platform's group, with modes clamped to 0755/0644 by the stage's
//! executable bit, no setuid, and a directory entry for every parent of the
//! prefix, which the extracting tar applies only to directories it creates.

use std::{
    fs::{self, File},
    io::{self, BufWriter},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Component, Path, PathBuf},
};

use anyhow::{bail, Context};
use tar::{EntryType, Header};

use crate::{plan::PrepareInstall, sources::archive::clamped_file_mode};

/// Check the prefix, then write the archive.
pub fn prepare(install: &PrepareInstall) -> anyhow::Result<()> {
    check_prefix(Path::new(&install.prefix))?;
    write_archive(install)
}

/// Refuse a prefix that is a symlink, or that someone other than root could
/// change under root's feet: the prefix and each existing parent must be
/// owned by root and writable by no other user. A sticky, world-writable
/// parent (`/tmp`) is allowed when the entry below it already exists and is
/// root's, since then nobody else may rename it.
pub fn check_prefix(prefix: &Path) -> anyhow::Result<()> {
    if !prefix.is_absolute()
        || prefix
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(crate::input::located::invalid(format!(
            "install prefix `{}` must be an absolute path without `.` or `..`",
            prefix.display()
        )));
    }
    let refuse = |path: &Path, why: String| -> anyhow::Error {
        anyhow::anyhow!(
            "refusing to install into {}: {} {why}; whoever can change it could replace what root installs",
            prefix.display(),
            path.display()
        )
    };
    if let Ok(meta) = fs::symlink_metadata(prefix) {
        if meta.file_type().is_symlink() {
            let target = fs::read_link(prefix).unwrap_or_default();
            return Err(refuse(
                prefix,
                format!(
                    "is a symlink (to {}): name the real directory",
                    target.display()
                ),
            ));
        }
        if !meta.is_dir() {
            bail!(
                "refusing to install into {}: it exists and is not a directory",
                prefix.display()
            );
        }
    }
    // From the prefix up to `/`, each path that exists.
    let mut child_is_roots: Option<bool> = None;
    for path in prefix.ancestors() {
        let Ok(link_meta) = fs::symlink_metadata(path) else {
            child_is_roots = None;
            continue;
        };
        if link_meta.file_type().is_symlink() && link_meta.uid() != 0 {
            return Err(refuse(
                path,
                format!("is a symlink owned by uid {}", link_meta.uid()),
            ));
        }
        let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mode = meta.permissions().mode();
        if meta.uid() != 0 {
            return Err(refuse(path, format!("is owned by uid {}", meta.uid())));
        }
        let group_writable = mode & 0o020 != 0 && meta.gid() != 0;
        let world_writable = mode & 0o002 != 0;
        let sticky = mode & 0o1000 != 0;
        if group_writable && !(sticky && child_is_roots == Some(true)) {
            return Err(refuse(
                path,
                format!(
                    "is writable by group {} (mode {:o})",
                    meta.gid(),
                    mode & 0o7777
                ),
            ));
        }
        if world_writable && !(sticky && child_is_roots == Some(true)) {
            return Err(refuse(
                path,
                format!("is writable by everyone (mode {:o})", mode & 0o7777),
            ));
        }
        child_is_roots = Some(true);
    }
    Ok(())
}

/// The archive root extracts at `/`: every parent of the prefix, then the
/// stage's tree below it, sorted, owned by root and the platform's group.
pub fn write_archive(install: &PrepareInstall) -> anyhow::Result<()> {
    if !install.from.is_dir() {
        bail!(
            "no staged prefix at {}: run `cargo xtask build` first",
            install.from.display()
        );
    }
    let parent = install
        .archive
        .parent()
        .context("archive path has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let temporary = install.archive.with_extension("tar.partial");
    let file = File::create(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    builder.follow_symlinks(false);
    let prefix = install.prefix.trim_start_matches('/').trim_end_matches('/');
    let mut name = PathBuf::new();
    for component in Path::new(prefix).components() {
        name.push(component);
        let mut header = header(install, EntryType::Directory, 0o755, 0);
        builder.append_data(&mut header, &name, io::empty())?;
    }
    for (relative, path) in walk(&install.from)? {
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let name = Path::new(prefix).join(&relative);
        let mtime = meta.mtime().max(0) as u64;
        if meta.file_type().is_symlink() {
            let mut header = header(install, EntryType::Symlink, 0o777, 0);
            header.set_mtime(mtime);
            builder.append_link(&mut header, &name, fs::read_link(&path)?)?;
        } else if meta.is_dir() {
            let mut header = header(install, EntryType::Directory, 0o755, 0);
            header.set_mtime(mtime);
            builder.append_data(&mut header, &name, io::empty())?;
        } else if meta.is_file() {
            let mode = clamped_file_mode(meta.permissions().mode());
            let mut header = header(install, EntryType::Regular, mode, meta.len());
            header.set_mtime(mtime);
            let file =
                File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
            builder.append_data(&mut header, &name, file)?;
        } else {
            bail!(
                "{} is neither a file, a directory nor a symlink",
                path.display()
            );
        }
    }
    let writer = builder.into_inner()?;
    writer
        .into_inner()
        .map_err(|error| error.into_error())?
        .sync_all()?;
    fs::rename(&temporary, &install.archive)
        .with_context(|| format!("cannot write {}", install.archive.display()))
}

fn header(install: &PrepareInstall, kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(install.gid as u64);
    // Names for readers; the extracting tar is told to use the numbers.
    let _ = header.set_username("root");
    let _ = header.set_groupname(&install.group);
    header
}

/// Every path below `root`, relative to it, sorted.
fn walk(root: &Path) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            if fs::symlink_metadata(&path)?.is_dir() {
                pending.push(path.clone());
            }
            let relative = path.strip_prefix(root).expect("below root").to_path_buf();
            found.push((relative, path));
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_or_climbing_prefix_is_refused() {
        assert!(check_prefix(Path::new("usr/local")).is_err());
        assert!(check_prefix(Path::new("/usr/../tmp/x")).is_err());
    }
}
