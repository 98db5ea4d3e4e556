//! Late chunking: a document goes through the model once (in windows when it is longer than the
//! model's context) and each chunk's vector pools only its own tokens' final hidden states, so a
//! chunk keeps what the rest of the document says about it (Günther et al., "Late Chunking:
//! Contextual Chunk Embeddings Using Long-Context Embedding Models", 2024).
//!
//! This module is the arithmetic around the forward pass and knows no model: chunk character
//! ranges become token ranges ([`token_range`]), and a long document becomes windows that each
//! hold whole chunks plus up to `overlap` tokens of the text before them ([`plan_windows`]).
//! Each chunk is pooled in exactly one window, so the results come back in chunk order.

use std::ops::Range;

use candle_core::{DType, Tensor};

use crate::embedding::{Embedding, MultiVector};
use crate::error::{Error, Result};

/// A text tokenized for late chunking: the whole row the model would read, untruncated, and
/// where the text's own tokens lie in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedText {
    /// Every id: `head` prompt or special tokens, the text's tokens, `tail` special tokens.
    pub ids: Vec<u32>,
    /// Character offsets into the text (not the prompt) of each of the text's tokens, one per id
    /// in `ids[head..ids.len() - tail]`.
    pub offsets: Vec<Range<usize>>,
    /// Ids before the text's tokens (jina's `Passage: ` prompt, BERT's `[CLS]`); never pooled.
    pub head: usize,
    /// Ids after the text's tokens (BERT's `[SEP]`); never pooled.
    pub tail: usize,
}

impl TokenizedText {
    /// The text's own ids.
    pub fn content(&self) -> &[u32] {
        &self.ids[self.head..self.ids.len() - self.tail]
    }

    /// The row the model reads for the text tokens `range`: the head, those tokens, the tail.
    pub fn row(&self, range: Range<usize>) -> Vec<u32> {
        let content = self.content();
        let mut row = Vec::with_capacity(self.head + range.len() + self.tail);
        row.extend_from_slice(&self.ids[..self.head]);
        row.extend_from_slice(&content[range]);
        row.extend_from_slice(&self.ids[self.ids.len() - self.tail..]);
        row
    }
}

/// The text tokens (indices into [`TokenizedText::offsets`]) of the characters `span`: every token
/// whose characters overlap it, so a token a chunk boundary cuts counts for both chunks. `None`
/// when no token overlaps (a span of whitespace only, or an empty one).
pub fn token_range(offsets: &[Range<usize>], span: &Range<usize>) -> Option<Range<usize>> {
    // Offsets rise with the token index; tokens without characters (none in practice) are skipped.
    if span.is_empty() {
        return None;
    }
    let overlaps = |o: &Range<usize>| o.start < span.end && o.end > span.start;
    let first = offsets.iter().position(overlaps)?;
    let last = offsets.iter().rposition(overlaps)?;
    Some(first..last + 1)
}

/// One forward pass of late chunking: the text tokens `tokens` of the document (the row is the
/// head, these and the tail), and the chunks it pools, each as (chunk index, token range relative
/// to the window's first text token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub tokens: Range<usize>,
    pub chunks: Vec<(usize, Range<usize>)>,
}

/// Windows of at most `capacity` text tokens over a document of `n_tokens` text tokens, such that
/// every chunk (its token range in the document, ranges rising) lies whole in exactly one window.
/// A window takes chunks while they fit after `overlap` tokens of the text before its first
/// chunk, and then reaches back over its whole capacity, so every chunk reads at least `overlap`
/// tokens (or all there are) of what comes before it. A document that fits is one window of all of it. A chunk longer than `capacity` is
/// refused: the caller's chunks must be sized for the model.
pub fn plan_windows(
    chunks: &[Range<usize>],
    n_tokens: usize,
    capacity: usize,
    overlap: usize,
) -> Result<Vec<Window>> {
    if capacity == 0 {
        return Err(Error::InvalidInput(
            "late chunking needs a window of at least one text token".into(),
        ));
    }
    if let Some((i, c)) = chunks.iter().enumerate().find(|(_, c)| c.len() > capacity) {
        return Err(Error::InvalidInput(format!(
            "chunk {i} has {} tokens, more than a late-chunking window holds ({capacity} text \
             tokens): make the chunks smaller",
            c.len()
        )));
    }
    if let Some((i, c)) = chunks
        .iter()
        .enumerate()
        .find(|(_, c)| c.is_empty() || c.end > n_tokens)
    {
        return Err(Error::InvalidInput(format!(
            "chunk {i}: token range {c:?} is not inside the document's {n_tokens} tokens"
        )));
    }
    if n_tokens <= capacity {
        return Ok(vec![Window {
            tokens: 0..n_tokens,
            chunks: chunks.iter().cloned().enumerate().collect(),
        }]);
    }
    let mut windows = Vec::new();
    let mut i = 0;
    while i < chunks.len() {
        let first = chunks[i].start;
        // Chunks are taken while they fit after `overlap` tokens of context before the first.
        let base = first.saturating_sub(overlap.min(capacity - chunks[i].len()));
        let limit = base + capacity;
        let mut last = i;
        while last + 1 < chunks.len() && chunks[last + 1].end <= limit {
            last += 1;
        }
        // The window ends with its last chunk (what follows is the next window's) and reaches
        // back over its whole capacity, so the first chunk reads at least `overlap` tokens before it.
        let last_end = chunks[i..=last]
            .iter()
            .map(|c| c.end)
            .max()
            .unwrap_or(first);
        let start = last_end.saturating_sub(capacity).min(first);
        let end = (start + capacity).min(n_tokens);
        let members = (i..=last)
            .map(|k| (k, chunks[k].start - start..chunks[k].end - start))
            .collect();
        windows.push(Window {
            tokens: start..end,
            chunks: members,
        });
        i = last + 1;
    }
    Ok(windows)
}

/// What [`crate::Encoder::embed_spans`] needs besides the text and its chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct LateChunkOptions {
    pub task: String,
    pub prompt: crate::prompt::PromptKind,
    /// Size of each returned dense vector (`None`: the model's default).
    pub dims: Option<usize>,
    /// Tokens of one forward pass, prompt and special tokens included; `None` (and anything
    /// larger): the model's context ([`crate::ModelInfo::max_length`]).
    pub window: Option<usize>,
    /// Tokens of text before a window's first chunk that a later window re-reads for context;
    /// `None`: a quarter of the window.
    pub overlap: Option<usize>,
}

impl LateChunkOptions {
    /// Passages of `task` at the model's default size, windows of the model's context.
    pub fn passage(task: &str) -> Self {
        LateChunkOptions {
            task: task.to_string(),
            prompt: crate::prompt::PromptKind::Passage,
            dims: None,
            window: None,
            overlap: None,
        }
    }
}

/// One window ready for the model: its row and the token ranges (into the row) it pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow {
    pub ids: Vec<u32>,
    pub spans: Vec<Range<usize>>,
}

/// Maps character `spans` of a tokenized text to windows of at most `window` tokens (head and
/// tail included), `overlap` text tokens of context; chunks come back in order over the windows.
pub fn window_rows(
    tok: &TokenizedText,
    spans: &[Range<usize>],
    window: usize,
    overlap: usize,
) -> Result<Vec<WindowRow>> {
    let ranges = spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.start >= s.end {
                return Err(Error::InvalidInput(format!(
                    "chunk {i}: character range {s:?} is empty"
                )));
            }
            token_range(&tok.offsets, s).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "chunk {i}: characters {s:?} hold no token of the text"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(i) = (1..spans.len()).find(|&i| spans[i].start < spans[i - 1].start) {
        return Err(Error::InvalidInput(format!(
            "chunk {i} starts before chunk {}: chunks must be in document order",
            i - 1
        )));
    }
    let fixed = tok.head + tok.tail;
    let capacity = window
        .checked_sub(fixed)
        .filter(|&c| c > 0)
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "a window of {window} tokens leaves no room for text next to {fixed} prompt and \
             special tokens"
            ))
        })?;
    let windows = plan_windows(&ranges, tok.offsets.len(), capacity, overlap)?;
    Ok(windows
        .into_iter()
        .map(|w| WindowRow {
            ids: tok.row(w.tokens.clone()),
            spans: w
                .chunks
                .into_iter()
                .map(|(_, r)| r.start + tok.head..r.end + tok.head)
                .collect(),
        })
        .collect())
}

/// Where each of `rows`, laid end to end, starts in the packed token axis.
pub(crate) fn row_starts(rows: &[&[u32]]) -> Vec<usize> {
    rows.iter()
        .scan(0, |at, r| {
            let start = *at;
            *at += r.len();
            Some(start)
        })
        .collect()
}

/// Pools the spans of window rows whose final hidden states lie end to end in `hidden` `[T, H]`
/// (row `r` from `starts[r]`): each span's mean in f32, L2-normalised when `normalize`, cut to
/// `dims` (renormalised); with `multi` `[T, P]` (the model's per-token vectors, f32), each span's
/// rows as its multi-vector. `tokens` of each embedding is its span's length.
pub(crate) fn pool_windows(
    hidden: &Tensor,
    multi: Option<&Tensor>,
    starts: &[usize],
    spans: &[&[Range<usize>]],
    normalize: bool,
    dims: usize,
) -> Result<Vec<Vec<Embedding>>> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let mut pooled = Vec::with_capacity(spans.iter().map(|s| s.len()).sum());
    for (&start, row) in starts.iter().zip(spans) {
        for s in row.iter() {
            pooled.push(
                hidden
                    .narrow(0, start + s.start, s.len())?
                    .mean_keepdim(0)?,
            );
        }
    }
    if pooled.is_empty() {
        return Ok(spans.iter().map(|_| Vec::new()).collect());
    }
    let pooled = Tensor::cat(&pooled, 0)?;
    let pooled = if normalize {
        crate::layers::l2_normalize(&pooled)?
    } else {
        pooled
    };
    let mut singles = pooled.to_vec2::<f32>()?.into_iter();
    let multi = match multi {
        Some(m) => Some((
            m.dim(1)?,
            m.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
        )),
        None => None,
    };
    Ok(starts
        .iter()
        .zip(spans)
        .map(|(&start, row)| {
            row.iter()
                .map(|s| {
                    let multi = match &multi {
                        Some((dim, data)) => MultiVector {
                            dim: *dim,
                            data: data[(start + s.start) * dim..(start + s.end) * dim].to_vec(),
                        },
                        None => MultiVector::empty(),
                    };
                    let mut e = Embedding {
                        single: singles.next().expect("one pooled vector per span"),
                        multi,
                        tokens: s.len(),
                    };
                    e.truncate(dims);
                    e
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
// One-chunk lists are what these cases mean.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    /// Offsets of one-character tokens at every other character ("a b c …").
    fn spaced(n: usize) -> Vec<Range<usize>> {
        (0..n).map(|i| 2 * i..2 * i + 1).collect()
    }

    #[test]
    fn spans_map_to_overlapping_tokens() {
        // "hello world": tokens "hello", " world" (the space belongs to the second token).
        let offsets = vec![0..5, 5..11];
        assert_eq!(token_range(&offsets, &(0..5)), Some(0..1));
        assert_eq!(token_range(&offsets, &(6..11)), Some(1..2));
        assert_eq!(token_range(&offsets, &(0..11)), Some(0..2));
        // A boundary inside a token: the token counts for both sides.
        assert_eq!(token_range(&offsets, &(0..3)), Some(0..1));
        assert_eq!(token_range(&offsets, &(3..8)), Some(0..2));
        // Past the text, or between tokens: nothing.
        assert_eq!(token_range(&offsets, &(11..12)), None);
        assert_eq!(token_range(&spaced(3), &(1..2)), None);
        assert_eq!(token_range(&offsets, &(4..4)), None);
    }

    #[test]
    fn a_fitting_document_is_one_window() {
        let chunks = vec![0..3, 3..6, 5..9];
        let w = plan_windows(&chunks, 9, 9, 2).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].tokens, 0..9);
        assert_eq!(w[0].chunks, vec![(0, 0..3), (1, 3..6), (2, 5..9)]);
    }

    #[test]
    fn long_documents_get_overlapping_windows_holding_whole_chunks() {
        // 20 tokens, chunks of 4, windows of 8 text tokens, 2 tokens of context.
        let chunks: Vec<_> = (0..5).map(|i| 4 * i..4 * i + 4).collect();
        let w = plan_windows(&chunks, 20, 8, 2).unwrap();
        let tokens: Vec<_> = w.iter().map(|w| w.tokens.clone()).collect();
        // Two chunks fit the first window; after it, a chunk and its context fill a window.
        assert_eq!(tokens, vec![0..8, 4..12, 8..16, 12..20]);
        assert_eq!(w[0].chunks, vec![(0, 0..4), (1, 4..8)]);
        // Chunk 2 (8..12) reads the four tokens 4..8 before it.
        assert_eq!(w[1].chunks, vec![(2, 4..8)]);
        assert_eq!(w[3].chunks, vec![(4, 4..8)]);
        // Windows of 12: three chunks, then the last two with four tokens before them.
        let w12 = plan_windows(&chunks, 20, 12, 2).unwrap();
        let tokens: Vec<_> = w12.iter().map(|w| w.tokens.clone()).collect();
        assert_eq!(tokens, vec![0..12, 8..20]);
        assert_eq!(w12[1].chunks, vec![(3, 4..8), (4, 8..12)]);
        // Every chunk exactly once, in order, and every window within capacity.
        let order: Vec<usize> = w
            .iter()
            .flat_map(|w| w.chunks.iter().map(|c| c.0))
            .collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        assert!(w.iter().all(|w| w.tokens.len() <= 8));
        for win in &w {
            for (i, r) in &win.chunks {
                assert_eq!(
                    r.start + win.tokens.start..r.end + win.tokens.start,
                    chunks[*i]
                );
            }
        }
    }

    #[test]
    fn overlapping_chunks_and_bad_chunks() {
        let chunks = vec![0..6, 4..10, 8..14];
        let w = plan_windows(&chunks, 14, 7, 3).unwrap();
        let order: Vec<usize> = w
            .iter()
            .flat_map(|w| w.chunks.iter().map(|c| c.0))
            .collect();
        assert_eq!(order, vec![0, 1, 2]);
        assert!(w.iter().all(|w| w.tokens.len() <= 7));
        // The context never pushes the chunk out of its window.
        assert_eq!(w[1].tokens, 3..10);
        assert!(plan_windows(&[0..9], 9, 8, 0).is_err());
        assert!(plan_windows(&[0..3, 3..3], 9, 8, 0).is_err());
        assert!(plan_windows(&[0..10], 9, 20, 0).is_err());
        assert!(plan_windows(&[0..1], 9, 0, 0).is_err());
    }

    #[test]
    fn rows_carry_head_and_tail_and_spans_index_the_row() {
        let tok = TokenizedText {
            // [CLS] a b c d e f [SEP]
            ids: vec![101, 1, 2, 3, 4, 5, 6, 102],
            offsets: spaced(6),
            head: 1,
            tail: 1,
        };
        // Chunks "a b c" and "d e f"; windows of 5 tokens hold 3 text tokens.
        let rows = window_rows(&tok, &[0..5, 6..11], 5, 1).unwrap();
        assert_eq!(
            rows,
            vec![
                WindowRow {
                    ids: vec![101, 1, 2, 3, 102],
                    spans: vec![1..4],
                },
                WindowRow {
                    ids: vec![101, 4, 5, 6, 102],
                    spans: vec![1..4],
                },
            ]
        );
        let one = window_rows(&tok, &[0..5, 6..11], 8, 1).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].ids, tok.ids);
        assert_eq!(one[0].spans, vec![1..4, 4..7]);
        assert!(
            window_rows(&tok, &[0..5, 1..2], 8, 1).is_err(),
            "a span without tokens"
        );
        assert!(
            window_rows(&tok, &[6..11, 0..5], 8, 1).is_err(),
            "out of order"
        );
        assert!(
            window_rows(&tok, &[0..5], 2, 0).is_err(),
            "no room for text"
        );
    }
}
