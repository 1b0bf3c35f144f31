//! A target's packages proven where they are going: `dose-debcheck` shows
//! every .deb installable against the target's archive, then a fresh root
//! of the release (unpacked from its minbase) gets them by `apt-get
//! install`, every library they link resolves, the packaged setup script
//! makes the cluster and the service user starts it. The smoke cluster then
//! runs in that root, and the packages are removed at the end. As
//! apt.postgresql.org runs autopkgtest after each build.
//!
//! Every command here is an argument vector run in the root (no shell
//! string is made from the plan's values).

use std::{
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::{
    plan::{InRoot, Package, PlanTarget},
    process::Command,
    roots,
};

/// One proof, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProofCheck {
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    pub detail: String,
}

/// A fresh root with the packages installed; removed when dropped.
pub struct ProofRoot {
    pub root: InRoot,
    pub checks: Vec<ProofCheck>,
    package: Package,
    debs: Vec<PathBuf>,
    removed: bool,
}

/// What a proof needs of the packages: the deb step's package and files.
pub struct Debs<'a> {
    pub package: &'a Package,
    pub files: Vec<PathBuf>,
    /// The set's work directory (stage, dist), bound into the roots.
    pub set_dir: &'a Path,
}

/// A proof that did not hold: the proofs made until then (the last one
/// failed, unless the error came between them), and the error.
pub struct Failed {
    pub checks: Vec<ProofCheck>,
    pub error: anyhow::Error,
}

/// dose-debcheck, then a fresh root with the packages installed and
/// started once. A failure keeps the proofs made; the root is gone.
pub fn prepare(
    target: &PlanTarget,
    base: &Path,
    debs: Debs<'_>,
    run_as: Option<(&str, u32, u32)>,
) -> Result<ProofRoot, Failed> {
    let mut checks = Vec::new();
    let build_root = InRoot {
        root: target.build_root.clone(),
        binds: vec![debs.set_dir.to_path_buf()],
    };
    let installable = timed(&mut checks, "installable", || {
        debcheck(&build_root, &debs.files, debs.set_dir)
    })
    .and_then(|()| roots::fresh_root(base, &target.proof_root));
    if let Err(error) = installable {
        return Err(Failed { checks, error });
    }
    let mut proof = ProofRoot {
        root: InRoot {
            root: target.proof_root.clone(),
            binds: vec![debs.set_dir.to_path_buf()],
        },
        checks,
        package: debs.package.clone(),
        debs: debs.files,
        removed: false,
    };
    match proof.install(run_as) {
        Ok(()) => Ok(proof),
        Err(error) => Err(Failed {
            checks: proof.checks.clone(),
            error,
        }),
    }
}

/// Run `check`, record it, and stop on its failure.
fn timed(
    checks: &mut Vec<ProofCheck>,
    name: &str,
    check: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = check();
    let seconds = started.elapsed().as_secs_f64();
    let (passed, detail) = match &result {
        Ok(detail) => (true, detail.clone()),
        Err(error) => (false, format!("{error:#}")),
    };
    eprintln!(
        "{:>12} {name} ({seconds:.1}s): {}",
        if passed { "Proved" } else { "FAILED" },
        detail.lines().next().unwrap_or_default()
    );
    checks.push(ProofCheck {
        name: name.to_owned(),
        passed,
        seconds,
        detail,
    });
    result
        .map(|_| ())
        .with_context(|| format!("proof `{name}` failed"))
}

/// Every .deb installable against the target's archive: the build root's
/// package lists (the archive as the root was made from it), the packages'
/// own index made by dpkg-scanpackages there.
fn debcheck(build_root: &InRoot, debs: &[PathBuf], set_dir: &Path) -> anyhow::Result<String> {
    let dir = set_dir.join("proof");
    roots::remove(&dir)?;
    fs::create_dir_all(&dir)?;
    for deb in debs {
        let name = deb.file_name().context("a .deb has a file name")?;
        fs::copy(deb, dir.join(name))?;
    }
    let scan = Command::new("dpkg-scanpackages")
        .args([".", "/dev/null"])
        .cwd(&dir)
        .in_root(build_root)
        .checked_output()?;
    let ours = dir.join("Packages");
    fs::write(&ours, &scan.stdout)?;
    let lists = build_root.root.join("var/lib/apt/lists");
    let mut archive: Vec<PathBuf> = fs::read_dir(&lists)
        .with_context(|| format!("cannot read {}", lists.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with("_Packages"))
        .collect();
    archive.sort();
    if archive.is_empty() {
        bail!(
            "the build root keeps no package lists in {}",
            lists.display()
        );
    }
    let mut command = Command::new("dose-debcheck")
        .args(["--deb-native-arch=amd64", "--failures", "--explain"])
        .arg("--fg")
        .arg(&ours);
    for list in &archive {
        command = command.arg("--bg").arg(list);
    }
    let output = command.output()?;
    let report = String::from_utf8_lossy(&output.stdout);
    let _ = roots::remove(&dir);
    if !output.status.success() || report.contains("status: broken") {
        bail!(
            "dose-debcheck finds packages that cannot be installed:\n{}\n{}",
            report.trim_end(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(format!(
        "{} packages installable against {} package lists of the archive",
        debs.len(),
        archive.len()
    ))
}

impl ProofRoot {
    fn run(&self, argv: &[&str]) -> Command {
        Command::new(argv[0])
            .args(&argv[1..])
            .in_root(&self.root)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    }

    fn install(&mut self, run_as: Option<(&str, u32, u32)>) -> anyhow::Result<()> {
        let debs: Vec<String> = self
            .debs
            .iter()
            .map(|deb| deb.display().to_string())
            .collect();
        let mut checks = std::mem::take(&mut self.checks);
        let result = (|| {
            // First: the packages' own users then take other ids.
            if let Some((user, uid, gid)) = run_as {
                self.add_user(user, uid, gid)?;
            }
            timed(&mut checks, "apt-get install", || {
                let mut argv = vec!["apt-get", "install", "--yes", "--no-install-recommends"];
                argv.extend(debs.iter().map(String::as_str));
                let output = self
                    .run(&argv)
                    .inherit_environment()
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .checked_output()?;
                let installed = String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .filter(|line| line.starts_with("Setting up "))
                    .count();
                Ok(format!(
                    "{} packages set up in a fresh root ({installed} with their dependencies)",
                    debs.len()
                ))
            })?;
            timed(&mut checks, "libraries", || self.libraries())?;
            timed(&mut checks, "setup initdb", || {
                let setup = format!("{}/bin/{}-setup", self.package.prefix, self.package.name);
                self.run(&[&setup, "initdb"]).checked_output()?;
                self.run(&[&setup, "check"]).checked_output()?;
                Ok(format!(
                    "`{setup} initdb` made the cluster as {}",
                    self.package.service.user
                ))
            })?;
            timed(&mut checks, "service start", || self.start_once())?;
            Ok(())
        })();
        self.checks = checks;
        result
    }

    /// `ldd` of every ELF file in the prefix's bin and lib: none unresolved.
    fn libraries(&self) -> anyhow::Result<String> {
        let prefix = self.package.prefix.trim_start_matches('/');
        let mut files = Vec::new();
        for dir in ["bin", "lib"] {
            let on_disk = self.root.root.join(prefix).join(dir);
            for entry in fs::read_dir(&on_disk)
                .with_context(|| format!("the packages installed no {}", on_disk.display()))?
                .flatten()
            {
                let path = entry.path();
                if path.is_file() && crate::package::elf::is_elf(&path) {
                    let inside = Path::new("/").join(path.strip_prefix(&self.root.root)?);
                    files.push(inside);
                }
            }
        }
        let mut unresolved = Vec::new();
        for file in &files {
            let output = self.run(&["ldd", &file.display().to_string()]).output()?;
            let text = String::from_utf8_lossy(&output.stdout);
            unresolved.extend(
                text.lines()
                    .filter(|line| line.contains("not found"))
                    .map(|line| format!("{}: {}", file.display(), line.trim())),
            );
        }
        if !unresolved.is_empty() {
            bail!("unresolved libraries:\n{}", unresolved.join("\n"));
        }
        Ok(format!("{} ELF files, every library resolved", files.len()))
    }

    /// The service user starts the packaged cluster, answers, stops it.
    fn start_once(&self) -> anyhow::Result<String> {
        let package = &self.package;
        let bin = format!("{}/bin", package.prefix);
        let data = format!("{}/{}/data", package.service.home, package.name);
        let user = package.service.user.as_str();
        let pg_ctl = format!("{bin}/pg_ctl");
        let log = format!("{}/proof-server.log", package.service.home);
        let options = "-c listen_addresses='' -k /tmp";
        self.run(&[
            "runuser", "-u", user, "--", &pg_ctl, "-D", &data, "-l", &log, "-w", "-o", options,
            "start",
        ])
        .checked_output()?;
        let answer = self
            .run(&[
                "runuser",
                "-u",
                user,
                "--",
                &format!("{bin}/psql"),
                "-h",
                "/tmp",
                "-X",
                "-Atc",
                "select 6 * 7",
                "postgres",
            ])
            .cwd("/")
            .checked_output();
        let stopped = self
            .run(&[
                "runuser", "-u", user, "--", &pg_ctl, "-D", &data, "-w", "-m", "fast", "stop",
            ])
            .uninterruptible()
            .checked_output();
        let answer = answer?;
        stopped?;
        let text = String::from_utf8_lossy(&answer.stdout);
        if text.trim() != "42" {
            bail!("psql answered `{}`, not 42", text.trim());
        }
        Ok(format!(
            "pg_ctl start as {user}, psql answered, pg_ctl stop"
        ))
    }

    /// The smoke servers' user, with this host's uid and gid, so that the
    /// files it writes in the cluster directory are its own on both sides.
    fn add_user(&self, user: &str, uid: u32, gid: u32) -> anyhow::Result<()> {
        let (uid, gid) = (uid.to_string(), gid.to_string());
        let passwd = fs::read_to_string(self.root.root.join("etc/passwd")).unwrap_or_default();
        if passwd
            .lines()
            .any(|line| line.starts_with(&format!("{user}:")))
        {
            return Ok(());
        }
        self.run(&["groupadd", "--gid", &gid, user])
            .checked_output()?;
        self.run(&[
            "useradd",
            "--uid",
            &uid,
            "--gid",
            &gid,
            "--no-create-home",
            "--home-dir",
            "/",
            "--shell",
            "/bin/sh",
            user,
        ])
        .checked_output()?;
        Ok(())
    }

    /// Record one more proof, made by the caller (the cluster's).
    pub fn check(
        &mut self,
        name: &str,
        check: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<()> {
        timed(&mut self.checks, name, check)
    }

    /// The first proof that did not hold.
    pub fn failed(&self) -> Option<&ProofCheck> {
        self.checks.iter().find(|check| !check.passed)
    }

    /// Remove the packages: the last proof, after the smoke cluster ran.
    pub fn remove_packages(&mut self) -> anyhow::Result<()> {
        let names: Vec<String> = self
            .debs
            .iter()
            .filter_map(|deb| match crate::package::identity::of_deb(deb) {
                Ok(crate::package::identity::Identity::Deb { package, .. }) => Some(package),
                _ => None,
            })
            .collect();
        let mut checks = std::mem::take(&mut self.checks);
        let result = timed(&mut checks, "apt-get remove", || {
            let mut argv = vec!["apt-get", "remove", "--yes"];
            argv.extend(names.iter().map(String::as_str));
            self.run(&argv).checked_output()?;
            let postgres = self
                .root
                .root
                .join(self.package.prefix.trim_start_matches('/'))
                .join("bin/postgres");
            if postgres.exists() {
                bail!("{} is still there", postgres.display());
            }
            Ok(format!("{} packages removed", names.len()))
        });
        self.checks = checks;
        self.removed = true;
        result
    }
}

impl Drop for ProofRoot {
    fn drop(&mut self) {
        if let Err(error) = roots::remove(&self.root.root) {
            eprintln!("warning: {error:#}");
        }
    }
}
