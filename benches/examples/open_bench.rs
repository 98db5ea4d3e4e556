//! Time and resident memory to open a data directory holding one large collection.
//!
//! ```text
//! cargo run --release -p quiver-benches --example open_bench -- build --dir DIR [--n 1000000] [--dim 128]
//! cargo run --release -p quiver-benches --example open_bench -- open --dir DIR [--repeat 5]
//! ```
//! `build` writes collection `bench` (Cosine, default HNSW and segment size) through the public
//! engine API: upserts in batches of 10 000, then `flush`, so every point sits in a sealed, indexed,
//! memory-mapped segment. `open` then starts fresh child processes (`open-once`), each of which opens
//! the directory with `Collections::open`, reports the wall time of that call and VmRSS / RssFile /
//! RssAnon from `/proc/self/status` right after it, then runs one search so the figure after a first
//! query is visible too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use quiver_engine::collection::EngineOptions;
use quiver_engine::config::{CollectionConfig, Distance};
use quiver_engine::point::{NamedVectors, PointInsert, SearchRequest, Vector};
use quiver_engine::{Collections, PointId};
use rand::{Rng, SeedableRng};

const NAME: &str = "bench";
const BATCH: usize = 10_000;

struct Args {
    mode: String,
    dir: PathBuf,
    n: usize,
    dim: usize,
    repeat: usize,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| usage());
    let mut a = Args {
        mode,
        dir: PathBuf::new(),
        n: 1_000_000,
        dim: 128,
        repeat: 5,
    };
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--dir" => a.dir = PathBuf::from(val()),
            "--n" => a.n = val().parse().expect("--n"),
            "--dim" => a.dim = val().parse().expect("--dim"),
            "--repeat" => a.repeat = val().parse().expect("--repeat"),
            _ => usage(),
        }
    }
    if a.dir.as_os_str().is_empty() {
        usage();
    }
    a
}

fn usage() -> ! {
    eprintln!("usage: open_bench build|open --dir DIR [--n N] [--dim D] [--repeat R]");
    std::process::exit(2)
}

fn options() -> EngineOptions {
    EngineOptions {
        deterministic: false,
        build_threads: 0,
        ..Default::default()
    }
}

/// (VmRSS, RssAnon, RssFile) in MiB.
fn rss_mib() -> (f64, f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

fn random_unit(rng: &mut rand::rngs::StdRng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn build(args: &Args) {
    let collections = Collections::open(&args.dir, options()).expect("open data dir");
    if collections.list().iter().any(|n| n == NAME) {
        println!(
            "collection {NAME} already exists under {}",
            args.dir.display()
        );
        return;
    }
    let collection = collections
        .create(NAME, CollectionConfig::single(args.dim, Distance::Cosine))
        .expect("create");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let t = Instant::now();
    let mut done = 0;
    while done < args.n {
        let batch: Vec<PointInsert> = (done..(done + BATCH).min(args.n))
            .map(|i| {
                let mut vectors = NamedVectors::new();
                vectors.insert(
                    String::new(),
                    Vector::Dense(random_unit(&mut rng, args.dim)),
                );
                let mut payload = serde_json::Map::new();
                payload.insert("group".into(), serde_json::json!(i % 100));
                PointInsert {
                    id: PointId::Num(i as u64),
                    vectors,
                    payload: Some(payload),
                }
            })
            .collect();
        done += batch.len();
        collection.upsert(batch).expect("upsert");
        if done % 100_000 == 0 {
            eprintln!("{done} points, {:.0} s", t.elapsed().as_secs_f64());
        }
    }
    collection.flush().expect("flush");
    let info = collection.info();
    println!(
        "built {} points x {} d in {:.1} s ({:.0} points/s incl. WAL, seals and HNSW); {} segments",
        args.n,
        args.dim,
        t.elapsed().as_secs_f64(),
        args.n as f64 / t.elapsed().as_secs_f64(),
        info.segments_count
    );
    collections.close().expect("close");
}

fn open_once(dir: &Path, dim: usize) {
    let before = rss_mib();
    let t = Instant::now();
    let collections = Collections::open(dir, options()).expect("open data dir");
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let after = rss_mib();
    let collection = collections.get(NAME).expect("collection bench");
    let points = collection.info().points_count;
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let request = SearchRequest::dense(random_unit(&mut rng, dim), 10);
    let t = Instant::now();
    let hits = collection.search(&request).expect("search");
    let search_ms = t.elapsed().as_secs_f64() * 1e3;
    let searched = rss_mib();
    println!(
        "open {open_ms:.1} ms for {points} points | RSS MiB before {:.1} / after open {:.1} (anon {:.1}, file {:.1}) \
         / after first search {:.1} (anon {:.1}, file {:.1}; first search {search_ms:.1} ms, {} hits)",
        before.0,
        after.0,
        after.1,
        after.2,
        searched.0,
        searched.1,
        searched.2,
        hits.len()
    );
}

fn main() {
    let args = parse_args();
    match args.mode.as_str() {
        "build" => build(&args),
        "open-once" => open_once(&args.dir, args.dim),
        "open" => {
            let exe = std::env::current_exe().expect("current exe");
            for _ in 0..args.repeat {
                let status = Command::new(&exe)
                    .arg("open-once")
                    .arg("--dir")
                    .arg(&args.dir)
                    .arg("--dim")
                    .arg(args.dim.to_string())
                    .status()
                    .expect("spawn open-once");
                assert!(status.success(), "open-once failed: {status}");
            }
        }
        _ => usage(),
    }
}
