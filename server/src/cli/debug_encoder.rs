//! `quiver debug-encoder` (hidden): the Quiver side of `scripts/gpu-check.sh`. Loads a model on a
//! device, embeds the token ids of a request file (for parity against a reference) and times
//! batches of random ids, then writes what it measured to `OUT/result.json`, with the vectors as
//! little-endian f32 in `OUT/vectors.f32` (offsets and sizes in the JSON, in floats).
//!
//! Request (`--request FILE`):
//! ```json
//! {"parity": [{"name": "L32/code", "task": "code", "ids": [[15, 7, ...]]}],
//!  "timing": [{"name": "32x128", "batch": 32, "tokens": 128, "task": "retrieval",
//!              "warmup": 2, "iters": 10}],
//!  "image_parity": [{"name": "448/retrieval", "task": "retrieval", "files": ["448.png"]}],
//!  "image_timing": [{"name": "448x8", "task": "retrieval", "files": ["a.png", ...],
//!                    "warmup": 2, "iters": 10}],
//!  "seed": 0}
//! ```
//! A timed text call goes from token ids on the host to vectors on the host (upload, forward pass,
//! heads, download), as one `Encoder::embed_ids` call; a timed image call from the encoded files
//! in memory to vectors on the host (decode, resize, patchify, vision tower, decoder, heads), as
//! one `Encoder::encode_images` call over all of the case's files.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use quiver_encoder::gpu_memory::{pool_usage, reset_peak};
use quiver_encoder::{default_dtype, parse_dtype, DType, DeviceChoice, Encoder, LoadOptions};
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::json;

/// Arguments of `debug-encoder`.
#[derive(Args, Debug)]
pub struct DebugEncoderArgs {
    /// Model directory.
    #[arg(long)]
    pub model: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// f32 or bf16 (default: bf16 on a GPU, f32 on the CPU).
    #[arg(long, value_parser = parse_dtype)]
    pub dtype: Option<DType>,
    /// Text pass: `packed` (fused kernels, no padding) or `padded` (candle's generic ops); default
    /// packed on a GPU, padded on the CPU.
    #[arg(long, value_parser = ["packed", "padded"])]
    pub text_pass: Option<String>,
    /// Vision tower attention: `varlen` (one fused launch per block over all windows) or
    /// `segments` (batched matmuls per run of equal windows); default varlen on a GPU, segments on
    /// the CPU.
    #[arg(long, value_parser = ["varlen", "segments"])]
    pub vision_pass: Option<String>,
    /// The request file (JSON, see the module docs).
    #[arg(long)]
    pub request: PathBuf,
    /// Directory for result.json and vectors.f32 (created).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    parity: Vec<ParityCase>,
    #[serde(default)]
    timing: Vec<TimingCase>,
    #[serde(default)]
    image_parity: Vec<ImageCase>,
    #[serde(default)]
    image_timing: Vec<ImageCase>,
    #[serde(default)]
    seed: u64,
}

/// Image files embedded in one call (parity), or timed as one batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageCase {
    name: String,
    task: String,
    files: Vec<PathBuf>,
    #[serde(default = "default_warmup")]
    warmup: usize,
    #[serde(default = "default_iters")]
    iters: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParityCase {
    name: String,
    task: String,
    ids: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingCase {
    name: String,
    batch: usize,
    tokens: usize,
    task: String,
    #[serde(default = "default_warmup")]
    warmup: usize,
    #[serde(default = "default_iters")]
    iters: usize,
}

fn default_warmup() -> usize {
    2
}

fn default_iters() -> usize {
    10
}

/// Runs `debug-encoder`.
pub fn run(args: DebugEncoderArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.request)
        .with_context(|| format!("{}: cannot read", args.request.display()))?;
    let request: Request = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a debug-encoder request", args.request.display()))?;
    if request
        .timing
        .iter()
        .any(|t| t.iters == 0 || t.batch == 0 || t.tokens == 0)
    {
        bail!("timing cases need a positive batch, tokens and iters");
    }
    if request
        .image_timing
        .iter()
        .chain(&request.image_parity)
        .any(|t| t.iters == 0 || t.files.is_empty())
    {
        bail!("image cases need files and a positive iters");
    }
    let device = args.device.resolve()?;
    let dtype = args.dtype.unwrap_or_else(|| default_dtype(&device));
    let started = Instant::now();
    let mut encoder = Encoder::load_with(
        &args.model,
        &LoadOptions {
            device: device.clone(),
            dtype,
            merge_task: None,
            cpu_f16_weights: false,
        },
    )
    .with_context(|| format!("model {}", args.model))?;
    if let Some(pass) = &args.text_pass {
        encoder.set_packed_text(pass == "packed")?;
    }
    if let Some(pass) = &args.vision_pass {
        encoder.set_varlen_vision(pass == "varlen")?;
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let after_load = pool_usage(&device)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let mut vectors = VectorFile {
        out: std::io::BufWriter::new(
            std::fs::File::create(args.out.join("vectors.f32")).context("vectors.f32")?,
        ),
        written: 0,
    };
    let mut parity = Vec::new();
    for case in &request.parity {
        let spec = encoder.run_spec(&case.task, None)?;
        let rows: Vec<&[u32]> = case.ids.iter().map(Vec::as_slice).collect();
        let embeddings = encoder
            .embed_ids(&rows, spec)
            .with_context(|| format!("parity case {}", case.name))?;
        let mut outs = Vec::new();
        for e in &embeddings {
            outs.push(vectors.row(e)?);
        }
        parity.push(json!({"name": case.name, "task": case.task, "rows": outs}));
    }
    let mut image_parity = Vec::new();
    for case in &request.image_parity {
        let images = read_files(&case.files)?;
        let embeddings = encoder
            .encode_images(&images, &case.task, None)
            .with_context(|| format!("image parity case {}", case.name))?;
        let mut outs = Vec::new();
        for e in &embeddings {
            outs.push(vectors.row(e)?);
        }
        image_parity.push(json!({"name": case.name, "task": case.task, "rows": outs}));
    }
    vectors.out.flush()?;

    let vocab = encoder.vocab_size().min(150_000) as u32;
    let mut rng = rand::rngs::StdRng::seed_from_u64(request.seed);
    let mut timing = Vec::new();
    for case in &request.timing {
        let spec = encoder.run_spec(&case.task, None)?;
        let ids: Vec<Vec<u32>> = (0..case.batch)
            .map(|_| {
                (0..case.tokens)
                    .map(|_| rng.random_range(0..vocab))
                    .collect()
            })
            .collect();
        let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        for _ in 0..case.warmup {
            encoder.embed_ids(&rows, spec)?;
        }
        reset_peak(&device)?;
        let mut ms = Vec::with_capacity(case.iters);
        for _ in 0..case.iters {
            let t = Instant::now();
            encoder.embed_ids(&rows, spec)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let peak = pool_usage(&device)?.map(|u| u.peak);
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        tracing::info!(case = %case.name, median_ms = median, "timed");
        timing.push(json!({
            "name": case.name,
            "batch": case.batch,
            "tokens": case.tokens,
            "iters": case.iters,
            "median_ms": median,
            "min_ms": ms[0],
            "max_ms": ms[ms.len() - 1],
            "items_per_s": case.batch as f64 / (median / 1e3),
            "launches": encoder.last_launches(),
            "peak_bytes": peak,
        }));
    }

    let mut image_timing = Vec::new();
    for case in &request.image_timing {
        let images = read_files(&case.files)?;
        let mut tokens = 0;
        for _ in 0..case.warmup {
            tokens = encoder
                .encode_images(&images, &case.task, None)?
                .iter()
                .map(|e| e.tokens)
                .sum::<usize>();
        }
        reset_peak(&device)?;
        let mut ms = Vec::with_capacity(case.iters);
        for _ in 0..case.iters {
            let t = Instant::now();
            let out = encoder.encode_images(&images, &case.task, None)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            tokens = out.iter().map(|e| e.tokens).sum();
        }
        let peak = pool_usage(&device)?.map(|u| u.peak);
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        tracing::info!(case = %case.name, median_ms = median, "timed");
        image_timing.push(json!({
            "name": case.name,
            "batch": images.len(),
            "tokens": tokens,
            "iters": case.iters,
            "median_ms": median,
            "min_ms": ms[0],
            "max_ms": ms[ms.len() - 1],
            "items_per_s": images.len() as f64 / (median / 1e3),
            "peak_bytes": peak,
        }));
    }

    let info = encoder.info();
    let result = json!({
        "device": format!("{device:?}"),
        "dtype": format!("{dtype:?}").to_lowercase(),
        "packed": info.packs_batches,
        "cuda_compiled": quiver_encoder::device::cuda_compiled(),
        "dims": info.dims,
        "multi_vector_dim": info.multi_vector_dim,
        "load_seconds": load_seconds,
        "weights_bytes": after_load.map(|u| u.current),
        "parity": parity,
        "timing": timing,
        "image_parity": image_parity,
        "image_timing": image_timing,
    });
    let path = args.out.join("result.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

/// `vectors.f32`: every vector written end to end.
struct VectorFile {
    out: std::io::BufWriter<std::fs::File>,
    written: usize,
}

impl VectorFile {
    /// Appends `v`; returns its offset in floats.
    fn put(&mut self, v: &[f32]) -> Result<usize> {
        let at = self.written;
        for x in v {
            self.out.write_all(&x.to_le_bytes())?;
        }
        self.written += v.len();
        Ok(at)
    }

    /// Writes an embedding's vectors; returns where they are, for result.json.
    fn row(&mut self, e: &quiver_encoder::Embedding) -> Result<serde_json::Value> {
        Ok(json!({
            "tokens": e.tokens,
            "dense": {"offset": self.put(&e.single)?, "len": e.single.len()},
            "multi": {"offset": self.put(&e.multi.data)?, "rows": e.multi.num_tokens(), "dim": e.multi.dim},
        }))
    }
}

fn read_files(files: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("{}: cannot read", f.display())))
        .collect()
}
