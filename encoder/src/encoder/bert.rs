//! A sentence-transformers BERT behind [`EmbeddingModel`]: loading, tokenization with the
//! pipeline's length limit, and one packed forward pass with mean or `[CLS]` pooling (or, for late
//! chunking, the mean of each chunk's tokens).

use std::any::Any;
use std::ops::Range;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::LoadOptions;
use crate::embedding::{Embedding, MultiVector};
use crate::error::{Error, Result};
use crate::late_chunking::{pool_windows, row_starts, TokenizedText};
use crate::layers::small_gemm::Precision;
use crate::loading::checkpoint::find_shards;
use crate::loading::sentence_transformers::Pooling;
use crate::loading::SentencePipeline;
use crate::model::{no_late_chunking, EmbeddingModel, ModelInfo, ModelKind, RunSpec};
use crate::models::bert::{sentence_embedding_packed, BertConfig, BertModel};
use crate::prompt::{PromptKind, TextTokenizer, Truncation};

/// A BERT sentence encoder with its sentence-transformers pipeline.
pub struct BertEmbedder {
    model: BertModel,
    pipeline: SentencePipeline,
    info: ModelInfo,
    tokenizer: TextTokenizer,
    device: Device,
}

impl BertEmbedder {
    /// Loads a BERT checkpoint laid out as sentence-transformers saves it: `config.json`,
    /// `model.safetensors`, `tokenizer.json`, optional `modules.json`,
    /// `sentence_bert_config.json` and `1_Pooling/config.json`.
    pub fn load(dir: &Path, config_json: &str, opts: &LoadOptions) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let cfg = BertConfig::from_json(config_json).map_err(|m| Error::config(&cfg_path, m))?;
        if let Some(task) = &opts.merge_task {
            return Err(Error::Unsupported(format!(
                "{}: a BERT sentence encoder has no task adapters, so task {task:?} cannot be \
                 merged",
                dir.display()
            )));
        }
        let pipeline = SentencePipeline::from_dir(dir, cfg.max_position_embeddings)?;
        // The file's own padding (all-MiniLM-L6-v2 pads every row to 128) and truncation are
        // switched off by `TextTokenizer`; rows are cut at max_seq_length and packed per batch.
        let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"))?;
        let shards = find_shards(dir)?;
        let started = std::time::Instant::now();
        // SAFETY: the checkpoint files are opened read-only and must not be modified while
        // mapped; Quiver never writes into model directories. Tensors are converted to
        // `opts.dtype` one by one as they are read, so the I64 `embeddings.position_ids` buffer
        // some exports carry is never touched.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&shards, opts.dtype, &opts.device)? };
        let root = ["", "bert"]
            .into_iter()
            .find(|p| {
                let name = if p.is_empty() {
                    "embeddings.word_embeddings.weight".to_string()
                } else {
                    format!("{p}.embeddings.word_embeddings.weight")
                };
                vb.contains_tensor(&name)
            })
            .ok_or_else(|| {
                Error::Weights(format!(
                    "{}: no BERT weights found (expected embeddings.word_embeddings.weight or \
                     bert.embeddings.word_embeddings.weight)",
                    dir.display()
                ))
            })?;
        let vb = if root.is_empty() { vb } else { vb.pp(root) };
        let f16_weights = opts.cpu_f16_weights && opts.device.is_cpu() && opts.dtype == DType::F32;
        if opts.cpu_f16_weights && !f16_weights {
            tracing::warn!(
                model = %dir.display(),
                "f16 CPU weights apply on the CPU in f32 only: the weights keep {:?}",
                opts.dtype
            );
        }
        let precision = if f16_weights {
            Precision::F16
        } else {
            Precision::F32
        };
        let model =
            BertModel::new_with(&cfg, vb, precision).map_err(|e| Error::Weights(e.to_string()))?;
        tracing::info!(
            model = %dir.display(),
            dtype = ?opts.dtype,
            f16_weights,
            device = ?opts.device,
            layers = cfg.num_hidden_layers,
            dims = cfg.hidden_size,
            max_seq_length = pipeline.max_seq_length,
            normalize = pipeline.normalize,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "BERT sentence encoder loaded"
        );
        let info = ModelInfo {
            kind: ModelKind::Bert,
            dims: cfg.hidden_size,
            // Matryoshka truncation means nothing for a model not trained for it.
            matryoshka_dims: vec![cfg.hidden_size],
            default_dims: None,
            normalizes: pipeline.normalize,
            packs_batches: true,
            multi_vector_dim: None,
            uses_prompts: false,
            max_length: pipeline.max_seq_length,
            vocab_size: cfg.vocab_size,
            tasks: Vec::new(),
            supports_images: false,
            // A chunk is pooled from its own tokens; a `[CLS]` vector belongs to no chunk.
            late_chunking: pipeline.pooling == Pooling::Mean,
        };
        Ok(BertEmbedder {
            model,
            pipeline,
            info,
            tokenizer,
            device: opts.device.clone(),
        })
    }

    pub fn config(&self) -> &BertConfig {
        self.model.config()
    }

    /// Last hidden states `[T, H]` of the rows packed end to end, after checking the size and the
    /// rows' lengths.
    fn forward_rows(&self, rows: &[&[u32]], spec: RunSpec) -> Result<Tensor> {
        let full = self.info.dims;
        if spec.dims != full {
            return Err(Error::InvalidDimension {
                got: spec.dims,
                valid: vec![full],
            });
        }
        let max_positions = self.model.config().max_position_embeddings;
        if let Some(i) = rows.iter().position(|r| r.len() > max_positions) {
            return Err(Error::TooLong {
                index: i,
                tokens: rows[i].len(),
                max_length: max_positions,
            });
        }
        let lens: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let ids = rows.concat();
        let pass = || -> candle_core::Result<Tensor> {
            let input_ids = Tensor::from_vec(ids, lens.iter().sum::<usize>(), &self.device)?;
            self.model.forward_packed(&input_ids, &lens)
        };
        // On the CPU the whole pass runs on one rayon worker. Called from the batching worker
        // (not a pool thread), each parallel op inside it (the threaded GEMMs, GELU, softmax,
        // LayerNorm) would inject a job into the pool and put this thread to sleep until the pool
        // finishes it: two cross-thread wake-ups per op, forty-odd times per pass. From a worker
        // those ops fork in place.
        Ok(if matches!(self.device, Device::Cpu) {
            rayon::scope(|_| pass())?
        } else {
            pass()?
        })
    }
}

impl EmbeddingModel for BertEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// sentence-transformers' `Transformer.tokenize`: strip, optionally lowercase, add
    /// `[CLS]`/`[SEP]`, cut at `max_seq_length` (or the request's smaller limit). Tasks and
    /// prompts change nothing.
    fn tokenize(
        &self,
        text: &str,
        _task: &str,
        _prompt: PromptKind,
        trunc: Truncation,
        index: usize,
    ) -> Result<Vec<u32>> {
        let limit = trunc.max_length.min(self.pipeline.max_seq_length);
        let text = text.trim();
        let lowered;
        let text = if self.pipeline.do_lower_case {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        self.tokenizer
            .encode_with_special(text, limit, trunc.truncate, index)
    }

    /// One forward pass over the rows packed without padding.
    fn embed_ids(&self, rows: &[&[u32]], spec: RunSpec) -> Result<Vec<Embedding>> {
        let hidden = self.forward_rows(rows, spec)?;
        let lens: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let cls = self.pipeline.pooling == Pooling::Cls;
        let vectors = sentence_embedding_packed(&hidden, &lens, cls, self.pipeline.normalize)?
            .to_vec2::<f32>()?;
        Ok(rows
            .iter()
            .zip(vectors)
            .map(|(r, single)| Embedding {
                single,
                multi: MultiVector::empty(),
                tokens: r.len(),
            })
            .collect())
    }

    /// The row [`BertEmbedder::tokenize`] reads, uncut: `[CLS]`, the text's tokens, `[SEP]`. The
    /// text is lowercased first when the pipeline says so, which must keep its characters where
    /// they are for the offsets to hold.
    fn tokenize_with_offsets(
        &self,
        text: &str,
        _task: &str,
        _prompt: PromptKind,
        index: usize,
    ) -> Result<TokenizedText> {
        if !self.info.late_chunking {
            return Err(no_late_chunking(&self.info));
        }
        if text.trim().is_empty() {
            return Err(Error::EmptyText { index });
        }
        let lowered;
        let text = if self.pipeline.do_lower_case {
            lowered = text.to_lowercase();
            if lowered.chars().count() != text.chars().count() {
                return Err(Error::InvalidInput(format!(
                    "input {index}: lowercasing changes the number of characters, so chunk \
                     offsets cannot be mapped for late chunking"
                )));
            }
            lowered.as_str()
        } else {
            text
        };
        // Whitespace gives BERT no tokens, so the untrimmed text tokenizes as the trimmed one.
        let (ids, offsets, special) = self.tokenizer.encode_with_offsets(text, true)?;
        let head = special.iter().take_while(|&&s| s).count();
        let tail = special[head..].iter().rev().take_while(|&&s| s).count();
        let offsets = offsets[head..ids.len() - tail].to_vec();
        Ok(TokenizedText {
            ids,
            offsets,
            head,
            tail,
        })
    }

    /// One packed pass over the windows; each span is the mean of its tokens' last hidden states,
    /// normalised when the pipeline ends in `Normalize`.
    fn embed_windows(
        &self,
        rows: &[&[u32]],
        spans: &[&[Range<usize>]],
        spec: RunSpec,
    ) -> Result<Vec<Vec<Embedding>>> {
        if !self.info.late_chunking {
            return Err(no_late_chunking(&self.info));
        }
        let hidden = self.forward_rows(rows, spec)?;
        let starts = row_starts(rows);
        pool_windows(
            &hidden,
            None,
            &starts,
            spans,
            self.pipeline.normalize,
            spec.dims,
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
