//! `quiver search`: nearest neighbours of a vector, printed as JSON lines.

use anyhow::{Context, Result};
use clap::Args;
use quiver_engine::{Filter, SearchRequest, WithPayload};

use super::{open_collections, GlobalArgs};

/// Arguments of `search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Collection to search.
    #[arg(long, short = 'c')]
    pub collection: String,
    /// The query vector as a JSON array, e.g. `[0.1, 0.2, 0.3]`.
    #[arg(long)]
    pub vector: String,
    /// Named vector to search (default: the unnamed one).
    #[arg(long, default_value = "")]
    pub using: String,
    /// Number of hits.
    #[arg(short = 'k', long, default_value_t = 10)]
    pub limit: usize,
    /// Payload filter in Qdrant's JSON form, e.g. `{"must":[{"key":"city","match":{"value":"Oslo"}}]}`.
    #[arg(long)]
    pub filter: Option<String>,
    /// HNSW candidate list size (default: the collection's stored `ef`).
    #[arg(long)]
    pub ef: Option<usize>,
    /// Scan exactly instead of walking the graph.
    #[arg(long)]
    pub exact: bool,
    /// Print each hit's payload too.
    #[arg(long)]
    pub with_payload: bool,
}

/// Runs `search`.
pub fn run(global: &GlobalArgs, args: SearchArgs) -> Result<()> {
    let vector: Vec<f32> = serde_json::from_str(&args.vector)
        .context("--vector must be a JSON array of numbers, e.g. [0.1, 0.2]")?;
    let filter: Option<Filter> = args
        .filter
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--filter is not a valid filter (Qdrant's JSON form)")?;
    let collections = open_collections(global)?;
    let collection = collections.get(&args.collection)?;
    let mut request = SearchRequest::dense(vector, args.limit);
    request.using = args.using;
    request.filter = filter;
    request.ef = args.ef;
    request.exact = args.exact;
    if args.with_payload {
        request.with_payload = WithPayload::All;
    }
    for hit in collection.search(&request)? {
        let mut line = serde_json::json!({"id": hit.id, "score": hit.score});
        if let Some(payload) = hit.payload {
            line["payload"] = serde_json::Value::Object(payload);
        }
        println!("{line}");
    }
    Ok(())
}
