//! `POST /collections/{c}/facet`: points per value of an indexed payload key, counted over sealed and
//! appendable segments, with a filter and a limit, an array counting each distinct value once per
//! point; the 400 without a suitable index. Expected counts are computed here from the payloads.

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};

use crate::support::{Client, QuiverProcess};

/// Points in the test collection.
pub const N: u64 = 25;

/// The payload of point `i`: keywords (one an array with a repeat), integers (some arrays), floats,
/// datetimes and booleans, each missing on some points.
pub fn payload(i: u64) -> Value {
    let mut p = serde_json::Map::new();
    match i % 4 {
        0 => p.insert("tag".into(), json!("a")),
        1 => p.insert("tag".into(), json!(["b", "a", "a"])),
        2 => p.insert("tag".into(), json!("c")),
        _ => None,
    };
    match i % 5 {
        0 => p.insert("num".into(), json!([i, i + 100])),
        4 => None,
        _ => p.insert("num".into(), json!((i * 7) % 11)),
    };
    if i % 6 != 5 {
        p.insert("price".into(), json!(i as f64 * 0.5 - 3.25));
    }
    p.insert(
        "when".into(),
        json!(format!(
            "2024-01-{:02}T{:02}:30:00Z",
            1 + (i * 11) % 28,
            i % 24
        )),
    );
    p.insert("flag".into(), json!(i.is_multiple_of(3)));
    Value::Object(p)
}

/// 25 points in segments of at most 10 (two sealed, five appendable), with indexes on `tag`
/// (keyword), `num` (integer), `price` (float), `when` (datetime) and `flag` (bool).
pub fn fill(c: &Client, name: &str) {
    let body = json!({
        "vectors": {"size": 2, "distance": "Dot"},
        "optimizers_config": {"segment_max_points": 10}
    });
    c.ok("PUT", &format!("/collections/{name}"), Some(&body));
    for (field, schema) in [
        ("tag", "keyword"),
        ("num", "integer"),
        ("price", "float"),
        ("when", "datetime"),
        ("flag", "bool"),
    ] {
        let body = json!({"field_name": field, "field_schema": schema});
        c.ok(
            "PUT",
            &format!("/collections/{name}/index?wait=true"),
            Some(&body),
        );
    }
    let points: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "vector": [1.0, i as f64], "payload": payload(i)}))
        .collect();
    let (sealed, appendable) = points.split_at(20);
    for chunk in sealed.chunks(10) {
        c.upsert(name, json!(chunk));
    }
    c.wait_for_seals(name, 2);
    c.upsert(name, json!(appendable));
}

/// The scalar values at `key` of point `i`.
pub fn values(i: u64, key: &str) -> Vec<Value> {
    match payload(i).get(key) {
        None => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(v) => vec![v.clone()],
    }
}

/// The expected facet: counts of the points in `ids` per value (an array's repeats counted once),
/// most frequent first, then by value (strings before integers before booleans, as JSON).
fn expected(key: &str, ids: impl Iterator<Item = u64>, limit: usize) -> Vec<(Value, u64)> {
    let mut counts: HashMap<String, (Value, u64)> = HashMap::new();
    for i in ids {
        let distinct: BTreeSet<String> = values(i, key).iter().map(Value::to_string).collect();
        for v in distinct {
            let value: Value = serde_json::from_str(&v).unwrap();
            counts.entry(v).or_insert((value, 0)).1 += 1;
        }
    }
    let rank = |v: &Value| match v {
        Value::String(_) => 0,
        Value::Number(_) => 1,
        _ => 2,
    };
    let mut out: Vec<(Value, u64)> = counts.into_values().collect();
    out.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(rank(&a.0).cmp(&rank(&b.0)))
            .then_with(|| match (&a.0, &b.0) {
                (Value::Number(x), Value::Number(y)) => x.as_i64().cmp(&y.as_i64()),
                (Value::String(x), Value::String(y)) => x.cmp(y),
                (x, y) => x.as_bool().cmp(&y.as_bool()),
            })
    });
    out.truncate(limit);
    out
}

fn hits(res: &Value) -> Vec<(Value, u64)> {
    res["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("{res}"))
        .iter()
        .map(|h| (h["value"].clone(), h["count"].as_u64().unwrap()))
        .collect()
}

#[test]
fn facet_counts_points_per_value_over_sealed_and_appendable_segments() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    fill(&c, "f");
    let info = c.ok("GET", "/collections/f", None);
    assert!(info["segments_count"].as_u64() >= Some(3), "{info}");

    for key in ["tag", "num", "flag"] {
        let res = c.ok(
            "POST",
            "/collections/f/facet",
            Some(&json!({"key": key, "limit": 100})),
        );
        assert_eq!(hits(&res), expected(key, 0..N, 100), "{key}: {res}");
    }
    // `tag` is "a" on points 0 mod 4 and in the arrays of 1 mod 4 (counted once each).
    let tag = c.ok("POST", "/collections/f/facet", Some(&json!({"key": "tag"})));
    assert_eq!(hits(&tag)[0], (json!("a"), 13), "{tag}");

    // The default limit is 10; a smaller one keeps the most frequent.
    let res = c.ok("POST", "/collections/f/facet", Some(&json!({"key": "num"})));
    assert_eq!(hits(&res), expected("num", 0..N, 10), "{res}");
    let res = c.ok(
        "POST",
        "/collections/f/facet",
        Some(&json!({"key": "num", "limit": 3, "exact": true})),
    );
    assert_eq!(hits(&res), expected("num", 0..N, 3), "{res}");

    // A filter restricts the counted points (here an indexed keyword and a range).
    let filter = json!({"must": [{"key": "flag", "match": {"value": true}}],
        "must_not": [{"key": "price", "range": {"gt": 5.0}}]});
    let passes = |i: &u64| {
        i.is_multiple_of(3)
            && !values(*i, "price")
                .iter()
                .any(|p| p.as_f64().unwrap() > 5.0)
    };
    for key in ["tag", "num"] {
        let res = c.ok(
            "POST",
            "/collections/f/facet",
            Some(&json!({"key": key, "filter": filter, "limit": 50})),
        );
        assert_eq!(
            hits(&res),
            expected(key, (0..N).filter(passes), 50),
            "{key}: {res}"
        );
    }

    // Deleted points no longer count, sealed or not.
    let del = json!({"points": [0, 4, 21]});
    c.ok("POST", "/collections/f/points/delete?wait=true", Some(&del));
    let res = c.ok(
        "POST",
        "/collections/f/facet",
        Some(&json!({"key": "tag", "limit": 10})),
    );
    let left = (0..N).filter(|i| ![0, 4, 21].contains(i));
    assert_eq!(hits(&res), expected("tag", left, 10), "{res}");
}

#[test]
fn facet_needs_a_keyword_integer_or_bool_index() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    fill(&c, "f");
    // Not indexed at all, and indexed with a type a facet cannot count.
    for key in ["other", "price", "when"] {
        let err = c.err(
            "POST",
            "/collections/f/facet",
            Some(&json!({"key": key})),
            400,
        );
        assert!(
            err.contains("No appropriate index for faceting"),
            "{key}: {err}"
        );
    }
    c.err(
        "POST",
        "/collections/missing/facet",
        Some(&json!({"key": "tag"})),
        404,
    );
}
