//! Reproducible tar + gzip, shared by the binary tarball, the .deb and the
//! OpenBSD package, and the relocatable binary tarball itself.
//!
//! reproducible-builds.org's rules: entries sorted by name, mtimes clamped to
//! SOURCE_DATE_EPOCH, uid/gid 0 with no user or group names, and no time or
//! file name in the gzip header. Compression runs on every core: the tar
//! stream is cut into fixed-size chunks, each a gzip member of its own (a
//! multi-member gzip file, which gzip, tar and every zlib reader accept).
//! Fixed chunking keeps the output independent of the number of cores.

use std::{
    fs,
    io::Write,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    thread,
};

use anyhow::Context;
use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use super::Contents;
use crate::files::write_atomically;

/// Bytes of tar stream per gzip member.
const CHUNK: usize = 4 << 20;

/// What one archive entry is made of.
#[derive(Clone)]
pub enum Body {
    /// A file, directory or symlink on disk (as `symlink_metadata` sees it).
    Disk(PathBuf),
    /// Bytes made in memory, with their mode.
    Bytes(Vec<u8>, u32),
    /// A directory that exists only in the archive.
    Directory,
    /// A symlink that exists only in the archive, to this target.
    Symlink(String),
}

pub struct Entry {
    /// The name in the archive; directories end without a slash.
    pub name: String,
    pub body: Body,
}

/// A tar stream of `entries`, in the order given (callers sort), with every
/// time clamped to `epoch`.
pub fn tar_bytes(entries: &[Entry], epoch: u64) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for entry in entries {
        let mut header = Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        match &entry.body {
            Body::Directory => {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(0o755);
                header.set_mtime(epoch);
                header.set_size(0);
                builder.append_data(&mut header, format!("{}/", entry.name), std::io::empty())?;
            }
            Body::Symlink(target) => {
                header.set_entry_type(EntryType::Symlink);
                header.set_mode(0o777);
                header.set_mtime(epoch);
                header.set_size(0);
                builder.append_link(&mut header, &entry.name, target)?;
            }
            Body::Bytes(bytes, mode) => {
                header.set_entry_type(EntryType::Regular);
                header.set_mode(*mode);
                header.set_mtime(epoch);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, &entry.name, bytes.as_slice())?;
            }
            Body::Disk(path) => {
                let meta = fs::symlink_metadata(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                header.set_mtime((meta.mtime().max(0) as u64).min(epoch));
                // Permission bits only: no setuid/setgid in what we ship.
                header.set_mode(meta.permissions().mode() & 0o777);
                if meta.file_type().is_symlink() {
                    header.set_entry_type(EntryType::Symlink);
                    header.set_size(0);
                    let target = fs::read_link(path)?;
                    builder.append_link(&mut header, &entry.name, &target)?;
                } else if meta.is_dir() {
                    header.set_entry_type(EntryType::Directory);
                    header.set_size(0);
                    builder.append_data(
                        &mut header,
                        format!("{}/", entry.name),
                        std::io::empty(),
                    )?;
                } else {
                    header.set_entry_type(EntryType::Regular);
                    header.set_size(meta.len());
                    let file = fs::File::open(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    builder.append_data(&mut header, &entry.name, file)?;
                }
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// gzip `data` at level 6 in fixed chunks compressed in parallel.
pub fn gzip_parallel(data: &[u8]) -> Vec<u8> {
    let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(chunks.len().max(1));
    let mut compressed: Vec<Vec<u8>> = vec![Vec::new(); chunks.len()];
    thread::scope(|scope| {
        let mut slots: Vec<&mut Vec<u8>> = compressed.iter_mut().collect();
        let mut assignments: Vec<Vec<(usize, &mut Vec<u8>)>> =
            (0..workers).map(|_| Vec::new()).collect();
        for (index, slot) in slots.drain(..).enumerate() {
            assignments[index % workers].push((index, slot));
        }
        for assignment in assignments {
            let chunks = &chunks;
            scope.spawn(move || {
                for (index, slot) in assignment {
                    // No name and mtime 0 in the header (GzBuilder's defaults).
                    let mut encoder = GzBuilder::new().write(
                        Vec::with_capacity(chunks[index].len() / 3),
                        Compression::new(6),
                    );
                    encoder.write_all(chunks[index]).expect("writing to memory");
                    *slot = encoder.finish().expect("writing to memory");
                }
            });
        }
    });
    if compressed.is_empty() {
        let encoder = GzBuilder::new().write(Vec::new(), Compression::new(6));
        return encoder.finish().expect("writing to memory");
    }
    compressed.concat()
}

/// Entries for every directory and file below `root`, named `prefix/relative`,
/// sorted by name.
pub fn tree_entries(root: &Path, prefix: &str) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for child in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = child?.path();
            let relative = path
                .strip_prefix(root)
                .expect("below root")
                .display()
                .to_string();
            if fs::symlink_metadata(&path)?.is_dir() {
                pending.push(path.clone());
            }
            entries.push(Entry {
                name: format!("{prefix}/{relative}"),
                body: Body::Disk(path),
            });
        }
    }
    entries.push(Entry {
        name: prefix.to_owned(),
        body: Body::Disk(root.to_path_buf()),
    });
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The relocatable binary tarball, and its JSON manifest beside it.
pub fn make(contents: &Contents<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let package = contents.package;
    let stem = contents.stem();
    let entries = tree_entries(&contents.stage_prefix, &stem)?;
    let tar = tar_bytes(&entries, contents.epoch)?;
    let path = package.dist.join(format!("{stem}.tar.gz"));
    write_atomically(&path, &gzip_parallel(&tar))?;
    let manifest_path = package.dist.join(format!("{stem}.manifest.json"));
    let manifest = serde_json::to_string_pretty(&contents.manifest)? + "\n";
    write_atomically(&manifest_path, manifest.as_bytes())?;
    Ok(vec![path, manifest_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_gzip_is_one_stream_to_readers_and_independent_of_chunk_count() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 12345)).map(|i| (i % 251) as u8).collect();
        let compressed = gzip_parallel(&data);
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(compressed.as_slice()),
            &mut decoded,
        )
        .unwrap();
        assert_eq!(decoded, data);
        assert_eq!(gzip_parallel(&data), compressed, "deterministic");
        assert_eq!(
            &compressed[4..8],
            &[0, 0, 0, 0],
            "no time in the gzip header"
        );
    }

    #[test]
    fn entries_are_clamped_to_the_epoch_and_owned_by_root_without_names() {
        let dir = crate::files::tempdir().unwrap();
        fs::write(dir.path().join("b"), "b").unwrap();
        fs::write(dir.path().join("a"), "a").unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("c")).unwrap();
        let entries = tree_entries(dir.path(), "top").unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["top", "top/a", "top/b", "top/c"]);
        let tar = tar_bytes(&entries, 1000).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 1000);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.username().unwrap(), Some(""));
        }
    }
}
