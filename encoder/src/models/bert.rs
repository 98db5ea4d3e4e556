//! BERT encoders as sentence-transformers runs them (all-MiniLM-L6-v2 and its family):
//! word + position + token-type embeddings, post-LayerNorm encoder layers with bidirectional
//! attention over the non-padding keys and an erf GELU feed-forward.
//!
//! Written on candle-nn primitives rather than taken from candle-transformers: that crate has no
//! features to trim and compiles every model it ships, which costs more build time than this
//! file. Query, key and value are fused into one projection at load (one GEMM instead of three),
//! and every projection keeps its weight transposed (see [`Dense`]).
//! Reference: `BertModel` in transformers
//! <https://github.com/huggingface/transformers/blob/v4.52.4/src/transformers/models/bert/modeling_bert.py>.

use std::sync::Arc;

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use crate::layers::few_rows;
use crate::layers::small_gemm::{self, Precision, SmallGemm};

/// The fields of a BERT `config.json` that change the math.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_ln_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_pos_type")]
    pub position_embedding_type: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_ln_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_pos_type() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Parses and checks `config.json`; only what this implementation computes is accepted.
    pub fn from_json(json: &str) -> std::result::Result<Self, String> {
        let c: BertConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size, c.num_attention_heads
            ));
        }
        // transformers maps "gelu" to the exact (erf) GELU for BERT.
        if c.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only gelu)",
                c.hidden_act
            ));
        }
        if c.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not supported (only absolute)",
                c.position_embedding_type
            ));
        }
        if c.type_vocab_size == 0 {
            return Err("type_vocab_size must be positive".into());
        }
        Ok(c)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// True when a `config.json` describes a BERT model (`model_type` or `architectures`).
pub fn is_bert_config(json: &serde_json::Value) -> bool {
    json.get("model_type").and_then(|v| v.as_str()) == Some("bert")
        || json
            .get("architectures")
            .and_then(|v| v.as_array())
            .is_some_and(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .any(|s| s.starts_with("Bert"))
            })
}

#[derive(Debug, Clone)]
struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Embeddings {
            word: candle_nn::embedding(cfg.vocab_size, h, vb.pp("word_embeddings"))?,
            position: candle_nn::embedding(
                cfg.max_position_embeddings,
                h,
                vb.pp("position_embeddings"),
            )?,
            token_type: candle_nn::embedding(
                cfg.type_vocab_size,
                h,
                vb.pp("token_type_embeddings"),
            )?,
            norm: candle_nn::layer_norm(h, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    /// Positions run 0..L in every row (right padding), token types are all 0 (one segment).
    /// Embeddings of sequences packed one after another in `input_ids` (`[T]`), each starting at
    /// position 0; `[T, H]`.
    fn forward_packed(&self, input_ids: &Tensor, lens: &[usize]) -> Result<Tensor> {
        let t = input_ids.dims1()?;
        let positions: Vec<u32> = lens.iter().flat_map(|&l| 0..l as u32).collect();
        let positions = Tensor::from_vec(positions, t, input_ids.device())?;
        let types = Tensor::zeros(t, DType::U32, input_ids.device())?;
        let x = ((self.word.forward(input_ids)? + self.position.forward(&positions)?)?
            + self.token_type.forward(&types)?)?;
        self.norm.forward(&x)
    }

    fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (_, l) = input_ids.dims2()?;
        let positions = Tensor::arange(0u32, l as u32, input_ids.device())?;
        let types = Tensor::zeros(l, DType::U32, input_ids.device())?;
        let x = self
            .word
            .forward(input_ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .broadcast_add(&self.token_type.forward(&types)?)?;
        self.norm.forward(&x)
    }
}

/// A dense (linear) layer whose weight is stored transposed, `[in, out]` and contiguous, so that
/// `x · W` reads it in place. candle's `Linear` keeps the checkpoint's `[out, in]` and multiplies by
/// the transposed view `x · Wᵀ`; for a few rows gemm then repacks all of `W` into its panel layout
/// on every call, which at batch 1 took two thirds of the forward pass on all-MiniLM-L6-v2
/// (reading and writing each weight once more, in a strided order, to use it for three rows). With
/// the transpose done once at load the kernel streams `W` as it lies; the result is the same product
/// (on CUDA cuBLAS takes either layout at the same speed).
///
/// On the CPU in f32 the layer also keeps its weight packed for [`SmallGemm`], which takes calls of
/// up to [`small_gemm::MAX_ROWS`] rows (a short query, a few short inputs): it reads each weight
/// once per call where gemm sweeps `W` once per panel of rows (6 + 1 for seven tokens), and adds
/// the bias in the same pass. The packed copy costs as many bytes again as the weight.
#[derive(Debug, Clone)]
struct Dense {
    /// `[in, out]`.
    weight_t: Tensor,
    /// `[out]`.
    bias: Tensor,
    /// The few-row kernel's copy of the weight and bias (CPU, f32 only).
    small: Option<Arc<SmallGemm>>,
}

impl Dense {
    /// From the checkpoint's `weight` `[out, in]` and `bias` `[out]`. With [`Precision::F16`] (CPU
    /// and f32 only; elsewhere it changes nothing) the weight is rounded to f16: the few-row kernel
    /// reads it as f16, and the other calls multiply by the same rounded values in f32.
    fn new(weight: &Tensor, bias: Tensor, cpu_weights: Precision) -> Result<Self> {
        let weight_t = weight.t()?.contiguous()?;
        if !weight_t.device().is_cpu() || weight_t.dtype() != DType::F32 {
            return Ok(Dense {
                weight_t,
                bias,
                small: None,
            });
        }
        let (in_dim, out_dim) = weight_t.dims2()?;
        let small = SmallGemm::pack(
            &weight_t.flatten_all()?.to_vec1::<f32>()?,
            &bias.to_vec1::<f32>()?,
            in_dim,
            out_dim,
            cpu_weights,
        );
        let weight_t = match cpu_weights {
            Precision::F32 => weight_t,
            Precision::F16 => Tensor::from_vec(
                small.unpacked_weight(),
                (in_dim, out_dim),
                weight_t.device(),
            )?,
        };
        Ok(Dense {
            weight_t,
            bias,
            small: Some(Arc::new(small)),
        })
    }

    fn load(in_dim: usize, out_dim: usize, vb: VarBuilder, cpu_weights: Precision) -> Result<Self> {
        let (w, b) = linear(in_dim, out_dim, vb)?;
        Dense::new(&w, b, cpu_weights)
    }
}

impl Module for Dense {
    /// `x` `[…, in]` → `[…, out]`: the leading dimensions are folded into rows, one GEMM.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (in_dim, out_dim) = self.weight_t.dims2()?;
        let mut dims = x.dims().to_vec();
        let rows = x.elem_count() / in_dim.max(1);
        if let Some(last) = dims.last_mut() {
            *last = out_dim;
        }
        if let Some(small) = &self.small {
            if rows <= small_gemm::MAX_ROWS && x.dtype() == DType::F32 && x.device().is_cpu() {
                if x.dims().last() != Some(&in_dim) {
                    candle_core::bail!(
                        "dense: input {:?}, weight [{in_dim}, {out_dim}]",
                        x.shape()
                    );
                }
                let y = small.forward(&x.flatten_all()?.to_vec1::<f32>()?, rows);
                return Tensor::from_vec(y, dims, x.device());
            }
        }
        x.reshape((rows, in_dim))?
            .matmul(&self.weight_t)?
            .broadcast_add(&self.bias)?
            .reshape(dims)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    qkv: Dense,
    attn_out: Dense,
    attn_norm: LayerNorm,
    up: Dense,
    down: Dense,
    out_norm: LayerNorm,
    heads: usize,
    head_dim: usize,
    /// The layer on plain slices for a pass of a few rows (CPU, f32).
    few: Option<FewRowsLayer>,
}

/// A LayerNorm's parameters as slices, for [`few_rows::add_layer_norm`].
#[derive(Debug, Clone)]
struct NormRows {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl NormRows {
    fn of(norm: &LayerNorm) -> Result<Option<Self>> {
        let w = norm.weight();
        let Some(b) = norm.bias() else {
            return Ok(None);
        };
        if !w.device().is_cpu() || w.dtype() != DType::F32 || !norm.remove_mean() {
            return Ok(None);
        }
        Ok(Some(NormRows {
            weight: w.to_vec1()?,
            bias: b.to_vec1()?,
            // candle's LayerNorm op takes its epsilon as f32.
            eps: norm.eps() as f32,
        }))
    }
}

/// A layer whose projections all have the few-row kernel: the whole layer runs on slices for up
/// to [`small_gemm::MAX_ROWS`] rows, without a candle op (see [`few_rows`]).
#[derive(Debug, Clone)]
struct FewRowsLayer {
    qkv: Arc<SmallGemm>,
    attn_out: Arc<SmallGemm>,
    up: Arc<SmallGemm>,
    down: Arc<SmallGemm>,
    attn_norm: NormRows,
    out_norm: NormRows,
}

impl FewRowsLayer {
    /// `x` `[T, H]` of sequences packed end to end → the layer's output, the same function as
    /// [`Layer::forward_packed`].
    fn forward(&self, x: &[f32], lens: &[usize], heads: usize, head_dim: usize) -> Vec<f32> {
        let t: usize = lens.iter().sum();
        let qkv = self.qkv.forward(x, t);
        let ctx = few_rows::packed_attention(&qkv, lens, heads, head_dim);
        let mut h = self.attn_out.forward(&ctx, t);
        let n = &self.attn_norm;
        few_rows::add_layer_norm(&mut h, x, &n.weight, &n.bias, n.eps);
        let mut ff = self.up.forward(&h, t);
        few_rows::gelu_in_place(&mut ff);
        let mut y = self.down.forward(&ff, t);
        let n = &self.out_norm;
        few_rows::add_layer_norm(&mut y, &h, &n.weight, &n.bias, n.eps);
        y
    }
}

fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<(Tensor, Tensor)> {
    Ok((
        vb.get_with_hints(
            (out_dim, in_dim),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?,
        vb.get(out_dim, "bias")?,
    ))
}

impl Layer {
    fn new(cfg: &BertConfig, vb: VarBuilder, w: Precision) -> Result<Self> {
        let h = cfg.hidden_size;
        let att = vb.pp("attention");
        let sa = att.pp("self");
        let (qw, qb) = linear(h, h, sa.pp("query"))?;
        let (kw, kb) = linear(h, h, sa.pp("key"))?;
        let (vw, vb_) = linear(h, h, sa.pp("value"))?;
        let qkv = Dense::new(
            &Tensor::cat(&[qw, kw, vw], 0)?,
            Tensor::cat(&[qb, kb, vb_], 0)?,
            w,
        )?;
        let attn_out = Dense::load(h, h, att.pp("output").pp("dense"), w)?;
        let attn_norm =
            candle_nn::layer_norm(h, cfg.layer_norm_eps, att.pp("output").pp("LayerNorm"))?;
        let up = Dense::load(
            h,
            cfg.intermediate_size,
            vb.pp("intermediate").pp("dense"),
            w,
        )?;
        let down = Dense::load(cfg.intermediate_size, h, vb.pp("output").pp("dense"), w)?;
        let out_norm =
            candle_nn::layer_norm(h, cfg.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?;
        Ok(Layer {
            qkv,
            attn_out,
            attn_norm,
            up,
            down,
            out_norm,
            heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
            few: None,
        })
    }

    /// The few-row kernels of the four projections, while this layer holds the only handle to
    /// them (before [`Layer::attach_few_rows`] shares them).
    fn kernels_mut(&mut self) -> impl Iterator<Item = &mut SmallGemm> {
        [
            &mut self.qkv,
            &mut self.attn_out,
            &mut self.up,
            &mut self.down,
        ]
        .into_iter()
        .filter_map(|d| d.small.as_mut().and_then(Arc::get_mut))
    }

    /// Builds the slice version of the layer when all four projections have the few-row kernel.
    fn attach_few_rows(&mut self) -> Result<()> {
        self.few = match (
            &self.qkv.small,
            &self.attn_out.small,
            &self.up.small,
            &self.down.small,
            NormRows::of(&self.attn_norm)?,
            NormRows::of(&self.out_norm)?,
        ) {
            (Some(q), Some(o), Some(u), Some(d), Some(n1), Some(n2)) => Some(FewRowsLayer {
                qkv: q.clone(),
                attn_out: o.clone(),
                up: u.clone(),
                down: d.clone(),
                attn_norm: n1,
                out_norm: n2,
            }),
            _ => None,
        };
        Ok(())
    }

    /// One layer over packed sequences (`x` `[T, H]`, sequence `i` the next `lens[i]` rows). The
    /// projections and the MLP run once over all `T` real tokens; attention runs per sequence, so no
    /// pad token is ever computed and no mask is needed.
    fn forward_packed(&self, x: &Tensor, lens: &[usize]) -> Result<Tensor> {
        let (t, h) = x.dims2()?;
        let (nh, d) = (self.heads, self.head_dim);
        let qkv = self.qkv.forward(x)?;
        let scale = 1.0 / (d as f64).sqrt();
        let mut ctxs = Vec::with_capacity(lens.len());
        let mut start = 0;
        for &len in lens {
            let seq = qkv.narrow(0, start, len)?.reshape((len, 3, nh, d))?;
            let split = |i: usize| {
                seq.narrow(1, i, 1)?
                    .squeeze(1)?
                    .transpose(0, 1)?
                    .contiguous()
            };
            let (q, k, v) = (split(0)?, split(1)?, split(2)?);
            let probs = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * scale)?)?;
            ctxs.push(
                probs
                    .matmul(&v)?
                    .transpose(0, 1)?
                    .contiguous()?
                    .reshape((len, h))?,
            );
            start += len;
        }
        if start != t {
            candle_core::bail!("packed lengths sum to {start}, the batch has {t} tokens");
        }
        let ctx = Tensor::cat(&ctxs, 0)?;
        self.after_attention(&ctx, x)
    }

    /// The attention output projection, residual and LayerNorm, then the MLP block: everything after
    /// the attention context `ctx`, which has the shape of the layer input `x`.
    fn after_attention(&self, ctx: &Tensor, x: &Tensor) -> Result<Tensor> {
        let x = self
            .attn_norm
            .forward(&(self.attn_out.forward(ctx)? + x)?)?;
        let ff = self
            .down
            .forward(&crate::layers::gelu_erf(&self.up.forward(&x)?)?)?;
        self.out_norm.forward(&(ff + x)?)
    }

    /// The padded layer, the reference the packed one is tested against: `x` `[B, L, H]`; `bias`
    /// `[B, 1, 1, L]`, 0 on real keys and the dtype's minimum on padding.
    fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, l, h) = x.dims3()?;
        let (nh, d) = (self.heads, self.head_dim);
        let qkv = self.qkv.forward(x)?.reshape((b, l, 3, nh, d))?;
        let split = |i: usize| {
            qkv.narrow(2, i, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scale = 1.0 / (d as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, l, h))?;
        self.after_attention(&ctx, x)
    }
}

/// Moves every few-row kernel's packed weights into one region advised for huge pages (see
/// [`crate::layers::weight_region`]): a short query's pass streams them all.
fn share_kernel_weights(layers: &mut [Layer]) -> Result<()> {
    let mut kernels: Vec<&mut SmallGemm> = layers.iter_mut().flat_map(Layer::kernels_mut).collect();
    SmallGemm::share_weights(&mut kernels)
        .map_err(|e| candle_core::Error::Msg(format!("mapping the projection weights: {e}")))
}

/// The BERT encoder without the pooler (sentence-transformers never uses it).
#[derive(Debug, Clone)]
pub struct BertModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    cfg: BertConfig,
}

impl BertModel {
    /// `vb` is rooted where `embeddings.*` and `encoder.layer.*` live (the checkpoint root for
    /// sentence-transformers exports, `bert` for `BertFor*` heads).
    pub fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<Self> {
        Self::new_with(cfg, vb, Precision::F32)
    }

    /// [`BertModel::new`], with the precision of the projections' weights on the CPU in f32:
    /// [`Precision::F16`] rounds them to f16 at load (half the bytes read per short query, and
    /// slightly different vectors; an opt-in). The embeddings and LayerNorms stay f32. On other
    /// devices and dtypes `cpu_weights` changes nothing.
    pub fn new_with(cfg: &BertConfig, vb: VarBuilder, cpu_weights: Precision) -> Result<Self> {
        let embeddings = Embeddings::new(cfg, vb.pp("embeddings"))?;
        let mut layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::new(cfg, vb.pp("encoder").pp("layer").pp(i), cpu_weights))
            .collect::<Result<Vec<_>>>()?;
        share_kernel_weights(&mut layers)?;
        for layer in &mut layers {
            layer.attach_few_rows()?;
        }
        Ok(BertModel {
            embeddings,
            layers,
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    /// Last hidden states `[B, L, H]` for right-padded `input_ids` `[B, L]` (u32) and
    /// `attention_mask` `[B, L]` (u32, 1 on real tokens).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let (b, l) = input_ids.dims2()?;
        if l > self.cfg.max_position_embeddings {
            candle_core::bail!(
                "{l} tokens exceed max_position_embeddings {}",
                self.cfg.max_position_embeddings
            );
        }
        let mut x = self.embeddings.forward(input_ids)?;
        let dtype = x.dtype();
        // (1 - mask) · min, built in f32 and cast: what transformers adds to the scores.
        let bias = ((attention_mask.to_dtype(DType::F32)? - 1.0)? * -(f32::MIN as f64))?
            .to_dtype(dtype)?
            .reshape((b, 1, 1, l))?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias)?;
        }
        Ok(x)
    }

    /// Last hidden states of sequences packed without padding: `input_ids` `[T]` holds them one after
    /// another, `lens` their lengths; returns `[T, H]`. Same result as [`BertModel::forward`] on the
    /// padded batch, without computing pad tokens: a batch of mixed lengths costs its real tokens
    /// (as text-embeddings-inference's unpadded batches), not batch size × longest.
    pub fn forward_packed(&self, input_ids: &Tensor, lens: &[usize]) -> Result<Tensor> {
        if let Some(&l) = lens.iter().find(|&&l| l > self.cfg.max_position_embeddings) {
            candle_core::bail!(
                "{l} tokens exceed max_position_embeddings {}",
                self.cfg.max_position_embeddings
            );
        }
        if lens.contains(&0) {
            candle_core::bail!("a packed sequence has no tokens");
        }
        let x = self.embeddings.forward_packed(input_ids, lens)?;
        let (t, h) = x.dims2()?;
        let few: Option<Vec<&FewRowsLayer>> = self.layers.iter().map(|l| l.few.as_ref()).collect();
        match few {
            // A short query: the layers on slices, no candle op between the projections.
            Some(few) if t <= small_gemm::MAX_ROWS && x.dtype() == DType::F32 => {
                let mut rows = x.flatten_all()?.to_vec1::<f32>()?;
                for layer in few {
                    rows = layer.forward(
                        &rows,
                        lens,
                        self.cfg.num_attention_heads,
                        self.cfg.head_dim(),
                    );
                }
                Tensor::from_vec(rows, (t, h), x.device())
            }
            _ => self.layers_packed(x, lens),
        }
    }

    /// The layers over packed rows as candle ops.
    fn layers_packed(&self, mut x: Tensor, lens: &[usize]) -> Result<Tensor> {
        for layer in &self.layers {
            x = layer.forward_packed(&x, lens)?;
        }
        Ok(x)
    }
}

/// [`sentence_embedding`] over packed hidden states (`[T, H]`, sequence `i` the next `lens[i]` rows):
/// the mean of each sequence's rows (or its first row, `[CLS]`, when `cls`), then (when asked) L2
/// normalisation; f32 `[B, H]`.
pub fn sentence_embedding_packed(
    hidden: &Tensor,
    lens: &[usize],
    cls: bool,
    normalize: bool,
) -> Result<Tensor> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let mut start = 0;
    let mut pooled = Vec::with_capacity(lens.len());
    for &len in lens {
        pooled.push(if cls {
            hidden.narrow(0, start, 1)?
        } else {
            hidden.narrow(0, start, len)?.mean_keepdim(0)?
        });
        start += len;
    }
    let pooled = Tensor::cat(&pooled, 0)?;
    if normalize {
        crate::layers::l2_normalize(&pooled)
    } else {
        Ok(pooled)
    }
}

/// Dense sentence vector from the last hidden states, as `sentence_transformers.models.Pooling`
/// in mean mode followed (when the pipeline has it) by `Normalize`; f32 `[B, H]`.
pub fn sentence_embedding(hidden: &Tensor, mask: &Tensor, normalize: bool) -> Result<Tensor> {
    let pooled = crate::layers::mean_pool(hidden, mask)?;
    if normalize {
        crate::layers::l2_normalize(&pooled)
    } else {
        Ok(pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks() {
        let ok = r#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
            "max_position_embeddings": 32}"#;
        let c = BertConfig::from_json(ok).unwrap();
        assert_eq!((c.head_dim(), c.type_vocab_size, c.pad_token_id), (4, 2, 0));
        let bad_heads = ok.replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3");
        assert!(BertConfig::from_json(&bad_heads)
            .unwrap_err()
            .contains("multiple"));
        let relu = ok.replace(
            "\"max_position_embeddings\": 32",
            "\"max_position_embeddings\": 32, \"hidden_act\": \"relu\"",
        );
        assert!(BertConfig::from_json(&relu).unwrap_err().contains("relu"));
        let v: serde_json::Value = serde_json::from_str(ok).unwrap();
        assert!(is_bert_config(&v));
        let v: serde_json::Value =
            serde_json::from_str(r#"{"architectures": ["Qwen2_5_VLForConditionalGeneration"]}"#)
                .unwrap();
        assert!(!is_bert_config(&v));
    }

    /// A 2-layer BERT with random weights and an 11-token vocabulary.
    fn tiny_model() -> (BertModel, candle_core::Device) {
        let cfg = BertConfig::from_json(
            r#"{"vocab_size": 11, "hidden_size": 8, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16}"#,
        )
        .unwrap();
        let dev = candle_core::Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        (BertModel::new(&cfg, vb).unwrap(), dev)
    }

    #[test]
    fn padding_does_not_change_real_tokens() {
        let (model, dev) = tiny_model();
        let one = Tensor::new(&[[1u32, 4, 7, 2]], &dev).unwrap();
        let padded = Tensor::new(&[[1u32, 4, 7, 2, 0, 0]], &dev).unwrap();
        let m1 = Tensor::new(&[[1u32, 1, 1, 1]], &dev).unwrap();
        let m2 = Tensor::new(&[[1u32, 1, 1, 1, 0, 0]], &dev).unwrap();
        let a = sentence_embedding(&model.forward(&one, &m1).unwrap(), &m1, true).unwrap();
        let b = sentence_embedding(&model.forward(&padded, &m2).unwrap(), &m2, true).unwrap();
        let diff = crate::layers::max_abs_diff(&a, &b);
        assert!(diff < 1e-6, "{diff}");
    }

    /// The few-row kernel computes what candle's matmul computes, with f32 weights and with the
    /// f16-rounded ones (the larger calls multiply by the same rounded values).
    #[test]
    fn few_rows_take_the_kernel_and_match_the_matmul() {
        let dev = candle_core::Device::Cpu;
        let (i_n, o_n) = (37, 53);
        let w = Tensor::randn(0f32, 1.0, (o_n, i_n), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, o_n, &dev).unwrap();
        // Two sequences of more than MAX_ROWS rows each: the whole batch takes candle's matmul.
        let seq = small_gemm::MAX_ROWS + 4;
        let x = Tensor::randn(0f32, 1.0, (2, seq, i_n), &dev).unwrap();
        for precision in [Precision::F32, Precision::F16] {
            let dense = Dense::new(&w, b.clone(), precision).unwrap();
            assert!(dense.small.is_some());
            let big = dense.forward(&x).unwrap();
            assert_eq!(big.dims(), &[2, seq, o_n]);
            // 23: past 16 and not a multiple of the 6-row tile.
            for rows in [1, 7, 16, 23, small_gemm::MAX_ROWS] {
                let few = x.get(1).unwrap().narrow(0, 0, rows).unwrap();
                let got = dense.forward(&few).unwrap();
                let want = few
                    .matmul(&dense.weight_t)
                    .unwrap()
                    .broadcast_add(&b)
                    .unwrap();
                let d = crate::layers::max_abs_diff(&got, &want);
                assert!(d < 1e-4, "{precision:?}, {rows} rows: {d}");
                let d = crate::layers::max_abs_diff(
                    &got,
                    &big.get(1).unwrap().narrow(0, 0, rows).unwrap(),
                );
                assert!(d < 1e-4, "{precision:?}, {rows} rows vs the batch: {d}");
            }
        }
        let f32w = Dense::new(&w, b.clone(), Precision::F32).unwrap();
        let f16w = Dense::new(&w, b, Precision::F16).unwrap();
        let d = crate::layers::max_abs_diff(&f32w.weight_t, &f16w.weight_t);
        assert!(d > 0.0 && d < 1e-2, "f16 rounding moved the weights by {d}");
    }

    /// Up to `MAX_ROWS` packed rows run the layers on slices; the candle ops compute the same
    /// function (to f32 rounding: the attention sums in another order).
    #[test]
    fn a_few_rows_take_the_slice_layers_and_match_the_candle_layers() {
        let (model, dev) = tiny_model();
        assert!(model.layers.iter().all(|l| l.few.is_some()));
        // Every projection reads its weights from the model's one region.
        let regions: std::collections::HashSet<usize> = model
            .layers
            .iter()
            .flat_map(|l| [&l.qkv, &l.attn_out, &l.up, &l.down])
            .map(|d| {
                d.small
                    .as_ref()
                    .unwrap()
                    .region_id()
                    .expect("weights in the region")
            })
            .collect();
        assert_eq!(regions.len(), 1);
        let rows: [&[u32]; 3] = [&[1, 4, 7, 2], &[1, 9, 2], &[1, 3, 5, 8, 10, 6, 2]];
        let lens: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let ids = Tensor::from_vec(rows.concat(), lens.iter().sum::<usize>(), &dev).unwrap();
        let got = model.forward_packed(&ids, &lens).unwrap();
        let x = model.embeddings.forward_packed(&ids, &lens).unwrap();
        let want = model.layers_packed(x, &lens).unwrap();
        assert_eq!(got.dims(), want.dims());
        let d = crate::layers::max_abs_diff(&got, &want);
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn packed_batch_matches_the_padded_batch() {
        let (model, dev) = tiny_model();
        let rows: [&[u32]; 3] = [&[1, 4, 7, 2], &[1, 9, 2], &[1, 3, 5, 8, 10, 6, 2]];
        let lens: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let l = 7;
        let padded: Vec<u32> = rows
            .iter()
            .flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0, l - r.len())))
            .collect();
        let mask: Vec<u32> = rows
            .iter()
            .flat_map(|r| (0..l).map(|i| u32::from(i < r.len())))
            .collect();
        let ids = Tensor::from_vec(padded, (3, l), &dev).unwrap();
        let mask = Tensor::from_vec(mask, (3, l), &dev).unwrap();
        let want = model.forward(&ids, &mask).unwrap();
        let want_vec = sentence_embedding(&want, &mask, true).unwrap();
        let packed = Tensor::from_vec(rows.concat(), lens.iter().sum::<usize>(), &dev).unwrap();
        let got = model.forward_packed(&packed, &lens).unwrap();
        let got_vec = sentence_embedding_packed(&got, &lens, false, true).unwrap();
        let mut start = 0;
        for (i, &len) in lens.iter().enumerate() {
            let w = want.get(i).unwrap().narrow(0, 0, len).unwrap();
            let g = got.narrow(0, start, len).unwrap();
            assert!(crate::layers::max_abs_diff(&w, &g) < 1e-5, "sequence {i}");
            start += len;
        }
        assert!(crate::layers::max_abs_diff(&want_vec, &got_vec) < 1e-6);
        assert!(model.forward_packed(&packed, &[4, 3, 6]).is_err());
    }
}
