//! Building a field index from a segment's payloads: every value at the field, found exactly the way
//! the filters find it (the same path walk, arrays one level deep), keyed so that a lookup or a range
//! over the keys gives the offsets the filters would pass. A sealed segment's index is built once and
//! written; the appendable segment's is kept in this form and changed point by point, a point's old
//! values taken out ([`FieldIndexData::remove`]) by the same walk that put them in.
//!
//! Keys are `u64`s whose unsigned order is the values' order (see [`SortKey`]), or strings in byte
//! order. Besides the keys, a build records whether every value a `range` would test is among them
//! ([`FieldIndexData::range_exact`]): an integer index holds only integral numbers, so a `1.5` at the
//! field leaves ranges to the payload.
//!
//! A `text` index keys the words of every string at the field, made by the filters' own text pipeline
//! ([`quiver_text::Analyzer::words`] under the index's params), each posting with the string it came
//! from (its place among the field's values) and the word's place in that string, so that `text`,
//! `text_any` and `phrase` are answered from the postings alone.
//!
//! Every index also records the shape of each point's value at the field ([`Shape`]: how many values
//! `values_count` counts, null, an array holding a null, or no value), which answers `values_count`,
//! `is_empty` and `is_null` when the field's path reaches at most one value per point.

use std::collections::BTreeMap;

use quiver_storage::Bitmap;
use serde_json::Value;

use super::for_each_scalar;
use crate::filter::{geo, integer_key, path, Datetime};
use crate::payload_schema::{PayloadSchemaType, TextIndexParams};
use crate::point::Payload;

/// A value's key in an index of numbers, bools or datetimes.
pub(crate) struct SortKey;

impl SortKey {
    /// An integer (and a bool as 0 or 1, a datetime as microseconds since the epoch).
    pub fn from_i64(v: i64) -> u64 {
        (v as u64) ^ (1 << 63)
    }

    pub fn to_i64(k: u64) -> i64 {
        (k ^ (1 << 63)) as i64
    }

    /// A float, in `f64::total_cmp` order.
    pub fn from_f64(v: f64) -> u64 {
        let bits = v.to_bits();
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        }
    }

    pub fn to_f64(k: u64) -> f64 {
        if k >> 63 == 1 {
            f64::from_bits(k & !(1 << 63))
        } else {
            f64::from_bits(!k)
        }
    }
}

/// Whether an index of this type keys its values by string.
pub(crate) fn keyed_by_string(kind: PayloadSchemaType) -> bool {
    matches!(
        kind,
        PayloadSchemaType::Keyword | PayloadSchemaType::Uuid | PayloadSchemaType::Text
    )
}

/// The microseconds of a datetime, when it has no finer part (a finer one is left to the payload).
pub(crate) fn datetime_micros(t: &Datetime) -> Option<i64> {
    t.0.timestamp_subsec_nanos()
        .is_multiple_of(1_000)
        .then(|| t.0.timestamp_micros())
}

/// The keys of one field index, with the ascending offsets holding each.
pub(crate) enum Keys {
    Numbers(BTreeMap<u64, Vec<u32>>),
    Strings(BTreeMap<String, Vec<u32>>),
    /// Geo points: keyed by latitude ([`SortKey::from_f64`]), each offset with its longitude.
    Points(BTreeMap<u64, Vec<(u32, f64)>>),
    /// Text: words, each with its occurrences as (offset, value, place of the word in the value),
    /// ascending.
    Words(BTreeMap<String, Vec<(u32, u32, u32)>>),
}

/// What `values_count`, `is_empty` and `is_null` read of one point's value at the field, as a `u32`:
/// [`Shape::MISSING`] for no value, else the count `values_count` gives it (an array its length, null
/// 0, anything else 1) with [`Shape::NULL`] set for null and [`Shape::HOLDS_NULL`] for an array
/// holding a null.
pub(crate) struct Shape;

impl Shape {
    pub const MISSING: u32 = u32::MAX;
    pub const NULL: u32 = 1 << 31;
    pub const HOLDS_NULL: u32 = 1 << 30;
    pub const COUNT: u32 = Self::HOLDS_NULL - 1;

    /// The shape of one value, `None` when its count does not fit.
    pub fn of(v: &Value) -> Option<u32> {
        Some(match v {
            Value::Null => Self::NULL,
            Value::Array(items) => {
                let n = u32::try_from(items.len())
                    .ok()
                    .filter(|&n| n <= Self::COUNT)?;
                if items.iter().any(Value::is_null) {
                    n | Self::HOLDS_NULL
                } else {
                    n
                }
            }
            _ => 1,
        })
    }
}

/// A text index's pipeline: its params as given, and the analysis they configure.
pub(crate) struct TextSpec {
    pub params: TextIndexParams,
    pub analyzer: quiver_text::Analyzer,
}

/// A field index in memory: built once before it is written (a seal, or a segment without the file),
/// or kept up to date point by point for the appendable segment ([`super::mem`]).
pub(crate) struct FieldIndexData {
    pub kind: PayloadSchemaType,
    /// Offsets with at least one value of the indexed type (what `payload_schema` counts).
    pub has_value: Bitmap,
    pub keys: Keys,
    /// How many values a `range` on the field tests are not keyed (see the module docs): counted, not
    /// flagged, so that removing a point's values can make the index exact again.
    pub inexact_values: usize,
    /// The shape of each offset's value ([`Shape`]).
    pub shapes: Vec<u32>,
    /// How many offsets have more than one value at the field's path (or one whose shape does not
    /// fit), which [`Shape`] cannot tell.
    pub inexact_shapes: usize,
    /// Text: the pipeline the words were made with; `None` (no words) when its params do not parse.
    pub text: Option<TextSpec>,
}

/// One value of a point as an index keys it.
enum Entry<'a> {
    Number(u64),
    String(&'a str),
    /// Geo: latitude key and longitude.
    Point(u64, f64),
    /// Text: a word, the place of its string among the field's values and its place in the string.
    Word(std::borrow::Cow<'a, str>, u32, u32),
    /// A value a `range` tests that the index cannot key.
    Inexact,
}

impl FieldIndexData {
    /// An empty index of `points` offsets; `text` gives a `text` index its params (the defaults
    /// when it is `None`).
    pub fn new(kind: PayloadSchemaType, points: usize, text: Option<&TextIndexParams>) -> Self {
        let text = (kind == PayloadSchemaType::Text)
            .then(|| text.cloned().unwrap_or_default())
            .and_then(|params| {
                let analysis = params.analysis().ok()?;
                Some(TextSpec {
                    params,
                    analyzer: quiver_text::Analyzer::new(&analysis),
                })
            });
        let keys = if kind == PayloadSchemaType::Text {
            Keys::Words(BTreeMap::new())
        } else if keyed_by_string(kind) {
            Keys::Strings(BTreeMap::new())
        } else if kind == PayloadSchemaType::Geo {
            Keys::Points(BTreeMap::new())
        } else {
            Keys::Numbers(BTreeMap::new())
        };
        FieldIndexData {
            kind,
            has_value: Bitmap::new(points),
            keys,
            inexact_values: 0,
            shapes: Vec::with_capacity(points),
            inexact_shapes: 0,
            text,
        }
    }

    /// Every value a `range` on the field tests is keyed.
    pub fn range_exact(&self) -> bool {
        self.inexact_values == 0
    }

    /// No offset has more than one value at the field's path, so `shapes` answers exactly.
    pub fn shapes_exact(&self) -> bool {
        self.inexact_shapes == 0
    }

    /// Adds the values of the payload at `off`, which holds none in the index (a new offset, or one
    /// whose previous payload was [`FieldIndexData::remove`]d). Ascending offsets append.
    pub fn add(&mut self, off: u32, payload: &Payload, field: &str) {
        let w = self.walk(payload, field, &mut |keys, e| insert(keys, off, e));
        let at = off as usize;
        while self.has_value.len() <= at {
            self.has_value.push(false);
        }
        if w.any {
            self.has_value.set(at);
        }
        self.inexact_values += w.inexact;
        self.inexact_shapes += usize::from(!w.shape_exact);
        if self.shapes.len() <= at {
            self.shapes.resize(at, Shape::MISSING);
            self.shapes.push(w.shape);
        } else {
            self.shapes[at] = w.shape;
        }
    }

    /// Takes out the values of `payload`, which is what was added at `off`, before the point's payload
    /// changes in place.
    pub fn remove(&mut self, off: u32, payload: &Payload, field: &str) {
        let w = self.walk(payload, field, &mut |keys, e| remove(keys, off, e));
        let at = off as usize;
        if at < self.has_value.len() {
            self.has_value.clear(at);
        }
        self.inexact_values -= w.inexact;
        self.inexact_shapes -= usize::from(!w.shape_exact);
        if let Some(shape) = self.shapes.get_mut(at) {
            *shape = Shape::MISSING;
        }
    }

    /// Calls `f` with the keys and each entry of the payload's values at `field`.
    fn walk(
        &mut self,
        payload: &Payload,
        field: &str,
        f: &mut dyn FnMut(&mut Keys, Entry<'_>),
    ) -> Walked {
        let kind = self.kind;
        let text = self.text.as_ref();
        let keys = &mut self.keys;
        let mut inexact = 0usize;
        let mut any = false;
        // The place of each scalar among the field's values, which text postings keep.
        let mut place = 0u32;
        for_each_scalar(payload, field, &mut |v| {
            any |= kind.indexes(v);
            entries(kind, text, v, place, &mut |e| {
                if matches!(e, Entry::Inexact) {
                    inexact += 1;
                }
                f(keys, e)
            });
            place += 1;
        });
        // The shape of the value, walked as `values_count`, `is_empty` and `is_null` walk it.
        let mut shape = Shape::MISSING;
        let mut values = 0;
        path::for_each_value(payload, field, &mut |v| {
            values += 1;
            shape = Shape::of(v).unwrap_or(Shape::MISSING);
            true
        });
        Walked {
            any,
            inexact,
            shape,
            shape_exact: !(values > 1 || (values == 1 && shape == Shape::MISSING)),
        }
    }
}

/// What [`FieldIndexData::walk`] found of one payload besides its entries.
struct Walked {
    /// A value is of the indexed type.
    any: bool,
    /// Values a `range` tests that have no key.
    inexact: usize,
    shape: u32,
    /// [`Walked::shape`] answers exactly (at most one value at the path).
    shape_exact: bool,
}

/// Calls `f` with the entries of one scalar `v`, the `place`-th value at the field, under an index of
/// `kind` (`text`: its pipeline, `None` when its params do not parse).
fn entries<'a>(
    kind: PayloadSchemaType,
    text: Option<&TextSpec>,
    v: &'a Value,
    place: u32,
    f: &mut dyn FnMut(Entry<'a>),
) {
    let key = match (kind, v) {
        (PayloadSchemaType::Text, Value::String(s)) => {
            if let Some(text) = text {
                for (at, word) in text.analyzer.words(s).into_iter().enumerate() {
                    f(Entry::Word(word, place, at as u32));
                }
            }
            return;
        }
        (PayloadSchemaType::Keyword, Value::String(s)) => return f(Entry::String(s)),
        (PayloadSchemaType::Uuid, Value::String(s)) => {
            if uuid::Uuid::parse_str(s).is_ok() {
                f(Entry::String(s));
            }
            return;
        }
        (PayloadSchemaType::Integer, Value::Number(n)) => match integer_key(n) {
            Some(i) => SortKey::from_i64(i),
            None => return f(Entry::Inexact),
        },
        (PayloadSchemaType::Float, Value::Number(n)) => match n.as_f64() {
            Some(x) => SortKey::from_f64(x),
            None => return f(Entry::Inexact),
        },
        (PayloadSchemaType::Bool, Value::Bool(b)) => SortKey::from_i64(i64::from(*b)),
        (PayloadSchemaType::Geo, v) => {
            // Every point a geo condition reads, in range or not (as `geo::point_of` reads it).
            if let Some(p) = geo::point_of(v) {
                f(Entry::Point(SortKey::from_f64(p.lat), p.lon));
            }
            return;
        }
        (PayloadSchemaType::Datetime, Value::String(s)) => {
            // Parsed as a datetime range parses it, whatever `kind.indexes` says of its form.
            let Ok(t) = Datetime::parse(s) else { return };
            match datetime_micros(&t) {
                Some(us) => SortKey::from_i64(us),
                None => return f(Entry::Inexact),
            }
        }
        _ => return,
    };
    f(Entry::Number(key));
}

/// Lists `off` under the entry's key: appended when it is the highest offset there (a build, or a
/// new point), else in its place; a value repeated within one payload (`["a", "a"]`) is listed once.
fn insert(keys: &mut Keys, off: u32, e: Entry<'_>) {
    fn once(offsets: &mut Vec<u32>, off: u32) {
        match offsets.last() {
            Some(&last) if last >= off => {
                if let Err(i) = offsets.binary_search(&off) {
                    offsets.insert(i, off);
                }
            }
            _ => offsets.push(off),
        }
    }
    fn sorted<T: PartialOrd + Copy>(items: &mut Vec<T>, item: T) {
        let at = items.partition_point(|x| *x <= item);
        items.insert(at, item);
    }
    match (keys, e) {
        (Keys::Numbers(map), Entry::Number(k)) => once(map.entry(k).or_default(), off),
        (Keys::Strings(map), Entry::String(s)) => match map.get_mut(s) {
            Some(offsets) => once(offsets, off),
            None => {
                map.insert(s.to_owned(), vec![off]);
            }
        },
        (Keys::Points(map), Entry::Point(lat, lon)) => {
            sorted(map.entry(lat).or_default(), (off, lon));
        }
        (Keys::Words(map), Entry::Word(word, place, at)) => match map.get_mut(word.as_ref()) {
            Some(postings) => sorted(postings, (off, place, at)),
            None => {
                map.insert(word.into_owned(), vec![(off, place, at)]);
            }
        },
        _ => {}
    }
}

/// Unlists `off` from the entry's key, and drops the key once nothing is listed under it (facets and
/// prefix lookups walk the keys).
fn remove(keys: &mut Keys, off: u32, e: Entry<'_>) {
    fn take<K, Q, T>(map: &mut BTreeMap<K, Vec<T>>, key: &Q, off: u32, of: fn(&T) -> u32)
    where
        K: Ord + std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let Some(items) = map.get_mut(key) {
            items.retain(|x| of(x) != off);
            if items.is_empty() {
                map.remove(key);
            }
        }
    }
    match (keys, e) {
        (Keys::Numbers(map), Entry::Number(k)) => take(map, &k, off, |&o| o),
        (Keys::Strings(map), Entry::String(s)) => take(map, s, off, |&o| o),
        (Keys::Points(map), Entry::Point(lat, _)) => take(map, &lat, off, |p| p.0),
        (Keys::Words(map), Entry::Word(word, _, _)) => take(map, word.as_ref(), off, |p| p.0),
        _ => {}
    }
}

/// One field to index: its name, its index's type and, for a `text` index, its params.
pub(crate) type FieldSpec<'a> = (&'a str, PayloadSchemaType, Option<&'a TextIndexParams>);

/// Builds the indexes of `fields` over `points` payloads, parsing each payload once.
pub(crate) fn build_all(
    points: usize,
    payload: &dyn Fn(u32) -> Payload,
    fields: &[FieldSpec<'_>],
) -> Vec<FieldIndexData> {
    let mut out: Vec<FieldIndexData> = fields
        .iter()
        .map(|&(_, kind, text)| FieldIndexData::new(kind, points, text))
        .collect();
    if fields.is_empty() {
        return out;
    }
    for off in 0..points as u32 {
        let p = payload(off);
        for (data, (field, _, _)) in out.iter_mut().zip(fields) {
            data.add(off, &p, field);
        }
    }
    for data in &mut out {
        data.shapes.resize(points, Shape::MISSING);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_keep_the_values_order() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in ints.windows(2) {
            assert!(SortKey::from_i64(w[0]) < SortKey::from_i64(w[1]));
        }
        assert!(ints
            .iter()
            .all(|&i| SortKey::to_i64(SortKey::from_i64(i)) == i));
        let floats = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.5,
            f64::INFINITY,
        ];
        for w in floats.windows(2) {
            assert!(SortKey::from_f64(w[0]) < SortKey::from_f64(w[1]), "{w:?}");
        }
        for f in floats {
            assert_eq!(SortKey::to_f64(SortKey::from_f64(f)).to_bits(), f.to_bits());
        }
    }
}
