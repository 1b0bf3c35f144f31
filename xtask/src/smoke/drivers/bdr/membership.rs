//! Checks that change the group's membership: a node parted, a new node
//! copied physically (`pg_basebackup` + `bdr_init_copy`), a database
//! recreated and joined again under a new name, a node killed and the
//! survivor made standalone (the journal's orphan workaround).

use std::{
    thread,
    time::{Duration, Instant},
};

use anyhow::{ensure, Context};

use super::{
    expect_error,
    join::{all_see_ready, wait_ready},
};
use crate::{
    printable::printable,
    smoke::{
        cluster::{Cluster, DEADLINE},
        drivers::{all_ids, literal, on_every_node, running},
        server::{Node, DATABASE},
    },
};

pub(super) fn part(cluster: &Cluster) -> anyhow::Result<String> {
    let nodes = running(cluster);
    let (parted, remaining) = nodes.split_last().expect("at least two nodes");
    let name = literal(&parted.name);
    cluster.sql(
        remaining[0],
        DATABASE,
        &format!("SELECT bdr.bdr_part_by_node_names(ARRAY[{name}]);"),
    )?;
    cluster.poll(
        remaining[0],
        &format!("SELECT node_status FROM bdr.bdr_nodes WHERE node_name = {name}"),
        |s| s == "k",
    )?;
    let sql = format!("SELECT count(*) FROM bdr.bdr_node_slots WHERE node_name = {name}");
    on_every_node(cluster, remaining.iter().copied(), &sql, "0")?;
    Ok(format!(
        "{} parted (status 'k'), its slots gone",
        parted.name
    ))
}

/// `table`, created on `ddl_on`, reaches every node of `nodes`, and then a
/// row written on `ddl_on` and one on `other` reach every node: a node that
/// joined replicates both ways.
fn replicates_both_ways(
    cluster: &Cluster,
    nodes: &[&Node],
    table: &str,
    ddl_on: &Node,
    other: &Node,
) -> anyhow::Result<()> {
    cluster.sql(
        ddl_on,
        DATABASE,
        &format!("CREATE TABLE {table} (id int PRIMARY KEY, origin text NOT NULL);"),
    )?;
    let exists = format!("SELECT to_regclass('{table}') IS NOT NULL");
    on_every_node(cluster, nodes.iter().copied(), &exists, "t")?;
    for (id, writer) in [(1, ddl_on), (2, other)] {
        cluster.sql(
            writer,
            DATABASE,
            &format!(
                "INSERT INTO {table} VALUES ({id}, {});",
                literal(&writer.name)
            ),
        )?;
    }
    let sql = format!("SELECT string_agg(id::text, ',' ORDER BY id) FROM {table}");
    on_every_node(cluster, nodes.iter().copied(), &sql, &all_ids(2))
}

/// `physical-join`: a new node copied from the first with pg_basebackup
/// (which brings the source's postgresql.conf; ours is appended), then
/// `bdr_init_copy` on that copy; it must replicate both ways.
pub(super) fn physical_join(cluster: &mut Cluster) -> anyhow::Result<String> {
    let source = running(cluster)[0].number as usize - 1;
    let index = cluster.add_node()?;
    cluster.admit_all()?;
    let (source, node) = (&cluster.nodes[source], &cluster.nodes[index]);
    let data = node.data.display().to_string();
    let started = Instant::now();
    let output = cluster
        .server
        .tool(node, "pg_basebackup")
        .args([
            "-D",
            &data,
            "-X",
            "stream",
            "-c",
            "fast",
            "-d",
            &cluster.dsn(source),
        ])
        .output()?;
    ensure!(
        output.status.success(),
        "pg_basebackup of {} for {} failed: {}",
        source.name,
        node.name,
        printable(String::from_utf8_lossy(&output.stderr).trim(), 4096)
    );
    cluster.configure_node(node)?;
    // bdr_init_copy writes bdr_init_copy_postgres.log into its cwd: the
    // node's own directory. It leaves the new server running (its log is
    // that file). Not `-s`: stopping right after the join can cut the new
    // node's worker between creating its slot on a peer and recording it;
    // restarted, it then fails for ever with "replication slot ... already
    // exists".
    let node_dir = node
        .data
        .parent()
        .context("data directory without a parent")?;
    let output = cluster
        .server
        .tool(node, "bdr_init_copy")
        .cwd(node_dir)
        .args(["-D", &data, "-n", &node.name])
        .arg(format!("--remote-dbname={}", cluster.dsn(source)))
        .arg(format!("--local-dbname={}", cluster.dsn(node)))
        .output()?;
    ensure!(
        output.status.success(),
        "bdr_init_copy of {} from {} failed: {}{}",
        node.name,
        source.name,
        printable(String::from_utf8_lossy(&output.stdout).trim(), 4096),
        printable(String::from_utf8_lossy(&output.stderr).trim(), 4096)
    );
    let copied = started.elapsed().as_secs_f64();
    let source = source.name.clone();
    // Ready, and every peer has its slot for the new node (made by the new
    // node's worker): only then is it safe to restart it as ours.
    wait_ready(cluster, node)?;
    let slot = format!(
        "SELECT count(*) FROM bdr.bdr_node_slots WHERE node_name = {} AND walsender_active",
        literal(&node.name)
    );
    on_every_node(cluster, running(cluster), &slot, "1")?;
    cluster.stop_node(index)?;
    cluster.start_nodes(&[index])?;
    let node = &cluster.nodes[index];
    let nodes = running(cluster);
    let n = nodes.len();
    let ready = "SELECT count(*) FROM bdr.bdr_nodes WHERE node_status = 'r'";
    // Parted nodes of earlier runs do not count; every running node must be ready.
    let names: Vec<String> = nodes.iter().map(|n| literal(&n.name)).collect();
    let ready = format!("{ready} AND node_name IN ({})", names.join(", "));
    let note = all_see_ready(cluster, &nodes, &ready, &n.to_string())?;
    replicates_both_ways(cluster, &nodes, "public.smoke_physical", nodes[0], node)?;
    Ok(format!(
        "{} copied from {source} by pg_basebackup + bdr_init_copy in {copied:.1}s; {n} nodes ready{note}; \
         rows from {} and {} on every node",
        node.name, nodes[0].name, node.name
    ))
}

/// `recreate`, the journal's "Recreating a Database": the last running
/// node is parted (unless `part` did it), deleted from `bdr.bdr_nodes`, its
/// connections ended, its slots and database dropped; the database is made
/// again and joins under a new name.
pub(super) fn recreate(cluster: &mut Cluster) -> anyhow::Result<String> {
    let indexes: Vec<usize> = (0..cluster.nodes.len())
        .filter(|&i| cluster.nodes[i].pid.is_some())
        .collect();
    let (&target, rest) = indexes.split_last().context("no running node")?;
    let (node, first) = (&cluster.nodes[target], &cluster.nodes[rest[0]]);
    let old = node.name.clone();
    let name = literal(&old);
    let status = cluster.sql(
        first,
        DATABASE,
        &format!("SELECT node_status FROM bdr.bdr_nodes WHERE node_name = {name}"),
    )?;
    if status != "k" {
        cluster.sql(
            first,
            DATABASE,
            &format!("SELECT bdr.bdr_part_by_node_names(ARRAY[{name}]);"),
        )?;
        cluster.poll(
            first,
            &format!("SELECT node_status FROM bdr.bdr_nodes WHERE node_name = {name}"),
            |s| s == "k",
        )?;
    }
    for &index in rest {
        let other = &cluster.nodes[index];
        cluster.sql(
            other,
            DATABASE,
            &format!("DELETE FROM bdr.bdr_nodes WHERE node_name = {name};"),
        )?;
        let slots = format!("SELECT count(*) FROM bdr.bdr_node_slots WHERE node_name = {name}");
        cluster.poll(other, &slots, |s| s == "0")?;
    }
    // On the node itself: end every connection to the database (its BDR
    // worker included), drop its slots and the database; the worker may
    // come back in between, so try again until the deadline.
    let drop = format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
           WHERE datname = '{DATABASE}' AND pid <> pg_backend_pid();\n\
         SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots \
           WHERE database = '{DATABASE}' AND NOT active;\n\
         DROP DATABASE {DATABASE};"
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        match cluster.sql(node, "postgres", &drop) {
            Ok(_) => break,
            Err(error) if Instant::now() > deadline => {
                return Err(error.context(format!("cannot drop {DATABASE} on {old}")))
            }
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
    let slots = cluster.sql(
        node,
        "postgres",
        "SELECT count(*) FROM pg_replication_slots",
    )?;
    ensure!(
        slots == "0",
        "{old} still has {slots} replication slots after dropping {DATABASE}"
    );
    cluster.create_database(node)?;
    let new_name = format!("{old}b");
    let join = format!(
        "SELECT bdr.bdr_group_join(local_node_name := {}, node_external_dsn := {}, join_using_dsn := {});",
        literal(&new_name),
        literal(&cluster.dsn(node)),
        literal(&cluster.dsn(first))
    );
    cluster.sql(node, DATABASE, &join)?;
    wait_ready(cluster, node)?;
    cluster.nodes[target].name = new_name.clone();
    let nodes = running(cluster);
    let n = nodes.len();
    let mut names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort();
    let expected = names.join(",");
    let ready = "SELECT string_agg(node_name, ',' ORDER BY node_name) FROM bdr.bdr_nodes WHERE node_status = 'r'";
    let note = all_see_ready(cluster, &nodes, ready, &expected)?;
    // DDL from the rejoined node, rows from it and from the first.
    let rejoined = nodes[n - 1];
    replicates_both_ways(cluster, &nodes, "public.smoke_recreate", rejoined, nodes[0])?;
    Ok(format!(
        "{old} parted, deleted, its slots and {DATABASE} dropped; rejoined as {new_name}; \
         {n} nodes ready ({expected}){note}; DDL and rows both ways"
    ))
}

/// `orphan`: the last running node is killed, never parted. DDL on the
/// first waits for it (cut short by statement_timeout); the journal's
/// workaround then makes the first node standalone.
pub(super) fn orphan(cluster: &mut Cluster) -> anyhow::Result<String> {
    let indexes: Vec<usize> = (0..cluster.nodes.len())
        .filter(|&i| cluster.nodes[i].pid.is_some())
        .collect();
    let (&victim, rest) = indexes.split_last().context("no running node")?;
    let killed = cluster.nodes[victim].name.clone();
    cluster.kill_node(victim)?;
    let survivor = &cluster.nodes[rest[0]];
    let table = "public.smoke_orphan";
    let create = format!("CREATE TABLE {table} (id int PRIMARY KEY, origin text NOT NULL);");
    let started = Instant::now();
    let blocked = expect_error(
        cluster.sql(
            survivor,
            DATABASE,
            &format!("SET statement_timeout = '3s';\n{create}"),
        ),
        "canceling statement due to statement timeout",
        &format!("DDL on {} with {killed} killed", survivor.name),
    )?;
    let waited = started.elapsed().as_secs_f64();
    cluster.psql(
        survivor,
        DATABASE,
        &["-1"],
        "SET LOCAL bdr.skip_ddl_locking = on;\n\
         SET LOCAL bdr.permit_unsafe_ddl_commands = on;\n\
         SET LOCAL bdr.skip_ddl_replication = on;\n\
         DELETE FROM bdr.bdr_connections;\n\
         DELETE FROM bdr.bdr_nodes;\n\
         SELECT bdr.bdr_connections_changed();",
    )?;
    // Plain DDL after the workaround: BDR still wants a global lock, from
    // no peers at all.
    let plain = cluster.sql(
        survivor,
        DATABASE,
        &format!("SET statement_timeout = '10s';\n{create}"),
    );
    let (how, plain_said) = match plain {
        Ok(_) => ("plain DDL", String::new()),
        Err(error) => {
            let text = format!("{error:#}");
            ensure!(
                text.contains(
                    "No peer nodes or peer node count unknown, cannot acquire global lock"
                ),
                "after the workaround DDL on {} failed: {text}",
                survivor.name
            );
            cluster.sql(
                survivor,
                DATABASE,
                &format!(
                    "SET statement_timeout = '10s';\nSET bdr.skip_ddl_locking = on;\n{create}"
                ),
            )?;
            (
                "DDL with SET bdr.skip_ddl_locking = on",
                " (plain DDL still fails: `No peer nodes or peer node count unknown, cannot acquire global lock`)".to_owned(),
            )
        }
    };
    cluster.sql(
        survivor,
        DATABASE,
        &format!(
            "INSERT INTO {table} VALUES (1, {});",
            literal(&survivor.name)
        ),
    )?;
    let count = cluster.sql(survivor, DATABASE, &format!("SELECT count(*) FROM {table}"))?;
    ensure!(
        count == "1",
        "{table} on {} has {count} rows, not 1",
        survivor.name
    );
    let left = cluster.sql(survivor, DATABASE, "SELECT count(*) FROM bdr.bdr_nodes")?;
    Ok(format!(
        "{killed} killed: DDL on {} blocked (`{blocked}` after {waited:.1}s); after the journal's \
         workaround bdr.bdr_nodes has {left} rows and {} accepts {how} and writes{plain_said}",
        survivor.name, survivor.name
    ))
}
