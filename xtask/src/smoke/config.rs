//! The configuration text of a smoke node, as pure functions of its settings:
//! what the journal asks for (`wal_level = logical`, `track_commit_timestamp`,
//! its sizes, the preloaded plugin), the node's one address and certificate,
//! and access rules that let only the replication user in over TCP, with a
//! password, from the nodes' addresses, over TLS when the nodes use it.

/// The journal's settings ("Enable BDR in postgresql.conf thusly"), as
/// `SHOW` prints them back, except `shared_preload_libraries`, which is the
/// set's plugin. The `settings` check reads each back from every node.
pub const JOURNAL_SETTINGS: [(&str, &str); 6] = [
    ("wal_level", "logical"),
    ("track_commit_timestamp", "on"),
    ("max_connections", "100"),
    ("max_wal_senders", "10"),
    ("max_replication_slots", "10"),
    ("max_worker_processes", "10"),
];

/// What one node's `postgresql.conf` is given, appended to initdb's.
#[derive(Debug, Clone)]
pub struct NodeSettings<'a> {
    /// The one address it listens on (never `*`).
    pub address: &'a str,
    pub port: u16,
    pub socket_dir: &'a str,
    pub preload: &'a str,
    /// `scram-sha-256`, or `on` (md5) before PostgreSQL 10.
    pub password_encryption: &'a str,
    /// The node's certificate and key, when the nodes talk TLS.
    pub tls: Option<(&'a str, &'a str)>,
}

/// The lines appended to `postgresql.conf`.
pub fn postgresql_conf(settings: &NodeSettings<'_>) -> String {
    let mut text = format!(
        "\n# bdr-dist smoke cluster\nlisten_addresses = '{address}'\nport = {port}\n\
         unix_socket_directories = '{socket}'\nshared_preload_libraries = '{preload}'\n",
        address = settings.address,
        port = settings.port,
        socket = settings.socket_dir,
        preload = settings.preload,
    );
    for (name, value) in JOURNAL_SETTINGS {
        text.push_str(&format!("{name} = {value}\n"));
    }
    text.push_str(&format!(
        "password_encryption = {}\nfsync = off\nfull_page_writes = off\nwal_writer_delay = 10ms\n\
         log_line_prefix = '%m [%p] '\nlog_min_messages = warning\n",
        settings.password_encryption
    ));
    if let Some((cert, key)) = settings.tls {
        text.push_str(&format!(
            "ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n"
        ));
    }
    text
}

/// The whole `pg_hba.conf`. The unix socket trusts, in a 0700 directory only
/// the server user reaches; TCP admits only `replication_user`, with a
/// password (`auth`: `scram-sha-256` or `md5`), from exactly the nodes'
/// addresses, and only over TLS when `tls`: a plaintext connection matches
/// no line and is refused.
pub fn pg_hba_conf(replication_user: &str, auth: &str, peers: &[&str], tls: bool) -> String {
    let mut text = String::from("local all all trust\nlocal replication all trust\n");
    let kind = if tls { "hostssl" } else { "host" };
    for peer in peers {
        for database in ["all", "replication"] {
            text.push_str(&format!(
                "{kind} {database} {replication_user} {peer}/32 {auth}\n"
            ));
        }
    }
    text
}

/// Password hashing by server major version: SCRAM from 10 on.
pub fn auth_methods(major: u32) -> (&'static str, &'static str) {
    if major >= 10 {
        ("scram-sha-256", "scram-sha-256")
    } else {
        ("md5", "on")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_conf_of_a_two_node_cluster() {
        let settings = NodeSettings {
            address: "10.213.0.1",
            port: 54321,
            socket_dir: "/tmp/bdr-dist-x/sock",
            preload: "bdr",
            password_encryption: "on",
            tls: Some((
                "/tmp/bdr-dist-x/tls/node1.crt",
                "/tmp/bdr-dist-x/tls/node1.key",
            )),
        };
        expect_test::expect_file!["../../../tests/golden/smoke-postgresql.conf"]
            .assert_eq(&postgresql_conf(&settings));
    }

    #[test]
    fn pg_hba_conf_admits_only_the_replication_user_from_the_nodes_over_tls() {
        expect_test::expect_file!["../../../tests/golden/smoke-pg_hba.conf"].assert_eq(
            &pg_hba_conf("bdrsync", "md5", &["10.213.0.1", "10.213.0.2"], true),
        );
    }

    #[test]
    fn without_tls_the_same_peers_connect_with_a_password() {
        let text = pg_hba_conf("bdrsync", "scram-sha-256", &["127.0.0.1"], false);
        assert!(text.contains("\nhost replication bdrsync 127.0.0.1/32 scram-sha-256\n"));
        assert!(!text.contains("hostssl"));
    }
}
