//! Search load over HTTP next to the same searches in-process, on the same data.
//!
//! Starts `quiver serve` on a temp data directory, loads random vectors over HTTP, then runs
//! `--threads` clients issuing `points/query` for `--seconds` and reports QPS, p50 and p99. It then
//! stops the server, opens the same data directory in-process and runs the same queries through
//! `Collection::search` with the same number of threads.
//!
//! With `--data DIR` the points and queries come from a prepared data set (`DIR/base.npy`,
//! `DIR/queries.npy`, e.g. Fashion-MNIST from `scripts/bench/prepare_data.py`; `--points 0` loads
//! all of it) instead of random vectors. Request bodies are encoded before the clock starts and
//! responses are read as bytes, so the client's own JSON work, which shares the machine's cores
//! with the server, stays out of what is measured as far as an HTTP client allows.
//!
//! `--client raw` (the default) sends each request as prepared bytes over one keep-alive TCP
//! connection per thread and reads the answer by its `Content-Length`, as `wrk` does: the client's
//! CPU per request is a write and a read. `--client ureq` uses a general HTTP client (header maps,
//! URL parsing, pooling), which costs the shared cores more per request.
//!
//! ```text
//! cargo build --release -p quiver --bin quiver && cargo build --release -p quiver-benches --example http_load
//! target/release/examples/http_load --bin target/release/quiver --points 20000 --dim 128 --threads 8
//! target/release/examples/http_load --bin target/release/quiver --data target/bench-data/fashion-mnist \
//!     --points 0 --distance Euclid --ef 64 --threads 8 [--quantization none|int8|binary]
//! ```
//!
//! `--quantization` gives the collection Qdrant's `quantization_config` (codes `always_ram`); both
//! paths then walk the codes and rescore with the originals, as the collection's config says.

#[path = "common/npy.rs"]
mod npy;
#[path = "common/server.rs"]
mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use server::Server;

use quiver_engine::collection::EngineOptions;
use quiver_engine::{Collections, SearchRequest};

struct Options {
    bin: String,
    points: usize,
    dim: usize,
    threads: usize,
    seconds: u64,
    k: usize,
    segment: usize,
    data: Option<String>,
    distance: String,
    ef: Option<usize>,
    client: Client,
    /// `none`, `int8` or `binary`: the collection's `quantization_config` (codes kept in RAM).
    quantization: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Raw,
    Ureq,
}

fn parse() -> Options {
    let mut o = Options {
        bin: "target/release/quiver".into(),
        points: 20_000,
        dim: 128,
        threads: 8,
        seconds: 10,
        k: 10,
        segment: 10_000,
        data: None,
        distance: "Cosine".into(),
        ef: None,
        client: Client::Raw,
        quantization: "none".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        let num = || value.parse::<usize>().expect("a number");
        match pair[0].as_str() {
            "--bin" => o.bin = value.clone(),
            "--points" => o.points = num(),
            "--dim" => o.dim = num(),
            "--threads" => o.threads = num(),
            "--seconds" => o.seconds = num() as u64,
            "--k" => o.k = num(),
            "--segment" => o.segment = num(),
            "--data" => o.data = Some(value.clone()),
            "--distance" => o.distance = value.clone(),
            "--ef" => o.ef = Some(num()),
            "--quantization" => o.quantization = value.clone(),
            "--client" => {
                o.client = match value.as_str() {
                    "raw" => Client::Raw,
                    "ureq" => Client::Ureq,
                    other => panic!("--client raw|ureq, not {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

fn vector(seed: u64, dim: usize) -> Vec<f32> {
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

/// Runs `work(thread, i)` on `threads` threads for `seconds`; returns QPS and sorted latencies.
fn drive<F>(threads: usize, seconds: u64, work: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize, u64) + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let work = work.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let s = Instant::now();
                    work(t, i);
                    latencies.push(s.elapsed());
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / elapsed, all)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// One keep-alive HTTP/1.1 connection that sends prepared requests and reads each answer by its
/// `Content-Length`.
struct RawConnection {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConnection {
    fn open(addr: &str) -> Self {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        RawConnection {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `request` (a whole HTTP request) and returns the answer's body.
    fn call(&mut self, request: &[u8]) -> &[u8] {
        use std::io::{Read, Write};
        self.stream.write_all(request).expect("send");
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        let (head_end, body_len) = loop {
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("ASCII headers");
                assert!(
                    head.starts_with("HTTP/1.1 200"),
                    "unexpected answer: {head}"
                );
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().expect("content-length"))
                    })
                    .expect("a content-length header");
                break (end + 4, len);
            }
        };
        while self.buf.len() < head_end + body_len {
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        &self.buf[head_end..head_end + body_len]
    }
}

/// Base points and query vectors, flat, `dim` wide.
struct Data {
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
}

fn load_data(o: &Options) -> Data {
    match &o.data {
        Some(dir) => {
            let dir = std::path::Path::new(dir);
            let base = npy::read_npy(&dir.join("base.npy")).unwrap();
            let queries = npy::read_npy(&dir.join("queries.npy")).unwrap();
            let dim = base.cols().unwrap();
            assert_eq!(
                queries.cols().unwrap(),
                dim,
                "queries and base differ in width"
            );
            let mut base = base.f32s().unwrap();
            if o.points > 0 {
                base.truncate(o.points * dim);
            }
            Data {
                dim,
                base,
                queries: queries.f32s().unwrap(),
            }
        }
        None => Data {
            dim: o.dim,
            base: (0..o.points as u64)
                .flat_map(|i| vector(i, o.dim))
                .collect(),
            queries: (0..1000u64)
                .flat_map(|i| vector(1_000_000 + i, o.dim))
                .collect(),
        },
    }
}

fn main() {
    let o = parse();
    let data = load_data(&o);
    let (dim, k) = (data.dim, o.k);
    let points = data.base.len() / dim;
    let server = Server::start(&o.bin, &[]);
    let base = server.base.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    // A full-scan threshold of 1 KiB gives every sealed segment its graph whatever its size
    // (the default, 10,000 KiB of vectors, leaves 128-d segments under 80,000 points without
    // one, as Qdrant does), so the wait below ends and both paths walk the same graphs.
    let mut create = json!({"vectors": {"size": dim, "distance": o.distance},
                            "hnsw_config": {"full_scan_threshold": 1},
                            "optimizers_config": {"segment_max_points": o.segment}});
    match o.quantization.as_str() {
        "none" => {}
        "int8" => {
            create["quantization_config"] = json!({"scalar": {"type": "int8", "always_ram": true}});
        }
        "binary" => create["quantization_config"] = json!({"binary": {"always_ram": true}}),
        other => panic!("--quantization none|int8|binary, not {other}"),
    }
    agent
        .put(format!("{base}/collections/bench"))
        .send_json(create)
        .unwrap();
    let load = Instant::now();
    for (c, chunk) in data.base.chunks(1000 * dim).enumerate() {
        let points: Vec<Value> = chunk
            .chunks(dim)
            .enumerate()
            .map(|(i, v)| json!({"id": c * 1000 + i, "vector": v}))
            .collect();
        agent
            .put(format!("{base}/collections/bench/points?wait=true"))
            .send_json(json!({"points": points}))
            .unwrap();
    }
    // Measure the steady state: every point in a sealed segment with its graph, no seal running.
    let info = server.collection_info_when(&agent, "bench", |r| {
        r["indexed_vectors_count"].as_u64() == Some(points as u64)
            && r["status"].as_str() == Some("green")
    });
    eprintln!(
        "loaded {points} points in {:.1} s (indexing included); segments {}, indexed {}",
        load.elapsed().as_secs_f64(),
        info["result"]["segments_count"],
        info["result"]["indexed_vectors_count"]
    );

    let queries: Arc<Vec<Vec<f32>>> =
        Arc::new(data.queries.chunks(dim).map(<[f32]>::to_vec).collect());
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        queries
            .iter()
            .map(|q| {
                let mut body = json!({"query": q, "limit": k});
                if let Some(ef) = o.ef {
                    body["params"] = json!({"hnsw_ef": ef});
                }
                serde_json::to_vec(&body).unwrap()
            })
            .collect(),
    );
    let pick = |t: usize, i: u64, n: usize| (t * 7919 + i as usize) % n;
    let url = format!("{base}/collections/bench/points/query");
    let http = match o.client {
        Client::Ureq => {
            let agent = agent.clone();
            let bodies = bodies.clone();
            drive(o.threads, o.seconds, move |t, i| {
                let body = &bodies[pick(t, i, bodies.len())];
                let mut response = agent
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(&body[..])
                    .unwrap();
                let bytes = response.body_mut().read_to_vec().unwrap();
                assert!(bytes.starts_with(b"{\"result\""), "unexpected answer");
            })
        }
        Client::Raw => {
            let addr = base.trim_start_matches("http://").to_string();
            let requests: Arc<Vec<Vec<u8>>> = Arc::new(
                bodies
                    .iter()
                    .map(|body| {
                        let mut r = format!(
                            "POST /collections/bench/points/query HTTP/1.1\r\nHost: {addr}\r\n\
                             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(body);
                        r
                    })
                    .collect(),
            );
            thread_local! {
                static CONNECTION: std::cell::RefCell<Option<RawConnection>> =
                    const { std::cell::RefCell::new(None) };
            }
            drive(o.threads, o.seconds, move |t, i| {
                let request = &requests[pick(t, i, requests.len())];
                CONNECTION.with(|c| {
                    let mut c = c.borrow_mut();
                    let answer = c
                        .get_or_insert_with(|| RawConnection::open(&addr))
                        .call(request);
                    assert!(answer.starts_with(b"{\"result\""), "unexpected answer");
                });
            })
        }
    };
    let dir = server.stop();

    let collections = Collections::open(dir.path(), EngineOptions::default()).unwrap();
    let collection = collections.get("bench").unwrap();
    while collection.info().optimizing
        || collection.info().indexed_vectors_count < collection.info().points_count
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let ef = o.ef;
    let engine = drive(o.threads, o.seconds, move |t, i| {
        let mut request = SearchRequest::dense(queries[pick(t, i, queries.len())].clone(), k);
        request.ef = ef;
        collection.search(&request).unwrap();
    });
    collections.close().unwrap();

    println!("| path | threads | QPS | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, (qps, lat)) in [
        ("HTTP `points/query`", http),
        ("in-process `Collection::search`", engine),
    ] {
        println!(
            "| {name} | {} | {qps:.0} | {:.2} | {:.2} |",
            o.threads,
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }
}
