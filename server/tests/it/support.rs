//! Test harness: a fresh data directory, the real `quiver` binary serving it on a free port, and a small
//! JSON client over `ureq`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// A temporary data directory, removed on drop.
pub struct TestDir(tempfile::TempDir);

impl TestDir {
    /// A fresh, empty directory.
    pub fn new() -> Self {
        TestDir(tempfile::tempdir().expect("create a temp dir"))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `quiver serve`, killed on drop.
pub struct QuiverProcess {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Everything the process wrote to stderr so far (for failure messages).
    pub stderr: Arc<Mutex<String>>,
    /// Keeps the data directory alive when the process owns it.
    _dir: Option<TestDir>,
    data_dir: PathBuf,
}

/// The `quiver` binary under test.
pub fn quiver_bin() -> &'static str {
    env!("CARGO_BIN_EXE_quiver")
}

impl QuiverProcess {
    /// Serves a fresh data directory with these extra `serve` flags.
    pub fn start(extra: &[&str]) -> Self {
        let dir = TestDir::new();
        let path = dir.path().to_path_buf();
        let mut p = Self::start_in(&path, extra).expect("quiver serve starts");
        p._dir = Some(dir);
        p
    }

    /// Serves an existing data directory. Returns the stderr output if the process exits before it
    /// listens.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Result<Self, String> {
        Self::start_in_with_env(data_dir, extra, &[])
    }

    /// As [`QuiverProcess::start_in`], with these environment variables set for the process.
    pub fn start_in_with_env(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut child = Command::new(quiver_bin())
            .envs(env.iter().copied())
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--log")
            .arg("info")
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(if extra.contains(&"--workers") {
                &[][..]
            } else {
                &["--workers", "2"][..]
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn quiver");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line.split("listening on http://").nth(1) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr.trim().to_string());
                        }
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(log.lock().unwrap().clone());
            }
        };
        let mut process = QuiverProcess {
            child: Some(child),
            base: format!("http://{addr}"),
            stderr: log,
            _dir: None,
            data_dir: data_dir.to_path_buf(),
        };
        process.wait_ready();
        Ok(process)
    }

    /// The data directory it serves.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn wait_ready(&mut self) {
        let client = Client::new(&self.base, None);
        for _ in 0..600 {
            if let Ok((200, _)) = client.try_raw("GET", "/readyz", None) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("quiver exited with {status} before ready:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("quiver not ready after 30 s:\n{}", self.log());
    }

    /// A client without a key.
    pub fn client(&self) -> Client {
        Client::new(&self.base, None)
    }

    /// A client sending this key as `api-key`.
    pub fn client_with_key(&self, key: &str) -> Client {
        Client::new(&self.base, Some(key))
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit (graceful shutdown).
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        for _ in 0..600 {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!(
            "quiver did not stop within 30 s of SIGTERM:\n{}",
            self.log()
        );
    }
}

impl Drop for QuiverProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A JSON client that returns every status (errors included) to the test.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    key: Option<String>,
}

impl Client {
    /// A client of `base` (`http://host:port`) sending `key` as `api-key` when given.
    pub fn new(base: &str, key: Option<&str>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            agent,
            base: base.to_string(),
            key: key.map(String::from),
        }
    }

    /// Waits (up to 30 s) until `collection` has at least `segments` segments and its log is folded
    /// into them, i.e. the background seals are done; panics with the collection info otherwise.
    pub fn wait_for_seals(&self, collection: &str, segments: u64) {
        let path = format!("/collections/{collection}");
        for _ in 0..600 {
            let info = self.ok("GET", &path, None);
            if info["segments_count"].as_u64() >= Some(segments)
                && info["wal_bytes"].as_u64() < Some(1000)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("segments were not sealed: {}", self.ok("GET", &path, None));
    }

    /// The server's base URL (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request without a body whose answer is JSON outside Qdrant's envelope; must be 200.
    pub fn ok_raw(&self, method: &str, path: &str) -> Value {
        let (status, text) = self.send(method, path, &[], None).expect("request");
        assert_eq!(status, 200, "{method} {path}: {text}");
        serde_json::from_str(&text).expect("a JSON body")
    }

    /// Sends a request with extra headers and a raw body; returns the status and the body text.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), ureq::Error> {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if let Some(key) = &self.key {
            builder = builder.header("api-key", key);
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let has_body = body.is_some();
        let typed = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if has_body && !typed {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(body.unwrap_or_default())
            .expect("valid request");
        let mut response = if has_body {
            self.agent.run(request)?
        } else {
            let (parts, _) = request.into_parts();
            self.agent.run(ureq::http::Request::from_parts(parts, ()))?
        };
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()?;
        Ok((status, text))
    }

    /// GET of a binary body: status, the Content-Length header (if any) and the bytes.
    pub fn download(&self, path: &str) -> (u16, Option<u64>, Vec<u8>) {
        let mut builder = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{}{}", self.base, path));
        if let Some(key) = &self.key {
            builder = builder.header("api-key", key);
        }
        let request = builder.body(()).expect("valid request");
        let mut response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (response.status().as_u16(), length, bytes)
    }

    /// POSTs `file` as the multipart form field `field`; returns the status and the parsed JSON body.
    pub fn upload(&self, path: &str, field: &str, file: &[u8]) -> (u16, Value) {
        let boundary = "quiver-test-boundary-7d1f0c";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
             filename=\"upload.snapshot\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let (status, text) = self
            .send("POST", path, &[("content-type", &content_type)], Some(body))
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("POST {path} -> {status}: body is not JSON ({e}): {text}"));
        (status, value)
    }

    /// Sends JSON (or nothing); returns the status and the body as text.
    pub fn try_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), ureq::Error> {
        let body = body.map(|b| serde_json::to_vec(b).expect("serialize"));
        self.send(method, path, &[], body)
    }

    /// Sends JSON (or nothing); returns the status and the parsed JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, text) = self
            .try_raw(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: transport error {e}"));
        let value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{method} {path} -> {status}: body is not JSON ({e}): {text}")
        });
        (status, value)
    }

    /// Expects 200 with Qdrant's success envelope and returns `result`.
    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {value}");
        assert_eq!(value["status"], "ok", "{method} {path}: {value}");
        assert!(value["time"].is_number(), "{method} {path}: {value}");
        value["result"].clone()
    }

    /// Expects this error status with Qdrant's error envelope and returns the message.
    pub fn err(&self, method: &str, path: &str, body: Option<&Value>, expected: u16) -> String {
        let (status, value) = self.call(method, path, body);
        assert_eq!(status, expected, "{method} {path}: {value}");
        let message = value["status"]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no error message in {value}"));
        assert!(value["time"].is_number(), "{method} {path}: {value}");
        message.to_string()
    }

    /// Creates a collection with one unnamed vector.
    pub fn create_single(&self, name: &str, size: usize, distance: &str) {
        let body = json!({"vectors": {"size": size, "distance": distance}});
        assert_eq!(
            self.ok("PUT", &format!("/collections/{name}"), Some(&body)),
            json!(true)
        );
    }

    /// Upserts points (`[{id, vector, payload}]`) and waits for durability.
    pub fn upsert(&self, name: &str, points: Value) -> Value {
        self.ok(
            "PUT",
            &format!("/collections/{name}/points?wait=true"),
            Some(&json!({ "points": points })),
        )
    }
}

/// A deterministic pseudo-random vector (xorshift), so tests need no RNG state.
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `v / |v|`.
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let n = dot(v, v).sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Ids of a hit list (numbers only).
pub fn ids(hits: &Value) -> Vec<u64> {
    hits.as_array()
        .expect("a list of hits")
        .iter()
        .map(|h| h["id"].as_u64().expect("numeric id"))
        .collect()
}
