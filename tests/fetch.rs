//! Downloads against a real HTTP server on 127.0.0.1, with fixtures made here.

mod support;

use std::{collections::BTreeMap, fs, path::Path, process::Command};

use sha2::{Digest, Sha256};
use support::{HttpServer, Route};
use xtask::{
    fetch::{self, Cache},
    plan::Fetch,
    recipe::ArchiveKind,
};

fn fixture(size: usize) -> Vec<u8> {
    // Deterministic, incompressible enough bytes.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn source_for(urls: Vec<String>, sha256: Option<String>, commit: Option<String>) -> Fetch {
    Fetch {
        component: "src".into(),
        version: "1".into(),
        file: "src-1.tar.gz".into(),
        urls,
        sha256,
        commit,
        archive: ArchiveKind::TarGz,
    }
}

fn fetch_one(fetch: &Fetch, cache: &Cache) -> anyhow::Result<fetch::Fetched> {
    let sources = [fetch];
    fetch::fetch_all(&sources, cache, false).map(|mut all| all.remove(0))
}

/// Every file in the cache, relative to it.
fn cache_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in walk(dir) {
        files.push(entry.strip_prefix(dir).unwrap().display().to_string());
    }
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn plain_download_is_verified_and_cached_by_content() {
    let body = fixture(3 << 20);
    let server = HttpServer::start(BTreeMap::from([(
        "/a.tar.gz".into(),
        Route::File(body.clone()),
    )]));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let fetch = source_for(vec![server.url("/a.tar.gz")], Some(sha256(&body)), None);
    let fetched = fetch_one(&fetch, &cache).unwrap();
    assert!(!fetched.from_cache);
    assert_eq!(fetched.path, cache_dir.path().join(sha256(&body)));
    assert_eq!(fs::read(&fetched.path).unwrap(), body);
    assert_eq!(
        cache_files(cache_dir.path()),
        [sha256(&body), "receipts/src-1.tar.gz".to_owned()]
    );
}

#[test]
fn a_cut_transfer_resumes_with_a_range_request_for_the_rest_only() {
    let body = fixture(4 << 20);
    let half = body.len() / 2;
    let server = HttpServer::start(BTreeMap::from([(
        "/a.tar.gz".into(),
        Route::CutOnce(body.clone(), half),
    )]));
    let cache_dir = tempfile::tempdir().unwrap();
    let fetch = source_for(vec![server.url("/a.tar.gz")], Some(sha256(&body)), None);
    let fetched = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert_eq!(fs::read(&fetched.path).unwrap(), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
}

#[test]
fn a_404_on_the_first_url_falls_through_to_the_second() {
    let body = fixture(100_000);
    let server = HttpServer::start(BTreeMap::from([(
        "/good.tar.gz".into(),
        Route::File(body.clone()),
    )]));
    let cache_dir = tempfile::tempdir().unwrap();
    let fetch = source_for(
        vec![server.url("/missing.tar.gz"), server.url("/good.tar.gz")],
        Some(sha256(&body)),
        None,
    );
    let fetched = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert_eq!(fs::read(&fetched.path).unwrap(), body);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/missing.tar.gz", "/good.tar.gz"]);
}

#[test]
fn a_wrong_hash_is_an_error_naming_url_and_both_values_and_keeps_nothing() {
    let body = fixture(200_000);
    let server = HttpServer::start(BTreeMap::from([(
        "/a.tar.gz".into(),
        Route::File(body.clone()),
    )]));
    let cache_dir = tempfile::tempdir().unwrap();
    let wrong = sha256(b"something else");
    let fetch = source_for(vec![server.url("/a.tar.gz")], Some(wrong.clone()), None);
    let error = fetch_one(&fetch, &Cache::new(cache_dir.path()))
        .unwrap_err()
        .to_string();
    assert!(error.contains(&server.url("/a.tar.gz")), "{error}");
    assert!(
        error.contains(&wrong) && error.contains(&sha256(&body)),
        "{error}"
    );
    assert_eq!(
        cache_files(cache_dir.path()),
        Vec::<String>::new(),
        "the cache keeps nothing of a mismatch"
    );
}

#[test]
fn a_cached_source_is_served_with_the_server_gone() {
    let body = fixture(100_000);
    let server = HttpServer::start(BTreeMap::from([(
        "/a.tar.gz".into(),
        Route::File(body.clone()),
    )]));
    let cache_dir = tempfile::tempdir().unwrap();
    let fetch = source_for(vec![server.url("/a.tar.gz")], Some(sha256(&body)), None);
    fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    drop(server);
    let again = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert!(again.from_cache);
    assert_eq!(fs::read(&again.path).unwrap(), body);
}

#[test]
fn file_urls_and_plain_paths_work() {
    let dir = tempfile::tempdir().unwrap();
    let body = fixture(50_000);
    let file = dir.path().join("src-1.tar.gz");
    fs::write(&file, &body).unwrap();
    for url in [
        format!("file://{}", file.display()),
        file.display().to_string(),
    ] {
        let cache_dir = tempfile::tempdir().unwrap();
        let fetch = source_for(vec![url], Some(sha256(&body)), None);
        assert_eq!(
            fs::read(
                fetch_one(&fetch, &Cache::new(cache_dir.path()))
                    .unwrap()
                    .path
            )
            .unwrap(),
            body
        );
    }
}

#[test]
fn locked_refuses_a_source_without_a_pinned_sha256() {
    let fetch = source_for(
        vec!["/nonexistent".into()],
        None,
        Some("7e8d53388b86b3363ac3a28e0778bdb24dfc4c9d".into()),
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let sources = [&fetch];
    let error = fetch::fetch_all(&sources, &Cache::new(cache_dir.path()), true).unwrap_err();
    assert!(
        error.to_string().contains("--locked") && error.to_string().contains("src-1.tar.gz"),
        "{error}"
    );
}

/// A `git archive` tarball of a fresh repository, and its commit id.
fn git_archive(dir: &Path, content: &str) -> (Vec<u8>, String) {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@localhost")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@localhost")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    git(&["init", "-q"]);
    fs::write(dir.join("configure"), content).unwrap();
    git(&["add", "configure"]);
    git(&["commit", "-q", "-m", "c"]);
    let commit = String::from_utf8(git(&["rev-parse", "HEAD"]))
        .unwrap()
        .trim()
        .to_owned();
    let archive = git(&["archive", "--format=tar.gz", "--prefix=src-1/", "HEAD"]);
    (archive, commit)
}

#[test]
fn the_commit_pin_accepts_a_git_archive_of_that_commit_and_refuses_another() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (archive, commit) = git_archive(one.path(), "one");
    let (other_archive, other_commit) = git_archive(two.path(), "two");
    assert_ne!(commit, other_commit);
    let server = HttpServer::start(BTreeMap::from([
        ("/right.tar.gz".into(), Route::File(archive.clone())),
        ("/wrong.tar.gz".into(), Route::File(other_archive)),
    ]));

    let cache_dir = tempfile::tempdir().unwrap();
    let fetch = source_for(
        vec![server.url("/right.tar.gz")],
        None,
        Some(commit.clone()),
    );
    let fetched = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert_eq!(fetched.sha256, sha256(&archive));

    let cache_dir = tempfile::tempdir().unwrap();
    let fetch = source_for(
        vec![server.url("/wrong.tar.gz")],
        None,
        Some(commit.clone()),
    );
    let error = fetch_one(&fetch, &Cache::new(cache_dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&commit) && error.contains(&other_commit),
        "{error}"
    );
    assert_eq!(cache_files(cache_dir.path()), Vec::<String>::new());
}

/// A set of one source pinned by commit only, in a recipe directory of its own.
fn commit_pinned_set(dir: &Path, commit: &str) {
    let recipe = format!(
        r#"[set]
description = "commit-pinned"
platforms = ["linux"]
[set.package]
name = "src"
release = "1"
summary = "s"
license = "MIT"
url = "https://example.invalid/"
[set.smoke]
driver = "pglogical"
preload = "x"
extensions = []
[[component]]
name = "src"
version = "1"
role = "server"
[component.source]
file = "src-1.tar.gz"
urls = ["https://example.invalid/src-1.tar.gz"]
commit = "{commit}"
archive = "tar.gz"
[[component.step]]
kind = "configure"
run = ["./configure"]
"#
    );
    fs::write(dir.join("pinned.toml"), recipe).unwrap();
}

#[test]
fn pin_records_the_sha256_in_the_lock_file_and_locked_then_accepts_it() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let (recipes, mirror, target) = (
        work.path().join("recipes"),
        work.path().join("mirror"),
        work.path().join("target"),
    );
    for dir in [&repo, &recipes, &mirror] {
        fs::create_dir_all(dir).unwrap();
    }
    let (archive, commit) = git_archive(&repo, "pinned");
    fs::write(mirror.join("src-1.tar.gz"), &archive).unwrap();
    commit_pinned_set(&recipes, &commit);
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = ["fetch", "--set", "pinned", "--platform", "linux"]
            .map(String::from)
            .to_vec();
        args.extend([
            "--recipes".into(),
            recipes.display().to_string(),
            "--mirror".into(),
            mirror.display().to_string(),
        ]);
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    };
    let run = |extra: &[&'static str]| {
        let args = args(extra);
        support::xtask(
            &target,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    let refused = run(&["--locked"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "--locked accepted a source pinned by commit only"
    );
    assert!(support::stderr(&refused).contains("src-1.tar.gz"));

    assert!(run(&["--pin"]).status.success());
    let lock = fs::read_to_string(recipes.join("pinned.lock")).unwrap();
    assert!(
        lock.contains(&format!("\"src-1.tar.gz\" = \"{}\"", sha256(&archive))),
        "{lock}"
    );

    let locked = run(&["--locked"]);
    assert!(
        locked.status.success(),
        "--locked refused a source pinned in the lock file"
    );
}
