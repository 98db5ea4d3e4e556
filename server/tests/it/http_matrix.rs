//! `lookup_from`, the distance matrix routes (`search/matrix/pairs` and `/offsets`), `sample` and
//! `mmr` queries, each checked against what the test computes from the points it stored.

use serde_json::{json, Value};

use crate::support::{dot, ids, normalized, vector, Client, QuiverProcess};

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
    // Looked up in the searched collection itself, the point is left out, as in Qdrant.
    let itself = query(
        &c,
        "m",
        json!({"query": 7, "limit": 3, "using": "same", "lookup_from": {"collection": "m"}}),
    );
    assert_eq!(ids(&itself).len(), 3);
    assert!(!ids(&itself).contains(&7), "{itself}");
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

/// The unit vector `m` stores for point `i` (Cosine normalises on insert).
fn stored(i: u64) -> Vec<f32> {
    normalized(&vector(i + 1, DIM))
}

/// `(a, b, score)` triples of a pairs answer.
fn pairs(result: &Value) -> Vec<(u64, u64, f32)> {
    result["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["a"].as_u64().unwrap(),
                p["b"].as_u64().unwrap(),
                p["score"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

/// Checks an answer's pairs against the sample it names: each sampled point's `limit` nearest
/// other sampled points, scored by the test.
fn check_neighbours(triples: &[(u64, u64, f32)], sampled: &[u64], limit: usize, allowed: &[u64]) {
    for a in sampled {
        assert!(allowed.contains(a), "{a} does not pass the filter");
        let mut expected: Vec<(u64, f32)> = sampled
            .iter()
            .filter(|b| *b != a)
            .map(|b| (*b, dot(&stored(*a), &stored(*b))))
            .collect();
        expected.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        expected.truncate(limit);
        let got: Vec<(u64, f32)> = triples
            .iter()
            .filter(|t| t.0 == *a)
            .map(|t| (t.1, t.2))
            .collect();
        assert_eq!(got.len(), expected.len(), "neighbours of {a}: {got:?}");
        for ((gb, gs), (eb, es)) in got.iter().zip(&expected) {
            assert!((gs - es).abs() < 1e-4, "{a}: {got:?} vs {expected:?}");
            assert!(
                gb == eb || (gs - es).abs() < 1e-5,
                "{a}: {got:?} vs {expected:?}"
            );
        }
    }
}

#[test]
fn matrix_pairs_and_offsets_are_the_sample_nearest_neighbours() {
    let q = QuiverProcess::start(&[]);
    let c = q.client();
    setup(&c);
    let k0: Vec<u64> = (0..N).filter(|i| i % 3 == 0).collect();
    let filter = json!({"must": [{"key": "k", "match": {"value": 0}}]});
    // A sample smaller than the filtered set: sampled ids pass the filter, neighbours are right.
    let body = json!({"filter": filter, "sample": 6, "limit": 2, "using": "same"});
    let result = c.ok(
        "POST",
        "/collections/m/points/search/matrix/pairs",
        Some(&body),
    );
    let triples = pairs(&result);
    let mut sampled: Vec<u64> = triples.iter().map(|t| t.0).collect();
    sampled.dedup();
    assert_eq!(sampled.len(), 6, "{result}");
    assert!(
        sampled.windows(2).all(|w| w[0] < w[1]),
        "id order: {result}"
    );
    check_neighbours(&triples, &sampled, 2, &k0);
    let offsets = c.ok(
        "POST",
        "/collections/m/points/search/matrix/offsets",
        Some(&body),
    );
    let ids: Vec<u64> = offsets["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 6);
    let as_triples = |o: &Value| -> Vec<(u64, u64, f32)> {
        let ids: Vec<u64> = o["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let col = |key: &str| -> Vec<f64> {
            o[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (rows, cols, scores) = (col("offsets_row"), col("offsets_col"), col("scores"));
        assert!(
            rows.len() == cols.len() && cols.len() == scores.len(),
            "{o}"
        );
        (0..rows.len())
            .map(|i| {
                (
                    ids[rows[i] as usize],
                    ids[cols[i] as usize],
                    scores[i] as f32,
                )
            })
            .collect()
    };
    check_neighbours(&as_triples(&offsets), &ids, 2, &k0);
    // Sampling the whole filtered set, both shapes describe the same matrix.
    let all = json!({"filter": filter, "sample": 20, "limit": 3, "using": "same"});
    let p = c.ok(
        "POST",
        "/collections/m/points/search/matrix/pairs",
        Some(&all),
    );
    let o = c.ok(
        "POST",
        "/collections/m/points/search/matrix/offsets",
        Some(&all),
    );
    assert_eq!(pairs(&p), as_triples(&o));
    check_neighbours(&pairs(&p), &k0, 3, &k0);
    // Defaults (sample 10, limit 3) over the whole collection.
    let d = c.ok(
        "POST",
        "/collections/m/points/search/matrix/offsets",
        Some(&json!({"using": "same"})),
    );
    assert_eq!(d["ids"].as_array().unwrap().len(), 10);
    assert_eq!(d["scores"].as_array().unwrap().len(), 30);
    // Qdrant's validation and errors.
    for (body, status) in [
        (json!({"sample": 1, "using": "same"}), 422),
        (json!({"limit": 0, "using": "same"}), 422),
        (json!({"using": "nope"}), 400),
    ] {
        c.err(
            "POST",
            "/collections/m/points/search/matrix/pairs",
            Some(&body),
            status,
        );
    }
    c.err(
        "POST",
        "/collections/nope/points/search/matrix/offsets",
        Some(&json!({})),
        404,
    );
}

#[test]
fn sample_returns_distinct_random_points_that_pass_the_filter() {
    let q = QuiverProcess::start(&[]);
    let c = q.client();
    setup(&c);
    let body = json!({"query": {"sample": "random"}, "limit": 5, "with_payload": true,
                      "filter": {"must": [{"key": "k", "match": {"value": 1}}]}});
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let hits = query(&c, "m", body.clone());
        let mut got = ids(&hits);
        assert_eq!(got.len(), 5, "{hits}");
        for h in hits.as_array().unwrap() {
            assert_eq!(h["score"], json!(0.0), "{h}");
            assert_eq!(h["payload"]["k"], json!(1), "{h}");
        }
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 5, "distinct: {hits}");
        seen.insert(got);
    }
    assert!(seen.len() > 1, "20 samples were all the same");
    // Without prefetches the offset is ignored, as in Qdrant.
    let offset = query(
        &c,
        "m",
        json!({"query": {"sample": "random"}, "limit": 3, "offset": 100}),
    );
    assert_eq!(ids(&offset).len(), 3, "{offset}");
    // More than there are: every matching point once.
    let mut all = ids(&query(
        &c,
        "m",
        json!({"query": {"sample": "random"}, "limit": 100,
               "filter": {"must": [{"key": "k", "match": {"value": 2}}]}}),
    ));
    all.sort_unstable();
    assert_eq!(all, (0..N).filter(|i| i % 3 == 2).collect::<Vec<_>>());
    // Over a prefetch: a sample of its hits.
    let nearest = ids(&query(
        &c,
        "m",
        json!({"query": vector(77, DIM), "using": "same", "limit": 8}),
    ));
    let sampled = ids(&query(
        &c,
        "m",
        json!({"prefetch": {"query": vector(77, DIM), "using": "same", "limit": 8},
               "query": {"sample": "random"}, "limit": 3}),
    ));
    assert_eq!(sampled.len(), 3);
    assert!(sampled.iter().all(|i| nearest.contains(i)), "{sampled:?}");
    c.err(
        "POST",
        "/collections/m/points/query",
        Some(&json!({"query": {"sample": "first"}})),
        400,
    );
}

/// Qdrant's greedy selection, computed here: from the `candidates` nearest, the nearest first, then
/// the one maximising `(1 − diversity) × relevance − diversity × max similarity to the selected`.
fn reference_mmr(
    query: &[f32],
    diversity: f32,
    candidates: usize,
    limit: usize,
) -> Vec<(u64, f32)> {
    let q = normalized(query);
    let mut pool: Vec<(u64, f32)> = (0..N).map(|i| (i, dot(&q, &stored(i)))).collect();
    pool.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    pool.truncate(candidates);
    let mut selected = vec![pool.remove(0)];
    while selected.len() < limit && !pool.is_empty() {
        let score = |c: &(u64, f32)| {
            let redundancy = selected
                .iter()
                .map(|s| dot(&stored(c.0), &stored(s.0)))
                .fold(f32::NEG_INFINITY, f32::max);
            (1.0 - diversity) * c.1 - diversity * redundancy
        };
        let best = (0..pool.len())
            .max_by(|a, b| score(&pool[*a]).total_cmp(&score(&pool[*b])).then(b.cmp(a)))
            .unwrap();
        selected.push(pool.remove(best));
    }
    selected
}

#[test]
fn mmr_matches_the_reference_greedy_selection() {
    let q = QuiverProcess::start(&[]);
    let c = q.client();
    setup(&c);
    let qv = vector(500, DIM);
    for (diversity, candidates, limit) in [(0.7f32, 12usize, 5usize), (0.3, 20, 6), (1.0, 10, 4)] {
        let hits = query(
            &c,
            "m",
            json!({"query": {"nearest": qv, "mmr": {"diversity": diversity, "candidates_limit": candidates}},
                   "using": "same", "limit": limit}),
        );
        let expected = reference_mmr(&qv, diversity, candidates, limit);
        assert_eq!(
            ids(&hits),
            expected.iter().map(|e| e.0).collect::<Vec<_>>(),
            "diversity {diversity}: {hits}"
        );
        for (h, (_, s)) in hits.as_array().unwrap().iter().zip(&expected) {
            let got = h["score"].as_f64().unwrap() as f32;
            assert!((got - s).abs() < 1e-4, "score {got} is the similarity {s}");
        }
    }
    // Diversity 0 is the plain nearest neighbours; the default candidates are `limit`.
    let plain = query(&c, "m", json!({"query": qv, "using": "same", "limit": 5}));
    let mmr0 = query(
        &c,
        "m",
        json!({"query": {"nearest": qv, "mmr": {"diversity": 0.0}}, "using": "same", "limit": 5}),
    );
    assert_eq!(ids(&mmr0), ids(&plain));
    let default = query(
        &c,
        "m",
        json!({"query": {"nearest": qv, "mmr": {}}, "using": "same", "limit": 5}),
    );
    let mut a = ids(&default);
    let mut b = ids(&plain);
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "candidates_limit defaults to limit");
    c.err(
        "POST",
        "/collections/m/points/query",
        Some(&json!({"query": {"nearest": qv, "mmr": {"diversity": 1.5}}, "using": "same"})),
        422,
    );
    // Its candidates count against the server's --max-limit, like a prefetch's limit.
    c.err(
        "POST",
        "/collections/m/points/query",
        Some(&json!({"query": {"nearest": qv, "mmr": {"candidates_limit": 100_000}}, "using": "same"})),
        422,
    );
}
