//! ELF files of the stage, the distributions' way: stripped copies with the
//! GNU build-id kept, the symbols in a separate file named by that id
//! (`/usr/lib/debug/.build-id/xx/yyyy.debug`), and the sonames a library
//! provides. binutils does the work, as `dh_strip` does.

use std::{
    collections::BTreeMap,
    fs,
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use crate::{plan::InRoot, process::Command};

/// Whether `path` is a regular file that starts with the ELF magic.
pub fn is_elf(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    let mut magic = [0u8; 4];
    meta.is_file()
        && fs::File::open(path)
            .and_then(|mut file| file.read_exact(&mut magic))
            .is_ok()
        && magic == *b"\x7fELF"
}

/// A shared object by its name: `libpq.so.5.15`, `pglogical.so`.
pub fn is_shared_object(relative: &str) -> bool {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    name.ends_with(".so") || name.contains(".so.")
}

/// One ELF file of the stage, split.
pub struct Split {
    /// The stripped copy, to ship in place of the stage's file.
    pub stripped: PathBuf,
    /// The symbols, to ship at `debug_path`.
    pub debug: PathBuf,
    /// `usr/lib/debug/.build-id/xx/yyyy.debug`, relative to the root.
    pub debug_path: String,
    pub build_id: String,
}

/// Strips `source` (a file of the stage at `relative`) into `work`, keeping
/// its symbols beside it; refuses a file without a GNU build-id, which
/// debuggers would have no way to match with its symbols.
///
/// In a target's build `root`, that root's binutils do it.
pub fn split(
    source: &Path,
    relative: &str,
    work: &Path,
    root: Option<&InRoot>,
) -> anyhow::Result<Split> {
    let build_id = build_id(source)?
        .with_context(|| format!("{relative} has no GNU build-id: link with --build-id"))?;
    let stripped = work.join("stripped").join(relative);
    let debug = work.join("debug").join(format!("{relative}.debug"));
    for file in [&stripped, &debug] {
        fs::create_dir_all(file.parent().expect("below work"))?;
    }
    Command::new("objcopy")
        .args(["--only-keep-debug", "--compress-debug-sections"])
        .arg(source)
        .arg(&debug)
        .in_root_if(root)
        .checked_output()?;
    // dh_strip's choices: libraries keep what dynamic linking needs.
    Command::new("strip")
        .args(["--remove-section=.comment", "--remove-section=.note"])
        .args(is_shared_object(relative).then_some("--strip-unneeded"))
        .arg("-o")
        .arg(&stripped)
        .arg(source)
        .in_root_if(root)
        .checked_output()?;
    Ok(Split {
        stripped,
        debug,
        debug_path: format!(
            "usr/lib/debug/.build-id/{}/{}.debug",
            &build_id[..2],
            &build_id[2..]
        ),
        build_id,
    })
}

/// The GNU build-id of an ELF file, in hex.
pub fn build_id(path: &Path) -> anyhow::Result<Option<String>> {
    Ok(inspect_file(path)?.build_id)
}

/// The `DT_SONAME` of a shared library, if it has one.
pub fn soname(path: &Path) -> anyhow::Result<Option<String>> {
    Ok(inspect_file(path)?.soname)
}

/// [`inspect`] of a file on disk.
pub fn inspect_file(path: &Path) -> anyhow::Result<Inspection> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    inspect(&bytes).with_context(|| format!("cannot read the ELF file {}", path.display()))
}

/// What the section headers of an ELF file say about it, read from its
/// bytes: no tool's output format is parsed on the way, and a tool that is
/// missing or fails cannot make a file look stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The sections that hold symbols or debug data with bytes in the file:
    /// `.symtab`, `.debug_*` and `.zdebug_*`. A stripped file has none.
    pub symbol_sections: Vec<String>,
    /// The GNU build-id note, in hex.
    pub build_id: Option<String>,
    /// `DT_NEEDED`: the sonames of the libraries it links against.
    pub needed: Vec<String>,
    /// `DT_SONAME`, for a shared library.
    pub soname: Option<String>,
    /// A 64-bit file: rpm marks its library requirements `()(64bit)`.
    pub class64: bool,
    /// `.gnu.version_r`: the symbol versions it needs, by the library
    /// (`DT_NEEDED` name) that must define them: `libc.so.6` →
    /// `GLIBC_2.2.5`, `GLIBC_2.34`, in the section's order.
    pub versions_needed: BTreeMap<String, Vec<String>>,
}

impl Inspection {
    pub fn is_stripped(&self) -> bool {
        self.symbol_sections.is_empty()
    }
}

const SHT_SYMTAB: u64 = 2;
const SHT_DYNAMIC: u64 = 6;
const SHT_NOTE: u64 = 7;
const SHT_NOBITS: u64 = 8;
/// `SHT_GNU_verneed`: the versions needed (`.gnu.version_r`).
const SHT_GNU_VERNEED: u64 = 0x6fff_fffe;
const NT_GNU_BUILD_ID: u64 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_SONAME: u64 = 14;
/// `e_shstrndx` when the index is too large for its field: it is then in
/// the `sh_link` of section 0 (and a section count of 0 in its `sh_size`).
const SHN_XINDEX: u64 = 0xffff;

/// Reads an ELF file's section headers, its notes and its dynamic section.
pub fn inspect(bytes: &[u8]) -> anyhow::Result<Inspection> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("no ELF magic");
    }
    let class64 = match bytes.get(4) {
        Some(1) => false,
        Some(2) => true,
        other => bail!("unknown ELF class {other:?}"),
    };
    let big_endian = match bytes.get(5) {
        Some(1) => false,
        Some(2) => true,
        other => bail!("unknown ELF byte order {other:?}"),
    };
    let elf = Reader {
        bytes,
        class64,
        big_endian,
    };
    let wide = elf.wide_size();
    let cut = || anyhow::anyhow!("the file ends inside its ELF header or section headers");
    let table = elf.wide(24 + 2 * wide).ok_or_else(cut)?;
    let entry_size = elf.half(34 + 3 * wide).ok_or_else(cut)?;
    let mut count = elf.half(36 + 3 * wide).ok_or_else(cut)?;
    let mut names_index = elf.half(38 + 3 * wide).ok_or_else(cut)?;
    if table == 0 {
        // No section headers at all: nothing says what the file holds.
        bail!("no section headers");
    }
    if count == 0 || names_index == SHN_XINDEX {
        let first = elf.section(table, entry_size, 0).ok_or_else(cut)?;
        if count == 0 {
            count = first.size;
        }
        if names_index == SHN_XINDEX {
            names_index = first.link;
        }
    }
    entry_size
        .checked_mul(count)
        .and_then(|size| elf.slice(table, size))
        .ok_or_else(cut)?;
    let sections: Vec<Section> = (0..count)
        .map(|index| elf.section(table, entry_size, index).ok_or_else(cut))
        .collect::<anyhow::Result<_>>()?;
    let names = sections
        .get(usize::try_from(names_index)?)
        .and_then(|names| elf.bytes_of(names))
        .context("the section names' table is missing")?;
    let mut inspection = Inspection {
        symbol_sections: Vec::new(),
        build_id: None,
        needed: Vec::new(),
        soname: None,
        class64,
        versions_needed: BTreeMap::new(),
    };
    for section in &sections {
        let name = string_at(names, section.name).unwrap_or_default();
        let symbols = section.kind == SHT_SYMTAB
            || name.starts_with(".debug_")
            || name.starts_with(".zdebug_");
        if symbols && section.kind != SHT_NOBITS && section.size > 0 {
            inspection.symbol_sections.push(name.to_owned());
        }
        if section.kind == SHT_NOTE && inspection.build_id.is_none() {
            if let Some(notes) = elf.bytes_of(section) {
                inspection.build_id = elf.gnu_build_id(notes, section.align);
            }
        }
        if section.kind == SHT_DYNAMIC {
            let (Some(entries), Some(strings)) = (
                elf.bytes_of(section),
                sections
                    .get(usize::try_from(section.link)?)
                    .and_then(|strings| elf.bytes_of(strings)),
            ) else {
                continue;
            };
            elf.dynamic_names(entries, strings, &mut inspection);
        }
        if section.kind == SHT_GNU_VERNEED {
            let (Some(entries), Some(strings)) = (
                elf.bytes_of(section),
                sections
                    .get(usize::try_from(section.link)?)
                    .and_then(|strings| elf.bytes_of(strings)),
            ) else {
                continue;
            };
            elf.versions_needed(entries, strings, &mut inspection.versions_needed);
        }
    }
    Ok(inspection)
}

/// One section header, as much of it as the checks need.
struct Section {
    name: u64,
    kind: u64,
    offset: u64,
    size: u64,
    link: u64,
    align: u64,
}

/// Reads fields of one ELF file's class and byte order; a field past the
/// end of the bytes is `None`, never read.
struct Reader<'a> {
    bytes: &'a [u8],
    class64: bool,
    big_endian: bool,
}

impl Reader<'_> {
    /// The size of an address or offset: 8 bytes in a 64-bit file, 4 in a 32-bit one.
    fn wide_size(&self) -> u64 {
        if self.class64 {
            8
        } else {
            4
        }
    }

    fn field(&self, at: u64, width: u64) -> Option<u64> {
        let raw = self.slice(at, width)?;
        let mut value = 0u64;
        for index in 0..raw.len() {
            let byte = if self.big_endian {
                raw[index]
            } else {
                raw[raw.len() - 1 - index]
            };
            value = value << 8 | u64::from(byte);
        }
        Some(value)
    }

    fn half(&self, at: u64) -> Option<u64> {
        self.field(at, 2)
    }

    fn word(&self, at: u64) -> Option<u64> {
        self.field(at, 4)
    }

    fn wide(&self, at: u64) -> Option<u64> {
        self.field(at, self.wide_size())
    }

    fn slice(&self, offset: u64, size: u64) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        self.bytes.get(start..end)
    }

    /// Header `index` of the table at `table`: `Elf64_Shdr` or `Elf32_Shdr`,
    /// whose fields after `sh_flags` are all as wide as an address but
    /// `sh_link` and `sh_info`.
    fn section(&self, table: u64, entry_size: u64, index: u64) -> Option<Section> {
        let at = table.checked_add(entry_size.checked_mul(index)?)?;
        let wide = self.wide_size();
        Some(Section {
            name: self.word(at)?,
            kind: self.word(at + 4)?,
            offset: self.wide(at + 8 + 2 * wide)?,
            size: self.wide(at + 8 + 3 * wide)?,
            link: self.word(at + 8 + 4 * wide)?,
            align: self.wide(at + 16 + 4 * wide)?,
        })
    }

    /// A section's bytes in the file; none for `SHT_NOBITS` (in a `.debug`
    /// file, every section but the symbols and notes is such a placeholder).
    fn bytes_of(&self, section: &Section) -> Option<&[u8]> {
        if section.kind == SHT_NOBITS {
            return None;
        }
        self.slice(section.offset, section.size)
    }

    /// The `NT_GNU_BUILD_ID` note among `notes`, in hex. Each note is its
    /// name's and its descriptor's sizes and its type (32-bit words in either
    /// class), then the name and the descriptor, each padded to the
    /// section's alignment (4, or 8 for some notes).
    fn gnu_build_id(&self, notes: &[u8], align: u64) -> Option<String> {
        let align = if align == 8 { 8 } else { 4 };
        let notes = Reader {
            bytes: notes,
            ..*self
        };
        let mut at = 0u64;
        while at + 12 <= notes.bytes.len() as u64 {
            let name_size = notes.word(at)?;
            let descriptor_size = notes.word(at + 4)?;
            let kind = notes.word(at + 8)?;
            let name_at = at + 12;
            let descriptor_at = name_at + name_size.next_multiple_of(align);
            let name = notes.slice(name_at, name_size)?;
            let descriptor = notes.slice(descriptor_at, descriptor_size)?;
            if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && descriptor.len() >= 2 {
                return Some(hex::encode(descriptor));
            }
            at = descriptor_at + descriptor_size.next_multiple_of(align);
        }
        None
    }

    /// `DT_NEEDED` and `DT_SONAME` of the dynamic section `entries`, their
    /// names in `strings` (the section its `sh_link` names).
    fn dynamic_names(&self, entries: &[u8], strings: &[u8], inspection: &mut Inspection) {
        let entries = Reader {
            bytes: entries,
            ..*self
        };
        let wide = self.wide_size();
        let mut at = 0u64;
        while let (Some(tag), Some(value)) = (entries.wide(at), entries.wide(at + wide)) {
            let name = || string_at(strings, value).map(str::to_owned);
            match tag {
                DT_NULL => break,
                DT_NEEDED => inspection.needed.extend(name()),
                DT_SONAME => inspection.soname = name(),
                _ => {}
            }
            at += 2 * wide;
        }
    }
}

impl Reader<'_> {
    /// The `Elf_Verneed` chain of a `.gnu.version_r` section, names in
    /// `strings`. Each entry (the same 16 bytes in both classes) is
    /// `vn_version`, `vn_cnt` (halves), `vn_file`, `vn_aux`, `vn_next`
    /// (words, the offsets relative to the entry); each of its `Elf_Vernaux`
    /// is `vna_hash` (word), `vna_flags`, `vna_other` (halves), `vna_name`,
    /// `vna_next`. A chain that loops or runs off the section ends there:
    /// every offset moves forward, and nothing past the bytes is read.
    fn versions_needed(
        &self,
        entries: &[u8],
        strings: &[u8],
        needed: &mut BTreeMap<String, Vec<String>>,
    ) {
        let entries = Reader {
            bytes: entries,
            ..*self
        };
        let mut at = 0u64;
        loop {
            let (Some(count), Some(file), Some(aux), Some(next)) = (
                entries.half(at + 2),
                entries.word(at + 4),
                entries.word(at + 8),
                entries.word(at + 12),
            ) else {
                return;
            };
            let names = needed
                .entry(string_at(strings, file).unwrap_or("?").to_owned())
                .or_default();
            let mut auxiliary = at + aux;
            for _ in 0..count {
                let (Some(name), Some(step)) =
                    (entries.word(auxiliary + 8), entries.word(auxiliary + 12))
                else {
                    break;
                };
                names.extend(string_at(strings, name).map(str::to_owned));
                if step == 0 {
                    break;
                }
                auxiliary += step;
            }
            if next == 0 {
                return;
            }
            at += next;
        }
    }
}

/// The NUL-terminated string at `offset` of a string table.
fn string_at(table: &[u8], offset: u64) -> Option<&str> {
    let rest = table.get(usize::try_from(offset).ok()?..)?;
    let end = rest.iter().position(|&byte| byte == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A program or library compiled here by `cc` from `source`, linked with
    /// `flags`.
    pub fn compile(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
        let source_file = dir.join(format!("{name}.c"));
        fs::write(&source_file, source).unwrap();
        let output = dir.join(name);
        Command::new("cc")
            .arg("-o")
            .arg(&output)
            .arg(&source_file)
            .arg(format!("-L{}", dir.display()))
            .args(flags)
            .checked_output()
            .unwrap();
        output
    }

    pub const PROGRAM: &str = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";

    /// The build-id as readelf prints it: the reader agrees with binutils.
    fn readelf_build_id(path: &Path) -> Option<String> {
        let output = Command::new("readelf")
            .arg("--notes")
            .arg(path)
            .checked_output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| line.split_once("Build ID: "))
            .map(|(_, id)| id.trim().to_owned())
    }

    #[test]
    fn a_program_with_symbols_is_not_stripped_and_strip_keeps_its_build_id() {
        let dir = crate::files::tempdir().unwrap();
        let program = compile(dir.path(), "hello", PROGRAM, &["-g", "-Wl,--build-id"]);
        let inspection = inspect_file(&program).unwrap();
        assert!(!inspection.is_stripped(), "{inspection:?}");
        for section in [".symtab", ".debug_info"] {
            assert!(
                inspection.symbol_sections.iter().any(|s| s == section),
                "{inspection:?}"
            );
        }
        let id = inspection.build_id.clone().expect("linked with --build-id");
        assert_eq!(Some(id.clone()), readelf_build_id(&program));
        assert_eq!(inspection.needed, ["libc.so.6"]);
        assert_eq!(inspection.soname, None);
        assert!(inspection.class64 == cfg!(target_pointer_width = "64"));

        let stripped = dir.path().join("hello.stripped");
        Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(&program)
            .checked_output()
            .unwrap();
        let after = inspect_file(&stripped).unwrap();
        assert!(after.is_stripped(), "{after:?}");
        assert_eq!(after.build_id, Some(id.clone()));
        assert_eq!(after.needed, ["libc.so.6"]);

        // strip -g keeps .symtab: symbols are still there.
        let debug_stripped = dir.path().join("hello.g");
        Command::new("strip")
            .args(["-g", "-o"])
            .arg(&debug_stripped)
            .arg(&program)
            .checked_output()
            .unwrap();
        assert_eq!(
            inspect_file(&debug_stripped).unwrap().symbol_sections,
            [".symtab"]
        );
    }

    #[test]
    fn a_program_linked_without_a_build_id_has_none() {
        let dir = crate::files::tempdir().unwrap();
        let program = compile(dir.path(), "bare", PROGRAM, &["-Wl,--build-id=none"]);
        let inspection = inspect_file(&program).unwrap();
        assert_eq!(inspection.build_id, None);
        assert_eq!(readelf_build_id(&program), None);
        let error = split(&program, "usr/bin/bare", &dir.path().join("work"), None)
            .err()
            .expect("no build-id, no split");
        assert!(
            error
                .to_string()
                .contains("usr/bin/bare has no GNU build-id"),
            "{error}"
        );
    }

    /// The .deb's stripping: a stripped copy with the build-id, and the
    /// symbols (compressed, as dh_strip leaves them) in a file named by it.
    #[test]
    fn split_leaves_a_stripped_copy_and_a_debug_file_with_the_symbols() {
        let dir = crate::files::tempdir().unwrap();
        let library = compile(
            dir.path(),
            "libdemo.so.1.0",
            "int demo(int x) { return x + 1; }\n",
            &[
                "-g",
                "-shared",
                "-fPIC",
                "-Wl,--build-id",
                "-Wl,-soname,libdemo.so.1",
            ],
        );
        let split = split(
            &library,
            "usr/lib/libdemo.so.1.0",
            &dir.path().join("work"),
            None,
        )
        .unwrap();
        let stripped = inspect_file(&split.stripped).unwrap();
        let debug = inspect_file(&split.debug).unwrap();
        assert!(stripped.is_stripped(), "{stripped:?}");
        assert_eq!(stripped.soname.as_deref(), Some("libdemo.so.1"));
        assert_eq!(stripped.build_id.as_deref(), Some(split.build_id.as_str()));
        assert!(
            debug.symbol_sections.iter().any(|s| s == ".debug_info"),
            "{debug:?}"
        );
        assert_eq!(debug.build_id, stripped.build_id);
        assert_eq!(
            split.debug_path,
            format!(
                "usr/lib/debug/.build-id/{}/{}.debug",
                &split.build_id[..2],
                &split.build_id[2..]
            )
        );
        assert_eq!(soname(&library).unwrap().as_deref(), Some("libdemo.so.1"));

        // A program linked against it needs it by its soname.
        fs::copy(&library, dir.path().join("libdemo.so")).unwrap();
        let program = compile(
            dir.path(),
            "uses-demo",
            "int demo(int);\nint main(void) { return demo(-1); }\n",
            &["-Wl,--build-id", "-ldemo"],
        );
        let needed = inspect_file(&program).unwrap().needed;
        assert!(needed.iter().any(|n| n == "libdemo.so.1"), "{needed:?}");
    }

    /// `readelf -V`'s version needs: `File: libc.so.6` starts a library,
    /// each `Name: GLIBC_2.34` under it a version it needs.
    fn readelf_versions_needed(path: &Path) -> BTreeMap<String, Vec<String>> {
        let output = Command::new("readelf")
            .arg("-V")
            .arg(path)
            .checked_output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let needs = text
            .split_once("Version needs section")
            .map_or("", |(_, rest)| rest);
        let mut needed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut library = None;
        for line in needs.lines() {
            let field = |key: &str| {
                line.split_once(key)
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .map(str::to_owned)
            };
            if let Some(file) = field("File: ") {
                needed.entry(file.clone()).or_default();
                library = Some(file);
            } else if let (Some(name), Some(library)) = (field("Name: "), &library) {
                needed.get_mut(library).unwrap().push(name);
            }
        }
        needed
    }

    /// The reader and binutils agree on what this machine's own programs
    /// and one compiled here need, library by library, in order.
    #[test]
    fn versions_needed_are_readelfs() {
        let dir = crate::files::tempdir().unwrap();
        let program = compile(dir.path(), "hello", PROGRAM, &["-Wl,--build-id"]);
        for path in [Path::new("/bin/ls"), Path::new("/bin/sh"), &program] {
            let expected = readelf_versions_needed(path);
            let read = inspect_file(path).unwrap().versions_needed;
            assert_eq!(read, expected, "{}", path.display());
            assert!(
                read.get("libc.so.6")
                    .is_some_and(|names| names.iter().any(|n| n.starts_with("GLIBC_2."))),
                "{}: {read:?}",
                path.display()
            );
        }
        // A library that needs no versioned symbol has no section, and none.
        let library = compile(
            dir.path(),
            "libplain.so",
            "int plain(int x) { return x; }\n",
            &["-shared", "-fPIC", "-nostdlib"],
        );
        assert_eq!(readelf_versions_needed(&library), BTreeMap::new());
        assert_eq!(
            inspect_file(&library).unwrap().versions_needed,
            BTreeMap::new()
        );
    }

    /// Cut anywhere, a file is refused or read, never read past its end.
    #[test]
    fn a_cut_elf_file_is_refused_not_overrun() {
        let dir = crate::files::tempdir().unwrap();
        let program = compile(dir.path(), "hello", PROGRAM, &["-Wl,--build-id"]);
        let bytes = fs::read(&program).unwrap();
        for length in [0, 3, 4, 6, 20, 63, 64, bytes.len() / 2, bytes.len() - 1] {
            let _ = inspect(&bytes[..length]);
        }
        for length in [0, 3, 20, 63] {
            assert!(inspect(&bytes[..length]).is_err(), "{length} bytes");
        }
        assert!(inspect(b"#!/bin/sh\n").is_err());
        // Section headers sit at the end: a file cut before them is refused.
        assert!(inspect(&bytes[..bytes.len() - 1]).is_err());
    }
}
