//! The sentence-transformers BERT path of [`Encoder`]: loading, tokenization with the
//! pipeline's length limit, and one packed forward pass with mean or `[CLS]` pooling.

use std::path::Path;

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::{
    Backbone, Embedding, Encoder, LoadOptions, MultiVector, RunSpec, DEFAULT_BATCH_TOKENS,
};
use crate::error::{Error, Result};
use crate::image::{ImageLimits, PreprocessorConfig};
use crate::loading::checkpoint::find_shards;
use crate::loading::sentence_transformers::Pooling;
use crate::loading::SentencePipeline;
use crate::models::bert::{sentence_embedding_packed, BertConfig, BertModel};
use crate::prompt::{TextTokenizer, Truncation};

impl Encoder {
    /// Loads a BERT checkpoint laid out as sentence-transformers saves it: `config.json`,
    /// `model.safetensors`, `tokenizer.json`, optional `modules.json`,
    /// `sentence_bert_config.json` and `1_Pooling/config.json`.
    pub(super) fn load_bert(dir: &Path, config_json: &str, opts: &LoadOptions) -> Result<Self> {
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
        // switched off by `TextTokenizer`; rows are cut at max_seq_length and padded per batch.
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
        Ok(Encoder {
            pad_id: cfg.pad_token_id,
            backbone: Backbone::Bert {
                model: Box::new(model),
                pipeline,
            },
            tokenizer,
            preprocessor: PreprocessorConfig::default(),
            image_limits: ImageLimits::default(),
            image_prompt: None,
            device: opts.device.clone(),
            dtype: opts.dtype,
            batch_tokens: DEFAULT_BATCH_TOKENS,
        })
    }

    /// sentence-transformers' `Transformer.tokenize`: strip, optionally lowercase, add
    /// `[CLS]`/`[SEP]`, cut at `max_seq_length` (or the request's smaller limit).
    pub(super) fn tokenize_bert(
        &self,
        texts: &[impl AsRef<str>],
        pipeline: &SentencePipeline,
        trunc: Truncation,
    ) -> Result<Vec<Vec<u32>>> {
        let limit = trunc.max_length.min(pipeline.max_seq_length);
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let text = t.as_ref().trim();
                let lowered;
                let text = if pipeline.do_lower_case {
                    lowered = text.to_lowercase();
                    lowered.as_str()
                } else {
                    text
                };
                self.tokenizer
                    .encode_with_special(text, limit, trunc.truncate, i)
            })
            .collect()
    }

    /// One forward pass over the rows packed without padding; rows are already validated against the
    /// vocabulary.
    pub(super) fn embed_ids_bert(
        &self,
        model: &BertModel,
        pipeline: &SentencePipeline,
        rows: &[&[u32]],
        spec: RunSpec,
    ) -> Result<Vec<Embedding>> {
        let full = model.config().hidden_size;
        if spec.dims != full {
            return Err(Error::InvalidDimension {
                got: spec.dims,
                valid: vec![full],
            });
        }
        let max_positions = model.config().max_position_embeddings;
        if let Some(i) = rows.iter().position(|r| r.len() > max_positions) {
            return Err(Error::TooLong {
                index: i,
                tokens: rows[i].len(),
                max_length: max_positions,
            });
        }
        let lens: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let ids = rows.concat();
        let input_ids = Tensor::from_vec(ids, lens.iter().sum::<usize>(), &self.device)?;
        let hidden = model.forward_packed(&input_ids, &lens)?;
        let cls = pipeline.pooling == Pooling::Cls;
        let vectors =
            sentence_embedding_packed(&hidden, &lens, cls, pipeline.normalize)?.to_vec2::<f32>()?;
        Ok(rows
            .iter()
            .zip(vectors)
            .map(|(r, single)| Embedding {
                single,
                multi: MultiVector {
                    dim: 0,
                    data: Vec::new(),
                },
                tokens: r.len(),
            })
            .collect())
    }
}
