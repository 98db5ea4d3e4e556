//! Qdrant's `timeout` query parameter on reads: a read that runs past it stops and answers 408 with
//! Qdrant's message; a generous one changes nothing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{vector, Client, QuiverProcess};

const N: u64 = 3_000;
const DIM: usize = 16;

fn setup(c: &Client) {
    c.create_single("slow", DIM, "Cosine");
    for chunk in (0..N).collect::<Vec<_>>().chunks(1_000) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": i, "vector": vector(i + 1, DIM), "payload": {"k": i % 3}}))
            .collect();
        c.upsert("slow", json!(points));
    }
}

/// A context query with many pairs, scanned exactly: every point is scored against 200 examples
/// (point ids, so that a batch long enough to time out stays a small body).
fn slow_query() -> Value {
    let pairs: Vec<Value> = (0..100u64)
        .map(|p| json!({"positive": 2 * p, "negative": 2 * p + 1}))
        .collect();
    json!({"query": {"context": pairs}, "params": {"exact": true}, "limit": 3})
}

fn batch(n: usize) -> Value {
    json!({ "searches": vec![slow_query(); n] })
}

#[test]
fn a_read_past_its_timeout_answers_408_and_a_generous_one_changes_nothing() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);

    // A batch that runs well past one second on this machine, measured without a timeout.
    let (mut n, mut untimed) = (1usize, Duration::ZERO);
    while n <= 4_096 {
        let started = Instant::now();
        c.ok(
            "POST",
            "/collections/slow/points/query/batch",
            Some(&batch(n)),
        );
        untimed = started.elapsed();
        if untimed >= Duration::from_millis(2_500) {
            break;
        }
        n *= 2;
    }
    assert!(
        untimed >= Duration::from_millis(2_500),
        "{n} queries took {untimed:?}"
    );

    let started = Instant::now();
    let message = c.err(
        "POST",
        "/collections/slow/points/query/batch?timeout=1",
        Some(&batch(n)),
        408,
    );
    let stopped = started.elapsed();
    assert_eq!(
        message,
        "Timeout error: Operation 'Search' timed out after 1 seconds"
    );
    assert!(
        stopped < untimed - Duration::from_millis(700),
        "answered after {stopped:?}; the batch takes {untimed:?}"
    );
    // The server is not left busy: the engine stopped the work at the same deadline.
    c.ok("POST", "/collections/slow/points/count", Some(&json!({})));

    // A generous timeout answers as no timeout does, on every read route that takes it.
    let one = slow_query();
    let plain = c.ok("POST", "/collections/slow/points/query", Some(&one));
    let timed = c.ok(
        "POST",
        "/collections/slow/points/query?timeout=60",
        Some(&one),
    );
    assert_eq!(plain["points"], timed["points"]);
    let search = json!({"vector": vector(7, DIM), "limit": 5});
    assert_eq!(
        c.ok("POST", "/collections/slow/points/search", Some(&search)),
        c.ok(
            "POST",
            "/collections/slow/points/search?timeout=60",
            Some(&search)
        )
    );
    let scroll = json!({"limit": 4});
    assert_eq!(
        c.ok("POST", "/collections/slow/points/scroll", Some(&scroll)),
        c.ok(
            "POST",
            "/collections/slow/points/scroll?timeout=60",
            Some(&scroll)
        )
    );
    let count = c.ok(
        "POST",
        "/collections/slow/points/count?timeout=60",
        Some(&json!({"filter": {"must": [{"key": "k", "match": {"value": 1}}]}})),
    );
    assert_eq!(count["count"], json!(N / 3));

    let groups = json!({"query": vector(9, DIM), "group_by": "k", "limit": 3, "group_size": 2});
    assert_eq!(
        c.ok(
            "POST",
            "/collections/slow/points/query/groups",
            Some(&groups)
        )["groups"],
        c.ok(
            "POST",
            "/collections/slow/points/query/groups?timeout=60",
            Some(&groups)
        )["groups"]
    );

    // A write is applied before its answer: `timeout` has nothing to wait out.
    let write = c.ok(
        "PUT",
        "/collections/slow/points?wait=true&timeout=1",
        Some(&json!({"points": [{"id": N, "vector": vector(N + 1, DIM)}]})),
    );
    assert_eq!(write["status"], "completed");

    // Qdrant's timeout is a whole number of seconds, at least 1.
    for bad in ["0", "-1", "1.5", "soon"] {
        c.err(
            "POST",
            &format!("/collections/slow/points/search?timeout={bad}"),
            Some(&search),
            400,
        );
    }
}
