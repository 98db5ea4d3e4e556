//! A collection's configuration: set at creation, changed only through the collection (PATCH and the
//! vector name routes), stored with the data, never re-derived from flags.

use std::collections::BTreeMap;

pub use crate::quantization::{
    BinaryEncoding, BinaryQuantization, BinaryQueryEncoding, QuantizationConfig,
    ScalarQuantization, ScalarType,
};
pub use quiver_storage::segment::Residency;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How two vectors are compared. Names and score conventions follow Qdrant: `Cosine` and `Dot` return a
/// similarity (higher is better), `Euclid` returns the distance (lower is better).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distance {
    /// Cosine similarity; vectors are normalised on insert, so it is a dot product on unit vectors.
    Cosine,
    /// Raw dot product.
    Dot,
    /// Euclidean (L2) distance.
    Euclid,
}

impl Distance {
    /// True when a larger score is better (similarities); false for distances.
    pub fn higher_is_better(self) -> bool {
        match self {
            Distance::Cosine | Distance::Dot => true,
            Distance::Euclid => false,
        }
    }
}

/// HNSW graph parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HnswConfig {
    /// Neighbours per node on the upper layers (layer 0 keeps `2·m`); 0 builds no graph (exact scans only).
    pub m: usize,
    /// Candidate-list size while building; higher builds slower and finds better neighbours.
    pub ef_construct: usize,
    /// Default candidate-list size at search time, stored so a reload never resets recall.
    pub ef: usize,
    /// Segments with fewer points than this are searched exactly and get no graph, and a filter
    /// expected to pass fewer points of a segment than this is scanned instead of walked (Qdrant's
    /// `full_scan_threshold`, which its API gives in KiB of vectors; the server converts).
    pub full_scan_threshold: usize,
    /// `full_scan_threshold` in KiB as the API gave it, kept so it reads back as set: KiB to points
    /// and back does not round-trip for every dimension. `None` when it was set in points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold_kib: Option<usize>,
    /// Serve sealed graphs from their mapped files instead of reading them into memory at open
    /// (Qdrant's `hnsw_config.on_disk`; default false).
    pub on_disk: bool,
    /// `m` of the value graphs a seal builds for each value of an indexed keyword, integer, uuid or
    /// bool field that holds at least `full_scan_threshold` of a segment's points (Qdrant's
    /// `payload_m`); `None` uses `m`, 0 builds none. See [`HnswConfig::value_graph_m`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

impl HnswConfig {
    /// The `m` of value graphs: `payload_m`, or `m` when it is not set (as in Qdrant); 0 for none.
    pub fn value_graph_m(&self) -> usize {
        self.payload_m.unwrap_or(self.m)
    }
}

/// Per-vector HNSW settings: only the fields set, each overriding the collection's (Qdrant's
/// `HnswConfigDiff`). Kept as set so the API echoes what the user asked for, and so a later change of
/// the collection's settings still reaches the fields a vector does not override.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HnswConfigDiff {
    /// See [`HnswConfig::m`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    /// See [`HnswConfig::ef_construct`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ef_construct: Option<usize>,
    /// See [`HnswConfig::ef`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    /// See [`HnswConfig::full_scan_threshold`] (points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
    /// See [`HnswConfig::full_scan_threshold_kib`]; set only together with `full_scan_threshold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold_kib: Option<usize>,
    /// See [`HnswConfig::on_disk`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// See [`HnswConfig::payload_m`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

impl HnswConfigDiff {
    /// `base` with the fields set here replaced.
    pub fn apply(&self, base: &HnswConfig) -> HnswConfig {
        let (full_scan_threshold, full_scan_threshold_kib) = match self.full_scan_threshold {
            Some(points) => (points, self.full_scan_threshold_kib),
            None => (base.full_scan_threshold, base.full_scan_threshold_kib),
        };
        HnswConfig {
            m: self.m.unwrap_or(base.m),
            ef_construct: self.ef_construct.unwrap_or(base.ef_construct),
            ef: self.ef.unwrap_or(base.ef),
            full_scan_threshold,
            full_scan_threshold_kib,
            on_disk: self.on_disk.unwrap_or(base.on_disk),
            payload_m: self.payload_m.or(base.payload_m),
        }
    }

    /// The fields of `other` that are set, written over these.
    pub fn merge(&mut self, other: &HnswConfigDiff) {
        self.m = other.m.or(self.m);
        self.ef_construct = other.ef_construct.or(self.ef_construct);
        self.ef = other.ef.or(self.ef);
        if other.full_scan_threshold.is_some() {
            self.full_scan_threshold = other.full_scan_threshold;
            self.full_scan_threshold_kib = other.full_scan_threshold_kib;
        }
        self.on_disk = other.on_disk.or(self.on_disk);
        self.payload_m = other.payload_m.or(self.payload_m);
    }
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: 16,
            ef_construct: 100,
            ef: 64,
            full_scan_threshold: 1_000,
            full_scan_threshold_kib: None,
            on_disk: false,
            payload_m: None,
        }
    }
}

/// How multi-vectors (a matrix per point) are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultiVectorComparator {
    /// Sum over query vectors of the best score against the point's vectors (ColBERT's MaxSim).
    MaxSim,
}

/// Multi-vector settings of a named vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiVectorConfig {
    /// The comparator; only MaxSim exists.
    pub comparator: MultiVectorComparator,
    /// How sealed segments store the tokens (Cosine only); `None` takes [`TokenStoreConfig::default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_store: Option<TokenStoreConfig>,
}

impl MultiVectorConfig {
    /// MaxSim with the default token store.
    pub fn max_sim() -> Self {
        MultiVectorConfig {
            comparator: MultiVectorComparator::MaxSim,
            token_store: None,
        }
    }
}

/// The token store (PLAID) of a Cosine multi-vector.
///
/// By default a sealed segment keeps the tokens only compressed (centroid id + `nbits` per dimension:
/// 34 bytes per 128-d token at 2 bits), and the appendable segment holds them as f16 until it is sealed.
/// Scores and returned vectors are then those of the decompressed tokens. `keep_originals` stores the
/// inserted f32 tokens as well (512 more bytes per 128-d token): scores are then exact MaxSim over the
/// inserted tokens, and reads return them unchanged.
///
/// `rescore` keeps the inserted tokens on disk as f16 in a file of their own (2 bytes per dimension,
/// memory-mapped and read only for the candidates of search's last stage): the token store ranks those
/// candidates by exact MaxSim over them instead of over the decompressed tokens, and reads return
/// them. Segments sealed before it was set have no such file and search as before. Refused with
/// `keep_originals`, whose f32 rows score exactly already.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenStoreConfig {
    /// Bits per residual dimension: 1, 2 or 4.
    pub nbits: u8,
    /// Keep the inserted tokens beside the compressed ones.
    pub keep_originals: bool,
    /// Keep f16 originals on disk and rescore the last candidates over them.
    pub rescore: bool,
}

impl Default for TokenStoreConfig {
    fn default() -> Self {
        TokenStoreConfig {
            nbits: 2,
            keep_originals: false,
            rescore: false,
        }
    }
}

/// One named vector of a collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorParams {
    /// Dimension of each vector (of each row, for a multi-vector).
    pub size: usize,
    /// How vectors are compared.
    pub distance: Distance,
    /// Per-vector HNSW overrides; the fields not set (or all, when `None`) take the collection's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    /// Set when each point holds a matrix (per-token vectors) instead of one vector. Multi-vectors get no
    /// HNSW graph: they are scored exactly (MaxSim) over candidates or over the whole collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivector_config: Option<MultiVectorConfig>,
    /// Serve sealed segments' rows of this vector from their mapped files (true) instead of reading
    /// them into memory at open (false or unset, Qdrant's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// This vector's quantization, overriding the collection's (dense vectors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<QuantizationConfig>,
}

/// When the appendable segment is sealed and when sealed segments are rewritten.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimizerConfig {
    /// Points in the appendable segment that trigger a seal (build of an immutable, indexed segment).
    pub segment_max_points: usize,
    /// Fraction of deleted points above which a sealed segment is rewritten without them.
    pub deleted_threshold: f64,
    /// KiB of vectors in the appendable segment that trigger a seal before `segment_max_points` is
    /// reached (Qdrant's `indexing_threshold`): 4 bytes per component, summed over every dense vector
    /// and every token row of every multi-vector of each point. 0: only `segment_max_points` seals.
    /// `None`: [`DEFAULT_MULTIVECTOR_INDEXING_THRESHOLD_KIB`] for a collection with a multi-vector
    /// (a point may hold hundreds of rows, and the appendable segment is scanned by brute force),
    /// else only `segment_max_points` seals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexing_threshold: Option<usize>,
    /// Sealed segments the merge optimizer keeps the collection at (Qdrant's
    /// `default_segment_number`): past it, the smallest are merged. `None` or 0: half the CPUs,
    /// clamped to 2..=8, as Qdrant picks it (see [`CollectionConfig::target_segments`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_segment_number: Option<usize>,
    /// KiB of vectors (counted as `indexing_threshold` counts them) a merged segment stays under
    /// (Qdrant's `max_segment_size`). `None`: [`DEFAULT_MAX_SEGMENT_PER_CPU_KIB`] per CPU, CPUs
    /// clamped to 1..=8, as Qdrant derives it from its indexing threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_segment_size: Option<usize>,
    /// Points a sealed segment must hold, deleted ones included, before `deleted_threshold` can
    /// get it vacuumed (Qdrant's `vacuum_min_vector_number`, default
    /// [`DEFAULT_VACUUM_MIN_VECTOR_NUMBER`]): rewriting a small segment frees little.
    pub vacuum_min_vector_number: usize,
    /// Qdrant's `max_optimization_threads`: `None` (`"auto"` or null) lets the optimizer run; 0
    /// stops every background seal, vacuum, merge and rebuild of the collection (points stay in the
    /// appendable segment, searched exactly); any other number allows that many jobs at once, which
    /// is one here, as Quiver runs one job per collection at a time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_optimization_threads: Option<usize>,
    /// KiB of vectors (of the largest vector of a sealed segment, 4 bytes per component) above
    /// which the segment serves every vector's rows from its mapped files, whatever `on_disk` says
    /// (Qdrant's `memmap_threshold`). `None` or 0: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memmap_threshold: Option<usize>,
    /// Qdrant's `flush_interval_sec`, stored and shown as set. Quiver has nothing to flush on a
    /// timer: a write is acknowledged only once its WAL record is fsynced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_interval_sec: Option<u64>,
    /// Qdrant's `prevent_unoptimized`: when true, an upsert waits (up to
    /// [`PREVENT_UNOPTIMIZED_MAX_WAIT`]) while the appendable segment is due to be sealed and the
    /// seal that drains it has not finished, so unindexed rows never pile up past the seal
    /// threshold while the optimizer runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prevent_unoptimized: Option<bool>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            segment_max_points: 50_000,
            deleted_threshold: 0.2,
            indexing_threshold: None,
            default_segment_number: None,
            max_segment_size: None,
            vacuum_min_vector_number: DEFAULT_VACUUM_MIN_VECTOR_NUMBER,
            max_optimization_threads: None,
            memmap_threshold: None,
            flush_interval_sec: None,
            prevent_unoptimized: None,
        }
    }
}

impl OptimizerConfig {
    /// Whether background optimizations run (`max_optimization_threads` is not 0).
    pub fn optimizations_enabled(&self) -> bool {
        self.max_optimization_threads != Some(0)
    }

    /// Whether a sealed segment of `points` points (deleted ones included), `deleted` of them
    /// deleted, is due to be vacuumed: it holds at least `vacuum_min_vector_number` points and its
    /// deleted fraction passes `deleted_threshold` (Qdrant's vacuum optimizer, point level).
    pub fn vacuum_due(&self, points: usize, deleted: usize) -> bool {
        deleted > 0
            && points >= self.vacuum_min_vector_number
            && deleted as f64 > self.deleted_threshold * points as f64
    }

    /// Whether a sealed segment whose largest vector takes `bytes` bytes is served from its maps
    /// (see [`Self::memmap_threshold`]).
    pub fn memmap_due(&self, bytes: u64) -> bool {
        match self.memmap_threshold {
            Some(kib) if kib > 0 => bytes >= (kib as u64).saturating_mul(1024),
            _ => false,
        }
    }
}

/// Qdrant's default `vacuum_min_vector_number`.
pub const DEFAULT_VACUUM_MIN_VECTOR_NUMBER: usize = 1000;

/// The longest an upsert waits for a seal under `prevent_unoptimized`; past it the write goes
/// ahead (a seal that keeps failing must not stop writes).
pub const PREVENT_UNOPTIMIZED_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Qdrant's default `max_segment_size` per indexing thread, in KiB.
pub const DEFAULT_MAX_SEGMENT_PER_CPU_KIB: usize = 256_000;

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// KiB of vectors that seal the appendable segment of a collection with a multi-vector when its
/// `indexing_threshold` is unset: about 43,000 token rows of 384 dims. The appendable segment answers
/// by exact MaxSim over every token, which favours small; but each sealed segment adds its own centroid
/// scoring and candidate rescoring to every query, which favours large (the merge optimizer later
/// brings their number down to the target). Before merging, on 20,000 MiniLM documents (363k tokens)
/// 4 MiB left 105 segments and 226 ms a query, 16 MiB 32 segments and 73 ms, 64 MiB 9 segments and
/// 33 ms (`docs/benchmarks.md`).
pub const DEFAULT_MULTIVECTOR_INDEXING_THRESHOLD_KIB: usize = 65_536;

/// The task a bound vector embeds with when neither the binding nor the request names one.
pub const DEFAULT_EMBEDDING_TASK: &str = "retrieval";

fn default_task() -> String {
    DEFAULT_EMBEDDING_TASK.to_string()
}

fn default_true() -> bool {
    true
}

/// A named vector filled by an embedding model the server runs: documents and images given instead of
/// vectors are embedded with `model` and `task`. The engine only reads `dims`; the rest is for the
/// server, stored here so the binding lives and travels (snapshots) with the collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingBinding {
    /// The server's name of the model (`--model NAME=...`).
    pub model: String,
    /// The model's task (LoRA adapter) for this vector.
    #[serde(default = "default_task")]
    pub task: String,
    /// Dense vectors only: the Matryoshka prefix the HNSW graph is built over. The full vector is
    /// stored and rescores the graph's candidates; `None` (or the full size) indexes the full vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dims: Option<usize>,
    /// Keep an embedded document's text in the payload field `text` (unless the point sets it).
    #[serde(default = "default_true")]
    pub store_text: bool,
}

/// The whole configuration of a collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Named vectors. The empty name `""` is Qdrant's single unnamed vector.
    pub vectors: BTreeMap<String, VectorParams>,
    /// Collection-wide HNSW defaults.
    #[serde(default)]
    pub hnsw_config: HnswConfig,
    /// Sealing and vacuum thresholds.
    #[serde(default)]
    pub optimizer_config: OptimizerConfig,
    /// Vectors bound to an embedding model, by vector name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub embedding: BTreeMap<String, EmbeddingBinding>,
    /// Quantization of every dense vector that does not set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<QuantizationConfig>,
    /// Named sparse vectors (Qdrant's `sparse_vectors`); their names differ from the dense ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sparse_vectors: BTreeMap<String, SparseVectorParams>,
    /// Qdrant's `on_disk_payload`, as set (default true). Stored so that it reads back as set; sealed
    /// segments keep payloads in their files either way.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub on_disk_payload: bool,
    /// Free-form metadata of the collection (Qdrant's `metadata`): stored and returned, never read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Qdrant's `strict_mode_config`, as set: limits the server checks before a request reaches the
    /// collection (when `enabled`). The engine stores it and never reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_mode_config: Option<StrictModeConfig>,
    /// Vectors (dense or sparse) added after creation, by name: the first segment id that holds
    /// them. Older segments may still store the columns of a deleted vector of the same name, which
    /// are not this vector's and are never opened.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub added_at_segment: BTreeMap<String, u64>,
    /// Qdrant's `wal_config`: how large one chunk file of the write-ahead log grows.
    #[serde(default)]
    pub wal_config: WalConfig,
}

/// Qdrant's `wal_config`. Only `wal_capacity_mb` has a setting here: the log writes no chunks
/// ahead of use and keeps no closed chunk whose records sealed segments hold (a single node has no
/// replica to catch up from it), so `wal_segments_ahead` and `wal_retain_closed` are Qdrant's
/// defaults, shown as such, and a request for other values is refused by the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// MiB at which a chunk file of the log is closed and the next one started (Qdrant's default 32).
    pub wal_capacity_mb: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            wal_capacity_mb: DEFAULT_WAL_CAPACITY_MB,
        }
    }
}

/// Qdrant's default size of one WAL segment.
pub const DEFAULT_WAL_CAPACITY_MB: usize = 32;

impl WalConfig {
    /// The log's options for this config.
    pub fn options(&self) -> quiver_storage::WalOptions {
        quiver_storage::WalOptions {
            chunk_size: (self.wal_capacity_mb.max(1) as u64) << 20,
        }
    }
}

/// Qdrant's `StrictModeConfig`; only the fields set are kept (and shown).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrictModeConfig {
    /// Whether the limits below are checked at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Most hits (or records, groups, facet values) one read may ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_query_limit: Option<usize>,
    /// `false`: a filter in a read may use only keys with a payload index of a fitting type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unindexed_filtering_retrieve: Option<bool>,
    /// `false`: the same for filters in writes (delete, payload and vector changes, `update_filter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unindexed_filtering_update: Option<bool>,
    /// Largest `hnsw_ef` a search may ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_max_hnsw_ef: Option<usize>,
    /// `false`: `exact: true` is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_allow_exact: Option<bool>,
    /// Largest `quantization.oversampling` a search may ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_max_oversampling: Option<f64>,
    /// Most points one upsert or vector update may carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upsert_max_batchsize: Option<usize>,
    /// Most points the collection may hold; an upsert that adds points past it is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_points_count: Option<usize>,
    /// Most conditions one filter may have (nested ones included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_max_conditions: Option<usize>,
    /// Most values one condition may list (`match.any`, `match.except`, `has_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_max_size: Option<usize>,
    /// Largest `timeout` (seconds) a request may ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_timeout: Option<usize>,
    /// Read tokens per minute (a token bucket that holds one minute's worth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_rate_limit: Option<usize>,
    /// Write tokens per minute, a bucket of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_rate_limit: Option<usize>,
    /// Most bytes of vectors the collection may hold (the server's estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_collection_vector_size_bytes: Option<usize>,
    /// Most bytes of payload the collection may hold (the server's estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_collection_payload_size_bytes: Option<usize>,
    /// Most payload indexes the collection may have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_payload_index_count: Option<usize>,
    /// Per multi-vector name: the most rows one point's matrix may have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multivector_config: Option<BTreeMap<String, StrictModeMultivector>>,
    /// Per sparse vector name: the most non-zeros one vector may have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_config: Option<BTreeMap<String, StrictModeSparse>>,
}

/// Qdrant's `StrictModeMultivector`: the limit of one multi-vector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrictModeMultivector {
    /// Most rows (token vectors) of one point's matrix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_vectors: Option<usize>,
}

/// Qdrant's `StrictModeSparse`: the limit of one sparse vector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrictModeSparse {
    /// Most indices of one vector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

impl StrictModeConfig {
    /// The fields of `other` that are set, written over these (Qdrant's merge of an update).
    pub fn merge(&mut self, other: &StrictModeConfig) {
        self.enabled = other.enabled.or(self.enabled);
        self.max_query_limit = other.max_query_limit.or(self.max_query_limit);
        self.unindexed_filtering_retrieve = other
            .unindexed_filtering_retrieve
            .or(self.unindexed_filtering_retrieve);
        self.unindexed_filtering_update = other
            .unindexed_filtering_update
            .or(self.unindexed_filtering_update);
        self.search_max_hnsw_ef = other.search_max_hnsw_ef.or(self.search_max_hnsw_ef);
        self.search_allow_exact = other.search_allow_exact.or(self.search_allow_exact);
        self.search_max_oversampling = other
            .search_max_oversampling
            .or(self.search_max_oversampling);
        self.upsert_max_batchsize = other.upsert_max_batchsize.or(self.upsert_max_batchsize);
        self.max_points_count = other.max_points_count.or(self.max_points_count);
        self.filter_max_conditions = other.filter_max_conditions.or(self.filter_max_conditions);
        self.condition_max_size = other.condition_max_size.or(self.condition_max_size);
        self.max_timeout = other.max_timeout.or(self.max_timeout);
        self.read_rate_limit = other.read_rate_limit.or(self.read_rate_limit);
        self.write_rate_limit = other.write_rate_limit.or(self.write_rate_limit);
        self.max_collection_vector_size_bytes = other
            .max_collection_vector_size_bytes
            .or(self.max_collection_vector_size_bytes);
        self.max_collection_payload_size_bytes = other
            .max_collection_payload_size_bytes
            .or(self.max_collection_payload_size_bytes);
        self.max_payload_index_count = other
            .max_payload_index_count
            .or(self.max_payload_index_count);
        // A map given replaces the whole map, as Qdrant's merge does.
        if other.multivector_config.is_some() {
            self.multivector_config = other.multivector_config.clone();
        }
        if other.sparse_config.is_some() {
            self.sparse_config = other.sparse_config.clone();
        }
    }

    /// Whether the limits are checked.
    pub fn is_enabled(&self) -> bool {
        self.enabled == Some(true)
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

/// How a sparse vector's query weights are modified at search time (Qdrant's `modifier`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparseModifier {
    /// Plain dot product.
    #[default]
    None,
    /// Each query weight is multiplied by the dimension's inverse document frequency over the
    /// collection's live points, computed at query time.
    Idf,
}

/// The inverted index of a sparse vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseIndexParams {
    /// Serve sealed segments' inverted indexes from their mapped files instead of reading them
    /// into memory at open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// A filtered search whose filter is expected to pass fewer points of a segment than this scores
    /// those points directly instead of walking the posting lists (default
    /// [`SPARSE_FULL_SCAN_THRESHOLD`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
}

/// Default of [`SparseIndexParams::full_scan_threshold`].
pub const SPARSE_FULL_SCAN_THRESHOLD: usize = 5_000;

/// One named sparse vector of a collection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseVectorParams {
    /// Index settings; `None` takes the defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<SparseIndexParams>,
    /// Query-time weighting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modifier: Option<SparseModifier>,
}

impl SparseVectorParams {
    /// Whether queries are weighted by IDF.
    pub fn idf(&self) -> bool {
        self.modifier == Some(SparseModifier::Idf)
    }

    /// See [`SparseIndexParams::full_scan_threshold`].
    pub fn full_scan_threshold(&self) -> usize {
        self.index
            .and_then(|i| i.full_scan_threshold)
            .unwrap_or(SPARSE_FULL_SCAN_THRESHOLD)
    }

    /// Where sealed segments serve the inverted index from.
    pub fn residency(&self) -> Residency {
        match self.index.and_then(|i| i.on_disk) {
            Some(true) => Residency::Mapped,
            _ => Residency::InMemory,
        }
    }
}

/// Largest accepted vector dimension; bigger values are almost always a client bug.
pub const MAX_VECTOR_SIZE: usize = 65_536;

impl CollectionConfig {
    /// A collection with one unnamed dense vector and default parameters.
    pub fn single(size: usize, distance: Distance) -> Self {
        let mut vectors = BTreeMap::new();
        vectors.insert(
            String::new(),
            VectorParams {
                size,
                distance,
                hnsw_config: None,
                multivector_config: None,
                on_disk: None,
                quantization_config: None,
            },
        );
        CollectionConfig {
            vectors,
            hnsw_config: HnswConfig::default(),
            optimizer_config: OptimizerConfig::default(),
            embedding: BTreeMap::new(),
            quantization_config: None,
            sparse_vectors: BTreeMap::new(),
            on_disk_payload: true,
            metadata: None,
            strict_mode_config: None,
            added_at_segment: BTreeMap::new(),
            wal_config: WalConfig::default(),
        }
    }

    /// Rejects configs that cannot work, with a message naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.vectors.is_empty() && self.sparse_vectors.is_empty() {
            return Err(Error::InvalidInput(
                "a collection needs at least one vector".into(),
            ));
        }
        if self.wal_config.wal_capacity_mb == 0 {
            return Err(Error::InvalidInput(
                "wal_config.wal_capacity_mb must be at least 1".into(),
            ));
        }
        for name in self.sparse_vectors.keys() {
            if self.vectors.contains_key(name) {
                return Err(Error::InvalidInput(format!(
                    "sparse vector `{name}`: a dense vector has the same name"
                )));
            }
            if self.embedding.contains_key(name) {
                return Err(Error::InvalidInput(format!(
                    "embedding `{name}`: sparse vectors cannot be bound to an embedding model"
                )));
            }
        }
        for (name, params) in &self.vectors {
            if params.size == 0 || params.size > MAX_VECTOR_SIZE {
                return Err(Error::InvalidInput(format!(
                    "vector `{name}`: size must be between 1 and {MAX_VECTOR_SIZE}, got {}",
                    params.size
                )));
            }
            let hnsw = self.hnsw_for(name);
            // m = 0 is Qdrant's way to build no graph: the vector is only scanned exactly, which is
            // what a full-size vector that rescores the candidates of a smaller one needs.
            if hnsw.m == 1 || hnsw.m > 256 {
                return Err(Error::InvalidInput(format!(
                    "vector `{name}`: hnsw m must be 0 (no graph) or between 2 and 256, got {}",
                    hnsw.m
                )));
            }
            if hnsw.payload_m.is_some_and(|m| m == 1 || m > 256) {
                return Err(Error::InvalidInput(format!(
                    "vector `{name}`: hnsw payload_m must be 0 (no value graphs) or between 2 and \
                     256, got {}",
                    hnsw.value_graph_m()
                )));
            }
            if let Some(store) = params.multivector_config.and_then(|m| m.token_store) {
                if params.distance != Distance::Cosine {
                    return Err(Error::InvalidInput(format!(
                        "vector `{name}`: a token_store is built for Cosine multivectors only; \
                         {:?} multivectors are always stored and scored exactly",
                        params.distance
                    )));
                }
                if !matches!(store.nbits, 1 | 2 | 4) {
                    return Err(Error::InvalidInput(format!(
                        "vector `{name}`: token_store nbits must be 1, 2 or 4, got {}",
                        store.nbits
                    )));
                }
                if store.keep_originals && store.rescore {
                    return Err(Error::InvalidInput(format!(
                        "vector `{name}`: token_store rescore keeps f16 copies to rescore with, \
                         and keep_originals already scores exactly on the f32 tokens: set one of them"
                    )));
                }
            }
            self.validate_quantization(name, params)?;
            if hnsw.ef_construct < 4 || hnsw.ef == 0 {
                return Err(Error::InvalidInput(format!(
                    "vector `{name}`: hnsw ef_construct must be at least 4 and ef at least 1"
                )));
            }
        }
        for (name, binding) in &self.embedding {
            let params = self.vectors.get(name).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "embedding: `{name}` is not a vector of this collection"
                ))
            })?;
            if binding.model.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "embedding `{name}`: `model` must name one of the server's models"
                )));
            }
            if let Some(dims) = binding.dims {
                if params.multivector_config.is_some() {
                    return Err(Error::InvalidInput(format!(
                        "embedding `{name}`: `dims` applies to dense vectors; a multivector holds \
                         the model's token vectors whole"
                    )));
                }
                if dims == 0 || dims > params.size {
                    return Err(Error::InvalidInput(format!(
                        "embedding `{name}`: dims must be between 1 and the vector size {}, got {dims}",
                        params.size
                    )));
                }
            }
        }
        if self.optimizer_config.segment_max_points == 0 {
            return Err(Error::InvalidInput(
                "optimizer segment_max_points must be at least 1".into(),
            ));
        }
        if self.optimizer_config.max_segment_size == Some(0) {
            return Err(Error::InvalidInput(
                "optimizer max_segment_size must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.optimizer_config.deleted_threshold) {
            return Err(Error::InvalidInput(
                "optimizer deleted_threshold must be between 0 and 1".into(),
            ));
        }
        Ok(())
    }

    /// Checks the quantization that applies to one vector: the quantile's range, and that the vector
    /// is one codes can stand in for (dense, its graph over the full vector).
    fn validate_quantization(&self, name: &str, params: &VectorParams) -> Result<()> {
        if params.multivector_config.is_some() {
            if params.quantization_config.is_some() {
                return Err(Error::InvalidInput(format!(
                    "vector `{name}`: quantization_config applies to dense vectors; a multivector \
                     is compressed by its token_store"
                )));
            }
            // The collection's quantization covers its dense vectors only.
            return Ok(());
        }
        let Some(q) = self.quantization_for(name) else {
            return Ok(());
        };
        if let QuantizationConfig::Scalar(s) = q {
            let quantile = s.quantile.unwrap_or(1.0);
            if !(quantile > 0.5 && quantile <= 1.0) {
                return Err(Error::InvalidInput(format!(
                    "vector `{name}`: scalar quantization quantile must be in (0.5, 1], got {quantile}"
                )));
            }
        }
        Ok(())
    }

    /// The quantization of a dense vector: its own, else the collection's.
    pub fn quantization_for(&self, name: &str) -> Option<&QuantizationConfig> {
        let p = self.vectors.get(name)?;
        if p.multivector_config.is_some() {
            return None;
        }
        p.quantization_config
            .as_ref()
            .or(self.quantization_config.as_ref())
    }

    /// Where sealed segments serve a vector's codes from: memory when `always_ram`, else where its
    /// rows are.
    pub fn codes_residency(&self, name: &str) -> Residency {
        match self.quantization_for(name) {
            Some(q) if q.always_ram() => Residency::InMemory,
            _ => self.vector_residency(name),
        }
    }

    /// The HNSW parameters that apply to a named vector: its own over the collection's.
    pub fn hnsw_for(&self, name: &str) -> HnswConfig {
        match self.vectors.get(name).and_then(|p| p.hnsw_config.as_ref()) {
            Some(diff) => diff.apply(&self.hnsw_config),
            None => self.hnsw_config.clone(),
        }
    }

    /// The KiB of vectors that seal the appendable segment, if any (see
    /// [`OptimizerConfig::indexing_threshold`]).
    pub fn indexing_threshold_kib(&self) -> Option<usize> {
        match self.optimizer_config.indexing_threshold {
            Some(0) => None,
            Some(kib) => Some(kib),
            None => self
                .vectors
                .values()
                .any(|p| p.multivector_config.is_some())
                .then_some(DEFAULT_MULTIVECTOR_INDEXING_THRESHOLD_KIB),
        }
    }

    /// Whether an appendable segment of `points` points holding `vector_bytes` bytes of vectors (4 per
    /// component of every dense row and token row) is due to be sealed: it holds `segment_max_points`,
    /// or at least [`Self::indexing_threshold_kib`] KiB of vectors.
    pub fn seal_due(&self, points: usize, vector_bytes: usize) -> bool {
        if points >= self.optimizer_config.segment_max_points {
            return true;
        }
        match self.indexing_threshold_kib() {
            Some(kib) if points > 0 => vector_bytes >= kib.saturating_mul(1024),
            _ => false,
        }
    }

    /// Refuses a changed config (`self`) that differs from `old` in what cannot change after
    /// creation: the vectors' names, sizes, distances and multivector settings, the sparse vectors'
    /// names and the embedding bindings.
    pub fn check_update_from(&self, old: &CollectionConfig) -> Result<()> {
        let fixed = |c: &CollectionConfig| {
            c.vectors
                .iter()
                .map(|(n, p)| (n.clone(), p.size, p.distance, p.multivector_config))
                .collect::<Vec<_>>()
        };
        if fixed(self) != fixed(old) {
            return Err(Error::InvalidInput(
                "a vector's name, size, distance and multivector_config cannot change".into(),
            ));
        }
        if !self.sparse_vectors.keys().eq(old.sparse_vectors.keys())
            || self.added_at_segment != old.added_at_segment
        {
            return Err(Error::InvalidInput(
                "sparse vectors cannot be added or removed by an update".into(),
            ));
        }
        if self.embedding != old.embedding {
            return Err(Error::InvalidInput(
                "embedding bindings cannot change after creation".into(),
            ));
        }
        Ok(())
    }

    /// Where sealed segments serve a vector's rows (and its Matryoshka prefix rows) from.
    pub fn vector_residency(&self, name: &str) -> Residency {
        match self.vectors.get(name).and_then(|p| p.on_disk) {
            Some(true) => Residency::Mapped,
            _ => Residency::InMemory,
        }
    }

    /// Where sealed segments serve a vector's HNSW graph from.
    pub fn graph_residency(&self, name: &str) -> Residency {
        if self.hnsw_for(name).on_disk {
            Residency::Mapped
        } else {
            Residency::InMemory
        }
    }

    /// The token store settings of a named vector, when it gets one: a Cosine multi-vector.
    pub fn token_store(&self, name: &str) -> Option<TokenStoreConfig> {
        let p = self.vectors.get(name)?;
        let m = p.multivector_config?;
        (p.distance == Distance::Cosine).then(|| m.token_store.unwrap_or_default())
    }

    /// The Matryoshka prefix a dense vector's graph is built over, when it is shorter than the vector.
    pub fn index_dims(&self, name: &str) -> Option<usize> {
        let dims = self.embedding.get(name)?.dims?;
        let params = self.vectors.get(name)?;
        (params.multivector_config.is_none() && dims < params.size).then_some(dims)
    }

    /// The params of a named sparse vector, if `name` is one.
    pub fn sparse(&self, name: &str) -> Option<&SparseVectorParams> {
        self.sparse_vectors.get(name)
    }

    /// Sealed segments the merge optimizer aims for ([`OptimizerConfig::default_segment_number`]).
    /// Qdrant's default: one segment per two CPUs balances one query's latency (segments are searched
    /// in turn, each paying its own graph entry and rescoring) against throughput.
    pub fn target_segments(&self) -> usize {
        match self.optimizer_config.default_segment_number {
            Some(n) if n > 0 => n,
            _ => (num_cpus() / 2).clamp(2, 8),
        }
    }

    /// KiB of vectors a merge may produce ([`OptimizerConfig::max_segment_size`]).
    pub fn max_segment_size_kib(&self) -> usize {
        match self.optimizer_config.max_segment_size {
            Some(kib) => kib,
            None => num_cpus()
                .clamp(1, 8)
                .saturating_mul(DEFAULT_MAX_SEGMENT_PER_CPU_KIB),
        }
    }

    /// Whether the sealed segment `segment` holds this collection's vector `name`: the name is one of
    /// its vectors, and the segment is not older than the vector.
    pub fn segment_holds(&self, name: &str, segment: u64) -> bool {
        self.has_vector(name)
            && self
                .added_at_segment
                .get(name)
                .is_none_or(|&first| segment >= first)
    }

    /// Whether `name` is a dense, multi or sparse vector of the collection.
    pub fn has_vector(&self, name: &str) -> bool {
        self.vectors.contains_key(name) || self.sparse_vectors.contains_key(name)
    }

    /// The params of a named vector, or the error the API reports for an unknown name.
    pub fn vector(&self, name: &str) -> Result<&VectorParams> {
        self.vectors
            .get(name)
            .ok_or_else(|| Error::VectorNameNotFound(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_targets_default_as_qdrant_and_old_configs_load() {
        // A config written before the merge optimizer existed has neither field.
        let old: OptimizerConfig =
            serde_json::from_str(r#"{"segment_max_points": 10, "deleted_threshold": 0.3}"#)
                .unwrap();
        assert_eq!(old.default_segment_number, None);
        assert_eq!(old.max_segment_size, None);
        let mut c = CollectionConfig::single(4, Distance::Dot);
        c.optimizer_config = old;
        assert!((2..=8).contains(&c.target_segments()));
        let kib = c.max_segment_size_kib();
        assert!(
            (DEFAULT_MAX_SEGMENT_PER_CPU_KIB..=8 * DEFAULT_MAX_SEGMENT_PER_CPU_KIB).contains(&kib)
        );
        c.optimizer_config.default_segment_number = Some(0);
        assert!((2..=8).contains(&c.target_segments()));
        c.optimizer_config.default_segment_number = Some(5);
        c.optimizer_config.max_segment_size = Some(100);
        assert_eq!((c.target_segments(), c.max_segment_size_kib()), (5, 100));
        // Unset fields stay out of config.json.
        let json = serde_json::to_value(CollectionConfig::single(4, Distance::Dot)).unwrap();
        assert!(json["optimizer_config"]
            .get("default_segment_number")
            .is_none());
        c.optimizer_config.max_segment_size = Some(0);
        assert!(c.validate().is_err());
    }

    #[test]
    fn indexing_threshold_seals_by_kib_of_vectors() {
        let mut c = CollectionConfig::single(4, Distance::Dot);
        c.optimizer_config.segment_max_points = 1_000;
        // A dense collection without a threshold seals by points only.
        assert!(!c.seal_due(999, 999 * 16));
        assert!(c.seal_due(1_000, 1_000 * 16));
        c.optimizer_config.indexing_threshold = Some(1);
        assert!(!c.seal_due(0, 0));
        assert!(!c.seal_due(63, 63 * 16));
        assert!(c.seal_due(64, 64 * 16));
        // 0 turns it off.
        c.optimizer_config.indexing_threshold = Some(0);
        assert!(!c.seal_due(64, 64 * 16));
    }

    #[test]
    fn multivector_collections_seal_by_token_bytes_by_default() {
        let mut c = CollectionConfig::single(4, Distance::Dot);
        c.vectors.insert(
            "tokens".into(),
            VectorParams {
                size: 384,
                distance: Distance::Cosine,
                hnsw_config: None,
                multivector_config: Some(MultiVectorConfig::max_sim()),
                on_disk: None,
                quantization_config: None,
            },
        );
        assert_eq!(
            c.indexing_threshold_kib(),
            Some(DEFAULT_MULTIVECTOR_INDEXING_THRESHOLD_KIB)
        );
        let limit = DEFAULT_MULTIVECTOR_INDEXING_THRESHOLD_KIB * 1024;
        // Ten points far below segment_max_points seal once their token rows pass the threshold.
        assert!(!c.seal_due(10, limit - 1));
        assert!(c.seal_due(10, limit));
        // An explicit threshold wins, and 0 still turns sealing by bytes off.
        c.optimizer_config.indexing_threshold = Some(1);
        assert!(c.seal_due(1, 1024));
        c.optimizer_config.indexing_threshold = Some(0);
        assert!(!c.seal_due(10, limit * 100));
    }

    #[test]
    fn per_vector_hnsw_overrides_only_the_fields_it_sets() {
        let mut c = CollectionConfig::single(4, Distance::Dot);
        c.vectors.get_mut("").unwrap().hnsw_config = Some(HnswConfigDiff {
            m: Some(8),
            ..HnswConfigDiff::default()
        });
        c.hnsw_config.ef_construct = 300;
        let h = c.hnsw_for("");
        assert_eq!((h.m, h.ef_construct), (8, 300));
        // A stored full config (as older versions wrote) still reads as a diff.
        let old: HnswConfigDiff = serde_json::from_str(
            r#"{"m": 4, "ef_construct": 50, "ef": 10, "full_scan_threshold": 5, "on_disk": false}"#,
        )
        .unwrap();
        assert_eq!(old.m, Some(4));
        assert_eq!(old.on_disk, Some(false));
    }

    #[test]
    fn a_vector_added_later_is_not_held_by_older_segments() {
        let mut c = CollectionConfig::single(4, Distance::Dot);
        assert!(c.segment_holds("", 0));
        assert!(!c.segment_holds("gone", 7));
        c.vectors.insert("late".into(), c.vectors[""].clone());
        c.added_at_segment.insert("late".into(), 5);
        assert!(!c.segment_holds("late", 4));
        assert!(c.segment_holds("late", 5));
        let old = c.clone();
        c.vectors.get_mut("late").unwrap().size = 8;
        assert!(c.check_update_from(&old).is_err());
    }
}
