//! Search load over HTTP next to the same searches in-process, on the same data.
//!
//! Starts `quiver serve` on a temp data directory, loads random vectors over HTTP, then runs
//! `--threads` clients issuing `points/query` for `--seconds` and reports QPS, p50 and p99. It then
//! stops the server, opens the same data directory in-process and runs the same queries through
//! `Collection::search` with the same number of threads.
//!
//! ```text
//! cargo build --release -p quiver --bin quiver && cargo build --release -p quiver-benches --example http_load
//! target/release/examples/http_load --bin target/release/quiver --points 20000 --dim 128 --threads 8
//! ```

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

fn main() {
    let o = parse();
    let server = Server::start(&o.bin, &[]);
    let base = server.base.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    agent
        .put(format!("{base}/collections/bench"))
        .send_json(json!({"vectors": {"size": o.dim, "distance": "Cosine"},
                          "optimizers_config": {"segment_max_points": o.segment}}))
        .unwrap();
    let load = Instant::now();
    for chunk in (0..o.points as u64).collect::<Vec<_>>().chunks(1000) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": i, "vector": vector(i, o.dim)}))
            .collect();
        agent
            .put(format!("{base}/collections/bench/points?wait=true"))
            .send_json(json!({"points": points}))
            .unwrap();
    }
    // Measure the steady state: every point in a sealed segment with its graph, no seal running.
    let info = server.collection_info_when(&agent, "bench", |r| {
        r["indexed_vectors_count"].as_u64() == Some(o.points as u64)
            && r["status"].as_str() == Some("green")
    });
    eprintln!(
        "loaded {} points in {:.1} s (indexing included); segments {}, indexed {}",
        o.points,
        load.elapsed().as_secs_f64(),
        info["result"]["segments_count"],
        info["result"]["indexed_vectors_count"]
    );

    let (dim, k) = (o.dim, o.k);
    let url = format!("{base}/collections/bench/points/query");
    let http = {
        let agent = agent.clone();
        drive(o.threads, o.seconds, move |t, i| {
            let q = vector(1_000_000 + (t as u64) * 1_000_000 + i, dim);
            agent
                .post(&url)
                .send_json(json!({"query": q, "limit": k}))
                .unwrap();
        })
    };
    let dir = server.stop();

    let collections = Collections::open(dir.path(), EngineOptions::default()).unwrap();
    let collection = collections.get("bench").unwrap();
    while collection.info().optimizing
        || collection.info().indexed_vectors_count < collection.info().points_count
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let engine = drive(o.threads, o.seconds, move |t, i| {
        let q = vector(1_000_000 + (t as u64) * 1_000_000 + i, dim);
        collection.search(&SearchRequest::dense(q, k)).unwrap();
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
