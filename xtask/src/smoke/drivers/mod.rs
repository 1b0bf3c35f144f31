//! The cluster drivers: how nodes join, and the checks that prove every node
//! replicates to every other. `bdr` follows the reference procedure (BDR 1.0);
//! `pglogical` builds the same full mesh from bidirectional subscriptions.
//! The checks both share are here.

mod bdr;
mod pglogical;

use std::ops::ControlFlow;

use super::{
    checks::Checks,
    cluster::{Cluster, Node, DATABASE},
};
use crate::{input::recipe::ClusterDriver, stop_on_failure};

/// Join the nodes the driver's way and run its checks.
pub fn run(
    driver: ClusterDriver,
    cluster: &Cluster,
    checks: &mut Checks,
) -> anyhow::Result<ControlFlow<()>> {
    match driver {
        ClusterDriver::Pglogical => pglogical::run(cluster, checks),
        ClusterDriver::Bdr => bdr::run(cluster, checks),
    }
}
/// The table the DDL and row checks use, schema-qualified as BDR asks.
const TABLE: &str = "public.smoke_rows";

/// Quote a value as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Ids 1..=n, as `string_agg` prints them.
fn all_ids(n: usize) -> String {
    (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// Poll every node in turn until `sql` answers `expected`.
fn on_every_node(
    cluster: &Cluster,
    nodes: &[Node],
    sql: &str,
    expected: &str,
) -> anyhow::Result<()> {
    for node in nodes {
        cluster.poll(node, sql, |answer| answer == expected)?;
    }
    Ok(())
}

fn create_table_and_write_rows(
    cluster: &Cluster,
    checks: &mut Checks,
    create: &str,
    after_create: &str,
) -> anyhow::Result<ControlFlow<()>> {
    let nodes = &cluster.nodes;
    stop_on_failure!(checks.run(
        "a table created through DDL replication exists on every node",
        || {
            cluster.sql(&nodes[0], DATABASE, create)?;
            on_every_node(
                cluster,
                nodes,
                &format!("SELECT to_regclass('{TABLE}') IS NOT NULL"),
                "t",
            )?;
            for node in nodes {
                if !after_create.is_empty() {
                    cluster.sql(node, DATABASE, after_create)?;
                }
            }
            Ok(format!("{TABLE} on {} nodes", nodes.len()))
        },
    )?);
    checks.run(
        "rows written on every node are visible on every node",
        || {
            for (index, node) in nodes.iter().enumerate() {
                cluster.sql(
                    node,
                    DATABASE,
                    &format!(
                        "INSERT INTO {TABLE} VALUES ({}, {});",
                        index + 1,
                        literal(&node.name)
                    ),
                )?;
            }
            let sql = format!("SELECT string_agg(id::text, ',' ORDER BY id) FROM {TABLE}");
            on_every_node(cluster, nodes, &sql, &all_ids(nodes.len()))?;
            Ok(format!("{0} rows on each of {0} nodes", nodes.len()))
        },
    )
}

/// One query's answer from every node, for an error message.
fn each_node_says(cluster: &Cluster, sql: &str) -> String {
    let answers: Vec<String> = cluster
        .nodes
        .iter()
        .map(|node| {
            let answer = cluster
                .sql(node, DATABASE, sql)
                .unwrap_or_else(|error| format!("({error:#})"));
            format!("{}: {answer}", node.name)
        })
        .collect();
    answers.join("; ")
}

/// The last check, parting a node; skipped for a kept cluster, which is
/// handed over whole.
fn check_parting(
    cluster: &Cluster,
    checks: &mut Checks,
    part: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<ControlFlow<()>> {
    if cluster.keep {
        eprintln!(
            "{:>12} parting a node: the cluster is kept (--keep) with every node in it",
            "Skipped"
        );
        return Ok(ControlFlow::Continue(()));
    }
    checks.run("a parted node's slots disappear from the others", part)
}
