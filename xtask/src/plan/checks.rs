//! The smoke checks by name: the reference journal's procedures, each a
//! check with a stable name (`smoke --checks NAME,...`), run in this order.
//! Which driver can do which is data here; how is in `smoke::drivers`.

use std::fmt;

use serde::Serialize;

use crate::input::recipe::ClusterDriver;

/// One smoke check. The order of the variants is the order they run in:
/// the ones that change the group's membership come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    Settings,
    Tls,
    Join,
    Slots,
    Ddl,
    Rows,
    GlobalSequence,
    DdlLock,
    RolesLocal,
    Import,
    PhysicalJoin,
    Part,
    Recreate,
    Orphan,
}

impl CheckId {
    pub const ALL: [CheckId; 14] = [
        CheckId::Settings,
        CheckId::Tls,
        CheckId::Join,
        CheckId::Slots,
        CheckId::Ddl,
        CheckId::Rows,
        CheckId::GlobalSequence,
        CheckId::DdlLock,
        CheckId::RolesLocal,
        CheckId::Import,
        CheckId::PhysicalJoin,
        CheckId::Part,
        CheckId::Recreate,
        CheckId::Orphan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Settings => "settings",
            CheckId::Tls => "tls",
            CheckId::Join => "join",
            CheckId::Slots => "slots",
            CheckId::Ddl => "ddl",
            CheckId::Rows => "rows",
            CheckId::GlobalSequence => "global-sequence",
            CheckId::DdlLock => "ddl-lock",
            CheckId::RolesLocal => "roles-local",
            CheckId::Import => "import",
            CheckId::PhysicalJoin => "physical-join",
            CheckId::Part => "part",
            CheckId::Recreate => "recreate",
            CheckId::Orphan => "orphan",
        }
    }

    pub fn parse(name: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|id| id.as_str() == name)
    }

    /// The journal's section it proves, for `--list-checks`.
    pub fn description(self) -> &'static str {
        match self {
            CheckId::Settings => {
                "each node runs with the journal's settings (read back with SHOW), its roles, \
                 database owner and extensions"
            }
            CheckId::Tls => {
                "peers connect with sslmode=verify-full to certificates of a throwaway CA; \
                 a plaintext connection from a peer is refused"
            }
            CheckId::Join => "every node joins the group (always runs: every other check needs it)",
            CheckId::Slots => "a replication slot per peer on every node, each peer in its statistics",
            CheckId::Ddl => "a table created through DDL replication exists on every node",
            CheckId::Rows => "rows written on every node are visible on every node (runs ddl)",
            CheckId::GlobalSequence => {
                "a global sequence: distinct values under concurrent nextval, RESTART refused, \
                 the journal's workaround advances it, no values without a quorum, values again \
                 once the nodes are back"
            }
            CheckId::DdlLock => {
                "while one node holds the global DDL lock, a write on another fails with the \
                 journal's error; after commit writes succeed everywhere"
            }
            CheckId::RolesLocal => "a role created on one node does not appear on the others",
            CheckId::Import => {
                "the journal's import: a dump with ordinary sequences restored in one \
                 transaction; the data reaches every node and inserts on every node give no \
                 duplicate key"
            }
            CheckId::PhysicalJoin => "a node made by physical copy (bdr_init_copy) replicates both ways",
            CheckId::Part => "a parted node's slots disappear from the others",
            CheckId::Recreate => {
                "the journal's \"Recreating a Database\": part a node, drop and recreate its \
                 database, rejoin under a new name; the group replicates again with every node (runs ddl)"
            }
            CheckId::Orphan => {
                "a node killed without parting blocks DDL on the others; the journal's \
                 workaround turns a survivor into a standalone database that accepts DDL and writes"
            }
        }
    }

    /// The pass/fail line's text, by driver.
    pub fn title(self, driver: ClusterDriver) -> &'static str {
        match (self, driver) {
            (CheckId::Settings, _) => "every node runs with the journal's settings and roles",
            (CheckId::Tls, _) => "peers connect only over verified TLS",
            (CheckId::Join, ClusterDriver::Bdr) => "every node joined and ready",
            (CheckId::Join, ClusterDriver::Pglogical) => "every node subscribed to every other",
            (CheckId::Slots, _) => "N-1 active slots per node",
            (CheckId::Ddl, _) => "a table created through DDL replication exists on every node",
            (CheckId::Rows, _) => "rows written on every node are visible on every node",
            (CheckId::GlobalSequence, _) => {
                "a global sequence hands out distinct values on every node"
            }
            (CheckId::DdlLock, _) => "a write elsewhere fails while one node holds the DDL lock",
            (CheckId::RolesLocal, _) => "a role created on one node stays on that node",
            (CheckId::Import, _) => "an imported dump replicates without duplicate keys",
            (CheckId::PhysicalJoin, _) => "a node made by physical copy replicates both ways",
            (CheckId::Part, _) => "a parted node's slots disappear from the others",
            (CheckId::Recreate, _) => "a recreated database rejoins under a new node name",
            (CheckId::Orphan, _) => "a survivor of an orphaned node becomes standalone",
        }
    }

    /// Whether `driver` can do this check; one it cannot is reported as not
    /// applicable, never as passed.
    pub fn applies_to(self, driver: ClusterDriver) -> bool {
        match driver {
            ClusterDriver::Bdr => true,
            ClusterDriver::Pglogical => !matches!(
                self,
                CheckId::GlobalSequence
                    | CheckId::DdlLock
                    | CheckId::PhysicalJoin
                    | CheckId::Orphan
            ),
        }
    }

    /// Why a driver cannot do this check.
    pub fn not_applicable_because(self, driver: ClusterDriver) -> &'static str {
        match (self, driver) {
            (CheckId::GlobalSequence, ClusterDriver::Pglogical) => {
                "pglogical has no global sequences"
            }
            (CheckId::DdlLock, ClusterDriver::Pglogical) => "pglogical takes no global DDL lock",
            (CheckId::PhysicalJoin, ClusterDriver::Pglogical) => "bdr_init_copy is BDR's",
            (CheckId::Orphan, ClusterDriver::Pglogical) => {
                "pglogical has no group-wide DDL lock for an orphan to block"
            }
            _ => "",
        }
    }

    /// Checks that change who is in the group: skipped when the cluster is
    /// kept (`--keep` hands it over whole).
    pub fn changes_membership(self) -> bool {
        matches!(self, CheckId::Part | CheckId::Recreate | CheckId::Orphan)
    }

    /// Checks this one builds on, selected with it.
    fn needs(self) -> &'static [CheckId] {
        match self {
            CheckId::Rows | CheckId::Recreate => &[CheckId::Ddl],
            _ => &[],
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--checks all` or `--checks NAME,...`: the selected checks with what they
/// need (and `join`, which every check needs), in run order.
pub fn select(names: &str) -> Result<Vec<CheckId>, String> {
    let mut selected = vec![CheckId::Join];
    for name in names.split(',').map(str::trim) {
        if name == "all" {
            selected.extend(CheckId::ALL);
            continue;
        }
        let Some(id) = CheckId::parse(name) else {
            let known: Vec<&str> = CheckId::ALL.iter().map(|id| id.as_str()).collect();
            return Err(format!(
                "unknown check `{name}`: use `all` or some of {} (`smoke --list-checks` says what each proves)",
                known.join(", ")
            ));
        };
        selected.push(id);
        selected.extend(id.needs());
    }
    selected.sort();
    selected.dedup();
    Ok(selected)
}

/// How the smoke cluster's nodes reach each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Every node on 127.0.0.1, on its own port.
    #[default]
    Loopback,
    /// Every node in a network namespace of its own, on a private bridge the
    /// run makes and removes (root only).
    Netns,
}

/// Whether the nodes talk TLS to each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// When the server was built with OpenSSL.
    #[default]
    Auto,
    /// Always; fail when the server has no TLS.
    On,
    /// Never: plaintext, with a password.
    Off,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_selects_every_check_in_run_order() {
        assert_eq!(select("all").unwrap(), CheckId::ALL.to_vec());
    }

    #[test]
    fn a_selection_runs_in_catalog_order_with_join_and_what_it_needs() {
        assert_eq!(
            select("rows,settings").unwrap(),
            [
                CheckId::Settings,
                CheckId::Join,
                CheckId::Ddl,
                CheckId::Rows
            ]
        );
        assert_eq!(select("orphan").unwrap(), [CheckId::Join, CheckId::Orphan]);
    }

    #[test]
    fn an_unknown_check_is_named() {
        let error = select("settings,quorum").unwrap_err();
        assert!(error.contains("unknown check `quorum`"), "{error}");
        assert!(error.contains("global-sequence"), "{error}");
    }

    #[test]
    fn every_name_parses_back_and_pglogical_lacks_only_bdr_features() {
        for id in CheckId::ALL {
            assert_eq!(CheckId::parse(id.as_str()), Some(id));
            assert!(id.applies_to(ClusterDriver::Bdr));
            assert_eq!(
                id.applies_to(ClusterDriver::Pglogical),
                id.not_applicable_because(ClusterDriver::Pglogical)
                    .is_empty(),
                "{id}"
            );
        }
    }
}
