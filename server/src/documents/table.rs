//! CSV and TSV: a header row, then one document per row; the text column is embedded and every
//! column is kept, by header, as the document's fields.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Document, DocumentError};

pub(super) fn extract(
    path: &Path,
    bytes: &[u8],
    delimiter: u8,
    text_field: &str,
) -> Result<Vec<Document>, DocumentError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_reader(bytes);
    let headers = reader.headers().map_err(|e| csv_error(path, &e))?.clone();
    let Some(text_at) = headers.iter().position(|h| h == text_field) else {
        let columns = headers.iter().collect::<Vec<_>>().join(", ");
        return Err(DocumentError::record(
            path,
            1,
            format!(
                "no column `{text_field}` in the header (columns: {columns}; choose the text \
                 column with --text-field)"
            ),
        ));
    };
    let mut docs = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &e))?;
        let line = record.position().map_or(0, |p| p.line());
        let text = record.get(text_at).unwrap_or("");
        if text.trim().is_empty() {
            return Err(DocumentError::record(
                path,
                line,
                format!("column `{text_field}` is empty"),
            ));
        }
        let fields: Map<String, Value> = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
            .collect();
        let mut doc = Document::new(path, text.to_string());
        doc.line = Some(line);
        doc.fields = fields;
        docs.push(doc);
    }
    Ok(docs)
}

fn csv_error(path: &Path, e: &csv::Error) -> DocumentError {
    let line = e.position().map_or(1, |p| p.line());
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => DocumentError::NotUtf8 {
            path: path.to_path_buf(),
            line,
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => DocumentError::record(
            path,
            line,
            format!("{len} fields where the header has {expected_len}"),
        ),
        _ => DocumentError::record(path, line, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Result<Vec<Document>, DocumentError> {
        extract(Path::new("t.csv"), input.as_bytes(), b',', "body")
    }

    #[test]
    fn one_document_per_row_with_its_line() {
        let docs =
            run("\u{feff}id,body,tag\n1,\"first row\",a\n2,\"a quoted\nnewline\",b\n3,third,\n")
                .unwrap();
        let got: Vec<(Option<u64>, &str)> =
            docs.iter().map(|d| (d.line, d.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(2), "first row"),
                (Some(3), "a quoted\nnewline"),
                (Some(5), "third")
            ]
        );
        assert_eq!(docs[0].fields["id"], "1");
        assert_eq!(docs[2].fields["tag"], "");
        let tsv = extract(
            Path::new("t.tsv"),
            b"body\tn\nhello, world\t1\n",
            b'\t',
            "body",
        )
        .unwrap();
        assert_eq!(tsv[0].text, "hello, world");
    }

    #[test]
    fn errors_name_path_and_line() {
        let cases = [
            (
                "id,text\n1,x\n",
                "t.csv:1: no column `body` in the header (columns: id, text",
            ),
            (
                "id,body\n1,x\n2,y,extra\n",
                "t.csv:3: 3 fields where the header has 2",
            ),
            ("id,body\n1,x\n2, \n", "t.csv:3: column `body` is empty"),
        ];
        for (input, want) in cases {
            let err = run(input).unwrap_err().to_string();
            assert!(err.starts_with(want), "{input:?}: {err}");
        }
        let err = extract(Path::new("t.csv"), b"body\nok\nbad\xff\n", b',', "body").unwrap_err();
        assert!(err.to_string().starts_with("t.csv:3: not UTF-8"), "{err}");
    }
}
