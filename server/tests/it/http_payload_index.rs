//! Payload indexes: `PUT /collections/{c}/index`, `DELETE /collections/{c}/index/{field}`, the
//! `payload_schema` of the collection info (with live point counts), persistence across restarts and
//! snapshots, filters that give the same answers with and without an index, and clear 4xx errors.

use serde_json::{json, Value};

use crate::support::{Client, QuiverProcess, TestDir};

const N: u64 = 25;

/// The exact count of the points `filter` passes in collection `name`, and their first 100 records
/// scrolled without payloads.
fn count_and_scroll(c: &Client, name: &str, filter: &Value) -> (Value, Value) {
    let count = c.ok(
        "POST",
        &format!("/collections/{name}/points/count"),
        Some(&json!({"filter": filter, "exact": true})),
    )["count"]
        .clone();
    let scroll = c.ok(
        "POST",
        &format!("/collections/{name}/points/scroll"),
        Some(&json!({"filter": filter, "limit": 100, "with_payload": false})),
    )["points"]
        .clone();
    (count, scroll)
}

/// 25 points in segments of at most 10: two sealed segments and the appendable one.
fn fill(c: &Client, name: &str) {
    let body = json!({
        "vectors": {"size": 2, "distance": "Dot"},
        "optimizers_config": {"segment_max_points": 10}
    });
    c.ok("PUT", &format!("/collections/{name}"), Some(&body));
    let points: Vec<Value> = (0..N)
        .map(|i| {
            let payload = match i % 5 {
                0 => json!({"color": "red", "n": i}),
                1 => json!({"color": ["blue", "red"], "n": i as f64 + 0.5}),
                2 => json!({"color": 7, "n": "x"}),
                3 => json!({"meta": {"tags": ["a", "b"]}, "n": i, "color": ["green", "green"]}),
                _ => json!({}),
            };
            json!({"id": i, "vector": [1.0, i as f64 / N as f64], "payload": payload})
        })
        .collect();
    // Two full segments sealed (their log folded), then five points left in the appendable one; the
    // wait comes before the last upsert because the log of the appendable points is never folded.
    let (sealed, appendable) = points.split_at(20);
    for chunk in sealed.chunks(10) {
        c.upsert(name, json!(chunk));
    }
    c.wait_for_seals(name, 2);
    c.upsert(name, json!(appendable));
}

fn create(c: &Client, name: &str, body: Value) -> Value {
    c.ok(
        "PUT",
        &format!("/collections/{name}/index?wait=true"),
        Some(&body),
    )
}

fn schema(c: &Client, name: &str) -> Value {
    c.ok("GET", &format!("/collections/{name}"), None)["payload_schema"].clone()
}

#[test]
fn create_inspect_and_delete_payload_indexes() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    fill(&c, "pi");
    assert_eq!(schema(&c, "pi"), json!({}));

    let res = create(
        &c,
        "pi",
        json!({"field_name": "color", "field_schema": "keyword"}),
    );
    assert_eq!(res["status"], "completed", "{res}");
    assert!(res["operation_id"].is_u64(), "{res}");
    create(
        &c,
        "pi",
        json!({"field_name": "n", "field_schema": {"type": "integer", "range": false}}),
    );
    create(
        &c,
        "pi",
        json!({"field_name": "meta.tags[]", "field_type": "keyword"}),
    );
    create(
        &c,
        "pi",
        json!({"field_name": "n_float", "field_schema": "float"}),
    );
    // Strings count for a keyword index (an array counts once), numbers do not; integral numbers
    // count for an integer index, `i + 0.5` and strings do not.
    assert_eq!(
        schema(&c, "pi"),
        json!({
            "color": {"data_type": "keyword", "points": 15},
            "n": {"data_type": "integer", "params": {"type": "integer", "range": false}, "points": 10},
            "meta.tags[]": {"data_type": "keyword", "points": 5},
            "n_float": {"data_type": "float", "points": 0}
        })
    );

    // Counts follow deletes and payload changes, in sealed and appendable segments alike.
    c.ok(
        "POST",
        "/collections/pi/points/delete?wait=true",
        Some(&json!({"points": [0, 1, 24]})),
    );
    c.ok(
        "PUT",
        "/collections/pi/points/payload?wait=true",
        Some(&json!({"payload": {"color": "blue"}, "points": [4, 5]})),
    );
    c.ok(
        "POST",
        "/collections/pi/points/payload/delete?wait=true",
        Some(&json!({"keys": ["color"], "points": [3, 20]})),
    );
    let s = schema(&c, "pi");
    // color: 15 - {0, 1} - {3} - {20} + {4} = 12 (24 had none; 5 keeps one).
    assert_eq!(s["color"]["points"], 12, "{s}");
    // n: ids 0,3,5,...,23 minus 0 (deleted) and 4/5 lost theirs to the overwrite.
    assert_eq!(s["n"]["points"], 8, "{s}");
    assert_eq!(s["meta.tags[]"]["points"], 5, "{s}");

    // Replacing an index changes its type; deleting it is idempotent.
    create(
        &c,
        "pi",
        json!({"field_name": "color", "field_schema": {"type": "keyword", "is_tenant": true}}),
    );
    assert_eq!(
        schema(&c, "pi")["color"],
        json!({"data_type": "keyword", "params": {"type": "keyword", "is_tenant": true}, "points": 12})
    );
    for _ in 0..2 {
        let res = c.ok("DELETE", "/collections/pi/index/color?wait=true", None);
        assert_eq!(res["status"], "completed", "{res}");
    }
    let res = c.ok("DELETE", "/collections/pi/index/meta.tags%5B%5D", None);
    assert_eq!(res["status"], "completed", "{res}");
    let s = schema(&c, "pi");
    assert_eq!(
        s.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["n", "n_float"],
        "{s}"
    );
}

#[test]
fn payload_indexes_survive_a_restart_and_a_snapshot() {
    let dir = TestDir::new();
    let snapshot = {
        let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
        let c = server.client();
        fill(&c, "kept");
        create(
            &c,
            "kept",
            json!({"field_name": "color", "field_schema": "keyword"}),
        );
        create(
            &c,
            "kept",
            json!({"field_name": "n", "field_schema": {"type": "integer", "is_principal": true}}),
        );
        let created = c.ok("POST", "/collections/kept/snapshots?wait=true", None);
        let name = created["name"].as_str().unwrap().to_string();
        let (status, _, archive) = c.download(&format!("/collections/kept/snapshots/{name}"));
        assert_eq!(status, 200);
        // Changed after the snapshot: the restored copy has the schema of its point in time.
        c.ok("DELETE", "/collections/kept/index/n", None);
        assert!(server.terminate().success());
        archive
    };
    let want = json!({"color": {"data_type": "keyword", "points": 15}});
    let config = std::fs::read_to_string(dir.path().join("collections/kept/config.json")).unwrap();
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["payload_schema"],
        json!({"color": "keyword"}),
        "{config}"
    );

    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    assert_eq!(schema(&c, "kept"), want);
    let (status, body) = c.upload(
        "/collections/copy/snapshots/upload?wait=true",
        "snapshot",
        &snapshot,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        schema(&c, "copy"),
        json!({
            "color": {"data_type": "keyword", "points": 15},
            "n": {"data_type": "integer", "params": {"type": "integer", "is_principal": true}, "points": 10}
        })
    );
    // The restored collection's schema is its own.
    c.ok("DELETE", "/collections/copy/index/color", None);
    assert_eq!(schema(&c, "kept"), want);
}

#[test]
fn filters_answer_the_same_with_and_without_indexes() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    fill(&c, "f");
    // A payload change moves a sealed point into the appendable segment; the sealed copy is dead.
    c.ok(
        "POST",
        "/collections/f/points/payload?wait=true",
        Some(&json!({"payload": {"color": "red"}, "points": [2, 13]})),
    );
    let red = json!({"key": "color", "match": {"value": "red"}});
    let filters = [
        json!({"must": [red]}),
        json!({"must_not": [red]}),
        json!({"should": [{"key": "color", "match": {"any": ["blue", "green"]}}, {"has_id": [4]}]}),
        json!({"must": [{"key": "color", "match": {"value": 7}}]}),
        json!({"must": [{"key": "color", "match": {"except": ["red"]}}]}),
        json!({"must": [{"key": "n", "match": {"value": 10}}]}),
        json!({"must": [{"key": "n", "match": {"any": [5, 15, 16]}}, red]}),
        json!({"must": [{"key": "n", "match": {"value": 6}}]}),
        json!({"must": [{"key": "n", "match": {"value": 11}, "range": {"gte": 20}}]}),
        json!({"must": [{"must_not": [red]}, {"key": "meta.tags[]", "match": {"value": "a"}}]}),
        json!({"must": [{"key": "color", "match": {"value": "purple"}}]}),
        json!({"must": [{"is_empty": {"key": "color"}}], "must_not": [{"key": "n", "match": {"any": [3, 8]}}]}),
        // Conditions no index answers, and a `match` ORed with another test, which the index must
        // not answer alone.
        json!({"must": [{"key": "color", "values_count": {"gte": 2}}]}),
        json!({"must": [{"key": "color", "match": {"value": "red"}, "values_count": {"gte": 2}}]}),
        json!({"min_should": {"conditions": [red, {"key": "n", "match": {"any": [10, 11]}}, {"has_id": [1, 11, 21]}], "min_count": 2}}),
        json!({"must": [{"key": "color", "is_empty": false}, {"key": "n", "match": {"text": "x"}}]}),
        json!({"must": [{"has_vector": ""}], "must_not": [{"key": "meta.tags", "values_count": {"gt": 1}}]}),
    ];
    let answers = |c: &Client| -> Vec<(Value, Value, Value)> {
        filters
            .iter()
            .map(|f| {
                let count = c.ok(
                    "POST",
                    "/collections/f/points/count",
                    Some(&json!({"filter": f, "exact": true})),
                );
                let scroll = c.ok(
                    "POST",
                    "/collections/f/points/scroll",
                    Some(&json!({"filter": f, "limit": 100, "with_payload": false})),
                )["points"]
                    .clone();
                let search = c.ok(
                    "POST",
                    "/collections/f/points/search",
                    Some(&json!({"vector": [1.0, 1.0], "filter": f, "limit": 100})),
                );
                let ids: Vec<Value> = search
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["id"].clone())
                    .collect();
                (count, scroll, json!(ids))
            })
            .collect()
    };
    let before = answers(&c);
    // The filters are not vacuous: some pass nothing, some pass a few, some many.
    let counts: Vec<u64> = before
        .iter()
        .map(|(n, _, _)| n["count"].as_u64().unwrap())
        .collect();
    assert!(
        counts.contains(&0) && counts.iter().any(|&n| n > 10),
        "{counts:?}"
    );
    for (field, schema) in [
        ("color", "keyword"),
        ("n", "integer"),
        ("meta.tags[]", "keyword"),
    ] {
        create(
            &c,
            "f",
            json!({"field_name": field, "field_schema": schema}),
        );
    }
    assert_eq!(answers(&c), before);
    // Deletes after the indexes were built are seen through them.
    c.ok(
        "POST",
        "/collections/f/points/delete?wait=true",
        Some(&json!({"points": [5, 10, 13]})),
    );
    let after_delete = answers(&c);
    for field in ["color", "n", "meta.tags%5B%5D"] {
        c.ok("DELETE", &format!("/collections/f/index/{field}"), None);
    }
    assert_eq!(answers(&c), after_delete);
    assert_ne!(after_delete, before);
}

#[test]
fn payload_index_errors_are_clear_4xx() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("e", 2, "Dot");
    let cases = [
        (
            json!({"field_name": "a", "field_schema": "vector"}),
            400,
            "unknown field_schema type `vector`",
        ),
        (
            json!({"field_name": "a", "field_schema": {"type": "blob"}}),
            400,
            "`blob`",
        ),
        (
            json!({"field_name": "a", "field_schema": {"on_disk": true}}),
            400,
            "needs a `type`",
        ),
        (
            json!({"field_name": "a", "field_schema": {"type": "keyword", "lookup": true}}),
            400,
            "lookup",
        ),
        (json!({"field_schema": "keyword"}), 400, "field_name"),
        (json!({"field_name": "a"}), 400, "field_schema"),
        (
            json!({"field_name": "", "field_schema": "keyword"}),
            400,
            "field_name",
        ),
        (
            json!({"field_name": "a..b", "field_schema": "keyword"}),
            400,
            "a..b",
        ),
        (
            json!({"field_name": "a", "field_schema": "keyword", "extra": 1}),
            400,
            "extra",
        ),
        (
            json!({"field_name": "a", "field_schema": {"type": "integer", "lookup": false, "range": false}}),
            422,
            "lookup",
        ),
    ];
    for (body, status, needle) in cases {
        let msg = c.err("PUT", "/collections/e/index", Some(&body), status);
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    assert_eq!(schema(&c, "e"), json!({}));
    let body = json!({"field_name": "a", "field_schema": "keyword"});
    let msg = c.err("PUT", "/collections/missing/index", Some(&body), 404);
    assert!(msg.contains("missing"), "{msg}");
    let msg = c.err("DELETE", "/collections/missing/index/a", None, 404);
    assert!(msg.contains("missing"), "{msg}");
    c.err("GET", "/collections/e/index", None, 405);
}

/// Full-text conditions and `values_count` / `is_empty` / `is_null` answer alike from the appendable
/// segment's in-memory index and from the index files of sealed segments, whether the index existed
/// when the segments were sealed or was created over them afterwards.
#[test]
fn text_and_shape_conditions_answer_the_same_before_and_after_a_seal() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let texts = [
        json!("The cats are running home"),
        json!("A cat runs; the runner ran"),
        json!(["Grüße aus Köln", "café au lait"]),
        json!("don't stop the music"),
        json!(null),
        json!([]),
        json!([null, "cat"]),
        json!(42),
        json!("Running cats, running dogs"),
        json!(["running", "cats"]),
    ];
    let points: Vec<Value> = (0..40u64)
        .map(|i| {
            let mut payload = json!({"n": i});
            if i % 11 != 3 {
                payload["t"] = texts[(i as usize * 7) % texts.len()].clone();
            }
            json!({"id": i, "vector": [1.0, i as f64 / 40.0], "payload": payload})
        })
        .collect();
    let index = json!({"field_name": "t", "field_schema": {"type": "text",
        "stopwords": "english", "stemmer": {"type": "snowball", "language": "english"}}});
    let setup = |name: &str, max_points: u64| {
        c.ok(
            "PUT",
            &format!("/collections/{name}"),
            Some(&json!({"vectors": {"size": 2, "distance": "Dot"},
                "optimizers_config": {"segment_max_points": max_points}})),
        );
    };
    // Appendable only: every answer from its in-memory index, made with the index's params.
    setup("payloads", 100_000);
    create(&c, "payloads", index.clone());
    c.upsert("payloads", json!(points));
    // Sealed with the index in the schema: its files written at the seal.
    setup("sealed", 10);
    create(&c, "sealed", index.clone());
    for chunk in points.chunks(10) {
        c.upsert("sealed", json!(chunk));
    }
    c.wait_for_seals("sealed", 3);
    // Sealed first, the index created over the sealed segments.
    setup("later", 10);
    for chunk in points.chunks(10) {
        c.upsert("later", json!(chunk));
    }
    c.wait_for_seals("later", 3);
    create(&c, "later", index);

    let t = |m: Value| json!({"must": [{"key": "t", "match": m}]});
    let filters = [
        t(json!({"text": "cat running"})),
        t(json!({"text": "the cats"})),
        t(json!({"text_any": "dogs café"})),
        t(json!({"text_any": "the"})),
        t(json!({"phrase": "cats running"})),
        t(json!({"phrase": "running cats"})),
        t(json!({"phrase": "GRÜSSE aus"})),
        t(json!({"text": "grüße"})),
        json!({"must": [{"key": "t", "values_count": {"gte": 2}}]}),
        json!({"must": [{"key": "t", "values_count": {"lt": 1}}]}),
        json!({"must": [{"key": "t", "is_empty": true}]}),
        json!({"must": [{"key": "t", "is_null": true}]}),
        json!({"must": [{"is_empty": {"key": "t"}}]}),
        json!({"must": [{"is_null": {"key": "t"}}]}),
        json!({"must_not": [{"is_null": {"key": "t"}}], "must": [{"key": "t", "match": {"text": "music"}}]}),
    ];
    let answers = |name: &str| -> Vec<(Value, Value)> {
        filters
            .iter()
            .map(|f| count_and_scroll(&c, name, f))
            .collect()
    };
    let want = answers("payloads");
    let counts: Vec<u64> = want.iter().map(|(n, _)| n.as_u64().unwrap()).collect();
    assert!(
        counts.iter().filter(|&&n| n > 0).count() >= 10,
        "{counts:?}"
    );
    assert_eq!(answers("sealed"), want);
    assert_eq!(answers("later"), want);
}

/// A `multilingual` text index finds a word inside a Japanese or Chinese sentence and a Latin word
/// written with or without its diacritics, from the payloads (appendable segment) and from the
/// index files of sealed segments alike.
#[test]
fn multilingual_text_index_finds_cjk_words_and_folded_latin() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let texts = [
        "これはテストです",
        "日本語のテキストです。コードで使用されています。",
        "我们在北京大学学习自然语言处理",
        "今天是星期一",
        "Straße über Äpfel, naïve café",
        "L'été dernier à Paris",
        "Plain english words only",
        "Ёлка стоит в лесу",
    ];
    let points: Vec<Value> = (0..40u64)
        .map(|i| {
            let payload = json!({"t": texts[i as usize % texts.len()]});
            json!({"id": i, "vector": [1.0, i as f64 / 40.0], "payload": payload})
        })
        .collect();
    let index =
        json!({"field_name": "t", "field_schema": {"type": "text", "tokenizer": "multilingual"}});
    for (name, max_points) in [("payloads", 100_000u64), ("sealed", 10)] {
        c.ok(
            "PUT",
            &format!("/collections/{name}"),
            Some(&json!({"vectors": {"size": 2, "distance": "Dot"},
                "optimizers_config": {"segment_max_points": max_points}})),
        );
        create(&c, name, index.clone());
        for chunk in points.chunks(10) {
            c.upsert(name, json!(chunk));
        }
    }
    c.wait_for_seals("sealed", 3);

    let found = |name: &str, m: Value| -> Vec<u64> {
        let filter = json!({"must": [{"key": "t", "match": m}]});
        let hits = c.ok(
            "POST",
            &format!("/collections/{name}/points/scroll"),
            Some(&json!({"filter": filter, "limit": 100, "with_payload": false})),
        )["points"]
            .clone();
        let mut ids: Vec<u64> = hits
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };
    let of_text = |t: usize| -> Vec<u64> { (0..40).filter(|i| i % 8 == t as u64).collect() };
    for (m, text) in [
        (json!({"text": "テスト"}), Some(0)),
        (json!({"text": "コード"}), Some(1)),
        (json!({"text": "北京大学"}), Some(2)),
        (json!({"text": "星期"}), Some(3)),
        (json!({"text": "apfel"}), Some(4)),
        (json!({"text": "ÄPFEL uber"}), Some(4)),
        (json!({"phrase": "naive cafe"}), Some(4)),
        (json!({"text": "ete"}), Some(5)),
        (json!({"text_any": "été nothing"}), Some(5)),
        // charabia keeps ß and the Cyrillic ё.
        (json!({"text": "strasse"}), None),
        (json!({"text": "ёлка"}), Some(7)),
        // Digits alone are no words.
        (json!({"text": "42"}), None),
    ] {
        let want = text.map(of_text).unwrap_or_default();
        assert_eq!(found("payloads", m.clone()), want, "payloads: {m}");
        assert_eq!(found("sealed", m.clone()), want, "sealed: {m}");
    }
}

/// The appendable segment's in-memory indexes, of every type, answer as the payloads of an unindexed
/// collection do through upserts and every payload change, and the same again once the segment is
/// sealed into one with index files.
#[test]
fn indexed_appendable_segment_answers_like_payloads_before_and_after_a_seal() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let colors = ["red", "green", "blue"];
    let words = [
        "the cats",
        "running home",
        "a cat runs",
        "café über",
        "cats running fast",
    ];
    let uuids = [
        "6f1e2b9c-5d3a-4c1e-9f7b-2a8d4e6c1b3a",
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    ];
    let points: Vec<Value> = (0..60u64)
        .map(|i| {
            let kw = match i % 7 {
                0 => json!([colors[(i % 3) as usize], "blue"]),
                1 => json!(null),
                2 => json!(5),
                _ => json!(colors[(i % 3) as usize]),
            };
            let payload = json!({
                "kw": kw,
                "n": if i % 9 == 4 { json!([i, i + 1]) } else { json!(i % 20) },
                "f": (i as f64) * 1.5 - 30.0,
                "b": i % 4 == 0,
                "t": format!("2024-01-{:02}T10:00:00Z", i % 28 + 1),
                "u": if i % 5 == 0 { json!("not-a-uuid") } else { json!(uuids[(i % 2) as usize]) },
                "g": {"lon": (i % 10) as f64 - 5.0, "lat": 45.0 + (i % 11) as f64},
                "s": words[(i % 5) as usize],
                "late": colors[(i % 2) as usize],
            });
            json!({"id": i, "vector": [1.0, i as f64 / 60.0], "payload": payload})
        })
        .collect();
    let indexes = [
        ("kw", json!("keyword")),
        ("n", json!("integer")),
        ("f", json!("float")),
        ("b", json!("bool")),
        ("t", json!("datetime")),
        ("u", json!("uuid")),
        ("g", json!("geo")),
        (
            "s",
            json!({"type": "text", "stemmer": {"type": "snowball", "language": "english"}}),
        ),
    ];
    for name in ["plain", "idx"] {
        c.ok(
            "PUT",
            &format!("/collections/{name}"),
            Some(&json!({"vectors": {"size": 2, "distance": "Dot"},
                "optimizers_config": {"segment_max_points": 100_000}})),
        );
    }
    for (field, schema) in &indexes {
        create(
            &c,
            "idx",
            json!({"field_name": field, "field_schema": schema}),
        );
    }
    let changes = [
        (
            "POST",
            "/points/payload",
            json!({"payload": {"kw": "green", "n": 3}, "points": [1, 2, 3, 10]}),
        ),
        (
            "PUT",
            "/points/payload",
            json!({"payload": {"kw": "red", "s": "the cat"}, "points": [4, 11]}),
        ),
        (
            "POST",
            "/points/payload/delete",
            json!({"keys": ["kw", "g", "s"], "points": [5, 12, 20]}),
        ),
        ("POST", "/points/payload/clear", json!({"points": [6, 13]})),
        ("POST", "/points/delete", json!({"points": [7, 14, 21]})),
    ];
    for name in ["plain", "idx"] {
        c.upsert(name, json!(points));
        // Overwritten by a second upsert.
        c.upsert(name, json!(points[30..40]));
        for (method, path, body) in &changes {
            c.ok(
                method,
                &format!("/collections/{name}{path}?wait=true"),
                Some(body),
            );
        }
    }
    // Created over points already in the appendable segment.
    create(
        &c,
        "idx",
        json!({"field_name": "late", "field_schema": "keyword"}),
    );

    let m = |key: &str, v: Value| json!({"must": [{"key": key, "match": {"value": v}}]});
    let r = |key: &str, v: Value| json!({"must": [{"key": key, "range": v}]});
    let filters = [
        m("kw", json!("red")),
        json!({"must": [{"key": "kw", "match": {"any": ["green", "blue"]}}]}),
        json!({"must": [{"key": "kw", "match": {"except": ["red"]}}]}),
        m("n", json!(3)),
        r("n", json!({"gte": 5, "lt": 12})),
        r("f", json!({"gt": 0.5})),
        m("b", json!(true)),
        r(
            "t",
            json!({"gte": "2024-01-10", "lt": "2024-01-20T00:00:00Z"}),
        ),
        m("u", json!("f47ac10b-58cc-4372-a567-0e02b2c3d479")),
        json!({"must": [{"key": "g", "geo_radius": {"center": {"lon": 0.0, "lat": 50.0},
            "radius": 300_000.0}}]}),
        json!({"must": [{"key": "g", "geo_bounding_box": {"top_left": {"lon": -3.0, "lat": 53.0},
            "bottom_right": {"lon": 3.0, "lat": 44.0}}}]}),
        json!({"must": [{"key": "s", "match": {"text": "cat running"}}]}),
        json!({"must": [{"key": "s", "match": {"phrase": "the cat"}}]}),
        json!({"must": [{"key": "kw", "values_count": {"gte": 2}}]}),
        json!({"must": [{"is_empty": {"key": "kw"}}]}),
        json!({"must": [{"is_null": {"key": "kw"}}]}),
        m("late", json!("green")),
        json!({"should": [m("b", json!(true)), m("kw", json!("blue"))],
            "must_not": [{"key": "s", "match": {"text": "home"}}]}),
    ];
    let answers = |name: &str| -> Vec<Value> {
        let mut out: Vec<Value> = filters
            .iter()
            .map(|f| {
                let (count, scroll) = count_and_scroll(&c, name, f);
                let search = c.ok(
                    "POST",
                    &format!("/collections/{name}/points/search"),
                    Some(&json!({"vector": [1.0, 1.0], "filter": f, "limit": 100})),
                );
                let ids: Vec<Value> = search
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["id"].clone())
                    .collect();
                json!([count, scroll, ids])
            })
            .collect();
        if name != "plain" {
            out.push(c.ok(
                "POST",
                &format!("/collections/{name}/facet"),
                Some(&json!({"key": "kw", "filter": m("b", json!(false))})),
            ));
        }
        out
    };
    let want = answers("plain");
    let counts: Vec<u64> = want.iter().map(|a| a[0].as_u64().unwrap()).collect();
    assert!(
        counts.iter().filter(|&&n| n > 0).count() >= 15,
        "{counts:?}"
    );
    let before = answers("idx");
    for ((f, got), want) in filters.iter().zip(&before).zip(&want) {
        // Without a text index a `text` match compares substrings: those answers are compared with
        // the sealed segment's index file below.
        let text = ["\"text\"", "\"phrase\""]
            .iter()
            .any(|t| f.to_string().contains(t));
        if !text {
            assert_eq!(got, want, "{f}");
        }
    }
    let points_before = schema(&c, "idx");
    assert_eq!(
        c.ok("GET", "/collections/idx", None)["segments_count"],
        1,
        "everything in the appendable segment"
    );

    c.ok(
        "PATCH",
        "/collections/idx",
        Some(&json!({"optimizers_config": {"segment_max_points": 10}})),
    );
    c.wait_for_seals("idx", 2);
    assert_eq!(answers("idx"), before);
    assert_eq!(schema(&c, "idx"), points_before);
}
