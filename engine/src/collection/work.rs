//! How much work a query will do, estimated from the segments before it runs, so a caller can run
//! short queries where it stands and hand long ones to other threads.
//!
//! The unit is one vector component scored (a row of dimension `d` costs `d`). A segment searched
//! through its graph costs at most `max(ef, limit × oversampling)` expanded nodes, each scoring up
//! to `2·m` neighbours (layer 0's degree), capped at the segment's rows; a segment scanned (no graph
//! for the vector, or `exact`) costs all its rows. The estimate is `None` wherever the planner's
//! choice or the cost depends on more than that: a filter (the filter planner may scan, sample
//! payloads or walk a graph that rejects most nodes), prefetches, any query but `nearest`, sparse
//! and multivector fields, and the default funnel.

use super::segment::View;
use super::state::SegmentSet;
use crate::config::CollectionConfig;
use crate::query::{Query, QueryInput, QueryRequest};

/// Estimated vector components `request` scores over `set`, or `None` when it cannot be bounded
/// without running it (see the module docs).
pub(crate) fn query_work(
    config: &CollectionConfig,
    set: &SegmentSet,
    request: &QueryRequest,
) -> Option<u64> {
    if request.funnel.is_some() || !request.prefetch.is_empty() || request.filter.is_some() {
        return None;
    }
    // A point id resolves to one stored row: a lookup, then the same search as a vector.
    match &request.query {
        Some(Query::Nearest(QueryInput::Dense(_) | QueryInput::Point(_))) => {}
        _ => return None,
    }
    let using = request.using.as_deref().unwrap_or("");
    if config.sparse(using).is_some() {
        return None;
    }
    let params = config.vector(using).ok()?;
    if params.multivector_config.is_some() {
        return None;
    }
    let dim = params.size as u64;
    let hnsw = config.hnsw_for(using);
    let k = request.limit_with_offset();
    let oversampling = request
        .params
        .quantization
        .and_then(|q| q.oversampling)
        .unwrap_or(1.0)
        .max(1.0);
    let expanded = request
        .params
        .hnsw_ef
        .unwrap_or(hnsw.ef)
        .max(k)
        .max((k as f64 * oversampling).ceil() as usize) as u64;
    let degree = (2 * hnsw.m).max(1) as u64;
    let mut rows = 0u64;
    for view in set.views() {
        let Some(dense) = view.dense(using) else {
            continue;
        };
        let stored = dense.slab.len() as u64;
        rows += match graph_walk(&view, using, request.params.exact) {
            true => stored.min(expanded.saturating_mul(degree)),
            false => stored,
        };
    }
    // The hits' rows are read once more when they are returned with their vectors.
    let returned = rows.min(k as u64);
    Some(rows.saturating_add(returned).saturating_mul(dim))
}

/// Whether the search walks this segment's graph rather than scanning it.
fn graph_walk(view: &View<'_>, using: &str, exact: bool) -> bool {
    !exact && view.graph(using).is_some()
}
