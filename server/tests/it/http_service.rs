//! Service routes, the OpenAPI document, startup refusals and graceful shutdown.

use serde_json::{json, Value};

use crate::http_auth::routes;
use crate::support::{quiver_bin, QuiverProcess, TestDir};

#[test]
fn health_root_and_docs() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    for path in ["/healthz", "/livez", "/readyz"] {
        let (status, text) = c.try_raw("GET", path, None).unwrap();
        assert_eq!(status, 200, "{path}: {text}");
    }
    let (_, root) = c.call("GET", "/", None);
    assert_eq!(root["title"], "quiver");
    // `version` is the Qdrant API version (qdrant-client warns unless its major matches and its
    // minor is at most one apart); Quiver's own version is beside it.
    let version = root["version"].as_str().unwrap();
    assert!(version.starts_with("1."), "{version}");
    assert_eq!(root["quiver_version"], env!("CARGO_PKG_VERSION"));
    assert!(root.as_object().unwrap().contains_key("commit"));
    let (status, html) = c.try_raw("GET", "/docs", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        html.contains("openapi.json") && !html.contains("https://"),
        "docs page must not load from a CDN"
    );
}

#[test]
fn openapi_document_covers_every_route() {
    let server = QuiverProcess::start(&[]);
    let (status, doc) = server.client().call("GET", "/openapi.json", None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (method, path, _, _, _) in routes() {
        let op = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from openapi.json"))[method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} missing from openapi.json");
        assert!(
            op["responses"]["200"].is_object(),
            "{method} {path} has no 200 response"
        );
        documented += 1;
    }
    let total: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented, total,
        "openapi.json documents routes the tests do not know"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "CreateCollection",
        "UpsertPoints",
        "QueryRequestDto",
        "ErrorEnvelope",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    assert!(doc["components"]["securitySchemes"]["api-key"].is_object());
}

#[test]
fn metrics_count_requests_and_describe_collections() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("m", 2, "Dot");
    c.upsert(
        "m",
        json!([{"id": 1, "vector": [1.0, 0.0]}, {"id": 2, "vector": [0.0, 1.0]}]),
    );
    c.err("GET", "/collections/none", None, 404);
    let (status, text) = c.try_raw("GET", "/metrics", None).unwrap();
    assert_eq!(status, 200);
    let has = |needle: &str| assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    has("# TYPE quiver_http_requests_total counter");
    has("quiver_http_requests_total{method=\"PUT\",route=\"/collections/{name}/points\",status=\"200\"} 1");
    has(
        "quiver_http_requests_total{method=\"GET\",route=\"/collections/{name}\",status=\"404\"} 1",
    );
    has("# TYPE quiver_http_request_duration_seconds histogram");
    has("quiver_http_request_duration_seconds_bucket{method=\"PUT\",route=\"/collections/{name}/points\",status=\"200\",le=\"+Inf\"} 1");
    has("quiver_collection_points{collection=\"m\"} 2");
    has("quiver_collection_segments{collection=\"m\"}");
    has("quiver_collection_deleted_points{collection=\"m\"}");
    has("quiver_collection_wal_bytes{collection=\"m\"}");
    // Unknown paths share one series, so scanners cannot blow up the series count.
    c.err("GET", "/random/path/1", None, 404);
    let (_, text) = c.try_raw("GET", "/metrics", None).unwrap();
    assert!(text.contains("route=\"unmatched\""));
    assert!(!text.contains("/random/path/1"));
}

#[test]
fn refuses_public_bind_without_key_and_stops_gracefully() {
    let dir = TestDir::new();
    let out = std::process::Command::new(quiver_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--host", "0.0.0.0", "--port", "0"])
        .env_remove("QUIVER_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--api-key") && stderr.contains("--allow-unauthenticated"),
        "{stderr}"
    );

    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    server.client().create_single("g", 2, "Dot");
    server
        .client()
        .upsert("g", json!([{"id": 7, "vector": [1.0, 1.0]}]));
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");

    // Everything acknowledged before the signal is there after a restart.
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let got: Value = server.client().ok("GET", "/collections/g/points/7", None);
    assert_eq!(got["vector"], json!([1.0, 1.0]));
}
