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
    fmt::Write as _,
    fs,
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use super::{
    config,
    leftovers::{self, RunRecord},
    netns::Namespaces,
    server::{
        free_port, parent_of, process_alive, read_pid, read_tail, Node, RunAs, Server, DATABASE,
        OWNER, REPLICATION_USER,
    },
    template, tls,
};
use crate::{
    files, interrupt,
    plan::{
        checks::{Network, Tls},
        Smoke,
    },
    printable::printable,
};

/// How long any one wait may take before the check fails.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The longest one statement of the harness may take.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(90);

/// A running cluster. Dropping it stops every server it started and removes
/// its directory, unless it is kept.
pub struct Cluster {
    /// The cluster directory, the installation and the user the servers
    /// run as: every command is built by [`Server::command`].
    pub server: Server,
    pub nodes: Vec<Node>,
    pub password: String,
    pub major: u32,
    /// Peers talk TLS (`hostssl` only, `sslmode=verify-full`).
    pub tls: bool,
    preload: String,
    extensions: Vec<String>,
    namespaces: Option<Namespaces>,
    /// The nodes' data directories come from this template archive.
    template: Option<PathBuf>,
    /// The driver tells nodes apart by system identifier (BDR).
    new_sysid: bool,
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
            server: Server {
                dir,
                bindir: smoke.bindir.clone(),
                origin_bindir: smoke.bindir.clone(),
                run_as,
                keep: smoke.keep,
            },
            nodes: Vec::new(),
            password: random_password()?,
            major: 0,
            tls: false,
            preload: smoke.preload.clone(),
            extensions: smoke.extensions.clone(),
            namespaces: None,
            template: None,
            new_sysid: smoke.driver == crate::input::recipe::ClusterDriver::Bdr,
            _cleanup: interrupt::Cleanup::begin(),
        };
        cluster.server.mkdir(&cluster.server.socket_dir())?;
        cluster.server.install(tarball)?;
        let version = cluster
            .server
            .run(&cluster.server.bindir.join("postgres"), &["--version"])?;
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
            cluster.server.mkdir(&cluster.server.tls_dir())?;
            tls::make_ca(&cluster.server, &cluster.server.tls_dir())?;
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
            if template::usable(&cluster.server, cluster.new_sysid) {
                match template::archive(&cluster.server, &cluster.preload, &cluster.extensions, dir)
                {
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
        let output = self
            .server
            .run(&self.server.bindir.join("pg_config"), &["--configure"])?;
        let configure = String::from_utf8_lossy(&output.stdout);
        Ok(configure.contains("'--with-openssl'") || configure.contains("'--with-ssl=openssl'"))
    }

    /// A new node, not yet initialized: its directory, port, address (and
    /// namespace), certificate. Returns its index in `nodes`.
    pub fn add_node(&mut self) -> anyhow::Result<usize> {
        let number = self.nodes.len() as u32 + 1;
        let node_dir = self.server.dir.join(format!("n{number}"));
        self.server.mkdir(&node_dir)?;
        let (netns, address) = match &mut self.namespaces {
            Some(namespaces) => {
                let (name, address) = namespaces.add_node(number)?;
                (Some(name), address)
            }
            None => (None, "127.0.0.1".to_owned()),
        };
        if self.tls {
            tls::make_node_certificate(&self.server, &self.server.tls_dir(), number, &address)?;
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

    /// Make every node's data directory (from the template, or initdb),
    /// configure, start; the nodes in parallel.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        self.in_parallel(|node| match &self.template {
            Some(archive) => template::restore(&self.server, archive, node, self.new_sysid),
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
        self.server.initdb(&node.data, &node.name)
    }

    /// Append the smoke settings to a node's `postgresql.conf` (later lines
    /// win, so this also re-addresses a physical copy of another node), and
    /// write its `pg_hba.conf`.
    pub fn configure_node(&self, node: &Node) -> anyhow::Result<()> {
        let (_, encryption) = config::auth_methods(self.major);
        let socket_dir = self.server.socket_dir().display().to_string();
        let (cert, key) = tls::node_files(&self.server.tls_dir(), node.number);
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
        self.server
            .write_as_server_user(&node.data.join("postgresql.conf"), &conf, true)?;
        self.write_hba(node)
    }

    /// A node's `pg_hba.conf`: every node's address, as they are now.
    fn write_hba(&self, node: &Node) -> anyhow::Result<()> {
        let (auth, _) = config::auth_methods(self.major);
        let mut peers: Vec<&str> = self.nodes.iter().map(|n| n.address.as_str()).collect();
        peers.dedup();
        let hba = config::pg_hba_conf(REPLICATION_USER, auth, &peers, self.tls);
        self.server
            .write_as_server_user(&node.data.join("pg_hba.conf"), &hba, false)
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
        let pid =
            self.server
                .spawn_postmaster(node.netns.as_deref(), &node.data, &node.log, &[])?;
        self.server
            .wait_accepting(pid, &node.name, || {
                self.sql(node, "postgres", "SELECT 1").is_ok()
            })
            .with_context(|| format!("the postmaster of {data}"))
    }

    /// Stop a node cleanly (`pg_ctl -m fast`), as an operator would.
    pub fn stop_node(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &self.nodes[index];
        let data = node.data.display().to_string();
        self.server
            .tool(node, "pg_ctl")
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
        let socket = self.server.socket_dir().display().to_string();
        // psql 9.4 runs only the last of several -c options: send SQL on stdin.
        let output = self
            .server
            .command(&self.server.bindir.join("psql"))
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
            self.server.socket_dir().display().to_string(),
            node.port.to_string(),
        );
        let output = self
            .server
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
                tls::ca_certificate(&self.server.tls_dir()).display()
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
            .server
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
        let as_owner = |command: String| match &self.server.run_as {
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
                self.server.bindir.join("psql").display(),
                self.server.socket_dir().display(),
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
                self.server.bindir.join("pg_ctl").display(),
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
        let _ = write!(text, "  rm -rf {}", self.server.dir.display());
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
        leftovers::signal_as(
            pid,
            signal,
            leftovers::server_ids(self.server.run_as.as_ref()),
        );
    }

    /// The cluster is thrown away: an immediate shutdown of a postmaster
    /// this run started, as the server user; SIGKILL if it is still there
    /// after 10 s (1 s once a second signal said not to wait).
    fn stop_postmaster(&self, pid: u32) {
        let grace = Duration::from_secs(if interrupt::hurried() { 1 } else { 10 });
        leftovers::stop(
            pid,
            leftovers::server_ids(self.server.run_as.as_ref()),
            grace,
        );
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
        if let Some(pid) = read_pid(&self.server.dir.join("template/data")) {
            self.stop_postmaster(pid);
        }
        if let Some(mut namespaces) = self.namespaces.take() {
            namespaces.remove();
        }
        if let Err(error) = super::leftovers::remove_cluster_dir(&self.server.dir) {
            eprintln!(
                "warning: cannot remove {}: {error}",
                self.server.dir.display()
            );
        }
        eprintln!(
            "{:>12} cluster stopped and {} removed in {:.1}s",
            "Teardown",
            self.server.dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.server.keep || interrupt::requested() {
            self.teardown();
            return;
        }
        // Kept whole: the next command must leave it be.
        let kept = RunRecord {
            kept: true,
            ..RunRecord::of_this_run(self.server.run_as.as_ref())
        };
        if let Err(error) = kept.write(&self.server.dir) {
            eprintln!(
                "warning: cannot mark {} as kept: {error:#}",
                self.server.dir.display()
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
