//! The document formats of `quiver ingest` beyond plain text and JSON Lines: `.pdf`, `.html`,
//! `.htm` (one point per file, payload `{"path", "text", "title"?, "pages"?}`) and `.csv`, `.tsv`
//! (one point per row, the row's columns as the payload, like a JSONL line). Text comes from
//! `crate::documents`; chunking is not applied yet, so a long file is one point (and needs
//! `--truncate` past the model's limit).

use std::path::Path;

use anyhow::Result;
use quiver_engine::PointId;
use serde_json::{json, Value};

use crate::documents::{self, ExtractOptions, Format};

/// One point to be, from a document.
pub struct DocumentPoint {
    pub id: PointId,
    pub text: String,
    pub payload: serde_json::Map<String, Value>,
}

/// Whether `ingest` reads `path` through this module.
pub fn handles(path: &Path) -> bool {
    matches!(
        Format::of(path),
        Some(Format::Pdf | Format::Html | Format::Csv { .. })
    )
}

/// The points of `path`; documents without text are left out. Errors name the file (and line).
pub fn points(path: &Path, text_field: &str, id_field: &str) -> Result<Vec<DocumentPoint>> {
    let opts = ExtractOptions {
        text_field: text_field.to_string(),
    };
    let mut points = Vec::new();
    for doc in documents::extract(path, &opts)? {
        if doc.text.trim().is_empty() {
            continue;
        }
        let (id, payload) = if doc.line.is_some() {
            // A row: its id column if it holds an id, else the path and line.
            let id = match doc.fields.get(id_field).and_then(Value::as_str) {
                Some(s) if s.parse::<u64>().is_ok() => PointId::Num(s.parse().expect("checked")),
                Some(s) if uuid::Uuid::parse_str(s).is_ok() => {
                    PointId::Uuid(uuid::Uuid::parse_str(s).expect("checked"))
                }
                Some(s) if !s.is_empty() => super::ingest::hashed_id(&json!(s).to_string()),
                _ => super::ingest::hashed_id(&doc.key()),
            };
            (id, doc.fields)
        } else {
            let mut payload = serde_json::Map::new();
            payload.insert("path".into(), json!(doc.key()));
            payload.insert("text".into(), json!(doc.text));
            if let Some(title) = &doc.title {
                payload.insert("title".into(), json!(title));
            }
            if !doc.pages.is_empty() {
                payload.insert("pages".into(), json!(doc.pages.len()));
            }
            (super::ingest::hashed_id(&doc.key()), payload)
        };
        points.push(DocumentPoint {
            id,
            text: doc.text,
            payload,
        });
    }
    Ok(points)
}
