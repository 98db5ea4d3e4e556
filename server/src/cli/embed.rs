//! `quiver embed`: embeds texts or images with the model (jina-embeddings-v4 or a BERT sentence
//! encoder) and prints JSON.
//!
//! One JSON object per input on stdout, in input order:
//! `{"index": 0, "tokens": 11, "dense": [...], "multi": [[...], ...]}` (`multi` with `--multi`).
//! Images (`--image PATH`, repeatable) use jina's image prompt; `tokens` then counts the whole
//! prompt, image pads included.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use quiver_encoder::{
    default_dtype, parse_dtype, DType, DeviceChoice, Encoder, LoadOptions, PromptKind, TextOptions,
    Truncation,
};

/// Arguments of `embed`.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Model directory, or a Hugging Face repo id (`org/name[@revision]`), downloaded into the
    /// Hugging Face cache (`$HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`) when it
    /// is not there yet.
    #[arg(
        long,
        env = "QUIVER_MODEL",
        default_value = "jinaai/jina-embeddings-v4"
    )]
    pub model: String,
    /// Task adapter: retrieval, text-matching or code.
    #[arg(long, default_value = quiver_encoder::DEFAULT_TASK)]
    pub task: String,
    /// Prompt kind: query or passage (text-matching always uses the query prompt).
    #[arg(long, default_value = "query")]
    pub prompt: String,
    /// Matryoshka dimension of the dense vector (one of the model's; default: full size).
    #[arg(long)]
    pub dims: Option<usize>,
    /// Token limit per text, prompt prefix included.
    #[arg(long, default_value_t = quiver_encoder::DEFAULT_MAX_LENGTH)]
    pub max_length: usize,
    /// Fail on texts over --max-length instead of cutting them.
    #[arg(long)]
    pub no_truncate: bool,
    /// Also print the per-token (multi-vector) embeddings.
    #[arg(long)]
    pub multi: bool,
    /// Where the model runs: cpu, cuda, cuda:N, or auto (GPU 0 when this build has CUDA and a GPU
    /// answers, else the CPU; the log says which).
    #[arg(long, env = "QUIVER_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
    /// Compute type: f32 or bf16 (default: bf16 on a GPU, f32 on the CPU).
    #[arg(long, value_parser = parse_dtype, conflicts_with = "bf16")]
    pub dtype: Option<DType>,
    /// Compute in bfloat16 (the same as --dtype bf16).
    #[arg(long)]
    pub bf16: bool,
    /// Image files to embed (PNG, JPEG, WebP, GIF), instead of texts. Repeatable.
    #[arg(long = "image", value_name = "PATH", conflicts_with = "texts")]
    pub images: Vec<PathBuf>,
    /// Texts to embed.
    #[arg(required_unless_present = "images")]
    pub texts: Vec<String>,
}

/// Runs `embed`.
pub fn run(args: EmbedArgs) -> Result<()> {
    let prompt: PromptKind = args.prompt.parse()?;
    let device = args.device.resolve()?;
    let dtype = match (args.bf16, args.dtype) {
        (true, _) => DType::BF16,
        (false, Some(dtype)) => dtype,
        (false, None) => default_dtype(&device),
    };
    let opts = LoadOptions {
        device,
        dtype,
        merge_task: None,
        cpu_f16_weights: false,
    };
    let encoder =
        Encoder::load_with(&args.model, &opts).with_context(|| format!("model {}", args.model))?;
    if args.multi && !encoder.supports_multivector() {
        anyhow::bail!("model {} gives no per-token vectors (--multi)", args.model);
    }
    let text_opts = TextOptions {
        task: args.task,
        prompt,
        dims: args.dims,
        truncation: Truncation {
            max_length: args.max_length,
            truncate: !args.no_truncate,
        },
    };
    let embeddings = if args.images.is_empty() {
        encoder.encode_texts_with(&args.texts, &text_opts)?
    } else {
        let bytes = args
            .images
            .iter()
            .map(|p| std::fs::read(p).with_context(|| format!("{}", p.display())))
            .collect::<Result<Vec<_>>>()?;
        encoder
            .encode_images(&bytes, &text_opts.task, text_opts.dims)
            .map_err(|e| match e {
                // Name the file, not just its position.
                quiver_encoder::Error::Image { index, source } => {
                    anyhow::anyhow!("{}: {source}", args.images[index].display())
                }
                other => other.into(),
            })?
    };
    let mut out = std::io::stdout().lock();
    for (index, e) in embeddings.iter().enumerate() {
        let mut line = serde_json::json!({
            "index": index,
            "tokens": e.tokens,
            "dense": e.single,
        });
        if args.multi {
            line["multi"] = serde_json::json!(e.multi.rows().collect::<Vec<_>>());
        }
        use std::io::Write;
        if let Err(err) = writeln!(out, "{line}") {
            // A closed pipe (`| head`) is not an error.
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(err.into());
        }
    }
    Ok(())
}
