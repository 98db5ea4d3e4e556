//! `order_by` in `points/scroll` and as a Query API query: points in the order of an indexed integer,
//! float or datetime field, ascending or descending, from `start_from`; a point appears once per
//! value it holds; scroll has no `next_page_offset`; the 400s without a range index and with an
//! offset. Expected orders are computed here from the payloads of `http_facet`.

use serde_json::{json, Value};

use crate::http_facet::{fill, values, N};
use crate::support::QuiverProcess;

/// (value, id) pairs of `key` over every point, in the asked direction, from `start` (compared as
/// numbers; datetimes are compared as their strings, which sort chronologically here).
fn expected(key: &str, desc: bool, start: Option<&Value>, limit: usize) -> Vec<(Value, u64)> {
    let mut out: Vec<(Value, u64)> = Vec::new();
    for i in 0..N {
        for v in values(i, key) {
            if !out.contains(&(v.clone(), i)) {
                out.push((v, i));
            }
        }
    }
    let cmp = |a: &Value, b: &Value| match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.as_f64().unwrap().total_cmp(&b.as_f64().unwrap()),
    };
    if let Some(s) = start {
        out.retain(|(v, _)| {
            let c = cmp(v, s);
            if desc {
                c.is_le()
            } else {
                c.is_ge()
            }
        });
    }
    out.sort_by(|a, b| {
        let c = cmp(&a.0, &b.0).then(a.1.cmp(&b.1));
        if desc {
            c.reverse()
        } else {
            c
        }
    });
    out.truncate(limit);
    out
}

fn ids(points: &Value) -> Vec<u64> {
    points
        .as_array()
        .unwrap_or_else(|| panic!("{points}"))
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn scroll_and_query_order_by_integer_float_and_datetime_fields() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    fill(&c, "o");
    let cases = [
        ("num", json!("num"), false, None),
        (
            "num",
            json!({"key": "num", "direction": "desc"}),
            true,
            None,
        ),
        (
            "num",
            json!({"key": "num", "start_from": 5}),
            false,
            Some(json!(5)),
        ),
        (
            "num",
            json!({"key": "num", "direction": "desc", "start_from": 7}),
            true,
            Some(json!(7)),
        ),
        (
            "price",
            json!({"key": "price", "direction": "asc"}),
            false,
            None,
        ),
        (
            "price",
            json!({"key": "price", "direction": "desc", "start_from": 1.5}),
            true,
            Some(json!(1.5)),
        ),
        ("when", json!({"key": "when"}), false, None),
        (
            "when",
            json!({"key": "when", "direction": "desc", "start_from": "2024-01-15T00:00:00Z"}),
            true,
            Some(json!("2024-01-15T00:00:00Z")),
        ),
    ];
    for (key, order_by, desc, start) in cases {
        let want = expected(key, desc, start.as_ref(), 12);
        let want_ids: Vec<u64> = want.iter().map(|(_, i)| *i).collect();

        let body = json!({"order_by": order_by, "limit": 12, "with_payload": true});
        let page = c.ok("POST", "/collections/o/points/scroll", Some(&body));
        assert_eq!(ids(&page["points"]), want_ids, "scroll {order_by}: {page}");
        assert_eq!(page["next_page_offset"], Value::Null, "{page}");
        let first = &page["points"][0];
        match key {
            "when" => assert!(first["order_value"].is_i64(), "{first}"),
            _ => assert_eq!(first["order_value"].as_f64(), want[0].0.as_f64(), "{first}"),
        }

        let body = json!({"query": {"order_by": order_by}, "limit": 12});
        let res = c.ok("POST", "/collections/o/points/query", Some(&body));
        assert_eq!(ids(&res["points"]), want_ids, "query {order_by}: {res}");
        assert_eq!(
            res["points"][0]["order_value"], first["order_value"],
            "{res}"
        );
    }

    // A point holding two values appears once for each (point 0 has num [0, 100]).
    let body = json!({"order_by": {"key": "num", "direction": "desc"}, "limit": 100});
    let page = c.ok("POST", "/collections/o/points/scroll", Some(&body));
    let all = ids(&page["points"]);
    assert_eq!(all.iter().filter(|&&i| i == 0).count(), 2, "{page}");
    assert_eq!(all[0], 20, "{page}");

    // With a filter, and under a prefetch: the prefetch's hits in the field's order.
    let filter = json!({"must": [{"key": "flag", "match": {"value": true}}]});
    let body = json!({"order_by": "price", "filter": filter, "limit": 100});
    let page = c.ok("POST", "/collections/o/points/scroll", Some(&body));
    let mut want: Vec<(f64, u64)> = (0..N)
        .filter(|i| i.is_multiple_of(3))
        .flat_map(|i| {
            values(i, "price")
                .into_iter()
                .map(move |v| (v.as_f64().unwrap(), i))
        })
        .collect();
    want.sort_by(|a, b| a.0.total_cmp(&b.0));
    let want_ids: Vec<u64> = want.iter().map(|w| w.1).collect();
    assert_eq!(ids(&page["points"]), want_ids, "{page}");
    let body = json!({"prefetch": {"query": [1.0, 0.0], "filter": filter, "limit": 100},
        "query": {"order_by": "price"}, "limit": 100});
    let res = c.ok("POST", "/collections/o/points/query", Some(&body));
    assert_eq!(ids(&res["points"]), want_ids, "{res}");
}

#[test]
fn order_by_needs_a_range_index() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    fill(&c, "o");
    for key in ["tag", "flag", "unindexed"] {
        let body = json!({"order_by": key});
        let err = c.err("POST", "/collections/o/points/scroll", Some(&body), 400);
        assert!(err.contains("No range index for `order_by` key"), "{err}");
        let body = json!({"query": {"order_by": {"key": key}}});
        let err = c.err("POST", "/collections/o/points/query", Some(&body), 400);
        assert!(err.contains("No range index for `order_by` key"), "{err}");
    }
    let body = json!({"order_by": "num", "offset": 3});
    let err = c.err("POST", "/collections/o/points/scroll", Some(&body), 400);
    assert!(err.contains("Cannot use an `offset`"), "{err}");
    let body = json!({"order_by": {"key": "num", "direction": "up"}});
    c.err("POST", "/collections/o/points/scroll", Some(&body), 400);
}
