//! The text of a PDF, page by page, with lopdf: each page's text operators are walked and their
//! strings decoded through the page's font encodings (ToUnicode maps included). A move to
//! another line (`Td`/`TD` with a vertical offset, `Tm` to another height, `T*`, `'`, `"`, `ET`)
//! ends a line, and a gap inside a line (a large `TJ` offset, a horizontal move) becomes a space:
//! lopdf's own `extract_text` does neither for `Td`, which glues the last word of each line of a
//! typeset paragraph to the first of the next. Pages are joined by a blank line. There is no OCR:
//! scanned pages have no text to give.

use std::collections::BTreeMap;
use std::path::Path;

use lopdf::content::Content;
use lopdf::{Encoding, Object};

use super::{Document, DocumentError, Page};

/// Decompressed content of one page (and one font's ToUnicode map) beyond this is refused: a
/// zip bomb, not a page.
const MAX_PAGE_CONTENT: usize = 256 << 20;

/// A `TJ` offset (thousandths of an em, negative moves right) wider than this is a word gap;
/// kerning pairs stay well under it, inter-word spacing is about 250 to 330.
const WORD_GAP: f32 = 150.0;

pub(super) fn extract(path: &Path, bytes: &[u8]) -> Result<Document, DocumentError> {
    let refuse = |message: String| DocumentError::Pdf {
        path: path.to_path_buf(),
        message,
    };
    let pdf =
        lopdf::Document::load_mem(bytes).map_err(|e| refuse(format!("not a readable PDF: {e}")))?;
    // Still encrypted after loading: no empty user password opened it.
    if pdf.is_encrypted() {
        return Err(refuse("encrypted, and not with an empty password".into()));
    }
    let mut doc = Document::new(path, String::new());
    let mut undecoded = 0usize;
    for (number, page_id) in pdf.get_pages() {
        let (page_text, failures) =
            page_text(&pdf, page_id).map_err(|e| refuse(format!("page {number}: {e}")))?;
        if failures > 0 {
            tracing::warn!(
                path = %path.display(),
                page = number,
                strings = failures,
                "some text of this page could not be decoded and is left out"
            );
            undecoded += failures;
        }
        if !doc.text.is_empty() {
            doc.text.push_str("\n\n");
        }
        doc.pages.push(Page {
            number,
            start: doc.text.len(),
        });
        doc.text.push_str(&page_text);
    }
    if doc.pages.is_empty() {
        return Err(refuse("the PDF has no pages".into()));
    }
    if doc.text.trim().is_empty() {
        return Err(refuse(if undecoded > 0 {
            format!("no decodable text ({undecoded} strings in fonts without a usable encoding)")
        } else {
            "no text in any page (scanned pages? Quiver does no OCR)".into()
        }));
    }
    Ok(doc)
}

/// The separator owed before the next shown text.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Gap {
    Space,
    Line,
}

/// Text being laid out: separators are only written between two pieces of text.
#[derive(Default)]
struct Lines {
    text: String,
    gap: Option<Gap>,
}

impl Lines {
    fn gap(&mut self, gap: Gap) {
        self.gap = Some(self.gap.map_or(gap, |g| if gap > g { gap } else { g }));
    }

    fn show(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.gap.take() {
            Some(Gap::Line) if !self.text.is_empty() => {
                let trimmed = self.text.trim_end_matches([' ', '\t']).len();
                self.text.truncate(trimmed);
                self.text.push('\n');
            }
            Some(Gap::Space)
                if !self.text.is_empty()
                    && !self.text.ends_with(char::is_whitespace)
                    && !s.starts_with(char::is_whitespace) =>
            {
                self.text.push(' ')
            }
            _ => {}
        }
        self.text.push_str(s);
    }
}

/// The text of one page, and how many strings could not be decoded.
fn page_text(pdf: &lopdf::Document, page_id: lopdf::ObjectId) -> Result<(String, usize), String> {
    let fonts = pdf.get_page_fonts(page_id).map_err(|e| e.to_string())?;
    let mut encodings: BTreeMap<Vec<u8>, Encoding> = BTreeMap::new();
    for (name, font) in fonts {
        match font.get_font_encoding_with_limit(pdf, MAX_PAGE_CONTENT) {
            Ok(encoding) => {
                encodings.insert(name, encoding);
            }
            Err(lopdf::Error::Decompress(e)) => return Err(e.to_string()),
            // Its strings count as undecodable below.
            Err(_) => {}
        }
    }
    let data = pdf
        .get_page_content_with_limit(page_id, MAX_PAGE_CONTENT)
        .map_err(|e| e.to_string())?;
    let content = Content::decode(&data).map_err(|e| e.to_string())?;

    let mut out = Lines::default();
    let mut failures = 0usize;
    let mut font: Option<&Encoding> = None;
    // The height of the current line, where the operators say it.
    let mut line_y: Option<f32> = None;
    let number = |o: &Object| o.as_float().ok();
    // A string in a font without a usable encoding (or none set) is counted, not guessed at.
    let mut show = |out: &mut Lines, font: Option<&Encoding>, bytes: &[u8]| match font
        .map(|f| f.bytes_to_string(bytes))
    {
        Some(Ok(s)) => out.show(&s),
        _ => failures += 1,
    };
    for op in &content.operations {
        let operands = &op.operands;
        match op.operator.as_str() {
            "BT" => line_y = Some(0.0),
            "ET" => out.gap(Gap::Line),
            "Tf" => {
                font = operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .and_then(|n| encodings.get(n));
            }
            "Td" | "TD" => {
                let dx = operands.first().and_then(number).unwrap_or(0.0);
                let dy = operands.get(1).and_then(number).unwrap_or(0.0);
                if dy.abs() > f32::EPSILON {
                    out.gap(Gap::Line);
                } else if dx.abs() > f32::EPSILON {
                    out.gap(Gap::Space);
                }
                line_y = line_y.map(|y| y + dy);
            }
            "Tm" => {
                let y = operands.get(5).and_then(number);
                match (line_y, y) {
                    (Some(old), Some(new)) if (old - new).abs() <= 0.01 => out.gap(Gap::Space),
                    _ => out.gap(Gap::Line),
                }
                line_y = y;
            }
            "T*" => out.gap(Gap::Line),
            "Tj" => {
                if let Some(Object::String(bytes, _)) = operands.first() {
                    show(&mut out, font, bytes);
                }
            }
            "'" | "\"" => {
                out.gap(Gap::Line);
                if let Some(Object::String(bytes, _)) = operands.last() {
                    show(&mut out, font, bytes);
                }
            }
            "TJ" => {
                let Some(Object::Array(items)) = operands.first() else {
                    continue;
                };
                for item in items {
                    match item {
                        Object::String(bytes, _) => show(&mut out, font, bytes),
                        other => {
                            if number(other).is_some_and(|n| -n > WORD_GAP) {
                                out.gap(Gap::Space);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok((tidy(&out.text), failures))
}

/// Trailing spaces off each line, runs of blank lines to one, no leading or trailing blank lines.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank { "\n\n" } else { "\n" });
        }
        blank = false;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests;
