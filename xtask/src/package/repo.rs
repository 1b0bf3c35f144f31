//! Repositories (`--repo`): one format's packages laid out where a package
//! manager installs from them, in `<dist>/repo/<format>/`.
//!
//! - `repo/rpm/`: the binary RPMs (not the SRPM, which stays in `dist/`),
//!   `createrepo_c` metadata (`repodata/repomd.xml`), and a `<name>.repo`
//!   file for `/etc/yum.repos.d`; signed: `repodata/repomd.xml.asc` and the
//!   public key as `RPM-GPG-KEY-<name>`.
//! - `repo/deb/`: a flat apt repository (`deb URL ./`): the .debs (`-dbgsym`
//!   included), `Packages`, `Packages.gz`, `Release`, and a `<name>.sources`
//!   file for `/etc/apt/sources.list.d`; signed: `InRelease`, `Release.gpg`
//!   and the public key as the binary keyring `<name>.gpg` for `Signed-By`.
//!
//! Everything but the signatures is a function of the packages and
//! SOURCE_DATE_EPOCH. A repository is made afresh in a sibling directory and
//! renamed into place, so an interrupted run never leaves a half-made one
//! under the final name.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use flate2::{Compression, GzBuilder};

use super::{
    dates,
    deb::debian_arch,
    sign::{self, GpgKey},
    Contents,
};
use crate::{files, input::platform::PackageFormat, plan::Package, process::Command};

/// `<dist>/repo/<format>`: where a format's repository is published.
pub fn repository_dir(dist: &Path, format: PackageFormat) -> PathBuf {
    dist.join("repo").join(format.to_string())
}

/// What `--repo` will publish for one package step: decided (and the key
/// checked) before any package is made, so a bad `--sign` costs nothing.
pub struct Publication {
    signer: Option<Signer>,
}

/// What this step publishes, signed by `key` (already checked to sign,
/// before any package is made) when `--sign` named one.
pub fn prepare(package: &Package, key: Option<&GpgKey>) -> Publication {
    let publishes =
        package.repo && matches!(package.format, PackageFormat::Rpm | PackageFormat::Deb);
    let signer = key.filter(|_| publishes).map(|key| Signer {
        fingerprint: key.fingerprint.clone(),
    });
    Publication { signer }
}

/// Lay out the repository of this format from the packages `made` (or, when
/// `--repo` was not asked for, remove a stale one: its packages were just
/// replaced). Returns the repository's directory when one was made.
pub fn make(
    contents: &Contents<'_>,
    publication: &Publication,
    made: &[PathBuf],
) -> anyhow::Result<Option<PathBuf>> {
    let package = contents.package;
    if !matches!(package.format, PackageFormat::Rpm | PackageFormat::Deb) {
        return Ok(None);
    }
    let final_dir = repository_dir(&package.dist, package.format);
    let parent = final_dir.parent().context("repository without a parent")?;
    if !package.repo {
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir)
                .with_context(|| format!("cannot remove {}", final_dir.display()))?;
        }
        return Ok(None);
    }
    let signer = publication.signer.as_ref();
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    remove_leftovers(parent, package.format)?;
    let partial = parent.join(format!(
        ".{}.partial-{}",
        package.format,
        std::process::id()
    ));
    fs::create_dir(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let base_url = match &package.repo_url {
        Some(url) => url.clone(),
        None => file_url(&fs::canonicalize(parent)?),
    };
    let result = match package.format {
        PackageFormat::Rpm => rpm_repository(contents, made, &partial, &base_url, signer),
        _ => deb_repository(contents, made, &partial, &base_url, signer),
    };
    if let Err(error) = result {
        let _ = fs::remove_dir_all(&partial);
        return Err(error);
    }
    replace_directory(&partial, &final_dir)?;
    eprintln!(
        "{:>12} {} repository {} ({})",
        "Published",
        package.format,
        final_dir.display(),
        if signer.is_some() {
            "signed"
        } else {
            "unsigned"
        }
    );
    Ok(Some(final_dir))
}

/// Temporary and retired directories an interrupted run left in `repo/`.
fn remove_leftovers(parent: &Path, format: PackageFormat) -> anyhow::Result<()> {
    let prefixes = [format!(".{format}.partial-"), format!(".{format}.old-")];
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|prefix| name.starts_with(prefix)) {
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Put `new` where `old` is: the old one is renamed aside first, so the
/// name holds either a whole repository or none, never a part of one.
fn replace_directory(new: &Path, old: &Path) -> anyhow::Result<()> {
    if old.exists() {
        let name = old.file_name().unwrap_or_default().to_string_lossy();
        let retired = old.with_file_name(format!(".{name}.old-{}", std::process::id()));
        fs::rename(old, &retired)
            .with_context(|| format!("cannot move {} aside", old.display()))?;
        fs::rename(new, old).with_context(|| format!("cannot write {}", old.display()))?;
        fs::remove_dir_all(&retired)
            .with_context(|| format!("cannot remove {}", retired.display()))?;
    } else {
        fs::rename(new, old).with_context(|| format!("cannot write {}", old.display()))?;
    }
    Ok(())
}

/// Copy the packages into the repository with their time set to the epoch:
/// createrepo_c records a package file's mtime in primary.xml.
fn copy_packages(packages: &[&PathBuf], dir: &Path, epoch: u64) -> anyhow::Result<()> {
    let time = filetime::FileTime::from_unix_time(epoch as i64, 0);
    for path in packages {
        let name = path.file_name().context("a package without a name")?;
        let copy = dir.join(name);
        fs::copy(path, &copy)
            .with_context(|| format!("cannot copy {} to {}", path.display(), copy.display()))?;
        filetime::set_file_mtime(&copy, time)
            .with_context(|| format!("cannot set the time of {}", copy.display()))?;
    }
    Ok(())
}

fn rpm_repository(
    contents: &Contents<'_>,
    made: &[PathBuf],
    dir: &Path,
    base_url: &str,
    signer: Option<&Signer>,
) -> anyhow::Result<()> {
    let package = contents.package;
    let binaries: Vec<&PathBuf> = made
        .iter()
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".rpm") && !name.ends_with(".src.rpm")
        })
        .collect();
    if binaries.is_empty() {
        bail!("no binary RPM to publish in {}", dir.display());
    }
    copy_packages(&binaries, dir, contents.epoch)?;
    createrepo(dir, contents.epoch)
        .checked_output()
        .context("createrepo_c makes the RPM repository's metadata: install createrepo-c (`cargo xtask doctor --fix`)")?;
    let key_name = format!("RPM-GPG-KEY-{}", package.name);
    if let Some(signer) = signer {
        let repomd = dir.join("repodata").join("repomd.xml");
        signer.detach_sign(&repomd, &dir.join("repodata").join("repomd.xml.asc"))?;
        files::write_atomically(&dir.join(&key_name), &signer.public_key(true)?)?;
    }
    let text = yum_repo_text(
        package,
        &format!("{base_url}/rpm"),
        signer.is_some().then_some(key_name.as_str()),
    );
    files::write_atomically(&dir.join(format!("{}.repo", package.name)), text.as_bytes())
}

/// createrepo_c with every time taken from SOURCE_DATE_EPOCH and no sqlite
/// databases (dnf reads the XML; the databases are not reproducible).
fn createrepo(dir: &Path, epoch: u64) -> Command {
    Command::new("createrepo_c")
        .args(["--revision", &epoch.to_string()])
        .args([
            "--set-timestamp-to-revision",
            "--no-database",
            "--workers",
            "1",
        ])
        .arg(dir)
}

/// The `.repo` file for /etc/yum.repos.d; `key_name` when the metadata is
/// signed (the packages are signed by the same `--sign`).
pub fn yum_repo_text(package: &Package, base_url: &str, key_name: Option<&str>) -> String {
    let mut text = format!(
        "[{name}]\nname={name} {version}-{release} (bdr-dist)\nbaseurl={base_url}\nenabled=1\n",
        name = package.name,
        version = package.version,
        release = package.release,
    );
    match key_name {
        Some(key) => text.push_str(&format!(
            "gpgcheck=1\nrepo_gpgcheck=1\ngpgkey={base_url}/{key}\n"
        )),
        None => text.push_str("# unsigned: made without --sign\ngpgcheck=0\nrepo_gpgcheck=0\n"),
    }
    text
}

fn deb_repository(
    contents: &Contents<'_>,
    made: &[PathBuf],
    dir: &Path,
    base_url: &str,
    signer: Option<&Signer>,
) -> anyhow::Result<()> {
    let package = contents.package;
    let debs: Vec<&PathBuf> = made
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    if debs.is_empty() {
        bail!("no .deb to publish in {}", dir.display());
    }
    copy_packages(&debs, dir, contents.epoch)?;
    // `./name.deb` file names: a flat repository, as `deb URL ./` reads it.
    let scan = Command::new("dpkg-scanpackages")
        .args([".", "/dev/null"])
        .cwd(dir)
        .checked_output()
        .context(
            "dpkg-scanpackages writes the apt index: install dpkg-dev (`cargo xtask doctor --fix`)",
        )?;
    let packages = scan.stdout;
    // No name and no time in the gzip header, as every archive here.
    let mut gzip = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    gzip.write_all(&packages)?;
    let packages_gz = gzip.finish()?;
    files::write_atomically(&dir.join("Packages"), &packages)?;
    files::write_atomically(&dir.join("Packages.gz"), &packages_gz)?;
    let indexes = [
        IndexFile::of("Packages", &packages),
        IndexFile::of("Packages.gz", &packages_gz),
    ];
    let release = release_text(
        package,
        contents.epoch,
        debian_arch(&contents.arch),
        &indexes,
    );
    let release_path = dir.join("Release");
    files::write_atomically(&release_path, release.as_bytes())?;
    let keyring = format!("{}.gpg", package.name);
    if let Some(signer) = signer {
        signer.clearsign(&release_path, &dir.join("InRelease"))?;
        signer.detach_sign(&release_path, &dir.join("Release.gpg"))?;
        files::write_atomically(&dir.join(&keyring), &signer.public_key(false)?)?;
    }
    let sources = apt_sources_text(
        &format!("{base_url}/deb"),
        signer
            .is_some()
            .then(|| format!("/etc/apt/keyrings/{keyring}"))
            .as_deref(),
    );
    files::write_atomically(
        &dir.join(format!("{}.sources", package.name)),
        sources.as_bytes(),
    )
}

/// One index file as `Release` lists it.
pub struct IndexFile {
    pub name: &'static str,
    pub sha256: String,
    pub size: usize,
}

impl IndexFile {
    fn of(name: &'static str, bytes: &[u8]) -> IndexFile {
        use sha2::Digest;
        IndexFile {
            name,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            size: bytes.len(),
        }
    }
}

/// The flat repository's `Release`: dated by SOURCE_DATE_EPOCH, with the
/// SHA256 of each index (apt refuses MD5 and SHA1 alone). Suite and
/// Codename stay the same from release to release: apt stops to ask when
/// they change.
pub fn release_text(package: &Package, epoch: u64, arch: &str, indexes: &[IndexFile]) -> String {
    let (date, _) = dates(epoch);
    let date = date.replace(" +0000", " UTC");
    let mut text = format!(
        "Origin: bdr-dist\nLabel: {name}\nSuite: stable\nCodename: {name}\n\
         Version: {version}-{release}\nDate: {date}\nArchitectures: {arch}\n\
         Description: {summary}\nSHA256:\n",
        name = package.name,
        version = package.version,
        release = package.release,
        summary = package.summary,
    );
    for index in indexes {
        text.push_str(&format!(
            " {} {:>16} {}\n",
            index.sha256, index.size, index.name
        ));
    }
    text
}

/// A deb822 source for /etc/apt/sources.list.d; without a keyring, the
/// repository is unsigned and apt must be told to trust it.
pub fn apt_sources_text(url: &str, keyring: Option<&str>) -> String {
    let trust = match keyring {
        Some(path) => format!("Signed-By: {path}\n"),
        None => "# unsigned: made without --sign\nTrusted: yes\n".to_owned(),
    };
    format!("Types: deb\nURIs: {url}\nSuites: ./\n{trust}")
}

/// `file:///a/b%20c` for `/a/b c`.
fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("file://");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// One GnuPG secret key, by fingerprint, from the caller's `GNUPGHOME` (or
/// ~/.gnupg): small gpg calls that sign files and export the public key.
/// Nothing of the secret key passes through this process.
struct Signer {
    fingerprint: String,
}

impl Signer {
    fn gpg(&self) -> Command {
        sign::gnupg("gpg").args(["--batch", "--no-tty", "--yes"])
    }

    fn signing(&self) -> Command {
        self.gpg()
            .args(["--local-user", &self.fingerprint, "--digest-algo", "SHA256"])
    }

    /// A detached, armored signature of `input` in `output`.
    fn detach_sign(&self, input: &Path, output: &Path) -> anyhow::Result<()> {
        self.signing()
            .args(["--armor", "--detach-sign", "--output"])
            .arg(output)
            .arg(input)
            .checked_output()
            .with_context(|| format!("cannot sign {}", input.display()))?;
        Ok(())
    }

    /// `input` clearsigned into `output` (apt's InRelease).
    fn clearsign(&self, input: &Path, output: &Path) -> anyhow::Result<()> {
        self.signing()
            .args(["--clearsign", "--output"])
            .arg(output)
            .arg(input)
            .checked_output()
            .with_context(|| format!("cannot sign {}", input.display()))?;
        Ok(())
    }

    /// The public key, armored (`RPM-GPG-KEY-*`) or binary (apt's keyring).
    fn public_key(&self, armor: bool) -> anyhow::Result<Vec<u8>> {
        sign::public_key(&self.fingerprint, armor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::fixture;

    #[test]
    fn yum_repo_files_signed_and_unsigned() {
        fixture(|contents| {
            let signed = yum_repo_text(
                contents.package,
                "https://packages.example.com/repo/rpm",
                Some("RPM-GPG-KEY-postgresql15-pglogical"),
            );
            expect_test::expect![[r#"
                [postgresql15-pglogical]
                name=postgresql15-pglogical 15.18-1 (bdr-dist)
                baseurl=https://packages.example.com/repo/rpm
                enabled=1
                gpgcheck=1
                repo_gpgcheck=1
                gpgkey=https://packages.example.com/repo/rpm/RPM-GPG-KEY-postgresql15-pglogical
            "#]]
            .assert_eq(&signed);
            let unsigned = yum_repo_text(contents.package, "file:///srv/repo/rpm", None);
            assert!(
                unsigned.contains("gpgcheck=0\nrepo_gpgcheck=0\n"),
                "{unsigned}"
            );
            assert!(!unsigned.contains("gpgkey="), "{unsigned}");
        });
    }

    #[test]
    fn release_is_dated_by_the_epoch_and_lists_sha256() {
        fixture(|contents| {
            let indexes = [
                IndexFile::of("Packages", b"Package: a\n"),
                IndexFile::of("Packages.gz", b"x"),
            ];
            let text = release_text(contents.package, 1_700_000_000, "amd64", &indexes);
            expect_test::expect![[r#"
                Origin: bdr-dist
                Label: postgresql15-pglogical
                Suite: stable
                Codename: postgresql15-pglogical
                Version: 15.18-1
                Date: Tue, 14 Nov 2023 22:13:20 UTC
                Architectures: amd64
                Description: PostgreSQL 15 with pglogical 2
                SHA256:
                 fa07db62b48a0f9848538c437cfa8aef500bd6570830a5c508d87eeb99d1a50d               11 Packages
                 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881                1 Packages.gz
            "#]]
            .assert_eq(&text);
        });
    }

    #[test]
    fn apt_sources_name_the_keyring_or_trust() {
        assert_eq!(
            apt_sources_text("http://h/repo/deb", Some("/etc/apt/keyrings/p.gpg")),
            "Types: deb\nURIs: http://h/repo/deb\nSuites: ./\nSigned-By: /etc/apt/keyrings/p.gpg\n"
        );
        assert!(apt_sources_text("http://h/repo/deb", None).ends_with("Trusted: yes\n"));
    }

    #[test]
    fn file_urls_escape_what_a_url_cannot_hold() {
        assert_eq!(
            file_url(Path::new("/srv/my dist/repo")),
            "file:///srv/my%20dist/repo"
        );
    }

    #[test]
    fn a_new_repository_replaces_the_old_whole_and_leftovers_go() {
        let parent = crate::files::tempdir().unwrap();
        let final_dir = repository_dir(parent.path(), PackageFormat::Rpm);
        fs::create_dir_all(&final_dir).unwrap();
        fs::write(final_dir.join("old.rpm"), "old").unwrap();
        let repo = final_dir.parent().unwrap();
        // What an interrupted run leaves: a partial repository, a retired one.
        fs::create_dir(repo.join(".rpm.partial-1")).unwrap();
        fs::create_dir(repo.join(".rpm.old-1")).unwrap();
        fs::create_dir(repo.join(".deb.partial-1")).unwrap();
        remove_leftovers(repo, PackageFormat::Rpm).unwrap();
        let new = repo.join(".rpm.partial-2");
        fs::create_dir(&new).unwrap();
        fs::write(new.join("new.rpm"), "new").unwrap();
        replace_directory(&new, &final_dir).unwrap();
        let mut names: Vec<String> = fs::read_dir(repo)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".deb.partial-1", "rpm"],
            "only the other format's is left"
        );
        assert!(final_dir.join("new.rpm").is_file());
        assert!(!final_dir.join("old.rpm").exists());
    }
}
