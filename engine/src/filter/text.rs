//! Full-text `match` conditions (`text`, `text_any`, `phrase`).
//!
//! Without a `text` index on the key they compare strings as Qdrant's payload check does: `text` and
//! `phrase` pass a string that contains the query as a substring (case-sensitive), `text_any` one
//! that contains any whitespace-separated word of the query as a substring.
//!
//! With a `text` index both sides go through the index's text pipeline (`quiver_text`, the one the
//! built-in `qdrant/bm25` model uses, as in Qdrant): split into words by the tokenizer (`word`, the
//! default, splits on anything not a letter or digit, `whitespace` on whitespace, `prefix` as `word`,
//! `multilingual` by script and language with charabia, lower-cased and without diacritics),
//! lowercased unless `lowercase: false`, stop words dropped and words stemmed
//! when `stopwords` / `stemmer` say so, and words outside `min_token_len`..`max_token_len` dropped.
//! Under `prefix` a query word matches the start of a stored word (query words are cut to
//! `max_token_len` and keep their stop words, as Qdrant's prefix queries do). Then `text` passes a
//! string holding every query word, `text_any` one holding any, `phrase` one holding them all in
//! order and adjacent. A query with no words left passes nothing.

use quiver_text::{Analyzer, TokenizerKind};

use crate::payload_schema::TextIndexParams;

/// Which query words a string must hold.
#[derive(Clone, Copy)]
pub(super) enum Mode {
    All,
    Any,
    Phrase,
}

/// Whether the stored string passes the query (see the module docs).
pub(super) fn matches(
    mode: Mode,
    query: &str,
    stored: &str,
    index: Option<&TextIndexParams>,
) -> bool {
    let Some(params) = index else {
        return match mode {
            Mode::All | Mode::Phrase => stored.contains(query),
            Mode::Any => query.split_whitespace().any(|w| stored.contains(w)),
        };
    };
    // Params are checked when the index is created; one that no longer parses matches nothing.
    let Ok(analysis) = params.analysis() else {
        return false;
    };
    let analyzer = Analyzer::new(&analysis);
    let query = analyzer.query_tokens(query);
    if query.is_empty() {
        return false;
    }
    let words = analyzer.words(stored);
    let prefix = analyzer.tokenizer() == TokenizerKind::Prefix;
    let same = |q: &str, w: &str| if prefix { w.starts_with(q) } else { q == w };
    let holds = |q: &std::borrow::Cow<'_, str>| words.iter().any(|w| same(q, w));
    match mode {
        Mode::All => query.iter().all(holds),
        Mode::Any => query.iter().any(holds),
        Mode::Phrase => words
            .windows(query.len())
            .any(|window| window.iter().zip(&query).all(|(w, q)| same(q, w))),
    }
}
