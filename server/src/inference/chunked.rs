//! Whole documents in: each text cut into chunks sized for the model that embeds it
//! (`crate::documents::chunking`), every chunk of a request embedded for the target vectors in one
//! batch ([`resolve_points`]), then each document written as one upsert (one WAL record). A
//! document's earlier points that its new chunks do not keep are deleted after that by its
//! `doc_id`, so a changed document replaces all its chunks, and a crash in between leaves the old
//! and the new chunks, never neither. With late chunking, a document of several chunks goes through
//! the model whole and each chunk's vectors pool its own tokens there ([`Chunking::On`]'s `late`). `quiver ingest` and `POST /collections/{c}/documents` both
//! come here.
//!
//! Point ids: a document that is one point keeps its own id when that is a point id (an unsigned
//! integer or a UUID); every other point's id derives from (document id, chunk index, chunk text),
//! so re-sending an unchanged document gives the same ids.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use quiver_encoder::batching::Pending;
use quiver_encoder::{
    Embedding, Encoder, EncoderService, LateChunkOptions, PromptKind, Truncation,
    DEFAULT_MAX_LENGTH,
};
use quiver_engine::config::DEFAULT_EMBEDDING_TASK;
use quiver_engine::filter::{
    Condition, FieldCondition, HasIdCondition, Match, MatchValue, OneOrMany,
};
use quiver_engine::point::Payload;
use quiver_engine::{
    Collection, CollectionConfig, Filter, PointId, PointsSelector, WithPayload, WithVectors,
};
use serde_json::{json, Value};

use super::documents::VectorsDraft;
use super::documents::{resolve_points, Content, Document, DocumentOptions, Input, PointDraft};
use super::embed::{shape_for, vector_of};
use super::error::{invalid, Error};
use super::Models;
use crate::documents::chunking::{self, Chunk, ChunkOptions, ModelTokenizer};
use crate::documents::Page;

/// A document's id: a string, or an unsigned integer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DocId {
    /// An unsigned integer (also the point id of a one-point document).
    Num(u64),
    /// A string (a UUID string is also the point id of a one-point document).
    Str(String),
}

impl DocId {
    /// The id a JSON value gives: a string or an unsigned integer.
    pub fn from_json(value: &Value) -> Option<DocId> {
        match value {
            Value::String(s) if !s.is_empty() => Some(DocId::Str(s.clone())),
            Value::Number(n) => n.as_u64().map(DocId::Num),
            _ => None,
        }
    }

    /// The value of the `doc_id` payload field.
    pub fn to_json(&self) -> Value {
        match self {
            DocId::Num(n) => json!(n),
            DocId::Str(s) => json!(s),
        }
    }

    /// The point id a one-point document keeps, if this is one.
    fn point_id(&self) -> Option<PointId> {
        match self {
            DocId::Num(n) => Some(PointId::Num(*n)),
            DocId::Str(s) => uuid::Uuid::parse_str(s).ok().map(PointId::Uuid),
        }
    }

    fn match_value(&self) -> Result<MatchValue, Error> {
        match self {
            DocId::Num(n) => i64::try_from(*n).map(MatchValue::Integer).map_err(|_| {
                invalid(format!(
                    "its id {n} is above 2^63 - 1, past what a payload match takes: give it as \
                     a string"
                ))
            }),
            DocId::Str(s) => Ok(MatchValue::Keyword(s.clone())),
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Num(n) => write!(f, "{n}"),
            DocId::Str(s) => write!(f, "{s}"),
        }
    }
}

/// One document to embed as one or more points.
#[derive(Clone, Debug)]
pub struct SourceDocument {
    /// Its id, kept in every point's `doc_id`.
    pub id: DocId,
    /// Text (chunked) or an image (one point).
    pub content: Content,
    /// What every point of the document carries besides the chunk's own fields.
    pub payload: Payload,
    /// A PDF's pages, so each chunk carries the page it starts on.
    pub pages: Vec<Page>,
}

/// How texts become points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// One point per document: a text over the model's limit is refused, naming the document,
    /// or cut there with `truncate`.
    Off {
        /// Cut long texts at the model's limit.
        truncate: bool,
    },
    /// Chunks of at most `max_tokens` text tokens (`None`: the model's limit less its prompt and
    /// special tokens), neighbours sharing up to `overlap`.
    On {
        /// Most tokens of a chunk's text.
        max_tokens: Option<usize>,
        /// Tokens a chunk may share with the one before.
        overlap: usize,
        /// Late chunking: a document of several chunks goes through the model whole (in windows of
        /// its context when longer) and each chunk's vectors pool its own tokens there, so a chunk
        /// keeps its document's context. `None`: on for models that can with a context of
        /// [`LATE_CHUNKING_MIN_CONTEXT`] tokens or more.
        late: Option<bool>,
    },
}

/// The context from which late chunking is on unless asked otherwise: shorter models see little
/// more of a document than one chunk, and their windows would add little context.
pub const LATE_CHUNKING_MIN_CONTEXT: usize = 8192;

/// How documents are written.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Vectors each document fills; `None`: the bound vectors, or every vector when none is bound.
    pub vectors: Option<Vec<String>>,
    /// The model (`--model` name); `None`: each vector's bound model, or the only one served.
    pub model: Option<String>,
    /// How texts are cut.
    pub chunking: Chunking,
    /// Leave alone the points that hold already what they would get (same id and text), without
    /// embedding them again.
    pub skip_unchanged: bool,
}

/// What became of one document.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// The document's id.
    pub id: DocId,
    /// Its points' ids, in chunk order.
    pub points: Vec<PointId>,
    /// How many of them were embedded and written now (the rest were unchanged).
    pub upserted: usize,
}

/// What the model filling a document's vectors takes.
struct ModelLimits<'a> {
    name: String,
    encoder: &'a Encoder,
    task: String,
    /// Tokens of a whole input, prompt and special tokens included.
    limit: usize,
    /// Text tokens of a chunk at most.
    max_text: usize,
}

/// Embeds `docs` into `collection` (see the module docs); one entry per document, in order.
/// Nothing is written unless every document can be embedded.
pub fn write_documents(
    models: &Models,
    collection: &Collection,
    docs: Vec<SourceDocument>,
    opts: &WriteOptions,
) -> Result<Vec<Written>, Error> {
    let config = &collection.config();
    let vectors = target_vectors(config, opts.vectors.as_deref())?;
    let mut seen = HashSet::new();
    for doc in &docs {
        if !seen.insert(&doc.id) {
            return Err(invalid(format!("document id `{}` is given twice", doc.id)));
        }
    }
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    let services: Vec<_> = text_models(models, config, &vectors, opts)?;
    let mut limits: Vec<ModelLimits<'_>> = services
        .iter()
        .map(|(name, service, task)| model_limits(name, service.encoder(), task))
        .collect::<Result<_, _>>()?;
    // Chunks are sized for the tightest task's prompt.
    limits.sort_by_key(|l| l.max_text);
    let model_names: std::collections::BTreeSet<&str> =
        limits.iter().map(|l| l.name.as_str()).collect();
    if let Chunking::On {
        max_tokens,
        overlap,
        ..
    } = opts.chunking
    {
        if model_names.len() > 1 {
            return Err(invalid(format!(
                "chunking cuts text by one model's tokens, but these vectors use models {}: \
                 write them in separate requests with `vectors`",
                model_names
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(l) = limits.first() {
            ChunkOptions {
                max_tokens: max_tokens.unwrap_or(l.max_text),
                overlap,
            }
            .check()
            .map_err(|e| invalid(e.to_string()))?;
        }
        if let (Some(n), Some(l)) = (max_tokens, limits.first()) {
            if n > l.max_text {
                return Err(invalid(format!(
                    "a chunk of {n} tokens is more than model `{}` takes: at most {} text tokens \
                     (its limit of {} less prompt and special tokens)",
                    l.name, l.max_text, l.limit
                )));
            }
        }
    }

    let late = late_chunking(opts.chunking, &limits)?;

    // Every document's points, before anything is embedded or written; for late chunking, the
    // text and chunks of each document of several chunks (one chunk is the whole document, which
    // plain embedding already reads whole).
    let mut planned: Vec<(DocId, Vec<PointDraft>)> = Vec::with_capacity(docs.len());
    let mut late_docs: Vec<Option<(String, Vec<Range<usize>>)>> = Vec::with_capacity(docs.len());
    for doc in docs {
        let (drafts, spans) = doc
            .id
            .match_value()
            .and_then(|_| plan(&doc, &vectors, &limits, opts))
            .map_err(|e| invalid(format!("document `{}`: {e}", doc.id)))?;
        late_docs.push(match &doc.content {
            Content::Text(text) if late && spans.len() > 1 => Some((text.clone(), spans)),
            _ => None,
        });
        planned.push((doc.id, drafts));
    }

    let unchanged = if opts.skip_unchanged {
        unchanged_points(collection, &planned)?
    } else {
        HashSet::new()
    };
    let all_ids: Vec<Vec<PointId>> = planned
        .iter()
        .map(|(_, drafts)| drafts.iter().map(|d| d.id).collect())
        .collect();
    let mut changed: Vec<(usize, usize)> = Vec::new(); // (document, points to write)
    let mut drafts = Vec::new();
    let mut late_jobs = Vec::new();
    for (i, (_, doc_drafts)) in planned.iter_mut().enumerate() {
        let all = std::mem::take(doc_drafts);
        let fresh: Vec<PointDraft> = match late_docs[i].take() {
            // A late chunk's vectors depend on the whole document: a changed document embeds all
            // its chunks again, unchanged ones included.
            Some((text, spans)) => {
                if all.iter().all(|d| unchanged.contains(&d.id)) {
                    Vec::new()
                } else {
                    late_jobs.push(LateDoc {
                        text,
                        spans,
                        drafts: drafts.len()..drafts.len() + all.len(),
                    });
                    all
                }
            }
            None => all
                .into_iter()
                .filter(|d| !unchanged.contains(&d.id))
                .collect(),
        };
        if !fresh.is_empty() {
            changed.push((i, fresh.len()));
            drafts.extend(fresh);
        }
    }
    late_vectors(models, config, &vectors, opts, &late_jobs, &mut drafts)?;
    let mut inserts = resolve_points(models, config, drafts)?.into_iter();

    let mut upserted = vec![0usize; planned.len()];
    for (i, n) in changed {
        let batch: Vec<_> = inserts.by_ref().take(n).collect();
        collection.upsert(batch)?;
        upserted[i] = n;
        let doc_id = &planned[i].0;
        let stale = Filter {
            must: Some(OneOrMany::Many(vec![Condition::Field(
                FieldCondition::matching(
                    "doc_id",
                    Match::Value {
                        value: doc_id.match_value()?,
                    },
                ),
            )])),
            should: None,
            must_not: Some(OneOrMany::Many(vec![Condition::HasId(HasIdCondition {
                has_id: all_ids[i].clone(),
            })])),
            min_should: None,
        };
        // Counting first spares a new document an empty delete (a WAL record and an fsync).
        if collection.count(Some(&stale))? > 0 {
            collection.delete(PointsSelector::Filter(stale))?;
        }
    }
    Ok(planned
        .into_iter()
        .zip(all_ids)
        .zip(upserted)
        .map(|(((id, _), points), upserted)| Written {
            id,
            points,
            upserted,
        })
        .collect())
}

/// The vector names each document fills, checked against the collection's.
fn target_vectors(
    config: &CollectionConfig,
    wanted: Option<&[String]>,
) -> Result<Vec<String>, Error> {
    let shown = || {
        config
            .vectors
            .keys()
            .map(|n| {
                if n.is_empty() {
                    "one unnamed vector".to_string()
                } else {
                    format!("`{n}`")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some([]) => Err(invalid("`vectors` is empty: name at least one vector")),
        Some(names) => {
            for name in names {
                if !config.vectors.contains_key(name) {
                    return Err(invalid(format!(
                        "vector `{name}` does not exist; the collection has {}",
                        shown()
                    )));
                }
            }
            Ok(names.to_vec())
        }
        None if !config.embedding.is_empty() => Ok(config.embedding.keys().cloned().collect()),
        None => Ok(config.vectors.keys().cloned().collect()),
    }
}

/// The distinct (model, service, task) that embed texts for `vectors`.
fn text_models(
    models: &Models,
    config: &CollectionConfig,
    vectors: &[String],
    opts: &WriteOptions,
) -> Result<
    Vec<(
        String,
        std::sync::Arc<quiver_encoder::EncoderService>,
        String,
    )>,
    Error,
> {
    let mut out: Vec<(
        String,
        std::sync::Arc<quiver_encoder::EncoderService>,
        String,
    )> = Vec::new();
    for name in vectors {
        let binding = config.embedding.get(name);
        let model = opts.model.as_deref().or(binding.map(|b| b.model.as_str()));
        let task = binding.map_or(DEFAULT_EMBEDDING_TASK, |b| b.task.as_str());
        let (model, service) = models.ready(model)?;
        if !out.iter().any(|(m, _, t)| *m == model && t == task) {
            out.push((model, service, task.to_string()));
        }
    }
    Ok(out)
}

/// The limits of `encoder` for passages of `task`.
fn model_limits<'a>(
    name: &str,
    encoder: &'a Encoder,
    task: &str,
) -> Result<ModelLimits<'a>, Error> {
    let limit = encoder.max_length().min(DEFAULT_MAX_LENGTH);
    let probe = "x";
    let whole = encoder.tokenize(
        &[probe],
        task,
        PromptKind::Passage,
        Truncation {
            max_length: limit,
            truncate: true,
        },
    )?;
    let raw = encoder.tokenizer().encode_raw(probe)?;
    let overhead = whole[0].len().saturating_sub(raw.len());
    // A prompt ending in a space can merge differently with a text's first word than the word
    // alone (byte-level BPE): one token of slack keeps every chunk inside the limit.
    let slack = usize::from(encoder.uses_prompts());
    let max_text = limit.saturating_sub(overhead + slack);
    if max_text == 0 {
        return Err(invalid(format!(
            "model `{name}` leaves no room for text next to its prompt"
        )));
    }
    Ok(ModelLimits {
        name: name.to_string(),
        encoder,
        task: task.to_string(),
        limit,
        max_text,
    })
}

/// The points of one document, and its chunks' character ranges (none for an image).
fn plan(
    doc: &SourceDocument,
    vectors: &[String],
    limits: &[ModelLimits<'_>],
    opts: &WriteOptions,
) -> Result<(Vec<PointDraft>, Vec<Range<usize>>), Error> {
    let doc_id = doc.id.to_json();
    let draft = |id: PointId, content: Content, payload: Payload| PointDraft {
        id,
        vectors: vectors_draft(vectors, content, opts),
        payload: Some(payload),
    };
    let text = match &doc.content {
        Content::Image(image) => {
            let id = doc
                .id
                .point_id()
                .unwrap_or_else(|| PointId::Uuid(chunking::chunk_id(&doc.id.to_string(), 0, "")));
            let mut payload = doc.payload.clone();
            payload.insert("doc_id".into(), doc_id);
            return Ok((
                vec![draft(id, Content::Image(image.clone()), payload)],
                Vec::new(),
            ));
        }
        Content::Text(text) => text,
    };
    if text.trim().is_empty() {
        return Err(invalid("its text is empty"));
    }
    let chunks = match opts.chunking {
        Chunking::Off { truncate } => {
            if !truncate {
                for l in limits {
                    check_length(l, text)?;
                }
            }
            vec![Chunk {
                index: 0,
                start: 0,
                end: text.chars().count(),
                bytes: 0..text.len(),
                tokens: 0,
            }]
        }
        Chunking::On {
            max_tokens,
            overlap,
            ..
        } => {
            let l = limits
                .first()
                .expect("a text document has a model: checked by text_models");
            let tokenizer = ModelTokenizer(l.encoder.tokenizer().inner());
            let chunks = chunking::chunk(
                text,
                &tokenizer,
                ChunkOptions {
                    max_tokens: max_tokens.unwrap_or(l.max_text),
                    overlap,
                },
            )
            .map_err(|e| invalid(e.to_string()))?;
            if chunks.is_empty() {
                return Err(invalid(format!(
                    "model `{}` finds no tokens in its text",
                    l.name
                )));
            }
            chunks
        }
    };
    let single = chunks.len() == 1;
    let spans = chunks.iter().map(|c| c.start..c.end).collect();
    let drafts = chunks
        .iter()
        .map(|chunk| {
            let piece = chunk.text(text);
            let id = match doc.id.point_id() {
                Some(id) if single => id,
                _ => PointId::Uuid(chunking::chunk_id(&doc.id.to_string(), chunk.index, piece)),
            };
            let page = crate::documents::page_at(&doc.pages, chunk.bytes.start);
            let payload = chunking::chunk_payload(&doc.payload, &doc_id, chunk, text, page);
            draft(id, Content::Text(piece.to_string()), payload)
        })
        .collect();
    Ok((drafts, spans))
}

/// Whether this request late-chunks: as asked (refused for a model that cannot), else when every
/// model can and reads [`LATE_CHUNKING_MIN_CONTEXT`] tokens or more.
fn late_chunking(chunking: Chunking, limits: &[ModelLimits<'_>]) -> Result<bool, Error> {
    let Chunking::On { late, .. } = chunking else {
        return Ok(false);
    };
    match late {
        Some(true) => {
            if let Some(l) = limits.iter().find(|l| !l.encoder.supports_late_chunking()) {
                return Err(invalid(format!(
                    "late chunking: model `{}` cannot pool a chunk from its tokens in the whole \
                     document (it is not mean-pooled); turn late chunking off",
                    l.name
                )));
            }
            Ok(true)
        }
        Some(false) => Ok(false),
        None => Ok(!limits.is_empty()
            && limits.iter().all(|l| {
                l.encoder.supports_late_chunking()
                    && l.encoder.max_length() >= LATE_CHUNKING_MIN_CONTEXT
            })),
    }
}

/// A document to late-chunk: its text, its chunks' character ranges, and its points' drafts (in
/// chunk order) among the request's.
struct LateDoc {
    text: String,
    spans: Vec<Range<usize>>,
    drafts: Range<usize>,
}

/// Late-chunking requests in flight at once; more would crowd other callers out of the models'
/// queues (a full queue refuses with 429).
const LATE_IN_FLIGHT: usize = 16;

/// Fills the drafts of `docs` with vectors pooled from one pass over each document (per model and
/// task of the target vectors), in place of the chunk texts the other documents embed alone.
fn late_vectors(
    models: &Models,
    config: &CollectionConfig,
    vectors: &[String],
    opts: &WriteOptions,
    docs: &[LateDoc],
    drafts: &mut [PointDraft],
) -> Result<(), Error> {
    if docs.is_empty() {
        return Ok(());
    }
    // What each vector takes: its model, task and shape, checked as documents are.
    let mut targets = Vec::with_capacity(vectors.len());
    let mut runs: Vec<(String, String, Arc<EncoderService>)> = Vec::new();
    for name in vectors {
        let what = if name.is_empty() {
            "the vector".to_string()
        } else {
            format!("vector `{name}`")
        };
        let binding = config.embedding.get(name);
        if let (Some(b), Some(named)) = (binding, opts.model.as_deref()) {
            if named != b.model {
                return Err(invalid(format!(
                    "{what} is bound to model `{}`; the request names `{named}`",
                    b.model
                )));
            }
        }
        let model = opts.model.as_deref().or(binding.map(|b| b.model.as_str()));
        let task = binding.map_or(DEFAULT_EMBEDDING_TASK, |b| b.task.as_str());
        let (model, service) = models.ready(model)?;
        let shape = shape_for(service.encoder(), &model, &what, config.vector(name)?)?;
        let run = match runs.iter().position(|(m, t, _)| *m == model && t == task) {
            Some(r) => r,
            None => {
                runs.push((model, task.to_string(), service));
                runs.len() - 1
            }
        };
        targets.push((name.clone(), run, shape));
    }
    // Every (document, run) through the models' queues, a bounded number in flight.
    let mut results: Vec<Vec<Option<Vec<Embedding>>>> = vec![vec![None; runs.len()]; docs.len()];
    let mut in_flight = VecDeque::new();
    for (d, doc) in docs.iter().enumerate() {
        for (r, (_, task, service)) in runs.iter().enumerate() {
            if in_flight.len() >= LATE_IN_FLIGHT {
                let (d, r, pending): (usize, usize, Pending) =
                    in_flight.pop_front().expect("non-empty");
                results[d][r] = Some(pending.wait()?);
            }
            let pending = service.submit_spans(
                doc.text.clone(),
                doc.spans.clone(),
                LateChunkOptions::passage(task),
            )?;
            in_flight.push_back((d, r, pending));
        }
    }
    for (d, r, pending) in in_flight {
        results[d][r] = Some(pending.wait()?);
    }
    let single = vectors.len() == 1 && vectors[0].is_empty();
    for (doc, per_run) in docs.iter().zip(results) {
        let per_run: Vec<Vec<Embedding>> = per_run
            .into_iter()
            .map(|r| r.expect("every run waited for: this is a bug"))
            .collect();
        for (k, draft) in drafts[doc.drafts.clone()].iter_mut().enumerate() {
            let mut named = BTreeMap::new();
            for (name, run, shape) in &targets {
                named.insert(name.clone(), vector_of(&per_run[*run][k], *shape));
            }
            draft.vectors = if single {
                VectorsDraft::Single(Input::Value(
                    named.remove("").expect("the unnamed vector is the target"),
                ))
            } else {
                VectorsDraft::Named(
                    named
                        .into_iter()
                        .map(|(name, v)| (name, Input::Value(v)))
                        .collect(),
                )
            };
        }
    }
    Ok(())
}

/// Refuses a text over the model's limit, saying how to make it fit.
fn check_length(l: &ModelLimits<'_>, text: &str) -> Result<(), Error> {
    let checked = l.encoder.tokenize(
        &[text],
        &l.task,
        PromptKind::Passage,
        Truncation {
            max_length: l.limit,
            truncate: false,
        },
    );
    match checked {
        Err(quiver_encoder::Error::TooLong { tokens, .. }) => Err(invalid(format!(
            "{tokens} tokens exceed the limit of {} of model `{}`: chunk it, or truncate it",
            l.limit, l.name
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(()),
    }
}

/// The same document for every target vector.
fn vectors_draft(vectors: &[String], content: Content, opts: &WriteOptions) -> VectorsDraft {
    let document = Document {
        content,
        model: opts.model.clone(),
        options: DocumentOptions {
            truncate: matches!(opts.chunking, Chunking::Off { truncate: true }),
            ..DocumentOptions::default()
        },
    };
    if vectors.len() == 1 && vectors[0].is_empty() {
        VectorsDraft::Single(Input::Document(document))
    } else {
        VectorsDraft::Named(
            vectors
                .iter()
                .map(|name| (name.clone(), Input::Document(document.clone())))
                .collect::<BTreeMap<_, _>>(),
        )
    }
}

/// The planned points the collection holds already as they would be: the same id, `doc_id` and
/// `text` (an image point: the same id and `doc_id`).
fn unchanged_points(
    collection: &Collection,
    planned: &[(DocId, Vec<PointDraft>)],
) -> Result<HashSet<PointId>, Error> {
    let wanted: HashMap<PointId, (&Value, Option<&Value>)> = planned
        .iter()
        .flat_map(|(_, drafts)| drafts)
        .filter_map(|d| {
            let payload = d.payload.as_ref()?;
            Some((d.id, (payload.get("doc_id")?, payload.get("text"))))
        })
        .collect();
    let ids: Vec<PointId> = wanted.keys().copied().collect();
    let found = collection.retrieve(
        &ids,
        &WithPayload::Include(vec!["doc_id".into(), "text".into()]),
        &WithVectors::None,
    )?;
    Ok(found
        .into_iter()
        .filter(|r| {
            let (doc_id, text) = wanted[&r.id];
            let payload = r.payload.as_ref();
            payload.and_then(|p| p.get("doc_id")) == Some(doc_id)
                && payload.and_then(|p| p.get("text")) == text
        })
        .map(|r| r.id)
        .collect())
}
