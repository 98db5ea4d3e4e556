//! Text to tokens the way Qdrant's full-text tokenizers do it (`lib/segment/.../tokenizers`): split
//! into words, then each word goes through the same steps in the same order — lower-case, drop stop
//! words, Snowball-stem, drop tokens outside the length bounds. Token ids hash the result, so any
//! difference in order or rule would give other ids than Qdrant's.

use std::borrow::Cow;
use std::collections::HashSet;

use rust_stemmers::Stemmer;

use super::options::{Bm25Config, TokenizerKind};

/// The configured per-token steps.
pub(crate) struct TokenProcessor {
    lowercase: bool,
    /// Lower-cased when `lowercase` is set, so that they match lower-cased tokens; exact otherwise.
    stopwords: HashSet<String>,
    stemmer: Option<Stemmer>,
    min_len: Option<usize>,
    max_len: Option<usize>,
}

impl TokenProcessor {
    pub(crate) fn new(config: &Bm25Config) -> Self {
        let case = |w: &str| {
            if config.lowercase {
                w.to_lowercase()
            } else {
                w.to_string()
            }
        };
        let english: &[&str] = if config.stopwords.english {
            super::stopwords::ENGLISH
        } else {
            &[]
        };
        let stopwords = english
            .iter()
            .copied()
            .chain(config.stopwords.custom.iter().map(String::as_str))
            .map(case)
            .collect();
        TokenProcessor {
            lowercase: config.lowercase,
            stopwords,
            stemmer: config.stemmer.map(Stemmer::create),
            min_len: config.min_token_len,
            max_len: config.max_token_len,
        }
    }

    fn lower<'a>(&self, token: Cow<'a, str>) -> Cow<'a, str> {
        if self.lowercase {
            Cow::Owned(token.to_lowercase())
        } else {
            token
        }
    }

    fn stem<'a>(&self, token: Cow<'a, str>) -> Cow<'a, str> {
        match &self.stemmer {
            // The stem borrows from `token`, which is returned in its place.
            Some(stemmer) => Cow::Owned(stemmer.stem(&token).into_owned()),
            None => token,
        }
    }

    /// One word through every step; `None` when it is dropped. Prefix documents skip the upper
    /// length bound: their words are cut into prefixes of at most that length instead.
    fn process<'a>(&self, word: &'a str, check_max: bool) -> Option<Cow<'a, str>> {
        if word.is_empty() {
            return None;
        }
        let token = self.lower(Cow::Borrowed(word));
        if self.stopwords.contains(token.as_ref()) {
            return None;
        }
        let token = self.stem(token);
        let chars = token.chars().count();
        let short = self.min_len.is_some_and(|min| chars < min);
        let long = check_max && self.max_len.is_some_and(|max| chars > max);
        (!short && !long).then_some(token)
    }
}

/// Words: runs of alphanumeric characters (Unicode letters and digits), as Qdrant's `word`
/// tokenizer splits them; `don't` is `don` and `t`.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
}

/// The tokens of a stored document.
pub(crate) fn tokenize_doc<'a>(
    kind: TokenizerKind,
    p: &TokenProcessor,
    text: &'a str,
) -> Vec<Cow<'a, str>> {
    match kind {
        TokenizerKind::Word => words(text).filter_map(|w| p.process(w, true)).collect(),
        TokenizerKind::Whitespace => text
            .split_whitespace()
            .filter_map(|w| p.process(w, true))
            .collect(),
        TokenizerKind::Prefix => {
            // Every prefix from `min_token_len` (default 1) to `max_token_len` characters, the
            // whole word when it is shorter.
            let min = p.min_len.unwrap_or(1);
            let max = p.max_len.unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for word in words(text).filter_map(|w| p.process(w, false)) {
                for n in min..=max {
                    match word.char_indices().nth(n) {
                        Some((end, _)) => out.push(Cow::Owned(word[..end].to_string())),
                        None => {
                            out.push(word);
                            break;
                        }
                    }
                }
            }
            out
        }
    }
}

/// The tokens of a query. Only the prefix tokenizer differs from documents: it keeps stop words
/// (a query may be a word still being typed) and cuts each word to its longest indexed prefix.
pub(crate) fn tokenize_query<'a>(
    kind: TokenizerKind,
    p: &TokenProcessor,
    text: &'a str,
) -> Vec<Cow<'a, str>> {
    match kind {
        TokenizerKind::Word | TokenizerKind::Whitespace => tokenize_doc(kind, p, text),
        TokenizerKind::Prefix => {
            let max = p.max_len.unwrap_or(usize::MAX);
            words(text)
                .filter(|w| !w.is_empty())
                .filter_map(|w| {
                    let word = p.stem(p.lower(Cow::Borrowed(w)));
                    if p.min_len.is_some_and(|min| word.chars().count() < min) {
                        return None;
                    }
                    Some(match word.char_indices().nth(max) {
                        Some((end, _)) => Cow::Owned(word[..end].to_string()),
                        None => word,
                    })
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bm25::options::Bm25Config;

    fn config(options: serde_json::Value) -> Bm25Config {
        Bm25Config::from_options(options.as_object()).unwrap()
    }

    fn doc(options: serde_json::Value, text: &str) -> Vec<String> {
        let c = config(options);
        let p = TokenProcessor::new(&c);
        tokenize_doc(c.tokenizer, &p, text)
            .into_iter()
            .map(Cow::into_owned)
            .collect()
    }

    fn query(options: serde_json::Value, text: &str) -> Vec<String> {
        let c = config(options);
        let p = TokenProcessor::new(&c);
        tokenize_query(c.tokenizer, &p, text)
            .into_iter()
            .map(Cow::into_owned)
            .collect()
    }

    #[test]
    fn defaults_split_words_lower_case_drop_stop_words_and_stem() {
        let tokens = doc(
            serde_json::json!({}),
            "The QUICK brown foxes, don't they jump? Привет, мир!",
        );
        assert_eq!(tokens, ["quick", "brown", "fox", "jump", "привет", "мир"]);
    }

    #[test]
    fn language_none_keeps_stop_words_and_word_forms() {
        let tokens = doc(serde_json::json!({"language": "none"}), "The running dogs");
        assert_eq!(tokens, ["the", "running", "dogs"]);
    }

    #[test]
    fn without_lower_casing_stop_words_match_exactly() {
        let tokens = doc(
            serde_json::json!({"lowercase": false, "stemmer": {"type": "none"}}),
            "The the Cats",
        );
        assert_eq!(tokens, ["The", "Cats"]);
    }

    #[test]
    fn custom_stop_words_and_length_bounds_apply_after_stemming() {
        let options = serde_json::json!({
            "stopwords": {"languages": ["english"], "custom": ["Quiver"]},
            "min_token_len": 3,
            "max_token_len": 5,
        });
        // "searching" stems to "search" (6 characters): too long; "go" is too short.
        assert_eq!(
            doc(options, "Quiver go searching fast cats"),
            ["fast", "cat"]
        );
    }

    #[test]
    fn whitespace_tokenizer_keeps_punctuation() {
        let tokens = doc(
            serde_json::json!({"tokenizer": "whitespace", "language": "none"}),
            "hello, world!",
        );
        assert_eq!(tokens, ["hello,", "world!"]);
    }

    #[test]
    fn prefix_tokenizer_indexes_prefixes_and_queries_the_longest() {
        let options =
            serde_json::json!({"tokenizer": "prefix", "language": "none", "max_token_len": 4});
        assert_eq!(
            doc(options.clone(), "hello, мир!"),
            ["h", "he", "hel", "hell", "м", "ми", "мир"]
        );
        assert_eq!(query(options, "hello, мир the"), ["hell", "мир", "the"]);
    }
}
