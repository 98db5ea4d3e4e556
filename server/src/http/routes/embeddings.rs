//! Embedding without a collection, in the two dialects clients already speak:
//! text-embeddings-inference (`POST /embed`, `POST /embed_all`) and OpenAI (`POST /v1/embeddings`,
//! `GET /v1/models`). Every request goes through the model's batching worker, so concurrent callers
//! share forward passes; a full queue answers 429 with `Retry-After`. Errors use each dialect's
//! body (`{"error", "error_type"}` for TEI, `{"error": {"message", "type", …}}` for OpenAI) so their
//! clients show the message.

use actix_web::{web, HttpResponse};
use quiver_encoder::{
    Embedding, EncodeRequest, Inline, PromptKind, Truncation, DEFAULT_MAX_LENGTH, DEFAULT_TASK,
};
use serde_json::{json, Value};

use super::{blocking, on_compute_pool, resource};
use crate::api::embeddings::{base64_f32, openai_texts, EmbedRequest, OpenAiRequest};
use crate::http::error::{bad_request, ApiError};
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/embed").route(web::post().to(embed)))
        .service(resource("/embed_all").route(web::post().to(embed_all)))
        .service(resource("/v1/embeddings").route(web::post().to(openai_embeddings)))
        .service(resource("/v1/models").route(web::get().to(openai_models)));
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
    // An idle CPU encoder runs the request on a rayon worker (see `on_compute_pool`); a busy one,
    // or a GPU one, takes the queue from the blocking pool, where waiting is allowed.
    let request = if service.runs_inline() {
        let svc = service.clone();
        match on_compute_pool(move || Ok(svc.try_inline(request)?)).await? {
            Inline::Done(embeddings) => return Ok((name, embeddings)),
            Inline::Queue(request) => request,
        }
    } else {
        request
    };
    let embeddings = blocking(move || Ok(service.submit(request)?.wait()?)).await?;
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
