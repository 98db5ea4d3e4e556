//! Embedding without a collection, in the two dialects clients already speak:
//! text-embeddings-inference (`POST /embed`, `POST /embed_all`) and OpenAI (`POST /v1/embeddings`,
//! `GET /v1/models`). Every request goes through the model's batching worker, so concurrent callers
//! share forward passes; a full queue answers 429 with `Retry-After`. Errors use each dialect's
//! body (`{"error", "error_type"}` for TEI, `{"error": {"message", "type", …}}` for OpenAI) so their
//! clients show the message.

use actix_web::{web, HttpResponse};
use quiver_encoder::{
    Embedding, EncodeRequest, PromptKind, Truncation, DEFAULT_MAX_LENGTH, DEFAULT_TASK,
};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{blocking, resource};
use crate::http::error::{bad_request, ApiError};
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/embed").route(web::post().to(embed)))
        .service(resource("/embed_all").route(web::post().to(embed_all)))
        .service(resource("/v1/embeddings").route(web::post().to(openai_embeddings)))
        .service(resource("/v1/models").route(web::get().to(openai_models)));
}

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
    fn into_vec(self) -> Vec<String> {
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

/// Parses a JSON body here rather than through the shared extractor, so that its errors come back in
/// the route's dialect.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("format error in JSON body: {e}")))
}

/// What one embedding call asks of a model, in either dialect.
struct Call {
    model: Option<String>,
    texts: Vec<String>,
    task: Option<String>,
    prompt: Option<String>,
    dims: Option<usize>,
    truncate: bool,
}

/// Runs a call on its model's worker; returns the model's name and one embedding per text.
async fn run(state: &AppState, call: Call) -> Result<(String, Vec<Embedding>), ApiError> {
    let (name, service) = state.model(call.model.as_deref())?;
    if call.texts.is_empty() {
        return Err(bad_request("no input: send one text or a non-empty list"));
    }
    if call.texts.len() > state.limits.max_batch {
        return Err(bad_request(format!(
            "{} inputs in one request; the limit is {} (--max-batch)",
            call.texts.len(),
            state.limits.max_batch
        )));
    }
    let prompt: PromptKind = call.prompt.as_deref().unwrap_or("query").parse()?;
    let request = EncodeRequest {
        texts: call.texts,
        task: call.task.unwrap_or_else(|| DEFAULT_TASK.into()),
        prompt,
        dims: call.dims,
        truncation: Truncation {
            max_length: DEFAULT_MAX_LENGTH,
            truncate: call.truncate,
        },
    };
    let embeddings = blocking(move || Ok(service.encode(request)?)).await?;
    Ok((name, embeddings))
}

/// TEI's error body: `{"error": "…", "error_type": "Validation" | "Overloaded" | …}`.
fn tei_error(err: ApiError) -> HttpResponse {
    let kind = match err.status().as_u16() {
        429 => "Overloaded",
        503 => "Unhealthy",
        400..=499 => "Validation",
        _ => "Backend",
    };
    let body = json!({"error": err.to_string(), "error_type": kind});
    err.response_with(body)
}

fn tei_call(body: EmbedRequest, dims_allowed: bool) -> Result<Call, ApiError> {
    if let Some(direction) = body.truncation_direction.as_deref() {
        if !direction.eq_ignore_ascii_case("right") {
            return Err(bad_request(format!(
                "truncation_direction {direction:?} is not supported; only Right"
            )));
        }
    }
    if body.dimensions.is_some() && !dims_allowed {
        return Err(bad_request(
            "dimensions applies to the single vector; /embed_all returns per-token vectors",
        ));
    }
    Ok(Call {
        model: body.model,
        texts: body.inputs.into_vec(),
        task: body.task,
        prompt: body.prompt_name,
        dims: body.dimensions,
        truncate: body.truncate.unwrap_or(false),
    })
}

/// Parses a TEI body and embeds it; `/embed` and `/embed_all` differ only in what they return.
async fn tei_embed(
    state: &AppState,
    body: &[u8],
    dims_allowed: bool,
) -> Result<Vec<Embedding>, ApiError> {
    let body: EmbedRequest = parse(body)?;
    let normalize = body.normalize.unwrap_or(true);
    let call = tei_call(body, dims_allowed)?;
    // TEI normalises unless told not to. A model whose own pipeline normalises cannot give the raw
    // vector back; one whose pipeline does not (a plain BERT checkpoint) is normalised here.
    let normalized = {
        let (name, service) = state.model(call.model.as_deref())?;
        let normalized = service.encoder().normalizes();
        if !normalize && normalized {
            return Err(bad_request(format!(
                "normalize=false is not supported for model `{name}`: its vectors are L2-normalised \
                 by the model itself"
            )));
        }
        // /embed_all: refuse models without per-token vectors before queueing any work.
        if !dims_allowed && !service.encoder().supports_multivector() {
            return Err(bad_request(format!(
                "model `{name}` gives no per-token vectors; use /embed"
            )));
        }
        normalized
    };
    let mut embeddings = run(state, call).await?.1;
    if normalize && !normalized {
        embeddings.iter_mut().for_each(Embedding::normalize);
    }
    Ok(embeddings)
}

/// Single vectors, one per input: `[[f32, …], …]` (text-embeddings-inference's `/embed`).
#[utoipa::path(post, path = "/embed", tag = "embeddings", request_body = EmbedRequest,
    responses((status = 200, description = "One vector per input, in order", body = Vec<Vec<f32>>),
        (status = 400, description = "Bad input (named)"),
        (status = 413, description = "An input is longer than the model's limit and truncate is false"),
        (status = 429, description = "The model's queue is full; retry after Retry-After seconds"),
        (status = 503, description = "The model is still loading")))]
pub async fn embed(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    match tei_embed(&state, &body, true).await {
        Ok(embeddings) => {
            let vectors: Vec<&[f32]> = embeddings.iter().map(|e| e.single.as_slice()).collect();
            HttpResponse::Ok().json(vectors)
        }
        Err(err) => tei_error(err),
    }
}

/// Per-token (multi-vector) embeddings, one matrix per input: `[[[f32; 128], …], …]`, one row per
/// token of the prompt and the text (text-embeddings-inference's `/embed_all`).
#[utoipa::path(post, path = "/embed_all", tag = "embeddings", request_body = EmbedRequest,
    responses((status = 200, description = "One token matrix per input, in order", body = Vec<Vec<Vec<f32>>>),
        (status = 400, description = "Bad input (named)"),
        (status = 429, description = "The model's queue is full")))]
pub async fn embed_all(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    match tei_embed(&state, &body, false).await {
        Ok(embeddings) => {
            let matrices: Vec<Vec<&[f32]>> = embeddings
                .iter()
                .map(|e| e.multi.rows().collect())
                .collect();
            HttpResponse::Ok().json(matrices)
        }
        Err(err) => tei_error(err),
    }
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

/// OpenAI's error body.
fn openai_error(err: ApiError) -> HttpResponse {
    let (kind, code) = match err.status().as_u16() {
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("rate_limit_error", None),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    let body =
        json!({"error": {"message": err.to_string(), "type": kind, "param": null, "code": code}});
    err.response_with(body)
}

fn openai_texts(input: Value) -> Result<Vec<String>, ApiError> {
    let token_ids =
        || bad_request("`input` as token ids is not supported: send a string or a list of strings");
    match input {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                Value::Number(_) | Value::Array(_) => Err(token_ids()),
                other => Err(bad_request(format!(
                    "`input` items must be strings, got {other}"
                ))),
            })
            .collect(),
        other => Err(bad_request(format!(
            "`input` must be a string or a list of strings, got {other}"
        ))),
    }
}

/// Standard base64 of the vector's little-endian f32 bytes, as OpenAI encodes it.
fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    crate::base64::encode(&bytes)
}

/// OpenAI-compatible embeddings: `{"object": "list", "data": [{"object": "embedding", "index",
/// "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}`. Token counts include the
/// prompt prefix the model adds.
#[utoipa::path(post, path = "/v1/embeddings", tag = "embeddings", request_body = OpenAiRequest,
    responses((status = 200, description = "One embedding per input, in order"),
        (status = 400, description = "Bad input (named)"),
        (status = 404, description = "Unknown model"),
        (status = 429, description = "The model's queue is full")))]
pub async fn openai_embeddings(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let result = async {
        let body: OpenAiRequest = parse(&body)?;
        let base64 = match body.encoding_format.as_deref() {
            None | Some("float") => false,
            Some("base64") => true,
            Some(other) => {
                return Err(bad_request(format!(
                    "encoding_format {other:?} is not supported; use float or base64"
                )))
            }
        };
        let call = Call {
            model: Some(body.model),
            texts: openai_texts(body.input)?,
            task: body.task,
            prompt: body.prompt,
            dims: body.dimensions,
            truncate: body.truncate.unwrap_or(false),
        };
        let (model, embeddings) = run(&state, call).await?;
        let tokens: usize = embeddings.iter().map(|e| e.tokens).sum();
        let data: Vec<Value> = embeddings
            .iter()
            .enumerate()
            .map(|(index, e)| {
                let embedding = if base64 {
                    json!(base64_f32(&e.single))
                } else {
                    json!(e.single)
                };
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        Ok(json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }))
    }
    .await;
    match result {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(err) => openai_error(err),
    }
}

/// The configured models, OpenAI's shape: `{"object": "list", "data": [{"id", "object": "model",
/// "created": 0, "owned_by": "quiver"}]}`.
#[utoipa::path(get, path = "/v1/models", tag = "embeddings",
    responses((status = 200, description = "Configured models (loaded or not)")))]
pub async fn openai_models(state: web::Data<AppState>) -> HttpResponse {
    let data: Vec<Value> = state
        .models
        .names()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "quiver"}))
        .collect();
    HttpResponse::Ok().json(json!({"object": "list", "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;

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
