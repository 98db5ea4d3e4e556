//! Shapes shared by several route families: ids, vectors, payload and vector selectors, point selectors,
//! and the translation of engine records into Qdrant's JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::filter::Filter;
use quiver_engine::point::Payload;
use quiver_engine::{
    CollectionConfig, NamedVectors, PointId, PointsSelector, Record, ScoredPoint, Vector,
    WithPayload, WithVectors,
};

use super::error::{invalid, Error};

/// A point id as Qdrant writes it: an unsigned integer or a UUID string. (Documentation type; requests
/// deserialize straight into the engine's `PointId`.)
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ExtendedPointId {
    /// An unsigned integer.
    Integer(u64),
    /// A UUID in any of its string forms.
    Uuid(String),
}

/// A filter in Qdrant's JSON form (`must`, `should`, `must_not` over `key`+`match` / `range`, `has_id`,
/// `is_empty`, `is_null` and nested filters). (Documentation type.)
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FilterDoc {
    /// All of these conditions must hold (one condition or a list).
    must: Option<Vec<Value>>,
    /// At least one of these must hold.
    should: Option<Vec<Value>>,
    /// None of these may hold.
    must_not: Option<Vec<Value>>,
}

/// One vector value: a dense vector, a matrix (one row per token) for a multivector, or an inference
/// object the server embeds.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VectorValue {
    /// A dense vector.
    Dense(Vec<f32>),
    /// A multivector (rows of equal length).
    Multi(Vec<Vec<f32>>),
    /// Text (or an image) for the server's model to embed.
    Inference(InferenceObject),
}

/// Qdrant's inference objects: `{"text", "model", "options"}` (Document) or `{"image", "model",
/// "options"}` (Image).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum InferenceObject {
    /// Text to embed.
    Document(DocumentDto),
    /// An image to embed.
    Image(ImageDto),
}

/// `{"text": "…", "model": "…", "options": {…}}`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentDto {
    /// The text.
    pub text: String,
    /// A model served by this server (`--model`); may be left out when it serves one.
    #[serde(default)]
    pub model: Option<String>,
    /// `task` (`retrieval`, `text-matching`, `code`), `prompt` (`query` / `passage`; upserts default
    /// to passage, queries to query), `dimensions` (must equal the vector's size), `truncate`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<serde_json::Map<String, Value>>,
}

/// `{"image": "…", "model": "…", "options": {…}}`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageDto {
    /// Base64 bytes or a URL.
    #[schema(value_type = Object)]
    pub image: Value,
    /// The model.
    #[serde(default)]
    pub model: Option<String>,
    /// Model options.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<serde_json::Map<String, Value>>,
}

impl VectorValue {
    /// Checks every component is finite (JSON has no NaN, but `1e39` overflows `f32` to infinity).
    /// An inference object left here was not embedded: it is refused.
    pub fn check_finite(&self, what: impl FnOnce() -> String) -> Result<(), Error> {
        let finite = match self {
            VectorValue::Dense(v) => v.iter().all(|x| x.is_finite()),
            VectorValue::Multi(m) => m.iter().flatten().all(|x| x.is_finite()),
            VectorValue::Inference(_) => {
                return Err(invalid(format!(
                    "{}: inference objects (text / image) are embedded only in upserts and the \
                     Query API; send a vector here",
                    what()
                )))
            }
        };
        if finite {
            Ok(())
        } else {
            Err(invalid(format!(
                "{}: vectors must hold finite numbers (a value overflows 32-bit float)",
                what()
            )))
        }
    }

    /// The engine's form, after [`VectorValue::check_finite`].
    pub fn into_engine(self, what: impl FnOnce() -> String) -> Result<Vector, Error> {
        self.check_finite(what)?;
        Ok(match self {
            VectorValue::Dense(v) => Vector::Dense(v),
            VectorValue::Multi(m) => Vector::Multi(m),
            VectorValue::Inference(_) => unreachable!("check_finite refuses inference objects"),
        })
    }
}

/// A point's vectors: one unnamed vector, or named vectors.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VectorStruct {
    /// The collection's single unnamed vector.
    Single(VectorValue),
    /// Named vectors.
    Named(BTreeMap<String, VectorValue>),
}

impl VectorStruct {
    /// Into the engine's map (`""` is the unnamed vector), checking names and values.
    pub fn into_engine(
        self,
        config: &CollectionConfig,
        point: &PointId,
    ) -> Result<NamedVectors, Error> {
        let mut out = NamedVectors::new();
        match self {
            VectorStruct::Single(value) => {
                if !config.vectors.contains_key("") {
                    return Err(invalid(format!(
                        "point {point}: this collection has named vectors ({}); give them as an object \
                         {{\"name\": [...]}}",
                        vector_names(config)
                    )));
                }
                out.insert(
                    String::new(),
                    value.into_engine(|| format!("point {point}"))?,
                );
            }
            VectorStruct::Named(map) => {
                for (name, value) in map {
                    let vector = value.into_engine(|| format!("point {point}, vector `{name}`"))?;
                    out.insert(name, vector);
                }
            }
        }
        Ok(out)
    }
}

/// The configured vector names, for error messages.
pub fn vector_names(config: &CollectionConfig) -> String {
    config
        .vectors
        .keys()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Vectors in a response: the bare value for a collection with one unnamed vector, else a map.
pub fn vectors_out(config: &CollectionConfig, vectors: Option<NamedVectors>) -> Option<Value> {
    let mut vectors = vectors?;
    let value = if config.vectors.contains_key("") && config.vectors.len() == 1 {
        match vectors.remove("") {
            Some(v) => serde_json::to_value(v),
            None => return None,
        }
    } else {
        serde_json::to_value(vectors)
    };
    Some(value.expect("vectors serialize to JSON: this is a bug"))
}

/// `with_payload`: `true` / `false`, a list of keys, or `{"include": [...]}` / `{"exclude": [...]}`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum WithPayloadInterface {
    /// All or nothing.
    Bool(bool),
    /// Only these top-level keys.
    Fields(Vec<String>),
    /// A selector.
    Selector(PayloadSelector),
}

/// Include or exclude top-level payload keys.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PayloadSelector {
    /// Only these keys.
    Include {
        /// The keys.
        include: Vec<String>,
    },
    /// Every key but these.
    Exclude {
        /// The keys.
        exclude: Vec<String>,
    },
}

/// Translates `with_payload`, with the route's default when absent.
pub fn with_payload(value: Option<WithPayloadInterface>, default: bool) -> WithPayload {
    match value {
        None => bool_payload(default),
        Some(WithPayloadInterface::Bool(b)) => bool_payload(b),
        Some(WithPayloadInterface::Fields(keys)) => WithPayload::Include(keys),
        Some(WithPayloadInterface::Selector(PayloadSelector::Include { include })) => {
            WithPayload::Include(include)
        }
        Some(WithPayloadInterface::Selector(PayloadSelector::Exclude { exclude })) => {
            WithPayload::Exclude(exclude)
        }
    }
}

fn bool_payload(b: bool) -> WithPayload {
    if b {
        WithPayload::All
    } else {
        WithPayload::None
    }
}

/// `with_vector`: `true` / `false` or a list of vector names.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum WithVector {
    /// All or nothing.
    Bool(bool),
    /// Only these names.
    Names(Vec<String>),
}

/// Translates `with_vector`, with the route's default when absent. (The engine refuses names the
/// collection does not have.)
pub fn with_vectors(value: Option<WithVector>, default: bool) -> WithVectors {
    match value {
        None => bool_vectors(default),
        Some(WithVector::Bool(b)) => bool_vectors(b),
        Some(WithVector::Names(names)) => WithVectors::Names(names),
    }
}

fn bool_vectors(b: bool) -> WithVectors {
    if b {
        WithVectors::All
    } else {
        WithVectors::None
    }
}

/// Which points an operation touches: `{"points": [ids]}` or `{"filter": {...}}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PointsSelectorDto {
    /// These ids.
    Ids {
        /// The ids; unknown ones are ignored.
        #[schema(value_type = Vec<ExtendedPointId>)]
        points: Vec<PointId>,
    },
    /// Every point matching the filter.
    Filter {
        /// The filter.
        #[schema(value_type = FilterDoc)]
        filter: Filter,
    },
}

impl From<PointsSelectorDto> for PointsSelector {
    fn from(dto: PointsSelectorDto) -> Self {
        match dto {
            PointsSelectorDto::Ids { points } => PointsSelector::Ids(points),
            PointsSelectorDto::Filter { filter } => PointsSelector::Filter(filter),
        }
    }
}

/// Either `points` or `filter` from a body that has both as optional fields (set/delete payload).
pub fn selector_from(
    points: Option<Vec<PointId>>,
    filter: Option<Filter>,
) -> Result<PointsSelector, Error> {
    match (points, filter) {
        (Some(ids), None) => Ok(PointsSelector::Ids(ids)),
        (None, Some(filter)) => Ok(PointsSelector::Filter(filter)),
        (Some(_), Some(_)) => Err(invalid("give either `points` or `filter`, not both")),
        (None, None) => Err(invalid("give `points` (ids) or `filter` to select points")),
    }
}

/// A stored point in a response.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordOut {
    /// The id.
    #[schema(value_type = ExtendedPointId)]
    pub id: PointId,
    /// The payload, when asked for.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Payload>,
    /// The vectors, when asked for: the bare vector for an unnamed-vector collection, else a map.
    #[schema(value_type = Option<Object>)]
    pub vector: Option<Value>,
}

impl RecordOut {
    /// From the engine's record.
    pub fn new(config: &CollectionConfig, record: Record) -> Self {
        RecordOut {
            id: record.id,
            payload: record.payload,
            vector: vectors_out(config, record.vectors),
        }
    }
}

/// A search hit in a response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoredPointOut {
    /// The id.
    #[schema(value_type = ExtendedPointId)]
    pub id: PointId,
    /// Always 0: Quiver keeps no per-point version (the field is required by Qdrant's clients).
    pub version: u64,
    /// Similarity (Cosine, Dot, MaxSim: higher is better) or distance (Euclid: lower is better).
    pub score: f32,
    /// The payload, when asked for.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Payload>,
    /// The vectors, when asked for.
    #[schema(value_type = Option<Object>)]
    pub vector: Option<Value>,
}

impl ScoredPointOut {
    /// From the engine's hit.
    pub fn new(config: &CollectionConfig, hit: ScoredPoint) -> Self {
        ScoredPointOut {
            id: hit.id,
            version: 0,
            score: hit.score,
            payload: hit.payload,
            vector: vectors_out(config, hit.vectors),
        }
    }
}

/// The result of a write: Qdrant's `UpdateResult`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateResult {
    /// Sequence number of the operation in the collection's log.
    pub operation_id: u64,
    /// Always `completed`: writes are durable (fsynced) before Quiver answers.
    pub status: &'static str,
}

impl UpdateResult {
    /// A completed operation.
    pub fn completed(operation_id: u64) -> Self {
        UpdateResult {
            operation_id,
            status: "completed",
        }
    }
}

/// Query string of write routes.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Some fields are parsed only so that Qdrant clients can send them.
#[allow(dead_code)]
pub struct WaitParams {
    /// Accepted for compatibility: Quiver always answers after the write is durable.
    pub wait: Option<bool>,
    /// Accepted for compatibility (`weak`, `medium`, `strong`); a single node has one order.
    pub ordering: Option<String>,
}
