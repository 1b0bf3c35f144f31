//! Ctrl-C, SIGTERM and SIGHUP, for the whole run.
//!
//! The handler only raises a flag. Whatever is running polls it: the command
//! runner stops its child's process group, a download or an unpack stops
//! between two reads, a smoke cluster tears itself down. Each then returns
//! [`Interrupted`], so stamps are left as they are (the interrupted step is
//! not stamped) and the next run resumes. A second signal exits at once.

use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        OnceLock,
    },
};

use anyhow::Context;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Route the signals to the flag. Safe to call more than once.
pub fn install() -> anyhow::Result<()> {
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                // A second signal: the user will not wait for the teardown.
                if REQUESTED.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
            })
            .map_err(|error| error.to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
        .context("cannot install the signal handler")
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
