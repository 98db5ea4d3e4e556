//! Qdrant's strict mode: a collection's `strict_mode_config` parsed (the fields Quiver enforces;
//! every other Qdrant field is a 400 naming it) and checked against requests before they reach the
//! engine. Refusals are Qdrant's: 403 with `Limit exceeded 100 > 10 for "limit". Help: …`; a full
//! collection is Qdrant's 400 `Max points count limit of N reached!`.
//!
//! The handlers call [`StrictMode::of`] once per request; it is `None` unless the collection has
//! `enabled: true`, so a collection without strict mode pays one config read.

use std::sync::Arc;

use serde_json::Value;

use quiver_engine::config::StrictModeConfig;
use quiver_engine::filter::{Condition, Filter, Match, RangeCondition};
use quiver_engine::payload_schema::{PayloadSchema, PayloadSchemaType};
use quiver_engine::point::{PointInsert, PointsSelector, UpdateOperation};
use quiver_engine::query::formula::{Expression, Variable};
use quiver_engine::query::{Prefetch, Query, QueryRequest, SearchParams};
use quiver_engine::{Collection, WithPayload, WithVectors};

use super::error::{invalid, Error};

/// Qdrant's `StrictModeConfig` fields Quiver does not enforce; each is refused by name.
const UNSUPPORTED: &[&str] = &[
    "max_timeout",
    "read_rate_limit",
    "write_rate_limit",
    "max_collection_vector_size_bytes",
    "max_collection_payload_size_bytes",
    "multivector_config",
    "sparse_config",
    "max_payload_index_count",
];

/// A `strict_mode_config` of a create or update body: null/absent is no change; an object is parsed
/// field by field, and a Qdrant field Quiver does not enforce is a 400 naming it.
pub fn parse(value: Option<Value>) -> Result<Option<StrictModeConfig>, Error> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid("`strict_mode_config` must be a JSON object")),
    };
    for (key, value) in &map {
        if UNSUPPORTED.contains(&key.as_str()) && !value.is_null() {
            return Err(invalid(format!(
                "`strict_mode_config.{key}` is not supported: Quiver enforces enabled, \
                 max_query_limit, unindexed_filtering_retrieve, unindexed_filtering_update, \
                 search_max_hnsw_ef, search_allow_exact, search_max_oversampling, \
                 upsert_max_batchsize, max_points_count, filter_max_conditions and \
                 condition_max_size"
            )));
        }
    }
    let known: serde_json::Map<String, Value> = map
        .into_iter()
        .filter(|(k, v)| !(UNSUPPORTED.contains(&k.as_str()) && v.is_null()))
        .collect();
    serde_json::from_value(Value::Object(known))
        .map(Some)
        .map_err(|e| invalid(format!("strict_mode_config: {e}")))
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
}

impl StrictMode {
    /// The collection's strict mode, or `None` when it has none or it is not enabled.
    pub fn of(collection: &Collection) -> Option<Self> {
        let config = collection.config().strict_mode_config.clone()?;
        config.is_enabled().then(|| StrictMode {
            config,
            schema: collection.payload_schema(),
        })
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

    /// Every operation of a batch update: sizes and write filters of each, growth of all upserts.
    pub fn check_operations(
        &self,
        collection: &Collection,
        ops: &[UpdateOperation],
    ) -> Result<(), Error> {
        let mut upserted = Vec::new();
        for op in ops {
            match op {
                UpdateOperation::Upsert { points, conditions } => {
                    self.check_batch(points.len(), "upsert limit")?;
                    self.check_filter(conditions.update_filter.as_ref(), Use::Write)?;
                    upserted.extend(points.iter().cloned());
                }
                UpdateOperation::Delete(selector)
                | UpdateOperation::Payload { selector, .. }
                | UpdateOperation::DeleteVectors { selector, .. } => {
                    self.check_selector(selector)?
                }
                UpdateOperation::UpdateVectors {
                    points,
                    update_filter,
                } => {
                    self.check_batch(points.len(), "update limit")?;
                    self.check_filter(update_filter.as_ref(), Use::Write)?;
                }
            }
        }
        self.check_growth(collection, &upserted)
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
