//! BM25's tokens under its options (the pipeline itself is `quiver_text`).

use std::borrow::Cow;

use quiver_text::Analyzer;

use super::options::Bm25Config;

fn config(options: serde_json::Value) -> Bm25Config {
    Bm25Config::from_options(options.as_object()).unwrap()
}

fn doc(options: serde_json::Value, text: &str) -> Vec<String> {
    let c = config(options);
    Analyzer::new(&c.analysis())
        .document_tokens(text)
        .into_iter()
        .map(Cow::into_owned)
        .collect()
}

fn query(options: serde_json::Value, text: &str) -> Vec<String> {
    let c = config(options);
    Analyzer::new(&c.analysis())
        .query_tokens(text)
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
