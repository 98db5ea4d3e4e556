//! Payload filters in Qdrant's JSON shape: `must` / `should` / `must_not` over field conditions
//! (`match` value / any / except, `range`), `has_id`, `is_empty`, `is_null` and nested filters.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::point::Payload;
use crate::PointId;

/// Either one item or a list of them (Qdrant accepts both for `must`, `should`, `must_not`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    // `Many` must be tried first: serde's derived struct visitors also accept a JSON array (fields by
    // position), so `[a, b]` would otherwise parse as one `Filter { must: a, should: b }`.
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
/// holds (if any are given) and no `must_not` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
}

/// One condition of a filter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// A condition on a payload field.
    Field(FieldCondition),
    /// The point's id is one of these.
    HasId(HasIdCondition),
    /// The field is missing, null or an empty array.
    IsEmpty(IsEmptyCondition),
    /// The field is present and null.
    IsNull(IsNullCondition),
    /// A nested filter.
    Filter(Filter),
}

/// `{"key": "a.b", "match": …}` or `{"key": …, "range": …}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    /// Payload key; dots walk into nested objects, arrays match when any element matches.
    pub key: String,
    /// Value match.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<Match>,
    /// Numeric range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
}

/// A scalar a `match` compares against: keyword, integer or bool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Contains this substring (full-text match without an index).
    Text {
        /// The text.
        text: String,
    },
}

/// Numeric bounds; any subset may be given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

/// `{"has_id": [1, "uuid", …]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HasIdCondition {
    /// The ids.
    pub has_id: Vec<PointId>,
}

/// `{"is_empty": {"key": …}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsEmptyCondition {
    /// The field.
    pub is_empty: PayloadField,
}

/// `{"is_null": {"key": …}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsNullCondition {
    /// The field.
    pub is_null: PayloadField,
}

/// `{"key": …}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadField {
    /// Payload key.
    pub key: String,
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

impl Filter {
    /// Whether a point with this id and payload passes the filter. Follows Qdrant: every `must` holds, at
    /// least one `should` holds when any are given, no `must_not` holds; an empty filter passes everything.
    pub fn matches(&self, id: &PointId, payload: &Payload) -> bool {
        let load = || Cow::Borrowed(payload);
        self.matches_with(id, &LazyPayload::new(&load), &|_| None)
    }

    /// [`Filter::matches`] where `answer` may decide field conditions (from a payload index) and the
    /// payload is read only if some condition is left to it.
    pub(crate) fn matches_with(
        &self,
        id: &PointId,
        payload: &LazyPayload<'_, '_>,
        answer: &dyn Fn(&FieldCondition) -> Option<bool>,
    ) -> bool {
        let should = conditions(&self.should);
        let holds = |c: &Condition| c.matches_with(id, payload, answer);
        conditions(&self.must).iter().all(holds)
            && (should.is_empty() || should.iter().any(holds))
            && !conditions(&self.must_not).iter().any(holds)
    }

    /// Calls `f` on every field condition, nested filters included.
    pub(crate) fn for_each_field_condition<'a>(&'a self, f: &mut dyn FnMut(&'a FieldCondition)) {
        let all = conditions(&self.must)
            .iter()
            .chain(conditions(&self.should))
            .chain(conditions(&self.must_not));
        for c in all {
            match c {
                Condition::Field(field) => f(field),
                Condition::Filter(inner) => inner.for_each_field_condition(f),
                Condition::HasId(_) | Condition::IsEmpty(_) | Condition::IsNull(_) => {}
            }
        }
    }
}

impl Filter {
    /// Checks what parsing cannot: every field condition says what to test (`match` or `range`); one
    /// with only a `key` is refused, as Qdrant refuses it (422), rather than matching nothing.
    pub fn validate(&self) -> crate::Result<()> {
        let all = conditions(&self.must)
            .iter()
            .chain(conditions(&self.should))
            .chain(conditions(&self.must_not));
        for c in all {
            match c {
                Condition::Field(f) if f.match_.is_none() && f.range.is_none() => {
                    return Err(crate::Error::Validation(format!(
                        "the condition on `{}` needs `match` or `range`",
                        f.key
                    )))
                }
                Condition::Filter(inner) => inner.validate()?,
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
    /// Whether this one condition holds for the point.
    pub fn matches(&self, id: &PointId, payload: &Payload) -> bool {
        let load = || Cow::Borrowed(payload);
        self.matches_with(id, &LazyPayload::new(&load), &|_| None)
    }

    fn matches_with(
        &self,
        id: &PointId,
        payload: &LazyPayload<'_, '_>,
        answer: &dyn Fn(&FieldCondition) -> Option<bool>,
    ) -> bool {
        match self {
            Condition::Field(field) => {
                answer(field).unwrap_or_else(|| field.matches(payload.get()))
            }
            Condition::HasId(has) => has.has_id.contains(id),
            Condition::Filter(filter) => filter.matches_with(id, payload, answer),
            Condition::IsEmpty(c) => is_empty(payload.get(), &c.is_empty.key),
            Condition::IsNull(c) => is_null(payload.get(), &c.is_null.key),
        }
    }
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
    /// Whether any value at `key` satisfies the `match` or the `range` (Qdrant ORs them when both are
    /// given). A value that is an array passes when one of its elements passes. A missing field passes
    /// nothing, `except` included.
    pub fn matches(&self, payload: &Payload) -> bool {
        if self.match_.is_none() && self.range.is_none() {
            return false;
        }
        let mut found = false;
        path::for_each_value(payload, &self.key, &mut |v| {
            found = match v {
                Value::Array(items) => items.iter().any(|x| self.matches_scalar(x)),
                other => self.matches_scalar(other),
            };
            !found
        });
        found
    }

    fn matches_scalar(&self, v: &Value) -> bool {
        self.match_.as_ref().is_some_and(|m| m.matches_scalar(v))
            || self.range.as_ref().is_some_and(|r| r.matches_scalar(v))
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
    fn matches_scalar(&self, v: &Value) -> bool {
        match self {
            Match::Value { value } => value.equals(v),
            Match::Any { any } => any.iter().any(|m| m.equals(v)),
            // Qdrant: null never passes `except`; a value of another type than the list's always does.
            Match::Except { except } => !v.is_null() && !except.iter().any(|m| m.equals(v)),
            Match::Text { text } => v.as_str().is_some_and(|s| s.contains(text.as_str())),
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

/// Payload keys: `a.b.c` walks nested objects; `a[]` and `a[2]` pick all or one element of an array;
/// `"a.b"` quotes a key that holds dots. An array met where a key is expected is searched element by
/// element, so `a.b` also reaches `{"a": [{"b": 1}, {"b": 2}]}`.
pub(crate) mod path {
    use serde_json::Value;

    use crate::point::Payload;

    /// One step of a key.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(crate) enum Step<'k> {
        Key(&'k str),
        AllElements,
        Element(usize),
    }

    /// Splits a key into steps without allocating. A key that does not parse is used whole, as one
    /// literal field name.
    fn steps(key: &str) -> impl Iterator<Item = Step<'_>> + Clone {
        let parsed = parse(key).is_some();
        Steps {
            rest: key,
            literal: !parsed,
            start: true,
        }
    }

    #[derive(Clone)]
    struct Steps<'k> {
        rest: &'k str,
        literal: bool,
        start: bool,
    }

    impl<'k> Iterator for Steps<'k> {
        type Item = Step<'k>;

        fn next(&mut self) -> Option<Step<'k>> {
            if self.literal {
                if self.rest.is_empty() && !self.start {
                    return None;
                }
                self.start = false;
                return Some(Step::Key(std::mem::take(&mut self.rest)));
            }
            let (step, rest) = next_step(self.rest, self.start)?;
            self.start = false;
            self.rest = rest;
            Some(step)
        }
    }

    /// The steps of a key in the path syntax that starts with a field name (as payload updates and
    /// projections take it); `None` for any other key.
    pub(crate) fn parsed(key: &str) -> Option<Vec<Step<'_>>> {
        parse(key)?;
        let steps: Vec<_> = steps(key).collect();
        matches!(steps.first(), Some(Step::Key(_))).then_some(steps)
    }

    /// Validates the whole key once; `None` when it is not in the path syntax.
    fn parse(key: &str) -> Option<()> {
        let mut rest = key;
        let mut start = true;
        let mut any = false;
        while !rest.is_empty() || start {
            let (_, r) = next_step(rest, start)?;
            rest = r;
            start = false;
            any = true;
        }
        any.then_some(())
    }

    /// The next step and what follows it.
    fn next_step(s: &str, start: bool) -> Option<(Step<'_>, &str)> {
        if s.is_empty() {
            return None;
        }
        if let Some(r) = s.strip_prefix('[') {
            let close = r.find(']')?;
            let inner = &r[..close];
            let step = if inner.is_empty() {
                Step::AllElements
            } else {
                Step::Element(inner.parse().ok()?)
            };
            return Some((step, &r[close + 1..]));
        }
        let s = if start { s } else { s.strip_prefix('.')? };
        if let Some(r) = s.strip_prefix('"') {
            let close = r.find('"')?;
            return Some((Step::Key(&r[..close]), &r[close + 1..]));
        }
        let end = s.find(['.', '[']).unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        Some((Step::Key(&s[..end]), &s[end..]))
    }

    /// Calls `f` on every value `key` reaches, until `f` returns false.
    pub(crate) fn for_each_value(payload: &Payload, key: &str, f: &mut dyn FnMut(&Value) -> bool) {
        let mut it = steps(key);
        let Some(Step::Key(first)) = it.next() else {
            return;
        };
        if let Some(v) = payload.get(first) {
            walk(v, it, f);
        }
    }

    /// Returns false when `f` asked to stop.
    fn walk<'k>(
        v: &Value,
        mut steps: impl Iterator<Item = Step<'k>> + Clone,
        f: &mut dyn FnMut(&Value) -> bool,
    ) -> bool {
        let Some(step) = steps.next() else {
            return f(v);
        };
        match (step, v) {
            (Step::Key(k), Value::Object(map)) => match map.get(k) {
                Some(child) => walk(child, steps, f),
                None => true,
            },
            (Step::Key(k), Value::Array(items)) => {
                for item in items {
                    if !walk_key(item, k, steps.clone(), f) {
                        return false;
                    }
                }
                true
            }
            (Step::AllElements, Value::Array(items)) => {
                for item in items {
                    if !walk(item, steps.clone(), f) {
                        return false;
                    }
                }
                true
            }
            (Step::Element(i), Value::Array(items)) => match items.get(i) {
                Some(item) => walk(item, steps, f),
                None => true,
            },
            _ => true,
        }
    }

    /// Applies key step `k` to an array element (recursing through nested arrays).
    fn walk_key<'k>(
        v: &Value,
        k: &'k str,
        steps: impl Iterator<Item = Step<'k>> + Clone,
        f: &mut dyn FnMut(&Value) -> bool,
    ) -> bool {
        match v {
            Value::Object(map) => match map.get(k) {
                Some(child) => walk(child, steps, f),
                None => true,
            },
            Value::Array(items) => {
                for item in items {
                    if !walk_key(item, k, steps.clone(), f) {
                        return false;
                    }
                }
                true
            }
            _ => true,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_keys() {
            let s: Vec<_> = steps("a.b[].c[2].\"d.e\"").collect();
            assert_eq!(
                s,
                vec![
                    Step::Key("a"),
                    Step::Key("b"),
                    Step::AllElements,
                    Step::Key("c"),
                    Step::Element(2),
                    Step::Key("d.e"),
                ]
            );
            // Not path syntax: taken as one literal name.
            assert_eq!(steps("a..b").collect::<Vec<_>>(), vec![Step::Key("a..b")]);
            assert_eq!(steps("").collect::<Vec<_>>(), vec![Step::Key("")]);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn payload(v: Value) -> Payload {
        match v {
            Value::Object(map) => map,
            _ => panic!("payload must be an object"),
        }
    }

    fn filter(v: Value) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    fn check(f: Value, p: Value) -> bool {
        filter(f).matches(&PointId::Num(1), &payload(p))
    }

    #[test]
    fn boolean_structure() {
        let p = json!({"color": "red", "n": 3});
        assert!(check(json!({}), p.clone()));
        let red = json!({"key": "color", "match": {"value": "red"}});
        let blue = json!({"key": "color", "match": {"value": "blue"}});
        assert!(check(json!({"must": [red]}), p.clone()));
        assert!(check(json!({"must": red}), p.clone()));
        assert!(!check(json!({"must": [red, blue]}), p.clone()));
        assert!(matches!(
            filter(json!({"should": [red, blue]})).should,
            Some(OneOrMany::Many(ref v)) if v.len() == 2
        ));
        assert!(check(json!({"should": [red, blue]}), p.clone()));
        assert!(!check(json!({"should": [blue]}), p.clone()));
        assert!(check(json!({"should": []}), p.clone()));
        assert!(!check(json!({"must_not": [red]}), p.clone()));
        assert!(check(json!({"must_not": [blue]}), p.clone()));
        assert!(check(
            json!({"should": [{"must": [red, {"key": "n", "range": {"gte": 3}}]}, blue]}),
            p.clone()
        ));
        assert!(check(json!({"must": [{"has_id": [5, 1]}]}), p.clone()));
        assert!(!check(json!({"must": [{"has_id": [2]}]}), p));
    }

    #[test]
    fn match_types_do_not_cross() {
        let p = json!({"s": "7", "i": 7, "f": 7.0, "g": 7.5, "b": true, "big": 18446744073709551615u64});
        let m = |key: &str, v: Value| {
            check(
                json!({"must": [{"key": key, "match": {"value": v}}]}),
                p.clone(),
            )
        };
        assert!(m("s", json!("7")) && !m("s", json!(7)));
        assert!(m("i", json!(7)) && !m("i", json!("7")));
        assert!(m("f", json!(7)), "an integral float matches an integer");
        assert!(!m("g", json!(7)));
        assert!(m("b", json!(true)) && !m("b", json!(1)) && !m("b", json!("true")));
        assert!(!m("big", json!(-1)));
        assert!(!m("missing", json!(7)));
    }

    #[test]
    fn any_except_text_range() {
        let p =
            json!({"tags": ["a", "b"], "n": 5, "x": null, "empty": [], "name": "good cheap shoes"});
        let c = |cond: Value| check(json!({"must": [cond]}), p.clone());
        assert!(c(json!({"key": "tags", "match": {"any": ["z", "b"]}})));
        assert!(!c(json!({"key": "tags", "match": {"any": ["z"]}})));
        // Arrays pass `except` when one element is outside the list.
        assert!(c(json!({"key": "tags", "match": {"except": ["a"]}})));
        assert!(!c(json!({"key": "tags", "match": {"except": ["a", "b"]}})));
        assert!(c(json!({"key": "n", "match": {"except": [1, 2]}})));
        assert!(!c(json!({"key": "n", "match": {"except": [5]}})));
        assert!(
            c(json!({"key": "n", "match": {"except": ["5"]}})),
            "other types pass except"
        );
        assert!(
            !c(json!({"key": "missing", "match": {"except": ["a"]}})),
            "missing fails except"
        );
        assert!(
            !c(json!({"key": "x", "match": {"except": ["a"]}})),
            "null fails except"
        );
        assert!(!c(json!({"key": "empty", "match": {"except": ["a"]}})));
        assert!(c(json!({"key": "name", "match": {"text": "cheap"}})));
        assert!(!c(json!({"key": "name", "match": {"text": "Cheap"}})));
        assert!(c(json!({"key": "n", "range": {"gt": 4.5, "lte": 5}})));
        assert!(!c(json!({"key": "n", "range": {"gt": 5}})));
        assert!(c(json!({"key": "n", "range": {}})));
        assert!(!c(json!({"key": "name", "range": {"gt": 0}})));
        assert!(
            !c(json!({"key": "n"})),
            "a condition without match or range passes nothing"
        );
    }

    #[test]
    fn empty_and_null() {
        let p = json!({"null": null, "empty": [], "nulls": [null], "zero": 0, "obj": {"a": null}});
        let e = |key: &str| check(json!({"must": [{"is_empty": {"key": key}}]}), p.clone());
        let n = |key: &str| check(json!({"must": [{"is_null": {"key": key}}]}), p.clone());
        assert!(e("null") && e("empty") && e("missing") && e("obj.a") && e("obj.b"));
        assert!(!e("nulls") && !e("zero") && !e("obj"));
        assert!(n("null") && n("obj.a"));
        assert!(!n("empty") && !n("nulls") && !n("missing") && !n("zero"));
    }

    #[test]
    fn nested_paths_and_arrays() {
        let p = json!({
            "country": {"name": "Japan", "cities": [
                {"name": "Tokyo", "population": 9.3, "sights": ["Tokyo Tower"]},
                {"name": "Osaka", "population": 2.7, "sights": ["Osaka Castle"]}
            ]},
            "a.b": 1,
            "grid": [[{"v": 1}], [{"v": 2}]]
        });
        let c = |cond: Value| check(json!({"must": [cond]}), p.clone());
        assert!(c(
            json!({"key": "country.name", "match": {"value": "Japan"}})
        ));
        assert!(c(
            json!({"key": "country.cities[].population", "range": {"gte": 9.0}})
        ));
        assert!(c(
            json!({"key": "country.cities.population", "range": {"gte": 9.0}})
        ));
        assert!(!c(
            json!({"key": "country.cities[].population", "range": {"gte": 10.0}})
        ));
        assert!(c(
            json!({"key": "country.cities[].sights", "match": {"value": "Osaka Castle"}})
        ));
        assert!(c(
            json!({"key": "country.cities[1].name", "match": {"value": "Osaka"}})
        ));
        assert!(!c(
            json!({"key": "country.cities[0].name", "match": {"value": "Osaka"}})
        ));
        assert!(!c(
            json!({"key": "country.cities[5].name", "match": {"value": "Osaka"}})
        ));
        assert!(c(json!({"key": "\"a.b\"", "match": {"value": 1}})));
        assert!(!c(json!({"key": "a.b", "match": {"value": 1}})));
        assert!(c(json!({"key": "grid.v", "match": {"value": 2}})));
        assert!(c(json!({"key": "grid[][].v", "match": {"value": 2}})));
    }

    // ---- Property test: `matches` against a reference evaluator that flattens the payload first. ----

    /// Every object member in the payload with its dotted key path (array levels are transparent).
    fn flatten<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.push((path.clone(), child));
                    flatten(&path, child, out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    flatten(prefix, item, out);
                }
            }
            _ => {}
        }
    }

    fn as_json(m: &MatchValue) -> Value {
        match m {
            MatchValue::Bool(b) => json!(b),
            MatchValue::Integer(i) => json!(i),
            MatchValue::Keyword(s) => json!(s),
        }
    }

    fn ref_equal(m: &MatchValue, v: &Value) -> bool {
        match (as_json(m), v) {
            (Value::Number(a), Value::Number(b)) => {
                a.as_f64() == b.as_f64() && b.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            (a, b) => a == *b,
        }
    }

    fn ref_scalar(cond: &FieldCondition, v: &Value) -> bool {
        let by_match = match &cond.match_ {
            Some(Match::Value { value }) => ref_equal(value, v),
            Some(Match::Any { any }) => any.iter().any(|m| ref_equal(m, v)),
            Some(Match::Except { except }) => {
                *v != Value::Null && except.iter().all(|m| !ref_equal(m, v))
            }
            Some(Match::Text { text }) => {
                matches!(v, Value::String(s) if s.contains(text.as_str()))
            }
            None => false,
        };
        let by_range = match (&cond.range, v) {
            (Some(r), Value::Number(n)) => {
                let x = n.as_f64().unwrap();
                [
                    (r.gt, x > r.gt.unwrap_or(0.0)),
                    (r.gte, x >= r.gte.unwrap_or(0.0)),
                    (r.lt, x < r.lt.unwrap_or(0.0)),
                    (r.lte, x <= r.lte.unwrap_or(0.0)),
                ]
                .iter()
                .all(|(bound, ok)| bound.is_none() || *ok)
            }
            _ => false,
        };
        by_match || by_range
    }

    fn values_at<'a>(
        flat: &'a [(String, &'a Value)],
        key: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        flat.iter().filter(move |(p, _)| p == key).map(|(_, v)| *v)
    }

    fn ref_condition(c: &Condition, id: &PointId, flat: &[(String, &Value)]) -> bool {
        match c {
            Condition::Field(f) => values_at(flat, &f.key).any(|v| match v {
                Value::Array(items) => items.iter().any(|x| ref_scalar(f, x)),
                _ => ref_scalar(f, v),
            }),
            Condition::HasId(h) => h.has_id.iter().any(|x| x == id),
            Condition::IsEmpty(e) => {
                values_at(flat, &e.is_empty.key).all(|v| *v == json!(null) || *v == json!([]))
            }
            Condition::IsNull(n) => values_at(flat, &n.is_null.key).any(|v| *v == json!(null)),
            Condition::Filter(f) => ref_filter(f, id, flat),
        }
    }

    fn ref_filter(f: &Filter, id: &PointId, flat: &[(String, &Value)]) -> bool {
        let list = |c: &Option<OneOrMany<Condition>>| {
            c.as_ref()
                .map(|c| c.as_slice().to_vec())
                .unwrap_or_default()
        };
        let must = list(&f.must);
        let should = list(&f.should);
        let must_not = list(&f.must_not);
        let mut ok = true;
        for c in &must {
            ok = ok && ref_condition(c, id, flat);
        }
        if !should.is_empty() {
            ok = ok && should.iter().filter(|c| ref_condition(c, id, flat)).count() > 0;
        }
        ok && must_not
            .iter()
            .filter(|c| ref_condition(c, id, flat))
            .count()
            == 0
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(|i| json!(i)),
            prop::sample::select(vec![1.0f64, 2.5, -1.0, 0.0]).prop_map(|f| json!(f)),
            prop::sample::select(vec!["x", "y", "xy"]).prop_map(|s| json!(s)),
        ]
    }

    fn key_name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from)
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key_name(), inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn payload_strategy() -> impl Strategy<Value = Payload> {
        prop::collection::btree_map(key_name(), value(), 0..4).prop_map(|m| m.into_iter().collect())
    }

    fn match_value() -> impl Strategy<Value = MatchValue> {
        prop_oneof![
            any::<bool>().prop_map(MatchValue::Bool),
            (-3i64..3).prop_map(MatchValue::Integer),
            prop::sample::select(vec!["x", "y", "xy"]).prop_map(|s| MatchValue::Keyword(s.into())),
        ]
    }

    fn bound() -> impl Strategy<Value = Option<f64>> {
        prop::option::of(prop::sample::select(vec![-2.0f64, 0.0, 1.0, 2.5]))
    }

    fn condition() -> BoxedStrategy<Condition> {
        let key = prop::sample::select(vec!["a", "b", "c", "a.b", "a.c", "b.a", "a.b.c", "c.c"])
            .prop_map(String::from);
        let field = (
            key.clone(),
            prop::option::of(prop_oneof![
                match_value().prop_map(|value| Match::Value { value }),
                prop::collection::vec(match_value(), 0..3).prop_map(|any| Match::Any { any }),
                prop::collection::vec(match_value(), 0..3)
                    .prop_map(|except| Match::Except { except }),
                prop::sample::select(vec!["x", "y", ""])
                    .prop_map(|t| Match::Text { text: t.into() }),
            ]),
            prop::option::of(
                (bound(), bound(), bound(), bound()).prop_map(|(gt, gte, lt, lte)| Range {
                    gt,
                    gte,
                    lt,
                    lte,
                }),
            ),
        )
            .prop_map(|(key, match_, range)| {
                Condition::Field(FieldCondition { key, match_, range })
            });
        let leaf = prop_oneof![
            4 => field,
            1 => key.clone().prop_map(|key| Condition::IsEmpty(IsEmptyCondition { is_empty: PayloadField { key } })),
            1 => key.prop_map(|key| Condition::IsNull(IsNullCondition { is_null: PayloadField { key } })),
            1 => prop::collection::vec((0u64..4).prop_map(PointId::Num), 0..3).prop_map(|has_id| Condition::HasId(HasIdCondition { has_id })),
        ];
        leaf.prop_recursive(2, 12, 3, |inner| {
            filter_of(inner).prop_map(Condition::Filter)
        })
        .boxed()
    }

    fn filter_of(c: impl Strategy<Value = Condition> + Clone) -> impl Strategy<Value = Filter> {
        let list = move || {
            prop::option::of(prop::collection::vec(c.clone(), 0..3).prop_map(OneOrMany::Many))
        };
        (list(), list(), list()).prop_map(|(must, should, must_not)| Filter {
            must,
            should,
            must_not,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn matches_agrees_with_reference(
            p in payload_strategy(),
            f in filter_of(condition()),
            id in (0u64..4).prop_map(PointId::Num),
        ) {
            let mut flat = Vec::new();
            let root = Value::Object(p.clone());
            flatten("", &root, &mut flat);
            prop_assert_eq!(f.matches(&id, &p), ref_filter(&f, &id, &flat), "payload {} filter {}", root, serde_json::to_string(&f).unwrap());
        }
    }
}
