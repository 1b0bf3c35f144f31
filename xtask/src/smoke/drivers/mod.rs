//! The cluster drivers: how nodes join, and the checks that prove what the
//! reference journal says. `bdr` follows the journal (BDR 1.0); `pglogical`
//! builds the same full mesh from bidirectional subscriptions. The runner
//! and the checks both drivers do the same way are here.

mod bdr;
mod pglogical;

use anyhow::{bail, ensure};

use super::{
    checks::{Checks, Status},
    cluster::Cluster,
    config::JOURNAL_SETTINGS,
    server::{Node, DATABASE, OWNER, REPLICATION_USER},
};
use crate::{
    input::recipe::ClusterDriver,
    plan::{checks::CheckId, Smoke},
};

/// Run the selected checks in order, the driver's way; the first failure
/// ends the run (the checks after it build on it).
pub fn run(smoke: &Smoke, cluster: &mut Cluster, checks: &mut Checks) -> anyhow::Result<()> {
    let driver = smoke.driver;
    for &id in &smoke.checks {
        let name = id.title(driver);
        if !id.applies_to(driver) {
            let why = id.not_applicable_because(driver);
            checks.not_run(id, name, Status::NotApplicable, why);
        } else if id == CheckId::Tls && !cluster.tls {
            let why = "the nodes talk plaintext (a server without OpenSSL, or --tls off)";
            checks.not_run(id, name, Status::NotApplicable, why);
        } else if cluster.server.keep && id.changes_membership() {
            let why = "the cluster is kept (--keep) with every node in it";
            checks.not_run(id, name, Status::Skipped, why);
        } else if checks
            .run(id, name, || check(driver, id, cluster))?
            .is_break()
        {
            break;
        }
    }
    Ok(())
}

fn check(driver: ClusterDriver, id: CheckId, cluster: &mut Cluster) -> anyhow::Result<String> {
    match (id, driver) {
        (CheckId::Settings, _) => settings(cluster),
        (CheckId::Tls, _) => tls(cluster),
        (CheckId::Rows, _) => rows(cluster),
        (CheckId::RolesLocal, _) => roles_local(cluster, driver),
        (_, ClusterDriver::Bdr) => bdr::check(id, cluster),
        (_, ClusterDriver::Pglogical) => pglogical::check(id, cluster),
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

/// The nodes that run, in order (a killed or stopped node is left out).
fn running(cluster: &Cluster) -> Vec<&Node> {
    cluster.nodes.iter().filter(|n| n.pid.is_some()).collect()
}

/// Poll every node in turn until `sql` answers `expected`.
fn on_every_node<'a>(
    cluster: &Cluster,
    nodes: impl IntoIterator<Item = &'a Node>,
    sql: &str,
    expected: &str,
) -> anyhow::Result<()> {
    for node in nodes {
        cluster.poll(node, sql, |answer| answer == expected)?;
    }
    Ok(())
}

/// DDL that reaches every node, the driver's way: BDR replicates DDL by
/// itself; pglogical through `replicate_ddl_command` (names qualified).
fn replicated_ddl(driver: ClusterDriver, ddl: &str) -> String {
    match driver {
        ClusterDriver::Bdr => format!("{ddl};"),
        ClusterDriver::Pglogical => {
            format!("SELECT pglogical.replicate_ddl_command({});", literal(ddl))
        }
    }
}

/// `ddl`: create the table through DDL replication on the first node; it
/// must appear on every node; then `after_create` on each.
fn create_table(cluster: &Cluster, create: &str, after_create: &str) -> anyhow::Result<String> {
    let nodes = running(cluster);
    cluster.sql(nodes[0], DATABASE, create)?;
    on_every_node(
        cluster,
        nodes.iter().copied(),
        &format!("SELECT to_regclass('{TABLE}') IS NOT NULL"),
        "t",
    )?;
    for node in &nodes {
        if !after_create.is_empty() {
            cluster.sql(node, DATABASE, after_create)?;
        }
    }
    Ok(format!("{TABLE} on {} nodes", nodes.len()))
}

/// `rows`: a row written on every node is visible on every node.
fn rows(cluster: &Cluster) -> anyhow::Result<String> {
    let nodes = running(cluster);
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
    on_every_node(cluster, nodes.iter().copied(), &sql, &all_ids(nodes.len()))?;
    Ok(format!("{0} rows on each of {0} nodes", nodes.len()))
}

/// `settings`: each setting of the journal read back with `SHOW` (and the
/// node's one listen address, and `ssl`), then its roles, database owner
/// and extensions as the journal makes them.
fn settings(cluster: &Cluster) -> anyhow::Result<String> {
    let mut expected: Vec<(&str, String)> = JOURNAL_SETTINGS
        .iter()
        .map(|(name, value)| (*name, (*value).to_owned()))
        .collect();
    expected.push(("shared_preload_libraries", cluster.preload().to_owned()));
    expected.push(("ssl", if cluster.tls { "on" } else { "off" }.to_owned()));
    let show: String = expected
        .iter()
        .map(|(name, _)| format!("SHOW {name};\n"))
        .chain(["SHOW listen_addresses;\n".to_owned()])
        .collect();
    let mut extensions: Vec<&str> = cluster.extensions().iter().map(String::as_str).collect();
    extensions.sort();
    let roles = format!(
        "SELECT (SELECT rolsuper AND rolpassword IS NOT NULL FROM pg_authid WHERE rolname = '{REPLICATION_USER}'),\n\
         (SELECT NOT rolsuper FROM pg_roles WHERE rolname = '{OWNER}'),\n\
         (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{DATABASE}'),\n\
         (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension WHERE extname IN ({}));",
        extensions.iter().map(|e| literal(e)).collect::<Vec<_>>().join(", ")
    );
    let expected_roles = format!("t|t|{OWNER}|{}", extensions.join(","));
    for node in running(cluster) {
        let answer = cluster.sql(node, DATABASE, &show)?;
        let lines: Vec<&str> = answer.lines().collect();
        for (index, (name, value)) in expected.iter().enumerate() {
            let got = lines.get(index).copied().unwrap_or("");
            ensure!(
                got == value,
                "on {}: {name} is `{got}`, not `{value}`",
                node.name
            );
        }
        let listen = lines.last().copied().unwrap_or("");
        ensure!(
            listen == node.address,
            "on {}: listen_addresses is `{listen}`, not only its own address {}",
            node.name,
            node.address
        );
        let got = cluster.sql(node, DATABASE, &roles)?;
        ensure!(
            got == expected_roles,
            "on {}: roles, owner and extensions are `{got}`, not `{expected_roles}` \
             ({REPLICATION_USER} superuser with a password, {OWNER} not superuser, \
             {DATABASE} owned by {OWNER}, the extensions)",
            node.name
        );
    }
    let names: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    Ok(format!(
        "{} and listen_addresses on {} nodes; {REPLICATION_USER}, {OWNER}, {DATABASE}, {}",
        names.join(", "),
        running(cluster).len(),
        extensions.join(", ")
    ))
}

/// `tls`: every node reached from a peer with `sslmode=verify-full`; the
/// same connection in plaintext is refused, and so is a host name the
/// certificate does not carry.
fn tls(cluster: &Cluster) -> anyhow::Result<String> {
    let nodes = running(cluster);
    for (index, to) in nodes.iter().enumerate() {
        let from = nodes[(index + 1) % nodes.len()];
        let answer = if cluster.major >= 10 {
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();"
        } else {
            "SELECT true;"
        };
        let used = cluster.sql_from_peer(from, &cluster.dsn(to), answer)?;
        ensure!(
            used == "t",
            "{} -> {}: the connection is not TLS",
            from.name,
            to.name
        );
        let plain = format!("{} sslmode=disable", cluster.plain_dsn(to));
        match cluster.sql_from_peer(from, &plain, "SELECT 1;") {
            Ok(_) => bail!(
                "{} -> {}: a plaintext connection was accepted",
                from.name,
                to.name
            ),
            Err(error) if format!("{error:#}").contains("no pg_hba.conf entry") => {}
            Err(error) => bail!(
                "{} -> {}: a plaintext connection failed, but not for want of a pg_hba.conf \
                 entry: {error:#}",
                from.name,
                to.name
            ),
        }
        let wrong_name = format!(
            "{} hostaddr={} sslmode=verify-full sslrootcert={}",
            cluster
                .plain_dsn(to)
                .replace(&format!("host={} ", to.address), "host=wrong-name.invalid "),
            to.address,
            super::tls::ca_certificate(&cluster.server.tls_dir()).display()
        );
        match cluster.sql_from_peer(from, &wrong_name, "SELECT 1;") {
            Ok(_) => bail!(
                "{} -> {}: verify-full accepted a certificate for another name",
                from.name,
                to.name
            ),
            Err(error) if format!("{error:#}").contains("does not match host name") => {}
            Err(error) => bail!(
                "{} -> {}: a wrong host name failed, but not on the certificate: {error:#}",
                from.name,
                to.name
            ),
        }
    }
    Ok(format!(
        "{} nodes reached with sslmode=verify-full; plaintext refused (no pg_hba.conf entry); \
         a wrong host name refused",
        nodes.len()
    ))
}

/// `roles-local`: a role made on the first node is not on the others, once
/// DDL made after it has reached them.
fn roles_local(cluster: &Cluster, driver: ClusterDriver) -> anyhow::Result<String> {
    let nodes = running(cluster);
    let role = "smoke_local_role";
    cluster.sql(nodes[0], DATABASE, &format!("CREATE ROLE {role};"))?;
    // A barrier: DDL replicated after the role; once it is everywhere, a
    // replicated role would be too.
    let barrier = "public.smoke_roles_barrier";
    let ddl = replicated_ddl(
        driver,
        &format!("CREATE TABLE {barrier} (id int PRIMARY KEY)"),
    );
    cluster.sql(nodes[0], DATABASE, &ddl)?;
    let exists = format!("SELECT to_regclass('{barrier}') IS NOT NULL");
    on_every_node(cluster, nodes.iter().copied(), &exists, "t")?;
    let count = format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role}'");
    ensure!(
        cluster.sql(nodes[0], DATABASE, &count)? == "1",
        "{role} is not on {}",
        nodes[0].name
    );
    for node in &nodes[1..] {
        let seen = cluster.sql(node, DATABASE, &count)?;
        ensure!(
            seen == "0",
            "{role}, made on {}, is on {} too",
            nodes[0].name,
            node.name
        );
    }
    Ok(format!(
        "{role} only on {}; DDL made after it reached {} other nodes",
        nodes[0].name,
        nodes.len() - 1
    ))
}

/// One query's answer from every node, for an error message.
fn each_node_says(cluster: &Cluster, sql: &str) -> String {
    let answers: Vec<String> = running(cluster)
        .into_iter()
        .map(|node| {
            let answer = cluster
                .sql(node, DATABASE, sql)
                .unwrap_or_else(|error| format!("({error:#})"));
            format!("{}: {answer}", node.name)
        })
        .collect();
    answers.join("; ")
}
