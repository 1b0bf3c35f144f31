//! Stamps: what makes a step fresh. A step's stamp is the hash of its inputs
//! (the planned step minus `-jN` and ccache, which do not change what is
//! built; the compiler wrappers it will run through; the environment
//! allowlist; the stamps of the steps it comes after; for package steps, the
//! tool itself). A stamp is written only after its step succeeded.

use std::{collections::BTreeMap, fs, path::Path};

use sha2::{Digest, Sha256};

use crate::{
    files,
    layout::Layout,
    plan::{Action, Step, StepId},
    process,
};

/// Hash of a step's inputs. `values` holds the stamps (or fetched sha256) of
/// the steps it comes after; `wrappers` the texts of its compiler wrappers.
pub fn fingerprint(
    step: &Step,
    values: &BTreeMap<StepId, String>,
    wrappers: &[(&str, String)],
    allowlist: &[&str],
) -> String {
    let mut step = step.clone();
    if let Action::Run(run) = &mut step.action {
        run.jobs = None;
        run.ccache_dir = None;
    }
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&step).expect("steps serialize"));
    if let Action::Run(_) = &step.action {
        for (name, script) in wrappers {
            hasher.update(name.as_bytes());
            hasher.update(script.as_bytes());
        }
        hasher.update(allowlist.join("\0").as_bytes());
    }
    // A target's steps are made by the root they run in: its key names
    // what went into it (packages, the archive's date).
    let root = match &step.action {
        Action::Run(run) => run.root.as_ref(),
        Action::Package(package) => package.root.as_ref(),
        _ => None,
    };
    if let Some(root) = root {
        let key = fs::read_to_string(root.root.with_extension("key")).unwrap_or_default();
        hasher.update(b"root\0");
        hasher.update(key.trim().as_bytes());
    }
    if let Action::Package(_) = &step.action {
        // What a package step makes is decided by this tool's code, not only
        // by the plan: a new bdr-dist repackages (seconds), it does not rebuild.
        hasher.update(tool_identity().as_bytes());
    }
    for id in &step.after {
        hasher.update(id.as_str().as_bytes());
        hasher.update(values.get(id).map(String::as_str).unwrap_or("-").as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The fingerprint of a step as this host would run it.
pub fn fingerprint_here(step: &Step, values: &BTreeMap<StepId, String>) -> String {
    let wrappers = match &step.action {
        Action::Run(run) if !run.path_map.is_empty() => super::wrappers::scripts(run, None),
        _ => Vec::new(),
    };
    fingerprint(step, values, &wrappers, process::KEPT_ENVIRONMENT)
}

/// The sha256 of the running bdr-dist executable.
fn tool_identity() -> &'static str {
    static IDENTITY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| files::sha256_file(&exe).ok())
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())
    })
}

/// The stamp on disk, if the step finished once.
pub fn read(layout: &Layout, set: &str, step: &StepId) -> Option<String> {
    fs::read_to_string(layout.stamp(set, step))
        .ok()
        .map(|text| text.trim().to_owned())
}

/// Unpack steps whose tree must be replaced before anything is built in it:
/// a step in that tree finished once with other inputs. Make would take the
/// old objects as up to date (a changed flag is no newer than an object), so
/// a changed input rebuilds from a fresh tree. A step that never finished (a
/// killed run) instead resumes in the tree as it is.
pub fn trees_to_unpack_afresh(
    steps: &[&Step],
    values: &BTreeMap<StepId, String>,
    layout: &Layout,
    set: &str,
) -> Vec<StepId> {
    let trees: Vec<(&StepId, &Path)> = steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Unpack(unpack) => Some((&step.id, unpack.dest.as_path())),
            _ => None,
        })
        .collect();
    let mut afresh: Vec<StepId> = Vec::new();
    for step in steps {
        let Action::Run(run) = &step.action else {
            continue;
        };
        let changed = read(layout, set, &step.id).is_some_and(|stamp| stamp != values[&step.id]);
        if !changed {
            continue;
        }
        if let Some((unpack_id, _)) = trees.iter().find(|(_, tree)| run.cwd.starts_with(tree)) {
            if !afresh.contains(unpack_id) {
                afresh.push((*unpack_id).clone());
            }
        }
    }
    afresh
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        input::recipe::StepKind,
        plan::{PathMap, Phase, Run},
    };

    fn compile_step() -> Step {
        Step {
            id: StepId::build("fix", None, StepKind::Compile),
            phase: Phase::Build,
            after: vec![StepId::unpack("fix")],
            action: Action::Run(Run {
                kind: StepKind::Compile,
                subject: "fix 1.0".into(),
                cwd: PathBuf::from("/t/src/fix-1.0"),
                env: Vec::new(),
                argv: vec!["make".into()],
                jobs: Some(2),
                ccache_dir: Some(PathBuf::from("/usr/lib/ccache")),
                escalate: None,
                fresh_dir: None,
                installs: false,
                path_map: vec![PathMap {
                    from: "/t/src/fix-1.0".into(),
                    to: "/usr/src/debug/fix-1.0".into(),
                }],
                root: None,
            }),
        }
    }

    #[test]
    fn the_wrapper_script_and_the_allowlist_are_inputs_but_jobs_and_ccache_are_not() {
        let step = compile_step();
        let values = BTreeMap::from([(StepId::unpack("fix"), "abc".to_owned())]);
        let wrappers = [("cc", "exec /usr/bin/cc \"$@\"\n".to_owned())];
        let base = fingerprint(&step, &values, &wrappers, &["PATH", "HOME"]);
        let other_compiler = [("cc", "exec /opt/gcc-13/bin/cc \"$@\"\n".to_owned())];
        assert_ne!(
            base,
            fingerprint(&step, &values, &other_compiler, &["PATH", "HOME"])
        );
        assert_ne!(
            base,
            fingerprint(&step, &values, &wrappers, &["PATH", "HOME", "CFLAGS"])
        );
        let mut parallel = step.clone();
        if let Action::Run(run) = &mut parallel.action {
            run.jobs = Some(16);
            run.ccache_dir = None;
        }
        assert_eq!(
            base,
            fingerprint(&parallel, &values, &wrappers, &["PATH", "HOME"])
        );
        let other_input = BTreeMap::from([(StepId::unpack("fix"), "def".to_owned())]);
        assert_ne!(
            base,
            fingerprint(&step, &other_input, &wrappers, &["PATH", "HOME"])
        );
    }
}
