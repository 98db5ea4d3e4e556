//! Payload operations and payload projection (`with_payload`), as Qdrant applies them.

use std::borrow::Cow;

use serde_json::Value;

use crate::filter::path::{self, Step};
use crate::point::{Payload, PayloadOp, WithPayload};

/// Applies a payload operation to one payload.
pub(crate) fn apply(payload: &mut Payload, op: &PayloadOp) {
    match op {
        PayloadOp::Set { payload: new, key } => match key.as_deref().and_then(path::parsed) {
            Some(steps) => set_at(payload, &steps, new),
            None => merge(payload, new),
        },
        PayloadOp::Overwrite(new) => *payload = new.clone(),
        PayloadOp::DeleteKeys(keys) => {
            for key in keys {
                remove_path(payload, key);
            }
        }
        PayloadOp::Clear => payload.clear(),
    }
}

fn merge(target: &mut Payload, new: &Payload) {
    for (k, v) in new {
        target.insert(k.clone(), v.clone());
    }
}

/// Merges `new` into the object(s) that `steps` reach, as Qdrant's set-by-key does: a missing or
/// non-object value on the way becomes an object, `[i]` grows the array with nulls up to `i`, and `[]`
/// walks every element (a non-array there becomes an empty array).
fn set_at(payload: &mut Payload, steps: &[Step<'_>], new: &Payload) {
    let Some((Step::Key(first), rest)) = steps.split_first() else {
        return merge(payload, new);
    };
    set_in(
        payload.entry(first.to_string()).or_insert(Value::Null),
        rest,
        new,
    );
}

fn set_in(dest: &mut Value, steps: &[Step<'_>], new: &Payload) {
    match steps.split_first() {
        None => {
            if !dest.is_object() {
                *dest = Value::Object(Payload::new());
            }
            merge(dest.as_object_mut().expect("an object"), new);
        }
        Some((Step::Key(k), rest)) => {
            if !dest.is_object() {
                *dest = Value::Object(Payload::new());
            }
            let map = dest.as_object_mut().expect("an object");
            set_in(map.entry(k.to_string()).or_insert(Value::Null), rest, new);
        }
        Some((Step::Element(i), rest)) => {
            if !dest.is_array() {
                *dest = Value::Array(Vec::new());
            }
            let items = dest.as_array_mut().expect("an array");
            if *i >= items.len() {
                items.resize(i + 1, Value::Null);
            }
            set_in(&mut items[*i], rest, new);
        }
        Some((Step::AllElements, rest)) => match dest {
            Value::Array(items) => items.iter_mut().for_each(|v| set_in(v, rest, new)),
            _ => *dest = Value::Array(Vec::new()),
        },
    }
}

/// Removes a key; a key with dots that is not itself a top-level key walks into nested objects.
fn remove_path(payload: &mut Payload, key: &str) {
    if payload.remove(key).is_some() {
        return;
    }
    let Some((head, rest)) = key.split_once('.') else {
        return;
    };
    if let Some(Value::Object(inner)) = payload.get_mut(head) {
        remove_path(inner, rest);
    }
}

/// [`project`] on a payload read only when the request returns some of it (`with_payload: false`
/// parses nothing).
pub(crate) fn project_with<'a>(
    load: impl FnOnce() -> Cow<'a, Payload>,
    with: &WithPayload,
) -> Option<Payload> {
    match with {
        WithPayload::None => None,
        _ => project(load(), with),
    }
}

/// Checks a `with_payload` request and the payload it would return.
pub(crate) fn project(payload: Cow<'_, Payload>, with: &WithPayload) -> Option<Payload> {
    match with {
        WithPayload::None => None,
        WithPayload::All => Some(payload.into_owned()),
        WithPayload::Include(keys) => {
            let patterns = patterns(keys);
            // Kept: every value on the way to a pattern and everything under it.
            Some(filter_tree(&payload, &|path| {
                patterns.iter().any(|p| starts_alike(path, p))
            }))
        }
        WithPayload::Exclude(keys) => {
            let patterns = patterns(keys);
            // Dropped: the values a pattern reaches and everything under them.
            Some(filter_tree(&payload, &|path| {
                !patterns
                    .iter()
                    .any(|p| p.len() <= path.len() && starts_alike(path, p))
            }))
        }
    }
}

/// One step of the path to a value inside a payload: a field, or any element of an array.
enum Seg<'a> {
    Key(&'a str),
    Each,
}

/// `with_payload` keys as paths (`a.b`, `a[].b`); a key that is not in the path syntax is one field.
fn patterns(keys: &[String]) -> Vec<Vec<Step<'_>>> {
    keys.iter()
        .map(|k| path::parsed(k).unwrap_or_else(|| vec![Step::Key(k)]))
        .collect()
}

/// Whether `path` and `pattern` agree on the steps both have (Qdrant's include test): a field matches
/// that field, an array element matches `[]` only.
fn starts_alike(path: &[Seg<'_>], pattern: &[Step<'_>]) -> bool {
    path.iter().zip(pattern).all(|(a, b)| match (a, b) {
        (Seg::Key(a), Step::Key(b)) => a == b,
        (Seg::Each, Step::AllElements) => true,
        _ => false,
    })
}

/// The payload with only the values whose path `keep` accepts (a rejected value is left out whole).
fn filter_tree(payload: &Payload, keep: &dyn Fn(&[Seg<'_>]) -> bool) -> Payload {
    let mut path = Vec::new();
    filter_object(&mut path, payload, keep)
}

fn filter_object<'a>(
    path: &mut Vec<Seg<'a>>,
    map: &'a Payload,
    keep: &dyn Fn(&[Seg<'_>]) -> bool,
) -> Payload {
    let mut out = Payload::new();
    for (k, v) in map {
        path.push(Seg::Key(k));
        if keep(path) {
            out.insert(k.clone(), filter_value(path, v, keep));
        }
        path.pop();
    }
    out
}

fn filter_value<'a>(
    path: &mut Vec<Seg<'a>>,
    value: &'a Value,
    keep: &dyn Fn(&[Seg<'_>]) -> bool,
) -> Value {
    match value {
        Value::Object(map) => Value::Object(filter_object(path, map, keep)),
        Value::Array(items) => {
            path.push(Seg::Each);
            let kept = if keep(path) {
                items.iter().map(|v| filter_value(path, v, keep)).collect()
            } else {
                Vec::new()
            };
            path.pop();
            Value::Array(kept)
        }
        other => other.clone(),
    }
}

/// Parses stored payload bytes. The bytes were produced by `serde_json` from a map, so failure means a
/// damaged file that passed its checksum; it is logged and read as empty rather than failing a search.
pub(crate) fn parse(bytes: &[u8]) -> Payload {
    if bytes == b"{}" {
        return Payload::new();
    }
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        tracing::error!("stored payload does not parse ({e}); reading it as empty");
        Payload::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Payload {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn set_overwrite_delete_clear() {
        let mut p = obj(json!({"a": 1, "n": {"x": 1, "y": 2}}));
        apply(
            &mut p,
            &PayloadOp::Set {
                payload: obj(json!({"b": 2})),
                key: None,
            },
        );
        assert_eq!(
            Value::Object(p.clone()),
            json!({"a": 1, "b": 2, "n": {"x": 1, "y": 2}})
        );
        apply(
            &mut p,
            &PayloadOp::Set {
                payload: obj(json!({"z": 3})),
                key: Some("n.deep".into()),
            },
        );
        assert_eq!(p["n"]["deep"], json!({"z": 3}));
        apply(
            &mut p,
            &PayloadOp::DeleteKeys(vec!["a".into(), "n.x".into()]),
        );
        assert_eq!(
            Value::Object(p.clone()),
            json!({"b": 2, "n": {"y": 2, "deep": {"z": 3}}})
        );
        apply(&mut p, &PayloadOp::Overwrite(obj(json!({"only": true}))));
        assert_eq!(Value::Object(p.clone()), json!({"only": true}));
        apply(&mut p, &PayloadOp::Clear);
        assert!(p.is_empty());
    }

    #[test]
    fn set_under_a_key_walks_array_elements_as_qdrant_does() {
        let set = |p: &mut Payload, key: &str, new: Value| {
            apply(
                p,
                &PayloadOp::Set {
                    payload: obj(new),
                    key: Some(key.into()),
                },
            )
        };
        let mut p = obj(json!({"a": {"arr": [{"b": {"x": 1}}, {"b": {"x": 2}}]}, "g": 5}));
        set(&mut p, "a.arr[0].b", json!({"y": 3}));
        assert_eq!(
            Value::Object(p.clone()),
            json!({"a": {"arr": [{"b": {"x": 1, "y": 3}}, {"b": {"x": 2}}]}, "g": 5})
        );
        set(&mut p, "a.arr[].b", json!({"z": 0}));
        assert_eq!(p["a"]["arr"][0]["b"], json!({"x": 1, "y": 3, "z": 0}));
        assert_eq!(p["a"]["arr"][1]["b"], json!({"x": 2, "z": 0}));
        set(&mut p, "k.list[2]", json!({"c": 1}));
        assert_eq!(p["k"], json!({"list": [null, null, {"c": 1}]}));
        set(&mut p, "g.h", json!({"c": 1}));
        assert_eq!(p["g"], json!({"h": {"c": 1}}));
        set(&mut p, "none[].x", json!({"c": 1}));
        assert_eq!(p["none"], json!([]));
        set(&mut p, "\"q.r\"", json!({"c": 1}));
        assert_eq!(p["q.r"], json!({"c": 1}));
    }

    #[test]
    fn projection() {
        let p = obj(json!({"a": 1, "b": 2}));
        assert_eq!(project(Cow::Borrowed(&p), &WithPayload::None), None);
        assert_eq!(
            project(Cow::Borrowed(&p), &WithPayload::Include(vec!["a".into()])).unwrap(),
            obj(json!({"a": 1}))
        );
        assert_eq!(
            project(Cow::Borrowed(&p), &WithPayload::Exclude(vec!["a".into()])).unwrap(),
            obj(json!({"b": 2}))
        );
    }

    #[test]
    fn projection_of_nested_paths_follows_qdrant() {
        let p = obj(json!({
            "country": {"name": "Japan", "code": "JP", "cities": [{"name": "Tokyo", "pop": 9}, {"pop": 1}]},
            "n": 1
        }));
        let include = |keys: &[&str]| {
            let keys = keys.iter().map(|k| k.to_string()).collect();
            Value::Object(project(Cow::Borrowed(&p), &WithPayload::Include(keys)).unwrap())
        };
        let exclude = |keys: &[&str]| {
            let keys = keys.iter().map(|k| k.to_string()).collect();
            Value::Object(project(Cow::Borrowed(&p), &WithPayload::Exclude(keys)).unwrap())
        };
        assert_eq!(
            include(&["country.name"]),
            json!({"country": {"name": "Japan"}})
        );
        assert_eq!(
            include(&["country.cities[].name", "n"]),
            json!({"country": {"cities": [{"name": "Tokyo"}, {}]}, "n": 1})
        );
        assert_eq!(
            include(&["country.cities.name"]),
            json!({"country": {"cities": []}})
        );
        assert_eq!(
            exclude(&["country.code", "country.cities[].pop"]),
            json!({"country": {"name": "Japan", "cities": [{"name": "Tokyo"}, {}]}, "n": 1})
        );
        assert_eq!(exclude(&["country"]), json!({"n": 1}));
    }
}
