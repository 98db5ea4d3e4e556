//! Bodies of Qdrant's legacy example routes, `points/recommend` and `points/discover` (and their
//! batch and groups forms): each becomes the Query API request with a `recommend`, `discover` or
//! `context` query that Qdrant itself runs for them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use quiver_engine::filter::Filter;

use super::common::{FilterDoc, WithPayloadInterface, WithVector};
use super::error::{invalid, Error};
use super::groups::{QueryGroupsRequestDto, WithLookupDto};
use super::search::{LookupLocation, QueryRequestDto, SearchParams};

/// Body of `POST /collections/{name}/points/recommend`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RecommendRequestDto {
    /// Examples to be like: point ids or vectors.
    #[schema(value_type = Option<Vec<Object>>)]
    pub positive: Option<Vec<Value>>,
    /// Examples to be unlike: point ids or vectors.
    #[schema(value_type = Option<Vec<Object>>)]
    pub negative: Option<Vec<Value>>,
    /// `average_vector` (default), `best_score` or `sum_scores`.
    pub strategy: Option<String>,
    /// Only matching points.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Search-time parameters.
    pub params: Option<SearchParams>,
    /// Hits to return.
    pub limit: usize,
    /// Hits to skip first.
    pub offset: Option<usize>,
    /// Payload of the hits (default false).
    pub with_payload: Option<WithPayloadInterface>,
    /// Vectors of the hits (default false).
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// Drop hits worse than this.
    pub score_threshold: Option<f32>,
    /// The named vector the examples and hits are compared on.
    pub using: Option<String>,
    /// `{"collection", "vector"}`: take the point-id examples' vectors from another collection.
    pub lookup_from: Option<LookupLocation>,
}

/// Body of `POST /collections/{name}/points/recommend/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecommendBatch {
    /// The requests, answered in order.
    pub searches: Vec<RecommendRequestDto>,
}

/// Body of `POST /collections/{name}/points/recommend/groups`: a recommendation grouped like
/// `search/groups`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RecommendGroupsRequestDto {
    /// Examples to be like.
    #[schema(value_type = Option<Vec<Object>>)]
    pub positive: Option<Vec<Value>>,
    /// Examples to be unlike.
    #[schema(value_type = Option<Vec<Object>>)]
    pub negative: Option<Vec<Value>>,
    /// `average_vector` (default), `best_score` or `sum_scores`.
    pub strategy: Option<String>,
    /// Only matching points.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Search-time parameters.
    pub params: Option<SearchParams>,
    /// Payload of the hits (default false).
    pub with_payload: Option<WithPayloadInterface>,
    /// Vectors of the hits (default false).
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// Drop hits worse than this.
    pub score_threshold: Option<f32>,
    /// The named vector the examples and hits are compared on.
    pub using: Option<String>,
    /// `{"collection", "vector"}`: take the point-id examples' vectors from another collection.
    pub lookup_from: Option<LookupLocation>,
    /// The payload key whose keyword or integer value groups the hits.
    pub group_by: String,
    /// Hits per group, at most.
    pub group_size: usize,
    /// Groups to return, at most.
    pub limit: usize,
    /// Each group's record from another collection.
    pub with_lookup: Option<WithLookupDto>,
}

/// One `{"positive", "negative"}` pair of `discover`'s context.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextPairDto {
    /// The side to be on: a point id or a vector.
    #[schema(value_type = Object)]
    pub positive: Value,
    /// The side not to be on: a point id or a vector.
    #[schema(value_type = Object)]
    pub negative: Value,
}

/// Body of `POST /collections/{name}/points/discover`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct DiscoverRequestDto {
    /// What to rank by inside the zone the context marks out; without it, a context search.
    #[schema(value_type = Option<Object>)]
    pub target: Option<Value>,
    /// The pairs that mark the zone.
    pub context: Option<Vec<ContextPairDto>>,
    /// Only matching points.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Search-time parameters.
    pub params: Option<SearchParams>,
    /// Hits to return.
    pub limit: usize,
    /// Hits to skip first.
    pub offset: Option<usize>,
    /// Payload of the hits (default false).
    pub with_payload: Option<WithPayloadInterface>,
    /// Vectors of the hits (default false).
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// The named vector the examples and hits are compared on.
    pub using: Option<String>,
    /// `{"collection", "vector"}`: take the point-id examples' vectors from another collection.
    pub lookup_from: Option<LookupLocation>,
}

/// Body of `POST /collections/{name}/points/discover/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DiscoverBatch {
    /// The requests, answered in order.
    pub searches: Vec<DiscoverRequestDto>,
}

fn recommend_query(
    positive: Option<Vec<Value>>,
    negative: Option<Vec<Value>>,
    strategy: Option<String>,
) -> Value {
    json!({"recommend": {"positive": positive, "negative": negative, "strategy": strategy}})
}

impl RecommendRequestDto {
    /// The Query API request Qdrant runs for it.
    pub fn into_query(self) -> QueryRequestDto {
        QueryRequestDto {
            query: Some(recommend_query(self.positive, self.negative, self.strategy)),
            using: self.using,
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            limit: Some(self.limit),
            offset: self.offset,
            with_vector: self.with_vector,
            with_payload: self.with_payload,
            lookup_from: self.lookup_from,
            ..QueryRequestDto::default()
        }
    }
}

impl RecommendGroupsRequestDto {
    /// The grouped Query API request Qdrant runs for it.
    pub fn into_query(self) -> QueryGroupsRequestDto {
        QueryGroupsRequestDto {
            query: Some(recommend_query(self.positive, self.negative, self.strategy)),
            using: self.using,
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            with_vector: self.with_vector,
            with_payload: self.with_payload,
            lookup_from: self.lookup_from,
            group_by: self.group_by,
            group_size: Some(self.group_size),
            limit: Some(self.limit),
            with_lookup: self.with_lookup,
            ..QueryGroupsRequestDto::default()
        }
    }
}

impl DiscoverRequestDto {
    /// The Query API request Qdrant runs for it: `discover` with a target, `context` without.
    pub fn into_query(self) -> Result<QueryRequestDto, Error> {
        let context = self.context.unwrap_or_default();
        let query = match self.target {
            Some(target) if !target.is_null() => {
                json!({"discover": {"target": target, "context": context}})
            }
            _ if context.is_empty() => {
                return Err(invalid("`discover` needs a `target`, a `context`, or both"))
            }
            _ => json!({"context": context}),
        };
        Ok(QueryRequestDto {
            query: Some(query),
            using: self.using,
            filter: self.filter,
            params: self.params,
            limit: Some(self.limit),
            offset: self.offset,
            with_vector: self.with_vector,
            with_payload: self.with_payload,
            lookup_from: self.lookup_from,
            ..QueryRequestDto::default()
        })
    }
}
