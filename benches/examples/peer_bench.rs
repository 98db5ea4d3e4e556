//! Quiver's side of the peer benchmarks (`scripts/bench/run-all.sh`): reads the `.npy` files that
//! `scripts/bench/prepare_data.py` writes and prints one JSON object on stdout.
//!
//! ```text
//! peer_bench hnsw   DIR --metric euclid|cosine [--m 16] [--ef-construct 100] [--efs 10,20,40]
//!                       [--threads 2] [--work DIR] [--graph FILE] [--residency memory|disk]
//! peer_bench scan   DIR --metric euclid|cosine [--threads 2] [--queries N]
//! peer_bench plaid  DIR [--nbits 2] [--threads 2] [--sweep "ncells,threshold,ndocs[,n_full_scores];..."]
//!                       [--rescores 0,all]
//! ```
//! `hnsw` and `scan` read `DIR/base.npy`, `DIR/queries.npy` (f32, C order) and `DIR/gt.npy` (i32, the
//! exact top 10 of each query). `plaid` reads `doc_tokens.npy`, `doc_offsets.npy`, `query_tokens.npy`
//! and `query_offsets.npy`. `--threads` sizes the rayon pool used for build and for the parallel
//! query pass; the "1 thread" pass runs the queries one after another on the calling thread.
//! `--graph` searches a graph file written by an earlier run over the same base vectors instead of
//! building one (search-only comparisons of two builds of this example; build_s is then null).
//! `--residency` serves the vectors and the graph from memory (default, as a collection does unless
//! its `on_disk` is set) or from their memory-mapped files. `plaid` also writes the tokens' f16
//! originals and runs every setting once per `--rescores` value (`PlaidSearchParams::rescore`: `0`
//! ranks on the decompressed tokens, `all` rescores every candidate of the exact stage over the
//! originals, a number that many).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use quiver_engine::index::exact::exact_search;
use quiver_engine::index::hnsw::{build_graph, write_graph, GraphView, HnswBuildParams};
use quiver_engine::index::VectorSlab;
use quiver_engine::plaid::{
    write_originals, Candidate, PlaidBuild, PlaidBuildParams, PlaidIndex, PlaidSearchParams,
    TokenMatrices, TokenOriginals,
};
use quiver_engine::Distance;
use quiver_storage::segment::{write_dense, DenseFile, Residency};
use rayon::prelude::*;
use serde_json::json;

#[path = "common/npy.rs"]
mod npy;

use npy::{read_npy, Res};

struct Args {
    mode: String,
    dir: PathBuf,
    metric: Distance,
    m: usize,
    ef_construct: usize,
    efs: Vec<usize>,
    threads: usize,
    nbits: u8,
    work: Option<PathBuf>,
    /// Use only the first this many queries (0: all).
    queries: usize,
    graph: Option<PathBuf>,
    /// Where the vectors and the graph are served from: read into memory (the server's default) or
    /// mapped (`on_disk`).
    residency: Residency,
    /// Extra PLAID settings `(ncells, centroid_score_threshold, ndocs, n_full_scores)` measured after
    /// the default.
    plaid_sweep: Vec<(usize, f32, usize, Option<usize>)>,
    /// `PlaidSearchParams::rescore` values each setting runs with (`None`: the default, all).
    rescores: Vec<Option<usize>>,
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: peer_bench hnsw|scan|plaid DIR [options]")?;
    let dir = PathBuf::from(it.next().ok_or("missing data directory")?);
    let mut a = Args {
        mode,
        dir,
        metric: Distance::Euclid,
        m: 16,
        ef_construct: 100,
        efs: vec![10, 20, 40, 80, 160, 320],
        threads: 2,
        nbits: 2,
        work: None,
        queries: 0,
        graph: None,
        residency: Residency::InMemory,
        plaid_sweep: Vec::new(),
        rescores: vec![Some(0), None],
    };
    while let Some(flag) = it.next() {
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--metric" => {
                a.metric = match val.as_str() {
                    "euclid" => Distance::Euclid,
                    "cosine" => Distance::Cosine,
                    other => return Err(format!("--metric must be euclid or cosine, not {other}")),
                }
            }
            "--m" => a.m = num(&val)?,
            "--ef-construct" => a.ef_construct = num(&val)?,
            "--threads" => a.threads = num(&val)?.max(1),
            "--nbits" => a.nbits = num(&val)? as u8,
            "--work" => a.work = Some(PathBuf::from(val)),
            "--queries" => a.queries = num(&val)?,
            "--graph" => a.graph = Some(PathBuf::from(val)),
            "--sweep" => {
                for setting in val.split(';').filter(|s| !s.trim().is_empty()) {
                    let f: Vec<&str> = setting.split(',').map(str::trim).collect();
                    let (ncells, t_cs, ndocs, full) = match f[..] {
                        [a, b, c] => (a, b, c, None),
                        [a, b, c, d] => (a, b, c, Some(d)),
                        _ => {
                            return Err(format!(
                                "--sweep: {setting} is not ncells,threshold,ndocs[,n_full_scores]"
                            ))
                        }
                    };
                    let t_cs = t_cs
                        .parse::<f32>()
                        .map_err(|_| format!("--sweep: not a number: {t_cs}"))?;
                    let full = full.map(num).transpose()?;
                    a.plaid_sweep.push((num(ncells)?, t_cs, num(ndocs)?, full));
                }
            }
            "--rescores" => {
                a.rescores = val
                    .split(',')
                    .map(|v| match v.trim() {
                        "all" => Ok(None),
                        n => num(n).map(Some),
                    })
                    .collect::<Res<_>>()?;
            }
            "--residency" => {
                a.residency = match val.as_str() {
                    "memory" => Residency::InMemory,
                    "disk" => Residency::Mapped,
                    other => {
                        return Err(format!("--residency must be memory or disk, not {other}"))
                    }
                }
            }
            "--efs" => {
                a.efs = val.split(',').map(|s| num(s.trim())).collect::<Res<_>>()?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// Base vectors, queries and the exact top-k id sets of a prepared data directory.
struct Vectors {
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
    truth: Vec<HashSet<u32>>,
    k: usize,
}

fn load_vectors(dir: &Path, limit: usize) -> Res<Vectors> {
    let base = read_npy(&dir.join("base.npy"))?;
    let queries = read_npy(&dir.join("queries.npy"))?;
    let gt = read_npy(&dir.join("gt.npy"))?;
    let dim = base.cols()?;
    if queries.cols()? != dim {
        return Err(format!(
            "queries have {} columns, base {dim}",
            queries.cols()?
        ));
    }
    let k = gt.cols()?;
    let mut truth = gt
        .i32s()?
        .chunks_exact(k)
        .map(|r| r.iter().map(|&i| i as u32).collect())
        .collect::<Vec<HashSet<u32>>>();
    if truth.len() != queries.shape[0] {
        return Err("gt.npy and queries.npy differ in rows".into());
    }
    let mut queries = queries.f32s()?;
    if limit > 0 && limit < truth.len() {
        truth.truncate(limit);
        queries.truncate(limit * dim);
    }
    Ok(Vectors {
        dim,
        base: base.f32s()?,
        queries,
        truth,
        k,
    })
}

/// Peak resident set of this process so far (`VmHWM`), in MiB; 0 where `/proc` is missing.
fn peak_rss_mib() -> f64 {
    proc_status_kib("VmHWM:").map_or(0.0, |kib| kib / 1024.0)
}

/// Current resident set (`VmRSS`), in MiB; 0 where `/proc` is missing.
fn rss_mib() -> f64 {
    proc_status_kib("VmRSS:").map_or(0.0, |kib| kib / 1024.0)
}

fn proc_status_kib(field: &str) -> Option<f64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
}

/// CPU time of this process so far, all threads, user and system, in seconds (`/proc/self/stat`,
/// counted in the kernel's fixed 100 Hz user ticks); 0 where `/proc` is missing. On a shared machine
/// this moves less than wall time, which also counts the time other processes held the cores.
fn cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state; utime and stime are the
    // 14th and 15th fields of the whole line.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Resets the peak resident set to the current one (Linux: `5` into `clear_refs`), so a later
/// [`peak_rss_mib`] is the peak of what ran since. False where the kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Best of two timed passes: on a shared machine the faster pass is the one less disturbed.
fn best_of_two(mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..2 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn hnsw(a: &Args, pool: &rayon::ThreadPool) -> Res<serde_json::Value> {
    let mut v = load_vectors(&a.dir, a.queries)?;
    let nq = v.queries.len() / v.dim;
    let work = a.work.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("quiver-peer-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    // The vectors as a sealed segment holds them, opened the way the server opens them.
    let vectors_path = work.join("vectors.dense");
    let base = std::mem::take(&mut v.base);
    let n = base.len() / v.dim;
    write_dense(&vectors_path, v.dim, &base, None, n).map_err(|e| format!("write vectors: {e}"))?;
    drop(base);
    let dense =
        DenseFile::open_as(&vectors_path, a.residency).map_err(|e| format!("open vectors: {e}"))?;
    let slab = VectorSlab {
        data: dense.rows(),
        dim: v.dim,
    };
    // The build's own memory: the process peak from here to the written graph, against the resident
    // set before it (which holds the vectors, in memory unless --residency disk, and the queries).
    let mut build_rss = None;
    let mut build_cpu = None;
    // Resetting the peak below loses what loading the files cost; the process peak reported at the
    // end is the larger of the two.
    let load_peak = peak_rss_mib();
    let (path, build_s) = match &a.graph {
        Some(path) => (path.clone(), None),
        None => {
            let params = HnswBuildParams {
                m: a.m,
                ef_construct: a.ef_construct,
                deterministic: false,
                threads: a.threads,
            };
            let before = rss_mib();
            let peak_reset = reset_peak_rss();
            let t = Instant::now();
            let cpu = cpu_s();
            let graph = pool
                .install(|| build_graph(slab, a.metric, &params, &AtomicBool::new(false)))
                .map_err(|e| format!("build: {e}"))?;
            let build_s = t.elapsed().as_secs_f64();
            build_cpu = Some(cpu_s() - cpu);
            let path = work.join("graph.bin");
            write_graph(&path, &graph).map_err(|e| format!("write graph: {e}"))?;
            drop(graph);
            if peak_reset {
                build_rss = Some((before, peak_rss_mib()));
            }
            (path, Some(build_s))
        }
    };
    let graph_bytes = std::fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let view = GraphView::open_as(&path, a.residency).map_err(|e| format!("open graph: {e}"))?;

    let mut rows = Vec::new();
    for &ef in &a.efs {
        let search = |q: &[f32]| view.search(slab, a.metric, q, v.k, ef, &|_| true);
        let found: usize = v
            .queries
            .chunks_exact(v.dim)
            .zip(&v.truth)
            .map(|(q, t)| search(q).iter().filter(|c| t.contains(&c.offset)).count())
            .sum();
        let one = best_of_two(|| {
            for q in v.queries.chunks_exact(v.dim) {
                std::hint::black_box(search(q));
            }
        });
        let many = best_of_two(|| {
            pool.install(|| {
                v.queries.par_chunks_exact(v.dim).for_each(|q| {
                    std::hint::black_box(search(q));
                })
            })
        });
        rows.push(json!({
            "ef": ef,
            "recall": found as f64 / (nq * v.k) as f64,
            "qps_1": nq as f64 / one,
            "qps_threads": nq as f64 / many,
        }));
    }
    let vector_bytes = std::mem::size_of_val(slab.data) as u64;
    let out = json!({
        "impl": "quiver",
        "version": env!("CARGO_PKG_VERSION"),
        "n": slab.len(),
        "dim": v.dim,
        "queries": nq,
        "threads": a.threads,
        "residency": format!("{:?}", a.residency),
        "build_s": build_s,
        "build_cpu_s": build_cpu,
        // The graph file holds links only; vectors live in the collection's own file. Both together
        // are what the peers' single index file holds.
        "graph_bytes": graph_bytes,
        "index_bytes": graph_bytes + vector_bytes,
        "peak_rss_mib": peak_rss_mib().max(load_peak),
        "build_rss_before_mib": build_rss.map(|(before, _)| before),
        "build_peak_rss_mib": build_rss.map(|(_, peak)| peak),
        "vector_mib": vector_bytes as f64 / (1024.0 * 1024.0),
        "rows": rows,
    });
    if a.work.is_none() && a.graph.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(out)
}

/// Read bandwidth: a parallel sum over `data` in the given pool, best of ten passes, GB/s. One pass
/// takes well under a second, so on a shared machine most passes lose a core for part of the time;
/// the best one is the closest to what the memory system gives.
fn read_bandwidth_gbs(pool: &rayon::ThreadPool, data: &[f32]) -> f64 {
    let mut best = f64::MAX;
    let mut sink = 0.0f32;
    for _ in 0..10 {
        let t = Instant::now();
        sink += pool.install(|| {
            data.par_chunks(1 << 16)
                .map(|c| {
                    // 16 independent accumulators keep the adds off the critical path, so the loop
                    // is limited by loads, not by add latency.
                    let mut acc = [0.0f32; 16];
                    for ch in c.chunks_exact(16) {
                        for i in 0..16 {
                            acc[i] += ch[i];
                        }
                    }
                    acc.iter().sum::<f32>()
                })
                .sum::<f32>()
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    std::mem::size_of_val(data) as f64 / best / 1e9
}

fn scan(a: &Args, pool: &rayon::ThreadPool) -> Res<serde_json::Value> {
    let v = load_vectors(&a.dir, a.queries)?;
    let slab = VectorSlab {
        data: &v.base,
        dim: v.dim,
    };
    let nq = v.queries.len() / v.dim;
    let bytes = std::mem::size_of_val(v.base.as_slice()) as f64;
    let bw_threads = read_bandwidth_gbs(pool, &v.base);
    let one_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| e.to_string())?;
    let bw_1 = read_bandwidth_gbs(&one_pool, &v.base);
    let mut found = 0usize;
    let mut run = |p: &rayon::ThreadPool, count: bool| {
        best_of_two(|| {
            p.install(|| {
                for (q, t) in v.queries.chunks_exact(v.dim).zip(&v.truth) {
                    let r = exact_search(slab, a.metric, q, v.k, &|_| true);
                    if count {
                        found += r.iter().filter(|c| t.contains(&c.offset)).count();
                    }
                }
            })
        })
    };
    let s_threads = run(pool, true);
    let s_one = run(&one_pool, false);
    // Probed again after the scans: the better of the two probes is the bandwidth reported.
    let bw_threads = bw_threads.max(read_bandwidth_gbs(pool, &v.base));
    let bw_1 = bw_1.max(read_bandwidth_gbs(&one_pool, &v.base));
    Ok(json!({
        "impl": "quiver",
        "n": slab.len(),
        "dim": v.dim,
        "queries": nq,
        "threads": a.threads,
        // Counted over both passes of best_of_two.
        "recall": found as f64 / (2 * nq * v.k) as f64,
        "qps_threads": nq as f64 / s_threads,
        "gbs_threads": nq as f64 * bytes / s_threads / 1e9,
        "qps_1": nq as f64 / s_one,
        "gbs_1": nq as f64 * bytes / s_one / 1e9,
        "read_bw_threads_gbs": bw_threads,
        "read_bw_1_gbs": bw_1,
    }))
}

fn recall_at(got: &[Candidate], want: &[Candidate]) -> usize {
    got.iter()
        .filter(|g| want.iter().any(|w| w.offset == g.offset))
        .count()
}

fn plaid(a: &Args, pool: &rayon::ThreadPool) -> Res<serde_json::Value> {
    let k = 10;
    let doc_tokens = read_npy(&a.dir.join("doc_tokens.npy"))?;
    let dim = doc_tokens.cols()?;
    let data = doc_tokens.f32s()?;
    let offsets = read_npy(&a.dir.join("doc_offsets.npy"))?.u64s()?;
    let q_tokens = read_npy(&a.dir.join("query_tokens.npy"))?;
    if q_tokens.cols()? != dim {
        return Err("query and document tokens differ in dimension".into());
    }
    let q_data = q_tokens.f32s()?;
    let q_offsets = read_npy(&a.dir.join("query_offsets.npy"))?.u64s()?;
    let queries: Vec<&[f32]> = q_offsets
        .windows(2)
        .map(|w| &q_data[w[0] as usize * dim..w[1] as usize * dim])
        .collect();
    let raw = TokenMatrices::new(&offsets, &data, dim).map_err(|e| e.to_string())?;
    let all = |_: u32| true;
    let nq = queries.len();

    pool.install(|| {
        let t = Instant::now();
        let truth: Vec<Vec<Candidate>> = queries
            .iter()
            .map(|q| raw.search(q, k, &all))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let exhaustive_s = t.elapsed().as_secs_f64();

        let params = PlaidBuildParams {
            nbits: a.nbits,
            ..PlaidBuildParams::default()
        };
        let t = Instant::now();
        let build =
            PlaidBuild::build(raw, &params, &AtomicBool::new(false)).map_err(|e| e.to_string())?;
        let build_s = t.elapsed().as_secs_f64();
        let dir = std::env::temp_dir().join(format!("quiver-peer-plaid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join("tokens.plaid");
        let written = build.write(&path).map_err(|e| e.to_string())?;
        drop(build);
        let opath = dir.join("tokens.f16");
        let written_originals = write_originals(raw, &opath).map_err(|e| e.to_string())?;
        let rss_before = rss_mib();
        let index = PlaidIndex::open(&path).map_err(|e| e.to_string())?;
        let rescoring = PlaidIndex::open(&path)
            .and_then(|i| i.with_originals(TokenOriginals::open(&opath)?))
            .map_err(|e| e.to_string())?;
        let recall_of = |results: &[Vec<Candidate>]| {
            let hits: usize = results
                .iter()
                .zip(&truth)
                .map(|(g, w)| recall_at(g, w))
                .sum();
            hits as f64 / (nq * k) as f64
        };
        let run = |index: &PlaidIndex, search: &PlaidSearchParams| -> Res<(f64, f64)> {
            let mut results = Vec::new();
            let mut failed = None;
            let secs = best_of_two(|| {
                results = queries
                    .iter()
                    .map(|q| index.search(q, k, search, &all))
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|e| {
                        failed = Some(e.to_string());
                        Vec::new()
                    });
            });
            if let Some(e) = failed {
                return Err(e);
            }
            Ok((recall_of(&results), nq as f64 / secs))
        };
        let mut settings = vec![PlaidSearchParams::default()];
        for &(ncells, t_cs, ndocs, full) in &a.plaid_sweep {
            settings.push(PlaidSearchParams {
                ncells: Some(ncells),
                centroid_score_threshold: Some(t_cs),
                ndocs: Some(ndocs),
                n_full_scores: full,
                rescore: None,
            });
        }
        // Decompressed-only runs first on the store without originals, so that the resident set they
        // leave is the store's alone; then the rescoring runs, whose growth is the originals' pages.
        let mut sweep = Vec::new();
        let mut rss_plain = 0.0;
        for pass in [false, true] {
            for setting in &settings {
                for &rescore in &a.rescores {
                    if (rescore != Some(0)) != pass {
                        continue;
                    }
                    let search = PlaidSearchParams {
                        rescore,
                        ..setting.clone()
                    };
                    let r = search.resolve(k, pass).map_err(|e| e.to_string())?;
                    let (recall, qps) = run(if pass { &rescoring } else { &index }, &search)?;
                    sweep.push(json!({"ncells": r.ncells,
                        "centroid_score_threshold": r.centroid_score_threshold,
                        "ndocs": r.ndocs, "n_full_scores": r.n_full_scores, "rescore": r.rescore,
                        "default": setting == &PlaidSearchParams::default(),
                        "recall": recall, "plaid_qps": qps}));
                }
            }
            if !pass {
                rss_plain = rss_mib() - rss_before;
            }
        }
        let rss_after = rss_mib() - rss_before;
        // Every point reranked over its decompressed tokens: what the codec alone loses, apart from
        // PLAID's candidate generation; and the same over the f16 originals.
        let every: Vec<u32> = (0..raw.len() as u32).collect();
        let decompressed: Vec<Vec<Candidate>> = queries
            .iter()
            .map(|q| index.rerank(q, &every, k, &all))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let originals: Vec<Vec<Candidate>> = queries
            .iter()
            .map(|q| rescoring.rescore(q, &every, k, &all))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let default_plain = sweep
            .iter()
            .find(|s| s["default"] == json!(true) && s["rescore"] == json!(0));
        let field = |f: &str| {
            default_plain
                .and_then(|s| s[f].as_f64())
                .unwrap_or(f64::NAN)
        };
        let (recall, plaid_qps) = (field("recall"), field("plaid_qps"));
        let _ = std::fs::remove_dir_all(&dir);
        let tokens = raw.num_tokens() as f64;
        Ok(json!({
            "impl": "quiver",
            "docs": raw.len(),
            "tokens": raw.num_tokens(),
            "dim": dim,
            "queries": nq,
            "query_tokens_mean": q_data.len() as f64 / dim as f64 / nq as f64,
            "threads": a.threads,
            "nbits": a.nbits,
            "centroids": index.num_centroids(),
            "build_s": build_s,
            "file_bytes_per_token": written.size as f64 / tokens,
            "originals_file_bytes_per_token": written_originals.size as f64 / tokens,
            "rss_delta_after_decompressed_runs_mib": rss_plain,
            "rss_delta_after_all_runs_mib": rss_after,
            "recall": recall,
            "decompressed_exhaustive_recall": recall_of(&decompressed),
            "f16_exhaustive_recall": recall_of(&originals),
            "plaid_qps": plaid_qps,
            "sweep": sweep,
            "exhaustive_qps": nq as f64 / exhaustive_s,
        }))
    })
}

fn main() {
    let result = parse_args().and_then(|a| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(a.threads)
            .build()
            .map_err(|e| e.to_string())?;
        match a.mode.as_str() {
            "hnsw" => hnsw(&a, &pool),
            "scan" => scan(&a, &pool),
            "plaid" => plaid(&a, &pool),
            other => Err(format!("unknown mode {other} (hnsw, scan or plaid)")),
        }
    });
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("peer_bench: {e}");
            std::process::exit(2);
        }
    }
}
