//! Filtered dense search over one sealed segment, with the filtered field unindexed and then indexed:
//! QPS and recall@10 (against the exact filtered ranking) at 1 %, 10 % and 50 % of the points passing.
//! Without an index, every node a filtered graph walk visits parses that point's JSON payload; with
//! one, the filter is answered for the whole segment before the walk.
//!
//! ```text
//! cargo run --release -p quiver-benches --example filter_bench -- [--n 50000] [--dim 64] [--queries 200]
//!     [--full-scan-kib K]
//! ```
//!
//! `--full-scan-kib` sets the vector's `full_scan_threshold` as Qdrant's API takes it (KiB of vectors,
//! 10,000 by default on a Qdrant server); without it the engine's own default (in points) applies.

use std::collections::HashSet;
use std::time::Instant;

use quiver_engine::collection::EngineOptions;
use quiver_engine::config::{CollectionConfig, Distance};
use quiver_engine::filter::Filter;
use quiver_engine::point::{NamedVectors, PointInsert, SearchRequest, Vector};
use quiver_engine::query::{QueryInput, QueryRequest};
use quiver_engine::{Collection, Collections, PointId};
use rand::{Rng, SeedableRng};
use serde_json::json;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect()
}

/// Runs every query with `filter`; returns queries per second and the hits.
fn run(
    c: &Collection,
    queries: &[Vec<f32>],
    filter: Option<&Filter>,
    exact: bool,
) -> (f64, Vec<Vec<PointId>>) {
    let started = Instant::now();
    let hits: Vec<Vec<PointId>> = queries
        .iter()
        .map(|q| {
            let mut req = SearchRequest::dense(q.clone(), 10);
            req.filter = filter.cloned();
            req.exact = exact;
            c.search(&req).unwrap().into_iter().map(|h| h.id).collect()
        })
        .collect();
    (queries.len() as f64 / started.elapsed().as_secs_f64(), hits)
}

/// Recall@10 of `hits` against `truth`.
fn recall(hits: &[Vec<PointId>], truth: &[Vec<PointId>]) -> f64 {
    let (mut found, mut wanted) = (0, 0);
    for (h, t) in hits.iter().zip(truth) {
        let t: HashSet<_> = t.iter().collect();
        wanted += t.len();
        found += h.iter().filter(|id| t.contains(id)).count();
    }
    found as f64 / wanted.max(1) as f64
}

fn main() {
    let n = arg("--n", 50_000);
    let dim = arg("--dim", 64);
    let nq = arg("--queries", 200);
    let dir = tempfile::tempdir().unwrap();
    let cs = Collections::open(dir.path(), EngineOptions::default()).unwrap();
    let mut config = CollectionConfig::single(dim, Distance::Cosine);
    config.optimizer_config.segment_max_points = n;
    let kib = arg("--full-scan-kib", 0);
    if kib > 0 {
        // Converted as the server converts it: 4 bytes per component.
        config.hnsw_config.full_scan_threshold = (kib * 1024 / (dim * 4)).max(1);
    }
    let c = cs.create("f", config).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let data = vectors(n, dim, 1);
    for (ci, chunk) in data.chunks(5000).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = (ci * 5000 + i) as u64;
                let mut vectors = NamedVectors::new();
                vectors.insert(String::new(), Vector::Dense(v.clone()));
                // A payload of a typical size: a few fields besides the filtered one.
                let payload = json!({
                    "g": rng.random_range(0..100),
                    "title": format!("document number {id} of the benchmark corpus"),
                    "tags": ["alpha", "beta", "gamma"],
                    "price": rng.random_range(0.0..500.0),
                    "meta": {"source": "bench", "lang": "en", "rev": id % 7},
                });
                PointInsert {
                    id: PointId::Num(id),
                    vectors,
                    payload: Some(payload.as_object().unwrap().clone()),
                }
            })
            .collect();
        c.upsert(points).unwrap();
    }
    c.flush().unwrap();
    let info = c.info();
    eprintln!(
        "{n} points x {dim}, {} indexed, {} segments, full_scan_threshold {} points",
        info.indexed_vectors_count,
        info.segments_count,
        c.config().hnsw_config.full_scan_threshold
    );
    let queries = vectors(nq, dim, 2);
    let filters: Vec<(usize, Filter)> = [1, 10, 50]
        .into_iter()
        .map(|pct| {
            let f = json!({"must": [{"key": "g", "range": {"lt": pct}}]});
            (pct, serde_json::from_value(f).unwrap())
        })
        .collect();
    // The graph's own recall at the same parameters, for scale.
    let (_, truth) = run(&c, &queries, None, true);
    let (qps, hits) = run(&c, &queries, None, false);
    println!(
        "no filter               QPS {qps:>8.1}  recall@10 {:.4}",
        recall(&hits, &truth)
    );
    let mut unindexed = Vec::new();
    for indexed in [false, true] {
        if indexed {
            let started = Instant::now();
            c.create_payload_index("g", serde_json::from_value(json!("integer")).unwrap())
                .unwrap();
            eprintln!(
                "index created over the sealed segment in {:?}",
                started.elapsed()
            );
        }
        for (i, (pct, filter)) in filters.iter().enumerate() {
            let (_, truth) = run(&c, &queries, Some(filter), true);
            // One warm-up pass, then the timed one.
            run(&c, &queries, Some(filter), false);
            let (qps, hits) = run(&c, &queries, Some(filter), false);
            let recall = recall(&hits, &truth);
            let mut plan = QueryRequest::nearest(None, QueryInput::Dense(queries[0].clone()), 10);
            plan.filter = Some(filter.clone());
            let strategy = c.query(&plan).unwrap().stages[0].strategy;
            let ratio = if indexed {
                format!("  {:.2}x the unindexed QPS", qps / unindexed[i])
            } else {
                unindexed.push(qps);
                String::new()
            };
            println!(
                "selectivity {pct:>2} %  index {:<5}  {:<5}  QPS {qps:>8.1}  recall@10 {recall:.4}{ratio}",
                indexed,
                format!("{strategy:?}")
            );
        }
    }
}
