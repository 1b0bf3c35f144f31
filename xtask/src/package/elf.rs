//! ELF files of the stage, the distributions' way: stripped copies with the
//! GNU build-id kept, the symbols in a separate file named by that id
//! (`/usr/lib/debug/.build-id/xx/yyyy.debug`), and the sonames a library
//! provides. binutils does the work, as `dh_strip` does.

use std::{
    fs,
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::process::Command;

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
pub fn split(source: &Path, relative: &str, work: &Path) -> anyhow::Result<Split> {
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
        .checked_output()?;
    // dh_strip's choices: libraries keep what dynamic linking needs.
    Command::new("strip")
        .args(["--remove-section=.comment", "--remove-section=.note"])
        .args(is_shared_object(relative).then_some("--strip-unneeded"))
        .arg("-o")
        .arg(&stripped)
        .arg(source)
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
    let output = Command::new("readelf")
        .arg("--notes")
        .arg(path)
        .checked_output()?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.split_once("Build ID: "))
        .map(|(_, id)| id.trim().to_owned())
        .filter(|id| id.len() > 2))
}

/// The `DT_SONAME` of a shared library, if it has one.
pub fn soname(path: &Path) -> anyhow::Result<Option<String>> {
    let output = Command::new("objdump")
        .arg("-p")
        .arg(path)
        .checked_output()?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.trim().strip_prefix("SONAME"))
        .map(|name| name.trim().to_owned()))
}
