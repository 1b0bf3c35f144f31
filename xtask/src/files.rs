//! Small file-system primitives the rest builds on: atomic writes, advisory
//! locks that never follow a symlink, the sha256 of a file.

use std::{
    ffi::{CString, OsStr},
    fs::{self, File},
    io::{self, Read, Write},
    os::unix::{ffi::OsStrExt, fs::OpenOptionsExt, io::AsRawFd},
    path::{Path, PathBuf},
};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::interrupt;

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let parent = path.parent().context("path without a parent")?;
    fs::create_dir_all(parent)?;
    let temporary = parent.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut file = File::create(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Copy `input` to `output`, showing every piece to `seen` on the way (a
/// hasher, say); returns the count.
pub fn copy_seeing(
    input: &mut impl Read,
    output: &mut impl Write,
    mut seen: impl FnMut(&[u8]),
) -> io::Result<u64> {
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let read = match input.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        output.write_all(&buffer[..read])?;
        seen(&buffer[..read]);
        total += read as u64;
    }
}

/// Copy `input` to `output`, feeding every byte to `hasher`; returns the count.
pub fn copy_hashing(
    input: &mut impl Read,
    output: &mut impl Write,
    hasher: &mut Sha256,
) -> io::Result<u64> {
    copy_seeing(input, output, |bytes| hasher.update(bytes))
}

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    copy_hashing(&mut file, &mut io::sink(), &mut hasher)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// An flock held on a file; released when dropped.
pub struct FileLock {
    _file: File,
}

/// Lock `path` (created if missing, never through a symlink), waiting for
/// other holders; `waiting` is printed once if it has to wait.
pub fn lock(path: &Path, exclusive: bool, waiting: &str) -> anyhow::Result<FileLock> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| {
            format!(
                "cannot open the lock file {} (a symlink is refused)",
                path.display()
            )
        })?;
    let operation = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    let mut said = false;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) } == 0 {
            return Ok(FileLock { _file: file });
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(error).with_context(|| format!("cannot lock {}", path.display()));
        }
        if !said {
            eprintln!("{:>12} {waiting} ({})", "Blocking", path.display());
            said = true;
        }
        // Waiting, but not past a signal.
        interrupt::check()?;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// A directory removed, with everything in it, when dropped: scratch space
/// for tests and throwaway work.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh `<temp>/<prefix>XXXXXX` (see [`make_temporary_dir`]).
    pub fn with_prefix(prefix: &str) -> anyhow::Result<TempDir> {
        make_temporary_dir(prefix).map(TempDir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A fresh `<temp>/bdr-dist-XXXXXX`, removed when dropped.
pub fn tempdir() -> anyhow::Result<TempDir> {
    TempDir::with_prefix("bdr-dist-")
}

/// A fresh directory `<temp>/<prefix>XXXXXX`, made by mkdtemp: a name
/// nobody could have created first.
pub fn make_temporary_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let template = std::env::temp_dir().join(format!("{prefix}XXXXXX"));
    let template = CString::new(template.as_os_str().as_bytes())
        .context("temporary directory name with a NUL byte")?;
    let raw = template.into_raw();
    // SAFETY: mkdtemp rewrites the X's of a NUL-terminated buffer we own.
    let made = unsafe { libc::mkdtemp(raw) };
    // SAFETY: the buffer came from into_raw just above.
    let template = unsafe { CString::from_raw(raw) };
    if made.is_null() {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                std::env::temp_dir().display()
            )
        });
    }
    Ok(PathBuf::from(OsStr::from_bytes(template.as_bytes())))
}
