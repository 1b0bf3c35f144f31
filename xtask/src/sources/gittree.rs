//! Git tree ids, recomputed from an archive's entries.
//!
//! A git tree id is a content address: sha1 over `blob <len>\0<bytes>` for
//! each file, then over each directory's sorted entries, up to the top
//! directory. It depends on nothing but the names, the bytes, the executable
//! bit and the symlink targets: not on compression, the archiver, the order of
//! entries or file times. So GitHub's archive of a tag, a mirror's re-packed
//! copy and `git archive | gzip -n` all recompute to the tag's tree, and
//! anything else does not. The commit id that `git archive` writes into a pax
//! header is only a label: it is not read here.
//!
//! SHA-1 runs with collision detection (Marc Stevens' algorithm, as git itself
//! uses since SHAttered): an input crafted for a collision is refused.

use std::{collections::BTreeMap, ffi::OsStr, os::unix::ffi::OsStrExt, path::Path};

use anyhow::{bail, Context};
use sha1_checked::{Digest, Sha1};

/// A 20-byte git object id.
pub type ObjectId = [u8; 20];

/// How a non-directory entry is recorded in its tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobMode {
    /// `100644`
    File,
    /// `100755`: the owner's executable bit was set, as git reads it.
    Executable,
    /// `120000`: the blob is the link's target.
    Symlink,
}

impl BlobMode {
    /// A regular file's mode from its permission bits.
    pub fn of_file(mode: u32) -> BlobMode {
        if mode & 0o100 != 0 {
            BlobMode::Executable
        } else {
            BlobMode::File
        }
    }

    fn as_bytes(self) -> &'static [u8] {
        match self {
            BlobMode::File => b"100644",
            BlobMode::Executable => b"100755",
            BlobMode::Symlink => b"120000",
        }
    }
}

/// Hashes one blob as its bytes stream past; the length comes first, from
/// the archive's header, as git's object header needs it.
pub struct BlobHasher {
    hasher: Sha1,
    expected: u64,
    seen: u64,
}

impl BlobHasher {
    pub fn new(len: u64) -> BlobHasher {
        let mut hasher = Sha1::new();
        hasher.update(format!("blob {len}\0").as_bytes());
        BlobHasher {
            hasher,
            expected: len,
            seen: 0,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.seen += bytes.len() as u64;
        self.hasher.update(bytes);
    }

    pub fn finish(self) -> anyhow::Result<ObjectId> {
        if self.seen != self.expected {
            bail!(
                "the entry has {} bytes, its header said {}",
                self.seen,
                self.expected
            );
        }
        checked(self.hasher)
    }
}

/// The blob id of bytes held in memory (a symlink's target).
pub fn blob_id(bytes: &[u8]) -> anyhow::Result<ObjectId> {
    let mut blob = BlobHasher::new(bytes.len() as u64);
    blob.update(bytes);
    blob.finish()
}

fn checked(hasher: Sha1) -> anyhow::Result<ObjectId> {
    let result = hasher.try_finalize();
    if result.has_collision() {
        bail!("SHA-1 collision attack detected in the archive's contents");
    }
    Ok(result
        .hash()
        .as_slice()
        .try_into()
        .expect("sha1 is 20 bytes"))
}

enum Node {
    Blob(BlobMode, ObjectId),
    Tree(Directory),
}

#[derive(Default)]
struct Directory {
    entries: BTreeMap<Vec<u8>, Node>,
}

/// The tree of an archive, built from its entries in any order.
#[derive(Default)]
pub struct TreeHasher {
    root: Directory,
}

impl TreeHasher {
    pub fn new() -> TreeHasher {
        TreeHasher::default()
    }

    /// A file or symlink at `path` (relative to the top directory). A later
    /// entry for the same path replaces an earlier one, as unpacking does.
    pub fn add_blob(&mut self, path: &Path, mode: BlobMode, id: ObjectId) -> anyhow::Result<()> {
        let (parent, name) = split(path)?;
        let directory = self.directory(parent)?;
        if let Some(Node::Tree(_)) = directory.entries.get(name.as_bytes()) {
            bail!("`{}` is both a directory and a file", path.display());
        }
        directory
            .entries
            .insert(name.as_bytes().to_vec(), Node::Blob(mode, id));
        Ok(())
    }

    /// A directory at `path`; its parents are implied. A directory with no
    /// entries counts as git's empty tree, which no tag's archive holds.
    pub fn add_directory(&mut self, path: &Path) -> anyhow::Result<()> {
        self.directory(path).map(drop)
    }

    fn directory(&mut self, path: &Path) -> anyhow::Result<&mut Directory> {
        let mut directory = &mut self.root;
        for component in path.iter() {
            let node = directory
                .entries
                .entry(component.as_bytes().to_vec())
                .or_insert_with(|| Node::Tree(Directory::default()));
            directory = match node {
                Node::Tree(inner) => inner,
                Node::Blob(..) => bail!("`{}` is both a file and a directory", path.display()),
            };
        }
        Ok(directory)
    }

    /// The top directory's tree id, as lowercase hex.
    pub fn finish(self) -> anyhow::Result<String> {
        tree_id(&self.root).map(hex::encode)
    }
}

fn split(path: &Path) -> anyhow::Result<(&Path, &OsStr)> {
    let name = path
        .file_name()
        .with_context(|| format!("`{}` has no name", path.display()))?;
    Ok((path.parent().unwrap_or(Path::new("")), name))
}

fn tree_id(directory: &Directory) -> anyhow::Result<ObjectId> {
    // Git sorts a tree's entries by name, a directory's name as if it ended in `/`.
    let mut entries: Vec<(Vec<u8>, &[u8], ObjectId)> = Vec::new();
    for (name, node) in &directory.entries {
        let (key, mode, id) = match node {
            Node::Blob(mode, id) => (name.clone(), mode.as_bytes(), *id),
            Node::Tree(inner) => {
                let mut key = name.clone();
                key.push(b'/');
                (key, b"40000".as_slice(), tree_id(inner)?)
            }
        };
        entries.push((key, mode, id));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut body = Vec::new();
    for (key, mode, id) in &entries {
        let name = key.strip_suffix(b"/").unwrap_or(key);
        body.extend_from_slice(mode);
        body.push(b' ');
        body.extend_from_slice(name);
        body.push(0);
        body.extend_from_slice(id);
    }
    let mut hasher = Sha1::new();
    hasher.update(format!("tree {}\0", body.len()).as_bytes());
    hasher.update(&body);
    checked(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_blob_and_tree_have_gits_ids() {
        assert_eq!(
            hex::encode(blob_id(b"").unwrap()),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            TreeHasher::new().finish().unwrap(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn entry_order_does_not_matter_and_directories_sort_with_a_slash() {
        let id = blob_id(b"x\n").unwrap();
        let paths = ["a.b", "a/c", "a-", "a0"];
        let mut forward = TreeHasher::new();
        for path in paths {
            forward
                .add_blob(Path::new(path), BlobMode::File, id)
                .unwrap();
        }
        let mut backward = TreeHasher::new();
        for path in paths.iter().rev() {
            backward
                .add_blob(Path::new(path), BlobMode::File, id)
                .unwrap();
        }
        assert_eq!(forward.finish().unwrap(), backward.finish().unwrap());
    }

    #[test]
    fn a_file_and_a_directory_of_one_name_are_refused() {
        let id = blob_id(b"").unwrap();
        let mut tree = TreeHasher::new();
        tree.add_blob(Path::new("a/b"), BlobMode::File, id).unwrap();
        assert!(tree.add_blob(Path::new("a"), BlobMode::File, id).is_err());
        assert!(tree.add_directory(Path::new("a/b/c")).is_err());
    }

    #[test]
    fn a_blob_whose_length_differs_from_its_header_is_refused() {
        let mut blob = BlobHasher::new(3);
        blob.update(b"ab");
        assert!(blob.finish().is_err());
    }
}
