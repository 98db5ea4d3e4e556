//! The sentence-transformers pipeline around a BERT checkpoint: `modules.json`,
//! `sentence_bert_config.json` and the pooling config, read the way `SentenceTransformer`
//! reads them so the vectors match it.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// What sentence-transformers does around the transformer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentencePipeline {
    /// Tokens per input, `[CLS]` and `[SEP]` included; longer inputs are cut on the right.
    pub max_seq_length: usize,
    /// Lowercase the text before tokenizing (`sentence_bert_config.json`; the tokenizer's own
    /// normalizer may lowercase as well).
    pub do_lower_case: bool,
    /// A `Normalize` module follows pooling: the vector is L2-normalised.
    pub normalize: bool,
    /// How the token states become one vector.
    pub pooling: Pooling,
}

/// The sentence-transformers pooling modes Quiver implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the token states (all-MiniLM-L6-v2, most sentence-transformers models).
    Mean,
    /// The first token's state, `[CLS]` (the BGE and GTE families).
    Cls,
}

#[derive(Deserialize)]
struct Module {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct BertConfigFile {
    #[serde(default)]
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize, Default)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::config(path, e.to_string()))
}

impl SentencePipeline {
    /// Reads the pipeline of `dir`. `max_position_embeddings` bounds the sequence length.
    ///
    /// Without `modules.json` this is what `SentenceTransformer` builds for a plain transformers
    /// checkpoint: mean pooling and no normalisation.
    pub fn from_dir(dir: &Path, max_position_embeddings: usize) -> Result<Self> {
        let modules_path = dir.join("modules.json");
        let (pooling_dir, normalize) = if modules_path.is_file() {
            let modules: Vec<Module> = read_json(&modules_path)?;
            let kind = |m: &Module| m.kind.rsplit('.').next().unwrap_or("").to_string();
            let known = ["Transformer", "Pooling", "Normalize"];
            if let Some(m) = modules.iter().find(|m| !known.contains(&kind(m).as_str())) {
                return Err(Error::Unsupported(format!(
                    "{}: module {} is not supported (only Transformer, Pooling, Normalize)",
                    modules_path.display(),
                    m.kind
                )));
            }
            let order: Vec<String> = modules.iter().map(kind).collect();
            let expected_prefix = ["Transformer", "Pooling"];
            if order.len() < 2 || order[..2] != expected_prefix {
                return Err(Error::Unsupported(format!(
                    "{}: modules {order:?} are not Transformer, Pooling[, Normalize]",
                    modules_path.display()
                )));
            }
            let pooling = &modules[1];
            (
                Some(dir.join(&pooling.path)),
                order.get(2).map(String::as_str) == Some("Normalize"),
            )
        } else {
            (None, false)
        };

        let pooling = match pooling_dir {
            None => Pooling::Mean,
            Some(pdir) => {
                let pcfg = pdir.join("config.json");
                let p: PoolingFile = if pcfg.is_file() {
                    read_json(&pcfg)?
                } else {
                    PoolingFile::default()
                };
                // sentence-transformers concatenates the outputs of every mode switched on; Quiver
                // implements one mode at a time.
                let modes = match p.pooling_mode.as_deref() {
                    Some(mode) => vec![mode],
                    None => [
                        (p.pooling_mode_cls_token, "cls"),
                        (p.pooling_mode_mean_tokens, "mean"),
                        (p.pooling_mode_max_tokens, "max"),
                        (p.pooling_mode_mean_sqrt_len_tokens, "mean_sqrt_len_tokens"),
                        (p.pooling_mode_weightedmean_tokens, "weightedmean"),
                        (p.pooling_mode_lasttoken, "lasttoken"),
                    ]
                    .into_iter()
                    .filter_map(|(on, name)| on.then_some(name))
                    .collect(),
                };
                match modes[..] {
                    ["mean"] => Pooling::Mean,
                    ["cls"] => Pooling::Cls,
                    _ => {
                        return Err(Error::Unsupported(format!(
                            "{}: pooling {modes:?} is not supported (only one of mean or cls)",
                            pcfg.display()
                        )))
                    }
                }
            }
        };

        let sb_path = dir.join("sentence_bert_config.json");
        let sb: BertConfigFile = if sb_path.is_file() {
            read_json(&sb_path)?
        } else {
            BertConfigFile {
                max_seq_length: None,
                do_lower_case: false,
            }
        };
        let max_seq_length = match sb.max_seq_length {
            Some(0) => return Err(Error::config(&sb_path, "max_seq_length must be positive")),
            Some(n) if n > max_position_embeddings => {
                return Err(Error::config(
                    &sb_path,
                    format!(
                    "max_seq_length {n} exceeds max_position_embeddings {max_position_embeddings}"
                ),
                ))
            }
            Some(n) => n,
            // sentence-transformers: min(max_position_embeddings, tokenizer model_max_length).
            None => tokenizer_max_length(dir)?
                .map_or(max_position_embeddings, |t| t.min(max_position_embeddings)),
        };
        Ok(SentencePipeline {
            max_seq_length,
            do_lower_case: sb.do_lower_case,
            normalize,
            pooling,
        })
    }
}

fn tokenizer_max_length(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let v: serde_json::Value = read_json(&path)?;
    // transformers writes a huge sentinel when the length is unknown.
    Ok(v.get("model_max_length")
        .and_then(|m| m.as_u64())
        .filter(|&m| m < 1 << 30)
        .map(|m| m as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    const MODULES: &str = r#"[
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]"#;

    #[test]
    fn minilm_layout() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "modules.json", MODULES);
        write(
            tmp.path(),
            "sentence_bert_config.json",
            r#"{"max_seq_length": 256, "do_lower_case": false}"#,
        );
        write(
            tmp.path(),
            "1_Pooling/config.json",
            r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
                "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#,
        );
        let p = SentencePipeline::from_dir(tmp.path(), 512).unwrap();
        assert_eq!(
            p,
            SentencePipeline {
                max_seq_length: 256,
                do_lower_case: false,
                normalize: true,
                pooling: Pooling::Mean,
            }
        );
        assert!(SentencePipeline::from_dir(tmp.path(), 128).is_err());
        write(
            tmp.path(),
            "1_Pooling/config.json",
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        );
        let p = SentencePipeline::from_dir(tmp.path(), 512).unwrap();
        assert_eq!(p.pooling, Pooling::Cls);
        write(
            tmp.path(),
            "1_Pooling/config.json",
            r#"{"pooling_mode": "cls"}"#,
        );
        let p = SentencePipeline::from_dir(tmp.path(), 512).unwrap();
        assert_eq!(p.pooling, Pooling::Cls);
        for bad in [
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#,
            r#"{"pooling_mode_max_tokens": true}"#,
            r#"{"pooling_mode": "lasttoken"}"#,
            r#"{}"#,
        ] {
            write(tmp.path(), "1_Pooling/config.json", bad);
            let err = SentencePipeline::from_dir(tmp.path(), 512).unwrap_err();
            assert!(
                err.to_string().contains("only one of mean or cls"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn plain_checkpoint_is_mean_without_normalize() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "tokenizer_config.json",
            r#"{"model_max_length": 128}"#,
        );
        let p = SentencePipeline::from_dir(tmp.path(), 512).unwrap();
        assert_eq!(
            (p.max_seq_length, p.normalize, p.pooling),
            (128, false, Pooling::Mean)
        );
    }
}
