//! Bodies of the search routes: the legacy `points/search` (and its batch) and the Query API
//! `points/query` with nested prefetch.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::filter::Filter;

use super::common::{FilterDoc, ScoredPointOut, VectorValue, WithPayloadInterface, WithVector};

/// Search-time parameters.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
// Some fields are parsed only so that Qdrant clients can send them.
#[allow(dead_code)]
pub struct SearchParams {
    /// Candidate-list size of the graph walk (default: the collection's stored `ef`).
    pub hnsw_ef: Option<usize>,
    /// Scan exactly instead of walking the graph.
    pub exact: Option<bool>,
    /// For a vector bound with Matryoshka `dims` (its graph indexes the prefix): `rescore: false`
    /// returns the prefix scores, `oversampling` rescores `limit × oversampling` graph candidates with
    /// the full vectors. No effect on other vectors.
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
    pub with_vector: Option<WithVector>,
    /// Payload to return (default false).
    pub with_payload: Option<WithPayloadInterface>,
    /// Not supported.
    #[schema(value_type = Option<Object>)]
    pub lookup_from: Option<Value>,
    /// Quiver: depths of the default funnel that a plain query runs on a collection with bound vectors.
    pub funnel: Option<FunnelDto>,
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

impl PrefetchList {
    /// The prefetches as a slice.
    pub fn as_slice(&self) -> &[Prefetch] {
        match self {
            PrefetchList::One(p) => std::slice::from_ref(p.as_ref()),
            PrefetchList::Many(v) => v,
        }
    }
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
    /// Not supported.
    #[schema(value_type = Option<Object>)]
    pub lookup_from: Option<Value>,
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
    /// `{"nearest": …}` with one of the above.
    Nearest(NearestQueryDoc),
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
    /// What the stage did: `hnsw` (graph walk, or a scan of small segments), `exact` (a full scan),
    /// `rescore` (a dense vector scoring prefetched candidates), `token_store` (multivector search),
    /// `maxsim` (a multivector scoring prefetched candidates).
    pub kind: &'static str,
    /// Components of each vector the stage compared: the Matryoshka prefix for an `hnsw` stage that
    /// returns prefix scores, else the vector's size.
    pub dims: usize,
    /// Milliseconds spent in the stage itself (not in its prefetches).
    pub ms: f64,
}
