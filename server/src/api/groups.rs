//! Bodies of the grouped searches, `points/search/groups` and `points/query/groups`: a search whose
//! hits come back grouped by a payload field, optionally with each group's record from another
//! collection (`with_lookup`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::filter::Filter;
use quiver_engine::query::{GroupKey, GroupsRequest, PointGroup, QueryInput, QueryRequest};
use quiver_engine::{CollectionConfig, PointId, Record, WithPayload, WithVectors};

use super::common::{
    with_payload, with_vectors, FilterDoc, RecordOut, ScoredPointOut, WithPayloadInterface,
    WithVector,
};
use super::error::Error;
use super::search::{
    FunnelDto, LookupLocation, NamedVectorStruct, PrefetchList, QueryInterfaceDoc, QueryRequestDto,
    QueryTimings, SearchParams, SearchRequestDto,
};
use crate::inference::Input;

/// Qdrant's default `group_size` of `query/groups`.
const DEFAULT_GROUP_SIZE: usize = 3;
/// Qdrant's default number of groups of `query/groups`.
const DEFAULT_GROUPS: usize = 10;

/// `with_lookup`: the name of a collection, or the collection with what to return of its records.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WithLookupDto {
    /// A collection name: its records come with their payload and without vectors.
    Collection(String),
    /// The collection and what to return.
    Options(WithLookupOptions),
}

/// `with_lookup` as an object.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithLookupOptions {
    /// The collection whose point with the group's id is the group's `lookup`.
    pub collection: String,
    /// Payload of the looked-up record (default true).
    pub with_payload: Option<WithPayloadInterface>,
    /// Vectors of the looked-up record (default false).
    #[serde(alias = "with_vector")]
    pub with_vectors: Option<WithVector>,
}

/// What the lookup of each group's record reads.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The collection (or alias) to read.
    pub collection: String,
    /// Payload to return.
    pub with_payload: WithPayload,
    /// Vectors to return.
    pub with_vectors: WithVectors,
}

impl From<WithLookupDto> for Lookup {
    fn from(dto: WithLookupDto) -> Self {
        match dto {
            WithLookupDto::Collection(collection) => Lookup {
                collection,
                with_payload: WithPayload::All,
                with_vectors: WithVectors::None,
            },
            WithLookupDto::Options(o) => Lookup {
                collection: o.collection,
                with_payload: with_payload(o.with_payload, true),
                with_vectors: with_vectors(o.with_vectors, false),
            },
        }
    }
}

/// Body of `POST /collections/{name}/points/search/groups`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct SearchGroupsRequestDto {
    /// The query vector.
    pub vector: NamedVectorStruct,
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
    /// The payload key whose keyword or integer value groups the hits.
    pub group_by: String,
    /// Hits per group, at most.
    pub group_size: usize,
    /// Groups to return, at most.
    pub limit: usize,
    /// Each group's record from another collection: the point whose id is the group's value.
    pub with_lookup: Option<WithLookupDto>,
}

/// Body of `POST /collections/{name}/points/query/groups`: a Query API request whose hits are grouped.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct QueryGroupsRequestDto {
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
    /// Vectors of the hits (default false).
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// Payload of the hits (default false).
    pub with_payload: Option<WithPayloadInterface>,
    /// Take the vectors of the point ids in `query` from another collection.
    pub lookup_from: Option<LookupLocation>,
    /// The payload key whose keyword or integer value groups the hits.
    pub group_by: String,
    /// Hits per group, at most (default 3).
    pub group_size: Option<usize>,
    /// Groups to return, at most (default 10).
    pub limit: Option<usize>,
    /// Each group's record from another collection: the point whose id is the group's value.
    pub with_lookup: Option<WithLookupDto>,
    /// Quiver: depths of the default funnel (see `points/query`), per round of grouping.
    pub funnel: Option<FunnelDto>,
}

/// Checks what Qdrant validates (422) before anything runs.
fn check_sizes(group_by: &str, group_size: usize, groups: usize) -> Result<(), Error> {
    if group_by.is_empty() {
        return Err(Error::Validation("group_by must name a payload key".into()));
    }
    if group_size == 0 {
        return Err(Error::Validation("group_size must be at least 1".into()));
    }
    if groups == 0 {
        return Err(Error::Validation("limit must be at least 1".into()));
    }
    Ok(())
}

/// Each round of grouping fetches `groups × group_size` hits, and a prefetch `groups` times its own
/// limit (as Qdrant does), capped at `max_limit`.
fn round_limits<I>(
    request: &mut QueryRequest<I>,
    groups: usize,
    group_size: usize,
    max_limit: usize,
) {
    fn widen<I>(list: &mut [quiver_engine::query::Prefetch<I>], groups: usize, max_limit: usize) {
        for p in list {
            p.limit = p.limit.saturating_mul(groups).min(max_limit.max(p.limit));
            widen(&mut p.prefetch, groups, max_limit);
        }
    }
    request.limit = groups.saturating_mul(group_size);
    widen(&mut request.prefetch, groups, max_limit);
}

impl SearchGroupsRequestDto {
    /// The engine's grouped request and the lookup, if any.
    pub fn into_request(self, max_limit: usize) -> Result<(GroupsRequest, Option<Lookup>), Error> {
        check_sizes(&self.group_by, self.group_size, self.limit)?;
        let mut query = SearchRequestDto {
            vector: self.vector,
            filter: self.filter,
            params: self.params,
            limit: 1,
            offset: None,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            score_threshold: self.score_threshold,
        }
        .into_request()?;
        round_limits(&mut query, self.limit, self.group_size, max_limit);
        Ok((
            GroupsRequest {
                query,
                group_by: self.group_by,
                group_size: self.group_size,
                groups: self.limit,
            },
            self.with_lookup.map(Lookup::from),
        ))
    }
}

impl QueryGroupsRequestDto {
    /// The typed grouped request (documents left for the inference layer) and the lookup, if any.
    /// The default funnel, if it applies, sizes itself from the round limit set here.
    #[allow(clippy::type_complexity)]
    pub fn into_request<E, F>(
        self,
        max_limit: usize,
        lookup: &mut F,
    ) -> Result<(GroupsRequest<Input<QueryInput>>, Option<Lookup>), E>
    where
        E: From<Error>,
        F: FnMut(&LookupLocation, &str, PointId) -> Result<QueryInput, E>,
    {
        let group_size = self.group_size.unwrap_or(DEFAULT_GROUP_SIZE);
        let groups = self.limit.unwrap_or(DEFAULT_GROUPS);
        check_sizes(&self.group_by, group_size, groups)?;
        let mut query = QueryRequestDto {
            prefetch: self.prefetch,
            query: self.query,
            using: self.using,
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            limit: Some(1),
            offset: None,
            with_vector: self.with_vector,
            with_payload: self.with_payload,
            lookup_from: self.lookup_from,
            funnel: self.funnel,
        }
        .into_request(lookup)?;
        round_limits(&mut query, groups, group_size, max_limit);
        Ok((
            GroupsRequest {
                query,
                group_by: self.group_by,
                group_size,
                groups,
            },
            self.with_lookup.map(Lookup::from),
        ))
    }
}

/// `{"groups": […]}`, plus `timings` when asked for with `?timings=true`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupsResult {
    /// The groups, ordered by their best hit.
    pub groups: Vec<PointGroupOut>,
    /// Where the time went (Quiver's extension, only with `?timings=true`): every stage of every
    /// round of grouping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<QueryTimings>,
}

/// One group in a response.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointGroupOut {
    /// The `group_by` value the hits share (a string or an integer).
    #[schema(value_type = Object)]
    pub id: GroupKey,
    /// The group's hits, best first.
    pub hits: Vec<ScoredPointOut>,
    /// The lookup collection's point with this group's id, when `with_lookup` was given and it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<RecordOut>,
}

/// The point id a group's value names, if it is one (an unsigned integer or a UUID).
pub fn lookup_id(key: &GroupKey) -> Option<PointId> {
    let value = match key {
        GroupKey::Integer(i) => Value::from(*i),
        GroupKey::Keyword(s) => Value::from(s.as_str()),
    };
    serde_json::from_value(value).ok()
}

impl GroupsResult {
    /// The engine's groups in Qdrant's shape; `lookups` are the looked-up records and the
    /// configuration of their collection.
    pub fn new(
        config: &CollectionConfig,
        groups: Vec<PointGroup>,
        lookups: Option<(&CollectionConfig, Vec<Record>)>,
    ) -> Self {
        let (lookup_config, mut records) = match lookups {
            Some((c, records)) => (
                Some(c),
                records
                    .into_iter()
                    .map(|r| (r.id, r))
                    .collect::<std::collections::HashMap<_, _>>(),
            ),
            None => (None, Default::default()),
        };
        GroupsResult {
            timings: None,
            groups: groups
                .into_iter()
                .map(|g| {
                    let lookup = lookup_config.and_then(|c| {
                        let id = lookup_id(&g.key)?;
                        records.remove(&id).map(|r| RecordOut::new(c, r))
                    });
                    PointGroupOut {
                        id: g.key,
                        hits: g
                            .hits
                            .into_iter()
                            .map(|h| ScoredPointOut::new(config, h))
                            .collect(),
                        lookup,
                    }
                })
                .collect(),
        }
    }
}
