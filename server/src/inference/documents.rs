//! Documents where vectors go, resolved Qdrant's way: every inference object of a request (an upsert's
//! points, a query's stages) is collected, all of them are embedded in one batch ([`super::embed`]),
//! and typed vectors take their places. Upserts embed with the `passage` prompt, queries with `query`,
//! unless a document's options say otherwise.
//!
//! On a collection with bound vectors (`embedding` at creation), a point whose vector is one bare
//! document fills every bound vector (when the collection has no unnamed vector), and the text of a
//! document that fills a bound vector is kept in the payload field `text`, unless the point sets that
//! field or the binding says `store_text: false`.

use std::collections::BTreeMap;

use quiver_encoder::bm25::Bm25Config;
use quiver_encoder::PromptKind;
use quiver_engine::point::Payload;
use quiver_engine::{
    CollectionConfig, NamedVectors, PointId, PointInsert, QueryInput, QueryRequest, Vector,
};

use super::embed::{embed, shape_for, Purpose};
use super::error::{invalid, Error};
use super::{ModelState, Models};

/// The payload field a bound vector's document text is kept in.
const TEXT_FIELD: &str = "text";

/// Text or an image for a model to embed (Qdrant's `Document` and `Image` inference objects).
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// What to embed.
    pub content: Content,
    /// The model (`--model` name); `None`: the vector's bound model, or the only one served.
    pub model: Option<String>,
    /// How to embed it.
    pub options: DocumentOptions,
}

/// What a document holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// Text.
    Text(String),
    /// An image: base64 (bare or as a `data:` URL), or a file under `--image-dir`.
    Image(String),
}

/// A document's options; unset ones take the binding's or the purpose's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DocumentOptions {
    /// Task adapter (`retrieval`, `text-matching`, `code`).
    pub task: Option<String>,
    /// Prompt (`query` / `passage`); upserts default to passage, queries to query.
    pub prompt: Option<PromptKind>,
    /// Must equal the size of the vector the document fills.
    pub dimensions: Option<usize>,
    /// Cut texts over the model's limit instead of refusing them.
    pub truncate: bool,
    /// Set when the document names the built-in `qdrant/bm25` model: its checked options. Such a
    /// document fills a sparse vector and needs no `--model`.
    pub bm25: Option<Bm25Config>,
}

/// A value the caller gives, or a document the inference layer turns into one.
#[derive(Clone, Debug, PartialEq)]
pub enum Input<T> {
    /// Given as it is.
    Value(T),
    /// To embed.
    Document(Document),
}

impl<T> Input<T> {
    /// Whether this is a document.
    pub fn is_document(&self) -> bool {
        matches!(self, Input::Document(_))
    }

    /// The document, if this is one.
    pub fn document(&self) -> Option<&Document> {
        match self {
            Input::Value(_) => None,
            Input::Document(d) => Some(d),
        }
    }
}

/// A point to insert or replace, with documents where its vectors will be.
#[derive(Clone, Debug, PartialEq)]
pub struct PointDraft {
    /// Its id.
    pub id: PointId,
    /// Its vectors.
    pub vectors: VectorsDraft,
    /// Its payload.
    pub payload: Option<Payload>,
}

/// A point's vectors: one unnamed vector, or named vectors.
#[derive(Clone, Debug, PartialEq)]
pub enum VectorsDraft {
    /// The collection's unnamed vector (on a collection with bound vectors and no unnamed one, a bare
    /// document fills every bound vector).
    Single(Input<Vector>),
    /// Named vectors.
    Named(BTreeMap<String, Input<Vector>>),
}

impl VectorsDraft {
    /// The documents, with the vector each fills, in name order.
    fn documents(&self) -> Vec<(&str, &Document)> {
        match self {
            VectorsDraft::Single(input) => input.document().map(|d| ("", d)).into_iter().collect(),
            VectorsDraft::Named(map) => map
                .iter()
                .filter_map(|(name, input)| Some((name.as_str(), input.document()?)))
                .collect(),
        }
    }
}

/// The configured vector names, for error messages.
fn vector_names(config: &CollectionConfig) -> String {
    config
        .vectors
        .keys()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Embeds the documents of `points` and returns the engine's inserts.
pub fn resolve_points(
    models: &Models,
    config: &CollectionConfig,
    mut points: Vec<PointDraft>,
) -> Result<Vec<PointInsert>, Error> {
    bind(config, &mut points);
    let targets: Vec<(&str, &Document)> =
        points.iter().flat_map(|p| p.vectors.documents()).collect();
    let mut embedded = embed(models, config, &targets, Purpose::Store)?.into_iter();
    let mut take = |input: Input<Vector>| match input {
        Input::Value(v) => v,
        Input::Document(_) => embedded
            .next()
            .expect("one embedding per document: this is a bug"),
    };
    points
        .into_iter()
        .map(|p| {
            let mut vectors = NamedVectors::new();
            match p.vectors {
                VectorsDraft::Single(input) => {
                    if !config.vectors.contains_key("") {
                        return Err(invalid(format!(
                            "point {}: this collection has named vectors ({}); give them as an \
                             object {{\"name\": [...]}}",
                            p.id,
                            vector_names(config)
                        )));
                    }
                    vectors.insert(String::new(), take(input));
                }
                VectorsDraft::Named(map) => {
                    for (name, input) in map {
                        vectors.insert(name, take(input));
                    }
                }
            }
            Ok(PointInsert {
                id: p.id,
                vectors,
                payload: p.payload,
            })
        })
        .collect()
}

/// Embeds the documents of a query's stages, each for the vector its stage searches. Run the default
/// funnel first (`quiver_engine::collection::apply_default_funnel`): it decides which vectors a
/// plain query's document fills.
pub fn resolve_query(
    models: &Models,
    config: &CollectionConfig,
    request: QueryRequest<Input<QueryInput>>,
) -> Result<QueryRequest, Error> {
    let embedded = {
        let targets: Vec<(&str, &Document)> = request
            .inputs()
            .into_iter()
            .filter_map(|(using, input)| Some((using, input.document()?)))
            .collect();
        embed(models, config, &targets, Purpose::Query)?
    };
    let mut embedded = embedded.into_iter();
    request.try_map_inputs(|_, input| {
        Ok(match input {
            Input::Value(v) => v,
            Input::Document(_) => match embedded
                .next()
                .expect("one embedding per document: this is a bug")
            {
                Vector::Dense(v) => QueryInput::Dense(v),
                Vector::Multi(m) => QueryInput::Multi(m),
                Vector::Sparse(v) => QueryInput::Sparse(v),
            },
        })
    })
}

/// Spreads bare documents over the bound vectors and keeps their text (see the module docs).
fn bind(config: &CollectionConfig, points: &mut [PointDraft]) {
    if config.embedding.is_empty() {
        return;
    }
    let spread = !config.vectors.contains_key("");
    for point in points {
        if let VectorsDraft::Single(input @ Input::Document(_)) = &point.vectors {
            if spread {
                let named = config
                    .embedding
                    .keys()
                    .map(|name| (name.clone(), input.clone()))
                    .collect();
                point.vectors = VectorsDraft::Named(named);
            }
        }
        if let Some(text) = stored_text(config, &point.vectors) {
            point
                .payload
                .get_or_insert_with(Default::default)
                .entry(TEXT_FIELD)
                .or_insert_with(|| serde_json::Value::String(text));
        }
    }
}

/// The text of the first document among a point's vectors that fills a bound vector keeping text.
fn stored_text(config: &CollectionConfig, vectors: &VectorsDraft) -> Option<String> {
    vectors
        .documents()
        .into_iter()
        .find_map(|(name, doc)| match &doc.content {
            Content::Text(text) if config.embedding.get(name).is_some_and(|b| b.store_text) => {
                Some(text.clone())
            }
            _ => None,
        })
}

/// Checks a new collection's bindings against the server's models: each must be configured, and when
/// it is loaded, have the task and give vectors of the bound vector's size. (A model still loading is
/// checked when documents arrive.)
pub fn check_bindings(models: &Models, config: &CollectionConfig) -> Result<(), Error> {
    for (name, binding) in &config.embedding {
        let what = if name.is_empty() {
            "embedding of the vector".to_string()
        } else {
            format!("embedding `{name}`")
        };
        if !models.names().any(|m| m == binding.model) {
            let configured = models.names().collect::<Vec<_>>().join(", ");
            return Err(invalid(if configured.is_empty() {
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
                .map_err(|e| invalid(format!("{what}: {e}")))?;
            shape_for(encoder, &binding.model, &what, config.vector(name)?)?;
            if let Some(dims) = binding.dims {
                // The prefix is only a good index when the model was trained to put meaning first.
                encoder.resolve_dims(Some(dims)).map_err(|e| {
                    invalid(format!(
                        "{what}: dims {dims} is not a Matryoshka size of model `{}` ({e})",
                        binding.model
                    ))
                })?;
            }
        }
    }
    Ok(())
}
