//! The server user and the installation it runs, beneath the cluster: the
//! one place a smoke command is built ([`Server::command`]: as that user,
//! a minimal environment, the installation's own libraries), the
//! installation the servers run (the stage, an unpacked tarball, or a
//! root-owned copy), files and directories written as that user, `initdb`
//! and a postmaster started and waited for. Also what a node is, the
//! database and roles every node has, and a server's files and processes
//! read as hostile (its pid file, its log, `/proc`).
//!
//! The template, TLS and the reaper of dead runs take what they need from
//! here, never from the cluster, which is made of these.

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    net::TcpListener,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Output,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::{interrupt, plan::InRoot, printable::printable, process::Command, sources::archive};

/// The database and its owner, named as in the reference procedure.
pub const DATABASE: &str = "amstest";
pub const OWNER: &str = "amsv2";
pub const REPLICATION_USER: &str = "bdrsync";

/// The user that runs the servers, when it is not the current one.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    pub fn lookup(name: &str) -> anyhow::Result<RunAs> {
        let id = |flag: &str| -> anyhow::Result<u32> {
            let output = Command::new("id").args([flag, name]).output()?;
            if !output.status.success() {
                bail!(
                    "user `{name}` does not exist: servers never run as root, so create it \
                     (`cargo xtask doctor --fix` does) or pass --run-as USER"
                );
            }
            Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
        };
        let user = RunAs {
            name: name.to_owned(),
            uid: id("-u")?,
            gid: id("-g")?,
        };
        if user.uid == 0 {
            bail!("user `{name}` is root: servers never run as root; pass an unprivileged --run-as USER");
        }
        Ok(user)
    }
}

/// One PostgreSQL node of the cluster.
#[derive(Debug, Serialize)]
pub struct Node {
    /// Its name in the group (a recreated node takes a new one).
    pub name: String,
    /// 1, 2, ...: its directory `n<number>`, namespace and certificate.
    pub number: u32,
    /// The one address it listens on and peers reach it at.
    pub address: String,
    /// Its network namespace, with `--network netns`.
    pub netns: Option<String>,
    pub port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    /// The postmaster's pid, once started: teardown stops exactly this one.
    pub pid: Option<u32>,
}

/// The installation as the server user runs it, in the cluster directory.
pub struct Server {
    /// The cluster directory: every command's working directory.
    pub dir: PathBuf,
    /// The programs the servers run: the stage's, or a copy's.
    pub bindir: PathBuf,
    /// The installation as planned (the stage), even when the servers run
    /// a copy of it: what the template's key hashes.
    pub origin_bindir: PathBuf,
    pub run_as: Option<RunAs>,
    /// The servers outlive this run (`--keep`).
    pub keep: bool,
    /// A target's proof root every server program runs in (the cluster
    /// directory mounted into it too); `None`: on this host.
    pub root: Option<InRoot>,
}

impl Server {
    /// What the servers run: the binary `tarball` unpacked in the cluster
    /// directory; or, as another user who cannot reach the stage (a
    /// checkout under /root), a root-owned copy of it there.
    pub(super) fn install(&mut self, tarball: Option<&Path>) -> anyhow::Result<()> {
        if let Some(tarball) = tarball {
            let install = self.dir.join("install");
            let expect = archive::Expect {
                tree: None,
                max_bytes: crate::input::recipe::DEFAULT_MAX_UNPACKED,
            };
            archive::unpack(
                tarball,
                crate::input::recipe::ArchiveKind::TarGz,
                &install,
                &expect,
            )
            .with_context(|| format!("cannot unpack {}", tarball.display()))?;
            self.bindir = install.join("bin");
        }
        if self.run_as.is_some() {
            // The server user may not reach the stage (a checkout under /root):
            // then it runs a root-owned copy inside the cluster directory.
            if !self
                .run(&self.bindir.join("postgres"), &["--version"])
                .is_ok_and(|o| o.status.success())
            {
                let install = self.dir.join("install");
                let prefix = self.bindir.parent().context("bindir has no parent")?;
                copy_installation(prefix, &install)?;
                self.bindir = install.join("bin");
            }
        }
        Ok(())
    }

    /// Where the CA and the node certificates are.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// Where the servers put their unix sockets: a 0700 directory of the
    /// server user, so only that user connects through them.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// An empty directory of the server user's, 0700.
    pub(super) fn mkdir(&self, path: &Path) -> anyhow::Result<()> {
        fs::create_dir(path).with_context(|| format!("cannot create {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))?;
        }
        Ok(())
    }

    /// A command run as the server user, with a minimal environment. The
    /// installation's own libraries come first: the programs' run path names
    /// the installed prefix, which need not exist yet, and the host's libpq
    /// (another version) must not stand in for the one that ships.
    ///
    /// Every command of a smoke cluster is built here.
    pub fn command(&self, program: &Path) -> Command {
        self.host_command(program)
            .in_root_if(self.root.as_ref())
            .also_bind(&self.dir)
    }

    /// [`command`](Self::command), on this host even for a target: for
    /// tools whose output is only files (openssl's certificates).
    pub fn host_command(&self, program: &Path) -> Command {
        let libdir = self.bindir.with_file_name("lib");
        let command = Command::new(program)
            .exact_environment(BTreeMap::from([
                ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
                ("LC_ALL".to_owned(), "C".to_owned()),
                ("LD_LIBRARY_PATH".to_owned(), libdir.display().to_string()),
            ]))
            .cwd(&self.dir);
        match &self.run_as {
            Some(user) => command.as_user(user.uid, user.gid),
            None => command,
        }
    }

    pub(super) fn run(&self, program: &Path, args: &[&str]) -> anyhow::Result<Output> {
        self.command(program).args(args).output()
    }

    /// One of the installation's programs (`pg_dump`, `bdr_init_copy`, ...),
    /// run as the server user inside `node`'s network namespace.
    pub fn tool(&self, node: &Node, program: &str) -> Command {
        let command = self.command(&self.bindir.join(program));
        match &node.netns {
            Some(name) => command.in_netns(name),
            None => command,
        }
    }

    /// Write a file in a directory the server user owns, as that user (`tee`):
    /// a link planted there is followed with that user's rights, never root's.
    pub fn write_as_server_user(
        &self,
        path: &Path,
        text: &str,
        append: bool,
    ) -> anyhow::Result<()> {
        if self.run_as.is_none() {
            let mut file = fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(file.write_all(text.as_bytes())?);
        }
        let mut tee = self.command(Path::new("tee"));
        if append {
            tee = tee.arg("-a");
        }
        tee.arg(path).stdin_bytes(text).checked_output().map(drop)
    }

    /// initdb `data`, for `what` (a node's name) in messages.
    pub(super) fn initdb(&self, data: &Path, what: &str) -> anyhow::Result<()> {
        let data = data.display().to_string();
        // -N: no fsync; a smoke cluster is thrown away.
        let args = [
            "-D",
            &data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-N",
            "-E",
            "UTF8",
            "--locale=C",
        ];
        let output = self.run(&self.bindir.join("initdb"), &args)?;
        if !output.status.success() {
            bail!(
                "initdb for {what} failed: {}",
                printable(&String::from_utf8_lossy(&output.stderr), 4096)
            );
        }
        Ok(())
    }

    /// Start `postgres -D data` (and `options`) as the server user, in
    /// `netns`, its output appended to `log`. Not through `pg_ctl`, which
    /// hands the server to init: started here, it is this run's child and,
    /// unless the cluster is kept, gets SIGQUIT (an immediate shutdown) when
    /// the run dies, however it dies.
    pub(super) fn spawn_postmaster(
        &self,
        netns: Option<&str>,
        data: &Path,
        log: &Path,
        options: &[String],
    ) -> anyhow::Result<u32> {
        let mut command = self
            .command(&self.bindir.join("postgres"))
            .arg("-D")
            .arg(data)
            .args(options)
            .output_appended_to(log);
        if let Some(name) = netns {
            command = command.in_netns(name);
        }
        if !self.keep {
            command = command.tied_to_run(libc::SIGQUIT);
        }
        command.spawn_tied()
    }

    /// Poll `accepting` until the postmaster `pid` (of `what`) accepts
    /// connections; fail as soon as it exits (its log says why).
    pub(super) fn wait_accepting(
        &self,
        pid: u32,
        what: &str,
        accepting: impl Fn() -> bool,
    ) -> anyhow::Result<u32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut delay = Duration::from_millis(5);
        loop {
            interrupt::check()?;
            if !process_alive(pid) {
                bail!("{what} did not start: its postmaster (pid {pid}) exited (its log says why)");
            }
            if accepting() {
                return Ok(pid);
            }
            if Instant::now() > deadline {
                bail!("{what} did not start within 60 s (its log says why)");
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The first line of `postmaster.pid`: a file the server user writes, so
/// read it as hostile (no symlink, no fifo, a few bytes at most).
pub(super) fn read_pid(data: &Path) -> Option<u32> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(data.join("postmaster.pid"))
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Whether the process still runs. A postmaster that has exited stays a
/// zombie until its parent (init, here) reaps it, which some inits do only
/// every second or so: on Linux a zombie counts as gone.
pub(super) fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as i32, 0) } != 0 {
        return false;
    }
    // /proc/<pid>/stat: "pid (comm) S ...", the state after the last ')'.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// The parent of `pid`, from /proc/<pid>/stat ("pid (comm) S ppid ...");
/// None where there is no /proc.
pub(super) fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The last 64 KiB of a server log: a file the server user writes, so read
/// as hostile (no symlink followed, no fifo waited on, a bounded read).
pub(super) fn read_tail(path: &Path) -> Option<String> {
    use std::io::Seek;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    file.seek(std::io::SeekFrom::Start(
        meta.len().saturating_sub(64 << 10),
    ))
    .ok()?;
    let mut bytes = Vec::new();
    file.take(64 << 10).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Copy an installation the server user cannot reach, root-owned: `tar -c`
/// run as the installation's owner (so it reads nothing that user could not,
/// whatever they swap in while it runs), unpacked by root as hostile input.
fn copy_installation(prefix: &Path, to: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(prefix)
        .with_context(|| format!("cannot read {}", prefix.display()))?;
    let (Some(parent), Some(name)) = (prefix.parent(), prefix.file_name()) else {
        bail!("cannot copy {}: it has no parent", prefix.display());
    };
    // Its messages go to a file of root's, not to root's terminal.
    let messages = to.with_extension("copy-messages");
    let tar = Command::new("tar")
        .args(["-c", "-f", "-", "-C"])
        .arg(parent)
        .arg(name)
        .as_user(meta.uid(), meta.gid())
        .stderr_to(&messages);
    let reader = tar.read_stdout()?;
    let expect = archive::Expect {
        tree: None,
        max_bytes: crate::input::recipe::DEFAULT_MAX_UNPACKED,
    };
    archive::unpack_reader(&reader, to, &expect)
        .with_context(|| format!("cannot copy {} for the server user", prefix.display()))?;
    match reader.try_wait()? {
        Some(output) if output.status.success() => Ok(()),
        _ => bail!(
            "cannot copy {} for the server user: `{tar}`, run as its owner (uid {}), failed: {}",
            prefix.display(),
            meta.uid(),
            printable(read_tail(&messages).unwrap_or_default().trim(), 2000)
        ),
    }
}
