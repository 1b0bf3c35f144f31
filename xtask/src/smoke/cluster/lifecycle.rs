//! The servers' lifecycle: nodes started in parallel (each in its
//! namespace) and waited for, stopped cleanly or killed outright one by
//! one, woken, and at the end stopped all at once with the cluster
//! directory removed (unless the cluster is kept); their log tails, and
//! what to run to stop a kept cluster.

use std::{
    fmt::Write as _,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use super::Cluster;
use crate::{
    interrupt,
    printable::printable,
    smoke::{
        leftovers::{self, RunRecord},
        server::{parent_of, process_alive, read_pid, read_tail, Node, DATABASE},
    },
};

impl Cluster {
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
        if let Err(error) = leftovers::remove_cluster_dir(&self.server.dir) {
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
