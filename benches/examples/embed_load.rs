//! What the model's batching worker buys: `POST /embed` with one text per request, sent by 1 client
//! (every forward pass holds one text) and then by `--clients` clients at once (the worker packs the
//! waiting requests into shared passes), against the same server and model.
//!
//! Starts `quiver serve --model bench=MODEL` on a temp data directory, waits for `/readyz`, runs both
//! phases for `--seconds` each, and prints texts per second, the mean batch size (from the server's
//! `quiver_encoder_inputs_total / quiver_encoder_batches_total`) and p50 latency.
//!
//! ```text
//! cargo build --release -p quiver --bin quiver && cargo build --release -p quiver-benches --example embed_load
//! target/release/examples/embed_load --bin target/release/quiver --model DIR --clients 8 --seconds 20
//! ```

#[path = "common/server.rs"]
mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use server::Server;

struct Options {
    bin: String,
    model: String,
    clients: usize,
    seconds: u64,
    words: usize,
}

fn parse() -> Options {
    let mut o = Options {
        bin: "target/release/quiver".into(),
        model: String::new(),
        clients: 8,
        seconds: 20,
        words: 48,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--bin" => o.bin = value,
            "--model" => o.model = value,
            "--clients" => o.clients = value.parse().expect("--clients N"),
            "--seconds" => o.seconds = value.parse().expect("--seconds N"),
            "--words" => o.words = value.parse().expect("--words N"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    assert!(!o.model.is_empty(), "--model DIR is required");
    o
}

/// The server's counter `name{model="bench"}`.
fn counter(agent: &ureq::Agent, base: &str, name: &str) -> f64 {
    let text = agent
        .get(format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let prefix = format!("{name}{{model=\"bench\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Runs `clients` threads posting one text per request for `seconds`; returns (texts, latencies).
fn phase(base: &str, clients: usize, seconds: u64, words: usize) -> (usize, Vec<f64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (stop, latencies, base) = (stop.clone(), latencies.clone(), base.to_string());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(Duration::from_secs(120)))
                    .build()
                    .into();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    // Distinct texts, so nothing is answered from a repeat.
                    let text: String = (0..words)
                        .map(|w| format!("word{} ", (c * 7919 + n * 31 + w) % 997))
                        .collect();
                    let started = Instant::now();
                    agent
                        .post(format!("{base}/embed"))
                        .send_json(json!({ "inputs": text }))
                        .unwrap();
                    latencies
                        .lock()
                        .unwrap()
                        .push(started.elapsed().as_secs_f64() * 1e3);
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let texts = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let mut l = Arc::try_unwrap(latencies).unwrap().into_inner().unwrap();
    l.sort_by(f64::total_cmp);
    (texts, l)
}

fn main() {
    let o = parse();
    let server = Server::start(&o.bin, &["--model".into(), format!("bench={}", o.model)]);
    let base = server.base.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    // Warm-up, so neither phase pays for first-touch page faults.
    phase(&base, 1, 2, o.words);

    println!("| clients | texts/s | mean texts per forward pass | p50 ms | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    let mut baseline = None;
    for clients in [1, o.clients] {
        let batches = counter(&agent, &base, "quiver_encoder_batches_total");
        let inputs = counter(&agent, &base, "quiver_encoder_inputs_total");
        let (texts, latencies) = phase(&base, clients, o.seconds, o.words);
        let per_pass = (counter(&agent, &base, "quiver_encoder_inputs_total") - inputs)
            / (counter(&agent, &base, "quiver_encoder_batches_total") - batches).max(1.0);
        let rate = texts as f64 / o.seconds as f64;
        let ratio = rate / *baseline.get_or_insert(rate);
        let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
        println!("| {clients} | {rate:.1} | {per_pass:.2} | {p50:.1} | {ratio:.2}× |");
    }
    drop(server.stop());
}
