//! `cargo xtask smoke`: a cluster of real nodes from the stage (or the
//! binary tarball), every check timed, torn down unless `--keep`.

use anyhow::bail;

use super::{print_json, Session};
use crate::{
    exec, flags,
    input::{located::invalid, recipe::ClusterDriver},
    plan::{
        checks::{CheckId, Network},
        Phase,
    },
};

impl flags::Smoke {
    pub fn run(self) -> anyhow::Result<()> {
        if self.list_checks {
            print!("{}", list_checks());
            return Ok(());
        }
        let session = Session::open(&self.set)?;
        if self.network == Network::Netns && !session.facts.is_root {
            return Err(invalid(
                "--network netns needs root: it makes a network namespace per node and a \
                 bridge between them (run as root, or use the default --network loopback)",
            ));
        }
        if self.run_as.is_some() && !session.facts.is_root {
            return Err(invalid(
                "--run-as needs root: without it the servers run as you",
            ));
        }
        if let (true, Some(target)) = (self.keep, &session.selection.target) {
            return Err(invalid(format!(
                "--keep with --target {}: the servers run in a fresh root of the release, which \
                 goes when the proof ends; keep a cluster of this host's build instead",
                target.name
            )));
        }
        let platform = &session.selection.platform;
        if self.run_as.as_ref() == Some(&platform.service_user) {
            return Err(invalid(format!(
                "--run-as {}: never the service user, which owns real data on a database host; \
                 smoke clusters run as a throwaway user (`cargo xtask doctor --fix` creates {})",
                platform.service_user, platform.smoke_user
            )));
        }
        let plan = session.plan(|options| {
            options.nodes = self.nodes;
            if let Some(user) = &self.run_as {
                options.run_as = Some(user.clone());
            }
            options.smoke_from = self.from;
            options.smoke_keep = self.keep;
            options.smoke_checks = self.checks.0.clone();
            options.smoke_network = self.network;
            options.smoke_tls = self.tls;
        });
        exec::require_complete_stage(&session.layout, &plan.set, &plan.stage)?;
        session.prepare_host(&plan, &[Phase::Smoke], &self.setup)?;
        let outcome = session
            .executor(&plan, false, Default::default())
            .run(&[Phase::Smoke], false)?;
        let run = outcome.smoke.expect("the smoke step ran");
        if self.json {
            print_json(&run)?;
        }
        if let Some(failure) = run.failure() {
            bail!("smoke {failure}");
        }
        Ok(())
    }
}

/// `--list-checks`: every check in run order, the drivers that can do it,
/// and what it proves.
fn list_checks() -> String {
    let mut text = String::new();
    for id in CheckId::ALL {
        let drivers: Vec<&str> = [ClusterDriver::Bdr, ClusterDriver::Pglogical]
            .into_iter()
            .filter(|driver| id.applies_to(*driver))
            .map(|driver| driver.as_str())
            .collect();
        text.push_str(&format!(
            "{:<16} {:<14} {}\n",
            id.as_str(),
            drivers.join(","),
            id.description()
        ));
    }
    text
}
