//! A clean Debian 12 minbase root to install packages into, as a machine
//! that has never seen them: made by mmdebstrap from this host's apt
//! sources, cached as a tarball under `target/lifecycle/`, unpacked afresh
//! for each test, every command run in it by chroot in a mount namespace of
//! its own. Needs root.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Mutex,
};

pub fn lifecycle_dir() -> PathBuf {
    xtask::project_root().join("target/lifecycle")
}

/// The minbase root as a tarball, made once and kept: a root made from
/// the host's apt sources, as a new machine of this kind starts.
pub fn minbase_tarball() -> PathBuf {
    static MADE: Mutex<()> = Mutex::new(());
    let _one = MADE.lock().unwrap_or_else(|p| p.into_inner());
    let tarball = lifecycle_dir().join("bookworm-minbase.tar");
    if tarball.is_file() {
        return tarball;
    }
    fs::create_dir_all(lifecycle_dir()).unwrap();
    let sources: Vec<PathBuf> = ["/etc/apt/sources.list"]
        .iter()
        .map(PathBuf::from)
        .chain(
            fs::read_dir("/etc/apt/sources.list.d")
                .into_iter()
                .flatten()
                .filter_map(|entry| entry.ok().map(|e| e.path())),
        )
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext == "list" || ext == "sources")
        })
        .collect();
    let part = lifecycle_dir().join("bookworm-minbase.part.tar");
    let output = Command::new("mmdebstrap")
        .args([
            "--variant=minbase",
            "--mode=root",
            "--format=tar",
            "--quiet",
            "bookworm",
        ])
        .arg(&part)
        .args(&sources)
        .output()
        .expect("mmdebstrap runs (cargo xtask test installs it)");
    assert!(
        output.status.success(),
        "mmdebstrap failed: {}",
        super::stderr(&output)
    );
    fs::rename(&part, &tarball).unwrap();
    tarball
}

/// A fresh root, unpacked from the minbase tarball, removed when it goes.
pub struct Root {
    dir: xtask::files::TempDir,
}

impl Root {
    pub fn new() -> Root {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "the lifecycle tests need root: chroot and mount namespaces"
        );
        let dir = xtask::files::TempDir::with_prefix("bdr-dist-root-").unwrap();
        let output = Command::new("tar")
            .args(["-x", "--numeric-owner", "-f"])
            .arg(minbase_tarball())
            .arg("-C")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", super::stderr(&output));
        Root { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `script` run by /bin/sh inside the root, in a mount namespace of its
    /// own (with /dev and /proc), so nothing stays mounted when it ends.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--fork",
                "--",
                "sh",
                "-c",
            ])
            .arg(
                "set -e; mount --rbind /dev \"$0/dev\"; mount -t proc proc \"$0/proc\"; \
                 cp /etc/resolv.conf \"$0/etc/resolv.conf\"; \
                 exec chroot \"$0\" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
                 DEBIAN_FRONTEND=noninteractive /bin/sh -ec \"$1\"",
            )
            .arg(self.path())
            .arg(script)
            .output()
            .unwrap()
    }

    /// [`sh`](Self::sh), which must succeed; its stdout.
    pub fn ok(&self, script: &str) -> String {
        let output = self.sh(script);
        assert!(
            output.status.success(),
            "`{script}` failed in the root:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            super::stderr(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}
