//! Collection aliases over HTTP: the actions, the listings, every route resolving an alias, the 4xx
//! cases and a restart.

use serde_json::{json, Value};

use crate::support::{ids, Client, QuiverProcess, TestDir};

fn actions(list: Value) -> Value {
    json!({ "actions": list })
}

fn change(c: &Client, list: Value) {
    assert_eq!(
        c.ok("POST", "/collections/aliases", Some(&actions(list))),
        json!(true)
    );
}

fn aliases(c: &Client, path: &str) -> Value {
    c.ok("GET", path, None)["aliases"].clone()
}

#[test]
fn create_list_rename_delete_and_use_aliases() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("blue", 2, "Dot");
    c.create_single("green", 2, "Dot");
    c.upsert("blue", json!([{"id": 1, "vector": [1.0, 0.0]}]));
    assert_eq!(aliases(&c, "/aliases"), json!([]));

    change(
        &c,
        json!([{"create_alias": {"collection_name": "blue", "alias_name": "prod"}}]),
    );
    assert_eq!(
        aliases(&c, "/aliases"),
        json!([{"alias_name": "prod", "collection_name": "blue"}])
    );
    assert_eq!(
        aliases(&c, "/collections/blue/aliases"),
        json!([{"alias_name": "prod", "collection_name": "blue"}])
    );
    assert_eq!(aliases(&c, "/collections/green/aliases"), json!([]));

    // Reads, searches and writes through the alias reach `blue`.
    assert_eq!(c.ok("GET", "/collections/prod", None)["points_count"], 1);
    assert_eq!(
        c.ok("GET", "/collections/prod/exists", None),
        json!({"exists": true})
    );
    c.upsert("prod", json!([{"id": 2, "vector": [0.0, 1.0]}]));
    assert_eq!(c.ok("GET", "/collections/blue", None)["points_count"], 2);
    let hits = c.ok(
        "POST",
        "/collections/prod/points/search",
        Some(&json!({"vector": [0.0, 1.0], "limit": 1})),
    );
    assert_eq!(ids(&hits), vec![2]);
    let hits = c.ok(
        "POST",
        "/collections/prod/points/query",
        Some(&json!({"query": [1.0, 0.0], "limit": 1})),
    );
    assert_eq!(ids(&hits["points"]), vec![1]);
    // `GET /collections` lists collections only.
    assert_eq!(
        c.ok("GET", "/collections", None),
        json!({"collections": [{"name": "blue"}, {"name": "green"}]})
    );

    // The blue-green switch, in one request, plus a rename; deleting an alias that does not exist is
    // not an error (as in Qdrant).
    change(
        &c,
        json!([
            {"delete_alias": {"alias_name": "prod"}},
            {"create_alias": {"collection_name": "green", "alias_name": "prod"}},
            {"create_alias": {"collection_name": "blue", "alias_name": "previous"}},
            {"rename_alias": {"old_alias_name": "previous", "new_alias_name": "rollback"}},
            {"delete_alias": {"alias_name": "never-was"}}
        ]),
    );
    assert_eq!(
        aliases(&c, "/aliases"),
        json!([
            {"alias_name": "prod", "collection_name": "green"},
            {"alias_name": "rollback", "collection_name": "blue"}
        ])
    );
    assert_eq!(c.ok("GET", "/collections/prod", None)["points_count"], 0);
    // A collection's aliases can be asked by one of its aliases too.
    assert_eq!(
        aliases(&c, "/collections/rollback/aliases"),
        json!([{"alias_name": "rollback", "collection_name": "blue"}])
    );
    c.err("GET", "/collections/previous", None, 404);

    // Deleting by an alias's name deletes no collection; deleting the collection drops its aliases.
    assert_eq!(c.ok("DELETE", "/collections/prod", None), json!(false));
    assert_eq!(c.ok("DELETE", "/collections/green", None), json!(true));
    assert_eq!(
        aliases(&c, "/aliases"),
        json!([{"alias_name": "rollback", "collection_name": "blue"}])
    );
    let msg = c.err("GET", "/collections/prod/points/1", None, 404);
    assert!(msg.contains("`prod`"), "{msg}");
    // The name is free again.
    c.create_single("prod", 2, "Dot");
}

#[test]
fn alias_errors_are_clear_4xx_and_change_nothing() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("a", 2, "Dot");
    c.create_single("b", 2, "Dot");
    change(
        &c,
        json!([{"create_alias": {"collection_name": "a", "alias_name": "x"}}]),
    );
    let before = aliases(&c, "/aliases");
    let post = |list: Value, status: u16| {
        c.err("POST", "/collections/aliases", Some(&actions(list)), status)
    };

    // Unknown collection, unknown alias: 404 naming it. The earlier actions are not applied.
    let msg = post(
        json!([
            {"delete_alias": {"alias_name": "x"}},
            {"create_alias": {"collection_name": "nope", "alias_name": "y"}}
        ]),
        404,
    );
    assert!(msg.contains("`nope`"), "{msg}");
    let msg = post(
        json!([{"rename_alias": {"old_alias_name": "ghost", "new_alias_name": "z"}}]),
        404,
    );
    assert!(msg.contains("`ghost`"), "{msg}");
    // An alias of an alias is refused: the target must be a collection.
    post(
        json!([{"create_alias": {"collection_name": "x", "alias_name": "y"}}]),
        404,
    );
    // An alias may not take a collection's name, by creation or by rename; a collection may not take
    // an alias's name.
    let msg = post(
        json!([{"create_alias": {"collection_name": "a", "alias_name": "b"}}]),
        409,
    );
    assert!(msg.contains("`b`"), "{msg}");
    post(
        json!([{"rename_alias": {"old_alias_name": "x", "new_alias_name": "b"}}]),
        409,
    );
    let msg = c.err(
        "PUT",
        "/collections/x",
        Some(&json!({"vectors": {"size": 2, "distance": "Dot"}})),
        409,
    );
    assert!(msg.contains("alias"), "{msg}");
    // Bad bodies and names.
    post(json!([{"make_alias": {"alias_name": "q"}}]), 400);
    post(
        json!([{"create_alias": {"collection_name": "a", "alias_name": "q", "extra": 1}}]),
        400,
    );
    post(json!([{"create_alias": {"collection_name": "a"}}]), 400);
    post(
        json!([{"create_alias": {"collection_name": "a", "alias_name": "bad/name"}}]),
        400,
    );
    post(
        json!([{"create_alias": {"collection_name": "a", "alias_name": ""}}]),
        422,
    );
    c.err("POST", "/collections/aliases", Some(&json!({})), 400);
    c.err("GET", "/collections/nope/aliases", None, 404);

    assert_eq!(aliases(&c, "/aliases"), before);
}

#[test]
fn aliases_survive_a_restart() {
    let dir = TestDir::new();
    {
        let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
        let c = server.client();
        c.create_single("kept", 2, "Dot");
        c.upsert("kept", json!([{"id": 7, "vector": [1.0, 0.0]}]));
        change(
            &c,
            json!([{"create_alias": {"collection_name": "kept", "alias_name": "live"}}]),
        );
        assert!(server.terminate().success());
    }
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    assert_eq!(
        aliases(&c, "/aliases"),
        json!([{"alias_name": "live", "collection_name": "kept"}])
    );
    let point = c.ok("GET", "/collections/live/points/7", None);
    assert_eq!(point["vector"], json!([1.0, 0.0]));
}

#[test]
fn snapshots_by_alias_are_the_collections_and_never_restore_over_an_alias() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("docs", 2, "Dot");
    c.upsert("docs", json!([{"id": 1, "vector": [1.0, 0.0]}]));
    change(
        &c,
        json!([{"create_alias": {"collection_name": "docs", "alias_name": "live"}}]),
    );
    let created = c.ok("POST", "/collections/live/snapshots", None);
    let name = created["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("docs-"), "{name}");
    assert_eq!(
        c.ok("GET", "/collections/docs/snapshots", None),
        json!([created.clone()])
    );
    assert_eq!(
        c.ok("GET", "/collections/live/snapshots", None),
        json!([created])
    );
    // A restore may create or replace a collection, never take an alias's name.
    let msg = c.err(
        "PUT",
        "/collections/live/snapshots/recover",
        Some(&json!({"location": name})),
        409,
    );
    assert!(msg.contains("alias"), "{msg}");
    assert_eq!(
        c.ok(
            "PUT",
            "/collections/copy/snapshots/recover",
            Some(&json!({"location": name}))
        ),
        json!(true)
    );
    assert_eq!(c.ok("GET", "/collections/copy", None)["points_count"], 1);
    assert_eq!(
        aliases(&c, "/aliases"),
        json!([{"alias_name": "live", "collection_name": "docs"}])
    );
}
