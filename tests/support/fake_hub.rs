//! A stand-in for the Hugging Face hub on loopback, for the download tests of the encoder and of
//! the `quiver` binary (each includes this file with `#[path]`).
//!
//! It answers the requests a download makes, with the hub's headers:
//! - `GET /api/models/{org}/{name}/revision/{revision}`: `{"sha", "siblings": [{"rfilename"}]}`;
//! - `HEAD`/`GET /{org}/{name}/resolve/{revision}/{path}`: a plain file answers itself (`ETag`:
//!   its git blob id); an LFS file (`*.safetensors`) answers 302 to a second listener on another
//!   loopback address (the storage host), with `X-Linked-Etag` (the SHA-256) and `X-Linked-Size`;
//! - `GET /lfs/{sha256}` on the storage host: the bytes, honouring `Range: bytes=N-`.
//!
//! A gated repository wants `Authorization: Bearer <token>` on the hub, never on the storage host
//! (as the real one, whose storage URLs are signed). Faults on demand: a corrupted body (same
//! length, checksum unchanged) and a connection cut after N bytes. Every request is logged.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// One model repository at one commit.
pub struct FakeRepo {
    pub id: String,
    pub commit: String,
    pub files: BTreeMap<String, Vec<u8>>,
    /// Required as a bearer token when set (a gated repository).
    pub token: Option<String>,
}

impl FakeRepo {
    /// Every file under `dir` (recursively), named by its `/`-separated relative path.
    pub fn from_dir(id: &str, commit: &str, dir: &Path) -> Self {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap();
                    let name = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    out.insert(name, std::fs::read(&path).unwrap());
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(dir, dir, &mut files);
        FakeRepo {
            id: id.to_string(),
            commit: commit.to_string(),
            files,
            token: None,
        }
    }
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `"hub"` or `"storage"`.
    pub host: &'static str,
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Faults {
    corrupt: HashSet<String>,
    cut_after: HashMap<String, usize>,
}

struct State {
    repos: Vec<FakeRepo>,
    storage: String,
    log: Mutex<Vec<Logged>>,
    faults: Mutex<Faults>,
}

/// The running stand-in; its threads live as long as the test process.
pub struct FakeHub {
    /// What `HF_ENDPOINT` should be.
    pub endpoint: String,
    state: Arc<State>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn git_blob_id(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_lfs(file: &str) -> bool {
    file.ends_with(".safetensors")
}

impl FakeHub {
    pub fn start(repos: Vec<FakeRepo>) -> Self {
        let hub = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in hub");
        // Another loopback address: a different host, as the hub's storage is.
        let storage = TcpListener::bind("127.0.0.2:0").expect("bind the stand-in storage host");
        let state = Arc::new(State {
            repos,
            storage: format!("http://{}", storage.local_addr().unwrap()),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
        });
        for (listener, host) in [(hub.try_clone().unwrap(), "hub"), (storage, "storage")] {
            let state = state.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = serve(&state, host, stream);
                    });
                }
            });
        }
        FakeHub {
            endpoint: format!("http://{}", hub.local_addr().unwrap()),
            state,
        }
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }

    /// Serves `file` with its first byte flipped (its advertised checksum unchanged) until
    /// [`FakeHub::heal`].
    pub fn corrupt(&self, file: &str) {
        self.state
            .faults
            .lock()
            .unwrap()
            .corrupt
            .insert(file.to_string());
    }

    pub fn heal(&self, file: &str) {
        self.state.faults.lock().unwrap().corrupt.remove(file);
    }

    /// The next transfer of `file`'s body stops after `bytes` bytes and closes the connection.
    pub fn cut_after(&self, file: &str, bytes: usize) {
        self.state
            .faults
            .lock()
            .unwrap()
            .cut_after
            .insert(file.to_string(), bytes);
    }
}

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Ok(Request {
        method,
        path,
        headers,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The file whose bytes these are (for faults).
    file: Option<String>,
}

impl Answer {
    fn error(status: u16, code: &str, message: &str) -> Self {
        Answer {
            status,
            headers: vec![
                ("X-Error-Code".into(), code.into()),
                ("X-Error-Message".into(), message.into()),
            ],
            body: format!("{{\"error\": \"{message}\"}}").into_bytes(),
            file: None,
        }
    }
}

fn serve(state: &State, host: &'static str, mut stream: TcpStream) -> std::io::Result<()> {
    let request = read_request(&stream)?;
    state.log.lock().unwrap().push(Logged {
        host,
        method: request.method.clone(),
        path: request.path.clone(),
        range: request.headers.get("range").cloned(),
        authorization: request.headers.get("authorization").cloned(),
    });
    let answer = match host {
        "hub" => hub_answer(state, &request),
        _ => storage_answer(state, &request),
    };
    write_answer(state, &request, answer, &mut stream)
}

fn find_repo<'a>(state: &'a State, org: &str, name: &str) -> Option<&'a FakeRepo> {
    state.repos.iter().find(|r| r.id == format!("{org}/{name}"))
}

fn hub_answer(state: &State, request: &Request) -> Answer {
    let path = request.path.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (repo, rest) = match segments.as_slice() {
        ["api", "models", org, name, "revision", revision] => (
            find_repo(state, org, name),
            Some(("api", percent_decode(revision), String::new())),
        ),
        [org, name, "resolve", revision, file @ ..] if !file.is_empty() => (
            find_repo(state, org, name),
            Some((
                "resolve",
                percent_decode(revision),
                percent_decode(&file.join("/")),
            )),
        ),
        _ => (None, None),
    };
    let Some((kind, revision, file)) = rest else {
        return Answer::error(404, "NotFound", "no such route");
    };
    let Some(repo) = repo else {
        return Answer::error(404, "RepoNotFound", "Repository not found");
    };
    if let Some(token) = &repo.token {
        if request.headers.get("authorization") != Some(&format!("Bearer {token}")) {
            return Answer::error(
                401,
                "GatedRepo",
                &format!("Access to model {} is restricted.", repo.id),
            );
        }
    }
    if revision != "main" && revision != repo.commit {
        return Answer::error(404, "RevisionNotFound", "Invalid rev id");
    }
    if kind == "api" {
        let siblings: Vec<String> = repo
            .files
            .keys()
            .map(|f| format!("{{\"rfilename\": \"{f}\"}}"))
            .collect();
        let body = format!(
            "{{\"id\": \"{}\", \"sha\": \"{}\", \"siblings\": [{}]}}",
            repo.id,
            repo.commit,
            siblings.join(", ")
        );
        return Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
            file: None,
        };
    }
    let Some(bytes) = repo.files.get(&file) else {
        return Answer::error(404, "EntryNotFound", "Entry not found");
    };
    let commit = ("X-Repo-Commit".to_string(), repo.commit.clone());
    if is_lfs(&file) {
        let sha = sha256_hex(bytes);
        return Answer {
            status: 302,
            headers: vec![
                commit,
                ("Location".into(), format!("{}/lfs/{sha}", state.storage)),
                ("X-Linked-Etag".into(), format!("\"{sha}\"")),
                ("X-Linked-Size".into(), bytes.len().to_string()),
                // The LFS pointer's own id, which a client must not take for the file's.
                (
                    "ETag".into(),
                    format!("\"{}\"", git_blob_id(sha.as_bytes())),
                ),
            ],
            body: Vec::new(),
            file: None,
        };
    }
    Answer {
        status: 200,
        headers: vec![
            commit,
            ("ETag".into(), format!("\"{}\"", git_blob_id(bytes))),
        ],
        body: bytes.clone(),
        file: Some(file),
    }
}

fn storage_answer(state: &State, request: &Request) -> Answer {
    let sha = request.path.trim_start_matches("/lfs/");
    for repo in &state.repos {
        for (file, bytes) in &repo.files {
            if is_lfs(file) && sha256_hex(bytes) == sha {
                return Answer {
                    status: 200,
                    headers: Vec::new(),
                    body: bytes.clone(),
                    file: Some(file.clone()),
                };
            }
        }
    }
    Answer::error(404, "NotFound", "no such object")
}

fn write_answer(
    state: &State,
    request: &Request,
    mut answer: Answer,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let mut cut = None;
    if let Some(file) = &answer.file {
        let mut faults = state.faults.lock().unwrap();
        if faults.corrupt.contains(file) && !answer.body.is_empty() {
            answer.body[0] ^= 0xff;
        }
        if request.method == "GET" {
            cut = faults.cut_after.remove(file);
        }
    }
    let total = answer.body.len();
    let mut start = 0;
    if answer.status == 200 && answer.file.is_some() {
        if let Some(range) = request.headers.get("range") {
            let from: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap_or(0);
            if from >= total {
                answer = Answer::error(416, "RangeNotSatisfiable", "range not satisfiable");
            } else {
                start = from;
                answer.status = 206;
                answer.headers.push((
                    "Content-Range".into(),
                    format!("bytes {from}-{}/{total}", total - 1),
                ));
            }
        }
    }
    let body = &answer.body[start.min(answer.body.len())..];
    let reason = match answer.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Other",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", answer.status);
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    if request.method != "HEAD" {
        let send = cut.map_or(body.len(), |n| n.min(body.len()));
        stream.write_all(&body[..send])?;
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}
