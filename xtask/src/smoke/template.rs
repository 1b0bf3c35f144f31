//! A node's data directory made once per installation and copied for every
//! node, as PostgreSQL's own test suite does with its initdb template:
//! `initdb`, the journal's roles, the owner's database and the set's
//! extensions, shut down cleanly and kept as a tar archive under the set's
//! target directory (`smoke-template/<key>.tar`). The key hashes everything
//! the template depends on (every file of the installation by path, size and
//! time, the preloaded plugin, the extensions), so a rebuilt stage makes a
//! new one. Copies get what must differ per node afterwards: BDR identifies
//! a node by its system identifier, so each copy gets a new one
//! (`pg_resetxlog -s`, a BDR patch to 9.4), and each node its own password.
//!
//! The archive is made by `tar` run as the server user and unpacked by `tar`
//! run as that user, from a file this process opens: root never interprets
//! what the server user wrote.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Instant, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::{
    config::JOURNAL_SETTINGS,
    server::{free_port, Node, Server, DATABASE, OWNER, REPLICATION_USER},
};
use crate::printable::printable;

/// Bumped when what a template holds changes.
const FORMAT: &str = "bdr-dist smoke template 1";

/// The template archive for this installation, with the `preload`ed plugin
/// and `extensions`, made in `dir` if missing.
pub fn archive(
    server: &Server,
    preload: &str,
    extensions: &[String],
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let key = key(server, preload, extensions)?;
    let path = dir.join(format!("{key}.tar"));
    if path.is_file() {
        return Ok(path);
    }
    let started = Instant::now();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let work = server.dir.join("template");
    server.mkdir(&work)?;
    let data = work.join("data");
    server.initdb(&data, "the template")?;
    let socket = server.socket_dir().display().to_string();
    let port = free_port()?.to_string();
    // Only the unix socket, and what the plugin needs to load.
    let options: Vec<String> = [
        "listen_addresses=".to_owned(),
        format!("port={port}"),
        format!("unix_socket_directories={socket}"),
        format!("shared_preload_libraries={preload}"),
    ]
    .into_iter()
    .chain(
        JOURNAL_SETTINGS
            .iter()
            .map(|(name, value)| format!("{name}={value}")),
    )
    .flat_map(|setting| ["-c".to_owned(), setting])
    .collect();
    let pg_ctl = |args: &[&str]| {
        server
            .command(&server.bindir.join("pg_ctl"))
            .args(["-D", &data.display().to_string()])
            .args(args)
            .checked_output()
            .context("cannot run the template's server")
    };
    let log = work.join("server.log");
    let sql = |database: &str, text: &str| {
        server
            .command(&server.bindir.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &socket,
                "-p",
                &port,
            ])
            .args(["-U", "postgres", "-d", database])
            .stdin_bytes(text)
            .checked_output()
    };
    let pid = server
        .spawn_postmaster(None, &data, &log, &options)
        .context("cannot start the template's server")?;
    server.wait_accepting(pid, "the template's server", || {
        sql("postgres", "SELECT 1").is_ok()
    })?;
    let extensions: String = extensions
        .iter()
        .map(|e| format!("CREATE EXTENSION {e};\n"))
        .collect();
    let prepared = sql(
        "postgres",
        &format!(
            "CREATE USER {REPLICATION_USER} SUPERUSER;\nCREATE ROLE {OWNER} LOGIN;\n\
             CREATE DATABASE {DATABASE} OWNER {OWNER};\n"
        ),
    )
    .and_then(|_| sql(DATABASE, &extensions));
    // A clean shutdown: the copies start from a checkpoint.
    let stopped = pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]);
    prepared.context("cannot prepare the template")?;
    stopped?;
    let partial = dir.join(format!(".{key}.tar.{}", std::process::id()));
    let reader = server
        .command(Path::new("tar"))
        .args(["-c", "-f", "-", "-C"])
        .arg(&work)
        .arg("data")
        .stderr_to(work.with_extension("tar-messages"))
        .read_stdout()?;
    let written = std::io::copy(
        &mut &reader,
        &mut fs::File::create(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?,
    );
    let finished = reader.try_wait();
    match (written, finished) {
        (Ok(_), Ok(Some(output))) if output.status.success() => {}
        (written, _) => {
            let _ = fs::remove_file(&partial);
            bail!("cannot archive the template: {:?}", written.err());
        }
    }
    fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
    // Templates of earlier installations go.
    for entry in fs::read_dir(dir)?.flatten() {
        let other = entry.path();
        if other != path && other.extension().is_some_and(|e| e == "tar") {
            let _ = fs::remove_file(other);
        }
    }
    let _ = fs::remove_dir_all(&work);
    eprintln!(
        "{:>12} the nodes' template (initdb, roles, database, extensions) in {:.1}s: {}",
        "Made",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(path)
}

/// A node's data directory from the template; a new system identifier when
/// the driver tells nodes apart by it.
pub fn restore(
    server: &Server,
    archive: &Path,
    node: &Node,
    new_sysid: bool,
) -> anyhow::Result<()> {
    let node_dir = node
        .data
        .parent()
        .context("a data directory has a parent")?;
    server
        .command(Path::new("tar"))
        .args(["-x", "-f", "-", "-C"])
        .arg(node_dir)
        .stdin_file(archive)
        .checked_output()
        .with_context(|| format!("cannot copy the template for {}", node.name))?;
    if new_sysid {
        let output = server
            .command(&server.bindir.join("pg_resetxlog"))
            .args(["-s", &node.data.display().to_string()])
            .output()?;
        if !output.status.success() {
            bail!(
                "cannot give {} a system identifier of its own: {}",
                node.name,
                printable(String::from_utf8_lossy(&output.stderr).trim(), 2000)
            );
        }
    }
    Ok(())
}

/// Whether copies can be told apart where the driver needs it: 9.4-bdr's
/// `pg_resetxlog` sets a new system identifier (`-s`); nothing else does.
pub fn usable(server: &Server, new_sysid: bool) -> bool {
    !new_sysid || server.bindir.join("pg_resetxlog").is_file()
}

/// Everything the template depends on, hashed.
fn key(server: &Server, preload: &str, extensions: &[String]) -> anyhow::Result<String> {
    let prefix = server
        .origin_bindir
        .parent()
        .context("the installation's bin has no parent")?;
    let mut hasher = Sha256::new();
    hasher.update(FORMAT);
    hasher.update(format!("\0{}\0{:?}\0", preload, extensions));
    let mut stack = vec![prefix.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                let relative = entry.path().strip_prefix(prefix)?.to_path_buf();
                entries.push((relative, meta.len(), modified));
            }
        }
    }
    entries.sort();
    for (path, len, modified) in entries {
        hasher.update(format!("{}\0{len}\0{modified}\n", path.display()));
    }
    Ok(hex::encode(hasher.finalize())[..16].to_owned())
}
