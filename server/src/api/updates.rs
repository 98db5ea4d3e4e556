//! Bodies of the vector routes (update and delete named vectors of existing points) and of the batch
//! update route, whose operations are Qdrant's `UpdateOperation`s: one key naming the operation, with
//! the body of the matching single route as its value.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::filter::Filter;
use quiver_engine::point::PayloadOp;
use quiver_engine::{PointId, PointsSelector};

use super::common::{selector_from, FilterDoc, PointsSelectorDto, VectorStruct};
use super::error::{invalid, Error};
use super::points::{DeletePayload, SetPayload, UpsertPoints};
use crate::inference::{PointDraft, VectorsDraft};

/// Body of `PUT /collections/{name}/points/vectors`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateVectors {
    /// The points and the vectors to set on each; every point must exist.
    pub points: Vec<PointVectorsDto>,
    /// Only points matching this filter are changed; the others are skipped.
    #[schema(value_type = Option<FilterDoc>)]
    pub update_filter: Option<Filter>,
}

/// One point's new vectors.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PointVectorsDto {
    /// Unsigned integer or UUID.
    #[schema(value_type = super::common::ExtendedPointId)]
    pub id: PointId,
    /// The vector (unnamed collection) or a map of the named vectors to replace; names left out keep
    /// their vectors.
    pub vector: VectorStruct,
}

impl UpdateVectors {
    /// Into the inference layer's points (documents stay documents); the payloads are empty and are
    /// dropped after inference.
    pub fn into_drafts(self) -> Result<(Vec<PointDraft>, Option<Filter>), Error> {
        let drafts = self
            .points
            .into_iter()
            .map(|p| {
                let vectors = p.vector.into_draft(&p.id)?;
                if matches!(&vectors, VectorsDraft::Named(map) if map.is_empty()) {
                    return Err(invalid(format!(
                        "point {}: give at least one vector to update",
                        p.id
                    )));
                }
                Ok(PointDraft {
                    id: p.id,
                    vectors,
                    payload: None,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok((drafts, self.update_filter))
    }
}

/// Body of `POST /collections/{name}/points/vectors/delete`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteVectors {
    /// These points (each must exist)…
    #[schema(value_type = Option<Vec<super::common::ExtendedPointId>>)]
    pub points: Option<Vec<PointId>>,
    /// …or the points matching this filter.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// The vector names to remove (`""` is the unnamed vector).
    pub vector: Vec<String>,
}

impl DeleteVectors {
    /// The selected points and the names.
    pub fn into_parts(self) -> Result<(PointsSelector, Vec<String>), Error> {
        Ok((selector_from(self.points, self.filter)?, self.vector))
    }
}

/// Body of `POST /collections/{name}/points/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateOperations {
    /// Applied in order, all or none.
    #[schema(value_type = Vec<UpdateOperationDto>)]
    pub operations: Vec<Value>,
}

/// One operation of a batch: `{"upsert": {...}}`, `{"delete": {...}}`, `{"set_payload": {...}}`, ….
/// (Parsed one by one from the list, so that a malformed one is named by its position.)
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateOperationDto {
    /// As `PUT /collections/{name}/points`.
    Upsert(UpsertPoints),
    /// As `POST /collections/{name}/points/delete`.
    Delete(PointsSelectorDto),
    /// As `POST /collections/{name}/points/payload`.
    SetPayload(SetPayload),
    /// As `PUT /collections/{name}/points/payload`.
    OverwritePayload(SetPayload),
    /// As `POST /collections/{name}/points/payload/delete`.
    DeletePayload(DeletePayload),
    /// As `POST /collections/{name}/points/payload/clear`.
    ClearPayload(PointsSelectorDto),
    /// As `PUT /collections/{name}/points/vectors`.
    UpdateVectors(UpdateVectors),
    /// As `POST /collections/{name}/points/vectors/delete`.
    DeleteVectors(DeleteVectors),
}

/// A batch operation before inference: what still needs the models (upserts and vector updates, with
/// their documents), and the rest, ready for the engine.
#[derive(Debug)]
pub enum OperationDraft {
    /// Points to insert or replace.
    Upsert(UpsertPoints),
    /// Vectors to set.
    UpdateVectors(UpdateVectors),
    /// Anything else.
    Ready(quiver_engine::UpdateOperation),
}

impl UpdateOperationDto {
    /// Parses one element of `operations`.
    pub fn parse(value: Value) -> Result<Self, Error> {
        // Qdrant's name for each operation is the only key of its object.
        if let Value::Object(map) = &value {
            if map.len() != 1 {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(invalid(format!(
                    "an operation is an object with one key naming it (upsert, delete, \
                     set_payload, overwrite_payload, delete_payload, clear_payload, \
                     update_vectors, delete_vectors); got {keys:?}"
                )));
            }
        }
        serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
    }

    /// The operation's name in the body.
    pub fn kind(&self) -> &'static str {
        match self {
            UpdateOperationDto::Upsert(_) => "upsert",
            UpdateOperationDto::Delete(_) => "delete",
            UpdateOperationDto::SetPayload(_) => "set_payload",
            UpdateOperationDto::OverwritePayload(_) => "overwrite_payload",
            UpdateOperationDto::DeletePayload(_) => "delete_payload",
            UpdateOperationDto::ClearPayload(_) => "clear_payload",
            UpdateOperationDto::UpdateVectors(_) => "update_vectors",
            UpdateOperationDto::DeleteVectors(_) => "delete_vectors",
        }
    }

    /// How many points or ids it lists, for the batch limit.
    pub fn len(&self) -> usize {
        let ids = |s: &PointsSelectorDto| match s {
            PointsSelectorDto::Ids { points } => points.len(),
            PointsSelectorDto::Filter { .. } => 0,
        };
        match self {
            UpdateOperationDto::Upsert(u) => u.len(),
            UpdateOperationDto::Delete(s) | UpdateOperationDto::ClearPayload(s) => ids(s),
            UpdateOperationDto::SetPayload(p) | UpdateOperationDto::OverwritePayload(p) => {
                p.points.as_ref().map_or(0, Vec::len)
            }
            UpdateOperationDto::DeletePayload(p) => p.points.as_ref().map_or(0, Vec::len),
            UpdateOperationDto::UpdateVectors(u) => u.points.len(),
            UpdateOperationDto::DeleteVectors(d) => d.points.as_ref().map_or(0, Vec::len),
        }
    }

    /// Into the engine's operation, or what needs inference first.
    pub fn into_draft(self) -> Result<OperationDraft, Error> {
        use quiver_engine::UpdateOperation as Op;
        let payload = |selector, op| Ok(OperationDraft::Ready(Op::Payload { selector, op }));
        match self {
            UpdateOperationDto::Upsert(u) => Ok(OperationDraft::Upsert(u)),
            UpdateOperationDto::UpdateVectors(u) => Ok(OperationDraft::UpdateVectors(u)),
            UpdateOperationDto::Delete(s) => Ok(OperationDraft::Ready(Op::Delete(s.into()))),
            UpdateOperationDto::SetPayload(p) => payload(
                selector_from(p.points, p.filter)?,
                PayloadOp::Set {
                    payload: p.payload,
                    key: p.key,
                },
            ),
            UpdateOperationDto::OverwritePayload(p) => {
                if p.key.is_some() {
                    return Err(invalid(
                        "`key` applies to set_payload, not overwrite_payload",
                    ));
                }
                payload(
                    selector_from(p.points, p.filter)?,
                    PayloadOp::Overwrite(p.payload),
                )
            }
            UpdateOperationDto::DeletePayload(p) => payload(
                selector_from(p.points, p.filter)?,
                PayloadOp::DeleteKeys(p.keys),
            ),
            UpdateOperationDto::ClearPayload(s) => payload(s.into(), PayloadOp::Clear),
            UpdateOperationDto::DeleteVectors(d) => {
                let (selector, names) = d.into_parts()?;
                Ok(OperationDraft::Ready(Op::DeleteVectors { selector, names }))
            }
        }
    }
}

/// Named vectors by name, for the engine, from inserts the inference layer returned.
pub fn point_vectors(inserts: Vec<quiver_engine::PointInsert>) -> Vec<quiver_engine::PointVectors> {
    inserts
        .into_iter()
        .map(|p| quiver_engine::PointVectors {
            id: p.id,
            vectors: p.vectors,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_operations_parse_by_their_key() {
        let ops = [
            r#"{"upsert": {"points": [{"id": 1, "vector": [1, 2]}]}}"#,
            r#"{"delete": {"points": [1]}}"#,
            r#"{"set_payload": {"payload": {"a": 1}, "points": [1]}}"#,
            r#"{"overwrite_payload": {"payload": {"a": 1}, "filter": {}}}"#,
            r#"{"delete_payload": {"keys": ["a"], "points": [1]}}"#,
            r#"{"clear_payload": {"points": [1]}}"#,
            r#"{"update_vectors": {"points": [{"id": 1, "vector": {"a": [1]}}]}}"#,
            r#"{"delete_vectors": {"points": [1], "vector": ["a"]}}"#,
        ];
        let kinds: Vec<&str> = ops
            .iter()
            .map(|s| {
                UpdateOperationDto::parse(serde_json::from_str(s).unwrap())
                    .unwrap()
                    .kind()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "upsert",
                "delete",
                "set_payload",
                "overwrite_payload",
                "delete_payload",
                "clear_payload",
                "update_vectors",
                "delete_vectors"
            ]
        );
        for bad in [
            r#"{"upsert": {}, "delete": {"points": [1]}}"#,
            r#"{"frobnicate": {}}"#,
            r#"{"delete_vectors": {"points": [1]}}"#,
        ] {
            assert!(UpdateOperationDto::parse(serde_json::from_str(bad).unwrap()).is_err());
        }
    }
}
