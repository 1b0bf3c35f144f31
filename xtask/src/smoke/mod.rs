//! The smoke step: bring up N real nodes from the stage (or the binary
//! tarball) on 127.0.0.1, prove that every node replicates to every other,
//! then tear everything down, on success, failure and signal alike (unless
//! the cluster is kept, whole).

pub mod checks;
pub mod cluster;
pub mod config;
pub mod drivers;
pub mod leftovers;
pub mod netns;
pub mod proof;
pub mod server;
pub mod template;
pub mod tls;

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Context;
use serde::Serialize;

use self::{
    checks::{CheckResult, Checks},
    cluster::Cluster,
    server::RunAs,
};
use crate::{interrupt, plan::Smoke};

/// What a smoke run found.
#[derive(Debug, Serialize)]
pub struct SmokeRun {
    pub cluster_dir: PathBuf,
    pub nodes: Vec<NodeReport>,
    pub checks: Vec<CheckResult>,
    /// From the start until the last check passed (teardown excluded).
    pub verified_seconds: f64,
    /// Left running: stop it with the commands printed on stderr.
    pub kept: bool,
    /// The nodes talked TLS to each other.
    pub tls: bool,
    /// For a target: its packages proven in a fresh root of its release,
    /// where the servers ran too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proof: Vec<proof::ProofCheck>,
}

/// A node as the run started it.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub address: String,
    pub netns: Option<String>,
    pub port: u16,
    /// The postmaster's pid.
    pub pid: Option<u32>,
}

impl SmokeRun {
    pub fn first_failure(&self) -> Option<&CheckResult> {
        self.checks
            .iter()
            .find(|check| check.status == checks::Status::Fail)
    }

    /// The first of a target's proofs that did not hold.
    pub fn failed_proof(&self) -> Option<&proof::ProofCheck> {
        self.proof.iter().find(|check| !check.passed)
    }

    /// What failed before the cluster's checks could run: the proofs.
    fn proof_only(proof: Vec<proof::ProofCheck>, started: Instant) -> SmokeRun {
        SmokeRun {
            cluster_dir: PathBuf::new(),
            nodes: Vec::new(),
            checks: Vec::new(),
            verified_seconds: started.elapsed().as_secs_f64(),
            kept: false,
            tls: false,
            proof,
        }
    }

    /// Why the run failed, if it did: the first failed proof or check.
    pub fn failure(&self) -> Option<String> {
        if let Some(proof) = self.failed_proof() {
            return Some(format!("proof `{}` failed: {}", proof.name, proof.detail));
        }
        self.first_failure()
            .map(|check| format!("check `{}` failed: {}", check.name, check.detail))
    }
}

/// Bring the cluster up, run every check, tear down. A failed check is in
/// the result; an `Err` is a cluster that could not be brought up, or an
/// interruption.
///
/// For a target, `proof` holds its packages and minbase: they are proven
/// first, and the cluster runs in the fresh root they were installed in.
pub fn run(
    smoke: &Smoke,
    set: &str,
    tarball: Option<&Path>,
    template_dir: Option<&Path>,
    proof: Option<(PathBuf, proof::Debs<'_>)>,
) -> anyhow::Result<SmokeRun> {
    let started = Instant::now();
    let run_as = smoke.run_as.as_deref().map(RunAs::lookup).transpose()?;
    let mut proof = match (&smoke.target, proof) {
        (Some(target), Some((base, debs))) => match proof::prepare(
            target,
            &base,
            debs,
            run_as
                .as_ref()
                .map(|user| (user.name.as_str(), user.uid, user.gid)),
        ) {
            Ok(proof) => Some(proof),
            Err(failed) if failed.error.is::<interrupt::Interrupted>() => return Err(failed.error),
            // Reported as the proofs made: the one that failed says why.
            Err(failed) if failed.checks.iter().any(|check| !check.passed) => {
                return Ok(SmokeRun::proof_only(failed.checks, started))
            }
            Err(failed) => return Err(failed.error),
        },
        (Some(target), None) => anyhow::bail!(
            "target {} is proven with its .debs: run `cargo xtask package --target {}` first",
            target.name,
            target.name
        ),
        _ => None,
    };
    let root = proof.as_ref().map(|proof| proof.root.clone());
    let mut cluster = Cluster::create(smoke, set, run_as, tarball, template_dir, root.as_ref())?;
    eprintln!(
        "{:>12} {} nodes of set {set} in {}",
        "Cluster",
        smoke.nodes,
        cluster.server.dir.display()
    );
    let mut checks = Checks::default();
    let outcome = cluster
        .start_all()
        .and_then(|()| match (&mut proof, &smoke.target) {
            (Some(proof), Some(target)) => proof.check("servers in the root", || {
                servers_in_root(&cluster, &target.proof_root)
            }),
            _ => Ok(()),
        })
        .and_then(|()| prepare(&cluster))
        .and_then(|()| drivers::run(smoke, &mut cluster, &mut checks));
    if let Err(error) = outcome {
        cluster.print_log_tails();
        if let Some(proof) = proof.as_ref().filter(|proof| proof.failed().is_some()) {
            let checks = proof.checks.clone();
            drop(cluster);
            return Ok(SmokeRun::proof_only(checks, started));
        }
        return Err(error);
    }
    if !checks.all_passed() {
        cluster.print_log_tails();
    } else if smoke.keep {
        cluster.print_keep_instructions();
    }
    let verified_seconds = started.elapsed().as_secs_f64();
    let not_run =
        checks.count(checks::Status::NotApplicable) + checks.count(checks::Status::Skipped);
    eprintln!(
        "{:>12} {} of {} checks passed{}; cluster up and verified in {verified_seconds:.1}s",
        "Smoke",
        checks.count(checks::Status::Pass),
        checks.results.len() - not_run,
        if not_run > 0 {
            format!(" ({not_run} not applicable or skipped)")
        } else {
            String::new()
        },
    );
    let run = SmokeRun {
        cluster_dir: cluster.server.dir.clone(),
        nodes: cluster
            .nodes
            .iter()
            .map(|node| NodeReport {
                name: node.name.clone(),
                address: node.address.clone(),
                netns: node.netns.clone(),
                port: node.port,
                pid: node.pid,
            })
            .collect(),
        checks: checks.results,
        verified_seconds,
        tls: cluster.tls,
        kept: smoke.keep && !interrupt::requested(),
        proof: Vec::new(),
    };
    drop(cluster);
    let mut run = run;
    if let Some(proof) = &mut proof {
        if run.first_failure().is_none() {
            // A failure is recorded with the proofs, and reported by the caller.
            let _ = proof.remove_packages();
        }
        run.proof = proof.checks.clone();
    }
    Ok(run)
}

/// Every postmaster's root directory is the proof root: what `chroot` made
/// it (`/proc/<pid>/root` is the same directory, by device and inode).
fn servers_in_root(cluster: &Cluster, root: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata(root)?;
    for node in &cluster.nodes {
        let pid = node
            .pid
            .with_context(|| format!("{} has no postmaster pid", node.name))?;
        let theirs = std::fs::metadata(format!("/proc/{pid}/root"))
            .with_context(|| format!("cannot see {}'s root", node.name))?;
        if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
            anyhow::bail!(
                "{}'s postmaster (pid {pid}) does not run in {}",
                node.name,
                root.display()
            );
        }
    }
    Ok(format!(
        "{} postmasters run with {} as their root",
        cluster.nodes.len(),
        root.display()
    ))
}

/// On every node, as the reference procedure does: the replication
/// superuser with a password, an unprivileged owner, its database, and the
/// set's extensions in it.
fn prepare(cluster: &Cluster) -> anyhow::Result<()> {
    let started = Instant::now();
    for node in &cluster.nodes {
        cluster.prepare_node(node)?;
    }
    eprintln!(
        "{:>12} {} on every node in {:.1}s",
        "Prepared",
        if cluster.from_template() {
            "the replication user's password (roles, database and extensions came with the template)"
        } else {
            "roles, database and extensions"
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
