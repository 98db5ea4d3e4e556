//! Subcommands. Each module owns its clap arguments and a `run` that takes the global arguments.

pub mod alias;
pub mod collection;
pub mod config_file;
pub mod debug_encoder;
pub mod embed;
pub mod ingest;
pub mod ingest_documents;
pub mod search;
pub mod serve;
pub mod snapshot;
pub mod upsert;
pub mod workload;

use std::path::PathBuf;

use clap::Args;

/// Arguments every subcommand shares.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Directory holding the collections (created if missing).
    #[arg(
        long,
        global = true,
        env = "QUIVER_DATA_DIR",
        default_value = "./quiver-data"
    )]
    pub data_dir: PathBuf,
    /// Log filter, e.g. `info`, `quiver=debug` (tracing's env-filter syntax).
    #[arg(long, global = true, env = "QUIVER_LOG", default_value = "info")]
    pub log: String,
}

/// Logs go to stderr so stdout stays clean for JSON output.
pub fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The open collections of a data directory, with the directory locked against a second process.
///
/// Two processes appending to the same WALs would corrupt them, so the lock is taken before anything is
/// opened and held until the value is dropped.
pub struct LockedCollections {
    collections: std::sync::Arc<quiver_engine::Collections>,
    _lock: std::fs::File,
}

impl std::ops::Deref for LockedCollections {
    type Target = quiver_engine::Collections;

    fn deref(&self) -> &Self::Target {
        &self.collections
    }
}

/// Locks and opens the data directory named by the global arguments.
pub fn open_collections(global: &GlobalArgs) -> anyhow::Result<LockedCollections> {
    use anyhow::Context;

    let dir = &global.data_dir;
    let lock = lock_data_dir(dir)?;
    let collections = quiver_engine::Collections::open(dir, engine_options())
        .with_context(|| format!("{}: cannot open data directory", dir.display()))?;
    for (name, reason) in collections.failed() {
        tracing::error!(collection = %name, %reason, "collection failed to open and is skipped");
    }
    Ok(LockedCollections {
        collections: std::sync::Arc::new(collections),
        _lock: lock,
    })
}

/// Creates the data directory if needed and takes its exclusive lock, held while the returned file
/// lives. Two processes appending to the same WALs would corrupt them.
pub fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use anyhow::Context;

    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create data directory", dir.display()))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("{}: cannot open lock file", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{}: data directory is in use by another quiver process (a running server?); \
             stop it or use the HTTP API",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("{}: cannot lock", lock_path.display()))
        }
    }
}

/// Engine options for this process. `QUIVER_DETERMINISTIC=1` makes index builds reproducible (tests).
pub fn engine_options() -> quiver_engine::collection::EngineOptions {
    let deterministic =
        std::env::var("QUIVER_DETERMINISTIC").is_ok_and(|v| v == "1" || v == "true");
    quiver_engine::collection::EngineOptions {
        deterministic,
        after_optimize: Some(crate::return_freed_memory),
        ..Default::default()
    }
}
