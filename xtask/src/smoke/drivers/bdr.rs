//! BDR 1.0, as the reference journal: `bdr_group_create` on the first node,
//! `bdr_group_join` on the others, global sequences, the DDL lock, imports,
//! physical joins, parting, recreating and orphaned nodes.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context};

use super::{all_ids, create_table, each_node_says, literal, on_every_node, running, TABLE};
use crate::{
    interrupt,
    plan::checks::CheckId,
    printable::printable,
    smoke::{
        cluster::{Cluster, DEADLINE},
        server::{Node, DATABASE},
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

/// The condition on `bdr.bdr_nodes` that picks a node's own row.
const OWN_ROW: &str = "(node_sysid, node_timeline, node_dboid) = bdr.bdr_get_local_nodeid()";

/// Wait until `node` is ready in its group: what
/// `bdr.bdr_node_join_wait_for_ready()` waits for (its own row of
/// `bdr.bdr_nodes` in state 'r'), polled in milliseconds rather than its
/// half-second sleeps (it sleeps before it looks, too), and bounded.
fn wait_ready(cluster: &Cluster, node: &Node) -> anyhow::Result<()> {
    let own = format!("SELECT node_status FROM bdr.bdr_nodes WHERE {OWN_ROW}");
    cluster.poll(node, &own, |status| status == "r").map(drop)
}

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
    wait_ready(cluster, first)?;
    for node in &nodes[1..] {
        let join = format!(
            "SELECT bdr.bdr_group_join(local_node_name := {}, node_external_dsn := {}, join_using_dsn := {});",
            literal(&node.name),
            literal(&cluster.dsn(node)),
            literal(&cluster.dsn(first))
        );
        cluster.sql(node, DATABASE, &join)?;
        wait_ready(cluster, node)?;
    }
    let ready = "SELECT count(*) FROM bdr.bdr_nodes WHERE node_status = 'r'";
    let note = all_see_ready(cluster, &running(cluster), ready, &n.to_string())?;
    Ok(format!("{n} nodes in state 'r'{note}"))
}

/// Every node of `nodes` answers `sql` (its view of who is ready) with
/// `expected`, within the deadline. A ready status a peer is known to have
/// missed is sent again at once (see [`ReadyStatuses`]); returns a note
/// naming what was, for the check's detail line.
fn all_see_ready(
    cluster: &Cluster,
    nodes: &[&Node],
    sql: &str,
    expected: &str,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + DEADLINE;
    let mut statuses = ReadyStatuses::default();
    let mut delay = Duration::from_millis(20);
    loop {
        interrupt::check()?;
        let waiting_for = nodes.iter().find_map(|node| {
            let answer = cluster.sql(node, DATABASE, sql);
            match answer {
                Ok(answer) if answer == expected => None,
                Ok(answer) => Some((node, format!("last answer `{answer}`"))),
                Err(error) => Some((node, format!("last error: {error:#}"))),
            }
        });
        let Some((node, seen)) = waiting_for else {
            break;
        };
        if Instant::now() >= deadline {
            // Say what each node believes and how far each peer has
            // confirmed its slots, to tell a slow join from a stuck one.
            let views = "SELECT string_agg(node_name || '=' || node_status, ' ' ORDER BY node_name) FROM bdr.bdr_nodes";
            let slots = "SELECT string_agg(node_name || '=' || coalesce(slot_confirmed_lsn::text, 'none'), ' ' ORDER BY node_name) FROM bdr.bdr_node_slots";
            bail!(
                "on {}: `{sql}` did not reach `{expected}` within {DEADLINE:?} ({seen}); \
                 bdr.bdr_nodes as each node sees it: {}; each node's slots confirmed by its \
                 peers up to: {}; ready statuses committed before: {}",
                node.name,
                each_node_says(cluster, views),
                each_node_says(cluster, slots),
                statuses.committed_before_text()
            );
        }
        statuses.resend_missed(cluster, nodes)?;
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(200));
    }
    Ok(statuses.note())
}

/// Now and then (about one 2-node join in fifteen here) a joined node is
/// ready in its own `bdr.bdr_nodes` but a peer keeps it at 'i' forever,
/// while replication itself works. BDR 1.0.7 marks a joining node ready
/// (`bdr_init_replica` in bdr_init_replica.c, after
/// `bdr_init_wait_for_slot_creation`) once a BDR walsender for each peer is
/// registered in shared memory; but `pg_decode_startup` (bdr_output.c)
/// registers it also when it is called for a slot being created, and
/// postgres-bdr's `CreateInitDecodingContext` (logical.c) calls it before
/// `CreateReplicationSlot` (walsender.c) searches for the slot's consistent
/// point (`DecodingContextFindStartpoint`, which sets the slot's
/// `confirmed_flush` there). The status update can thus commit before the
/// slot's start, and commits before it are never decoded: the peer never
/// gets it. A node that joins later copies `bdr.bdr_nodes` from the node it
/// joins through (`bdr_sync_nodes`), a missed status with it, and no
/// peer forwards another node's changes outside catchup
/// (`should_forward_changeset` in bdr_output.c): it holds that status too.
/// Writing the status again (the same value) on the node itself sends it
/// through the slots that now exist.
///
/// A miss is told from a peer that is merely slow by the slot's position,
/// not by waiting. Once a node shows itself ready, its WAL insert location
/// is past the update's commit record. `bdr.bdr_node_slots` on the node
/// shows, per peer, the `confirmed_flush_lsn` postgres-bdr backports to
/// `pg_get_replication_slots` (slotfuncs.c): the slot's start, then what the
/// peer's apply worker reported flushed. `bdr_send_feedback` (bdr_apply.c)
/// reports as flushed only the end of transactions it applied and flushed
/// locally, or, when none is outstanding, the position it received, and
/// `bdr_apply_work` applies each transaction before it reads the next
/// message; the walsender pings the peer whenever it has sent all flushed
/// WAL (`WalSndWaitForWal` in walsender.c) and the peer answers at once, so
/// the position follows within about a second of the WAL being flushed (the
/// status's asynchronous commit: by the WAL writer, within
/// `wal_writer_delay`). A slot confirmed past that location by a peer that,
/// read afterwards, still holds the node at another status has therefore
/// either applied the update or will never be sent it: it was missed. A
/// peer behind that location is left alone, however long it takes.
#[derive(Default)]
struct ReadyStatuses {
    /// Per node: a WAL position its ready status was committed before.
    committed_before: BTreeMap<String, String>,
    /// (node, peer) pairs where the peer has the node ready.
    seen: BTreeSet<(String, String)>,
    /// Per node whose status was sent again: the peers that had missed it,
    /// in the order they were found.
    resent: BTreeMap<String, Vec<String>>,
}

impl ReadyStatuses {
    /// Look once at every node whose peers may not all have its ready
    /// status, and send it again where a peer is known to have missed it.
    fn resend_missed(&mut self, cluster: &Cluster, nodes: &[&Node]) -> anyhow::Result<()> {
        for &node in nodes {
            let peers: Vec<&Node> = nodes
                .iter()
                .copied()
                .filter(|peer| {
                    peer.name != node.name
                        && !self.seen.contains(&(node.name.clone(), peer.name.clone()))
                })
                .collect();
            if peers.is_empty() {
                continue;
            }
            let Some(lsn) = self.committed_before(cluster, node)? else {
                continue;
            };
            // The slots' positions first, the peers' views after: a view
            // read later includes whatever was applied up to the position.
            let confirmed = cluster.sql(
                node,
                DATABASE,
                &format!(
                    "SELECT node_name FROM bdr.bdr_node_slots \
                     WHERE slot_confirmed_lsn >= {}::pg_lsn ORDER BY node_name",
                    literal(&lsn)
                ),
            )?;
            let seen_as = format!(
                "SELECT node_status FROM bdr.bdr_nodes WHERE node_name = {}",
                literal(&node.name)
            );
            let mut missed_by = Vec::new();
            for peer in peers {
                if !confirmed.lines().any(|name| name == peer.name) {
                    continue;
                }
                match cluster.sql(peer, DATABASE, &seen_as)?.as_str() {
                    "r" => {
                        self.seen.insert((node.name.clone(), peer.name.clone()));
                    }
                    // No row yet: the status could not land there either.
                    "" => {}
                    status => missed_by.push((peer.name.clone(), status.to_owned())),
                }
            }
            if missed_by.is_empty() {
                continue;
            }
            let names: Vec<&str> = missed_by.iter().map(|(name, _)| name.as_str()).collect();
            let names = names.join(", ");
            // A status sent again commits after the slots of every peer it
            // was sent for had started: such a peer past it that still
            // does not have it is not a race.
            let earlier = self.resent.entry(node.name.clone()).or_default();
            let again: Vec<String> = missed_by
                .iter()
                .filter(|(name, _)| earlier.contains(name))
                .map(|(name, status)| format!("{name} ('{status}')"))
                .collect();
            ensure!(
                again.is_empty(),
                "the ready status of {}, sent again (committed before {lsn}), is still missed by \
                 peers confirmed past it: {}",
                node.name,
                again.join(", ")
            );
            let after = cluster.sql(
                node,
                DATABASE,
                &format!(
                    "UPDATE bdr.bdr_nodes SET node_status = 'r' WHERE {OWN_ROW};\n\
                     SELECT pg_current_xlog_insert_location();"
                ),
            )?;
            eprintln!(
                "{:>12} the ready status of {} (missed by {names}: confirmed past {lsn} without it)",
                "Resending", node.name
            );
            earlier.extend(missed_by.into_iter().map(|(name, _)| name));
            self.committed_before.insert(node.name.clone(), after);
        }
        Ok(())
    }

    /// The WAL position `node`'s ready status was committed before, read
    /// once the node shows itself ready (`None` until then). The insert
    /// location, not `pg_current_xlog_location()` (the write position): BDR's
    /// workers commit with `synchronous_commit = off` (`bdr_bgworker_init`
    /// in bdr.c), so a commit can be visible before it is written.
    fn committed_before(
        &mut self,
        cluster: &Cluster,
        node: &Node,
    ) -> anyhow::Result<Option<String>> {
        if let Some(lsn) = self.committed_before.get(&node.name) {
            return Ok(Some(lsn.clone()));
        }
        // One statement: its snapshot, which sees the status, is taken
        // before the location is read.
        let answer = cluster.sql(
            node,
            DATABASE,
            &format!(
                "SELECT node_status || ' ' || pg_current_xlog_insert_location() \
                 FROM bdr.bdr_nodes WHERE {OWN_ROW}"
            ),
        )?;
        let Some(lsn) = answer.strip_prefix("r ") else {
            return Ok(None);
        };
        self.committed_before
            .insert(node.name.clone(), lsn.to_owned());
        Ok(Some(lsn.to_owned()))
    }

    fn committed_before_text(&self) -> String {
        if self.committed_before.is_empty() {
            return "(no node showed itself ready)".to_owned();
        }
        let positions: Vec<String> = self
            .committed_before
            .iter()
            .map(|(node, lsn)| format!("{node} {lsn}"))
            .collect();
        positions.join(", ")
    }

    /// ` (ready status sent again: node (missed by peer, ...), ...)`, or
    /// nothing when no status was.
    fn note(&self) -> String {
        if self.resent.is_empty() {
            return String::new();
        }
        let resent: Vec<String> = self
            .resent
            .iter()
            .map(|(node, peers)| format!("{node} (missed by {})", peers.join(", ")))
            .collect();
        format!(" (ready status sent again: {})", resent.join(", "))
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

/// While `work` runs, reload the node's configuration every 100 ms: the
/// SIGHUP sets every backend's latch, so a nextval waiting (10 s a time,
/// 7 times) for a chunk election wakes up and tries again at once.
fn with_nudges<T>(cluster: &Cluster, node: &Node, work: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let _ = cluster.sql(node, DATABASE, "SELECT pg_reload_conf();");
                thread::sleep(Duration::from_millis(100));
            }
        });
        let result = work();
        done.store(true, Ordering::Relaxed);
        result
    })
}

fn global_sequence(cluster: &mut Cluster) -> anyhow::Result<String> {
    let seq = "public.smoke_seq";
    let basics = sequence_basics(cluster, seq)?;
    let quorum = quorum(cluster, seq)?;
    Ok(format!("{basics}; {quorum}"))
}

/// Concurrent nextval on every node, RESTART refused, the workaround.
fn sequence_basics(cluster: &Cluster, seq: &str) -> anyhow::Result<String> {
    let nodes: Vec<&Node> = running(cluster);
    cluster.sql(
        nodes[0],
        DATABASE,
        &format!("CREATE SEQUENCE {seq} USING bdr;"),
    )?;
    // nextval fails ("not initialized yet") until the nodes have voted the first chunks.
    for node in &nodes {
        cluster.poll(node, &format!("SELECT nextval('{seq}')"), |_| true)?;
    }
    // Concurrent nextval on every node at once.
    let per_node = 500;
    let batches: Vec<anyhow::Result<String>> = thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|node| {
                let sql = format!("SELECT nextval('{seq}') FROM generate_series(1, {per_node})");
                scope.spawn(move || cluster.sql(node, DATABASE, &sql))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("nextval thread panicked"))
            .collect()
    });
    let mut values = Vec::new();
    for batch in batches {
        values.extend(batch?.lines().map(str::to_owned));
    }
    let distinct: BTreeSet<&String> = values.iter().collect();
    ensure!(
        values.len() == per_node * nodes.len() && distinct.len() == values.len(),
        "concurrent nextval on {} nodes: {} values, {} distinct (expected {} distinct)",
        nodes.len(),
        values.len(),
        distinct.len(),
        per_node * nodes.len()
    );
    // The journal: RESTART is refused; the workaround advances the counter.
    expect_error(
        cluster.sql(
            nodes[0],
            DATABASE,
            &format!("ALTER SEQUENCE {seq} RESTART WITH 1000000;"),
        ),
        "ALTER SEQUENCE ... restart is not supported for bdr sequences",
        "ALTER SEQUENCE ... RESTART",
    )?;
    let answer = cluster.sql(
        nodes[0],
        DATABASE,
        &format!(
            "SELECT nextval('{seq}');\n\
             SELECT max(v) FROM (SELECT nextval('{seq}') v FROM generate_series(1, 1000)) x;\n\
             SELECT nextval('{seq}');"
        ),
    )?;
    let numbers: Vec<i64> = answer
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let [before, workaround, after] = numbers[..] else {
        bail!("the workaround's answer is `{answer}`, not three numbers");
    };
    ensure!(
        workaround >= before + 1000 && after > workaround,
        "the workaround did not advance the counter by 1000: {before}, then {workaround}, then {after}"
    );
    Ok(format!(
        "{} distinct values from {} nodes at once; RESTART refused; the workaround advanced \
         {before} -> {after}",
        values.len(),
        nodes.len()
    ))
}

/// Stop enough peers that the first node has no quorum; it must run out
/// of values with the journal's error, and hand out values again once
/// they are back.
fn quorum(cluster: &mut Cluster, seq: &str) -> anyhow::Result<String> {
    let indexes: Vec<usize> = (0..cluster.nodes.len())
        .filter(|&i| cluster.nodes[i].pid.is_some())
        .collect();
    let (survivor, peers) = indexes.split_first().context("no running node")?;
    // An election needs the votes of half the peers (rounded up).
    let stop_count = peers.len() - peers.len().div_ceil(2) + 1;
    let stopped: Vec<usize> = peers[peers.len() - stop_count..].to_vec();
    for &index in &stopped {
        cluster.stop_node(index)?;
    }
    let node = &cluster.nodes[*survivor];
    let started = Instant::now();
    let batch = format!(
        "SET statement_timeout = '90s';\n\
         SELECT max(v) FROM (SELECT nextval('{seq}') v FROM generate_series(1, 20000)) x;"
    );
    let (handed_out, error) = with_nudges(cluster, node, || {
        let mut last = String::new();
        for _ in 0..100 {
            match cluster.sql(node, DATABASE, &batch) {
                Ok(answer) => last = answer,
                Err(error) => return Ok((last, format!("{error:#}"))),
            }
            if started.elapsed() > Duration::from_secs(120) {
                break;
            }
        }
        bail!(
            "{} still hands out values without a quorum after {:.0}s (last {last})",
            node.name,
            started.elapsed().as_secs_f64()
        )
    })?;
    let needle = format!("could not find free sequence value for global sequence {seq}");
    ensure!(
        error.contains(&needle),
        "without a quorum nextval failed, but not with `{needle}`: {error}"
    );
    let ran_out = started.elapsed().as_secs_f64();
    cluster.start_nodes(&stopped)?;
    let node = &cluster.nodes[*survivor];
    let again = Instant::now();
    with_nudges(cluster, node, || {
        cluster.poll(
            node,
            &format!("SET statement_timeout = '5s'; SELECT nextval('{seq}');"),
            |_| true,
        )
    })?;
    let recovered = again.elapsed().as_secs_f64();
    // The next checks need the group whole again.
    let n = running(cluster).len();
    on_every_node(
        cluster,
        running(cluster),
        "SELECT count(*) FROM bdr.bdr_node_slots WHERE walsender_active",
        &(n - 1).to_string(),
    )?;
    Ok(format!(
        "with {} of {} peers stopped: `{needle}` after {ran_out:.1}s (values up to {handed_out}); \
         values again {recovered:.1}s after the restart",
        stopped.len(),
        peers.len()
    ))
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

/// `import`: the journal's procedure, verbatim. A database with an
/// ordinary sequence (a SERIAL table with rows) on the first node is
/// dumped; BDR's queues are truncated; the dump, with `SET LOCAL
/// default_sequenceam = 'bdr'` on top, is restored in one transaction.
/// BDR 1.0.7 refuses it whole (the dump's setval on a global sequence): the
/// check proves nothing was half imported, reports it, and imports the way
/// BDR accepts (START WITH past the dump's value, no setval); then the
/// sequence must be global and inserts on every node at once collide with
/// nothing.
fn import(cluster: &Cluster) -> anyhow::Result<String> {
    let nodes = running(cluster);
    let first = nodes[0];
    let source = "smoke_import_source";
    let table = "public.imported_jobs";
    let rows = 100;
    cluster.sql(first, "postgres", &format!("CREATE DATABASE {source};"))?;
    cluster.sql(
        first,
        source,
        &format!(
            "CREATE TABLE {table} (id serial PRIMARY KEY, name text NOT NULL);\n\
             INSERT INTO {table} (name) SELECT 'job ' || g FROM generate_series(1, {rows}) g;"
        ),
    )?;
    let dump = cluster.dump(first, source, &[])?;
    cluster.sql(
        first,
        DATABASE,
        "TRUNCATE bdr.bdr_queued_commands;\nTRUNCATE bdr.bdr_queued_drops;",
    )?;
    let script = format!("SET LOCAL default_sequenceam = 'bdr';\n{dump}");
    let journal = match cluster.psql(first, DATABASE, &["-1"], &script) {
        Ok(_) => "the journal's procedure as written".to_owned(),
        Err(error) => {
            let error = format!("{error:#}");
            if !error.contains("cannot call setval() on global sequence") {
                bail!("the journal's import failed: {error}");
            }
            // As written, the restore is refused whole: safe (nothing half
            // imported anywhere), but not an import. Under default_sequenceam
            // = 'bdr' the dump's sequence is created global, and a global
            // sequence refuses the dump's setval; without -1 or ON_ERROR_STOP
            // the setval is skipped and the sequence hands out values from
            // its START WITH (1) over the imported ids: the duplicate keys
            // users report.
            let exists = format!("SELECT to_regclass('{table}') IS NULL");
            on_every_node(cluster, nodes.iter().copied(), &exists, "t")
                .context("the refused restore left a table behind")?;
            cluster.sql(
                first,
                DATABASE,
                "TRUNCATE bdr.bdr_queued_commands;\nTRUNCATE bdr.bdr_queued_drops;",
            )?;
            let fixed = sequences_start_past_their_values(&dump)?;
            let script = format!("SET LOCAL default_sequenceam = 'bdr';\n{fixed}");
            cluster
                .psql(first, DATABASE, &["-1"], &script)
                .context("the corrected import failed")?;
            "the journal's procedure as written was refused whole (`cannot call setval() on \
             global sequence`: nothing imported on any node); with each sequence's START WITH \
             past the dump's value and its setval left out"
                .to_owned()
        }
    };
    // Restored: the sequence is global, the rows everywhere, and inserts
    // through it on every node at once collide with nothing.
    let seq = "public.imported_jobs_id_seq";
    let am = format!(
        "SELECT a.seqamname FROM pg_class c JOIN pg_seqam a ON a.oid = c.relam WHERE c.oid = '{seq}'::regclass"
    );
    on_every_node(cluster, nodes.iter().copied(), &am, "bdr")?;
    let count = format!("SELECT count(*) FROM {table}");
    on_every_node(cluster, nodes.iter().copied(), &count, &rows.to_string())?;
    let per_node = 200;
    let inserts = cluster.in_parallel(|node| {
        if node.pid.is_none() {
            return Ok(String::new());
        }
        cluster.poll(
            node,
            &format!(
                "INSERT INTO {table} (name) SELECT {} FROM generate_series(1, {per_node}) RETURNING id",
                literal(&node.name)
            ),
            |_| true,
        )
    });
    for insert in inserts {
        insert.context("inserting through the imported sequence")?;
    }
    let total = rows + per_node * nodes.len();
    let distinct = format!("SELECT count(*) || ' ' || count(DISTINCT id) FROM {table}");
    on_every_node(
        cluster,
        nodes.iter().copied(),
        &distinct,
        &format!("{total} {total}"),
    )?;
    Ok(format!(
        "{journal}: {rows} rows imported, {seq} global; {total} rows, all ids distinct, on every \
         node"
    ))
}

/// The dump with every `setval` left out and the value it would have set
/// given to its sequence as `START WITH` (one past it once called): the
/// import a global sequence accepts, handing out values above the rows.
fn sequences_start_past_their_values(dump: &str) -> anyhow::Result<String> {
    let mut text = String::with_capacity(dump.len());
    let mut starts = Vec::new();
    for line in dump.lines() {
        match line.strip_prefix("SELECT pg_catalog.setval('") {
            Some(rest) => {
                // SELECT pg_catalog.setval('name', 100, true);
                let (name, rest) = rest.split_once("', ").context("a setval line")?;
                let (value, called) = rest.split_once(", ").context("a setval line")?;
                let value: i64 = value.trim().parse().context("a setval value")?;
                let start = if called.starts_with("true") {
                    value + 1
                } else {
                    value
                };
                starts.push((name.to_owned(), start));
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    for (name, start) in starts {
        let create = format!("CREATE SEQUENCE {name}\n");
        let at = text
            .find(&create)
            .with_context(|| format!("the dump has no `CREATE SEQUENCE {name}`"))?;
        let rest = &text[at..];
        let line = rest
            .find("    START WITH ")
            .filter(|offset| *offset < rest.find(';').unwrap_or(rest.len()))
            .with_context(|| format!("`CREATE SEQUENCE {name}` has no START WITH"))?;
        let from = at + line;
        let to = from + text[from..].find('\n').context("a START WITH line")?;
        text.replace_range(from..to, &format!("    START WITH {start}"));
    }
    Ok(text)
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
fn physical_join(cluster: &mut Cluster) -> anyhow::Result<String> {
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
fn recreate(cluster: &mut Cluster) -> anyhow::Result<String> {
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
fn orphan(cluster: &mut Cluster) -> anyhow::Result<String> {
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

#[cfg(test)]
mod tests {
    use super::sequences_start_past_their_values;

    #[test]
    fn a_dumps_setval_becomes_its_sequences_start() {
        let dump =
            "CREATE SEQUENCE imported_jobs_id_seq\n    START WITH 1\n    INCREMENT BY 1\n    \
                    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1;\n\
                    CREATE SEQUENCE other_seq\n    START WITH 1\n    CACHE 1;\n\
                    COPY imported_jobs (id, name) FROM stdin;\n1\tjob 1\n\\.\n\
                    SELECT pg_catalog.setval('imported_jobs_id_seq', 100, true);\n\
                    SELECT pg_catalog.setval('other_seq', 7, false);\n";
        let fixed = sequences_start_past_their_values(dump).unwrap();
        assert!(!fixed.contains("setval"), "{fixed}");
        assert!(
            fixed.contains(
                "CREATE SEQUENCE imported_jobs_id_seq\n    START WITH 101\n    INCREMENT BY 1\n"
            ),
            "{fixed}"
        );
        assert!(
            fixed.contains("CREATE SEQUENCE other_seq\n    START WITH 7\n"),
            "{fixed}"
        );
        assert!(
            fixed.contains("1\tjob 1\n\\.\n"),
            "the data is kept: {fixed}"
        );
    }

    #[test]
    fn a_setval_without_its_sequence_is_an_error() {
        let dump = "SELECT pg_catalog.setval('missing_seq', 3, true);\n";
        assert!(sequences_start_past_their_values(dump).is_err());
    }
}
