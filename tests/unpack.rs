//! Hostile archives, built here one per class: each is refused with an error
//! naming the entry, and leaves nothing behind, inside or outside the target.
//! And the git tree pin, recomputed from the entries of real `git archive`
//! output and of re-packed copies of it.

mod support;

use std::{fs, io::Read, os::unix::fs::PermissionsExt, path::Path};

use tar::{EntryType, Header};
use xtask::{
    input::recipe::ArchiveKind,
    sources::archive::{self, Expect, TreeMismatch},
};

/// No tree pin, and the default size limit.
const ANY: Expect<'static> = Expect {
    tree: None,
    max_bytes: 4 << 30,
};

/// One entry of a test archive; names are written raw, bypassing the tar
/// crate's own checks, so the archive can be as hostile as an attacker's.
struct Entry<'a> {
    name: &'a str,
    kind: EntryType,
    mode: u32,
    link: &'a str,
    body: &'a [u8],
}

fn entry<'a>(name: &'a str, kind: EntryType) -> Entry<'a> {
    Entry {
        name,
        kind,
        mode: 0o644,
        link: "",
        body: b"",
    }
}

fn file<'a>(name: &'a str, body: &'a [u8]) -> Entry<'a> {
    Entry {
        body,
        ..entry(name, EntryType::Regular)
    }
}

fn link<'a>(name: &'a str, kind: EntryType, target: &'a str) -> Entry<'a> {
    Entry {
        link: target,
        ..entry(name, kind)
    }
}

fn write_archive(path: &Path, entries: &[Entry<'_>]) {
    let encoder =
        flate2::write::GzEncoder::new(fs::File::create(path).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for entry in entries {
        let mut header = Header::new_old();
        let name = &mut header.as_old_mut().name;
        name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
        let linkname = &mut header.as_old_mut().linkname;
        linkname[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_size(entry.body.len() as u64);
        header.set_mtime(1_600_000_000);
        header.set_cksum();
        builder.append(&header, entry.body).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

/// A work area: `target/` is where archives unpack; `outside/` must stay empty.
struct Area {
    _dir: xtask::files::TempDir,
    root: std::path::PathBuf,
}

impl Area {
    fn new() -> Area {
        let dir = xtask::files::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::create_dir_all(root.join("target")).unwrap();
        fs::create_dir_all(root.join("outside")).unwrap();
        Area { _dir: dir, root }
    }

    fn unpack(&self, entries: &[Entry<'_>]) -> anyhow::Result<()> {
        self.unpack_expecting(entries, &ANY)
    }

    fn unpack_expecting(&self, entries: &[Entry<'_>], expect: &Expect<'_>) -> anyhow::Result<()> {
        let archive_path = self.root.join("a.tar.gz");
        write_archive(&archive_path, entries);
        self.unpack_file(&archive_path, expect).map(drop)
    }

    /// Unpack the gzipped tar at `path` into the area's `target/src`.
    fn unpack_file(&self, path: &Path, expect: &Expect<'_>) -> anyhow::Result<archive::Unpacked> {
        archive::unpack(
            path,
            ArchiveKind::TarGz,
            &self.root.join("target/src"),
            expect,
        )
    }

    fn assert_nothing_left(&self) {
        let inside: Vec<_> = fs::read_dir(self.root.join("target")).unwrap().collect();
        assert!(inside.is_empty(), "left inside the target: {inside:?}");
        let outside: Vec<_> = fs::read_dir(self.root.join("outside")).unwrap().collect();
        assert!(outside.is_empty(), "written outside: {outside:?}");
    }
}

fn refused(entries: &[Entry<'_>], names_entry: &str, why: &str) {
    let area = Area::new();
    // Attacks aim at the area's `outside/`, by absolute path or by `..`.
    let rewritten: Vec<String> = entries
        .iter()
        .map(|e| {
            e.name
                .replace("@OUT", &area.root.join("outside").display().to_string())
        })
        .collect();
    let links: Vec<String> = entries
        .iter()
        .map(|e| {
            e.link
                .replace("@OUT", &area.root.join("outside").display().to_string())
        })
        .collect();
    let entries: Vec<Entry<'_>> = entries
        .iter()
        .zip(rewritten.iter().zip(&links))
        .map(|(e, (name, link))| Entry {
            name,
            link,
            kind: e.kind,
            mode: e.mode,
            body: e.body,
        })
        .collect();
    let error = format!(
        "{:#}",
        area.unpack(&entries).expect_err("hostile archive accepted")
    );
    let names_entry = names_entry.replace("@OUT", &area.root.join("outside").display().to_string());
    assert!(
        error.contains(&format!("entry `{names_entry}`")),
        "error does not name the entry: {error}"
    );
    assert!(
        error.contains(why),
        "error does not say why ({why}): {error}"
    );
    area.assert_nothing_left();
}

#[test]
fn a_well_formed_archive_unpacks_keeping_times_and_dropping_setuid() {
    let area = Area::new();
    let mut setuid = file("pkg-1/bin/tool", b"#!/bin/sh\n");
    setuid.mode = 0o4755;
    let archive_path = area.root.join("a.tar.gz");
    write_archive(
        &archive_path,
        &[
            entry("pkg-1/", EntryType::Directory),
            file("pkg-1/configure", b"echo hi\n"),
            setuid,
            link("pkg-1/bin/alias", EntryType::Symlink, "tool"),
            link("pkg-1/configure.copy", EntryType::Link, "pkg-1/configure"),
        ],
    );
    let unpacked = area.unpack_file(&archive_path, &ANY).unwrap();
    let src = area.root.join("target/src");
    assert_eq!(fs::read(src.join("configure")).unwrap(), b"echo hi\n");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::metadata(src.join("configure")).unwrap();
    assert_eq!(meta.mtime(), 1_600_000_000, "archive times are kept");
    assert_eq!(
        fs::metadata(src.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(
        fs::read_link(src.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        fs::metadata(src.join("configure.copy")).unwrap().ino(),
        meta.ino()
    );
    let mut leftovers: Vec<_> = fs::read_dir(area.root.join("target"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    leftovers.sort();
    assert_eq!(
        leftovers,
        ["src", "src.source-date-epoch", "src.tree"],
        "no temporary directory is left"
    );
    // The git tree the entries made, pinned or not: the SBOM's id of the source.
    let tree = fs::read_to_string(area.root.join("target/src.tree")).unwrap();
    assert_eq!(tree.trim(), unpacked.tree);
    // The newest entry time, the default SOURCE_DATE_EPOCH of packages.
    let epoch = fs::read_to_string(area.root.join("target/src.source-date-epoch")).unwrap();
    assert_eq!(epoch.trim(), "1600000000");
}

#[test]
fn absolute_path() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            file("@OUT/pwned", b"x"),
        ],
        "@OUT/pwned",
        "absolute",
    );
}

#[test]
fn parent_dir_component() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            file("pkg-1/../../outside/pwned", b"x"),
        ],
        "pkg-1/../../outside/pwned",
        "`..`",
    );
}

#[test]
fn symlink_climbing_out_with_dot_dot() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            link("pkg-1/escape", EntryType::Symlink, "../../outside"),
        ],
        "pkg-1/escape",
        "points outside",
    );
}

#[test]
fn symlink_to_an_absolute_path() {
    refused(
        &[link("pkg-1/abs", EntryType::Symlink, "@OUT")],
        "pkg-1/abs",
        "points outside",
    );
}

#[test]
fn chained_symlinks_each_inside_resolving_outside() {
    // Each link looks inside on its own: `.`, `a/..` is the top, `b/..` too,
    // read lexically. Followed, c -> b/.. -> a/../.. -> ./../.. : two levels up.
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            link("pkg-1/a", EntryType::Symlink, "."),
            link("pkg-1/b", EntryType::Symlink, "a/.."),
            link("pkg-1/c", EntryType::Symlink, "b/.."),
        ],
        "pkg-1/b",
        "resolves outside the tree",
    );
}

#[test]
fn symlinks_that_stay_inside_through_other_links_are_kept() {
    let area = Area::new();
    area.unpack(&[
        entry("pkg-1/", EntryType::Directory),
        entry("pkg-1/sub/", EntryType::Directory),
        file("pkg-1/sub/f", b"f"),
        link("pkg-1/here", EntryType::Symlink, "."),
        link("pkg-1/sub/up", EntryType::Symlink, ".."),
        link("pkg-1/f", EntryType::Symlink, "here/sub/up/sub/f"),
    ])
    .unwrap();
    assert_eq!(fs::read(area.root.join("target/src/f")).unwrap(), b"f");
}

#[test]
fn write_through_a_symlinked_directory() {
    // The link itself stays inside; a later entry writes through it.
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            entry("pkg-1/real/", EntryType::Directory),
            link("pkg-1/via", EntryType::Symlink, "real"),
            file("pkg-1/via/file", b"x"),
        ],
        "pkg-1/via/file",
        "symlink",
    );
}

#[test]
fn write_over_a_symlink() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            file("pkg-1/real", b"a"),
            link("pkg-1/via", EntryType::Symlink, "real"),
            file("pkg-1/via", b"b"),
        ],
        "pkg-1/via",
        "symlink",
    );
}

#[test]
fn hardlink_to_an_absolute_path() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            link("pkg-1/h", EntryType::Link, "/etc/passwd"),
        ],
        "pkg-1/h",
        "outside the tree",
    );
}

#[test]
fn hardlink_climbing_out_with_dot_dot() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            link("pkg-1/h", EntryType::Link, "pkg-1/../../x"),
        ],
        "pkg-1/h",
        "outside the tree",
    );
}

#[test]
fn character_device() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            entry("pkg-1/dev", EntryType::Char),
        ],
        "pkg-1/dev",
        "refused entry type",
    );
}

#[test]
fn block_device() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            entry("pkg-1/blk", EntryType::Block),
        ],
        "pkg-1/blk",
        "refused entry type",
    );
}

#[test]
fn fifo() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            entry("pkg-1/pipe", EntryType::Fifo),
        ],
        "pkg-1/pipe",
        "refused entry type",
    );
}

#[test]
fn gzip_bomb_past_the_size_limit() {
    // 64 MiB of zeros, about 64 KiB compressed, against a 16 MiB limit.
    let area = Area::new();
    let path = area.root.join("bomb.tar.gz");
    let encoder = flate2::write::GzEncoder::new(
        fs::File::create(&path).unwrap(),
        flate2::Compression::best(),
    );
    let mut builder = tar::Builder::new(encoder);
    let mut header = Header::new_gnu();
    header.set_size(64 << 20);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(
            &mut header,
            "pkg-1/zeros",
            std::io::repeat(0).take(64 << 20),
        )
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    assert!(fs::metadata(&path).unwrap().len() < 1 << 20);
    let expect = Expect {
        tree: None,
        max_bytes: 16 << 20,
    };
    let error = area
        .unpack_file(&path, &expect)
        .expect_err("a bomb past the limit was unpacked");
    let message = format!("{error:#}");
    assert!(message.contains("more than 16777216 bytes"), "{message}");
    assert!(message.contains("max_unpacked"), "{message}");
    area.assert_nothing_left();
    // The same check without writing, as fetch runs it on bytes not yet trusted.
    assert!(archive::inspect(&path, ArchiveKind::TarGz, &expect).is_err());
}

#[test]
fn group_writable_modes_are_clamped() {
    // `git archive` writes 0775 and 0664; a tree unpacked from it must not be group-writable.
    let area = Area::new();
    let mut script = file("pkg-1/configure", b"#!/bin/sh\n");
    script.mode = 0o775;
    let mut data = file("pkg-1/data", b"d");
    data.mode = 0o666;
    let mut dir = entry("pkg-1/sub/", EntryType::Directory);
    dir.mode = 0o777;
    area.unpack(&[entry("pkg-1/", EntryType::Directory), script, data, dir])
        .unwrap();
    let mode = |name: &str| {
        fs::metadata(area.root.join("target/src").join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("configure"), 0o755);
    assert_eq!(mode("data"), 0o644);
    assert_eq!(mode("sub"), 0o755);
    assert_eq!(mode(""), 0o755);
}

#[test]
fn a_refused_archive_keeps_an_earlier_good_tree() {
    let area = Area::new();
    area.unpack(&[
        entry("pkg-1/", EntryType::Directory),
        file("pkg-1/good", b"1"),
    ])
    .unwrap();
    area.unpack(&[
        entry("pkg-1/", EntryType::Directory),
        entry("pkg-1/pipe", EntryType::Fifo),
    ])
    .unwrap_err();
    assert_eq!(fs::read(area.root.join("target/src/good")).unwrap(), b"1");
}

/// A git repository made here, with what makes tree ids tricky: an
/// executable, a symlink, nested directories, and names that sort
/// differently as files and as directories (`a.b`, `a/`, `a-`, `a0`).
fn tricky_repository(dir: &Path) -> String {
    let write = |path: &str, body: &str| {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    };
    write("configure", "#!/bin/sh\necho configure\n");
    fs::set_permissions(dir.join("configure"), fs::Permissions::from_mode(0o755)).unwrap();
    write("a.b", "dot\n");
    write("a/inner/deep.c", "int x;\n");
    write("a-", "dash\n");
    write("a0", "zero\n");
    write("empty", "");
    std::os::unix::fs::symlink("a/inner/deep.c", dir.join("link")).unwrap();
    support::git(dir, &["init", "-q"]);
    support::git(dir, &["add", "."]);
    support::git(dir, &["commit", "-q", "-m", "c"]);
    String::from_utf8(support::git(dir, &["rev-parse", "HEAD^{tree}"]))
        .unwrap()
        .trim()
        .to_owned()
}

/// `git archive` of `repo`'s HEAD, as `pkg-1/`, written into the area.
fn head_archive(repo: &Path, area: &Area) -> std::path::PathBuf {
    let path = area.root.join("a.tar.gz");
    fs::write(
        &path,
        support::git(
            repo,
            &["archive", "--format=tar.gz", "--prefix=pkg-1/", "HEAD"],
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_tree_recomputed_from_git_archive_output_is_gits_own_tree_id() {
    let repo = xtask::files::tempdir().unwrap();
    let tree = tricky_repository(repo.path());
    let area = Area::new();
    let path = head_archive(repo.path(), &area);
    let expect = Expect {
        tree: Some(&tree),
        max_bytes: 1 << 20,
    };
    let unpacked = area.unpack_file(&path, &expect).unwrap();
    assert_eq!(unpacked.tree, tree);
    assert_eq!(
        archive::inspect(&path, ArchiveKind::TarGz, &expect)
            .unwrap()
            .tree,
        tree
    );
}

#[test]
fn a_tree_pin_mismatch_refuses_the_unpack_naming_both_trees_and_keeps_nothing() {
    let repo = xtask::files::tempdir().unwrap();
    let tree = tricky_repository(repo.path());
    // The same tree with one byte more in one file.
    fs::write(repo.path().join("a0"), "zero!\n").unwrap();
    support::git(repo.path(), &["commit", "-q", "-am", "changed"]);
    let changed =
        String::from_utf8(support::git(repo.path(), &["rev-parse", "HEAD^{tree}"])).unwrap();
    let area = Area::new();
    let path = head_archive(repo.path(), &area);
    let expect = Expect {
        tree: Some(&tree),
        max_bytes: 1 << 20,
    };
    let error = area
        .unpack_file(&path, &expect)
        .expect_err("a tree mismatch was unpacked");
    assert!(
        error.chain().any(|cause| cause.is::<TreeMismatch>()),
        "{error:#}"
    );
    let message = format!("{error:#}");
    assert!(
        message.contains(&tree) && message.contains(changed.trim()),
        "{message}"
    );
    area.assert_nothing_left();
}

/// A gzipped tar written raw: each item a header and the bytes after it.
fn raw_archive(path: &Path, items: &[(Header, Vec<u8>)]) {
    use std::io::Write;
    let mut out =
        flate2::write::GzEncoder::new(fs::File::create(path).unwrap(), flate2::Compression::fast());
    for (header, body) in items {
        out.write_all(header.as_bytes()).unwrap();
        out.write_all(body).unwrap();
        let padding = (512 - body.len() % 512) % 512;
        out.write_all(&vec![0u8; padding]).unwrap();
    }
    out.write_all(&[0u8; 1024]).unwrap();
    out.finish().unwrap();
}

fn raw_header(name: &str, kind: EntryType, size: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_path(name).unwrap();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_cksum();
    header
}

#[test]
fn a_path_named_twice_is_refused_even_when_the_tree_would_match() {
    // The attack: P gets Q's bytes, Q is a hardlink to P (hashed as Q's
    // content), then P is written again with P's bytes, which would rewrite Q
    // on disk through the shared inode while the recomputed tree still matches.
    let repo = xtask::files::tempdir().unwrap();
    fs::write(repo.path().join("P"), "legit P\n").unwrap();
    fs::write(repo.path().join("Q"), "legit Q\n").unwrap();
    support::git(repo.path(), &["init", "-q"]);
    support::git(repo.path(), &["add", "."]);
    support::git(repo.path(), &["commit", "-q", "-m", "c"]);
    let tree = String::from_utf8(support::git(repo.path(), &["rev-parse", "HEAD^{tree}"])).unwrap();
    let tree = tree.trim();
    let area = Area::new();
    let path = area.root.join("twice.tar.gz");
    let mut hardlink = raw_header("pkg-1/Q", EntryType::Link, 0);
    hardlink.set_link_name("pkg-1/P").unwrap();
    hardlink.set_cksum();
    raw_archive(
        &path,
        &[
            (raw_header("pkg-1/", EntryType::Directory, 0), Vec::new()),
            (
                raw_header("pkg-1/P", EntryType::Regular, 8),
                b"legit Q\n".to_vec(),
            ),
            (hardlink, Vec::new()),
            (
                raw_header("pkg-1/P", EntryType::Regular, 8),
                b"legit P\n".to_vec(),
            ),
        ],
    );
    let expect = Expect {
        tree: Some(tree),
        max_bytes: 1 << 20,
    };
    let error = format!("{:#}", area.unpack_file(&path, &expect).unwrap_err());
    assert!(
        error.contains("entry `pkg-1/P`: the archive names this path twice"),
        "{error}"
    );
    area.assert_nothing_left();
    assert!(archive::inspect(&path, ArchiveKind::TarGz, &expect).is_err());
}

#[test]
fn a_pax_size_larger_than_the_header_counts_against_the_limit() {
    let area = Area::new();
    let path = area.root.join("pax.tar.gz");
    let size = 64u64 << 20;
    let record = format!("size={size}\n");
    let record = format!("{} {record}", record.len() + 3);
    assert_eq!(
        record.len(),
        record.split(' ').next().unwrap().parse::<usize>().unwrap()
    );
    raw_archive(
        &path,
        &[
            (raw_header("pkg-1/", EntryType::Directory, 0), Vec::new()),
            (
                raw_header("pkg-1/PaxHeader", EntryType::XHeader, record.len() as u64),
                record.into_bytes(),
            ),
            // The header says 0 bytes; the pax record says 64 MiB, and they follow.
            (
                raw_header("pkg-1/big", EntryType::Regular, 0),
                vec![0u8; size as usize],
            ),
        ],
    );
    let expect = Expect {
        tree: None,
        max_bytes: 1 << 20,
    };
    let error = format!("{:#}", area.unpack_file(&path, &expect).unwrap_err());
    assert!(error.contains("more than 1048576 bytes"), "{error}");
    area.assert_nothing_left();
}

#[test]
fn a_long_name_is_refused_before_the_tar_reader_buffers_it() {
    let area = Area::new();
    let path = area.root.join("longname.tar.gz");
    let mut name = b"pkg-1/".to_vec();
    name.extend(std::iter::repeat_n(b'a', 8 << 20));
    let mut long = Header::new_gnu();
    long.set_entry_type(EntryType::GNULongName);
    long.set_size(name.len() as u64);
    long.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    long.set_cksum();
    raw_archive(
        &path,
        &[
            (long, name),
            (
                raw_header("pkg-1/short", EntryType::Regular, 1),
                b"x".to_vec(),
            ),
        ],
    );
    // Far under the size limit: the tar reader would buffer the name whole.
    let expect = Expect {
        tree: None,
        max_bytes: 4 << 30,
    };
    let error = format!("{:#}", area.unpack_file(&path, &expect).unwrap_err());
    assert!(
        error.contains("a metadata entry (type `L`) of 8388614 bytes"),
        "{error}"
    );
    area.assert_nothing_left();
}
