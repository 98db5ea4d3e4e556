//! Reads that aggregate or order by a payload field's values: facets (points per value) and
//! `order_by` (points in the order of their values). Both need a payload index on the field, as in
//! Qdrant, so the schema says which values count.
//!
//! A sealed segment's keyword and integer indexes answer a facet without parsing a payload per value;
//! the other segments (and `bool` or `uuid` fields) are read point by point. `order_by` reads the
//! payloads of the points that pass the filter.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

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

/// The value of `order_by`'s field a payload scalar stands for under an index of type `kind`.
fn order_value(kind: PayloadSchemaType, v: &Value) -> Option<OrderValue> {
    if !kind.indexes(v) {
        return None;
    }
    match (kind, v) {
        (PayloadSchemaType::Integer, Value::Number(n)) => integer_key(n).map(OrderValue::Int),
        (PayloadSchemaType::Float, Value::Number(n)) => n.as_f64().map(OrderValue::Float),
        (PayloadSchemaType::Datetime, Value::String(s)) => Datetime::parse(s)
            .ok()
            .map(|t| OrderValue::Int(t.0.timestamp_micros())),
        _ => None,
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

/// The first `limit` (value, point) pairs of the points that pass `filter` (and are among `only`, when
/// given), in `order_by`'s order; ties go by id in the same direction. A point appears once per
/// distinct value it holds.
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
    let kind = order_by_kind(&set.schema, order_by)?;
    check_with_vectors(config, with_vectors)?;
    let start = order_by.start_from.map(|s| s.value());
    let desc = order_by.direction == Direction::Desc;
    field_index::warm(set, filter);
    let views = set.views();
    let mut entries: Vec<(OrderValue, PointId, usize, u32)> = Vec::new();
    for (si, v) in views.iter().enumerate() {
        let seg_filter = SegmentFilter::new(v, filter, &set.schema);
        for off in 0..v.len() as u32 {
            if !v.is_live(off) || only.is_some_and(|ids| !ids.contains(&v.id(off))) {
                continue;
            }
            if !seg_filter.passes(v, off) {
                continue;
            }
            let id = v.id(off);
            let mut values: Vec<OrderValue> = Vec::new();
            for_each_scalar(&v.payload(off), &order_by.key, &mut |s| {
                values.extend(order_value(kind, s));
            });
            values.sort_by(OrderValue::cmp_value);
            values.dedup_by(|a, b| a.cmp_value(b).is_eq());
            for value in values {
                let wanted = start.is_none_or(|s| {
                    let c = value.cmp_value(&s);
                    if desc {
                        c.is_le()
                    } else {
                        c.is_ge()
                    }
                });
                if wanted {
                    entries.push((value, id, si, off));
                }
            }
        }
    }
    entries.sort_unstable_by(|a, b| {
        let c = a.0.cmp_value(&b.0).then_with(|| a.1.cmp(&b.1));
        if desc {
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
