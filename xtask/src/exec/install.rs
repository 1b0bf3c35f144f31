//! The install: the one step that escalates, and everything that makes it
//! safe to.
//!
//! The builder owns the stage. Copying it with its owners (`cp -p`) would hand
//! them the installed tree, and with it every program root later runs from
//! there. So the tool (unprivileged) checks that the prefix, its parents and
//! every directory the install writes into are root's alone, and makes an
//! archive of the stage whose entries say root and the platform's group, with
//! modes clamped to 0755/0644 by the stage's executable bit and no setuid.
//! Root then makes the prefix (`mkdir -p -m 0755`, which leaves an existing
//! one alone), the prefix is checked again, and root extracts the archive
//! into it (`tar -x --no-overwrite-dir -C PREFIX`), read from a pipe: the
//! bytes checked are the bytes extracted, with no file in between for anyone
//! to swap.

use std::{
    fs, io,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Component, Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context};
use tar::{EntryType, Header};

use crate::{
    files::write_atomically,
    layout::Layout,
    plan::{Install, StepId},
    process::{self, Command},
    sources::archive::clamped_file_mode,
};

/// Check, make the archive, and have root make the prefix and extract it.
pub fn run(install: &Install, layout: &Layout, set: &str) -> anyhow::Result<()> {
    let prefix = Path::new(&install.prefix);
    let entries = walk(&install.from)?;
    let shapes: Vec<(&Path, bool)> = entries
        .iter()
        .map(|(relative, path)| {
            let is_dir = fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir());
            (relative.as_path(), is_dir)
        })
        .collect();
    check_prefix(prefix, &shapes)?;
    let archive = archive(install, &entries)?;
    write_atomically(&install.archive, &archive)?;
    eprintln!(
        "{:>12} {} into {} (owner root:{}, {} entries)",
        "Installing",
        install.from.display(),
        install.prefix,
        install.group,
        entries.len()
    );
    let log_path = layout.log(set, StepId::install());
    if let Some(dir) = log_path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut log = fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let [mkdir, extract] = install.command_lines();
    escalated(&mkdir, None, &mut log, &log_path)?;
    // Made by root now, or there before: checked again before anything lands in it.
    check_prefix(prefix, &shapes)?;
    let started = Instant::now();
    escalated(&extract, Some(archive), &mut log, &log_path)?;
    eprintln!(
        "{:>12} install into {} in {:.1}s",
        "Finished",
        install.prefix,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Run one escalated command line, its output in the install log.
fn escalated(
    line: &[String],
    stdin: Option<Vec<u8>>,
    log: &mut fs::File,
    log_path: &Path,
) -> anyhow::Result<()> {
    use std::io::Write;
    let (program, args) = line.split_first().context("empty command")?;
    // sudo may ask for a password on the terminal; it relays signals.
    let mut command = Command::new(program).args(args).in_callers_group();
    if let Some(bytes) = stdin {
        command = command.stdin_bytes(bytes);
    }
    writeln!(log, "$ {command}")?;
    let status = command.run_logged(log, |_| {})?;
    if !status.success() {
        bail!(
            "`{command}` failed: {}\n  full log: {}",
            process::describe_status(status),
            log_path.display()
        );
    }
    Ok(())
}

/// Refuse a prefix that someone other than root could change under root's
/// feet. No symlink on the way: the prefix and its existing parents must be
/// real directories, owned by root and writable by no one else (no group or
/// world write, no ACL); a sticky, world-writable parent (`/tmp`) is allowed
/// when the entry below it already exists and is root's, since then nobody
/// else may rename it. Inside an existing prefix, everything must be root's
/// alone too (a builder-owned `lib/plugins` from an older install would be
/// loaded by root's servers), and nothing may have another shape than what
/// the install puts there. What cannot be looked at is refused, not assumed
/// absent. `shapes` lists what the install writes, each with whether it is a
/// directory.
pub fn check_prefix(prefix: &Path, shapes: &[(&Path, bool)]) -> anyhow::Result<()> {
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
    // From the prefix up to `/`, each path that exists.
    let mut child_is_roots: Option<bool> = None;
    for path in prefix.ancestors() {
        let Some(meta) = lstat(path)? else {
            child_is_roots = None;
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(path).unwrap_or_default();
            return Err(refuse(
                path,
                format!(
                    "is a symlink (to {}): name the real directory",
                    target.display()
                ),
            ));
        }
        if !meta.is_dir() {
            return Err(refuse(path, "exists and is not a directory".into()));
        }
        roots_alone(path, &meta, child_is_roots == Some(true)).map_err(|why| refuse(path, why))?;
        child_is_roots = Some(true);
    }
    if lstat(prefix)?.is_none() {
        return Ok(());
    }
    // Inside the prefix: everything there is root's alone.
    let mut pending = vec![prefix.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let listing =
            fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in listing {
            let path = entry?.path();
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if meta.is_dir() {
                pending.push(path.clone());
            }
            roots_alone(&path, &meta, false).map_err(|why| refuse(&path, why))?;
        }
    }
    // And what is there has the shape the install gives it.
    for (relative, is_dir) in shapes {
        let path = prefix.join(relative);
        let Some(meta) = lstat(&path)? else { continue };
        if *is_dir && !meta.is_dir() {
            return Err(refuse(
                &path,
                "is not a directory where the install has one".into(),
            ));
        }
        if !*is_dir && meta.is_dir() {
            return Err(refuse(
                &path,
                "is a directory where the install has a file".into(),
            ));
        }
    }
    Ok(())
}

/// Whether a path is root's alone: owned by root, writable by no group and
/// no one else, with no ACL; a sticky world-writable directory counts when
/// the entry below it is known to be root's.
fn roots_alone(path: &Path, meta: &fs::Metadata, child_is_roots: bool) -> Result<(), String> {
    if meta.uid() != 0 {
        return Err(format!("is owned by uid {}", meta.uid()));
    }
    if meta.file_type().is_symlink() {
        return Ok(()); // a link's own mode means nothing; root's link, root's choice
    }
    let mode = meta.permissions().mode();
    let sticky_over_roots = meta.is_dir() && mode & 0o1000 != 0 && child_is_roots;
    if mode & 0o002 != 0 && !sticky_over_roots {
        return Err(format!(
            "is writable by everyone (mode {:o})",
            mode & 0o7777
        ));
    }
    if mode & 0o020 != 0 && !sticky_over_roots {
        return Err(format!(
            "is writable by its group, gid {} (mode {:o})",
            meta.gid(),
            mode & 0o7777
        ));
    }
    if has_acl(path) {
        return Err("has an access ACL that may let others write".into());
    }
    Ok(())
}

/// Whether a path carries a POSIX access ACL (Linux); other systems' ACLs
/// are not looked at.
fn has_acl(path: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return true;
        };
        // SAFETY: both strings are NUL-terminated; a null buffer of size 0 asks for the size.
        let size = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                c"system.posix_acl_access".as_ptr(),
                std::ptr::null_mut(),
                0,
            )
        };
        size > 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        false
    }
}

/// `symlink_metadata`, with "not there" as `None` and any other failure
/// (a parent this user cannot search, say) as an error.
fn lstat(path: &Path) -> anyhow::Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| {
            format!(
                "cannot check {} before installing (run the install as root, or make it readable)",
                path.display()
            )
        }),
    }
}

/// The archive root extracts into the prefix: the stage's tree below it,
/// sorted, owned by root and the platform's group; no entry for the prefix
/// itself, so an existing one keeps its owner, mode and time.
pub fn archive(install: &Install, entries: &[(PathBuf, PathBuf)]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for (relative, path) in entries {
        let meta = fs::symlink_metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mtime = meta.mtime().max(0) as u64;
        if meta.file_type().is_symlink() {
            let mut header = header(install, EntryType::Symlink, 0o777, 0, mtime);
            builder.append_link(&mut header, relative, fs::read_link(path)?)?;
        } else if meta.is_dir() {
            let mut header = header(install, EntryType::Directory, 0o755, 0, mtime);
            builder.append_data(&mut header, relative, io::empty())?;
        } else if meta.is_file() {
            let mode = clamped_file_mode(meta.permissions().mode());
            let mut header = header(install, EntryType::Regular, mode, meta.len(), mtime);
            let file =
                fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            builder.append_data(&mut header, relative, file)?;
        } else {
            bail!(
                "{} is neither a file, a directory nor a symlink",
                path.display()
            );
        }
    }
    Ok(builder.into_inner()?)
}

fn header(install: &Install, kind: EntryType, mode: u32, size: u64, mtime: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(install.gid as u64);
    // Names for readers; the extracting tar is told to use the numbers.
    let _ = header.set_username("root");
    let _ = header.set_groupname(&install.group);
    header
}

/// Every path below `root`, relative to it, sorted (parents first).
fn walk(root: &Path) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    if !root.is_dir() {
        bail!(
            "no staged prefix at {}: run `cargo xtask build` first",
            root.display()
        );
    }
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
        assert!(check_prefix(Path::new("usr/local"), &[]).is_err());
        assert!(check_prefix(Path::new("/usr/../tmp/x"), &[]).is_err());
    }
}
