//! Quiver's side of `scripts/bench/sparse_filter_bench.py`: sparse (BM25) search and filtered dense
//! search through the engine's collection API in process, on the files that script prepares. Prints
//! one JSON object (times and QPS) on stdout and writes the ids it found as `.npy` files under `--out`,
//! from which the script computes recall for Quiver and Qdrant Edge alike.
//!
//! ```text
//! sparse_filter_bench sparse   DIR --out DIR [--threads 2] [--work DIR]
//! sparse_filter_bench filtered DIR --out DIR [--index none|keyword|tenant] [--ef 64] [--threads 2]
//!     [--work DIR] [--payload-m M]
//! ```
//! `sparse` reads the CSR arrays `doc_indptr`, `doc_indices`, `doc_values` (documents) and `q_*`
//! (queries), indexes the documents as the sparse vector `bm25` of a collection without a dense vector,
//! and writes `ids.npy`. `filtered` reads `base.npy`, `queries.npy` and `tags.npy` (0..3 for the keyword
//! `tag` values p1, p10, p50, rest), indexes the vectors (cosine) with their tag as payload, with a
//! keyword payload index on `tag` created before the points when `--index keyword` or `tenant`, and
//! writes `ids_p1.npy`, `ids_p10.npy`, `ids_p50.npy` for the queries filtered by each tag. `tenant` is
//! Qdrant's multitenancy setting: `m` 0 (no graph over the collection), `payload_m` 16 (a graph per
//! tag value) and a `full_scan_threshold` of 1,000 KiB. `--payload-m 0` builds no value graphs (the
//! engine before them), for an A/B in one harness run.
//!
//! Every point lands in one segment (`segment_max_points` = the number of points), sealed by `flush`,
//! which builds the inverted index or the HNSW graph (m 16, ef_construct 100), as Qdrant Edge's
//! `optimize()` builds one segment on the other side. Queries: one after another on the calling thread
//! ("1 thread"), then spread over `--threads` rayon threads; each pass best of two.

#[path = "common/npy.rs"]
mod npy;

use std::path::PathBuf;
use std::time::Instant;

use npy::{read_npy, write_ids, Res};
use quiver_engine::collection::EngineOptions;
use quiver_engine::config::{CollectionConfig, Distance, SparseVectorParams};
use quiver_engine::payload_schema::PayloadFieldSchema;
use quiver_engine::point::Payload;
use quiver_engine::{
    Collection, Collections, Filter, NamedVectors, PointId, PointInsert, QueryVector,
    SearchRequest, SparseVector, Vector,
};
use rayon::prelude::*;
use serde_json::json;

// As in the `quiver` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const K: usize = 10;
const TAGS: [&str; 4] = ["p1", "p10", "p50", "rest"];

struct Args {
    mode: String,
    dir: PathBuf,
    out: PathBuf,
    work: Option<PathBuf>,
    threads: usize,
    index: String,
    ef: usize,
    /// `hnsw_config.payload_m` of the filtered collection; unset: the engine's default (`m`).
    payload_m: Option<usize>,
}

fn parse_args() -> Res<Args> {
    let usage = "usage: sparse_filter_bench sparse|filtered DIR --out DIR [options]";
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or(usage)?;
    let dir = PathBuf::from(it.next().ok_or(usage)?);
    let mut a = Args {
        mode,
        dir,
        out: PathBuf::new(),
        work: None,
        threads: 2,
        index: "none".into(),
        ef: 64,
        payload_m: None,
    };
    while let Some(flag) = it.next() {
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--out" => a.out = PathBuf::from(val),
            "--work" => a.work = Some(PathBuf::from(val)),
            "--threads" => a.threads = num(&val)?.max(1),
            "--ef" => a.ef = num(&val)?,
            "--payload-m" => a.payload_m = Some(num(&val)?),
            "--index" => match val.as_str() {
                "none" | "keyword" | "tenant" => a.index = val,
                other => {
                    return Err(format!(
                        "--index must be none, keyword or tenant, not {other}"
                    ))
                }
            },
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.out.as_os_str().is_empty() {
        return Err("--out DIR is required".into());
    }
    Ok(a)
}

fn engine_err(e: quiver_engine::Error) -> String {
    e.to_string()
}

/// A fresh data directory under `--work` (or a temp dir), opened with `threads` build threads.
fn open(a: &Args, name: &str) -> Res<(tempfile::TempDir, Collections)> {
    let tmp = match &a.work {
        Some(w) => tempfile::Builder::new().prefix(name).tempdir_in(w),
        None => tempfile::Builder::new().prefix(name).tempdir(),
    }
    .map_err(|e| e.to_string())?;
    let options = EngineOptions {
        deterministic: false,
        build_threads: a.threads,
        ..Default::default()
    };
    let cs = Collections::open(tmp.path(), options).map_err(engine_err)?;
    Ok((tmp, cs))
}

fn best_of_two<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let t = Instant::now();
    drop(f());
    let first = t.elapsed();
    let t = Instant::now();
    let out = f();
    (first.min(t.elapsed()).as_secs_f64(), out)
}

fn hit_ids(c: &Collection, req: &SearchRequest) -> Vec<i64> {
    c.search(req)
        .expect("search")
        .into_iter()
        .map(|h| match h.id {
            PointId::Num(n) => n as i64,
            other => panic!("unexpected id {other:?}"),
        })
        .collect()
}

/// QPS of `requests` run one after another, then over the rayon pool; the ids of the first pass.
fn time_queries(
    c: &Collection,
    requests: &[SearchRequest],
    pool: &rayon::ThreadPool,
) -> (serde_json::Value, Vec<Vec<i64>>) {
    let (one, ids) = best_of_two(|| requests.iter().map(|r| hit_ids(c, r)).collect::<Vec<_>>());
    let (many, _) = best_of_two(|| {
        pool.install(|| {
            requests
                .par_iter()
                .map(|r| hit_ids(c, r))
                .collect::<Vec<_>>()
        })
    });
    let n = requests.len() as f64;
    (json!({"qps_1": n / one, "qps_threads": n / many}), ids)
}

fn upsert_all(c: &Collection, points: impl Iterator<Item = PointInsert>) -> Res<f64> {
    let t = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for p in points {
        batch.push(p);
        if batch.len() == 1000 {
            c.upsert(std::mem::take(&mut batch)).map_err(engine_err)?;
        }
    }
    if !batch.is_empty() {
        c.upsert(batch).map_err(engine_err)?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Seals the collection's points into one segment and checks that none is left unindexed.
fn seal(c: &Collection, n: usize) -> Res<f64> {
    let t = Instant::now();
    c.flush().map_err(engine_err)?;
    let secs = t.elapsed().as_secs_f64();
    let info = c.info();
    if info.points_count != n {
        return Err(format!("{} of {n} points after flush", info.points_count));
    }
    eprintln!(
        "sealed {n} points into {} segments ({} vectors indexed) in {secs:.1} s",
        info.segments_count, info.indexed_vectors_count
    );
    Ok(secs)
}

fn csr(a: &Args, prefix: &str) -> Res<(Vec<i64>, Vec<u32>, Vec<f32>)> {
    let path = |name: &str| a.dir.join(format!("{prefix}_{name}.npy"));
    Ok((
        read_npy(&path("indptr"))?.i64s()?,
        read_npy(&path("indices"))?.u32s()?,
        read_npy(&path("values"))?.f32s()?,
    ))
}

fn row(csr: &(Vec<i64>, Vec<u32>, Vec<f32>), i: usize) -> SparseVector {
    let (s, e) = (csr.0[i] as usize, csr.0[i + 1] as usize);
    SparseVector {
        indices: csr.1[s..e].to_vec(),
        values: csr.2[s..e].to_vec(),
    }
}

fn run_sparse(a: &Args, pool: &rayon::ThreadPool) -> Res<serde_json::Value> {
    let docs = csr(a, "doc")?;
    let queries = csr(a, "q")?;
    let n = docs.0.len() - 1;
    let (_tmp, cs) = open(a, "sparse")?;
    let mut config = CollectionConfig::single(1, Distance::Dot);
    config.vectors.clear();
    config
        .sparse_vectors
        .insert("bm25".into(), SparseVectorParams::default());
    config.optimizer_config.segment_max_points = n;
    let c = cs.create("bm25", config).map_err(engine_err)?;
    let upsert_s = upsert_all(
        &c,
        (0..n).map(|i| {
            let mut vectors = NamedVectors::new();
            vectors.insert("bm25".into(), Vector::Sparse(row(&docs, i)));
            PointInsert {
                id: PointId::Num(i as u64),
                vectors,
                payload: None,
            }
        }),
    )?;
    let build_s = seal(&c, n)?;
    let requests: Vec<SearchRequest> = (0..queries.0.len() - 1)
        .map(|j| {
            let mut r = SearchRequest::dense(vec![], K);
            r.using = "bm25".into();
            r.query = QueryVector::Sparse(row(&queries, j));
            r
        })
        .collect();
    let (mut out, ids) = time_queries(&c, &requests, pool);
    write_ids(&a.out.join("ids.npy"), &ids, K)?;
    out["upsert_s"] = json!(upsert_s);
    out["build_s"] = json!(build_s);
    cs.close().map_err(engine_err)?;
    Ok(out)
}

fn run_filtered(a: &Args, pool: &rayon::ThreadPool) -> Res<serde_json::Value> {
    let base = read_npy(&a.dir.join("base.npy"))?;
    let dim = base.cols()?;
    let base = base.f32s()?;
    let queries = read_npy(&a.dir.join("queries.npy"))?;
    if queries.cols()? != dim {
        return Err(format!("queries have {} dims, base {dim}", queries.cols()?));
    }
    let queries = queries.f32s()?;
    let tags = read_npy(&a.dir.join("tags.npy"))?.i32s()?;
    let n = base.len() / dim;
    if tags.len() != n {
        return Err(format!("{} tags for {n} vectors", tags.len()));
    }
    let (_tmp, cs) = open(a, "filtered")?;
    let mut config = CollectionConfig::single(dim, Distance::Cosine);
    config.optimizer_config.segment_max_points = n;
    config.hnsw_config.m = 16;
    config.hnsw_config.ef_construct = 100;
    // What the server gives a collection created without one: Qdrant's default of 10,000 KiB of
    // vectors, in points (the engine's own default is a point count for library users).
    config.hnsw_config.full_scan_threshold = 10_000 * 1024 / (dim * 4);
    if a.index == "tenant" {
        // Qdrant's multitenancy setting: no graph over the collection, one per tag value that
        // holds 1,000 KiB of vectors or more.
        config.hnsw_config.m = 0;
        config.hnsw_config.payload_m = Some(16);
        config.hnsw_config.full_scan_threshold = 1_000 * 1024 / (dim * 4);
    }
    if let Some(m) = a.payload_m {
        config.hnsw_config.payload_m = Some(m);
    }
    let c = cs.create("filtered", config).map_err(engine_err)?;
    if a.index != "none" {
        let schema: PayloadFieldSchema =
            serde_json::from_value(json!("keyword")).map_err(|e| e.to_string())?;
        c.create_payload_index("tag", schema).map_err(engine_err)?;
    }
    let upsert_s = upsert_all(
        &c,
        (0..n).map(|i| {
            let mut vectors = NamedVectors::new();
            vectors.insert(
                String::new(),
                Vector::Dense(base[i * dim..(i + 1) * dim].to_vec()),
            );
            let mut payload = Payload::new();
            payload.insert("tag".into(), json!(TAGS[tags[i] as usize]));
            PointInsert {
                id: PointId::Num(i as u64),
                vectors,
                payload: Some(payload),
            }
        }),
    )?;
    let build_s = seal(&c, n)?;
    let mut rows = serde_json::Map::new();
    for tag in &TAGS[..3] {
        let filter: Filter =
            serde_json::from_value(json!({"must": [{"key": "tag", "match": {"value": tag}}]}))
                .map_err(|e| e.to_string())?;
        let requests: Vec<SearchRequest> = queries
            .chunks_exact(dim)
            .map(|q| {
                let mut r = SearchRequest::dense(q.to_vec(), K);
                r.filter = Some(filter.clone());
                r.ef = Some(a.ef);
                r
            })
            .collect();
        let (row, ids) = time_queries(&c, &requests, pool);
        write_ids(&a.out.join(format!("ids_{tag}.npy")), &ids, K)?;
        rows.insert(tag.to_string(), row);
    }
    cs.close().map_err(engine_err)?;
    Ok(json!({"upsert_s": upsert_s, "build_s": build_s, "rows": rows}))
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sparse_filter_bench: {e}");
            std::process::exit(2);
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .expect("rayon pool");
    let result = match a.mode.as_str() {
        "sparse" => run_sparse(&a, &pool),
        "filtered" => run_filtered(&a, &pool),
        other => Err(format!("unknown mode {other}: sparse or filtered")),
    };
    match result {
        Ok(mut out) => {
            out["impl"] = json!("quiver");
            out["version"] = json!(env!("CARGO_PKG_VERSION"));
            println!("{out}");
        }
        Err(e) => {
            eprintln!("sparse_filter_bench: {e}");
            std::process::exit(1);
        }
    }
}
