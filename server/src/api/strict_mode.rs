//! Qdrant's strict mode: a collection's `strict_mode_config` parsed and checked against requests
//! before they reach the engine. Refusals are Qdrant's: 403 with `Limit exceeded 100 > 10 for
//! "limit". Help: …`; a full collection, too much vector or payload data, an oversized multi-vector
//! or sparse vector are Qdrant's 400s; a spent rate limit is Qdrant's 429 with `Retry-After`.
//!
//! The handlers call [`StrictMode::of`] once per request; it is `None` unless the collection has
//! `enabled: true`, so a collection without strict mode pays one config read.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::Value;

use quiver_engine::config::StrictModeConfig;
use quiver_engine::filter::{Condition, Filter, Match, RangeCondition};
use quiver_engine::payload_schema::{PayloadSchema, PayloadSchemaType};
use quiver_engine::point::{PointInsert, PointsSelector, ScrollRequest, UpdateOperation, Vector};
use quiver_engine::query::formula::{Expression, Variable};
use quiver_engine::query::{Prefetch, Query, QueryRequest, SearchParams};
use quiver_engine::{Collection, WithPayload, WithVectors};

use super::error::{invalid, Error};

/// A `strict_mode_config` of a create or update body: null/absent is no change; an object is parsed
/// field by field (an unknown field is a 400 naming it).
pub fn parse(value: Option<Value>) -> Result<Option<StrictModeConfig>, Error> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid("`strict_mode_config` must be a JSON object")),
    };
    let config: StrictModeConfig = serde_json::from_value(Value::Object(map))
        .map_err(|e| invalid(format!("strict_mode_config: {e}")))?;
    // Qdrant validates these as at least 1: a bucket of 0 tokens would refuse every request.
    for (name, value) in [
        ("read_rate_limit", config.read_rate_limit),
        ("write_rate_limit", config.write_rate_limit),
    ] {
        if value == Some(0) {
            return Err(Error::Validation(format!(
                "strict_mode_config.{name}: value 0 invalid, must be 1 or more"
            )));
        }
    }
    Ok(Some(config))
}

/// Qdrant's strict-mode refusal: `{description}. Help: {help}`, a 403.
fn forbidden(description: String, help: String) -> Error {
    Error::Forbidden(format!("{description}. Help: {help}"))
}

/// Qdrant's `check_limit_opt`: `value` above `limit` is refused, naming the parameter.
fn limit<T: PartialOrd + std::fmt::Display>(
    value: T,
    limit: Option<T>,
    name: &str,
) -> Result<(), Error> {
    match limit {
        Some(limit) if value > limit => Err(forbidden(
            format!("Limit exceeded {value} > {limit} for \"{name}\""),
            format!("Reduce the \"{name}\" parameter to or below {limit}."),
        )),
        _ => Ok(()),
    }
}

/// Which side of the collection a filter is used on (Qdrant keeps two switches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Searches, scrolls, counts, facets.
    Read,
    /// Deletes, payload and vector changes, `update_filter`.
    Write,
}

/// A collection's strict mode, when enabled, with the payload indexes filters are checked against.
pub struct StrictMode {
    config: StrictModeConfig,
    schema: Arc<PayloadSchema>,
    /// Which token buckets are the collection's (see [`Limiters`]).
    name: String,
    identity: usize,
}

impl StrictMode {
    /// The collection's strict mode, or `None` when it has none or it is not enabled.
    pub fn of(collection: &Collection) -> Option<Self> {
        let config = collection.config().strict_mode_config.clone()?;
        config.is_enabled().then(|| StrictMode {
            config,
            schema: collection.payload_schema(),
            name: collection.name().to_string(),
            identity: collection as *const Collection as usize,
        })
    }

    /// A request's `timeout` (seconds) against `max_timeout`.
    pub fn check_timeout(&self, timeout: usize) -> Result<(), Error> {
        limit(timeout, self.config.max_timeout, "timeout")
    }

    /// A new payload index on `field`: refused once the collection has `max_payload_index_count`.
    /// Re-creating the index of a field already indexed adds none, so it passes.
    pub fn check_index_count(&self, field: &str) -> Result<(), Error> {
        let Some(max) = self.config.max_payload_index_count else {
            return Ok(());
        };
        if self.schema.len() >= max && !self.schema.contains_key(field) {
            return Err(forbidden(
                format!("Collection already has the maximum number of payload indices ({max})"),
                "Please delete an existing index before creating a new one.".into(),
            ));
        }
        Ok(())
    }

    /// Takes `cost` read tokens from the collection's bucket (when it has `read_rate_limit`).
    pub fn charge_read(&self, cost: usize) -> Result<(), Error> {
        self.charge(cost, false)
    }

    /// Takes `cost` write tokens from the collection's bucket (when it has `write_rate_limit`).
    pub fn charge_write(&self, cost: usize) -> Result<(), Error> {
        self.charge(cost, true)
    }

    fn charge(&self, cost: usize, write: bool) -> Result<(), Error> {
        let per_minute = if write {
            self.config.write_rate_limit
        } else {
            self.config.read_rate_limit
        };
        let Some(per_minute) = per_minute else {
            return Ok(());
        };
        let mut all = LIMITERS.lock();
        let limits = (self.config.read_rate_limit, self.config.write_rate_limit);
        let entry = all
            .entry(self.name.clone())
            .or_insert_with(|| Limiters::new(self.identity, limits));
        // A changed limit, or a collection deleted and created again under the name, starts with
        // full buckets, as Qdrant builds new limiters when the config changes.
        if entry.identity != self.identity || entry.limits != limits {
            *entry = Limiters::new(self.identity, limits);
        }
        let bucket = if write {
            &mut entry.write
        } else {
            &mut entry.read
        };
        let bucket = bucket.get_or_insert_with(|| TokenBucket::new(per_minute));
        let kind = if write { "Write" } else { "Read" };
        bucket.try_consume(cost).map_err(|refusal| match refusal {
            Refusal::TooLarge => Error::RateLimited {
                message: format!(
                    "{kind} rate limit exceeded, request larger than rate limiter capacity, \
                     please try to split your request"
                ),
                retry_after: None,
            },
            Refusal::Wait {
                available,
                retry_after,
            } => Error::RateLimited {
                message: format!(
                    "{kind} rate limit exceeded: Operation requires {cost} tokens but only \
                     {available:.1} were available. Retry after {retry_after}s"
                ),
                retry_after: Some(retry_after),
            },
        })
    }

    /// Write tokens of a selector: one per id, or one per point the filter matches now (Qdrant
    /// charges its cardinality estimate; Quiver counts). At least one: every write costs.
    pub fn selector_cost(
        &self,
        collection: &Collection,
        selector: &PointsSelector,
    ) -> Result<usize, Error> {
        Ok(match selector {
            PointsSelector::Ids(ids) => ids.len(),
            PointsSelector::Filter(f)
                if self.config.write_rate_limit.is_some() || self.limits_payload_bytes() =>
            {
                collection.count(Some(f))?
            }
            PointsSelector::Filter(_) => 0,
        }
        .max(1))
    }

    /// The vectors of points being written: multi-vector rows against `multivector_config`, sparse
    /// lengths against `sparse_config` (Qdrant's 400s, naming the vector; `''` is the unnamed one).
    pub fn check_vector_shapes(
        &self,
        vectors: &quiver_engine::point::NamedVectors,
    ) -> Result<(), Error> {
        for (name, vector) in vectors {
            match vector {
                Vector::Multi(rows) => {
                    let max = self
                        .config
                        .multivector_config
                        .as_ref()
                        .and_then(|m| m.get(name))
                        .and_then(|m| m.max_vectors);
                    if let Some(max) = max.filter(|max| rows.len() > *max) {
                        return Err(invalid(format!(
                            "Multivector '{name}' has a limit of {max} vectors, but {} were \
                             provided!",
                            rows.len()
                        )));
                    }
                }
                Vector::Sparse(sparse) => {
                    let max = self
                        .config
                        .sparse_config
                        .as_ref()
                        .and_then(|m| m.get(name))
                        .and_then(|m| m.max_length);
                    let len = sparse.indices.len().max(sparse.values.len());
                    if let Some(max) = max.filter(|max| len > *max) {
                        return Err(invalid(format!(
                            "Sparse vector '{name}' has a limit of {max} indices, but {} were \
                             provided!",
                            sparse.indices.len()
                        )));
                    }
                }
                Vector::Dense(_) => {}
            }
        }
        Ok(())
    }

    /// Vectors about to be written: their shapes, then whether the collection's vector storage
    /// would pass `max_collection_vector_size_bytes` with them.
    pub fn check_vectors<'a>(
        &self,
        collection: &Collection,
        written: impl IntoIterator<Item = &'a quiver_engine::point::NamedVectors>,
    ) -> Result<(), Error> {
        let mut incoming = 0usize;
        for vectors in written {
            self.check_vector_shapes(vectors)?;
            incoming += vectors.values().map(vector_bytes).sum::<usize>();
        }
        let Some(max) = self.config.max_collection_vector_size_bytes else {
            return Ok(());
        };
        let current = estimated_vector_bytes(collection)?;
        if current.saturating_add(incoming) > max {
            return Err(invalid(format!(
                "Max vector storage size limit of {}MB reached!",
                megabytes(max)
            )));
        }
        Ok(())
    }

    /// Payload bytes about to be written (`incoming`, JSON-encoded): refused when the collection's
    /// payloads would pass `max_collection_payload_size_bytes` with them.
    pub fn check_payload_bytes(
        &self,
        collection: &Collection,
        incoming: usize,
    ) -> Result<(), Error> {
        let Some(max) = self.config.max_collection_payload_size_bytes else {
            return Ok(());
        };
        let current = payload_bytes(collection)?;
        if current.saturating_add(incoming) > max {
            return Err(invalid(format!(
                "Max payload storage size limit of {}MB reached!",
                megabytes(max)
            )));
        }
        Ok(())
    }

    /// Whether payload sizes matter at all (to skip encoding payloads when they do not).
    pub fn limits_payload_bytes(&self) -> bool {
        self.config.max_collection_payload_size_bytes.is_some()
    }

    /// The points of an upsert: vectors (shapes, storage), payload storage.
    pub fn check_upsert(
        &self,
        collection: &Collection,
        points: &[PointInsert],
    ) -> Result<(), Error> {
        self.check_vectors(collection, points.iter().map(|p| &p.vectors))?;
        if self.limits_payload_bytes() {
            let incoming = points.iter().map(|p| json_bytes(p.payload.as_ref())).sum();
            self.check_payload_bytes(collection, incoming)?;
        }
        Ok(())
    }

    /// The `limit` of a read (hits, records, groups, facet values).
    pub fn check_limit(&self, n: usize) -> Result<(), Error> {
        limit(n, self.config.max_query_limit, "limit")
    }

    /// Search parameters of one stage: `hnsw_ef`, `exact`, `oversampling`.
    pub fn check_params(&self, params: &SearchParams) -> Result<(), Error> {
        if let Some(oversampling) = params.quantization.and_then(|q| q.oversampling) {
            limit(
                oversampling,
                self.config.search_max_oversampling,
                "oversampling",
            )?;
        }
        if let Some(ef) = params.hnsw_ef {
            limit(ef, self.config.search_max_hnsw_ef, "hnsw_ef")?;
        }
        self.check_exact(params.exact)
    }

    /// `exact: true` when `search_allow_exact` is false.
    pub fn check_exact(&self, exact: bool) -> Result<(), Error> {
        if exact && self.config.search_allow_exact == Some(false) {
            return Err(forbidden(
                "Exact search disabled!".into(),
                "Set exact=false.".into(),
            ));
        }
        Ok(())
    }

    /// A query and its prefetches: limits (the root's only when `root_limit`: a grouped query's
    /// limit is Quiver's, the groups are checked instead), parameters and filters.
    pub fn check_query<I>(&self, request: &QueryRequest<I>, root_limit: bool) -> Result<(), Error> {
        if root_limit {
            self.check_limit(request.limit)?;
        }
        self.check_params(&request.params)?;
        self.check_filter(request.filter.as_ref(), Use::Read)?;
        self.check_formula(request.query.as_ref())?;
        self.check_prefetches(&request.prefetch)
    }

    fn check_prefetches<I>(&self, list: &[Prefetch<I>]) -> Result<(), Error> {
        for p in list {
            self.check_limit(p.limit)?;
            self.check_params(&p.params)?;
            self.check_filter(p.filter.as_ref(), Use::Read)?;
            self.check_formula(p.query.as_ref())?;
            self.check_prefetches(&p.prefetch)?;
        }
        Ok(())
    }

    /// A formula reads payload keys of every candidate: with unindexed reads off, Qdrant wants each
    /// one indexed as it is read (a number by an integer or float index, `geo_distance` by a geo
    /// one, `datetime_key` by a datetime one, a condition as in a filter).
    fn check_formula<I>(&self, query: Option<&Query<I>>) -> Result<(), Error> {
        let Some(Query::Formula(formula)) = query else {
            return Ok(());
        };
        if self.config.unindexed_filtering_retrieve != Some(false) {
            return Ok(());
        }
        if let Some((key, types)) = self.unindexed_expression_key(&formula.expression) {
            let names: Vec<_> = types.iter().map(|t| t.name()).collect();
            return Err(forbidden(
                format!(
                    "Index required but not found for \"{key}\" of one of the following types: \
                     [{}]",
                    names.join(", ")
                ),
                "Create an index for this key or use a different formula expression.".into(),
            ));
        }
        Ok(())
    }

    /// The first payload key of the expression without an index of a type that serves it.
    fn unindexed_expression_key(&self, e: &Expression) -> Option<(String, Vec<PayloadSchemaType>)> {
        use PayloadSchemaType as T;
        let (key, wanted) = match e {
            Expression::Variable(Variable::Payload(key)) => (key, vec![T::Integer, T::Float]),
            Expression::GeoDistance { to, .. } => (to, vec![T::Geo]),
            Expression::DatetimeKey(key) => (key, vec![T::Datetime]),
            Expression::Condition(c) => {
                let filter = Filter {
                    must: Some(quiver_engine::filter::OneOrMany::One(c.clone())),
                    ..Filter::default()
                };
                return self.unindexed_key(&filter, "");
            }
            Expression::Mult(v) | Expression::Sum(v) => {
                return v.iter().find_map(|e| self.unindexed_expression_key(e))
            }
            Expression::Neg(e)
            | Expression::Abs(e)
            | Expression::Sqrt(e)
            | Expression::Exp(e)
            | Expression::Log10(e)
            | Expression::Ln(e) => return self.unindexed_expression_key(e),
            Expression::Div { left, right, .. } => {
                return self
                    .unindexed_expression_key(left)
                    .or_else(|| self.unindexed_expression_key(right))
            }
            Expression::Pow { base, exponent } => {
                return self
                    .unindexed_expression_key(base)
                    .or_else(|| self.unindexed_expression_key(exponent))
            }
            Expression::Decay(d) => {
                return self.unindexed_expression_key(&d.x).or_else(|| {
                    d.target
                        .as_ref()
                        .and_then(|t| self.unindexed_expression_key(t))
                })
            }
            Expression::Constant(_)
            | Expression::Variable(Variable::Score(_))
            | Expression::Datetime(_) => return None,
        };
        match self.indexed(key) {
            Some(t) if wanted.contains(&t) => None,
            _ => Some((key.clone(), wanted)),
        }
    }

    /// A grouped read: the number of groups is its limit; `group_by` needs a `match` index when
    /// unindexed reads are off.
    pub fn check_groups(&self, groups: usize, group_by: &str) -> Result<(), Error> {
        self.check_limit(groups)?;
        if self.config.unindexed_filtering_retrieve == Some(false) {
            match self.indexed(group_by) {
                None => {
                    return Err(forbidden(
                        format!("Index required but not found for \"{group_by}\""),
                        "Create an index supporting `match` for this key.".into(),
                    ))
                }
                Some(t) if !MATCH_TYPES.contains(&t) => {
                    return Err(forbidden(
                        format!("Index of type \"{}\" found for \"{group_by}\"", t.name()),
                        "Create an index supporting `match` for this key.".into(),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A filter: unindexed keys (by `use_`'s switch), condition count and condition size.
    pub fn check_filter(&self, filter: Option<&Filter>, use_: Use) -> Result<(), Error> {
        let Some(filter) = filter else {
            return Ok(());
        };
        let allow = match use_ {
            Use::Read => self.config.unindexed_filtering_retrieve,
            Use::Write => self.config.unindexed_filtering_update,
        };
        if allow == Some(false) {
            if let Some((key, types)) = self.unindexed_key(filter, "") {
                let names: Vec<_> = types.iter().map(|t| t.name()).collect();
                return Err(forbidden(
                    format!(
                        "Index required but not found for \"{key}\" of one of the following \
                         types: [{}]",
                        names.join(", ")
                    ),
                    "Create an index for this key or use a different filter.".into(),
                ));
            }
        }
        if let Some(max) = self.config.filter_max_conditions {
            let n = conditions_count(filter);
            if n > max {
                return Err(forbidden(
                    format!("Filter condition limit reached ({n} > {max})"),
                    "Reduce the amount of conditions of your filter.".into(),
                ));
            }
        }
        if let Some(max) = self.config.condition_max_size {
            let n = max_condition_size(filter);
            if n > max {
                return Err(forbidden(
                    format!("Condition size limit reached ({n} > {max})"),
                    "Reduce the size of your condition.".into(),
                ));
            }
        }
        Ok(())
    }

    /// The filter of a write's selector.
    pub fn check_selector(&self, selector: &PointsSelector) -> Result<(), Error> {
        match selector {
            PointsSelector::Filter(f) => self.check_filter(Some(f), Use::Write),
            PointsSelector::Ids(_) => Ok(()),
        }
    }

    /// Points in one upsert or vector update.
    pub fn check_batch(&self, n: usize, name: &str) -> Result<(), Error> {
        limit(n, self.config.upsert_max_batchsize, name)
    }

    /// Points an upsert adds: the collection may not grow past `max_points_count`. Ids that
    /// already exist replace points and do not count.
    pub fn check_growth(
        &self,
        collection: &Collection,
        points: &[PointInsert],
    ) -> Result<(), Error> {
        let Some(max) = self.config.max_points_count else {
            return Ok(());
        };
        let current = collection.count(None)?;
        if current + points.len() <= max {
            return Ok(());
        }
        let mut ids: Vec<_> = points.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        let existing = collection
            .retrieve(&ids, &WithPayload::None, &WithVectors::None)?
            .len();
        if current + ids.len() - existing > max {
            return Err(Error::Invalid(format!(
                "Max points count limit of {max} reached!"
            )));
        }
        Ok(())
    }

    /// Every operation of a batch update: sizes and write filters of each, growth, vectors and
    /// payload bytes of all together; then the write tokens of all (so a refused batch costs none).
    pub fn check_operations(
        &self,
        collection: &Collection,
        ops: &[UpdateOperation],
    ) -> Result<(), Error> {
        let mut upserted = Vec::new();
        let mut vectors = Vec::new();
        let mut payload = 0usize;
        let mut cost = 0usize;
        for op in ops {
            match op {
                UpdateOperation::Upsert { points, conditions } => {
                    self.check_batch(points.len(), "upsert limit")?;
                    self.check_filter(conditions.update_filter.as_ref(), Use::Write)?;
                    upserted.extend(points.iter().cloned());
                    vectors.extend(points.iter().map(|p| &p.vectors));
                    if self.limits_payload_bytes() {
                        payload += points
                            .iter()
                            .map(|p| json_bytes(p.payload.as_ref()))
                            .sum::<usize>();
                    }
                    cost += points.len();
                }
                UpdateOperation::Payload { selector, op } => {
                    self.check_selector(selector)?;
                    let selected = self.selector_cost(collection, selector)?;
                    if self.limits_payload_bytes() {
                        payload += selected * payload_op_bytes(op);
                    }
                    cost += selected;
                }
                UpdateOperation::Delete(selector)
                | UpdateOperation::DeleteVectors { selector, .. } => {
                    self.check_selector(selector)?;
                    cost += self.selector_cost(collection, selector)?;
                }
                UpdateOperation::UpdateVectors {
                    points,
                    update_filter,
                } => {
                    self.check_batch(points.len(), "update limit")?;
                    self.check_filter(update_filter.as_ref(), Use::Write)?;
                    vectors.extend(points.iter().map(|p| &p.vectors));
                    cost += points.len();
                }
            }
        }
        self.check_growth(collection, &upserted)?;
        self.check_vectors(collection, vectors)?;
        if payload > 0 {
            self.check_payload_bytes(collection, payload)?;
        }
        self.charge_write(cost.max(1))
    }

    /// The index type of `key`, if it has one (`a[]` and `a` name the same field).
    fn indexed(&self, key: &str) -> Option<PayloadSchemaType> {
        let bare = key.replace("[]", "");
        self.schema
            .iter()
            .find(|(k, _)| k.as_str() == key || k.replace("[]", "") == bare)
            .map(|(_, s)| s.data_type())
    }

    /// The first key of the filter without an index of a type that answers its condition, with
    /// those types. `prefix` is the path of the enclosing `nested` arrays.
    fn unindexed_key(
        &self,
        filter: &Filter,
        prefix: &str,
    ) -> Option<(String, Vec<PayloadSchemaType>)> {
        for condition in conditions(filter) {
            let found = match condition {
                Condition::Field(field) => {
                    let key = format!("{prefix}{}", field.key);
                    let wanted = field_types(field);
                    match self.indexed(&key) {
                        Some(t) if wanted.contains(&t) => None,
                        _ => Some((key, wanted)),
                    }
                }
                Condition::IsEmpty(c) => self.any_index(format!("{prefix}{}", c.is_empty.key)),
                Condition::IsNull(c) => self.any_index(format!("{prefix}{}", c.is_null.key)),
                Condition::Nested(n) => {
                    self.unindexed_key(&n.nested.filter, &format!("{prefix}{}[].", n.nested.key))
                }
                Condition::Filter(f) => self.unindexed_key(f, prefix),
                Condition::HasId(_) | Condition::HasVector(_) => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn any_index(&self, key: String) -> Option<(String, Vec<PayloadSchemaType>)> {
        match self.indexed(&key) {
            Some(_) => None,
            None => Some((key, PayloadSchemaType::ALL.to_vec())),
        }
    }
}

/// The token buckets of every collection with a rate limit, by name. Process-wide (not per
/// `AppState`) because [`StrictMode::of`] sees only the collection; `identity` tells a collection
/// from another of the same name created after it.
static LIMITERS: LazyLock<Mutex<HashMap<String, Limiters>>> = LazyLock::new(Default::default);

struct Limiters {
    identity: usize,
    limits: (Option<usize>, Option<usize>),
    read: Option<TokenBucket>,
    write: Option<TokenBucket>,
}

impl Limiters {
    fn new(identity: usize, limits: (Option<usize>, Option<usize>)) -> Self {
        Limiters {
            identity,
            limits,
            read: None,
            write: None,
        }
    }
}

/// Qdrant's rate limiter: a bucket of one minute's tokens, full at first (a burst of a minute's
/// worth passes), refilled continuously.
struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

enum Refusal {
    /// More than the bucket ever holds: waiting cannot help.
    TooLarge,
    /// Not enough now; enough after `retry_after` seconds.
    Wait { available: f64, retry_after: u64 },
}

impl TokenBucket {
    fn new(per_minute: usize) -> Self {
        TokenBucket {
            capacity: per_minute as f64,
            per_second: per_minute as f64 / 60.0,
            tokens: per_minute as f64,
            last: Instant::now(),
        }
    }

    fn try_consume(&mut self, cost: usize) -> Result<(), Refusal> {
        let cost = cost as f64;
        if cost > self.capacity {
            return Err(Refusal::TooLarge);
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= cost {
            self.tokens -= cost;
            return Ok(());
        }
        let retry_after = ((cost - self.tokens) / self.per_second).ceil().max(1.0) as u64;
        Err(Refusal::Wait {
            available: self.tokens,
            retry_after,
        })
    }
}

/// Read tokens of a scroll, count, facet or matrix: Qdrant's base cost of one plus one per
/// filter condition.
pub fn read_cost(filter: Option<&Filter>) -> usize {
    1 + filter.map_or(0, conditions_count)
}

/// Read tokens of a query: one plus its filter's conditions, and the same for each prefetch.
pub fn query_cost<I>(request: &QueryRequest<I>) -> usize {
    fn prefetch_cost<I>(list: &[Prefetch<I>]) -> usize {
        list.iter()
            .map(|p| read_cost(p.filter.as_ref()) + prefetch_cost(&p.prefetch))
            .sum()
    }
    read_cost(request.filter.as_ref()) + prefetch_cost(&request.prefetch)
}

/// Bytes of one vector as the storage estimate counts it: 4 per component of a dense vector or of
/// each row of a multi-vector, 8 per non-zero of a sparse one (an index and a weight).
fn vector_bytes(vector: &Vector) -> usize {
    match vector {
        Vector::Dense(v) => v.len() * 4,
        Vector::Multi(rows) => rows.iter().map(|r| r.len() * 4).sum(),
        Vector::Sparse(s) => s.indices.len() * 8,
    }
}

/// The collection's vector storage, estimated without reading vectors: every live point counted
/// with a full row of each dense vector (4 bytes per dimension, as the engine counts vectors for
/// sealing). A multi-vector counts one row per point and sparse vectors count nothing, since
/// their sizes vary per point; Qdrant sums its storages' own estimates instead.
fn estimated_vector_bytes(collection: &Collection) -> Result<usize, Error> {
    let config = collection.config();
    let per_point: usize = config.vectors.values().map(|v| v.size * 4).sum();
    Ok(collection.count(None)?.saturating_mul(per_point))
}

/// The collection's payloads, JSON-encoded, summed over every live point. It reads every payload:
/// exact, but a pass over the collection on each checked write (Qdrant caches an estimate).
fn payload_bytes(collection: &Collection) -> Result<usize, Error> {
    let mut total = 0usize;
    let mut offset = None;
    loop {
        let page = collection.scroll(&ScrollRequest {
            filter: None,
            offset,
            limit: 4096,
            with_payload: WithPayload::All,
            with_vectors: WithVectors::None,
        })?;
        total += page
            .points
            .iter()
            .map(|r| json_bytes(r.payload.as_ref()))
            .sum::<usize>();
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => return Ok(total),
        }
    }
}

/// Bytes of a payload as JSON (an absent or empty one counts nothing).
fn json_bytes(payload: Option<&quiver_engine::point::Payload>) -> usize {
    match payload {
        Some(p) if !p.is_empty() => serde_json::to_vec(p).map_or(0, |v| v.len()),
        _ => 0,
    }
}

/// Bytes a payload change may add to each point it selects (a merge is counted whole).
pub fn payload_op_bytes(op: &quiver_engine::point::PayloadOp) -> usize {
    use quiver_engine::point::PayloadOp;
    match op {
        PayloadOp::Set { payload, .. } | PayloadOp::Overwrite(payload) => json_bytes(Some(payload)),
        PayloadOp::DeleteKeys(_) | PayloadOp::Clear => 0,
    }
}

/// Qdrant writes the limit in megabytes as an `f32`.
fn megabytes(bytes: usize) -> f32 {
    bytes as f32 / (1024.0 * 1024.0)
}

/// Index types that answer a `match` on a value.
const MATCH_TYPES: [PayloadSchemaType; 4] = [
    PayloadSchemaType::Keyword,
    PayloadSchemaType::Integer,
    PayloadSchemaType::Bool,
    PayloadSchemaType::Uuid,
];

/// The index types that answer a field condition.
fn field_types(field: &quiver_engine::filter::FieldCondition) -> Vec<PayloadSchemaType> {
    use PayloadSchemaType as T;
    let mut types = Vec::new();
    if let Some(m) = &field.match_ {
        types.extend(match m {
            Match::Value { .. } | Match::Any { .. } | Match::Except { .. } => MATCH_TYPES.to_vec(),
            Match::Text { .. } | Match::TextAny { .. } | Match::Phrase { .. } => vec![T::Text],
        });
    }
    if let Some(r) = &field.range {
        types.extend(match r {
            RangeCondition::Number(_) => vec![T::Integer, T::Float],
            RangeCondition::Datetime(_) => vec![T::Datetime],
        });
    }
    if field.geo_radius.is_some() || field.geo_bounding_box.is_some() || field.geo_polygon.is_some()
    {
        types.push(T::Geo);
    }
    if field.values_count.is_some() || field.is_empty.is_some() || field.is_null.is_some() {
        types.extend(T::ALL);
    }
    types.sort();
    types.dedup();
    types
}

/// The conditions of a filter, every clause.
fn conditions(filter: &Filter) -> impl Iterator<Item = &Condition> {
    [&filter.must, &filter.should, &filter.must_not]
        .into_iter()
        .flatten()
        .flat_map(|c| c.as_slice())
        .chain(filter.min_should.iter().flat_map(|m| m.conditions.iter()))
}

/// Conditions of a filter, those of nested filters included.
fn conditions_count(filter: &Filter) -> usize {
    conditions(filter)
        .map(|c| match c {
            Condition::Filter(f) => conditions_count(f),
            Condition::Nested(n) => conditions_count(&n.nested.filter),
            _ => 1,
        })
        .sum()
}

/// The most values one condition of the filter lists.
fn max_condition_size(filter: &Filter) -> usize {
    conditions(filter)
        .map(|c| match c {
            Condition::Filter(f) => max_condition_size(f),
            Condition::Nested(n) => max_condition_size(&n.nested.filter),
            Condition::HasId(h) => h.has_id.len(),
            Condition::Field(field) => match &field.match_ {
                Some(Match::Any { any }) => any.len(),
                Some(Match::Except { except }) => except.len(),
                _ => 0,
            },
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_starts_full_and_refills_a_minutes_worth_per_minute() {
        let mut bucket = TokenBucket::new(6);
        assert!(bucket.try_consume(4).is_ok());
        assert!(bucket.try_consume(2).is_ok());
        match bucket.try_consume(1) {
            Err(Refusal::Wait {
                available,
                retry_after,
            }) => {
                assert!(available < 0.01, "{available}");
                // 6 a minute: one token every 10 s.
                assert_eq!(retry_after, 10);
            }
            _ => panic!("an empty bucket refuses"),
        }
        // 20 s later two tokens are back, and never more than the minute's worth.
        bucket.last -= Duration::from_secs(20);
        assert!(bucket.try_consume(2).is_ok());
        assert!(bucket.try_consume(1).is_err());
        bucket.last -= Duration::from_secs(3600);
        assert!(bucket.try_consume(6).is_ok());
        assert!(bucket.try_consume(1).is_err());
        // More than the bucket holds never passes, whatever the wait.
        assert!(matches!(bucket.try_consume(7), Err(Refusal::TooLarge)));
    }

    #[test]
    fn parse_takes_every_field_and_names_unknown_ones() {
        let config = parse(Some(serde_json::json!({
            "enabled": true,
            "max_timeout": 5,
            "multivector_config": {"m": {"max_vectors": 2}},
            "sparse_config": null
        })))
        .unwrap()
        .unwrap();
        assert_eq!(config.max_timeout, Some(5));
        assert_eq!(config.multivector_config.unwrap()["m"].max_vectors, Some(2));
        let err = parse(Some(serde_json::json!({"max_mystery": 1}))).unwrap_err();
        assert!(err.to_string().contains("max_mystery"), "{err}");
        let err = parse(Some(serde_json::json!({"read_rate_limit": 0}))).unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err}");
    }

    #[test]
    fn read_costs_count_filter_conditions() {
        let filter: Filter = serde_json::from_value(serde_json::json!({"must": [
            {"key": "a", "match": {"value": 1}},
            {"should": [{"key": "b", "match": {"value": 2}}, {"key": "c", "match": {"value": 3}}]}
        ]}))
        .unwrap();
        assert_eq!(read_cost(None), 1);
        assert_eq!(read_cost(Some(&filter)), 4);
    }
}
