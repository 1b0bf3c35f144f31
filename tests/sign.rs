//! Signed releases, checked with each world's own verifier (`rpm -K` against
//! a throwaway rpm database, `gpgv`, `signify -Vz`, `sha256sum -c`) and with
//! `cargo xtask verify`; a flipped byte fails both. Keys are throwaway: a
//! temporary GNUPGHOME (its agent killed at the end, whatever happens) and a
//! signify pair in a temporary directory, never under target/. Needs the
//! stand-in sources that `cargo xtask test` prepares.

mod support;

use support::gnupg::GnupgHome;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use xtask::{
    input::platform::PackageFormat,
    package::{
        self,
        sign::{self, Signer},
    },
};

/// `cargo xtask` with the test's GNUPGHOME.
fn xtask(gnupg: &GnupgHome, target: &Path, args: &[&str]) -> Output {
    support::xtask_with_env(target, args, &[("GNUPGHOME", gnupg.path())])
}

fn package_into(gnupg: &GnupgHome, out: &Path, sign: Option<&str>) -> Output {
    let target = support::e2e_target();
    support::standin_stage(&target);
    let out = out.display().to_string();
    let mut args = vec![
        "package",
        "--set",
        "pg15-pglogical",
        "--format",
        "rpm,deb,tarball",
        "--out",
        &out,
    ];
    if let Some(key) = sign {
        args.extend(["--sign", key]);
    }
    xtask(gnupg, &target, &args)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Flip one byte of a file; returns what to write back.
fn flip(path: &Path, at: usize) -> Vec<u8> {
    let original = fs::read(path).unwrap();
    let mut bytes = original.clone();
    bytes[at] ^= 0x01;
    fs::write(path, bytes).unwrap();
    original
}

/// The line `verify` printed for `name`.
fn verify_line(output: &Output, name: &str) -> String {
    support::stderr(output)
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name}:\n{}", support::stderr(output)))
        .to_owned()
}

/// `rpm -K` against a throwaway database holding only `key`.
fn rpm_checksig(key: &Path, rpm: &Path, db: &Path) -> Output {
    fs::create_dir_all(db).unwrap();
    let import = Command::new("rpm")
        .arg("--dbpath")
        .arg(db)
        .arg("--import")
        .arg(key)
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", support::stderr(&import));
    Command::new("rpm")
        .arg("--dbpath")
        .arg(db)
        .arg("-K")
        .arg(rpm)
        .output()
        .unwrap()
}

#[test]
fn signed_packages_pass_rpm_gpgv_and_verify_and_a_flipped_byte_fails_them() {
    let gnupg = GnupgHome::new();
    let fingerprint = gnupg.generate("bdr-dist test <test@example.invalid>");
    let work = xtask::files::tempdir().unwrap();
    let (unsigned, signed) = (work.path().join("unsigned"), work.path().join("signed"));
    assert!(package_into(&gnupg, &unsigned, None).status.success());
    let output = package_into(&gnupg, &signed, Some("test@example.invalid"));
    assert!(output.status.success());

    // Signing adds the key and the checksums' signature, and changes only
    // the RPMs' signature headers: every other artifact is byte-identical.
    let key_name = "RPM-GPG-KEY-postgresql15-pglogical";
    let mut expected = names(&unsigned);
    expected.extend([key_name.to_owned(), "SHA256SUMS.asc".to_owned()]);
    expected.sort();
    assert_eq!(names(&signed), expected);
    let mut rpms = Vec::new();
    for name in names(&unsigned) {
        let (before, after) = (
            fs::read(unsigned.join(&name)).unwrap(),
            fs::read(signed.join(&name)).unwrap(),
        );
        if name.ends_with(".rpm") {
            assert_ne!(before, after, "{name} is signed");
            let start = sign::rpm_main_header_offset(&before).unwrap();
            assert_eq!(sign::rpm_main_header_offset(&after).unwrap(), start);
            assert!(
                before[start..] == after[start..],
                "{name}: main header and payload differ"
            );
            rpms.push(name);
        } else if name.ends_with(".spdx.json") {
            // The SBOM describes the bytes as shipped: the signed RPMs'
            // digests (verify's sbom check below proves it matches them).
            assert_ne!(before, after, "{name} records the signed RPMs");
        } else if name != "SHA256SUMS" {
            assert!(
                before == after,
                "{name} differs between signed and unsigned"
            );
        }
    }
    assert_eq!(rpms.len(), 8, "7 binary RPMs and the SRPM: {rpms:?}");
    assert!(rpms.iter().any(|name| name.ends_with(".src.rpm")));
    let sums = fs::read_to_string(signed.join("SHA256SUMS")).unwrap();
    assert!(sums.contains(&format!("  {key_name}\n")), "{sums}");
    assert!(!sums.contains("SHA256SUMS.asc"), "{sums}");

    // The native verifiers.
    let key = signed.join(key_name);
    for (index, rpm) in rpms.iter().enumerate() {
        let checked = rpm_checksig(
            &key,
            &signed.join(rpm),
            &work.path().join(format!("db{index}")),
        );
        assert!(checked.status.success(), "{}", support::stderr(&checked));
        let stdout = String::from_utf8_lossy(&checked.stdout);
        assert!(stdout.ends_with(": digests signatures OK\n"), "{stdout}");
    }
    let keyring = work.path().join("keyring.gpg");
    gnupg.run(
        "gpg",
        &[
            "--batch",
            "--dearmor",
            "--output",
            &keyring.display().to_string(),
            &key.display().to_string(),
        ],
    );
    let gpgv = |dir: &Path| {
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(dir.join("SHA256SUMS.asc"))
            .arg(dir.join("SHA256SUMS"))
            .output()
            .unwrap()
    };
    assert!(gpgv(&signed).status.success());
    let sha256sum = || {
        Command::new("sha256sum")
            .args(["-c", "--quiet", "SHA256SUMS"])
            .current_dir(&signed)
            .output()
            .unwrap()
    };
    assert!(sha256sum().status.success());

    // verify, with the key given, and with the key from the directory.
    let target = support::e2e_target();
    let signed_dir = signed.display().to_string();
    let keyring_flag = keyring.display().to_string();
    let verify = |with_keyring: bool| {
        let mut args = vec!["verify", signed_dir.as_str()];
        if with_keyring {
            args.extend(["--keyring", keyring_flag.as_str()]);
        }
        xtask(&gnupg, &target, &args)
    };
    let output = verify(true);
    assert!(output.status.success());
    assert!(
        verify_line(&output, "SHA256SUMS").contains(&format!("gpg passed (by {})", fingerprint)),
        "{}",
        support::stderr(&output)
    );
    for rpm in &rpms {
        assert!(verify_line(&output, rpm).contains("sha256 passed, rpm passed"));
    }
    let output = verify(false);
    assert!(output.status.success());
    assert!(support::stderr(&output)
        .contains("proves they are intact and signed by it, not who made them"));
    // An unsigned dist verifies too, and says what is not signed.
    let output = xtask(
        &gnupg,
        &target,
        &["verify", &unsigned.display().to_string()],
    );
    assert!(output.status.success());
    assert!(verify_line(&output, "SHA256SUMS").contains("gpg not signed"));
    assert!(verify_line(&output, &rpms[0]).contains("rpm not signed"));
    // But checked against the publisher's key, a release whose signatures
    // were stripped (SHA256SUMS rewritten to match) fails.
    let output = xtask(
        &gnupg,
        &target,
        &[
            "verify",
            &unsigned.display().to_string(),
            "--keyring",
            &keyring_flag,
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        support::stderr(&output)
    );
    assert!(verify_line(&output, "SHA256SUMS").contains("gpg FAILED"));
    assert!(verify_line(&output, &rpms[0]).contains("rpm FAILED"));

    // One flipped byte of each kind: the native verifier and verify fail,
    // verify on a line naming the file.
    let deb = names(&signed)
        .into_iter()
        .find(|name| name.ends_with("_amd64.deb"))
        .unwrap();
    let rpm = rpms
        .iter()
        .find(|name| name.contains("-libs-"))
        .unwrap()
        .clone();
    for name in [rpm.as_str(), deb.as_str(), "SHA256SUMS"] {
        let path = signed.join(name);
        let size = fs::metadata(&path).unwrap().len() as usize;
        let original = flip(&path, size / 2);
        let native_failed = if name.ends_with(".rpm") {
            let checked = rpm_checksig(&key, &path, &work.path().join("db-tampered"));
            !checked.status.success() && String::from_utf8_lossy(&checked.stdout).contains("NOT OK")
        } else if name == "SHA256SUMS" {
            !gpgv(&signed).status.success()
        } else {
            let checked = sha256sum();
            !checked.status.success()
                && String::from_utf8_lossy(&checked.stdout).contains(&format!("{name}: FAILED"))
        };
        let output = verify(true);
        fs::write(&path, original).unwrap();
        assert!(
            native_failed,
            "the native verifier took a flipped byte in {name}"
        );
        assert_eq!(output.status.code(), Some(1), "{name}");
        let line = verify_line(&output, name);
        assert!(line.contains("FAILED"), "{line}");
        if name == "SHA256SUMS" {
            assert!(line.contains("gpg FAILED"), "{line}");
        }
        if name.ends_with(".rpm") {
            assert!(
                line.contains("sha256 FAILED") && line.contains("rpm FAILED"),
                "{line}"
            );
        }
    }
    // Restored, it passes again; a file nobody listed fails.
    assert!(verify(true).status.success());
    fs::write(signed.join("extra.txt"), "not shipped\n").unwrap();
    let output = verify(true);
    assert_eq!(output.status.code(), Some(1));
    assert!(verify_line(&output, "extra.txt").contains("not listed in SHA256SUMS"));

    // The unsigned release, with the server RPM copied over the libs RPM's
    // name and SHA256SUMS and the SBOM rewritten to match: every checksum
    // passes, the RPM's own header does not.
    let server = rpms.iter().find(|name| name.contains("-server-")).unwrap();
    fs::copy(unsigned.join(server), unsigned.join(&rpm)).unwrap();
    rewrite_sbom_checksum(&unsigned, &rpm);
    package::write_checksums(&unsigned).unwrap();
    let output = xtask(
        &gnupg,
        &target,
        &["verify", &unsigned.display().to_string()],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        support::stderr(&output)
    );
    let line = verify_line(&output, &rpm);
    assert!(
        line.contains("sha256 passed")
            && line.contains("sbom passed")
            && line.contains("identity FAILED")
            && line.contains(&format!("whose file is named {server}")),
        "{line}"
    );
    assert!(
        support::stderr(&output).contains("proves nothing against whoever can write the directory")
    );
}

/// The SBOM's SHA256 of `name` set to the file's, as whoever replaced it
/// would.
fn rewrite_sbom_checksum(dir: &Path, name: &str) {
    let sha256 = xtask::files::sha256_file(&dir.join(name)).unwrap();
    let sbom = names(dir)
        .into_iter()
        .find(|file| file.ends_with(".spdx.json"))
        .unwrap();
    let path = dir.join(sbom);
    let mut document: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let mut rewritten = false;
    for package in document["packages"].as_array_mut().unwrap() {
        if package["packageFileName"] == name {
            for checksum in package["checksums"].as_array_mut().unwrap() {
                if checksum["algorithm"] == "SHA256" {
                    checksum["checksumValue"] = sha256.clone().into();
                    rewritten = true;
                }
            }
        }
    }
    assert!(rewritten, "no SBOM entry for {name}");
    fs::write(&path, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
}

/// A key that cannot sign stops `package` before anything is made: exit
/// status 2, the key named, no output directory.
#[test]
fn a_key_that_cannot_sign_stops_before_anything_is_written() {
    let gnupg = GnupgHome::new();
    // A key is there, just not the one asked for.
    gnupg.generate("bdr-dist test <test@example.invalid>");
    let work = xtask::files::tempdir().unwrap();
    let out = work.path().join("dist");
    let output = package_into(&gnupg, &out, Some("nobody@example.invalid"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        support::stderr(&output).contains(
            "gpg key `nobody@example.invalid`: no secret key in the keyring of GNUPGHOME="
        ),
        "{}",
        support::stderr(&output)
    );
    assert!(!out.exists(), "nothing is written");

    let target = support::e2e_target();
    let missing = work.path().join("missing.sec").display().to_string();
    let out_flag = out.display().to_string();
    let output = xtask(
        &gnupg,
        &target,
        &[
            "package",
            "--set",
            "pg15-pglogical",
            "--format",
            "tarball",
            "--out",
            &out_flag,
            "--signify-key",
            &missing,
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        support::stderr(&output).contains(&format!("signify secret key {missing}: cannot read it"))
    );
    assert!(!out.exists(), "nothing is written");

    let output = xtask(&gnupg, &target, &["verify", &out_flag]);
    assert_eq!(output.status.code(), Some(2));
    assert!(support::stderr(&output).contains("is not a directory"));
    fs::create_dir_all(&out).unwrap();
    let output = xtask(&gnupg, &target, &["verify", &out_flag]);
    assert_eq!(output.status.code(), Some(2));
    assert!(support::stderr(&output).contains("has no SHA256SUMS"));
}

/// A gzip'd tar that starts as an OpenBSD package does (`+CONTENTS` with
/// its `@name`, then `+DESC`), followed by 300 kB of noise.
fn openbsd_stand_in(name: &str) -> Vec<u8> {
    let noise = Command::new("head")
        .args(["-c", "300000", "/dev/urandom"])
        .output()
        .unwrap()
        .stdout;
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (entry, body) in [
        ("+CONTENTS", format!("@name {name}\n").into_bytes()),
        ("+DESC", b"stand-in\n".to_vec()),
        ("noise", noise),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, entry, &body[..]).unwrap();
    }
    archive.into_inner().unwrap().finish().unwrap()
}

/// A Linux stage cannot make an OpenBSD package (tests/package.rs), so the
/// signify signing is proven on the signing function itself, with a real
/// gzip'd tar standing in for the package (its `+CONTENTS` first, naming
/// it, as `verify`'s identity check reads): `signify -Vz` and `verify` take
/// it, and a flipped byte fails both.
#[test]
fn a_signify_signed_package_passes_signify_and_verify_and_a_flipped_byte_fails_them() {
    let keys = xtask::files::tempdir().unwrap();
    let secret = keys.path().join("release.sec");
    let public = keys.path().join("release.pub");
    let made = Command::new("signify-openbsd")
        .args(["-G", "-n", "-c", "bdr-dist test key", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .expect("signify-openbsd is installed (cargo xtask test installs it)");
    assert!(made.status.success(), "{}", support::stderr(&made));

    let dist = xtask::files::tempdir().unwrap();
    let package_path: PathBuf = dist.path().join("postgresql15-pglogical-15.18.tgz");
    let unsigned = openbsd_stand_in("postgresql15-pglogical-15.18");
    fs::write(&package_path, &unsigned).unwrap();

    let key = sign::check_signify_key(&secret).unwrap();
    let signer = Signer {
        gpg: None,
        signify: Some(key.clone()),
    };
    let (keys_written, signed) = signer
        .sign_artifacts(
            PackageFormat::Openbsd,
            std::slice::from_ref(&package_path),
            dist.path(),
            "postgresql15-pglogical",
        )
        .unwrap();
    let shipped_key = dist.path().join("postgresql15-pglogical.signify.pub");
    assert_eq!(keys_written, std::slice::from_ref(&shipped_key));
    assert_eq!(fs::read(&shipped_key).unwrap(), fs::read(&public).unwrap());
    assert_eq!(signed[&package_path].key, format!("signify:{}", key.number));
    package::write_checksums(dist.path()).unwrap();
    assert_eq!(
        names(dist.path()),
        [
            "SHA256SUMS",
            "postgresql15-pglogical-15.18.tgz",
            "postgresql15-pglogical.signify.pub"
        ],
        "no temporary file is left"
    );

    // Still the same gzip stream, with the signature in its header.
    let bytes = fs::read(&package_path).unwrap();
    assert!(sign::has_signify_signature(&bytes));
    assert!(!sign::has_signify_signature(&unsigned));
    let signify = || {
        Command::new("signify-openbsd")
            .args(["-V", "-z", "-p"])
            .arg(&public)
            .arg("-x")
            .arg(&package_path)
            .args(["-m", "/dev/null"])
            .output()
            .unwrap()
    };
    assert!(
        signify().status.success(),
        "{}",
        support::stderr(&signify())
    );
    let target = support::e2e_target();
    let dir = dist.path().display().to_string();
    let public_flag = public.display().to_string();
    let verify = || support::xtask(&target, &["verify", &dir, "--signify-pub", &public_flag]);
    let output = verify();
    assert!(output.status.success());
    assert!(verify_line(&output, "postgresql15-pglogical-15.18.tgz")
        .contains("sha256 passed, signify passed"));

    let original = flip(&package_path, bytes.len() - 100);
    let native = signify();
    let output = verify();
    fs::write(&package_path, original).unwrap();
    assert!(!native.status.success(), "signify took a flipped byte");
    assert_eq!(output.status.code(), Some(1));
    let line = verify_line(&output, "postgresql15-pglogical-15.18.tgz");
    assert!(
        line.contains("sha256 FAILED") && line.contains("signify FAILED"),
        "{line}"
    );

    // Another key's public half does not pass it.
    let other = keys.path().join("other.pub");
    let made = Command::new("signify-openbsd")
        .args(["-G", "-n", "-p"])
        .arg(&other)
        .arg("-s")
        .arg(keys.path().join("other.sec"))
        .output()
        .unwrap();
    assert!(made.status.success());
    let output = support::xtask(
        &target,
        &[
            "verify",
            &dir,
            "--signify-pub",
            &other.display().to_string(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(verify_line(&output, "postgresql15-pglogical-15.18.tgz").contains("signify FAILED"));
}
