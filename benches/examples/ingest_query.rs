//! End to end with a model bound to a collection: ingest documents over HTTP (the server embeds them),
//! then query with text and report latency percentiles and where the time went (`?timings=true`).
//!
//! Starts `quiver serve --model bench=MODEL` on a temp data directory, creates a collection whose
//! dense vector (and, with `--tokens`, a multivector) is bound to the model, upserts `--docs` texts
//! (one per line of `--texts`, or generated sentences) in requests of `--batch` from `--clients`
//! threads, then runs `--queries` texts (lines after the documents) one after another. Segments seal
//! every `--segment-points` points (default 1000), so the queries walk HNSW graphs.
//!
//! ```text
//! cargo build --release -p quiver --bin quiver && cargo build --release -p quiver-benches --example ingest_query
//! target/release/examples/ingest_query --bin target/release/quiver --model DIR --texts glosses.txt \
//!     --docs 5000 --queries 200 [--dims 256] [--tokens]
//! ```

#[path = "common/server.rs"]
mod server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use server::Server;

struct Options {
    bin: String,
    model: String,
    texts: Option<String>,
    docs: usize,
    queries: usize,
    batch: usize,
    clients: usize,
    dims: Option<usize>,
    tokens: bool,
    segment_points: usize,
}

fn parse() -> Options {
    let mut o = Options {
        bin: "target/release/quiver".into(),
        model: String::new(),
        texts: None,
        docs: 2000,
        queries: 100,
        batch: 32,
        clients: 2,
        dims: None,
        tokens: false,
        segment_points: 1000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let mut step = 2;
        match args[i].as_str() {
            "--bin" => o.bin = value,
            "--model" => o.model = value,
            "--texts" => o.texts = Some(value),
            "--docs" => o.docs = value.parse().expect("--docs N"),
            "--queries" => o.queries = value.parse().expect("--queries N"),
            "--batch" => o.batch = value.parse().expect("--batch N"),
            "--clients" => o.clients = value.parse().expect("--clients N"),
            "--dims" => o.dims = Some(value.parse().expect("--dims N")),
            "--segment-points" => o.segment_points = value.parse().expect("--segment-points N"),
            "--tokens" => {
                o.tokens = true;
                step = 1;
            }
            other => panic!("unknown argument {other}"),
        }
        i += step;
    }
    assert!(!o.model.is_empty(), "--model DIR is required");
    o
}

/// `n` texts: lines of the file, or sentences built from a small vocabulary.
fn texts(o: &Options, n: usize) -> Vec<String> {
    if let Some(path) = &o.texts {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .expect("--texts file")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        assert!(
            lines.len() >= n,
            "{path} has {} lines, need {n}",
            lines.len()
        );
        return lines[..n].to_vec();
    }
    const WORDS: [&str; 16] = [
        "river", "city", "bread", "engine", "music", "forest", "market", "winter", "language",
        "bridge", "garden", "planet", "history", "machine", "ocean", "village",
    ];
    (0..n)
        .map(|i| {
            (0..12)
                .map(|w| WORDS[(i * 7 + w * 13 + i / 16) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

fn main() {
    let o = parse();
    let server = Server::start(&o.bin, &["--model".into(), format!("bench={}", o.model)]);
    let base = server.base.clone();
    let http = agent();
    // The model's sizes, from the embedding routes.
    let probe: Value = http
        .post(format!("{base}/embed"))
        .send_json(json!({"inputs": "probe"}))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let size = probe[0].as_array().unwrap().len();
    let mut vectors = json!({"dense": {"size": size, "distance": "Cosine"}});
    let mut embedding = json!({"dense": {"model": "bench"}});
    if let Some(d) = o.dims {
        embedding["dense"]["dims"] = json!(d);
    }
    if o.tokens {
        let rows: Value = http
            .post(format!("{base}/embed_all"))
            .send_json(json!({"inputs": "probe"}))
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let token_size = rows[0][0].as_array().unwrap().len();
        vectors["colbert"] = json!({"size": token_size, "distance": "Cosine",
                                    "multivector_config": {"comparator": "max_sim"}});
        embedding["colbert"] = json!({"model": "bench"});
    }
    http.put(format!("{base}/collections/bench"))
        .send_json(json!({"vectors": vectors, "embedding": embedding,
                          "optimizers_config": {"segment_max_points": o.segment_points}}))
        .unwrap();

    let all = texts(&o, o.docs + o.queries);
    let (docs, queries) = all.split_at(o.docs);
    let docs = Arc::new(docs.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..o.clients)
        .map(|_| {
            let (docs, next, base, batch) = (docs.clone(), next.clone(), base.clone(), o.batch);
            std::thread::spawn(move || {
                let http = agent();
                loop {
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= docs.len() {
                        break;
                    }
                    let points: Vec<Value> = (from..(from + batch).min(docs.len()))
                        .map(|i| json!({"id": i, "vector": {"text": docs[i]}}))
                        .collect();
                    http.put(format!("{base}/collections/bench/points?wait=true"))
                        .send_json(json!({ "points": points }))
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let ingest_s = started.elapsed().as_secs_f64();
    // Queries run once the background seals (graph builds) are done.
    let info = server.collection_info_when(&http, "bench", |r| r["status"] == "green");
    println!(
        "collection: {} points, {} in graphs, {} segments",
        info["result"]["points_count"],
        info["result"]["indexed_vectors_count"],
        info["result"]["segments_count"]
    );

    let mut latencies = Vec::new();
    let mut embed_ms = 0.0;
    let mut stage_ms: Vec<(String, f64)> = Vec::new();
    for q in queries {
        let started = Instant::now();
        let res: Value = http
            .post(format!(
                "{base}/collections/bench/points/query?timings=true"
            ))
            .send_json(json!({"query": {"text": q}, "limit": 10}))
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        let timings = &res["result"]["timings"];
        embed_ms += timings["embed_ms"].as_f64().unwrap_or(0.0);
        for s in timings["stages"].as_array().into_iter().flatten() {
            let label = format!(
                "{} ({} d, limit {})",
                s["kind"].as_str().unwrap_or("?"),
                s["dims"],
                s["limit"]
            );
            let ms = s["ms"].as_f64().unwrap_or(0.0);
            match stage_ms.iter_mut().find(|(l, _)| *l == label) {
                Some((_, total)) => *total += ms,
                None => stage_ms.push((label, ms)),
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let n = queries.len().max(1) as f64;
    println!(
        "ingest: {} documents in {ingest_s:.1} s = {:.1} documents/s ({} clients, {} per request)",
        o.docs,
        o.docs as f64 / ingest_s,
        o.clients,
        o.batch
    );
    println!(
        "query ({} texts, limit 10): p50 {:.1} ms, p99 {:.1} ms; mean embed {:.2} ms",
        queries.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        embed_ms / n
    );
    for (label, total) in stage_ms {
        println!("  stage {label}: mean {:.3} ms", total / n);
    }
    drop(server.stop());
}
