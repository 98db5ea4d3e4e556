//! Late interaction through a collection (issue 25): MaxSim queries through the HTTP API, then the
//! same queries on the same data directory in process.
//!
//! Starts `quiver serve` on a temp data directory, creates a collection with one Cosine multivector
//! (`max_sim`, default token store), upserts `--docs` documents of token vectors in requests of
//! `--batch`, waits until no seal runs, reports segments and disk bytes per token (and how many of
//! them are WAL), then runs every query one after another over HTTP (after one warm-up pass). Unless
//! `--no-in-process`, it then stops the server, opens the directory with `quiver_engine` and runs the
//! same queries through `Collection::search`, checking that both return the same ids. `--rounds N`
//! repeats the two passes N times, alternating, with a fresh server each time. With `--data-dir DIR`
//! the data directory is kept, and a later run on it skips the upserts and queries what is there.
//!
//! The token vectors are `doc_tokens.npy`, `doc_offsets.npy`, `query_tokens.npy` and
//! `query_offsets.npy` in `--data` (`scripts/bench/prepare_data.py --only tokens`).
//!
//! ```text
//! cargo build --release -p quiver --bin quiver && cargo build --release -p quiver-benches --example late_interaction
//! target/release/examples/late_interaction --data DIR [--bin target/release/quiver] [--docs N]
//!     [--queries N] [--batch 64] [--indexing-threshold KIB] [--segment-points N] [--no-in-process]
//!     [--data-dir DIR] [--rounds N]
//! ```

#[path = "common/npy.rs"]
mod npy;
#[path = "common/server.rs"]
mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use quiver_engine::collection::EngineOptions;
use quiver_engine::{Collections, PointId, QueryVector, SearchRequest};
use serde_json::{json, Value};

use server::Server;

struct Options {
    bin: String,
    data: PathBuf,
    docs: Option<usize>,
    queries: Option<usize>,
    batch: usize,
    limit: usize,
    indexing_threshold: Option<usize>,
    segment_points: Option<usize>,
    in_process: bool,
    /// A data directory that outlives the run; a collection `li` already in it is queried as is.
    data_dir: Option<PathBuf>,
    /// HTTP and in-process passes, alternating (the server restarts for each HTTP pass).
    rounds: usize,
}

fn parse() -> Options {
    let mut o = Options {
        bin: "target/release/quiver".into(),
        data: PathBuf::new(),
        docs: None,
        queries: None,
        batch: 64,
        limit: 10,
        indexing_threshold: None,
        segment_points: None,
        in_process: true,
        data_dir: None,
        rounds: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let num = || value.parse::<usize>().expect("a number");
        let mut step = 2;
        match args[i].as_str() {
            "--bin" => o.bin = value.clone(),
            "--data" => o.data = PathBuf::from(&value),
            "--docs" => o.docs = Some(num()),
            "--queries" => o.queries = Some(num()),
            "--batch" => o.batch = num().max(1),
            "--limit" => o.limit = num().max(1),
            "--indexing-threshold" => o.indexing_threshold = Some(num()),
            "--segment-points" => o.segment_points = Some(num()),
            "--data-dir" => o.data_dir = Some(PathBuf::from(&value)),
            "--rounds" => o.rounds = num().max(1),
            "--no-in-process" => {
                o.in_process = false;
                step = 1;
            }
            other => panic!("unknown argument {other}"),
        }
        i += step;
    }
    assert!(!o.data.as_os_str().is_empty(), "--data DIR is required");
    o
}

/// Token matrices: row-major `dim`-wide rows, `offsets[i]..offsets[i + 1]` the rows of item `i`.
struct Matrices {
    dim: usize,
    rows: Vec<f32>,
    offsets: Vec<u64>,
}

impl Matrices {
    fn load(data: &std::path::Path, tokens: &str, offsets: &str) -> Matrices {
        let t = npy::read_npy(&data.join(tokens)).unwrap();
        let dim = t.shape[1];
        Matrices {
            dim,
            rows: t.f32s().unwrap(),
            offsets: npy::read_npy(&data.join(offsets)).unwrap().u64s().unwrap(),
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn item(&self, i: usize) -> Vec<Vec<f32>> {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        self.rows[a * self.dim..b * self.dim]
            .chunks_exact(self.dim)
            .map(<[f32]>::to_vec)
            .collect()
    }
}

/// Mean, p50 and p99 in milliseconds, and queries per second at one client.
fn summary(mut lat: Vec<Duration>) -> (f64, f64, f64, f64) {
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let total: Duration = lat.iter().sum();
    let pct = |p: f64| ms(lat[((lat.len() - 1) as f64 * p).round() as usize]);
    let mean = ms(total) / lat.len() as f64;
    (mean, pct(0.5), pct(0.99), 1e3 / mean)
}

fn call(agent: &ureq::Agent, base: &str, method: &str, path: &str, body: &Value) -> Value {
    let url = format!("{base}{path}");
    let mut resp = match method {
        "PUT" => agent.put(&url).send_json(body),
        _ => agent.post(&url).send_json(body),
    }
    .unwrap();
    let status = resp.status();
    let v: Value = resp.body_mut().read_json().unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

fn main() {
    let o = parse();
    let docs = Matrices::load(&o.data, "doc_tokens.npy", "doc_offsets.npy");
    let queries = Matrices::load(&o.data, "query_tokens.npy", "query_offsets.npy");
    let n = o.docs.unwrap_or(docs.len()).min(docs.len());
    let nq = o.queries.unwrap_or(queries.len()).min(queries.len());
    let tokens = docs.offsets[n] as usize;
    println!(
        "{n} documents, {tokens} tokens x {}; {nq} queries ({:.1} tokens each); binary {}",
        docs.dim,
        queries.offsets[nq] as f64 / nq as f64,
        o.bin
    );

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut server = Some(match &o.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap();
            Server::start_at(&o.bin, dir, &[])
        }
        None => Server::start(&o.bin, &[]),
    });
    let first = server.as_ref().expect("started");
    let exists = agent
        .get(format!("{}/collections/li", first.base))
        .call()
        .unwrap()
        .status()
        == 200;
    let info = if exists {
        let info = first.collection_info_when(&agent, "li", |r| r["status"] == "green");
        println!(
            "reusing collection li with {} points (it was upserted by an earlier run)",
            info["result"]["points_count"]
        );
        info
    } else {
        ingest(&o, &agent, first, &docs, n, tokens)
    };
    let r = &info["result"];
    let disk = r["disk_bytes"].as_u64().unwrap_or(0) as f64;
    let wal = r["wal_bytes"].as_u64().unwrap_or(0) as f64;
    println!(
        "{} points in {} segments; disk {:.0} bytes/token, of which WAL {:.0}",
        r["points_count"],
        r["segments_count"],
        disk / tokens as f64,
        wal / tokens as f64
    );

    let query_body = |i: usize| json!({"query": queries.item(i), "using": "colbert", "limit": o.limit, "with_payload": false});
    let bodies: Vec<Value> = (0..nq).map(query_body).collect();
    let requests: Vec<SearchRequest> = (0..nq)
        .map(|i| {
            let mut r = SearchRequest::dense(Vec::new(), o.limit);
            r.using = "colbert".into();
            r.query = QueryVector::Multi(queries.item(i));
            r
        })
        .collect();
    println!("| pass | mean ms | p50 ms | p99 ms | QPS |");
    println!("| --- | --- | --- | --- | --- |");
    let mut temp: Option<tempfile::TempDir> = None;
    for round in 1..=o.rounds {
        let srv = server.take().unwrap_or_else(|| {
            let dir = o
                .data_dir
                .clone()
                .unwrap_or_else(|| temp.as_ref().expect("kept").path().to_path_buf());
            Server::start_at(&o.bin, &dir, &[])
        });
        for b in &bodies {
            call(&agent, &srv.base, "POST", "/collections/li/points/query", b);
        }
        let mut http_lat = Vec::with_capacity(nq);
        let mut http_ids = Vec::with_capacity(nq);
        for b in &bodies {
            let t = Instant::now();
            let v = call(&agent, &srv.base, "POST", "/collections/li/points/query", b);
            http_lat.push(t.elapsed());
            let ids: Vec<u64> = v["result"]["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_u64().unwrap())
                .collect();
            http_ids.push(ids);
        }
        let (mean, p50, p99, qps) = summary(http_lat);
        println!("| HTTP, round {round} | {mean:.2} | {p50:.2} | {p99:.2} | {qps:.1} |");
        let dir = match &o.data_dir {
            Some(dir) => {
                srv.stop_at();
                dir.clone()
            }
            None => {
                if temp.is_none() {
                    temp = Some(srv.stop());
                } else {
                    srv.stop_at();
                }
                temp.as_ref().expect("kept").path().to_path_buf()
            }
        };
        if !o.in_process {
            continue;
        }
        let cs = Collections::open(&dir, EngineOptions::default()).unwrap();
        let c = cs.get("li").unwrap();
        for r in &requests {
            c.search(r).unwrap();
        }
        let mut lat = Vec::with_capacity(nq);
        for (r, want) in requests.iter().zip(&http_ids) {
            let t = Instant::now();
            let hits = c.search(r).unwrap();
            lat.push(t.elapsed());
            let ids: Vec<u64> = hits
                .iter()
                .map(|h| match h.id {
                    PointId::Num(n) => n,
                    PointId::Uuid(_) => unreachable!("numeric ids were inserted"),
                })
                .collect();
            assert_eq!(&ids, want, "HTTP and in-process results differ");
        }
        let (mean, p50, p99, qps) = summary(lat);
        println!("| in process, round {round} | {mean:.2} | {p50:.2} | {p99:.2} | {qps:.1} |");
        drop(c);
        cs.close().unwrap();
    }
}

/// Creates the collection, upserts the documents and waits until no seal runs; returns the
/// collection info then.
fn ingest(
    o: &Options,
    agent: &ureq::Agent,
    server: &Server,
    docs: &Matrices,
    n: usize,
    tokens: usize,
) -> Value {
    let mut create = json!({
        "vectors": {"colbert": {
            "size": docs.dim,
            "distance": "Cosine",
            "multivector_config": {"comparator": "max_sim"}
        }}
    });
    if let Some(kib) = o.indexing_threshold {
        create["optimizers_config"]["indexing_threshold"] = json!(kib);
    }
    if let Some(points) = o.segment_points {
        create["optimizers_config"]["segment_max_points"] = json!(points);
    }
    call(agent, &server.base, "PUT", "/collections/li", &create);

    let t = Instant::now();
    for start in (0..n).step_by(o.batch) {
        let points: Vec<Value> = (start..(start + o.batch).min(n))
            .map(|i| json!({"id": i, "vector": {"colbert": docs.item(i)}}))
            .collect();
        call(
            agent,
            &server.base,
            "PUT",
            "/collections/li/points?wait=true",
            &json!({ "points": points }),
        );
    }
    let ingest_s = t.elapsed().as_secs_f64();
    // Quiet: no seal running for a second and nothing more to seal.
    let mut info;
    loop {
        info = server.collection_info_when(agent, "li", |r| r["status"] == "green");
        std::thread::sleep(Duration::from_secs(1));
        let again = server.collection_info_when(agent, "li", |_| true);
        if again["result"]["status"] == "green"
            && again["result"]["segments_count"] == info["result"]["segments_count"]
        {
            break;
        }
    }
    println!(
        "ingest {ingest_s:.1} s ({:.0} tokens/s), settled after {:.1} s",
        tokens as f64 / ingest_s,
        t.elapsed().as_secs_f64()
    );
    info
}
