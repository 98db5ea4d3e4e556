//! Payload operations and payload projection (`with_payload`), as Qdrant applies them.

use std::borrow::Cow;

use serde_json::Value;

use crate::point::{Payload, PayloadOp, WithPayload};

/// Applies a payload operation to one payload.
pub(crate) fn apply(payload: &mut Payload, op: &PayloadOp) {
    match op {
        PayloadOp::Set { payload: new, key } => {
            let target = match key.as_deref() {
                None | Some("") => payload,
                Some(path) => object_at(payload, path),
            };
            for (k, v) in new {
                target.insert(k.clone(), v.clone());
            }
        }
        PayloadOp::Overwrite(new) => *payload = new.clone(),
        PayloadOp::DeleteKeys(keys) => {
            for key in keys {
                remove_path(payload, key);
            }
        }
        PayloadOp::Clear => payload.clear(),
    }
}

/// The object at dotted `path`, creating (or replacing non-objects with) empty objects on the way.
fn object_at<'a>(payload: &'a mut Payload, path: &str) -> &'a mut Payload {
    let mut cur = payload;
    for part in path.split('.') {
        let slot = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Payload::new()));
        if !slot.is_object() {
            *slot = Value::Object(Payload::new());
        }
        cur = slot.as_object_mut().expect("just made an object");
    }
    cur
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

/// Checks a `with_payload` request and the payload it would return.
pub(crate) fn project(payload: Cow<'_, Payload>, with: &WithPayload) -> Option<Payload> {
    match with {
        WithPayload::None => None,
        WithPayload::All => Some(payload.into_owned()),
        WithPayload::Include(keys) => Some(
            payload
                .iter()
                .filter(|(k, _)| keys.iter().any(|x| x == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        WithPayload::Exclude(keys) => Some(
            payload
                .iter()
                .filter(|(k, _)| !keys.iter().any(|x| x == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
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
}
