//! Running one command step: its environment (the allowlist, the step's own
//! variables, compiler wrappers first on `PATH`), its log, its status line
//! and spinner, and the report when it fails.

use std::{
    collections::{BTreeMap, VecDeque},
    fs,
    io::{IsTerminal, Write},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::wrappers;
use crate::{
    layout::Layout,
    plan::{shell_quote, Run, StepId},
    process::{self, Command},
};

/// How many lines of a failed command's output are shown.
const TAIL_LINES: usize = 40;

/// Run `run`, the command of step `id` of `set`, logging to its log file.
pub fn run(layout: &Layout, set: &str, id: &StepId, run: &Run) -> anyhow::Result<()> {
    let log_path = layout.log(set, id);
    if let Some(dir) = log_path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let line = run.command_line();
    let (program, args) = line.split_first().context("empty command")?;
    let mut environment = environment(run);
    if !run.path_map.is_empty() {
        let dir = layout.compilers(set, id);
        wrappers::write(&dir, run)?;
        let path = environment.get("PATH").cloned().unwrap_or_default();
        environment.insert("PATH".into(), format!("{}:{path}", dir.display()));
    }
    // `./configure` means the one in the step's directory, not in ours.
    let program = if program.contains('/') {
        run.cwd.join(program)
    } else {
        program.into()
    };
    let mut command = Command::new(program)
        .args(args)
        .cwd(&run.cwd)
        .exact_environment(environment)
        .in_root_if(run.root.as_ref());
    if run.escalate.is_some() {
        // sudo may ask for a password on the terminal; it relays signals.
        command = command.in_callers_group();
    }

    status(run.kind.verb(), &run.subject);
    let started = Instant::now();
    let spinner = spinner(run.kind.verb(), &run.subject);
    let mut log = fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    writeln!(log, "$ {}\n# cwd {}\n", quoted(&line), run.cwd.display())?;
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let status = command.run_logged(&mut log, |text| {
        spinner.set_message(format!(
            "{} | {}",
            run.subject,
            text.chars().take(100).collect::<String>()
        ));
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text.to_owned());
    });
    spinner.finish_and_clear();
    spinners().remove(&spinner);
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            writeln!(log, "\n# stopped: {error:#}; the step is not stamped")?;
            return Err(error.context(format!("step `{id}` stopped")));
        }
    };
    writeln!(
        log,
        "\n# {} after {:.1}s",
        process::describe_status(status),
        started.elapsed().as_secs_f64()
    )?;
    if !status.success() {
        let tail: Vec<String> = tail.into_iter().collect();
        bail!(
            "step `{id}` failed: {}\n  command: {}\n  cwd:     {}\n  last {} lines of output:\n    {}\n  full log: {}",
            process::describe_status(status),
            quoted(&line),
            run.cwd.display(),
            tail.len(),
            tail.join("\n    "),
            log_path.display()
        );
    }
    self::status(
        "Finished",
        &format!("{id} in {:.1}s", started.elapsed().as_secs_f64()),
    );
    Ok(())
}

/// The environment a command runs with: the allowlist, ccache first on
/// `PATH` (when no wrapper calls it instead), and the step's own variables.
fn environment(run: &Run) -> BTreeMap<String, String> {
    let mut environment = process::scrubbed_environment();
    if let Some(dir) = run.ccache_dir.as_ref().filter(|_| run.path_map.is_empty()) {
        let path = environment.get("PATH").cloned().unwrap_or_default();
        environment.insert("PATH".into(), format!("{}:{path}", dir.display()));
    }
    for var in &run.env {
        let value = match (var.prepend, environment.get(&var.name)) {
            (true, Some(inherited)) => format!("{}:{inherited}", var.value),
            _ => var.value.clone(),
        };
        environment.insert(var.name.clone(), value);
    }
    environment
}

fn quoted(line: &[String]) -> String {
    line.iter()
        .map(|arg| shell_quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The spinners of the steps running now, one line each, under the status
/// lines.
fn spinners() -> &'static MultiProgress {
    static SPINNERS: OnceLock<MultiProgress> = OnceLock::new();
    SPINNERS.get_or_init(MultiProgress::new)
}

/// A status line (`   Compiling postgresql 15.18`), above the spinners.
pub fn status(verb: &str, text: &str) {
    spinners().suspend(|| eprintln!("{verb:>12} {text}"));
}

/// On a terminal: the step, its elapsed time and its last line of output.
fn spinner(verb: &str, subject: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = spinners().add(ProgressBar::new_spinner()).with_style(
        ProgressStyle::with_template("{prefix:>12} [{elapsed}] {wide_msg}")
            .expect("valid template"),
    );
    bar.set_prefix(verb.to_owned());
    bar.set_message(subject.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
