//! Query latency of a late-interaction collection before and after the merge optimizer (in process).
//!
//! Builds a synthetic token corpus (`quiver_engine::plaid::synthetic`), writes it into a collection
//! with one Cosine multivector (default token store) sealed every `--segment-points` documents and
//! kept apart (`default_segment_number` above the segment count), runs every query one after another
//! (after one warm-up pass), then lowers `default_segment_number` to `--target`, lets the optimizer
//! merge, and runs the same queries again. Reports segments, merge time, mean and p50/p99 latency, and
//! how many of the top ids the two runs share (a merge rebuilds the token store, so scores may shift).
//!
//! ```text
//! cargo build --release -p quiver-benches --example merge_segments
//! target/release/examples/merge_segments [--docs 20000] [--tokens 18] [--dim 128]
//!     [--segment-points 200] [--target 2] [--queries 100]
//! ```

use std::collections::HashSet;
use std::time::{Duration, Instant};

use quiver_engine::collection::EngineOptions;
use quiver_engine::config::{CollectionConfig, Distance, MultiVectorConfig, VectorParams};
use quiver_engine::plaid::synthetic::{Corpus, CorpusParams};
use quiver_engine::point::{NamedVectors, PointInsert, Vector};
use quiver_engine::{Collection, Collections, PointId, QueryVector, SearchRequest};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .map(|i| args[i + 1].parse().expect("a number"))
        .unwrap_or(default)
}

fn run(c: &Collection, queries: &[SearchRequest]) -> (Vec<Duration>, Vec<Vec<PointId>>) {
    for q in queries {
        c.search(q).unwrap();
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut ids = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let hits = c.search(q).unwrap();
        times.push(t.elapsed());
        ids.push(hits.into_iter().map(|h| h.id).collect());
    }
    (times, ids)
}

fn report(label: &str, c: &Collection, times: &mut [Duration]) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().map(|&d| ms(d)).sum::<f64>() / times.len() as f64;
    println!(
        "{label}: {} segments, mean {mean:.2} ms, p50 {:.2} ms, p99 {:.2} ms",
        c.info().segments_count,
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 99 / 100).min(times.len() - 1)]),
    );
}

fn main() {
    let docs = arg("--docs", 20_000);
    let segment_points = arg("--segment-points", 200);
    let target = arg("--target", 2);
    let corpus = Corpus::generate(&CorpusParams {
        docs,
        tokens_per_doc: arg("--tokens", 18),
        dim: arg("--dim", 128),
        queries: arg("--queries", 100),
        query_tokens: 16,
        seed: 11,
        ..CorpusParams::default()
    });
    let dim = corpus.dim;
    let dir = tempfile::tempdir().unwrap();
    let cs = Collections::open(
        dir.path(),
        EngineOptions {
            deterministic: true,
            build_threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let mut config = CollectionConfig::single(dim, Distance::Cosine);
    config.vectors.clear();
    config.vectors.insert(
        "colbert".into(),
        VectorParams {
            size: dim,
            distance: Distance::Cosine,
            hnsw_config: None,
            multivector_config: Some(MultiVectorConfig::max_sim()),
            on_disk: None,
            quantization_config: None,
        },
    );
    config.optimizer_config.segment_max_points = segment_points;
    config.optimizer_config.indexing_threshold = Some(0);
    config.optimizer_config.default_segment_number = Some(usize::MAX / 2);
    let c = cs.create("li", config).unwrap();
    let t = Instant::now();
    for start in (0..docs).step_by(segment_points) {
        let batch = (start..(start + segment_points).min(docs))
            .map(|i| {
                let (a, b) = (corpus.offsets[i] as usize, corpus.offsets[i + 1] as usize);
                let rows = corpus.data[a * dim..b * dim]
                    .chunks_exact(dim)
                    .map(|r| r.to_vec())
                    .collect();
                let mut vectors = NamedVectors::new();
                vectors.insert("colbert".into(), Vector::Multi(rows));
                PointInsert {
                    id: PointId::Num(i as u64),
                    vectors,
                    payload: None,
                }
            })
            .collect();
        c.upsert(batch).unwrap();
        c.flush().unwrap();
    }
    println!(
        "{docs} documents, {} tokens x {dim}: written and sealed in {:.1} s",
        corpus.offsets[docs],
        t.elapsed().as_secs_f64()
    );
    let queries: Vec<SearchRequest> = corpus
        .queries
        .iter()
        .map(|q| {
            let mut r = SearchRequest::dense(Vec::new(), 10);
            r.using = "colbert".into();
            r.query = QueryVector::Multi(q.chunks_exact(dim).map(|r| r.to_vec()).collect());
            r
        })
        .collect();
    let (mut before, ids_before) = run(&c, &queries);
    report("before", &c, &mut before);

    let t = Instant::now();
    c.update_config(|cfg| {
        cfg.optimizer_config.default_segment_number = Some(target);
        Ok(())
    })
    .unwrap();
    c.flush().unwrap();
    println!("merged in {:.1} s", t.elapsed().as_secs_f64());
    let (mut after, ids_after) = run(&c, &queries);
    report("after", &c, &mut after);
    let shared: usize = ids_before
        .iter()
        .zip(&ids_after)
        .map(|(a, b)| {
            let a: HashSet<_> = a.iter().collect();
            b.iter().filter(|id| a.contains(id)).count()
        })
        .sum();
    let total: usize = ids_before.iter().map(Vec::len).sum();
    println!("top-10 ids shared before/after: {shared} of {total}");
}
