//! `cargo xtask verify` checks what each package says it is, not only its
//! bytes: small RPMs (rpmbuild), .debs (dpkg-deb) and an OpenBSD-style
//! package made here, one copied over another's file name or of another
//! release, with `SHA256SUMS` rewritten to match, fail on a line naming the
//! file. And a release with no signature says that it proves nothing.
//! (tests/sign.rs swaps two RPMs of the real stand-in release.)

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// An empty noarch RPM `<name>-<version>-<release>.noarch.rpm` in `dir`.
fn rpm(dir: &Path, name: &str, version: &str, release: &str) -> PathBuf {
    let top = xtask::files::tempdir().unwrap();
    let spec = top.path().join("package.spec");
    fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: test\n\
             License: MIT\nBuildArch: noarch\n%description\ntest\n%files\n"
        ),
    )
    .unwrap();
    let output = Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.path().display()))
        .arg(&spec)
        .env("HOME", top.path())
        .output()
        .expect("rpmbuild is installed (cargo xtask test installs it)");
    assert!(output.status.success(), "{}", support::stderr(&output));
    let file = format!("{name}-{version}-{release}.noarch.rpm");
    let path = dir.join(&file);
    fs::copy(top.path().join("RPMS/noarch").join(&file), &path).unwrap();
    path
}

/// A .deb `<package>_<version>_all.deb` in `dir`, made by dpkg-deb (an xz
/// control archive, where ours is gzip).
fn deb(dir: &Path, package: &str, version: &str) -> PathBuf {
    let root = xtask::files::tempdir().unwrap();
    fs::create_dir(root.path().join("DEBIAN")).unwrap();
    fs::write(
        root.path().join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: test <test@example.invalid>\nDescription: test\n"
        ),
    )
    .unwrap();
    let path = dir.join(format!("{package}_{version}_all.deb"));
    let output = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(root.path())
        .arg(&path)
        .output()
        .expect("dpkg-deb is installed");
    assert!(output.status.success(), "{}", support::stderr(&output));
    path
}

/// A gzip'd tar whose first entry is a `+CONTENTS` naming `name`, as an
/// OpenBSD package starts.
fn openbsd_package(path: &Path, name: &str) {
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (entry, body) in [
        ("+CONTENTS", format!("@name {name}\n@comment test\n")),
        ("+DESC", "test\n".to_owned()),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, entry, body.as_bytes())
            .unwrap();
    }
    fs::write(path, archive.into_inner().unwrap().finish().unwrap()).unwrap();
}

/// The manifest of the release `package` `version`-`release`, as the
/// tarball's step writes it (only the fields verify reads matter).
fn manifest(dir: &Path, package: &str, version: &str, release: &str) {
    let manifest = serde_json::json!({
        "set": "t",
        "platform": "linux",
        "package": package,
        "version": version,
        "release": release,
    });
    fs::write(
        dir.join(format!(
            "{package}-{version}-{release}.linux-x86_64.manifest.json"
        )),
        manifest.to_string(),
    )
    .unwrap();
}

/// `SHA256SUMS` rewritten over what the directory now holds, as whoever
/// swapped a file would.
fn rewrite_checksums(dir: &Path) {
    xtask::package::write_checksums(dir).unwrap();
}

fn verify(dir: &Path, extra: &[&str]) -> Output {
    let target = xtask::files::tempdir().unwrap();
    let mut args = vec!["verify", dir.to_str().unwrap()];
    args.extend(extra);
    support::xtask(target.path(), &args)
}

/// The line `verify` printed for `name`.
fn line_of(output: &Output, name: &str) -> String {
    support::stderr(output)
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name}:\n{}", support::stderr(output)))
        .to_owned()
}

#[test]
fn an_rpm_copied_over_another_rpms_name_fails_identity() {
    let dir = xtask::files::tempdir().unwrap();
    let main = rpm(dir.path(), "pkg", "1.0", "1");
    let libs = rpm(dir.path(), "pkg-libs", "1.0", "1");
    manifest(dir.path(), "pkg", "1.0", "1");
    rewrite_checksums(dir.path());
    // The control: the release as made passes, identity included.
    let output = verify(dir.path(), &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::stderr(&output)
    );
    assert!(line_of(&output, "pkg-1.0-1.noarch.rpm").contains("identity passed"));

    fs::copy(&libs, &main).unwrap();
    rewrite_checksums(dir.path());
    let output = verify(dir.path(), &[]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        support::stderr(&output)
    );
    let line = line_of(&output, "pkg-1.0-1.noarch.rpm");
    assert!(
        line.contains("sha256 passed")
            && line.contains("identity FAILED")
            && line.contains("the package is pkg-libs 1.0-1 noarch")
            && line.contains("pkg-libs-1.0-1.noarch.rpm"),
        "{line}"
    );
    assert!(line_of(&output, "pkg-libs-1.0-1.noarch.rpm").contains("identity passed"));
}

#[test]
fn a_deb_copied_over_another_debs_name_fails_identity() {
    let dir = xtask::files::tempdir().unwrap();
    let main = deb(dir.path(), "pkg", "1.0-1");
    let server = deb(dir.path(), "pkg-server", "1.0-1");
    manifest(dir.path(), "pkg", "1.0", "1");
    rewrite_checksums(dir.path());
    assert_eq!(verify(dir.path(), &[]).status.code(), Some(0));

    fs::copy(&server, &main).unwrap();
    rewrite_checksums(dir.path());
    let output = verify(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let line = line_of(&output, "pkg_1.0-1_all.deb");
    assert!(
        line.contains("identity FAILED") && line.contains("pkg-server_1.0-1_all.deb"),
        "{line}"
    );
}

#[test]
fn a_package_of_another_release_under_its_own_name_fails_against_the_manifest() {
    // An older, say vulnerable, build slipped in under its true name.
    let dir = xtask::files::tempdir().unwrap();
    rpm(dir.path(), "pkg", "1.0", "2");
    rpm(dir.path(), "pkg-libs", "0.9", "1");
    deb(dir.path(), "pkg", "1.0-1");
    manifest(dir.path(), "pkg", "1.0", "2");
    rewrite_checksums(dir.path());
    let output = verify(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(line_of(&output, "pkg-1.0-2.noarch.rpm").contains("identity passed"));
    for name in ["pkg-libs-0.9-1.noarch.rpm", "pkg_1.0-1_all.deb"] {
        let line = line_of(&output, name);
        assert!(
            line.contains("identity FAILED")
                && line.contains("is not of the release")
                && line.contains("describes pkg 1.0-2"),
            "{line}"
        );
    }
    // Another set's package is not of the release either.
    fs::remove_file(dir.path().join("pkg-libs-0.9-1.noarch.rpm")).unwrap();
    fs::remove_file(dir.path().join("pkg_1.0-1_all.deb")).unwrap();
    rpm(dir.path(), "pkgx", "1.0", "2");
    rewrite_checksums(dir.path());
    let output = verify(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(line_of(&output, "pkgx-1.0-2.noarch.rpm").contains("is not of the release"));
}

#[test]
fn an_openbsd_package_whose_name_is_not_its_files_fails_identity() {
    let dir = xtask::files::tempdir().unwrap();
    openbsd_package(&dir.path().join("pkg-1.0.tgz"), "pkg-1.0");
    openbsd_package(&dir.path().join("pkg-1.1.tgz"), "pkg-1.0");
    manifest(dir.path(), "pkg", "1.0", "1");
    rewrite_checksums(dir.path());
    let output = verify(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(line_of(&output, "pkg-1.0.tgz").contains("identity passed"));
    let line = line_of(&output, "pkg-1.1.tgz");
    assert!(
        line.contains("identity FAILED") && line.contains("whose file is named pkg-1.0.tgz"),
        "{line}"
    );
}

#[test]
fn an_unsigned_release_says_it_proves_nothing_against_whoever_can_write_it() {
    let dir = xtask::files::tempdir().unwrap();
    rpm(dir.path(), "pkg", "1.0", "1");
    rewrite_checksums(dir.path());
    let output = verify(dir.path(), &["--json"]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = support::stderr(&output);
    assert!(
        stderr.contains("is signed: these checks show only that its files agree")
            && stderr.contains("proves nothing against whoever can write the directory")
            && stderr.contains("but nothing in it is signed"),
        "{stderr}"
    );
    // No manifest: said too, and the name is still checked against the file's.
    assert!(stderr.contains("no *.manifest.json"), "{stderr}");
    let report = support::json(&output);
    assert_eq!(report["signed"], false);
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|note| note.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|note| note.contains("proves nothing against whoever can write the directory")),
        "{notes:?}"
    );
}
