//! Texts per second of the full text path (tokenizer, padding, model, pooling) on real texts, for
//! `scripts/bench/bert_cpu.py`. Prints one JSON line per batch size.
//!
//! `cargo run --release -p quiver-benches --example text_bench -- MODEL_DIR TEXTS_JSON
//!  [--batches 1,32] [--iters 3] [--probe TEXT]`
//!
//! `--probe` first prints `{"probe": TEXT, "vector": [...]}`, the text's vector, so a caller can check
//! the timed encoder against a reference implementation.
//!
//! TEXTS_JSON is a JSON array of strings; each batch size encodes all of them in consecutive
//! chunks of that size, one `encode_texts` call per chunk (one forward pass when the chunk fits
//! the token budget).

use std::time::Instant;

use quiver_encoder::{DType, Device, Encoder, PromptKind};

// The allocator of the `quiver` binary, so this measures what the server runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: text_bench MODEL_DIR TEXTS_JSON [--batches 1,32] [--iters 3] [--probe TEXT]";
    let model = args.next().ok_or(usage)?;
    let texts_path = args.next().ok_or(usage)?;
    let mut batches = vec![1usize, 32];
    let mut iters = 3usize;
    let mut probe = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => iters = args.next().ok_or("--iters N")?.parse()?,
            "--probe" => probe = Some(args.next().ok_or("--probe TEXT")?),
            "--batches" => {
                batches = args
                    .next()
                    .ok_or("--batches N,...")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let texts: Vec<String> = serde_json::from_str(&std::fs::read_to_string(&texts_path)?)?;
    let t0 = Instant::now();
    let enc = Encoder::load(&model, &Device::Cpu, DType::F32)?;
    let load_s = t0.elapsed().as_secs_f64();
    let task = enc
        .tasks()
        .into_iter()
        .next()
        .unwrap_or_else(|| "retrieval".into());
    if let Some(text) = probe {
        let got = enc.encode_texts(std::slice::from_ref(&text), &task, PromptKind::Query, None)?;
        let vector = &got.first().ok_or("no vector for the probe")?.single;
        println!("{}", serde_json::json!({"probe": text, "vector": vector}));
    }
    for b in batches {
        let run = || -> Result<(), Box<dyn std::error::Error>> {
            for chunk in texts.chunks(b) {
                enc.encode_texts(chunk, &task, PromptKind::Query, None)?;
            }
            Ok(())
        };
        run()?; // warm-up
        let t = Instant::now();
        for _ in 0..iters {
            run()?;
        }
        let per = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "{{\"impl\":\"quiver\",\"batch\":{b},\"texts\":{},\"seconds\":{per:.3},\"texts_per_s\":{:.1},\"load_s\":{load_s:.2}}}",
            texts.len(),
            texts.len() as f64 / per
        );
    }
    Ok(())
}
