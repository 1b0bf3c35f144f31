//! Packages of the stand-in set, checked with the tools of each package world:
//! `rpm`, `dpkg-deb`, `tar`, `sha256sum`. Needs the stand-in sources that
//! `cargo xtask test` prepares.

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Mutex,
};

const NAME: &str = "postgresql15-pglogical";
const VERSION: &str = "15.18-1";
const SUBPACKAGES: &[&str] = &["", "-libs", "-server", "-contrib", "-devel", "-pglogical"];

/// Package runs share each target's dist/ and rpmbuild/: one at a time.
static PACKAGING: Mutex<()> = Mutex::new(());

fn package(target: &Path) -> PathBuf {
    support::standin_stage(target);
    let output = support::xtask(
        target,
        &[
            "package",
            "--set",
            "pg15-pglogical",
            "--format",
            "rpm,tarball,deb",
        ],
    );
    assert!(output.status.success(), "packaging failed");
    target.join("sets/pg15-pglogical/dist")
}

fn run(program: &str, args: &[&str], dir: Option<&Path>) -> String {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        support::stderr(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn rpm_path(dist: &Path, suffix: &str) -> String {
    dist.join(format!("{NAME}{suffix}-{VERSION}.x86_64.rpm"))
        .display()
        .to_string()
}

fn rpm_query(dist: &Path, suffix: &str, what: &str) -> String {
    run("rpm", &["-qp", what, &rpm_path(dist, suffix)], None)
}

/// The names of an ELF file's sections, as readelf lists them.
fn elf_sections(path: &Path) -> String {
    run("readelf", &["-S", "-W", &path.display().to_string()], None)
}

/// An ELF file's GNU build-id, in hex.
fn build_id(path: &Path) -> String {
    let notes = run("readelf", &["-n", &path.display().to_string()], None);
    notes
        .lines()
        .find_map(|line| line.split_once("Build ID: "))
        .map(|(_, id)| id.trim().to_owned())
        .unwrap_or_else(|| panic!("{} has no build-id", path.display()))
}

/// The names of an ELF file's sections, from `readelf -S -W`'s table.
fn section_names(path: &Path) -> Vec<String> {
    elf_sections(path)
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix('['))
        .filter_map(|rest| rest.split_once(']'))
        .filter_map(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every ELF file under `root` (regular files with the ELF magic), but the
/// debug files under `usr/lib/debug`.
fn shipped_elf_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() && path != root.join("usr/lib/debug") {
                pending.push(path);
            } else if meta.is_file() {
                let bytes = fs::read(&path).unwrap();
                if bytes.starts_with(b"\x7fELF") {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    found
}

/// What the RPMs and .debs promise, judged by binutils' readelf on their
/// contents unpacked into `root`: every shipped ELF file stripped (no
/// `.symtab`, no `.debug_*`) with a GNU build-id, and its symbols (its
/// `.symtab` and `.debug_info`, and its build-id) at
/// `usr/lib/debug/.build-id/xx/yyyy.debug`, through the debug package's
/// links. Returns how many files it checked.
fn assert_stripped_with_their_symbols_in_debug_packages(root: &Path) -> usize {
    let files = shipped_elf_files(root);
    for file in &files {
        let sections = section_names(file);
        assert!(
            !sections
                .iter()
                .any(|name| name == ".symtab" || name.starts_with(".debug_")),
            "{} is not stripped: {sections:?}",
            file.display()
        );
        let id = build_id(file);
        let symbols = root.join(format!(
            "usr/lib/debug/.build-id/{}/{}.debug",
            &id[..2],
            &id[2..]
        ));
        assert!(
            symbols.is_file(),
            "{} has no {}",
            file.display(),
            symbols.display()
        );
        let debug_sections = section_names(&symbols);
        for wanted in [".symtab", ".debug_info"] {
            assert!(
                debug_sections.iter().any(|name| name == wanted),
                "{} holds no {wanted}: {debug_sections:?}",
                symbols.display()
            );
        }
        assert_eq!(build_id(&symbols), id, "{}", symbols.display());
    }
    files.len()
}

#[test]
fn rpm_set_has_the_pgdg_shape_and_installs_into_a_root() {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let dist = package(&support::e2e_target());
    for suffix in SUBPACKAGES {
        let info = rpm_query(&dist, suffix, "--info");
        assert!(
            info.contains(&format!("Name        : {NAME}{suffix}\n")),
            "{info}"
        );
        assert!(
            info.contains("Version     : 15.18") && info.contains("Release     : 1"),
            "{info}"
        );
        let compressor = rpm_query(&dist, suffix, "--queryformat=%{PAYLOADCOMPRESSOR}");
        assert_eq!(compressor, "gzip", "EL7 cannot read other payloads");
    }

    let server = rpm_query(&dist, "-server", "--list");
    for file in [
        "/usr/pgsql-15/bin/postgres",
        "/usr/pgsql-15/bin/initdb",
        "/usr/lib/systemd/system/postgresql15-pglogical.service",
    ] {
        assert!(
            server.lines().any(|line| line == file),
            "{file} not in -server:\n{server}"
        );
    }
    assert!(
        !server.contains("/bin/psql\n"),
        "psql belongs to the main package"
    );
    assert!(rpm_query(&dist, "", "--list")
        .lines()
        .any(|l| l == "/usr/pgsql-15/bin/psql"));
    assert!(rpm_query(&dist, "-libs", "--list")
        .lines()
        .any(|l| l.starts_with("/usr/pgsql-15/lib/libpq.so.5")));
    assert!(rpm_query(&dist, "-devel", "--list")
        .lines()
        .any(|l| l == "/usr/pgsql-15/bin/pg_config"));
    assert!(rpm_query(&dist, "-contrib", "--list")
        .lines()
        .any(|l| l == "/usr/pgsql-15/lib/btree_gist.so"));
    let plugin = rpm_query(&dist, "-pglogical", "--list");
    assert!(
        plugin
            .lines()
            .any(|l| l == "/usr/pgsql-15/lib/pglogical.so"),
        "{plugin}"
    );
    assert!(
        plugin
            .lines()
            .any(|l| l == "/usr/pgsql-15/share/extension/pglogical.control"),
        "{plugin}"
    );

    let requires = rpm_query(&dist, "-server", "--requires");
    for sibling in ["", "-libs"] {
        let wanted = format!("{NAME}{sibling}");
        assert!(
            requires.lines().any(|line| line.starts_with(&wanted)
                && line.ends_with(&format!("= {VERSION}"))
                && !line[wanted.len()..].starts_with('-')),
            "-server must require {wanted} = {VERSION} exactly:\n{requires}"
        );
    }
    // Library dependencies come from rpmbuild's automatic requires.
    let client_requires = rpm_query(&dist, "", "--requires");
    for library in [
        "libc.so.6(GLIBC_",
        "libreadline.so.8()(64bit)",
        "libz.so.1()(64bit)",
    ] {
        assert!(
            client_requires.contains(library),
            "the main package must require {library}:\n{client_requires}"
        );
    }
    let plugin_requires = rpm_query(&dist, "-pglogical", "--requires");
    assert!(
        plugin_requires.contains(&format!("{NAME}-server"))
            && plugin_requires.contains(&format!("{NAME}-contrib")),
        "{plugin_requires}"
    );
    assert!(rpm_query(&dist, "-server", "--provides")
        .lines()
        .any(|l| l == "postgresql15-server = 15.18-1"));
    assert!(rpm_query(&dist, "", "--provides")
        .lines()
        .any(|l| l == "postgresql15 = 15.18-1"));
    let scripts = rpm_query(&dist, "-server", "--scripts");
    assert!(
        scripts.contains("preinstall scriptlet")
            && scripts.contains("useradd")
            && scripts.contains("groupadd"),
        "{scripts}"
    );
    assert!(
        scripts.contains("postinstall scriptlet") && scripts.contains("ldconfig"),
        "{scripts}"
    );
    assert!(rpm_query(&dist, "-libs", "--scripts").contains("ldconfig"));
    let config = rpm_query(&dist, "-server", "--configfiles");
    assert_eq!(config.trim(), "/etc/sysconfig/postgresql15-pglogical");
    let noreplace = rpm_query(
        &dist,
        "-server",
        "--queryformat=[%{FILENAMES} %{FILEFLAGS:fflags}\n]",
    );
    assert!(
        noreplace.contains("/etc/sysconfig/postgresql15-pglogical cn"),
        "%config(noreplace): {noreplace}"
    );

    // The whole set installs into a fresh root; base-system dependencies and
    // the scriptlets (which need a full system inside the root) are waived.
    let root = xtask::files::tempdir().unwrap();
    let root_arg = root.path().display().to_string();
    run("rpm", &["--root", &root_arg, "--initdb"], None);
    let rpms: Vec<String> = SUBPACKAGES
        .iter()
        .map(|suffix| rpm_path(&dist, suffix))
        .collect();
    let mut install = vec!["--root", &root_arg, "-i", "--nodeps", "--noscripts"];
    install.extend(rpms.iter().map(String::as_str));
    run("rpm", &install, None);
    let version = run(
        &format!("{root_arg}/usr/pgsql-15/bin/postgres"),
        &["--version"],
        None,
    );
    assert_eq!(version.trim(), "postgres (PostgreSQL) 15.18");
    assert!(root.path().join("usr/pgsql-15/lib/pglogical.so").is_file());

    // Shipped stripped, with their symbols in -debuginfo under the build-id:
    // every ELF file of every package (programs, libraries, modules).
    run(
        "rpm",
        &[
            "--root",
            &root_arg,
            "-i",
            "--nodeps",
            "--noscripts",
            &rpm_path(&dist, "-debuginfo"),
        ],
        None,
    );
    let checked = assert_stripped_with_their_symbols_in_debug_packages(root.path());
    assert!(checked > 100, "only {checked} ELF files in the RPMs");

    // The SRPM carries the spec that rebuilds the set, and both source tarballs.
    let srpm = dist
        .join(format!("{NAME}-{VERSION}.src.rpm"))
        .display()
        .to_string();
    let listed = run("rpm", &["-qpl", &srpm], None);
    for file in [
        format!("{NAME}.spec"),
        "postgresql-15.18.tar.bz2".into(),
        "pglogical-2.4.2.tar.gz".into(),
    ] {
        assert!(
            listed.lines().any(|l| l == file),
            "{file} not in the SRPM:\n{listed}"
        );
    }
}

#[test]
fn tarball_unpacks_anywhere_runs_and_its_checksums_verify() {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let dist = package(&support::e2e_target());
    let stem = format!("{NAME}-{VERSION}.linux-x86_64");
    let anywhere = xtask::files::tempdir().unwrap();
    run(
        "tar",
        &[
            "-xzf",
            &dist.join(format!("{stem}.tar.gz")).display().to_string(),
        ],
        Some(anywhere.path()),
    );
    let postgres = anywhere.path().join(&stem).join("bin/postgres");
    assert_eq!(
        run(&postgres.display().to_string(), &["--version"], None).trim(),
        "postgres (PostgreSQL) 15.18"
    );
    let listing = run(
        "tar",
        &[
            "-tvzf",
            &dist.join(format!("{stem}.tar.gz")).display().to_string(),
        ],
        None,
    );
    assert!(
        listing.lines().all(|line| line.contains(" 0/0 ")),
        "owner is 0/0 without names:\n{}",
        &listing[..500]
    );
    run("sha256sum", &["-c", "SHA256SUMS"], Some(&dist));
    let sums = fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    for artifact in [
        format!("{stem}.tar.gz"),
        format!("{stem}.manifest.json"),
        format!("{NAME}-server-{VERSION}.x86_64.rpm"),
    ] {
        assert!(
            sums.contains(&format!("  {artifact}\n")),
            "{artifact} not in SHA256SUMS"
        );
    }
    let manifest: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(dist.join(format!("{stem}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["set"], "pg15-pglogical");
    assert_eq!(
        manifest["sources"][0]["sha256"],
        "11df0df97fe3ea4ba9a791faaf39cee1d2fe571e78885b5b55d8517d27c323b4"
    );
    assert_eq!(manifest["sources"][1]["file"], "pglogical-2.4.2.tar.gz");
    let cc_version = run("cc", &["--version"], None);
    assert_eq!(manifest["tools"]["cc"]["program"], "cc");
    assert_eq!(
        manifest["tools"]["cc"]["version"].as_str().unwrap(),
        cc_version.lines().next().unwrap()
    );
    assert_eq!(manifest["tools"]["make"]["program"], "make");

    // What ships works: a cluster from the tarball, not the stage, replicates.
    let smoke = support::xtask(
        &support::e2e_target(),
        &[
            "smoke",
            "--set",
            "pg15-pglogical",
            "--from",
            "tarball",
            "--json",
        ],
    );
    assert!(smoke.status.success());
    let run = support::json(&smoke);
    assert!(run["cluster_dir"].as_str().is_some());
    support::assert_checks(&run, &support::PGLOGICAL_ALL_CHECKS);
}

#[test]
fn deb_packages_pass_dpkg_deb() {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let dist = package(&support::e2e_target());
    let deb = dist
        .join(format!("{NAME}-server_{VERSION}_amd64.deb"))
        .display()
        .to_string();
    let info = run("dpkg-deb", &["--info", &deb], None);
    assert!(
        info.contains(&format!("Package: {NAME}-server"))
            && info.contains(&format!("Version: {VERSION}")),
        "{info}"
    );
    // Siblings at this exact version, passwd (its postinst's useradd), then
    // the libraries' packages as dpkg-shlibdeps computes them from the ELF
    // files' NEEDED entries.
    assert!(
        info.contains(&format!(
            "Depends: {NAME} (= {VERSION}), {NAME}-libs (= {VERSION}), passwd, libc6 (>= "
        )),
        "{info}"
    );
    let clients = dist.join(format!("{NAME}_{VERSION}_amd64.deb"));
    let depends = run(
        "dpkg-deb",
        &["-f", &clients.display().to_string(), "Depends"],
        None,
    );
    for package in [
        "libc6 (>= ",
        "libreadline8 ",
        "zlib1g ",
        &format!("{NAME}-libs (= {VERSION})"),
    ] {
        assert!(
            depends.contains(package),
            "psql's package must depend on {package}: {depends}"
        );
    }
    assert!(
        info.contains("postinst") && info.contains("conffiles"),
        "{info}"
    );
    let contents = run("dpkg-deb", &["--contents", &deb], None);
    for file in [
        "usr/pgsql-15/bin/postgres\n",
        "usr/pgsql-15/bin/postgresql15-pglogical-setup\n",
        "usr/lib/tmpfiles.d/postgresql15-pglogical.conf\n",
        "usr/share/doc/postgresql15-pglogical-server/copyright\n",
        "usr/share/doc/postgresql15-pglogical-server/changelog.Debian.gz\n",
    ] {
        assert!(contents.contains(file), "{file} missing:\n{contents}");
    }

    // Every ELF file stripped, its symbols in -dbgsym under its build-id:
    // each package unpacked with its own -dbgsym alone, which must hold them.
    let mut checked = 0;
    let mut server = None;
    for suffix in SUBPACKAGES {
        let unpacked = xtask::files::tempdir().unwrap();
        for package in [format!("{NAME}{suffix}"), format!("{NAME}{suffix}-dbgsym")] {
            let file = dist.join(format!("{package}_{VERSION}_amd64.deb"));
            let into = unpacked.path().display().to_string();
            run(
                "dpkg-deb",
                &["-x", &file.display().to_string(), &into],
                None,
            );
        }
        checked += assert_stripped_with_their_symbols_in_debug_packages(unpacked.path());
        if *suffix == "-server" {
            server = Some(unpacked);
        }
    }
    assert!(checked > 100, "only {checked} ELF files in the .debs");
    let server = server.expect("a -server package");
    let postgres = server.path().join("usr/pgsql-15/bin/postgres");
    let version = run(&postgres.display().to_string(), &["--version"], None);
    assert_eq!(
        version.trim(),
        "postgres (PostgreSQL) 15.18",
        "the stripped server runs"
    );
}

/// `/bin/false` bound over eu-strip: it runs, and fails.
const EU_STRIP_FAILS: &str = r#"mount --bind /bin/false "$(command -v eu-strip)""#;

/// eu-strip hidden by an overlay whose upper layer holds a whiteout for it:
/// the shell finds no such program, as on the host of issue 22, which had no
/// elfutils. `$1` is a scratch directory for the overlay's layers.
const EU_STRIP_MISSING: &str = r#"bin=$(dirname "$(command -v eu-strip)") && mkdir "$1/upper" "$1/work" && mknod "$1/upper/eu-strip" c 0 0 && mount -t overlay overlay -o "lowerdir=$bin,upperdir=$1/upper,workdir=$1/work" "$bin""#;

/// The tool, in a private mount namespace set up by `setup` (a shell
/// command; `$1` is `scratch`), so the host's eu-strip is untouched.
fn xtask_with_mounts(setup: &str, scratch: &Path, target: &Path, args: &[&str]) -> Output {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(format!("{setup} && shift && exec \"$@\""))
        .arg("sh")
        .arg(scratch)
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .args(args);
    support::xtask_environment(&mut command, target);
    let output = command.output().unwrap();
    eprintln!(
        "$ unshare ... cargo xtask {}\n{}",
        args.join(" "),
        support::stderr(&output)
    );
    output
}

/// The regular files of a directory, by name.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A missing eu-strip (issue 22's host, which had no elfutils) is a missing
/// prerequisite: `package --no-install` refuses before anything runs, naming
/// it and its package, and the release directory stays as it was. And what
/// the RPMs promise is checked on the RPMs rpmbuild wrote, whatever its
/// tools said: with eu-strip failing, find-debuginfo's parallel jobs give up
/// and it exits 0 (debugedit 5.0), so rpmbuild succeeds with every binary
/// unstripped and an empty -debuginfo. The step fails naming the package,
/// the file and the broken promise; no RPM is left in the release
/// directory, whose SHA256SUMS and SBOM (an earlier run's) are rewritten
/// without them; the step is not stamped. With eu-strip back, the next run
/// packages again and succeeds. (rpmbuild output that says a tool is
/// missing, the incident's own words, fails the step too: see
/// `package::rpm`'s unit tests, since the prerequisite check now comes first.)
#[test]
fn rpms_that_break_their_promise_fail_the_step_and_are_not_published() {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let target = support::e2e_target();
    let dist = package(&target);
    // A release directory as a whole run left it: every format, SHA256SUMS.
    let out = xtask::files::tempdir().unwrap();
    for name in file_names(&dist) {
        fs::copy(dist.join(&name), out.path().join(&name)).unwrap();
    }
    let out_arg = out.path().display().to_string();
    let args = [
        "package",
        "--set",
        "pg15-pglogical",
        "--format",
        "rpm",
        "--out",
        &out_arg,
    ];
    let stamps = target.join("sets/pg15-pglogical/stamps");
    let sums = || fs::read_to_string(out.path().join("SHA256SUMS")).unwrap();
    // find-debuginfo runs rpm's %_smp_build_ncpus jobs; with one, a failed
    // eu-strip ends it, and rpmbuild, with an error.
    let jobs: u32 = run("rpm", &["--eval", "%{_smp_build_ncpus}"], None)
        .trim()
        .parse()
        .unwrap();
    let before = file_names(out.path());
    let scratch = xtask::files::tempdir().unwrap();
    let mut refusing = args.to_vec();
    refusing.push("--no-install");
    let output = xtask_with_mounts(EU_STRIP_MISSING, scratch.path(), &target, &refusing);
    let stderr = support::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "missing build prerequisites: eu-strip (find-debuginfo strips with it; without it \
             the RPMs ship unstripped) (eu-strip not found); run `cargo xtask doctor --fix`"
        ) && stderr.contains("elfutils"),
        "{stderr}"
    );
    assert!(!stderr.contains("Packaging"), "{stderr}");
    assert_eq!(
        file_names(out.path()),
        before,
        "the refusal changed the release"
    );

    {
        let scratch = xtask::files::tempdir().unwrap();
        let output = xtask_with_mounts(EU_STRIP_FAILS, scratch.path(), &target, &args);
        let stderr = support::stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        if jobs > 1 {
            for said in [
                format!("error: the RPMs rpmbuild wrote in {out_arg} are not kept"),
                format!("  {NAME}-debuginfo-{VERSION}.x86_64.rpm: a debug package with no .debug file"),
                format!("  {NAME}-{VERSION}.x86_64.rpm: /usr/pgsql-15/bin/psql: not stripped (it has .symtab and "),
                "; no symbols at /usr/lib/debug/.build-id/".to_owned(),
                "`cargo xtask doctor --format rpm` checks for it".to_owned(),
            ] {
                assert!(stderr.contains(&said), "{said:?} not said:\n{stderr}");
            }
        } else {
            assert!(stderr.contains("(%install)"), "{stderr}");
        }
        let left = file_names(out.path());
        assert!(
            !left.iter().any(|name| name.ends_with(".rpm")),
            "RPMs left: {left:?}"
        );
        assert!(!sums().contains(".rpm\n"), "{}", sums());
        assert!(sums().contains(&format!("  {NAME}-server_{VERSION}_amd64.deb\n")));
        run(
            "sha256sum",
            &["-c", "--strict", "SHA256SUMS"],
            Some(out.path()),
        );
        let sbom = fs::read_to_string(
            out.path()
                .join(format!("{NAME}-{VERSION}.linux-x86_64.spdx.json")),
        )
        .unwrap();
        assert!(!sbom.contains(".rpm\""), "the SBOM names a withdrawn RPM");
        assert!(!stamps.join("package-rpm").exists(), "the step is stamped");
        assert!(!stamps.join("package-rpm.artifacts").exists());
    }

    let output = support::xtask(&target, &args);
    let stderr = support::stderr(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Packaging rpm packages of"), "{stderr}");
    let rpms = file_names(out.path())
        .into_iter()
        .filter(|name| name.ends_with(".rpm"))
        .count();
    assert_eq!(
        rpms,
        SUBPACKAGES.len() + 2,
        "the packages, -debuginfo, the SRPM"
    );
    assert_eq!(sums().matches(".rpm\n").count(), rpms, "{}", sums());
    run(
        "sha256sum",
        &["-c", "--strict", "SHA256SUMS"],
        Some(out.path()),
    );
    assert!(stamps.join("package-rpm").exists());
}

/// What the RPMs are for: built on this Debian host, whose rpm defines no
/// dist, they carry no tag, and their manifest records the glibc they need
/// (the highest `GLIBC_` version of their ELF files, as readelf reads it).
/// `--dist el8` is refused once they are made, naming the file that needs
/// the newer glibc, and leaves no RPM and no RPM manifest in the release
/// directory, whose SHA256SUMS is rewritten; `--dist el10` (glibc 2.39, newer
/// than any this host's 2.36 could need) puts the tag in every RPM's
/// release, header and file name, the manifest says so, and `verify` holds
/// them to it.
#[test]
fn rpms_carry_their_dist_tag_and_refuse_a_release_with_an_older_glibc() {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let target = support::e2e_target();
    let dist = package(&target);
    let read_manifest = |dir: &Path| -> serde_json::Value {
        let name = format!("{NAME}-{VERSION}.linux-x86_64.rpm.manifest.json");
        serde_json::from_str(&fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let manifest = read_manifest(&dist);
    let record = &manifest["rpm"];
    assert_eq!(record["dist_tag"], serde_json::Value::Null, "{record}");
    assert_eq!(record["dist_tag_from"], "host");
    let floor = &record["glibc_floor"];
    let (version, symbol, file) = (
        floor["version"].as_str().unwrap(),
        floor["symbol"].as_str().unwrap(),
        floor["file"].as_str().unwrap(),
    );
    eprintln!("the RPMs need glibc {version} ({symbol} in {file})");
    assert_eq!(symbol, format!("GLIBC_{version}"));
    let needs = run(
        "readelf",
        &[
            "-V",
            &target
                .join("sets/pg15-pglogical/stage")
                .join(file)
                .display()
                .to_string(),
        ],
        None,
    );
    assert!(needs.contains(&format!("Name: {symbol} ")), "{needs}");

    let out = xtask::files::tempdir().unwrap();
    for name in file_names(&dist) {
        fs::copy(dist.join(&name), out.path().join(&name)).unwrap();
    }
    let out_arg = out.path().display().to_string();
    let package_for = |tag: &str| {
        support::xtask(
            &target,
            &[
                "package",
                "--set",
                "pg15-pglogical",
                "--format",
                "rpm",
                "--out",
                &out_arg,
                "--dist",
                tag,
            ],
        )
    };
    let refused = package_for("el8");
    let stderr = support::stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    let said =
        format!("the RPMs need glibc {version} ({symbol} in {file}), but el8 has glibc 2.28");
    assert!(stderr.contains(&said), "{said:?} not said:\n{stderr}");
    let left = file_names(out.path());
    assert!(
        !left
            .iter()
            .any(|name| name.ends_with(".rpm") || name.ends_with(".rpm.manifest.json")),
        "left: {left:?}"
    );
    let sums = fs::read_to_string(out.path().join("SHA256SUMS")).unwrap();
    assert!(!sums.contains(".rpm"), "{sums}");
    run(
        "sha256sum",
        &["-c", "--strict", "SHA256SUMS"],
        Some(out.path()),
    );

    let made = package_for("el10");
    assert!(made.status.success(), "{}", support::stderr(&made));
    let names = file_names(out.path());
    let rpms: Vec<&String> = names.iter().filter(|n| n.ends_with(".rpm")).collect();
    assert_eq!(rpms.len(), SUBPACKAGES.len() + 2, "{names:?}");
    for suffix in SUBPACKAGES.iter().chain(&["-debuginfo"]) {
        let name = format!("{NAME}{suffix}-{VERSION}.el10.x86_64.rpm");
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    let srpm = out.path().join(format!("{NAME}-{VERSION}.el10.src.rpm"));
    let server = out
        .path()
        .join(format!("{NAME}-server-{VERSION}.el10.x86_64.rpm"));
    for rpm in [&srpm, &server] {
        let said = run(
            "rpm",
            &[
                "-qp",
                "--qf",
                "%{RELEASE} %{DISTTAG}",
                &rpm.display().to_string(),
            ],
            None,
        );
        assert_eq!(said, "1.el10 el10");
    }
    let record = read_manifest(out.path())["rpm"].clone();
    assert_eq!(record["dist_tag"], "el10");
    assert_eq!(record["dist_tag_from"], "--dist");
    assert_eq!(record["dist_glibc"], "2.39");
    assert_eq!(record["glibc_floor"], *floor);
    let verified = support::xtask(&target, &["verify", &out_arg]);
    assert!(verified.status.success(), "{}", support::stderr(&verified));
}

/// rpmlint and lintian, the tools a distribution's review runs, find no
/// error in the RPMs and .debs; what they are told to overlook is in
/// packaging/, each with its reason.
#[test]
fn rpms_and_debs_pass_rpmlint_and_lintian() {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let target = support::e2e_target();
    package(&target);
    let output = support::xtask(&target, &["lint", "--set", "pg15-pglogical", "--json"]);
    let stderr = support::stderr(&output);
    assert!(output.status.success(), "lint failed:\n{stderr}");
    let reports = support::json(&output);
    let reports = reports.as_array().expect("one report per linter");
    let by_tool = |tool: &str| {
        reports
            .iter()
            .find(|report| report["tool"] == tool)
            .unwrap_or_else(|| panic!("no {tool} report:\n{stderr}"))
    };
    // 6 packages and -debuginfo, and the SRPM; 6 .debs and 6 -dbgsym.
    for (tool, packages) in [("rpmlint", 8), ("lintian", 12)] {
        let report = by_tool(tool);
        assert_eq!(report["packages"], packages, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
    }
    // The SRPM on its own, as a mock or Koji submission is judged: rpmlint
    // reads its spec too (SpecCheck), BuildRequires and %prep included.
    let srpm = target
        .join("sets/pg15-pglogical/dist")
        .join(format!("{NAME}-{VERSION}.src.rpm"));
    let report =
        xtask::package::lint::rpmlint(&[srpm], &xtask::project_root().join("packaging")).unwrap();
    assert_eq!(
        report.errors,
        0,
        "{}",
        xtask::package::lint::describe(&report)
    );
}

/// The linters' verdict is the command's: a .deb with no copyright file
/// and no changelog, as dpkg-deb builds it from a bare tree, fails `lint`
/// with its errors counted by tag.
#[test]
fn lint_fails_on_a_package_a_review_would_refuse() {
    let target = xtask::files::tempdir().unwrap();
    let dist = target.path().join("sets/pg15-pglogical/dist");
    let tree = target.path().join("tree");
    fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    fs::create_dir_all(tree.join("usr/share/bare")).unwrap();
    fs::create_dir_all(&dist).unwrap();
    fs::write(tree.join("usr/share/bare/README"), "bare\n").unwrap();
    fs::write(
        tree.join("DEBIAN/control"),
        "Package: bare\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Release Engineering <release-engineering@example.com>\n\
         Section: misc\nPriority: optional\nDescription: a package without its papers\n nothing else.\n",
    )
    .unwrap();
    run(
        "dpkg-deb",
        &[
            "--root-owner-group",
            "--build",
            &tree.display().to_string(),
            &dist.join("bare_1.0-1_all.deb").display().to_string(),
        ],
        None,
    );
    let output = support::xtask(
        target.path(),
        &["lint", "--set", "pg15-pglogical", "--json"],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        support::stderr(&output)
    );
    assert!(support::stderr(&output).contains("lint error(s)"));
    let reports = support::json(&output);
    let lintian = &reports[0];
    assert_eq!(lintian["tool"], "lintian");
    assert!(lintian["errors"].as_u64().unwrap() >= 2, "{lintian}");
    for tag in ["E: no-copyright-file", "E: no-changelog"] {
        assert!(
            lintian["tags"][tag].as_u64().is_some_and(|n| n >= 1),
            "{tag}: {lintian}"
        );
    }
}

/// A Linux stage holds Linux binaries: an OpenBSD package of it would install
/// nowhere, so it is refused before anything is written.
#[test]
fn an_openbsd_package_of_a_linux_stage_is_refused() {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let target = support::e2e_target();
    let dist = package(&target);
    let listing = || {
        let mut names: Vec<String> = fs::read_dir(&dist)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let output = support::xtask(
        &target,
        &["package", "--set", "pg15-pglogical", "--format", "openbsd"],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        support::stderr(&output)
    );
    let stderr = support::stderr(&output);
    assert!(
        stderr.contains("cannot make openbsd packages from the stage of `pg15-pglogical`: it was built for `linux`, and openbsd packages carry openbsd binaries"),
        "{stderr}"
    );
    assert_eq!(listing(), before, "nothing is written");
}

/// A copy of the RPMs of the shared dist/, made while no other test packages.
fn rpms_copy(into: &Path) -> Vec<String> {
    let _one_at_a_time = PACKAGING.lock().unwrap_or_else(|p| p.into_inner());
    let dist = package(&support::e2e_target());
    let mut names = Vec::new();
    for entry in fs::read_dir(&dist).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".rpm") {
            fs::copy(&path, into.join(&name)).unwrap();
            names.push(name);
        }
    }
    names.sort();
    names
}

/// The suite's second build of PostgreSQL: the shipped SRPM rebuilt by
/// rpmbuild in a fresh HOME and `_topdir`, at another path, as a build farm
/// would, makes every binary RPM byte for byte. So the build leaves no trace
/// of its path or environment in what it makes, and anyone can confirm a
/// release from its source.
#[test]
fn the_srpm_rebuilds_elsewhere_into_the_very_same_rpms() {
    let release = xtask::files::tempdir().unwrap();
    let names = rpms_copy(release.path());
    let binaries = names.iter().filter(|n| !n.ends_with(".src.rpm")).count();
    assert_eq!(binaries, SUBPACKAGES.len() + 1, "{names:?}");
    let target = support::e2e_target();
    let output = support::xtask(
        &target,
        &[
            "verify-rebuild",
            "--set",
            "pg15-pglogical",
            "--json",
            &release.path().display().to_string(),
        ],
    );
    let stderr = support::stderr(&output);
    assert!(output.status.success(), "{stderr}");
    let report = support::json(&output);
    let verdicts = report["artifacts"].as_array().unwrap();
    assert_eq!(verdicts.len(), binaries);
    for verdict in verdicts {
        assert_eq!(verdict["identical"], true, "{verdict}");
        assert_eq!(verdict["signed"], false, "{verdict}");
    }
    assert!(
        !target
            .join("rebuild")
            .join(format!("{NAME}-{VERSION}"))
            .exists(),
        "the scratch directory is removed"
    );
}

/// What tells a different rebuild apart: the first file that differs, and
/// RPMs made on one side only.
#[test]
fn a_differing_rpm_is_named_with_its_first_differing_file() {
    let (shipped, rebuilt) = (
        xtask::files::tempdir().unwrap(),
        xtask::files::tempdir().unwrap(),
    );
    let names = rpms_copy(shipped.path());
    let libs = format!("{NAME}-libs-{VERSION}.x86_64.rpm");
    let contrib = format!("{NAME}-contrib-{VERSION}.x86_64.rpm");
    // The rebuild "made" the contrib package's bytes under the libs name,
    // the libs package unchanged under its own, and no other.
    fs::copy(shipped.path().join(&contrib), rebuilt.path().join(&libs)).unwrap();
    fs::copy(shipped.path().join(&contrib), rebuilt.path().join(&contrib)).unwrap();
    let verdicts = xtask::package::rpm::rebuild::compare(shipped.path(), rebuilt.path()).unwrap();
    let binaries: Vec<&String> = names.iter().filter(|n| !n.ends_with(".src.rpm")).collect();
    assert_eq!(verdicts.len(), binaries.len());
    for verdict in &verdicts {
        if verdict.name == contrib {
            assert!(verdict.identical, "{verdict:?}");
        } else if verdict.name == libs {
            assert!(!verdict.identical);
            let difference = verdict.difference.as_deref().unwrap();
            assert!(difference.starts_with("file /"), "{difference}");
        } else {
            assert!(!verdict.identical);
            assert_eq!(
                verdict.difference.as_deref(),
                Some("the rebuild did not make it")
            );
        }
    }
    // The last byte of the payload changed: neither the file list nor the
    // header differs, the bytes do.
    let mut bytes = fs::read(shipped.path().join(&contrib)).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(rebuilt.path().join(&contrib), &bytes).unwrap();
    let verdicts = xtask::package::rpm::rebuild::compare(shipped.path(), rebuilt.path()).unwrap();
    let verdict = verdicts.iter().find(|v| v.name == contrib).unwrap();
    assert!(!verdict.identical, "{verdict:?}");
    assert_eq!(
        verdict.difference.as_deref(),
        Some("the bytes (rpm shows no file or header tag that differs)")
    );
}
