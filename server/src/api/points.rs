//! Bodies of the point routes: upsert (list and batch forms), retrieve, scroll, count, payload updates.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::filter::{Datetime, Filter};
use quiver_engine::point::{Payload, UpdateMode, UpsertConditions};
use quiver_engine::query::{Direction, FacetValue, OrderBy, StartFrom};
use quiver_engine::PointId;

use super::common::{
    ExtendedPointId, FilterDoc, RecordOut, VectorStruct, VectorValue, WithPayloadInterface,
    WithVector,
};
use super::error::{invalid, Error};
use crate::inference::PointDraft;

/// Body of `PUT /collections/{name}/points`: `{"points": [{id, vector, payload}, …]}` or the
/// column-wise `{"batch": {"ids": […], "vectors": …, "payloads": […]}}`. (A struct rather than an
/// untagged enum so that a bad point gets serde's precise message, not "matched no variant".)
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpsertPoints {
    /// The points.
    pub points: Option<Vec<PointStruct>>,
    /// The columns.
    pub batch: Option<Batch>,
    /// Existing points are replaced only if they match this filter; new points are inserted.
    #[schema(value_type = Option<FilterDoc>)]
    pub update_filter: Option<Filter>,
    /// `upsert` (default), `insert_only` (existing points are left as they are) or `update_only`
    /// (missing points are not created).
    pub update_mode: Option<UpdateModeDto>,
}

/// Which points an upsert may write.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateModeDto {
    /// Insert new points and replace existing ones.
    Upsert,
    /// Only insert new points.
    InsertOnly,
    /// Only replace existing points.
    UpdateOnly,
}

/// One point to insert or replace.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PointStruct {
    /// Unsigned integer or UUID.
    #[schema(value_type = ExtendedPointId)]
    pub id: PointId,
    /// The vector (unnamed collection) or a map of named vectors.
    pub vector: VectorStruct,
    /// A JSON object, or null.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Payload>,
}

/// Column-wise points: `ids[i]` has `vectors[i]` and `payloads[i]`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Batch {
    /// The ids.
    #[schema(value_type = Vec<ExtendedPointId>)]
    pub ids: Vec<PointId>,
    /// One vector per id, or per name a list with one vector per id.
    pub vectors: BatchVectors,
    /// One payload (or null) per id.
    #[schema(value_type = Option<Vec<Object>>)]
    pub payloads: Option<Vec<Option<Payload>>>,
}

/// The vectors of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BatchVectors {
    /// Unnamed vectors, one per id.
    Single(Vec<VectorValue>),
    /// Per name, one vector per id.
    Named(std::collections::BTreeMap<String, Vec<VectorValue>>),
}

impl UpsertPoints {
    /// Number of points, checked against the batch limit before any conversion work.
    pub fn len(&self) -> usize {
        self.points.as_ref().map_or(0, Vec::len) + self.batch.as_ref().map_or(0, |b| b.ids.len())
    }

    /// The conditions on which points are written (taken out before the points are converted).
    pub fn take_conditions(&mut self) -> UpsertConditions {
        UpsertConditions {
            mode: match self.update_mode {
                None | Some(UpdateModeDto::Upsert) => UpdateMode::Upsert,
                Some(UpdateModeDto::InsertOnly) => UpdateMode::InsertOnly,
                Some(UpdateModeDto::UpdateOnly) => UpdateMode::UpdateOnly,
            },
            update_filter: self.update_filter.take(),
        }
    }

    /// Into the inference layer's points, checking shapes and values (documents stay documents).
    pub fn into_drafts(self) -> Result<Vec<PointDraft>, Error> {
        match (self.points, self.batch) {
            (Some(points), None) => points
                .into_iter()
                .map(|p| {
                    Ok(PointDraft {
                        vectors: p.vector.into_draft(&p.id)?,
                        id: p.id,
                        payload: p.payload,
                    })
                })
                .collect(),
            (None, Some(batch)) => batch.into_drafts(),
            (Some(_), Some(_)) => Err(invalid("give either `points` or `batch`, not both")),
            (None, None) => Err(invalid("give `points` (a list) or `batch` (columns)")),
        }
    }
}

impl Batch {
    fn into_drafts(self) -> Result<Vec<PointDraft>, Error> {
        let n = self.ids.len();
        let mut payloads = match self.payloads {
            Some(p) if p.len() != n => {
                return Err(invalid(format!(
                    "batch has {n} ids but {} payloads",
                    p.len()
                )))
            }
            Some(p) => p,
            None => vec![None; n],
        };
        let mut columns: Vec<(String, Vec<VectorValue>)> = match self.vectors {
            BatchVectors::Single(v) => vec![(String::new(), v)],
            BatchVectors::Named(map) => map.into_iter().collect(),
        };
        for (name, column) in &columns {
            if column.len() != n {
                return Err(invalid(format!(
                    "batch has {n} ids but {} vectors for `{name}`",
                    column.len()
                )));
            }
        }
        let mut out = Vec::with_capacity(n);
        // Columns are consumed from the back, so points are built last to first.
        for (i, id) in self.ids.into_iter().enumerate().rev() {
            let mut vectors = std::collections::BTreeMap::new();
            for (name, column) in columns.iter_mut() {
                let value = column.pop().expect("lengths checked above: this is a bug");
                vectors.insert(name.clone(), value);
            }
            let structured = match vectors.remove("") {
                Some(single) if vectors.is_empty() => VectorStruct::Single(single),
                Some(single) => {
                    vectors.insert(String::new(), single);
                    VectorStruct::Named(vectors)
                }
                None => VectorStruct::Named(vectors),
            };
            out.push(PointDraft {
                vectors: structured.into_draft(&id)?,
                id,
                payload: payloads[i].take(),
            });
        }
        out.reverse();
        Ok(out)
    }
}

/// Body of `POST /collections/{name}/points`: retrieve by ids.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PointRequest {
    /// The ids; missing ones are left out of the result.
    #[schema(value_type = Vec<ExtendedPointId>)]
    pub ids: Vec<PointId>,
    /// Payload to return (default true).
    pub with_payload: Option<WithPayloadInterface>,
    /// Vectors to return (default false).
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
}

/// Body of `POST /collections/{name}/points/scroll`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ScrollRequestDto {
    /// Start at this id (inclusive): the previous page's `next_page_offset`.
    #[schema(value_type = Option<ExtendedPointId>)]
    pub offset: Option<PointId>,
    /// Page size (default 10).
    pub limit: Option<usize>,
    /// Only matching points.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Payload to return (default true).
    pub with_payload: Option<WithPayloadInterface>,
    /// Vectors to return (default false).
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// Order by a payload field's values instead of by id: `"key"` or `{"key", "direction": "asc" |
    /// "desc", "start_from": number | datetime}`. The field needs an `integer`, `float` or `datetime`
    /// index; there is no `next_page_offset` (page with `start_from`).
    #[schema(value_type = Option<Object>)]
    pub order_by: Option<Value>,
}

/// Qdrant's `order_by` (a key, or `{"key", "direction", "start_from"}`); `None` for null.
pub fn parse_order_by(value: Value) -> Result<Option<OrderBy>, Error> {
    let form = "`order_by` is a key or {\"key\": …, \"direction\": \"asc\" | \"desc\", \
                \"start_from\": number | datetime}";
    let mut map = match value {
        Value::Null => return Ok(None),
        Value::String(key) => {
            return Ok(Some(OrderBy {
                key,
                direction: Direction::Asc,
                start_from: None,
            }))
        }
        Value::Object(map) => map,
        _ => return Err(invalid(form)),
    };
    map.retain(|_, v| !v.is_null());
    if let Some(k) = map
        .keys()
        .find(|k| !["key", "direction", "start_from"].contains(&k.as_str()))
    {
        return Err(invalid(format!("{form}; got the field `{k}`")));
    }
    let Some(Value::String(key)) = map.remove("key") else {
        return Err(invalid(format!("{form}: `key` is required")));
    };
    let direction = match map.remove("direction") {
        None => Direction::Asc,
        Some(Value::String(d)) if d == "asc" => Direction::Asc,
        Some(Value::String(d)) if d == "desc" => Direction::Desc,
        Some(other) => {
            return Err(invalid(format!(
                "`order_by.direction` is \"asc\" or \"desc\", not {other}"
            )))
        }
    };
    let start_from = match map.remove("start_from") {
        None => None,
        Some(Value::Number(n)) => Some(match n.as_i64() {
            Some(i) => StartFrom::Integer(i),
            None => StartFrom::Float(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Some(Value::String(s)) => {
            Some(StartFrom::Datetime(Datetime::parse(&s).map_err(|e| {
                invalid(format!("`order_by.start_from`: {e}"))
            })?))
        }
        Some(other) => {
            return Err(invalid(format!(
                "`order_by.start_from` is a number or a datetime, not {other}"
            )))
        }
    };
    Ok(Some(OrderBy {
        key,
        direction,
        start_from,
    }))
}

/// Body of `POST /collections/{name}/facet`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FacetRequestDto {
    /// The payload key to count values of; it needs a `keyword`, `integer`, `bool` or `uuid` index.
    pub key: String,
    /// Values to return, most frequent first (default 10).
    pub limit: Option<usize>,
    /// Only matching points are counted.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Accepted for Qdrant's clients; counts are always exact.
    #[allow(dead_code)]
    pub exact: Option<bool>,
}

/// One value of a facet.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetHitOut {
    /// The value: a string, an integer or a boolean.
    #[schema(value_type = Object)]
    pub value: FacetValue,
    /// Points holding it.
    pub count: usize,
}

/// The answer of `POST /collections/{name}/facet`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetResponseOut {
    /// Values, most frequent first, then by value.
    pub hits: Vec<FacetHitOut>,
}

/// A page of points.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScrollResultOut {
    /// The points, in id order.
    pub points: Vec<RecordOut>,
    /// Where the next page starts; null at the end.
    #[schema(value_type = Option<ExtendedPointId>)]
    pub next_page_offset: Option<PointId>,
}

/// Body of `POST /collections/{name}/points/count`.
#[derive(Debug, Default, Deserialize, ToSchema)]
// Some fields are parsed only so that Qdrant clients can send them.
#[allow(dead_code)]
pub struct CountRequest {
    /// Only matching points.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Accepted for compatibility: counts are always exact.
    pub exact: Option<bool>,
}

/// `{"count": n}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountResult {
    /// Matching live points.
    pub count: usize,
}

/// Body of set (`POST`) and overwrite (`PUT`) payload.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetPayload {
    /// The keys to set (or the whole new payload, for overwrite).
    #[schema(value_type = Object)]
    pub payload: Payload,
    /// These points…
    #[schema(value_type = Option<Vec<ExtendedPointId>>)]
    pub points: Option<Vec<PointId>>,
    /// …or the points matching this filter.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Set the keys under this nested key (`a.b`) instead of at the top (set only).
    pub key: Option<String>,
}

/// Body of `POST /collections/{name}/points/payload/delete`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeletePayload {
    /// Top-level keys to remove.
    pub keys: Vec<String>,
    /// These points…
    #[schema(value_type = Option<Vec<ExtendedPointId>>)]
    pub points: Option<Vec<PointId>>,
    /// …or the points matching this filter.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::{Input, VectorsDraft};
    use quiver_engine::Vector;

    #[test]
    fn batch_form_equals_list_form() {
        let list: UpsertPoints = serde_json::from_str(
            r#"{"points": [{"id": 1, "vector": [1, 2], "payload": {"a": 1}}, {"id": 2, "vector": [3, 4]}]}"#,
        )
        .unwrap();
        let batch: UpsertPoints = serde_json::from_str(
            r#"{"batch": {"ids": [1, 2], "vectors": [[1, 2], [3, 4]], "payloads": [{"a": 1}, null]}}"#,
        )
        .unwrap();
        let a = list.into_drafts().unwrap();
        let b = batch.into_drafts().unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a[1].vectors,
            VectorsDraft::Single(Input::Value(Vector::Dense(vec![3.0, 4.0])))
        );
    }

    #[test]
    fn overflowing_values_and_ragged_batches_are_rejected() {
        let inf: UpsertPoints =
            serde_json::from_str(r#"{"points": [{"id": 1, "vector": [1e39, 2]}]}"#).unwrap();
        assert!(inf.into_drafts().is_err());
        let ragged: UpsertPoints =
            serde_json::from_str(r#"{"batch": {"ids": [1, 2], "vectors": [[1, 2]]}}"#).unwrap();
        assert!(ragged.into_drafts().is_err());
    }
}
