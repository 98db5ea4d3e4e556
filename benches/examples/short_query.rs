//! In-process latency of one short query's embedding (tokenizing and the forward pass, no HTTP), with
//! the projections' weights in f32 and in f16 (`--cpu-f16-weights`), alternating between the two
//! encoders so that a shared machine's load falls on both alike.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p quiver-benches --example short_query -- MODEL_DIR
//!  [--iters 300] [--text "why is the sky blue"] [--gap-us 0]`
//!
//! `--gap-us` sleeps that long before each call, as the round trip of a client between requests
//! does: the pool's threads may go to sleep in it, and the call then pays for waking them.
//!
//! Prints the p50 and p99 in milliseconds of each, and the cosine between their vectors.

use std::time::Instant;

use quiver_encoder::{Encoder, LoadOptions, PromptKind};

// The allocator of the `quiver` binary, so this measures what the server runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pct(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((p / 100.0) * (xs.len() - 1) as f64).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or("usage: short_query MODEL_DIR [--iters N] [--text T] [--gap-us N]")?;
    let mut iters = 300usize;
    let mut text = "why is the sky blue".to_string();
    let mut gap = std::time::Duration::ZERO;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => iters = args.next().ok_or("--iters N")?.parse()?,
            "--text" => text = args.next().ok_or("--text T")?,
            "--gap-us" => {
                gap = std::time::Duration::from_micros(args.next().ok_or("--gap-us N")?.parse()?)
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let load = |f16: bool| {
        Encoder::load_with(
            &model,
            &LoadOptions {
                cpu_f16_weights: f16,
                ..LoadOptions::default()
            },
        )
    };
    let encoders = [("f32 weights", load(false)?), ("f16 weights", load(true)?)];
    let embed = |e: &Encoder| {
        e.encode_texts(&[text.as_str()], "retrieval", PromptKind::Query, None)
            .map(|mut v| v.remove(0))
    };
    let tokens = embed(&encoders[0].1)?.tokens;
    let mut times = vec![Vec::with_capacity(iters); encoders.len()];
    for _ in 0..iters / 10 {
        for (_, e) in &encoders {
            embed(e)?;
        }
    }
    for _ in 0..iters {
        for (i, (_, e)) in encoders.iter().enumerate() {
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
            let t = Instant::now();
            embed(e)?;
            times[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!(
        "{tokens} tokens, {iters} calls each, alternating, {} µs apart; rayon threads {}",
        gap.as_micros(),
        rayon::current_num_threads()
    );
    for ((name, _), t) in encoders.iter().zip(&mut times) {
        let (p50, p99) = (pct(t, 50.0), pct(t, 99.0));
        println!("{name}: p50 {p50:.3} ms, p99 {p99:.3} ms");
    }
    let (a, b) = (embed(&encoders[0].1)?.single, embed(&encoders[1].1)?.single);
    let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    println!("cosine f16 vs f32: {:.7}", dot / (n(&a) * n(&b)));
    Ok(())
}
