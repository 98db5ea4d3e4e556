//! Points as callers see them: what goes in (inserts, selectors, search requests) and what comes out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::filter::Filter;
pub use crate::sparse::SparseVector;
use crate::PointId;

/// A JSON object stored with a point.
pub type Payload = Map<String, Value>;

/// One named vector's value for one point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Vector {
    /// One vector.
    Dense(Vec<f32>),
    /// A matrix: one row per token (multi-vector).
    Multi(Vec<Vec<f32>>),
    /// A sparse vector (`{"indices", "values"}`).
    Sparse(SparseVector),
}

/// A point's vectors by name; `""` is the unnamed vector.
pub type NamedVectors = BTreeMap<String, Vector>;

/// A point to insert or replace.
#[derive(Clone, Debug, PartialEq)]
pub struct PointInsert {
    /// External id; an existing point with this id is replaced.
    pub id: PointId,
    /// Its vectors. Names not in the config are rejected; configured names may be absent.
    pub vectors: NamedVectors,
    /// Its payload (`None` stores an empty payload).
    pub payload: Option<Payload>,
}

/// Which points an upsert may write (Qdrant's `update_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpdateMode {
    /// Insert new points and replace existing ones.
    #[default]
    Upsert,
    /// Insert new points; leave existing ones as they are.
    InsertOnly,
    /// Replace existing points; do not create missing ones.
    UpdateOnly,
}

/// Conditions on an upsert: points they exclude are skipped, not errors (as Qdrant does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpsertConditions {
    /// Which of new and existing points may be written.
    pub mode: UpdateMode,
    /// An existing point is replaced only if it matches this filter (Qdrant's `update_filter`); new
    /// points are not checked.
    pub update_filter: Option<Filter>,
}

impl UpsertConditions {
    /// Whether a point may be written, given the payload of the live point with its id, if any.
    pub fn allows(&self, id: &PointId, existing: Option<&Payload>) -> bool {
        match existing {
            None => self.mode != UpdateMode::UpdateOnly,
            Some(payload) => {
                self.mode != UpdateMode::InsertOnly
                    && self
                        .update_filter
                        .as_ref()
                        .is_none_or(|f| f.matches(id, payload))
            }
        }
    }
}

/// Which points an operation touches.
#[derive(Clone, Debug, PartialEq)]
pub enum PointsSelector {
    /// These ids (unknown ids are ignored, as Qdrant does).
    Ids(Vec<PointId>),
    /// Every point that matches.
    Filter(Filter),
}

/// How a payload update applies.
#[derive(Clone, Debug, PartialEq)]
pub enum PayloadOp {
    /// Merge these keys into the payload (Qdrant's set_payload). With `key`, merge under that nested key.
    Set {
        /// The keys to set.
        payload: Payload,
        /// Optional nested key (`a.b`) to set them under.
        key: Option<String>,
    },
    /// Replace the whole payload (Qdrant's overwrite_payload).
    Overwrite(Payload),
    /// Remove these keys.
    DeleteKeys(Vec<String>),
    /// Remove every key.
    Clear,
}

/// Named vectors to set on an existing point (Qdrant's `PointVectors`): the names given replace the
/// point's vectors of those names; its other vectors and its payload stay.
#[derive(Clone, Debug, PartialEq)]
pub struct PointVectors {
    /// The point; it must exist.
    pub id: PointId,
    /// The vectors to set, at least one.
    pub vectors: NamedVectors,
}

/// One operation of a batch update ([`crate::Collection::update_batch`]), as Qdrant's
/// `UpdateOperation`s.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateOperation {
    /// Insert or replace points.
    Upsert {
        /// The points.
        points: Vec<PointInsert>,
        /// Which of them may be written.
        conditions: UpsertConditions,
    },
    /// Delete points.
    Delete(PointsSelector),
    /// Change the payload of points.
    Payload {
        /// The points.
        selector: PointsSelector,
        /// The change.
        op: PayloadOp,
    },
    /// Replace some named vectors of existing points.
    UpdateVectors {
        /// The points and their new vectors.
        points: Vec<PointVectors>,
        /// Only points matching this filter are changed; the others are skipped.
        update_filter: Option<Filter>,
    },
    /// Remove named vectors from points, which keep their other vectors and payload.
    DeleteVectors {
        /// The points.
        selector: PointsSelector,
        /// The vector names to remove.
        names: Vec<String>,
    },
}

impl UpdateOperation {
    /// The operation's name in Qdrant's batch body (`upsert`, `set_payload`, ...), for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            UpdateOperation::Upsert { .. } => "upsert",
            UpdateOperation::Delete(_) => "delete",
            UpdateOperation::Payload { op, .. } => match op {
                PayloadOp::Set { .. } => "set_payload",
                PayloadOp::Overwrite(_) => "overwrite_payload",
                PayloadOp::DeleteKeys(_) => "delete_payload",
                PayloadOp::Clear => "clear_payload",
            },
            UpdateOperation::UpdateVectors { .. } => "update_vectors",
            UpdateOperation::DeleteVectors { .. } => "delete_vectors",
        }
    }
}

/// Which payload fields a read returns.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum WithPayload {
    /// The whole payload.
    All,
    /// No payload.
    #[default]
    None,
    /// Only these top-level keys.
    Include(Vec<String>),
    /// Everything but these top-level keys.
    Exclude(Vec<String>),
}

/// Which vectors a read returns.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum WithVectors {
    /// Every named vector.
    All,
    /// None.
    #[default]
    None,
    /// Only these names.
    Names(Vec<String>),
}

/// A stored point as returned by retrieve and scroll.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// External id.
    pub id: PointId,
    /// Payload, when asked for.
    pub payload: Option<Payload>,
    /// Vectors, when asked for.
    pub vectors: Option<NamedVectors>,
    /// The value it was ordered by, in a scroll with `order_by`.
    pub order_value: Option<OrderValue>,
}

/// The value of a payload field a point was ordered by (Qdrant's `order_value`): an integer for
/// `integer` fields and for `datetime` ones (microseconds since the Unix epoch), a float for `float`
/// fields.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OrderValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl OrderValue {
    /// Numeric order across both forms (integers exactly between themselves).
    pub fn cmp_value(&self, other: &OrderValue) -> std::cmp::Ordering {
        match (self, other) {
            (OrderValue::Int(a), OrderValue::Int(b)) => a.cmp(b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }

    fn as_f64(&self) -> f64 {
        match *self {
            OrderValue::Int(i) => i as f64,
            OrderValue::Float(f) => f,
        }
    }
}

/// A search hit.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredPoint {
    /// External id.
    pub id: PointId,
    /// Similarity (Cosine, Dot, MaxSim) or distance (Euclid), per Qdrant's convention.
    pub score: f32,
    /// Payload, when asked for.
    pub payload: Option<Payload>,
    /// Vectors, when asked for.
    pub vectors: Option<NamedVectors>,
    /// The value it was ordered by, for an `order_by` query.
    pub order_value: Option<OrderValue>,
}

/// What to search with.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryVector {
    /// Nearest neighbours of one vector.
    Dense(Vec<f32>),
    /// MaxSim against a multi-vector field, with this query matrix.
    Multi(Vec<Vec<f32>>),
    /// Dot product over shared dimensions against a sparse vector field.
    Sparse(SparseVector),
}

/// A nearest-neighbour search over one named vector.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRequest {
    /// The named vector to search (`""` for the unnamed one).
    pub using: String,
    /// The query.
    pub query: QueryVector,
    /// Only points matching this filter.
    pub filter: Option<Filter>,
    /// Only these points (the candidates of a prefetch stage); scored exactly.
    pub candidates: Option<Vec<PointId>>,
    /// Hits to return.
    pub limit: usize,
    /// Hits to skip first (pagination).
    pub offset: usize,
    /// Candidate-list size; `None` takes the collection's stored default.
    pub ef: Option<usize>,
    /// Skip the graph and scan exactly.
    pub exact: bool,
    /// Drop hits worse than this (below for similarities, above for Euclid).
    pub score_threshold: Option<f32>,
    /// Payload in the hits.
    pub with_payload: WithPayload,
    /// Vectors in the hits.
    pub with_vectors: WithVectors,
    /// Per-query overrides of the token store's (PLAID) search for multi-vector queries; `None` takes
    /// the defaults for `limit + offset`. Ignored for dense queries, `exact` and `candidates`.
    pub plaid: Option<crate::plaid::PlaidSearchParams>,
    /// For a vector whose graph indexes a Matryoshka prefix: rescore the graph's `ef` best with the
    /// full vectors (true, the default), or return the prefix scores as they are (a funnel's first
    /// stage, whose candidates a later stage rescores). For a quantized vector: rescore the codes'
    /// candidates with the original rows (true), or return the codes' estimated scores.
    pub rescore: bool,
    /// For a quantized vector: the graph walk keeps `limit × oversampling` candidates by their codes'
    /// scores, which the original rows then rescore (`None`: 1).
    pub oversampling: Option<f64>,
    /// For a quantized vector: walk the graph on the original rows instead of the codes.
    pub ignore_quantization: bool,
    /// When the search must stop (Qdrant's `timeout`); `None`: no limit.
    pub deadline: Option<crate::query::Deadline>,
}

impl SearchRequest {
    /// How many hits the search must rank: `limit + offset`.
    pub fn limit_with_offset(&self) -> usize {
        self.limit.saturating_add(self.offset)
    }

    /// A plain top-`limit` search of the unnamed vector with defaults elsewhere.
    pub fn dense(vector: Vec<f32>, limit: usize) -> Self {
        SearchRequest {
            using: String::new(),
            query: QueryVector::Dense(vector),
            filter: None,
            candidates: None,
            limit,
            offset: 0,
            ef: None,
            exact: false,
            score_threshold: None,
            with_payload: WithPayload::None,
            with_vectors: WithVectors::None,
            plaid: None,
            rescore: true,
            oversampling: None,
            ignore_quantization: false,
            deadline: None,
        }
    }
}

/// A page of points in id order.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrollRequest {
    /// Only points matching this filter.
    pub filter: Option<Filter>,
    /// Start at this id (inclusive), as Qdrant's `offset`.
    pub offset: Option<PointId>,
    /// Page size.
    pub limit: usize,
    /// Payload in the records.
    pub with_payload: WithPayload,
    /// Vectors in the records.
    pub with_vectors: WithVectors,
}

/// A page of points and where the next page starts.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrollResult {
    /// The records, ordered by id (numbers before UUIDs).
    pub points: Vec<Record>,
    /// The id the next page starts at; `None` at the end.
    pub next_page_offset: Option<PointId>,
}

/// Counters describing a collection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CollectionInfo {
    /// Live points.
    pub points_count: usize,
    /// Segments (sealed plus appendable).
    pub segments_count: usize,
    /// Tombstoned points still held in sealed segments.
    pub deleted_count: usize,
    /// Points in segments that have an HNSW graph.
    pub indexed_vectors_count: usize,
    /// Bytes of write-ahead log not yet folded into sealed segments.
    pub wal_bytes: u64,
    /// Bytes of all the collection's files on disk.
    pub disk_bytes: u64,
    /// True while a seal, vacuum or merge runs.
    pub optimizing: bool,
    /// The payload indexes, by field, with the live points each covers.
    pub payload_schema: std::collections::BTreeMap<String, crate::payload_schema::PayloadIndexInfo>,
}
