//! Parsing of conditions, `match` and `range` by their fields, so that a malformed one is refused
//! with a message naming what is wrong (an untagged enum would only say that nothing matched).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{
    Condition, DatetimeRange, FieldCondition, Filter, HasIdCondition, HasVectorCondition,
    IsEmptyCondition, IsNullCondition, Match, MatchValue, NestedCondition, OneOrMany, Range,
    RangeCondition,
};

/// The condition forms, for error messages.
const CONDITIONS: &str = "a field condition (`key` with `match`, `range`, `geo_radius`, \
     `geo_bounding_box`, `geo_polygon`, `values_count`, `is_empty` or `is_null`), `has_id`, \
     `has_vector`, `is_empty`, `is_null`, `nested`, or a filter (`must`, `should`, `must_not`, \
     `min_should`)";

fn object<E: serde::de::Error>(v: Value, what: &str) -> Result<Map<String, Value>, E> {
    match v {
        Value::Object(map) => Ok(map),
        other => Err(E::custom(format!(
            "{what} must be an object, got {}",
            kind(&other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses `v` as `T`, prefixing any error with `what`.
fn typed<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    v: Value,
    what: &str,
) -> Result<T, E> {
    serde_json::from_value(v).map_err(|e| E::custom(format!("{what}: {e}")))
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    /// An array is a list; anything else one item. (Tried as an untagged enum, an array could also
    /// parse as a struct by position, and an item's own error would be lost.)
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Array(items) => items
                .into_iter()
                .map(|v| serde_json::from_value(v).map_err(D::Error::custom))
                .collect::<Result<Vec<T>, _>>()
                .map(OneOrMany::Many),
            one => serde_json::from_value(one)
                .map(|t| OneOrMany::One(Box::new(t)))
                .map_err(D::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = object::<D::Error>(Value::deserialize(d)?, "a condition")?;
        if map.contains_key("key") {
            return field_condition(map).map(Condition::Field);
        }
        let forms = ["has_id", "has_vector", "is_empty", "is_null", "nested"];
        let form = forms.into_iter().find(|k| map.contains_key(*k));
        let filter_keys = ["must", "should", "must_not", "min_should"];
        if form.is_none() && !map.keys().all(|k| filter_keys.contains(&k.as_str())) {
            let fields: Vec<String> = map.keys().map(|k| format!("`{k}`")).collect();
            return Err(D::Error::custom(format!(
                "unknown condition with {}: expected {CONDITIONS}",
                fields.join(", ")
            )));
        }
        let v = Value::Object(map);
        match form {
            Some("has_id") => typed::<HasIdCondition, _>(v, "has_id").map(Condition::HasId),
            Some("has_vector") => {
                typed::<HasVectorCondition, _>(v, "has_vector").map(Condition::HasVector)
            }
            Some("is_empty") => typed::<IsEmptyCondition, _>(v, "is_empty").map(Condition::IsEmpty),
            Some("is_null") => typed::<IsNullCondition, _>(v, "is_null").map(Condition::IsNull),
            Some(_) => typed::<NestedCondition, _>(v, "nested").map(Condition::Nested),
            None => typed::<Filter, _>(v, "filter").map(Condition::Filter),
        }
    }
}

/// The tests of a field condition, for error messages.
const FIELD_TESTS: &str = "`match`, `range`, `geo_radius`, `geo_bounding_box`, `geo_polygon`, \
     `values_count`, `is_empty`, `is_null`";

/// A field condition, member by member so that an error names the member (a `null` member is absent).
fn field_condition<E: serde::de::Error>(map: Map<String, Value>) -> Result<FieldCondition, E> {
    let key = match map.get("key") {
        Some(Value::String(key)) => key.clone(),
        Some(other) => {
            return Err(E::custom(format!(
                "a condition's `key` must be a string, got {}",
                kind(other)
            )))
        }
        None => unreachable!("called for conditions with a key"),
    };
    let mut c = FieldCondition {
        key: key.clone(),
        ..Default::default()
    };
    for (name, v) in map {
        if name == "key" || v.is_null() {
            continue;
        }
        let what = format!("the condition on `{key}`: `{name}`");
        match name.as_str() {
            "match" => c.match_ = Some(typed(v, &what)?),
            "range" => c.range = Some(typed(v, &what)?),
            "geo_radius" => c.geo_radius = Some(typed(v, &what)?),
            "geo_bounding_box" => c.geo_bounding_box = Some(typed(v, &what)?),
            "geo_polygon" => c.geo_polygon = Some(typed(v, &what)?),
            "values_count" => c.values_count = Some(typed(v, &what)?),
            "is_empty" => c.is_empty = Some(typed(v, &what)?),
            "is_null" => c.is_null = Some(typed(v, &what)?),
            other => {
                return Err(E::custom(format!(
                    "the condition on `{key}`: unknown field `{other}`, expected `key` and one of \
                     {FIELD_TESTS}"
                )))
            }
        }
    }
    Ok(c)
}

/// The forms of `match`, for error messages.
const MATCHES: &str = "`value`, `any`, `except`, `text`, `text_any` or `phrase`";

impl<'de> Deserialize<'de> for Match {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = object::<D::Error>(Value::deserialize(d)?, "`match`")?;
        if map.len() != 1 {
            let fields: Vec<String> = map.keys().map(|k| format!("`{k}`")).collect();
            return Err(D::Error::custom(format!(
                "`match` takes exactly one of {MATCHES}, got {}",
                if fields.is_empty() {
                    "none".to_string()
                } else {
                    fields.join(", ")
                }
            )));
        }
        let (name, v) = map.into_iter().next().expect("one entry");
        let string = |v: Value| match v {
            Value::String(s) => Ok(s),
            other => Err(D::Error::custom(format!(
                "`match.{name}` must be a string, got {}",
                kind(&other)
            ))),
        };
        Ok(match name.as_str() {
            "value" => Match::Value {
                value: match_value(v, "`match.value`")?,
            },
            "any" | "except" => {
                let Value::Array(items) = v else {
                    return Err(D::Error::custom(format!(
                        "`match.{name}` must be an array of strings or integers, got {}",
                        kind(&v)
                    )));
                };
                let what = format!("an element of `match.{name}`");
                let values = items
                    .into_iter()
                    .map(|x| match_value(x, &what))
                    .collect::<Result<Vec<_>, _>>()?;
                if name == "any" {
                    Match::Any { any: values }
                } else {
                    Match::Except { except: values }
                }
            }
            "text" => Match::Text { text: string(v)? },
            "text_any" => Match::TextAny {
                text_any: string(v)?,
            },
            "phrase" => Match::Phrase { phrase: string(v)? },
            other => {
                return Err(D::Error::custom(format!(
                    "unknown `match` form `{other}`: expected one of {MATCHES}"
                )))
            }
        })
    }
}

fn match_value<E: serde::de::Error>(v: Value, what: &str) -> Result<MatchValue, E> {
    match v {
        Value::Bool(b) => Ok(MatchValue::Bool(b)),
        Value::String(s) => Ok(MatchValue::Keyword(s)),
        Value::Number(n) if n.as_i64().is_some() => Ok(MatchValue::Integer(n.as_i64().unwrap())),
        other => Err(E::custom(format!(
            "{what} must be a string, an integer or a bool, got {}",
            match &other {
                Value::Number(n) => format!("the number {n}"),
                o => kind(o).to_string(),
            }
        ))),
    }
}

impl<'de> Deserialize<'de> for RangeCondition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = object::<D::Error>(Value::deserialize(d)?, "`range`")?;
        let datetime = map.values().any(Value::is_string);
        let v = Value::Object(map);
        if datetime {
            typed::<DatetimeRange, _>(v, "datetime `range`").map(RangeCondition::Datetime)
        } else {
            typed::<Range, _>(v, "`range`").map(RangeCondition::Number)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(v: Value) -> String {
        serde_json::from_value::<Filter>(v).unwrap_err().to_string()
    }

    #[test]
    fn bad_forms_name_the_problem() {
        let e = error(json!({"must": [{"key": "a", "match": {"valu": 1}}]}));
        assert!(e.contains("unknown `match` form `valu`"), "{e}");
        let e = error(json!({"must": [{"key": "a", "match": {"value": 1.5}}]}));
        assert!(
            e.contains("`match.value` must be a string, an integer or a bool"),
            "{e}"
        );
        let e = error(json!({"must": [{"key": "a", "match": {"text": 1}}]}));
        assert!(e.contains("`match.text` must be a string"), "{e}");
        let e = error(json!({"must": [{"key": "a", "match": {}}]}));
        assert!(e.contains("`match` takes exactly one of"), "{e}");
        let e = error(json!({"must": [{"key": "a", "rnage": {"gt": 1}}]}));
        assert!(
            e.contains("the condition on `a`") && e.contains("rnage"),
            "{e}"
        );
        let e = error(json!({"must": [{"has_vectors": "x"}]}));
        assert!(e.contains("unknown condition with `has_vectors`"), "{e}");
        let e = error(json!({"must": [{"key": "t", "range": {"gte": "yesterday"}}]}));
        assert!(
            e.contains("'yesterday' is not in a supported date/time format"),
            "{e}"
        );
        let e = error(
            json!({"must": [{"key": "g", "geo_radius": {"center": {"lon": 200, "lat": 0}, "radius": 1}}]}),
        );
        assert!(e.contains("within [-180; 180]"), "{e}");
        let e = error(
            json!({"must": [{"key": "g", "geo_polygon": {"exterior": {"points": [
                {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 1}
            ]}}}]}),
        );
        assert!(e.contains("not closed"), "{e}");
        let e = error(
            json!({"must": [{"key": "g", "geo_polygon": {"exterior": {"points": [
                {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 0, "lat": 0}
            ]}}}]}),
        );
        assert!(e.contains("at least 4 points, got 3"), "{e}");
        let e = error(json!({"must": [{"key": "a", "values_count": {"gt": -1}}]}));
        assert!(
            e.contains("values_count") || e.contains("invalid value"),
            "{e}"
        );
        let e = error(json!({"min_should": {"conditions": [], "min": 1}}));
        assert!(e.contains("min"), "{e}");
        let e = error(json!({"must": [{"nested": {"key": "a"}}]}));
        assert!(e.contains("nested") && e.contains("filter"), "{e}");
        let e = error(json!({"must": [5]}));
        assert!(
            e.contains("a condition must be an object, got a number"),
            "{e}"
        );
    }
}
