//! JSON Lines: one document per non-blank line, an object whose text field is embedded and which
//! is kept whole as the document's fields.

use std::path::Path;

use serde_json::Value;

use super::{text, Document, DocumentError};

pub(super) fn extract(
    path: &Path,
    bytes: &[u8],
    text_field: &str,
) -> Result<Vec<Document>, DocumentError> {
    let content = text::utf8(path, bytes)?;
    let mut docs = Vec::new();
    for (i, line) in content.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| DocumentError::record(path, n, format!("not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(DocumentError::record(path, n, "not a JSON object"));
        };
        let text = match fields.get(text_field) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) => {
                return Err(DocumentError::record(
                    path,
                    n,
                    format!("field `{text_field}` is empty"),
                ))
            }
            Some(other) => {
                return Err(DocumentError::record(
                    path,
                    n,
                    format!("field `{text_field}` is not a string but {other}"),
                ))
            }
            None => {
                return Err(DocumentError::record(
                    path,
                    n,
                    format!("no field `{text_field}` (choose the text field with --text-field)"),
                ))
            }
        };
        let mut doc = Document::new(path, text);
        doc.line = Some(n);
        doc.fields = fields;
        docs.push(doc);
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, field: &str) -> Result<Vec<Document>, DocumentError> {
        extract(Path::new("d.jsonl"), input.as_bytes(), field)
    }

    #[test]
    fn one_document_per_line_with_its_line_number() {
        let docs = run(
            "{\"id\": 1, \"text\": \"first\"}\r\n\n{\"body\": \"x\", \"text\": \"third line\"}\n",
            "text",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].line, docs[0].text.as_str()), (Some(1), "first"));
        assert_eq!(docs[0].fields["id"], 1);
        assert_eq!(
            (docs[1].line, docs[1].text.as_str()),
            (Some(3), "third line")
        );
        assert_eq!(docs[1].key(), "d.jsonl:3");
    }

    #[test]
    fn errors_name_path_and_line() {
        let cases = [
            ("{\"text\": \"ok\"}\n{oops", "d.jsonl:2: not JSON"),
            ("[1, 2]", "d.jsonl:1: not a JSON object"),
            (
                "{\"text\": \"ok\"}\n\n{\"body\": \"x\"}",
                "d.jsonl:3: no field `text`",
            ),
            ("{\"text\": \"  \"}", "d.jsonl:1: field `text` is empty"),
            ("{\"text\": 5}", "d.jsonl:1: field `text` is not a string"),
        ];
        for (input, want) in cases {
            let err = run(input, "text").unwrap_err().to_string();
            assert!(err.starts_with(want), "{input:?}: {err}");
        }
        let err = extract(
            Path::new("d.jsonl"),
            b"{\"text\": \"a\"}\n{\"text\": \"\xff\"}",
            "text",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("d.jsonl:2: not UTF-8"), "{err}");
        assert_eq!(run("{\"body\": \"b\"}", "body").unwrap()[0].text, "b");
    }
}
