//! bdr-dist's `cargo xtask`: parse the flags, dispatch to a command.
//!
//! A library so that integration tests under `tests/` can reach the planner
//! and the executor; `main.rs` only calls [`main`].

pub mod commands;
pub mod exec;
pub mod files;
pub mod flags;
pub mod host;
pub mod input;
pub mod interrupt;
pub mod layout;
pub mod package;
pub mod plan;
pub mod prerequisites;
pub mod printable;
pub mod process;
pub mod roots;
pub mod smoke;
pub mod sources;

use std::{path::PathBuf, process::ExitCode};

use flags::{Command, Flags};

pub fn main() -> ExitCode {
    let flags = <Flags as clap::Parser>::parse();
    // What a smoke run that died left: its servers, directory, namespaces.
    smoke::leftovers::reap();
    let result = match flags.command {
        Command::Dist(cmd) => cmd.run(),
        Command::Fetch(cmd) => cmd.run(),
        Command::Build(cmd) => for_each_target(cmd, |c| &mut c.set, flags::Build::run),
        Command::Package(cmd) => for_each_target(cmd, |c| &mut c.set, flags::Package::run),
        Command::Lint(cmd) => for_each_target(cmd, |c| &mut c.set, flags::Lint::run),
        Command::Targets(cmd) => cmd.run(),
        Command::VerifyRebuild(cmd) => cmd.run(),
        Command::Smoke(cmd) => for_each_target(cmd, |c| &mut c.set, flags::Smoke::run),
        Command::Install(cmd) => cmd.run(),
        Command::Plan(cmd) => for_each_target(cmd, |c| &mut c.set, flags::PlanFlags::run),
        Command::Doctor(cmd) => cmd.run(),
        Command::Clean(cmd) => cmd.run(),
        Command::Test(cmd) => cmd.run(),
        Command::Bench(cmd) => cmd.run(),
        Command::Verify(cmd) => cmd.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error
                .downcast_ref::<input::located::InvalidInput>()
                .is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Run a command once per `--target`, in the order given, stopping at the
/// first that fails (`dist` runs its matrix to the end instead).
fn for_each_target<C: Clone>(
    command: C,
    set: impl Fn(&mut C) -> &mut flags::SetArgs,
    run: impl Fn(C) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut command = command;
    let targets = set(&mut command).targets.clone();
    for target in targets {
        let mut one = command.clone();
        *set(&mut one) = set(&mut command).for_target(&target);
        run(one)?;
    }
    Ok(())
}

/// The repository root: recipes/, platforms/ and target/ live here.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits in the repo root")
        .to_path_buf()
}
