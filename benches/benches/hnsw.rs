//! HNSW build rate, graph search at several `ef`, exact-scan throughput and the distance kernels.
//! Recall lives in `examples/ann_bench.rs`; this measures speed only.

use std::hint::black_box;
use std::sync::atomic::AtomicBool;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quiver_engine::distance::{dot, dot_portable, l2_squared, normalize};
use quiver_engine::index::exact::exact_search;
use quiver_engine::index::hnsw::{build_graph, write_graph, GraphView, HnswBuildParams};
use quiver_engine::index::VectorSlab;
use quiver_engine::Distance;
use rand::{Rng, SeedableRng};

fn unit_vectors(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data: Vec<f32> = (0..rows * dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    for r in data.chunks_exact_mut(dim) {
        normalize(r);
    }
    data
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    for dim in [128usize, 768] {
        let a = unit_vectors(1, dim, 1);
        let b = unit_vectors(1, dim, 2);
        g.throughput(Throughput::Bytes((2 * dim * 4) as u64));
        g.bench_with_input(BenchmarkId::new("dot", dim), &dim, |bch, _| {
            bch.iter(|| dot(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("dot_portable", dim), &dim, |bch, _| {
            bch.iter(|| dot_portable(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("l2_squared", dim), &dim, |bch, _| {
            bch.iter(|| l2_squared(black_box(&a), black_box(&b)))
        });
    }
    g.finish();
}

fn build(c: &mut Criterion) {
    let dim = 64;
    let rows = 5_000;
    let data = unit_vectors(rows, dim, 3);
    let slab = VectorSlab { data: &data, dim };
    let mut g = c.benchmark_group("hnsw_build");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows as u64));
    for deterministic in [false, true] {
        let params = HnswBuildParams {
            deterministic,
            ..HnswBuildParams::default()
        };
        let name = if deterministic {
            "sequential"
        } else {
            "parallel"
        };
        g.bench_function(BenchmarkId::new(name, format!("{rows}x{dim}")), |b| {
            b.iter(|| {
                build_graph(slab, Distance::Cosine, &params, &AtomicBool::new(false)).unwrap()
            })
        });
    }
    g.finish();
}

fn search(c: &mut Criterion) {
    let dim = 64;
    let rows = 20_000;
    let data = unit_vectors(rows, dim, 4);
    let queries = unit_vectors(256, dim, 5);
    let slab = VectorSlab { data: &data, dim };
    let graph = build_graph(
        slab,
        Distance::Cosine,
        &HnswBuildParams::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph");
    write_graph(&path, &graph).unwrap();
    let view = GraphView::open(&path).unwrap();

    let mut g = c.benchmark_group("hnsw_search");
    g.throughput(Throughput::Elements(1));
    for ef in [16usize, 64, 256] {
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("ef", ef), &ef, |b, &ef| {
            b.iter(|| {
                i = (i + 1) % 256;
                let q = &queries[i * dim..(i + 1) * dim];
                view.search(slab, Distance::Cosine, q, 10, ef, &|_| true)
            })
        });
    }
    let half = |o: u32| (o & 1) == 0;
    g.bench_function("ef64_filter_50pct", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % 256;
            let q = &queries[i * dim..(i + 1) * dim];
            view.search(slab, Distance::Cosine, q, 10, 64, &half)
        })
    });
    g.finish();
}

fn exact(c: &mut Criterion) {
    let dim = 128;
    let rows = 100_000;
    let data = unit_vectors(rows, dim, 6);
    let query = unit_vectors(1, dim, 7);
    let slab = VectorSlab { data: &data, dim };
    let mut g = c.benchmark_group("exact_scan");
    g.sample_size(20);
    g.throughput(Throughput::Bytes((rows * dim * 4) as u64));
    g.bench_function(BenchmarkId::new("top10", format!("{rows}x{dim}")), |b| {
        b.iter(|| exact_search(slab, Distance::Cosine, black_box(&query), 10, &|_| true))
    });
    g.finish();
}

criterion_group!(benches, kernels, build, search, exact);
criterion_main!(benches);
