//! jina-embeddings-v4 behind [`EmbeddingModel`]: prompts and tokenization, the text forward pass
//! (packed on the fused kernels on a GPU, padded on candle's ops with the fused CPU attention on
//! the CPU), and the image path (vision tower, features at the `<|image_pad|>` slots of jina's
//! image prompt, M-RoPE positions, pooling over the vision span; spec §2.3, §3, §4.1), and late
//! chunking (spans of one pass pooled as the single-vector head pools a whole input).

use std::any::Any;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{Device, Tensor};

use super::LoadOptions;
use crate::embedding::{Embedding, MultiVector};
use crate::error::{Error, Result};
use crate::image::{Patches, PreprocessorConfig};
use crate::late_chunking::{pool_windows, row_starts, TokenizedText};
use crate::layers::fused::VarlenSeqs;
use crate::loading::Checkpoint;
use crate::model::{no_images, EmbeddingModel, ModelInfo, ModelKind, RunSpec};
use crate::models::jina_v4::{JinaConfig, JinaOutput, JinaV4, PackedOutput};
use crate::models::qwen2_5_vl::{multimodal_position_ids, text_position_ids};
use crate::prompt::{ImagePrompt, PromptKind, TextTokenizer, Truncation, DEFAULT_MAX_LENGTH};

/// jina-embeddings-v4 with its tokenizer and image settings.
pub struct JinaEmbedder {
    model: JinaV4,
    info: ModelInfo,
    tokenizer: TextTokenizer,
    preprocessor: PreprocessorConfig,
    /// `None` when the checkpoint cannot take images (no tower or no image token ids).
    image_prompt: Option<ImagePrompt>,
    device: Device,
    pad_id: u32,
    /// Text batches run packed on the fused kernels (the default on a GPU) instead of padded.
    packed: bool,
    /// Kernels the last packed pass launched.
    last_launches: AtomicU64,
}

impl JinaEmbedder {
    /// Loads a checkpoint laid out as the published repository (config, shards, adapters,
    /// tokenizer, preprocessor config).
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Self> {
        let ckpt = Checkpoint::open(dir)?;
        if ckpt.adapter_config.is_none() {
            return Err(Error::Unsupported(format!(
                "{}: adapters/adapter_config.json is missing; jina-embeddings-v4 needs its task adapters",
                dir.display()
            )));
        }
        let tokenizer = TextTokenizer::from_file(&ckpt.tokenizer_path())?;
        let started = std::time::Instant::now();
        let mut model = ckpt.load_model(&opts.device, opts.dtype)?;
        if let Some(task) = &opts.merge_task {
            let t = config_task_index(&ckpt.config, task)?;
            model.merge_task(t)?;
        }
        tracing::info!(
            model = %dir.display(),
            dtype = ?opts.dtype,
            device = ?opts.device,
            merged = ?opts.merge_task,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "encoder loaded"
        );
        let special = &ckpt.config.text.special;
        let pad_id = special.pad_token_id.or(special.eos_token_id).unwrap_or(0);
        let image_prompt = match (
            model.vision(),
            special.image_token_id,
            special.vision_start_token_id,
            special.vision_end_token_id,
        ) {
            (Some(_), Some(_), Some(start), Some(end)) => {
                Some(ImagePrompt::new(&tokenizer, start, end)?)
            }
            _ => None,
        };
        let preprocessor = PreprocessorConfig::from_dir(dir)?;
        let packed = opts.device.is_cuda();
        let info = info(&model, image_prompt.is_some(), packed);
        Ok(JinaEmbedder {
            model,
            info,
            tokenizer,
            preprocessor,
            image_prompt,
            device: opts.device.clone(),
            pad_id,
            packed,
            last_launches: AtomicU64::new(0),
        })
    }

    /// Packed text and image-prompt batches on the fused kernels (on), or padded ones on candle's
    /// generic ops (off). Both compute the same vectors; the GPU check compares them.
    pub fn set_packed(&mut self, on: bool) {
        self.packed = on;
        self.info.packs_batches = on;
    }

    /// The vision tower's attention on the varlen kernel (the default on a GPU) or as batched
    /// matmuls per run of equal windows (the default on the CPU); false when there is no tower.
    pub fn set_varlen_vision(&mut self, on: bool) -> bool {
        match self.model.vision_mut() {
            Some(v) => {
                v.set_varlen_attention(on);
                true
            }
            None => false,
        }
    }

    /// Kernels the last packed text pass launched (0 before the first).
    pub fn last_launches(&self) -> u64 {
        self.last_launches.load(Ordering::Relaxed)
    }

    /// One pass over the rows laid end to end, on the fused kernels.
    fn embed_ids_packed(&self, rows: &[&[u32]], spec: RunSpec) -> Result<Vec<Embedding>> {
        let input = self
            .model
            .text_model()
            .packed_text_input(rows, &self.device)?;
        let task = self.model.has_adapters().then_some(spec.task);
        let out = self.model.forward_packed(&input, task)?;
        self.packed_embeddings(&out, rows, spec)
    }

    /// Host-side heads output of a packed pass: rows end to end in `out.multi`.
    fn packed_embeddings<R: AsRef<[u32]>>(
        &self,
        out: &PackedOutput,
        rows: &[R],
        spec: RunSpec,
    ) -> Result<Vec<Embedding>> {
        self.last_launches.store(out.launches, Ordering::Relaxed);
        let single = out.single.to_vec2::<f32>()?;
        let multi = out.multi.flatten_all()?.to_vec1::<f32>()?;
        let pdim = self.config().multi_vector_projector_dim;
        let mut start = 0;
        Ok(rows
            .iter()
            .zip(single)
            .map(|(r, single)| {
                let len = r.as_ref().len();
                let data = multi[start * pdim..(start + len) * pdim].to_vec();
                start += len;
                let mut e = Embedding {
                    single,
                    multi: MultiVector { dim: pdim, data },
                    tokens: len,
                };
                e.truncate(spec.dims);
                e
            })
            .collect())
    }

    /// Image prompts laid end to end on the fused kernels (the default on a GPU): no padding to
    /// the longest prompt, 3-D M-RoPE angles per token, one gather puts the tower's features at
    /// the pad rows, and the single vectors average each prompt's vision span.
    fn embed_patches_packed(&self, patches: &[&Patches], spec: RunSpec) -> Result<Vec<Embedding>> {
        let batch = self.image_batch(patches)?;
        let text = self.model.text_model();
        let merge = self.preprocessor.merge_size;
        let row_refs: Vec<&[u32]> = batch.rows.iter().map(|r| r.as_slice()).collect();
        let row_grids: Vec<Vec<[usize; 3]>> = batch.grids.iter().map(|g| vec![*g]).collect();
        let longest = row_refs.iter().map(|r| r.len()).max().unwrap_or(0);
        // Positions on the host: [3][B][longest], each row's real tokens taken end to end.
        let padded = multimodal_position_ids(
            &row_refs,
            &row_grids,
            batch.image_id,
            merge,
            longest,
            &Device::Cpu,
        )?
        .to_vec3::<i64>()?;
        let mut components: [Vec<i64>; 3] = Default::default();
        for (c, comp) in components.iter_mut().enumerate() {
            for (b, r) in row_refs.iter().enumerate() {
                comp.extend_from_slice(&padded[c][b][..r.len()]);
            }
        }
        let input = text.packed_input(
            &row_refs,
            [&components[0], &components[1], &components[2]],
            &self.device,
        )?;
        let n: usize = row_refs.iter().map(|r| r.len()).sum();
        // Token rows index the embeddings, pad rows the features appended after them.
        let mut next = 0;
        let index: Vec<u32> = row_refs
            .iter()
            .flat_map(|r| r.iter())
            .enumerate()
            .map(|(i, &id)| {
                if id == batch.image_id {
                    next += 1;
                    (n + next - 1) as u32
                } else {
                    i as u32
                }
            })
            .collect();
        let n_feat = batch.features.dim(0)?;
        if next != n_feat {
            return Err(Error::Inference(format!(
                "{next} image pad tokens but {n_feat} image features"
            )));
        }
        let embeds = text.embed(&input.ids)?;
        let table = Tensor::cat(&[&embeds, &batch.features.to_dtype(embeds.dtype())?], 0)?;
        let x = table.index_select(&Tensor::from_vec(index, n, &self.device)?, 0)?;
        // The single vector pools <|vision_start|> ..= <|vision_end|> of each prompt.
        let prompt = self.image_prompt.as_ref().ok_or_else(no_images)?;
        let span_start = prompt.before.len() - 1;
        let mut pool_rows = Vec::new();
        let mut pool_lens = Vec::with_capacity(patches.len());
        let mut offset = 0;
        for (r, p) in row_refs.iter().zip(patches) {
            let span_end = prompt.before.len() + p.num_tokens(merge);
            pool_rows.extend((offset + span_start..=offset + span_end).map(|i| i as u32));
            pool_lens.push(span_end - span_start + 1);
            offset += r.len();
        }
        let pool_n = pool_rows.len();
        let pool_rows = Tensor::from_vec(pool_rows, pool_n, &self.device)?;
        let pool = VarlenSeqs::new(&pool_lens, &self.device)?;
        let task = self.model.has_adapters().then_some(spec.task);
        let out = self
            .model
            .forward_packed_embeds(x, &input, &pool_rows, &pool, task)?;
        self.packed_embeddings(&out, &batch.rows, spec)
    }

    pub fn model(&self) -> &JinaV4 {
        &self.model
    }

    /// One forward pass over right-padded text rows on candle's ops (the CPU's text path).
    fn forward_padded(&self, rows: &[&[u32]], spec: RunSpec) -> Result<JinaOutput> {
        let b = rows.len();
        let l = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * l);
        let mut mask_rows = Vec::with_capacity(b);
        for r in rows {
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(self.pad_id, l - r.len()));
            let mut m = vec![1u32; r.len()];
            m.resize(l, 0);
            mask_rows.push(m);
        }
        let input_ids = Tensor::from_vec(ids, (b, l), &self.device)?;
        let mask_flat: Vec<u32> = mask_rows.iter().flatten().copied().collect();
        let mask = Tensor::from_vec(mask_flat, (b, l), &self.device)?;
        let positions = text_position_ids(&mask_rows, &self.device)?;
        // Loading refuses checkpoints without adapters; a merged model runs its task.
        let task = self.model.has_adapters().then_some(spec.task);
        Ok(self
            .model
            .forward(&input_ids, &mask, &positions, task, false)?)
    }

    pub fn config(&self) -> &JinaConfig {
        self.model.config()
    }

    /// The vision tower over a batch, and each image's prompt ids.
    fn image_batch(&self, patches: &[&Patches]) -> Result<ImageBatch> {
        let prompt = self.image_prompt.as_ref().ok_or_else(no_images)?;
        if patches.is_empty() {
            return Err(Error::InvalidInput("no images to embed".into()));
        }
        let model = &self.model;
        let vision = model
            .vision()
            .expect("image_prompt implies a tower: this is a bug");
        let image_id = model
            .config()
            .text
            .special
            .image_token_id
            .expect("image_prompt implies an image token id: this is a bug");
        let merge = self.preprocessor.merge_size;
        let patch_dim = vision.config().patch_dim();
        if let Some(p) = patches.iter().find(|p| p.patch_dim != patch_dim) {
            return Err(Error::InvalidInput(format!(
                "patches of {} values, the vision tower takes {patch_dim}",
                p.patch_dim
            )));
        }
        let mut pixels = Vec::with_capacity(patches.iter().map(|p| p.data.len()).sum());
        for p in patches {
            pixels.extend_from_slice(&p.data);
        }
        let n_patches = pixels.len() / patch_dim;
        let pixels = Tensor::from_vec(pixels, (n_patches, patch_dim), &self.device)?;
        let grids: Vec<[usize; 3]> = patches.iter().map(|p| p.grid_thw).collect();
        let features = {
            let _span = tracing::debug_span!("vision_tower", images = patches.len()).entered();
            vision.forward(&pixels, &grids)?
        };
        let rows: Vec<Vec<u32>> = patches
            .iter()
            .map(|p| prompt.ids(image_id, p.num_tokens(merge)))
            .collect();
        Ok(ImageBatch {
            features,
            grids,
            rows,
            image_id,
        })
    }

    /// One forward pass over a right-padded batch of image prompts on candle's ops (the CPU's
    /// default); returns the raw model output too (for parity tests).
    pub fn embed_patches_with_output(
        &self,
        patches: &[&Patches],
        spec: RunSpec,
        keep_layer_outputs: bool,
    ) -> Result<(JinaOutput, Vec<Embedding>)> {
        let prompt = self.image_prompt.as_ref().ok_or_else(no_images)?;
        let ImageBatch {
            features,
            grids,
            rows,
            image_id,
        } = self.image_batch(patches)?;
        let merge = self.preprocessor.merge_size;
        let model = &self.model;
        let b = rows.len();
        let l = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * l);
        let mut mask = Vec::with_capacity(b * l);
        let mut pool = Vec::with_capacity(b * l);
        // The single vector pools <|vision_start|> ..= <|vision_end|>.
        let span_start = prompt.before.len() - 1;
        for (r, p) in rows.iter().zip(patches) {
            let span_end = prompt.before.len() + p.num_tokens(merge);
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(self.pad_id, l - r.len()));
            mask.extend((0..l).map(|i| u32::from(i < r.len())));
            pool.extend((0..l).map(|i| u32::from((span_start..=span_end).contains(&i))));
        }
        let row_refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        let row_grids: Vec<Vec<[usize; 3]>> = grids.iter().map(|g| vec![*g]).collect();
        let positions =
            multimodal_position_ids(&row_refs, &row_grids, image_id, merge, l, &self.device)?;
        let input_ids = Tensor::from_vec(ids, (b, l), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, l), &self.device)?;
        let pool = Tensor::from_vec(pool, (b, l), &self.device)?;
        let task = model.has_adapters().then_some(spec.task);
        let out = model.forward_with_images(
            &input_ids,
            &mask,
            &pool,
            &positions,
            &features,
            task,
            keep_layer_outputs,
        )?;
        let embeddings = self.embeddings(&out, &rows, spec)?;
        Ok((out, embeddings))
    }

    /// Host-side heads output: Matryoshka truncation, multi-vectors cut to each row's length.
    fn embeddings<R: AsRef<[u32]>>(
        &self,
        out: &JinaOutput,
        rows: &[R],
        spec: RunSpec,
    ) -> Result<Vec<Embedding>> {
        let single = out.single.to_vec2::<f32>()?;
        let multi = out.multi.to_vec3::<f32>()?;
        let pdim = self.config().multi_vector_projector_dim;
        Ok(rows
            .iter()
            .zip(single)
            .zip(multi)
            .map(|((r, s), m)| {
                let mut e = Embedding {
                    single: s,
                    multi: MultiVector {
                        dim: pdim,
                        data: m.into_iter().take(r.as_ref().len()).flatten().collect(),
                    },
                    tokens: r.as_ref().len(),
                };
                e.truncate(spec.dims);
                e
            })
            .collect())
    }
}

/// A batch through the vision tower: the merged features `[Σ tokens, H]` in prompt order, each
/// image's grid and prompt ids.
struct ImageBatch {
    features: Tensor,
    grids: Vec<[usize; 3]>,
    rows: Vec<Vec<u32>>,
    image_id: u32,
}

fn info(model: &JinaV4, supports_images: bool, packed: bool) -> ModelInfo {
    let cfg = model.config();
    ModelInfo {
        kind: ModelKind::JinaV4,
        dims: cfg.text.hidden_size,
        matryoshka_dims: cfg.matryoshka_dims.clone(),
        default_dims: cfg.truncate_dim,
        normalizes: true,
        packs_batches: packed,
        multi_vector_dim: Some(cfg.multi_vector_projector_dim),
        uses_prompts: true,
        max_length: DEFAULT_MAX_LENGTH,
        vocab_size: cfg.text.vocab_size,
        tasks: match model.merged_task() {
            Some(t) => vec![cfg.task_names[t].clone()],
            None => cfg.task_names.clone(),
        },
        supports_images,
        late_chunking: true,
    }
}

impl EmbeddingModel for JinaEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The index in the checkpoint's task list; with a task merged at load, only that one.
    fn task_index(&self, task: &str) -> Result<usize> {
        let t = config_task_index(self.config(), task)?;
        match self.model.merged_task() {
            Some(m) if m != t => Err(Error::UnknownTask {
                got: task.to_string(),
                valid: self.info.tasks.clone(),
            }),
            _ => Ok(t),
        }
    }

    fn tokenize(
        &self,
        text: &str,
        task: &str,
        prompt: PromptKind,
        trunc: Truncation,
        index: usize,
    ) -> Result<Vec<u32>> {
        self.tokenizer
            .encode_prompted(text, task, prompt, trunc, index)
    }

    /// One forward pass: packed, or right-padded.
    fn embed_ids(&self, rows: &[&[u32]], spec: RunSpec) -> Result<Vec<Embedding>> {
        if self.packed {
            return self.embed_ids_packed(rows, spec);
        }
        let out = self.forward_padded(rows, spec)?;
        self.embeddings(&out, rows, spec)
    }

    /// The prompted text as [`JinaEmbedder::tokenize`] reads it, whole: the head is the tokens
    /// that lie entirely in the prompt (a token that joins the prompt's last space to the text's
    /// first word is the text's), the offsets are relative to `text`.
    fn tokenize_with_offsets(
        &self,
        text: &str,
        task: &str,
        prompt: PromptKind,
        index: usize,
    ) -> Result<TokenizedText> {
        if text.trim().is_empty() {
            return Err(Error::EmptyText { index });
        }
        let prefix = prompt.prefix(task);
        let (ids, offsets, _) = self
            .tokenizer
            .encode_with_offsets(&format!("{prefix}{text}"), false)?;
        let skip = prefix.chars().count();
        let head = offsets.iter().take_while(|o| o.end <= skip).count();
        let offsets = offsets[head..]
            .iter()
            .map(|o| o.start.saturating_sub(skip)..o.end.saturating_sub(skip))
            .collect();
        Ok(TokenizedText {
            ids,
            offsets,
            head,
            tail: 0,
        })
    }

    /// One pass over the windows (packed or padded, as [`JinaEmbedder::embed_ids`]); each span is
    /// the mean of its tokens' post-norm hidden states, L2-normalised then cut to `spec.dims`, as
    /// the single-vector head pools a whole input; its multi-vector is its tokens' rows.
    fn embed_windows(
        &self,
        rows: &[&[u32]],
        spans: &[&[Range<usize>]],
        spec: RunSpec,
    ) -> Result<Vec<Vec<Embedding>>> {
        if self.packed {
            let input = self
                .model
                .text_model()
                .packed_text_input(rows, &self.device)?;
            let task = self.model.has_adapters().then_some(spec.task);
            let out = self.model.forward_packed(&input, task)?;
            self.last_launches.store(out.launches, Ordering::Relaxed);
            let starts = row_starts(rows);
            return pool_windows(
                &out.hidden,
                Some(&out.multi),
                &starts,
                spans,
                true,
                spec.dims,
            );
        }
        let out = self.forward_padded(rows, spec)?;
        let (b, l, h) = out.hidden.dims3()?;
        let p = out.multi.dim(2)?;
        let starts: Vec<usize> = (0..b).map(|i| i * l).collect();
        pool_windows(
            &out.hidden.reshape((b * l, h))?,
            Some(&out.multi.reshape((b * l, p))?),
            &starts,
            spans,
            true,
            spec.dims,
        )
    }

    fn preprocessor(&self) -> Option<&PreprocessorConfig> {
        Some(&self.preprocessor)
    }

    fn image_tokens(&self, patches: &Patches) -> Result<usize> {
        let prompt = self.image_prompt.as_ref().ok_or_else(no_images)?;
        Ok(prompt.before.len()
            + patches.num_tokens(self.preprocessor.merge_size)
            + prompt.after.len())
    }

    fn embed_patches(&self, patches: &[&Patches], spec: RunSpec) -> Result<Vec<Embedding>> {
        if self.packed {
            return self.embed_patches_packed(patches, spec);
        }
        Ok(self.embed_patches_with_output(patches, spec, false)?.1)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

fn config_task_index(cfg: &JinaConfig, task: &str) -> Result<usize> {
    cfg.task_names
        .iter()
        .position(|t| t == task)
        .ok_or_else(|| Error::UnknownTask {
            got: task.to_string(),
            valid: cfg.task_names.clone(),
        })
}
