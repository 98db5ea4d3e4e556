//! `lookup_from`, the distance matrix routes (`search/matrix/pairs` and `/offsets`), `sample` and
//! `mmr` queries, each checked against what the test computes from the points it stored.

use serde_json::{json, Value};

use crate::support::{ids, vector, Client, QuiverProcess};

const N: u64 = 30;
const DIM: usize = 4;

/// `m`: N points with a Cosine vector `same` and `k = i % 3`; `src`: the same ids with `same` (equal
/// to `m`'s) and `v` (another seed's vectors).
fn setup(c: &Client) {
    c.ok(
        "PUT",
        "/collections/m",
        Some(&json!({"vectors": {"same": {"size": DIM, "distance": "Cosine"}}})),
    );
    let points: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "vector": {"same": vector(i + 1, DIM)}, "payload": {"k": i % 3}}))
        .collect();
    c.upsert("m", json!(points));
    c.ok(
        "PUT",
        "/collections/src",
        Some(
            &json!({"vectors": {"same": {"size": DIM, "distance": "Cosine"},
                                 "v": {"size": DIM, "distance": "Dot"}}}),
        ),
    );
    let points: Vec<Value> = (0..N)
        .map(
            |i| json!({"id": i, "vector": {"same": vector(i + 1, DIM), "v": vector(i + 100, DIM)}}),
        )
        .collect();
    c.upsert("src", json!(points));
}

fn query(c: &Client, collection: &str, body: Value) -> Value {
    c.ok(
        "POST",
        &format!("/collections/{collection}/points/query"),
        Some(&body),
    )["points"]
        .clone()
}

#[test]
fn lookup_from_resolves_point_ids_in_the_other_collection() {
    let q = QuiverProcess::start(&[]);
    let c = q.client();
    setup(&c);
    // The looked-up vector of id 7 under `v`, queried directly, gives the same hits.
    let direct = query(
        &c,
        "m",
        json!({"query": vector(107, DIM), "limit": 5, "using": "same"}),
    );
    let looked_up = query(
        &c,
        "m",
        json!({"query": 7, "limit": 5, "using": "same",
               "lookup_from": {"collection": "src", "vector": "v"}}),
    );
    assert_eq!(looked_up, direct);
    // `vector` defaults to the stage's `using`: the unnamed vector of `src` is `m`'s own, and the
    // engine sees a vector, so id 7 is not left out: it is its own best hit.
    let own = query(
        &c,
        "m",
        json!({"query": {"nearest": 7}, "limit": 3, "using": "same", "lookup_from": {"collection": "src"}}),
    );
    assert_eq!(ids(&own)[0], 7, "{own}");
    // In a prefetch, and in a recommend query.
    let prefetched = query(
        &c,
        "m",
        json!({"prefetch": {"query": 7, "limit": 5, "lookup_from": {"collection": "src", "vector": "v"}, "using": "same"},
               "query": vector(107, DIM), "limit": 5, "using": "same"}),
    );
    assert_eq!(ids(&prefetched), ids(&direct));
    let reco = json!({"recommend": {"positive": [7, 8], "negative": [9]}});
    let by_vectors = json!({"recommend": {"positive": [vector(107, DIM), vector(108, DIM)],
                                          "negative": [vector(109, DIM)]}});
    let lookup = json!({"collection": "src", "vector": "v"});
    let a = query(
        &c,
        "m",
        json!({"query": reco, "limit": 4, "using": "same", "lookup_from": lookup}),
    );
    let b = query(
        &c,
        "m",
        json!({"query": by_vectors, "limit": 4, "using": "same"}),
    );
    assert_eq!(a, b);
    // The legacy route converts to the same query.
    let legacy = c.ok(
        "POST",
        "/collections/m/points/recommend",
        Some(&json!({"positive": [7, 8], "negative": [9], "limit": 4, "using": "same", "lookup_from": lookup})),
    );
    assert_eq!(legacy, b);
    let discover = c.ok(
        "POST",
        "/collections/m/points/discover",
        Some(
            &json!({"target": 7, "context": [{"positive": 8, "negative": 9}], "limit": 4, "using": "same",
                     "lookup_from": lookup}),
        ),
    );
    let discover_direct = c.ok(
        "POST",
        "/collections/m/points/discover",
        Some(&json!({"target": vector(107, DIM),
                     "context": [{"positive": vector(108, DIM), "negative": vector(109, DIM)}],
                     "limit": 4, "using": "same"})),
    );
    assert_eq!(discover, discover_direct);
    // An unknown collection, a missing point, 404.
    c.err(
        "POST",
        "/collections/m/points/query",
        Some(&json!({"query": 7, "using": "same", "lookup_from": {"collection": "nope"}})),
        404,
    );
    let message = c.err(
        "POST",
        "/collections/m/points/query",
        Some(&json!({"query": 12345, "using": "same", "lookup_from": {"collection": "src"}})),
        404,
    );
    assert!(message.contains("12345"), "{message}");
}
