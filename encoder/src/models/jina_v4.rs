//! jina-embeddings-v4: the Qwen2.5-VL decoder with three task LoRAs, mean pooling with
//! Matryoshka truncation, and a multi-vector projector.
//!
//! Model card: <https://huggingface.co/jinaai/jina-embeddings-v4>. The heads follow
//! `modeling_jina_embeddings_v4.py` (`get_single_vector_embeddings`,
//! `get_multi_vector_embeddings`); the LoRA layout follows `custom_lora_module.py`.

use candle_core::{DType, Result, Tensor, D};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::qwen2_5_vl::{PackedInput, TextConfig, TextModel, VisionConfig, VisionModel};
use crate::layers::fused::{self, VarlenSeqs};
pub use crate::layers::{l2_normalize, mean_pool};
use crate::layers::{LoraLinear, TaskAdapters};

/// The jina fields of `config.json` plus the resolved text config.
#[derive(Debug, Clone, PartialEq)]
pub struct JinaConfig {
    pub text: TextConfig,
    /// The vision tower, when the checkpoint has one (text-only exports do not).
    pub vision: Option<VisionConfig>,
    /// Prefix lengths the single vector may be truncated to; the last is the full size.
    pub matryoshka_dims: Vec<usize>,
    pub multi_vector_projector_dim: usize,
    /// Adapter task names, in the order used for task indices.
    pub task_names: Vec<String>,
    /// Default truncation when the caller asks for none.
    pub truncate_dim: Option<usize>,
}

#[derive(Deserialize)]
struct RawJina {
    #[serde(default)]
    matryoshka_dims: Option<Vec<usize>>,
    #[serde(default)]
    multi_vector_projector_dim: Option<usize>,
    #[serde(default)]
    task_names: Option<Vec<String>>,
    #[serde(default)]
    truncate_dim: Option<usize>,
    #[serde(default)]
    single_vector_pool_strategy: Option<String>,
}

impl JinaConfig {
    /// Parses `config.json`. Checkpoints without the jina fields (a plain Qwen2.5-VL save)
    /// get jina-embeddings-v4's published values.
    pub fn from_json(json: &str) -> std::result::Result<Self, String> {
        let text = TextConfig::from_json(json)?;
        let vision = VisionConfig::from_json(json)?;
        if let Some(v) = &vision {
            if v.out_hidden_size != text.hidden_size {
                return Err(format!(
                    "vision out_hidden_size {} differs from the text hidden_size {}",
                    v.out_hidden_size, text.hidden_size
                ));
            }
        }
        let raw: RawJina = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if let Some(p) = raw.single_vector_pool_strategy.as_deref() {
            if p != "mean" {
                return Err(format!(
                    "single_vector_pool_strategy {p:?} is not supported (only mean)"
                ));
            }
        }
        let mut matryoshka_dims = raw
            .matryoshka_dims
            .unwrap_or_else(|| vec![128, 256, 512, 1024, 2048]);
        matryoshka_dims.sort_unstable();
        matryoshka_dims.dedup();
        if let Some(&d) = matryoshka_dims
            .iter()
            .find(|&&d| d == 0 || d > text.hidden_size)
        {
            return Err(format!(
                "matryoshka dimension {d} is outside 1..={}",
                text.hidden_size
            ));
        }
        if let Some(d) = raw.truncate_dim {
            if !matryoshka_dims.contains(&d) {
                return Err(format!("truncate_dim {d} is not one of matryoshka_dims"));
            }
        }
        Ok(JinaConfig {
            text,
            vision,
            matryoshka_dims,
            multi_vector_projector_dim: raw.multi_vector_projector_dim.unwrap_or(128),
            task_names: raw.task_names.unwrap_or_else(|| {
                ["retrieval", "text-matching", "code"]
                    .map(String::from)
                    .to_vec()
            }),
            truncate_dim: raw.truncate_dim,
        })
    }
}

/// `adapters/adapter_config.json` (PEFT `LoraConfig`), the fields that change the math.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AdapterConfig {
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub use_dora: bool,
    #[serde(default)]
    pub peft_type: Option<String>,
}

impl AdapterConfig {
    pub fn from_json(json: &str) -> std::result::Result<Self, String> {
        let c: AdapterConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if let Some(t) = c.peft_type.as_deref() {
            if t != "LORA" {
                return Err(format!("peft_type {t:?} is not supported (only LORA)"));
            }
        }
        if c.use_dora {
            return Err("use_dora=true is not supported".into());
        }
        if c.r == 0 {
            return Err("r must be positive".into());
        }
        Ok(c)
    }

    /// PEFT's scaling: `alpha/r`, or `alpha/√r` with rsLoRA.
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }
}

/// Where [`JinaV4::new`] reads its tensors; the loader picks the prefixes for the layout.
pub struct JinaWeights<'a> {
    /// Rooted at the decoder (`model` or `model.language_model`).
    pub text: VarBuilder<'a>,
    /// Rooted at `multi_vector_projector`.
    pub projector: VarBuilder<'a>,
    /// Rooted at the vision tower (`visual` or `model.visual`), when it is to be loaded.
    pub vision: Option<VarBuilder<'a>>,
    /// Adapters rooted at the decoder and at the projector, when the checkpoint has them.
    pub adapters: Option<(TaskAdapters<'a>, TaskAdapters<'a>)>,
}

/// Outputs for a padded batch.
#[derive(Debug, Clone)]
pub struct JinaOutput {
    /// Post-norm hidden states `[B, L, H]`.
    pub hidden: Tensor,
    /// L2-normalised mean-pooled vectors `[B, H]`, f32.
    pub single: Tensor,
    /// L2-normalised per-token projections `[B, L, P]`, f32, zero on padding.
    pub multi: Tensor,
    /// Embedding output and each layer's output when requested.
    pub layer_outputs: Vec<Tensor>,
}

/// Outputs for a packed batch ([`JinaV4::forward_packed`]).
#[derive(Debug, Clone)]
pub struct PackedOutput {
    /// Post-norm hidden states `[tokens, H]`.
    pub hidden: Tensor,
    /// L2-normalised mean-pooled vectors `[B, H]`, f32.
    pub single: Tensor,
    /// L2-normalised per-token projections `[tokens, P]`, f32.
    pub multi: Tensor,
    /// Kernels the pass launched (one per fused op or GEMM).
    pub launches: u64,
}

/// The full text model with heads.
#[derive(Debug, Clone)]
pub struct JinaV4 {
    text: TextModel,
    vision: Option<VisionModel>,
    projector: LoraLinear,
    cfg: JinaConfig,
    merged: Option<usize>,
}

impl JinaV4 {
    pub fn new(cfg: &JinaConfig, w: JinaWeights) -> Result<Self> {
        let (text_ad, proj_ad) = match &w.adapters {
            Some((t, p)) => (Some(t), Some(p)),
            None => (None, None),
        };
        let text = TextModel::new(&cfg.text, w.text, text_ad)?;
        let projector = LoraLinear::new(
            cfg.text.hidden_size,
            cfg.multi_vector_projector_dim,
            true,
            w.projector,
            proj_ad,
        )?;
        let vision = match (&cfg.vision, w.vision) {
            (Some(vc), Some(vb)) => Some(VisionModel::new(vc, vb)?),
            _ => None,
        };
        Ok(JinaV4 {
            text,
            vision,
            projector,
            cfg: cfg.clone(),
            merged: None,
        })
    }

    pub fn config(&self) -> &JinaConfig {
        &self.cfg
    }

    /// True when the model holds task adapters (merged or not).
    pub fn has_adapters(&self) -> bool {
        self.merged.is_some() || self.projector.num_tasks() > 0
    }

    /// The task merged at load, if any; then it is the only task this model can run.
    pub fn merged_task(&self) -> Option<usize> {
        self.merged
    }

    /// Folds one task into the weights and drops the other adapters.
    pub fn merge_task(&mut self, task: usize) -> Result<()> {
        self.text.merge_task(task)?;
        self.projector.merge(task)?;
        self.merged = Some(task);
        Ok(())
    }

    /// The vision tower; `None` for a text-only checkpoint.
    pub fn vision(&self) -> Option<&VisionModel> {
        self.vision.as_ref()
    }

    pub fn vision_mut(&mut self) -> Option<&mut VisionModel> {
        self.vision.as_mut()
    }

    pub fn text_model_mut(&mut self) -> &mut TextModel {
        &mut self.text
    }

    /// Encodes a right- or left-padded batch: `input_ids`/`attention_mask` are `[B, L]` u32,
    /// `position_ids` `[3, B, L]`. `task` indexes `task_names` (None = no LoRA).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
        task: Option<usize>,
        keep_layer_outputs: bool,
    ) -> Result<JinaOutput> {
        let embeds = self.text.embed(input_ids)?;
        self.decode_and_pool(
            &embeds,
            attention_mask,
            attention_mask,
            position_ids,
            task,
            keep_layer_outputs,
        )
    }

    /// Encodes a right-padded batch of image prompts. `image_features` `[Σ tokens, H]` (the
    /// vision tower's output) replace the `<|image_pad|>` rows in row-major order; the single
    /// vector is the mean over `pool_mask` (1 from `<|vision_start|>` to `<|vision_end|>`
    /// inclusive), the multi-vector covers every token of `attention_mask`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_with_images(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        pool_mask: &Tensor,
        position_ids: &Tensor,
        image_features: &Tensor,
        task: Option<usize>,
        keep_layer_outputs: bool,
    ) -> Result<JinaOutput> {
        let image_id = self
            .cfg
            .text
            .special
            .image_token_id
            .ok_or_else(|| candle_core::Error::Msg("config has no image_token_id".into()))?;
        let embeds = self.text.embed(input_ids)?;
        let (b, l, h) = embeds.dims3()?;
        // One gather puts every row in place: token rows index the embeddings, pad rows index
        // the image features appended after them.
        let ids = input_ids.flatten_all()?.to_vec1::<u32>()?;
        let n_feat = image_features.dim(0)?;
        let mut next = 0;
        let index: Vec<u32> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                if id == image_id {
                    next += 1;
                    (b * l + next - 1) as u32
                } else {
                    i as u32
                }
            })
            .collect();
        if next != n_feat {
            candle_core::bail!("{next} image pad tokens but {n_feat} image features");
        }
        let table = Tensor::cat(
            &[
                &embeds.reshape((b * l, h))?,
                &image_features.to_dtype(embeds.dtype())?,
            ],
            0,
        )?;
        let index = Tensor::from_vec(index, b * l, embeds.device())?;
        let embeds = table.index_select(&index, 0)?.reshape((b, l, h))?;
        self.decode_and_pool(
            &embeds,
            attention_mask,
            pool_mask,
            position_ids,
            task,
            keep_layer_outputs,
        )
    }

    /// Encodes a packed text batch on the fused kernels (the GPU's text path); `task` as in
    /// [`JinaV4::forward`].
    pub fn forward_packed(&self, input: &PackedInput, task: Option<usize>) -> Result<PackedOutput> {
        let (hidden, mut launches) = self.text.forward_packed(input, task)?;
        let single = fused::l2_normalize_rows(&fused::segment_mean(&hidden, &input.seqs)?, None)?;
        let projected = self.projector.forward_task_unbiased(&hidden, task)?;
        let multi = fused::l2_normalize_rows(&projected, self.projector.bias())?;
        launches += 2 + self.projector.launches(task) + 1;
        Ok(PackedOutput {
            hidden,
            single,
            multi,
            launches,
        })
    }

    /// A packed batch of image prompts on the fused kernels: `x` the input embeddings
    /// `[tokens, H]` (image features at the pad rows), `pool_rows` the rows each single vector
    /// averages (`<|vision_start|>` ..= `<|vision_end|>` of each prompt), `pool` their segments.
    pub fn forward_packed_embeds(
        &self,
        x: Tensor,
        input: &PackedInput,
        pool_rows: &Tensor,
        pool: &VarlenSeqs,
        task: Option<usize>,
    ) -> Result<PackedOutput> {
        let (hidden, mut launches) = self.text.forward_packed_embeds(x, input, task)?;
        let pooled = fused::segment_mean(&hidden.index_select(pool_rows, 0)?, pool)?;
        let single = fused::l2_normalize_rows(&pooled, None)?;
        let projected = self.projector.forward_task_unbiased(&hidden, task)?;
        let multi = fused::l2_normalize_rows(&projected, self.projector.bias())?;
        launches += 3 + self.projector.launches(task) + 1;
        Ok(PackedOutput {
            hidden,
            single,
            multi,
            launches,
        })
    }

    pub fn text_model(&self) -> &TextModel {
        &self.text
    }

    fn decode_and_pool(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        pool_mask: &Tensor,
        position_ids: &Tensor,
        task: Option<usize>,
        keep_layer_outputs: bool,
    ) -> Result<JinaOutput> {
        let out = self.text.forward(
            embeds,
            attention_mask,
            position_ids,
            task,
            keep_layer_outputs,
        )?;
        let hidden = out.last_hidden;
        let single = l2_normalize(&mean_pool(&hidden, pool_mask)?)?;
        let mask = attention_mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
        let multi = self
            .projector
            .forward_task(&hidden, task)?
            .to_dtype(DType::F32)?;
        let multi = l2_normalize(&multi)?.broadcast_mul(&mask)?;
        Ok(JinaOutput {
            hidden,
            single,
            multi,
            layer_outputs: out.layer_outputs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_scaling() {
        let c =
            AdapterConfig::from_json(r#"{"r": 4, "lora_alpha": 8, "peft_type": "LORA"}"#).unwrap();
        assert_eq!(c.scaling(), 2.0);
        let c =
            AdapterConfig::from_json(r#"{"r": 4, "lora_alpha": 8, "use_rslora": true}"#).unwrap();
        assert_eq!(c.scaling(), 4.0);
        assert!(
            AdapterConfig::from_json(r#"{"r": 4, "lora_alpha": 8, "use_dora": true}"#).is_err()
        );
    }
}
