//! One thread's exact MaxSim scan over documents of token vectors, as the appendable segment of a
//! multivector collection answers a query (issue 25): the engine's kernel beside the one it replaced
//! (each document row against the query's rows, four query rows a pass), over f32 rows and over f16
//! rows (the appendable segment's storage) widened per document.
//!
//! `cargo run --release --locked -p quiver-benches --example maxsim_bench -- [--docs 2300]
//!  [--tokens 18] [--query 19] [--dim 384] [--rounds 5]`
//!
//! Random unit-free values; the variants run alternately, `--rounds` times, and the best time per
//! scan of each is printed with the sum of scores (equal sums say the variants agree).

#[path = "common/values.rs"]
mod values;

use std::time::Instant;

use half::f16;
use half::slice::HalfFloatSliceExt;
use quiver_engine::kernels::{dot_rows, max_sim_with, widen_f16};
use values::values;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The kernel before issue 25's scan work: every document row against blocks of query rows.
fn rowwise(query: &[f32], doc: &[f32], dim: usize, best: &mut Vec<f32>) -> f32 {
    let nq = query.len() / dim;
    best.clear();
    best.resize(nq, f32::NEG_INFINITY);
    let mut out = vec![0.0f32; nq];
    for row in doc.chunks_exact(dim) {
        dot_rows(query, row, dim, &mut out);
        for (b, &s) in best.iter_mut().zip(&out) {
            *b = b.max(s);
        }
    }
    best.iter().sum()
}

fn main() {
    let mut docs = 2300usize;
    let mut tokens = 18usize;
    let mut nq = 19usize;
    let mut dim = 384usize;
    let mut rounds = 5usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = || args[i + 1].parse::<usize>().expect("a number");
        match args[i].as_str() {
            "--docs" => docs = v(),
            "--tokens" => tokens = v(),
            "--query" => nq = v(),
            "--dim" => dim = v(),
            "--rounds" => rounds = v(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let rows32 = values(docs * tokens * dim, 1);
    let rows16: Vec<f16> = rows32.iter().map(|&x| f16::from_f32(x)).collect();
    let query = values(nq * dim, 2);
    let stride = tokens * dim;
    println!(
        "{docs} documents x {tokens} tokens x {dim} dims, {nq} query rows, one thread, best of {rounds}"
    );
    type Scan<'a> = Box<dyn Fn() -> f32 + 'a>;
    let variants: Vec<(&str, Scan)> = vec![
        (
            "f32, row at a time (before)",
            Box::new(|| {
                let mut best = Vec::new();
                rows32
                    .chunks_exact(stride)
                    .map(|d| rowwise(&query, d, dim, &mut best))
                    .sum()
            }),
        ),
        (
            "f32, max_sim_with",
            Box::new(|| {
                let mut best = Vec::new();
                rows32
                    .chunks_exact(stride)
                    .map(|d| max_sim_with(&query, d, dim, &mut best))
                    .sum()
            }),
        ),
        (
            "f16, widened per element into a new Vec, row at a time (before)",
            Box::new(|| {
                let mut best = Vec::new();
                rows16
                    .chunks_exact(stride)
                    .map(|d| {
                        let wide: Vec<f32> = d.iter().map(|x| x.to_f32()).collect();
                        rowwise(&query, &wide, dim, &mut best)
                    })
                    .sum()
            }),
        ),
        (
            "f16, widened by half's slice conversion into one buffer, max_sim_with",
            Box::new(|| {
                let (mut best, mut wide) = (Vec::new(), vec![0.0f32; stride]);
                rows16
                    .chunks_exact(stride)
                    .map(|d| {
                        d.convert_to_f32_slice(&mut wide);
                        max_sim_with(&query, &wide, dim, &mut best)
                    })
                    .sum()
            }),
        ),
        (
            "f16, widened by kernels::widen_f16 into one buffer, max_sim_with",
            Box::new(|| {
                let (mut best, mut wide) = (Vec::new(), Vec::new());
                rows16
                    .chunks_exact(stride)
                    .map(|d| {
                        widen_f16(d, &mut wide);
                        max_sim_with(&query, &wide, dim, &mut best)
                    })
                    .sum()
            }),
        ),
    ];
    let mut best_ms = vec![f64::INFINITY; variants.len()];
    let mut sums = vec![0.0f32; variants.len()];
    for _ in 0..rounds {
        for (v, (_, scan)) in variants.iter().enumerate() {
            let t = Instant::now();
            sums[v] = scan();
            best_ms[v] = best_ms[v].min(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    for (v, (name, _)) in variants.iter().enumerate() {
        println!("{:>9.2} ms  sum {:>12.4}  {name}", best_ms[v], sums[v]);
    }
}
