//! Compiler wrappers: scripts named like the C compilers that run the real
//! compiler with the step's path maps (`-ffile-prefix-map`), through ccache
//! when the step uses it. Flags given to configure or make would be recorded
//! by `pg_config` and leak the build path anyway. The wrappers call ccache by
//! name rather than through its masquerade directory, which would find the
//! wrapper again as "the next cc" on `PATH` and loop.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::plan::{compiler_flags, shell_quote, Run, COMPILERS};

/// Each wrapper's name and text. Without `ccache`, these are the texts a
/// step's fingerprint hashes: which compiler runs, and how, is an input of
/// what it builds; whether ccache sits in front is not.
pub fn scripts(run: &Run, ccache: Option<&Path>) -> Vec<(&'static str, String)> {
    let flags: Vec<String> = compiler_flags(&run.path_map)
        .iter()
        .map(|flag| shell_quote(flag))
        .collect();
    COMPILERS
        .iter()
        .filter_map(|name| {
            let real = match &run.root {
                Some(root) => compiler_in_root(name, &root.root)?,
                None => real_compiler(name)?,
            };
            let mut line = vec!["exec".to_owned()];
            line.extend(ccache.map(|ccache| shell_quote(&ccache.display().to_string())));
            line.push(shell_quote(&real.display().to_string()));
            line.extend(flags.iter().cloned());
            line.push("\"$@\"".to_owned());
            Some((
                *name,
                format!(
                    "#!/bin/sh\n# bdr-dist: keep build paths out of what the compiler writes; link as distributions do.\n{}\n",
                    line.join(" ")
                ),
            ))
        })
        .collect()
}

/// The compiler itself, not a ccache masquerade link that may be on `PATH`.
fn real_compiler(name: &str) -> Option<PathBuf> {
    which::which_all(name).ok().and_then(|mut all| {
        all.find(|path| fs::canonicalize(path).is_ok_and(|target| !target.ends_with("ccache")))
    })
}

/// The compiler a build in `root` runs, by its path there: the root's own
/// `/usr/bin/gcc`, never one of this host's.
fn compiler_in_root(name: &str, root: &Path) -> Option<PathBuf> {
    ["/usr/local/bin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| {
            fs::symlink_metadata(root.join(path.strip_prefix("/").unwrap_or(path))).is_ok()
        })
}

/// Write the wrappers of `run` into `dir`.
pub fn write(dir: &Path, run: &Run) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ccache = run
        .ccache_dir
        .as_ref()
        .and_then(|_| which::which("ccache").ok());
    for (name, script) in scripts(run, ccache.as_deref()) {
        let wrapper = dir.join(name);
        fs::write(&wrapper, script)
            .with_context(|| format!("cannot write {}", wrapper.display()))?;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
