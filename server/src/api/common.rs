//! Shapes shared by several route families: ids, vectors, payload and vector selectors, point selectors,
//! and the translation of engine records into Qdrant's JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::filter::Filter;
use quiver_engine::point::{OrderValue, Payload};
use quiver_engine::{
    CollectionConfig, NamedVectors, PointId, PointsSelector, Record, ScoredPoint, SparseVector,
    Vector, WithPayload, WithVectors,
};

use quiver_encoder::bm25::{self, Bm25Config};

use super::error::{invalid, Error};
use crate::inference::{Content, Document, DocumentOptions, Input, VectorsDraft};

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

/// A filter in Qdrant's JSON form: `must`, `should`, `must_not` and `min_should` over field conditions
/// (`key` with `match` value / any / except / text / text_any / phrase, `range` with numbers or
/// datetimes, `geo_radius`, `geo_bounding_box`, `geo_polygon`, `values_count`, `is_empty`,
/// `is_null`), `has_id`, `has_vector`, `is_empty`, `is_null`, `nested` and nested filters.
/// (Documentation type.)
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FilterDoc {
    /// All of these conditions must hold (one condition or a list).
    must: Option<Vec<Value>>,
    /// At least one of these must hold.
    should: Option<Vec<Value>>,
    /// None of these may hold.
    must_not: Option<Vec<Value>>,
    /// `{"conditions": [...], "min_count": n}`: at least `min_count` of the conditions must hold.
    min_should: Option<Value>,
}

/// One vector value: a dense vector, a matrix (one row per token) for a multivector, or an inference
/// object the server embeds.
///
/// Deserialized by hand (`vector_de`): the first token decides the variant, without buffering.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VectorValue {
    /// A dense vector.
    Dense(Vec<f32>),
    /// A multivector (rows of equal length).
    Multi(Vec<Vec<f32>>),
    /// A sparse vector, for a vector configured in `sparse_vectors`.
    Sparse(SparseVectorDto),
    /// Text (or an image) for the server's model to embed.
    Inference(InferenceObject),
}

/// `{"indices": [...], "values": [...]}`: the weight of each listed dimension.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparseVectorDto {
    /// Dimensions (distinct, any order).
    pub indices: Vec<u32>,
    /// Their weights, as many as `indices`.
    pub values: Vec<f32>,
}

impl SparseVectorDto {
    /// The engine's sparse vector, its values checked finite (the engine checks lengths and
    /// duplicates against the vector it fills, naming it).
    pub fn into_engine(self, what: impl FnOnce() -> String) -> Result<SparseVector, Error> {
        check_values(&self.values, what)?;
        Ok(SparseVector {
            indices: self.indices,
            values: self.values,
        })
    }
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
    /// A model served by this server (`--model`), or `qdrant/bm25` (built in: fills a sparse
    /// vector); may be left out when the server serves one model.
    #[serde(default)]
    pub model: Option<String>,
    /// `task` (`retrieval`, `text-matching`, `code`), `prompt` (`query` / `passage`; upserts default
    /// to passage, queries to query), `dimensions` (must equal the vector's size), `truncate`. For
    /// `qdrant/bm25`, Qdrant's BM25 options: `k`, `b`, `avg_len`, `tokenizer`, `language`,
    /// `lowercase`, `ascii_folding`, `stopwords`, `stemmer`, `min_token_len`,
    /// `max_token_len`.
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
    /// An inference object here is refused: `what` names where it was.
    pub fn check_finite(&self, what: impl FnOnce() -> String) -> Result<(), Error> {
        match self {
            VectorValue::Dense(v) => check_values(v, what),
            VectorValue::Multi(m) => check_values(m.iter().flatten(), what),
            VectorValue::Sparse(s) => check_values(&s.values, what),
            VectorValue::Inference(_) => Err(invalid(format!(
                "{}: inference objects (text / image) are embedded only in upserts and the Query \
                 API; send a vector here",
                what()
            ))),
        }
    }

    /// A vector (checked finite) or a document, as the inference layer takes it.
    pub fn into_input(self, what: impl FnOnce() -> String) -> Result<Input<Vector>, Error> {
        Ok(match self {
            VectorValue::Inference(object) => Input::Document(object.into_document()?),
            VectorValue::Dense(v) => {
                check_values(&v, what)?;
                Input::Value(Vector::Dense(v))
            }
            VectorValue::Multi(m) => {
                check_values(m.iter().flatten(), what)?;
                Input::Value(Vector::Multi(m))
            }
            VectorValue::Sparse(s) => Input::Value(Vector::Sparse(s.into_engine(what)?)),
        })
    }
}

fn check_values<'a>(
    values: impl IntoIterator<Item = &'a f32>,
    what: impl FnOnce() -> String,
) -> Result<(), Error> {
    if values.into_iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{}: vectors must hold finite numbers (a value overflows 32-bit float)",
            what()
        )))
    }
}

impl InferenceObject {
    /// The document this object describes, its options checked.
    pub fn into_document(self) -> Result<Document, Error> {
        let (content, model, options) = match self {
            InferenceObject::Document(d) => (Content::Text(d.text), d.model, d.options),
            InferenceObject::Image(i) => {
                let Value::String(image) = i.image else {
                    return Err(invalid(
                        "`image` must be a string: the image file as base64 (or a data: URL)",
                    ));
                };
                (Content::Image(image), i.model, i.options)
            }
        };
        if let Some(name) = model.as_deref().filter(|m| bm25::is_bm25_model(m)) {
            if let Content::Image(_) = content {
                return Err(invalid(format!(
                    "model `{name}` embeds text only: give {{\"text\": ...}}"
                )));
            }
            let config = Bm25Config::from_options(options.as_ref()).map_err(|e| match e {
                quiver_encoder::Error::InvalidInput(message) => invalid(message),
                other => invalid(other.to_string()),
            })?;
            return Ok(Document {
                content,
                model,
                options: DocumentOptions {
                    bm25: Some(config),
                    ..DocumentOptions::default()
                },
            });
        }
        Ok(Document {
            content,
            model,
            options: document_options(options.as_ref())?,
        })
    }
}

/// A document's `options`: `task`, `prompt` (or `prompt_name`), `dimensions`, `truncate`.
fn document_options(
    options: Option<&serde_json::Map<String, Value>>,
) -> Result<DocumentOptions, Error> {
    let mut out = DocumentOptions::default();
    let bad = |key: &str, want: &str| invalid(format!("document option `{key}` must be {want}"));
    for (key, value) in options.into_iter().flatten() {
        match key.as_str() {
            "task" => out.task = Some(value.as_str().ok_or_else(|| bad(key, "a string"))?.into()),
            "prompt" | "prompt_name" => {
                let prompt = value
                    .as_str()
                    .ok_or_else(|| bad(key, "`query` or `passage`"))?;
                out.prompt = Some(
                    prompt
                        .parse()
                        .map_err(|e: quiver_encoder::Error| invalid(e.to_string()))?,
                )
            }
            "dimensions" => {
                out.dimensions = Some(
                    value
                        .as_u64()
                        .ok_or_else(|| bad(key, "a positive integer"))?
                        as usize,
                )
            }
            "truncate" => {
                out.truncate = value.as_bool().ok_or_else(|| bad(key, "true or false"))?
            }
            other => {
                return Err(invalid(format!(
                    "unknown document option `{other}`; known: task, prompt, dimensions, truncate"
                )))
            }
        }
    }
    Ok(out)
}

/// A point's vectors: one unnamed vector, or named vectors.
///
/// Named comes first: a map whose values are all vectors is a map of vector names, even when a name
/// is `image` or `text`; only a map that is not one is read as an inference object (as Qdrant does).
/// Deserialized by hand (`vector_de`), with these rules.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VectorStruct {
    /// Named vectors.
    Named(BTreeMap<String, VectorValue>),
    /// The collection's single unnamed vector.
    Single(VectorValue),
}

impl VectorStruct {
    /// The inference layer's form, with every given value checked.
    pub fn into_draft(self, point: &PointId) -> Result<VectorsDraft, Error> {
        Ok(match self {
            VectorStruct::Single(value) => {
                VectorsDraft::Single(value.into_input(|| format!("point {point}"))?)
            }
            VectorStruct::Named(map) => VectorsDraft::Named(
                map.into_iter()
                    .map(|(name, value)| {
                        let input =
                            value.into_input(|| format!("point {point}, vector `{name}`"))?;
                        Ok((name, input))
                    })
                    .collect::<Result<_, Error>>()?,
            ),
        })
    }
}

/// Vectors in a response: the bare value for a collection with one unnamed vector, else a map.
pub fn vectors_out(config: &CollectionConfig, vectors: Option<NamedVectors>) -> Option<Value> {
    let mut vectors = vectors?;
    let single = config.vectors.contains_key("")
        && config.vectors.len() == 1
        && config.sparse_vectors.is_empty();
    if single {
        return vectors.remove("").map(|v| vector_json(&v));
    }
    Some(Value::Object(
        vectors
            .iter()
            .map(|(name, v)| (name.clone(), vector_json(v)))
            .collect(),
    ))
}

/// A stored vector as JSON, each component written as the shortest decimal that reads back as the
/// same `f32` (`0.05`, not the `f64` widening `0.05000000074505806`), as Qdrant writes them.
fn vector_json(v: &Vector) -> Value {
    let row = |r: &[f32]| Value::Array(r.iter().map(|&x| shortest_f32(x)).collect());
    match v {
        Vector::Dense(d) => row(d),
        Vector::Multi(m) => Value::Array(m.iter().map(|r| row(r)).collect()),
        Vector::Sparse(s) => serde_json::json!({
            "indices": s.indices,
            "values": row(&s.values),
        }),
    }
}

fn shortest_f32(x: f32) -> Value {
    // `Display` of an f32 is its shortest round-trip decimal; read as f64, it prints the same.
    let decimal: f64 = x.to_string().parse().unwrap_or(f64::from(x));
    serde_json::Number::from_f64(decimal).map_or(Value::Null, Value::Number)
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
    /// The value of the `order_by` field the point was ordered by (only with `order_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub order_value: Option<OrderValue>,
}

impl RecordOut {
    /// From the engine's record.
    pub fn new(config: &CollectionConfig, record: Record) -> Self {
        RecordOut {
            id: record.id,
            payload: record.payload,
            vector: vectors_out(config, record.vectors),
            order_value: record.order_value,
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
    /// The value of the `order_by` field the point was ordered by (only for an order_by query).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub order_value: Option<OrderValue>,
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
            order_value: hit.order_value,
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

/// Query string of read routes (searches, queries, scroll, count, facet and their batch and groups
/// forms): Qdrant's `timeout`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Seconds the read may run (at least 1): past them it stops and answers 408, as in Qdrant.
    /// Without it a read runs to its end.
    #[param(value_type = Option<u64>)]
    pub timeout: Option<std::num::NonZeroU64>,
}

impl ReadParams {
    /// The read's deadline, counted from now; `operation` names what timed out in the error, in
    /// Qdrant's words (`Search`, `Scroll`, ...).
    pub fn deadline(&self, operation: &'static str) -> Option<quiver_engine::query::Deadline> {
        self.timeout.map(|secs| {
            quiver_engine::query::Deadline::after(
                std::time::Duration::from_secs(secs.get()),
                operation,
            )
        })
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
