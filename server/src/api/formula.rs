//! Qdrant's `{"formula": …, "defaults": {…}}` query as the engine's typed formula.
//!
//! Qdrant reads an expression as an untagged enum, so a malformed one only gets "did not match any
//! variant"; here each node is read by its shape and a bad one is refused (400) with its place in the
//! tree (`formula.sum[1].div.right`) and what that place takes.

use std::collections::HashMap;

use serde_json::{Map, Value};

use quiver_engine::filter::{Condition, Datetime, Filter, GeoPoint, OneOrMany};
use quiver_engine::query::formula::{Decay, DecayKind, Expression, Formula, Variable};

use super::error::{invalid, Error};

/// What an expression may be, for error messages.
const EXPRESSIONS: &str = "a number, a variable (\"$score\", \"$score[i]\" or a payload key), a \
    condition, or an object with one of mult, sum, neg, abs, div, sqrt, pow, exp, log10, ln, \
    geo_distance, datetime, datetime_key, lin_decay, exp_decay, gauss_decay";

/// Keys that make an object a filter condition rather than an operation.
const CONDITION_KEYS: [&str; 10] = [
    "key",
    "has_id",
    "has_vector",
    "is_empty",
    "is_null",
    "nested",
    "must",
    "should",
    "must_not",
    "min_should",
];

/// The body of a formula query: the object holding `formula` and, optionally, `defaults`.
pub fn formula_query(mut map: Map<String, Value>) -> Result<Formula, Error> {
    map.retain(|_, v| !v.is_null());
    if let Some(key) = map.keys().find(|k| *k != "formula" && *k != "defaults") {
        return Err(invalid(format!(
            "a formula query has no field `{key}`: it takes `formula` and `defaults`"
        )));
    }
    let expression = expression(map.remove("formula").unwrap_or_default(), "formula")?;
    let defaults = match map.remove("defaults") {
        None => HashMap::new(),
        Some(Value::Object(d)) => d
            .into_iter()
            .map(|(k, v)| {
                let var = Variable::parse(&k)
                    .map_err(|e| invalid(format!("`defaults` key `{k}`: {e}")))?;
                Ok((var, v))
            })
            .collect::<Result<_, Error>>()?,
        Some(other) => {
            return Err(invalid(format!(
                "`defaults` is an object of variable → value, got {}",
                kind(&other)
            )))
        }
    };
    Ok(Formula {
        expression,
        defaults,
    })
}

fn expression(value: Value, at: &str) -> Result<Expression, Error> {
    match value {
        // Qdrant reads constants as f32: going through it keeps the scores equal to Qdrant's.
        Value::Number(n) => {
            let c = n.as_f64().unwrap_or(f64::NAN) as f32;
            if !c.is_finite() {
                return Err(invalid(format!(
                    "`{at}`: {n} is not a finite 32-bit number"
                )));
            }
            Ok(Expression::Constant(f64::from(c)))
        }
        Value::String(s) => Variable::parse(&s)
            .map(Expression::Variable)
            .map_err(|e| invalid(format!("`{at}`: {e}"))),
        Value::Object(map) if CONDITION_KEYS.iter().any(|k| map.contains_key(*k)) => {
            condition(map, at)
        }
        Value::Object(map) => operation(map, at),
        other => Err(invalid(format!(
            "`{at}` is {EXPRESSIONS}; got {}",
            kind(&other)
        ))),
    }
}

fn condition(map: Map<String, Value>, at: &str) -> Result<Expression, Error> {
    let c: Condition = serde_json::from_value(Value::Object(map))
        .map_err(|e| invalid(format!("`{at}` is not a valid condition: {e}")))?;
    // The checks a filter gets (a field condition needs a test), through the same code.
    Filter {
        must: Some(OneOrMany::One(Box::new(c.clone()))),
        ..Filter::default()
    }
    .validate()?;
    Ok(Expression::Condition(Box::new(c)))
}

fn operation(map: Map<String, Value>, at: &str) -> Result<Expression, Error> {
    if map.len() != 1 {
        let keys: Vec<&String> = map.keys().collect();
        return Err(invalid(format!(
            "`{at}` is {EXPRESSIONS}; an operation has exactly one key, got {keys:?}"
        )));
    }
    let (op, value) = map.into_iter().next().expect("one key");
    let here = format!("{at}.{op}");
    let one = |value: Value| expression(value, &here).map(Box::new);
    Ok(match op.as_str() {
        "mult" | "sum" => {
            let Value::Array(items) = value else {
                return Err(invalid(format!(
                    "`{here}` is a list of expressions, got {}",
                    kind(&value)
                )));
            };
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| expression(v, &format!("{here}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            if op == "mult" {
                Expression::Mult(items)
            } else {
                Expression::Sum(items)
            }
        }
        "neg" => Expression::Neg(one(value)?),
        "abs" => Expression::Abs(one(value)?),
        "sqrt" => Expression::Sqrt(one(value)?),
        "exp" => Expression::Exp(one(value)?),
        "log10" => Expression::Log10(one(value)?),
        "ln" => Expression::Ln(one(value)?),
        "div" => {
            let mut p = params(value, &here, &["left", "right", "by_zero_default"])?;
            let left = required(&mut p, &here, "left")?;
            let right = required(&mut p, &here, "right")?;
            let by_zero_default = number(p.remove("by_zero_default"), &here, "by_zero_default")?;
            Expression::Div {
                left: Box::new(left),
                right: Box::new(right),
                by_zero_default,
            }
        }
        "pow" => {
            let mut p = params(value, &here, &["base", "exponent"])?;
            Expression::Pow {
                base: Box::new(required(&mut p, &here, "base")?),
                exponent: Box::new(required(&mut p, &here, "exponent")?),
            }
        }
        "geo_distance" => {
            let mut p = params(value, &here, &["origin", "to"])?;
            let origin: GeoPoint = match p.remove("origin") {
                Some(o) => serde_json::from_value(o)
                    .map_err(|e| invalid(format!("`{here}.origin`: {e}")))?,
                None => {
                    return Err(invalid(format!(
                        "`{here}` needs `origin` {{\"lat\", \"lon\"}}"
                    )))
                }
            };
            let to = key(p.remove("to"), &format!("{here}.to"))?;
            Expression::GeoDistance { origin, to }
        }
        "datetime" => match value {
            Value::String(s) => Expression::Datetime(
                Datetime::parse(&s).map_err(|e| invalid(format!("`{here}`: {e}")))?,
            ),
            other => {
                return Err(invalid(format!(
                    "`{here}` is a datetime string, got {}",
                    kind(&other)
                )))
            }
        },
        "datetime_key" => Expression::DatetimeKey(key(Some(value), &here)?),
        "lin_decay" | "exp_decay" | "gauss_decay" => {
            let kind = match op.as_str() {
                "lin_decay" => DecayKind::Lin,
                "exp_decay" => DecayKind::Exp,
                _ => DecayKind::Gauss,
            };
            let mut p = params(value, &here, &["x", "target", "scale", "midpoint"])?;
            let x = required(&mut p, &here, "x")?;
            let target = match p.remove("target") {
                Some(t) => Some(expression(t, &format!("{here}.target"))?),
                None => None,
            };
            let scale = number(p.remove("scale"), &here, "scale")?;
            let midpoint = number(p.remove("midpoint"), &here, "midpoint")?;
            Expression::Decay(
                Decay::new(kind, x, target, midpoint, scale)
                    .map_err(|e| invalid(format!("`{here}`: {e}")))?,
            )
        }
        _ => {
            return Err(invalid(format!(
                "`{at}` has unknown operation `{op}`: it is {EXPRESSIONS}"
            )))
        }
    })
}

/// The fields of an operation's object, none but `allowed` (nulls are absent).
fn params(value: Value, at: &str, allowed: &[&str]) -> Result<Map<String, Value>, Error> {
    let Value::Object(mut map) = value else {
        return Err(invalid(format!(
            "`{at}` is an object with {}, got {}",
            allowed.join(", "),
            kind(&value)
        )));
    };
    map.retain(|_, v| !v.is_null());
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(format!(
            "`{at}` has no field `{k}`: it takes {}",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

fn required(p: &mut Map<String, Value>, at: &str, name: &str) -> Result<Expression, Error> {
    match p.remove(name) {
        Some(v) => expression(v, &format!("{at}.{name}")),
        None => Err(invalid(format!("`{at}` needs `{name}`"))),
    }
}

/// An optional number parameter, read as the f32 Qdrant reads it.
fn number(v: Option<Value>, at: &str, name: &str) -> Result<Option<f64>, Error> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN) as f32;
            if x.is_finite() {
                Ok(Some(f64::from(x)))
            } else {
                Err(invalid(format!(
                    "`{at}.{name}`: {n} is not a finite 32-bit number"
                )))
            }
        }
        Some(other) => Err(invalid(format!(
            "`{at}.{name}` is a number, got {}",
            kind(&other)
        ))),
    }
}

/// A payload key, checked like a payload variable.
fn key(v: Option<Value>, at: &str) -> Result<String, Error> {
    match v {
        Some(Value::String(s)) => match Variable::parse(&s) {
            Ok(Variable::Payload(k)) => Ok(k),
            _ => Err(invalid(format!("`{at}`: `{s}` is not a payload key"))),
        },
        Some(other) => Err(invalid(format!(
            "`{at}` is a payload key, got {}",
            kind(&other)
        ))),
        None => Err(invalid(format!("`{at}` is needed: a payload key"))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Formula, String> {
        formula_query(v.as_object().unwrap().clone()).map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_parses() {
        let f = parse(json!({
            "formula": {"sum": [
                "$score",
                "$score[1]",
                0.5,
                {"mult": [2, "price", {"key": "tag", "match": {"any": ["h1", "h2"]}}]},
                {"neg": 1}, {"abs": -1}, {"sqrt": 4}, {"exp": 0}, {"log10": 10}, {"ln": 1},
                {"div": {"left": 1, "right": "n", "by_zero_default": 0}},
                {"pow": {"base": 2, "exponent": 3}},
                {"geo_distance": {"origin": {"lat": 1, "lon": 2}, "to": "loc"}},
                {"datetime": "2025-03-18"},
                {"datetime_key": "created"},
                {"lin_decay": {"x": "n", "target": 1, "scale": 2, "midpoint": 0.5}},
                {"exp_decay": {"x": "n"}},
                {"gauss_decay": {"x": {"datetime_key": "created"}, "target": {"datetime": "2025-01-01"}}},
                {"must": [{"has_id": [1]}]}
            ]},
            "defaults": {"price": 0, "$score[1]": 0.5}
        }))
        .unwrap();
        let Expression::Sum(terms) = &f.expression else {
            panic!("{f:?}")
        };
        assert_eq!(terms.len(), 19);
        assert_eq!(terms[2], Expression::Constant(0.5));
        assert_eq!(
            f.defaults.get(&Variable::Score(1)),
            Some(&json!(0.5)),
            "{f:?}"
        );
        // Constants go through f32, as in Qdrant.
        let tenth = parse(json!({"formula": 0.1})).unwrap();
        assert_eq!(tenth.expression, Expression::Constant(f64::from(0.1f32)));
    }

    #[test]
    fn errors_name_the_bad_member() {
        let err = |v: Value| parse(v).unwrap_err();
        assert!(err(json!({"formula": {"sum": [1, {"div": {"left": 1}}]}}))
            .contains("`formula.sum[1].div` needs `right`"));
        assert!(
            err(json!({"formula": {"mult": [{"pow": {"base": 1, "exponent": true}}]}}))
                .contains("`formula.mult[0].pow.exponent`")
        );
        assert!(
            err(json!({"formula": {"frobnicate": 1}})).contains("unknown operation `frobnicate`")
        );
        assert!(err(json!({"formula": {"sum": 1}})).contains("`formula.sum` is a list"));
        // Newer Qdrant operations are refused by name rather than misread.
        for op in ["max", "min", "acosh"] {
            assert!(
                err(json!({"formula": {op: [1]}})).contains(&format!("unknown operation `{op}`"))
            );
        }
        assert!(err(json!({"formula": "$price"})).contains("Invalid reserved word: $price"));
        assert!(
            err(json!({"formula": {"exp_decay": {"x": 1, "midpoint": 2}}}))
                .contains("`formula.exp_decay`: Decay midpoint should be in the range (0.0, 1.0)")
        );
        assert!(err(json!({"formula": {"lin_decay": {"x": 1, "speed": 2}}}))
            .contains("`formula.lin_decay` has no field `speed`"));
        assert!(err(json!({"formula": {"datetime": "yesterday"}})).contains("`formula.datetime`"));
        assert!(err(
            json!({"formula": {"geo_distance": {"origin": {"lat": 100, "lon": 0}, "to": "g"}}})
        )
        .contains("`formula.geo_distance.origin`"));
        assert!(err(json!({"formula": {"key": "tag"}})).contains("tag"));
        assert!(err(json!({"formula": 1, "defaults": {"$x": 1}})).contains("`defaults` key `$x`"));
        assert!(err(json!({"formula": 1, "boost": 1})).contains("no field `boost`"));
        assert!(err(json!({"defaults": {}})).contains("`formula` is"));
        assert!(err(json!({"formula": [1]})).contains("got an array"));
    }
}
