//! The packages' lifecycle on a machine that has never seen them: a fresh
//! Debian 12 minbase root (made by mmdebstrap from this host's apt sources,
//! cached under `target/lifecycle/`), the stand-in set's .debs installed
//! with apt-get, every library resolved, the cluster made by the packaged
//! setup script and started as the service user, upgraded to release 2 with
//! its data and edited configuration kept, then removed while it runs. The
//! RPMs go through install, verify, upgrade and erase under `rpm --root`,
//! their scriptlets run in the same kind of root.
//!
//! Needs root (chroot, a private mount namespace per command) and the
//! stand-in sources that `cargo xtask test` prepares.

mod support;

use support::root::Root;

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

const NAME: &str = "postgresql15-pglogical";
const PREFIX: &str = "/usr/pgsql-15";
const DATA: &str = "/var/lib/pgsql/postgresql15-pglogical/data";
const SUBPACKAGES: &[&str] = &["", "-libs", "-server", "-contrib", "-devel", "-pglogical"];

/// The packages of release 1 and of release 2, made once for both tests.
fn packages() -> &'static (PathBuf, PathBuf) {
    static PACKAGES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let target = support::e2e_target();
        support::standin_stage(&target);
        let made = |release: &str| {
            let out = support::root::lifecycle_dir().join(format!("release-{release}"));
            let _ = fs::remove_dir_all(&out);
            let output = support::xtask(
                &target,
                &[
                    "package",
                    "--set",
                    "pg15-pglogical",
                    "--format",
                    "deb,rpm",
                    "--release",
                    release,
                    "--out",
                    &out.display().to_string(),
                ],
            );
            assert!(
                output.status.success(),
                "packaging release {release} failed: {}",
                support::stderr(&output)
            );
            out
        };
        (made("1"), made("2"))
    })
}

/// Lifecycle's additions to the clean root: the packages copied in, and
/// the server, which is stopped when the root goes.
impl Root {
    /// Copies the packages of `dir` (not the debug symbols) into the root,
    /// under /packages/<dir name>; their paths there.
    fn copy_in(&self, dir: &Path, extension: &str) -> Vec<String> {
        let inside = Path::new("/packages").join(dir.file_name().unwrap());
        let there = self.path().join(inside.strip_prefix("/").unwrap());
        fs::create_dir_all(&there).unwrap();
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(extension)
                && !name.contains("-dbgsym")
                && !name.contains("-debuginfo")
                && !name.ends_with(".src.rpm")
            {
                fs::copy(&path, there.join(&name)).unwrap();
                paths.push(inside.join(&name).display().to_string());
            }
        }
        paths.sort();
        assert_eq!(paths.len(), SUBPACKAGES.len(), "{paths:?}");
        paths
    }

    /// The postmaster's pid, if one runs from this root's data directory.
    fn postmaster(&self) -> Option<i32> {
        let pid_file = self
            .path()
            .join(DATA.trim_start_matches('/'))
            .join("postmaster.pid");
        let pid: i32 = fs::read_to_string(pid_file)
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()?;
        // Ours only: a process whose root is this root. Compared as files
        // (device and inode), not by the link's text: seen from another
        // mount namespace (the suite in `test --fresh-root`), the kernel
        // spells that root's path from the host's root.
        let theirs = fs::metadata(format!("/proc/{pid}/root")).ok()?;
        let ours = fs::metadata(self.path()).ok()?;
        (theirs.dev() == ours.dev() && theirs.ino() == ours.ino()).then_some(pid)
    }

    /// Stops the postmaster of this root (fast shutdown), by its pid.
    fn stop_by_pid(&self) {
        let Some(pid) = self.postmaster() else {
            return;
        };
        unsafe { libc::kill(pid, libc::SIGINT) };
        let started = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() {
            if started.elapsed() > Duration::from_secs(20) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        self.stop_by_pid();
    }
}

/// `pg_ctl` as the service user, inside the root.
fn pg_ctl(action: &str) -> String {
    format!(
        "runuser -u postgres -- {PREFIX}/bin/pg_ctl -D {DATA} -l /var/lib/pgsql/server.log -w \
         -o \"-c listen_addresses='' -k /tmp\" {action}"
    )
}

fn psql(query: &str) -> String {
    format!("cd / && runuser -u postgres -- {PREFIX}/bin/psql -h /tmp -X -Atc \"{query}\" postgres")
}

#[test]
fn debs_install_start_upgrade_and_remove_in_a_clean_debian_root() {
    let (release_1, release_2) = packages();
    let root = Root::new();
    let first = root.copy_in(release_1, ".deb");
    let second = root.copy_in(release_2, ".deb");

    // apt resolves the Depends (libreadline8 is not in minbase) from the archive.
    assert!(!root
        .path()
        .join("usr/lib/x86_64-linux-gnu/libreadline.so.8")
        .exists());
    root.ok("apt-get update -q >/dev/null");
    root.ok(&format!(
        "apt-get install -y -q --no-install-recommends {}",
        first.join(" ")
    ));
    let missing = root.ok(&format!(
        "for f in {PREFIX}/bin/* {PREFIX}/lib/*.so*; do ldd \"$f\" 2>&1 | sed \"s|^|$f: |\"; done"
    ));
    assert!(
        !missing.contains("not found"),
        "unresolved libraries:\n{missing}"
    );
    assert!(missing.contains("libreadline.so.8 =>"), "{missing}");
    assert_eq!(
        root.ok(&format!("{PREFIX}/bin/postgres --version")).trim(),
        "postgres (PostgreSQL) 15.18"
    );
    assert_eq!(
        root.ok(&format!("{PREFIX}/bin/psql --version")).trim(),
        "psql (PostgreSQL) 15.18"
    );

    // The packaged setup script makes the cluster, as the service user.
    root.ok(&format!("{PREFIX}/bin/{NAME}-setup initdb"));
    let owner = root.ok(&format!("stat -c '%U %a' {DATA}"));
    assert_eq!(owner.trim(), "postgres 700");
    let again = root.sh(&format!("{PREFIX}/bin/{NAME}-setup initdb"));
    assert_eq!(again.status.code(), Some(1), "a second initdb must refuse");
    root.ok(&format!("{PREFIX}/bin/{NAME}-setup check"));
    root.ok(&pg_ctl("start"));
    assert_eq!(root.ok(&psql("select 6 * 7")).trim(), "42");

    // Edited configuration, then release 2 of the same version over it.
    root.ok(&format!(
        "echo \"work_mem = '7MB'\" >> {DATA}/postgresql.conf"
    ));
    root.ok(&format!(
        "echo '# edited by the administrator' >> /etc/sysconfig/{NAME}"
    ));
    root.ok(&pg_ctl("stop"));
    root.ok(&format!(
        "apt-get install -y -q --no-install-recommends {}",
        second.join(" ")
    ));
    let version = root.ok(&format!("dpkg-query -W -f '${{Version}}' {NAME}-server"));
    assert_eq!(version, "15.18-2");
    assert!(root
        .ok(&format!("cat /etc/sysconfig/{NAME}"))
        .contains("# edited by the administrator"));
    root.ok(&pg_ctl("start"));
    assert_eq!(root.ok(&psql("show work_mem")).trim(), "7MB");

    // Removal leaves the data, and stops nothing it did not start.
    let running = root.postmaster().expect("the server runs");
    let names: Vec<String> = SUBPACKAGES.iter().map(|s| format!("{NAME}{s}")).collect();
    root.ok(&format!("apt-get remove -y -q {}", names.join(" ")));
    assert!(!root.path().join("usr/pgsql-15/bin/postgres").exists());
    assert!(root
        .path()
        .join(DATA.trim_start_matches('/'))
        .join("PG_VERSION")
        .is_file());
    assert_eq!(
        root.postmaster(),
        Some(running),
        "removal stopped the server"
    );
    root.stop_by_pid();
    assert_eq!(root.postmaster(), None);
}

#[test]
fn rpms_install_verify_upgrade_and_erase_under_rpm_root() {
    let (release_1, release_2) = packages();
    let root = Root::new();
    let rpm_run = |args: &[&str]| {
        let output = Command::new("rpm")
            .arg("--root")
            .arg(root.path())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            support::stderr(&output)
        );
        (output.status.success(), text)
    };
    let rpm = |args: &[&str]| {
        let (success, text) = rpm_run(args);
        assert!(success, "rpm {args:?} failed:\n{text}");
        text
    };
    let host_paths = |dir: &Path| -> Vec<String> {
        let mut paths: Vec<String> = SUBPACKAGES
            .iter()
            .map(|s| {
                dir.join(format!("{NAME}{s}-15.18-{}.x86_64.rpm", release_of(dir)))
                    .display()
                    .to_string()
            })
            .collect();
        paths.sort();
        paths
    };
    rpm(&["--initdb"]);
    // The one library the RPMs need that minbase lacks (they require
    // libssl.so.3: the server is built --with-openssl) comes from Debian, as
    // a host's distribution would provide it.
    let all = host_paths(release_1);
    let mut query = vec!["-qp", "--requires"];
    query.extend(all.iter().map(String::as_str));
    let requires = rpm(&query);
    assert!(requires.contains("libssl.so.3"), "{requires}");
    root.ok("apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends libssl3 >/dev/null");
    // Debian's base system is not in this rpm database: dependencies waived,
    // scriptlets run (in the root, by rpm's chroot).
    let mut install = vec!["-i", "--nodeps"];
    let first = host_paths(release_1);
    install.extend(first.iter().map(String::as_str));
    rpm(&install);
    assert!(
        root.ok("getent passwd postgres").starts_with("postgres:"),
        "%pre server creates the service user"
    );
    // Files only: the dependencies on Debian's base system are not in this database.
    let verify = rpm(&["-V", "--nodeps", "-a"]);
    assert_eq!(
        verify.trim(),
        "",
        "rpm -V finds changes right after install"
    );

    root.ok(&format!("{PREFIX}/bin/{NAME}-setup initdb"));
    root.ok(&format!(
        "echo '# edited by the administrator' >> /etc/sysconfig/{NAME}"
    ));
    let (unchanged, verify) = rpm_run(&["-V", "--nodeps", &format!("{NAME}-server")]);
    assert!(!unchanged, "rpm -V must fail on a changed file");
    assert!(
        verify.contains(&format!(" c /etc/sysconfig/{NAME}")),
        "the edited configuration file is reported:\n{verify}"
    );

    let mut upgrade = vec!["-U", "--nodeps"];
    let second = host_paths(release_2);
    upgrade.extend(second.iter().map(String::as_str));
    rpm(&upgrade);
    assert_eq!(
        rpm(&["-q", &format!("{NAME}-server")]).trim(),
        format!("{NAME}-server-15.18-2.x86_64")
    );
    assert!(root
        .ok(&format!("cat /etc/sysconfig/{NAME}"))
        .contains("# edited by the administrator"));

    let names: Vec<String> = SUBPACKAGES.iter().map(|s| format!("{NAME}{s}")).collect();
    let mut erase = vec!["-e", "--nodeps"];
    erase.extend(names.iter().map(String::as_str));
    rpm(&erase);
    assert!(!root.path().join("usr/pgsql-15/bin/postgres").exists());
    assert!(
        root.path()
            .join(format!("etc/sysconfig/{NAME}.rpmsave"))
            .is_file(),
        "the edited configuration is saved"
    );
    assert!(
        root.path()
            .join(DATA.trim_start_matches('/'))
            .join("PG_VERSION")
            .is_file(),
        "the data stays"
    );
}

/// `1` for `.../release-1`.
fn release_of(dir: &Path) -> String {
    dir.file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("release-")
        .to_owned()
}
