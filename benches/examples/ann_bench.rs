//! Recall@k and QPS of the HNSW graph against exact scan, plus exact-scan throughput next to the
//! machine's measured memory bandwidth.
//!
//! ```text
//! cargo run --release -p quiver-benches --example ann_bench -- random [--n 100000] [--dim 768]
//! cargo run --release -p quiver-benches --example ann_bench -- fashion-mnist --dir DIR
//! ```
//! Options: `--queries 1000 --k 10 --m 16 --ef-construct 100 --efs 16,32,64,128,256`.
//! `DIR` holds `train-images-idx3-ubyte.gz` and `t10k-images-idx3-ubyte.gz` (Debian package
//! `dataset-fashion-mnist`); the train set is indexed, test images are the queries, distance Euclid.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use quiver_engine::distance::normalize;
use quiver_engine::index::exact::exact_search;
use quiver_engine::index::hnsw::{build_graph, write_graph, GraphView, HnswBuildParams};
use quiver_engine::index::VectorSlab;
use quiver_engine::Distance;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

struct Args {
    dataset: String,
    dir: Option<PathBuf>,
    n: usize,
    dim: usize,
    queries: usize,
    k: usize,
    m: usize,
    ef_construct: usize,
    efs: Vec<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        dataset: "random".into(),
        dir: None,
        n: 100_000,
        dim: 768,
        queries: 1000,
        k: 10,
        m: 16,
        ef_construct: 100,
        efs: vec![16, 32, 64, 128, 256],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--dir" => a.dir = Some(PathBuf::from(val())),
            "--n" => a.n = val().parse().expect("--n"),
            "--dim" => a.dim = val().parse().expect("--dim"),
            "--queries" => a.queries = val().parse().expect("--queries"),
            "--k" => a.k = val().parse().expect("--k"),
            "--m" => a.m = val().parse().expect("--m"),
            "--ef-construct" => a.ef_construct = val().parse().expect("--ef-construct"),
            "--efs" => {
                a.efs = val()
                    .split(',')
                    .map(|s| s.trim().parse().expect("--efs"))
                    .collect()
            }
            "random" | "fashion-mnist" => a.dataset = arg.clone(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn random_unit(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data: Vec<f32> = (0..rows * dim)
        .map(|_| {
            // Gaussian coordinates give directions uniform on the sphere.
            let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
        })
        .collect();
    data.par_chunks_exact_mut(dim).for_each(|r| {
        normalize(r);
    });
    data
}

/// Reads an IDX3 u8 image file (gzip) as `(rows, dim, floats in [0, 1])`.
fn read_idx_images(path: &Path) -> (usize, usize, Vec<f32>) {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip failed on {}", path.display());
    let b = out.stdout;
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    assert_eq!(be(0), 0x0803, "not an IDX3 u8 file");
    let (n, rows, cols) = (be(4), be(8), be(12));
    let pixels = &b[16..16 + n * rows * cols];
    (
        n,
        rows * cols,
        pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
    )
}

/// Read bandwidth: a parallel sum over `data`, best of three passes.
fn read_bandwidth_gbs(data: &[f32]) -> f64 {
    let mut best = f64::MAX;
    let mut sink = 0.0f32;
    for _ in 0..3 {
        let t = Instant::now();
        sink += data
            .par_chunks(1 << 16)
            .map(|c| {
                let mut acc = [0.0f32; 16];
                for ch in c.chunks_exact(16) {
                    for i in 0..16 {
                        acc[i] += ch[i];
                    }
                }
                acc.iter().sum::<f32>()
            })
            .sum::<f32>();
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    std::mem::size_of_val(data) as f64 / best / 1e9
}

/// Copy bandwidth (bytes read + written) of one thread, best of three.
fn memcpy_bandwidth_gbs(data: &[f32]) -> f64 {
    let mut dst = vec![0.0f32; data.len()];
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        dst.copy_from_slice(data);
        std::hint::black_box(&dst);
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * std::mem::size_of_val(data) as f64 / best / 1e9
}

fn main() {
    let args = parse_args();
    let (name, distance, dim, base, queries) = match args.dataset.as_str() {
        "fashion-mnist" => {
            let dir = args.dir.clone().expect("fashion-mnist needs --dir");
            let (_, dim, base) = read_idx_images(&dir.join("train-images-idx3-ubyte.gz"));
            let (nq, _, q) = read_idx_images(&dir.join("t10k-images-idx3-ubyte.gz"));
            let nq = nq.min(args.queries);
            (
                "Fashion-MNIST 60k x 784".to_string(),
                Distance::Euclid,
                dim,
                base,
                q[..nq * dim].to_vec(),
            )
        }
        _ => (
            format!("random unit {} x {}", args.n, args.dim),
            Distance::Cosine,
            args.dim,
            random_unit(args.n, args.dim, 1),
            random_unit(args.queries, args.dim, 2),
        ),
    };
    let slab = VectorSlab { data: &base, dim };
    let nq = queries.len() / dim;
    let threads = rayon::current_num_threads();
    println!(
        "# {name}, {distance:?}, {nq} queries, k={}, {threads} threads",
        args.k
    );

    let read_bw = read_bandwidth_gbs(&base);
    let copy_bw = memcpy_bandwidth_gbs(&base);

    // Ground truth by exact scan, one query at a time (each scan is itself parallel).
    let t = Instant::now();
    let truth: Vec<HashSet<u32>> = queries
        .chunks_exact(dim)
        .map(|q| {
            exact_search(slab, distance, q, args.k, &|_| true)
                .iter()
                .map(|c| c.offset)
                .collect()
        })
        .collect();
    let exact_s = t.elapsed().as_secs_f64();
    let scanned = nq as f64 * std::mem::size_of_val(base.as_slice()) as f64;
    println!(
        "exact scan: {:.1} QPS, {:.2} GB/s scanned; memory read bandwidth (parallel sum) {:.2} GB/s, \
         memcpy (1 thread, read+write) {:.2} GB/s",
        nq as f64 / exact_s,
        scanned / exact_s / 1e9,
        read_bw,
        copy_bw
    );

    let params = HnswBuildParams {
        m: args.m,
        ef_construct: args.ef_construct,
        deterministic: false,
        threads: 0,
    };
    let t = Instant::now();
    let graph = build_graph(slab, distance, &params, &AtomicBool::new(false)).expect("build");
    let build_s = t.elapsed().as_secs_f64();
    let dir = std::env::temp_dir().join(format!("quiver-ann-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("graph.bin");
    let written = write_graph(&path, &graph).expect("write graph");
    drop(graph);
    let t = Instant::now();
    let view = GraphView::open(&path).expect("open graph");
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "build: {:.1} s, {:.0} points/s (m={}, ef_construct={}); graph file {:.1} MiB, opened in {:.2} ms",
        build_s,
        slab.len() as f64 / build_s,
        args.m,
        args.ef_construct,
        written.size as f64 / (1 << 20) as f64,
        open_ms
    );

    println!();
    println!(
        "| ef | recall@{} | QPS (1 thread) | QPS ({threads} threads) |",
        args.k
    );
    println!("|---:|---:|---:|---:|");
    for &ef in &args.efs {
        let t = Instant::now();
        let results: Vec<Vec<u32>> = queries
            .chunks_exact(dim)
            .map(|q| {
                view.search(slab, distance, q, args.k, ef, &|_| true)
                    .iter()
                    .map(|c| c.offset)
                    .collect()
            })
            .collect();
        let single = nq as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hits: usize = queries
            .par_chunks_exact(dim)
            .map(|q| view.search(slab, distance, q, args.k, ef, &|_| true).len())
            .sum();
        std::hint::black_box(hits);
        let multi = nq as f64 / t.elapsed().as_secs_f64();
        let found: usize = results
            .iter()
            .zip(&truth)
            .map(|(r, t)| r.iter().filter(|o| t.contains(o)).count())
            .sum();
        let total: usize = truth.iter().map(|t| t.len()).sum();
        println!(
            "| {ef} | {:.4} | {:.0} | {:.0} |",
            found as f64 / total as f64,
            single,
            multi
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
