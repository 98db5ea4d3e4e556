//! A vector bound with Matryoshka `dims` and quantized (issue 24): its graph walks the prefix, on the
//! prefix rows or on their codes, and the full vectors rescore. Beside it, the other first stage:
//! a graph of the full vectors walked on their rows or on binary codes of the whole vector. Recall@k
//! against an exact search of the full vectors, QPS (one search thread) and the bytes a walk reads
//! per row, at several oversamplings.
//!
//! ```text
//! cargo run --release --locked -p quiver-benches --example matryoshka_codes -- [--n 50000]
//!     [--dim 512] [--dims 128] [--tail 0.1] [--clusters 1000] [--noise 0.5] [--queries 200] [--k 10]
//!     [--oversampling 1,4,10] [--only prefix,full]
//! ```
//!
//! The vectors are synthetic: Gaussian clusters (a centre plus `--noise` times as much noise), with the first
//! `dims` components at full scale and the rest at `--tail`, so the prefix carries most of the
//! length as Matryoshka training arranges. Queries are drawn the same way. Each variant is its own
//! collection of the same points, sealed into one segment before the queries.

use std::time::Instant;

use quiver_engine::collection::EngineOptions;
use quiver_engine::config::{
    BinaryEncoding, BinaryQuantization, CollectionConfig, Distance, EmbeddingBinding,
    QuantizationConfig, ScalarQuantization, ScalarType,
};
use quiver_engine::point::{NamedVectors, PointInsert, Vector};
use quiver_engine::{Collections, PointId, SearchRequest};
use rand::{Rng, SeedableRng};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn gaussian(rng: &mut rand::rngs::StdRng) -> f32 {
    // Box-Muller.
    let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random_range(0.0..1.0));
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn vectors(
    n: usize,
    centres: &[Vec<f32>],
    (dims, tail, noise): (usize, f32, f32),
    seed: u64,
) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            c.iter()
                .enumerate()
                .map(|(i, x)| (x + noise * gaussian(&mut rng)) * if i < dims { 1.0 } else { tail })
                .collect()
        })
        .collect()
}

fn main() {
    let mut n = 50_000usize;
    let mut dim = 512usize;
    let mut dims = 128usize;
    let mut nq = 200usize;
    let mut k = 10usize;
    let mut oversampling = vec![1.0f64, 4.0, 10.0];
    let mut tail = 0.1f32;
    let mut clusters = 1000usize;
    let mut noise = 0.5f32;
    let mut only: Vec<String> = Vec::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = &args[i + 1];
        let num = || v.parse::<usize>().expect("a number");
        match args[i].as_str() {
            "--n" => n = num(),
            "--dim" => dim = num(),
            "--dims" => dims = num(),
            "--queries" => nq = num(),
            "--k" => k = num(),
            "--tail" => tail = v.parse().expect("a number"),
            "--clusters" => clusters = num(),
            "--noise" => noise = v.parse().expect("a number"),
            "--only" => only = v.split(',').map(str::to_string).collect(),
            "--oversampling" => {
                oversampling = v.split(',').map(|x| x.parse().expect("a number")).collect()
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| gaussian(&mut rng)).collect())
        .collect();
    let data = vectors(n, &centres, (dims, tail, noise), 1);
    let queries = vectors(nq, &centres, (dims, tail, noise), 2);
    println!(
        "{n} × {dim} synthetic vectors ({clusters} clusters, noise {noise}, tail {tail}), prefix {dims}, {nq} \
         queries, recall@{k}, one search thread"
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let binary = |encoding| {
        Some(QuantizationConfig::Binary(BinaryQuantization {
            always_ram: Some(true),
            encoding: Some(encoding),
            ..Default::default()
        }))
    };
    let int8 = Some(QuantizationConfig::Scalar(ScalarQuantization {
        kind: ScalarType::Int8,
        quantile: None,
        always_ram: Some(true),
    }));
    // (label, quantization, whether the vector is bound with `dims`): the bound ones walk a graph of
    // the prefix; the others a graph of the full vectors, on their rows or their codes (the first
    // stage the issue suggests: binary codes of the whole vector).
    let variants: [(&str, Option<QuantizationConfig>, bool); 6] = [
        ("prefix rows", None, true),
        (
            "prefix binary one bit",
            binary(BinaryEncoding::OneBit),
            true,
        ),
        ("prefix scalar int8", int8, true),
        ("full rows", None, false),
        ("full binary one bit", binary(BinaryEncoding::OneBit), false),
        (
            "full binary two bits",
            binary(BinaryEncoding::TwoBits),
            false,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let cs = Collections::open(dir.path(), EngineOptions::default()).unwrap();
    let mut truth: Vec<Vec<PointId>> = Vec::new();
    println!("| walk | oversampling | recall@{k} | QPS | bytes a row the walk reads | build s |");
    println!("|---|---|---|---|---|---|");
    for (v, (label, q, prefix)) in variants.iter().enumerate() {
        if !only.is_empty() && !only.iter().any(|w| label.contains(w.as_str())) {
            continue;
        }
        let mut config = CollectionConfig::single(dim, Distance::Cosine);
        config.optimizer_config.segment_max_points = n + 1;
        config.quantization_config = *q;
        if *prefix {
            config.embedding.insert(
                String::new(),
                EmbeddingBinding {
                    model: "synthetic".into(),
                    task: "retrieval".into(),
                    dims: Some(dims),
                    store_text: false,
                },
            );
        }
        let name = format!("c{v}");
        let c = cs.create(&name, config).unwrap();
        for (b, chunk) in data.chunks(1000).enumerate() {
            let points = chunk
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    let mut vectors = NamedVectors::new();
                    vectors.insert(String::new(), Vector::Dense(x.clone()));
                    PointInsert {
                        id: PointId::Num((b * 1000 + j) as u64),
                        vectors,
                        payload: None,
                    }
                })
                .collect();
            c.upsert(points).unwrap();
        }
        let t = Instant::now();
        c.flush().unwrap();
        let build = t.elapsed().as_secs_f64();
        let bytes = |prefix: &str| -> u64 {
            c.manifest()
                .segments
                .iter()
                .flat_map(|s| &s.files)
                .filter(|f| {
                    f.path
                        .rsplit('/')
                        .next()
                        .is_some_and(|f| f.starts_with(prefix))
                })
                .map(|f| f.size)
                .sum()
        };
        let per_row = match (q, prefix) {
            (None, true) => bytes("prefix-") as f64 / n as f64,
            (None, false) => (dim * 4) as f64,
            (Some(_), _) => bytes("codes-") as f64 / n as f64,
        };
        if truth.is_empty() {
            truth = queries
                .iter()
                .map(|x| {
                    let mut r = SearchRequest::dense(x.clone(), k);
                    r.exact = true;
                    c.search(&r).unwrap().into_iter().map(|h| h.id).collect()
                })
                .collect();
        }
        let factors: Vec<Option<f64>> = match q {
            None => vec![None],
            Some(_) => oversampling.iter().map(|&f| Some(f)).collect(),
        };
        for f in factors {
            let requests: Vec<SearchRequest> = queries
                .iter()
                .map(|x| {
                    let mut r = SearchRequest::dense(x.clone(), k);
                    r.oversampling = f;
                    r
                })
                .collect();
            let (mut best_qps, mut found) = (0.0f64, 0usize);
            for _ in 0..3 {
                found = 0;
                let t = Instant::now();
                for (r, want) in requests.iter().zip(&truth) {
                    let hits = pool.install(|| c.search(r).unwrap());
                    found += hits.iter().filter(|h| want.contains(&h.id)).count();
                }
                best_qps = best_qps.max(nq as f64 / t.elapsed().as_secs_f64());
            }
            println!(
                "| {label} | {} | {:.3} | {best_qps:.0} | {per_row:.1} | {build:.1} |",
                f.map_or("–".to_string(), |f| f.to_string()),
                found as f64 / (nq * k) as f64
            );
        }
    }
}
