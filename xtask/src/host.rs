//! The host's facts, and loading the set and platform that the flags name.
//!
//! This is the boundary where the world is read, so that `plan` need not be.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{
    flags::SetArgs,
    input::located::{invalid, Source},
    input::platform::{self, Platform},
    input::recipe::{self, RecipeSet},
    input::target::{self, Target},
    layout::Layout,
    plan::{PlanOptions, RpmDist, SmokeFrom},
};

/// The set and platform a command works on, validated.
pub struct Selection {
    pub set: RecipeSet,
    pub platform: Platform,
    pub recipes_dir: PathBuf,
    pub lock: LockFile,
    /// The distribution release it builds for; `None`: this host.
    pub target: Option<Target>,
}

/// `<recipes>/<set>.lock`: sha256 of sources first fetched with `--pin`.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
}

pub fn lock_path(recipes_dir: &Path, set: &str) -> PathBuf {
    recipes_dir.join(format!("{set}.lock"))
}

pub fn select(args: &SetArgs) -> anyhow::Result<Selection> {
    let [target_name] = args.targets.as_slice() else {
        return Err(invalid(format!(
            "this command takes one target at a time, not `{}`",
            args.targets.join(",")
        )));
    };
    let target = target::load(
        &target::targets_dir(args.targets_dir.as_deref()),
        target_name,
    )?;
    let platforms_dir = platform::platforms_dir(args.platforms.as_deref());
    let known = platform::names(&platforms_dir)?;
    if let (Some(target), Some(asked)) = (&target, &args.platform) {
        if &target.platform != asked {
            return Err(invalid(format!(
                "target `{}` is built with platform `{}`, not `{asked}`",
                target.name, target.platform
            )));
        }
    }
    let platform_name = args
        .platform
        .clone()
        .or_else(|| target.as_ref().map(|target| target.platform.clone()))
        .unwrap_or_else(|| platform::host_name().to_owned());
    if !known.contains(&platform_name) {
        let hint = if args.platform.is_none() {
            "; pass --platform to plan for a known one"
        } else {
            ""
        };
        return Err(invalid(format!(
            "platform `{platform_name}` does not exist (known: {}){hint}",
            known.join(", ")
        )));
    }
    let platform = platform::load(&platforms_dir, &platform_name)?;
    let recipes_dir = recipe::recipes_dir(args.recipes.as_deref());
    let set = recipe::load(&recipes_dir, &args.set, &known)?;
    if !set.platforms.contains(&platform.name) {
        return Err(invalid(format!(
            "set `{}` is not made for platform `{}` (its platforms: {})",
            set.name,
            platform.name,
            set.platforms.join(", ")
        )));
    }
    let lock = read_lock(&lock_path(&recipes_dir, &set.name))?;
    Ok(Selection {
        set,
        platform,
        recipes_dir,
        lock,
        target,
    })
}

fn read_lock(path: &Path) -> anyhow::Result<LockFile> {
    if !path.exists() {
        return Ok(LockFile::default());
    }
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Source { path, text: &text }.parse()
}

/// Facts about this machine that plans depend on.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// What the operating system lets this process run at once.
    pub cores: u32,
    /// Parallel make jobs by default: one more than the cores, so that a job
    /// waiting on the disk or a serial link leaves no core idle (`bench`
    /// times it against `-j<cores>`).
    pub jobs: u32,
    pub is_root: bool,
    pub ccache_dir: Option<PathBuf>,
    /// `rpm --eval %{?dist}` without its dot (`el9`), when this host's rpm
    /// defines a dist that is a tag `--dist` would take: RPMs built here are
    /// this host's. `None` without rpm, or with one that defines none
    /// (Debian's), or an odd one (`.el8_10`): such RPMs carry no tag.
    pub rpm_dist: Option<String>,
}

pub fn facts() -> HostFacts {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    HostFacts {
        cores,
        jobs: cores + 1,
        is_root: is_root(),
        ccache_dir: ccache_dir(),
        rpm_dist: rpm_dist(),
    }
}

fn rpm_dist() -> Option<String> {
    which::which("rpm").ok()?;
    let output = crate::process::Command::new("rpm")
        .args(["--eval", "%{?dist}"])
        .checked_output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let tag = text.trim().strip_prefix('.')?;
    crate::input::dist_tag::check(tag).ok()?;
    Some(tag.to_owned())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The name of the real user running the tool (what sbuild looks up in
/// `/etc/subuid`), or its uid when the user database has none.
pub fn user_name() -> String {
    // SAFETY: getuid cannot fail; getpwuid returns null or a pointer to a
    // static entry whose name is a NUL-terminated string, copied at once.
    unsafe {
        let uid = libc::getuid();
        let entry = libc::getpwuid(uid);
        if entry.is_null() || (*entry).pw_name.is_null() {
            return uid.to_string();
        }
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// The directory of compiler-named links to ccache, if ccache is installed.
fn ccache_dir() -> Option<PathBuf> {
    which::which("ccache").ok()?;
    [
        "/usr/lib/ccache",
        "/usr/lib64/ccache",
        "/usr/local/libexec/ccache",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|dir| dir.join("cc").exists() || dir.join("gcc").exists())
}

/// Plan options from host facts, with nothing else decided yet.
pub fn plan_options(selection: &Selection, facts: &HostFacts) -> PlanOptions {
    PlanOptions {
        target_dir: target_dir(),
        jobs: facts.jobs,
        mirrors: Vec::new(),
        escalate: !facts.is_root,
        // Another platform's plan says nothing about this host's ccache.
        ccache_dir: facts
            .ccache_dir
            .clone()
            .filter(|_| selection.platform.os == platform::host_name())
            // A target's root has no ccache; its builds are its own.
            .filter(|_| selection.target.is_none()),
        target: selection.target.clone(),
        install_prefix: None,
        formats: None,
        nodes: 2,
        run_as: facts.is_root.then(|| selection.platform.smoke_user.clone()),
        locked_sha256: selection.lock.sha256.clone(),
        smoke_from: SmokeFrom::Stage,
        smoke_keep: false,
        smoke_checks: crate::plan::checks::CheckId::ALL.to_vec(),
        smoke_network: Default::default(),
        smoke_tls: Default::default(),
        release: None,
        dist_dir: None,
        signing: None,
        repo: false,
        repo_url: None,
        // Another platform's RPMs are not this host's.
        rpm_dist: RpmDist {
            tag: facts
                .rpm_dist
                .clone()
                .filter(|_| selection.platform.os == platform::host_name()),
            from_flag: false,
        },
    }
}

/// `target/` of this repo, or `BDR_DIST_TARGET` (tests point it at a temp dir).
pub fn target_dir() -> PathBuf {
    std::env::var_os("BDR_DIST_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"))
}

/// Where this run writes: `target_dir()`.
pub fn layout() -> Layout {
    Layout::new(target_dir())
}

/// Where a selection's set lives: this host's `sets/`, or its target's.
pub fn layout_of(selection: &Selection) -> Layout {
    layout().for_target(selection.target.as_ref().map(|target| target.name.as_str()))
}
