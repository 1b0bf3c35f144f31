//! bdr-dist's `cargo xtask`: parse the flags, make one shell, dispatch.
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
pub mod package;
pub mod plan;
pub mod smoke;
pub mod sources;

use std::{path::PathBuf, process::ExitCode};

use flags::{Command, Flags};

pub fn main() -> ExitCode {
    let flags = <Flags as clap::Parser>::parse();
    let sh = match xshell::Shell::new() {
        Ok(sh) => sh,
        Err(error) => {
            eprintln!("error: cannot start a shell: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match flags.command {
        Command::Dist(cmd) => cmd.run(&sh),
        Command::Fetch(cmd) => cmd.run(&sh),
        Command::Build(cmd) => cmd.run(&sh),
        Command::Package(cmd) => cmd.run(&sh),
        Command::Smoke(cmd) => cmd.run(&sh),
        Command::Install(cmd) => cmd.run(&sh),
        Command::Plan(cmd) => cmd.run(&sh),
        Command::Doctor(cmd) => cmd.run(&sh),
        Command::Clean(cmd) => cmd.run(&sh),
        Command::Test(cmd) => cmd.run(&sh),
        Command::Bench(cmd) => cmd.run(&sh),
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

/// The repository root: recipes/, platforms/ and target/ live here.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits in the repo root")
        .to_path_buf()
}
