//! Embedding every document of one request in one batch. What a document becomes follows from the
//! vector it fills: a dense vector of size `d` gets the model's single vector truncated to `d` (a
//! Matryoshka size) and renormalised; a multivector gets the per-token vectors. Identical texts with
//! the same settings are embedded once, and every group goes to its model's batching worker before any
//! is awaited, so one request's documents share forward passes. A `qdrant/bm25` document needs no
//! model: it becomes a sparse vector right here (BM25 term weights when stored, unit weights as a
//! query).

use std::collections::HashMap;
use std::sync::Arc;

use quiver_encoder::bm25::{Bm25, Bm25Config};
use quiver_encoder::DEFAULT_MAX_LENGTH;
use quiver_encoder::{Embedding, EncodeRequest, Encoder, EncoderService, PromptKind, Truncation};
use quiver_engine::config::DEFAULT_EMBEDDING_TASK;
use quiver_engine::{CollectionConfig, SparseVector, Vector, VectorParams};

use super::documents::{Content, Document};
use super::error::{invalid, Error};
use super::{images, Models};

/// Which prompt a document gets when its options name none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Stored points: `passage`.
    Store,
    /// Queries: `query`.
    Query,
}

/// What one document must become.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    Dense(usize),
    Multi,
}

/// Settings that put texts in one encoder request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupKey {
    model: String,
    task: String,
    prompt: PromptKind,
    truncate: bool,
}

/// Texts of one [`GroupKey`], each once.
struct TextGroup {
    key: GroupKey,
    service: Arc<EncoderService>,
    texts: Vec<String>,
    index: HashMap<String, usize>,
}

/// Images of one model and task, embedded in one call.
struct ImageGroup {
    model: String,
    task: String,
    service: Arc<EncoderService>,
    images: Vec<Vec<u8>>,
    /// Position in `images` by the request's encoded form, so one image filling several vectors is
    /// embedded once.
    index: HashMap<String, usize>,
}

/// Where a document's embedding comes from: a text group's request, or an image group's call.
enum Source {
    Text { group: usize, index: usize },
    Image { group: usize, index: usize },
}

/// How one document gets its vector: from a model, or already computed (BM25).
enum Plan {
    Model(Source, Shape),
    Ready(Vector),
}

/// Embeds `targets` (the vector each fills, and the document), in one batch per model; one vector
/// per target, in order.
pub(crate) fn embed(
    models: &Models,
    config: &CollectionConfig,
    targets: &[(&str, &Document)],
    purpose: Purpose,
) -> Result<Vec<Vector>, Error> {
    let mut text_groups: Vec<TextGroup> = Vec::new();
    let mut image_groups: Vec<ImageGroup> = Vec::new();
    let mut plans: Vec<Plan> = Vec::with_capacity(targets.len());
    // One BM25 encoder per distinct set of options in the request.
    let mut bm25: Vec<(&Bm25Config, Bm25)> = Vec::new();
    for &(name, doc) in targets {
        if let Content::Text(text) = &doc.content {
            if text.trim().is_empty() {
                return Err(invalid("a document's `text` is empty"));
            }
        }
        let what = if name.is_empty() {
            "the vector".to_string()
        } else {
            format!("vector `{name}`")
        };
        if let Some(options) = &doc.options.bm25 {
            let encoder = match bm25.iter().position(|(o, _)| *o == options) {
                Some(i) => &bm25[i].1,
                None => {
                    bm25.push((options, Bm25::new(options.clone())));
                    &bm25[bm25.len() - 1].1
                }
            };
            plans.push(Plan::Ready(bm25_vector(
                config, name, &what, encoder, doc, purpose,
            )?));
            continue;
        }
        if config.sparse(name).is_some() {
            return Err(invalid(format!(
                "{what} is sparse, but {} gives dense vectors: fill it with model `qdrant/bm25` \
                 or give {{\"indices\": [...], \"values\": [...]}}",
                doc.model
                    .as_deref()
                    .map_or("an embedding model".to_string(), |m| format!("model `{m}`"))
            )));
        }
        let binding = config.embedding.get(name);
        if let (Some(b), Some(named)) = (binding, doc.model.as_deref()) {
            if named != b.model {
                return Err(invalid(format!(
                    "{what} is bound to model `{}`; the document names `{named}`",
                    b.model
                )));
            }
        }
        let model_name = doc.model.as_deref().or(binding.map(|b| b.model.as_str()));
        let options = &doc.options;
        let task = match &options.task {
            Some(task) => task.clone(),
            None => binding
                .map_or(DEFAULT_EMBEDDING_TASK, |b| b.task.as_str())
                .into(),
        };
        let params = config.vector(name)?;
        let (model, service) = models.ready(model_name)?;
        let encoder = service.encoder();
        if options.dimensions.is_some() && params.multivector_config.is_some() {
            return Err(invalid(format!(
                "{what} is a multivector: `dimensions` applies to single vectors only"
            )));
        }
        if let Some(d) = options.dimensions.filter(|&d| d != params.size) {
            return Err(invalid(format!(
                "{what} has size {}, but the document asks for {d} dimensions",
                params.size
            )));
        }
        let shape = shape_for(encoder, &model, &what, params)?;
        encoder.task_index(&task)?;
        let source = match &doc.content {
            Content::Image(image) => {
                let group = match image_groups
                    .iter()
                    .position(|g| g.model == model && g.task == task)
                {
                    Some(i) => i,
                    None => {
                        image_groups.push(ImageGroup {
                            model,
                            task,
                            service,
                            images: Vec::new(),
                            index: HashMap::new(),
                        });
                        image_groups.len() - 1
                    }
                };
                let g = &mut image_groups[group];
                let index = match g.index.get(image) {
                    Some(&i) => i,
                    None => {
                        g.images
                            .push(images::image_bytes(image, models.image_dir())?);
                        g.index.insert(image.clone(), g.images.len() - 1);
                        g.images.len() - 1
                    }
                };
                Source::Image { group, index }
            }
            Content::Text(text) => {
                let key = GroupKey {
                    model,
                    task,
                    prompt: options.prompt.unwrap_or(match purpose {
                        Purpose::Store => PromptKind::Passage,
                        Purpose::Query => PromptKind::Query,
                    }),
                    truncate: options.truncate,
                };
                let group = match text_groups.iter().position(|g| g.key == key) {
                    Some(i) => i,
                    None => {
                        text_groups.push(TextGroup {
                            key,
                            service,
                            texts: Vec::new(),
                            index: HashMap::new(),
                        });
                        text_groups.len() - 1
                    }
                };
                let g = &mut text_groups[group];
                let index = *g.index.entry(text.clone()).or_insert_with(|| {
                    g.texts.push(text.clone());
                    g.texts.len() - 1
                });
                Source::Text { group, index }
            }
        };
        plans.push(Plan::Model(source, shape));
    }
    let request = |g: TextGroup| {
        let service = g.service;
        let request = EncodeRequest {
            texts: g.texts,
            task: g.key.task,
            prompt: g.key.prompt,
            dims: None,
            truncation: Truncation {
                max_length: DEFAULT_MAX_LENGTH,
                truncate: g.key.truncate,
            },
        };
        (service, request)
    };
    // The common case, one query's text: `encode` runs it on this thread when the encoder is idle.
    if text_groups.len() == 1 && image_groups.is_empty() {
        let (service, req) = request(text_groups.pop().expect("one group"));
        let results = [service.encode(req)?];
        return Ok(assemble(plans, &results, &[]));
    }
    // Submit every group first, so the workers can batch them together, then collect.
    let mut pending = Vec::with_capacity(text_groups.len());
    for g in text_groups {
        let (service, req) = request(g);
        pending.push(service.submit(req)?);
    }
    // Images are preprocessed here, on this request's thread, and queued behind the texts; the
    // workers batch both.
    let image_pending = image_groups
        .iter()
        .map(|g| g.service.submit_images(&g.images, &g.task))
        .collect::<Result<Vec<_>, _>>()?;
    let image_results = image_pending
        .into_iter()
        .map(|p| p.wait())
        .collect::<Result<Vec<_>, _>>()?;
    let results = pending
        .into_iter()
        .map(|p| p.wait())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(assemble(plans, &results, &image_results))
}

/// Each plan's vector, from the text and image groups' embeddings.
fn assemble(plans: Vec<Plan>, texts: &[Vec<Embedding>], images: &[Vec<Embedding>]) -> Vec<Vector> {
    plans
        .into_iter()
        .map(|plan| {
            let (source, shape) = match plan {
                Plan::Ready(vector) => return vector,
                Plan::Model(source, shape) => (source, shape),
            };
            let embedding = match source {
                Source::Text { group, index } => &texts[group][index],
                Source::Image { group, index } => &images[group][index],
            };
            vector_of(embedding, shape)
        })
        .collect()
}

/// The BM25 vector of a `qdrant/bm25` document, which must fill a sparse vector.
fn bm25_vector(
    config: &CollectionConfig,
    name: &str,
    what: &str,
    encoder: &Bm25,
    doc: &Document,
    purpose: Purpose,
) -> Result<Vector, Error> {
    let model = doc.model.as_deref().unwrap_or("qdrant/bm25");
    if config.sparse(name).is_none() {
        return Err(if config.vectors.contains_key(name) {
            invalid(format!(
                "{what} is dense, but model `{model}` gives sparse vectors: name a sparse vector \
                 (`using`, or its key in the point's vectors)"
            ))
        } else if name.is_empty() {
            invalid(format!(
                "model `{model}` gives sparse vectors: name the sparse vector it fills (`using`, \
                 or its key in the point's vectors)"
            ))
        } else {
            quiver_engine::Error::VectorNameNotFound(name.to_string()).into()
        });
    }
    let Content::Text(text) = &doc.content else {
        return Err(invalid(format!("model `{model}` embeds text only")));
    };
    let embedding = match purpose {
        Purpose::Store => encoder.embed_document(text),
        Purpose::Query => encoder.embed_query(text),
    };
    Ok(Vector::Sparse(SparseVector {
        indices: embedding.indices,
        values: embedding.values,
    }))
}

/// The vector an embedding gives for `shape`: the dense vector at its Matryoshka size, or the
/// per-token vectors.
pub(crate) fn vector_of(embedding: &Embedding, shape: Shape) -> Vector {
    match shape {
        Shape::Dense(d) if d == embedding.single.len() => Vector::Dense(embedding.single.clone()),
        Shape::Dense(d) => Vector::Dense(embedding.truncated(d)),
        Shape::Multi => Vector::Multi(embedding.multi.rows().map(<[f32]>::to_vec).collect()),
    }
}

/// What model `model` must produce to fill a vector with `params`, or why it cannot.
pub(crate) fn shape_for(
    encoder: &Encoder,
    model: &str,
    what: &str,
    params: &VectorParams,
) -> Result<Shape, Error> {
    if params.multivector_config.is_some() {
        let Some(dim) = encoder.multi_vector_dim() else {
            return Err(invalid(format!(
                "{what} is a multivector, but model `{model}` gives no per-token vectors"
            )));
        };
        if params.size != dim {
            return Err(invalid(format!(
                "{what} is a multivector of size {}, but model `{model}` gives per-token vectors \
                 of size {dim}",
                params.size
            )));
        }
        return Ok(Shape::Multi);
    }
    let dims = encoder.resolve_dims(Some(params.size)).map_err(|e| {
        invalid(format!(
            "{what} has size {}, which model `{model}` cannot give ({e}); create the vector \
             with one of those sizes",
            params.size
        ))
    })?;
    Ok(Shape::Dense(dims))
}
