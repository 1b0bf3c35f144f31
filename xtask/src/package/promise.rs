//! What the RPMs and .debs promise about the ELF files they ship, checked on
//! the packages as written: their payloads are read back (`rpm2cpio`, the
//! .deb's own `data.tar.gz`), never the directories they were made from.
//!
//! Every ELF file of a binary package is stripped and carries its GNU
//! build-id; its symbols are in the debug package (`-debuginfo`, `-dbgsym`)
//! at `/usr/lib/debug/.build-id/xx/yyyy.debug`; no debug package is empty;
//! every library an ELF file links against is a requirement of its package.
//! A host without elfutils once made rpmbuild ship every binary unstripped
//! and an empty `-debuginfo`, and say nothing: what the format promises is
//! checked here, whatever its tools said.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    io::{self, Read},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use super::elf::{self, Inspection};
use crate::process::Command;

/// One package as written, read back.
#[derive(Debug)]
pub struct Written {
    pub file: PathBuf,
    /// The package's name, from its header or control file.
    pub name: String,
    /// Holds the symbols of others (`-debuginfo`, `-dbgsym`).
    pub debug: bool,
    /// Every file and symlink of its payload, by absolute path.
    pub members: BTreeMap<String, Member>,
    /// What it requires (RPM `REQUIRENAME`) or depends on (the package names
    /// of a .deb's `Depends`, every alternative).
    pub requires: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Elf(Inspection),
    Symlink(String),
    Other,
}

/// The promises these packages break, one line each, or none.
#[derive(Debug)]
pub struct Broken(pub Vec<String>);

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        let mut lines: Vec<String> = self
            .0
            .iter()
            .take(SHOWN)
            .map(|l| format!("  {l}"))
            .collect();
        if self.0.len() > SHOWN {
            lines.push(format!("  and {} more", self.0.len() - SHOWN));
        }
        f.write_str(&lines.join("\n"))
    }
}

/// Where a debug package holds the symbols of the file with this build-id.
pub fn debug_path(build_id: &str) -> String {
    format!(
        "/usr/lib/debug/.build-id/{}/{}.debug",
        &build_id[..2],
        &build_id[2..]
    )
}

/// How a format names its debug packages and states library requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Every `-debuginfo` holds symbols for any package; a library
    /// requirement is its soname (`libc.so.6()(64bit)`).
    Rpm,
    /// `<name>-dbgsym` holds the symbols of `<name>`; a library dependency
    /// is a package, found by `dpkg-shlibdeps`. `named` are the dependencies
    /// the control file states by name, not computed from ELF files.
    Deb { named: &'static [&'static str] },
}

/// What the packages of a step were checked to hold, when they keep every promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// ELF files in the binary packages: each stripped, with its build-id,
    /// its symbols in a debug package and its libraries required.
    pub elf_files: usize,
    /// Debug packages, none of them empty.
    pub debug_packages: usize,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ELF files stripped with build-ids, their symbols in {} debug packages, \
             their libraries required",
            self.elf_files, self.debug_packages
        )
    }
}

/// Every promise of `packages`, written together in one format's step.
pub fn check(packages: &[Written], format: Format) -> Result<Held, Broken> {
    let set = Set::of(packages, format);
    let mut broken = Vec::new();
    let mut held = Held {
        elf_files: 0,
        debug_packages: packages.iter().filter(|package| package.debug).count(),
    };
    for package in packages.iter().filter(|package| package.debug) {
        let holds_one = package
            .members
            .keys()
            .any(|path| path.ends_with(".debug") && symbols_at(package, path).is_some());
        if !holds_one {
            broken.push(format!(
                "{}: a debug package with no .debug file",
                file_name(&package.file)
            ));
        }
    }
    for package in packages.iter().filter(|package| !package.debug) {
        for (path, member) in &package.members {
            let Member::Elf(inspection) = member else {
                continue;
            };
            held.elf_files += 1;
            let problems = set.problems(package, inspection);
            if !problems.is_empty() {
                broken.push(format!(
                    "{}: {path}: {}",
                    file_name(&package.file),
                    problems.join("; ")
                ));
            }
        }
    }
    if broken.is_empty() {
        Ok(held)
    } else {
        Err(Broken(broken))
    }
}

/// The packages of one step, and what the checks of each look up in the others.
struct Set<'a> {
    packages: &'a [Written],
    format: Format,
    names: BTreeSet<&'a str>,
    /// Which package ships each soname.
    provided: BTreeMap<&'a str, &'a str>,
}

impl<'a> Set<'a> {
    fn of(packages: &'a [Written], format: Format) -> Set<'a> {
        let provided = packages
            .iter()
            .filter(|package| !package.debug)
            .flat_map(|package| {
                package.members.values().filter_map(|member| match member {
                    Member::Elf(Inspection {
                        soname: Some(soname),
                        ..
                    }) => Some((soname.as_str(), package.name.as_str())),
                    _ => None,
                })
            })
            .collect();
        Set {
            packages,
            format,
            names: packages.iter().map(|p| p.name.as_str()).collect(),
            provided,
        }
    }

    /// The debug packages that may hold the symbols of `package`'s files.
    fn debug_packages_of(&self, package: &Written) -> Vec<&'a Written> {
        self.packages
            .iter()
            .filter(|other| other.debug)
            .filter(|other| match self.format {
                Format::Rpm => true,
                Format::Deb { .. } => other.name == format!("{}-dbgsym", package.name),
            })
            .collect()
    }

    /// The promises one ELF file of `package` breaks.
    fn problems(&self, package: &Written, inspection: &Inspection) -> Vec<String> {
        let mut problems = Vec::new();
        if !inspection.is_stripped() {
            problems.push(format!(
                "not stripped (it has {})",
                summary(&inspection.symbol_sections)
            ));
        }
        match &inspection.build_id {
            None => problems.push("no GNU build-id".to_owned()),
            Some(id) => {
                let wanted = debug_path(id);
                let debug_packages = self.debug_packages_of(package);
                let found = debug_packages.iter().find_map(|debug| {
                    symbols_at(debug, &wanted)
                        .filter(|symbols| symbols.build_id.as_deref() == Some(id.as_str()))
                });
                if found.is_none() {
                    let names: Vec<&str> = debug_packages.iter().map(|d| d.name.as_str()).collect();
                    problems.push(if names.is_empty() {
                        format!("no debug package holds its symbols ({wanted})")
                    } else {
                        format!("no symbols at {wanted} in {}", names.join(" or "))
                    });
                }
            }
        }
        for soname in &inspection.needed {
            let provider = self.provided.get(soname.as_str()).copied();
            if let Some(missing) =
                missing_requirement(self.format, package, soname, provider, &self.names)
            {
                problems.push(format!("needs {soname}, but {missing}"));
            }
        }
        problems
    }
}

/// Why `package` does not require the library `soname` one of its ELF files
/// needs (`provider`: the package of the set that ships it, if one does).
fn missing_requirement(
    format: Format,
    package: &Written,
    soname: &str,
    provider: Option<&str>,
    set: &BTreeSet<&str>,
) -> Option<String> {
    match format {
        Format::Rpm => {
            // rpm's elfdeps requires every DT_NEEDED, even one the package
            // provides itself: `libpq.so.5()(64bit)`, `libc.so.6(GLIBC_2.34)(64bit)`.
            let required = package
                .requires
                .iter()
                .any(|r| r == soname || r.starts_with(&format!("{soname}(")));
            (!required).then(|| {
                format!(
                    "{} does not require it (rpm computed no library requirement)",
                    package.name
                )
            })
        }
        Format::Deb { named } => match provider {
            Some(provider) if provider == package.name => None,
            Some(provider) => (!package.requires.contains(provider)).then(|| {
                format!(
                    "{} does not depend on {provider}, which ships it",
                    package.name
                )
            }),
            None => {
                let computed = package
                    .requires
                    .iter()
                    .any(|r| !set.contains(r.as_str()) && !named.contains(&r.as_str()));
                (!computed).then(|| {
                    format!(
                        "{} depends on no library package (dpkg-shlibdeps computed no Depends)",
                        package.name
                    )
                })
            }
        },
    }
}

/// `.symtab and 8 debug sections`: what an unstripped file still holds.
fn summary(sections: &[String]) -> String {
    let debug = sections.iter().filter(|name| *name != ".symtab").count();
    let mut parts = Vec::new();
    if sections.iter().any(|name| name == ".symtab") {
        parts.push(".symtab".to_owned());
    }
    match debug {
        0 => {}
        1 => parts.push("1 debug section".to_owned()),
        count => parts.push(format!("{count} debug sections")),
    }
    parts.join(" and ")
}

/// The ELF file at `path` of a package, through its symlinks, when it holds
/// symbols: a `.debug` file worth shipping.
fn symbols_at<'a>(package: &'a Written, path: &str) -> Option<&'a Inspection> {
    let mut path = path.to_owned();
    // More links than this is a loop.
    for _ in 0..16 {
        match package.members.get(&path)? {
            Member::Elf(inspection) if !inspection.symbol_sections.is_empty() => {
                return Some(inspection)
            }
            Member::Symlink(target) => path = resolve(&path, target),
            _ => return None,
        }
    }
    None
}

/// The absolute path a symlink at `link` to `target` names.
fn resolve(link: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        link.split('/').filter(|p| !p.is_empty()).collect()
    };
    if !target.starts_with('/') {
        parts.pop();
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// A binary RPM read back: its name and requirements from the header (by
/// an rpm with a throwaway database in `scratch`), its payload through
/// `rpm2cpio`.
pub fn read_rpm(path: &Path, scratch: &Path) -> anyhow::Result<Written> {
    let database = scratch.join("rpmdb");
    std::fs::create_dir_all(&database)
        .with_context(|| format!("cannot create {}", database.display()))?;
    let header = Command::new("rpm")
        .arg("--dbpath")
        .arg(&database)
        .args(["-qp", "--queryformat", "%{NAME}\n[%{REQUIRENAME}\n]"])
        .arg(path)
        .checked_output()?;
    let header = String::from_utf8_lossy(&header.stdout);
    let mut lines = header.lines();
    let name = lines
        .next()
        .filter(|name| !name.is_empty())
        .with_context(|| format!("rpm names no package in {}", path.display()))?
        .to_owned();
    let requires = lines.map(str::to_owned).collect();
    let mut payload = Command::new("rpm2cpio").arg(path).read_stdout()?;
    let members = read_cpio(&mut payload)
        .with_context(|| format!("cannot read the payload of {}", path.display()))?;
    Ok(Written {
        file: path.to_owned(),
        debug: name.ends_with("-debuginfo"),
        name,
        members,
        requires,
    })
}

/// The members of a `newc` cpio archive (what rpm2cpio writes): each
/// header is the magic `070701` and thirteen 8-digit hex fields, then the
/// name, then the data, each padded to 4 bytes; a hard link's data comes
/// with its last name only. Read to its end, so the writer's exit status is
/// seen.
pub fn read_cpio(archive: &mut impl Read) -> anyhow::Result<BTreeMap<String, Member>> {
    const FILE_TYPE: u32 = 0o170_000;
    const REGULAR: u32 = 0o100_000;
    const SYMLINK: u32 = 0o120_000;
    let mut members = BTreeMap::new();
    let mut linked: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    loop {
        let mut header = [0u8; 110];
        archive
            .read_exact(&mut header)
            .context("the archive ends before its trailer")?;
        if &header[..6] != b"070701" {
            bail!("no newc cpio header after {} members", members.len());
        }
        let field = |index: usize| -> anyhow::Result<u32> {
            let digits = std::str::from_utf8(&header[6 + 8 * index..14 + 8 * index])?;
            Ok(u32::from_str_radix(digits, 16)?)
        };
        let (inode, mode, links, size, name_size) =
            (field(0)?, field(1)?, field(4)?, field(6)?, field(11)?);
        let mut name = vec![0u8; name_size as usize];
        archive.read_exact(&mut name)?;
        skip(archive, padding(110 + u64::from(name_size)))?;
        let name = String::from_utf8_lossy(name.strip_suffix(b"\0").unwrap_or(&name)).into_owned();
        if name == "TRAILER!!!" {
            io::copy(archive, &mut io::sink())?;
            return Ok(members);
        }
        let mut data = vec![0u8; size as usize];
        archive.read_exact(&mut data)?;
        skip(archive, padding(u64::from(size)))?;
        let path = format!("/{}", name.trim_start_matches("./").trim_start_matches('/'));
        let member = match mode & FILE_TYPE {
            REGULAR if links > 1 && size == 0 => {
                // A hard link's data comes with its last name only.
                linked.entry(inode).or_default().push(path);
                continue;
            }
            REGULAR => member_of(&path, &data)?,
            SYMLINK => Member::Symlink(String::from_utf8_lossy(&data).into_owned()),
            _ => continue,
        };
        for other in linked.remove(&inode).unwrap_or_default() {
            members.insert(other, member.clone());
        }
        members.insert(path, member);
    }
}

/// A .deb read back: its control file's `Package` and `Depends`, and its
/// `data.tar.gz`, from the `ar` archive as written.
pub fn read_deb(path: &Path) -> anyhow::Result<Written> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let archive =
        ar_members(&bytes).with_context(|| format!("{} is no ar archive", path.display()))?;
    let member = |wanted: &str| {
        archive
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, data)| *data)
            .with_context(|| format!("{} has no {wanted}", path.display()))
    };
    let control_text = control_file(member("control.tar.gz")?)
        .with_context(|| format!("cannot read the control file of {}", path.display()))?;
    let field = |name: &str| -> String {
        let mut value = String::new();
        let mut inside = false;
        for line in control_text.lines() {
            if let Some(rest) = line.strip_prefix(&format!("{name}:")) {
                value.push_str(rest.trim());
                inside = true;
            } else if inside && line.starts_with([' ', '\t']) {
                value.push(' ');
                value.push_str(line.trim());
            } else {
                inside = false;
            }
        }
        value
    };
    let name = field("Package");
    if name.is_empty() {
        bail!("the control file of {} names no package", path.display());
    }
    let requires = field("Depends")
        .split([',', '|'])
        .filter_map(|part| part.split_whitespace().next())
        .map(|name| name.split(':').next().unwrap_or(name).to_owned())
        .collect();
    let members = tar_members(member("data.tar.gz")?)
        .with_context(|| format!("cannot read data.tar.gz of {}", path.display()))?;
    Ok(Written {
        file: path.to_owned(),
        debug: name.ends_with("-dbgsym"),
        name,
        members,
        requires,
    })
}

/// The text of `./control` in a control.tar.gz.
fn control_file(gzipped: &[u8]) -> anyhow::Result<String> {
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(gzipped));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.display().to_string().trim_start_matches("./") == "control" {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            return Ok(text);
        }
    }
    bail!("no ./control")
}

/// The files and symlinks of a gzipped tar (gzip in several members, as the
/// tool writes it), by absolute path.
fn tar_members(gzipped: &[u8]) -> anyhow::Result<BTreeMap<String, Member>> {
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(gzipped));
    let mut members = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.display().to_string();
        let path = format!("/{}", name.trim_start_matches("./").trim_start_matches('/'));
        let member = match entry.header().entry_type() {
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                member_of(&path, &data)?
            }
            tar::EntryType::Symlink => Member::Symlink(
                entry
                    .link_name()?
                    .map(|target| target.display().to_string())
                    .unwrap_or_default(),
            ),
            _ => continue,
        };
        members.insert(path, member);
    }
    Ok(members)
}

/// The members of a common-format `ar` archive: `!<arch>\n`, then for each a
/// 60-byte header (the name in 16 bytes, the size in decimal at byte 48)
/// and the data, padded to an even size.
pub(super) fn ar_members(bytes: &[u8]) -> anyhow::Result<Vec<(&str, &[u8])>> {
    let mut rest = bytes
        .strip_prefix(b"!<arch>\n".as_slice())
        .context("no ar magic")?;
    let mut members = Vec::new();
    while !rest.is_empty() {
        let header = rest.get(..60).context("a member header is cut")?;
        let name = std::str::from_utf8(&header[..16])?
            .trim_end()
            .trim_end_matches('/');
        let size: usize = std::str::from_utf8(&header[48..58])?.trim().parse()?;
        let data = rest.get(60..60 + size).context("a member is cut")?;
        members.push((name, data));
        rest = rest.get(60 + size + size % 2..).unwrap_or_default();
    }
    Ok(members)
}

/// A regular file of a payload: an ELF file is read for its sections.
fn member_of(path: &str, data: &[u8]) -> anyhow::Result<Member> {
    if data.starts_with(b"\x7fELF") {
        let inspection =
            elf::inspect(data).with_context(|| format!("cannot read the ELF file {path}"))?;
        Ok(Member::Elf(inspection))
    } else {
        Ok(Member::Other)
    }
}

fn padding(length: u64) -> u64 {
    length.next_multiple_of(4) - length
}

fn skip(reader: &mut impl Read, bytes: u64) -> io::Result<()> {
    let copied = io::copy(&mut reader.take(bytes), &mut io::sink())?;
    if copied < bytes {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::elf::tests::{compile, PROGRAM};

    /// Real ELF files, compiled here and split as the formats split them.
    struct Files {
        program: Inspection,
        program_stripped: Inspection,
        program_debug: Inspection,
        program_without_id: Inspection,
        library_stripped: Inspection,
        library_debug: Inspection,
    }

    fn files() -> Files {
        let dir = crate::files::tempdir().unwrap();
        let work = dir.path().join("work");
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
        std::fs::copy(&library, dir.path().join("libdemo.so")).unwrap();
        let source = format!("int demo(int);\n{PROGRAM}int twice(void) {{ return demo(1); }}\n");
        let program = compile(
            dir.path(),
            "hello",
            &source,
            &["-g", "-Wl,--build-id", "-ldemo"],
        );
        let bare = compile(dir.path(), "bare", PROGRAM, &["-Wl,--build-id=none"]);
        let stripped_bare = dir.path().join("bare.stripped");
        Command::new("strip")
            .arg("-o")
            .arg(&stripped_bare)
            .arg(&bare)
            .checked_output()
            .unwrap();
        let program_split = elf::split(&program, "usr/bin/hello", &work, None).unwrap();
        let library_split = elf::split(&library, "usr/lib/libdemo.so.1.0", &work, None).unwrap();
        let inspect = |path: &Path| elf::inspect_file(path).unwrap();
        Files {
            program: inspect(&program),
            program_stripped: inspect(&program_split.stripped),
            program_debug: inspect(&program_split.debug),
            program_without_id: inspect(&stripped_bare),
            library_stripped: inspect(&library_split.stripped),
            library_debug: inspect(&library_split.debug),
        }
    }

    fn written(
        file: &str,
        name: &str,
        debug: bool,
        members: Vec<(String, Member)>,
        requires: &[&str],
    ) -> Written {
        Written {
            file: PathBuf::from("/dist").join(file),
            name: name.to_owned(),
            debug,
            members: members.into_iter().collect(),
            requires: requires.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn id_of(inspection: &Inspection) -> &str {
        inspection.build_id.as_deref().unwrap()
    }

    /// `demo`, `demo-libs` and `demo-debuginfo`, as rpmbuild lays them out:
    /// the build-id link of each `.debug` file points at it, named by path.
    fn rpms(files: &Files, program: &Inspection) -> Vec<Written> {
        let program_debug_file = "/usr/lib/debug/usr/bin/hello-1-1.x86_64.debug";
        let program_link = debug_path(id_of(&files.program_debug));
        let program_target = "../../usr/bin/hello-1-1.x86_64.debug";
        assert_eq!(resolve(&program_link, program_target), program_debug_file);
        vec![
            written(
                "demo-1-1.x86_64.rpm",
                "demo",
                false,
                vec![
                    ("/usr/bin/hello".into(), Member::Elf(program.clone())),
                    ("/usr/share/doc/demo/README".into(), Member::Other),
                ],
                &[
                    "libc.so.6()(64bit)",
                    "libc.so.6(GLIBC_2.2.5)(64bit)",
                    "libdemo.so.1()(64bit)",
                ],
            ),
            written(
                "demo-libs-1-1.x86_64.rpm",
                "demo-libs",
                false,
                vec![
                    (
                        "/usr/lib/libdemo.so.1.0".into(),
                        Member::Elf(files.library_stripped.clone()),
                    ),
                    (
                        "/usr/lib/libdemo.so.1".into(),
                        Member::Symlink("libdemo.so.1.0".into()),
                    ),
                ],
                &["libc.so.6()(64bit)"],
            ),
            written(
                "demo-debuginfo-1-1.x86_64.rpm",
                "demo-debuginfo",
                true,
                vec![
                    (
                        program_debug_file.into(),
                        Member::Elf(files.program_debug.clone()),
                    ),
                    (program_link, Member::Symlink(program_target.into())),
                    (
                        debug_path(id_of(&files.library_debug)),
                        Member::Elf(files.library_debug.clone()),
                    ),
                ],
                &[],
            ),
        ]
    }

    fn broken(packages: &[Written], format: Format) -> Vec<String> {
        check(packages, format)
            .err()
            .map(|broken| broken.0)
            .unwrap_or_default()
    }

    #[test]
    fn rpms_that_keep_their_promises_pass_and_each_broken_one_is_named() {
        let files = files();
        assert_eq!(
            broken(&rpms(&files, &files.program_stripped), Format::Rpm),
            Vec::<String>::new()
        );

        // Shipped with its symbols.
        let lines = broken(&rpms(&files, &files.program), Format::Rpm);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "demo-1-1.x86_64.rpm: /usr/bin/hello: not stripped (it has .symtab and "
            ),
            "{lines:?}"
        );

        // No build-id: nothing can match it with its symbols.
        let lines = broken(&rpms(&files, &files.program_without_id), Format::Rpm);
        assert_eq!(
            lines,
            ["demo-1-1.x86_64.rpm: /usr/bin/hello: no GNU build-id"]
        );

        // The library requirement rpm did not compute.
        let mut packages = rpms(&files, &files.program_stripped);
        packages[0].requires.remove("libdemo.so.1()(64bit)");
        assert_eq!(
            broken(&packages, Format::Rpm),
            ["demo-1-1.x86_64.rpm: /usr/bin/hello: needs libdemo.so.1, but demo does not require it (rpm computed no library requirement)"]
        );

        // An empty -debuginfo: issue 22's packages.
        let mut packages = rpms(&files, &files.program_stripped);
        packages[2].members.clear();
        let lines = broken(&packages, Format::Rpm);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(
            lines[0],
            "demo-debuginfo-1-1.x86_64.rpm: a debug package with no .debug file"
        );
        assert_eq!(
            lines[1],
            format!(
                "demo-1-1.x86_64.rpm: /usr/bin/hello: no symbols at {} in demo-debuginfo",
                debug_path(id_of(&files.program_stripped))
            )
        );
        assert!(lines[2]
            .starts_with("demo-libs-1-1.x86_64.rpm: /usr/lib/libdemo.so.1.0: no symbols at "));

        // A .debug file under the build-id, but another file's symbols.
        let mut packages = rpms(&files, &files.program_stripped);
        let program_link = debug_path(id_of(&files.program_debug));
        packages[2].members.insert(
            program_link.clone(),
            Member::Elf(files.library_debug.clone()),
        );
        assert_eq!(
            broken(&packages, Format::Rpm),
            [format!("demo-1-1.x86_64.rpm: /usr/bin/hello: no symbols at {program_link} in demo-debuginfo")]
        );

        // The build-id link pointing nowhere in the package.
        let mut packages = rpms(&files, &files.program_stripped);
        packages[2].members.insert(
            program_link,
            Member::Symlink("../../usr/bin/elsewhere.debug".into()),
        );
        assert_eq!(broken(&packages, Format::Rpm).len(), 1);
    }

    /// `demo` and `demo-libs` with their `-dbgsym`, as the .deb writer lays them out.
    fn debs(files: &Files) -> Vec<Written> {
        let debug_member = |inspection: &Inspection| {
            vec![(
                debug_path(id_of(inspection)),
                Member::Elf(inspection.clone()),
            )]
        };
        vec![
            written(
                "demo_1-1_amd64.deb",
                "demo",
                false,
                vec![(
                    "/usr/bin/hello".into(),
                    Member::Elf(files.program_stripped.clone()),
                )],
                &["demo-libs", "libc6", "passwd"],
            ),
            written(
                "demo-dbgsym_1-1_amd64.deb",
                "demo-dbgsym",
                true,
                debug_member(&files.program_debug),
                &["demo"],
            ),
            written(
                "demo-libs_1-1_amd64.deb",
                "demo-libs",
                false,
                vec![(
                    "/usr/lib/libdemo.so.1.0".into(),
                    Member::Elf(files.library_stripped.clone()),
                )],
                &["libc6"],
            ),
            written(
                "demo-libs-dbgsym_1-1_amd64.deb",
                "demo-libs-dbgsym",
                true,
                debug_member(&files.library_debug),
                &["demo-libs"],
            ),
        ]
    }

    #[test]
    fn debs_that_keep_their_promises_pass_and_each_broken_one_is_named() {
        let files = files();
        let format = Format::Deb { named: &["passwd"] };
        assert_eq!(broken(&debs(&files), format), Vec::<String>::new());

        // The sibling that ships a library it needs.
        let mut packages = debs(&files);
        packages[0].requires.remove("demo-libs");
        assert_eq!(
            broken(&packages, format),
            ["demo_1-1_amd64.deb: /usr/bin/hello: needs libdemo.so.1, but demo does not depend on demo-libs, which ships it"]
        );

        // Nothing from dpkg-shlibdeps: only the names the control file states.
        let mut packages = debs(&files);
        packages[0].requires.remove("libc6");
        assert_eq!(
            broken(&packages, format),
            ["demo_1-1_amd64.deb: /usr/bin/hello: needs libc.so.6, but demo depends on no library package (dpkg-shlibdeps computed no Depends)"]
        );

        // Symbols in another package's -dbgsym are not this one's.
        let mut packages = debs(&files);
        let moved = packages[1].members.clone();
        packages[3].members.extend(moved);
        packages.remove(1);
        assert_eq!(
            broken(&packages, format),
            [format!(
                "demo_1-1_amd64.deb: /usr/bin/hello: no debug package holds its symbols ({})",
                debug_path(id_of(&files.program_stripped))
            )]
        );

        // A -dbgsym whose file holds no symbols is empty.
        let mut packages = debs(&files);
        let path = debug_path(id_of(&files.program_debug));
        packages[1]
            .members
            .insert(path, Member::Elf(files.program_stripped.clone()));
        let lines = broken(&packages, format);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            "demo-dbgsym_1-1_amd64.deb: a debug package with no .debug file"
        );
    }

    #[test]
    fn symlinks_resolve_within_the_package() {
        assert_eq!(
            resolve("/usr/lib/libpq.so.5", "libpq.so.5.15"),
            "/usr/lib/libpq.so.5.15"
        );
        assert_eq!(
            resolve(
                "/usr/lib/debug/.build-id/ab/cdef.debug",
                "../../usr/bin/x.debug"
            ),
            "/usr/lib/debug/usr/bin/x.debug"
        );
        assert_eq!(resolve("/a/b/c", "/d/./e"), "/d/e");
        assert_eq!(resolve("/a", "../../../b"), "/b");
    }

    /// rpm2cpio's format, as `cpio -o -H newc` writes it: files, a symlink,
    /// and a hard link (whose data only its last name carries).
    #[test]
    fn a_newc_archive_from_cpio_is_read_member_by_member() {
        let dir = crate::files::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        compile(&tree.join("usr/bin"), "hello", PROGRAM, &["-Wl,--build-id"]);
        std::fs::hard_link(tree.join("usr/bin/hello"), tree.join("usr/bin/hello-again")).unwrap();
        std::fs::write(tree.join("usr/bin/notes"), "odd length\n").unwrap();
        std::os::unix::fs::symlink("hello", tree.join("usr/bin/hi")).unwrap();
        std::fs::remove_file(tree.join("usr/bin/hello.c")).unwrap();
        let archive = Command::new("cpio")
            .args(["-o", "-H", "newc", "--quiet"])
            .cwd(&tree)
            .stdin_bytes(
                "./usr\n./usr/bin\n./usr/bin/hello\n./usr/bin/hello-again\n./usr/bin/hi\n./usr/bin/notes\n",
            )
            .checked_output()
            .unwrap()
            .stdout;
        let members = read_cpio(&mut archive.as_slice()).unwrap();
        let names: Vec<&str> = members.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "/usr/bin/hello",
                "/usr/bin/hello-again",
                "/usr/bin/hi",
                "/usr/bin/notes"
            ]
        );
        let hello = elf::inspect_file(&tree.join("usr/bin/hello")).unwrap();
        assert_eq!(members["/usr/bin/hello"], Member::Elf(hello.clone()));
        assert_eq!(members["/usr/bin/hello-again"], Member::Elf(hello));
        assert_eq!(members["/usr/bin/hi"], Member::Symlink("hello".into()));
        assert_eq!(members["/usr/bin/notes"], Member::Other);
        // Cut before its trailer, the archive is refused.
        assert!(read_cpio(&mut &archive[..archive.len() / 2]).is_err());
    }

    /// A .deb as dpkg-deb builds it (gzip members, asked for: its default is
    /// xz) is read back: name, every dependency's package name, its files.
    #[test]
    fn a_deb_from_dpkg_deb_is_read_back() {
        let dir = crate::files::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        compile(&tree.join("usr/bin"), "hello", PROGRAM, &["-Wl,--build-id"]);
        std::fs::remove_file(tree.join("usr/bin/hello.c")).unwrap();
        std::os::unix::fs::symlink("hello", tree.join("usr/bin/hi")).unwrap();
        std::fs::write(
            tree.join("DEBIAN/control"),
            "Package: demo\nVersion: 1-1\nArchitecture: amd64\nMaintainer: Release Engineering <release-engineering@example.com>\n\
             Depends: libc6 (>= 2.34), demo-libs (= 1-1) | other,\n foo:any\nDescription: a demo\n of reading back.\n",
        )
        .unwrap();
        let deb = dir.path().join("demo_1-1_amd64.deb");
        Command::new("dpkg-deb")
            .args(["-Zgzip", "--root-owner-group", "--build"])
            .arg(&tree)
            .arg(&deb)
            .checked_output()
            .unwrap();
        let written = read_deb(&deb).unwrap();
        assert_eq!(written.name, "demo");
        assert!(!written.debug);
        let requires: Vec<&str> = written.requires.iter().map(String::as_str).collect();
        assert_eq!(requires, ["demo-libs", "foo", "libc6", "other"]);
        let hello = elf::inspect_file(&tree.join("usr/bin/hello")).unwrap();
        assert_eq!(written.members["/usr/bin/hello"], Member::Elf(hello));
        assert_eq!(
            written.members["/usr/bin/hi"],
            Member::Symlink("hello".into())
        );
        assert_eq!(written.members.len(), 2, "{:?}", written.members.keys());
    }
}
