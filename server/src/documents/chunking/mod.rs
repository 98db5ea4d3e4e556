//! Cutting a document's text into chunks of at most a token budget, with overlap, for models
//! whose input is shorter than the document.
//!
//! The text is tokenized once ([`Tokenize`]); each cut between two tokens has a strength:
//! paragraph (a blank line), sentence (a line break, or `.`, `!`, `?`, `…` and their CJK forms
//! before the gap), word (any whitespace), or none (inside a word). A chunk ends at the strongest
//! cut in the second half of its budget (the latest of equals), so chunks end at paragraphs where
//! they can, else at sentences, else at words, and only a run without any whitespace is cut
//! between two tokens. The next chunk starts at the earliest sentence (else word) boundary within
//! `overlap` tokens before that end, so neighbours share up to `overlap` tokens of context.
//!
//! Because a piece of text may tokenize a little differently alone than inside its document (a
//! byte-level BPE marks a word after a space), every chunk is tokenized again on its own and made
//! shorter until it fits: a chunk never exceeds the budget (short of a single token that alone
//! tokenizes longer).
//!
//! Offsets are character offsets (Unicode scalar values) into the document's text. A chunk's id
//! derives from (document id, chunk index, chunk text): re-chunking an unchanged document gives
//! the same ids, so a re-run finds its points; a changed document gives different ids for what
//! changed, and its old points are found by `doc_id` and replaced as a whole.

mod tokenizer;

use std::ops::Range;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

#[cfg(test)]
pub use tokenizer::HfTokenizer;
pub use tokenizer::ModelTokenizer;

/// Something that splits text into tokens, as a model's tokenizer does.
pub trait Tokenize {
    /// The byte ranges in `text` of its tokens, in order, special tokens (`[CLS]`, padding) left
    /// out.
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>, ChunkError>;
}

/// Why a text could not be chunked.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("chunking: {0}")]
    Options(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// How large chunks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Most tokens of a chunk (the model's limit less its prompt and special tokens).
    pub max_tokens: usize,
    /// Tokens a chunk may share with the one before it; less than half of `max_tokens`.
    pub overlap: usize,
}

impl ChunkOptions {
    /// Refuses sizes that cannot chunk: none, or an overlap of half the chunk or more.
    pub fn check(&self) -> Result<(), ChunkError> {
        if self.max_tokens == 0 {
            return Err(ChunkError::Options(
                "the chunk size must be at least 1 token".into(),
            ));
        }
        if self.overlap > 0 && self.overlap * 2 >= self.max_tokens {
            return Err(ChunkError::Options(format!(
                "an overlap of {} tokens must be less than half the chunk size of {}",
                self.overlap, self.max_tokens
            )));
        }
        Ok(())
    }
}

/// One piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based position among the document's chunks.
    pub index: usize,
    /// Character offsets into the document's text: `start..end`.
    pub start: usize,
    pub end: usize,
    /// Byte offsets of the same range.
    pub bytes: Range<usize>,
    /// Tokens of the chunk tokenized on its own.
    pub tokens: usize,
}

impl Chunk {
    /// The chunk's text in the document's `text`.
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        &text[self.bytes.clone()]
    }
}

/// How strongly a cut between two tokens separates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cut {
    None,
    Word,
    Sentence,
    Paragraph,
}

/// The chunks of `text`: none for a text without tokens.
pub fn chunk(
    text: &str,
    tokenizer: &dyn Tokenize,
    opts: ChunkOptions,
) -> Result<Vec<Chunk>, ChunkError> {
    opts.check()?;
    let spans: Vec<Range<usize>> = tokenizer
        .token_spans(text)?
        .into_iter()
        .filter(|s| s.start < s.end && s.end <= text.len())
        .collect();
    let n = spans.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    // cuts[i]: the cut before token i (cuts[0] unused).
    let cuts: Vec<Cut> = (0..n)
        .map(|i| {
            if i == 0 {
                Cut::None
            } else {
                cut_before(text, &spans, i)
            }
        })
        .collect();
    let bytes_of = |s: usize, e: usize| {
        let start = spans[s].start;
        let end = spans[e - 1].end;
        // A token may carry the whitespace before it (byte-level BPE offsets).
        let lead = text[start..end].len() - text[start..end].trim_start().len();
        start + lead..end
    };

    let mut chunks = Vec::new();
    let mut chars = CharCursor::default();
    let mut end_chars = CharCursor::default();
    let (mut s, mut prev_end) = (0usize, 0usize);
    loop {
        let mut budget = opts.max_tokens;
        let (e, bytes, tokens) = loop {
            let e = end_cut(&cuts, s, prev_end, budget, n);
            let bytes = bytes_of(s, e);
            let tokens = tokenizer.token_spans(&text[bytes.clone()])?.len();
            if tokens <= opts.max_tokens || e <= s + 1 || e <= prev_end + 1 {
                break (e, bytes, tokens);
            }
            // Too long on its own: try again within a budget smaller by the excess.
            budget = (e - s).saturating_sub(tokens - opts.max_tokens).max(1);
        };
        chunks.push(Chunk {
            index: chunks.len(),
            start: chars.at(text, bytes.start),
            end: end_chars.at(text, bytes.end),
            bytes,
            tokens,
        });
        if e == n {
            break;
        }
        s = next_start(&cuts, s, e, opts.overlap);
        prev_end = e;
    }
    Ok(chunks)
}

/// Where the chunk starting at token `s` ends (exclusive): the strongest cut in the second half
/// of the budget, the latest of equals, past the previous chunk's end.
fn end_cut(cuts: &[Cut], s: usize, prev_end: usize, budget: usize, n: usize) -> usize {
    let limit = (s + budget).max(prev_end + 1);
    if limit >= n {
        return n;
    }
    let lowest = (s + budget.div_ceil(2)).max(prev_end + 1).min(limit);
    let mut best = limit;
    for j in lowest..=limit {
        if cuts[j] >= cuts[best] {
            best = j;
        }
    }
    best
}

/// Where the chunk after `s..e` starts: the earliest sentence (else word) boundary within
/// `overlap` tokens before `e`, else `overlap` tokens before `e`.
fn next_start(cuts: &[Cut], s: usize, e: usize, overlap: usize) -> usize {
    if overlap == 0 {
        return e;
    }
    let from = e.saturating_sub(overlap).max(s + 1);
    for at_least in [Cut::Sentence, Cut::Word] {
        if let Some(j) = (from..e).find(|&j| cuts[j] >= at_least) {
            return j;
        }
    }
    from
}

/// The strength of the cut before token `i`.
fn cut_before(text: &str, spans: &[Range<usize>], i: usize) -> Cut {
    let gap_start = spans[i - 1].end.min(spans[i].start);
    let token = &text[spans[i].clone()];
    let lead = &token[..token.len() - token.trim_start().len()];
    let gap = &text[gap_start..spans[i].start];
    let newlines = gap.matches('\n').count() + lead.matches('\n').count();
    if newlines >= 2 {
        return Cut::Paragraph;
    }
    let before = text[..gap_start]
        .trim_end()
        .trim_end_matches(['"', '\'', '”', '’', ')', ']', '»']);
    let ends_sentence = before.ends_with(['.', '!', '?', '…']);
    let cjk_stop = before.ends_with(['。', '！', '？']);
    let spaced = !lead.is_empty() || gap.chars().any(char::is_whitespace);
    if newlines == 1 || cjk_stop || (ends_sentence && spaced) {
        Cut::Sentence
    } else if spaced {
        Cut::Word
    } else {
        Cut::None
    }
}

/// Byte offsets to character offsets, for offsets that only grow.
#[derive(Default)]
struct CharCursor {
    byte: usize,
    chars: usize,
}

impl CharCursor {
    fn at(&mut self, text: &str, byte: usize) -> usize {
        if byte < self.byte {
            *self = CharCursor::default();
        }
        self.chars += text[self.byte..byte].chars().count();
        self.byte = byte;
        self.chars
    }
}

/// A chunk's point id: a UUID (version 8) from the SHA-256 of the document id, the chunk's index
/// and its text.
pub fn chunk_id(doc_id: &str, index: usize, text: &str) -> uuid::Uuid {
    let mut h = Sha256::new();
    h.update(doc_id.as_bytes());
    h.update([0]);
    h.update(index.to_le_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    let digest = h.finalize();
    let bytes: [u8; 16] = digest[..16].try_into().expect("a SHA-256 has 32 bytes");
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A chunk's payload: the document's own (`base`: its path, title, a record's fields), then
/// `{"doc_id", "chunk", "start", "end", "text"}` and `"page"` (where it starts, for a PDF), which
/// the document's fields do not override.
pub fn chunk_payload(
    base: &Map<String, Value>,
    doc_id: &Value,
    chunk: &Chunk,
    doc_text: &str,
    page: Option<u32>,
) -> Map<String, Value> {
    let mut payload = base.clone();
    payload.insert("doc_id".into(), doc_id.clone());
    payload.insert("chunk".into(), json!(chunk.index));
    payload.insert("start".into(), json!(chunk.start));
    payload.insert("end".into(), json!(chunk.end));
    payload.insert("text".into(), json!(chunk.text(doc_text)));
    if let Some(page) = page {
        payload.insert("page".into(), json!(page));
    }
    payload
}

#[cfg(test)]
mod tests;
