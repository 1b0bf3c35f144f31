//! Hostile archives, built here one per class: each is refused with an error
//! naming the entry, and leaves nothing behind, inside or outside the target.

use std::{fs, path::Path};

use tar::{EntryType, Header};
use xtask::{archive, recipe::ArchiveKind};

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
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Area {
    fn new() -> Area {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::create_dir_all(root.join("target")).unwrap();
        fs::create_dir_all(root.join("outside")).unwrap();
        Area { _dir: dir, root }
    }

    fn unpack(&self, entries: &[Entry<'_>]) -> anyhow::Result<()> {
        let archive_path = self.root.join("a.tar.gz");
        write_archive(&archive_path, entries);
        archive::unpack(
            &archive_path,
            ArchiveKind::TarGz,
            &self.root.join("target/src"),
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
    area.unpack(&[
        entry("pkg-1/", EntryType::Directory),
        file("pkg-1/configure", b"echo hi\n"),
        setuid,
        link("pkg-1/bin/alias", EntryType::Symlink, "tool"),
        link("pkg-1/configure.copy", EntryType::Link, "pkg-1/configure"),
    ])
    .unwrap();
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
        ["src", "src.source-date-epoch"],
        "no temporary directory is left"
    );
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
fn symlink_pointing_outside() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            link("pkg-1/escape", EntryType::Symlink, "../../outside"),
        ],
        "pkg-1/escape",
        "points outside",
    );
    refused(
        &[link("pkg-1/abs", EntryType::Symlink, "@OUT")],
        "pkg-1/abs",
        "points outside",
    );
}

#[test]
fn write_through_a_symlink() {
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
fn hardlink_pointing_outside() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            link("pkg-1/h", EntryType::Link, "/etc/passwd"),
        ],
        "pkg-1/h",
        "outside the tree",
    );
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
fn device_and_fifo_entries() {
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            entry("pkg-1/dev", EntryType::Char),
        ],
        "pkg-1/dev",
        "refused entry type",
    );
    refused(
        &[
            entry("pkg-1/", EntryType::Directory),
            entry("pkg-1/blk", EntryType::Block),
        ],
        "pkg-1/blk",
        "refused entry type",
    );
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
