//! Collection bodies in Qdrant's shapes, and their translation to and from the engine's config.
//!
//! Qdrant's `full_scan_threshold` is in KiB of vector data; the engine counts points. The two are
//! converted with the vector's dimension (4 bytes per component), so a config read back from Quiver
//! means what a Qdrant user expects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::config::{
    EmbeddingBinding, MultiVectorComparator, MultiVectorConfig, OptimizerConfig, SparseIndexParams,
    SparseModifier, SparseVectorParams, TokenStoreConfig, WalConfig,
};
use quiver_engine::payload_schema::PayloadIndexInfo;
use quiver_engine::point::CollectionInfo;
use quiver_engine::{
    CollectionConfig, Distance, HnswConfig, HnswConfigDiff as EngineHnswDiff, VectorParams,
};

use super::error::{invalid, Error};

/// Body of `PUT /collections/{name}`. Fields Qdrant has that do not apply to a single-node Quiver
/// (`shard_number`, `replication_factor`, `write_consistency_factor`, `sharding_method: "auto"`)
/// are accepted and ignored; `on_disk_payload`, `metadata` and `strict_mode_config` are stored and
/// shown as set; `wal_config.wal_capacity_mb` sizes the log's chunk files (see [`parse_wal_config`]); `sharding_method: "custom"` is refused (Quiver
/// has no shard keys).
#[derive(Debug, Deserialize, ToSchema)]
// Some fields are parsed only so that Qdrant clients can send them.
#[allow(dead_code)]
pub struct CreateCollection {
    /// One unnamed vector `{size, distance}`, or a map of named vectors.
    pub vectors: Option<VectorsConfig>,
    /// Collection-wide HNSW parameters.
    pub hnsw_config: Option<HnswConfigDiff>,
    /// Sealing and vacuum thresholds.
    pub optimizers_config: Option<OptimizersConfigDiff>,
    /// Named sparse vectors (`{"index": {"on_disk", "full_scan_threshold"}, "modifier": "idf"}`).
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParamsDto>>,
    /// Not supported: copying from another collection.
    #[schema(value_type = Option<Object>)]
    pub init_from: Option<Value>,
    /// Ignored (one shard on a single node).
    pub shard_number: Option<u32>,
    /// Ignored (single node).
    pub replication_factor: Option<u32>,
    /// Ignored (single node).
    pub write_consistency_factor: Option<u32>,
    /// Stored and shown as set (default true); sealed segments keep payloads in their files either
    /// way.
    pub on_disk_payload: Option<bool>,
    /// Free-form JSON object kept with the collection and shown under `config.metadata`.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// `{"wal_capacity_mb": 32}`: the size of one chunk file of the collection's write-ahead log.
    #[schema(value_type = Option<Object>)]
    pub wal_config: Option<Value>,
    /// `auto` (the default, one shard); `custom` (shard keys) is refused.
    pub sharding_method: Option<String>,
    /// Qdrant's strict mode: the limits checked on every request when `enabled` (see
    /// `api/strict_mode.rs`); Qdrant fields Quiver does not enforce are refused by name.
    #[schema(value_type = Option<Object>)]
    pub strict_mode_config: Option<Value>,
    /// Quantization of every dense vector that does not set its own: `{"scalar": {"type": "int8",
    /// "quantile": 0.99, "always_ram": true}}` or `{"binary": {"always_ram": true, "encoding":
    /// "one_bit"}}`.
    #[schema(value_type = Option<Object>)]
    pub quantization_config: Option<Value>,
    /// Quiver: vectors the server fills with one of its models, by vector name. A point's bare
    /// document (`"vector": {"text": …}`) then fills every bound vector, and a plain query runs the
    /// collection's funnel.
    pub embedding: Option<BTreeMap<String, EmbeddingBindingDto>>,
}

/// Quiver: a vector bound to an embedding model.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingBindingDto {
    /// A model the server runs (`--model NAME=...`).
    pub model: String,
    /// The model's task for this vector (default `retrieval`).
    #[serde(default = "default_task")]
    pub task: String,
    /// Dense vectors: the Matryoshka prefix the HNSW graph indexes (e.g. 256 of 2048); the full
    /// vector is stored and rescores the graph's candidates. Absent: the graph indexes the full vector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dims: Option<usize>,
    /// Keep an embedded document's text in the payload field `text` (default true).
    #[serde(default = "default_true")]
    pub store_text: bool,
}

fn default_task() -> String {
    quiver_engine::config::DEFAULT_EMBEDDING_TASK.to_string()
}

fn default_true() -> bool {
    true
}

impl EmbeddingBindingDto {
    fn to_engine(&self) -> EmbeddingBinding {
        EmbeddingBinding {
            model: self.model.clone(),
            task: self.task.clone(),
            dims: self.dims,
            store_text: self.store_text,
        }
    }

    fn from_engine(b: &EmbeddingBinding) -> Self {
        EmbeddingBindingDto {
            model: b.model.clone(),
            task: b.task.clone(),
            dims: b.dims,
            store_text: b.store_text,
        }
    }
}

/// One sparse vector's parameters, as Qdrant names them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparseVectorParamsDto {
    /// The inverted index's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<SparseIndexParamsDto>,
    /// `idf`: query weights are multiplied by each dimension's inverse document frequency over the
    /// collection's live points at query time; `none` (or absent): plain dot product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<ModifierDto>,
}

/// `sparse_vectors.*.index`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparseIndexParamsDto {
    /// A filtered search expected to pass fewer points of a segment than this (a number of points,
    /// as in Qdrant) scores them directly instead of walking the posting lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
    /// true: sealed segments serve the inverted index from its memory-mapped file; false or absent:
    /// it is read into memory when a segment opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// Only `float32` (or absent) is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<String>,
}

/// `modifier` of a sparse vector.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModifierDto {
    /// Plain dot product.
    None,
    /// Inverse document frequency weighting of the query.
    Idf,
}

impl SparseVectorParamsDto {
    fn to_engine(&self, name: &str) -> Result<SparseVectorParams, Error> {
        let index = match &self.index {
            None => None,
            Some(i) => {
                float32_only(
                    &format!("sparse vector `{name}`: index"),
                    i.datatype.as_deref(),
                )?;
                Some(SparseIndexParams {
                    on_disk: i.on_disk,
                    full_scan_threshold: i.full_scan_threshold,
                })
            }
        };
        Ok(SparseVectorParams {
            index,
            modifier: self.modifier.map(|m| match m {
                ModifierDto::None => SparseModifier::None,
                ModifierDto::Idf => SparseModifier::Idf,
            }),
        })
    }

    fn from_engine(p: &SparseVectorParams) -> Self {
        SparseVectorParamsDto {
            index: p.index.map(|i| SparseIndexParamsDto {
                full_scan_threshold: i.full_scan_threshold,
                on_disk: i.on_disk,
                datatype: None,
            }),
            modifier: p.modifier.map(|m| match m {
                SparseModifier::None => ModifierDto::None,
                SparseModifier::Idf => ModifierDto::Idf,
            }),
        }
    }
}

/// Refuses a `datatype` other than `float32`; `what` names the field's owner.
pub(super) fn float32_only(what: &str, datatype: Option<&str>) -> Result<(), Error> {
    match datatype {
        Some(dt) if !dt.eq_ignore_ascii_case("float32") => Err(invalid(format!(
            "{what} datatype `{dt}` is not supported (only float32)"
        ))),
        _ => Ok(()),
    }
}

/// `vectors`: one unnamed vector or named vectors.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VectorsConfig {
    /// The single unnamed vector.
    Single(VectorParamsDto),
    /// Named vectors.
    Named(BTreeMap<String, VectorParamsDto>),
}

/// One vector's parameters.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct VectorParamsDto {
    /// Dimension (of each row, for a multivector).
    pub size: usize,
    /// How vectors are compared.
    pub distance: DistanceDto,
    /// HNSW overrides for this vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    /// Set for a multivector (a matrix per point, compared by MaxSim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivector_config: Option<MultiVectorConfigDto>,
    /// Only `float32` (or absent) is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<String>,
    /// true: sealed segments serve this vector's rows from their memory-mapped files; false or
    /// absent (Qdrant's default): they are read into memory when a segment opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// This vector's quantization (dense vectors), overriding the collection's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub quantization_config: Option<Value>,
}

/// Qdrant's distance names. `Manhattan` is parsed so the error can say it is unsupported.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
pub enum DistanceDto {
    /// Cosine similarity.
    Cosine,
    /// Dot product.
    Dot,
    /// Euclidean distance.
    Euclid,
    /// Not supported.
    Manhattan,
}

impl DistanceDto {
    /// The engine's distance; `Manhattan` is a 400 naming the vector.
    pub(super) fn to_engine(self, name: &str) -> Result<Distance, Error> {
        match self {
            DistanceDto::Cosine => Ok(Distance::Cosine),
            DistanceDto::Dot => Ok(Distance::Dot),
            DistanceDto::Euclid => Ok(Distance::Euclid),
            DistanceDto::Manhattan => Err(invalid(format!(
                "vector `{name}`: distance Manhattan is not supported (Cosine, Dot, Euclid)"
            ))),
        }
    }
}

/// `{"comparator": "max_sim"}`, with Quiver's optional `token_store`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
pub struct MultiVectorConfigDto {
    /// Only `max_sim`.
    pub comparator: ComparatorDto,
    /// Quiver's extension (Cosine only): how sealed segments store the tokens. Shown only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_store: Option<TokenStoreDto>,
}

/// `{"nbits": 2, "keep_originals": false, "rescore": false}`: tokens compressed to `nbits` per
/// dimension (1, 2 or 4); `keep_originals` also keeps the inserted f32 tokens, for exact scores and
/// unchanged reads; `rescore` keeps them as f16 in a memory-mapped file and ranks search's last
/// candidates by exact MaxSim over them.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenStoreDto {
    /// Bits per residual dimension: 1, 2 or 4 (default 2).
    #[serde(default = "default_nbits")]
    pub nbits: u8,
    /// Keep the inserted tokens beside the compressed ones (default false).
    #[serde(default)]
    pub keep_originals: bool,
    /// Keep f16 originals on disk and rescore the last candidates over them.
    #[serde(default = "default_rescore")]
    pub rescore: bool,
}

fn default_rescore() -> bool {
    TokenStoreConfig::default().rescore
}

fn default_nbits() -> u8 {
    TokenStoreConfig::default().nbits
}

impl MultiVectorConfigDto {
    pub(super) fn to_engine(self) -> MultiVectorConfig {
        MultiVectorConfig {
            comparator: match self.comparator {
                ComparatorDto::MaxSim => MultiVectorComparator::MaxSim,
            },
            token_store: self.token_store.map(|t| TokenStoreConfig {
                nbits: t.nbits,
                keep_originals: t.keep_originals,
                rescore: t.rescore,
            }),
        }
    }

    fn from_engine(m: MultiVectorConfig) -> Self {
        MultiVectorConfigDto {
            comparator: match m.comparator {
                MultiVectorComparator::MaxSim => ComparatorDto::MaxSim,
            },
            token_store: m.token_store.map(|t| TokenStoreDto {
                nbits: t.nbits,
                keep_originals: t.keep_originals,
                rescore: t.rescore,
            }),
        }
    }
}

/// Multivector comparators.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComparatorDto {
    /// Sum over query rows of the best match among the point's rows.
    MaxSim,
}

/// HNSW parameters; absent fields keep their defaults (or, in an update, their current values).
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HnswConfigDiff {
    /// Neighbours per node (layer 0 keeps `2·m`): 0 (no graph: exact scans only) or 2..=256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    /// Candidate-list size while building. At least 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef_construct: Option<usize>,
    /// KiB of vector data below which a segment is scanned exactly instead of indexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
    /// Quiver extension: default search-time candidate-list size, stored with the collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    /// Ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_indexing_threads: Option<usize>,
    /// true: sealed graphs are served from their memory-mapped files; false (the default): they
    /// are read into memory when a segment opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// Links per node of the value graphs: one HNSW graph per value of an indexed keyword, uuid,
    /// integer or bool field that at least `full_scan_threshold` of a segment's points hold, walked
    /// by searches whose filter requires that value (Qdrant's payload-aware links). Unset: `m`; 0:
    /// none. Built when a segment is written (see docs/api.md, "Value graphs").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
    /// Ignored (graphs do not hold copies of the vectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_storage: Option<bool>,
}

/// Optimizer parameters; absent fields keep their defaults (or, in an update, their current values).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizersConfigDiff {
    /// Fraction of deleted points above which a sealed segment is rewritten. 0..=1.
    pub deleted_threshold: Option<f64>,
    /// Quiver extension: points in the appendable segment that trigger a seal (an indexed segment).
    pub segment_max_points: Option<usize>,
    /// Points (deleted ones included) a sealed segment must hold before `deleted_threshold` gets
    /// it vacuumed. Default 1000.
    pub vacuum_min_vector_number: Option<usize>,
    /// Sealed segments the merge optimizer keeps: past it, the smallest are merged. 0 (the
    /// default): half the CPUs, clamped to 2..=8.
    pub default_segment_number: Option<usize>,
    /// KiB of vectors a merged segment stays under (4 bytes per component of every dense vector
    /// and token row). Default: 256,000 per CPU, CPUs clamped to 1..=8.
    #[serde(alias = "max_segment_size_kb")]
    pub max_segment_size: Option<usize>,
    /// KiB of vectors (of a sealed segment's largest vector) above which the segment serves its
    /// vectors from their mapped files whatever `on_disk` says; 0 turns this off.
    #[serde(alias = "memmap_threshold_kb")]
    pub memmap_threshold: Option<usize>,
    /// KiB of dense vectors (4 bytes per component, summed over a point's dense vectors) in the
    /// appendable segment that seal it (building its graphs) before `segment_max_points` points;
    /// 0 turns this off.
    pub indexing_threshold: Option<usize>,
    /// Stored and shown as set; nothing is flushed on a timer, as every write is fsynced before
    /// it is acknowledged.
    pub flush_interval_sec: Option<u64>,
    /// `"auto"` or null: the optimizer runs; 0: no seal, vacuum, merge or rebuild runs (points stay
    /// in the appendable segment, searched exactly); a number above 0: the optimizer runs (one job
    /// at a time per collection, whatever the number).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub max_optimization_threads: Option<Value>,
    /// When true, an upsert waits (up to a minute) while the appendable segment is due to be
    /// sealed and its seal has not finished.
    pub prevent_unoptimized: Option<bool>,
}

/// A field that is present, null included (`Some(Value::Null)`); absent stays `None` by
/// `#[serde(default)]`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl OptimizersConfigDiff {
    /// `max_optimization_threads` parsed: `None` absent, `Some(None)` automatic, `Some(Some(n))`.
    pub(super) fn threads(&self) -> Result<Option<Option<usize>>, Error> {
        match &self.max_optimization_threads {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s == "auto" => Ok(Some(None)),
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                Ok(Some(n.as_u64().map(|n| n as usize)))
            }
            Some(other) => Err(invalid(format!(
                "optimizers_config.max_optimization_threads: expected \"auto\", null or a \
                 non-negative integer, got {other}"
            ))),
        }
    }

    /// Writes the fields given over `opt`, or a 400 naming a value that is not valid.
    pub(super) fn apply(&self, opt: &mut OptimizerConfig) -> Result<(), Error> {
        if let Some(threads) = self.threads()? {
            opt.max_optimization_threads = threads;
        }
        if let Some(t) = self.deleted_threshold {
            opt.deleted_threshold = t;
        }
        if let Some(n) = self.segment_max_points {
            opt.segment_max_points = n;
        }
        if let Some(kib) = self.indexing_threshold {
            opt.indexing_threshold = Some(kib);
        }
        if let Some(n) = self.default_segment_number {
            // 0 asks for the automatic choice, which is what unset means.
            opt.default_segment_number = (n > 0).then_some(n);
        }
        if let Some(kib) = self.max_segment_size {
            opt.max_segment_size = Some(kib);
        }
        if let Some(n) = self.vacuum_min_vector_number {
            opt.vacuum_min_vector_number = n;
        }
        if let Some(kib) = self.memmap_threshold {
            opt.memmap_threshold = Some(kib);
        }
        if let Some(sec) = self.flush_interval_sec {
            opt.flush_interval_sec = Some(sec);
        }
        if let Some(p) = self.prevent_unoptimized {
            opt.prevent_unoptimized = Some(p);
        }
        Ok(())
    }
}

/// Qdrant's default `hnsw_config.full_scan_threshold`, in KiB of vectors.
pub(crate) const DEFAULT_FULL_SCAN_THRESHOLD_KIB: usize = 10_000;

/// Bytes of one vector of this dimension (the unit conversion for `full_scan_threshold`).
fn vector_bytes(dim: usize) -> usize {
    dim.max(1) * std::mem::size_of::<f32>()
}

pub(crate) fn kib_to_points(kib: usize, dim: usize) -> usize {
    (kib.saturating_mul(1024) / vector_bytes(dim)).max(1)
}

/// Rounded to the nearest KiB, so a threshold set in KiB reads back as set.
fn points_to_kib(points: usize, dim: usize) -> usize {
    (points.saturating_mul(vector_bytes(dim)) + 512) / 1024
}

/// The dimension collection-wide KiB thresholds are converted with: the unnamed vector's, else the
/// smallest dense one's, else the smallest.
pub(super) fn reference_dim(vectors: &BTreeMap<String, VectorParams>) -> usize {
    if let Some(p) = vectors.get("") {
        return p.size;
    }
    let dense = vectors
        .values()
        .filter(|p| p.multivector_config.is_none())
        .map(|p| p.size)
        .min();
    dense
        .or_else(|| vectors.values().map(|p| p.size).min())
        .unwrap_or(1)
}

impl HnswConfigDiff {
    /// The engine's diff, `full_scan_threshold` converted from KiB of vectors of `dim` to points.
    pub(super) fn to_engine(&self, dim: usize) -> EngineHnswDiff {
        EngineHnswDiff {
            m: self.m,
            ef_construct: self.ef_construct,
            ef: self.ef,
            full_scan_threshold: self.full_scan_threshold.map(|kib| kib_to_points(kib, dim)),
            full_scan_threshold_kib: self.full_scan_threshold,
            on_disk: self.on_disk,
            payload_m: self.payload_m,
        }
    }

    /// The fields a vector sets, as the API shows them.
    fn from_engine(d: &EngineHnswDiff, dim: usize) -> Self {
        HnswConfigDiff {
            m: d.m,
            ef_construct: d.ef_construct,
            full_scan_threshold: d
                .full_scan_threshold_kib
                .or_else(|| d.full_scan_threshold.map(|p| points_to_kib(p, dim))),
            ef: d.ef,
            on_disk: d.on_disk,
            payload_m: d.payload_m,
            ..HnswConfigDiff::default()
        }
    }
}

fn apply_hnsw(base: &HnswConfig, diff: &HnswConfigDiff, dim: usize) -> HnswConfig {
    diff.to_engine(dim).apply(base)
}

/// Largest `wal_capacity_mb` taken (1 GiB, the largest record the log accepts).
const MAX_WAL_CAPACITY_MB: u64 = 1024;

/// Qdrant's `wal_config`. `wal_capacity_mb` is kept. The two others are taken only at Qdrant's
/// defaults: Quiver's log creates no chunk ahead of use (`wal_segments_ahead: 0`), and it removes a
/// closed chunk as soon as sealed segments hold its records, since a single node has no replica to
/// catch up from it; Qdrant's default of one retained chunk (`wal_retain_closed: 1`) serves that
/// catch-up, and asking for more is refused rather than promised.
pub fn parse_wal_config(value: Option<Value>) -> Result<WalConfig, Error> {
    let mut config = WalConfig::default();
    let fields = match value {
        None | Some(Value::Null) => return Ok(config),
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            return Err(invalid(format!(
                "`wal_config` must be an object, got {other}"
            )))
        }
    };
    let whole = |name: &str, v: &Value| {
        v.as_u64().ok_or_else(|| {
            invalid(format!(
                "`wal_config.{name}` must be a non-negative integer, got {v}"
            ))
        })
    };
    for (name, v) in &fields {
        if v.is_null() {
            continue;
        }
        match name.as_str() {
            "wal_capacity_mb" => {
                let mb = whole(name, v)?;
                if !(1..=MAX_WAL_CAPACITY_MB).contains(&mb) {
                    return Err(invalid(format!(
                        "`wal_config.wal_capacity_mb` must be between 1 and \
                         {MAX_WAL_CAPACITY_MB}, got {mb}"
                    )));
                }
                config.wal_capacity_mb = mb as usize;
            }
            "wal_segments_ahead" => {
                if whole(name, v)? != 0 {
                    return Err(invalid(
                        "`wal_config.wal_segments_ahead`: Quiver's log creates no chunk files \
                         ahead of use; omit it or set 0",
                    ));
                }
            }
            "wal_retain_closed" => {
                if whole(name, v)? != 1 {
                    return Err(invalid(
                        "`wal_config.wal_retain_closed`: Quiver's log removes a closed chunk once \
                         sealed segments hold its records (a single node has no replica to catch \
                         up from it); omit it or set 1",
                    ));
                }
            }
            other => {
                return Err(invalid(format!(
                    "unknown field `wal_config.{other}`: expected wal_capacity_mb, \
                     wal_segments_ahead or wal_retain_closed"
                )))
            }
        }
    }
    Ok(config)
}

impl CreateCollection {
    /// The engine config, or a 400 naming what is wrong or unsupported.
    pub fn into_config(self) -> Result<CollectionConfig, Error> {
        let mut sparse_vectors = BTreeMap::new();
        for (name, dto) in self.sparse_vectors.iter().flatten() {
            if name.is_empty() {
                return Err(invalid("sparse vector names must not be empty"));
            }
            sparse_vectors.insert(name.clone(), dto.to_engine(name)?);
        }
        if self.init_from.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(invalid("`init_from` is not supported"));
        }
        match self.sharding_method.as_deref() {
            None | Some("auto") => {}
            Some("custom") => {
                return Err(invalid(
                    "`sharding_method: custom` (shard keys) is not supported: Quiver keeps a \
                     collection on one node; filter on a payload field or use one collection per \
                     tenant",
                ))
            }
            Some(other) => {
                return Err(invalid(format!(
                    "unknown sharding_method `{other}`: use \"auto\""
                )))
            }
        }
        let strict_mode_config = super::strict_mode::parse(self.strict_mode_config)?;
        for (field, value) in [
            ("shard_number", self.shard_number),
            ("replication_factor", self.replication_factor),
            ("write_consistency_factor", self.write_consistency_factor),
        ] {
            if value == Some(0) {
                return Err(Error::Validation(format!("`{field}` must be at least 1")));
            }
        }
        let vectors = match self.vectors {
            Some(v) => v,
            // A sparse-only collection, as Qdrant allows.
            None if !sparse_vectors.is_empty() => VectorsConfig::Named(BTreeMap::new()),
            None => {
                return Err(invalid(
                    "`vectors` is required: {\"size\": N, \"distance\": \"Cosine\"}",
                ))
            }
        };
        let named = match vectors {
            VectorsConfig::Single(params) => BTreeMap::from([(String::new(), params)]),
            VectorsConfig::Named(map) => {
                if map.is_empty() && sparse_vectors.is_empty() {
                    return Err(invalid("`vectors` must name at least one vector"));
                }
                // `""` in the map is the unnamed vector, as in Qdrant: LangChain's QdrantVectorStore
                // creates `{"": {...}}` beside its sparse vector.
                map
            }
        };
        // Per-vector KiB thresholds need each vector's dimension, so params are translated first.
        let mut params = BTreeMap::new();
        for (name, dto) in named {
            let distance = dto.distance.to_engine(&name)?;
            float32_only(&format!("vector `{name}`:"), dto.datatype.as_deref())?;
            let quantization_config = super::quantization::parse(
                dto.quantization_config,
                &format!("vectors.{name}.quantization_config"),
            )?;
            params.insert(
                name,
                (
                    VectorParams {
                        size: dto.size,
                        distance,
                        hnsw_config: None,
                        multivector_config: dto
                            .multivector_config
                            .map(MultiVectorConfigDto::to_engine),
                        on_disk: dto.on_disk,
                        quantization_config,
                    },
                    dto.hnsw_config,
                ),
            );
        }
        let plain: BTreeMap<String, VectorParams> = params
            .iter()
            .map(|(k, (p, _))| (k.clone(), p.clone()))
            .collect();
        // Qdrant's default is 10,000 KiB of vectors, not a number of points: converted like a
        // threshold the user sets, a collection created without one plans filtered searches (and
        // leaves small segments without a graph) as Qdrant's would.
        let defaults = HnswConfig {
            full_scan_threshold: kib_to_points(
                DEFAULT_FULL_SCAN_THRESHOLD_KIB,
                reference_dim(&plain),
            ),
            full_scan_threshold_kib: Some(DEFAULT_FULL_SCAN_THRESHOLD_KIB),
            ..HnswConfig::default()
        };
        let collection_hnsw = match &self.hnsw_config {
            Some(diff) => apply_hnsw(&defaults, diff, reference_dim(&plain)),
            None => defaults,
        };
        let vectors = params
            .into_iter()
            .map(|(name, (mut p, diff))| {
                p.hnsw_config = diff.map(|d| d.to_engine(p.size));
                (name, p)
            })
            .collect();
        let mut optimizer_config = OptimizerConfig::default();
        if let Some(opt) = &self.optimizers_config {
            opt.apply(&mut optimizer_config)?;
        }
        let embedding = self
            .embedding
            .unwrap_or_default()
            .iter()
            .map(|(name, b)| (name.clone(), b.to_engine()))
            .collect();
        let config = CollectionConfig {
            vectors,
            hnsw_config: collection_hnsw,
            optimizer_config,
            embedding,
            quantization_config: super::quantization::parse(
                self.quantization_config,
                "quantization_config",
            )?,
            sparse_vectors,
            on_disk_payload: self.on_disk_payload.unwrap_or(true),
            metadata: super::collection_update::parse_metadata(self.metadata)?,
            strict_mode_config,
            added_at_segment: BTreeMap::new(),
            wal_config: parse_wal_config(self.wal_config)?,
        };
        config
            .validate()
            .map_err(|e| Error::Validation(e.to_string()))?;
        Ok(config)
    }
}

/// `GET /collections/{name}`: Qdrant's `CollectionInfo`, with Quiver's counters added.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionInfoOut {
    /// `green`, or `yellow` while a seal, vacuum or merge runs.
    pub status: &'static str,
    /// Always `ok`.
    pub optimizer_status: &'static str,
    /// Live points.
    pub points_count: usize,
    /// Points in segments that have an HNSW graph.
    pub indexed_vectors_count: usize,
    /// Segments (sealed plus appendable).
    pub segments_count: usize,
    /// Quiver: tombstoned points still held in sealed segments.
    pub deleted_points_count: usize,
    /// Quiver: bytes of write-ahead log not yet folded into sealed segments.
    pub wal_bytes: u64,
    /// Quiver: bytes of the collection's files on disk.
    pub disk_bytes: u64,
    /// The configuration.
    pub config: CollectionConfigOut,
    /// The payload indexes: `{field: {"data_type", "params"?, "points"}}`, `points` counting the live
    /// points with a value of the indexed type at the field.
    #[schema(value_type = Object)]
    pub payload_schema: BTreeMap<String, PayloadIndexInfo>,
}

/// `config` of the collection info.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionConfigOut {
    /// Vectors, sparse vectors and (fixed) cluster parameters.
    pub params: CollectionParamsOut,
    /// Collection-wide HNSW parameters.
    pub hnsw_config: HnswConfigOut,
    /// Optimizer parameters.
    pub optimizer_config: OptimizerConfigOut,
    /// Reported for client compatibility; Quiver's WAL is fsynced per write and trimmed on seal.
    pub wal_config: WalConfigOut,
    /// The collection's quantization as set (null when none).
    #[schema(value_type = Option<Object>)]
    pub quantization_config: Option<Value>,
    /// Quiver: vectors bound to an embedding model (absent when none is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<BTreeMap<String, EmbeddingBindingDto>>,
    /// The collection's free-form metadata (absent when none was set).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    /// Qdrant's strict mode, the fields as set (absent when none was set).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub strict_mode_config: Option<quiver_engine::config::StrictModeConfig>,
}

/// `config.params`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionParamsOut {
    /// As set (at creation, by PATCH and by the vector name routes).
    pub vectors: VectorsConfigOut,
    /// Sparse vectors, as set (absent when there are none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParamsDto>>,
    /// Always 1.
    pub shard_number: u32,
    /// Always 1.
    pub replication_factor: u32,
    /// Always 1.
    pub write_consistency_factor: u32,
    /// As set (default true).
    pub on_disk_payload: bool,
}

/// One unnamed vector or named vectors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VectorsConfigOut {
    /// The unnamed vector.
    Single(VectorParamsOut),
    /// Named vectors.
    Named(BTreeMap<String, VectorParamsOut>),
}

/// One vector's parameters.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorParamsOut {
    /// Dimension.
    pub size: usize,
    /// `Cosine`, `Dot` or `Euclid`.
    pub distance: DistanceDto,
    /// Per-vector HNSW overrides: only the fields set (the others are the collection's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    /// Present for a multivector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multivector_config: Option<MultiVectorConfigDto>,
    /// As set; absent means false (rows read into memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// This vector's own quantization, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub quantization_config: Option<Value>,
}

/// HNSW parameters as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct HnswConfigOut {
    /// Neighbours per node.
    pub m: usize,
    /// Build-time candidate-list size.
    pub ef_construct: usize,
    /// KiB of vectors below which segments are scanned exactly.
    pub full_scan_threshold: usize,
    /// Quiver: stored default search-time candidate-list size.
    pub ef: usize,
    /// Always 0 (automatic).
    pub max_indexing_threads: usize,
    /// Whether sealed graphs are served from their mapped files (true) or from memory (false).
    pub on_disk: bool,
    /// Links per node of the value graphs, when set (unset: `m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

/// Optimizer parameters as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptimizerConfigOut {
    /// Deleted fraction that triggers a rewrite.
    pub deleted_threshold: f64,
    /// Quiver: points in the appendable segment that trigger a seal.
    pub segment_max_points: usize,
    /// KiB of dense vectors in the appendable segment that trigger a seal, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexing_threshold: Option<usize>,
    /// Sealed segments the merge optimizer keeps; 0: automatic (half the CPUs, 2..=8).
    pub default_segment_number: usize,
    /// KiB of vectors a merged segment stays under, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_segment_size: Option<usize>,
    /// Points a sealed segment must hold before it can be vacuumed.
    pub vacuum_min_vector_number: usize,
    /// KiB of vectors above which a sealed segment is served from its maps; null when off.
    pub memmap_threshold: Option<usize>,
    /// As set (0 when not set): every write is fsynced before it is acknowledged, so nothing is
    /// flushed on a timer.
    pub flush_interval_sec: u64,
    /// As set; null: automatic; 0: optimizations off.
    pub max_optimization_threads: Option<usize>,
    /// As set, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prevent_unoptimized: Option<bool>,
}

/// Qdrant's `wal_config`: the chunk size as set (see [`parse_wal_config`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct WalConfigOut {
    /// MiB at which a chunk file of the log is closed.
    pub wal_capacity_mb: usize,
    /// Always 0: no chunk is created ahead of use.
    pub wal_segments_ahead: usize,
}

fn distance_out(d: Distance) -> DistanceDto {
    match d {
        Distance::Cosine => DistanceDto::Cosine,
        Distance::Dot => DistanceDto::Dot,
        Distance::Euclid => DistanceDto::Euclid,
    }
}

fn hnsw_out(h: &HnswConfig, dim: usize) -> HnswConfigOut {
    HnswConfigOut {
        m: h.m,
        ef_construct: h.ef_construct,
        full_scan_threshold: h
            .full_scan_threshold_kib
            .unwrap_or_else(|| points_to_kib(h.full_scan_threshold, dim)),
        ef: h.ef,
        max_indexing_threads: 0,
        on_disk: h.on_disk,
        payload_m: h.payload_m,
    }
}

fn params_out(p: &VectorParams) -> VectorParamsOut {
    VectorParamsOut {
        size: p.size,
        distance: distance_out(p.distance),
        hnsw_config: p
            .hnsw_config
            .as_ref()
            .map(|h| HnswConfigDiff::from_engine(h, p.size)),
        multivector_config: p.multivector_config.map(MultiVectorConfigDto::from_engine),
        on_disk: p.on_disk,
        quantization_config: p
            .quantization_config
            .as_ref()
            .map(super::quantization::to_json),
    }
}

impl CollectionInfoOut {
    /// From the engine's config and counters.
    pub fn new(config: &CollectionConfig, mut info: CollectionInfo) -> Self {
        let vectors = match config.vectors.get("") {
            Some(p) if config.vectors.len() == 1 => VectorsConfigOut::Single(params_out(p)),
            _ => VectorsConfigOut::Named(
                config
                    .vectors
                    .iter()
                    .map(|(k, p)| (k.clone(), params_out(p)))
                    .collect(),
            ),
        };
        CollectionInfoOut {
            status: if info.optimizing { "yellow" } else { "green" },
            optimizer_status: "ok",
            points_count: info.points_count,
            indexed_vectors_count: info.indexed_vectors_count,
            segments_count: info.segments_count,
            deleted_points_count: info.deleted_count,
            wal_bytes: info.wal_bytes,
            disk_bytes: info.disk_bytes,
            config: CollectionConfigOut {
                params: CollectionParamsOut {
                    vectors,
                    sparse_vectors: (!config.sparse_vectors.is_empty()).then(|| {
                        config
                            .sparse_vectors
                            .iter()
                            .map(|(k, p)| (k.clone(), SparseVectorParamsDto::from_engine(p)))
                            .collect()
                    }),
                    shard_number: 1,
                    replication_factor: 1,
                    write_consistency_factor: 1,
                    on_disk_payload: config.on_disk_payload,
                },
                hnsw_config: hnsw_out(&config.hnsw_config, reference_dim(&config.vectors)),
                optimizer_config: OptimizerConfigOut {
                    deleted_threshold: config.optimizer_config.deleted_threshold,
                    segment_max_points: config.optimizer_config.segment_max_points,
                    indexing_threshold: config.optimizer_config.indexing_threshold,
                    default_segment_number: config
                        .optimizer_config
                        .default_segment_number
                        .unwrap_or(0),
                    max_segment_size: config.optimizer_config.max_segment_size,
                    vacuum_min_vector_number: config.optimizer_config.vacuum_min_vector_number,
                    memmap_threshold: config.optimizer_config.memmap_threshold,
                    flush_interval_sec: config.optimizer_config.flush_interval_sec.unwrap_or(0),
                    max_optimization_threads: config.optimizer_config.max_optimization_threads,
                    prevent_unoptimized: config.optimizer_config.prevent_unoptimized,
                },
                wal_config: WalConfigOut {
                    wal_capacity_mb: config.wal_config.wal_capacity_mb,
                    wal_segments_ahead: 0,
                },
                quantization_config: config
                    .quantization_config
                    .as_ref()
                    .map(super::quantization::to_json),
                embedding: (!config.embedding.is_empty()).then(|| {
                    config
                        .embedding
                        .iter()
                        .map(|(k, b)| (k.clone(), EmbeddingBindingDto::from_engine(b)))
                        .collect()
                }),
                metadata: config.metadata.clone(),
                strict_mode_config: config.strict_mode_config.clone(),
            },
            payload_schema: std::mem::take(&mut info.payload_schema),
        }
    }
}

/// `GET /collections`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionsList {
    /// The open collections, by name.
    pub collections: Vec<CollectionDescription>,
}

/// One entry of the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionDescription {
    /// The collection's name.
    pub name: String,
}

/// `GET /collections/{name}/exists`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionExistence {
    /// Whether it exists.
    pub exists: bool,
}

/// Rejects names that cannot be a directory name or that Qdrant would refuse.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let bad_char = name.chars().find(|c| {
        matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()
    });
    if name.is_empty() || name.len() > 255 {
        // A length out of range is Qdrant's validation error (422), a bad character a 400.
        Err(Error::Validation(
            "collection name must be 1 to 255 bytes long".into(),
        ))
    } else if name.starts_with('.') {
        Err(invalid("collection name must not start with `.`"))
    } else if let Some(c) = bad_char {
        Err(invalid(format!("collection name must not contain {c:?}")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<CollectionConfig, Error> {
        serde_json::from_str::<CreateCollection>(json)
            .unwrap()
            .into_config()
    }

    /// The counters of an empty collection of one segment.
    fn empty_info() -> CollectionInfo {
        CollectionInfo {
            points_count: 0,
            segments_count: 1,
            deleted_count: 0,
            indexed_vectors_count: 0,
            wal_bytes: 0,
            disk_bytes: 0,
            optimizing: false,
            payload_schema: Default::default(),
        }
    }
    #[test]
    fn single_and_named_vectors_translate() {
        let c = parse(r#"{"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "on_disk_payload": true, "quantization_config": null}"#).unwrap();
        assert_eq!(c.vectors[""].size, 4);
        assert_eq!(c.vectors[""].distance, Distance::Dot);
        let c = parse(r#"{"vectors": {"dense": {"size": 8, "distance": "Cosine"}, "colbert": {"size": 4, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}}}"#).unwrap();
        assert_eq!(c.vectors.len(), 2);
        assert!(c.vectors["colbert"].multivector_config.is_some());
    }

    #[test]
    fn full_scan_threshold_round_trips_in_kib() {
        let c = parse(r#"{"vectors": {"size": 256, "distance": "Cosine"}, "hnsw_config": {"m": 8, "full_scan_threshold": 1000}}"#).unwrap();
        assert_eq!(c.hnsw_config.m, 8);
        assert_eq!(c.hnsw_config.full_scan_threshold, 1000);
        let out = CollectionInfoOut::new(&c, empty_info());
        assert_eq!(out.config.hnsw_config.full_scan_threshold, 1000);
    }

    #[test]
    fn full_scan_threshold_reads_back_as_set_at_any_dimension() {
        // 10,000 KiB of 384-d vectors is 6,666.67 points: converted back from points it read 9,999.
        let info = empty_info();
        let c = parse(r#"{"vectors": {"size": 384, "distance": "Cosine"}}"#).unwrap();
        let out = CollectionInfoOut::new(&c, info.clone());
        assert_eq!(out.config.hnsw_config.full_scan_threshold, 10_000);
        let c = parse(r#"{"vectors": {"v": {"size": 300, "distance": "Dot", "hnsw_config": {"full_scan_threshold": 9999}}}, "hnsw_config": {"full_scan_threshold": 5001}}"#).unwrap();
        let json = serde_json::to_value(CollectionInfoOut::new(&c, info)).unwrap();
        assert_eq!(json["config"]["hnsw_config"]["full_scan_threshold"], 5001);
        assert_eq!(
            json["config"]["params"]["vectors"]["v"]["hnsw_config"]["full_scan_threshold"],
            9999
        );
        // The stored config keeps the KiB, so a reload shows the same.
        let reloaded: CollectionConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(reloaded.hnsw_config.full_scan_threshold_kib, Some(5001));
    }

    #[test]
    fn full_scan_threshold_defaults_to_qdrants_10000_kib_of_vectors() {
        // 10,000 KiB of 384-d f32 vectors: 6,666 of them, where the engine's own default is 1,000.
        let c = parse(r#"{"vectors": {"size": 384, "distance": "Cosine"}}"#).unwrap();
        assert_eq!(c.hnsw_config.full_scan_threshold, 6_666);
        let c =
            parse(r#"{"vectors": {"size": 64, "distance": "Cosine"}, "hnsw_config": {"m": 8}}"#)
                .unwrap();
        assert_eq!(c.hnsw_config.full_scan_threshold, 40_000);
        assert_eq!(c.hnsw_config.m, 8);
        // Set, it is taken as set.
        let c = parse(r#"{"vectors": {"size": 64, "distance": "Cosine"}, "hnsw_config": {"full_scan_threshold": 10}}"#).unwrap();
        assert_eq!(c.hnsw_config.full_scan_threshold, 40);
    }

    #[test]
    fn unsupported_settings_are_clear_errors() {
        assert!(parse(r#"{"vectors": {"size": 4, "distance": "Manhattan"}}"#).is_err());
        let strict = parse(
            r#"{"vectors": {"size": 4, "distance": "Dot"}, "strict_mode_config": {"max_mystery": 3}}"#,
        );
        assert!(strict.unwrap_err().to_string().contains("max_mystery"));
        assert!(parse(
            r#"{"vectors": {"size": 4, "distance": "Dot"}, "strict_mode_config": null}"#
        )
        .is_ok());
        assert!(
            parse(r#"{"vectors": {"size": 4, "distance": "Dot", "datatype": "uint8"}}"#).is_err()
        );
        assert!(parse(r#"{"vectors": {"size": 0, "distance": "Dot"}}"#).is_err());
        assert!(parse(r#"{"sparse_vectors": {"s": {"index": {"datatype": "uint8"}}}}"#).is_err());
        // Unknown modifiers and index fields fail while the body is parsed (a 400 as well).
        for body in [
            r#"{"sparse_vectors": {"s": {"modifier": "bm42"}}}"#,
            r#"{"sparse_vectors": {"s": {"index": {"bogus": 1}}}}"#,
        ] {
            assert!(
                serde_json::from_str::<CreateCollection>(body).is_err(),
                "{body}"
            );
        }
        assert!(parse(
            r#"{"sparse_vectors": {"v": {}}, "vectors": {"v": {"size": 4, "distance": "Dot"}}}"#
        )
        .is_err());
        assert!(parse(r#"{}"#).is_err());
    }

    #[test]
    fn sparse_vectors_translate_and_read_back() {
        let c = parse(
            r#"{"vectors": {"dense": {"size": 4, "distance": "Dot"}},
                "sparse_vectors": {"text": {"modifier": "idf",
                    "index": {"on_disk": true, "full_scan_threshold": 100}}}}"#,
        )
        .unwrap();
        let p = c.sparse("text").unwrap();
        assert!(p.idf());
        assert_eq!(p.full_scan_threshold(), 100);
        let only = parse(r#"{"sparse_vectors": {"s": {}}}"#).unwrap();
        assert!(only.vectors.is_empty());
        let info = empty_info();
        let out = serde_json::to_value(CollectionInfoOut::new(&c, info)).unwrap();
        assert_eq!(
            out["config"]["params"]["sparse_vectors"],
            serde_json::json!({"text": {"modifier": "idf",
                "index": {"on_disk": true, "full_scan_threshold": 100}}})
        );
    }
}
