//! How nodes join a BDR group and are known ready: `bdr_group_create` and
//! `bdr_group_join`, a node's own ready status waited for, every node's
//! view of who is ready, and a ready status a peer missed (told by its slot
//! confirmed past the status without it) sent again.

use std::{
    collections::{BTreeMap, BTreeSet},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure};

use crate::{
    interrupt,
    smoke::{
        cluster::{Cluster, DEADLINE},
        drivers::{each_node_says, literal, running},
        server::{Node, DATABASE},
    },
};

/// The condition on `bdr.bdr_nodes` that picks a node's own row.
const OWN_ROW: &str = "(node_sysid, node_timeline, node_dboid) = bdr.bdr_get_local_nodeid()";

/// Wait until `node` is ready in its group: what
/// `bdr.bdr_node_join_wait_for_ready()` waits for (its own row of
/// `bdr.bdr_nodes` in state 'r'), polled in milliseconds rather than its
/// half-second sleeps (it sleeps before it looks, too), and bounded.
pub(super) fn wait_ready(cluster: &Cluster, node: &Node) -> anyhow::Result<()> {
    let own = format!("SELECT node_status FROM bdr.bdr_nodes WHERE {OWN_ROW}");
    cluster.poll(node, &own, |status| status == "r").map(drop)
}

pub(super) fn join(cluster: &Cluster) -> anyhow::Result<String> {
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
pub(super) fn all_see_ready(
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
