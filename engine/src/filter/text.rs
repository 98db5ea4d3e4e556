//! Full-text `match` conditions (`text`, `text_any`, `phrase`).
//!
//! Without a `text` index on the key they compare strings as Qdrant's payload check does: `text` and
//! `phrase` pass a string that contains the query as a substring (case-sensitive), `text_any` one
//! that contains any whitespace-separated word of the query as a substring.
//!
//! With a `text` index both sides are split into words the way the index's params say: `word`
//! (the default; `multilingual` is treated the same) splits on anything not a letter or digit,
//! `whitespace` on whitespace, `prefix` splits as `word` and lets a query word match the start of a
//! stored word; words are lowercased unless `lowercase: false`, and words shorter than
//! `min_token_len` or longer than `max_token_len` are dropped. Then `text` passes a string holding
//! every query word, `text_any` one holding any, `phrase` one holding them all in order and
//! adjacent. A query with no words left passes nothing.

use crate::payload_schema::{TextIndexParams, TokenizerType};

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
    let query = tokens(query, params);
    if query.is_empty() {
        return false;
    }
    let words = tokens(stored, params);
    let prefix = params.tokenizer == Some(TokenizerType::Prefix);
    let same = |q: &str, w: &str| if prefix { w.starts_with(q) } else { q == w };
    let holds = |q: &String| words.iter().any(|w| same(q, w));
    match mode {
        Mode::All => query.iter().all(holds),
        Mode::Any => query.iter().any(holds),
        Mode::Phrase => words
            .windows(query.len())
            .any(|window| window.iter().zip(&query).all(|(w, q)| same(q, w))),
    }
}

/// The words of `s` under the index params.
fn tokens(s: &str, params: &TextIndexParams) -> Vec<String> {
    let lowercase = params.lowercase.unwrap_or(true);
    let min = params.min_token_len.unwrap_or(0);
    let max = params.max_token_len.unwrap_or(usize::MAX);
    let split: Box<dyn Iterator<Item = &str>> = match params.tokenizer {
        Some(TokenizerType::Whitespace) => Box::new(s.split_whitespace()),
        _ => Box::new(s.split(|c: char| !c.is_alphanumeric())),
    };
    split
        .filter(|w| !w.is_empty())
        .filter(|w| (min..=max).contains(&w.chars().count()))
        .map(|w| {
            if lowercase {
                w.to_lowercase()
            } else {
                w.to_string()
            }
        })
        .collect()
}
