//! Token-store benchmark on a synthetic ColBERT-like corpus: build time, bytes per token, PLAID search
//! against exhaustive MaxSim (latency, recall), and rerank latency.
//!
//! ```text
//! cargo run --release -p quiver-benches --example plaid_bench -- [--docs 10000] [--tokens 64] [--dim 128]
//!     [--queries 50] [--query-tokens 32] [--nbits 1,2,4]
//! ```
//! Prints markdown tables. Latencies are per query, one query at a time, each query using every rayon
//! thread (set `RAYON_NUM_THREADS` to pin the count).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use quiver_engine::plaid::synthetic::{Corpus, CorpusParams, SplitMix64};
use quiver_engine::plaid::{
    Candidate, PlaidBuild, PlaidBuildParams, PlaidIndex, PlaidSearchParams, TokenMatrices,
};

struct Args {
    docs: usize,
    tokens: usize,
    dim: usize,
    queries: usize,
    query_tokens: usize,
    nbits: Vec<u8>,
}

fn parse_args() -> Args {
    let mut a = Args {
        docs: 10_000,
        tokens: 64,
        dim: 128,
        queries: 50,
        query_tokens: 32,
        nbits: vec![1, 2, 4],
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        let num = || value.parse::<usize>().expect("a number");
        match pair[0].as_str() {
            "--docs" => a.docs = num(),
            "--tokens" => a.tokens = num(),
            "--dim" => a.dim = num(),
            "--queries" => a.queries = num(),
            "--query-tokens" => a.query_tokens = num(),
            "--nbits" => {
                a.nbits = value
                    .split(',')
                    .map(|v| v.parse().expect("1, 2 or 4"))
                    .collect()
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// CPU seconds used by this process so far, all threads (Linux `/proc/self/stat`, 100 Hz ticks); 0
/// elsewhere. Reported next to wall time because a shared machine stretches wall time.
fn cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Wall and CPU milliseconds per item of `f` run over `n` items.
fn timed<T>(n: usize, f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (t, c) = (Instant::now(), cpu_s());
    let out = f();
    (out, ms(t) / n as f64, (cpu_s() - c) * 1e3 / n as f64)
}

fn recall(got: &[Candidate], want: &[Candidate]) -> usize {
    got.iter()
        .filter(|g| want.iter().any(|w| w.offset == g.offset))
        .count()
}

fn main() {
    let args = parse_args();
    let corpus = Corpus::generate(&CorpusParams {
        docs: args.docs,
        tokens_per_doc: args.tokens,
        dim: args.dim,
        topics: 100,
        terms_per_topic: 64,
        shared_terms: 64,
        queries: args.queries,
        query_tokens: args.query_tokens,
        ..CorpusParams::default()
    });
    let raw = TokenMatrices::new(&corpus.offsets, &corpus.data, corpus.dim).expect("valid corpus");
    let threads = rayon::current_num_threads();
    println!(
        "corpus: {} docs, {} tokens ({:.1}/doc), dim {}, {} queries × {} tokens, {} rayon threads",
        raw.len(),
        raw.num_tokens(),
        raw.num_tokens() as f64 / raw.len() as f64,
        raw.dim(),
        corpus.queries.len(),
        args.query_tokens,
        threads
    );
    let all = |_: u32| true;
    let nq = corpus.queries.len();

    // Ground truth: exhaustive f32 MaxSim.
    let (truth, ex_ms, ex_cpu) = timed(nq, || {
        corpus
            .queries
            .iter()
            .map(|q| raw.search(q, 100, &all).unwrap())
            .collect::<Vec<_>>()
    });
    println!(
        "\nexhaustive f32 MaxSim: {ex_ms:.2} ms/query wall, {ex_cpu:.2} ms/query CPU (k = 10 and 100 cost the same)"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    println!("\n| nbits | centroids | build s (wall) | build CPU s / M tokens | file bytes / token | id + residual bytes / token |");
    println!("|---|---|---|---|---|---|");
    let mut indexes = Vec::new();
    for &nbits in &args.nbits {
        let params = PlaidBuildParams {
            nbits,
            ..PlaidBuildParams::default()
        };
        let (build, wall_ms, cpu_ms) = timed(1, || {
            PlaidBuild::build(raw, &params, &AtomicBool::new(false)).expect("build")
        });
        let path = dir.path().join(format!("tokens-{nbits}.plaid"));
        let written = build.write(&path).expect("write");
        let index = PlaidIndex::open(&path).expect("open");
        let mtok = raw.num_tokens() as f64 / 1e6;
        let id_bytes = if index.num_centroids() > 1 << 16 {
            4
        } else {
            2
        };
        println!(
            "| {nbits} | {} | {:.1} | {:.1} | {:.1} | {} |",
            index.num_centroids(),
            wall_ms / 1e3,
            cpu_ms / 1e3 / mtok,
            written.size as f64 / raw.num_tokens() as f64,
            id_bytes + (raw.dim() * nbits as usize).div_ceil(8)
        );
        indexes.push((nbits, index));
    }

    println!("\n| nbits | k | PLAID ms/query (wall / CPU) | exhaustive f32 ms/query (wall / CPU) | CPU ratio | recall@k vs exhaustive f32 | recall@k vs exhaustive on decompressed |");
    println!("|---|---|---|---|---|---|---|");
    let every: Vec<u32> = (0..raw.len() as u32).collect();
    for (nbits, index) in &indexes {
        let decompressed_truth: Vec<Vec<Candidate>> = corpus
            .queries
            .iter()
            .map(|q| index.rerank(q, &every, 100, &all).unwrap())
            .collect();
        for k in [10usize, 100] {
            let params = PlaidSearchParams::default();
            let (results, wall, cpu) = timed(nq, || {
                corpus
                    .queries
                    .iter()
                    .map(|q| index.search(q, k, &params, &all).unwrap())
                    .collect::<Vec<_>>()
            });
            let r = |truth: &[Vec<Candidate>]| {
                let hits: usize = results
                    .iter()
                    .zip(truth)
                    .map(|(g, w)| recall(g, &w[..k]))
                    .sum();
                hits as f64 / (k * nq) as f64
            };
            println!(
                "| {nbits} | {k} | {wall:.2} / {cpu:.2} | {ex_ms:.2} / {ex_cpu:.2} | {:.1}× | {:.3} | {:.3} |",
                ex_cpu / cpu.max(1e-3),
                r(&truth),
                r(&decompressed_truth)
            );
        }
    }

    println!("\n| store | candidates | rerank ms/query, top 10 (wall / CPU) |");
    println!("|---|---|---|");
    let mut rng = SplitMix64::new(1);
    for n in [100usize, 1000] {
        let candidates: Vec<Vec<u32>> = corpus
            .queries
            .iter()
            .map(|_| (0..n).map(|_| rng.below(raw.len()) as u32).collect())
            .collect();
        let (_, wall, cpu) = timed(nq, || {
            for (q, c) in corpus.queries.iter().zip(&candidates) {
                std::hint::black_box(raw.rerank(q, c, 10, &all).unwrap());
            }
        });
        println!("| f32 raw | {n} | {wall:.2} / {cpu:.2} |");
        for (nbits, index) in &indexes {
            let (_, wall, cpu) = timed(nq, || {
                for (q, c) in corpus.queries.iter().zip(&candidates) {
                    std::hint::black_box(index.rerank(q, c, 10, &all).unwrap());
                }
            });
            println!("| PLAID {nbits}-bit | {n} | {wall:.2} / {cpu:.2} |");
        }
    }
}
