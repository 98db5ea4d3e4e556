//! `quiver`: the one binary. Parses the command line, sets up logging, and hands each subcommand its
//! resolved arguments.

mod api;
mod base64;
mod cli;
mod documents;
mod http;
mod inference;

use clap::{CommandFactory, Parser, Subcommand};

/// Quiver: a vector search engine with its own embedding model, in one binary.
///
/// Collections of points (id, JSON payload, vectors) on local disk, searched by HNSW or exact scan,
/// served over Qdrant's REST API.
// The CPU encoder allocates tensors of tens of MB per layer. glibc serves those with fresh
// mmaps and unmaps them on free, so every layer paid page faults and kernel zeroing (about a
// tenth of a jina forward pass in `perf`); mimalloc keeps and reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the memory mimalloc holds free to the kernel. Run after each background optimization: a
/// seal frees the appendable rows and its build buffers (2-3x the vectors it indexed), which
/// mimalloc otherwise keeps until later allocations, so an idle server held a seal's peak
/// (docs/benchmarks.md, "Resident memory").
pub(crate) fn return_freed_memory() {
    // SAFETY: `mi_collect` only walks mimalloc's own structures; it is safe from any thread at any
    // time, and mimalloc is this process's allocator.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

// mimalloc.h's `mi_option_e` values (v2), which libmimalloc-sys does not name.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets a mimalloc option unless its `MIMALLOC_*` environment variable did.
fn set_allocator_option(option: libmimalloc_sys::mi_option_t, env: &str, value: i64) {
    if std::env::var_os(env).is_none() {
        // SAFETY: setting an option only stores a value mimalloc reads on later calls.
        unsafe { libmimalloc_sys::mi_option_set(option, value as _) }
    }
}

/// Arenas commit their pages as they are used, not all at once: a committed arena could be backed
/// by huge pages that made untouched space resident. Measured on a server that ingested, indexed
/// and searched Fashion-MNIST: 52 MiB less after ingest, 20 MiB less once indexed, encoder
/// throughput level (docs/benchmarks.md, "The fixed overhead").
///
/// On Linux this runs from `.init_array` ahead of every constructor of default priority and of
/// mimalloc's own (101 under clang), so before the Rust runtime's first allocation reserves the
/// first arena: set from `main`, the option reached only later arenas, and the first one kept a
/// started server at 19–21 MiB resident. It allocates nothing (libc's `getenv`, not `std::env`).
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array.00100"]
static EARLY_ALLOCATOR_OPTIONS: extern "C" fn() = early_allocator_options;

#[cfg(target_os = "linux")]
extern "C" fn early_allocator_options() {
    extern "C" {
        fn getenv(name: *const std::ffi::c_char) -> *mut std::ffi::c_char;
    }
    // SAFETY: `getenv` reads the environment glibc set up before any constructor ran, with a
    // NUL-terminated name; setting an option only stores a value mimalloc reads later.
    unsafe {
        if getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        }
    }
}

/// Elsewhere the same option, set as `main` starts.
#[cfg(not(target_os = "linux"))]
fn tune_allocator() {
    set_allocator_option(
        MI_OPTION_ARENA_EAGER_COMMIT,
        "MIMALLOC_ARENA_EAGER_COMMIT",
        0,
    );
}

/// For a server without a model: pages a thread frees go back to the kernel at once instead of after
/// mimalloc's delay, which runs out only at that thread's next allocation (an idle HTTP worker makes
/// none). With a model this stays off: the encoder frees and reallocates tensors of tens of MB per
/// layer, and purging them at once cost a third of its batch throughput.
pub(crate) fn return_freed_pages_at_once() {
    set_allocator_option(MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0);
}

#[derive(Parser, Debug)]
#[command(
    name = "quiver",
    version,
    about,
    long_about = None,
    propagate_version = true,
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    global: cli::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API (Qdrant's REST dialect) over the data directory.
    Serve(cli::serve::ServeArgs),
    /// Create, list, inspect or delete collections.
    #[command(subcommand)]
    Collection(cli::collection::CollectionCommand),
    /// List, create, delete or rename collection aliases.
    #[command(subcommand)]
    Alias(cli::alias::AliasCommand),
    /// Insert or replace points from a JSON Lines file.
    Upsert(cli::upsert::UpsertArgs),
    /// Search a collection for the nearest neighbours of a vector.
    Search(cli::search::SearchArgs),
    /// Embed texts or images with jina-embeddings-v4 and print the vectors as JSON lines.
    Embed(cli::embed::EmbedArgs),
    /// Load text files, JSON Lines and images into a collection, embedded by a running server or, with
    /// --model-source, in this process.
    Ingest(cli::ingest::IngestArgs),
    /// Create, list, restore or delete snapshots (backups) of collections.
    #[command(subcommand)]
    Snapshot(cli::snapshot::SnapshotCommand),
    /// Random writes, seals, vacuums and snapshots for the fault-injection tests.
    #[command(hide = true)]
    DebugWorkload(cli::workload::WorkloadArgs),
    /// Parity outputs and timings of the encoder for scripts/gpu-check.sh.
    #[command(hide = true)]
    DebugEncoder(cli::debug_encoder::DebugEncoderArgs),
}

fn main() {
    #[cfg(not(target_os = "linux"))]
    tune_allocator();
    // A `serve --config FILE` becomes flags first, so clap checks its values like any other.
    let args = match cli::config_file::expand(std::env::args_os().collect(), &Cli::command()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("quiver: {err:#}");
            std::process::exit(2);
        }
    };
    let cli = Cli::parse_from(args);
    cli::init_logging(&cli.global);
    let result = match cli.command {
        Command::Serve(args) => cli::serve::run(&cli.global, args),
        Command::Collection(cmd) => cli::collection::run(&cli.global, cmd),
        Command::Alias(cmd) => cli::alias::run(&cli.global, cmd),
        Command::Upsert(args) => cli::upsert::run(&cli.global, args),
        Command::Search(args) => cli::search::run(&cli.global, args),
        Command::Embed(args) => cli::embed::run(args),
        Command::Ingest(args) => cli::ingest::run(&cli.global, args),
        Command::Snapshot(cmd) => cli::snapshot::run(&cli.global, cmd),
        Command::DebugWorkload(args) => cli::workload::run(&cli.global, args),
        Command::DebugEncoder(args) => cli::debug_encoder::run(args),
    };
    if let Err(err) = result {
        eprintln!("quiver: {err:#}");
        std::process::exit(1);
    }
}
