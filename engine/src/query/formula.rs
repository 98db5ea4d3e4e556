//! Qdrant's formula queries ("score boosting"): an expression over the scores of a stage's
//! prefetches, the values in a point's payload and conditions on it, evaluated for every candidate
//! the prefetches found.
//!
//! The evaluation follows Qdrant's `FormulaScorer` (`lib/segment/src/index/query_optimization/
//! rescore_formula/`), including what it refuses: a payload variable without a value and without a
//! default, a value of the wrong type, and any non-finite intermediate of `div`, `sqrt`, `pow`, `exp`,
//! `log10` and `ln` or a final score that is not a finite `f32` fail the whole query with Qdrant's
//! wording, rather than ranking the point somewhere arbitrary.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::filter::{path, Condition, Datetime, GeoPoint};
use crate::point::Payload;
use crate::{Error, Result};

/// A formula and the values its variables take where a point has none.
#[derive(Clone, Debug, PartialEq)]
pub struct Formula {
    /// What each candidate scores.
    pub expression: Expression,
    /// Per variable, the value used when the point has none: a number, a geo point or a datetime
    /// string, whatever the expressions that read the variable expect.
    pub defaults: HashMap<Variable, Value>,
}

/// A variable of a formula.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Variable {
    /// `$score[i]` (`$score` is `$score[0]`): the point's score in the i-th prefetch.
    Score(usize),
    /// A payload key, in the filters' path syntax (`a.b`, `a[0]`, `a[].b`).
    Payload(String),
}

impl Variable {
    /// Parses a variable as Qdrant does: `$score`, `$score[i]`, or a payload key; Qdrant's wording
    /// for the rest.
    pub fn parse(s: &str) -> std::result::Result<Variable, String> {
        if let Some(reserved) = s.strip_prefix('$') {
            let Some(rest) = reserved.strip_prefix("score") else {
                return Err(format!("Invalid reserved word: {s}"));
            };
            if rest.is_empty() {
                return Ok(Variable::Score(0));
            }
            return rest
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|i| i.parse().ok())
                .map(Variable::Score)
                .ok_or_else(|| format!("Invalid reserved variable: {s}"));
        }
        match path::parsed(s) {
            Some(_) => Ok(Variable::Payload(s.to_string())),
            None => Err(format!("Invalid payload variable: {s}")),
        }
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variable::Score(i) => write!(f, "$score[{i}]"),
            Variable::Payload(key) => f.write_str(key),
        }
    }
}

/// One node of a formula.
#[derive(Clone, Debug, PartialEq)]
pub enum Expression {
    /// A number.
    Constant(f64),
    /// A prefetch score or a payload number.
    Variable(Variable),
    /// 1 where the point meets the condition, else 0.
    Condition(Box<Condition>),
    /// Haversine distance in meters from `origin` to the geo point at the payload key `to`.
    GeoDistance {
        /// Where distances are measured from.
        origin: GeoPoint,
        /// The payload key of the point's location.
        to: String,
    },
    /// An instant, as seconds since the Unix epoch.
    Datetime(Datetime),
    /// The datetime at a payload key, as seconds since the Unix epoch.
    DatetimeKey(String),
    /// The product (1 for none).
    Mult(Vec<Expression>),
    /// The sum (0 for none).
    Sum(Vec<Expression>),
    /// The negation.
    Neg(Box<Expression>),
    /// The absolute value.
    Abs(Box<Expression>),
    /// `left / right`; `by_zero_default` where `right` is 0.
    Div {
        /// The dividend.
        left: Box<Expression>,
        /// The divisor.
        right: Box<Expression>,
        /// The value where the divisor is 0 (without it, that is an error).
        by_zero_default: Option<f64>,
    },
    /// The square root.
    Sqrt(Box<Expression>),
    /// `base ^ exponent`.
    Pow {
        /// The base.
        base: Box<Expression>,
        /// The exponent.
        exponent: Box<Expression>,
    },
    /// `e ^ x`.
    Exp(Box<Expression>),
    /// The base-10 logarithm.
    Log10(Box<Expression>),
    /// The natural logarithm.
    Ln(Box<Expression>),
    /// A decay of the distance between `x` and a target into (0, 1].
    Decay(Decay),
}

/// The shape of a [`Decay`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecayKind {
    /// `max(0, 1 − λ·|x − target|)`, λ = (1 − midpoint) / scale.
    Lin,
    /// `exp(λ·|x − target|)`, λ = ln(midpoint) / scale.
    Exp,
    /// `exp(λ·(x − target)²)`, λ = ln(midpoint) / scale².
    Gauss,
}

/// Qdrant's `lin_decay`, `exp_decay` and `gauss_decay`: 1 at the target, `midpoint` at `scale` from
/// it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decay {
    /// The shape.
    pub kind: DecayKind,
    /// The value that decays.
    pub x: Box<Expression>,
    /// Where the decay is 1 (0 when absent).
    pub target: Option<Box<Expression>>,
    lambda: f64,
}

/// Qdrant's default `midpoint` of a decay.
pub const DEFAULT_DECAY_MIDPOINT: f64 = 0.5;
/// Qdrant's default `scale` of a decay.
pub const DEFAULT_DECAY_SCALE: f64 = 1.0;

impl Decay {
    /// A decay, with `midpoint` and `scale` checked as Qdrant checks them (its wording).
    pub fn new(
        kind: DecayKind,
        x: Expression,
        target: Option<Expression>,
        midpoint: Option<f64>,
        scale: Option<f64>,
    ) -> std::result::Result<Decay, String> {
        let midpoint = midpoint.unwrap_or(DEFAULT_DECAY_MIDPOINT);
        let scale = scale.unwrap_or(DEFAULT_DECAY_SCALE);
        match kind {
            DecayKind::Lin if !(0.0..=1.0).contains(&midpoint) => {
                return Err(format!(
                    "Linear decay midpoint should be in the range [0.0, 1.0], got {midpoint}."
                ))
            }
            // ln(midpoint) must be finite and negative, or the decay would not decay.
            DecayKind::Exp | DecayKind::Gauss if midpoint <= 0.0 || midpoint >= 1.0 => {
                return Err(format!(
                    "Decay midpoint should be in the range (0.0, 1.0), got {midpoint}."
                ))
            }
            _ => {}
        }
        if scale.is_nan() || scale <= 0.0 {
            return Err(format!(
                "Decay scale should be non-zero positive, got {scale}."
            ));
        }
        let lambda = match kind {
            DecayKind::Lin => (1.0 - midpoint) / scale,
            DecayKind::Exp => midpoint.ln() / scale,
            DecayKind::Gauss => midpoint.ln() / (scale * scale),
        };
        Ok(Decay {
            kind,
            x: Box::new(x),
            target: target.map(Box::new),
            lambda,
        })
    }

    fn apply(&self, x: f64, target: f64) -> f64 {
        let diff = x - target;
        match self.kind {
            DecayKind::Lin => (1.0 - self.lambda * diff.abs()).max(0.0),
            DecayKind::Exp => (self.lambda * diff.abs()).exp(),
            DecayKind::Gauss => (self.lambda * diff * diff).exp(),
        }
    }
}

/// What a formula reads of one candidate.
pub(crate) trait Candidate {
    /// Its score in the i-th prefetch, if that prefetch found it.
    fn score(&self, prefetch: usize) -> Option<f32>;
    /// Its payload.
    fn payload(&self) -> &Payload;
    /// Whether it meets `condition` (one of the formula's, see [`Formula::conditions`]).
    fn matches(&self, condition: &Condition) -> bool;
}

impl Formula {
    /// The conditions of the formula, each once, in the order of the tree.
    pub(crate) fn conditions(&self) -> Vec<&Condition> {
        fn walk<'a>(e: &'a Expression, out: &mut Vec<&'a Condition>) {
            match e {
                Expression::Condition(c) => out.push(c),
                Expression::Mult(v) | Expression::Sum(v) => v.iter().for_each(|e| walk(e, out)),
                Expression::Neg(e)
                | Expression::Abs(e)
                | Expression::Sqrt(e)
                | Expression::Exp(e)
                | Expression::Log10(e)
                | Expression::Ln(e) => walk(e, out),
                Expression::Div { left, right, .. } => {
                    walk(left, out);
                    walk(right, out);
                }
                Expression::Pow { base, exponent } => {
                    walk(base, out);
                    walk(exponent, out);
                }
                Expression::Decay(d) => {
                    walk(&d.x, out);
                    if let Some(t) = &d.target {
                        walk(t, out);
                    }
                }
                Expression::Constant(_)
                | Expression::Variable(_)
                | Expression::GeoDistance { .. }
                | Expression::Datetime(_)
                | Expression::DatetimeKey(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.expression, &mut out);
        out
    }

    /// The candidate's score: the formula as an `f32`, which must be finite.
    pub(crate) fn score(&self, point: &dyn Candidate) -> Result<f32> {
        let score = self.eval(&self.expression, point)?;
        let narrowed = score as f32;
        if !narrowed.is_finite() {
            return Err(non_finite(format!("{score} as f32 = {narrowed}")));
        }
        Ok(narrowed)
    }

    fn eval(&self, e: &Expression, point: &dyn Candidate) -> Result<f64> {
        Ok(match e {
            Expression::Constant(c) => *c,
            Expression::Variable(Variable::Score(i)) => match point.score(*i) {
                Some(s) => f64::from(s),
                // A default that is not a number counts as none, as in Qdrant.
                None => self
                    .defaults
                    .get(&Variable::Score(*i))
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0),
            },
            Expression::Variable(Variable::Payload(key)) => {
                self.variable(point, key, "number", |v| {
                    v.as_f64()
                        .ok_or_else(|| "Value is not a number".to_string())
                })?
            }
            Expression::Condition(c) => {
                if point.matches(c) {
                    1.0
                } else {
                    0.0
                }
            }
            Expression::GeoDistance { origin, to } => {
                let to = self.variable(point, to, "geo point", |v| {
                    serde_json::from_value::<GeoPoint>(v).map_err(|e| e.to_string())
                })?;
                crate::filter::geo::haversine_m(*origin, to)
            }
            Expression::Datetime(t) => seconds(t),
            Expression::DatetimeKey(key) => {
                let t = self.variable(point, key, "datetime", |v| match v {
                    Value::String(s) => Datetime::parse(&s),
                    _ => Err("Value is not a string".to_string()),
                })?;
                seconds(&t)
            }
            Expression::Mult(factors) => {
                let mut product = 1.0;
                for f in factors {
                    let v = self.eval(f, point)?;
                    // Qdrant stops at a zero factor: the factors after it are not evaluated, so
                    // their errors (a missing variable) do not surface either.
                    if v == 0.0 {
                        return Ok(0.0);
                    }
                    product *= v;
                }
                product
            }
            Expression::Sum(terms) => {
                let mut sum = 0.0;
                for t in terms {
                    sum += self.eval(t, point)?;
                }
                sum
            }
            Expression::Neg(e) => -self.eval(e, point)?,
            Expression::Abs(e) => self.eval(e, point)?.abs(),
            Expression::Div {
                left,
                right,
                by_zero_default,
            } => {
                let left = self.eval(left, point)?;
                // As in Qdrant, a zero dividend is 0 whatever the divisor, unevaluated.
                if left == 0.0 {
                    return Ok(0.0);
                }
                let right = self.eval(right, point)?;
                if right == 0.0 {
                    if let Some(d) = by_zero_default {
                        return Ok(*d);
                    }
                }
                finite(left / right, || format!("{left}/{right}"))?
            }
            Expression::Sqrt(e) => {
                let v = self.eval(e, point)?;
                finite(v.sqrt(), || format!("√{v}"))?
            }
            Expression::Pow { base, exponent } => {
                let b = self.eval(base, point)?;
                let x = self.eval(exponent, point)?;
                finite(b.powf(x), || format!("{b}^{x}"))?
            }
            Expression::Exp(e) => {
                let v = self.eval(e, point)?;
                finite(v.exp(), || format!("exp({v})"))?
            }
            Expression::Log10(e) => {
                let v = self.eval(e, point)?;
                finite(v.log10(), || format!("log10({v})"))?
            }
            Expression::Ln(e) => {
                let v = self.eval(e, point)?;
                finite(v.ln(), || format!("ln({v})"))?
            }
            Expression::Decay(d) => {
                let x = self.eval(&d.x, point)?;
                let target = match &d.target {
                    Some(t) => self.eval(t, point)?,
                    None => 0.0,
                };
                d.apply(x, target)
            }
        })
    }

    /// The value of a payload variable, else its default, converted by `parse`; Qdrant's error
    /// (400) when there is neither or it does not convert.
    fn variable<T>(
        &self,
        point: &dyn Candidate,
        key: &str,
        expected: &str,
        parse: impl Fn(Value) -> std::result::Result<T, String>,
    ) -> Result<T> {
        let error = |description: &str| {
            Error::InvalidInput(format!(
                "Expected {expected} value for {key} in the payload and/or in the formula \
                 defaults. Error: {description}"
            ))
        };
        let value = match payload_value(point.payload(), key) {
            Some(v) => v,
            None => self
                .defaults
                .get(&Variable::Payload(key.to_string()))
                .cloned()
                .ok_or_else(|| error("No value found in a payload nor defaults"))?,
        };
        parse(value).map_err(|e| error(&e))
    }
}

/// The value a formula reads at `key`, as Qdrant reads it: every value the path reaches, an array
/// there standing for its elements (unless the key ends in `[]`, whose elements are the values);
/// none is no value, one is that value, several are an array (which no expression accepts).
pub(crate) fn payload_value(payload: &Payload, key: &str) -> Option<Value> {
    let mut values = Vec::new();
    let flatten = !key.ends_with("[]");
    path::for_each_value(payload, key, &mut |v| {
        match v {
            Value::Array(items) if flatten => values.extend(items.iter().cloned()),
            other => values.push(other.clone()),
        }
        true
    });
    match values.len() {
        0 => None,
        1 => values.pop(),
        _ => Some(Value::Array(values)),
    }
}

/// Seconds since the Unix epoch, with microseconds (Qdrant's datetime resolution) as the fraction.
fn seconds(t: &Datetime) -> f64 {
    t.0.timestamp_micros() as f64 / 1_000_000.0
}

fn finite(v: f64, expression: impl FnOnce() -> String) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(non_finite(format!("{} = {v}", expression())))
    }
}

fn non_finite(expression: String) -> Error {
    Error::InvalidInput(format!(
        "The expression {expression} produced a non-finite number"
    ))
}

#[cfg(test)]
mod tests;
