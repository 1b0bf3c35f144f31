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
pub mod targets;
pub mod test;
pub mod verify;
pub mod verify_rebuild;

use crate::{
    exec::Executor,
    flags::{SetArgs, SetupArgs},
    host::{self, HostFacts, Selection},
    input::platform,
    layout::Layout,
    plan::{self as planning, Action, Phase, Plan, PlanOptions},
    prerequisites::{self, Needs},
    roots,
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
        let selection = host::select(set)?;
        let layout = host::layout_of(&selection);
        Ok(Session {
            selection,
            facts: host::facts(),
            layout,
        })
    }

    /// Plan options from the host, adjusted by the command.
    pub fn plan(&self, adjust: impl FnOnce(&mut PlanOptions)) -> Plan {
        let mut options = host::plan_options(&self.selection, &self.facts);
        adjust(&mut options);
        planning::plan(&self.selection.set, &self.selection.platform, &options)
    }

    /// Make this host ready for `phases` of `plan`: install the programs,
    /// headers and the smoke user they need, or (`--no-install`, or when this
    /// run cannot escalate) fail naming them. Nothing to do for another
    /// platform's plan, which never runs here.
    pub fn prepare_host(
        &self,
        plan: &Plan,
        phases: &[Phase],
        setup: &SetupArgs,
    ) -> anyhow::Result<()> {
        let platform = &self.selection.platform;
        if platform.os != platform::host_name() {
            return Ok(());
        }
        if let (Some(target), false) = (&self.selection.target, self.facts.is_root) {
            return Err(crate::input::located::invalid(format!(
                "--target {} needs root: its roots are made by mmdebstrap and entered by chroot \
                 in a mount namespace of their own",
                target.name
            )));
        }
        // Only the platform's throwaway user is made: a `--run-as` user is
        // the caller's to provide.
        let smoke_user = plan
            .steps
            .iter()
            .filter(|step| phases.contains(&step.phase))
            .find_map(|step| match &step.action {
                Action::Smoke(smoke) => smoke.run_as.as_deref(),
                _ => None,
            })
            .filter(|user| *user == platform.smoke_user);
        prerequisites::ensure(
            platform,
            &Needs::of_plan(plan, phases),
            smoke_user,
            !setup.no_install,
        )?;
        let Some(target) = &self.selection.target else {
            return Ok(());
        };
        // A target's builds and package tools run in its build root, and
        // its proofs in fresh roots unpacked from its minbase.
        // The proofs read the build root's apt lists and index the .debs there.
        if [Phase::Build, Phase::Package, Phase::Smoke]
            .iter()
            .any(|phase| phases.contains(phase))
        {
            roots::build_root(
                &self.layout,
                target,
                platform,
                &Needs::of_root(plan, &target.formats),
            )?;
        }
        // Its proofs unpack fresh roots from its minbase, and sbuild builds
        // its .debs in one.
        let sbuild = phases.contains(&Phase::Package)
            && plan.steps.iter().any(|step| {
                matches!(&step.action, Action::Package(package) if package.format == platform::PackageFormat::Deb)
            });
        if phases.contains(&Phase::Smoke) || sbuild {
            roots::base_tarball(&self.layout, target)?;
        }
        if sbuild {
            crate::package::sbuild::ensure_subordinate_ids(!setup.no_install)?;
        }
        Ok(())
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
