//! What a smoke run that died leaves behind, and its removal by the next
//! command of any kind.
//!
//! A cluster's servers die with the run that started them (a parent-death
//! signal, see `Server::spawn_postmaster`), but a run killed outright
//! (SIGKILL, a crash, a third Ctrl-C) cannot remove its cluster directory,
//! and a server another program started (`bdr_init_copy`'s) is nobody's
//! child. So every cluster directory holds a record of its run: the run's
//! pid and start time, and the server user's uid. Every command first looks
//! for records of runs that are gone (no process with that pid and start
//! time) and, for each, stops the servers of its data directories (only a
//! live process of that uid, started after that run, running that data
//! directory; signalled as that user) and removes the directory; namespaces
//! named for a run that is gone are removed too.
//! A kept cluster (`--keep`) is marked so and left alone.

use std::{
    fs,
    io::Read,
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::server::{process_alive, read_pid, RunAs};
use crate::{files, process::Command};

/// The record's name in a cluster directory.
const RECORD: &str = "run.json";
/// Cluster directories are `$TMPDIR/bdr-dist-<set>-XXXXXX`.
pub const DIR_PREFIX: &str = "bdr-dist-";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunRecord {
    /// The run that made the cluster.
    pub pid: u32,
    /// Its start time (clock ticks after boot, from /proc), where known: a
    /// new process with a reused pid is not that run.
    pub start: Option<u64>,
    /// The uid and gid the servers run as.
    pub server_uid: u32,
    pub server_gid: u32,
    /// Left running on purpose (`--keep`): never reaped.
    pub kept: bool,
}

impl RunRecord {
    /// This run's record, for servers run as `run_as` (or as us).
    pub fn of_this_run(run_as: Option<&RunAs>) -> RunRecord {
        let pid = std::process::id();
        let (server_uid, server_gid) = server_ids(run_as);
        RunRecord {
            pid,
            start: start_time(pid),
            server_uid,
            server_gid,
            kept: false,
        }
    }

    pub fn write(&self, cluster_dir: &Path) -> anyhow::Result<()> {
        files::write_atomically(&cluster_dir.join(RECORD), &serde_json::to_vec_pretty(self)?)
    }

    /// Whether the run that wrote it is still there.
    fn is_alive(&self) -> bool {
        // SAFETY: signal 0 only asks whether the process exists.
        let exists = unsafe { libc::kill(self.pid as i32, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        exists && (self.start.is_none() || start_time(self.pid) == self.start)
    }
}

/// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks
/// after boot. `None` without /proc.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // After the command come the state (field 3) and more: 22 is index 19.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Remove what runs that are gone left in the temporary directory. Never
/// fails the command: what cannot be removed is said, and tried again next time.
pub fn reap() {
    let temp = std::env::temp_dir();
    // Namespaces outlive a killed run, whoever reaps its directory. Looked
    // for in /run/netns first, so that a command with none spawns nothing.
    // SAFETY: geteuid has no preconditions.
    let ours = |entries: fs::ReadDir| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            name.to_string_lossy().starts_with(super::netns::PREFIX)
        })
    };
    if unsafe { libc::geteuid() } == 0 && fs::read_dir("/run/netns").is_ok_and(ours) {
        super::netns::remove_stale();
    }
    let Ok(entries) = fs::read_dir(&temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Some(record) = read_record(&dir) else {
            continue;
        };
        if record.kept || record.is_alive() {
            continue;
        }
        // Two commands starting at once: one reaps while the other waits,
        // and finds nothing left (so after any command, it is gone).
        let Some(_held) = lock(&dir) else {
            continue;
        };
        if read_record(&dir).is_none() {
            continue;
        }
        reap_one(&dir, &record);
    }
}

/// An exclusive flock on the directory itself, waiting for another
/// command that is reaping it (which takes seconds at most).
fn lock(dir: &Path) -> Option<fs::File> {
    use std::os::fd::AsRawFd;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .ok()?;
    // SAFETY: flock on a descriptor this function owns.
    (unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0).then_some(file)
}

/// The record of a cluster directory of ours: a real directory owned by
/// this user (in a world-writable temporary directory, anyone can make one
/// by that name), with a record that is a regular file of ours.
fn read_record(dir: &Path) -> Option<RunRecord> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let meta = fs::symlink_metadata(dir).ok()?;
    if !meta.is_dir() || meta.uid() != uid {
        return None;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(RECORD))
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != uid {
        return None;
    }
    let mut text = String::new();
    file.take(64 << 10).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn reap_one(dir: &Path, record: &RunRecord) {
    eprintln!(
        "{:>12} the cluster that run {} left in {}",
        "Removing",
        record.pid,
        dir.display()
    );
    let mut survivors = Vec::new();
    for data in data_dirs(dir) {
        if let Some(pid) = postmaster_of(&data, record) {
            eprintln!(
                "{:>12} its server (pid {pid}) of {}",
                "Stopping",
                data.display()
            );
            let user = (record.server_uid, record.server_gid);
            if !stop(pid, user, Duration::from_secs(10)) {
                survivors.push(pid);
            }
        }
    }
    if !survivors.is_empty() {
        eprintln!(
            "warning: servers {survivors:?} of {} did not stop; its directory stays",
            dir.display()
        );
        return;
    }
    if let Err(error) = remove_cluster_dir(dir) {
        eprintln!("warning: cannot remove {}: {error}", dir.display());
    }
}

/// Remove a cluster directory, its run record last: a removal cut short
/// (the run killed half way through its teardown) leaves a directory that
/// the next command still recognizes and finishes.
pub fn remove_cluster_dir(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == RECORD {
            continue;
        }
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    match fs::remove_file(dir.join(RECORD)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    fs::remove_dir(dir)
}

/// The data directories a cluster may hold: each node's and the template's.
fn data_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.join("template/data")];
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('n') && name[1..].parse::<u32>().is_ok() {
                dirs.push(entry.path().join("data"));
            }
        }
    }
    dirs.sort();
    dirs
}

/// The live postmaster of `data`, if its pid file (the server user's, read
/// as hostile) names one that is that run's: a process of the server user,
/// started after the run, whose command line runs this data directory.
fn postmaster_of(data: &Path, record: &RunRecord) -> Option<u32> {
    let pid = read_pid(data)?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid: u32 = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let started = start_time(pid)?;
    let command_line = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let runs_data = command_line
        .split(|byte| *byte == 0)
        .any(|arg| arg == data.as_os_str().as_encoded_bytes());
    let after_run = record.start.is_none_or(|run| started >= run);
    (uid == record.server_uid && after_run && runs_data && process_alive(pid)).then_some(pid)
}

/// The ids a cluster's servers run as: `run_as`'s, or ours.
pub(super) fn server_ids(run_as: Option<&RunAs>) -> (u32, u32) {
    match run_as {
        Some(user) => (user.uid, user.gid),
        // SAFETY: geteuid and getegid have no preconditions.
        None => unsafe { (libc::geteuid(), libc::getegid()) },
    }
}

/// Stop a postmaster: SIGQUIT (an immediate shutdown, no checkpoint) as its
/// own user, then SIGKILL once `grace` has passed. Whether it is gone.
pub(super) fn stop(pid: u32, user: (u32, u32), grace: Duration) -> bool {
    for (signal, wait) in [
        (libc::SIGQUIT, grace),
        (libc::SIGKILL, Duration::from_secs(5)),
    ] {
        signal_as(pid, signal, user);
        let deadline = Instant::now() + wait;
        while process_alive(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if !process_alive(pid) {
            return true;
        }
    }
    false
}

/// `kill -SIGNAL pid` as `user` (uid, gid), so that a pid that user's files
/// named can never point root's signal at anything else; directly when that
/// is us. Run to the end even after an interrupt: teardown sends it.
pub(super) fn signal_as(pid: u32, signal: i32, (uid, gid): (u32, u32)) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == uid {
        // SAFETY: signals a process of our own.
        unsafe { libc::kill(pid as i32, signal) };
        return;
    }
    let _ = Command::new("/bin/kill")
        .args([format!("-{signal}"), pid.to_string()])
        .as_user(uid, gid)
        .uninterruptible()
        .output();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_run_is_alive_and_a_gone_one_is_not() {
        let record = RunRecord::of_this_run(None);
        assert!(record.start.is_some(), "/proc gives our start time");
        assert!(record.is_alive());
        let reused = RunRecord {
            start: record.start.map(|start| start + 1),
            ..record.clone()
        };
        assert!(
            !reused.is_alive(),
            "same pid, another start: another process"
        );
        let gone = RunRecord {
            pid: u32::MAX / 2,
            ..record
        };
        assert!(!gone.is_alive());
    }

    #[test]
    fn a_cluster_directory_goes_whole_with_its_record_last() {
        let parent = files::tempdir().unwrap();
        let dir = parent.path().join("bdr-dist-t-x");
        fs::create_dir_all(dir.join("n1/data")).unwrap();
        fs::write(dir.join("n1/data/PG_VERSION"), "15\n").unwrap();
        RunRecord::of_this_run(None).write(&dir).unwrap();
        remove_cluster_dir(&dir).unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn a_record_is_read_only_from_a_directory_of_ours() {
        let dir = files::tempdir().unwrap();
        let record = RunRecord::of_this_run(None);
        record.write(dir.path()).unwrap();
        assert_eq!(read_record(dir.path()), Some(record));
        // A symlink to a record is not a record.
        let other = files::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join(RECORD), other.path().join(RECORD)).unwrap();
        assert_eq!(read_record(other.path()), None);
    }
}
