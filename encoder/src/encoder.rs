//! [`Encoder`]: a loaded embedding model behind one API. It validates requests against the
//! model's [`ModelInfo`], batches inputs by token budget and hands tokenized rows or preprocessed
//! images to the [`EmbeddingModel`]: jina-embeddings-v4 (text and images, task adapters,
//! Matryoshka and multi-vector output) or a sentence-transformers BERT (text, one dense vector of
//! fixed size). The architecture is picked from `config.json`. Late chunking
//! ([`Encoder::embed_spans`]) pools each chunk of a document from one pass over all of it.

use std::ops::Range;
use std::sync::LazyLock;

use candle_core::{DType, Device};

use crate::embedding::Embedding;
use crate::error::{Error, Result};
use crate::image::{preprocess, ImageLimits, Patches, PreprocessorConfig};
use crate::late_chunking::{window_rows, LateChunkOptions, TokenizedText, WindowRow};
use crate::loading::resolve_model_dir;
use crate::model::{no_images, no_late_chunking, EmbeddingModel, ModelInfo, ModelKind, RunSpec};
use crate::models::bert::{is_bert_config, BertConfig};
use crate::models::jina_v4::{JinaConfig, JinaOutput, JinaV4};
use crate::prompt::{PromptKind, TextTokenizer, Truncation};

mod bert;
mod jina;

pub use bert::BertEmbedder;
pub use jina::JinaEmbedder;

/// Tokens per forward pass when [`Encoder::encode_texts`] splits a large call (padded for models
/// that pad their batches).
const DEFAULT_BATCH_TOKENS: usize = 16384;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    pub dtype: DType,
    /// Merge this task's LoRA into the weights at load (less compute, one task only).
    pub merge_task: Option<String>,
    /// BERT encoders on the CPU in f32: keep the projections' weights as f16 (rounded at load), so
    /// that a short query reads half the bytes. Changes the vectors slightly (cosine to the f32
    /// vectors ≥ 0.9999 on all-MiniLM-L6-v2 in the tests), hence an opt-in; ignored elsewhere.
    pub cpu_f16_weights: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            dtype: DType::F32,
            merge_task: None,
            cpu_f16_weights: false,
        }
    }
}

/// A request's settings for [`Encoder::encode_texts_with`].
#[derive(Debug, Clone)]
pub struct TextOptions {
    pub task: String,
    pub prompt: PromptKind,
    pub dims: Option<usize>,
    pub truncation: Truncation,
}

/// An embedding model ready to run, with its tokenizer and image limits.
pub struct Encoder {
    model: Box<dyn EmbeddingModel>,
    image_limits: ImageLimits,
    device: Device,
    dtype: DType,
    batch_tokens: usize,
}

impl Encoder {
    /// Loads from a local directory or a Hugging Face repo id already in the local cache.
    pub fn load(source: &str, device: &Device, dtype: DType) -> Result<Self> {
        Self::load_with(
            source,
            &LoadOptions {
                device: device.clone(),
                dtype,
                merge_task: None,
                cpu_f16_weights: false,
            },
        )
    }

    /// Loads from a local directory or a Hugging Face repo id already in the local cache; the
    /// architecture comes from `config.json` (`model_type: "bert"` or a `Bert*` architecture
    /// loads a sentence-transformers BERT, anything else jina-embeddings-v4).
    pub fn load_with(source: &str, opts: &LoadOptions) -> Result<Self> {
        let dir = resolve_model_dir(source)?;
        let cfg_path = dir.join("config.json");
        let raw = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&raw).map_err(|e| Error::config(&cfg_path, e.to_string()))?;
        let model: Box<dyn EmbeddingModel> = if is_bert_config(&json) {
            Box::new(BertEmbedder::load(&dir, &raw, opts)?)
        } else {
            if opts.cpu_f16_weights {
                tracing::warn!(
                    model = %dir.display(),
                    "f16 CPU weights apply to BERT encoders only: this model keeps its dtype"
                );
            }
            Box::new(JinaEmbedder::load(&dir, opts)?)
        };
        // candle issues CUDA work on the calling thread's default stream, and a server loads on one
        // thread and runs on another: wait here until the weights have landed.
        opts.device.synchronize()?;
        crate::gpu_memory::keep_freed_memory(&opts.device)?;
        Ok(Self::from_model(model, opts))
    }

    /// Wraps an already loaded model.
    pub fn from_model(model: Box<dyn EmbeddingModel>, opts: &LoadOptions) -> Self {
        Encoder {
            model,
            image_limits: ImageLimits::default(),
            device: opts.device.clone(),
            dtype: opts.dtype,
            batch_tokens: DEFAULT_BATCH_TOKENS,
        }
    }

    /// What the model can do.
    pub fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    /// The model behind this encoder.
    pub fn model(&self) -> &dyn EmbeddingModel {
        self.model.as_ref()
    }

    /// Which architecture this is.
    pub fn kind(&self) -> ModelKind {
        self.info().kind
    }

    /// jina-embeddings-v4's config; `None` for other architectures.
    pub fn jina_config(&self) -> Option<&JinaConfig> {
        self.jina().map(JinaEmbedder::config)
    }

    /// The jina-embeddings-v4 model; `None` for other architectures.
    pub fn jina_model(&self) -> Option<&JinaV4> {
        self.jina().map(JinaEmbedder::model)
    }

    /// The BERT config; `None` for other architectures.
    pub fn bert_config(&self) -> Option<&BertConfig> {
        self.model
            .as_any()
            .downcast_ref::<BertEmbedder>()
            .map(BertEmbedder::config)
    }

    fn jina(&self) -> Option<&JinaEmbedder> {
        self.model.as_any().downcast_ref::<JinaEmbedder>()
    }

    /// jina-embeddings-v4 only: run the decoder over text and image prompts packed on the fused
    /// kernels (`true`, the default on a GPU) or padded on candle's generic ops (`false`, the
    /// default on the CPU, where the fused kernels are reference implementations). Both give the
    /// same vectors. The vision tower's path is [`Encoder::set_varlen_vision`].
    pub fn set_packed_text(&mut self, on: bool) -> Result<()> {
        let jina = self
            .model
            .as_any_mut()
            .downcast_mut::<JinaEmbedder>()
            .ok_or_else(|| {
                Error::Unsupported("packed text batches are a jina-embeddings-v4 setting".into())
            })?;
        jina.set_packed(on);
        Ok(())
    }

    /// Runs the vision tower's attention on the varlen kernel (one launch per block over all
    /// windows of all images; the default on a GPU) or as batched matmuls (the CPU's default).
    pub fn set_varlen_vision(&mut self, on: bool) -> Result<()> {
        let jina = self
            .model
            .as_any_mut()
            .downcast_mut::<JinaEmbedder>()
            .ok_or_else(no_images)?;
        if jina.set_varlen_vision(on) {
            Ok(())
        } else {
            Err(no_images())
        }
    }

    /// Kernels the last packed text pass launched; `None` for models without a packed pass.
    pub fn last_launches(&self) -> Option<u64> {
        self.jina().map(JinaEmbedder::last_launches)
    }

    /// Size of the full dense vector (what `dims: None` returns unless the config sets a
    /// default truncation).
    pub fn dims(&self) -> usize {
        self.info().dims
    }

    /// Dense sizes a request may ask for, ascending (Matryoshka prefixes plus the full size).
    pub fn allowed_dims(&self) -> Vec<usize> {
        self.info().allowed_dims()
    }

    /// True when the model's single vectors come out L2-normalised: always for jina-embeddings-v4,
    /// and for a sentence-transformers pipeline that ends in `Normalize`.
    pub fn normalizes(&self) -> bool {
        self.info().normalizes
    }

    /// True when a batch of texts runs without padding, so it costs its real tokens rather than
    /// rows × the longest row.
    pub fn packs_batches(&self) -> bool {
        self.info().packs_batches
    }

    /// True when the model gives per-token vectors ([`Embedding::multi`]).
    pub fn supports_multivector(&self) -> bool {
        self.multi_vector_dim().is_some()
    }

    /// Size of each per-token vector; `None` when the model has no multi-vector output.
    pub fn multi_vector_dim(&self) -> Option<usize> {
        self.info().multi_vector_dim
    }

    /// True when query and passage prompts give different texts (jina); BERT has no prompts.
    pub fn uses_prompts(&self) -> bool {
        self.info().uses_prompts
    }

    /// Longest input in tokens, prompt and special tokens included: 32768 for jina, the
    /// pipeline's `max_seq_length` for BERT (longer texts are cut there, or refused when the
    /// request disables truncation).
    pub fn max_length(&self) -> usize {
        self.info().max_length
    }

    /// Token ids must be below this.
    pub fn vocab_size(&self) -> usize {
        self.info().vocab_size
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Task names this encoder tells apart (one when a task was merged at load). Empty for
    /// BERT: it has no task adapters, so every task name is accepted and gives the same vector.
    pub fn tasks(&self) -> Vec<String> {
        self.info().tasks.clone()
    }

    /// The task's adapter index, or [`Error::UnknownTask`] listing the valid ones. BERT takes
    /// any name (index 0): callers send a default task whatever the model.
    pub fn task_index(&self, task: &str) -> Result<usize> {
        self.model.task_index(task)
    }

    /// Validates a requested dimension; `None` means the config default (else full size).
    /// BERT vectors have one size: Matryoshka truncation is meaningless for models not trained
    /// for it, so any other size is refused.
    pub fn resolve_dims(&self, dims: Option<usize>) -> Result<usize> {
        self.info().resolve_dims(dims)
    }

    /// Validates a request and returns what to run it with.
    pub fn run_spec(&self, task: &str, dims: Option<usize>) -> Result<RunSpec> {
        Ok(RunSpec {
            task: self.task_index(task)?,
            dims: self.resolve_dims(dims)?,
        })
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        self.model.tokenizer()
    }

    /// Image preprocessing settings (the defaults for a model that reads no images).
    pub fn preprocessor(&self) -> &PreprocessorConfig {
        static NONE: LazyLock<PreprocessorConfig> = LazyLock::new(PreprocessorConfig::default);
        self.model.preprocessor().unwrap_or(&NONE)
    }

    /// Limits on encoded and decoded image size, checked before decoding.
    pub fn set_image_limits(&mut self, limits: ImageLimits) {
        self.image_limits = limits;
    }

    /// True when the checkpoint has a vision tower and the image token ids (never for BERT).
    pub fn supports_images(&self) -> bool {
        self.info().supports_images
    }

    /// Prefixes and tokenizes texts; `task` must be valid (it picks the prefix). For BERT the
    /// task and prompt change nothing, and the limit is also capped at [`Encoder::max_length`].
    pub fn tokenize(
        &self,
        texts: &[impl AsRef<str>],
        task: &str,
        prompt: PromptKind,
        trunc: Truncation,
    ) -> Result<Vec<Vec<u32>>> {
        self.task_index(task)?;
        if trunc.max_length == 0 {
            return Err(Error::InvalidInput("max_length must be positive".into()));
        }
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| self.model.tokenize(t.as_ref(), task, prompt, trunc, i))
            .collect()
    }

    /// Embeds texts with default truncation (32768 tokens, cut on the right).
    pub fn encode_texts(
        &self,
        texts: &[impl AsRef<str>],
        task: &str,
        prompt: PromptKind,
        dims: Option<usize>,
    ) -> Result<Vec<Embedding>> {
        self.encode_texts_with(
            texts,
            &TextOptions {
                task: task.to_string(),
                prompt,
                dims,
                truncation: Truncation::default(),
            },
        )
    }

    pub fn encode_texts_with(
        &self,
        texts: &[impl AsRef<str>],
        opts: &TextOptions,
    ) -> Result<Vec<Embedding>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let spec = self.run_spec(&opts.task, opts.dims)?;
        let rows = self.tokenize(texts, &opts.task, opts.prompt, opts.truncation)?;
        let lens: Vec<usize> = rows.iter().map(Vec::len).collect();
        self.in_batches(&lens, |batch| {
            let refs: Vec<&[u32]> = batch.iter().map(|&i| rows[i].as_slice()).collect();
            self.embed_ids(&refs, spec)
        })
    }

    /// Runs `embed` over batches of the inputs sorted by length (so a padded batch pads little),
    /// each within the token budget, and returns the results in input order.
    fn in_batches<T>(
        &self,
        lens: &[usize],
        mut embed: impl FnMut(&[usize]) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let packed = self.packs_batches();
        let mut order: Vec<usize> = (0..lens.len()).collect();
        order.sort_by_key(|&i| lens[i]);
        let mut out: Vec<Option<T>> = (0..lens.len()).map(|_| None).collect();
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            let mut total = lens[order[start]];
            while end < order.len() {
                let len = lens[order[end]];
                // Sorted ascending: the newest row is the longest.
                let cost = if packed {
                    total + len
                } else {
                    len * (end + 1 - start)
                };
                if cost > self.batch_tokens {
                    break;
                }
                total += len;
                end += 1;
            }
            for (k, e) in embed(&order[start..end])?.into_iter().enumerate() {
                out[order[start + k]] = Some(e);
            }
            start = end;
        }
        Ok(out
            .into_iter()
            .map(|e| e.expect("every input embedded: this is a bug"))
            .collect())
    }

    /// True when the model can late-chunk ([`Encoder::embed_spans`]).
    pub fn supports_late_chunking(&self) -> bool {
        self.info().late_chunking
    }

    /// The text tokenized whole for late chunking, with each text token's character offsets
    /// (see [`EmbeddingModel::tokenize_with_offsets`]); `task` must be valid.
    pub fn tokenize_with_offsets(
        &self,
        text: &str,
        task: &str,
        prompt: PromptKind,
    ) -> Result<TokenizedText> {
        self.task_index(task)?;
        self.model.tokenize_with_offsets(text, task, prompt, 0)
    }

    /// Late chunking's preparation: `text` tokenized once, `spans` (character ranges of its
    /// chunks, in document order) mapped to its tokens, and the document cut into windows of the
    /// model's context (or `opts.window`) that each hold whole chunks (see
    /// [`crate::late_chunking`]). What [`Encoder::embed_windows`] runs.
    pub fn late_chunk_windows(
        &self,
        text: &str,
        spans: &[Range<usize>],
        opts: &LateChunkOptions,
    ) -> Result<Vec<WindowRow>> {
        if !self.supports_late_chunking() {
            return Err(no_late_chunking(self.info()));
        }
        if spans.is_empty() {
            return Err(Error::InvalidInput(
                "late chunking needs at least one chunk".into(),
            ));
        }
        let window = opts
            .window
            .unwrap_or(self.max_length())
            .min(self.max_length());
        let overlap = opts.overlap.unwrap_or(window / 4);
        let tok = self.tokenize_with_offsets(text, &opts.task, opts.prompt)?;
        window_rows(&tok, spans, window, overlap)
    }

    /// Late chunking: embeds the chunks `spans` (character ranges of `text`, in document order)
    /// from one pass over the whole text (per window when it is longer than the model's context):
    /// each chunk's dense vector is the mean of its own tokens' final hidden states (the prompt
    /// left out) with the model's normalisation and Matryoshka size, its multi-vector its own
    /// tokens' vectors. One embedding per span, in order; `tokens` is the chunk's token count.
    pub fn embed_spans(
        &self,
        text: &str,
        spans: &[Range<usize>],
        opts: &LateChunkOptions,
    ) -> Result<Vec<Embedding>> {
        let spec = self.run_spec(&opts.task, opts.dims)?;
        let windows = self.late_chunk_windows(text, spans, opts)?;
        let lens: Vec<usize> = windows.iter().map(|w| w.ids.len()).collect();
        let per_window = self.in_batches(&lens, |batch| {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| windows[i].ids.as_slice()).collect();
            let spans: Vec<&[Range<usize>]> =
                batch.iter().map(|&i| windows[i].spans.as_slice()).collect();
            self.embed_windows(&rows, &spans, spec)
        })?;
        Ok(per_window.into_iter().flatten().collect())
    }

    /// One forward pass over late-chunking windows (see [`EmbeddingModel::embed_windows`]); one
    /// list of span embeddings per row.
    pub fn embed_windows(
        &self,
        rows: &[&[u32]],
        spans: &[&[Range<usize>]],
        spec: RunSpec,
    ) -> Result<Vec<Vec<Embedding>>> {
        if rows.len() != spans.len() {
            return Err(Error::InvalidInput(format!(
                "{} rows but {} span lists",
                rows.len(),
                spans.len()
            )));
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.check_rows(rows)?;
        for (i, (r, s)) in rows.iter().zip(spans).enumerate() {
            if r.len() > self.max_length() {
                return Err(Error::TooLong {
                    index: i,
                    tokens: r.len(),
                    max_length: self.max_length(),
                });
            }
            if let Some(bad) = s.iter().find(|s| s.is_empty() || s.end > r.len()) {
                return Err(Error::InvalidInput(format!(
                    "row {i}: span {bad:?} is not a non-empty range of its {} tokens",
                    r.len()
                )));
            }
        }
        self.model.embed_windows(rows, spans, spec)
    }

    /// Refuses empty rows and ids outside the vocabulary.
    fn check_rows(&self, rows: &[&[u32]]) -> Result<()> {
        if let Some(i) = rows.iter().position(|r| r.is_empty()) {
            return Err(Error::EmptyText { index: i });
        }
        let vocab = self.vocab_size() as u32;
        if let Some(bad) = rows.iter().flat_map(|r| r.iter()).find(|&&id| id >= vocab) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        Ok(())
    }

    /// Runs one forward pass over already tokenized rows.
    pub fn embed_ids(&self, rows: &[&[u32]], spec: RunSpec) -> Result<Vec<Embedding>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.check_rows(rows)?;
        self.model.embed_ids(rows, spec)
    }

    /// Embeds encoded images (PNG, JPEG, WebP, GIF) with the model's image prompt. Images of
    /// different sizes may share a call; errors name the failing input's index.
    pub fn encode_images(
        &self,
        images: &[impl AsRef<[u8]> + Sync],
        task: &str,
        dims: Option<usize>,
    ) -> Result<Vec<Embedding>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let spec = self.run_spec(task, dims)?;
        let patches = self.preprocess_images(images)?;
        let refs: Vec<&Patches> = patches.iter().collect();
        self.encode_patches(&refs, spec)
    }

    /// Decodes, checks against the limits and preprocesses images, in parallel on the CPU pool;
    /// an error names the first failing input by index.
    pub fn preprocess_images(&self, images: &[impl AsRef<[u8]> + Sync]) -> Result<Vec<Patches>> {
        use rayon::prelude::*;

        if !self.supports_images() {
            return Err(no_images());
        }
        let results: Vec<_> = images
            .par_iter()
            .map(|bytes| preprocess(bytes.as_ref(), self.preprocessor(), &self.image_limits))
            .collect();
        results
            .into_iter()
            .enumerate()
            .map(|(index, r)| r.map_err(|source| Error::Image { index, source }))
            .collect()
    }

    /// Tokens one preprocessed image costs the decoder, its prompt included.
    pub fn image_tokens(&self, patches: &Patches) -> Result<usize> {
        self.model.image_tokens(patches)
    }

    /// Embeds already preprocessed images, batching them by prompt length.
    pub fn encode_patches(&self, patches: &[&Patches], spec: RunSpec) -> Result<Vec<Embedding>> {
        let lens = patches
            .iter()
            .map(|p| self.model.image_tokens(p))
            .collect::<Result<Vec<_>>>()?;
        self.in_batches(&lens, |batch| {
            let batch: Vec<&Patches> = batch.iter().map(|&i| patches[i]).collect();
            self.model.embed_patches(&batch, spec)
        })
    }

    /// jina-embeddings-v4 only: one forward pass over a right-padded batch of image prompts,
    /// returning the raw model output too (for parity tests).
    pub fn embed_patches(
        &self,
        patches: &[&Patches],
        spec: RunSpec,
        keep_layer_outputs: bool,
    ) -> Result<(JinaOutput, Vec<Embedding>)> {
        self.jina()
            .ok_or_else(no_images)?
            .embed_patches_with_output(patches, spec, keep_layer_outputs)
    }
}
