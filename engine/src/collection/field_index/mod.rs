//! Payload field indexes. A sealed segment's is a file written when the segment is (see [`file`]), or
//! when an index is created over segments already sealed, and memory-mapped on open; a segment without
//! the file (sealed by an older build) builds it in memory the first time the field is asked for. Its
//! points never change; tombstones are applied when the index is read. The appendable segment keeps
//! an index of every indexed field in memory, changed with every point and payload change (see
//! [`mem`]); both are read through [`IndexRead`], which answers the conditions once for both.
//!
//! An index counts the points that have a value for the collection info, and answers `match`
//! (keyword, uuid, integer, bool), `range` (integer, float, datetime), geo (radius, bounding box,
//! polygon) and full-text (`text`, `text_any`, `phrase` on a `text` index) conditions without parsing
//! a payload per point; an index of any type answers `values_count`, `is_empty` and `is_null` on its
//! field from the shapes it keeps (see [`build::Shape`]) when no point has more than one value at the
//! field's path. Every value an index holds is found exactly the way
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
use crate::payload_schema::{PayloadSchema, PayloadSchemaType, TextIndexParams};
use crate::point::Payload;
use crate::query::FacetValue;

pub(crate) mod build;
pub(crate) mod file;
pub(crate) mod mem;
pub(crate) mod persist;

#[cfg(test)]
mod answer_tests;
#[cfg(test)]
mod mem_tests;

use build::{datetime_micros, Shape, SortKey};
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

/// The params of `field`'s index when it is a `text` one (the defaults when none were given).
pub(crate) fn text_params(schema: &PayloadSchema, field: &str) -> Option<TextIndexParams> {
    crate::filter::text_index(schema, field)
}

impl FieldIndex {
    /// An index read from its file or built in memory.
    pub fn new(bytes: IndexBytes) -> Self {
        FieldIndex { bytes }
    }

    /// Reads every payload of the segment once.
    fn build(
        seg: &Sealed,
        field: &str,
        kind: PayloadSchemaType,
        text: Option<&TextIndexParams>,
    ) -> FieldIndex {
        let data = build::build_all(
            seg.points.len(),
            &|off| payload::parse(seg.points.payload(off)),
            &[(field, kind, text)],
        );
        // Anonymous memory failing is running out of memory, which a `Vec` would abort on too.
        FieldIndex::new(IndexBytes::in_memory(&data[0]).expect("memory for a payload index"))
    }
}

impl IndexRead for FieldIndex {
    fn kind(&self) -> PayloadSchemaType {
        self.bytes.kind()
    }

    fn points(&self) -> usize {
        self.bytes.points()
    }

    fn range_exact(&self) -> bool {
        self.bytes.range_exact()
    }

    fn shapes(&self) -> Option<&[u32]> {
        self.bytes.shapes()
    }

    fn text_params(&self) -> Option<&TextIndexParams> {
        self.bytes.text_params()
    }

    fn has_value(&self) -> &[u64] {
        self.bytes.has_value()
    }

    fn string_offsets(&self, s: &str, f: &mut dyn FnMut(u32)) {
        if let Some(i) = self.bytes.find_string(s) {
            self.bytes.postings(i, i + 1).iter().for_each(|&o| f(o));
        }
    }

    fn number_offsets(&self, key: u64, f: &mut dyn FnMut(u32)) {
        if let Ok(i) = self.bytes.numbers().binary_search(&key) {
            self.bytes.postings(i, i + 1).iter().for_each(|&o| f(o));
        }
    }

    fn number_span_offsets(
        &self,
        lower: &dyn Fn(u64) -> bool,
        upper: &dyn Fn(u64) -> bool,
        f: &mut dyn FnMut(u32),
    ) {
        let keys = self.bytes.numbers();
        let start = keys.partition_point(|&k| !lower(k));
        let end = keys.partition_point(|&k| upper(k));
        if start < end {
            self.bytes.postings(start, end).iter().for_each(|&o| f(o));
        }
    }

    fn walk_numbers(
        &self,
        desc: bool,
        split: &dyn Fn(u64) -> bool,
        f: &mut dyn FnMut(u64, &[u32]) -> bool,
    ) {
        let keys = self.bytes.numbers();
        let at = keys.partition_point(|&k| !split(k));
        let mut visit = |i: usize| f(keys[i], self.bytes.postings(i, i + 1));
        if desc {
            for i in (0..at).rev() {
                if !visit(i) {
                    return;
                }
            }
        } else {
            for i in at..keys.len() {
                if !visit(i) {
                    return;
                }
            }
        }
    }

    fn word_postings(&self, q: &str, prefix: bool, f: &mut dyn FnMut(u32, u32, u32)) {
        let b = &self.bytes;
        let (from, to) = if prefix {
            // The keys starting with `q` follow the keys below it.
            (b.lower_bound(q), b.partition(|k| k < q || k.starts_with(q)))
        } else {
            b.find_string(q).map_or((0, 0), |i| (i, i + 1))
        };
        let (offs, places, at) = b.text_postings();
        for i in b.posting_span(from, to) {
            f(offs[i], places[i], at[i]);
        }
    }

    fn geo_points(&self, f: &mut dyn FnMut(u32, f64, f64)) {
        let b = &self.bytes;
        let mut lons = b.longitudes();
        for (i, &lat) in b.numbers().iter().enumerate() {
            let lat = SortKey::to_f64(lat);
            for &off in b.postings(i, i + 1) {
                let lon = lons
                    .next()
                    .expect("a longitude per posting, checked at open");
                f(off, lat, lon);
            }
        }
    }

    fn for_each_value(&self, f: &mut dyn FnMut(FacetValue, &[u32])) {
        let b = &self.bytes;
        for i in 0..b.key_count() {
            let value = if build::keyed_by_string(b.kind()) {
                string_facet(b.kind(), b.string(i))
            } else {
                number_facet(b.kind(), b.numbers()[i])
            };
            if let Some(value) = value {
                f(value, b.postings(i, i + 1));
            }
        }
    }
}

/// A facet's value for string key `s` of an index of `kind`.
pub(crate) fn string_facet(kind: PayloadSchemaType, s: &str) -> Option<FacetValue> {
    matches!(kind, PayloadSchemaType::Keyword | PayloadSchemaType::Uuid)
        .then(|| FacetValue::Keyword(s.to_owned()))
}

/// A facet's value for number key `k` of an index of `kind`.
pub(crate) fn number_facet(kind: PayloadSchemaType, k: u64) -> Option<FacetValue> {
    match kind {
        PayloadSchemaType::Integer => Some(FacetValue::Integer(SortKey::to_i64(k))),
        PayloadSchemaType::Bool => Some(FacetValue::Bool(SortKey::to_i64(k) != 0)),
        _ => None,
    }
}

/// A field index as the filters read it, whatever holds it: a sealed segment's file
/// ([`FieldIndex`]) or the appendable segment's index kept in memory ([`build::FieldIndexData`],
/// see [`mem`]). The first methods read the keys; the provided ones answer conditions from them, once
/// for both.
pub(crate) trait IndexRead {
    fn kind(&self) -> PayloadSchemaType;

    /// How many offsets the index covers (live or not).
    fn points(&self) -> usize;

    /// Every value a `range` on the field tests is keyed.
    fn range_exact(&self) -> bool;

    /// Each offset's [`Shape`], when they answer exactly (at most one value per offset).
    fn shapes(&self) -> Option<&[u32]>;

    /// Text: the params its words were made with; `None` when it holds no words.
    fn text_params(&self) -> Option<&TextIndexParams>;

    /// The words of the bitmap of offsets with a value of the indexed type.
    fn has_value(&self) -> &[u64];

    /// Calls `f` with each offset holding string key `s`.
    fn string_offsets(&self, s: &str, f: &mut dyn FnMut(u32));

    /// Calls `f` with each offset holding number key `key`.
    fn number_offsets(&self, key: u64, f: &mut dyn FnMut(u32));

    /// Calls `f` with each offset holding a number key `k` for which `lower(k)` and `upper(k)` hold:
    /// over ascending keys, `lower` is false and then true, `upper` true and then false (`lower` so
    /// over every `u64` from the first key to the last, as in [`IndexRead::walk_numbers`]).
    fn number_span_offsets(
        &self,
        lower: &dyn Fn(u64) -> bool,
        upper: &dyn Fn(u64) -> bool,
        f: &mut dyn FnMut(u32),
    );

    /// Numbers, in key order from a split: ascending from the first key `split` holds for, or under
    /// `desc` descending from the last key it does not hold for, calls `f` with each key and the
    /// offsets holding it (ascending, live or not) until `f` returns false. `split` is false and then
    /// true over ascending `u64`s from the first key to the last (over the values the keys stand for:
    /// every `u64` between two keys stands for a value between theirs).
    fn walk_numbers(
        &self,
        desc: bool,
        split: &dyn Fn(u64) -> bool,
        f: &mut dyn FnMut(u64, &[u32]) -> bool,
    );

    /// Text: calls `f` with each posting (offset, place of the string among the field's values,
    /// place of the word in it) of word `q`, or under `prefix` of every word starting with `q`.
    fn word_postings(&self, q: &str, prefix: bool, f: &mut dyn FnMut(u32, u32, u32));

    /// Geo: calls `f` with each posting's offset, latitude and longitude.
    fn geo_points(&self, f: &mut dyn FnMut(u32, f64, f64));

    /// Calls `f` with each value the index holds that a facet counts, and the offsets (live or not)
    /// holding it.
    fn for_each_value(&self, f: &mut dyn FnMut(FacetValue, &[u32]));

    /// Whether a `text` index's words were made with the params `text` (the defaults when `None`);
    /// true for every other type.
    fn words_made_with(&self, text: Option<&TextIndexParams>) -> bool {
        if self.kind() != PayloadSchemaType::Text {
            return true;
        }
        let default = TextIndexParams::default();
        let text = text.unwrap_or(&default);
        match (self.text_params(), text.analysis()) {
            (Some(stored), Ok(analysis)) => {
                stored == text || stored.analysis().is_ok_and(|a| a == analysis)
            }
            // Params that do not parse make no words either way.
            (None, Err(_)) => true,
            _ => false,
        }
    }

    /// Live offsets with a value.
    fn live_points(&self, deleted: &Bitmap) -> usize {
        let dead = deleted.words();
        self.has_value()
            .iter()
            .enumerate()
            .map(|(i, &w)| (w & !dead.get(i).copied().unwrap_or(0)).count_ones() as usize)
            .sum()
    }

    /// The offsets (live or not) where condition `c` holds, or `None` when the index cannot tell and
    /// the payload must answer. `text` is the field's `text` index params in the schema now (the
    /// payload check tokenizes with them): words made with other params are not used.
    fn answer(&self, c: &FieldCondition, text: Option<&TextIndexParams>) -> Option<Bitmap> {
        if c.only_match() {
            let values = match c.match_.as_ref()? {
                Match::Value { value } => std::slice::from_ref(value),
                Match::Any { any } => any.as_slice(),
                Match::Text { text: q } => return self.text_hits(TextMode::All, q, text),
                Match::TextAny { text_any } => {
                    return self.text_hits(TextMode::Any, text_any, text)
                }
                Match::Phrase { phrase } => return self.text_hits(TextMode::Phrase, phrase, text),
                Match::Except { .. } => return None,
            };
            return self.match_hits(values);
        }
        if let Some(test) = shape_test(c) {
            return self.shape_hits(&test);
        }
        if c.only_range() {
            return self.range_hits(c.range.as_ref()?);
        }
        if c.only_geo() && self.kind() == PayloadSchemaType::Geo {
            return Some(self.geo_hits(c));
        }
        None
    }

    /// The offsets where `{"is_empty": {"key": …}}` on the field holds (missing, null or `[]`), when
    /// the shapes answer exactly.
    fn is_empty(&self) -> Option<Bitmap> {
        self.shape_hits(&|s| s.is_none_or(|s| s.count == 0))
    }

    /// The offsets where `{"is_null": {"key": …}}` on the field holds (null; `[null]` is not), when
    /// the shapes answer exactly.
    fn is_null(&self) -> Option<Bitmap> {
        self.shape_hits(&|s| s.is_some_and(|s| s.null))
    }

    /// The offsets whose [`Shape`] passes `test`, when the shapes answer exactly.
    fn shape_hits(&self, test: &dyn Fn(Option<ShapeOf>) -> bool) -> Option<Bitmap> {
        let shapes = self.shapes()?;
        let mut hits = Bitmap::new(self.points());
        for (off, &shape) in shapes.iter().enumerate() {
            let shape = (shape != Shape::MISSING).then_some(ShapeOf {
                count: (shape & Shape::COUNT) as usize,
                null: shape & Shape::NULL != 0,
                holds_null: shape & Shape::HOLDS_NULL != 0,
            });
            if test(shape) {
                hits.set(off);
            }
        }
        Some(hits)
    }

    /// The offsets with a string at the field that passes a full-text `match` (see `filter/text.rs`),
    /// from the words of a `text` index made with the params `current` names.
    fn text_hits(
        &self,
        mode: TextMode,
        query: &str,
        current: Option<&TextIndexParams>,
    ) -> Option<Bitmap> {
        let stored = self.text_params()?;
        let current = current?;
        let analysis = current.analysis().ok()?;
        if stored != current && stored.analysis().ok()? != analysis {
            return None;
        }
        let analyzer = quiver_text::Analyzer::new(&analysis);
        let query = analyzer.query_tokens(query);
        let mut hits = Bitmap::new(self.points());
        if query.is_empty() {
            return Some(hits);
        }
        // Under `prefix`, a query word matches every word it starts.
        let prefix = analyzer.tokenizer() == quiver_text::TokenizerKind::Prefix;
        // Each query word's occurrences as (offset, string place, word place − `shift`).
        let occurrences = |q: &str, shift: u32| -> Vec<(u32, u32, u32)> {
            let mut out = Vec::new();
            self.word_postings(q, prefix, &mut |off, place, at| {
                if at >= shift {
                    out.push((off, place, at - shift));
                }
            });
            out.sort_unstable();
            out.dedup();
            out
        };
        let intersect = |sets: Vec<Vec<(u32, u32, u32)>>| -> Vec<(u32, u32, u32)> {
            let mut sets = sets.into_iter();
            let mut acc = sets.next().unwrap_or_default();
            for set in sets {
                acc.retain(|x| set.binary_search(x).is_ok());
            }
            acc
        };
        let found = match mode {
            TextMode::Any => query.iter().flat_map(|q| occurrences(q, 0)).collect(),
            TextMode::All => intersect(
                query
                    .iter()
                    .map(|q| {
                        let mut strings: Vec<_> = occurrences(q, 0)
                            .into_iter()
                            .map(|(o, p, _)| (o, p, 0))
                            .collect();
                        strings.dedup();
                        strings
                    })
                    .collect(),
            ),
            TextMode::Phrase => intersect(
                query
                    .iter()
                    .enumerate()
                    .map(|(j, q)| occurrences(q, j as u32))
                    .collect(),
            ),
        };
        for (off, _, _) in found {
            hits.set(off as usize);
        }
        Some(hits)
    }

    /// The offsets with a point that one of the condition's geo shapes contains: every point is
    /// tested, from the index's coordinates instead of the payloads.
    fn geo_hits(&self, c: &FieldCondition) -> Bitmap {
        let mut hits = Bitmap::new(self.points());
        self.geo_points(&mut |off, lat, lon| {
            let p = crate::filter::GeoPoint { lon, lat };
            let inside = c.geo_radius.as_ref().is_some_and(|g| g.contains(p))
                || c.geo_bounding_box.as_ref().is_some_and(|g| g.contains(p))
                || c.geo_polygon.as_ref().is_some_and(|g| g.contains(p));
            if inside {
                hits.set(off as usize);
            }
        });
        hits
    }

    /// The offsets holding one of `values`, if every value is of a kind this index holds all of.
    fn match_hits(&self, values: &[MatchValue]) -> Option<Bitmap> {
        enum Key<'v> {
            String(&'v str),
            Number(u64),
        }
        let mut keys = Vec::with_capacity(values.len());
        for v in values {
            keys.push(match (self.kind(), v) {
                (PayloadSchemaType::Keyword, MatchValue::Keyword(k)) => Key::String(k),
                // The index holds only strings that parse as UUIDs: another string may be anywhere.
                (PayloadSchemaType::Uuid, MatchValue::Keyword(k))
                    if uuid::Uuid::parse_str(k).is_ok() =>
                {
                    Key::String(k)
                }
                (PayloadSchemaType::Integer, MatchValue::Integer(i)) => {
                    Key::Number(SortKey::from_i64(*i))
                }
                (PayloadSchemaType::Bool, MatchValue::Bool(x)) => {
                    Key::Number(SortKey::from_i64(i64::from(*x)))
                }
                _ => return None,
            });
        }
        let mut hits = Bitmap::new(self.points());
        let mut set = |off: u32| {
            hits.set(off as usize);
        };
        for key in keys {
            match key {
                Key::String(s) => self.string_offsets(s, &mut set),
                Key::Number(k) => self.number_offsets(k, &mut set),
            }
        }
        Some(hits)
    }

    /// The offsets with a value within `range`, if the index holds every value it could pass.
    fn range_hits(&self, range: &RangeCondition) -> Option<Bitmap> {
        if !self.range_exact() {
            return None;
        }
        let mut hits = Bitmap::new(self.points());
        let mut set = |off: u32| {
            hits.set(off as usize);
        };
        match (self.kind(), range) {
            (PayloadSchemaType::Integer | PayloadSchemaType::Float, RangeCondition::Number(r)) => {
                // Compared as the payload's number reads as f64, as the unindexed range compares.
                let kind = self.kind();
                let value = |k: u64| match kind {
                    PayloadSchemaType::Integer => SortKey::to_i64(k) as f64,
                    _ => SortKey::to_f64(k),
                };
                let lower = |k: u64| {
                    let x = value(k);
                    r.gt.is_none_or(|g| x > g) && r.gte.is_none_or(|g| x >= g)
                };
                let upper = |k: u64| {
                    let x = value(k);
                    r.lt.is_none_or(|l| x < l) && r.lte.is_none_or(|l| x <= l)
                };
                self.number_span_offsets(&lower, &upper, &mut set);
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
                let lower = |k: u64| {
                    let x = SortKey::to_i64(k);
                    gt.is_none_or(|g| x > g) && gte.is_none_or(|g| x >= g)
                };
                let upper = |k: u64| {
                    let x = SortKey::to_i64(k);
                    lt.is_none_or(|l| x < l) && lte.is_none_or(|l| x <= l)
                };
                self.number_span_offsets(&lower, &upper, &mut set);
            }
            _ => return None,
        }
        Some(hits)
    }
}

/// A condition whose one test is `values_count`, `is_empty` or `is_null`, as a test of the point's
/// [`ShapeOf`] (`None`: no value at the field), answering as
/// [`FieldCondition::matches_in`] does.
fn shape_test(c: &FieldCondition) -> Option<impl Fn(Option<ShapeOf>) -> bool + '_> {
    let tests = [
        c.values_count.is_some(),
        c.is_empty.is_some(),
        c.is_null.is_some(),
    ];
    let only = c.match_.is_none()
        && c.range.is_none()
        && c.geo_radius.is_none()
        && c.geo_bounding_box.is_none()
        && c.geo_polygon.is_none()
        && tests.iter().filter(|&&t| t).count() == 1;
    only.then_some(move |shape: Option<ShapeOf>| match shape {
        // A missing key passes only `is_empty: true` and `is_null: false`.
        None => c.is_empty.or(c.is_null.map(|null| !null)).unwrap_or(false),
        Some(s) => {
            if let Some(count) = &c.values_count {
                count.check(s.count)
            } else if let Some(empty) = c.is_empty {
                (s.count == 0) == empty
            } else {
                (s.null || s.holds_null) == c.is_null.unwrap_or(false)
            }
        }
    })
}

/// Which query words a string must hold (as `filter/text.rs` has it).
#[derive(Clone, Copy)]
pub(crate) enum TextMode {
    All,
    Any,
    Phrase,
}

/// A point's value at a field as `values_count`, `is_empty` and `is_null` read it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShapeOf {
    /// What `values_count` counts: an array's length, 0 for null, else 1.
    pub count: usize,
    /// The value is null.
    pub null: bool,
    /// The value is an array holding a null.
    pub holds_null: bool,
}

impl Sealed {
    /// The index of `field` as `kind`: the one read from the segment's files, or one built in memory
    /// on first use (a `text` one with `text`, its params in the schema).
    pub(crate) fn field_index(
        &self,
        field: &str,
        kind: PayloadSchemaType,
        text: Option<&TextIndexParams>,
    ) -> Arc<FieldIndex> {
        if let Some(index) = self.field_indexes.lock().get(&(field.to_string(), kind)) {
            return index.clone();
        }
        // Built outside the lock: a build reads every payload of the segment. Two racing builds give
        // the same index; the first stored wins.
        let built = Arc::new(FieldIndex::build(self, field, kind, text));
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
    let text = text_params(&set.schema, field);
    let built: Vec<Arc<FieldIndex>> = set
        .sealed
        .iter()
        .map(|seg| seg.field_index(field, kind, text.as_ref()))
        .collect();
    let views = set.views();
    let sealed = built
        .iter()
        .zip(&views)
        .map(|(index, v)| index.live_points(v.deleted()));
    let mem = views[built.len()..].iter().map(|v| {
        let index = match v {
            View::Mem { data, .. } => data.field_indexes.get(field, kind),
            View::Sealed { .. } => None,
        };
        match index {
            Some(index) => index.live_points(v.deleted()),
            // A frozen segment without the index (created while it was being sealed).
            None => (0..v.len() as u32)
                .filter(|&off| v.is_live(off) && has_value(&v.payload(off), field, kind))
                .count(),
        }
    });
    sealed.chain(mem).sum()
}

/// A segment's index of a field, by name, type and (for a `text` index) the schema's params.
pub(crate) type IndexLookup<'a, R> =
    dyn Fn(&str, PayloadSchemaType, Option<&TextIndexParams>) -> Option<R> + 'a;

/// The answers the indexes give for the field conditions of a filter over one segment: for
/// each condition they can answer (known by its address in the filter, which the query borrows
/// throughout), the segment's offsets where it holds; and when they answer every condition, the
/// offsets that pass the whole filter.
pub(crate) struct IndexedConditions {
    answers: Vec<(usize, Bitmap)>,
    /// The answers to `is_empty` / `is_null` conditions (by the condition's address).
    emptiness: Vec<(usize, Bitmap)>,
    passing: Option<Bitmap>,
}

fn address<T>(c: &T) -> usize {
    std::ptr::from_ref(c) as usize
}

impl IndexedConditions {
    /// Looks up every field condition of `filter` on an indexed field that its index answers, the
    /// segment's index of a field being what `lookup` gives for its name, type and text params.
    pub fn prepare<R>(
        lookup: &IndexLookup<'_, R>,
        view: &View<'_>,
        schema: &PayloadSchema,
        filter: &Filter,
    ) -> Option<IndexedConditions>
    where
        R: std::ops::Deref,
        R::Target: IndexRead,
    {
        let mut answers = Vec::new();
        let index = |key: &str| {
            let kind = schema.get(key)?.data_type();
            let text = text_params(schema, key);
            Some((lookup(key, kind, text.as_ref())?, text))
        };
        filter.for_each_field_condition(&mut |c| {
            let Some((ix, text)) = index(&c.key) else {
                return;
            };
            if let Some(hits) = ix.answer(c, text.as_ref()) {
                answers.push((address(c), hits));
            }
        });
        let mut emptiness = Vec::new();
        filter.for_each_emptiness_condition(&mut |c| {
            let hits = match c {
                Condition::IsEmpty(e) => index(&e.is_empty.key).and_then(|(ix, _)| ix.is_empty()),
                Condition::IsNull(n) => index(&n.is_null.key).and_then(|(ix, _)| ix.is_null()),
                _ => None,
            };
            if let Some(hits) = hits {
                emptiness.push((address(c), hits));
            }
        });
        if answers.is_empty() && emptiness.is_empty() {
            return None;
        }
        let mut ix = IndexedConditions {
            answers,
            emptiness,
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

    fn emptiness_hits(&self, c: &Condition) -> Option<&Bitmap> {
        self.emptiness
            .iter()
            .find(|(a, _)| *a == address(c))
            .map(|(_, hits)| hits)
    }

    /// The index's answer for an `is_empty` / `is_null` condition at `off`, if it has one.
    pub fn answer_emptiness(&self, c: &Condition, off: u32) -> Option<bool> {
        self.emptiness_hits(c).map(|hits| hits.get(off as usize))
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
                Condition::IsEmpty(_) | Condition::IsNull(_) => self.emptiness_hits(c).cloned(),
                Condition::Nested(_) => None,
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
    let mut add = |key: &str| {
        if let Some((field, s)) = schema.get_key_value(key) {
            let kind = s.data_type();
            if !fields.contains(&(field.as_str(), kind)) {
                fields.push((field.as_str(), kind));
            }
        }
    };
    filter.for_each_field_condition(&mut |c| add(&c.key));
    filter.for_each_emptiness_condition(&mut |c| match c {
        Condition::IsEmpty(e) => add(&e.is_empty.key),
        Condition::IsNull(n) => add(&n.is_null.key),
        _ => {}
    });
    fields
}

/// Builds the sealed segments' indexes that `filter` can use and that are not read from files, before
/// the caller takes its views: a build reads every payload of its segment, and views hold the
/// tombstone locks that writers need.
pub(crate) fn warm(set: &SegmentSet, filter: Option<&Filter>) {
    let Some(filter) = filter else { return };
    for (field, kind) in indexed_fields(&set.schema, filter) {
        let text = text_params(&set.schema, field);
        for seg in &set.sealed {
            seg.field_index(field, kind, text.as_ref());
        }
    }
}

/// A filter prepared for one segment: the conditions a payload index of the segment answers are looked
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
            (_, Some(_)) if schema.is_empty() => None,
            (View::Sealed { seg, .. }, Some(f)) => IndexedConditions::prepare(
                &|key, kind, text| Some(seg.field_index(key, kind, text)),
                view,
                schema,
                f,
            ),
            (View::Mem { data, .. }, Some(f)) => IndexedConditions::prepare(
                &|key, kind, _| data.field_indexes.get(key, kind),
                view,
                schema,
                f,
            ),
            (_, None) => None,
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
        let answer_emptiness = |c: &Condition| {
            self.indexed
                .as_ref()
                .and_then(|ix| ix.answer_emptiness(c, off))
        };
        let has_vector = |name: &str| view.has_vector(name, off);
        let checks = PointChecks {
            answer: &answer,
            answer_emptiness: &answer_emptiness,
            has_vector: &has_vector,
            schema: (!self.schema.is_empty()).then_some(self.schema),
        };
        filter.matches_with(&view.id(off), &payload, &checks)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// An index of `field` as `kind` over these payloads, and the condition's answer from it.
    fn answer(kind: PayloadSchemaType, payloads: &[Value], condition: Value) -> Option<Vec<u32>> {
        let parsed: Vec<Payload> = payloads
            .iter()
            .map(|p| p.as_object().unwrap().clone())
            .collect();
        let index = index_of(kind, &parsed, "k", None);
        let c: FieldCondition = serde_json::from_value(condition).unwrap();
        let hits = index.answer(&c, None)?;
        // Whatever the index answers, reading the payloads answers alike.
        for (off, p) in parsed.iter().enumerate() {
            assert_eq!(hits.get(off), c.matches(p), "{c:?} at {off}");
        }
        Some(hits.iter_ones().map(|o| o as u32).collect())
    }

    /// Engine options for tests that compare answers: deterministic builds on one thread.
    pub(crate) fn test_options() -> crate::collection::EngineOptions {
        crate::collection::EngineOptions {
            deterministic: true,
            build_threads: 1,
            ..Default::default()
        }
    }

    /// Opens `dir` with [`test_options`] and creates collection `t` of one 2-d Dot vector.
    pub(crate) fn test_collection(
        dir: &std::path::Path,
    ) -> (
        crate::collection::Collections,
        Arc<crate::collection::Collection>,
    ) {
        let cs = crate::collection::Collections::open(dir, test_options()).unwrap();
        let c = cs
            .create(
                "t",
                crate::config::CollectionConfig::single(2, crate::config::Distance::Dot),
            )
            .unwrap();
        (cs, c)
    }

    /// An index of `field` as `kind` over these payloads, built in memory.
    pub(crate) fn index_of(
        kind: PayloadSchemaType,
        payloads: &[Payload],
        field: &str,
        text: Option<&TextIndexParams>,
    ) -> FieldIndex {
        let data = build::build_all(
            payloads.len(),
            &|off| payloads[off as usize].clone(),
            &[(field, kind, text)],
        );
        FieldIndex::new(IndexBytes::in_memory(&data[0]).unwrap())
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
