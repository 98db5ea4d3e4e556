//! Throughput of the text encoder on random token ids (no tokenization), for
//! `scripts/bench/encoder_cpu.sh`. Prints one JSON line per shape.
//!
//! `cargo run --release -p quiver-benches --example encode_bench -- MODEL_DIR [--merge TASK]
//!  [--bf16] [--shapes 16x128,4x512,1x2048] [--iters 3]`

use std::time::Instant;

use quiver_encoder::{DType, Device, Encoder, LoadOptions, RunSpec};

// The allocator of the `quiver` binary, so this measures what the server runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or("usage: encode_bench MODEL_DIR [options]")?;
    let mut merge = None;
    let mut dtype = DType::F32;
    let mut shapes = vec![(16usize, 128usize), (4, 512), (1, 2048)];
    let mut iters = 3usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--merge" => merge = args.next(),
            "--bf16" => dtype = DType::BF16,
            "--iters" => iters = args.next().ok_or("--iters N")?.parse()?,
            "--shapes" => {
                shapes = args
                    .next()
                    .ok_or("--shapes BxL,...")?
                    .split(',')
                    .map(|s| {
                        let (b, l) = s.split_once('x').expect("BxL");
                        (b.parse().expect("batch"), l.parse().expect("length"))
                    })
                    .collect()
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let opts = LoadOptions {
        device: Device::Cpu,
        dtype,
        merge_task: merge.clone(),
        cpu_f16_weights: false,
    };
    let t0 = Instant::now();
    let enc = Encoder::load_with(&model, &opts)?;
    let load_s = t0.elapsed().as_secs_f64();
    let task = match &merge {
        Some(t) => enc.task_index(t)?,
        None => 0,
    };
    let vocab = enc.vocab_size() as u64;
    let spec = RunSpec {
        task,
        dims: enc.dims(),
    };
    // Deterministic pseudo-random ids (xorshift), no special handling needed.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next_id = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % (vocab - 10)) as u32 + 3
    };
    for (b, l) in shapes {
        let rows: Vec<Vec<u32>> = (0..b)
            .map(|_| (0..l).map(|_| next_id()).collect())
            .collect();
        let refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        enc.embed_ids(&refs, spec)?; // warm-up
        let t = Instant::now();
        for _ in 0..iters {
            enc.embed_ids(&refs, spec)?;
        }
        let per = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "{{\"impl\":\"candle\",\"lora\":\"{}\",\"dtype\":\"{:?}\",\"batch\":{b},\"len\":{l},\"ms_per_batch\":{:.1},\"tokens_per_s\":{:.0},\"load_s\":{load_s:.2}}}",
            if merge.is_some() { "merged" } else { "unmerged" },
            dtype,
            per * 1e3,
            (b * l) as f64 / per
        );
    }
    Ok(())
}
