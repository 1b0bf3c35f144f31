//! `cargo xtask fetch`: download, verify and unpack the set's sources;
//! `--pin` records the sha256 fetched in the lock file.

use anyhow::Context;
use serde::Serialize;

use super::{print_json, Session};
use crate::{
    files::write_atomically,
    flags,
    host::{self, LockFile},
    plan::{Action, Phase},
};

/// One source, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub file: String,
    /// The URL that served it (for a cached source, the one that first did).
    pub url: String,
    pub sha256: String,
    pub tree: Option<String>,
    pub from_cache: bool,
}

impl flags::Fetch {
    pub fn run(self) -> anyhow::Result<()> {
        let session = Session::open(&self.set)?;
        let plan = session.plan(|options| options.mirrors = self.mirror.mirrors.clone());
        let executor = session.executor(&plan, false, self.fetch.options());
        let outcome = executor.run(&[Phase::Fetch], true)?;
        if self.pin {
            // What is recorded passed the recipe's content pins on this run.
            let mut lock = session.selection.lock.clone();
            for step in plan.steps_in(&[Phase::Fetch]) {
                if let Action::Fetch(fetch) = &step.action {
                    let sha256 = &outcome.fetched[&step.id].sha256;
                    lock.sha256.insert(fetch.file.clone(), sha256.clone());
                    eprintln!("{:>12} {} {sha256}", "Pinned", fetch.file);
                }
            }
            write_lock(
                &host::lock_path(&session.selection.recipes_dir, &plan.set),
                &lock,
            )?;
        }
        eprintln!("{:>12} fetch of set {}", "Finished", plan.set);
        if self.json {
            let sources: Vec<SourceReport> =
                outcome.fetched.values().map(SourceReport::from).collect();
            print_json(&sources)?;
        }
        Ok(())
    }
}

impl From<&crate::sources::fetch::Fetched> for SourceReport {
    fn from(fetched: &crate::sources::fetch::Fetched) -> Self {
        SourceReport {
            file: fetched.file.clone(),
            url: fetched.url.clone(),
            sha256: fetched.sha256.clone(),
            tree: fetched.tree.clone(),
            from_cache: fetched.from_cache,
        }
    }
}

fn write_lock(path: &std::path::Path, lock: &LockFile) -> anyhow::Result<()> {
    let text = format!(
        "# sha256 of the bytes `cargo xtask fetch --pin` fetched, after they passed the recipe's\n\
         # content pins; `--locked` refuses any other bytes. Another archiver's copy of the same\n\
         # tree passes the recipe's `tree` pin but not `--locked`.\n{}",
        toml::to_string(lock).context("cannot serialize the lock file")?
    );
    write_atomically(path, text.as_bytes())
}
