//! How search and Query API bodies become engine searches.
//!
//! A query with prefetches runs bottom-up: each prefetch searches (itself restricted to its own
//! prefetches' hits), and the union of the hits becomes the `candidates` that the stage above scores
//! exactly. A dense prefetch under a multivector query is therefore "HNSW, then MaxSim rerank". As in
//! Qdrant, the top-level filter also restricts every prefetch.

use std::time::Instant;

use serde_json::Value;

use quiver_engine::filter::{Condition, Filter, OneOrMany};
use quiver_engine::point::{QueryVector, ScrollRequest};
use quiver_engine::{Collection, PointId, ScoredPoint, SearchRequest, WithPayload, WithVectors};

use super::error::{bad_request, ApiError};
use crate::api::common::{with_payload, with_vectors, VectorValue};
use crate::api::search::StageTiming;
use crate::api::search::{
    NamedVectorStruct, Prefetch, QueryRequestDto, SearchParams, SearchRequestDto,
};

/// Bounds a request may not exceed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest `limit + offset` of a search, query, prefetch or scroll page.
    pub max_limit: usize,
    /// Most points in one upsert, or searches in one batch.
    pub max_batch: usize,
    /// Largest snapshot upload or download, in bytes.
    pub max_snapshot_upload_bytes: u64,
    /// Whether and where recover may download a snapshot from a URL.
    pub snapshot_urls: super::snapshot_url::UrlPolicy,
}

impl Limits {
    /// Checks a page size (and offset) against the limit.
    pub fn check_limit(&self, limit: usize, offset: usize) -> Result<(), ApiError> {
        if limit == 0 {
            return Err(ApiError::Validation("limit must be at least 1".into()));
        }
        if limit.saturating_add(offset) > self.max_limit {
            return Err(ApiError::Validation(format!(
                "limit + offset must not exceed {} (the server's --max-limit)",
                self.max_limit
            )));
        }
        Ok(())
    }

    /// Checks a batch size against the limit.
    pub fn check_batch(&self, n: usize, what: &str) -> Result<(), ApiError> {
        if n > self.max_batch {
            return Err(ApiError::Validation(format!(
                "{n} {what} in one request; the server accepts at most {} (--max-batch)",
                self.max_batch
            )));
        }
        Ok(())
    }
}

/// The legacy `points/search`.
pub fn search(
    collection: &Collection,
    dto: SearchRequestDto,
    limits: &Limits,
) -> Result<Vec<ScoredPoint>, ApiError> {
    let offset = dto.offset.unwrap_or(0);
    limits.check_limit(dto.limit, offset)?;
    let (using, value) = match dto.vector {
        NamedVectorStruct::Default(v) => (String::new(), v),
        NamedVectorStruct::Named { name, vector } => (name, vector),
    };
    let query = vector_query(collection, &using, value)?;
    let params = dto.params.unwrap_or_default();
    let (ef, rescore) = quantization(collection, &using, &params, dto.limit + offset)?;
    let request = SearchRequest {
        using,
        query,
        filter: dto.filter,
        candidates: None,
        limit: dto.limit,
        offset,
        ef,
        exact: params.exact.unwrap_or(false),
        plaid: plaid_params(&params)?,
        rescore,
        score_threshold: dto.score_threshold,
        with_payload: with_payload(dto.with_payload, false),
        with_vectors: with_vectors(dto.with_vector, false),
    };
    Ok(collection.search(&request)?)
}

impl StageTiming {
    fn new(
        collection: &Collection,
        request: &SearchRequest,
        depth: usize,
    ) -> Result<Self, ApiError> {
        let config = collection.config();
        let params = config.vector(&request.using)?;
        let multi = params.multivector_config.is_some();
        let kind = match (multi, request.candidates.is_some(), request.exact) {
            (true, true, _) => "maxsim",
            (true, false, _) => "token_store",
            (false, true, _) => "rescore",
            (false, false, true) => "exact",
            (false, false, false) => "hnsw",
        };
        let dims = match config.index_dims(&request.using) {
            Some(d) if kind == "hnsw" && !request.rescore => d,
            _ => params.size,
        };
        Ok(StageTiming {
            using: request.using.clone(),
            depth,
            limit: request.limit + request.offset,
            candidates: request.candidates.as_ref().map(Vec::len),
            kind,
            dims,
            ms: 0.0,
        })
    }
}

/// Qdrant's `params.quantization` applied to a Matryoshka-prefix index: `rescore: false` returns the
/// prefix scores (a funnel's first stage), `oversampling` widens the candidate list that is rescored
/// with the full vectors to `limit × oversampling`; `ignore` is accepted. Returns the `ef` and
/// `rescore` the engine gets.
fn quantization(
    collection: &Collection,
    using: &str,
    params: &SearchParams,
    limit: usize,
) -> Result<(Option<usize>, bool), ApiError> {
    let mut ef = params.hnsw_ef;
    let mut rescore = true;
    let Some(q) = params.quantization.as_ref().filter(|q| !q.is_null()) else {
        return Ok((ef, rescore));
    };
    let Value::Object(map) = q else {
        return Err(bad_request(
            "params.quantization must be an object: {\"rescore\": bool, \"oversampling\": number}",
        ));
    };
    for (key, value) in map {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("ignore", Value::Bool(_)) => {}
            ("rescore", Value::Bool(b)) => rescore = *b,
            ("oversampling", Value::Number(n)) => {
                let factor = n.as_f64().unwrap_or(0.0);
                if !(1.0..=100.0).contains(&factor) {
                    return Err(bad_request(
                        "params.quantization.oversampling must be between 1 and 100",
                    ));
                }
                let stored = collection.config().hnsw_for(using).ef;
                let wanted = (limit as f64 * factor).ceil() as usize;
                ef = Some(ef.unwrap_or(stored).max(wanted));
            }
            (key, _) => {
                return Err(bad_request(format!(
                    "params.quantization.{key}: expected ignore (bool), rescore (bool) or \
                     oversampling (number)"
                )))
            }
        }
    }
    Ok((ef, rescore))
}

/// The Query API. Each stage's timing is appended to `timings`.
pub fn query(
    collection: &Collection,
    dto: QueryRequestDto,
    limits: &Limits,
    timings: &mut Vec<StageTiming>,
) -> Result<Vec<ScoredPoint>, ApiError> {
    reject_lookup_from(&dto.lookup_from)?;
    let limit = dto.limit.unwrap_or(10);
    let offset = dto.offset.unwrap_or(0);
    limits.check_limit(limit, offset)?;
    let with_payload = with_payload(dto.with_payload, false);
    let with_vectors = with_vectors(dto.with_vector, false);
    let using = dto.using.unwrap_or_default();
    let prefetches = dto.prefetch.as_ref().map(|p| p.as_slice()).unwrap_or(&[]);

    let query = match dto.query {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_query(collection, &using, value)?),
    };
    let Some(query) = query else {
        if !prefetches.is_empty() {
            return Err(bad_request(
                "a query is needed to combine prefetches (fusion is not supported)",
            ));
        }
        return points_in_id_order(
            collection,
            dto.filter,
            limit,
            offset,
            with_payload,
            with_vectors,
        );
    };
    let candidates = prefetch_candidates(
        collection,
        prefetches,
        dto.filter.as_ref(),
        limits,
        1,
        timings,
    )?;
    if candidates.as_ref().is_some_and(|c| c.is_empty()) {
        return Ok(Vec::new());
    }
    let params = dto.params.unwrap_or_default();
    let started = Instant::now();
    let (ef, rescore) = quantization(collection, &using, &params, limit + offset)?;
    let request = SearchRequest {
        using,
        query,
        filter: dto.filter,
        candidates,
        limit,
        offset,
        ef,
        exact: params.exact.unwrap_or(false),
        plaid: plaid_params(&params)?,
        rescore,
        score_threshold: dto.score_threshold,
        with_payload,
        with_vectors,
    };
    let stage = StageTiming::new(collection, &request, 0)?;
    let hits = collection.search(&request)?;
    timings.push(StageTiming {
        ms: started.elapsed().as_secs_f64() * 1e3,
        ..stage
    });
    Ok(hits)
}

/// Deepest prefetch nesting accepted.
const MAX_PREFETCH_DEPTH: usize = 8;

/// The union of the prefetches' hits, or `None` when there are no prefetches.
fn prefetch_candidates(
    collection: &Collection,
    prefetches: &[Prefetch],
    inherited: Option<&Filter>,
    limits: &Limits,
    depth: usize,
    timings: &mut Vec<StageTiming>,
) -> Result<Option<Vec<PointId>>, ApiError> {
    if prefetches.is_empty() {
        return Ok(None);
    }
    if depth > MAX_PREFETCH_DEPTH {
        return Err(bad_request(format!(
            "prefetch is nested deeper than {MAX_PREFETCH_DEPTH} levels"
        )));
    }
    let mut union = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for prefetch in prefetches {
        for id in run_prefetch(collection, prefetch, inherited, limits, depth, timings)? {
            if seen.insert(id) {
                union.push(id);
            }
        }
    }
    Ok(Some(union))
}

fn run_prefetch(
    collection: &Collection,
    prefetch: &Prefetch,
    inherited: Option<&Filter>,
    limits: &Limits,
    depth: usize,
    timings: &mut Vec<StageTiming>,
) -> Result<Vec<PointId>, ApiError> {
    reject_lookup_from(&prefetch.lookup_from)?;
    let limit = prefetch.limit.unwrap_or(10);
    limits.check_limit(limit, 0)?;
    let filter = and(inherited, prefetch.filter.as_ref());
    let using = prefetch.using.clone().unwrap_or_default();
    let query = match &prefetch.query {
        None | Some(Value::Null) => {
            return Err(bad_request("every prefetch needs a `query`"));
        }
        Some(value) => parse_query(collection, &using, value.clone())?,
    };
    let nested = prefetch
        .prefetch
        .as_ref()
        .map(|p| p.as_slice())
        .unwrap_or(&[]);
    let candidates = prefetch_candidates(
        collection,
        nested,
        filter.as_ref(),
        limits,
        depth + 1,
        timings,
    )?;
    if candidates.as_ref().is_some_and(|c| c.is_empty()) {
        return Ok(Vec::new());
    }
    let params: SearchParams = prefetch.params.clone().unwrap_or_default();
    let started = Instant::now();
    let (ef, rescore) = quantization(collection, &using, &params, limit)?;
    let request = SearchRequest {
        using,
        query,
        filter,
        candidates,
        limit,
        offset: 0,
        ef,
        exact: params.exact.unwrap_or(false),
        plaid: plaid_params(&params)?,
        rescore,
        score_threshold: prefetch.score_threshold,
        with_payload: WithPayload::None,
        with_vectors: WithVectors::None,
    };
    let stage = StageTiming::new(collection, &request, depth)?;
    let ids = collection
        .search(&request)?
        .into_iter()
        .map(|hit| hit.id)
        .collect();
    timings.push(StageTiming {
        ms: started.elapsed().as_secs_f64() * 1e3,
        ..stage
    });
    Ok(ids)
}

/// Both filters (either may be absent).
fn and(a: Option<&Filter>, b: Option<&Filter>) -> Option<Filter> {
    match (a, b) {
        (None, None) => None,
        (Some(f), None) | (None, Some(f)) => Some(f.clone()),
        (Some(a), Some(b)) => Some(Filter {
            must: Some(OneOrMany::Many(vec![
                Condition::Filter(a.clone()),
                Condition::Filter(b.clone()),
            ])),
            should: None,
            must_not: None,
        }),
    }
}

fn reject_lookup_from(value: &Option<Value>) -> Result<(), ApiError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(bad_request("`lookup_from` is not supported")),
    }
}

/// A `query` value: a vector, a multivector, a point id, or `{"nearest": one of those}`.
fn parse_query(
    collection: &Collection,
    using: &str,
    value: Value,
) -> Result<QueryVector, ApiError> {
    match value {
        Value::Object(mut map) => {
            map.retain(|_, v| !v.is_null());
            if map.contains_key("nearest") && map.contains_key("mmr") {
                return Err(bad_request("`mmr` (diversity reranking) is not supported"));
            }
            if map.len() == 1 {
                if let Some(inner) = map.remove("nearest") {
                    return match inner {
                        Value::Object(_) => Err(bad_request(
                            "`nearest` takes a vector, a multivector or a point id",
                        )),
                        other => parse_query(collection, using, other),
                    };
                }
            }
            let kind = map.keys().next().cloned().unwrap_or_default();
            Err(bad_request(match kind.as_str() {
                "fusion" | "rrf" | "recommend" | "discover" | "context" | "order_by" | "sample"
                | "formula" | "mmr" => format!(
                    "`{kind}` queries are not supported: use a vector, a multivector, a point id or \
                     {{\"nearest\": …}}"
                ),
                "indices" | "values" => "sparse vectors are not supported".to_string(),
                "text" | "image" | "object" => {
                    "inference objects (text / image) are not supported by this server".to_string()
                }
                _ => format!("unknown query object with key `{kind}`"),
            }))
        }
        Value::Array(_) => {
            let vector: VectorValue = serde_json::from_value(value).map_err(|_| {
                bad_request("`query` must be a vector of numbers or a list of vectors")
            })?;
            vector_query(collection, using, vector)
        }
        Value::Number(_) | Value::String(_) => {
            let id: PointId = serde_json::from_value(value)
                .map_err(|_| bad_request("a point id is an unsigned integer or a UUID"))?;
            point_query(collection, using, id)
        }
        Value::Null | Value::Bool(_) => Err(bad_request(
            "`query` must be a vector, a multivector, a point id or {\"nearest\": …}",
        )),
    }
}

/// A vector as the query of the named vector `using`: a single vector against a multivector field is
/// a one-row matrix, as in Qdrant.
fn vector_query(
    collection: &Collection,
    using: &str,
    value: VectorValue,
) -> Result<QueryVector, ApiError> {
    value.check_finite(|| "query".to_string())?;
    let params = collection.config().vector(using)?;
    let multi = params.multivector_config.is_some();
    Ok(match (value, multi) {
        (VectorValue::Dense(v), false) => QueryVector::Dense(v),
        (VectorValue::Dense(v), true) => QueryVector::Multi(vec![v]),
        (VectorValue::Multi(m), true) => QueryVector::Multi(m),
        (VectorValue::Inference(_), _) => {
            unreachable!("check_finite refuses inference objects")
        }
        (VectorValue::Multi(_), false) => {
            return Err(bad_request(format!(
                "vector `{using}` is a dense vector: a multivector query needs a vector with \
                 multivector_config"
            )))
        }
    })
}

/// Search with the stored vector of a point.
fn point_query(collection: &Collection, using: &str, id: PointId) -> Result<QueryVector, ApiError> {
    collection.config().vector(using)?;
    let records = collection.retrieve(
        &[id],
        &WithPayload::None,
        &WithVectors::Names(vec![using.to_string()]),
    )?;
    let vector = records
        .into_iter()
        .next()
        .and_then(|r| r.vectors)
        .and_then(|mut v| v.remove(using))
        .ok_or_else(|| {
            ApiError::NotFound(format!("no point with id {id} (and vector `{using}`)"))
        })?;
    Ok(match vector {
        quiver_engine::Vector::Dense(v) => QueryVector::Dense(v),
        quiver_engine::Vector::Multi(m) => QueryVector::Multi(m),
    })
}

/// A query without `query`: points in id order, score 0.
fn points_in_id_order(
    collection: &Collection,
    filter: Option<Filter>,
    limit: usize,
    offset: usize,
    with_payload: WithPayload,
    with_vectors: WithVectors,
) -> Result<Vec<ScoredPoint>, ApiError> {
    let page = collection.scroll(&ScrollRequest {
        filter,
        offset: None,
        limit: limit + offset,
        with_payload,
        with_vectors,
    })?;
    Ok(page
        .points
        .into_iter()
        .skip(offset)
        .map(|r| ScoredPoint {
            id: r.id,
            score: 0.0,
            payload: r.payload,
            vectors: r.vectors,
        })
        .collect())
}

/// The token-store overrides of a request, checked up front so that bad values are a 400 even on
/// segments that would not have used them.
fn plaid_params(
    params: &SearchParams,
) -> Result<Option<quiver_engine::plaid::PlaidSearchParams>, ApiError> {
    if let Some(p) = &params.plaid {
        p.resolve(1).map_err(ApiError::Engine)?;
    }
    Ok(params.plaid.clone())
}
