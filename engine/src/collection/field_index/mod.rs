//! Payload field indexes of sealed segments. Each is a file written when the segment is (see
//! [`file`]), or when an index is created over segments already sealed, and memory-mapped on open; a
//! segment without the file (sealed by an older build) builds it in memory the first time the field is
//! asked for. Its points never change; tombstones are applied when the index is read.
//!
//! An index counts the points that have a value for the collection info, and answers `match`
//! (keyword, uuid, integer, bool), `range` (integer, float, datetime) and geo (radius, bounding box,
//! polygon) conditions without parsing a payload per point. Every value an index holds is found exactly the way
//! [`crate::filter::FieldCondition::matches`] finds them (the same path walk, arrays one level deep,
//! the same integer equality), and an index answers only where it holds every value the condition
//! could pass, so an answer from the index equals the answer from the payload. A filter all of whose
//! conditions an index answers is answered for the whole segment at once: its exact cardinality is
//! what the search planner uses.

use std::sync::Arc;

use quiver_storage::Bitmap;
use serde_json::Value;

use super::payload;
use super::segment::{Sealed, View};
use super::state::SegmentSet;
use crate::filter::{
    path, Condition, FieldCondition, Filter, LazyPayload, Match, MatchValue, PointChecks,
    RangeCondition,
};
use crate::payload_schema::{PayloadSchema, PayloadSchemaType};
use crate::point::Payload;

pub(crate) mod build;
pub(crate) mod file;
pub(crate) mod persist;

use build::{datetime_micros, SortKey};
use file::IndexBytes;

/// One field of one sealed segment, over all its offsets (live or not).
pub(crate) struct FieldIndex {
    bytes: IndexBytes,
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

/// The payload types whose indexes answer conditions (a text index only counts points).
fn answers_conditions(kind: PayloadSchemaType) -> bool {
    kind != PayloadSchemaType::Text
}

impl FieldIndex {
    /// An index read from its file or built in memory.
    pub fn new(bytes: IndexBytes) -> Self {
        FieldIndex { bytes }
    }

    /// Reads every payload of the segment once.
    fn build(seg: &Sealed, field: &str, kind: PayloadSchemaType) -> FieldIndex {
        let data = build::build_all(
            seg.points.len(),
            &|off| payload::parse(seg.points.payload(off)),
            &[(field, kind)],
        );
        // Anonymous memory failing is running out of memory, which a `Vec` would abort on too.
        FieldIndex::new(IndexBytes::in_memory(&data[0]).expect("memory for a payload index"))
    }

    /// Calls `f` with each value the index holds and the offsets (live or not) holding it.
    pub fn for_each_value(&self, f: &mut dyn FnMut(crate::query::FacetValue, &[u32])) {
        use crate::query::FacetValue;
        let b = &self.bytes;
        for i in 0..b.key_count() {
            let value = match b.kind() {
                PayloadSchemaType::Keyword | PayloadSchemaType::Uuid => {
                    FacetValue::Keyword(b.string(i).to_owned())
                }
                PayloadSchemaType::Integer => FacetValue::Integer(SortKey::to_i64(b.numbers()[i])),
                PayloadSchemaType::Bool => FacetValue::Bool(SortKey::to_i64(b.numbers()[i]) != 0),
                PayloadSchemaType::Float
                | PayloadSchemaType::Datetime
                | PayloadSchemaType::Text
                | PayloadSchemaType::Geo => return,
            };
            f(value, b.postings(i, i + 1));
        }
    }

    /// Live offsets with a value.
    pub fn live_points(&self, deleted: &Bitmap) -> usize {
        let dead = deleted.words();
        self.bytes
            .has_value()
            .iter()
            .enumerate()
            .map(|(i, &w)| (w & !dead.get(i).copied().unwrap_or(0)).count_ones() as usize)
            .sum()
    }

    /// The offsets (live or not) where condition `c` holds, or `None` when the index cannot tell and
    /// the payload must answer.
    pub fn answer(&self, c: &FieldCondition) -> Option<Bitmap> {
        if c.only_match() {
            let values = match c.match_.as_ref()? {
                Match::Value { value } => std::slice::from_ref(value),
                Match::Any { any } => any.as_slice(),
                _ => return None,
            };
            return self.match_hits(values);
        }
        if c.only_range() {
            return self.range_hits(c.range.as_ref()?);
        }
        if c.only_geo() && self.bytes.kind() == PayloadSchemaType::Geo {
            return Some(self.geo_hits(c));
        }
        None
    }

    /// The offsets with a point that one of the condition's geo shapes contains: every point is
    /// tested, from the index's coordinates instead of the payloads.
    fn geo_hits(&self, c: &FieldCondition) -> Bitmap {
        let b = &self.bytes;
        let mut hits = Bitmap::new(b.points());
        let mut lons = b.longitudes();
        for (i, &lat) in b.numbers().iter().enumerate() {
            let lat = SortKey::to_f64(lat);
            for &off in b.postings(i, i + 1) {
                let lon = lons
                    .next()
                    .expect("a longitude per posting, checked at open");
                let p = crate::filter::GeoPoint { lon, lat };
                let inside = c.geo_radius.as_ref().is_some_and(|g| g.contains(p))
                    || c.geo_bounding_box.as_ref().is_some_and(|g| g.contains(p))
                    || c.geo_polygon.as_ref().is_some_and(|g| g.contains(p));
                if inside {
                    hits.set(off as usize);
                }
            }
        }
        hits
    }

    fn hits(&self, spans: impl IntoIterator<Item = (usize, usize)>) -> Bitmap {
        let mut hits = Bitmap::new(self.bytes.points());
        for (from, to) in spans {
            for &off in self.bytes.postings(from, to) {
                hits.set(off as usize);
            }
        }
        hits
    }

    /// The offsets holding one of `values`, if every value is of a kind this index holds all of.
    fn match_hits(&self, values: &[MatchValue]) -> Option<Bitmap> {
        let b = &self.bytes;
        let find_number = |k: u64| b.numbers().binary_search(&k).ok();
        let mut keys = Vec::with_capacity(values.len());
        for v in values {
            let key = match (b.kind(), v) {
                (PayloadSchemaType::Keyword, MatchValue::Keyword(k)) => b.find_string(k),
                // The index holds only strings that parse as UUIDs: another string may be anywhere.
                (PayloadSchemaType::Uuid, MatchValue::Keyword(k))
                    if uuid::Uuid::parse_str(k).is_ok() =>
                {
                    b.find_string(k)
                }
                (PayloadSchemaType::Integer, MatchValue::Integer(i)) => {
                    find_number(SortKey::from_i64(*i))
                }
                (PayloadSchemaType::Bool, MatchValue::Bool(x)) => {
                    find_number(SortKey::from_i64(i64::from(*x)))
                }
                _ => return None,
            };
            keys.extend(key);
        }
        Some(self.hits(keys.into_iter().map(|i| (i, i + 1))))
    }

    /// The offsets with a value within `range`, if the index holds every value it could pass.
    fn range_hits(&self, range: &RangeCondition) -> Option<Bitmap> {
        let b = &self.bytes;
        if !b.range_exact() {
            return None;
        }
        let keys = b.numbers();
        let (start, end) = match (b.kind(), range) {
            (PayloadSchemaType::Integer | PayloadSchemaType::Float, RangeCondition::Number(r)) => {
                // Compared as the payload's number reads as f64, as the unindexed range compares.
                let value = |k: u64| match b.kind() {
                    PayloadSchemaType::Integer => SortKey::to_i64(k) as f64,
                    _ => SortKey::to_f64(k),
                };
                let lower = |x: f64| r.gt.is_none_or(|g| x > g) && r.gte.is_none_or(|g| x >= g);
                let upper = |x: f64| r.lt.is_none_or(|l| x < l) && r.lte.is_none_or(|l| x <= l);
                (
                    keys.partition_point(|&k| !lower(value(k))),
                    keys.partition_point(|&k| upper(value(k))),
                )
            }
            (PayloadSchemaType::Datetime, RangeCondition::Datetime(r)) => {
                // Keys are whole microseconds; a bound with a finer part is left to the payload.
                let micros = |t: &Option<crate::filter::Datetime>| match t {
                    None => Some(None),
                    Some(t) => datetime_micros(t).map(Some),
                };
                let (gt, gte, lt, lte) = (
                    micros(&r.gt)?,
                    micros(&r.gte)?,
                    micros(&r.lt)?,
                    micros(&r.lte)?,
                );
                let lower = |x: i64| gt.is_none_or(|g| x > g) && gte.is_none_or(|g| x >= g);
                let upper = |x: i64| lt.is_none_or(|l| x < l) && lte.is_none_or(|l| x <= l);
                (
                    keys.partition_point(|&k| !lower(SortKey::to_i64(k))),
                    keys.partition_point(|&k| upper(SortKey::to_i64(k))),
                )
            }
            _ => return None,
        };
        Some(self.hits((start < end).then_some((start, end))))
    }
}

impl Sealed {
    /// The index of `field` as `kind`: the one read from the segment's files, or one built in memory
    /// on first use.
    pub(crate) fn field_index(&self, field: &str, kind: PayloadSchemaType) -> Arc<FieldIndex> {
        if let Some(index) = self.field_indexes.lock().get(&(field.to_string(), kind)) {
            return index.clone();
        }
        // Built outside the lock: a build reads every payload of the segment. Two racing builds give
        // the same index; the first stored wins.
        let built = Arc::new(FieldIndex::build(self, field, kind));
        self.field_indexes
            .lock()
            .entry((field.to_string(), kind))
            .or_insert(built)
            .clone()
    }

    /// Uses `index` for `field` as `kind` (read from a file of the segment).
    pub(crate) fn attach_field_index(
        &self,
        field: &str,
        kind: PayloadSchemaType,
        index: FieldIndex,
    ) {
        self.field_indexes
            .lock()
            .insert((field.to_string(), kind), Arc::new(index));
    }

    /// Drops the indexes of `field` other than the one as `keep` (its index was deleted or changed).
    pub(crate) fn forget_field_index(&self, field: &str, keep: Option<PayloadSchemaType>) {
        self.field_indexes
            .lock()
            .retain(|(f, k), _| f != field || Some(*k) == keep);
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

/// The answers the indexes give for the field conditions of a filter over one sealed segment: for
/// each condition they can answer (known by its address in the filter, which the query borrows
/// throughout), the segment's offsets where it holds; and when they answer every condition, the
/// offsets that pass the whole filter.
pub(crate) struct IndexedConditions {
    answers: Vec<(usize, Bitmap)>,
    passing: Option<Bitmap>,
}

fn address(c: &FieldCondition) -> usize {
    std::ptr::from_ref(c) as usize
}

impl IndexedConditions {
    /// Looks up every field condition of `filter` on an indexed field that its index answers.
    pub fn prepare(
        seg: &Sealed,
        view: &View<'_>,
        schema: &PayloadSchema,
        filter: &Filter,
    ) -> Option<IndexedConditions> {
        let mut answers = Vec::new();
        filter.for_each_field_condition(&mut |c| {
            let Some(kind) = schema.get(&c.key).map(|s| s.data_type()) else {
                return;
            };
            if !answers_conditions(kind) {
                return;
            }
            if let Some(hits) = seg.field_index(&c.key, kind).answer(c) {
                answers.push((address(c), hits));
            }
        });
        if answers.is_empty() {
            return None;
        }
        let mut ix = IndexedConditions {
            answers,
            passing: None,
        };
        ix.passing = ix.pass_set(filter, view);
        Some(ix)
    }

    fn hits(&self, c: &FieldCondition) -> Option<&Bitmap> {
        self.answers
            .iter()
            .find(|(a, _)| *a == address(c))
            .map(|(_, hits)| hits)
    }

    /// The index's answer for condition `c` at `off`, if it has one.
    pub fn answer(&self, c: &FieldCondition, off: u32) -> Option<bool> {
        self.hits(c).map(|hits| hits.get(off as usize))
    }

    /// The offsets of the segment that pass `filter`, when every condition in it is answered: field
    /// conditions by their indexes, `has_id` by the segment's id table and `has_vector` by its row
    /// tables (neither reads a payload).
    fn pass_set(&self, filter: &Filter, view: &View<'_>) -> Option<Bitmap> {
        let n = view.len();
        let all = || Bitmap::from_words(vec![u64::MAX; n.div_ceil(64)], n);
        let condition = |c: &Condition| -> Option<Bitmap> {
            match c {
                Condition::Field(f) => self.hits(f).cloned(),
                Condition::Filter(inner) => self.pass_set(inner, view),
                Condition::HasId(has) => {
                    let mut hits = Bitmap::new(n);
                    for off in has.has_id.iter().filter_map(|id| view.find_any(id)) {
                        hits.set(off as usize);
                    }
                    Some(hits)
                }
                Condition::HasVector(has) => {
                    let mut hits = Bitmap::new(n);
                    for off in 0..n as u32 {
                        if view.has_vector(&has.has_vector, off) {
                            hits.set(off as usize);
                        }
                    }
                    Some(hits)
                }
                Condition::IsEmpty(_) | Condition::IsNull(_) | Condition::Nested(_) => None,
            }
        };
        let combine = |a: &Bitmap, b: &Bitmap, op: fn(u64, u64) -> u64| {
            let words = a.words().iter().zip(b.words()).map(|(&x, &y)| op(x, y));
            Bitmap::from_words(words.collect(), n)
        };
        let mut out = all();
        for c in filter.must.as_ref().map_or(&[][..], |m| m.as_slice()) {
            out = combine(&out, &condition(c)?, |x, y| x & y);
        }
        let should = filter.should.as_ref().map_or(&[][..], |m| m.as_slice());
        if !should.is_empty() {
            let mut any = Bitmap::new(n);
            for c in should {
                any = combine(&any, &condition(c)?, |x, y| x | y);
            }
            out = combine(&out, &any, |x, y| x & y);
        }
        if let Some(min) = filter.min_should.as_ref().filter(|m| m.min_count > 0) {
            // Per offset, how many of the conditions hold.
            let mut held = vec![0u32; n];
            for c in &min.conditions {
                for off in condition(c)?.iter_ones() {
                    held[off] += 1;
                }
            }
            let mut enough = Bitmap::new(n);
            for (off, _) in held
                .iter()
                .enumerate()
                .filter(|(_, &h)| h as usize >= min.min_count)
            {
                enough.set(off);
            }
            out = combine(&out, &enough, |x, y| x & y);
        }
        for c in filter.must_not.as_ref().map_or(&[][..], |m| m.as_slice()) {
            out = combine(&out, &condition(c)?, |x, y| x & !y);
        }
        Some(out)
    }
}

/// The indexed fields a filter's conditions name, with the types of their indexes.
fn indexed_fields<'s>(
    schema: &'s PayloadSchema,
    filter: &Filter,
) -> Vec<(&'s str, PayloadSchemaType)> {
    let mut fields = Vec::new();
    filter.for_each_field_condition(&mut |c| {
        if let Some((field, s)) = schema.get_key_value(&c.key) {
            let kind = s.data_type();
            if answers_conditions(kind) && !fields.contains(&(field.as_str(), kind)) {
                fields.push((field.as_str(), kind));
            }
        }
    });
    fields
}

/// Builds the sealed segments' indexes that `filter` can use and that are not read from files, before
/// the caller takes its views: a build reads every payload of its segment, and views hold the
/// tombstone locks that writers need.
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
                IndexedConditions::prepare(seg, view, schema, f)
            }
            _ => None,
        };
        SegmentFilter {
            filter,
            indexed,
            schema,
        }
    }

    /// The offsets of the segment that pass (live or not), when the indexes answer the whole filter.
    fn passing(&self) -> Option<&Bitmap> {
        self.indexed.as_ref()?.passing.as_ref()
    }

    /// How many live points of `view` (the view it was prepared for) pass, when the indexes answer
    /// the whole filter: an exact count, read from the index without touching a payload.
    pub fn live_pass_count(&self, view: &View<'_>) -> Option<usize> {
        let passing = self.passing()?;
        let dead = view.deleted().words();
        Some(
            passing
                .words()
                .iter()
                .enumerate()
                .map(|(i, &w)| (w & !dead.get(i).copied().unwrap_or(0)).count_ones() as usize)
                .sum(),
        )
    }

    /// The live offsets of `view` (the view it was prepared for) that pass, ascending, when the
    /// indexes answer the whole filter: what a selective scan visits instead of every offset.
    pub fn live_passing(&self, view: &View<'_>) -> Option<Vec<u32>> {
        let passing = self.passing()?;
        let dead = view.deleted().words();
        let mut out = Vec::new();
        for (i, &w) in passing.words().iter().enumerate() {
            let mut w = w & !dead.get(i).copied().unwrap_or(0);
            while w != 0 {
                out.push((i * 64) as u32 + w.trailing_zeros());
                w &= w - 1;
            }
        }
        Some(out)
    }

    /// Whether the point at `off` of `view` (the view it was prepared for) passes.
    pub fn passes(&self, view: &View<'_>, off: u32) -> bool {
        let Some(filter) = self.filter else {
            return true;
        };
        if let Some(passing) = self.passing() {
            return passing.get(off as usize);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An index of `field` as `kind` over these payloads, and the condition's answer from it.
    fn answer(kind: PayloadSchemaType, payloads: &[Value], condition: Value) -> Option<Vec<u32>> {
        let parsed: Vec<Payload> = payloads
            .iter()
            .map(|p| p.as_object().unwrap().clone())
            .collect();
        let data = build::build_all(
            parsed.len(),
            &|off| parsed[off as usize].clone(),
            &[("k", kind)],
        );
        let index = FieldIndex::new(IndexBytes::in_memory(&data[0]).unwrap());
        let c: FieldCondition = serde_json::from_value(condition).unwrap();
        let hits = index.answer(&c)?;
        // Whatever the index answers, reading the payloads answers alike.
        for (off, p) in parsed.iter().enumerate() {
            assert_eq!(hits.get(off), c.matches(p), "{c:?} at {off}");
        }
        Some(hits.iter_ones().map(|o| o as u32).collect())
    }

    #[test]
    fn each_type_answers_what_it_holds_whole_and_leaves_the_rest_to_payloads() {
        use PayloadSchemaType::*;
        let floats = [
            json!({"k": 1.5}),
            json!({"k": [-3, 7.25]}),
            json!({"k": "2"}),
            json!({}),
        ];
        let range = |r: Value| json!({"key": "k", "range": r});
        assert_eq!(
            answer(Float, &floats, range(json!({"gt": 1.5}))),
            Some(vec![1])
        );
        assert_eq!(
            answer(Float, &floats, range(json!({"gte": -3, "lt": 2}))),
            Some(vec![0, 1])
        );
        // An integer index over a segment with a 1.5 leaves ranges to the payloads, not matches.
        assert_eq!(answer(Integer, &floats, range(json!({"gt": 1}))), None);
        let m = |v: Value| json!({"key": "k", "match": {"value": v}});
        assert_eq!(answer(Integer, &floats, m(json!(-3))), Some(vec![1]));
        let ints = [json!({"k": 4}), json!({"k": 4.0}), json!({"k": [9, 1]})];
        assert_eq!(
            answer(Integer, &ints, range(json!({"lte": 4}))),
            Some(vec![0, 1, 2])
        );
        let bools = [
            json!({"k": true}),
            json!({"k": [false]}),
            json!({"k": "true"}),
        ];
        assert_eq!(answer(Bool, &bools, m(json!(true))), Some(vec![0]));
        assert_eq!(answer(Bool, &bools, m(json!("true"))), None);
        let u = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
        let uuids = [
            json!({"k": u}),
            json!({"k": "x"}),
            json!({"k": u.to_uppercase()}),
        ];
        assert_eq!(answer(Uuid, &uuids, m(json!(u))), Some(vec![0]));
        assert_eq!(answer(Uuid, &uuids, m(json!("x"))), None);
        let times = [
            json!({"k": "2024-01-02"}),
            json!({"k": "2024-01-03T10:00:00+02:00"}),
            json!({"k": "2024-01-05 12:30"}),
            json!({"k": "later"}),
        ];
        let t = |r: Value| answer(Datetime, &times, range(r));
        assert_eq!(t(json!({"gt": "2024-01-03T08:00:00Z"})), Some(vec![2]));
        assert_eq!(t(json!({"lte": "2024-01-03T08:00:00Z"})), Some(vec![0, 1]));
        // A bound finer than the keys' microseconds is left to the payloads.
        assert_eq!(t(json!({"lt": "2024-01-03T00:00:00.0000001Z"})), None);
        let fine = [json!({"k": "2024-01-03T00:00:00.0000001Z"})];
        assert_eq!(
            answer(Datetime, &fine, range(json!({"gt": "2024-01-01"}))),
            None
        );
        let places = [
            json!({"k": {"lon": 13.4, "lat": 52.5}}),
            json!({"k": [{"lon": 2.35, "lat": 48.85}, {"lon": 200.0, "lat": 1.0}]}),
            json!({"k": {"lon": 13.5, "lat": 52.5}}),
            json!({"k": "52.5,13.4"}),
        ];
        let near = json!({"key": "k", "geo_radius": {"center": {"lon": 13.4, "lat": 52.5},
            "radius": 1000.0}});
        assert_eq!(answer(Geo, &places, near), Some(vec![0]));
        let bbox = json!({"key": "k", "geo_bounding_box": {"top_left": {"lon": 0.0, "lat": 60.0},
            "bottom_right": {"lon": 14.0, "lat": 40.0}}});
        assert_eq!(answer(Geo, &places, bbox), Some(vec![0, 1, 2]));
        let words = [json!({"k": "a"}), json!({"k": 5})];
        assert_eq!(answer(Keyword, &words, m(json!("a"))), Some(vec![0]));
        assert_eq!(answer(Keyword, &words, m(json!(5))), None);
        assert_eq!(answer(Keyword, &words, range(json!({"gt": 1}))), None);
    }
}
