//! [`Encoder`]: a loaded embedding model with its tokenizer: jina-embeddings-v4 (text and images,
//! task adapters, Matryoshka and multi-vector output) or a sentence-transformers BERT (text, one
//! dense vector of fixed size). The architecture is picked from `config.json`.

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::image::{ImageLimits, PreprocessorConfig};
use crate::loading::{resolve_model_dir, Checkpoint, SentencePipeline};
use crate::models::bert::{is_bert_config, BertConfig, BertModel};
use crate::models::jina_v4::{truncate_normalize, JinaConfig, JinaOutput, JinaV4};
use crate::models::qwen2_5_vl::text_position_ids;
use crate::prompt::{ImagePrompt, PromptKind, TextTokenizer, Truncation};

mod bert;
mod images;

/// Padded tokens per forward pass when [`Encoder::encode_texts`] splits a large call.
const DEFAULT_BATCH_TOKENS: usize = 16384;

/// Per-token vectors of one input, row-major `tokens × dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiVector {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl MultiVector {
    pub fn num_tokens(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.dim.max(1))
    }
}

/// The embeddings of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// The dense vector: L2-normalised (for BERT when its pipeline has a `Normalize` module),
    /// truncated to the requested Matryoshka dimension.
    pub single: Vec<f32>,
    /// L2-normalised per-token vectors, one per non-pad token (prompt prefix included); empty
    /// (`dim` 0) for models without multi-vector output (see [`Encoder::supports_multivector`]).
    pub multi: MultiVector,
    /// Tokens the model read for this input, prompt and special tokens included.
    pub tokens: usize,
}

/// The architecture behind an [`Encoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// jina-embeddings-v4: tasks, query/passage prompts, Matryoshka dimensions, multi-vectors,
    /// images.
    JinaV4,
    /// A sentence-transformers BERT (all-MiniLM-L6-v2 and kin): no tasks, no prompts, one dense
    /// vector of fixed size, text only.
    Bert,
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    pub dtype: DType,
    /// Merge this task's LoRA into the weights at load (less compute, one task only).
    pub merge_task: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            dtype: DType::F32,
            merge_task: None,
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

/// A resolved task index plus the dimension to return; what a batch is run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSpec {
    pub task: usize,
    pub dims: usize,
}

/// The loaded network.
enum Backbone {
    // Boxed: the models are large and of different sizes; the enum stays a pointer wide.
    Jina(Box<JinaV4>),
    Bert {
        model: Box<BertModel>,
        pipeline: SentencePipeline,
    },
}

/// An embedding model ready to run: jina-embeddings-v4 (tokenizer, image preprocessing, vision
/// tower, decoder with task LoRAs, heads) or a sentence-transformers BERT.
pub struct Encoder {
    backbone: Backbone,
    tokenizer: TextTokenizer,
    preprocessor: PreprocessorConfig,
    image_limits: ImageLimits,
    /// `None` when the checkpoint cannot take images (no tower or no image token ids).
    image_prompt: Option<ImagePrompt>,
    device: Device,
    dtype: DType,
    pad_id: u32,
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
        if is_bert_config(&json) {
            return Self::load_bert(&dir, &raw, opts);
        }
        let ckpt = Checkpoint::open(&dir)?;
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
            let t = task_index(&ckpt.config, task)?;
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
        let preprocessor = PreprocessorConfig::from_dir(&dir)?;
        Ok(Encoder {
            backbone: Backbone::Jina(Box::new(model)),
            tokenizer,
            preprocessor,
            image_limits: ImageLimits::default(),
            image_prompt,
            device: opts.device.clone(),
            dtype: opts.dtype,
            pad_id,
            batch_tokens: DEFAULT_BATCH_TOKENS,
        })
    }

    /// Which architecture this is.
    pub fn kind(&self) -> ModelKind {
        match self.backbone {
            Backbone::Jina(_) => ModelKind::JinaV4,
            Backbone::Bert { .. } => ModelKind::Bert,
        }
    }

    /// jina-embeddings-v4's config; `None` for other architectures.
    pub fn jina_config(&self) -> Option<&JinaConfig> {
        self.jina().ok().map(JinaV4::config)
    }

    /// The jina-embeddings-v4 model; `None` for other architectures.
    pub fn jina_model(&self) -> Option<&JinaV4> {
        self.jina().ok()
    }

    /// The BERT config; `None` for other architectures.
    pub fn bert_config(&self) -> Option<&BertConfig> {
        match &self.backbone {
            Backbone::Bert { model, .. } => Some(model.config()),
            Backbone::Jina(_) => None,
        }
    }

    /// Size of the full dense vector (what `dims: None` returns unless the config sets a
    /// default truncation).
    pub fn dims(&self) -> usize {
        match &self.backbone {
            Backbone::Jina(m) => m.config().text.hidden_size,
            Backbone::Bert { model, .. } => model.config().hidden_size,
        }
    }

    /// Dense sizes a request may ask for, ascending (Matryoshka prefixes plus the full size).
    pub fn allowed_dims(&self) -> Vec<usize> {
        match &self.backbone {
            Backbone::Jina(m) => {
                let mut d = m.config().matryoshka_dims.clone();
                d.push(self.dims());
                d.sort_unstable();
                d.dedup();
                d
            }
            Backbone::Bert { .. } => vec![self.dims()],
        }
    }

    /// True when the model's single vectors come out L2-normalised: always for jina-embeddings-v4,
    /// and for a sentence-transformers pipeline that ends in `Normalize`.
    pub fn normalizes(&self) -> bool {
        match &self.backbone {
            Backbone::Jina(_) => true,
            Backbone::Bert { pipeline, .. } => pipeline.normalize,
        }
    }

    /// True when a batch of texts runs without padding (BERT packs its rows), so it costs its
    /// real tokens rather than rows × the longest row.
    pub fn packs_batches(&self) -> bool {
        matches!(self.backbone, Backbone::Bert { .. })
    }

    /// True when the model gives per-token vectors ([`Embedding::multi`]).
    pub fn supports_multivector(&self) -> bool {
        self.multi_vector_dim().is_some()
    }

    /// Size of each per-token vector; `None` when the model has no multi-vector output.
    pub fn multi_vector_dim(&self) -> Option<usize> {
        match &self.backbone {
            Backbone::Jina(m) => Some(m.config().multi_vector_projector_dim),
            Backbone::Bert { .. } => None,
        }
    }

    /// True when query and passage prompts give different texts (jina); BERT has no prompts.
    pub fn uses_prompts(&self) -> bool {
        matches!(self.backbone, Backbone::Jina(_))
    }

    /// Longest input in tokens, prompt and special tokens included: 32768 for jina, the
    /// pipeline's `max_seq_length` for BERT (longer texts are cut there, or refused when the
    /// request disables truncation).
    pub fn max_length(&self) -> usize {
        match &self.backbone {
            Backbone::Jina(_) => crate::prompt::DEFAULT_MAX_LENGTH,
            Backbone::Bert { pipeline, .. } => pipeline.max_seq_length,
        }
    }

    /// Token ids must be below this.
    pub fn vocab_size(&self) -> usize {
        match &self.backbone {
            Backbone::Jina(m) => m.config().text.vocab_size,
            Backbone::Bert { model, .. } => model.config().vocab_size,
        }
    }

    fn jina(&self) -> Result<&JinaV4> {
        match &self.backbone {
            Backbone::Jina(m) => Ok(m),
            Backbone::Bert { .. } => Err(Error::Unsupported(
                "this operation needs jina-embeddings-v4; the loaded model is a BERT sentence \
                 encoder"
                    .into(),
            )),
        }
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
        let Ok(model) = self.jina() else {
            return Vec::new();
        };
        match model.merged_task() {
            Some(t) => vec![model.config().task_names[t].clone()],
            None => model.config().task_names.clone(),
        }
    }

    /// The task's adapter index, or [`Error::UnknownTask`] listing the valid ones. BERT takes
    /// any name (index 0): callers send a default task whatever the model.
    pub fn task_index(&self, task: &str) -> Result<usize> {
        let Ok(model) = self.jina() else {
            return Ok(0);
        };
        let t = task_index(model.config(), task)?;
        match model.merged_task() {
            Some(m) if m != t => Err(Error::UnknownTask {
                got: task.to_string(),
                valid: self.tasks(),
            }),
            _ => Ok(t),
        }
    }

    /// Validates a requested dimension; `None` means the config default (else full size).
    /// BERT vectors have one size: Matryoshka truncation is meaningless for models not trained
    /// for it, so any other size is refused.
    pub fn resolve_dims(&self, dims: Option<usize>) -> Result<usize> {
        let model = match &self.backbone {
            Backbone::Jina(m) => m,
            Backbone::Bert { .. } => {
                let full = self.dims();
                return match dims {
                    None => Ok(full),
                    Some(d) if d == full => Ok(d),
                    Some(d) => Err(Error::InvalidDimension {
                        got: d,
                        valid: vec![full],
                    }),
                };
            }
        };
        let cfg = model.config();
        match dims.or(cfg.truncate_dim) {
            None => Ok(cfg.text.hidden_size),
            Some(d) if cfg.matryoshka_dims.contains(&d) || d == cfg.text.hidden_size => Ok(d),
            Some(d) => Err(Error::InvalidDimension {
                got: d,
                valid: cfg.matryoshka_dims.clone(),
            }),
        }
    }

    /// Validates a request and returns what to run it with.
    pub fn run_spec(&self, task: &str, dims: Option<usize>) -> Result<RunSpec> {
        Ok(RunSpec {
            task: self.task_index(task)?,
            dims: self.resolve_dims(dims)?,
        })
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    pub fn preprocessor(&self) -> &PreprocessorConfig {
        &self.preprocessor
    }

    /// Limits on encoded and decoded image size, checked before decoding.
    pub fn set_image_limits(&mut self, limits: ImageLimits) {
        self.image_limits = limits;
    }

    /// True when the checkpoint has a vision tower and the image token ids (never for BERT).
    pub fn supports_images(&self) -> bool {
        self.image_prompt.is_some()
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
        if let Backbone::Bert { pipeline, .. } = &self.backbone {
            return self.tokenize_bert(texts, pipeline, trunc);
        }
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                self.tokenizer
                    .encode_prompted(t.as_ref(), task, prompt, trunc, i)
            })
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
        // Sort by length so each forward pads little, then restore input order.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].len());
        let mut out: Vec<Option<Embedding>> = vec![None; rows.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len()
                && rows[order[end]].len() * (end + 1 - start) <= self.batch_tokens
            {
                end += 1;
            }
            let batch: Vec<&[u32]> = order[start..end]
                .iter()
                .map(|&i| rows[i].as_slice())
                .collect();
            for (k, e) in self.embed_ids(&batch, spec)?.into_iter().enumerate() {
                out[order[start + k]] = Some(e);
            }
            start = end;
        }
        Ok(out
            .into_iter()
            .map(|e| e.expect("every row embedded: this is a bug"))
            .collect())
    }

    /// Runs one right-padded forward pass over already tokenized rows.
    pub fn embed_ids(&self, rows: &[&[u32]], spec: RunSpec) -> Result<Vec<Embedding>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(i) = rows.iter().position(|r| r.is_empty()) {
            return Err(Error::EmptyText { index: i });
        }
        let vocab = self.vocab_size() as u32;
        if let Some(bad) = rows.iter().flat_map(|r| r.iter()).find(|&&id| id >= vocab) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        let model = match &self.backbone {
            Backbone::Jina(m) => m,
            Backbone::Bert { model, pipeline } => {
                return self.embed_ids_bert(model, pipeline, rows, spec)
            }
        };
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
        // Encoder::load refuses checkpoints without adapters; a merged model runs its task.
        let task = model.has_adapters().then_some(spec.task);
        let out = model.forward(&input_ids, &mask, &positions, task, false)?;
        self.embeddings(&out, rows, spec)
    }
}

impl Encoder {
    /// Host-side heads output: Matryoshka truncation, multi-vectors cut to each row's length.
    fn embeddings<R: AsRef<[u32]>>(
        &self,
        out: &JinaOutput,
        rows: &[R],
        spec: RunSpec,
    ) -> Result<Vec<Embedding>> {
        let single = out.single.to_vec2::<f32>()?;
        let multi = out.multi.to_vec3::<f32>()?;
        let cfg = self.jina()?.config();
        let pdim = cfg.multi_vector_projector_dim;
        let full = cfg.text.hidden_size;
        Ok(rows
            .iter()
            .zip(single)
            .zip(multi)
            .map(|((r, s), m)| Embedding {
                single: if spec.dims >= full {
                    s
                } else {
                    truncate_normalize(&s, spec.dims)
                },
                multi: MultiVector {
                    dim: pdim,
                    data: m.into_iter().take(r.as_ref().len()).flatten().collect(),
                },
                tokens: r.as_ref().len(),
            })
            .collect())
    }
}

fn task_index(cfg: &JinaConfig, task: &str) -> Result<usize> {
    cfg.task_names
        .iter()
        .position(|t| t == task)
        .ok_or_else(|| Error::UnknownTask {
            got: task.to_string(),
            valid: cfg.task_names.clone(),
        })
}
