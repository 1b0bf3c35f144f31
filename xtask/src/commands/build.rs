//! `cargo xtask fetch`, `build`, `install` and `clean`: the commands that hand
//! a plan's fetch, build and install phases to the executor.

use std::{fs, time::Instant};

use anyhow::Context;
use xshell::Shell;

use crate::{
    commands::doctor,
    exec::{self, Executor},
    files::write_atomically,
    flags,
    host::{self, LockFile},
    input::platform,
    plan::{self, Action, Phase},
};

impl flags::Fetch {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        let mut options = host::plan_options(&selection, &host::facts());
        options.mirrors = self.mirror.mirrors;
        let plan = plan::plan(&selection.set, &selection.platform, &options);
        let executor = Executor {
            plan: &plan,
            layout: host::layout(),
            force: false,
            fetch: self.fetch.options(),
        };
        let outcome = executor.run(&[Phase::Fetch], true)?;
        if self.pin {
            // What is recorded passed the recipe's content pins on this run.
            let mut lock = selection.lock.clone();
            let mut pinned = Vec::new();
            for step in plan.steps_in(&[Phase::Fetch]) {
                if let Action::Fetch(fetch) = &step.action {
                    let sha256 = &outcome.fetched[&step.id].sha256;
                    lock.sha256.insert(fetch.file.clone(), sha256.clone());
                    pinned.push(format!("{} {sha256}", fetch.file));
                }
            }
            write_lock(
                &host::lock_path(&selection.recipes_dir, &selection.set.name),
                &lock,
            )?;
            for line in &pinned {
                eprintln!("{:>12} {line}", "Pinned");
            }
        }
        eprintln!(
            "{:>12} fetch of set {}: sources in {}",
            "Finished",
            plan.set,
            host::layout().set_dir(&plan.set).join("src").display()
        );
        Ok(())
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

impl flags::Build {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        let started = Instant::now();
        let selection = host::select(&self.set)?;
        let facts = host::facts();
        let mut options = host::plan_options(&selection, &facts);
        options.mirrors = self.mirror.mirrors;
        options.jobs = self.jobs.unwrap_or(facts.jobs);
        if self.no_ccache {
            options.ccache_dir = None;
        }
        if selection.platform.os != platform::host_name() {
            return Err(crate::input::located::invalid(format!(
                "cannot build for {} on {}: use `cargo xtask plan --platform {}` to see what it would run",
                selection.platform.name,
                platform::host_name(),
                selection.platform.name
            )));
        }
        doctor::require_build_prerequisites(&selection.platform)?;
        let plan = plan::plan(&selection.set, &selection.platform, &options);
        let executor = Executor {
            plan: &plan,
            layout: host::layout(),
            force: self.force,
            fetch: self.fetch.options(),
        };
        let outcome = executor.run(&[Phase::Build], true)?;
        eprintln!(
            "{:>12} build of set {} in {:.1}s: {} step(s) ran, {} fresh; stage at {}",
            "Finished",
            plan.set,
            started.elapsed().as_secs_f64(),
            outcome.ran.len(),
            outcome.fresh.len(),
            plan.stage.display()
        );
        Ok(())
    }
}

impl flags::Install {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        let selection = host::select(&self.set)?;
        let mut options = host::plan_options(&selection, &host::facts());
        options.install_prefix = self.prefix;
        let plan = plan::plan(&selection.set, &selection.platform, &options);
        let layout = host::layout();
        exec::require_complete_stage(&layout, &plan.set, &plan.stage)?;
        let executor = Executor {
            plan: &plan,
            layout,
            force: false,
            fetch: Default::default(),
        };
        executor.run(&[Phase::Install], false)?;
        Ok(())
    }
}

impl flags::Clean {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        let layout = host::layout();
        let sets = match &self.set {
            Some(set) => {
                crate::input::recipe::check_set_name(set)?;
                vec![set.clone()]
            }
            None => fs::read_dir(layout.target.join("sets"))
                .map(|entries| {
                    entries
                        .filter_map(|entry| entry.ok())
                        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                        .filter_map(|entry| entry.file_name().into_string().ok())
                        .filter(|name| crate::input::recipe::check_set_name(name).is_ok())
                        .collect()
                })
                .unwrap_or_default(),
        };
        for set in sets {
            let dir = layout.set_dir(&set);
            if !dir.is_dir() {
                continue;
            }
            // Not while another run builds, packages or smoke-tests the set.
            let _lock = exec::lock_set(&layout, &set, true)?;
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
            eprintln!("{:>12} {}", "Removed", dir.display());
        }
        if self.downloads {
            let downloads = layout.downloads();
            if downloads.exists() {
                fs::remove_dir_all(&downloads)
                    .with_context(|| format!("cannot remove {}", downloads.display()))?;
                eprintln!("{:>12} {}", "Removed", downloads.display());
            }
        }
        Ok(())
    }
}
