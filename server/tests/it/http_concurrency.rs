//! Eight clients writing and searching at once: no request fails and every acknowledged point is found.

use serde_json::{json, Value};

use crate::support::{vector, QuiverProcess};

const THREADS: u64 = 8;
const ROUNDS: u64 = 40;
const BATCH: u64 = 10;
const DIM: usize = 16;

#[test]
fn concurrent_upserts_and_searches_lose_nothing() {
    let server = QuiverProcess::start(&["--workers", "4"]);
    let c = server.client();
    // A small segment size makes seals (index builds) happen while clients write and search.
    let body = json!({"vectors": {"size": DIM, "distance": "Cosine"},
                      "optimizers_config": {"segment_max_points": 300},
                      "hnsw_config": {"full_scan_threshold": 1}});
    c.ok("PUT", "/collections/load", Some(&body));

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for round in 0..ROUNDS {
                    let ids: Vec<u64> = (0..BATCH).map(|k| t * 1_000_000 + round * BATCH + k).collect();
                    let points: Vec<Value> = ids
                        .iter()
                        .map(|&id| json!({"id": id, "vector": vector(id, DIM), "payload": {"t": t}}))
                        .collect();
                    c.upsert("load", Value::Array(points));
                    acknowledged.extend(ids);
                    let q = vector(round * 31 + t, DIM);
                    let hits = c.ok(
                        "POST",
                        "/collections/load/points/query",
                        Some(&json!({"query": q, "limit": 5, "filter": {"must": [{"key": "t", "match": {"value": t}}]}})),
                    );
                    for hit in hits["points"].as_array().unwrap() {
                        let id = hit["id"].as_u64().unwrap();
                        assert_eq!(id / 1_000_000, t, "filter leaked another thread's point");
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for w in workers {
        acknowledged.extend(w.join().expect("a client thread failed"));
    }
    assert_eq!(acknowledged.len() as u64, THREADS * ROUNDS * BATCH);

    let count = c.ok("POST", "/collections/load/points/count", Some(&json!({})));
    assert_eq!(count["count"].as_u64().unwrap(), acknowledged.len() as u64);
    for chunk in acknowledged.chunks(500) {
        let records = c.ok(
            "POST",
            "/collections/load/points",
            Some(&json!({"ids": chunk, "with_vector": true, "with_payload": true})),
        );
        let records = records.as_array().unwrap();
        assert_eq!(records.len(), chunk.len());
        for (record, &id) in records.iter().zip(chunk) {
            assert_eq!(record["id"].as_u64().unwrap(), id);
            assert_eq!(record["payload"]["t"].as_u64().unwrap(), id / 1_000_000);
        }
    }
    // Each point is its own nearest neighbour (cosine), found through whatever index holds it.
    for &id in acknowledged.iter().step_by(97) {
        let hits = c.ok(
            "POST",
            "/collections/load/points/query",
            Some(&json!({"query": vector(id, DIM), "limit": 1, "params": {"exact": true}})),
        );
        assert_eq!(hits["points"][0]["id"].as_u64().unwrap(), id);
    }
}
