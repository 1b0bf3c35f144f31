//! BDR 1.0, as the reference journal: `bdr_group_create` on the first node,
//! `bdr_group_join` on the others, global sequences, the DDL lock, imports,
//! physical joins, parting, recreating and orphaned nodes.

use anyhow::{bail, ensure};

use super::{create_table, each_node_says, literal, on_every_node, running, TABLE};
use crate::{
    plan::checks::CheckId,
    smoke::cluster::{Cluster, DATABASE},
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
        CheckId::Part => part(cluster),
        _ => bail!("the bdr driver cannot do {id} yet"),
    }
}

/// bdr_node_join_wait_for_ready() never times out by itself.
const WAIT_READY: &str =
    "SET statement_timeout = '60s';\nSELECT bdr.bdr_node_join_wait_for_ready();";

fn join(cluster: &Cluster) -> anyhow::Result<String> {
    let nodes = &cluster.nodes;
    let n = nodes.len();
    let first = &nodes[0];
    let create = format!(
        "SELECT bdr.bdr_group_create(local_node_name := {}, node_external_dsn := {});",
        literal(&first.name),
        literal(&cluster.dsn(first))
    );
    cluster.sql(first, DATABASE, &create)?;
    cluster.sql(first, DATABASE, WAIT_READY)?;
    for node in &nodes[1..] {
        let join = format!(
            "SELECT bdr.bdr_group_join(local_node_name := {}, node_external_dsn := {}, join_using_dsn := {});",
            literal(&node.name),
            literal(&cluster.dsn(node)),
            literal(&cluster.dsn(first))
        );
        cluster.sql(node, DATABASE, &join)?;
        cluster.sql(node, DATABASE, WAIT_READY)?;
    }
    let ready = "SELECT count(*) FROM bdr.bdr_nodes WHERE node_status = 'r'";
    on_every_node(cluster, nodes, ready, &n.to_string()).map_err(|error| {
        // Say what each node believes, to tell a slow join from a stuck one.
        let sql = "SELECT string_agg(node_name || '=' || node_status, ' ' ORDER BY node_name) FROM bdr.bdr_nodes";
        error.context(format!("bdr.bdr_nodes as each node sees it: {}", each_node_says(cluster, sql)))
    })?;
    Ok(format!("{n} nodes in state 'r'"))
}

fn slots(cluster: &Cluster) -> anyhow::Result<String> {
    let n = running(cluster).len();
    on_every_node(
        cluster,
        running(cluster),
        "SELECT count(*) FROM bdr.bdr_node_slots WHERE walsender_active",
        &(n - 1).to_string(),
    )?;
    Ok(format!("{} active slots on each node", n - 1))
}

fn global_sequence(cluster: &Cluster) -> anyhow::Result<String> {
    let nodes = running(cluster);
    cluster.sql(
        nodes[0],
        DATABASE,
        "CREATE SEQUENCE public.smoke_seq USING bdr;",
    )?;
    let mut values = Vec::new();
    for node in &nodes {
        // nextval fails until the nodes have voted the first chunk: retry within the deadline.
        let answer = cluster.poll(
            node,
            "SELECT nextval('public.smoke_seq') FROM generate_series(1, 3)",
            |_| true,
        )?;
        values.extend(answer.lines().map(str::to_owned));
    }
    let mut distinct = values.clone();
    distinct.sort();
    distinct.dedup();
    ensure!(
        distinct.len() == values.len(),
        "values handed out twice: {values:?}"
    );
    Ok(format!("{} distinct values", values.len()))
}

fn part(cluster: &Cluster) -> anyhow::Result<String> {
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
