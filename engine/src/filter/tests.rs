use proptest::prelude::*;
use serde_json::json;

use super::*;

fn payload(v: Value) -> Payload {
    match v {
        Value::Object(map) => map,
        _ => panic!("payload must be an object"),
    }
}

fn filter(v: Value) -> Filter {
    serde_json::from_value(v).unwrap()
}

fn check(f: Value, p: Value) -> bool {
    filter(f).matches(&PointId::Num(1), &payload(p))
}

#[test]
fn boolean_structure() {
    let p = json!({"color": "red", "n": 3});
    assert!(check(json!({}), p.clone()));
    let red = json!({"key": "color", "match": {"value": "red"}});
    let blue = json!({"key": "color", "match": {"value": "blue"}});
    assert!(check(json!({"must": [red]}), p.clone()));
    assert!(check(json!({"must": red}), p.clone()));
    assert!(!check(json!({"must": [red, blue]}), p.clone()));
    assert!(matches!(
        filter(json!({"should": [red, blue]})).should,
        Some(OneOrMany::Many(ref v)) if v.len() == 2
    ));
    assert!(check(json!({"should": [red, blue]}), p.clone()));
    assert!(!check(json!({"should": [blue]}), p.clone()));
    assert!(check(json!({"should": []}), p.clone()));
    assert!(!check(json!({"must_not": [red]}), p.clone()));
    assert!(check(json!({"must_not": [blue]}), p.clone()));
    assert!(check(
        json!({"should": [{"must": [red, {"key": "n", "range": {"gte": 3}}]}, blue]}),
        p.clone()
    ));
    assert!(check(json!({"must": [{"has_id": [5, 1]}]}), p.clone()));
    assert!(!check(json!({"must": [{"has_id": [2]}]}), p));
}

#[test]
fn match_types_do_not_cross() {
    let p =
        json!({"s": "7", "i": 7, "f": 7.0, "g": 7.5, "b": true, "big": 18446744073709551615u64});
    let m = |key: &str, v: Value| {
        check(
            json!({"must": [{"key": key, "match": {"value": v}}]}),
            p.clone(),
        )
    };
    assert!(m("s", json!("7")) && !m("s", json!(7)));
    assert!(m("i", json!(7)) && !m("i", json!("7")));
    assert!(m("f", json!(7)), "an integral float matches an integer");
    assert!(!m("g", json!(7)));
    assert!(m("b", json!(true)) && !m("b", json!(1)) && !m("b", json!("true")));
    assert!(!m("big", json!(-1)));
    assert!(!m("missing", json!(7)));
}

#[test]
fn any_except_text_range() {
    let p = json!({"tags": ["a", "b"], "n": 5, "x": null, "empty": [], "name": "good cheap shoes"});
    let c = |cond: Value| check(json!({"must": [cond]}), p.clone());
    assert!(c(json!({"key": "tags", "match": {"any": ["z", "b"]}})));
    assert!(!c(json!({"key": "tags", "match": {"any": ["z"]}})));
    // Arrays pass `except` when one element is outside the list.
    assert!(c(json!({"key": "tags", "match": {"except": ["a"]}})));
    assert!(!c(json!({"key": "tags", "match": {"except": ["a", "b"]}})));
    assert!(c(json!({"key": "n", "match": {"except": [1, 2]}})));
    assert!(!c(json!({"key": "n", "match": {"except": [5]}})));
    assert!(
        c(json!({"key": "n", "match": {"except": ["5"]}})),
        "other types pass except"
    );
    assert!(
        !c(json!({"key": "missing", "match": {"except": ["a"]}})),
        "missing fails except"
    );
    assert!(
        !c(json!({"key": "x", "match": {"except": ["a"]}})),
        "null fails except"
    );
    assert!(!c(json!({"key": "empty", "match": {"except": ["a"]}})));
    assert!(c(json!({"key": "name", "match": {"text": "cheap"}})));
    assert!(!c(json!({"key": "name", "match": {"text": "Cheap"}})));
    assert!(c(json!({"key": "n", "range": {"gt": 4.5, "lte": 5}})));
    assert!(!c(json!({"key": "n", "range": {"gt": 5}})));
    assert!(c(json!({"key": "n", "range": {}})));
    assert!(!c(json!({"key": "name", "range": {"gt": 0}})));
    assert!(
        !c(json!({"key": "n"})),
        "a condition without match or range passes nothing"
    );
}

#[test]
fn empty_and_null() {
    let p = json!({"null": null, "empty": [], "nulls": [null], "zero": 0, "obj": {"a": null}});
    let e = |key: &str| check(json!({"must": [{"is_empty": {"key": key}}]}), p.clone());
    let n = |key: &str| check(json!({"must": [{"is_null": {"key": key}}]}), p.clone());
    assert!(e("null") && e("empty") && e("missing") && e("obj.a") && e("obj.b"));
    assert!(!e("nulls") && !e("zero") && !e("obj"));
    assert!(n("null") && n("obj.a"));
    assert!(!n("empty") && !n("nulls") && !n("missing") && !n("zero"));
}

#[test]
fn nested_paths_and_arrays() {
    let p = json!({
        "country": {"name": "Japan", "cities": [
            {"name": "Tokyo", "population": 9.3, "sights": ["Tokyo Tower"]},
            {"name": "Osaka", "population": 2.7, "sights": ["Osaka Castle"]}
        ]},
        "a.b": 1,
        "grid": [[{"v": 1}], [{"v": 2}]]
    });
    let c = |cond: Value| check(json!({"must": [cond]}), p.clone());
    assert!(c(
        json!({"key": "country.name", "match": {"value": "Japan"}})
    ));
    assert!(c(
        json!({"key": "country.cities[].population", "range": {"gte": 9.0}})
    ));
    assert!(c(
        json!({"key": "country.cities.population", "range": {"gte": 9.0}})
    ));
    assert!(!c(
        json!({"key": "country.cities[].population", "range": {"gte": 10.0}})
    ));
    assert!(c(
        json!({"key": "country.cities[].sights", "match": {"value": "Osaka Castle"}})
    ));
    assert!(c(
        json!({"key": "country.cities[1].name", "match": {"value": "Osaka"}})
    ));
    assert!(!c(
        json!({"key": "country.cities[0].name", "match": {"value": "Osaka"}})
    ));
    assert!(!c(
        json!({"key": "country.cities[5].name", "match": {"value": "Osaka"}})
    ));
    assert!(c(json!({"key": "\"a.b\"", "match": {"value": 1}})));
    assert!(!c(json!({"key": "a.b", "match": {"value": 1}})));
    assert!(c(json!({"key": "grid.v", "match": {"value": 2}})));
    assert!(c(json!({"key": "grid[][].v", "match": {"value": 2}})));
}

fn must(cond: Value, p: Value) -> bool {
    check(json!({"must": [cond]}), p)
}

#[test]
fn values_count() {
    let p = json!({"tags": ["a", "b", "c"], "one": "x", "null": null, "empty": [],
        "rows": [{"t": [1, 2]}, {"t": [3]}]});
    let vc = |key: &str, count: Value| must(json!({"key": key, "values_count": count}), p.clone());
    assert!(vc("tags", json!({"gte": 3})) && !vc("tags", json!({"gt": 3})));
    assert!(vc("tags", json!({"lt": 4, "gt": 2})) && !vc("tags", json!({"lte": 2})));
    assert!(vc("one", json!({"lte": 1, "gte": 1})));
    assert!(vc("null", json!({"lt": 1})), "null counts 0");
    assert!(vc("empty", json!({"lte": 0})));
    // As in Qdrant, a missing key has no value to count.
    assert!(!vc("missing", json!({"lt": 1})));
    assert!(!vc("missing", json!({"gte": 0})));
    // Values reached through an array of objects are counted one by one.
    assert!(vc("rows[].t", json!({"gte": 2})) && !vc("rows[].t", json!({"gte": 3})));
}

#[test]
fn min_should() {
    let p = json!({"a": 1, "b": 2, "c": 3});
    let is = |k: &str, v: i64| json!({"key": k, "match": {"value": v}});
    let f = |n: usize| {
        check(
            json!({"min_should": {"conditions": [is("a", 1), is("b", 0), is("c", 3)], "min_count": n}}),
            p.clone(),
        )
    };
    assert!(f(0) && f(1) && f(2));
    assert!(!f(3) && !f(4));
    // With must: both hold.
    assert!(!check(
        json!({"must": [is("a", 2)], "min_should": {"conditions": [is("a", 1)], "min_count": 1}}),
        p.clone()
    ));
    // Inside a nested filter, and as a condition.
    assert!(must(
        json!({"min_should": {"conditions": [is("a", 1), is("b", 2)], "min_count": 2}}),
        p.clone()
    ));
    assert!(check(
        json!({"min_should": {"conditions": [], "min_count": 0}}),
        p
    ));
}

#[test]
fn short_forms_of_is_empty_and_is_null() {
    let p = json!({"null": null, "empty": [], "nulls": [null], "zero": 0});
    let e = |key: &str, b: bool| must(json!({"key": key, "is_empty": b}), p.clone());
    let n = |key: &str, b: bool| must(json!({"key": key, "is_null": b}), p.clone());
    assert!(e("null", true) && e("empty", true) && e("missing", true));
    assert!(!e("nulls", true) && !e("zero", true));
    assert!(e("zero", false) && e("nulls", false) && !e("missing", false) && !e("empty", false));
    assert!(
        n("null", true) && n("nulls", true),
        "the field form counts a null element"
    );
    assert!(!n("missing", true) && !n("zero", true) && !n("empty", true));
    assert!(n("missing", false) && n("zero", false) && !n("null", false));
    // The object forms keep parsing and keep their meaning.
    assert!(must(json!({"is_empty": {"key": "empty"}}), p.clone()));
    assert!(!must(json!({"is_null": {"key": "nulls"}}), p));
}

#[test]
fn geo_radius_box_and_polygon() {
    let berlin = json!({"lon": 13.404954, "lat": 52.520008});
    let moscow = json!({"lon": 37.617635, "lat": 55.755814});
    let p = json!({"one": berlin, "many": [moscow, berlin], "bad": "x", "far": {"lon": 179.5, "lat": 0.0}});
    let radius = |key: &str, r: f64| {
        must(
            json!({"key": key, "geo_radius": {"center": {"lon": 13.41, "lat": 52.52}, "radius": r}}),
            p.clone(),
        )
    };
    // Berlin is ~345 m from the center.
    assert!(radius("one", 500.0) && !radius("one", 300.0));
    assert!(radius("many", 500.0), "any point of an array");
    assert!(!radius("bad", 1e9) && !radius("missing", 1e9));
    let moscow_km = super::geo::haversine_m(
        GeoPoint {
            lon: 13.404954,
            lat: 52.520008,
        },
        GeoPoint {
            lon: 37.617635,
            lat: 55.755814,
        },
    ) / 1000.0;
    assert!((moscow_km - 1608.0).abs() < 5.0, "{moscow_km}");

    let bbox = |key: &str, tl: (f64, f64), br: (f64, f64)| {
        must(
            json!({"key": key, "geo_bounding_box": {
                "top_left": {"lon": tl.0, "lat": tl.1}, "bottom_right": {"lon": br.0, "lat": br.1}}}),
            p.clone(),
        )
    };
    assert!(bbox("one", (13.0, 53.0), (14.0, 52.0)));
    assert!(!bbox("one", (14.0, 53.0), (15.0, 52.0)));
    // Across the antimeridian: from 170 east to 170 west.
    assert!(bbox("far", (170.0, 1.0), (-170.0, -1.0)));
    assert!(!bbox("one", (170.0, 53.0), (-170.0, 52.0)));

    let square = |lo: f64, hi: f64| {
        json!({"points": [
            {"lon": lo, "lat": lo}, {"lon": hi, "lat": lo}, {"lon": hi, "lat": hi},
            {"lon": lo, "lat": hi}, {"lon": lo, "lat": lo}]})
    };
    let q = json!({"inside": {"lon": 1.0, "lat": 1.0}, "hole": {"lon": 5.0, "lat": 5.0},
        "edge": {"lon": 0.0, "lat": 5.0}, "out": {"lon": 11.0, "lat": 5.0}});
    let poly = |key: &str, with_hole: bool| {
        let mut polygon = json!({"exterior": square(0.0, 10.0)});
        if with_hole {
            polygon["interiors"] = json!([square(4.0, 6.0)]);
        }
        must(json!({"key": key, "geo_polygon": polygon}), q.clone())
    };
    assert!(poly("inside", false) && poly("inside", true));
    assert!(
        poly("hole", false) && !poly("hole", true),
        "a hole excludes"
    );
    assert!(!poly("edge", false), "the boundary is outside");
    assert!(!poly("out", false));
}

#[test]
fn datetime_ranges() {
    let p = json!({
        "z": "2023-02-08T10:49:00Z",
        "offset": "2023-02-08T11:49:00+01:00",
        "naive": "2023-02-08T10:49:00",
        "space": "2023-02-08 10:49",
        "date": "2023-02-08",
        "frac": "2023-02-08T10:49:00.5Z",
        "many": ["2020-01-01", "2024-01-01"],
        "junk": "yesterday",
        "num": 5
    });
    let r = |key: &str, range: Value| must(json!({"key": key, "range": range}), p.clone());
    let at = "2023-02-08T10:49:00Z";
    for key in ["z", "offset", "naive", "space"] {
        assert!(r(key, json!({"gte": at, "lte": at})), "{key}");
        assert!(!r(key, json!({"gt": at})), "{key}");
    }
    assert!(r(
        "date",
        json!({"lt": at, "gte": "2023-02-08T00:00:00+00:00"})
    ));
    assert!(r("frac", json!({"gt": at, "lt": "2023-02-08T10:49:01Z"})));
    // The bound's own offset counts: 10:49 UTC is 12:49 at +02:00.
    assert!(r(
        "z",
        json!({"gte": "2023-02-08T12:49:00+02:00", "lte": "2023-02-08 12:49:00+0200"})
    ));
    assert!(r("many", json!({"gt": "2023-06-01"})) && !r("many", json!({"gt": "2024-06-01"})));
    assert!(!r("junk", json!({"gt": "1900-01-01"})) && !r("num", json!({"gt": "1900-01-01"})));
    assert!(!r("missing", json!({"gt": "1900-01-01"})));
    // Numbers keep the numeric range, which does not read strings.
    assert!(r("num", json!({"gt": 4})) && !r("z", json!({"gt": 0})));
}

#[test]
fn nested_objects_are_tested_one_by_one() {
    let p = json!({"dinners": [
        {"food": "meat", "liked": false},
        {"food": "cheese", "liked": true}
    ], "single": {"food": "meat", "liked": true}});
    let nested =
        |key: &str, f: Value| must(json!({"nested": {"key": key, "filter": f}}), p.clone());
    let both = json!({"must": [
        {"key": "food", "match": {"value": "meat"}},
        {"key": "liked", "match": {"value": true}}]});
    assert!(
        !nested("dinners", both.clone()),
        "no one dinner is liked meat"
    );
    assert!(nested(
        "dinners[]",
        json!({"must": [{"key": "food", "match": {"value": "cheese"}}]})
    ));
    // Without nested, the conditions may hold on different elements.
    assert!(check(
        both.clone(),
        json!({"food": ["meat", "cheese"], "liked": [false, true]})
    ));
    assert!(must(
        json!({"must": [
            {"key": "dinners[].food", "match": {"value": "meat"}},
            {"key": "dinners[].liked", "match": {"value": true}}]}),
        p.clone()
    ));
    assert!(nested(
        "dinners",
        json!({"must_not": [{"key": "liked", "match": {"value": true}}]})
    ));
    // has_id does not apply inside nested (as in Qdrant).
    assert!(!nested("dinners", json!({"must": [{"has_id": [1]}]})));
    // A single object is not an array.
    assert!(!nested(
        "single",
        json!({"must": [{"key": "food", "match": {"value": "meat"}}]})
    ));
    assert!(!nested("missing", json!({})));
}

#[test]
fn has_vector_asks_the_segment() {
    let f = filter(json!({"must": [{"has_vector": "image"}]}));
    assert!(
        !f.matches(&PointId::Num(1), &Payload::new()),
        "no segment: no vectors"
    );
    let has = |name: &str| name == "image" || name.is_empty();
    let checks = PointChecks {
        answer: &|_| None,
        answer_emptiness: &|_| None,
        has_vector: &has,
        schema: None,
    };
    let empty = Payload::new();
    let load = || Cow::Borrowed(&empty);
    let run = |f: &Filter| f.matches_with(&PointId::Num(1), &LazyPayload::new(&load), &checks);
    assert!(run(&f));
    assert!(run(&filter(json!({"must": [{"has_vector": ""}]}))));
    assert!(!run(&filter(json!({"must": [{"has_vector": "text"}]}))));
    assert!(run(&filter(json!({"must_not": [{"has_vector": "text"}]}))));
}

#[test]
fn text_without_an_index() {
    let p = json!({"s": "Good cheap shoes, cheaper boots", "n": 3});
    let m = |m: Value| must(json!({"key": "s", "match": m}), p.clone());
    assert!(m(json!({"text": "cheap shoes"})) && !m(json!({"text": "shoes cheap"})));
    assert!(!m(json!({"text": "good"})), "case-sensitive substring");
    assert!(m(json!({"phrase": "cheap shoes"})) && !m(json!({"phrase": "Good shoes"})));
    assert!(m(json!({"text_any": "sandals boots"})) && !m(json!({"text_any": "sandals heels"})));
    assert!(m(json!({"text_any": "boo"})), "words are substrings too");
    assert!(!must(json!({"key": "n", "match": {"text": "3"}}), p));
}

#[test]
fn text_with_an_index() {
    use crate::payload_schema::PayloadFieldSchema;

    let p = json!({"s": "Good cheap shoes, cheaper boots"});
    let run = |schema: Value, m: Value| {
        let mut s = PayloadSchema::new();
        s.insert(
            "s".into(),
            serde_json::from_value::<PayloadFieldSchema>(schema).unwrap(),
        );
        let checks = PointChecks {
            answer: &|_| None,
            answer_emptiness: &|_| None,
            has_vector: &|_| false,
            schema: Some(&s),
        };
        let payload = payload(p.clone());
        let load = || Cow::Borrowed(&payload);
        filter(json!({"must": [{"key": "s", "match": m}]})).matches_with(
            &PointId::Num(1),
            &LazyPayload::new(&load),
            &checks,
        )
    };
    let text = json!("text");
    // Words in any order, lowercased.
    assert!(run(text.clone(), json!({"text": "SHOES good"})));
    assert!(
        !run(text.clone(), json!({"text": "shoe"})),
        "whole words, not substrings"
    );
    assert!(!run(text.clone(), json!({"text": "shoes sandals"})));
    assert!(run(text.clone(), json!({"text_any": "sandals BOOTS"})));
    assert!(!run(text.clone(), json!({"text_any": "sandals boot"})));
    assert!(run(text.clone(), json!({"phrase": "cheap shoes"})));
    assert!(
        run(text.clone(), json!({"phrase": "shoes cheaper"})),
        "punctuation splits"
    );
    assert!(
        !run(text.clone(), json!({"phrase": "shoes cheap"})),
        "order counts"
    );
    assert!(
        !run(text.clone(), json!({"phrase": "good shoes"})),
        "adjacency counts"
    );
    assert!(
        !run(text.clone(), json!({"text": " , "})),
        "no words: nothing passes"
    );
    // Params: case kept, short words dropped, whitespace and prefix tokenizers.
    assert!(!run(
        json!({"type": "text", "lowercase": false}),
        json!({"text": "good"})
    ));
    assert!(run(
        json!({"type": "text", "min_token_len": 5}),
        json!({"text": "good cheap"})
    ));
    assert!(!run(
        json!({"type": "text", "tokenizer": "whitespace"}),
        json!({"text": "shoes"})
    ));
    assert!(run(
        json!({"type": "text", "tokenizer": "whitespace"}),
        json!({"text": "shoes,"})
    ));
    assert!(run(
        json!({"type": "text", "tokenizer": "prefix"}),
        json!({"text": "sho bo"})
    ));
    // Stemming matches word forms; stop words are dropped from both sides.
    let stems = json!({"type": "text", "stemmer": {"type": "snowball", "language": "english"}});
    assert!(run(stems.clone(), json!({"text": "shoe boot"})));
    assert!(run(stems.clone(), json!({"phrase": "cheap shoe"})));
    assert!(!run(text.clone(), json!({"text": "shoe boot"})));
    let stops = json!({"type": "text", "stopwords": "english"});
    assert!(run(stops.clone(), json!({"text": "the cheap shoes"})));
    assert!(run(stops.clone(), json!({"phrase": "shoes, and cheaper"})));
    assert!(!run(text.clone(), json!({"text": "the cheap shoes"})));
    assert!(
        !run(stops.clone(), json!({"text": "the and"})),
        "only stop words: nothing passes"
    );
    let custom = json!({"type": "text", "stopwords": {"custom": ["Good"]}});
    assert!(run(custom, json!({"text": "good boots"})));
    // Another index type leaves the substring match.
    assert!(run(json!("keyword"), json!({"text": "cheap shoes"})));
    assert!(!run(json!("keyword"), json!({"text": "shoes cheap"})));
}

// ---- Property test: `matches` against a reference evaluator that flattens the payload first. ----

/// Every object member in the payload with its dotted key path (array levels are transparent).
fn flatten<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push((path.clone(), child));
                flatten(&path, child, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(prefix, item, out);
            }
        }
        _ => {}
    }
}

fn as_json(m: &MatchValue) -> Value {
    match m {
        MatchValue::Bool(b) => json!(b),
        MatchValue::Integer(i) => json!(i),
        MatchValue::Keyword(s) => json!(s),
    }
}

fn ref_equal(m: &MatchValue, v: &Value) -> bool {
    match (as_json(m), v) {
        (Value::Number(a), Value::Number(b)) => {
            a.as_f64() == b.as_f64() && b.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (a, b) => a == *b,
    }
}

fn ref_scalar(cond: &FieldCondition, v: &Value) -> bool {
    let by_match = match &cond.match_ {
        Some(Match::Value { value }) => ref_equal(value, v),
        Some(Match::Any { any }) => any.iter().any(|m| ref_equal(m, v)),
        Some(Match::Except { except }) => {
            *v != Value::Null && except.iter().all(|m| !ref_equal(m, v))
        }
        Some(Match::Text { text }) => {
            matches!(v, Value::String(s) if s.contains(text.as_str()))
        }
        Some(_) => unreachable!("not generated"),
        None => false,
    };
    let by_range = match (&cond.range, v) {
        (Some(RangeCondition::Number(r)), Value::Number(n)) => {
            let x = n.as_f64().unwrap();
            [
                (r.gt, x > r.gt.unwrap_or(0.0)),
                (r.gte, x >= r.gte.unwrap_or(0.0)),
                (r.lt, x < r.lt.unwrap_or(0.0)),
                (r.lte, x <= r.lte.unwrap_or(0.0)),
            ]
            .iter()
            .all(|(bound, ok)| bound.is_none() || *ok)
        }
        _ => false,
    };
    by_match || by_range
}

fn values_at<'a>(
    flat: &'a [(String, &'a Value)],
    key: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    flat.iter().filter(move |(p, _)| p == key).map(|(_, v)| *v)
}

fn ref_condition(c: &Condition, id: &PointId, flat: &[(String, &Value)]) -> bool {
    match c {
        Condition::Field(f) => values_at(flat, &f.key).any(|v| match v {
            Value::Array(items) => items.iter().any(|x| ref_scalar(f, x)),
            _ => ref_scalar(f, v),
        }),
        Condition::HasId(h) => h.has_id.iter().any(|x| x == id),
        Condition::IsEmpty(e) => {
            values_at(flat, &e.is_empty.key).all(|v| *v == json!(null) || *v == json!([]))
        }
        Condition::IsNull(n) => values_at(flat, &n.is_null.key).any(|v| *v == json!(null)),
        Condition::Filter(f) => ref_filter(f, id, flat),
        Condition::HasVector(_) | Condition::Nested(_) => unreachable!("not generated"),
    }
}

fn ref_filter(f: &Filter, id: &PointId, flat: &[(String, &Value)]) -> bool {
    let list = |c: &Option<OneOrMany<Condition>>| {
        c.as_ref()
            .map(|c| c.as_slice().to_vec())
            .unwrap_or_default()
    };
    let must = list(&f.must);
    let should = list(&f.should);
    let must_not = list(&f.must_not);
    let mut ok = true;
    for c in &must {
        ok = ok && ref_condition(c, id, flat);
    }
    if !should.is_empty() {
        ok = ok && should.iter().filter(|c| ref_condition(c, id, flat)).count() > 0;
    }
    ok && must_not
        .iter()
        .filter(|c| ref_condition(c, id, flat))
        .count()
        == 0
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(|i| json!(i)),
        prop::sample::select(vec![1.0f64, 2.5, -1.0, 0.0]).prop_map(|f| json!(f)),
        prop::sample::select(vec!["x", "y", "xy"]).prop_map(|s| json!(s)),
    ]
}

fn key_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key_name(), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn payload_strategy() -> impl Strategy<Value = Payload> {
    prop::collection::btree_map(key_name(), value(), 0..4).prop_map(|m| m.into_iter().collect())
}

fn match_value() -> impl Strategy<Value = MatchValue> {
    prop_oneof![
        any::<bool>().prop_map(MatchValue::Bool),
        (-3i64..3).prop_map(MatchValue::Integer),
        prop::sample::select(vec!["x", "y", "xy"]).prop_map(|s| MatchValue::Keyword(s.into())),
    ]
}

fn bound() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(prop::sample::select(vec![-2.0f64, 0.0, 1.0, 2.5]))
}

fn condition() -> BoxedStrategy<Condition> {
    let key = prop::sample::select(vec!["a", "b", "c", "a.b", "a.c", "b.a", "a.b.c", "c.c"])
        .prop_map(String::from);
    let field = (
        key.clone(),
        prop::option::of(prop_oneof![
            match_value().prop_map(|value| Match::Value { value }),
            prop::collection::vec(match_value(), 0..3).prop_map(|any| Match::Any { any }),
            prop::collection::vec(match_value(), 0..3).prop_map(|except| Match::Except { except }),
            prop::sample::select(vec!["x", "y", ""]).prop_map(|t| Match::Text { text: t.into() }),
        ]),
        prop::option::of(
            (bound(), bound(), bound(), bound())
                .prop_map(|(gt, gte, lt, lte)| RangeCondition::Number(Range { gt, gte, lt, lte })),
        ),
    )
        .prop_map(|(key, match_, range)| {
            Condition::Field(FieldCondition {
                key,
                match_,
                range,
                ..Default::default()
            })
        });
    let leaf = prop_oneof![
        4 => field,
        1 => key.clone().prop_map(|key| Condition::IsEmpty(IsEmptyCondition { is_empty: PayloadField { key } })),
        1 => key.prop_map(|key| Condition::IsNull(IsNullCondition { is_null: PayloadField { key } })),
        1 => prop::collection::vec((0u64..4).prop_map(PointId::Num), 0..3).prop_map(|has_id| Condition::HasId(HasIdCondition { has_id })),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        filter_of(inner).prop_map(Condition::Filter)
    })
    .boxed()
}

fn filter_of(c: impl Strategy<Value = Condition> + Clone) -> impl Strategy<Value = Filter> {
    let list =
        move || prop::option::of(prop::collection::vec(c.clone(), 0..3).prop_map(OneOrMany::Many));
    (list(), list(), list()).prop_map(|(must, should, must_not)| Filter {
        must,
        should,
        must_not,
        min_should: None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn matches_agrees_with_reference(
        p in payload_strategy(),
        f in filter_of(condition()),
        id in (0u64..4).prop_map(PointId::Num),
    ) {
        let mut flat = Vec::new();
        let root = Value::Object(p.clone());
        flatten("", &root, &mut flat);
        prop_assert_eq!(f.matches(&id, &p), ref_filter(&f, &id, &flat), "payload {} filter {}", root, serde_json::to_string(&f).unwrap());
    }
}
