//! Reads that aggregate or order by a payload field's values: facets (points per value) and
//! `order_by` (points in the order of their values). Both need a payload index on the field, as in
//! Qdrant, so the schema says which values count.
//!
//! A sealed segment's keyword and integer indexes answer a facet without parsing a payload per value;
//! the other segments (and `bool` or `uuid` fields) are read point by point. `order_by` walks the
//! field's range index of each segment in the requested order and stops once it has enough points,
//! as Qdrant answers it from the index.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::field_index::build::SortKey;
use super::field_index::{self, for_each_scalar, FieldIndex, IndexRead, SegmentFilter};
use super::read;
use super::segment::{check_with_vectors, View};
use super::state::SegmentSet;
use crate::config::CollectionConfig;
use crate::filter::{integer_key, Datetime, Filter};
use crate::payload_schema::{PayloadSchema, PayloadSchemaType};
use crate::point::{OrderValue, Record, WithPayload, WithVectors};
use crate::query::{Direction, FacetHit, FacetRequest, FacetValue, OrderBy};
use crate::{Error, PointId, Result};

/// The index types a facet can count.
const FACET_TYPES: [PayloadSchemaType; 4] = [
    PayloadSchemaType::Keyword,
    PayloadSchemaType::Integer,
    PayloadSchemaType::Bool,
    PayloadSchemaType::Uuid,
];

/// The index types `order_by` can order by (Qdrant's range-capable ones).
const RANGE_TYPES: [PayloadSchemaType; 3] = [
    PayloadSchemaType::Integer,
    PayloadSchemaType::Float,
    PayloadSchemaType::Datetime,
];

/// The type of `key`'s index if it is one of `allowed`.
fn indexed_as(
    schema: &PayloadSchema,
    key: &str,
    allowed: &[PayloadSchemaType],
) -> Option<PayloadSchemaType> {
    schema
        .get(key)
        .map(|s| s.data_type())
        .filter(|t| allowed.contains(t))
}

/// The facet value a payload scalar stands for under an index of type `kind`.
fn facet_value(kind: PayloadSchemaType, v: &Value) -> Option<FacetValue> {
    if !kind.indexes(v) {
        return None;
    }
    match v {
        Value::String(s) => Some(FacetValue::Keyword(s.clone())),
        Value::Number(n) => integer_key(n).map(FacetValue::Integer),
        Value::Bool(b) => Some(FacetValue::Bool(*b)),
        _ => None,
    }
}

/// Counts the points per value of `request.key`: most frequent first, then by value.
pub(crate) fn facet(set: &SegmentSet, request: &FacetRequest) -> Result<Vec<FacetHit>> {
    let Some(kind) = indexed_as(&set.schema, &request.key, &FACET_TYPES) else {
        return Err(Error::InvalidInput(format!(
            "No appropriate index for faceting: `{}`. Please create one to facet on this field \
             (a keyword, integer, bool or uuid payload index).",
            request.key
        )));
    };
    // Indexes are built before the views are taken: a build reads every payload of its segment, and
    // views hold the tombstone locks that writers need.
    field_index::warm(set, request.filter.as_ref());
    let by_index = matches!(
        kind,
        PayloadSchemaType::Keyword | PayloadSchemaType::Integer
    );
    let built: Vec<Arc<FieldIndex>> = if by_index {
        set.sealed
            .iter()
            .map(|seg| seg.field_index(&request.key, kind, None))
            .collect()
    } else {
        Vec::new()
    };
    let views = set.views();
    let mut counts: HashMap<FacetValue, usize> = HashMap::new();
    for (si, v) in views.iter().enumerate() {
        let filter = SegmentFilter::new(v, request.filter.as_ref(), &set.schema);
        let index: Option<&dyn IndexRead> = match v {
            View::Sealed { .. } => built.get(si).map(|ix| &**ix as &dyn IndexRead),
            View::Mem { data, .. } if by_index => data
                .field_indexes
                .get(&request.key, kind)
                .map(|ix| ix as &dyn IndexRead),
            View::Mem { .. } => None,
        };
        if let Some(index) = index {
            index.for_each_value(&mut |value, offsets| {
                let n = offsets
                    .iter()
                    .filter(|&&o| v.is_live(o) && filter.passes(v, o))
                    .count();
                if n > 0 {
                    *counts.entry(value).or_default() += n;
                }
            });
            continue;
        }
        for off in 0..v.len() as u32 {
            if !v.is_live(off) || !filter.passes(v, off) {
                continue;
            }
            let mut values = HashSet::new();
            for_each_scalar(&v.payload(off), &request.key, &mut |s| {
                values.extend(facet_value(kind, s));
            });
            for value in values {
                *counts.entry(value).or_default() += 1;
            }
        }
    }
    let mut hits: Vec<FacetHit> = counts
        .into_iter()
        .map(|(value, count)| FacetHit { value, count })
        .collect();
    hits.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    hits.truncate(request.limit);
    Ok(hits)
}

/// The value of `order_by`'s field a payload scalar stands for under an index of type `kind`: the
/// values the index keys (a datetime as a datetime `range` parses it, in whole microseconds).
fn order_value(kind: PayloadSchemaType, v: &Value) -> Option<OrderValue> {
    match (kind, v) {
        (PayloadSchemaType::Integer, Value::Number(n)) => integer_key(n).map(OrderValue::Int),
        (PayloadSchemaType::Float, Value::Number(n)) => n.as_f64().map(OrderValue::Float),
        (PayloadSchemaType::Datetime, Value::String(s)) => Datetime::parse(s)
            .ok()
            .map(|t| OrderValue::Int(t.0.timestamp_micros())),
        _ => None,
    }
}

/// The value a number key of an index of type `kind` stands for.
fn key_value(kind: PayloadSchemaType, k: u64) -> OrderValue {
    match kind {
        PayloadSchemaType::Float => OrderValue::Float(SortKey::to_f64(k)),
        _ => OrderValue::Int(SortKey::to_i64(k)),
    }
}

/// Checks that `order_by`'s key has a range-capable index and returns its type.
pub(crate) fn order_by_kind(
    schema: &PayloadSchema,
    order_by: &OrderBy,
) -> Result<PayloadSchemaType> {
    indexed_as(schema, &order_by.key, &RANGE_TYPES).ok_or_else(|| {
        Error::InvalidInput(format!(
            "No range index for `order_by` key: `{}`. Please create one to use `order_by`. \
             Integer, float and datetime payload indexes support it.",
            order_by.key
        ))
    })
}

/// One value of one point: the value, the point's id, its segment (index into the views) and
/// offset.
type Entry = (OrderValue, PointId, usize, u32);

/// What `ordered` asks of every segment.
struct OrderWalk<'a> {
    kind: PayloadSchemaType,
    key: &'a str,
    start: Option<OrderValue>,
    desc: bool,
    limit: usize,
    only: Option<&'a HashSet<PointId>>,
}

impl OrderWalk<'_> {
    /// A value is not before `start_from` in the walk's direction (`start_from` is inclusive).
    fn wanted(&self, value: &OrderValue) -> bool {
        self.start.is_none_or(|s| {
            let c = value.cmp_value(&s);
            if self.desc {
                c.is_le()
            } else {
                c.is_ge()
            }
        })
    }

    /// The point at `off` is live, among `only` and passes the filter.
    fn admits(&self, v: &View<'_>, filter: &SegmentFilter<'_>, off: u32) -> bool {
        v.is_live(off)
            && self.only.is_none_or(|ids| ids.contains(&v.id(off)))
            && filter.passes(v, off)
    }

    /// The segment's first `limit` entries in the walk's order and every entry tied with the last of
    /// them, read from the index: its keys are walked in the requested direction from `start_from`,
    /// and the walk stops at the end of the key where `limit` entries are reached (ties are broken by
    /// id, which the merge of the segments sorts by, so every point of the boundary key is kept).
    fn by_index(
        &self,
        index: &dyn IndexRead,
        si: usize,
        v: &View<'_>,
        filter: &SegmentFilter<'_>,
    ) -> Vec<Entry> {
        let mut out = Vec::new();
        if self.limit == 0 {
            return out;
        }
        let kind = self.kind;
        // Ascending, the walk starts at the first key at or above `start_from`; descending, at the
        // last key at or below it, the key before the first one above it.
        let split = |k: u64| match self.start {
            None => !self.desc,
            Some(s) => {
                let c = key_value(kind, k).cmp_value(&s);
                if self.desc {
                    c.is_gt()
                } else {
                    c.is_ge()
                }
            }
        };
        index.walk_numbers(self.desc, &split, &mut |k, offsets| {
            let value = key_value(kind, k);
            for &off in offsets {
                if self.admits(v, filter, off) {
                    out.push((value, v.id(off), si, off));
                }
            }
            out.len() < self.limit
        });
        out
    }

    /// The segment's entries, read from its payloads: every value of every point admitted.
    fn by_payload(&self, si: usize, v: &View<'_>, filter: &SegmentFilter<'_>) -> Vec<Entry> {
        let mut out = Vec::new();
        for off in 0..v.len() as u32 {
            if !self.admits(v, filter, off) {
                continue;
            }
            let id = v.id(off);
            let mut values: Vec<OrderValue> = Vec::new();
            for_each_scalar(&v.payload(off), self.key, &mut |s| {
                values.extend(order_value(self.kind, s));
            });
            values.sort_by(OrderValue::cmp_value);
            values.dedup_by(|a, b| a.cmp_value(b).is_eq());
            out.extend(
                values
                    .into_iter()
                    .filter(|value| self.wanted(value))
                    .map(|value| (value, id, si, off)),
            );
        }
        out
    }
}

/// The first `limit` (value, point) pairs of the points that pass `filter` (and are among `only`, when
/// given), in `order_by`'s order; ties go by id in the same direction. A point appears once per
/// distinct value it holds. Each segment is read from its index of the key (see
/// [`OrderWalk::by_index`]), which parses no payload.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ordered(
    config: &CollectionConfig,
    set: &SegmentSet,
    filter: Option<&Filter>,
    order_by: &OrderBy,
    limit: usize,
    only: Option<&HashSet<PointId>>,
    with_payload: &WithPayload,
    with_vectors: &WithVectors,
) -> Result<Vec<Record>> {
    ordered_from(
        config,
        set,
        filter,
        order_by,
        limit,
        only,
        with_payload,
        with_vectors,
        false,
    )
}

/// The payload-reading `order_by` that the index walk replaced, which the tests compare it with.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn ordered_by_payloads(
    config: &CollectionConfig,
    set: &SegmentSet,
    filter: Option<&Filter>,
    order_by: &OrderBy,
    limit: usize,
    only: Option<&HashSet<PointId>>,
    with_payload: &WithPayload,
    with_vectors: &WithVectors,
) -> Result<Vec<Record>> {
    ordered_from(
        config,
        set,
        filter,
        order_by,
        limit,
        only,
        with_payload,
        with_vectors,
        true,
    )
}

/// [`ordered`], with every segment read from its payloads under `payloads_only`.
#[allow(clippy::too_many_arguments)]
fn ordered_from(
    config: &CollectionConfig,
    set: &SegmentSet,
    filter: Option<&Filter>,
    order_by: &OrderBy,
    limit: usize,
    only: Option<&HashSet<PointId>>,
    with_payload: &WithPayload,
    with_vectors: &WithVectors,
    payloads_only: bool,
) -> Result<Vec<Record>> {
    let kind = order_by_kind(&set.schema, order_by)?;
    check_with_vectors(config, with_vectors)?;
    let walk = OrderWalk {
        kind,
        key: &order_by.key,
        start: order_by.start_from.map(|s| s.value()),
        desc: order_by.direction == Direction::Desc,
        limit,
        only,
    };
    // Indexes are built before the views are taken: a build (a sealed segment without the file)
    // reads every payload of its segment, and views hold the tombstone locks that writers need.
    field_index::warm(set, filter);
    let built: Vec<Arc<FieldIndex>> = set
        .sealed
        .iter()
        .map(|seg| seg.field_index(&order_by.key, kind, None))
        .collect();
    let views = set.views();
    let mut entries: Vec<Entry> = Vec::new();
    for (si, v) in views.iter().enumerate() {
        let seg_filter = SegmentFilter::new(v, filter, &set.schema);
        let index: Option<&dyn IndexRead> = match v {
            View::Sealed { .. } => built.get(si).map(|ix| &**ix as &dyn IndexRead),
            // A frozen segment (being sealed) has no index of a field indexed since it froze.
            View::Mem { data, .. } => data
                .field_indexes
                .get(&order_by.key, kind)
                .map(|ix| ix as &dyn IndexRead),
        };
        // A datetime with a part finer than microseconds has no key (ranges leave it to the
        // payload); its value here is its whole microseconds, which only its payload gives.
        let index = index
            .filter(|ix| kind != PayloadSchemaType::Datetime || ix.range_exact())
            .filter(|_| !payloads_only);
        entries.extend(match index {
            Some(index) => walk.by_index(index, si, v, &seg_filter),
            None => walk.by_payload(si, v, &seg_filter),
        });
    }
    entries.sort_unstable_by(|a, b| {
        let c = a.0.cmp_value(&b.0).then_with(|| a.1.cmp(&b.1));
        if walk.desc {
            c.reverse()
        } else {
            c
        }
    });
    entries.truncate(limit);
    Ok(entries
        .into_iter()
        .map(|(value, _, si, off)| {
            let mut record = read::record(config, &views[si], off, with_payload, with_vectors);
            record.order_value = Some(value);
            record
        })
        .collect())
}

#[cfg(test)]
mod order_tests;
