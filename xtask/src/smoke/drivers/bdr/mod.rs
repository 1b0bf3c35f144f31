//! BDR 1.0, as the reference journal: `bdr_group_create` on the first node,
//! `bdr_group_join` on the others, global sequences, the DDL lock, imports,
//! physical joins, parting, recreating and orphaned nodes.
//!
//! Here: which check runs what, the slots and DDL-lock checks, and
//! `expect_error`. Joining and readiness are in `join.rs`, global sequences
//! and imports in `sequences.rs`, parting, physical joins, recreating and
//! orphans in `membership.rs`.

mod join;
mod membership;
mod sequences;

use std::thread;

use anyhow::{bail, ensure, Context};

use self::{
    join::join,
    membership::{orphan, part, physical_join, recreate},
    sequences::{global_sequence, import},
};
use super::{create_table, literal, on_every_node, running, TABLE};
use crate::{
    plan::checks::CheckId,
    smoke::{
        cluster::{Cluster, DEADLINE},
        server::DATABASE,
    },
};

pub fn check(id: CheckId, cluster: &mut Cluster) -> anyhow::Result<String> {
    match id {
        CheckId::Join => join(cluster),
        CheckId::Slots => slots(cluster),
        // Plain DDL is replicated by BDR 1.0 itself, under the global DDL lock.
        CheckId::Ddl => create_table(
            cluster,
            &format!("CREATE TABLE {TABLE} (id int PRIMARY KEY, origin text NOT NULL);"),
            "",
        ),
        CheckId::GlobalSequence => global_sequence(cluster),
        CheckId::DdlLock => ddl_lock(cluster),
        CheckId::Import => import(cluster),
        CheckId::PhysicalJoin => physical_join(cluster),
        CheckId::Part => part(cluster),
        CheckId::Recreate => recreate(cluster),
        CheckId::Orphan => orphan(cluster),
        _ => bail!("the bdr driver cannot do {id} yet"),
    }
}

fn slots(cluster: &Cluster) -> anyhow::Result<String> {
    let nodes = running(cluster);
    let n = nodes.len();
    on_every_node(
        cluster,
        nodes.iter().copied(),
        "SELECT count(*) FROM bdr.bdr_node_slots WHERE walsender_active",
        &(n - 1).to_string(),
    )?;
    // pg_stat_bdr has a row per peer this node applies from, named by its
    // replication identifier: map it back to the peer's name.
    let stats = "SELECT string_agg(n.node_name, ',' ORDER BY n.node_name) FROM bdr.pg_stat_bdr s \
                 CROSS JOIN LATERAL bdr.bdr_parse_replident_name(s.riremoteid) r \
                 JOIN bdr.bdr_nodes n ON (n.node_sysid, n.node_timeline, n.node_dboid) \
                 = (r.remote_sysid, r.remote_timeline, r.remote_dboid)";
    for node in &nodes {
        let peers: Vec<&str> = nodes
            .iter()
            .filter(|peer| peer.name != node.name)
            .map(|peer| peer.name.as_str())
            .collect();
        let mut expected = peers.clone();
        expected.sort();
        let expected = expected.join(",");
        cluster
            .poll(node, stats, |answer| answer == expected)
            .with_context(|| {
                format!(
                    "bdr.pg_stat_bdr on {} should list its peers {expected}",
                    node.name
                )
            })?;
    }
    Ok(format!(
        "{} active slots on each node; bdr.pg_stat_bdr lists every peer on every node",
        n - 1
    ))
}

/// Expect `result` to be an error containing `needle`; its text.
fn expect_error(
    result: anyhow::Result<String>,
    needle: &str,
    what: &str,
) -> anyhow::Result<String> {
    match result {
        Ok(answer) => bail!("{what} succeeded (answer `{answer}`), expected `{needle}`"),
        Err(error) => {
            let text = format!("{error:#}");
            ensure!(
                text.contains(needle),
                "{what} failed, but not with `{needle}`: {text}"
            );
            Ok(needle.to_owned())
        }
    }
}

/// `ddl-lock`: the first node holds the global DDL lock (a write-level
/// ALTER TABLE in an open transaction, released on cue); meanwhile DDL on
/// every other node fails with the journal's error, and a write waits (it
/// fails at once under `lock_timeout`). After the commit, writes work
/// everywhere.
fn ddl_lock(cluster: &Cluster) -> anyhow::Result<String> {
    let nodes = running(cluster);
    let (holder, peers) = nodes.split_first().context("no running node")?;
    let table = "public.smoke_lock";
    let other = "public.smoke_lock_other";
    // A local sequence: its value is not replicated, and nextval takes no
    // global lock: the holder's release signal.
    let release = "public.smoke_lock_release";
    cluster.sql(
        holder,
        DATABASE,
        &format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, origin text NOT NULL);\n\
             CREATE TABLE {other} (id int PRIMARY KEY);\n\
             CREATE SEQUENCE {release} USING local;"
        ),
    )?;
    let exists = format!("SELECT to_regclass('{table}') IS NOT NULL AND to_regclass('{release}') IS NOT NULL AND to_regclass('{other}') IS NOT NULL");
    on_every_node(cluster, nodes.iter().copied(), &exists, "t")?;
    // ADD CONSTRAINT takes the write lock (ADD COLUMN only the DDL lock,
    // which does not hold writes back).
    let hold = format!(
        "SET application_name = 'smoke_ddl_lock_holder';\n\
         BEGIN;\n\
         ALTER TABLE {table} ADD CONSTRAINT smoke_lock_positive CHECK (id > 0);\n\
         DO $$\n\
         DECLARE deadline timestamptz := clock_timestamp() + interval '{} s';\n\
         BEGIN\n\
           WHILE (SELECT last_value FROM {release}) <> 42 LOOP\n\
             IF clock_timestamp() > deadline THEN\n\
               RAISE EXCEPTION 'the DDL lock holder was not released in time';\n\
             END IF;\n\
             PERFORM pg_sleep(0.02);\n\
           END LOOP;\n\
         END $$;\n\
         COMMIT;",
        DEADLINE.as_secs()
    );
    let (held, probes) = thread::scope(|scope| {
        let holding = scope.spawn(|| cluster.sql(holder, DATABASE, &hold));
        let probes = (|| -> anyhow::Result<(String, String)> {
            // Held group-wide once every peer records it as acquired.
            let acquired = "SELECT count(*) FROM bdr.bdr_global_locks WHERE state = 'acquired' AND locktype = 'write_lock'";
            on_every_node(cluster, peers.iter().copied(), acquired, "1")?;
            let mut ddl_error = String::new();
            let mut write_error = String::new();
            for peer in peers {
                let ddl = format!(
                    "SET statement_timeout = '10s';\nCREATE TABLE public.smoke_lock_{} (id int PRIMARY KEY);",
                    peer.number
                );
                ddl_error = expect_error(
                    cluster.sql(peer, DATABASE, &ddl),
                    "database is locked against ddl by another node",
                    &format!(
                        "CREATE TABLE on {} while {} holds the DDL lock",
                        peer.name, holder.name
                    ),
                )?;
                // Never the altered table: a write waiting on it would also
                // hold back the ALTER's replay (a distributed deadlock).
                let write = format!(
                    "SET lock_timeout = '5s';\nINSERT INTO {other} VALUES ({});",
                    peer.number
                );
                write_error = expect_error(
                    cluster.sql(peer, DATABASE, &write),
                    "canceling statement due to global lock timeout",
                    &format!(
                        "INSERT on {} while {} holds the DDL lock",
                        peer.name, holder.name
                    ),
                )?;
            }
            Ok((ddl_error, write_error))
        })();
        // Release on every path, then wait for the holder.
        let _ = cluster.sql(
            holder,
            DATABASE,
            &format!("SELECT setval('{release}', 42);"),
        );
        let held = holding.join().expect("holder thread panicked");
        (held, probes)
    });
    let (ddl_error, write_error) = probes?;
    held.context("the transaction that held the DDL lock")?;
    on_every_node(
        cluster,
        nodes.iter().copied(),
        "SELECT count(*) FROM bdr.bdr_global_locks",
        "0",
    )?;
    for node in &nodes {
        cluster.sql(
            node,
            DATABASE,
            &format!(
                "SET statement_timeout = '30s';\nINSERT INTO {table} VALUES ({}, {});",
                node.number,
                literal(&node.name)
            ),
        )?;
    }
    let ids: Vec<String> = nodes.iter().map(|n| n.number.to_string()).collect();
    let sql = format!(
        "SELECT string_agg(id::text, ',' ORDER BY id) || ' ' || \
         (SELECT count(*) FROM pg_constraint WHERE conname = 'smoke_lock_positive') FROM {table}"
    );
    on_every_node(
        cluster,
        nodes.iter().copied(),
        &sql,
        &format!("{} 1", ids.join(",")),
    )?;
    Ok(format!(
        "while {} held the write lock: DDL on {} other nodes failed with `{ddl_error}`, an INSERT \
         (lock_timeout 5s) with `{write_error}`; after COMMIT the lock is gone and writes on every \
         node reached every node",
        holder.name,
        peers.len()
    ))
}
