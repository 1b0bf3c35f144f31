//! A cluster of real PostgreSQL nodes on 127.0.0.1: made, configured,
//! started, queried and torn down. Dropping a [`Cluster`] stops every server
//! it started and removes its directory, unless it is kept.
//!
//! The cluster directory is short and lives in the temporary directory: unix
//! socket paths are limited to about 107 bytes, and the unprivileged server
//! user must be able to reach it. Run as root for another user, everything
//! but the empty data and socket directories stays root's.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
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

use super::config;
use crate::{
    files, interrupt, plan::Smoke, printable::printable, process::Command, sources::archive,
};

/// How long any one wait may take before the check fails.
pub const DEADLINE: Duration = Duration::from_secs(60);
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
    pub name: String,
    pub port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    /// The postmaster's pid, once started: teardown stops exactly this one.
    pub pid: Option<u32>,
}

/// A running cluster. Dropping it stops every server it started and removes
/// its directory, unless it is kept.
pub struct Cluster {
    pub dir: PathBuf,
    pub bindir: PathBuf,
    pub nodes: Vec<Node>,
    pub run_as: Option<RunAs>,
    pub password: String,
    pub major: u32,
    pub keep: bool,
}

impl Cluster {
    pub fn create(
        smoke: &Smoke,
        set: &str,
        run_as: Option<RunAs>,
        tarball: Option<&Path>,
    ) -> anyhow::Result<Cluster> {
        let dir = files::make_temporary_dir(&format!("bdr-dist-{set}-"))?;
        // Run as root for another user: the cluster directory and the copy of
        // the installation stay root's (the servers only read and run them);
        // only the empty data and socket directories are the user's.
        let mode = if run_as.is_some() { 0o711 } else { 0o700 };
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
        let mut cluster = Cluster {
            dir: dir.clone(),
            bindir: smoke.bindir.clone(),
            nodes: Vec::new(),
            run_as,
            password: random_password()?,
            major: 0,
            keep: smoke.keep,
        };
        cluster.mkdir(&cluster.socket_dir())?;
        if let Some(tarball) = tarball {
            let install = dir.join("install");
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
            cluster.bindir = install.join("bin");
        }
        if cluster.run_as.is_some() {
            // The server user may not reach the stage (a checkout under /root):
            // then it runs a root-owned copy inside the cluster directory.
            if !cluster
                .run(&cluster.bindir.join("postgres"), &["--version"])
                .is_ok_and(|o| o.status.success())
            {
                let install = dir.join("install");
                let prefix = cluster.bindir.parent().context("bindir has no parent")?;
                copy_installation(prefix, &install)?;
                cluster.bindir = install.join("bin");
            }
        }
        let version = cluster.run(&cluster.bindir.join("postgres"), &["--version"])?;
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        cluster.major = server_major(&version)
            .with_context(|| format!("cannot read the server version from `{}`", version.trim()))?;
        for index in 1..=smoke.nodes {
            let node_dir = dir.join(format!("n{index}"));
            cluster.mkdir(&node_dir)?;
            cluster.nodes.push(Node {
                name: format!("node{index}"),
                port: free_port()?,
                data: node_dir.join("data"),
                log: node_dir.join("server.log"),
                pid: None,
            });
        }
        Ok(cluster)
    }

    /// Where the servers put their unix sockets: a 0700 directory of the
    /// server user, so only that user connects through them.
    fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// An empty directory of the server user's, 0700.
    fn mkdir(&self, path: &Path) -> anyhow::Result<()> {
        fs::create_dir(path).with_context(|| format!("cannot create {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))?;
        }
        Ok(())
    }

    /// A command run as the server user, with a minimal environment.
    pub fn command(&self, program: &Path) -> Command {
        let command = Command::new(program)
            .exact_environment(BTreeMap::from([
                ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
                ("LC_ALL".to_owned(), "C".to_owned()),
            ]))
            .cwd(&self.dir);
        match &self.run_as {
            Some(user) => command.as_user(user.uid, user.gid),
            None => command,
        }
    }

    fn run(&self, program: &Path, args: &[&str]) -> anyhow::Result<Output> {
        self.command(program).args(args).output()
    }

    /// initdb every node (in parallel), configure, start (in parallel).
    pub fn start_all(&mut self, smoke: &Smoke) -> anyhow::Result<()> {
        let started = Instant::now();
        self.init_all()?;
        self.configure_all(smoke)?;
        self.launch_all()?;
        eprintln!(
            "{:>12} {} nodes initialized and started in {:.1}s",
            "Up",
            self.nodes.len(),
            started.elapsed().as_secs_f64()
        );
        interrupt::check()
    }

    /// initdb every node, in parallel.
    fn init_all(&self) -> anyhow::Result<()> {
        let initdb = self.bindir.join("initdb");
        let results = self.in_parallel(|node| {
            let data = node.data.display().to_string();
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
            let output = self.run(&initdb, &args)?;
            if !output.status.success() {
                bail!(
                    "initdb for {} failed: {}",
                    node.name,
                    printable(&String::from_utf8_lossy(&output.stderr), 4096)
                );
            }
            Ok(())
        });
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(())
    }

    /// Append the smoke settings to each `postgresql.conf`, replace `pg_hba.conf`.
    fn configure_all(&self, smoke: &Smoke) -> anyhow::Result<()> {
        let (auth, encryption) = config::auth_methods(self.major);
        let socket_dir = self.socket_dir().display().to_string();
        for node in &self.nodes {
            let settings = config::NodeSettings {
                port: node.port,
                socket_dir: &socket_dir,
                preload: &smoke.preload,
                nodes: self.nodes.len(),
                password_encryption: encryption,
            };
            let conf = config::postgresql_conf(&settings);
            self.write_as_server_user(&node.data.join("postgresql.conf"), &conf, true)?;
            let hba = config::pg_hba_conf(REPLICATION_USER, auth);
            self.write_as_server_user(&node.data.join("pg_hba.conf"), &hba, false)?;
        }
        Ok(())
    }

    /// Write a file in a directory the server user owns, as that user (`tee`):
    /// a link planted there is followed with that user's rights, never root's.
    fn write_as_server_user(&self, path: &Path, text: &str, append: bool) -> anyhow::Result<()> {
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

    /// Start every server, in parallel, and record each postmaster's pid.
    fn launch_all(&mut self) -> anyhow::Result<()> {
        let pg_ctl = self.bindir.join("pg_ctl");
        let starts = self.in_parallel(|node| {
            let (data, log) = (
                node.data.display().to_string(),
                node.log.display().to_string(),
            );
            let output = self.run(
                &pg_ctl,
                &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
            )?;
            // The pid file exists once the postmaster runs, even if start then failed.
            let pid = read_pid(&node.data);
            if !output.status.success() {
                bail!(
                    "{} did not start: {}",
                    node.name,
                    printable(String::from_utf8_lossy(&output.stdout).trim(), 4096)
                );
            }
            pid.with_context(|| format!("{} started but wrote no postmaster.pid", node.name))
        });
        let mut first_error = None;
        for (node, result) in self.nodes.iter_mut().zip(starts) {
            node.pid = read_pid(&node.data);
            match result {
                Ok(pid) => eprintln!(
                    "{:>12} {} on 127.0.0.1:{} (pid {pid})",
                    "Started", node.name, node.port
                ),
                Err(error) => first_error = first_error.or(Some(error)),
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Run `work` for every node at once, one thread each; results in node order.
    pub fn in_parallel<T: Send>(
        &self,
        work: impl Fn(&Node) -> anyhow::Result<T> + Sync,
    ) -> Vec<anyhow::Result<T>> {
        thread::scope(|scope| {
            let handles: Vec<_> = self
                .nodes
                .iter()
                .map(|node| scope.spawn(|| work(node)))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("node thread panicked"))
                .collect()
        })
    }

    /// Run SQL on a node through its unix socket; returns psql's unaligned output.
    pub fn sql(&self, node: &Node, database: &str, sql: &str) -> anyhow::Result<String> {
        let port = node.port.to_string();
        let socket = self.socket_dir().display().to_string();
        // psql 9.4 runs only the last of several -c options: send SQL on stdin.
        let output = self
            .command(&self.bindir.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &socket,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .stdin_bytes(sql)
            .output()?;
        if !output.status.success() {
            bail!(
                "on {}: {}",
                node.name,
                printable(String::from_utf8_lossy(&output.stderr).trim(), 4096)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Poll `sql` on `node` until `done` accepts its output, or the deadline.
    pub fn poll(
        &self,
        node: &Node,
        sql: &str,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        self.poll_within(node, sql, done, DEADLINE)
    }

    /// `poll` with a deadline of its own.
    pub fn poll_within(
        &self,
        node: &Node,
        sql: &str,
        done: impl Fn(&str) -> bool,
        within: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        let mut delay = Duration::from_millis(20);
        loop {
            interrupt::check()?;
            let last = self.sql(node, DATABASE, sql);
            match &last {
                Ok(output) if done(output) => return Ok(output.clone()),
                _ if Instant::now() >= deadline => {
                    let seen = match last {
                        Ok(output) => format!("last answer `{output}`"),
                        Err(error) => format!("last error: {error:#}"),
                    };
                    bail!(
                        "on {}: `{}` did not reach the expected answer within {within:?} ({seen})",
                        node.name,
                        sql.trim()
                    );
                }
                _ => {}
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }

    pub fn dsn(&self, node: &Node) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={DATABASE} user={REPLICATION_USER} password={}",
            node.port, self.password
        )
    }

    pub fn print_log_tails(&self) {
        for node in &self.nodes {
            let text = printable(&read_tail(&node.log).unwrap_or_default(), 64 << 10);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(20)..];
            eprintln!(
                "--- {} log tail ({}):\n{}",
                node.name,
                node.log.display(),
                tail.join("\n")
            );
        }
    }

    pub fn print_keep_instructions(&self) {
        // pg_ctl must run as the servers' owner; su is on every platform, sudo is not.
        let as_owner = |command: String| match &self.run_as {
            Some(user) => format!(
                "su -s /bin/sh {} -c {}",
                user.name,
                crate::plan::shell_quote(&command)
            ),
            None => command,
        };
        let mut text = String::from("The cluster keeps running (--keep):\n");
        for node in &self.nodes {
            let psql = format!(
                "{} -h {} -p {} -U postgres {DATABASE}",
                self.bindir.join("psql").display(),
                self.socket_dir().display(),
                node.port
            );
            let _ = writeln!(
                text,
                "  {}: {}\n      replication user: {}",
                node.name,
                as_owner(psql),
                self.dsn(node)
            );
        }
        let _ = writeln!(text, "Stop it and remove its directory with:");
        for node in &self.nodes {
            let stop = format!(
                "{} -D {} -m fast stop",
                self.bindir.join("pg_ctl").display(),
                node.data.display()
            );
            let _ = writeln!(text, "  {}", as_owner(stop));
        }
        let _ = write!(text, "  rm -rf {}", self.dir.display());
        eprintln!("{text}");
    }

    /// Send `signal` to `pid` as the server user (a process of another user
    /// is out of its reach), or directly when the servers run as us.
    fn signal(&self, pid: u32, signal: i32) {
        match &self.run_as {
            Some(_) => {
                let _ = self
                    .command(Path::new("/bin/kill"))
                    .args([format!("-{signal}"), pid.to_string()])
                    .output();
            }
            // SAFETY: signals a server this run started, as its owner.
            None => unsafe {
                libc::kill(pid as i32, signal);
            },
        }
    }

    /// Stop every server this run started (by its pid file's pid), all at
    /// once, then remove the directory.
    fn teardown(&mut self) {
        let pg_ctl = self.bindir.join("pg_ctl");
        self.in_parallel(|node| {
            let Some(pid) = node.pid.or_else(|| read_pid(&node.data)) else {
                return Ok(());
            };
            let data = node.data.display().to_string();
            let stopped = self
                .run(
                    &pg_ctl,
                    &["-D", &data, "-m", "fast", "-w", "-t", "30", "stop"],
                )
                .is_ok_and(|output| output.status.success());
            if !stopped || process_alive(pid) {
                // pg_ctl could not do it: signal the postmaster we started, by
                // pid, as the server user, so that a pid file that user wrote
                // can never point root's signal at anything else.
                self.signal(pid, libc::SIGQUIT);
                let deadline = Instant::now() + Duration::from_secs(10);
                while process_alive(pid) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(50));
                }
                if process_alive(pid) {
                    self.signal(pid, libc::SIGKILL);
                }
            }
            Ok(())
        });
        if let Err(error) = fs::remove_dir_all(&self.dir) {
            eprintln!("warning: cannot remove {}: {error}", self.dir.display());
        }
        eprintln!(
            "{:>12} cluster stopped and {} removed",
            "Teardown",
            self.dir.display()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.keep || interrupt::requested() {
            self.teardown();
        }
    }
}

fn server_major(version: &str) -> Option<u32> {
    // "postgres (PostgreSQL) 15.18" or "postgres (PostgreSQL) 9.4.13"
    let number = version.split_whitespace().last()?;
    let mut parts = number.split('.');
    // The major version alone: 15, or 9 for 9.4 (enough to pick md5 or scram).
    parts.next()?.parse().ok()
}

fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The first line of `postmaster.pid`: a file the server user writes, so
/// read it as hostile (no symlink, no fifo, a few bytes at most).
fn read_pid(data: &Path) -> Option<u32> {
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

fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

/// The last 64 KiB of a server log: a file the server user writes, so read
/// as hostile (no symlink followed, no fifo waited on, a bounded read).
fn read_tail(path: &Path) -> Option<String> {
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
