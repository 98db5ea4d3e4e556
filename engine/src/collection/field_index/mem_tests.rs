//! The appendable segment's payload indexes answer every condition a sealed index answers, and
//! exactly as the payloads do, through appends, payload changes in place, point deletes, a reopen
//! (WAL replay), an index created over existing points and one deleted; and a filter they answer
//! whole reads no payload of the appendable segment in count, scroll, search and facet.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::tests::{index_of, test_collection, test_options};
use super::*;
use crate::collection::segment::MemSegment;
use crate::collection::{Collection, Collections};
use crate::config::{CollectionConfig, Distance};
use crate::point::{
    NamedVectors, PayloadOp, PointInsert, PointsSelector, ScrollRequest, SearchRequest, Vector,
    WithPayload, WithVectors,
};
use crate::query::FacetRequest;
use crate::PointId;

const UUIDS: [&str; 3] = [
    "6f1e2b9c-5d3a-4c1e-9f7b-2a8d4e6c1b3a",
    "0b7a6c5d-4e3f-4a2b-8c1d-9e8f7a6b5c4d",
    "f47ac10b-58cc-4372-a567-0e02b2c3d479",
];

const WORDS: [&str; 10] = [
    "the", "cats", "cat", "running", "run", "café", "über", "Über", "home", "don't",
];

/// A payload with a value at every indexed field, sometimes missing, null, an array or of another
/// type. `awkward` adds what an index must leave to the payloads: a non-integral number at the integer
/// field, datetimes finer than a microsecond, a path reaching several values.
fn payload(rng: &mut StdRng, awkward: bool) -> Payload {
    let colors = ["red", "green", "blue"];
    let mut p = Payload::new();
    let mut put = |k: &str, v: Value| {
        p.insert(k.into(), v);
    };
    match rng.random_range(0..9) {
        0 => {}
        1 => put("kw", json!(null)),
        2 => put("kw", json!([colors[rng.random_range(0..3)], "blue"])),
        3 => put("kw", json!(5)),
        4 => put("kw", json!([])),
        _ => put("kw", json!(colors[rng.random_range(0..3)])),
    }
    let n: i64 = rng.random_range(-5..30);
    match rng.random_range(0..8) {
        0 => {}
        1 => put("n", json!([n, n + 1])),
        2 => put("n", json!(n as f64)),
        3 if awkward => put("n", json!(n as f64 + 0.5)),
        _ => put("n", json!(n)),
    }
    put("f", json!(rng.random_range(-50.0f64..50.0)));
    if rng.random_bool(0.8) {
        put("b", json!(rng.random_bool(0.4)));
    }
    let day = rng.random_range(1..28);
    match rng.random_range(0..5) {
        0 => put("t", json!(format!("2024-01-{day:02}"))),
        1 => put("t", json!("soon")),
        2 if awkward => put("t", json!(format!("2024-01-{day:02}T10:00:00.1234567Z"))),
        _ => put("t", json!(format!("2024-01-{day:02}T10:15:00.25Z"))),
    }
    match rng.random_range(0..5) {
        0 => put("u", json!("not-a-uuid")),
        1 => put("u", json!(UUIDS[rng.random_range(0..3)].to_uppercase())),
        _ => put("u", json!(UUIDS[rng.random_range(0..3)])),
    }
    let (lon, lat) = (rng.random_range(-10.0..10.0), rng.random_range(40.0..60.0));
    match rng.random_range(0..5) {
        0 => {}
        1 => put(
            "g",
            json!([{"lon": lon, "lat": lat}, {"lon": 0.0, "lat": 50.0}]),
        ),
        _ => put("g", json!({"lon": lon, "lat": lat})),
    }
    let text = match rng.random_range(0..6) {
        0 => None,
        1 => Some(json!([sentence(rng), sentence(rng)])),
        _ => Some(json!(sentence(rng))),
    };
    if let Some(text) = text {
        put("s", text);
    }
    put("nested", json!({"x": rng.random_range(0..5)}));
    if awkward {
        put(
            "arr",
            json!([{"y": colors[rng.random_range(0..3)]}, {"y": "z"}]),
        );
    }
    p
}

fn sentence(rng: &mut StdRng) -> String {
    let n = rng.random_range(1..5);
    (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn schema() -> PayloadSchema {
    serde_json::from_value(json!({
        "kw": "keyword", "n": "integer", "f": "float", "b": "bool", "t": "datetime", "u": "uuid",
        "g": "geo", "nested.x": "integer", "arr[].y": "keyword",
        "s": {"type": "text", "stopwords": "english",
            "stemmer": {"type": "snowball", "language": "english"}},
    }))
    .unwrap()
}

/// Every condition type on every field, and whether the index answers it whole when the payloads
/// are not awkward.
fn conditions() -> Vec<(Value, bool)> {
    let m = |key: &str, v: Value| json!({"key": key, "match": {"value": v}});
    let r = |key: &str, range: Value| json!({"key": key, "range": range});
    vec![
        (m("kw", json!("red")), true),
        (
            json!({"key": "kw", "match": {"any": ["red", "green"]}}),
            true,
        ),
        (json!({"key": "kw", "match": {"except": ["red"]}}), false),
        (m("kw", json!(5)), false),
        (json!({"key": "kw", "values_count": {"gte": 2}}), true),
        (json!({"key": "kw", "is_empty": true}), true),
        (json!({"key": "kw", "is_null": true}), true),
        (json!({"key": "kw", "is_null": false}), true),
        (m("n", json!(7)), true),
        (json!({"key": "n", "match": {"any": [1, 2, 3]}}), true),
        (r("n", json!({"gte": 10, "lt": 20})), true),
        (r("n", json!({"gt": 2.5})), true),
        (r("n", json!({"lte": 0})), true),
        // Open and closed bounds at both ends, on values the points hold, and a range holding none.
        (r("n", json!({"gt": 10, "lte": 20})), true),
        (r("n", json!({"gte": 3, "lte": 3})), true),
        (r("n", json!({"gt": 3, "lt": 8})), true),
        (r("n", json!({"gt": 20, "lt": 10})), true),
        (r("n", json!({"gte": 29.5})), true),
        (
            r(
                "t",
                json!({"gt": "2024-01-10", "lte": "2024-01-20T00:00:00Z"}),
            ),
            true,
        ),
        (r("f", json!({"gt": -10.5, "lte": 0})), true),
        (json!({"key": "n", "values_count": {"lt": 2}}), true),
        (r("f", json!({"gte": -10.5, "lt": 40})), true),
        (r("f", json!({"gt": 0})), true),
        (m("b", json!(true)), true),
        (m("b", json!(false)), true),
        (json!({"key": "b", "is_empty": false}), true),
        (
            r(
                "t",
                json!({"gte": "2024-01-10T00:00:00Z", "lt": "2024-01-20"}),
            ),
            true,
        ),
        (r("t", json!({"lte": "2024-01-15 12:00"})), true),
        (r("t", json!({"gt": "2024-01-05T00:00:00.1234567Z"})), false),
        (m("u", json!(UUIDS[1])), true),
        (m("u", json!(UUIDS[2].to_uppercase())), true),
        (m("u", json!("not-a-uuid")), false),
        (
            json!({"key": "g", "geo_radius": {"center": {"lon": 0.0, "lat": 50.0},
                "radius": 400_000.0}}),
            true,
        ),
        (
            json!({"key": "g", "geo_bounding_box": {"top_left": {"lon": -5.0, "lat": 55.0},
                "bottom_right": {"lon": 5.0, "lat": 45.0}}}),
            true,
        ),
        (
            json!({"key": "g", "geo_polygon": {"exterior": {"points": [
                {"lon": -8.0, "lat": 42.0}, {"lon": 8.0, "lat": 42.0}, {"lon": 0.0, "lat": 58.0},
                {"lon": -8.0, "lat": 42.0}]}}}),
            true,
        ),
        (json!({"key": "s", "match": {"text": "cats running"}}), true),
        (
            json!({"key": "s", "match": {"text_any": "café über"}}),
            true,
        ),
        (json!({"key": "s", "match": {"phrase": "run cat"}}), true),
        (json!({"key": "s", "values_count": {"gt": 1}}), true),
        (m("nested.x", json!(3)), true),
        (r("nested.x", json!({"gte": 2})), true),
        (m("arr[].y", json!("red")), true),
        (json!({"key": "arr[].y", "is_empty": true}), false),
    ]
}

/// The indexed fields a condition may name, and the `is_empty` / `is_null` conditions on them.
fn emptiness() -> Vec<Value> {
    ["kw", "b", "g", "s", "nested.x"]
        .iter()
        .flat_map(|k| {
            [
                json!({"is_empty": {"key": k}}),
                json!({"is_null": {"key": k}}),
            ]
        })
        .collect()
}

/// A random payload change: a merge, a merge under a nested key, an overwrite, keys deleted, or all
/// of them.
fn payload_op(rng: &mut StdRng, awkward: bool) -> PayloadOp {
    let fresh = payload(rng, awkward);
    let some: Payload = fresh.into_iter().filter(|_| rng.random_bool(0.4)).collect();
    match rng.random_range(0..6) {
        0 | 1 => PayloadOp::Set {
            payload: some,
            key: None,
        },
        2 => PayloadOp::Set {
            payload: json!({"x": rng.random_range(0..5)})
                .as_object()
                .unwrap()
                .clone(),
            key: Some("nested".into()),
        },
        3 => PayloadOp::Overwrite(payload(rng, awkward)),
        4 => PayloadOp::DeleteKeys(
            ["kw", "n", "s", "g", "nested.x", "b", "arr"]
                .into_iter()
                .filter(|_| rng.random_bool(0.4))
                .map(String::from)
                .collect(),
        ),
        _ => PayloadOp::Clear,
    }
}

/// The appendable segment's index of every field answers each condition as an index built afresh
/// from the same payloads does, and as the payloads do.
fn assert_segment_answers(seg: &MemSegment, schema: &PayloadSchema, when: &str) -> usize {
    let data = seg.data.read();
    let mut answered = 0;
    for (c, _) in conditions() {
        let c: FieldCondition = serde_json::from_value(c).unwrap();
        let kind = schema[&c.key].data_type();
        let text = text_params(schema, &c.key);
        let mem = data.field_indexes.get(&c.key, kind).expect("indexed");
        let fresh = index_of(kind, &data.payloads, &c.key, text.as_ref());
        let hits = mem.answer(&c, text.as_ref());
        assert_eq!(
            hits,
            fresh.answer(&c, text.as_ref()),
            "{when}: {c:?} as a fresh build"
        );
        let Some(hits) = hits else { continue };
        answered += 1;
        assert_eq!(hits.len(), data.payloads.len());
        for (off, p) in data.payloads.iter().enumerate() {
            assert_eq!(
                hits.get(off),
                c.matches_in(p, text.as_ref()),
                "{when}: {c:?} at {off}: {p:?}"
            );
        }
    }
    for c in emptiness() {
        let c: Condition = serde_json::from_value(c).unwrap();
        let (key, hits) = match &c {
            Condition::IsEmpty(e) => (&e.is_empty.key, None),
            Condition::IsNull(n) => (&n.is_null.key, Some(())),
            _ => unreachable!(),
        };
        let kind = schema[key].data_type();
        let mem = data.field_indexes.get(key, kind).expect("indexed");
        let hits = match hits {
            None => mem.is_empty(),
            Some(()) => mem.is_null(),
        }
        .expect("one value per point");
        for (off, p) in data.payloads.iter().enumerate() {
            let id = PointId::Num(off as u64);
            assert_eq!(hits.get(off), c.matches(&id, p), "{when}: {c:?} at {off}");
        }
    }
    for (field, s) in schema {
        let mem = data.field_indexes.get(field, s.data_type()).unwrap();
        let fresh = index_of(s.data_type(), &data.payloads, field, None);
        let deleted = Bitmap::new(data.payloads.len());
        assert_eq!(
            mem.live_points(&deleted),
            fresh.live_points(&deleted),
            "{field}"
        );
        let mut facets = (Vec::new(), Vec::new());
        mem.for_each_value(&mut |v, offs| facets.0.push((v, offs.to_vec())));
        fresh.for_each_value(&mut |v, offs| facets.1.push((v, offs.to_vec())));
        assert_eq!(facets.0, facets.1, "{when}: facet values of {field}");
    }
    answered
}

fn insert(id: u64, payload: Payload) -> PointInsert {
    let mut vectors = NamedVectors::new();
    vectors.insert(String::new(), Vector::Dense(vec![1.0, id as f32]));
    PointInsert {
        id: PointId::Num(id),
        vectors,
        payload: Some(payload),
    }
}

#[test]
fn appendable_indexes_answer_like_a_fresh_build_and_the_payloads_through_payload_changes() {
    let schema = schema();
    let config = CollectionConfig::single(2, Distance::Dot);
    let seg = MemSegment::new(&config, &schema);
    let mut rng = StdRng::seed_from_u64(21);
    for round in 0..6 {
        for _ in 0..60 {
            let id = seg.data.read().len() as u64;
            seg.push(insert(id, payload(&mut rng, true)));
        }
        for _ in 0..80 {
            let off = rng.random_range(0..seg.data.read().len()) as u32;
            let op = payload_op(&mut rng, true);
            seg.data
                .write()
                .edit_payload(off, |p| crate::collection::payload::apply(p, &op));
        }
        let answered = assert_segment_answers(&seg, &schema, &format!("round {round}"));
        assert!(answered >= 20, "round {round}: {answered} answered");
    }
    // Every awkward value overwritten: the indexes answer ranges and shapes again, as a fresh build
    // does.
    let len = seg.data.read().len() as u32;
    for off in 0..len {
        let clean = payload(&mut rng, false);
        seg.data.write().edit_payload(off, |p| *p = clean);
    }
    let whole = conditions().iter().filter(|(_, whole)| *whole).count();
    assert!(assert_segment_answers(&seg, &schema, "overwritten clean") >= whole);
    // Created over the points there: built from their payloads. Deleted: dropped.
    let mut less = schema.clone();
    less.remove("kw");
    seg.sync_field_indexes(&less);
    assert!(seg
        .data
        .read()
        .field_indexes
        .get("kw", PayloadSchemaType::Keyword)
        .is_none());
    seg.push(insert(10_000, payload(&mut rng, true)));
    seg.sync_field_indexes(&schema);
    assert_segment_answers(&seg, &schema, "index created again");
    // Created again with other text params: built again with them.
    let mut other = schema.clone();
    other.insert(
        "s".into(),
        serde_json::from_value(json!({"type": "text", "tokenizer": "prefix"})).unwrap(),
    );
    seg.sync_field_indexes(&other);
    assert_segment_answers(&seg, &other, "text params changed");
}

fn filters() -> Vec<(Filter, bool)> {
    let must = |c: Value| serde_json::from_value::<Filter>(json!({"must": [c]})).unwrap();
    let mut out: Vec<(Filter, bool)> = conditions()
        .into_iter()
        .map(|(c, whole)| (must(c), whole))
        .collect();
    out.extend(emptiness().into_iter().map(|c| (must(c), true)));
    let combined = [
        json!({"must": [{"key": "kw", "match": {"value": "red"}}, {"key": "n", "range": {"gte": 5}}]}),
        json!({"should": [{"key": "b", "match": {"value": true}}, {"has_id": [1, 2, 3, 40]}],
            "must_not": [{"key": "s", "match": {"text": "cat"}}]}),
        json!({"min_should": {"conditions": [{"key": "kw", "match": {"value": "blue"}},
            {"key": "f", "range": {"lt": 0}}, {"is_empty": {"key": "g"}}], "min_count": 2}}),
    ];
    out.extend(
        combined
            .into_iter()
            .map(|f| (serde_json::from_value(f).unwrap(), true)),
    );
    out
}

/// What the payloads pass, read as the filters read them (with the schema's text params).
fn passing(points: &BTreeMap<u64, Payload>, f: &Filter, schema: &PayloadSchema) -> Vec<u64> {
    let checks = PointChecks {
        schema: Some(schema),
        ..PointChecks::NONE
    };
    points
        .iter()
        .filter(|(id, p)| {
            let load = || Cow::Borrowed(*p);
            f.matches_with(&PointId::Num(**id), &LazyPayload::new(&load), &checks)
        })
        .map(|(id, _)| *id)
        .collect()
}

fn active_reads(c: &Collection) -> usize {
    let set = c.shared.snapshot();
    let reads = set.active.data.read().payload_reads.load(Ordering::Relaxed);
    reads
}

/// Count, scroll and search over the collection (its points all in the appendable segment) answer as
/// the payloads do; a filter the indexes answer whole reads no payload.
fn assert_collection_answers(
    c: &Collection,
    points: &BTreeMap<u64, Payload>,
    awkward: bool,
    when: &str,
) {
    assert!(c.shared.snapshot().sealed.is_empty());
    let schema = c.payload_schema();
    for (f, whole) in filters() {
        let want = passing(points, &f, &schema);
        let before = active_reads(c);
        assert_eq!(
            c.count(Some(&f)).unwrap(),
            want.len(),
            "{when}: count {f:?}"
        );
        let page = c
            .scroll(&ScrollRequest {
                filter: Some(f.clone()),
                offset: None,
                limit: 10_000,
                with_payload: WithPayload::None,
                with_vectors: WithVectors::None,
            })
            .unwrap();
        let ids: Vec<u64> = page
            .points
            .iter()
            .map(|r| match r.id {
                PointId::Num(n) => n,
                PointId::Uuid(_) => unreachable!(),
            })
            .collect();
        assert_eq!(ids, want, "{when}: scroll {f:?}");
        let mut req = SearchRequest::dense(vec![1.0, 0.5], 10_000);
        req.filter = Some(f.clone());
        assert_eq!(
            c.search(&req).unwrap().len(),
            want.len(),
            "{when}: search {f:?}"
        );
        if whole && !awkward {
            assert_eq!(active_reads(c), before, "{when}: payloads read for {f:?}");
        }
    }
}

fn apply_model(points: &mut BTreeMap<u64, Payload>, ids: &[u64], op: &PayloadOp) {
    for id in ids {
        if let Some(p) = points.get_mut(id) {
            crate::collection::payload::apply(p, op);
        }
    }
}

/// Upserts, overwrites, payload set / overwrite / delete / clear and point deletes on a collection
/// whose points all stay in the appendable segment, checked after each step and after a reopen.
fn sequence(awkward: bool) {
    let dir = tempfile::tempdir().unwrap();
    let options = test_options();
    let mut points = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(if awkward { 5 } else { 6 });
    {
        let cs = Collections::open(dir.path(), options.clone()).unwrap();
        let c = cs
            .create("t", CollectionConfig::single(2, Distance::Dot))
            .unwrap();
        for (field, s) in schema() {
            c.create_payload_index(&field, s).unwrap();
        }
        let mut upsert = |c: &Collection, points: &mut BTreeMap<u64, Payload>, ids: Vec<u64>| {
            let batch: Vec<PointInsert> = ids
                .into_iter()
                .map(|id| {
                    let p = payload(&mut rng, awkward);
                    points.insert(id, p.clone());
                    insert(id, p)
                })
                .collect();
            c.upsert(batch).unwrap();
        };
        upsert(&c, &mut points, (0..150).collect());
        assert_collection_answers(&c, &points, awkward, "upserted");
        // Overwritten by upserts of the same ids.
        upsert(&c, &mut points, (0..150).step_by(3).collect());
        assert_collection_answers(&c, &points, awkward, "upserted again");
        let mut op_rng = StdRng::seed_from_u64(7);
        for step in 0..6 {
            let ids: Vec<u64> = (0..150).filter(|_| op_rng.random_bool(0.2)).collect();
            let op = payload_op(&mut op_rng, awkward);
            let selector = PointsSelector::Ids(ids.iter().map(|&i| PointId::Num(i)).collect());
            c.update_payload(selector, op.clone()).unwrap();
            apply_model(&mut points, &ids, &op);
            assert_collection_answers(&c, &points, awkward, &format!("payload step {step}"));
        }
        let dead: Vec<u64> = (0..150).step_by(7).collect();
        c.delete(PointsSelector::Ids(
            dead.iter().map(|&i| PointId::Num(i)).collect(),
        ))
        .unwrap();
        dead.iter().for_each(|i| {
            points.remove(i);
        });
        assert_collection_answers(&c, &points, awkward, "points deleted");
        cs.close().unwrap();
    }
    // Reopened: the log replays into a new appendable segment, indexes and all.
    let cs = Collections::open(dir.path(), options).unwrap();
    let c = cs.get("t").unwrap();
    assert_collection_answers(&c, &points, awkward, "reopened");
}

#[test]
fn appendable_indexes_answer_like_payloads_through_updates_and_a_reopen_reading_none() {
    sequence(false);
}

#[test]
fn appendable_indexes_answer_like_payloads_with_values_left_to_the_payloads() {
    sequence(true);
}

#[test]
fn index_created_over_appendable_points_answers_and_a_deleted_one_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (_cs, c) = test_collection(dir.path());
    let mut rng = StdRng::seed_from_u64(3);
    let mut points = BTreeMap::new();
    let batch: Vec<PointInsert> = (0..200)
        .map(|id| {
            let p = payload(&mut rng, false);
            points.insert(id, p.clone());
            insert(id, p)
        })
        .collect();
    c.upsert(batch).unwrap();
    let red: Filter =
        serde_json::from_value(json!({"must": [{"key": "kw", "match": {"value": "red"}}]}))
            .unwrap();
    let schema = PayloadSchema::new();
    let want = passing(&points, &red, &schema).len();
    assert!(want > 10, "{want}");
    // No index: the payloads answer (the counter counts).
    let before = active_reads(&c);
    assert_eq!(c.count(Some(&red)).unwrap(), want);
    assert!(active_reads(&c) > before);

    c.create_payload_index("kw", serde_json::from_value(json!("keyword")).unwrap())
        .unwrap();
    let before = active_reads(&c);
    assert_eq!(c.count(Some(&red)).unwrap(), want);
    let facet = c
        .facet(&FacetRequest {
            key: "kw".into(),
            limit: 10,
            filter: Some(red.clone()),
        })
        .unwrap();
    assert_eq!(facet[0].count, want, "{facet:?}");
    assert_eq!(
        active_reads(&c),
        before,
        "no payload read through the new index"
    );
    assert_eq!(
        c.info().payload_schema["kw"].points,
        points
            .values()
            .filter(|p| has_value(p, "kw", PayloadSchemaType::Keyword))
            .count()
    );
    assert_eq!(active_reads(&c), before, "the info counts from the index");

    c.delete_payload_index("kw").unwrap();
    assert!(c
        .shared
        .snapshot()
        .active
        .data
        .read()
        .field_indexes
        .get("kw", PayloadSchemaType::Keyword)
        .is_none());
    assert_eq!(c.count(Some(&red)).unwrap(), want);
    assert!(
        active_reads(&c) > before,
        "without the index the payloads answer"
    );
}

#[test]
fn a_seal_of_an_indexed_appendable_segment_answers_alike_and_writes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_cs, c) = test_collection(dir.path());
    for (field, s) in schema() {
        c.create_payload_index(&field, s).unwrap();
    }
    let mut rng = StdRng::seed_from_u64(9);
    let mut points = BTreeMap::new();
    let batch: Vec<PointInsert> = (0..300)
        .map(|id| {
            let p = payload(&mut rng, true);
            points.insert(id, p.clone());
            insert(id, p)
        })
        .collect();
    c.upsert(batch).unwrap();
    let schema = c.payload_schema();
    let answers = |c: &Collection| -> Vec<usize> {
        filters()
            .iter()
            .map(|(f, _)| c.count(Some(f)).unwrap())
            .collect()
    };
    let before = answers(&c);
    let want: Vec<usize> = filters()
        .iter()
        .map(|(f, _)| passing(&points, f, &schema).len())
        .collect();
    assert_eq!(before, want);
    c.flush().unwrap();
    let set = c.shared.snapshot();
    assert_eq!(set.sealed.len(), 1);
    assert_eq!(
        set.sealed[0].field_indexes.lock().len(),
        schema.len(),
        "the sealed segment opened its index files"
    );
    assert_eq!(answers(&c), want);
}

/// What the appendable segment's indexes cost per point, for a keyword of 3 values, a unique integer
/// and a datetime per point: well under the payload maps they index.
#[test]
fn appendable_index_memory_per_point() {
    let schema: PayloadSchema =
        serde_json::from_value(json!({"kw": "keyword", "id": "integer", "t": "datetime"})).unwrap();
    let seg = MemSegment::new(&CollectionConfig::single(2, Distance::Dot), &schema);
    let n = 20_000u64;
    for i in 0..n {
        let kw = ["red", "green", "blue"][(i % 3) as usize];
        let p = json!({"kw": kw, "id": i,
            "t": format!("2024-01-{:02}T10:00:00Z", i % 28 + 1)});
        seg.push(insert(i, p.as_object().unwrap().clone()));
    }
    let data = seg.data.read();
    let per_point = data.field_indexes.heap_bytes() as f64 / n as f64;
    // Per field 4 bytes of shape and 1 bit of has-value; per value 4 bytes of offset; a key per
    // distinct value (here one per point for `id`).
    assert!(per_point < 120.0, "{per_point} bytes per point");
    println!("appendable payload indexes: {per_point:.1} bytes per point for 3 fields");
}
