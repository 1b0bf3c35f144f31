//! The configuration text of a smoke node, as pure functions of its settings:
//! what the journal asks for (`wal_level = logical`, `track_commit_timestamp`,
//! the preloaded plugin), sized for the cluster, and access rules that let
//! only the replication user in over TCP, with a password, from 127.0.0.1.

/// What one node's `postgresql.conf` is given, appended to initdb's.
#[derive(Debug, Clone)]
pub struct NodeSettings<'a> {
    pub port: u16,
    pub socket_dir: &'a str,
    pub preload: &'a str,
    pub nodes: usize,
    /// `scram-sha-256`, or `on` (md5) before PostgreSQL 10.
    pub password_encryption: &'a str,
}

/// The lines appended to `postgresql.conf`.
pub fn postgresql_conf(settings: &NodeSettings<'_>) -> String {
    let nodes = settings.nodes;
    format!(
        "\n# bdr-dist smoke cluster\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
         unix_socket_directories = '{socket}'\nshared_preload_libraries = '{preload}'\n\
         wal_level = logical\ntrack_commit_timestamp = on\nmax_connections = {connections}\n\
         max_wal_senders = {senders}\nmax_replication_slots = {slots}\nmax_worker_processes = {workers}\n\
         password_encryption = {encryption}\nfsync = off\nfull_page_writes = off\nwal_writer_delay = 10ms\n\
         log_line_prefix = '%m [%p] '\nlog_min_messages = warning\n",
        port = settings.port,
        socket = settings.socket_dir,
        preload = settings.preload,
        connections = 20 + 4 * nodes,
        senders = 2 * nodes + 2,
        slots = 2 * nodes + 2,
        workers = 4 * nodes + 8,
        encryption = settings.password_encryption,
    )
}

/// The whole `pg_hba.conf`. The unix socket trusts, in a 0700 directory only
/// the server user reaches; TCP admits only `replication_user`, with a
/// password (`auth`: `scram-sha-256` or `md5`), on 127.0.0.1 only.
pub fn pg_hba_conf(replication_user: &str, auth: &str) -> String {
    format!(
        "local all all trust\nlocal replication all trust\n\
         host all {replication_user} 127.0.0.1/32 {auth}\n\
         host replication {replication_user} 127.0.0.1/32 {auth}\n"
    )
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
            port: 54321,
            socket_dir: "/tmp/bdr-dist-x/sock",
            preload: "bdr",
            nodes: 2,
            password_encryption: "on",
        };
        expect_test::expect_file!["../../../tests/golden/smoke-postgresql.conf"]
            .assert_eq(&postgresql_conf(&settings));
    }

    #[test]
    fn pg_hba_conf_admits_only_the_replication_user_over_tcp() {
        expect_test::expect_file!["../../../tests/golden/smoke-pg_hba.conf"]
            .assert_eq(&pg_hba_conf("bdrsync", "md5"));
    }
}
