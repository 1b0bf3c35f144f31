//! Unpacking source tarballs, treating every entry as hostile.
//!
//! An archive is unpacked into a fresh temporary directory beside its
//! destination and renamed into place only when every entry was accepted, so a
//! refused archive leaves nothing behind. While the entries stream past, their
//! git tree id is recomputed ([`crate::sources::gittree`]) and checked against the
//! source's `tree` pin, and their size is counted against its limit (a gzip
//! bomb stops at the limit). File times are kept: the bdr plugin's Makefile
//! reruns autoreconf when `configure` looks older than `configure.in`. Modes
//! are clamped to 0755/0644 by the owner's executable bit, whatever the
//! archive says (`git archive` writes 0775/0664).

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    ffi::OsString,
    fmt,
    fs::{self, File},
    io::{self, Read, Write},
    os::unix::{
        ffi::OsStrExt,
        fs::{OpenOptionsExt, PermissionsExt},
    },
    path::{Component, Path, PathBuf},
};

use anyhow::{bail, Context};
use filetime::FileTime;
use tar::EntryType;

use crate::{
    files,
    input::recipe::ArchiveKind,
    interrupt,
    printable::printable,
    sources::gittree::{self, BlobHasher, BlobMode, ObjectId, TreeHasher},
};

/// Every tar header counts this much against the size limit, so that an
/// archive of millions of empty entries is bounded too.
const HEADER_BYTES: u64 = 512;
/// The raw tar stream may exceed what entries count by their padding and
/// the end-of-archive blocks.
const STREAM_SLACK: u64 = 1 << 20;
/// Symlinks followed while resolving one link, as the kernel's limit.
const MAX_LINK_HOPS: u32 = 40;

/// What an archive is held to.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The git tree its entries must recompute to.
    pub tree: Option<&'a str>,
    /// Most bytes its entries (headers and contents) may hold, uncompressed.
    pub max_bytes: u64,
}

/// What an accepted archive held.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The git tree id of its entries below the top directory.
    pub tree: String,
    /// The newest entry time: the default SOURCE_DATE_EPOCH of packages.
    pub newest: u64,
    /// Uncompressed bytes, headers included.
    pub bytes: u64,
}

/// An archive whose entries do not make the pinned tree.
#[derive(Debug)]
pub struct TreeMismatch {
    pub expected: String,
    pub actual: String,
}

impl fmt::Display for TreeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tree pin failed: expected git tree {}, the archive's entries make {}",
            self.expected, self.actual
        )
    }
}

impl std::error::Error for TreeMismatch {}

/// A reader that decompresses `kind`.
pub fn decompress(kind: ArchiveKind, file: File) -> Box<dyn Read> {
    let reader = io::BufReader::with_capacity(1 << 16, file);
    match kind {
        ArchiveKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        ArchiveKind::TarBz2 => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
        ArchiveKind::TarXz => Box::new(xz2::read::XzDecoder::new_multi_decoder(reader)),
    }
}

/// Read every entry without writing anything: the checks of [`unpack`]
/// (names, entry types, size limit, tree pin) on an archive not yet trusted.
pub fn inspect(archive: &Path, kind: ArchiveKind, expect: &Expect<'_>) -> anyhow::Result<Unpacked> {
    let file = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let walked = walk(decompress(kind, file), None, expect.max_bytes)?;
    check_tree(&walked, expect)?;
    Ok(walked)
}

/// Unpack `archive` into `dest`, dropping the single top-level directory all
/// entries share. `dest` is replaced only if the whole archive is accepted.
pub fn unpack(
    archive: &Path,
    kind: ArchiveKind,
    dest: &Path,
    expect: &Expect<'_>,
) -> anyhow::Result<Unpacked> {
    let file = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    unpack_reader(decompress(kind, file), dest, expect)
        .with_context(|| format!("refused to unpack {}", archive.display()))
}

/// [`unpack`] of a tar stream that is already uncompressed (another
/// process's output, say), with the same checks.
pub fn unpack_reader(
    reader: impl Read,
    dest: &Path,
    expect: &Expect<'_>,
) -> anyhow::Result<Unpacked> {
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
    if fs::symlink_metadata(&temporary).is_ok() {
        fs::remove_dir_all(&temporary)?;
    }
    fs::create_dir(&temporary).with_context(|| format!("cannot create {}", temporary.display()))?;
    fs::set_permissions(&temporary, fs::Permissions::from_mode(0o755))?;

    let result = walk(reader, Some(&temporary), expect.max_bytes)
        .and_then(|walked| check_tree(&walked, expect).map(|()| walked));
    let unpacked = match result {
        Ok(unpacked) => unpacked,
        Err(error) => {
            let _ = fs::remove_dir_all(&temporary);
            return Err(error);
        }
    };
    if fs::symlink_metadata(dest).is_ok() {
        fs::remove_dir_all(dest)
            .with_context(|| format!("cannot remove the old {}", dest.display()))?;
    }
    fs::rename(&temporary, dest)
        .with_context(|| format!("cannot move {} to {}", temporary.display(), dest.display()))?;
    crate::files::write_atomically(
        &epoch_path(dest),
        format!("{}\n", unpacked.newest).as_bytes(),
    )?;
    crate::files::write_atomically(&tree_path(dest), format!("{}\n", unpacked.tree).as_bytes())?;
    Ok(unpacked)
}

fn check_tree(walked: &Unpacked, expect: &Expect<'_>) -> anyhow::Result<()> {
    match expect.tree {
        Some(expected) if expected != walked.tree => Err(TreeMismatch {
            expected: expected.to_owned(),
            actual: walked.tree.clone(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// Beside an unpacked tree: the newest file time its archive carried, the
/// default SOURCE_DATE_EPOCH of packages made from it.
pub fn epoch_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".source-date-epoch");
    dest.with_file_name(name)
}

/// Beside an unpacked tree: the git tree id its entries made, pinned or not
/// (the SBOM names every source by it).
pub fn tree_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".tree");
    dest.with_file_name(name)
}

/// The permission bits written for a file: the owner's executable bit decides.
pub fn clamped_file_mode(mode: u32) -> u32 {
    if mode & 0o100 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Most bytes a metadata entry (a GNU long name or link name, a pax header)
/// may hold: the tar reader buffers these whole before any check sees them.
const METADATA_MAX: u64 = 64 << 10;

/// The raw tar stream on its way to the tar reader: it fails once the stream
/// passes the limit, and it follows the headers, to refuse a metadata entry
/// over [`METADATA_MAX`] before the tar reader has buffered it.
struct Guard<R> {
    inner: R,
    left: u64,
    max: u64,
    /// The header being read, and how much of it is in.
    header: [u8; 512],
    filled: usize,
    /// Bytes of the current entry's content (with padding) still to pass.
    content: u64,
    /// A pax header's records, collected to learn the next entry's size.
    pax: Option<Vec<u8>>,
    /// What a pax header said the next entry's size is.
    next_size: Option<u64>,
}

impl<R> Guard<R> {
    fn new(inner: R, max: u64) -> Guard<R> {
        Guard {
            inner,
            left: max.saturating_add(STREAM_SLACK),
            max,
            header: [0; 512],
            filled: 0,
            content: 0,
            pax: None,
            next_size: None,
        }
    }

    /// Follow `bytes` through the tar structure.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.content > 0 {
                let take = bytes
                    .len()
                    .min(self.content.min(usize::MAX as u64) as usize);
                if let Some(pax) = &mut self.pax {
                    pax.extend_from_slice(&bytes[..take]);
                }
                self.content -= take as u64;
                bytes = &bytes[take..];
                if self.content == 0 {
                    if let Some(pax) = self.pax.take() {
                        self.next_size = pax_size(&pax);
                    }
                }
                continue;
            }
            let take = bytes.len().min(512 - self.filled);
            self.header[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled == 512 {
                self.filled = 0;
                self.start_entry()?;
            }
        }
        Ok(())
    }

    /// A whole header is in: how much content follows it.
    fn start_entry(&mut self) -> io::Result<()> {
        if self.header.iter().all(|b| *b == 0) {
            return Ok(()); // end-of-archive blocks
        }
        let kind = self.header[156];
        let mut size = header_size(&self.header[124..136]);
        let metadata = matches!(kind, b'L' | b'K' | b'x' | b'g');
        if metadata && size > METADATA_MAX {
            return Err(io::Error::other(format!(
                "a metadata entry (type `{}`) of {size} bytes, over the {METADATA_MAX} a name or pax header may hold",
                kind as char
            )));
        }
        if !metadata {
            size = self.next_size.take().unwrap_or(size);
        }
        self.pax = (kind == b'x').then(Vec::new);
        self.content = size.div_ceil(512) * 512;
        if self.content == 0 {
            if let Some(pax) = self.pax.take() {
                self.next_size = pax_size(&pax);
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more than the limit, to tell its end from the stream's.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(format!(
                    "the archive unpacks to more than {} bytes, the source's limit (`max_unpacked` in its recipe)",
                    self.max
                ))),
            };
        }
        let wanted = buffer.len().min(self.left.min(usize::MAX as u64) as usize);
        let read = self.inner.read(&mut buffer[..wanted])?;
        self.left -= read as u64;
        self.follow(&buffer[..read])?;
        Ok(read)
    }
}

/// A header's size field: octal text, or base-256 when its first bit is set.
fn header_size(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        return field[1..].iter().fold(0u64, |size, byte| {
            size.saturating_mul(256).saturating_add(*byte as u64)
        });
    }
    let text = String::from_utf8_lossy(field);
    u64::from_str_radix(text.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap_or(0)
}

/// The `size` record of a pax header, if it has one.
fn pax_size(records: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(records)
        .lines()
        .filter_map(|record| record.split_once(' ')?.1.strip_prefix("size="))
        .next_back()
        .and_then(|size| size.trim().parse().ok())
}

/// Counts uncompressed bytes against the limit.
struct Budget {
    used: u64,
    max: u64,
}

impl Budget {
    fn spend(&mut self, bytes: u64) -> anyhow::Result<()> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.max {
            bail!(
                "the archive unpacks to more than {} bytes, the source's limit (`max_unpacked` in its recipe)",
                self.max
            );
        }
        Ok(())
    }
}

/// Read every entry, hashing it into the tree and, with `root`, writing it
/// below `root`.
fn walk(reader: impl Read, root: Option<&Path>, max_bytes: u64) -> anyhow::Result<Unpacked> {
    // The decompressed stream itself stops at the limit: the tar reader
    // buffers long names and pax headers whole, and takes a pax size over
    // the header's, before any entry reaches the budget below.
    let mut archive = tar::Archive::new(Guard::new(reader, max_bytes));
    let mut walk = Walk {
        root,
        budget: Budget {
            used: 0,
            max: max_bytes,
        },
        newest: 0,
        top_level: None,
        tree: TreeHasher::new(),
        seen: BTreeSet::new(),
        blobs: BTreeMap::new(),
        directories: Vec::new(),
        symlinks: Vec::new(),
    };
    for entry in archive.entries().context("cannot read the archive")? {
        interrupt::check()?;
        walk.entry(entry.context("cannot read the archive")?)?;
    }
    walk.finish()
}

/// The state of one pass over an archive.
struct Walk<'a> {
    /// Where entries are written; `None` to only check and hash them.
    root: Option<&'a Path>,
    budget: Budget,
    newest: u64,
    top_level: Option<String>,
    tree: TreeHasher,
    /// Every path so far: a path named twice is refused, since a second
    /// entry could rewrite, through a hardlink, what the first one hashed.
    seen: BTreeSet<PathBuf>,
    /// Every file so far, for the hardlinks that name it.
    blobs: BTreeMap<PathBuf, (BlobMode, ObjectId)>,
    /// Directories written, whose times are set last.
    directories: Vec<(PathBuf, FileTime)>,
    /// Each symlink written, and its name in the archive.
    symlinks: Vec<(PathBuf, String)>,
}

/// One entry, as the checks and writers see it.
struct Named {
    /// The name in the archive, for messages.
    shown: String,
    /// Below the top-level directory.
    relative: PathBuf,
    /// Where it is written, when writing.
    target: Option<PathBuf>,
    mode: u32,
    mtime: FileTime,
}

impl Walk<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> anyhow::Result<()> {
        let header = entry.header();
        let kind = header.entry_type();
        // The size the reader will deliver (a pax `size` wins over the header's).
        let declared = entry.size();
        self.budget.spend(HEADER_BYTES + declared)?;
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        let (mode, seconds) = (header.mode().unwrap_or(0o644), header.mtime().unwrap_or(0));
        let raw_path = entry
            .path()
            .context("entry with an unreadable name")?
            .into_owned();
        // Names are the archive's: cut and escaped before they reach a terminal.
        let shown = printable(&raw_path.display().to_string(), 200);
        let relative = strip_top_level(&raw_path, &mut self.top_level)
            .with_context(|| format!("entry `{shown}`"))?;
        let Some(relative) = relative else {
            return Ok(());
        };
        let target = self.root.map(|root| root.join(&relative));
        if let (Some(root), Some(target)) = (self.root, &target) {
            refuse_symlinked_ancestors(root, &relative)
                .with_context(|| format!("entry `{shown}`"))?;
            if fs::symlink_metadata(target).is_ok_and(|meta| meta.file_type().is_symlink()) {
                bail!("entry `{shown}`: writes through a symlink");
            }
        }
        if !self.seen.insert(relative.clone()) {
            bail!("entry `{shown}`: the archive names this path twice");
        }
        self.newest = self.newest.max(seconds);
        let named = Named {
            shown,
            relative,
            target,
            mode,
            mtime: FileTime::from_unix_time(seconds as i64, 0),
        };
        let written = match kind {
            EntryType::Directory => self.directory(&named),
            EntryType::Regular | EntryType::Continuous => self.file(&named, declared, &mut entry),
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .context("symlink without a target")?
                    .into_owned();
                self.symlink(&named, &link)
            }
            EntryType::Link => {
                let link = entry
                    .link_name()?
                    .context("hardlink without a target")?
                    .into_owned();
                self.hardlink(&named, &link)
            }
            other => bail!(
                "entry `{}`: refused entry type {other:?} (only files, directories and links)",
                named.shown
            ),
        };
        written.with_context(|| format!("entry `{}`", named.shown))
    }

    fn directory(&mut self, named: &Named) -> anyhow::Result<()> {
        self.tree.add_directory(&named.relative)?;
        if let Some(target) = &named.target {
            fs::create_dir_all(target)?;
            fs::set_permissions(target, fs::Permissions::from_mode(0o755))?;
            self.directories.push((target.clone(), named.mtime));
        }
        Ok(())
    }

    fn file(&mut self, named: &Named, declared: u64, entry: &mut impl Read) -> anyhow::Result<()> {
        let mut blob = BlobHasher::new(declared);
        let mut sink: Box<dyn Write> = match &named.target {
            Some(target) => {
                create_parent(target)?;
                // A new file, never one already there, never through a link.
                let file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(target)
                    .with_context(|| format!("cannot create {}", target.display()))?;
                Box::new(file)
            }
            None => Box::new(io::sink()),
        };
        files::copy_seeing(entry, &mut sink, |bytes| blob.update(bytes))
            .context("truncated archive")?;
        drop(sink);
        let id = blob.finish()?;
        let blob_mode = BlobMode::of_file(named.mode);
        self.tree.add_blob(&named.relative, blob_mode, id)?;
        self.blobs.insert(named.relative.clone(), (blob_mode, id));
        if let Some(target) = &named.target {
            let mode = clamped_file_mode(named.mode);
            fs::set_permissions(target, fs::Permissions::from_mode(mode))?;
            filetime::set_file_mtime(target, named.mtime)?;
        }
        Ok(())
    }

    fn symlink(&mut self, named: &Named, link: &[u8]) -> anyhow::Result<()> {
        let link_path = Path::new(std::ffi::OsStr::from_bytes(link));
        if !stays_inside(&named.relative, link_path, true) {
            bail!(
                "symlink to `{}` points outside the tree",
                link_path.display()
            );
        }
        self.tree
            .add_blob(&named.relative, BlobMode::Symlink, gittree::blob_id(link)?)?;
        self.blobs.remove(&named.relative);
        if let Some(target) = &named.target {
            create_parent(target)?;
            std::os::unix::fs::symlink(link_path, target)?;
            filetime::set_symlink_file_times(target, named.mtime, named.mtime)?;
            self.symlinks
                .push((named.relative.clone(), named.shown.clone()));
        }
        Ok(())
    }

    fn hardlink(&mut self, named: &Named, link: &Path) -> anyhow::Result<()> {
        let source = strip_top_level(link, &mut self.top_level)
            .ok()
            .flatten()
            .filter(|source| stays_inside(Path::new(""), source, false))
            .with_context(|| format!("hardlink to `{}` points outside the tree", link.display()))?;
        let not_a_file = || {
            anyhow::anyhow!(
                "hardlink to `{}`, which is not a file of this archive",
                link.display()
            )
        };
        let &(blob_mode, id) = self.blobs.get(&source).ok_or_else(not_a_file)?;
        self.tree.add_blob(&named.relative, blob_mode, id)?;
        self.blobs.insert(named.relative.clone(), (blob_mode, id));
        if let (Some(root), Some(target)) = (self.root, &named.target) {
            refuse_symlinked_ancestors(root, &source)?;
            let source = root.join(source);
            if !fs::symlink_metadata(&source).is_ok_and(|meta| meta.is_file()) {
                return Err(not_a_file());
            }
            create_parent(target)?;
            fs::hard_link(&source, target)?;
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<Unpacked> {
        if self.top_level.is_none() {
            bail!("the archive is empty");
        }
        if let Some(root) = self.root {
            // Each link looked inside on its own; followed through the links
            // around it (`a -> .`, `b -> a/..`), it must still end inside.
            for (link, shown) in &self.symlinks {
                if !resolves_inside(root, link) {
                    bail!(
                        "entry `{shown}`: symlink to `{}` resolves outside the tree through the links it meets",
                        fs::read_link(root.join(link)).unwrap_or_default().display()
                    );
                }
            }
            // Directory times last: creating their files changed them.
            for (directory, mtime) in self.directories.iter().rev() {
                filetime::set_file_mtime(directory, *mtime)?;
            }
        }
        Ok(Unpacked {
            tree: self.tree.finish()?,
            newest: self.newest,
            bytes: self.budget.used,
        })
    }
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
/// symlink) or to the root (for a hardlink), stays inside the tree, read
/// lexically, without following other links.
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

/// Whether the symlink at `relative` below `root`, followed as the kernel
/// would through every link of the unpacked tree, ends inside `root`. A
/// component that does not exist is taken as it is written.
fn resolves_inside(root: &Path, relative: &Path) -> bool {
    /// One step of a path being resolved.
    enum Step {
        Name(OsString),
        Up,
        Absolute,
    }
    fn steps(path: &Path) -> Vec<Step> {
        path.components()
            .filter_map(|component| match component {
                Component::Normal(name) => Some(Step::Name(name.to_os_string())),
                Component::ParentDir => Some(Step::Up),
                Component::CurDir => None,
                Component::RootDir | Component::Prefix(_) => Some(Step::Absolute),
            })
            .collect()
    }
    let Ok(target) = fs::read_link(root.join(relative)) else {
        return false;
    };
    // Directories below root, all real (the links met on the way are resolved).
    let mut current: PathBuf = relative.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut pending: VecDeque<Step> = steps(&target).into();
    let mut hops = 0;
    while let Some(step) = pending.pop_front() {
        match step {
            Step::Name(name) => {
                let on_disk = root.join(&current).join(&name);
                if fs::symlink_metadata(&on_disk).is_ok_and(|meta| meta.file_type().is_symlink()) {
                    hops += 1;
                    let Ok(next) = fs::read_link(&on_disk) else {
                        return false;
                    };
                    if hops > MAX_LINK_HOPS {
                        return false;
                    }
                    for inner in steps(&next).into_iter().rev() {
                        pending.push_front(inner);
                    }
                } else {
                    current.push(name);
                }
            }
            Step::Up => {
                if !current.pop() {
                    return false;
                }
            }
            Step::Absolute => return false,
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

    #[test]
    fn links_are_followed_through_the_links_they_meet() {
        let dir = crate::files::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        let link =
            |name: &str, target: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        link("a", ".");
        link("b", "a/..");
        link("c", "b/..");
        link("sub/up", "..");
        link("inside", "sub/up/sub");
        link("loop1", "loop2");
        link("loop2", "loop1");
        link("dangling", "not-yet/there");
        assert!(resolves_inside(&root, Path::new("a")));
        assert!(!resolves_inside(&root, Path::new("b")));
        assert!(!resolves_inside(&root, Path::new("c")));
        assert!(resolves_inside(&root, Path::new("sub/up")));
        assert!(resolves_inside(&root, Path::new("inside")));
        assert!(!resolves_inside(&root, Path::new("loop1")));
        assert!(resolves_inside(&root, Path::new("dangling")));
    }

    #[test]
    fn file_modes_are_clamped_by_the_owners_executable_bit() {
        assert_eq!(clamped_file_mode(0o775), 0o755);
        assert_eq!(clamped_file_mode(0o4755), 0o755);
        assert_eq!(clamped_file_mode(0o664), 0o644);
        assert_eq!(clamped_file_mode(0o601), 0o644);
    }
}
