//! `cargo xtask test`: make a fresh host ready for the suite, then run it.
//!
//! The suite needs host packages (a C toolchain, flex, bison, headers,
//! rpmbuild), an unprivileged user to run servers when root, and the stand-in
//! sources (PostgreSQL 15.18 and pglogical 2.4.2), which come from Debian's
//! source packages because upstream sites cannot be reached from CI.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use crate::{
    files,
    flags::{self, SetArgs},
    host,
    input::platform::{self, Purpose},
    input::recipe,
    prerequisites::Needs,
    process::Command,
};

mod fresh_root;

/// The stand-in set, and the Debian source packages that carry its tarballs
/// (`<package>=<version>`, and the `.orig` file each leaves behind).
const STANDIN_SET: &str = "pg15-pglogical";
const DEBIAN_SOURCES: &[(&str, &str)] = &[
    (
        "postgresql-15=15.18-0+deb12u1",
        "postgresql-15_15.18.orig.tar.bz2",
    ),
    ("pglogical=2.4.2-3", "pglogical_2.4.2.orig.tar.gz"),
];

/// Where the suite finds the stand-in tarballs, under their recipes' names.
pub const MIRROR_VARIABLE: &str = "BDR_DIST_STANDIN_MIRROR";

impl flags::Test {
    pub fn run(self) -> anyhow::Result<()> {
        if self.fresh_root {
            return fresh_root::run(self.keep_root, &self.cargo_test_args);
        }
        let selection = host::select(&SetArgs {
            set: STANDIN_SET.to_owned(),
            recipes: None,
            platform: None,
            platforms: None,
            targets: vec![crate::input::target::HOST.to_owned()],
            targets_dir: None,
        })?;
        // Everything the platform file names, the suite's own tools included.
        super::doctor::examine_and_fix(
            &selection.platform,
            &Needs::new(&super::doctor::TEST_FORMATS, &Purpose::ALL),
            None,
            true,
        )?;
        install_spdx_validator()?;
        // The targets' .debs are sbuild's, in unshare mode.
        crate::package::sbuild::ensure_subordinate_ids(true)?;
        let mirror = match std::env::var_os(MIRROR_VARIABLE) {
            Some(dir) => PathBuf::from(dir),
            None => prepare_standin_mirror()?,
        };
        eprintln!("{:>12} stand-in sources from {}", "Using", mirror.display());
        // cargo needs the caller's environment (toolchain, registry settings).
        let result = Command::new("cargo")
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(&self.cargo_test_args)
            .inherit_environment()
            .env(MIRROR_VARIABLE, mirror.display().to_string())
            .in_callers_group()
            .run_in_terminal();
        eprintln!(
            "note: the BDR driver tests (tests/smoke_bdr.rs) are ignored here: they need a bdr94 stage, \
             which CI cannot build; see that file for how to run them"
        );
        result
    }
}

/// The SPDX reference validator, from PyPI at a pinned version: the SBOM
/// tests give it every document they check.
pub const SPDX_TOOLS: (&str, &str) = ("spdx-tools", "0.8.5");

/// `pip install spdx-tools==<pin>` unless that version is installed and its
/// `pyspdxtools` can be found.
fn install_spdx_validator() -> anyhow::Result<()> {
    let (package, version) = SPDX_TOOLS;
    let installed = Command::new("python3")
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version('{package}'))"),
        ])
        .inherit_environment()
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    if installed.as_deref() == Some(version) && spdx_validator().is_some() {
        return Ok(());
    }
    eprintln!(
        "{:>12} {package} {version} (the SPDX validator the SBOM tests run)",
        "Installing"
    );
    let pip = |extra: &[&str]| {
        Command::new("pip3")
            .args(["install", "--quiet"])
            .args(extra)
            .arg(format!("{package}=={version}"))
            .inherit_environment()
            .in_callers_group()
            .run_in_terminal()
    };
    // A Python that the system's package manager owns refuses pip (PEP 668):
    // then into the user's site.
    pip(&[])
        .or_else(|_| pip(&["--user", "--break-system-packages"]))
        .with_context(|| format!("cannot install {package}=={version} with `pip3`"))?;
    if spdx_validator().is_none() {
        bail!("{package} is installed, but its `pyspdxtools` is neither on PATH nor in Python's scripts directories");
    }
    Ok(())
}

/// `pyspdxtools`: on PATH, else in the scripts directory pip installs into
/// (the interpreter's, or the user's), which PATH may lack.
pub fn spdx_validator() -> Option<PathBuf> {
    if let Ok(path) = which::which("pyspdxtools") {
        return Some(path);
    }
    let output = Command::new("python3")
        .args([
            "-c",
            "import site, sysconfig; print(sysconfig.get_path('scripts')); print(site.getuserbase() + '/bin')",
        ])
        .inherit_environment()
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|dir| Path::new(dir.trim()).join("pyspdxtools"))
        .find(|path| path.is_file())
}

/// `target/standin-mirror/`, holding the stand-in set's tarballs under the
/// names its recipe declares, each checked against the recipe's sha256.
fn prepare_standin_mirror() -> anyhow::Result<PathBuf> {
    let platforms = platform::names(&platform::platforms_dir(None))?;
    let set = recipe::load(&recipe::recipes_dir(None), STANDIN_SET, &platforms)?;
    let mirror = host::target_dir().join("standin-mirror");
    let download_dir = mirror.join("debian");
    fs::create_dir_all(&download_dir)?;

    let wanted: Vec<(&str, &str, String)> = set
        .components
        .iter()
        .zip(DEBIAN_SOURCES)
        .map(|(component, (_, orig))| {
            (
                component.source.file.as_str(),
                *orig,
                component
                    .source
                    .sha256
                    .clone()
                    .expect("stand-in sources pin sha256"),
            )
        })
        .collect();
    if wanted.iter().all(|(file, _, sha)| {
        files::sha256_file(&mirror.join(file)).is_ok_and(|actual| &actual == sha)
    }) {
        return Ok(mirror);
    }
    if which::which("apt-get").is_err() {
        bail!(
            "the stand-in sources come from Debian's source packages, and this host has no apt-get: \
             put {} in a directory and set {MIRROR_VARIABLE} to it",
            wanted.iter().map(|(file, ..)| *file).collect::<Vec<_>>().join(" and ")
        );
    }
    // apt-get's exit status is not the test: it fails when any part of a source
    // package is missing (pglogical's .debian.tar.xz is gone from the archive),
    // while only the .orig tarballs are needed, and they are checked by sha256.
    let download = || -> anyhow::Result<String> {
        let packages = DEBIAN_SOURCES.iter().map(|(package, _)| *package);
        let output = Command::new("apt-get")
            .args(["source", "--download-only"])
            .args(packages)
            .cwd(&download_dir)
            .inherit_environment()
            .output()?;
        Ok(String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let have_all = || {
        DEBIAN_SOURCES
            .iter()
            .all(|(_, orig)| download_dir.join(orig).is_file())
    };
    let mut complaints = download()?;
    if !have_all() && complaints.contains("deb-src") {
        eprintln!(
            "{:>12} deb-src entries, copied from the deb entries, and retrying",
            "Enabling"
        );
        enable_deb_src()?;
        complaints = download()?;
    }
    if !have_all() {
        bail!(
            "cannot download the stand-in source packages with apt-get source:\n{}",
            complaints.trim()
        );
    }
    for (file, orig, expected) in &wanted {
        let source = download_dir.join(orig);
        let actual = files::sha256_file(&source)?;
        if &actual != expected {
            bail!(
                "{} has sha256 {actual}, but the recipe pins {expected}",
                source.display()
            );
        }
        fs::copy(&source, mirror.join(file))
            .with_context(|| format!("cannot copy {} into the mirror", source.display()))?;
    }
    Ok(mirror)
}

/// Add deb-src entries mirroring the existing deb entries (same URIs, suites
/// and components), then refresh the package lists.
fn enable_deb_src() -> anyhow::Result<()> {
    let mut stanzas = Vec::new();
    for entry in
        fs::read_dir("/etc/apt/sources.list.d").context("cannot read /etc/apt/sources.list.d")?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "sources")
            && !path.ends_with("bdr-dist-deb-src.sources")
        {
            let text = fs::read_to_string(&path)?;
            for stanza in text.split("\n\n") {
                if stanza.lines().any(|line| line.trim() == "Types: deb")
                    && !stanza.contains("Enabled: no")
                {
                    stanzas.push(
                        stanza
                            .replace("Types: deb", "Types: deb-src")
                            .trim()
                            .to_owned(),
                    );
                }
            }
        }
    }
    let list = Path::new("/etc/apt/sources.list");
    let mut lines = Vec::new();
    if let Ok(text) = fs::read_to_string(list) {
        lines.extend(text.lines().filter_map(|line| {
            line.strip_prefix("deb ")
                .map(|rest| format!("deb-src {rest}"))
        }));
    }
    if stanzas.is_empty() && lines.is_empty() {
        bail!("no deb entries found to copy into deb-src entries");
    }
    if !stanzas.is_empty() {
        fs::write(
            "/etc/apt/sources.list.d/bdr-dist-deb-src.sources",
            stanzas.join("\n\n") + "\n",
        )
        .context("cannot write /etc/apt/sources.list.d/bdr-dist-deb-src.sources (run as root)")?;
    }
    if !lines.is_empty() {
        fs::write(
            "/etc/apt/sources.list.d/bdr-dist-deb-src.list",
            lines.join("\n") + "\n",
        )?;
    }
    Command::new("apt-get")
        .arg("update")
        .inherit_environment()
        .in_callers_group()
        .run_in_terminal()?;
    Ok(())
}
