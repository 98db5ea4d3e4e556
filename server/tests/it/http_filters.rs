//! Filter conditions over HTTP: `values_count`, geo radius / box / polygon, datetime ranges,
//! `has_vector`, `min_should`, `nested`, the full-text matches with and without a `text` index and the
//! `is_empty` / `is_null` short forms give the same points through scroll, count and search, on
//! sealed and appendable segments; malformed conditions are 400s that name the problem.

use serde_json::{json, Value};

use crate::support::{ids, Client, QuiverProcess};

/// Four points with named vectors `image` and `text` (not every point has both), the first two in a
/// sealed segment.
fn fill(c: &Client) {
    let body = json!({
        "vectors": {"image": {"size": 2, "distance": "Dot"}, "text": {"size": 2, "distance": "Dot"}},
        "optimizers_config": {"segment_max_points": 2}
    });
    c.ok("PUT", "/collections/f", Some(&body));
    let points = json!([
        {"id": 1, "vector": {"image": [1.0, 0.1], "text": [0.0, 1.0]}, "payload": {
            "location": {"lon": 13.404954, "lat": 52.520008}, "tags": ["a", "b", "c"],
            "created": "2023-02-08T10:49:00Z", "desc": "Good cheap shoes",
            "dinners": [{"food": "meat", "liked": false}, {"food": "cheese", "liked": true}]}},
        {"id": 2, "vector": {"image": [1.0, 0.2]}, "payload": {
            "location": {"lon": 37.617635, "lat": 55.755814}, "tags": ["a"],
            "created": "2023-03-01", "desc": "cheaper boots",
            "dinners": [{"food": "meat", "liked": true}]}},
        {"id": 3, "vector": {"text": [1.0, 0.0]}, "payload": {
            "location": [{"lon": -0.127758, "lat": 51.507351}], "tags": [],
            "created": "2022-12-31T23:00:00-02:00", "desc": "shoes, cheap"}},
        {"id": 4, "vector": {"image": [1.0, 0.4], "text": [1.0, 1.0]}, "payload": {
            "tags": null, "created": "not a date", "desc": 5}}
    ]);
    let points = points.as_array().unwrap();
    c.upsert("f", json!(points[..2]));
    c.wait_for_seals("f", 1);
    c.upsert("f", json!(points[2..]));
}

/// The ids that scroll, count and an exact search over `image` give for `filter`; the search sees
/// only points with an `image` vector.
fn answer(c: &Client, filter: &Value) -> Vec<u64> {
    let scroll = c.ok(
        "POST",
        "/collections/f/points/scroll",
        Some(&json!({"filter": filter, "limit": 100})),
    );
    let mut scrolled = ids(&scroll["points"]);
    scrolled.sort_unstable();
    let count = c.ok(
        "POST",
        "/collections/f/points/count",
        Some(&json!({"filter": filter, "exact": true})),
    );
    assert_eq!(count["count"], json!(scrolled.len()), "{filter}");
    let hits = c.ok(
        "POST",
        "/collections/f/points/search",
        Some(
            &json!({"vector": {"name": "image", "vector": [1.0, 1.0]}, "filter": filter,
            "limit": 100, "params": {"exact": true}}),
        ),
    );
    let mut searched = ids(&hits);
    searched.sort_unstable();
    let with_image: Vec<u64> = scrolled.iter().copied().filter(|&i| i != 3).collect();
    assert_eq!(searched, with_image, "{filter}");
    scrolled
}

fn must(condition: Value) -> Value {
    json!({"must": [condition]})
}

#[test]
fn new_conditions_select_the_right_points() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    fill(&c);
    let square = |lo: (f64, f64), hi: (f64, f64)| {
        json!({"points": [
            {"lon": lo.0, "lat": lo.1}, {"lon": hi.0, "lat": lo.1}, {"lon": hi.0, "lat": hi.1},
            {"lon": lo.0, "lat": hi.1}, {"lon": lo.0, "lat": lo.1}]})
    };
    let europe =
        json!({"top_left": {"lon": -1.0, "lat": 60.0}, "bottom_right": {"lon": 40.0, "lat": 50.0}});
    let cases = [
        (
            must(json!({"key": "tags", "values_count": {"gte": 2}})),
            vec![1],
        ),
        // null counts 0; a missing key passes nothing.
        (
            must(json!({"key": "tags", "values_count": {"lt": 2}})),
            vec![2, 3, 4],
        ),
        (
            must(json!({"key": "nothing", "values_count": {"lt": 2}})),
            vec![],
        ),
        (
            must(json!({"key": "location", "geo_radius": {
                "center": {"lon": 13.41, "lat": 52.52}, "radius": 1000.0}})),
            vec![1],
        ),
        (
            must(json!({"key": "location", "geo_bounding_box": europe})),
            vec![1, 2, 3],
        ),
        (
            must(json!({"key": "location", "geo_polygon": {
                "exterior": square((0.0, 50.0), (40.0, 60.0)),
                "interiors": [square((12.0, 52.0), (15.0, 53.0))]}})),
            vec![2],
        ),
        (
            must(json!({"key": "created", "range": {"gte": "2023-01-01T00:00:00Z"}})),
            vec![1, 2, 3],
        ),
        (
            must(
                json!({"key": "created", "range": {"gt": "2023-01-01", "lt": "2023-02-08T10:49:00Z"}}),
            ),
            vec![3],
        ),
        (must(json!({"has_vector": "text"})), vec![1, 3, 4]),
        (must(json!({"has_vector": "image"})), vec![1, 2, 4]),
        (json!({"must_not": [{"has_vector": "text"}]}), vec![2]),
        (must(json!({"has_vector": "missing"})), vec![]),
        (
            json!({"min_should": {"conditions": [
                {"has_vector": "image"},
                {"key": "tags", "values_count": {"gte": 1}},
                {"key": "location", "geo_bounding_box": europe}], "min_count": 3}}),
            vec![1, 2],
        ),
        (
            must(json!({"nested": {"key": "dinners", "filter": {"must": [
                {"key": "food", "match": {"value": "meat"}},
                {"key": "liked", "match": {"value": true}}]}}})),
            vec![2],
        ),
        (
            must(json!({"key": "desc", "match": {"text": "cheap shoes"}})),
            vec![1],
        ),
        (
            must(json!({"key": "desc", "match": {"phrase": "cheap shoes"}})),
            vec![1],
        ),
        (
            must(json!({"key": "desc", "match": {"text_any": "boots sandals"}})),
            vec![2],
        ),
        (must(json!({"key": "tags", "is_empty": true})), vec![3, 4]),
        (must(json!({"key": "tags", "is_null": true})), vec![4]),
        (
            must(json!({"key": "tags", "is_null": false})),
            vec![1, 2, 3],
        ),
    ];
    for (filter, expected) in &cases {
        assert_eq!(&answer(&c, filter), expected, "{filter}");
    }

    // With a text index, text matches compare words: any order, lowercased, whole words.
    c.ok(
        "PUT",
        "/collections/f/index?wait=true",
        Some(&json!({"field_name": "desc", "field_schema": {"type": "text", "tokenizer": "word"}})),
    );
    let text = |m: Value| answer(&c, &must(json!({"key": "desc", "match": m})));
    assert_eq!(text(json!({"text": "cheap SHOES"})), vec![1, 3]);
    assert_eq!(text(json!({"text": "cheap"})), vec![1, 3], "not `cheaper`");
    assert_eq!(text(json!({"phrase": "cheap shoes"})), vec![1]);
    assert_eq!(
        text(json!({"phrase": "shoes cheap"})),
        vec![3],
        "punctuation splits words"
    );
    assert_eq!(text(json!({"text_any": "boots good"})), vec![1, 2]);
}

#[test]
fn malformed_conditions_are_400s_naming_the_problem() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    fill(&c);
    let bad = [
        (
            must(json!({"key": "a", "match": {"valu": 1}})),
            "unknown `match` form `valu`",
        ),
        (
            must(json!({"key": "a", "match": {"text": 5}})),
            "`match.text` must be a string",
        ),
        (
            must(json!({"key": "a", "values_count": {"gte": -1}})),
            "values_count",
        ),
        (
            must(
                json!({"key": "a", "geo_radius": {"center": {"lon": 200.0, "lat": 0.0}, "radius": 5}}),
            ),
            "within [-180; 180]",
        ),
        (
            must(json!({"key": "a", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 1}}})),
            "bottom_right",
        ),
        (
            must(json!({"key": "a", "geo_polygon": {"exterior": {"points": [
                {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 1}]}}})),
            "not closed",
        ),
        (
            must(json!({"key": "a", "range": {"gte": "yesterday"}})),
            "'yesterday' is not in a supported date/time format",
        ),
        (
            must(json!({"has_vectors": "image"})),
            "unknown condition with `has_vectors`",
        ),
        (must(json!({"has_vector": 1})), "has_vector"),
        (json!({"min_should": {"conditions": []}}), "min_count"),
        (must(json!({"nested": {"key": "dinners"}})), "filter"),
        (must(json!({"key": "a", "is_empty": "yes"})), "is_empty"),
    ];
    for (filter, needle) in &bad {
        for (path, body) in [
            ("scroll", json!({"filter": filter})),
            ("count", json!({"filter": filter})),
            (
                "search",
                json!({"vector": {"name": "image", "vector": [1.0, 1.0]}, "filter": filter, "limit": 3}),
            ),
        ] {
            let e = c.err(
                "POST",
                &format!("/collections/f/points/{path}"),
                Some(&body),
                400,
            );
            assert!(e.contains(needle), "{path} {filter}: {e}");
        }
    }
    // A condition with only a key stays Qdrant's 422.
    let e = c.err(
        "POST",
        "/collections/f/points/count",
        Some(&json!({"filter": must(json!({"key": "a"}))})),
        422,
    );
    assert!(e.contains("values_count"), "{e}");
}

#[test]
fn has_vector_sees_dense_multi_and_sparse_vectors_in_every_segment() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({
        "vectors": {
            "d": {"size": 2, "distance": "Dot"},
            "m": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}
        },
        "sparse_vectors": {"s": {}},
        "optimizers_config": {"segment_max_points": 2}
    });
    c.ok("PUT", "/collections/v", Some(&body));
    let d = json!([1.0, 0.0]);
    let m = json!([[1.0, 0.0], [0.0, 1.0]]);
    let s = json!({"indices": [3], "values": [1.0]});
    let points = json!([
        {"id": 1, "vector": {"d": d, "m": m, "s": s}},
        {"id": 2, "vector": {"d": d}},
        {"id": 3, "vector": {"m": m}},
        {"id": 4, "vector": {"s": s}},
        {"id": 5, "vector": {"d": d, "s": s}}
    ]);
    let points = points.as_array().unwrap();
    c.upsert("v", json!(points[..2]));
    c.upsert("v", json!(points[2..4]));
    c.wait_for_seals("v", 2);
    c.upsert("v", json!(points[4..]));
    let with = |name: &str| {
        let page = c.ok(
            "POST",
            "/collections/v/points/scroll",
            Some(&json!({"filter": {"must": [{"has_vector": name}]}})),
        );
        let mut got = ids(&page["points"]);
        got.sort_unstable();
        got
    };
    assert_eq!(with("d"), vec![1, 2, 5]);
    assert_eq!(with("m"), vec![1, 3]);
    assert_eq!(with("s"), vec![1, 4, 5]);
    assert_eq!(with(""), Vec::<u64>::new(), "no unnamed vector here");
}
