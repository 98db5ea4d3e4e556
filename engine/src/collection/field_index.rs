//! Payload field indexes of sealed segments, built in memory from the segment's payloads the first time
//! a field is asked for and kept for the segment's life (its points never change; tombstones are
//! applied when the index is read). They count the points that have a value for the collection info,
//! and answer `match` conditions on keyword and integer fields without parsing a payload per point.
//!
//! Every value an index holds is found exactly the way [`crate::filter::FieldCondition::matches`]
//! finds them (the same path walk, arrays one level deep, the same integer equality), so an answer
//! from the index equals the answer from the payload.

use std::collections::HashMap;
use std::sync::Arc;

use quiver_storage::Bitmap;
use serde_json::Value;

use super::payload;
use super::segment::{Sealed, View};
use super::state::SegmentSet;
use crate::filter::{path, FieldCondition, Filter, LazyPayload, Match, MatchValue, PointChecks};
use crate::payload_schema::{PayloadSchema, PayloadSchemaType};
use crate::point::Payload;

/// One field of one sealed segment, over all its offsets (live or not).
pub(crate) struct FieldIndex {
    /// Offsets with at least one value of the indexed type.
    has_value: Bitmap,
    /// Keyword fields: each string to the ascending offsets holding it.
    keywords: HashMap<String, Vec<u32>>,
    /// Integer fields: each integer to the ascending offsets holding it.
    integers: HashMap<i64, Vec<u32>>,
}

/// Calls `f` on every scalar value at `field`, as the filters see them: a value that is an array
/// stands for its elements.
pub(crate) fn for_each_scalar(payload: &Payload, field: &str, f: &mut dyn FnMut(&Value)) {
    path::for_each_value(payload, field, &mut |v| {
        match v {
            Value::Array(items) => items.iter().for_each(&mut *f),
            other => f(other),
        }
        true
    });
}

/// Whether the payload has a value of type `kind` at `field`.
pub(crate) fn has_value(payload: &Payload, field: &str, kind: PayloadSchemaType) -> bool {
    let mut found = false;
    for_each_scalar(payload, field, &mut |v| found |= kind.indexes(v));
    found
}

impl FieldIndex {
    /// Reads every payload of the segment once.
    fn build(seg: &Sealed, field: &str, kind: PayloadSchemaType) -> FieldIndex {
        let n = seg.points.len();
        let mut index = FieldIndex {
            has_value: Bitmap::new(n),
            keywords: HashMap::new(),
            integers: HashMap::new(),
        };
        for off in 0..n as u32 {
            let payload = payload::parse(seg.points.payload(off));
            let mut any = false;
            for_each_scalar(&payload, field, &mut |v| {
                if !kind.indexes(v) {
                    return;
                }
                any = true;
                match (kind, v) {
                    (PayloadSchemaType::Keyword, Value::String(s)) => {
                        push_once(index.keywords.entry(s.clone()).or_default(), off);
                    }
                    (PayloadSchemaType::Integer, Value::Number(n)) => {
                        if let Some(i) = crate::filter::integer_key(n) {
                            push_once(index.integers.entry(i).or_default(), off);
                        }
                    }
                    _ => {}
                }
            });
            if any {
                index.has_value.set(off as usize);
            }
        }
        index
    }

    /// Calls `f` with each value the index holds and the offsets (live or not) holding it.
    pub fn for_each_value(&self, f: &mut dyn FnMut(crate::query::FacetValue, &[u32])) {
        use crate::query::FacetValue;
        for (k, offsets) in &self.keywords {
            f(FacetValue::Keyword(k.clone()), offsets);
        }
        for (i, offsets) in &self.integers {
            f(FacetValue::Integer(*i), offsets);
        }
    }

    /// Live offsets with a value.
    pub fn live_points(&self, deleted: &Bitmap) -> usize {
        self.has_value
            .iter_ones()
            .filter(|&o| !deleted.get(o))
            .count()
    }

    /// The offsets (ascending, possibly repeated across values) that hold one of `values`, or `None`
    /// when this index does not hold that kind of value and the payload must answer.
    fn offsets_of(&self, kind: PayloadSchemaType, values: &[MatchValue]) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for v in values {
            let hits = match (kind, v) {
                (PayloadSchemaType::Keyword, MatchValue::Keyword(k)) => self.keywords.get(k),
                (PayloadSchemaType::Integer, MatchValue::Integer(i)) => self.integers.get(i),
                _ => return None,
            };
            out.extend(hits.into_iter().flatten().copied());
        }
        Some(out)
    }
}

/// A value repeated within one payload (`["a", "a"]`) is listed once.
fn push_once(offsets: &mut Vec<u32>, off: u32) {
    if offsets.last() != Some(&off) {
        offsets.push(off);
    }
}

impl Sealed {
    /// The index of `field` as `kind`, built on first use.
    pub(crate) fn field_index(&self, field: &str, kind: PayloadSchemaType) -> Arc<FieldIndex> {
        let mut cache = self.field_indexes.lock();
        cache
            .entry((field.to_string(), kind))
            .or_insert_with(|| Arc::new(FieldIndex::build(self, field, kind)))
            .clone()
    }

    /// Drops the cached indexes of `field` (its schema changed).
    pub(crate) fn forget_field_index(&self, field: &str) {
        self.field_indexes.lock().retain(|(f, _), _| f != field);
    }
}

/// Live points of the whole set with a value of type `kind` at `field`.
pub(crate) fn count_points(set: &SegmentSet, field: &str, kind: PayloadSchemaType) -> usize {
    // Built before the views are taken: a build reads every payload of its segment, and views hold
    // the tombstone locks that writers need.
    let built: Vec<Arc<FieldIndex>> = set
        .sealed
        .iter()
        .map(|seg| seg.field_index(field, kind))
        .collect();
    let views = set.views();
    let sealed = built
        .iter()
        .zip(&views)
        .map(|(index, v)| index.live_points(v.deleted()));
    let mem = views[built.len()..].iter().map(|v| {
        (0..v.len() as u32)
            .filter(|&off| v.is_live(off) && has_value(&v.payload(off), field, kind))
            .count()
    });
    sealed.chain(mem).sum()
}

/// The answers an index gives for the field conditions of a filter over one sealed segment: for each
/// condition it can answer (known by its address in the filter, which the query borrows throughout),
/// the segment's offsets where it holds.
pub(crate) struct IndexedConditions {
    answers: Vec<(usize, Bitmap)>,
}

fn address(c: &FieldCondition) -> usize {
    std::ptr::from_ref(c) as usize
}

impl IndexedConditions {
    /// Looks up every `match` condition (`value` or `any`, with no other test) of `filter` whose key is
    /// an indexed keyword or integer field and whose values are of the field's type.
    pub fn prepare(
        seg: &Sealed,
        schema: &PayloadSchema,
        filter: &Filter,
    ) -> Option<IndexedConditions> {
        let mut answers = Vec::new();
        filter.for_each_field_condition(&mut |c| {
            if !c.only_match() {
                return;
            }
            let values = match &c.match_ {
                Some(Match::Value { value }) => std::slice::from_ref(value),
                Some(Match::Any { any }) => any.as_slice(),
                _ => return,
            };
            let Some(kind) = schema.get(&c.key).map(|s| s.data_type()) else {
                return;
            };
            if !matches!(
                kind,
                PayloadSchemaType::Keyword | PayloadSchemaType::Integer
            ) {
                return;
            }
            let index = seg.field_index(&c.key, kind);
            if let Some(offsets) = index.offsets_of(kind, values) {
                let mut hits = Bitmap::new(seg.points.len());
                for off in offsets {
                    hits.set(off as usize);
                }
                answers.push((address(c), hits));
            }
        });
        (!answers.is_empty()).then_some(IndexedConditions { answers })
    }

    /// The index's answer for condition `c` at `off`, if it has one.
    pub fn answer(&self, c: &FieldCondition, off: u32) -> Option<bool> {
        self.answers
            .iter()
            .find(|(a, _)| *a == address(c))
            .map(|(_, hits)| hits.get(off as usize))
    }
}

/// The indexed keyword and integer fields a filter's conditions name.
fn indexed_fields<'s>(
    schema: &'s PayloadSchema,
    filter: &Filter,
) -> Vec<(&'s str, PayloadSchemaType)> {
    let mut fields = Vec::new();
    filter.for_each_field_condition(&mut |c| {
        if let Some((field, s)) = schema.get_key_value(&c.key) {
            let kind = s.data_type();
            let usable = matches!(
                kind,
                PayloadSchemaType::Keyword | PayloadSchemaType::Integer
            );
            if usable && !fields.contains(&(field.as_str(), kind)) {
                fields.push((field.as_str(), kind));
            }
        }
    });
    fields
}

/// Builds the sealed segments' indexes that `filter` can use, before the caller takes its views: a
/// build reads every payload of its segment, and views hold the tombstone locks that writers need.
pub(crate) fn warm(set: &SegmentSet, filter: Option<&Filter>) {
    let Some(filter) = filter else { return };
    for (field, kind) in indexed_fields(&set.schema, filter) {
        for seg in &set.sealed {
            seg.field_index(field, kind);
        }
    }
}

/// A filter prepared for one segment: on a sealed segment, the conditions an index answers are looked
/// up once, and a point's payload is read only if a condition is left to it. `has_vector` asks the
/// segment's row tables, never the vectors themselves.
pub(crate) struct SegmentFilter<'f> {
    filter: Option<&'f Filter>,
    indexed: Option<IndexedConditions>,
    schema: &'f PayloadSchema,
}

impl<'f> SegmentFilter<'f> {
    /// Prepares `filter` (none passes everything) for the segment of `view`.
    pub fn new(view: &View<'_>, filter: Option<&'f Filter>, schema: &'f PayloadSchema) -> Self {
        let indexed = match (view, filter) {
            (View::Sealed { seg, .. }, Some(f)) if !schema.is_empty() => {
                IndexedConditions::prepare(seg, schema, f)
            }
            _ => None,
        };
        SegmentFilter {
            filter,
            indexed,
            schema,
        }
    }

    /// Whether the point at `off` of `view` (the view it was prepared for) passes.
    pub fn passes(&self, view: &View<'_>, off: u32) -> bool {
        let Some(filter) = self.filter else {
            return true;
        };
        let load = || view.payload(off);
        let payload = LazyPayload::new(&load);
        let answer = |c: &FieldCondition| self.indexed.as_ref().and_then(|ix| ix.answer(c, off));
        let has_vector = |name: &str| view.has_vector(name, off);
        let checks = PointChecks {
            answer: &answer,
            has_vector: &has_vector,
            schema: (!self.schema.is_empty()).then_some(self.schema),
        };
        filter.matches_with(&view.id(off), &payload, &checks)
    }
}
