//! Payload indexes: every index type answers filters exactly as reading the payloads does (before and
//! after the index exists, over segments sealed before and after it was created, after tombstones, a
//! reopen and a snapshot restore), its files are part of the segments, and filtered HNSW keeps its
//! recall at 1 %, 10 % and 50 % selectivity with and without an index.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use quiver_engine::config::Distance;
use quiver_engine::filter::Filter;
use quiver_engine::payload_schema::PayloadFieldSchema;
use quiver_engine::point::{
    Payload, PointsSelector, ScrollRequest, SearchRequest, WithPayload, WithVectors,
};
use quiver_engine::query::{QueryInput, QueryRequest, Strategy};
use quiver_engine::{Collection, PointId};
use quiver_storage::snapshot::Limits;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::common::*;

const UUIDS: [&str; 4] = [
    "6f1e2b9c-5d3a-4c1e-9f7b-2a8d4e6c1b3a",
    "0b7a6c5d-4e3f-4a2b-8c1d-9e8f7a6b5c4d",
    "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "123e4567-e89b-12d3-a456-426614174000",
];

/// A payload with values of every type at every field, including the awkward ones: arrays, values of
/// other types, non-integral numbers at the integer field, datetimes with a sub-microsecond part,
/// strings that are not UUIDs, nested paths.
fn payload(i: u64, rng: &mut rand::rngs::StdRng) -> Value {
    let colors = ["red", "green", "blue", "Red"];
    let mut p = serde_json::Map::new();
    let kw = match rng.random_range(0..10) {
        0 => json!([
            colors[rng.random_range(0..4)],
            colors[rng.random_range(0..4)]
        ]),
        1 => json!(5),
        2 => Value::Null,
        _ => json!(colors[rng.random_range(0..4)]),
    };
    if !i.is_multiple_of(13) {
        p.insert("kw".into(), kw);
    }
    let n: i64 = rng.random_range(-5..50);
    p.insert(
        "n".into(),
        match rng.random_range(0..20) {
            0 => json!([n, n + 1]),
            1 => json!("7"),
            2 => json!(n as f64),
            // One segment in three has a non-integral number, which leaves ranges to the payload.
            3 if (i / 1000) % 3 == 1 => json!(n as f64 + 0.5),
            _ => json!(n),
        },
    );
    p.insert(
        "f".into(),
        match rng.random_range(0..10) {
            0 => json!(rng.random_range(-20..20)),
            1 => json!([rng.random_range(-50.0..50.0), -0.0]),
            _ => json!(rng.random_range(-50.0f64..50.0)),
        },
    );
    match rng.random_range(0..6) {
        0 => {}
        1 => {
            p.insert("b".into(), json!([true, false]));
        }
        _ => {
            p.insert("b".into(), json!(rng.random_bool(0.3)));
        }
    }
    let day = rng.random_range(1..28);
    let hour = rng.random_range(0..24);
    p.insert(
        "t".into(),
        match rng.random_range(0..8) {
            0 => json!(format!("2024-01-{day:02}")),
            1 => json!(format!("2024-01-{day:02} {hour:02}:30")),
            2 => json!(format!("2024-01-{day:02}T{hour:02}:00:00+02:00")),
            3 => json!("soon"),
            // Sub-microsecond datetimes in one segment in two.
            4 if (i / 1000).is_multiple_of(2) => {
                json!(format!("2024-01-{day:02}T{hour:02}:00:00.1234567Z"))
            }
            _ => json!(format!("2024-01-{day:02}T{hour:02}:15:00.25Z")),
        },
    );
    p.insert(
        "u".into(),
        match rng.random_range(0..6) {
            0 => json!("not-a-uuid"),
            1 => json!(UUIDS[rng.random_range(0..4)].to_uppercase()),
            _ => json!(UUIDS[rng.random_range(0..4)]),
        },
    );
    let (lon, lat) = (rng.random_range(-10.0..10.0), rng.random_range(40.0..60.0));
    match rng.random_range(0..8) {
        0 => {}
        1 => {
            p.insert(
                "geo".into(),
                json!([{"lon": lon, "lat": lat}, {"lon": 0.0, "lat": 50.0}]),
            );
        }
        2 => {
            p.insert("geo".into(), json!("somewhere"));
        }
        _ => {
            p.insert("geo".into(), json!({"lon": lon, "lat": lat}));
        }
    }
    p.insert("nested".into(), json!({"x": rng.random_range(0..7)}));
    let y = ["a", "b", "c"][rng.random_range(0..3)];
    p.insert("arr".into(), json!([{ "y": y }, {"y": "z"}]));
    Value::Object(p)
}

/// The filters compared: every index type's `match` and `range`, conditions an index must leave to
/// the payload, and combinations answered wholly or partly by indexes.
fn filters() -> Vec<Filter> {
    let m = |key: &str, value: Value| json!({"key": key, "match": {"value": value}});
    let r = |key: &str, range: Value| json!({"key": key, "range": range});
    let must = |c: Vec<Value>| json!({"must": c});
    let up = UUIDS[1].to_uppercase();
    [
        must(vec![m("kw", json!("red"))]),
        must(vec![
            json!({"key": "kw", "match": {"any": ["red", "blue"]}}),
        ]),
        must(vec![m("kw", json!(5))]),
        json!({"must_not": [m("kw", json!("red"))]}),
        json!({"should": [m("kw", json!("red")), m("kw", json!("green"))]}),
        must(vec![m("n", json!(7))]),
        must(vec![json!({"key": "n", "match": {"any": [1, 2, 3]}})]),
        must(vec![r("n", json!({"gte": 10, "lt": 20}))]),
        must(vec![r("n", json!({"gt": 2.5}))]),
        must(vec![r("n", json!({"lte": 0}))]),
        must(vec![r("f", json!({"gte": -10.5, "lt": 40}))]),
        must(vec![r("f", json!({"gt": 0}))]),
        must(vec![r("f", json!({"lte": 0.0}))]),
        must(vec![m("b", json!(true))]),
        must(vec![m("b", json!(false))]),
        must(vec![r(
            "t",
            json!({"gte": "2024-01-10T00:00:00Z", "lt": "2024-01-20"}),
        )]),
        must(vec![r("t", json!({"gt": "2024-01-05T00:00:00.1234567Z"}))]),
        must(vec![r("t", json!({"lte": "2024-01-15 12:00"}))]),
        must(vec![m("u", json!(UUIDS[1]))]),
        must(vec![m("u", json!(up))]),
        must(vec![m("u", json!("not-a-uuid"))]),
        must(vec![
            json!({"key": "geo", "geo_radius": {"center": {"lon": 0.0, "lat": 50.0},
            "radius": 400_000.0}}),
        ]),
        must(vec![
            json!({"key": "geo", "geo_bounding_box": {"top_left": {"lon": -5.0,
            "lat": 55.0}, "bottom_right": {"lon": 5.0, "lat": 45.0}}}),
        ]),
        must(vec![
            json!({"key": "geo", "geo_polygon": {"exterior": {"points": [
            {"lon": -8.0, "lat": 42.0}, {"lon": 8.0, "lat": 42.0}, {"lon": 0.0, "lat": 58.0},
            {"lon": -8.0, "lat": 42.0}]}}}),
        ]),
        must(vec![m("nested.x", json!(3))]),
        must(vec![m("arr[].y", json!("a"))]),
        must(vec![m("kw", json!("red")), r("n", json!({"gte": 10}))]),
        json!({"must": [m("kw", json!("blue"))], "must_not": [m("b", json!(true))]}),
        json!({"must": [m("kw", json!("blue")), {"has_id": [1, 2, 3, 500, 1500]}]}),
        json!({"must": [m("kw", json!("green")), {"is_empty": {"key": "b"}}]}),
        json!({"min_should": {"conditions": [m("kw", json!("red")), m("b", json!(true)),
            r("n", json!({"lt": 5}))], "min_count": 2}}),
        json!({"must": [{"must": [m("b", json!(true))]}, {"should": [r("f", json!({"lt": 0})),
            m("u", json!(UUIDS[0]))]}]}),
        // What the indexes' shapes answer (and, through `arr[].y`, leave to the payloads).
        must(vec![json!({"key": "kw", "values_count": {"gte": 2}})]),
        must(vec![json!({"key": "kw", "is_empty": true})]),
        must(vec![json!({"key": "kw", "is_null": false})]),
        json!({"must": [{"is_null": {"key": "kw"}}]}),
        json!({"must_not": [{"is_empty": {"key": "b"}}], "must": [m("kw", json!("red"))]}),
        must(vec![json!({"key": "b", "values_count": {"lt": 2}})]),
        must(vec![json!({"key": "arr[].y", "values_count": {"gt": 0}})]),
        json!({"should": [{"is_empty": {"key": "geo"}}, {"key": "nested.x", "is_null": true}]}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect()
}

const INDEXES: [(&str, &str); 9] = [
    ("kw", "keyword"),
    ("n", "integer"),
    ("f", "float"),
    ("b", "bool"),
    ("t", "datetime"),
    ("u", "uuid"),
    ("nested.x", "integer"),
    ("arr[].y", "keyword"),
    ("geo", "geo"),
];

fn create_indexes(c: &Collection) {
    for (field, kind) in INDEXES {
        let schema: PayloadFieldSchema = serde_json::from_value(json!(kind)).unwrap();
        c.create_payload_index(field, schema).unwrap();
    }
}

fn live_ids(c: &Collection, f: &Filter) -> Vec<u64> {
    let page = c
        .scroll(&ScrollRequest {
            filter: Some(f.clone()),
            offset: None,
            limit: 100_000,
            with_payload: WithPayload::None,
            with_vectors: WithVectors::None,
        })
        .unwrap();
    ids(page.points.into_iter().map(|r| r.id))
}

/// Every filter passes exactly the points that reading their payloads passes.
fn assert_answers(c: &Collection, points: &BTreeMap<u64, Payload>, when: &str) {
    for f in filters() {
        let want: Vec<u64> = points
            .iter()
            .filter(|(id, p)| f.matches(&PointId::Num(**id), p))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(live_ids(c, &f), want, "{when}: {f:?}");
        assert_eq!(c.count(Some(&f)).unwrap(), want.len(), "{when}: {f:?}");
    }
}

fn upsert_range(c: &Collection, points: &mut BTreeMap<u64, Payload>, ids: std::ops::Range<u64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(ids.start);
    let batch: Vec<_> = ids
        .map(|i| {
            let p = payload(i, &mut rng);
            points.insert(i, obj(p.clone()));
            dense(i, vec![1.0, (i % 17) as f32], p)
        })
        .collect();
    c.upsert(batch).unwrap();
}

fn segment_dirs(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir.join("collections/p/segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

fn index_files(dir: &Path) -> usize {
    let mut n = 0;
    for seg in std::fs::read_dir(dir.join("collections/p/segments")).unwrap() {
        for f in std::fs::read_dir(seg.unwrap().path()).unwrap() {
            n += f.unwrap().file_name().to_string_lossy().ends_with(".pidx") as usize;
        }
    }
    n
}

#[test]
fn indexed_filters_answer_like_payload_reads_through_seals_reopens_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let mut points = BTreeMap::new();
    let archive;
    {
        let cs = open(dir.path());
        let c = create(&cs, "p", small_config(2, Distance::Dot, 1000, 100));
        // Two sealed segments and an appendable tail.
        upsert_range(&c, &mut points, 0..1000);
        c.flush().unwrap();
        upsert_range(&c, &mut points, 1000..2000);
        c.flush().unwrap();
        upsert_range(&c, &mut points, 2000..2300);
        assert_answers(&c, &points, "without indexes");

        // Created over sealed segments: written as files for them.
        create_indexes(&c);
        assert_eq!(
            index_files(dir.path()),
            2 * 9,
            "one file per field and sealed segment"
        );
        assert_answers(&c, &points, "indexes created after the seal");

        // A segment sealed with the indexes in the schema gets them as it is written.
        upsert_range(&c, &mut points, 2300..3000);
        c.flush().unwrap();
        assert_eq!(index_files(dir.path()), 3 * 9);
        assert_answers(&c, &points, "segment sealed with the indexes");

        // Tombstones, in sealed segments and the tail.
        let dead: Vec<u64> = (0..3000).step_by(11).collect();
        c.delete(PointsSelector::Ids(
            dead.iter().map(|&i| PointId::Num(i)).collect(),
        ))
        .unwrap();
        for i in dead {
            points.remove(&i);
        }
        upsert_range(&c, &mut points, 3000..3100);
        assert_answers(&c, &points, "after deletes");
        // A vacuum rewrites the first segment (most of it deleted) with its indexes.
        let dead: Vec<u64> = (0..1000).filter(|i| i % 4 != 0).collect();
        c.delete(PointsSelector::Ids(
            dead.iter().map(|&i| PointId::Num(i)).collect(),
        ))
        .unwrap();
        for i in dead {
            points.remove(&i);
        }
        let before = segment_dirs(dir.path());
        c.flush().unwrap();
        assert!(
            before.iter().any(|d| !segment_dirs(dir.path()).contains(d)),
            "a segment was rewritten"
        );
        // The tail was sealed too: four segments, the first one rewritten.
        assert_eq!(index_files(dir.path()), 4 * 9);
        assert_answers(&c, &points, "after a vacuum");
        let kw_points = points
            .values()
            .filter(|p| match p.get("kw") {
                Some(Value::String(_)) => true,
                Some(Value::Array(a)) => a.iter().any(Value::is_string),
                _ => false,
            })
            .count();
        assert_eq!(c.info().payload_schema["kw"].points, kw_points);
        let d = cs.create_snapshot("p").unwrap();
        archive = cs.snapshot_path("p", &d.name).unwrap();
    }
    // Reopened: the files are mapped, nothing is rebuilt.
    let cs = open(dir.path());
    let c = cs.get("p").unwrap();
    assert_answers(&c, &points, "after reopen");
    let schema_before = c.info().payload_schema;

    // Deleted and created again: the listed files are reused.
    c.delete_payload_index("n").unwrap();
    assert_answers(&c, &points, "index deleted");
    c.create_payload_index("n", serde_json::from_value(json!("integer")).unwrap())
        .unwrap();
    assert_eq!(index_files(dir.path()), 4 * 9);
    assert_answers(&c, &points, "index created again");
    assert_eq!(c.info().payload_schema, schema_before);

    // The files travel in the snapshot.
    let dst = tempfile::tempdir().unwrap();
    let cs2 = open(dst.path());
    let restored = cs2
        .restore_snapshot("p", &archive, None, Limits::default())
        .unwrap();
    assert_eq!(index_files(dst.path()), 4 * 9);
    assert_answers(&restored, &points, "restored from a snapshot");
}

/// Recall@10 of filtered search against the exact filtered ranking, at 1 %, 10 % and 50 % of the
/// points passing, with the filtered field indexed or not, and the plan the vector's
/// `full_scan_threshold` picks for each.
#[test]
fn filtered_search_recall_at_three_selectivities_with_and_without_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let n = 6000;
    let dim = 24;
    let data = random_vectors(n, dim, 99);
    let cs = open(dir.path());
    let c = create(&cs, "r", small_config(dim, Distance::Cosine, n, 500));
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let points: Vec<_> = data
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let bucket = rng.random_range(0..100);
            dense(
                i as u64,
                v.clone(),
                json!({"g": bucket, "tag": format!("t{bucket}")}),
            )
        })
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    assert_eq!(c.info().indexed_vectors_count, n);
    let queries = random_vectors(40, dim, 7);
    let cases: Vec<(&str, Filter)> = vec![
        (
            "1 %",
            json!({"must": [{"key": "tag", "match": {"value": "t42"}}]}),
        ),
        (
            "10 %",
            json!({"must": [{"key": "g", "range": {"gte": 20, "lt": 30}}]}),
        ),
        ("50 %", json!({"must": [{"key": "g", "range": {"lt": 50}}]})),
    ]
    .into_iter()
    .map(|(name, f)| (name, serde_json::from_value(f).unwrap()))
    .collect();
    for indexed in [false, true] {
        if indexed {
            c.create_payload_index("g", serde_json::from_value(json!("integer")).unwrap())
                .unwrap();
            c.create_payload_index("tag", serde_json::from_value(json!("keyword")).unwrap())
                .unwrap();
        }
        for (name, filter) in &cases {
            let mut found = 0;
            let mut wanted = 0;
            for q in &queries {
                let mut req = SearchRequest::dense(q.clone(), 10);
                req.filter = Some(filter.clone());
                let approx: Vec<PointId> =
                    c.search(&req).unwrap().into_iter().map(|h| h.id).collect();
                req.exact = true;
                let truth: HashSet<PointId> =
                    c.search(&req).unwrap().into_iter().map(|h| h.id).collect();
                wanted += truth.len();
                found += approx.iter().filter(|id| truth.contains(id)).count();
            }
            let recall = found as f64 / wanted as f64;
            eprintln!("selectivity {name}, indexed {indexed}: recall@10 {recall:.4}");
            assert!(
                recall >= 0.95,
                "{name}, indexed {indexed}: recall@10 = {recall}"
            );
        }
        // The planner's choice on the same data under a small and a large `full_scan_threshold`
        // (about 60, 600 and 3,000 points pass). From the index's exact count, fewer points than the
        // threshold are scanned, more are filtered inside the graph walk. Estimated from a sample, a
        // scan would parse every payload whatever the count: up to 2,000 points are scanned, whatever
        // the threshold.
        let plans = if indexed {
            [
                (300, ["Exact", "Hnsw", "Hnsw"]),
                (4_000, ["Exact", "Exact", "Exact"]),
            ]
        } else {
            [
                (300, ["Exact", "Exact", "Hnsw"]),
                (4_000, ["Exact", "Exact", "Hnsw"]),
            ]
        };
        for (threshold, want) in plans {
            c.update_config(|config| {
                config.hnsw_config.full_scan_threshold = threshold;
                Ok(())
            })
            .unwrap();
            for ((name, filter), want) in cases.iter().zip(want) {
                let mut req =
                    QueryRequest::nearest(None, QueryInput::Dense(queries[0].clone()), 10);
                req.filter = Some(filter.clone());
                let strategy = c.query(&req).unwrap().stages[0].strategy;
                let want = match want {
                    "Exact" => Strategy::Exact,
                    _ => Strategy::Hnsw,
                };
                assert_eq!(
                    strategy, want,
                    "{name}, indexed {indexed}, threshold {threshold}"
                );
            }
        }
        c.update_config(|config| {
            config.hnsw_config.full_scan_threshold = 500;
            Ok(())
        })
        .unwrap();
    }
}

/// Every hit of a search, with its score's bits: equal results must be equal to the last bit.
fn scored(c: &Collection, req: &SearchRequest) -> Vec<(PointId, u32)> {
    c.search(req)
        .unwrap()
        .into_iter()
        .map(|h| (h.id, h.score.to_bits()))
        .collect()
}

/// A scan of only the points an index says pass returns what a scan testing the filter at every point
/// returns: the same hits, scores and order of ties, with tombstones in the sealed segments and an
/// appendable segment beside them, at several selectivities.
#[test]
fn indexed_scan_of_passing_points_equals_a_scan_testing_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let (n, dim) = (4000, 16);
    let cs = open(dir.path());
    // One sealed segment of all n points: it keeps its graph when the threshold is raised to n
    // below, so no rebuild drops it.
    let mut config = small_config(dim, Distance::Dot, n, 100);
    // Tombstones stay in the sealed segments instead of being vacuumed away.
    config.optimizer_config.deleted_threshold = 1.0;
    let c = create(&cs, "s", config);
    let mut data = random_vectors(n + 100, dim, 21);
    // Runs of equal vectors make equal scores, whose order the scan must keep.
    for i in (0..data.len()).step_by(10) {
        data[i + 1] = data[i].clone();
        data[i + 2] = data[i].clone();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let points: Vec<_> = data
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let g = rng.random_range(0..100);
            let payload = match i % 13 {
                // Some points lack the field, or hold it as an array.
                0 => json!({}),
                1 => json!({"g": [g, (g + 50) % 100], "tag": format!("t{}", g % 20)}),
                _ => json!({"g": g, "tag": format!("t{}", g % 20)}),
            };
            dense(i as u64, v.clone(), payload)
        })
        .collect();
    let (sealed, fresh) = points.split_at(n);
    c.upsert(sealed.to_vec()).unwrap();
    c.flush().unwrap();
    assert_eq!(c.info().indexed_vectors_count, n);
    c.upsert(fresh.to_vec()).unwrap();
    let dead: Vec<PointId> = (0..n as u64)
        .filter(|i| i % 9 == 4 || i % 10 == 1)
        .map(PointId::Num)
        .collect();
    c.delete(PointsSelector::Ids(dead)).unwrap();
    let filters: Vec<Filter> = [
        json!({"must": [{"key": "g", "range": {"lt": 1}}]}),
        json!({"must": [{"key": "g", "range": {"gte": 20, "lt": 25}}]}),
        json!({"must": [{"key": "tag", "match": {"value": "t3"}}]}),
        json!({"should": [{"key": "tag", "match": {"any": ["t1", "t2"]}},
                          {"key": "g", "range": {"gt": 90}}],
               "must_not": [{"key": "g", "match": {"value": 95}}]}),
        json!({"must": [{"key": "g", "range": {"lt": 60}}]}),
        // has_id, has_vector and min_should are answered beside the indexes, so these too are
        // counted exactly: about 2,500 passing points, over the 2,000 a sampled estimate may scan.
        json!({"must": [{"key": "g", "range": {"lt": 80}}, {"has_vector": ""}]}),
        json!({"min_should": {"min_count": 1, "conditions": [
            {"key": "g", "range": {"lt": 80}},
            {"has_id": [3, 17, 3999, 4050]},
            {"key": "tag", "match": {"value": "t19"}}]}}),
    ]
    .into_iter()
    .map(|f| serde_json::from_value(f).unwrap())
    .collect();
    let queries = random_vectors(12, dim, 3);
    let request = |q: &Vec<f32>, f: &Filter, limit, exact| {
        let mut req = SearchRequest::dense(q.clone(), limit);
        req.filter = Some(f.clone());
        req.exact = exact;
        req
    };
    // Without an index, every point's payload answers the filter.
    let mut want = Vec::new();
    for f in &filters {
        for q in &queries {
            for limit in [1, 10, 200] {
                want.push(scored(&c, &request(q, f, limit, true)));
            }
        }
    }
    c.create_payload_index("g", serde_json::from_value(json!("integer")).unwrap())
        .unwrap();
    c.create_payload_index("tag", serde_json::from_value(json!("keyword")).unwrap())
        .unwrap();
    // Planned as scans at every selectivity, so the default search takes the indexed scan too.
    c.update_config(|config| {
        config.hnsw_config.full_scan_threshold = n;
        Ok(())
    })
    .unwrap();
    let mut want = want.into_iter();
    for (fi, f) in filters.iter().enumerate() {
        for (qi, q) in queries.iter().enumerate() {
            for limit in [1, 10, 200] {
                let want = want.next().unwrap();
                assert!(!want.is_empty(), "filter {fi}");
                for exact in [true, false] {
                    let req = request(q, f, limit, exact);
                    let mut plan = QueryRequest::nearest(None, QueryInput::Dense(q.clone()), limit);
                    plan.filter = Some(f.clone());
                    plan.params.exact = exact;
                    assert_eq!(
                        c.query(&plan).unwrap().stages[0].strategy,
                        Strategy::Exact,
                        "filter {fi}, exact {exact}, {} segments",
                        c.info().segments_count
                    );
                    assert_eq!(
                        scored(&c, &req),
                        want,
                        "filter {fi}, query {qi}, limit {limit}, exact {exact}"
                    );
                }
            }
        }
    }
}
