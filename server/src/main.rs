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
