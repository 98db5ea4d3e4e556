//! `PATCH /collections/{name}` (Qdrant's `UpdateCollection`): the settings that may change after
//! creation, parsed into a [`ConfigUpdate`] that applies to a copy of the engine's config.
//!
//! What a change reaches: HNSW settings, quantization and `on_disk` apply to segments sealed from
//! then on, and the segments already sealed with other settings are rebuilt in the background
//! (`config_mismatch` in the optimizations report); optimizer settings, sparse `modifier` and
//! `full_scan_threshold`, `on_disk_payload` and `metadata` apply at once. Anything Quiver cannot
//! change or does not build is a 400 naming it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use quiver_engine::collection::NewVector;
use quiver_engine::config::{
    QuantizationConfig, SparseIndexParams, SparseModifier, SparseVectorParams, StrictModeConfig,
};
use quiver_engine::{CollectionConfig, VectorParams};

use super::collections::{
    float32_only, reference_dim, DistanceDto, HnswConfigDiff, ModifierDto, MultiVectorConfigDto,
    OptimizersConfigDiff, SparseVectorParamsDto,
};
use super::error::{invalid, Error};

/// Body of `PATCH /collections/{name}`. Every field is optional; absent fields change nothing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollection {
    /// Per named vector (`""` for the unnamed one): `hnsw_config` (the fields given are merged
    /// into the vector's own), `on_disk`, `quantization_config` (or `"Disabled"`).
    pub vectors: Option<BTreeMap<String, VectorParamsDiff>>,
    /// Every field applies as at creation; `max_optimization_threads` back to null, `"auto"` or
    /// a number above 0 resumes optimizations stopped by 0.
    pub optimizers_config: Option<OptimizersConfigDiff>,
    /// `on_disk_payload`; `replication_factor` and `write_consistency_factor` only as 1.
    pub params: Option<CollectionParamsDiff>,
    /// Collection-wide HNSW settings: the fields given replace the current ones, for graphs built
    /// from then on.
    pub hnsw_config: Option<HnswConfigDiff>,
    /// The collection's quantization: a new config replaces the current one, `"Disabled"` removes
    /// it; for segments sealed from then on.
    #[schema(value_type = Option<Object>)]
    pub quantization_config: Option<Value>,
    /// Per sparse vector: `index.on_disk`, `index.full_scan_threshold` and `modifier`.
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParamsDto>>,
    /// Qdrant's strict mode: the fields given replace the stored ones, the others stay.
    #[schema(value_type = Option<Object>)]
    pub strict_mode_config: Option<Value>,
    /// Merged into the stored metadata key by key; a key set to null is removed.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `vectors.<name>` of an update.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorParamsDiff {
    /// Merged into the vector's own HNSW settings.
    pub hnsw_config: Option<HnswConfigDiff>,
    /// Where sealed segments serve this vector's rows from (true: their mapped files).
    pub on_disk: Option<bool>,
    /// This vector's quantization, or `"Disabled"` to remove it (the collection's then applies).
    #[schema(value_type = Option<Object>)]
    pub quantization_config: Option<Value>,
}

/// `params` of an update.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionParamsDiff {
    /// Only 1 (single node).
    pub replication_factor: Option<u32>,
    /// Only 1 (single node).
    pub write_consistency_factor: Option<u32>,
    /// Not supported (single node).
    pub read_fan_out_factor: Option<u32>,
    /// Stored and shown as set; sealed segments keep payloads in their files either way.
    pub on_disk_payload: Option<bool>,
}

/// A quantization change: set a new one or remove the current one.
#[derive(Debug)]
enum QuantizationChange {
    Set(QuantizationConfig),
    Disable,
}

/// One vector's changes, parsed.
#[derive(Debug)]
struct VectorChange {
    hnsw: Option<HnswConfigDiff>,
    on_disk: Option<bool>,
    quantization: Option<QuantizationChange>,
}

/// A parsed update: everything Quiver refuses has been refused; what remains applies to a config.
#[derive(Debug)]
pub struct ConfigUpdate {
    vectors: BTreeMap<String, VectorChange>,
    optimizers: Option<OptimizersConfigDiff>,
    on_disk_payload: Option<bool>,
    hnsw: Option<HnswConfigDiff>,
    quantization: Option<QuantizationChange>,
    sparse: BTreeMap<String, SparseVectorParamsDto>,
    metadata: Option<Map<String, Value>>,
    strict_mode: Option<StrictModeConfig>,
}

/// A `quantization_config` of an update: `"Disabled"`, a config, or absent/null (no change).
fn quantization_change(
    value: Option<Value>,
    at: &str,
) -> Result<Option<QuantizationChange>, Error> {
    match value {
        Some(Value::String(s)) if s == "Disabled" => Ok(Some(QuantizationChange::Disable)),
        Some(Value::String(s)) => Err(invalid(format!(
            "{at}: `{s}` is not a quantization (an object, or \"Disabled\")"
        ))),
        other => Ok(super::quantization::parse(other, at)?.map(QuantizationChange::Set)),
    }
}

/// `metadata` of a create or update body: an object, or absent/null.
pub fn parse_metadata(value: Option<Value>) -> Result<Option<Map<String, Value>>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(invalid("`metadata` must be a JSON object")),
    }
}

impl UpdateCollection {
    /// Refuses what cannot change or is not supported, by name.
    pub fn parse(self) -> Result<ConfigUpdate, Error> {
        let strict_mode = super::strict_mode::parse(self.strict_mode_config)?;
        let mut on_disk_payload = None;
        if let Some(params) = self.params {
            for (field, value) in [
                ("replication_factor", params.replication_factor),
                ("write_consistency_factor", params.write_consistency_factor),
            ] {
                if value.is_some_and(|v| v != 1) {
                    return Err(invalid(format!(
                        "`params.{field}` cannot change: Quiver is a single node (only 1)"
                    )));
                }
            }
            if params.read_fan_out_factor.is_some() {
                return Err(invalid(
                    "`params.read_fan_out_factor` is not supported: Quiver is a single node",
                ));
            }
            on_disk_payload = params.on_disk_payload;
        }
        let mut vectors = BTreeMap::new();
        for (name, diff) in self.vectors.unwrap_or_default() {
            let quantization = quantization_change(
                diff.quantization_config,
                &format!("vectors.{name}.quantization_config"),
            )?;
            vectors.insert(
                name,
                VectorChange {
                    hnsw: diff.hnsw_config,
                    on_disk: diff.on_disk,
                    quantization,
                },
            );
        }
        let mut sparse = BTreeMap::new();
        for (name, dto) in self.sparse_vectors.unwrap_or_default() {
            if let Some(index) = &dto.index {
                float32_only(
                    &format!("sparse vector `{name}`: index"),
                    index.datatype.as_deref(),
                )?;
            }
            sparse.insert(name, dto);
        }
        if let Some(opt) = &self.optimizers_config {
            opt.threads()?;
        }
        Ok(ConfigUpdate {
            vectors,
            optimizers: self.optimizers_config,
            on_disk_payload,
            hnsw: self.hnsw_config,
            quantization: quantization_change(self.quantization_config, "quantization_config")?,
            sparse,
            metadata: parse_metadata(self.metadata)?,
            strict_mode,
        })
    }
}

fn apply_quantization(slot: &mut Option<QuantizationConfig>, change: &QuantizationChange) {
    *slot = match change {
        QuantizationChange::Set(q) => Some(*q),
        QuantizationChange::Disable => None,
    };
}

impl ConfigUpdate {
    /// Applies the update to a copy of the collection's config (the engine then checks and stores
    /// it). An unknown vector name is the engine's error for it.
    pub fn apply(&self, config: &mut CollectionConfig) -> quiver_engine::Result<()> {
        for (name, change) in &self.vectors {
            if config.sparse_vectors.contains_key(name) {
                return Err(quiver_engine::Error::InvalidInput(format!(
                    "vectors.{name}: `{name}` is a sparse vector; change it under `sparse_vectors`"
                )));
            }
            let params = config
                .vectors
                .get_mut(name)
                .ok_or_else(|| quiver_engine::Error::VectorNameNotFound(name.clone()))?;
            if let Some(diff) = &change.hnsw {
                params
                    .hnsw_config
                    .get_or_insert_with(Default::default)
                    .merge(&diff.to_engine(params.size));
            }
            if let Some(on_disk) = change.on_disk {
                params.on_disk = Some(on_disk);
            }
            if let Some(q) = &change.quantization {
                apply_quantization(&mut params.quantization_config, q);
            }
        }
        if let Some(diff) = &self.hnsw {
            let dim = reference_dim(&config.vectors);
            config.hnsw_config = diff.to_engine(dim).apply(&config.hnsw_config);
        }
        if let Some(q) = &self.quantization {
            apply_quantization(&mut config.quantization_config, q);
        }
        if let Some(opt) = &self.optimizers {
            // Checked when parsed.
            opt.apply(&mut config.optimizer_config).map_err(|_| {
                quiver_engine::Error::InvalidInput(
                    "optimizers_config.max_optimization_threads is not valid".into(),
                )
            })?;
        }
        if let Some(on_disk_payload) = self.on_disk_payload {
            config.on_disk_payload = on_disk_payload;
        }
        for (name, dto) in &self.sparse {
            let params = config
                .sparse_vectors
                .get_mut(name)
                .ok_or_else(|| quiver_engine::Error::VectorNameNotFound(name.clone()))?;
            if let Some(index) = &dto.index {
                let current = params.index.get_or_insert_with(SparseIndexParams::default);
                current.on_disk = index.on_disk.or(current.on_disk);
                current.full_scan_threshold =
                    index.full_scan_threshold.or(current.full_scan_threshold);
            }
            if let Some(m) = dto.modifier {
                params.modifier = Some(match m {
                    ModifierDto::None => SparseModifier::None,
                    ModifierDto::Idf => SparseModifier::Idf,
                });
            }
        }
        if let Some(patch) = &self.strict_mode {
            config
                .strict_mode_config
                .get_or_insert_with(StrictModeConfig::default)
                .merge(patch);
        }
        if let Some(patch) = &self.metadata {
            // Qdrant's merge: keys are set one by one, and a key set to null is removed.
            let stored = config.metadata.get_or_insert_with(Map::new);
            for (key, value) in patch {
                if value.is_null() {
                    stored.remove(key);
                } else {
                    stored.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(())
    }
}

/// Body of `PUT /collections/{name}/vectors/{vector}` (Qdrant's `VectorNameConfig`): exactly one of
/// `dense` and `sparse`. Only what defines the vector space; HNSW, quantization and `on_disk` take
/// the collection's defaults and can be changed with `PATCH /collections/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorNameConfig {
    /// A dense vector or multivector.
    pub dense: Option<DenseVectorConfig>,
    /// A sparse vector.
    pub sparse: Option<SparseVectorConfig>,
}

/// `dense` of a new vector.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenseVectorConfig {
    /// Dimension (of each row, for a multivector).
    pub size: usize,
    /// How vectors are compared.
    pub distance: DistanceDto,
    /// Set for a multivector.
    pub multivector_config: Option<MultiVectorConfigDto>,
    /// Only `float32` (or absent).
    pub datatype: Option<String>,
}

/// `sparse` of a new vector.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparseVectorConfig {
    /// `idf` or `none`.
    pub modifier: Option<ModifierDto>,
    /// Only `float32` (or absent).
    pub datatype: Option<String>,
}

impl VectorNameConfig {
    /// The engine's new vector, or a 400 naming what is wrong.
    pub fn into_new_vector(self, name: &str) -> Result<NewVector, Error> {
        match (self.dense, self.sparse) {
            (Some(d), None) => {
                float32_only(&format!("vector `{name}`:"), d.datatype.as_deref())?;
                Ok(NewVector::Dense(VectorParams {
                    size: d.size,
                    distance: d.distance.to_engine(name)?,
                    hnsw_config: None,
                    multivector_config: d.multivector_config.map(MultiVectorConfigDto::to_engine),
                    on_disk: None,
                    quantization_config: None,
                }))
            }
            (None, Some(s)) => {
                float32_only(&format!("sparse vector `{name}`:"), s.datatype.as_deref())?;
                Ok(NewVector::Sparse(SparseVectorParams {
                    index: None,
                    modifier: s.modifier.map(|m| match m {
                        ModifierDto::None => SparseModifier::None,
                        ModifierDto::Idf => SparseModifier::Idf,
                    }),
                }))
            }
            _ => Err(invalid(
                "expected exactly one of {\"dense\": {\"size\", \"distance\"}} and {\"sparse\": {}}",
            )),
        }
    }
}
