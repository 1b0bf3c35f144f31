//! A cluster of real PostgreSQL nodes, on 127.0.0.1 or each in a network
//! namespace of its own: made, configured (TLS between them when the server
//! has it), started, queried, stopped and killed one by one, and torn down.
//! Dropping a [`Cluster`] stops every server it started, removes its
//! namespaces and its directory, unless it is kept.
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

use super::{
    config,
    leftovers::{self, RunRecord},
    netns::Namespaces,
    template, tls,
};
use crate::{
    files, interrupt,
    plan::{
        checks::{Network, Tls},
        Smoke,
    },
    printable::printable,
    process::Command,
    sources::archive,
};

/// How long any one wait may take before the check fails.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The longest one statement of the harness may take.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(90);
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
    /// Peers talk TLS (`hostssl` only, `sslmode=verify-full`).
    pub tls: bool,
    preload: String,
    extensions: Vec<String>,
    namespaces: Option<Namespaces>,
    /// The nodes' data directories come from this template archive.
    template: Option<PathBuf>,
    /// The driver tells nodes apart by system identifier (BDR).
    new_sysid: bool,
    /// The installation as planned (the stage), even when the servers run
    /// a copy of it: what the template's key hashes.
    pub(super) origin_bindir: PathBuf,
    /// Until teardown ends, a second signal hurries it rather than exiting.
    _cleanup: interrupt::Cleanup,
}

impl Cluster {
    pub fn create(
        smoke: &Smoke,
        set: &str,
        run_as: Option<RunAs>,
        tarball: Option<&Path>,
        template_dir: Option<&Path>,
    ) -> anyhow::Result<Cluster> {
        let dir = files::make_temporary_dir(&format!("bdr-dist-{set}-"))?;
        // Run as root for another user: the cluster directory and the copy of
        // the installation stay root's (the servers only read and run them);
        // only the empty data and socket directories are the user's.
        let mode = if run_as.is_some() { 0o711 } else { 0o700 };
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
        // Before anything runs in it: what the next command removes if this
        // run dies without its teardown.
        RunRecord::of_this_run(run_as.as_ref()).write(&dir)?;
        let mut cluster = Cluster {
            dir: dir.clone(),
            bindir: smoke.bindir.clone(),
            nodes: Vec::new(),
            run_as,
            password: random_password()?,
            major: 0,
            keep: smoke.keep,
            tls: false,
            preload: smoke.preload.clone(),
            extensions: smoke.extensions.clone(),
            namespaces: None,
            template: None,
            new_sysid: smoke.driver == crate::input::recipe::ClusterDriver::Bdr,
            origin_bindir: smoke.bindir.clone(),
            _cleanup: interrupt::Cleanup::begin(),
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
        let has_tls = cluster.server_has_tls()?;
        cluster.tls = match smoke.tls {
            Tls::Off => false,
            Tls::Auto => has_tls,
            Tls::On if has_tls => true,
            Tls::On => bail!(
                "--tls on: the server was built without OpenSSL (configure it --with-openssl)"
            ),
        };
        if cluster.tls {
            cluster.mkdir(&cluster.tls_dir())?;
            tls::make_ca(&cluster, &cluster.tls_dir())?;
        }
        if smoke.network == Network::Netns {
            super::netns::check_available()?;
            cluster.namespaces = Some(Namespaces::create()?);
        }
        for _ in 0..smoke.nodes {
            cluster.add_node()?;
        }
        // A template for an installation that stays put (not a tarball
        // unpacked anew each run); without one, every node is initdb'd.
        if let Some(dir) = template_dir.filter(|_| tarball.is_none()) {
            if template::usable(&cluster, cluster.new_sysid) {
                match template::archive(&cluster, dir) {
                    Ok(archive) => cluster.template = Some(archive),
                    Err(error) => eprintln!(
                        "warning: no template for the nodes, each is initialized: {error:#}"
                    ),
                }
            }
        }
        Ok(cluster)
    }

    /// Whether the server was configured with OpenSSL (`pg_config --configure`).
    fn server_has_tls(&self) -> anyhow::Result<bool> {
        let output = self.run(&self.bindir.join("pg_config"), &["--configure"])?;
        let configure = String::from_utf8_lossy(&output.stdout);
        Ok(configure.contains("'--with-openssl'") || configure.contains("'--with-ssl=openssl'"))
    }

    /// Where the CA and the node certificates are.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// A new node, not yet initialized: its directory, port, address (and
    /// namespace), certificate. Returns its index in `nodes`.
    pub fn add_node(&mut self) -> anyhow::Result<usize> {
        let number = self.nodes.len() as u32 + 1;
        let node_dir = self.dir.join(format!("n{number}"));
        self.mkdir(&node_dir)?;
        let (netns, address) = match &mut self.namespaces {
            Some(namespaces) => {
                let (name, address) = namespaces.add_node(number)?;
                (Some(name), address)
            }
            None => (None, "127.0.0.1".to_owned()),
        };
        if self.tls {
            tls::make_node_certificate(self, &self.tls_dir(), number, &address)?;
        }
        self.nodes.push(Node {
            name: format!("node{number}"),
            number,
            address,
            netns,
            port: free_port()?,
            data: node_dir.join("data"),
            log: node_dir.join("server.log"),
            pid: None,
        });
        Ok(self.nodes.len() - 1)
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
    pub fn command(&self, program: &Path) -> Command {
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

    fn run(&self, program: &Path, args: &[&str]) -> anyhow::Result<Output> {
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

    /// Make every node's data directory (from the template, or initdb),
    /// configure, start; the nodes in parallel.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        self.in_parallel(|node| match &self.template {
            Some(archive) => template::restore(self, archive, node, self.new_sysid),
            None => self.init_node(node),
        })
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
        for node in &self.nodes {
            self.configure_node(node)?;
        }
        let indexes: Vec<usize> = (0..self.nodes.len()).collect();
        self.start_nodes(&indexes)?;
        eprintln!(
            "{:>12} {} nodes {} and started in {:.1}s",
            "Up",
            self.nodes.len(),
            if self.template.is_some() {
                "copied from the template"
            } else {
                "initialized"
            },
            started.elapsed().as_secs_f64()
        );
        interrupt::check()
    }

    /// initdb one node's data directory.
    pub fn init_node(&self, node: &Node) -> anyhow::Result<()> {
        self.initdb(&node.data, &node.name)
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

    /// Append the smoke settings to a node's `postgresql.conf` (later lines
    /// win, so this also re-addresses a physical copy of another node), and
    /// write its `pg_hba.conf`.
    pub fn configure_node(&self, node: &Node) -> anyhow::Result<()> {
        let (_, encryption) = config::auth_methods(self.major);
        let socket_dir = self.socket_dir().display().to_string();
        let (cert, key) = tls::node_files(&self.tls_dir(), node.number);
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let settings = config::NodeSettings {
            address: &node.address,
            port: node.port,
            socket_dir: &socket_dir,
            preload: &self.preload,
            password_encryption: encryption,
            tls: self.tls.then_some((cert.as_str(), key.as_str())),
        };
        let conf = config::postgresql_conf(&settings);
        self.write_as_server_user(&node.data.join("postgresql.conf"), &conf, true)?;
        self.write_hba(node)
    }

    /// A node's `pg_hba.conf`: every node's address, as they are now.
    fn write_hba(&self, node: &Node) -> anyhow::Result<()> {
        let (auth, _) = config::auth_methods(self.major);
        let mut peers: Vec<&str> = self.nodes.iter().map(|n| n.address.as_str()).collect();
        peers.dedup();
        let hba = config::pg_hba_conf(REPLICATION_USER, auth, &peers, self.tls);
        self.write_as_server_user(&node.data.join("pg_hba.conf"), &hba, false)
    }

    /// Admit every node's address on every running node (after a node was
    /// added): rewrite `pg_hba.conf` and reload.
    pub fn admit_all(&self) -> anyhow::Result<()> {
        for node in self.nodes.iter().filter(|node| node.pid.is_some()) {
            self.write_hba(node)?;
            self.sql(node, "postgres", "SELECT pg_reload_conf();")?;
        }
        Ok(())
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

    /// Start these nodes, in parallel (each in its namespace), and record
    /// each postmaster's pid.
    pub fn start_nodes(&mut self, indexes: &[usize]) -> anyhow::Result<()> {
        let this = &*self;
        let starts: Vec<anyhow::Result<u32>> = thread::scope(|scope| {
            let handles: Vec<_> = indexes
                .iter()
                .map(|&index| scope.spawn(move || this.launch(&this.nodes[index])))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("node thread panicked"))
                .collect()
        });
        let mut first_error = None;
        for (&index, result) in indexes.iter().zip(starts) {
            let node = &mut self.nodes[index];
            match result {
                Ok(pid) => node.pid = Some(pid),
                // One that started and failed later still gets stopped.
                Err(_) => node.pid = read_pid(&node.data),
            }
            match result {
                Ok(pid) => eprintln!(
                    "{:>12} {} on {}:{} (pid {pid})",
                    "Started", node.name, node.address, node.port
                ),
                Err(error) => first_error = first_error.or(Some(error)),
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Start a node's postmaster in its namespace, and wait until it
    /// accepts connections; its pid.
    fn launch(&self, node: &Node) -> anyhow::Result<u32> {
        let data = node.data.display().to_string();
        let pid = self.spawn_postmaster(node.netns.as_deref(), &node.data, &node.log, &[])?;
        self.wait_accepting(pid, &node.name, || {
            self.sql(node, "postgres", "SELECT 1").is_ok()
        })
        .with_context(|| format!("the postmaster of {data}"))
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

    /// Stop a node cleanly (`pg_ctl -m fast`), as an operator would.
    pub fn stop_node(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &self.nodes[index];
        let data = node.data.display().to_string();
        self.tool(node, "pg_ctl")
            .args(["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"])
            .checked_output()
            .with_context(|| format!("cannot stop {}", node.name))?;
        self.nodes[index].pid = None;
        Ok(())
    }

    /// Kill a node's postmaster outright (SIGKILL), as a crash or a pulled
    /// plug would, and wait until it is gone. Its other processes notice and
    /// exit by themselves; teardown still removes the directory.
    pub fn kill_node(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &self.nodes[index];
        let Some(pid) = node.pid else {
            bail!("{} is not running", node.name);
        };
        self.signal(pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while process_alive(pid) {
            if Instant::now() > deadline {
                bail!("{} (pid {pid}) is still alive after SIGKILL", node.name);
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.nodes[index].pid = None;
        Ok(())
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
        self.psql(node, database, &[], sql)
    }

    /// `sql` with more psql options (`-1`: one transaction).
    pub fn psql(
        &self,
        node: &Node,
        database: &str,
        options: &[&str],
        sql: &str,
    ) -> anyhow::Result<String> {
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
            .args(options)
            // Nothing the harness runs may wait forever (a lock, a hung worker).
            .env(
                "PGOPTIONS",
                format!("-c statement_timeout={}s", STATEMENT_TIMEOUT.as_secs()),
            )
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

    /// The journal's roles (the replication superuser with a password, the
    /// unprivileged owner), then the database.
    pub fn prepare_node(&self, node: &Node) -> anyhow::Result<()> {
        let escaped = self.password.replace('\'', "''");
        if self.template.is_some() {
            // The roles, database and extensions came with the template;
            // the password is this cluster's own.
            let sql = format!("ALTER USER {REPLICATION_USER} PASSWORD '{escaped}';");
            return self.sql(node, "postgres", &sql).map(drop);
        }
        self.sql(
            node,
            "postgres",
            &format!(
                "CREATE USER {REPLICATION_USER} SUPERUSER PASSWORD '{escaped}';\n\
                 CREATE ROLE {OWNER} LOGIN;\n"
            ),
        )?;
        self.create_database(node)
    }

    /// The owner's database with the set's extensions in it.
    pub fn create_database(&self, node: &Node) -> anyhow::Result<()> {
        self.sql(
            node,
            "postgres",
            &format!("CREATE DATABASE {DATABASE} OWNER {OWNER};"),
        )?;
        let extensions: String = self
            .extensions
            .iter()
            .map(|e| format!("CREATE EXTENSION {e};\n"))
            .collect();
        self.sql(node, DATABASE, &extensions).map(drop)
    }

    /// Whether the nodes' data directories came from the template.
    pub fn from_template(&self) -> bool {
        self.template.is_some()
    }

    /// The set's extensions, in creation order.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The preloaded plugin (`shared_preload_libraries`).
    pub fn preload(&self) -> &str {
        &self.preload
    }

    /// `pg_dump` of a database on `node`, with these options, as SQL text.
    pub fn dump(&self, node: &Node, database: &str, options: &[&str]) -> anyhow::Result<String> {
        let (socket, port) = (
            self.socket_dir().display().to_string(),
            node.port.to_string(),
        );
        let output = self
            .tool(node, "pg_dump")
            .args(["-h", &socket, "-p", &port, "-U", "postgres"])
            .args(options)
            .arg(database)
            .output()?;
        if !output.status.success() {
            bail!(
                "pg_dump of {database} on {}: {}",
                node.name,
                printable(String::from_utf8_lossy(&output.stderr).trim(), 4096)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// How peers reach `node`: its address, the replication user, and with
    /// TLS `sslmode=verify-full` against the cluster's CA.
    pub fn dsn(&self, node: &Node) -> String {
        let mut dsn = self.plain_dsn(node);
        if self.tls {
            dsn.push_str(&format!(
                " sslmode=verify-full sslrootcert={}",
                tls::ca_certificate(&self.tls_dir()).display()
            ));
        }
        dsn
    }

    /// `dsn` without any TLS parameter.
    pub fn plain_dsn(&self, node: &Node) -> String {
        format!(
            "host={} port={} dbname={DATABASE} user={REPLICATION_USER} password={}",
            node.address, node.port, self.password
        )
    }

    /// Connect from `from` (in its namespace) to `to` over TCP with `dsn`
    /// (a libpq connection string) and run `sql`: what a peer would see.
    pub fn sql_from_peer(&self, from: &Node, dsn: &str, sql: &str) -> anyhow::Result<String> {
        let output = self
            .tool(from, "psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn])
            .stdin_bytes(sql)
            .output()?;
        if !output.status.success() {
            bail!(
                "from {}: {}",
                from.name,
                printable(String::from_utf8_lossy(&output.stderr).trim(), 4096)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
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
        for node in &self.nodes {
            if let Some(name) = &node.netns {
                let _ = writeln!(text, "  ip netns delete {name}");
            }
        }
        if let Some(namespaces) = &self.namespaces {
            let _ = writeln!(text, "  ip netns delete {}", namespaces.hub());
        }
        let _ = write!(text, "  rm -rf {}", self.dir.display());
        eprintln!("{text}");
    }

    /// Set the latch of a process of `node`'s server that waits on it:
    /// SIGUSR1 is PostgreSQL's "look at your flags" signal, and with no flag
    /// raised its handler does nothing but set the latch. For waits that
    /// look only on a timer (a pglogical manager waiting for its worker).
    /// `pid` must be a child of the node's postmaster, which this run started.
    pub fn wake(&self, node: &Node, pid: u32) {
        if node
            .pid
            .is_some_and(|postmaster| parent_of(pid) == Some(postmaster))
        {
            self.signal(pid, libc::SIGUSR1);
        }
    }

    /// Send `signal` to `pid` as the server user (a process of another user
    /// is out of its reach), or directly when the servers run as us.
    fn signal(&self, pid: u32, signal: i32) {
        leftovers::signal_as(pid, signal, leftovers::server_ids(self.run_as.as_ref()));
    }

    /// The cluster is thrown away: an immediate shutdown of a postmaster
    /// this run started, as the server user; SIGKILL if it is still there
    /// after 10 s (1 s once a second signal said not to wait).
    fn stop_postmaster(&self, pid: u32) {
        let grace = Duration::from_secs(if interrupt::hurried() { 1 } else { 10 });
        leftovers::stop(pid, leftovers::server_ids(self.run_as.as_ref()), grace);
    }

    /// Stop every server this run started (by its pid file's pid), all at
    /// once, then remove the directory.
    fn teardown(&mut self) {
        let started = Instant::now();
        self.in_parallel(|node| {
            if let Some(pid) = node.pid.or_else(|| read_pid(&node.data)) {
                self.stop_postmaster(pid);
            }
            Ok(())
        });
        // The template's server, if making the template failed half way.
        if let Some(pid) = read_pid(&self.dir.join("template/data")) {
            self.stop_postmaster(pid);
        }
        if let Some(mut namespaces) = self.namespaces.take() {
            namespaces.remove();
        }
        if let Err(error) = super::leftovers::remove_cluster_dir(&self.dir) {
            eprintln!("warning: cannot remove {}: {error}", self.dir.display());
        }
        eprintln!(
            "{:>12} cluster stopped and {} removed in {:.1}s",
            "Teardown",
            self.dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.keep || interrupt::requested() {
            self.teardown();
            return;
        }
        // Kept whole: the next command must leave it be.
        let kept = RunRecord {
            kept: true,
            ..RunRecord::of_this_run(self.run_as.as_ref())
        };
        if let Err(error) = kept.write(&self.dir) {
            eprintln!(
                "warning: cannot mark {} as kept: {error:#}",
                self.dir.display()
            );
        }
        if let Some(namespaces) = self.namespaces.take() {
            // Its servers run in them (the keep instructions say how to
            // remove them).
            std::mem::forget(namespaces);
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
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
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
