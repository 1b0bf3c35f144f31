//! The one way this tool starts a process: build steps, rpmbuild, psql,
//! initdb and the servers, the doctor's package manager, the test suite.
//!
//! A [`Command`] sees a scrubbed environment (an allowlist, `LC_ALL=C` and its
//! own variables) unless it asks to inherit the caller's; runs in a process
//! group of its own, so that a signal to the run stops it whole; and is
//! stopped (SIGTERM, then SIGKILL) when the run is interrupted. Built on duct.

use std::{
    collections::BTreeMap,
    ffi::{OsStr, OsString},
    fmt,
    io::{BufRead, BufReader, Write},
    os::unix::process::{CommandExt, ExitStatusExt},
    path::{Path, PathBuf},
    process::{ExitStatus, Output},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use crate::{
    interrupt,
    plan::{shell_quote, InRoot},
};

/// Inherited environment variables that commands keep. Everything else
/// (`MAKEFLAGS`, `CARGO_*`, `TARGET`, `CFLAGS`, `PG*`, ...) is dropped, so a
/// build depends only on its plan, which is what its stamp hashes.
pub const KEPT_ENVIRONMENT: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TERM", "SHELL", "TZ",
];

/// How long a stopped command gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// The kept variables of this process's environment, and `LC_ALL=C`.
pub fn scrubbed_environment() -> BTreeMap<String, String> {
    let mut environment: BTreeMap<String, String> = std::env::vars()
        .filter(|(name, _)| KEPT_ENVIRONMENT.contains(&name.as_str()))
        .collect();
    environment.insert("LC_ALL".into(), "C".into());
    environment
        .entry("PATH".into())
        .or_insert_with(|| "/usr/bin:/bin".into());
    environment
}

#[derive(Debug, Clone)]
enum Environment {
    /// The scrubbed environment and these variables.
    Scrubbed(BTreeMap<String, String>),
    /// Exactly these variables.
    Exact(BTreeMap<String, String>),
    /// The caller's environment, these variables set and those removed.
    Inherited(BTreeMap<String, String>, Vec<String>),
}

/// A command to run, as plain data until it runs.
#[derive(Debug, Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    environment: Environment,
    user: Option<(u32, u32)>,
    /// A network namespace (`/run/netns/NAME`) to enter before anything else.
    netns: Option<PathBuf>,
    own_group: bool,
    stdin: Option<Vec<u8>>,
    /// A file for stdin, opened by us: the child needs no right to its path.
    stdin_file: Option<PathBuf>,
    /// Where stderr goes when stdout is read as a stream.
    stderr_file: Option<PathBuf>,
    /// Stdout and stderr appended to this file, opened by the child itself
    /// once it is its user (a link planted there gets that user's rights).
    output_file: Option<PathBuf>,
    /// The signal the child gets when this run dies, however it dies.
    parent_death: Option<i32>,
    /// Not stopped when the run is interrupted: teardown's own commands.
    interruptible: bool,
    /// A session of its own (a server started in the background).
    own_session: bool,
    /// A clean root to run in (Linux, as root).
    root: Option<InRoot>,
}

impl Command {
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            cwd: None,
            environment: Environment::Scrubbed(BTreeMap::new()),
            user: None,
            netns: None,
            own_group: true,
            stdin: None,
            stdin_file: None,
            stderr_file: None,
            output_file: None,
            parent_death: None,
            interruptible: true,
            own_session: false,
            root: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Command {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Command {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Command {
        self.cwd = Some(dir.into());
        self
    }

    /// Set one variable (on top of the scrubbed or inherited environment).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Command {
        let (name, value) = (name.into(), value.into());
        match &mut self.environment {
            Environment::Scrubbed(vars)
            | Environment::Exact(vars)
            | Environment::Inherited(vars, _) => {
                vars.insert(name, value);
            }
        }
        self
    }

    /// Run with exactly these variables and no others.
    pub fn exact_environment(mut self, vars: BTreeMap<String, String>) -> Command {
        self.environment = Environment::Exact(vars);
        self
    }

    /// Run with the caller's environment: for tools that need the user's
    /// settings (the package manager, cargo), never for a build step.
    pub fn inherit_environment(mut self) -> Command {
        if let Environment::Scrubbed(vars) | Environment::Exact(vars) = &self.environment {
            self.environment = Environment::Inherited(vars.clone(), Vec::new());
        }
        self
    }

    /// Drop one inherited variable.
    pub fn remove_env(mut self, name: &str) -> Command {
        if let Environment::Inherited(_, removed) = &mut self.environment {
            removed.push(name.to_owned());
        }
        self
    }

    /// Run as another user (when root).
    pub fn as_user(mut self, uid: u32, gid: u32) -> Command {
        self.user = Some((uid, gid));
        self
    }

    /// Run inside the named network namespace (Linux, as root): entered
    /// before the command drops to its user, if it has one.
    pub fn in_netns(mut self, name: &str) -> Command {
        self.netns = Some(Path::new("/run/netns").join(name));
        self
    }

    /// Run inside `root` (Linux, as root): in a mount namespace of its own,
    /// its binds, `/dev` and `/proc` mounted at their own paths, then
    /// `chroot`, before the command drops to its user. The program is looked
    /// up on `PATH` inside the root; the working directory is the same path
    /// there, so it must be one of the binds or below one.
    pub fn in_root(mut self, root: &InRoot) -> Command {
        self.root = Some(root.clone());
        self
    }

    /// [`in_root`](Self::in_root), when there is one.
    pub fn in_root_if(self, root: Option<&InRoot>) -> Command {
        match root {
            Some(root) => self.in_root(root),
            None => self,
        }
    }

    /// Mount one more directory at its own path inside the root (a smoke
    /// cluster's directory); nothing without a root.
    pub fn also_bind(mut self, dir: impl Into<PathBuf>) -> Command {
        if let Some(root) = &mut self.root {
            root.binds.push(dir.into());
        }
        self
    }

    /// Stay in the caller's process group: for a command that may ask
    /// something on the terminal (sudo's password) or that the user expects
    /// Ctrl-C to reach directly.
    pub fn in_callers_group(mut self) -> Command {
        self.own_group = false;
        self
    }

    /// Send stderr to this file when stdout is read as a stream
    /// ([`read_stdout`](Self::read_stdout)), rather than to ours.
    pub fn stderr_to(mut self, path: impl Into<PathBuf>) -> Command {
        self.stderr_file = Some(path.into());
        self
    }

    /// Append stdout and stderr to `path`, opened (created 0600, never
    /// through a symlink) by the child after it became its user: for a
    /// server's log in a directory that user owns.
    pub fn output_appended_to(mut self, path: impl Into<PathBuf>) -> Command {
        self.output_file = Some(path.into());
        self
    }

    /// The child gets `signal` when this run dies, even by SIGKILL (Linux's
    /// parent-death signal, set after the child became its user, since a
    /// change of credentials clears it). Only for [`spawn_tied`](Self::spawn_tied):
    /// the signal follows the thread that forked, and that one lives as long
    /// as the run.
    pub fn tied_to_run(mut self, signal: i32) -> Command {
        self.parent_death = Some(signal);
        self
    }

    /// Run to the end even when the run is interrupted: for what teardown
    /// itself runs (stopping servers, removing namespaces), which a signal
    /// must not cut short.
    pub fn uninterruptible(mut self) -> Command {
        self.interruptible = false;
        self
    }

    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Command {
        self.stdin = Some(bytes.into());
        self
    }

    /// Stdin from a file this process opens (for a command run as another
    /// user who cannot reach it).
    pub fn stdin_file(mut self, path: impl Into<PathBuf>) -> Command {
        self.stdin_file = Some(path.into());
        self
    }

    /// The environment the command will see.
    pub fn environment(&self) -> BTreeMap<String, String> {
        match &self.environment {
            Environment::Scrubbed(vars) => {
                let mut all = scrubbed_environment();
                all.extend(vars.clone());
                all
            }
            Environment::Exact(vars) => vars.clone(),
            Environment::Inherited(vars, removed) => {
                let mut all: BTreeMap<String, String> = std::env::vars()
                    .filter(|(name, _)| !removed.contains(name))
                    .collect();
                all.extend(vars.clone());
                all
            }
        }
    }

    /// The command line, quoted as a POSIX shell would read it back.
    pub fn line(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|arg| shell_quote(&arg.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn expression(&self) -> duct::Expression {
        let jail = self
            .root
            .as_ref()
            .map(|root| Jail::new(root, self.cwd.as_deref()));
        let mut expression = duct::cmd(&self.program, &self.args)
            .full_env(self.environment())
            .unchecked();
        if let Some(dir) = &self.cwd {
            expression = expression.dir(dir);
        }
        let setup = ChildSetup {
            netns: self.netns.as_ref().map(|path| c_path(path)),
            user: self.user,
            own_group: self.own_group,
            own_session: self.own_session || self.user.is_some(),
            parent_death: self.parent_death.map(|signal| (signal, std::process::id())),
            output_file: self.output_file.as_ref().map(|path| c_path(path)),
            jail,
        };
        expression.before_spawn(move |command| {
            if setup.is_plain() {
                command.process_group(0);
                return Ok(());
            }
            let setup = setup.clone();
            // SAFETY: the setup makes only async-signal-safe system calls.
            unsafe {
                command.pre_exec(move || setup.apply());
            }
            Ok(())
        })
    }

    /// Start `expression`, wait for it, and stop it if the run is interrupted.
    fn wait_watched(&self, expression: duct::Expression) -> anyhow::Result<Output> {
        let handle = expression.start().with_context(|| self.spawn_error())?;
        let pid = handle.pids().first().copied();
        let _watch = pid
            .filter(|_| self.interruptible)
            .map(|pid| Watch::start(pid, self.own_group));
        let output = handle
            .wait()
            .with_context(|| format!("cannot wait for `{}`", self.line()))?;
        if self.interruptible {
            interrupt::check()?;
        }
        Ok(output.clone())
    }

    /// Start the command in the background, from the one thread that lives
    /// as long as the run (so a [`tied_to_run`](Self::tied_to_run) signal
    /// comes only when the run dies), with stdin from /dev/null, its output
    /// to its [`output_appended_to`](Self::output_appended_to) file or
    /// nowhere, in a session of its own; reaped when it exits. Its pid.
    pub fn spawn_tied(&self) -> anyhow::Result<u32> {
        let mut daemon = self.clone();
        daemon.own_session = true;
        let expression = daemon.expression().stdin_null().stdout_null().stderr_null();
        let (reply, answer) = mpsc::channel();
        spawner()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send((expression, reply))
            .map_err(|_| anyhow::anyhow!("the spawner thread is gone"))?;
        answer
            .recv()
            .context("the spawner thread is gone")?
            .with_context(|| self.spawn_error())
    }

    /// Its stdin: the bytes given, or nothing.
    fn with_stdin(&self, expression: duct::Expression) -> duct::Expression {
        match (&self.stdin, &self.stdin_file) {
            (Some(bytes), _) => expression.stdin_bytes(bytes.clone()),
            (None, Some(path)) => expression.stdin_path(path),
            (None, None) => expression.stdin_null(),
        }
    }

    fn spawn_error(&self) -> String {
        match &self.cwd {
            Some(dir) => format!("cannot start `{}` in {}", self.line(), dir.display()),
            None => format!("cannot start `{}`", self.line()),
        }
    }

    /// Run to the end with stdout and stderr captured; the status is not
    /// checked. Stopped early when the run is interrupted.
    pub fn output(&self) -> anyhow::Result<Output> {
        let expression = self.with_stdin(self.expression().stdout_capture().stderr_capture());
        let output = self.wait_watched(expression)?;
        Ok(output)
    }

    /// [`output`](Self::output), with a failure status turned into an error
    /// that shows the command, its status and its stderr.
    pub fn checked_output(&self) -> anyhow::Result<Output> {
        let output = self.output()?;
        if !output.status.success() {
            bail!(
                "`{}` failed: {}\n{}",
                self.line(),
                describe_status(output.status),
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        Ok(output)
    }

    /// Run with stdout and stderr merged, every byte copied to `log` and
    /// every line given to `on_line`. Stopped when the run is interrupted.
    pub fn run_logged(
        &self,
        log: &mut impl Write,
        mut on_line: impl FnMut(&str),
    ) -> anyhow::Result<ExitStatus> {
        let expression = self.with_stdin(self.expression().stderr_to_stdout());
        let handle = expression.reader().with_context(|| self.spawn_error())?;
        let pid = handle.pids().first().copied();
        let watch = pid
            .filter(|_| self.interruptible)
            .map(|pid| Watch::start(pid, self.own_group));
        let mut reader = BufReader::new(&handle);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            let read = reader
                .read_until(b'\n', &mut buffer)
                .context("cannot read the command's output")?;
            if read == 0 {
                break;
            }
            log.write_all(&buffer)?;
            on_line(String::from_utf8_lossy(&buffer).trim_end());
        }
        drop(watch);
        if interrupt::requested() {
            let _ = handle.kill();
            return Err(interrupt::Interrupted.into());
        }
        let output = handle
            .try_wait()?
            .context("the command closed its output but did not finish")?;
        Ok(output.status)
    }

    /// Start, and read its stdout as it comes (stderr goes to ours); the
    /// status is checked when the reader reaches the end.
    pub fn read_stdout(&self) -> anyhow::Result<duct::ReaderHandle> {
        let mut expression = self.expression().stdin_null();
        if let Some(path) = &self.stderr_file {
            expression = expression.stderr_path(path);
        }
        expression.reader().with_context(|| self.spawn_error())
    }

    /// Run with the terminal's stdin, stdout and stderr; the status is checked.
    pub fn run_in_terminal(&self) -> anyhow::Result<()> {
        let output = self.wait_watched(self.expression())?;
        if !output.status.success() {
            bail!(
                "`{}` failed: {}",
                self.line(),
                describe_status(output.status)
            );
        }
        Ok(())
    }

    /// `self | next > stdout`, both commands stopped on interruption.
    pub fn pipe_to_file(&self, next: &Command, stdout: &Path) -> anyhow::Result<()> {
        let expression = self
            .expression()
            .pipe(next.expression())
            .stdout_path(stdout);
        let handle = expression.start().with_context(|| self.spawn_error())?;
        let watches: Vec<Watch> = handle
            .pids()
            .into_iter()
            .map(|pid| Watch::start(pid, true))
            .collect();
        let output = handle.wait()?;
        drop(watches);
        interrupt::check()?;
        if !output.status.success() {
            bail!(
                "`{} | {}` failed: {}",
                self.line(),
                next.line(),
                describe_status(output.status)
            );
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

fn c_path(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in a path")
}

/// What a child does between fork and exec, in this order: enter its
/// network namespace (which needs root), enter its root (a mount namespace
/// and `chroot`, which need root too), become its user (std would change
/// the ids before any `pre_exec`, too early for `setns`), leave our session
/// or process group, close what it inherited above stderr, ask for the
/// parent-death signal (a change of credentials clears it, so after the
/// ids), and open its output file as its user.
#[derive(Clone)]
struct ChildSetup {
    netns: Option<std::ffi::CString>,
    user: Option<(u32, u32)>,
    own_group: bool,
    own_session: bool,
    /// The signal, and the pid the parent had when the command was built.
    parent_death: Option<(i32, u32)>,
    output_file: Option<std::ffi::CString>,
    jail: Option<Jail>,
}

/// An [`InRoot`] as the child applies it: every path made before the fork.
#[derive(Clone)]
struct Jail {
    root: std::ffi::CString,
    /// Directories made inside the root, parents first, for the mounts.
    mkdirs: Vec<std::ffi::CString>,
    /// (source, target inside the root, recursive).
    mounts: Vec<(std::ffi::CString, std::ffi::CString, bool)>,
    proc_dir: std::ffi::CString,
    cwd: std::ffi::CString,
}

impl Jail {
    fn new(root: &InRoot, cwd: Option<&Path>) -> Jail {
        let inside = |path: &Path| root.root.join(path.strip_prefix("/").unwrap_or(path));
        let mut mkdirs = Vec::new();
        let mut mounts = Vec::new();
        let dev = Path::new("/dev");
        for (dir, recursive) in std::iter::once((dev, true))
            .chain(root.binds.iter().map(|bind| (bind.as_path(), false)))
        {
            let mut ancestors: Vec<&Path> =
                dir.ancestors().filter(|a| a.parent().is_some()).collect();
            ancestors.reverse();
            mkdirs.extend(ancestors.into_iter().map(|a| c_path(&inside(a))));
            mounts.push((c_path(dir), c_path(&inside(dir)), recursive));
        }
        Jail {
            root: c_path(&root.root),
            mkdirs,
            mounts,
            proc_dir: c_path(&root.root.join("proc")),
            cwd: c_path(cwd.unwrap_or(Path::new("/"))),
        }
    }

    /// In the child: a private mount namespace, the mounts, `chroot`.
    #[cfg(target_os = "linux")]
    fn enter(&self) -> std::io::Result<()> {
        let check = |result: libc::c_int| {
            if result == -1 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        // SAFETY: plain system calls in the child between fork and exec,
        // on strings made before the fork.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for dir in &self.mkdirs {
                if libc::mkdir(dir.as_ptr(), 0o755) == -1
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (source, target, recursive) in &self.mounts {
                let flags = libc::MS_BIND | if *recursive { libc::MS_REC } else { 0 };
                check(libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                ))?;
            }
            check(libc::mount(
                c"proc".as_ptr(),
                self.proc_dir.as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ))?;
            check(libc::chroot(self.root.as_ptr()))?;
            check(libc::chdir(self.cwd.as_ptr()))?;
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn enter(&self) -> std::io::Result<()> {
        Err(std::io::Error::other("clean roots are Linux's"))
    }
}

impl ChildSetup {
    /// Nothing but a process group of its own.
    fn is_plain(&self) -> bool {
        self.netns.is_none()
            && self.jail.is_none()
            && self.user.is_none()
            && !self.own_session
            && self.parent_death.is_none()
            && self.output_file.is_none()
            && self.own_group
    }

    /// In the child: only async-signal-safe system calls.
    fn apply(&self) -> std::io::Result<()> {
        let check = |result: libc::c_int| {
            if result == -1 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(result)
            }
        };
        // SAFETY: plain system calls in the child between fork and exec.
        unsafe {
            if let Some(path) = &self.netns {
                enter_netns(path)?;
            }
            if let Some(jail) = &self.jail {
                jail.enter()?;
            }
            if let Some((uid, gid)) = self.user {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
            // Another user's process, or a server: a session of its own, so
            // no controlling terminal (another user could otherwise type
            // into root's with TIOCSTI), and nothing of ours but stdio.
            if self.own_session {
                check(libc::setsid())?;
                close_inherited_descriptors();
            } else if self.own_group {
                check(libc::setpgid(0, 0))?;
            }
            if let Some((signal, parent)) = self.parent_death {
                set_parent_death_signal(signal)?;
                // The parent may have died before the request took hold.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::other("the run died while starting it"));
                }
            }
            if let Some(path) = &self.output_file {
                let fd = check(libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_APPEND
                        | libc::O_CREAT
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o600,
                ))?;
                check(libc::dup2(fd, 1))?;
                check(libc::dup2(fd, 2))?;
                libc::close(fd);
            }
        }
        Ok(())
    }
}

/// Enter the network namespace at `path`.
#[cfg(target_os = "linux")]
fn enter_netns(path: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: plain system calls in the child between fork and exec.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd == -1 || libc::setns(fd, libc::CLONE_NEWNET) == -1 {
            return Err(std::io::Error::last_os_error());
        }
        libc::close(fd);
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn enter_netns(_path: &std::ffi::CStr) -> std::io::Result<()> {
    Err(std::io::Error::other("network namespaces are Linux's"))
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(signal: i32) -> std::io::Result<()> {
    // SAFETY: prctl on the calling (child) process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// No parent-death signal here: the next command's reaper stops what a
/// dead run left (see `smoke::leftovers`).
#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_signal: i32) -> std::io::Result<()> {
    Ok(())
}

/// What [`Command::spawn_tied`] hands the spawner: the command, and where
/// its pid (or the spawn's error) goes.
type Spawn = (duct::Expression, mpsc::Sender<std::io::Result<u32>>);

/// The thread that starts every [`Command::spawn_tied`] child. It never
/// returns, so a child's parent-death signal comes only when the whole run
/// dies; each child is waited for by a thread of its own, so none lingers
/// as a zombie.
fn spawner() -> &'static std::sync::Mutex<mpsc::Sender<Spawn>> {
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<mpsc::Sender<Spawn>>> =
        std::sync::OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<Spawn>();
        thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                for (expression, reply) in incoming {
                    let started = expression.start().map(|handle| {
                        let pid = handle.pids()[0];
                        thread::spawn(move || {
                            let _ = handle.wait();
                        });
                        pid
                    });
                    let _ = reply.send(started);
                }
            })
            .expect("cannot start the spawner thread");
        std::sync::Mutex::new(requests)
    })
}

/// Close every descriptor above stderr, in a child about to run as another
/// user or to outlive this command.
fn close_inherited_descriptors() {
    #[cfg(target_os = "linux")]
    // SAFETY: closes descriptors of this (child) process only.
    unsafe {
        libc::close_range(3, u32::MAX, 0);
    }
    #[cfg(not(target_os = "linux"))]
    // SAFETY: as above.
    unsafe {
        libc::closefrom(3);
    }
}

/// `exit status: 2`, or `killed by signal 15`.
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status: {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// While alive, stops a child (its process group, when it has its own) once
/// a signal asks the run to stop: SIGTERM, then SIGKILL after a grace period.
struct Watch {
    done: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    _running: interrupt::Running,
}

impl Watch {
    fn start(pid: u32, own_group: bool) -> Watch {
        let (done, finished) = mpsc::channel::<()>();
        let target = if own_group { -(pid as i32) } else { pid as i32 };
        let thread = thread::spawn(move || {
            let tick = Duration::from_millis(50);
            loop {
                match finished.recv_timeout(tick) {
                    Err(mpsc::RecvTimeoutError::Timeout) if interrupt::requested() => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => return,
                }
            }
            // SAFETY: signals the process (group) this run started.
            unsafe { libc::kill(target, libc::SIGTERM) };
            let deadline = Instant::now() + GRACE;
            while Instant::now() < deadline {
                if !matches!(
                    finished.recv_timeout(tick),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
            // SAFETY: as above.
            unsafe { libc::kill(target, libc::SIGKILL) };
        });
        Watch {
            done: Some(done),
            thread: Some(thread),
            _running: interrupt::Running::new(target),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrubbed_environment_keeps_only_the_allowlist() {
        let command = Command::new("env").env("STEP", "1");
        let environment = command.environment();
        assert!(environment
            .keys()
            .all(|name| KEPT_ENVIRONMENT.contains(&name.as_str())
                || name == "LC_ALL"
                || name == "STEP"));
        assert_eq!(environment["LC_ALL"], "C");
        let output = command.checked_output().unwrap();
        let seen = String::from_utf8(output.stdout).unwrap();
        assert!(seen.lines().any(|line| line == "STEP=1"), "{seen}");
        assert!(!seen.contains("CARGO"), "{seen}");
    }

    #[test]
    fn a_failure_names_the_command_and_its_status() {
        let error = Command::new("sh")
            .args(["-c", "echo oops >&2; exit 3"])
            .checked_output()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`sh -c 'echo oops >&2; exit 3'` failed: exit status: 3"),
            "{error}"
        );
        assert!(error.contains("oops"), "{error}");
    }

    #[test]
    fn stdin_and_logged_output() {
        let output = Command::new("cat")
            .stdin_bytes("hello\n")
            .checked_output()
            .unwrap();
        assert_eq!(output.stdout, b"hello\n");
        let mut log = Vec::new();
        let mut lines = Vec::new();
        let status = Command::new("sh")
            .args(["-c", "echo one; echo two >&2"])
            .run_logged(&mut log, |line| lines.push(line.to_owned()))
            .unwrap();
        assert!(status.success());
        assert_eq!(lines, ["one", "two"]);
        assert_eq!(log, b"one\ntwo\n");
    }
}
