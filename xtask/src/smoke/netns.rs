//! `smoke --network netns`: every node in a network namespace of its own,
//! joined to the others by a bridge in one more namespace (the hub), so no
//! interface, address or route of the host changes and no packet leaves the
//! namespaces the run made. Removing the namespaces removes everything.
//!
//! Names carry the run's pid (`bdr-dist-<pid>-hub`, `bdr-dist-<pid>-n1`):
//! namespaces left by a run that was killed outright (SIGKILL) are removed
//! by the next run, once their pid is gone.

use anyhow::{bail, Context};

use crate::{printable::printable, process::Command};

/// The nodes' subnet: private, and only ever inside the run's namespaces.
const SUBNET: &str = "10.213.0";
pub const PREFIX: &str = "bdr-dist-";

/// The namespaces of one run. Dropping it removes them.
#[derive(Debug)]
pub struct Namespaces {
    run: u32,
    /// Node namespaces made so far, by node number.
    nodes: Vec<u32>,
    hub_made: bool,
}

impl Namespaces {
    /// The hub namespace with its bridge, after removing stale ones.
    pub fn create() -> anyhow::Result<Namespaces> {
        remove_stale();
        let mut namespaces = Namespaces {
            run: std::process::id(),
            nodes: Vec::new(),
            hub_made: false,
        };
        let hub = namespaces.hub();
        ip(&["netns", "add", &hub])?;
        namespaces.hub_made = true;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        Ok(namespaces)
    }

    pub fn hub(&self) -> String {
        format!("{PREFIX}{}-hub", self.run)
    }

    /// The namespace of node `number` (1-based).
    pub fn name(&self, number: u32) -> String {
        format!("{PREFIX}{}-n{number}", self.run)
    }

    /// Node `number`'s address on the bridge.
    pub fn address(number: u32) -> String {
        format!("{SUBNET}.{number}")
    }

    /// Make node `number`'s namespace: loopback up, and `eth0` with its
    /// address, a veth whose other end is on the hub's bridge.
    pub fn add_node(&mut self, number: u32) -> anyhow::Result<(String, String)> {
        let (name, hub, address) = (self.name(number), self.hub(), Self::address(number));
        ip(&["netns", "add", &name])?;
        self.nodes.push(number);
        let port = format!("n{number}");
        ip(&[
            "link", "add", "eth0", "netns", &name, "type", "veth", "peer", "name", &port, "netns",
            &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &name, "link", "set", "eth0", "up"])?;
        Ok((name, address))
    }

    /// Remove every namespace of the run (their interfaces go with them).
    pub fn remove(&mut self) {
        for number in std::mem::take(&mut self.nodes) {
            let _ = ip(&["netns", "delete", &self.name(number)]);
        }
        if std::mem::take(&mut self.hub_made) {
            let _ = ip(&["netns", "delete", &self.hub()]);
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.remove();
    }
}

/// `ip ARGS`, run to the end even once the run is interrupted (teardown
/// removes the namespaces after a signal).
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip").args(args).uninterruptible().output()?;
    if !output.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            printable(String::from_utf8_lossy(&output.stderr).trim(), 2000)
        );
    }
    Ok(())
}

/// Namespaces named for a run whose process is gone.
pub fn remove_stale() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    for name in text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        if pid > 0 && unsafe { libc::kill(pid, 0) } != 0 {
            eprintln!(
                "{:>12} network namespace {name} of an earlier run",
                "Removing"
            );
            // Another run adding or removing namespaces at the same moment
            // can make one `ip netns delete` fail: try again before giving up.
            let mut last = ip(&["netns", "delete", name]);
            for _ in 0..5 {
                if last.is_ok() || !namespace_exists(name) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
                last = ip(&["netns", "delete", name]);
            }
            match last {
                // Gone anyway: another run removed it.
                Err(error) if namespace_exists(name) => eprintln!("warning: {error:#}"),
                _ => {}
            }
        }
    }
}

/// Whether `/run/netns/NAME` is still there.
fn namespace_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// `ip` must be there before anything is made.
pub fn check_available() -> anyhow::Result<()> {
    Command::new("ip")
        .args(["netns", "list"])
        .checked_output()
        .map(drop)
        .context("--network netns needs iproute2's `ip` with network namespace support")
}
