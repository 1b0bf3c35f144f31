//! `cargo xtask bench --compile-against REV`: the first `cargo xtask` on a
//! fresh clone compiles the tool before it runs, and that is a wait every
//! release engineer has. This times that compile for REV and for the working
//! tree, alternately (old, new, old, new, ...) so that other load on the
//! machine falls on both, each time in an empty target directory under
//! `target/bench/compile/`, never the user's `target/debug`. Crates are
//! downloaded first (`cargo fetch`) and the builds run `--offline`, so the
//! network is not in the figure.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;

use super::{latest_results, print_table, time, Measurement, Results};
use crate::{files, flags, process::Command};

/// What a first `cargo xtask` compiles (the alias in `.cargo/config.toml`
/// runs `cargo run --package xtask`): the library and the binary.
const BUILD: [&str; 6] = ["build", "--offline", "--package", "xtask", "--bin", "xtask"];

/// The goal: at most half of the baseline's time.
const GOAL: f64 = 0.5;

/// The scratch directory, removed however the benchmark ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One timed compile and what it compiled.
struct Compile {
    seconds: f64,
    /// CPU seconds (user and system) of cargo and every compiler it ran:
    /// less moved by other jobs on the machine than the wall time.
    cpu_seconds: f64,
    crates: usize,
}

/// `--compile-only`: this part alone, recorded as the set `compile`.
pub(super) fn run_alone(flags: &flags::Bench, bench_dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(bench_dir)?;
    let measurement =
        measure(flags, bench_dir)?.context("--compile-only needs --compile-against")?;
    let results = Results {
        set: "compile".to_owned(),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        measurements: vec![measurement],
    };
    let previous = latest_results(bench_dir, &results.set);
    let path = bench_dir.join(format!("{}-{}.json", results.set, results.unix_time));
    files::write_atomically(
        &path,
        (serde_json::to_string_pretty(&results)? + "\n").as_bytes(),
    )?;
    print_table(&results, previous.as_ref());
    eprintln!("results kept in {}", path.display());
    Ok(())
}

/// The cold compile of REV against the working tree, if asked for.
pub(super) fn measure(
    flags: &flags::Bench,
    bench_dir: &Path,
) -> anyhow::Result<Option<Measurement>> {
    let Some(rev) = &flags.compile_against else {
        return Ok(None);
    };
    let root = crate::project_root();
    let commit = git(
        &root,
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )?;
    let short = &commit[..commit.len().min(10)];
    let scratch = Scratch(bench_dir.join("compile"));
    let _ = fs::remove_dir_all(&scratch.0);
    let old_tree = scratch.0.join("old");
    fs::create_dir_all(&old_tree)?;
    let archive = scratch.0.join("old.tar");
    git(
        &root,
        &[
            "archive",
            "--format=tar",
            "-o",
            &archive.to_string_lossy(),
            &commit,
        ],
    )?;
    Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&old_tree)
        .checked_output()?;
    fs::remove_file(&archive)?;

    for tree in [&old_tree, &root] {
        cargo(tree)
            .arg("fetch")
            .checked_output()
            .with_context(|| format!("cannot download the crates of {}", tree.display()))?;
    }
    let rounds = flags.compile_rounds.max(1);
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        for (label, tree, samples) in [
            (short, &old_tree, &mut old),
            ("working tree", &root, &mut new),
        ] {
            eprintln!(
                "{:>12} the tool from an empty target directory: {label} (round {round} of {rounds})",
                "Benchmark"
            );
            let compile = compile_once(tree, &scratch.0.join("target"))?;
            eprintln!(
                "{:>12} {label}: {:.1} s ({:.1} s of CPU), {} crates",
                "Compiled", compile.seconds, compile.cpu_seconds, compile.crates
            );
            samples.push(compile);
        }
    }
    let total = |samples: &[Compile]| samples.iter().map(|c| c.seconds).sum::<f64>();
    let total_cpu = |samples: &[Compile]| samples.iter().map(|c| c.cpu_seconds).sum::<f64>();
    let rounds_text = old
        .iter()
        .zip(&new)
        .map(|(o, n)| format!("{:.1}/{:.1}", o.seconds, n.seconds))
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!(
        "{:>12} new/old: {:.2} of the wall time, {:.2} of the CPU time",
        "Compiled",
        total(&new) / total(&old),
        total_cpu(&new) / total_cpu(&old)
    );
    // Sums over alternating rounds: a burst of other load lands on one
    // round of each side, not on one side only.
    let ratio = total(&new) / total(&old);
    Ok(Some(Measurement {
        name: format!("first `cargo xtask` compile vs {short}"),
        against: format!(
            "cargo {} at {short} ({} packages compiled) vs the working tree ({}), each in an empty \
             target dir, alternating; seconds old/new per round: {rounds_text}; CPU seconds \
             old/new in all: {:.1}/{:.1}",
            BUILD.join(" "),
            old[0].crates,
            new[0].crates,
            total_cpu(&old),
            total_cpu(&new),
        ),
        ours_seconds: total(&new) / new.len() as f64,
        theirs_seconds: Some(total(&old) / old.len() as f64),
        ratio: Some(ratio),
        goal: format!("<= {GOAL:.2}"),
        met: ratio <= GOAL,
        samples: Vec::new(),
    }))
}

/// One compile of `tree` in the emptied `target`, timed; `target` is removed
/// after it.
fn compile_once(tree: &Path, target: &Path) -> anyhow::Result<Compile> {
    let _ = fs::remove_dir_all(target);
    let mut output = None;
    let cpu_before = children_cpu_seconds();
    let seconds = time(|| {
        output = Some(
            cargo(tree)
                .args(BUILD)
                .env("CARGO_TARGET_DIR", target.to_string_lossy())
                .checked_output()
                .with_context(|| format!("cannot compile the tool in {}", tree.display()))?,
        );
        Ok(())
    })?;
    let cpu_seconds = children_cpu_seconds() - cpu_before;
    fs::remove_dir_all(target).with_context(|| format!("cannot remove {}", target.display()))?;
    let stderr =
        String::from_utf8_lossy(&output.expect("set by the timed run").stderr).into_owned();
    Ok(Compile {
        seconds,
        cpu_seconds,
        crates: compiled_crates(&stderr),
    })
}

/// cargo in `tree`, with the caller's toolchain and registry settings, but
/// no compiler cache: a wrapper such as sccache would time the cache.
fn cargo(tree: &Path) -> Command {
    Command::new("cargo")
        .cwd(tree)
        .inherit_environment()
        .remove_env("RUSTC_WRAPPER")
        .remove_env("RUSTC_WORKSPACE_WRAPPER")
        .remove_env("CARGO_BUILD_RUSTC_WRAPPER")
        .remove_env("CARGO_TARGET_DIR")
        .remove_env("CARGO_BUILD_TARGET_DIR")
}

/// User and system CPU seconds of every child process waited for so far
/// (and of theirs: cargo waits for each rustc).
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn git(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git").cwd(root).args(args).checked_output()?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The crates cargo compiled, from its `Compiling NAME VERSION` lines.
fn compiled_crates(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|line| line.trim_start().starts_with("Compiling "))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_compiling_lines() {
        let stderr = "    Updating crates.io index\n   Compiling libc v0.2.191\n   Compiling xtask v0.1.0 (/repo/xtask)\n    Finished `dev` profile\n";
        assert_eq!(compiled_crates(stderr), 2);
    }
}
