//! Recall@k, QPS and memory of a graph walk on quantized codes, rescored by the original rows, next to
//! the walk on the rows themselves: no quantization, scalar int8, binary one bit, one and a half bits
//! and two bits (and two bits with an 8-bit query), each at several rescoring oversamplings.
//!
//! ```text
//! cargo run --release -p quiver-benches --example quantization_bench -- random [--n 100000] [--dim 384]
//! cargo run --release -p quiver-benches --example quantization_bench -- \
//!     --data target/bench-data/minilm-wordnet --distance Cosine
//! ```
//! Options: `--queries 200 --k 10 --ef 64 --m 16 --ef-construct 100 --oversampling 1,2,4`,
//! `--only int8,2 bits` (variants whose name contains one of these), `--rounds 3` (each variant's
//! queries timed three times in a row, the best round's QPS reported: one machine's noise).
//! `--data DIR` reads `base.npy` and `queries.npy` (f32, as `scripts/bench/prepare_data.py` writes
//! them); `random` draws Gaussian vectors. One graph is built on the rows and every variant walks it,
//! so only the scoring differs. QPS is one thread; memory is what the walk reads per row (the rows, or
//! the codes: the rows that rescore may stay on disk).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use quiver_engine::config::{
    BinaryEncoding, BinaryQuantization, BinaryQueryEncoding, QuantizationConfig,
    ScalarQuantization, ScalarType,
};
use quiver_engine::distance::{is_better, normalize, score};
use quiver_engine::index::exact::exact_search;
use quiver_engine::index::hnsw::{build_graph, write_graph, GraphView, HnswBuildParams};
use quiver_engine::index::VectorSlab;
use quiver_engine::quantization::{build_codes, write_codes, CodesFile};
use quiver_engine::Distance;
use quiver_storage::segment::Residency;
use rand::{Rng, SeedableRng};

#[path = "common/npy.rs"]
mod npy;

struct Args {
    data: Option<PathBuf>,
    distance: Distance,
    n: usize,
    dim: usize,
    queries: usize,
    k: usize,
    ef: usize,
    m: usize,
    ef_construct: usize,
    oversampling: Vec<f64>,
    /// Variants to run, by a word of their name (`int8`, `1 bit`, …); all when empty.
    only: Vec<String>,
    /// Times each variant's queries this many times and reports the best round's QPS.
    rounds: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        data: None,
        distance: Distance::Cosine,
        n: 100_000,
        dim: 384,
        queries: 200,
        k: 10,
        ef: 64,
        m: 16,
        ef_construct: 100,
        oversampling: vec![1.0, 2.0, 4.0],
        only: Vec::new(),
        rounds: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--data" => a.data = Some(PathBuf::from(val())),
            "--distance" => {
                a.distance = match val().as_str() {
                    "Cosine" => Distance::Cosine,
                    "Dot" => Distance::Dot,
                    "Euclid" => Distance::Euclid,
                    other => panic!("unknown distance {other}"),
                }
            }
            "--n" => a.n = val().parse().expect("--n"),
            "--dim" => a.dim = val().parse().expect("--dim"),
            "--queries" => a.queries = val().parse().expect("--queries"),
            "--k" => a.k = val().parse().expect("--k"),
            "--ef" => a.ef = val().parse().expect("--ef"),
            "--m" => a.m = val().parse().expect("--m"),
            "--ef-construct" => a.ef_construct = val().parse().expect("--ef-construct"),
            "--oversampling" => {
                a.oversampling = val()
                    .split(',')
                    .map(|s| s.trim().parse().expect("--oversampling"))
                    .collect()
            }
            "--only" => a.only = val().split(',').map(|s| s.trim().to_string()).collect(),
            "--rounds" => a.rounds = val().parse::<usize>().expect("--rounds").max(1),
            "random" => a.data = None,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn gaussian(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..rows * dim)
        .map(|_| {
            let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
        })
        .collect()
}

/// `(dim, base, queries)`, normalised for Cosine as the engine stores them.
fn load(args: &Args) -> (usize, Vec<f32>, Vec<f32>) {
    let (dim, mut base, mut queries) = match &args.data {
        Some(dir) => {
            let base = npy::read_npy(&dir.join("base.npy")).unwrap();
            let queries = npy::read_npy(&dir.join("queries.npy")).unwrap();
            let dim = base.shape[1];
            let mut q = queries.f32s().unwrap();
            q.truncate(args.queries * dim);
            (dim, base.f32s().unwrap(), q)
        }
        None => (
            args.dim,
            gaussian(args.n, args.dim, 1),
            gaussian(args.queries, args.dim, 2),
        ),
    };
    if args.distance == Distance::Cosine {
        base.chunks_exact_mut(dim).for_each(|r| {
            normalize(r);
        });
        queries.chunks_exact_mut(dim).for_each(|r| {
            normalize(r);
        });
    }
    (dim, base, queries)
}

fn main() {
    let args = parse_args();
    let (dim, base, queries) = load(&args);
    let (distance, k) = (args.distance, args.k);
    let slab = VectorSlab { data: &base, dim };
    let nq = queries.len() / dim;
    println!(
        "# {} rows x {dim}, {distance:?}, {nq} queries, k={k}, ef={}",
        slab.len(),
        args.ef
    );
    let truth: Vec<HashSet<u32>> = queries
        .chunks_exact(dim)
        .map(|q| {
            exact_search(slab, distance, q, k, &|_| true)
                .iter()
                .map(|c| c.offset)
                .collect()
        })
        .collect();
    let recall = |results: &[Vec<u32>]| {
        let found: usize = results
            .iter()
            .zip(&truth)
            .map(|(r, t)| r.iter().filter(|o| t.contains(o)).count())
            .sum();
        found as f64 / truth.iter().map(|t| t.len()).sum::<usize>() as f64
    };

    let params = HnswBuildParams {
        m: args.m,
        ef_construct: args.ef_construct,
        deterministic: false,
        threads: 0,
    };
    let t = Instant::now();
    let graph = build_graph(slab, distance, &params, &AtomicBool::new(false)).expect("build");
    let dir = std::env::temp_dir().join(format!("quiver-quant-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    write_graph(&dir.join("graph.bin"), &graph).expect("write graph");
    drop(graph);
    let view = GraphView::open(&dir.join("graph.bin")).expect("open graph");
    println!("graph built in {:.1} s", t.elapsed().as_secs_f64());

    println!();
    println!("| quantization | bytes/row | build s | oversampling | recall@{k} | QPS (1 thread) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let (results, qps) = timed(args.rounds, nq, || {
        queries
            .chunks_exact(dim)
            .map(|q| {
                view.search(slab, distance, q, k, args.ef, &|_| true)
                    .iter()
                    .map(|c| c.offset)
                    .collect()
            })
            .collect()
    });
    println!(
        "| none | {} | - | - | {:.4} | {qps:.0} |",
        dim * 4,
        recall(&results)
    );

    let binary = |encoding, query_encoding| {
        QuantizationConfig::Binary(BinaryQuantization {
            always_ram: Some(true),
            encoding: Some(encoding),
            query_encoding,
        })
    };
    let variants = [
        (
            "scalar int8",
            QuantizationConfig::Scalar(ScalarQuantization {
                kind: ScalarType::Int8,
                quantile: None,
                always_ram: Some(true),
            }),
        ),
        ("binary 1 bit", binary(BinaryEncoding::OneBit, None)),
        (
            "binary 1.5 bits",
            binary(BinaryEncoding::OneAndHalfBits, None),
        ),
        ("binary 2 bits", binary(BinaryEncoding::TwoBits, None)),
        (
            "binary 2 bits, 8-bit query",
            binary(
                BinaryEncoding::TwoBits,
                Some(BinaryQueryEncoding::Scalar8Bits),
            ),
        ),
    ];
    let wanted =
        |name: &str| args.only.is_empty() || args.only.iter().any(|w| name.contains(w.as_str()));
    for (name, config) in variants.into_iter().filter(|(name, _)| wanted(name)) {
        let t = Instant::now();
        let codes = build_codes(&config, slab);
        let path = dir.join("codes.q");
        write_codes(&path, &codes).expect("write codes");
        let build_s = t.elapsed().as_secs_f64();
        let file = CodesFile::open_as(&path, Residency::InMemory).expect("open codes");
        let per_row = file.bytes() as f64 / slab.len().max(1) as f64;
        for &factor in &args.oversampling {
            let want = ((k as f64 * factor).ceil() as usize).max(k);
            let (results, qps) = timed(args.rounds, nq, || {
                queries
                    .chunks_exact(dim)
                    .map(|q| {
                        let scorer = file.scorer(distance, q);
                        let walked = view.search_by(&scorer, want, args.ef.max(want), &|_| true);
                        let mut exact: Vec<(u32, f32)> = walked
                            .into_iter()
                            .map(|(row, _)| (row, score(distance, q, slab.row(row))))
                            .collect();
                        exact.sort_by(|a, b| {
                            if is_better(distance, a.1, b.1) {
                                std::cmp::Ordering::Less
                            } else if is_better(distance, b.1, a.1) {
                                std::cmp::Ordering::Greater
                            } else {
                                std::cmp::Ordering::Equal
                            }
                        });
                        exact.into_iter().take(k).map(|(row, _)| row).collect()
                    })
                    .collect()
            });
            println!(
                "| {name} | {per_row:.1} | {build_s:.2} | {factor} | {:.4} | {qps:.0} |",
                recall(&results)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `search` (all `nq` queries) `rounds` times: its last answers and the best round's QPS.
fn timed(rounds: usize, nq: usize, search: impl Fn() -> Vec<Vec<u32>>) -> (Vec<Vec<u32>>, f64) {
    let mut best = 0f64;
    let mut results = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        results = search();
        best = best.max(nq as f64 / t.elapsed().as_secs_f64());
    }
    (results, best)
}
