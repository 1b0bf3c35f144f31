//! Downloads: every byte is hostile until its pins say otherwise.
//!
//! Bytes stream into a `.part` file while sha256 is computed in the same pass.
//! Whatever URL served them (a mirror, `BDR_DIST_MIRROR`, upstream), they must
//! pass the recipe's content pins: the `sha256` of the archive, and the git
//! `tree` recomputed from its entries. Bytes that fail at one URL are
//! discarded and the next URL is tried; only bytes that pass are renamed into
//! the content-addressed cache (`target/downloads/<sha256>`), with a receipt
//! of what was verified. A cache hit is hashed again before use. A transfer
//! cut half-way resumes with an HTTP Range request; a stalled server times
//! out; every transfer and archive has a size limit.

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

use crate::{
    files::{self, copy_hashing, human_bytes, sha256_file, write_atomically},
    input::located::invalid,
    interrupt,
    layout::Downloads,
    plan,
    sources::archive::{self, Expect, TreeMismatch},
};

/// How many times one URL is tried before moving on to the next.
const ATTEMPTS_PER_URL: u32 = 4;
/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// How fetching behaves, from the flags.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Refuse bytes whose sha256 is not the one the lock file recorded.
    pub locked: bool,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for response headers or for the next bytes of the body.
    pub read_timeout: Duration,
    /// Longest one URL may take, however steadily it trickles.
    pub total_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            locked: false,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(1800),
        }
    }
}

/// The download cache under `target/downloads` (its paths: [`Downloads`]).
pub struct Cache {
    pub paths: Downloads,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            paths: Downloads::new(dir),
        }
    }

    /// Remove a blob and the receipt that vouched for it.
    pub fn evict(&self, sha256: &str, file: &str) {
        let _ = fs::remove_file(self.paths.blob(sha256));
        let receipt = self.paths.receipt(file);
        if read_receipt(&receipt).is_some_and(|receipt| receipt.sha256 == sha256) {
            let _ = fs::remove_file(receipt);
        }
    }
}

/// A verified source in the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub file: String,
    pub path: PathBuf,
    pub sha256: String,
    /// The git tree its entries make, when the recipe pins one.
    pub tree: Option<String>,
    /// Where the bytes came from.
    pub url: String,
    pub from_cache: bool,
}

/// What a receipt records.
struct Receipt {
    sha256: String,
    tree: Option<String>,
    url: String,
}

/// A receipt, if it is one: a file of the cache, but not one to trust blindly
/// (its sha256 names the blob that would be hashed, or evicted).
fn read_receipt(path: &Path) -> Option<Receipt> {
    let text = fs::read_to_string(path).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let hex = |value: &str, digits: usize| {
        value.len() == digits
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let sha256 = field("sha256").filter(|sha| hex(sha, 64))?;
    let tree = field("tree");
    if tree.as_deref().is_some_and(|tree| !hex(tree, 40)) {
        return None;
    }
    Some(Receipt {
        sha256,
        tree,
        url: field("url").unwrap_or_default(),
    })
}

fn write_receipt(cache: &Cache, fetched: &Fetched) -> anyhow::Result<()> {
    let text = format!(
        "sha256={}\ntree={}\nurl={}\n",
        fetched.sha256,
        fetched.tree.as_deref().unwrap_or(""),
        fetched.url
    );
    write_atomically(&cache.paths.receipt(&fetched.file), text.as_bytes())
}

/// Fetch all sources concurrently; the first error is returned once every
/// transfer has finished.
pub fn fetch_all(
    sources: &[&plan::Fetch],
    cache: &Cache,
    options: &FetchOptions,
) -> anyhow::Result<Vec<Fetched>> {
    if options.locked {
        let unlocked: Vec<&str> = sources
            .iter()
            .filter(|s| s.locked_sha256.is_none())
            .map(|s| s.file.as_str())
            .collect();
        if !unlocked.is_empty() {
            return Err(invalid(format!(
                "--locked: the lock file records no sha256 for {}; run `cargo xtask fetch --pin` once to record it",
                unlocked.join(", ")
            )));
        }
    }
    let client = client(options)?;
    let progress = Progress::new();
    thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|source| {
                let (client, progress) = (&client, &progress);
                scope.spawn(move || fetch_one(client, source, cache, options, progress))
            })
            .collect();
        let results: Vec<anyhow::Result<Fetched>> = handles
            .into_iter()
            .map(|handle| handle.join().expect("fetch thread panicked"))
            .collect();
        results.into_iter().collect()
    })
}

fn client(options: &FetchOptions) -> anyhow::Result<reqwest::blocking::Client> {
    // Proxies come from HTTP_PROXY, HTTPS_PROXY and NO_PROXY (reqwest's default).
    reqwest::blocking::Client::builder()
        .connect_timeout(options.connect_timeout)
        // The blocking client applies this to the response headers and to each
        // read of the body: a stalled server times out, a slow one does not.
        .timeout(options.read_timeout)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let from = attempt.previous().last().map(|url| url.scheme().to_owned());
            match redirect_verdict(
                from.as_deref(),
                attempt.url().scheme(),
                attempt.previous().len(),
            ) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(why),
            }
        }))
        .user_agent(concat!("bdr-dist/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")
}

/// Whether a redirect from scheme `from` to scheme `to` may be followed after
/// `count` redirects: never from https down to plain http.
pub fn redirect_verdict(from: Option<&str>, to: &str, count: usize) -> Result<(), String> {
    if count > MAX_REDIRECTS {
        return Err(format!("more than {MAX_REDIRECTS} redirects"));
    }
    if from == Some("https") && to != "https" {
        return Err(format!("refused a redirect from https to {to}"));
    }
    Ok(())
}

/// The verified cache entry for a source, if there is one. Its bytes are
/// hashed again, and its tree recomputed when the recipe's pin is newer
/// than its receipt; an entry that fails either is evicted.
pub fn cached(
    fetch: &plan::Fetch,
    cache: &Cache,
    options: &FetchOptions,
) -> anyhow::Result<Option<Fetched>> {
    let receipt = read_receipt(&cache.paths.receipt(&fetch.file));
    let sha256 = match (&fetch.sha256, &receipt) {
        (Some(sha256), _) => sha256.clone(),
        (None, Some(receipt)) => receipt.sha256.clone(),
        (None, None) => return Ok(None),
    };
    let path = cache.paths.blob(&sha256);
    if !path.is_file() {
        return Ok(None);
    }
    let actual = sha256_file(&path)?;
    if actual != sha256 {
        eprintln!(
            "{:>12} {}: cached bytes hash to {actual}, not {sha256}; evicted",
            "Warning",
            path.display()
        );
        cache.evict(&sha256, &fetch.file);
        return Ok(None);
    }
    if options.locked && fetch.locked_sha256.as_deref() != Some(sha256.as_str()) {
        return Ok(None);
    }
    let receipt_matches = receipt
        .as_ref()
        .is_some_and(|receipt| receipt.sha256 == sha256 && receipt.tree == fetch.tree);
    let url = receipt.map(|receipt| receipt.url).unwrap_or_default();
    let fetched = Fetched {
        file: fetch.file.clone(),
        path: path.clone(),
        sha256: sha256.clone(),
        tree: fetch.tree.clone(),
        url,
        from_cache: true,
    };
    if !receipt_matches {
        // A pin newer than what was verified: check these bytes against it.
        if let Err(error) = check_tree(fetch, &path) {
            eprintln!("{:>12} {}: {error:#}; evicted", "Warning", path.display());
            cache.evict(&sha256, &fetch.file);
            return Ok(None);
        }
        write_receipt(cache, &fetched)?;
    }
    Ok(Some(fetched))
}

fn fetch_one(
    client: &reqwest::blocking::Client,
    fetch: &plan::Fetch,
    cache: &Cache,
    options: &FetchOptions,
    progress: &Progress,
) -> anyhow::Result<Fetched> {
    if let Some(hit) = cached(fetch, cache, options)? {
        progress.line(
            "Fresh",
            &format!("{} (cached, sha256 {})", fetch.file, &hit.sha256[..16]),
        );
        return Ok(hit);
    }
    let mut failures = Vec::new();
    for url in &fetch.urls {
        let attempt = Attempt {
            client,
            fetch,
            url,
            cache,
            options,
            progress,
        };
        match attempt.run()? {
            Ok(fetched) => return Ok(fetched),
            Err(why) => failures.push(format!("{url}: {why}")),
        }
    }
    bail!(
        "could not fetch {} from any of its {} URLs:\n  {}",
        fetch.file,
        fetch.urls.len(),
        failures.join("\n  ")
    )
}

/// Fetching one source from one URL.
struct Attempt<'a> {
    client: &'a reqwest::blocking::Client,
    fetch: &'a plan::Fetch,
    url: &'a str,
    cache: &'a Cache,
    options: &'a FetchOptions,
    progress: &'a Progress,
}

impl Attempt<'_> {
    /// Download, verify, move into the cache. The outer error stops the
    /// whole fetch (a signal, the cache itself failing); the inner one says
    /// why this URL's bytes were not taken, and the next URL is tried.
    fn run(&self) -> anyhow::Result<Result<Fetched, String>> {
        let Attempt {
            fetch, url, cache, ..
        } = *self;
        let _lock = files::lock(
            &cache.paths.part_lock(url),
            true,
            &format!("waiting for another run's download of {url}"),
        )?;
        // That other run may have finished it.
        if let Some(hit) = cached(fetch, cache, self.options)? {
            return Ok(Ok(hit));
        }
        let part = cache.paths.part(url);
        let started = Instant::now();
        self.progress
            .line("Downloading", &format!("{} from {url}", fetch.file));
        let downloaded = download(self.client, url, &part, fetch, self.options, self.progress);
        interrupt::check()?;
        let sha256 = match downloaded {
            Ok(sha256) => sha256,
            Err(error) => {
                // What a cut or stalled transfer brought stays for the next run
                // to resume; bytes over the limit do not.
                let kept = fs::metadata(&part).map_or(0, |meta| meta.len());
                let why = if kept > 0 && error.is::<Transient>() {
                    format!("{error:#} ({} kept to resume)", human_bytes(kept))
                } else {
                    let _ = fs::remove_file(&part);
                    format!("{error:#}")
                };
                self.progress.line("Failed", &format!("{url}: {why}"));
                return Ok(Err(why));
            }
        };
        let tree = match verify(fetch, &part, &sha256, self.options) {
            Ok(tree) => tree,
            Err(error) => {
                let _ = fs::remove_file(&part);
                self.progress.line("Refused", &format!("{url}: {error:#}"));
                return Ok(Err(format!("{error:#}")));
            }
        };
        let blob = cache.paths.blob(&sha256);
        fs::rename(&part, &blob)
            .with_context(|| format!("cannot move {} into the cache", part.display()))?;
        let fetched = Fetched {
            file: fetch.file.clone(),
            path: blob,
            sha256,
            tree,
            url: url.to_owned(),
            from_cache: false,
        };
        write_receipt(cache, &fetched)?;
        self.report(&fetched, started)?;
        Ok(Ok(fetched))
    }

    fn report(&self, fetched: &Fetched, started: Instant) -> anyhow::Result<()> {
        let size = fs::metadata(&fetched.path)?.len();
        self.progress.line(
            "Downloaded",
            &format!(
                "{} ({}, {:.1}s, sha256 {}{})",
                fetched.file,
                human_bytes(size),
                started.elapsed().as_secs_f64(),
                &fetched.sha256[..16],
                fetched
                    .tree
                    .as_ref()
                    .map(|tree| format!(", tree {}", &tree[..16]))
                    .unwrap_or_default()
            ),
        );
        let differs_from_lock = self
            .fetch
            .locked_sha256
            .as_ref()
            .filter(|locked| **locked != fetched.sha256);
        if let (false, Some(locked)) = (self.options.locked, differs_from_lock) {
            self.progress.line(
                "Note",
                &format!(
                    "{}: these bytes pass the recipe's pins but differ from the lock file's sha256 {locked} \
                     (another archiver, or another mirror); `fetch --pin` records them, `--locked` refuses them",
                    fetched.file
                ),
            );
        }
        Ok(())
    }
}

/// Check freshly downloaded bytes against every pin; returns the verified tree.
fn verify(
    fetch: &plan::Fetch,
    part: &Path,
    actual: &str,
    options: &FetchOptions,
) -> anyhow::Result<Option<String>> {
    if let Some(expected) = &fetch.sha256 {
        if expected != actual {
            bail!("sha256 mismatch: expected {expected}, got {actual}; the download was discarded");
        }
    }
    if options.locked {
        if let Some(locked) = fetch
            .locked_sha256
            .as_ref()
            .filter(|l| l.as_str() != actual)
        {
            bail!(
                "--locked: sha256 {actual} differs from the lock file's {locked}; the download was discarded"
            );
        }
    }
    check_tree(fetch, part)?;
    Ok(fetch.tree.clone())
}

/// Recompute the archive's git tree, when the recipe pins one.
fn check_tree(fetch: &plan::Fetch, path: &Path) -> anyhow::Result<()> {
    if fetch.tree.is_none() {
        return Ok(());
    }
    let expect = Expect {
        tree: fetch.tree.as_deref(),
        max_bytes: fetch.max_unpacked,
    };
    archive::inspect(path, fetch.archive, &expect)
        .map(drop)
        .map_err(|error| {
            if let Some(mismatch) = error.downcast_ref::<TreeMismatch>() {
                anyhow::anyhow!("{mismatch}; the download was discarded")
            } else {
                error.context("the archive cannot be read to check its tree pin")
            }
        })
}

/// A transfer that failed the way networks fail (cut, stalled, refused):
/// what it brought is worth resuming.
#[derive(Debug)]
struct Transient(String);

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Transient {}

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
    fetch: &plan::Fetch,
    options: &FetchOptions,
    progress: &Progress,
) -> anyhow::Result<String> {
    if let Some(path) = local_path(url) {
        let input = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = input.metadata()?.len();
        if size > fetch.max_download {
            bail!(
                "{} has {size} bytes, more than the source's limit of {} (`max_download`)",
                path.display(),
                fetch.max_download
            );
        }
        let mut output = File::create(part)?;
        let mut hasher = Sha256::new();
        let copied = copy_hashing(
            &mut input.take(fetch.max_download + 1),
            &mut output,
            &mut hasher,
        )?;
        if copied > fetch.max_download {
            bail!(
                "{} has more than the source's limit of {} bytes (`max_download`)",
                path.display(),
                fetch.max_download
            );
        }
        output.sync_all()?;
        return Ok(hex::encode(hasher.finalize()));
    }

    // Bytes already on disk from an earlier, interrupted run are hashed once.
    let mut hasher = Sha256::new();
    let mut have = 0u64;
    if let Ok(mut existing) = File::open(part) {
        have = copy_hashing(&mut existing, &mut io::sink(), &mut hasher)?;
    }
    let bar = progress.bar(&fetch.file);
    let transfer = Transfer {
        client,
        url,
        part,
        max_bytes: fetch.max_download,
        deadline: Instant::now() + options.total_timeout,
        bar: &bar,
    };
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS_PER_URL {
        match transfer.attempt(&mut hasher, &mut have) {
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
                    &format!("{} from byte {have} in {delay:?}: {error:#}", fetch.file),
                );
                sleep_unless_interrupted(delay)?;
                delay *= 3;
            }
            Err(Failure::Retry(error)) => {
                bar.finish_and_clear();
                return Err(error.context(Transient(format!(
                    "gave up after {ATTEMPTS_PER_URL} attempts"
                ))));
            }
        }
    }
    unreachable!("the last attempt returns")
}

fn sleep_unless_interrupted(delay: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        interrupt::check()?;
        thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
    }
    Ok(())
}

/// One HTTP transfer of a URL into its `.part`, resuming from `have` bytes.
struct Transfer<'a> {
    client: &'a reqwest::blocking::Client,
    url: &'a str,
    part: &'a Path,
    max_bytes: u64,
    /// When this URL has had its time, however steadily it trickles.
    deadline: Instant,
    bar: &'a ProgressBar,
}

impl Transfer<'_> {
    fn over_limit(&self, bytes: u64) -> Failure {
        Failure::GiveUp(anyhow::anyhow!(
            "the server sends {bytes} bytes or more, over the source's limit of {} (`max_download`)",
            self.max_bytes
        ))
    }

    /// One attempt: request the rest, then stream it into the `.part`.
    fn attempt(&self, hasher: &mut Sha256, have: &mut u64) -> Result<(), Failure> {
        let (mut response, appending) = self.request(hasher, have)?;
        let expected_total = response.content_length().map(|length| length + *have);
        if let Some(total) = expected_total.filter(|total| *total > self.max_bytes) {
            return Err(self.over_limit(total));
        }
        self.bar.set_length(expected_total.unwrap_or(0));
        self.bar.set_position(*have);
        let mut output = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(!appending)
            .open(self.part)
            .map_err(|e| Failure::GiveUp(e.into()))?;
        output
            .seek(io::SeekFrom::Start(*have))
            .map_err(|e| Failure::GiveUp(e.into()))?;
        self.stream(&mut response, &mut output, hasher, have)?;
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

    /// Send the request (a Range for what is not there yet); whether the
    /// answer appends to the `.part`.
    fn request(
        &self,
        hasher: &mut Sha256,
        have: &mut u64,
    ) -> Result<(reqwest::blocking::Response, bool), Failure> {
        let mut request = self.client.get(self.url);
        if *have > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let response = request
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
                let _ = fs::remove_file(self.part);
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
        Ok((response, appending))
    }

    /// Copy the body into the `.part`, hashing as it goes; stop at the limit,
    /// the deadline, or a signal.
    fn stream(
        &self,
        response: &mut reqwest::blocking::Response,
        output: &mut File,
        hasher: &mut Sha256,
        have: &mut u64,
    ) -> Result<(), Failure> {
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            if interrupt::requested() {
                output.flush().ok();
                return Err(Failure::GiveUp(interrupt::Interrupted.into()));
            }
            if Instant::now() > self.deadline {
                output.flush().ok();
                return Err(Failure::GiveUp(anyhow::Error::new(Transient(
                    "the transfer took longer than `--download-timeout` allows".into(),
                ))));
            }
            let read = match response.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    output.flush().ok();
                    return Err(Failure::Retry(
                        anyhow::Error::new(error).context("connection lost or stalled"),
                    ));
                }
            };
            if *have + read as u64 > self.max_bytes {
                return Err(self.over_limit(*have + read as u64));
            }
            output
                .write_all(&buffer[..read])
                .map_err(|e| Failure::GiveUp(e.into()))?;
            hasher.update(&buffer[..read]);
            *have += read as u64;
            self.bar.set_position(*have);
        }
    }
}

/// `file:///x` and plain paths are read from disk.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    (!url.contains("://")).then(|| PathBuf::from(url))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_never_go_from_https_down_to_http() {
        assert!(redirect_verdict(Some("https"), "http", 1).is_err());
        assert!(redirect_verdict(Some("https"), "https", 1).is_ok());
        assert!(redirect_verdict(Some("http"), "https", 1).is_ok());
        assert!(redirect_verdict(Some("http"), "http", 1).is_ok());
        assert!(redirect_verdict(Some("http"), "http", MAX_REDIRECTS + 1).is_err());
    }
}
