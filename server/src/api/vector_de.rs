//! Deserializers for [`VectorValue`] and [`VectorStruct`] that read a vector's numbers straight into
//! `Vec<f32>`.
//!
//! Both types are unions that JSON does not tag. Serde's `untagged` derive buffers the whole input
//! into an intermediate tree and then tries each variant in turn; for a point or query holding a
//! 784-dimensional vector that was a copy of every number, twice for an upsert's vector map, and a
//! measurable share of a search request's CPU. Here the first token decides: an array is a dense
//! vector or a multivector (its first element says which), an object is a sparse vector or an
//! inference object. Objects are small, so they are still read into a `serde_json::Map` first.
//!
//! The accepted inputs are those of the derive: a map of vector names comes first, so
//! `{"image": [1, 2]}` is a named vector, and only a map that is not one is an inference object.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::common::{InferenceObject, SparseVectorDto, VectorStruct, VectorValue};

const EXPECTED_VALUE: &str = "a vector of numbers, a list of vectors, a sparse vector \
                              {\"indices\", \"values\"} or an inference object {\"text\" | \"image\", \"model\"}";

/// The first element of an array: a number starts a dense vector, an array a multivector.
enum First {
    Number(f32),
    Row(Vec<f32>),
}

impl<'de> Deserialize<'de> for First {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = First;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a list of numbers")
            }
            // `as f32` is what serde's own `f32` does with any JSON number.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<First, E> {
                Ok(First::Number(v as f32))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<First, E> {
                Ok(First::Number(v as f32))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<First, E> {
                Ok(First::Number(v as f32))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<First, A::Error> {
                Vec::<f32>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(First::Row)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the rest of an array whose first element was read.
fn rest_of_array<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<VectorValue, A::Error> {
    let hint = seq.size_hint().unwrap_or(0);
    match seq.next_element::<First>()? {
        None => Ok(VectorValue::Dense(Vec::new())),
        Some(First::Number(x)) => {
            let mut v = Vec::with_capacity(hint.max(16));
            v.push(x);
            while let Some(x) = seq.next_element::<f32>()? {
                v.push(x);
            }
            Ok(VectorValue::Dense(v))
        }
        Some(First::Row(row)) => {
            let mut m = Vec::with_capacity(hint.max(1));
            m.push(row);
            while let Some(row) = seq.next_element::<Vec<f32>>()? {
                m.push(row);
            }
            Ok(VectorValue::Multi(m))
        }
    }
}

/// An object as a vector value: a sparse vector when it names `indices` or `values`, else an
/// inference object.
fn object_value<E: de::Error>(map: Map<String, Value>) -> Result<VectorValue, E> {
    if map.contains_key("indices") || map.contains_key("values") {
        return SparseVectorDto::deserialize(Value::Object(map))
            .map(VectorValue::Sparse)
            .map_err(|e| E::custom(format!("a sparse vector {{\"indices\", \"values\"}}: {e}")));
    }
    if map.contains_key("text") || map.contains_key("image") {
        return InferenceObject::deserialize(Value::Object(map))
            .map(VectorValue::Inference)
            .map_err(|e| E::custom(format!("an inference object: {e}")));
    }
    Err(E::custom(format!(
        "an object with keys {:?} is not a vector: expected {EXPECTED_VALUE}",
        map.keys().collect::<Vec<_>>()
    )))
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = VectorValue;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED_VALUE)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<VectorValue, A::Error> {
        rest_of_array(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VectorValue, A::Error> {
        let map = Map::deserialize(de::value::MapAccessDeserializer::new(map))?;
        object_value(map)
    }
}

impl<'de> Deserialize<'de> for VectorValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// One value of an object that may be a map of vector names: a vector value when it is one, else
/// kept as JSON (the object is then an inference object, read again from that JSON).
enum Entry {
    Vector(VectorValue),
    Other(Value),
}

struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Entry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Entry, A::Error> {
                rest_of_array(seq).map(Entry::Vector)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                let map = Map::deserialize(de::value::MapAccessDeserializer::new(map))?;
                // A nested object that is not a vector makes the outer object no map of names;
                // the inference object's own parse then reports what is wrong with it.
                Ok(match object_value::<de::value::Error>(map.clone()) {
                    Ok(v) => Entry::Vector(v),
                    Err(_) => Entry::Other(Value::Object(map)),
                })
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Entry, E> {
                Ok(Entry::Other(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Entry, E> {
                Ok(Entry::Other(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Entry, E> {
                Ok(Entry::Other(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Entry, E> {
                Ok(Entry::Other(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
                Ok(Entry::Other(Value::String(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Entry, E> {
                Ok(Entry::Other(Value::String(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
                Ok(Entry::Other(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Entry, E> {
                Ok(Entry::Other(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
                d.deserialize_any(V)
            }
        }
        d.deserialize_any(V)
    }
}

/// A vector value back as JSON, for the rare object that turns out to be an inference object after
/// some of its members were read as vectors.
fn to_json(v: VectorValue) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

struct StructVisitor;

impl<'de> Visitor<'de> for StructVisitor {
    type Value = VectorStruct;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a map of vector names to vectors, or {EXPECTED_VALUE}")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<VectorStruct, A::Error> {
        rest_of_array(seq).map(VectorStruct::Single)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VectorStruct, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            entries.push((key, map.next_value_seed(EntrySeed)?));
        }
        if entries.iter().all(|(_, e)| matches!(e, Entry::Vector(_))) {
            let mut named = BTreeMap::new();
            for (key, entry) in entries {
                if let Entry::Vector(v) = entry {
                    if named.insert(key.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("duplicate vector name `{key}`")));
                    }
                }
            }
            return Ok(VectorStruct::Named(named));
        }
        let object: Map<String, Value> = entries
            .into_iter()
            .map(|(k, e)| {
                let v = match e {
                    Entry::Vector(v) => to_json(v),
                    Entry::Other(v) => v,
                };
                (k, v)
            })
            .collect();
        object_value(object).map(VectorStruct::Single)
    }
}

impl<'de> Deserialize<'de> for VectorStruct {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StructVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(text: &str) -> Result<VectorValue, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    fn vectors(text: &str) -> Result<VectorStruct, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn arrays_are_dense_vectors_or_multivectors() {
        assert!(
            matches!(value("[1, 2.5, -3e2]"), Ok(VectorValue::Dense(v)) if v == [1.0, 2.5, -300.0])
        );
        assert!(matches!(value("[]"), Ok(VectorValue::Dense(v)) if v.is_empty()));
        assert!(
            matches!(value("[[1, 2], [3, 4]]"), Ok(VectorValue::Multi(m)) if m == [[1.0, 2.0], [3.0, 4.0]])
        );
        // Numbers past f32's range become infinite, as with serde's own f32; callers refuse them.
        assert!(matches!(value("[1e39]"), Ok(VectorValue::Dense(v)) if v[0].is_infinite()));
        for bad in [
            "[1, [2]]", "[[1], 2]", "[\"a\"]", "[null]", "[true]", "\"text\"", "3",
        ] {
            assert!(value(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn objects_are_sparse_vectors_or_inference_objects() {
        let sparse = value(r#"{"indices": [3, 1], "values": [0.5, 2]}"#).unwrap();
        assert!(
            matches!(sparse, VectorValue::Sparse(s) if s.indices == [3, 1] && s.values == [0.5, 2.0])
        );
        let doc = value(r#"{"text": "hello", "model": "m"}"#).unwrap();
        assert!(
            matches!(doc, VectorValue::Inference(InferenceObject::Document(d)) if d.text == "hello")
        );
        let image = value(r#"{"image": "aGk=", "model": "m"}"#).unwrap();
        assert!(matches!(
            image,
            VectorValue::Inference(InferenceObject::Image(_))
        ));
        let err = value(r#"{"indices": [1], "values": [1], "extra": 1}"#).unwrap_err();
        assert!(err.contains("extra"), "{err}");
        let err = value(r#"{"foo": 1}"#).unwrap_err();
        assert!(err.contains("foo"), "{err}");
    }

    #[test]
    fn a_map_of_vectors_is_named_even_when_a_name_is_image_or_text() {
        let v =
            vectors(r#"{"image": [1, 2, 3, 4], "text": {"indices": [1], "values": [1]}}"#).unwrap();
        let VectorStruct::Named(map) = v else {
            panic!("not named")
        };
        assert!(matches!(&map["image"], VectorValue::Dense(v) if v.len() == 4));
        assert!(matches!(&map["text"], VectorValue::Sparse(_)));
        let multi = vectors(r#"{"colbert": [[1, 2], [3, 4]], "": [1]}"#).unwrap();
        assert!(matches!(multi, VectorStruct::Named(m) if m.len() == 2));
    }

    #[test]
    fn a_map_that_is_not_one_of_vectors_is_an_inference_object() {
        let v = vectors(r#"{"text": "hello", "model": "m", "options": {"task": "code"}}"#).unwrap();
        assert!(matches!(
            v,
            VectorStruct::Single(VectorValue::Inference(InferenceObject::Document(d)))
                if d.text == "hello" && d.options.as_ref().unwrap()["task"] == json!("code")
        ));
        let named_doc = vectors(r#"{"dense": {"text": "hi", "model": "m"}}"#).unwrap();
        assert!(
            matches!(named_doc, VectorStruct::Named(m) if matches!(m["dense"], VectorValue::Inference(_)))
        );
        let single = vectors("[0.5, 1]").unwrap();
        assert!(matches!(single, VectorStruct::Single(VectorValue::Dense(v)) if v == [0.5, 1.0]));
        assert!(vectors(r#"{"a": [1, "x"]}"#).is_err());
        assert!(vectors(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn reads_from_a_json_value_too() {
        let v: VectorValue = serde_json::from_value(json!([1.0, 2.0])).unwrap();
        assert!(matches!(v, VectorValue::Dense(v) if v == [1.0, 2.0]));
        let v: VectorStruct = serde_json::from_value(json!({"a": [[1.0]]})).unwrap();
        assert!(matches!(v, VectorStruct::Named(_)));
    }
}
