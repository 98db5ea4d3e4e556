//! Body of `POST /collections/{name}/documents` (Quiver's extension, not Qdrant's): whole documents
//! that the server chunks, embeds with the collection's bindings and upserts, and its answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{invalid, Error};
use crate::documents::Page;
use crate::inference::{Chunking, Content, DocId, SourceDocument, WriteOptions, Written};

/// Documents to chunk, embed and upsert.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentsRequest {
    /// The documents.
    pub documents: Vec<DocumentIn>,
    /// How texts are cut (default: chunks of the model's limit, no overlap).
    #[serde(default)]
    pub chunking: Option<ChunkingIn>,
    /// Vectors each document fills (default: the bound vectors, or every vector when none is bound).
    #[serde(default)]
    pub vectors: Option<Vec<String>>,
    /// Model name (default: each vector's bound model, or the only one served).
    #[serde(default)]
    pub model: Option<String>,
    /// Leave points that already hold the same id, `doc_id` and text as they are, without
    /// embedding them again (default false: every chunk is embedded and written).
    #[serde(default)]
    pub skip_unchanged: bool,
}

/// One document: `text` or `image`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentIn {
    /// A string or an unsigned integer, unique in the request; every point of the document carries
    /// it as `doc_id`. A document that is one point takes it as its point id when it is one (an
    /// integer or a UUID).
    #[schema(value_type = Object)]
    pub id: Value,
    /// Text to chunk.
    #[serde(default)]
    pub text: Option<String>,
    /// An image (base64, or a file under `--image-dir`): one point, not chunked.
    #[serde(default)]
    pub image: Option<String>,
    /// Payload every point of the document carries.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Map<String, Value>>,
    /// Where each page of the text starts (character offsets), so each chunk carries the `page` it
    /// starts on.
    #[serde(default)]
    pub pages: Option<Vec<PageIn>>,
}

/// Where a page starts.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageIn {
    /// Page number.
    pub number: u32,
    /// Character offset into the text.
    pub start: usize,
}

/// `{"max_tokens", "overlap", "late"}`, or `{"enabled": false, "truncate"}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkingIn {
    /// Cut texts into chunks (default true); `false`: one point per document.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Most tokens of a chunk's text (default and maximum: the model's limit less its prompt).
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// Tokens a chunk may share with the one before (default 0; less than half of `max_tokens`).
    #[serde(default)]
    pub overlap: Option<usize>,
    /// With `enabled: false`: cut texts over the model's limit instead of refusing them.
    #[serde(default)]
    pub truncate: Option<bool>,
    /// Late chunking: a document of several chunks goes through the model whole (in windows of
    /// its context when longer) and each chunk's vectors pool its own tokens there, so a chunk
    /// keeps its document's context (default: on for models of 8192 tokens of context or more that
    /// can, such as jina-embeddings-v4; `true` with a model that cannot is a 400).
    #[serde(default)]
    pub late: Option<bool>,
}

/// What became of the documents, in request order.
#[derive(Serialize, ToSchema)]
pub struct DocumentsResult {
    /// One entry per document.
    pub documents: Vec<DocumentOut>,
}

/// One document's points.
#[derive(Serialize, ToSchema)]
pub struct DocumentOut {
    /// The document's id.
    #[schema(value_type = Object)]
    pub id: Value,
    /// Its points' ids, in chunk order.
    #[schema(value_type = Vec<Object>)]
    pub points: Vec<quiver_engine::PointId>,
    /// How many of them were embedded and written now (the others were unchanged).
    pub upserted: usize,
}

impl From<Written> for DocumentOut {
    fn from(w: Written) -> Self {
        DocumentOut {
            id: w.id.to_json(),
            points: w.points,
            upserted: w.upserted,
        }
    }
}

impl DocumentsRequest {
    /// The inference layer's documents and options.
    pub fn into_parts(self) -> Result<(Vec<SourceDocument>, WriteOptions), Error> {
        let chunking = match self.chunking {
            None => Chunking::On {
                max_tokens: None,
                overlap: 0,
                late: None,
            },
            Some(c) if c.enabled.unwrap_or(true) => {
                if c.truncate.is_some() {
                    return Err(invalid(
                        "chunking.truncate applies only with `\"enabled\": false` (chunks always fit)",
                    ));
                }
                if c.max_tokens == Some(0) {
                    return Err(invalid("chunking.max_tokens must be at least 1"));
                }
                Chunking::On {
                    max_tokens: c.max_tokens,
                    overlap: c.overlap.unwrap_or(0),
                    late: c.late,
                }
            }
            Some(c) => {
                for (set, field) in [
                    (c.max_tokens.is_some(), "max_tokens"),
                    (c.overlap.is_some(), "overlap"),
                    (c.late.is_some(), "late"),
                ] {
                    if set {
                        return Err(invalid(format!(
                            "chunking.{field} applies only when chunking is enabled"
                        )));
                    }
                }
                Chunking::Off {
                    truncate: c.truncate.unwrap_or(false),
                }
            }
        };
        let documents = self
            .documents
            .into_iter()
            .enumerate()
            .map(|(i, d)| d.into_source(i))
            .collect::<Result<_, _>>()?;
        Ok((
            documents,
            WriteOptions {
                vectors: self.vectors,
                model: self.model,
                chunking,
                skip_unchanged: self.skip_unchanged,
            },
        ))
    }
}

impl DocumentIn {
    fn into_source(self, i: usize) -> Result<SourceDocument, Error> {
        let id = DocId::from_json(&self.id).ok_or_else(|| {
            invalid(format!(
                "documents[{i}].id must be a non-empty string or an unsigned integer, not {}",
                self.id
            ))
        })?;
        let content = match (self.text, self.image) {
            (Some(text), None) => Content::Text(text),
            (None, Some(image)) => Content::Image(image),
            _ => {
                return Err(invalid(format!(
                    "document `{id}`: give either `text` or `image`"
                )))
            }
        };
        let pages = match (self.pages, &content) {
            (None, _) => Vec::new(),
            (Some(_), Content::Image(_)) => {
                return Err(invalid(format!(
                    "document `{id}`: `pages` applies to text only"
                )))
            }
            (Some(pages), Content::Text(text)) => page_bytes(&id, text, pages)?,
        };
        Ok(SourceDocument {
            id,
            content,
            payload: self.payload.unwrap_or_default(),
            pages,
        })
    }
}

/// Pages at character offsets, as byte offsets into `text`; they must rise and lie in the text.
fn page_bytes(id: &DocId, text: &str, pages: Vec<PageIn>) -> Result<Vec<Page>, Error> {
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain([text.len()])
        .collect();
    let mut out: Vec<Page> = Vec::with_capacity(pages.len());
    let mut last: Option<usize> = None;
    for page in pages {
        if last.is_some_and(|l| page.start <= l) {
            return Err(invalid(format!(
                "document `{id}`: page starts must rise (page {} starts at {})",
                page.number, page.start
            )));
        }
        let Some(&start) = offsets.get(page.start) else {
            return Err(invalid(format!(
                "document `{id}`: page {} starts at {}, past the text's end",
                page.number, page.start
            )));
        };
        last = Some(page.start);
        out.push(Page {
            number: page.number,
            start,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_move_from_characters_to_bytes() {
        let id = DocId::Str("d".into());
        let pages = |starts: &[usize]| {
            starts
                .iter()
                .enumerate()
                .map(|(i, &start)| PageIn {
                    number: i as u32 + 1,
                    start,
                })
                .collect::<Vec<_>>()
        };
        let got = page_bytes(&id, "çà\n\nb", pages(&[0, 4])).unwrap();
        assert_eq!(got.iter().map(|p| p.start).collect::<Vec<_>>(), [0, 6]);
        assert!(page_bytes(&id, "ab", pages(&[0, 3])).is_err());
        assert!(page_bytes(&id, "abc", pages(&[2, 1])).is_err());
    }
}
