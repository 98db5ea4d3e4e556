//! A sentence-transformers BERT behind [`EmbeddingModel`]: loading, tokenization with the
//! pipeline's length limit, and one packed forward pass with mean or `[CLS]` pooling.

use std::any::Any;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

use super::LoadOptions;
use crate::embedding::{Embedding, MultiVector};
use crate::error::{Error, Result};
use crate::loading::checkpoint::find_shards;
use crate::loading::sentence_transformers::Pooling;
use crate::loading::SentencePipeline;
use crate::model::{EmbeddingModel, ModelInfo, ModelKind, RunSpec};
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
        let model = BertModel::new(&cfg, vb).map_err(|e| Error::Weights(e.to_string()))?;
        tracing::info!(
            model = %dir.display(),
            dtype = ?opts.dtype,
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
        let cls = self.pipeline.pooling == Pooling::Cls;
        let pass = || -> candle_core::Result<Vec<Vec<f32>>> {
            let input_ids = Tensor::from_vec(ids, lens.iter().sum::<usize>(), &self.device)?;
            let hidden = self.model.forward_packed(&input_ids, &lens)?;
            sentence_embedding_packed(&hidden, &lens, cls, self.pipeline.normalize)?
                .to_vec2::<f32>()
        };
        // On the CPU the whole pass runs on one rayon worker. Called from the batching worker
        // (not a pool thread), each parallel op inside it (the threaded GEMMs, GELU, softmax,
        // LayerNorm) would inject a job into the pool and put this thread to sleep until the pool
        // finishes it: two cross-thread wake-ups per op, forty-odd times per pass, which a short
        // query paid more for than for its arithmetic. From a worker those ops fork in place.
        let vectors = if matches!(self.device, Device::Cpu) {
            rayon::scope(|_| pass())?
        } else {
            pass()?
        };
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

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
