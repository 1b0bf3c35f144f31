//! Helpers shared by the integration tests: a loopback HTTP server and a way
//! to run the `cargo xtask` binary.
#![allow(dead_code)]

pub mod gnupg;
pub mod root;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub range: Option<String>,
}

/// What the server does with a path.
#[derive(Clone)]
pub enum Route {
    File(Vec<u8>),
    /// Serve the file, but close the connection after this many bytes the
    /// first time it is asked for.
    CutOnce(Vec<u8>, usize),
    /// Accept, read the request, and never answer.
    Stall,
    /// Send the headers and this many bytes the first time, then stall with
    /// the connection open; later requests are served whole.
    StallOnce(Vec<u8>, usize),
    /// Send the file with no Content-Length, closing the connection at the end.
    NoLength(Vec<u8>),
    /// Announce the file's length, then send more bytes than that.
    Overlong(Vec<u8>, usize),
    /// Answer 302 with this Location.
    Redirect(String),
    /// Send the file in 64 KiB pieces, 20 ms apart.
    Trickle(Vec<u8>),
}

/// How long a stalled connection is held open.
const STALL: Duration = Duration::from_secs(120);

/// An HTTP/1.1 server on 127.0.0.1 with a random port, one thread per
/// connection, serving routes (Range supported); anything else is a 404.
pub struct HttpServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(routes: BTreeMap<String, Route>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(Mutex::new(routes));
        let (requests_seen, stopping) = (requests.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (routes, requests) = (routes.clone(), requests_seen.clone());
                        thread::spawn(move || serve(stream, &routes, &requests));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Serve every file of a directory under `/`.
    pub fn serve_dir(dir: &Path) -> HttpServer {
        let mut routes = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                routes.insert(
                    format!("/{name}"),
                    Route::File(std::fs::read(&path).unwrap()),
                );
            }
        }
        HttpServer::start(routes)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    routes: &Mutex<BTreeMap<String, Route>>,
    requests: &Mutex<Vec<Request>>,
) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // `/./name` is `/name`: apt asks a flat repository (`deb URL ./`) so.
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .replace("/./", "/");
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            }
        }
    }
    requests.lock().unwrap().push(Request {
        path: path.clone(),
        range: range.clone(),
    });
    let route = routes.lock().unwrap().get(&path).cloned();
    let mut stream = stream;
    let (body, cut) = match route {
        None => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        Some(Route::File(body)) => (body, None),
        Some(Route::CutOnce(body, at)) => {
            routes
                .lock()
                .unwrap()
                .insert(path.clone(), Route::File(body.clone()));
            (body, Some(at))
        }
        Some(Route::Stall) => {
            thread::sleep(STALL);
            return;
        }
        Some(Route::StallOnce(body, at)) => {
            routes
                .lock()
                .unwrap()
                .insert(path.clone(), Route::File(body.clone()));
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body[..at]);
            let _ = stream.flush();
            thread::sleep(STALL);
            return;
        }
        Some(Route::NoLength(body)) => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(&body);
            return;
        }
        Some(Route::Overlong(body, extra)) => {
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
            let _ = stream.write_all(&vec![b'X'; extra]);
            return;
        }
        Some(Route::Redirect(location)) => {
            let header = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(header.as_bytes());
            return;
        }
        Some(Route::Trickle(body)) => {
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            for piece in body.chunks(64 << 10) {
                if stream.write_all(piece).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            return;
        }
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok());
    let header = match start {
        Some(start) if start < body.len() => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - start,
            body.len() - 1,
            body.len()
        ),
        Some(_) => {
            let _ = stream.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        None => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()),
    };
    let start = start.unwrap_or(0);
    let end = cut.map_or(body.len(), |at| at.min(body.len()));
    let _ = stream.write_all(header.as_bytes());
    let _ = stream.write_all(&body[start..end.max(start)]);
    let _ = stream.flush();
    if cut.is_some() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    // Drain so the client sees a clean close.
    let _ = reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(50)));
    let _ = reader.read(&mut [0u8; 16]);
}

/// Run `cargo xtask ARGS` with `target` as its target directory.
pub fn xtask(target: &Path, args: &[&str]) -> Output {
    xtask_with_env(target, args, &[])
}

/// `target` as the tool's target directory, and none of the caller's
/// `BDR_DIST_*` choices (set, recipes, platforms, mirrors), for a command
/// that runs `cargo xtask` (itself, or through `unshare`).
pub fn xtask_environment(command: &mut Command, target: &Path) {
    command
        .env("BDR_DIST_TARGET", target)
        .env_remove("BDR_DIST_RECIPES")
        .env_remove("BDR_DIST_MIRROR")
        .env_remove("BDR_DIST_SET")
        .env_remove("BDR_DIST_PLATFORMS")
        .env_remove("BDR_DIST_TARGETS");
}

/// The `cargo xtask` binary in [`xtask_environment`].
pub fn xtask_command(target: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    xtask_environment(&mut command, target);
    command
}

/// `xtask`, with these variables set too (`GNUPGHOME`, say).
pub fn xtask_with_env(target: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let output = xtask_command(target)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    eprintln!(
        "$ cargo xtask {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The directory of stand-in tarballs prepared by `cargo xtask test`.
pub fn standin_mirror() -> PathBuf {
    let dir = std::env::var_os("BDR_DIST_STANDIN_MIRROR").map(PathBuf::from).expect(
        "BDR_DIST_STANDIN_MIRROR is not set: run the suite with `cargo xtask test`, which prepares the stand-in sources",
    );
    for file in ["postgresql-15.18.tar.bz2", "pglogical-2.4.2.tar.gz"] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing from the stand-in mirror",
            file
        );
    }
    dir
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The target directory the end-to-end tests share: kept between runs, so
/// stamps make a rerun of the suite cheap, and outside any temp dir.
/// `BDR_DIST_E2E_TARGET` names another (a second worktree of this repository
/// can share one build of the stand-in set this way).
pub fn e2e_target() -> PathBuf {
    std::env::var_os("BDR_DIST_E2E_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::project_root().join("target/e2e"))
}

/// Build the stand-in set in `target` from the stand-in mirror (a no-op when
/// its stamps match), once per test binary and target.
pub fn standin_stage(target: &Path) -> PathBuf {
    static BUILT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|done| done == target) {
        let mirror = standin_mirror();
        let output = xtask(
            target,
            &[
                "build",
                "--set",
                "pg15-pglogical",
                "--mirror",
                &mirror.display().to_string(),
            ],
        );
        assert!(
            output.status.success(),
            "the stand-in build in {} failed",
            target.display()
        );
        built.push(target.to_path_buf());
    }
    target.to_path_buf()
}

/// The JSON a command printed on stdout (`--json`).
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "no JSON on stdout ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The step ids in a `build --json` list (`ran` or `fresh`).
pub fn steps(report: &serde_json::Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no `{list}` in {report}"))
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

/// Assert that a smoke run's JSON reports exactly these checks, each passed.
/// Every check of the pglogical driver with `--checks all`, as `id status`:
/// the ones only BDR can do are not applicable, never passed.
pub const PGLOGICAL_ALL_CHECKS: [&str; 14] = [
    "settings pass",
    "tls pass",
    "join pass",
    "slots pass",
    "ddl pass",
    "rows pass",
    "global-sequence not-applicable",
    "ddl-lock not-applicable",
    "roles-local pass",
    "import pass",
    "physical-join not-applicable",
    "part pass",
    "recreate pass",
    "orphan not-applicable",
];

/// The checks a run (or a dist report) gave, `id status` each, in order,
/// against `expected`.
pub fn assert_checks(run: &serde_json::Value, expected: &[&str]) {
    let reported: Vec<String> = run["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {run}"))
        .iter()
        .map(|check| {
            let (id, status) = (
                check["id"].as_str().unwrap(),
                check["status"].as_str().unwrap(),
            );
            assert_eq!(check["passed"], status == "pass", "{check}");
            format!("{id} {status}")
        })
        .collect();
    assert_eq!(reported, expected, "{run:#}");
}

/// Run git in `dir` with a fixed identity; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
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
}
