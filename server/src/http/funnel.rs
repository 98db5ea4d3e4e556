//! The default funnel: what a plain query (`{"query": {"text": …}}`, no `using`, no prefetch) runs on
//! a collection whose vectors are bound to a model. It becomes a prefetch chain, so it runs, is
//! filtered and is timed exactly like one a client writes:
//!
//! 1. HNSW on the bound dense vector's Matryoshka prefix: `hnsw_limit` candidates, prefix scores
//!    (`params.quantization.rescore = false`);
//! 2. the full dense vectors rescore them: the best `rescore_limit` go on (or the final `limit` when
//!    the collection has no bound multivector);
//! 3. MaxSim over the bound multivector's token vectors orders the final `limit`.
//!
//! Without `dims` the first two stages are one HNSW search over the full vector (its candidate list
//! widened to `hnsw_limit`); without a bound dense vector, the multivector is searched alone.

use serde_json::{json, Value};

use quiver_engine::CollectionConfig;

use super::error::{bad_request, ApiError};
use crate::api::search::{FunnelDto, Prefetch, PrefetchList, QueryRequestDto, SearchParams};

/// Default `hnsw_limit`: at least this many candidates, and 10 per requested hit.
const HNSW_LIMIT_MIN: usize = 100;
const HNSW_LIMIT_PER_HIT: usize = 10;
/// Default `rescore_limit`: at least this many candidates for MaxSim, and 3 per requested hit.
const RESCORE_LIMIT_MIN: usize = 30;
const RESCORE_LIMIT_PER_HIT: usize = 3;

/// Whether `query` is a bare inference object (or one under `nearest`).
fn is_document(query: Option<&Value>) -> bool {
    let Some(Value::Object(map)) = query else {
        return false;
    };
    let inner = match map.get("nearest") {
        Some(Value::Object(inner)) => inner,
        _ => map,
    };
    inner.contains_key("text") || inner.contains_key("image")
}

fn stage(query: &Value, using: &str, limit: usize, params: Option<SearchParams>) -> Prefetch {
    Prefetch {
        prefetch: None,
        query: Some(query.clone()),
        using: Some(using.to_string()),
        filter: None,
        params,
        score_threshold: None,
        limit: Some(limit),
        lookup_from: None,
    }
}

fn nest(outer: Prefetch, inner: Option<Prefetch>) -> Prefetch {
    Prefetch {
        prefetch: inner.map(|p| PrefetchList::One(Box::new(p))),
        ..outer
    }
}

/// Rewrites a plain query on a collection with bound vectors into the funnel's prefetch chain. Any
/// other query is left as it is; `funnel` on one is a 400.
pub fn apply_default_funnel(
    config: &CollectionConfig,
    dto: &mut QueryRequestDto,
    max_limit: usize,
) -> Result<(), ApiError> {
    let plain = dto.using.is_none()
        && dto.prefetch.is_none()
        && !config.embedding.is_empty()
        && !config.vectors.contains_key("")
        && is_document(dto.query.as_ref());
    if !plain {
        if dto.funnel.is_some() {
            return Err(bad_request(
                "`funnel` applies to a plain query (a document, no `using`, no `prefetch`) on a \
                 collection with bound vectors (`embedding` at creation)",
            ));
        }
        return Ok(());
    }
    let bound = |multi: bool| -> Result<Option<&str>, ApiError> {
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
            many => Err(bad_request(format!(
                "the collection binds several {} vectors ({}): name the one to search with `using`",
                if multi { "multi" } else { "dense" },
                many.join(", ")
            ))),
        }
    };
    let (dense, multi) = (bound(false)?, bound(true)?);
    let wanted = dto.limit.unwrap_or(10) + dto.offset.unwrap_or(0);
    let funnel = dto.funnel.take().unwrap_or_default();
    let hnsw_limit = funnel.hnsw_limit.unwrap_or_else(|| {
        (wanted * HNSW_LIMIT_PER_HIT)
            .max(HNSW_LIMIT_MIN)
            .min(max_limit)
    });
    let rescore_limit = funnel.rescore_limit.unwrap_or_else(|| {
        (wanted * RESCORE_LIMIT_PER_HIT)
            .max(RESCORE_LIMIT_MIN)
            .min(hnsw_limit)
    });
    check_depths(&funnel, wanted, hnsw_limit, rescore_limit)?;
    let query = dto.query.clone().expect("a plain query has a document");
    let Some(dense) = dense else {
        // Only token vectors are bound: the token store answers alone.
        dto.using = multi.map(str::to_string);
        return Ok(());
    };
    let prefix = config.index_dims(dense).is_some();
    let prefix_stage = || {
        stage(
            &query,
            dense,
            hnsw_limit,
            Some(SearchParams {
                quantization: Some(json!({"rescore": false})),
                ..Default::default()
            }),
        )
    };
    let wide_graph = || SearchParams {
        hnsw_ef: Some(hnsw_limit),
        ..Default::default()
    };
    match multi {
        Some(multi) => {
            let dense_stage = if prefix {
                nest(
                    stage(&query, dense, rescore_limit, None),
                    Some(prefix_stage()),
                )
            } else {
                stage(&query, dense, rescore_limit, Some(wide_graph()))
            };
            dto.prefetch = Some(PrefetchList::One(Box::new(dense_stage)));
            dto.using = Some(multi.to_string());
        }
        None => {
            if prefix {
                dto.prefetch = Some(PrefetchList::One(Box::new(prefix_stage())));
            } else {
                let params = dto.params.get_or_insert_with(Default::default);
                params.hnsw_ef = Some(params.hnsw_ef.unwrap_or(0).max(hnsw_limit));
            }
            dto.using = Some(dense.to_string());
        }
    }
    Ok(())
}

/// Each stage must pass on at least what the next one keeps.
fn check_depths(
    funnel: &FunnelDto,
    wanted: usize,
    hnsw_limit: usize,
    rescore_limit: usize,
) -> Result<(), ApiError> {
    if funnel.hnsw_limit.is_some() && hnsw_limit < wanted {
        return Err(bad_request(format!(
            "funnel.hnsw_limit ({hnsw_limit}) must be at least limit + offset ({wanted})"
        )));
    }
    if funnel.rescore_limit.is_some() && rescore_limit < wanted {
        return Err(bad_request(format!(
            "funnel.rescore_limit ({rescore_limit}) must be at least limit + offset ({wanted})"
        )));
    }
    if rescore_limit > hnsw_limit {
        return Err(bad_request(format!(
            "funnel.rescore_limit ({rescore_limit}) must not exceed funnel.hnsw_limit ({hnsw_limit})"
        )));
    }
    Ok(())
}
