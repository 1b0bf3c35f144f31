//! Downloads: every byte is hostile until its hash says otherwise.
//!
//! Bytes stream into a `.part` file while sha256 is computed in the same pass;
//! only a verified file is renamed into the content-addressed cache
//! (`target/downloads/<sha256>`). A transfer cut half-way resumes with an HTTP
//! Range request, transient failures retry with backoff, and the URLs of a
//! source (mirrors first) are tried in order. A source already in the cache is
//! served from it with no network I/O.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, IsTerminal, Read, Seek, Write},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::{archive, data::invalid, plan};

/// How many times one URL is tried before moving on to the next.
const ATTEMPTS_PER_URL: u32 = 4;

/// The download cache under `target/downloads`.
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }
    pub fn blob(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }
    /// What was verified for a source file name: its sha256 and commit.
    fn receipt(&self, file: &str) -> PathBuf {
        self.dir.join("receipts").join(file)
    }
    /// Partial download of one URL, kept across runs for resuming.
    fn part(&self, url: &str) -> PathBuf {
        self.dir.join("partial").join(format!(
            "{}.part",
            hex::encode(Sha256::digest(url.as_bytes()))
        ))
    }
}

/// A verified source in the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub file: String,
    pub path: PathBuf,
    pub sha256: String,
    pub from_cache: bool,
}

/// Fetch all sources concurrently; the first error is returned once every
/// transfer has finished.
pub fn fetch_all(
    sources: &[&plan::Fetch],
    cache: &Cache,
    locked: bool,
) -> anyhow::Result<Vec<Fetched>> {
    if locked {
        let unpinned: Vec<&str> = sources
            .iter()
            .filter(|s| s.sha256.is_none())
            .map(|s| s.file.as_str())
            .collect();
        if !unpinned.is_empty() {
            return Err(invalid(format!(
                "--locked: no pinned sha256 for {}; run `cargo xtask fetch --pin` once to record it in the lock file",
                unpinned.join(", ")
            )));
        }
    }
    let client = client()?;
    let progress = Progress::new();
    thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|source| {
                let (client, progress) = (&client, &progress);
                scope.spawn(move || fetch_one(client, source, cache, progress))
            })
            .collect();
        let results: Vec<anyhow::Result<Fetched>> = handles
            .into_iter()
            .map(|handle| handle.join().expect("fetch thread panicked"))
            .collect();
        results.into_iter().collect()
    })
}

fn client() -> anyhow::Result<reqwest::blocking::Client> {
    // Proxies come from HTTP_PROXY, HTTPS_PROXY and NO_PROXY (reqwest's default).
    reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(None)
        .user_agent(concat!("bdr-dist/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")
}

/// The verified cache entry for a source, if there is one.
pub fn cached(fetch: &plan::Fetch, cache: &Cache) -> anyhow::Result<Option<Fetched>> {
    let sha256 = match &fetch.sha256 {
        Some(sha256) => Some(sha256.clone()),
        None => read_receipt(&cache.receipt(&fetch.file)),
    };
    let Some(sha256) = sha256 else {
        return Ok(None);
    };
    let path = cache.blob(&sha256);
    if !path.is_file() {
        return Ok(None);
    }
    // The commit pin may be newer than the cache entry: check it again (1 KiB read).
    verify_commit(fetch, &path, &path.display().to_string())?;
    Ok(Some(Fetched {
        file: fetch.file.clone(),
        path,
        sha256,
        from_cache: true,
    }))
}

fn read_receipt(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("sha256="))
        .map(str::to_owned)
}

fn fetch_one(
    client: &reqwest::blocking::Client,
    fetch: &plan::Fetch,
    cache: &Cache,
    progress: &Progress,
) -> anyhow::Result<Fetched> {
    if let Some(hit) = cached(fetch, cache)? {
        progress.line(
            "Fresh",
            &format!("{} (cached, sha256 {})", fetch.file, &hit.sha256[..16]),
        );
        return Ok(hit);
    }
    fs::create_dir_all(cache.dir.join("partial"))?;
    fs::create_dir_all(cache.dir.join("receipts"))?;
    let mut failures = Vec::new();
    for url in &fetch.urls {
        let part = cache.part(url);
        let started = Instant::now();
        progress.line("Downloading", &format!("{} from {url}", fetch.file));
        let sha256 = match download(client, url, &part, &fetch.file, progress) {
            Ok(sha256) => sha256,
            Err(error) => {
                failures.push(format!("{url}: {error:#}"));
                continue;
            }
        };
        if let Err(error) = verify(fetch, &part, &sha256, url) {
            let _ = fs::remove_file(&part);
            return Err(error);
        }
        let blob = cache.blob(&sha256);
        fs::rename(&part, &blob)
            .with_context(|| format!("cannot move {} into the cache", part.display()))?;
        let receipt = format!(
            "sha256={sha256}\ncommit={}\nurl={url}\n",
            fetch.commit.as_deref().unwrap_or("")
        );
        write_atomically(&cache.receipt(&fetch.file), receipt.as_bytes())?;
        let size = fs::metadata(&blob)?.len();
        progress.line(
            "Downloaded",
            &format!(
                "{} ({}, {:.1}s, sha256 {})",
                fetch.file,
                human_bytes(size),
                started.elapsed().as_secs_f64(),
                &sha256[..16]
            ),
        );
        return Ok(Fetched {
            file: fetch.file.clone(),
            path: blob,
            sha256,
            from_cache: false,
        });
    }
    bail!(
        "could not fetch {} from any of its {} URLs:\n  {}",
        fetch.file,
        fetch.urls.len(),
        failures.join("\n  ")
    )
}

fn verify(fetch: &plan::Fetch, part: &Path, actual: &str, url: &str) -> anyhow::Result<()> {
    if let Some(expected) = &fetch.sha256 {
        if expected != actual {
            bail!("sha256 mismatch for {url}: expected {expected}, got {actual}; the download was discarded");
        }
    }
    verify_commit(fetch, part, url)
}

fn verify_commit(fetch: &plan::Fetch, path: &Path, origin: &str) -> anyhow::Result<()> {
    let Some(expected) = &fetch.commit else {
        return Ok(());
    };
    let actual = archive::pax_commit(path, fetch.archive)
        .with_context(|| format!("cannot read {origin}"))?;
    match actual {
        Some(actual) if &actual == expected => Ok(()),
        Some(actual) => bail!("commit mismatch for {origin}: expected {expected}, the archive is of {actual}; discarded"),
        None => bail!("commit pin for {origin}: expected {expected}, but the archive has no `git archive` pax header; discarded"),
    }
}

/// Why one transfer attempt failed, and whether trying again can help.
enum Failure {
    Retry(anyhow::Error),
    GiveUp(anyhow::Error),
}

/// Download `url` into `part` (resuming what is there), returning its sha256.
fn download(
    client: &reqwest::blocking::Client,
    url: &str,
    part: &Path,
    file: &str,
    progress: &Progress,
) -> anyhow::Result<String> {
    if let Some(path) = local_path(url) {
        let mut input =
            File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut output = File::create(part)?;
        let mut hasher = Sha256::new();
        copy_hashing(&mut input, &mut output, &mut hasher)?;
        output.sync_all()?;
        return Ok(hex::encode(hasher.finalize()));
    }

    // Bytes already on disk from an earlier, interrupted run are hashed once.
    let mut hasher = Sha256::new();
    let mut have = 0u64;
    if let Ok(mut existing) = File::open(part) {
        have = copy_hashing(&mut existing, &mut io::sink(), &mut hasher)?;
    }
    let bar = progress.bar(file);
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS_PER_URL {
        match attempt_download(client, url, part, &mut hasher, &mut have, &bar) {
            Ok(()) => {
                bar.finish_and_clear();
                return Ok(hex::encode(hasher.finalize()));
            }
            Err(Failure::GiveUp(error)) => {
                bar.finish_and_clear();
                return Err(error);
            }
            Err(Failure::Retry(error)) if attempt < ATTEMPTS_PER_URL => {
                progress.line(
                    "Retrying",
                    &format!("{file} from byte {have} in {delay:?}: {error:#}"),
                );
                thread::sleep(delay);
                delay *= 3;
            }
            Err(Failure::Retry(error)) => {
                bar.finish_and_clear();
                return Err(error.context(format!("gave up after {ATTEMPTS_PER_URL} attempts")));
            }
        }
    }
    unreachable!("the last attempt returns")
}

fn attempt_download(
    client: &reqwest::blocking::Client,
    url: &str,
    part: &Path,
    hasher: &mut Sha256,
    have: &mut u64,
    bar: &ProgressBar,
) -> Result<(), Failure> {
    let mut request = client.get(url);
    if *have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request
        .send()
        .map_err(|error| Failure::Retry(error.into()))?;
    let status = response.status();
    let appending = match status.as_u16() {
        206 => {
            let range = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !range.starts_with(&format!("bytes {have}-")) {
                return Err(Failure::GiveUp(anyhow::anyhow!(
                    "server answered Range bytes={have}- with `{range}`"
                )));
            }
            true
        }
        200 => false,
        416 => {
            // The partial file is not a prefix of what the server has: start over.
            *have = 0;
            *hasher = Sha256::new();
            let _ = fs::remove_file(part);
            return Err(Failure::Retry(anyhow::anyhow!(
                "HTTP 416 for a resumed range; starting over"
            )));
        }
        408 | 429 | 500..=599 => return Err(Failure::Retry(anyhow::anyhow!("HTTP {status}"))),
        _ => return Err(Failure::GiveUp(anyhow::anyhow!("HTTP {status}"))),
    };
    if !appending {
        *have = 0;
        *hasher = Sha256::new();
    }
    let expected_total = response.content_length().map(|length| length + *have);
    bar.set_length(expected_total.unwrap_or(0));
    bar.set_position(*have);

    let mut output = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(!appending)
        .open(part)
        .map_err(|e| Failure::GiveUp(e.into()))?;
    output
        .seek(io::SeekFrom::Start(*have))
        .map_err(|e| Failure::GiveUp(e.into()))?;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = match response.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                output.flush().ok();
                return Err(Failure::Retry(
                    anyhow::Error::new(error).context("connection lost"),
                ));
            }
        };
        output
            .write_all(&buffer[..read])
            .map_err(|e| Failure::GiveUp(e.into()))?;
        hasher.update(&buffer[..read]);
        *have += read as u64;
        bar.set_position(*have);
    }
    output.sync_all().map_err(|e| Failure::GiveUp(e.into()))?;
    if let Some(total) = expected_total {
        if *have < total {
            return Err(Failure::Retry(anyhow::anyhow!(
                "connection closed at byte {have} of {total}"
            )));
        }
    }
    Ok(())
}

/// `file:///x` and plain paths are read from disk.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    (!url.contains("://")).then(|| PathBuf::from(url))
}

fn copy_hashing(
    input: &mut impl Read,
    output: &mut impl Write,
    hasher: &mut Sha256,
) -> io::Result<u64> {
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let read = match input.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        output.write_all(&buffer[..read])?;
        hasher.update(&buffer[..read]);
        total += read as u64;
    }
}

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    copy_hashing(&mut file, &mut io::sink(), &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let parent = path.parent().context("path without a parent")?;
    fs::create_dir_all(parent)?;
    let temporary = parent.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let mut file = File::create(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Status lines always; a bar per download only when stderr is a terminal.
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    pub fn new() -> Progress {
        let bars = io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { bars }
    }

    pub fn line(&self, verb: &str, text: &str) {
        let line = format!("{verb:>12} {text}");
        match &self.bars {
            Some(bars) => bars.println(line).unwrap_or(()),
            None => eprintln!("{line}"),
        }
    }

    fn bar(&self, file: &str) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let style = ProgressStyle::with_template(
            "{prefix:>12} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        let bar = bars.add(ProgressBar::new(0).with_style(style));
        bar.set_prefix("Downloading");
        bar.set_message(file.to_owned());
        bar
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
