//! Every path under `target/`, in one place. The plan takes its source, stage
//! and dist paths from here; the executor its stamps, logs and compiler
//! wrappers; packaging its rpmbuild directory; fetching its cache. Nothing
//! else joins path segments under `target/`.
//!
//! Every segment that comes from input (a set, component or source file
//! name, a version, a step id) is joined by [`join_plain`], which refuses
//! anything but a plain name, so no path made here, and nothing that later
//! removes one (a re-unpack's `remove_dir_all`), can leave `target/`.

use std::{
    fmt::Display,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::input::names::is_plain_name;

/// `dir/segment`, for a segment that must be one plain name
/// ([`is_plain_name`]).
///
/// # Panics
///
/// When it is not one. Loading refuses every recipe and platform value that
/// would make such a segment, with an error naming file, line and key, and
/// every flag or directory entry that reaches here is checked first; so a
/// panic here is a bug, and it stops the run before it touches the path,
/// rather than letting a `..` take it outside `target/`. A panic, not an
/// error, because every caller would only pass that error on: there is
/// nothing to recover, and a `Result` from each of these joins would be
/// carried through the whole pure planner for a case that cannot happen.
pub fn join_plain(dir: &Path, segment: &str) -> PathBuf {
    assert!(
        is_plain_name(segment),
        "layout: `{}` is not a plain name, so it cannot be joined below {} (loading should have refused it)",
        segment.escape_debug(),
        dir.display()
    );
    dir.join(segment)
}

/// Where everything lands, under one `target/` directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub target: PathBuf,
    /// Where the sets' work directories are: `sets/` for this host,
    /// `targets/<target>/` for a distribution target.
    sets: PathBuf,
}

impl Layout {
    pub fn new(target: impl Into<PathBuf>) -> Layout {
        let target = target.into();
        Layout {
            sets: target.join("sets"),
            target,
        }
    }

    /// The same `target/`, with the sets of a distribution target
    /// (`None`: this host's).
    pub fn for_target(&self, name: Option<&str>) -> Layout {
        Layout {
            target: self.target.clone(),
            sets: match name {
                Some(name) => join_plain(&self.target.join("targets"), name),
                None => self.target.join("sets"),
            },
        }
    }

    /// A target's roots: `build/` (its build root), `build.key`, `base.tar`
    /// (the minbase that proof roots are unpacked from), `proof/`.
    pub fn roots(&self, target: &str) -> PathBuf {
        join_plain(&self.target.join("roots"), target)
    }
    /// Every target's roots.
    pub fn all_roots(&self) -> PathBuf {
        self.target.join("roots")
    }
    /// `dist --target a,b,...`'s report: a row per target.
    pub fn matrix_report(&self, set: &str) -> PathBuf {
        join_plain(&self.target.join("matrix"), &format!("{set}.json"))
    }
    /// Every target's sets.
    pub fn all_targets(&self) -> PathBuf {
        self.target.join("targets")
    }

    /// The content-addressed download cache, shared by all sets.
    pub fn downloads(&self) -> Downloads {
        Downloads::new(self.target.join("downloads"))
    }

    /// Every set's work directory.
    pub fn sets(&self) -> PathBuf {
        self.sets.clone()
    }
    pub fn set_dir(&self, set: &str) -> PathBuf {
        join_plain(&self.sets(), set)
    }
    /// The flock of a set: exclusive while a run writes it, shared while a
    /// smoke cluster reads its stage.
    pub fn set_lock(&self, set: &str) -> PathBuf {
        self.set_dir(set).join(".lock")
    }

    /// An unpacked source, also its build tree (in-tree builds).
    pub fn src(&self, set: &str, name: &str, version: &str) -> PathBuf {
        join_plain(&self.set_dir(set).join("src"), &format!("{name}-{version}"))
    }
    pub fn stage(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("stage")
    }
    /// Present while a build may have half-written the stage.
    pub fn stage_incomplete(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("stage.incomplete")
    }
    /// The platform the stage was built for: `<platform> <os>`.
    pub fn stage_platform(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("stage.platform")
    }
    pub fn dist(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("dist")
    }
    /// The report `dist` writes.
    pub fn report(&self, set: &str) -> PathBuf {
        self.dist(set).join("report.json")
    }

    /// The full output of a step's command.
    pub fn log(&self, set: &str, step: impl Display) -> PathBuf {
        join_plain(&self.set_dir(set).join("logs"), &format!("{step}.log"))
    }
    /// The input hash of a finished step.
    pub fn stamp(&self, set: &str, step: impl Display) -> PathBuf {
        join_plain(&self.stamps(set), &step.to_string())
    }
    /// The files an install step added to the stage (how packages are split).
    pub fn installed_files(&self, set: &str, step: impl Display) -> PathBuf {
        join_plain(&self.stamps(set), &format!("{step}.files"))
    }
    /// The artifacts a package step wrote.
    pub fn artifacts(&self, set: &str, step: impl Display) -> PathBuf {
        join_plain(&self.stamps(set), &format!("{step}.artifacts"))
    }
    /// How each file a package step wrote is signed (JSON, path to signature).
    pub fn signatures(&self, set: &str, step: impl Display) -> PathBuf {
        join_plain(&self.stamps(set), &format!("{step}.signatures"))
    }
    fn stamps(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("stamps")
    }
    /// The compiler wrappers of one step.
    pub fn compilers(&self, set: &str, step: impl Display) -> PathBuf {
        join_plain(&self.set_dir(set).join("compilers"), &step.to_string())
    }
    /// rpmbuild's top directory, remade on every RPM run.
    /// Scratch space of one format's packaging (stripped copies, debug files).
    pub fn package_work(&self, set: &str, format: impl Display) -> PathBuf {
        join_plain(&self.set_dir(set).join("package-work"), &format.to_string())
    }
    pub fn rpmbuild(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("rpmbuild")
    }

    /// Scratch space of `verify-rebuild` for one SRPM: removed when it ends.
    pub fn rebuild(&self, srpm_stem: &str) -> PathBuf {
        join_plain(&self.target.join("rebuild"), srpm_stem)
    }

    /// rpmbuild's output during `verify-rebuild`, kept.
    pub fn rebuild_log(&self, srpm_stem: &str) -> PathBuf {
        join_plain(&self.target.join("rebuild"), &format!("{srpm_stem}.log"))
    }

    /// What the escalated install step extracts.
    pub fn install_archive(&self, set: &str) -> PathBuf {
        join_plain(&self.set_dir(set).join("install"), &format!("{set}.tar"))
    }
    /// Benchmark inputs and results.
    /// `test --fresh-root`'s Debian root (`root/`) and its lock.
    pub fn fresh_root(&self) -> PathBuf {
        self.target.join("fresh-root")
    }
    pub fn bench(&self) -> PathBuf {
        self.target.join("bench")
    }
}

/// Beside an unpacked tree: the newest file time its archive carried, the
/// default SOURCE_DATE_EPOCH of packages made from it.
pub fn epoch_file(tree: &Path) -> PathBuf {
    let mut name = tree.file_name().unwrap_or_default().to_os_string();
    name.push(".source-date-epoch");
    tree.with_file_name(name)
}

/// The download cache: `<sha256>` blobs, receipts by source file name, and
/// partial downloads by URL.
#[derive(Debug, Clone)]
pub struct Downloads {
    pub dir: PathBuf,
}

impl Downloads {
    pub fn new(dir: impl Into<PathBuf>) -> Downloads {
        Downloads { dir: dir.into() }
    }
    pub fn blob(&self, sha256: &str) -> PathBuf {
        join_plain(&self.dir, sha256)
    }
    /// What was verified for a source file name: its sha256, tree and URL.
    pub fn receipt(&self, file: &str) -> PathBuf {
        join_plain(&self.dir.join("receipts"), file)
    }
    /// Partial download of one URL, kept across runs for resuming.
    pub fn part(&self, url: &str) -> PathBuf {
        self.dir
            .join("partial")
            .join(format!("{}.part", url_key(url)))
    }
    /// Held while one run downloads a URL: two runs never share a `.part`.
    pub fn part_lock(&self, url: &str) -> PathBuf {
        self.dir
            .join("partial")
            .join(format!("{}.lock", url_key(url)))
    }
}

fn url_key(url: &str) -> String {
    hex::encode(Sha256::digest(url.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path a set's plain names make is below the target.
    #[test]
    fn plain_names_stay_below_the_target() {
        let layout = Layout::new("/t");
        let paths = [
            layout.set_dir("pg15-pglogical"),
            layout.src("pg15-pglogical", "postgresql", "15.18"),
            layout.stamp("s", "postgresql-contrib-compile"),
            layout.log("s", "package-rpm"),
            layout.compilers("s", "postgresql-compile"),
            layout.install_archive("s"),
            layout.rebuild("postgresql15-pglogical-15.18-1"),
            layout.downloads().receipt("postgresql-15.18.tar.bz2"),
            layout.downloads().blob(&"a".repeat(64)),
        ];
        for path in paths {
            assert!(path.starts_with("/t"), "{}", path.display());
            assert!(
                path.components()
                    .all(|part| matches!(part, std::path::Component::RootDir)
                        || matches!(part, std::path::Component::Normal(_))),
                "{}",
                path.display()
            );
        }
    }

    // Loading refuses each of these (tests/loading.rs); were one to slip
    // past, layout stops the run rather than join it.

    #[test]
    #[should_panic(expected = "is not a plain name")]
    fn a_component_name_that_climbs_is_not_joined() {
        Layout::new("/t").src("s", "../../../../x", "1.0");
    }

    #[test]
    #[should_panic(expected = "is not a plain name")]
    fn a_version_with_a_separator_is_not_joined() {
        Layout::new("/t").src("s", "x", "1.0/../../..");
    }

    #[test]
    #[should_panic(expected = "is not a plain name")]
    fn a_set_name_of_dot_dot_is_not_joined() {
        Layout::new("/t").stage("..");
    }

    #[test]
    #[should_panic(expected = "is not a plain name")]
    fn a_step_id_that_climbs_is_not_joined() {
        Layout::new("/t").stamp("s", "../../x-fetch");
    }

    #[test]
    #[should_panic(expected = "is not a plain name")]
    fn a_source_file_name_that_climbs_is_not_joined() {
        Layout::new("/t").downloads().receipt("../x.tar.gz");
    }

    #[test]
    #[should_panic(expected = "is not a plain name")]
    fn an_empty_segment_is_not_joined() {
        Layout::new("/t").set_dir("");
    }
}
