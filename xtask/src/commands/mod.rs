//! One thin module per subcommand: each turns its flags into plan options,
//! hands the plan to the executor (or the doctor), and reports: on stderr
//! for people, as JSON on stdout for scripts.

pub mod bench;
pub mod build;
pub mod clean;
pub mod dist;
pub mod doctor;
pub mod fetch;
pub mod install;
pub mod lint;
pub mod package;
pub mod plan;
pub mod smoke;
pub mod test;
pub mod verify;
pub mod verify_rebuild;

use crate::{
    exec::Executor,
    flags::SetArgs,
    host::{self, HostFacts, Selection},
    layout::Layout,
    plan::{self as planning, Plan, PlanOptions},
    sources::fetch::FetchOptions,
};

/// What every command that plans starts from: the validated set and
/// platform, this host's facts, and where it writes.
pub struct Session {
    pub selection: Selection,
    pub facts: HostFacts,
    pub layout: Layout,
}

impl Session {
    pub fn open(set: &SetArgs) -> anyhow::Result<Session> {
        Ok(Session {
            selection: host::select(set)?,
            facts: host::facts(),
            layout: host::layout(),
        })
    }

    /// Plan options from the host, adjusted by the command.
    pub fn plan(&self, adjust: impl FnOnce(&mut PlanOptions)) -> Plan {
        let mut options = host::plan_options(&self.selection, &self.facts);
        adjust(&mut options);
        planning::plan(&self.selection.set, &self.selection.platform, &options)
    }

    pub fn executor<'a>(&self, plan: &'a Plan, force: bool, fetch: FetchOptions) -> Executor<'a> {
        Executor {
            plan,
            layout: self.layout.clone(),
            force,
            fetch,
        }
    }
}

/// Print `value` as pretty JSON on stdout, for scripts.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
