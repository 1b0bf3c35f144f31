//! The cluster drivers: how nodes join, and the checks that prove every node
//! replicates to every other. `bdr` follows the reference procedure (BDR 1.0);
//! `pglogical` builds the same full mesh from bidirectional subscriptions.

use anyhow::bail;

use crate::smoke::{check, CheckResult, Cluster, Node, DATABASE};
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
    results: &mut Vec<CheckResult>,
    create: &str,
    after_create: &str,
) -> anyhow::Result<()> {
    let nodes = &cluster.nodes;
    check(
        results,
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
    )?;
    check(
        results,
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

/// Disable and enable every subscription that is not replicating; returns
/// `node:subscription` for each one restarted.
fn restart_stuck_subscriptions(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    let mut restarted = Vec::new();
    for node in &cluster.nodes {
        let stuck = cluster.sql(
            node,
            DATABASE,
            "SELECT subscription_name || ' ' || status FROM pglogical.show_subscription_status() WHERE status <> 'replicating'",
        )?;
        for line in stuck.lines().filter(|line| !line.is_empty()) {
            let (name, status) = line.split_once(' ').unwrap_or((line, "?"));
            eprintln!(
                "{:>12} subscription {name} on {} (status {status} after 15 s)",
                "Restarting", node.name
            );
            let name = literal(name);
            let sql = format!(
                "SELECT pglogical.alter_subscription_disable({name}, immediate := true);\n\
                 SELECT pglogical.alter_subscription_enable({name}, immediate := true);"
            );
            cluster.sql(node, DATABASE, &sql)?;
            restarted.push(format!("{}:{}", node.name, line));
        }
    }
    Ok(restarted)
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
    results: &mut Vec<CheckResult>,
    part: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    if cluster.keep {
        eprintln!(
            "{:>12} parting a node: the cluster is kept (--keep) with every node in it",
            "Skipped"
        );
        return Ok(());
    }
    check(
        results,
        "a parted node's slots disappear from the others",
        part,
    )
}

/// Unique in the cluster: pglogical names the provider's slot after the
/// subscription, so two subscribers of one provider need different names.
fn subscription_name(subscriber: &Node, provider: &Node) -> String {
    format!("{}_from_{}", subscriber.name, provider.name)
}

pub fn pglogical(cluster: &Cluster, results: &mut Vec<CheckResult>) -> anyhow::Result<()> {
    let nodes = &cluster.nodes;
    let n = nodes.len();
    check(results, "every node subscribed to every other", || {
        for node in nodes {
            let sql = format!(
                "SELECT pglogical.create_node(node_name := {}, dsn := {});",
                literal(&node.name),
                literal(&cluster.dsn(node))
            );
            cluster.sql(node, DATABASE, &sql)?;
        }
        for subscriber in nodes {
            for provider in nodes.iter().filter(|p| p.name != subscriber.name) {
                // forward_origins := '{}': apply only changes made on the provider itself,
                // so a full mesh never loops a change back.
                let sql = format!(
                    "SELECT pglogical.create_subscription(subscription_name := {}, provider_dsn := {}, \
                     synchronize_structure := false, synchronize_data := false, forward_origins := '{{}}');",
                    literal(&subscription_name(subscriber, provider)),
                    literal(&cluster.dsn(provider))
                );
                cluster.sql(subscriber, DATABASE, &sql)?;
            }
        }
        let sql = "SELECT count(*) FROM pglogical.show_subscription_status() WHERE status = 'replicating'";
        let expected = (n - 1).to_string();
        let all_replicating = |within| {
            nodes.iter().try_for_each(|node| {
                cluster
                    .poll_within(node, sql, |answer| answer == expected, within)
                    .map(drop)
            })
        };
        // Now and then pglogical 2.4.2 starts an apply worker, among several
        // subscriptions made at once, that never reaches `replicating` (seen
        // here about once in twenty 3-node runs). Restarting that subscription
        // heals it; it is reported, and everything after still has to replicate.
        let mut restarted = Vec::new();
        if all_replicating(std::time::Duration::from_secs(15)).is_err() {
            restarted = restart_stuck_subscriptions(cluster)?;
        }
        all_replicating(crate::smoke::DEADLINE).map_err(|error| {
            let statuses = "SELECT string_agg(subscription_name || '=' || status, ' ' ORDER BY subscription_name) \
                            FROM pglogical.show_subscription_status()";
            error.context(format!("subscriptions as each node sees them: {}", each_node_says(cluster, statuses)))
        })?;
        let note = if restarted.is_empty() {
            String::new()
        } else {
            format!(" (restarted stuck: {})", restarted.join(", "))
        };
        Ok(format!("{} subscriptions replicating{note}", n * (n - 1)))
    })?;
    check(results, "N-1 active slots per node", || {
        let sql = format!(
            "SELECT count(*) FROM pg_replication_slots WHERE active AND database = '{DATABASE}'"
        );
        on_every_node(cluster, nodes, &sql, &(n - 1).to_string())?;
        Ok(format!("{} active slots on each node", n - 1))
    })?;
    // pglogical replicates no DDL by itself, and a new table joins the
    // replication set on every node.
    let create = format!(
        "SELECT pglogical.replicate_ddl_command({});",
        literal(&format!(
            "CREATE TABLE {TABLE} (id int PRIMARY KEY, origin text NOT NULL)"
        ))
    );
    let add = format!("SELECT pglogical.replication_set_add_table('default', '{TABLE}');");
    create_table_and_write_rows(cluster, results, &create, &add)?;
    check_parting(cluster, results, || {
        let (parted, remaining) = nodes.split_last().expect("at least two nodes");
        // The subscriptions to or from the parted node, by the node that holds them.
        let parting = |node: &Node| -> Vec<String> {
            let providers: Vec<&Node> = if node.name == parted.name {
                remaining.iter().collect()
            } else {
                vec![parted]
            };
            providers
                .into_iter()
                .map(|provider| literal(&subscription_name(node, provider)))
                .collect()
        };
        let on_each_subscription = |statement: &str| {
            cluster
                .in_parallel(|node| {
                    let sql: String = parting(node)
                        .iter()
                        .map(|name| format!("SELECT pglogical.{statement}({name});\n"))
                        .collect();
                    cluster.sql(node, DATABASE, &sql).map(drop)
                })
                .into_iter()
                .collect::<anyhow::Result<Vec<()>>>()
        };
        // Stop the apply workers first and wait for their walsenders to go:
        // drop_subscription cannot drop an active slot, and retries after a
        // second when it meets one.
        on_each_subscription("alter_subscription_disable")?;
        let active = format!(
            "SELECT count(*) FROM pg_replication_slots WHERE database = '{DATABASE}' AND active"
        );
        on_every_node(cluster, remaining, &active, &(n - 2).to_string())?;
        on_every_node(cluster, std::slice::from_ref(parted), &active, "0")?;
        on_each_subscription("drop_subscription")?;
        let sql =
            format!("SELECT count(*) FROM pg_replication_slots WHERE database = '{DATABASE}'");
        on_every_node(cluster, remaining, &sql, &(n - 2).to_string())?;
        Ok(format!(
            "{} parted; {} slots left on each other node",
            parted.name,
            n - 2
        ))
    })
}

pub fn bdr(cluster: &Cluster, results: &mut Vec<CheckResult>) -> anyhow::Result<()> {
    let nodes = &cluster.nodes;
    let n = nodes.len();
    // bdr_node_join_wait_for_ready() never times out by itself.
    let wait_ready = "SET statement_timeout = '60s';\nSELECT bdr.bdr_node_join_wait_for_ready();";
    check(results, "every node joined and ready", || {
        let first = &nodes[0];
        let create = format!(
            "SELECT bdr.bdr_group_create(local_node_name := {}, node_external_dsn := {});",
            literal(&first.name),
            literal(&cluster.dsn(first))
        );
        cluster.sql(first, DATABASE, &create)?;
        cluster.sql(first, DATABASE, wait_ready)?;
        for node in &nodes[1..] {
            let join = format!(
                "SELECT bdr.bdr_group_join(local_node_name := {}, node_external_dsn := {}, join_using_dsn := {});",
                literal(&node.name),
                literal(&cluster.dsn(node)),
                literal(&cluster.dsn(first))
            );
            cluster.sql(node, DATABASE, &join)?;
            cluster.sql(node, DATABASE, wait_ready)?;
        }
        let ready = "SELECT count(*) FROM bdr.bdr_nodes WHERE node_status = 'r'";
        on_every_node(cluster, nodes, ready, &n.to_string()).map_err(|error| {
            // Say what each node believes, to tell a slow join from a stuck one.
            let sql = "SELECT string_agg(node_name || '=' || node_status, ' ' ORDER BY node_name) FROM bdr.bdr_nodes";
            error.context(format!("bdr.bdr_nodes as each node sees it: {}", each_node_says(cluster, sql)))
        })?;
        Ok(format!("{n} nodes in state 'r'"))
    })?;
    check(results, "N-1 active slots per node", || {
        on_every_node(
            cluster,
            nodes,
            "SELECT count(*) FROM bdr.bdr_node_slots WHERE walsender_active",
            &(n - 1).to_string(),
        )?;
        Ok(format!("{} active slots on each node", n - 1))
    })?;
    // Plain DDL is replicated by BDR 1.0 itself, under the global DDL lock.
    let create = format!("CREATE TABLE {TABLE} (id int PRIMARY KEY, origin text NOT NULL);");
    create_table_and_write_rows(cluster, results, &create, "")?;
    check(
        results,
        "a global sequence hands out distinct values on every node",
        || {
            cluster.sql(
                &nodes[0],
                DATABASE,
                "CREATE SEQUENCE public.smoke_seq USING bdr;",
            )?;
            let mut values = Vec::new();
            for node in nodes {
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
            if distinct.len() != values.len() {
                bail!("values handed out twice: {values:?}");
            }
            Ok(format!("{} distinct values", values.len()))
        },
    )?;
    check_parting(cluster, results, || {
        let (parted, remaining) = nodes.split_last().expect("at least two nodes");
        let name = literal(&parted.name);
        cluster.sql(
            &remaining[0],
            DATABASE,
            &format!("SELECT bdr.bdr_part_by_node_names(ARRAY[{name}]);"),
        )?;
        cluster.poll(
            &remaining[0],
            &format!("SELECT node_status FROM bdr.bdr_nodes WHERE node_name = {name}"),
            |s| s == "k",
        )?;
        let sql = format!("SELECT count(*) FROM bdr.bdr_node_slots WHERE node_name = {name}");
        on_every_node(cluster, remaining, &sql, "0")?;
        Ok(format!(
            "{} parted (status 'k'), its slots gone",
            parted.name
        ))
    })
}
