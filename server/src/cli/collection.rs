//! `quiver collection create|list|info|delete`: manage collections without a running server.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use quiver_engine::config::MultiVectorConfig;
use quiver_engine::{CollectionConfig, Distance, HnswConfig, VectorParams};

use crate::api::collections::{kib_to_points, DEFAULT_FULL_SCAN_THRESHOLD_KIB};

use super::{open_collections, GlobalArgs};

/// Collection subcommands.
#[derive(Subcommand, Debug)]
pub enum CollectionCommand {
    /// Create a collection with one unnamed vector (or any config from a JSON file).
    Create(CreateArgs),
    /// List collections, one name per line (and those that failed to open, on stderr).
    List,
    /// Print a collection's config and counters as JSON.
    Info {
        /// Collection name.
        name: String,
    },
    /// Delete a collection and all its data.
    Delete {
        /// Collection name.
        name: String,
    },
}

/// Vector comparison, as named on the command line.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DistanceArg {
    /// Cosine similarity (vectors are normalised on insert).
    Cosine,
    /// Dot product.
    Dot,
    /// Euclidean distance.
    Euclid,
}

impl From<DistanceArg> for Distance {
    fn from(d: DistanceArg) -> Self {
        match d {
            DistanceArg::Cosine => Distance::Cosine,
            DistanceArg::Dot => Distance::Dot,
            DistanceArg::Euclid => Distance::Euclid,
        }
    }
}

/// Arguments of `collection create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Collection name (letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// Dimension of the unnamed dense vector.
    #[arg(long, required_unless_present = "config")]
    pub size: Option<usize>,
    /// How vectors are compared.
    #[arg(long, value_enum, default_value = "cosine")]
    pub distance: DistanceArg,
    /// HNSW neighbours per node.
    #[arg(long)]
    pub m: Option<usize>,
    /// HNSW build-time candidate list size.
    #[arg(long)]
    pub ef_construct: Option<usize>,
    /// Default search-time candidate list size (stored with the collection).
    #[arg(long)]
    pub ef: Option<usize>,
    /// Points per segment before it is sealed and indexed.
    #[arg(long)]
    pub segment_max_points: Option<usize>,
    /// Add a named multi-vector (per-token vectors, MaxSim), as NAME:SIZE; repeatable.
    #[arg(long, value_name = "NAME:SIZE")]
    pub multivector: Vec<String>,
    /// Read the whole collection config from this JSON file instead (the engine's `CollectionConfig`).
    #[arg(long, conflicts_with_all = ["size", "multivector"])]
    pub config: Option<PathBuf>,
}

/// Runs a collection subcommand.
pub fn run(global: &GlobalArgs, command: CollectionCommand) -> Result<()> {
    let collections = open_collections(global)?;
    match command {
        CollectionCommand::Create(args) => {
            let name = args.name.clone();
            let config = build_config(args)?;
            collections.create(&name, config)?;
            println!("created collection {name:?}");
        }
        CollectionCommand::List => {
            for name in collections.list() {
                println!("{name}");
            }
            for (name, reason) in collections.failed() {
                eprintln!("quiver: collection {name:?} failed to open: {reason}");
            }
        }
        CollectionCommand::Info { name } => {
            let collection = collections.get(&name)?;
            let info = serde_json::json!({
                "name": name,
                "config": &*collection.config(),
                "info": collection.info(),
            });
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        CollectionCommand::Delete { name } => {
            if !collections.delete(&name)? {
                bail!("collection {name:?} not found");
            }
            println!("deleted collection {name:?}");
        }
    }
    collections.close()?;
    Ok(())
}

fn build_config(args: CreateArgs) -> Result<CollectionConfig> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read collection config", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid collection config", path.display()));
    }
    let size = args.size.context("--size is required")?;
    let mut config = CollectionConfig::single(size, args.distance.into());
    // The same default as a collection created over HTTP: Qdrant's 10,000 KiB of vectors.
    let defaults = HnswConfig {
        full_scan_threshold: kib_to_points(DEFAULT_FULL_SCAN_THRESHOLD_KIB, size),
        full_scan_threshold_kib: Some(DEFAULT_FULL_SCAN_THRESHOLD_KIB),
        ..HnswConfig::default()
    };
    config.hnsw_config = HnswConfig {
        m: args.m.unwrap_or(defaults.m),
        ef_construct: args.ef_construct.unwrap_or(defaults.ef_construct),
        ef: args.ef.unwrap_or(defaults.ef),
        ..defaults
    };
    if let Some(points) = args.segment_max_points {
        config.optimizer_config.segment_max_points = points;
    }
    let mut extra = BTreeMap::new();
    for spec in &args.multivector {
        let (name, size) = spec
            .split_once(':')
            .with_context(|| format!("--multivector {spec:?}: expected NAME:SIZE"))?;
        let size: usize = size
            .parse()
            .with_context(|| format!("--multivector {spec:?}: SIZE must be a positive integer"))?;
        extra.insert(
            name.to_string(),
            VectorParams {
                size,
                distance: Distance::Cosine,
                hnsw_config: None,
                multivector_config: Some(MultiVectorConfig::max_sim()),
                on_disk: None,
                quantization_config: None,
            },
        );
    }
    config.vectors.extend(extra);
    Ok(config)
}
