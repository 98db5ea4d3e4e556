//! Payload filters in Qdrant's JSON shape: `must` / `should` / `must_not` over field conditions
//! (`match` value / any / except, `range`), `has_id`, `is_empty`, `is_null` and nested filters.

use serde::{Deserialize, Serialize};

use crate::point::Payload;
use crate::PointId;

/// Either one item or a list of them (Qdrant accepts both for `must`, `should`, `must_not`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single condition.
    One(Box<T>),
    /// A list of conditions.
    Many(Vec<T>),
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

impl Filter {
    /// Whether a point with this id and payload passes the filter.
    pub fn matches(&self, id: &PointId, payload: &Payload) -> bool {
        let _ = (id, payload);
        todo!("filter evaluation")
    }
}
