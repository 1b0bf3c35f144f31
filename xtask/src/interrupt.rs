//! Ctrl-C, SIGTERM and SIGHUP, for the whole run.
//!
//! The handler only raises a flag. Whatever is running polls it: the command
//! runner stops its child's process group, a download or an unpack stops
//! between two reads, a smoke cluster tears itself down. Each then returns
//! [`Interrupted`], so stamps are left as they are (the interrupted step is
//! not stamped) and the next run resumes.
//!
//! A second signal kills what runs (each command's process group) and exits
//! at once, unless a [`Cleanup`] is under way (a smoke cluster is up): then
//! the cleanup goes on without waiting (its servers stopped at once, its
//! directory removed), and only a third signal exits at once. Whatever a
//! run that died that way leaves is removed by the next one.

use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Mutex, OnceLock,
    },
};

use anyhow::Context;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static CLEANUPS: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Route the signals to the flag. Safe to call more than once.
pub fn install() -> anyhow::Result<()> {
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                REQUESTED.store(true, Ordering::SeqCst);
                let signals = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
                if signals == 1 {
                    return;
                }
                // The user will not wait: what runs now is killed with us
                // rather than left behind.
                for target in running().iter() {
                    // SAFETY: signals a process (group) this run started.
                    unsafe { libc::kill(*target, libc::SIGKILL) };
                }
                if signals == 2 && CLEANUPS.load(Ordering::SeqCst) > 0 {
                    eprintln!(
                        "{:>12} the cluster's servers and its directory first, without waiting \
                         (another signal exits at once, and the next run removes what is left)",
                        "Removing"
                    );
                    return;
                }
                std::process::exit(130);
            })
            .map_err(|error| error.to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
        .context("cannot install the signal handler")
}

/// What is running now, as `kill` targets (a negative process group, or a
/// pid), for a second signal to take down with the tool.
fn running() -> std::sync::MutexGuard<'static, Vec<i32>> {
    static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held while a child runs: a second signal kills it before the tool exits.
pub struct Running(i32);

impl Running {
    pub fn new(target: i32) -> Running {
        running().push(target);
        Running(target)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut all = running();
        if let Some(at) = all.iter().position(|target| *target == self.0) {
            all.swap_remove(at);
        }
    }
}

/// Held while something that must not be left half done is alive (a
/// smoke cluster, until its teardown ends): a second signal hurries it
/// instead of exiting at once.
pub struct Cleanup(());

impl Cleanup {
    pub fn begin() -> Cleanup {
        CLEANUPS.fetch_add(1, Ordering::SeqCst);
        Cleanup(())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        CLEANUPS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether a second signal asked the cleanup not to wait.
pub fn hurried() -> bool {
    SIGNALS.load(Ordering::SeqCst) >= 2
}

/// Whether a signal asked the run to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once a signal asked the run to stop.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        Err(Interrupted.into())
    } else {
        Ok(())
    }
}

/// The error of work stopped by a signal.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted by a signal")
    }
}

impl std::error::Error for Interrupted {}

/// Whether `error` (or what caused it) is an interruption.
pub fn is_interruption(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<Interrupted>())
}
