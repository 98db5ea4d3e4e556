//! Payload filters in Qdrant's JSON shape: `must` / `should` / `must_not` / `min_should` over
//! conditions. A field condition tests the values at a payload key (`match`, `range` with numbers or
//! datetimes, `geo_radius`, `geo_bounding_box`, `geo_polygon`, `values_count`, and the short forms
//! `is_empty` / `is_null`); the others test the point (`has_id`, `has_vector`), a key's emptiness
//! (`is_empty`, `is_null`), the objects of an array (`nested`) or combine conditions (a filter).
//!
//! Parsing is by shape (see `filter/parse.rs`) so that a malformed condition is refused with a message that
//! names what is wrong, rather than serde's "did not match any variant".

use std::borrow::Cow;
use std::cell::OnceCell;

use serde::Serialize;
use serde_json::Value;

use crate::payload_schema::{PayloadSchema, PayloadSchemaParams, PayloadSchemaType};
use crate::point::Payload;
use crate::PointId;

mod datetime;
pub mod geo;
mod parse;
pub(crate) mod path;
mod text;

#[cfg(test)]
mod tests;

pub use datetime::Datetime;
pub use geo::{GeoBoundingBox, GeoLineString, GeoPoint, GeoPolygon, GeoRadius};

/// Either one item or a list of them (Qdrant accepts both for `must`, `should`, `must_not`). Parsed
/// by shape: a JSON array is a list (see `filter/parse.rs`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A list of conditions.
    Many(Vec<T>),
    /// A single condition.
    One(Box<T>),
}

impl<T> OneOrMany<T> {
    /// The conditions as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one.as_ref()),
            OneOrMany::Many(many) => many,
        }
    }
}

/// A boolean combination of conditions. A point passes when every `must` holds, at least one `should`
/// holds (if any are given), at least `min_count` of the `min_should` conditions hold and no
/// `must_not` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// All of these must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must: Option<OneOrMany<Condition>>,
    /// At least one of these must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub should: Option<OneOrMany<Condition>>,
    /// None of these may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_not: Option<OneOrMany<Condition>>,
    /// At least `min_count` of these must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_should: Option<MinShould>,
}

/// `{"conditions": [...], "min_count": n}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinShould {
    /// The conditions counted.
    pub conditions: Vec<Condition>,
    /// How many of them must hold (0 passes everything).
    pub min_count: usize,
}

/// One condition of a filter. Parsed by its fields (see `filter/parse.rs`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Condition {
    /// A condition on a payload field.
    Field(FieldCondition),
    /// The point's id is one of these.
    HasId(HasIdCondition),
    /// The point has a vector of this name.
    HasVector(HasVectorCondition),
    /// The field is missing, null or an empty array.
    IsEmpty(IsEmptyCondition),
    /// The field is present and null.
    IsNull(IsNullCondition),
    /// Some object of an array passes a filter.
    Nested(NestedCondition),
    /// A nested filter.
    Filter(Filter),
}

/// `{"key": "a.b", "match": …}`, `{"key": …, "range": …}`, `{"key": …, "geo_radius": …}`, …: the
/// tests given are ORed, as in Qdrant (one test per condition is the usual form).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    /// Payload key; dots walk into nested objects, arrays match when any element matches.
    pub key: String,
    /// Value match.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<Match>,
    /// Numeric or datetime range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeCondition>,
    /// A geo point within this distance of a center.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_radius: Option<GeoRadius>,
    /// A geo point inside this rectangle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_bounding_box: Option<GeoBoundingBox>,
    /// A geo point inside this polygon (and outside its holes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_polygon: Option<GeoPolygon>,
    /// The number of values at the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_count: Option<ValuesCount>,
    /// Short form of `is_empty` (`true`) or its negation (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_empty: Option<bool>,
    /// Short form of `is_null` (`true`) or its negation (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_null: Option<bool>,
}

/// A scalar a `match` compares against: keyword, integer or bool.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum MatchValue {
    /// A bool.
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// A keyword (exact string).
    Keyword(String),
}

/// The forms of `match`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Match {
    /// Equal to this value.
    Value {
        /// The value.
        value: MatchValue,
    },
    /// Equal to any of these.
    Any {
        /// The values.
        any: Vec<MatchValue>,
    },
    /// Equal to none of these.
    Except {
        /// The values.
        except: Vec<MatchValue>,
    },
    /// Full text: contains this substring; with a `text` index, contains all its words.
    Text {
        /// The text.
        text: String,
    },
    /// Full text: contains one of these words (as substrings without a `text` index).
    TextAny {
        /// The words, separated by whitespace.
        text_any: String,
    },
    /// Full text: contains this phrase; with a `text` index, its words in order and adjacent.
    Phrase {
        /// The phrase.
        phrase: String,
    },
}

/// Numeric bounds; any subset may be given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Strictly greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Greater than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// Strictly less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Less than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

/// Datetime bounds: strings in one of the formats of [`Datetime`]; any subset may be given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatetimeRange {
    /// Strictly later than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<Datetime>,
    /// Later than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<Datetime>,
    /// Strictly earlier than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<Datetime>,
    /// Earlier than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<Datetime>,
}

/// A `range`: numeric bounds test numbers; a range with a string bound is a datetime range, which
/// tests strings that parse as datetimes (Qdrant's `DatetimeRange`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RangeCondition {
    /// Numeric bounds.
    Number(Range),
    /// Datetime bounds.
    Datetime(DatetimeRange),
}

/// Bounds on the number of values at a key: an array counts its elements, null counts 0, any other
/// value 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesCount {
    /// Strictly more than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<usize>,
    /// At least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<usize>,
    /// Strictly fewer than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<usize>,
    /// At most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<usize>,
}

/// `{"has_id": [1, "uuid", …]}`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HasIdCondition {
    /// The ids.
    pub has_id: Vec<PointId>,
}

/// `{"has_vector": "name"}`; `""` names the unnamed vector.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HasVectorCondition {
    /// The vector name.
    pub has_vector: String,
}

/// `{"is_empty": {"key": …}}`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsEmptyCondition {
    /// The field.
    pub is_empty: PayloadField,
}

/// `{"is_null": {"key": …}}`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsNullCondition {
    /// The field.
    pub is_null: PayloadField,
}

/// `{"key": …}`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadField {
    /// Payload key.
    pub key: String,
}

/// `{"nested": {"key": "arr", "filter": {…}}}`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedCondition {
    /// The array and the filter its objects are tested with.
    pub nested: Nested,
}

/// The array of a nested condition and its filter.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nested {
    /// Key of an array of objects (`[]` is implied).
    pub key: String,
    /// The filter one object of the array must pass; its keys are relative to the object.
    pub filter: Filter,
}

/// A point's payload, read only when a condition needs it (a sealed segment parses it from JSON).
pub(crate) struct LazyPayload<'f, 'p> {
    cell: OnceCell<Cow<'p, Payload>>,
    load: &'f dyn Fn() -> Cow<'p, Payload>,
}

impl<'f, 'p> LazyPayload<'f, 'p> {
    /// A payload that `load` produces on first use.
    pub(crate) fn new(load: &'f dyn Fn() -> Cow<'p, Payload>) -> Self {
        LazyPayload {
            cell: OnceCell::new(),
            load,
        }
    }

    fn get(&self) -> &Payload {
        self.cell.get_or_init(|| (self.load)())
    }
}

/// What a filter may ask about a point beyond its id and payload, answered by the segment that holds
/// it.
pub(crate) struct PointChecks<'a> {
    /// Decides a field condition from a payload index, when one can.
    pub answer: &'a dyn Fn(&FieldCondition) -> Option<bool>,
    /// Decides an `is_empty` / `is_null` condition from a payload index, when one can.
    pub answer_emptiness: &'a dyn Fn(&Condition) -> Option<bool>,
    /// Whether the point has a vector of this name.
    pub has_vector: &'a dyn Fn(&str) -> bool,
    /// The collection's payload schema: `match` text conditions on a key with a `text` index
    /// compare words, as the index would.
    pub schema: Option<&'a PayloadSchema>,
}

impl PointChecks<'_> {
    /// Nothing beyond the payload: no index answers, the point has no vectors, no text index.
    pub(crate) const NONE: PointChecks<'static> = PointChecks {
        answer: &|_| None,
        answer_emptiness: &|_| None,
        has_vector: &|_| false,
        schema: None,
    };
}

/// The point a condition is tested on: its id (none inside `nested`, where Qdrant does not support
/// `has_id`), its payload (or one object of a nested array) and the segment's checks.
struct Point<'a, 'f, 'p> {
    id: Option<&'a PointId>,
    payload: &'a LazyPayload<'f, 'p>,
    checks: &'a PointChecks<'a>,
}

impl Filter {
    /// Whether a point with this id and payload passes the filter. Follows Qdrant: every `must` holds, at
    /// least one `should` holds when any are given, `min_should` holds, no `must_not` holds; an empty
    /// filter passes everything. Without the point's segment, `has_vector` holds for no name.
    pub fn matches(&self, id: &PointId, payload: &Payload) -> bool {
        let load = || Cow::Borrowed(payload);
        self.matches_with(id, &LazyPayload::new(&load), &PointChecks::NONE)
    }

    /// [`Filter::matches`] where `checks` may decide field conditions (from a payload index) and knows
    /// the point's vectors; the payload is read only if some condition is left to it.
    pub(crate) fn matches_with(
        &self,
        id: &PointId,
        payload: &LazyPayload<'_, '_>,
        checks: &PointChecks<'_>,
    ) -> bool {
        self.passes(&Point {
            id: Some(id),
            payload,
            checks,
        })
    }

    fn passes(&self, point: &Point<'_, '_, '_>) -> bool {
        let should = conditions(&self.should);
        let holds = |c: &Condition| c.holds(point);
        conditions(&self.must).iter().all(holds)
            && (should.is_empty() || should.iter().any(holds))
            && self.min_should.as_ref().is_none_or(|m| {
                m.conditions
                    .iter()
                    .filter(|c| holds(c))
                    .take(m.min_count)
                    .count()
                    == m.min_count
            })
            && !conditions(&self.must_not).iter().any(holds)
    }

    /// Every condition at this level: `must`, `should`, `min_should`, `must_not`.
    fn all_conditions(&self) -> impl Iterator<Item = &Condition> {
        conditions(&self.must)
            .iter()
            .chain(conditions(&self.should))
            .chain(self.min_should.iter().flat_map(|m| &m.conditions))
            .chain(conditions(&self.must_not))
    }

    /// Calls `f` on every field condition on the point's own payload keys, nested filters included
    /// (not those inside `nested`, whose keys are relative to an array's objects).
    pub(crate) fn for_each_field_condition<'a>(&'a self, f: &mut dyn FnMut(&'a FieldCondition)) {
        for c in self.all_conditions() {
            match c {
                Condition::Field(field) => f(field),
                Condition::Filter(inner) => inner.for_each_field_condition(f),
                Condition::HasId(_)
                | Condition::HasVector(_)
                | Condition::IsEmpty(_)
                | Condition::IsNull(_)
                | Condition::Nested(_) => {}
            }
        }
    }

    /// Calls `f` on every `is_empty` and `is_null` condition on the point's own payload keys, nested
    /// filters included (not those inside `nested`).
    pub(crate) fn for_each_emptiness_condition<'a>(&'a self, f: &mut dyn FnMut(&'a Condition)) {
        for c in self.all_conditions() {
            match c {
                Condition::IsEmpty(_) | Condition::IsNull(_) => f(c),
                Condition::Filter(inner) => inner.for_each_emptiness_condition(f),
                Condition::Field(_)
                | Condition::HasId(_)
                | Condition::HasVector(_)
                | Condition::Nested(_) => {}
            }
        }
    }

    /// Checks what parsing cannot: every field condition says what to test; one with only a `key` is
    /// refused, as Qdrant refuses it (422), rather than matching nothing.
    pub fn validate(&self) -> crate::Result<()> {
        for c in self.all_conditions() {
            match c {
                Condition::Field(f) if f.tests_nothing() => {
                    return Err(crate::Error::Validation(format!(
                        "the condition on `{}` needs `match`, `range`, `geo_radius`, \
                         `geo_bounding_box`, `geo_polygon`, `values_count`, `is_empty` or `is_null`",
                        f.key
                    )))
                }
                Condition::Filter(inner) => inner.validate()?,
                Condition::Nested(n) => n.nested.filter.validate()?,
                _ => {}
            }
        }
        Ok(())
    }
}

fn conditions(c: &Option<OneOrMany<Condition>>) -> &[Condition] {
    c.as_ref().map_or(&[], |c| c.as_slice())
}

impl Condition {
    /// Whether this one condition holds for the point (see [`Filter::matches`]).
    pub fn matches(&self, id: &PointId, payload: &Payload) -> bool {
        let load = || Cow::Borrowed(payload);
        self.holds(&Point {
            id: Some(id),
            payload: &LazyPayload::new(&load),
            checks: &PointChecks::NONE,
        })
    }

    fn holds(&self, point: &Point<'_, '_, '_>) -> bool {
        match self {
            Condition::Field(field) => (point.checks.answer)(field).unwrap_or_else(|| {
                let text = point.checks.schema.and_then(|s| text_index(s, &field.key));
                field.matches_in(point.payload.get(), text.as_ref())
            }),
            Condition::HasId(has) => point.id.is_some_and(|id| has.has_id.contains(id)),
            Condition::HasVector(has) => (point.checks.has_vector)(&has.has_vector),
            Condition::Filter(filter) => filter.passes(point),
            Condition::IsEmpty(c) => (point.checks.answer_emptiness)(self)
                .unwrap_or_else(|| is_empty(point.payload.get(), &c.is_empty.key)),
            Condition::IsNull(c) => (point.checks.answer_emptiness)(self)
                .unwrap_or_else(|| is_null(point.payload.get(), &c.is_null.key)),
            Condition::Nested(n) => n.holds(point.payload.get()),
        }
    }
}

impl NestedCondition {
    /// The key of the array whose objects are tested: `[]` is added unless the key ends with it.
    pub fn array_key(&self) -> Cow<'_, str> {
        let key = &self.nested.key;
        if key.ends_with("[]") {
            Cow::Borrowed(key)
        } else {
            Cow::Owned(format!("{key}[]"))
        }
    }

    /// Some object of the array passes the filter, each object tested as a payload of its own: no
    /// index answers, and (as in Qdrant) `has_id` and `has_vector` hold for none.
    fn holds(&self, payload: &Payload) -> bool {
        let mut found = false;
        path::for_each_value(payload, &self.array_key(), &mut |v| {
            if let Value::Object(object) = v {
                let load = || Cow::Borrowed(object);
                found = self.nested.filter.passes(&Point {
                    id: None,
                    payload: &LazyPayload::new(&load),
                    checks: &PointChecks::NONE,
                });
            }
            !found
        });
        found
    }
}

/// The text index params of `key`, when the schema gives it a `text` index.
pub(crate) fn text_index(
    schema: &PayloadSchema,
    key: &str,
) -> Option<crate::payload_schema::TextIndexParams> {
    let field = schema.get(key)?;
    if field.data_type() != PayloadSchemaType::Text {
        return None;
    }
    Some(match field.params() {
        Some(PayloadSchemaParams::Text(p)) => p.clone(),
        _ => Default::default(),
    })
}

/// Missing, null or `[]`; every value found must be empty (Qdrant's `check_is_empty`).
fn is_empty(payload: &Payload, key: &str) -> bool {
    let mut empty = true;
    path::for_each_value(payload, key, &mut |v| {
        empty &= matches!(v, Value::Null) || matches!(v, Value::Array(a) if a.is_empty());
        empty
    });
    empty
}

/// Present and null; `[null]` is an array, not null (as in Qdrant).
fn is_null(payload: &Payload, key: &str) -> bool {
    let mut null = false;
    path::for_each_value(payload, key, &mut |v| {
        null |= v.is_null();
        !null
    });
    null
}

impl FieldCondition {
    /// A condition on `key` with this `match`.
    pub fn matching(key: impl Into<String>, m: Match) -> Self {
        FieldCondition {
            key: key.into(),
            match_: Some(m),
            ..Default::default()
        }
    }

    /// Whether `match` is its only test (a payload index can then answer it alone).
    pub(crate) fn only_match(&self) -> bool {
        self.match_.is_some() && !self.tests_besides_match()
    }

    /// Whether `range` is its only test (a payload index can then answer it alone).
    pub(crate) fn only_range(&self) -> bool {
        let FieldCondition {
            key: _,
            match_,
            range,
            geo_radius,
            geo_bounding_box,
            geo_polygon,
            values_count,
            is_empty,
            is_null,
        } = self;
        range.is_some()
            && match_.is_none()
            && geo_radius.is_none()
            && geo_bounding_box.is_none()
            && geo_polygon.is_none()
            && values_count.is_none()
            && is_empty.is_none()
            && is_null.is_none()
    }

    /// Whether geo shapes are its only tests (a payload index can then answer it alone).
    pub(crate) fn only_geo(&self) -> bool {
        let FieldCondition {
            key: _,
            match_,
            range,
            geo_radius,
            geo_bounding_box,
            geo_polygon,
            values_count,
            is_empty,
            is_null,
        } = self;
        (geo_radius.is_some() || geo_bounding_box.is_some() || geo_polygon.is_some())
            && match_.is_none()
            && range.is_none()
            && values_count.is_none()
            && is_empty.is_none()
            && is_null.is_none()
    }

    /// Nothing to test: only a `key`.
    fn tests_nothing(&self) -> bool {
        self.match_.is_none() && !self.tests_besides_match()
    }

    fn tests_besides_match(&self) -> bool {
        let FieldCondition {
            key: _,
            match_: _,
            range,
            geo_radius,
            geo_bounding_box,
            geo_polygon,
            values_count,
            is_empty,
            is_null,
        } = self;
        range.is_some()
            || geo_radius.is_some()
            || geo_bounding_box.is_some()
            || geo_polygon.is_some()
            || values_count.is_some()
            || is_empty.is_some()
            || is_null.is_some()
    }

    /// Whether some value at `key` passes, read without any index (a `text` match compares
    /// substrings).
    pub fn matches(&self, payload: &Payload) -> bool {
        self.matches_in(payload, None)
    }

    /// Whether some value at `key` passes (Qdrant's `check_field_condition`). A value that is an array
    /// passes when one of its elements passes, except for `values_count`, `is_empty` and `is_null`,
    /// which look at the value whole. A missing key passes only `is_empty: true` and
    /// `is_null: false` (`values_count` too needs a value, as in Qdrant). `text` is the key's text
    /// index, if it has one.
    pub(crate) fn matches_in(
        &self,
        payload: &Payload,
        text: Option<&crate::payload_schema::TextIndexParams>,
    ) -> bool {
        if self.tests_nothing() {
            return false;
        }
        let mut any_value = false;
        let mut found = false;
        path::for_each_value(payload, &self.key, &mut |v| {
            any_value = true;
            found = self.check_value(v, text);
            !found
        });
        if !any_value {
            return self
                .is_empty
                .or(self.is_null.map(|null| !null))
                .unwrap_or(false);
        }
        found
    }

    fn check_value(
        &self,
        v: &Value,
        text: Option<&crate::payload_schema::TextIndexParams>,
    ) -> bool {
        if let Some(count) = &self.values_count {
            return count.check(values_in(v));
        }
        if let Some(empty) = self.is_empty {
            return value_is_empty(v) == empty;
        }
        if let Some(null) = self.is_null {
            return value_is_null(v) == null;
        }
        match v {
            Value::Array(items) => items.iter().any(|x| self.matches_scalar(x, text)),
            other => self.matches_scalar(other, text),
        }
    }

    fn matches_scalar(
        &self,
        v: &Value,
        text: Option<&crate::payload_schema::TextIndexParams>,
    ) -> bool {
        self.match_
            .as_ref()
            .is_some_and(|m| m.matches_scalar(v, text))
            || self.range.as_ref().is_some_and(|r| r.matches_scalar(v))
            || self
                .geo_radius
                .as_ref()
                .is_some_and(|g| geo::point_of(v).is_some_and(|p| g.contains(p)))
            || self
                .geo_bounding_box
                .as_ref()
                .is_some_and(|g| geo::point_of(v).is_some_and(|p| g.contains(p)))
            || self
                .geo_polygon
                .as_ref()
                .is_some_and(|g| geo::point_of(v).is_some_and(|p| g.contains(p)))
            || self
                .values_count
                .as_ref()
                .is_some_and(|c| c.check(values_in(v)))
            || self.is_empty.is_some_and(|e| value_is_empty(v) == e)
            || self.is_null.is_some_and(|n| value_is_null(v) == n)
    }
}

/// How many values one value counts as for `values_count`.
fn values_in(v: &Value) -> usize {
    match v {
        Value::Null => 0,
        Value::Array(items) => items.len(),
        _ => 1,
    }
}

/// The short form's emptiness of one value: null or `[]`.
fn value_is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The short form's nullness of one value: null, or an array holding a null (Qdrant's field-level
/// `is_null`, which differs here from `{"is_null": {"key": …}}`).
fn value_is_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.iter().any(Value::is_null),
        _ => false,
    }
}

impl ValuesCount {
    /// Whether `count` is within the bounds.
    pub fn check(&self, count: usize) -> bool {
        self.gt.is_none_or(|b| count > b)
            && self.gte.is_none_or(|b| count >= b)
            && self.lt.is_none_or(|b| count < b)
            && self.lte.is_none_or(|b| count <= b)
    }
}

impl MatchValue {
    /// Equality with a stored JSON value: keyword with strings, bool with bools, integer with integers and
    /// with floats that hold an integral value.
    pub fn equals(&self, v: &Value) -> bool {
        match (self, v) {
            (MatchValue::Keyword(k), Value::String(s)) => k == s,
            (MatchValue::Bool(b), Value::Bool(s)) => b == s,
            (MatchValue::Integer(i), Value::Number(n)) => integer_key(n) == Some(*i),
            _ => false,
        }
    }
}

/// The integer a stored number equals for `match`: an `i64`, or a float holding an integral value in
/// `i64`'s range. Payload indexes key integers by this too, so they agree with the filters.
pub(crate) fn integer_key(n: &serde_json::Number) -> Option<i64> {
    if let Some(stored) = n.as_i64() {
        return Some(stored);
    }
    let f = n.as_f64()?;
    // i64::MAX as f64 rounds up to 2^63, so the upper bound is exclusive.
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

impl Match {
    fn matches_scalar(
        &self,
        v: &Value,
        text: Option<&crate::payload_schema::TextIndexParams>,
    ) -> bool {
        match self {
            Match::Value { value } => value.equals(v),
            Match::Any { any } => any.iter().any(|m| m.equals(v)),
            // Qdrant: null never passes `except`; a value of another type than the list's always does.
            Match::Except { except } => !v.is_null() && !except.iter().any(|m| m.equals(v)),
            Match::Text { text: query } => v
                .as_str()
                .is_some_and(|s| text::matches(text::Mode::All, query, s, text)),
            Match::TextAny { text_any } => v
                .as_str()
                .is_some_and(|s| text::matches(text::Mode::Any, text_any, s, text)),
            Match::Phrase { phrase } => v
                .as_str()
                .is_some_and(|s| text::matches(text::Mode::Phrase, phrase, s, text)),
        }
    }
}

impl RangeCondition {
    fn matches_scalar(&self, v: &Value) -> bool {
        match self {
            RangeCondition::Number(r) => r.matches_scalar(v),
            RangeCondition::Datetime(r) => v
                .as_str()
                .and_then(|s| Datetime::parse(s).ok())
                .is_some_and(|t| r.contains(&t)),
        }
    }
}

impl Range {
    fn matches_scalar(&self, v: &Value) -> bool {
        let Some(x) = v.as_f64() else {
            return false;
        };
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

impl DatetimeRange {
    /// Whether `t` is within the bounds.
    pub fn contains(&self, t: &Datetime) -> bool {
        self.gt.as_ref().is_none_or(|b| t > b)
            && self.gte.as_ref().is_none_or(|b| t >= b)
            && self.lt.as_ref().is_none_or(|b| t < b)
            && self.lte.as_ref().is_none_or(|b| t <= b)
    }
}
