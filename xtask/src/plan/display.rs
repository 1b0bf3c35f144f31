//! The plan's stable text form: what `cargo xtask plan` prints and the
//! snapshot tests pin.

use std::fmt;

use super::{
    checks::{Network, Tls},
    shell_quote, size_text, Action, EnvVar, Fetch, InRoot, Install, Package, Phase, Plan, Run,
    Smoke, SmokeFrom, Step, Unpack,
};
use crate::input::platform::PackageFormat;

impl fmt::Display for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = shell_quote(&self.value);
        if self.prepend {
            write!(f, "{}={value}:${}", self.name, self.name)
        } else {
            write!(f, "{}={value}", self.name)
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Fetch(fetch) => fetch.fmt(f),
            Action::Unpack(unpack) => unpack.fmt(f),
            Action::Install(install) => install.fmt(f),
            Action::Run(run) => run.fmt(f),
            Action::Package(package) => package.fmt(f),
            Action::Smoke(smoke) => smoke.fmt(f),
        }
    }
}

impl fmt::Display for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fetch = self;
        writeln!(
            f,
            "fetch {} {}  [{}]",
            fetch.component, fetch.version, fetch.file
        )?;
        for url in &fetch.urls {
            writeln!(f, "    url     {url}")?;
        }
        if let Some(sha) = &fetch.sha256 {
            writeln!(f, "    sha256  {sha}")?;
        }
        if let Some(tree) = &fetch.tree {
            writeln!(
                f,
                "    tree    {tree}  (git tree of the entries, recomputed from the archive)"
            )?;
        }
        if let Some(commit) = &fetch.commit {
            writeln!(f, "    commit  {commit}  (names the tag; not a pin)")?;
        }
        match &fetch.locked_sha256 {
            Some(sha) => writeln!(
                f,
                "    lock    {sha}  (sha256 recorded; `--locked` requires it)"
            )?,
            None => writeln!(
                f,
                "    lock    (none: `fetch --pin` records the sha256 fetched)"
            )?,
        }
        writeln!(
            f,
            "    limits  {} download, {} unpacked",
            size_text(fetch.max_download),
            size_text(fetch.max_unpacked)
        )?;
        Ok(())
    }
}

impl fmt::Display for Unpack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unpack = self;
        writeln!(
            f,
            "unpack {} {}  [{}, {}]",
            unpack.component,
            unpack.version,
            unpack.file,
            unpack.archive.as_str()
        )?;
        writeln!(f, "    into    {}", unpack.dest.display())?;
        if let Some(tree) = &unpack.tree {
            writeln!(f, "    tree    {tree}  (checked while unpacking)")?;
        }
        for patch in &unpack.patches {
            writeln!(
                f,
                "    patch   {}  (sha256 {}, patch -p1)",
                patch.name,
                &patch.sha256[..16]
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Install {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "install into {}", self.prefix)?;
        writeln!(
            f,
            "    check   {}: not a symlink; it, its parents and the directories it installs into writable by root alone",
            self.prefix
        )?;
        writeln!(f, "    from    {}", self.from.display())?;
        writeln!(
            f,
            "    archive {}  (owner root:{}, modes 0755/0644, no setuid; piped to tar from memory)",
            self.archive.display(),
            self.group
        )?;
        let [mkdir, extract] = self.command_lines();
        let quoted = |line: Vec<String>| -> String {
            line.iter()
                .map(|arg| shell_quote(arg))
                .collect::<Vec<_>>()
                .join(" ")
        };
        writeln!(f, "    $ {}", quoted(mkdir))?;
        writeln!(f, "    $ {} < archive", quoted(extract))
    }
}

impl fmt::Display for InRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root.display())?;
        for bind in &self.binds {
            write!(f, " + {}", bind.display())?;
        }
        Ok(())
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run = self;
        writeln!(f, "{} {}", run.kind.verb(), run.subject)?;
        writeln!(f, "    cwd     {}", run.cwd.display())?;
        if let Some(dir) = &run.ccache_dir {
            writeln!(f, "    ccache  {} first on PATH", dir.display())?;
        }
        for map in &run.path_map {
            writeln!(
                f,
                "    map     {} -> {}",
                map.from,
                if map.to.is_empty() {
                    "(nothing)"
                } else {
                    &map.to
                }
            )?;
        }
        for var in &run.env {
            writeln!(f, "    env     {var}")?;
        }
        if let Some(dir) = &run.fresh_dir {
            writeln!(f, "    fresh   {} (removed first)", dir.display())?;
        }
        if let Some(root) = &run.root {
            writeln!(f, "    root    {root}")?;
        }
        let line: Vec<String> = run
            .command_line()
            .iter()
            .map(|arg| shell_quote(arg))
            .collect();
        writeln!(f, "    $ {}", line.join(" "))?;
        Ok(())
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let package = self;
        writeln!(
            f,
            "package {} {}-{}-{}",
            package.format.as_str(),
            package.name,
            package.version,
            package.release
        )?;
        writeln!(
            f,
            "    from    {} (prefix {})",
            package.stage.display(),
            package.prefix
        )?;
        writeln!(f, "    into    {}", package.dist.display())?;
        match (&package.root, &package.target) {
            (Some(_), Some(target)) if package.format == PackageFormat::Deb => writeln!(
                f,
                "    sbuild  of the .dsc, in a fresh {} root unpacked from {}",
                target.codename,
                target.proof_root.with_file_name("base.tar").display()
            )?,
            (Some(root), _) => {
                let tools = match package.format {
                    PackageFormat::Dsc => "dpkg-source",
                    _ => "dpkg-shlibdeps, strip, objcopy",
                };
                writeln!(f, "    root    {root} ({tools})")?;
            }
            (None, _) => {}
        }
        if !package.build_depends.is_empty() {
            writeln!(f, "    build-depends {}", package.build_depends.join(", "))?;
        }
        if let Some(dist) = &package.rpm_dist {
            let from = if dist.from_flag {
                "--dist"
            } else {
                "this host's %{?dist}"
            };
            match &dist.tag {
                Some(tag) => {
                    let glibc = crate::input::dist_tag::glibc_of(tag).map_or_else(
                        || format!("no glibc known for {tag}"),
                        |glibc| format!("RPMs needing glibc above {glibc} refused"),
                    );
                    writeln!(f, "    dist    .{tag} (from {from}; {glibc})")?
                }
                None => writeln!(
                    f,
                    "    dist    none (no --dist, and this host's rpm gives no %{{?dist}})"
                )?,
            }
        }
        if !package.build_requires.is_empty() {
            writeln!(
                f,
                "    srpm    BuildRequires: {}",
                package.build_requires.join(", ")
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Smoke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let smoke = self;
        writeln!(
            f,
            "smoke {} nodes, driver {}",
            smoke.nodes,
            smoke.driver.as_str()
        )?;
        writeln!(f, "    bindir  {}", smoke.bindir.display())?;
        if let Some(target) = &smoke.target {
            writeln!(
                f,
                "    proof   a fresh {} root at {}: dose-debcheck, the packages installed by apt-get, setup initdb, start, stop, remove; the servers run there",
                target.codename,
                target.proof_root.display()
            )?;
        }
        let listen = match smoke.network {
            Network::Loopback => "127.0.0.1",
            Network::Netns => "each node's own address, a network namespace each",
        };
        writeln!(
            f,
            "    conf    shared_preload_libraries = '{}', listen {listen}",
            smoke.preload
        )?;
        let tls = match smoke.tls {
            Tls::Auto => "when the server has it",
            Tls::On => "required",
            Tls::Off => "off",
        };
        writeln!(f, "    tls     {tls}")?;
        let checks: Vec<&str> = smoke.checks.iter().map(|c| c.as_str()).collect();
        writeln!(f, "    checks  {}", checks.join(", "))?;
        writeln!(f, "    create  extension {}", smoke.extensions.join(", "))?;
        if let Some(user) = &smoke.run_as {
            writeln!(f, "    as      {user}")?;
        }
        if smoke.from == SmokeFrom::Tarball {
            writeln!(
                f,
                "    from    the binary tarball, unpacked into the cluster"
            )?;
        }
        if smoke.keep {
            writeln!(f, "    keep    the cluster is left running, whole")?;
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plan for set {} on {}, prefix {}\n  {}",
            self.set, self.platform, self.prefix, self.description
        )?;
        if let Some(target) = &self.target {
            writeln!(
                f,
                "  target {}: {}, versions end in {}\n  build root {} (made by mmdebstrap, cached by what went into it)",
                target.name,
                target.description,
                target.version_suffix,
                target.build_root.display()
            )?;
        }
        let mut phase = None;
        for (number, step) in self.steps.iter().enumerate() {
            if phase != Some(step.phase) {
                phase = Some(step.phase);
                let note = if step.phase == Phase::Install {
                    " (only `cargo xtask install`)"
                } else {
                    ""
                };
                writeln!(f, "\n[{}]{note}", step.phase.as_str())?;
            }
            write!(f, "{:>3}. {step}", number + 1)?;
        }
        Ok(())
    }
}
