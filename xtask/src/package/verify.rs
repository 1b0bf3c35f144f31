//! Checking a dist directory or a downloaded release the way its users
//! would: every `SHA256SUMS` line against its file (and no file unlisted),
//! `SHA256SUMS.asc` with `gpgv`, every RPM with `rpm -K` (keys imported into
//! a throwaway database, never the host's), the OpenBSD package with
//! `signify -Vz`, each artifact against the SPDX SBOM when one is there, and
//! each package's own name, version, release and arch against its file name
//! and the manifest (`identity`).
//!
//! The ecosystems' own verifiers do the cryptography; this module decides
//! what to run on which file and collects one line per file. Without a
//! signature, every check is one of agreement between files that whoever
//! can write the directory can rewrite together: the report says so.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;
use base64::Engine as _;
use serde::Serialize;

use super::{identity, is_checksummed, sign};
use crate::{files, input::located::invalid, process::Command};

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    Failed,
    NotSigned,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `sha256`, `gpg`, `rpm`, `signify`, `identity` or `sbom`.
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

/// One file of the directory and the checks it went through.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub name: String,
    pub checks: Vec<Check>,
}

/// Where the public keys came from.
#[derive(Debug, Clone, Serialize)]
pub struct KeySource {
    pub path: String,
    /// Shipped in the directory itself: proves integrity, not origin.
    pub from_dir: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dir: String,
    pub gpg_keys: Vec<KeySource>,
    pub signify_keys: Vec<KeySource>,
    pub sboms: Vec<String>,
    /// The `*.manifest.json` each package's identity was compared with.
    pub manifests: Vec<String>,
    pub files: Vec<FileReport>,
    /// Files in the directory that no check covers, by design (the run's report, hidden files).
    pub skipped: Vec<String>,
    /// Whether any signature in the directory was checked and passed. When
    /// none was, every check passed is one of files agreeing with each
    /// other, and proves nothing against whoever can write the directory.
    pub signed: bool,
    /// What the checks cannot prove, as printed on `note:` lines.
    pub notes: Vec<String>,
}

impl Report {
    pub fn failures(&self) -> usize {
        self.files
            .iter()
            .flat_map(|file| &file.checks)
            .filter(|check| check.outcome == Outcome::Failed)
            .count()
    }
}

impl Check {
    fn passed(name: &'static str, detail: Option<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Passed,
            detail,
        }
    }
    fn failed(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Failed,
            detail: Some(detail.into()),
        }
    }
    fn not_signed(name: &'static str) -> Check {
        Check {
            name,
            outcome: Outcome::NotSigned,
            detail: None,
        }
    }
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Check everything in `dir`. Bad input (no such directory, no
/// `SHA256SUMS`, an unreadable key given) is an `InvalidInput`; what the
/// checks find is in the report.
pub fn verify(
    dir: &Path,
    keyring: Option<&Path>,
    signify_pub: Option<&Path>,
) -> anyhow::Result<Report> {
    if !dir.is_dir() {
        return Err(invalid(format!("{} is not a directory", dir.display())));
    }
    let sums_path = dir.join("SHA256SUMS");
    if !sums_path.is_file() {
        return Err(invalid(format!(
            "{} has no SHA256SUMS: is it a dist directory?",
            dir.display()
        )));
    }
    for given in [keyring, signify_pub].into_iter().flatten() {
        if !given.is_file() {
            return Err(invalid(format!("{} is not a file", given.display())));
        }
    }
    // Regular files only: a symlink could point anywhere, and nothing this
    // tool writes is one. Directories (`repo/`) are not covered by SHA256SUMS.
    let mut present = BTreeSet::new();
    let mut irregular = Vec::new();
    let mut directories = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        if kind.is_file() {
            present.insert(name);
        } else if kind.is_dir() {
            directories.push(format!("{name}/ (a directory: not covered by SHA256SUMS)"));
        } else {
            irregular.push(name);
        }
    }
    let gpg_keys = match keyring {
        Some(path) => vec![(path.to_path_buf(), false)],
        None => shipped(dir, &present, |name| name.starts_with("RPM-GPG-KEY-")),
    };
    let signify_keys = match signify_pub {
        Some(path) => vec![(path.to_path_buf(), false)],
        None => shipped(dir, &present, |name| name.ends_with(".signify.pub")),
    };
    let scratch = Scratch(files::make_temporary_dir("bdr-dist-verify-")?);

    let sums_text = fs::read(&sums_path)?;
    let (listed, mut sums_checks) = parse_sums(&String::from_utf8_lossy(&sums_text));
    sums_checks.push(check_checksums_signature(dir, &gpg_keys, &scratch.0)?);
    let mut reports = vec![FileReport {
        name: "SHA256SUMS".into(),
        checks: sums_checks,
    }];

    let sboms: Vec<String> = present
        .iter()
        .filter(|name| name.ends_with(".spdx.json"))
        .cloned()
        .collect();
    let sbom_entries = read_sboms(dir, &sboms);
    let manifest_names: Vec<String> = present
        .iter()
        .filter(|name| name.ends_with(".manifest.json"))
        .cloned()
        .collect();
    let manifests = read_manifests(dir, &manifest_names);
    let rpm_db = if present.iter().any(|name| name.ends_with(".rpm")) {
        Some(rpm_database(&gpg_keys, &scratch.0)?)
    } else {
        None
    };

    let mut skipped = directories;
    for name in irregular {
        reports.push(FileReport {
            name,
            checks: vec![Check::failed(
                "sha256",
                "not a regular file (a symlink, a device...): refused",
            )],
        });
    }
    let names: BTreeSet<&String> = listed.keys().chain(&present).collect();
    for name in names {
        if !is_checksummed(name) {
            if name != "SHA256SUMS" && name.as_str() != sign::CHECKSUMS_SIGNATURE {
                skipped.push(name.clone());
            }
            continue;
        }
        let path = dir.join(name);
        let mut checks = Vec::new();
        let actual = if present.contains(name) {
            Some(files::sha256_file(&path)?)
        } else {
            None
        };
        checks.push(match (listed.get(name), &actual) {
            (Some(want), Some(have)) if want == have => Check::passed("sha256", None),
            (Some(want), Some(have)) => {
                Check::failed("sha256", format!("is {have}, SHA256SUMS says {want}"))
            }
            (Some(_), None) => Check::failed("sha256", "listed in SHA256SUMS, but missing"),
            (None, _) => Check::failed("sha256", "not listed in SHA256SUMS"),
        });
        if actual.is_some() {
            if name.ends_with(".rpm") {
                if let Some(db) = &rpm_db {
                    checks.push(check_rpm(&path, db)?);
                }
            } else if name.ends_with(".tgz") {
                checks.push(check_signify(&path, &signify_keys)?);
            }
            if is_package(name) {
                let sbom_version = sbom_entries
                    .as_ref()
                    .and_then(|sbom| sbom.versions.get(name.as_str()))
                    .map(String::as_str);
                checks.push(check_identity(
                    &path,
                    name,
                    rpm_db.as_deref(),
                    &manifests,
                    sbom_version,
                ));
            }
        }
        if let (Some(sbom), Some(have)) = (&sbom_entries, &actual) {
            if !name.ends_with(".spdx.json") {
                checks.push(match (&sbom.broken, sbom.entries.get(name.as_str())) {
                    (Some(broken), _) => Check::failed("sbom", broken.clone()),
                    (None, Some(Ok(want))) if want == have => Check::passed("sbom", None),
                    (None, Some(Ok(want))) => {
                        Check::failed("sbom", format!("is {have}, the SBOM says {want}"))
                    }
                    (None, Some(Err(problem))) => Check::failed("sbom", problem.clone()),
                    (None, None) => Check::failed("sbom", "no entry in the SBOM"),
                });
            }
        }
        reports.push(FileReport {
            name: name.clone(),
            checks,
        });
    }
    // With a key given or shipped, the release is meant to be signed: a file
    // that should carry a signature and does not is a failure (an attacker
    // who strips signatures must not get "passed").
    for check in reports.iter_mut().flat_map(|file| file.checks.iter_mut()) {
        let expected = match check.name {
            "gpg" | "rpm" => !gpg_keys.is_empty(),
            "signify" => !signify_keys.is_empty(),
            _ => false,
        };
        if expected && check.outcome == Outcome::NotSigned {
            check.outcome = Outcome::Failed;
            check.detail =
                Some("not signed, though a key to check it with was given or shipped".into());
        }
    }
    let key_sources = |keys: &[(PathBuf, bool)]| {
        keys.iter()
            .map(|(path, from_dir)| KeySource {
                path: path.display().to_string(),
                from_dir: *from_dir,
            })
            .collect()
    };
    let signed = reports.iter().flat_map(|file| &file.checks).any(|check| {
        matches!(check.name, "gpg" | "rpm" | "signify") && check.outcome == Outcome::Passed
    });
    let mut notes = Vec::new();
    for (keys, kind, flag) in [
        (&gpg_keys, "gpg", "keyring"),
        (&signify_keys, "signify", "signify-pub"),
    ] {
        if keys.iter().any(|(_, from_dir)| *from_dir) {
            notes.push(format!(
                "the {kind} key comes from the directory itself: a key shipped beside the files \
                 proves they are intact and signed by it, not who made them; pass --{flag} with \
                 the publisher's key, obtained another way, to check origin"
            ));
        }
    }
    if sboms.is_empty() {
        notes.push("no *.spdx.json SBOM in the directory: no SBOM checks".to_owned());
    }
    if manifest_names.is_empty() {
        notes.push(
            "no *.manifest.json in the directory: each package's name, version and release \
             are checked against its file name and the SBOM only"
                .to_owned(),
        );
    }
    if !signed {
        notes.push(format!(
            "nothing in {} is signed: these checks show only that its files agree with each \
             other, which proves nothing against whoever can write the directory (they can \
             replace a package and rewrite SHA256SUMS, the SBOM and the manifest to match); \
             sign releases (`--sign`, `--signify-key`) and verify them with the publisher's key",
            dir.display()
        ));
    }
    Ok(Report {
        dir: dir.display().to_string(),
        gpg_keys: key_sources(&gpg_keys),
        signify_keys: key_sources(&signify_keys),
        sboms,
        manifests: manifest_names,
        files: reports,
        skipped,
        signed,
        notes,
    })
}

/// A file `identity` checks: an RPM (binary or source), a .deb or an
/// OpenBSD package.
fn is_package(name: &str) -> bool {
    name.ends_with(".rpm") || name.ends_with(".deb") || name.ends_with(".tgz")
}

/// The release a manifest describes.
#[derive(Debug, serde::Deserialize)]
struct ManifestRelease {
    package: String,
    version: String,
    release: String,
    /// The RPM step's manifest: its RPMs' release ends in `.<dist_tag>`.
    #[serde(default)]
    rpm: Option<ManifestRpm>,
}

#[derive(Debug, serde::Deserialize)]
struct ManifestRpm {
    dist_tag: Option<String>,
}

impl ManifestRelease {
    /// The release a package of `identity`'s format has in this manifest's
    /// release: an RPM's carries the dist tag the RPM step's manifest names.
    fn release_of(&self, identity: &identity::Identity) -> String {
        let tag = self.rpm.as_ref().and_then(|rpm| rpm.dist_tag.as_deref());
        match (identity, tag) {
            (identity::Identity::Rpm { .. }, Some(tag)) => format!("{}.{tag}", self.release),
            _ => self.release.clone(),
        }
    }
}

/// Every manifest of the directory by file name; one that cannot be read
/// fails every package's identity check with the reason.
fn read_manifests(dir: &Path, names: &[String]) -> Result<Vec<(String, ManifestRelease)>, String> {
    names
        .iter()
        .map(|name| {
            fs::read(dir.join(name))
                .map_err(|error| error.to_string())
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
                .map(|release| (name.clone(), release))
                .map_err(|error| format!("{name} cannot be read: {error}"))
        })
        .collect()
}

/// What the package says it is, against its file name, the manifests (it
/// must be of the release one of them describes) and the version its SBOM
/// entry records.
///
/// The manifest records the release (package, version, release), not each
/// package: a package's name is checked to be the release's or a
/// subpackage's (`<package>-<suffix>`), not against a list of
/// subpackages. A list would add nothing against a swap (two files cannot
/// share a name, and the name is checked against the file name), and a
/// forged extra package would need its own signature. The arch is checked
/// against the file name only.
fn check_identity(
    path: &Path,
    name: &str,
    rpm_db: Option<&Path>,
    manifests: &Result<Vec<(String, ManifestRelease)>, String>,
    sbom_version: Option<&str>,
) -> Check {
    let identity = if name.ends_with(".rpm") {
        rpm_db
            .ok_or_else(|| "no rpm database".to_owned())
            .and_then(|db| identity::of_rpm(path, db))
    } else if name.ends_with(".deb") {
        identity::of_deb(path)
    } else {
        identity::of_openbsd(path)
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(problem) => {
            return Check::failed("identity", format!("cannot tell what it is: {problem}"))
        }
    };
    let mut problems = Vec::new();
    let own_file_name = identity.file_name();
    if own_file_name != name {
        problems.push(format!(
            "the package is {}, whose file is named {own_file_name}",
            identity.describe()
        ));
    }
    match manifests {
        Err(problem) => problems.push(problem.clone()),
        Ok(manifests) if manifests.is_empty() => {}
        Ok(manifests) => {
            let belongs = manifests.iter().any(|(_, manifest)| {
                identity.belongs_to(
                    &manifest.package,
                    &manifest.version,
                    &manifest.release_of(&identity),
                )
            });
            if !belongs {
                let described: Vec<String> = manifests
                    .iter()
                    .map(|(file, manifest)| {
                        format!(
                            "{file} describes {} {}-{}",
                            manifest.package,
                            manifest.version,
                            manifest.release_of(&identity)
                        )
                    })
                    .collect();
                problems.push(format!(
                    "{} is not of the release: {}",
                    identity.describe(),
                    described.join(", ")
                ));
            }
        }
    }
    if let (Some(recorded), Some(own)) = (sbom_version, identity.version_release()) {
        if recorded != own {
            problems.push(format!("its version is {own}, the SBOM records {recorded}"));
        }
    }
    if problems.is_empty() {
        Check::passed("identity", None)
    } else {
        Check::failed("identity", problems.join("; "))
    }
}

/// Key files shipped in `dir` whose names match.
fn shipped(
    dir: &Path,
    present: &BTreeSet<String>,
    matches: impl Fn(&str) -> bool,
) -> Vec<(PathBuf, bool)> {
    present
        .iter()
        .filter(|name| matches(name))
        .map(|name| (dir.join(name), true))
        .collect()
}

/// `SHA256SUMS` as `sha256sum -c` reads it (`<hex>  <name>`, or `<hex>
/// *<name>`); a line that is not, or names a path rather than a file of
/// this directory, fails the check of `SHA256SUMS` itself.
fn parse_sums(text: &str) -> (BTreeMap<String, String>, Vec<Check>) {
    let mut listed = BTreeMap::new();
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let parsed = line
            .split_once("  ")
            .or_else(|| line.split_once(" *"))
            .filter(|(hex, _)| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        let Some((hex, name)) = parsed else {
            problems.push(format!("line {number} is not `<sha256>  <file>`"));
            continue;
        };
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            problems.push(format!(
                "line {number} names `{}`, not a file of this directory",
                crate::printable::printable(name, 200)
            ));
            continue;
        }
        if listed
            .insert(name.to_owned(), hex.to_ascii_lowercase())
            .is_some()
        {
            problems.push(format!("line {number} lists `{name}` a second time"));
        }
    }
    let check = if problems.is_empty() {
        Check::passed("format", Some(format!("{} files", listed.len())))
    } else {
        Check::failed("format", problems.join("; "))
    };
    (listed, vec![check])
}

/// A binary keyring of every key file (armored ones dearmored), for gpgv.
fn binary_keyring(keys: &[(PathBuf, bool)], scratch: &Path) -> anyhow::Result<PathBuf> {
    let mut bytes = Vec::new();
    for (path, _) in keys {
        let raw = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        match dearmor(&raw) {
            Some(decoded) => bytes.extend(decoded),
            None if raw.first().is_some_and(|byte| byte & 0x80 != 0) => bytes.extend(raw),
            None => {
                return Err(invalid(format!(
                    "{} is neither an armored nor a binary OpenPGP key",
                    path.display()
                )))
            }
        }
    }
    let keyring = scratch.join("keyring.gpg");
    fs::write(&keyring, bytes)?;
    Ok(keyring)
}

/// The bytes of every ASCII-armored block in `text`, or `None` when there
/// is none (the file is binary already).
pub fn dearmor(raw: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut bytes = Vec::new();
    let mut found = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if !line.trim_end().starts_with("-----BEGIN PGP") {
            continue;
        }
        // Armor headers, up to the first empty line.
        for header in lines.by_ref() {
            if header.trim().is_empty() {
                break;
            }
        }
        let mut body = String::new();
        for line in lines.by_ref() {
            let line = line.trim();
            if line.starts_with("-----END PGP") {
                break;
            }
            if line.starts_with('=') {
                continue;
            }
            body.push_str(line);
        }
        bytes.extend(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()?,
        );
        found = true;
    }
    found.then_some(bytes)
}

/// gpgv of `SHA256SUMS.asc` over `SHA256SUMS`, in a throwaway home.
fn check_checksums_signature(
    dir: &Path,
    keys: &[(PathBuf, bool)],
    scratch: &Path,
) -> anyhow::Result<Check> {
    let signature = dir.join(sign::CHECKSUMS_SIGNATURE);
    if !signature.is_file() {
        return Ok(Check::not_signed("gpg"));
    }
    if keys.is_empty() {
        return Ok(Check::failed(
            "gpg",
            "SHA256SUMS.asc is there but no public key: give --keyring",
        ));
    }
    let keyring = binary_keyring(keys, scratch)?;
    let home = scratch.join("gnupg");
    fs::create_dir_all(&home)?;
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let output = Command::new("gpgv")
        .args(["--status-fd", "1", "--keyring"])
        .arg(&keyring)
        .arg(&signature)
        .arg(dir.join("SHA256SUMS"))
        .env("GNUPGHOME", home.display().to_string())
        .output()
        .context("cannot run gpgv: install the `gpgv` package")?;
    let status = String::from_utf8_lossy(&output.stdout);
    let fingerprint = status.lines().find_map(|line| {
        line.strip_prefix("[GNUPG:] VALIDSIG ")
            .and_then(|rest| rest.split_whitespace().next())
    });
    Ok(match (output.status.success(), fingerprint) {
        (true, Some(fingerprint)) => Check::passed("gpg", Some(format!("by {fingerprint}"))),
        _ => Check::failed("gpg", last_line(&output.stderr, "gpgv failed")),
    })
}

/// A throwaway rpm database holding the keys: `rpm -K` checks against it,
/// and the host's database is never touched.
fn rpm_database(keys: &[(PathBuf, bool)], scratch: &Path) -> anyhow::Result<PathBuf> {
    let db = scratch.join("rpmdb");
    fs::create_dir_all(&db)?;
    for (path, _) in keys {
        let raw = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        // rpm imports armored keys only.
        let armored = if dearmor(&raw).is_some() {
            path.clone()
        } else {
            let copy = scratch.join("key.asc");
            fs::write(&copy, armor(&raw))?;
            copy
        };
        Command::new("rpm")
            .arg("--dbpath")
            .arg(&db)
            .arg("--import")
            .arg(&armored)
            .checked_output()
            .with_context(|| format!("rpm cannot import {}", path.display()))?;
    }
    Ok(db)
}

/// OpenPGP ASCII armor of a public key (RFC 4880, with its CRC-24).
fn armor(bytes: &[u8]) -> String {
    let mut crc: u32 = 0x00B7_04CE;
    for &byte in bytes {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let body = engine.encode(bytes);
    let mut text = String::from("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n");
    for chunk in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        text.push('\n');
    }
    let crc = (crc & 0x00FF_FFFF).to_be_bytes();
    text.push_str(&format!("={}\n", engine.encode(&crc[1..])));
    text.push_str("-----END PGP PUBLIC KEY BLOCK-----\n");
    text
}

/// `rpm -K`: digests, and the signature when there is one.
fn check_rpm(path: &Path, db: &Path) -> anyhow::Result<Check> {
    let output = Command::new("rpm")
        .arg("--dbpath")
        .arg(db)
        .arg("-K")
        .arg(path)
        .output()
        .context("cannot run rpm: install the `rpm` package")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let verdict = stdout
        .lines()
        .last()
        .and_then(|line| line.rsplit_once(": "))
        .map(|(_, verdict)| verdict.trim().to_owned())
        .unwrap_or_default();
    Ok(match (output.status.success(), verdict.as_str()) {
        (true, "digests signatures OK") => Check::passed("rpm", None),
        (true, "digests OK") => Check::not_signed("rpm"),
        (_, "") => Check::failed("rpm", last_line(&output.stderr, "rpm -K failed")),
        (_, verdict) => Check::failed(
            "rpm",
            format!("rpm -K: {verdict}{}", stderr_note(&output.stderr)),
        ),
    })
}

/// `signify -Vz` of an OpenBSD package against each public key.
fn check_signify(path: &Path, keys: &[(PathBuf, bool)]) -> anyhow::Result<Check> {
    let bytes = fs::read(path)?;
    if !sign::has_signify_signature(&bytes) {
        return Ok(Check::not_signed("signify"));
    }
    if keys.is_empty() {
        return Ok(Check::failed(
            "signify",
            "signed, but no public key: give --signify-pub",
        ));
    }
    let mut last = String::new();
    for (key, _) in keys {
        let output = Command::new(sign::signify_program())
            .args(["-V", "-q", "-z", "-p"])
            .arg(key)
            .arg("-x")
            .arg(path)
            .args(["-m", "/dev/null"])
            .output()
            .context("cannot run signify-openbsd: install the `signify-openbsd` package")?;
        if output.status.success() {
            return Ok(Check::passed(
                "signify",
                Some(format!(
                    "with {}",
                    key.file_name().unwrap_or_default().to_string_lossy()
                )),
            ));
        }
        last = last_line(&output.stderr, "signify failed");
    }
    Ok(Check::failed("signify", last))
}

/// The SBOMs' artifacts by file name: the `SHA256` checksum, or what is
/// wrong with the entry.
#[derive(Debug, Default)]
struct SbomEntries {
    entries: BTreeMap<String, Result<String, String>>,
    /// `versionInfo` by file name: the `version-release` of each package.
    versions: BTreeMap<String, String>,
    /// An SBOM that cannot be read: every artifact's SBOM check fails with this.
    broken: Option<String>,
}

/// `None` when there is no SBOM.
fn read_sboms(dir: &Path, sboms: &[String]) -> Option<SbomEntries> {
    if sboms.is_empty() {
        return None;
    }
    let mut found = SbomEntries::default();
    for sbom in sboms {
        let document: serde_json::Value = match fs::read(dir.join(sbom))
            .map_err(|error| error.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|error| error.to_string()))
        {
            Ok(document) => document,
            Err(error) => {
                found.broken = Some(format!("{sbom} cannot be read: {error}"));
                continue;
            }
        };
        for package in document["packages"].as_array().into_iter().flatten() {
            let Some(name) = package["packageFileName"].as_str() else {
                continue;
            };
            let sha256 = package["checksums"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|checksum| checksum["algorithm"] == "SHA256")
                .and_then(|checksum| checksum["checksumValue"].as_str())
                .map(|value| value.to_ascii_lowercase())
                .ok_or_else(|| format!("{sbom} has no SHA256 checksum for it"));
            found.entries.insert(name.to_owned(), sha256);
            if let Some(version) = package["versionInfo"].as_str() {
                found.versions.insert(name.to_owned(), version.to_owned());
            }
        }
    }
    Some(found)
}

fn last_line(stderr: &[u8], otherwise: &str) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map_or_else(|| otherwise.to_owned(), |line| line.trim().to_owned())
}

fn stderr_note(stderr: &[u8]) -> String {
    let line = last_line(stderr, "");
    if line.is_empty() {
        String::new()
    } else {
        format!(" ({line})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RPM step's manifest names the dist tag its RPMs' release ends
    /// in; a .deb of the release, or the tarball's manifest, has none.
    #[test]
    fn an_rpm_of_a_tagged_release_belongs_to_the_rpm_manifest_only() {
        let read = |json: &str| -> ManifestRelease { serde_json::from_str(json).unwrap() };
        let rpm_manifest =
            read(r#"{"package":"pg","version":"15.18","release":"1","rpm":{"dist_tag":"el9"}}"#);
        let untagged =
            read(r#"{"package":"pg","version":"15.18","release":"1","rpm":{"dist_tag":null}}"#);
        let tarball_manifest = read(r#"{"package":"pg","version":"15.18","release":"1"}"#);
        let rpm = |release: &str| identity::Identity::Rpm {
            name: "pg-server".into(),
            version: "15.18".into(),
            release: release.into(),
            arch: "x86_64".into(),
            source: false,
        };
        let deb = identity::Identity::Deb {
            package: "pg-server".into(),
            version: "15.18-1".into(),
            architecture: "amd64".into(),
        };
        let belongs = |identity: &identity::Identity, manifest: &ManifestRelease| {
            identity.belongs_to(
                &manifest.package,
                &manifest.version,
                &manifest.release_of(identity),
            )
        };
        assert!(belongs(&rpm("1.el9"), &rpm_manifest));
        assert!(!belongs(&rpm("1"), &rpm_manifest));
        assert!(!belongs(&rpm("1.el9"), &tarball_manifest));
        assert!(!belongs(&rpm("1.el8"), &rpm_manifest));
        assert!(belongs(&rpm("1"), &untagged) && belongs(&rpm("1"), &tarball_manifest));
        assert!(belongs(&deb, &rpm_manifest) && belongs(&deb, &tarball_manifest));
    }

    #[test]
    fn checksum_lines_that_name_paths_or_repeat_fail_the_list() {
        let hex = "a".repeat(64);
        let (listed, checks) = parse_sums(&format!("{hex}  a.rpm\n{hex} *b.deb\n"));
        assert_eq!(listed.len(), 2);
        assert_eq!(checks[0].outcome, Outcome::Passed);
        for bad in [
            format!("{hex}  ../etc/passwd\n"),
            format!("{hex}  a.rpm\n{hex}  a.rpm\n"),
            "nothing\n".to_owned(),
        ] {
            let (_, checks) = parse_sums(&bad);
            assert_eq!(checks[0].outcome, Outcome::Failed, "{bad}");
        }
    }

    #[test]
    fn armor_and_dearmor_are_inverse() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        let text = armor(&bytes);
        assert_eq!(dearmor(text.as_bytes()), Some(bytes));
        // CRC-24 of the empty input is the initial value, as RFC 4880 says.
        assert!(armor(&[]).contains("\n=twTO\n"), "{}", armor(&[]));
        assert_eq!(dearmor(b"\x99\x01binary"), None);
    }
}
