//! Every path under `target/`, in one place. The plan takes its source, stage
//! and dist paths from here; the executor its stamps, logs and compiler
//! wrappers; packaging its rpmbuild directory; fetching its cache. Nothing
//! else joins path segments under `target/`.

use std::{
    fmt::Display,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

/// Where everything lands, under one `target/` directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub target: PathBuf,
}

impl Layout {
    pub fn new(target: impl Into<PathBuf>) -> Layout {
        Layout {
            target: target.into(),
        }
    }

    /// The content-addressed download cache, shared by all sets.
    pub fn downloads(&self) -> Downloads {
        Downloads::new(self.target.join("downloads"))
    }

    /// Every set's work directory.
    pub fn sets(&self) -> PathBuf {
        self.target.join("sets")
    }
    pub fn set_dir(&self, set: &str) -> PathBuf {
        self.sets().join(set)
    }
    /// The flock of a set: exclusive while a run writes it, shared while a
    /// smoke cluster reads its stage.
    pub fn set_lock(&self, set: &str) -> PathBuf {
        self.set_dir(set).join(".lock")
    }

    /// An unpacked source, also its build tree (in-tree builds).
    pub fn src(&self, set: &str, name: &str, version: &str) -> PathBuf {
        self.set_dir(set)
            .join("src")
            .join(format!("{name}-{version}"))
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
        self.set_dir(set).join("logs").join(format!("{step}.log"))
    }
    /// The input hash of a finished step.
    pub fn stamp(&self, set: &str, step: impl Display) -> PathBuf {
        self.stamps(set).join(step.to_string())
    }
    /// The files an install step added to the stage (how packages are split).
    pub fn installed_files(&self, set: &str, step: impl Display) -> PathBuf {
        self.stamps(set).join(format!("{step}.files"))
    }
    /// The artifacts a package step wrote.
    pub fn artifacts(&self, set: &str, step: impl Display) -> PathBuf {
        self.stamps(set).join(format!("{step}.artifacts"))
    }
    /// How each file a package step wrote is signed (JSON, path to signature).
    pub fn signatures(&self, set: &str, step: impl Display) -> PathBuf {
        self.stamps(set).join(format!("{step}.signatures"))
    }
    fn stamps(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("stamps")
    }
    /// The compiler wrappers of one step.
    pub fn compilers(&self, set: &str, step: impl Display) -> PathBuf {
        self.set_dir(set).join("compilers").join(step.to_string())
    }
    /// rpmbuild's top directory, remade on every RPM run.
    /// Scratch space of one format's packaging (stripped copies, debug files).
    pub fn package_work(&self, set: &str, format: impl Display) -> PathBuf {
        self.set_dir(set)
            .join("package-work")
            .join(format.to_string())
    }
    pub fn rpmbuild(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("rpmbuild")
    }

    /// Scratch space of `verify-rebuild` for one SRPM: removed when it ends.
    pub fn rebuild(&self, srpm_stem: &str) -> PathBuf {
        self.target.join("rebuild").join(srpm_stem)
    }

    /// rpmbuild's output during `verify-rebuild`, kept.
    pub fn rebuild_log(&self, srpm_stem: &str) -> PathBuf {
        self.target.join("rebuild").join(format!("{srpm_stem}.log"))
    }

    /// What the escalated install step extracts.
    pub fn install_archive(&self, set: &str) -> PathBuf {
        self.set_dir(set).join("install").join(format!("{set}.tar"))
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
        self.dir.join(sha256)
    }
    /// What was verified for a source file name: its sha256, tree and URL.
    pub fn receipt(&self, file: &str) -> PathBuf {
        self.dir.join("receipts").join(file)
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
