//! `quiver serve`: the HTTP API over the data directory.

use std::time::Duration;

use clap::Args;

use quiver_engine::Collections;

use crate::http::{HttpSettings, Limits};

/// Flags of `quiver serve`. Every flag can also come from the environment variable named in `--help`.
#[derive(Args, Clone)]
pub struct ServeArgs {
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
            },
            workers: self.workers,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
        }
    }
}

/// Serves until SIGINT / SIGTERM, then finishes in-flight requests and closes the collections.
pub fn run(global: &super::GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.http_settings();
    tracing::debug!(?settings, "serve");
    let data_dir = global.data_dir.clone();
    // Held until the server has stopped: a second process on the same directory would corrupt its WALs.
    let _lock = super::lock_data_dir(&data_dir)?;
    crate::http::serve(settings, move || {
        tracing::info!(data_dir = %data_dir.display(), "opening collections");
        Ok(Collections::open(&data_dir, super::engine_options())?)
    })
}
