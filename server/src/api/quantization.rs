//! `quantization_config` in Qdrant's shape, for a collection and for one vector: parsed field by
//! field so that every setting Quiver does not build (product quantization, binary encodings other
//! than `one_bit`, an int type other than `int8`, unknown fields) is a 400 that names it, never a
//! setting accepted and ignored.

use serde_json::{Map, Value};

use quiver_engine::config::{
    BinaryEncoding, BinaryQuantization, BinaryQueryEncoding, QuantizationConfig,
    ScalarQuantization, ScalarType,
};

use super::error::{invalid, Error};

/// The engine's quantization from a `quantization_config` value (`at` names where it was found);
/// absent or null is none.
pub fn parse(value: Option<Value>, at: &str) -> Result<Option<QuantizationConfig>, Error> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let shape = || {
        invalid(format!(
            "{at}: expected {{\"scalar\": {{\"type\": \"int8\", \"quantile\": 0.99, \
             \"always_ram\": true}}}} or {{\"binary\": {{\"always_ram\": true}}}}"
        ))
    };
    let Value::Object(map) = value else {
        return Err(shape());
    };
    if map.len() != 1 {
        return Err(shape());
    }
    let (kind, body) = map.into_iter().next().expect("one entry");
    let Value::Object(body) = body else {
        return Err(invalid(format!("{at}.{kind} must be an object")));
    };
    let at = format!("{at}.{kind}");
    match kind.as_str() {
        "scalar" => scalar(body, &at).map(|s| Some(QuantizationConfig::Scalar(s))),
        "binary" => binary(body, &at).map(|b| Some(QuantizationConfig::Binary(b))),
        "product" => Err(invalid(format!(
            "{at}: product quantization is not supported (scalar or binary)"
        ))),
        other => Err(invalid(format!(
            "quantization `{other}` is not supported (scalar or binary)"
        ))),
    }
}

fn bool_field(value: Value, at: &str, key: &str) -> Result<Option<bool>, Error> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        _ => Err(invalid(format!("{at}.{key} must be true or false"))),
    }
}

fn scalar(body: Map<String, Value>, at: &str) -> Result<ScalarQuantization, Error> {
    let mut out = ScalarQuantization {
        kind: ScalarType::Int8,
        quantile: None,
        always_ram: None,
    };
    let mut kind_given = false;
    for (key, value) in body {
        match key.as_str() {
            "type" => match value.as_str() {
                Some("int8") => kind_given = true,
                Some(other) => {
                    return Err(invalid(format!(
                        "{at}.type `{other}` is not supported (only int8)"
                    )))
                }
                None => return Err(invalid(format!("{at}.type must be \"int8\""))),
            },
            "quantile" => match value {
                Value::Null => {}
                Value::Number(n) => {
                    let q = n.as_f64().unwrap_or(f64::NAN);
                    if !(q > 0.5 && q <= 1.0) {
                        return Err(invalid(format!(
                            "{at}.quantile must be in (0.5, 1], got {n}"
                        )));
                    }
                    out.quantile = Some(q);
                }
                _ => return Err(invalid(format!("{at}.quantile must be a number"))),
            },
            "always_ram" => out.always_ram = bool_field(value, at, &key)?,
            other => {
                return Err(invalid(format!(
                    "{at}.{other} is not supported (type, quantile, always_ram)"
                )))
            }
        }
    }
    if !kind_given {
        return Err(invalid(format!("{at}.type is required: \"int8\"")));
    }
    Ok(out)
}

/// One of `options` by its name; `null` is unset. Other strings and types are a 400 listing `names`.
fn named<T: Copy>(
    value: &Value,
    at: &str,
    key: &str,
    options: &[(&str, T)],
    names: &str,
) -> Result<Option<T>, Error> {
    match value.as_str() {
        Some(name) => options
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| Some(v))
            .ok_or_else(|| invalid(format!("{at}.{key} `{name}` is not supported ({names})"))),
        None if value.is_null() => Ok(None),
        None => Err(invalid(format!("{at}.{key} must be {names}"))),
    }
}

fn binary(body: Map<String, Value>, at: &str) -> Result<BinaryQuantization, Error> {
    let mut out = BinaryQuantization::default();
    for (key, value) in body {
        match key.as_str() {
            "always_ram" => out.always_ram = bool_field(value, at, &key)?,
            "encoding" => {
                out.encoding = named(
                    &value,
                    at,
                    &key,
                    &[
                        ("one_bit", BinaryEncoding::OneBit),
                        ("two_bits", BinaryEncoding::TwoBits),
                        ("one_and_half_bits", BinaryEncoding::OneAndHalfBits),
                    ],
                    "one_bit, two_bits or one_and_half_bits",
                )?
            }
            "query_encoding" => {
                out.query_encoding = named(
                    &value,
                    at,
                    &key,
                    &[
                        ("default", BinaryQueryEncoding::Default),
                        ("binary", BinaryQueryEncoding::Binary),
                        ("scalar4bits", BinaryQueryEncoding::Scalar4Bits),
                        ("scalar8bits", BinaryQueryEncoding::Scalar8Bits),
                    ],
                    "default, binary, scalar4bits or scalar8bits",
                )?
            }
            other => {
                return Err(invalid(format!(
                    "{at}.{other} is not supported (always_ram, encoding, query_encoding)"
                )))
            }
        }
    }
    Ok(out)
}

/// The config as Qdrant shows it.
pub fn to_json(config: &QuantizationConfig) -> Value {
    serde_json::to_value(config).expect("a quantization config serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        parse(Some(v), "quantization_config")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn qdrant_shapes_parse_and_echo() {
        let v = json!({"scalar": {"type": "int8", "quantile": 0.95, "always_ram": true}});
        let q = parse(Some(v.clone()), "q").unwrap().unwrap();
        assert_eq!(to_json(&q), v);
        for v in [
            json!({"binary": {"always_ram": false, "encoding": "one_bit"}}),
            json!({"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}}),
            json!({"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar4bits"}}),
            json!({"binary": {"query_encoding": "binary"}}),
            json!({"binary": {"query_encoding": "default"}}),
        ] {
            assert_eq!(to_json(&parse(Some(v.clone()), "q").unwrap().unwrap()), v);
        }
        assert_eq!(parse(Some(Value::Null), "q").unwrap(), None);
    }

    #[test]
    fn what_is_not_built_is_refused_by_name() {
        assert!(err(json!({"scalar": {"type": "int4"}})).contains("`int4`"));
        assert!(err(json!({"scalar": {"type": "int8", "quantile": 0.5}})).contains("quantile"));
        assert!(err(json!({"scalar": {"type": "int8", "quantile": 1.5}})).contains("quantile"));
        assert!(err(json!({"scalar": {"quantile": 0.9}})).contains("type is required"));
        assert!(err(json!({"binary": {"encoding": "three_bits"}})).contains("`three_bits`"));
        assert!(err(json!({"binary": {"query_encoding": "scalar2bits"}}))
            .contains("query_encoding `scalar2bits`"));
        assert!(err(json!({"binary": {"query_encoding": 8}})).contains("query_encoding"));
        assert!(err(json!({"binary": {"bits": 2}})).contains("bits"));
        assert!(err(json!({"product": {"compression": "x16"}})).contains("product"));
        assert!(err(json!({"lattice": {}})).contains("`lattice`"));
    }
}
