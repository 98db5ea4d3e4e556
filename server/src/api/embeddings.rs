//! Bodies of the embedding routes: text-embeddings-inference's `POST /embed` and `POST /embed_all`, and
//! OpenAI's `POST /v1/embeddings`.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{invalid, Error};

/// One text or a list of texts.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Inputs {
    /// One text.
    One(String),
    /// Several texts, answered in order.
    Many(Vec<String>),
}

impl Inputs {
    /// The texts, in order.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Inputs::One(s) => vec![s],
            Inputs::Many(v) => v,
        }
    }
}

/// Body of `POST /embed` and `POST /embed_all` (text-embeddings-inference's fields, plus `task`,
/// `dimensions` and `model`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    /// Text or texts to embed.
    pub inputs: Inputs,
    /// L2-normalise the vectors (default true). `false` returns the raw pooled vector of a model whose
    /// own pipeline does not normalise, and is refused for one that does.
    #[serde(default)]
    pub normalize: Option<bool>,
    /// Cut inputs longer than the model's limit instead of answering 413 (default false, as TEI).
    #[serde(default)]
    pub truncate: Option<bool>,
    /// Only `Right` (the end of the text is cut).
    #[serde(default)]
    pub truncation_direction: Option<String>,
    /// `query` (default) or `passage`: the prompt prefix of asymmetric retrieval.
    #[serde(default)]
    pub prompt_name: Option<String>,
    /// Task adapter: `retrieval` (default), `text-matching` or `code`.
    #[serde(default)]
    pub task: Option<String>,
    /// Matryoshka dimension of the single vector (`/embed` only; default: full size).
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Model name (needed only when the server runs several).
    #[serde(default)]
    pub model: Option<String>,
}

/// Body of `POST /v1/embeddings` (OpenAI's fields, plus `task` and `prompt`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiRequest {
    /// A text or a list of texts (token-id arrays are refused: send text).
    pub input: Value,
    /// The model's name (as in `GET /v1/models`).
    pub model: String,
    /// `float` (default) or `base64` (little-endian f32 bytes).
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Matryoshka dimension (default: full size).
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    pub user: Option<String>,
    /// Task adapter: `retrieval` (default), `text-matching` or `code`.
    #[serde(default)]
    pub task: Option<String>,
    /// `query` (default) or `passage`.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Cut inputs over the model's limit instead of refusing them (default false).
    #[serde(default)]
    pub truncate: Option<bool>,
}

/// The texts of OpenAI's `input`: a string or a list of strings (token ids are refused).
pub fn openai_texts(input: Value) -> Result<Vec<String>, Error> {
    let token_ids =
        || invalid("`input` as token ids is not supported: send a string or a list of strings");
    match input {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                Value::Number(_) | Value::Array(_) => Err(token_ids()),
                other => Err(invalid(format!(
                    "`input` items must be strings, got {other}"
                ))),
            })
            .collect(),
        other => Err(invalid(format!(
            "`input` must be a string or a list of strings, got {other}"
        ))),
    }
}

/// Standard base64 of the vector's little-endian f32 bytes, as OpenAI encodes it.
pub fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    crate::base64::encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_matches_the_standard_encoding() {
        // 1.0f32 = 00 00 80 3f; 2.0f32 = 00 00 00 40.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 2.0]), "AACAPwAAAEA=");
        assert_eq!(base64_f32(&[]), "");
        assert_eq!(base64_f32(&[1.0, 2.0, -0.5]).len(), 16);
    }

    #[test]
    fn openai_inputs_are_strings_only() {
        assert_eq!(openai_texts(json!("a")).unwrap(), vec!["a"]);
        assert_eq!(openai_texts(json!(["a", "b"])).unwrap(), vec!["a", "b"]);
        for bad in [json!([1, 2]), json!([[1, 2]]), json!(3), json!([null])] {
            assert!(openai_texts(bad).is_err());
        }
    }
}
