//! `quiver serve`: the HTTP API over the data directory.

use std::time::Duration;

use clap::Args;

use quiver_engine::Collections;

use quiver_encoder::{parse_dtype, DType, DeviceChoice, ServiceOptions};

use crate::http::{HttpSettings, Limits, UrlPolicy};
use crate::inference::ModelOptions;

/// Flags of `quiver serve`. Every flag can also come from the environment variable named in `--help`.
#[derive(Args, Clone)]
pub struct ServeArgs {
    /// TOML file of serve settings, keyed by these flags' long names (`port = 6333`,
    /// `model = ["jina=/models/jina-v4"]`); environment variables and flags override it.
    #[arg(long, env = "QUIVER_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Address to bind. Binding anything but loopback needs `--api-key` or `--allow-unauthenticated`.
    #[arg(long, env = "QUIVER_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to bind (Qdrant's REST port by default); 0 picks a free port and prints it.
    #[arg(long, env = "QUIVER_PORT", default_value_t = 6333)]
    pub port: u16,
    /// API key that allows every route, sent as an `api-key` header or `Authorization: Bearer <key>`.
    #[arg(long, env = "QUIVER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// API key that allows reads and searches only (needs `--api-key` too).
    #[arg(long, env = "QUIVER_READ_ONLY_API_KEY", hide_env_values = true)]
    pub read_only_api_key: Option<String>,
    /// Serve a non-loopback address without an API key (anyone who can connect can write).
    #[arg(long, env = "QUIVER_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Largest accepted request body, in MiB.
    #[arg(long, env = "QUIVER_MAX_REQUEST_SIZE_MB", default_value_t = 32)]
    pub max_request_size_mb: usize,
    /// Largest `limit + offset` of a search, query, prefetch or scroll page.
    #[arg(long, env = "QUIVER_MAX_LIMIT", default_value_t = 10_000)]
    pub max_limit: usize,
    /// Most points in one upsert, ids in one retrieve or delete, or searches in one batch.
    #[arg(long, env = "QUIVER_MAX_BATCH", default_value_t = 10_000)]
    pub max_batch: usize,
    /// HTTP worker threads (0: one per CPU core). Searches run on a separate blocking pool.
    #[arg(long, env = "QUIVER_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Seconds shutdown waits for in-flight requests after SIGINT / SIGTERM.
    #[arg(long, env = "QUIVER_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// Restore this snapshot before serving (repeatable): a collection snapshot replaces the collection
    /// it was taken from, a full snapshot every collection in it. The server does not start if a
    /// snapshot fails to verify; the data directory is then unchanged.
    #[arg(long, value_name = "FILE")]
    pub restore_snapshot: Vec<std::path::PathBuf>,
    /// Largest snapshot accepted by `POST /collections/{name}/snapshots/upload` or downloaded by a
    /// URL recovery, in MiB.
    #[arg(long, env = "QUIVER_MAX_SNAPSHOT_UPLOAD_MB", default_value_t = 1 << 20)]
    pub max_snapshot_upload_mb: u64,
    /// Let `PUT /collections/{name}/snapshots/recover` download an `http(s)://` location. Hosts that
    /// resolve to loopback, private or link-local addresses stay refused.
    #[arg(long, env = "QUIVER_SNAPSHOT_URL_RECOVERY")]
    pub snapshot_url_recovery: bool,
    /// With `--snapshot-url-recovery`, also allow loopback, private and link-local addresses (a
    /// trusted internal network only: anyone with the admin key can then make the server fetch from it).
    #[arg(
        long,
        env = "QUIVER_SNAPSHOT_URL_ALLOW_PRIVATE",
        requires = "snapshot_url_recovery"
    )]
    pub snapshot_url_allow_private: bool,
    /// Let image objects name a file under this directory (`{"image": "photos/cat.jpg"}` or
    /// `file://…`) instead of carrying it as base64. Paths that leave the directory are refused.
    #[arg(long, env = "QUIVER_IMAGE_DIR", value_name = "DIR")]
    pub image_dir: Option<std::path::PathBuf>,
    /// Embedding model to serve, as NAME=DIR_OR_HF_ID (repeatable; a bare DIR_OR_HF_ID is named by its
    /// last path component). A directory, or a Hugging Face repo id (`org/name[@revision]`), which
    /// is downloaded into the Hugging Face cache when it is not there yet (HF_HOME, HF_HUB_CACHE,
    /// HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply). Loaded in the background: `/readyz`
    /// answers 503 until every model is ready.
    #[arg(
        long = "model",
        value_name = "NAME=SOURCE",
        env = "QUIVER_MODELS",
        value_delimiter = ','
    )]
    pub models: Vec<crate::inference::ModelSpec>,
    /// Where the models run: cpu, cuda, cuda:N, or auto (GPU 0 when this build has CUDA and a GPU
    /// answers, else the CPU; the log says which).
    #[arg(long, env = "QUIVER_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
    /// Compute type of the models: f32 or bf16 (default: bf16 on a GPU, f32 on the CPU).
    #[arg(long, env = "QUIVER_DTYPE", value_parser = parse_dtype, conflicts_with = "model_bf16")]
    pub dtype: Option<DType>,
    /// Compute the models in bfloat16 (the same as --dtype bf16).
    #[arg(long, env = "QUIVER_MODEL_BF16")]
    pub model_bf16: bool,
    /// BERT models on the CPU in f32: keep the projections' weights as f16, rounded at load (half
    /// the bytes a short query reads; vectors change slightly, cosine ≥ 0.9999 to f32 on
    /// all-MiniLM-L6-v2). Ignored on a GPU, in bf16, and for other models.
    #[arg(long, env = "QUIVER_CPU_F16_WEIGHTS")]
    pub cpu_f16_weights: bool,
    /// Tokens per forward pass of a model: longest input × inputs for padded batches (jina on the
    /// CPU), the inputs' sum for packed ones (BERT, and jina on a GPU).
    #[arg(long, env = "QUIVER_MAX_BATCH_TOKENS", default_value_t = 16_384)]
    pub max_batch_tokens: usize,
    /// Inputs per forward pass of a model.
    #[arg(long, env = "QUIVER_MAX_BATCH_REQUESTS", default_value_t = 64)]
    pub max_batch_requests: usize,
    /// Embedding requests a model holds at once (queued or running); one more gets 429 with
    /// Retry-After.
    #[arg(long, env = "QUIVER_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("ServeArgs")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &redact(&self.api_key))
            .field("read_only_api_key", &redact(&self.read_only_api_key))
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("max_request_size_mb", &self.max_request_size_mb)
            .field("max_limit", &self.max_limit)
            .field("max_batch", &self.max_batch)
            .field("workers", &self.workers)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("restore_snapshot", &self.restore_snapshot)
            .field("max_snapshot_upload_mb", &self.max_snapshot_upload_mb)
            .field("snapshot_url_recovery", &self.snapshot_url_recovery)
            .field(
                "snapshot_url_allow_private",
                &self.snapshot_url_allow_private,
            )
            .field("models", &self.models)
            .field("device", &self.device)
            .field("dtype", &self.dtype)
            .field("model_bf16", &self.model_bf16)
            .field("cpu_f16_weights", &self.cpu_f16_weights)
            .field("max_batch_tokens", &self.max_batch_tokens)
            .field("max_batch_requests", &self.max_batch_requests)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .finish()
    }
}

impl ServeArgs {
    /// The HTTP server's settings.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            host: self.host.clone(),
            port: self.port,
            api_key: self.api_key.clone(),
            read_only_api_key: self.read_only_api_key.clone(),
            allow_unauthenticated: self.allow_unauthenticated,
            max_request_bytes: self.max_request_size_mb.saturating_mul(1024 * 1024),
            limits: Limits {
                max_limit: self.max_limit,
                max_batch: self.max_batch,
                max_snapshot_upload_bytes: self.max_snapshot_upload_mb.saturating_mul(1024 * 1024),
                snapshot_urls: UrlPolicy {
                    enabled: self.snapshot_url_recovery,
                    allow_private: self.snapshot_url_allow_private,
                },
            },
            workers: self.workers,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            models: self.models.clone(),
            image_dir: self.image_dir.clone(),
            model_options: ModelOptions {
                device: self.device,
                dtype: if self.model_bf16 {
                    Some(DType::BF16)
                } else {
                    self.dtype
                },
                service: ServiceOptions {
                    max_batch_tokens: self.max_batch_tokens,
                    max_batch_requests: self.max_batch_requests,
                    queue_capacity: self.max_concurrent_requests,
                },
                cpu_f16_weights: self.cpu_f16_weights,
            },
        }
    }
}

/// Serves until SIGINT / SIGTERM, then finishes in-flight requests and closes the collections.
pub fn run(global: &super::GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    // A CUDA device in a build without CUDA stops startup here rather than failing every model.
    args.device.check_compiled()?;
    let settings = args.http_settings();
    tracing::debug!(?settings, "serve");
    if settings.models.is_empty() {
        crate::return_freed_pages_at_once();
        tracing::info!(
            "no embedding model: vectors must come with each request. To embed texts here, add \
             one with --model NAME=SOURCE (SOURCE: a directory or a Hugging Face repo id, \
             downloaded on first use), e.g. --model minilm=sentence-transformers/all-MiniLM-L6-v2"
        );
    }
    let data_dir = global.data_dir.clone();
    for file in &args.restore_snapshot {
        if !file.is_file() {
            anyhow::bail!("--restore-snapshot {}: no such file", file.display());
        }
    }
    // Held until the server has stopped: a second process on the same directory would corrupt its WALs.
    let _lock = super::lock_data_dir(&data_dir)?;
    if !args.restore_snapshot.is_empty() {
        // Before binding: a snapshot that does not verify stops startup with the data unchanged, and
        // clients never see the pre-restore state.
        use anyhow::Context;

        let collections = Collections::open(&data_dir, super::engine_options())?;
        for file in &args.restore_snapshot {
            tracing::info!(snapshot = %file.display(), "restoring snapshot before serving");
            let names = collections
                .restore_any_snapshot(file, None, None, Default::default())
                .with_context(|| format!("--restore-snapshot {}", file.display()))?;
            tracing::info!(collections = ?names, "snapshot restored");
        }
        collections.close()?;
    }
    crate::http::serve(settings, move || {
        tracing::info!(data_dir = %data_dir.display(), "opening collections");
        Ok(Collections::open(&data_dir, super::engine_options())?)
    })
}
