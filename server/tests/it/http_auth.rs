//! The auth matrix: no key, wrong key, read-only key and admin key against every route.

use serde_json::{json, Value};

use crate::support::{Client, QuiverProcess};

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Access {
    Open,
    Read,
    Write,
    /// Admin key only, and the admin's answer is this status (a route probed with a missing resource).
    WriteAnswers(u16),
    /// Either key, and both get this status (an embedding route on a server without a model).
    ReadAnswers(u16),
}

/// Every route the server serves: method, OpenAPI path, a concrete path, a valid body, access.
pub fn routes() -> Vec<(&'static str, &'static str, String, Option<Value>, Access)> {
    use Access::*;
    let c = "/collections/{name}";
    let p = |s: &str| format!("/collections/auth{s}");
    let q = json!([1.0, 0.0]);
    vec![
        ("GET", "/", "/".into(), None, Open),
        ("GET", "/healthz", "/healthz".into(), None, Open),
        ("GET", "/livez", "/livez".into(), None, Open),
        ("GET", "/readyz", "/readyz".into(), None, Open),
        ("GET", "/openapi.json", "/openapi.json".into(), None, Open),
        ("GET", "/docs", "/docs".into(), None, Open),
        ("GET", "/metrics", "/metrics".into(), None, Read),
        ("GET", "/telemetry", "/telemetry".into(), None, Read),
        ("GET", "/collections", "/collections".into(), None, Read),
        ("GET", c, p(""), None, Read),
        (
            "GET",
            "/collections/{name}/exists",
            p("/exists"),
            None,
            Read,
        ),
        (
            "GET",
            "/collections/{name}/optimizations",
            p("/optimizations"),
            None,
            Read,
        ),
        // Aliases: re-creating the same alias is idempotent, so both test passes can send it.
        (
            "POST",
            "/collections/aliases",
            "/collections/aliases".into(),
            Some(json!({"actions": [
                {"create_alias": {"collection_name": "auth", "alias_name": "auth-alias"}}
            ]})),
            Write,
        ),
        ("GET", "/aliases", "/aliases".into(), None, Read),
        (
            "GET",
            "/collections/{name}/aliases",
            p("/aliases"),
            None,
            Read,
        ),
        (
            "GET",
            "/collections/{name}/points/{id}",
            p("/points/1"),
            None,
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points",
            p("/points"),
            Some(json!({"ids": [1]})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/scroll",
            p("/points/scroll"),
            Some(json!({})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/facet",
            p("/facet"),
            Some(json!({"key": "tag"})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/count",
            p("/points/count"),
            Some(json!({})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/search",
            p("/points/search"),
            Some(json!({"vector": q, "limit": 1})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/search/batch",
            p("/points/search/batch"),
            Some(json!({"searches": [{"vector": q, "limit": 1}]})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/query",
            p("/points/query"),
            Some(json!({"query": q})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/query/batch",
            p("/points/query/batch"),
            Some(json!({"searches": [{"query": q}]})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/search/groups",
            p("/points/search/groups"),
            Some(json!({"vector": q, "group_by": "k", "group_size": 1, "limit": 1})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/query/groups",
            p("/points/query/groups"),
            Some(json!({"query": q, "group_by": "k"})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/recommend",
            p("/points/recommend"),
            Some(json!({"positive": [q], "limit": 1})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/recommend/batch",
            p("/points/recommend/batch"),
            Some(json!({"searches": [{"positive": [q], "limit": 1}]})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/recommend/groups",
            p("/points/recommend/groups"),
            Some(json!({"positive": [q], "group_by": "k", "group_size": 1, "limit": 1})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/discover",
            p("/points/discover"),
            Some(json!({"target": q, "context": [{"positive": q, "negative": q}], "limit": 1})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/discover/batch",
            p("/points/discover/batch"),
            Some(json!({"searches": [{"target": q, "limit": 1}]})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/search/matrix/pairs",
            p("/points/search/matrix/pairs"),
            Some(json!({"sample": 2, "limit": 1})),
            Read,
        ),
        (
            "POST",
            "/collections/{name}/points/search/matrix/offsets",
            p("/points/search/matrix/offsets"),
            Some(json!({"sample": 2, "limit": 1})),
            Read,
        ),
        (
            "PUT",
            "/collections/{name}/points",
            p("/points"),
            Some(json!({"points": [{"id": 2, "vector": q}]})),
            Write,
        ),
        (
            "POST",
            "/collections/{name}/points/delete",
            p("/points/delete"),
            Some(json!({"points": [2]})),
            Write,
        ),
        (
            "POST",
            "/collections/{name}/points/payload",
            p("/points/payload"),
            Some(json!({"payload": {"a": 1}, "points": [1]})),
            Write,
        ),
        (
            "PUT",
            "/collections/{name}/points/payload",
            p("/points/payload"),
            Some(json!({"payload": {"a": 2}, "points": [1]})),
            Write,
        ),
        (
            "POST",
            "/collections/{name}/points/payload/delete",
            p("/points/payload/delete"),
            Some(json!({"keys": ["a"], "points": [1]})),
            Write,
        ),
        (
            "POST",
            "/collections/{name}/points/payload/clear",
            p("/points/payload/clear"),
            Some(json!({"points": [1]})),
            Write,
        ),
        (
            "PUT",
            "/collections/{name}/points/vectors",
            p("/points/vectors"),
            Some(json!({"points": [{"id": 1, "vector": [0.0, 1.0]}]})),
            Write,
        ),
        (
            "POST",
            "/collections/{name}/points/vectors/delete",
            p("/points/vectors/delete"),
            Some(
                json!({"filter": {"must": [{"key": "none", "match": {"value": 1}}]}, "vector": [""]}),
            ),
            Write,
        ),
        (
            "POST",
            "/collections/{name}/points/batch",
            p("/points/batch"),
            Some(json!({"operations": [{"set_payload": {"payload": {"b": 1}, "points": [1]}}]})),
            Write,
        ),
        (
            "PUT",
            "/collections/{name}/index",
            p("/index"),
            Some(json!({"field_name": "a", "field_schema": "integer"})),
            Write,
        ),
        (
            "DELETE",
            "/collections/{name}/index/{field_name}",
            p("/index/a"),
            None,
            Write,
        ),
        // Quiver's documents route embeds, so without --model it is a 400 (after the key check).
        (
            "POST",
            "/collections/{name}/documents",
            p("/documents"),
            Some(json!({"documents": [{"id": "a", "text": "x"}]})),
            WriteAnswers(400),
        ),
        (
            "PUT",
            c,
            "/collections/auth2".into(),
            Some(json!({"vectors": {"size": 2, "distance": "Dot"}})),
            Write,
        ),
        ("DELETE", c, "/collections/auth2".into(), None, Write),
        (
            "PATCH",
            c,
            p(""),
            Some(json!({"metadata": {"owner": "auth"}})),
            Write,
        ),
        // Added, then deleted, so that each pass finds the collection as it was.
        (
            "PUT",
            "/collections/{name}/vectors/{vector}",
            p("/vectors/extra"),
            Some(json!({"sparse": {}})),
            Write,
        ),
        (
            "DELETE",
            "/collections/{name}/vectors/{vector}",
            p("/vectors/extra"),
            None,
            Write,
        ),
        (
            "POST",
            "/collections/{name}/snapshots",
            p("/snapshots"),
            None,
            Write,
        ),
        (
            "GET",
            "/collections/{name}/snapshots",
            p("/snapshots"),
            None,
            Write,
        ),
        (
            "GET",
            "/collections/{name}/snapshots/{snapshot}",
            p("/snapshots/none.snapshot"),
            None,
            WriteAnswers(404),
        ),
        (
            "DELETE",
            "/collections/{name}/snapshots/{snapshot}",
            p("/snapshots/none.snapshot"),
            None,
            WriteAnswers(404),
        ),
        (
            "PUT",
            "/collections/{name}/snapshots/recover",
            p("/snapshots/recover"),
            Some(json!({"location": "none.snapshot"})),
            WriteAnswers(404),
        ),
        (
            "POST",
            "/collections/{name}/snapshots/upload",
            p("/snapshots/upload"),
            Some(json!({})),
            WriteAnswers(400),
        ),
        ("POST", "/snapshots", "/snapshots".into(), None, Write),
        ("GET", "/snapshots", "/snapshots".into(), None, Write),
        (
            "GET",
            "/snapshots/{snapshot}",
            "/snapshots/none.snapshot".into(),
            None,
            WriteAnswers(404),
        ),
        (
            "DELETE",
            "/snapshots/{snapshot}",
            "/snapshots/none.snapshot".into(),
            None,
            WriteAnswers(404),
        ),
        // Embedding reads no data, so the read-only key may embed; without --model it is a 400.
        (
            "POST",
            "/embed",
            "/embed".into(),
            Some(json!({"inputs": "a"})),
            ReadAnswers(400),
        ),
        (
            "POST",
            "/embed_all",
            "/embed_all".into(),
            Some(json!({"inputs": "a"})),
            ReadAnswers(400),
        ),
        (
            "POST",
            "/v1/embeddings",
            "/v1/embeddings".into(),
            Some(json!({"model": "m", "input": "a"})),
            ReadAnswers(400),
        ),
        ("GET", "/v1/models", "/v1/models".into(), None, Read),
        // Image files for the search page: a read; without --image-dir it is a 404.
        (
            "GET",
            "/image-files",
            "/image-files?path=a.png".into(),
            None,
            ReadAnswers(404),
        ),
    ]
}

const ADMIN: &str = "admin-key-0123456789";
const READ_ONLY: &str = "read-only-key-0123456789";

fn status(client: &Client, method: &str, path: &str, body: &Option<Value>) -> u16 {
    client
        .try_raw(method, path, body.as_ref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        .0
}

#[test]
fn auth_matrix_on_every_route() {
    let server = QuiverProcess::start(&["--api-key", ADMIN, "--read-only-api-key", READ_ONLY]);
    let admin = server.client_with_key(ADMIN);
    admin.create_single("auth", 2, "Dot");
    admin.upsert("auth", json!([{"id": 1, "vector": [1.0, 0.0]}]));
    // The facet route counts an indexed field.
    let tag = json!({"field_name": "tag", "field_schema": "keyword"});
    admin.ok("PUT", "/collections/auth/index?wait=true", Some(&tag));
    let anonymous = server.client();
    let wrong = server.client_with_key("wrong-key");
    let read_only = server.client_with_key(READ_ONLY);

    for (method, _, path, body, access) in routes() {
        let none = status(&anonymous, method, &path, &body);
        let bad = status(&wrong, method, &path, &body);
        let ro = status(&read_only, method, &path, &body);
        let adm = status(&admin, method, &path, &body);
        let ctx =
            format!("{method} {path} ({access:?}): none {none}, wrong {bad}, ro {ro}, admin {adm}");
        match access {
            Access::Open => {
                assert_eq!((none, bad, ro, adm), (200, 200, 200, 200), "{ctx}");
            }
            Access::Read => {
                assert_eq!((none, bad), (401, 401), "{ctx}");
                assert_eq!((ro, adm), (200, 200), "{ctx}");
            }
            Access::Write => {
                assert_eq!((none, bad, ro), (401, 401, 403), "{ctx}");
                assert_eq!(adm, 200, "{ctx}");
            }
            Access::WriteAnswers(code) => {
                assert_eq!((none, bad, ro), (401, 401, 403), "{ctx}");
                assert_eq!(adm, code, "{ctx}");
            }
            Access::ReadAnswers(code) => {
                assert_eq!((none, bad), (401, 401), "{ctx}");
                assert_eq!((ro, adm), (code, code), "{ctx}");
            }
        }
    }

    // The bearer form works too, and errors keep Qdrant's envelope.
    let (code, text) = anonymous
        .send(
            "GET",
            "/collections",
            &[("authorization", &format!("Bearer {READ_ONLY}"))],
            None,
        )
        .unwrap();
    assert_eq!(code, 200, "{text}");
    let (code, text) = anonymous
        .send(
            "PUT",
            "/collections/auth3",
            &[("authorization", &format!("Bearer {READ_ONLY}"))],
            Some(br#"{"vectors": {"size": 2, "distance": "Dot"}}"#.to_vec()),
        )
        .unwrap();
    assert_eq!(code, 403, "{text}");
    anonymous.err("GET", "/collections", None, 401);
    // Unknown routes do not reveal themselves before auth.
    assert_eq!(status(&anonymous, "GET", "/nope", &None), 401);
}

#[test]
fn without_keys_everything_is_open() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("auth", 2, "Dot");
    c.upsert("auth", json!([{"id": 1, "vector": [1.0, 0.0]}]));
    let tag = json!({"field_name": "tag", "field_schema": "keyword"});
    c.ok("PUT", "/collections/auth/index?wait=true", Some(&tag));
    for (method, _, path, body, access) in routes() {
        let code = status(&c, method, &path, &body);
        let want = match access {
            Access::WriteAnswers(code) | Access::ReadAnswers(code) => code,
            _ => 200,
        };
        assert_eq!(code, want, "{method} {path}");
    }
}
