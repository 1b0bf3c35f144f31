//! Downloads against a real HTTP server on 127.0.0.1, with fixtures made
//! here: verified bytes, resumed transfers, and what an attacker or a broken
//! mirror serves (forged labels, other trees, bombs, stalls, floods).

mod support;

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};
use support::{HttpServer, Route};
use xtask::{
    input::recipe::{ArchiveKind, DEFAULT_MAX_DOWNLOAD, DEFAULT_MAX_UNPACKED},
    plan::Fetch,
    sources::fetch::{self, Cache, FetchOptions},
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

fn source_for(urls: Vec<String>, sha256: Option<String>, tree: Option<String>) -> Fetch {
    Fetch {
        component: "src".into(),
        version: "1".into(),
        file: "src-1.tar.gz".into(),
        urls,
        sha256,
        tree,
        commit: None,
        locked_sha256: None,
        archive: ArchiveKind::TarGz,
        max_download: DEFAULT_MAX_DOWNLOAD,
        max_unpacked: DEFAULT_MAX_UNPACKED,
    }
}

fn fetch_with(
    fetch: &Fetch,
    cache: &Cache,
    options: &FetchOptions,
) -> anyhow::Result<fetch::Fetched> {
    let sources = [fetch];
    fetch::fetch_all(&sources, cache, options).map(|mut all| all.remove(0))
}

fn fetch_one(fetch: &Fetch, cache: &Cache) -> anyhow::Result<fetch::Fetched> {
    fetch_with(fetch, cache, &FetchOptions::default())
}

/// Every file in the cache, relative to it; the per-URL lock files that
/// keep two runs off one partial download are not content.
fn cache_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in walk(dir) {
        if entry.extension().is_some_and(|ext| ext == "lock") {
            continue;
        }
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
    let cache_dir = xtask::files::tempdir().unwrap();
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
    let cache_dir = xtask::files::tempdir().unwrap();
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
    let cache_dir = xtask::files::tempdir().unwrap();
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
    let cache_dir = xtask::files::tempdir().unwrap();
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
    let cache_dir = xtask::files::tempdir().unwrap();
    let fetch = source_for(vec![server.url("/a.tar.gz")], Some(sha256(&body)), None);
    fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    drop(server);
    let again = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert!(again.from_cache);
    assert_eq!(fs::read(&again.path).unwrap(), body);
}

#[test]
fn file_urls_and_plain_paths_work() {
    let dir = xtask::files::tempdir().unwrap();
    let body = fixture(50_000);
    let file = dir.path().join("src-1.tar.gz");
    fs::write(&file, &body).unwrap();
    for url in [
        format!("file://{}", file.display()),
        file.display().to_string(),
    ] {
        let cache_dir = xtask::files::tempdir().unwrap();
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
fn locked_refuses_a_source_the_lock_file_does_not_record() {
    let fetch = source_for(
        vec!["/nonexistent".into()],
        None,
        Some("13c5d6014a3a170a1f5c8b2e6abf9b77b2bf8eee".into()),
    );
    let cache_dir = xtask::files::tempdir().unwrap();
    let locked = FetchOptions {
        locked: true,
        ..FetchOptions::default()
    };
    let error = fetch_with(&fetch, &Cache::new(cache_dir.path()), &locked).unwrap_err();
    assert!(
        error.to_string().contains("--locked") && error.to_string().contains("src-1.tar.gz"),
        "{error}"
    );
}

/// A git repository of one `configure`, its `git archive` tarball (gzip),
/// its commit id and its tree id.
struct Archived {
    tar_gz: Vec<u8>,
    tar: Vec<u8>,
    commit: String,
    tree: String,
}

fn git_archive(dir: &Path, content: &str) -> Archived {
    support::git(dir, &["init", "-q"]);
    fs::write(dir.join("configure"), content).unwrap();
    fs::write(dir.join("README"), "read me\n").unwrap();
    support::git(dir, &["add", "configure", "README"]);
    support::git(dir, &["commit", "-q", "-m", "c"]);
    let id = |rev: &str| {
        String::from_utf8(support::git(dir, &["rev-parse", rev]))
            .unwrap()
            .trim()
            .to_owned()
    };
    Archived {
        tar_gz: support::git(
            dir,
            &["archive", "--format=tar.gz", "--prefix=src-1/", "HEAD"],
        ),
        tar: support::git(dir, &["archive", "--format=tar", "--prefix=src-1/", "HEAD"]),
        commit: id("HEAD"),
        tree: id("HEAD^{tree}"),
    }
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The same entries as a tar stream another archiver wrote: reverse order,
/// other times, no pax header, another top directory name, another gzip level.
fn repacked(tar_bytes: &[u8]) -> Vec<u8> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .replacen("src-1", "mirror-copy", 1);
        let mode = entry.header().mode().unwrap();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
        entries.push((path, kind, mode, body));
    }
    entries.reverse();
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, mode, body) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode & 0o755);
        header.set_mtime(1_000_000_000);
        header.set_size(body.len() as u64);
        builder
            .append_data(&mut header, path, body.as_slice())
            .unwrap();
    }
    gzip(&builder.into_inner().unwrap(), 9)
}

#[test]
fn a_git_archive_of_the_pinned_tree_and_a_repacked_copy_both_pass_the_tree_pin() {
    let repo = xtask::files::tempdir().unwrap();
    let archived = git_archive(repo.path(), "one");
    let copy = repacked(&archived.tar);
    assert_ne!(sha256(&copy), sha256(&archived.tar_gz));
    let server = HttpServer::start(BTreeMap::from([
        (
            "/github.tar.gz".into(),
            Route::File(archived.tar_gz.clone()),
        ),
        ("/mirror.tar.gz".into(), Route::File(copy.clone())),
    ]));
    for (path, bytes) in [
        ("/github.tar.gz", &archived.tar_gz),
        ("/mirror.tar.gz", &copy),
    ] {
        let cache_dir = xtask::files::tempdir().unwrap();
        let fetch = source_for(vec![server.url(path)], None, Some(archived.tree.clone()));
        let fetched = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
        assert_eq!(fetched.sha256, sha256(bytes), "{path}");
        assert_eq!(fetched.tree.as_deref(), Some(archived.tree.as_str()));
    }
}

#[test]
fn a_forged_pax_header_naming_the_pinned_commit_is_refused_and_nothing_is_cached() {
    let (one, two) = (
        xtask::files::tempdir().unwrap(),
        xtask::files::tempdir().unwrap(),
    );
    let genuine = git_archive(one.path(), "genuine");
    let other = git_archive(two.path(), "#!/bin/sh\necho owned\n");
    // The attacker writes the genuine commit id into the other tree's pax header.
    let forged_tar = String::from_utf8_lossy(&other.tar)
        .replace(&other.commit, &genuine.commit)
        .into_bytes();
    assert_eq!(forged_tar.len(), other.tar.len());
    assert!(String::from_utf8_lossy(&forged_tar).contains(&format!("comment={}", genuine.commit)));
    let forged = gzip(&forged_tar, 6);
    let server = HttpServer::start(BTreeMap::from([("/a.tar.gz".into(), Route::File(forged))]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let mut fetch = source_for(
        vec![server.url("/a.tar.gz")],
        None,
        Some(genuine.tree.clone()),
    );
    fetch.commit = Some(genuine.commit.clone());
    let error = format!(
        "{:#}",
        fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap_err()
    );
    assert!(
        error.contains("tree pin failed")
            && error.contains(&genuine.tree)
            && error.contains(&other.tree),
        "{error}"
    );
    assert_eq!(cache_files(cache_dir.path()), Vec::<String>::new());
}

#[test]
fn a_tree_mismatch_at_one_mirror_falls_through_to_the_next_url() {
    let (one, two) = (
        xtask::files::tempdir().unwrap(),
        xtask::files::tempdir().unwrap(),
    );
    let genuine = git_archive(one.path(), "genuine");
    let other = git_archive(two.path(), "other");
    let server = HttpServer::start(BTreeMap::from([
        (
            "/bad-mirror.tar.gz".into(),
            Route::File(other.tar_gz.clone()),
        ),
        (
            "/upstream.tar.gz".into(),
            Route::File(genuine.tar_gz.clone()),
        ),
    ]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let fetch = source_for(
        vec![
            server.url("/bad-mirror.tar.gz"),
            server.url("/upstream.tar.gz"),
        ],
        None,
        Some(genuine.tree.clone()),
    );
    let fetched = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert_eq!(fetched.sha256, sha256(&genuine.tar_gz));
    assert_eq!(fetched.url, server.url("/upstream.tar.gz"));
    assert_eq!(
        cache_files(cache_dir.path()),
        [sha256(&genuine.tar_gz), "receipts/src-1.tar.gz".to_owned()],
        "nothing of the bad mirror's bytes is kept"
    );
}

#[test]
fn a_tampered_cache_entry_is_evicted_and_fetched_again() {
    let repo = xtask::files::tempdir().unwrap();
    let archived = git_archive(repo.path(), "one");
    let server = HttpServer::start(BTreeMap::from([(
        "/a.tar.gz".into(),
        Route::File(archived.tar_gz.clone()),
    )]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let fetch = source_for(
        vec![server.url("/a.tar.gz")],
        None,
        Some(archived.tree.clone()),
    );
    let first = fetch_one(&fetch, &cache).unwrap();
    // Someone with write access to the cache swaps the bytes under the receipt.
    let other_repo = xtask::files::tempdir().unwrap();
    fs::write(
        &first.path,
        git_archive(other_repo.path(), "swapped").tar_gz,
    )
    .unwrap();
    let again = fetch_one(&fetch, &cache).unwrap();
    assert!(!again.from_cache, "the swapped cache entry was used");
    assert_eq!(fs::read(&again.path).unwrap(), archived.tar_gz);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn locked_refuses_bytes_that_differ_from_the_lock_and_accepts_the_locked_ones() {
    let repo = xtask::files::tempdir().unwrap();
    let archived = git_archive(repo.path(), "one");
    let copy = repacked(&archived.tar);
    let server = HttpServer::start(BTreeMap::from([
        ("/copy.tar.gz".into(), Route::File(copy.clone())),
        (
            "/locked.tar.gz".into(),
            Route::File(archived.tar_gz.clone()),
        ),
    ]));
    let locked = FetchOptions {
        locked: true,
        ..FetchOptions::default()
    };
    let mut fetch = source_for(
        vec![server.url("/copy.tar.gz")],
        None,
        Some(archived.tree.clone()),
    );
    fetch.locked_sha256 = Some(sha256(&archived.tar_gz));
    let cache_dir = xtask::files::tempdir().unwrap();
    let error = format!(
        "{:#}",
        fetch_with(&fetch, &Cache::new(cache_dir.path()), &locked).unwrap_err()
    );
    assert!(
        error.contains("--locked")
            && error.contains(&sha256(&copy))
            && error.contains(&sha256(&archived.tar_gz)),
        "{error}"
    );
    assert_eq!(cache_files(cache_dir.path()), Vec::<String>::new());
    // Without --locked the copy passes the recipe's tree pin.
    fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    // With --locked, the cached copy is not used, and the locked bytes are found at the next URL.
    fetch.urls.push(server.url("/locked.tar.gz"));
    let fetched = fetch_with(&fetch, &Cache::new(cache_dir.path()), &locked).unwrap();
    assert_eq!(fetched.sha256, sha256(&archived.tar_gz));
}

#[test]
fn a_server_that_never_answers_gives_up_within_the_read_timeout() {
    let body = fixture(10_000);
    let server = HttpServer::start(BTreeMap::from([
        ("/stall".into(), Route::Stall),
        ("/good".into(), Route::File(body.clone())),
    ]));
    let options = FetchOptions {
        read_timeout: Duration::from_secs(1),
        ..FetchOptions::default()
    };
    let cache_dir = xtask::files::tempdir().unwrap();
    let started = Instant::now();
    let fetch = source_for(vec![server.url("/stall")], Some(sha256(&body)), None);
    let error = format!(
        "{:#}",
        fetch_with(&fetch, &Cache::new(cache_dir.path()), &options).unwrap_err()
    );
    // Four attempts of a second each, and the pauses between them; a hang would never return.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(error.contains("gave up after 4 attempts"), "{error}");
    // With a working URL after it, the fetch succeeds from there.
    let fetch = source_for(
        vec![server.url("/stall"), server.url("/good")],
        Some(sha256(&body)),
        None,
    );
    let fetched = fetch_with(&fetch, &Cache::new(cache_dir.path()), &options).unwrap();
    assert_eq!(fs::read(fetched.path).unwrap(), body);
}

#[test]
fn a_transfer_that_stalls_midway_resumes_by_range_after_the_read_timeout() {
    let body = fixture(1 << 20);
    let half = body.len() / 2;
    let server = HttpServer::start(BTreeMap::from([(
        "/a".into(),
        Route::StallOnce(body.clone(), half),
    )]));
    let options = FetchOptions {
        read_timeout: Duration::from_secs(1),
        ..FetchOptions::default()
    };
    let cache_dir = xtask::files::tempdir().unwrap();
    let fetch = source_for(vec![server.url("/a")], Some(sha256(&body)), None);
    let fetched = fetch_with(&fetch, &Cache::new(cache_dir.path()), &options).unwrap();
    assert_eq!(fs::read(fetched.path).unwrap(), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
}

#[test]
fn a_download_announced_over_the_limit_is_refused_and_nothing_is_kept() {
    let body = fixture(50_000);
    let server = HttpServer::start(BTreeMap::from([("/a".into(), Route::File(body.clone()))]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let mut fetch = source_for(vec![server.url("/a")], Some(sha256(&body)), None);
    fetch.max_download = 10_000;
    let error = format!(
        "{:#}",
        fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap_err()
    );
    assert!(
        error.contains("max_download") && error.contains("50000"),
        "{error}"
    );
    assert_eq!(cache_files(cache_dir.path()), Vec::<String>::new());
}

#[test]
fn a_stream_without_a_length_is_cut_off_at_the_limit_and_nothing_is_kept() {
    let body = fixture(200_000);
    let server = HttpServer::start(BTreeMap::from([(
        "/a".into(),
        Route::NoLength(body.clone()),
    )]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let mut fetch = source_for(vec![server.url("/a")], Some(sha256(&body)), None);
    fetch.max_download = 100_000;
    let error = format!(
        "{:#}",
        fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap_err()
    );
    assert!(
        error.contains("over the source's limit of 100000"),
        "{error}"
    );
    assert_eq!(cache_files(cache_dir.path()), Vec::<String>::new());
}

#[test]
fn bytes_past_the_announced_length_are_not_taken() {
    let body = fixture(30_000);
    let server = HttpServer::start(BTreeMap::from([(
        "/a".into(),
        Route::Overlong(body.clone(), 1 << 20),
    )]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let fetch = source_for(vec![server.url("/a")], Some(sha256(&body)), None);
    let fetched = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert_eq!(fs::read(fetched.path).unwrap(), body);
}

#[test]
fn a_redirect_over_http_is_followed() {
    let body = fixture(20_000);
    let server = HttpServer::start(BTreeMap::from([(
        "/real".into(),
        Route::File(body.clone()),
    )]));
    let redirector = HttpServer::start(BTreeMap::from([(
        "/moved".into(),
        Route::Redirect(server.url("/real")),
    )]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let fetch = source_for(vec![redirector.url("/moved")], Some(sha256(&body)), None);
    let fetched = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert_eq!(fs::read(fetched.path).unwrap(), body);
}

#[test]
fn two_runs_fetching_one_url_at_once_share_no_partial_file() {
    let body = fixture(2 << 20);
    let server = HttpServer::start(BTreeMap::from([(
        "/a".into(),
        Route::Trickle(body.clone()),
    )]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let fetch = source_for(vec![server.url("/a")], Some(sha256(&body)), None);
    let results: Vec<anyhow::Result<fetch::Fetched>> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| fetch_one(&fetch, &Cache::new(cache_dir.path()))))
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    for result in results {
        let fetched = result.unwrap();
        assert_eq!(fs::read(&fetched.path).unwrap(), body);
    }
    assert_eq!(
        server.requests().len(),
        1,
        "the second run waited and used the first one's download"
    );
}

/// A set of one source pinned by tree, in a recipe directory of its own.
fn tree_pinned_set(dir: &Path, tree: &str, commit: &str) {
    let recipe = format!(
        r#"[set]
description = "tree-pinned"
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
tree = "{tree}"
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
fn pin_records_the_sha256_fetched_and_locked_then_refuses_other_bytes_of_the_same_tree() {
    let work = xtask::files::tempdir().unwrap();
    let repo = work.path().join("repo");
    let (recipes, mirror, target) = (
        work.path().join("recipes"),
        work.path().join("mirror"),
        work.path().join("target"),
    );
    for dir in [&repo, &recipes, &mirror] {
        fs::create_dir_all(dir).unwrap();
    }
    let archived = git_archive(&repo, "pinned");
    fs::write(mirror.join("src-1.tar.gz"), &archived.tar_gz).unwrap();
    tree_pinned_set(&recipes, &archived.tree, &archived.commit);
    let run = |extra: &[&str]| {
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
        support::xtask(
            &target,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    let refused = run(&["--locked"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "--locked accepted a source the lock does not record"
    );
    assert!(support::stderr(&refused).contains("src-1.tar.gz"));

    assert!(run(&["--pin"]).status.success());
    let lock = fs::read_to_string(recipes.join("pinned.lock")).unwrap();
    assert!(
        lock.contains(&format!(
            "\"src-1.tar.gz\" = \"{}\"",
            sha256(&archived.tar_gz)
        )),
        "{lock}"
    );
    assert!(
        run(&["--locked"]).status.success(),
        "--locked refused the locked bytes"
    );

    // A mirror's re-packed copy: the same tree, other bytes.
    let copy = repacked(&archived.tar);
    fs::write(mirror.join("src-1.tar.gz"), &copy).unwrap();
    fs::remove_dir_all(target.join("downloads")).unwrap();
    let plain = run(&[]);
    assert!(
        plain.status.success(),
        "the tree pin refused a faithful copy"
    );
    assert!(support::stderr(&plain).contains("differ from the lock file's sha256"));
    fs::remove_dir_all(target.join("downloads")).unwrap();
    let locked = run(&["--locked"]);
    assert_eq!(locked.status.code(), Some(1));
    let stderr = support::stderr(&locked);
    assert!(
        stderr.contains(&sha256(&copy)) && stderr.contains(&sha256(&archived.tar_gz)),
        "{stderr}"
    );
}

#[test]
fn a_server_that_trickles_is_stopped_at_the_download_timeout_and_resumed_later() {
    // 64 KiB every 20 ms: never silent for a read timeout, slow in all.
    let body = fixture(4 << 20);
    let server = HttpServer::start(BTreeMap::from([(
        "/a".into(),
        Route::Trickle(body.clone()),
    )]));
    let cache_dir = xtask::files::tempdir().unwrap();
    let fetch = source_for(vec![server.url("/a")], Some(sha256(&body)), None);
    let hurried = FetchOptions {
        total_timeout: Duration::from_millis(300),
        ..FetchOptions::default()
    };
    let error = format!(
        "{:#}",
        fetch_with(&fetch, &Cache::new(cache_dir.path()), &hurried).unwrap_err()
    );
    assert!(
        error.contains("longer than `--download-timeout`") && error.contains("kept to resume"),
        "{error}"
    );
    // The next run resumes where this one stopped, by Range.
    let fetched = fetch_one(&fetch, &Cache::new(cache_dir.path())).unwrap();
    assert_eq!(fs::read(fetched.path).unwrap(), body);
    let requests = server.requests();
    assert!(
        requests[1]
            .range
            .as_deref()
            .is_some_and(|range| range != "bytes=0-"),
        "{requests:?}"
    );
}
