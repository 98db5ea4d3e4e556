//! The Qwen2.5-VL text decoder: embeddings, M-RoPE, causal GQA attention, SwiGLU, RMSNorm.
//!
//! Written on candle-nn primitives because candle's `qwen2` has no M-RoPE, builds its rotary
//! tables in the model dtype and treats a mask as bidirectional. Every projection is a
//! [`LoraLinear`] so jina's task adapters apply unmerged; Q, K and V are one fused projection, and
//! so are gate and up.
//!
//! Two passes share the weights: [`TextModel::forward`] over a padded `[B, L]` batch on candle's
//! generic ops (plus fused CPU attention and SwiGLU for f32 on the CPU), and
//! [`TextModel::forward_packed`] over sequences laid end to end without padding, on the fused
//! kernels of [`crate::layers::fused`] (the GPU's text path: one kernel per step, no host
//! synchronisation between layers, attention memory linear in the tokens).
//! Reference: `Qwen2_5_VLTextModel` in transformers
//! <https://github.com/huggingface/transformers/blob/v4.52.4/src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py#L575-L1100>.

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Embedding, VarBuilder};

use super::config::TextConfig;
use crate::layers::fused::{self, VarlenSeqs};
use crate::layers::{causal_attention, LoraLinear, RmsNorm, TaskAdapters};

/// Score elements (per attention call) above which queries are processed in chunks, so a long
/// input never materialises `B·H·L²` scores: 32 Mi floats = 128 MiB in f32.
const DEFAULT_MAX_ATTN_ELEMS: usize = 32 << 20;

/// Additive bias for masked scores. Finite so that a fully masked row (a left-pad query)
/// gives a uniform softmax instead of NaN.
const MASK_MIN: f32 = f32::MIN;

/// Multimodal rotary embedding: per token, frequency slot `j` takes its angle from the t, h
/// or w component of the 3-D position according to `mrope_section`. Tables are computed in
/// f32 on the host (transformers does the same; bf16 tables round positions above 256).
#[derive(Debug, Clone)]
pub struct MRope {
    inv_freq: Vec<f32>,
    /// Component (0 = t, 1 = h, 2 = w) feeding each of the `head_dim/2` slots.
    component: Vec<usize>,
}

impl MRope {
    pub fn new(cfg: &TextConfig) -> Self {
        let half = cfg.head_dim / 2;
        let base = cfg.rope_theta as f32;
        let inv_freq = (0..half)
            .map(|j| 1.0f32 / base.powf((2 * j) as f32 / cfg.head_dim as f32))
            .collect();
        let [s0, s1, _] = cfg.mrope_section;
        let component = (0..half)
            .map(|j| {
                if j < s0 {
                    0
                } else if j < s0 + s1 {
                    1
                } else {
                    2
                }
            })
            .collect();
        MRope {
            inv_freq,
            component,
        }
    }

    /// `[tokens, 2, head_dim/2]` f32 for the packed pass: each token's cosines, then its sines,
    /// from its three position components `positions[c][token]`.
    pub fn cos_sin_rows(&self, positions: [&[i64]; 3], device: &Device) -> Result<Tensor> {
        let t = positions[0].len();
        if positions.iter().any(|p| p.len() != t) {
            candle_core::bail!("M-RoPE: position components of different lengths");
        }
        let half = self.inv_freq.len();
        let mut out = Vec::with_capacity(t * 2 * half);
        // One loop index over the three components of a token.
        #[allow(clippy::needless_range_loop)]
        for i in 0..t {
            let angle = |j: usize| positions[self.component[j]][i] as f32 * self.inv_freq[j];
            out.extend((0..half).map(|j| angle(j).cos()));
            out.extend((0..half).map(|j| angle(j).sin()));
        }
        Tensor::from_vec(out, (t, 2, half), device)
    }

    /// `positions`: `[3, B, L]` integer ids. Returns `(cos, sin)`, each `[B, L, head_dim/2]` f32.
    // Index loops mirror the [3, B, L] layout of the position ids; iterators would hide it.
    #[allow(clippy::needless_range_loop)]
    pub fn tables(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        let (three, b, l) = positions.dims3()?;
        if three != 3 {
            candle_core::bail!("position ids must be [3, B, L], got {:?}", positions.dims());
        }
        let pos = positions.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(b * l * half);
        let mut sin = Vec::with_capacity(b * l * half);
        for bi in 0..b {
            for li in 0..l {
                for j in 0..half {
                    let p = pos[self.component[j]][bi][li];
                    let theta = p * self.inv_freq[j];
                    cos.push(theta.cos());
                    sin.push(theta.sin());
                }
            }
        }
        let dev = positions.device();
        Ok((
            Tensor::from_vec(cos, (b, l, half), dev)?,
            Tensor::from_vec(sin, (b, l, half), dev)?,
        ))
    }
}

#[derive(Debug, Clone)]
struct Attention {
    /// q_proj, k_proj and v_proj fused: `[.., (nh + 2·nkv)·d]`.
    qkv_proj: LoraLinear,
    o_proj: LoraLinear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &TextConfig, vb: VarBuilder, ad: Option<&TaskAdapters>) -> Result<Self> {
        let h = cfg.hidden_size;
        let q_out = cfg.num_attention_heads * cfg.head_dim;
        let kv_out = cfg.num_key_value_heads * cfg.head_dim;
        let sub = |name: &str| ad.map(|a| a.pp(name));
        let part =
            |name: &str, out: usize| LoraLinear::new(h, out, true, vb.pp(name), sub(name).as_ref());
        Ok(Attention {
            qkv_proj: LoraLinear::fuse(&[
                part("q_proj", q_out)?,
                part("k_proj", kv_out)?,
                part("v_proj", kv_out)?,
            ])?,
            o_proj: LoraLinear::new(q_out, h, false, vb.pp("o_proj"), sub("o_proj").as_ref())?,
            num_heads: cfg.num_attention_heads,
            num_kv_heads: cfg.num_key_value_heads,
            head_dim: cfg.head_dim,
        })
    }

    /// The fused projection's output split into Q, K and V, each `[B, L, heads·d]`.
    fn qkv(&self, x: &Tensor, task: Option<usize>) -> Result<(Tensor, Tensor, Tensor)> {
        let (nh, nkv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let qkv = self.qkv_proj.forward_task(x, task)?;
        Ok((
            qkv.narrow(D::Minus1, 0, nh * d)?,
            qkv.narrow(D::Minus1, nh * d, nkv * d)?,
            qkv.narrow(D::Minus1, (nh + nkv) * d, nkv * d)?,
        ))
    }

    fn forward(&self, x: &Tensor, ctx: &ForwardCtx, task: Option<usize>) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let (nh, nkv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let (q, k, v) = self.qkv(x, task)?;
        if let KeyMask::Fused(key_valid) = &ctx.keys {
            // Token-major layout throughout: no head transposes before or after the kernel.
            let q = q.reshape((b, l, nh, d))?;
            let k = k.reshape((b, l, nkv, d))?;
            let v = v.reshape((b, l, nkv, d))?;
            let q = candle_nn::rotary_emb::rope_thd(&q, &ctx.cos, &ctx.sin)?;
            let k = candle_nn::rotary_emb::rope_thd(&k, &ctx.cos, &ctx.sin)?;
            let scale = 1.0 / (d as f32).sqrt();
            let o = causal_attention::causal_attention(&q, &k, &v, key_valid.clone(), scale)?;
            return self.o_proj.forward_task(&o, task);
        }
        let n_rep = nh / nkv;
        let heads = |t: Tensor, n: usize| -> Result<Tensor> {
            t.reshape((b, l, n, d))?.transpose(1, 2)?.contiguous()
        };
        let q = heads(q, nh)?;
        let k = heads(k, nkv)?;
        let v = heads(v, nkv)?;
        let q = candle_nn::rotary_emb::rope(&q, &ctx.cos, &ctx.sin)?;
        let k = candle_nn::rotary_emb::rope(&k, &ctx.cos, &ctx.sin)?;
        let scale = 1.0 / (d as f64).sqrt();

        // Query chunks: keys are limited to the causal prefix of each chunk, and the score
        // tensor of one chunk stays under the element budget.
        let chunk = (ctx.max_attn_elems / (b * nh * l).max(1)).clamp(1, l);
        let mut outs = Vec::with_capacity(l.div_ceil(chunk));
        let mut q0 = 0;
        while q0 < l {
            let cq = chunk.min(l - q0);
            let kend = q0 + cq;
            // GQA without copying K/V: the n_rep query heads that share a KV head are stacked
            // along the row axis, so one matmul serves them all.
            let qc = q
                .narrow(2, q0, cq)?
                .contiguous()?
                .reshape((b, nkv, n_rep * cq, d))?;
            let kc = k.narrow(2, 0, kend)?;
            let vc = v.narrow(2, 0, kend)?.contiguous()?;
            let scores = (qc.matmul(&kc.t()?)? * scale)?
                .reshape((b, nkv, n_rep, cq, kend))?
                .to_dtype(DType::F32)?;
            let bias = ctx.bias(q0, cq, kend)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&bias)?)?
                .to_dtype(vc.dtype())?
                .reshape((b, nkv, n_rep * cq, kend))?;
            let o = probs.matmul(&vc)?.reshape((b, nh, cq, d))?;
            outs.push(o);
            q0 += cq;
        }
        let o = Tensor::cat(&outs, 2)?
            .transpose(1, 2)?
            .reshape((b, l, nh * d))?;
        self.o_proj.forward_task(&o, task)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    /// gate_proj and up_proj fused: `[.., 2·intermediate]`.
    gate_up_proj: LoraLinear,
    down_proj: LoraLinear,
    intermediate: usize,
}

impl Mlp {
    fn new(cfg: &TextConfig, vb: VarBuilder, ad: Option<&TaskAdapters>) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let sub = |name: &str| ad.map(|a| a.pp(name));
        let part = |name: &str| LoraLinear::new(h, i, false, vb.pp(name), sub(name).as_ref());
        Ok(Mlp {
            gate_up_proj: LoraLinear::fuse(&[part("gate_proj")?, part("up_proj")?])?,
            down_proj: LoraLinear::new(i, h, false, vb.pp("down_proj"), sub("down_proj").as_ref())?,
            intermediate: i,
        })
    }

    /// `fused_swiglu`: one pass over the fused gate/up output (the f32 CPU path); otherwise
    /// candle's generic ops.
    fn forward(&self, x: &Tensor, task: Option<usize>, fused_swiglu: bool) -> Result<Tensor> {
        let gate_up = self.gate_up_proj.forward_task(x, task)?;
        let i = self.intermediate;
        let act = if fused_swiglu {
            let mut dims = gate_up.dims().to_vec();
            let rows = gate_up.elem_count() / (2 * i);
            *dims.last_mut().expect("a projection output has dims") = i;
            fused::swiglu(&gate_up.reshape((rows, 2 * i))?)?.reshape(dims)?
        } else {
            let gate = gate_up.narrow(D::Minus1, 0, i)?;
            let up = gate_up.narrow(D::Minus1, i, i)?;
            (candle_nn::ops::silu(&gate)? * up)?
        };
        self.down_proj.forward_task(&act, task)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    fn new(cfg: &TextConfig, vb: VarBuilder, ad: Option<&TaskAdapters>) -> Result<Self> {
        let sub = |name: &str| ad.map(|a| a.pp(name));
        Ok(DecoderLayer {
            self_attn: Attention::new(cfg, vb.pp("self_attn"), sub("self_attn").as_ref())?,
            mlp: Mlp::new(cfg, vb.pp("mlp"), sub("mlp").as_ref())?,
            input_layernorm: RmsNorm::new(
                cfg.hidden_size,
                cfg.rms_norm_eps,
                vb.pp("input_layernorm"),
            )?,
            post_attention_layernorm: RmsNorm::new(
                cfg.hidden_size,
                cfg.rms_norm_eps,
                vb.pp("post_attention_layernorm"),
            )?,
        })
    }

    fn forward(&self, x: &Tensor, ctx: &ForwardCtx, task: Option<usize>) -> Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.input_layernorm.forward(x)?, ctx, task)?;
        let x = (x + h)?;
        let fused_swiglu = matches!(ctx.keys, KeyMask::Fused(_));
        let h = self.mlp.forward(
            &self.post_attention_layernorm.forward(&x)?,
            task,
            fused_swiglu,
        )?;
        x + h
    }
}

/// Which keys are real tokens, in the form the chosen attention path reads.
enum KeyMask {
    /// The fused CPU kernel: per `b·L + j`, whether key `j` is real; None when all are.
    Fused(Option<Arc<Vec<bool>>>),
    /// The generic path: `[B, 1, 1, 1, L]` f32, 0 for real keys and `MASK_MIN` for padding.
    Bias(Tensor),
}

/// Per-forward state shared by all layers: rotary tables and the key mask.
struct ForwardCtx {
    cos: Tensor,
    sin: Tensor,
    keys: KeyMask,
    max_attn_elems: usize,
    device: Device,
}

impl ForwardCtx {
    /// Causal + padding bias for queries `q0..q0+cq` over keys `0..kend`, shaped to broadcast
    /// against `[B, nkv, n_rep, cq, kend]` scores.
    fn bias(&self, q0: usize, cq: usize, kend: usize) -> Result<Tensor> {
        let mut causal = vec![0f32; cq * kend];
        for i in 0..cq {
            for j in (q0 + i + 1)..kend {
                causal[i * kend + j] = MASK_MIN;
            }
        }
        let causal = Tensor::from_vec(causal, (1, 1, 1, cq, kend), &self.device)?;
        let KeyMask::Bias(key_bias) = &self.keys else {
            candle_core::bail!("attention bias asked for on the fused CPU path");
        };
        // Both terms are either 0 or MASK_MIN; the max keeps the sum finite.
        let keys = key_bias.narrow(D::Minus1, 0, kend)?;
        causal.broadcast_minimum(&keys)
    }
}

/// The decoder stack. Inputs are padded `[B, L]` batches with an attention mask.
#[derive(Debug, Clone)]
pub struct TextModel {
    embed_tokens: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    rope: MRope,
    cfg: TextConfig,
    max_attn_elems: usize,
    fused_cpu_attention: bool,
}

/// What [`TextModel::forward`] returns.
#[derive(Debug, Clone)]
pub struct TextOutput {
    /// Post-final-norm hidden states `[B, L, hidden]`.
    pub last_hidden: Tensor,
    /// When requested: the embedding output followed by each layer's output (pre final norm),
    /// `num_hidden_layers + 1` entries.
    pub layer_outputs: Vec<Tensor>,
}

impl TextModel {
    /// `vb` is rooted at the decoder (`model` or `model.language_model`), `adapters` at the
    /// same module in the adapter file.
    pub fn new(cfg: &TextConfig, vb: VarBuilder, adapters: Option<&TaskAdapters>) -> Result<Self> {
        let embed = vb
            .pp("embed_tokens")
            .get((cfg.vocab_size, cfg.hidden_size), "weight")?;
        let layers_vb = vb.pp("layers");
        let layers_ad = adapters.map(|a| a.pp("layers"));
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let ad = layers_ad.as_ref().map(|a| a.pp(&i.to_string()));
                DecoderLayer::new(cfg, layers_vb.pp(i), ad.as_ref())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TextModel {
            embed_tokens: Embedding::new(embed, cfg.hidden_size),
            layers,
            norm: RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("norm"))?,
            rope: MRope::new(cfg),
            cfg: cfg.clone(),
            max_attn_elems: DEFAULT_MAX_ATTN_ELEMS,
            fused_cpu_attention: true,
        })
    }

    pub fn config(&self) -> &TextConfig {
        &self.cfg
    }

    /// Caps the attention score elements per call of the generic attention path; smaller values
    /// mean more query chunks.
    pub fn set_max_attention_elements(&mut self, elems: usize) {
        self.max_attn_elems = elems.max(1);
    }

    /// On (the default), f32 on the CPU runs the fused causal attention kernel; off, it runs the
    /// generic path that other devices and dtypes take (so that path can be checked on a CPU).
    pub fn set_fused_cpu_attention(&mut self, on: bool) {
        self.fused_cpu_attention = on;
    }

    /// Folds one task's LoRA into every projection.
    pub fn merge_task(&mut self, task: usize) -> Result<()> {
        for layer in &mut self.layers {
            let a = &mut layer.self_attn;
            for lin in [&mut a.qkv_proj, &mut a.o_proj] {
                lin.merge(task)?;
            }
            let m = &mut layer.mlp;
            for lin in [&mut m.gate_up_proj, &mut m.down_proj] {
                lin.merge(task)?;
            }
        }
        Ok(())
    }

    /// Token embeddings for `[B, L]` u32 ids.
    pub fn embed(&self, input_ids: &Tensor) -> Result<Tensor> {
        self.embed_tokens.forward(input_ids)
    }

    /// Runs the decoder over `inputs_embeds [B, L, H]` with `attention_mask [B, L]` (1 = real)
    /// and M-RoPE `position_ids [3, B, L]`, using `task`'s LoRA (None = base weights).
    pub fn forward(
        &self,
        inputs_embeds: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
        task: Option<usize>,
        keep_layer_outputs: bool,
    ) -> Result<TextOutput> {
        let (b, l, _) = inputs_embeds.dims3()?;
        let dtype = inputs_embeds.dtype();
        let (cos, sin) = self.rope.tables(position_ids)?;
        let key_mask = attention_mask.to_dtype(DType::F32)?;
        let keys = if self.fused_cpu_attention && causal_attention::supported(inputs_embeds) {
            let valid: Vec<bool> = key_mask
                .flatten_all()?
                .to_vec1::<f32>()?
                .into_iter()
                .map(|m| m != 0.0)
                .collect();
            KeyMask::Fused((!valid.iter().all(|&v| v)).then(|| Arc::new(valid)))
        } else {
            // 1 → 0, 0 → MASK_MIN.
            KeyMask::Bias(
                ((key_mask.ones_like()? - &key_mask)? * (MASK_MIN as f64))?
                    .reshape((b, 1, 1, 1, l))?,
            )
        };
        let ctx = ForwardCtx {
            cos: cos.to_dtype(dtype)?,
            sin: sin.to_dtype(dtype)?,
            keys,
            max_attn_elems: self.max_attn_elems,
            device: inputs_embeds.device().clone(),
        };
        let mut layer_outputs = Vec::new();
        let mut x = inputs_embeds.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let _span = tracing::trace_span!("decoder_layer", i).entered();
            if keep_layer_outputs {
                layer_outputs.push(x.clone());
            }
            x = layer.forward(&x, &ctx, task)?;
        }
        if keep_layer_outputs {
            layer_outputs.push(x.clone());
        }
        Ok(TextOutput {
            last_hidden: self.norm.forward(&x)?,
            layer_outputs,
        })
    }
}

/// Tokens per chunk of the packed pass's MLP: the fused gate/up activation of a chunk is
/// `chunk × 2·intermediate` values (176 MB in bf16 for Qwen2.5-VL-3B), instead of all the batch's.
const PACKED_MLP_CHUNK: usize = 4096;

/// The inputs of [`TextModel::forward_packed`]: sequences laid end to end.
#[derive(Debug, Clone)]
pub struct PackedInput {
    /// Token ids `[tokens]` u32.
    pub ids: Tensor,
    /// Where each sequence starts.
    pub seqs: VarlenSeqs,
    /// Each token's rotary angles, `[tokens, 2, head_dim/2]` f32 (cosines, then sines).
    pub cos_sin: Tensor,
}

impl TextModel {
    /// A packed text batch: each row's positions run from 0 in all three M-RoPE components.
    pub fn packed_text_input(&self, rows: &[&[u32]], device: &Device) -> Result<PackedInput> {
        let lens: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let positions: Vec<i64> = lens.iter().flat_map(|&l| 0..l as i64).collect();
        self.packed_input(rows, [&positions, &positions, &positions], device)
    }

    /// A packed batch with explicit M-RoPE positions: `positions[c]` holds component `c` of every
    /// token, rows end to end (the image prompts' 3-D positions).
    pub fn packed_input(
        &self,
        rows: &[&[u32]],
        positions: [&[i64]; 3],
        device: &Device,
    ) -> Result<PackedInput> {
        let lens: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let ids: Vec<u32> = rows.concat();
        let n = ids.len();
        if positions[0].len() != n {
            candle_core::bail!(
                "packed input: {} positions for {n} tokens",
                positions[0].len()
            );
        }
        Ok(PackedInput {
            ids: Tensor::from_vec(ids, n, device)?,
            seqs: VarlenSeqs::new(&lens, device)?,
            cos_sin: self.rope.cos_sin_rows(positions, device)?,
        })
    }

    /// Runs the decoder over a packed batch on the fused kernels, with `task`'s LoRA (None = base
    /// weights). Returns the post-final-norm hidden states `[tokens, hidden]` and the number of
    /// kernels launched (one per fused op or GEMM; see [`LoraLinear::launches`]).
    pub fn forward_packed(
        &self,
        input: &PackedInput,
        task: Option<usize>,
    ) -> Result<(Tensor, u64)> {
        let (hidden, launches) =
            self.forward_packed_embeds(self.embed_tokens.forward(&input.ids)?, input, task)?;
        Ok((hidden, launches + 1))
    }

    /// [`TextModel::forward_packed`] from input embeddings `[tokens, hidden]` (token embeddings
    /// with image features in place); the launches do not count making `x`.
    pub fn forward_packed_embeds(
        &self,
        x: Tensor,
        input: &PackedInput,
        task: Option<usize>,
    ) -> Result<(Tensor, u64)> {
        let mut launches = 0;
        let mut x = x;
        let mut delta: Option<Tensor> = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let _span = tracing::trace_span!("decoder_layer_packed", i).entered();
            let (residual, d) =
                layer.forward_packed(&x, delta.as_ref(), input, task, &mut launches)?;
            x = residual;
            delta = Some(d);
        }
        let (_, hidden) =
            fused::add_rms_norm(&x, delta.as_ref(), self.norm.weight(), self.norm.eps())?;
        launches += 1;
        Ok((hidden, launches))
    }
}

impl DecoderLayer {
    /// One layer of the packed pass: the residual stream after attention, and the MLP's output,
    /// which the next layer's (or the final) norm adds in the same kernel.
    fn forward_packed(
        &self,
        x: &Tensor,
        delta: Option<&Tensor>,
        input: &PackedInput,
        task: Option<usize>,
        launches: &mut u64,
    ) -> Result<(Tensor, Tensor)> {
        let attn = &self.self_attn;
        let (nh, nkv, d) = (attn.num_heads, attn.num_kv_heads, attn.head_dim);
        let norm = &self.input_layernorm;
        let (x, h) = fused::add_rms_norm(x, delta, norm.weight(), norm.eps())?;
        let qkv = attn.qkv_proj.forward_task_unbiased(&h, task)?;
        let bias = attn
            .qkv_proj
            .bias()
            .ok_or_else(|| candle_core::Error::Msg("q/k/v projections without bias".into()))?;
        fused::rope_qkv(&qkv, bias, &input.cos_sin, nh, nkv, d)?;
        let o = fused::varlen_attention(&qkv, &input.seqs, nh, nkv, d, 1.0 / (d as f32).sqrt())?;
        let a = attn.o_proj.forward_task(&o, task)?;
        let norm = &self.post_attention_layernorm;
        let (x, h) = fused::add_rms_norm(&x, Some(&a), norm.weight(), norm.eps())?;
        *launches += 1 + attn.qkv_proj.launches(task) + 2 + attn.o_proj.launches(task) + 1;
        let mlp = self.mlp.forward_packed(&h, task, launches)?;
        Ok((x, mlp))
    }
}

impl Mlp {
    /// The MLP over packed rows, in chunks of [`PACKED_MLP_CHUNK`] tokens.
    fn forward_packed(
        &self,
        h: &Tensor,
        task: Option<usize>,
        launches: &mut u64,
    ) -> Result<Tensor> {
        let tokens = h.dim(0)?;
        let mut outs = Vec::with_capacity(tokens.div_ceil(PACKED_MLP_CHUNK));
        let mut start = 0;
        while start < tokens {
            let n = PACKED_MLP_CHUNK.min(tokens - start);
            let part = h.narrow(0, start, n)?;
            let gate_up = self.gate_up_proj.forward_task(&part, task)?;
            let act = fused::swiglu(&gate_up)?;
            outs.push(self.down_proj.forward_task(&act, task)?);
            *launches += self.gate_up_proj.launches(task) + 1 + self.down_proj.launches(task);
            start += n;
        }
        if outs.len() == 1 {
            return Ok(outs.pop().expect("one chunk"));
        }
        *launches += 1;
        Tensor::cat(&outs, 0)
    }
}

/// Position ids for a text-only batch: `cumsum(mask) − 1` in all three components, padded
/// slots set to 1 (what jina computes through `get_rope_index`). `mask` is `[B][L]`.
pub fn text_position_ids(mask: &[Vec<u32>], device: &Device) -> Result<Tensor> {
    let b = mask.len();
    let l = mask.first().map_or(0, |r| r.len());
    let mut row_major = Vec::with_capacity(b * l);
    for row in mask {
        let mut seen = 0i64;
        for &m in row {
            if m != 0 {
                row_major.push(seen);
                seen += 1;
            } else {
                row_major.push(1);
            }
        }
    }
    let one = Tensor::from_vec(row_major, (1, b, l), device)?;
    Tensor::cat(&[&one, &one, &one], 0)
}
