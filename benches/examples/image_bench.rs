//! Image throughput, for `scripts/bench/image_cpu.py` and docs/benchmarks.md.
//!
//! `image_bench preprocess [--reps N] [--dump DIR] FILES...` times decode and preprocessing per
//! image (one JSON line each) and, with `--dump`, writes each image's pixel values as raw
//! little-endian f32 (`NAME.f32`) and its grid (`NAME.json`) for comparison with Python.
//!
//! `image_bench embed MODEL_DIR [--batch N] [--iters N] FILES...` times `encode_images` over the
//! files in batches of N and prints images per second.

use std::path::PathBuf;
use std::time::Instant;

use quiver_encoder::image::{decode, preprocess_rgb, ImageLimits, PreprocessorConfig};
use quiver_encoder::{DType, Device, Encoder};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("preprocess") => preprocess_cmd(args.collect()),
        Some("embed") => embed_cmd(args.collect()),
        _ => Err("usage: image_bench preprocess|embed ...".into()),
    }
}

fn preprocess_cmd(args: Vec<String>) -> Res<()> {
    let (mut reps, mut dump, mut files) = (20usize, None, Vec::new());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => reps = it.next().ok_or("--reps N")?.parse()?,
            "--dump" => dump = Some(PathBuf::from(it.next().ok_or("--dump DIR")?)),
            _ => files.push(PathBuf::from(a)),
        }
    }
    let cfg = PreprocessorConfig::default();
    let limits = ImageLimits::default();
    for f in files {
        let bytes = std::fs::read(&f)?;
        let t = Instant::now();
        for _ in 0..reps {
            decode(&bytes, &limits)?;
        }
        let decode_ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        let img = decode(&bytes, &limits)?;
        let t = Instant::now();
        for _ in 0..reps {
            preprocess_rgb(&img, &cfg)?;
        }
        let prep_ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        let p = preprocess_rgb(&img, &cfg)?;
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        println!(
            "{{\"impl\":\"rust\",\"file\":\"{name}\",\"width\":{},\"height\":{},\"grid\":{:?},\"decode_ms\":{decode_ms:.3},\"preprocess_ms\":{prep_ms:.3}}}",
            img.width, img.height, p.grid_thw
        );
        if let Some(dir) = &dump {
            std::fs::create_dir_all(dir)?;
            let raw: Vec<u8> = p.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("{name}.f32")), raw)?;
            std::fs::write(
                dir.join(format!("{name}.json")),
                format!("{{\"grid_thw\":{:?}}}", p.grid_thw),
            )?;
            let rgb = dir.join(format!("{name}.rgb"));
            std::fs::write(rgb, &img.data)?;
        }
    }
    Ok(())
}

fn embed_cmd(args: Vec<String>) -> Res<()> {
    let mut it = args.into_iter();
    let model = it.next().ok_or("embed MODEL_DIR")?;
    let (mut batch, mut iters, mut files) = (8usize, 2usize, Vec::new());
    while let Some(a) = it.next() {
        match a.as_str() {
            "--batch" => batch = it.next().ok_or("--batch N")?.parse()?,
            "--iters" => iters = it.next().ok_or("--iters N")?.parse()?,
            _ => files.push(PathBuf::from(a)),
        }
    }
    let enc = Encoder::load(&model, &Device::Cpu, DType::F32)?;
    let images: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    enc.encode_images(&images[..batch.min(images.len())], "retrieval", None)?; // warm-up
    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let mut n = 0;
    for _ in 0..iters {
        for chunk in images.chunks(batch) {
            enc.encode_images(chunk, "retrieval", None)?;
            n += chunk.len();
        }
    }
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let model = PathBuf::from(&model);
    let model = model.file_name().unwrap_or_default().to_string_lossy();
    println!(
        "{{\"impl\":\"candle\",\"model\":\"{model}\",\"batch\":{batch},\"images\":{n},\"images_per_s\":{:.2},\"cpu_ms_per_image\":{:.0}}}",
        n as f64 / s,
        cpu * 1e3 / n as f64
    );
    Ok(())
}

/// User + system CPU time of this process (all threads), from `/proc/self/stat`; 0 elsewhere.
/// Other jobs on a shared machine inflate wall time but not this.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}
