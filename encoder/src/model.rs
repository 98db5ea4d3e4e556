//! The seam between [`crate::Encoder`] and one architecture: [`EmbeddingModel`] runs tokenized
//! rows (and, where the model reads images, preprocessed images) through the network, and
//! [`ModelInfo`], computed once at load, says what the model can do.
//!
//! The encoder validates requests, batches rows and applies Matryoshka truncation against the
//! info; a model only tokenizes and embeds. Adding an architecture, or another backend for one, is
//! an implementation of this trait in one file plus a line in the loader's dispatch.

use std::any::Any;
use std::ops::Range;

use crate::embedding::Embedding;
use crate::error::{Error, Result};
use crate::image::{Patches, PreprocessorConfig};
use crate::late_chunking::TokenizedText;
use crate::prompt::{PromptKind, TextTokenizer, Truncation};

/// The task a request runs when it names none. Models without task adapters accept any name.
pub const DEFAULT_TASK: &str = "retrieval";

/// The architecture behind an [`crate::Encoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// jina-embeddings-v4: tasks, query/passage prompts, Matryoshka dimensions, multi-vectors,
    /// images.
    JinaV4,
    /// A sentence-transformers BERT (all-MiniLM-L6-v2 and kin): no tasks, no prompts, one dense
    /// vector of fixed size, text only.
    Bert,
}

/// What a loaded model can do; fixed at load.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub kind: ModelKind,
    /// Size of the full dense vector.
    pub dims: usize,
    /// The sizes a request may truncate the dense vector to, as the checkpoint lists them
    /// (named in [`Error::InvalidDimension`]); just `[dims]` for a model not trained for
    /// Matryoshka truncation.
    pub matryoshka_dims: Vec<usize>,
    /// The size a request without one gets, when the checkpoint sets a default truncation.
    pub default_dims: Option<usize>,
    /// True when the dense vectors come out L2-normalised.
    pub normalizes: bool,
    /// True when a batch runs without padding, so it costs its real tokens rather than
    /// rows × the longest row.
    pub packs_batches: bool,
    /// Size of each per-token vector; `None` when the model gives none.
    pub multi_vector_dim: Option<usize>,
    /// True when query and passage prompts give different texts.
    pub uses_prompts: bool,
    /// Longest input in tokens, prompt and special tokens included.
    pub max_length: usize,
    /// Token ids must be below this.
    pub vocab_size: usize,
    /// Task names the model tells apart; empty when it has no task adapters (then every name is
    /// accepted and gives the same vector).
    pub tasks: Vec<String>,
    /// True when the model embeds images.
    pub supports_images: bool,
    /// True when the model can pool a chunk's vector from its tokens inside the whole document
    /// ([`EmbeddingModel::tokenize_with_offsets`], [`EmbeddingModel::embed_windows`]): mean-pooled
    /// models; not a `[CLS]`-pooled one, whose one pooled token belongs to no chunk.
    pub late_chunking: bool,
}

impl ModelInfo {
    /// Dense sizes a request may ask for, ascending (Matryoshka prefixes plus the full size).
    pub fn allowed_dims(&self) -> Vec<usize> {
        let mut d = self.matryoshka_dims.clone();
        d.push(self.dims);
        d.sort_unstable();
        d.dedup();
        d
    }

    /// Validates a requested dimension; `None` means the checkpoint's default, else full size.
    pub fn resolve_dims(&self, dims: Option<usize>) -> Result<usize> {
        match dims.or(self.default_dims) {
            None => Ok(self.dims),
            Some(d) if d == self.dims || self.matryoshka_dims.contains(&d) => Ok(d),
            Some(d) => Err(Error::InvalidDimension {
                got: d,
                valid: self.matryoshka_dims.clone(),
            }),
        }
    }
}

/// A resolved task index plus the dimension to return; what a batch is run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSpec {
    pub task: usize,
    pub dims: usize,
}

/// One architecture on one device, ready to run.
pub trait EmbeddingModel: Send + Sync {
    fn info(&self) -> &ModelInfo;

    fn tokenizer(&self) -> &TextTokenizer;

    /// The task's adapter index, or [`Error::UnknownTask`] listing the valid ones. A model
    /// without tasks takes any name (index 0): callers send a default task whatever the model.
    fn task_index(&self, task: &str) -> Result<usize> {
        let tasks = &self.info().tasks;
        if tasks.is_empty() {
            return Ok(0);
        }
        tasks
            .iter()
            .position(|t| t == task)
            .ok_or_else(|| Error::UnknownTask {
                got: task.to_string(),
                valid: tasks.clone(),
            })
    }

    /// Token ids of one input with the model's prompt and special tokens, cut to `trunc` (and to
    /// [`ModelInfo::max_length`]); `task` is valid, `index` names the input in errors.
    fn tokenize(
        &self,
        text: &str,
        task: &str,
        prompt: PromptKind,
        trunc: Truncation,
        index: usize,
    ) -> Result<Vec<u32>>;

    /// One forward pass over tokenized rows (non-empty, ids inside the vocabulary), returning
    /// full-size dense vectors unless `spec.dims` is smaller.
    fn embed_ids(&self, rows: &[&[u32]], spec: RunSpec) -> Result<Vec<Embedding>>;

    /// Late chunking: the whole row `text` gives (the model's prompt and special tokens, not
    /// truncated) with each text token's character offsets in `text`; `task` is valid, `index`
    /// names the input in errors. Models without [`ModelInfo::late_chunking`] refuse.
    fn tokenize_with_offsets(
        &self,
        _text: &str,
        _task: &str,
        _prompt: PromptKind,
        _index: usize,
    ) -> Result<TokenizedText> {
        Err(no_late_chunking(self.info()))
    }

    /// Late chunking: one forward pass over window rows (non-empty, ids inside the vocabulary,
    /// each within [`ModelInfo::max_length`]), pooling each of a row's `spans` (token ranges in
    /// that row) into one embedding: the mean of those tokens' final hidden states with the
    /// model's normalisation, cut to `spec.dims`, and those tokens' per-token vectors.
    fn embed_windows(
        &self,
        _rows: &[&[u32]],
        _spans: &[&[Range<usize>]],
        _spec: RunSpec,
    ) -> Result<Vec<Vec<Embedding>>> {
        Err(no_late_chunking(self.info()))
    }

    /// Image preprocessing settings; `None` when the model reads no images.
    fn preprocessor(&self) -> Option<&PreprocessorConfig> {
        None
    }

    /// Tokens one preprocessed image costs the decoder, prompt included (for batching).
    fn image_tokens(&self, _patches: &Patches) -> Result<usize> {
        Err(no_images())
    }

    /// One forward pass over preprocessed images.
    fn embed_patches(&self, _patches: &[&Patches], _spec: RunSpec) -> Result<Vec<Embedding>> {
        Err(no_images())
    }

    /// The concrete model, for architecture-specific tools (parity tests, configs).
    fn as_any(&self) -> &dyn Any;

    /// The concrete model, for architecture-specific settings.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Why a model cannot late-chunk; a request's mistake (4xx), since it asked for it.
pub(crate) fn no_late_chunking(info: &ModelInfo) -> Error {
    Error::InvalidInput(format!(
        "late chunking is not supported by this {:?} model (it needs mean pooling over token \
         states); embed the chunks on their own instead",
        info.kind
    ))
}

pub(crate) fn no_images() -> Error {
    Error::Unsupported(
        "this checkpoint cannot embed images (no vision tower or image token ids)".into(),
    )
}
