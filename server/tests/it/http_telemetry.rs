//! `/telemetry` in Qdrant's shape, Qdrant's metric names in `/metrics`, and
//! `/collections/{name}/optimizations`: each checked against the requests the test itself made.

use serde_json::{json, Value};

use crate::support::{Client, QuiverProcess};

/// The request statistics `/telemetry` reports for `"METHOD pattern"` and a status.
fn rest_stats(telemetry: &Value, route: &str, status: u16) -> Value {
    telemetry["requests"]["rest"]["responses"][route][status.to_string()].clone()
}

/// Two collections, one with 5 points and one empty, plus a known set of requests.
fn populate(c: &Client) {
    c.create_single("tel", 2, "Dot");
    c.create_single("tel_empty", 3, "Cosine");
    let points: Vec<Value> = (1..=5)
        .map(|i| json!({"id": i, "vector": [i as f32, 1.0]}))
        .collect();
    c.upsert("tel", json!(points));
    for _ in 0..3 {
        c.ok("GET", "/collections/tel", None);
    }
    c.err("GET", "/collections/missing", None, 404);
}

#[test]
fn telemetry_counts_requests_and_describes_collections() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    populate(&c);

    let t = c.ok("GET", "/telemetry", None);
    assert!(
        uuid::Uuid::parse_str(t["id"].as_str().unwrap()).is_ok(),
        "{t}"
    );
    assert_eq!(t["app"]["name"], "quiver");
    assert_eq!(t["app"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(t["app"]["startup"].as_str().unwrap().ends_with('Z'), "{t}");
    assert_eq!(t["collections"]["number_of_collections"], 2);
    // Level 0 (the default) lists no collections.
    assert!(t["collections"].get("collections").is_none(), "{t}");

    let ok = rest_stats(&t, "GET /collections/{name}", 200);
    assert_eq!(ok["count"], 3, "{t}");
    assert_eq!(ok["fail_count"], 0);
    let (min, avg, max) = (
        ok["min_duration_micros"].as_f64().unwrap(),
        ok["avg_duration_micros"].as_f64().unwrap(),
        ok["max_duration_micros"].as_f64().unwrap(),
    );
    assert!(0.0 < min && min <= avg && avg <= max, "{ok}");
    let total = ok["total_duration_micros"].as_f64().unwrap();
    assert!((total - 3.0 * avg).abs() <= 2.0, "{ok}");
    let missing = rest_stats(&t, "GET /collections/{name}", 404);
    assert_eq!(missing["count"], 1, "{t}");
    assert_eq!(missing["fail_count"], 1);
    assert_eq!(
        rest_stats(&t, "PUT /collections/{name}/points", 200)["count"],
        1
    );
    assert_eq!(rest_stats(&t, "PUT /collections/{name}", 200)["count"], 2);
    assert_eq!(t["requests"]["grpc"]["responses"], json!({}));

    // A request is counted once it is answered: the first telemetry call shows up in the second.
    let t = c.ok("GET", "/telemetry?details_level=1", None);
    assert_eq!(rest_stats(&t, "GET /telemetry", 200)["count"], 1, "{t}");
    let aggregated = t["collections"]["collections"].as_array().unwrap();
    assert_eq!(aggregated.len(), 2, "{t}");
    let mut vectors: Vec<u64> = aggregated
        .iter()
        .map(|a| a["vectors"].as_u64().unwrap())
        .collect();
    vectors.sort();
    assert_eq!(vectors, [0, 5]);
    assert!(aggregated.iter().all(|a| a.get("id").is_none()
        && a["optimizers_status"] == "ok"
        && a["params"]["vectors"]["size"].is_u64()));

    let t = c.ok("GET", "/telemetry?details_level=2", None);
    let full = t["collections"]["collections"].as_array().unwrap();
    let tel = full.iter().find(|f| f["id"] == "tel").expect("tel listed");
    assert_eq!(tel["config"]["params"]["vectors"]["size"], 2);
    assert_eq!(tel["config"]["params"]["vectors"]["distance"], "Dot");
    let local = &tel["shards"][0]["local"];
    assert_eq!(local["num_points"], 5, "{tel}");
    assert_eq!(local["num_vectors"], 5);
    assert_eq!(local["num_vectors_by_name"], json!({"": 5}));
    assert!(local["segments_count"].as_u64().unwrap() >= 1);
    assert_eq!(tel["shards"][0]["remote"], json!([]));
    let empty = full.iter().find(|f| f["id"] == "tel_empty").unwrap();
    assert_eq!(empty["shards"][0]["local"]["num_points"], 0);

    // Anonymized: no collection name is left anywhere in the document.
    let (_, text) = c
        .send(
            "GET",
            "/telemetry?details_level=2&anonymize=true",
            &[],
            None,
        )
        .unwrap();
    assert!(
        !text.contains("\"tel\"") && !text.contains("tel_empty"),
        "{text}"
    );
    c.err("GET", "/telemetry?details_level=x", None, 400);
}

#[test]
fn metrics_carry_qdrant_names() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    populate(&c);
    let (status, text) = c.try_raw("GET", "/metrics", None).unwrap();
    assert_eq!(status, 200);
    let value = |series: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        line[series.len() + 1..].parse().unwrap()
    };
    let has = |needle: &str| assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    // Quiver's own names stay.
    has(
        "quiver_http_requests_total{method=\"GET\",route=\"/collections/{name}\",status=\"200\"} 3",
    );
    has(&format!(
        "app_info{{name=\"quiver\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    ));
    assert_eq!(value("collections_total"), 2.0);
    assert_eq!(value("collections_vector_total"), 5.0);
    has("# TYPE rest_responses_total counter");
    let get = "{method=\"GET\",endpoint=\"/collections/{name}\",status=\"200\"}";
    let missing = "{method=\"GET\",endpoint=\"/collections/{name}\",status=\"404\"}";
    assert_eq!(value(&format!("rest_responses_total{get}")), 3.0);
    assert_eq!(value(&format!("rest_responses_fail_total{get}")), 0.0);
    assert_eq!(value(&format!("rest_responses_total{missing}")), 1.0);
    assert_eq!(value(&format!("rest_responses_fail_total{missing}")), 1.0);
    let min = value(&format!("rest_responses_min_duration_seconds{get}"));
    let avg = value(&format!("rest_responses_avg_duration_seconds{get}"));
    let max = value(&format!("rest_responses_max_duration_seconds{get}"));
    assert!(0.0 < min && min <= avg && avg <= max, "{min} {avg} {max}");
    has("# TYPE rest_responses_duration_seconds histogram");
    let labels = "method=\"GET\",endpoint=\"/collections/{name}\",status=\"200\"";
    assert_eq!(
        value(&format!(
            "rest_responses_duration_seconds_bucket{{{labels},le=\"+Inf\"}}"
        )),
        3.0
    );
    assert_eq!(
        value(&format!(
            "rest_responses_duration_seconds_count{{{labels}}}"
        )),
        3.0
    );
    let sum = value(&format!("rest_responses_duration_seconds_sum{{{labels}}}"));
    assert!((sum - 3.0 * avg).abs() < 1e-6, "{sum} vs {avg}");
}

/// The optimizations answer once `done` holds for it (up to 30 s); panics with the last answer.
fn wait_for(c: &Client, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = c.ok("GET", path, None);
        if done(&last) {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{path} never reached the expected state: {last}");
}

#[test]
fn optimizations_report_seals_and_vacuums() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.ok(
        "PUT",
        "/collections/opt",
        Some(&json!({
            "vectors": {"size": 2, "distance": "Dot"},
            "optimizers_config": {
                "segment_max_points": 3,
                "default_segment_number": 3,
                "vacuum_min_vector_number": 0
            }
        })),
    );
    let path = "/collections/opt/optimizations";
    let fresh = c.ok("GET", path, None);
    assert_eq!(fresh["running"], json!([]), "{fresh}");
    assert!(fresh.get("completed").is_none() && fresh.get("queued").is_none());
    assert_eq!(fresh["summary"]["idle_segments"], 0);

    let points: Vec<Value> = (1..=7)
        .map(|i| json!({"id": i, "vector": [i as f32, 1.0]}))
        .collect();
    c.upsert("opt", json!(points));
    c.wait_for_seals("opt", 3);
    let all = format!("{path}?with=queued,completed,idle_segments");
    let report = wait_for(&c, &all, |r| {
        let seals = r["completed"].as_array().unwrap().iter();
        seals
            .map(|s| s["progress"]["done"].as_u64().unwrap())
            .sum::<u64>()
            == 7
    });
    let completed = report["completed"].as_array().unwrap();
    for seal in completed {
        assert_eq!(seal["optimizer"], "seal", "{report}");
        assert_eq!(seal["status"], "done");
        assert_eq!(seal["progress"]["done"], seal["progress"]["total"]);
        assert!(seal["progress"]["finished_at"].is_string());
        assert!(seal["progress"]["duration_sec"].as_f64().unwrap() >= 0.0);
        let read: u64 = seal["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["points_count"].as_u64().unwrap())
            .sum();
        assert_eq!(read, seal["progress"]["total"].as_u64().unwrap());
    }
    // Seven points in segments of at most three: three sealed segments, none needing work; each
    // seal's UUID is that of a segment it wrote.
    let idle = report["idle_segments"].as_array().unwrap();
    assert_eq!(idle.len(), 3, "{report}");
    assert_eq!(report["summary"]["idle_segments"], 3);
    assert_eq!(report["summary"]["queued_optimizations"], 0);
    assert_eq!(report["queued"], json!([]));
    assert_eq!(
        idle.iter()
            .map(|s| s["points_count"].as_u64().unwrap())
            .sum::<u64>(),
        7
    );
    for seal in completed {
        assert!(idle.iter().any(|s| s["uuid"] == seal["uuid"]), "{report}");
    }
    let limited = c.ok(
        "GET",
        &format!("{path}?with=completed&completed_limit=0"),
        None,
    );
    assert_eq!(limited["completed"], json!([]));

    // Deleting two of a sealed segment's three points passes the vacuum threshold: the background
    // optimizer rewrites it with the one point left.
    c.ok(
        "POST",
        "/collections/opt/points/delete?wait=true",
        Some(&json!({"points": [1, 2]})),
    );
    let report = wait_for(&c, &all, |r| {
        r["completed"].as_array().unwrap()[0]["optimizer"] == "vacuum"
    });
    let vacuum = &report["completed"][0];
    assert_eq!(vacuum["status"], "done", "{report}");
    assert_eq!(vacuum["segments"].as_array().unwrap().len(), 1);
    assert_eq!(vacuum["segments"][0]["points_count"], 1);
    assert_eq!(vacuum["progress"]["done"], 1);
    assert!(report["idle_segments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["uuid"] == vacuum["uuid"] && s["points_count"] == 1));

    // Telemetry counts the points optimizations wrote: seven sealed, one rewritten.
    let t = c.ok("GET", "/telemetry?details_level=2", None);
    let local = &t["collections"]["collections"][0]["shards"][0]["local"];
    assert_eq!(local["total_optimized_points"], 8, "{t}");
    assert_eq!(local["num_points"], 5);

    // A target of one segment merges the three (five points) into one.
    c.ok(
        "PATCH",
        "/collections/opt",
        Some(&json!({"optimizers_config": {"default_segment_number": 1}})),
    );
    let report = wait_for(&c, &all, |r| {
        r["completed"].as_array().unwrap()[0]["optimizer"] == "merge"
    });
    let merge = &report["completed"][0];
    assert_eq!(merge["status"], "done", "{report}");
    assert_eq!(merge["segments"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(merge["progress"]["done"], 5);
    assert_eq!(merge["progress"]["total"], 5);
    let idle = report["idle_segments"].as_array().unwrap();
    assert_eq!(idle.len(), 1, "{report}");
    assert_eq!(idle[0]["uuid"], merge["uuid"]);
    assert_eq!(idle[0]["points_count"], 5);

    c.err("GET", &format!("{path}?with=everything"), None, 400);
    c.err("GET", "/collections/missing/optimizations", None, 404);
}
