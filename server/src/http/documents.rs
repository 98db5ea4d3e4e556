//! Embedding Qdrant's inference objects (`{"text", "model", "options"}`) where a vector is expected,
//! before the request reaches the engine. What a document becomes follows from the vector it fills: a
//! dense vector of size `d` gets the model's single vector truncated to `d` (a Matryoshka size) and
//! renormalised; a multivector gets the per-token vectors. Upserts embed with the `passage` prompt,
//! queries with `query`, unless `options.prompt` says otherwise. Identical texts with the same settings
//! are embedded once, and every group goes to its model's batching worker before any is awaited, so
//! one request's documents share forward passes.

use std::collections::{BTreeMap, HashMap};

use quiver_encoder::models::jina_v4::truncate_normalize;
use quiver_encoder::{EncodeRequest, PromptKind, Truncation, DEFAULT_MAX_LENGTH};
use quiver_engine::config::DEFAULT_EMBEDDING_TASK;
use quiver_engine::{CollectionConfig, VectorParams};
use serde_json::Value;

use super::error::{bad_request, ApiError};
use super::state::AppState;
use crate::api::common::{InferenceObject, VectorStruct, VectorValue};
use crate::api::points::{BatchVectors, UpsertPoints};
use crate::api::search::{PrefetchList, QueryRequestDto};
use crate::inference::{ModelState, Models};

/// The payload field a bound vector's document text is kept in.
pub const TEXT_FIELD: &str = "text";

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
        let binding = config.embedding.get(&name);
        if let (Some(b), Some(named)) = (binding, model_name) {
            if named != b.model {
                return Err(bad_request(format!(
                    "{what} is bound to model `{}`; the document names `{named}`",
                    b.model
                )));
            }
        }
        let model_name = model_name.or(binding.map(|b| b.model.as_str()));
        let default_task = binding.map_or(DEFAULT_EMBEDDING_TASK, |b| b.task.as_str());
        let options = DocOptions::parse(options, purpose, default_task)?;
        let params = config.vector(&name)?;
        let (model, service) = models.ready(model_name)?;
        let encoder = service.encoder();
        if options.dimensions.is_some() && params.multivector_config.is_some() {
            return Err(bad_request(format!(
                "{what} is a multivector: `dimensions` applies to single vectors only"
            )));
        }
        if options.dimensions.is_some_and(|d| d != params.size) {
            return Err(bad_request(format!(
                "{what} has size {}, but the document asks for {} dimensions",
                params.size,
                options.dimensions.unwrap_or_default()
            )));
        }
        let shape = shape_for(encoder, &model, &what, params)?;
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
                        g.images
                            .push(image_bytes(&image.image, models.image_dir())?);
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

/// What model `model` must produce to fill a vector with `params`, or a 400 saying why it cannot.
fn shape_for(
    encoder: &quiver_encoder::Encoder,
    model: &str,
    what: &str,
    params: &VectorParams,
) -> Result<Shape, ApiError> {
    if params.multivector_config.is_some() {
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
        return Ok(Shape::Multi);
    }
    let dims = encoder.resolve_dims(Some(params.size)).map_err(|e| {
        bad_request(format!(
            "{what} has size {}, which model `{model}` cannot give ({e}); create the vector \
             with one of those sizes",
            params.size
        ))
    })?;
    Ok(Shape::Dense(dims))
}

/// Checks a new collection's bindings against the server's models: each must be configured, and when
/// it is loaded, have the task and give vectors of the bound vector's size. (A model still loading is
/// checked when documents arrive.)
pub fn check_bindings(models: &Models, config: &CollectionConfig) -> Result<(), ApiError> {
    for (name, binding) in &config.embedding {
        let what = if name.is_empty() {
            "embedding of the vector".to_string()
        } else {
            format!("embedding `{name}`")
        };
        if !models.names().any(|m| m == binding.model) {
            let configured = models.names().collect::<Vec<_>>().join(", ");
            return Err(bad_request(if configured.is_empty() {
                format!(
                    "{what}: no embedding model is configured; start the server with \
                     --model {}=DIR_OR_HF_ID",
                    binding.model
                )
            } else {
                format!(
                    "{what}: model `{}` is not configured; configured: {configured}",
                    binding.model
                )
            }));
        }
        if let Some(ModelState::Ready(service)) = models.state(&binding.model) {
            let encoder = service.encoder();
            encoder
                .task_index(&binding.task)
                .map_err(|e| bad_request(format!("{what}: {e}")))?;
            shape_for(encoder, &binding.model, &what, config.vector(name)?)?;
            if let Some(dims) = binding.dims {
                // The prefix is only a good index when the model was trained to put meaning first.
                encoder.resolve_dims(Some(dims)).map_err(|e| {
                    bad_request(format!(
                        "{what}: dims {dims} is not a Matryoshka size of model `{}` ({e})",
                        binding.model
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// On a collection with bound vectors, a point whose `vector` is one bare document or image fills
/// every bound vector (when the collection has no unnamed vector), and the text of a document that
/// fills a bound vector is kept in the payload field `text`, unless the point sets that field or the
/// binding says `store_text: false`.
pub fn bind_upsert(config: &CollectionConfig, body: &mut UpsertPoints) {
    if config.embedding.is_empty() {
        return;
    }
    let spread = !config.vectors.contains_key("");
    let spread_value = |value: &VectorValue| -> BTreeMap<String, VectorValue> {
        config
            .embedding
            .keys()
            .map(|name| (name.clone(), value.clone()))
            .collect()
    };
    for point in body.points.iter_mut().flatten() {
        if let VectorStruct::Single(value @ VectorValue::Inference(_)) = &point.vector {
            if spread {
                point.vector = VectorStruct::Named(spread_value(value));
            }
        }
        let named: Vec<(&str, &VectorValue)> = match &point.vector {
            VectorStruct::Single(v) => vec![("", v)],
            VectorStruct::Named(map) => map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        };
        if let Some(text) = stored_text(config, named) {
            keep_text(point.payload.get_or_insert_with(Default::default), text);
        }
    }
    if let Some(batch) = &mut body.batch {
        if let BatchVectors::Single(values) = &batch.vectors {
            let all_documents = values
                .iter()
                .all(|v| matches!(v, VectorValue::Inference(_)));
            if spread && all_documents {
                let named = config
                    .embedding
                    .keys()
                    .map(|name| (name.clone(), values.clone()))
                    .collect();
                batch.vectors = BatchVectors::Named(named);
            }
        }
        let n = batch.ids.len();
        let texts: Vec<Option<String>> = (0..n)
            .map(|i| {
                let named: Vec<(&str, &VectorValue)> = match &batch.vectors {
                    BatchVectors::Single(values) => {
                        values.get(i).map(|v| ("", v)).into_iter().collect()
                    }
                    BatchVectors::Named(map) => map
                        .iter()
                        .filter_map(|(k, values)| Some((k.as_str(), values.get(i)?)))
                        .collect(),
                };
                stored_text(config, named)
            })
            .collect();
        if texts.iter().any(Option::is_some) {
            let payloads = batch.payloads.get_or_insert_with(Vec::new);
            payloads.resize(payloads.len().max(n), None);
            for (payload, text) in payloads.iter_mut().zip(texts) {
                if let Some(text) = text {
                    keep_text(payload.get_or_insert_with(Default::default), text);
                }
            }
        }
    }
}

/// The text of the first document among a point's vectors that fills a bound vector keeping text.
fn stored_text(config: &CollectionConfig, named: Vec<(&str, &VectorValue)>) -> Option<String> {
    named.into_iter().find_map(|(name, value)| match value {
        VectorValue::Inference(InferenceObject::Document(doc))
            if config.embedding.get(name).is_some_and(|b| b.store_text) =>
        {
            Some(doc.text.clone())
        }
        _ => None,
    })
}

fn keep_text(payload: &mut serde_json::Map<String, Value>, text: String) {
    payload
        .entry(TEXT_FIELD)
        .or_insert_with(|| Value::String(text));
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
        default_task: &str,
    ) -> Result<Self, ApiError> {
        let mut out = DocOptions {
            task: default_task.into(),
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

/// Largest image file read from `--image-dir` (the decoder's own byte limit).
const MAX_IMAGE_FILE_BYTES: u64 = 32 << 20;

/// The bytes of an image object's `image`: base64, bare or as a `data:` URL, or, when the server runs
/// with `--image-dir`, a file under that directory (`file://…`, or a path: base64 has no `.`, a file
/// name almost always does). URLs are never fetched: a request must not make the server reach out.
fn image_bytes(image: &Value, image_dir: Option<&std::path::Path>) -> Result<Vec<u8>, ApiError> {
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
    if let Some(rest) = text.strip_prefix("data:") {
        return match rest.split_once(";base64,") {
            Some((_, data)) => {
                crate::base64::decode(data).map_err(|e| bad_request(format!("`image`: {e}")))
            }
            None => Err(bad_request("a data: URL image must be base64 (`;base64,`)")),
        };
    }
    let path = match text.strip_prefix("file://") {
        Some(path) => Some(path),
        None => text.contains('.').then_some(text.as_str()),
    };
    let Some(path) = path else {
        return crate::base64::decode(text).map_err(|e| bad_request(format!("`image`: {e}")));
    };
    let Some(root) = image_dir else {
        return Err(bad_request(format!(
            "`image` {path:?} looks like a file path; the server reads image files only when it \
             runs with --image-dir: send the image file as base64"
        )));
    };
    read_image_file(root, path)
}

/// Reads `path` (relative to `root`, or absolute inside it) after resolving links, so nothing outside
/// `root` can be named.
pub fn read_image_file(root: &std::path::Path, path: &str) -> Result<Vec<u8>, ApiError> {
    let missing = || bad_request(format!("`image`: no file {path:?} under --image-dir"));
    let resolved = std::fs::canonicalize(root.join(path)).map_err(|_| missing())?;
    if !resolved.starts_with(root) {
        return Err(bad_request(format!(
            "`image`: {path:?} is outside --image-dir"
        )));
    }
    let meta = std::fs::metadata(&resolved).map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(missing());
    }
    if meta.len() > MAX_IMAGE_FILE_BYTES {
        return Err(bad_request(format!(
            "`image`: {path:?} is {} bytes, over the {MAX_IMAGE_FILE_BYTES}-byte limit",
            meta.len()
        )));
    }
    std::fs::read(&resolved).map_err(|e| bad_request(format!("`image`: {path:?}: {e}")))
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
