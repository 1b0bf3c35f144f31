//! `cargo xtask test --fresh-root`: the README's test command run inside a
//! fresh Debian minbase root, so that an install step the suite relies on
//! but does not perform fails on the developer's own machine too (CI runs
//! there, where everything ever installed by hand is still present).
//!
//! The root is made by mmdebstrap from this host's apt sources, for this
//! host's release, with nothing but what cargo needs to compile the tool
//! before the tool can install anything (a C compiler and libc's headers).
//! From the host come only the Rust toolchain and the cargo registry, both
//! read-only (the registry filled first by `cargo fetch`, so the build inside
//! is offline), and a copy of the working tree's files (tracked and
//! untracked, not ignored: what `git status` shows, never `target/`).
//!
//! Inside a private mount namespace and a PID namespace of its own: `/` made
//! a mount point (every nested `unshare --propagation` and `ip netns` fails
//! without one: "cannot change root filesystem propagation"), proc, sys,
//! dev, a tmpfs on /run (network namespaces are mounted there). When the
//! suite ends, whatever it left running dies with the PID namespace; the
//! mounts go with the mount namespace; the root is removed.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use crate::{
    files, flags::SetArgs, host, input::platform::Purpose, prerequisites, process::Command,
};

/// What a new machine of this kind has before anything else, as far as the
/// tool's own first compile needs it: cargo links with `cc`, and some crates
/// compile C (lzma-sys). Everything else the suite must install itself.
pub const BASELINE_PACKAGES: [&str; 2] = ["gcc", "libc6-dev"];

/// The host programs that make and enter the root.
const HOST_PROGRAMS: [&str; 6] = [
    "mmdebstrap",
    "unshare",
    "mount",
    "pivot_root",
    "chroot",
    "git",
];

/// Where the working tree's copy lives inside the root.
const REPOSITORY_IN_ROOT: &str = "work/bdr-dist";

/// The machine's own network and trust settings, which a new machine of
/// this kind has before anything is installed (its proxies, and the
/// certificate bundle that names its local certificate authorities): given
/// to the root as they are, like its resolv.conf. Nothing else of the
/// caller's environment goes in.
const MACHINE_SETTINGS: [&str; 16] = [
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_DEFAULT_TIMEOUT",
];

/// In the namespaces: mount what a machine has, the toolchain read-only,
/// copy the machine's resolver and local certificate authorities (which the
/// root's `ca-certificates`, once installed, builds into its bundle), then
/// run the suite as the child of the namespace's init (this shell), which
/// reaps what the suite orphans and outlives it. Its arguments come as
/// positional parameters, never spliced into the text; its environment is
/// set by the caller, exactly.
const ENTER_ROOT: &str = r#"set -e
root=$1 rustup=$2 cargo_bin=$3 registry=$4
shift 4
mount --rbind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin" "$root/root/.cargo/registry"
mount --bind -o ro "$rustup" "$root/root/.rustup"
mount --bind -o ro "$cargo_bin" "$root/root/.cargo/bin"
mount --bind -o ro "$registry" "$root/root/.cargo/registry"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$root/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
# pivot_root, not chroot alone: a process in a chroot may not make a user
# namespace (unshare(2): EPERM), and sbuild --chroot-mode=unshare needs one.
cd "$root"
mkdir -p .old-root
pivot_root . .old-root
exec chroot . /bin/sh -c 'umount -l /.old-root && rmdir /.old-root && cd "/$0" && cargo xtask test "$@"; status=$?; exit $status' "$@"
"#;

/// The suite's environment in the root: a root login's, the toolchain
/// offline, and the machine's settings.
fn environment() -> BTreeMap<String, String> {
    let mut environment: BTreeMap<String, String> = [
        ("HOME", "/root"),
        ("USER", "root"),
        ("LOGNAME", "root"),
        ("CARGO_HOME", "/root/.cargo"),
        ("RUSTUP_HOME", "/root/.rustup"),
        ("CARGO_NET_OFFLINE", "true"),
        (
            "PATH",
            "/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    for name in MACHINE_SETTINGS.iter().chain(&["TERM", "CI"]) {
        if let Ok(value) = std::env::var(name) {
            environment.insert(name.to_string(), value);
        }
    }
    environment
}

pub fn run(keep_root: bool, cargo_test_args: &[String]) -> anyhow::Result<()> {
    if !host::is_root() {
        bail!("--fresh-root needs root: mmdebstrap, chroot and mount namespaces");
    }
    let selection = host::select(&SetArgs {
        set: super::STANDIN_SET.to_owned(),
        recipes: None,
        platform: None,
        platforms: None,
        targets: vec![crate::input::target::HOST.to_owned()],
        targets_dir: None,
    })?;
    let mut platform = selection.platform.clone();
    platform
        .prerequisites
        .retain(|prerequisite| prerequisite.programs().any(|p| HOST_PROGRAMS.contains(&p)));
    prerequisites::ensure(
        &platform,
        &prerequisites::Needs::new(&[], &Purpose::ALL),
        None,
        true,
    )?;
    let release = host_release()?;
    let (rustup_home, cargo_home) = toolchain_homes()?;
    let repository = crate::project_root();

    eprintln!(
        "{:>12} every crate the suite compiles, into {}",
        "Fetching",
        cargo_home.join("registry").display()
    );
    // Only this machine's platform: the suite compiles for nothing else.
    let host_triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    Command::new("cargo")
        .args(["fetch", "--locked", "--target", &host_triple])
        .cwd(&repository)
        .inherit_environment()
        .in_callers_group()
        .run_in_terminal()?;

    let base = host::layout().fresh_root();
    fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let _lock = files::lock(&base.join(".lock"), true, "another `test --fresh-root`")?;
    let root = base.join("root");
    remove_root(&root)?;
    let result = make_and_enter(
        &root,
        &release,
        &repository,
        &rustup_home,
        &cargo_home,
        cargo_test_args,
    );
    if keep_root {
        eprintln!("{:>12} the root in {}", "Kept", root.display());
    } else if let Err(error) = remove_root(&root) {
        eprintln!("warning: {error:#}");
    }
    result
}

fn make_and_enter(
    root: &Path,
    release: &str,
    repository: &Path,
    rustup_home: &Path,
    cargo_home: &Path,
    cargo_test_args: &[String],
) -> anyhow::Result<()> {
    eprintln!(
        "{:>12} a {release} minbase root in {}, with {} only",
        "Making",
        root.display(),
        BASELINE_PACKAGES.join(", ")
    );
    Command::new("mmdebstrap")
        .args(["--variant=minbase", "--mode=root", "--quiet"])
        .arg(format!("--include={}", BASELINE_PACKAGES.join(",")))
        .arg(release)
        .arg(root)
        .args(apt_sources())
        .inherit_environment()
        .in_callers_group()
        .run_in_terminal()
        .context("cannot make the fresh root with mmdebstrap")?;
    let copied = copy_working_tree(repository, &root.join(REPOSITORY_IN_ROOT))?;
    eprintln!(
        "{:>12} {copied} files of the working tree into {}",
        "Copied",
        root.join(REPOSITORY_IN_ROOT).display()
    );
    eprintln!("{:>12} `cargo xtask test` inside the fresh root", "Running");
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--kill-child",
            "--",
            "/bin/sh",
            "-c",
            ENTER_ROOT,
            "sh",
        ])
        .arg(root)
        .arg(rustup_home)
        .arg(cargo_home.join("bin"))
        .arg(cargo_home.join("registry"))
        .arg(REPOSITORY_IN_ROOT)
        .args(cargo_test_args)
        .exact_environment(environment())
        .in_callers_group()
        .run_in_terminal()
        .context("the suite failed in the fresh root (its output is above)")
}

/// This host's release by code name (`bookworm`), from os-release.
fn host_release() -> anyhow::Result<String> {
    let text = fs::read_to_string("/etc/os-release").context("cannot read /etc/os-release")?;
    text.lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))
        .map(|name| name.trim_matches('"').to_owned())
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()))
        .context("/etc/os-release names no VERSION_CODENAME: --fresh-root needs a Debian host")
}

/// The host's apt sources, which mmdebstrap copies into the root.
pub fn apt_sources() -> Vec<PathBuf> {
    let mut sources = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        more.sort();
        sources.extend(more);
    }
    sources
        .into_iter()
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext == "list" || ext == "sources")
                // The suite's own deb-src entries are made again inside.
                && !path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("bdr-dist-"))
        })
        .collect()
}

/// `RUSTUP_HOME` and `CARGO_HOME`, as rustup and cargo find them.
fn toolchain_homes() -> anyhow::Result<(PathBuf, PathBuf)> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let find = |variable: &str, default: &str| -> anyhow::Result<PathBuf> {
        let dir = std::env::var_os(variable)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(default)))
            .with_context(|| format!("neither {variable} nor HOME is set"))?;
        if !dir.is_dir() {
            bail!(
                "{} ({variable}) is not a directory: --fresh-root brings the host's Rust toolchain in",
                dir.display()
            );
        }
        Ok(dir)
    };
    let (rustup, cargo) = (
        find("RUSTUP_HOME", ".rustup")?,
        find("CARGO_HOME", ".cargo")?,
    );
    for dir in [cargo.join("bin"), cargo.join("registry")] {
        if !dir.is_dir() {
            bail!("{} is missing: --fresh-root brings it in", dir.display());
        }
    }
    Ok((rustup, cargo))
}

/// Copy what `git status` would show of the working tree (tracked files as
/// they are now, untracked ones that are not ignored) into `to`.
fn copy_working_tree(repository: &Path, to: &Path) -> anyhow::Result<usize> {
    let output = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .cwd(repository)
        .checked_output()
        .with_context(|| {
            format!(
                "--fresh-root copies a git checkout, and {} is not one",
                repository.display()
            )
        })?;
    let mut copied = 0;
    for name in output
        .stdout
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
    {
        let name = Path::new(std::str::from_utf8(name).context("a file name that is not UTF-8")?);
        let (from, into) = (repository.join(name), to.join(name));
        let Ok(meta) = fs::symlink_metadata(&from) else {
            continue; // deleted in the working tree, not yet in the index
        };
        if let Some(parent) = into.parent() {
            fs::create_dir_all(parent)?;
        }
        if meta.file_type().is_symlink() {
            symlink(fs::read_link(&from)?, &into)?;
        } else if meta.is_file() {
            fs::copy(&from, &into)
                .with_context(|| format!("cannot copy {} into the root", from.display()))?;
            fs::set_permissions(&into, fs::Permissions::from_mode(meta.permissions().mode()))?;
        } else {
            continue;
        }
        copied += 1;
    }
    Ok(copied)
}

/// Remove a root that no namespace uses any more: `rm --one-file-system`,
/// so that nothing mounted into it (were a mount left) is ever crossed.
fn remove_root(root: &Path) -> anyhow::Result<()> {
    if fs::symlink_metadata(root).is_err() {
        return Ok(());
    }
    eprintln!("{:>12} {}", "Removing", root.display());
    Command::new("rm")
        .args(["-rf", "--one-file-system"])
        .arg(root)
        .checked_output()
        .with_context(|| format!("cannot remove {}", root.display()))
        .map(drop)
}
