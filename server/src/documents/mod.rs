//! Files into documents: the text of each supported format (`extract`), and chunks of it sized
//! for a model (`chunking`). Library code for `quiver ingest` and the inference layer; it knows nothing of HTTP,
//! collections or models.
//!
//! One file is one document, except JSON Lines and CSV files, where each line or row is one.
//! Offsets in a [`Document`] are byte offsets into its `text`.

pub mod chunking;
mod error;
mod html;
mod jsonl;
mod pdf;
mod table;
mod text;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use error::DocumentError;

/// The formats `extract` reads, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.txt`
    Text,
    /// `.md`, `.markdown`: kept as written (the markup is readable text to a model).
    Markdown,
    /// `.html`, `.htm`: the visible text, without scripts and styles.
    Html,
    /// `.pdf`: the text of each page.
    Pdf,
    /// `.jsonl`: one document per line.
    Jsonl,
    /// `.csv` (`.tsv`: tab-separated): one document per row, a header row first.
    Csv { delimiter: u8 },
}

impl Format {
    /// The format of `path`, from its extension (any case), if it is one of these.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" => Format::Text,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "pdf" => Format::Pdf,
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv { delimiter: b',' },
            "tsv" => Format::Csv { delimiter: b'\t' },
            _ => return None,
        })
    }
}

/// Where a page of a PDF starts in its document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based page number.
    pub number: u32,
    /// Byte offset into the text.
    pub start: usize,
}

/// The text of a file, or of one line or row of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub path: PathBuf,
    /// 1-based line of a JSONL line or a CSV row (a quoted CSV field may span lines: its first).
    pub line: Option<u64>,
    /// An HTML `<title>`, or a Markdown file's first `# ` heading.
    pub title: Option<String>,
    pub text: String,
    /// PDF only: where each page starts, in order. Pages are separated by a blank line.
    pub pages: Vec<Page>,
    /// JSONL: the line's object (its text field included); CSV: the row's columns by header.
    pub fields: Map<String, Value>,
}

impl Document {
    fn new(path: &Path, text: String) -> Self {
        Document {
            path: path.to_path_buf(),
            line: None,
            title: None,
            text,
            pages: Vec::new(),
            fields: Map::new(),
        }
    }

    /// `path`, or `path:line` for a line or row: stable across runs, so it can key the
    /// document's points.
    pub fn key(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    /// What every point of the document carries: a record's fields (a JSONL line's, a CSV
    /// row's), then `path`, `line` (records) and `title` (where it has one).
    pub fn base_payload(&self) -> Map<String, Value> {
        let mut payload = self.fields.clone();
        payload.insert(
            "path".into(),
            Value::String(self.path.display().to_string()),
        );
        if let Some(line) = self.line {
            payload.insert("line".into(), Value::from(line));
        }
        if let Some(title) = &self.title {
            payload.insert("title".into(), Value::String(title.clone()));
        }
        payload
    }
}

/// The page holding byte `offset` of a text whose pages start at `pages` (PDF only).
pub fn page_at(pages: &[Page], offset: usize) -> Option<u32> {
    let i = pages.partition_point(|p| p.start <= offset);
    pages.get(i.checked_sub(1)?).map(|p| p.number)
}

/// What the record formats embed.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// The JSONL field or CSV column holding the text.
    pub text_field: String,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            text_field: "text".to_string(),
        }
    }
}

/// The documents of the file at `path`, read as its extension says. Every error names the
/// path (and the line for JSONL and CSV).
pub fn extract(path: &Path, opts: &ExtractOptions) -> Result<Vec<Document>, DocumentError> {
    let format = Format::of(path).ok_or_else(|| DocumentError::Unsupported {
        path: path.to_path_buf(),
    })?;
    let bytes = std::fs::read(path).map_err(|e| DocumentError::io(path, e))?;
    extract_bytes(path, format, &bytes, opts)
}

/// As [`extract`], for a file's content already in memory.
pub fn extract_bytes(
    path: &Path,
    format: Format,
    bytes: &[u8],
    opts: &ExtractOptions,
) -> Result<Vec<Document>, DocumentError> {
    match format {
        Format::Text => Ok(vec![Document::new(path, text::utf8(path, bytes)?)]),
        Format::Markdown => {
            let text = text::utf8(path, bytes)?;
            let mut doc = Document::new(path, String::new());
            doc.title = text::markdown_title(&text);
            doc.text = text;
            Ok(vec![doc])
        }
        Format::Html => {
            let page = html::visible_text(bytes);
            let mut doc = Document::new(path, page.text);
            doc.title = page.title;
            Ok(vec![doc])
        }
        Format::Pdf => Ok(vec![pdf::extract(path, bytes)?]),
        Format::Jsonl => jsonl::extract(path, bytes, &opts.text_field),
        Format::Csv { delimiter } => table::extract(path, bytes, delimiter, &opts.text_field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a/b.PDF")), Some(Format::Pdf));
        assert_eq!(Format::of(Path::new("x.htm")), Some(Format::Html));
        assert_eq!(
            Format::of(Path::new("x.tsv")),
            Some(Format::Csv { delimiter: b'\t' })
        );
        assert_eq!(Format::of(Path::new("x.docx")), None);
        assert_eq!(Format::of(Path::new("README")), None);
        let err = extract(Path::new("notes.docx"), &ExtractOptions::default()).unwrap_err();
        assert!(err.to_string().starts_with("notes.docx: "), "{err}");
    }

    #[test]
    fn missing_files_name_their_path() {
        let err = extract(Path::new("/no/such/file.txt"), &ExtractOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/no/such/file.txt: "), "{err}");
    }

    #[test]
    fn pages_by_offset() {
        let mut doc = Document::new(Path::new("a.pdf"), "one\n\ntwo\n\nthree".into());
        doc.pages = vec![
            Page {
                number: 1,
                start: 0,
            },
            Page {
                number: 2,
                start: 5,
            },
            Page {
                number: 3,
                start: 10,
            },
        ];
        assert_eq!(page_at(&doc.pages, 0), Some(1));
        assert_eq!(page_at(&doc.pages, 4), Some(1));
        assert_eq!(page_at(&doc.pages, 5), Some(2));
        assert_eq!(page_at(&doc.pages, 14), Some(3));
        assert_eq!(doc.key(), "a.pdf");
        doc.line = Some(7);
        assert_eq!(doc.key(), "a.pdf:7");
        assert_eq!(
            page_at(&Document::new(Path::new("t"), String::new()).pages, 0),
            None
        );
    }
}
