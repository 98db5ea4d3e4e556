//! Embedding Qdrant's inference objects (`{"text", "model", "options"}`) where a vector is expected,
//! before the request reaches the engine. What a document becomes follows from the vector it fills: a
//! dense vector of size `d` gets the model's single vector truncated to `d` (a Matryoshka size) and
//! renormalised; a multivector gets the per-token vectors. Upserts embed with the `passage` prompt,
//! queries with `query`, unless `options.prompt` says otherwise. Identical texts with the same settings
//! are embedded once, and every group goes to its model's batching worker before any is awaited, so
//! one request's documents share forward passes.

use std::collections::HashMap;

use quiver_encoder::models::jina_v4::truncate_normalize;
use quiver_encoder::{EncodeRequest, PromptKind, Truncation, DEFAULT_MAX_LENGTH};
use quiver_engine::CollectionConfig;
use serde_json::Value;

use super::error::{bad_request, ApiError};
use super::models::common::{InferenceObject, VectorStruct, VectorValue};
use super::models::points::{BatchVectors, UpsertPoints};
use super::models::search::{PrefetchList, QueryRequestDto};
use super::state::AppState;
use crate::inference::Models;

/// Which prompt a document gets when its options name none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Stored points: `passage`.
    Store,
    /// Queries: `query`.
    Query,
}

/// Settings that put documents in one encoder request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupKey {
    model: String,
    task: String,
    prompt: PromptKind,
    truncate: bool,
}

/// What one document must become.
enum Shape {
    Dense(usize),
    Multi,
}

/// Where a document's embedding comes from: a text group's request, or an image group's call.
enum Source {
    Text { group: usize, index: usize },
    Image { group: usize, index: usize },
}

struct Planned {
    source: Source,
    shape: Shape,
}

/// Images of one model and task, embedded in one call.
struct ImageGroup {
    model: String,
    task: String,
    service: std::sync::Arc<quiver_encoder::EncoderService>,
    images: Vec<Vec<u8>>,
    /// Position in `images` by the request's encoded form, so one image filling several vectors is
    /// embedded once.
    index: HashMap<String, usize>,
}

/// Replaces every inference object among `targets` (vector name, value) by its embedding.
pub fn embed_in_place(
    models: &Models,
    config: &CollectionConfig,
    targets: Vec<(String, &mut VectorValue)>,
    purpose: Purpose,
) -> Result<(), ApiError> {
    let mut groups: Vec<(GroupKey, Vec<String>, HashMap<String, usize>)> = Vec::new();
    let mut services = Vec::new();
    let mut image_groups: Vec<ImageGroup> = Vec::new();
    let mut plans: Vec<(&mut VectorValue, Planned)> = Vec::new();
    for (name, value) in targets {
        let VectorValue::Inference(object) = &*value else {
            continue;
        };
        let (model_name, options) = match object {
            InferenceObject::Document(doc) => {
                if doc.text.trim().is_empty() {
                    return Err(bad_request("a document's `text` is empty"));
                }
                (doc.model.as_deref(), doc.options.as_ref())
            }
            InferenceObject::Image(image) => (image.model.as_deref(), image.options.as_ref()),
        };
        let what = if name.is_empty() {
            "the vector".to_string()
        } else {
            format!("vector `{name}`")
        };
        let options = DocOptions::parse(options, purpose)?;
        let params = config.vector(&name)?;
        let (model, service) = models.ready(model_name)?;
        let encoder = service.encoder();
        let shape = if params.multivector_config.is_some() {
            let Some(dim) = encoder.multi_vector_dim() else {
                return Err(bad_request(format!(
                    "{what} is a multivector, but model `{model}` gives no per-token vectors"
                )));
            };
            if params.size != dim {
                return Err(bad_request(format!(
                    "{what} is a multivector of size {}, but model `{model}` gives per-token vectors \
                     of size {dim}",
                    params.size
                )));
            }
            if options.dimensions.is_some() {
                return Err(bad_request(format!(
                    "{what} is a multivector: `dimensions` applies to single vectors only"
                )));
            }
            Shape::Multi
        } else {
            if options.dimensions.is_some_and(|d| d != params.size) {
                return Err(bad_request(format!(
                    "{what} has size {}, but the document asks for {} dimensions",
                    params.size,
                    options.dimensions.unwrap_or_default()
                )));
            }
            let dims = encoder.resolve_dims(Some(params.size)).map_err(|e| {
                bad_request(format!(
                    "{what} has size {}, which model `{model}` cannot give ({e}); create the vector \
                     with one of those sizes",
                    params.size
                ))
            })?;
            Shape::Dense(dims)
        };
        encoder.task_index(&options.task)?;
        let doc = match object {
            InferenceObject::Document(doc) => doc,
            InferenceObject::Image(image) => {
                let group = match image_groups
                    .iter()
                    .position(|g| g.model == model && g.task == options.task)
                {
                    Some(i) => i,
                    None => {
                        image_groups.push(ImageGroup {
                            model,
                            task: options.task,
                            service,
                            images: Vec::new(),
                            index: HashMap::new(),
                        });
                        image_groups.len() - 1
                    }
                };
                let g = &mut image_groups[group];
                let key = image.image.to_string();
                let index = match g.index.get(&key) {
                    Some(&i) => i,
                    None => {
                        g.images.push(image_bytes(&image.image)?);
                        g.index.insert(key, g.images.len() - 1);
                        g.images.len() - 1
                    }
                };
                let source = Source::Image { group, index };
                plans.push((value, Planned { source, shape }));
                continue;
            }
        };
        let key = GroupKey {
            model,
            task: options.task,
            prompt: options.prompt,
            truncate: options.truncate,
        };
        let group = match groups.iter().position(|(k, _, _)| *k == key) {
            Some(i) => i,
            None => {
                groups.push((key, Vec::new(), HashMap::new()));
                services.push(service);
                groups.len() - 1
            }
        };
        let (_, texts, index) = &mut groups[group];
        let text = *index.entry(doc.text.clone()).or_insert_with(|| {
            texts.push(doc.text.clone());
            texts.len() - 1
        });
        let source = Source::Text { group, index: text };
        plans.push((value, Planned { source, shape }));
    }
    if plans.is_empty() {
        return Ok(());
    }
    // Submit every group first, so the workers can batch them together, then collect.
    let mut pending = Vec::with_capacity(groups.len());
    for ((key, texts, _), service) in groups.into_iter().zip(&services) {
        pending.push(service.submit(EncodeRequest {
            texts,
            task: key.task,
            prompt: key.prompt,
            dims: None,
            truncation: Truncation {
                max_length: DEFAULT_MAX_LENGTH,
                truncate: key.truncate,
            },
        })?);
    }
    // Images run here, on this request's thread (holding a queue slot), while the workers embed the
    // texts.
    let image_results = image_groups
        .iter()
        .map(|g| g.service.encode_images(&g.images, &g.task))
        .collect::<Result<Vec<_>, _>>()?;
    let results = pending
        .into_iter()
        .map(|p| p.wait())
        .collect::<Result<Vec<_>, _>>()?;
    for (value, plan) in plans {
        let embedding = match plan.source {
            Source::Text { group, index } => &results[group][index],
            Source::Image { group, index } => &image_results[group][index],
        };
        *value = match plan.shape {
            Shape::Dense(d) if d == embedding.single.len() => {
                VectorValue::Dense(embedding.single.clone())
            }
            Shape::Dense(d) => VectorValue::Dense(truncate_normalize(&embedding.single, d)),
            Shape::Multi => {
                VectorValue::Multi(embedding.multi.rows().map(<[f32]>::to_vec).collect())
            }
        };
    }
    Ok(())
}

/// A document's options, with defaults.
struct DocOptions {
    task: String,
    prompt: PromptKind,
    dimensions: Option<usize>,
    truncate: bool,
}

impl DocOptions {
    fn parse(
        options: Option<&serde_json::Map<String, Value>>,
        purpose: Purpose,
    ) -> Result<Self, ApiError> {
        let mut out = DocOptions {
            task: "retrieval".into(),
            prompt: match purpose {
                Purpose::Store => PromptKind::Passage,
                Purpose::Query => PromptKind::Query,
            },
            dimensions: None,
            truncate: false,
        };
        let bad =
            |key: &str, want: &str| bad_request(format!("document option `{key}` must be {want}"));
        for (key, value) in options.into_iter().flatten() {
            match key.as_str() {
                "task" => out.task = value.as_str().ok_or_else(|| bad(key, "a string"))?.into(),
                "prompt" | "prompt_name" => {
                    out.prompt = value
                        .as_str()
                        .ok_or_else(|| bad(key, "`query` or `passage`"))?
                        .parse()?
                }
                "dimensions" => {
                    out.dimensions = Some(
                        value
                            .as_u64()
                            .ok_or_else(|| bad(key, "a positive integer"))?
                            as usize,
                    )
                }
                "truncate" => {
                    out.truncate = value.as_bool().ok_or_else(|| bad(key, "true or false"))?
                }
                other => {
                    return Err(bad_request(format!(
                    "unknown document option `{other}`; known: task, prompt, dimensions, truncate"
                )))
                }
            }
        }
        Ok(out)
    }
}

/// The bytes of an image object's `image`: base64, bare or as a `data:` URL. URLs and server paths are
/// not read: a request must not make the server fetch or open files.
fn image_bytes(image: &Value) -> Result<Vec<u8>, ApiError> {
    let Value::String(text) = image else {
        return Err(bad_request(
            "`image` must be a string: the image file as base64 (or a data: URL)",
        ));
    };
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(bad_request(
            "image URLs are not fetched by the server: send the image file as base64",
        ));
    }
    let payload = match text.strip_prefix("data:") {
        Some(rest) => match rest.split_once(";base64,") {
            Some((_, data)) => data,
            None => return Err(bad_request("a data: URL image must be base64 (`;base64,`)")),
        },
        None => text,
    };
    crate::base64::decode(payload).map_err(|e| bad_request(format!("`image`: {e}")))
}

/// The values of an upsert that may hold documents, with their vector names.
pub fn upsert_targets(body: &mut UpsertPoints) -> Vec<(String, &mut VectorValue)> {
    let mut out = Vec::new();
    for point in body.points.iter_mut().flatten() {
        match &mut point.vector {
            VectorStruct::Single(value) => out.push((String::new(), value)),
            VectorStruct::Named(map) => {
                out.extend(map.iter_mut().map(|(name, value)| (name.clone(), value)))
            }
        }
    }
    if let Some(batch) = &mut body.batch {
        match &mut batch.vectors {
            BatchVectors::Single(values) => {
                out.extend(values.iter_mut().map(|value| (String::new(), value)))
            }
            BatchVectors::Named(map) => {
                for (name, values) in map.iter_mut() {
                    out.extend(values.iter_mut().map(|value| (name.clone(), value)));
                }
            }
        }
    }
    out
}

/// Embeds the documents in a query and its prefetches (at any depth), each for the vector its stage
/// searches (`using`), and writes the vectors back as JSON.
pub fn embed_query(
    state: &AppState,
    config: &CollectionConfig,
    dto: &mut QueryRequestDto,
) -> Result<(), ApiError> {
    let mut slots: Vec<(String, &mut Value)> = Vec::new();
    let using = dto.using.clone().unwrap_or_default();
    if let Some(query) = dto.query.as_mut() {
        slots.push((using, query));
    }
    collect_prefetch(dto.prefetch.as_mut(), &mut slots);
    let mut parsed: Vec<(String, VectorValue)> = Vec::new();
    let mut places: Vec<&mut Value> = Vec::new();
    for (using, slot) in slots {
        let nearest = matches!(&*slot, Value::Object(map) if map.contains_key("nearest"));
        let target = if nearest {
            match slot.get_mut("nearest") {
                Some(inner) => inner,
                None => continue,
            }
        } else {
            slot
        };
        if let Some(object) = as_inference(target)? {
            parsed.push((using, VectorValue::Inference(object)));
            places.push(target);
        }
    }
    if parsed.is_empty() {
        return Ok(());
    }
    embed_in_place(
        &state.models,
        config,
        parsed
            .iter_mut()
            .map(|(using, value)| (using.clone(), value))
            .collect(),
        Purpose::Query,
    )?;
    for (place, (_, value)) in places.into_iter().zip(parsed) {
        *place = serde_json::to_value(value).expect("vectors serialise to JSON");
    }
    Ok(())
}

fn collect_prefetch<'a>(
    list: Option<&'a mut PrefetchList>,
    slots: &mut Vec<(String, &'a mut Value)>,
) {
    let prefetches: &mut [_] = match list {
        None => return,
        Some(PrefetchList::One(p)) => std::slice::from_mut(p.as_mut()),
        Some(PrefetchList::Many(v)) => v.as_mut_slice(),
    };
    for prefetch in prefetches {
        let using = prefetch.using.clone().unwrap_or_default();
        if let Some(query) = prefetch.query.as_mut() {
            slots.push((using, query));
        }
        collect_prefetch(prefetch.prefetch.as_mut(), slots);
    }
}

/// An inference object, if `value` is one (`{"text": …}` or `{"image": …}`).
fn as_inference(value: &Value) -> Result<Option<InferenceObject>, ApiError> {
    let Value::Object(map) = value else {
        return Ok(None);
    };
    if !map.contains_key("text") && !map.contains_key("image") {
        return Ok(None);
    }
    let malformed = |e: serde_json::Error| bad_request(format!("malformed inference object: {e}"));
    if map.contains_key("text") {
        serde_json::from_value(value.clone())
            .map(|d| Some(InferenceObject::Document(d)))
            .map_err(malformed)
    } else {
        serde_json::from_value(value.clone())
            .map(|i| Some(InferenceObject::Image(i)))
            .map_err(malformed)
    }
}
