//! The full-text and shape answers of field indexes equal the payload's answers, over generated
//! payloads: texts with stop words, stemmable words, Unicode and punctuation, arrays of strings,
//! nulls, missing fields and values of other types.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::file::{self, IndexBytes};
use super::tests::index_of;
use super::*;
use crate::payload_schema::TokenizerType;

/// Words and sentences in several scripts: the `multilingual` tokenizer cuts a whole text by its
/// script and language, so CJK sentences, Cyrillic and diacritics are mixed with Latin words.
const WORDS: [&str; 38] = [
    "the",
    "and",
    "of",
    "is",
    "The",
    "running",
    "runs",
    "run",
    "Runner",
    "cats",
    "cat",
    "CAT",
    "Grüße",
    "straße",
    "naïve",
    "café",
    "ÉCOLE",
    "東京",
    "don't",
    "e-mail",
    "x",
    "ab",
    "abc",
    "abcdef",
    "abcdefgh",
    "42",
    "4x4",
    "über",
    "Über",
    "run's",
    "これはテストです",
    "日本語のテキストです。",
    "今天是星期一",
    "我们在北京大学学习",
    "Ёлка",
    "Äpfel",
    "NAÏVE",
    "été",
];

fn sentence(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..7);
    let seps = [" ", "  ", ", ", "-", "\t", ". "];
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push_str(seps[rng.random_range(0..seps.len())]);
        }
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    s
}

/// A value at the field: mostly text, sometimes arrays, nulls, numbers or nothing.
fn value(rng: &mut StdRng) -> Option<Value> {
    Some(match rng.random_range(0..16) {
        0 => return None,
        1 => Value::Null,
        2 => json!(rng.random_range(0..100)),
        3 => json!([]),
        4 => json!([null]),
        5 => json!([sentence(rng), null, 7]),
        6 | 7 => json!([sentence(rng), sentence(rng)]),
        8 => json!([[sentence(rng)]]),
        9 => json!({"inner": sentence(rng)}),
        10 => json!(true),
        _ => json!(sentence(rng)),
    })
}

fn payloads(seed: u64, n: usize) -> Vec<Payload> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut p = Payload::new();
            if let Some(v) = value(&mut rng) {
                p.insert("k".into(), v);
            }
            p
        })
        .collect()
}

/// Every text-index parameter combination that changes the words.
fn param_sets() -> Vec<TextIndexParams> {
    let sets = [
        json!({}),
        json!({"tokenizer": "word"}),
        json!({"tokenizer": "whitespace"}),
        json!({"tokenizer": "multilingual"}),
        json!({"tokenizer": "multilingual", "ascii_folding": true, "stopwords": "english",
            "stemmer": {"type": "snowball", "language": "english"}, "min_token_len": 2}),
        json!({"ascii_folding": true, "lowercase": false}),
        json!({"tokenizer": "prefix"}),
        json!({"tokenizer": "prefix", "min_token_len": 2, "max_token_len": 4}),
        json!({"tokenizer": "prefix", "stopwords": "english", "stemmer":
            {"type": "snowball", "language": "english"}}),
        json!({"lowercase": false}),
        json!({"tokenizer": "whitespace", "lowercase": false}),
        json!({"min_token_len": 2, "max_token_len": 5}),
        json!({"stopwords": "english"}),
        json!({"stopwords": {"languages": ["english"], "custom": ["Cat", "run"]}}),
        json!({"stopwords": {"custom": ["Cat"]}, "lowercase": false}),
        json!({"stemmer": {"type": "snowball", "language": "english"}}),
        json!({"stemmer": {"type": "snowball", "language": "german"}, "lowercase": false}),
        json!({"stopwords": "english", "stemmer": {"type": "snowball", "language": "english"},
            "min_token_len": 3, "max_token_len": 6, "tokenizer": "whitespace"}),
    ];
    sets.into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

fn queries(rng: &mut StdRng, texts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![
        String::new(),
        "the".into(),
        "the of".into(),
        "run".into(),
        "ab".into(),
        "a".into(),
        "abcdefghij".into(),
        "RUNNING cats".into(),
        "grüße".into(),
        "don't".into(),
        "東京".into(),
        "テスト".into(),
        "星期".into(),
        "北京大学".into(),
        "apfel".into(),
        "naive".into(),
        "ete".into(),
    ];
    for _ in 0..25 {
        out.push(sentence(rng));
    }
    // Pieces of stored texts, so that phrases hit.
    for t in texts.iter().take(40) {
        let words: Vec<&str> = t.split(' ').collect();
        if words.len() >= 2 {
            let from = rng.random_range(0..words.len() - 1);
            let to = rng.random_range(from + 1..=words.len());
            out.push(words[from..to].join(" "));
        }
    }
    out
}

fn texts(payloads: &[Payload]) -> Vec<String> {
    let mut out = Vec::new();
    for p in payloads {
        for_each_scalar(p, "k", &mut |v| {
            if let Some(s) = v.as_str() {
                out.push(s.to_string());
            }
        });
    }
    out
}

#[test]
fn text_answers_equal_payload_answers_for_every_param_set() {
    let points = payloads(7, 400);
    let mut rng = StdRng::seed_from_u64(11);
    let queries = queries(&mut rng, &texts(&points));
    for params in param_sets() {
        let index = index_of(PayloadSchemaType::Text, &points, "k", Some(&params));
        let mut hits_total = [0usize; 3];
        for q in &queries {
            let conditions = [
                json!({"key": "k", "match": {"text": q}}),
                json!({"key": "k", "match": {"text_any": q}}),
                json!({"key": "k", "match": {"phrase": q}}),
            ];
            for (i, c) in conditions.into_iter().enumerate() {
                let c: FieldCondition = serde_json::from_value(c).unwrap();
                let hits = index
                    .answer(&c, Some(&params))
                    .unwrap_or_else(|| panic!("{params:?} answers {c:?}"));
                for (off, p) in points.iter().enumerate() {
                    assert_eq!(
                        hits.get(off),
                        c.matches_in(p, Some(&params)),
                        "{params:?}: {c:?} at {off}: {:?}",
                        p.get("k")
                    );
                }
                hits_total[i] += hits.count_ones();
            }
        }
        // The comparison means something: every mode passes some points.
        assert!(
            hits_total.iter().all(|&n| n > 0),
            "{params:?}: {hits_total:?}"
        );
        if params.tokenizer == Some(TokenizerType::Multilingual) {
            // A word inside a CJK sentence, and a Latin word without its diacritics, are found.
            for q in ["テスト", "星期", "北京大学", "apfel", "naive", "ete"] {
                let c = FieldCondition::matching("k", Match::Text { text: q.into() });
                let hits = index.answer(&c, Some(&params)).unwrap();
                assert!(hits.count_ones() > 0, "multilingual: nothing holds {q:?}");
            }
        }
        // Words made with other params are not used.
        let other: TextIndexParams = serde_json::from_value(json!({"min_token_len": 9})).unwrap();
        if params != other {
            let c = FieldCondition::matching("k", Match::Text { text: "cat".into() });
            assert!(index.answer(&c, Some(&other)).is_none());
        }
    }
}

#[test]
fn version_2_multilingual_words_are_not_used() {
    // Version 2 cut `multilingual` as `word`: those words would miss `テスト` inside a sentence.
    let mut points = payloads(5, 60);
    points[0].insert("k".into(), json!("これはテストです"));
    let multilingual: TextIndexParams =
        serde_json::from_value(json!({"tokenizer": "multilingual"})).unwrap();
    let word = TextIndexParams::default();
    let c = FieldCondition::matching(
        "k",
        Match::Text {
            text: "テスト".into(),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    for (params, version_2_answers) in [(&multilingual, false), (&word, true)] {
        let data = build::build_all(
            points.len(),
            &|off| points[off as usize].clone(),
            &[("k", PayloadSchemaType::Text, Some(params))],
        );
        let old = dir.path().join("v2.pidx");
        std::fs::write(&old, file::serialize_version_2(&data[0])).unwrap();
        let index = FieldIndex::new(IndexBytes::open(&old, PayloadSchemaType::Text, 60).unwrap());
        assert_eq!(index.words_made_with(Some(params)), version_2_answers);
        assert_eq!(index.answer(&c, Some(params)).is_some(), version_2_answers);

        let new = dir.path().join("v3.pidx");
        file::write(&new, &data[0]).unwrap();
        let index = FieldIndex::new(IndexBytes::open(&new, PayloadSchemaType::Text, 60).unwrap());
        assert!(index.words_made_with(Some(params)));
        let hits = index.answer(&c, Some(params)).unwrap();
        assert_eq!(hits.get(0), c.matches_in(&points[0], Some(params)));
        assert_eq!(hits.get(0), params == &multilingual);
    }
}

#[test]
fn text_index_reads_back_from_its_file_and_old_files_leave_text_to_payloads() {
    let points = payloads(3, 120);
    let params: TextIndexParams =
        serde_json::from_value(json!({"stopwords": "english", "tokenizer": "prefix"})).unwrap();
    let data = build::build_all(
        points.len(),
        &|off| points[off as usize].clone(),
        &[("k", PayloadSchemaType::Text, Some(&params))],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pidx");
    file::write(&path, &data[0]).unwrap();
    let index = FieldIndex::new(IndexBytes::open(&path, PayloadSchemaType::Text, 120).unwrap());
    assert!(index.words_made_with(Some(&params)));
    assert!(!index.words_made_with(None));
    let c = FieldCondition::matching(
        "k",
        Match::TextAny {
            text_any: "ca run".into(),
        },
    );
    let hits = index.answer(&c, Some(&params)).unwrap();
    assert!(hits.count_ones() > 0);
    for (off, p) in points.iter().enumerate() {
        assert_eq!(hits.get(off), c.matches_in(p, Some(&params)));
    }
    let empty = json!({"key": "k", "is_empty": true});
    let empty: FieldCondition = serde_json::from_value(empty).unwrap();
    assert!(index.answer(&empty, None).is_some());

    // A version 1 file (no words, no shapes) still opens, counts its points, and leaves these
    // conditions to the payloads.
    let old = dir.path().join("old.pidx");
    std::fs::write(&old, file::serialize_version_1(&data[0])).unwrap();
    let index = FieldIndex::new(IndexBytes::open(&old, PayloadSchemaType::Text, 120).unwrap());
    assert!(index.answer(&c, Some(&params)).is_none());
    assert!(index.answer(&empty, None).is_none());
    assert!(index.is_null().is_none());
    assert!(!index.words_made_with(Some(&params)));
    assert_eq!(
        index.live_points(&Bitmap::new(120)),
        (0..120)
            .filter(|&off| has_value(&points[off], "k", PayloadSchemaType::Text))
            .count()
    );
    // And a version 1 keyword file still answers its matches.
    let kw = build::build_all(
        points.len(),
        &|off| points[off as usize].clone(),
        &[("k", PayloadSchemaType::Keyword, None)],
    );
    std::fs::write(&old, file::serialize_version_1(&kw[0])).unwrap();
    let index = FieldIndex::new(IndexBytes::open(&old, PayloadSchemaType::Keyword, 120).unwrap());
    let m = FieldCondition::matching(
        "k",
        Match::Value {
            value: MatchValue::Keyword("cat".into()),
        },
    );
    let hits = index.answer(&m, None).unwrap();
    for (off, p) in points.iter().enumerate() {
        assert_eq!(hits.get(off), m.matches(p));
    }
}

#[test]
fn values_count_is_empty_and_is_null_answers_equal_payload_answers() {
    let mut points = payloads(5, 300);
    // Objects and nested paths too.
    for (i, p) in points.iter_mut().enumerate() {
        if i % 7 == 0 {
            p.insert("o".into(), json!({"k": p.get("k").cloned()}));
        }
    }
    let conditions: Vec<Value> = [
        json!({"values_count": {"gte": 2}}),
        json!({"values_count": {"lt": 1}}),
        json!({"values_count": {"gt": 0, "lte": 1}}),
        json!({"values_count": {"lte": 0}}),
        json!({"is_empty": true}),
        json!({"is_empty": false}),
        json!({"is_null": true}),
        json!({"is_null": false}),
    ]
    .into();
    for kind in [
        PayloadSchemaType::Text,
        PayloadSchemaType::Keyword,
        PayloadSchemaType::Integer,
        PayloadSchemaType::Geo,
    ] {
        for field in ["k", "o.k", "missing"] {
            let index = index_of(kind, &points, field, None);
            for test in &conditions {
                let mut c = test.clone();
                c["key"] = json!(field);
                let c: FieldCondition = serde_json::from_value(c).unwrap();
                let hits = index.answer(&c, None).expect("one value per point: exact");
                for (off, p) in points.iter().enumerate() {
                    assert_eq!(hits.get(off), c.matches(p), "{kind} {c:?} at {off}: {p:?}");
                }
            }
            let full = |c: Value| serde_json::from_value::<Condition>(c).unwrap();
            let empty = full(json!({"is_empty": {"key": field}}));
            let null = full(json!({"is_null": {"key": field}}));
            for (condition, hits) in [(empty, index.is_empty()), (null, index.is_null())] {
                let hits = hits.expect("exact");
                for (off, p) in points.iter().enumerate() {
                    let id = crate::PointId::Num(off as u64);
                    assert_eq!(
                        hits.get(off),
                        condition.matches(&id, p),
                        "{condition:?} {p:?}"
                    );
                }
            }
        }
    }
    // A condition with another test besides is left to the payload.
    let index = index_of(PayloadSchemaType::Keyword, &points, "k", None);
    let both: FieldCondition =
        serde_json::from_value(json!({"key": "k", "is_empty": true, "is_null": true})).unwrap();
    assert!(index.answer(&both, None).is_none());
    // A path reaching several values in one point leaves them to the payload.
    let many = vec![
        json!({"a": [{"b": 1}, {"b": null}]})
            .as_object()
            .unwrap()
            .clone(),
        json!({"a": {"b": [1, 2]}}).as_object().unwrap().clone(),
    ];
    let index = index_of(PayloadSchemaType::Integer, &many, "a.b", None);
    let c: FieldCondition =
        serde_json::from_value(json!({"key": "a.b", "values_count": {"gt": 1}})).unwrap();
    assert!(index.answer(&c, None).is_none());
    assert!(index.is_null().is_none());
}

#[test]
fn text_conditions_on_a_sealed_segment_with_a_text_index_read_no_payload() {
    use super::tests::test_collection;
    use crate::point::{NamedVectors, PointInsert, ScrollRequest, SearchRequest, Vector};
    use crate::PointId;
    use std::sync::atomic::Ordering;

    let dir = tempfile::tempdir().unwrap();
    let (_cs, c) = test_collection(dir.path());
    let points = payloads(9, 300);
    let inserts = points.iter().enumerate().map(|(i, p)| {
        let mut vectors = NamedVectors::new();
        vectors.insert(String::new(), Vector::Dense(vec![1.0, i as f32]));
        PointInsert {
            id: PointId::Num(i as u64),
            vectors,
            payload: Some(p.clone()),
        }
    });
    c.upsert(inserts.collect()).unwrap();
    let params = json!({"type": "text", "stopwords": "english",
        "stemmer": {"type": "snowball", "language": "english"}});
    c.create_payload_index("k", serde_json::from_value(params).unwrap())
        .unwrap();
    let filter = |c: Value| serde_json::from_value::<Filter>(json!({"must": [c]})).unwrap();
    let filters = [
        filter(json!({"key": "k", "match": {"text": "cats running"}})),
        filter(json!({"key": "k", "match": {"text_any": "café über"}})),
        filter(json!({"key": "k", "match": {"phrase": "run cat"}})),
        filter(json!({"key": "k", "values_count": {"gt": 1}})),
        filter(json!({"is_empty": {"key": "k"}})),
        filter(json!({"is_null": {"key": "k"}})),
        filter(json!({"key": "k", "is_null": false})),
    ];
    // Before the seal: read from the payloads.
    let before: Vec<usize> = filters.iter().map(|f| c.count(Some(f)).unwrap()).collect();
    c.flush().unwrap();
    let sealed = c.shared.snapshot().sealed.clone();
    assert_eq!(sealed.len(), 1);
    let reads = || sealed[0].payload_reads.load(Ordering::Relaxed);
    for (f, want) in filters.iter().zip(&before) {
        assert_eq!(c.count(Some(f)).unwrap(), *want, "{f:?}");
        assert_eq!(reads(), 0, "count {f:?}");
        let mut req = SearchRequest::dense(vec![1.0, 0.5], 1000);
        req.filter = Some(f.clone());
        assert_eq!(c.search(&req).unwrap().len(), *want, "{f:?}");
        assert_eq!(reads(), 0, "search {f:?}");
        let page = c
            .scroll(&ScrollRequest {
                filter: Some(f.clone()),
                offset: None,
                limit: 1000,
                with_payload: crate::point::WithPayload::None,
                with_vectors: crate::point::WithVectors::None,
            })
            .unwrap();
        assert_eq!(page.points.len(), *want, "{f:?}");
    }
    assert!(before.iter().all(|&n| n > 0), "{before:?}");
    assert_eq!(
        reads(),
        0,
        "no payload parsed for indexed text and shape conditions"
    );
    // A condition the index leaves to the payload does parse them (the counter counts).
    let unindexed = filter(json!({"key": "k", "match": {"except": ["x"]}}));
    c.count(Some(&unindexed)).unwrap();
    assert!(reads() > 0);
}
