//! The documents of one file for `quiver ingest`: `.txt`, `.md`, `.pdf`, `.html`, `.htm` are one
//! document each (its id is the path), `.jsonl` and `.csv`/`.tsv` one per line or row (its id is
//! the record's id field, else `path:line`). Text comes from `crate::documents`; every document's
//! points carry its path (and line, title) besides the record's own fields.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::documents::{self, ExtractOptions, Format};
use crate::inference::{Content, DocId, SourceDocument};

/// Whether `ingest` reads `path` as text documents.
pub fn handles(path: &Path) -> bool {
    Format::of(path).is_some()
}

/// The documents of `path`; those without text are left out. Errors name the file (and line).
pub fn documents(path: &Path, text_field: &str, id_field: &str) -> Result<Vec<SourceDocument>> {
    let opts = ExtractOptions {
        text_field: text_field.to_string(),
    };
    let mut out = Vec::new();
    for doc in documents::extract(path, &opts)? {
        if doc.text.trim().is_empty() {
            continue;
        }
        let id = if doc.line.is_some() {
            record_id(doc.fields.get(id_field)).unwrap_or_else(|| DocId::Str(doc.key()))
        } else {
            DocId::Str(doc.key())
        };
        out.push(SourceDocument {
            id,
            payload: doc.base_payload(),
            pages: doc.pages.clone(),
            content: Content::Text(doc.text),
        });
    }
    Ok(out)
}

/// A record's id field as a document id: an unsigned integer (also as CSV's digits), else its
/// string, else its JSON.
fn record_id(value: Option<&Value>) -> Option<DocId> {
    match value? {
        Value::Null => None,
        Value::Number(n) if n.is_u64() => n.as_u64().map(DocId::Num),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(match s.parse::<u64>() {
            Ok(n) if !s.starts_with('+') => DocId::Num(n),
            _ => DocId::Str(s.clone()),
        }),
        other => Some(DocId::Str(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_ids() {
        assert_eq!(record_id(Some(&json!(7))), Some(DocId::Num(7)));
        assert_eq!(record_id(Some(&json!("12"))), Some(DocId::Num(12)));
        assert_eq!(
            record_id(Some(&json!("a-1"))),
            Some(DocId::Str("a-1".into()))
        );
        assert_eq!(record_id(Some(&json!(-3))), Some(DocId::Str("-3".into())));
        assert_eq!(record_id(Some(&json!(""))), None);
        assert_eq!(record_id(None), None);
    }
}
