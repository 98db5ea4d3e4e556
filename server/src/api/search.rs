//! Bodies of the search routes: the legacy `points/search` (and its batch) and the Query API
//! `points/query` with nested prefetch.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::filter::Filter;
use quiver_engine::query::{
    self, FunnelDepths, Fusion, QuantizationParams, Query, QueryInput, QueryRequest,
    RecommendStrategy, StageStats, DEFAULT_RRF_K,
};
use quiver_engine::{CollectionConfig, PointId};

use super::common::{
    with_payload, with_vectors, FilterDoc, InferenceObject, ScoredPointOut, SparseVectorDto,
    VectorValue, WithPayloadInterface, WithVector,
};
use super::error::{invalid, Error};
use crate::inference::Input;

/// Search-time parameters.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
// Some fields are parsed only so that Qdrant clients can send them.
#[allow(dead_code)]
pub struct SearchParams {
    /// Candidate-list size of the graph walk (default: the collection's stored `ef`).
    pub hnsw_ef: Option<usize>,
    /// Scan exactly instead of walking the graph.
    pub exact: Option<bool>,
    /// For a quantized vector (its graph walk scores codes) or one bound with Matryoshka `dims` (its
    /// graph indexes the prefix): `rescore: false` returns the codes' or prefix's scores,
    /// `oversampling` rescores `limit × oversampling` graph candidates with the original vectors,
    /// `ignore: true` walks a quantized vector's graph on the original vectors. No effect on other
    /// vectors.
    #[schema(value_type = Option<Object>)]
    pub quantization: Option<Value>,
    /// Ignored.
    pub indexed_only: Option<bool>,
    /// Quiver's extension for multivector searches served by the token store (PLAID): `ncells`
    /// (centroids probed per query token), `centroid_score_threshold` (alias `t_cs`), `ndocs`,
    /// `n_full_scores`. Unset fields take PLAID's defaults for the requested `limit`.
    #[schema(value_type = Option<Object>)]
    pub plaid: Option<quiver_engine::plaid::PlaidSearchParams>,
}

/// The legacy search's `vector`: a bare vector (unnamed) or `{"name": …, "vector": …}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum NamedVectorStruct {
    /// The unnamed vector.
    Default(VectorValue),
    /// A named vector.
    Named {
        /// Vector name.
        name: String,
        /// The query vector.
        vector: VectorValue,
    },
}

/// Body of `POST /collections/{name}/points/search`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct SearchRequestDto {
    /// The query vector.
    pub vector: NamedVectorStruct,
    /// Only matching points.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Search-time parameters.
    pub params: Option<SearchParams>,
    /// Hits to return.
    pub limit: usize,
    /// Hits to skip first.
    pub offset: Option<usize>,
    /// Payload to return (default false).
    pub with_payload: Option<WithPayloadInterface>,
    /// Vectors to return (default false).
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// Drop hits worse than this.
    pub score_threshold: Option<f32>,
}

/// Body of `POST /collections/{name}/points/search/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchBatch {
    /// The searches, answered in order.
    pub searches: Vec<SearchRequestDto>,
}

/// Body of `POST /collections/{name}/points/query`.
///
/// `query` is a vector (`[…]`), a multivector (`[[…], …]`), a point id (search with that point's
/// vector), or `{"nearest": <one of those>}`. With `prefetch`, the prefetches' hits are the candidates
/// the query rescores exactly: a dense prefetch followed by a multivector query is a MaxSim rerank.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct QueryRequestDto {
    /// One prefetch or a list; their hits (union) are the candidates of this query.
    pub prefetch: Option<PrefetchList>,
    /// The query; absent means "points in id order" (score 0).
    #[schema(value_type = Option<QueryInterfaceDoc>)]
    pub query: Option<Value>,
    /// The named vector to search (default: the unnamed one).
    pub using: Option<String>,
    /// Only matching points; applies to the prefetches as well.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Search-time parameters.
    pub params: Option<SearchParams>,
    /// Drop hits worse than this.
    pub score_threshold: Option<f32>,
    /// Hits to return (default 10).
    pub limit: Option<usize>,
    /// Hits to skip first.
    pub offset: Option<usize>,
    /// Vectors to return (default false).
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// Payload to return (default false).
    pub with_payload: Option<WithPayloadInterface>,
    /// Take the vectors of the point ids in `query` from another collection.
    pub lookup_from: Option<LookupLocation>,
    /// Quiver: depths of the default funnel that a plain query runs on a collection with bound vectors.
    pub funnel: Option<FunnelDto>,
}

/// Qdrant's `lookup_from`: where the point ids of a query (or of a recommend or discover request)
/// take their vectors from. The server resolves them before the query runs, so the engine sees
/// vectors and does not leave those ids out of the hits.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct LookupLocation {
    /// The collection that holds the points.
    pub collection: String,
    /// Its vector to take (default: the stage's `using`).
    pub vector: Option<String>,
    /// Accepted for Qdrant clients; Quiver has no shards.
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// Quiver: how deep each stage of the default funnel goes. Unset fields take the defaults documented
/// with the funnel (`hnsw_limit` = max(100, 10 × (limit + offset)), `rescore_limit` = max(30,
/// 3 × (limit + offset)), both capped by the server's `--max-limit`).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunnelDto {
    /// Candidates the HNSW stage returns (on the Matryoshka prefix when the vector has `dims`).
    pub hnsw_limit: Option<usize>,
    /// Candidates the full-vector rescore passes to the MaxSim stage (when the collection has a bound
    /// multivector).
    pub rescore_limit: Option<usize>,
}

/// One prefetch or several.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PrefetchList {
    /// One prefetch.
    One(Box<Prefetch>),
    /// Several.
    Many(Vec<Prefetch>),
}

/// A stage that finds candidates for the stage above it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct Prefetch {
    /// Nested prefetches whose hits this stage rescores.
    #[schema(no_recursion)]
    pub prefetch: Option<PrefetchList>,
    /// The query of this stage (required).
    #[schema(value_type = Option<QueryInterfaceDoc>)]
    pub query: Option<Value>,
    /// The named vector to search.
    pub using: Option<String>,
    /// Only matching points.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Search-time parameters.
    pub params: Option<SearchParams>,
    /// Drop hits worse than this.
    pub score_threshold: Option<f32>,
    /// Candidates this stage passes up (default 10).
    pub limit: Option<usize>,
    /// Take the vectors of the point ids in `query` from another collection.
    pub lookup_from: Option<LookupLocation>,
}

/// The accepted forms of `query`. (Documentation type.)
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum QueryInterfaceDoc {
    /// A dense vector.
    Dense(Vec<f32>),
    /// A multivector.
    Multi(Vec<Vec<f32>>),
    /// A point id: search with that point's vector.
    Id(super::common::ExtendedPointId),
    /// A sparse vector, against a vector of `sparse_vectors`.
    Sparse(SparseVectorDto),
    /// `{"nearest": …}` with one of the above.
    Nearest(NearestQueryDoc),
    /// `{"fusion": "rrf" | "dbsf"}` or `{"rrf": {"k": 2, "weights": [...]}}`: fuses the ranked hits
    /// of the prefetches.
    #[schema(value_type = Object)]
    Fusion(Value),
    /// `{"nearest": …, "mmr": {"diversity": 0.5, "candidates_limit": n}}`: the `candidates_limit`
    /// nearest (default: `limit`), re-selected by maximal marginal relevance; scores stay the
    /// similarities to the query.
    #[schema(value_type = Object)]
    NearestMmr(Value),
    /// `{"sample": "random"}`: random points that pass the filter, score 0.
    #[schema(value_type = Object)]
    Sample(Value),
    /// `{"formula": <expression>, "defaults": {"key": value}}`: every candidate of the prefetches
    /// scored by the expression over `$score[i]`, payload values and conditions (Qdrant's score
    /// boosting).
    #[schema(value_type = Object)]
    Formula(Value),
}

/// `{"nearest": …}`. (Documentation type.)
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct NearestQueryDoc {
    /// A vector, a multivector or a point id.
    #[schema(value_type = Object)]
    nearest: Value,
}

/// Body of `POST /collections/{name}/points/query/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QueryBatch {
    /// The queries, answered in order.
    pub searches: Vec<QueryRequestDto>,
}

/// `{"points": […]}`, plus `timings` when asked for with `?timings=true`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    /// The hits, best first.
    pub points: Vec<ScoredPointOut>,
    /// Where the time went (Quiver's extension, only with `?timings=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<QueryTimings>,
}

/// Per-stage timings of one query.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryTimings {
    /// Milliseconds embedding the query's documents (0 without any).
    pub embed_ms: f64,
    /// The stages in the order they ran: deepest prefetches first, the query last.
    pub stages: Vec<StageTiming>,
    /// Milliseconds for the whole query, embedding included.
    pub total_ms: f64,
}

/// Query-string options of the Query API routes.
#[derive(Debug, Default, Deserialize)]
pub struct QueryOptions {
    /// Add per-stage timings to each response.
    #[serde(default)]
    pub timings: bool,
}

/// How long one stage of a query took (prefetches first, deepest first; the query itself last).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StageTiming {
    /// The vector the stage searched (`""`: the unnamed one).
    pub using: String,
    /// Nesting depth: 0 for the query, 1 for its prefetches, and so on.
    pub depth: usize,
    /// Hits the stage was asked for (its `limit`, plus `offset` at the top).
    pub limit: usize,
    /// Candidates it scored exactly, when it had prefetches.
    pub candidates: Option<usize>,
    /// What the stage did, as the engine ran it: `hnsw` (graph walks, and scans of segments too small
    /// for a graph), `exact` (a scan instead of the index: asked for with `exact`, or chosen by the
    /// filter planner because few points pass the filter), `rescore` (a dense vector scoring
    /// prefetched candidates), `token_store` (multivector search), `maxsim` (a multivector scoring
    /// prefetched candidates).
    pub kind: &'static str,
    /// Components of each vector the stage compared: the Matryoshka prefix for a stage that returns
    /// prefix scores, else the vector's size.
    pub dims: usize,
    /// Segments whose index (HNSW graph or token store) the stage walked.
    pub segments_indexed: usize,
    /// Of those, segments where the stage walked the graph of the one payload value its filter
    /// requires (`hnsw_config.payload_m`) instead of the vector's graph.
    pub segments_value_graph: usize,
    /// Segments it scanned (exactly, or over its candidates).
    pub segments_scanned: usize,
    /// Milliseconds spent in the stage itself (not in its prefetches).
    pub ms: f64,
}

impl From<&StageStats> for StageTiming {
    fn from(s: &StageStats) -> Self {
        StageTiming {
            using: s.using.clone(),
            depth: s.depth,
            limit: s.limit,
            candidates: s.candidates,
            kind: s.strategy.as_str(),
            dims: s.dims,
            segments_indexed: s.segments_indexed,
            segments_value_graph: s.segments_value_graph,
            segments_scanned: s.segments_scanned,
            ms: s.elapsed.as_secs_f64() * 1e3,
        }
    }
}

impl SearchParams {
    /// The engine's form.
    pub fn into_params(self) -> Result<query::SearchParams, Error> {
        if self.hnsw_ef == Some(0) {
            return Err(Error::Validation(
                "params.hnsw_ef must be at least 1".into(),
            ));
        }
        Ok(query::SearchParams {
            hnsw_ef: self.hnsw_ef,
            exact: self.exact.unwrap_or(false),
            quantization: quantization(self.quantization)?,
            plaid: self.plaid,
        })
    }
}

/// `params.quantization`: `{"rescore": bool, "oversampling": number, "ignore": bool}`.
fn quantization(value: Option<Value>) -> Result<Option<QuantizationParams>, Error> {
    let Some(value) = value.filter(|q| !q.is_null()) else {
        return Ok(None);
    };
    let Value::Object(map) = value else {
        return Err(invalid(
            "params.quantization must be an object: {\"rescore\": bool, \"oversampling\": number}",
        ));
    };
    let mut out = QuantizationParams::default();
    for (key, value) in map {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("ignore", Value::Bool(b)) => out.ignore = Some(b),
            ("rescore", Value::Bool(b)) => out.rescore = Some(b),
            ("oversampling", Value::Number(n)) => {
                out.oversampling = Some(n.as_f64().unwrap_or(0.0))
            }
            (key, _) => {
                return Err(invalid(format!(
                    "params.quantization.{key}: expected ignore (bool), rescore (bool) or \
                     oversampling (number)"
                )))
            }
        }
    }
    Ok(Some(out))
}

impl SearchRequestDto {
    /// The engine's query: one stage, its vector checked.
    pub fn into_request(self) -> Result<QueryRequest, Error> {
        let (using, value) = match self.vector {
            NamedVectorStruct::Default(v) => (None, v),
            NamedVectorStruct::Named { name, vector } => (Some(name), vector),
        };
        value.check_finite(|| "query".to_string())?;
        let input = match value {
            VectorValue::Dense(v) => QueryInput::Dense(v),
            VectorValue::Multi(m) => QueryInput::Multi(m),
            VectorValue::Sparse(s) => QueryInput::Sparse(s.into_engine(|| "query".to_string())?),
            VectorValue::Inference(_) => unreachable!("check_finite refuses inference objects"),
        };
        Ok(QueryRequest {
            params: self.params.unwrap_or_default().into_params()?,
            filter: self.filter,
            score_threshold: self.score_threshold,
            offset: self.offset.unwrap_or(0),
            with_payload: with_payload(self.with_payload, false),
            with_vectors: with_vectors(self.with_vector, false),
            ..QueryRequest::nearest(using, input, self.limit)
        })
    }
}

impl QueryRequestDto {
    /// The typed query, with documents left for the inference layer. `lookup` gives the vector of a
    /// point id in a stage with `lookup_from`: `(location, the stage's using, id)`.
    pub fn into_request<E, F>(self, lookup: &mut F) -> Result<QueryRequest<Input<QueryInput>>, E>
    where
        E: From<Error>,
        F: FnMut(&LookupLocation, &str, PointId) -> Result<QueryInput, E>,
    {
        let query = looked_up(
            parse_query(self.query)?,
            self.lookup_from,
            &self.using,
            lookup,
        )?;
        Ok(QueryRequest {
            prefetch: prefetches(self.prefetch, lookup)?,
            query,
            using: self.using,
            filter: self.filter,
            params: self.params.unwrap_or_default().into_params()?,
            score_threshold: self.score_threshold,
            limit: self.limit.unwrap_or(10),
            offset: self.offset.unwrap_or(0),
            with_payload: with_payload(self.with_payload, false),
            with_vectors: with_vectors(self.with_vector, false),
            funnel: self.funnel.map(|f| FunnelDepths {
                hnsw_limit: f.hnsw_limit,
                rescore_limit: f.rescore_limit,
            }),
            deadline: None,
        })
    }
}

fn prefetches<E, F>(
    list: Option<PrefetchList>,
    lookup: &mut F,
) -> Result<Vec<query::Prefetch<Input<QueryInput>>>, E>
where
    E: From<Error>,
    F: FnMut(&LookupLocation, &str, PointId) -> Result<QueryInput, E>,
{
    let list = match list {
        None => return Ok(Vec::new()),
        Some(PrefetchList::One(p)) => vec![*p],
        Some(PrefetchList::Many(v)) => v,
    };
    list.into_iter()
        .map(|p| {
            let query = looked_up(parse_query(p.query)?, p.lookup_from, &p.using, lookup)?;
            Ok(query::Prefetch {
                prefetch: prefetches(p.prefetch, lookup)?,
                query,
                using: p.using,
                filter: p.filter,
                params: p.params.unwrap_or_default().into_params()?,
                score_threshold: p.score_threshold,
                limit: p.limit.unwrap_or(10),
            })
        })
        .collect()
}

/// A stage's query with its point ids replaced by their vectors in the `lookup_from` collection.
fn looked_up<E, F>(
    query: Option<Query<Input<QueryInput>>>,
    location: Option<LookupLocation>,
    using: &Option<String>,
    lookup: &mut F,
) -> Result<Option<Query<Input<QueryInput>>>, E>
where
    F: FnMut(&LookupLocation, &str, PointId) -> Result<QueryInput, E>,
{
    let Some(location) = location else {
        return Ok(query);
    };
    let Some(query) = query else {
        return Ok(None);
    };
    let using = using.as_deref().unwrap_or("");
    query
        .try_map(&mut |input| match input {
            Input::Value(QueryInput::Point(id)) => Ok(Input::Value(lookup(&location, using, id)?)),
            other => Ok(other),
        })
        .map(Some)
}

/// A `query`: absent, or one of [`query_input`]'s forms.
fn parse_query(value: Option<Value>) -> Result<Option<Query<Input<QueryInput>>>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) if map.contains_key("fusion") || map.contains_key("rrf") => {
            Ok(Some(Query::Fusion(fusion(map)?)))
        }
        Some(Value::Object(map)) if map.contains_key("formula") => {
            Ok(Some(Query::Formula(super::formula::formula_query(map)?)))
        }
        Some(Value::Object(mut map)) if map.contains_key("order_by") => {
            map.retain(|_, v| !v.is_null());
            if map.len() != 1 {
                let keys: Vec<&String> = map.keys().collect();
                return Err(invalid(format!(
                    "an order_by query has that one key; got {keys:?}"
                )));
            }
            let value = map.remove("order_by").unwrap_or_default();
            match super::points::parse_order_by(value)? {
                Some(order_by) => Ok(Some(Query::OrderBy(order_by))),
                None => Err(invalid("`order_by` needs a key")),
            }
        }
        Some(Value::Object(mut map))
            if ["recommend", "discover", "context"]
                .iter()
                .any(|k| map.contains_key(*k)) =>
        {
            map.retain(|_, v| !v.is_null());
            if map.len() != 1 {
                let keys: Vec<&String> = map.keys().collect();
                return Err(invalid(format!(
                    "a recommend, discover or context query has that one key; got {keys:?}"
                )));
            }
            let (kind, value) = map.into_iter().next().expect("one key");
            Ok(Some(match kind.as_str() {
                "recommend" => Query::Recommend(recommend(value)?),
                "discover" => discover(value)?,
                _ => Query::Context(context_pairs(value, "context")?),
            }))
        }
        Some(Value::Object(mut map)) if map.contains_key("sample") => {
            map.retain(|_, v| !v.is_null());
            match (map.len(), map.get("sample")) {
                (1, Some(Value::String(kind))) if kind == "random" => Ok(Some(Query::Sample)),
                (1, Some(other)) => Err(invalid(format!(
                    "unknown sample {other}: the one sampling is \"random\""
                ))),
                _ => Err(invalid(
                    "a sample query has one key: {\"sample\": \"random\"}",
                )),
            }
        }
        Some(Value::Object(mut map))
            if map.contains_key("nearest") && map.get("mmr").is_some_and(|m| !m.is_null()) =>
        {
            let mmr = map.remove("mmr").expect("checked above");
            let nearest = query_input(Value::Object(map))?;
            Ok(Some(Query::Mmr {
                nearest,
                mmr: mmr_params(mmr)?,
            }))
        }
        Some(value) => Ok(Some(Query::Nearest(query_input(value)?))),
    }
}

/// Qdrant's bound on `mmr.candidates_limit`.
const MAX_MMR_CANDIDATES: usize = 16_384;

/// `{"diversity": 0..1, "candidates_limit": n}`, checked as Qdrant validates them (422).
fn mmr_params(value: Value) -> Result<query::Mmr, Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct MmrDto {
        diversity: Option<f32>,
        candidates_limit: Option<usize>,
    }
    let dto: MmrDto = serde_json::from_value(value).map_err(|e| {
        invalid(format!(
            "`mmr` takes {{\"diversity\": number, \"candidates_limit\": integer}}: {e}"
        ))
    })?;
    let diversity = dto.diversity.unwrap_or(query::DEFAULT_MMR_DIVERSITY);
    if !(0.0..=1.0).contains(&diversity) {
        return Err(Error::Validation(format!(
            "mmr.diversity must be between 0 and 1, got {diversity}"
        )));
    }
    if dto.candidates_limit.is_some_and(|n| n > MAX_MMR_CANDIDATES) {
        return Err(Error::Validation(format!(
            "mmr.candidates_limit must be at most {MAX_MMR_CANDIDATES}"
        )));
    }
    Ok(query::Mmr {
        diversity,
        candidates_limit: dto.candidates_limit,
    })
}

/// `{"positive": [...], "negative": [...], "strategy": …}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendDto {
    #[serde(default)]
    positive: Option<Vec<Value>>,
    #[serde(default)]
    negative: Option<Vec<Value>>,
    #[serde(default)]
    strategy: Option<String>,
}

/// Qdrant's recommend strategy names.
pub fn recommend_strategy(name: Option<&str>) -> Result<RecommendStrategy, Error> {
    match name {
        None | Some("average_vector") => Ok(RecommendStrategy::AverageVector),
        Some("best_score") => Ok(RecommendStrategy::BestScore),
        Some("sum_scores") => Ok(RecommendStrategy::SumScores),
        Some(other) => Err(invalid(format!(
            "unknown recommend strategy `{other}`: use average_vector, best_score or sum_scores"
        ))),
    }
}

fn examples(values: Option<Vec<Value>>) -> Result<Vec<Input<QueryInput>>, Error> {
    values
        .unwrap_or_default()
        .into_iter()
        .map(query_input)
        .collect()
}

fn recommend(value: Value) -> Result<query::Recommend<Input<QueryInput>>, Error> {
    let dto: RecommendDto = serde_json::from_value(value).map_err(|e| {
        invalid(format!(
            "`recommend` takes {{\"positive\": [...], \"negative\": [...], \"strategy\": …}}: {e}"
        ))
    })?;
    let out = query::Recommend {
        positive: examples(dto.positive)?,
        negative: examples(dto.negative)?,
        strategy: recommend_strategy(dto.strategy.as_deref())?,
    };
    if out.positive.is_empty() && out.negative.is_empty() {
        return Err(invalid(
            "`recommend` needs at least one positive or negative example",
        ));
    }
    Ok(out)
}

/// `{"target": …, "context": pair | [pairs]}`.
fn discover(value: Value) -> Result<Query<Input<QueryInput>>, Error> {
    let Value::Object(mut map) = value else {
        return Err(invalid(
            "`discover` takes {\"target\": …, \"context\": [{\"positive\": …, \"negative\": …}]}",
        ));
    };
    if let Some(key) = map.keys().find(|k| *k != "target" && *k != "context") {
        return Err(invalid(format!(
            "`discover` has no field `{key}`: it takes `target` and `context`"
        )));
    }
    let target = match map.remove("target") {
        None | Some(Value::Null) => return Err(invalid("`discover` needs a `target`")),
        Some(t) => query_input(t)?,
    };
    let context = match map.remove("context") {
        None | Some(Value::Null) => Vec::new(),
        Some(c) => context_pairs(c, "discover.context")?,
    };
    Ok(Query::Discover { target, context })
}

/// One `{"positive": …, "negative": …}` pair or a list of them.
pub fn context_pairs(
    value: Value,
    what: &str,
) -> Result<Vec<query::ContextPair<Input<QueryInput>>>, Error> {
    let items = match value {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(invalid(format!(
                "`{what}` is a {{\"positive\": …, \"negative\": …}} pair or a list of them"
            )))
        }
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut pair) = item else {
                return Err(invalid(format!(
                    "each pair of `{what}` is {{\"positive\": …, \"negative\": …}}"
                )));
            };
            if let Some(key) = pair.keys().find(|k| *k != "positive" && *k != "negative") {
                return Err(invalid(format!(
                    "a pair of `{what}` has no field `{key}`: it takes `positive` and `negative`"
                )));
            }
            let mut side = |name: &str| match pair.remove(name) {
                None | Some(Value::Null) => Err(invalid(format!(
                    "each pair of `{what}` needs a `{name}` example"
                ))),
                Some(v) => query_input(v),
            };
            Ok(query::ContextPair {
                positive: side("positive")?,
                negative: side("negative")?,
            })
        })
        .collect()
}

/// `{"fusion": "rrf" | "dbsf"}` or `{"rrf": {"k": N, "weights": [...]}}`.
fn fusion(mut map: serde_json::Map<String, Value>) -> Result<Fusion, Error> {
    map.retain(|_, v| !v.is_null());
    if map.len() != 1 {
        let keys: Vec<&String> = map.keys().collect();
        return Err(invalid(format!(
            "a fusion query has one key, `fusion` or `rrf`; got {keys:?}"
        )));
    }
    if let Some(kind) = map.remove("fusion") {
        return match kind.as_str() {
            Some("rrf") => Ok(Fusion::Rrf {
                k: DEFAULT_RRF_K,
                weights: None,
            }),
            Some("dbsf") => Ok(Fusion::Dbsf),
            _ => Err(invalid(format!(
                "unknown fusion {kind}: use \"rrf\" or \"dbsf\""
            ))),
        };
    }
    let params: RrfDto =
        serde_json::from_value(map.remove("rrf").unwrap_or_default()).map_err(|e| {
            invalid(format!(
                "`rrf` takes {{\"k\": integer, \"weights\": [numbers]}}: {e}"
            ))
        })?;
    Ok(Fusion::Rrf {
        k: params.k.unwrap_or(DEFAULT_RRF_K),
        weights: params.weights,
    })
}

/// `{"rrf": {…}}`'s parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RrfDto {
    /// Qdrant's `k` (default 2).
    k: Option<usize>,
    /// One weight per prefetch.
    weights: Option<Vec<f32>>,
}

/// Whether an object is an inference object (`{"text": …}` or `{"image": …}`).
fn is_inference(map: &serde_json::Map<String, Value>) -> bool {
    map.contains_key("text") || map.contains_key("image")
}

/// A vector, a multivector, a point id, an inference object, or `{"nearest": one of those}`.
fn query_input(value: Value) -> Result<Input<QueryInput>, Error> {
    match value {
        Value::Object(mut map) => {
            map.retain(|_, v| !v.is_null());
            if is_inference(&map) {
                return inference_object(map);
            }
            if map.contains_key("indices") || map.contains_key("values") {
                return sparse_input(map);
            }
            if map.contains_key("nearest") && map.contains_key("mmr") {
                return Err(invalid(
                    "`mmr` applies to the query of a stage, not to an example",
                ));
            }
            if map.len() == 1 {
                if let Some(inner) = map.remove("nearest") {
                    return match inner {
                        Value::Object(inner) if is_inference(&inner) => inference_object(inner),
                        Value::Object(inner)
                            if inner.contains_key("indices") || inner.contains_key("values") =>
                        {
                            sparse_input(inner)
                        }
                        Value::Object(_) => Err(invalid(
                            "`nearest` takes a vector, a multivector, a sparse vector or a point id",
                        )),
                        other => query_input(other),
                    };
                }
            }
            let kind = map.keys().next().cloned().unwrap_or_default();
            Err(invalid(match kind.as_str() {
                "formula" => "`formula` is a query of its own, not an example".to_string(),
                "sample" => "`sample` is a query of its own, not an example".to_string(),
                "mmr" => "`mmr` goes with `nearest`: {\"nearest\": …, \"mmr\": {…}}".to_string(),
                "object" => {
                    "inference objects (text / image) are not supported by this server".to_string()
                }
                _ => format!("unknown query object with key `{kind}`"),
            }))
        }
        Value::Array(_) => {
            let vector: VectorValue = serde_json::from_value(value)
                .map_err(|_| invalid("`query` must be a vector of numbers or a list of vectors"))?;
            vector.check_finite(|| "query".to_string())?;
            Ok(Input::Value(match vector {
                VectorValue::Dense(v) => QueryInput::Dense(v),
                VectorValue::Multi(m) => QueryInput::Multi(m),
                VectorValue::Sparse(_) | VectorValue::Inference(_) => {
                    unreachable!("a JSON array is a dense vector or a multivector")
                }
            }))
        }
        Value::Number(_) | Value::String(_) => {
            let id: PointId = serde_json::from_value(value)
                .map_err(|_| invalid("a point id is an unsigned integer or a UUID"))?;
            Ok(Input::Value(QueryInput::Point(id)))
        }
        Value::Null | Value::Bool(_) => Err(invalid(
            "`query` must be a vector, a multivector, a point id or {\"nearest\": …}",
        )),
    }
}

/// `{"indices": […], "values": […]}` as a sparse query.
fn sparse_input(map: serde_json::Map<String, Value>) -> Result<Input<QueryInput>, Error> {
    let dto: SparseVectorDto = serde_json::from_value(Value::Object(map)).map_err(|e| {
        invalid(format!(
            "a sparse query is {{\"indices\": [integers], \"values\": [numbers]}}: {e}"
        ))
    })?;
    Ok(Input::Value(QueryInput::Sparse(
        dto.into_engine(|| "query".to_string())?,
    )))
}

/// `{"text": …}` as a document, `{"image": …}` as an image.
fn inference_object(map: serde_json::Map<String, Value>) -> Result<Input<QueryInput>, Error> {
    let malformed = |e: serde_json::Error| invalid(format!("malformed inference object: {e}"));
    let object = if map.contains_key("text") {
        InferenceObject::Document(serde_json::from_value(Value::Object(map)).map_err(malformed)?)
    } else {
        InferenceObject::Image(serde_json::from_value(Value::Object(map)).map_err(malformed)?)
    };
    Ok(Input::Document(object.into_document()?))
}

impl QueryResponse {
    /// The engine's answer in Qdrant's shape; `timings` (embedding and total milliseconds) adds
    /// Quiver's per-stage timings.
    pub fn new(
        config: &CollectionConfig,
        answer: quiver_engine::QueryResponse,
        timings: Option<(f64, f64)>,
    ) -> Self {
        QueryResponse {
            timings: timings.map(|(embed_ms, total_ms)| QueryTimings {
                embed_ms,
                stages: answer.stages.iter().map(StageTiming::from).collect(),
                total_ms,
            }),
            points: answer
                .hits
                .into_iter()
                .map(|h| ScoredPointOut::new(config, h))
                .collect(),
        }
    }
}
