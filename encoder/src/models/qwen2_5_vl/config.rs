//! Qwen2.5-VL `config.json`, text side, in both formats found in the wild.
//!
//! Files saved by transformers 4.4x/4.5x (such as jina-embeddings-v4's) carry the text fields twice:
//! flat at the top level and nested under `text_config`, with `rope_scaling` + `rope_theta`.
//! transformers 5.x writes only `text_config`, with `rope_parameters` and `sliding_window: null`.
//! Values are taken from `text_config` first and fall back to the top level.
//! Reference: transformers `Qwen2_5_VLTextConfig`
//! <https://github.com/huggingface/transformers/blob/v4.52.4/src/transformers/models/qwen2_5_vl/configuration_qwen2_5_vl.py>.

use serde::Deserialize;

/// `mrope_section` transformers uses when a config omits it.
const DEFAULT_MROPE_SECTION: [usize; 3] = [16, 24, 24];

/// The fields of a Qwen2.5-VL text config that may appear at either level.
#[derive(Debug, Default, Clone, Deserialize)]
struct RawText {
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<RawRope>,
    rope_parameters: Option<RawRope>,
    max_position_embeddings: Option<usize>,
    hidden_act: Option<String>,
    use_sliding_window: Option<bool>,
    tie_word_embeddings: Option<bool>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<u32>,
    pad_token_id: Option<u32>,
    image_token_id: Option<u32>,
    video_token_id: Option<u32>,
    vision_start_token_id: Option<u32>,
    vision_end_token_id: Option<u32>,
    vision_token_id: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct RawRope {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    rope_type: Option<String>,
    rope_theta: Option<f64>,
    mrope_section: Option<Vec<usize>>,
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(flatten)]
    top: RawText,
    #[serde(default)]
    text_config: Option<RawText>,
    #[serde(default)]
    model_type: Option<String>,
}

/// Special token ids, read from the config (never hard-coded: tiny test models use other ids).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecialTokens {
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    pub image_token_id: Option<u32>,
    pub video_token_id: Option<u32>,
    pub vision_start_token_id: Option<u32>,
    pub vision_end_token_id: Option<u32>,
    pub vision_token_id: Option<u32>,
}

/// The resolved text-decoder configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// Rotary frequency slots given to the t, h and w components; sums to `head_dim / 2`.
    pub mrope_section: [usize; 3],
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub special: SpecialTokens,
}

impl TextConfig {
    /// Parses a `config.json` body. Errors are plain messages; the caller adds the path.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if let Some(mt) = &raw.model_type {
            if !matches!(
                mt.as_str(),
                "qwen2_5_vl" | "qwen2_vl" | "jina_embeddings_v4"
            ) {
                return Err(format!(
                    "model_type {mt:?} is not a Qwen2.5-VL / jina-embeddings-v4 model"
                ));
            }
        }
        let nested = raw.text_config.clone().unwrap_or_default();
        let top = &raw.top;
        macro_rules! pick {
            ($f:ident) => {
                nested.$f.clone().or_else(|| top.$f.clone())
            };
        }
        macro_rules! need {
            ($f:ident) => {
                pick!($f).ok_or_else(|| format!("missing field `{}`", stringify!($f)))?
            };
        }

        let hidden_size: usize = need!(hidden_size);
        let num_attention_heads: usize = need!(num_attention_heads);
        let num_key_value_heads = pick!(num_key_value_heads).unwrap_or(num_attention_heads);
        if num_attention_heads == 0 || !hidden_size.is_multiple_of(num_attention_heads) {
            return Err(format!(
                "hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}"
            ));
        }
        if num_key_value_heads == 0 || !num_attention_heads.is_multiple_of(num_key_value_heads) {
            return Err(format!(
                "num_attention_heads {num_attention_heads} is not a multiple of num_key_value_heads {num_key_value_heads}"
            ));
        }
        let head_dim = pick!(head_dim).unwrap_or(hidden_size / num_attention_heads);

        // 5.x: rope_parameters; 4.x: rope_scaling + rope_theta. Either may sit at either level.
        let rope = pick!(rope_parameters).or_else(|| pick!(rope_scaling));
        if let Some(r) = &rope {
            let kind = r
                .rope_type
                .as_deref()
                .or(r.kind.as_deref())
                .unwrap_or("default");
            if !matches!(kind, "default" | "mrope") {
                return Err(format!(
                    "rope type {kind:?} is not supported (only default/mrope)"
                ));
            }
        }
        let rope_theta = rope
            .as_ref()
            .and_then(|r| r.rope_theta)
            .or_else(|| pick!(rope_theta))
            .unwrap_or(1_000_000.0);
        let mrope_section = match rope.as_ref().and_then(|r| r.mrope_section.clone()) {
            Some(s) if s.len() == 3 => [s[0], s[1], s[2]],
            Some(s) => return Err(format!("mrope_section must have 3 entries, got {s:?}")),
            None => DEFAULT_MROPE_SECTION,
        };
        if mrope_section.iter().sum::<usize>() * 2 != head_dim {
            return Err(format!(
                "mrope_section {mrope_section:?} must sum to head_dim/2 = {}",
                head_dim / 2
            ));
        }

        if let Some(act) = pick!(hidden_act) {
            if act != "silu" {
                return Err(format!("hidden_act {act:?} is not supported (only silu)"));
            }
        }
        // Qwen2.5-VL ships with use_sliding_window=false; a window would change every output
        // past it, so refuse rather than silently compute full attention.
        if pick!(use_sliding_window).unwrap_or(false) {
            return Err("use_sliding_window=true is not supported".into());
        }

        Ok(TextConfig {
            vocab_size: need!(vocab_size),
            hidden_size,
            intermediate_size: need!(intermediate_size),
            num_hidden_layers: need!(num_hidden_layers),
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: pick!(rms_norm_eps).unwrap_or(1e-6),
            rope_theta,
            mrope_section,
            max_position_embeddings: pick!(max_position_embeddings).unwrap_or(128_000),
            tie_word_embeddings: pick!(tie_word_embeddings).unwrap_or(true),
            special: SpecialTokens {
                // Top-level ids win here: multimodal ids are model-level fields, and 5.x keeps
                // bos/eos only where the model was configured.
                bos_token_id: top.bos_token_id.or(nested.bos_token_id),
                eos_token_id: top.eos_token_id.or(nested.eos_token_id),
                pad_token_id: top.pad_token_id.or(nested.pad_token_id),
                image_token_id: top.image_token_id.or(nested.image_token_id),
                video_token_id: top.video_token_id.or(nested.video_token_id),
                vision_start_token_id: top.vision_start_token_id.or(nested.vision_start_token_id),
                vision_end_token_id: top.vision_end_token_id.or(nested.vision_end_token_id),
                vision_token_id: top.vision_token_id.or(nested.vision_token_id),
            },
        })
    }

    /// Query heads per key/value head (GQA group size).
    pub fn n_rep(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_flat_and_nested() {
        let json = r#"{
            "model_type": "qwen2_5_vl", "hidden_size": 2048, "vocab_size": 151936,
            "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
            "num_key_value_heads": 2, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
            "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": [16, 24, 24]},
            "sliding_window": 32768, "use_sliding_window": false,
            "image_token_id": 151655, "vision_start_token_id": 151652,
            "text_config": {"hidden_size": 2048, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}
        }"#;
        let c = TextConfig::from_json(json).unwrap();
        assert_eq!(c.head_dim, 128);
        assert_eq!(c.n_rep(), 8);
        assert_eq!(c.mrope_section, [16, 24, 24]);
        assert_eq!(c.special.image_token_id, Some(151655));
    }

    #[test]
    fn v5_rope_parameters_and_null_window() {
        let json = r#"{
            "model_type": "qwen2_5_vl", "image_token_id": 500,
            "text_config": {"hidden_size": 64, "vocab_size": 512, "intermediate_size": 96,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "sliding_window": null, "use_sliding_window": false,
              "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}}
        }"#;
        let c = TextConfig::from_json(json).unwrap();
        assert_eq!(c.rope_theta, 10000.0);
        assert_eq!(c.mrope_section, [2, 3, 3]);
    }

    #[test]
    fn rejects_bad_sections() {
        let json = r#"{"hidden_size": 64, "vocab_size": 8, "intermediate_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 4,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 2]}}"#;
        assert!(TextConfig::from_json(json)
            .unwrap_err()
            .contains("mrope_section"));
    }
}
