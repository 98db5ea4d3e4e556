//! Reading a jina-embeddings-v4 checkpoint directory.
//!
//! Layout (the published repo, and what `scripts/fixtures/make_tiny_jina.py` writes):
//! `config.json`, `model.safetensors.index.json` + shards (or one `model.safetensors`),
//! `adapters/adapter_config.json` + `adapters/adapter_model.safetensors`, `tokenizer.json`.
//! Base weights use the legacy names (`model.layers.*`) or the transformers ≥ 4.52 in-memory
//! names (`model.language_model.layers.*`); adapter keys use
//! `base_model.model.model.language_model.layers.*` (PEFT over the in-memory names).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::layers::TaskAdapters;
use crate::models::jina_v4::{AdapterConfig, JinaConfig, JinaV4, JinaWeights};

/// Where the decoder's tensors live in the base shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// `model.embed_tokens`, `model.layers.*`, `model.norm` (as saved on disk).
    Legacy,
    /// `model.language_model.*` (transformers ≥ 4.52 in memory).
    LanguageModel,
}

impl WeightLayout {
    fn decoder_prefix(self) -> &'static str {
        match self {
            WeightLayout::Legacy => "model",
            WeightLayout::LanguageModel => "model.language_model",
        }
    }
}

/// A checkpoint directory with its configs parsed; weights are mapped on [`Checkpoint::load_model`].
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: JinaConfig,
    pub adapter_config: Option<AdapterConfig>,
    pub shards: Vec<PathBuf>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

impl Checkpoint {
    /// Parses `config.json`, the adapter config (if `adapters/` exists) and the shard list.
    pub fn open(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let config =
            JinaConfig::from_json(&read(&cfg_path)?).map_err(|m| Error::config(&cfg_path, m))?;
        let ad_path = dir.join("adapters").join("adapter_config.json");
        let adapter_config = if ad_path.is_file() {
            Some(
                AdapterConfig::from_json(&read(&ad_path)?)
                    .map_err(|m| Error::config(&ad_path, m))?,
            )
        } else {
            None
        };
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            adapter_config,
            shards: find_shards(dir)?,
        })
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    fn adapter_weights_path(&self) -> PathBuf {
        self.dir.join("adapters").join("adapter_model.safetensors")
    }

    /// Memory-maps the shards (and adapters) and builds the model in `dtype` on `device`.
    pub fn load_model(&self, device: &Device, dtype: DType) -> Result<JinaV4> {
        // SAFETY: the checkpoint files are opened read-only and must not be modified while
        // mapped; Quiver never writes into model directories, and model files are replaced
        // by download tools through rename, which leaves existing mappings intact.
        let base = unsafe { VarBuilder::from_mmaped_safetensors(&self.shards, dtype, device)? };
        let layout = if base.contains_tensor("model.layers.0.input_layernorm.weight")
            || base.contains_tensor("model.embed_tokens.weight")
        {
            WeightLayout::Legacy
        } else if base.contains_tensor("model.language_model.embed_tokens.weight") {
            WeightLayout::LanguageModel
        } else {
            return Err(Error::Weights(format!(
                "{}: no decoder weights found (expected model.embed_tokens.weight or \
                 model.language_model.embed_tokens.weight)",
                self.dir.display()
            )));
        };
        if !base.contains_tensor("multi_vector_projector.weight") {
            return Err(Error::Unsupported(
                "checkpoint has no multi_vector_projector (a merged vLLM/GGUF export?); \
                 use the full jinaai/jina-embeddings-v4 repository"
                    .into(),
            ));
        }
        tracing::debug!(?layout, shards = self.shards.len(), "mapping base weights");

        let adapters = match &self.adapter_config {
            None => None,
            Some(ac) => {
                let path = self.adapter_weights_path();
                if !path.is_file() {
                    return Err(Error::Weights(format!("{} is missing", path.display())));
                }
                // SAFETY: as above, read-only mapping of a file we never write.
                let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&path], dtype, device)? };
                let text_prefix = [
                    "base_model.model.model.language_model",
                    "base_model.model.model",
                ]
                .into_iter()
                .find(|p| {
                    let first = &self.config.task_names[0];
                    vb.contains_tensor(&format!(
                        "{p}.layers.0.self_attn.q_proj.lora_A.{first}.weight"
                    ))
                })
                .ok_or_else(|| {
                    Error::Weights(format!(
                        "{}: no LoRA for task {:?} on layer 0 q_proj",
                        path.display(),
                        self.config.task_names[0]
                    ))
                })?;
                let make = |prefix: &str| TaskAdapters {
                    vb: vb.pp(prefix),
                    tasks: self.config.task_names.clone(),
                    scaling: ac.scaling(),
                    rank: ac.r,
                };
                Some((
                    make(text_prefix),
                    make("base_model.model.multi_vector_projector"),
                ))
            }
        };

        // The tower is optional: text-only exports drop it, and then images are refused.
        let vision = match &self.config.vision {
            None => None,
            Some(_) => ["visual", "model.visual"]
                .into_iter()
                .find(|p| base.contains_tensor(&format!("{p}.patch_embed.proj.weight")))
                .map(|p| base.pp(p)),
        };
        if self.config.vision.is_some() && vision.is_none() {
            tracing::warn!(
                model = %self.dir.display(),
                "config has a vision_config but the shards hold no vision tower; images are disabled"
            );
        }
        let weights = JinaWeights {
            text: base.pp(layout.decoder_prefix()),
            projector: base.pp("multi_vector_projector"),
            vision,
            adapters,
        };
        JinaV4::new(&self.config, weights).map_err(|e| Error::Weights(e.to_string()))
    }
}

/// Shards from `model.safetensors.index.json`, else `model.safetensors`, else every
/// `*.safetensors` at the top level.
pub(crate) fn find_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let v: serde_json::Value = serde_json::from_str(&read(&index)?)
            .map_err(|e| Error::config(&index, e.to_string()))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::config(&index, "missing weight_map"))?;
        let files: BTreeSet<&str> = map.values().filter_map(|f| f.as_str()).collect();
        let shards: Vec<PathBuf> = files.into_iter().map(|f| dir.join(f)).collect();
        if let Some(missing) = shards.iter().find(|p| !p.is_file()) {
            return Err(Error::Weights(format!(
                "shard {} is missing",
                missing.display()
            )));
        }
        return Ok(shards);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    all.sort();
    if all.is_empty() {
        return Err(Error::Weights(format!(
            "{}: no safetensors files",
            dir.display()
        )));
    }
    Ok(all)
}
