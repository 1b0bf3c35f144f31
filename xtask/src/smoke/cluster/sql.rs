//! SQL access to the nodes: psql through a node's unix socket (one
//! statement timeout for all), polling until an answer, `pg_dump`, the
//! connection strings peers use (TLS-verified when the cluster has TLS),
//! and psql from a peer's namespace over TCP.

use std::{
    thread,
    time::{Duration, Instant},
};

use anyhow::bail;

use super::{Cluster, DEADLINE, STATEMENT_TIMEOUT};
use crate::{
    interrupt,
    printable::printable,
    smoke::{
        server::{Node, DATABASE, REPLICATION_USER},
        tls,
    },
};

impl Cluster {
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
}
