//! The default funnel: what a plain query (a document, no `using`, no prefetch) runs on a collection
//! whose vectors are bound to a model. It becomes a prefetch chain, so it runs, is filtered and is
//! timed exactly like one a client writes:
//!
//! 1. HNSW on the bound dense vector's Matryoshka prefix: `hnsw_limit` candidates, prefix scores
//!    (`params.quantization.rescore = false`);
//! 2. the full dense vectors rescore them: the best `rescore_limit` go on (or the final `limit` when
//!    the collection has no bound multivector);
//! 3. MaxSim over the bound multivector's token vectors orders the final `limit`.
//!
//! Without `dims` the first two stages are one HNSW search over the full vector (its candidate list
//! widened to `hnsw_limit`); without a bound dense vector, the multivector is searched alone.
//!
//! The rewrite runs before the documents are embedded: it decides which vector each copy of the
//! document fills, so it works on a request whose inputs are still the caller's.

use crate::config::CollectionConfig;
use crate::query::{FunnelDepths, Prefetch, QuantizationParams, Query, QueryRequest, SearchParams};
use crate::{Error, Result};

use super::planner::FUNNEL_NOT_PLAIN;

/// Default `hnsw_limit`: at least this many candidates, and 10 per requested hit.
const HNSW_LIMIT_MIN: usize = 100;
const HNSW_LIMIT_PER_HIT: usize = 10;
/// Default `rescore_limit`: at least this many candidates for MaxSim, and 3 per requested hit.
const RESCORE_LIMIT_MIN: usize = 30;
const RESCORE_LIMIT_PER_HIT: usize = 3;

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
}

fn stage<I: Clone>(
    query: &Query<I>,
    using: &str,
    limit: usize,
    params: SearchParams,
) -> Prefetch<I> {
    Prefetch {
        prefetch: Vec::new(),
        query: Some(query.clone()),
        using: Some(using.to_string()),
        filter: None,
        params,
        score_threshold: None,
        limit,
    }
}

/// Rewrites a plain query on a collection with bound vectors into the funnel's prefetch chain and
/// consumes its `funnel`; `is_document` says which inputs are documents. Any other request is left as
/// it is, and a `funnel` on one is an error. `max_limit` caps the default depths.
pub fn apply_default_funnel<I: Clone>(
    config: &CollectionConfig,
    request: &mut QueryRequest<I>,
    max_limit: usize,
    is_document: impl Fn(&I) -> bool,
) -> Result<()> {
    let document = matches!(&request.query, Some(Query::Nearest(input)) if is_document(input));
    let plain = request.using.is_none()
        && request.prefetch.is_empty()
        && !config.embedding.is_empty()
        && !config.vectors.contains_key("")
        && document;
    let depths = request.funnel.take();
    if !plain {
        return match depths {
            Some(_) => Err(invalid(FUNNEL_NOT_PLAIN)),
            None => Ok(()),
        };
    }
    let bound = |multi: bool| -> Result<Option<&str>> {
        let names: Vec<&str> = config
            .embedding
            .keys()
            .filter(|name| {
                config
                    .vectors
                    .get(*name)
                    .is_some_and(|p| p.multivector_config.is_some() == multi)
            })
            .map(String::as_str)
            .collect();
        match names.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            many => Err(invalid(format!(
                "the collection binds several {} vectors ({}): name the one to search with `using`",
                if multi { "multi" } else { "dense" },
                many.join(", ")
            ))),
        }
    };
    let (dense, multi) = (bound(false)?, bound(true)?);
    let wanted = request.limit_with_offset();
    let depths = depths.unwrap_or_default();
    let hnsw_limit = depths.hnsw_limit.unwrap_or_else(|| {
        (wanted * HNSW_LIMIT_PER_HIT)
            .max(HNSW_LIMIT_MIN)
            .min(max_limit)
    });
    let rescore_limit = depths.rescore_limit.unwrap_or_else(|| {
        (wanted * RESCORE_LIMIT_PER_HIT)
            .max(RESCORE_LIMIT_MIN)
            .min(hnsw_limit)
    });
    check_depths(&depths, wanted, hnsw_limit, rescore_limit)?;
    let query = request.query.clone().expect("a plain query has a document");
    let Some(dense) = dense else {
        // Only token vectors are bound: the token store answers alone.
        request.using = multi.map(str::to_string);
        return Ok(());
    };
    let prefix = config.index_dims(dense).is_some();
    let prefix_stage = || {
        let params = SearchParams {
            quantization: Some(QuantizationParams {
                rescore: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        stage(&query, dense, hnsw_limit, params)
    };
    let wide_graph = || SearchParams {
        hnsw_ef: Some(hnsw_limit),
        ..Default::default()
    };
    match multi {
        Some(multi) => {
            let dense_stage = if prefix {
                Prefetch {
                    prefetch: vec![prefix_stage()],
                    ..stage(&query, dense, rescore_limit, SearchParams::default())
                }
            } else {
                stage(&query, dense, rescore_limit, wide_graph())
            };
            request.prefetch = vec![dense_stage];
            request.using = Some(multi.to_string());
        }
        None => {
            if prefix {
                request.prefetch = vec![prefix_stage()];
            } else {
                let ef = request.params.hnsw_ef.unwrap_or(0).max(hnsw_limit);
                request.params.hnsw_ef = Some(ef);
            }
            request.using = Some(dense.to_string());
        }
    }
    Ok(())
}

/// Each stage must pass on at least what the next one keeps.
fn check_depths(
    depths: &FunnelDepths,
    wanted: usize,
    hnsw_limit: usize,
    rescore_limit: usize,
) -> Result<()> {
    if depths.hnsw_limit.is_some() && hnsw_limit < wanted {
        return Err(invalid(format!(
            "funnel.hnsw_limit ({hnsw_limit}) must be at least limit + offset ({wanted})"
        )));
    }
    if depths.rescore_limit.is_some() && rescore_limit < wanted {
        return Err(invalid(format!(
            "funnel.rescore_limit ({rescore_limit}) must be at least limit + offset ({wanted})"
        )));
    }
    if rescore_limit > hnsw_limit {
        return Err(invalid(format!(
            "funnel.rescore_limit ({rescore_limit}) must not exceed funnel.hnsw_limit ({hnsw_limit})"
        )));
    }
    Ok(())
}
