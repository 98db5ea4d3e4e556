//! The Qwen2.5-VL vision tower: patch embedding, 2-D rotary, window attention, PatchMerger.
//!
//! Input is the flat `pixel_values [num_patches, C·T·P·P]` of every image in the batch, in the
//! processor's merge-unit order, plus each image's `[t, h, w]` patch grid. Output is one row per
//! merged 2×2 unit, image after image, in row-major order within each image: the order in which
//! the `<|image_pad|>` slots of the prompt are filled. Attention runs per segment (a window of
//! 4×4 merged units, or a whole image in the full-attention blocks), so no N×N mask is built.
//!
//! Two attention paths compute the same thing. The varlen path (the default on a GPU) packs every
//! window of every image end to end and runs each block's attention as one launch of the fused
//! varlen kernel over all of them (`cu_seqlens` as flash-attention's varlen call takes them:
//! no padding to the largest window or image, scores never stored), with the projection bias and
//! the 2-D rotary applied by one fused kernel. The segment path (the default on the CPU, where
//! BLAS matmuls beat the kernel's CPU twin) runs consecutive segments of equal length as one
//! batched matmul each.
//! Reference: `Qwen2_5_VisionTransformerPretrainedModel` and `transformers.vision_utils` in
//! transformers 5.17
//! <https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py#L391-L494>.

use candle_core::{DType, IndexOp, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::Deserialize;

use crate::layers::fused::{self, VarlenSeqs};
use crate::layers::RmsNorm;

/// The vision RMSNorm epsilon is fixed in the modeling code, not read from the config.
const VISION_RMS_EPS: f64 = 1e-6;

/// The resolved `vision_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub depth: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub patch_size: usize,
    pub temporal_patch_size: usize,
    pub spatial_merge_size: usize,
    /// Attention window side in input pixels (112 → 4×4 merged units).
    pub window_size: usize,
    pub in_channels: usize,
    /// Width of the merged features; equals the text hidden size.
    pub out_hidden_size: usize,
    /// Blocks that attend over the whole image instead of one window.
    pub fullatt_block_indexes: Vec<usize>,
    pub rope_theta: f64,
}

#[derive(Deserialize)]
struct RawRope {
    rope_theta: Option<f64>,
}

#[derive(Deserialize)]
struct RawVision {
    depth: Option<usize>,
    hidden_size: Option<usize>,
    num_heads: Option<usize>,
    intermediate_size: Option<usize>,
    patch_size: Option<usize>,
    temporal_patch_size: Option<usize>,
    spatial_merge_size: Option<usize>,
    window_size: Option<usize>,
    in_channels: Option<usize>,
    in_chans: Option<usize>,
    out_hidden_size: Option<usize>,
    fullatt_block_indexes: Option<Vec<usize>>,
    hidden_act: Option<String>,
    rope_parameters: Option<RawRope>,
}

#[derive(Deserialize)]
struct RawTop {
    vision_config: Option<RawVision>,
}

impl VisionConfig {
    /// Reads `vision_config` from a `config.json` body; `None` when the checkpoint has none
    /// (a text-only export). Missing fields take transformers' `Qwen2_5_VLVisionConfig`
    /// defaults, except the two widths, which differ between model sizes.
    pub fn from_json(json: &str) -> std::result::Result<Option<Self>, String> {
        let top: RawTop = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let Some(v) = top.vision_config else {
            return Ok(None);
        };
        if let Some(act) = v.hidden_act.as_deref() {
            if act != "silu" {
                return Err(format!(
                    "vision hidden_act {act:?} is not supported (only silu)"
                ));
            }
        }
        let c = VisionConfig {
            depth: v.depth.unwrap_or(32),
            hidden_size: v
                .hidden_size
                .ok_or("vision_config: missing field `hidden_size`")?,
            num_heads: v.num_heads.unwrap_or(16),
            intermediate_size: v.intermediate_size.unwrap_or(3420),
            patch_size: v.patch_size.unwrap_or(14),
            temporal_patch_size: v.temporal_patch_size.unwrap_or(2),
            spatial_merge_size: v.spatial_merge_size.unwrap_or(2),
            window_size: v.window_size.unwrap_or(112),
            in_channels: v.in_channels.or(v.in_chans).unwrap_or(3),
            out_hidden_size: v
                .out_hidden_size
                .ok_or("vision_config: missing field `out_hidden_size`")?,
            fullatt_block_indexes: v.fullatt_block_indexes.unwrap_or(vec![7, 15, 23, 31]),
            rope_theta: v
                .rope_parameters
                .and_then(|r| r.rope_theta)
                .unwrap_or(10_000.0),
        };
        if c.num_heads == 0 || !c.hidden_size.is_multiple_of(c.num_heads) {
            return Err(format!(
                "vision hidden_size {} is not divisible by num_heads {}",
                c.hidden_size, c.num_heads
            ));
        }
        if !c.head_dim().is_multiple_of(4) {
            return Err(format!(
                "vision head_dim {} must be a multiple of 4 (2-D rotary)",
                c.head_dim()
            ));
        }
        if c.patch_size == 0 || c.spatial_merge_size == 0 || c.window_merged() == 0 {
            return Err(
                "vision patch_size, spatial_merge_size and window_size must be positive, \
                        with window_size ≥ patch_size·spatial_merge_size"
                    .into(),
            );
        }
        Ok(Some(c))
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Values per patch row of `pixel_values`.
    pub fn patch_dim(&self) -> usize {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }

    /// Patches per merged token (4).
    pub fn merge_unit(&self) -> usize {
        self.spatial_merge_size * self.spatial_merge_size
    }

    /// Window side in merged units (112 / 2 / 14 = 4).
    pub fn window_merged(&self) -> usize {
        self.window_size / self.spatial_merge_size / self.patch_size
    }
}

/// Which patches attend to which: the window permutation and the segment boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowLayout {
    /// Merged-token order used inside the tower: window after window, row-major within a
    /// window, offset by the merged tokens of the images before.
    pub window_index: Vec<usize>,
    /// Patch boundaries of the windows (leading 0, empty windows dropped).
    pub cu_window_seqlens: Vec<usize>,
    /// Patch boundaries of the images (frames) for full attention (leading 0).
    pub cu_seqlens: Vec<usize>,
}

/// `get_vision_window_index` and `get_vision_cu_seqlens` of transformers 5.17.
///
/// Each image's merged grid is padded up to whole windows. Like the reference, a side already
/// divisible by the window gets a whole extra (empty) window row or column; those produce
/// repeated boundaries, which are dropped as `unique_consecutive` does.
pub fn window_layout(grids: &[[usize; 3]], cfg: &VisionConfig) -> WindowLayout {
    let m = cfg.spatial_merge_size;
    let ws = cfg.window_merged();
    let unit = cfg.merge_unit();
    let mut window_index = Vec::new();
    let mut cu = vec![0usize];
    let mut cu_seqlens = vec![0usize];
    let mut offset = 0;
    for &[t, gh, gw] in grids {
        let (lh, lw) = (gh / m, gw / m);
        let nwh = (lh + ws - lh % ws) / ws;
        let nww = (lw + ws - lw % ws) / ws;
        for frame in 0..t {
            let base = offset + frame * lh * lw;
            for wh in 0..nwh {
                for ww in 0..nww {
                    let mut count = 0;
                    for r in (wh * ws..(wh + 1) * ws).filter(|&r| r < lh) {
                        for c in (ww * ws..(ww + 1) * ws).filter(|&c| c < lw) {
                            window_index.push(base + r * lw + c);
                            count += 1;
                        }
                    }
                    let last = *cu.last().expect("cu starts with 0: this is a bug");
                    cu.push(last + count * unit);
                }
            }
            let last = *cu_seqlens
                .last()
                .expect("cu_seqlens starts with 0: this is a bug");
            cu_seqlens.push(last + gh * gw);
        }
        offset += t * lh * lw;
    }
    cu.dedup();
    WindowLayout {
        window_index,
        cu_window_seqlens: cu,
        cu_seqlens,
    }
}

/// 2-D rotary angles per patch, in the processor's patch order: the first half of the rotary
/// slots turn with the patch row, the second half with the column (`Qwen2_5_VLVisionRotaryEmbedding`,
/// rope type "axial"). Returns `(cos, sin)` as `[num_patches, head_dim/2]` f32 host vectors.
fn rotary_tables(grids: &[[usize; 3]], cfg: &VisionConfig) -> (Vec<f32>, Vec<f32>) {
    let spatial_dim = cfg.head_dim() / 2;
    // inv_freq[i] = θ^(−2i/spatial_dim), computed in f32 like the reference buffer.
    let inv_freq: Vec<f32> = (0..spatial_dim / 2)
        .map(|i| 1.0 / (cfg.rope_theta as f32).powf((2 * i) as f32 / spatial_dim as f32))
        .collect();
    let m = cfg.spatial_merge_size;
    let total: usize = grids.iter().map(|g| g.iter().product::<usize>()).sum();
    let mut cos = Vec::with_capacity(total * spatial_dim);
    let mut sin = Vec::with_capacity(total * spatial_dim);
    for &[t, gh, gw] in grids {
        for _ in 0..t {
            for bh in 0..gh / m {
                for bw in 0..gw / m {
                    for ih in 0..m {
                        for iw in 0..m {
                            let (row, col) = ((bh * m + ih) as f32, (bw * m + iw) as f32);
                            for pos in [row, col] {
                                for f in &inv_freq {
                                    let a = pos * f;
                                    cos.push(a.cos());
                                    sin.push(a.sin());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (cos, sin)
}

/// `Linear` with bias, the layout of every vision projection.
fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let w = vb.get((out_dim, in_dim), "weight")?;
    let b = vb.get(out_dim, "bias")?;
    Ok(Linear::new(w, Some(b)))
}

#[derive(Debug, Clone)]
struct VisionAttention {
    qkv: Linear,
    proj: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl VisionAttention {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(VisionAttention {
            qkv: linear(h, 3 * h, vb.pp("qkv"))?,
            proj: linear(h, h, vb.pp("proj"))?,
            num_heads: cfg.num_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `x [N, hidden]`; `cos`/`sin` `[N, head_dim/2]` f32; `cu` the segment boundaries;
    /// `max_elems` caps the attention scores computed at once.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        cu: &[usize],
        max_elems: usize,
    ) -> Result<Tensor> {
        let (n, hidden) = x.dims2()?;
        let (nh, d) = (self.num_heads, self.head_dim);
        let dtype = x.dtype();
        // [N, 3, nh, d] → three [1, nh, N, d].
        let qkv = self.qkv.forward(x)?.reshape((n, 3, nh, d))?;
        let part = |i: usize| -> Result<Tensor> {
            qkv.i((.., i))?.transpose(0, 1)?.unsqueeze(0)?.contiguous()
        };
        // Rotary in f32 whatever the model dtype, as the reference does.
        let rot = |t: Tensor| -> Result<Tensor> {
            candle_nn::rotary_emb::rope(&t.to_dtype(DType::F32)?, cos, sin)?.to_dtype(dtype)
        };
        let q = rot(part(0)?)?;
        let k_rot = rot(part(1)?)?;
        let v = part(2)?;
        let scale = 1.0 / (d as f64).sqrt();
        // Consecutive segments of equal length (most windows are full 4×4 units) run as one
        // batched matmul: the run is viewed as [k, nh, len, d] instead of k separate calls. Runs
        // and, for a large image in a full-attention block, query rows are chunked so one score
        // tensor stays under `max_elems`.
        let mut outs = Vec::new();
        let mut seg = 0;
        while seg + 1 < cu.len() {
            let (s, len) = (cu[seg], cu[seg + 1] - cu[seg]);
            let k_max = (max_elems / (nh * len * len).max(1)).max(1);
            let mut k = 1;
            while k < k_max && seg + k + 1 < cu.len() && cu[seg + k + 1] - cu[seg + k] == len {
                k += 1;
            }
            let run = |t: &Tensor| -> Result<Tensor> {
                t.narrow(2, s, k * len)?
                    .reshape((nh, k, len, d))?
                    .transpose(0, 1)?
                    .contiguous()
            };
            let (qs, ks, vs) = (run(&q)?, run(&k_rot)?, run(&v)?);
            let kt = ks.t()?;
            let chunk = (max_elems / (k * nh * len).max(1)).clamp(1, len.max(1));
            let mut parts = Vec::with_capacity(len.div_ceil(chunk));
            let mut q0 = 0;
            while q0 < len {
                let c = chunk.min(len - q0);
                let qc = if c == len {
                    qs.clone()
                } else {
                    qs.narrow(2, q0, c)?.contiguous()?
                };
                let scores = (qc.matmul(&kt)? * scale)?.to_dtype(DType::F32)?;
                let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(dtype)?;
                parts.push(probs.matmul(&vs)?);
                q0 += c;
            }
            let o = if parts.len() == 1 {
                parts.pop().expect("one chunk was pushed: this is a bug")
            } else {
                Tensor::cat(&parts, 2)?
            };
            // [k, nh, len, d] back to [1, nh, k·len, d].
            outs.push(o.transpose(0, 1)?.reshape((1, nh, k * len, d))?);
            seg += k;
        }
        let o = Tensor::cat(&outs, 2)?
            .squeeze(0)?
            .transpose(0, 1)?
            .reshape((n, hidden))?;
        self.proj.forward(&o)
    }

    /// The varlen path: `cos_sin [N, 2, head_dim/2]` f32, `seqs` the segments. Three launches
    /// besides the two GEMMs: none per window.
    fn forward_varlen(&self, x: &Tensor, cos_sin: &Tensor, seqs: &VarlenSeqs) -> Result<Tensor> {
        let (nh, d) = (self.num_heads, self.head_dim);
        let bias = self
            .qkv
            .bias()
            .ok_or_else(|| candle_core::Error::Msg("vision qkv without bias".into()))?;
        // [N, 3·nh·d] in the kernel's layout already: query heads, key heads, value heads.
        let qkv = x.matmul(&self.qkv.weight().t()?)?;
        fused::rope_qkv(&qkv, bias, cos_sin, nh, nh, d)?;
        let o =
            fused::varlen_attention_bidirectional(&qkv, seqs, nh, nh, d, 1.0 / (d as f32).sqrt())?;
        self.proj.forward(&o)
    }
}

/// SwiGLU with biases (not the fc1/fc2 GELU MLP of Qwen2-VL). Gate and up are one projection
/// (their weights and biases stacked at load): one GEMM instead of two.
#[derive(Debug, Clone)]
struct VisionMlp {
    gate_up_proj: Linear,
    down_proj: Linear,
    intermediate: usize,
}

impl VisionMlp {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let gate = linear(h, i, vb.pp("gate_proj"))?;
        let up = linear(h, i, vb.pp("up_proj"))?;
        let bias = |l: &Linear| {
            l.bias()
                .expect("linear() sets a bias: this is a bug")
                .clone()
        };
        let gate_up_proj = Linear::new(
            Tensor::cat(&[gate.weight(), up.weight()], 0)?,
            Some(Tensor::cat(&[bias(&gate), bias(&up)], 0)?),
        );
        Ok(VisionMlp {
            gate_up_proj,
            down_proj: linear(i, h, vb.pp("down_proj"))?,
            intermediate: i,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate_up = self.gate_up_proj.forward(x)?;
        let i = self.intermediate;
        let gate = candle_nn::ops::silu(&gate_up.narrow(1, 0, i)?)?;
        let up = gate_up.narrow(1, i, i)?;
        self.down_proj.forward(&(gate * up)?)
    }

    /// The varlen path's MLP: the product is one fused kernel.
    fn forward_fused(&self, x: &Tensor) -> Result<Tensor> {
        self.down_proj
            .forward(&fused::swiglu(&self.gate_up_proj.forward(x)?)?)
    }
}

#[derive(Debug, Clone)]
struct VisionBlock {
    norm1: RmsNorm,
    norm2: RmsNorm,
    attn: VisionAttention,
    mlp: VisionMlp,
}

impl VisionBlock {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(VisionBlock {
            norm1: RmsNorm::new(h, VISION_RMS_EPS, vb.pp("norm1"))?,
            norm2: RmsNorm::new(h, VISION_RMS_EPS, vb.pp("norm2"))?,
            attn: VisionAttention::new(cfg, vb.pp("attn"))?,
            mlp: VisionMlp::new(cfg, vb.pp("mlp"))?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        cu: &[usize],
        max_elems: usize,
    ) -> Result<Tensor> {
        let h = self
            .attn
            .forward(&self.norm1.forward(x)?, cos, sin, cu, max_elems)?;
        let x = (x + h)?;
        let h = self.mlp.forward(&self.norm2.forward(&x)?)?;
        x + h
    }

    /// The block on the varlen path; the residual adds are fused with the next norm.
    fn forward_varlen(&self, x: &Tensor, cos_sin: &Tensor, seqs: &VarlenSeqs) -> Result<Tensor> {
        let (n1, n2) = (&self.norm1, &self.norm2);
        let (_, h) = fused::add_rms_norm(x, None, n1.weight(), n1.eps())?;
        let a = self.attn.forward_varlen(&h, cos_sin, seqs)?;
        let (x, h) = fused::add_rms_norm(x, Some(&a), n2.weight(), n2.eps())?;
        x + self.mlp.forward_fused(&h)?
    }
}

/// RMSNorm per patch, concatenate each 2×2 unit, then Linear → exact (erf) GELU → Linear.
#[derive(Debug, Clone)]
struct PatchMerger {
    ln_q: RmsNorm,
    fc1: Linear,
    fc2: Linear,
    merged_in: usize,
}

impl PatchMerger {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let merged_in = cfg.hidden_size * cfg.merge_unit();
        Ok(PatchMerger {
            ln_q: RmsNorm::new(cfg.hidden_size, VISION_RMS_EPS, vb.pp("ln_q"))?,
            fc1: linear(merged_in, merged_in, vb.pp("mlp.0"))?,
            fc2: linear(merged_in, cfg.out_hidden_size, vb.pp("mlp.2"))?,
            merged_in,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.ln_q.forward(x)?;
        let n = x.dim(0)? * x.dim(1)? / self.merged_in;
        let x = x.reshape((n, self.merged_in))?;
        // nn.GELU() is the erf form; candle's `gelu` is the tanh approximation.
        self.fc2.forward(&self.fc1.forward(&x)?.gelu_erf()?)
    }
}

/// The vision tower.
#[derive(Debug, Clone)]
pub struct VisionModel {
    /// Conv3d kernel = stride = (T, P, P) flattened to one `[hidden, C·T·P·P]` matrix: the
    /// patch rows are already flattened in the kernel's (C, T, P, P) order.
    patch_embed: Tensor,
    blocks: Vec<VisionBlock>,
    merger: PatchMerger,
    cfg: VisionConfig,
    max_attn_elems: usize,
    /// Attention on the fused varlen kernel (one launch per block) instead of batched matmuls.
    varlen: bool,
}

/// Attention score elements computed at once (32 Mi floats = 128 MiB in f32). A full-size
/// image in a full-attention block has 16 heads × 3072² ≈ 151 M scores, so it runs in chunks.
const DEFAULT_MAX_ATTN_ELEMS: usize = 32 << 20;

impl VisionModel {
    /// `vb` is rooted at the tower (`visual` or `model.visual`).
    pub fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let (p, t) = (cfg.patch_size, cfg.temporal_patch_size);
        let patch_embed = vb
            .pp("patch_embed.proj")
            .get((cfg.hidden_size, cfg.in_channels, t, p, p), "weight")?
            .reshape((cfg.hidden_size, cfg.patch_dim()))?;
        let blocks = (0..cfg.depth)
            .map(|i| VisionBlock::new(cfg, vb.pp("blocks").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(VisionModel {
            patch_embed,
            blocks,
            merger: PatchMerger::new(cfg, vb.pp("merger"))?,
            cfg: cfg.clone(),
            max_attn_elems: DEFAULT_MAX_ATTN_ELEMS,
            varlen: vb.device().is_cuda(),
        })
    }

    /// Runs attention on the fused varlen kernel (the default on a GPU) or as batched matmuls
    /// per run of equal-length segments (the default on the CPU).
    pub fn set_varlen_attention(&mut self, on: bool) {
        self.varlen = on;
    }

    pub fn varlen_attention(&self) -> bool {
        self.varlen
    }

    /// Caps the attention score elements per matmul; smaller values mean more chunks.
    pub fn set_max_attention_elements(&mut self, elems: usize) {
        self.max_attn_elems = elems.max(1);
    }

    pub fn config(&self) -> &VisionConfig {
        &self.cfg
    }

    pub fn dtype(&self) -> DType {
        self.patch_embed.dtype()
    }

    /// `pixel_values [N, patch_dim]` → `[N, hidden]`, one matmul.
    pub fn patch_embed(&self, pixel_values: &Tensor) -> Result<Tensor> {
        pixel_values
            .to_dtype(self.dtype())?
            .matmul(&self.patch_embed.t()?)
    }

    /// Runs the tower over all images of a batch and returns the merged features
    /// `[Σ tokens, out_hidden]` in prompt order.
    pub fn forward(&self, pixel_values: &Tensor, grids: &[[usize; 3]]) -> Result<Tensor> {
        let cfg = &self.cfg;
        let n: usize = grids.iter().map(|g| g.iter().product::<usize>()).sum();
        let (rows, width) = pixel_values.dims2()?;
        if rows != n || width != cfg.patch_dim() {
            candle_core::bail!(
                "pixel_values is {rows}x{width}, the grids need {n}x{}",
                cfg.patch_dim()
            );
        }
        if let Some(g) = grids
            .iter()
            .find(|g| g[1] % cfg.spatial_merge_size != 0 || g[2] % cfg.spatial_merge_size != 0)
        {
            candle_core::bail!("grid {g:?} is not a multiple of the merge size");
        }
        let layout = window_layout(grids, cfg);
        let unit = cfg.merge_unit();
        // Patch order inside the tower: every patch of merged token window_index[k] in turn.
        let perm: Vec<u32> = layout
            .window_index
            .iter()
            .flat_map(|&w| (0..unit).map(move |j| (w * unit + j) as u32))
            .collect();
        let dev = pixel_values.device();
        let perm_t = Tensor::from_vec(perm, n, dev)?;
        let (cos, sin) = rotary_tables(grids, cfg);
        let half = cfg.head_dim() / 2;
        let cos = Tensor::from_vec(cos, (n, half), dev)?.index_select(&perm_t, 0)?;
        let sin = Tensor::from_vec(sin, (n, half), dev)?.index_select(&perm_t, 0)?;

        let mut x = self.patch_embed(pixel_values)?.index_select(&perm_t, 0)?;
        if self.varlen {
            let lens =
                |cu: &[usize]| -> Vec<usize> { cu.windows(2).map(|w| w[1] - w[0]).collect() };
            let windows = VarlenSeqs::new(&lens(&layout.cu_window_seqlens), dev)?;
            let images = VarlenSeqs::new(&lens(&layout.cu_seqlens), dev)?;
            let cos_sin = Tensor::stack(&[&cos, &sin], 1)?;
            for (i, block) in self.blocks.iter().enumerate() {
                let _span = tracing::trace_span!("vision_block_varlen", i).entered();
                let seqs = if cfg.fullatt_block_indexes.contains(&i) {
                    &images
                } else {
                    &windows
                };
                x = block.forward_varlen(&x, &cos_sin, seqs)?;
            }
        } else {
            for (i, block) in self.blocks.iter().enumerate() {
                let _span = tracing::trace_span!("vision_block", i).entered();
                let cu = if cfg.fullatt_block_indexes.contains(&i) {
                    &layout.cu_seqlens
                } else {
                    &layout.cu_window_seqlens
                };
                x = block.forward(&x, &cos, &sin, cu, self.max_attn_elems)?;
            }
        }
        let merged = self.merger.forward(&x)?;
        // Undo the window permutation: merged row k holds token window_index[k].
        let mut inverse = vec![0u32; layout.window_index.len()];
        for (k, &w) in layout.window_index.iter().enumerate() {
            inverse[w] = k as u32;
        }
        let inverse = Tensor::from_vec(inverse, layout.window_index.len(), dev)?;
        merged.index_select(&inverse, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VisionConfig {
        VisionConfig::from_json(
            r#"{"vision_config": {"hidden_size": 32, "num_heads": 2, "out_hidden_size": 64}}"#,
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn window_layout_of_448_square() {
        // Spec §3.1: grid 32×32 → merged 16×16 → padded to 20×20: 16 non-empty windows of
        // 16 merged tokens (64 patches) each.
        let l = window_layout(&[[1, 32, 32]], &cfg());
        assert_eq!(l.cu_window_seqlens.len(), 17);
        assert!(l.cu_window_seqlens.windows(2).all(|w| w[1] - w[0] == 64));
        assert_eq!(l.cu_seqlens, vec![0, 1024]);
        let mut sorted = l.window_index.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..256).collect::<Vec<_>>());
        assert_eq!(&l.window_index[..5], &[0, 1, 2, 3, 16]);
    }

    #[test]
    fn config_defaults_and_legacy_in_chans() {
        let c = cfg();
        assert_eq!((c.depth, c.window_merged(), c.patch_dim()), (32, 4, 1176));
        let c = VisionConfig::from_json(
            r#"{"vision_config": {"hidden_size": 32, "num_heads": 2, "out_hidden_size": 64, "in_chans": 1}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.in_channels, 1);
        assert!(VisionConfig::from_json("{}").unwrap().is_none());
    }
}
