//! `package --repo --sign KEY`: the repositories, judged by the tools that
//! read them. apt installs the server from the flat repository over
//! loopback into a clean Debian root, checking the signature through
//! `signed-by=`, and refuses a changed index or a Release signed by another
//! key; gpgv checks the RPM repository's signed metadata, which names every
//! binary RPM by its sha256.
//!
//! Each test makes a throwaway key in a temporary GNUPGHOME (removed, its
//! gpg-agent stopped, whatever happens). Needs root for the apt test (chroot,
//! mount namespaces) and the stand-in stage that `cargo xtask test` builds.

mod support;

use std::{
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest, Sha256};
use support::{gnupg::GnupgHome, root::Root, HttpServer};

const NAME: &str = "postgresql15-pglogical";
const PREFIX: &str = "/usr/pgsql-15";

/// `cargo xtask package --repo --sign KEY` of the stand-in stage into `out`,
/// with the key from `gnupg` (and any extra arguments).
fn package(gnupg: &GnupgHome, key: &str, format: &str, out: &Path, extra: &[&str]) {
    let target = support::e2e_target();
    support::standin_stage(&target);
    let out = out.display().to_string();
    let mut args = vec![
        "package",
        "--set",
        "pg15-pglogical",
        "--format",
        format,
        "--repo",
        "--sign",
        key,
        "--out",
        &out,
    ];
    args.extend(extra);
    let output = support::xtask_with_env(&target, &args, &[("GNUPGHOME", gnupg.path())]);
    assert!(output.status.success(), "package --repo failed");
}

/// A copy of a repository directory (flat), to tamper with.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Flip one byte of the file, at the first occurrence of `at`.
fn change_one_byte(path: &Path, at: &str) {
    let mut bytes = fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let offset = text
        .find(at)
        .unwrap_or_else(|| panic!("no `{at}` in {}", path.display()));
    bytes[offset] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The root's apt source for the repository served at `port`, checked
/// with the keyring installed at /etc/apt/keyrings.
fn point_apt_at(root: &Root, port: u16) {
    let list = root.path().join("etc/apt/sources.list.d/bdr-dist.list");
    fs::write(
        list,
        format!("deb [signed-by=/etc/apt/keyrings/{NAME}.gpg] http://127.0.0.1:{port}/ ./\n"),
    )
    .unwrap();
}

/// `apt-get update` of the repository alone (the Debian archive left out),
/// from no cached index; its status and output.
fn update_repository_only(root: &Root) -> (bool, String) {
    let output = root.sh("rm -f /var/lib/apt/lists/127.0.0.1_*; \
         apt-get update -o Dir::Etc::SourceList=/etc/apt/sources.list.d/bdr-dist.list \
         -o Dir::Etc::SourceParts=- 2>&1");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn apt_installs_from_the_signed_flat_repository_and_refuses_tampering() {
    let gnupg = GnupgHome::new();
    let key = gnupg.generate("bdr-dist test <test@example.invalid>");
    let out = xtask::files::tempdir().unwrap();
    package(&gnupg, &key, "deb", out.path(), &[]);
    let repository = out.path().join("repo/deb");
    for file in [
        "Packages",
        "Packages.gz",
        "Release",
        "InRelease",
        "Release.gpg",
    ] {
        assert!(
            repository.join(file).is_file(),
            "no {file} in the repository"
        );
    }
    let packages = fs::read_to_string(repository.join("Packages")).unwrap();
    assert!(
        packages.contains(&format!("Package: {NAME}-server-dbgsym\n")),
        "the -dbgsym packages are in the index"
    );

    let root = Root::new();
    fs::create_dir_all(root.path().join("etc/apt/keyrings")).unwrap();
    fs::copy(
        repository.join(format!("{NAME}.gpg")),
        root.path().join(format!("etc/apt/keyrings/{NAME}.gpg")),
    )
    .unwrap();

    // The repository as made: apt checks InRelease with the keyring, then
    // installs the server, resolving its Debian dependencies from the archive.
    let server = HttpServer::serve_dir(&repository);
    point_apt_at(&root, server.port);
    let (updated, log) = update_repository_only(&root);
    assert!(updated, "apt-get update refused the repository:\n{log}");
    assert!(!log.contains("W:"), "apt warned:\n{log}");
    root.ok("apt-get update -q >/dev/null");
    root.ok(&format!(
        "apt-get install -y -q --no-install-recommends {NAME}-server"
    ));
    assert!(
        root.ok(&format!("apt-cache policy {NAME}-server"))
            .contains(&format!("http://127.0.0.1:{}", server.port)),
        "installed from the repository"
    );
    assert_eq!(
        root.ok(&format!("{PREFIX}/bin/postgres --version")).trim(),
        "postgres (PostgreSQL) 15.18"
    );
    drop(server);

    // One byte of Packages changed (and Packages.gz made from it, as a
    // consistent attacker would): the signed Release's hashes disagree.
    let tampered = xtask::files::tempdir().unwrap();
    copy_dir(&repository, tampered.path());
    change_one_byte(&tampered.path().join("Packages"), "Description: ");
    let changed = fs::read(tampered.path().join("Packages")).unwrap();
    fs::write(tampered.path().join("Packages.gz"), gzip(&changed)).unwrap();
    let server = HttpServer::serve_dir(tampered.path());
    point_apt_at(&root, server.port);
    let (updated, log) = update_repository_only(&root);
    assert!(
        !updated,
        "apt-get update accepted a changed Packages:\n{log}"
    );
    assert!(
        log.contains("Hash Sum mismatch") || log.contains("File has unexpected size"),
        "{log}"
    );
    drop(server);

    // Release signed by another key: apt refuses it, whatever it says.
    let other = gnupg.generate("someone else <other@example.invalid>");
    let forged = xtask::files::tempdir().unwrap();
    copy_dir(&repository, forged.path());
    let release = forged.path().join("Release");
    for (how, file) in [
        ("--clearsign", "InRelease"),
        ("--detach-sign", "Release.gpg"),
    ] {
        let output = gnupg.gpg(&[
            "--local-user",
            &other,
            "--armor",
            how,
            "--output",
            &forged.path().join(file).display().to_string(),
            &release.display().to_string(),
        ]);
        assert!(output.status.success(), "{}", support::stderr(&output));
    }
    let server = HttpServer::serve_dir(forged.path());
    point_apt_at(&root, server.port);
    let (updated, log) = update_repository_only(&root);
    assert!(
        !updated,
        "apt-get update accepted a Release signed by another key:\n{log}"
    );
    assert!(
        log.contains("NO_PUBKEY") || log.contains("is not signed"),
        "{log}"
    );
}

#[test]
fn rpm_repository_metadata_is_signed_and_names_every_package() {
    let gnupg = GnupgHome::new();
    let key = gnupg.generate("bdr-dist test <test@example.invalid>");
    let out = xtask::files::tempdir().unwrap();
    let url = "https://packages.example.invalid/bdr";
    package(&gnupg, &key, "rpm", out.path(), &["--repo-url", url]);
    let repository = out.path().join("repo/rpm");
    let repomd = repository.join("repodata/repomd.xml");

    // gpgv with nothing but the published key (dearmored into a keyring).
    let keyring = out.path().join("keyring.gpg");
    let dearmor = gnupg.gpg(&[
        "--dearmor",
        "--output",
        &keyring.display().to_string(),
        &repository
            .join(format!("RPM-GPG-KEY-{NAME}"))
            .display()
            .to_string(),
    ]);
    assert!(dearmor.status.success(), "{}", support::stderr(&dearmor));
    let gpgv = |data: &Path| {
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(repository.join("repodata/repomd.xml.asc"))
            .arg(data)
            .env("GNUPGHOME", gnupg.path())
            .output()
            .unwrap()
    };
    let verified = gpgv(&repomd);
    assert!(verified.status.success(), "{}", support::stderr(&verified));
    let tampered = out.path().join("repomd-tampered.xml");
    fs::copy(&repomd, &tampered).unwrap();
    change_one_byte(&tampered, "<revision>");
    let refused = gpgv(&tampered);
    assert!(
        !refused.status.success(),
        "gpgv accepted a changed repomd.xml"
    );

    // repomd.xml names primary.xml.gz by its sha256; primary names every
    // binary RPM (not the SRPM) by its own.
    let repomd_text = fs::read_to_string(&repomd).unwrap();
    let primary_block = repomd_text
        .split("<data type=\"primary\">")
        .nth(1)
        .expect("a primary entry in repomd.xml");
    let between = |text: &str, start: &str, end: &str| -> String {
        let from = text.find(start).unwrap() + start.len();
        text[from..from + text[from..].find(end).unwrap()].to_owned()
    };
    let primary_href = between(primary_block, "<location href=\"", "\"");
    let primary_sha256 = between(primary_block, "<checksum type=\"sha256\">", "<");
    let primary_bytes = fs::read(repository.join(&primary_href)).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&primary_bytes)), primary_sha256);
    let mut primary = String::new();
    flate2::read::GzDecoder::new(primary_bytes.as_slice())
        .read_to_string(&mut primary)
        .unwrap();
    let rpms: Vec<PathBuf> = fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".rpm"))
        .collect();
    let mut listed = 0;
    for rpm in &rpms {
        let name = rpm.file_name().unwrap().to_string_lossy().into_owned();
        let sha256 = hex::encode(Sha256::digest(fs::read(rpm).unwrap()));
        let entry = format!("<checksum type=\"sha256\" pkgid=\"YES\">{sha256}</checksum>");
        if name.ends_with(".src.rpm") {
            assert!(
                !primary.contains(&entry),
                "the SRPM is not in the repository"
            );
            assert!(!repository.join(&name).exists());
        } else {
            assert!(primary.contains(&entry), "{name} is not in primary.xml");
            assert!(primary.contains(&format!("<location href=\"{name}\"/>")));
            listed += 1;
        }
    }
    assert_eq!(listed, 7, "every binary RPM, -debuginfo included: {rpms:?}");
    assert_eq!(primary.matches("<package type=\"rpm\">").count(), listed);

    // The .repo file for /etc/yum.repos.d names the key, under --repo-url.
    let repo_file = fs::read_to_string(repository.join(format!("{NAME}.repo"))).unwrap();
    for line in [
        format!("[{NAME}]"),
        format!("baseurl={url}/rpm"),
        "gpgcheck=1".to_owned(),
        "repo_gpgcheck=1".to_owned(),
        format!("gpgkey={url}/rpm/RPM-GPG-KEY-{NAME}"),
    ] {
        assert!(
            repo_file.lines().any(|l| l == line),
            "no `{line}` in:\n{repo_file}"
        );
    }

    // Made afresh from the packages as they are now (signed again, so other
    // bytes: an RPM signature carries its time): a stale file goes, every
    // RPM is dist's, and the metadata follows them.
    fs::write(repository.join("stale.rpm"), b"left over").unwrap();
    let first = fs::read(&repomd).unwrap();
    package(
        &gnupg,
        &key,
        "rpm",
        out.path(),
        &["--repo-url", url, "--force"],
    );
    assert!(
        !repository.join("stale.rpm").exists(),
        "a stale file stayed"
    );
    let mut copies = 0;
    for entry in fs::read_dir(&repository).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        if path.extension().is_some_and(|ext| ext == "rpm") {
            assert_eq!(
                fs::read(&path).unwrap(),
                fs::read(out.path().join(&name)).unwrap()
            );
            copies += 1;
        }
    }
    assert_eq!(copies, 7);
    let again = fs::read(&repomd).unwrap();
    assert_ne!(
        again, first,
        "repomd.xml names the re-signed packages' metadata"
    );
    let href = String::from_utf8_lossy(&again)
        .split("<location href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(repository.join(&href).is_file(), "{href}");
}
