//! A `text` index deleted and created again with other params over segments already sealed: every
//! segment (sealed and appendable) answers full-text matches with the new params, before and after a
//! reopen, never with words made under the old ones.

use quiver_engine::config::Distance;
use quiver_engine::filter::Filter;
use quiver_engine::payload_schema::PayloadFieldSchema;
use quiver_engine::Collection;
use serde_json::{json, Value};

use crate::common::*;

const TEXTS: [&str; 8] = [
    "Apple pie",
    "apple tart",
    "APPLE",
    "applesauce and bread",
    "banana split",
    "an apple a day",
    "Application form",
    "pie",
];

/// Points `ids`, each with the text its id picks.
fn upsert(c: &Collection, ids: std::ops::Range<u64>) {
    let batch = ids
        .map(|i| {
            let text = TEXTS[i as usize % TEXTS.len()];
            dense(i, vec![1.0, i as f32], json!({"t": text}))
        })
        .collect();
    c.upsert(batch).unwrap();
}

fn text_index(c: &Collection, params: Value) {
    let schema: PayloadFieldSchema = serde_json::from_value(params).unwrap();
    c.create_payload_index("t", schema).unwrap();
}

/// The segments' id ranges: two sealed, one appendable.
const SEGMENTS: [std::ops::Range<u64>; 3] = [0..80, 80..160, 160..200];

/// Per segment, how many of its points match `query`, as the index (or the payload) answers.
fn counts(c: &Collection, query: &str) -> Vec<usize> {
    SEGMENTS
        .iter()
        .map(|ids| {
            let f: Filter = serde_json::from_value(json!({"must": [
                {"key": "t", "match": {"text": query}},
                {"has_id": ids.clone().collect::<Vec<_>>()},
            ]}))
            .unwrap();
            c.count(Some(&f)).unwrap()
        })
        .collect()
}

/// Per segment, how many of its points hold a text that `holds` passes.
fn expected(holds: impl Fn(&str) -> bool) -> Vec<usize> {
    SEGMENTS
        .iter()
        .map(|ids| {
            ids.clone()
                .filter(|&i| holds(TEXTS[i as usize % TEXTS.len()]))
                .count()
        })
        .collect()
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(' ')
}

/// The answers under each of the three params sets the test creates the index with.
fn assert_params_a(c: &Collection, when: &str) {
    let want = expected(|t| words(t).any(|w| w.to_lowercase() == "apple"));
    assert_eq!(counts(c, "apple"), want, "A (lowercase) {when}");
    assert_eq!(counts(c, "APPLE"), want, "A (lowercase) {when}");
}

fn assert_params_b(c: &Collection, when: &str) {
    let want = expected(|t| words(t).any(|w| w == "apple"));
    assert_eq!(counts(c, "apple"), want, "B (case kept) {when}");
    let want = expected(|t| words(t).any(|w| w == "APPLE"));
    assert_eq!(counts(c, "APPLE"), want, "B (case kept) {when}");
}

fn assert_params_c(c: &Collection, when: &str) {
    let want = expected(|t| words(t).any(|w| w.to_lowercase().starts_with("app")));
    assert_eq!(counts(c, "app"), want, "C (prefix) {when}");
    let want = expected(|t| words(t).any(|w| w.to_lowercase().starts_with("apple")));
    assert_eq!(counts(c, "Apple"), want, "C (prefix) {when}");
}

#[test]
fn text_index_created_again_with_other_params_answers_with_them_on_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        let c = create(&cs, "p", small_config(2, Distance::Dot, 1000, 100));
        text_index(
            &c,
            json!({"type": "text", "tokenizer": "word", "lowercase": true}),
        );
        upsert(&c, SEGMENTS[0].clone());
        c.flush().unwrap();
        upsert(&c, SEGMENTS[1].clone());
        c.flush().unwrap();
        upsert(&c, SEGMENTS[2].clone());
        assert_eq!(c.manifest().segments.len(), 2);
        assert_params_a(&c, "sealed with it");
        // The three sets of answers differ, so no set passes for another.
        assert_ne!(
            expected(|t| words(t).any(|w| w == "apple")),
            expected(|t| words(t).any(|w| w.to_lowercase() == "apple"))
        );

        c.delete_payload_index("t").unwrap();
        text_index(
            &c,
            json!({"type": "text", "tokenizer": "word", "lowercase": false}),
        );
        assert_params_b(&c, "created again");

        // Changed without a delete in between.
        text_index(
            &c,
            json!({"type": "text", "tokenizer": "prefix", "lowercase": true}),
        );
        assert_params_c(&c, "changed in place");

        c.delete_payload_index("t").unwrap();
        text_index(
            &c,
            json!({"type": "text", "tokenizer": "word", "lowercase": false}),
        );
        assert_params_b(&c, "back to B");
    }
    let cs = open(dir.path());
    let c = cs.get("p").unwrap();
    assert_params_b(&c, "after a reopen");
    // The appendable points sealed under B.
    c.flush().unwrap();
    assert_eq!(c.manifest().segments.len(), 3);
    assert_params_b(&c, "after sealing the rest");
    drop(c);
    drop(cs);
    let cs = open(dir.path());
    let c = cs.get("p").unwrap();
    assert_params_b(&c, "after a second reopen");
}
