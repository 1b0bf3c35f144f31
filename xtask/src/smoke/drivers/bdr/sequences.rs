//! Global sequences: values handed out on every node at once, RESTART
//! refused and the journal's workaround, running out without a quorum and
//! recovering; and the journal's import of a database with an ordinary
//! sequence, with the dump rewritten (pure) the way a global sequence
//! accepts it.

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context};

use super::expect_error;
use crate::smoke::{
    cluster::Cluster,
    drivers::{literal, on_every_node, running},
    server::{Node, DATABASE},
};

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

pub(super) fn global_sequence(cluster: &mut Cluster) -> anyhow::Result<String> {
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

/// `import`: the journal's procedure, verbatim. A database with an
/// ordinary sequence (a SERIAL table with rows) on the first node is
/// dumped; BDR's queues are truncated; the dump, with `SET LOCAL
/// default_sequenceam = 'bdr'` on top, is restored in one transaction.
/// BDR 1.0.7 refuses it whole (the dump's setval on a global sequence): the
/// check proves nothing was half imported, reports it, and imports the way
/// BDR accepts (START WITH past the dump's value, no setval); then the
/// sequence must be global and inserts on every node at once collide with
/// nothing.
pub(super) fn import(cluster: &Cluster) -> anyhow::Result<String> {
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
