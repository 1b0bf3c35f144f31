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
//!
//! Here: the cluster made (its directory, the installation, TLS, the
//! namespaces, the template), nodes added, their data directories made,
//! configured and prepared. The servers' lifecycle is in `lifecycle.rs`,
//! SQL access to the nodes in `sql.rs`; every command is built by
//! [`Server::command`].

mod lifecycle;
mod sql;

use std::{
    fs,
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use super::{
    config,
    leftovers::RunRecord,
    netns::Namespaces,
    server::{free_port, Node, RunAs, Server, DATABASE, OWNER, REPLICATION_USER},
    template, tls,
};
use crate::{
    files, interrupt,
    plan::{
        checks::{Network, Tls},
        InRoot, Smoke,
    },
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
        root: Option<&InRoot>,
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
                root: root.cloned(),
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
